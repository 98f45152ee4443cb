// The demo behind ./scripts/demo (which installs deps and builds dist/conveyor first).
//
//   bun scripts/demo.ts [--hosts N] [--slots S] [--deploy-seconds D] [--keep]
//
// 1. Starts a ZooKeeper on a free loopback port (test/harness/zookeeper.ts).
// 2. Starts N agents as separate processes of the compiled dist/conveyor, host ids web-1..web-N,
//    each in its own temp directory standing in for a server: the app's installed version is the
//    file VERSION in that directory, the agent's log is agent.log next to it.
// 3. Publishes app "demo" 1.0 with the compiled binary, shows the staggered rollout live (read
//    from ZooKeeper every 150 ms with readFleetStatus), prints `conveyor status demo`; then the
//    same for 1.1 (a plain publish: every other attribute is kept).
// 4. Stops everything it started, by PID — agents first (SIGTERM, so their sessions close; a
//    second SIGTERM after 4 s kills running deploys; SIGKILL after 2 s more), then ZooKeeper —
//    on success, on error and on SIGINT/SIGTERM/SIGHUP, and removes its temp directories.
//    With --keep (and only on success) ZooKeeper and the agents are left running.
//
// Every wait is bounded and names what it was waiting for when it gives up. Live view: redrawn in
// place when stdout is a terminal (and CI is not set); otherwise one line per host state change.

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { AppView, FleetStatus, HostView } from "../src/apps/fleet-status.ts";
import { readFleetStatus } from "../src/apps/fleet-status.ts";
import { ZkClient } from "../src/zk/client.ts";
import { type ZooKeeperServer, startZooKeeper } from "../test/harness/zookeeper.ts";

const ROOT = resolve(import.meta.dir, "..");
const BIN = join(ROOT, "dist", "conveyor");
const CHROOT = "/conveyor-demo";
const APP = "demo";
const POLL_MS = 150;
const AGENTS_READY_TIMEOUT_MS = 20_000;
const CLI_TIMEOUT_MS = 20_000;
const AGENT_STOP_GRACE_MS = 4_000;
const AGENT_KILL_GRACE_MS = 2_000;
const CLEANUP_DEADLINE_MS = 20_000;

const USAGE = `usage: ./scripts/demo [--hosts N] [--slots S] [--deploy-seconds D] [--keep]
  --hosts N           agents (servers) to start, 1-50 (default 5)
  --slots S           hosts that may deploy at once (default 2)
  --deploy-seconds D  how long each deploy takes, 0.1-60 (default 1.5)
  --keep              leave ZooKeeper and the agents running at the end (stop them by PID)`;

interface Options {
  hosts: number;
  slots: number;
  deploySeconds: number;
  keep: boolean;
}

/** A failure to report in one line; `detail` (log tails and such) is printed above it. */
class DemoError extends Error {
  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Options

function parseOptions(argv: string[]): Options | "help" {
  let values: { hosts?: string; slots?: string; "deploy-seconds"?: string; keep?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        hosts: { type: "string" },
        slots: { type: "string" },
        "deploy-seconds": { type: "string" },
        keep: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    throw new DemoError(`${message(error)}\n${USAGE}`);
  }
  if (values.help) return "help";
  const hosts = integerOption(values.hosts, "--hosts", 5, 1, 50);
  const slots = integerOption(values.slots, "--slots", 2, 1, 1_000);
  const deploySeconds = values["deploy-seconds"] === undefined ? 1.5 : Number(values["deploy-seconds"]);
  if (!/^\d+(\.\d+)?$/.test(values["deploy-seconds"] ?? "1.5") || !(deploySeconds >= 0.1 && deploySeconds <= 60)) {
    throw new DemoError(`--deploy-seconds: expected a number of seconds from 0.1 to 60, got "${values["deploy-seconds"]}"`);
  }
  return { hosts, slots, deploySeconds, keep: values.keep === true };
}

function integerOption(text: string | undefined, flag: string, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) throw new DemoError(`${flag}: expected an integer from ${min} to ${max}, got "${text}"`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Interruption: the first signal aborts whatever is being waited for (cleanup then runs in the
// finally blocks); a second one kills everything at once and exits.

const abort = new AbortController();
let interruptedBy: NodeJS.Signals | undefined;
const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

function installSignalHandlers(): void {
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (interruptedBy === undefined) {
        interruptedBy = sig;
        abort.abort(new Interrupted(sig));
        return;
      }
      console.error(`demo: second ${sig}: killing everything now`);
      killEverythingSync();
      process.exit(128 + (SIGNAL_NUMBERS[sig] ?? 1));
    });
  }
  // Safety net for any way out that skipped the cleanup (uncaught error, process.exit).
  process.on("exit", () => {
    restoreCursor();
    killEverythingSync();
  });
}

function checkAborted(): void {
  if (abort.signal.aborted) throw abort.signal.reason instanceof Error ? abort.signal.reason : new Interrupted("SIGINT");
}

/** Sleeps, or rejects as soon as the demo is interrupted. */
function sleep(ms: number): Promise<void> {
  checkAborted();
  return new Promise((resolveSleep, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abort.signal.reason instanceof Error ? abort.signal.reason : new Interrupted("SIGINT"));
    };
    const timer = setTimeout(() => {
      abort.signal.removeEventListener("abort", onAbort);
      resolveSleep();
    }, ms);
    abort.signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Races a promise against interruption and a deadline. */
async function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  checkAborted();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DemoError(`timed out after ${ms / 1000} s waiting for ${what}`)), ms);
    onAbort = () => reject(abort.signal.reason instanceof Error ? abort.signal.reason : new Interrupted("SIGINT"));
    abort.signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
    if (onAbort) abort.signal.removeEventListener("abort", onAbort);
  }
}

// ---------------------------------------------------------------------------------------------
// What the demo started, so that every exit path can stop it.

interface AgentProcess {
  host: string;
  dir: string;
  log: string;
  child: ChildProcess;
  pid: number;
  /** Set once the process has exited (and been reaped). */
  exit?: string;
  exited: Promise<string>;
}

const started = {
  zk: undefined as ZooKeeperServer | undefined,
  agents: [] as AgentProcess[],
  clis: new Set<ChildProcess>(),
  root: undefined as string | undefined,
  /** --keep after success: nothing is stopped any more. */
  kept: false,
};

function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Last resort (second signal, process exit): SIGKILL by PID, synchronously. */
function killEverythingSync(): void {
  if (started.kept) return;
  for (const cli of started.clis) if (cli.pid !== undefined) signalPid(cli.pid, "SIGKILL");
  for (const a of started.agents) if (a.exit === undefined) signalPid(a.pid, "SIGKILL");
  const zk = started.zk;
  if (zk !== undefined) {
    zk.kill("SIGKILL");
    rmSync(zk.dataDir, { recursive: true, force: true });
  }
  if (started.root !== undefined) rmSync(started.root, { recursive: true, force: true });
}

async function stopAgent(a: AgentProcess): Promise<void> {
  if (a.exit !== undefined) return;
  const within = (ms: number): Promise<boolean> =>
    Promise.race([a.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
  signalPid(a.pid, "SIGCONT"); // a stopped process cannot act on SIGTERM
  signalPid(a.pid, "SIGTERM"); // graceful: finish the running deploy, release, close the session
  if (await within(AGENT_STOP_GRACE_MS)) return;
  signalPid(a.pid, "SIGTERM"); // second signal: the agent kills its deploys and exits
  if (await within(AGENT_KILL_GRACE_MS)) return;
  console.error(`demo: agent ${a.host} (pid ${a.pid}) ignored SIGTERM; sending SIGKILL`);
  signalPid(a.pid, "SIGKILL");
  await within(AGENT_KILL_GRACE_MS);
}

async function stopEverything(): Promise<void> {
  for (const cli of started.clis) if (cli.pid !== undefined) signalPid(cli.pid, "SIGKILL");
  await Promise.all(started.agents.map(stopAgent));
  if (started.zk !== undefined) await started.zk.stop();
  started.zk = undefined;
  if (started.root !== undefined) rmSync(started.root, { recursive: true, force: true });
  started.root = undefined;
}

// ---------------------------------------------------------------------------------------------
// Running the compiled CLI

/** CONVEYOR_* from the caller's environment must not leak into the demo's fleet. */
function childEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("CONVEYOR_")) env[key] = value;
  }
  return env;
}

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function runCli(args: string[], what: string): Promise<CliResult> {
  const child = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"], env: childEnv() });
  started.clis.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const done = new Promise<CliResult>((resolveRun, reject) => {
    child.once("error", (error) => reject(new DemoError(`cannot run ${BIN}: ${error.message}`)));
    child.once("close", (code) => resolveRun({ code, stdout, stderr }));
  });
  try {
    return await bounded(done, CLI_TIMEOUT_MS, what);
  } finally {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) signalPid(child.pid, "SIGKILL");
    started.clis.delete(child);
  }
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

// ---------------------------------------------------------------------------------------------
// The fleet

function startAgent(host: string, root: string, zkConnect: string, configArgs: string[]): AgentProcess {
  const dir = join(root, host);
  mkdirSync(dir);
  const log = join(dir, "agent.log");
  const fd = openSync(log, "a");
  let child: ChildProcess;
  try {
    child = spawn(BIN, [...configArgs, "agent", "--zk", zkConnect, "--host-id", host, "--session-timeout", "4s", "--state-dir", join(dir, ".state")], {
      cwd: dir, // commands run here: VERSION in this directory is the installed version
      stdio: ["ignore", fd, fd],
      detached: true, // own process group: a Ctrl-C reaches the demo only, which stops agents in order
      env: childEnv(),
    });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) throw new DemoError(`could not start agent ${host} (${BIN})`);
  child.unref();
  const agent: AgentProcess = {
    host,
    dir,
    log,
    child,
    pid: child.pid,
    exited: new Promise<string>((resolveExit) => {
      child.once("exit", (code, sig) => {
        agent.exit = sig ? `killed by ${sig}` : `exit code ${code}`;
        resolveExit(agent.exit);
      });
    }),
  };
  return agent;
}

function tail(file: string, lines = 12): string {
  try {
    const text = readFileSync(file, "utf8").trimEnd();
    return text === "" ? "(empty)" : text.split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Throws if an agent died: the demo cannot go on without it. */
function checkAgentsAlive(agents: AgentProcess[]): void {
  const dead = agents.find((a) => a.exit !== undefined);
  if (dead) {
    throw new DemoError(`agent ${dead.host} (pid ${dead.pid}) stopped unexpectedly (${dead.exit})`, `--- ${dead.log} (tail) ---\n${tail(dead.log)}`);
  }
}

async function waitForAgents(zk: ZkClient, agents: AgentProcess[]): Promise<void> {
  const deadline = Date.now() + AGENTS_READY_TIMEOUT_MS;
  for (;;) {
    checkAgentsAlive(agents);
    const online = new Set(await zk.children("/agents").catch(() => [] as string[]));
    const missing = agents.filter((a) => !online.has(a.host));
    if (missing.length === 0) return;
    if (Date.now() > deadline) {
      const first = missing[0];
      throw new DemoError(
        `timed out after ${AGENTS_READY_TIMEOUT_MS / 1000} s waiting for agents to register in ZooKeeper: ${missing.map((a) => a.host).join(", ")} missing`,
        first === undefined ? undefined : `--- ${first.log} (tail) ---\n${tail(first.log)}`,
      );
    }
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------
// Live view of a rollout

const useColor = (): boolean => process.env.NO_COLOR === undefined;
const paint = (code: string, text: string, on: boolean): string => (on ? `\x1b[${code}m${text}\x1b[0m` : text);
let cursorHidden = false;
function restoreCursor(): void {
  if (cursorHidden) process.stdout.write("\x1b[?25h");
  cursorHidden = false;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

interface RolloutView {
  update(app: AppView | undefined, now: number): void;
  finish(): void;
}

function hostLabel(h: HostView | undefined): string {
  if (h === undefined) return "waiting";
  if (h.state === "queued" && h.queuePosition !== undefined) return `queued #${h.queuePosition}`;
  return h.state;
}

/** "elapsed" column: how long it has been in its state, or when it finished. */
function hostElapsed(h: HostView | undefined, target: string, publishedAt: number, now: number): string {
  if (h === undefined) return "";
  const since = Date.parse(h.since);
  if (h.state === "current") {
    if (h.version !== target || h.target !== target) return "(not on the new version yet)";
    return since >= publishedAt ? `done at +${seconds(since - publishedAt)}` : "already current";
  }
  if (h.state === "queued") return `waiting ${seconds(now - since)}`;
  if (h.state === "failed") return `exit ${h.exitCode ?? "-"}: ${(h.error ?? "").split("\n")[0] ?? ""}`;
  return seconds(now - since);
}

/** Redrawn in place (terminal). */
class LiveFrame implements RolloutView {
  private drawn = 0;
  private readonly color = useColor();

  constructor(
    private readonly hosts: string[],
    private readonly version: string,
    private readonly publishedAt: number,
  ) {
    if (!cursorHidden) process.stdout.write("\x1b[?25l");
    cursorHidden = true;
  }

  update(app: AppView | undefined, now: number): void {
    const byHost = new Map((app?.hosts ?? []).map((h) => [h.host, h]));
    const onTarget = (h: HostView | undefined): boolean => h !== undefined && h.state === "current" && h.version === this.version;
    const done = this.hosts.filter((host) => onTarget(byHost.get(host))).length;
    const width = Math.min(this.hosts.length, 30);
    const filled = Math.round((done / this.hosts.length) * width);
    const bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
    const c = app?.counts;
    const state = app === undefined || app.version !== this.version ? "publishing" : app.state;
    const lines = [
      `  ${APP} ${this.version}  ${state.padEnd(10)} +${seconds(now - this.publishedAt).padStart(5)}  ${bar} ${done}/${this.hosts.length} current` +
        (c === undefined ? "" : `  · deploying ${c.deploying + c.verifying} · queued ${c.queued}${c.failed ? ` · failed ${c.failed}` : ""}`),
    ];
    for (const host of this.hosts) {
      const h = byHost.get(host);
      const label = hostLabel(h).padEnd(11);
      const colored =
        h === undefined
          ? paint("2", label, this.color)
          : h.state === "current"
            ? paint(onTarget(h) ? "32" : "2", label, this.color)
            : h.state === "deploying" || h.state === "verifying"
              ? paint("33;1", label, this.color)
              : h.state === "failed" || h.state === "offline"
                ? paint("31;1", label, this.color)
                : paint("36", label, this.color);
      const runs = h?.version || "-";
      const version = h === undefined || h.state === "current" || h.state === "offline" ? runs : `${runs} → ${h.target}`;
      lines.push(`    ${host.padEnd(8)} ${colored} ${version.padEnd(12)} ${hostElapsed(h, this.version, this.publishedAt, now)}`);
    }
    let out = this.drawn > 0 ? `\x1b[${this.drawn}A` : "";
    for (const line of lines) out += `\r\x1b[2K${line}\n`;
    process.stdout.write(out);
    this.drawn = lines.length;
  }

  finish(): void {
    restoreCursor();
  }
}

/** One line per change (pipes, CI logs). */
class EventLines implements RolloutView {
  private readonly last = new Map<string, string>();

  constructor(
    private readonly version: string,
    private readonly publishedAt: number,
  ) {}

  update(app: AppView | undefined, now: number): void {
    if (app === undefined) return;
    for (const h of app.hosts) {
      let text: string;
      if (h.state === "current") {
        text =
          h.version === this.version
            ? `current ${h.version}${h.durationMs !== undefined && Date.parse(h.since) >= this.publishedAt ? ` (deploy took ${seconds(h.durationMs)})` : ""}`
            : `runs ${h.version || "-"}, not notified yet`;
      } else if (h.state === "queued") {
        text = `queued${h.queuePosition === undefined ? "" : ` #${h.queuePosition}`} for ${h.target} (runs ${h.version || "-"})`;
      } else if (h.state === "failed") {
        text = `FAILED ${h.target}: exit ${h.exitCode ?? "-"}: ${(h.error ?? "").split("\n")[0] ?? ""}`;
      } else {
        text = `${h.state} ${h.target}`;
      }
      if (this.last.get(h.host) === text) continue;
      this.last.set(h.host, text);
      console.log(`  [+${seconds(now - this.publishedAt).padStart(5)}] ${h.host.padEnd(8)} ${text}`);
    }
  }

  finish(): void {}
}

// ---------------------------------------------------------------------------------------------
// Rollouts

interface RolloutResult {
  version: string;
  convergedMs: number;
  maxDeploying: number;
}

function describeWaiting(app: AppView | undefined, hosts: string[], version: string): string {
  if (app === undefined) return `app ${APP} not visible in ZooKeeper`;
  if (app.version !== version) return `app ${APP} still at ${app.version}`;
  const byHost = new Map(app.hosts.map((h) => [h.host, h]));
  const pending = hosts
    .map((host) => ({ host, h: byHost.get(host) }))
    .filter(({ h }) => !(h !== undefined && h.state === "current" && h.version === version))
    .map(({ host, h }) => `${host} ${h === undefined ? "has not reported" : `${hostLabel(h)} (runs ${h.version || "-"})`}`);
  return `${app.state}; still waiting for ${pending.join(", ")}`;
}

async function rollout(
  zk: ZkClient,
  opts: Options,
  agents: AgentProcess[],
  cliPrefix: string[],
  version: string,
  attributes: string[],
  shownPrefix: string,
): Promise<RolloutResult> {
  const hosts = agents.map((a) => a.host);
  const args = ["app", "create", APP, version, ...attributes];
  console.log(`\n$ ${shownPrefix} ${args.map(shellQuote).join(" ")}`);
  const publishedAt = Date.now();
  const published = await runCli([...cliPrefix, ...args], `conveyor app create ${APP} ${version}`);
  if (published.code !== 0) {
    throw new DemoError(`conveyor app create ${APP} ${version} failed (exit ${published.code}): ${(published.stderr || published.stdout).trim().split("\n")[0] ?? ""}`);
  }
  console.log(published.stdout.trimEnd());

  const idealMs = Math.ceil(opts.hosts / opts.slots) * opts.deploySeconds * 1000;
  const timeoutMs = Math.max(60_000, 3 * idealMs + 30_000);
  const live = process.stdout.isTTY === true && process.env.CI === undefined && process.env.TERM !== "dumb";
  const view: RolloutView = live ? new LiveFrame(hosts, version, publishedAt) : new EventLines(version, publishedAt);
  let maxDeploying = 0;
  let app: AppView | undefined;
  try {
    for (;;) {
      checkAgentsAlive(agents);
      const fleet: FleetStatus = await bounded(readFleetStatus(zk, APP), 10_000, "a status read from ZooKeeper");
      const now = Date.now();
      app = fleet.apps[0];
      view.update(app, now);
      if (app !== undefined && app.version === version) {
        maxDeploying = Math.max(maxDeploying, app.counts.deploying + app.counts.verifying);
        const failed = app.hosts.find((h) => h.state === "failed");
        if (failed !== undefined) {
          throw new DemoError(
            `deploy of ${APP} ${version} failed on ${failed.host}: exit ${failed.exitCode ?? "-"}: ${(failed.error ?? "").split("\n")[0] ?? ""}`,
            failed.outputTail === undefined ? undefined : `--- deploy output on ${failed.host} (tail) ---\n${failed.outputTail.trimEnd()}`,
          );
        }
        if (app.state === "halted") throw new DemoError(`rollout of ${APP} ${version} halted: ${describeWaiting(app, hosts, version)}`);
        const byHost = new Map(app.hosts.map((h) => [h.host, h]));
        const converged = hosts.every((host) => {
          const h = byHost.get(host);
          return h !== undefined && h.state === "current" && h.version === version;
        });
        if (converged) {
          // Precise to the millisecond: each agent stamps `since` when it reports `current`
          // (same clock as ours). Falls back to when the poll saw it.
          const lastSince = Math.max(...app.hosts.map((h) => Date.parse(h.since)));
          const convergedMs = lastSince >= publishedAt && lastSince <= now ? lastSince - publishedAt : now - publishedAt;
          return { version, convergedMs, maxDeploying };
        }
      }
      if (now - publishedAt > timeoutMs) {
        throw new DemoError(`timed out after ${timeoutMs / 1000} s waiting for ${APP} ${version} to converge: ${describeWaiting(app, hosts, version)}`);
      }
      await sleep(POLL_MS);
    }
  } finally {
    view.finish();
  }
}

async function printStatus(cliPrefix: string[], shownPrefix: string): Promise<void> {
  console.log(`\n$ ${shownPrefix} status ${APP}`);
  const status = await runCli([...cliPrefix, "status", APP], `conveyor status ${APP}`);
  if (status.code !== 0) throw new DemoError(`conveyor status ${APP} failed (exit ${status.code}): ${status.stderr.trim().split("\n")[0] ?? ""}`);
  console.log(status.stdout.trimEnd());
}

// ---------------------------------------------------------------------------------------------

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function main(opts: Options): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "conveyor-demo-"));
  started.root = root;
  if (!existsSync(BIN)) throw new DemoError(`${BIN} is missing: build it with bun scripts/build.ts --host-only (./scripts/demo does)`);

  // ZooKeeper runs in its own session (detached), so a Ctrl-C reaches only the demo, which then
  // stops the agents while ZooKeeper is still there for them to close their sessions.
  const zkServer = await bounded(startZooKeeper({ detached: true }), 70_000, "ZooKeeper to start");
  started.zk = zkServer;
  const zkConnect = `${zkServer.connectString}${CHROOT}`;
  // A real /etc/conveyor/conveyor.toml on this machine must not change what the demo does.
  const configArgs: string[] = [];
  if (existsSync("/etc/conveyor/conveyor.toml")) {
    const empty = join(root, "conveyor.toml");
    writeFileSync(empty, "# demo: deliberately empty\n");
    configArgs.push("--config", empty);
  }
  const cliPrefix = [...configArgs, "--zk", zkConnect];
  const shownPrefix = `conveyor --zk ${zkConnect}`;

  const hosts = Array.from({ length: opts.hosts }, (_, i) => `web-${i + 1}`);
  console.log(
    [
      `Conveyor demo: ${opts.hosts} servers, each an agent process of dist/conveyor; app "${APP}" with ${opts.slots} slot${opts.slots === 1 ? "" : "s"}, ${opts.deploySeconds} s deploys`,
      `  ZooKeeper  ${zkServer.connectString} (pid ${zkServer.pid}), chroot ${CHROOT}`,
      `  servers    ${root}/{${hosts.join(",")}}: VERSION = installed version, agent.log = the agent's log`,
      `  rollouts   at most ${opts.slots} host${opts.slots === 1 ? "" : "s"} deploy at once; the rest queue for a slot, first come first served`,
    ].join("\n"),
  );

  for (const host of hosts) started.agents.push(startAgent(host, root, zkConnect, configArgs));
  const zk = await bounded(
    ZkClient.connect({ connectString: zkConnect, connectTimeoutMs: 10_000, operationTimeoutMs: 5_000 }),
    15_000,
    "a ZooKeeper session for the live view",
  );
  const results: RolloutResult[] = [];
  try {
    await waitForAgents(zk, started.agents);
    console.log(`  agents     ${started.agents.map((a) => `${a.host} pid ${a.pid}`).join(", ")}: all registered`);

    const deployCmd = `echo deploying %(version)s on %(host)s; sleep ${opts.deploySeconds}; echo %(version)s > VERSION.tmp && mv VERSION.tmp VERSION && echo installed %(version)s`;
    const attributes = ["--slots", String(opts.slots), "--get-version-cmd", "cat VERSION 2>/dev/null || echo none", "--deploy-cmd", deployCmd];
    for (const [version, attrs] of [
      ["1.0", attributes],
      ["1.1", []],
    ] as const) {
      const result = await rollout(zk, opts, started.agents, cliPrefix, version, [...attrs], shownPrefix);
      results.push(result);
      console.log(`  → ${APP} ${version} on all ${opts.hosts} hosts in ${(result.convergedMs / 1000).toFixed(2)} s; at most ${result.maxDeploying} deploying at once (slots ${opts.slots})`);
      await printStatus(cliPrefix, shownPrefix);
    }
  } finally {
    await zk.close();
  }

  const idealS = Math.ceil(opts.hosts / opts.slots) * opts.deploySeconds;
  console.log("");
  for (const r of results) {
    console.log(
      `rollout ${r.version}: ${opts.hosts} host${opts.hosts === 1 ? "" : "s"}, ${opts.slots} slot${opts.slots === 1 ? "" : "s"}, ${opts.deploySeconds} s deploys → converged in ${(r.convergedMs / 1000).toFixed(2)} s (ideal ${idealS.toFixed(2)} s)`,
    );
  }

  if (opts.keep) {
    started.kept = true;
    const pids = [...started.agents.map((a) => a.pid), zkServer.pid];
    console.log(
      [
        "",
        "--keep: ZooKeeper and the agents are still running.",
        `  ${BIN} --zk ${zkConnect} status`,
        `  ${BIN} --zk ${zkConnect} app create ${APP} 1.2`,
        `  ${BIN} --zk ${zkConnect} app set-slots ${APP} 3`,
        `  logs: ${root}/web-*/agent.log, ${zkServer.logFile}`,
        `stop them (agents first, so their sessions close):`,
        `  kill ${started.agents.map((a) => a.pid).join(" ")}; sleep 2; kill ${zkServer.pid}; rm -rf ${root} ${zkServer.dataDir}`,
        `  (PIDs: ${pids.join(" ")})`,
      ].join("\n"),
    );
  }
}

async function run(): Promise<number> {
  let opts: Options | "help";
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`demo: error: ${message(error)}`);
    return 2;
  }
  if (opts === "help") {
    console.log(USAGE);
    return 0;
  }
  installSignalHandlers();
  let failure: unknown;
  try {
    await main(opts);
  } catch (error) {
    failure = error;
  } finally {
    restoreCursor();
    if (!started.kept) {
      // Bounded even if something refuses to die: the exit hook SIGKILLs what is left.
      const cleanup = stopEverything();
      const deadline = new Promise<"late">((r) => setTimeout(() => r("late"), CLEANUP_DEADLINE_MS).unref());
      if ((await Promise.race([cleanup.then(() => "ok" as const), deadline])) === "late") {
        console.error(`demo: cleanup took over ${CLEANUP_DEADLINE_MS / 1000} s; killing what is left`);
        killEverythingSync();
      }
    }
  }
  if (failure === undefined) return 0;
  if (failure instanceof Interrupted || interruptedBy !== undefined) {
    const sig = interruptedBy ?? "SIGINT";
    console.error(`\ndemo: interrupted by ${sig}; stopped ZooKeeper and the agents`);
    return 128 + (SIGNAL_NUMBERS[sig] ?? 1);
  }
  if (failure instanceof DemoError && failure.detail !== undefined) console.error(failure.detail);
  const [first, ...rest] = message(failure).split("\n");
  if (!(failure instanceof DemoError) && rest.length > 0) console.error(rest.join("\n"));
  console.error(`demo: error: ${first ?? "unknown error"}`);
  return 1;
}

process.exit(await run());
