import { encodeZnode } from "../config/decode.ts";
import { NAME_PATTERN } from "../config/names.ts";
import { AgentInfo } from "../config/payloads.ts";
import { type ConnectionState, type ZkClient, isEphemeral } from "../zk/client.ts";
import { isConnectivity, isNoAuth, isNoNode, isNodeExists } from "../zk/errors.ts";
import { servesApp } from "../apps/targeting.ts";
import { AGENTS, APPS, agentPath } from "../zk/paths.ts";
import type { WatchEvent } from "../zk/watchers.ts";
import { AppWorker } from "./app-worker.ts";
import type { CommandRunner } from "./command-runner.ts";
import { DeployJournal, commandAlive } from "./deploy-journal.ts";
import type { Logger } from "./logger.ts";
import type { AgentObserver } from "./agent-metrics.ts";
import { ReleaseTrust } from "./release-trust.ts";
import type { TrustedKey } from "../config/signing-keys.ts";

/** After a read of /apps failed for a reason other than the connection (which re-reads on reconnect). */
const APPS_RETRY_MS = 5_000;

export interface AgentConfig {
  host: string;
  groups: string[];
  /** Serve only these apps (local allowlist); undefined = every app that targets our groups. */
  apps?: string[];
  /** Commands must match one of these (local allowlist); undefined = any command. */
  allowCommands?: RegExp[];
  agentVersion: string;
  pid: number;
  /** Directory for the deploy journal (see DeployJournal); undefined turns it off. */
  stateDir?: string;
  /** Run only releases signed by one of these (ReleaseTrust); empty or undefined: any release. */
  trustedKeys?: TrustedKey[];
}

export interface AgentDeps {
  zk: ZkClient;
  runner: CommandRunner;
  logger: Logger;
  now: () => Date;
  /** Told every app's reports and queue positions (`--metrics-listen`). */
  observer?: AgentObserver;
  /** The slot queue; default the ticket queue ("listing": Curator's, for side-by-side benchmarks). */
  queue?: "ticket" | "listing";
}

/** Another live agent holds our host id (its presence node is owned by another session). */
export class DuplicateHostError extends Error {
  override readonly name = "DuplicateHostError";
}

/**
 * The daemon on every server: registers its presence, watches /apps and each app, and runs one
 * AppWorker per app it serves.
 *
 * Connection handling: `suspended` — nothing new is admitted (every step needs ZooKeeper) and
 * running deploys go on. `reconnected` on the same session — everything resumes. `lost` — our
 * presence, queue nodes and leases are gone; once the client has a new session we re-create
 * the lease of any still-running deploy first, then re-register presence, then re-watch.
 */
export class Agent {
  private readonly workers = new Map<string, AppWorker>();
  /** Workers of deleted apps that are still finishing a deploy (a new worker for an app of the
   *  same name waits for its predecessor). */
  private readonly retiring = new Map<string, AppWorker>();
  private readonly killController = new AbortController();
  private readonly previousSessions = new Set<string>();
  private stopping = false;
  private offState: (() => void) | undefined;
  private readonly journal: DeployJournal;
  private readonly releases: ReleaseTrust;

  constructor(
    private readonly config: AgentConfig,
    private readonly deps: AgentDeps,
  ) {
    this.journal = new DeployJournal(config.stateDir);
    this.releases = new ReleaseTrust(config.trustedKeys ?? [], config.stateDir, deps.logger);
  }

  /**
   * Registers presence and starts serving. Rejects with DuplicateHostError if another live
   * agent keeps our host id for longer than a session timeout (a crashed predecessor's
   * session would have expired by then).
   */
  async start(): Promise<void> {
    // An admission (a deploy, a health gate…) that a crashed run of this agent left unfinished
    // gets its slot on our session first, before we wait for that run's session to expire: its old lease vanishes with the
    // old session, and a waiting host would be admitted in the gap. Until then the deploy holds
    // two leases (never too few). A restart later than the session timeout cannot close that
    // gap: the slot was free meanwhile (the allowed excess of docs/RELIABILITY.md).
    // Stopped before it started (a signal while connecting): adopt nothing — the journal keeps
    // what a crashed run left for the next run.
    if (this.stopping) return;
    const unfinished = this.journal.admitted().filter((entry) => this.serves(entry.app));
    for (const entry of unfinished) {
      if (commandAlive(entry)) this.deps.logger.warn("found a deploy left running by a previous run", { app: entry.app, pgid: entry.pgid });
      else this.deps.logger.warn("found an admission a previous run left unfinished", { app: entry.app, phase: entry.phase });
    }
    await Promise.all(unfinished.map((entry) => this.workerFor(entry.app).adoptAdmission(entry)));
    await this.register(this.deps.zk.sessionTimeoutMs * 1.5 + 1_000);
    this.offState = this.deps.zk.onState((state) => void this.onConnectionState(state));
    this.deps.logger.info("agent started", {
      host: this.config.host,
      groups: this.config.groups.join(","),
      session: this.deps.zk.sessionId,
      // Which releases it will run: an operator checks this against keygen's fingerprint.
      trustedKeys: (this.config.trustedKeys ?? []).map((key) => key.fingerprint).join(",") || "any (unsigned releases run)",
    });
    await this.watchApps();
  }

  /**
   * First signal: stop admitting, let running deploys finish (bounded by their timeouts),
   * release their slots. The caller then closes the session so ephemeral nodes vanish at once.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearTimeout(this.appsRetry);
    const all = [...this.workers.values(), ...this.retiring.values()];
    const busy = all.filter((w) => w.busy).map((w) => w.app);
    this.deps.logger.info("stopping", { waitingFor: busy.join(",") || "nothing" });
    await Promise.all(all.map((w) => w.stop()));
    this.offState?.();
  }

  /** Second signal: kill running deploy process groups now. */
  kill(): void {
    this.killController.abort();
  }

  private async onConnectionState(state: ConnectionState): Promise<void> {
    const { logger, zk } = this.deps;
    logger.info(`zookeeper ${state}`, { session: zk.sessionId || "none" });
    if (state !== "reconnected") return;
    if (zk.sessionId === this.currentSession) {
      // Same session: watches survived, but a read that failed while suspended set none.
      if (!this.stopping) await this.rewatchApps(true);
      return;
    }
    if (this.currentSession) this.previousSessions.add(this.currentSession);
    if (this.stopping) {
      // stop() waits for running deploys to end, and a session lost meanwhile took their
      // leases: re-create them, or other hosts are admitted into those slots until the deploys
      // end. Nothing else — no presence, no watches: this agent starts no new work. If the
      // connection drops before they are made, the next reconnect tries again.
      try {
        await this.restoreLeases();
        this.currentSession = zk.sessionId;
      } catch (error) {
        logger.error("could not re-create the leases of running deploys while stopping", { error: String(error) });
      }
      return;
    }
    try {
      await this.restoreLeases();
      await this.register(Number.POSITIVE_INFINITY);
      await this.rewatchApps(true);
    } catch (error) {
      logger.error("re-registration after session loss failed", { error: String(error) });
    }
  }

  private currentSession = "";

  /** On a new session, before anything else: until they exist, other hosts may take those slots. */
  private async restoreLeases(): Promise<void> {
    for (const worker of this.workers.values()) {
      // One app's failure (e.g. deleted while we were cut off) must not keep the agent from
      // re-registering and watching every other app.
      await worker.onNewSession().catch((error: unknown) => {
        if (isConnectivity(error)) throw error;
        this.deps.logger.warn("could not re-create the lease of a running deploy", { app: worker.app, error: String(error) });
      });
    }
  }

  /**
   * Our presence node was deleted from outside (zkCli, `/agents` removed) while the session
   * lives: without it `status` shows this host offline, `--wait` says no agent serves the app,
   * and the duplicate-host guard is gone. Register again. If /agents itself may not be
   * re-created by this identity (a locked tree), say so and wait for it to come back.
   */
  private readonly presenceWatcher = (event: WatchEvent): void => {
    if (this.stopping || event.type === "sessionLost") return; // a new session registers anew
    if (event.type !== "deleted") {
      void this.watchPresence();
      return;
    }
    this.deps.logger.warn("our presence node was deleted; registering again", { path: event.path });
    void this.reRegister();
  };

  private async reRegister(): Promise<void> {
    try {
      await this.register(Number.POSITIVE_INFINITY);
    } catch (error) {
      if (isConnectivity(error)) return; // a reconnect registers again
      if (isNoAuth(error)) {
        this.deps.logger.error(
          "cannot register: /agents is missing and this agent may not re-create it; waiting for an admin to (e.g. conveyor acl init)",
          {
            error: error.message,
          },
        );
        const back = await this.deps.zk.exists(AGENTS, this.agentsDirWatcher).catch(() => null);
        if (back) void this.reRegister();
        return;
      }
      this.deps.logger.error("re-registration failed", { error: String(error) });
    }
  }

  private readonly agentsDirWatcher = (event: WatchEvent): void => {
    if (!this.stopping && event.type === "created") void this.reRegister();
  };

  private async watchPresence(): Promise<void> {
    const path = agentPath(this.config.host);
    const stat = await this.deps.zk.exists(path, this.presenceWatcher).catch(() => undefined);
    // Gone between our create and this watch: as if the watch had fired.
    if (stat === null) this.presenceWatcher({ type: "deleted", path });
  }

  private async register(waitLimitMs: number): Promise<void> {
    const { zk, logger, now } = this.deps;
    const path = agentPath(this.config.host);
    const data = encodeZnode(AgentInfo, {
      groups: this.config.groups,
      ...(this.config.apps === undefined ? {} : { apps: this.config.apps }),
      agentVersion: this.config.agentVersion,
      pid: this.config.pid,
      startedAt: now().toISOString(),
    });
    await zk.mkdirp(AGENTS);
    const deadline = Date.now() + waitLimitMs;
    let warned = false;
    for (;;) {
      try {
        await zk.create(path, data, "ephemeral");
        this.currentSession = zk.sessionId;
        await this.watchPresence();
        return;
      } catch (error) {
        if (isNoNode(error)) {
          // /agents itself was deleted (zkCli): create it again (a locked tree refuses: noAuth).
          await zk.create(AGENTS).catch((e: unknown) => {
            if (!isNodeExists(e)) throw e;
          });
          continue;
        }
        if (!isNodeExists(error)) throw error;
      }
      let gone: () => void = () => undefined;
      const vanished = new Promise<void>((resolve) => {
        gone = resolve;
      });
      const stat = await zk.exists(path, () => gone());
      if (!stat) continue;
      if (!isEphemeral(stat)) {
        // Made by hand (persistent, perhaps with children): no agent's presence, and it would
        // keep this host id "in use" for ever. Removed (with its children), then registered.
        logger.warn("a persistent node made by hand held our presence path; removing it", { path });
        await zk.deleteRecursive(path).catch((e: unknown) => {
          if (!isNoNode(e)) throw e;
        });
        continue;
      }
      if (stat.ephemeralOwner === zk.sessionId) {
        this.currentSession = zk.sessionId;
        await this.watchPresence();
        return; // our own create went through before a connection loss
      }
      if (this.previousSessions.has(stat.ephemeralOwner)) {
        await zk.delete(path).catch(() => undefined); // our old session's node: not a rival
        continue;
      }
      if (Date.now() >= deadline) {
        throw new DuplicateHostError(
          `host id "${this.config.host}" is already used by a live agent (ZooKeeper session ${stat.ephemeralOwner}); give each server its own --host-id`,
        );
      }
      if (!warned) {
        logger.warn("host id held by another session; waiting for it to expire", { host: this.config.host, owner: stat.ephemeralOwner });
        warned = true;
      }
      await Promise.race([vanished, new Promise((r) => setTimeout(r, Math.max(0, Math.min(deadline - Date.now(), 60_000))))]);
    }
  }

  // One stable function, so re-watching after a reconnect never registers it twice.
  private readonly appsWatcher = (event: { type: string }): void => {
    if (event.type !== "sessionLost") void this.rewatchApps(false);
  };

  /**
   * watchApps from a watch or a reconnect, where nobody awaits it: an error it throws (not
   * authorised, say) is logged and the read tried again later, never an unhandled rejection
   * that would end the agent and its running deploys.
   */
  private async rewatchApps(newSession: boolean): Promise<void> {
    try {
      await this.watchApps(newSession);
    } catch (error) {
      // One retry pending at a time (each watch or reconnect may fail alike); none once stopping.
      if (this.stopping || this.appsRetry !== undefined) return;
      this.deps.logger.error("could not read the list of apps; trying again in 5s", { error: String(error) });
      this.appsRetry = setTimeout(() => {
        this.appsRetry = undefined;
        void this.rewatchApps(newSession);
      }, APPS_RETRY_MS);
    }
  }

  private appsRetry: ReturnType<typeof setTimeout> | undefined;

  /** Watches /apps children; starts a worker per served app, stops workers of removed apps. */
  private async watchApps(newSession = false): Promise<void> {
    const { zk, logger } = this.deps;
    if (this.stopping) return;
    let names: string[];
    try {
      names = await zk.children(APPS, this.appsWatcher);
    } catch (error) {
      if (isConnectivity(error)) return; // re-watched on reconnect
      if (!isNoNode(error)) throw error;
      // No app was ever created: wait for /apps to appear.
      const stat = await zk.exists(APPS, this.appsWatcher).catch((e: unknown) => {
        if (isConnectivity(e)) return undefined; // re-watched on reconnect
        throw e;
      });
      if (stat === undefined) return;
      if (stat) return this.watchApps(newSession);
      names = [];
    }
    // stop() began during the read: it waits only for the workers it saw, so start no others.
    if (this.stopping) return;
    const wanted = new Set(names.filter((name) => this.serves(name)));
    for (const [name, worker] of this.workers) {
      if (!wanted.has(name)) {
        this.workers.delete(name);
        this.retiring.set(name, worker);
        void worker.stop().then(() => {
          if (this.retiring.get(name) === worker) this.retiring.delete(name);
        });
        logger.info("app removed", { app: name });
      }
    }
    for (const name of wanted) {
      const worker = this.workerFor(name);
      if (!worker.started || newSession) worker.start();
    }
    for (const name of names) {
      if (!NAME_PATTERN.test(name)) logger.warn("ignoring app with an invalid name", { app: name.slice(0, 200) });
    }
  }

  private workerFor(app: string): AppWorker {
    let worker = this.workers.get(app);
    if (!worker) {
      worker = new AppWorker(app, {
        zk: this.deps.zk,
        runner: this.deps.runner,
        logger: this.deps.logger,
        now: this.deps.now,
        host: this.config.host,
        targeting: this.config,
        allowCommand: (command) => this.allowCommand(command),
        killSignal: this.killController.signal,
        journal: this.journal,
        releases: this.releases,
        ...(this.deps.observer ? { observer: this.deps.observer } : {}),
        ...(this.deps.queue ? { queue: this.deps.queue } : {}),
      });
      this.workers.set(app, worker);
      const previous = this.retiring.get(app);
      if (previous) {
        this.retiring.delete(app);
        worker.followRetired(previous);
      }
    }
    return worker;
  }

  /** Whether to run a worker for the app at all (its groups are checked once its spec is read). */
  private serves(app: string): boolean {
    return NAME_PATTERN.test(app) && servesApp(this.config, app);
  }

  private allowCommand(command: string): boolean {
    const patterns = this.config.allowCommands;
    return patterns === undefined || patterns.some((p) => p.test(command));
  }
}
