// `app delete` removes the app's subtree in one transaction: whoever watches the app sees the
// whole app, then nothing. Deleted node by node, an app's leases/ emptied while its queue still
// waited admitted hosts into the app being deleted (CI caught it: 5 deploys at once with 2
// slots), and agents fought the deletion re-creating directories they missed.
import { afterEach, describe, expect, test } from "bun:test";
import { deleteApp } from "../../src/apps/delete-app.ts";
import { publishApp } from "../../src/apps/publish.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { ZkError } from "../../src/zk/errors.ts";
import { appPath, hostStatusPath, leasesDir, lockDir } from "../../src/zk/paths.ts";
import { waitFor } from "../harness/wait.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";
import { testActor } from "../helpers/in-process-fleet.ts";

const zookeeper = useZooKeeper();
const clients: ZkClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

async function client(connect: string): Promise<ZkClient> {
  const c = await ZkClient.connect({ connectString: connect, connectTimeoutMs: 10_000 });
  clients.push(c);
  return c;
}

describe("app delete", () => {
  test("the first change any watcher sees is the whole app gone: a lease watch fires only once the app node is gone too", async () => {
    const connect = zookeeper.withChroot("delete-atomic");
    const admin = await client(connect);
    const agent = await client(connect);
    await publishApp(admin, "web", "1.0", { getVersionCmd: "true", deployCmd: "true" }, testActor);
    await agent.create(`${leasesDir("web")}/h1-${agent.sessionId}-`, Buffer.from("{}"), "ephemeralSequential");
    await agent.create(`${lockDir("web")}/h2-${agent.sessionId}-`, Buffer.alloc(0), "ephemeralSequential");
    await admin.create(hostStatusPath("web", "h1"), Buffer.from("{}"));
    // A deleter that stops after its first single delete: node by node, the watcher would see
    // leases/ change while the app still exists.
    let released: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (released = resolve));
    const deleteOne = admin.delete.bind(admin);
    let singleDeletes = 0;
    admin.delete = async (path, version) => {
      await deleteOne(path, version);
      if (++singleDeletes === 1) await gate;
    };
    let appWhenLeasesChanged: "exists" | "gone" | undefined;
    await agent.children(leasesDir("web"), () => {
      void agent.exists(appPath("web")).then((stat) => (appWhenLeasesChanged = stat === null ? "gone" : "exists"));
    });
    const deleting = deleteApp(admin, "web");
    await waitFor(() => appWhenLeasesChanged, 10_000, "the leases watch");
    released();
    await deleting;
    expect(appWhenLeasesChanged).toBe("gone");
    expect(singleDeletes).toBe(0);
    expect(await admin.exists(appPath("web"))).toBeNull();
  });

  test("the connection lost during the delete transaction (a server died mid-command): tried again once reconnected; applied or not, the app is deleted, not 'does not exist'", async () => {
    const connect = zookeeper.withChroot("delete-lost");
    const admin = await client(connect);
    for (const [app, applied] of [
      ["applied", true],
      ["unapplied", false],
    ] as const) {
      await publishApp(admin, app, "1.0", { getVersionCmd: "true", deployCmd: "true" }, testActor);
      // The first commit's answer is lost: after applying it (the reply never came) or before
      // it reached the server.
      const transaction = admin.transaction.bind(admin);
      let commits = 0;
      admin.transaction = () => {
        const txn = transaction();
        const commit = txn.commit.bind(txn);
        txn.commit = async () => {
          if (++commits > 1) return commit();
          if (applied) await commit();
          throw new ZkError("connectionLoss", "connection to ZooKeeper lost (test)", appPath(app));
        };
        return txn;
      };
      await deleteApp(admin, app);
      admin.transaction = transaction;
      expect(commits).toBe(applied ? 1 : 2);
      expect(await admin.exists(appPath(app))).toBeNull();
    }
  });

  test("deleting an app that does not exist is AppNotFound", async () => {
    const connect = zookeeper.withChroot("delete-missing");
    const admin = await client(connect);
    await expect(deleteApp(admin, "nope")).rejects.toThrow('app "nope" does not exist');
  });
});
