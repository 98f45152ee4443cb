import type { DigestCredential, ZkClient } from "../zk/client.ts";
import { digestId, type ZkAcl } from "../zk/acl.ts";
import { type AclIdentities, formatAclInfo, lockedAcl } from "../zk/acl-policy.ts";
import { isNoNode, isNodeExists } from "../zk/errors.ts";
import { ACL_INFO, AGENTS, APPS, appSubdirs } from "../zk/paths.ts";
import { UsageError } from "../config/errors.ts";

/**
 * `acl init`: puts the locked ACL (see lockedAcl) on every node under the chroot, creating
 * /apps, /agents and any missing app subdirectories first. Idempotent. The caller must be
 * allowed to change ACLs: anyone on a world-open tree (bootstrap), the admin afterwards.
 * Children are done before their parent, so an interrupted run never locks the admin out of
 * a subtree it has not reached yet.
 */
export async function lockTree(
  zk: ZkClient,
  admin: DigestCredential,
  agent: DigestCredential,
): Promise<{ nodes: number; ids: AclIdentities }> {
  assertDistinctIdentities(admin, agent);
  const ids: AclIdentities = { admin: digestId(admin.user, admin.password), agent: digestId(agent.user, agent.password) };
  for (const dir of [APPS, AGENTS]) await createIfMissing(zk, dir);
  // Where every client learns the identities (ACLs show others only `user:x`).
  await createIfMissing(zk, ACL_INFO);
  await zk.set(ACL_INFO, formatAclInfo(ids));
  for (const app of await zk.children(APPS)) {
    for (const dir of appSubdirs(app)) await createIfMissing(zk, dir);
  }
  const nodes = await lockSubtree(zk, "/", ids);
  return { nodes, ids };
}

/** Checked before connecting, too: a refused `acl init` writes nothing. */
export function assertDistinctIdentities(admin: DigestCredential, agent: DigestCredential): void {
  if (admin.user === agent.user) throw new UsageError(`the agent identity must differ from the admin identity ("${admin.user}")`);
}

async function createIfMissing(zk: ZkClient, path: string): Promise<void> {
  try {
    await zk.create(path);
  } catch (error) {
    if (!isNodeExists(error)) throw error;
  }
}

async function lockSubtree(zk: ZkClient, path: string, ids: AclIdentities): Promise<number> {
  let children: string[];
  try {
    children = await zk.children(path);
  } catch (error) {
    if (isNoNode(error)) return 0; // removed meanwhile (an ephemeral node)
    throw error;
  }
  let count = 0;
  for (const child of children) count += await lockSubtree(zk, path === "/" ? `/${child}` : `${path}/${child}`, ids);
  try {
    await zk.setAcl(path, lockedAcl(ids, path));
  } catch (error) {
    if (isNoNode(error)) return count;
    throw error;
  }
  return count + 1;
}

/** The ACLs of the structural nodes (chroot, /apps, /agents, each app and its directories). */
export async function readTreeAcl(zk: ZkClient): Promise<{ path: string; acl: ZkAcl[] }[]> {
  const paths = ["/", ACL_INFO, APPS, AGENTS];
  try {
    for (const app of (await zk.children(APPS)).sort()) paths.push(`${APPS}/${app}`, ...appSubdirs(app));
  } catch (error) {
    if (!isNoNode(error)) throw error;
  }
  const result: { path: string; acl: ZkAcl[] }[] = [];
  for (const path of paths) {
    try {
      result.push({ path, acl: await zk.getAcl(path) });
    } catch (error) {
      if (!isNoNode(error)) throw error;
    }
  }
  return result;
}
