import type { ZkClient } from "../client.ts";
import { ZkError, isBadVersion, isConnectionLoss, isNoNode } from "../errors.ts";
import { basename, sequenceOf } from "../paths.ts";
import type { WatchEvent, Watcher } from "../watchers.ts";
import { newestWithPrefix, placeInQueue, queueNodePrefix } from "./queue-node.ts";
import {
  AcquireAbortedError,
  assertSession,
  deleteQuietly,
  releaseLease,
  retrying,
  throwIfAborted,
  untilAbortedOr,
  untilConnected,
} from "./session-waits.ts";
import { type DataRead, TICKET_PREFIX, findPlace, formatMarker, isHeadAt, ticketSequence } from "./ticket-queue.ts";

export { AcquireAbortedError, placeInQueue };

/** The head with every slot busy looks at the lease count again after this long, even without
 *  a wake-up: a lease can vanish without touching leases/ (session expiry, deletion by hand). */
const FULL_RECHECK_MS = 1_000;

/**
 * What the mutex holder may do right now, read from ZooKeeper with `wake` as the watcher so
 * that any change to the inputs (slots, paused, halted) wakes it. `limit` is the number of
 * leases that may exist at once; `alsoCreate` is a node created in the same transaction as the
 * lease (a record of the admission); `context` is handed to the admitted caller (what the
 * admission was decided on, e.g. the spec); `blocked` names why nobody may be admitted.
 */
export type Admission<T = undefined> = { limit: number; alsoCreate?: string; context?: T } | { blocked: string };
export type ReadAdmission<T = undefined> = (wake: Watcher) => Promise<Admission<T>>;

export interface SemaphoreOptions<T = undefined> {
  zk: ZkClient;
  /** Parent of the queue (mutex) nodes, e.g. /apps/<app>/lock. */
  lockDir: string;
  /** Parent of the lease nodes, e.g. /apps/<app>/leases. */
  leasesDir: string;
  /** Who we are; goes into node names so `status` can show queue positions. */
  owner: string;
  readAdmission: ReadAdmission<T>;
  /** Called whenever we wait; `position` is 1 for the mutex holder (with the ticket queue, an
   *  upper bound while queued: tickets issued since the last admission, departed ones too). */
  onWaiting?: (position: number, reason: string) => void;
  /**
   * "listing" (Curator's: each waiter lists the queue to find its predecessor, O(N) bytes per
   * host) or "ticket" (the predecessor is computed from the sequence number and an admitted-up-to
   * marker, O(1) per host: docs/ARCHITECTURE.md "The ticket queue"). Default "listing".
   */
  queue?: "listing" | "ticket";
  /** Told the sequence number of our queue node each time we join the queue (the host reports
   *  it as its ticket, so `status` orders the queue without listing it). */
  onQueued?: (sequence: number) => void;
  /** Ticket queue, every slot busy: how often the head counts the leases again without a
   *  wake-up (a lease can vanish without a release: session expiry). Default 1 s. */
  fullRecheckMs?: number;
}

export interface Lease<T = undefined> {
  /** Path of the lease node. */
  readonly path: string;
  /** What admission saw when it admitted us (undefined for a restored lease). */
  readonly context: T | undefined;
  /** Deletes the lease node; safe to call twice, and after session loss (nothing to delete). */
  release(): Promise<void>;
}

/**
 * A fair, herd-free counting semaphore — Apache Curator's InterProcessSemaphoreV2: a FIFO mutex
 * (ephemeral sequential nodes under `lockDir`, each waiter watching only its predecessor) in
 * front of a lease set (ephemeral sequential nodes under `leasesDir`). Only the mutex holder
 * watches the leases and the admission inputs, so a release wakes one process, not the fleet.
 * The holder creates its lease and deletes its queue node in one transaction. Slots are counted
 * from live lease nodes, never from a stored counter, so a dead process's slot returns when its
 * session ends.
 *
 * Connection handling (Curator's semantics):
 * - suspended: nothing is admitted (every request needs the connection); waits keep their
 *   watches, which the client restores if the same session comes back (`reconnected`).
 *   A request that fails with connection loss is retried once connected again; a queue-node
 *   create whose outcome is unknown is resolved by looking for our session id in the names
 *   (ZOOKEEPER-1262).
 * - lost: our queue node and any lease are gone with the session. acquire() rejects with a
 *   `sessionExpired` ZkError; the caller queues again on the new session. A lease held across
 *   the loss is gone too: the caller must re-create it with `restoreLease` if its work is still
 *   running (the one case where more than `limit` leases may briefly exist).
 * - abort (signal): our queue node is deleted and acquire() rejects with AcquireAbortedError.
 */
export class Semaphore<T = undefined> {
  constructor(private readonly options: SemaphoreOptions<T>) {}

  async acquire(leaseData: Buffer, { signal }: { signal?: AbortSignal } = {}): Promise<Lease<T>> {
    if (this.options.queue === "ticket") return this.acquireTicket(leaseData, signal);
    const { zk } = this.options;
    const sessionId = zk.sessionId;
    const prefix = queueNodePrefix(this.options.owner, sessionId);
    let ourNode: string | undefined;
    try {
      ourNode = await this.joined(await this.createQueueNode(prefix, sessionId, signal));
      for (;;) {
        throwIfAborted(signal);
        assertSession(this.options.zk, sessionId);
        const queue = await retrying(this.options.zk, () => zk.children(this.options.lockDir), sessionId, signal);
        const place = placeInQueue(queue, basename(ourNode));
        if (!place) {
          // Our node vanished without the session ending (someone deleted it): queue again.
          ourNode = await this.joined(await this.createQueueNode(prefix, sessionId, signal));
          continue;
        }
        if (place.predecessor !== undefined) {
          const predecessor = `${this.options.lockDir}/${place.predecessor}`;
          this.options.onWaiting?.(place.ahead + 1, "queued");
          await this.waitFor((wake) => zk.exists(predecessor, wake).then((stat) => stat !== null), sessionId, signal);
          continue;
        }
        const lease = await this.admit(ourNode, leaseData, sessionId, signal);
        if (lease && lease !== "not head") return lease;
      }
    } catch (error) {
      if (ourNode) await deleteQuietly(this.options.zk, ourNode);
      throw error;
    }
  }

  /**
   * The ticket queue: join with a `q-` node, wait behind the highest live ticket below ours
   * (findPlace: computed, not listed), then admit as the head with a compare-and-set on the
   * queue directory's marker, so no two admissions ever decide on the same lease count.
   */
  private async acquireTicket(leaseData: Buffer, signal?: AbortSignal): Promise<Lease<T>> {
    const { zk, lockDir } = this.options;
    const sessionId = zk.sessionId;
    let ourNode: string | undefined;
    try {
      let createLost = false;
      const created = this.createTicket(sessionId, signal, () => {
        createLost = true;
      });
      // Sent right behind the create: ZooKeeper answers one session in order, so this read of
      // the queue directory (marker, child count) already includes our ticket — the walk's
      // first read without a round trip of its own. Not used if the create's answer was lost
      // (the ticket may be created later than this read): read again.
      let joinRead: Promise<DataRead> | undefined = zk.get(lockDir);
      joinRead.catch(() => undefined); // its failure is met (and retried) where it is awaited
      ourNode = await this.joined(await created);
      let woken = false;
      for (;;) {
        throwIfAborted(signal);
        assertSession(this.options.zk, sessionId);
        const ours = ticketSequence(basename(ourNode)) ?? 0;
        if (!woken) {
          let head = false;
          await this.waitFor(
            async (wake) => {
              const pipelined = createLost ? undefined : joinRead;
              joinRead = undefined;
              const place = await findPlace(zk, lockDir, ours, wake, pipelined && (await pipelined));
              head = place.head;
              if (!place.head) this.options.onWaiting?.(Math.max(1, ours - place.marker), "queued");
              return !place.head;
            },
            sessionId,
            signal,
          );
          // A wake-up (our predecessor went): most likely admitted, so we are the head —
          // admit() confirms it from its own first read.
          woken = !head;
          if (!head) continue;
        }
        const lease = await this.admit(ourNode, leaseData, sessionId, signal, ours, woken);
        woken = false;
        if (lease === "not head") continue;
        if (lease) return lease;
        // Our ticket was deleted (by hand): queue again at the back.
        ourNode = await this.joined(await this.createTicket(sessionId, signal));
      }
    } catch (error) {
      if (ourNode) await deleteQuietly(this.options.zk, ourNode);
      throw error;
    }
  }

  /** Announces the queue node just created (onQueued) and returns it. */
  private async joined(node: string): Promise<string> {
    const sequence = sequenceOf(node);
    if (!Number.isNaN(sequence)) this.options.onQueued?.(sequence);
    return node;
  }

  /** Creates our ticket; an unknown outcome (ZOOKEEPER-1262) is settled by the nodes' owner. */
  private async createTicket(sessionId: string, signal?: AbortSignal, onConnectionLoss?: () => void): Promise<string> {
    const { zk, lockDir, owner } = this.options;
    const data = Buffer.from(JSON.stringify({ host: owner, session: sessionId }), "utf8");
    for (;;) {
      throwIfAborted(signal);
      try {
        return await zk.create(`${lockDir}/${TICKET_PREFIX}`, data, "ephemeralSequential");
      } catch (error) {
        if (!isConnectionLoss(error)) throw error;
        onConnectionLoss?.();
        // As in createQueueNode: not abortable, bounded by the session. The rare path that lists.
        await untilConnected(this.options.zk, sessionId);
        const names = await retrying(this.options.zk, () => zk.children(lockDir), sessionId);
        const tickets = names
          .filter((n) => ticketSequence(n) !== undefined)
          .sort()
          .reverse();
        for (const name of tickets) {
          const stat = await retrying(this.options.zk, () => zk.exists(`${lockDir}/${name}`), sessionId);
          if (stat?.ephemeralOwner === sessionId) return `${lockDir}/${name}`;
        }
      }
    }
  }

  /**
   * Re-creates a lease directly, bypassing the queue: after session loss, for work that is still
   * running, so the slot stays counted. May exceed the limit until that work ends.
   */
  async restoreLease(leaseData: Buffer): Promise<Lease<T>> {
    const { zk, leasesDir } = this.options;
    const sessionId = zk.sessionId;
    const name = queueNodePrefix(this.options.owner, sessionId);
    for (;;) {
      try {
        return this.leaseAt(await zk.create(`${leasesDir}/${name}`, leaseData, "ephemeralSequential"), undefined);
      } catch (error) {
        if (!isConnectionLoss(error)) throw error;
        // Unknown outcome (ZOOKEEPER-1262): our session id in the name tells if it was created
        // (the newest such node: the caller may still hold the lease this one replaces).
        const names = await retrying(this.options.zk, () => zk.children(leasesDir), sessionId);
        const mine = newestWithPrefix(names, name);
        if (mine) return this.leaseAt(`${leasesDir}/${mine}`, undefined);
      }
    }
  }

  /** Holding the mutex: wait for admission and a free slot, then swap queue node for a lease. */
  private async admit(
    ourNode: string,
    leaseData: Buffer,
    sessionId: string,
    signal?: AbortSignal,
    ticket?: number,
    confirmHead = false,
  ): Promise<Lease<T> | undefined | "not head"> {
    const { zk, lockDir } = this.options;
    for (let first = true; ; first = false) {
      throwIfAborted(signal);
      assertSession(this.options.zk, sessionId);
      let woke = false;
      let recheck: ReturnType<typeof setTimeout> | undefined;
      let wakeUp: () => void = () => {
        woke = true;
      };
      const wake: Watcher = (event) => {
        if (event.type === "sessionLost") woke = true;
        wakeUp();
      };
      try {
        // The reads go out at once (one round trip): a handoff is on every rollout's critical
        // path. With tickets the marker is read first: ZooKeeper answers a session in order, so
        // the leases seen include every admission up to the marker version we will check.
        const [marker, admission, held] = await retrying(
          this.options.zk,
          () =>
            Promise.all([
              ticket === undefined ? undefined : zk.get(lockDir),
              this.options.readAdmission(wake),
              this.heldLeases(wake, ticket !== undefined),
            ]),
          sessionId,
          signal,
        );
        // Woken in the queue: the marker just read says whether we are the head now (our
        // predecessor was admitted, or we are alone) — reads that would otherwise take a
        // round trip of their own before these, on every handoff's critical path.
        if (confirmHead && first && marker && !isHeadAt(marker, ticket)) return "not head";
        let recheckMs: number | undefined;
        if ("blocked" in admission) {
          this.options.onWaiting?.(1, admission.blocked);
        } else {
          if (held < admission.limit) {
            const prefix = `${this.options.leasesDir}/${queueNodePrefix(this.options.owner, sessionId)}`;
            const guard = ticket === undefined || !marker ? undefined : { ticket, version: marker.stat.version };
            const created = await this.commitLease(prefix, leaseData, ourNode, admission.alsoCreate, sessionId, signal, guard);
            if (created === "raced") continue; // another admission committed since our reads
            if (created === "gone") return undefined;
            return this.leaseAt(created, admission.context);
          }
          this.options.onWaiting?.(1, `all ${admission.limit} slot(s) busy`);
          // Counting: a lease that went without a release (session expired, deleted by hand, an
          // agent of an earlier version) does not touch leases/; look again now and then.
          if (ticket !== undefined) recheckMs = this.options.fullRecheckMs ?? FULL_RECHECK_MS;
        }
        if (!woke) {
          await untilAbortedOr(
            new Promise<void>((resolve) => {
              wakeUp = resolve;
              if (recheckMs !== undefined) recheck = setTimeout(resolve, recheckMs);
            }),
            signal,
          );
        }
      } finally {
        clearTimeout(recheck);
        zk.unwatch(wake);
      }
    }
  }

  /**
   * How many leases are held, watched. With the ticket queue: the directory's child count (one
   * small read; `release` touches the directory's data, which wakes us), so the head's cost does
   * not grow with the number of slots. The listing queue lists the leases and watches the list.
   * Leases are read after the marker, so the count includes every admission up to it.
   */
  private async heldLeases(wake: Watcher, counting: boolean): Promise<number> {
    const { zk, leasesDir } = this.options;
    if (!counting) return (await zk.children(leasesDir, wake)).length;
    const stat = await zk.exists(leasesDir, wake);
    if (!stat) throw new ZkError("noNode", `${leasesDir} does not exist`, leasesDir);
    return stat.numChildren;
  }

  /**
   * Creates our lease and deletes our queue node in one transaction. After a connection loss
   * the outcome is unknown: our session id in the lease names tells whether it was applied
   * (ZOOKEEPER-1262) — blindly sending it again would fail on the already deleted queue node and
   * leave the lease behind.
   */
  private async commitLease(
    prefix: string,
    leaseData: Buffer,
    ourNode: string,
    alsoCreate: string | undefined,
    sessionId: string,
    signal?: AbortSignal,
    guard?: { ticket: number; version: number },
  ): Promise<string | "raced" | "gone"> {
    const { zk, leasesDir, lockDir } = this.options;
    for (;;) {
      try {
        const txn = zk.transaction().create(prefix, leaseData, "ephemeralSequential").delete(ourNode);
        if (alsoCreate) txn.create(alsoCreate);
        // The ticket queue's compare-and-set: admitted up to us, only if no admission came between.
        if (guard) txn.set(lockDir, formatMarker(guard.ticket), guard.version);
        const created = (await txn.commit())[0]?.path;
        if (!created) throw new ZkError("other", "lease transaction returned no path");
        return created;
      } catch (error) {
        if (guard && isBadVersion(error)) return "raced";
        if (guard && isNoNode(error) && !(await zk.exists(ourNode))) return "gone";
        if (!isConnectionLoss(error)) throw error;
        const names = await retrying(this.options.zk, () => zk.children(leasesDir), sessionId, signal);
        const mine = newestWithPrefix(names, basename(prefix));
        if (mine) return `${leasesDir}/${mine}`;
      }
    }
  }

  private leaseAt(path: string, context: T | undefined): Lease<T> {
    let released = false;
    return {
      path,
      context,
      release: async () => {
        if (released) return;
        released = true;
        await releaseLease(this.options.zk, path, this.options.leasesDir);
      },
    };
  }

  private async createQueueNode(prefix: string, sessionId: string, signal?: AbortSignal): Promise<string> {
    const { zk, lockDir } = this.options;
    for (;;) {
      throwIfAborted(signal);
      try {
        return await zk.create(`${lockDir}/${prefix}`, Buffer.alloc(0), "ephemeralSequential");
      } catch (error) {
        if (!isConnectionLoss(error)) throw error;
        // The create may have happened: our session id in the name tells us (ZOOKEEPER-1262).
        // Not abortable and retried until answered: giving up here could leave a queue node
        // nobody owns, ahead of the whole fleet until our session ends. Bounded by the session:
        // once it is lost (rejects with sessionExpired), the node is gone with it.
        await untilConnected(this.options.zk, sessionId);
        const names = await retrying(this.options.zk, () => zk.children(lockDir), sessionId);
        const newest = newestWithPrefix(names, prefix);
        if (newest) return `${lockDir}/${newest}`;
      }
    }
  }

  /** Evaluates `check` with a watcher; waits for the watcher when it returns true. */
  private async waitFor(check: (wake: Watcher) => Promise<boolean>, sessionId: string, signal?: AbortSignal): Promise<void> {
    const { zk } = this.options;
    let resolveEvent: (event: WatchEvent) => void = () => undefined;
    const fired = new Promise<WatchEvent>((resolve) => {
      resolveEvent = resolve;
    });
    const wake: Watcher = (event) => resolveEvent(event);
    try {
      const mustWait = await retrying(this.options.zk, () => check(wake), sessionId, signal);
      if (!mustWait) return;
      const event = await untilAbortedOr(fired, signal);
      if (event.type === "sessionLost") assertSession(this.options.zk, sessionId);
    } finally {
      zk.unwatch(wake);
    }
  }
}
