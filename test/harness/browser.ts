// A real browser for the dashboard tests: Debian's chromium (never a downloaded one), headless,
// driven by playwright-core. Started once per file through a browser server, so its PID is
// known: afterAll closes it and kills it by PID if it is still there.

import { afterAll, beforeAll } from "bun:test";
import { existsSync } from "node:fs";
import { type Browser, type BrowserServer, type Page, chromium } from "playwright-core";
import { pidAlive, signalPid } from "./processes.ts";

export const CHROMIUM = "/usr/bin/chromium";

export interface BrowserFixture {
  /** A new page (its own context: no shared cookies or credentials). */
  page(options?: { httpCredentials?: { username: string; password: string } }): Promise<Page>;
}

export function useBrowser(): BrowserFixture {
  let server: BrowserServer | undefined;
  let browser: Browser | undefined;
  let pid: number | undefined;
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run ./scripts/ensure-deps (installs Debian's chromium)`);
    server = await chromium.launchServer({
      executablePath: CHROMIUM,
      headless: true,
      // No sandbox: the tests may run as root (CI containers), where chromium refuses it.
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    pid = server.process().pid;
    browser = await chromium.connect(server.wsEndpoint());
  }, 60_000);
  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await server?.close().catch(() => undefined);
    if (pid !== undefined && pidAlive(pid)) signalPid(pid, "SIGKILL");
  }, 30_000);
  return {
    async page(options = {}) {
      if (!browser) throw new Error("useBrowser(): the browser exists only inside tests (after beforeAll)");
      const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, ...options });
      return context.newPage();
    },
  };
}
