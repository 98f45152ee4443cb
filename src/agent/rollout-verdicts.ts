import type { AppSpec } from "../config/app-spec.ts";
import type { CommandOutcome } from "./app-commands.ts";
import type { HostReporter, Report } from "./host-reporter.ts";
import type { Logger } from "./logger.ts";

/** Rollouts remembered per kind. Only the current rollout is ever acted on, and one never
 *  becomes current again once another was published; a few spare cover specs read out of order. */
const REMEMBERED_ROLLOUTS = 8;

/** A set that forgets its oldest members beyond `limit`: per-rollout memory stays bounded for
 *  an agent's whole life. */
class RecentSet {
  private readonly members = new Set<string>();
  constructor(private readonly limit: number) {}

  add(value: string): void {
    this.members.delete(value);
    this.members.add(value);
    for (const oldest of this.members) {
      if (this.members.size <= this.limit) break;
      this.members.delete(oldest);
    }
  }

  has(value: string): boolean {
    return this.members.has(value);
  }
}

/**
 * This host's verdicts on one app's rollouts: a rollout it failed is never retried here (a new
 * rollout or `app retry` does), and each failure is recorded where the failure budget counts it.
 * After a restart the failure node tells (asked once per rollout); a rollout published while we
 * watched cannot have one, so that read is skipped.
 */
export class RolloutVerdicts {
  private readonly failed = new RecentSet(REMEMBERED_ROLLOUTS);
  private readonly publishedWhileWatching = new RecentSet(REMEMBERED_ROLLOUTS);
  /** A failure whose failure node or status write did not get through (ZooKeeper was down):
   *  written again on the next reconcile, so the host never stays "deploying" and the halt
   *  budget counts it. */
  private unreported: Report | undefined;

  /**
   * `onThisSession`: runs a write again across connection loss for as long as the session
   * lives (rejects once it is lost) — see fail().
   */
  constructor(
    private readonly reporter: HostReporter,
    private readonly log: Logger,
    private readonly onThisSession: (write: () => Promise<void>) => Promise<void>,
  ) {}

  /** `rolloutId` was published while we watched the app (no failure node of ours exists). */
  notePublished(rolloutId: string): void {
    this.publishedWhileWatching.add(rolloutId);
  }

  /** Whether this host failed the rollout (reading its failure node once if need be). A failure
   *  still unwritten for it is written now. */
  async failedHere(rolloutId: string): Promise<boolean> {
    if (this.failed.has(rolloutId)) {
      if (this.unreported?.rolloutId === rolloutId) await this.writeUnreported();
      return true;
    }
    if (this.publishedWhileWatching.has(rolloutId)) return false;
    if (await this.reporter.hasFailed(rolloutId)) {
      this.failed.add(rolloutId);
      return true;
    }
    this.publishedWhileWatching.add(rolloutId);
    return false;
  }

  /** Known failed (no read): after admission, for a spec published meanwhile. */
  knownFailed(rolloutId: string): boolean {
    return this.failed.has(rolloutId);
  }

  /**
   * The host failed the rollout: the failure counts toward its budget. A command the agent
   * itself interrupted (second shutdown signal) is not a verdict on the release: no failure is
   * recorded (the rollout is neither halted nor failed by it), the status says what happened,
   * and the agent deploys again when it starts.
   */
  async fail(spec: AppSpec, version: string, started: number, outcome: CommandOutcome & { error: string }, drained = false): Promise<void> {
    const { result, error } = outcome;
    const exitCode = result ? result.exitCode : null;
    const durationMs = Date.now() - started;
    this.failed.add(spec.rolloutId);
    const report: Report = {
      state: "failed",
      version,
      target: spec.version,
      rolloutId: spec.rolloutId,
      exitCode,
      error: outcome.interrupted ? `${error} (not counted as a failure: the agent deploys again when it starts)` : error,
      ...(result ? { outputTail: result.outputTail } : {}),
      durationMs,
      ...(drained ? { drained: true } : {}),
    };
    if (outcome.interrupted) {
      this.log.warn("deploy interrupted by agent shutdown; not counted as a failure", { version: spec.version, error, durationMs });
      await this.reporter.report(report).catch(() => undefined);
      return;
    }
    this.log.error("deploy failed", { version: spec.version, exitCode, error, durationMs });
    this.unreported = report;
    // Before the caller releases the slot: the next admission must count this failure, or one
    // more host deploys a release that has already failed here (past a halt). So a connection
    // lost meanwhile is waited out, on this session. A lost session took our lease with it:
    // then the write is left to the next reconcile.
    await this.onThisSession(() => this.writeUnreported());
  }

  /**
   * The failure node is written before the status and before the slot is released: the next
   * admission already counts it, and whoever sees this host failed also sees the halt. Both
   * writes are idempotent; if either throws (connection lost), the failure stays pending and
   * the next reconcile (the agent pokes every worker once reconnected) writes it again.
   */
  private async writeUnreported(): Promise<void> {
    const pending = this.unreported;
    if (!pending) return;
    await this.reporter.recordFailure(pending.rolloutId, pending.exitCode ?? null, pending.error ?? "");
    await this.reporter.report(pending);
    if (this.unreported === pending) this.unreported = undefined;
  }
}
