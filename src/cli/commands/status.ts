import { parseAppName } from "../../config/parse-input.ts";
import { firstLine, printable } from "../../text/printable.ts";
import { type AppView, type FleetStatus, readFleetStatus } from "../../apps/fleet-status.ts";
import { AppNotFoundError } from "../../apps/errors.ts";
import type { CommandSpec } from "../command.ts";
import { ExitCode } from "../exit-codes.ts";
import { printJson, renderTable } from "../io.ts";
import { withZk } from "../session.ts";
import { FleetWatch } from "../../apps/fleet-watch.ts";
import type { ZkClient } from "../../zk/client.ts";
import type { CommandContext } from "../command.ts";
import { drainedNote, phaseText } from "../host-phase.ts";
import { signingText } from "../signing-text.ts";

/** A failed host's detail in the table (and in --watch lines) is the first line of its error, kept narrower
 *  than --wait's reports so a status row stays readable. */
const DETAIL_WIDTH = 80;

export const status: CommandSpec = {
  usage: "status [app]",
  description: "Show every app (or one) and where each host stands",
  options: [{ flag: "--watch", description: "Keep showing changes as they happen (watches, no polling) until interrupted" }],
  examples: ["conveyor status", "conveyor status myapp --json", "conveyor status --watch"],
  async run([appArg], ctx) {
    const only = appArg === undefined ? undefined : parseAppName(appArg);
    if (ctx.options.flag("watch")) return withZk(ctx, (zk) => watchStatus(ctx, zk, only));
    const fleet = await withZk(ctx, (zk) => readFleetStatus(zk, only));
    if (only !== undefined && fleet.apps.length === 0 && fleet.invalidApps.length === 0) {
      throw new AppNotFoundError(only);
    }
    if (ctx.options.flag("json")) printJson(ctx.io, fleet);
    else ctx.io.out(renderFleet(fleet, new Date()));
    return ExitCode.ok;
  },
};

export function renderFleet(fleet: FleetStatus, now: Date): string {
  const blocks: string[] = [];
  if (fleet.apps.length === 0 && fleet.invalidApps.length === 0) blocks.push("no apps");
  for (const app of fleet.apps) blocks.push(renderApp(app, now));
  for (const bad of fleet.invalidApps) blocks.push(`${printable(bad.name)}  INVALID: ${printable(bad.error)}`);
  for (const bad of fleet.invalidNodes) blocks.push(`warning: ${printable(bad.path)} INVALID: ${printable(bad.error)}`);
  const agents = fleet.agents.map((a) => a.host);
  blocks.push(`agents online: ${agents.length}${agents.length ? ` (${agents.join(", ")})` : ""}`);
  return blocks.join("\n\n");
}

function renderApp(app: AppView, now: Date): string {
  const c = app.counts;
  const was = app.previousVersion === undefined ? "" : ` (was ${app.previousVersion})`;
  const summary = [
    `current ${c.current}/${c.total}`,
    `deploying ${c.deploying + c.verifying}`,
    `queued ${c.queued}`,
    `failed ${c.failed}`,
    `offline ${c.offline}`,
  ].join(" · ");
  const head = `${app.name}  ${app.version}${was}  slots ${app.slots}  ${app.state.toUpperCase()}  ${summary}  ${signingText(app.release)}`;
  const untargeted =
    app.untargetedHosts.length === 0
      ? ""
      : `\n  no longer served by these hosts (app groups or agent apps list): ${app.untargetedHosts.join(", ")}`;
  if (app.hosts.length === 0) return `${head}\n  (no hosts have reported yet)${untargeted}`;
  const rows = app.hosts.map((h) => [
    h.host,
    h.state === "queued" && h.queuePosition !== undefined ? `queued #${h.queuePosition}` : h.state,
    printable(h.version) || "-",
    h.target,
    ago(h.since, now),
    hostDetail(h, app),
  ]);
  return `${head}\n${renderTable(["HOST", "STATE", "VERSION", "TARGET", "SINCE", "DETAIL"], rows, "  ")}${untargeted}`;
}

/** A failure's exit code and first error line; an admitted host's phase; why an offline host stopped. */
function hostDetail(h: AppView["hosts"][number], app: AppView): string {
  if (h.state === "failed") return `exit ${h.exitCode ?? "-"}: ${firstLine(h.error, DETAIL_WIDTH)}${drainedNote(h)}`;
  if (h.state === "offline" && h.error !== undefined && h.rolloutId === app.rolloutId) return firstLine(h.error, DETAIL_WIDTH);
  return (phaseText(h, app) ?? "") + drainedNote(h);
}

function ago(iso: string, now: Date): string {
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

/**
 * Live view: in a terminal the whole status is redrawn in place on every change; otherwise
 * (pipes, CI, --json) one line (or one JSON document) per change. Driven by watches through
 * FleetWatch, so an idle fleet costs nothing and a change shows within milliseconds.
 */
async function watchStatus(ctx: CommandContext, zk: ZkClient, only: string | undefined): Promise<number> {
  const watch = new FleetWatch(zk, only === undefined ? {} : { app: only });
  const json = ctx.options.flag("json");
  const seen = new Map<string, string>();
  try {
    await watch.load();
    do {
      const fleet = watch.snapshot();
      if (json) ctx.io.out(JSON.stringify(fleet));
      else if (ctx.io.isTty) ctx.io.write(`\x1b[H\x1b[2J${renderFleet(fleet, new Date())}\n\n(watching; Ctrl-C to stop)\n`);
      else for (const line of changeLines(fleet, seen)) ctx.io.out(line);
      // Let a burst of events settle (30 ms after the first) so one change is one redraw.
    } while ((await watch.waitForChange({ signal: ctx.signal, settleMs: 30 })) === "changed");
  } finally {
    watch.stop();
  }
  return ExitCode.ok;
}

/** One line per app or host whose state changed since the last snapshot. */
function changeLines(fleet: FleetStatus, seen: Map<string, string>): string[] {
  const lines: string[] = [];
  const at = new Date().toISOString();
  const emit = (key: string, text: string): void => {
    if (seen.get(key) === text) return;
    seen.set(key, text);
    lines.push(`${at} ${text}`);
  };
  for (const app of fleet.apps) {
    emit(app.name, `${app.name} ${app.version} ${app.state} slots=${app.slots} current=${app.counts.current}/${app.counts.total}`);
    for (const h of app.hosts) {
      const position = h.queuePosition === undefined ? "" : ` #${h.queuePosition}`;
      const failure = h.state === "failed" ? ` exit=${h.exitCode ?? "-"} ${firstLine(h.error, DETAIL_WIDTH)}` : "";
      const phase = h.phase === undefined || failure ? "" : ` phase=${h.phase}${h.healthySince ? " healthy" : ""}`;
      emit(
        `${app.name}/${h.host}`,
        `${app.name} ${h.host} ${h.state}${position}${phase} version=${printable(h.version) || "-"} target=${h.target}${failure}`,
      );
    }
  }
  for (const bad of fleet.invalidApps) emit(bad.name, `${printable(bad.name)} INVALID ${printable(bad.error)}`);
  return lines;
}
