// The status `conveyor status` shows and `--wait` decides on, derived from what was read
// (src/apps/fleet-view.ts buildFleetStatus): app state and verdict, host states, pending agents,
// untargeted hosts, queue positions, invalid nodes. Pure: no ZooKeeper, no processes.

import { describe, expect, test } from "bun:test";
import { type AppView, type HostView, type RawFleet, buildFleetStatus, rolloutVerdict } from "../../src/apps/fleet-view.ts";
import { AT, type FleetFixture, OLD, R, type Report, agentInfo, appView, hostStatus, rawFleet } from "../helpers/raw-fleet.ts";
import { SAMPLE_SPEC } from "../helpers/sample-spec.ts";

/** Both hosts online (agents with no groups serve every app). */
const ONLINE = { a: {}, b: {} };

describe("app state", () => {
  const cases: { name: string; fixture: FleetFixture; state: AppView["state"]; halted?: boolean }[] = [
    {
      name: "every host current on this rollout → converged",
      fixture: { hosts: { a: ["current", "1.0"], b: ["current", "1.0"] }, agents: ONLINE },
      state: "converged",
    },
    {
      name: "a host still deploying → rolling",
      fixture: { hosts: { a: ["current", "1.0"], b: ["deploying", "0.9"] }, agents: ONLINE },
      state: "rolling",
    },
    {
      name: "a host queued → rolling",
      fixture: { hosts: { a: ["current", "1.0"], b: ["queued", "0.9"] }, agents: ONLINE },
      state: "rolling",
    },
    {
      name: "a host verifying → rolling",
      fixture: { hosts: { a: ["current", "1.0"], b: ["verifying", "1.0"] }, agents: ONLINE },
      state: "rolling",
    },
    { name: "no host and no agent → rolling (nothing reported yet)", fixture: {}, state: "rolling" },
    {
      name: "a live agent of the app has not reported → rolling",
      fixture: { hosts: { a: ["current", "1.0"] }, agents: ONLINE },
      state: "rolling",
    },
    {
      name: "a live host current on an older rollout must report on this one → rolling",
      fixture: { hosts: { a: ["current", "1.0"], b: ["current", "1.0", OLD] }, agents: ONLINE },
      state: "rolling",
    },
    {
      name: "an offline host that already runs the version is done → converged",
      fixture: { hosts: { a: ["current", "1.0"], b: ["current", "1.0", OLD] }, agents: { a: {} } },
      state: "converged",
    },
    {
      name: "an offline host on another version holds the rollout → rolling",
      fixture: { hosts: { a: ["current", "1.0"], b: ["current", "0.9", OLD] }, agents: { a: {} } },
      state: "rolling",
    },
    {
      name: "one host failed within the budget, the other current → converged",
      fixture: { spec: { maxFailures: 1 }, hosts: { a: ["current", "1.0"], b: ["failed", "0.9"] }, agents: ONLINE, failures: [`${R}-b`] },
      state: "converged",
    },
    {
      name: "every host failed within the budget → failed (a release that deployed nowhere)",
      fixture: {
        spec: { maxFailures: 5 },
        hosts: { a: ["failed", "0.9"], b: ["failed", "0.9"] },
        agents: ONLINE,
        failures: [`${R}-a`, `${R}-b`],
      },
      state: "failed",
    },
    {
      name: "a host failed an older rollout: no verdict on this one → rolling",
      fixture: { spec: { maxFailures: 5 }, hosts: { a: ["current", "1.0"], b: ["failed", "0.9", OLD] }, agents: ONLINE },
      state: "rolling",
    },
    {
      name: "failures over the budget → halted",
      fixture: { hosts: { a: ["current", "1.0"], b: ["failed", "0.9"] }, agents: ONLINE, failures: [`${R}-b`] },
      state: "halted",
      halted: true,
    },
    {
      name: "halted as soon as the failure node exists, before the host reports it",
      fixture: { hosts: { a: ["current", "1.0"], b: ["deploying", "0.9"] }, agents: ONLINE, failures: [`${R}-b`] },
      state: "halted",
      halted: true,
    },
    {
      name: "paused wins over halted (halted still says so)",
      fixture: { spec: { paused: true }, hosts: { a: ["failed", "0.9"] }, agents: { a: {} }, failures: [`${R}-a`] },
      state: "paused",
      halted: true,
    },
    {
      name: "paused wins over converged",
      fixture: { spec: { paused: true }, hosts: { a: ["current", "1.0"] }, agents: { a: {} } },
      state: "paused",
    },
    {
      name: "failures forgiven by resume do not count → no halt",
      fixture: {
        spec: { ignoredFailures: 1 },
        hosts: { a: ["current", "1.0"], b: ["failed", "0.9"] },
        agents: ONLINE,
        failures: [`${R}-b`],
      },
      state: "converged",
      halted: false,
    },
    {
      name: "failure nodes of an older rollout do not count",
      fixture: { hosts: { a: ["current", "1.0"] }, agents: { a: {} }, failures: [`${OLD}-a`, `${OLD}-b`] },
      state: "converged",
      halted: false,
    },
    {
      name: "a host outside the app's groups is not waited for → converged",
      fixture: {
        spec: { groups: ["web"] },
        hosts: { a: ["current", "1.0"], b: ["deploying", "0.9"] },
        agents: { a: { groups: ["web"] }, b: { groups: ["db"] } },
      },
      state: "converged",
    },
  ];
  test.each(cases)("$name", ({ fixture, state, halted }) => {
    const app = appView(fixture);
    expect(app.state).toBe(state);
    if (halted !== undefined) expect(app.halted).toBe(halted);
  });
});

describe("rolloutVerdict", () => {
  const host = (state: HostView["state"], version: string, rolloutId = R): HostView => ({
    host: `h-${state}-${version}`,
    state,
    version,
    target: "1.0",
    online: state !== "offline",
    rolloutId,
    since: AT,
  });
  const rollout = { version: "1.0", rolloutId: R };
  const cases: { name: string; hosts: HostView[]; pending?: number; verdict: "converged" | "failed" | undefined }[] = [
    { name: "no host at all", hosts: [], verdict: undefined },
    { name: "every host done but a live agent still to report", hosts: [host("current", "1.0")], pending: 1, verdict: undefined },
    { name: "all current", hosts: [host("current", "1.0"), host("current", "1.0")], verdict: "converged" },
    { name: "current and failed", hosts: [host("current", "1.0"), host("failed", "0.9")], verdict: "converged" },
    { name: "all failed", hosts: [host("failed", "0.9"), host("failed", "1.0")], verdict: "failed" },
    { name: "failed on an older rollout is no verdict", hosts: [host("current", "1.0"), host("failed", "0.9", OLD)], verdict: undefined },
    { name: "current reporting the wrong version is not done", hosts: [host("current", "0.9")], verdict: undefined },
    { name: "offline running the version is done", hosts: [host("offline", "1.0", OLD)], verdict: "converged" },
    { name: "offline on another version is not", hosts: [host("current", "1.0"), host("offline", "0.9")], verdict: undefined },
    { name: "queued", hosts: [host("current", "1.0"), host("queued", "0.9")], verdict: undefined },
  ];
  test.each(cases.map((c) => ({ ...c, shown: c.verdict ?? "no verdict" })))("$name → $shown", ({ hosts, pending = 0, verdict }) => {
    expect(rolloutVerdict(hosts, pending, rollout)).toBe(verdict);
  });
});

describe("hosts, agents and counts", () => {
  test("offline hosts, pending agents and untargeted hosts", () => {
    const app = appView({
      spec: { groups: ["web"] },
      hosts: {
        a: ["current", "1.0"],
        b: ["deploying", "0.9"],
        gone: ["current", "0.9", OLD],
        db1: ["current", "0.5"],
        only: ["current", "0.9"],
      },
      agents: {
        a: { groups: ["web"] },
        b: { groups: ["web", "api"] },
        db1: { groups: ["db"] }, // reported once, no longer in the app's groups
        only: { groups: ["web"], apps: ["other"] }, // its allowlist excludes the app
        fresh: { groups: ["web"] }, // serves the app, has not reported
        allowed: { groups: ["web"], apps: ["web"] }, // allowlisted, has not reported
        db2: { groups: ["db"] }, // never served it
      },
    });
    expect(app.hosts.map((h) => [h.host, h.state, h.online])).toEqual([
      ["a", "current", true],
      ["b", "deploying", true],
      ["gone", "offline", false],
    ]);
    expect(app.hosts.find((h) => h.host === "gone")?.version).toBe("0.9"); // what it last ran
    expect(app.pendingAgents).toEqual(["fresh", "allowed"]);
    expect(app.untargetedHosts).toEqual(["db1", "only"]);
    expect(app.counts).toEqual({
      current: 1,
      queued: 0,
      deploying: 1,
      verifying: 0,
      failed: 0,
      offline: 1,
      total: 3,
      failuresThisRollout: 0,
    });
  });

  test("failed hosts carry their error; failedHosts lists this rollout's failure nodes, forgiven ones too", () => {
    const fixture: FleetFixture = {
      spec: { ignoredFailures: 1, maxFailures: 1 },
      hosts: { a: ["failed", "0.9"] },
      agents: { a: {} },
      failures: [`${R}-a`, `${R}-b`, `${OLD}-c`],
    };
    const fleet = rawFleet(fixture);
    const host = fleet.apps[0]?.hosts[0];
    if (!host) throw new Error("no host");
    host.status = {
      value: { ...hostStatus(["failed", "0.9"]), exitCode: 3, error: "deploy-cmd exited with code 3", outputTail: "boom", durationMs: 12 },
    };
    const app = buildFleetStatus(fleet).apps[0];
    expect(app?.hosts[0]).toMatchObject({
      host: "a",
      state: "failed",
      exitCode: 3,
      error: "deploy-cmd exited with code 3",
      outputTail: "boom",
      durationMs: 12,
    });
    expect(app?.failedHosts).toEqual(["a", "b"]);
    expect(app?.counts.failuresThisRollout).toBe(1);
    expect(app?.counts.failed).toBe(1);
  });

  const queueCases: {
    name: string;
    tickets: Record<string, number>;
    hosts: Record<string, Report>;
    agents?: FleetFixture["agents"];
    positions: Record<string, number | undefined>;
  }[] = [
    {
      name: "positions follow the tickets, not the order the hosts are read in",
      tickets: { c: 7, a: 3, b: 5 },
      hosts: { c: ["queued", "0.9"], a: ["queued", "0.9"], b: ["queued", "0.9"] },
      positions: { a: 1, b: 2, c: 3 },
    },
    {
      name: "gaps between tickets (waiters that left) do not count",
      tickets: { a: 2, b: 40 },
      hosts: { a: ["queued", "0.9"], b: ["queued", "0.9"] },
      positions: { a: 1, b: 2 },
    },
    {
      name: "only queued hosts show a position (a ticket on any other status is not in the queue)",
      tickets: { a: 1, b: 2 },
      hosts: { a: ["deploying", "0.9"], b: ["queued", "0.9"] },
      positions: { a: undefined, b: 1 },
    },
    {
      name: "an offline host shows no position and is not counted ahead of the others",
      tickets: { a: 1, b: 2 },
      hosts: { a: ["queued", "0.9"], b: ["queued", "0.9"] },
      agents: { b: {} },
      positions: { a: undefined, b: 1 },
    },
    {
      name: "a queued host that reported no ticket shows no position",
      tickets: {},
      hosts: { a: ["queued", "0.9"] },
      positions: { a: undefined },
    },
  ];
  test.each(queueCases)("queue: $name", ({ tickets, hosts, agents, positions }) => {
    const app = appView({ hosts, tickets, agents: agents ?? Object.fromEntries(Object.keys(hosts).map((h) => [h, {}])) });
    expect(Object.fromEntries(app.hosts.map((h) => [h.host, h.queuePosition]))).toEqual(positions);
  });

  test("invalid nodes are reported, never trusted", () => {
    const fleet: RawFleet = {
      apps: [
        {
          name: "broken",
          spec: { error: "slots: slots must be a whole number ≥ 1 or a percentage like 25%" },
          hosts: [],
          failures: [],
        },
        {
          name: "web",
          spec: { value: SAMPLE_SPEC },
          hosts: [
            { host: "a", status: { value: hostStatus(["current", "1.0"]) } },
            { host: "b", status: { error: "state: must be one of current, queued, deploying, verifying, failed" } },
          ],
          failures: [],
        },
      ],
      agents: [
        { host: "a", info: { value: agentInfo({}) } },
        { host: "b", info: { error: "pid: is missing" } },
      ],
    };
    const result = buildFleetStatus(fleet);
    expect(result.apps.map((a) => a.name)).toEqual(["web"]);
    expect(result.invalidApps).toEqual([{ name: "broken", error: "slots: slots must be a whole number ≥ 1 or a percentage like 25%" }]);
    expect(result.agents.map((a) => a.host)).toEqual(["a"]);
    expect(result.invalidNodes).toEqual([
      { path: "/agents/b", error: "pid: is missing" },
      { path: "/apps/web/hosts/b", error: "state: must be one of current, queued, deploying, verifying, failed" },
    ]);
    // b's agent is not trusted to be live, and its status is not shown: the app converged on a.
    expect(result.apps[0]?.hosts.map((h) => h.host)).toEqual(["a"]);
    expect(result.apps[0]?.state).toBe("converged");
  });
});
