// Proves the zero-downtime harness without any agent: the per-host HTTP service and its control
// script (test/harness/http-service.ts), the prober (test/harness/prober.ts) and the load
// balancer's member list (test/harness/load-balancer.ts). The zero-downtime fault scenarios
// (test/faults/zero-downtime.test.ts) trust these to see every restart and every outage.

import { afterAll, afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnCollect } from "../harness/cli.ts";
import { HttpService, stopAllServices, useHttpServices } from "../harness/http-service.ts";
import { LoadBalancer } from "../harness/load-balancer.ts";
import { Prober } from "../harness/prober.ts";
import { pidAlive, procStat } from "../harness/processes.ts";
import { freePort } from "../harness/zookeeper.ts";

setDefaultTimeout(30_000);
useHttpServices();

const root = mkdtempSync(join(tmpdir(), "conveyor-http-service-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const emptyDir = (prefix: string): string => mkdtempSync(join(root, prefix));

const probers: Prober[] = [];
afterEach(async () => {
  await Promise.all(probers.splice(0).map((p) => p.stop()));
});

async function service(host: string, readyDelayMs = 1_000): Promise<HttpService> {
  return HttpService.install({ dir: emptyDir(`svc-${host}-`), port: await freePort(), readyDelayMs });
}

function probe(targets: { host: string; svc: HttpService }[], membersFile?: string): Prober {
  const p = Prober.start({ targets: targets.map((t) => ({ host: t.host, port: t.svc.port })), membersFile });
  probers.push(p);
  return p;
}

describe("http service", () => {
  test("restart returns at once; the server serves its version after the ready delay, in a session of its own; stop leaves nothing", async () => {
    const svc = await service("a");
    const first = await svc.restart("1.0");
    expect(first.ms).toBeLessThan(800); // it does not wait for the 1 s ready delay
    const started = await svc.waitFor("start", "1.0", 5_000);
    const ready = await svc.waitFor("ready", "1.0", 5_000);
    expect(ready.at - started.at).toBeGreaterThanOrEqual(1_000);
    expect(svc.installed()).toBe("1.0");
    // Not in the control script's process group: setsid gave it its own session and group.
    const stat = procStat(ready.pid);
    expect(stat?.pgrp).toBe(ready.pid);
    expect(svc.processes()).toEqual([ready.pid]);

    await svc.restart("2.0");
    const next = await svc.waitFor("ready", "2.0", 5_000);
    // The old server was stopped before the new one started (its port must be free).
    const events = svc.events();
    const stop = events.find((e) => e.kind === "stop" && e.pid === ready.pid);
    const start2 = events.find((e) => e.kind === "start" && e.version === "2.0");
    expect(stop).toBeDefined();
    expect(start2?.at).toBeGreaterThanOrEqual(stop?.at ?? Number.POSITIVE_INFINITY);
    expect(pidAlive(ready.pid)).toBe(false);
    expect(svc.versionsStarted()).toEqual(["1.0", "2.0"]);

    // The health script: 0 while it serves, non-zero once stopped; each check logged.
    const healthy = await spawnCollect([svc.healthScript], { cwd: svc.dir });
    expect(healthy.code, healthy.stderr).toBe(0);
    expect(healthy.stdout).toContain("2.0");
    await svc.stop();
    expect(pidAlive(next.pid)).toBe(false);
    expect(svc.processes()).toEqual([]);
    const unhealthy = await spawnCollect([svc.healthScript], { cwd: svc.dir });
    expect(unhealthy.code).toBe(1);
    expect(svc.healthChecks().map((c) => c.ok)).toEqual([true, false]);
  });

  test("the prober sees a restart as about the ready delay of downtime, on that host only", async () => {
    const a = await service("a");
    const b = await service("b");
    await Promise.all([a.restart("1.0"), b.restart("1.0")]);
    await Promise.all([a.waitFor("ready", "1.0", 5_000), b.waitFor("ready", "1.0", 5_000)]);
    const prober = probe([
      { host: "a", svc: a },
      { host: "b", svc: b },
    ]);
    await prober.waitUntil((s) => s.down.length === 0 || undefined, 5_000, "both up");
    const since = Date.now();
    await a.restart("2.0");
    await prober.waitUntil((s) => s.down.includes("a") || undefined, 5_000, "a down");
    await prober.waitUntil((s) => (s.at > since && !s.down.includes("a")) || undefined, 5_000, "a up again");
    await prober.stop();
    const r = prober.report({ since });
    console.log(`[http-service] restart seen down ${r.downMs.a} ms (ready delay 1000 ms), rounds ${r.rounds}, max gap ${r.maxGapMs} ms`);
    expect(r.downSpans.map((s) => s.host)).toEqual(["a"]);
    expect(r.downMs.a).toBeGreaterThanOrEqual(950);
    expect(r.downMs.a).toBeLessThan(2_000);
    expect(r.downMs.b).toBe(0);
    expect(r.maxDown.count).toBe(1);
    expect(r.maxGapMs).toBeLessThan(250);
    expect(prober.lastVersion.get("a")).toBe("2.0");
  });

  test("a bad release comes up healthy and exits about 1.5 s later; a held server serves only once released", async () => {
    const svc = await service("a", 200);
    await svc.restart("crash-2.0");
    const ready = await svc.waitFor("ready", "crash-2.0", 5_000);
    const crash = await svc.waitFor("crash", "crash-2.0", 5_000);
    expect(crash.at - ready.at).toBeGreaterThanOrEqual(1_500);
    expect(crash.at - ready.at).toBeLessThan(2_500);

    svc.hold();
    const restartedAt = Date.now();
    await svc.restart("3.0");
    await svc.waitFor("start", "3.0", 5_000);
    const prober = probe([{ host: "a", svc }]);
    // Held: still not serving well past its ready delay (10 rounds of the prober after it).
    await prober.waitUntil((s) => (s.at > restartedAt + 600 && s.down.includes("a")) || undefined, 5_000, "a held down");
    expect(svc.events().some((e) => e.kind === "ready" && e.version === "3.0")).toBe(false);
    svc.release();
    const up = await svc.waitFor("ready", "3.0", 5_000);
    expect(up.at).toBeGreaterThan(restartedAt + 600);
  });

  test("LB mode: concurrent drains and undrains keep the member list whole; a drained host is not an outage", async () => {
    const hosts = ["a", "b", "c", "d"];
    const lb = new LoadBalancer(emptyDir("lb-"), hosts);
    // 4 hosts × 10 remove/add pairs at once: a lost update would leave a host out or twice in.
    // The commands use %(host)s; render it as the agent would.
    const render = (cmd: string, host: string): string => cmd.replace("%(host)s", host);
    const editRendered = async (host: string): Promise<void> => {
      for (let i = 0; i < 10; i++) {
        for (const cmd of [lb.drainCmd, lb.undrainCmd]) {
          const r = await spawnCollect(["/bin/sh", "-c", render(cmd, host)]);
          expect(r.code, r.stderr).toBe(0);
        }
      }
    };
    await Promise.all(hosts.map(editRendered));
    expect(lb.members().sort()).toEqual(hosts);
    expect(lb.edits()).toHaveLength(80);

    const a = await service("a", 500);
    await a.restart("1.0");
    await a.waitFor("ready", "1.0", 5_000);
    const prober = probe([{ host: "a", svc: a }], lb.membersFile);
    await prober.waitUntil((s) => s.down.length === 0 || undefined, 5_000, "a up");
    const since = Date.now();
    // Drained, restarted, back once serving: not an outage. Then a restart while a member: one.
    await spawnCollect(["/bin/sh", "-c", render(lb.drainCmd, "a")]);
    await a.restart("2.0");
    await a.waitFor("ready", "2.0", 5_000);
    await prober.waitUntil((s) => (!s.down.includes("a") && s.at > since) || undefined, 5_000, "a answering");
    await spawnCollect(["/bin/sh", "-c", render(lb.undrainCmd, "a")]);
    await prober.waitUntil((s) => s.members?.includes("a") || undefined, 5_000, "a a member");
    const clean = prober.report({ since });
    expect(clean.maxDown.count).toBe(0);
    expect(clean.unansweredMs.a).toBeGreaterThan(400);
    expect(clean.maxOut.count).toBe(1);

    await a.restart("3.0");
    await a.waitFor("ready", "3.0", 5_000);
    await prober.waitUntil((s) => (!s.down.includes("a") && prober.lastVersion.get("a") === "3.0") || undefined, 5_000, "a on 3.0");
    await prober.stop();
    const outage = prober.report({ since });
    expect(outage.maxDown.count).toBe(1);
    expect(outage.downMs.a).toBeGreaterThan(400);
    await stopAllServices();
  });
});
