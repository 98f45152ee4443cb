// The watch-mode reader behind `app create --wait`, `app wait` and `status --watch`: after its
// session is lost and a new one is made, it must hear about the nodes it already knew.
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type Proxy as TcpProxy, startProxy } from "../harness/tcp-proxy.ts";
import { FleetReader } from "../../src/apps/fleet-reader.ts";
import { evaluateRollout } from "../../src/apps/rollout-wait.ts";
import { aclIdentities, lockTree } from "../../src/apps/tree-acl.ts";
import { OperationError } from "../../src/apps/errors.ts";
import { pauseApp, rollbackApp } from "../../src/apps/operator-actions.ts";
import { publishApp } from "../../src/apps/publish.ts";
import { encodeZnode } from "../../src/config/decode.ts";
import { AgentInfo, HostStatus } from "../../src/config/payloads.ts";
import { type ConnectionState, ZkClient } from "../../src/zk/client.ts";
import { isNoAuth } from "../../src/zk/errors.ts";
import { agentPath, failurePath, hostStatusPath } from "../../src/zk/paths.ts";
import { testActor } from "../helpers/in-process-fleet.ts";
import { waitFor } from "../harness/wait.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";

setDefaultTimeout(60_000);
const zookeeper = useZooKeeper();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function status(state: HostStatus["state"], version: string, rolloutId: string): Buffer {
  const at = new Date().toISOString();
  return encodeZnode(HostStatus, { state, version, target: "1.0", rolloutId, since: at, updatedAt: at });
}

describe("FleetReader in watch mode", () => {
  test("after a session loss, a change to a host it already knew is seen (its watch is set again)", async () => {
    const direct = zookeeper.withChroot("reader-lost");
    const admin = await ZkClient.connect({ connectString: direct, connectTimeoutMs: 10_000 });
    cleanups.push(() => admin.close());
    const proxy: TcpProxy = await startProxy(zookeeper.port);
    cleanups.push(() => proxy.close());

    const { spec } = await publishApp(admin, "web", "1.0", { getVersionCmd: "cat VERSION", deployCmd: "true" }, testActor);
    const info = encodeZnode(AgentInfo, { groups: [], agentVersion: "test", pid: 1, startedAt: new Date().toISOString() });
    await admin.mkdirp("/agents");
    await admin.create(agentPath("h1"), info, "ephemeral");
    await admin.create(hostStatusPath("web", "h1"), status("queued", "0.9", spec.rolloutId));

    const client = await ZkClient.connect({
      connectString: proxy.address + direct.replace(/^[^/]+/, ""),
      sessionTimeoutMs: 2_000,
      connectTimeoutMs: 10_000,
    });
    cleanups.push(() => client.close());
    const states: ConnectionState[] = [];
    client.onState((s) => states.push(s));
    let changes = 0;
    const reader = new FleetReader(client, { app: "web", watch: true, onChange: () => (changes += 1) });
    cleanups.push(async () => reader.stop());
    await reader.load();
    const hostState = (): string | undefined => reader.snapshot().apps[0]?.hosts.find((h) => h.host === "h1")?.state;
    expect(hostState()).toBe("queued");

    // Refused connections for longer than the session timeout: the session (and every watch) is
    // lost; then the network heals and the client makes a new session.
    proxy.block();
    await waitFor(() => states.includes("lost"), 10_000, "the session to be lost");
    proxy.unblock();
    await waitFor(() => states.includes("reconnected") && changes > 0, 15_000, "a new session and the reader's reload");

    await admin.set(hostStatusPath("web", "h1"), status("current", "1.0", spec.rolloutId));
    await waitFor(() => hostState() === "current", 5_000, "the reader to see h1 current");
    expect(reader.snapshot().apps[0]?.state).toBe("converged");
  });
  test("a reload refused after the tree was locked (acl init) ends the watch with that error, not an unhandled rejection", async () => {
    const direct = zookeeper.withChroot("reader-noauth");
    const adminId = { user: "admin", password: "a-long-admin-secret" };
    const admin = await ZkClient.connect({ connectString: direct, connectTimeoutMs: 10_000, credentials: [adminId] });
    cleanups.push(() => admin.close());
    const { spec } = await publishApp(admin, "web", "1.0", { getVersionCmd: "cat VERSION", deployCmd: "true" }, testActor);
    await admin.create(hostStatusPath("web", "h1"), status("queued", "0.9", spec.rolloutId));
    const proxy = await startProxy(zookeeper.port);
    cleanups.push(() => proxy.close());
    const anonymous = await ZkClient.connect({ connectString: proxy.address + direct.replace(/^[^/]+/, ""), connectTimeoutMs: 10_000 });
    cleanups.push(() => anonymous.close());
    let changes = 0;
    const reader = new FleetReader(anonymous, { app: "web", watch: true, onChange: () => (changes += 1) });
    cleanups.push(async () => reader.stop());
    await reader.load();
    expect(reader.snapshot().apps[0]?.hosts).toHaveLength(1);

    await lockTree(admin, aclIdentities({ digest: adminId }, { digest: { user: "agent", password: "a-long-agent-secret" } }));
    // ZooKeeper does not notify a watcher that lost READ; the reader finds out when it reloads
    // (after a reconnect), and that reload is refused.
    proxy.cut();
    let thrown: unknown;
    await waitFor(
      () => {
        try {
          reader.snapshot();
          return false;
        } catch (error) {
          thrown = error;
          return true;
        }
      },
      5_000,
      "the refused re-read to surface",
    );
    expect(changes).toBeGreaterThan(0);
    expect(isNoAuth(thrown)).toBe(true);
  });
});

describe("publish, halt and rollback details", () => {
  test("re-publishing the live version keeps the real previous version (rollback still has somewhere to go)", async () => {
    const admin = await ZkClient.connect({ connectString: zookeeper.withChroot("republish"), connectTimeoutMs: 10_000 });
    cleanups.push(() => admin.close());
    const commands = { getVersionCmd: "cat VERSION", deployCmd: "true" };
    await publishApp(admin, "web", "1.0", commands, testActor);
    await publishApp(admin, "web", "1.1", {}, testActor);
    const again = await publishApp(admin, "web", "1.1", {}, testActor);
    expect(again.spec.previousVersion).toBe("1.0");
    expect((await rollbackApp(admin, "web", undefined, testActor)).version).toBe("1.0");
  });

  test("rollback of a given rollout refuses once another rollout replaced it (nothing written)", async () => {
    const admin = await ZkClient.connect({ connectString: zookeeper.withChroot("rollback-guard"), connectTimeoutMs: 10_000 });
    cleanups.push(() => admin.close());
    await publishApp(admin, "web", "1.0", { getVersionCmd: "cat VERSION", deployCmd: "true" }, testActor);
    const { spec: failing } = await publishApp(admin, "web", "2.0", {}, testActor);
    const { spec: newer } = await publishApp(admin, "web", "2.1", {}, testActor);
    const refused = await rollbackApp(admin, "web", failing.previousVersion, testActor, failing.rolloutId).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OperationError);
    expect(String(refused)).toMatch(/published again .*now 2\.1.*not rolling it back/);
    const reader = new FleetReader(admin, { app: "web" });
    await reader.load();
    expect(reader.snapshot().apps[0]?.rolloutId).toBe(newer.rolloutId);
  });

  test("a halted rollout that is also paused is still halted for --wait (state paused, halted true)", async () => {
    const admin = await ZkClient.connect({ connectString: zookeeper.withChroot("paused-halt"), connectTimeoutMs: 10_000 });
    cleanups.push(() => admin.close());
    const { spec } = await publishApp(admin, "web", "1.0", { getVersionCmd: "cat VERSION", deployCmd: "false" }, testActor);
    await admin.create(
      failurePath("web", spec.rolloutId, "h1"),
      Buffer.from(JSON.stringify({ exitCode: 1, at: new Date().toISOString(), error: "deploy-cmd exited with code 1" })),
    );
    await admin.create(hostStatusPath("web", "h1"), status("failed", "0.9", spec.rolloutId));
    await pauseApp(admin, "web", testActor);
    const reader = new FleetReader(admin, { app: "web" });
    await reader.load();
    const view = reader.snapshot().apps[0];
    expect(view?.state).toBe("paused");
    expect(view?.halted).toBe(true);
    expect(evaluateRollout(view, spec.rolloutId)?.kind).toBe("halted");
  });
});
