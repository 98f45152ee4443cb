// `bun run bench --scale`: rollouts of 100, 1 000 and 10 000 simulated agents — each its own
// ZooKeeper session, spread over two crowded worker processes (scale-worker.ts) plus a few
// sentinel agents in a process of their own (SENTINELS) — on the ticket queue and on
// the old listing queue, side by side in one run. Per fleet size and queue: ZooKeeper requests
// per host (the server's mntr), bytes received by the agents per host (their sockets' kernel
// counters, `ss`), publish → first deploy, handoff gaps, the rollout ratio with D = 2 s and
// S = N/20, and the ZooKeeper server's CPU and heap during the rollout.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { publishApp } from "../../src/apps/publish.ts";
import type { MutationContext } from "../../src/apps/mutate-app.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { waitForStrict } from "../../test/harness/wait.ts";
import type { ZooKeeperServer } from "../../test/harness/zookeeper.ts";
import type { PeerResult } from "./ansible.ts";
import { type BurstResult, burstAdmission } from "./burst.ts";
import { epochMs } from "./event-lines.ts";
import { handoffPairs } from "./rollout.ts";
import { type FloorResult, floorRun } from "./scale-floor.ts";
import { SLEEP_COMMANDS } from "./sleep-fleet.ts";
import { type Quantiles, quantiles, round } from "./stats.ts";
import { cpuMs, startWorkers } from "./worker-pool.ts";
import { packetsReceived } from "./zk-metrics.ts";

export type QueueKind = "ticket" | "listing";

export interface ScaleResult extends PeerResult {
  queue: "new" | "old";
  zkRequestsPerHost: number;
  bytesPerHost: number;
  /** Publish → the first deploy start on any host (a sentinel's, usually: see SENTINELS). */
  publishToFirstDeployMs: Quantiles;
  /** The same, counting only the agents in the crowded worker processes: what a host sees when
   *  it shares its CPU with thousands of other agents — the simulation's cost, not the queue's. */
  crowdedFirstDeployMs: Quantiles;
  handoffGapMs: Quantiles;
  zkServer: { cpuPct: number; heapMb: number };
  /** The worker processes' CPU during the rollouts, in % of one core (2 cores: 200 % is all). */
  workersCpuPct: number;
  /** Worker event-loop stalls (≥ 10 ms) per measured rollout, and how many of the slow handoffs
   *  (> 20 ms) a stall overlapped: the simulation's share of the tail, not the queue's. */
  workerStalls: { perRollout: number; maxMs: number; slowHandoffs: number; slowDuringStall: number };
  /** The ZooKeeper JVM's GC pauses during the measured rollouts, and how many of the slow
   *  handoffs one overlapped. */
  zkGcPauses: { perRollout: number; maxMs: number; slowDuringPause: number };
  /** Admissions go one at a time (the queue's head): when releases bunch up, each waits for the
   *  ones before it. `stepMs`: p50 time between back-to-back admissions (starts < 10 ms apart);
   *  `slowBehindAdmission`: slow handoffs whose start came < 10 ms after the previous start. */
  admissionChain: { stepMs: number; slowBehindAdmission: number };
}

/** Starts closer than this are back to back: the next admission began as soon as it could. */
const BACK_TO_BACK_MS = 10;

/** GC pauses from a `-Xlog:gc:file=…:time` log: `[<ISO time>] GC(n) Pause … 12.345ms`. */
function gcPauses(logPath: string, from: number, to: number): { from: number; to: number }[] {
  let text = "";
  try {
    text = readFileSync(logPath, "utf8");
  } catch {
    return [];
  }
  const pauses: { from: number; to: number }[] = [];
  for (const match of text.matchAll(/^\[([^\]]+)\].*Pause.* ([\d.]+)ms$/gm)) {
    const end = Date.parse((match[1] ?? "").replace(/([+-]\d\d)(\d\d)$/, "$1:$2"));
    const ms = Number(match[2]);
    if (Number.isFinite(end) && end >= from && end - ms <= to) pauses.push({ from: end - ms, to: end });
  }
  return pauses;
}

/** The largest fleet the old listing queue runs at by default (see runScaleBench). */
const OLD_QUEUE_MAX_HOSTS = 1_000;

const bench: MutationContext = { actor: "bench", now: () => new Date() };
const WORKER = new URL("./scale-worker.ts", import.meta.url).pathname;

/** A handoff gap above this is "slow" (the p99 target at 1 000 hosts). */
const SLOW_HANDOFF_MS = 20;

/** Bytes the server has sent to every client socket so far, from the clients' side (ss). */
function bytesToClients(port: number): number {
  const out = Bun.spawnSync(["ss", "-tinH", "state", "established", "dst", `127.0.0.1:${port}`]).stdout.toString();
  let total = 0;
  for (const match of out.matchAll(/bytes_received:(\d+)/g)) total += Number(match[1]);
  return total;
}

/** Heap in use (MB) by jstat, else the JVM's resident memory. */
function heapMb(pid: number): number {
  const out = Bun.spawnSync(["jstat", "-gc", String(pid)])
    .stdout.toString()
    .trim()
    .split("\n");
  const [head, values] = [out[0]?.trim().split(/\s+/) ?? [], out[1]?.trim().split(/\s+/) ?? []];
  const used = ["S0U", "S1U", "EU", "OU"].map((k) => Number(values[head.indexOf(k)]));
  if (used.every((n) => Number.isFinite(n))) return round(used.reduce((a, b) => a + b, 0) / 1024, 1);
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return round(Number(rss ?? 0) / 1024, 1);
}

/** One fleet size on one queue: a warm-up rollout, then `rounds` measured ones. */
export async function scaleRun(
  server: ZooKeeperServer,
  hosts: number,
  queue: QueueKind,
  options: { deployMs: number; workers: number; rounds: number; gcLog: string },
): Promise<ScaleResult> {
  const { deployMs, workers, rounds, gcLog } = options;
  const slots = Math.max(1, Math.round(hosts / 20));
  const connectString = `${server.connectString}/scale-${queue}-${hosts}-${Math.random().toString(36).slice(2, 7)}`;
  const admin = await ZkClient.connect({ connectString, connectTimeoutMs: 60_000, operationTimeoutMs: 120_000, createChroot: true });
  await publishApp(admin, "bench", "0", { slots, ...SLEEP_COMMANDS }, bench); // every host deploys on start
  const fleet = await startWorkers(WORKER, connectString, hosts, workers, [String(deployMs), queue]);
  const succeeded = (): number => fleet.events.filter((e) => e.m === "deploy succeeded").length;
  const timeoutMs = 10 * Math.ceil(hosts / slots) * deployMs + 120_000;
  try {
    await waitForStrict(() => succeeded() >= hosts, timeoutMs, "the warm-up rollout");
    const walls: number[] = [];
    const firsts: number[] = [];
    const crowdedFirsts: number[] = [];
    const gaps: number[] = [];
    const stalls: { from: number; to: number }[] = [];
    let slow = 0;
    let slowDuringStall = 0;
    const pauses: { from: number; to: number }[] = [];
    let slowDuringPause = 0;
    const steps: number[] = [];
    let slowBehindAdmission = 0;
    let packets = 0;
    let bytes = 0;
    let cpu = 0;
    let workerCpu = 0;
    let busyMs = 0;
    let heap = 0;
    for (let round_ = 1; round_ <= rounds; round_++) {
      await Bun.sleep(500);
      fleet.events.length = 0;
      const [packets0, bytes0, cpu0, workerCpu0] = [
        await packetsReceived(server.port),
        bytesToClients(server.port),
        cpuMs(server.pid),
        fleet.cpuMs(),
      ];
      const t0 = epochMs(); // the clock the workers stamp their events with
      await publishApp(admin, "bench", String(round_), {}, bench);
      await waitForStrict(() => succeeded() >= hosts, timeoutMs, `measured rollout ${round_}`);
      const t1 = Math.max(...fleet.events.filter((e) => e.m === "deploy succeeded").map((e) => e.t));
      await Bun.sleep(300); // the last releases land
      packets += (await packetsReceived(server.port)) - packets0;
      bytes += bytesToClients(server.port) - bytes0;
      cpu += cpuMs(server.pid) - cpu0;
      workerCpu += fleet.cpuMs() - workerCpu0;
      busyMs += t1 - t0;
      heap = Math.max(heap, heapMb(server.pid));
      const startEvents = fleet.events.filter((e) => e.m === "deploy started");
      const starts = startEvents.map((e) => e.t);
      walls.push(t1 - t0);
      firsts.push(Math.min(...starts) - t0);
      crowdedFirsts.push(Math.min(...startEvents.filter((e) => !e.sentinel).map((e) => e.t)) - t0);
      const pairs = handoffPairs(
        fleet.events.filter((e) => e.m === "slot released").map((e) => e.t),
        starts,
        slots,
      );
      gaps.push(...pairs.map((p) => Math.max(0, p.start - p.release)));
      const roundStalls = fleet.events.filter((e) => e.m === "stall").map((e) => ({ from: e.t - (e.ms ?? 0), to: e.t }));
      stalls.push(...roundStalls);
      const roundPauses = gcPauses(gcLog, t0, t1);
      pauses.push(...roundPauses);
      const sortedStarts = [...starts].sort((a, b) => a - b);
      for (let i = 1; i < sortedStarts.length; i++) {
        const step = (sortedStarts[i] ?? 0) - (sortedStarts[i - 1] ?? 0);
        if (step < BACK_TO_BACK_MS) steps.push(step);
      }
      for (const p of pairs) {
        if (p.start - p.release <= SLOW_HANDOFF_MS) continue;
        if (p.start - p.previousStart < BACK_TO_BACK_MS) slowBehindAdmission++;
        slow++;
        if (roundStalls.some((st) => st.from < p.start && st.to > p.release)) slowDuringStall++;
        if (roundPauses.some((gc) => gc.from < p.start && gc.to > p.release)) slowDuringPause++;
      }
    }
    const idealMs = Math.ceil(hosts / slots) * deployMs;
    const wallMs = walls.reduce((a, b) => a + b, 0) / walls.length;
    return {
      queue: queue === "ticket" ? "new" : "old",
      hosts,
      slots,
      deployMs,
      wallMs: round(wallMs),
      idealMs,
      ratio: round(wallMs / idealMs, 3),
      zkRequestsPerHost: round(packets / rounds / hosts, 1),
      bytesPerHost: round(bytes / rounds / hosts, 0),
      publishToFirstDeployMs: quantiles(firsts),
      crowdedFirstDeployMs: quantiles(crowdedFirsts),
      handoffGapMs: quantiles(gaps),
      zkServer: { cpuPct: round((100 * cpu) / busyMs, 1), heapMb: heap },
      workersCpuPct: round((100 * workerCpu) / busyMs, 1),
      workerStalls: {
        perRollout: round(stalls.length / rounds, 1),
        maxMs: Math.round(Math.max(0, ...stalls.map((st) => st.to - st.from))),
        slowHandoffs: slow,
        slowDuringStall,
      },
      admissionChain: { stepMs: quantiles(steps).p50, slowBehindAdmission },
      zkGcPauses: {
        perRollout: round(pauses.length / rounds, 1),
        maxMs: round(Math.max(0, ...pauses.map((p) => p.to - p.from)), 1),
        slowDuringPause,
      },
    };
  } finally {
    await fleet.stop();
    await admin.deleteRecursive("/apps").catch(() => undefined);
    await admin.close();
  }
}

/**
 * The whole `--scale` run: one ZooKeeper (2 GB heap, no connection limit), each fleet size on
 * the old then the new queue, and the report (a table, or `{scale, machine}` with --json).
 * `sizes`: 100, 1 000, 2 000, 5 000, 10 000 (100 and 1 000 with --quick); the old queue up to 1 000.
 */
export async function runScaleBench(options: {
  json: boolean;
  quick: boolean;
  startZooKeeper: typeof import("../../test/harness/zookeeper.ts").startZooKeeper;
}): Promise<void> {
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  const started = performance.now();
  // BENCH_SCALE_SIZES=40,200 overrides the sizes (a quick look while developing).
  const override = process.env.BENCH_SCALE_SIZES?.split(",")
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
  const sizes = override?.length ? override : options.quick ? [100, 1_000] : [100, 1_000, 2_000, 5_000, 10_000];
  // The JVM's default collector (G1 on Java 17), as zkServer.sh runs it; its pauses are logged
  // so the slow handoffs they cause can be counted.
  const gcLog = join(mkdtempSync(join(tmpdir(), "conveyor-scale-")), "zk-gc.log");
  const server = await options.startZooKeeper({
    jvmFlags: ["-Xmx2g", `-Xlog:gc:file=${gcLog}:time`],
    maxClientCnxns: 0,
    tickTime: 2_000,
    extraConfig: { globalOutstandingLimit: "100000" },
    timeoutMs: 60_000,
  });
  const scale: ScaleResult[] = [];
  let burst: BurstResult | undefined;
  const floor: FloorResult[] = [];
  try {
    for (const hosts of sizes) {
      // BENCH_SCALE_QUEUES=ticket (or listing) runs one queue only. By default the old listing
      // queue runs up to OLD_QUEUE_MAX_HOSTS: above, its N²/2 names per rollout (50 million at
      // 10 000 hosts) would take the run's whole time budget; its curve is measured below that.
      const asked = process.env.BENCH_SCALE_QUEUES?.split(",");
      const queues = (["listing", "ticket"] as const).filter((q) =>
        asked ? asked.includes(q) : q === "ticket" || hosts <= OLD_QUEUE_MAX_HOSTS,
      );
      for (const queue of queues) {
        say(`scale: ${hosts} agents, ${queue} queue, slots ${Math.max(1, Math.round(hosts / 20))}, 2 s deploys…`);
        scale.push(await scaleRun(server, hosts, queue, { deployMs: 2_000, workers: 2, rounds: hosts >= 10_000 ? 1 : 2, gcLog }));
      }
    }
    // The floor: bare sessions doing only what any queue must, at each size (BENCH_SCALE_FLOOR=0 skips it).
    if (process.env.BENCH_SCALE_FLOOR !== "0") {
      for (const hosts of sizes) {
        say(`floor: ${hosts} bare sessions, publish → read, ticket, first admission…`);
        floor.push(await floorRun(server, hosts, options.quick ? 2 : 3));
      }
    }
    // The queue alone, a whole wave freed at once: bulk admission against one at a time.
    const waiters = Math.max(...sizes.filter((n) => n <= 10_000).map((n) => Math.round(n / 20)), 1);
    say(`burst: ${waiters} waiters, limit 0 → ${waiters}, one admission at a time and in bulk…`);
    burst = await burstAdmission(server.connectString, waiters, options.quick ? 2 : 5);
  } finally {
    await server.stop();
    rmSync(dirname(gcLog), { recursive: true, force: true });
  }
  const machine = {
    cores: navigator.hardwareConcurrency,
    date: new Date().toISOString(),
    quick: options.quick,
    elapsedS: Math.round((performance.now() - started) / 1_000),
  };
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ scale, floor, burst, machine }, null, 2)}\n`);
    return;
  }
  const header = [
    "queue",
    "hosts",
    "slots",
    "wallMs",
    "idealMs",
    "ratio",
    "zkReq/host",
    "bytes/host",
    "first p50",
    "crowded first p50",
    "gap p50",
    "gap p99",
    "zk cpu%",
    "zk heap MB",
    "workers cpu%",
    "stalls",
    "gc pauses",
    "slow (in stall, in gc, behind)",
    "step ms",
  ];
  const rows = scale.map((r) =>
    [
      r.queue,
      r.hosts,
      r.slots,
      r.wallMs,
      r.idealMs,
      r.ratio,
      r.zkRequestsPerHost,
      r.bytesPerHost,
      r.publishToFirstDeployMs.p50,
      r.crowdedFirstDeployMs.p50,
      r.handoffGapMs.p50,
      r.handoffGapMs.p99,
      r.zkServer.cpuPct,
      r.zkServer.heapMb,
      r.workersCpuPct,
      r.workerStalls.perRollout,
      `${r.zkGcPauses.perRollout} (max ${r.zkGcPauses.maxMs})`,
      `${r.workerStalls.slowHandoffs} (${r.workerStalls.slowDuringStall}, ${r.zkGcPauses.slowDuringPause}, ${r.admissionChain.slowBehindAdmission})`,
      r.admissionChain.stepMs,
    ].map(String),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i] ?? 0)).join("  ");
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  for (const f of floor) {
    console.log(
      `floor at ${f.hosts}: publish → first admission p50 ${f.firstAdmissionMs.p50} ms, → every session queued p50 ${f.allQueuedMs.p50} ms`,
    );
  }
  if (burst) {
    const { waiters, singleMs, bulkMs, admissions } = burst;
    console.log(
      `burst of ${waiters}: one at a time p50 ${singleMs.p50} ms (${admissions.single} admissions), bulk p50 ${bulkMs.p50} ms (${admissions.bulk} admissions)`,
    );
  }
  console.log(`(${machine.elapsedS} s, ${machine.cores} cores)`);
}
