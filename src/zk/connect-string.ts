import { quote } from "../text/printable.ts";

/** A parsed ZooKeeper connect string: `host:port[,host:port...][/chroot]`. */
export interface ConnectTarget {
  servers: { host: string; port: number }[];
  /** Absolute path every Conveyor path is relative to; "" for the server root. */
  chroot: string;
}

export const DEFAULT_CHROOT = "/conveyor";
const HOST = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const CHROOT_SEGMENT = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Parses a connect string; a missing chroot means DEFAULT_CHROOT, and "/" means the root.
 * Returns an error message naming the bad part instead of throwing, so config validation can
 * report it as a usage error.
 */
export function parseConnectString(input: string): ConnectTarget | string {
  const trimmed = input.trim();
  if (trimmed === "") return "ZooKeeper connect string is empty";
  const slash = trimmed.indexOf("/");
  const hostPart = slash === -1 ? trimmed : trimmed.slice(0, slash);
  const chrootPart = slash === -1 ? DEFAULT_CHROOT : trimmed.slice(slash);
  const servers: ConnectTarget["servers"] = [];
  for (const entry of hostPart.split(",")) {
    const match = /^(.*?)(?::(\d{1,5}))?$/.exec(entry.trim());
    const host = match?.[1] ?? "";
    const port = match?.[2] === undefined ? 2181 : Number(match[2]);
    // The ZooKeeper client library splits each server at ":", so it cannot dial a literal
    // IPv6 address: refuse it here rather than fail as "unreachable" after the timeout.
    if (host.startsWith("[") || host.includes(":")) {
      return `IPv6 address ${quote(entry)} in ${quote(input)} is not supported: use a host name that resolves to it`;
    }
    if (!HOST.test(host)) return `invalid ZooKeeper host ${quote(entry)} in ${quote(input)}`;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      return `invalid ZooKeeper port in ${quote(entry)}`;
    }
    servers.push({ host, port });
  }
  const chroot = chrootPart === "/" ? "" : chrootPart.replace(/\/+$/, "");
  const segments = chroot.slice(1).split("/");
  if (chroot !== "" && !segments.every((s) => CHROOT_SEGMENT.test(s) && s !== "." && s !== "..")) {
    return `invalid ZooKeeper chroot ${quote(chrootPart)}: segments of letters, digits, '.', '_', '-' (not "." or "..")`;
  }
  if (segments[0] === "zookeeper") return `invalid ZooKeeper chroot ${quote(chrootPart)}: /zookeeper is reserved by ZooKeeper`;
  return { servers, chroot };
}

export function formatServers(target: ConnectTarget): string {
  return target.servers.map((s) => `${s.host}:${s.port}`).join(",");
}
