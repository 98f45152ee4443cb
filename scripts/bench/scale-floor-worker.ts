// One process of the scale bench's floor (scale-floor.ts): N bare ZooKeeper sessions that do on
// a publish only what any slot queue must — no agent, no semaphore, no status. Each watches the
// app node; when it changes: read it (re-arming the watch), create a ticket in that rollout's
// queue directory with the directory read right behind (the marker: one round trip, as the
// ticket queue does), and the session that drew ticket 0 admits itself with one compare-and-set
// transaction (a lease, its ticket deleted). One JSON line per event:
// {"ready":n}, then {"t":<epoch ms>,"m":"queued"|"admitted"}.
//
//   bun scripts/bench/scale-floor-worker.ts <connect> <sessions> <offset>

import { ZkClient } from "../../src/zk/client.ts";
import type { Watcher } from "../../src/zk/watchers.ts";
import { emit, epochMs, flush } from "./event-lines.ts";
import { inBatches } from "./in-batches.ts";

const [connectString = "", sessionsText = "0", offsetText = "0"] = process.argv.slice(2);
const sessions = Number(sessionsText);
const offset = Number(offsetText);
const APP = "/app";

async function onPublish(zk: ZkClient, id: number, watcher: Watcher): Promise<void> {
  const round = (await zk.get(APP, watcher)).data.toString("utf8");
  const lockDir = `/lock-${round}`;
  const created = zk.create(`${lockDir}/q-`, Buffer.from(`s${id}`), "ephemeralSequential");
  const marker = zk.get(lockDir);
  const ticket = await created;
  const { stat } = await marker;
  emit(`{"t":${epochMs()},"m":"queued"}`);
  if (!ticket.endsWith("-0000000000")) return;
  await zk
    .transaction()
    .check(lockDir, stat.version)
    .create(`/leases/s${id}-`, Buffer.alloc(0), "ephemeralSequential")
    .delete(ticket)
    .commit();
  emit(`{"t":${epochMs()},"m":"admitted"}`);
}

const clients = await inBatches(sessions, 100, async (index) => {
  const id = offset + index;
  const zk = await ZkClient.connect({ connectString, sessionTimeoutMs: 60_000, connectTimeoutMs: 60_000, operationTimeoutMs: 120_000 });
  const watcher: Watcher = (event) => {
    if (event.type === "dataChanged")
      void onPublish(zk, id, watcher).catch((e: unknown) => console.error(`floor session ${id}: ${String(e)}`));
  };
  await zk.get(APP, watcher);
  return zk;
});
emit(`{"ready":${clients.length}}`);
flush();

process.on("SIGTERM", async () => {
  await Promise.all(clients.map((zk) => zk.close()));
  flush();
  process.exit(0);
});
