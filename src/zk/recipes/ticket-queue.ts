import { type NodeStat, type ZkClient, isEphemeral } from "../client.ts";
import { isNoNode } from "../errors.ts";
import type { Watcher } from "../watchers.ts";

// The ticket queue's naming and its walk (docs/ARCHITECTURE.md, "The ticket queue"): queue
// nodes are `q-<sequence>` so a waiter's predecessor is computable, and the data of the queue
// directory itself is the marker — the sequence number of the last waiter admitted, and the
// waiters admitted in bulk that have not taken their lease yet.

export const TICKET_PREFIX = "q-";
/** A child created and deleted at once only to move lock/'s sequence counter past a name taken
 *  by hand (no ticket, no old-style queue node: nobody reads it as a waiter). */
export const STEP_PREFIX = "step-";
/** Names taken by hand stepped over before a ticket create gives up (a directory full of them). */
export const MAX_TICKET_COLLISIONS = 100;
/** Steps of the walk down past missing sequence numbers before one listing settles it. */
export const MAX_WALK = 16;

/** `q-0000000042`: the name ZooKeeper gives the 42nd sequential child created with our prefix. */
export function ticketName(sequence: number): string {
  return `${TICKET_PREFIX}${String(sequence).padStart(10, "0")}`;
}

/**
 * A ticket is an ephemeral node. A persistent one under lock/ was made by hand (or by a hostile
 * identity): it stands for no waiter and never leaves, so nobody waits behind it or admits it.
 */
export function isWaiting(stat: NodeStat | null): boolean {
  return stat !== null && isEphemeral(stat);
}

/** The sequence number of a ticket name, or undefined for any other name. */
export function ticketSequence(name: string): number | undefined {
  return /^q-\d{10}$/.test(name) ? Number(name.slice(TICKET_PREFIX.length)) : undefined;
}

/**
 * The marker in the queue directory's data: `upTo`, the highest sequence admitted (-1: none),
 * and `pending`, the tickets a head admitted along with itself (bulk admission) that may not
 * have turned their ticket into a lease yet — their slots are taken. Written `<upTo>` or
 * `<upTo>;<pending>`, pending as ascending numbers and runs (`7-12,15`).
 */
export interface Marker {
  upTo: number;
  pending: number[];
}

const MARKER = /^(\d{1,10})(?:;(\d{1,10}(?:-\d{1,10})?(?:,\d{1,10}(?:-\d{1,10})?)*))?$/;
/** More pending tickets than any slot count is not something an admission wrote. */
const MAX_PENDING = 100_000;
const NONE_ADMITTED: Marker = { upTo: -1, pending: [] };

/**
 * The marker, or none admitted and nothing pending when the data is empty or not a marker as
 * formatMarker writes it: runs ascending and apart, none above `upTo`, at most MAX_PENDING
 * tickets in all. Anything else was written by hand (or by a hostile identity) — and a few
 * bytes of overlapping runs would otherwise expand to millions of tickets, each then read.
 */
export function readMarker(data: Buffer): Marker {
  const match = MARKER.exec(data.toString("utf8").trim());
  if (!match) return NONE_ADMITTED;
  const upTo = Number(match[1]);
  const pending: number[] = [];
  for (const run of match[2]?.split(",") ?? []) {
    const [from, to = from] = run.split("-").map(Number) as [number, number?];
    const after = pending.at(-1) ?? -1;
    if (to < from || from <= after || to > upTo || pending.length + (to - from + 1) > MAX_PENDING) return NONE_ADMITTED;
    for (let n = from; n <= to; n++) pending.push(n);
  }
  return { upTo, pending };
}

/** The last admitted sequence, -1 when none (or unreadable). */
export function parseMarker(data: Buffer): number {
  return readMarker(data).upTo;
}

export function formatMarker(upTo: number, pending: readonly number[] = []): Buffer {
  const sorted = [...new Set(pending)].sort((a, b) => a - b);
  const runs: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] ?? 0) + 1) j++;
    runs.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return Buffer.from(runs.length ? `${upTo};${runs.join(",")}` : String(upTo), "utf8");
}

/** A read of a node: its data and stat (the queue directory's: marker and child count). */
export type DataRead = Awaited<ReturnType<ZkClient["get"]>>;

/** Where a waiter stands: at the head, or behind a live predecessor now watched with `wake`. */
export type Place = ({ head: true } | { head: false; predecessor: string }) & {
  marker: number;
  /** The queue directory's czxid: which incarnation of it was read. Deleted and made again (by
   *  hand, or the app deleted and created again) it numbers tickets from 0 again, so a ticket
   *  number means something only in the incarnation it was drawn in. */
  incarnation: string;
};

/**
 * The waiter with sequence `ours` looks for the highest live ticket below it, down to the
 * marker. Sequence numbers below ours were handed out before ours: such a node can vanish but
 * never appear, so "none found" means we are the lowest live waiter.
 *
 * Cost: one read of the queue directory (the marker, and its child count: alone in the queue
 * means head at once), then `ours − 1` — which exists in the common case and gets `wake`. Only
 * if it is missing (its waiter left, or a gap in the numbers) are the next numbers down to
 * MAX_WALK read together in one round trip; past them (a late joiner after a run of departures)
 * one listing of the queue finds the predecessor.
 */
/** The queue directory read (marker and child count) alone shows `ours` at the head: alone in
 *  the queue, or every number below ours admitted. Otherwise only a walk can tell. */
export function isHeadAt(lockDir: { data: Buffer; stat: { numChildren: number } }, ours: number | undefined): boolean {
  return ours !== undefined && (lockDir.stat.numChildren <= 1 || ours - 1 <= parseMarker(lockDir.data));
}

export async function findPlace(zk: ZkClient, lockDir: string, ours: number, wake: Watcher, lockDirRead?: DataRead): Promise<Place> {
  const read = lockDirRead ?? (await zk.get(lockDir));
  const marker = parseMarker(read.data);
  const incarnation = read.stat.czxid;
  if (isHeadAt(read, ours)) return { head: true, marker, incarnation };
  const nearest = `${lockDir}/${ticketName(ours - 1)}`;
  if ((await watchIfExists(zk, nearest, wake)) === "waiting") return { head: false, predecessor: nearest, marker, incarnation };
  const lowest = Math.max(marker + 1, ours - MAX_WALK);
  const below: number[] = [];
  for (let sequence = ours - 2; sequence >= lowest; sequence--) below.push(sequence);
  const found = await Promise.all(below.map((sequence) => zk.exists(`${lockDir}/${ticketName(sequence)}`)));
  for (const [i, sequence] of below.entries()) {
    if (!isWaiting(found[i] ?? null)) continue;
    // It may have gone since: watching it says (if not, the next one down is the candidate).
    const predecessor = `${lockDir}/${ticketName(sequence)}`;
    if ((await watchIfExists(zk, predecessor, wake)) === "waiting") return { head: false, predecessor, marker, incarnation };
  }
  if (lowest > marker + 1) return placeByListing(zk, lockDir, ours, { marker, incarnation }, wake);
  return { head: true, marker, incarnation };
}

async function placeByListing(
  zk: ZkClient,
  lockDir: string,
  ours: number,
  read: { marker: number; incarnation: string },
  wake: Watcher,
): Promise<Place> {
  const strays = new Set<number>();
  for (;;) {
    let best: number | undefined;
    for (const name of await zk.children(lockDir)) {
      const sequence = ticketSequence(name);
      if (sequence === undefined || strays.has(sequence)) continue;
      if (sequence < ours && (best === undefined || sequence > best)) best = sequence;
    }
    if (best === undefined) return { head: true, ...read };
    const predecessor = `${lockDir}/${ticketName(best)}`;
    const found = await watchIfExists(zk, predecessor, wake);
    if (found === "waiting") return { head: false, predecessor, ...read };
    if (found === "stray") strays.add(best);
    // Or it went between the listing and the read: list again (the queue only got shorter below us).
  }
}

/** Reads the node with `wake` on it: a waiter's ticket, a stray node (see isWaiting), or gone
 *  (then no watch is set). A stray keeps its watch: deleted, it wakes us to look again. */
async function watchIfExists(zk: ZkClient, path: string, wake: Watcher): Promise<"waiting" | "stray" | "gone"> {
  try {
    return isWaiting((await zk.get(path, wake)).stat) ? "waiting" : "stray";
  } catch (error) {
    if (isNoNode(error)) return "gone";
    throw error;
  }
}
