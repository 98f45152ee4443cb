import type { FleetStatus, HostState } from "./fleet-view.ts";

/** One app as one host sees it, for `host list` and `host show`. */
export interface HostAppView {
  app: string;
  /** A host's state in `status`; "pending": its live agent serves the app and has not reported
   *  yet; "untargeted": it reported once, and its live agent no longer serves the app. */
  state: HostState | "pending" | "untargeted";
  version?: string;
  target?: string;
  since?: string;
  exitCode?: number | null;
  error?: string;
}

export interface HostSummary {
  host: string;
  online: boolean;
  /** Known while the agent is online (its presence node says). */
  groups?: string[];
  agentVersion?: string;
  apps: HostAppView[];
}

/**
 * Every host known to any app (a status node) or online (a presence node), sorted, with its
 * apps' states — derived from the same snapshot `status` shows; no I/O.
 */
export function hostSummaries(fleet: FleetStatus): HostSummary[] {
  const hosts = new Map<string, HostSummary>();
  const entry = (host: string): HostSummary => {
    let summary = hosts.get(host);
    if (!summary) {
      summary = { host, online: false, apps: [] };
      hosts.set(host, summary);
    }
    return summary;
  };
  for (const agent of fleet.agents) {
    Object.assign(entry(agent.host), { online: true, groups: agent.groups, agentVersion: agent.agentVersion });
  }
  for (const app of fleet.apps) {
    for (const h of app.hosts) {
      entry(h.host).apps.push({
        app: app.name,
        state: h.state,
        version: h.version,
        target: h.target,
        since: h.since,
        ...(h.state === "failed" ? { exitCode: h.exitCode ?? null, ...(h.error === undefined ? {} : { error: h.error }) } : {}),
      });
    }
    for (const host of app.pendingAgents) entry(host).apps.push({ app: app.name, state: "pending" });
    for (const host of app.untargetedHosts) entry(host).apps.push({ app: app.name, state: "untargeted" });
  }
  return [...hosts.values()].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
}
