import { encodeZnode } from "../config/decode.ts";
import { Failure, HostStatus, type StoredHostState } from "../config/payloads.ts";
import type { ZkClient } from "../zk/client.ts";
import { isNoNode, isNodeExists } from "../zk/errors.ts";
import { doneMarkerPath, doneRolloutDir, failurePath, hostStatusPath } from "../zk/paths.ts";
import type { WatchEvent } from "../zk/watchers.ts";

/** Tries to create a node whose directory keeps vanishing (someone deleting the tree). */
const MAX_CREATE_ATTEMPTS = 5;

/** States a host stays in until the next rollout. */
const SETTLED_STATES: ReadonlySet<StoredHostState> = new Set(["current", "failed"]);

/** A host status as the agent reports it; the reporter adds `since` and `updatedAt`. */
export type Report = Omit<HostStatus, "since" | "updatedAt">;

/**
 * Re-creates the app's missing directories; false when the app itself is gone (or they cannot
 * be re-created), so a write into them must be dropped.
 */
export type RepairLayout = () => Promise<boolean>;

/**
 * Writes this host's status node for one app (and failure nodes). Writes are plain sets: only
 * this host's agent writes its node. A parent directory deleted by hand is re-created through
 * `repairLayout`; if the app itself was deleted meanwhile, the write is dropped — we never
 * re-create a deleted app's subtree.
 */
export class HostReporter {
  private last: { state: StoredHostState; since: string; key: string; data: Buffer; write: Promise<void> } | undefined;
  private pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly zk: ZkClient,
    private readonly app: string,
    private readonly host: string,
    private readonly now: () => Date,
    private readonly repairLayout: RepairLayout,
    /** Told every report as it is made (metrics); must not throw. */
    private readonly observe: (report: Report) => void = () => undefined,
  ) {}

  get lastState(): StoredHostState | undefined {
    return this.last?.state;
  }

  /**
   * Writes the status. Writes are serialised in call order (so the node always ends with the
   * latest report); awaiting is optional — a caller on the critical path may go on while the
   * write is in flight, and must await before anything that others should see after it (e.g.
   * releasing the slot after reporting `current`).
   */
  report(report: Report): Promise<void> {
    const at = this.now().toISOString();
    const key = JSON.stringify(report);
    // The same report again: the caller shares the outcome of the write already made for it
    // (a failure included — a caller must never see success for a write that failed).
    if (this.last?.key === key) return this.last.write;
    this.observe(report);
    const since = this.last?.state === report.state ? this.last.since : at;
    const status: HostStatus = { ...report, since, updatedAt: at };
    const data = encodeZnode(HostStatus, { ...status, outputTail: clip(status.outputTail, 8_192), error: clip(status.error, 4_096) });
    const write = this.pending.then(async () => void (await this.write(data)));
    const last = { state: report.state, since, key, data, write };
    this.last = last;
    // The chain itself never rejects (a failed write must not block later ones); the caller's
    // promise does.
    this.pending = write.then(
      () => {
        if (this.last === last && SETTLED_STATES.has(last.state)) void this.watchOwnNode();
      },
      () => {
        if (this.last === last) this.last = undefined;
      },
    );
    return write;
  }

  /**
   * A settled report (current, failed) may stand for a long time: if someone deletes the node
   * (zkCli, the hosts directory removed), write it again, or `status` and `--wait` would count
   * this host as never reported. Transient states need no watch: the next report re-creates the
   * node. A watch that fires for our own next write is simply not renewed. A node already gone
   * when the watch is set (deleted again right after we wrote it) counts as deleted.
   */
  private async watchOwnNode(): Promise<void> {
    const path = hostStatusPath(this.app, this.host);
    let stat: Awaited<ReturnType<ZkClient["exists"]>>;
    try {
      stat = await this.zk.exists(path, this.ownNodeWatcher);
    } catch {
      return; // disconnected: after a new session every report is written again (reset)
    }
    if (stat === null) this.ownNodeWatcher({ type: "deleted", path });
  }

  /**
   * The worker is done (its last report written): stop guarding the node. A retired worker's
   * watch would otherwise re-arm on every write of the worker that follows it (an app deleted
   * and created again) and race it to rewrite a deleted node with its older report.
   */
  stop(): void {
    this.stopped = true;
    this.zk.unwatch(this.ownNodeWatcher);
  }

  private stopped = false;

  private readonly ownNodeWatcher = (event: WatchEvent): void => {
    const last = this.last;
    if (this.stopped || !last || !SETTLED_STATES.has(last.state)) return;
    if (event.type === "deleted") {
      // Until the node stays, or the app is gone (then nothing is written and we stop).
      this.pending = this.pending
        .then(() => this.write(last.data))
        .then(
          (written) => (written && this.last === last ? this.watchOwnNode() : undefined),
          () => undefined,
        );
    } else if (event.type === "dataChanged") {
      void this.watchOwnNode();
    }
  };

  /** Sets (or creates) our status node; false when the app is gone and nothing was written. */
  private async write(data: Buffer): Promise<boolean> {
    const path = hostStatusPath(this.app, this.host);
    for (;;) {
      try {
        await this.zk.set(path, data);
        return true;
      } catch (error) {
        if (!isNoNode(error)) throw error;
      }
      const created = await this.createRepairing(path, data);
      if (created !== "exists") return created === "created";
    }
  }

  /** Records that this host completed a rollout (deployed and current): the slot ramp counts it.
   *  The first host to complete creates the rollout's directory under done/. */
  async recordDone(rolloutId: string): Promise<void> {
    const marker = doneMarkerPath(this.app, rolloutId, this.host);
    try {
      await this.zk.create(marker, Buffer.alloc(0));
      return;
    } catch (error) {
      if (isNodeExists(error)) return;
      if (!isNoNode(error)) throw error;
    }
    if ((await this.createRepairing(doneRolloutDir(this.app, rolloutId), Buffer.alloc(0))) === "gone") return;
    await this.createRepairing(marker, Buffer.alloc(0));
  }

  /** Records that this host failed a rollout; counts toward the rollout's failure budget. */
  async recordFailure(rolloutId: string, exitCode: number | null, error: string): Promise<void> {
    const data = encodeZnode(Failure, { exitCode, at: this.now().toISOString(), error: clip(error, 4_096) ?? "" });
    await this.createRepairing(failurePath(this.app, rolloutId, this.host), data);
  }

  /**
   * Creates a node under one of the app's directories, re-creating the directory if it was
   * deleted (again and again while someone deletes it: bounded). `gone`: the app itself is
   * gone (or its directories may not be re-created) — nothing was written.
   */
  private async createRepairing(path: string, data: Buffer): Promise<"created" | "exists" | "gone"> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.zk.create(path, data);
        return "created";
      } catch (error) {
        if (isNodeExists(error)) return "exists";
        if (!isNoNode(error)) throw error;
        if (attempt >= MAX_CREATE_ATTEMPTS || !(await this.repairLayout())) return "gone";
      }
    }
  }

  async hasFailed(rolloutId: string): Promise<boolean> {
    return (await this.zk.exists(failurePath(this.app, rolloutId, this.host))) !== null;
  }

  /** Forget the cached last report (after a new session, write everything again). */
  reset(): void {
    this.last = undefined;
  }
}

function clip(text: string | undefined, max: number): string | undefined {
  if (text === undefined) return undefined;
  return text.length > max ? text.slice(text.length - max) : text;
}
