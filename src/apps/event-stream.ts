import type { ZkClient } from "../zk/client.ts";
import { FleetWatch } from "./fleet-watch.ts";
import { type FleetEvent, type RolloutCause, fleetEvents } from "./fleet-events.ts";
import type { FleetStatus } from "./fleet-view.ts";
import { readHistory } from "./history.ts";

export interface EventStreamOptions {
  app?: string;
  /** Replay: first the events that describe the fleet as it is, for changes after this seq. */
  since?: number;
  signal: AbortSignal;
  onEvent: (event: FleetEvent) => void;
  /** Once loaded (before any event): the newest seq known, where a live stream starts. */
  onReady?: (seq: number) => void;
  now?: () => Date;
}

/**
 * `conveyor events`: the fleet's rollout events as they happen, from the same watches as
 * `status --watch` (FleetWatch) — each wake-up diffs the new snapshot against the last one. A
 * burst of changes between two snapshots (or while disconnected: after a reconnect the reader
 * re-reads everything) yields the events of the difference, so a host that went through
 * several states meanwhile shows its latest one. Resolves when the signal aborts; rejects
 * with what the reader failed on (e.g. not authorised).
 */
export async function streamEvents(zk: ZkClient, options: EventStreamOptions): Promise<void> {
  const now = options.now ?? (() => new Date());
  const watch = new FleetWatch(zk, options.app === undefined ? {} : { app: options.app });
  try {
    await watch.load();
    let last = watch.snapshot();
    options.onReady?.(newestSeq(last));
    if (options.since !== undefined) {
      const since = options.since;
      const replay = fleetEvents(undefined, last, await causes(zk, undefined, last), now());
      for (const event of replay) if (event.seq > since) options.onEvent(event);
    }
    while ((await watch.waitForChange({ signal: options.signal, settleMs: 10 })) === "changed") {
      const next = watch.snapshot();
      for (const event of fleetEvents(last, next, await causes(zk, last, next), now())) options.onEvent(event);
      last = next;
    }
  } finally {
    watch.stop();
  }
}

const ROLLOUT_STARTERS: ReadonlySet<string> = new Set(["create", "publish", "rollback", "retry", "repaired"]);

function newestSeq(fleet: FleetStatus): number {
  return fleet.apps.reduce((max, app) => Math.max(max, app.zxid ?? 0), 0);
}

/**
 * What started each new rollout, from the newest history entry (written in the same
 * transaction as the spec). Read only for apps whose rollout changed; unreadable: "publish".
 */
async function causes(zk: ZkClient, before: FleetStatus | undefined, after: FleetStatus): Promise<RolloutCause> {
  const was = new Map((before?.apps ?? []).map((a) => [a.name, a.rolloutId]));
  const changed = after.apps.filter((a) => was.get(a.name) !== a.rolloutId).map((a) => a.name);
  const found = new Map<string, "publish" | "rollback" | "retry">();
  await Promise.all(
    changed.map(async (app) => {
      // The newest entry that starts a rollout (a pause may have landed since).
      const recent = await readHistory(zk, app, 5).catch(() => []);
      const starter = recent.find((r) => "action" in r && ROLLOUT_STARTERS.has(r.action));
      const action = starter !== undefined && "action" in starter ? starter.action : undefined;
      found.set(app, action === "rollback" || action === "retry" ? action : "publish");
    }),
  );
  return (app) => found.get(app) ?? "publish";
}
