// Nodes of the tree deleted by hand (as `zkCli deleteall` would) while agents run: each
// directory an app owns (lock, leases, hosts, failures, canary) and /agents. Agents used to take
// a missing directory for "app deleted" and stop serving the app with no log line, and never
// noticed their presence node was gone. Now the directory is re-created (and logged), a deleted
// lease of a running deploy is re-created, a deleted status node is written again, and a deleted
// presence node is registered again. 3 compiled agents on the ensemble.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { poll } from "../harness/wait.ts";
import type { FaultFleet } from "../harness/fault-fleet.ts";
import { readFleetStatus } from "../../src/apps/fleet-status.ts";
import { AGENTS, agentPath, canaryDir, failuresDir, hostStatusPath, hostsDir, leasesDir, lockDir } from "../../src/zk/paths.ts";
import { startAgent } from "../harness/agent-process.ts";
import { expectInvariants, report, summarise, useFaultSuite } from "./fixture.ts";

setDefaultTimeout(120_000);

const suite = useFaultSuite();
const SESSION_MS = 3_000;
const REPAIRED = /re-created a missing node of the app/;
const LEASE_RE_CREATED = /lease deleted by someone else while its deploy runs; re-created/;

/** Every agent of the fleet logged that it re-created a node (at least one did, for `any`). */
async function repairLogged(fleet: FaultFleet, any = true): Promise<number> {
  const logged = () => fleet.hosts.filter((h) => REPAIRED.test(fleet.agent(h).proc.output)).length;
  await poll(() => (any ? logged() > 0 : logged() === fleet.hosts.length), 15_000, "an agent to log the re-creation");
  return logged();
}

async function queued(fleet: FaultFleet, n: number): Promise<void> {
  await poll(async () => (await fleet.admin.children(lockDir(fleet.app))).length === n, 15_000, `${n} hosts to queue`, 20);
}

describe("structural nodes deleted by hand", () => {
  test("leases/ deleted while every host queues behind a pause: re-created, the rollout goes on after resume (it used to stall for good, lock/ empty)", async () => {
    const fleet = await suite.fleet({ prefix: "noleases", hosts: 3, sessionTimeoutMs: SESSION_MS, deploySeconds: 0.5 });
    await fleet.publish("1.0", { slots: 1 });
    await fleet.settle("1.0", 20_000, 10_000);
    expect((await fleet.cli(["app", "pause", fleet.app])).code).toBe(0);
    await fleet.publish("2.0");
    await queued(fleet, 3);
    await fleet.admin.deleteRecursive(leasesDir(fleet.app));
    const agentsLogged = await repairLogged(fleet);
    await queued(fleet, 3); // everybody queues again (the old code left lock/ empty)
    expect((await fleet.cli(["app", "resume", fleet.app])).code).toBe(0);
    const { check } = await fleet.settle("2.0", 20_000, 10_000);
    report("leases/ deleted while queued", { agentsLogged, ...summarise(check) });
    expect(await fleet.admin.exists(leasesDir(fleet.app))).not.toBeNull();
    expectInvariants(check, { strict: true });
  });

  test("lock/ deleted mid-rollout (one deploying, two queued): the queue is re-created and re-joined, never more than 1 deploy, converges", async () => {
    const fleet = await suite.fleet({ prefix: "nolock", hosts: 3, sessionTimeoutMs: SESSION_MS, deploySeconds: 2 });
    await fleet.publish("1.0", { slots: 1 });
    await fleet.waitForStart(() => true, 15_000);
    await queued(fleet, 2);
    await fleet.admin.deleteRecursive(lockDir(fleet.app));
    const agentsLogged = await repairLogged(fleet);
    const { check } = await fleet.settle("1.0", 30_000, 10_000);
    report("lock/ deleted mid-rollout", { agentsLogged, ...summarise(check) });
    expectInvariants(check, { strict: true });
  });

  test("leases/ deleted while a deploy runs: its lease is re-created at once and keeps counting — after resume nobody else starts until that deploy ends", async () => {
    const fleet = await suite.fleet({ prefix: "leasegone", hosts: 3, sessionTimeoutMs: SESSION_MS, deploySeconds: 3 });
    await fleet.publish("1.0", { slots: 1 });
    const first = await fleet.waitForStart(() => true, 15_000);
    await queued(fleet, 2);
    // Paused, so nobody can be admitted in the moment between the deletion and the re-creation
    // (an unpaused waiter may win that race: the excess docs/RELIABILITY.md allows for a lease
    // lost while its deploy runs). What is tested: the lease comes back and counts.
    expect((await fleet.cli(["app", "pause", fleet.app])).code).toBe(0);
    const end = fleet.beginFault("leases deleted"); // the re-created lease is expected evidence
    await fleet.admin.deleteRecursive(leasesDir(fleet.app));
    await fleet.agent(first.host).proc.waitForLog(LEASE_RE_CREATED, 10_000);
    end();
    await fleet.syncAdmin(); // the agent's create went through another server, perhaps
    expect(await fleet.admin.children(leasesDir(fleet.app))).toHaveLength(1);
    expect((await fleet.cli(["app", "resume", fleet.app])).code).toBe(0);
    const { check } = await fleet.settle("1.0", 30_000, 10_000);
    const firstEnd = fleet.lines().find((l) => l.kind === "end" && l.pid === first.pid);
    const startedDuring = fleet
      .lines()
      .filter((l) => l.kind === "start" && l.pid !== first.pid && firstEnd !== undefined && l.at < firstEnd.at);
    const reCreated = fleet.agent(first.host).proc.output.match(new RegExp(LEASE_RE_CREATED, "g")) ?? [];
    report("leases/ deleted during a deploy", {
      startedDuringFirst: startedDuring.length,
      leaseReCreated: reCreated.length,
      ...summarise(check),
    });
    expect(startedDuring).toEqual([]);
    // Once: the new lease took the old one's name (leases/ numbers from 0 again), and releasing
    // "the old one" used to delete it — re-created a second time, after a window with no lease.
    expect(reCreated).toHaveLength(1);
    expect(check.concurrency.maxConcurrent).toBe(1);
    expectInvariants(check, { strict: false });
  });

  test("hosts/ deleted after convergence and mid-rollout: every host writes its status again; status and the next rollout see all hosts", async () => {
    const fleet = await suite.fleet({ prefix: "nohosts", hosts: 3, sessionTimeoutMs: SESSION_MS, deploySeconds: 1 });
    await fleet.publish("1.0", { slots: 1 });
    await fleet.settle("1.0", 20_000, 10_000);
    await fleet.admin.deleteRecursive(hostsDir(fleet.app));
    // Settled hosts notice their own node is gone and write it again (the directory with it).
    await poll(
      async () => (await Promise.all(fleet.hosts.map((h) => fleet.admin.exists(hostStatusPath(fleet.app, h))))).every((s) => s !== null),
      15_000,
      "every status node to be written again",
    );
    const status = await readFleetStatus(fleet.admin, fleet.app);
    expect(status.apps[0]?.state).toBe("converged");
    expect(status.apps[0]?.counts.current).toBe(3);

    const from = fleet.lineCount();
    await fleet.publish("2.0");
    await fleet.waitForStart(() => true, 15_000, from);
    await fleet.admin.deleteRecursive(hostsDir(fleet.app));
    const { check } = await fleet.settle("2.0", 30_000, 10_000);
    report("hosts/ deleted", summarise(check));
    expectInvariants(check, { strict: true });
  });

  test("failures/ deleted before a failing rollout: the failure is still recorded and the rollout halts (it used to stall silently)", async () => {
    const fleet = await suite.fleet({ prefix: "nofailures", hosts: 3, sessionTimeoutMs: SESSION_MS, deploySeconds: 0.5 });
    await fleet.publish("1.0", { slots: 1 });
    await fleet.settle("1.0", 20_000, 10_000);
    await fleet.admin.deleteRecursive(failuresDir(fleet.app));
    const bad = await fleet.cli([
      "app",
      "create",
      fleet.app,
      "2.0",
      "--deploy-cmd",
      "echo broken >&2; exit 7",
      "--wait",
      "--wait-timeout",
      "30s",
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("halted");
    await fleet.syncAdmin(); // written by an agent and the CLI, through other servers perhaps
    const failures = await fleet.admin.children(failuresDir(fleet.app));
    report("failures/ deleted", { failures: failures.length, exit: bad.code });
    expect(failures.length).toBe(1);
    const status = await readFleetStatus(fleet.admin, fleet.app);
    expect(status.apps[0]?.state).toBe("halted");
  });

  test("canary/ deleted: a canary rollout still admits its one host, then the rest after promote", async () => {
    const fleet = await suite.fleet({ prefix: "nocanary", hosts: 3, sessionTimeoutMs: SESSION_MS, deploySeconds: 0.5 });
    await fleet.publish("1.0", { slots: 1 });
    await fleet.settle("1.0", 20_000, 10_000);
    await fleet.admin.deleteRecursive(canaryDir(fleet.app));
    const from = fleet.lineCount();
    expect((await fleet.cli(["app", "create", fleet.app, "2.0", "--canary", "1"])).code).toBe(0);
    await fleet.waitConverged("2.0", 15_000, [(await fleet.waitForStart(() => true, 15_000, from)).host]);
    await queued(fleet, 2);
    expect(fleet.lines(from).filter((l) => l.kind === "start")).toHaveLength(1);
    expect((await fleet.cli(["app", "promote", fleet.app])).code).toBe(0);
    const { check } = await fleet.settle("2.0", 20_000, 10_000);
    report("canary/ deleted", summarise(check));
    expect(await fleet.admin.exists(canaryDir(fleet.app))).not.toBeNull();
    expectInvariants(check, { strict: true });
  });

  test("/agents deleted: every agent registers again, status shows them online, --wait sees them, and a duplicate host id is refused again", async () => {
    const fleet = await suite.fleet({ prefix: "noagents", hosts: 3, sessionTimeoutMs: SESSION_MS, deploySeconds: 0.5 });
    await fleet.publish("1.0", { slots: 1 });
    await fleet.settle("1.0", 20_000, 10_000);
    await fleet.admin.deleteRecursive(AGENTS);
    await poll(
      async () => (await Promise.all(fleet.hosts.map((h) => fleet.admin.exists(agentPath(h))))).every((s) => s !== null),
      15_000,
      "every agent to register again",
    );
    const status = await readFleetStatus(fleet.admin);
    expect(status.agents.map((a) => a.host).sort()).toEqual([...fleet.hosts].sort());
    const wait = await fleet.cli(["app", "create", fleet.app, "2.0", "--wait", "--wait-timeout", "30s"]);
    expect(wait.code).toBe(0);

    const victim = fleet.hosts[0] ?? "";
    const duplicate = await startAgent({
      connect: fleet.options.ensemble.connectString + fleet.options.chroot,
      hostId: victim,
      sessionTimeout: "1s",
    });
    const exit = await duplicate.exited;
    report("/agents deleted", { duplicateExit: exit.code });
    expect(exit.code).toBe(2);
    expect(duplicate.stderr).toContain("already used by a live agent");
  });
});
