import { AppSpec } from "../config/app-spec.ts";
import { decodeZnode, encodeZnode } from "../config/decode.ts";
import { InvalidDataError } from "../config/errors.ts";
import { Lease as LeasePayload } from "../config/payloads.ts";
import { repairAppLayout } from "../zk/app-layout.ts";
import type { ZkClient } from "../zk/client.ts";
import { isConnectivity, isNoAuth, isNoNode } from "../zk/errors.ts";
import { appPath, leasesDir, lockDir } from "../zk/paths.ts";
import { AcquireAbortedError, Semaphore } from "../zk/recipes/semaphore.ts";
import { appAdmission } from "./admission.ts";
import { AppCommands, type CommandOutcome, type ProbeOutcome } from "./app-commands.ts";
import type { CommandRunner } from "./command-runner.ts";
import { type DeployJournal, type JournalEntry, journaledGroupAlive } from "./deploy-journal.ts";
import { HeldSlot, type SlotDeps } from "./held-slot.ts";
import { HostReporter, type Report } from "./host-reporter.ts";
import type { Logger } from "./logger.ts";
import { sleep } from "./sleep.ts";

/** Reconciles in a row that may end on a missing node before the worker waits for a change. */
const MAX_MISSING_NODE_RETRIES = 8;

export interface WorkerDeps {
  zk: ZkClient;
  runner: CommandRunner;
  logger: Logger;
  now: () => Date;
  host: string;
  groups: readonly string[];
  /** Local policy: false means the command must not run (reported as refused). */
  allowCommand: (command: string) => boolean;
  /** Aborted on the second shutdown signal: kill running commands at once. */
  killSignal: AbortSignal;
  /** Where running deploys are recorded, so a restarted agent finds what a crash left running. */
  journal: DeployJournal;
}

/**
 * Serves one app on this host. Each app has its own worker and its own loop, so a hung deploy
 * of one app never blocks another. The loop is driven by the app node's watch: any change
 * re-runs `reconcile`, which decides whether this host needs to deploy, queues for a slot and
 * deploys. Failures are not retried for the same rollout (a new rollout or `app retry` does).
 */
export class AppWorker {
  private spec: AppSpec | undefined;
  private loop: Promise<void> | undefined;
  private dirty = false;
  private stopped = false;
  /** start() was called: the app node is being watched. */
  started = false;
  private acquireAbort: AbortController | undefined;
  /** Aborted by stop(): a probe (get-version-cmd) in flight is killed — it decides nothing
   *  that must finish, and a hung one would keep the agent from exiting. */
  private readonly probeAbort = new AbortController();
  /** The slot of the deploy running here, if any. */
  private slot: HeldSlot<AppSpec> | undefined;
  /** Reconciles in a row that ended on a missing node (see reconcileSafely). */
  private missingNodeRetries = 0;
  private readonly failedRollouts = new Set<string>();
  /** A failure whose failure node or status write did not get through (ZooKeeper was down):
   *  written again on the next reconcile, so the host never stays "deploying" and the halt
   *  budget counts it. */
  private unreportedFailure: Report | undefined;
  private readonly reporter: HostReporter;
  private readonly semaphore: Semaphore<AppSpec>;
  /** Rollouts published while we watched: no failure node of ours can exist for them. */
  private readonly newRollouts = new Set<string>();
  /** Which incarnation of the app node we last read (its czxid): a new one means the app was
   *  deleted and created again, and the leases of the old one are gone. */
  private specCzxid: string | undefined;
  private readonly log: Logger;
  private readonly commands: AppCommands;

  constructor(
    readonly app: string,
    private readonly deps: WorkerDeps,
  ) {
    this.reporter = new HostReporter(deps.zk, app, deps.host, deps.now, () => this.layoutUsable());
    this.semaphore = new Semaphore({
      zk: deps.zk,
      lockDir: lockDir(app),
      leasesDir: leasesDir(app),
      owner: deps.host,
      readAdmission: appAdmission(deps.zk, app, deps.host),
      onWaiting: (position, reason) => this.log.debug("waiting for a slot", { app, position, reason }),
    });
    const base = deps.logger;
    const fields = { app, host: deps.host };
    this.log = {
      debug: (m, f) => base.debug(m, { ...fields, ...f }),
      info: (m, f) => base.info(m, { ...fields, ...f }),
      warn: (m, f) => base.warn(m, { ...fields, ...f }),
      error: (m, f) => base.error(m, { ...fields, ...f }),
    };
    this.commands = new AppCommands(app, { ...deps, log: this.log });
  }

  /** Start (or, after a reconnect, restart) watching the app node (and the held lease). */
  start(): void {
    this.started = true;
    this.reporter.reset();
    this.slot?.watchLease();
    void this.watchSpec();
  }

  /** True while a deploy holds a slot (so shutdown waits and session loss restores it). */
  get busy(): boolean {
    return this.slot !== undefined;
  }

  /** Stop admitting: leave the queue now, kill a probe; a running deploy finishes. Resolves
   *  when idle. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.acquireAbort?.abort();
    this.probeAbort.abort();
    await this.loop;
  }

  /**
   * Session lost: our queue node and lease vanished with it. Called again once the new
   * session is up: re-create the lease of a still-running deploy before anything else so that
   * slot counts stay honest, then watch and reconcile again.
   */
  async onNewSession(): Promise<void> {
    await this.restoreHeldLease("session was lost during a deploy; lease re-created");
    // The agent restarts the worker (start) once presence is registered again.
  }

  /**
   * Re-creates the lease of a deploy that still runs, after its node vanished (session lost,
   * app deleted and created again); see HeldSlot.restore.
   */
  private async restoreHeldLease(why: string, onlyIfGone = false): Promise<void> {
    await this.slot?.restore(why, onlyIfGone);
  }

  private get slotDeps(): SlotDeps<AppSpec> {
    return { zk: this.deps.zk, semaphore: this.semaphore, log: this.log, repairLayout: () => this.layoutUsable() };
  }

  /**
   * Re-creates the app's directories deleted by hand (lock, leases, hosts, failures, …): an
   * agent that took their absence for "app deleted" stalled the app for good. `forbidden`: this
   * agent may not re-create them (a locked tree: only the admin may) — reported loudly; the
   * admin's next change of the app (e.g. `app retry`) repairs it and wakes us.
   */
  private async repairLayout(): Promise<"repaired" | "intact" | "gone" | "forbidden"> {
    const { zk } = this.deps;
    try {
      const created = await repairAppLayout(zk, this.app);
      for (const path of created) this.log.warn("re-created a missing node of the app (deleted outside Conveyor?)", { path });
      if (created.length > 0) return "repaired";
      return (await zk.exists(appPath(this.app))) === null ? "gone" : "intact";
    } catch (error) {
      if (!isNoAuth(error)) throw error;
      this.log.error("a node of the app is missing and this agent may not re-create it; the app waits until an admin changes it (e.g. conveyor app retry)", {
        error: error.message,
      });
      return "forbidden";
    }
  }

  /** For writes into the app's directories: may they be tried again? */
  private async layoutUsable(): Promise<boolean> {
    const state = await this.repairLayout();
    return state === "repaired" || state === "intact";
  }

  /**
   * A deploy that a previous run of this agent left running (it crashed): hold a slot for it
   * until its process group ends — killing it at its own timeout — and only then serve the app
   * again. Deploying on top of it would run two deploys on one server and exceed the slots.
   * Resolves once the slot is held (or could not be taken); the wait goes on in the worker.
   */
  adoptOrphan(entry: JournalEntry): Promise<void> {
    let slotTaken: () => void = () => undefined;
    const taken = new Promise<void>((resolve) => (slotTaken = resolve));
    this.loop = (async () => {
      const data = encodeZnode(LeasePayload, { host: this.deps.host, version: entry.version, since: entry.startedAt });
      try {
        this.slot = await HeldSlot.restored(data, this.slotDeps);
      } catch (error) {
        this.log.warn("could not hold a slot for the orphaned deploy", { error: String(error) });
      } finally {
        slotTaken();
      }
      this.log.warn("a deploy left running by a previous agent run is still going; waiting for it", { pgid: entry.pgid, version: entry.version });
      const deadline = Date.parse(entry.startedAt) + entry.timeoutMs;
      let killedAt: number | undefined;
      while (journaledGroupAlive(entry)) {
        if (Date.now() > deadline && killedAt === undefined) {
          killedAt = Date.now();
          signalGroup(entry.pgid, "SIGTERM");
        } else if (killedAt !== undefined && Date.now() - killedAt > 5_000) {
          signalGroup(entry.pgid, "SIGKILL");
        }
        if (killedAt !== undefined && Date.now() - killedAt > 7_000) break; // only zombies left
        await Bun.sleep(200);
      }
      this.deps.journal.clear(this.app);
      await this.releaseSlot();
      this.log.info("orphaned deploy ended", { pgid: entry.pgid });
    })().finally(() => {
      this.loop = undefined;
      this.poke();
    });
    return taken;
  }

  /**
   * The app was deleted and created again while `previous` (the old app's worker) may still be
   * running a deploy, whose lease went with the old app. Hold a slot for that deploy in the new
   * app until it ends, and only then serve the new app: the new rollout's slots must count it,
   * and two deploys of one app must never overlap on one server. If the slot cannot be taken
   * (the app deleted again, ZooKeeper down) the wait for the old deploy still holds.
   */
  followRetired(previous: AppWorker): void {
    const data = previous.slot?.data;
    this.loop = (async () => {
      if (data) {
        try {
          this.slot = await HeldSlot.restored(data, this.slotDeps);
          this.log.warn("app re-created while its previous deploy still runs here; holding a slot for it");
        } catch (error) {
          this.log.warn("could not hold a slot for the previous deploy", { error: String(error) });
        }
      }
      await previous.stop();
      await this.releaseSlot();
    })().finally(() => {
      this.loop = undefined;
      this.poke();
    });
  }

  /** A change we should act on (spec changed, connection back): run the loop (again). */
  poke(): void {
    if (this.stopped) return;
    if (this.loop) {
      this.dirty = true;
      return;
    }
    this.loop = (async () => {
      try {
        do {
          this.dirty = false;
          await this.reconcileSafely();
        } while (this.dirty && !this.stopped);
      } finally {
        this.loop = undefined;
      }
    })();
  }

  // One stable function: registering it again (start() after a reconnect) never doubles it.
  private readonly specWatcher = (event: { type: string }): void => {
    if (event.type !== "sessionLost") void this.watchSpec();
  };

  private async watchSpec(): Promise<void> {
    if (this.stopped) return;
    const path = appPath(this.app);
    try {
      const { data, stat } = await this.deps.zk.get(path, this.specWatcher);
      // Deleted and created again before the agent noticed the deletion: a deploy still running
      // here lost its lease with the old node; count it in the new app before anything else.
      // (The incarnation is noted only once that is done: a failure retries on the next read.)
      if (this.specCzxid !== undefined && stat.czxid !== this.specCzxid) {
        await this.restoreHeldLease("app re-created while its deploy still runs here; lease re-created in the new app", true).catch((e: unknown) => {
          if (isConnectivity(e)) throw e;
          this.log.warn("could not re-create the running deploy's lease in the re-created app", { error: String(e) });
        });
      }
      this.specCzxid = stat.czxid;
      const spec = decodeZnode(AppSpec, data, path);
      const changed = spec.rolloutId !== this.spec?.rolloutId;
      if (changed && this.spec !== undefined) this.newRollouts.add(spec.rolloutId);
      this.spec = spec;
      if (changed) this.log.info("rollout seen", { version: spec.version, rollout: spec.rolloutId });
      this.poke();
    } catch (error) {
      if (isNoNode(error)) {
        this.spec = undefined;
        this.acquireAbort?.abort();
        // A read of a missing node leaves no watch: watch for it to be created again (the agent
        // may never see it gone from /apps if it comes back quickly). Connectivity: as below.
        const back = await this.deps.zk.exists(path, this.specWatcher).catch((e: unknown) => {
          if (!isConnectivity(e)) this.log.error("cannot watch for the app to come back", { error: String(e) });
          return null;
        });
        if (back !== null) return this.watchSpec();
      } else if (error instanceof InvalidDataError) {
        this.spec = undefined;
        this.log.error("app spec is invalid; not deploying it", { reason: error.reason });
      } else if (!isConnectivity(error)) {
        this.log.error("cannot read app spec", { error: String(error) });
      }
      // Connectivity: the agent calls start() again once reconnected.
    }
  }

  private targets(spec: AppSpec): boolean {
    return spec.groups.length === 0 || spec.groups.some((g) => this.deps.groups.includes(g));
  }

  private async reconcileSafely(): Promise<void> {
    try {
      await this.reconcile();
      this.missingNodeRetries = 0;
    } catch (error) {
      if (error instanceof AcquireAbortedError) return;
      if (isNoNode(error)) {
        // The app was deleted underneath us — or one of its directories was: re-create it (or
        // find that another agent already has) and go round again. Bounded: a node that stays
        // missing must not become a busy loop; the next change of the app tries again.
        const layout = await this.repairLayout().catch(() => "gone" as const);
        if ((layout === "repaired" || layout === "intact") && this.missingNodeRetries < MAX_MISSING_NODE_RETRIES) {
          // Backing off: someone deleting the tree node by node (zkCli deleteall, app delete)
          // may take a while, and another agent may be re-creating what we miss meanwhile.
          await sleep(Math.min(100 * 2 ** this.missingNodeRetries, 2_000), this.probeAbort.signal);
          this.missingNodeRetries += 1;
          this.dirty = true;
        } else if (layout === "intact") {
          this.log.error("a node the app needs is still missing; waiting for the app to change", { error: error.message });
        }
        return;
      }
      if (isConnectivity(error)) {
        this.log.warn("ZooKeeper unavailable; will retry when connected", { error: (error as Error).message });
        return;
      }
      this.log.error("unexpected error", { error: error instanceof Error ? error.message : String(error) });
    }
  }

  private async reconcile(): Promise<void> {
    const spec = this.spec;
    if (!spec || this.stopped || !this.targets(spec)) return;
    if (this.failedRollouts.has(spec.rolloutId)) {
      if (this.unreportedFailure?.rolloutId === spec.rolloutId) await this.writeFailure();
      return;
    }
    // A rollout older than this worker may have failed here before a restart: ask once.
    if (!this.newRollouts.has(spec.rolloutId)) {
      if (await this.reporter.hasFailed(spec.rolloutId)) {
        this.failedRollouts.add(spec.rolloutId);
        return;
      }
      this.newRollouts.add(spec.rolloutId);
    }
    const refused = this.commands.refused(spec);
    if (refused) {
      // Local policy: never run it, and take no slot. Reported like any failure of this rollout.
      return this.fail(spec, "", Date.now(), { refused: true, error: `${refused} refused by local policy (allowCommands)` });
    }
    const probe = await this.commands.currentVersion(spec, this.probeAbort.signal);
    if (!("version" in probe)) return this.probeFailed(spec, "", Date.now(), probe, "before deploying");
    const observed = probe.version;
    if (observed === spec.version) {
      await this.reporter.report({ state: "current", version: observed, target: spec.version, rolloutId: spec.rolloutId });
      return;
    }
    // Not awaited: queueing need not wait for the write (writes stay in order).
    this.post({ state: "queued", version: observed, target: spec.version, rolloutId: spec.rolloutId });
    const slot = await this.acquire(spec.version);
    if (!slot) return;
    try {
      // Admitted: deploy the newest spec — the one admission just read — not the one we
      // queued for.
      // this.spec stays the watch's: the watch may already hold a newer spec than this read
      // (its event raced the admission), and overwriting it with this one would leave the
      // host on the older version once the deploy ends, with no event left to wake it. After
      // this deploy the loop runs again (dirty) and deploys whatever the watch saw since.
      const fresh = slot.context ?? decodeZnode(AppSpec, (await this.deps.zk.get(appPath(this.app))).data, appPath(this.app));
      // Reads are ordered within the session, so fresh was published after the spec we queued
      // for — while we watched: no failure node of ours can exist for it.
      if (fresh.rolloutId !== spec.rolloutId) this.newRollouts.add(fresh.rolloutId);
      if (!this.targets(fresh) || this.failedRollouts.has(fresh.rolloutId) || this.stopped) return;
      const now = fresh.version === spec.version ? probe : await this.commands.currentVersion(fresh, this.probeAbort.signal);
      if (!("version" in now)) return this.probeFailed(fresh, "", Date.now(), now, "before deploying");
      if (now.version === fresh.version) {
        await this.reporter.report({ state: "current", version: now.version, target: fresh.version, rolloutId: fresh.rolloutId });
        return;
      }
      await this.deploy(fresh, now.version);
    } finally {
      await this.releaseSlot();
    }
  }

  private async acquire(version: string): Promise<HeldSlot<AppSpec> | undefined> {
    const abort = new AbortController();
    this.acquireAbort = abort;
    // stop() may have run while we were reading the version (nothing to abort then): never
    // queue after it — a paused or halted app would keep the agent from exiting.
    if (this.stopped) abort.abort();
    const data = encodeZnode(LeasePayload, { host: this.deps.host, version, since: this.deps.now().toISOString() });
    try {
      const slot = HeldSlot.held(await this.semaphore.acquire(data, { signal: abort.signal }), data, this.slotDeps);
      this.slot = slot;
      this.log.info("slot acquired", { version, slot: slot.name });
      return slot;
    } catch (error) {
      if (error instanceof AcquireAbortedError) return undefined;
      throw error;
    } finally {
      if (this.acquireAbort === abort) this.acquireAbort = undefined;
    }
  }

  private async releaseSlot(): Promise<void> {
    const slot = this.slot;
    this.slot = undefined;
    if (!slot) return;
    await slot.release();
    this.log.info("slot released", { slot: slot.name });
  }

  private async deploy(spec: AppSpec, before: string): Promise<void> {
    const values = this.commands.values(spec, before);
    const base = { target: spec.version, rolloutId: spec.rolloutId };
    const started = Date.now();
    const timeoutMs = spec.deployTimeoutSec * 1_000;
    this.post({ ...base, state: "deploying", version: before });
    this.log.info("deploy started", { version: spec.version, previous: values.previous });

    const deployed = await this.commands.run("deploy-cmd", spec.deployCmd, values, timeoutMs, { journalRollout: spec.rolloutId });
    if (deployed.error) return this.fail(spec, before, started, { ...deployed, error: deployed.error });

    this.post({ ...base, state: "verifying", version: before });
    // Not abortable by stop(): a deploy that ran is checked to its end, like the deploy itself.
    const probe = await this.commands.currentVersion(spec);
    if (!("version" in probe)) return this.probeFailed(spec, before, started, probe, "after deploy-cmd");
    const after = probe.version;
    if (after !== spec.version) {
      return this.fail(spec, after, started, { ...deployed, error: `after deploy-cmd the host reports version "${after}", expected "${spec.version}"` });
    }
    if (spec.verifyCmd !== undefined) {
      const verified = await this.commands.run("verify-cmd", spec.verifyCmd, values, timeoutMs, { journalRollout: spec.rolloutId });
      if (verified.error) return this.fail(spec, after, started, { ...verified, error: verified.error });
    }
    const durationMs = Date.now() - started;
    await this.reporter.report({ ...base, state: "current", version: after, durationMs });
    this.log.info("deploy succeeded", { version: spec.version, durationMs });
  }

  /** get-version-cmd failed: the host fails with the probe's own exit code and output. */
  private probeFailed(spec: AppSpec, version: string, started: number, probe: Exclude<ProbeOutcome, { version: string }>, when: string): Promise<void> {
    // stop() killed it: nothing was decided, the next run of the agent asks again.
    if (probe.interrupted && this.stopped && !this.deps.killSignal.aborted) return Promise.resolve();
    return this.fail(spec, version, started, { ...probe, error: `${when}: ${probe.error}` });
  }

  /**
   * The host failed the rollout: the failure counts toward its budget. A command the agent
   * itself interrupted (second shutdown signal) is not a verdict on the release: no failure is
   * recorded (the rollout is neither halted nor failed by it), the status says what happened,
   * and the agent deploys again when it starts.
   */
  private async fail(spec: AppSpec, version: string, started: number, outcome: CommandOutcome & { error: string }): Promise<void> {
    const { result, error } = outcome;
    const exitCode = result ? result.exitCode : null;
    const durationMs = Date.now() - started;
    this.failedRollouts.add(spec.rolloutId);
    const report: Report = {
      state: "failed",
      version,
      target: spec.version,
      rolloutId: spec.rolloutId,
      exitCode,
      error: outcome.interrupted ? `${error} (not counted as a failure: the agent deploys again when it starts)` : error,
      ...(result ? { outputTail: result.outputTail } : {}),
      durationMs,
    };
    if (outcome.interrupted) {
      this.log.warn("deploy interrupted by agent shutdown; not counted as a failure", { version: spec.version, error, durationMs });
      await this.reporter.report(report).catch(() => undefined);
      return;
    }
    this.log.error("deploy failed", { version: spec.version, exitCode, error, durationMs });
    this.unreportedFailure = report;
    await this.writeFailure();
  }

  /**
   * The failure node is written before the status and before the slot is released: the next
   * admission already counts it, and whoever sees this host failed also sees the halt. Both
   * writes are idempotent; if either throws (connection lost), the failure stays pending and
   * the next reconcile (the agent pokes every worker once reconnected) writes it again.
   */
  private async writeFailure(): Promise<void> {
    const pending = this.unreportedFailure;
    if (!pending) return;
    await this.reporter.recordFailure(pending.rolloutId, pending.exitCode ?? null, pending.error ?? "");
    await this.reporter.report(pending);
    if (this.unreportedFailure === pending) this.unreportedFailure = undefined;
  }

  /** A status write we do not wait for; a failure is logged (the next write repeats state). */
  private post(report: Report): void {
    this.reporter.report(report).catch((error: unknown) => {
      if (!isConnectivity(error) && !isNoNode(error)) this.log.warn("status write failed", { error: String(error) });
    });
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}
