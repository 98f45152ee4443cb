// Shared by every fault scenario file: one 3-node ensemble per file (so a failure in one file
// never leaves another with a broken ensemble), fleets of compiled agents started per test and
// stopped after it — pass or fail — and the ensemble healed (every member running and in the
// quorum) before the next test. Measured numbers go to stdout as one line per scenario
// (`[faults] <scenario> {...}`), and are appended as JSON lines to $FAULTS_REPORT if set.

import { afterEach, expect } from "bun:test";
import { appendFileSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { type CheckReport, FaultFleet, type FleetTls } from "../harness/fault-fleet.ts";
import { useAgentProcesses } from "../harness/agent-process.ts";
import { processTempDir } from "../harness/cli.ts";
import { type EnsembleFixture, useEnsemble } from "../harness/ensemble.ts";
import { type ServerTls, uniqueChroot } from "../harness/zookeeper.ts";

export interface FleetSpec {
  prefix: string;
  hosts: number;
  sessionTimeoutMs: number;
  /** Default deploy length (seconds) for hosts without DEPLOY_SECONDS. */
  deploySeconds?: number;
}

export interface FaultSuite {
  readonly ens: EnsembleFixture;
  fleet(spec: FleetSpec): Promise<FaultFleet>;
}

/**
 * `tls`: read in beforeAll — the ensemble then serves TLS with `server`, and every fleet's
 * agents and CLI speak mutual TLS with `fleet`'s certificates (see tlsFaultSuite).
 */
export function useFaultSuite(options: { tls?: () => { server: ServerTls; fleet: FleetTls } } = {}): FaultSuite {
  let tls: FleetTls | undefined;
  const ens = useEnsemble(() => {
    const settings = options.tls?.();
    tls = settings?.fleet;
    return settings ? { tls: settings.server } : {};
  });
  useAgentProcesses(); // builds dist/conveyor once; SIGKILLs any agent left after each test
  const fleets: FaultFleet[] = [];

  afterEach(async () => {
    await Promise.all(fleets.splice(0).map((f) => f.stop()));
    // Heal the ensemble for the next test: thaw, restart what is down, wait for the quorum.
    const e = ens.ensemble;
    for (const m of e.members) if (m.state === "frozen") await e.kill(m.id, "SIGCONT");
    await Promise.all(e.members.filter((m) => m.state === "down").map((m) => e.start(m.id)));
    await e.waitForQuorum();
  }, 60_000);

  return {
    ens,
    async fleet(spec) {
      const hosts = Array.from({ length: spec.hosts }, (_, i) => `${spec.prefix}${i + 1}`);
      const fleet = await FaultFleet.start({
        ensemble: ens.ensemble,
        chroot: uniqueChroot(spec.prefix),
        root: mkdtempSync(join(processTempDir(), `fleet-${spec.prefix}-`)),
        hosts,
        sessionTimeoutMs: spec.sessionTimeoutMs,
        deploySeconds: spec.deploySeconds ?? 1,
        ...(tls ? { tls } : {}),
      });
      fleets.push(fleet);
      return fleet;
    },
  };
}

/** One line per scenario with its measured numbers (and a JSON line in $FAULTS_REPORT). */
export function report(scenario: string, numbers: Record<string, unknown>): void {
  console.log(`[faults] ${scenario} ${JSON.stringify(numbers)}`);
  const file = process.env.FAULTS_REPORT;
  if (file) appendFileSync(file, `${JSON.stringify({ scenario, ...numbers })}\n`);
}

/** The numbers of a check worth reporting. */
export function summarise(check: CheckReport): Record<string, unknown> {
  const c = check.concurrency;
  return {
    deploys: c.deploys,
    maxConcurrent: c.maxConcurrent,
    slots: c.maxLimit,
    allowedExcess: c.allowedExcess,
    allowedExcessStarts: c.allowedExcessStarts,
    allowedExcessMs: c.allowedExcessMs,
    orphanDeploys: c.lostDeploys.orphan,
    sessionLostDeploys: c.lostDeploys.sessionLost,
    leaseDeletedDeploys: c.lostDeploys.leaseDeleted,
    violations: c.violations.length,
    errorLines: check.errorLines.length,
  };
}

/**
 * The invariants every scenario asserts once its rollout has ended: never more deploys than
 * slots except where a deploy had lost its session (the one allowed case of docs/ARCHITECTURE.md — measured, not
 * failed; `strict` demands there is none), no lock or lease node left, no deploy process left,
 * no agent crashed, no ERROR logged by an agent.
 */
export function expectInvariants(check: CheckReport, opts: { strict: boolean }): void {
  expect(check.concurrency.violations).toEqual([]);
  if (opts.strict) {
    expect(check.concurrency.maxConcurrent).toBeLessThanOrEqual(check.concurrency.maxLimit);
    expect(check.concurrency.lostDeploys).toEqual({ orphan: 0, sessionLost: 0, leaseDeleted: 0 });
  }
  expect(check.leftovers).toEqual({ lock: [], leases: [] });
  expect(check.orphans).toEqual([]);
  expect(check.crashed).toEqual([]);
  expect(check.errorLines).toEqual([]);
}
