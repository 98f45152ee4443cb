import { AppSpec } from "../config/app-spec.ts";
import { decodeZnode } from "../config/decode.ts";
import type { DeployPhase } from "../config/payloads.ts";
import { type AgentTargeting, servesApp } from "../apps/targeting.ts";
import type { ZkClient } from "../zk/client.ts";
import { isConnectivity, isNoNode } from "../zk/errors.ts";
import { appPath } from "../zk/paths.ts";
import { AcquireAbortedError } from "../zk/recipes/semaphore.ts";
import { retrying } from "../zk/recipes/session-waits.ts";
import { AppCommands, type AppCommandsDeps, type ProbeOutcome } from "./app-commands.ts";
import { type JournalEntry, commandAlive, waitForOrphan } from "./deploy-journal.ts";
import { type DeployStepsDeps, deployAndReport, finishAdmission } from "./deploy-steps.ts";
import { HostReporter, type Report } from "./host-reporter.ts";
import type { AgentObserver } from "./agent-metrics.ts";
import { MissingNodeRetries, layoutUsable } from "./layout-repair.ts";
import { SlotKeeper } from "./slot-keeper.ts";
import { type Logger, withFields } from "./logger.ts";
import { RolloutVerdicts } from "./rollout-verdicts.ts";
import { SpecWatch } from "./spec-watch.ts";
import type { ReleaseTrust } from "./release-trust.ts";

/** After an error reconcile does not expect, how long until it tries again (see retryLater). */
const UNEXPECTED_RETRY_MS = 5_000;

export interface WorkerDeps extends Omit<AppCommandsDeps, "log"> {
  zk: ZkClient;
  logger: Logger;
  now: () => Date;
  /** This agent's groups and local `apps` allowlist: which apps it serves (servesApp). */
  targeting: AgentTargeting;
  /** Which releases this agent may run at all (signatures, replays); undefined: any. */
  releases?: ReleaseTrust;
  /** Told this worker's reports and queue positions (metrics). */
  observer?: AgentObserver;
  /** The slot queue (default the ticket queue; "listing" for side-by-side benchmarks). */
  queue?: "ticket" | "listing";
}

/**
 * What a worker is doing. `idle`: nothing (watching); `probing`: asking get-version-cmd;
 * `queued`: waiting for a slot; `draining` … `undraining` (DeployPhase): holding a slot;
 * `holding-orphan`: holding a slot for an admission a crashed run of the agent left unfinished
 * (waiting for its command, then finishing it); `awaiting-retired`: holding a slot for a
 * deploy of the app's previous incarnation (deleted and created again).
 */
export type WorkerPhase = "idle" | "probing" | "queued" | DeployPhase | "holding-orphan" | "awaiting-retired";

/**
 * Serves one app on this host. Each app has its own worker and its own loop, so a hung deploy
 * of one app never blocks another. The loop is driven by the app node's watch: any change
 * re-runs `reconcile`, which decides whether this host needs to deploy, queues for a slot and
 * deploys. Work runs one task at a time (runTask): a reconcile, or holding a slot for a deploy
 * this worker did not start; a change seen meanwhile re-runs reconcile afterwards.
 */
export class AppWorker {
  private spec: AppSpec | undefined;
  /** The task running now, if any; set and cleared only by runTask. */
  private task: Promise<void> | undefined;
  private currentPhase: WorkerPhase = "idle";
  /** While waiting for a slot: the `queued` report, sent (with its ticket) each time we join. */
  private queued: Report | undefined;
  private dirty = false;
  private stopped = false;
  /** start() was called: the app node is being watched. */
  started = false;
  /** Aborted by stop(): a probe (get-version-cmd) in flight is killed — it decides nothing
   *  that must finish, and a hung one would keep the agent from exiting. */
  private readonly probeAbort = new AbortController();
  /** The slot of the admission running here, if any. */
  private readonly slots: SlotKeeper;
  private readonly missingNodes: MissingNodeRetries;
  private readonly reporter: HostReporter;
  private readonly verdicts: RolloutVerdicts;
  private readonly specWatch: SpecWatch;
  private readonly log: Logger;
  private readonly commands: AppCommands;

  constructor(
    readonly app: string,
    private readonly deps: WorkerDeps,
  ) {
    this.log = withFields(deps.logger, { app, host: deps.host });
    this.missingNodes = new MissingNodeRetries(deps.zk, app, this.log);
    this.reporter = new HostReporter(
      deps.zk,
      app,
      deps.host,
      deps.now,
      () => layoutUsable(deps.zk, app, this.log),
      (report) => deps.observer?.reported(app, report),
    );
    this.verdicts = new RolloutVerdicts(this.reporter, this.log, (write) => retrying(deps.zk, write, deps.zk.sessionId));
    this.slots = new SlotKeeper(deps.zk, app, deps.host, this.log, {
      ...(deps.queue ? { queue: deps.queue } : {}),
      onPosition: (position) => deps.observer?.waiting(app, position),
      onQueued: (ticket) => {
        if (this.queued) this.post({ ...this.queued, ticket });
      },
    });
    this.commands = new AppCommands(app, { ...deps, log: this.log });
    this.specWatch = new SpecWatch(deps.zk, app, this.log, {
      // Deleted and created again before the agent noticed the deletion: a deploy still running
      // here lost its lease with the old node; count it in the new app before anything else.
      recreated: async () => {
        await this.slots.held
          ?.restore("app re-created while its deploy still runs here; lease re-created in the new app", true)
          .catch((e: unknown) => {
            if (isConnectivity(e)) throw e;
            this.log.warn("could not re-create the running deploy's lease in the re-created app", { error: String(e) });
          });
      },
      spec: (spec) => {
        const changed = spec.rolloutId !== this.spec?.rolloutId;
        if (changed && this.spec !== undefined) this.verdicts.notePublished(spec.rolloutId);
        this.spec = spec;
        if (changed) this.log.info("rollout seen", { version: spec.version, rollout: spec.rolloutId });
        this.poke();
      },
      none: (deleted) => {
        this.spec = undefined;
        if (deleted) this.slots.abort();
      },
    });
  }

  /** Start (or, after a reconnect, restart) watching the app node (and the held lease). */
  start(): void {
    this.started = true;
    this.reporter.reset();
    this.slots.held?.watchLease();
    this.specWatch.start();
  }

  get phase(): WorkerPhase {
    return this.currentPhase;
  }

  /** True while a deploy holds a slot (so shutdown waits and session loss restores it). */
  get busy(): boolean {
    return this.slots.held !== undefined;
  }

  /** Stop admitting: leave the queue now, kill a probe; a running deploy finishes. Resolves
   *  when idle. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.specWatch.stop();
    this.slots.abort();
    this.probeAbort.abort();
    await this.task;
    this.reporter.stop();
  }

  /**
   * Session lost: our queue node and lease vanished with it. Called once the new session is
   * up: re-create the lease of a still-running deploy before anything else so that slot counts
   * stay honest. (The agent restarts the worker — start() — once presence is registered again.)
   */
  async onNewSession(): Promise<void> {
    await this.slots.held?.restore("session was lost during a deploy; lease re-created");
  }

  /**
   * An admission a previous run of this agent left unfinished (it crashed): hold a slot for it,
   * wait until a command it left running ends — killing it at its own timeout — then finish it:
   * the checks, health gate and undrain if the host now runs the version, else the whole
   * deploy again. Only then serve the app again: deploying on top of a running deploy, or
   * calling a host current that never passed its gate, would put more hosts out of service
   * than the slots allow. Resolves once the slot is held (or could not be taken); the rest goes
   * on in the worker.
   */
  adoptAdmission(entry: JournalEntry): Promise<void> {
    const data = this.slots.payload(entry.version, entry.admittedAt);
    return this.holdFor("holding-orphan", data, "could not hold a slot for the unfinished admission", async () => {
      if (commandAlive(entry)) {
        this.log.warn("a deploy left running by a previous agent run is still going; waiting for it", {
          pgid: entry.pgid,
          version: entry.version,
        });
        await waitForOrphan(entry, this.deps.killSignal);
        this.log.info("orphaned deploy ended", { pgid: entry.pgid });
      }
      // Stopping (either signal): the admission stays in the journal for the next run to finish.
      if (this.stopped || this.deps.killSignal.aborted) return;
      await this.finishAdmission(entry).catch((error: unknown) => {
        this.log.warn("could not finish the admission a previous agent run left", { error: String(error) });
      });
      if (!this.deps.killSignal.aborted) this.deps.journal.clear(this.app);
    });
  }

  /** The rest of an unfinished admission, on the app's current spec (see adoptAdmission). */
  private async finishAdmission(entry: JournalEntry): Promise<void> {
    const path = appPath(this.app);
    const spec = decodeZnode(AppSpec, (await this.deps.zk.get(path)).data, path);
    if (!this.targets(spec) || (await this.verdicts.failedHere(spec.rolloutId)) || this.deps.killSignal.aborted) return;
    if (await this.refuses(spec)) return;
    this.deps.journal.admit(this.app, spec.rolloutId, spec.version, entry.phase);
    this.log.warn("finishing an admission a previous agent run left unfinished", { phase: entry.phase, version: spec.version });
    await finishAdmission(spec, this.stepDeps);
  }

  /**
   * The app was deleted and created again while `previous` (the old app's worker) may still be
   * running a deploy, whose lease went with the old app. Hold a slot for that deploy in the new
   * app until it ends, and only then serve the new app: the new rollout's slots must count it,
   * and two deploys of one app must never overlap on one server. If the slot cannot be taken
   * (the app deleted again, ZooKeeper down) the wait for the old deploy still holds.
   */
  followRetired(previous: AppWorker): void {
    const data = previous.slots.held?.data;
    void this.holdFor("awaiting-retired", data, "could not hold a slot for the previous deploy", async () => {
      if (data) this.log.warn("app re-created while its previous deploy still runs here; holding a slot for it");
      await previous.stop();
    });
  }

  /**
   * Runs `wait` as this worker's task while holding a slot created outside the queue for work
   * that already runs (`data` undefined: no slot). Resolves once the slot is held or could not
   * be taken; the slot is released when `wait` ends.
   */
  private holdFor(phase: WorkerPhase, data: Buffer | undefined, cannot: string, wait: () => Promise<void>): Promise<void> {
    let slotTaken: () => void = () => undefined;
    const taken = new Promise<void>((resolve) => (slotTaken = resolve));
    void this.runTask(phase, async () => {
      try {
        if (data) await this.slots.restore(data);
      } catch (error) {
        this.log.warn(cannot, { error: String(error) });
      } finally {
        slotTaken();
      }
      await wait();
      await this.slots.release();
    });
    return taken;
  }

  /** A change we should act on (spec changed, connection back): reconcile (again). */
  poke(): void {
    if (this.stopped) return;
    if (this.task) {
      this.dirty = true;
      return;
    }
    void this.runTask("idle", async () => {
      do {
        this.dirty = false;
        await this.reconcileSafely();
      } while (this.dirty && !this.stopped);
    });
  }

  /** The one place a task starts and ends; a change seen while it ran reconciles afterwards. */
  private runTask(phase: WorkerPhase, work: () => Promise<void>): Promise<void> {
    this.currentPhase = phase;
    // Started on the next microtask, so `task` is set before any of `work` runs.
    const task = Promise.resolve()
      .then(work)
      .finally(() => {
        this.task = undefined;
        this.currentPhase = "idle";
        if (this.dirty || phase !== "idle") this.poke();
      });
    this.task = task;
    return task;
  }

  private targets(spec: AppSpec): boolean {
    return servesApp(this.deps.targeting, this.app, spec.groups);
  }

  private async reconcileSafely(): Promise<void> {
    try {
      await this.reconcile();
      this.missingNodes.reset();
    } catch (error) {
      if (error instanceof AcquireAbortedError) return;
      if (isNoNode(error)) {
        if (await this.missingNodes.shouldRetry(error, this.probeAbort.signal)) this.dirty = true;
        return;
      }
      if (isConnectivity(error)) {
        this.log.warn("ZooKeeper unavailable; will retry when connected", { error: (error as Error).message });
        return;
      }
      this.log.error(`unexpected error; trying again in ${UNEXPECTED_RETRY_MS / 1_000}s`, {
        error: error instanceof Error ? error.message : String(error),
      });
      this.retryLater();
    } finally {
      this.currentPhase = "idle";
    }
  }

  private retryTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * An error nobody classified (a node someone made by hand where ours go, data we did not
   * expect) is looked at again later: dropped until the app next changes, the rollout would
   * stall on this host with nobody told why. One timer at a time.
   */
  private retryLater(): void {
    if (this.retryTimer !== undefined || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.poke();
    }, UNEXPECTED_RETRY_MS);
  }

  private async reconcile(): Promise<void> {
    const spec = this.spec;
    if (!spec || this.stopped || !this.targets(spec)) return;
    if (await this.verdicts.failedHere(spec.rolloutId)) return;
    if (await this.refuses(spec)) return;
    this.currentPhase = "probing";
    const probe = await this.commands.currentVersion(spec, this.probeAbort.signal);
    if (!("version" in probe)) return this.probeFailed(spec, probe);
    const observed = probe.version;
    if (observed === spec.version) {
      await this.reporter.report({ state: "current", version: observed, target: spec.version, rolloutId: spec.rolloutId });
      return;
    }
    // Reported (not awaited: writes stay in order) once the queue node exists, with its
    // sequence number as the ticket `status` orders the queue by.
    this.queued = { state: "queued", version: observed, target: spec.version, rolloutId: spec.rolloutId };
    this.currentPhase = "queued";
    const slot = await this.slots.acquire(spec.version, this.deps.now(), this.stopped).finally(() => {
      this.queued = undefined;
    });
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
      if (fresh.rolloutId !== spec.rolloutId) this.verdicts.notePublished(fresh.rolloutId);
      if (!this.targets(fresh) || this.verdicts.knownFailed(fresh.rolloutId) || this.stopped) return;
      // Admission read the spec again: it may not be the one checked before queueing.
      if (await this.refuses(fresh)) return;
      const now = fresh.version === spec.version ? probe : await this.commands.currentVersion(fresh, this.probeAbort.signal);
      if (!("version" in now)) return this.probeFailed(fresh, now);
      if (now.version === fresh.version) {
        await this.reporter.report({ state: "current", version: now.version, target: fresh.version, rolloutId: fresh.rolloutId });
        return;
      }
      this.deps.journal.admit(this.app, fresh.rolloutId, fresh.version, "deploying");
      await deployAndReport(fresh, now.version, this.stepDeps);
    } finally {
      await this.slots.release();
      // Killed by the second shutdown signal: the entry stays, so the next run finishes it.
      if (!this.deps.killSignal.aborted) this.deps.journal.clear(this.app);
    }
  }

  /**
   * A release this agent must not run at all — not signed by a trusted key, changed after
   * signing, older than one accepted before, or with a command local policy forbids — fails
   * the host for this rollout, naming the reason, before any command runs or a slot is taken.
   */
  private async refuses(spec: AppSpec): Promise<boolean> {
    const untrusted = this.deps.releases?.refusal(this.app, spec);
    const forbidden = this.commands.refused(spec);
    const error = untrusted
      ? `release refused: ${untrusted}`
      : forbidden
        ? `${forbidden} refused by local policy (allowCommands)`
        : undefined;
    if (error === undefined) return false;
    await this.verdicts.fail(spec, "", Date.now(), { refused: true, error });
    return true;
  }

  private get stepDeps(): DeployStepsDeps {
    return {
      commands: this.commands,
      log: this.log,
      reporter: this.reporter,
      verdicts: this.verdicts,
      post: (report) => this.post(report),
      onPhase: (phase) => {
        this.currentPhase = phase;
        this.deps.journal.update(this.app, { phase });
      },
      killSignal: this.deps.killSignal,
    };
  }

  /** get-version-cmd failed before a deploy: the host fails with the probe's own exit code and
   *  output — unless stop() killed it: then nothing was decided and the next run asks again. */
  private probeFailed(spec: AppSpec, probe: Exclude<ProbeOutcome, { version: string }>): Promise<void> {
    if (probe.interrupted && this.stopped && !this.deps.killSignal.aborted) return Promise.resolve();
    return this.verdicts.fail(spec, "", Date.now(), { ...probe, error: `before deploying: ${probe.error}` });
  }

  /** A status write we do not wait for; a failure is logged (the next write repeats state). */
  private post(report: Report): void {
    this.reporter.report(report).catch((error: unknown) => {
      if (!isConnectivity(error) && !isNoNode(error)) this.log.warn("status write failed", { error: String(error) });
    });
  }
}
