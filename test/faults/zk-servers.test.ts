// ZooKeeper servers failing during a rollout: the leader killed and restarted, a follower
// restarted (server-restart-scenarios.ts; zk-servers-tls.test.ts runs them over TLS), every
// server down for less and for longer than the agents' session timeout.
// 5 compiled agents (each through its own proxies to the 3 members), slots 2, 1 s deploys.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { expectInvariants, report, summarise, useFaultSuite } from "./fixture.ts";
import { followerRestarted, leaderKilledAndRestarted } from "./server-restart-scenarios.ts";

setDefaultTimeout(120_000);

const suite = useFaultSuite();
const SLOTS = 2;

/** A healthy rollout of 5 hosts, 2 at a time, 1 s each, takes ~3.5 s; every bound below is that
 *  plus the fault's own length plus generous headroom for a loaded 2-core CI machine. */
describe("ZooKeeper servers fail mid-rollout", () => {
  test("leader killed mid-rollout and restarted: sessions survive, ≤ slots, converges within 20 s of publish", () =>
    leaderKilledAndRestarted(suite, "leader killed + restarted"));

  test("a follower restarted mid-rollout: sessions survive, ≤ slots, converges within 20 s of publish", () =>
    followerRestarted(suite, "follower restarted"));

  test("all servers down for less than the session timeout (6 s): sessions survive, ≤ slots, converges within 20 s of restart", async () => {
    const CONVERGE_BOUND_MS = 20_000;
    const fleet = await suite.fleet({ prefix: "alldown-short", hosts: 5, sessionTimeoutMs: 6_000 });
    const ens = suite.ens.ensemble;
    fleet.setDeploySeconds(1.5);
    const pub = await fleet.publish("1.0", { slots: SLOTS });
    await fleet.waitForStart(() => true, 15_000);
    const sessionsBefore = await agentSessions(fleet.hosts.map((h) => fleet.agent(h).proc.output));

    const heal = fleet.beginFault("all servers down (short)");
    const downAt = Date.now();
    await Promise.all(ens.members.map((m) => ens.kill(m.id, "SIGKILL")));
    await Bun.sleep(1_000);
    await Promise.all(ens.members.map((m) => ens.start(m.id)));
    await ens.waitForQuorum();
    const upAt = Date.now();
    heal();

    const { convergedAt, quietMs, check } = await fleet.settle("1.0", CONVERGE_BOUND_MS, 15_000);
    const lostLogged = fleet.hosts.filter((h) => /zookeeper lost/.test(fleet.agent(h).proc.output));
    report("all servers down < session timeout", {
      outageMs: upAt - downAt,
      sessionTimeoutMs: 6_000,
      sessionsLost: lostLogged.length,
      convergeFromRestartMs: convergedAt - upAt,
      convergeFromPublishMs: convergedAt - pub.at,
      quietAfterConvergeMs: quietMs,
      ...summarise(check),
    });
    expect(sessionsBefore.length).toBe(5);
    expect(upAt - downAt).toBeLessThan(6_000);
    expect(lostLogged).toEqual([]);
    expect(convergedAt - upAt).toBeLessThan(CONVERGE_BOUND_MS);
    expectInvariants(check, { strict: true });
  });

  test("all servers down for longer than the session timeout (2 s): new sessions, ≤ slots except deploys that lost theirs, converges within 25 s of restart", async () => {
    const CONVERGE_BOUND_MS = 25_000;
    const fleet = await suite.fleet({ prefix: "alldown-long", hosts: 5, sessionTimeoutMs: 2_000 });
    const ens = suite.ens.ensemble;
    // One host's deploy is long (8 s, and held until its lease is re-created), so it is still
    // running when every agent declares its session lost and comes back with a new one, however
    // long the servers take to restart.
    const longHost = fleet.hosts[0] ?? "";
    fleet.setDeploySeconds(1);
    fleet.setDeploySeconds(8, [longHost]);
    fleet.hold(longHost);
    const pub = await fleet.publish("1.0", { slots: SLOTS });
    await fleet.waitForStart((l) => l.host === longHost, 15_000);

    const heal = fleet.beginFault("all servers down (long)");
    const downAt = Date.now();
    await Promise.all(ens.members.map((m) => ens.kill(m.id, "SIGKILL")));
    await Bun.sleep(4_000);
    await Promise.all(ens.members.map((m) => ens.start(m.id)));
    await ens.waitForQuorum();
    const upAt = Date.now();
    heal();
    await fleet.agent(longHost).proc.waitForLog(/lease re-created/, 20_000);
    fleet.release(longHost);

    const { convergedAt, quietMs, check } = await fleet.settle("1.0", CONVERGE_BOUND_MS, 15_000);
    const lostLogged = fleet.hosts.filter((h) => /zookeeper lost/.test(fleet.agent(h).proc.output));
    const restored = fleet.hosts.filter((h) => /lease re-created/.test(fleet.agent(h).proc.output));
    report("all servers down > session timeout", {
      outageMs: upAt - downAt,
      sessionTimeoutMs: 2_000,
      agentsThatLostSession: lostLogged.length,
      leasesRecreated: restored.length,
      convergeFromRestartMs: convergedAt - upAt,
      convergeFromPublishMs: convergedAt - pub.at,
      quietAfterConvergeMs: quietMs,
      maxLeasesSeen: fleet.monitor.maxLeases,
      ...summarise(check),
    });
    expect(lostLogged.length).toBe(5);
    expect(restored).toContain(longHost);
    expect(convergedAt - upAt).toBeLessThan(CONVERGE_BOUND_MS);
    expectInvariants(check, { strict: false });
  });
});

/** Session ids each agent logged at start. */
async function agentSessions(outputs: string[]): Promise<string[]> {
  return outputs.map((o) => /agent started .*session=([0-9a-f]{16})/.exec(o)?.[1]).filter((s): s is string => s !== undefined);
}
