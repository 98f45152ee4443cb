import type { ZkClient } from "../zk/client.ts";
import { isConnectivity, isNoNode } from "../zk/errors.ts";
import { basename } from "../zk/paths.ts";
import type { Lease, Semaphore } from "../zk/recipes/semaphore.ts";
import type { WatchEvent } from "../zk/watchers.ts";
import type { RepairLayout } from "./host-reporter.ts";
import type { Logger } from "./logger.ts";

export interface SlotDeps<T> {
  zk: ZkClient;
  semaphore: Semaphore<T>;
  log: Logger;
  /** Re-creates the app's deleted directories; false when the app itself is gone. */
  repairLayout: RepairLayout;
}

/**
 * The slot of a deploy (or an adopted orphan) that runs on this host: its lease node, and the
 * payload to create it again with. While the work runs the slot is never dropped, only
 * replaced: after a session loss, after the app was deleted and created again, after someone
 * deleted the lease node by hand (a watch notices) — each time a new lease is created at once,
 * so the work stays counted. Between the loss and the new lease another host may be admitted:
 * the one excess docs/RELIABILITY.md allows. Released once, when the work has ended.
 */
export class HeldSlot<T> {
  private released = false;
  private restoring: Promise<void> = Promise.resolve();

  private constructor(
    private lease: Lease<T>,
    readonly data: Buffer,
    private readonly deps: SlotDeps<T>,
  ) {}

  /** Takes over a lease won through the queue. */
  static held<T>(lease: Lease<T>, data: Buffer, deps: SlotDeps<T>): HeldSlot<T> {
    const slot = new HeldSlot(lease, data, deps);
    slot.watchLease();
    return slot;
  }

  /** Creates a lease outside the queue for work that already runs (may exceed the limit). */
  static async restored<T>(data: Buffer, deps: SlotDeps<T>): Promise<HeldSlot<T>> {
    const slot = new HeldSlot(await createLease(data, deps), data, deps);
    slot.watchLease();
    return slot;
  }

  /** The lease node's name, for logs. */
  get name(): string {
    return basename(this.lease.path);
  }

  /** What admission saw when it admitted us (undefined for a restored lease). */
  get context(): T | undefined {
    return this.lease.context;
  }

  /**
   * Creates the lease again, then deletes the one it replaces. With `onlyIfGone`, nothing
   * happens while the node still exists (only we can have made it: it names our host and
   * session). After a session loss the old node may linger on the server for a moment, so that
   * case re-creates unconditionally.
   */
  restore(why: string, onlyIfGone = false): Promise<void> {
    // One at a time (a deleted-lease watch and a new session can ask at once): two creates in
    // flight under one session prefix could not tell, after a lost answer, which node is whose.
    const next = this.restoring.then(() => this.restoreNow(why, onlyIfGone));
    this.restoring = next.catch(() => undefined);
    return next;
  }

  private async restoreNow(why: string, onlyIfGone: boolean): Promise<void> {
    if (this.released) return;
    const before = this.lease;
    if (onlyIfGone && (await this.deps.zk.exists(before.path)) !== null) return;
    const lease = await createLease(this.data, this.deps);
    if (this.released || this.lease !== before) {
      await lease.release(); // the work ended (or another restore won) meanwhile
      return;
    }
    this.lease = lease;
    this.deps.log.warn(why, { lease: lease.path });
    this.watchLease();
    // The node it replaces: gone with a lost session (then this deletes nothing), or — replaced
    // while it still existed — it would stay counted until our session ends. Not when the new
    // node has its very name: a directory made again (leases/ or the app deleted by hand)
    // numbers its children from 0 again, under the same session; deleting "the old one" would
    // delete the lease we just made.
    if (before.path !== lease.path) await before.release();
  }

  /** Deletes the lease (once the work's processes are gone). Safe to call twice. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.deps.zk.unwatch(this.leaseWatcher);
    await this.lease.release();
  }

  // One stable watcher: re-arming it never registers it twice.
  private readonly leaseWatcher = (event: WatchEvent): void => {
    if (this.released || event.path !== this.lease.path) return;
    if (event.type === "deleted") {
      void this.restore("lease deleted by someone else while its deploy runs; re-created", true).catch((error: unknown) => {
        // NoNode: the app itself was deleted; if it is created again, the worker counts the
        // deploy in the new app (AppWorker.followRetired / the czxid check).
        if (!isConnectivity(error) && !isNoNode(error))
          this.deps.log.error("could not re-create a deleted lease", { error: String(error) });
      });
    } else if (event.type !== "sessionLost") {
      this.watchLease();
    }
    // sessionLost: the agent restores every held slot once it has a new session.
  };

  /** Watches the lease node (again: after a reconnect a watch set while disconnected is
   *  missing); one already gone by the time the watch is set counts as deleted. */
  watchLease(): void {
    if (this.released) return;
    const path = this.lease.path;
    this.deps.zk.exists(path, this.leaseWatcher).then(
      (stat) => {
        if (stat === null) this.leaseWatcher({ type: "deleted", path });
      },
      () => undefined, // disconnected: restored with the new session, or re-watched on the next restore
    );
  }
}

/** A lease outside the queue; the leases directory is re-created once if it was deleted. */
async function createLease<T>(data: Buffer, deps: SlotDeps<T>): Promise<Lease<T>> {
  try {
    return await deps.semaphore.restoreLease(data);
  } catch (error) {
    if (!isNoNode(error) || !(await deps.repairLayout())) throw error;
    return deps.semaphore.restoreLease(data);
  }
}
