// An agent's network failing mid-rollout, through its own TCP proxies (one per ensemble member):
// connections dropped and refused (block) for less and for longer than the session timeout, and
// a blackhole (stall: connections stay up, nothing moves) for longer than the session timeout.
// 5 compiled agents, slots 2; the victim is the first host to start deploying, together with a
// host waiting in the queue.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { FaultFleet } from "../harness/fault-fleet.ts";
import { poll } from "../harness/wait.ts";
import { lockDir } from "../../src/zk/paths.ts";
import { queueMembers } from "../helpers/queue-members.ts";
import { expectInvariants, report, summarise, useFaultSuite } from "./fixture.ts";

setDefaultTimeout(120_000);

const suite = useFaultSuite();
const SLOTS = 2;

/** Publishes with every deploy `first` seconds; once the first host starts, the others get
 *  `rest` seconds. Returns the first (deploying) host and one host waiting in the queue. */
async function rolloutWithVictims(
  fleet: FaultFleet,
  first: number,
  rest: number,
): Promise<{ deploying: string; queued: string; publishedAt: number }> {
  fleet.setDeploySeconds(first);
  const pub = await fleet.publish("1.0", { slots: SLOTS });
  const start = await fleet.waitForStart(() => true, 15_000);
  fleet.setDeploySeconds(
    rest,
    fleet.hosts.filter((h) => h !== start.host),
  );
  const queued = await poll(
    async () => {
      const members = await queueMembers(fleet.admin, lockDir(fleet.app));
      return members.map((n) => n.host).find((h) => h !== start.host);
    },
    10_000,
    "a host waiting in the queue",
  );
  return { deploying: start.host, queued, publishedAt: pub.at };
}

function lostLogged(fleet: FaultFleet, host: string): boolean {
  return /zookeeper lost/.test(fleet.agent(host).proc.output);
}

describe("agent network faults mid-rollout", () => {
  test("connections refused 1 s (< 3 s session) for a deploying and a queued agent: same sessions, never more than the slots, converges within 20 s of publish", async () => {
    const CONVERGE_BOUND_MS = 20_000;
    const fleet = await suite.fleet({ prefix: "block-short", hosts: 5, sessionTimeoutMs: 3_000 });
    const { deploying, queued, publishedAt } = await rolloutWithVictims(fleet, 1.5, 1.5);
    fleet.block(deploying);
    fleet.block(queued);
    await Bun.sleep(1_000);
    fleet.unblock(deploying);
    fleet.unblock(queued);
    const unblockedAt = Date.now();
    const { convergedAt, quietMs, check } = await fleet.settle("1.0", CONVERGE_BOUND_MS, 10_000);
    report("proxy block 1 s < session 3 s", {
      convergeFromUnblockMs: convergedAt - unblockedAt,
      convergeFromPublishMs: convergedAt - publishedAt,
      quietAfterConvergeMs: quietMs,
      sessionLost: [deploying, queued].filter((h) => lostLogged(fleet, h)).length,
      ...summarise(check),
    });
    expect(lostLogged(fleet, deploying)).toBe(false);
    expect(lostLogged(fleet, queued)).toBe(false);
    expect(convergedAt - publishedAt).toBeLessThan(CONVERGE_BOUND_MS);
    expectInvariants(check, { strict: true });
  });

  for (const mode of ["block", "stall"] as const) {
    test(`connections ${mode === "block" ? "refused" : "blackholed (stall)"} 4 s (> 2 s session) for a deploying (6 s) and a queued agent: new sessions, the excess while the deploy ran without a session is measured, converges within 25 s of the heal`, async () => {
      const CONVERGE_BOUND_MS = 25_000;
      const fleet = await suite.fleet({ prefix: `${mode}-long`, hosts: 5, sessionTimeoutMs: 2_000 });
      const { deploying, queued, publishedAt } = await rolloutWithVictims(fleet, 6, 1.5);
      fleet.hold(deploying); // still deploying when its agent is back, however long that takes
      const cutAt = Date.now();
      for (const h of [deploying, queued]) mode === "block" ? fleet.block(h) : fleet.stall(h);
      await Bun.sleep(4_000);
      for (const h of [deploying, queued]) mode === "block" ? fleet.unblock(h) : fleet.resume(h);
      const healedAt = Date.now();
      const agent = fleet.agent(deploying).proc;
      await agent.waitForLog(/lease re-created/, 10_000);
      const restoredAt = Date.now();
      fleet.release(deploying);

      const { convergedAt, quietMs, check } = await fleet.settle("1.0", CONVERGE_BOUND_MS, 15_000);
      const lostLine = /(\S+) INFO zookeeper lost/.exec(agent.output)?.[1];
      report(`proxy ${mode} 4 s > session 2 s`, {
        agentDeclaredLostAfterCutMs: lostLine ? Date.parse(lostLine) - cutAt : null,
        leaseRecreatedAfterHealMs: restoredAt - healedAt,
        convergeFromHealMs: convergedAt - healedAt,
        convergeFromPublishMs: convergedAt - publishedAt,
        quietAfterConvergeMs: quietMs,
        maxLeasesSeen: fleet.monitor.maxLeases,
        ...summarise(check),
      });
      if (check.concurrency.allowedExcess > 0) {
        console.log(
          `[faults] proxy ${mode} > session: allowed excess measured: ${check.concurrency.allowedExcess} over ${SLOTS} slots for ${check.concurrency.allowedExcessMs} ms`,
        );
      }
      expect(lostLogged(fleet, deploying)).toBe(true);
      expect(lostLogged(fleet, queued)).toBe(true);
      expect(convergedAt - healedAt).toBeLessThan(CONVERGE_BOUND_MS);
      expectInvariants(check, { strict: false });
    });
  }
});
