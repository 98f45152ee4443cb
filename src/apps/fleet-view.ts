import { type AppSpec, healthGate } from "../config/app-spec.ts";
import { type ReleaseSigning, describeSigning } from "./release-signature.ts";
import { resolveFailureBudget } from "../config/budget.ts";
import type { AgentInfo, DeployPhase, HostStatus } from "../config/payloads.ts";
import type { Slots } from "../config/slots.ts";
import { agentPath, hostStatusPath } from "../zk/paths.ts";
import { servesApp } from "./targeting.ts";

export type AppState = "converged" | "failed" | "rolling" | "paused" | "halted";
export type HostState = "current" | "queued" | "deploying" | "verifying" | "failed" | "offline";

export interface HostView {
  host: string;
  state: HostState;
  version: string;
  target: string;
  online: boolean;
  rolloutId: string;
  queuePosition?: number;
  since: string;
  error?: string;
  exitCode?: number | null;
  outputTail?: string;
  durationMs?: number;
  /** Finer than `state` while admitted: draining, deploying, verifying, health, undraining. */
  phase?: DeployPhase;
  /** In the health gate: since when its checks pass, and for how long that is (at the read). */
  healthySince?: string;
  healthyForMs?: number;
  /** drain-cmd ran and undrain-cmd did not: out of rotation. */
  drained?: boolean;
  /** ZooKeeper's id of the transaction that wrote this status: events' `seq`. */
  zxid?: number;
}

export interface AppView {
  name: string;
  version: string;
  rolloutId: string;
  previousVersion?: string;
  slots: Slots;
  paused: boolean;
  state: AppState;
  /** Failures of the current rollout exceed the budget — also while the app is paused (its
   *  state then says "paused"). */
  halted: boolean;
  /** Failures the rollout tolerates (`maxFailures`, a percentage resolved). */
  failureBudget: number;
  /** The health gate's min-healthy time, when the app has a health gate. */
  minHealthyMs?: number;
  groups: string[];
  counts: Record<HostState, number> & { total: number; failuresThisRollout: number };
  hosts: HostView[];
  /** Live agents that serve the app but have not reported on it yet. */
  pendingAgents: string[];
  /** Hosts with a status node whose live agent no longer serves the app (the app's groups or
   *  the agent's `apps` allowlist changed): not waited for, not counted. */
  untargetedHosts: string[];
  /** Hosts with a failure recorded for the current rollout (forgiven ones included). */
  failedHosts: string[];
  /** Whether the current release is signed, by which key, and whether the signature is intact. */
  release: ReleaseSigning;
  /** A canary rollout: how many hosts, and whether it was promoted. */
  canary?: { hosts: number; auto: boolean; promoted: boolean };
  /** The newest ZooKeeper transaction among the app's spec and host statuses, and the spec's
   *  own: events' `seq` (a rollout's end, and a change of the spec). */
  zxid?: number;
  specZxid?: number;
}

export interface AgentView {
  host: string;
  groups: string[];
  agentVersion: string;
  /** Local allowlist: the agent serves only these apps. */
  apps?: string[];
}

export interface FleetStatus {
  apps: AppView[];
  /** Apps whose node cannot be trusted (bad name or payload): shown, never acted on. */
  invalidApps: { name: string; error: string }[];
  agents: AgentView[];
  /** Status or presence nodes that failed validation, with the reason. */
  invalidNodes: { path: string; error: string }[];
}

/** A node read back from ZooKeeper: its validated payload, or why it failed validation. */
export type Decoded<T> = { value: T; error?: undefined; zxid?: number } | { value?: undefined; error: string; zxid?: number };

export interface RawApp {
  name: string;
  spec: Decoded<AppSpec>;
  hosts: { host: string; status: Decoded<HostStatus> }[];
  failures: string[];
}

export interface RawFleet {
  apps: RawApp[];
  agents: { host: string; info: Decoded<AgentInfo> }[];
}

/** Hosts named by per-rollout marker nodes (`<rolloutId>-<host>`: failures, canary) of one rollout. */
export function rolloutHosts(names: readonly string[], rolloutId: string): string[] {
  const prefix = `${rolloutId}-`;
  return names.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length));
}

/**
 * Failures that count toward the current rollout's budget: its failure nodes minus those
 * `app resume` forgave.
 */
export function failuresOf(names: string[], spec: Pick<AppSpec, "rolloutId" | "ignoredFailures">): number {
  return Math.max(0, rolloutHosts(names, spec.rolloutId).length - (spec.ignoredFailures ?? 0));
}

/** The status shown by `conveyor status`, derived from what was read; no I/O. */
export function buildFleetStatus(raw: RawFleet, now: number = Date.now()): FleetStatus {
  const invalidNodes: FleetStatus["invalidNodes"] = [];
  const agents: AgentView[] = [];
  for (const { host, info } of raw.agents) {
    const value = info.value;
    if (value) agents.push({ host, groups: value.groups, agentVersion: value.agentVersion, ...(value.apps ? { apps: value.apps } : {}) });
    else invalidNodes.push({ path: agentPath(host), error: info.error });
  }
  const online = new Set(agents.map((a) => a.host));
  const apps: AppView[] = [];
  const invalidApps: FleetStatus["invalidApps"] = [];
  for (const app of raw.apps) {
    if (!app.spec.value) {
      invalidApps.push({ name: app.name, error: app.spec.error });
      continue;
    }
    apps.push(buildAppView(app, app.spec.value, online, agents, invalidNodes, now));
  }
  return { apps, invalidApps, agents, invalidNodes };
}

function buildAppView(
  app: RawApp,
  spec: AppSpec,
  online: Set<string>,
  agents: AgentView[],
  invalid: FleetStatus["invalidNodes"],
  now: number,
): AppView {
  const positions = queuePositions(app, online);
  const serves = (a: AgentView): boolean => servesApp(a, app.name, spec.groups);
  // A live agent that does not serve the app never reports on it again: its old status must
  // not hold the rollout (and `--wait`) back. An offline host's groups are unknown: it stays.
  const untargetedHosts = new Set(agents.filter((a) => !serves(a)).map((a) => a.host));
  const hosts: HostView[] = [];
  for (const { host, status } of app.hosts) {
    if (untargetedHosts.has(host)) continue;
    if (status.value) hosts.push(hostView(host, status.value, online.has(host), positions.get(host), now, status.zxid));
    else invalid.push({ path: hostStatusPath(app.name, host), error: status.error });
  }
  const reported = new Set(app.hosts.map((h) => h.host));
  const pendingAgents = agents.filter((a) => !reported.has(a.host) && serves(a)).map((a) => a.host);
  const failuresThisRollout = failuresOf(app.failures, spec);
  // The same count the agents' admission resolves a percentage against: hosts that reported.
  const failureBudget = resolveFailureBudget(spec.maxFailures, app.hosts.length);
  const halted = failuresThisRollout > failureBudget;
  const gate = healthGate(spec);
  const zxids = [app.spec.zxid, ...hosts.map((h) => h.zxid)].filter((z): z is number => z !== undefined);
  return {
    name: app.name,
    version: spec.version,
    rolloutId: spec.rolloutId,
    ...(spec.previousVersion === undefined ? {} : { previousVersion: spec.previousVersion }),
    slots: spec.slots,
    paused: spec.paused,
    state: appState(spec, hosts, halted, pendingAgents.length),
    halted,
    failureBudget,
    ...(gate === undefined ? {} : { minHealthyMs: gate.minHealthyMs }),
    groups: spec.groups,
    counts: countStates(hosts, failuresThisRollout),
    hosts,
    pendingAgents,
    untargetedHosts: app.hosts.map((h) => h.host).filter((h) => untargetedHosts.has(h)),
    failedHosts: rolloutHosts(app.failures, spec.rolloutId),
    release: describeSigning(app.name, spec),
    ...(spec.canary === undefined
      ? {}
      : { canary: { hosts: spec.canary, auto: spec.canaryAuto === true, promoted: spec.promoted === true } }),
    ...(zxids.length === 0 ? {} : { zxid: Math.max(...zxids) }),
    ...(app.spec.zxid === undefined ? {} : { specZxid: app.spec.zxid }),
  };
}

function hostView(
  host: string,
  status: HostStatus,
  isOnline: boolean,
  position: number | undefined,
  now: number,
  zxid: number | undefined,
): HostView {
  // Without a presence node the last report may be stale: the host shows as offline, and its
  // `version` still says what it last ran.
  const state: HostState = isOnline ? status.state : "offline";
  return {
    host,
    state,
    version: status.version,
    target: status.target,
    online: isOnline,
    rolloutId: status.rolloutId,
    ...(state === "queued" && position !== undefined ? { queuePosition: position } : {}),
    since: status.since,
    ...(status.error === undefined ? {} : { error: status.error }),
    ...(status.exitCode === undefined ? {} : { exitCode: status.exitCode }),
    ...(status.outputTail === undefined ? {} : { outputTail: status.outputTail }),
    ...(status.durationMs === undefined ? {} : { durationMs: status.durationMs }),
    ...(status.phase === undefined || state === "offline" ? {} : { phase: status.phase }),
    ...(status.healthySince === undefined || state !== "verifying"
      ? {}
      : { healthySince: status.healthySince, healthyForMs: Math.max(0, now - Date.parse(status.healthySince)) }),
    ...(status.drained ? { drained: true } : {}),
    ...(zxid === undefined ? {} : { zxid }),
  };
}

/**
 * 1-based position of each live queued host in the slot queue, by the ticket (its queue node's
 * sequence number) it reported with its `queued` status, lowest first: no listing of the queue.
 */
function queuePositions(app: RawApp, online: Set<string>): Map<string, number> {
  const tickets: { host: string; sequence: number }[] = [];
  for (const { host, status } of app.hosts) {
    const ticket = status.value?.state === "queued" ? status.value.ticket : undefined;
    if (ticket !== undefined && online.has(host)) tickets.push({ host, sequence: ticket });
  }
  tickets.sort((x, y) => x.sequence - y.sequence);
  return new Map(tickets.map((t, i) => [t.host, i + 1]));
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

function appState(spec: AppSpec, hosts: HostView[], halted: boolean, pending: number): AppState {
  if (spec.paused) return "paused";
  if (halted) return "halted";
  return rolloutVerdict(hosts, pending, spec) ?? "rolling";
}

// ---- verdicts: one rule for `status` (appState) and `--wait` (evaluateRollout) -------------

/** The rollout a verdict is about: the app's current version and rollout. */
type Rollout = Pick<AppSpec, "version" | "rolloutId">;

/** Whether a host is finished with the rollout: it reports the version for this rollout. */
export function hostDone(host: HostView, rollout: Rollout): boolean {
  if (host.version !== rollout.version) return false;
  // An offline host that already runs the version is done; a live one must report on this rollout.
  return host.state === "offline" || (host.state === "current" && host.rolloutId === rollout.rolloutId);
}

/** Whether a host failed this rollout (it is not retried: that is its verdict). */
export function hostFailed(host: HostView, rollout: Rollout): boolean {
  return host.state === "failed" && host.rolloutId === rollout.rolloutId;
}

/**
 * The end of a rollout once every targeted host has a verdict (done or failed) and no live
 * agent that serves the app is still to report: `converged` if at least one host runs the
 * version, `failed` if none does — "converged on 0 hosts" would pass a release that deployed
 * nowhere. Undefined while a host has no verdict yet, or when there is no host at all.
 * (A halt — failures over the budget — is decided before this, by the caller.)
 */
export function rolloutVerdict(hosts: readonly HostView[], pendingAgents: number, rollout: Rollout): "converged" | "failed" | undefined {
  if (pendingAgents > 0 || hosts.length === 0) return undefined;
  if (!hosts.every((h) => hostDone(h, rollout) || hostFailed(h, rollout))) return undefined;
  return hosts.some((h) => hostDone(h, rollout)) ? "converged" : "failed";
}
