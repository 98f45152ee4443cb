import { Perm, type ZkAcl } from "./acl.ts";
import { type AppDir, layoutNode } from "./paths.ts";

/** The two digest identities of a locked tree (`user:base64(sha1)` ids, never passwords). */
export interface AclIdentities {
  admin: string;
  agent: string;
}

/** Per-app directories agents write: their queue, slots, status, failures, canary markers. */
const AGENT_WRITABLE_APP_DIRS: ReadonlySet<AppDir> = new Set(["lock", "leases", "hosts", "failures", "canary", "done"]);
const AGENT_WRITE = Perm.read | Perm.write | Perm.create | Perm.delete;

/**
 * The ACL every node gets once `acl init` has locked the tree. The admin (CI) identity may do
 * everything; the agent identity may read everything and write only what agents own — the
 * per-app lock/, leases/, hosts/, failures/, canary/, done/ subtrees and /agents. App specs, history
 * and the ACL info are read-only to agents. Nobody else (world) has any access.
 */
export function lockedAcl(ids: AclIdentities, path: string): ZkAcl[] {
  const admin: ZkAcl = { scheme: "digest", id: ids.admin, perms: Perm.all };
  const node = layoutNode(path);
  const agentWrites =
    node.kind === "agents" ||
    node.kind === "agent" ||
    ((node.kind === "appDir" || node.kind === "appEntry") && AGENT_WRITABLE_APP_DIRS.has(node.dir));
  return [admin, { scheme: "digest", id: ids.agent, perms: agentWrites ? AGENT_WRITE : Perm.read }];
}

/** A digest id as ZooKeeper stores it: `user:` + base64 of a SHA-1 (28 characters). */
const DIGEST_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}:[A-Za-z0-9+/]{27}=$/;

/**
 * The identities as `acl init` records them in ACL_INFO (readable by admin and agent). They
 * cannot be read back from ACLs: ZooKeeper shows other callers a digest id as `user:x`.
 * Undefined unless both are well-formed digest ids.
 */
export function parseAclInfo(data: Buffer): AclIdentities | undefined {
  let value: unknown;
  try {
    value = JSON.parse(data.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { admin, agent } = value as { admin?: unknown; agent?: unknown };
  if (typeof admin !== "string" || typeof agent !== "string") return undefined;
  return DIGEST_ID.test(admin) && DIGEST_ID.test(agent) ? { admin, agent } : undefined;
}

export function formatAclInfo(ids: AclIdentities): Buffer {
  return Buffer.from(JSON.stringify(ids));
}
