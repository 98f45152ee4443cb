import type { AppSpec } from "../config/app-spec.ts";
import { formatDuration } from "../config/durations.ts";
import { firstLine, printable } from "../text/printable.ts";
import { parseDurationInput } from "../config/parse-input.ts";
import { UsageError } from "../config/errors.ts";
import type { MutationContext } from "../apps/mutate-app.ts";
import { OperationError } from "../apps/errors.ts";
import { rollbackApp } from "../apps/operator-actions.ts";
import type { AppView } from "../apps/fleet-view.ts";
import { type RolloutOutcome, waitForRollout } from "../apps/rollout-wait.ts";
import type { ZkClient } from "../zk/client.ts";
import type { CommandContext, OptionSpec } from "./command.ts";
import { ExitCode } from "./exit-codes.ts";
import { printJson } from "./io.ts";
import { RolloutProgress, summaryTable } from "./rollout-progress.ts";

/** How a wait ends, for --help (README "CI recipe" says the same). */
export const WAIT_OUTCOMES_HELP =
  "exit 0 converged (every targeted host has a verdict and at least one runs the version); 1 failed (every host failed), halted, timeout, superseded, deleted, or no-hosts (no live agent serves the app)";

export const WAIT_OPTIONS: OptionSpec[] = [
  { flag: "--wait", description: `Block until the rollout ends: ${WAIT_OUTCOMES_HELP}` },
  { flag: "--wait-timeout <duration>", description: "Give up waiting after this long (default 30m)" },
];

export const DEFAULT_WAIT_TIMEOUT = "30m";

export function readWaitTimeout(ctx: CommandContext): number {
  return parseDurationInput(ctx.options.string("wait-timeout") ?? DEFAULT_WAIT_TIMEOUT, "--wait-timeout", 1_000, 7 * 86_400_000);
}

/** `--wait` and its timeout for commands where waiting is optional; a lone timeout is an error. */
export function readWaitOptions(ctx: CommandContext): { wait: boolean; timeoutMs: number } {
  const wait = ctx.options.flag("wait");
  if (!wait && ctx.options.string("wait-timeout") !== undefined) throw new UsageError("--wait-timeout needs --wait");
  return { wait, timeoutMs: wait ? readWaitTimeout(ctx) : 0 };
}

/**
 * Waits for the rollout `spec` started, prints progress and a summary, and returns the exit
 * code: 0 when it converged (every targeted host has a verdict, at least one runs the version,
 * failures within the budget); 1 when every host failed, the rollout halted, timed out, was
 * superseded or deleted, or no agent serves the app. With `rollbackOnFailure`, a failed or
 * halted rollout is rolled back to the previous version and that rollout is waited for too
 * (still exit 1).
 */
export async function waitAndReport(
  ctx: CommandContext,
  zk: ZkClient,
  app: string,
  spec: AppSpec,
  options: { timeoutMs: number; rollbackOnFailure?: boolean; mutation: MutationContext },
): Promise<number> {
  const json = ctx.options.flag("json");
  const started = Date.now();
  const outcome = await follow(ctx, zk, app, spec, options.timeoutMs, json);
  const reports: { rollout: string; version: string; outcome: RolloutOutcome }[] = [
    { rollout: spec.rolloutId, version: spec.version, outcome },
  ];
  let code = report(ctx, app, spec, outcome, started, json);
  if ((outcome.kind === "halted" || outcome.kind === "failed") && options.rollbackOnFailure) {
    const target = spec.previousVersion;
    const rolledBack =
      target === undefined || target === spec.version
        ? new OperationError(`app "${app}" has no previous version to roll back to`)
        : await rollbackApp(zk, app, target, options.mutation, spec.rolloutId).catch((error: unknown) => {
            // Not rolled back (no previous version, published again meanwhile): say why, still
            // exit 1 and still print the JSON. ZooKeeper failures end the command (exit 3).
            if (error instanceof OperationError || error instanceof UsageError) return error;
            throw error;
          });
    if (rolledBack instanceof Error) {
      if (!json) ctx.io.err(`error: not rolled back: ${printable(rolledBack.message)}`);
    } else {
      if (!json) ctx.io.out(`rolling back ${app} to ${rolledBack.version}`);
      const remaining = Math.max(1_000, options.timeoutMs - (Date.now() - started));
      const back = await follow(ctx, zk, app, rolledBack, remaining, json);
      reports.push({ rollout: rolledBack.rolloutId, version: rolledBack.version, outcome: back });
      report(ctx, app, rolledBack, back, started, json);
    }
    code = ExitCode.failed; // the release failed, whatever the rollback did
  }
  if (json) printJson(ctx.io, { app, exitCode: code, rollouts: reports.map(jsonReport) });
  return code;
}

async function follow(
  ctx: CommandContext,
  zk: ZkClient,
  app: string,
  spec: AppSpec,
  timeoutMs: number,
  json: boolean,
): Promise<RolloutOutcome> {
  const progress = new RolloutProgress(ctx.io, Date.now(), ctx.io.isTty);
  try {
    return await waitForRollout(zk, app, spec.rolloutId, {
      timeoutMs,
      signal: ctx.signal,
      ...(json ? {} : { onUpdate: (view) => progress.update(view) }),
    });
  } finally {
    if (!json) progress.finish();
  }
}

function report(ctx: CommandContext, app: string, spec: AppSpec, outcome: RolloutOutcome, started: number, json: boolean): number {
  const code = outcome.kind === "converged" ? ExitCode.ok : ExitCode.failed;
  if (json) return code;
  const took = formatDuration(Date.now() - started);
  if ("view" in outcome && outcome.kind !== "superseded") ctx.io.out(summaryTable(outcome.view));
  switch (outcome.kind) {
    case "converged":
      ctx.io.out(`${app} ${spec.version}: converged on ${outcome.view.hosts.length - outcome.failed.length} host(s) in ${took}`);
      for (const h of outcome.failed) {
        ctx.io.err(`warning: ${h.host} failed (exit ${h.exitCode ?? "-"}: ${firstLine(h.error)}), within --max-failures`);
      }
      break;
    case "failed":
      ctx.io.err(
        `error: ${app} ${spec.version}: rollout failed: no host succeeded (${outcome.failed.length} failed, within --max-failures ${budgetText(spec, outcome.view)}) after ${took}`,
      );
      for (const h of outcome.failed) ctx.io.err(`  ${h.host}: exit ${h.exitCode ?? "-"}: ${firstLine(h.error)}`);
      break;
    case "halted":
      ctx.io.err(
        `error: ${app} ${spec.version}: rollout halted after ${took}: failures exceeded --max-failures ${budgetText(spec, outcome.view)}`,
      );
      for (const h of outcome.failed) ctx.io.err(`  ${h.host}: exit ${h.exitCode ?? "-"}: ${firstLine(h.error)}`);
      break;
    case "timeout":
      ctx.io.err(
        `error: ${app} ${spec.version}: timed out after ${took}; not finished: ${outcome.waiting.map((w) => `${w.host} (${w.state}${w.version ? `, runs ${printable(w.version)}` : ""})`).join(", ")}`,
      );
      for (const h of outcome.failed) ctx.io.err(`  ${h.host}: exit ${h.exitCode ?? "-"}: ${firstLine(h.error)}`);
      break;
    case "superseded":
      ctx.io.err(
        `error: ${app} ${spec.version}: superseded by version ${outcome.view.version} (rollout ${outcome.view.rolloutId}) while waiting`,
      );
      break;
    case "deleted":
      ctx.io.err(`error: app "${app}" was deleted while waiting`);
      break;
    case "no-hosts": {
      const offline = outcome.view.hosts.map((h) => h.host);
      const named = offline.length > 10 ? `${offline.slice(0, 10).join(", ")}, …` : offline.join(", ");
      ctx.io.err(
        offline.length === 0
          ? `error: no agent serves app "${app}" (no live agent in its groups, and no host has reported on it)`
          : `error: no agent serves app "${app}": its ${offline.length} host(s) are offline (${named}) and no other live agent in its groups serves it`,
      );
      break;
    }
  }
  return code;
}

function jsonReport(r: { rollout: string; version: string; outcome: RolloutOutcome }): Record<string, unknown> {
  const o = r.outcome;
  return {
    rolloutId: r.rollout,
    version: r.version,
    outcome: o.kind,
    ...("view" in o ? { hosts: o.view.hosts, pendingAgents: o.view.pendingAgents } : {}),
    ...("failed" in o ? { failed: o.failed.map((h) => h.host) } : {}),
    ...("waiting" in o ? { waiting: o.waiting } : {}),
  };
}

/** "2", or "10% (3 hosts)". */
function budgetText(spec: AppSpec, view: AppView): string {
  return typeof spec.maxFailures === "number" ? String(spec.maxFailures) : `${spec.maxFailures} (${view.failureBudget} host(s))`;
}
