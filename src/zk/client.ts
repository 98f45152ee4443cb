import { EventEmitter } from "node:events";
import * as zookeeper from "node-zookeeper-client";
import { type ConnectTarget, formatServers, parseConnectString } from "./connect-string.ts";
import { ZkError, isNoAuth, isNoNode, isNodeExists, toZkError } from "./errors.ts";
import { lockedAcl, parseAclInfo } from "./acl-policy.ts";
import { ACL_INFO } from "./paths.ts";
import { type ZkAcl, OPEN_ACL, OWN_IDENTITIES_ACL, toLibraryAcls, fromLibraryAcls } from "./acl.ts";
import { Transaction } from "./transaction.ts";
import { WatcherRegistry, type Watcher, deliverAll } from "./watchers.ts";
import { type OwnCertificate, describeSocketError, ownCertificate } from "./socket-errors.ts";
import { CREATE_MODES, disposeLibrary, patched, toStat } from "./library.ts";

/**
 * Connection states with Apache Curator's meanings:
 * - `connected`: the first session is established.
 * - `suspended`: the socket dropped; the session may still be alive. Admit nothing new.
 * - `reconnected`: connected again — to the same session after `suspended`, or to a brand-new
 *   session after `lost` (compare `sessionId`).
 * - `lost`: the session is gone — expired, or disconnected for longer than the session timeout
 *   (the library learns of expiry only after reconnecting, so we keep our own timer). Every
 *   ephemeral node and watch of the session must be assumed gone. The client then builds a new
 *   session by itself and reports `reconnected` when it is up.
 */
export type ConnectionState = "connected" | "suspended" | "reconnected" | "lost";

export type CreateMode = "persistent" | "ephemeral" | "persistentSequential" | "ephemeralSequential";

export interface NodeStat {
  version: number;
  cversion: number;
  aversion: number;
  numChildren: number;
  dataLength: number;
  /** Session id (hex) of the owner of an ephemeral node; "0000000000000000" otherwise. */
  ephemeralOwner: string;
  ctimeMs: number;
  mtimeMs: number;
  /** The transaction that created the node (hex): differs once a node was deleted and created again. */
  czxid: string;
  /** The transaction that last changed the node's data: ZooKeeper's global order of changes
   *  (epoch in the high 32 bits; exact as a number while the epoch is below 2^21). */
  mzxid: number;
}

/** An ephemeral node (owned by a session), not a persistent one: what ours always are. */
export function isEphemeral(stat: NodeStat): boolean {
  return !/^0+$/.test(stat.ephemeralOwner);
}

export interface DigestCredential {
  user: string;
  password: string;
}

export interface ZkClientOptions {
  /** `host:port[,host:port][/chroot]`; chroot defaults to /conveyor. */
  connectString: string;
  /** Requested session timeout; the server clamps it to [2, 20] × tickTime. Default 10 s. */
  sessionTimeoutMs?: number;
  /** Bound on establishing the first session; past it, connect() fails `unreachable`. */
  connectTimeoutMs?: number;
  /** Bound on any single request, so nothing waits forever while disconnected. */
  operationTimeoutMs?: number;
  credentials?: DigestCredential[];
  /** Speak TLS (the server's secureClientPort): PEM CA (default: the system store), and a
   *  client certificate and key for mutual TLS. Never falls back to plain TCP. */
  tls?: { ca?: string; cert?: string; key?: string };
  /** ACL for each node this client creates (chroot-relative path). Default: world-open. */
  aclFor?: (path: string) => ZkAcl[];
  /** Create the chroot when it is missing (default true). The CLI passes false and decides per
   *  command (src/cli/session.ts), calling ensureChroot() itself. */
  createChroot?: boolean;
}

type Phase = "connecting" | "open" | "suspended" | "lost" | "closed";

export class ZkClient {
  private lib!: zookeeper.Client;
  private phase: Phase = "connecting";
  private connectedOnce = false;
  private sessionHex = "";
  private negotiatedTimeoutMs: number;
  private lostTimer: ReturnType<typeof setTimeout> | undefined;
  private authError: ZkError | undefined;
  /** The last socket error, in words (see describeSocketError); "" until one happens. */
  private lastSocketProblem = "";
  /** Our client certificate, to explain a server refusing it. */
  private readonly ownCertificate: OwnCertificate;
  /** Servers (host:port) whose TLS certificate was refused before the first session. */
  private readonly refusedCertificates = new Set<string>();
  private readonly events = new EventEmitter();
  private readonly watchers = new WatcherRegistry();
  private readonly operationTimeoutMs: number;
  private aclFor: (path: string) => ZkAcl[];

  private constructor(
    private readonly target: ConnectTarget,
    private readonly options: ZkClientOptions,
  ) {
    this.negotiatedTimeoutMs = options.sessionTimeoutMs ?? 10_000;
    this.operationTimeoutMs = options.operationTimeoutMs ?? Math.max(this.negotiatedTimeoutMs, 5_000);
    this.aclFor = options.aclFor ?? (() => OPEN_ACL);
    this.ownCertificate = ownCertificate(options.tls?.cert);
    this.events.setMaxListeners(0);
  }

  /**
   * Connects and resolves once a session is established (and the chroot exists). Rejects with
   * kind `unreachable` after `connectTimeoutMs` (default 10 s), `authFailed`/`noAuth` when the
   * credentials are refused; the half-open client is closed in both cases.
   */
  static async connect(options: ZkClientOptions): Promise<ZkClient> {
    const target = parseConnectString(options.connectString);
    if (typeof target === "string") throw new ZkError("other", target);
    const client = new ZkClient(target, options);
    client.openSession();
    try {
      await client.waitUntilConnected(options.connectTimeoutMs ?? 10_000);
      if (target.chroot !== "" && options.createChroot !== false) await client.ensureChroot();
    } catch (error) {
      await client.close();
      throw error;
    }
    return client;
  }

  get sessionId(): string {
    return this.sessionHex;
  }

  get sessionTimeoutMs(): number {
    return this.negotiatedTimeoutMs;
  }

  get isConnected(): boolean {
    return this.phase === "open";
  }

  get chroot(): string {
    return this.target.chroot;
  }

  /** The subject of our client certificate (RFC 2253), if we connect with one. */
  get certificateSubject(): string | undefined {
    return this.ownCertificate.subject;
  }

  /**
   * Gives every node created from now on the ACL of the locked tree, if `acl init` locked it
   * (the identities it recorded in /acl); otherwise nodes stay world-open. A client that may
   * not read /acl (anonymous on a locked tree) keeps the default and is refused later.
   *
   * An /acl that is there but not a valid record (garbled by hand, or by whoever could write
   * it) most likely sits on a locked tree, and no ACL to give a new node is known; it is never
   * made world-open. `whenInvalid`:
   * - "refuse" (an agent): every create fails (ZkError invalidAcl, naming the node and the fix);
   * - "ownIdentities" (the CLI: the admin must still be able to pause, or roll back): a new node
   *   gets this client's own identities only (ZooKeeper's `auth` scheme) — refused like the
   *   first when the client has none. `acl init` re-locks those nodes.
   * Reads and writes of existing nodes go on. `acl init` writes /acl and adopts it again. The
   * result says which case it was.
   */
  async adoptTreeAcl(whenInvalid: "refuse" | "ownIdentities" = "refuse"): Promise<"locked" | "open" | "invalid"> {
    let data: Buffer;
    try {
      data = (await this.get(ACL_INFO)).data;
    } catch (error) {
      if (isNoAuth(error) || isNoNode(error)) return "open";
      throw error;
    }
    const ids = parseAclInfo(data);
    if (!ids) {
      const hasIdentity = (this.options.credentials?.length ?? 0) > 0 || this.ownCertificate.subject !== undefined;
      this.aclFor =
        whenInvalid === "ownIdentities" && hasIdentity
          ? () => OWN_IDENTITIES_ACL
          : (path) => {
              throw new ZkError(
                "invalidAcl",
                `refusing to create ${path}: ${ACL_INFO} is not a valid acl init record, so no ACL for it is known (world-open could unlock a locked tree); run conveyor acl init as the admin (or delete ${ACL_INFO} if the tree was never locked)`,
                path,
              );
            };
      return "invalid";
    }
    this.aclFor = (path) => lockedAcl(ids, path);
    return "locked";
  }

  onState(listener: (state: ConnectionState) => void): () => void {
    this.events.on("state", listener);
    return () => this.events.off("state", listener);
  }

  async get(path: string, watcher?: Watcher): Promise<{ data: Buffer; stat: NodeStat }> {
    const [data, stat] = await this.watched<[Buffer | undefined, zookeeper.Stat]>(path, "data", watcher, (abs, w, done) =>
      w ? this.lib.getData(abs, w, (e, d, s) => done(e, [d, s])) : this.lib.getData(abs, (e, d, s) => done(e, [d, s])),
    );
    return { data: data ?? Buffer.alloc(0), stat: toStat(stat) };
  }

  /** The stat, or null when the node does not exist (a watcher then fires on creation). */
  async exists(path: string, watcher?: Watcher): Promise<NodeStat | null> {
    const stat = await this.watched<zookeeper.Stat | undefined>(path, "data", watcher, (abs, w, done) =>
      w ? this.lib.exists(abs, w, done) : this.lib.exists(abs, done),
    );
    return stat ? toStat(stat) : null;
  }

  async children(path: string, watcher?: Watcher): Promise<string[]> {
    return this.watched<string[]>(path, "child", watcher, (abs, w, done) =>
      w ? this.lib.getChildren(abs, w, (e, c) => done(e, c)) : this.lib.getChildren(abs, (e, c) => done(e, c)),
    );
  }

  async set(path: string, data: Buffer, version = -1): Promise<NodeStat> {
    const stat = await this.request<zookeeper.Stat>(path, (abs, done) => this.lib.setData(abs, data, version, done));
    return toStat(stat);
  }

  /**
   * Creates a node and returns its chroot-relative path (with the sequence for sequential modes).
   * Its ACL is the tree's (see adoptTreeAcl) unless `acl` is given.
   */
  async create(path: string, data: Buffer = Buffer.alloc(0), mode: CreateMode = "persistent", acl?: ZkAcl[]): Promise<string> {
    const acls = toLibraryAcls(acl ?? this.aclFor(path));
    const created = await this.request<string>(path, (abs, done) => this.lib.create(abs, data, acls, CREATE_MODES[mode], done));
    return this.relative(created);
  }

  async delete(path: string, version = -1): Promise<void> {
    await this.request<void>(path, (abs, done) => this.lib.remove(abs, version, (e) => done(e, undefined)));
  }

  /** Creates every missing ancestor and the node itself (persistent, empty). Existing is fine. */
  async mkdirp(path: string): Promise<void> {
    const segments = path.split("/").filter(Boolean);
    let current = "";
    for (const segment of segments) {
      current += `/${segment}`;
      if (await this.exists(current)) continue;
      try {
        await this.create(current);
      } catch (error) {
        if (!isNodeExists(error)) throw error;
      }
    }
  }

  /** Deletes a node and its whole subtree; a node already gone is not an error. */
  async deleteRecursive(path: string): Promise<void> {
    let names: string[];
    try {
      names = await this.children(path);
    } catch (error) {
      if (error instanceof ZkError && error.kind === "noNode") return;
      throw error;
    }
    await Promise.all(names.map((name) => this.deleteRecursive(`${path}/${name}`)));
    try {
      await this.delete(path);
    } catch (error) {
      if (error instanceof ZkError && error.kind === "noNode") return;
      // A child created concurrently (e.g. an agent queueing): go round once more.
      if (error instanceof ZkError && error.kind === "notEmpty") return this.deleteRecursive(path);
      throw error;
    }
  }

  async getAcl(path: string): Promise<ZkAcl[]> {
    const acls = await this.request<zookeeper.ACL[]>(path, (abs, done) => this.lib.getACL(abs, (e, a) => done(e, a)));
    return fromLibraryAcls(acls);
  }

  async setAcl(path: string, acls: ZkAcl[], version = -1): Promise<void> {
    await this.request<zookeeper.Stat>(path, (abs, done) => this.lib.setACL(abs, toLibraryAcls(acls), version, done));
  }

  /** Ops run atomically on commit(); see Transaction. */
  transaction(): Transaction {
    return new Transaction({
      absolute: (p) => this.absolute(p),
      relative: (p) => this.relative(p),
      aclFor: (p) => toLibraryAcls(this.aclFor(p)),
      createMode: (m) => CREATE_MODES[m],
      run: (build, paths) =>
        this.bounded(paths[0] ?? "/", (done) => {
          const txn = this.lib.transaction();
          build(txn);
          txn.commit((error, results: unknown) => {
            if (!error) return done(null, results);
            // Name the op that failed, not the first one.
            const failed = Array.isArray(results)
              ? results.findIndex((r: { err?: number }) => typeof r.err === "number" && r.err !== 0)
              : -1;
            done(toZkError(error, paths[failed] ?? paths[0]), undefined);
          });
        }),
    });
  }

  /** Watchers registered through get/exists/children still waiting for their event. */
  get waitingWatchers(): number {
    return this.watchers.size;
  }

  /** Drops a watcher registered through get/exists/children, e.g. when a wait is cancelled. */
  unwatch(watcher: Watcher): void {
    this.watchers.remove(watcher);
  }

  /**
   * Closes the session so that its ephemeral nodes vanish at once. Pending watchers receive a
   * `sessionLost` event, and the session id is cleared: a wait for the connection on this
   * session (onClosed) ends instead of waiting for a state change that will never come. Never
   * waits more than ~1 s for the server's acknowledgement.
   */
  async close(): Promise<void> {
    if (this.phase === "closed") return;
    this.phase = "closed";
    this.sessionHex = "";
    this.clearLostTimer();
    this.watchers.fireSessionLost();
    deliverAll(this.events.listeners("closed") as (() => void)[], undefined);
    this.events.removeAllListeners("closed");
    await disposeLibrary(this.lib, 1_000);
  }

  /** Called once, when close() is called. */
  onClosed(listener: () => void): () => void {
    this.events.on("closed", listener);
    return () => this.events.off("closed", listener);
  }

  // ---- session management -------------------------------------------------------------

  private openSession(): void {
    // `tls` is ours (patches/node-zookeeper-client@1.1.3.patch): TLS where the library opens
    // its socket, and 'socketError' events that say why a connection failed.
    const libraryOptions: Partial<zookeeper.Option> & { tls?: ZkClientOptions["tls"] } = {
      sessionTimeout: this.options.sessionTimeoutMs ?? 10_000,
      spinDelay: 200,
      retries: 0,
      ...(this.options.tls === undefined ? {} : { tls: this.options.tls }),
    };
    const lib = zookeeper.createClient(formatServers(this.target), libraryOptions);
    this.lib = lib;
    patched(lib).on("socketError", (error, server) => {
      if (this.lib === lib) this.onSocketError(error, server);
    });
    for (const credential of this.options.credentials ?? []) {
      lib.addAuthInfo("digest", Buffer.from(`${credential.user}:${credential.password}`));
    }
    lib.on("state", (state: zookeeper.State) => {
      if (this.lib === lib && this.phase !== "closed") this.onLibraryState(state);
    });
    lib.connect();
  }

  private onLibraryState(state: zookeeper.State): void {
    const S = zookeeper.State;
    if (state === S.SYNC_CONNECTED) {
      this.sessionHex = this.lib.getSessionId().toString("hex");
      this.negotiatedTimeoutMs = this.lib.getSessionTimeout();
      this.clearLostTimer();
      const wasConnected = this.connectedOnce;
      this.connectedOnce = true;
      this.phase = "open";
      this.emit(wasConnected ? "reconnected" : "connected");
    } else if (state === S.DISCONNECTED) {
      if (this.phase !== "open") return;
      this.phase = "suspended";
      // The server expires the session a session timeout after it last heard from us, which is
      // about when we last heard from it — not when we noticed (a stall is noticed late).
      const lastReceivedAt = patched(this.lib).getLastReceivedAt();
      const elapsed = lastReceivedAt > 0 ? Date.now() - lastReceivedAt : 0;
      this.lostTimer = setTimeout(() => this.declareLost(), Math.max(0, this.negotiatedTimeoutMs - elapsed));
      this.emit("suspended");
    } else if (state === S.EXPIRED) {
      this.declareLost();
    } else if (state === S.AUTH_FAILED) {
      this.authError = new ZkError("authFailed", "ZooKeeper refused the credentials (authentication failed)");
      this.events.emit("authFailed");
    }
  }

  private declareLost(): void {
    if (this.phase === "lost" || this.phase === "closed") return;
    this.phase = "lost";
    // Until the new session is up there is no session: code that remembers the old id sees
    // the change at once and stops relying on its ephemeral nodes.
    this.sessionHex = "";
    this.clearLostTimer();
    this.watchers.fireSessionLost();
    const old = this.lib;
    this.emit("lost");
    void disposeLibrary(old, 0);
    if (this.phase === "lost") this.openSession();
  }

  private emit(state: ConnectionState): void {
    deliverAll(this.events.listeners("state") as ((s: ConnectionState) => void)[], state);
  }

  private waitUntilConnected(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const finish = (error?: ZkError): void => {
        clearTimeout(timer);
        this.events.off("state", onState);
        this.events.off("authFailed", onAuthFailed);
        this.events.off("certificateRefused", onCertificate);
        if (error) reject(error);
        else resolve();
      };
      const onState = (state: ConnectionState): void => {
        if (state === "connected") finish();
      };
      const onAuthFailed = (): void => finish(this.authError);
      const over = this.options.tls === undefined ? "" : " over TLS";
      // Every server refused by its certificate: no retry will change that — say so now.
      const onCertificate = (): void =>
        finish(new ZkError("unreachable", `ZooKeeper at ${formatServers(this.target)} refused${over}: ${this.lastSocketProblem}`));
      const timer = setTimeout(() => {
        const why = this.lastSocketProblem === "" ? "" : `: ${this.lastSocketProblem}`;
        finish(
          new ZkError(
            "unreachable",
            `ZooKeeper at ${formatServers(this.target)} unreachable${over} (no session within ${Math.round(timeoutMs / 100) / 10} s)${why}`,
          ),
        );
      }, timeoutMs);
      this.events.on("state", onState);
      this.events.on("authFailed", onAuthFailed);
      this.events.on("certificateRefused", onCertificate);
    });
  }

  /** Why the last connection attempt failed (for the connect error), and whether every server's
   *  certificate has been refused (then connect fails at once). */
  private onSocketError(error: unknown, server: { host?: string; port?: number } | undefined): void {
    const problem = describeSocketError(error, this.ownCertificate);
    this.lastSocketProblem = problem.message;
    if (!problem.certificate || this.connectedOnce) return;
    this.refusedCertificates.add(`${server?.host ?? "?"}:${server?.port ?? "?"}`);
    if (this.refusedCertificates.size >= this.target.servers.length) this.events.emit("certificateRefused");
  }

  /**
   * Whether `path`, an absolute path of the server's tree, exists — outside the chroot, e.g. the
   * chroot itself or its ancestors (see chroot-guard.ts).
   */
  async existsOutsideChroot(path: string): Promise<boolean> {
    const stat = await this.bounded<zookeeper.Stat | undefined>(path, (done) => this.lib.exists(path, done));
    return stat !== undefined && stat !== null;
  }

  /** The children of `path`, an absolute path of the server's tree (outside the chroot). */
  async childrenOutsideChroot(path: string): Promise<string[]> {
    return this.bounded<string[]>(path, (done) => this.lib.getChildren(path, (e, c) => done(e, c)));
  }

  /** Creates each missing segment of the chroot (paths outside the chroot, so no prefixing). */
  async ensureChroot(): Promise<void> {
    let current = "";
    for (const segment of this.target.chroot.split("/").filter(Boolean)) {
      current += `/${segment}`;
      const abs = current;
      const stat = await this.bounded<zookeeper.Stat | undefined>(abs, (done) => this.lib.exists(abs, done));
      if (stat) continue;
      const acls = toLibraryAcls(this.aclFor("/"));
      try {
        await this.bounded<string>(abs, (done) => this.lib.create(abs, Buffer.alloc(0), acls, CREATE_MODES.persistent, done));
      } catch (error) {
        if (!isNodeExists(error)) throw error;
      }
    }
  }

  private clearLostTimer(): void {
    if (this.lostTimer) clearTimeout(this.lostTimer);
    this.lostTimer = undefined;
  }

  // ---- request plumbing ---------------------------------------------------------------

  private absolute(path: string): string {
    if (!path.startsWith("/")) throw new ZkError("other", `path must be absolute: ${path}`, path);
    if (path === "/") return this.target.chroot === "" ? "/" : this.target.chroot;
    return this.target.chroot + path;
  }

  private relative(path: string): string {
    const chroot = this.target.chroot;
    if (chroot === "" || !path.startsWith(chroot)) return path;
    return path.length === chroot.length ? "/" : path.slice(chroot.length);
  }

  private request<T>(path: string, call: (abs: string, done: (e: unknown, v: T) => void) => void): Promise<T> {
    return this.bounded(path, (done) => call(this.absolute(path), done));
  }

  /** Runs one library call with the operation timeout; synchronous throws become ZkErrors. */
  private bounded<T>(path: string, call: (done: (e: unknown, v: T) => void) => void): Promise<T> {
    if (this.phase === "closed") return Promise.reject(new ZkError("closed", "ZooKeeper client is closed", path));
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(new ZkError("connectionLoss", `ZooKeeper did not answer within ${this.operationTimeoutMs} ms (${path})`, path));
      }, this.operationTimeoutMs);
      try {
        call((error, value) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (error) reject(toZkError(error, path));
          else resolve(value);
        });
      } catch (error) {
        settled = true;
        clearTimeout(timer);
        reject(toZkError(error, path));
      }
    });
  }

  /** A read that may leave a one-shot watch; the watcher is dropped again if the read fails. */
  private async watched<T>(
    path: string,
    kind: "data" | "child",
    watcher: Watcher | undefined,
    call: (abs: string, libWatcher: ((e: zookeeper.Event) => void) | undefined, done: (e: unknown, v: T) => void) => void,
  ): Promise<T> {
    if (!watcher) return this.request<T>(path, (abs, done) => call(abs, undefined, done));
    const dispatcher = this.watchers.add(kind, path, watcher, (p) => this.relative(p));
    try {
      return await this.request<T>(path, (abs, done) => call(abs, dispatcher, done));
    } catch (error) {
      this.watchers.removeFrom(kind, path, watcher);
      throw error;
    }
  }
}
