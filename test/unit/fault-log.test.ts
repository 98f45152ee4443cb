// The fault suite's invariant checker (test/harness/fault-log.ts): a pass of the fault suite or
// the chaos script is only worth as much as this.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type DeployLine,
  type LeaseObservation,
  analyseConcurrency,
  limitAt,
  lineCount,
  pairDeploys,
  readDeployLines,
} from "../harness/fault-log.ts";
import { percentile } from "../harness/percentile.ts";

let pid = 100;
/** Lines from a compact script: "+h1@0" starts h1 at t=0 (ms), "-h1@1000" ends it. */
function script(...steps: string[]): DeployLine[] {
  const pids = new Map<string, number>();
  return steps.map((step, line) => {
    const m = /^([+-])(\w+)@(\d+)$/.exec(step);
    if (!m?.[1] || !m[2] || !m[3]) throw new Error(`bad step ${step}`);
    const host = m[2];
    if (m[1] === "+") pids.set(host, ++pid);
    return { kind: m[1] === "+" ? "start" : "end", host, version: "1.0", pid: pids.get(host) ?? 0, at: Number(m[3]), line };
  });
}

const SLOTS_2 = [{ from: 0, to: 0, slots: 2 }];
const SLOTS_1 = [{ from: 0, to: 0, slots: 1 }];
const observe = (at: number, ...leases: [string, number][]): LeaseObservation => ({
  sendAt: at,
  recvAt: at + 5,
  leases: leases.map(([host, ctime]) => ({ host, ctime })),
});

describe("fault log", () => {
  test("parses start/end lines with pid and time, pairs them by pid, counts lines", () => {
    const dir = mkdtempSync(join(tmpdir(), "fault-log-"));
    const path = join(dir, "deploys.log");
    writeFileSync(path, "start h1 1.0 42 1000\nnoise\nstart h2 1.0 43 1100\nend h1 1.0 42 2000\n");
    const lines = readDeployLines(path);
    expect(lines.map((l) => `${l.kind} ${l.host} ${l.pid} ${l.at} ${l.line}`)).toEqual([
      "start h1 42 1000 0",
      "start h2 43 1100 2",
      "end h1 42 2000 3",
    ]);
    expect(readDeployLines(path, 2)).toHaveLength(2);
    expect(lineCount(path)).toBe(4);
    expect(pairDeploys(lines).map((d) => [d.host, d.end])).toEqual([
      ["h1", 2000],
      ["h2", undefined],
    ]);
  });

  test("limitAt: a change counts from its call on; while in flight (and just before a start) both values count", () => {
    const changes = [
      { from: 0, to: 0, slots: 3 },
      { from: 10_000, to: 10_050, slots: 1 },
      { from: 20_000, to: 20_050, slots: 3 },
    ];
    expect(limitAt(changes, 5_000)).toBe(3);
    expect(limitAt(changes, 10_020)).toBe(3); // in flight
    expect(limitAt(changes, 10_400)).toBe(3); // within the admission lag
    expect(limitAt(changes, 11_000)).toBe(1);
    expect(limitAt(changes, 19_999)).toBe(1);
    expect(limitAt(changes, 20_010)).toBe(3);
  });

  test("within the slots: no violation", () => {
    const r = analyseConcurrency(script("+a@0", "+b@10", "-a@1000", "+c@1010", "-b@1020", "-c@2000"), SLOTS_2, [], [], []);
    expect(r).toMatchObject({ deploys: 3, maxConcurrent: 2, maxLimit: 2, allowedExcess: 0, violations: [] });
  });

  test("more deploys than slots with no lost session: a violation", () => {
    const r = analyseConcurrency(script("+a@0", "+b@10", "+c@20", "-a@1000", "-b@1000", "-c@1000"), SLOTS_2, [], [], []);
    expect(r.maxConcurrent).toBe(3);
    expect(r.violations).toHaveLength(1);
    expect(r.violations[0]).toMatch(/3 deploys at once \(limit 2\) when c started/);
  });

  test("two deploys of one host at once: always a violation", () => {
    const lines = script("+a@0", "+a@500", "-a@1000", "-a@1500");
    const r = analyseConcurrency(lines, SLOTS_2, [], [], []);
    expect(r.violations.some((v) => /a: deploy of 1.0 .* started while its deploy of 1.0 .* was still running/.test(v))).toBe(true);
  });

  test("an orphan of a killed agent explains one excess deploy (allowed, measured)", () => {
    const lines = script("+a@0", "+b@10", "+c@3000", "-b@3500", "-a@4000", "-c@4500");
    const kills = [{ host: "a", at: 500 }];
    const r = analyseConcurrency(lines, SLOTS_2, [], [], kills);
    expect(r.violations).toEqual([]);
    expect(r).toMatchObject({ maxConcurrent: 3, allowedExcess: 1, allowedExcessStarts: 1, lostDeploys: { orphan: 1, sessionLost: 0 } });
    expect(r.allowedExcessMs).toBe(500);
  });

  test("an orphan whose agent was restarted within the session holds its slot: no excess allowed; its re-created lease is fine, a gap is not", () => {
    const lines = script("+a@0", "+b@10", "+c@3000", "-b@3500", "-a@4000", "-c@4500");
    const kills = [{ host: "a", at: 500, slotHeld: true }];
    const strict = analyseConcurrency(lines, SLOTS_2, [], [], kills);
    expect(strict.violations.some((v) => /3 deploys at once \(limit 2\)/.test(v))).toBe(true);
    expect(strict.lostDeploys).toEqual({ orphan: 0, sessionLost: 0, leaseDeleted: 0 });
    const held = analyseConcurrency(
      script("+a@0", "+b@10", "-a@4000", "-b@4100"),
      SLOTS_2,
      [observe(1_000, ["a", -5], ["a", 700], ["b", 5]), observe(3_000, ["a", 700], ["b", 5])],
      [],
      kills,
    );
    expect(held.violations).toEqual([]);
    const gap = analyseConcurrency(
      script("+a@0", "+b@10", "-a@4000", "-b@4100"),
      SLOTS_2,
      [observe(1_000, ["b", 5]), observe(3_000, ["a", 1_500], ["b", 5])],
      [],
      kills,
    );
    expect(gap.violations).toEqual([expect.stringContaining("no lease while its agent restarted within the session")]);
  });

  test("leases/ deleted by hand while a deploy ran: its lease is lost even if no observation caught it; a deletion before the deploy explains nothing", () => {
    const lines = script("+a@0", "+c@1010", "-a@1500", "-c@2000");
    const window = { kind: "leases deleted", hosts: undefined, from: 1_000, to: 1_005 };
    const deletion = [{ ...window, removesLeases: true }];
    const r = analyseConcurrency(lines, SLOTS_1, [], deletion, []);
    expect(r.violations).toEqual([]);
    expect(r).toMatchObject({ maxConcurrent: 2, allowedExcess: 1, lostDeploys: { orphan: 0, sessionLost: 0, leaseDeleted: 1 } });
    const before = analyseConcurrency(script("+a@2000", "+c@2010", "-a@2500", "-c@3000"), SLOTS_1, [], deletion, []);
    expect(before.violations.some((v) => /2 deploys at once \(limit 1\)/.test(v))).toBe(true);
    const notLeases = analyseConcurrency(lines, SLOTS_1, [], [window], []);
    expect(notLeases.violations.some((v) => /2 deploys at once \(limit 1\)/.test(v))).toBe(true);
  });

  test("a lease that vanished mid-deploy during a fault on that host: session lost, excess allowed", () => {
    const lines = script("+a@0", "+b@10", "+c@3000", "-a@4000", "-b@4100", "-c@4200");
    const obs = [observe(1_000, ["a", -5], ["b", 5]), observe(2_500, ["b", 5]), observe(3_500, ["a", 3_200], ["b", 5], ["c", 2_900])];
    const faults = [{ kind: "SIGSTOP", hosts: ["a"], from: 500, to: 2_800 }];
    const r = analyseConcurrency(lines, SLOTS_2, obs, faults, []);
    expect(r.violations).toEqual([]);
    expect(r).toMatchObject({ allowedExcess: 1, lostDeploys: { orphan: 0, sessionLost: 1 } });
  });

  test("a lease re-created after the deploy began counts as a lost session too", () => {
    const lines = script("+a@1000", "+b@1010", "+c@3000", "-a@4000", "-b@4100", "-c@4200");
    const obs = [observe(3_500, ["a", 2_900], ["b", 900], ["c", 2_950])];
    const faults = [{ kind: "block", hosts: ["a"], from: 1_500, to: 2_800 }];
    const r = analyseConcurrency(lines, SLOTS_2, obs, faults, []);
    expect(r).toMatchObject({ allowedExcess: 1, violations: [] });
  });

  test("a lease gone mid-deploy with no fault on that host: reported, and the excess is a violation", () => {
    const lines = script("+a@0", "+b@10", "+c@3000", "-a@4000", "-b@4100", "-c@4200");
    const obs = [observe(2_500, ["b", 5])];
    const faults = [{ kind: "SIGSTOP", hosts: ["b"], from: 500, to: 2_800 }];
    const r = analyseConcurrency(lines, SLOTS_2, obs, faults, []);
    expect(r.violations.some((v) => /^a 1\.0 .*no lease while deploying, with no fault on that host/.test(v))).toBe(true);
    expect(r.violations.some((v) => /3 deploys at once/.test(v))).toBe(true);
  });

  test("percentile", () => {
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(percentile([5, 1, 3, 2, 4], 99)).toBe(5);
    expect(Number.isNaN(percentile([], 50))).toBe(true);
  });
});
