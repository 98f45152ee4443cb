import type { AppSpec } from "../config/app-spec.ts";
import { VERSION_PATTERN } from "../config/names.ts";
import type { CommandResult, CommandRunner } from "./command-runner.ts";
import { type DeployJournal, processStartTicks } from "./deploy-journal.ts";
import type { Logger } from "./logger.ts";
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

/** What a command did; `error` is set when it did not succeed (refused, non-zero, timeout). */
export interface CommandOutcome {
  result?: CommandResult;
  error?: string;
}

const GET_VERSION_TIMEOUT_MS = 120_000;

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
    const commands: [string, string | undefined][] = [
      ["get-version-cmd", spec.getVersionCmd],
      ["deploy-cmd", spec.deployCmd],
      ["verify-cmd", spec.verifyCmd],
    ];
    return commands.find(([, template]) => template !== undefined && !this.deps.allowCommand(renderCommand(template, values)))?.[0];
  }

  /**
   * Runs a template. With `journalRollout` (deploy and verify commands) the running process
   * group is recorded in the deploy journal, so a restarted agent finds it if this one crashes.
   */
  async run(label: string, template: string, values: PlaceholderValues, timeoutMs: number, journalRollout?: string): Promise<CommandOutcome> {
    const command = renderCommand(template, values);
    if (!this.deps.allowCommand(command)) return { error: `${label} refused by local policy` };
    const { journal } = this.deps;
    const onStart =
      journalRollout === undefined
        ? undefined
        : (pgid: number): void =>
            journal.record({
              app: this.app,
              rolloutId: journalRollout,
              version: values.version,
              pgid,
              startTicks: processStartTicks(pgid) ?? "",
              startedAt: new Date().toISOString(),
              timeoutMs,
            });
    const result = await this.deps.runner.run({
      command,
      env: commandEnv(values),
      timeoutMs,
      signal: this.deps.killSignal,
      ...(onStart ? { onStart } : {}),
    });
    if (onStart) journal.clear(this.app);
    if (result.timedOut) return { result, error: `${label} timed out after ${Math.round(timeoutMs / 1000)}s` };
    if (result.killed) return { result, error: `${label} killed by agent shutdown` };
    if (result.exitCode !== 0) {
      const why = result.exitCode === null ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
      return { result, error: `${label} ${why}` };
    }
    return { result };
  }

  /** The version this host runs, per get-version-cmd: first line of stdout, or "" on failure. */
  async currentVersion(spec: AppSpec): Promise<string> {
    const timeout = Math.min(spec.deployTimeoutSec * 1_000, GET_VERSION_TIMEOUT_MS);
    const { result, error } = await this.run("get-version-cmd", spec.getVersionCmd, this.values(spec), timeout);
    if (error || !result) {
      this.deps.log.debug("get-version-cmd gave no version", { error: error ?? "" });
      return "";
    }
    return result.firstLine.slice(0, 256);
  }
}
