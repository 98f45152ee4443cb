import { sequenceOf } from "../paths.ts";

/**
 * Names of the semaphore's queue and lease nodes: `<host>-<sessionId>-<sequence>`. The session
 * id (16 hex digits) lets an agent find its own node after a connection loss during create
 * (ZOOKEEPER-1262); the host lets `status` show queue positions.
 */
export interface QueueNodeName {
  name: string;
  host: string;
  sessionId: string;
  sequence: number;
}

const QUEUE_NODE = /^(.+)-([0-9a-f]{16})-(\d{10})$/;

export function queueNodePrefix(host: string, sessionId: string): string {
  return `${host}-${sessionId}-`;
}

export function parseQueueNode(name: string): QueueNodeName | undefined {
  const match = QUEUE_NODE.exec(name);
  if (!match?.[1] || !match[2] || !match[3]) return undefined;
  return { name, host: match[1], sessionId: match[2], sequence: Number(match[3]) };
}

/**
 * Where `ours` stands in the queue: the node just before it (undefined when we are first) and
 * how many are ahead. One pass, no sort: with a thousand waiters every one of them does this.
 */
export function placeInQueue(names: readonly string[], ours: string): { predecessor?: string; ahead: number } | undefined {
  const mine = sequenceOf(ours);
  let found = false;
  let predecessor: string | undefined;
  let best = -1;
  let ahead = 0;
  for (const name of names) {
    if (name === ours) {
      found = true;
      continue;
    }
    const seq = sequenceOf(name);
    if (Number.isNaN(seq) || seq >= mine) continue;
    ahead++;
    if (seq > best) {
      best = seq;
      predecessor = name;
    }
  }
  if (!found) return undefined;
  return predecessor === undefined ? { ahead } : { predecessor, ahead };
}

/** The sequential node named `<prefix><sequence>` with the highest sequence: the one created
 *  last by that owner and session. */
export function newestWithPrefix(names: readonly string[], prefix: string): string | undefined {
  let newest: string | undefined;
  for (const name of names) {
    if (!name.startsWith(prefix) || Number.isNaN(sequenceOf(name))) continue;
    if (newest === undefined || sequenceOf(name) > sequenceOf(newest)) newest = name;
  }
  return newest;
}
