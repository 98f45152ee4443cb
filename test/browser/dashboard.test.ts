// The dashboard in a real browser (Debian's chromium, headless, through playwright-core) against
// a real ZooKeeper and compiled agents: it renders the fleet; a rollout started after the page
// loaded moves hosts through their states without a reload; a failure shows its output tail;
// after a ZooKeeper restart the page says so and recovers by itself. Also: a non-loopback
// --listen without auth is refused, and with an auth file nothing is served without it.

import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { type CliResult, runOk, show, emptyDir, ensureBinary, runCli, useCli } from "../harness/cli.ts";
import { useAgentProcesses } from "../harness/agent-process.ts";
import { useBrowser } from "../harness/browser.ts";
import { waitForStrict } from "../harness/wait.ts";
import { freePort, useZooKeeper } from "../harness/zookeeper.ts";
import { type LiveProcess, spawnLive, stopAllLive } from "../helpers/pty.ts";

const zk = useZooKeeper();
useCli();
const agents = useAgentProcesses();
const browser = useBrowser();
afterEach(() => stopAllLive());

const CMDS = ["--get-version-cmd", "cat VERSION 2>/dev/null || true", "--deploy-cmd", "sleep 1; echo %(version)s > VERSION"];

const ok = (connect: string, args: string[]): Promise<CliResult> => runOk(["--zk", connect, ...args]);

/** Three agents on 1.0, slots 1: a rollout moves one host at a time, 1 s each. */
async function fleet(prefix: string): Promise<string> {
  const connect = zk.withChroot(prefix);
  await ok(connect, ["app", "create", "web", "1.0", ...CMDS]);
  for (const host of ["h1", "h2", "h3"]) await agents.start({ connect, hostId: host });
  await waitForStrict(
    async () => {
      const r = await ok(connect, ["status", "web", "--json"]);
      const app = (JSON.parse(r.stdout) as { apps: { state: string; counts: { current: number } }[] }).apps[0];
      return (app?.state === "converged" && app.counts.current === 3) || undefined;
    },
    30_000,
    "web 1.0 converged on 3 hosts",
  );
  return connect;
}

async function startDashboard(connect: string, args: string[] = []): Promise<{ url: string; process: LiveProcess }> {
  const port = await freePort();
  const p = spawnLive([await ensureBinary(), "--zk", connect, "dashboard", "--listen", `127.0.0.1:${port}`, ...args]);
  const line = await p.waitForOutput(/^dashboard: (http:\/\/\S+\/) /m, 15_000);
  return { url: line[1] ?? "", process: p };
}

/** GET `path` with exactly this Host header (fetch sets its own): status and body. */
async function rawGet(base: string, path: string, host: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  const text = await new Promise<string>((resolve, reject) => {
    const socket = tcpConnect(Number(port), hostname);
    let data = "";
    socket.on("data", (chunk) => {
      data += chunk.toString("utf8");
    });
    socket.on("end", () => resolve(data));
    socket.on("error", reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  });
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), body: text.slice(text.indexOf("\r\n\r\n") + 4) };
}

const tile = (host: string, state?: string): string => `[data-app="web"] [data-host="${host}"]${state ? `[data-state="${state}"]` : ""}`;

// Page-side code is passed as strings: the tests' TypeScript has no DOM types.
async function markLoaded(page: Page): Promise<void> {
  await page.evaluate("window.loadedOnce = 1");
}

/** True while the page was never reloaded since markLoaded. */
async function stillTheSamePage(page: Page): Promise<boolean> {
  return (await page.evaluate("window.loadedOnce === 1")) === true;
}

/** Records, in the page, each host's states as the DOM shows them (window.seen[host]). */
const RECORD_STATES = `(() => {
  const seen = {};
  window.seen = seen;
  const sample = () => {
    for (const node of document.querySelectorAll('[data-app="web"] [data-host]')) {
      const list = seen[node.dataset.host] ?? [];
      if (list.at(-1) !== node.dataset.state) list.push(node.dataset.state);
      seen[node.dataset.host] = list;
    }
  };
  new MutationObserver(sample).observe(document.body, { subtree: true, childList: true, attributes: true });
})()`;

describe("dashboard in a browser", () => {
  test("renders the fleet; a rollout started after the load moves hosts through their states live; a failure shows its output", async () => {
    const connect = await fleet("dash-live");
    const { url } = await startDashboard(connect);
    const page = await browser.page();
    await page.goto(url);
    await page.waitForSelector('[data-app="web"] [data-testid="app-state"]:text("CONVERGED")', { timeout: 15_000 });
    for (const host of ["h1", "h2", "h3"]) await page.waitForSelector(tile(host, "current"), { timeout: 10_000 });
    expect(await page.textContent('[data-app="web"] [data-testid="app-counts"]')).toContain("on 1.0: 3/3");
    expect(await page.textContent("#zookeeper")).toBe("ZooKeeper connected");
    await markLoaded(page);

    // Each host's states as the page shows them, sampled in the page itself as the DOM changes.
    await page.evaluate(RECORD_STATES);
    await ok(connect, ["app", "create", "web", "2.0"]);
    await page.waitForSelector('[data-app="web"] [data-testid="app-version"]:text("2.0")', { timeout: 10_000 });
    await page.waitForSelector(`[data-app="web"] [data-host][data-state="deploying"]`, { timeout: 10_000 });
    await page.waitForSelector('[data-app="web"] [data-testid="app-state"]:text("CONVERGED")', { timeout: 30_000 });
    const seen = (await page.evaluate("window.seen")) as Record<string, string[]>;
    for (const host of ["h1", "h2", "h3"]) {
      // Every host went through deploying (1 s each, one at a time) and ended current.
      expect(seen[host], JSON.stringify(seen)).toContain("deploying");
      expect(seen[host]?.at(-1)).toBe("current");
    }
    expect(await stillTheSamePage(page)).toBe(true);

    await ok(connect, ["app", "create", "web", "3.0", "--deploy-cmd", "echo 'disk full: /srv/web' >&2; exit 4"]);
    await page.waitForSelector('[data-app="web"] [data-testid="app-state"]:text("HALTED")', { timeout: 15_000 });
    const failed = await page.waitForSelector('[data-app="web"] [data-host][data-state="failed"]', { timeout: 10_000 });
    expect(await failed.textContent()).toContain("exit 4");
    await failed.click();
    await page.waitForSelector("#detail[open]", { timeout: 5_000 });
    expect(await page.textContent("#detail-output")).toContain("disk full: /srv/web");
    expect(await page.textContent("#detail-fields")).toContain("4");
    expect(await page.textContent('[data-app="web"] [data-testid="history"]')).toContain("publish 2.0→3.0");
    expect(await stillTheSamePage(page)).toBe(true);
  }, 120_000);

  test("/api/status is status --json; a non-loopback --listen without auth is refused (exit 2); with an auth file nothing is served without it", async () => {
    const connect = zk.withChroot("dash-api");
    await ok(connect, ["app", "create", "api", "1.0", ...CMDS]);
    const { url } = await startDashboard(connect);
    const served = (await (await fetch(`${url}api/status`)).json()) as { apps: { name: string; version: string }[] };
    const cli = JSON.parse((await ok(connect, ["status", "--json"])).stdout) as typeof served;
    expect(served.apps.map((a) => [a.name, a.version])).toEqual(cli.apps.map((a) => [a.name, a.version]));
    expect(served).toEqual(cli);
    // DNS rebinding: a page of another site whose name now resolves to 127.0.0.1 sends its own
    // name as Host. Without auth, only loopback names are answered.
    for (const [host, status] of [
      ["attacker.example", 421],
      [`attacker.example:${new URL(url).port}`, 421],
      [`localhost:${new URL(url).port}`, 200],
      [`[::1]:${new URL(url).port}`, 200],
    ] as const) {
      const response = await rawGet(url, "/api/status", host);
      expect({ host, status: response.status }).toEqual({ host, status });
      if (status === 421) expect(response.body).toContain("answers only to loopback host names");
    }

    const refused = await runCli(["--zk", connect, "dashboard", "--listen", "0.0.0.0:1"]);
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain('--listen "0.0.0.0:1" is reachable from other machines');
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);

    const authFile = join(emptyDir("dash-auth-"), "dashboard.auth");
    writeFileSync(authFile, "ops:correct-horse-battery\n");
    const port = await freePort();
    const guarded = spawnLive([
      await ensureBinary(),
      "--zk",
      connect,
      "dashboard",
      "--listen",
      `0.0.0.0:${port}`,
      "--dashboard-auth-file",
      authFile,
    ]);
    await guarded.waitForOutput(/^dashboard: http:\/\/\S+ /m, 15_000);
    const base = `http://127.0.0.1:${port}`;
    for (const path of ["/", "/api/status", "/api/events", "/metrics"]) {
      const denied = await fetch(`${base}${path}`);
      expect(denied.status).toBe(401);
      expect(denied.headers.get("www-authenticate")).toContain("Basic");
    }
    const wrong = await fetch(`${base}/api/status`, { headers: { authorization: `Basic ${btoa("ops:wrong-password")}` } });
    expect(wrong.status).toBe(401);
    const page = await browser.page({ httpCredentials: { username: "ops", password: "correct-horse-battery" } });
    await page.goto(`${base}/`);
    await page.waitForSelector('[data-app="api"] [data-testid="app-version"]:text("1.0")', { timeout: 15_000 });
  }, 90_000);

  test("ZooKeeper stopped: the page says so plainly; restarted: it recovers and follows changes without a reload", async () => {
    const connect = await fleet("dash-restart");
    const { url } = await startDashboard(connect);
    const page = await browser.page();
    await page.goto(url);
    await page.waitForSelector('[data-app="web"] [data-testid="app-state"]:text("CONVERGED")', { timeout: 15_000 });
    await markLoaded(page);

    zk.server.kill("SIGKILL");
    await page.waitForSelector('#zookeeper:text("ZooKeeper unreachable")', { timeout: 30_000 });
    expect(await page.textContent("#banner")).toContain("ZooKeeper is unreachable since");
    // The last known fleet stays on the page meanwhile.
    expect(await page.textContent('[data-app="web"] [data-testid="app-version"]')).toBe("1.0");

    await zk.server.restart();
    await page.waitForSelector('#zookeeper:text("ZooKeeper connected")', { timeout: 60_000 });
    await ok(connect, ["app", "create", "web", "2.0"]);
    await page.waitForSelector('[data-app="web"] [data-testid="app-version"]:text("2.0")', { timeout: 30_000 });
    await page.waitForSelector('[data-app="web"] [data-testid="app-state"]:text("CONVERGED")', { timeout: 60_000 });
    expect(await page.isHidden("#banner")).toBe(true);
    expect(await stillTheSamePage(page)).toBe(true);
  }, 180_000);
});
