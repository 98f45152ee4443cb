// Who waits in a slot queue, in order, whichever queue wrote it: the listing queue names its
// nodes `<host>-<sid>-N`; the ticket queue names them `q-N` with `{host, session}` as data.

import type { ZkClient } from "../../src/zk/client.ts";
import { isNoNode } from "../../src/zk/errors.ts";
import { parseQueueNode } from "../../src/zk/recipes/queue-node.ts";
import { ticketSequence } from "../../src/zk/recipes/ticket-queue.ts";

export interface QueueMember {
  name: string;
  host: string;
  sessionId: string;
  sequence: number;
}

/** The queue under `lockDir`, lowest sequence first (a node gone while read is left out). */
export async function queueMembers(zk: ZkClient, lockDir: string): Promise<QueueMember[]> {
  const members: QueueMember[] = [];
  for (const name of await zk.children(lockDir)) {
    const listed = parseQueueNode(name);
    if (listed) {
      members.push({ name, host: listed.host, sessionId: listed.sessionId, sequence: listed.sequence });
      continue;
    }
    const sequence = ticketSequence(name);
    if (sequence === undefined) continue;
    try {
      const data = JSON.parse((await zk.get(`${lockDir}/${name}`)).data.toString("utf8")) as { host: string; session: string };
      members.push({ name, host: data.host, sessionId: data.session, sequence });
    } catch (error) {
      if (!isNoNode(error)) throw error;
    }
  }
  return members.sort((a, b) => a.sequence - b.sequence);
}
