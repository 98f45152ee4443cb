// ZkClient (src/zk/client.ts) against a real ZooKeeper: chroot, data ops, transactions, watches,
// connection states through server kill / restart / SIGSTOP, timeouts, close, digest auth.
//
// All tests share one server (tests in a file run one after another); every test uses its own
// chroot, and afterEach resumes / restarts the server and closes every client the test opened.
// Waits are bounded polls (waitForStrict); timing assertions measure against the client's own timeouts.

import { afterEach, describe, expect, test } from "bun:test";
import { connect as tcpConnect, createServer, type Server, type Socket } from "node:net";
import * as zookeeper from "node-zookeeper-client";
import { type ZkClientOptions, ZkClient } from "../../src/zk/client.ts";
import { digestId, OPEN_ACL, Perm, type ZkAcl } from "../../src/zk/acl.ts";
import {
  isBadVersion,
  isClosed,
  isConnectionLoss,
  isNoAuth,
  isNodeExists,
  isNoNode,
  isNotEmpty,
  isUnreachable,
  ZkError,
} from "../../src/zk/errors.ts";
import { retrying } from "../../src/zk/recipes/session-waits.ts";
import type { WatchEvent, Watcher } from "../../src/zk/watchers.ts";
import { waitForStrict } from "../harness/wait.ts";
import { firstState, recordStates } from "../helpers/zk-states.ts";
import { fourLetterWord, freePort, freezeServer, uniqueChroot, useZooKeeper } from "../harness/zookeeper.ts";

const zk = useZooKeeper();

// ---- helpers ------------------------------------------------------------------------------

/** Resolves with how long `promise` took to settle and what it settled with (never rejects). */
async function timed<T>(promise: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const start = performance.now();
  try {
    const value = await promise;
    return { ms: performance.now() - start, value };
  } catch (error) {
    return { ms: performance.now() - start, error };
  }
}

const opened: ZkClient[] = [];

async function connect(connectString: string, options: Partial<ZkClientOptions> = {}): Promise<ZkClient> {
  const client = await ZkClient.connect({ connectTimeoutMs: 10_000, ...options, connectString });
  opened.push(client);
  return client;
}

function recordEvents(): { events: WatchEvent[]; watcher: Watcher } {
  const events: WatchEvent[] = [];
  return { events, watcher: (e) => events.push(e) };
}

const text = (s: string): Buffer => Buffer.from(s, "utf8");

/** The ZkError kind, or the message of anything else (so a failed expectation shows it). */
const kindOf = (error: unknown): string => (error instanceof ZkError ? error.kind : error === undefined ? "no error" : String(error));

/**
 * A loopback TCP proxy in front of the server, so a test decides when the client can reach it:
 * `down()` refuses connections, `cut()` drops the current ones, mode "hold" accepts new ones but
 * never forwards (a connection nobody answers) until `release()`.
 */
class TcpProxy {
  mode: "forward" | "hold" = "forward";
  port = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly held: Socket[] = [];

  get connectString(): string {
    return `127.0.0.1:${this.port}`;
  }

  get heldCount(): number {
    return this.held.filter((s) => !s.destroyed).length;
  }

  async up(): Promise<void> {
    if (this.server) return;
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (address && typeof address === "object") this.port = address.port;
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.cut();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  cut(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.held.length = 0;
  }

  /** True if a held (unanswered) connection comes from the given client port. */
  holds(clientPort: number | undefined): boolean {
    return clientPort !== undefined && this.held.some((s) => !s.destroyed && s.remotePort === clientPort);
  }

  release(): void {
    for (const socket of this.held.splice(0)) this.forward(socket);
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("error", () => socket.destroy());
    socket.on("close", () => this.sockets.delete(socket));
  }

  private accept(socket: Socket): void {
    this.track(socket);
    if (this.mode === "hold") {
      socket.pause();
      this.held.push(socket);
    } else {
      this.forward(socket);
    }
  }

  private forward(socket: Socket): void {
    if (socket.destroyed) return;
    const upstream = tcpConnect(zk.port, "127.0.0.1");
    this.track(upstream);
    upstream.on("close", () => socket.destroy());
    socket.on("close", () => upstream.destroy());
    socket.pipe(upstream);
    upstream.pipe(socket);
  }
}

const proxies: TcpProxy[] = [];

async function startProxy(): Promise<TcpProxy> {
  const proxy = new TcpProxy();
  await proxy.up();
  proxies.push(proxy);
  return proxy;
}

async function serving(): Promise<boolean> {
  try {
    return (await fourLetterWord("127.0.0.1", zk.port, "ruok", 1_000)) === "imok";
  } catch {
    return false;
  }
}

/** Session ids ZooKeeper lists in `cons` (as 16 hex digits, like ZkClient.sessionId). */
async function serverSessionIds(): Promise<string[]> {
  const cons = await fourLetterWord("127.0.0.1", zk.port, "cons");
  return [...cons.matchAll(/sid=0x([0-9a-f]+)/g)].map((m) => (m[1] ?? "").padStart(16, "0"));
}

/** The library client inside ZkClient (TypeScript-private, so reachable at run time). */
function libraryOf(client: ZkClient): zookeeper.Client {
  return (client as unknown as { lib: zookeeper.Client }).lib;
}

/** Local port of the socket the client's library is using right now (if any). */
function currentSocketPort(client: ZkClient): number | undefined {
  const manager = (libraryOf(client) as unknown as { connectionManager: { socket?: Socket } }).connectionManager;
  return manager.socket && !manager.socket.destroyed ? manager.socket.localPort : undefined;
}

interface LibraryManager {
  connectionManager: { state: number };
}
const LIB_CLOSED = -2;

afterEach(async () => {
  // Leave the shared server running and unfrozen for the next test, then drop our clients.
  zk.server.kill("SIGCONT");
  if (!(await serving())) await zk.server.restart();
  await Promise.all(opened.splice(0).map((c) => c.close()));
  await Promise.all(proxies.splice(0).map((p) => p.down()));
}, 30_000);

// ---- chroot and paths ---------------------------------------------------------------------

describe("chroot", () => {
  test("connect creates a missing multi-level chroot, and paths are chroot-relative", async () => {
    const base = zk.withChroot("chroot"); // 127.0.0.1:PORT/t-chroot-xxxx
    const chroot = `${base.slice(base.indexOf("/"))}/a/b/c`;
    const root = await connect(`${zk.connectString}/`);
    expect(root.chroot).toBe("");
    expect(await root.exists(chroot.slice(0, chroot.indexOf("/a/")))).toBeNull();

    const client = await connect(`${zk.connectString}${chroot}`);
    expect(client.chroot).toBe(chroot);
    expect(await root.exists(chroot)).not.toBeNull();
    expect(await client.exists("/")).not.toBeNull();

    expect(await client.create("/x", text("hello"))).toBe("/x");
    expect((await root.get(`${chroot}/x`)).data.toString()).toBe("hello");
    expect(await root.children(chroot)).toEqual(["x"]);
    expect(await client.children("/")).toEqual(["x"]);
    expect(await client.create("/x/seq-", Buffer.alloc(0), "persistentSequential")).toMatch(/^\/x\/seq-\d{10}$/);

    // A second connect to the existing chroot is fine.
    const again = await connect(`${zk.connectString}${chroot}`);
    expect((await again.get("/x")).data.toString()).toBe("hello");
  });
});

// ---- data operations ----------------------------------------------------------------------

describe("data operations", () => {
  test("get/set with versions; a stale version is badVersion", async () => {
    const c = await connect(zk.withChroot("getset"));
    await c.create("/v", text("one"));
    const first = await c.get("/v");
    expect(first.data.toString()).toBe("one");
    expect(first.stat.version).toBe(0);
    expect(first.stat.dataLength).toBe(3);

    const stat = await c.set("/v", text("two"), 0);
    expect(stat.version).toBe(1);
    const error = await c.set("/v", text("three"), 0).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isBadVersion(error)).toBe(true);
    expect(error instanceof ZkError && error.path).toBe("/v");
    expect((await c.get("/v")).data.toString()).toBe("two");

    expect((await c.set("/v", text("four"))).version).toBe(2); // -1: unconditional
    expect((await c.get("/v")).data.toString()).toBe("four");
    expect((await c.get("/v")).data.length).toBe(4);
    await c.create("/empty");
    expect((await c.get("/empty")).data.length).toBe(0);
  });

  test("create modes: persistent, ephemeral (owned by the session), sequential names end in 10 digits", async () => {
    const c = await connect(zk.withChroot("modes"));
    expect(await c.create("/p", text("p"), "persistent")).toBe("/p");
    expect((await c.get("/p")).stat.ephemeralOwner).toBe("0000000000000000");

    expect(await c.create("/e", text("e"), "ephemeral")).toBe("/e");
    expect(c.sessionId).toMatch(/^[0-9a-f]{16}$/);
    expect((await c.get("/e")).stat.ephemeralOwner).toBe(c.sessionId);

    const s1 = await c.create("/p/s-", Buffer.alloc(0), "persistentSequential");
    const s2 = await c.create("/p/s-", Buffer.alloc(0), "persistentSequential");
    expect(s1).toMatch(/^\/p\/s-\d{10}$/);
    expect(Number(s2.slice(-10))).toBeGreaterThan(Number(s1.slice(-10)));

    const es = await c.create("/p/es-", Buffer.alloc(0), "ephemeralSequential");
    expect(es).toMatch(/^\/p\/es-\d{10}$/);
    expect((await c.get(es)).stat.ephemeralOwner).toBe(c.sessionId);
    expect((await c.children("/p")).sort()).toEqual([s1, s2, es].map((p) => p.slice(3)).sort());
  });

  test("typed errors: nodeExists, noNode, notEmpty; exists() is null for a missing node", async () => {
    const c = await connect(zk.withChroot("errors"));
    await c.create("/a");
    await c.create("/a/child");

    const exists = await c.create("/a").catch((e: unknown) => e);
    expect(isNodeExists(exists)).toBe(true);
    expect(exists instanceof ZkError && exists.path).toBe("/a");

    const missing = await c.get("/nope").catch((e: unknown) => e);
    expect(isNoNode(missing)).toBe(true);
    expect(missing instanceof ZkError && missing.message).toContain("/nope");
    expect(isNoNode(await c.set("/nope", text("x")).catch((e: unknown) => e))).toBe(true);
    expect(isNoNode(await c.children("/nope").catch((e: unknown) => e))).toBe(true);
    expect(isNoNode(await c.delete("/nope").catch((e: unknown) => e))).toBe(true);
    expect(isNoNode(await c.create("/nope/child").catch((e: unknown) => e))).toBe(true);

    const notEmpty = await c.delete("/a").catch((e: unknown) => e);
    expect(isNotEmpty(notEmpty)).toBe(true);
    expect(await c.exists("/a")).not.toBeNull();

    expect(await c.exists("/nope")).toBeNull();
    expect((await c.exists("/a"))?.numChildren).toBe(1);
    await c.delete("/a/child");
    await c.delete("/a");
    expect(await c.exists("/a")).toBeNull();
  });

  test("mkdirp, children and deleteRecursive", async () => {
    const c = await connect(zk.withChroot("tree"));
    await c.mkdirp("/m/n/o");
    await c.mkdirp("/m/n/o"); // existing is fine
    await c.mkdirp("/m/n/p");
    await c.create("/m/n/o/leaf", text("x"));
    await c.create("/m/q", text("y"), "ephemeral");
    expect((await c.children("/m")).sort()).toEqual(["n", "q"]);
    expect((await c.children("/m/n")).sort()).toEqual(["o", "p"]);
    expect(await c.children("/m/n/p")).toEqual([]);

    await c.deleteRecursive("/m");
    expect(await c.exists("/m")).toBeNull();
    expect(await c.children("/")).toEqual([]);
    await c.deleteRecursive("/m"); // already gone: fine
  });
});

// ---- transactions -------------------------------------------------------------------------

describe("transactions", () => {
  test("create + delete commit atomically", async () => {
    const c = await connect(zk.withChroot("txn-ok"));
    await c.create("/t");
    await c.create("/t/a", text("old"));
    const results = await c.transaction().create("/t/b", text("new")).delete("/t/a").set("/t", text("v")).commit();
    expect(results).toEqual([
      { op: "create", path: "/t/b" },
      { op: "delete", path: "/t/a" },
      { op: "set", path: "/t" },
    ]);
    expect(await c.children("/t")).toEqual(["b"]);
    expect((await c.get("/t")).data.toString()).toBe("v");
  });

  test("a failing op applies nothing and rejects with the error of that op, naming its path", async () => {
    const c = await connect(zk.withChroot("txn-fail"));
    await c.create("/t");
    await c.create("/t/exists");

    const noNode = await c
      .transaction()
      .create("/t/c")
      .set("/t/missing", text("x"))
      .create("/t/d")
      .commit()
      .catch((e: unknown) => e);
    expect(isNoNode(noNode)).toBe(true);
    expect(noNode instanceof ZkError && noNode.path).toBe("/t/missing");
    expect(noNode instanceof ZkError && noNode.message).toContain("/t/missing");

    const nodeExists = await c
      .transaction()
      .create("/t/e")
      .set("/t", text("changed"))
      .create("/t/exists")
      .create("/t/g")
      .commit()
      .catch((e: unknown) => e);
    expect(isNodeExists(nodeExists)).toBe(true);
    expect(nodeExists instanceof ZkError && nodeExists.path).toBe("/t/exists");

    const badVersion = await c
      .transaction()
      .create("/t/f")
      .check("/t", 7)
      .commit()
      .catch((e: unknown) => e);
    expect(isBadVersion(badVersion)).toBe(true);
    expect(badVersion instanceof ZkError && badVersion.path).toBe("/t");

    expect(await c.children("/t")).toEqual(["exists"]); // nothing of the three was applied
    expect((await c.get("/t")).stat.version).toBe(0);
  });

  test("results carry the sequential path of a create", async () => {
    const c = await connect(zk.withChroot("txn-seq"));
    await c.create("/q");
    await c.create("/q/lock-1");
    const [created, deleted] = await c.transaction().create("/q/lease-", text("mine"), "ephemeralSequential").delete("/q/lock-1").commit();
    expect(created?.op).toBe("create");
    expect(created?.path).toMatch(/^\/q\/lease-\d{10}$/);
    expect(deleted).toEqual({ op: "delete", path: "/q/lock-1" });
    const { data, stat } = await c.get(created?.path ?? "/missing");
    expect(data.toString()).toBe("mine");
    expect(stat.ephemeralOwner).toBe(c.sessionId);
  });

  // Regression: node-zookeeper-client's Transaction does `version = version || -1`, so version 0
  // (every node never written since its creation) used to become "any version" and a
  // compare-and-set against a fresh node silently overwrote a concurrent change (fixed in
  // src/zk/transaction.ts by pinning the version on the queued op).
  test("a versioned op in a transaction with version 0 is compare-and-set, as outside one", async () => {
    const c = await connect(zk.withChroot("txn-v0"));
    await c.create("/cas", text("created")); // version 0
    await c.set("/cas", text("changed by someone else")); // version 1
    expect(isBadVersion(await c.set("/cas", text("stale"), 0).catch((e: unknown) => e))).toBe(true);

    const viaTxn = await c
      .transaction()
      .set("/cas", text("stale write"), 0)
      .commit()
      .then(
        () => "committed",
        (e: unknown) => e,
      );
    expect((await c.get("/cas")).data.toString()).toBe("changed by someone else");
    expect(isBadVersion(viaTxn)).toBe(true);

    const check = await c
      .transaction()
      .check("/cas", 0)
      .create("/after-check")
      .commit()
      .then(
        () => "committed",
        (e: unknown) => e,
      );
    expect(isBadVersion(check)).toBe(true);
    expect(await c.exists("/after-check")).toBeNull();

    const remove = await c
      .transaction()
      .delete("/cas", 0)
      .commit()
      .then(
        () => "committed",
        (e: unknown) => e,
      );
    expect(isBadVersion(remove)).toBe(true);
    expect(await c.exists("/cas")).not.toBeNull();
    await c.transaction().delete("/cas", 1).commit(); // the right version still works
    expect(await c.exists("/cas")).toBeNull();
  });
});

// ---- watches ------------------------------------------------------------------------------

describe("watches", () => {
  test("get/exists/children watchers fire once with the type and the chroot-relative path", async () => {
    const c = await connect(zk.withChroot("watch"));
    const other = await connect(`${zk.connectString}${c.chroot}`);
    await c.create("/w", text("0"));
    await c.create("/gone");

    const data = recordEvents();
    const deleted = recordEvents();
    const kids = recordEvents();
    await c.get("/w", data.watcher);
    await c.exists("/gone", deleted.watcher);
    await c.children("/w", kids.watcher);

    await other.set("/w", text("1"));
    await other.delete("/gone");
    await other.create("/w/kid");
    await waitForStrict(() => data.events.length + deleted.events.length + kids.events.length === 3, 5_000, "three watch events");
    expect(data.events).toEqual([{ type: "dataChanged", path: "/w" }]);
    expect(deleted.events).toEqual([{ type: "deleted", path: "/gone" }]);
    expect(kids.events).toEqual([{ type: "childrenChanged", path: "/w" }]);

    // One-shot: further changes deliver nothing. A read on the same connection is answered after
    // any notification the server sent before it, so this is a deterministic check.
    await other.set("/w", text("2"));
    await other.create("/w/kid2");
    await other.create("/gone");
    await c.exists("/");
    expect(data.events.length + deleted.events.length + kids.events.length).toBe(3);
  });

  test("a get watcher sees deletion; a child watcher sees its node deleted", async () => {
    const c = await connect(zk.withChroot("watch-del"));
    await c.create("/d");
    const data = recordEvents();
    const kids = recordEvents();
    await c.get("/d", data.watcher);
    await c.children("/d", kids.watcher);
    await c.delete("/d");
    await waitForStrict(() => data.events.length === 1 && kids.events.length === 1, 5_000, "deleted events");
    expect(data.events).toEqual([{ type: "deleted", path: "/d" }]);
    expect(kids.events).toEqual([{ type: "deleted", path: "/d" }]);
  });

  test("exists() on a missing node leaves a watch that fires 'created'", async () => {
    const c = await connect(zk.withChroot("watch-created"));
    const other = await connect(`${zk.connectString}${c.chroot}`);
    const { events, watcher } = recordEvents();
    expect(await c.exists("/later", watcher)).toBeNull();
    await other.create("/later");
    await waitForStrict(() => events.length > 0, 5_000, "created event");
    await c.exists("/");
    expect(events).toEqual([{ type: "created", path: "/later" }]);
  });

  test("the same watcher registered twice fires once; unwatch stops only that watcher", async () => {
    const c = await connect(zk.withChroot("watch-dedup"));
    await c.create("/n", text("0"));
    const twice = recordEvents();
    await c.get("/n", twice.watcher);
    await c.get("/n", twice.watcher);
    await c.exists("/n", twice.watcher); // same watcher through exists: still once
    const removed = recordEvents();
    const kept = recordEvents();
    await c.get("/n", removed.watcher);
    await c.get("/n", kept.watcher);
    c.unwatch(removed.watcher);

    await c.set("/n", text("1"));
    await waitForStrict(() => kept.events.length === 1, 5_000, "event for the kept watcher");
    await c.set("/n", text("2"));
    await c.exists("/");
    expect(twice.events).toEqual([{ type: "dataChanged", path: "/n" }]);
    expect(kept.events).toEqual([{ type: "dataChanged", path: "/n" }]);
    expect(removed.events).toEqual([]);
  });

  test("a watcher passed to a read that fails is not left behind", async () => {
    const c = await connect(zk.withChroot("watch-failed-read"));
    const { events, watcher } = recordEvents();
    expect(isNoNode(await c.get("/missing", watcher).catch((e: unknown) => e))).toBe(true);
    expect(isNoNode(await c.children("/missing", watcher).catch((e: unknown) => e))).toBe(true);
    await c.create("/missing");
    await c.create("/missing/kid");
    await c.exists("/");
    await c.close();
    expect(events).toEqual([]); // not even sessionLost: it was never registered
  });
});

// ---- connection states --------------------------------------------------------------------

describe("connection states", () => {
  // These tests reach the server through a TcpProxy that is only up while the server serves:
  // ZooKeeper 3.8 listens before it is ready, and a handshake landing in that window is dropped
  // without the socket being closed (see the last test of this group), which would make the
  // outcome of a restart depend on timing instead of on the client.

  test("server killed and restarted within the session timeout: suspended, then reconnected to the same session", async () => {
    const proxy = await startProxy();
    // A long-ish session so that a JVM restart on a loaded machine fits well inside it.
    const c = await connect(`${proxy.connectString}${uniqueChroot("reconnect")}`, { sessionTimeoutMs: 6_000, operationTimeoutMs: 1_000 });
    const states = recordStates(c);
    const sessionId = c.sessionId;
    await c.create("/eph", text("mine"), "ephemeral");
    const { events, watcher } = recordEvents();
    await c.get("/eph", watcher);

    zk.server.kill("SIGKILL");
    await proxy.down();
    await waitForStrict(() => firstState(states, "suspended") !== undefined, 3_000, "suspended");
    expect(c.isConnected).toBe(false);
    // A request while disconnected fails within the operation timeout instead of hanging.
    const during = await timed(c.get("/eph"));
    expect(kindOf(during.error)).toBe("connectionLoss");
    expect(during.ms).toBeLessThan(1_000 + 1_000);

    await zk.server.restart();
    await proxy.up();
    await waitForStrict(() => firstState(states, "reconnected") !== undefined, 10_000, "reconnected");
    expect(states.map((s) => s.state)).toEqual(["suspended", "reconnected"]);
    expect(firstState(states, "reconnected")?.sessionId).toBe(sessionId);
    expect(c.sessionId).toBe(sessionId);
    expect(c.isConnected).toBe(true);
    const { stat } = await c.get("/eph");
    expect(stat.ephemeralOwner).toBe(sessionId);

    // The watch set before the outage was restored with the session.
    const other = await connect(`${zk.connectString}${c.chroot}`);
    await other.set("/eph", text("changed"));
    await waitForStrict(() => events.length > 0, 5_000, "watch event after reconnect");
    expect(events).toEqual([{ type: "dataChanged", path: "/eph" }]);
  }, 30_000);

  test("server down longer than the session timeout: lost (on time), sessionLost to watchers, then a new session by itself", async () => {
    const proxy = await startProxy();
    const c = await connect(`${proxy.connectString}${uniqueChroot("lost")}`, { sessionTimeoutMs: 2_000, operationTimeoutMs: 1_000 });
    expect(c.sessionTimeoutMs).toBe(2_000);
    const states = recordStates(c);
    const oldSession = c.sessionId;
    await c.create("/old", text("x"), "ephemeral");
    const data = recordEvents();
    const kids = recordEvents();
    await c.get("/old", data.watcher);
    await c.children("/", kids.watcher);

    zk.server.kill("SIGKILL");
    await proxy.down();
    await waitForStrict(() => firstState(states, "suspended") !== undefined, 3_000, "suspended");
    await waitForStrict(() => firstState(states, "lost") !== undefined, 5_000, "lost");
    const suspendedAt = firstState(states, "suspended")?.at ?? 0;
    const lostAfter = (firstState(states, "lost")?.at ?? 0) - suspendedAt;
    // The client counts from the last byte it received (at most one ping interval, a third of
    // the session timeout, before the disconnect), never declares loss earlier than that.
    expect(lostAfter).toBeGreaterThanOrEqual((2_000 * 2) / 3 - 100);
    expect(lostAfter).toBeLessThanOrEqual(2_000 + 1_000);
    expect(data.events).toEqual([{ type: "sessionLost", path: "/old" }]);
    expect(kids.events).toEqual([{ type: "sessionLost", path: "/" }]);
    expect(c.isConnected).toBe(false);

    await zk.server.restart();
    await proxy.up();
    await waitForStrict(() => firstState(states, "reconnected") !== undefined, 10_000, "reconnected after lost");
    expect(states.map((s) => s.state)).toEqual(["suspended", "lost", "reconnected"]);
    const newSession = c.sessionId;
    expect(newSession).toMatch(/^[0-9a-f]{16}$/);
    expect(newSession).not.toBe(oldSession);
    expect(firstState(states, "reconnected")?.sessionId).toBe(newSession);

    expect(await c.create("/new", text("y"), "ephemeral")).toBe("/new");
    expect((await c.get("/new")).stat.ephemeralOwner).toBe(newSession);
    // The old session's ephemeral goes when the server expires it (it restored it on restart).
    await waitForStrict(async () => (await c.exists("/old")) === null, 10_000, "old ephemeral to vanish");
    expect(c.sessionId).toBe(newSession);
    expect(states.length).toBe(3);
  }, 40_000);

  test("requests issued while disconnected and still unsent when the session is lost reject with connectionLoss at once; nothing escapes", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const proxy = await startProxy();
      // Operation timeout far beyond the session timeout: only the drain at `lost` can fail them.
      const c = await connect(`${proxy.connectString}${uniqueChroot("unsent")}`, { sessionTimeoutMs: 2_000, operationTimeoutMs: 20_000 });
      const states = recordStates(c);
      await proxy.down();
      await waitForStrict(() => firstState(states, "suspended") !== undefined, 3_000, "suspended");
      // exists() is the library call whose own callback calls getCode() on the error.
      const results = await Promise.allSettled([c.exists("/a"), c.get("/b"), c.children("/")]);
      expect(firstState(states, "lost")).toBeDefined();
      for (const r of results) {
        expect(r.status).toBe("rejected");
        const reason = r.status === "rejected" ? (r.reason as unknown) : undefined;
        expect(reason).toBeInstanceOf(ZkError);
        expect((reason as ZkError).kind).toBe("connectionLoss");
        expect(String(reason)).not.toMatch(/did not answer/);
      }
      await c.close();
      await Bun.sleep(50);
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  }, 40_000);

  test("session ended on the live server: the client learns it on reconnect (lost), then gets a new session", async () => {
    const proxy = await startProxy();
    const sessionTimeoutMs = 8_000;
    const c = await connect(`${proxy.connectString}${uniqueChroot("expired")}`, { sessionTimeoutMs });
    const states = recordStates(c);
    const oldSession = c.sessionId;
    // The wrapper does not expose the session password; the library client inside it does.
    const password = libraryOf(c).getSessionPassword();
    await c.create("/e", Buffer.alloc(0), "ephemeral");
    const { events, watcher } = recordEvents();
    await c.exists("/e", watcher);

    // A second (raw library) client attaches to the same session and closes it, which ends the
    // session on the server. Attaching kicks `c` off; the proxy holds c's reconnection until the
    // close is done, so `c` cannot win the session back in between.
    proxy.mode = "hold";
    const options: Partial<zookeeper.Option> & { sessionId: Buffer; sessionPassword: Buffer } = {
      sessionTimeout: sessionTimeoutMs,
      spinDelay: 1_000,
      retries: 0,
      sessionId: Buffer.from(oldSession, "hex"),
      sessionPassword: password,
    };
    const raw = zookeeper.createClient(zk.connectString, options);
    let rawConnected = false;
    raw.once("connected", () => {
      rawConnected = true;
      raw.close();
    });
    raw.connect();
    const manager = (raw as unknown as LibraryManager).connectionManager;
    await waitForStrict(() => manager.state === LIB_CLOSED, 5_000, "raw client to close the session");
    expect(rawConnected).toBe(true);
    await waitForStrict(() => firstState(states, "suspended") !== undefined, 3_000, "c to be kicked off");

    proxy.mode = "forward";
    proxy.release();
    await waitForStrict(() => firstState(states, "reconnected") !== undefined, 10_000, "a new session");
    expect(states.map((s) => s.state)).toEqual(["suspended", "lost", "reconnected"]);
    // Reported from the server's answer, not from the client's own timer.
    expect((firstState(states, "lost")?.at ?? 0) - (firstState(states, "suspended")?.at ?? 0)).toBeLessThan(sessionTimeoutMs - 1_000);
    const newSession = c.sessionId;
    expect(newSession).not.toBe(oldSession);
    expect(newSession).toMatch(/^[0-9a-f]{16}$/);
    expect(events).toEqual([{ type: "sessionLost", path: "/e" }]);
    expect(await c.exists("/e")).toBeNull(); // closed session: its ephemeral is gone at once
    expect(await c.create("/e2")).toBe("/e2");
    expect((await c.get("/e2")).data.length).toBe(0);
  }, 30_000);

  // Regression (fixed in src/zk/client.ts boundHandshakes): node-zookeeper-client clears its
  // connect timer as soon as TCP connects and then waits for the handshake reply forever, so a
  // client whose attempt was accepted but never answered never tried again — in `lost` (building
  // its new session) nothing else would ever rescue it. A real ZooKeeper 3.8 does exactly this
  // during a restart: it listens before it is ready, answers an early handshake with
  // "ZooKeeperServer not running", then hits a NullPointerException in removeCnxn and never
  // closes the socket (seen here in about 1 of 8 restarts). The proxy's "hold" mode reproduces
  // it deterministically.
  test("a handshake that is never answered is abandoned: after lost, the client still gets a new session", async () => {
    const proxy = await startProxy();
    const c = await connect(`${proxy.connectString}${uniqueChroot("silent")}`, { sessionTimeoutMs: 2_000, operationTimeoutMs: 1_000 });
    const states = recordStates(c);
    proxy.mode = "hold"; // accept, never answer
    proxy.cut();
    await waitForStrict(() => firstState(states, "lost") !== undefined, 5_000, "lost");
    // Wait until the new session's first handshake sits in a silent connection.
    await waitForStrict(() => proxy.holds(currentSocketPort(c)), 3_000, "the new session's attempt to be held");
    const healedAt = performance.now();
    proxy.mode = "forward"; // new connections work again; the held one stays silent
    const bound = 2 * 2_000 + 1_500;
    await waitForStrict(() => firstState(states, "reconnected") !== undefined, bound, "reconnected once connections work again").catch(
      (error: unknown) => {
        throw new Error(
          `${error instanceof Error ? error.message : String(error)}; states ${JSON.stringify(states.map((s) => s.state))}, ` +
            `still waiting on a silent connection ${Math.round(performance.now() - healedAt)} ms after the network healed`,
        );
      },
    );
    expect(await c.create("/works")).toBe("/works");
  }, 20_000);

  test("a first handshake that is never answered is retried within the connect timeout", async () => {
    const proxy = await startProxy();
    proxy.mode = "hold";
    const connecting = timed(
      connect(`${proxy.connectString}${uniqueChroot("silent-first")}`, { sessionTimeoutMs: 2_000, connectTimeoutMs: 8_000 }),
    );
    await waitForStrict(() => proxy.heldCount > 0, 3_000, "the first attempt to be held");
    proxy.mode = "forward";
    const result = await connecting;
    expect(kindOf(result.error)).toBe("no error");
    expect(result.value?.isConnected).toBe(true);
  }, 20_000);

  test("connect timeout: unreachable servers reject with isUnreachable on time", async () => {
    const refused = await timed(ZkClient.connect({ connectString: "127.0.0.1:1/x", connectTimeoutMs: 1_000 }));
    expect(kindOf(refused.error)).toBe("unreachable");
    expect(isUnreachable(refused.error)).toBe(true);
    expect(refused.error instanceof ZkError && refused.error.message).toContain("127.0.0.1:1");
    expect(refused.ms).toBeLessThan(1_000 + 1_500);

    const port = await freePort();
    const silent = await timed(ZkClient.connect({ connectString: `127.0.0.1:${port}`, connectTimeoutMs: 1_000 }));
    expect(kindOf(silent.error)).toBe("unreachable");
    expect(silent.ms).toBeGreaterThanOrEqual(1_000 - 50);
    expect(silent.ms).toBeLessThan(1_000 + 1_500);
  }, 20_000);

  // Regression (was a bug: src/zk/client.ts disposeLibrary): a failed connect() — like close() of a client that is
  // not connected — leaves the library's already-scheduled reconnect (findNextServer's spin-delay
  // setTimeout, up to 200 ms) armed. Overriding manager.connect / onSocketConnected does not
  // cancel it: the timer still calls net.connect, so one more TCP connection reaches the server
  // after the promise settled (it is dropped on connect, but the attempt is made).
  test("after a failed connect nothing dials the server again", async () => {
    const port = await freePort();
    const failed = await timed(ZkClient.connect({ connectString: `127.0.0.1:${port}`, connectTimeoutMs: 1_000 }));
    expect(kindOf(failed.error)).toBe("unreachable");

    // Nobody may still be dialling that port: listen on it and watch for 1 s.
    const accepted: Socket[] = [];
    const listener = createServer((socket) => {
      accepted.push(socket);
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      listener.listen(port, "127.0.0.1", () => resolve());
    });
    try {
      await Bun.sleep(1_000); // the observation window itself
      expect(accepted.length).toBe(0);
    } finally {
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    }
  }, 10_000);

  test("operation timeout: with the server SIGSTOPped, requests fail with connectionLoss instead of hanging", async () => {
    const c = await connect(zk.withChroot("optimeout"), { sessionTimeoutMs: 20_000, operationTimeoutMs: 800 });
    await c.create("/n", text("x"));
    await freezeServer(zk.server);
    try {
      const [read, write] = await Promise.all([timed(c.get("/n")), timed(c.set("/n", text("y")))]);
      expect(kindOf(read.error)).toBe("connectionLoss");
      expect(kindOf(write.error)).toBe("connectionLoss");
      expect(isConnectionLoss(read.error)).toBe(true);
      expect(read.ms).toBeLessThan(800 + 1_000);
      expect(write.ms).toBeLessThan(800 + 1_000);
    } finally {
      zk.server.kill("SIGCONT");
    }
    // The session is still good once the server runs again.
    await waitForStrict(async () => (await c.get("/n").catch(() => null)) !== null, 10_000, "reads to work again");
    expect(c.isConnected).toBe(true);
  }, 20_000);

  test("stall detection: an idle client notices a SIGSTOPped server within ~2/3 of the session timeout", async () => {
    const sessionTimeoutMs = 3_000;
    const c = await connect(zk.withChroot("stall"), { sessionTimeoutMs, operationTimeoutMs: 1_000 });
    expect(c.sessionTimeoutMs).toBe(sessionTimeoutMs);
    const states = recordStates(c);
    const stoppedAt = performance.now();
    await freezeServer(zk.server);
    try {
      // Last data may have arrived up to one ping interval (1/3) before the stop; the check runs
      // every 1/6 of the session timeout.
      const bound = (sessionTimeoutMs * 2) / 3 + sessionTimeoutMs / 6 + 1_000;
      await waitForStrict(() => firstState(states, "suspended") !== undefined, bound + 2_000, "suspended");
      const after = (firstState(states, "suspended")?.at ?? 0) - stoppedAt;
      expect(after).toBeLessThanOrEqual(bound);
      expect(c.isConnected).toBe(false);
    } finally {
      zk.server.kill("SIGCONT");
    }
    // Back to work once the server runs again (same session or, if the server expired it, a new one).
    await waitForStrict(() => firstState(states, "reconnected") !== undefined, 15_000, "reconnected");
    expect(await c.create("/after")).toBe("/after");
  }, 30_000);
});

// ---- close --------------------------------------------------------------------------------

describe("close", () => {
  test("ephemerals vanish at once; later operations reject 'closed'; closing twice is fine", async () => {
    const a = await connect(zk.withChroot("close"));
    const b = await connect(`${zk.connectString}${a.chroot}`);
    await a.create("/gone", Buffer.alloc(0), "ephemeral");
    expect(await b.exists("/gone")).not.toBeNull();
    const { events, watcher } = recordEvents();
    await a.get("/gone", watcher);

    await a.close();
    await waitForStrict(async () => (await b.exists("/gone")) === null, 500, "ephemeral to vanish");
    expect(events).toEqual([{ type: "sessionLost", path: "/gone" }]);
    expect(a.isConnected).toBe(false);

    for (const op of [a.get("/x"), a.create("/x"), a.exists("/"), a.transaction().create("/y").commit()]) {
      const error = await op.catch((e: unknown) => e);
      expect(isClosed(error)).toBe(true);
      expect(error instanceof ZkError && error.kind).toBe("closed");
    }
    await a.close();
    expect(await b.exists("/x")).toBeNull();
  });

  test("close while the server is down settles within ~1.5 s and leaves nothing reconnecting", async () => {
    const c = await connect(zk.withChroot("close-down"), { sessionTimeoutMs: 6_000 });
    const states = recordStates(c);
    const sessionId = c.sessionId;
    zk.server.kill("SIGKILL");
    await waitForStrict(() => firstState(states, "suspended") !== undefined, 3_000, "suspended");

    const closing = await timed(c.close());
    expect(closing.error).toBeUndefined();
    expect(closing.ms).toBeLessThan(1_500);
    expect(isClosed(await c.get("/").catch((e: unknown) => e))).toBe(true);

    // The server restores the (still unexpired) session on restart; the closed client must not
    // come back to it. Watch the server's connection list for 1 s.
    await zk.server.restart();
    const deadline = Date.now() + 1_000;
    while (Date.now() < deadline) {
      expect(await serverSessionIds()).not.toContain(sessionId);
      await Bun.sleep(100);
    }
    expect(states.map((s) => s.state)).toEqual(["suspended"]);
  }, 30_000);

  test("a wait for the connection on a session ends when the client is closed meanwhile (it waited for a state change that never came)", async () => {
    const c = await connect(zk.withChroot("close-wait"), { sessionTimeoutMs: 6_000 });
    const states = recordStates(c);
    const sessionId = c.sessionId;
    zk.server.kill("SIGKILL");
    await waitForStrict(() => firstState(states, "suspended") !== undefined, 3_000, "suspended");
    // A write whose answer was lost: retried once connected on this session.
    let calls = 0;
    const waiting = retrying(
      c,
      async () => {
        calls += 1;
        throw new ZkError("connectionLoss", "connection lost (injected)", "/");
      },
      sessionId,
    ).then(
      () => "resolved",
      (error: unknown) => error,
    );
    await waitForStrict(() => calls === 1, 3_000, "the first try");
    await c.close();
    const outcome = await Promise.race([waiting, Bun.sleep(5_000).then(() => "still waiting")]);
    expect(outcome).toBeInstanceOf(ZkError);
    expect(calls).toBe(1);
    await zk.server.restart();
  }, 30_000);
});

// ---- auth ---------------------------------------------------------------------------------

describe("digest auth", () => {
  test("a node with a digest ACL is readable with the credentials and refused (noAuth) without", async () => {
    const ci = { user: "ci", password: "s3cret" };
    const secretAcl: ZkAcl[] = [{ scheme: "digest", id: digestId(ci.user, ci.password), perms: Perm.all }];
    const aclFor = (path: string): ZkAcl[] => (path.startsWith("/secret") ? secretAcl : OPEN_ACL);
    const admin = await connect(zk.withChroot("auth"), { credentials: [ci], aclFor });
    await admin.create("/secret", text("payload"));
    await admin.create("/public", text("hello"));

    expect((await admin.get("/secret")).data.toString()).toBe("payload");

    const anonymous = await connect(`${zk.connectString}${admin.chroot}`);
    const read = await anonymous.get("/secret").catch((e: unknown) => e);
    expect(isNoAuth(read)).toBe(true);
    expect(read instanceof ZkError && read.kind).toBe("noAuth");
    expect(read instanceof ZkError && read.path).toBe("/secret");
    expect(isNoAuth(await anonymous.set("/secret", text("x")).catch((e: unknown) => e))).toBe(true);
    expect((await anonymous.get("/public")).data.toString()).toBe("hello");
    expect(await anonymous.exists("/secret")).not.toBeNull(); // exists needs no permission

    const wrong = await connect(`${zk.connectString}${admin.chroot}`, { credentials: [{ user: "ci", password: "nope" }] });
    expect(isNoAuth(await wrong.get("/secret").catch((e: unknown) => e))).toBe(true);
    expect((await admin.get("/secret")).data.toString()).toBe("payload");
  });

  // Regression: node-zookeeper-client's ACL objects carry `permission` (its typings say `perms`),
  // so fromLibraryAcls used to read back perms undefined (fixed in src/zk/acl.ts).
  test("getAcl returns the ACL as created and as set (scheme, id and perms)", async () => {
    const ci = { user: "ci", password: "s3cret" };
    const secretAcl: ZkAcl[] = [{ scheme: "digest", id: digestId(ci.user, ci.password), perms: Perm.all }];
    const c = await connect(zk.withChroot("getacl"), {
      credentials: [ci],
      aclFor: (path) => (path === "/secret" ? secretAcl : OPEN_ACL),
    });
    await c.create("/secret");
    await c.create("/public");
    const readOnly: ZkAcl[] = [{ scheme: "world", id: "anyone", perms: Perm.read }];
    await c.setAcl("/public", readOnly);
    expect(isNoAuth(await c.set("/public", text("x")).catch((e: unknown) => e))).toBe(true); // setAcl applied
    expect(await c.getAcl("/public")).toEqual(readOnly);
    expect(await c.getAcl("/secret")).toEqual(secretAcl);
  });

  test("an ACL entry with no permissions (stored by another tool, e.g. zkCli) is read back, not a crash", async () => {
    const c = await connect(zk.withChroot("acl-zero"));
    await c.create("/none");
    // The library's ACL constructor refuses permissions 0: build that entry as another client
    // would send it. (Reading an ACL needs READ, so the world entry keeps it.)
    const zero = Object.assign(Object.create(zookeeper.ACL.prototype) as zookeeper.ACL, {
      permission: 0,
      id: new zookeeper.Id("ip", "10.0.0.1"),
    });
    const read = new zookeeper.ACL(Perm.read, new zookeeper.Id("world", "anyone"));
    await new Promise<void>((resolve, reject) =>
      libraryOf(c).setACL(`${c.chroot}/none`, [read, zero], -1, (e) => (e ? reject(e) : resolve())),
    );
    expect(await c.getAcl("/none")).toEqual([
      { scheme: "world", id: "anyone", perms: Perm.read },
      { scheme: "ip", id: "10.0.0.1", perms: 0 },
    ]);
  });
});
