// A fleet for zero-downtime scenarios: per host a directory with a real HTTP service
// (./http-service.ts) that the host's deploy restarts, a compiled `conveyor agent` behind its own
// TCP proxy to ZooKeeper (./tcp-proxy.ts: cut it off to lose its session), plus a load balancer's
// member list (./load-balancer.ts) and a deploy log. Typical use:
//
//   const fleet = await ServiceFleet.start({ zk: zookeeper.connectString, prefix: "gate", hosts: 4 });
//   await fleet.create(["--slots", "1"]);              // app "web" 1.0: every host runs it already
//   const prober = fleet.startProber();                 // { lb: true } for the member list
//   await fleet.publish("2.0", ["--health-cmd", HEALTH_CMD]);
//   const waited = await fleet.wait(60_000);            // conveyor app wait
//   await fleet.stop();                                  // agents, their commands, servers, proxies — by PID
//
// The deploy: `start` line to the log, DEPLOY_SECONDS of work (the old server still serves), then
// `./restart VERSION` (returns at once; the new server serves after the restart-to-ready delay),
// `end` line. Log lines are those of ./fault-log.ts (host, version, deploy pid, epoch ms).

import { mkdirSync, mkdtempSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { shellQuote } from "../../src/agent/placeholders.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { agentPath } from "../../src/zk/paths.ts";
import { type AgentProcess, startAgent } from "./agent-process.ts";
import { type AppStatusJson, appFromStatus } from "./app-status.ts";
import { type CliResult, processTempDir, runCli } from "./cli.ts";
import { type Deploy, type DeployLine, GET_VERSION_COMMAND, pairDeploys, readDeployLines } from "./fault-log.ts";
import { HttpService } from "./http-service.ts";
import { LeaseMonitor } from "./lease-monitor.ts";
import { LoadBalancer } from "./load-balancer.ts";
import { Prober } from "./prober.ts";
import { killGroup, liveGroupMembers } from "./processes.ts";
import { type Proxy as TcpProxy, startProxy } from "./tcp-proxy.ts";
import { poll } from "./wait.ts";
import { freePort, uniqueChroot } from "./zookeeper.ts";

export interface ServiceFleetOptions {
  /** The ZooKeeper server, "127.0.0.1:PORT" (no chroot). */
  zk: string;
  /** Names the chroot and the directories (hosts are h1 … hN). */
  prefix: string;
  hosts: number;
  /** Every agent's --session-timeout; default 4000 (long enough that load never expires one). */
  sessionTimeoutMs?: number;
  /** Restart-to-ready delay of every service; default 1000. */
  readyDelayMs?: number;
  /** The deploy's own work before it restarts the service; default 0.2. */
  deploySeconds?: number;
  /** The version every host runs before the test; default "1.0". */
  initialVersion?: string;
}

export interface FleetHost {
  readonly host: string;
  readonly dir: string;
  readonly service: HttpService;
  /** The agent's only way to ZooKeeper. */
  readonly proxy: TcpProxy;
  /** The current agent process (a restart replaces it). */
  proc: AgentProcess;
  readonly runs: AgentProcess[];
}

export const APP = "web";
/** --health-cmd of every scenario: the host's own check script (cwd = the host directory). */
export const HEALTH_CMD = "./health";
const AGENT_READY_MS = 20_000;
const CLI_TIMEOUT_MS = 90_000;

export class ServiceFleet {
  readonly hosts: string[];
  readonly nodes = new Map<string, FleetHost>();
  readonly lb: LoadBalancer;
  /** The deploy log. */
  readonly log: string;
  readonly connect: string;
  private readonly probers: Prober[] = [];
  private readonly killed = new Set<AgentProcess>();
  private adminClient: ZkClient | undefined;
  private monitor: LeaseMonitor | undefined;
  private stopped = false;

  private constructor(
    readonly options: ServiceFleetOptions,
    readonly root: string,
  ) {
    this.hosts = Array.from({ length: options.hosts }, (_, i) => `h${i + 1}`);
    this.lb = new LoadBalancer(root, this.hosts);
    this.log = join(root, "deploys.log");
    this.connect = options.zk + uniqueChroot(options.prefix);
  }

  /** Every host's service up on the initial version, every agent registered. On failure,
   *  whatever was started is stopped. */
  static async start(options: ServiceFleetOptions): Promise<ServiceFleet> {
    const root = mkdtempSync(join(processTempDir(), `zdt-${options.prefix}-`));
    const fleet = new ServiceFleet(options, root);
    live.add(fleet);
    try {
      writeFileSync(fleet.log, "");
      await Promise.all(fleet.hosts.map((host) => fleet.addHost(host)));
      await Promise.all([...fleet.nodes.values()].map((n) => n.proc.waitForLog(/agent started/, AGENT_READY_MS)));
      return fleet;
    } catch (error) {
      await fleet.stop();
      throw error;
    }
  }

  private async addHost(host: string): Promise<void> {
    const dir = join(this.root, host);
    mkdirSync(dir);
    const service = HttpService.install({ dir, port: await freePort(), readyDelayMs: this.options.readyDelayMs });
    const version = this.options.initialVersion ?? "1.0";
    await service.restart(version);
    await service.waitFor("ready", version, 10_000);
    const proxy = await startProxy(this.options.zk);
    const proc = await this.spawnAgent(host, dir, proxy);
    this.nodes.set(host, { host, dir, service, proxy, proc, runs: [proc] });
  }

  private spawnAgent(host: string, dir: string, proxy: TcpProxy): Promise<AgentProcess> {
    const chroot = this.connect.slice(this.connect.indexOf("/"));
    return startAgent({ connect: proxy.address + chroot, hostId: host, sessionTimeout: `${this.sessionTimeoutMs}ms`, dir });
  }

  get sessionTimeoutMs(): number {
    return this.options.sessionTimeoutMs ?? 4_000;
  }

  /** Seconds of deploy work before the restart. */
  get deploySeconds(): number {
    return this.options.deploySeconds ?? 0.2;
  }

  node(host: string): FleetHost {
    const n = this.nodes.get(host);
    if (!n) throw new Error(`no host ${host} in this fleet`);
    return n;
  }

  service(host: string): HttpService {
    return this.node(host).service;
  }

  get services(): HttpService[] {
    return this.hosts.map((h) => this.service(h));
  }

  /** Holds every restarted server (or those of `hosts`) out of service until released: hosts stay in their health gate. */
  hold(hosts: readonly string[] = this.hosts): void {
    for (const h of hosts) this.service(h).hold();
  }

  release(hosts: readonly string[] = this.hosts): void {
    for (const h of hosts) this.service(h).release();
  }

  // ---- the app ----------------------------------------------------------------------------

  /** --get-version-cmd and --deploy-cmd of the app. */
  commandArgs(): string[] {
    const log = shellQuote(this.log);
    const stamp = "$CONVEYOR_HOST $CONVEYOR_VERSION $$ $(date +%s%3N)";
    const deploy = `echo "start ${stamp}" >> ${log}; sleep ${this.deploySeconds}; ./restart %(version)s; echo "end ${stamp}" >> ${log}`;
    return ["--get-version-cmd", GET_VERSION_COMMAND, "--deploy-cmd", deploy];
  }

  /** --drain-cmd and --undrain-cmd that take the host out of the LB's member list and back. */
  drainArgs(): string[] {
    return ["--drain-cmd", this.lb.drainCmd, "--undrain-cmd", this.lb.undrainCmd];
  }

  cli(args: string[], timeoutMs = CLI_TIMEOUT_MS): Promise<CliResult> {
    return runCli(["--zk", this.connect, ...args], { timeoutMs, env: { CONVEYOR_ACTOR: "zero-downtime-test" } });
  }

  /**
   * Creates the app at the initial version, which every host already runs: each reports current
   * without deploying. Resolves once every host has reported current for that rollout (a wait
   * on an app's very first rollout could end before every host has reported).
   */
  async create(extra: string[] = []): Promise<AppStatusJson> {
    const version = this.options.initialVersion ?? "1.0";
    expectExit(await this.cli(["app", "create", APP, version, ...this.commandArgs(), ...extra]), 0, "app create");
    return poll(
      async () => {
        const s = await this.status();
        const mine = s.hosts.filter((h) => h.rolloutId === s.rolloutId && h.state === "current" && h.version === version);
        return mine.length === this.hosts.length ? s : undefined;
      },
      30_000,
      `every host to report current on ${version}`,
      100,
    );
  }

  /** `app create <app> <version> …` (a publish); throws unless it exits 0. */
  async publish(version: string, args: string[] = []): Promise<{ at: number; result: CliResult }> {
    const at = Date.now();
    const result = await this.cli(["app", "create", APP, version, ...args]);
    expectExit(result, 0, `publish ${version}`);
    return { at, result };
  }

  /** `app wait <app>`; resolves with its result and when it exited (epoch ms). */
  async wait(timeoutMs: number): Promise<CliResult & { endedAt: number }> {
    const r = await this.cli(["app", "wait", APP, "--wait-timeout", `${timeoutMs}ms`], timeoutMs + 30_000);
    return { ...r, endedAt: Date.now() };
  }

  async status(): Promise<AppStatusJson> {
    const r = await this.cli(["status", APP, "--json"]);
    expectExit(r, 0, "status --json");
    return appFromStatus(r.stdout, APP);
  }

  /** Resolves once `check` holds for the app's status (polled through the CLI). */
  async waitStatus(check: (s: AppStatusJson) => boolean, timeoutMs: number, what: string): Promise<AppStatusJson> {
    let last: AppStatusJson | undefined;
    try {
      return await poll(
        async () => {
          last = await this.status();
          return check(last) ? last : undefined;
        },
        timeoutMs,
        what,
        100,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}; last status: ${JSON.stringify(last?.hosts)}`);
    }
  }

  // ---- observation --------------------------------------------------------------------------

  lines(): DeployLine[] {
    return readDeployLines(this.log);
  }

  deploys(version?: string): Deploy[] {
    return pairDeploys(this.lines()).filter((d) => version === undefined || d.version === version);
  }

  /** Resolves with the deploys of `version` once there are at least `count`. */
  waitForDeploys(version: string, count: number, timeoutMs: number): Promise<Deploy[]> {
    return poll(
      () => {
        const d = this.deploys(version);
        return d.length >= count ? d : undefined;
      },
      timeoutMs,
      `${count} deploys of ${version} to start`,
      10,
    );
  }

  /** Probes every host's /health from now on (stopped by stop()). */
  startProber(options: { lb?: boolean } = {}): Prober {
    const targets = this.hosts.map((host) => ({ host, port: this.service(host).port }));
    const prober = Prober.start({ targets, membersFile: options.lb ? this.lb.membersFile : undefined });
    this.probers.push(prober);
    return prober;
  }

  /** A ZooKeeper session of the test's own, straight to the server (never through a proxy). */
  async admin(): Promise<ZkClient> {
    this.adminClient ??= await ZkClient.connect({ connectString: this.connect, sessionTimeoutMs: 10_000, connectTimeoutMs: 20_000 });
    return this.adminClient;
  }

  /** Polls the app's lease nodes from now on (./lease-monitor.ts). */
  async leases(): Promise<LeaseMonitor> {
    if (!this.monitor) {
      this.monitor = new LeaseMonitor(await this.admin(), APP, 20);
      this.monitor.start();
    }
    return this.monitor;
  }

  /** Resolves once ZooKeeper has expired the host's agent session (its presence node is gone). */
  async waitSessionExpired(host: string, timeoutMs: number): Promise<number> {
    const zk = await this.admin();
    await poll(async () => (await zk.exists(agentPath(host))) === null, timeoutMs, `${host}'s session to expire`, 20);
    return Date.now();
  }

  // ---- faults -------------------------------------------------------------------------------

  /** The agent's connections dropped and new ones refused until unblock(): a partition. */
  block(host: string): number {
    this.node(host).proxy.block();
    return Date.now();
  }

  unblock(host: string): number {
    this.node(host).proxy.unblock();
    return Date.now();
  }

  /** kill -9 the agent; resolves with when, once it is gone. */
  async kill9(host: string): Promise<number> {
    const n = this.node(host);
    const at = Date.now();
    this.killed.add(n.proc);
    n.proc.signal("SIGKILL");
    await n.proc.exited;
    return at;
  }

  /** Starts the host's agent again: same host id, directory, --state-dir and proxy. Resolves
   *  once it is spawned (not once registered: it may first wait for its old session). */
  async restartAgent(host: string): Promise<AgentProcess> {
    const n = this.node(host);
    if (n.proc.exit === undefined) throw new Error(`restartAgent(${host}): the agent is still running`);
    n.proc = await this.spawnAgent(host, n.dir, n.proxy);
    n.runs.push(n.proc);
    return n.proc;
  }

  /** Agents that exited without being killed by the test (kill9). */
  crashed(): string[] {
    return [...this.nodes.values()].flatMap((n) =>
      n.runs
        .filter((run) => run.exit !== undefined && !this.killed.has(run))
        .map((run) => `${n.host} (pid ${run.pid}) exited ${run.exit?.signal ?? run.exit?.code}: ${run.output.slice(-500)}`),
    );
  }

  /** For failure messages: each agent's last lines and the deploy log. */
  describe(): string {
    const agents = [...this.nodes.values()].map(
      (n) => `--- ${n.host} (pid ${n.proc.pid}) ---\n${n.proc.output.split("\n").slice(-15).join("\n")}`,
    );
    return `--- deploy log ---\n${this.lines()
      .map((l) => `${l.kind} ${l.host} ${l.version} ${l.pid} ${l.at}`)
      .join("\n")}\n${agents.join("\n")}`;
  }

  // ---- teardown -----------------------------------------------------------------------------

  /**
   * SIGKILLs every agent and the process groups of the commands they ran (noted by the agent
   * helper, or deploy pids from the log whose members run in our directories), then stops every
   * service (servers and health checks, by PID), the probers, the proxies and the admin session.
   * Agents go first: a live agent would restart a service. Safe to call twice.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    live.delete(this);
    await Promise.all(this.probers.map((p) => p.stop()));
    await this.monitor?.stop();
    const runs = [...this.nodes.values()].flatMap((n) => n.runs);
    for (const run of runs) if (!run.exit) run.signal("SIGKILL");
    await Promise.all(runs.map((r) => Promise.race([r.exited, Bun.sleep(5_000)])));
    for (const run of runs) for (const pgid of run.commandGroups) killGroup(pgid);
    for (const pid of new Set(this.lines().map((l) => l.pid))) {
      if (liveGroupMembers(pid).some((member) => cwdOf(member)?.startsWith(this.root))) killGroup(pid);
    }
    await Promise.all([...this.nodes.values()].map((n) => n.service.stop()));
    await Promise.all([...this.nodes.values()].map((n) => n.proxy.close()));
    await this.adminClient?.close();
  }
}

const live = new Set<ServiceFleet>();

/** Stops every fleet still running (an afterEach backstop). */
export async function stopAllFleets(): Promise<void> {
  await Promise.all([...live].map((f) => f.stop()));
}

function expectExit(r: CliResult, code: number, what: string): void {
  if (r.code !== code) throw new Error(`${what} exited ${r.code} (expected ${code}): ${r.stderr}${r.stdout}`);
}

function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}
