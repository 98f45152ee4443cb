import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { publishApp } from "../../src/apps/publish.ts";
import { FleetReader } from "../../src/apps/fleet-reader.ts";
import type { MutationContext } from "../../src/apps/mutate-app.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { poll } from "../../test/harness/wait.ts";
import type { ZooKeeperServer } from "../../test/harness/zookeeper.ts";
import type { PeerResult } from "./ansible.ts";
import { SLEEP_COMMANDS, startSleepFleet } from "./sleep-fleet.ts";
import { type Quantiles, quantiles, round } from "./stats.ts";
import { packetsReceived } from "./zk-metrics.ts";
import { type Transport, clientOptions, plainTransport } from "./transport.ts";

/** The same shape as the Ansible peer's result, plus what only Conveyor reports. */
export interface RolloutResult extends PeerResult {
  zkRequestsPerHost: number;
  handoffGapMs: Quantiles;
  mode: "processes" | "in-process";
}

const bench: MutationContext = { actor: "bench", now: () => new Date() };
/** The publish itself (read, multi, history prune, marker prune) is not the fleet's load. */
const PUBLISH_REQUESTS = 5;

function versionFiles(root: string, hosts: number): string[] {
  return Array.from({ length: hosts }, (_, i) => {
    try {
      return readFileSync(join(root, `h${i + 1}`, "VERSION"), "utf8").trim();
    } catch {
      return "";
    }
  });
}

function chroot(tag: string): string {
  return `/bench-${tag}-${Math.random().toString(36).slice(2, 8)}`;
}

function rolloutResult(
  mode: RolloutResult["mode"],
  shape: { hosts: number; slots: number; deployMs: number },
  wallMs: number,
  packets: number,
  gaps: number[],
): RolloutResult {
  const idealMs = Math.ceil(shape.hosts / shape.slots) * shape.deployMs;
  return {
    mode,
    ...shape,
    wallMs: round(wallMs),
    idealMs,
    ratio: round(wallMs / idealMs, 3),
    zkRequestsPerHost: round((packets - PUBLISH_REQUESTS) / shape.hosts, 1),
    handoffGapMs: quantiles(gaps),
  };
}

/** k-th deploy start (k ≥ slots, in order) is paired with the (k − slots)-th slot release;
 *  `previousStart` is the start just before it (back to back: the admission chain was busy). */
export function handoffPairs(
  releases: number[],
  starts: number[],
  slots: number,
): { release: number; start: number; previousStart: number }[] {
  const r = [...releases].sort((a, b) => a - b);
  const s = [...starts].sort((a, b) => a - b);
  const pairs: { release: number; start: number; previousStart: number }[] = [];
  for (let k = slots; k < s.length; k++) {
    const release = r[k - slots];
    const start = s[k];
    const previousStart = s[k - 1];
    if (release !== undefined && start !== undefined && previousStart !== undefined) pairs.push({ release, start, previousStart });
  }
  return pairs;
}

export function handoffGaps(releases: number[], starts: number[], slots: number): number[] {
  return handoffPairs(releases, starts, slots).map((p) => Math.max(0, p.start - p.release));
}

/** In-process agents with a sleeping command runner: 100 and 1 000 hosts on one machine. */
export async function inProcessRollout(
  server: ZooKeeperServer,
  hosts: number,
  slots: number,
  deployMs: number,
  transport: Transport = plainTransport(server),
): Promise<RolloutResult> {
  const options = clientOptions(transport, chroot(`ip${hosts}`));
  const admin = await ZkClient.connect({ ...options, connectTimeoutMs: 30_000 });
  const fleet = await startSleepFleet(options.connectString, hosts, deployMs, options.tls);
  try {
    // Warm-up rollout (not measured): every host installs "1".
    await publishApp(admin, "bench", "1", { slots, ...SLEEP_COMMANDS }, bench);
    await until(() => fleet.log.times("deploy succeeded").length >= hosts, 600_000, "warm-up rollout");
    await Bun.sleep(200);
    fleet.log.clear();
    const before = await packetsReceived(server.port);
    const t0 = performance.now();
    await publishApp(admin, "bench", "2", {}, bench);
    await until(() => fleet.log.times("deploy succeeded").length >= hosts, 600_000, "measured rollout");
    const wallMs = Math.max(...fleet.log.times("deploy succeeded")) - t0;
    await Bun.sleep(100); // let the last releases land before counting requests
    const after = await packetsReceived(server.port);
    const gaps = handoffGaps(fleet.log.times("slot released"), fleet.log.times("deploy started"), slots);
    return rolloutResult("in-process", { hosts, slots, deployMs }, wallMs, after - before, gaps);
  } finally {
    await fleet.stop();
    await admin.deleteRecursive("/apps").catch(() => undefined);
    await admin.close();
  }
}

/** Compiled agent processes running real `sh` commands, each in its own directory. */
export async function processRollout(
  server: ZooKeeperServer,
  binary: string,
  hosts: number,
  slots: number,
  deployMs: number,
): Promise<RolloutResult> {
  const connect = server.connectString + chroot(`p${hosts}`);
  const root = mkdtempSync(join(tmpdir(), "conveyor-bench-"));
  const admin = await ZkClient.connect({ connectString: connect, connectTimeoutMs: 30_000 });
  const agents: Bun.Subprocess[] = [];
  try {
    for (let i = 1; i <= hosts; i++) {
      const dir = join(root, `h${i}`);
      mkdirSync(dir);
      agents.push(
        Bun.spawn(
          [
            binary,
            "agent",
            "--zk",
            connect,
            "--host-id",
            `h${i}`,
            "--session-timeout",
            "10s",
            "--log-format",
            "json",
            "--state-dir",
            join(dir, ".state"),
          ],
          {
            cwd: dir,
            stdout: Bun.file(join(dir, "agent.log")),
            stderr: "inherit",
            env: { PATH: "/usr/bin:/bin", HOME: dir },
          },
        ),
      );
    }
    await until(async () => (await admin.children("/agents").catch(() => [])).length === hosts, 30_000, "agents registered");
    // Real shell commands, written so the shell forks as little as possible (a builtin read,
    // `exec sleep`): what is left above D is the agent plus one fork+exec per command.
    const commands = {
      getVersionCmd: 'read v < VERSION 2>/dev/null; echo "$v"',
      deployCmd: `echo %(version)s > VERSION; exec sleep ${deployMs / 1000}`,
    };
    await publishApp(admin, "bench", "1", { slots, ...commands }, bench);
    await untilConverged(admin, "1", hosts);
    await Bun.sleep(300);
    const logOffsets = agentsLogSizes(root, hosts);
    const before = await packetsReceived(server.port);
    const wall0 = Date.now();
    await publishApp(admin, "bench", "2", {}, bench);
    // Watch the servers' files, not ZooKeeper, so the measurement adds no requests; then take
    // the time each host reported `current` from its status node.
    await until(() => versionFiles(root, hosts).every((v) => v === "2"), 300_000, "VERSION files at 2");
    await Bun.sleep(100);
    const after = await packetsReceived(server.port);
    await untilConverged(admin, "2", hosts);
    const reportedAt = await Promise.all(
      Array.from({ length: hosts }, async (_, i) =>
        Date.parse(JSON.parse((await admin.get(`/apps/bench/hosts/h${i + 1}`)).data.toString()).updatedAt),
      ),
    );
    const wallMs = Math.max(...reportedAt) - wall0;
    const events = readAgentEvents(root, hosts, logOffsets).filter((e) => e.time >= wall0);
    const gaps = handoffGaps(
      events.filter((e) => e.msg === "slot released").map((e) => e.time),
      events.filter((e) => e.msg === "deploy started").map((e) => e.time),
      slots,
    );
    return rolloutResult("processes", { hosts, slots, deployMs }, wallMs, after - before, gaps);
  } finally {
    for (const agent of agents) agent.kill("SIGTERM");
    await Promise.all(agents.map((a) => Promise.race([a.exited, Bun.sleep(5_000)])));
    for (const agent of agents) if (agent.exitCode === null) agent.kill("SIGKILL");
    await admin.deleteRecursive("/apps").catch(() => undefined);
    await admin.close();
    rmSync(root, { recursive: true, force: true });
  }
}

async function untilConverged(zk: ZkClient, version: string, hosts: number): Promise<void> {
  let wake = (): void => undefined;
  const reader = new FleetReader(zk, { app: "bench", watch: true, onChange: () => wake() });
  await reader.load();
  try {
    const deadline = Date.now() + 300_000;
    for (;;) {
      const app = reader.snapshot().apps[0];
      const done = app?.hosts.filter((h) => h.state === "current" && h.version === version).length ?? 0;
      if (done >= hosts) return;
      if (Date.now() > deadline) throw new Error(`rollout of ${version} did not converge (${done}/${hosts})`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 1_000);
      });
    }
  } finally {
    reader.stop();
  }
}

function agentsLogSizes(root: string, hosts: number): number[] {
  return Array.from({ length: hosts }, (_, i) => {
    try {
      return readFileSync(join(root, `h${i + 1}`, "agent.log")).length;
    } catch {
      return 0;
    }
  });
}

function readAgentEvents(root: string, hosts: number, offsets: number[]): { time: number; msg: string }[] {
  const events: { time: number; msg: string }[] = [];
  for (let i = 0; i < hosts; i++) {
    const text = readFileSync(join(root, `h${i + 1}`, "agent.log"))
      .subarray(offsets[i] ?? 0)
      .toString("utf8");
    for (const line of text.split("\n")) {
      if (!line.startsWith("{")) continue;
      const entry = JSON.parse(line) as { time: string; msg: string };
      events.push({ time: Date.parse(entry.time), msg: entry.msg });
    }
  }
  return events;
}

/** The bench's setting of the one polling loop: every 2 ms (when a wait ends is part of what is
 *  measured), and an error from `condition` ends the run at once. */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  await poll(condition, timeoutMs, what, 2, false);
}
