// Long-running CLI processes whose output is read while they run (runCli only returns at exit):
// `status --watch` piped, or under a pseudo-terminal through util-linux `script`, so the
// binary sees isatty(stdout) = true. Typical use:
//
//   const w = spawnLive([binary, "--zk", connect, "status", "--watch"]);
//   await w.waitForOutput(/myapp 2\.0/, 1_000);
//   await w.stop();                              // SIGTERM by PID, SIGKILL after a grace period
//
//   const t = spawnInPty([binary, "--zk", connect, "status", "--watch"]);   // a terminal
//
// Every process is killed by PID (never by name); stop() also kills the command that `script`
// runs (found through /proc/<pid>/task/*/children), so nothing outlives the test.

import { tmpdir } from "node:os";
import { cmdlineOf, childrenOf, signalPid } from "../harness/processes.ts";

export interface LiveExit {
  code: number | null;
  signal: string | null;
}

export interface LiveProcess {
  readonly pid: number;
  /** Everything written to stdout and stderr so far (interleaved as it arrived). */
  readonly output: string;
  readonly stdout: string;
  readonly stderr: string;
  /** Set once the process has exited (and its output was read to the end). */
  readonly exit: LiveExit | undefined;
  readonly exited: Promise<LiveExit>;
  /**
   * Resolves with the first match of `pattern` in the output at or after character `from`
   * (stdout and stderr interleaved); rejects after `timeoutMs` or when the process exits first.
   */
  waitForOutput(pattern: RegExp, timeoutMs: number, from?: number): Promise<RegExpExecArray>;
  /** SIGTERM to the process (and its pty child), SIGKILL after `graceMs`; resolves with the exit. */
  stop(graceMs?: number): Promise<LiveExit>;
}

export interface LiveOptions {
  /** Added to the minimal environment (PATH=/usr/bin:/bin); nothing else is inherited. */
  env?: Record<string, string>;
  /** Default: the system temp directory (never the repository). */
  cwd?: string;
}

const BASE_ENV: Readonly<Record<string, string>> = { PATH: "/usr/bin:/bin" };
const live = new Set<LiveProcess>();

/** Spawns `cmd` with a minimal environment and pipes; its output is collected as it arrives. */
export function spawnLive(cmd: string[], opts: LiveOptions = {}): LiveProcess {
  return start(cmd, opts, false);
}

/**
 * Runs `cmd` under a pseudo-terminal: `script -qec '<cmd>' /dev/null`. stdout of `cmd` is the
 * pty, so the program behaves as in a terminal; what it draws reaches us through script's
 * stdout (with "\r\n" line ends).
 */
export function spawnInPty(cmd: string[], opts: LiveOptions = {}): LiveProcess {
  const line = cmd.map(shellQuote).join(" ");
  return start(["script", "-qec", line, "/dev/null"], { ...opts, env: { TERM: "xterm", ...opts.env } }, true);
}

/** Kills every process this module started that is still running (for afterEach/afterAll). */
export async function stopAllLive(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(1_000)));
}

export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

function start(cmd: string[], opts: LiveOptions, pty: boolean): LiveProcess {
  const proc = Bun.spawn(cmd, {
    env: { ...BASE_ENV, ...opts.env },
    cwd: opts.cwd ?? tmpdir(),
    // script reads its stdin and relays it to the pty; keep it open (an EOF may end the session).
    stdin: pty ? "pipe" : "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let output = "";
  let stdout = "";
  let stderr = "";
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const l of [...listeners]) l();
  };
  const pump = async (stream: ReadableStream<Uint8Array>, onText: (t: string) => void): Promise<void> => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      onText(text);
      output += text;
      notify();
    }
  };
  const pumped = Promise.all([
    pump(proc.stdout, (t) => {
      stdout += t;
    }),
    pump(proc.stderr, (t) => {
      stderr += t;
    }),
  ]).catch(() => undefined);
  let exit: LiveExit | undefined;
  const exited = (async (): Promise<LiveExit> => {
    await proc.exited;
    await pumped;
    exit = { code: proc.exitCode, signal: proc.signalCode === null ? null : String(proc.signalCode) };
    notify();
    return exit;
  })();

  const handle: LiveProcess = {
    pid: proc.pid,
    get output() {
      return output;
    },
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    get exit() {
      return exit;
    },
    exited,
    waitForOutput(pattern, timeoutMs, from = 0) {
      return new Promise<RegExpExecArray>((resolve, reject) => {
        const flags = pattern.flags.replace("g", "");
        const check = (): void => {
          const match = new RegExp(pattern.source, flags).exec(output.slice(from));
          if (match) {
            done();
            resolve(match);
          } else if (exit) {
            done();
            reject(new Error(`process ${proc.pid} exited (${JSON.stringify(exit)}) before printing ${pattern}; output:\n${output}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${pattern} in the output of process ${proc.pid} within ${timeoutMs} ms; output:\n${output}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async stop(graceMs = 3_000) {
      if (exit) return exit;
      // Under script: end the command (by PID) and let script exit with it — script itself
      // lingers for a while on SIGTERM; it gets SIGTERM only if it is still there halfway.
      const children = pty ? childrenOf(proc.pid).map((pid) => ({ pid, cmdline: cmdlineOf(pid) })) : [];
      const ours = (c: { pid: number; cmdline: string }): boolean => c.cmdline !== "" && cmdlineOf(c.pid) === c.cmdline;
      for (const c of children) signalPid(c.pid, "SIGTERM");
      if (children.length === 0) signalPid(proc.pid, "SIGTERM");
      const term = setTimeout(() => {
        if (!exit) signalPid(proc.pid, "SIGTERM");
      }, graceMs / 2);
      const kill = setTimeout(() => {
        for (const c of children) if (ours(c)) signalPid(c.pid, "SIGKILL");
        if (!exit) signalPid(proc.pid, "SIGKILL");
      }, graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(term);
        clearTimeout(kill);
        // The pty child, if it survived script: still the same process (same command line)?
        for (const c of children) if (ours(c)) signalPid(c.pid, "SIGKILL");
      }
    },
  };
  live.add(handle);
  void exited.then(() => live.delete(handle));
  return handle;
}
