import { firstLine, printable } from "../text/printable.ts";
import type { AppView, FleetStatus, HostView } from "./fleet-view.ts";

/** What happened, one per rollout event; `host-*` events name a host. */
export const EVENT_TYPES = [
  "published",
  "rolled-back",
  "retried",
  "paused",
  "resumed",
  "promoted",
  "halted",
  "converged",
  "rollout-failed",
  "host-queued",
  "host-deploying",
  "host-verifying",
  "host-healthy",
  "host-current",
  "host-failed",
  "host-offline",
  "app-deleted",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface FleetEvent {
  /** ZooKeeper's transaction id of the change the event comes from (several events may share
   *  one); `events --since SEQ` resumes after it. */
  seq: number;
  /** When the event was seen (ISO 8601). */
  at: string;
  type: EventType;
  app: string;
  /** The app's version (the rollout's target) when the event was seen. */
  version: string;
  rolloutId: string;
  /** published / rolled-back / retried: the version before. */
  from?: string;
  host?: string;
  /** host-*: the version the host runs. */
  hostVersion?: string;
  /** host-queued: its position in the slot queue. */
  queuePosition?: number;
  /** host-failed: the exit code (null: killed or timed out), error and output tail. */
  exitCode?: number | null;
  error?: string;
  outputTail?: string;
  /** One line for people (and chat webhooks, which post `text`): "web 2.0: h1 current". */
  text: string;
}

/** What a new rollout was: the newest history entry's action (publish, rollback, retry …). */
export type RolloutCause = (app: string) => "publish" | "rollback" | "retry";

/**
 * The events between two snapshots of the fleet: app-level ones (a new rollout, paused,
 * resumed, promoted, halted, converged, failed, deleted) and one per host whose state changed.
 * `before` undefined: the events that describe `after` as it is (a replay for `--since`).
 * Pure: `cause` is asked only for apps whose rollout changed.
 */
export function fleetEvents(before: FleetStatus | undefined, after: FleetStatus, cause: RolloutCause, at: Date): FleetEvent[] {
  const events: Omit<FleetEvent, "text">[] = [];
  const stamp = at.toISOString();
  const previous = new Map((before?.apps ?? []).map((a) => [a.name, a]));
  for (const app of after.apps) {
    const was = previous.get(app.name);
    previous.delete(app.name);
    const base = { at: stamp, app: app.name, version: app.version, rolloutId: app.rolloutId };
    // A change of the spec is ordered by the spec's write; a verdict (halted, converged) by
    // the newest write it was drawn from.
    const specEvent = (type: EventType, extra: Partial<Omit<FleetEvent, "text">> = {}): void => {
      events.push({ seq: app.specZxid ?? app.zxid ?? 0, ...base, type, ...extra });
    };
    const appEvent = (type: EventType): void => {
      events.push({ seq: app.zxid ?? 0, ...base, type });
    };
    const newRollout = was === undefined || was.rolloutId !== app.rolloutId;
    if (newRollout) {
      const how = was === undefined && before !== undefined ? "publish" : cause(app.name);
      const type: EventType = how === "rollback" ? "rolled-back" : how === "retry" ? "retried" : "published";
      const from = was?.version ?? app.previousVersion;
      specEvent(type, from === undefined || from === app.version ? {} : { from });
    }
    if (was !== undefined && was.paused !== app.paused) specEvent(app.paused ? "paused" : "resumed");
    else if (was === undefined && app.paused) specEvent("paused");
    if (app.canary?.promoted && (newRollout || !was?.canary?.promoted)) specEvent("promoted");
    const hostsBefore = newRollout && was === undefined ? new Map<string, HostView>() : new Map((was?.hosts ?? []).map((h) => [h.host, h]));
    for (const host of app.hosts) {
      const event = hostEvent(hostsBefore.get(host.host), host);
      if (event) events.push({ seq: host.zxid ?? app.zxid ?? 0, ...base, ...event });
    }
    if (app.halted && (newRollout || !was?.halted)) appEvent("halted");
    const ended = (state: AppView["state"]): boolean => app.state === state && (newRollout || was?.state !== state);
    if (ended("converged")) appEvent("converged");
    if (ended("failed")) appEvent("rollout-failed");
  }
  for (const gone of previous.values()) {
    events.push({ seq: gone.zxid ?? 0, at: stamp, type: "app-deleted", app: gone.name, version: gone.version, rolloutId: gone.rolloutId });
  }
  // In ZooKeeper's order of the changes (stable: an app's own events keep theirs), so `seq`
  // never goes down along the stream and `--since` can resume after any event.
  events.sort((a, b) => a.seq - b.seq);
  return events.map((event) => ({ ...event, text: eventText(event) }));
}

/** The event in one line: "web: published 2.0 (was 1.0)", "web 2.0: h3 failed (exit 1: …)". */
export function eventText(e: Omit<FleetEvent, "text" | "seq" | "at">): string {
  if (e.host === undefined) {
    const was = e.from === undefined ? "" : ` (was ${e.from})`;
    if (e.type === "published" || e.type === "rolled-back" || e.type === "retried") return `${e.app}: ${e.type} ${e.version}${was}`;
    return `${e.app} ${e.version}: ${e.type}`;
  }
  const state = e.type.slice("host-".length);
  const detail =
    e.type === "host-queued" && e.queuePosition !== undefined
      ? ` #${e.queuePosition}`
      : e.type === "host-failed"
        ? ` (exit ${e.exitCode ?? "-"}${e.error === undefined ? "" : `: ${firstLine(e.error, 120)}`})`
        : e.hostVersion !== undefined && e.hostVersion !== e.version
          ? ` (runs ${printable(e.hostVersion.slice(0, 256)) || "nothing"})`
          : "";
  return `${e.app} ${e.version}: ${e.host} ${state}${detail}`;
}

const HOST_STATE_EVENTS: Record<HostView["state"], EventType> = {
  queued: "host-queued",
  deploying: "host-deploying",
  verifying: "host-verifying",
  current: "host-current",
  failed: "host-failed",
  offline: "host-offline",
};

/** The host's event, if its state changed (or, in the health gate, it turned healthy). */
function hostEvent(
  was: HostView | undefined,
  now: HostView,
): Omit<FleetEvent, "seq" | "at" | "app" | "version" | "rolloutId" | "text"> | undefined {
  const same = was !== undefined && was.state === now.state && was.rolloutId === now.rolloutId;
  const turnedHealthy = now.healthySince !== undefined && (was?.healthySince === undefined || !same);
  if (same && !turnedHealthy) return undefined;
  const host = { host: now.host, hostVersion: now.version };
  if (turnedHealthy && (same || now.state === "verifying")) return { type: "host-healthy", ...host };
  if (now.state === "queued")
    return { type: "host-queued", ...host, ...(now.queuePosition === undefined ? {} : { queuePosition: now.queuePosition }) };
  if (now.state === "failed") {
    return {
      type: "host-failed",
      ...host,
      exitCode: now.exitCode ?? null,
      ...(now.error === undefined ? {} : { error: now.error }),
      ...(now.outputTail === undefined ? {} : { outputTail: now.outputTail }),
    };
  }
  return { type: HOST_STATE_EVENTS[now.state], ...host };
}
