// Operators (and CI) acting mid-rollout: slots lowered and raised, the app deleted (and created
// again), a new version published, two publishers racing. 5–7 compiled agents on the ensemble.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { poll } from "../harness/wait.ts";
import { analyseConcurrency, pairDeploys } from "../harness/fault-log.ts";
import { OperationError } from "../../src/apps/errors.ts";
import { readHistory } from "../../src/apps/history.ts";
import type { MutationContext } from "../../src/apps/mutate-app.ts";
import { publishApp } from "../../src/apps/publish.ts";
import { readApp } from "../../src/apps/read-app.ts";
import { setSlots } from "../../src/apps/set-slots.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { appPath } from "../../src/zk/paths.ts";
import { expectInvariants, report, summarise, useFaultSuite } from "./fixture.ts";

setDefaultTimeout(120_000);

const suite = useFaultSuite();

describe("operator actions mid-rollout", () => {
  test("slots lowered 3 → 1 and raised 1 → 3 mid-rollout: each admission obeys the slots in force, both changes take effect live, converges within 25 s", async () => {
    const CONVERGE_BOUND_MS = 25_000;
    const fleet = await suite.fleet({ prefix: "slots", hosts: 7, sessionTimeoutMs: 3_000, deploySeconds: 1.5 });
    const pub = await fleet.publish("1.0", { slots: 3 });
    await poll(() => fleet.lines().filter((l) => l.kind === "start").length >= 3, 15_000, "3 deploys to start");
    const lowered = await fleet.setSlots(1);
    // After the lowering, the next admission waits until every running deploy has ended.
    const afterLower = await fleet.waitForStart((l) => l.at > lowered.at, 15_000);
    await Bun.sleep(300);
    const raised = await fleet.setSlots(3);
    const afterRaise = await fleet.waitForStart((l) => l.at > raised.at, 15_000);

    const { convergedAt, quietMs, check } = await fleet.settle("1.0", CONVERGE_BOUND_MS, 10_000);
    const lines = fleet.lines();
    const endsBeforeLowerStart = lines.filter((l) => l.kind === "end" && l.line < afterLower.line).length;
    const startsBeforeLowerStart = lines.filter((l) => l.kind === "start" && l.line < afterLower.line).length;
    // Width after the raise: open deploys right after the raise's admissions.
    const afterRaiseWidth = analyseConcurrency(
      lines.filter((l) => l.at >= raised.at - 2_000),
      [{ from: 0, to: 0, slots: 3 }],
      [],
      [],
      [],
    ).maxConcurrent;
    report("slots lowered 3→1 then raised 1→3", {
      setSlotsCliMs: [lowered.ms, raised.ms],
      firstStartAfterLowerMs: afterLower.at - lowered.at,
      runningWhenLoweredStartWasAdmitted: startsBeforeLowerStart - endsBeforeLowerStart,
      firstStartAfterRaiseMs: afterRaise.at - raised.at,
      widthAfterRaise: afterRaiseWidth,
      convergeFromPublishMs: convergedAt - pub.at,
      quietAfterConvergeMs: quietMs,
      ...summarise(check),
    });
    // Lowered: the first admission after it came only once nothing else ran.
    expect(startsBeforeLowerStart - endsBeforeLowerStart).toBe(0);
    // Raised: a queued host was admitted at once (the mutex holder watches the app node).
    expect(afterRaise.at - raised.at).toBeLessThan(1_000);
    expect(afterRaiseWidth).toBeGreaterThanOrEqual(2);
    expect(convergedAt - pub.at).toBeLessThan(CONVERGE_BOUND_MS);
    expectInvariants(check, { strict: true });
  });

  test("app deleted mid-rollout: running deploys finish, nobody starts another, no node of the app is re-created; published again, all converge within 20 s", async () => {
    const CONVERGE_BOUND_MS = 20_000;
    const fleet = await suite.fleet({ prefix: "delete", hosts: 5, sessionTimeoutMs: 3_000, deploySeconds: 1.5 });
    await fleet.publish("1.0", { slots: 2 });
    await poll(() => fleet.lines().filter((l) => l.kind === "start").length >= 2, 15_000, "2 deploys to start");
    const deleted = await fleet.deleteApp();
    const removedLogged = await Promise.all(
      fleet.hosts.map((h) =>
        fleet
          .agent(h)
          .proc.waitForLog(/app removed/, 10_000)
          .then(() => Date.now()),
      ),
    );
    // Let every deploy that was running end, and give agents time to (wrongly) write anything.
    await poll(() => pairDeploys(fleet.lines()).every((d) => d.end !== undefined), 10_000, "running deploys to end");
    await Bun.sleep(1_000);
    const startedAfterDelete = fleet.lines().filter((l) => l.kind === "start" && l.at > deleted.at + 500);
    await fleet.syncAdmin(); // deleted by the CLI, through another server perhaps
    const appNode = await fleet.admin.exists(appPath(fleet.app));
    const linesBefore = fleet.lineCount();

    const pub = await fleet.publish("2.0", { slots: 2 });
    const { convergedAt, quietMs, check } = await fleet.settle("2.0", CONVERGE_BOUND_MS, 10_000);
    report("app deleted mid-rollout, then published again", {
      deleteCliMs: deleted.ms,
      agentsNoticedDeleteMs: Math.max(...removedLogged) - deleted.at,
      startsAfterDelete: startedAfterDelete.length,
      deploysOfSecondPublish: pairDeploys(fleet.lines(linesBefore)).length,
      convergeFromRepublishMs: convergedAt - pub.at,
      quietAfterConvergeMs: quietMs,
      ...summarise(check),
    });
    expect(startedAfterDelete).toEqual([]);
    expect(appNode).toBeNull();
    expect(convergedAt - pub.at).toBeLessThan(CONVERGE_BOUND_MS);
    // The deploys cut off by the delete lost their leases with the app (recorded as a fault);
    // nothing ran concurrently with them anyway.
    expect(check.concurrency.maxConcurrent).toBeLessThanOrEqual(2);
    expectInvariants(check, { strict: false });
  });

  test("a new version published mid-rollout: queued hosts deploy the newest version directly, ≤ slots, all converge on it within 20 s", async () => {
    const CONVERGE_BOUND_MS = 20_000;
    const fleet = await suite.fleet({ prefix: "newver", hosts: 5, sessionTimeoutMs: 3_000, deploySeconds: 1 });
    await fleet.publish("1.0", { slots: 2 });
    await poll(() => fleet.lines().filter((l) => l.kind === "start").length >= 2, 15_000, "2 deploys to start");
    const pub2 = await fleet.publish("2.0");
    const { convergedAt, quietMs, check } = await fleet.settle("2.0", CONVERGE_BOUND_MS, 10_000);
    const deploys = pairDeploys(fleet.lines());
    const staleStarts = deploys.filter((d) => d.version === "1.0" && d.start > pub2.at + 500);
    report("new version published mid-rollout", {
      deploysOf1: deploys.filter((d) => d.version === "1.0").length,
      deploysOf2: deploys.filter((d) => d.version === "2.0").length,
      staleStartsAfterPublish: staleStarts.length,
      convergeFromSecondPublishMs: convergedAt - pub2.at,
      quietAfterConvergeMs: quietMs,
      ...summarise(check),
    });
    expect(staleStarts).toEqual([]);
    expect(
      deploys
        .filter((d) => d.version === "2.0")
        .map((d) => d.host)
        .sort(),
    ).toEqual([...fleet.hosts].sort());
    expect(convergedAt - pub2.at).toBeLessThan(CONVERGE_BOUND_MS);
    expectInvariants(check, { strict: true });
  });

  test("two publishers racing mid-rollout: one wins and the other fails clearly (or is merged) — no update is lost; all converge on the final version within 20 s", async () => {
    const CONVERGE_BOUND_MS = 20_000;
    const ROUNDS = 6;
    const fleet = await suite.fleet({ prefix: "race", hosts: 5, sessionTimeoutMs: 3_000, deploySeconds: 0.5 });
    await fleet.publish("1.0", { slots: 2 });
    await fleet.waitForStart(() => true, 15_000);

    // 1. Through the CLI: pairs of `app create` started together.
    const outcomes: { version: string; code: number; stderr: string }[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const versions = [`2.${i}.a`, `2.${i}.b`];
      const results = await Promise.all(versions.map((v) => fleet.cli(["app", "create", fleet.app, v])));
      results.forEach((r, j) => {
        outcomes.push({ version: versions[j] ?? "", code: r.code, stderr: r.stderr.trim() });
      });
    }
    const won = outcomes.filter((o) => o.code === 0).map((o) => o.version);
    const lost = outcomes.filter((o) => o.code !== 0);
    await fleet.syncAdmin(); // written by the CLI, through other servers perhaps
    const history = (await readHistory(fleet.admin, fleet.app, 200)).flatMap((r) =>
      "action" in r && r.action === "publish" ? [r.to ?? ""] : [],
    );
    for (const o of lost) {
      expect(o.code).toBe(1);
      expect(o.stderr).toMatch(/published concurrently .*not overwriting/);
    }
    // Every successful publish is in the history exactly once; no failed one is.
    expect([...history].sort()).toEqual([...won].sort());

    // 2. In process, forcing the interleaving: A reads the app, B writes, then A writes.
    const ctx = (actor: string): MutationContext => ({ actor, now: () => new Date() });
    const connect = suite.ens.connectString + fleet.options.chroot;
    const a = await ZkClient.connect({ connectString: connect });
    const b = await ZkClient.connect({ connectString: connect });
    try {
      const interleave = (after: () => Promise<unknown>): void => {
        const get = a.get.bind(a);
        let done = false;
        a.get = async (path, watcher) => {
          const result = await get(path, watcher);
          if (!done && path === appPath(fleet.app)) {
            done = true;
            await after();
          }
          return result;
        };
      };
      // B publishes between A's read and A's write: A must refuse, not overwrite B's version.
      interleave(() => publishApp(b, fleet.app, "3.0.b", {}, ctx("publisher-b")));
      const refused = await publishApp(a, fleet.app, "3.0.a", {}, ctx("publisher-a")).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(OperationError);
      expect(String(refused)).toMatch(/published concurrently by publisher-b \(now 3\.0\.b\)/);
      expect((await readApp(a, fleet.app)).spec.version).toBe("3.0.b");

      // set-slots between A's read and A's write: A's publish is merged on top of it.
      interleave(() => setSlots(b, fleet.app, 3, ctx("operator-b")));
      const from = Date.now();
      await publishApp(a, fleet.app, "4.0", {}, ctx("publisher-a"));
      fleet.slotChanges.push({ from, to: Date.now(), slots: 3 }); // for the checker's limit timeline
      const merged = (await readApp(a, fleet.app)).spec;
      expect({ version: merged.version, slots: merged.slots, previousVersion: merged.previousVersion }).toEqual({
        version: "4.0",
        slots: 3,
        previousVersion: "3.0.b",
      });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }

    const lastPublishAt = Date.now();
    const { convergedAt, quietMs, check } = await fleet.settle("4.0", CONVERGE_BOUND_MS, 10_000);
    report("two publishers racing", {
      cliPairs: ROUNDS,
      cliWon: won.length,
      cliRefused: lost.length,
      convergeFromLastPublishMs: convergedAt - lastPublishAt,
      quietAfterConvergeMs: quietMs,
      ...summarise(check),
    });
    expectInvariants(check, { strict: true });
  });
});
