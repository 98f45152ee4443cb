// Zero-downtime rollouts (issue 12) end to end: compiled agents on one ZooKeeper, each host a real
// HTTP service that its deploy restarts like `systemctl restart` (back after a 1 s
// restart-to-ready delay), and a prober sampling every host's /health every 20 ms from this
// process (test/harness/service-fleet.ts, http-service.ts, prober.ts). Scenarios from the
// issue's "Done when": the health gate keeps outages within the slots (and the same rollout
// without it does not — so the gated test can fail), a release that crashes after coming up is
// stopped on its first host, drain/undrain hooks keep every load-balancer member serving, the
// slot ramp widens (--slot-increment 2) or stops (0) as specified, and a lost session or a
// kill -9 + restart in the middle of a health gate neither breaks the slot bound nor leaves a
// host without a verdict.
//
// Interleavings are forced: a host is held in its gate by keeping its restarted server from
// serving (HttpService.hold) until the test has seen what it must see, and waits are for log
// lines, health checks and status, not for time to pass (the one sleep is a fault's length: a
// partition held a second past the session's expiry). One line of measured numbers per
// scenario ([faults] zero-downtime …, as the fault suite's report()).

import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { useAgentProcesses } from "../harness/agent-process.ts";
import type { AppStatusJson } from "../harness/app-status.ts";
import { type CliResult, useCli } from "../harness/cli.ts";
import { useHttpServices } from "../harness/http-service.ts";
import type { Prober } from "../harness/prober.ts";
import { APP, HEALTH_CMD, ServiceFleet, stopAllFleets } from "../harness/service-fleet.ts";
import { poll } from "../harness/wait.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";
import { report } from "./fixture.ts";

setDefaultTimeout(90_000);
const zookeeper = useZooKeeper();
useCli();
useAgentProcesses();
useHttpServices();
afterEach(async () => {
  await stopAllFleets();
}, 30_000);

const HOSTS = 4;
/** A check every 200 ms instead of the default 1 s: the gate notices a ready server sooner. */
const INTERVAL = ["--health-interval", "200ms"];
const GATE = ["--health-cmd", HEALTH_CMD, ...INTERVAL];
/** A held host's checks fail for as long as the test needs: never let the gate time out. */
const PATIENT = ["--health-timeout", "60s"];
/** The prober's rounds must come often enough to see a 1 s outage. */
const MAX_PROBE_GAP_MS = 250;

function fleetFor(prefix: string, hosts = HOSTS, sessionTimeoutMs?: number): Promise<ServiceFleet> {
  return ServiceFleet.start({ zk: zookeeper.connectString, prefix, hosts, sessionTimeoutMs });
}

function show(r: CliResult): string {
  return `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/** Hosts of the current rollout by state. */
function inState(s: AppStatusJson, state: string, version?: string): string[] {
  return s.hosts
    .filter((h) => h.rolloutId === s.rolloutId && h.state === state && (version === undefined || h.version === version))
    .map((h) => h.host)
    .sort();
}

/** Waits until the prober sees every host answer with `version` in one round. */
async function everyHostServes(fleet: ServiceFleet, prober: Prober, version: string): Promise<void> {
  await prober.waitUntil(
    (s) => (s.down.length === 0 && fleet.hosts.every((h) => prober.lastVersion.get(h) === version)) || undefined,
    15_000,
    `every host serving ${version}`,
  );
}

/** Every host of `hosts` has had `count` health checks since its deploy of `version` started:
 *  it is in its gate (and, held, failing it). */
async function inGate(fleet: ServiceFleet, hosts: readonly string[], version: string, count = 3): Promise<void> {
  await Promise.all(
    hosts.map((host) => {
      const start = fleet.deploys(version).find((d) => d.host === host)?.start ?? 0;
      return fleet.service(host).waitForChecks(count, 20_000, start);
    }),
  );
}

const mean = (xs: readonly number[]): number => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

/**
 * Wall time of a rollout against the ideal ⌈N/S⌉·(D + ready + min-healthy), with D the deploy
 * command's own duration and ready the servers' restart-to-ready time, both measured.
 */
function timing(fleet: ServiceFleet, version: string, slots: number, minHealthyMs: number, publishedAt: number, endedAt: number) {
  const deployMs = mean(fleet.deploys(version).flatMap((d) => (d.end === undefined ? [] : [d.end - d.start])));
  const readyMs = mean(
    fleet.services.flatMap((svc) => {
      const events = svc.events();
      const start = events.find((e) => e.kind === "start" && e.version === version);
      const ready = events.find((e) => e.kind === "ready" && e.pid === start?.pid);
      return start && ready ? [ready.at - start.at] : [];
    }),
  );
  const idealMs = Math.ceil(fleet.hosts.length / slots) * (deployMs + readyMs + minHealthyMs);
  const wallMs = endedAt - publishedAt;
  return {
    deployMs: Math.round(deployMs),
    readyMs: Math.round(readyMs),
    minHealthyMs,
    idealMs: Math.round(idealMs),
    wallMs,
    wallOverIdeal: Math.round((wallMs / idealMs) * 100) / 100,
  };
}

// ---------------------------------------------------------------------------------------------
// a, b: the health gate bounds the outage by the slots

/** 4 hosts on 1.0, a rollout of 2.0 with `slots`, gated or not, watched by the prober. */
async function restartRollout(prefix: string, slots: number, gated: boolean) {
  const fleet = await fleetFor(prefix);
  await fleet.create(["--slots", String(slots)]);
  const prober = fleet.startProber();
  await everyHostServes(fleet, prober, "1.0");
  const since = Date.now();
  const pub = await fleet.publish("2.0", gated ? GATE : []);
  const waited = await fleet.wait(60_000);
  // Without the gate the last hosts are still starting when the wait ends: the rollout's
  // outages are over once every host serves 2.0.
  await everyHostServes(fleet, prober, "2.0");
  await prober.stop();
  const probes = prober.report({ since });
  const status = await fleet.status();
  const numbers = {
    slots,
    hosts: fleet.hosts.length,
    maxDown: probes.maxDown.count,
    downMs: probes.downMs,
    rounds: probes.rounds,
    probeGapP99Ms: probes.p99GapMs,
    maxProbeGapMs: probes.maxGapMs,
    ...timing(fleet, "2.0", slots, 0, pub.at, waited.endedAt),
  };
  return { fleet, probes, waited, status, numbers };
}

describe("zero downtime: the health gate", () => {
  for (const slots of [1, 2]) {
    test(`a: --health-cmd with --slots ${slots}: the prober never sees more than ${slots} host(s) down at once; every host ends current on 2.0`, async () => {
      const { fleet, probes, waited, status, numbers } = await restartRollout(`gate${slots}`, slots, true);
      report(`zero-downtime a: health gate, slots ${slots}`, numbers);
      expect(waited.code, show(waited)).toBe(0);
      expect(inState(status, "current", "2.0")).toEqual(fleet.hosts);
      // Every host was restarted and seen down (the prober was watching), never more than the slots at once.
      for (const host of fleet.hosts) expect(probes.unansweredMs[host]).toBeGreaterThanOrEqual(800);
      expect(probes.maxGapMs).toBeLessThan(MAX_PROBE_GAP_MS);
      expect(probes.maxDown.count, JSON.stringify(probes.downSpans)).toBeLessThanOrEqual(slots);
    });
  }

  for (const slots of [1, 2]) {
    test(`b: the same rollout without --health-cmd (--slots ${slots}): more than ${slots} host(s) down at once — what test a would catch`, async () => {
      const { fleet, probes, waited, status, numbers } = await restartRollout(`nogate${slots}`, slots, false);
      report(`zero-downtime b: no gate, slots ${slots}`, numbers);
      expect(waited.code, show(waited)).toBe(0);
      expect(inState(status, "current", "2.0")).toEqual(fleet.hosts);
      expect(probes.maxGapMs).toBeLessThan(MAX_PROBE_GAP_MS);
      expect(probes.maxDown.count, JSON.stringify(probes.downSpans)).toBeGreaterThan(slots);
    });
  }

  test("c: a release that crashes ~1.5 s after coming up is stopped on its first host by --min-healthy-time 3s (--max-failures 0): only that host ever runs it, app wait exits 1, the host is failed and stays out of the LB (drained)", async () => {
    const fleet = await fleetFor("crash");
    await fleet.create(["--slots", "1"]);
    const pub = await fleet.publish("crash-2.0", [...GATE, "--min-healthy-time", "3s", "--max-failures", "0", ...fleet.drainArgs()]);
    const waited = await fleet.wait(60_000);
    const status = await fleet.status();
    const deploys = fleet.deploys("crash-2.0");
    const victim = deploys[0]?.host ?? "";
    const ran = fleet.hosts.filter((h) => fleet.service(h).versionsStarted().includes("crash-2.0"));
    const events = victim === "" ? [] : fleet.service(victim).events();
    const ready = events.find((e) => e.kind === "ready" && e.version === "crash-2.0");
    const crash = events.find((e) => e.kind === "crash" && e.version === "crash-2.0");
    const checks = victim === "" ? [] : fleet.service(victim).healthChecks();
    report("zero-downtime c: crash after coming up, min-healthy 3s", {
      victim,
      hostsThatRanIt: ran,
      upForMs: ready && crash ? crash.at - ready.at : null,
      passedChecksBeforeCrash: checks.filter((c) => c.ok && c.at < (crash?.at ?? 0)).length,
      waitExit: waited.code,
      waitMs: waited.endedAt - pub.at,
      victimState: status.hosts.find((h) => h.host === victim)?.state,
      lbMembers: fleet.lb.members(),
    });
    expect(waited.code, show(waited)).toBe(1);
    expect(deploys.map((d) => d.host)).toEqual([victim]);
    expect(ran).toEqual([victim]);
    // It came up and passed the gate's first checks — the min-healthy window is what caught it.
    expect(crash, fleet.describe()).toBeDefined();
    expect(checks.some((c) => c.ok && c.at < (crash?.at ?? 0))).toBe(true);
    expect(status.hosts.find((h) => h.host === victim)?.state).toBe("failed");
    expect(status.failedHosts).toEqual([victim]);
    expect(status.halted).toBe(true);
    // A failed gate runs no undrain: the host stays out of rotation, and status says so.
    expect(status.hosts.find((h) => h.host === victim)?.drained).toBe(true);
    expect(fleet.lb.edits().map((e) => `${e.op} ${e.host}`)).toEqual([`remove ${victim}`]);
    expect(fleet.lb.members().sort()).toEqual(fleet.hosts.filter((h) => h !== victim));
    for (const host of fleet.hosts.filter((h) => h !== victim)) expect(fleet.service(host).installed()).toBe("1.0");
  });
});

// ---------------------------------------------------------------------------------------------
// d: drain hooks

describe("zero downtime: drain and undrain", () => {
  test("d: drain/undrain hooks edit the LB member list (slots 2, min-healthy 500ms): no member is ever down, every host ends back in the list", async () => {
    const MIN_HEALTHY_MS = 500;
    const slots = 2;
    const fleet = await fleetFor("drain");
    await fleet.create(["--slots", String(slots)]);
    const prober = fleet.startProber({ lb: true });
    await everyHostServes(fleet, prober, "1.0");
    const since = Date.now();
    const pub = await fleet.publish("2.0", [...GATE, "--min-healthy-time", `${MIN_HEALTHY_MS}ms`, ...fleet.drainArgs()]);
    const waited = await fleet.wait(60_000);
    await everyHostServes(fleet, prober, "2.0");
    await prober.waitUntil(
      (s) => (s.members?.length === fleet.hosts.length && s.at > waited.endedAt) || undefined,
      5_000,
      "every host a member",
    );
    await prober.stop();
    const probes = prober.report({ since });
    const status = await fleet.status();
    const edits = fleet.lb.edits();
    report("zero-downtime d: drain/undrain, slots 2", {
      maxMembersDown: probes.maxDown.count,
      maxOutOfService: probes.maxOut.count,
      unansweredMs: probes.unansweredMs,
      outOfServiceMs: probes.outMs,
      probeGapP99Ms: probes.p99GapMs,
      maxProbeGapMs: probes.maxGapMs,
      ...timing(fleet, "2.0", slots, MIN_HEALTHY_MS, pub.at, waited.endedAt),
    });
    expect(waited.code, show(waited)).toBe(0);
    expect(inState(status, "current", "2.0")).toEqual(fleet.hosts);
    expect(fleet.lb.members().sort()).toEqual(fleet.hosts);
    for (const host of fleet.hosts) {
      // Out of rotation before its deploy began, back only after its new server had been up for the min-healthy time.
      const mine = edits.filter((e) => e.host === host);
      const deploy = fleet.deploys("2.0").find((d) => d.host === host);
      const ready = fleet
        .service(host)
        .events()
        .find((e) => e.kind === "ready" && e.version === "2.0");
      expect(mine.map((e) => e.op)).toEqual(["remove", "add"]);
      expect(mine[0]?.at).toBeLessThanOrEqual(deploy?.start ?? 0);
      expect(mine[1]?.at).toBeGreaterThanOrEqual((ready?.at ?? Number.POSITIVE_INFINITY) + MIN_HEALTHY_MS);
      expect(probes.unansweredMs[host]).toBeGreaterThanOrEqual(800); // restarted, while drained
    }
    expect(probes.maxGapMs).toBeLessThan(MAX_PROBE_GAP_MS);
    expect(probes.maxDown.count, JSON.stringify(probes.downSpans)).toBe(0);
    expect(probes.maxOut.count, JSON.stringify(probes.outSpans)).toBeLessThanOrEqual(slots);
  });
});

// ---------------------------------------------------------------------------------------------
// e: the slot ramp

describe("zero downtime: slot ramp", () => {
  test("e: --slot-increment 2 --slots 1 widens as hosts complete: 1 host in its rollout, then 2, then 3", async () => {
    const fleet = await fleetFor("ramp", 6);
    await fleet.create(["--slots", "1"]);
    fleet.hold(); // every restarted server stays unready: a host completes only when released
    await fleet.publish("2.0", [...GATE, ...PATIENT, "--slot-increment", "2"]);
    // Hosts in their rollout (admitted, not yet complete) at each stage, as status reports them.
    const inFlight: number[] = [];
    const inRollout = (st: AppStatusJson): number => inState(st, "deploying").length + inState(st, "verifying").length;

    // 0 completed → limit 1: one host, held in its gate; nobody else meanwhile.
    const [a] = await fleet.waitForDeploys("2.0", 1, 20_000);
    await inGate(fleet, [a?.host ?? ""], "2.0");
    const gated = await fleet.status();
    const aStatus = gated.hosts.find((h) => h.host === a?.host);
    expect(fleet.deploys("2.0")).toHaveLength(1);
    inFlight.push(inRollout(gated));

    // a completes → limit 1 + 1×1 = 2: two more at once.
    fleet.release([a?.host ?? ""]);
    const second = (await fleet.waitForDeploys("2.0", 3, 20_000)).slice(1);
    await inGate(
      fleet,
      second.map((d) => d.host),
      "2.0",
    );
    expect(fleet.deploys("2.0")).toHaveLength(3);
    inFlight.push(inRollout(await fleet.status()));

    // b completes → 2 completed, limit 3, c still held: two more.
    const [b] = second;
    fleet.release([b?.host ?? ""]);
    const third = (await fleet.waitForDeploys("2.0", 5, 20_000)).slice(3);
    await inGate(
      fleet,
      third.map((d) => d.host),
      "2.0",
    );
    expect(fleet.deploys("2.0")).toHaveLength(5);
    inFlight.push(inRollout(await fleet.status()));

    fleet.release();
    const waited = await fleet.wait(60_000);
    const status = await fleet.status();
    report("zero-downtime e: slot-increment 2, slots 1", { inFlightByStage: inFlight, deploys: fleet.deploys("2.0").length });
    expect(inFlight).toEqual([1, 2, 3]);
    // While held, the gated host says so in status.
    expect(aStatus?.state).toBe("verifying");
    expect(aStatus?.phase).toBe("health");
    expect(waited.code, show(waited)).toBe(0);
    expect(inState(status, "current", "2.0")).toEqual(fleet.hosts);
    expect(
      fleet
        .deploys("2.0")
        .map((d) => d.host)
        .sort(),
    ).toEqual(fleet.hosts); // each host deployed once
  });

  test("e: --slot-increment 0 --slots 2 admits exactly 2 hosts in the rollout; the rest stay queued until app promote", async () => {
    const fleet = await fleetFor("ramp0", 5);
    await fleet.create(["--slots", "2"]);
    await fleet.publish("2.0", [...GATE, "--slot-increment", "0"]);
    const held = await fleet.waitStatus(
      (s) => inState(s, "current", "2.0").length === 2 && inState(s, "queued").length === 3,
      30_000,
      "2 hosts current on 2.0 and 3 queued",
    );
    // The first two are done; the wait can only time out on the queued three.
    const timedOut = await fleet.wait(2_000);
    const startsBeforePromote = fleet.deploys("2.0").map((d) => d.host);
    const promoted = await fleet.cli(["app", "promote", APP]);
    const waited = await fleet.wait(60_000);
    const status = await fleet.status();
    report("zero-downtime e: slot-increment 0, slots 2", {
      deploysBeforePromote: startsBeforePromote.length,
      deploysAfter: fleet.deploys("2.0").length,
    });
    expect(timedOut.code, show(timedOut)).toBe(1);
    expect(timedOut.stderr).toMatch(/timed out/);
    expect(startsBeforePromote.sort()).toEqual(inState(held, "current", "2.0"));
    expect(promoted.code, show(promoted)).toBe(0);
    expect(waited.code, show(waited)).toBe(0);
    expect(inState(status, "current", "2.0")).toEqual(fleet.hosts);
    expect(
      fleet
        .deploys("2.0")
        .map((d) => d.host)
        .sort(),
    ).toEqual(fleet.hosts); // the first two were not deployed again
  });
});

// ---------------------------------------------------------------------------------------------
// f: faults during the health gate

describe("zero downtime: faults in the health gate", () => {
  test("f: an agent cut off from ZooKeeper longer than its session while in its gate: no excess but the documented one (measured), its slot re-held once back, every host reaches a verdict, the rollout ends", async () => {
    const SESSION_MS = 2_000;
    const fleet = await fleetFor("gatecut", HOSTS, SESSION_MS);
    await fleet.create(["--slots", "1"]);
    const leases = await fleet.leases();
    const prober = fleet.startProber({ lb: true });
    await everyHostServes(fleet, prober, "1.0");
    const since = Date.now();
    fleet.hold();
    await fleet.publish("2.0", [...GATE, ...PATIENT, "--max-failures", String(HOSTS), ...fleet.drainArgs()]);
    const [first] = await fleet.waitForDeploys("2.0", 1, 20_000);
    const x = first?.host ?? "";
    await inGate(fleet, [x], "2.0", 2);

    // Cut off in the gate, for a second longer than it takes ZooKeeper to expire the session.
    const blockedAt = fleet.block(x);
    const expiredAt = await fleet.waitSessionExpired(x, SESSION_MS + 15_000);
    await Bun.sleep(1_000); // the fault's length, not a wait for something to happen
    const unblockedAt = fleet.unblock(x);
    // Back on a new session: its gate still running, it holds a slot again (its lease
    // re-created) — or it gave the host a verdict.
    let statusReadAt = 0;
    const backAt = await poll(
      async () => {
        const last = leases.observations.at(-1);
        if (last && last.sendAt > unblockedAt && last.leases.some((l) => l.host === x && (l.ctime ?? 0) > blockedAt)) return last.sendAt;
        if (Date.now() - statusReadAt < 500) return undefined; // the CLI is slower than the lease monitor
        statusReadAt = Date.now();
        return inState(await fleet.status(), "failed").includes(x) ? statusReadAt : undefined;
      },
      20_000,
      `${x}'s slot re-held (or a verdict) after the partition`,
      20,
    );
    fleet.release([x]);
    const xDone = await fleet.waitStatus((s) => [...inState(s, "current"), ...inState(s, "failed")].includes(x), 30_000, `${x}'s verdict`);
    fleet.release();
    const waited = await fleet.wait(60_000);
    await prober.waitUntil((s) => (s.at > waited.endedAt + 100 ? true : undefined), 5_000, "a round after the wait");
    await prober.stop();
    const status = await fleet.status();

    // X stays exempt from the bound from the cut until its gate ended (the documented exception:
    // a slot lost with the session, re-created above the limit). Failed hosts stay drained by design.
    const settledAt = failedAt(status);
    const xGateEnd =
      fleet.lb.edits().find((e) => e.host === x && e.op === "add" && e.at > blockedAt)?.at ?? settledAt[x] ?? Number.POSITIVE_INFINITY;
    const probes = prober.report({ since, settledAt, exempt: [{ host: x, from: blockedAt, to: xGateEnd }] });
    const others = fleet.deploys("2.0").filter((d) => d.host !== x && d.start < xGateEnd);
    const withoutLease = leases.observations.filter((o) => o.sendAt > backAt && o.recvAt < xGateEnd && !o.leases.some((l) => l.host === x));
    report("zero-downtime f: session lost in the health gate", {
      sessionTimeoutMs: SESSION_MS,
      expiredAfterCutMs: expiredAt - blockedAt,
      slotBackAfterHealMs: backAt - unblockedAt,
      xVerdict: xDone.hosts.find((h) => h.host === x)?.state,
      admittedWhileXGated: others.map((d) => d.host),
      maxOutOfService: probes.maxOut.count,
      maxOutCountedAgainstSlots: probes.maxOutCounted.count,
      allowedExcess: Math.max(0, probes.maxOut.count - 1),
      maxMembersDown: probes.maxDown.count,
      observationsWithoutXLeaseAfterBack: withoutLease.length,
      verdicts: Object.fromEntries(status.hosts.map((h) => [h.host, h.state])),
    });
    expect(waited.code, show(waited)).toBe(0);
    expect([...inState(status, "current", "2.0"), ...inState(status, "failed")].sort()).toEqual(fleet.hosts);
    expect(withoutLease).toEqual([]);
    expect(probes.maxOutCounted.count, JSON.stringify(probes.outSpans)).toBeLessThanOrEqual(1);
    expect(probes.maxDown.count, JSON.stringify(probes.downSpans)).toBe(0);
    expect(fleet.crashed()).toEqual([]);
  });

  test("f: an agent killed (kill -9) in its gate and restarted at once (same host id, --state-dir): the slot stays held — never 2 hosts out of service with 1 slot — every host reaches a verdict, the rollout ends", async () => {
    const SESSION_MS = 4_000; // the restart (≈0.5 s) lands well inside it
    const fleet = await fleetFor("gatekill", HOSTS, SESSION_MS);
    await fleet.create(["--slots", "1"]);
    const leases = await fleet.leases();
    const prober = fleet.startProber({ lb: true });
    await everyHostServes(fleet, prober, "1.0");
    const since = Date.now();
    fleet.hold();
    await fleet.publish("2.0", [...GATE, ...PATIENT, "--max-failures", String(HOSTS), ...fleet.drainArgs()]);
    const [first] = await fleet.waitForDeploys("2.0", 1, 20_000);
    const x = first?.host ?? "";
    await inGate(fleet, [x], "2.0", 2);

    const killedAt = await fleet.kill9(x);
    const restarted = await fleet.restartAgent(x);
    await restarted.waitForLog(/agent started/, 20_000);
    const registeredAt = Date.now();
    fleet.release([x]);
    const xDone = await fleet.waitStatus((s) => [...inState(s, "current"), ...inState(s, "failed")].includes(x), 30_000, `${x}'s verdict`);
    fleet.release();
    const waited = await fleet.wait(60_000);
    await prober.waitUntil((s) => (s.at > waited.endedAt + 100 ? true : undefined), 5_000, "a round after the wait");
    await prober.stop();
    const status = await fleet.status();

    const settledAt = failedAt(status);
    const xGateEnd = fleet.lb.edits().find((e) => e.host === x && e.op === "add")?.at ?? settledAt[x] ?? Number.POSITIVE_INFINITY;
    const probes = prober.report({ since, settledAt });
    // From the kill to the end of its gate, every lease observation shows one of x's (the dying
    // session's, then the restarted agent's): no moment in which another host could take its slot.
    const during = leases.observations.filter((o) => o.sendAt > killedAt && o.recvAt < xGateEnd);
    const gaps = during.filter((o) => !o.leases.some((l) => l.host === x));
    report("zero-downtime f: agent kill -9 + restart in the health gate", {
      sessionTimeoutMs: SESSION_MS,
      registeredAfterKillMs: registeredAt - killedAt,
      xVerdict: xDone.hosts.find((h) => h.host === x)?.state,
      gateEndedAfterKillMs: Number.isFinite(xGateEnd) ? xGateEnd - killedAt : null,
      observationsDuringGate: during.length,
      observationsWithoutXLease: gaps.length,
      maxOutOfService: probes.maxOut.count,
      maxMembersDown: probes.maxDown.count,
      verdicts: Object.fromEntries(status.hosts.map((h) => [h.host, h.state])),
    });
    expect(waited.code, show(waited)).toBe(0);
    expect([...inState(status, "current", "2.0"), ...inState(status, "failed")].sort()).toEqual(fleet.hosts);
    expect(during.length).toBeGreaterThan(0);
    expect(gaps).toEqual([]);
    expect(probes.maxOut.count, JSON.stringify(probes.outSpans)).toBeLessThanOrEqual(1);
    expect(probes.maxDown.count, JSON.stringify(probes.downSpans)).toBe(0);
    expect(fleet.crashed()).toEqual([]);
  });
});

/** Failed hosts of the current rollout → when they failed (epoch ms). */
function failedAt(status: AppStatusJson): Record<string, number> {
  return Object.fromEntries(
    status.hosts.filter((h) => h.rolloutId === status.rolloutId && h.state === "failed").map((h) => [h.host, Date.parse(h.since)]),
  );
}
