import type { ConnectionState, ZkClient } from "../zk/client.ts";
import { FleetWatch } from "./fleet-watch.ts";
import type { FleetStatus } from "./fleet-view.ts";
import { type HistoryRecord, readHistory } from "./history.ts";

/** How many history entries of each app the dashboard shows. */
const HISTORY_SHOWN = 15;

export interface DashboardState {
  /** The fleet as last read; undefined until the first read. */
  fleet?: FleetStatus;
  zookeeper: {
    /** "connected"; "disconnected": no connection right now (the fleet shown is as of `since`). */
    state: "connected" | "disconnected";
    since: string;
  };
  /** Why the fleet cannot be read at all (e.g. not authorised), if so. */
  error?: string;
  history: Record<string, HistoryRecord[]>;
  /** When this state was put together (ISO 8601). */
  at: string;
}

/**
 * What the dashboard shows, kept live by the same watches as `status --watch` (FleetWatch):
 * each change yields a new state for every subscriber (the server-sent events). The
 * connection's state is part of it, so a page says plainly when ZooKeeper is unreachable; the
 * watch's reader re-reads everything after a reconnect (or a new session), and the next state
 * carries it — no reload. An app's history is read again only when its spec changed.
 */
export class DashboardFeed {
  private readonly watch: FleetWatch;
  private readonly subscribers = new Set<(state: DashboardState) => void>();
  private state: DashboardState;
  private readonly historyAt = new Map<string, number>();
  private readonly history: Record<string, HistoryRecord[]> = {};
  private offState: (() => void) | undefined;
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly zk: ZkClient,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.watch = new FleetWatch(zk);
    this.state = { zookeeper: { state: "connected", since: this.now().toISOString() }, history: {}, at: this.now().toISOString() };
  }

  async start(): Promise<void> {
    this.offState = this.zk.onState((state) => this.onConnection(state));
    await this.watch.load();
    await this.refresh();
    this.loop = this.follow();
  }

  current(): DashboardState {
    return this.state;
  }

  subscribe(listener: (state: DashboardState) => void): () => void {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  async close(): Promise<void> {
    this.stop.abort();
    this.offState?.();
    await this.loop;
    this.watch.stop();
  }

  private async follow(): Promise<void> {
    // A burst of changes (a wave of hosts reporting) is one state: 50 ms after the first.
    while ((await this.watch.waitForChange({ signal: this.stop.signal, settleMs: 50 })) === "changed") await this.refresh();
  }

  private onConnection(state: ConnectionState): void {
    const up = state === "connected" || state === "reconnected";
    const next = up ? "connected" : "disconnected";
    if (this.state.zookeeper.state === next) return;
    this.publish({ ...this.state, zookeeper: { state: next, since: this.now().toISOString() } });
  }

  private async refresh(): Promise<void> {
    let fleet: FleetStatus;
    try {
      fleet = this.watch.snapshot();
    } catch (error) {
      this.publish({ ...this.state, error: error instanceof Error ? error.message : String(error) });
      return;
    }
    await this.readHistories(fleet);
    const { error: _, ...rest } = this.state;
    this.publish({ ...rest, fleet, history: { ...this.history } });
  }

  private async readHistories(fleet: FleetStatus): Promise<void> {
    for (const name of Object.keys(this.history)) if (!fleet.apps.some((a) => a.name === name)) delete this.history[name];
    await Promise.all(
      fleet.apps.map(async (app) => {
        const at = app.specZxid ?? 0;
        if (this.historyAt.get(app.name) === at) return;
        try {
          this.history[app.name] = await readHistory(this.zk, app.name, HISTORY_SHOWN);
          this.historyAt.set(app.name, at);
        } catch {
          // Disconnected or deleted meanwhile: the next change reads it again.
        }
      }),
    );
  }

  private publish(state: DashboardState): void {
    this.state = { ...state, at: this.now().toISOString() };
    for (const listener of this.subscribers) listener(this.state);
  }
}
