// Issue 12's admission steps, in-process agents against a real ZooKeeper: drain → deploy →
// verify → health gate (with its min-healthy window) → undrain, each command appending a line
// `<host> <step>` to one log so the order across hosts shows whether a slot was held from drain
// to undrain; the health gate's failures; the slot ramp; the percentage budget. (The same with
// real HTTP services, a prober and compiled agents: test/faults/zero-downtime.test.ts.)
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readFleetStatus } from "../../src/apps/fleet-status.ts";
import type { AppView } from "../../src/apps/fleet-view.ts";
import { promoteApp } from "../../src/apps/operator-actions.ts";
import type { AppAttributes } from "../../src/apps/publish.ts";
import { failuresDir, lockDir } from "../../src/zk/paths.ts";
import { waitFor } from "../harness/wait.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";
import { InProcessFleet, testActor } from "../helpers/in-process-fleet.ts";

setDefaultTimeout(60_000);
const zookeeper = useZooKeeper();
let fleet: InProcessFleet;

afterEach(async () => {
  await fleet?.stopAll();
});

/** A command that logs `<host> <step>` (and, for the deploy, installs the version). */
function step(log: string, name: string, then = ""): string {
  return `echo "$CONVEYOR_HOST ${name}" >> '${log}'${then ? `; ${then}` : ""}`;
}

function lines(log: string): string[] {
  return existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").filter(Boolean) : [];
}

async function view(app = "app"): Promise<AppView> {
  const status = await readFleetStatus(await fleet.client(), app);
  const v = status.apps[0];
  if (!v) throw new Error(`no status for ${app}`);
  return v;
}

async function start(prefix: string, hosts: number): Promise<string> {
  fleet = new InProcessFleet({ connectString: zookeeper.withChroot(prefix) });
  await fleet.startMany("h", hosts);
  return join(fleet.root, "steps.log");
}

function commands(log: string, extra: AppAttributes = {}): AppAttributes {
  return {
    getVersionCmd: "cat VERSION 2>/dev/null || true",
    deployCmd: step(log, "deploy", "sleep 0.2; echo %(version)s > VERSION"),
    ...extra,
  };
}

/** Hosts whose steps overlap in the log: a host is "out" from its first step to its last. */
function maxOut(log: string, first: string, last: string): number {
  let out = 0;
  let max = 0;
  for (const line of lines(log)) {
    const [, name] = line.split(" ");
    if (name === first) out++;
    if (name === last) out--;
    max = Math.max(max, out);
  }
  return max;
}

describe("admission steps", () => {
  test("drain, deploy, health gate (min-healthy 0.6 s), undrain, in that order; with slots 1 no host drains before the previous one undrained", async () => {
    const log = await start("steps-order", 3);
    await fleet.publish(
      "app",
      "1.0",
      commands(log, {
        slots: 1,
        drainCmd: step(log, "drain"),
        healthCmd: step(log, "health"),
        healthIntervalMs: 200,
        minHealthyMs: 600,
        undrainCmd: step(log, "undrain"),
      }),
    );
    await waitFor(async () => (await view()).state === "converged", 30_000, "convergence");
    const byHost = new Map<string, string[]>();
    for (const line of lines(log)) {
      const [host = "", name = ""] = line.split(" ");
      byHost.set(host, [...(byHost.get(host) ?? []), name]);
    }
    for (const [host, steps] of byHost) {
      expect(steps[0], host).toBe("drain");
      expect(steps[1], host).toBe("deploy");
      expect(steps.at(-1), host).toBe("undrain");
      const checks = steps.slice(2, -1);
      // The first pass starts the window; checks every 200 ms until 600 ms have gone by.
      expect(checks.length, host).toBeGreaterThanOrEqual(4);
      expect(new Set(checks), host).toEqual(new Set(["health"]));
    }
    expect(byHost.size).toBe(3);
    expect(maxOut(log, "drain", "undrain")).toBe(1);
  });

  test("never healthy within --health-timeout: the host fails, stays drained (no undrain), the rollout halts and nobody else is admitted", async () => {
    const log = await start("steps-unhealthy", 2);
    await fleet.publish(
      "app",
      "1.0",
      commands(log, {
        slots: 1,
        drainCmd: step(log, "drain"),
        healthCmd: step(log, "health", "echo 'connection refused' >&2; exit 7"),
        healthIntervalMs: 200,
        healthTimeoutMs: 1_000,
        undrainCmd: step(log, "undrain"),
      }),
    );
    const v = await waitFor(
      async () => {
        const s = await view();
        return s.halted && s.hosts.some((h) => h.state === "failed") ? s : undefined;
      },
      20_000,
      "the first host to fail and the rollout to halt",
    );
    const failed = v.hosts.find((h) => h.state === "failed");
    expect(failed?.error).toStartWith("not healthy within --health-timeout 1s: health-cmd exited with code 7");
    expect(failed?.exitCode).toBe(7);
    expect(failed?.outputTail).toContain("connection refused");
    expect(failed?.drained).toBe(true);
    expect(lines(log).filter((l) => l.endsWith(" undrain"))).toEqual([]);
    expect(lines(log).filter((l) => l.endsWith(" drain"))).toHaveLength(1);
    expect(await (await fleet.client()).children(failuresDir("app"))).toHaveLength(1);
  });

  test("healthy, then a check fails within --min-healthy-time: the host fails on the bake, naming how long it was healthy", async () => {
    const log = await start("steps-bake", 1);
    // Passes twice, then fails: a release that comes up and crashes.
    const health = `n=$(cat CHECKS 2>/dev/null || echo 0); echo $((n+1)) > CHECKS; [ "$n" -lt 2 ]`;
    await fleet.publish("app", "1.0", commands(log, { healthCmd: health, healthIntervalMs: 150, minHealthyMs: 5_000 }));
    const failed = await waitFor(async () => (await view()).hosts.find((h) => h.state === "failed"), 20_000, "the host to fail");
    expect(failed.error).toMatch(/^health-cmd exited with code 1 after (\d+ms|\d+(\.\d)?s) healthy, within --min-healthy-time 5s$/);
    expect(failed.drained).toBeUndefined();
  });

  test("while gated the host reports verifying / health, then healthy with the time since its first passing check", async () => {
    const log = await start("steps-gated", 1);
    // Unhealthy until the file HEALTHY exists, which the test creates.
    await fleet.publish("app", "1.0", commands(log, { healthCmd: "test -f HEALTHY", healthIntervalMs: 100, minHealthyMs: 30_000 }));
    const waiting = await waitFor(async () => (await view()).hosts.find((h) => h.phase === "health"), 20_000, "the gate");
    expect(waiting.state).toBe("verifying");
    expect(waiting.healthySince).toBeUndefined();
    const dir = fleet.agents[0]?.dir ?? "";
    await Bun.write(join(dir, "HEALTHY"), "");
    const healthy = await waitFor(async () => (await view()).hosts.find((h) => h.healthySince !== undefined), 10_000, "healthy");
    expect(healthy.state).toBe("verifying");
    expect(healthy.healthyForMs).toBeGreaterThanOrEqual(0);
    expect((await view()).minHealthyMs).toBe(30_000);
  });
});

describe("slot ramp", () => {
  test("--slot-increment 2 --slots 1: the first deploy runs alone, then the width grows as hosts complete", async () => {
    const log = await start("ramp", 6);
    await fleet.publish(
      "app",
      "1.0",
      commands(log, {
        slots: 1,
        slotIncrement: 2,
        deployCmd: step(log, "start", `sleep 0.6; echo %(version)s > VERSION; ${step(log, "end")}`),
      }),
    );
    await waitFor(async () => (await view()).state === "converged", 30_000, "convergence");
    // Concurrency at each start: 1 for the first; then slots + (K−1) × completed allows more.
    let running = 0;
    const atStart: number[] = [];
    for (const line of lines(log)) {
      if (line.endsWith(" start")) atStart.push(++running);
      if (line.endsWith(" end")) running--;
    }
    expect(atStart[0]).toBe(1);
    expect(atStart[1]).toBe(1); // the second starts only once the first completed
    expect(Math.max(...atStart)).toBeGreaterThanOrEqual(3);
  });

  test("--slot-increment 2 --max-slots 2: the ramp stops at 2", async () => {
    const log = await start("ramp-cap", 6);
    await fleet.publish(
      "app",
      "1.0",
      commands(log, {
        slots: 1,
        slotIncrement: 2,
        maxSlots: 2,
        deployCmd: step(log, "start", `sleep 0.4; echo %(version)s > VERSION; ${step(log, "end")}`),
      }),
    );
    await waitFor(async () => (await view()).state === "converged", 30_000, "convergence");
    expect(maxOut(log, "start", "end")).toBe(2);
  });

  test("--slot-increment 0 --slots 2: exactly 2 hosts deploy, the rest wait queued until promote", async () => {
    const log = await start("ramp-zero", 4);
    await fleet.publish("app", "1.0", commands(log, { slots: 2, slotIncrement: 0 }));
    await waitFor(async () => (await view()).counts.current === 2, 20_000, "the first two hosts");
    await waitFor(async () => (await (await fleet.client()).children(lockDir("app"))).length === 2, 10_000, "the other two queued");
    expect(lines(log).filter((l) => l.endsWith(" deploy"))).toHaveLength(2);
    await promoteApp(await fleet.client(), "app", testActor);
    await waitFor(async () => (await view()).state === "converged", 20_000, "convergence after promote");
    expect(lines(log).filter((l) => l.endsWith(" deploy"))).toHaveLength(4);
  });
});

describe("percentage failure budget", () => {
  test("--max-failures 50% of 4 hosts: two failures are tolerated, a third halts the rollout", async () => {
    const log = await start("budget", 4);
    await fleet.publish("app", "1.0", commands(log, { slots: 4 }));
    await waitFor(async () => (await view()).state === "converged", 20_000, "1.0 everywhere");
    // 2.0 fails on h1 and h2 (tolerated: 2 ≤ 50% of 4), then 3.0 fails on h1, h2, h3.
    const failOn = (hosts: string) => `case "$CONVEYOR_HOST" in ${hosts}) exit 3;; esac; echo %(version)s > VERSION`;
    await fleet.publish("app", "2.0", { deployCmd: failOn("h1|h2"), maxFailures: "50%" });
    const tolerated = await waitFor(async () => ((await view()).state === "converged" ? await view() : undefined), 20_000, "2.0 converged");
    expect(tolerated.counts.failed).toBe(2);
    expect(tolerated.failureBudget).toBe(2);
    await fleet.publish("app", "3.0", { deployCmd: failOn("h1|h2|h3"), slots: 1 });
    const halted = await waitFor(async () => ((await view()).halted ? await view() : undefined), 20_000, "3.0 halted");
    expect(halted.counts.failuresThisRollout).toBe(3);
    expect(halted.state).toBe("halted");
  });
});
