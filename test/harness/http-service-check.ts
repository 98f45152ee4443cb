// The health command the agents run (via the `health` script in each host directory, see
// ./http-service.ts):  bun http-service-check.ts <dir> <port>
// Exits 0 only if GET http://127.0.0.1:<port>/health answers 200 within CHECK_TIMEOUT_MS, and
// appends `<ok|fail> <outcome> <epoch-ms>` to <dir>/health.log — so a test knows a host is in
// its health gate (its checks run) without trusting the agent's own report.

import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { probeHealth } from "./http-probe.ts";

/** Short: a local server answers in milliseconds; longer means it is not serving. */
const CHECK_TIMEOUT_MS = 1_000;

const [dir = "", portText = ""] = process.argv.slice(2);
const port = Number(portText);
if (dir === "" || !Number.isInteger(port) || port <= 0) {
  console.error("usage: http-service-check.ts DIR PORT");
  process.exit(2);
}
const result = await probeHealth(port, CHECK_TIMEOUT_MS);
const ok = result.outcome === "up";
appendFileSync(join(dir, "health.log"), `${ok ? "ok" : "fail"} ${result.outcome} ${Date.now()}\n`);
console.log(ok ? `healthy: ${result.body ?? ""}` : `unhealthy: ${result.outcome}${result.status ? ` (HTTP ${result.status})` : ""}`);
process.exit(ok ? 0 : 1);
