// A ZooKeeper ensemble on loopback for fault tests: N QuorumPeerMain JVMs on 127.0.0.1, each with
// its own client, peer (quorum) and election port and its own data dir (zoo.cfg, myid, log).
// Built from the pieces in ./zookeeper.ts (zooCfg, launchJvm, waitUntilServing, terminateJvm,
// killOnExit), so the same JVM flags, classpath and exit guarantees apply: every member is
// SIGKILLed by PID when this process exits, and nothing is ever killed by name.
//
//   const ens = await startEnsemble();                 // 3 members, tickTime 500
//   ens.connectString                                   // "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"
//   const { killed, leader, electionMs } = await ens.killLeader();
//   await ens.start(killed);                            // rejoins as a follower
//   await ens.stopAll();
//
// In a test file, `const ens = useEnsemble()` starts one ensemble for the file (beforeAll) and
// stops it (afterAll); tests in one file share it, so give each its own chroot
// (ens.withChroot("x")). Proxies in front of members: ./tcp-proxy.ts (useProxy, useProxies).
//
// Timing (tickTime 500): followers notice a SIGKILLed leader at once (the TCP link resets) and a
// frozen one after syncLimit × tickTime = 2 s; fast leader election waits
// fastleader.minNotificationInterval for late votes and backs off at most
// fastleader.maxNotificationInterval while a peer is unreachable (default 60 s — far too long
// here); cnxTimeout bounds a connection attempt to a peer's election port (default 5 s; on
// loopback a dead peer refuses at once, a SIGSTOPped one would hang that long).

import { afterAll, beforeAll } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  fourLetterWord,
  freePort,
  killOnExit,
  launchJvm,
  QUORUM_MAIN,
  removeOnExit,
  terminateJvm,
  waitUntilServing,
  zooCfg,
  uniqueChroot,
  zooKeeperClasspath,
  ZOOKEEPER_HOST,
  type RunningJvm,
  type ServerTls,
  defaultJvmFlags,
  tlsConfig,
} from "./zookeeper.ts";

export interface EnsembleOptions {
  /** Number of members, odd, ≥ 3. Default 3. */
  size?: number;
  /** Default 500 ms: sessions may be as short as 1 s (2 × tickTime). */
  tickTime?: number;
  /** Extra zoo.cfg lines for every member; they override the defaults written here. */
  extraConfig?: Record<string, string>;
  /** Replaces the JVM flags (see JVM_FLAGS in ./zookeeper.ts). */
  jvmFlags?: readonly string[];
  /** Bound on one start attempt (all members serving, one leader). Default 30 s. */
  timeoutMs?: number;
  /** Every member also serves TLS on a secureClientPort of its own (see tlsConfig). */
  tls?: ServerTls;
}

export type MemberState = "running" | "frozen" | "down";
export type MemberMode = "leader" | "follower" | "observer" | "standalone";

export interface EnsembleMember {
  /** myid, 1-based. */
  readonly id: number;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly electionPort: number;
  /** "127.0.0.1:clientPort" — this member only. */
  readonly connectString: string;
  /** With EnsembleOptions.tls: this member's secure port. */
  readonly securePort?: number;
  readonly dataDir: string;
  /** stdout+stderr of every run of this member (runs are separated by a marker line). */
  readonly logFile: string;
  /** PID of the current (or last) JVM; changes on start(). */
  readonly pid: number;
  /** `down` once killed/stopped/exited, `frozen` after SIGSTOP (until SIGCONT or start()). */
  readonly state: MemberState;
}

export interface Ensemble {
  /** Every member's client port: "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3" (append a chroot). */
  readonly connectString: string;
  /** With EnsembleOptions.tls: every member's secure port, the same way. */
  readonly secureConnectString?: string;
  readonly members: readonly EnsembleMember[];
  /** Parent of every member's dataDir; removed by stopAll(). */
  readonly dir: string;
  readonly tickTime: number;
  /** Wall time of the successful start attempt: spawn → every member serving, one leader. */
  readonly startMs: number;
  member(id: number): EnsembleMember;
  /** Id of the member whose `srvr` says "Mode: leader" (running members only), if any. */
  leader(): Promise<number | undefined>;
  /** Each running member's mode from `srvr`; undefined when it does not serve (electing, down). */
  modes(): Promise<Map<number, MemberMode | undefined>>;
  /** Resolves with the leader's id once every running member serves as leader or follower with
   *  exactly one leader; rejects after timeoutMs (default 30 s) with the modes and log tails. */
  waitForQuorum(timeoutMs?: number): Promise<number>;
  /** Signal the member by PID (default SIGKILL). SIGKILL/SIGTERM/SIGINT/SIGQUIT mark it down;
   *  resolves once a SIGKILLed JVM has been reaped. SIGSTOP freezes it, SIGCONT thaws it. */
  kill(id: number, signal?: NodeJS.Signals): Promise<void>;
  /** SIGKILL the current leader, then wait for a new quorum. */
  killLeader(timeoutMs?: number): Promise<{ killed: number; leader: number; electionMs: number }>;
  /** SIGTERM, then SIGKILL after 5 s; resolves once the JVM has been reaped. */
  stop(id: number): Promise<void>;
  /** (Re)start the member on the same ports and data dir (stopping it first if it runs); resolves
   *  once it serves again (so it has synced with the leader). */
  start(id: number): Promise<void>;
  /** Stop every member and remove `dir`. Safe to call twice. */
  stopAll(): Promise<void>;
}

const DEFAULT_SIZE = 3;
const DEFAULT_TICK_MS = 500;
const START_ATTEMPTS = 3;
const SRVR_TIMEOUT_MS = 1_000;
const POLL_MS = 50;

/** zoo.cfg lines every member gets on top of zooCfg()'s defaults (before extraConfig). Keys
 *  ZooKeeper does not know become `zookeeper.<key>` system properties of that JVM. */
export function ensembleConfig(ports: readonly { id: number; peerPort: number; electionPort: number }[]): Record<string, string> {
  const cfg: Record<string, string> = {
    initLimit: "10", // × tickTime = 5 s for followers to connect and sync with a new leader
    syncLimit: "4", // × tickTime = 2 s before a silent (frozen) leader or follower is dropped
    cnxTimeout: "1000", // ms, connecting to a peer's election port (default 5000)
    electionPortBindRetry: "3", // binding our election port: retried 1 s apart, then exit
    "fastleader.minNotificationInterval": "100", // ms to wait for late votes (default 200)
    "fastleader.maxNotificationInterval": "1000", // ms, backoff cap while a peer is away (default 60000)
    leaderConnectDelayDuringRetryMs: "50", // a follower retrying the new leader's quorum port
    "quorum.auth.enableSasl": "false",
    standaloneEnabled: "false",
    reconfigEnabled: "false",
  };
  for (const p of ports) cfg[`server.${p.id}`] = `${ZOOKEEPER_HOST}:${p.peerPort}:${p.electionPort}`;
  return cfg;
}

interface MemberRecord {
  id: number;
  clientPort: number;
  peerPort: number;
  electionPort: number;
  securePort?: number;
  connectString: string;
  dataDir: string;
  logFile: string;
  cfgPath: string;
  pid: number;
  state: MemberState;
  run: RunningJvm | undefined;
  forget: () => void;
}

export async function startEnsemble(opts: EnsembleOptions = {}): Promise<Ensemble> {
  zooKeeperClasspath(); // fail fast with the install hint
  const size = opts.size ?? DEFAULT_SIZE;
  if (!Number.isInteger(size) || size < 3 || size % 2 === 0) throw new Error(`startEnsemble: size must be odd and ≥ 3, got ${size}`);
  const tickTime = opts.tickTime ?? DEFAULT_TICK_MS;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  // The secure port needs Netty's connection factory (for both ports of a member).
  const jvmFlags = opts.tls ? [...(opts.jvmFlags ?? defaultJvmFlags()), ...tlsConfig(opts.tls, 0).jvmFlags] : opts.jvmFlags;
  const dir = mkdtempSync(join(tmpdir(), "conveyor-ensemble-"));
  const forgetDir = removeOnExit(dir);
  const errors: string[] = [];

  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const members = await allocateMembers(dir, size, opts.tls !== undefined);
    writeConfigs(members, tickTime, opts.extraConfig, opts.tls);
    const started = performance.now();
    try {
      const launched = await Promise.allSettled(members.map((m) => launchMember(m, jvmFlags)));
      for (const r of launched) if (r.status === "rejected") throw r.reason as unknown;
      await Promise.all(members.map((m) => waitServing(m, timeoutMs)));
      const ensemble = makeEnsemble(members, dir, forgetDir, { tickTime, timeoutMs, jvmFlags });
      await ensemble.waitForQuorum(timeoutMs);
      return { ...ensemble, startMs: Math.round(performance.now() - started) };
    } catch (error) {
      if (error instanceof Error && error.message.startsWith("cannot run")) {
        await stopMembers(members);
        rmSync(dir, { recursive: true, force: true });
        forgetDir();
        throw error;
      }
      errors.push(`attempt ${attempt}: ${error instanceof Error ? error.message : String(error)}\n${logTails(members)}`);
      await stopMembers(members);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  forgetDir();
  throw new Error(`could not start a ${size}-member ZooKeeper ensemble:\n${errors.join("\n")}`);
}

// ---------------------------------------------------------------------------------------------

async function allocateMembers(dir: string, size: number, secure: boolean): Promise<MemberRecord[]> {
  const ports = new Set<number>();
  while (ports.size < size * 3) ports.add(await freePort());
  const securePorts: number[] = [];
  while (secure && securePorts.length < size) securePorts.push(await freePort());
  const [...list] = ports;
  const members: MemberRecord[] = [];
  for (let i = 0; i < size; i++) {
    const id = i + 1;
    const dataDir = join(dir, `zk${id}`);
    mkdirSync(dataDir, { recursive: true });
    const [clientPort, peerPort, electionPort] = list.slice(i * 3, i * 3 + 3);
    if (clientPort === undefined || peerPort === undefined || electionPort === undefined) throw new Error("not enough free ports");
    members.push({
      id,
      clientPort,
      peerPort,
      electionPort,
      ...(secure ? { securePort: securePorts[i] } : {}),
      connectString: `${ZOOKEEPER_HOST}:${clientPort}`,
      dataDir,
      logFile: join(dataDir, "zookeeper.log"),
      cfgPath: join(dataDir, "zoo.cfg"),
      pid: 0,
      state: "down",
      run: undefined,
      forget: () => {},
    });
  }
  return members;
}

function writeConfigs(
  members: readonly MemberRecord[],
  tickTime: number,
  extraConfig: Record<string, string> | undefined,
  tls: ServerTls | undefined,
): void {
  const shared = ensembleConfig(members);
  for (const m of members) {
    // A fresh data dir per attempt: stale epochs from a failed attempt must not leak in.
    rmSync(join(m.dataDir, "version-2"), { recursive: true, force: true });
    writeFileSync(join(m.dataDir, "myid"), `${m.id}\n`);
    writeFileSync(
      m.cfgPath,
      zooCfg({
        dataDir: m.dataDir,
        port: m.clientPort,
        tickTime,
        maxClientCnxns: 0,
        extraConfig: { ...shared, ...(tls && m.securePort ? tlsConfig(tls, m.securePort).config : {}), ...extraConfig },
      }),
    );
  }
}

async function launchMember(m: MemberRecord, jvmFlags: readonly string[] | undefined): Promise<void> {
  appendFileSync(
    m.logFile,
    `--- conveyor harness: starting ensemble member ${m.id} (client ${m.clientPort}, peer ${m.peerPort}, election ${m.electionPort}) ---\n`,
  );
  const run = await launchJvm(QUORUM_MAIN, m.cfgPath, m.logFile, false, jvmFlags);
  m.run = run;
  m.pid = run.pid;
  m.state = "running";
  const forget = killOnExit(run.pid);
  m.forget = forget;
  void run.exited.then(() => {
    forget(); // reaped: its PID may be reused, so never signal it again
    if (m.run === run) m.state = "down";
  });
}

async function waitServing(m: MemberRecord, timeoutMs: number): Promise<void> {
  const run = m.run;
  if (!run) throw new Error(`member ${m.id} is not running`);
  try {
    await waitUntilServing(m.clientPort, m.dataDir, run.exited, timeoutMs);
  } catch (error) {
    throw new Error(`member ${m.id} (client port ${m.clientPort}): ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function stopMember(m: MemberRecord): Promise<void> {
  const run = m.run;
  if (!run) return;
  await terminateJvm(run);
  m.forget();
  m.state = "down";
}

async function stopMembers(members: readonly MemberRecord[]): Promise<void> {
  await Promise.all(members.map(stopMember));
}

function logTails(members: readonly MemberRecord[], lines = 15): string {
  return members
    .map((m) => {
      let tail: string;
      try {
        tail = readFileSync(m.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
      } catch {
        tail = "(no log)";
      }
      return `--- member ${m.id}: ${m.logFile} (tail) ---\n${tail}`;
    })
    .join("\n");
}

async function srvrMode(port: number): Promise<MemberMode | undefined> {
  try {
    const reply = await fourLetterWord(ZOOKEEPER_HOST, port, "srvr", SRVR_TIMEOUT_MS);
    const mode = /^Mode: (\w+)/m.exec(reply)?.[1];
    return mode === "leader" || mode === "follower" || mode === "observer" || mode === "standalone" ? mode : undefined;
  } catch {
    return undefined;
  }
}

const TERMINATING: ReadonlySet<NodeJS.Signals> = new Set(["SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP"]);

function makeEnsemble(
  members: MemberRecord[],
  dir: string,
  forgetDir: () => void,
  settings: { tickTime: number; timeoutMs: number; jvmFlags: readonly string[] | undefined },
): Ensemble {
  let stopped = false;
  const byId = (id: number): MemberRecord => {
    const m = members.find((x) => x.id === id);
    if (!m) throw new Error(`no ensemble member ${id} (ids 1..${members.length})`);
    return m;
  };
  const running = (): MemberRecord[] => members.filter((m) => m.state === "running");

  const ensemble: Ensemble = {
    connectString: members.map((m) => m.connectString).join(","),
    ...(members.every((m) => m.securePort)
      ? { secureConnectString: members.map((m) => `${ZOOKEEPER_HOST}:${m.securePort}`).join(",") }
      : {}),
    members,
    dir,
    tickTime: settings.tickTime,
    startMs: 0,
    member: byId,

    async modes() {
      const list = running();
      const modes = await Promise.all(list.map((m) => srvrMode(m.clientPort)));
      return new Map(list.map((m, i) => [m.id, modes[i]]));
    },

    async leader() {
      for (const [id, mode] of await ensemble.modes()) if (mode === "leader") return id;
      return undefined;
    },

    async waitForQuorum(timeoutMs = settings.timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let last = new Map<number, MemberMode | undefined>();
      for (;;) {
        if (stopped) throw new Error("waitForQuorum() after stopAll()");
        last = await ensemble.modes();
        const values = [...last.values()];
        const leaders = [...last].filter(([, mode]) => mode === "leader").map(([id]) => id);
        const majority = Math.floor(members.length / 2) + 1;
        if (
          values.length >= majority &&
          values.every((mode) => mode === "leader" || mode === "follower") &&
          leaders.length === 1 &&
          leaders[0] !== undefined
        ) {
          return leaders[0];
        }
        if (Date.now() > deadline) {
          const shown = members.map((m) => `${m.id}=${m.state === "running" ? (last.get(m.id) ?? "not serving") : m.state}`).join(" ");
          throw new Error(`no quorum with one leader within ${timeoutMs} ms (${shown})\n${logTails(members)}`);
        }
        await Bun.sleep(POLL_MS);
      }
    },

    async kill(id, signal = "SIGKILL") {
      const m = byId(id);
      const run = m.run;
      if (!run || run.child.exitCode !== null || run.child.signalCode !== null) return; // already reaped
      try {
        process.kill(run.pid, signal);
      } catch {
        return; // already gone
      }
      if (TERMINATING.has(signal)) m.state = "down";
      else if (signal === "SIGSTOP" || signal === "SIGTSTP") m.state = "frozen";
      else if (signal === "SIGCONT" && m.state === "frozen") m.state = "running";
      if (signal === "SIGKILL") await run.exited;
    },

    async killLeader(timeoutMs = settings.timeoutMs) {
      const killed = await ensemble.leader();
      if (killed === undefined) throw new Error("killLeader(): no member is leader");
      const t0 = performance.now();
      await ensemble.kill(killed, "SIGKILL");
      const leader = await ensemble.waitForQuorum(timeoutMs);
      return { killed, leader, electionMs: Math.round(performance.now() - t0) };
    },

    async stop(id) {
      await stopMember(byId(id));
    },

    async start(id) {
      if (stopped) throw new Error("start() after stopAll()");
      const m = byId(id);
      await stopMember(m);
      const errors: string[] = [];
      for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
        try {
          await launchMember(m, settings.jvmFlags);
          await waitServing(m, settings.timeoutMs);
          return;
        } catch (error) {
          if (error instanceof Error && error.message.startsWith("cannot run")) throw error;
          errors.push(`attempt ${attempt}: ${error instanceof Error ? error.message : String(error)}`);
          await stopMember(m);
          await Bun.sleep(200); // same ports as before: give a lingering socket a moment
        }
      }
      throw new Error(`could not restart ensemble member ${id}:\n  ${errors.join("\n  ")}\n${logTails([m])}`);
    },

    async stopAll() {
      if (stopped) return;
      stopped = true;
      await stopMembers(members);
      rmSync(dir, { recursive: true, force: true });
      forgetDir();
    },
  };
  return ensemble;
}

// ---------------------------------------------------------------------------------------------
// For test files

export interface EnsembleFixture {
  /** The ensemble itself; read it inside tests or hooks, not at module load. */
  readonly ensemble: Ensemble;
  /** "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3". */
  readonly connectString: string;
  member(id: number): EnsembleMember;
  /** connectString plus a fresh chroot: "...,127.0.0.1:p3/t-<prefix>-<random>". */
  withChroot(prefix: string): string;
}

/** Start an ensemble in beforeAll (its start time is logged) and stop it in afterAll. Options
 *  given as a function are read in beforeAll (after the file's earlier hooks made certificates). */
export function useEnsemble(opts: EnsembleOptions | (() => EnsembleOptions) = {}): EnsembleFixture {
  let ensemble: Ensemble | undefined;
  beforeAll(async () => {
    ensemble = await startEnsemble(typeof opts === "function" ? opts() : opts);
    console.log(`[ensemble] ${ensemble.members.length} members serving with one leader in ${ensemble.startMs} ms`);
  }, 100_000); // three start attempts of up to 30 s each
  afterAll(async () => {
    await ensemble?.stopAll();
    ensemble = undefined;
  }, 20_000);
  const current = (): Ensemble => {
    if (!ensemble) throw new Error("useEnsemble(): the ensemble exists only inside tests and hooks (after beforeAll)");
    return ensemble;
  };
  return {
    get ensemble() {
      return current();
    },
    get connectString() {
      return current().connectString;
    },
    member(id: number) {
      return current().member(id);
    },
    withChroot(prefix: string) {
      return current().connectString + uniqueChroot(prefix);
    },
  };
}
