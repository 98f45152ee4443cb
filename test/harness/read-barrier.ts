// A stand-in for ZooKeeper's `sync` (our client has none). Reads are served by whichever server a
// session is attached to; a follower may not yet have applied a write that another client — an
// agent or the CLI on another server of the ensemble — already had acknowledged. A write of our
// own is ordered after every such write, and ZooKeeper answers a session in order: reads sent
// after the barrier (even before it answers) see everything acknowledged before it was sent.

import type { ZkClient } from "../../src/zk/client.ts";
import { isNoNode, isNodeExists } from "../../src/zk/errors.ts";

/** The node the barrier writes (under the session's chroot, outside every app). */
export const BARRIER = "/test-read-barrier";

/**
 * Writes the barrier node. Resolves true when the first write went through, so the reads sent
 * behind it are covered; false when the node had to be created first (those reads may predate
 * the barrier: read again — any read sent after this resolves is covered either way).
 */
export async function readBarrier(zk: ZkClient): Promise<boolean> {
  try {
    await zk.set(BARRIER, Buffer.alloc(0));
    return true;
  } catch (error) {
    if (!isNoNode(error)) throw error;
    await zk.create(BARRIER).catch((e: unknown) => {
      if (!isNodeExists(e)) throw e;
    });
    await zk.set(BARRIER, Buffer.alloc(0));
    return false;
  }
}
