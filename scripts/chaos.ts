// Seeded chaos against a real 3-node ZooKeeper ensemble and compiled agents:
//
//   bun run chaos --rounds 100 --seed 42 [--agents 5] [--session-ms 2000] [--json] [--verbose]
//
// One ensemble and one fleet (each agent behind its own proxies, see test/harness/fault-fleet.ts)
// are kept across rounds. Each round publishes a new version and, during the rollout, injects
// 1–3 faults drawn from a seeded PRNG (mulberry32, test/helpers/fuzz.ts): the same seed replays
// the same schedule. Faults: leader kill + restart, follower kill + restart, agent kill -9 +
// restart (same host id and --state-dir: the journal must adopt the orphan) — later, or within
// 0.3 s (then the orphan's slot must be held without a gap: no excess allowed), agent SIGSTOP +
// SIGCONT, proxy cut / stall / block, set-slots, a directory of the tree deleted by hand (lock,
// leases, hosts, failures, canary, /agents), the app deleted and created again at once with
// the same version and slots (running deploys must keep their slots in the new app, and no host
// may start the new app's deploy on top of the old one). After each round: every live host converged,
// the rollout ended (no lock/lease node left, no deploy process left), no agent crashed, and
// never more deploys than slots — except the allowed case of docs/ARCHITECTURE.md (a deploy still running after its
// lease was lost: session lost, agent killed, leases/ or the app deleted by hand), which is counted apart.
// An operator command (app create, set-slots, app delete) cut off by a dying server — exit 3,
// "connection to ZooKeeper lost" — is run again, as an operator would (FaultFleet.operatorCli). Prints a summary table (or --json) and exits 1 on
// any violation. Everything started is stopped by PID, on success, failure and signals.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Rng } from "../test/helpers/fuzz.ts";
import { startEnsemble, type Ensemble } from "../test/harness/ensemble.ts";
import { FaultFleet } from "../test/harness/fault-fleet.ts";
import { percentile } from "../test/harness/percentile.ts";
import { AGENTS, appPath } from "../src/zk/paths.ts";

const USAGE = `usage: bun run chaos [--rounds N] [--seed S] [--agents A] [--session-ms MS] [--json] [--verbose]
  --rounds N       rounds to run (default 100)
  --seed S         PRNG seed, decimal or 0x-hex (default 1); the same seed replays the same faults
  --agents A       agent processes (default 5)
  --session-ms MS  the agents' session timeout (default 2000)
  --json           print the summary as JSON
  --aim            aim agent and network faults at a host that is deploying at that moment (the
                   schedule stays seeded; which host is deploying depends on timing)
  --verbose        print each round's faults and numbers (stderr)`;

const FAULT_KINDS = [
  "leader-kill",
  "follower-restart",
  "agent-kill9",
  "agent-kill9-fast",
  "agent-stop",
  "proxy-cut",
  "proxy-stall",
  "proxy-block",
  "set-slots",
  "app-recreate",
  "node-delete",
] as const;
type FaultKind = (typeof FAULT_KINDS)[number];
const ENSEMBLE_FAULTS: ReadonlySet<FaultKind> = new Set(["leader-kill", "follower-restart"]);
const AGENT_FAULTS: ReadonlySet<FaultKind> = new Set([
  "agent-kill9",
  "agent-kill9-fast",
  "agent-stop",
  "proxy-cut",
  "proxy-stall",
  "proxy-block",
]);
/** What node-delete removes (with everything under it), as `zkCli deleteall` would. */
const DELETABLE = ["lock", "leases", "hosts", "failures", "canary", "/agents"] as const;
const CONVERGE_TIMEOUT_MS = 45_000;
const QUIET_TIMEOUT_MS = 20_000;

interface Options {
  rounds: number;
  seed: number;
  agents: number;
  sessionMs: number;
  json: boolean;
  verbose: boolean;
  aim: boolean;
}

interface PlannedFault {
  kind: FaultKind;
  delayMs: number;
  durationMs: number;
  host?: string;
  /** With --aim: which of the hosts deploying at injection time to hit (modulo their number). */
  aimIndex: number;
  slots?: number;
  /** node-delete: which directory. */
  node?: (typeof DELETABLE)[number];
}

interface RoundResult {
  round: number;
  version: string;
  faults: string[];
  convergeMs: number | undefined;
  deploys: number;
  maxConcurrent: number;
  slots: number;
  allowedExcess: number;
  allowedExcessMs: number;
  lostDeploys: number;
  leaked: string[];
  orphans: number[];
  crashed: string[];
  errorLines: string[];
  violations: string[];
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      rounds: { type: "string", default: "100" },
      seed: { type: "string", default: "1" },
      agents: { type: "string", default: "5" },
      "session-ms": { type: "string", default: "2000" },
      json: { type: "boolean", default: false },
      verbose: { type: "boolean", default: false },
      aim: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const int = (name: string, text: string, min: number, max: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) {
      console.error(`invalid --${name} ${JSON.stringify(text)}: an integer ${min}..${max}\n${USAGE}`);
      process.exit(2);
    }
    return n;
  };
  return {
    rounds: int("rounds", values.rounds, 1, 100_000),
    seed: int("seed", values.seed, 0, 0xffff_ffff),
    agents: int("agents", values.agents, 2, 30),
    sessionMs: int("session-ms", values["session-ms"], 1_000, 10_000),
    json: values.json,
    verbose: values.verbose,
    aim: values.aim,
  };
}

/** 1–3 faults at random moments of the rollout; at most one on the ensemble, one per agent. */
function planFaults(rng: Rng, hosts: readonly string[], sessionMs: number): PlannedFault[] {
  const count = rng.range(1, 3);
  const faults: PlannedFault[] = [];
  const used = new Set<string>();
  let ensembleFault = false;
  while (faults.length < count) {
    const kind = rng.pick(FAULT_KINDS);
    if (ENSEMBLE_FAULTS.has(kind) && ensembleFault) continue;
    // Agent and network faults last up to 1.75 × the session timeout (so sessions are lost
    // sometimes); a killed ZooKeeper member stays down up to 1 s.
    const durationMs = ENSEMBLE_FAULTS.has(kind) ? rng.range(0, 1_000) : rng.range(300, Math.round(sessionMs * 1.75));
    const fault: PlannedFault = { kind, delayMs: rng.range(0, 1_500), durationMs, aimIndex: rng.int(1_000) };
    if (AGENT_FAULTS.has(kind)) {
      const free = hosts.filter((h) => !used.has(h));
      if (free.length === 0) continue;
      fault.host = rng.pick(free);
      used.add(fault.host);
    }
    if (kind === "set-slots") fault.slots = rng.range(1, 3);
    if (kind === "agent-kill9-fast") fault.durationMs = rng.range(0, 300);
    if (kind === "node-delete") fault.node = rng.pick(DELETABLE);
    if (ENSEMBLE_FAULTS.has(kind)) ensembleFault = true;
    faults.push(fault);
  }
  return faults;
}

function describeFault(f: PlannedFault): string {
  const target = f.host ? ` ${f.host}` : f.slots !== undefined ? ` →${f.slots}` : f.node ? ` ${f.node}` : "";
  const lasting = [
    "agent-kill9",
    "agent-kill9-fast",
    "agent-stop",
    "proxy-stall",
    "proxy-block",
    "leader-kill",
    "follower-restart",
  ].includes(f.kind)
    ? ` ${f.durationMs}ms`
    : "";
  return `${f.kind}${target}${lasting} @+${f.delayMs}ms`;
}

/** With --aim, an agent fault hits a host deploying right now that no other fault of this round
 *  hit, else the planned host (or another one not hit yet). Records the host hit in `f.host`. */
function aimAt(fleet: FaultFleet, f: PlannedFault, fromLine: number, taken: Set<string>): string {
  const planned = f.host ?? "";
  const running = new Map<number, string>();
  for (const l of fleet.lines(fromLine)) {
    if (l.kind === "start") running.set(l.pid, l.host);
    else running.delete(l.pid);
  }
  const live = fleet.liveHosts();
  const deploying = [...new Set(running.values())].filter((h) => !taken.has(h) && live.includes(h)).sort();
  const spare = taken.has(planned) ? (fleet.hosts.find((h) => !taken.has(h)) ?? planned) : planned;
  const host = deploying.length ? (deploying[f.aimIndex % deploying.length] ?? spare) : spare;
  taken.add(host);
  f.host = host;
  return host;
}

async function inject(
  fleet: FaultFleet,
  ens: Ensemble,
  f: PlannedFault,
  version: string,
  aim: { fromLine: number; taken: Set<string> } | undefined,
): Promise<void> {
  await Bun.sleep(f.delayMs);
  const host = aim && AGENT_FAULTS.has(f.kind) ? aimAt(fleet, f, aim.fromLine, aim.taken) : (f.host ?? "");
  switch (f.kind) {
    case "leader-kill": {
      const heal = fleet.beginFault(f.kind);
      const { killed } = await ens.killLeader();
      await Bun.sleep(f.durationMs);
      await ens.start(killed);
      heal();
      return;
    }
    case "follower-restart": {
      const leader = await ens.leader();
      const follower = ens.members.find((m) => m.id !== leader && m.state === "running");
      if (!follower) return;
      const heal = fleet.beginFault(f.kind);
      await ens.kill(follower.id, "SIGKILL");
      await Bun.sleep(f.durationMs);
      await ens.start(follower.id);
      heal();
      return;
    }
    case "agent-kill9": // restarted after up to 1.75 session timeouts: the orphan may lose its slot
    case "agent-kill9-fast": // restarted within 0.3 s: the orphan's slot must be held throughout
      await fleet.kill9AndRestart(host, f.durationMs);
      return;
    case "agent-stop":
      return lasting(
        f,
        () => fleet.freeze(host),
        () => fleet.thaw(host),
      );
    case "proxy-cut":
      fleet.cut(host);
      return;
    case "proxy-stall":
      return lasting(
        f,
        () => fleet.stall(host),
        () => fleet.resume(host),
      );
    case "proxy-block":
      return lasting(
        f,
        () => fleet.block(host),
        () => fleet.unblock(host),
      );
    case "set-slots":
      await fleet.setSlots(f.slots ?? 1);
      return;
    case "node-delete": {
      const node = f.node ?? "lock";
      await fleet.deleteNode(node === "/agents" ? AGENTS : `${appPath(fleet.app)}/${node}`);
      return;
    }
    case "app-recreate": {
      const slots = fleet.slotChanges.at(-1)?.slots ?? 2;
      await fleet.deleteApp();
      await fleet.publish(version, { slots });
      return;
    }
  }
}

/** A fault that lasts: begun, then healed `f.durationMs` later. */
async function lasting(f: PlannedFault, begin: () => void, heal: () => void): Promise<void> {
  begin();
  await Bun.sleep(f.durationMs);
  heal();
}

/** After a round that went wrong: heal everything so the next round starts clean. */
async function heal(fleet: FaultFleet, ens: Ensemble): Promise<void> {
  for (const host of fleet.hosts) {
    const a = fleet.agent(host);
    a.proxies.reset();
    if (a.frozenAt !== undefined) fleet.thaw(host);
    if (a.proc.exit !== undefined) await fleet.restart(host).catch(() => undefined);
  }
  for (const m of ens.members) if (m.state === "frozen") await ens.kill(m.id, "SIGCONT");
  await Promise.all(ens.members.filter((m) => m.state === "down").map((m) => ens.start(m.id)));
  await ens.waitForQuorum();
}

async function runRound(fleet: FaultFleet, ens: Ensemble, rng: Rng, round: number, opts: Options): Promise<RoundResult> {
  const fromLine = fleet.lineCount();
  const crashedBefore = fleet.crashed().length;
  const errorsBefore = fleet.errorLines().length;
  fleet.monitor.trim(Date.now() - 60_000);
  // Deploys of 0.3–1 s; sometimes one host's is longer than the session (the allowed case).
  fleet.setDeploySeconds(0);
  for (const host of fleet.hosts) fleet.setDeploySeconds(rng.range(3, 10) / 10, [host]);
  if (rng.bool(0.3)) fleet.setDeploySeconds((opts.sessionMs * rng.range(12, 18)) / 10_000, [rng.pick(fleet.hosts)]);
  const faults = planFaults(rng, fleet.hosts, opts.sessionMs);
  const version = `1.${round}`;
  const violations: string[] = [];

  const pub = await fleet.publish(version, round === 1 ? { slots: 2 } : {});
  const aim = opts.aim ? { fromLine, taken: new Set<string>() } : undefined;
  const injected = await Promise.allSettled(faults.map((f) => inject(fleet, ens, f, version, aim)));
  injected.forEach((r, i) => {
    if (r.status === "rejected")
      violations.push(`fault ${describeFault(faults[i] as PlannedFault)} could not be injected/healed: ${String(r.reason)}`);
  });

  let convergeMs: number | undefined;
  try {
    convergeMs = (await fleet.waitConverged(version, CONVERGE_TIMEOUT_MS)) - pub.at;
  } catch (error) {
    violations.push(`no convergence: ${(error as Error).message.split("\n")[0]}`);
  }
  let leaked: string[] = [];
  try {
    await fleet.waitQuiet(QUIET_TIMEOUT_MS, fromLine);
  } catch {
    const left = await fleet.leftovers().catch(() => ({ lock: [], leases: [] }));
    leaked = [...left.lock.map((n) => `lock/${n}`), ...left.leases.map((n) => `leases/${n}`)];
    if (leaked.length) violations.push(`nodes left after the rollout: ${leaked.join(", ")}`);
  }
  const orphans = fleet.orphans(fromLine);
  if (orphans.length) violations.push(`deploy processes left running: ${orphans.join(", ")}`);
  const crashed = fleet.crashed().slice(crashedBefore);
  for (const c of crashed) violations.push(`agent crashed: ${c}`);
  const errorLines = fleet.errorLines().slice(errorsBefore);
  for (const e of errorLines) violations.push(`agent logged an error: ${e}`);
  const c = fleet.analyse(fromLine);
  violations.push(...c.violations);
  if (violations.length) await heal(fleet, ens).catch((e: unknown) => violations.push(`heal failed: ${String(e)}`));
  return {
    round,
    version,
    faults: faults.map(describeFault),
    convergeMs,
    deploys: c.deploys,
    maxConcurrent: c.maxConcurrent,
    slots: c.maxLimit,
    allowedExcess: c.allowedExcess,
    allowedExcessMs: c.allowedExcessMs,
    lostDeploys: c.lostDeploys.orphan + c.lostDeploys.sessionLost + c.lostDeploys.leaseDeleted,
    leaked,
    orphans,
    crashed,
    errorLines,
    violations,
  };
}

function summarise(results: RoundResult[], opts: Options, wallMs: number): Record<string, unknown> {
  const byKind: Record<string, number> = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0]));
  for (const r of results) for (const f of r.faults) byKind[f.split(" ")[0] ?? ""] = (byKind[f.split(" ")[0] ?? ""] ?? 0) + 1;
  const converge = results.flatMap((r) => (r.convergeMs === undefined ? [] : [r.convergeMs]));
  const excess = results.filter((r) => r.allowedExcess > 0);
  return {
    seed: opts.seed,
    rounds: results.length,
    agents: opts.agents,
    sessionTimeoutMs: opts.sessionMs,
    wallSeconds: Math.round(wallMs / 100) / 10,
    faults: { total: Object.values(byKind).reduce((a, b) => a + b, 0), byKind },
    deploys: results.reduce((a, r) => a + r.deploys, 0),
    violations: results.reduce((a, r) => a + r.violations.length, 0),
    roundsWithViolations: results
      .filter((r) => r.violations.length)
      .map((r) => ({ round: r.round, faults: r.faults, violations: r.violations })),
    convergenceMs: {
      p50: percentile(converge, 50),
      p99: percentile(converge, 99),
      max: converge.length ? Math.max(...converge) : null,
      notConverged: results.length - converge.length,
    },
    allowedExcess: {
      rounds: excess.length,
      max: excess.length ? Math.max(...excess.map((r) => r.allowedExcess)) : 0,
      totalMs: excess.reduce((a, r) => a + r.allowedExcessMs, 0),
      deploysWithoutSession: results.reduce((a, r) => a + r.lostDeploys, 0),
    },
    leakedNodes: results.reduce((a, r) => a + r.leaked.length, 0),
    orphanProcesses: results.reduce((a, r) => a + r.orphans.length, 0),
    agentCrashes: results.reduce((a, r) => a + r.crashed.length, 0),
    agentErrorLines: results.reduce((a, r) => a + r.errorLines.length, 0),
  };
}

function printTable(s: Record<string, unknown>): void {
  const get = <T>(key: string): T => s[key] as T;
  const faults = get<{ total: number; byKind: Record<string, number> }>("faults");
  const conv = get<{ p50: number; p99: number; max: number | null; notConverged: number }>("convergenceMs");
  const ex = get<{ rounds: number; max: number; totalMs: number; deploysWithoutSession: number }>("allowedExcess");
  const rows: [string, string][] = [
    ["seed", String(get<number>("seed"))],
    ["rounds", String(get<number>("rounds"))],
    ["agents / session", `${get<number>("agents")} / ${get<number>("sessionTimeoutMs")} ms`],
    ["wall time", `${get<number>("wallSeconds")} s`],
    ["deploys", String(get<number>("deploys"))],
    ["faults injected", String(faults.total)],
    ...Object.entries(faults.byKind).map(([k, n]): [string, string] => [`  ${k}`, String(n)]),
    ["violations", String(get<number>("violations"))],
    [
      "convergence p50 / p99 / max",
      `${conv.p50} / ${conv.p99} / ${conv.max} ms${conv.notConverged ? ` (${conv.notConverged} not converged)` : ""}`,
    ],
    [
      "allowed excess (lease lost)",
      `${ex.rounds} round(s), max +${ex.max}, ${ex.totalMs} ms total, ${ex.deploysWithoutSession} deploy(s) ran without a lease`,
    ],
    ["leaked lock/lease nodes", String(get<number>("leakedNodes"))],
    ["orphan deploy processes", String(get<number>("orphanProcesses"))],
    ["agent crashes", String(get<number>("agentCrashes"))],
    ["agent ERROR lines", String(get<number>("agentErrorLines"))],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n"));
  for (const r of get<{ round: number; faults: string[]; violations: string[] }[]>("roundsWithViolations")) {
    console.log(`\nround ${r.round} [${r.faults.join("; ")}]:\n  ${r.violations.join("\n  ")}`);
  }
}

async function main(): Promise<number> {
  const opts = parseOptions(Bun.argv.slice(2));
  const rng = new Rng(opts.seed);
  const started = performance.now();
  const root = mkdtempSync(join(tmpdir(), "conveyor-chaos-"));
  let ens: Ensemble | undefined;
  let fleet: FaultFleet | undefined;
  let stopping = false;
  const cleanup = async (): Promise<void> => {
    await fleet?.stop();
    await ens?.stopAll();
    rmSync(root, { recursive: true, force: true });
  };
  // Stays registered (not `once`): the ensemble's own signal hook kills the JVMs and re-raises
  // the signal only when nobody else listens, which would skip the agents' cleanup.
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      console.error(`chaos: ${sig}, stopping everything`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  const results: RoundResult[] = [];
  try {
    ens = await startEnsemble();
    const hosts = Array.from({ length: opts.agents }, (_, i) => `c${i + 1}`);
    fleet = await FaultFleet.start({
      ensemble: ens,
      chroot: `/chaos-${opts.seed}-${process.pid}`,
      root,
      hosts,
      sessionTimeoutMs: opts.sessionMs,
      app: "chaos",
    });
    for (let round = 1; round <= opts.rounds && !stopping; round++) {
      const r = await runRound(fleet, ens, rng, round, opts);
      results.push(r);
      const line = `round ${String(round).padStart(3)} ${r.violations.length ? "FAIL" : "ok  "} converge ${r.convergeMs ?? "-"} ms, deploys ${r.deploys}, max ${r.maxConcurrent}/${r.slots}${r.allowedExcess ? ` (+${r.allowedExcess} allowed)` : ""} [${r.faults.join("; ")}]`;
      if (opts.verbose || r.violations.length) console.error(line + (r.violations.length ? `\n  ${r.violations.join("\n  ")}` : ""));
      else if (round % 10 === 0)
        console.error(`chaos: ${round}/${opts.rounds} rounds, ${results.reduce((a, x) => a + x.violations.length, 0)} violation(s)`);
    }
  } finally {
    await cleanup();
  }
  const summary = summarise(results, opts, performance.now() - started);
  if (opts.json) console.log(JSON.stringify(summary, null, 2));
  else printTable(summary);
  return (summary.violations as number) > 0 ? 1 : 0;
}

process.exit(await main());
