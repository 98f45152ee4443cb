// The ticket queue under faults, with compiled agents on a 3-node ensemble: a waiter killed in
// the middle of the queue (its successor walks past its ticket; the rest keep their order), and
// a late joiner after a run of sequence gaps longer than the walk (it finds its place with one
// listing). 5 agents, slots 1, session 2 s.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { lockDir } from "../../src/zk/paths.ts";
import { MAX_WALK } from "../../src/zk/recipes/ticket-queue.ts";
import { queueMembers } from "../helpers/queue-members.ts";
import { poll } from "../harness/wait.ts";
import { expectInvariants, report, summarise, useFaultSuite } from "./fixture.ts";

setDefaultTimeout(120_000);

const suite = useFaultSuite();
const SESSION_MS = 2_000;
const CONVERGE_BOUND_MS = 30_000;

describe("ticket queue under faults", () => {
  test("a waiter killed in the middle of the queue: the others are admitted in queue order, ≤ slots, converge", async () => {
    const fleet = await suite.fleet({ prefix: "tq-mid", hosts: 5, sessionTimeoutMs: SESSION_MS });
    fleet.setDeploySeconds(1.5);
    const pub = await fleet.publish("1.0", { slots: 1 });
    const first = await fleet.waitForStart(() => true, 15_000);
    // Everyone else queued behind the first: their order is their tickets'.
    const queue = await poll(
      async () => {
        const members = await queueMembers(fleet.admin, lockDir(fleet.app));
        return members.length === 4 ? members.map((m) => m.host) : undefined;
      },
      10_000,
      "four hosts in the queue",
    );
    const victim = queue[1] ?? "";
    const killedAt = await fleet.kill9(victim);
    const survivors = queue.filter((h) => h !== victim);
    const { convergedAt, quietMs, check } = await fleet.settle(
      "1.0",
      CONVERGE_BOUND_MS,
      10_000,
      fleet.hosts.filter((h) => h !== victim),
    );
    const starts = fleet
      .lines()
      .filter((l) => l.kind === "start" && l.host !== first.host)
      .map((l) => l.host);
    report("ticket queue: waiter killed mid-queue", {
      queue,
      victim,
      starts,
      killedAfterPublishMs: killedAt - pub.at,
      convergeFromPublishMs: convergedAt - pub.at,
      quietAfterConvergeMs: quietMs,
      ...summarise(check),
    });
    expect(starts).toEqual(survivors);
    expect(fleet.installed(victim)).not.toBe("1.0");
    expect(convergedAt - pub.at).toBeLessThan(CONVERGE_BOUND_MS);
    expectInvariants(check, { strict: true });
  });

  test(`a late joiner after more than ${MAX_WALK} sequence gaps is queued behind the rest and admitted in turn`, async () => {
    const fleet = await suite.fleet({ prefix: "tq-late", hosts: 5, sessionTimeoutMs: SESSION_MS });
    const late = fleet.hosts.at(-1) ?? "";
    await fleet.kill9(late); // not there yet: it joins later
    await fleet.waitSessionExpired(late, SESSION_MS + 8_000);
    fleet.setDeploySeconds(1);
    const pub = await fleet.publish("1.0", { slots: 1 });
    await fleet.waitForStart(() => true, 15_000);
    // A run of other sequential nodes created and deleted under lock/: each takes a number no ticket has.
    for (let i = 0; i < MAX_WALK + 8; i++) {
      await fleet.admin.delete(await fleet.admin.create(`${lockDir(fleet.app)}/gap-`, Buffer.alloc(0), "persistentSequential"));
    }
    const before = (await queueMembers(fleet.admin, lockDir(fleet.app))).map((m) => m.host);
    await fleet.restart(late);
    const { convergedAt, quietMs, check } = await fleet.settle("1.0", CONVERGE_BOUND_MS, 10_000);
    const starts = fleet
      .lines()
      .filter((l) => l.kind === "start")
      .map((l) => l.host);
    report("ticket queue: late joiner after gaps", {
      queuedBefore: before,
      starts,
      convergeFromPublishMs: convergedAt - pub.at,
      quietAfterConvergeMs: quietMs,
      ...summarise(check),
    });
    // Everyone queued before it went first; it went last, once.
    expect(starts.at(-1)).toBe(late);
    expect(starts.filter((h) => h === late)).toHaveLength(1);
    for (const host of before) expect(starts.indexOf(host)).toBeLessThan(starts.indexOf(late));
    expect(convergedAt - pub.at).toBeLessThan(CONVERGE_BOUND_MS);
    expectInvariants(check, { strict: true });
  });
});
