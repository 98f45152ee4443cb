// Running the compiled CLI (dist/conveyor) from tests, and reading ZooKeeper back with Debian's
// own client, so a CLI test never trusts our code to check our code. Typical use:
//
//   useCli();                                     // beforeAll: build if stale; afterAll: clean up
//   test("...", async () => {
//     const r = await runCli(["--zk", connect, "app", "list", "--json"]);
//     expect(r.code).toBe(0);
//     const data = await zkCliGet(zk.connectString, "/t-x/apps/myapp");   // null if missing
//   });
//
// `bun test` fires no process "exit" event, so nothing here relies on one: every process has a
// hard timeout and is awaited, and useCli()'s afterAll kills any straggler and removes
// processTempDir().

import { afterAll, beforeAll, expect } from "bun:test";
import { type Stats, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pidAlive, signalPid } from "./processes.ts";

export const REPO_ROOT = resolve(import.meta.dir, "..", "..");
/** The artifact under test. */
export const DIST_BINARY = join(REPO_ROOT, "dist", "conveyor");
const PINNED_BUN = join(REPO_ROOT, "node_modules", ".bin", "bun");
/** Inputs of the binary: it is rebuilt when any file under these is newer than it. */
const BUILD_INPUTS = [join(REPO_ROOT, "src"), join(REPO_ROOT, "package.json"), join(REPO_ROOT, "scripts", "build.ts")];
const BASE_ENV: Readonly<Record<string, string>> = { PATH: "/usr/bin:/bin" };
/** Shared by every test process of this user: binary snapshots, an empty cwd, per-test dirs. */
const WORK_ROOT = join(tmpdir(), `conveyor-cli-test-${process.getuid?.() ?? "user"}`);
/** Snapshots no longer linked to dist/conveyor are removed once they are this old. */
const STALE_MS = 30 * 60_000;
const ZK_CLASSPATH = ["/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-nop.jar"].join(":");
const ZK_MAIN = "org.apache.zookeeper.ZooKeeperMain";
/** A small, quiet JVM; a call takes ~0.4 s, mostly waiting on the session close, so calls can run in parallel. */
const ZK_CLI_JVM_FLAGS = ["-Xshare:auto", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:-UsePerfData"];

export interface CliResult {
  /** Exit status; 128 + signal number when the process was killed. */
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, in milliseconds. */
  ms: number;
  /** True when it was killed at timeoutMs. */
  timedOut: boolean;
}

export interface RunOptions {
  /** Added to the minimal environment (PATH=/usr/bin:/bin); nothing else is inherited. */
  env?: Record<string, string>;
  /** Default: an empty directory nobody writes to. */
  cwd?: string;
  /** Hard SIGKILL after this long; default 30 s. */
  timeoutMs?: number;
  /** Written to the process's stdin, which is then closed; default: no stdin. */
  stdin?: string | Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Fixture and bookkeeping

const running = new Set<number>();
let processDir: string | undefined;

/**
 * beforeAll: ensureBinary(). afterAll: kill any process still running, remove processTempDir()
 * (a later file gets a fresh one).
 */
export function useCli(): void {
  beforeAll(async () => {
    await ensureBinary();
  }, 180_000);
  afterAll(() => {
    for (const pid of running) signalPid(pid, "SIGKILL");
    running.clear();
    if (processDir !== undefined) rmSync(processDir, { recursive: true, force: true });
    processDir = undefined;
  });
}

/**
 * A directory private to this test process ("…/dirs/p<pid>-XXXXXX"). Removed by useCli()'s
 * afterAll; one left behind by a process that died is removed by the next process.
 */
export function processTempDir(): string {
  if (processDir === undefined || !existsSync(processDir)) {
    const parent = join(WORK_ROOT, "dirs");
    mkdirSync(parent, { recursive: true });
    pruneDeadProcessDirs(parent);
    processDir = mkdtempSync(join(parent, `p${process.pid}-`));
  }
  return processDir;
}

/** A fresh empty directory inside processTempDir(). */
export function emptyDir(prefix = "dir-"): string {
  return mkdtempSync(join(processTempDir(), prefix));
}

function pruneDeadProcessDirs(parent: string): void {
  for (const name of readdirSync(parent)) {
    const pid = Number(/^p(\d+)-/.exec(name)?.[1]);
    if (!Number.isInteger(pid) || pid === process.pid || pidAlive(pid)) continue;
    rmSync(join(parent, name), { recursive: true, force: true });
  }
}

/** The default cwd: one empty directory, never written to. */
function neutralCwd(): string {
  const dir = join(WORK_ROOT, "empty");
  mkdirSync(dir, { recursive: true });
  return dir;
}

// ---------------------------------------------------------------------------------------------
// The binary

let binary: Promise<string> | undefined;

/**
 * Builds dist/conveyor (`bun scripts/build.ts --host-only`) if it is missing or older than any
 * file in src/ (or package.json, scripts/build.ts), at most once per test process, and resolves
 * to the path tests run.
 *
 * That path is a hard link to dist/conveyor, named after its inode: the same file under a name
 * of our own, because a build started by someone else meanwhile first deletes dist/conveyor and
 * a spawn in that window would fail with ENOENT. No lock: two processes that both decide to
 * build just build twice; the snapshot is checked with --version and rebuilt once if bad.
 */
export function ensureBinary(): Promise<string> {
  binary ??= prepareBinary();
  return binary;
}

async function prepareBinary(): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    if (!isFresh()) await build();
    const snapshot = snapshotBinary();
    const check = await spawnCollect([snapshot, "--version"], { timeoutMs: 10_000 });
    if (check.code === 0 && /^conveyor \S+ \(\S+\)\n$/.test(check.stdout)) return snapshot;
    if (attempt >= 2) {
      throw new Error(`${DIST_BINARY} --version failed (exit ${check.code}): ${(check.stderr || check.stdout).trim()}`);
    }
    rmSync(DIST_BINARY, { force: true }); // forces a rebuild on the retry
  }
}

function isFresh(): boolean {
  if (!existsSync(DIST_BINARY)) return false;
  const built = statSync(DIST_BINARY).mtimeMs;
  return BUILD_INPUTS.every((input) => newestMtime(input) <= built);
}

function newestMtime(path: string): number {
  let stat: Stats;
  try {
    stat = statSync(path);
  } catch {
    return 0; // vanished while we looked (someone is editing): ignore
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs; // a deleted file shows as a newer directory
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

async function build(): Promise<void> {
  const res = await spawnCollect([PINNED_BUN, "scripts/build.ts", "--host-only"], {
    cwd: REPO_ROOT,
    env: definedEnv(process.env), // the developer's build environment; the CLI runs never see it
    timeoutMs: 180_000,
  });
  if (res.code !== 0) {
    throw new Error(`bun scripts/build.ts --host-only failed (exit ${res.code}):\n${res.stdout}${res.stderr}`);
  }
}

function definedEnv(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

function snapshotBinary(): string {
  const dir = join(WORK_ROOT, "bin");
  mkdirSync(dir, { recursive: true });
  pruneSnapshots(dir);
  const stat = statSync(DIST_BINARY);
  const target = join(dir, `conveyor-${stat.dev}-${stat.ino}-${Math.floor(stat.mtimeMs)}`);
  if (existsSync(target)) return target;
  const partial = `${target}.${process.pid}.tmp`;
  try {
    linkSync(DIST_BINARY, partial);
  } catch {
    copyFileSync(DIST_BINARY, partial); // another filesystem
  }
  renameSync(partial, target); // atomic: another process never sees half a copy
  return target;
}

/** Snapshots of binaries that were rebuilt since (nothing else links to them) and are old. */
function pruneSnapshots(dir: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    try {
      const stat = statSync(path);
      if (stat.nlink === 1 && Date.now() - stat.ctimeMs > STALE_MS) rmSync(path, { force: true });
    } catch {
      // another process pruned it
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Running it

/** Runs the compiled CLI with a minimal environment; never hangs (SIGKILL at timeoutMs). */
/** A CLI result for an assertion message: exit code, wall time, stdout and stderr. */
export function show(r: CliResult): string {
  return `exit ${r.code} after ${Math.round(r.ms)} ms\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** Runs the binary and expects success: exit 0 and nothing on stderr. */
export async function runOk(args: string[], opts: RunOptions = {}): Promise<CliResult> {
  const r = await runCli(args, opts);
  expect({ code: r.code, stderr: r.stderr }, show(r)).toEqual({ code: 0, stderr: "" });
  return r;
}

export async function runCli(args: string[], opts: RunOptions = {}): Promise<CliResult> {
  const path = await ensureBinary();
  return spawnCollect([path, ...args], opts);
}

/** Spawns any command the way runCli does (minimal env, neutral cwd, hard timeout). */
export async function spawnCollect(cmd: string[], opts: RunOptions = {}): Promise<CliResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const started = performance.now();
  const proc = Bun.spawn(cmd, {
    cwd: opts.cwd ?? neutralCwd(),
    env: { ...BASE_ENV, ...opts.env },
    stdin: opts.stdin === undefined ? "ignore" : "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  running.add(proc.pid);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, timeoutMs);
  try {
    if (opts.stdin !== undefined && proc.stdin) {
      proc.stdin.write(opts.stdin);
      await proc.stdin.end();
    }
    const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    await proc.exited;
    const ms = performance.now() - started;
    const code = proc.exitCode ?? 128 + signalNumber(proc.signalCode);
    return { code, stdout, stderr, ms, timedOut };
  } finally {
    clearTimeout(timer);
    running.delete(proc.pid);
  }
}

function signalNumber(signal: string | number | null): number {
  if (typeof signal === "number") return signal;
  const numbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGTERM: 15 };
  return signal === null ? 0 : (numbers[signal] ?? 0);
}

// ---------------------------------------------------------------------------------------------
// Debian's ZooKeeper client, for reading back what the CLI wrote

/**
 * Runs one ZooKeeperMain command. Its stdout carries, besides the command's output, a
 * "Connecting to …" line and the watcher's connection event ("\nWATCHER::\n" and
 * "\nWatchedEvent state:… type:… path:…\n", printed by another thread, so anywhere); those are
 * cut out. slf4j-nop silences the logging. Resolves null when the node does not exist.
 */
async function zkCli(connectString: string, command: string[]): Promise<string | null> {
  const javaHome = process.env.JAVA_HOME;
  const res = await spawnCollect(["java", ...ZK_CLI_JVM_FLAGS, "-cp", ZK_CLASSPATH, ZK_MAIN, "-server", connectString, ...command], {
    env: javaHome === undefined ? {} : { JAVA_HOME: javaHome, PATH: `${javaHome}/bin:/usr/bin:/bin` },
    timeoutMs: 20_000,
  });
  if (/^Node does not exist: /m.test(res.stderr)) return null;
  if (res.code !== 0) {
    const why = res.stderr.trim() || res.stdout.trim();
    throw new Error(`zkCli ${command.join(" ")} on ${connectString} failed (exit ${res.code}${res.timedOut ? ", timed out" : ""}): ${why}`);
  }
  return res.stdout
    .replace(/^Connecting to \S+\n/, "")
    .replaceAll(/\nWATCHER::\n/g, "")
    .replaceAll(/\nWatchedEvent state:\S+ type:\S+ path:\S+\n/g, "")
    .replace(/^\n+/, "");
}

/** The data of `path` as a string ("" for an empty node), or null when it does not exist. */
export async function zkCliGet(connectString: string, path: string): Promise<string | null> {
  const out = await zkCli(connectString, ["get", path]);
  return out === null ? null : out.replace(/\n$/, "");
}

/** Writes `data` to `path` as an operator (or an attacker) with zkCli would; false when it does not exist. */
export async function zkCliSet(connectString: string, path: string, data: string): Promise<boolean> {
  return (await zkCli(connectString, ["set", path, data])) !== null;
}

/** The children of `path`, sorted, or null when it does not exist. */
export async function zkCliLs(connectString: string, path: string): Promise<string[] | null> {
  const out = await zkCli(connectString, ["ls", path]);
  if (out === null) return null;
  const line = out
    .split("\n")
    .reverse()
    .find((l) => /^\[.*\]$/.test(l));
  if (line === undefined) throw new Error(`zkCli ls ${path}: no child list in output ${JSON.stringify(out)}`);
  const inner = line.slice(1, -1).trim();
  return inner === "" ? [] : inner.split(", ").sort();
}

/** "127.0.0.1:PORT/t-x-123" → { server: "127.0.0.1:PORT", chroot: "/t-x-123" }. */
export function splitConnect(connect: string): { server: string; chroot: string } {
  const slash = connect.indexOf("/");
  return slash === -1 ? { server: connect, chroot: "" } : { server: connect.slice(0, slash), chroot: connect.slice(slash) };
}
