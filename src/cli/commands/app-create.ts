import type { AppSpec } from "../../config/app-spec.ts";
import { parseAppName, parseCount, parseVersion } from "../../config/parse-input.ts";
import { type AppAttributes, type RolloutOptions, publishApp } from "../../apps/publish.ts";
import { UsageError } from "../../config/errors.ts";
import { printable } from "../../text/printable.ts";
import { APP_ATTRIBUTE_OPTIONS, readAppAttributes } from "../app-attributes.ts";
import { WAIT_OPTIONS, readWaitOptions, waitAndReport } from "../wait-for-rollout.ts";
import type { CommandContext, CommandSpec } from "../command.ts";
import { ExitCode } from "../exit-codes.ts";
import { printJson } from "../io.ts";
import { SIGN_KEY_OPTION, signingMutationContext, withZk } from "../session.ts";

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
    "conveyor app create myapp 1.4 --health-cmd 'curl -fsS localhost:8080/health' --min-healthy-time 10s --drain-cmd 'lb-remove %(host)s' --undrain-cmd 'lb-add %(host)s'",
  ],
  async run([appArg = "", versionArg = ""], ctx) {
    const app = parseAppName(appArg);
    const version = parseVersion(versionArg);
    const attributes = readAttributes(ctx);
    const rollout = readRolloutOptions(ctx);
    const { wait, timeoutMs } = readWaitOptions(ctx);
    const rollbackOnFailure = ctx.options.flag("rollback-on-failure");
    if (rollbackOnFailure && !wait) throw new UsageError("--rollback-on-failure needs --wait");
    const mutation = await signingMutationContext(ctx);
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

function readAttributes(ctx: CommandContext): AppAttributes {
  return readAppAttributes((name) => ctx.options.string(name));
}
