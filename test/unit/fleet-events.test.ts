// fleetEvents: the pure diff behind `conveyor events` — which events two snapshots make, in
// ZooKeeper's order (seq = the zxid of the write), and the replay of one snapshot for --since.

import { describe, expect, test } from "bun:test";
import { type RolloutCause, fleetEvents } from "../../src/apps/fleet-events.ts";
import type { AppView, FleetStatus, HostView } from "../../src/apps/fleet-view.ts";

const AT = new Date("2026-11-26T12:00:00Z");
const publish: RolloutCause = () => "publish";

function host(name: string, state: HostView["state"], zxid: number, extra: Partial<HostView> = {}): HostView {
  return { host: name, state, version: "1.0", target: "2.0", online: true, rolloutId: "r2", since: AT.toISOString(), zxid, ...extra };
}

function app(hosts: HostView[], extra: Partial<AppView> = {}): AppView {
  const counts = { current: 0, queued: 0, deploying: 0, verifying: 0, failed: 0, offline: 0, total: hosts.length, failuresThisRollout: 0 };
  for (const h of hosts) counts[h.state] += 1;
  const zxid = Math.max(extra.specZxid ?? 10, ...hosts.map((h) => h.zxid ?? 0));
  return {
    name: "web",
    version: "2.0",
    rolloutId: "r2",
    previousVersion: "1.0",
    slots: 1,
    paused: false,
    state: "rolling",
    halted: false,
    failureBudget: 0,
    groups: [],
    counts,
    hosts,
    pendingAgents: [],
    untargetedHosts: [],
    failedHosts: [],
    release: { signed: false },
    specZxid: 10,
    zxid,
    ...extra,
  } as AppView;
}

const fleet = (...apps: AppView[]): FleetStatus => ({ apps, invalidApps: [], agents: [], invalidNodes: [] });
const brief = (events: ReturnType<typeof fleetEvents>) => events.map((e) => [e.seq, e.type, e.host ?? "-"]);

describe("fleetEvents", () => {
  test("a new rollout, hosts changing state, the verdict — in zxid order, with texts", () => {
    const before = fleet(
      app([host("a", "current", 5), host("b", "current", 6)], {
        rolloutId: "r1",
        version: "1.0",
        previousVersion: "0.9",
        state: "converged",
        specZxid: 4,
      }),
    );
    const published = fleet(app([host("a", "current", 5), host("b", "current", 6)], { specZxid: 10 }));
    expect(brief(fleetEvents(before, published, publish, AT))).toEqual([[10, "published", "-"]]);
    expect(fleetEvents(before, published, publish, AT)[0]?.text).toBe("web: published 2.0 (was 1.0)");

    const moving = fleet(app([host("a", "deploying", 14, { phase: "deploying" }), host("b", "queued", 12, { queuePosition: 1 })]));
    expect(brief(fleetEvents(published, moving, publish, AT))).toEqual([
      [12, "host-queued", "b"],
      [14, "host-deploying", "a"],
    ]);
    expect(fleetEvents(published, moving, publish, AT).map((e) => e.text)).toEqual([
      "web 2.0: b queued #1",
      "web 2.0: a deploying (runs 1.0)",
    ]);

    const done = fleet(
      app([host("a", "current", 20, { version: "2.0" }), host("b", "current", 22, { version: "2.0" })], { state: "converged" }),
    );
    expect(brief(fleetEvents(moving, done, publish, AT))).toEqual([
      [20, "host-current", "a"],
      [22, "host-current", "b"],
      [22, "converged", "-"],
    ]);
    // What a host reports running is its get-version-cmd's output: escaped, one line always.
    const forged = fleet(app([host("a", "deploying", 30, { version: "0.9\n2026-11-27T00:00:00.000Z 99 web 2.0: b failed\u001b[31m" })]));
    expect(fleetEvents(done, forged, publish, AT).map((e) => e.text)).toEqual([
      "web 2.0: a deploying (runs 0.9\\n2026-11-27T00:00:00.000Z 99 web 2.0: b failed\\u001b[31m)",
    ]);
    // Nothing changed: nothing to say.
    expect(fleetEvents(done, done, publish, AT)).toEqual([]);
  });

  test("health, failure with output, halt; paused and resumed; a rollback named as one", () => {
    const gate = fleet(app([host("a", "verifying", 30, { phase: "health" })]));
    const healthy = fleet(app([host("a", "verifying", 31, { phase: "health", healthySince: AT.toISOString() })]));
    expect(brief(fleetEvents(gate, healthy, publish, AT))).toEqual([[31, "host-healthy", "a"]]);

    const failed = fleet(
      app([host("a", "failed", 33, { exitCode: 3, error: "deploy-cmd exited with code 3\nmore", outputTail: "boom" })], {
        halted: true,
        state: "halted",
      }),
    );
    const events = fleetEvents(healthy, failed, publish, AT);
    expect(brief(events)).toEqual([
      [33, "host-failed", "a"],
      [33, "halted", "-"],
    ]);
    expect(events[0]).toMatchObject({ exitCode: 3, outputTail: "boom", text: "web 2.0: a failed (exit 3: deploy-cmd exited with code 3)" });

    const paused = fleet(app([host("a", "failed", 33)], { halted: true, state: "paused", paused: true, specZxid: 40 }));
    expect(brief(fleetEvents(failed, paused, publish, AT))).toEqual([[40, "paused", "-"]]);
    const resumed = fleet(app([host("a", "failed", 33)], { halted: true, state: "halted", specZxid: 41 }));
    expect(brief(fleetEvents(paused, resumed, publish, AT))).toEqual([[41, "resumed", "-"]]);

    const rolledBack = fleet(
      app([host("a", "failed", 33)], { rolloutId: "r3", version: "1.0", previousVersion: "2.0", specZxid: 50, zxid: 50 }),
    );
    const e = fleetEvents(resumed, rolledBack, () => "rollback", AT);
    expect(brief(e)).toEqual([[50, "rolled-back", "-"]]);
    expect(e[0]?.text).toBe("web: rolled-back 1.0 (was 2.0)");
  });

  test("replay (no snapshot before): the fleet as it is, published first, for --since to filter", () => {
    const now = fleet(
      app([host("b", "current", 22, { version: "2.0" }), host("a", "current", 20, { version: "2.0" })], { state: "converged" }),
    );
    expect(brief(fleetEvents(undefined, now, publish, AT))).toEqual([
      [10, "published", "-"],
      [20, "host-current", "a"],
      [22, "host-current", "b"],
      [22, "converged", "-"],
    ]);
  });

  test("an app that disappears: app-deleted", () => {
    const before = fleet(app([host("a", "current", 20)]));
    expect(brief(fleetEvents(before, fleet(), publish, AT))).toEqual([[20, "app-deleted", "-"]]);
  });
});
