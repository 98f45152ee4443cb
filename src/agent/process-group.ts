/**
 * Ending a command's process group, the one way the agent does it: SIGTERM to the whole group,
 * SIGKILL KILL_GRACE_MS later if anything is left. Used for a command that timed out
 * (ShellCommandRunner) and for a deploy a crashed agent left behind (the orphan a restarted
 * agent waits for). Every command runs in its own group (the shell is its leader), so the group
 * id is the shell's pid.
 */

/** Between SIGTERM and SIGKILL. */
export const KILL_GRACE_MS = 5_000;
/** After SIGKILL only unreaped zombies can remain (when PID 1 does not reap): stop waiting for
 *  the group after this long. */
export const ZOMBIE_WAIT_MS = 2_000;

/** Sends `signal` to every process of the group; a group already gone is fine. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** Whether any process of the group still exists (zombies included; EPERM: it exists). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A group being ended: SIGTERM now, SIGKILL after the grace period (or at once with kill()). */
export class GroupTermination {
  private graceTimer: ReturnType<typeof setTimeout> | undefined;
  /** When SIGKILL was sent (epoch ms), if it was. */
  killedAt: number | undefined;

  constructor(private readonly pgid: number) {}

  /** SIGTERM, then SIGKILL after KILL_GRACE_MS. Calling it again does nothing. */
  terminate(): void {
    if (this.graceTimer !== undefined || this.killedAt !== undefined) return;
    signalGroup(this.pgid, "SIGTERM");
    this.graceTimer = setTimeout(() => this.kill(), KILL_GRACE_MS);
  }

  /** SIGKILL now (the agent's second shutdown signal). */
  kill(): void {
    this.killedAt ??= Date.now();
    signalGroup(this.pgid, "SIGKILL");
  }

  /** Only zombies can be left: SIGKILL went out ZOMBIE_WAIT_MS ago. */
  get onlyZombiesLeft(): boolean {
    return this.killedAt !== undefined && Date.now() - this.killedAt > ZOMBIE_WAIT_MS;
  }

  /** The group has ended: no SIGKILL is pending any more. */
  dispose(): void {
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
  }
}
