import type { ZkClient } from "./client.ts";
import { isConnectionLoss, isNoNode, isNotEmpty } from "./errors.ts";

/** Above this many nodes the subtree is deleted node by node (a multi-op must fit ZooKeeper's
 *  1 MB request limit; a path is some 50 bytes). */
const MAX_ATOMIC_NODES = 10_000;
const ATTEMPTS = 10;

/**
 * Deletes `path` and everything under it in one transaction: whoever watches sees the whole
 * subtree, then nothing — never a half-deleted one. Deleted node by node (ZkClient.
 * deleteRecursive), agents see directories vanish one at a time: an app's `leases/` emptied
 * while its queue still waits would admit hosts into an app being deleted, and agents would
 * re-create what they miss (they repair directories deleted by hand). If someone adds or
 * removes a node between the listing and the commit, the transaction fails whole and is tried
 * again. False when `path` does not exist. Very large subtrees fall back to node by node.
 *
 * Connection loss (a server of the ensemble dies mid-command): the transaction may or may not
 * have been applied (ZOOKEEPER-1262). It is tried again on the same session once the client has
 * reconnected; a path gone by then counts as deleted by us, not as "does not exist".
 */
export async function deleteSubtreeAtomically(zk: ZkClient, path: string): Promise<boolean> {
  let maybeDeleted = false;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    let nodes: string[];
    try {
      nodes = await postOrder(zk, path);
    } catch (error) {
      if (isConnectionLoss(error)) continue;
      if (isNoNode(error) && (await zk.exists(path)) === null) return maybeDeleted;
      if (isNoNode(error)) continue; // a node vanished while we listed: list again
      throw error;
    }
    if (nodes.length > MAX_ATOMIC_NODES) break;
    const txn = zk.transaction();
    for (const node of nodes) txn.delete(node);
    try {
      await txn.commit();
      return true;
    } catch (error) {
      if (isConnectionLoss(error)) maybeDeleted = true;
      else if (!isNotEmpty(error) && !isNoNode(error)) throw error;
    }
  }
  if ((await zk.exists(path)) === null) return maybeDeleted;
  await zk.deleteRecursive(path);
  return true;
}

/** Every node of the subtree, children before their parent. */
async function postOrder(zk: ZkClient, path: string): Promise<string[]> {
  const children = await zk.children(path);
  const below = await Promise.all(children.map((child) => postOrder(zk, `${path}/${child}`)));
  return [...below.flat(), path];
}
