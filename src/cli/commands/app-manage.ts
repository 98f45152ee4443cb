import { type AppSpec, healthGate } from "../../config/app-spec.ts";
import { formatDuration } from "../../config/durations.ts";
import { printable, quote } from "../../text/printable.ts";
import { parseAppName, parseDeletableAppName, parseSlotsInput } from "../../config/parse-input.ts";
import { deleteApp } from "../../apps/delete-app.ts";
import { listApps, readApp } from "../../apps/read-app.ts";
import { setSlots } from "../../apps/set-slots.ts";
import type { CommandSpec } from "../command.ts";
import { ExitCode } from "../exit-codes.ts";
import { describeSigning } from "../../apps/release-signature.ts";
import { signingText } from "../signing-text.ts";
import { printJson, renderTable } from "../io.ts";
import { mutationContext, withZk } from "../session.ts";

export const appSetSlots: CommandSpec = {
  usage: "set-slots <app> <slots>",
  description: "Change how many hosts may deploy at once (N or N%); takes effect live",
  examples: ["conveyor app set-slots myapp 3", "conveyor app set-slots myapp 25%"],
  async run([appArg = "", slotsArg = ""], ctx) {
    const app = parseAppName(appArg);
    const slots = parseSlotsInput(slotsArg);
    const spec = await withZk(ctx, (zk) => setSlots(zk, app, slots, mutationContext(ctx)));
    if (ctx.options.flag("json")) printJson(ctx.io, { app, slots: spec.slots });
    else ctx.io.out(`${app}: slots ${spec.slots}`);
    return ExitCode.ok;
  },
};

export const appShow: CommandSpec = {
  usage: "show <app>",
  description: "Show an app's spec",
  examples: ["conveyor app show myapp", "conveyor app show myapp --json"],
  async run([appArg = ""], ctx) {
    const app = parseAppName(appArg);
    const { spec } = await withZk(ctx, (zk) => readApp(zk, app));
    const release = describeSigning(app, spec);
    if (ctx.options.flag("json")) {
      printJson(ctx.io, { ...spec, name: app, release }); // a spec key of a newer version never replaces these
      return ExitCode.ok;
    }
    const rows: [string, string][] = [
      ["app", app],
      ["version", spec.version],
      ["previous version", spec.previousVersion ?? "-"],
      ["rollout", spec.rolloutId],
      ["slots", String(spec.slots)],
      ["paused", spec.paused ? "yes" : "no"],
      ["groups", spec.groups.length ? spec.groups.join(",") : "(all agents)"],
      ["max failures", String(spec.maxFailures)],
      ["deploy timeout", `${spec.deployTimeoutSec}s`],
      ["slot increment", spec.slotIncrement === undefined ? "1" : String(spec.slotIncrement)],
      ["max slots", spec.maxSlots === undefined ? "-" : String(spec.maxSlots)],
      ["get-version-cmd", spec.getVersionCmd],
      ["drain-cmd", spec.drainCmd ?? "-"],
      ["deploy-cmd", spec.deployCmd],
      ["verify-cmd", spec.verifyCmd ?? "-"],
      ["health-cmd", spec.healthCmd ?? "-"],
      ...healthRows(spec),
      ["undrain-cmd", spec.undrainCmd ?? "-"],
      ["release", signingText(release)],
      ["updated", `${spec.updatedAt} by ${spec.updatedBy}`],
    ];
    ctx.io.out(rows.map(([k, v]) => `${`${k}:`.padEnd(17)} ${printable(v)}`).join("\n"));
    return ExitCode.ok;
  },
};

export const appList: CommandSpec = {
  usage: "list",
  description: "List apps",
  examples: ["conveyor app list", "conveyor app list --json"],
  async run(_args, ctx) {
    const apps = await withZk(ctx, (zk) => listApps(zk));
    if (ctx.options.flag("json")) {
      printJson(
        ctx.io,
        apps.map((a) =>
          a.spec
            ? { name: a.name, version: a.spec.version, slots: a.spec.slots, paused: a.spec.paused, groups: a.spec.groups }
            : { name: a.name, error: a.error },
        ),
      );
      return ExitCode.ok;
    }
    if (apps.length === 0) {
      ctx.io.out("no apps");
      return ExitCode.ok;
    }
    const rows = apps.map((a) =>
      a.spec
        ? [a.name, a.spec.version, String(a.spec.slots), a.spec.paused ? "paused" : "", a.spec.groups.join(",") || "(all)"]
        : [a.name, "INVALID", "", "", a.error],
    );
    ctx.io.out(renderTable(["APP", "VERSION", "SLOTS", "PAUSED", "GROUPS"], rows));
    return ExitCode.ok;
  },
};

export const appDelete: CommandSpec = {
  usage: "delete <app>",
  description: "Delete an app and everything under it (status, queue, history); also an app listed as INVALID for its name",
  examples: ["conveyor app delete myapp"],
  async run([appArg = ""], ctx) {
    const { name: app, valid } = parseDeletableAppName(appArg);
    await withZk(ctx, (zk) => deleteApp(zk, app, valid));
    if (ctx.options.flag("json")) printJson(ctx.io, { app, deleted: true });
    else ctx.io.out(`deleted ${valid ? app : quote(app)}`);
    return ExitCode.ok;
  },
};

/** The health gate's timing, defaults filled in (nothing without a health-cmd). */
function healthRows(spec: AppSpec): [string, string][] {
  const gate = healthGate(spec);
  if (!gate) return [];
  return [
    ["health interval", formatDuration(gate.intervalMs)],
    ["health timeout", formatDuration(gate.timeoutMs)],
    ["min healthy time", formatDuration(gate.minHealthyMs)],
  ];
}
