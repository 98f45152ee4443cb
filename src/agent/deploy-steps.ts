import { type AppSpec, HEALTH_CHECK_TIMEOUT_MS, healthGate } from "../config/app-spec.ts";
import { formatDuration } from "../config/durations.ts";
import type { DeployPhase } from "../config/payloads.ts";
import type { AppCommands, CommandOutcome } from "./app-commands.ts";
import type { HostReporter, Report } from "./host-reporter.ts";
import type { Logger } from "./logger.ts";
import type { PlaceholderValues } from "./placeholders.ts";
import type { RolloutVerdicts } from "./rollout-verdicts.ts";
import { sleep } from "./sleep.ts";

/** A step that did not succeed: the error names it. */
type Failure = CommandOutcome & { error: string };

/** How an admission ended; `started`: when its first step started (epoch ms); `drained`: the
 *  host was taken out of rotation and not put back. */
export type DeployVerdict =
  | { ok: true; version: string; started: number }
  | { ok: false; version: string; started: number; outcome: Failure; drained: boolean };

export interface DeployStepsDeps {
  commands: AppCommands;
  log: Logger;
  reporter: HostReporter;
  verdicts: RolloutVerdicts;
  /** Status writes the steps do not wait for (transient phases). */
  post: (report: Report) => void;
  /** Told each phase as it starts (the worker's phase, the deploy journal). */
  onPhase: (phase: DeployPhase) => void;
  /** The agent's second shutdown signal: the health gate stops waiting. */
  killSignal: AbortSignal;
}

/**
 * What a host does once admitted with a slot, in order: drain-cmd (out of rotation), deploy-cmd,
 * then the checks (runChecks). The first step that fails decides the verdict; none is retried.
 * If drain ran and a later step fails, undrain is not run: the host stays out of rotation (the
 * failure says `drained`) rather than serve a release that failed. The slot is not touched here:
 * the caller releases it after reporting the verdict.
 */
export async function runDeploySteps(spec: AppSpec, before: string, deps: DeployStepsDeps): Promise<DeployVerdict> {
  const { commands, log } = deps;
  const started = Date.now();
  const values = commands.values(spec, before);
  const timeoutMs = spec.deployTimeoutSec * 1_000;
  let drained = false;
  if (spec.drainCmd !== undefined) {
    enter(deps, spec, "deploying", "draining", before, false);
    drained = true; // even a failed drain may have half-drained the host
    const drainedOutcome = await commands.run("drain-cmd", spec.drainCmd, values, timeoutMs, { journaled: true });
    if (drainedOutcome.error) return failed(before, started, drained, drainedOutcome, drainedOutcome.error);
  }
  enter(deps, spec, "deploying", "deploying", before, drained);
  log.info("deploy started", { version: spec.version, previous: values.previous });
  const deployed = await commands.run("deploy-cmd", spec.deployCmd, values, timeoutMs, { journaled: true });
  if (deployed.error) return failed(before, started, drained, deployed, deployed.error);
  return runChecks(spec, before, started, drained, deps, deployed);
}

/**
 * What follows a deploy: get-version-cmd again (the deploy counts only if the host now reports
 * the desired version), verify-cmd, the health gate, undrain-cmd. Also what a restarted agent
 * runs for an admission its crashed run left after the deploy. `deployed`: how deploy-cmd ended
 * (its exit code and output go with a version that did not change).
 */
export async function runChecks(
  spec: AppSpec,
  before: string,
  started: number,
  drained: boolean,
  deps: DeployStepsDeps,
  deployed: CommandOutcome = {},
): Promise<DeployVerdict> {
  const { commands } = deps;
  const values = commands.values(spec, before);
  const timeoutMs = spec.deployTimeoutSec * 1_000;
  enter(deps, spec, "verifying", "verifying", before, drained);
  // Not cut short by stop(): a deploy that ran is checked to its end, like the deploy itself.
  const probe = await commands.currentVersion(spec);
  if (!("version" in probe)) return failed(before, started, drained, probe, `after deploy-cmd: ${probe.error}`);
  const version = probe.version;
  if (version !== spec.version) {
    return failed(
      version,
      started,
      drained,
      deployed,
      `after deploy-cmd the host reports version "${version}", expected "${spec.version}"`,
    );
  }
  if (spec.verifyCmd !== undefined) {
    const verified = await commands.run("verify-cmd", spec.verifyCmd, values, timeoutMs, { journaled: true });
    if (verified.error) return failed(version, started, drained, verified, verified.error);
  }
  const unhealthy = await passHealthGate(spec, values, version, drained, deps);
  if (unhealthy) return failed(version, started, drained, unhealthy, unhealthy.error);
  if (spec.undrainCmd !== undefined) {
    enter(deps, spec, "verifying", "undraining", version, drained);
    const undrained = await commands.run("undrain-cmd", spec.undrainCmd, values, timeoutMs, { journaled: true });
    if (undrained.error) return failed(version, started, drained, undrained, undrained.error);
  }
  return { ok: true, version, started };
}

/**
 * The health gate: health-cmd every interval until it passes — within the health timeout of the
 * deploy's end — then every check must keep passing until min-healthy-time has gone by since the
 * first pass (the bake). A check is killed after HEALTH_CHECK_TIMEOUT_MS (or the health timeout
 * if shorter) and counts as failed. The first signal to the agent lets the gate finish like the
 * deploy it belongs to; the second interrupts it. Resolves with the failure, or undefined once
 * healthy.
 */
async function passHealthGate(
  spec: AppSpec,
  values: PlaceholderValues,
  version: string,
  drained: boolean,
  deps: DeployStepsDeps,
): Promise<Failure | undefined> {
  const gate = healthGate(spec);
  if (!gate) return undefined;
  const { commands, log, killSignal } = deps;
  enter(deps, spec, "verifying", "health", version, drained);
  const deadline = Date.now() + gate.timeoutMs;
  const checkTimeoutMs = Math.min(HEALTH_CHECK_TIMEOUT_MS, gate.timeoutMs);
  let healthySince: number | undefined;
  for (;;) {
    const checkStarted = Date.now();
    const check = await commands.run("health-cmd", gate.cmd, values, checkTimeoutMs, { journaled: true });
    if (check.interrupted || check.refused) return { ...check, error: check.error ?? "health-cmd did not run" };
    const now = Date.now();
    if (!check.error) {
      if (healthySince === undefined) {
        healthySince = checkStarted;
        log.info("healthy; the min-healthy window starts", { version: spec.version, minHealthyMs: gate.minHealthyMs });
        deps.post({ ...report(spec, "verifying", "health", version, drained), healthySince: new Date(healthySince).toISOString() });
      }
      if (now - healthySince >= gate.minHealthyMs) return undefined;
    } else if (healthySince !== undefined) {
      const after = formatDuration(now - healthySince);
      return { ...check, error: `${check.error} after ${after} healthy, within --min-healthy-time ${formatDuration(gate.minHealthyMs)}` };
    } else if (now >= deadline) {
      return { ...check, error: `not healthy within --health-timeout ${formatDuration(gate.timeoutMs)}: ${check.error}` };
    }
    // The next check: one interval on, but never past the end of the window or the deadline.
    const until = healthySince === undefined ? deadline : healthySince + gate.minHealthyMs;
    await sleep(Math.max(0, Math.min(gate.intervalMs, until - Date.now())), killSignal);
    if (killSignal.aborted) return { interrupted: true, error: "health gate interrupted by agent shutdown" };
  }
}

/** Reports and announces a step (status write not awaited). */
function enter(
  deps: DeployStepsDeps,
  spec: AppSpec,
  state: "deploying" | "verifying",
  phase: DeployPhase,
  version: string,
  drained: boolean,
): void {
  deps.onPhase(phase);
  deps.post(report(spec, state, phase, version, drained));
}

function report(spec: AppSpec, state: "deploying" | "verifying", phase: DeployPhase, version: string, drained: boolean): Report {
  return { state, phase, version, target: spec.version, rolloutId: spec.rolloutId, ...(drained ? { drained: true } : {}) };
}

function failed(version: string, started: number, drained: boolean, outcome: CommandOutcome, error: string): DeployVerdict {
  return { ok: false, version, started, drained, outcome: { ...outcome, error } };
}

/** Runs the steps and reports the verdict: `current` (awaited: the caller releases the slot
 *  next, and whoever sees the slot free must see the host done), or a failure. */
export async function deployAndReport(
  spec: AppSpec,
  before: string,
  deps: DeployStepsDeps,
  steps: (spec: AppSpec, before: string, deps: DeployStepsDeps) => Promise<DeployVerdict> = runDeploySteps,
): Promise<void> {
  const verdict = await steps(spec, before, deps);
  if (!verdict.ok) return deps.verdicts.fail(spec, verdict.version, verdict.started, verdict.outcome, verdict.drained);
  const durationMs = Date.now() - verdict.started;
  // The ramp counts completed hosts from these markers: written before the slot is released.
  if (spec.slotIncrement !== undefined && spec.slotIncrement > 1) await deps.reporter.recordDone(spec.rolloutId);
  await deps.reporter.report({ target: spec.version, rolloutId: spec.rolloutId, state: "current", version: verdict.version, durationMs });
  deps.log.info("deploy succeeded", { version: spec.version, durationMs });
}

/**
 * An admission a crashed run of the agent left unfinished, finished on the app's current spec
 * (the slot is held already). Deployed already — the host runs the version — what is left are
 * the checks, the gate and undrain (drained if the app drains: the journal entry outlives
 * drain-cmd until undrain-cmd is done). Otherwise the whole admission again.
 */
export async function finishAdmission(spec: AppSpec, deps: DeployStepsDeps): Promise<void> {
  const probe = await deps.commands.currentVersion(spec);
  if (!("version" in probe)) return deps.verdicts.fail(spec, "", Date.now(), { ...probe, error: `before deploying: ${probe.error}` });
  if (probe.version !== spec.version) return deployAndReport(spec, probe.version, deps);
  const drained = spec.drainCmd !== undefined;
  return deployAndReport(spec, probe.version, deps, (s, before, d) => runChecks(s, before, Date.now(), drained, d));
}
