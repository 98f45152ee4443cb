import { Perm, type ZkAcl } from "./acl.ts";

/** The two digest identities of a locked tree (`user:base64(sha1)` ids, never passwords). */
export interface AclIdentities {
  admin: string;
  agent: string;
}

/** Per-app directories agents write: their queue, slots, status, failures, canary markers. */
const AGENT_WRITABLE_APP_DIRS = new Set(["lock", "leases", "hosts", "failures", "canary"]);
const AGENT_WRITE = Perm.read | Perm.write | Perm.create | Perm.delete;

/**
 * The ACL every node gets once `acl init` has locked the tree. The admin (CI) identity may do
 * everything; the agent identity may read everything and write only what agents own — the
 * per-app lock/, leases/, hosts/, failures/, canary/ subtrees and /agents. App specs and
 * history are read-only to agents. Nobody else (world) has any access.
 */
export function lockedAcl(ids: AclIdentities, path: string): ZkAcl[] {
  const admin: ZkAcl = { scheme: "digest", id: ids.admin, perms: Perm.all };
  const parts = path.split("/").filter(Boolean);
  const agentWrites =
    parts[0] === "agents" || (parts[0] === "apps" && parts.length >= 3 && AGENT_WRITABLE_APP_DIRS.has(parts[2] ?? ""));
  return [admin, { scheme: "digest", id: ids.agent, perms: agentWrites ? AGENT_WRITE : Perm.read }];
}

/**
 * Reads the identities back from the chroot node's ACL (admin: all permissions; agent: read
 * only). Undefined when the tree is not locked (world access), so nodes stay world-open too.
 */
export function identitiesFromAcl(acl: ZkAcl[]): AclIdentities | undefined {
  const admin = acl.find((a) => a.scheme === "digest" && a.perms === Perm.all);
  const agent = acl.find((a) => a.scheme === "digest" && a.perms === Perm.read);
  if (!admin || !agent || acl.some((a) => a.scheme === "world")) return undefined;
  return { admin: admin.id, agent: agent.id };
}
