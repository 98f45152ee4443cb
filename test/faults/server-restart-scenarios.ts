// The leader killed and restarted, and a follower restarted, mid-rollout: run over plain TCP by
// zk-servers.test.ts and over mutual TLS by zk-servers-tls.test.ts — the same scenario, the
// same bounds, so TLS must change nothing about how the fleet rides out a server failure.
// 5 compiled agents (each through its own proxies to the 3 members), slots 2, 1 s deploys.

import { expect } from "bun:test";
import type { FaultFleet } from "../harness/fault-fleet.ts";
import { type FaultSuite, expectInvariants, report, summarise } from "./fixture.ts";

const SLOTS = 2;
/** A healthy rollout of 5 hosts, 2 at a time, 1 s each, takes ~3.5 s; the bound is that plus
 *  the restart plus generous headroom for a loaded 2-core CI machine. */
const CONVERGE_BOUND_MS = 20_000;

export async function leaderKilledAndRestarted(suite: FaultSuite, label: string): Promise<void> {
  const fleet = await suite.fleet({ prefix: "leader", hosts: 5, sessionTimeoutMs: 3_000 });
  const ens = suite.ens.ensemble;
  const pub = await fleet.publish("1.0", { slots: SLOTS });
  await fleet.waitForStart(() => true, 15_000);

  const heal = fleet.beginFault("leader killed");
  const { killed, leader, electionMs } = await ens.killLeader();
  const t0 = Date.now();
  await ens.start(killed);
  const restartMs = Date.now() - t0;
  heal();

  await convergesWithin(fleet, pub.at, label, { killed, newLeader: leader, electionMs, restartMs });
}

export async function followerRestarted(suite: FaultSuite, label: string): Promise<void> {
  const fleet = await suite.fleet({ prefix: "follower", hosts: 5, sessionTimeoutMs: 3_000 });
  const ens = suite.ens.ensemble;
  const pub = await fleet.publish("1.0", { slots: SLOTS });
  await fleet.waitForStart(() => true, 15_000);

  const leader = await ens.leader();
  const follower = ens.members.find((m) => m.id !== leader)?.id ?? 1;
  const heal = fleet.beginFault("follower restarted");
  const t0 = Date.now();
  await ens.kill(follower, "SIGKILL");
  await ens.start(follower);
  const restartMs = Date.now() - t0;
  heal();

  await convergesWithin(fleet, pub.at, label, { follower, restartMs });
}

/** Every host reaches 1.0 within the bound of the publish, with no invariant broken on the way. */
async function convergesWithin(fleet: FaultFleet, publishedAt: number, label: string, measured: Record<string, number>): Promise<void> {
  const { convergedAt, quietMs, check } = await fleet.settle("1.0", CONVERGE_BOUND_MS, 10_000);
  report(label, {
    ...measured,
    convergeFromPublishMs: convergedAt - publishedAt,
    quietAfterConvergeMs: quietMs,
    ...summarise(check),
  });
  expect(convergedAt - publishedAt).toBeLessThan(CONVERGE_BOUND_MS);
  expectInvariants(check, { strict: true });
}
