import { encodeZnode } from "../config/decode.ts";
import { Failure, HostStatus, type StoredHostState } from "../config/payloads.ts";
import type { ZkClient } from "../zk/client.ts";
import { isNoNode, isNodeExists } from "../zk/errors.ts";
import { failurePath, hostStatusPath } from "../zk/paths.ts";

export interface Report {
  state: StoredHostState;
  version: string;
  target: string;
  rolloutId: string;
  queuePosition?: number;
  exitCode?: number | null;
  error?: string;
  outputTail?: string;
  durationMs?: number;
}

/**
 * Writes this host's status node for one app (and failure nodes). Writes are plain sets: only
 * this host's agent writes its node. If the app was deleted meanwhile (parent gone), the write
 * is dropped — we never re-create a deleted app's subtree.
 */
export class HostReporter {
  private last: { state: StoredHostState; since: string; key: string } | undefined;
  private pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly zk: ZkClient,
    private readonly app: string,
    private readonly host: string,
    private readonly now: () => Date,
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
    if (this.last?.key === key) return this.pending;
    const since = this.last?.state === report.state ? this.last.since : at;
    const status: HostStatus = { ...report, since, updatedAt: at };
    const data = encodeZnode(HostStatus, { ...status, outputTail: clip(status.outputTail, 8_192), error: clip(status.error, 4_096) });
    this.last = { state: report.state, since, key };
    const write = this.pending.then(() => this.write(data));
    // The chain itself never rejects (a failed write must not block later ones); the caller's
    // promise does.
    this.pending = write.catch(() => {
      this.last = undefined;
    });
    return write;
  }

  private async write(data: Buffer): Promise<void> {
    const path = hostStatusPath(this.app, this.host);
    try {
      await this.zk.set(path, data);
    } catch (error) {
      if (!isNoNode(error)) throw error;
      try {
        await this.zk.create(path, data);
      } catch (createError) {
        if (isNoNode(createError)) return; // app deleted
        if (!isNodeExists(createError)) throw createError;
        await this.zk.set(path, data);
      }
    }
  }


  /** Records that this host failed a rollout; counts toward the rollout's failure budget. */
  async recordFailure(rolloutId: string, exitCode: number | null, error: string): Promise<void> {
    const data = encodeZnode(Failure, { exitCode, at: this.now().toISOString(), error: clip(error, 4_096) ?? "" });
    try {
      await this.zk.create(failurePath(this.app, rolloutId, this.host), data);
    } catch (createError) {
      if (!isNodeExists(createError) && !isNoNode(createError)) throw createError;
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
