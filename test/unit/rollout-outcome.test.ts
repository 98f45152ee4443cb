// How `--wait` decides that a rollout has ended (src/apps/rollout-wait.ts evaluateRollout), for
// every outcome, on views built from tables. Pure: no ZooKeeper, no processes.

import { describe, expect, test } from "bun:test";
import { type RolloutOutcome, evaluateRollout } from "../../src/apps/rollout-wait.ts";
import { type FleetFixture, OLD, R, appView } from "../helpers/raw-fleet.ts";

interface Case {
  name: string;
  fixture: FleetFixture;
  /** The rollout the wait follows; R (the app's current one) unless given. */
  rolloutId?: string;
  /** The outcome on the wait's first look, and on a later one; undefined: keep waiting. */
  starting: RolloutOutcome["kind"] | undefined;
  later: RolloutOutcome["kind"] | undefined;
  /** Hosts listed as failed in the outcome. */
  failed?: string[];
}

const BOTH = { a: {}, b: {} };

const cases: Case[] = [
  {
    name: "every host current",
    fixture: { hosts: { a: ["current", "1.0"], b: ["current", "1.0"] }, agents: BOTH },
    starting: "converged",
    later: "converged",
    failed: [],
  },
  {
    name: "a host still deploying",
    fixture: { hosts: { a: ["current", "1.0"], b: ["deploying", "0.9"] }, agents: BOTH },
    starting: undefined,
    later: undefined,
  },
  {
    name: "a live agent has not reported yet",
    fixture: { hosts: { a: ["current", "1.0"] }, agents: BOTH },
    starting: undefined,
    later: undefined,
  },
  {
    name: "a failure within the budget: converged, naming it",
    fixture: { spec: { maxFailures: 1 }, hosts: { a: ["current", "1.0"], b: ["failed", "0.9"] }, agents: BOTH, failures: [`${R}-b`] },
    starting: "converged",
    later: "converged",
    failed: ["b"],
  },
  {
    name: "every host failed within the budget: failed",
    fixture: {
      spec: { maxFailures: 2 },
      hosts: { a: ["failed", "0.9"], b: ["failed", "0.9"] },
      agents: BOTH,
      failures: [`${R}-a`, `${R}-b`],
    },
    starting: "failed",
    later: "failed",
    failed: ["a", "b"],
  },
  {
    name: "over the budget with the failed host's report in: halted",
    fixture: { hosts: { a: ["deploying", "0.9"], b: ["failed", "0.9"] }, agents: BOTH, failures: [`${R}-b`] },
    starting: "halted",
    later: "halted",
    failed: ["b"],
  },
  {
    name: "over the budget but the failed host has not reported yet: wait for its report (the why)",
    fixture: { hosts: { a: ["current", "1.0"], b: ["deploying", "0.9"] }, agents: BOTH, failures: [`${R}-b`] },
    starting: undefined,
    later: undefined,
  },
  {
    name: "over the budget, the failed host offline (it will not report): halted",
    fixture: { hosts: { a: ["current", "1.0"], b: ["deploying", "0.9"] }, agents: { a: {} }, failures: [`${R}-b`] },
    starting: "halted",
    later: "halted",
    failed: [],
  },
  {
    name: "over the budget, the failed host has no status node at all: halted",
    fixture: { hosts: { a: ["current", "1.0"] }, agents: { a: {} }, failures: [`${R}-b`] },
    starting: "halted",
    later: "halted",
    failed: [],
  },
  {
    name: "halted while paused is still halted",
    fixture: { spec: { paused: true }, hosts: { a: ["failed", "0.9"] }, agents: { a: {} }, failures: [`${R}-a`] },
    starting: "halted",
    later: "halted",
    failed: ["a"],
  },
  {
    name: "paused mid-rollout: keep waiting",
    fixture: { spec: { paused: true }, hosts: { a: ["queued", "0.9"] }, agents: { a: {} } },
    starting: undefined,
    later: undefined,
  },
  {
    name: "another rollout was published: superseded",
    fixture: { hosts: { a: ["current", "1.0"] }, agents: { a: {} } },
    rolloutId: OLD,
    starting: "superseded",
    later: "superseded",
  },
  { name: "no host and no agent: no-hosts, on the first look only", fixture: {}, starting: "no-hosts", later: undefined },
  {
    name: "every host offline on another version: no-hosts, on the first look only",
    fixture: { hosts: { a: ["current", "0.9", OLD], b: ["queued", "0.9"] } },
    starting: "no-hosts",
    later: undefined,
  },
  {
    name: "agents of other groups only: no-hosts, on the first look only",
    fixture: { spec: { groups: ["web"] }, agents: { d: { groups: ["db"] } } },
    starting: "no-hosts",
    later: undefined,
  },
  {
    name: "every host offline but already on the version: converged, not no-hosts",
    fixture: { hosts: { a: ["current", "1.0", OLD] } },
    starting: "converged",
    later: "converged",
    failed: [],
  },
  { name: "only a pending agent: it will report, keep waiting", fixture: { agents: { a: {} } }, starting: undefined, later: undefined },
  {
    name: "one live host left: keep waiting",
    fixture: { hosts: { a: ["current", "0.9", OLD], b: ["queued", "0.9"] }, agents: { b: {} } },
    starting: undefined,
    later: undefined,
  },
];

describe("evaluateRollout", () => {
  test.each(cases)("$name", ({ fixture, rolloutId = R, starting, later, failed }) => {
    const view = appView(fixture);
    const first = evaluateRollout(view, rolloutId, { starting: true });
    const next = evaluateRollout(view, rolloutId);
    expect(first?.kind).toBe(starting);
    expect(next?.kind).toBe(later);
    if (failed !== undefined) {
      expect(first && "failed" in first ? first.failed.map((h) => h.host) : undefined).toEqual(failed);
    }
  });

  test("the app is gone: deleted", () => {
    expect(evaluateRollout(undefined, R, { starting: true })).toEqual({ kind: "deleted" });
    expect(evaluateRollout(undefined, R)).toEqual({ kind: "deleted" });
  });
});
