// A fleet of compiled `conveyor agent` processes on a ZooKeeper ensemble, each agent behind its
// own TCP proxies (one per member), with the faults the fault suite and the chaos script inject
// and the checks they make. Typical use:
//
//   const fleet = await FaultFleet.start({ ensemble, chroot: "/t-x", root: dir, hosts: ["h1", "h2"], sessionTimeoutMs: 2_000 });
//   await fleet.publish("1.0", { slots: 2 });
//   const d = await fleet.waitForStart((l) => l.host === "h1", 15_000);
//   fleet.freeze("h1"); await Bun.sleep(4_000); fleet.thaw("h1");
//   const { check } = await fleet.settle("1.0", 30_000, 10_000); // converged, quiet, then
//                                                        // concurrency, leaks, orphans, crashes
//   await fleet.stop();                                  // everything it started, by PID
//
// Deploys append start/end lines to one shared log (see ./fault-log.ts); each takes the number
// of seconds in DEPLOY_SECONDS in the agent's directory (setDeploySeconds), so one host's deploy
// can outlive its session while the others stay short. Every fault is recorded (kind, hosts,
// window) so the checker can tell the one excess docs/ARCHITECTURE.md allows — a deploy still running after
// its session was lost — from a real violation.

import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AppSpec } from "../../src/config/app-spec.ts";
import { decodeZnode } from "../../src/config/decode.ts";
import { HostStatus } from "../../src/config/payloads.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { isNoNode } from "../../src/zk/errors.ts";
import { DeployJournal } from "../../src/agent/deploy-journal.ts";
import { agentPath, appPath, hostStatusPath, leasesDir, lockDir } from "../../src/zk/paths.ts";
import { type AgentProcess, agentStateDir, startAgent } from "./agent-process.ts";
import { type CliResult, runCli } from "./cli.ts";
import type { Ensemble } from "./ensemble.ts";
import {
  type AgentKill,
  type ConcurrencyReport,
  type DeployLine,
  type FaultWindow,
  type SlotChange,
  GET_VERSION_COMMAND,
  analyseConcurrency,
  deployCommand,
  lineCount,
  pairDeploys,
  readDeployLines,
} from "./fault-log.ts";
import { LeaseMonitor } from "./lease-monitor.ts";
import { readBarrier } from "./read-barrier.ts";
import { killGroup, liveGroupMembers } from "./processes.ts";
import { type ProxySet, startProxies } from "./tcp-proxy.ts";
import { poll } from "./wait.ts";

export interface FleetOptions {
  ensemble: Ensemble;
  /** This fleet's chroot, e.g. "/t-faults-1a2b" (the CLI creates it). */
  chroot: string;
  /** A directory for the agents' "servers" and the deploy log. */
  root: string;
  hosts: readonly string[];
  /** Every agent's --session-timeout. */
  sessionTimeoutMs: number;
  app?: string;
  /** Deploy length when a host has no DEPLOY_SECONDS file; default 1. */
  deploySeconds?: number;
  /** Agents and CLI speak mutual TLS to the members' secure ports (the ensemble serves TLS). */
  tls?: FleetTls;
}

/** The client side of a TLS fleet: the CA, and the certificates of agents and of the CLI. */
export interface FleetTls {
  ca: string;
  agent: { cert: string; key: string };
  admin: { cert: string; key: string };
}

function tlsFlags(ca: string, who: { cert: string; key: string }): string[] {
  return ["--tls-ca", ca, "--tls-cert", who.cert, "--tls-key", who.key];
}

export interface FleetAgent {
  readonly host: string;
  /** The "server": cwd of the agent and its deploys (VERSION, DEPLOY_SECONDS, .state/). */
  readonly dir: string;
  /** This agent's own proxies, one per ensemble member: its network. */
  readonly proxies: ProxySet;
  /** The current agent process (a restart replaces it). */
  proc: AgentProcess;
  /** Every process run for this host, oldest first. */
  readonly runs: AgentProcess[];
  /** The current process was SIGKILLed on purpose (not a crash). */
  killed: boolean;
  frozenAt: number | undefined;
}

export interface CheckReport {
  concurrency: ConcurrencyReport;
  /** Queue and lease nodes still present. */
  leftovers: { lock: string[]; leases: string[] };
  /** Deploy pids (from the log) whose process group still has live members. */
  orphans: number[];
  /** Hosts whose agent exited without being killed on purpose, with how it exited. */
  crashed: string[];
  /** ERROR lines the agents logged (other than deploy failures). */
  errorLines: string[];
}

const CLI_TIMEOUT_MS = 30_000;
const AGENT_READY_MS = 20_000;

export class FaultFleet {
  readonly app: string;
  readonly log: string;
  readonly agents = new Map<string, FleetAgent>();
  readonly slotChanges: SlotChange[] = [];
  readonly faults: FaultWindow[] = [];
  readonly kills: AgentKill[] = [];
  readonly monitor: LeaseMonitor;
  private readonly connect: string;
  private stopped = false;

  private constructor(
    readonly options: FleetOptions,
    readonly admin: ZkClient,
  ) {
    this.app = options.app ?? "app";
    this.log = join(options.root, "deploys.log");
    const servers = options.tls ? options.ensemble.secureConnectString : options.ensemble.connectString;
    if (servers === undefined) throw new Error("FaultFleet: tls needs an ensemble started with tls");
    this.connect = servers + options.chroot;
    this.monitor = new LeaseMonitor(admin, this.app);
  }

  /** Starts the proxies, the agents (in parallel) and the lease monitor; waits until every agent
   *  has registered. On failure, whatever was started is stopped. */
  static async start(options: FleetOptions): Promise<FaultFleet> {
    mkdirSync(options.root, { recursive: true });
    const admin = await ZkClient.connect({
      connectString: options.ensemble.connectString + options.chroot,
      sessionTimeoutMs: 10_000,
      connectTimeoutMs: 20_000,
    });
    const fleet = new FaultFleet(options, admin);
    try {
      writeFileSync(fleet.log, "");
      await Promise.all(options.hosts.map((host) => fleet.addAgent(host)));
      await Promise.all([...fleet.agents.values()].map((a) => a.proc.waitForLog(/agent started/, AGENT_READY_MS)));
      fleet.monitor.start();
      return fleet;
    } catch (error) {
      await fleet.stop();
      throw error;
    }
  }

  private async addAgent(host: string): Promise<void> {
    const dir = join(this.options.root, host);
    mkdirSync(dir, { recursive: true });
    const proxies = await startProxies(this.options.ensemble, { secure: this.options.tls !== undefined });
    const proc = await this.spawnAgent(host, dir, proxies);
    this.agents.set(host, { host, dir, proxies, proc, runs: [proc], killed: false, frozenAt: undefined });
  }

  private spawnAgent(host: string, dir: string, proxies: ProxySet): Promise<AgentProcess> {
    return startAgent({
      connect: proxies.connectString + this.options.chroot,
      hostId: host,
      sessionTimeout: `${this.options.sessionTimeoutMs}ms`,
      dir,
      ...(this.options.tls ? { args: tlsFlags(this.options.tls.ca, this.options.tls.agent) } : {}),
    });
  }

  get hosts(): string[] {
    return [...this.agents.keys()];
  }

  agent(host: string): FleetAgent {
    const a = this.agents.get(host);
    if (!a) throw new Error(`no agent ${host} in this fleet`);
    return a;
  }

  /** Hosts whose agent runs now (not killed, not crashed). */
  liveHosts(): string[] {
    return [...this.agents.values()].filter((a) => a.proc.exit === undefined && !a.killed).map((a) => a.host);
  }

  // ---- operator actions (the compiled CLI, straight to the ensemble) ----------------------

  cli(args: string[]): Promise<CliResult> {
    const tls = this.options.tls ? tlsFlags(this.options.tls.ca, this.options.tls.admin) : [];
    return runCli(["--zk", this.connect, ...tls, ...args], { timeoutMs: CLI_TIMEOUT_MS });
  }

  /**
   * An operator's command during an ensemble fault: one cut off mid-command by a dying server
   * (exit 3, "connection to ZooKeeper lost": its outcome unknown) is run again, as an operator
   * would. `app create` and `set-slots` are safe to repeat; `app delete` settles a lost answer
   * itself, and a repeat that finds the app gone means the first one deleted it.
   */
  private async operatorCli(args: string[]): Promise<CliResult> {
    let r = await this.cli(args);
    for (let attempt = 1; attempt < 3 && r.code === 3 && /connection to ZooKeeper lost/.test(r.stderr); attempt++) {
      const again = await this.cli(args);
      r = args[1] === "delete" && /does not exist/.test(again.stderr) ? { ...again, code: 0 } : again;
    }
    return r;
  }

  /** `app create <app> <version>` with the fleet's commands; throws unless it exits 0. */
  async publish(version: string, o: { slots?: number; deploySeconds?: number } = {}): Promise<{ at: number; ms: number }> {
    const args = ["app", "create", this.app, version, "--get-version-cmd", GET_VERSION_COMMAND];
    args.push("--deploy-cmd", deployCommand(this.log, o.deploySeconds ?? this.options.deploySeconds ?? 1));
    if (o.slots !== undefined) args.push("--slots", String(o.slots));
    const from = Date.now();
    const r = await this.operatorCli(args);
    const to = Date.now();
    if (r.code !== 0) throw new Error(`app create ${this.app} ${version} exited ${r.code}: ${r.stderr}${r.stdout}`);
    if (o.slots !== undefined) this.slotChanges.push({ from, to, slots: o.slots });
    return { at: to, ms: to - from };
  }

  async setSlots(slots: number): Promise<{ at: number; ms: number }> {
    const from = Date.now();
    const r = await this.operatorCli(["app", "set-slots", this.app, String(slots)]);
    const to = Date.now();
    if (r.code !== 0) throw new Error(`app set-slots ${slots} exited ${r.code}: ${r.stderr}${r.stdout}`);
    this.slotChanges.push({ from, to, slots });
    return { at: to, ms: to - from };
  }

  async deleteApp(): Promise<{ at: number; ms: number }> {
    const from = Date.now();
    const r = await this.operatorCli(["app", "delete", this.app]);
    const to = Date.now();
    if (r.code !== 0) throw new Error(`app delete exited ${r.code}: ${r.stderr}${r.stdout}`);
    this.faults.push({ kind: "app deleted", hosts: undefined, from, to, removesLeases: true });
    return { at: to, ms: to - from };
  }

  /** How long the next deploys on `hosts` (default all) take. */
  setDeploySeconds(seconds: number, hosts: readonly string[] = this.hosts): void {
    for (const host of hosts) writeFileSync(join(this.agent(host).dir, "DEPLOY_SECONDS"), `${seconds}\n`);
  }

  /** Deploys on `host` (running or later) do not end, after their DEPLOY_SECONDS, until
   *  release(host): a deploy that must outlast a fault does, however slow the machine. */
  hold(host: string): void {
    writeFileSync(join(this.agent(host).dir, "HOLD"), "");
  }

  release(host: string): void {
    rmSync(join(this.agent(host).dir, "HOLD"), { force: true });
  }

  // ---- faults -----------------------------------------------------------------------------

  /** Records a fault window for the checker; call the returned function when it is healed. */
  beginFault(kind: string, hosts?: readonly string[], removesLeases = false): () => void {
    const window: FaultWindow = { kind, hosts, from: Date.now(), to: Number.POSITIVE_INFINITY, removesLeases };
    this.faults.push(window);
    return () => {
      window.to = Date.now();
    };
  }

  /** kill -9 the agent (its deploy, in its own process group, runs on as an orphan). */
  async kill9(host: string): Promise<number> {
    const a = this.agent(host);
    const at = Date.now();
    this.kills.push({ host, at });
    a.killed = true;
    a.frozenAt = undefined;
    a.proc.signal("SIGKILL");
    await a.proc.exited;
    return at;
  }

  /**
   * kill -9, then a restart `delayMs` later. A restart within a third of the session timeout
   * counts as holding the orphan's slot (see AgentKill.slotHeld): the checker then allows no
   * excess for it.
   */
  async kill9AndRestart(host: string, delayMs: number): Promise<AgentProcess> {
    const killedAt = await this.kill9(host);
    await Bun.sleep(delayMs);
    const kill = this.kills.at(-1);
    const restart = this.restart(host);
    if (kill && Date.now() - killedAt < this.options.sessionTimeoutMs / 3) kill.slotHeld = true;
    return restart;
  }

  /** Deletes a directory of the tree with everything under it, as `zkCli deleteall` would:
   *  the agents must re-create what they need. Recorded as a fault on every host (a deleted
   *  lease of a running deploy is the allowed excess). */
  async deleteNode(path: string): Promise<void> {
    const heal = this.beginFault(`${path} deleted`, undefined, path.endsWith("/leases"));
    try {
      await this.admin.deleteRecursive(path);
    } finally {
      heal();
    }
  }

  /** Starts the host's agent again: same host id, same directory and --state-dir, same proxies.
   *  Resolves once it logged "agent started" (it first waits for its old session to expire). */
  async restart(host: string): Promise<AgentProcess> {
    const a = this.agent(host);
    if (a.proc.exit === undefined) throw new Error(`restart(${host}): the agent is still running`);
    const proc = await this.spawnAgent(host, a.dir, a.proxies);
    a.proc = proc;
    a.runs.push(proc);
    a.killed = false;
    await proc.waitForLog(/agent started/, AGENT_READY_MS);
    return proc;
  }

  /** SIGSTOP the agent (its deploy runs on: it is in another process group). */
  freeze(host: string): void {
    const a = this.agent(host);
    a.frozenAt = Date.now();
    this.faults.push({ kind: "SIGSTOP", hosts: [host], from: a.frozenAt, to: Number.POSITIVE_INFINITY });
    a.proc.signal("SIGSTOP");
  }

  thaw(host: string): void {
    const a = this.agent(host);
    a.proc.signal("SIGCONT");
    this.endOpenFault("SIGSTOP", host);
    a.frozenAt = undefined;
  }

  /** Drops the agent's connections and refuses new ones until unblock(). */
  block(host: string): void {
    this.faults.push({ kind: "block", hosts: [host], from: Date.now(), to: Number.POSITIVE_INFINITY });
    this.agent(host).proxies.block();
  }

  unblock(host: string): void {
    this.agent(host).proxies.unblock();
    this.endOpenFault("block", host);
  }

  /** A blackhole: connections stay up, no byte moves, until resume(). */
  stall(host: string): void {
    this.faults.push({ kind: "stall", hosts: [host], from: Date.now(), to: Number.POSITIVE_INFINITY });
    this.agent(host).proxies.stall();
  }

  resume(host: string): void {
    this.agent(host).proxies.resume();
    this.endOpenFault("stall", host);
  }

  /** Drops the agent's current connections (it reconnects at once). */
  cut(host: string): void {
    const now = Date.now();
    this.faults.push({ kind: "cut", hosts: [host], from: now, to: now });
    this.agent(host).proxies.cut();
  }

  private endOpenFault(kind: string, host: string): void {
    const open = this.faults.find((f) => f.kind === kind && f.hosts?.includes(host) && f.to === Number.POSITIVE_INFINITY);
    if (open) open.to = Date.now();
  }

  // ---- observation --------------------------------------------------------------------------

  lines(fromLine = 0): DeployLine[] {
    return readDeployLines(this.log, fromLine);
  }

  lineCount(): number {
    return lineCount(this.log);
  }

  /** The first start line (from `fromLine`) matching `match`. */
  async waitForStart(match: (l: DeployLine) => boolean, timeoutMs: number, fromLine = 0): Promise<DeployLine> {
    return poll(() => this.lines(fromLine).find((l) => l.kind === "start" && match(l)), timeoutMs, "a matching deploy to start", 10);
  }

  /** Resolves once the deploy with this pid (its process group) wrote its end line. */
  async waitForEnd(pid: number, timeoutMs: number): Promise<DeployLine> {
    return poll(() => this.lines().find((l) => l.kind === "end" && l.pid === pid), timeoutMs, `the deploy (pid ${pid}) to end`, 10);
  }

  /**
   * Resolves once the host's agent has recorded its running deploy in its deploy journal (as a
   * restarted agent would find it): the agent is past launching it. The deploy's start line is
   * written by the deploy itself, so it may come first.
   */
  async waitForJournal(host: string, timeoutMs: number): Promise<void> {
    // The agent keeps its journal in <state-dir>/<host id> (src/cli/commands/agent.ts).
    const journal = new DeployJournal(join(agentStateDir(this.agent(host).dir), host));
    await poll(() => journal.orphans().some((e) => e.app === this.app), timeoutMs, `${host} to journal its deploy`, 10);
  }

  /** Resolves once ZooKeeper has expired the host's session (its presence node is gone), e.g.
   *  while the agent is frozen or cut off. */
  async waitSessionExpired(host: string, timeoutMs: number): Promise<void> {
    await poll(async () => (await this.admin.exists(agentPath(host))) === null, timeoutMs, `${host}'s session to expire`, 20);
  }

  /** Hosts (of `hosts`, default the live ones) that report `version` as current in the app's
   *  current rollout, with that version installed (VERSION file). */
  async convergedHosts(version: string, hosts: readonly string[] = this.liveHosts()): Promise<string[]> {
    const path = appPath(this.app);
    const spec = decodeZnode(AppSpec, (await this.admin.get(path)).data, path);
    if (spec.version !== version) return [];
    const done = await Promise.all(
      hosts.map(async (host) => {
        const statusPath = hostStatusPath(this.app, host);
        try {
          const status = decodeZnode(HostStatus, (await this.admin.get(statusPath)).data, statusPath);
          return (
            status.state === "current" &&
            status.version === version &&
            status.rolloutId === spec.rolloutId &&
            this.installed(host) === version
          );
        } catch (error) {
          if (isNoNode(error)) return false;
          throw error;
        }
      }),
    );
    return hosts.filter((_, i) => done[i]);
  }

  /** Resolves with Date.now() once every host of `hosts` (default: live) has converged. */
  async waitConverged(version: string, timeoutMs: number, hosts?: readonly string[]): Promise<number> {
    let last: string[] = [];
    try {
      await poll(
        async () => {
          const want = hosts ?? this.liveHosts();
          last = await this.convergedHosts(version, want);
          return last.length === want.length;
        },
        timeoutMs,
        `every live host to converge on ${version}`,
        50,
      );
    } catch (error) {
      const missing = (hosts ?? this.liveHosts()).filter((h) => !last.includes(h));
      throw new Error(`${(error as Error).message}; not converged: ${missing.join(", ")}\n${await this.describe()}`);
    }
    return Date.now();
  }

  /** The version a host has installed (its VERSION file). */
  installed(host: string): string {
    const path = join(this.agent(host).dir, "VERSION");
    return existsSync(path) ? readFileSync(path, "utf8").trim() : "";
  }

  /** The admin's next reads see every write acknowledged before this call — by an agent or the
   *  CLI, through any server of the ensemble (./read-barrier.ts). Call it before reading back
   *  once what another client just wrote; a poll does not need it. */
  async syncAdmin(): Promise<void> {
    await readBarrier(this.admin);
  }

  async leftovers(): Promise<{ lock: string[]; leases: string[] }> {
    const read = async (path: string): Promise<string[]> => {
      try {
        return await this.admin.children(path);
      } catch (error) {
        if (isNoNode(error)) return [];
        throw error;
      }
    };
    const [lock, leases] = await Promise.all([read(lockDir(this.app)), read(leasesDir(this.app))]);
    return { lock, leases };
  }

  /** Deploy pids from the log (from `fromLine`) whose process group has a live member. */
  orphans(fromLine = 0): number[] {
    const pids = [...new Set(this.lines(fromLine).map((l) => l.pid))];
    return pids.filter((pid) => liveGroupMembers(pid).length > 0);
  }

  /**
   * Waits until the rollout has ended everywhere: every deploy in the log (from `fromLine`)
   * ended and its process group is gone, and no queue or lease node is left. Resolves with the
   * milliseconds it took.
   */
  async waitQuiet(timeoutMs: number, fromLine = 0): Promise<number> {
    const t0 = Date.now();
    await poll(
      async () => {
        if (pairDeploys(this.lines(fromLine)).some((d) => d.end === undefined && liveGroupMembers(d.pid).length > 0)) return false;
        if (this.orphans(fromLine).length > 0) return false;
        const { lock, leases } = await this.leftovers();
        return lock.length === 0 && leases.length === 0;
      },
      timeoutMs,
      "the rollout to end (deploys done, no lock or lease node)",
      50,
    ).catch(async (error: unknown) => {
      throw new Error(`${(error as Error).message}\n${await this.describe()}`);
    });
    return Date.now() - t0;
  }

  /** Hosts whose agent exited although nobody killed it. */
  crashed(): string[] {
    const out: string[] = [];
    for (const a of this.agents.values()) {
      a.runs.forEach((run, i) => {
        const deliberate = i < a.runs.length - 1 || a.killed; // earlier runs ended by kill9()
        if (run.exit && !(deliberate && run.exit.signal === "SIGKILL")) {
          out.push(`${a.host} (pid ${run.pid}) exited ${run.exit.signal ?? `code ${run.exit.code}`}: ${lastLines(run.output, 5)}`);
        }
      });
    }
    return out;
  }

  /** ERROR lines in every agent's output, except deploy failures. */
  errorLines(): string[] {
    const out: string[] = [];
    for (const a of this.agents.values()) {
      for (const run of a.runs) {
        for (const line of run.output.split("\n")) {
          if (/ ERROR /.test(line) && !/ deploy failed /.test(line)) out.push(`${a.host}: ${line}`);
        }
      }
    }
    return out;
  }

  analyse(fromLine = 0): ConcurrencyReport {
    return analyseConcurrency(this.lines(fromLine), this.slotChanges, this.monitor.observations, this.faults, this.kills);
  }

  /**
   * The end of a scenario: every host of `hosts` (default: the live ones) converged on
   * `version` within `convergeMs`, then the rollout ended (deploys done, no lock or lease node)
   * within `quietWithinMs`, then the whole log checked. Resolves with when it converged, how
   * long it took to go quiet, and the check. Rejects on either timeout, describing the fleet.
   */
  async settle(
    version: string,
    convergeMs: number,
    quietWithinMs: number,
    hosts?: readonly string[],
  ): Promise<{ convergedAt: number; quietMs: number; check: CheckReport }> {
    const convergedAt = await this.waitConverged(version, convergeMs, hosts);
    const quietMs = await this.waitQuiet(quietWithinMs);
    return { convergedAt, quietMs, check: await this.check() };
  }

  /** Every invariant at once (call it once the rollout has ended). */
  async check(fromLine = 0): Promise<CheckReport> {
    return {
      concurrency: this.analyse(fromLine),
      leftovers: await this.leftovers(),
      orphans: this.orphans(fromLine),
      crashed: this.crashed(),
      errorLines: this.errorLines(),
    };
  }

  /** For failure messages: the log, the leases, each agent's last lines. */
  async describe(): Promise<string> {
    const left = await this.leftovers().catch((e: unknown) => ({ lock: [String(e)], leases: [] }));
    const agents = [...this.agents.values()]
      .map(
        (a) =>
          `--- ${a.host} (pid ${a.proc.pid}${a.proc.exit ? `, exited ${a.proc.exit.signal ?? a.proc.exit.code}` : ""}) ---\n${lastLines(a.proc.output, 12)}`,
      )
      .join("\n");
    const log = existsSync(this.log) ? lastLines(readFileSync(this.log, "utf8"), 30) : "";
    return `lock: [${left.lock.join(", ")}] leases: [${left.leases.join(", ")}]\n--- deploy log (tail) ---\n${log}\n${agents}`;
  }

  // ---- teardown ---------------------------------------------------------------------------

  /**
   * SIGKILLs every agent (after SIGCONT, so none stays frozen), then every deploy process group
   * they ran — noted by the agent helper, or found from the log's pids and checked to run in
   * one of our directories — closes the proxies and the admin session. Safe to call twice.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.monitor.stop();
    const runs = [...this.agents.values()].flatMap((a) => a.runs);
    for (const run of runs) {
      if (run.exit) continue;
      run.signal("SIGCONT");
      run.signal("SIGKILL");
    }
    await Promise.all(runs.map((r) => Promise.race([r.exited, Bun.sleep(5_000)])));
    for (const run of runs) for (const pgid of run.commandGroups) killGroup(pgid);
    for (const pid of new Set(this.lines().map((l) => l.pid))) {
      if (liveGroupMembers(pid).some((member) => cwdOf(member)?.startsWith(this.options.root))) killGroup(pid);
    }
    await Promise.all([...this.agents.values()].map((a) => a.proxies.close()));
    await this.admin.close();
  }
}

// ---------------------------------------------------------------------------------------------

function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split("\n").slice(-n).join("\n");
}
