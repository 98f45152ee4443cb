// The floor under `bun run bench --scale`: what this machine gives any slot queue at N hosts.
// The same processes as the scale run (two crowded workers, SENTINELS sessions in a third), but
// bare ZooKeeper sessions instead of agents (scale-floor-worker.ts): on a publish each reads the
// app node, creates a ticket with the queue directory read behind it, and ticket 0 admits
// itself with one transaction — three round trips after the notification, the least a queue
// that is FIFO, safe by compare-and-set and told of a rollout by a watch can do. No agent logic,
// no status, no deploy: if this floor is already above a target, no queue code meets the target
// on this machine.

import { ZkClient } from "../../src/zk/client.ts";
import { waitForStrict } from "../../test/harness/wait.ts";
import type { ZooKeeperServer } from "../../test/harness/zookeeper.ts";
import { startWorkers } from "./worker-pool.ts";
import { epochMs } from "./event-lines.ts";
import { type Quantiles, quantiles } from "./stats.ts";

export interface FloorResult {
  hosts: number;
  /** Publish → the first admission's transaction answered (ms). */
  firstAdmissionMs: Quantiles;
  /** Publish → every session's ticket created and its queue read answered (ms). */
  allQueuedMs: Quantiles;
}

const WORKER = new URL("./scale-floor-worker.ts", import.meta.url).pathname;

/** `rounds` publishes to `hosts` bare sessions; one fresh queue directory per round. */
export async function floorRun(server: ZooKeeperServer, hosts: number, rounds: number): Promise<FloorResult> {
  const connectString = `${server.connectString}/floor-${hosts}-${Math.random().toString(36).slice(2, 7)}`;
  const admin = await ZkClient.connect({ connectString, connectTimeoutMs: 60_000, operationTimeoutMs: 120_000, createChroot: true });
  await admin.create("/app", Buffer.from("0"));
  await admin.create("/leases");
  const fleet = await startWorkers(WORKER, connectString, hosts, 2, []);
  const firsts: number[] = [];
  const alls: number[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      await admin.create(`/lock-${round}`);
      await Bun.sleep(500);
      fleet.events.length = 0;
      const t0 = epochMs(); // the clock the workers stamp their events with
      await admin.set("/app", Buffer.from(String(round)));
      const queued = (): number[] => fleet.events.filter((e) => e.m === "queued").map((e) => e.t);
      await waitForStrict(() => queued().length >= hosts && fleet.events.some((e) => e.m === "admitted"), 300_000, `floor round ${round}`);
      firsts.push(Math.min(...fleet.events.filter((e) => e.m === "admitted").map((e) => e.t)) - t0);
      alls.push(Math.max(...queued()) - t0);
    }
  } finally {
    await fleet.stop();
    for (const child of await admin.children("/").catch(() => [])) await admin.deleteRecursive(`/${child}`).catch(() => undefined);
    await admin.close();
  }
  return { hosts, firstAdmissionMs: quantiles(firsts), allQueuedMs: quantiles(alls) };
}
