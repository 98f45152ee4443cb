import { type AppSpec, COMMAND_FIELDS } from "../config/app-spec.ts";
import { VERSION_PATTERN } from "../config/names.ts";
import type { CommandResult, CommandRunner } from "./command-runner.ts";
import { type DeployJournal, processStartTicks } from "./deploy-journal.ts";
import type { Logger } from "./logger.ts";
import { sleep } from "./sleep.ts";
import { type PlaceholderValues, commandEnv, renderCommand } from "./placeholders.ts";

export interface AppCommandsDeps {
  runner: CommandRunner;
  host: string;
  /** Local policy: false means the command must not run (reported as refused). */
  allowCommand: (command: string) => boolean;
  /** Aborted on the second shutdown signal: kill running commands at once. */
  killSignal: AbortSignal;
  /** Where running deploys are recorded, so a restarted agent finds what a crash left running. */
  journal: DeployJournal;
  log: Logger;
}

/**
 * What a command did; `error` is set when it did not succeed (refused, non-zero, timeout).
 * `interrupted`: the agent killed it because it is shutting down — not a verdict on the release.
 */
export interface CommandOutcome {
  result?: CommandResult;
  error?: string;
  interrupted?: boolean;
  /** Local policy (allowCommands) forbids it: it never ran. */
  refused?: boolean;
}

/** The version get-version-cmd printed, or why there is none. */
export type ProbeOutcome = { version: string } | (CommandOutcome & { error: string });

/** A probe (get-version-cmd) is cut short at this, or at the deploy timeout if that is shorter. */
export const GET_VERSION_TIMEOUT_MS = 120_000;
/** A failing get-version-cmd is tried this many times, PROBE_RETRY_MS apart, before the host
 *  fails: one flaky read must not fail the host and halt a rollout. */
export const PROBE_ATTEMPTS = 3;
const PROBE_RETRY_MS = 1_000;

export interface RunOptions {
  /** Record the running process group in the deploy journal (commands of an admission), so a
   *  restarted agent finds it if this one crashes. */
  journaled?: boolean;
  /** Kills the command when aborted, in addition to the agent's second-signal kill. */
  signal?: AbortSignal;
}

/**
 * One app's commands on this host: placeholders substituted shell-quoted, local policy
 * (`allowCommands`) applied before anything runs, deploy and verify commands journaled.
 */
export class AppCommands {
  constructor(
    private readonly app: string,
    private readonly deps: AppCommandsDeps,
  ) {}

  /** Placeholder values for `spec`; `before` (what the host ran) becomes %(previous)s when it
   *  is a version, else the app's previous version. */
  values(spec: AppSpec, before?: string): PlaceholderValues {
    const previous = before !== undefined && VERSION_PATTERN.test(before) ? before : (spec.previousVersion ?? "");
    return { app: this.app, version: spec.version, host: this.deps.host, previous };
  }

  /** The first of the app's commands that local policy forbids, if any. */
  refused(spec: AppSpec): string | undefined {
    const values = this.values(spec);
    return COMMAND_FIELDS.find(([field]) => {
      const template = spec[field];
      return template !== undefined && !this.deps.allowCommand(renderCommand(template, values));
    })?.[1];
  }

  /** Runs a template: placeholders substituted, local policy applied, bounded by `timeoutMs`. */
  async run(
    label: string,
    template: string,
    values: PlaceholderValues,
    timeoutMs: number,
    options: RunOptions = {},
  ): Promise<CommandOutcome> {
    const command = renderCommand(template, values);
    if (!this.deps.allowCommand(command)) return { refused: true, error: `${label} refused by local policy` };
    const { journal } = this.deps;
    const onStart = !options.journaled
      ? undefined
      : (pgid: number): void =>
          journal.update(this.app, { pgid, startTicks: processStartTicks(pgid) ?? "", startedAt: new Date().toISOString(), timeoutMs });
    const signal = options.signal ? AbortSignal.any([this.deps.killSignal, options.signal]) : this.deps.killSignal;
    const result = await this.deps.runner.run({
      command,
      env: commandEnv(values),
      timeoutMs,
      signal,
      ...(onStart ? { onStart } : {}),
    });
    if (onStart) journal.update(this.app, { pgid: 0 });
    return { result, ...describeResult(label, result, timeoutMs) };
  }

  /**
   * The version this host runs: the first line of get-version-cmd's stdout ("" = not
   * installed). A command that fails (non-zero, timeout) is tried PROBE_ATTEMPTS times before
   * the failure is returned — with its exit code and output, so the host fails for the real
   * reason instead of deploying blind. Aborting `signal` (agent shutdown) kills it at once.
   */
  async currentVersion(spec: AppSpec, signal?: AbortSignal): Promise<ProbeOutcome> {
    const timeout = Math.min(spec.deployTimeoutSec * 1_000, GET_VERSION_TIMEOUT_MS);
    // The second shutdown signal ends the retries too, not only the command it interrupts.
    const stop = signal ? AbortSignal.any([this.deps.killSignal, signal]) : this.deps.killSignal;
    let outcome: CommandOutcome = {};
    for (let attempt = 1; attempt <= PROBE_ATTEMPTS; attempt++) {
      outcome = await this.run("get-version-cmd", spec.getVersionCmd, this.values(spec), timeout, signal ? { signal } : {});
      if (!outcome.error && outcome.result) return { version: outcome.result.firstLine.slice(0, 256) };
      if (outcome.interrupted || outcome.refused || stop.aborted) break;
      if (attempt < PROBE_ATTEMPTS) {
        this.deps.log.warn("get-version-cmd failed; trying again", { attempt, error: outcome.error ?? "" });
        await sleep(PROBE_RETRY_MS, stop);
      }
    }
    return { ...outcome, error: outcome.error ?? "get-version-cmd gave no result" };
  }
}

/** The error (and whether the agent interrupted it) of a finished command; {} on success. */
function describeResult(label: string, result: CommandResult, timeoutMs: number): Omit<CommandOutcome, "result"> {
  if (result.killed) return { interrupted: true, error: `${label} interrupted by agent shutdown` };
  if (result.timedOut) {
    const after = `${label} timed out after ${Math.round(timeoutMs / 1000)}s`;
    // The shell ended, but processes it started in the background kept its group alive: the
    // command as written finished, what it left behind did not.
    if (result.exitCode === 0) {
      return {
        error: `${after}: it exited 0 but left processes running in its process group (e.g. "cmd &"), which were killed; start services through systemd`,
      };
    }
    return { error: after };
  }
  if (result.exitCode !== 0) {
    const why = result.exitCode === null ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
    return { error: `${label} ${why}` };
  }
  return {};
}
