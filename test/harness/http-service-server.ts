// The HTTP service of one test host, as a process of its own (started by the host's `restart`
// control script, see ./http-service.ts):  bun http-service-server.ts <dir> <version>
//
// It behaves like a real service after `systemctl restart`: it takes `readyDelayMs` (and, while
// <dir>/HOLD_READY exists, longer — a test holds a host in its health gate that way) before it
// listens on its fixed port, then answers GET /health with 200 and its version. A "bad release"
// (a version starting with `crashPrefix`) comes up healthy and exits `crashAfterMs` later.
// Every step is appended to <dir>/service.log as `<event> <pid> <version> <epoch-ms>` so a test
// can tell which versions ever ran on the host, and when.

import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type ServiceConfig, parseServiceConfig } from "./http-service-config.ts";

const [dir = "", version = ""] = process.argv.slice(2);
if (dir === "" || version === "") {
  console.error("usage: http-service-server.ts DIR VERSION");
  process.exit(2);
}
const config: ServiceConfig = parseServiceConfig(readFileSync(join(dir, "service.json"), "utf8"));

function event(name: string): void {
  appendFileSync(join(dir, "service.log"), `${name} ${process.pid} ${version} ${Date.now()}\n`);
}

/** Bun.serve, retried while the port is still taken (the old process's socket, or a probe's). */
async function listen(): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      Bun.serve({
        hostname: "127.0.0.1",
        port: config.port,
        fetch(request) {
          const path = new URL(request.url).pathname;
          return path === "/health" ? new Response(version) : new Response("not found", { status: 404 });
        },
      });
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await Bun.sleep(20);
    }
  }
}

// SIGTERM (the control script's stop) ends the process at once: no draining of its own, so a
// stop is visible to the prober as soon as it happens.
process.on("SIGTERM", () => {
  event("stop");
  process.exit(0);
});

event("start");
await Bun.sleep(config.readyDelayMs);
while (existsSync(join(dir, "HOLD_READY"))) await Bun.sleep(20);
await listen();
event("ready");
if (version.startsWith(config.crashPrefix)) {
  setTimeout(() => {
    event("crash");
    process.exit(1);
  }, config.crashAfterMs);
}
