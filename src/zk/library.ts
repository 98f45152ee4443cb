import * as zookeeper from "node-zookeeper-client";
import type { CreateMode, NodeStat } from "./client.ts";

// The shapes of node-zookeeper-client that ZkClient needs beyond its typed calls: what our
// patch adds, its create modes, its Stat.

/**
 * What patches/node-zookeeper-client@1.1.3.patch adds to the library's client: socket errors
 * (why a connection failed), when the server was last heard from, and a close for good. The
 * patch also bounds each connect attempt including its handshake, and drops a connection that
 * heard nothing for two thirds of the session timeout (a stalled link).
 */
export interface PatchedLibrary {
  on(event: "socketError", listener: (error: unknown, server: { host?: string; port?: number } | undefined) => void): void;
  /** Epoch ms of the last byte received; 0: never. */
  getLastReceivedAt(): number;
  /** Never reconnects again; unsent requests fail with CONNECTION_LOSS; a live session is
   *  closed, waiting at most graceMs for the server's answer. */
  dispose(graceMs: number, callback: () => void): void;
}

export function patched(lib: zookeeper.Client): PatchedLibrary {
  return lib as unknown as PatchedLibrary;
}

export function disposeLibrary(lib: zookeeper.Client, graceMs: number): Promise<void> {
  return new Promise((resolve) => patched(lib).dispose(graceMs, resolve));
}

export const CREATE_MODES: Record<CreateMode, number> = {
  persistent: zookeeper.CreateMode.PERSISTENT,
  ephemeral: zookeeper.CreateMode.EPHEMERAL,
  persistentSequential: zookeeper.CreateMode.PERSISTENT_SEQUENTIAL,
  ephemeralSequential: zookeeper.CreateMode.EPHEMERAL_SEQUENTIAL,
};

export function toStat(stat: zookeeper.Stat): NodeStat {
  return {
    version: stat.version,
    cversion: stat.cversion,
    aversion: stat.aversion,
    numChildren: stat.numChildren,
    dataLength: stat.dataLength,
    ephemeralOwner: Buffer.from(stat.ephemeralOwner).toString("hex"),
    ctimeMs: Number(Buffer.from(stat.ctime).readBigInt64BE()),
    mtimeMs: Number(Buffer.from(stat.mtime).readBigInt64BE()),
    czxid: Buffer.from(stat.czxid).toString("hex"),
    mzxid: Number(Buffer.from(stat.mzxid).readBigInt64BE()),
  };
}
