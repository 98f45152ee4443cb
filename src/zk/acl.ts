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
/** Every identity the creating session authenticated as (ZooKeeper's `auth` scheme), nobody else. */
export const OWN_IDENTITIES_ACL: ZkAcl[] = [{ scheme: "auth", id: "", perms: Perm.all }];

/** The id ZooKeeper's digest scheme stores for `user:password`: `user:base64(sha1(user:password))`. */
export function digestId(user: string, password: string): string {
  return `${user}:${createHash("sha1").update(`${user}:${password}`).digest("base64")}`;
}

export function toLibraryAcls(acls: ZkAcl[]): zookeeper.ACL[] {
  return acls.map((a) => new zookeeper.ACL(a.perms, new zookeeper.Id(a.scheme, a.id)));
}

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
