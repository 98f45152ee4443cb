import { Perm, type ZkAcl } from "./acl.ts";
import { type AppDir, layoutNode } from "./paths.ts";

/**
 * One ZooKeeper identity of a role: a digest id (`user:base64(sha1)`, never a password), or an
 * x509 certificate subject as ZooKeeper's X509AuthenticationProvider names the client of a
 * mutual-TLS connection (RFC 2253, most specific first: `CN=ci,O=Example`).
 */
export interface AclId {
  scheme: "digest" | "x509";
  id: string;
}

/** Who the admin (CI) and the agents are on a locked tree: one identity or more per role. */
export interface AclIdentities {
  admin: AclId[];
  agent: AclId[];
}

/** Per-app directories agents write: their queue, slots, status, failures, canary markers. */
const AGENT_WRITABLE_APP_DIRS: ReadonlySet<AppDir> = new Set(["lock", "leases", "hosts", "failures", "canary", "done"]);
const AGENT_WRITE = Perm.read | Perm.write | Perm.create | Perm.delete;

/**
 * The ACL every node gets once `acl init` has locked the tree. Every admin identity may do
 * everything; every agent identity may read everything and write only what agents own — the
 * per-app lock/, leases/, hosts/, failures/, canary/, done/ subtrees and /agents. App specs, history
 * and the ACL info are read-only to agents. Nobody else (world) has any access.
 */
export function lockedAcl(ids: AclIdentities, path: string): ZkAcl[] {
  const node = layoutNode(path);
  const agentWrites =
    node.kind === "agents" ||
    node.kind === "agent" ||
    ((node.kind === "appDir" || node.kind === "appEntry") && AGENT_WRITABLE_APP_DIRS.has(node.dir));
  const agentPerms = agentWrites ? AGENT_WRITE : Perm.read;
  return [...ids.admin.map((id) => ({ ...id, perms: Perm.all })), ...ids.agent.map((id) => ({ ...id, perms: agentPerms }))];
}

/** A digest id as ZooKeeper stores it: `user:` + base64 of a SHA-1 (28 characters). */
const DIGEST_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}:[A-Za-z0-9+/]{27}=$/;

/**
 * An x509 subject in RFC 2253 form: `TYPE=value` pairs joined by commas, types as Java prints
 * them (CN, O, OU, …, or a dotted OID), values printable. Escaped commas (`\,`) stay inside a
 * value. Spaces around separators are not part of a Java-printed subject, so they are refused
 * rather than silently never matching.
 */
const X509_SUBJECT =
  /^(?:[A-Z][A-Z0-9]*|\d+(?:\.\d+)+)=(?:[^,\\\0-\x1f\x7f]|\\.)+(?:,(?:[A-Z][A-Z0-9]*|\d+(?:\.\d+)+)=(?:[^,\\\0-\x1f\x7f]|\\.)+)*$/;

/** Why `subject` cannot be an x509 identity, or undefined when it can. */
export function x509SubjectProblem(subject: string): string | undefined {
  if (subject.length > 1024) return "longer than 1024 characters";
  if (subject.startsWith("/")) return "that is OpenSSL's /X=…/CN=… form; write it most specific first, like CN=ci,O=Example";
  if (/\s,|,\s|\s=|=\s/.test(subject)) return "no spaces around , or = (ZooKeeper compares the subject exactly as Java prints it)";
  if (/(?:^|(?<!\\),)[a-z][A-Za-z0-9]*=/.test(subject)) return "attribute types are upper case (CN=, O=, OU=)";
  if (!X509_SUBJECT.test(subject)) return "expected an RFC 2253 subject like CN=ci or CN=ci,O=Example";
  return undefined;
}

function parseAclId(value: unknown): AclId | undefined {
  // Trees locked before x509 identities existed store each role as one digest id string.
  if (typeof value === "string") return DIGEST_ID.test(value) ? { scheme: "digest", id: value } : undefined;
  if (typeof value !== "object" || value === null) return undefined;
  const { scheme, id } = value as { scheme?: unknown; id?: unknown };
  if (typeof id !== "string") return undefined;
  if (scheme === "digest") return DIGEST_ID.test(id) ? { scheme, id } : undefined;
  if (scheme === "x509") return x509SubjectProblem(id) === undefined ? { scheme, id } : undefined;
  return undefined;
}

function parseRole(value: unknown): AclId[] | undefined {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || list.length > 16) return undefined;
  const ids: AclId[] = [];
  for (const item of list) {
    const id = parseAclId(item);
    if (!id) return undefined;
    ids.push(id);
  }
  return ids;
}

/**
 * The identities as `acl init` records them in ACL_INFO (readable by admin and agent). They
 * cannot be read back from ACLs: ZooKeeper shows other callers a digest id as `user:x`.
 * Undefined unless every identity is well-formed: a client that adopted a garbled list would
 * create nodes nobody (or anybody) may write.
 */
export function parseAclInfo(data: Buffer): AclIdentities | undefined {
  let value: unknown;
  try {
    value = JSON.parse(data.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const raw = value as { admin?: unknown; agent?: unknown };
  const admin = parseRole(raw.admin);
  const agent = parseRole(raw.agent);
  return admin && agent ? { admin, agent } : undefined;
}

export function formatAclInfo(ids: AclIdentities): Buffer {
  return Buffer.from(JSON.stringify(ids));
}

/** How `acl show` names an identity: a digest by its user (the hash says nothing), x509 whole. */
export function describeAclId(id: { scheme: string; id: string }): string {
  return id.scheme === "digest" ? `digest:${id.id.split(":")[0] ?? ""}` : `${id.scheme}:${id.id}`;
}
