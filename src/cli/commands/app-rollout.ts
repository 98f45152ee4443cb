import { UsageError } from "../../config/errors.ts";
import { parseAppName, parseCount, parseVersion } from "../../config/parse-input.ts";
import { readHistory } from "../../apps/history.ts";
import { pauseApp, promoteApp, resumeApp, retryApp, rollbackApp } from "../../apps/operator-actions.ts";
import { readApp, readAppNode } from "../../apps/read-app.ts";
import type { AppSpec } from "../../config/app-spec.ts";
import type { MutationContext } from "../../apps/mutate-app.ts";
import type { ZkClient } from "../../zk/client.ts";
import type { CommandSpec } from "../command.ts";
import { ExitCode } from "../exit-codes.ts";
import { printJson, renderTable } from "../io.ts";
import { SIGN_KEY_OPTION, mutationContext, signingMutationContext, withZk } from "../session.ts";
import { WAIT_OPTIONS, WAIT_OUTCOMES_HELP, readWaitOptions, readWaitTimeout, waitAndReport } from "../wait-for-rollout.ts";

type Action = (zk: ZkClient, app: string, ctx: MutationContext) => Promise<AppSpec>;

/** pause / resume / retry / promote: one app argument, one recorded action. A command that
 *  `waits` takes the --wait options; one that `signs` writes a new release (SIGN_KEY_OPTION). */
function simpleAction(
  usage: string,
  description: string,
  action: Action,
  done: (spec: AppSpec) => string,
  { waits = false, signs = false }: { waits?: boolean; signs?: boolean } = {},
): CommandSpec {
  const options = [...(signs ? [SIGN_KEY_OPTION] : []), ...(waits ? WAIT_OPTIONS : [])];
  return {
    usage,
    description,
    ...(options.length > 0 ? { options } : {}),
    examples: [`conveyor app ${usage.replace("<app>", "myapp")}`],
    async run([appArg = ""], ctx) {
      const app = parseAppName(appArg);
      const { wait, timeoutMs } = waits ? readWaitOptions(ctx) : { wait: false, timeoutMs: 0 };
      const mutation = signs ? await signingMutationContext(ctx) : mutationContext(ctx);
      return withZk(ctx, async (zk) => {
        const spec = await action(zk, app, mutation);
        if (!ctx.options.flag("json")) ctx.io.out(done(spec));
        else if (!wait) printJson(ctx.io, { app, spec });
        return wait ? waitAndReport(ctx, zk, app, spec, { timeoutMs, mutation }) : ExitCode.ok;
      });
    },
  };
}

export const appPause = simpleAction(
  "pause <app>",
  "Admit no new deploys (running ones finish)",
  pauseApp,
  (s) => `paused (version ${s.version}): no new deploys until "conveyor app resume"`,
);
export const appResume = simpleAction(
  "resume <app>",
  "Admit deploys again; also clears a halt (this rollout's failures stop counting)",
  resumeApp,
  (s) => `resumed (version ${s.version})`,
);
export const appRetry = simpleAction(
  "retry <app>",
  "Start a new rollout of the same version, so hosts that failed try again",
  retryApp,
  (s) => `retrying ${s.version} (rollout ${s.rolloutId})`,
  { waits: true, signs: true },
);
export const appPromote = simpleAction(
  "promote <app>",
  "End the canary phase: admit every host",
  promoteApp,
  (s) => `promoted the canary of ${s.version}: every host may deploy now`,
);

export const appRollback: CommandSpec = {
  usage: "rollback <app>",
  description: "Publish the previous version (or --to VERSION) as a new rollout",
  options: [
    { flag: "--to <version>", description: "Roll back to this version instead of the previous one" },
    SIGN_KEY_OPTION,
    ...WAIT_OPTIONS,
  ],
  examples: ["conveyor app rollback myapp", "conveyor app rollback myapp --to 1.2.0 --wait"],
  async run([appArg = ""], ctx) {
    const app = parseAppName(appArg);
    const toText = ctx.options.string("to");
    const to = toText === undefined ? undefined : parseVersion(toText);
    const { wait, timeoutMs } = readWaitOptions(ctx);
    const mutation = await signingMutationContext(ctx);
    return withZk(ctx, async (zk) => {
      const spec = await rollbackApp(zk, app, to, mutation);
      if (!ctx.options.flag("json"))
        ctx.io.out(`rolling back ${app} to ${spec.version} (was ${spec.previousVersion ?? "?"}, rollout ${spec.rolloutId})`);
      else if (!wait) printJson(ctx.io, { app, spec });
      return wait ? waitAndReport(ctx, zk, app, spec, { timeoutMs, mutation }) : ExitCode.ok;
    });
  },
};

export const appWait: CommandSpec = {
  usage: "wait <app>",
  description: `Attach to the rollout in progress and wait for it to end: ${WAIT_OUTCOMES_HELP}`,
  options: [WAIT_OPTIONS[1] ?? { flag: "--wait-timeout <duration>", description: "" }],
  examples: ["conveyor app wait myapp --wait-timeout 20m"],
  async run([appArg = ""], ctx) {
    const app = parseAppName(appArg);
    const timeoutMs = readWaitTimeout(ctx);
    const mutation = mutationContext(ctx);
    return withZk(ctx, async (zk) => {
      const { spec } = await readApp(zk, app);
      return waitAndReport(ctx, zk, app, spec, { timeoutMs, mutation });
    });
  },
};

export const appHistory: CommandSpec = {
  usage: "history <app>",
  description: "What was done to the app, newest first: when, who, action, from → to",
  options: [{ flag: "--limit <n>", description: "Show at most N entries (default 20)" }],
  examples: ["conveyor app history myapp --limit 5", "conveyor app history myapp --json"],
  async run([appArg = ""], ctx) {
    const app = parseAppName(appArg);
    const limitText = ctx.options.string("limit");
    const limit = limitText === undefined ? 20 : parseCount(limitText, "--limit", 200);
    if (limit === 0) throw new UsageError(`invalid --limit "0": must be at least 1`);
    const entries = await withZk(ctx, (zk) => historyOf(zk, app, limit));
    if (ctx.options.flag("json")) {
      printJson(ctx.io, entries);
      return ExitCode.ok;
    }
    const rows = entries.map((e) =>
      "invalid" in e
        ? [`#${e.seq}`, "", "", "INVALID", e.invalid]
        : [e.at, e.by, e.action, [e.from, e.to].filter(Boolean).join(" → "), e.detail ?? ""],
    );
    ctx.io.out(rows.length ? renderTable(["WHEN", "WHO", "ACTION", "VERSION", "DETAIL"], rows) : "no history");
    return ExitCode.ok;
  },
};

async function historyOf(zk: ZkClient, app: string, limit: number) {
  // A clear "does not exist" for a missing app; an app whose spec is invalid still has its
  // history (who wrote what, before repairing it).
  await readAppNode(zk, app);
  return readHistory(zk, app, limit);
}
