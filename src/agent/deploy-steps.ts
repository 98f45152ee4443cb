import type { AppSpec } from "../config/app-spec.ts";
import type { AppCommands, CommandOutcome, ProbeOutcome } from "./app-commands.ts";
import type { HostReporter, Report } from "./host-reporter.ts";
import type { Logger } from "./logger.ts";
import type { RolloutVerdicts } from "./rollout-verdicts.ts";

/** The phase a host is in, for status and logs. */
export type DeployPhase = "deploying" | "verifying";

/** How a deploy on this host ended; `started`: when deploy-cmd started (epoch ms). */
export type DeployVerdict =
  | { ok: true; version: string; started: number }
  | { ok: false; version: string; started: number; outcome: CommandOutcome & { error: string } };

export interface DeployStepsDeps {
  commands: AppCommands;
  log: Logger;
  reporter: HostReporter;
  verdicts: RolloutVerdicts;
  /** Status writes the steps do not wait for (transient phases). */
  post: (report: Report) => void;
  /** Told each phase as it starts. */
  onPhase: (phase: DeployPhase) => void;
}

/**
 * What a host does once admitted with a slot, in order: deploy-cmd; get-version-cmd again (the
 * deploy counts only if the host now reports the desired version); verify-cmd if set. The first
 * step that fails decides the verdict; none of them is retried. Nothing here touches the slot:
 * the caller releases it after reporting the verdict.
 */
export async function runDeploySteps(spec: AppSpec, before: string, deps: DeployStepsDeps): Promise<DeployVerdict> {
  const { commands, log, post, onPhase } = deps;
  const values = commands.values(spec, before);
  const base = { target: spec.version, rolloutId: spec.rolloutId };
  const started = Date.now();
  const timeoutMs = spec.deployTimeoutSec * 1_000;
  const failed = (version: string, outcome: CommandOutcome, error: string): DeployVerdict => ({
    ok: false,
    version,
    started,
    outcome: { ...outcome, error },
  });

  onPhase("deploying");
  post({ ...base, state: "deploying", version: before });
  log.info("deploy started", { version: spec.version, previous: values.previous });
  const deployed = await commands.run("deploy-cmd", spec.deployCmd, values, timeoutMs, { journalRollout: spec.rolloutId });
  if (deployed.error) return failed(before, deployed, deployed.error);

  onPhase("verifying");
  post({ ...base, state: "verifying", version: before });
  // Not cut short by stop(): a deploy that ran is checked to its end, like the deploy itself.
  const probe: ProbeOutcome = await commands.currentVersion(spec);
  if (!("version" in probe)) return failed(before, probe, `after deploy-cmd: ${probe.error}`);
  if (probe.version !== spec.version) {
    return failed(probe.version, deployed, `after deploy-cmd the host reports version "${probe.version}", expected "${spec.version}"`);
  }
  if (spec.verifyCmd !== undefined) {
    const verified = await commands.run("verify-cmd", spec.verifyCmd, values, timeoutMs, { journalRollout: spec.rolloutId });
    if (verified.error) return failed(probe.version, verified, verified.error);
  }
  return { ok: true, version: probe.version, started };
}

/** Runs the steps and reports the verdict: `current` (awaited: the caller releases the slot
 *  next, and whoever sees the slot free must see the host done), or a failure. */
export async function deployAndReport(spec: AppSpec, before: string, deps: DeployStepsDeps): Promise<void> {
  const verdict = await runDeploySteps(spec, before, deps);
  if (!verdict.ok) return deps.verdicts.fail(spec, verdict.version, verdict.started, verdict.outcome);
  const durationMs = Date.now() - verdict.started;
  await deps.reporter.report({ target: spec.version, rolloutId: spec.rolloutId, state: "current", version: verdict.version, durationMs });
  deps.log.info("deploy succeeded", { version: spec.version, durationMs });
}
