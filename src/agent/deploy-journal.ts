import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GroupTermination, groupAlive } from "./process-group.ts";

/** A deploy (or verify) command that is running: enough to find its process group again. */
export interface JournalEntry {
  app: string;
  rolloutId: string;
  version: string;
  /** Process group id (= the shell's pid, it is a group leader). */
  pgid: number;
  /** The leader's start time in clock ticks (/proc/<pid>/stat field 22), against pid reuse. */
  startTicks: string;
  startedAt: string;
  timeoutMs: number;
}

/**
 * One small file per running deploy, in the agent's state directory, so that an agent that
 * crashed (kill -9, OOM) and was restarted can find a deploy it left running: the new agent
 * holds a slot for it until it ends (or kills it at its timeout) instead of deploying on top of
 * it. Without a state directory the journal is off.
 */
export class DeployJournal {
  constructor(private readonly dir: string | undefined) {
    if (dir) mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  record(entry: JournalEntry): void {
    if (!this.dir) return;
    const path = this.path(entry.app);
    writeFileSync(`${path}.tmp`, JSON.stringify(entry), { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
  }

  clear(app: string): void {
    if (this.dir) rmSync(this.path(app), { force: true });
  }

  /** Deploys recorded by a previous run whose process group still runs. Stale files are removed. */
  orphans(): JournalEntry[] {
    if (!this.dir) return [];
    const found: JournalEntry[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith(".deploy.json")) continue;
      const path = join(this.dir, name);
      try {
        const entry = JSON.parse(readFileSync(path, "utf8")) as JournalEntry;
        if (typeof entry.pgid === "number" && entry.pgid > 1 && journaledGroupAlive(entry)) {
          found.push(entry);
          continue;
        }
      } catch {
        // unreadable: treat as stale
      }
      rmSync(path, { force: true });
    }
    return found;
  }

  private path(app: string): string {
    return join(this.dir ?? ".", `${app}.deploy.json`);
  }
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
 * ended).
 */
export async function waitForOrphan(entry: JournalEntry): Promise<void> {
  const deadline = Date.parse(entry.startedAt) + entry.timeoutMs;
  const ending = new GroupTermination(entry.pgid);
  try {
    while (journaledGroupAlive(entry) && !ending.onlyZombiesLeft) {
      if (Date.now() > deadline) ending.terminate();
      await Bun.sleep(ORPHAN_POLL_MS);
    }
  } finally {
    ending.dispose();
  }
}
