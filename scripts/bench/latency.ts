import { publishApp } from "../../src/apps/publish.ts";
import { ZkClient } from "../../src/zk/client.ts";
import type { ZooKeeperServer } from "../../test/harness/zookeeper.ts";
import { until } from "./rollout.ts";
import { SLEEP_COMMANDS, startSleepFleet } from "./sleep-fleet.ts";
import { percentile } from "../../test/harness/percentile.ts";
import { type Quantiles, quantiles, round } from "./stats.ts";
import { type Transport, clientOptions, plainTransport } from "./transport.ts";

/** Publish → first deploy start, over `publishes` publishes to a small in-process fleet. */
export async function publishToFirstDeploy(
  server: ZooKeeperServer,
  publishes: number,
  transport: Transport = plainTransport(server),
): Promise<Quantiles> {
  return quantiles(await publishToFirstDeploySamples(transport, publishes));
}

/** The samples of publishToFirstDeploy (ms), to pool runs of one transport. */
export async function publishToFirstDeploySamples(transport: Transport, publishes: number): Promise<number[]> {
  const options = clientOptions(transport, `/bench-latency-${Math.random().toString(36).slice(2, 8)}`);
  const admin = await ZkClient.connect({ ...options, connectTimeoutMs: 30_000 });
  const hosts = 5;
  const fleet = await startSleepFleet(options.connectString, hosts, 5, options.tls);
  const ctx = { actor: "bench", now: () => new Date() };
  const samples: number[] = [];
  try {
    await publishApp(admin, "lat", "0", { slots: hosts, ...SLEEP_COMMANDS }, ctx);
    await until(() => fleet.log.times("deploy succeeded").length >= hosts, 60_000, "warm-up");
    for (let i = 1; i <= publishes; i++) {
      await Bun.sleep(20);
      fleet.log.clear();
      const t0 = performance.now();
      await publishApp(admin, "lat", String(i), {}, ctx);
      await until(() => fleet.log.times("deploy succeeded").length >= hosts, 60_000, `publish ${i}`);
      samples.push(Math.min(...fleet.log.times("deploy started")) - t0);
    }
    return samples;
  } finally {
    await fleet.stop();
    await admin.deleteRecursive("/apps").catch(() => undefined);
    await admin.close();
  }
}

/** One ZooKeeper write round trip on loopback: median of create+delete pairs, per op. */
export async function zkWriteRtt(server: ZooKeeperServer, iterations: number): Promise<number> {
  const zk = await ZkClient.connect({ connectString: `${server.connectString}/bench-floor`, connectTimeoutMs: 30_000 });
  const perOp: number[] = [];
  try {
    for (let i = 0; i < iterations; i++) {
      const t0 = performance.now();
      await zk.create("/x");
      await zk.delete("/x");
      perOp.push((performance.now() - t0) / 2);
    }
    return round(percentile(perOp, 50), 3);
  } finally {
    await zk.close();
  }
}
