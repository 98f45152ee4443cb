// The slot queue alone, without agents: W waiters (each its own ZooKeeper session, in this
// process) queued behind a limit of 0, then the limit raised to W at once — the first wave of
// a rollout, or `set-slots` widening. The time from the raise until every waiter holds a lease,
// with bulk admission (a head admits the waiters behind it in its own transaction) and without
// (one admission at a time, each the next waiter's wake-up, reads and transaction), rounds of
// the two interleaved in one run. Waiters do nothing else, so this is the queue's own cost, not
// the agents' (bench --scale, where thousands of agents share two cores).

import { ZkClient } from "../../src/zk/client.ts";
import type { Lease, ReadAdmission } from "../../src/zk/recipes/semaphore.ts";
import { Semaphore } from "../../src/zk/recipes/semaphore.ts";
import { waitForStrict } from "../../test/harness/wait.ts";
import { inBatches } from "./in-batches.ts";
import { type Quantiles, quantiles } from "./stats.ts";

export interface BurstResult {
  waiters: number;
  /** Raise → every waiter holding a lease (ms), one admission at a time. */
  singleMs: Quantiles;
  /** The same with bulk admission. */
  bulkMs: Quantiles;
  /** Admission transactions (marker writes) per burst, p50: W with single, a few with bulk. */
  admissions: { single: number; bulk: number };
}

/** One burst on fresh nodes under `dir`: the raise → all admitted time, and the marker writes. */
async function burst(admin: ZkClient, clients: ZkClient[], dir: string, bulk: boolean): Promise<{ ms: number; admissions: number }> {
  const app = `${dir}/app`;
  const lockDir = `${dir}/lock`;
  const leasesDir = `${dir}/leases`;
  await admin.mkdirp(lockDir);
  await admin.mkdirp(leasesDir);
  await admin.mkdirp(app);
  await admin.set(app, Buffer.from(JSON.stringify({ limit: 0, bulk })));
  let headWaits = 0;
  const acquired = clients.map((zk, i) => {
    const readAdmission: ReadAdmission = async (wake) => {
      const value = JSON.parse((await zk.get(app, wake)).data.toString("utf8")) as { limit: number; bulk: boolean };
      return { limit: value.limit, bulk: value.bulk };
    };
    const semaphore = new Semaphore({
      queue: "ticket",
      zk,
      lockDir,
      leasesDir,
      owner: `w${i}`,
      readAdmission,
      onWaiting: (position) => {
        if (position === 1) headWaits++;
      },
    });
    return semaphore.acquire(Buffer.from(`w${i}`));
  });
  await waitForStrict(
    async () => (await admin.exists(lockDir))?.numChildren === clients.length && headWaits > 0,
    120_000,
    "every waiter to queue",
  );
  const before = (await admin.exists(lockDir))?.version ?? 0;
  const t0 = performance.now();
  await admin.set(app, Buffer.from(JSON.stringify({ limit: clients.length, bulk })));
  const leases: Lease[] = await Promise.all(acquired);
  const ms = performance.now() - t0;
  const admissions = ((await admin.exists(lockDir))?.version ?? 0) - before;
  await Promise.all(leases.map((lease) => lease.release()));
  await admin.deleteRecursive(dir);
  return { ms, admissions };
}

export async function burstAdmission(connectString: string, waiters: number, rounds: number): Promise<BurstResult> {
  const chrooted = `${connectString}/burst-${Math.random().toString(36).slice(2, 7)}`;
  const admin = await ZkClient.connect({ connectString: chrooted, createChroot: true, operationTimeoutMs: 120_000 });
  const clients: ZkClient[] = [];
  try {
    clients.push(
      ...(await inBatches(waiters, 100, () =>
        ZkClient.connect({ connectString: chrooted, sessionTimeoutMs: 60_000, operationTimeoutMs: 120_000 }),
      )),
    );
    const single: { ms: number; admissions: number }[] = [];
    const bulk: { ms: number; admissions: number }[] = [];
    await burst(admin, clients, "/warm-up", true);
    for (let round = 0; round < rounds; round++) {
      single.push(await burst(admin, clients, `/single-${round}`, false));
      bulk.push(await burst(admin, clients, `/bulk-${round}`, true));
    }
    return {
      waiters,
      singleMs: quantiles(single.map((r) => r.ms)),
      bulkMs: quantiles(bulk.map((r) => r.ms)),
      admissions: {
        single: quantiles(single.map((r) => r.admissions)).p50,
        bulk: quantiles(bulk.map((r) => r.admissions)).p50,
      },
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await admin.close();
  }
}
