// Watches an app's lease nodes from outside (polling, so that it never depends on a watch that a
// fault may have cut): which hosts hold a slot at each moment, and since when each lease exists
// (its ZooKeeper ctime). The fault checker uses it to tell a deploy that lost its session (its
// host's lease vanished, or was re-created after the deploy began) from one that did not.
//
// Each read is sent right behind a read barrier (./read-barrier.ts), so it sees every write
// acknowledged to anyone before the observation's `sendAt`. Without it, a read served by a
// follower that has not yet applied an agent's lease create (the agent on another server of
// the ensemble) would show that host without a lease while its deploy already runs — a
// violation that never happened.

import type { ZkClient } from "../../src/zk/client.ts";
import { isConnectivity, isNoNode } from "../../src/zk/errors.ts";
import { leasesDir } from "../../src/zk/paths.ts";
import { parseQueueNode } from "../../src/zk/recipes/queue-node.ts";
import type { LeaseObservation } from "./fault-log.ts";
import { readBarrier } from "./read-barrier.ts";

export class LeaseMonitor {
  private readonly ctimes = new Map<string, number>();
  private stopped = false;
  private loop: Promise<void> | undefined;
  private recorded: LeaseObservation[] = [];
  /** Most leases seen at once. */
  maxLeases = 0;
  /** The first error that was not ZooKeeper being unavailable or the app deleted. */
  private failure: unknown;

  constructor(
    private readonly zk: ZkClient,
    private readonly app: string,
    private readonly intervalMs = 40,
  ) {}

  /** Every successful read, oldest first. Throws once a read failed for another reason than
   *  ZooKeeper being unavailable or the app deleted (the barrier refused): a monitor that saw
   *  nothing must never pass for one that saw no loss. */
  get observations(): readonly LeaseObservation[] {
    if (this.failure !== undefined) throw new Error(`the lease monitor failed: ${String(this.failure)}`);
    return this.recorded;
  }

  start(): void {
    this.stopped = false;
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.loop = undefined;
  }

  /** Forget observations older than `before` (epoch ms): chaos rounds keep memory flat. */
  trim(before: number): void {
    this.recorded = this.recorded.filter((o) => o.recvAt >= before);
    this.maxLeases = 0;
  }

  private async run(): Promise<void> {
    const dir = leasesDir(this.app);
    while (!this.stopped) {
      const sendAt = Date.now();
      try {
        const [covered, names] = await Promise.all([readBarrier(this.zk), this.zk.children(dir)]);
        if (!covered) continue; // the barrier node was just made: read again behind it
        const fresh = names.filter((n) => !this.ctimes.has(n));
        const stats = await Promise.all(fresh.map((n) => this.zk.exists(`${dir}/${n}`).catch(() => null)));
        fresh.forEach((n, i) => {
          const stat = stats[i];
          if (stat) this.ctimes.set(n, stat.ctimeMs);
        });
        const recvAt = Date.now();
        this.recorded.push({
          sendAt,
          recvAt,
          leases: names.map((n) => ({ host: parseQueueNode(n)?.host ?? n, ctime: this.ctimes.get(n) })),
        });
        this.maxLeases = Math.max(this.maxLeases, names.length);
      } catch (error) {
        // ZooKeeper unavailable or the app deleted: no observation this time. Anything else
        // (the barrier refused) would leave the checker blind: `observations` throws it.
        if (!isConnectivity(error) && !isNoNode(error)) this.failure ??= error;
      }
      await Bun.sleep(this.intervalMs);
    }
  }
}
