// `conveyor agent` as a real child process: the compiled binary (dist/conveyor), its own temp
// directory standing in for a server (commands run there, so VERSION files stay apart), a
// minimal environment, and its output captured in memory and to <dir>/agent.log. Typical use:
//
//   const agents = useAgentProcesses();          // builds the binary once; kills leftovers after each test
//   const a = await agents.start({ connect, hostId: "web-01", sessionTimeout: "2s" });
//   await a.waitForLog(/agent started/, 10_000);
//   a.signal("SIGTERM");
//   expect((await a.exited).code).toBe(0);
//
// Every agent started is SIGKILLed by PID after each test (and at process exit), together with
// the process groups of the deploy commands it was seen running (they run in their own groups,
// so they would outlive a killed agent as orphans). Never pkill/killall.

import { afterEach, beforeAll } from "bun:test";
import { appendFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { childGroups, killGroup, signalPid } from "./processes.ts";
import { ensureBinary, processTempDir } from "./cli.ts";
import { untilNotified } from "./until-notified.ts";

export interface StartAgentOptions {
  /** ZooKeeper connect string with chroot, e.g. "127.0.0.1:PORT/t-x-123". */
  connect: string;
  hostId: string;
  /** Passed as --session-timeout; default "2s". */
  sessionTimeout?: string;
  /** Passed as --groups when set. */
  groups?: string;
  logFormat?: "text" | "json";
  /** The "server" directory (cwd); default a fresh temp directory. Reuse it to restart an agent. */
  dir?: string;
  /** Extra arguments appended after the agent flags. */
  args?: string[];
  /** Extra environment variables (on top of the minimal PATH and HOME). */
  env?: Record<string, string>;
}

export interface AgentExit {
  /** Exit status, or null when killed by a signal. */
  code: number | null;
  signal: string | null;
  /** performance.now() when the exit was observed. */
  at: number;
}

export interface AgentProcess {
  readonly pid: number;
  readonly hostId: string;
  /** Working directory: the agent's "server". */
  readonly dir: string;
  /** stdout and stderr as they arrived, also in `${dir}/agent.log`. */
  readonly output: string;
  readonly stdout: string;
  readonly stderr: string;
  /** performance.now() right after spawn. */
  readonly startedAt: number;
  /** Set once the process has exited. */
  readonly exit: AgentExit | undefined;
  readonly exited: Promise<AgentExit>;
  /**
   * Resolves with the first match of `pattern` in the output at or after character `from`;
   * rejects when the agent exits without it or after `timeoutMs`.
   */
  waitForLog(pattern: RegExp, timeoutMs: number, from?: number): Promise<RegExpExecArray>;
  /** Sends a signal by PID (after noting the deploy process groups it runs, for cleanup). */
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM, wait ≤ 10 s, then SIGKILL. Resolves with the exit. */
  stop(): Promise<AgentExit>;
  /** Process group ids of commands the agent was seen running (its children in other groups). */
  readonly commandGroups: ReadonlySet<number>;
}

// ---------------------------------------------------------------------------------------------

const live = new Set<AgentHandle>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  // Last resort if the test process dies with agents still running: synchronous SIGKILLs only.
  process.on("exit", () => {
    for (const agent of live) agent.killNow();
  });
}

class AgentHandle implements AgentProcess {
  readonly pid: number;
  readonly startedAt: number;
  readonly exited: Promise<AgentExit>;
  readonly commandGroups = new Set<number>();
  exit: AgentExit | undefined;
  private out = "";
  private outStdout = "";
  private outStderr = "";
  private readonly listeners = new Set<() => void>();
  private readonly logFile: string;
  private readonly proc: Bun.Subprocess<"ignore", "pipe", "pipe">;

  constructor(
    binary: string,
    readonly hostId: string,
    readonly dir: string,
    args: string[],
    env: Record<string, string> = {},
  ) {
    this.logFile = join(dir, "agent.log");
    writeFileSync(this.logFile, `$ conveyor ${args.join(" ")}\n`, { flag: "a" });
    this.proc = Bun.spawn([binary, ...args], {
      cwd: dir,
      env: { PATH: "/usr/bin:/bin", HOME: dir, ...env },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    this.pid = this.proc.pid;
    this.startedAt = performance.now();
    live.add(this);
    hookExit();
    const pumps = [this.pump(this.proc.stdout, "stdout"), this.pump(this.proc.stderr, "stderr")];
    this.exited = this.proc.exited.then(async () => {
      const at = performance.now();
      // Output written just before exit: give the pipes a moment to drain (bounded).
      await Promise.race([Promise.all(pumps), Bun.sleep(1_000)]);
      const sig = this.proc.signalCode;
      const exit: AgentExit = { code: this.proc.exitCode, signal: sig === null ? null : String(sig), at };
      this.exit = exit;
      live.delete(this);
      this.notify();
      return exit;
    });
  }

  get output(): string {
    return this.out;
  }

  get stdout(): string {
    return this.outStdout;
  }

  get stderr(): string {
    return this.outStderr;
  }

  private async pump(stream: ReadableStream<Uint8Array>, which: "stdout" | "stderr"): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        const text = decoder.decode(chunk, { stream: true });
        this.out += text;
        if (which === "stdout") this.outStdout += text;
        else this.outStderr += text;
        try {
          appendFileSync(this.logFile, text);
        } catch {
          // the directory may be gone during teardown
        }
        this.notify();
      }
    } catch {
      // stream torn down
    }
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  waitForLog(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    const re = new RegExp(pattern.source, pattern.flags.replace("g", ""));
    return untilNotified(
      this.listeners,
      () => {
        const match = re.exec(this.out.slice(from));
        if (match) return match;
        if (this.exit)
          return new Error(
            `agent ${this.hostId} (pid ${this.pid}) exited (${describeExit(this.exit)}) without logging ${pattern}; output:\n${this.out}`,
          );
        return undefined;
      },
      timeoutMs,
      () => `agent ${this.hostId} (pid ${this.pid}) did not log ${pattern} within ${timeoutMs} ms; output:\n${this.out}`,
    );
  }

  /** Notes the process groups of the commands the agent runs right now. */
  noteCommandGroups(): void {
    if (this.exit) return;
    for (const pgid of childGroups(this.pid)) this.commandGroups.add(pgid);
  }

  signal(sig: NodeJS.Signals): void {
    this.noteCommandGroups();
    if (!this.exit) signalPid(this.pid, sig);
  }

  async stop(): Promise<AgentExit> {
    if (this.exit) return this.exit;
    this.signal("SIGTERM");
    const exit = await Promise.race([this.exited, Bun.sleep(10_000).then(() => undefined)]);
    if (exit) return exit;
    this.signal("SIGKILL");
    return this.exited;
  }

  /** SIGKILL the agent and every command group it was seen running (synchronous). */
  killNow(): void {
    this.noteCommandGroups();
    if (!this.exit) signalPid(this.pid, "SIGKILL");
    for (const pgid of this.commandGroups) killGroup(pgid);
  }
}

function describeExit(exit: AgentExit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/** The --state-dir an agent started here gets unless told otherwise (its deploy journal). */
export function agentStateDir(dir: string): string {
  return join(dir, ".state");
}

/** Starts one agent process; resolves once it is spawned (not once it has registered). */
export async function startAgent(options: StartAgentOptions): Promise<AgentProcess> {
  const binary = await ensureBinary();
  const dir = options.dir ?? mkdtempSync(join(processTempDir(), `agent-${options.hostId.replace(/[^A-Za-z0-9._-]/g, "_")}-`));
  const args = [
    "agent",
    "--zk",
    options.connect,
    "--host-id",
    options.hostId,
    "--session-timeout",
    options.sessionTimeout ?? "2s",
    ...(options.groups === undefined ? [] : ["--groups", options.groups]),
    ...(options.logFormat === undefined ? [] : ["--log-format", options.logFormat]),
    // The deploy journal lives with the "server", not in the machine-wide default.
    ...((options.args ?? []).includes("--state-dir") ? [] : ["--state-dir", agentStateDir(dir)]),
    ...(options.args ?? []),
  ];
  const handle = new AgentHandle(binary, options.hostId, dir, args, options.env);
  started.push(handle);
  return handle;
}

const started: AgentHandle[] = [];

/** SIGKILL every agent started so far (and their command groups); waits for them to exit. */
export async function killAllAgents(): Promise<void> {
  const all = started.splice(0);
  for (const agent of all) agent.killNow();
  await Promise.all(all.map((a) => Promise.race([a.exited, Bun.sleep(5_000)])));
  // Command groups noted after the agent died (none normally) — kill again, cheap and safe.
  for (const agent of all) for (const pgid of agent.commandGroups) killGroup(pgid);
}

/**
 * For a test file: builds dist/conveyor once (beforeAll) and kills every agent (and the deploy
 * process groups it ran) after each test, pass or fail.
 */
export function useAgentProcesses(): { start: (options: StartAgentOptions) => Promise<AgentProcess>; killAll: () => Promise<void> } {
  beforeAll(async () => {
    await ensureBinary();
  }, 180_000);
  afterEach(async () => {
    await killAllAgents();
  }, 15_000);
  return { start: startAgent, killAll: killAllAgents };
}
