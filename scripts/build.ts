// Release build: one self-contained executable per platform, made with the pinned Bun.
//
//   bun scripts/build.ts              dist/conveyor, dist/conveyor-linux-x64, dist/conveyor-linux-arm64,
//                                     dist/SHA256SUMS
//   bun scripts/build.ts --host-only  dist/conveyor and dist/conveyor-linux-x64 only (fast test cycles)
//   bun scripts/build.ts --bench      build every flag combination into .tmp/bench/ and time
//                                     `conveyor --version` (hyperfine if installed, else a 50-run loop)
//
// Start-up measurement, 2026-11-24, 2 cores, linux-x64, Bun 1.4.5 (`bun scripts/build.ts --bench`):
// hyperfine -N --warmup 5 --runs 50 of `<binary> --version`, from an empty directory, bare env.
// "stub" = src/main.ts as of today (a 10-line CLI placeholder: every config is the runtime's ~9-10 ms);
// "deps" = the same plus cac, consola, valibot and node-zookeeper-client loaded at start-up, as the
// finished CLI will. Medians / p90 in ms; the machine is noisy, so ±1 ms medians are ties.
//
//   flags                                        stub med/p90    deps med/p90   deps size
//   (none)                                         10.3 / 15.1     26.0 / 31.3   109.70 MB
//   --minify                                       10.1 / 12.9     25.0 / 30.9   109.47 MB
//   --format=esm   (= (none): esm is the default)   8.9 /  9.3     25.8 / 29.7   109.70 MB
//   --minify --format=esm                          10.0 / 12.8     24.2 / 33.9   109.47 MB
//   --bytecode             FAILS: defaults to cjs, and src/main.ts uses top-level await
//   --bytecode --minify    FAILS: same
//   --bytecode --format=esm                         9.1 /  9.6     10.1 / 13.6   112.56 MB
//   --bytecode --format=esm --minify                9.4 / 14.7     10.5 / 14.7   112.31 MB
//   --bytecode --format=esm --minify --keep-names   9.2 / 12.1     10.8 / 16.5   112.31 MB  <- chosen
//
// (stub binaries are all 109.21 MB; the arm64 build is about the same size.)
// Bytecode with esm halves start-up once the dependencies load (~25 ms -> ~10 ms); minify changes
// nothing measurable (a 200-run rerun of the last three: 13.5, 13.1, 12.1 ms means, σ ~2.5 ms) and
// saves 0.25 MB. --keep-names costs nothing here and keeps class/function names (`.name`, stack
// traces) intact for error output. Re-run `--bench` after a Bun upgrade or a big bundle change.

import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { percentile } from "../test/harness/percentile.ts";

const ROOT = resolve(import.meta.dir, "..");
const DIST = join(ROOT, "dist");
const ENTRY = join(ROOT, "src", "main.ts");
const PINNED_BUN = join(ROOT, "node_modules", ".bin", "bun");
const CROSS_CACHE = join(ROOT, "node_modules", ".cache", "conveyor-build");
const AARCH64_SYSROOT = "/usr/aarch64-linux-gnu";

/** The configuration the measurement above picked. */
const RELEASE_FLAGS: readonly string[] = ["--bytecode", "--format=esm", "--minify", "--keep-names"];

/** A compiled binary must never pick up configuration from the directory it is started in. */
const HERMETIC_FLAGS: readonly string[] = [
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
  "--no-compile-autoload-tsconfig",
  "--no-compile-autoload-package-json",
];

const SMOKE_ENV: Record<string, string> = { PATH: "/usr/bin:/bin" };

class BuildError extends Error {}

interface Options {
  hostOnly: boolean;
  bench: boolean;
}

interface Stamp {
  version: string;
  commit: string;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function parseArgs(argv: readonly string[]): Options {
  const options: Options = { hostOnly: false, bench: false };
  for (const arg of argv) {
    if (arg === "--host-only") options.hostOnly = true;
    else if (arg === "--bench") options.bench = true;
    else throw new BuildError(`unknown argument ${arg} (usage: bun scripts/build.ts [--host-only] [--bench])`);
  }
  return options;
}

async function run(
  cmd: readonly string[],
  opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RunResult> {
  let proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  try {
    proc = Bun.spawn([...cmd], {
      cwd: opts.cwd ?? ROOT,
      env: opts.env ?? { ...process.env },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      timeout: opts.timeoutMs ?? 300_000,
    });
  } catch (err) {
    // Bun.spawn throws synchronously when the executable does not exist.
    return { code: 127, stdout: "", stderr: err instanceof Error ? err.message : String(err) };
  }
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** The first "error:" line of a tool's output, else its last line, for one-line error messages. */
function lastLine(text: string): string {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  return lines.find((l) => /^error\b/i.test(l)) ?? lines[lines.length - 1] ?? "(no output)";
}

/** npm's error code and first message line, e.g. "ECONNREFUSED: FetchError: request to … failed". */
function npmError(stderr: string): string {
  const lines = stderr.split("\n").filter((l) => l.startsWith("npm error"));
  const code = /^npm error code (\S+)/.exec(lines.find((l) => l.startsWith("npm error code ")) ?? "")?.[1];
  const message = lines
    .map((l) => l.replace(/^npm error\s*/, ""))
    .find((l) => l !== "" && !/^(code|syscall|errno|at|A complete log)\b/.test(l));
  if (message === undefined) return lastLine(stderr);
  return code === undefined ? message : `${code}: ${message.replace(/^notarget\s*/, "")}`;
}

function seconds(startMs: number): string {
  return `${((performance.now() - startMs) / 1000).toFixed(1)}s`;
}

async function sizeMB(path: string): Promise<string> {
  return `${((await stat(path)).size / 1_000_000).toFixed(1)} MB`;
}

function rel(path: string): string {
  return relative(ROOT, path);
}

async function readStamp(): Promise<Stamp> {
  const pkg: unknown = await Bun.file(join(ROOT, "package.json")).json();
  const version = typeof pkg === "object" && pkg !== null && "version" in pkg && typeof pkg.version === "string" ? pkg.version : undefined;
  if (version === undefined || !/^[0-9A-Za-z.+-]+$/.test(version)) {
    throw new BuildError('package.json has no usable "version"');
  }

  let commit = "unknown";
  const head = await run(["git", "rev-parse", "--short=12", "HEAD"]);
  if (head.code === 0 && /^[0-9a-f]{12}$/.test(head.stdout.trim())) {
    commit = head.stdout.trim();
    // Untracked (not ignored) files count too: a build that picked them up is not reproducible from HEAD.
    const status = await run(["git", "status", "--porcelain"]);
    if (status.code !== 0 || status.stdout.trim() !== "") commit += "-dirty";
  }
  return { version, commit };
}

async function pinnedBunVersion(): Promise<string> {
  if (!existsSync(PINNED_BUN)) throw new BuildError(`${rel(PINNED_BUN)} is missing: run npm ci first`);
  const res = await run([PINNED_BUN, "--version"]);
  const version = res.stdout.trim();
  if (res.code !== 0 || !/^\d+\.\d+\.\d+$/.test(version)) {
    throw new BuildError(`${rel(PINNED_BUN)} --version failed: ${lastLine(res.stderr + res.stdout)}`);
  }
  return version;
}

async function compile(args: {
  entry?: string;
  outfile: string;
  flags: readonly string[];
  stamp: Stamp;
  target?: string;
  executablePath?: string;
}): Promise<RunResult> {
  const cmd = [
    PINNED_BUN,
    "build",
    args.entry ?? ENTRY,
    "--compile",
    ...args.flags,
    ...HERMETIC_FLAGS,
    "--define",
    `CONVEYOR_BUILD_VERSION=${JSON.stringify(args.stamp.version)}`,
    "--define",
    `CONVEYOR_BUILD_COMMIT=${JSON.stringify(args.stamp.commit)}`,
    "--outfile",
    args.outfile,
  ];
  if (args.target !== undefined) cmd.push(`--target=${args.target}`);
  if (args.executablePath !== undefined) cmd.push(`--compile-executable-path=${args.executablePath}`);
  return run(cmd);
}

/** Runs the binary as a user would from an unrelated directory with a bare environment. */
async function smokeTest(binary: string, stamp: Stamp, via: readonly string[] = []): Promise<string | undefined> {
  const dir = await mkdtemp(join(tmpdir(), "conveyor-smoke-"));
  try {
    const res = await run([...via, binary, "--version"], { cwd: dir, env: SMOKE_ENV, timeoutMs: 30_000 });
    const expected = `conveyor ${stamp.version} (${stamp.commit})`;
    if (res.code !== 0) return `exit ${res.code}: ${lastLine(res.stderr + res.stdout)}`;
    if (res.stdout.trim() !== expected) return `printed "${res.stdout.trim()}", expected "${expected}"`;
    return undefined;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function fileDescription(path: string): Promise<string> {
  const res = await run(["file", "-b", path]);
  if (res.code !== 0) throw new BuildError(`file(1) failed on ${rel(path)}: ${lastLine(res.stderr)}`);
  return res.stdout.trim();
}

/**
 * An aarch64 Bun of exactly the pinned version, from the npm package @oven/bun-linux-aarch64
 * (fetched with `npm pack`, since npm refuses to install it on x64), cached under node_modules/.cache.
 * Returns the path, or throws with the reason arm64 cannot be built.
 */
async function aarch64Bun(bunVersion: string): Promise<string> {
  const dir = join(CROSS_CACHE, `bun-linux-aarch64-${bunVersion}`);
  const binary = join(dir, "bin", "bun");
  if (!existsSync(binary)) {
    await mkdir(CROSS_CACHE, { recursive: true });
    const work = await mkdtemp(join(CROSS_CACHE, "fetch-"));
    try {
      const pack = await run(["npm", "pack", `@oven/bun-linux-aarch64@${bunVersion}`, "--pack-destination", work, "--json"], {
        cwd: work,
        timeoutMs: 180_000,
      });
      if (pack.code !== 0) throw new Error(`npm pack @oven/bun-linux-aarch64@${bunVersion} failed: ${npmError(pack.stderr)}`);
      const packed: unknown = JSON.parse(pack.stdout);
      const first: unknown = Array.isArray(packed) ? packed[0] : undefined;
      const filename =
        typeof first === "object" && first !== null && "filename" in first && typeof first.filename === "string"
          ? first.filename
          : undefined;
      if (filename === undefined) throw new Error("npm pack printed no tarball name");
      const untar = await run(["tar", "-xzf", join(work, filename), "-C", work]);
      if (untar.code !== 0) throw new Error(`tar failed: ${lastLine(untar.stderr)}`);
      const extracted = join(work, "package");
      if (!existsSync(join(extracted, "bin", "bun"))) throw new Error("package has no bin/bun");
      await chmod(join(extracted, "bin", "bun"), 0o755);
      await rm(dir, { recursive: true, force: true });
      await rename(extracted, dir); // atomic: a half-extracted package is never taken for a cached one
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  const description = await fileDescription(binary);
  if (!description.includes("ARM aarch64")) throw new Error(`${rel(binary)} is not an aarch64 ELF (${description})`);
  return binary;
}

async function sha256(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  hasher.update(await Bun.file(path).arrayBuffer());
  return hasher.digest("hex");
}

async function build(options: Options): Promise<void> {
  const started = performance.now();
  const bunVersion = await pinnedBunVersion();
  const stamp = await readStamp();
  console.log(`conveyor ${stamp.version} (${stamp.commit}), bun ${bunVersion}, flags ${RELEASE_FLAGS.join(" ")}`);

  // Never leave an artifact of an earlier build next to this one's (SHA256SUMS would vouch for it).
  await mkdir(DIST, { recursive: true });
  for (const name of ["conveyor", "conveyor-linux-x64", "conveyor-linux-arm64", "SHA256SUMS"]) {
    await rm(join(DIST, name), { force: true });
  }

  // Host (linux-x64).
  let t = performance.now();
  const host = join(DIST, "conveyor");
  const res = await compile({ outfile: host, flags: RELEASE_FLAGS, stamp });
  if (res.code !== 0) throw new BuildError(`bun build failed: ${lastLine(res.stderr + res.stdout)}`);
  const smoke = await smokeTest(host, stamp);
  if (smoke !== undefined) throw new BuildError(`${rel(host)} --version failed its check: ${smoke}`);
  console.log(`${rel(host)}  ${await sizeMB(host)}  ${seconds(t)}`);

  const x64 = join(DIST, "conveyor-linux-x64");
  await copyFile(host, x64);
  await chmod(x64, 0o755);
  console.log(`${rel(x64)}  ${await sizeMB(x64)}  (copy of ${rel(host)})`);
  const releases = [x64];

  if (!options.hostOnly) {
    // Cross-compiled linux-arm64: skipped with one line, never fatal, if it cannot be made here.
    t = performance.now();
    const arm64 = join(DIST, "conveyor-linux-arm64");
    try {
      const executablePath = await aarch64Bun(bunVersion);
      const cross = await compile({ outfile: arm64, flags: RELEASE_FLAGS, stamp, target: "bun-linux-arm64", executablePath });
      if (cross.code !== 0) throw new Error(`bun build failed: ${lastLine(cross.stderr + cross.stdout)}`);
      const description = await fileDescription(arm64);
      if (!description.includes("ARM aarch64")) throw new Error(`output is not an aarch64 ELF (${description})`);
      // Where qemu-user and the aarch64 libc are installed (apt-get install qemu-user libc6-arm64-cross),
      // also run it; otherwise the ELF check above is all this machine can do.
      const qemu = Bun.which("qemu-aarch64");
      let ran = "not run: no qemu-aarch64";
      if (qemu !== null && existsSync(AARCH64_SYSROOT)) {
        const failure = await smokeTest(arm64, stamp, [qemu, "-L", AARCH64_SYSROOT]);
        if (failure !== undefined) throw new Error(`--version under qemu-aarch64 failed: ${failure}`);
        ran = "--version ok under qemu";
      }
      releases.push(arm64);
      console.log(`${rel(arm64)}  ${await sizeMB(arm64)}  ${seconds(t)}  (ELF aarch64, ${ran})`);
    } catch (err) {
      if (err instanceof BuildError) throw err;
      await rm(arm64, { force: true });
      console.log(`arm64 skipped: ${err instanceof Error ? err.message : String(err)}`);
    }

    t = performance.now();
    const sums = join(DIST, "SHA256SUMS");
    const lines: string[] = [];
    for (const file of releases) lines.push(`${await sha256(file)}  ${relative(DIST, file)}`);
    await Bun.write(sums, `${lines.join("\n")}\n`);
    console.log(`${rel(sums)}  ${releases.length} binaries  ${seconds(t)}`);
  }

  console.log(`build done in ${seconds(started)}`);
}

// ---------------------------------------------------------------------------------------------
// --bench: how the table at the top of this file was made.

const BENCH_CONFIGS: readonly (readonly string[])[] = [
  [],
  ["--minify"],
  ["--format=esm"],
  ["--minify", "--format=esm"],
  ["--bytecode"],
  ["--bytecode", "--minify"],
  ["--bytecode", "--format=esm"],
  ["--bytecode", "--format=esm", "--minify"],
  ["--bytecode", "--format=esm", "--minify", "--keep-names"],
];
const BENCH_RUNS = 50;

/** Wall-clock seconds of each run of `binary --version`. */
async function timeRuns(binary: string, cwd: string): Promise<number[]> {
  const hyperfine = Bun.which("hyperfine");
  if (hyperfine !== null) {
    const json = join(cwd, "hyperfine.json");
    const res = await run([hyperfine, "-N", "--warmup", "5", "--runs", String(BENCH_RUNS), "--export-json", json, `${binary} --version`], {
      cwd,
      env: SMOKE_ENV,
    });
    if (res.code !== 0) throw new BuildError(`hyperfine failed: ${lastLine(res.stderr)}`);
    const report: unknown = await Bun.file(json).json();
    const results: unknown = typeof report === "object" && report !== null && "results" in report ? report.results : undefined;
    const first: unknown = Array.isArray(results) ? results[0] : undefined;
    const times: unknown = typeof first === "object" && first !== null && "times" in first ? first.times : undefined;
    if (!Array.isArray(times) || !times.every((x): x is number => typeof x === "number")) {
      throw new BuildError("hyperfine JSON has no times");
    }
    return times;
  }
  const times: number[] = [];
  for (let i = 0; i < BENCH_RUNS + 5; i++) {
    const t = performance.now();
    const proc = Bun.spawnSync([binary, "--version"], { cwd, env: SMOKE_ENV, stdout: "ignore", stderr: "ignore" });
    const elapsed = (performance.now() - t) / 1000;
    if (!proc.success) throw new BuildError(`${binary} --version failed during timing`);
    if (i >= 5) times.push(elapsed); // first 5 are warm-up
  }
  return times;
}

/**
 * src/main.ts alone measures the CLI as it is today; the second entry also loads every runtime
 * dependency at start-up, as the finished CLI will, so the choice does not rest on a stub.
 */
const DEPS_ENTRY = `import cac from "cac";
import { createConsola } from "consola";
import * as v from "valibot";
import zookeeper from "node-zookeeper-client";
(globalThis as Record<string, unknown>).__conveyorBench = [cac, createConsola, v, zookeeper];
import "../../src/main.ts";
`;

async function bench(): Promise<void> {
  await pinnedBunVersion();
  const stamp = await readStamp();
  const out = join(ROOT, ".tmp", "bench");
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const depsEntry = join(out, "entry-with-deps.ts");
  await Bun.write(depsEntry, DEPS_ENTRY);
  const cwd = await mkdtemp(join(tmpdir(), "conveyor-bench-"));
  const tool = Bun.which("hyperfine") !== null ? "hyperfine -N --warmup 5" : "spawn loop, 5 warm-up";
  console.log(`timing \`conveyor --version\` from an empty directory, bare env, ${BENCH_RUNS} runs each (${tool})`);
  try {
    for (const [entryName, entry] of [
      ["src/main.ts", ENTRY],
      ["src/main.ts + cac, consola, valibot, node-zookeeper-client", depsEntry],
    ] as const) {
      console.log(`\nentry: ${entryName}`);
      console.log(`${"flags".padEnd(46)}works   median      p90       size`);
      for (const [i, flags] of BENCH_CONFIGS.entries()) {
        const label = (flags.length === 0 ? "(none)" : flags.join(" ")).padEnd(46);
        const binary = join(out, `conveyor-${entry === ENTRY ? "main" : "deps"}-${i}`);
        const res = await compile({ entry, outfile: binary, flags, stamp });
        const problem = res.code !== 0 ? `build: ${lastLine(res.stderr + res.stdout)}` : await smokeTest(binary, stamp);
        if (problem !== undefined) {
          console.log(`${label}    no  -- ${problem}`);
          continue;
        }
        const sorted = (await timeRuns(binary, cwd)).sort((a, b) => a - b);
        const ms = (s: number): string => `${(s * 1000).toFixed(1)} ms`.padStart(8);
        const size = `${((await stat(binary)).size / 1_000_000).toFixed(2)} MB`.padStart(10);
        console.log(`${label}   yes ${ms(percentile(sorted, 50))} ${ms(percentile(sorted, 90))} ${size}`);
      }
    }
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

try {
  const options = parseArgs(process.argv.slice(2));
  if (options.bench) await bench();
  else await build(options);
} catch (err) {
  console.error(`build failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
