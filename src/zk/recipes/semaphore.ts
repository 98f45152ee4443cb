import { type ZkClient, isEphemeral } from "../client.ts";
import { ZkError, isBadVersion, isConnectionLoss, isNoNode, isNodeExists } from "../errors.ts";
import { basename, sequenceOf } from "../paths.ts";
import type { WatchEvent, Watcher } from "../watchers.ts";
import { newestWithPrefix, placeInQueue, queueNodePrefix } from "./queue-node.ts";
import {
  AcquireAbortedError,
  assertSession,
  deleteOursQuietly,
  deleteQuietly,
  releaseLease,
  retrying,
  throwIfAborted,
  untilAbortedOr,
  untilConnected,
} from "./session-waits.ts";
import {
  type DataRead,
  type Marker,
  MAX_TICKET_COLLISIONS,
  STEP_PREFIX,
  TICKET_PREFIX,
  findPlace,
  formatMarker,
  isHeadAt,
  isWaiting,
  readMarker,
  ticketName,
  ticketSequence,
} from "./ticket-queue.ts";

export { AcquireAbortedError, placeInQueue };

/** The head with every slot busy looks at the lease count again after this long, even without
 *  a wake-up: a lease can vanish without touching leases/ (session expiry, deletion by hand). */
const FULL_RECHECK_MS = 1_000;
const STRAY_CHECK_MS = 30_000;

/** A waiter right behind the head, admitted in the head's transaction (bulk admission). */
interface Follower {
  sequence: number;
  path: string;
  /** Its ticket's data, written back unchanged: the write is what wakes its successor. */
  data: Buffer;
}

/** The ticket queue's part of an admission transaction. */
interface TicketCommit {
  /** The new marker and the version it must replace (the compare-and-set); none when we only
   *  turn a ticket admitted by an earlier head into a lease. */
  marker?: { data: Buffer; version: number };
  followers: Follower[];
}

/**
 * What the mutex holder may do right now, read from ZooKeeper with `wake` as the watcher so
 * that any change to the inputs (slots, paused, halted) wakes it. `limit` is the number of
 * leases that may exist at once; `alsoCreate` is a node created in the same transaction as the
 * lease (a record of the admission); `context` is handed to the admitted caller (what the
 * admission was decided on, e.g. the spec); `blocked` names why nobody may be admitted.
 * `bulk`: the same decision holds for the waiters behind us, so the ticket queue's head may
 * admit as many of them as there are free slots in its own transaction (never with
 * `alsoCreate`: that record is per admission).
 */
export type Admission<T = undefined> = { limit: number; alsoCreate?: string; context?: T; bulk?: boolean } | { blocked: string };
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
  /** Ticket queue, every slot busy this long: the head looks once for leases that are not
   *  ephemeral (made by hand: each would hold a slot for ever), deletes them and tells
   *  `onStrayLease`. Default 30 s; again every as long while still blocked. */
  strayCheckMs?: number;
  /** Told each stray deleted, or why it could not be (`error`: then it still holds its slot). */
  onStrayLease?: (path: string, error?: string) => void;
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
      let createRetried = false;
      const created = this.createTicket(sessionId, signal, () => {
        createRetried = true;
      });
      // Sent right behind the create: ZooKeeper answers one session in order, so this read of
      // the queue directory (marker, child count) already includes our ticket — the walk's
      // first read without a round trip of its own. Not used if the create's answer was lost
      // (the ticket may be created later than this read): read again.
      let joinRead: Promise<DataRead> | undefined = zk.get(lockDir);
      joinRead.catch(() => undefined); // its failure is met (and retried) where it is awaited
      ourNode = await this.joined(await created);
      // The queue directory our ticket was drawn in: learnt from the first read of it after the
      // create (pipelined behind it, or the walk's own). Every later read of it is compared.
      let incarnation: string | undefined;
      // Our ticket was deleted (by hand), or lock/ made again: queue again at the back. The old
      // name is forgotten first — perhaps another host's now, never ours to delete.
      const requeue = async (): Promise<string> => {
        ourNode = undefined;
        incarnation = undefined;
        return this.joined(await this.createTicket(sessionId, signal));
      };
      let woken = false;
      for (;;) {
        throwIfAborted(signal);
        assertSession(this.options.zk, sessionId);
        const ours = ticketSequence(basename(ourNode)) ?? 0;
        if (!woken) {
          let head = false;
          let gone = false;
          const node = ourNode;
          await this.waitFor(
            async (wake) => {
              const pipelined = createRetried ? undefined : joinRead;
              joinRead = undefined;
              // Our own ticket is watched too: a head that admits us along with itself (bulk
              // admission) writes it, which wakes us at once. Written already: admit() finds
              // us pending.
              const [place, own] = await Promise.all([
                findPlace(zk, lockDir, ours, wake, pipelined && (await pipelined)),
                zk.exists(node, wake),
              ]);
              incarnation ??= place.incarnation;
              // Our ticket deleted by hand — or lock/ deleted and made again, where another
              // host's ticket may bear our old name: never act on it (as head, as admitted) and
              // never delete it. Queue again.
              if (own === null || own.ephemeralOwner !== sessionId || place.incarnation !== incarnation) {
                gone = true;
                return false;
              }
              head = place.head || own.version > 0;
              if (!head) this.options.onWaiting?.(Math.max(1, ours - place.marker), "queued");
              return !head;
            },
            sessionId,
            signal,
          );
          if (gone) {
            ourNode = await requeue();
            continue;
          }
          // A wake-up (our predecessor went, or a head admitted us): most likely we are the
          // head or admitted — admit() confirms it from its own first read.
          woken = !head;
          if (!head) continue;
        }
        const lease = await this.admit(ourNode, leaseData, sessionId, signal, ours, woken, incarnation);
        woken = false;
        if (lease === "not head") continue;
        if (lease) return lease;
        ourNode = await requeue();
      }
    } catch (error) {
      if (ourNode) await deleteOursQuietly(this.options.zk, ourNode, sessionId);
      throw error;
    }
  }

  /** Announces the queue node just created (onQueued) and returns it. */
  private async joined(node: string): Promise<string> {
    const sequence = sequenceOf(node);
    if (!Number.isNaN(sequence)) this.options.onQueued?.(sequence);
    return node;
  }

  /**
   * Creates our ticket; an unknown outcome (ZOOKEEPER-1262) is settled by the nodes' owner.
   * `onRetried`: the first create did not make our ticket (its answer lost, or its name taken),
   * so a read pipelined behind it may not include our ticket — and may show a queue without us.
   */
  private async createTicket(sessionId: string, signal?: AbortSignal, onRetried?: () => void): Promise<string> {
    const { zk, lockDir, owner } = this.options;
    const data = Buffer.from(JSON.stringify({ host: owner, session: sessionId }), "utf8");
    for (let collisions = 0; ; ) {
      throwIfAborted(signal);
      try {
        return await zk.create(`${lockDir}/${TICKET_PREFIX}`, data, "ephemeralSequential");
      } catch (error) {
        if (isNodeExists(error) && collisions < MAX_TICKET_COLLISIONS) {
          // A node made by hand bears the very name the directory's counter gives next, and a
          // failed create does not move the counter: creating and deleting a child of another
          // name does. (Such a node is skipped by every waiter: see isWaiting.)
          collisions += 1;
          onRetried?.();
          await deleteQuietly(zk, await zk.create(`${lockDir}/${STEP_PREFIX}`, Buffer.alloc(0), "ephemeralSequential"));
          continue;
        }
        if (!isConnectionLoss(error)) throw error;
        onRetried?.();
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
    incarnation?: string,
  ): Promise<Lease<T> | undefined | "not head"> {
    const { zk } = this.options;
    // Pending tickets seen gone (became leases, or left): gone for good, so not read again.
    const knownGone = new Set<number>();
    const noteGone: Watcher = (event) => {
      const sequence = ticketSequence(basename(event.path));
      if (event.type === "deleted" && sequence !== undefined) knownGone.add(sequence);
    };
    try {
      return await this.admitLoop(ourNode, leaseData, sessionId, signal, ticket, confirmHead, { knownGone, noteGone, incarnation });
    } finally {
      zk.unwatch(noteGone);
    }
  }

  private async admitLoop(
    ourNode: string,
    leaseData: Buffer,
    sessionId: string,
    signal: AbortSignal | undefined,
    ticket: number | undefined,
    confirmHead: boolean,
    { knownGone, noteGone, incarnation }: { knownGone: Set<number>; noteGone: Watcher; incarnation?: string },
  ): Promise<Lease<T> | undefined | "not head"> {
    const { zk, lockDir } = this.options;
    const strayCheckMs = this.options.strayCheckMs ?? STRAY_CHECK_MS;
    let busySince: number | undefined;
    for (let first = true; ; first = false) {
      throwIfAborted(signal);
      assertSession(this.options.zk, sessionId);
      // Only tickets seen gone before this pass's reads are sent: their leases are in the count
      // we are about to read. One noted while the reads are out may have become a lease after
      // the count was read — it must be read again, or its slot would be counted by nobody.
      const goneBefore = new Set(knownGone);
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
        // lock/ made again since we joined: our ticket (number) is not in it — queue again.
        if (marker && incarnation !== undefined && marker.stat.czxid !== incarnation) return undefined;
        // Woken in the queue: the marker just read says whether we are the head now (our
        // predecessor was admitted, or we are alone) — reads that would otherwise take a
        // round trip of their own before these, on every handoff's critical path.
        if (confirmHead && first && marker && !isHeadAt(marker, ticket)) return "not head";
        let recheckMs: number | undefined;
        const state = marker ? readMarker(marker.data) : undefined;
        const pending = ticket !== undefined && state?.pending.includes(ticket) === true;
        if (pending && !("blocked" in admission) && admission.bulk === true) {
          return this.takeAdmittedSlot(ourNode, leaseData, sessionId, signal, admission.context);
        }
        // Pending, but the decision has changed since (paused, halted, a canary opened): wait,
        // or admit ourselves as a head would — our reserved slot stays counted until then.
        if ("blocked" in admission) {
          this.options.onWaiting?.(1, admission.blocked);
        } else {
          const prefix = `${this.options.leasesDir}/${queueNodePrefix(this.options.owner, sessionId)}`;
          // Our own reservation (if pending) is the slot we are about to take: not counted.
          const unknown = state?.pending.filter((sequence) => !goneBefore.has(sequence) && sequence !== ticket) ?? [];
          const taken = unknown.length > 0 ? await this.stillPending(unknown, noteGone, sessionId, signal) : undefined;
          const used = taken ? taken.leases + taken.pending.length : held;
          if (used < admission.limit) {
            const free = admission.limit - used;
            const followers =
              ticket !== undefined && state && admission.bulk === true && free > 1
                ? await this.nextWaiters(Math.max(ticket, state.upTo), free - 1, sessionId, signal)
                : [];
            const ticketed =
              ticket === undefined || !marker || !state
                ? undefined
                : {
                    marker: { data: this.nextMarker(state, ticket, taken?.pending ?? [], followers), version: marker.stat.version },
                    followers,
                  };
            const created = await this.commitLease(prefix, leaseData, ourNode, admission.alsoCreate, sessionId, signal, ticketed);
            if (created === "raced") continue; // another admission committed since our reads, or a follower left
            if (created === "gone") return undefined;
            return this.leaseAt(created, admission.context);
          }
          this.options.onWaiting?.(1, `all ${admission.limit} slot(s) busy`);
          // Counting: a lease that went without a release (session expired, deleted by hand, an
          // agent of an earlier version) does not touch leases/; look again now and then.
          if (ticket !== undefined) recheckMs = this.options.fullRecheckMs ?? FULL_RECHECK_MS;
          // Blocked a long while: perhaps by a node that is no lease at all. The one listing of
          // leases/ (O(slots)) is on this rare path only, by the head only.
          busySince ??= Date.now();
          if (ticket !== undefined && Date.now() - busySince >= strayCheckMs) {
            busySince = Date.now();
            if (await this.deleteStrayLeases(sessionId, signal)) continue;
          }
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
  private async heldLeases(wake: Watcher | undefined, counting: boolean): Promise<number> {
    const { zk, leasesDir } = this.options;
    if (!counting) return (await zk.children(leasesDir, wake)).length;
    const stat = await zk.exists(leasesDir, wake);
    if (!stat) throw new ZkError("noNode", `${leasesDir} does not exist`, leasesDir);
    return stat.numChildren;
  }

  /** Deletes the children of leases/ that are not ephemeral (see strayCheckMs); whether any was. */
  private async deleteStrayLeases(sessionId: string, signal?: AbortSignal): Promise<boolean> {
    const { zk, leasesDir } = this.options;
    const paths = (await retrying(zk, () => zk.children(leasesDir), sessionId, signal)).map((name) => `${leasesDir}/${name}`);
    const stats = await retrying(zk, () => Promise.all(paths.map((path) => zk.exists(path))), sessionId, signal);
    const strays = paths.filter((_, i) => {
      const stat = stats[i];
      return stat !== null && stat !== undefined && !isEphemeral(stat);
    });
    let deleted = false;
    for (const path of strays) {
      try {
        await zk.deleteRecursive(path);
        deleted = true;
        this.options.onStrayLease?.(path);
      } catch (error) {
        if (isNoNode(error))
          deleted = true; // gone meanwhile: count again all the same
        else this.options.onStrayLease?.(path, error instanceof Error ? error.message : String(error));
      }
    }
    return deleted;
  }

  /**
   * Bulk admission, the follower's side: a head admitted us in its transaction and the
   * admission we just read still allows it (not blocked, no canary), so our slot is counted
   * (pending) until our ticket becomes a lease here — no count, no compare-and-set.
   * Undefined: our ticket was deleted (by hand): queue again.
   */
  private async takeAdmittedSlot(
    ourNode: string,
    leaseData: Buffer,
    sessionId: string,
    signal: AbortSignal | undefined,
    context: T | undefined,
  ): Promise<Lease<T> | undefined> {
    const prefix = `${this.options.leasesDir}/${queueNodePrefix(this.options.owner, sessionId)}`;
    const created = await this.commitLease(prefix, leaseData, ourNode, undefined, sessionId, signal, { followers: [] });
    // "raced" needs a marker or followers in the transaction: not here.
    if (created === "gone" || created === "raced") return undefined;
    return this.leaseAt(created, context);
  }

  /**
   * The marker after our admission: admitted up to us or our last follower (never lower than
   * it was: a ticket below it may still admit itself), and pending the admitted tickets still
   * queued — those seen just now and our followers.
   */
  private nextMarker(state: Marker, ticket: number, stillPending: number[], followers: Follower[]): Buffer {
    const upTo = Math.max(state.upTo, ticket, ...followers.map((f) => f.sequence));
    return formatMarker(upTo, [...stillPending, ...followers.map((f) => f.sequence)]);
  }

  /**
   * Which of the pending tickets (admitted by a head, not yet leases) are still queued, and then
   * the lease count — in that order, in one round trip: a ticket that becomes a lease in between
   * is counted twice (a slot too few for now), never missed. A pending ticket that is gone became
   * a lease or left; it never comes back. Each one still there is watched with `onGone`, so
   * that a head waiting for a slot learns of its going without reading it again.
   */
  private async stillPending(
    pending: number[],
    onGone: Watcher,
    sessionId: string,
    signal?: AbortSignal,
  ): Promise<{ pending: number[]; leases: number }> {
    const { zk, lockDir } = this.options;
    // heldLeases sends its read when called: after the tickets' reads, as the argument needs.
    const [stats, leases] = await retrying(
      zk,
      () =>
        Promise.all([
          Promise.all(pending.map((sequence) => zk.exists(`${lockDir}/${ticketName(sequence)}`, onGone))),
          this.heldLeases(undefined, true),
        ]),
      sessionId,
      signal,
    );
    return { pending: pending.filter((_, i) => isWaiting(stats[i] ?? null)), leases };
  }

  /**
   * Bulk admission: up to `count` waiters right behind `after` (us, or the marker if higher:
   * everything up to it is admitted already), in order, stopping at the first
   * missing number (a waiter that left, or one not issued yet: admitting past it could skip
   * it). One round trip; their data is written back unchanged in the admission transaction.
   */
  private async nextWaiters(after: number, count: number, sessionId: string, signal?: AbortSignal): Promise<Follower[]> {
    const { zk, lockDir } = this.options;
    const paths = Array.from({ length: count }, (_, i) => `${lockDir}/${ticketName(after + 1 + i)}`);
    const reads = await retrying(
      zk,
      () => Promise.all(paths.map((path) => zk.get(path).catch((error: unknown) => (isNoNode(error) ? null : Promise.reject(error))))),
      sessionId,
      signal,
    );
    const followers: Follower[] = [];
    for (const [i, read] of reads.entries()) {
      if (!read || !isWaiting(read.stat)) break;
      followers.push({ sequence: after + 1 + i, path: paths[i] ?? "", data: read.data });
    }
    return followers;
  }

  /**
   * Creates our lease and deletes our queue node in one transaction. After a connection loss
   * the outcome is unknown: our session id in the lease names tells whether it was applied
   * (ZOOKEEPER-1262) — blindly sending it again would fail on the already deleted queue node and
   * leave the lease behind.
   *
   * Ticket queue (`ticketed`): the same transaction sets the marker (compare-and-set) and writes
   * each follower's ticket (unchanged data, version 0: it must still be there, unadmitted).
   * "raced": another admission came first, or a follower left — read again. "gone": our own
   * ticket was deleted (by hand).
   */
  private async commitLease(
    prefix: string,
    leaseData: Buffer,
    ourNode: string,
    alsoCreate: string | undefined,
    sessionId: string,
    signal?: AbortSignal,
    ticketed?: TicketCommit,
  ): Promise<string | "raced" | "gone"> {
    const { zk, leasesDir, lockDir } = this.options;
    for (;;) {
      try {
        const txn = zk.transaction().create(prefix, leaseData, "ephemeralSequential").delete(ourNode);
        if (alsoCreate) txn.create(alsoCreate);
        if (ticketed?.marker) txn.set(lockDir, ticketed.marker.data, ticketed.marker.version);
        for (const follower of ticketed?.followers ?? []) txn.set(follower.path, follower.data, 0);
        const created = (await txn.commit())[0]?.path;
        if (!created) throw new ZkError("other", "lease transaction returned no path");
        return created;
      } catch (error) {
        if (ticketed && isBadVersion(error)) return "raced";
        if (ticketed && isNoNode(error)) {
          if (!(await retrying(zk, () => zk.exists(ourNode), sessionId, signal))) return "gone";
          if (ticketed.followers.length > 0) return "raced";
        }
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
  private async waitFor(
    check: (wake: Watcher) => Promise<boolean>,
    sessionId: string,
    signal?: AbortSignal,
  ): Promise<WatchEvent | undefined> {
    const { zk } = this.options;
    let resolveEvent: (event: WatchEvent) => void = () => undefined;
    const fired = new Promise<WatchEvent>((resolve) => {
      resolveEvent = resolve;
    });
    const wake: Watcher = (event) => resolveEvent(event);
    try {
      const mustWait = await retrying(this.options.zk, () => check(wake), sessionId, signal);
      if (!mustWait) return undefined;
      const event = await untilAbortedOr(fired, signal);
      if (event.type === "sessionLost") assertSession(this.options.zk, sessionId);
      return event;
    } finally {
      zk.unwatch(wake);
    }
  }
}
