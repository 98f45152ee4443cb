import { randomBytes } from "node:crypto";
import type { DigestCredential, ZkClient } from "../zk/client.ts";
import { Perm, digestId, type ZkAcl } from "../zk/acl.ts";
import { type AclId, type AclIdentities, describeAclId, formatAclInfo, lockedAcl, parseAclInfo } from "../zk/acl-policy.ts";
import { ZkError, isNoAuth, isNoNode, isNodeExists } from "../zk/errors.ts";
import { ACL_INFO, AGENTS, APPS, appSubdirs } from "../zk/paths.ts";
import { UsageError } from "../config/errors.ts";
import { OperationError } from "./errors.ts";

/** A role's identities as `acl init` takes them: a digest credential, a certificate subject, or both. */
export interface RoleIdentity {
  digest?: DigestCredential;
  /** Already checked with x509SubjectProblem. */
  x509?: string;
}

/**
 * The identities to lock the tree with. Each role needs one at least, and no identity may be
 * both admin and agent: agents could then publish, which the lock exists to prevent. Checked
 * before connecting, so a refused `acl init` writes nothing.
 */
export function aclIdentities(admin: RoleIdentity, agent: RoleIdentity): AclIdentities {
  if (!admin.digest && !admin.x509) throw new UsageError("acl init needs an admin identity: --auth ADMIN:PASS and/or --admin-x509 SUBJECT");
  if (!agent.digest && !agent.x509) {
    throw new UsageError("acl init needs an agent identity: --agent-auth USER:PASS (or --agent-auth-file) and/or --agent-x509 SUBJECT");
  }
  if (admin.digest && agent.digest && admin.digest.user === agent.digest.user) {
    throw new UsageError(`the agent identity must differ from the admin identity ("${admin.digest.user}")`);
  }
  if (admin.x509 !== undefined && admin.x509 === agent.x509) {
    throw new UsageError(`--agent-x509 must differ from --admin-x509 ("${admin.x509}")`);
  }
  const ids = (role: RoleIdentity): AclId[] => [
    ...(role.digest ? [{ scheme: "digest" as const, id: digestId(role.digest.user, role.digest.password) }] : []),
    ...(role.x509 !== undefined ? [{ scheme: "x509" as const, id: role.x509 }] : []),
  ];
  return { admin: ids(admin), agent: ids(agent) };
}

/**
 * `acl init`: puts the locked ACL (see lockedAcl) on every node under the chroot, creating
 * /apps, /agents and any missing app subdirectories first. Idempotent. The caller must be
 * allowed to change ACLs: anyone on a world-open tree (bootstrap), the admin afterwards, and
 * must itself be one of the admin identities (checked by ZooKeeper first, see
 * assertCallerIsAdmin). Children are done before their parent, so an interrupted run never
 * locks the admin out of a subtree it has not reached yet.
 */
export async function lockTree(zk: ZkClient, ids: AclIdentities): Promise<{ nodes: number }> {
  await assertCallerIsAdmin(zk, ids);
  // Where every client learns the identities (ACLs show others only `user:x`). Recorded first
  // and adopted: an invalid record there refuses every create until then.
  await createIfMissing(zk, ACL_INFO, lockedAcl(ids, ACL_INFO));
  await zk.set(ACL_INFO, formatAclInfo(ids));
  await zk.adoptTreeAcl();
  for (const dir of [APPS, AGENTS]) await createIfMissing(zk, dir);
  for (const app of await zk.children(APPS)) {
    for (const dir of appSubdirs(app)) await createIfMissing(zk, dir);
  }
  const nodes = await lockSubtree(zk, "/", ids);
  return { nodes };
}

/**
 * Asks ZooKeeper itself whether this connection is one of the admin identities: a throw-away
 * ephemeral node writable by the admins only, written to. Only the server knows which
 * identities a connection holds (a certificate subject as Java prints it, a digest), and
 * locking the tree for an admin we are not would lock us out of it for good. The probe is
 * ephemeral, so a crash between its create and delete leaves nothing behind.
 */
async function assertCallerIsAdmin(zk: ZkClient, ids: AclIdentities): Promise<void> {
  const probe = `/acl-init-probe-${randomBytes(6).toString("hex")}`;
  try {
    await zk.create(
      probe,
      Buffer.alloc(0),
      "ephemeral",
      ids.admin.map((id) => ({ ...id, perms: Perm.all })),
    );
  } catch (error) {
    // A locked tree, and we are not its admin: name the chroot, not the probe.
    if (isNoAuth(error)) throw new ZkError(error.kind, error.message, "/", error.code);
    throw error;
  }
  try {
    await zk.set(probe, Buffer.from("probe"));
  } catch (error) {
    if (!isNoAuth(error)) throw error;
    const subject = zk.certificateSubject;
    throw new OperationError(
      `acl init refused: this connection is none of the admin identities (${ids.admin.map(describeAclId).join(", ")}), so locking the tree would lock it out; ` +
        (subject === undefined
          ? "connect with the admin's --auth, or with the client certificate of --admin-x509"
          : `ZooKeeper does not see our certificate "${subject}" as an admin (is authProvider.x509 set on the server?)`),
    );
  } finally {
    await zk.delete(probe).catch(() => undefined); // ephemeral: gone with the session anyway
  }
}

/** `acl`: the node's ACL if it is created (default: the client's, see ZkClient.adoptTreeAcl). */
async function createIfMissing(zk: ZkClient, path: string, acl?: ZkAcl[]): Promise<void> {
  try {
    await zk.create(path, Buffer.alloc(0), "persistent", acl);
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

/** What a client says when /acl is there but not a record `acl init` wrote (ZkClient.adoptTreeAcl). */
export const INVALID_ACL_RECORD =
  "/acl is not a valid acl init record: until the admin runs conveyor acl init, nodes a command creates get only its own identity's ACL, and agents create none (never world-open: the tree may be locked)";

export interface TreeAcl {
  /** The identities `acl init` recorded; undefined when the tree was never locked (or /acl is invalid). */
  identities?: AclIdentities;
  /** /acl is there but is not a valid record. */
  recordInvalid: boolean;
  /** Every scheme that appears in the ACLs below ("world" on an open tree). */
  schemes: string[];
  nodes: { path: string; acl: ZkAcl[] }[];
}

/** The ACLs of the structural nodes (chroot, /apps, /agents, each app and its directories). */
export async function readTreeAcl(zk: ZkClient): Promise<TreeAcl> {
  let identities: AclIdentities | undefined;
  let recordInvalid = false;
  try {
    identities = parseAclInfo((await zk.get(ACL_INFO)).data);
    recordInvalid = identities === undefined;
  } catch (error) {
    if (!isNoNode(error)) throw error;
  }
  const nodes = await readNodeAcls(zk);
  const schemes = [...new Set(nodes.flatMap((n) => n.acl.map((a) => a.scheme)))].sort();
  return { ...(identities ? { identities } : {}), recordInvalid, schemes, nodes };
}

async function readNodeAcls(zk: ZkClient): Promise<{ path: string; acl: ZkAcl[] }[]> {
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
