// A small in-process TCP proxy for fault tests (node:net, in the manner of etcd3's test proxy):
// clients connect to 127.0.0.1:proxy.port, every accepted connection gets its own upstream
// connection, and the test decides what the network does in between.
//
//   const proxy = await startProxy({ host: "127.0.0.1", port: zkPort });
//   ZkClient.connect({ connectString: proxy.address + "/chroot" });
//   proxy.cut();      // drop every current connection (FIN both ways); new ones are accepted
//   proxy.block();    // drop current connections and close every new one at once
//   proxy.stall();    // a blackhole TCP does not notice: connections stay open, no byte moves
//   proxy.resume();   // ... until now: what was held back is delivered, forwarding continues
//   await proxy.close();
//
// In a test file, useProxy(() => ens.member(2)) and useProxies(ens) start proxies in beforeAll,
// reset them (unblocked, resumed) after every test and close them in afterAll.
//
// While stalled, nothing is read from either side (so the kernel buffers fill as they would on a
// dead link); bytes already read are held in order and delivered on resume(). A side that closes
// during a stall is not told to the other side until resume() — a blackhole carries no FIN either
// — and then the other side is closed too (held bytes for a closed peer are dropped).

import { afterAll, afterEach, beforeAll } from "bun:test";
import { connect, createServer, type Server, type Socket } from "node:net";
import { uniqueChroot } from "./zookeeper.ts";

export interface Upstream {
  host: string;
  port: number;
}

export interface ProxyStats {
  /** Client connections accepted (including ones then refused). */
  accepted: number;
  /** Client connections closed at once because the proxy was blocked or closing. */
  refused: number;
  /** Client connections currently open (paired with an upstream connection). */
  active: number;
  /** Bytes delivered client → upstream and upstream → client. */
  bytesToUpstream: number;
  bytesToClient: number;
}

/** The faults a proxy (or every proxy of a set at once) can inject, and closing it. */
export interface NetworkControls {
  /** Destroy every current connection (both sides); keep accepting new ones. */
  cut(): void;
  /** Refuse new connections (accepted, then destroyed at once) and cut the current ones. */
  block(): void;
  unblock(): void;
  /** Keep every connection (and new ones) open but move no byte either way. */
  stall(): void;
  /** Deliver what stall() held back and forward again. */
  resume(): void;
  /** unblock() and resume(): back to a healthy network. */
  reset(): void;
  /** Stop listening and destroy every connection; resolves once every socket has closed. */
  close(): Promise<void>;
}

export interface Proxy extends NetworkControls {
  /** Listening port on 127.0.0.1. */
  readonly port: number;
  /** "127.0.0.1:port" — use it in place of the upstream in a connect string. */
  readonly address: string;
  readonly upstream: Upstream;
  readonly blocked: boolean;
  readonly stalled: boolean;
  stats(): ProxyStats;
  /** Every byte that passed, both ways (empty unless started with `capture`). */
  captured(): Buffer;
}

const LOOPBACK = "127.0.0.1";

/** "host:port", a port on 127.0.0.1, or {host, port}. */
export function parseUpstream(upstream: Upstream | string | number): Upstream {
  if (typeof upstream === "number") return { host: LOOPBACK, port: upstream };
  if (typeof upstream !== "string") return upstream;
  const m = /^(.+):(\d{1,5})$/.exec(upstream);
  if (!m?.[1] || !m[2]) throw new Error(`startProxy: upstream must be host:port, got "${upstream}"`);
  return { host: m[1], port: Number(m[2]) };
}

type Direction = "toUpstream" | "toClient";

/** One client connection and its upstream connection. */
class Link {
  private readonly held: Record<Direction, Buffer[]> = { toUpstream: [], toClient: [] };
  private readonly ended: Record<Direction, boolean> = { toUpstream: false, toClient: false };
  private closedWhileStalled = false;
  private done = false;

  constructor(
    readonly client: Socket,
    readonly server: Socket,
    private readonly proxy: ProxyState,
    private readonly onDone: (link: Link) => void,
  ) {
    this.forward(client, server, "toUpstream");
    this.forward(server, client, "toClient");
    if (proxy.stalled) this.pause();
  }

  private forward(from: Socket, to: Socket, dir: Direction): void {
    from.on("data", (chunk: Buffer) => {
      if (this.proxy.stalled) this.held[dir].push(chunk);
      else this.deliver(to, chunk, dir, from);
    });
    from.on("end", () => {
      // Half-close: pass the FIN on, in order with held bytes (four-letter words need this).
      if (this.proxy.stalled) this.ended[dir] = true;
      else if (!to.destroyed) to.end();
    });
    to.on("drain", () => {
      if (!this.proxy.stalled) from.resume();
    });
    from.on("error", () => {}); // 'close' follows; errors are the point of fault tests
    from.on("close", () => {
      if (this.done) return;
      if (this.proxy.stalled) this.closedWhileStalled = true;
      else this.closeGracefully(to);
    });
  }

  private deliver(to: Socket, chunk: Buffer, dir: Direction, from: Socket): void {
    if (to.destroyed || to.writableEnded) return;
    this.proxy.bytes[dir] += chunk.length;
    this.proxy.captured?.push(chunk);
    if (!to.write(chunk)) from.pause();
  }

  /** One side has closed: flush what is on its way to the other side, then close that too. */
  private closeGracefully(to: Socket): void {
    if (to.destroyed) {
      this.destroy();
      return;
    }
    const timer = setTimeout(() => this.destroy(), 2_000); // a peer that never reads
    timer.unref?.();
    to.once("close", () => {
      clearTimeout(timer);
      this.destroy();
    });
    to.end(() => to.destroy());
  }

  pause(): void {
    this.client.pause();
    this.server.pause();
  }

  /** After a stall: deliver what was held, pass on held FINs and closes, read again. */
  resume(): void {
    if (this.done) return;
    if (this.closedWhileStalled || this.client.destroyed || this.server.destroyed) {
      this.destroy();
      return;
    }
    const ways = [
      ["toUpstream", this.server, this.client],
      ["toClient", this.client, this.server],
    ] as const;
    for (const [dir, to, from] of ways) {
      for (const chunk of this.held[dir].splice(0)) this.deliver(to, chunk, dir, from);
      if (this.ended[dir] && !to.destroyed) to.end();
    }
    this.client.resume();
    this.server.resume();
  }

  /** Destroy both sockets at once (cut); held bytes are dropped. */
  destroy(): void {
    if (this.done) return;
    this.done = true;
    this.held.toUpstream.length = 0;
    this.held.toClient.length = 0;
    this.client.destroy();
    this.server.destroy();
    this.onDone(this);
  }
}

interface ProxyState {
  stalled: boolean;
  bytes: Record<Direction, number>;
  /** With `capture`: every byte delivered, both ways, in order. */
  captured?: Buffer[];
}

/** `capture`: keep every byte that passes (captured()), to check what travels in clear. */
export async function startProxy(upstreamInput: Upstream | string | number, options: { capture?: boolean } = {}): Promise<Proxy> {
  const upstream = parseUpstream(upstreamInput);
  const state: ProxyState = { stalled: false, bytes: { toUpstream: 0, toClient: 0 }, ...(options.capture ? { captured: [] } : {}) };
  const links = new Set<Link>();
  const sockets = new Set<Socket>(); // every socket not yet closed, so close() can wait for them
  const socketsGone: (() => void)[] = [];
  let blocked = false;
  let closing = false;
  let accepted = 0;
  let refused = 0;

  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      if (sockets.size === 0) for (const resolve of socketsGone.splice(0)) resolve();
    });
  };

  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    accepted++;
    track(client);
    client.on("error", () => {});
    if (blocked || closing) {
      refused++;
      client.destroy();
      return;
    }
    client.setNoDelay(true);
    const upstreamSocket = connect({ host: upstream.host, port: upstream.port, allowHalfOpen: true });
    track(upstreamSocket);
    upstreamSocket.setNoDelay(true);
    const link = new Link(client, upstreamSocket, state, (l) => links.delete(l));
    links.add(link);
    if (!state.stalled) client.resume();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, LOOPBACK, () => {
      server.off("error", reject);
      server.on("error", () => {}); // e.g. EMFILE on accept: that client just is not served
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  if (port === 0) throw new Error("startProxy: no port assigned");

  const cut = (): void => {
    for (const link of [...links]) link.destroy();
  };

  const proxy: Proxy = {
    port,
    address: `${LOOPBACK}:${port}`,
    upstream,
    get blocked() {
      return blocked;
    },
    get stalled() {
      return state.stalled;
    },
    captured: () => Buffer.concat(state.captured ?? []),
    cut,
    block() {
      blocked = true;
      cut();
    },
    unblock() {
      blocked = false;
    },
    stall() {
      if (state.stalled) return;
      state.stalled = true;
      for (const link of links) link.pause();
    },
    resume() {
      if (!state.stalled) return;
      state.stalled = false;
      for (const link of [...links]) link.resume();
    },
    reset() {
      proxy.unblock();
      proxy.resume();
    },
    stats() {
      return { accepted, refused, active: links.size, bytesToUpstream: state.bytes.toUpstream, bytesToClient: state.bytes.toClient };
    },
    async close() {
      if (!closing) {
        closing = true;
        state.stalled = false;
      }
      const listening = new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
      });
      cut();
      for (const socket of sockets) socket.destroy();
      const allClosed = new Promise<void>((resolve) => {
        if (sockets.size === 0) resolve();
        else socketsGone.push(resolve);
      });
      await Promise.all([listening, allClosed]);
    },
  };
  return proxy;
}

// ---------------------------------------------------------------------------------------------
// One proxy per ensemble member

/** One proxy per member; its controls act on every proxy at once. */
export interface ProxySet extends NetworkControls {
  /** In member order. */
  readonly proxies: readonly Proxy[];
  /** "127.0.0.1:q1,127.0.0.1:q2,..." — every member, each through its proxy. */
  readonly connectString: string;
  /** The proxy in front of the member with this id. */
  proxy(memberId: number): Proxy;
}

/** What startProxies needs of an ensemble: its members' ids and client ports. */
export interface ProxiedEnsemble {
  readonly members: readonly { id: number; clientPort: number; securePort?: number }[];
}

/** One proxy per member of an ensemble, to its client port (`secure`: its secure port). */
export async function startProxies(ensemble: ProxiedEnsemble, options: { secure?: boolean } = {}): Promise<ProxySet> {
  const ids = ensemble.members.map((m) => m.id);
  const portOf = (m: ProxiedEnsemble["members"][number]): number => {
    if (!options.secure) return m.clientPort;
    if (m.securePort === undefined) throw new Error(`startProxies: member ${m.id} has no secure port (start the ensemble with tls)`);
    return m.securePort;
  };
  const started = await Promise.allSettled(ensemble.members.map((m) => startProxy({ host: LOOPBACK, port: portOf(m) })));
  const proxies = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = started.find((r) => r.status === "rejected");
  if (failed) {
    await Promise.all(proxies.map((p) => p.close()));
    throw failed.reason as unknown;
  }
  const each = (fn: (p: Proxy) => void) => () => proxies.forEach(fn);
  return {
    proxies,
    connectString: proxies.map((p) => p.address).join(","),
    proxy(memberId) {
      const p = proxies[ids.indexOf(memberId)];
      if (!p) throw new Error(`no proxy for member ${memberId}`);
      return p;
    },
    cut: each((p) => p.cut()),
    block: each((p) => p.block()),
    unblock: each((p) => p.unblock()),
    stall: each((p) => p.stall()),
    resume: each((p) => p.resume()),
    reset: each((p) => p.reset()),
    async close() {
      await Promise.all(proxies.map((p) => p.close()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// For test files

export interface ProxyFixture {
  readonly proxy: Proxy;
  /** "127.0.0.1:PROXYPORT". */
  readonly address: string;
  /** address plus a fresh chroot. */
  withChroot(prefix: string): string;
}

/** Something with a client port: an ensemble member. */
interface ClientPortOwner {
  readonly clientPort: number;
}

/** A proxy started in beforeAll (after the hooks registered before it, so `upstream` may name
 *  something they start), reset after each test, closed in afterAll. */
export function useProxy(upstream: Upstream | string | number | (() => Upstream | string | number | ClientPortOwner)): ProxyFixture {
  let proxy: Proxy | undefined;
  beforeAll(async () => {
    const target = typeof upstream === "function" ? upstream() : upstream;
    proxy = await startProxy(hasClientPort(target) ? target.clientPort : target);
  });
  afterEach(() => proxy?.reset());
  afterAll(async () => {
    await proxy?.close();
    proxy = undefined;
  });
  const current = (): Proxy => {
    if (!proxy) throw new Error("useProxy(): the proxy exists only inside tests and hooks (after beforeAll)");
    return proxy;
  };
  return {
    get proxy() {
      return current();
    },
    get address() {
      return current().address;
    },
    withChroot(prefix: string) {
      return current().address + uniqueChroot(prefix);
    },
  };
}

export interface ProxiesFixture {
  readonly proxies: ProxySet;
  /** Every member through its proxy: "127.0.0.1:q1,127.0.0.1:q2,127.0.0.1:q3". */
  readonly connectString: string;
  withChroot(prefix: string): string;
}

/** One proxy per member of the fixture's ensemble (startProxies), reset after each test. */
export function useProxies(ens: { readonly ensemble: ProxiedEnsemble }): ProxiesFixture {
  let set: ProxySet | undefined;
  beforeAll(async () => {
    set = await startProxies(ens.ensemble);
  });
  afterEach(() => set?.reset());
  afterAll(async () => {
    await set?.close();
    set = undefined;
  });
  const current = (): ProxySet => {
    if (!set) throw new Error("useProxies(): the proxies exist only inside tests and hooks (after beforeAll)");
    return set;
  };
  return {
    get proxies() {
      return current();
    },
    get connectString() {
      return current().connectString;
    },
    withChroot(prefix: string) {
      return current().connectString + uniqueChroot(prefix);
    },
  };
}

function hasClientPort(x: Upstream | string | number | ClientPortOwner): x is ClientPortOwner {
  return typeof x === "object" && "clientPort" in x;
}
