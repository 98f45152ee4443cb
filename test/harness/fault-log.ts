// The invariant checker of the fault suite and the chaos script (pure functions, no I/O but
// reading the log file).
//
// Every fault-test deploy appends one line when it starts and one just before it exits:
//
//   start <host> <version> <pid> <epoch-ms>
//   end   <host> <version> <pid> <epoch-ms>
//
// (pid = the deploy shell = its process group id). O_APPEND writes of one short line are atomic,
// so the file order is the real order. A start is written after the slot was taken and an end
// before it is released, so counting open deploys in file order gives a lower bound on the
// leases held at that moment: more open deploys than slots means more leases than slots.
//
// docs/ARCHITECTURE.md allows exactly one excess: "a deploy still running after its lease was lost" (its
// lease vanished with the session, so another host may take the slot; the agent re-creates the
// lease when it has a new session, or a restarted agent adopts the orphan from its journal).
// analyseConcurrency() therefore splits excess into `allowed` (explained by deploys that had
// lost their session) and `violations` (anything else). Whether a deploy lost its session is
// decided from outside: the lease monitor's observations (its host had no lease during the
// deploy, or only one created after the deploy started) AND a fault affecting that host during
// the deploy — or its agent was SIGKILLed while it ran (an orphan).

import { existsSync, readFileSync } from "node:fs";

export interface DeployLine {
  kind: "start" | "end";
  host: string;
  version: string;
  /** The deploy shell's pid, which is its process group id. */
  pid: number;
  /** Epoch milliseconds (`date +%s%3N`). */
  at: number;
  /** 0-based line number in the log. */
  line: number;
}

export interface Deploy {
  host: string;
  version: string;
  pid: number;
  start: number;
  /** undefined while it runs (or if it was killed before writing its end line). */
  end: number | undefined;
  startLine: number;
  endLine: number | undefined;
}

/** Shell that appends a start line, sleeps DEPLOY_SECONDS (a file in the agent's directory,
 *  default `defaultSeconds`) and then as long as a file HOLD exists there (a gate a test opens
 *  once what must happen during the deploy has happened), installs the version (VERSION file)
 *  and appends an end line. */
export function deployCommand(logPath: string, defaultSeconds: number): string {
  const stamp = `$CONVEYOR_HOST $CONVEYOR_VERSION $$ $(date +%s%3N)`;
  return (
    `echo "start ${stamp}" >> '${logPath}'; ` +
    `sleep "$(cat DEPLOY_SECONDS 2>/dev/null || echo ${defaultSeconds})"; ` +
    `while [ -e HOLD ]; do sleep 0.05; done; ` +
    `echo %(version)s > VERSION; ` +
    `echo "end ${stamp}" >> '${logPath}'`
  );
}

export const GET_VERSION_COMMAND = "cat VERSION 2>/dev/null || true";

export function readDeployLines(path: string, fromLine = 0): DeployLine[] {
  if (!existsSync(path)) return [];
  const out: DeployLine[] = [];
  const lines = readFileSync(path, "utf8").split("\n");
  for (let line = fromLine; line < lines.length; line++) {
    const [kind, host = "", version = "", pid = "", at = ""] = (lines[line] ?? "").trim().split(/\s+/);
    if ((kind === "start" || kind === "end") && /^\d+$/.test(pid) && /^\d+$/.test(at)) {
      out.push({ kind, host, version, pid: Number(pid), at: Number(at), line });
    }
  }
  return out;
}

/** Number of lines in the log (the `fromLine` of whatever is appended next). */
export function lineCount(path: string): number {
  if (!existsSync(path)) return 0;
  const text = readFileSync(path, "utf8");
  return text === "" ? 0 : text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
}

/** Pairs start and end lines by pid. */
export function pairDeploys(lines: readonly DeployLine[]): Deploy[] {
  const byPid = new Map<number, Deploy>();
  const deploys: Deploy[] = [];
  for (const l of lines) {
    if (l.kind === "start") {
      const d: Deploy = {
        host: l.host,
        version: l.version,
        pid: l.pid,
        start: l.at,
        end: undefined,
        startLine: l.line,
        endLine: undefined,
      };
      byPid.set(l.pid, d);
      deploys.push(d);
    } else {
      const d = byPid.get(l.pid);
      if (d) {
        d.end = l.at;
        d.endLine = l.line;
      }
    }
  }
  return deploys;
}

// ---------------------------------------------------------------------------------------------
// Slot limits over time

/** Slots in force over time. A change is in force from `from` on; between `from` and `to` (the
 *  set-slots call was in flight) either value may have been read, so both count. */
export interface SlotChange {
  from: number;
  to: number;
  slots: number;
}

/**
 * The highest limit an admission that led to a start at `at` may have seen: admission happens
 * a little before the start line (at most `admissionLagMs`), so every limit in force during
 * [at − lag, at] counts.
 */
export function limitAt(changes: readonly SlotChange[], at: number, admissionLagMs = 500): number {
  let limit = 0;
  let current = 0;
  for (const c of changes) {
    if (c.from > at) break;
    if (c.to < at - admissionLagMs) {
      current = c.slots; // fully in force before the window
      continue;
    }
    // In flight or changed inside the window: the previous value and this one both count.
    limit = Math.max(limit, current, c.slots);
    current = c.slots;
  }
  return Math.max(limit, current);
}

// ---------------------------------------------------------------------------------------------
// Lease observations and faults

export interface LeaseObservation {
  /** Epoch ms when the read was sent and when every part of it had answered. */
  sendAt: number;
  recvAt: number;
  /** Hosts with a lease node, and each lease's creation time (ZooKeeper ctime, epoch ms). */
  leases: readonly { host: string; ctime: number | undefined }[];
}

/** A fault window: `hosts` undefined = every host (ZooKeeper servers down, app deleted). */
export interface FaultWindow {
  kind: string;
  hosts: readonly string[] | undefined;
  from: number;
  to: number;
  /** The fault deleted every lease node of the app (`leases/` or the app deleted by hand): each
   *  deploy running at that moment lost its lease, even if no observation caught the moment
   *  before its agent re-created it (documented exception, cases 3 and 4). */
  removesLeases?: boolean;
}

/** SIGKILL of an agent: a deploy it was running goes on as an orphan with no session. */
export interface AgentKill {
  host: string;
  at: number;
  /** Restarted (same host id and --state-dir) well within the session timeout: the new agent
   *  holds the orphan's slot before the old session can expire, so no excess is allowed for
   *  it — its lease is only re-created, never missing. */
  slotHeld?: boolean;
}

export interface LeaseEvidence {
  /** When the first observation showing the loss was sent. */
  at: number;
  how: "no lease" | "lease re-created";
}

/** Observations taken entirely inside the deploy that show its host without a lease held since
 *  before the deploy started. */
export function leaseLossEvidence(d: Deploy, observations: readonly LeaseObservation[]): LeaseEvidence | undefined {
  const end = d.end ?? Number.POSITIVE_INFINITY;
  for (const o of observations) {
    if (o.sendAt <= d.start || o.recvAt >= end) continue;
    const mine = o.leases.filter((l) => l.host === d.host);
    if (mine.length === 0) return { at: o.sendAt, how: "no lease" };
    if (mine.every((l) => l.ctime !== undefined && l.ctime > d.start)) return { at: o.sendAt, how: "lease re-created" };
  }
  return undefined;
}

function overlaps(d: Deploy, from: number, to: number): boolean {
  return from < (d.end ?? Number.POSITIVE_INFINITY) && to > d.start;
}

export type LossReason = "orphan" | "session lost" | "lease deleted";

export interface LostDeploy {
  deploy: Deploy;
  reason: LossReason;
  /** When the loss began at the latest (fault start, or the kill). */
  since: number;
  evidence?: LeaseEvidence;
}

/** Slack after a fault ends during which its effects (reconnect, lease re-creation) still count. */
const FAULT_SLACK_MS = 10_000;

export function classifyLosses(
  deploys: readonly Deploy[],
  observations: readonly LeaseObservation[],
  faults: readonly FaultWindow[],
  kills: readonly AgentKill[],
): { lost: Map<number, LostDeploy>; unexplained: string[] } {
  const lost = new Map<number, LostDeploy>();
  const unexplained: string[] = [];
  for (const d of deploys) {
    const kill = kills.find((k) => k.host === d.host && k.at > d.start && k.at < (d.end ?? Number.POSITIVE_INFINITY));
    const evidence = leaseLossEvidence(d, observations);
    if (kill?.slotHeld) {
      if (evidence?.how === "no lease")
        unexplained.push(`${d.host} ${d.version} (pid ${d.pid}): no lease while its agent restarted within the session`);
      continue; // re-created by the restarted agent: not lost
    }
    if (kill) {
      lost.set(d.pid, { deploy: d, reason: "orphan", since: kill.at });
      continue;
    }
    const deletion = faults.find((f) => f.removesLeases && overlaps(d, f.from, f.to));
    if (deletion) {
      lost.set(d.pid, { deploy: d, reason: "lease deleted", since: deletion.from, evidence });
      continue;
    }
    if (!evidence) continue;
    const fault = faults.find((f) => (f.hosts === undefined || f.hosts.includes(d.host)) && overlaps(d, f.from, f.to + FAULT_SLACK_MS));
    if (fault) lost.set(d.pid, { deploy: d, reason: "session lost", since: Math.min(fault.from, evidence.at), evidence });
    else unexplained.push(`${d.host} ${d.version} (pid ${d.pid}): ${evidence.how} while deploying, with no fault on that host`);
  }
  return { lost, unexplained };
}

// ---------------------------------------------------------------------------------------------
// Concurrency

export interface ConcurrencyReport {
  deploys: number;
  /** Highest number of open deploys at any start, whatever the reason. */
  maxConcurrent: number;
  /** Highest limit in force at any start. */
  maxLimit: number;
  /** Largest excess over the limit explained by deploys that had lost their session. */
  allowedExcess: number;
  /** Starts at which such an allowed excess existed. */
  allowedExcessStarts: number;
  /** Total milliseconds during which more deploys ran than the limit (allowed case only). */
  allowedExcessMs: number;
  /** Deploys that ran without a session (orphans, session lost), by reason. */
  lostDeploys: { orphan: number; sessionLost: number; leaseDeleted: number };
  violations: string[];
}

/**
 * Walks the log in file order. At each start: open deploys vs the limit in force; an excess is
 * allowed only if removing the deploys that had already lost their session brings it within the
 * limit. Two deploys of one host at once are always a violation (deploying on top of a running
 * deploy), as are lease losses with no fault to explain them.
 */
export function analyseConcurrency(
  lines: readonly DeployLine[],
  slotChanges: readonly SlotChange[],
  observations: readonly LeaseObservation[],
  faults: readonly FaultWindow[],
  kills: readonly AgentKill[],
  admissionLagMs = 500,
): ConcurrencyReport {
  const deploys = pairDeploys(lines);
  const byPid = new Map(deploys.map((d) => [d.pid, d]));
  const { lost, unexplained } = classifyLosses(deploys, observations, faults, kills);
  const violations = [...unexplained];
  const open = new Map<number, Deploy>();
  let maxConcurrent = 0;
  let maxLimit = 0;
  let allowedExcess = 0;
  let allowedExcessStarts = 0;
  let allowedExcessMs = 0;
  let excessSince: number | undefined;
  let lastLimit = 0;
  for (const l of lines) {
    const d = byPid.get(l.pid);
    if (!d) continue;
    if (l.kind === "end") {
      open.delete(l.pid);
      if (excessSince !== undefined && open.size <= lastLimit) {
        allowedExcessMs += l.at - excessSince;
        excessSince = undefined;
      }
      continue;
    }
    const sameHost = [...open.values()].find((o) => o.host === d.host);
    if (sameHost) {
      violations.push(
        `${d.host}: deploy of ${d.version} (pid ${d.pid}) started while its deploy of ${sameHost.version} (pid ${sameHost.pid}) was still running`,
      );
    }
    open.set(l.pid, d);
    const limit = limitAt(slotChanges, l.at, admissionLagMs);
    lastLimit = limit;
    maxLimit = Math.max(maxLimit, limit);
    maxConcurrent = Math.max(maxConcurrent, open.size);
    if (open.size <= limit) continue;
    const lostNow = [...open.values()].filter((o) => {
      const loss = lost.get(o.pid);
      return loss !== undefined && loss.since <= l.at && o.pid !== d.pid;
    });
    if (open.size - lostNow.length <= limit) {
      allowedExcess = Math.max(allowedExcess, open.size - limit);
      allowedExcessStarts++;
      excessSince ??= l.at;
    } else {
      const running = [...open.values()].map((o) => `${o.host}:${o.version}`).join(", ");
      violations.push(
        `${open.size} deploys at once (limit ${limit}) when ${d.host} started ${d.version} at line ${l.line + 1}: ${running}` +
          (lostNow.length ? ` (${lostNow.length} without a session)` : ""),
      );
    }
  }
  const reasons = [...lost.values()];
  return {
    deploys: deploys.length,
    maxConcurrent,
    maxLimit,
    allowedExcess,
    allowedExcessStarts,
    allowedExcessMs,
    lostDeploys: {
      orphan: reasons.filter((r) => r.reason === "orphan").length,
      sessionLost: reasons.filter((r) => r.reason === "session lost").length,
      leaseDeleted: reasons.filter((r) => r.reason === "lease deleted").length,
    },
    violations,
  };
}
