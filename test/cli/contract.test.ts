// The CLI contract (README, docs/ARCHITECTURE.md), checked against the compiled binary (dist/conveyor) and a real
// ZooKeeper: stdout, stderr, exit codes, and what ends up in ZooKeeper (read back with Debian's
// ZooKeeperMain or a raw client, never through the CLI under test).
//
// One ZooKeeper for the file, one chroot per test. The two 10-second "unreachable" runs start in
// beforeAll and are checked by the last test, so they overlap with everything else.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import type { ZkClient } from "../../src/zk/client.ts";
import {
  type CliResult,
  REPO_ROOT,
  emptyDir,
  ensureBinary,
  runCli,
  spawnCollect,
  splitConnect,
  useCli,
  zkCliGet,
  zkCliLs,
} from "../harness/cli.ts";
import { freePort, useZooKeeper } from "../harness/zookeeper.ts";
import { startWriteGate } from "../helpers/zk-write-gate.ts";
import { withRaw } from "../helpers/raw-client.ts";

const zk = useZooKeeper();
useCli();

const GET_VERSION = "cat /srv/web/VERSION";
const DEPLOY = "/srv/deploy.sh %(id)s %(version)s";
const CMDS = ["--get-version-cmd", GET_VERSION, "--deploy-cmd", DEPLOY];
const SPEC_FIELDS = [
  "version",
  "rolloutId",
  "slots",
  "getVersionCmd",
  "deployCmd",
  "groups",
  "maxFailures",
  "deployTimeoutSec",
  "paused",
  "updatedAt",
  "updatedBy",
];
const ROLLOUT_ID = /^r[0-9a-z]{6,40}$/;
const STACK_LINE = /^\s+at /m;

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Runs the binary against `connect` (prepended as --zk). */
function cli(connect: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(["--zk", connect, ...args], { env });
}

function show(r: CliResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

function expectOk(r: CliResult): void {
  expect({ code: r.code, stderr: r.stderr }, show(r)).toEqual({ code: 0, stderr: "" });
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l.trim() !== "");
}

/** Exit `code`, nothing on stdout, exactly one line on stderr mentioning each of `mentions`. */
function expectOneLineError(r: CliResult, code: number, mentions: string[]): void {
  expect(r.code, show(r)).toBe(code);
  expect(r.stdout, show(r)).toBe("");
  expect(lines(r.stderr), show(r)).toHaveLength(1);
  expect(r.stderr, show(r)).not.toMatch(STACK_LINE);
  for (const m of mentions) expect(r.stderr, show(r)).toContain(m);
}

function record(value: unknown, what = "value"): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${what} is not a JSON object: ${JSON.stringify(value)}`);
  }
  return value as Record<string, unknown>;
}

function list(value: unknown, what = "value"): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what} is not a JSON array: ${JSON.stringify(value)}`);
  return value;
}

function json(r: CliResult): unknown {
  expectOk(r);
  return JSON.parse(r.stdout);
}

async function showSpec(connect: string, app: string): Promise<Record<string, unknown>> {
  return record(json(await cli(connect, ["app", "show", app, "--json"])), "app show --json");
}

function hostStatus(state: string, version: string, target: string, rolloutId: string): Buffer {
  const now = new Date().toISOString();
  return Buffer.from(JSON.stringify({ state, version, target, rolloutId, since: now, updatedAt: now }));
}

// ---------------------------------------------------------------------------------------------

interface Pending {
  label: string;
  result: Promise<CliResult>;
}
const unreachableDefaultTimeout: Pending[] = [];

beforeAll(async () => {
  // Nothing listens on port 1, nor (a moment after we checked) on a fresh free port.
  const port = await freePort();
  for (const target of ["127.0.0.1:1", `127.0.0.1:${port}`]) {
    unreachableDefaultTimeout.push({
      label: target,
      result: runCli(["--zk", `${target}/t-unreachable`, "app", "list"], { timeoutMs: 25_000 }),
    });
  }
});

afterAll(async () => {
  // Never leave the background runs behind, whatever happened to the test that awaits them.
  await Promise.allSettled(unreachableDefaultTimeout.map((p) => p.result));
}, 30_000);

describe("version and hermeticity", () => {
  test("--version prints `conveyor <semver> (<commit>)` and exits 0, run with env -i from an empty dir", async () => {
    const binary = await ensureBinary();
    const pkg = record(await Bun.file(join(REPO_ROOT, "package.json")).json(), "package.json");
    const r = await spawnCollect(["/usr/bin/env", "-i", "PATH=/usr/bin:/bin", binary, "--version"], { cwd: emptyDir() });
    expectOk(r);
    const match = /^conveyor (\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?) \(([0-9a-f]{7,40}(?:-dirty)?|unknown)\)\n$/.exec(
      r.stdout,
    );
    expect(match, r.stdout).not.toBeNull();
    expect(match?.[1]).toBe(String(pkg.version));
  });

  test("a stray .env and bunfig.toml in the cwd change nothing", async () => {
    const clean = await runCli(["--version"], { cwd: emptyDir() });
    const dir = emptyDir("stray-");
    writeFileSync(join(dir, ".env"), "CONVEYOR_ZK=bad host!/x\nCONVEYOR_ACTOR=dotenv-actor\nCONVEYOR_DEBUG=1\n");
    writeFileSync(join(dir, "preload.ts"), 'console.log("PRELOADED"); process.env.CONVEYOR_ACTOR = "preload-actor";\n');
    writeFileSync(join(dir, "bunfig.toml"), 'preload = ["./preload.ts"]\n[run]\npreload = ["./preload.ts"]\n');
    writeFileSync(join(dir, "package.json"), '{"name":"stray","type":"commonjs"}\n');

    const version = await runCli(["--version"], { cwd: dir });
    expectOk(version);
    expect(version.stdout).toBe(clean.stdout);

    // No --zk, so the environment would beat the config file: a loaded .env would make this a
    // usage error naming "bad host!". The config file points at the test server, so nothing
    // else (say a developer's ZooKeeper on 127.0.0.1:2181) is ever touched.
    const connect = zk.withChroot("stray");
    const config = join(dir, "conveyor.toml");
    writeFileSync(config, `zk = "${connect}"\n`);
    const created = await runCli(["--config", config, "app", "create", "web", "1.0", ...CMDS], { cwd: dir });
    expectOk(created);
    expect(created.stdout).not.toContain("PRELOADED");
    expect(created.stdout).toMatch(/\bweb\b/);
    // .env's (or the preload's) CONVEYOR_ACTOR would end up in updatedBy.
    const spec = await showSpec(connect, "web");
    expect(String(spec.updatedBy)).not.toContain("dotenv-actor");
    expect(String(spec.updatedBy)).not.toContain("preload-actor");
  });
});

describe("app create / show", () => {
  test("create sets every attribute exactly as typed; publish keeps what is not given", async () => {
    const connect = zk.withChroot("create");
    const env = { CONVEYOR_ACTOR: "ci-pipeline-42" };
    const created = await cli(
      connect,
      [
        "app",
        "create",
        "web",
        "1.10",
        "--slots",
        "50%",
        ...CMDS,
        "--verify-cmd",
        "curl -fsS http://localhost/health",
        "--groups",
        "web,db",
        "--max-failures",
        "2",
        "--deploy-timeout",
        "90s",
      ],
      env,
    );
    expectOk(created);
    expect(created.stdout).toMatch(/\bweb\b/);
    expect(created.stdout).toMatch(/\b1\.10\b/);

    const before = Date.now();
    const spec = await showSpec(connect, "web");
    for (const field of SPEC_FIELDS) expect(spec).toHaveProperty(field);
    // The attributes as typed; a publish that gives only the version keeps them all.
    const attributes = {
      slots: "50%", // not 50 or 0.5
      getVersionCmd: GET_VERSION,
      deployCmd: DEPLOY,
      verifyCmd: "curl -fsS http://localhost/health",
      groups: ["web", "db"],
      maxFailures: 2,
      deployTimeoutSec: 90,
      paused: false,
    };
    expect(spec).toMatchObject({
      name: "web",
      version: "1.10", // not 1.1
      ...attributes,
      updatedBy: "ci-pipeline-42",
    });
    expect(spec.previousVersion).toBeUndefined();
    expect(String(spec.rolloutId)).toMatch(ROLLOUT_ID);
    const updatedAt = Date.parse(String(spec.updatedAt));
    expect(Math.abs(before - updatedAt)).toBeLessThan(60_000);

    // Publish: only the version is given.
    const published = await cli(connect, ["app", "create", "web", "1.11"], { CONVEYOR_ACTOR: "ci-pipeline-43" });
    expectOk(published);
    expect(published.stdout).toContain("1.11");
    expect(published.stdout).toContain("1.10");
    const next = await showSpec(connect, "web");
    expect(next).toMatchObject({
      version: "1.11",
      previousVersion: "1.10",
      ...attributes,
      updatedBy: "ci-pipeline-43",
    });
    expect(String(next.rolloutId)).toMatch(ROLLOUT_ID);
    expect(next.rolloutId).not.toBe(spec.rolloutId);

    // Publish with some attributes: those change, the rest stay.
    const third = await cli(connect, [
      "app",
      "create",
      "web",
      "2:1.0-1~deb12u1+b1",
      "--slots",
      "3",
      "--groups",
      "",
      "--deploy-timeout",
      "1h30m",
    ]);
    expectOk(third);
    const last = await showSpec(connect, "web");
    expect(last).toMatchObject({
      version: "2:1.0-1~deb12u1+b1",
      previousVersion: "1.11",
      slots: 3,
      groups: [],
      deployTimeoutSec: 5_400,
      maxFailures: 2,
      deployCmd: DEPLOY,
    });
    expect(last.rolloutId).not.toBe(next.rolloutId);

    // The human form shows the same spec.
    const text = await cli(connect, ["app", "show", "web"]);
    expectOk(text);
    expect(text.stdout).toContain("2:1.0-1~deb12u1+b1");
    expect(text.stdout).toContain("1.11");
    expect(text.stdout).toContain(DEPLOY);

    // Re-publishing the live version keeps the real previous version; --verify-cmd "" removes
    // the verify command (the rest stays).
    const again = await cli(connect, ["app", "create", "web", "2:1.0-1~deb12u1+b1", "--verify-cmd", ""]);
    expectOk(again);
    const cleared = await showSpec(connect, "web");
    expect(cleared).toMatchObject({ version: "2:1.0-1~deb12u1+b1", previousVersion: "1.11", deployCmd: DEPLOY });
    expect(cleared.verifyCmd).toBeUndefined();
  });

  test("creating without --get-version-cmd or --deploy-cmd exits 2 naming the flag and writes nothing", async () => {
    const connect = zk.withChroot("missing-cmds");
    const { server, chroot } = splitConnect(connect);
    const cases: [string[], string][] = [
      [[], "--get-version-cmd"],
      [["--get-version-cmd", GET_VERSION], "--deploy-cmd"],
      [["--deploy-cmd", DEPLOY], "--get-version-cmd"],
      [["--slots", "2", "--groups", "web"], "--get-version-cmd"],
    ];
    const results = await Promise.all(cases.map(([extra]) => cli(connect, ["app", "create", "fresh", "1.0", ...extra])));
    results.forEach((r, i) => {
      expectOneLineError(r, 2, [cases[i]?.[1] ?? "?"]);
    });
    expect(await zkCliGet(server, `${chroot}/apps/fresh`)).toBeNull();
  });
});

describe("invalid input", () => {
  test("exits 2 with one line naming the value, no stack trace, and touches nothing", async () => {
    const connect = zk.withChroot("invalid");
    const { server, chroot } = splitConnect(connect);
    const dir = emptyDir("invalid-");
    const unknownKey = join(dir, "unknown-key.toml");
    writeFileSync(unknownKey, `zk = "${connect}"\nlogLevel = "info"\nzookeeper = "oops"\n`);
    const badToml = join(dir, "bad.toml");
    writeFileSync(badToml, "zk = \n[[\n");
    const long = "a".repeat(200);
    const create = (app: string, version: string, ...extra: string[]): string[] => ["app", "create", app, version, ...CMDS, ...extra];

    const cases: { args: string[]; mentions: string[]; zk?: string }[] = [
      { args: create("bad/name", "1.0"), mentions: ['"bad/name"', "app name"] },
      { args: create("..", "1.0"), mentions: ['".."', "app name"] },
      { args: create("$(id)", "1.0"), mentions: ['"$(id)"', "app name"] },
      { args: create(long, "1.0"), mentions: [long.slice(0, 60), "app name"] },
      { args: create("web", "1.0;touch x"), mentions: ['"1.0;touch x"', "version"] },
      { args: create("web", "$(id)"), mentions: ['"$(id)"', "version"] },
      { args: create("web", "1.0 2.0"), mentions: ['"1.0 2.0"', "version"] },
      { args: create("web", "1.0", "--slots", "0"), mentions: ['"0"', "--slots"] },
      { args: create("web", "1.0", "--slots", "1.5"), mentions: ['"1.5"', "--slots"] },
      { args: create("web", "1.0", "--slots", "abc"), mentions: ['"abc"', "--slots"] },
      { args: create("web", "1.0", "--slots", "101%"), mentions: ['"101%"', "--slots"] },
      { args: create("web", "1.0", "--max-failures=-1"), mentions: ['"-1"', "--max-failures"] },
      { args: create("web", "1.0", "--max-failures", "lots"), mentions: ['"lots"', "--max-failures"] },
      { args: create("web", "1.0", "--deploy-timeout", "forever"), mentions: ['"forever"', "--deploy-timeout"] },
      { args: create("web", "1.0", "--groups", "web,b@d"), mentions: ['"b@d"', "--groups"] },
      { args: ["app", "set-slots", "web", "0"], mentions: ['"0"', "slots"] },
      { args: ["app", "set-slots", "web", "lots"], mentions: ['"lots"', "slots"] },
      { args: ["app", "show", "bad/name"], mentions: ['"bad/name"'] },
      { args: ["app", "delete", ".."], mentions: ['".."'] },
      { args: ["status", "$(id)"], mentions: ['"$(id)"'] },
      { args: ["app", "list"], zk: "host:99999", mentions: ["host:99999"] },
      { args: ["app", "list"], zk: "bad host!:2181", mentions: ["bad host!"] },
      { args: ["app", "list"], zk: `${server}/bad chroot`, mentions: ["/bad chroot"] },
      { args: ["--log-level", "loud", "app", "list"], mentions: ['"loud"', "--log-level"] },
      { args: ["--connect-timeout", "forever", "app", "list"], mentions: ['"forever"'] },
      { args: ["--config", "/nonexistent.toml", "app", "list"], mentions: ["/nonexistent.toml"] },
      { args: ["--config", unknownKey, "app", "list"], mentions: [unknownKey, "zookeeper"] },
      { args: ["--config", badToml, "app", "list"], mentions: [badToml] },
      { args: ["--auth", "admin:", "app", "list"], mentions: ["--auth", '"admin"'] },
      { args: create("web", "1.0", "--auth", "nopassword"), mentions: ["--auth"] },
    ];
    const results = await Promise.all(cases.map((c) => runCli(["--zk", c.zk ?? connect, ...c.args])));
    results.forEach((r, i) => {
      const c = cases[i];
      if (c === undefined) return;
      try {
        expectOneLineError(r, 2, c.mentions);
      } catch (error) {
        throw new Error(`conveyor ${c.args.join(" ")}: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
    // A password is never echoed.
    expect(results.at(-1)?.stderr).not.toContain("nopassword");
    // Validation happens before connecting: not even the chroot was created.
    expect(await zkCliLs(server, "/")).not.toContain(chroot.slice(1));
  });

  // Regression (issue 10): `--config` naming a directory or /dev/zero said "does not exist", and a
  // FIFO hung the command for ever. Every file named by the user (--config, --auth-file,
  // authFile in the config, acl init --agent-auth-file) is now said to be what it is, is never
  // blocked on, and is read only up to 1 MiB.
  test("a file option naming a directory, a device, a FIFO or a huge file: exit 2 at once saying what it is", async () => {
    const connect = zk.withChroot("files");
    const { server, chroot } = splitConnect(connect);
    const dir = emptyDir("files-");
    const fifo = join(dir, "fifo");
    const mkfifo = Bun.spawnSync(["mkfifo", fifo], { env: { PATH: "/usr/bin:/bin" } });
    expect(mkfifo.exitCode, mkfifo.stderr.toString()).toBe(0);
    const huge = join(dir, "huge.toml");
    writeFileSync(huge, `# ${"x".repeat(2 * 1_048_576)}\n`);
    const hugeAuth = join(dir, "huge.auth");
    writeFileSync(hugeAuth, `admin:${"x".repeat(2 * 1_048_576)}\n`);
    const viaConfig = join(dir, "authfile-fifo.toml");
    writeFileSync(viaConfig, `authFile = "${fifo}"\n`);
    const cases: { args: string[]; mentions: string[] }[] = [
      { args: ["--config", dir, "app", "list"], mentions: [`config file "${dir}" is a directory`] },
      { args: ["--config", "/dev/zero", "app", "list"], mentions: ['config file "/dev/zero" is a character device'] },
      { args: ["--config", fifo, "app", "list"], mentions: [`config file "${fifo}" is a FIFO`] },
      { args: ["--config", huge, "app", "list"], mentions: [`config file "${huge}" is larger than 1 MiB`] },
      { args: ["--auth-file", fifo, "app", "list"], mentions: [`--auth-file "${fifo}" is a FIFO`] },
      { args: ["--auth-file", "/dev/zero", "app", "list"], mentions: ['--auth-file "/dev/zero" is a character device'] },
      { args: ["--auth-file", dir, "app", "list"], mentions: [`--auth-file "${dir}" is a directory`] },
      { args: ["--auth-file", hugeAuth, "app", "list"], mentions: [`--auth-file "${hugeAuth}" is larger than 1 MiB`] },
      { args: ["--config", viaConfig, "app", "list"], mentions: [`authFile in the config file "${fifo}" is a FIFO`] },
      { args: ["--auth", "admin:secret", "acl", "init", "--agent-auth-file", fifo], mentions: [`--agent-auth-file "${fifo}" is a FIFO`] },
      {
        args: ["--auth", "admin:secret", "acl", "init", "--agent-auth-file", "/dev/zero"],
        mentions: ['--agent-auth-file "/dev/zero" is a character device'],
      },
    ];
    const results = await Promise.all(cases.map((c) => runCli(["--zk", connect, ...c.args], { timeoutMs: 10_000 })));
    results.forEach((r, i) => {
      const c = cases[i];
      if (c === undefined) return;
      try {
        expect(r.timedOut, show(r)).toBe(false);
        expectOneLineError(r, 2, c.mentions);
      } catch (error) {
        throw new Error(`conveyor ${c.args.join(" ")}: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
    expect(await zkCliLs(server, "/")).not.toContain(chroot.slice(1));
  });

  test("a negative value after a space (--max-failures -1, --slots -1) is named with its flag, in one line", async () => {
    const connect = zk.withChroot("negative");
    for (const flag of ["--max-failures", "--slots"]) {
      const r = await cli(connect, ["app", "create", "web", "1.0", ...CMDS, flag, "-1"]);
      expectOneLineError(r, 2, ['"-1"', flag]);
    }
  });
});

describe("usage and help", () => {
  const GLOBAL_FLAGS = ["--zk", "--auth", "--auth-file", "--config", "--connect-timeout", "--json", "--log-level", "--help"];
  const CREATE_FLAGS = ["--slots", "--get-version-cmd", "--deploy-cmd", "--verify-cmd", "--groups", "--max-failures", "--deploy-timeout"];

  test("unknown command, unknown subcommand, missing command: help on stderr, exit 2", async () => {
    const [frob, appFrob, app, none] = await Promise.all([runCli(["frob"]), runCli(["app", "frob"]), runCli(["app"]), runCli([])]);
    for (const r of [frob, appFrob, app, none]) {
      expect(r.code, show(r)).toBe(2);
      expect(r.stdout, show(r)).toBe("");
      expect(r.stderr, show(r)).toContain("Usage:");
      expect(r.stderr).not.toMatch(STACK_LINE);
    }
    expect(frob.stderr).toContain('"frob"');
    expect(frob.stderr).toContain("status");
    expect(appFrob.stderr).toContain('"frob"');
    for (const sub of ["create", "set-slots", "show", "list", "delete"]) expect(appFrob.stderr).toContain(sub);
    expect(app.stderr).toMatch(/missing/i);
    // A command word with a line break is named on one line, escaped.
    const broken = await runCli(["ap\np"]);
    expect(broken.code).toBe(2);
    expect(broken.stderr.split("\n")[0]).toBe('conveyor: unknown command "ap\\np"');
  });

  test("unknown option exits 2 naming it, without touching ZooKeeper", async () => {
    // A listener in ZooKeeper's place counts connections: "not touched" is counted, not timed.
    let connections = 0;
    const listener = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", () => resolve()));
    const address = listener.address();
    const target = `127.0.0.1:${typeof address === "object" && address !== null ? address.port : 1}/x`;
    try {
      const results = await Promise.all([
        runCli(["--zk", target, "app", "list", "--frob"]),
        runCli(["--zk", target, "status", "--bogus=1"]),
        runCli(["--zk", target, "app", "create", "web", "1.0", ...CMDS, "--slot", "2"]),
      ]);
      const names = ["--frob", "--bogus", "--slot"];
      results.forEach((r, i) => {
        expect(r.code, show(r)).toBe(2);
        expect(r.stdout).toBe("");
        expect(r.stderr).toContain(names[i] ?? "?");
        expect(r.stderr).not.toMatch(STACK_LINE);
      });
      expect(connections).toBe(0);
    } finally {
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    }
  });

  // Regression (issue 11): cac names an unknown option by its camelCase key ("--healthCheckCmd",
  // "--getVersoinCmd", "--suchFlag" for --no-such-flag), which the user never typed.
  test("an unknown option after the command is named exactly as typed, in one line", async () => {
    const create = ["--zk", "127.0.0.1:1/x", "app", "create", "web", "1.0"];
    const cases: { argv: string[]; typed: string }[] = [
      { argv: [...create, "--get-versoin-cmd", "y"], typed: "--get-versoin-cmd" },
      { argv: [...create, ...CMDS, "--health-check-cmd", "true"], typed: "--health-check-cmd" },
      { argv: [...create, ...CMDS, "--health-check-cmd=true"], typed: "--health-check-cmd" },
      { argv: [...create, ...CMDS, "--no-such-flag"], typed: "--no-such-flag" },
      { argv: ["status", "--watch", "--log-format", "json"], typed: "--log-format" },
    ];
    const results = await Promise.all(cases.map((c) => runCli(c.argv)));
    results.forEach((r, i) => {
      const c = cases[i];
      if (!c) throw new Error("no case");
      const command = c.argv.includes("create") ? "conveyor app create" : "conveyor status";
      expectOneLineError(r, 2, []);
      expect(r.stderr, show(r)).toBe(`error: unknown option ${JSON.stringify(c.typed)} (see "${command} --help")\n`);
    });
  });

  test("an unknown option before the command is named", async () => {
    const r = await runCli(["--frob", "status"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--frob");
  });

  test("--help and -h print help on stdout and exit 0, listing every command and flag", async () => {
    const [top, short, app, create, createShort, setSlots] = await Promise.all([
      runCli(["--help"]),
      runCli(["-h"]),
      runCli(["app", "--help"]),
      runCli(["app", "create", "--help"]),
      runCli(["app", "create", "-h"]),
      runCli(["app", "set-slots", "--help"]),
    ]);
    for (const r of [top, short, app, create, createShort, setSlots]) {
      expectOk(r);
      expect(r.stdout).toContain("Usage:");
      for (const flag of GLOBAL_FLAGS) expect(r.stdout).toContain(flag);
    }
    expect(short.stdout).toBe(top.stdout);
    for (const word of ["agent", "status", "app"]) expect(top.stdout).toMatch(new RegExp(`^\\s+${word}\\b`, "m"));
    for (const sub of ["create <app> <version>", "set-slots <app>", "show <app>", "list", "delete <app>"]) {
      expect(app.stdout).toContain(sub);
    }
    expect(create.stdout).toContain("app create <app> <version>");
    for (const flag of CREATE_FLAGS) expect(create.stdout).toContain(flag);
    expect(createShort.stdout).toBe(create.stdout);
    expect(setSlots.stdout).toContain("set-slots <app> <slots>");
  });
});

describe("app set-slots / list / delete", () => {
  test("set-slots takes a number or a percentage; list shows every app; delete removes the subtree", async () => {
    const connect = zk.withChroot("manage");
    const { server, chroot } = splitConnect(connect);
    expectOk(await cli(connect, ["app", "create", "web", "1.0", ...CMDS]));
    expectOk(await cli(connect, ["app", "create", "api", "2.5", ...CMDS, "--groups", "api", "--slots", "10%"]));

    const four = await cli(connect, ["app", "set-slots", "web", "4"]);
    expectOk(four);
    expect(four.stdout).toMatch(/\bweb\b.*\b4\b/);
    expect((await showSpec(connect, "web")).slots).toBe(4);
    const pct = await cli(connect, ["app", "set-slots", "web", "25%"]);
    expectOk(pct);
    expect(pct.stdout).toContain("25%");
    const spec = await showSpec(connect, "web");
    expect(spec).toMatchObject({ slots: "25%", version: "1.0" });
    expect(spec.previousVersion).toBeUndefined(); // set-slots is not a publish

    const table = await cli(connect, ["app", "list"]);
    expectOk(table);
    const rows = lines(table.stdout);
    expect(rows[0]).toMatch(/^APP\s+VERSION\s+SLOTS\s+PAUSED\s+GROUPS$/);
    expect(rows.slice(1).map((r) => r.split(/\s+/)[0])).toEqual(["api", "web"]);
    expect(rows[1]).toMatch(/^api\s+2\.5\s+10%\s+api$/);
    expect(rows[2]).toMatch(/^web\s+1\.0\s+25%\s+\(all\)$/);
    const listed = list(json(await cli(connect, ["app", "list", "--json"])));
    expect(listed).toEqual([
      { name: "api", version: "2.5", slots: "10%", paused: false, groups: ["api"] },
      { name: "web", version: "1.0", slots: "25%", paused: false, groups: [] },
    ]);

    // Give the app a deeper subtree than create makes, as agents would.
    const rollout = String(spec.rolloutId);
    await withRaw(connect, async (raw) => {
      await raw.create("/apps/web/hosts/h1", hostStatus("current", "1.0", "1.0", rollout));
      await raw.create(`/apps/web/failures/${rollout}-h2`, Buffer.from('{"exitCode":1,"at":"2026-01-01T00:00:00.000Z","error":"x"}'));
    });
    const deleted = await cli(connect, ["app", "delete", "web"]);
    expectOk(deleted);
    expect(deleted.stdout).toContain("web");
    const [apps, webNode] = await Promise.all([zkCliLs(server, `${chroot}/apps`), zkCliGet(server, `${chroot}/apps/web`)]);
    expect(apps).toEqual(["api"]);
    expect(webNode).toBeNull();
  });

  // Regression (issue 10): an app node whose name is not a valid app name (made with zkCli) is
  // listed as INVALID by status and app list, but `app delete` refused the name (exit 2), so only
  // zkCli could remove it. Any name that can be a znode under /apps is accepted by delete; one
  // that could never exist is still exit 2, and so is an invalid name that does not exist.
  test("app delete removes an app whose node name is invalid, as listed; names that cannot exist are still exit 2", async () => {
    const connect = zk.withChroot("delete-invalid");
    const { server, chroot } = splitConnect(connect);
    expectOk(await cli(connect, ["app", "create", "web", "1.0", ...CMDS]));
    const names = ["bad name", "x;y", "$(id)", "ünï", "line\u2028break", "x".repeat(200)];
    await withRaw(connect, async (raw) => {
      for (const name of names) await raw.create(`/apps/${name}`, Buffer.from("{}"));
      await raw.create("/apps/x;y/hosts"); // a subtree goes too
      await raw.create("/apps/x;y/hosts/h1", hostStatus("current", "1.0", "1.0", "r0000000"));
    });
    const listed = list(json(await cli(connect, ["app", "list", "--json"]))).map((a) => record(a));
    expect(
      listed
        .filter((a) => a.error !== undefined)
        .map((a) => a.name)
        .sort(),
    ).toEqual([...names].sort());

    for (const name of names) {
      const r = await cli(connect, ["app", "delete", name]);
      expectOk(r);
      // Named as in every message: quoted, escaped, shortened past 80 characters.
      const shown = name.length > 80 ? `"${name.slice(0, 77)}..."` : JSON.stringify(name).replace("\u2028", "\\u2028");
      expect(r.stdout).toBe(`deleted ${shown}\n`);
    }
    expect(await zkCliLs(server, `${chroot}/apps`)).toEqual(["web"]);
    const fleet = record(json(await cli(connect, ["status", "--json"])));
    expect(fleet.invalidApps).toEqual([]);

    // Could never be a node under /apps: exit 2 before connecting. An invalid name that is not
    // there: exit 2 too (it is a typo, not a missing app).
    const never = ["a/b", "..", ".", "", "tab\there", "del\u007f"];
    for (const name of [...never, "no such"]) {
      const r = await cli(connect, ["app", "delete", name]);
      expectOneLineError(r, 2, [JSON.stringify(name).replace("\u007f", "\\u007f"), "app name"]);
    }
    const unreachable = await runCli(["--zk", "127.0.0.1:1/x", "--connect-timeout", "5s", "app", "delete", "a/b"]);
    expectOneLineError(unreachable, 2, ['"a/b"']);
  });

  test("show, set-slots, delete and status of a missing app exit 1 with `does not exist`", async () => {
    const connect = zk.withChroot("missing-app");
    expectOk(await cli(connect, ["app", "create", "other", "1.0", ...CMDS]));
    const results = await Promise.all([
      cli(connect, ["app", "show", "ghost"]),
      cli(connect, ["app", "show", "ghost", "--json"]),
      cli(connect, ["app", "set-slots", "ghost", "2"]),
      cli(connect, ["app", "delete", "ghost"]),
      cli(connect, ["status", "ghost"]),
    ]);
    for (const r of results) expectOneLineError(r, 1, ["ghost", "does not exist"]);
  });
});

describe("status", () => {
  test("status --json: shape, offline hosts without /agents, stored state with /agents", async () => {
    const connect = zk.withChroot("status");
    expectOk(await cli(connect, ["app", "create", "web", "1.0", ...CMDS, "--slots", "2"]));
    expectOk(await cli(connect, ["app", "create", "web", "1.1"]));
    const spec = await showSpec(connect, "web");
    const rollout = String(spec.rolloutId);

    await withRaw(connect, async (raw) => {
      await raw.create("/apps/web/hosts/h1", hostStatus("current", "1.1", "1.1", rollout));
      await raw.create("/apps/web/hosts/h2", hostStatus("deploying", "1.0", "1.1", rollout));

      const offline = record(json(await cli(connect, ["status", "--json"])), "status --json");
      expect(list(offline.agents)).toEqual([]);
      const apps = list(offline.apps);
      expect(apps).toHaveLength(1);
      const app = record(apps[0], "apps[0]");
      for (const key of ["name", "version", "rolloutId", "slots", "paused", "state", "counts", "hosts"]) {
        expect(app).toHaveProperty(key);
      }
      expect(app).toMatchObject({ name: "web", version: "1.1", rolloutId: rollout, slots: 2, paused: false });
      expect(["converged", "rolling", "paused", "halted"]).toContain(String(app.state));
      const counts = record(app.counts, "counts");
      expect(counts).toMatchObject({ offline: 2, current: 0, deploying: 0, total: 2 });
      const hosts = list(app.hosts).map((h) => record(h, "host"));
      expect(hosts.map((h) => h.host)).toEqual(["h1", "h2"]);
      for (const h of hosts) {
        expect(h).toMatchObject({ state: "offline", online: false, target: "1.1" });
        expect(typeof h.since).toBe("string");
      }
      expect(hosts[0]?.version).toBe("1.1");
      expect(hosts[1]?.version).toBe("1.0");

      // h1 comes online (an agent registers, ephemeral like the real one).
      const agent = { groups: ["web"], agentVersion: "0.1.0", pid: 4242, startedAt: new Date().toISOString() };
      await raw.mkdirp("/agents");
      await raw.create("/agents/h1", Buffer.from(JSON.stringify(agent)), "ephemeral");
      const online = record(json(await cli(connect, ["status", "--json"])), "status --json");
      expect(list(online.agents)).toEqual([{ host: "h1", groups: ["web"], agentVersion: "0.1.0" }]);
      const app2 = record(list(online.apps)[0], "apps[0]");
      const hosts2 = list(app2.hosts).map((h) => record(h, "host"));
      expect(hosts2[0]).toMatchObject({ host: "h1", state: "current", online: true, version: "1.1" });
      expect(hosts2[1]).toMatchObject({ host: "h2", state: "offline", online: false });
      expect(record(app2.counts, "counts")).toMatchObject({ current: 1, offline: 1, total: 2 });

      // The human form names the hosts and their states; `status web` is the same app.
      const text = await cli(connect, ["status"]);
      expectOk(text);
      expect(text.stdout).toMatch(/^\s+h1\s+current\b/m);
      expect(text.stdout).toMatch(/^\s+h2\s+offline\b/m);
      expect(text.stdout).toContain("h1");
      const one = record(json(await cli(connect, ["status", "web", "--json"])), "status web --json");
      expect(list(one.apps).map((a) => record(a).name)).toEqual(["web"]);
    });
  });

  test("status with no apps", async () => {
    const connect = zk.withChroot("status-empty");
    await withRaw(connect, async () => undefined); // a raw client creates the chroot: an empty tree
    const status = record(json(await cli(connect, ["status", "--json"])));
    expect(status).toMatchObject({ apps: [], agents: [] });
    const text = await cli(connect, ["status"]);
    expectOk(text);
    expect(text.stdout).toMatch(/no apps/);
  });
});

describe("the chroot", () => {
  // Regression (issue 10): every command created a missing chroot, so `status` against a
  // mistyped one created it silently and said "no apps". Only app create, acl init and agent
  // may create it; every other command exits 1 naming it, and leaves nothing behind.
  test("a command that only reads or changes apps never creates the chroot: exit 1 naming it", async () => {
    const connect = zk.withChroot("never-created");
    const { server, chroot } = splitConnect(connect);
    const commands: string[][] = [
      ["status"],
      ["status", "web"],
      ["status", "--watch"],
      ["app", "list"],
      ["app", "show", "web"],
      ["app", "set-slots", "web", "2"],
      ["app", "delete", "web"],
      ["app", "wait", "web"],
      ["app", "pause", "web"],
      ["app", "resume", "web"],
      ["app", "retry", "web"],
      ["app", "promote", "web"],
      ["app", "rollback", "web"],
      ["app", "history", "web"],
      ["acl", "show"],
    ];
    const results = await Promise.all(commands.map((args) => runCli(["--zk", connect, ...args], { timeoutMs: 15_000 })));
    results.forEach((r, i) => {
      try {
        expectOneLineError(r, 1, [`ZooKeeper has no ${chroot} (the chroot in --zk)`, "check --zk"]);
      } catch (error) {
        throw new Error(`conveyor ${commands[i]?.join(" ")}: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
    // Where the connect string came from is named too.
    const viaEnv = await runCli(["app", "list"], { env: { CONVEYOR_ZK: connect } });
    expectOneLineError(viaEnv, 1, [`ZooKeeper has no ${chroot} (the chroot in CONVEYOR_ZK)`, "check CONVEYOR_ZK"]);
    expect(await zkCliLs(server, "/")).not.toContain(chroot.slice(1));

    // app create creates it (and then everything else works on it).
    expectOk(await cli(connect, ["app", "create", "web", "1.0", ...CMDS]));
    expectOk(await cli(connect, ["app", "list"]));
  });

  // Regression (issue 10): a chroot that points inside a Conveyor tree (`--zk host:port/conveyor/apps`)
  // was taken as a tree of its own: an agent registered under it and every other agent saw an
  // app called "agents". Refused (exit 2, naming the chroot and the Conveyor root), by every
  // command and the agent, before anything is written.
  test("a chroot inside a Conveyor tree (its apps or agents) is refused by every command and the agent", async () => {
    const connect = zk.withChroot("tree");
    const { server, chroot } = splitConnect(connect);
    expectOk(await cli(connect, ["app", "create", "web", "1.0", ...CMDS]));
    const inside = [`${chroot}/apps`, `${chroot}/apps/web`, `${chroot}/apps/newapp`, `${chroot}/apps/web/hosts`];
    const runs = [
      ...inside.map((c) => ["--zk", `${server}${c}`, "status"]),
      ["--zk", `${server}${chroot}/apps`, "app", "create", "agents", "1.0", ...CMDS],
      ["--zk", `${server}${chroot}/apps/newapp`, "app", "create", "web", "1.0", ...CMDS],
      ["--zk", `${server}${chroot}/apps`, "agent", "--host-id", "h1", "--state-dir", emptyDir("state-")],
    ];
    const results = await Promise.all(runs.map((args) => runCli(args, { timeoutMs: 15_000 })));
    results.forEach((r, i) => {
      const args = runs[i] ?? [];
      try {
        expectOneLineError(r, 2, [
          `${args[1]?.slice(server.length)} (in --zk)`,
          `inside the Conveyor tree at ${chroot}`,
          `--zk ${server}${chroot}`,
        ]);
      } catch (error) {
        throw new Error(`conveyor ${args.join(" ")}: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
    // Nothing was written inside the tree.
    expect(await zkCliLs(server, `${chroot}/apps`)).toEqual(["web"]);
    expect(await zkCliLs(server, `${chroot}/apps/web`)).toEqual(["canary", "done", "failures", "history", "hosts", "leases", "lock"]);
    // Once agents registered, /agents marks the tree as well.
    await withRaw(connect, (raw) => raw.mkdirp("/agents"));
    expectOneLineError(await runCli(["--zk", `${server}${chroot}/agents`, "app", "list"]), 2, [`inside the Conveyor tree at ${chroot}`]);

    // A chroot whose name merely contains such a segment, outside any tree, is fine.
    const own = zk.withChroot("apps-parent");
    const elsewhere = `${own}/apps/conveyor`;
    expectOk(await cli(elsewhere, ["app", "create", "web", "1.0", ...CMDS]));
    expectOk(await cli(elsewhere, ["status"]));
  });
});

describe("corrupt data in ZooKeeper", () => {
  test("an app node that is not JSON is reported with its path; status and list still work", async () => {
    const connect = zk.withChroot("corrupt");
    expectOk(await cli(connect, ["app", "create", "good", "1.0", ...CMDS]));
    await withRaw(connect, async (raw) => {
      await raw.create("/apps/broken", Buffer.from("{not json"));
      await raw.create("/apps/wrongshape", Buffer.from('{"version":"1.0","slots":0}'));
    });

    const showBroken = await cli(connect, ["app", "show", "broken"]);
    expectOneLineError(showBroken, 1, ["/apps/broken"]);
    const publishBroken = await cli(connect, ["app", "create", "broken", "2.0"]);
    expectOneLineError(publishBroken, 1, ["/apps/broken"]);
    const slotsWrong = await cli(connect, ["app", "set-slots", "wrongshape", "2"]);
    expectOneLineError(slotsWrong, 1, ["/apps/wrongshape"]);

    const status = await cli(connect, ["status", "--json"]);
    const fleet = record(json(status), "status --json");
    expect(list(fleet.apps).map((a) => record(a).name)).toEqual(["good"]);
    const invalid = list(fleet.invalidApps).map((a) => record(a, "invalidApps[]"));
    expect(invalid.map((a) => a.name)).toEqual(["broken", "wrongshape"]);
    for (const a of invalid) expect(String(a.error).length).toBeGreaterThan(0);
    expect(String(invalid[0]?.error)).toMatch(/json/i);

    const text = await cli(connect, ["status"]);
    expectOk(text);
    expect(text.stdout).toMatch(/^broken\b.*INVALID/m);
    expect(text.stdout).toMatch(/^good\b/m);

    const table = await cli(connect, ["app", "list"]);
    expectOk(table);
    expect(table.stdout).toMatch(/^broken\s+INVALID\b/m);
    expect(table.stdout).toMatch(/^good\s+1\.0\b/m);
    const listed = list(json(await cli(connect, ["app", "list", "--json"]))).map((a) => record(a));
    expect(listed.find((a) => a.name === "broken")).toMatchObject({ name: "broken", error: expect.any(String) });

    // An operator can still remove it.
    expectOk(await cli(connect, ["app", "delete", "broken"]));
    expect(await withRaw(connect, (raw) => raw.exists("/apps/broken"))).toBeNull();
  });

  // Regression (issue 10): a spec corrupted to `"slots": "many"` was reported with valibot's
  // internal regex (`Invalid format: Expected /^(?:[1-9]\d?|100)%$/ but received "many"`).
  test("an invalid value in a spec is reported with the rule in words, never a regex", async () => {
    const connect = zk.withChroot("corrupt-words");
    expectOk(await cli(connect, ["app", "create", "web", "1.0", ...CMDS]));
    const spec = await showSpec(connect, "web");
    const { name: _name, ...stored } = spec;
    await withRaw(connect, async (raw) => {
      await raw.set("/apps/web", Buffer.from(JSON.stringify({ ...stored, slots: "many" })));
      await raw.create("/apps/verbs", Buffer.from(JSON.stringify({ ...stored, maxFailures: "2" })));
    });
    const rule = "slots: slots must be a whole number ≥ 1 or a percentage like 25%";
    const fleet = record(json(await cli(connect, ["status", "--json"])));
    expect(fleet.invalidApps).toEqual([
      { name: "verbs", error: "maxFailures: must be a whole number from 0 to 1000000 or a percentage like 10%" },
      { name: "web", error: rule },
    ]);
    const shown = await cli(connect, ["app", "show", "web"]);
    expectOneLineError(shown, 1, [`/apps/web: ${rule}`]);
    const texts = [shown.stderr, (await cli(connect, ["status"])).stdout, (await cli(connect, ["app", "list"])).stdout];
    for (const text of texts) expect(text).not.toMatch(/\/\^|Expected \/|Invalid (format|type)/);
  });

  test("a corrupt host status node is reported, not fatal", async () => {
    const connect = zk.withChroot("corrupt-host");
    expectOk(await cli(connect, ["app", "create", "web", "1.0", ...CMDS]));
    const rollout = String((await showSpec(connect, "web")).rolloutId);
    await withRaw(connect, async (raw) => {
      await raw.create("/apps/web/hosts/h1", hostStatus("current", "1.0", "1.0", rollout));
      await raw.create("/apps/web/hosts/h2", Buffer.from('{"state":"exploded"}'));
    });
    const fleet = record(json(await cli(connect, ["status", "--json"])));
    const hosts = list(record(list(fleet.apps)[0]).hosts).map((h) => record(h));
    expect(hosts.map((h) => h.host)).toEqual(["h1"]);
    expect(list(fleet.invalidNodes).map((n) => record(n).path)).toEqual(["/apps/web/hosts/h2"]);
  });
});

describe("environment and precedence", () => {
  test("CONVEYOR_ZK without --zk; --zk beats CONVEYOR_ZK; config zk when neither; env beats config", async () => {
    const [a, b, c, d] = ["env", "flag", "config", "env-over-config"].map((p) => zk.withChroot(p)) as [string, string, string, string];
    const dir = emptyDir("precedence-");
    const good = join(dir, "good.toml");
    writeFileSync(good, `zk = "${c}"\n`);
    const dead = join(dir, "dead.toml");
    writeFileSync(dead, 'zk = "127.0.0.1:1/dead"\nconnectTimeout = "1s"\n');

    const results = await Promise.all([
      runCli(["app", "create", "viaenv", "1.0", ...CMDS], { env: { CONVEYOR_ZK: a } }),
      runCli(["--zk", b, "app", "create", "viaflag", "1.0", ...CMDS], { env: { CONVEYOR_ZK: "127.0.0.1:1/dead" } }),
      runCli(["--config", good, "app", "create", "viaconfig", "1.0", ...CMDS]),
      runCli(["--config", dead, "app", "create", "envoverconfig", "1.0", ...CMDS], { env: { CONVEYOR_ZK: d } }),
      runCli(["--config", dead, "--zk", d, "app", "create", "flagoverconfig", "1.0", ...CMDS]),
    ]);
    for (const r of results) expectOk(r);
    const { server } = splitConnect(a);
    const ls = await Promise.all([a, b, c, d].map((x) => zkCliLs(server, `${splitConnect(x).chroot}/apps`)));
    expect(ls).toEqual([["viaenv"], ["viaflag"], ["viaconfig"], ["envoverconfig", "flagoverconfig"]]);

    // An invalid CONVEYOR_ZK is a usage error naming it.
    const bad = await runCli(["app", "list"], { env: { CONVEYOR_ZK: "bad host!:2181" } });
    expectOneLineError(bad, 2, ["bad host!"]);
  });
});

describe("--json output", () => {
  test("create, set-slots, delete and list print one valid JSON document", async () => {
    const connect = zk.withChroot("json");
    const created = record(json(await cli(connect, ["app", "create", "web", "1.0", ...CMDS, "--json"])));
    expect(created).toMatchObject({ app: "web", created: true, spec: { version: "1.0", slots: 1 } });
    const published = record(json(await cli(connect, ["--json", "app", "create", "web", "1.1"])));
    expect(published).toMatchObject({ app: "web", created: false, spec: { version: "1.1", previousVersion: "1.0" } });
    const slots = record(json(await cli(connect, ["app", "set-slots", "web", "30%", "--json"])));
    expect(slots).toEqual({ app: "web", slots: "30%" });
    const listed = list(json(await cli(connect, ["app", "list", "--json"])));
    expect(listed).toHaveLength(1);
    const deleted = record(json(await cli(connect, ["app", "delete", "web", "--json"])));
    expect(deleted).toEqual({ app: "web", deleted: true });
    expect(list(json(await cli(connect, ["app", "list", "--json"])))).toEqual([]);
  });
});

describe("read back with Debian's zkCli", () => {
  test("the app node is the documented JSON, its sub-nodes exist, history names the actor", async () => {
    const connect = zk.withChroot("zkcli");
    const { server, chroot } = splitConnect(connect);
    expectOk(await cli(connect, ["app", "create", "web", "1.0", ...CMDS, "--slots", "3"], { CONVEYOR_ACTOR: "release-bot" }));
    expectOk(await cli(connect, ["app", "create", "web", "1.1"], { CONVEYOR_ACTOR: "second-bot", GITHUB_ACTOR: "not-me" }));
    expectOk(await cli(connect, ["app", "create", "api", "1.0", ...CMDS], { GITHUB_ACTOR: "octocat" }));

    const [data, children, history, apiHistory] = await Promise.all([
      zkCliGet(server, `${chroot}/apps/web`),
      zkCliLs(server, `${chroot}/apps/web`),
      zkCliLs(server, `${chroot}/apps/web/history`),
      zkCliLs(server, `${chroot}/apps/api/history`),
    ]);
    const spec = record(JSON.parse(data ?? "null"), `${chroot}/apps/web`);
    for (const field of SPEC_FIELDS) expect(spec).toHaveProperty(field);
    expect(spec).toMatchObject({
      version: "1.1",
      previousVersion: "1.0",
      slots: 3,
      getVersionCmd: GET_VERSION,
      deployCmd: DEPLOY,
      groups: [],
      maxFailures: 0,
      deployTimeoutSec: 600,
      paused: false,
      updatedBy: "second-bot",
    });
    expect(String(spec.rolloutId)).toMatch(ROLLOUT_ID);
    expect(Number.isNaN(Date.parse(String(spec.updatedAt)))).toBe(false);
    expect(children).toEqual(expect.arrayContaining(["failures", "history", "hosts", "leases", "lock"]));
    expect(history).toHaveLength(2);
    expect(apiHistory).toHaveLength(1);

    const paths = [...(history ?? []).map((h) => `web/history/${h}`), `api/history/${apiHistory?.[0]}`];
    const entries = await Promise.all(paths.map((p) => zkCliGet(server, `${chroot}/apps/${p}`)));
    const [webCreate, webPublish, apiCreate] = entries.map((e) => record(JSON.parse(e ?? "null"), "history entry"));
    expect(webCreate).toMatchObject({ action: "create", by: "release-bot", to: "1.0" });
    expect(webPublish).toMatchObject({ action: "publish", by: "second-bot", from: "1.0", to: "1.1" });
    expect(Number.isNaN(Date.parse(String(webCreate?.at)))).toBe(false);
    expect(apiCreate).toMatchObject({ action: "create", by: "octocat" });
  });
});

describe("two concurrent publishers", () => {
  type Outcome = "serialised" | "raced";

  /**
   * `app create <app> <a>` and `app create <app> <b>` with the interleaving a compare-and-set is
   * for, forced: each publisher reaches ZooKeeper through its own write gate
   * (helpers/zk-write-gate.ts), which holds its first write until both publishers hold one — so
   * both have read the app — then lets `first`'s write go, and the other's once `first` has
   * exited. (Two processes merely started together overlapped in only some rounds, so a test
   * of 10 such rounds failed now and then, and passed without proving anything when none did.)
   *
   * Checks the contract: each exits 0 or 1; not both 1; the final version is one of them and its
   * publisher exited 0; if both exited 0 the last one recorded the other as previousVersion
   * (nobody was silently overwritten); if one exited 1 it said "concurrently" and its version
   * never landed. Every success leaves exactly one history entry.
   */
  async function raceRound(connect: string, raw: ZkClient, app: string, a: string, b: string, first: "a" | "b"): Promise<Outcome> {
    const read = async (): Promise<Record<string, unknown> | undefined> => {
      const stat = await raw.exists(`/apps/${app}`);
      if (stat === null) return undefined;
      return record(JSON.parse((await raw.get(`/apps/${app}`)).data.toString("utf8")));
    };
    const historyCount = async (): Promise<number> => {
      const stat = await raw.exists(`/apps/${app}/history`);
      return stat === null ? 0 : (await raw.children(`/apps/${app}/history`)).length;
    };
    const before = await read();
    const historyBefore = await historyCount();
    const { chroot } = splitConnect(connect);
    const gates = await Promise.all([startWriteGate(zk.port), startWriteGate(zk.port)]);
    let ra: CliResult;
    let rb: CliResult;
    try {
      const runs = ([a, b] as const).map((version, i) =>
        cli(`${gates[i]?.address}${chroot}`, ["app", "create", app, version, ...CMDS], {
          CONVEYOR_ACTOR: `publisher-${i === 0 ? "a" : "b"}`,
        }),
      );
      // Both have read the app and sent their write (a publisher that exits first is a failure).
      await Promise.all(
        gates.map((gate, i) =>
          Promise.race([
            gate.holding,
            runs[i]?.then((r) => Promise.reject(new Error(`publisher ${i === 0 ? "a" : "b"} exited before writing: ${show(r)}`))),
          ]),
        ),
      );
      const [one, two] = first === "a" ? [0, 1] : [1, 0];
      gates[one]?.release();
      const firstResult = await runs[one];
      gates[two]?.release();
      const secondResult = await runs[two];
      if (!firstResult || !secondResult) throw new Error("no result");
      [ra, rb] = first === "a" ? [firstResult, secondResult] : [secondResult, firstResult];
    } finally {
      await Promise.all(gates.map((g) => g.close()));
    }
    const where = `${app} (was ${String(before?.version ?? "absent")}) ${a} vs ${b}, ${first} first:\nA ${show(ra)}\nB ${show(rb)}`;
    expect([0, 1], where).toContain(ra.code);
    expect([0, 1], where).toContain(rb.code);
    expect(ra.code + rb.code, `both lost: ${where}`).toBeLessThan(2);
    const after = await read();
    expect([a, b], where).toContain(String(after?.version));
    const [winner, loser, other] = after?.version === a ? [ra, rb, b] : [rb, ra, a];
    expect(winner.code, `the final version's publisher failed: ${where}`).toBe(0);
    expect(await historyCount(), `history entries: ${where}`).toBe(historyBefore + (2 - ra.code - rb.code));
    if (loser.code === 0) {
      expect(after?.previousVersion, `both exited 0 but ${other} was silently overwritten: ${where}`).toBe(other);
      return "serialised";
    }
    expectOneLineError(loser, 1, ["concurrently"]);
    expect(after?.version, `the publisher released first must win: ${where}`).toBe(first === "a" ? a : b);
    if (before !== undefined) expect(after?.previousVersion, where).toBe(before.version);
    return "raced";
  }

  test("never both lost, never silently overwritten: the publisher whose read was overtaken fails; a second creator publishes on top", async () => {
    const connect = zk.withChroot("race");
    expectOk(await cli(connect, ["app", "create", "app", "v0", ...CMDS]));
    expectOk(await cli(connect, ["app", "create", "app", "v0.1"]));
    await withRaw(connect, async (raw) => {
      for (const [i, first] of (["a", "b", "a"] as const).entries()) {
        expect(await raceRound(connect, raw, "app", `v${i + 1}a`, `v${i + 1}b`, first)).toBe("raced");
      }
      // Both create a fresh app: one creates it, the other's create fails and it publishes on
      // top, naming the first version as the previous one.
      for (const [i, first] of (["a", "b"] as const).entries()) {
        expect(await raceRound(connect, raw, `fresh${i}`, "1.0a", "1.0b", first)).toBe("serialised");
      }
    });
  }, 60_000);

  test("the first publish after create is compare-and-set too", async () => {
    const connect = zk.withChroot("race-first");
    await withRaw(connect, async (raw) => {
      for (const [i, first] of (["a", "b"] as const).entries()) {
        expectOk(await cli(connect, ["app", "create", `first${i}`, "v0", ...CMDS]));
        expect(await raceRound(connect, raw, `first${i}`, "v1a", "v1b", first)).toBe("raced");
      }
    });
  }, 60_000);
});

describe("unreachable ZooKeeper", () => {
  test("exits 3 with one line within the connect timeout (1 s and the 10 s default)", async () => {
    const port = await freePort();
    const short = await Promise.all(
      ["127.0.0.1:1", `127.0.0.1:${port}`].map((target) =>
        runCli(["--zk", `${target}/t-unreachable`, "--connect-timeout", "1s", "app", "create", "web", "1.0", ...CMDS], {
          timeoutMs: 20_000,
        }),
      ),
    );
    // Which timeout ended each run is in its message; the times only show that it did wait
    // that long (an upper bound would assume a fast machine; the harness kills at 20/25 s).
    for (const r of short) {
      expectOneLineError(r, 3, ["unreachable (no session within 1 s)"]);
      expect(r.timedOut).toBe(false);
      expect(r.ms, show(r)).toBeGreaterThanOrEqual(1_000);
    }
    for (const { label, result } of unreachableDefaultTimeout) {
      const r = await result;
      expectOneLineError(r, 3, [label, "unreachable (no session within 10 s)"]);
      expect(r.timedOut).toBe(false);
      expect(r.ms, show(r)).toBeGreaterThanOrEqual(10_000);
    }
  }, 30_000);
});
