// `bun run bench [--quick] [--json] [--tls]` — Conveyor against the physical floor and against
// Ansible; `--tls` adds the cost of mutual TLS, plain and TLS side by side in this one run.
// `bun run bench --scale [--quick] [--json]` — fleets of 100 to 10 000 agents on the new slot queue,
// and up to 1 000 on the old one (scripts/bench/scale.ts).
// Benchmarks are scripts, not timed tests: the machine is shared and noisy, so each number is a
// median (or p50/p99) measured within this one run. See docs/PERFORMANCE.md for a full run.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startZooKeeper } from "../test/harness/zookeeper.ts";
import { type PeerResult, ansibleRollout, ensureAnsible } from "./bench/ansible.ts";
import { type Footprint, measureFootprint } from "./bench/footprint.ts";
import { publishToFirstDeploy, publishToFirstDeploySamples, zkWriteRtt } from "./bench/latency.ts";
import { type RolloutResult, inProcessRollout, processRollout } from "./bench/rollout.ts";
import { type Quantiles, quantiles } from "./bench/stats.ts";
import { type Transport, connectTimes, plainTransport, tlsTransport } from "./bench/transport.ts";
import { runScaleBench } from "./bench/scale.ts";
import { makePki } from "../test/harness/certs.ts";

interface TlsCost {
  transport: Transport["name"];
  connectMs: Quantiles;
  publishToFirstDeployMs: Quantiles;
  /** In-process rollouts, 100 agents, 10 slots, 200 ms deploys, interleaved with the other transport. */
  rolloutRatios: number[];
}

interface BenchResult {
  tls?: TlsCost[];
  rollout: RolloutResult[];
  publishToFirstDeployMs: Quantiles;
  footprint: Footprint;
  peers: { ansible: PeerResult | null; ansibleRuns?: PeerResult[] };
  floor: { zkWriteRttMs: number };
  machine: { cores: number; date: string; quick: boolean; elapsedS: number };
}

const args = new Set(process.argv.slice(2));
for (const arg of args) {
  if (!["--quick", "--json", "--tls", "--scale"].includes(arg)) {
    console.error(`bench: unknown option "${arg}" (use --quick, --json, --tls, --scale)`);
    process.exit(2);
  }
}
const quick = args.has("--quick");
const withTls = args.has("--tls");
const json = args.has("--json");
const say = (line: string): void => void process.stderr.write(`${line}\n`);

if (args.has("--scale")) {
  // A run of its own (fleet sizes up to 10 000, old and new queue): see scripts/bench/scale.ts.
  await runScaleBench({ json, quick, startZooKeeper });
  process.exit(0);
}

const root = join(import.meta.dir, "..");
const binary = join(root, "dist", "conveyor");
if (!existsSync(binary)) {
  const build = Bun.spawnSync(["bun", join(root, "scripts", "build.ts"), "--host-only"], { stdout: "ignore", stderr: "inherit" });
  if (build.exitCode !== 0) {
    console.error("bench: building dist/conveyor failed");
    process.exit(1);
  }
}

/**
 * Plain against TLS on the same server. Both are warmed up first (the JVM compiles its TLS code
 * on the first handshakes), then measured in alternating rounds, so drift on a shared machine
 * hits both alike; samples of a transport are pooled across its rounds.
 */
async function measureTlsCost(secure: Transport): Promise<TlsCost[]> {
  const transports = [plainTransport(server), secure];
  const rounds = quick ? 2 : 3;
  const pooled = transports.map(() => ({ connect: [] as number[], latency: [] as number[], ratios: [] as number[] }));
  say("tls: warm-up, plain and TLS…");
  for (const transport of transports) {
    await connectTimes(transport, 20);
    await publishToFirstDeploySamples(transport, 5);
  }
  for (let round = 0; round < rounds; round++) {
    for (const [i, transport] of transports.entries()) {
      say(`tls: round ${round + 1}/${rounds}, ${transport.name}: connect, publish → first deploy, rollout of 100 in-process agents…`);
      const into = pooled[i];
      if (!into) continue;
      into.connect.push(...(await connectTimes(transport, quick ? 10 : 20)));
      into.latency.push(...(await publishToFirstDeploySamples(transport, quick ? 10 : 20)));
      into.ratios.push((await inProcessRollout(server, 100, 10, 200, transport)).ratio);
    }
  }
  return transports.map((transport, i) => ({
    transport: transport.name,
    connectMs: quantiles(pooled[i]?.connect ?? []),
    publishToFirstDeployMs: quantiles(pooled[i]?.latency ?? []),
    rolloutRatios: pooled[i]?.ratios ?? [],
  }));
}

const started = performance.now();
// Full JIT for the server under load, and no per-IP connection limit (1 000 sessions).
const pki = withTls ? makePki(mkdtempSync(join(tmpdir(), "conveyor-bench-pki-"))) : undefined;
const server = await startZooKeeper({
  jvmFlags: ["-Xmx1g", "-XX:+UseSerialGC"],
  maxClientCnxns: 0,
  tickTime: 2_000,
  ...(pki ? { tls: { keyStore: pki.serverKeyStore, trustStore: pki.ca } } : {}),
});
let result: BenchResult | undefined;
try {
  const tls = pki ? await measureTlsCost(tlsTransport(server, pki)) : undefined;
  say(`ZooKeeper ${server.connectString} (pid ${server.pid})`);
  say("floor: ZooKeeper write round trip…");
  const zkWriteRttMs = await zkWriteRtt(server, quick ? 300 : 1_000);

  const rollout: RolloutResult[] = [];
  const deployMs = 200;
  say("rollout: 10 agent processes, 2 slots, 200 ms deploys…");
  rollout.push(await processRollout(server, binary, 10, 2, deployMs));
  if (!quick) {
    say("rollout: 20 agent processes, 4 slots…");
    rollout.push(await processRollout(server, binary, 20, 4, deployMs));
  }
  say("rollout: 100 in-process agents, 10 slots…");
  rollout.push(await inProcessRollout(server, 100, 10, deployMs));
  if (!quick) {
    say("rollout: 1 000 in-process agents, 50 slots…");
    rollout.push(await inProcessRollout(server, 1_000, 50, deployMs));
  }

  say("latency: publish → first deploy start…");
  const publishToFirstDeployMs = await publishToFirstDeploy(server, quick ? 20 : 50);

  say(`footprint: idle agent with 10 apps over ${quick ? 10 : 30} s…`);
  const footprint = await measureFootprint(server, binary, quick ? 10 : 30);

  let ansible: PeerResult | null = null;
  const ansibleRuns: PeerResult[] = [];
  if (ensureAnsible()) {
    say("peer: Ansible, 10 local hosts, serial 2, 200 ms task…");
    ansible = ansibleRollout(10, 2, deployMs);
    ansibleRuns.push(ansible);
    if (!quick) ansibleRuns.push(ansibleRollout(20, 4, deployMs));
  } else say("peer: Ansible could not be installed; skipped");

  result = {
    ...(tls ? { tls } : {}),
    rollout,
    publishToFirstDeployMs,
    footprint,
    peers: { ansible, ...(ansibleRuns.length > 1 ? { ansibleRuns } : {}) },
    floor: { zkWriteRttMs },
    machine: { cores: navigator.hardwareConcurrency, date: new Date().toISOString(), quick, elapsedS: 0 },
  };
} finally {
  await server.stop();
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
}
result.machine.elapsedS = Math.round((performance.now() - started) / 1_000);

if (json) {
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} else {
  const rows = result.rollout.map((r) =>
    [r.mode, r.hosts, r.slots, r.deployMs, r.wallMs, r.idealMs, r.ratio, r.zkRequestsPerHost, r.handoffGapMs.p50, r.handoffGapMs.p99].map(
      String,
    ),
  );
  const header = ["mode", "hosts", "slots", "deployMs", "wallMs", "idealMs", "ratio", "zkReq/host", "gap p50", "gap p99"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i] ?? 0)).join("  ");
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  const f = result.footprint;
  console.log(`\npublish → first deploy: p50 ${result.publishToFirstDeployMs.p50} ms, p99 ${result.publishToFirstDeployMs.p99} ms`);
  console.log(
    `footprint: idle agent RSS ${f.agentRssMb} MB, idle CPU ${f.idleCpuPct} %, binary ${f.binaryMb} MB, --version ${f.startupMs} ms, app create ${f.appCreateMs} ms`,
  );
  for (const a of result.peers.ansibleRuns ?? (result.peers.ansible ? [result.peers.ansible] : [])) {
    console.log(`Ansible: ${a.hosts} hosts, serial ${a.slots}, ${a.deployMs} ms → ${a.wallMs} ms (ideal ${a.idealMs}, ratio ${a.ratio})`);
  }
  console.log(`floor: ZooKeeper write round trip ${result.floor.zkWriteRttMs} ms`);
  for (const t of result.tls ?? []) {
    console.log(
      `${t.transport.padEnd(5)}: connect p50 ${t.connectMs.p50} ms p99 ${t.connectMs.p99} ms · publish → first deploy p50 ${t.publishToFirstDeployMs.p50} ms p99 ${t.publishToFirstDeployMs.p99} ms · rollout ratio ${t.rolloutRatios.join(", ")}`,
    );
  }
  console.log(`(${result.machine.elapsedS} s, ${result.machine.cores} cores)`);
}
