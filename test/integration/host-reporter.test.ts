// HostReporter, against a real ZooKeeper. Regression (issue 11): a report equal to the last one
// was handed the reporter's internal chain — a promise that never rejects — so a caller that
// awaited it (e.g. before releasing a slot) saw success although the write had failed.
import { afterEach, describe, expect, test } from "bun:test";
import { HostReporter, type Report } from "../../src/agent/host-reporter.ts";
import { publishApp } from "../../src/apps/publish.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { ZkError } from "../../src/zk/errors.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";
import { testActor } from "../helpers/in-process-fleet.ts";

const zookeeper = useZooKeeper();
const clients: ZkClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

describe("HostReporter", () => {
  test("the same report twice while its write fails: both callers see the failure", async () => {
    const connect = zookeeper.withChroot("reporter-dup");
    const zk = await ZkClient.connect({ connectString: connect, connectTimeoutMs: 10_000 });
    clients.push(zk);
    await publishApp(zk, "web", "1.0", { getVersionCmd: "true", deployCmd: "true" }, testActor);
    const refused = (path: string): Promise<never> => Promise.reject(new ZkError("noAuth", "not authorised", path));
    zk.set = (path) => refused(path);
    zk.create = (path) => refused(path);
    const reporter = new HostReporter(
      zk,
      "web",
      "h1",
      () => new Date(),
      async () => true,
    );
    const report: Report = { state: "current", version: "1.0", target: "1.0", rolloutId: "rabc12345" };
    const first = reporter.report(report);
    const second = reporter.report(report); // equal to the last: shares its write
    await expect(first).rejects.toThrow("not authorised");
    await expect(second).rejects.toThrow("not authorised");
    // And once that write has failed, the same report is written (and refused) again.
    await expect(reporter.report(report)).rejects.toThrow("not authorised");
  });
});
