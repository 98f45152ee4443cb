// Security, end to end against a real ZooKeeper and the compiled binary:
//   - digest ACLs (`acl init` / `acl show`): the admin identity writes specs, the agent identity
//     only reads them and writes its own nodes, nobody else gets anything — checked through the
//     CLI and read back with Debian's own ZooKeeper client authenticated as admin;
//   - the agent's local allowlists: `apps` (which apps it serves) and `allowCommands` (which
//     rendered commands it will run; whole-command regex matches).
// Every password used here is checked, at the end, to never appear in any output.

import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readFleetStatus } from "../../src/apps/fleet-status.ts";
import { Perm, type ZkAcl } from "../../src/zk/acl.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { leasesDir, lockDir } from "../../src/zk/paths.ts";
import { pidAlive } from "../harness/processes.ts";
import { type AgentProcess, useAgentProcesses } from "../harness/agent-process.ts";
import {
  type CliResult,
  ensureBinary,
  processTempDir,
  runCli,
  spawnCollect,
  splitConnect,
  useCli,
  zkCliGet,
  zkCliLs,
} from "../harness/cli.ts";
import { waitFor } from "../harness/wait.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";

setDefaultTimeout(60_000);

const zk = useZooKeeper();
useCli();
const agents = useAgentProcesses();

const STACK_LINE = /^\s+at /m;
const secret = (prefix: string): string => `${prefix}-${randomBytes(9).toString("base64url")}`;
const ADMIN_PW = secret("adminpw");
const AGENT_PW = secret("agentpw");
const WRONG_PW = secret("wrongpw");
const ADMIN = `admin:${ADMIN_PW}`;
const AGENT = `agent:${AGENT_PW}`;
/** Every password any command of this file saw; none may ever be printed. */
const PASSWORDS = [ADMIN_PW, AGENT_PW, WRONG_PW];
/** stdout + stderr of every conveyor process run in this file (CLI and agents). */
const outputs: { what: string; text: string }[] = [];

const raws: ZkClient[] = [];
const spawned: SpawnedAgent[] = [];

afterEach(async () => {
  await Promise.all(spawned.splice(0).map((a) => a.stop()));
  await Promise.all(raws.splice(0).map((c) => c.close()));
}, 20_000);

// ---------------------------------------------------------------------------------------------
// Helpers

function show(r: CliResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** The compiled CLI against `connect`; its output is recorded for the password check. */
async function cli(connect: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const r = await runCli(["--zk", connect, ...args], { env, timeoutMs: 30_000 });
  outputs.push({ what: `conveyor ${args.join(" ")}`, text: r.stdout + r.stderr });
  return r;
}

function expectOk(r: CliResult): void {
  expect({ code: r.code, stderr: r.stderr }, show(r)).toEqual({ code: 0, stderr: "" });
}

/** Refused by ZooKeeper: exit 3, one line saying so, no stack trace, nothing on stdout. */
function expectNotAuthorised(r: CliResult): void {
  expect(r.code, show(r)).toBe(3);
  expect(r.stderr, show(r)).toContain("not authorised");
  expect(r.stderr, show(r)).not.toMatch(STACK_LINE);
  expect(r.stderr.trim().split("\n"), show(r)).toHaveLength(1);
  expect(r.stdout, show(r)).toBe("");
}

function expectUsage(r: CliResult, mentions: string[]): void {
  expect(r.code, show(r)).toBe(2);
  expect(r.stderr, show(r)).not.toMatch(STACK_LINE);
  expect(r.stderr.trim().split("\n"), show(r)).toHaveLength(1);
  for (const m of mentions) expect(r.stderr, show(r)).toContain(m);
}

async function raw(connect: string, credentials: { user: string; password: string }[] = []): Promise<ZkClient> {
  const client = await ZkClient.connect({ connectString: connect, connectTimeoutMs: 10_000, credentials });
  raws.push(client);
  return client;
}

/** ZooKeeper's digest id for user:password, computed here (not with the code under test). */
function digest(user: string, password: string): string {
  return `${user}:${createHash("sha1").update(`${user}:${password}`).digest("base64")}`;
}

const ADMIN_ID = digest("admin", ADMIN_PW);
const AGENT_ID = digest("agent", AGENT_PW);
const ADMIN_ACE: ZkAcl = { scheme: "digest", id: ADMIN_ID, perms: Perm.all };
const AGENT_READ: ZkAcl = { scheme: "digest", id: AGENT_ID, perms: Perm.read };
const AGENT_WRITE: ZkAcl = { scheme: "digest", id: AGENT_ID, perms: Perm.read | Perm.write | Perm.create | Perm.delete };

const ZK_CLASSPATH = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-nop.jar";

/**
 * Debian's ZooKeeperMain with commands piped to stdin (so `addauth` can come first; it cannot be
 * given on argv). Returns its output without the banner and watcher lines.
 */
async function zkShell(server: string, commands: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const javaHome = process.env.JAVA_HOME;
  const r = await spawnCollect(
    [
      "java",
      "-Xshare:auto",
      "-XX:TieredStopAtLevel=1",
      "-XX:+UseSerialGC",
      "-XX:-UsePerfData",
      "-cp",
      ZK_CLASSPATH,
      "org.apache.zookeeper.ZooKeeperMain",
      "-server",
      server,
    ],
    {
      env: javaHome === undefined ? {} : { JAVA_HOME: javaHome, PATH: `${javaHome}/bin:/usr/bin:/bin` },
      stdin: `${commands.join("\n")}\nquit\n`,
      timeoutMs: 20_000,
    },
  );
  const noise = /^(Connecting to |Welcome to ZooKeeper!|JLine support is|WATCHER::|WatchedEvent state:|$)/;
  const stdout = r.stdout
    .split("\n")
    .filter((l) => !noise.test(l))
    .join("\n");
  return { code: r.code, stdout, stderr: r.stderr };
}

/** `get path` as admin with Debian's client: the node's data (the JSON line). */
async function zkGetAsAdmin(server: string, path: string): Promise<string> {
  const r = await zkShell(server, [`addauth digest ${ADMIN}`, `get ${path}`]);
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  if (line === undefined) throw new Error(`zkCli get ${path} as admin: no data (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  return line;
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new Error(`${what} is not an object: ${JSON.stringify(value)}`);
  return value as Record<string, unknown>;
}

interface HostJson {
  host: string;
  state: string;
  version: string;
}
interface AppJson {
  name: string;
  version: string;
  state: string;
  hosts: HostJson[];
  pendingAgents: string[];
}

async function statusJson(connect: string, args: string[] = []): Promise<{ apps: AppJson[]; agents: { host: string; apps?: string[] }[] }> {
  const r = await cli(connect, [...args, "status", "--json"]);
  expectOk(r);
  return JSON.parse(r.stdout) as { apps: AppJson[]; agents: { host: string; apps?: string[] }[] };
}

const startedAgents: AgentProcess[] = [];
async function startAgent(connect: string, hostId: string, args: string[] = []): Promise<AgentProcess> {
  const a = await agents.start({ connect, hostId, args });
  startedAgents.push(a);
  return a;
}

/** get-version / deploy commands whose "installed version" is VERSION.<app> in the agent's dir. */
function fileCommands(app: string): string[] {
  return ["--get-version-cmd", `cat VERSION.${app} 2>/dev/null || true`, "--deploy-cmd", `echo %(version)s > VERSION.${app}`];
}

/** A fresh chroot with app "web" 1.0, locked by `acl init` (admin/agent identities of this file). */
async function lockedTree(prefix: string): Promise<{ connect: string; server: string; chroot: string }> {
  const connect = zk.withChroot(prefix);
  expectOk(await cli(connect, ["app", "create", "web", "1.0", ...fileCommands("web")]));
  expectOk(await cli(connect, ["--auth", ADMIN, "acl", "init", "--agent-auth", AGENT]));
  return { connect, ...splitConnect(connect) };
}

// ---------------------------------------------------------------------------------------------
// An agent process with a PATH of our choosing (the shared helper fixes PATH=/usr/bin:/bin), so
// that an allowlisted command name like `deploy-ok` resolves to a script of the test.

interface SpawnedAgent {
  pid: number;
  dir: string;
  output(): string;
  waitForLog(pattern: RegExp, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

let stateDirFlag: boolean | undefined;

async function spawnAgentWithPath(connect: string, hostId: string, dir: string, binDir: string, config: string): Promise<SpawnedAgent> {
  const binary = await ensureBinary();
  // Keep the agent's deploy journal in its own directory if this build has one.
  stateDirFlag ??= (await spawnCollect([binary, "agent", "--help"])).stdout.includes("--state-dir");
  const args = ["agent", "--zk", connect, "--host-id", hostId, "--session-timeout", "2s", "--config", config];
  if (stateDirFlag) args.push("--state-dir", join(dir, ".state"));
  const proc = Bun.spawn([binary, ...args], {
    cwd: dir,
    env: { PATH: `${binDir}:/usr/bin:/bin`, HOME: dir },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>): Promise<void> => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  };
  const pumps = Promise.all([pump(proc.stdout), pump(proc.stderr)]).catch(() => undefined);
  const agent: SpawnedAgent = {
    pid: proc.pid,
    dir,
    output: () => text,
    async waitForLog(pattern, timeoutMs) {
      await waitFor(() => pattern.test(text) || proc.exitCode !== null, timeoutMs, `agent ${hostId} to log ${pattern}`);
      if (!pattern.test(text)) throw new Error(`agent ${hostId} exited (${proc.exitCode}) without logging ${pattern}:\n${text}`);
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(10_000).then(() => false)]);
        if (!exited) proc.kill("SIGKILL");
      }
      await proc.exited;
      await Promise.race([pumps, Bun.sleep(1_000)]);
      outputs.push({ what: `agent ${hostId}`, text });
    },
  };
  spawned.push(agent);
  return agent;
}

// ---------------------------------------------------------------------------------------------

describe("digest ACLs: acl init, then who may do what", () => {
  // One locked tree for the tests of this block, which run in order.
  let connect = "";
  let server = "";
  let chroot = "";

  test("acl init (admin) locks a fresh tree: acl show lists the two identities, no world access anywhere", async () => {
    connect = zk.withChroot("acl");
    ({ server, chroot } = splitConnect(connect));
    expectOk(await cli(connect, ["app", "create", "web", "1.0", ...fileCommands("web")]));
    // Before locking, the tree is world-open (the bootstrap case).
    expect(await zkCliGet(server, `${chroot}/apps/web`)).toContain('"version":"1.0"');

    const init = await cli(connect, ["--auth", ADMIN, "acl", "init", "--agent-auth", AGENT]);
    expectOk(init);
    expect(init.stdout).toMatch(/locked \d+ node/);

    const text = await cli(connect, ["--auth", ADMIN, "acl", "show"]);
    expectOk(text);
    const rows = new Map(
      text.stdout
        .trim()
        .split("\n")
        .slice(1)
        .map((line) => {
          const [path = "", ...acl] = line.trim().split(/\s{2,}/);
          return [path, acl.join("  ")] as const;
        }),
    );
    expect(rows.get("/apps/web"), text.stdout).toBe("digest:admin:cdrwa, digest:agent:r");
    expect(rows.get("/apps/web/history"), text.stdout).toBe("digest:admin:cdrwa, digest:agent:r");
    expect(rows.get("/apps"), text.stdout).toBe("digest:admin:cdrwa, digest:agent:r");
    expect(rows.get("/"), text.stdout).toBe("digest:admin:cdrwa, digest:agent:r");
    for (const dir of ["lock", "leases", "hosts", "failures"]) {
      expect(rows.get(`/apps/web/${dir}`), text.stdout).toBe("digest:admin:cdrwa, digest:agent:cdrw");
    }
    expect(rows.get("/agents"), text.stdout).toBe("digest:admin:cdrwa, digest:agent:cdrw");
    expect(text.stdout).not.toContain("world");

    const json = await cli(connect, ["--auth", ADMIN, "acl", "show", "--json"]);
    expectOk(json);
    const shown = JSON.parse(json.stdout) as {
      locked: boolean;
      schemes: string[];
      admin: string[];
      agent: string[];
      nodes: { path: string; acl: { scheme: string; id: string; perms: string }[] }[];
    };
    expect(shown).toMatchObject({ locked: true, schemes: ["digest"], admin: ["digest:admin"], agent: ["digest:agent"] });
    expect(text.stdout).toContain("schemes in force: digest\n");
    const entries = shown.nodes;
    expect(entries.length).toBeGreaterThanOrEqual(9);
    for (const entry of entries) {
      expect(
        entry.acl.filter((a) => a.scheme !== "digest"),
        entry.path,
      ).toEqual([]);
      expect(entry.acl.find((a) => a.id === ADMIN_ID)?.perms, entry.path).toBe("cdrwa");
      expect(
        entry.acl.some((a) => a.id === AGENT_ID),
        entry.path,
      ).toBe(true);
      expect(entry.acl, entry.path).toHaveLength(2);
    }

    // Debian's client, as admin: the app node's ACL really is what acl show says.
    const acl = await zkShell(server, [`addauth digest ${ADMIN}`, `getAcl ${chroot}/apps/web`, `getAcl ${chroot}`]);
    expect(acl.stdout).toContain(`'digest,'${ADMIN_ID}\n: cdrwa`);
    expect(acl.stdout).toContain(`'digest,'${AGENT_ID}\n: r`);
    expect(acl.stdout).not.toContain("'world");
  });

  test("admin publishes (exit 0); the agent identity cannot (exit 3, spec unchanged, checked as admin with zkCli)", async () => {
    expectOk(await cli(connect, ["--auth", ADMIN, "app", "create", "web", "1.1"]));
    expect(JSON.parse(await zkGetAsAdmin(server, `${chroot}/apps/web`)).version).toBe("1.1");

    const asAgent = await cli(connect, ["--auth", AGENT, "app", "create", "web", "6.6.6"]);
    expectNotAuthorised(asAgent);
    expect(asAgent.stderr).toContain("/apps/web");
    // Nor any other spec change, nor a new app.
    expectNotAuthorised(await cli(connect, ["--auth", AGENT, "app", "set-slots", "web", "50"]));
    expectNotAuthorised(await cli(connect, ["--auth", AGENT, "app", "pause", "web"]));
    expectNotAuthorised(await cli(connect, ["--auth", AGENT, "app", "delete", "web"]));
    expectNotAuthorised(await cli(connect, ["--auth", AGENT, "app", "create", "evil", "1.0", ...fileCommands("evil")]));
    // A wrong admin password is just another identity: refused too.
    expectNotAuthorised(await cli(connect, ["--auth", `admin:${WRONG_PW}`, "app", "create", "web", "6.6.6"]));

    const spec = JSON.parse(await zkGetAsAdmin(server, `${chroot}/apps/web`)) as Record<string, unknown>;
    expect(spec.version).toBe("1.1");
    expect(spec.previousVersion).toBe("1.0");
    const listed = await zkShell(server, [`addauth digest ${ADMIN}`, `ls ${chroot}/apps`]);
    expect(listed.stdout).toContain("[web]");
    // The agent identity may read the spec.
    const shown = await cli(connect, ["--auth", AGENT, "app", "show", "web", "--json"]);
    expectOk(shown);
    expect(record(JSON.parse(shown.stdout), "app show").version).toBe("1.1");
  });

  test("anonymous: cannot publish, cannot read (app show/list exit 3); zkCli without auth gets Insufficient permission", async () => {
    expectNotAuthorised(await cli(connect, ["app", "create", "web", "6.6.6"]));
    expectNotAuthorised(await cli(connect, ["app", "show", "web"]));
    expectNotAuthorised(await cli(connect, ["app", "list"]));
    expectNotAuthorised(await cli(connect, ["status"]));
    await expect(zkCliGet(server, `${chroot}/apps/web`)).rejects.toThrow(/Insufficient permission|NoAuth/);
    expect(JSON.parse(await zkGetAsAdmin(server, `${chroot}/apps/web`)).version).toBe("1.1");
  });

  test("a raw agent-identity client cannot change specs, history, ACLs, or create apps", async () => {
    const asAgent = await raw(connect, [{ user: "agent", password: AGENT_PW }]);
    await asAgent.adoptTreeAcl();
    await expect(asAgent.set("/apps/web", Buffer.from("{}"))).rejects.toMatchObject({ kind: "noAuth" });
    await expect(asAgent.delete("/apps/web/history")).rejects.toMatchObject({ kind: "noAuth" });
    await expect(asAgent.create("/apps/web/history/h-", Buffer.from("{}"), "persistentSequential")).rejects.toMatchObject({
      kind: "noAuth",
    });
    await expect(asAgent.create("/apps/evil", Buffer.from("{}"))).rejects.toMatchObject({ kind: "noAuth" });
    await expect(asAgent.setAcl("/", [{ scheme: "world", id: "anyone", perms: Perm.all }])).rejects.toMatchObject({ kind: "noAuth" });
    await expect(asAgent.setAcl("/apps/web/hosts", [{ scheme: "world", id: "anyone", perms: Perm.all }])).rejects.toMatchObject({
      kind: "noAuth",
    });
    expect(JSON.parse(await zkGetAsAdmin(server, `${chroot}/apps/web`)).version).toBe("1.1");
  });

  // Regression (was a bug: src/zk/client.ts adoptTreeAcl + src/zk/acl-policy.ts identitiesFromAcl): ZooKeeper ≥ 3.6
  // masks digest ids in getACL answers to callers without ADMIN permission ("admin:x",
  // "agent:x" — see FinalRequestProcessor, getACL). The agent identity only has READ on the
  // chroot, so adoptTreeAcl() "learns" the identities admin:x / agent:x, and lockedAcl() then
  // gives every node the agent creates (its presence, hosts/<host>, failures/…, lock/ and
  // leases/ nodes) an ACL that matches nobody. Effects: the agent cannot update its own status
  // ("not authorised (/apps/web/hosts/h1)" right after taking a slot — so no agent with agent
  // credentials ever deploys on a locked tree), the admin cannot read those nodes (zkCli:
  // "Insufficient permission"), and a later `acl init` (setAcl needs ADMIN) fails on them.
  // Repro: acl init; `conveyor --auth agent:pw agent`; publish; the agent logs "unexpected error
  // … not authorised (/apps/<app>/hosts/<host>)". Fixed by: never adopt masked ids (a digest id must be
  // user:<28-char base64 SHA-1>; identitiesFromAcl should return undefined for ":x"), and let
  // agents learn the admin id some other way — e.g. `acl init` stores {admin, agent} digest ids
  // in the chroot node's data (readable by the agent), or agents create nodes with
  // [digest admin-id from that data, auth:: cdrw] (the "auth" scheme expands to the creator).
  test("a node the agent identity creates gets the locked ACL with the real ids (agent and admin can use it)", async () => {
    const tree = await lockedTree("acl-probe");
    const asAgent = await raw(tree.connect, [{ user: "agent", password: AGENT_PW }]);
    await asAgent.adoptTreeAcl();
    await asAgent.create("/apps/web/failures/probe", Buffer.from("{}"));
    const admin = await raw(tree.connect, [{ user: "admin", password: ADMIN_PW }]);
    expect(await admin.getAcl("/apps/web/failures/probe")).toEqual([ADMIN_ACE, AGENT_WRITE]);
    expect((await asAgent.get("/apps/web/failures/probe")).data.toString()).toBe("{}");
    await asAgent.delete("/apps/web/failures/probe");
  });

  // Same regression as above, through the compiled agent.
  test("an agent with --auth agent:… deploys on a locked tree; the nodes it created carry the locked ACL", async () => {
    const tree = await lockedTree("acl-agent");
    const agent = await startAgent(tree.connect, "h1", ["--auth", AGENT]);
    try {
      const admin = await raw(tree.connect, [{ user: "admin", password: ADMIN_PW }]);
      await waitFor(() => admin.exists("/agents/h1"), 10_000, "h1 to register");
      expect(await admin.getAcl("/agents/h1")).toEqual([ADMIN_ACE, AGENT_WRITE]);
      await waitFor(
        () => existsSync(join(agent.dir, "VERSION.web")) && readFileSync(join(agent.dir, "VERSION.web"), "utf8").trim() === "1.0",
        20_000,
        "h1 to deploy 1.0",
      );
      await waitFor(
        async () => (await statusJson(tree.connect, ["--auth", ADMIN])).apps[0]?.hosts[0]?.state === "current",
        10_000,
        "h1 current",
      );
      const fleet = await statusJson(tree.connect, ["--auth", ADMIN]);
      expect(fleet.apps.find((a) => a.name === "web")?.hosts).toEqual([
        expect.objectContaining({ host: "h1", state: "current", version: "1.0" }),
      ]);
      expect(fleet.agents.map((a) => a.host)).toEqual(["h1"]);
      expect(await admin.getAcl("/apps/web/hosts/h1")).toEqual([ADMIN_ACE, AGENT_WRITE]);
      // And what Debian's client sees, as admin: the admin's own entry, the agent's, no world.
      const acl = await zkShell(tree.server, [
        `addauth digest ${ADMIN}`,
        `getAcl ${tree.chroot}/agents/h1`,
        `getAcl ${tree.chroot}/apps/web/hosts/h1`,
      ]);
      expect(acl.stdout.split(`'digest,'${ADMIN_ID}\n: cdrwa`)).toHaveLength(3);
      // (the last getAcl's output may end without a newline)
      expect(acl.stdout.split(`'digest,'${AGENT_ID}\n: cdrw`).filter((part, i) => i === 0 || !part.startsWith("a"))).toHaveLength(3);
      expect(acl.stdout).not.toContain("'world");
      // A new app published after locking is served too.
      expectOk(await cli(tree.connect, ["--auth", ADMIN, "app", "create", "api", "2.0", ...fileCommands("api")]));
      await waitFor(() => existsSync(join(agent.dir, "VERSION.api")), 20_000, "h1 to deploy api");
      // The writes that could be refused (its status, then its slot's release) follow the deploy.
      await waitFor(
        async () => (await statusJson(tree.connect, ["--auth", ADMIN])).apps.find((a) => a.name === "api")?.hosts[0]?.state === "current",
        10_000,
        "h1 current on api",
      );
      await waitFor(async () => (await admin.children(leasesDir("api"))).length === 0, 5_000, "h1's slot on api released");
      expect(agent.output).not.toMatch(/not authorised/);
    } finally {
      await agent.stop();
    }
  });

  test("a garbled /acl on a locked tree: nothing is created world-open — the admin's new nodes are the admin's only, agents create none — acl show says INVALID, acl init repairs", async () => {
    const tree = await lockedTree("acl-garbled");
    const admin = await raw(tree.connect, [{ user: "admin", password: ADMIN_PW }]);
    await admin.set("/acl", Buffer.from('{"admin":"digest:admin"}'));
    const warning = "warning: /acl is not a valid acl init record";
    // The brake still works (a pause writes a history entry: a new node).
    const paused = await cli(tree.connect, ["--auth", ADMIN, "app", "pause", "web"]);
    expect({ code: paused.code, warned: paused.stderr.startsWith(warning) }).toEqual({ code: 0, warned: true });
    expect(paused.stderr.trim().split("\n")).toHaveLength(1);
    const created = await cli(tree.connect, ["--auth", ADMIN, "app", "create", "z2", "1.0", ...fileCommands("z2")]);
    expect(created.code, created.stderr).toBe(0);
    for (const path of ["/apps/z2", "/apps/z2/hosts", "/apps/z2/leases", "/apps/z2/lock"]) {
      expect(await admin.getAcl(path), path).toEqual([ADMIN_ACE]);
    }
    const shown = await cli(tree.connect, ["--auth", ADMIN, "acl", "show"]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain("/acl INVALID: run conveyor acl init as the admin");
    // An agent says so and creates nothing (it cannot register).
    const agent = await startAgent(tree.connect, "h1", ["--auth", AGENT]);
    await agent.waitForLog(/not a valid acl init record/, 10_000);
    await agent.stop();
    expect(await admin.exists("/agents/h1")).toBeNull();
    const init = await cli(tree.connect, ["--auth", ADMIN, "acl", "init", "--agent-auth", AGENT]);
    expect(init.code, init.stderr).toBe(0);
    expect((await cli(tree.connect, ["--auth", ADMIN, "acl", "show"])).stdout).toContain("locked by acl init");
    expect(await admin.getAcl("/apps/z2/hosts")).toEqual([ADMIN_ACE, AGENT_WRITE]);
  });

  test("locked tree, leases/ and /agents deleted by hand: the agent says it may not re-create them and waits; the admin's next change (resume) repairs both and the rollout goes on", async () => {
    const tree = await lockedTree("acl-repair");
    const agent = await startAgent(tree.connect, "h1", ["--auth", AGENT]);
    const admin = await raw(tree.connect, [{ user: "admin", password: ADMIN_PW }]);
    await waitFor(
      async () => (await statusJson(tree.connect, ["--auth", ADMIN])).apps[0]?.hosts[0]?.state === "current",
      20_000,
      "h1 current on 1.0",
    );
    expectOk(await cli(tree.connect, ["--auth", ADMIN, "app", "pause", "web"]));
    expectOk(await cli(tree.connect, ["--auth", ADMIN, "app", "create", "web", "2.0"]));
    await waitFor(async () => (await admin.children(lockDir("web"))).length === 1, 10_000, "h1 to queue behind the pause");
    await admin.deleteRecursive(leasesDir("web"));
    await admin.deleteRecursive("/agents");
    await agent.waitForLog(/a node of the app is missing and this agent may not re-create it/, 10_000);
    await agent.waitForLog(/cannot register: \/agents is missing and this agent may not re-create it/, 10_000);
    expect(await admin.exists(leasesDir("web"))).toBeNull();
    expectOk(await cli(tree.connect, ["--auth", ADMIN, "app", "resume", "web"]));
    await waitFor(
      () => existsSync(join(agent.dir, "VERSION.web")) && readFileSync(join(agent.dir, "VERSION.web"), "utf8").trim() === "2.0",
      20_000,
      "h1 to deploy 2.0",
    );
    await waitFor(() => admin.exists("/agents/h1"), 10_000, "h1 to register again");
    expect(await admin.getAcl(leasesDir("web"))).toEqual([ADMIN_ACE, AGENT_WRITE]);
    expect(await admin.getAcl("/agents/h1")).toEqual([ADMIN_ACE, AGENT_WRITE]);
  });

  test("the admin's nodes are locked from birth: a new app and its history after acl init; anonymous reads nothing", async () => {
    expectOk(await cli(connect, ["--auth", ADMIN, "app", "create", "api", "2.0", ...fileCommands("api")]));
    const admin = await raw(connect, [{ user: "admin", password: ADMIN_PW }]);
    expect(await admin.getAcl("/apps/api")).toEqual([ADMIN_ACE, AGENT_READ]);
    for (const dir of ["lock", "leases", "hosts", "failures"])
      expect(await admin.getAcl(`/apps/api/${dir}`)).toEqual([ADMIN_ACE, AGENT_WRITE]);
    expect(await admin.getAcl("/apps/api/history")).toEqual([ADMIN_ACE, AGENT_READ]);
    const [entry] = await admin.children("/apps/api/history");
    expect(await admin.getAcl(`/apps/api/history/${entry}`)).toEqual([ADMIN_ACE, AGENT_READ]);
    const anonymous = await raw(connect);
    await expect(anonymous.get("/apps/api")).rejects.toMatchObject({ kind: "noAuth" });
    await expect(anonymous.children("/apps/api/history")).rejects.toMatchObject({ kind: "noAuth" });
  });

  test("an anonymous agent on the locked tree exits 3 saying it is not authorised", async () => {
    const agent = await startAgent(connect, "anon");
    const exit = await Promise.race([agent.exited, Bun.sleep(15_000).then(() => undefined)]);
    expect(exit?.code, agent.output).toBe(3);
    expect(agent.output).toContain("not authorised");
    expect(agent.output).not.toMatch(STACK_LINE);
  });

  test("credentials from --auth-file work (CLI and acl show); CONVEYOR_AUTH too", async () => {
    const dir = mkdtempSync(join(processTempDir(), "authfile-"));
    const adminFile = join(dir, "admin.cred");
    writeFileSync(adminFile, `${ADMIN}\n`);
    chmodSync(adminFile, 0o600);
    const agentFile = join(dir, "agent.cred");
    writeFileSync(agentFile, `${AGENT}\n`);
    expectOk(await cli(connect, ["--auth-file", adminFile, "app", "create", "web", "1.2"]));
    expect(JSON.parse(await zkGetAsAdmin(server, `${chroot}/apps/web`)).version).toBe("1.2");
    const shown = await cli(connect, ["--auth-file", adminFile, "acl", "show"]);
    expectOk(shown);
    expect(shown.stdout).toContain("digest:agent:r");
    expectNotAuthorised(await cli(connect, ["--auth-file", agentFile, "app", "create", "web", "6.6.6"]));
    expectOk(await cli(connect, ["app", "pause", "web"], { CONVEYOR_AUTH: ADMIN }));
    expectOk(await cli(connect, ["app", "resume", "web"], { CONVEYOR_AUTH: ADMIN }));
    expectNotAuthorised(await cli(connect, ["app", "pause", "web"], { CONVEYOR_AUTH: AGENT }));
    // Re-running acl init as admin, from files, is idempotent.
    expectOk(await cli(connect, ["--auth-file", adminFile, "acl", "init", "--agent-auth-file", agentFile]));
    expectNotAuthorised(await cli(connect, ["--auth", AGENT, "app", "create", "web", "6.6.6"]));
    expect(JSON.parse(await zkGetAsAdmin(server, `${chroot}/apps/web`)).version).toBe("1.2");
  });

  test("acl init refuses: the same user for admin and agent (exit 2), no --auth (exit 2), no --agent-auth (exit 2)", async () => {
    const same = await cli(connect, ["--auth", ADMIN, "acl", "init", "--agent-auth", `admin:${AGENT_PW}`]);
    expectUsage(same, ['"admin"']);
    const fresh = zk.withChroot("acl-noauth");
    const noAuth = await cli(fresh, ["acl", "init", "--agent-auth", AGENT]);
    expectUsage(noAuth, ["--auth"]);
    const noAgent = await cli(fresh, ["--auth", ADMIN, "acl", "init"]);
    expectUsage(noAgent, ["--agent-auth"]);
    const malformed = await cli(fresh, ["--auth", ADMIN, "acl", "init", "--agent-auth", "agent"]);
    expectUsage(malformed, ["--agent-auth"]);
    // Nothing was written: not even the chroot exists.
    expect(await zkCliLs(splitConnect(fresh).server, "/")).not.toContain(splitConnect(fresh).chroot.slice(1));
    // The locked tree is unchanged: the agent identity still cannot publish.
    expectNotAuthorised(await cli(connect, ["--auth", AGENT, "app", "create", "web", "6.6.6"]));
  });

  // Regression (was a bug: src/apps/tree-acl.ts:18 via src/cli/commands/acl.ts:31): "admin and agent must differ" is
  // checked inside lockTree, i.e. after withZk connected — and connecting creates the chroot. So
  // `conveyor --zk host/fresh --auth admin:x acl init --agent-auth admin:y` exits 2 but leaves
  // /fresh behind, although exit 2 promises "nothing was written" (session.ts: "Validate every
  // argument before calling this"). Fixed by: compare admin.user and agent.user in aclInit.run before
  // withZk (keep the check in lockTree too).
  test("acl init with the same user for admin and agent writes nothing (not even the chroot)", async () => {
    const fresh = zk.withChroot("acl-same");
    const same = await cli(fresh, ["--auth", ADMIN, "acl", "init", "--agent-auth", `admin:${AGENT_PW}`]);
    expectUsage(same, ['"admin"']);
    expect(await zkCliLs(splitConnect(fresh).server, "/")).not.toContain(splitConnect(fresh).chroot.slice(1));
  });
});

// ---------------------------------------------------------------------------------------------

describe("agent allowlists (local config)", () => {
  test('apps = ["a"]: the agent serves a, never b — b has no host entry for it and status does not count it pending', async () => {
    const connect = zk.withChroot("allow-apps");
    const dir = mkdtempSync(join(processTempDir(), "allow-apps-"));
    const config = join(dir, "only-a.toml");
    writeFileSync(config, '[agent]\napps = ["a"]\n');
    expectOk(await cli(connect, ["app", "create", "a", "1.0", ...fileCommands("a")]));
    expectOk(await cli(connect, ["app", "create", "b", "1.0", ...fileCommands("b")]));
    const onlyA = await startAgent(connect, "only-a", ["--config", config]);
    const all = await startAgent(connect, "all"); // positive control: b is deployable
    await waitFor(() => existsSync(join(all.dir, "VERSION.b")) && existsSync(join(onlyA.dir, "VERSION.a")), 20_000, "a on both, b on all");

    // A new version of b with --wait finishes: only-a is not awaited.
    const wait = await cli(connect, ["app", "create", "b", "2.0", "--wait", "--wait-timeout", "30s"]);
    expect(wait.code, show(wait)).toBe(0);
    expectOk(await cli(connect, ["app", "create", "a", "2.0", "--wait", "--wait-timeout", "30s"]));

    const fleet = await statusJson(connect);
    const a = fleet.apps.find((x) => x.name === "a");
    const b = fleet.apps.find((x) => x.name === "b");
    expect(a?.hosts.map((h) => `${h.host}:${h.state}:${h.version}`).sort()).toEqual(["all:current:2.0", "only-a:current:2.0"]);
    expect(b?.hosts.map((h) => `${h.host}:${h.state}:${h.version}`)).toEqual(["all:current:2.0"]);
    expect(b?.pendingAgents).not.toContain("only-a");
    const onlyB = await cli(connect, ["status", "b", "--json"]);
    expectOk(onlyB);
    const bView = (JSON.parse(onlyB.stdout) as { apps: AppJson[] }).apps;
    expect(bView.map((x) => x.name)).toEqual(["b"]);
    expect(bView[0]?.pendingAgents).toEqual([]);
    expect(bView[0]?.hosts.map((h) => h.host)).toEqual(["all"]);
    expect(b?.state).toBe("converged");
    expect(fleet.agents.find((x) => x.host === "only-a")?.apps).toEqual(["a"]);
    expect(await zkCliLs(splitConnect(connect).server, `${splitConnect(connect).chroot}/apps/b/hosts`)).toEqual(["all"]);
    expect(existsSync(join(onlyA.dir, "VERSION.b"))).toBe(false);
    expect(onlyA.output).not.toMatch(/app=b\b/);
  });

  test("allowCommands: a command matching no pattern fails the host as refused, runs nothing and takes no slot; a matching one runs", async () => {
    const connect = zk.withChroot("allow-cmds");
    const dir = mkdtempSync(join(processTempDir(), "allow-cmds-"));
    const binDir = join(dir, "bin");
    const serverDir = join(dir, "server");
    mkdirSync(binDir);
    mkdirSync(serverDir);
    const log = join(dir, "deploy.log");
    writeFileSync(
      join(binDir, "deploy-ok"),
      `#!/bin/sh\necho "start $CONVEYOR_HOST $1 $CONVEYOR_APP" >> '${log}'\necho "$1" > "VERSION.$CONVEYOR_APP"\necho "end $CONVEYOR_HOST $1 $CONVEYOR_APP" >> '${log}'\n`,
    );
    chmodSync(join(binDir, "deploy-ok"), 0o755);
    const config = join(dir, "agent.toml");
    // TOML literal strings: backslashes and quotes as written.
    writeFileSync(config, "[agent]\nallowCommands = ['cat VERSION.*', 'deploy-ok .*', 'deploy-ok.*', '/bin/true|deploy-ok[.]sh .*']\n");

    const getVersion = (app: string): string => `cat VERSION.${app} 2>/dev/null || true`;
    const refused: { app: string; getVersionCmd: string; deployCmd: string; marker: string; which: string }[] = [
      // Matches no pattern at all.
      {
        app: "nomatch",
        getVersionCmd: getVersion("nomatch"),
        deployCmd: "touch NOMATCH.marker",
        marker: "NOMATCH.marker",
        which: "deploy-cmd",
      },
      // Whole-command match: a pattern that matches the end must not allow a prefix.
      {
        app: "chained",
        getVersionCmd: getVersion("chained"),
        deployCmd: "touch CHAINED.marker; deploy-ok %(version)s",
        marker: "CHAINED.marker",
        which: "deploy-cmd",
      },
      {
        app: "rmchain",
        getVersionCmd: getVersion("rmchain"),
        deployCmd: "rm -f x; touch RM.marker; deploy-ok",
        marker: "RM.marker",
        which: "deploy-cmd",
      }, // vs 'deploy-ok.*'
      // An alternation in a pattern stays anchored on both sides: ^(?:a|b)$, not ^a|b$.
      {
        app: "alternation",
        getVersionCmd: getVersion("alternation"),
        deployCmd: "touch ALT.marker; deploy-ok.sh %(version)s",
        marker: "ALT.marker",
        which: "deploy-cmd",
      },
      // "." does not match a newline: a second line is not smuggled in after an allowed first one.
      {
        app: "newline",
        getVersionCmd: getVersion("newline"),
        deployCmd: "deploy-ok %(version)s\ntouch NEWLINE.marker",
        marker: "NEWLINE.marker",
        which: "deploy-cmd",
      },
      // get-version-cmd is checked too (before it would run).
      {
        app: "getversion",
        getVersionCmd: "touch GV.marker; cat VERSION.getversion",
        deployCmd: "deploy-ok %(version)s",
        marker: "GV.marker",
        which: "get-version-cmd",
      },
    ];
    for (const r of refused) {
      expectOk(await cli(connect, ["app", "create", r.app, "1.0", "--get-version-cmd", r.getVersionCmd, "--deploy-cmd", r.deployCmd]));
    }
    expectOk(
      await cli(connect, [
        "app",
        "create",
        "good",
        "1.0",
        "--get-version-cmd",
        getVersion("good"),
        "--deploy-cmd",
        "deploy-ok %(version)s",
      ]),
    );

    const agent = await spawnAgentWithPath(connect, "guarded", serverDir, binDir, config);
    await agent.waitForLog(/agent started/, 15_000);
    const admin = await raw(connect);
    await waitFor(
      async () => {
        const fleet = await readFleetStatus(admin);
        const states = fleet.apps.map((a) => `${a.name}:${a.hosts[0]?.state ?? "-"}`);
        return (
          states.length === refused.length + 1 && fleet.apps.every((a) => a.hosts[0]?.state === (a.name === "good" ? "current" : "failed"))
        );
      },
      20_000,
      "good current and every refused app failed",
    );

    const fleet = await statusJson(connect);
    for (const r of refused) {
      const view = fleet.apps.find((a) => a.name === r.app);
      const host = view?.hosts[0] as (HostJson & { error?: string }) | undefined;
      expect(host?.state, r.app).toBe("failed");
      expect(host?.error, r.app).toContain("refused by local policy");
      expect(host?.error, r.app).toContain(r.which);
      // The command did not run, and no slot was taken: no queue or lease node ever existed.
      expect(existsSync(join(serverDir, r.marker)), r.app).toBe(false);
      expect((await admin.exists(lockDir(r.app)))?.cversion, `${r.app} lock/`).toBe(0);
      expect((await admin.exists(leasesDir(r.app)))?.cversion, `${r.app} leases/`).toBe(0);
    }
    expect(readdirMarkers(serverDir)).toEqual([]);
    // The allowed command ran (through the slot), and only it.
    const lines = readFileSync(log, "utf8").trim().split("\n");
    expect(lines).toEqual(["start guarded 1.0 good", "end guarded 1.0 good"]);
    expect(readFileSync(join(serverDir, "VERSION.good"), "utf8").trim()).toBe("1.0");
    expect((await admin.exists(leasesDir("good")))?.cversion).toBeGreaterThan(0);
    expect(fleet.apps.find((a) => a.name === "good")?.hosts[0]).toMatchObject({ state: "current", version: "1.0" });
    expect(pidAlive(agent.pid)).toBe(true);
  });
});

function readdirMarkers(dir: string): string[] {
  return [...new Bun.Glob("*.marker").scanSync({ cwd: dir })];
}

describe("secrets", () => {
  test("an agent given CONVEYOR_AUTH passes it to none of its commands (their output is published); their own variables are there", async () => {
    const tree = await lockedTree("env-secret");
    const env = `env | grep '^CONVEYOR_' | sort > ENV.%(version)s; echo %(version)s > VERSION.dump`;
    expectOk(
      await cli(tree.connect, [
        "--auth",
        ADMIN,
        "app",
        "create",
        "dump",
        "1.0",
        "--get-version-cmd",
        "cat VERSION.dump 2>/dev/null || true",
        "--deploy-cmd",
        env,
      ]),
    );
    const a = await agents.start({ connect: tree.connect, hostId: "h1", env: { CONVEYOR_AUTH: AGENT } });
    startedAgents.push(a);
    await waitFor(() => existsSync(join(a.dir, "VERSION.dump")), 20_000, "h1 to deploy dump 1.0");
    const seen = readFileSync(join(a.dir, "ENV.1.0"), "utf8");
    expect(seen).toContain("CONVEYOR_APP=dump\n");
    expect(seen).toContain("CONVEYOR_HOST=h1\n");
    expect(seen).not.toContain("CONVEYOR_AUTH");
    expect(seen).not.toContain(AGENT_PW);
    // The agent itself did authenticate from the variable: it wrote its status on the locked tree.
    expect(a.output).not.toMatch(/not authorised/);
  });

  test("no password ever appears in any output of this file (CLI stdout/stderr, agent logs)", async () => {
    // Agents still running are stopped first so their whole output is in.
    await Promise.all(spawned.splice(0).map((a) => a.stop()));
    const all = [...outputs, ...startedAgents.map((a) => ({ what: `agent ${a.hostId}`, text: a.output }))];
    expect(all.length).toBeGreaterThan(20);
    for (const { what, text } of all) {
      for (const password of PASSWORDS) expect(text.includes(password), `${what} printed a password:\n${text}`).toBe(false);
    }
  });
});
