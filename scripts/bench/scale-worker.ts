// One process of `bun run bench --scale`: N in-process agents (each its own ZooKeeper session,
// the sleeping command runner), host ids h<offset+1>…, on the queue asked for. It prints one
// JSON line per event the bench needs — {"ready":n} once every agent is registered, then
// {"t":<epoch ms>,"m":"deploy started"|"slot released"|"deploy succeeded"|"stall","ms"?} — and stops its
// agents on SIGTERM.
//
//   bun scripts/bench/scale-worker.ts <connect> <hosts> <offset> <deployMs> <ticket|listing>

import { Agent } from "../../src/agent/agent.ts";
import type { Logger } from "../../src/agent/logger.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { emit, epochMs, flush } from "./event-lines.ts";
import { inBatches } from "./in-batches.ts";
import { SleepRunner } from "./sleep-fleet.ts";

const [connectString = "", hostsText = "0", offsetText = "0", deployText = "2000", queueText = "ticket"] = process.argv.slice(2);
const hosts = Number(hostsText);
const offset = Number(offsetText);
const deployMs = Number(deployText);
const queue = queueText === "listing" ? "listing" : "ticket";
const EVENTS = new Set(["deploy started", "slot released", "deploy succeeded"]);

function logger(): Logger {
  const push = (message: string): void => {
    if (EVENTS.has(message)) emit(`{"t":${epochMs()},"m":"${message}"}`);
  };
  return { debug: () => undefined, info: push, warn: () => undefined, error: () => undefined };
}

const agents = await inBatches(hosts, 100, async (index) => {
  const host = `h${String(offset + index + 1).padStart(5, "0")}`;
  const zk = await ZkClient.connect({ connectString, sessionTimeoutMs: 60_000, connectTimeoutMs: 60_000, operationTimeoutMs: 120_000 });
  const agent = new Agent(
    { host, groups: [], agentVersion: "bench", pid: process.pid },
    { zk, runner: new SleepRunner(deployMs), logger: logger(), now: () => new Date(), queue },
  );
  await agent.start();
  return { agent, zk };
});
emit(`{"ready":${agents.length}}`);
flush();

// Event-loop stalls: a 5 ms timer that fires 10 ms or more late reports by how much. A handoff
// whose release or admission lands in a stall waits for it; the bench counts how many of the
// slow handoffs a stall explains.
const PROBE_MS = 5;
let expected = performance.now() + PROBE_MS;
setInterval(() => {
  const now = performance.now();
  const late = now - expected;
  if (late >= 10) emit(`{"t":${epochMs()},"m":"stall","ms":${Math.round(late)}}`);
  expected = now + PROBE_MS;
}, PROBE_MS);

process.on("SIGTERM", async () => {
  await Promise.all(
    agents.map(async ({ agent, zk }) => {
      agent.kill();
      await agent.stop();
      await zk.close();
    }),
  );
  flush();
  process.exit(0);
});
