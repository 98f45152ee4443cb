// The agent as a compiled binary (dist/conveyor agent), one process per "server", against a real
// ZooKeeper: crash (kill -9) mid-deploy, graceful and forced shutdown, duplicate host ids, a
// systemd-style restart, idle CPU, publish→convergence latency, JSON logs, bad flags.
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type AppView, readFleetStatus } from "../../src/apps/fleet-status.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { agentPath, failuresDir, hostStatusPath, leasesDir, lockDir } from "../../src/zk/paths.ts";
import { parseQueueNode } from "../../src/zk/recipes/queue-node.ts";
import { queueMembers } from "../helpers/queue-members.ts";
import { childGroups, clockTicksPerSecond, killGroup, liveGroupMembers, pidAlive, procStat } from "../harness/processes.ts";
import { type AgentProcess, useAgentProcesses } from "../harness/agent-process.ts";
import { processTempDir, runCli } from "../harness/cli.ts";
import { maxConcurrency, readDeployLog, testCommands } from "../helpers/deploy-log.ts";
import { waitFor } from "../harness/wait.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";

setDefaultTimeout(60_000);

const zookeeper = useZooKeeper();
const agents = useAgentProcesses();
const admins: ZkClient[] = [];
/** Process groups of deploy commands a test learned from the deploy log: killed after it. */
const orphanGroups = new Set<number>();

afterEach(async () => {
  for (const pgid of orphanGroups) killGroup(pgid);
  orphanGroups.clear();
  await Promise.all(admins.splice(0).map((zk) => zk.close()));
});

async function adminClient(connect: string): Promise<ZkClient> {
  const zk = await ZkClient.connect({ connectString: connect, connectTimeoutMs: 10_000 });
  admins.push(zk);
  return zk;
}

function logDir(): string {
  return mkdtempSync(join(processTempDir(), "deploylog-"));
}

/**
 * Like testCommands, but every line also carries the deploy shell's PID, which is its process
 * group id (the agent runs each command in its own group): `start <host> <version> <pgid>`.
 */
function pidCommands(logPath: string, deploySeconds: number): { getVersionCmd: string; deployCmd: string } {
  return {
    getVersionCmd: "cat VERSION 2>/dev/null || true",
    deployCmd: `echo "start $CONVEYOR_HOST $CONVEYOR_VERSION $$" >> '${logPath}'; sleep ${deploySeconds}; echo %(version)s > VERSION; echo "end $CONVEYOR_HOST $CONVEYOR_VERSION $$" >> '${logPath}'`,
  };
}

/** Process group ids of the deploys in a log written by pidCommands (or any `start h v pid` line). */
function deployGroups(logPath: string): Map<string, number> {
  const groups = new Map<string, number>();
  if (!existsSync(logPath)) return groups;
  for (const line of readFileSync(logPath, "utf8").split("\n")) {
    const [kind, host, , pid] = line.trim().split(/\s+/);
    if (kind === "start" && host && pid && /^\d+$/.test(pid)) {
      groups.set(host, Number(pid));
      orphanGroups.add(Number(pid));
    }
  }
  return groups;
}

interface PublishOptions {
  slots?: string;
  getVersionCmd: string;
  deployCmd: string;
}

/** `conveyor app create` through the compiled CLI; throws with its output unless it exits 0. */
async function publish(connect: string, app: string, version: string, o: PublishOptions): Promise<void> {
  const args = ["--zk", connect, "app", "create", app, version, "--get-version-cmd", o.getVersionCmd, "--deploy-cmd", o.deployCmd];
  if (o.slots !== undefined) args.push("--slots", o.slots);
  const r = await runCli(args, { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`app create ${app} ${version} exited ${r.code}: ${r.stderr}${r.stdout}`);
}

async function startFleet(connect: string, prefix: string, count: number, sessionTimeout: string): Promise<AgentProcess[]> {
  const fleet = await Promise.all(
    Array.from({ length: count }, (_, i) => agents.start({ connect, hostId: `${prefix}${i + 1}`, sessionTimeout })),
  );
  await Promise.all(fleet.map((a) => a.waitForLog(/agent started/, 20_000)));
  return fleet;
}

/** The session id an agent logged at start (text format: `session=<16 hex>`). */
async function sessionOf(agent: AgentProcess): Promise<string> {
  const match = await agent.waitForLog(/agent started .*session=([0-9a-f]{16})/, 20_000);
  return match[1] ?? "";
}

async function appView(zk: ZkClient, app: string): Promise<AppView | undefined> {
  return (await readFleetStatus(zk, app)).apps[0];
}

function hostsCurrent(view: AppView | undefined, version: string, hosts: string[]): boolean {
  if (!view) return false;
  return hosts.every((host) => view.hosts.some((h) => h.host === host && h.state === "current" && h.version === version));
}

function leaseHosts(names: string[]): string[] {
  return names.map((n) => parseQueueNode(n)?.host ?? `?${n}`);
}

function readVersion(dir: string): string {
  const path = join(dir, "VERSION");
  return existsSync(path) ? readFileSync(path, "utf8").trim() : "";
}

// ---------------------------------------------------------------------------------------------

describe("agent process: crash and shutdown", () => {
  test("kill -9 mid-deploy: the slot returns only when the session expires; the others converge; ≤ 1 deploy among live agents", async () => {
    const connect = zookeeper.withChroot("kill9");
    const log = join(logDir(), "deploys.log");
    const SESSION_MS = 2_000;
    const fleet = await startFleet(connect, "k", 4, "2s");
    const zk = await adminClient(connect);
    await publish(connect, "app", "1.0", { slots: "1", ...pidCommands(log, 1.5) });

    const first = await waitFor(() => readDeployLog(log).find((e) => e.kind === "start"), 15_000, "the first deploy to start", 10);
    const victim = fleet.find((a) => a.hostId === first.host);
    if (!victim) throw new Error(`unknown host in the deploy log: ${first.host}`);
    victim.signal("SIGKILL");
    const killedAt = performance.now();
    const victimGroup = deployGroups(log).get(victim.hostId);
    expect(victimGroup).toBeDefined();
    expect(leaseHosts(await zk.children(leasesDir("app")))).toEqual([victim.hostId]);

    // Poll the log first, then the leases: if another host's start line is already written while
    // the victim's lease is still there, two deploys held the single slot at once.
    let leaseGoneAt: number | undefined;
    let othersStartedWhileLeaseHeld = false;
    let maxLeases = 0;
    await waitFor(
      async () => {
        const otherStarted = readDeployLog(log).some((e) => e.kind === "start" && e.host !== victim.hostId);
        const leases = leaseHosts(await zk.children(leasesDir("app")));
        maxLeases = Math.max(maxLeases, leases.length);
        const held = leases.includes(victim.hostId);
        if (otherStarted && held) othersStartedWhileLeaseHeld = true;
        if (!held) leaseGoneAt = performance.now();
        return !held;
      },
      SESSION_MS + 8_000,
      "the killed agent's lease to vanish",
      20,
    );
    const slotReturnedMs = (leaseGoneAt ?? Number.NaN) - killedAt;
    expect(othersStartedWhileLeaseHeld).toBe(false);
    expect(maxLeases).toBe(1);
    // Not before its session expired (ZooKeeper expires it ≥ session timeout after the last
    // request, which was just before the start line): allow 500 ms of slack for our polling.
    expect(slotReturnedMs).toBeGreaterThanOrEqual(SESSION_MS - 500);
    expect(slotReturnedMs).toBeLessThan(SESSION_MS + 6_000);
    expect((await victim.exited).signal).toBe("SIGKILL");

    const survivors = fleet.filter((a) => a !== victim).map((a) => a.hostId);
    await waitFor(async () => hostsCurrent(await appView(zk, "app"), "1.0", survivors), 20_000, "the three survivors to converge");
    const view = await appView(zk, "app");
    expect(view?.hosts.find((h) => h.host === victim.hostId)?.online).toBe(false);

    // The killed agent's deploy shell runs on as an orphan (own process group, nobody to kill
    // it): wait for it to finish before judging overlap, then kill whatever is left of it.
    if (victimGroup !== undefined) await waitFor(() => liveGroupMembers(victimGroup).length === 0, 10_000, "the orphaned deploy to finish");
    const events = readDeployLog(log);
    const live = events.filter((e) => e.host !== victim.hostId);
    expect(
      live
        .filter((e) => e.kind === "start")
        .map((e) => e.host)
        .sort(),
    ).toEqual(survivors.sort());
    expect(maxConcurrency(live)).toBe(1);
    // The orphan's overlap with the next deploy is the one case docs/ARCHITECTURE.md allows (its agent's
    // session is gone, so its slot is free): record it, do not fail on it. With a 1.5 s deploy
    // and a 2 s session the orphan normally ends before the slot returns (no overlap).
    const orphanStart = events.findIndex((e) => e.kind === "start" && e.host === victim.hostId);
    const orphanEnd = events.findIndex((e) => e.kind === "end" && e.host === victim.hostId);
    const overlapped = events.some(
      (e, i) => e.kind === "start" && e.host !== victim.hostId && i > orphanStart && (orphanEnd === -1 || i < orphanEnd),
    );
    console.log(
      `kill -9: slot returned ${Math.round(slotReturnedMs)} ms after the kill (session ${SESSION_MS} ms); ` +
        `orphaned deploy ${orphanEnd === -1 ? "never finished" : "finished"}, overlapped a live deploy: ${overlapped}; ` +
        `max concurrency incl. orphan ${maxConcurrency(events)}`,
    );
    expect(readVersion(victim.dir)).toBe(orphanEnd === -1 ? "" : "1.0");
  });

  test("SIGTERM mid-deploy: the deploy completes, exit 0, presence and lease gone at once (session 20 s)", async () => {
    const connect = zookeeper.withChroot("sigterm");
    const log = join(logDir(), "deploys.log");
    const [agent] = await startFleet(connect, "t", 1, "20s");
    if (!agent) throw new Error("no agent");
    const zk = await adminClient(connect);
    expect(await zk.exists(agentPath(agent.hostId))).not.toBeNull();
    await publish(connect, "app", "1.0", { slots: "1", ...pidCommands(log, 1.5) });
    await waitFor(() => readDeployLog(log).some((e) => e.kind === "start"), 15_000, "the deploy to start", 10);
    deployGroups(log);

    agent.signal("SIGTERM");
    await agent.waitForLog(/stopping .*waitingFor=app/, 5_000);
    const exit = await agent.exited;
    // Read right away: the deploy ended before the agent exited (it waits for the group).
    const events = readDeployLog(log);
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(events.map((e) => `${e.kind} ${e.host} ${e.version}`)).toEqual([`start ${agent.hostId} 1.0`, `end ${agent.hostId} 1.0`]);
    expect(readVersion(agent.dir)).toBe("1.0");

    // The session was closed, not left to expire (20 s): the ephemeral presence node is gone.
    let goneAt = 0;
    await waitFor(
      async () => {
        const gone = (await zk.exists(agentPath(agent.hostId))) === null;
        if (gone) goneAt = performance.now();
        return gone;
      },
      5_000,
      "the presence node to vanish",
      20,
    );
    const goneAfterExitMs = Math.max(0, goneAt - exit.at);
    expect(goneAfterExitMs).toBeLessThan(1_000);
    expect(await zk.children(leasesDir("app"))).toEqual([]);
    expect(await zk.children(lockDir("app"))).toEqual([]);
    const host = (await appView(zk, "app"))?.hosts.find((h) => h.host === agent.hostId);
    expect(host).toMatchObject({ version: "1.0", online: false });
    expect(agent.stdout).toMatch(/deploy succeeded/);
    expect(agent.stdout).toMatch(/agent stopped/);
    console.log(`SIGTERM: presence gone ${Math.round(goneAfterExitMs)} ms after exit (session timeout 20 s)`);
  });

  test("a second SIGTERM kills the deploy's process group and the agent exits promptly", async () => {
    const connect = zookeeper.withChroot("sigterm2");
    const log = join(logDir(), "deploys.log");
    const [agent] = await startFleet(connect, "s", 1, "10s");
    if (!agent) throw new Error("no agent");
    const zk = await adminClient(connect);
    await publish(connect, "app", "1.0", {
      slots: "1",
      getVersionCmd: "cat VERSION 2>/dev/null || true",
      deployCmd: `echo "start $CONVEYOR_HOST $CONVEYOR_VERSION $$" >> '${log}'; sleep 30 & echo "sleep $!" >> '${log}'; wait $!; echo %(version)s > VERSION; echo "end $CONVEYOR_HOST $CONVEYOR_VERSION $$" >> '${log}'`,
    });
    const sleepPid = await waitFor(
      () => {
        const match = /^sleep (\d+)$/m.exec(existsSync(log) ? readFileSync(log, "utf8") : "");
        return match ? Number(match[1]) : undefined;
      },
      15_000,
      "the deploy's sleep 30 to start",
      10,
    );
    const group = deployGroups(log).get(agent.hostId);
    if (group === undefined) throw new Error("no deploy group in the log");
    expect(procStat(sleepPid)?.pgrp).toBe(group);

    agent.signal("SIGTERM");
    await agent.waitForLog(/stopping .*waitingFor=app/, 5_000);
    expect(pidAlive(sleepPid)).toBe(true); // the first signal lets the deploy run on
    expect(agent.exit).toBeUndefined();

    agent.signal("SIGTERM");
    const secondAt = performance.now();
    const exit = await Promise.race([agent.exited, Bun.sleep(10_000).then(() => undefined)]);
    if (!exit) throw new Error(`agent still running 10 s after the second SIGTERM; output:\n${agent.output}`);
    const exitMs = exit.at - secondAt;
    expect(exitMs).toBeLessThan(5_000);
    // A clean exit (not a crash): the agent kills the deploy group and exits 0 — the deploy it
    // interrupted is not a failure of the release (checked below).
    expect(exit.signal).toBeNull();
    expect(exit.code).toBe(0);
    expect(pidAlive(sleepPid)).toBe(false);
    expect(liveGroupMembers(group)).toEqual([]);
    expect(readDeployLog(log).filter((e) => e.kind === "end")).toEqual([]);
    expect(agent.stdout).toMatch(/second signal/);
    expect(await zk.exists(agentPath(agent.hostId))).toBeNull();
    expect(await zk.children(leasesDir("app"))).toEqual([]);
    // One consistent story (issue 10): the agent interrupted its own deploy — no failure is
    // recorded, the app is not halted, the host's status says what happened.
    expect(await zk.children(failuresDir("app"))).toEqual([]);
    const view = await appView(zk, "app");
    expect(view?.halted).toBe(false);
    expect(view?.counts.failuresThisRollout).toBe(0);
    expect(view?.hosts[0]).toMatchObject({ state: "offline" });
    expect(view?.hosts[0]?.error).toContain("deploy-cmd interrupted by agent shutdown (not counted as a failure");
    // Started again, it deploys the version it was interrupted in.
    const again = await agents.start({ connect, hostId: agent.hostId, dir: agent.dir, sessionTimeout: "10s" });
    await waitFor(() => readDeployLog(log).filter((e) => e.kind === "start").length === 2, 15_000, "the deploy to start again");
    deployGroups(log);
    await again.stop();
    console.log(`second SIGTERM: agent exited ${Math.round(exitMs)} ms later (code ${exit.code}), sleep 30 (pid ${sleepPid}) gone`);
  });

  test("a second SIGTERM also kills a deploy a crashed run left (adopted, not our child) and the agent exits promptly; the next run still finishes it", async () => {
    const connect = zookeeper.withChroot("sigterm2-orphan");
    const log = join(logDir(), "deploys.log");
    const [agent] = await startFleet(connect, "o", 1, "2s");
    if (!agent) throw new Error("no agent");
    await publish(connect, "app", "1.0", {
      slots: "1",
      getVersionCmd: "cat VERSION 2>/dev/null || true",
      deployCmd: `echo "start $CONVEYOR_HOST $CONVEYOR_VERSION $$" >> '${log}'; sleep 60; echo %(version)s > VERSION`,
    });
    await waitFor(() => deployGroups(log).has(agent.hostId), 15_000, "the deploy to start");
    const group = deployGroups(log).get(agent.hostId) ?? 0;
    agent.signal("SIGKILL");
    await agent.exited;
    expect(liveGroupMembers(group).length).toBeGreaterThan(0); // the deploy outlived its agent
    const restarted = await agents.start({ connect, hostId: agent.hostId, dir: agent.dir });
    await restarted.waitForLog(/still going; waiting for it/, 10_000);
    await restarted.waitForLog(/agent started/, 10_000);
    restarted.signal("SIGTERM");
    await restarted.waitForLog(/stopping/, 5_000);
    restarted.signal("SIGTERM");
    const exit = await Promise.race([restarted.exited, Bun.sleep(10_000).then(() => undefined)]);
    if (!exit) throw new Error(`agent still running 10 s after the second SIGTERM; output:\n${restarted.output}`);
    expect(exit.code).toBe(0);
    expect(liveGroupMembers(group)).toEqual([]);
    // The admission stays in the journal: the next run deploys again rather than call it done.
    const again = await agents.start({ connect, hostId: agent.hostId, dir: agent.dir });
    await again.waitForLog(/found an admission a previous run left unfinished/, 10_000);
    await waitFor(() => readDeployLog(log).filter((e) => e.kind === "start").length === 2, 15_000, "the deploy to start again");
    deployGroups(log);
    await again.stop();
  });

  test("SIGHUP is logged and ignored: the agent keeps running and its deploy completes", async () => {
    const connect = zookeeper.withChroot("sighup");
    const log = join(logDir(), "deploys.log");
    const [agent] = await startFleet(connect, "hup", 1, "10s");
    if (!agent) throw new Error("no agent");
    const zk = await adminClient(connect);
    await publish(connect, "app", "1.0", { slots: "1", ...pidCommands(log, 1.5) });
    await waitFor(() => readDeployLog(log).find((e) => e.kind === "start"), 15_000, "the deploy to start", 10);
    deployGroups(log);
    agent.signal("SIGHUP");
    await agent.waitForLog(/SIGHUP ignored/, 5_000);
    await waitFor(async () => hostsCurrent(await appView(zk, "app"), "1.0", [agent.hostId]), 15_000, "the deploy to complete");
    expect(agent.exit).toBeUndefined();
    expect(readDeployLog(log).filter((e) => e.kind === "end")).toHaveLength(1);
  });

  test("a hung get-version-cmd: SIGTERM kills it and the agent exits at once (it took 121 s)", async () => {
    const connect = zookeeper.withChroot("probe-hang");
    const [agent] = await startFleet(connect, "ph", 1, "10s");
    if (!agent) throw new Error("no agent");
    await publish(connect, "app", "1.0", { getVersionCmd: "echo probing >&2; sleep 1000", deployCmd: "true" });
    await waitFor(() => childGroups(agent.pid).length > 0, 10_000, "get-version-cmd to run");
    const probeGroups = childGroups(agent.pid);
    for (const g of probeGroups) orphanGroups.add(g);
    agent.signal("SIGTERM");
    const at = performance.now();
    const exit = await Promise.race([agent.exited, Bun.sleep(10_000).then(() => undefined)]);
    if (!exit) throw new Error(`agent still running 10 s after SIGTERM; output:\n${agent.output}`);
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.at - at).toBeLessThan(3_000);
    for (const g of probeGroups) expect(liveGroupMembers(g)).toEqual([]);
  });

  test("SIGTERM while queued for a slot: leaves the queue and exits 0 at once; the holder is not disturbed", async () => {
    const connect = zookeeper.withChroot("sigterm-queued");
    const log = join(logDir(), "deploys.log");
    const fleet = await startFleet(connect, "q", 2, "20s");
    const zk = await adminClient(connect);
    await publish(connect, "app", "1.0", { slots: "1", ...pidCommands(log, 3) });
    const first = await waitFor(() => readDeployLog(log).find((e) => e.kind === "start"), 15_000, "the first deploy to start", 10);
    deployGroups(log);
    const queued = fleet.find((a) => a.hostId !== first.host);
    const holder = fleet.find((a) => a.hostId === first.host);
    if (!queued || !holder) throw new Error("fleet mismatch");
    const queuedHosts = async (): Promise<string[]> => (await queueMembers(zk, lockDir("app"))).map((m) => m.host);
    await waitFor(async () => (await queuedHosts()).includes(queued.hostId), 10_000, "the second agent to queue");

    queued.signal("SIGTERM");
    const signalledAt = performance.now();
    const exit = await queued.exited;
    const exitMs = exit.at - signalledAt;
    expect(exit).toMatchObject({ code: 0, signal: null });
    // It was not deploying: it must not wait for the other host's 3 s deploy.
    expect(exitMs).toBeLessThan(2_000);
    expect(await queuedHosts()).not.toContain(queued.hostId);
    expect(await zk.exists(agentPath(queued.hostId))).toBeNull();
    expect(readDeployLog(log).filter((e) => e.host === queued.hostId)).toEqual([]);
    expect(holder.exit).toBeUndefined();
    await waitFor(async () => hostsCurrent(await appView(zk, "app"), "1.0", [holder.hostId]), 15_000, "the holder to finish");
    console.log(`SIGTERM while queued: exit 0 after ${Math.round(exitMs)} ms`);
  });
});

describe("agent process: commands that fail", () => {
  async function hostAfter(connect: string, app: string): Promise<AppView["hosts"][number]> {
    const zk = await adminClient(connect);
    return waitFor(async () => (await appView(zk, app))?.hosts.find((h) => h.state === "failed"), 20_000, "the host to fail");
  }

  test("get-version-cmd fails before the deploy: tried 3 times, then the host fails with its exit code and output; nothing is deployed", async () => {
    const connect = zookeeper.withChroot("probe-fail");
    const [agent] = await startFleet(connect, "pf", 1, "10s");
    if (!agent) throw new Error("no agent");
    await publish(connect, "app", "1.0", {
      getVersionCmd: "echo 'dpkg-query: no packages found' >&2; exit 4",
      deployCmd: "touch DEPLOYED",
    });
    const host = await hostAfter(connect, "app");
    expect(host.exitCode).toBe(4);
    expect(host.error).toBe("before deploying: get-version-cmd exited with code 4");
    expect(host.outputTail).toContain("dpkg-query: no packages found");
    expect(agent.output.match(/get-version-cmd failed; trying again/g)).toHaveLength(2);
    expect(existsSync(join(agent.dir, "DEPLOYED"))).toBe(false);
    const zk = await adminClient(connect);
    expect(await zk.children(failuresDir("app"))).toHaveLength(1);
  });

  test('get-version-cmd fails after the deploy: the host fails naming the probe and its exit code (it said: reports version "")', async () => {
    const connect = zookeeper.withChroot("probe-after");
    const [agent] = await startFleet(connect, "pa", 1, "10s");
    if (!agent) throw new Error("no agent");
    await publish(connect, "app", "1.0", {
      getVersionCmd: "if [ -f DEPLOYED ]; then echo 'version file unreadable' >&2; exit 5; fi",
      deployCmd: "touch DEPLOYED",
    });
    const host = await hostAfter(connect, "app");
    expect(host.exitCode).toBe(5);
    expect(host.error).toBe("after deploy-cmd: get-version-cmd exited with code 5");
    expect(host.outputTail).toContain("version file unreadable");
    expect(existsSync(join(agent.dir, "DEPLOYED"))).toBe(true);
  });

  test("a deploy that exits 0 but leaves a background child is killed at its timeout and says so", async () => {
    const connect = zookeeper.withChroot("bg-child");
    const [agent] = await startFleet(connect, "bg", 1, "10s");
    if (!agent) throw new Error("no agent");
    const r = await runCli(
      [
        "--zk",
        connect,
        "app",
        "create",
        "app",
        "1.0",
        "--get-version-cmd",
        "true",
        "--deploy-cmd",
        "echo $$ > PGID; sleep 600 & echo started",
        "--deploy-timeout",
        "2s",
      ],
      { timeoutMs: 20_000 },
    );
    expect(r.code).toBe(0);
    const pgid = await waitFor(
      () => (existsSync(join(agent.dir, "PGID")) ? Number(readFileSync(join(agent.dir, "PGID"), "utf8")) : undefined),
      10_000,
      "the deploy to run",
    );
    orphanGroups.add(pgid);
    const host = await hostAfter(connect, "app");
    expect(liveGroupMembers(pgid)).toEqual([]);
    expect(host.error).toBe(
      'deploy-cmd timed out after 2s: it exited 0 but left processes running in its process group (e.g. "cmd &"), which were killed; start services through systemd',
    );
  });
});

describe("agent process: host ids", () => {
  test("a duplicate host id exits 2 with a one-line error; the first agent keeps serving", async () => {
    const connect = zookeeper.withChroot("dup");
    const log = join(logDir(), "deploys.log");
    const SESSION_MS = 2_000;
    const first = await agents.start({ connect, hostId: "dup-host", sessionTimeout: "2s" });
    const firstSession = await sessionOf(first);

    const second = await agents.start({ connect, hostId: "dup-host", sessionTimeout: "2s" });
    const exit = await Promise.race([second.exited, Bun.sleep(15_000).then(() => undefined)]);
    if (!exit) throw new Error(`the duplicate agent is still running after 15 s; output:\n${second.output}`);
    const elapsed = exit.at - second.startedAt;
    expect(exit).toMatchObject({ code: 2, signal: null });
    const stderr = second.stderr.trim();
    expect(stderr.split("\n")).toHaveLength(1);
    expect(stderr).toContain("dup-host");
    // It waits long enough for a crashed predecessor's session to expire, but not forever.
    expect(elapsed).toBeGreaterThanOrEqual(SESSION_MS);
    expect(elapsed).toBeLessThanOrEqual(1.5 * SESSION_MS + 2_000);
    console.log(`duplicate host id: exit 2 after ${Math.round(elapsed)} ms: ${stderr}`);

    const zk = await adminClient(connect);
    expect(first.exit).toBeUndefined();
    expect((await zk.exists(agentPath("dup-host")))?.ephemeralOwner).toBe(firstSession);
    await publish(connect, "app", "1.0", { slots: "1", ...testCommands(log, 0.2) });
    await waitFor(async () => hostsCurrent(await appView(zk, "app"), "1.0", ["dup-host"]), 15_000, "the first agent to deploy");
    expect(readVersion(first.dir)).toBe("1.0");
    expect(readDeployLog(log).map((e) => `${e.kind} ${e.host}`)).toEqual(["start dup-host", "end dup-host"]);
  });

  test("a persistent node made by hand at the agent's presence path (with a child) is replaced at once, not taken for a live agent; host forget names it", async () => {
    const connect = zookeeper.withChroot("stray-presence");
    const zk = await adminClient(connect);
    await publish(connect, "app", "1.0", { slots: "1", getVersionCmd: "echo 1.0", deployCmd: "true" });
    await zk.mkdirp(agentPath("h7"));
    await zk.create(`${agentPath("h7")}/child`);
    await zk.create(hostStatusPath("app", "h7"), Buffer.from("{}"));
    const forget = await runCli(["--zk", connect, "host", "forget", "h7"]);
    expect(forget.code, forget.stderr).toBe(1);
    expect(forget.stderr).toContain("is a persistent node (made by hand), not an agent's presence");
    const agent = await agents.start({ connect, hostId: "h7", sessionTimeout: "2s" });
    await agent.waitForLog(/persistent node made by hand held our presence path/, 5_000);
    await agent.waitForLog(/agent started/, 5_000);
    const stat = await zk.exists(agentPath("h7"));
    expect(stat?.ephemeralOwner).toBe(await sessionOf(agent));
    await agent.stop();
  });

  test("restart with the same host id right after kill -9 waits for the old session, then serves", async () => {
    const connect = zookeeper.withChroot("restart");
    const log = join(logDir(), "deploys.log");
    const old = await agents.start({ connect, hostId: "phoenix", sessionTimeout: "2s" });
    const oldSession = await sessionOf(old);
    old.signal("SIGKILL");
    await old.exited;

    const fresh = await agents.start({ connect, hostId: "phoenix", sessionTimeout: "2s", dir: old.dir });
    const freshSession = await sessionOf(fresh);
    const startedMs = performance.now() - fresh.startedAt;
    expect(freshSession).not.toBe(oldSession);
    expect(fresh.exit).toBeUndefined();
    const zk = await adminClient(connect);
    expect((await zk.exists(agentPath("phoenix")))?.ephemeralOwner).toBe(freshSession);
    const waited = /waiting for it to expire/.test(fresh.output);
    console.log(
      `restart after kill -9: new agent registered ${Math.round(startedMs)} ms after spawn (waited for the old session: ${waited})`,
    );

    await publish(connect, "app", "1.0", { slots: "1", ...testCommands(log, 0.2) });
    await waitFor(async () => hostsCurrent(await appView(zk, "app"), "1.0", ["phoenix"]), 15_000, "the restarted agent to deploy");
    expect(readVersion(fresh.dir)).toBe("1.0");
    expect(fresh.exit).toBeUndefined();
  });
});

describe("agent process: cost and speed", () => {
  test("idle CPU: 6 converged agents serving 3 apps use < 1% of a core each", async () => {
    const connect = zookeeper.withChroot("idle");
    const log = join(logDir(), "deploys.log");
    const fleet = await startFleet(connect, "i", 6, "10s");
    const zk = await adminClient(connect);
    const apps = ["alpha", "beta", "gamma"];
    for (const app of apps) await publish(connect, app, "1.0", { slots: "6", ...testCommands(log, 0.05) });
    await waitFor(
      async () => {
        const status = await readFleetStatus(zk);
        return status.apps.length === 3 && status.apps.every((a) => a.state === "converged" && a.counts.current === 6);
      },
      30_000,
      "three apps converged on six hosts",
      50,
    );
    // Let the last status writes and get-version runs settle: this is not an assertion.
    await Bun.sleep(1_000);

    const ticksPerSecond = clockTicksPerSecond();
    const cpu = (a: AgentProcess): number => {
      const stat = procStat(a.pid);
      if (!stat) throw new Error(`agent ${a.hostId} is gone; output:\n${a.output}`);
      return stat.utime + stat.stime;
    };
    const before = fleet.map(cpu);
    const from = performance.now();
    await Bun.sleep(10_000); // the measurement window
    const seconds = (performance.now() - from) / 1_000;
    const used = fleet.map((a, i) => cpu(a) - (before[i] ?? 0));
    const percent = used.map((ticks) => (100 * ticks) / ticksPerSecond / seconds);
    console.log(
      `idle CPU over ${seconds.toFixed(1)} s (CLK_TCK ${ticksPerSecond}): ` +
        fleet.map((a, i) => `${a.hostId} ${used[i]} ticks = ${percent[i]?.toFixed(2)}%`).join(", "),
    );
    for (const a of fleet) expect(a.exit).toBeUndefined();
    for (const p of percent) expect(p).toBeLessThan(1);
  });

  test("headline: 6 agents, 2 slots, 0.3 s deploys — publish→convergence vs the ideal 0.9 s", async () => {
    const connect = zookeeper.withChroot("headline");
    const log = join(logDir(), "deploys.log");
    const fleet = await startFleet(connect, "w", 6, "10s");
    const zk = await adminClient(connect);
    await waitFor(async () => (await zk.children("/agents")).length === 6, 10_000, "six agents registered");
    const hosts = fleet.map((a) => a.hostId);

    const publishedAt = performance.now();
    const publishing = publish(connect, "app", "1.0", { slots: "2", ...testCommands(log, 0.3) });
    let convergedAt = 0;
    await waitFor(
      async () => {
        const done = hostsCurrent(await appView(zk, "app"), "1.0", hosts);
        if (done) convergedAt = performance.now();
        return done;
      },
      20_000,
      "six hosts current",
      20,
    );
    await publishing;
    const wall = convergedAt - publishedAt;
    console.log(`publish→convergence ${Math.round(wall)} ms (ideal 900 ms, ratio ${(wall / 900).toFixed(2)})`);
    const events = readDeployLog(log);
    expect(events.filter((e) => e.kind === "start")).toHaveLength(6);
    expect(maxConcurrency(events)).toBe(2);
    expect(wall).toBeLessThan(3_000);
  });
});

describe("agent process: logs and flags", () => {
  test("--log-format json: one JSON object per line, deploy events carry time, level, msg, app, host", async () => {
    const connect = zookeeper.withChroot("json");
    const log = join(logDir(), "deploys.log");
    const agent = await agents.start({ connect, hostId: "json-host", sessionTimeout: "2s", logFormat: "json" });
    await agent.waitForLog(/"msg":"agent started"/, 20_000);
    await publish(connect, "app", "1.0", { slots: "1", ...testCommands(log, 0.1) });
    await agent.waitForLog(/"msg":"deploy succeeded"/, 15_000);
    await agent.waitForLog(/"msg":"slot released"/, 5_000);
    const exit = await agent.stop();
    expect(exit.code).toBe(0);

    const lines = agent.stdout.split("\n").filter((l) => l !== "");
    const records = lines.map((line) => {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error(`not a JSON object: ${line}`);
      return parsed as Record<string, unknown>;
    });
    for (const r of records) {
      expect(typeof r.time).toBe("string");
      expect(new Date(String(r.time)).toISOString()).toBe(String(r.time));
      expect(["debug", "info", "warn", "error"]).toContain(String(r.level));
      expect(typeof r.msg).toBe("string");
    }
    const deployEvents = ["slot acquired", "deploy started", "deploy succeeded", "slot released"];
    for (const msg of deployEvents) {
      const r = records.find((x) => x.msg === msg);
      expect(r, `a "${msg}" record`).toBeDefined();
      expect(r).toMatchObject({ app: "app", host: "json-host", level: "info" });
    }
    expect(records.find((x) => x.msg === "deploy started")).toMatchObject({ version: "1.0" });
    expect(agent.stderr).toBe("");
  });

  test("bad agent flags exit 2 with a one-line message naming the value", async () => {
    const connect = zookeeper.withChroot("flags");
    const cases: [string[], string][] = [
      [["--host-id", "bad/id"], "bad/id"],
      [["--host-id", "ok", "--session-timeout", "0s"], "0s"],
      [["--host-id", "ok", "--log-format", "xml"], "xml"],
      [["--host-id", "ok", "--groups", "a b"], "a b"],
      [["--host-id", "ok", "--state-dir", "/etc/passwd"], 'invalid --state-dir "/etc/passwd": cannot create "/etc/passwd/ok" (ENOTDIR)'],
      [["--host-id", "ok", "--state-dir", ""], 'invalid --state-dir ""'],
    ];
    // The same values from the config file are named by their key there, not by a flag.
    const config = join(mkdtempSync(join(processTempDir(), "agent-flags-")), "conveyor.toml");
    writeFileSync(config, '[agent]\nhostId = "ok"\nsessionTimeout = "abc"\n');
    cases.push([["--config", config], 'invalid agent.sessionTimeout in the config file "abc"']);
    const results = await Promise.all(cases.map(([flags]) => runCli(["--zk", connect, "agent", ...flags], { timeoutMs: 15_000 })));
    results.forEach((r, i) => {
      const [flags, value] = cases[i] ?? [[], ""];
      const what = `agent ${flags.join(" ")}`;
      expect({ what, code: r.code, timedOut: r.timedOut }).toEqual({ what, code: 2, timedOut: false });
      const message = r.stderr.trim();
      expect(message.split("\n"), what).toHaveLength(1);
      expect(message, what).toContain(value);
      expect(message, what).toMatch(/^error: /);
    });
  });
});
