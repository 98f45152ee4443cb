import type { AppSpec } from "../config/app-spec.ts";
import { encodeZnode } from "../config/decode.ts";
import { Lease as LeasePayload } from "../config/payloads.ts";
import type { ZkClient } from "../zk/client.ts";
import { leasesDir, lockDir } from "../zk/paths.ts";
import { AcquireAbortedError, Semaphore } from "../zk/recipes/semaphore.ts";
import { appAdmission } from "./admission.ts";
import { HeldSlot } from "./held-slot.ts";
import { layoutUsable } from "./layout-repair.ts";
import type { Logger } from "./logger.ts";

/**
 * The one slot a worker may hold for its app: won through the queue (acquire), or taken outside
 * it for work that already runs (restore: a crashed run's admission, the previous incarnation's
 * deploy). At most one at a time; `abort()` cancels a wait in the queue.
 */
export interface SlotHooks {
  /** Which queue (src/zk/recipes/semaphore.ts); default the ticket queue. */
  queue?: "ticket" | "listing";
  /** Our place while waiting (metrics). */
  onPosition?: (position: number) => void;
  /** Our queue node's sequence number, each time we join (the status report's ticket). */
  onQueued?: (ticket: number) => void;
}

export class SlotKeeper {
  private slot: HeldSlot<AppSpec> | undefined;
  private waiting: AbortController | undefined;
  private readonly semaphore: Semaphore<AppSpec>;

  constructor(
    private readonly zk: ZkClient,
    private readonly app: string,
    private readonly host: string,
    private readonly log: Logger,
    hooks: SlotHooks = {},
  ) {
    this.semaphore = new Semaphore({
      queue: hooks.queue ?? "ticket",
      ...(hooks.onQueued ? { onQueued: hooks.onQueued } : {}),
      zk,
      lockDir: lockDir(app),
      leasesDir: leasesDir(app),
      owner: host,
      readAdmission: appAdmission(zk, app, host),
      onWaiting: (position, reason) => {
        log.debug("waiting for a slot", { app, position, reason });
        hooks.onPosition?.(position);
      },
      onStrayLease: (path, error) =>
        error === undefined
          ? log.warn("deleted a node in leases/ that was no lease (persistent: made by hand); it held a slot", { path })
          : log.error("a node in leases/ that is no lease (persistent: made by hand) holds a slot and could not be deleted", {
              path,
              error,
            }),
    });
  }

  /** The slot held now, if any. */
  get held(): HeldSlot<AppSpec> | undefined {
    return this.slot;
  }

  /**
   * Queues for a slot and waits until admitted (undefined when aborted). `cancelled`: stop() ran
   * before we got here (nothing to abort then) — never queue after it, or a paused or halted
   * app would keep the agent from exiting.
   */
  async acquire(version: string, since: Date, cancelled: boolean): Promise<HeldSlot<AppSpec> | undefined> {
    const abort = new AbortController();
    this.waiting = abort;
    if (cancelled) abort.abort();
    const data = this.payload(version, since.toISOString());
    try {
      const slot = HeldSlot.held(await this.semaphore.acquire(data, { signal: abort.signal }), data, this.slotDeps());
      this.slot = slot;
      this.log.info("slot acquired", { version, slot: slot.name });
      return slot;
    } catch (error) {
      if (error instanceof AcquireAbortedError) return undefined;
      throw error;
    } finally {
      if (this.waiting === abort) this.waiting = undefined;
    }
  }

  /** Leaves the queue (a wait in acquire() resolves undefined). */
  abort(): void {
    this.waiting?.abort();
  }

  /** Takes a slot outside the queue for work that already runs (see HeldSlot.restored). */
  async restore(data: Buffer): Promise<void> {
    this.slot = await HeldSlot.restored(data, this.slotDeps());
  }

  /** The lease payload of a slot held for `version` since `since`. */
  payload(version: string, since: string): Buffer {
    return encodeZnode(LeasePayload, { host: this.host, version, since });
  }

  async release(): Promise<void> {
    const slot = this.slot;
    this.slot = undefined;
    if (!slot) return;
    await slot.release();
    this.log.info("slot released", { slot: slot.name });
  }

  private slotDeps() {
    return { zk: this.zk, semaphore: this.semaphore, log: this.log, repairLayout: () => layoutUsable(this.zk, this.app, this.log) };
  }
}
