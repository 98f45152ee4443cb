import { spawn } from "node:child_process";
import { GroupTermination, groupAlive } from "./process-group.ts";

export interface CommandRequest {
  /** Already rendered: placeholders substituted. */
  command: string;
  env: Record<string, string>;
  timeoutMs: number;
  /** Aborting kills the whole process group at once (second SIGTERM to the agent). */
  signal?: AbortSignal;
  /** Told the process group id as soon as the command started. */
  onStart?: (pgid: number) => void;
}

export interface CommandResult {
  /** Exit code, or null when killed by a signal. */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  killed: boolean;
  /** Last ~2 KB of stdout and stderr interleaved. */
  outputTail: string;
  /** First line of stdout (trimmed), e.g. a version. */
  firstLine: string;
  durationMs: number;
}

/** Runs commands for the agent; a benchmark swaps in one that only sleeps. */
export interface CommandRunner {
  run(request: CommandRequest): Promise<CommandResult>;
}

export const OUTPUT_TAIL_BYTES = 2_048;
const GROUP_POLL_MS = 50;
/** After the group is gone, how long to wait for the last output still in the pipes. */
const STDIO_DRAIN_MS = 200;

/**
 * `/bin/sh -c` in its own process group (detached = setsid). On timeout: SIGTERM to the group,
 * SIGKILL after a grace period. Resolves only once every process of the group is gone — a
 * background child (`sleep 1000 &`) keeps the command "running" until it exits or the timeout
 * kills it — so a slot is never released while deploy processes still run. The end is the
 * group's end, not the closing of stdout: a daemon started with `setsid svc &` leaves its
 * session holding our pipe, and waiting for that would hold the slot for the daemon's life.
 * Its output goes on being read (and dropped), so it neither blocks on a full pipe nor dies of
 * SIGPIPE.
 */
export class ShellCommandRunner implements CommandRunner {
  /**
   * `cwd`: where commands run (default: the agent's working directory). `baseEnv`: the
   * environment every command inherits, under the request's own variables (default: the
   * agent's; the agent passes it without its secrets).
   */
  constructor(
    private readonly cwd?: string,
    private readonly baseEnv: Record<string, string | undefined> = process.env,
  ) {}

  run(request: CommandRequest): Promise<CommandResult> {
    const started = performance.now();
    return new Promise((resolve) => {
      const child = spawn("/bin/sh", ["-c", request.command], {
        detached: true,
        ...(this.cwd === undefined ? {} : { cwd: this.cwd }),
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...this.baseEnv, ...request.env },
      });
      const pgid = child.pid;
      if (pgid !== undefined) request.onStart?.(pgid);
      let tail = Buffer.alloc(0);
      let stdoutHead = "";
      let timedOut = false;
      let killed = false;
      const append = (chunk: Buffer): void => {
        tail = Buffer.concat([tail, chunk]);
        if (tail.length > OUTPUT_TAIL_BYTES * 2) tail = tail.subarray(tail.length - OUTPUT_TAIL_BYTES);
      };
      child.stdout?.on("data", (chunk: Buffer) => {
        if (stdoutHead.length < 4_096) stdoutHead += chunk.toString("utf8");
        append(chunk);
      });
      child.stderr?.on("data", append);

      const ending = pgid === undefined ? undefined : new GroupTermination(pgid);
      const timeoutTimer = setTimeout(() => {
        timedOut = true;
        ending?.terminate();
      }, request.timeoutMs);
      const onAbort = (): void => {
        killed = true;
        ending?.kill();
      };
      request.signal?.addEventListener("abort", onAbort, { once: true });
      // Aborted before it started (the second signal came during a back-off): no abort event
      // will come, so kill it now rather than let it run to its timeout.
      if (request.signal?.aborted) onAbort();

      let exit: { code: number | null; signal: string | null } | undefined;
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timeoutTimer);
        ending?.dispose();
        request.signal?.removeEventListener("abort", onAbort);
        const text = tail.subarray(Math.max(0, tail.length - OUTPUT_TAIL_BYTES)).toString("utf8");
        resolve({
          exitCode: exit?.code ?? null,
          signal: exit?.signal ?? null,
          timedOut,
          killed,
          outputTail: text.replace(/^\uFFFD+/, ""),
          firstLine: (stdoutHead.split("\n")[0] ?? "").trim(),
          durationMs: Math.round(performance.now() - started),
        });
      };
      child.on("error", (error) => {
        exit = { code: 127, signal: null };
        append(Buffer.from(`failed to start /bin/sh: ${error.message}\n`));
        finish();
      });
      let stdioClosed = false;
      let groupGone = false;
      child.on("close", () => {
        stdioClosed = true;
        if (groupGone) finish();
      });
      child.on("exit", (code, sig) => {
        exit = { code, signal: sig };
        // The shell is gone; wait for the rest of its group (background children). Poll fast at
        // first — the shell itself may not be reaped yet, and a deploy's end is on the rollout's
        // critical path — then back off for long-lived leftovers.
        let delay = 1;
        const waitGroup = (): void => {
          if (pgid === undefined || !groupAlive(pgid) || ending?.onlyZombiesLeft) {
            // Normally the pipes close right after the group ends (the version's first line
            // must not be cut short); if they do not, a process outside the group holds them.
            groupGone = true;
            if (stdioClosed) finish();
            else setTimeout(finish, STDIO_DRAIN_MS);
            return;
          }
          setTimeout(waitGroup, delay);
          delay = Math.min(delay * 2, GROUP_POLL_MS);
        };
        waitGroup();
      });
    });
  }
}
