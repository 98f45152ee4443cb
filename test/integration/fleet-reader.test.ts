// The watch-mode reader behind `app create --wait`, `app wait` and `status --watch`: after its
// session is lost and a new one is made, it must hear about the nodes it already knew.
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type Proxy, startProxy } from "../../scripts/lib/tcp-proxy.ts";
import { FleetReader } from "../../src/apps/fleet-reader.ts";
import { publishApp } from "../../src/apps/publish.ts";
import { encodeZnode } from "../../src/config/decode.ts";
import { AgentInfo, HostStatus } from "../../src/config/payloads.ts";
import { type ConnectionState, ZkClient } from "../../src/zk/client.ts";
import { agentPath, hostStatusPath } from "../../src/zk/paths.ts";
import { testActor } from "../helpers/in-process-fleet.ts";
import { waitFor } from "../helpers/wait.ts";
import { useZooKeeper } from "../helpers/zookeeper.ts";

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
    const proxy: Proxy = await startProxy(zookeeper.port);
    cleanups.push(() => proxy.close());

    const { spec } = await publishApp(admin, "web", "1.0", { getVersionCmd: "cat VERSION", deployCmd: "true" }, testActor);
    const info = encodeZnode(AgentInfo, { groups: [], agentVersion: "test", pid: 1, startedAt: new Date().toISOString() });
    await admin.mkdirp("/agents");
    await admin.create(agentPath("h1"), info, "ephemeral");
    await admin.create(hostStatusPath("web", "h1"), status("queued", "0.9", spec.rolloutId));

    const client = await ZkClient.connect({ connectString: proxy.address + direct.replace(/^[^/]+/, ""), sessionTimeoutMs: 2_000, connectTimeoutMs: 10_000 });
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
});
