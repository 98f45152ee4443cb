import { forgetHost } from "../../apps/forget-host.ts";
import { readFleetStatus } from "../../apps/fleet-status.ts";
import { type HostAppView, type HostSummary, hostSummaries } from "../../apps/host-summary.ts";
import { OperationError } from "../../apps/errors.ts";
import { parseHostId } from "../../config/parse-input.ts";
import { firstLine, printable } from "../../text/printable.ts";
import type { CommandSpec } from "../command.ts";
import { ExitCode } from "../exit-codes.ts";
import { printJson, renderTable } from "../io.ts";
import { mutationContext, withZk } from "../session.ts";

export const hostList: CommandSpec = {
  usage: "list",
  description: "List every host known to any app or online: groups, agent version, online, and its apps' states",
  examples: ["conveyor host list", "conveyor host list --json"],
  async run(_args, ctx) {
    const hosts = hostSummaries(await withZk(ctx, (zk) => readFleetStatus(zk)));
    if (ctx.options.flag("json")) printJson(ctx.io, hosts);
    else if (hosts.length === 0) ctx.io.out("no hosts");
    else {
      const rows = hosts.map((h) => [
        h.host,
        h.online ? "online" : "offline",
        h.agentVersion ?? "-",
        h.groups === undefined ? "-" : h.groups.join(",") || "(none)",
        h.apps.map((a) => `${a.app} ${appState(a)}`).join(", ") || "-",
      ]);
      ctx.io.out(renderTable(["HOST", "AGENT", "VERSION", "GROUPS", "APPS"], rows));
    }
    return ExitCode.ok;
  },
};

export const hostShow: CommandSpec = {
  usage: "show <host>",
  description: "Show one host: online or not, groups, agent version, and each app's state on it",
  examples: ["conveyor host show web-01", "conveyor host show web-01 --json"],
  async run([hostArg = ""], ctx) {
    const host = parseHostId(hostArg);
    const summary = hostSummaries(await withZk(ctx, (zk) => readFleetStatus(zk))).find((h) => h.host === host);
    if (!summary) throw new OperationError(`host "${host}" is not known to any app and has no agent online`);
    if (ctx.options.flag("json")) printJson(ctx.io, summary);
    else ctx.io.out(renderHost(summary));
    return ExitCode.ok;
  },
};

export const hostForget: CommandSpec = {
  usage: "forget <host>",
  description:
    "Admin only: remove a decommissioned host's status and failure markers from every app (with a history entry), so it stops counting as offline or pending. Refused while its agent is online",
  examples: ["conveyor host forget web-07"],
  async run([hostArg = ""], ctx) {
    const host = parseHostId(hostArg);
    const forgotten = await withZk(ctx, (zk) => forgetHost(zk, host, mutationContext(ctx)));
    if (ctx.options.flag("json")) printJson(ctx.io, forgotten);
    else
      ctx.io.out(
        `forgot ${host} in ${forgotten.apps.map((a) => `${a.app} (${a.removed.length} node${a.removed.length === 1 ? "" : "s"})`).join(", ")}`,
      );
    return ExitCode.ok;
  },
};

function appState(a: HostAppView): string {
  if (a.state === "failed") return `failed (exit ${a.exitCode ?? "-"})`;
  return a.version === undefined ? a.state : `${a.state} ${printable(a.version) || "-"}`;
}

function renderHost(h: HostSummary): string {
  const head = [
    `host:           ${h.host}`,
    `agent:          ${h.online ? "online" : "offline"}`,
    `agent version:  ${h.agentVersion ?? "-"}`,
    `groups:         ${h.groups === undefined ? "- (known while online)" : h.groups.join(",") || "(none)"}`,
  ].join("\n");
  if (h.apps.length === 0) return `${head}\napps:           none`;
  const rows = h.apps.map((a) => [
    a.app,
    a.state,
    printable(a.version ?? "") || "-",
    a.target ?? "-",
    a.since ?? "-",
    a.state === "failed" ? `exit ${a.exitCode ?? "-"}: ${firstLine(a.error, 80)}` : "",
  ]);
  return `${head}\n\n${renderTable(["APP", "STATE", "VERSION", "TARGET", "SINCE", "DETAIL"], rows)}`;
}
