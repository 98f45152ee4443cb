import * as v from "valibot";

export const MAX_SLOTS = 100_000;

const SLOTS_RULE = "slots must be a whole number ≥ 1 or a percentage like 25%";
const SLOTS_RANGE = `slots must be a whole number from 1 to ${MAX_SLOTS} or a percentage like 25%`;

/**
 * A slot count as stored: a whole number ≥ 1, or "N%" of the app's hosts (1–100). Each branch
 * has its own messages: when the input has a branch's type (a string that is no percentage),
 * the union reports that branch's issue, not its own message.
 */
export const Slots = v.union(
  [
    v.pipe(v.number(SLOTS_RULE), v.integer(SLOTS_RULE), v.minValue(1, SLOTS_RULE), v.maxValue(MAX_SLOTS, SLOTS_RANGE)),
    v.pipe(v.string(SLOTS_RULE), v.regex(/^(?:[1-9]\d?|100)%$/, SLOTS_RULE)),
  ],
  SLOTS_RULE,
);
export type Slots = v.InferOutput<typeof Slots>;

/** Parses the command-line form ("3", "25%"); undefined when invalid. */
export function parseSlots(input: string): Slots | undefined {
  const text = input.trim();
  if (/^(?:[1-9]\d?|100)%$/.test(text)) return text;
  if (!/^[1-9]\d{0,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX_SLOTS ? n : undefined;
}

/** "N%" = floor(N% × hosts), at least 1; a number is itself. */
export function resolveSlots(slots: Slots, hostCount: number): number {
  if (typeof slots === "number") return slots;
  const percent = Number(slots.slice(0, -1));
  return Math.max(1, Math.floor((percent * hostCount) / 100));
}

/**
 * How many slots a rollout has now. The ramp (`slotIncrement` K): each host that completed the
 * rollout hands back its slot plus K−1 more, so the limit is slots + (K−1) × completed, capped
 * by `maxSlots` (both "N%" of the app's hosts). K=1 (the default) keeps the width constant;
 * K=0 is handled as a canary of `slots` hosts (see admission) and is constant after promote.
 */
export function slotLimit(
  spec: { slots: Slots; slotIncrement?: number | undefined; maxSlots?: Slots | undefined },
  hostCount: number,
  completed: number,
): number {
  const base = resolveSlots(spec.slots, hostCount);
  const increment = spec.slotIncrement ?? 1;
  const ramped = increment > 1 ? base + (increment - 1) * completed : base;
  return spec.maxSlots === undefined ? ramped : Math.min(ramped, resolveSlots(spec.maxSlots, hostCount));
}
