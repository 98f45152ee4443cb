// A TCP proxy in front of ZooKeeper that lets a client read but holds its first write — and
// everything the client sends after it, so the order is kept — until the test releases it. Two
// CLI processes, each behind its own gate, have then both read the app before either writes:
// the interleaving a compare-and-set exists for, forced instead of hoped for. Typical use:
//
//   const gate = await startWriteGate(zk.port);
//   const run = runCli(["--zk", `${gate.address}/chroot`, "app", "create", "web", "2.0"]);
//   await gate.holding;               // it has read /apps/web and sent its write
//   gate.release();                   // the write (and the rest) goes on
//   await gate.close();
//
// It parses ZooKeeper's framing of client requests (a 4-byte length, then for every request
// after the connect request an xid and an op code) and nothing else; replies pass untouched.
// Hold a client only briefly: its pings wait behind the write too (a hold longer than the
// session timeout would expire the session).

import { connect, createServer, type Socket } from "node:net";

/** Op codes of requests that change the tree (ZooKeeper's ZooDefs.OpCode): create, delete,
 *  setData, setACL, check, multi, create2, reconfig, createContainer, deleteContainer, createTTL. */
const WRITE_OPS: ReadonlySet<number> = new Set([1, 2, 5, 7, 13, 14, 15, 16, 19, 20, 21]);

export interface WriteGate {
  /** "127.0.0.1:port": use it in place of the server in a connect string. */
  readonly address: string;
  /** Resolves once a write request has arrived and is held. */
  readonly holding: Promise<void>;
  /** Sends what is held, in order, and lets everything through from now on. */
  release(): void;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

export async function startWriteGate(upstreamPort: number, upstreamHost = "127.0.0.1"): Promise<WriteGate> {
  let released = false;
  let markHolding: () => void = () => undefined;
  const holding = new Promise<void>((resolve) => {
    markHolding = resolve;
  });
  const flushes: (() => void)[] = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on("error", () => {}); // a closing peer; "close" follows
    socket.once("close", () => sockets.delete(socket));
  };

  const server = createServer((client) => {
    const upstream = connect({ host: upstreamHost, port: upstreamPort });
    track(client);
    track(upstream);
    client.once("close", () => upstream.destroy());
    upstream.once("close", () => client.destroy());
    upstream.on("data", (chunk: Buffer) => void client.write(chunk));

    let pending = Buffer.alloc(0);
    let connectRequest = true; // the first frame has no request header
    const held: Buffer[] = [];
    let holdingHere = false;
    const flush = (): void => {
      for (const frame of held.splice(0)) upstream.write(frame);
      holdingHere = false;
    };
    client.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const end = 4 + pending.readInt32BE(0);
        if (pending.length < end) break;
        const frame = pending.subarray(0, end);
        pending = pending.subarray(end);
        const op = connectRequest || frame.length < 12 ? undefined : frame.readInt32BE(8);
        connectRequest = false;
        if (!released && (holdingHere || (op !== undefined && WRITE_OPS.has(op)))) {
          if (!holdingHere) {
            holdingHere = true;
            flushes.push(flush);
            markHolding();
          }
          held.push(frame);
        } else upstream.write(frame);
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    address: `127.0.0.1:${port}`,
    holding,
    release() {
      released = true;
      for (const flush of flushes.splice(0)) flush();
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
