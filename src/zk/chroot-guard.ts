import type { ZkClient } from "./client.ts";
import { isNoAuth, isNoNode } from "./errors.ts";
import { AGENTS, APPS, basename, historyDir } from "./paths.ts";

const TREE_DIRS = [basename(APPS), basename(AGENTS)];

/** A chroot is refused when it lies inside a Conveyor tree: where this tree is, and under what. */
export interface EnclosingTree {
  /** The Conveyor root: an absolute path, "" for the server's root. */
  root: string;
  /** The directory of that tree the chroot lies in (or is). */
  under: string;
}

/**
 * Whether the client's chroot lies inside another Conveyor tree — under the `apps` or `agents`
 * of an ancestor that is a Conveyor root. Such a chroot (`--zk host:2181/conveyor/apps`) would
 * be taken for a tree of its own: an agent would register `/agents` there and every agent of
 * the real tree would see an app called "agents". Reads outside the chroot (exists and child
 * lists of its ancestors, which the ACLs of a locked tree do not refuse: /agents is found
 * first there), and only when a segment of the chroot is `apps` or `agents` — nothing
 * otherwise. Undefined when the chroot is fine.
 */
export async function enclosingConveyorTree(zk: ZkClient): Promise<EnclosingTree | undefined> {
  const segments = zk.chroot.split("/").filter(Boolean);
  // Outermost first: in /conveyor/apps/web/agents the tree is /conveyor.
  for (let i = 0; i < segments.length; i++) {
    const under = segments[i];
    if (under === undefined || !TREE_DIRS.includes(under)) continue;
    const root = segments
      .slice(0, i)
      .map((s) => `/${s}`)
      .join("");
    if (await isConveyorRoot(zk, root)) return { root, under };
  }
  return undefined;
}

/**
 * A Conveyor root has `apps` and, once any agent ran (or `acl init`), `agents`. `apps` alone is
 * not enough — `/apps/conveyor` is a fine chroot on a server whose root holds it — so without
 * `agents` one of its `apps` children must look like an app: it has the `history` every app is
 * created with.
 */
async function isConveyorRoot(zk: ZkClient, root: string): Promise<boolean> {
  if (!(await zk.existsOutsideChroot(`${root}${APPS}`))) return false;
  if (await zk.existsOutsideChroot(`${root}${AGENTS}`)) return true;
  let names: string[];
  try {
    names = await zk.childrenOutsideChroot(`${root}${APPS}`);
  } catch (error) {
    if (isNoNode(error) || isNoAuth(error)) return false;
    throw error;
  }
  // In a Conveyor tree the first app answers; a few more in case one is being created.
  for (const name of names.slice(0, 5)) {
    if (await zk.existsOutsideChroot(`${root}${historyDir(name)}`)) return true;
  }
  return false;
}
