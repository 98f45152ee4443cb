// Proves the fault-injection harness (test/harness/ensemble.ts, test/harness/tcp-proxy.ts) with the
// project's own client (src/zk/client.ts): a 3-node ensemble on loopback forms a quorum, survives
// the leader's death and takes a member back; a TCP proxy cuts, blocks and stalls a client's link
// and the client reports what Curator's connection states promise.
//
// One ensemble for the file; tests run in order and each uses its own chroot. Every wait is a
// bounded poll; timing assertions are made against the client's own session timeout. Measured
// times are printed at the end ([fault-harness] ...).

import { afterAll, afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { ZkClient } from "../../src/zk/client.ts";
import { useEnsemble } from "../harness/ensemble.ts";
import { startProxy, useProxies, useProxy } from "../harness/tcp-proxy.ts";
import { waitFor } from "../harness/wait.ts";
import { firstState, recordStates, waitForState } from "../helpers/zk-states.ts";
import { fourLetterWord, isZooKeeperPid, uniqueChroot } from "../harness/zookeeper.ts";

setDefaultTimeout(60_000);

const ens = useEnsemble();
const viaMember2 = useProxy(() => ens.member(2));
const viaAll = useProxies(ens);

// ---- helpers ------------------------------------------------------------------------------

const measured: Record<string, number> = {};
afterAll(() => {
  console.log(`[fault-harness] measured (ms): ${JSON.stringify(measured)}`);
});

const opened: ZkClient[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

async function connect(connectString: string, sessionTimeoutMs: number): Promise<ZkClient> {
  const client = await ZkClient.connect({ connectString, sessionTimeoutMs, connectTimeoutMs: 15_000 });
  opened.push(client);
  return client;
}

const text = (s: string): Buffer => Buffer.from(s, "utf8");

/** Once `observer` (on another member, which may lag) sees `path`, polls until it is gone and
 *  resolves with that instant: when the server expired the session that owned the node. */
async function whenGone(observer: ZkClient, path: string, timeoutMs: number): Promise<() => Promise<number>> {
  await waitFor(async () => (await observer.exists(path)) !== null, 5_000, `the observer to see ${path}`);
  const gone = waitFor(async () => (await observer.exists(path)) === null, timeoutMs, `the server to expire the owner of ${path}`).then(
    () => performance.now(),
  );
  gone.catch(() => {}); // awaited by the caller; never an unhandled rejection meanwhile
  return () => gone;
}

function tcpRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: "127.0.0.1", port });
    sock.once("connect", () => {
      sock.destroy();
      resolve(false);
    });
    sock.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
  });
}

// ---- the ensemble -------------------------------------------------------------------------

describe("ensemble", () => {
  test("forms a quorum with exactly one leader, on distinct loopback ports, one myid per data dir", async () => {
    const ensemble = ens.ensemble;
    measured.ensembleStart = ensemble.startMs;
    const leader = await ensemble.waitForQuorum(20_000);
    const modes = await ensemble.modes();
    expect([...modes.values()].sort()).toEqual(["follower", "follower", "leader"]);
    expect(modes.get(leader)).toBe("leader");
    expect(await ensemble.leader()).toBe(leader);

    expect(ensemble.members.map((m) => m.id)).toEqual([1, 2, 3]);
    const ports = ensemble.members.flatMap((m) => [m.clientPort, m.peerPort, m.electionPort]);
    expect(new Set(ports).size).toBe(9);
    expect(ensemble.connectString).toBe(ensemble.members.map((m) => `127.0.0.1:${m.clientPort}`).join(","));
    for (const m of ensemble.members) {
      expect(m.state).toBe("running");
      expect(isZooKeeperPid(m.pid)).toBe(true);
      expect(readFileSync(join(m.dataDir, "myid"), "utf8").trim()).toBe(String(m.id));
      const conf = await fourLetterWord("127.0.0.1", m.clientPort, "conf");
      expect(conf).toContain(`serverId=${m.id}\n`);
      expect(conf).toContain(`dataDir=${m.dataDir}/version-2\n`);
      expect(conf).toContain("minSessionTimeout=1000\n"); // tickTime 500
      for (const peer of ensemble.members) {
        expect(conf).toContain(`server.${peer.id}=127.0.0.1:${peer.peerPort}:${peer.electionPort}:participant`);
      }
      const cfg = readFileSync(join(m.dataDir, "zoo.cfg"), "utf8");
      expect(cfg).toContain("clientPortAddress=127.0.0.1\n");
      expect(cfg).toContain("admin.enableServer=false\n");
      expect(cfg).toContain("4lw.commands.whitelist=*\n");
    }
  });

  test("a write through member 1 is readable through member 3", async () => {
    const chroot = uniqueChroot("replication");
    const one = await connect(ens.member(1).connectString + chroot, 5_000);
    const three = await connect(ens.member(3).connectString + chroot, 5_000);
    await one.create("/greeting", text("hello from 1"));
    const seen = await waitFor(
      async () => (await three.exists("/greeting")) && (await three.get("/greeting")).data.toString(),
      5_000,
      "member 3 to serve the node written through member 1",
    );
    expect(seen).toBe("hello from 1");
  });

  let killedId: number | undefined;

  test("killing the leader elects a new one; a client on the ensemble connect string keeps its session", async () => {
    const ensemble = ens.ensemble;
    const sessionTimeoutMs = 10_000;
    const client = await connect(ens.withChroot("leader-kill"), sessionTimeoutMs);
    const log = recordStates(client);
    const session = client.sessionId;
    await client.create("/counter", text("0"));
    await client.create("/alive", text(""), "ephemeral");

    const t0 = performance.now();
    const { killed, leader, electionMs } = await ensemble.killLeader(20_000);
    killedId = killed;
    measured.leaderReelection = electionMs;
    expect(leader).not.toBe(killed);
    expect(ensemble.member(killed).state).toBe("down");
    const modes = await ensemble.modes();
    expect([...modes.keys()].sort()).toEqual([1, 2, 3].filter((id) => id !== killed));
    expect([...modes.values()].sort()).toEqual(["follower", "leader"]);

    // The client works again without being told anything: the first write that succeeds.
    await waitFor(
      async () => {
        await client.set("/counter", text("1"));
        return true;
      },
      sessionTimeoutMs,
      "a write after the leader was killed",
    );
    measured.clientWritesAgainAfterLeaderKill = Math.round(performance.now() - t0);

    // Curator semantics: suspended (maybe), then reconnected to the SAME session; never lost.
    expect(log.filter((r) => r.state === "lost")).toEqual([]);
    const suspended = firstState(log, "suspended", t0);
    if (suspended) {
      const reconnected = await waitForState(log, "reconnected", suspended.at, sessionTimeoutMs);
      expect(reconnected.sessionId).toBe(session);
      measured.clientReconnectAfterLeaderKill = Math.round(reconnected.at - t0);
    }
    expect(client.sessionId).toBe(session);
    const alive = await client.exists("/alive");
    expect(alive?.ephemeralOwner).toBe(session); // the session (and its ephemeral node) survived
  });

  test("a restarted member rejoins as a follower and serves what was written while it was down", async () => {
    const ensemble = ens.ensemble;
    const id = killedId ?? ((await ensemble.waitForQuorum(20_000)) % 3) + 1; // a follower if the last test failed
    if (killedId === undefined) await ensemble.kill(id, "SIGKILL");
    const leaderBefore = await ensemble.waitForQuorum(20_000);

    const chroot = uniqueChroot("rejoin");
    const writer = await connect(ensemble.connectString + chroot, 5_000);
    await writer.create("/written-while-down", text("yes"));

    const t0 = performance.now();
    const pidBefore = ensemble.member(id).pid;
    await ensemble.start(id);
    measured.memberRestart = Math.round(performance.now() - t0);
    expect(ensemble.member(id).pid).not.toBe(pidBefore);
    expect(ensemble.member(id).state).toBe("running");
    expect(await ensemble.waitForQuorum(20_000)).toBe(leaderBefore);
    expect((await ensemble.modes()).get(id)).toBe("follower");

    const reader = await connect(ensemble.member(id).connectString + chroot, 5_000);
    expect((await reader.get("/written-while-down")).data.toString()).toBe("yes");
  });
});

// ---- the proxy ------------------------------------------------------------------------------

describe("tcp proxy", () => {
  test("forwards bytes both ways (half-close included), counts them, refuses while blocked, holds while stalled, closes cleanly", async () => {
    const member = ens.member(1);
    const proxy = await startProxy(member.connectString);
    try {
      expect(proxy.address).toBe(`127.0.0.1:${proxy.port}`);
      expect(await fourLetterWord("127.0.0.1", proxy.port, "ruok")).toBe("imok");
      expect(proxy.stats()).toMatchObject({ accepted: 1, refused: 0, bytesToUpstream: 4, bytesToClient: 4 });

      proxy.block();
      expect(await fourLetterWord("127.0.0.1", proxy.port, "ruok")).toBe(""); // accepted, then closed
      expect(proxy.stats()).toMatchObject({ accepted: 2, refused: 1 });
      proxy.unblock();
      expect(await fourLetterWord("127.0.0.1", proxy.port, "ruok")).toBe("imok");

      proxy.stall();
      const held = fourLetterWord("127.0.0.1", proxy.port, "ruok", 10_000);
      await waitFor(() => proxy.stats().active === 1, 2_000, "the stalled connection to be open");
      const toUpstream = proxy.stats().bytesToUpstream;
      await Bun.sleep(200); // (not an assertion on time: gives a leaking proxy the chance to leak)
      expect(proxy.stats().bytesToUpstream).toBe(toUpstream);
      proxy.resume();
      expect(await held).toBe("imok"); // held bytes and the held FIN are delivered on resume

      await waitFor(() => proxy.stats().active === 0, 2_000, "every link to be closed");
    } finally {
      await proxy.close();
    }
    expect(proxy.stats().active).toBe(0);
    expect(await tcpRefused(proxy.port)).toBe(true);
    await proxy.close(); // idempotent
  });

  test("cut(): the client reports suspended, then reconnected with the same session, quickly", async () => {
    await ens.ensemble.waitForQuorum(20_000);
    const proxy = viaMember2.proxy;
    const sessionTimeoutMs = 4_000;
    const client = await connect(viaMember2.withChroot("cut"), sessionTimeoutMs);
    const log = recordStates(client);
    const session = client.sessionId;
    const accepted = proxy.stats().accepted;

    const t0 = performance.now();
    proxy.cut();
    const suspended = await waitForState(log, "suspended", t0, 2_000);
    const reconnected = await waitForState(log, "reconnected", suspended.at, sessionTimeoutMs);
    measured.reconnectAfterCut = Math.round(reconnected.at - t0);
    expect(reconnected.sessionId).toBe(session);
    expect(reconnected.at - t0).toBeLessThan(sessionTimeoutMs);
    expect(firstState(log, "lost")).toBeUndefined();
    expect(proxy.stats().accepted).toBeGreaterThan(accepted); // it came back through the proxy
    expect(await client.exists("/")).not.toBeNull();
  });

  test("stall() past 2/3 of the session timeout: the client notices by itself and, resumed in time, keeps its session", async () => {
    await ens.ensemble.waitForQuorum(20_000);
    const proxy = viaMember2.proxy;
    const sessionTimeoutMs = 4_500; // stall detection at 2/3 = 3 s, checked every 750 ms
    const client = await connect(viaMember2.withChroot("stall-short"), sessionTimeoutMs);
    const log = recordStates(client);
    const session = client.sessionId;
    // Resume the moment the client gives up on the link, so its reconnect finds the session alive.
    const off = client.onState((state) => {
      if (state === "suspended") proxy.resume();
    });

    const t0 = performance.now();
    proxy.stall();
    const suspended = await waitForState(log, "suspended", t0, sessionTimeoutMs + 2_000);
    off();
    measured.stallNoticed = Math.round(suspended.at - t0);
    expect(suspended.sessionId).toBe(session);
    // Noticed by the client itself (the proxy never closes a stalled link), before the session
    // could have expired on the server.
    expect(suspended.at - t0).toBeLessThan(sessionTimeoutMs);
    const reconnected = await waitForState(log, "reconnected", suspended.at, sessionTimeoutMs);
    expect(reconnected.sessionId).toBe(session);
    expect(firstState(log, "lost")).toBeUndefined();
    expect(await client.exists("/")).not.toBeNull();
  });

  test("stall() past the session timeout: lost, then reconnected with a new session after resume()", async () => {
    await ens.ensemble.waitForQuorum(20_000);
    const proxy = viaMember2.proxy;
    const sessionTimeoutMs = 2_000;
    const chroot = uniqueChroot("stall-long");
    const client = await connect(viaMember2.address + chroot, sessionTimeoutMs);
    const observer = await connect(ens.member(1).connectString + chroot, 10_000); // not through the proxy
    const log = recordStates(client);
    const session = client.sessionId;
    await client.create("/mine", text(""), "ephemeral");
    // The server expires the session after the timeout; the ephemeral node goes with it.
    const serverExpired = await whenGone(observer, "/mine", 5 * sessionTimeoutMs);
    const t0 = performance.now();
    proxy.stall();
    const suspended = await waitForState(log, "suspended", t0, 2 * sessionTimeoutMs);
    const lost = await waitForState(log, "lost", suspended.at, 2 * sessionTimeoutMs);
    const expiredAt = await serverExpired();
    measured.stallLongSuspended = Math.round(suspended.at - t0);
    measured.stallLongLost = Math.round(lost.at - t0);
    measured.stallLongServerExpired = Math.round(expiredAt - t0);
    // Lost is counted from the last byte received (≈ when the server last heard from us), so it
    // may come a little before a full timeout after stall() — never before the stall was noticed.
    expect(lost.at).toBeGreaterThanOrEqual(suspended.at);
    expect(lost.at - t0).toBeGreaterThanOrEqual(sessionTimeoutMs / 2);
    expect(proxy.stalled).toBe(true);

    proxy.resume();
    const reconnected = await waitForState(log, "reconnected", lost.at, 2 * sessionTimeoutMs);
    measured.stallLongReconnectAfterResume = Math.round(reconnected.at - lost.at);
    expect(reconnected.sessionId).not.toBe("");
    expect(reconnected.sessionId).not.toBe(session);
    expect(client.sessionId).toBe(reconnected.sessionId);
    await waitFor(async () => (await client.exists("/mine")) === null, 2 * sessionTimeoutMs, "the old session's ephemeral node to be gone");
    await client.create("/mine", text(""), "ephemeral"); // the new session works
  });

  test("block() past the session timeout: lost; after unblock() reconnected with a new session", async () => {
    await ens.ensemble.waitForQuorum(20_000);
    const proxy = viaMember2.proxy;
    const sessionTimeoutMs = 2_000;
    const chroot = uniqueChroot("block");
    const client = await connect(viaMember2.address + chroot, sessionTimeoutMs);
    const observer = await connect(ens.member(1).connectString + chroot, 10_000); // not through the proxy
    const log = recordStates(client);
    const session = client.sessionId;
    await client.create("/mine", text(""), "ephemeral");
    const refused = proxy.stats().refused;

    const serverExpired = await whenGone(observer, "/mine", 5 * sessionTimeoutMs);
    const t0 = performance.now();
    proxy.block();
    const suspended = await waitForState(log, "suspended", t0, 2_000);
    const lost = await waitForState(log, "lost", suspended.at, 2 * sessionTimeoutMs);
    measured.blockLost = Math.round(lost.at - t0);
    expect(lost.at - suspended.at).toBeGreaterThanOrEqual(sessionTimeoutMs - 50); // its own timer
    expect(proxy.stats().refused).toBeGreaterThan(refused); // it kept trying while blocked

    const t1 = performance.now();
    proxy.unblock();
    const reconnected = await waitForState(log, "reconnected", lost.at, 2 * sessionTimeoutMs);
    measured.blockReconnectAfterUnblock = Math.round(reconnected.at - t1);
    expect(reconnected.sessionId).not.toBe("");
    expect(reconnected.sessionId).not.toBe(session);
    // The client may declare `lost` (its own timer, from the moment of the disconnect) a little
    // before the server expires the session (from the last packet it heard).
    measured.blockServerExpired = Math.round((await serverExpired()) - t0);
    await waitFor(async () => (await client.exists("/mine")) === null, 2 * sessionTimeoutMs, "the old session's ephemeral node to be gone");
  });

  test("startProxies(): one proxy per member; blocking two of them steers the client to the third, same session", async () => {
    await ens.ensemble.waitForQuorum(20_000);
    const set = viaAll.proxies;
    expect(set.proxies.map((p) => p.upstream.port)).toEqual(ens.ensemble.members.map((m) => m.clientPort));
    expect(viaAll.connectString).toBe(set.proxies.map((p) => p.address).join(","));
    const sessionTimeoutMs = 5_000;
    const client = await connect(viaAll.withChroot("proxies"), sessionTimeoutMs);
    const log = recordStates(client);
    const session = client.sessionId;

    const t0 = performance.now();
    set.proxy(1).block();
    set.proxy(3).block();
    set.cut();
    const suspended = await waitForState(log, "suspended", t0, 2_000);
    const reconnected = await waitForState(log, "reconnected", suspended.at, sessionTimeoutMs);
    expect(reconnected.sessionId).toBe(session);
    expect(set.proxy(2).stats().active).toBe(1);
    expect(set.proxy(1).stats().active + set.proxy(3).stats().active).toBe(0);
    expect(await client.exists("/")).not.toBeNull();
  });

  // Known defect in src/zk (reported with the harness, not fixed here): node-zookeeper-client
  // clears its connect timeout once TCP connects and then waits for the ConnectResponse forever,
  // and ZkClient arms its stall watch only once a session is open. So a member that accepts TCP
  // but never answers (a SIGSTOPped or wedged JVM; here: a stalled proxy) swallows every
  // connect() that happens to try it first (the library shuffles the servers), although the
  // other members are healthy. Run with `bun test --todo` to reproduce.
  test("connect() reaches a healthy member when the others accept TCP but never answer", async () => {
    await ens.ensemble.waitForQuorum(20_000);
    const set = viaAll.proxies;
    set.proxy(1).stall();
    set.proxy(2).stall();
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, () =>
        ZkClient.connect({ connectString: viaAll.withChroot("blackholed-members"), sessionTimeoutMs: 3_000, connectTimeoutMs: 3_000 }).then(
          (client) => {
            opened.push(client);
            return "connected";
          },
          (error: unknown) => String(error),
        ),
      ),
    );
    expect(outcomes).toEqual(Array.from({ length: 6 }, () => "connected"));
  });

  // Known defect in src/zk (reported with the harness, not fixed here): ZkClient.close() while
  // the library's handshake is in flight (a fresh library: after `lost`, or a connect() that
  // timed out) queues CLOSE_SESSION as the library's first request, xid 0; the ConnectResponse
  // that then arrives is parsed as its reply (its protocolVersion 0 reads as xid 0, the session
  // id's low 32 bits as the error code) and node-zookeeper-client throws "Unknown code: N" from a
  // socket 'data' handler: an uncaught exception that kills the process. Run with `bun test --todo`.
  test("close() during the handshake of a new session does not crash the process", async () => {
    await ens.ensemble.waitForQuorum(20_000);
    const proxy = viaMember2.proxy;
    const client = await ZkClient.connect({
      connectString: viaMember2.withChroot("close-handshake"),
      sessionTimeoutMs: 2_000,
      connectTimeoutMs: 10_000,
    });
    const log = recordStates(client);
    proxy.block();
    await waitForState(log, "lost", -Infinity, 10_000); // a fresh library now builds a new session
    proxy.stall();
    proxy.unblock();
    await waitFor(() => proxy.stats().active >= 1, 5_000, "the new session's handshake to be held by the proxy");
    const closing = client.close();
    proxy.resume(); // the ConnectResponse arrives while the library is CLOSING → bun test reports the throw
    await closing;
    await Bun.sleep(300); // (lets the crash surface inside this test; not a timing assertion)
  });

  // Known defect in src/zk (reported with the harness, not fixed here): `lost` means "disconnected
  // longer than the session timeout", but the timer starts when `suspended` is reported, and a
  // stalled link is only noticed 2/3 of the timeout (plus up to 1/6 more) after the last byte.
  // So the server expires the session (its ephemeral nodes are gone: another agent may take the
  // slot) well before the client says `lost`. Measured above: stallLongServerExpired vs
  // stallLongLost. The timer should run from the last byte received. Run with `bun test --todo`.
  test("a stalled client reports lost no later than the server expires its session", async () => {
    await ens.ensemble.waitForQuorum(20_000);
    const proxy = viaMember2.proxy;
    const sessionTimeoutMs = 2_000;
    const chroot = uniqueChroot("lost-timer");
    const client = await connect(viaMember2.address + chroot, sessionTimeoutMs);
    const observer = await connect(ens.member(1).connectString + chroot, 10_000);
    const log = recordStates(client);
    await client.create("/mine", text(""), "ephemeral");
    const serverExpired = await whenGone(observer, "/mine", 5 * sessionTimeoutMs);
    proxy.stall();
    const lost = await waitForState(log, "lost", -Infinity, 3 * sessionTimeoutMs);
    const expiredAt = await serverExpired();
    proxy.resume(); // end with a settled client (see the todo above for why)
    await waitForState(log, "reconnected", lost.at, 2 * sessionTimeoutMs);
    expect(lost.at).toBeLessThanOrEqual(expiredAt + 250);
  });
});
