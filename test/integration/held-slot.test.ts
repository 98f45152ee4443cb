// HeldSlot (src/agent/held-slot.ts), the slot of a deploy that runs, against a real ZooKeeper:
// its lease is replaced, never dropped, whatever happens to the node.
import { afterEach, expect, test } from "bun:test";
import { HeldSlot } from "../../src/agent/held-slot.ts";
import type { Logger } from "../../src/agent/logger.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { Semaphore } from "../../src/zk/recipes/semaphore.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";

const zk = useZooKeeper();

const LOCK = "/apps/t/lock";
const LEASES = "/apps/t/leases";
const RE_CREATED = "lease deleted by someone else while its deploy runs; re-created";

const opened: ZkClient[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

async function connect(connectString: string): Promise<ZkClient> {
  const client = await ZkClient.connect({ connectString });
  opened.push(client);
  return client;
}

// Was a bug: a directory made again numbers its children from 0, and a lease name is the host,
// the session and that number — so the re-created lease could take exactly the name of the one
// it replaced, and "release the replaced lease" then deleted the new one. The deploy ran with
// no lease until the watch re-created it a second time (the fault suite saw leases/ empty just
// after the first "re-created").
test("leases/ deleted by hand: the lease is re-created once and kept, even under the name of the one it replaces", async () => {
  const connectString = zk.withChroot("held-slot");
  const admin = await connect(connectString);
  await admin.mkdirp(LOCK);
  await admin.mkdirp(LEASES);
  const client = await connect(connectString);
  const semaphore = new Semaphore({ zk: client, lockDir: LOCK, leasesDir: LEASES, owner: "h1", readAdmission: async () => ({ limit: 1 }) });
  const data = Buffer.from("{}", "utf8");
  const warnings: string[] = [];
  let firstWarning: () => void = () => undefined;
  const warned = new Promise<void>((resolve) => {
    firstWarning = resolve;
  });
  const log: Logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: (message) => {
      warnings.push(message);
      firstWarning();
    },
    error: (message) => warnings.push(`ERROR ${message}`),
  };
  const slot = HeldSlot.held(await semaphore.acquire(data), data, {
    zk: client,
    semaphore,
    log,
    repairLayout: async () => {
      await client.mkdirp(LEASES);
      return true;
    },
  });
  const replaced = slot.name;

  await admin.deleteRecursive(LEASES); // the lease's watch fires: restored at once
  await warned;
  // Restores run one at a time: this one starts once the watch's has ended (the replaced lease
  // released), and re-creates nothing while the slot's lease exists.
  await slot.restore("re-created once more", true);

  expect(slot.name).toBe(replaced); // the case under test: the new node took the old name
  expect(warnings).toEqual([RE_CREATED]);
  expect(await admin.children(LEASES)).toEqual([slot.name]);
  await slot.release();
  expect(await admin.children(LEASES)).toEqual([]);
});
