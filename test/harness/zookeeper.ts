// The one way this project starts a real ZooKeeper server: tests, the demo, benchmarks and
// scripts/zk.ts all come through here. In a test file:
//
//   const zk = useZooKeeper();                   // one server for this test file
//   test("...", async () => {
//     const connect = zk.withChroot("publish");  // "127.0.0.1:PORT/t-publish-k3j9x2"
//   });
//
// Tests in one file share the server, so give each its own chroot. (useZooKeeper registers
// bun:test hooks, so only test files call it; everything else here runs in any script.)
//
// A server is a standalone `ZooKeeperServerMain` JVM bound to 127.0.0.1 on a free port, with its
// own data directory (which also holds zoo.cfg and the server's log). Every server this process
// starts (unless `detached`) is SIGKILLed by PID when the process exits, so a crashed test never
// leaves a JVM behind. Nothing here ever kills by name.
//
// The config writer, spawner and readiness check are separate functions so that a 3-node
// ensemble (QuorumPeerMain, one myid per data dir; test/harness/ensemble.ts) is built from the
// same pieces: zooCfg, launchJvm, waitUntilServing, terminateJvm, killOnExit.

import { afterAll, beforeAll } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cmdlineOf, pidAlive, signalPid } from "./processes.ts";
import { waitForStrict } from "./wait.ts";

export interface ZooKeeperServer {
  host: "127.0.0.1";
  port: number;
  /** "127.0.0.1:PORT" — append a chroot ("/t-x") as needed. */
  connectString: string;
  /** PID of the JVM (changes after restart()). */
  pid: number;
  dataDir: string;
  /** Server stdout+stderr; lives in dataDir. */
  logFile: string;
  /** SIGTERM, wait up to 5 s, then SIGKILL; resolves once the process is gone (reaped).
   *  Removes dataDir if startZooKeeper created it. Safe to call twice or after kill(). */
  stop(): Promise<void>;
  /** Send a signal by PID (default SIGKILL) — for fault tests; also SIGSTOP/SIGCONT. */
  kill(signal?: NodeJS.Signals): void;
  /** Stop (or reap, if already killed) and start again on the same port with the same data
   *  dir, so sessions and znodes survive. Waits until the server serves again. */
  restart(): Promise<void>;
  /** With StartOptions.tls: the secure port, and "127.0.0.1:SECUREPORT". */
  securePort?: number;
  secureConnectString?: string;
}

export interface StartOptions {
  /** Default: a free port. An explicit port is retried as is; a free one is re-picked. */
  port?: number;
  /** Default: a fresh mkdtemp under os.tmpdir(), removed by stop(). A given dir is kept. */
  dataDir?: string;
  /** Default 500 ms, so minSessionTimeout = 1000 ms and session-expiry tests are fast. */
  tickTime?: number;
  /** Default 0 = unlimited connections per client IP (everything here is 127.0.0.1). */
  maxClientCnxns?: number;
  /** Extra zoo.cfg lines; they override the defaults written here. */
  extraConfig?: Record<string, string>;
  /** Let the server outlive this process (scripts/zk.ts start): own session, no exit handler. */
  detached?: boolean;
  /** Replaces JVM_FLAGS (the environment's CONVEYOR_ZK_JVM_FLAGS does too; this wins). */
  jvmFlags?: readonly string[];
  /** Readiness timeout per attempt, default 20 s. */
  timeoutMs?: number;
  /** Also serve TLS on a secureClientPort (Netty), with these PEM files. */
  tls?: ServerTls;
}

/** The server side of TLS: ZooKeeper's own secureClientPort, PEM key and trust stores. */
export interface ServerTls {
  /** PEM: the server's private key and certificate (chain) in one file. */
  keyStore: string;
  /** PEM: the CA(s) whose client certificates are accepted. */
  trustStore: string;
  /** need: a client certificate is required (mutual TLS); want; none. Default need. */
  clientAuth?: "need" | "want" | "none";
  /** Client certificate subjects are identities (scheme x509) for ACLs. Default true. */
  x509Auth?: boolean;
}

/** zoo.cfg lines and JVM flags for a secure port. */
export function tlsConfig(tls: ServerTls, securePort: number): { config: Record<string, string>; jvmFlags: string[] } {
  return {
    config: {
      secureClientPort: String(securePort),
      secureClientPortAddress: ZOOKEEPER_HOST,
      "ssl.keyStore.location": tls.keyStore,
      "ssl.keyStore.type": "PEM",
      "ssl.trustStore.location": tls.trustStore,
      "ssl.trustStore.type": "PEM",
      "ssl.clientAuth": tls.clientAuth ?? "need",
      ...(tls.x509Auth === false ? {} : { "authProvider.x509": "org.apache.zookeeper.server.auth.X509AuthenticationProvider" }),
    },
    jvmFlags: ["-Dzookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory"],
  };
}

export const ZOOKEEPER_HOST = "127.0.0.1" as const;
const DEBIAN_JAR = "/usr/share/java/zookeeper.jar";
/** Netty jars the secure port needs beyond those in zookeeper.jar's manifest (Debian). */
const NETTY_FOR_TLS = ["netty-codec.jar", "netty-resolver.jar", "netty-transport-native-unix-common.jar"];
export const STANDALONE_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain";
export const QUORUM_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain";
const START_ATTEMPTS = 3;
const POLL_MS = 25;
const STOP_GRACE_MS = 5_000;

/** Small, fast-starting JVM. Measured (JDK 17, ZooKeeper 3.8, 2 vCPU; median of 11 starts,
 *  spawn → ruok/srvr/conf answered): no flags 213 ms wall / 290 ms CPU / 63 MB RSS; these
 *  178-187 ms / 230-240 ms / 56 MB. TieredStopAtLevel=1 (C1 only) is what saves the time;
 *  SerialGC and the small heap save memory. A dynamic AppCDS archive would save ~40 ms more but
 *  needs a cache file kept in step with the JDK and jars, so it is not used. C1-only code is
 *  slower at peak: benchmarks that load ZooKeeper hard should pass `jvmFlags` (e.g. []). */
export const JVM_FLAGS: readonly string[] = [
  "-Xms32m",
  "-Xmx256m",
  "-XX:+UseSerialGC",
  "-XX:TieredStopAtLevel=1",
  "-Xshare:auto",
  "-XX:-UsePerfData",
  "-Djava.net.preferIPv4Stack=true",
  "-Dzookeeper.jmx.log4j.disable=true",
  "-Dorg.slf4j.simpleLogger.showDateTime=true",
  "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
];

/** CONVEYOR_ZK_JVM_FLAGS (space-separated) replaces JVM_FLAGS, e.g. to measure or debug. */
export function defaultJvmFlags(): readonly string[] {
  const env = process.env.CONVEYOR_ZK_JVM_FLAGS;
  return env === undefined ? JVM_FLAGS : env.split(/\s+/).filter((f) => f !== "");
}

// ---------------------------------------------------------------------------------------------
// Classpath

/** ZOOKEEPER_HOME (its *.jar, lib/*.jar and conf/) if set, else Debian's zookeeper.jar (whose
 *  manifest lists its dependencies) plus an slf4j binding. Throws saying what to install. */
export function zooKeeperClasspath(): string {
  const home = process.env.ZOOKEEPER_HOME;
  if (home) {
    const jars = [...jarsIn(home), ...jarsIn(join(home, "lib"))];
    if (!jars.some((j) => /\/zookeeper-\d[^/]*\.jar$|\/zookeeper\.jar$/.test(j))) {
      throw new Error(
        `ZOOKEEPER_HOME=${home} holds no zookeeper-<version>.jar (looked in ${home} and ${home}/lib). ` +
          "Point ZOOKEEPER_HOME at an unpacked Apache ZooKeeper binary release (apache-zookeeper-X.Y.Z-bin), " +
          "or unset it to use Debian's package (apt-get install -y zookeeper).",
      );
    }
    const conf = join(home, "conf"); // logback.xml / log4j.properties, as zkServer.sh does
    return [...(existsSync(conf) ? [conf] : []), ...jars].join(":");
  }
  if (!existsSync(DEBIAN_JAR)) {
    throw new Error(
      `ZooKeeper not found: ZOOKEEPER_HOME is unset and ${DEBIAN_JAR} is missing. ` +
        "Install it with `apt-get install -y zookeeper` (or run scripts/ensure-deps), " +
        "or set ZOOKEEPER_HOME to an unpacked Apache ZooKeeper release.",
    );
  }
  // Without a binding slf4j 1.7 falls back to no-op logging, which works but hides the log.
  const binding = ["slf4j-simple.jar", "slf4j-nop.jar"].map((j) => `/usr/share/java/${j}`).find(existsSync);
  // The jar's manifest lists part of Netty only; TLS (secureClientPort) needs these too.
  const netty = NETTY_FOR_TLS.map((j) => `/usr/share/java/${j}`).filter(existsSync);
  return [DEBIAN_JAR, ...(binding ? [binding] : []), ...netty].join(":");
}

function jarsIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".jar"))
    .sort()
    .map((f) => join(dir, f));
}

function javaBinary(): string {
  const home = process.env.JAVA_HOME;
  return home && existsSync(join(home, "bin", "java")) ? join(home, "bin", "java") : "java";
}

// ---------------------------------------------------------------------------------------------
// Small network helpers

/** Bind 127.0.0.1:0, read the port the kernel chose, close. */
/** Ports freePort() handed out in this process: two concurrent callers never get the same one. */
const handedOut = new Set<number>();

/**
 * A port on 127.0.0.1 that nothing listens on, for a server to listen on soon. It is chosen
 * below the kernel's ephemeral range (ip_local_port_range), not with listen(0): a port from
 * that range can be taken, between this check and the server's bind, as the local port of any
 * outgoing connection on the machine — and then kept in TIME_WAIT for a minute — so a server
 * that takes a while to start (a JVM, a test service restarted by a deploy) would find it in
 * use. Nothing picks ports below the range on its own.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  const [min, max] = low > 12_000 ? [10_000, low - 1] : [0, 0];
  for (let attempt = 0; attempt < 500 && max > min; attempt++) {
    const port = min + Math.floor(Math.random() * (max - min + 1));
    if (handedOut.has(port)) continue;
    if ((await listenOnce(port)) === port) {
      handedOut.add(port);
      return port;
    }
  }
  // An unusual port range (or everything below it taken): let the kernel choose.
  const port = await listenOnce(0);
  if (port === undefined) throw new Error("freePort: no port assigned");
  handedOut.add(port);
  return port;
}

function ephemeralLow(): number {
  try {
    return Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || 32_768;
  } catch {
    return 32_768;
  }
}

/** Listens on `port` (0: any) and closes again; the port it got, or undefined if it could not. */
function listenOnce(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(undefined));
    srv.listen(port, ZOOKEEPER_HOST, () => {
      const addr = srv.address();
      const got = typeof addr === "object" && addr ? addr.port : undefined;
      srv.close(() => resolve(got));
    });
  });
}

/** Send a four-letter word (ruok, srvr, stat, mntr, conf, cons, ...) and return the whole reply.
 *  Rejects on connection error or if the reply has not ended within timeoutMs. */
export async function fourLetterWord(host: string, port: number, word: string, timeoutMs = 2_000): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`four-letter word '${word}' to ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once("connect", () => sock.end(word));
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.once("error", (err) => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    });
    sock.once("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Config, spawn, readiness (the pieces an ensemble will reuse)

export interface ConfigInput {
  dataDir: string;
  port: number;
  tickTime: number;
  maxClientCnxns: number;
  extraConfig?: Record<string, string>;
}

/** zoo.cfg contents. Keys in extraConfig override the defaults. */
export function zooCfg(c: ConfigInput): string {
  const cfg: Record<string, string> = {
    tickTime: String(c.tickTime),
    initLimit: "10",
    syncLimit: "5",
    dataDir: c.dataDir,
    clientPort: String(c.port),
    clientPortAddress: ZOOKEEPER_HOST,
    maxClientCnxns: String(c.maxClientCnxns),
    // Let tests ask for long sessions too (the default cap would be 20 × tickTime = 10 s).
    maxSessionTimeout: String(Math.max(20 * c.tickTime, 60_000)),
    "admin.enableServer": "false",
    "4lw.commands.whitelist": "*",
    // Test data need not survive power loss (a killed JVM still leaves it in the page cache);
    // skipping fsync keeps writes fast on CI disks.
    forceSync: "no",
    preAllocSize: "4096", // KB; the default 64 MB preallocated txn log is pointless here
    "autopurge.purgeInterval": "0",
    ...c.extraConfig,
  };
  const lines = Object.entries(cfg).map(([k, v]) => `${k}=${v}`);
  return `${lines.join("\n")}\n`;
}

/** Start a JVM running mainClass with the config file; output appended to logFile. */
export function spawnJvm(
  mainClass: string,
  cfgPath: string,
  logFile: string,
  detached: boolean,
  jvmFlags: readonly string[] = defaultJvmFlags(),
): ChildProcess {
  const fd = openSync(logFile, "a");
  try {
    const child = spawn(javaBinary(), [...jvmFlags, "-cp", zooKeeperClasspath(), mainClass, cfgPath], {
      stdio: ["ignore", fd, fd],
      detached, // setsid: survives the terminal and this process
      env: { ...process.env, ZOO_LOG_DIR: join(logFile, "..") },
    });
    child.unref(); // never keeps a script alive by itself; stop() and the exit hook handle it
    return child;
  } finally {
    closeSync(fd);
  }
}

/** Resolves once `ruok` answers `imok`, `srvr` reports a mode and `conf` names our dataDir
 *  (so a server someone else started on the same port is never mistaken for ours).
 *
 *  A probe that connects in the first instants after the port is bound is sometimes accepted
 *  and then never answered, so probes start with a short timeout (a local answer takes a few
 *  ms) that doubles after each timeout, for slow machines. */
export async function waitUntilServing(port: number, dataDir: string, exited: Promise<string>, timeoutMs: number): Promise<void> {
  let exitReason: string | undefined;
  void exited.then((r) => (exitReason = r));
  const deadline = Date.now() + timeoutMs;
  const expectedDataDir = `dataDir=${join(dataDir, "version-2")}\n`;
  let probeMs = 200;
  for (;;) {
    if (exitReason !== undefined) throw new Error(`ZooKeeper exited before serving (${exitReason})`);
    try {
      if ((await fourLetterWord(ZOOKEEPER_HOST, port, "ruok", probeMs)) === "imok") {
        // Until the server is up, srvr says "This ZooKeeper instance is not currently serving requests".
        if (/^Mode: /m.test(await fourLetterWord(ZOOKEEPER_HOST, port, "srvr", probeMs))) {
          const conf = await fourLetterWord(ZOOKEEPER_HOST, port, "conf", probeMs);
          if (!conf.includes(expectedDataDir)) {
            throw new ForeignServerError(`port ${port} is served by another ZooKeeper (its conf does not name ${dataDir})`);
          }
          return;
        }
      }
    } catch (err) {
      if (err instanceof ForeignServerError) throw err;
      if (err instanceof Error && err.message.includes("timed out")) probeMs = Math.min(probeMs * 2, 2_000);
      // otherwise: not listening yet
    }
    if (Date.now() > deadline) throw new Error(`ZooKeeper did not answer ruok/srvr on port ${port} within ${timeoutMs} ms`);
    await sleep(POLL_MS);
  }
}

class ForeignServerError extends Error {}

// ---------------------------------------------------------------------------------------------
// Process bookkeeping: every non-detached JVM is killed when this process exits.

const live = new Map<number, { dataDir: string; ownsDir: boolean }>();
const exitDirs = new Set<string>();
let hooksInstalled = false;

/** SIGKILL `pid` when this process exits (also on SIGINT/SIGTERM/SIGHUP), unless forgotten
 *  first with the returned function; with `removeDir`, also delete that directory then. */
export function killOnExit(pid: number, removeDir?: string): () => void {
  installExitHooks();
  live.set(pid, { dataDir: removeDir ?? "", ownsDir: removeDir !== undefined });
  return () => {
    live.delete(pid);
  };
}

/** Delete `dir` (recursively) when this process exits, unless forgotten first. */
export function removeOnExit(dir: string): () => void {
  installExitHooks();
  exitDirs.add(dir);
  return () => {
    exitDirs.delete(dir);
  };
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", killAllSync);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      killAllSync();
      // If nobody else handles this signal, die of it as we would have without our hook.
      process.removeListener(sig, onSignal);
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

function killAllSync(): void {
  for (const [pid, { dataDir, ownsDir }] of live) {
    signalPid(pid, "SIGKILL");
    if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
  }
  live.clear();
  for (const dir of exitDirs) rmSync(dir, { recursive: true, force: true });
  exitDirs.clear();
}

/** True if pid is a running ZooKeeper JVM (checked via /proc, so a reused PID is never hit). */
export function isZooKeeperPid(pid: number): boolean {
  const cmdline = cmdlineOf(pid);
  return cmdline.includes(STANDALONE_MAIN) || cmdline.includes(QUORUM_MAIN);
}

/** SIGTERM a ZooKeeper we did not spawn (e.g. from a pid file), wait up to 5 s, then SIGKILL;
 *  resolves once the PID is gone. Refuses PIDs that are not ZooKeeper. */
export async function stopPid(pid: number): Promise<void> {
  if (!pidAlive(pid)) return;
  if (!isZooKeeperPid(pid)) throw new Error(`PID ${pid} is not a ZooKeeper server; not killing it`);
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + STOP_GRACE_MS;
  while (pidAlive(pid) && isZooKeeperPid(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      while (pidAlive(pid) && isZooKeeperPid(pid)) await sleep(POLL_MS);
      return;
    }
    await sleep(POLL_MS);
  }
}

// ---------------------------------------------------------------------------------------------
// startZooKeeper

export interface RunningJvm {
  child: ChildProcess;
  pid: number;
  /** Resolves with a description of how the process ended, once it has been reaped. */
  exited: Promise<string>;
}
type Running = RunningJvm;

function launch(cfgPath: string, logFile: string, detached: boolean, jvmFlags?: readonly string[]): Promise<Running> {
  return launchJvm(STANDALONE_MAIN, cfgPath, logFile, detached, jvmFlags);
}

/** spawnJvm, resolved once the process has a PID (rejects with an install hint if there is no
 *  java). Not registered for killing on exit: callers do that (killOnExit) unless detached. */
export function launchJvm(
  mainClass: string,
  cfgPath: string,
  logFile: string,
  detached: boolean,
  jvmFlags?: readonly string[],
): Promise<RunningJvm> {
  return new Promise<Running>((resolve, reject) => {
    const child = spawnJvm(mainClass, cfgPath, logFile, detached, jvmFlags);
    const exited = new Promise<string>((res) => {
      child.once("exit", (code, signal) => res(signal ? `killed by ${signal}` : `exit code ${code}`));
    });
    child.on("error", (err: NodeJS.ErrnoException) => {
      reject(
        err.code === "ENOENT"
          ? new Error(
              `cannot run '${javaBinary()}': Java not found. Install a JRE (apt-get install -y default-jre-headless) or set JAVA_HOME.`,
            )
          : err,
      );
    });
    child.once("spawn", () => {
      if (child.pid === undefined) reject(new Error("java started without a PID"));
      else resolve({ child, pid: child.pid, exited });
    });
  });
}

/** SIGTERM, SIGKILL after the grace period, resolve once the child has been reaped (so the PID
 *  is really gone: a zombie would still answer kill(pid, 0)). Also ends a SIGSTOPped JVM. */
export async function terminateJvm(r: RunningJvm): Promise<void> {
  // A SIGSTOPped JVM cannot act on SIGTERM. Only signal a child not yet reaped (PID reuse).
  if (r.child.exitCode === null && r.child.signalCode === null) signalPid(r.pid, "SIGCONT");
  await terminate(r);
}

async function terminate(r: Running): Promise<void> {
  if (r.child.exitCode === null && r.child.signalCode === null) signalPid(r.pid, "SIGTERM");
  const timer = setTimeout(() => signalPid(r.pid, "SIGKILL"), STOP_GRACE_MS); // also keeps the loop alive
  try {
    await r.exited;
  } finally {
    clearTimeout(timer);
  }
}

function logTail(logFile: string, lines = 40): string {
  try {
    return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export async function startZooKeeper(opts: StartOptions = {}): Promise<ZooKeeperServer> {
  zooKeeperClasspath(); // fail fast with the install hint
  const ownsDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), "conveyor-zk-"));
  const logFile = join(dataDir, "zookeeper.log");
  const cfgPath = join(dataDir, "zoo.cfg");
  const detached = opts.detached ?? false;
  const timeoutMs = opts.timeoutMs ?? 20_000;

  // The secure port is picked once and kept across restarts (clients dial it again).
  const securePort = opts.tls ? await freePort() : undefined;
  const secure = opts.tls && securePort !== undefined ? tlsConfig(opts.tls, securePort) : undefined;
  const startOn = async (port: number): Promise<Running> => {
    const extraConfig = { ...secure?.config, ...opts.extraConfig };
    writeFileSync(
      cfgPath,
      zooCfg({ dataDir, port, tickTime: opts.tickTime ?? 500, maxClientCnxns: opts.maxClientCnxns ?? 0, extraConfig }),
    );
    appendFileSync(logFile, `--- conveyor harness: starting ZooKeeper on ${ZOOKEEPER_HOST}:${port} ---\n`);
    const jvmFlags = secure ? [...(opts.jvmFlags ?? defaultJvmFlags()), ...secure.jvmFlags] : opts.jvmFlags;
    const r = await launch(cfgPath, logFile, detached, jvmFlags);
    if (!detached) {
      installExitHooks();
      live.set(r.pid, { dataDir, ownsDir });
    }
    try {
      await waitUntilServing(port, dataDir, r.exited, timeoutMs);
      return r;
    } catch (err) {
      await terminate(r);
      live.delete(r.pid);
      throw err;
    }
  };

  const startWithRetries = async (fixedPort: number | undefined): Promise<{ r: Running; port: number }> => {
    const errors: string[] = [];
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      const port = fixedPort ?? (await freePort());
      try {
        return { r: await startOn(port), port };
      } catch (err) {
        if (err instanceof Error && err.message.startsWith("cannot run")) throw err;
        errors.push(`attempt ${attempt} (port ${port}): ${err instanceof Error ? err.message : String(err)}`);
        if (fixedPort !== undefined) await sleep(200);
      }
    }
    const tail = logTail(logFile);
    const inUse = /Address already in use/.test(tail) ? " (the port is in use)" : "";
    if (ownsDir && !detached) rmSync(dataDir, { recursive: true, force: true });
    throw new Error(`could not start ZooKeeper${inUse}:\n  ${errors.join("\n  ")}\n--- ${logFile} (tail) ---\n${tail}`);
  };

  let { r: running, port } = await startWithRetries(opts.port);
  let stopped = false;

  const server: ZooKeeperServer = {
    host: ZOOKEEPER_HOST,
    port,
    connectString: `${ZOOKEEPER_HOST}:${port}`,
    pid: running.pid,
    dataDir,
    logFile,
    ...(securePort === undefined ? {} : { securePort, secureConnectString: `${ZOOKEEPER_HOST}:${securePort}` }),
    kill(signal: NodeJS.Signals = "SIGKILL") {
      signalPid(running.pid, signal);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (detached) {
        await stopPid(running.pid);
      } else {
        signalPid(running.pid, "SIGCONT"); // a SIGSTOPped JVM cannot act on SIGTERM
        await terminate(running);
      }
      live.delete(running.pid);
      if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
    },
    async restart() {
      if (stopped) throw new Error("restart() after stop()");
      signalPid(running.pid, "SIGCONT");
      await terminate(running);
      live.delete(running.pid);
      ({ r: running, port } = await startWithRetries(port));
      server.pid = running.pid;
    },
  };
  return server;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------
// For test files

export interface ZooKeeperFixture {
  /** "127.0.0.1:PORT"; read it inside tests or hooks, not at module load. */
  readonly connectString: string;
  readonly port: number;
  /** The server itself (stop, kill, restart, pid, dataDir, logFile). */
  readonly server: ZooKeeperServer;
  /** connectString plus a fresh chroot: "127.0.0.1:PORT/t-<prefix>-<random>". */
  withChroot(prefix: string): string;
}

/** Start one server in beforeAll and stop it in afterAll. */
export function useZooKeeper(opts: StartOptions = {}): ZooKeeperFixture {
  let server: ZooKeeperServer | undefined;
  beforeAll(async () => {
    server = await startZooKeeper(opts);
  }, 70_000); // three start attempts of up to 20 s each
  afterAll(async () => {
    await server?.stop();
    server = undefined;
  }, 15_000);
  const current = (): ZooKeeperServer => {
    if (!server) throw new Error("useZooKeeper(): the server exists only inside tests and hooks (after beforeAll)");
    return server;
  };
  return {
    get connectString() {
      return current().connectString;
    },
    get port() {
      return current().port;
    },
    get server() {
      return current();
    },
    withChroot(prefix: string) {
      return current().connectString + uniqueChroot(prefix);
    },
  };
}

/** A chroot no other test uses: "/t-<prefix>-<random>" (prefix reduced to [A-Za-z0-9._-]). */
export function uniqueChroot(prefix: string): string {
  const clean = prefix.replace(/[^A-Za-z0-9._-]+/g, "-").slice(0, 40) || "x";
  const random = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
  return `/t-${clean}-${random}`;
}

/**
 * SIGSTOP the server and wait until every thread of it is stopped (the signal takes effect
 * asynchronously: until the JVM gets CPU to act on it, its other threads may still answer
 * requests). SIGCONT resumes it.
 */
export async function freezeServer(server: ZooKeeperServer): Promise<void> {
  server.kill("SIGSTOP");
  await waitForStrict(() => allThreadsStopped(server.pid), 5_000, "the server to stop");
}

/** True once every thread of the process is stopped (or traced, a zombie, dead). */
function allThreadsStopped(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).every((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      return "TtZX".includes(stat.charAt(stat.lastIndexOf(")") + 2));
    });
  } catch {
    return false;
  }
}
