import * as v from "valibot";

export const MAX_FAILURE_COUNT = 1_000_000;
const BUDGET_RULE = `must be a whole number from 0 to ${MAX_FAILURE_COUNT} or a percentage like 10%`;
const PERCENT = /^(?:\d{1,2}|100)%$/;

/**
 * A failure budget as stored (`maxFailures`): a number of hosts, or "N%" of the hosts the
 * rollout targets (0–100; Ansible's max_fail_percentage). A rollout halts once more hosts
 * than the budget failed it.
 */
export const FailureBudget = v.union(
  [
    v.pipe(v.number(BUDGET_RULE), v.integer(BUDGET_RULE), v.minValue(0, BUDGET_RULE), v.maxValue(MAX_FAILURE_COUNT, BUDGET_RULE)),
    v.pipe(v.string(BUDGET_RULE), v.regex(PERCENT, BUDGET_RULE)),
  ],
  BUDGET_RULE,
);
export type FailureBudget = v.InferOutput<typeof FailureBudget>;

/** Parses the command-line form ("2", "10%"); undefined when invalid. */
export function parseFailureBudget(input: string): FailureBudget | undefined {
  const text = input.trim();
  if (PERCENT.test(text)) return text;
  if (!/^\d{1,7}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX_FAILURE_COUNT ? n : undefined;
}

/** Failures tolerated: a number is itself; "N%" is floor(N% × hosts) (possibly 0). */
export function resolveFailureBudget(budget: FailureBudget, hostCount: number): number {
  if (typeof budget === "number") return budget;
  return Math.floor((Number(budget.slice(0, -1)) * hostCount) / 100);
}

export { BUDGET_RULE };
