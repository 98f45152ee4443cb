import { createHash } from "node:crypto";
import * as zookeeper from "node-zookeeper-client";

/** Permission bits as ZooKeeper defines them. */
export const Perm = {
  read: 1,
  write: 2,
  create: 4,
  delete: 8,
  admin: 16,
  all: 31,
} as const;

export interface ZkAcl {
  scheme: string;
  id: string;
  perms: number;
}

export const OPEN_ACL: ZkAcl[] = [{ scheme: "world", id: "anyone", perms: Perm.all }];

/** The id ZooKeeper's digest scheme stores for `user:password`: `user:base64(sha1(user:password))`. */
export function digestId(user: string, password: string): string {
  return `${user}:${createHash("sha1").update(`${user}:${password}`).digest("base64")}`;
}

export function toLibraryAcls(acls: ZkAcl[]): zookeeper.ACL[] {
  return acls.map((a) => new zookeeper.ACL(a.perms, new zookeeper.Id(a.scheme, a.id)));
}

/** An ACL record as the library decodes it from a getACL response. */
interface AclRecord {
  perms: number;
  id: { scheme: string; id: string };
}

// The library validates every ACL in a getACL *response* (permissions 1–31, non-empty scheme)
// and throws inside its socket handler — an uncaught exception — for an ACL that ZooKeeper
// accepted from another tool (zkCli `setAcl /x world:anyone:` stores permissions 0). Decode
// response records without validating; what we send is still built (and checked) by the
// library's constructors in toLibraryAcls.
(zookeeper.ACL as unknown as { fromRecord: (record: AclRecord) => zookeeper.ACL }).fromRecord = (record) =>
  Object.assign(Object.create(zookeeper.ACL.prototype) as zookeeper.ACL, {
    permission: record.perms,
    id: Object.assign(Object.create(zookeeper.Id.prototype) as zookeeper.Id, { scheme: record.id.scheme, id: record.id.id }),
  });

// The library's ACL objects carry `permission`; its typings call it `perms`.
export function fromLibraryAcls(acls: zookeeper.ACL[]): ZkAcl[] {
  return acls.map((a) => ({ scheme: a.id.scheme, id: a.id.id, perms: (a as unknown as { permission: number }).permission }));
}

/** "cdrwa"-style rendering, as zkCli prints it. */
export function formatPerms(perms: number): string {
  return (
    (perms & Perm.create ? "c" : "") +
    (perms & Perm.delete ? "d" : "") +
    (perms & Perm.read ? "r" : "") +
    (perms & Perm.write ? "w" : "") +
    (perms & Perm.admin ? "a" : "")
  );
}
