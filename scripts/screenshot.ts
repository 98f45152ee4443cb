// `bun scripts/screenshot.ts` — the README's dashboard pictures, made from a real rollout: a local
// ZooKeeper, 8 compiled agents; app "jobs" (one host fails its deploy, within the budget) and
// app "web" with 2 slots and 3 s deploys plus a health gate; 1.0 converges, then 2.0 is
// published and, while hosts are deploying and queued, Debian's chromium takes
// docs/dashboard.png (laptop) and docs/dashboard-phone.png (phone). Everything it starts is stopped by PID at the end.

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { type AgentProcess, startAgent } from "../test/harness/agent-process.ts";
import { CHROMIUM } from "../test/harness/browser.ts";
import { ensureBinary } from "../test/harness/cli.ts";
import { pidAlive, signalPid } from "../test/harness/processes.ts";
import { freePort, startZooKeeper } from "../test/harness/zookeeper.ts";

const DOCS = resolve(import.meta.dir, "..", "docs");
const binary = await ensureBinary();
const root = mkdtempSync(join(tmpdir(), "conveyor-screenshot-"));
const zk = await startZooKeeper();
const connect = `${zk.connectString}/screenshot`;
const agents: AgentProcess[] = [];
let dashboard: Bun.Subprocess | undefined;
let browserPid: number | undefined;

async function cli(args: string[]): Promise<void> {
  const p = Bun.spawn([binary, "--zk", connect, ...args], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { PATH: "/usr/bin:/bin", CONVEYOR_ACTOR: "ci@build-42" },
  });
  if ((await p.exited) !== 0) throw new Error(`conveyor ${args.join(" ")} failed`);
}

try {
  await cli([
    ...["app", "create", "web", "1.0", "--slots", "2"],
    ...["--get-version-cmd", "cat VERSION 2>/dev/null || true"],
    ...["--deploy-cmd", "sleep 3; echo %(version)s > VERSION"],
    ...["--health-cmd", "true", "--health-interval", "250ms", "--min-healthy-time", "1s"],
  ]);
  for (let i = 1; i <= 8; i++) {
    const dir = join(root, `web-${i}`);
    mkdirSync(dir);
    agents.push(await startAgent({ connect, hostId: `web-${i}`, dir, sessionTimeout: "4s" }));
  }
  await cli(["app", "wait", "web", "--wait-timeout", "2m"]);
  await cli([
    ...["app", "create", "jobs", "7.3.0", "--slots", "4", "--max-failures", "1"],
    ...["--get-version-cmd", "cat JOBS_VERSION 2>/dev/null || true"],
    ...[
      "--deploy-cmd",
      `if [ %(host)s = web-6 ]; then echo 'migration 0042 failed: relation "jobs_queue" is locked' >&2; exit 3; fi; echo %(version)s > JOBS_VERSION`,
    ],
  ]);
  await cli(["app", "wait", "jobs", "--wait-timeout", "2m"]);
  const port = await freePort();
  dashboard = Bun.spawn([binary, "--zk", connect, "dashboard", "--listen", `127.0.0.1:${port}`], { stdio: ["ignore", "ignore", "ignore"] });
  const server = await chromium.launchServer({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
  browserPid = server.process().pid;
  const browser = await chromium.connect(server.wsEndpoint());
  const laptop = await browser.newPage({ viewport: { width: 1280, height: 720 }, deviceScaleFactor: 1 });
  for (let attempt = 0; ; attempt++) {
    try {
      await laptop.goto(`http://127.0.0.1:${port}/`);
      break;
    } catch (error) {
      if (attempt > 50) throw error;
      await Bun.sleep(100);
    }
  }
  await laptop.waitForSelector('[data-app="web"] [data-testid="app-state"]:text("CONVERGED")');
  await cli(["app", "create", "web", "2.0"]);
  // Mid-rollout: some hosts done on 2.0, some deploying or in the health gate, some queued.
  const count = (selector: string): Promise<number> => laptop.locator(`[data-app="web"] ${selector}`).count();
  for (let i = 0; ; i++) {
    if ((await count(".s-current")) >= 2 && (await count('[data-state="queued"]')) >= 2 && (await count(".s-deploying, .s-verifying")) >= 1)
      break;
    if (i > 600) throw new Error("the rollout never reached the state to photograph");
    await Bun.sleep(50);
  }
  await laptop.screenshot({ path: join(DOCS, "dashboard.png") });
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
  await phone.goto(`http://127.0.0.1:${port}/`);
  await phone.waitForSelector('[data-testid="app-state"]');
  await phone.screenshot({ path: join(DOCS, "dashboard-phone.png") });
  await browser.close();
  await server.close();
  console.log(`wrote ${join(DOCS, "dashboard.png")} and ${join(DOCS, "dashboard-phone.png")}`);
} finally {
  if (browserPid !== undefined && pidAlive(browserPid)) signalPid(browserPid, "SIGKILL");
  if (dashboard) signalPid(dashboard.pid, "SIGTERM");
  await Promise.all(agents.map((a) => a.stop()));
  await zk.stop();
  rmSync(root, { recursive: true, force: true });
}
