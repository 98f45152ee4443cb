// The slot ramp's completion markers live in one directory per rollout (done/<rolloutId>/<host>),
// so admission counts a rollout's completed hosts from that directory's child count — one small
// read at any fleet size — instead of listing every marker of every host (O(N) per admission,
// O(N²) per rollout). Against a real ZooKeeper: the marker (and its directory, and done/ itself
// when deleted by hand) is created by the host that completes; admission's limit follows the
// count; a new publish prunes older rollouts' directories (and flat markers of earlier agent
// versions); `host forget` removes a host's marker.
import { afterEach, describe, expect, test } from "bun:test";
import { appAdmission } from "../../src/agent/admission.ts";
import { HostReporter } from "../../src/agent/host-reporter.ts";
import { forgetHost } from "../../src/apps/forget-host.ts";
import { publishApp } from "../../src/apps/publish.ts";
import { readApp } from "../../src/apps/read-app.ts";
import { repairAppLayout } from "../../src/zk/app-layout.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { doneDir, doneMarkerPath, doneRolloutDir } from "../../src/zk/paths.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";
import { testActor } from "../helpers/in-process-fleet.ts";

const zookeeper = useZooKeeper();
const clients: ZkClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

async function client(prefix: string): Promise<ZkClient> {
  const c = await ZkClient.connect({ connectString: zookeeper.withChroot(prefix) });
  clients.push(c);
  return c;
}

const reporter = (zk: ZkClient, host: string): HostReporter =>
  new HostReporter(
    zk,
    "web",
    host,
    () => new Date(),
    async () => (await repairAppLayout(zk, "web")).length >= 0,
  );

const RAMP = { getVersionCmd: "true", deployCmd: "true", slots: 1, slotIncrement: 2 };

async function limit(zk: ZkClient, host: string): Promise<number> {
  const admission = await appAdmission(zk, "web", host)(() => undefined);
  if ("blocked" in admission) throw new Error(`blocked: ${admission.blocked}`);
  return admission.limit;
}

describe("done markers: one directory per rollout", () => {
  test("each completion is one child of the rollout's directory; admission's ramp counts them without a listing", async () => {
    const zk = await client("done-count");
    await publishApp(zk, "web", "1.0", RAMP, testActor);
    const { spec } = await readApp(zk, "web");
    expect(await limit(zk, "h9")).toBe(1);
    await reporter(zk, "h1").recordDone(spec.rolloutId);
    await reporter(zk, "h2").recordDone(spec.rolloutId);
    await reporter(zk, "h2").recordDone(spec.rolloutId); // twice: still one marker
    expect((await zk.children(doneRolloutDir("web", spec.rolloutId))).sort()).toEqual(["h1", "h2"]);
    // slots 1 + (2 − 1) × 2 completed
    expect(await limit(zk, "h9")).toBe(3);
    // Counted, not listed: admission reads no child list of done/ or of the rollout's directory.
    const listed: string[] = [];
    const children = zk.children.bind(zk);
    zk.children = (path, watcher) => {
      listed.push(path);
      return children(path, watcher);
    };
    expect(await limit(zk, "h9")).toBe(3);
    zk.children = children;
    expect(listed.filter((p) => p.startsWith(doneDir("web")))).toEqual([]);
  });

  test("done/ deleted by hand: the completing host re-creates it and the rollout's directory", async () => {
    const zk = await client("done-repair");
    await publishApp(zk, "web", "1.0", RAMP, testActor);
    const { spec } = await readApp(zk, "web");
    await zk.deleteRecursive(doneDir("web"));
    await reporter(zk, "h1").recordDone(spec.rolloutId);
    expect(await zk.exists(doneMarkerPath("web", spec.rolloutId, "h1"))).not.toBeNull();
    expect(await limit(zk, "h9")).toBe(2);
  });

  test("a new publish prunes older rollouts' directories and earlier agents' flat markers; `host forget` removes a host's marker", async () => {
    const zk = await client("done-prune");
    await publishApp(zk, "web", "1.0", RAMP, testActor);
    const first = (await readApp(zk, "web")).spec.rolloutId;
    await reporter(zk, "h1").recordDone(first);
    await zk.create(`${doneDir("web")}/${first}-h3`); // an agent of an earlier version
    await publishApp(zk, "web", "2.0", RAMP, testActor);
    const second = (await readApp(zk, "web")).spec.rolloutId;
    await reporter(zk, "h1").recordDone(second);
    await reporter(zk, "h2").recordDone(second);
    // The prune runs with the publish; what is left is the current rollout only.
    await publishApp(zk, "web", "3.0", RAMP, testActor);
    const third = (await readApp(zk, "web")).spec.rolloutId;
    expect(await zk.children(doneDir("web"))).toEqual([]);
    await reporter(zk, "h1").recordDone(third);
    await reporter(zk, "h2").recordDone(third);
    const forgotten = await forgetHost(zk, "h2", testActor);
    expect(forgotten.apps).toEqual([{ app: "web", removed: expect.arrayContaining([doneMarkerPath("web", third, "h2")]) }]);
    expect(await zk.children(doneRolloutDir("web", third))).toEqual(["h1"]);
  });
});
