// Hostile input, end to end (compiled binary, real ZooKeeper):
//   - injection through every placeholder and CONVEYOR_* variable: the CLI refuses hostile names,
//     versions and host ids (exit 2); the same values written raw into ZooKeeper (bypassing the
//     CLI) make the agent refuse the spec and run nothing; hostile host status is only shown;
//     rendered placeholders are one literal word to a real /bin/sh;
//   - corrupt znodes (bad JSON, wrong types, ~1 MB, absurd nesting, bad names) are reported by
//     status/app show/app list and never stop an agent from deploying the other apps;
//   - invalid flags, config files and environment exit 2, name the value and write nothing.
// Every injected payload would create a marker file; the markers must stay absent.

import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderCommand } from "../../src/agent/placeholders.ts";
import { FleetReader } from "../../src/apps/fleet-reader.ts";
import { evaluateRollout } from "../../src/apps/rollout-wait.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { pidAlive } from "../harness/processes.ts";
import { type AgentProcess, useAgentProcesses } from "../harness/agent-process.ts";
import { type CliResult, processTempDir, runCli, splitConnect, useCli, zkCliLs } from "../harness/cli.ts";
import { HOSTILE_STRINGS, Rng, fuzzSeed, hostileString } from "../helpers/fuzz.ts";
import { waitFor } from "../harness/wait.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";

setDefaultTimeout(60_000);

const zk = useZooKeeper();
useCli();
const agents = useAgentProcesses();

const STACK_LINE = /^\s+at /m;
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;
const raws: ZkClient[] = [];

afterEach(async () => {
  await Promise.all(raws.splice(0).map((c) => c.close()));
});

// ---------------------------------------------------------------------------------------------
// Helpers

function show(r: CliResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

function cli(connect: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(["--zk", connect, ...args], { env });
}

function expectOk(r: CliResult): void {
  expect({ code: r.code, stderr: r.stderr }, show(r)).toEqual({ code: 0, stderr: "" });
}

/** Exit 2, one line on stderr naming each of `mentions`, nothing on stdout, no stack trace. */
function expectUsage(r: CliResult, mentions: string[]): void {
  expect(r.code, show(r)).toBe(2);
  expect(r.stdout, show(r)).toBe("");
  expect(r.stderr, show(r)).not.toMatch(STACK_LINE);
  expect(r.stderr.trim().split("\n"), show(r)).toHaveLength(1);
  for (const m of mentions) expect(r.stderr, show(r)).toContain(m);
}

async function raw(connect: string): Promise<ZkClient> {
  const client = await ZkClient.connect({ connectString: connect, connectTimeoutMs: 10_000 });
  raws.push(client);
  return client;
}

const now = (): string => new Date().toISOString();
const rolloutId = (): string => `r${Date.now().toString(36)}${randomBytes(4).toString("hex")}`;

/** A valid AppSpec payload (as the CLI would write it), with `overrides` applied. */
function spec(app: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: "1.0",
    rolloutId: rolloutId(),
    slots: 1,
    getVersionCmd: `cat VERSION.${app} 2>/dev/null || true`,
    deployCmd: `echo %(version)s > VERSION.${app}`,
    groups: [],
    maxFailures: 0,
    deployTimeoutSec: 60,
    paused: false,
    updatedAt: now(),
    updatedBy: "raw-writer",
    ...overrides,
  };
}

const APP_DIRS = ["lock", "leases", "hosts", "failures", "history", "canary"];

/** Writes /apps/<name> (any bytes, any name ZooKeeper accepts) and its directories, bypassing the CLI. */
async function writeRawApp(client: ZkClient, name: string, data: Buffer | Record<string, unknown>): Promise<void> {
  await client.mkdirp("/apps");
  await client.create(`/apps/${name}`, Buffer.isBuffer(data) ? data : Buffer.from(JSON.stringify(data)));
  for (const dir of APP_DIRS) await client.create(`/apps/${name}/${dir}`);
}

function hostStatus(overrides: Record<string, unknown>): Buffer {
  return Buffer.from(
    JSON.stringify({
      state: "current",
      version: "1.0",
      target: "1.0",
      rolloutId: rolloutId(),
      since: now(),
      updatedAt: now(),
      ...overrides,
    }),
  );
}

function readText(path: string): string {
  return existsSync(path) ? readFileSync(path, "utf8") : "";
}

interface StatusJson {
  apps: { name: string; version: string; state: string; hosts: { host: string; state: string; version: string; error?: string }[] }[];
  invalidApps: { name: string; error: string }[];
  invalidNodes: { path: string; error: string }[];
  agents: { host: string; agentVersion: string }[];
}

async function statusJson(connect: string): Promise<StatusJson> {
  const r = await cli(connect, ["status", "--json"]);
  expectOk(r);
  return JSON.parse(r.stdout) as StatusJson;
}

const startedAgents: AgentProcess[] = [];
async function startAgent(connect: string, hostId: string, dir?: string): Promise<AgentProcess> {
  const a = await agents.start({ connect, hostId, ...(dir === undefined ? {} : { dir }) });
  startedAgents.push(a);
  await a.waitForLog(/agent started/, 15_000);
  return a;
}

/** A directory for marker files: an injected payload would create one here. */
function markerDir(): string {
  return mkdtempSync(join(processTempDir(), "markers-"));
}

// ---------------------------------------------------------------------------------------------

describe("placeholders: a rendered value is one literal word to a real /bin/sh", () => {
  test("printf %s %(x)s prints exactly the value, for every placeholder and hundreds of hostile values", () => {
    const rng = new Rng(fuzzSeed() ^ 0x51e11);
    // NUL cannot be passed in argv at all (and CommandTemplate refuses it): not a shell value.
    // Linux caps one argv string at 128 KiB (MAX_ARG_STRLEN): longer values cannot reach sh at all.
    const values = [...HOSTILE_STRINGS, ...Array.from({ length: 400 }, () => hostileString(rng))].filter(
      (s) => !s.includes("\0") && Buffer.byteLength(s) < 100_000,
    );
    const cwd = mkdtempSync(join(processTempDir(), "sh-"));
    const base = { app: "app", version: "1.0", host: "host", previous: "0.9" };
    let runs = 0;
    for (const value of values) {
      for (const [placeholder, key] of [
        ["%(version)s", "version"],
        ["%(id)s", "app"],
        ["%(host)s", "host"],
        ["%(previous)s", "previous"],
      ] as const) {
        const command = renderCommand(`printf %s ${placeholder}`, { ...base, [key]: value });
        const res = Bun.spawnSync(["/bin/sh", "-c", command], { cwd, env: { PATH: "/usr/bin:/bin" }, stdout: "pipe", stderr: "pipe" });
        runs += 1;
        if (res.exitCode !== 0 || !Buffer.from(res.stdout).equals(Buffer.from(value, "utf8"))) {
          throw new Error(
            `${placeholder} = ${JSON.stringify(value)}: sh -c ${JSON.stringify(command)} printed ${JSON.stringify(res.stdout.toString())} (exit ${res.exitCode}, stderr ${res.stderr.toString()})`,
          );
        }
      }
    }
    // None of the values (many say "touch pwned", "> pwned", ...) did anything but print.
    expect(readdirSync(cwd)).toEqual([]);
    expect(runs).toBeGreaterThanOrEqual(1_600);
    console.log(`placeholders: ${runs} sh runs over ${values.length} hostile values, all literal`);
  });
});

describe("injection", () => {
  test("the CLI refuses hostile versions, app names, host ids and groups (exit 2, value named) and writes nothing", async () => {
    const connect = zk.withChroot("inject-cli");
    const { server, chroot } = splitConnect(connect);
    const markers = markerDir();
    const m = (n: string): string => join(markers, n);
    const cmds = ["--get-version-cmd", "cat VERSION", "--deploy-cmd", "echo %(version)s > VERSION"];
    const versions = [
      `1.0;touch ${m("v1")}`,
      `$(touch ${m("v2")})`,
      `\`touch ${m("v3")}\``,
      `1.0'$(touch ${m("v4")})'`,
      "1.0\ntouch x",
      "1.0 && touch x",
      "../1.0",
      "",
      "1.0 2.0",
      "~root",
    ];
    const names = ["bad;name", `$(touch ${m("n1")})`, "`id`", "a b", "../etc", ".hidden", "web/../../x", "a".repeat(129), "é"];
    const cases: { args: string[]; mentions: string[] }[] = [
      ...versions.map((v) => ({ args: ["app", "create", "web", v, ...cmds], mentions: ["version", JSON.stringify(v).slice(0, 40)] })),
      ...names.map((n) => ({ args: ["app", "create", n, "1.0", ...cmds], mentions: ["app name", JSON.stringify(n).slice(0, 40)] })),
      { args: ["app", "create", "web", "1.0", ...cmds, "--groups", `web;touch ${m("g1")}`], mentions: ["--groups"] },
      { args: ["app", "rollback", "web", "--to", `$(touch ${m("r1")})`], mentions: ["version"] },
      { args: ["app", "set-slots", "bad;name", "2"], mentions: ['"bad;name"'] },
      { args: ["status", `$(touch ${m("s1")})`], mentions: ["app name"] },
      { args: ["agent", "--host-id", `h;touch ${m("h1")}`], mentions: ["--host-id", "h;touch"] },
      { args: ["agent", "--host-id", "$(id)"], mentions: ["--host-id", '"$(id)"'] },
      { args: ["agent", "--host-id", "web-01", "--groups", "web,`id`"], mentions: ["--groups", "`id`"] },
    ];
    const results = await Promise.all(cases.map((c) => runCli(["--zk", connect, ...c.args], { timeoutMs: 15_000 })));
    results.forEach((r, i) => {
      const c = cases[i];
      if (!c) return;
      try {
        expectUsage(r, c.mentions);
      } catch (error) {
        throw new Error(`conveyor ${JSON.stringify(c.args)}: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
    expect(readdirSync(markers)).toEqual([]);
    expect(await zkCliLs(server, "/")).not.toContain(chroot.slice(1));
  });

  test("hostile values written raw into ZooKeeper: the agent refuses the spec and runs nothing; placeholders and env carry only validated values", async () => {
    const connect = zk.withChroot("inject-raw");
    const markers = markerDir();
    const m = (n: string): string => join(markers, n);
    const client = await raw(connect);

    // Specs with one hostile field each. Their commands would leave a marker if they ran at all.
    const ranMarker = (app: string): Record<string, unknown> => ({
      getVersionCmd: `touch ${m(`ran-gv-${app}`)}; cat VERSION.${app} 2>/dev/null || true`,
      deployCmd: `touch ${m(`ran-deploy-${app}`)}; echo %(version)s > VERSION.${app}`,
    });
    const hostile: Record<string, Record<string, unknown>> = {
      "inj-semicolon": { version: `1.0;touch ${m("v1")}` },
      "inj-dollar": { version: `$(touch ${m("v2")})` },
      "inj-backtick": { version: `\`touch ${m("v3")}\`` },
      "inj-quote": { version: `1.0'$(touch ${m("v4")})'` },
      "inj-newline": { version: `1.0\ntouch ${m("v5")}` },
      "inj-previous": { previousVersion: `$(touch ${m("p1")})` },
      "inj-previous2": { previousVersion: `0.9;touch ${m("p2")}` },
      "inj-groups": { groups: [`web;touch ${m("g1")}`] },
    };
    for (const [app, fields] of Object.entries(hostile)) await writeRawApp(client, app, spec(app, { ...ranMarker(app), ...fields }));
    // Invalid app names under /apps (ZooKeeper accepts them; Conveyor must not).
    const badNames = ["bad;name", "$(touch pwned-n1)", "`touch pwned-n2`", "x;touch pwned-n3", "..x", "-rf"];
    for (const [i, name] of badNames.entries()) {
      await writeRawApp(
        client,
        name,
        spec(`n${i}`, {
          getVersionCmd: `touch ${m(`ran-name-${i}`)}; echo 0`,
          deployCmd: `touch ${m(`ran-name-deploy-${i}`)}; echo %(id)s`,
        }),
      );
    }

    // The control app: valid but unusual versions, and every placeholder and variable recorded.
    const dir = mkdtempSync(join(processTempDir(), "agent-inject-"));
    // A hostile "installed version" (get-version-cmd output) must not reach %(previous)s either.
    writeFileSync(join(dir, "VERSION.ok"), `$(touch ${m("prev")})\n`);
    const record =
      `printf '%s\\n' "$CONVEYOR_APP" "$CONVEYOR_VERSION" "$CONVEYOR_HOST" "$CONVEYOR_PREVIOUS_VERSION" > env.ok; ` +
      `printf '%s\\n' %(id)s %(version)s %(host)s %(previous)s > args.ok; echo %(version)s > VERSION.ok`;
    expectOk(
      await cli(connect, [
        "app",
        "create",
        "ok",
        "1:2.0~rc1+b1",
        "--get-version-cmd",
        "head -n1 VERSION.ok 2>/dev/null || true",
        "--deploy-cmd",
        record,
      ]),
    );
    const agent = await startAgent(connect, "h1", dir);
    await waitFor(() => readText(join(dir, "VERSION.ok")).trim() === "1:2.0~rc1+b1", 20_000, "ok 1:2.0~rc1+b1 deployed");
    // The observed version was hostile, so %(previous)s fell back to the spec's (none yet).
    expect(readText(join(dir, "args.ok"))).toBe("ok\n1:2.0~rc1+b1\nh1\n\n");
    const wait = await cli(connect, ["app", "create", "ok", "2.0-1", "--wait", "--wait-timeout", "30s"]);
    expect(wait.code, show(wait)).toBe(0);
    expect(readText(join(dir, "env.ok"))).toBe("ok\n2.0-1\nh1\n1:2.0~rc1+b1\n");
    expect(readText(join(dir, "args.ok"))).toBe("ok\n2.0-1\nh1\n1:2.0~rc1+b1\n");

    // Every hostile spec was seen and refused, and every bad name ignored.
    for (const app of Object.keys(hostile)) await agent.waitForLog(new RegExp(`app spec is invalid; not deploying it app=${app} `), 10_000);
    await agent.waitForLog(/ignoring app with an invalid name app=bad;name/, 10_000);
    // A hostile spec written while the agent runs (the watch path) is refused too.
    await writeRawApp(client, "inj-late", spec("inj-late", { ...ranMarker("inj-late"), version: `2.0$(touch ${m("late")})` }));
    await agent.waitForLog(/app spec is invalid; not deploying it app=inj-late /, 10_000);
    const late = await client.get("/apps/inj-semicolon");
    const from = agent.output.length;
    await client.set(
      "/apps/inj-semicolon",
      Buffer.from(JSON.stringify(spec("inj-semicolon", { ...ranMarker("inj-semicolon"), version: `3.0|touch ${m("v6")}` }))),
      late.stat.version,
    );
    await agent.waitForLog(/app spec is invalid; not deploying it app=inj-semicolon /, 10_000, from);

    for (const app of [...Object.keys(hostile), "inj-late"]) expect(await client.children(`/apps/${app}/hosts`), app).toEqual([]);
    for (const name of badNames) expect(await client.children(`/apps/${name}/hosts`), name).toEqual([]);
    expect(readdirSync(markers)).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.startsWith("pwned"))).toEqual([]);
    expect(pidAlive(agent.pid)).toBe(true);

    // status shows each of them as invalid, with the field at fault.
    const fleet = await statusJson(connect);
    const invalid = new Map(fleet.invalidApps.map((a) => [a.name, a.error]));
    expect(invalid.get("inj-semicolon")).toStartWith("version:");
    expect(invalid.get("inj-previous")).toStartWith("previousVersion:");
    expect(invalid.get("inj-groups")).toStartWith("groups");
    for (const name of badNames) expect(invalid.get(name), name).toBe("invalid app name");
    expect(fleet.apps.map((a) => a.name)).toEqual(["ok"]);
  });

  test("a host status or presence with hostile content is only displayed, never executed", async () => {
    const connect = zk.withChroot("inject-status");
    const markers = markerDir();
    const m = (n: string): string => join(markers, n);
    expectOk(
      await cli(connect, [
        "app",
        "create",
        "ok",
        "1.0",
        "--get-version-cmd",
        "cat VERSION.ok 2>/dev/null || true",
        "--deploy-cmd",
        "echo %(version)s > VERSION.ok",
      ]),
    );
    const agent = await startAgent(connect, "h1");
    await waitFor(() => readText(join(agent.dir, "VERSION.ok")).trim() === "1.0", 20_000, "ok deployed");
    const client = await raw(connect);
    const evilError = `$(touch ${m("s1")}); \`touch ${m("s2")}\``;
    const evilVersion = `1.0;touch ${m("s3")}`;
    await client.create(
      "/apps/ok/hosts/evil",
      hostStatus({ state: "failed", version: evilVersion, error: evilError, outputTail: `| sh -c 'touch ${m("s4")}'`, exitCode: 1 }),
    );
    await client.create(
      "/agents/evil",
      Buffer.from(JSON.stringify({ groups: [], agentVersion: `$(touch ${m("s5")})`, pid: 1, startedAt: now() })),
    );

    const text = await cli(connect, ["status"]);
    expectOk(text);
    expect(text.stdout).toContain(evilVersion);
    expect(text.stdout).toContain(`$(touch ${m("s1")})`);
    const fleet = await statusJson(connect);
    const evil = fleet.apps[0]?.hosts.find((h) => h.host === "evil");
    expect(evil).toMatchObject({ version: evilVersion, error: evilError });
    expect(fleet.agents.find((a) => a.host === "evil")?.agentVersion).toBe(`$(touch ${m("s5")})`);
    // The agent takes no notice either: publish again, it deploys, nothing else runs. (No
    // --wait: the fake online host "evil" never finishes, so a wait would rightly time out.)
    expectOk(await cli(connect, ["app", "create", "ok", "1.1"]));
    await waitFor(() => readText(join(agent.dir, "VERSION.ok")).trim() === "1.1", 20_000, "ok 1.1 deployed");
    expect(readdirSync(markers)).toEqual([]);
    expect(pidAlive(agent.pid)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------

describe("corrupt znodes", () => {
  test("agents stay alive and keep deploying other apps; status, app show, app list and --wait report the bad nodes", async () => {
    const connect = zk.withChroot("corrupt");
    const client = await raw(connect);
    const [a1, a2] = [await startAgent(connect, "h1"), await startAgent(connect, "h2")];
    const cmds = (app: string): string[] => [
      "--get-version-cmd",
      `cat VERSION.${app} 2>/dev/null || true`,
      "--deploy-cmd",
      `echo %(version)s > VERSION.${app}`,
    ];
    // (Not with --wait: a first rollout onto two new hosts can hit the FleetReader race pinned by
    // the failing test below.)
    for (const app of ["good", "flip"]) expectOk(await cli(connect, ["app", "create", app, "1.0", ...cmds(app), "--slots", "2"]));
    for (const a of [a1, a2]) {
      for (const app of ["good", "flip"])
        await waitFor(() => readText(join(a.dir, `VERSION.${app}`)).trim() === "1.0", 20_000, `${a.hostId} ${app} 1.0`);
    }

    // ~1,000,000 bytes of JSON: a giant string in a known field (valid JSON, invalid spec).
    const base = JSON.stringify(spec("huge"));
    const huge = Buffer.from(JSON.stringify(spec("huge", { updatedBy: "x".repeat(1_000_000 - base.length - 5) })));
    expect(huge.length).toBeGreaterThan(990_000);
    expect(huge.length).toBeLessThanOrEqual(1_000_000);
    // Valid JSON, absurdly nested (~980 KB).
    const depth = 490_000;
    const nested = Buffer.from(`{"version":${"[".repeat(depth)}${"]".repeat(depth)}}`);
    const corrupt: Record<string, Buffer | Record<string, unknown>> = {
      badjson: Buffer.from('{"version": "1.0", '),
      empty: Buffer.alloc(0),
      binary: Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28]),
      wrongtypes: spec("wrongtypes", { slots: "two", paused: "no", deployTimeoutSec: "600" }),
      missing: { version: "1.0" },
      nulls: spec("nulls", { deployCmd: null, groups: null }),
      arrayspec: Buffer.from(JSON.stringify([spec("arrayspec")])),
      objectgroups: spec("objectgroups", { groups: { web: true }, extra: { nested: [1, { deeper: [[[]]] }] } }),
      huge,
      nested,
    };
    for (const [name, data] of Object.entries(corrupt)) await writeRawApp(client, name, data);
    await writeRawApp(client, "bad;name", spec("bad-name"));
    // Corrupt per-host nodes of the good app, and corrupt presence nodes.
    await client.create("/apps/good/hosts/zombie", Buffer.from('{"state":"hacking"}'));
    await client.create("/apps/good/hosts/bad;host", hostStatus({}));
    await client.create("/apps/good/hosts/noise", Buffer.from([0x00, 0x01, 0xff]));
    await client.create("/agents/ghost", Buffer.from("garbage"));
    await client.create("/agents/bad;host", Buffer.from(JSON.stringify({ groups: [], agentVersion: "1", pid: 1, startedAt: now() })));
    await client.create("/agents/typed", Buffer.from(JSON.stringify({ groups: "web", agentVersion: 1, pid: -1, startedAt: "yesterday" })));
    // An app the agents already serve turns corrupt.
    const flip = await client.get("/apps/flip");
    await client.set(
      "/apps/flip",
      Buffer.from(JSON.stringify({ ...JSON.parse(flip.data.toString()), version: 5, rolloutId: rolloutId() })),
      flip.stat.version,
    );

    for (const a of [a1, a2]) {
      for (const name of ["badjson", "huge", "nested", "flip"])
        await a.waitForLog(new RegExp(`app spec is invalid; not deploying it app=${name} `), 15_000);
    }

    // Publishing the good app still converges on both, and --wait is unaffected.
    const wait = await cli(connect, ["app", "create", "good", "2.0", "--wait", "--wait-timeout", "30s"]);
    expect(wait.code, show(wait)).toBe(0);
    for (const a of [a1, a2]) expect(readText(join(a.dir, "VERSION.good")).trim()).toBe("2.0");
    // The corrupt app recovers once it is valid again.
    const flipped = await client.get("/apps/flip");
    await client.set("/apps/flip", Buffer.from(JSON.stringify(spec("flip", { version: "1.1", slots: 2 }))), flipped.stat.version);
    for (const a of [a1, a2]) await waitFor(() => readText(join(a.dir, "VERSION.flip")).trim() === "1.1", 20_000, `${a.hostId} flip 1.1`);
    for (const a of [a1, a2]) {
      expect(pidAlive(a.pid), a.output).toBe(true);
      expect(a.output).not.toMatch(STACK_LINE);
      // Nothing of the corrupt apps ran.
      expect(readdirSync(a.dir).filter((f) => /^VERSION\.(?!good$|flip$)/.test(f))).toEqual([]);
    }

    // status: exit 0, bad apps under invalidApps with a reason, bad nodes under invalidNodes.
    const text = await cli(connect, ["status"]);
    expectOk(text);
    for (const name of [...Object.keys(corrupt), "bad;name"]) expect(text.stdout).toMatch(new RegExp(`^${name}  INVALID: \\S`, "m"));
    expect(text.stdout).toContain("badjson  INVALID: not valid JSON");
    expect(text.stdout).toContain("empty  INVALID: empty payload");
    expect(text.stdout).toContain("warning: /apps/good/hosts/zombie INVALID:");
    expect(text.stdout).toContain("warning: /agents/ghost INVALID: not valid JSON");
    const fleet = await statusJson(connect);
    const invalidApps = new Map(fleet.invalidApps.map((a) => [a.name, a.error]));
    expect([...invalidApps.keys()].sort()).toEqual([...Object.keys(corrupt), "bad;name"].sort());
    for (const [name, error] of invalidApps) expect(error.length, name).toBeGreaterThan(0);
    expect(invalidApps.get("wrongtypes")).toStartWith("slots:");
    expect(invalidApps.get("missing")).toStartWith("rolloutId:");
    expect(invalidApps.get("huge")).toStartWith("updatedBy:");
    expect(invalidApps.get("bad;name")).toBe("invalid app name");
    expect(fleet.invalidNodes.map((n) => n.path).sort()).toEqual(
      [
        "/agents/bad;host",
        "/agents/ghost",
        "/agents/typed",
        "/apps/good/hosts/bad;host",
        "/apps/good/hosts/noise",
        "/apps/good/hosts/zombie",
      ].sort(),
    );
    expect(fleet.invalidNodes.find((n) => n.path === "/apps/good/hosts/bad;host")?.error).toBe("invalid host id");
    const good = fleet.apps.find((a) => a.name === "good");
    expect(good?.state).toBe("converged");
    expect(good?.hosts.map((h) => `${h.host}:${h.state}:${h.version}`)).toEqual(["h1:current:2.0", "h2:current:2.0"]);
    expect(fleet.agents.map((a) => a.host)).toEqual(["h1", "h2"]);
    expectOk(await cli(connect, ["status", "good"]));
    expect((await cli(connect, ["app", "wait", "good", "--wait-timeout", "20s"])).code).toBe(0);

    // app show <bad>: exit 1 naming the path; app list marks it INVALID.
    for (const name of Object.keys(corrupt)) {
      const r = await cli(connect, ["app", "show", name]);
      expect(r.code, show(r)).toBe(1);
      expect(r.stderr, show(r)).toContain(`/apps/${name}`);
      expect(r.stderr.trim().split("\n"), show(r)).toHaveLength(1);
      expect(r.stderr).not.toMatch(STACK_LINE);
    }
    const list = await cli(connect, ["app", "list"]);
    expectOk(list);
    for (const name of [...Object.keys(corrupt), "bad;name"]) expect(list.stdout).toMatch(new RegExp(`^${name}\\s+INVALID\\b`, "m"));
    expect(list.stdout).toMatch(/^good\s+2\.0\b/m);
    const listJson = JSON.parse((await cli(connect, ["app", "list", "--json"])).stdout) as { name: string; error?: string }[];
    expect(
      listJson
        .filter((a) => a.error !== undefined)
        .map((a) => a.name)
        .sort(),
    ).toEqual([...Object.keys(corrupt), "bad;name"].sort());
  });

  // Regression (was a bug: src/apps/fleet-reader.ts readHostList): when a new host node appears, the reader stores
  // the new host list first and reads the statuses after; a snapshot taken meanwhile (any other
  // watch — the app node, another host — completing first calls onChange) shows the unread
  // host as an invalid node ("unreadable") and, worse, counts it as "reported", so it is neither
  // in hosts nor in pendingAgents. `app create … --wait` onto fresh hosts then sometimes ends at
  // once with exit 1 "no agent serves app" (evaluateRollout: no hosts, no pending agents) while
  // the agents are deploying — seen ~1 in 10 runs with two agents and --slots 2. Fixed by: in
  // readHostList, read the new hosts' statuses before publishing the new list (or skip hosts
  // whose status is not read yet in raw()), so a snapshot is never half-updated.
  test("status/--wait never see a new host as invalid or as reported-but-missing while its status is being read", async () => {
    const connect = zk.withChroot("reader-race");
    expectOk(await cli(connect, ["app", "create", "ok", "1.0", "--get-version-cmd", "true", "--deploy-cmd", "true"]));
    const client = await raw(connect);
    await client.mkdirp("/agents");
    await client.create(
      "/agents/h1",
      Buffer.from(JSON.stringify({ groups: [], agentVersion: "t", pid: 1, startedAt: now() })),
      "ephemeral",
    );
    // The same client, but a host status read is held (as on a busy server) until the test has
    // made another change land while it is in flight.
    let statusReads = 0;
    let answer: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (answer = resolve));
    const slow = new Proxy(client, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (prop === "get") {
          return async (path: string, watcher?: Parameters<ZkClient["get"]>[1]) => {
            if (path.includes("/hosts/")) {
              statusReads++;
              await held;
            }
            return target.get(path, watcher);
          };
        }
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const spec = JSON.parse((await client.get("/apps/ok")).data.toString()) as { rolloutId: string };
    const verdicts: string[] = [];
    const invalid: string[] = [];
    const reader: FleetReader = new FleetReader(slow, {
      app: "ok",
      watch: true,
      onChange: () => {
        const snapshot = reader.snapshot();
        invalid.push(...snapshot.invalidNodes.map((n) => `${n.path}: ${n.error}`));
        verdicts.push(evaluateRollout(snapshot.apps[0], spec.rolloutId)?.kind ?? "running");
      },
    });
    try {
      await reader.load();
      expect(evaluateRollout(reader.snapshot().apps[0], spec.rolloutId)).toBeUndefined(); // h1 pending
      // h1 reports (a new host node) and, while its status is being read, another change the
      // reader watches lands (the app node written again, as `set-slots` would): the reader takes
      // a snapshot for it with h1's status still unread.
      await client.create("/apps/ok/hosts/h1", hostStatus({ state: "queued", version: "", target: "1.0", rolloutId: spec.rolloutId }));
      await waitFor(() => statusReads > 0, 5_000, "the reader to read h1's status");
      const snapshots = verdicts.length;
      await client.set("/apps/ok", (await client.get("/apps/ok")).data);
      await waitFor(() => verdicts.length > snapshots, 5_000, "a snapshot after the other change");
      answer();
      await waitFor(() => reader.snapshot().apps[0]?.hosts.length === 1, 5_000, "h1's status read");
    } finally {
      answer();
      reader.stop();
    }
    expect(verdicts.filter((v) => v !== "running")).toEqual([]); // --wait would have ended with "no-hosts"
    expect(invalid).toEqual([]);
  });

  // Regression (was a bug: src/config/decode.ts firstIssue, and src/cli/commands/status.ts renderFleet): the reason
  // for an invalid node quotes the offending value raw (valibot's 'but received "<raw>"'), and
  // `status` prints it as is, so whoever can write a node (an agent identity can write any
  // hosts/<host>) puts newlines and terminal escape sequences into an operator's `conveyor
  // status` — forged lines ("h9  current …"), a cleared screen. Fixed by: escape control characters
  // in firstIssue (and in any znode text status prints: host version, error, agentVersion).
  test("status never prints raw control characters from a corrupt node", async () => {
    const connect = zk.withChroot("corrupt-ctrl");
    const client = await raw(connect);
    expectOk(await cli(connect, ["app", "create", "ok", "1.0", "--get-version-cmd", "true", "--deploy-cmd", "true"]));
    await client.create("/apps/ok/hosts/forged", hostStatus({ state: "current\nok  6.6.6  slots 99  CONVERGED\u001b[2J" }));
    const text = await cli(connect, ["status"]);
    expectOk(text);
    expect(text.stdout).toContain("/apps/ok/hosts/forged");
    expect(text.stdout).not.toMatch(CONTROL);
    // The forged line must not appear as a line of its own.
    expect(text.stdout).not.toMatch(/^ok {2}6\.6\.6 {2}slots 99 {2}CONVERGED/m);
  });
});

// ---------------------------------------------------------------------------------------------

describe("flags, config files and environment", () => {
  test("every invalid value exits 2 naming it, and nothing is written (not even the chroot)", async () => {
    const dir = mkdtempSync(join(processTempDir(), "config-"));
    const file = (name: string, text: string): string => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    };
    const aDirectory = join(dir, "a-directory.toml");
    mkdirSync(aDirectory);
    const server = zk.connectString;
    const chroots: string[] = [];
    const fresh = (label: string): string => {
      const connect = zk.withChroot(`flags-${label}`);
      chroots.push(splitConnect(connect).chroot.slice(1));
      return connect;
    };
    const create = ["app", "create", "web", "1.0", "--get-version-cmd", "cat VERSION", "--deploy-cmd", "echo %(version)s > VERSION"];
    const config = {
      unknownTop: file("unknown-top.toml", 'logLevel = "info"\nbogus = 1\n'),
      unknownAgent: file("unknown-agent.toml", '[agent]\nhostid = "web-01"\n'),
      unknownTable: file("unknown-table.toml", '[agnet]\nhostId = "web-01"\n'),
      timeoutType: file("timeout-type.toml", "connectTimeout = 5\n"),
      timeoutValue: file("timeout-value.toml", 'connectTimeout = "forever"\n'),
      level: file("level.toml", 'logLevel = "loud"\n'),
      appsType: file("apps-type.toml", '[agent]\napps = "a"\n'),
      appsName: file("apps-name.toml", '[agent]\napps = ["bad;name"]\n'),
      groups: file("groups.toml", '[agent]\ngroups = ["b@d"]\n'),
      regex: file("regex.toml", "[agent]\nallowCommands = ['(unclosed']\n"),
      logFormat: file("log-format.toml", '[agent]\nlogFormat = "xml"\n'),
      agentTable: file("agent-table.toml", 'agent = "yes"\n'),
      toml: file("broken.toml", "zk = \n[[[\n"),
      auth: file("auth.toml", 'auth = "nopassword"\n'),
      authFile: file("auth-file.toml", `authFile = "${join(dir, "missing.cred")}"\n`),
      zk: file("zk.toml", 'zk = "bad host!:2181/x"\n'),
      badCred: file("bad.cred", "bad;user:cred-secret-1\n"),
    };
    const cases: { args: string[]; env?: Record<string, string>; mentions: string[]; connect?: string }[] = [
      { args: ["--config", config.unknownTop, ...create], mentions: [config.unknownTop, "bogus", "unknown key"] },
      { args: ["--config", config.unknownAgent, ...create], mentions: [config.unknownAgent, "hostid"] },
      { args: ["--config", config.unknownTable, ...create], mentions: [config.unknownTable, "agnet"] },
      { args: ["--config", config.timeoutType, ...create], mentions: [config.timeoutType, "connectTimeout"] },
      { args: ["--config", config.timeoutValue, ...create], mentions: ['"forever"'] },
      { args: ["--config", config.level, ...create], mentions: [config.level, "logLevel"] },
      { args: ["--config", config.appsType, ...create], mentions: [config.appsType, "apps"] },
      { args: ["--config", config.appsName, ...create], mentions: [config.appsName, "apps"] },
      { args: ["--config", config.groups, ...create], mentions: [config.groups, "groups"] },
      { args: ["--config", config.regex, ...create], mentions: [config.regex, "allowCommands"] },
      { args: ["--config", config.logFormat, ...create], mentions: [config.logFormat, "logFormat"] },
      { args: ["--config", config.agentTable, ...create], mentions: [config.agentTable, "agent"] },
      { args: ["--config", config.toml, ...create], mentions: [config.toml, "TOML"] },
      { args: ["--config", config.auth, ...create], mentions: ["auth in the config file"] },
      { args: ["--config", config.authFile, ...create], mentions: [join(dir, "missing.cred")] },
      { args: ["--config", aDirectory, ...create], mentions: [aDirectory] },
      { args: ["--config", join(dir, "missing.toml"), ...create], mentions: [join(dir, "missing.toml")] },
      { args: ["--auth-file", aDirectory, ...create], mentions: ["--auth-file", aDirectory] },
      { args: ["--auth-file", config.badCred, ...create], mentions: ["--auth-file", '"bad;user"'] },
      { args: ["--auth", "nopassword", ...create], mentions: ["--auth"] },
      { args: ["--auth", "admin:", ...create], mentions: ["--auth", '"admin"'] },
      { args: ["--connect-timeout", "50ms", ...create], mentions: ['"50ms"'] },
      { args: ["--connect-timeout", "1h", ...create], mentions: ['"1h"'] },
      { args: ["--log-level", "loud", ...create], mentions: ['"loud"'] },
      { args: create, env: { CONVEYOR_AUTH: "nopassword" }, mentions: ["CONVEYOR_AUTH"] },
      { args: create, env: { CONVEYOR_AUTH: "bad;user:cred-secret-2" }, mentions: ["CONVEYOR_AUTH", '"bad;user"'] },
      { args: create, env: { CONVEYOR_AUTH: "admin:" }, mentions: ["CONVEYOR_AUTH"] },
      { args: ["--config", config.logFormat, "agent", "--host-id", "web-01"], mentions: ["logFormat"] },
      { args: ["agent", "--host-id", "web-01", "--session-timeout", "0s"], mentions: ['"0s"', "--session-timeout"] },
      { args: ["agent", "--host-id", "web-01", "--log-format", "xml"], mentions: ['"xml"'] },
    ];
    // Without --zk: the connect string comes from the environment or the config file.
    const noZk: { args: string[]; env?: Record<string, string>; mentions: string[] }[] = [
      { args: ["--connect-timeout", "1s", ...create], env: { CONVEYOR_ZK: "bad host!:2181" }, mentions: ["bad host!"] },
      { args: ["--connect-timeout", "1s", ...create], env: { CONVEYOR_ZK: `${server}:99999` }, mentions: ["99999"] },
      { args: ["--connect-timeout", "1s", ...create], env: { CONVEYOR_ZK: `${server}/bad chroot` }, mentions: ["/bad chroot"] },
      { args: ["--connect-timeout", "1s", "--config", config.zk, ...create], mentions: ["bad host!"] },
    ];
    const runs = [
      ...cases.map((c, i) => ({ c, result: runCli(["--zk", fresh(`c${i}`), ...c.args], { env: c.env ?? {}, timeoutMs: 15_000 }) })),
      ...noZk.map((c) => ({ c, result: runCli(c.args, { env: c.env ?? {}, timeoutMs: 15_000 }) })),
    ];
    for (const { c, result } of runs) {
      const r = await result;
      try {
        expectUsage(r, c.mentions);
        expect(r.stderr).not.toContain("cred-secret");
      } catch (error) {
        throw new Error(
          `conveyor ${JSON.stringify(c.args)} env ${JSON.stringify(c.env ?? {})}: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
    const root = (await zkCliLs(server, "/")) ?? [];
    expect(root.filter((name) => chroots.includes(name))).toEqual([]);
  });

  // Regression (was a bug: src/zk/connect-string.ts, CHROOT_SEGMENT = /^[A-Za-z0-9._-]{1,128}$/): a chroot segment
  // "." or ".." passes validation, then ZooKeeper's client refuses the path, so
  // `conveyor --zk host:2181/.. app list` (or /a/../b, /.) exits 1 "Node path must not contain
  // relative path(s)" instead of 2 naming the connect string. (Nothing escapes the chroot: the
  // library refuses first.) Fixed by: reject "." and ".." segments in parseConnectString.
  test("a chroot with a '.' or '..' segment is a usage error (exit 2) naming it", async () => {
    for (const chroot of ["/..", "/.", "/a/../b"]) {
      const r = await runCli(["--zk", `${zk.connectString}${chroot}`, "--connect-timeout", "2s", "app", "list"]);
      expectUsage(r, [chroot]);
    }
  });

  // Regression (was a bug): "[::1]:2181" passed validation, but the ZooKeeper library splits
  // each server at ":" and dialled host "[" — exit 3 "unreachable" after the whole connect
  // timeout instead of a usage error. Fixed by: refuse literal IPv6 addresses by name.
  test("a literal IPv6 server address is a usage error (exit 2) naming it, at once", async () => {
    for (const server of ["[::1]:2181", "[::1]", "::1"]) {
      const r = await runCli(["--zk", `${server}/x`, "--connect-timeout", "5s", "app", "list"], { timeoutMs: 4_000 });
      expectUsage(r, [server]);
      expect(r.stderr).toContain("IPv6");
    }
  });

  // Regression (was a bug): a NUL byte in a configured path reaches Bun.file(), which throws synchronously outside the
  // try: src/config/settings.ts readCredentialFile (`const file = Bun.file(path)`), likewise
  // src/config/config-file.ts loadConfigFile and src/cli/commands/acl.ts (--agent-auth-file). TOML
  // allows "\u0000" in a string, so `authFile = "a\u0000b"` makes the CLI exit 1 with "internal
  // error: The argument 'path' must be ... without null bytes" instead of exit 2 naming the file.
  // Fixed by: create the Bun.file inside the try, or refuse "\0" in paths with a UsageError.
  test("a config file whose authFile contains a NUL byte is a usage error (exit 2)", async () => {
    const dir = mkdtempSync(join(processTempDir(), "config-nul-"));
    const path = join(dir, "nul.toml");
    writeFileSync(path, 'authFile = "a\\u0000b"\n');
    const r = await runCli(["--zk", "127.0.0.1:1/x", "--connect-timeout", "1s", "--config", path, "app", "list"]);
    expectUsage(r, ["authFile"]);
  });
});
