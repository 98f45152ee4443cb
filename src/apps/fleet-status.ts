import type { AppSpec } from "../config/app-spec.ts";
import { decodeZnode } from "../config/decode.ts";
import { InvalidDataError } from "../config/errors.ts";
import { NAME_PATTERN } from "../config/names.ts";
import { AgentInfo, HostStatus } from "../config/payloads.ts";
import type { Slots } from "../config/slots.ts";
import type { ZkClient } from "../zk/client.ts";
import { isNoNode } from "../zk/errors.ts";
import { AGENTS, agentPath, failuresDir, hostStatusPath, hostsDir, lockDir } from "../zk/paths.ts";
import { parseQueueNode } from "../zk/recipes/queue-node.ts";
import { type ListedApp, listApps } from "./read-app.ts";

export type AppState = "converged" | "rolling" | "paused" | "halted";
export type HostState = "current" | "queued" | "deploying" | "verifying" | "failed" | "offline";

export interface HostView {
  host: string;
  state: HostState;
  version: string;
  target: string;
  online: boolean;
  queuePosition?: number;
  since: string;
  error?: string;
  exitCode?: number | null;
  outputTail?: string;
  durationMs?: number;
}

export interface AppView {
  name: string;
  version: string;
  rolloutId: string;
  previousVersion?: string;
  slots: Slots;
  paused: boolean;
  state: AppState;
  counts: Record<HostState, number> & { total: number; failuresThisRollout: number };
  hosts: HostView[];
}

export interface AgentView {
  host: string;
  groups: string[];
  agentVersion: string;
}

export interface FleetStatus {
  apps: AppView[];
  /** Apps whose node cannot be trusted (bad name or payload): shown, never acted on. */
  invalidApps: { name: string; error: string }[];
  agents: AgentView[];
  /** Status or presence nodes that failed validation, with the reason. */
  invalidNodes: { path: string; error: string }[];
}

/** One consistent-enough snapshot of the fleet: every read is a plain read, no watches. */
export async function readFleetStatus(zk: ZkClient, only?: string): Promise<FleetStatus> {
  const invalidNodes: FleetStatus["invalidNodes"] = [];
  const agents = await readAgents(zk, invalidNodes);
  const online = new Set(agents.map((a) => a.host));
  const listed = (await listApps(zk)).filter((a) => only === undefined || a.name === only);
  const apps: AppView[] = [];
  const invalidApps: FleetStatus["invalidApps"] = [];
  for (const entry of listed) {
    if (entry.spec === undefined) invalidApps.push({ name: entry.name, error: entry.error });
    else apps.push(await readAppView(zk, entry, entry.spec, online, invalidNodes));
  }
  return { apps, invalidApps, agents, invalidNodes };
}

async function readAgents(zk: ZkClient, invalid: FleetStatus["invalidNodes"]): Promise<AgentView[]> {
  const names = (await childrenOrEmpty(zk, AGENTS)).sort();
  const views = await Promise.all(
    names.map(async (host): Promise<AgentView | undefined> => {
      const path = agentPath(host);
      try {
        if (!NAME_PATTERN.test(host)) throw new InvalidDataError(path, "invalid host id");
        const info = decodeZnode(AgentInfo, (await zk.get(path)).data, path);
        return { host, groups: info.groups, agentVersion: info.agentVersion };
      } catch (error) {
        if (isNoNode(error)) return undefined;
        if (error instanceof InvalidDataError) invalid.push({ path, error: error.reason });
        else throw error;
        return undefined;
      }
    }),
  );
  return views.filter((v): v is AgentView => v !== undefined);
}

async function readAppView(
  zk: ZkClient,
  entry: ListedApp,
  spec: AppSpec,
  online: Set<string>,
  invalid: FleetStatus["invalidNodes"],
): Promise<AppView> {
  const app = entry.name;
  const [hostNames, queue, failures] = await Promise.all([
    childrenOrEmpty(zk, hostsDir(app)),
    childrenOrEmpty(zk, lockDir(app)),
    childrenOrEmpty(zk, failuresDir(app)),
  ]);
  const positions = queuePositions(queue);
  const hosts = (
    await Promise.all(
      hostNames.sort().map(async (host): Promise<HostView | undefined> => {
        const path = hostStatusPath(app, host);
        try {
          if (!NAME_PATTERN.test(host)) throw new InvalidDataError(path, "invalid host id");
          const status = decodeZnode(HostStatus, (await zk.get(path)).data, path);
          return hostView(host, status, online.has(host), positions.get(host));
        } catch (error) {
          if (isNoNode(error)) return undefined;
          if (error instanceof InvalidDataError) invalid.push({ path, error: error.reason });
          else throw error;
          return undefined;
        }
      }),
    )
  ).filter((h): h is HostView => h !== undefined);

  const failuresThisRollout = failures.filter((name) => name.startsWith(`${spec.rolloutId}-`)).length;
  const counts = countStates(hosts, failuresThisRollout);
  return {
    name: app,
    version: spec.version,
    rolloutId: spec.rolloutId,
    ...(spec.previousVersion === undefined ? {} : { previousVersion: spec.previousVersion }),
    slots: spec.slots,
    paused: spec.paused,
    state: appState(spec, hosts, failuresThisRollout),
    counts,
    hosts,
  };
}

function hostView(host: string, status: HostStatus, isOnline: boolean, position: number | undefined): HostView {
  // Without a presence node the last report may be stale: the host shows as offline, and its
  // `version` still says what it last ran.
  const state: HostState = isOnline ? status.state : "offline";
  return {
    host,
    state,
    version: status.version,
    target: status.target,
    online: isOnline,
    ...(state === "queued" && position !== undefined ? { queuePosition: position } : {}),
    since: status.since,
    ...(status.error === undefined ? {} : { error: status.error }),
    ...(status.exitCode === undefined ? {} : { exitCode: status.exitCode }),
    ...(status.outputTail === undefined ? {} : { outputTail: status.outputTail }),
    ...(status.durationMs === undefined ? {} : { durationMs: status.durationMs }),
  };
}

/** 1-based position of each host in the slot queue (lowest sequence first). */
function queuePositions(names: string[]): Map<string, number> {
  const parsed = names
    .map(parseQueueNode)
    .filter((n): n is NonNullable<typeof n> => n !== undefined)
    .sort((a, b) => a.sequence - b.sequence);
  const positions = new Map<string, number>();
  parsed.forEach((node, i) => {
    if (!positions.has(node.host)) positions.set(node.host, i + 1);
  });
  return positions;
}

function countStates(hosts: HostView[], failuresThisRollout: number): AppView["counts"] {
  const counts: AppView["counts"] = {
    current: 0,
    queued: 0,
    deploying: 0,
    verifying: 0,
    failed: 0,
    offline: 0,
    total: hosts.length,
    failuresThisRollout,
  };
  for (const h of hosts) counts[h.state] += 1;
  return counts;
}

function appState(spec: AppSpec, hosts: HostView[], failuresThisRollout: number): AppState {
  if (spec.paused) return "paused";
  if (failuresThisRollout > spec.maxFailures) return "halted";
  // An offline host that already runs the version does not hold convergence back.
  const done = hosts.every((h) => (h.state === "current" || h.state === "offline") && h.version === spec.version);
  return done ? "converged" : "rolling";
}

async function childrenOrEmpty(zk: ZkClient, path: string): Promise<string[]> {
  try {
    return await zk.children(path);
  } catch (error) {
    if (isNoNode(error)) return [];
    throw error;
  }
}
