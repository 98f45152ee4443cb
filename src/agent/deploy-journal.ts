import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEPLOY_PHASES, type DeployPhase } from "../config/payloads.ts";
import { GroupTermination, groupAlive } from "./process-group.ts";

/**
 * A host's admission in progress for one app: from the moment it holds a slot until it
 * releases it. `phase` says how far it got; while a command runs (drain, deploy, verify, a
 * health check, undrain) its process group is recorded too, so it can be found again.
 */
export interface JournalEntry {
  app: string;
  rolloutId: string;
  version: string;
  phase: DeployPhase;
  /** Process group of the command running now (= its shell's pid, a group leader); 0: none. */
  pgid: number;
  /** The leader's start time in clock ticks (/proc/<pid>/stat field 22), against pid reuse. */
  startTicks: string;
  /** When the host was admitted. */
  admittedAt: string;
  /** When the running command started, and its timeout (a restarted agent kills it at that). */
  startedAt: string;
  timeoutMs: number;
}

/**
 * One small file per admission in progress, in the agent's state directory, so that an agent
 * that crashed (kill -9, OOM) and was restarted finds what it was doing: the new agent holds a
 * slot for it — waiting for a command it left running, killing it at its timeout — and finishes
 * the admission (health gate, undrain included) instead of reporting the host current, or
 * deploying on top of a running deploy. Without a state directory the journal is off.
 */
export class DeployJournal {
  private readonly open = new Map<string, JournalEntry>();

  constructor(private readonly dir: string | undefined) {
    if (dir) mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** The host was admitted (holds a slot) for this rollout. */
  admit(app: string, rolloutId: string, version: string, phase: DeployPhase): void {
    const now = new Date().toISOString();
    this.write({ app, rolloutId, version, phase, pgid: 0, startTicks: "", admittedAt: now, startedAt: now, timeoutMs: 0 });
  }

  /** The admission moved on, or a command of it started (pgid) or ended (pgid 0). */
  update(app: string, change: Partial<Pick<JournalEntry, "phase" | "pgid" | "startTicks" | "startedAt" | "timeoutMs">>): void {
    const entry = this.open.get(app);
    if (entry) this.write({ ...entry, ...change });
  }

  /** The admission is over (slot released). */
  clear(app: string): void {
    this.open.delete(app);
    if (this.dir) rmSync(this.path(app), { force: true });
  }

  /** Admissions a previous run of the agent left unfinished. Unreadable files are removed. */
  admitted(): JournalEntry[] {
    if (!this.dir) return [];
    const found: JournalEntry[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith(".deploy.json")) continue;
      const path = join(this.dir, name);
      const entry = parseEntry(path);
      if (entry) found.push(entry);
      else rmSync(path, { force: true });
    }
    return found;
  }

  /** Admissions left unfinished whose command still runs. */
  orphans(): JournalEntry[] {
    return this.admitted().filter(commandAlive);
  }

  private write(entry: JournalEntry): void {
    this.open.set(entry.app, entry);
    if (!this.dir) return;
    const path = this.path(entry.app);
    writeFileSync(`${path}.tmp`, JSON.stringify(entry), { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
  }

  private path(app: string): string {
    return join(this.dir ?? ".", `${app}.deploy.json`);
  }
}

/** An entry as stored; one written before admissions were journaled (a running deploy
 *  command only) reads as phase `deploying`. Undefined when unreadable. */
function parseEntry(path: string): JournalEntry | undefined {
  try {
    const raw = JSON.parse(readFileSync(path, "utf8")) as Partial<JournalEntry>;
    const { app, rolloutId, version, pgid, startTicks, startedAt, timeoutMs } = raw;
    if (typeof app !== "string" || typeof rolloutId !== "string" || typeof version !== "string") return undefined;
    if (typeof pgid !== "number" || typeof startedAt !== "string" || typeof timeoutMs !== "number") return undefined;
    const phase = raw.phase !== undefined && (DEPLOY_PHASES as readonly string[]).includes(raw.phase) ? raw.phase : "deploying";
    const admittedAt = typeof raw.admittedAt === "string" ? raw.admittedAt : startedAt;
    return {
      app,
      rolloutId,
      version,
      phase,
      pgid,
      startTicks: typeof startTicks === "string" ? startTicks : "",
      admittedAt,
      startedAt,
      timeoutMs,
    };
  } catch {
    return undefined;
  }
}

/** Whether the entry's command still runs. */
export function commandAlive(entry: Pick<JournalEntry, "pgid" | "startTicks">): boolean {
  return entry.pgid > 1 && journaledGroupAlive(entry);
}

/** Start time of a process in clock ticks since boot, or undefined if it does not exist. */
export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 2 (comm) may contain spaces and parentheses: split after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19]; // field 22 overall
  } catch {
    return undefined;
  }
}

/**
 * Whether a journaled deploy's process group still runs. While its leader (the shell) lives,
 * the leader's start time guards against pid reuse. Once the leader is gone, members may go on
 * (`svc-migrate &`): they are still ours, because Linux does not hand out a pid that is still
 * some live group's id.
 */
export function journaledGroupAlive(entry: Pick<JournalEntry, "pgid" | "startTicks">): boolean {
  if (!groupAlive(entry.pgid)) return false;
  const leaderStart = processStartTicks(entry.pgid);
  return leaderStart === undefined || leaderStart === entry.startTicks;
}

/** How often a restarted agent looks whether an orphaned deploy is still running (not our child:
 *  no exit event to wait for). */
const ORPHAN_POLL_MS = 200;

/**
 * Resolves once a journaled deploy of a previous agent run has ended, ending it at its own
 * timeout like any deploy (SIGTERM, SIGKILL after the grace period; only zombies left counts as
 * ended) — or at once when `killSignal` aborts (the agent's second shutdown signal: SIGKILL,
 * as for a deploy of its own).
 */
export async function waitForOrphan(entry: JournalEntry, killSignal?: AbortSignal): Promise<void> {
  if (entry.pgid <= 1) return;
  const deadline = Date.parse(entry.startedAt) + entry.timeoutMs;
  const ending = new GroupTermination(entry.pgid);
  try {
    while (journaledGroupAlive(entry) && !ending.onlyZombiesLeft) {
      if (killSignal?.aborted) ending.kill();
      else if (Date.now() > deadline) ending.terminate();
      await Bun.sleep(ORPHAN_POLL_MS);
    }
  } finally {
    ending.dispose();
  }
}
