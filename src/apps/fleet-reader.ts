import type * as v from "valibot";
import { AppSpec } from "../config/app-spec.ts";
import { decodeZnode } from "../config/decode.ts";
import { InvalidDataError } from "../config/errors.ts";
import { NAME_PATTERN } from "../config/names.ts";
import { AgentInfo, HostStatus } from "../config/payloads.ts";
import type { ZkClient } from "../zk/client.ts";
import { isConnectivity, isNoNode } from "../zk/errors.ts";
import { AGENTS, APPS, agentPath, appPath, failuresDir, hostStatusPath, hostsDir, layoutNode } from "../zk/paths.ts";
import type { WatchEvent } from "../zk/watchers.ts";
import { type Decoded, type FleetStatus, type RawApp, type RawFleet, buildFleetStatus } from "./fleet-view.ts";

/**
 * Reads every node `status` needs — /agents, the apps, their hosts and failures — and
 * validates each payload. In watch mode it leaves a one-shot watch on everything it reads and,
 * when one fires, re-reads only that node (or that directory's new children), so a live view
 * costs one read per change, not a full re-scan. After a reconnect it re-reads everything,
 * members it already knew included: a lost session took every watch with it, and a re-read
 * that failed while disconnected left none on that node — skipping known members would leave
 * `--wait` blind to them until its timeout.
 */
export class FleetReader {
  private agentNames: string[] = [];
  private appNames: string[] = [];
  private readonly agents = new Map<string, Decoded<AgentInfo>>();
  private readonly specs = new Map<string, Decoded<AppSpec>>();
  private readonly hostNames = new Map<string, string[]>();
  private readonly hosts = new Map<string, Decoded<HostStatus>>();
  private readonly failures = new Map<string, string[]>();
  private offState: (() => void) | undefined;
  /** >0 while a reload runs: known members are read (and watched) again too. */
  private reloading = 0;
  /** A background re-read failed for a reason other than connectivity (e.g. not authorised
   *  after `acl init`): the next snapshot() throws it, so the command ends with its one-line
   *  error instead of an unhandled rejection. */
  private failure: unknown;

  constructor(
    private readonly zk: ZkClient,
    private readonly options: { app?: string; watch?: boolean; onChange?: () => void } = {},
  ) {}

  /** Reads everything once (and, in watch mode, starts following changes). */
  async load(): Promise<void> {
    if (this.options.watch && !this.offState) {
      this.offState = this.zk.onState((state) => {
        if (state === "reconnected") void this.reload();
      });
    }
    await Promise.all([this.readAgentList(), this.readAppList()]);
  }

  snapshot(): FleetStatus {
    if (this.failure !== undefined) throw this.failure;
    return buildFleetStatus(this.raw());
  }

  stop(): void {
    this.offState?.();
    this.offState = undefined;
    this.zk.unwatch(this.watcher);
  }

  private async reload(): Promise<void> {
    this.reloading += 1;
    try {
      await this.load();
      this.options.onChange?.();
    } catch (error) {
      // Disconnected again: the next `reconnected` reloads.
      if (!isConnectivity(error)) this.fail(error);
    } finally {
      this.reloading -= 1;
    }
  }

  /** Whether a listed member must be read: new to us, or everything is being re-read. */
  private mustRead(known: boolean): boolean {
    return !known || this.reloading > 0;
  }

  private raw(): RawFleet {
    const apps: RawApp[] = this.appNames.map((name) => {
      const spec = this.specs.get(name) ?? { error: "unreadable" };
      const hostNames = this.hostNames.get(name) ?? [];
      return {
        name,
        spec,
        hosts: hostNames.map((host) => ({ host, status: this.hosts.get(hostStatusPath(name, host)) ?? { error: "unreadable" } })),
        failures: this.failures.get(name) ?? [],
      };
    });
    return {
      apps,
      agents: this.agentNames.map((host) => ({ host, info: this.agents.get(host) ?? { error: "unreadable" } })),
    };
  }

  // One stable watcher: whatever fired, re-read just that path.
  private readonly watcher = (event: WatchEvent): void => {
    if (event.type === "sessionLost") return; // reload() runs on reconnect
    void this.refresh(event.path).then(
      () => this.options.onChange?.(),
      (error: unknown) => {
        if (!isConnectivity(error)) this.fail(error);
      },
    );
  };

  private fail(error: unknown): void {
    this.failure ??= error;
    this.options.onChange?.();
  }

  private get watch(): ((event: WatchEvent) => void) | undefined {
    return this.options.watch ? this.watcher : undefined;
  }

  private async refresh(path: string): Promise<void> {
    const node = layoutNode(path);
    switch (node.kind) {
      case "agents":
        return this.readAgentList();
      case "apps":
        return this.readAppList();
      case "agent":
        return this.readAgent(node.host);
      case "app":
        return this.readSpec(node.app);
      case "appEntry":
        if (node.dir === "hosts") return this.readHost(node.app, node.name);
        return;
      case "appDir":
        if (node.dir === "hosts") return this.readHostList(node.app);
        if (node.dir === "failures") return this.readFailures(node.app);
        return;
      default:
        return;
    }
  }

  // Each list is published only after its new members were read, so a snapshot never shows a
  // member whose payload has not arrived yet.
  private async readAgentList(): Promise<void> {
    const names = (await this.childrenOrEmpty(AGENTS)).sort();
    await Promise.all(names.filter((n) => this.mustRead(this.agents.has(n))).map((n) => this.readAgent(n)));
    for (const known of this.agents.keys()) if (!names.includes(known)) this.agents.delete(known);
    this.agentNames = names.filter((n) => this.agents.has(n));
  }

  private async readAgent(host: string): Promise<void> {
    const value = await this.decode(agentPath(host), AgentInfo, NAME_PATTERN.test(host) ? undefined : "invalid host id");
    if (value === null) {
      this.agents.delete(host);
      this.agentNames = this.agentNames.filter((n) => n !== host);
    } else this.agents.set(host, value);
  }

  private async readAppList(): Promise<void> {
    const only = this.options.app;
    const names = only === undefined ? (await this.childrenOrEmpty(APPS)).sort() : [only];
    const known = new Set(this.appNames);
    await Promise.all(names.filter((n) => this.mustRead(known.has(n) && only === undefined)).map((n) => this.readApp(n)));
    for (const name of known) if (!names.includes(name)) this.forgetApp(name);
    this.appNames = names.filter((n) => this.specs.has(n));
  }

  private async readApp(name: string): Promise<void> {
    if (!NAME_PATTERN.test(name)) {
      this.specs.set(name, { error: "invalid app name" });
      return;
    }
    await this.readSpec(name);
    if (!this.specs.has(name)) return;
    // Queue positions come from the hosts' tickets (their `queued` reports), not from listing
    // lock/: a reader that re-listed the queue on every change cost O(N) per change.
    await Promise.all([this.readHostList(name), this.readFailures(name)]);
  }

  private async readSpec(name: string): Promise<void> {
    const value = await this.decode(appPath(name), AppSpec);
    if (value === null) {
      this.forgetApp(name);
      this.appNames = this.appNames.filter((n) => n !== name);
    } else this.specs.set(name, value);
  }

  private forgetApp(name: string): void {
    this.specs.delete(name);
    for (const host of this.hostNames.get(name) ?? []) this.hosts.delete(hostStatusPath(name, host));
    this.hostNames.delete(name);
    this.failures.delete(name);
  }

  private async readHostList(app: string): Promise<void> {
    const names = (await this.childrenOrEmpty(hostsDir(app))).sort();
    const known = new Set(this.hostNames.get(app) ?? []);
    await Promise.all(names.filter((h) => this.mustRead(known.has(h))).map((h) => this.readHost(app, h, false)));
    for (const host of known) if (!names.includes(host)) this.hosts.delete(hostStatusPath(app, host));
    this.hostNames.set(
      app,
      names.filter((h) => this.hosts.has(hostStatusPath(app, h))),
    );
  }

  private async readHost(app: string, host: string, listed = true): Promise<void> {
    const path = hostStatusPath(app, host);
    const value = await this.decode(path, HostStatus, NAME_PATTERN.test(host) ? undefined : "invalid host id");
    if (value === null) {
      this.hosts.delete(path);
      if (listed)
        this.hostNames.set(
          app,
          (this.hostNames.get(app) ?? []).filter((h) => h !== host),
        );
    } else this.hosts.set(path, value);
  }

  private async readFailures(app: string): Promise<void> {
    this.failures.set(app, await this.childrenOrEmpty(failuresDir(app)));
  }

  /** The validated payload, an error reason, or null when the node does not exist. */
  private async decode<S extends v.GenericSchema>(path: string, schema: S, invalid?: string): Promise<Decoded<v.InferOutput<S>> | null> {
    if (invalid) return { error: invalid };
    try {
      const { data, stat } = await this.zk.get(path, this.watch);
      try {
        return { value: decodeZnode(schema, data, path), zxid: stat.mzxid };
      } catch (error) {
        if (error instanceof InvalidDataError) return { error: error.reason, zxid: stat.mzxid };
        throw error;
      }
    } catch (error) {
      if (isNoNode(error)) return null;
      if (error instanceof InvalidDataError) return { error: error.reason };
      throw error;
    }
  }

  private async childrenOrEmpty(path: string): Promise<string[]> {
    try {
      return await this.zk.children(path, this.watch);
    } catch (error) {
      if (!isNoNode(error)) throw error;
      // Not there yet: in watch mode, notice when it appears.
      if (this.watch) await this.zk.exists(path, this.watch);
      return [];
    }
  }
}
