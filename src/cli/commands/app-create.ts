import type { AppSpec } from "../../config/app-spec.ts";
import { parseAppName, parseCount, parseVersion } from "../../config/parse-input.ts";
import { type AppAttributes, type PublishPlan, type RolloutOptions, planPublish, publishApp } from "../../apps/publish.ts";
import { appDefaults } from "../../config/config-file.ts";
import { UsageError } from "../../config/errors.ts";
import { printable } from "../../text/printable.ts";
import { APP_ATTRIBUTE_OPTIONS, flagName, readAppAttributes } from "../../config/app-attributes.ts";
import { WAIT_OPTIONS, readWaitOptions, waitAndReport } from "../wait-for-rollout.ts";
import type { CommandContext, CommandSpec } from "../command.ts";
import { ExitCode } from "../exit-codes.ts";
import { printJson, renderTable } from "../io.ts";
import { SIGN_KEY_OPTION, loadSettings, signingMutationContext, withZk } from "../session.ts";
import { quote } from "../../text/printable.ts";

export const appCreate: CommandSpec = {
  usage: "create <app> <version>",
  description:
    "Create an app, or publish a new version of it (keeps every attribute not given). An app whose stored spec is invalid is replaced when --get-version-cmd and --deploy-cmd are given (history and host status are kept)",
  createsChroot: true,
  options: [
    ...APP_ATTRIBUTE_OPTIONS.map(({ flag, description }) => ({ flag, description })),
    { flag: "--canary <n>", description: 'Admit only N hosts in this rollout until "app promote"' },
    { flag: "--canary-auto", description: "With --canary: promote by itself once every canary host is current" },
    SIGN_KEY_OPTION,
    {
      flag: "--dry-run",
      description:
        "Print the spec it would write and where each value comes from (flag, config file, current spec, default); write nothing",
    },
    ...WAIT_OPTIONS,
    {
      flag: "--rollback-on-failure",
      description: "With --wait: if the rollout fails or halts, roll back to the previous version and wait for that (exit 1)",
    },
  ],
  examples: [
    "conveyor app create myapp 1.0 --slots 2 --get-version-cmd 'cat /srv/myapp/VERSION' --deploy-cmd '/srv/deploy.sh %(version)s'",
    "conveyor app create myapp 1.1",
    "conveyor app create myapp 1.2 --wait --wait-timeout 20m --rollback-on-failure",
    "conveyor app create myapp 1.3 --canary 1 --canary-auto --wait",
    "conveyor app create myapp 1.3.1 --sign-key /etc/conveyor/release.key",
    'conveyor app create myapp "$SHA" --dry-run   # with [apps.myapp] in the config file',
    "conveyor app create myapp 1.4 --health-cmd 'curl -fsS localhost:8080/health' --min-healthy-time 10s --drain-cmd 'lb-remove %(host)s' --undrain-cmd 'lb-add %(host)s'",
  ],
  async run([appArg = "", versionArg = ""], ctx) {
    const app = parseAppName(appArg);
    const version = parseVersion(versionArg);
    const { attributes, origins } = await layeredAttributes(ctx, app);
    const rollout = readRolloutOptions(ctx);
    const { wait, timeoutMs } = readWaitOptions(ctx);
    const rollbackOnFailure = ctx.options.flag("rollback-on-failure");
    if (rollbackOnFailure && !wait) throw new UsageError("--rollback-on-failure needs --wait");
    const dryRun = ctx.options.flag("dry-run");
    if (dryRun && wait) throw new UsageError("--dry-run writes nothing, so there is nothing to --wait for");
    const mutation = await signingMutationContext(ctx);
    if (dryRun) {
      const plan = await withZk(ctx, (zk) => planPublish(zk, app, version, attributes, mutation, rollout));
      const from = specOrigins(plan, origins);
      if (ctx.options.flag("json")) printJson(ctx.io, { app, dryRun: true, kind: plan.kind, spec: plan.spec, origins: from });
      else ctx.io.out(renderPlan(app, plan, from));
      return ExitCode.ok;
    }
    return withZk(ctx, async (zk) => {
      const result = await publishApp(zk, app, version, attributes, mutation, rollout);
      if (ctx.options.flag("json")) {
        if (!wait) printJson(ctx.io, { app, created: result.created, repaired: result.repaired !== undefined, spec: result.spec });
      } else if (result.created) {
        ctx.io.out(`created ${app} ${version} (rollout ${result.spec.rolloutId}, slots ${result.spec.slots})`);
      } else if (result.repaired) {
        const { path, reason } = result.repaired;
        ctx.io.out(
          `repaired ${app} ${version}${was(result.spec)}: replaced the invalid spec at ${path} (${printable(reason)}); rollout ${result.spec.rolloutId}, slots ${result.spec.slots}`,
        );
      } else {
        ctx.io.out(
          `published ${app} ${result.spec.version}${was(result.spec)}, rollout ${result.spec.rolloutId}, slots ${result.spec.slots}`,
        );
      }
      if (!wait) return ExitCode.ok;
      return waitAndReport(ctx, zk, app, result.spec, { timeoutMs, rollbackOnFailure, mutation });
    });
  },
};

function readRolloutOptions(ctx: CommandContext): RolloutOptions {
  const canaryText = ctx.options.string("canary");
  const auto = ctx.options.flag("canary-auto");
  if (canaryText === undefined) {
    if (auto) throw new UsageError("--canary-auto needs --canary N");
    return {};
  }
  const canary = parseCount(canaryText, "--canary", 100_000);
  if (canary < 1) throw new UsageError(`invalid --canary "${canaryText}": must be at least 1`);
  return { canary, canaryAuto: auto };
}

function was(spec: AppSpec): string {
  return spec.previousVersion === undefined ? "" : ` (was ${spec.previousVersion})`;
}

/**
 * The attributes this publish sets, by precedence: flags > `[apps.<app>]` > `[apps.defaults]`
 * of the config file (anything none of them gives keeps the app's current value). `origins`
 * says where each given one came from, for --dry-run.
 */
async function layeredAttributes(ctx: CommandContext, app: string): Promise<{ attributes: AppAttributes; origins: Map<string, string> }> {
  const flags = readAppAttributes((name) => ctx.options.string(name));
  const settings = await loadSettings(ctx);
  const layers = [
    ...appDefaults(settings.file, app).map(({ table, attributes }) => ({
      attributes,
      origin: `${table} in ${quote(settings.configPath ?? "")}`,
    })),
    { attributes: flags, origin: "" },
  ];
  const merged: Record<string, unknown> = {};
  const origins = new Map<string, string>();
  for (const { attributes, origin } of layers) {
    for (const [key, value] of Object.entries(attributes)) {
      merged[key] = value;
      origins.set(key, origin || flagOf(key));
    }
  }
  return { attributes: merged as AppAttributes, origins };
}

function flagOf(key: string): string {
  const option = APP_ATTRIBUTE_OPTIONS.find((o) => o.key === key);
  return option ? flagName(option) : key;
}

/** Where each field of the planned spec comes from. */
function specOrigins(plan: PublishPlan, given: Map<string, string>): Record<string, string> {
  const origins: Record<string, string> = {};
  for (const key of Object.keys(plan.spec)) {
    origins[key] = given.get(key) ?? SPEC_ORIGINS[key] ?? (plan.kind === "publish" ? "current spec" : "default");
  }
  return origins;
}

/** Fields no attribute sets: where their value comes from. */
const SPEC_ORIGINS: Record<string, string> = {
  version: "argument",
  previousVersion: "the version it replaces",
  rolloutId: "this publish",
  updatedAt: "this publish",
  updatedBy: "this publish (CONVEYOR_ACTOR, the CI job, or user@host)",
  signature: "the signing key (--sign-key, CONVEYOR_SIGN_KEY or signKey)",
  canary: "--canary",
  canaryAuto: "--canary-auto",
};

function renderPlan(app: string, plan: PublishPlan, origins: Record<string, string>): string {
  const what =
    plan.kind === "create"
      ? `would create ${app} ${plan.spec.version}`
      : plan.kind === "replace"
        ? `would replace the invalid spec of ${app} with ${plan.spec.version}`
        : `would publish ${app} ${plan.spec.version}${was(plan.spec)}`;
  const rows = Object.entries(plan.spec).map(([key, value]) => [
    key,
    typeof value === "string" ? value : JSON.stringify(value),
    origins[key] ?? "",
  ]);
  return `dry run: ${what}; nothing written\n${renderTable(["FIELD", "VALUE", "FROM"], rows)}`;
}
