import { parseAppName } from "../../config/parse-input.ts";
import { type AppView, type FleetStatus, readFleetStatus } from "../../apps/fleet-status.ts";
import { AppNotFoundError } from "../../apps/errors.ts";
import type { CommandSpec } from "../command.ts";
import { ExitCode } from "../exit-codes.ts";
import { printJson, renderTable } from "../io.ts";
import { withZk } from "../session.ts";

export const status: CommandSpec = {
  usage: "status [app]",
  description: "Show every app (or one) and where each host stands",
  examples: ["conveyor status", "conveyor status myapp --json"],
  async run([appArg], ctx) {
    const only = appArg === undefined ? undefined : parseAppName(appArg);
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
  for (const bad of fleet.invalidApps) blocks.push(`${bad.name}  INVALID: ${bad.error}`);
  for (const bad of fleet.invalidNodes) blocks.push(`warning: ${bad.path} INVALID: ${bad.error}`);
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
  const head = `${app.name}  ${app.version}${was}  slots ${app.slots}  ${app.state.toUpperCase()}  ${summary}`;
  if (app.hosts.length === 0) return `${head}\n  (no hosts have reported yet)`;
  const rows = app.hosts.map((h) => [
    h.host,
    h.state === "queued" && h.queuePosition !== undefined ? `queued #${h.queuePosition}` : h.state,
    h.version || "-",
    h.target,
    ago(h.since, now),
    h.state === "failed" ? `exit ${h.exitCode ?? "-"}: ${firstLine(h.error ?? "")}` : "",
  ]);
  return `${head}\n${renderTable(["HOST", "STATE", "VERSION", "TARGET", "SINCE", "DETAIL"], rows, "  ")}`;
}

function ago(iso: string, now: Date): string {
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

function firstLine(text: string): string {
  const line = text.split("\n")[0] ?? "";
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}
