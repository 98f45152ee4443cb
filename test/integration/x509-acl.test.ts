// x509 identities (issue 13), end to end: a real ZooKeeper with its secureClientPort, client
// certificates required and authProvider.x509 on, so a connection's certificate subject is a
// ZooKeeper identity. `acl init` locks the tree for digest identities, certificate subjects, or
// both; the same ACL table then holds whichever way a client proves who it is: the admin
// publishes, an agent deploys but cannot publish, anybody else reads nothing.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type AgentProcess, useAgentProcesses } from "../harness/agent-process.ts";
import { type CertPair, type Pki, makePki } from "../harness/certs.ts";
import { type CliResult, processTempDir, runCli, useCli } from "../harness/cli.ts";
import { waitFor } from "../harness/wait.ts";
import { type ZooKeeperServer, startZooKeeper, uniqueChroot } from "../harness/zookeeper.ts";

setDefaultTimeout(60_000);
useCli();
const agents = useAgentProcesses();

let pki: Pki;
let zk: ZooKeeperServer;
let ci: CertPair;
let agentCert: CertPair;
let stranger: CertPair;

beforeAll(async () => {
  pki = makePki(mkdtempSync(join(processTempDir(), "pki-x509-")));
  ci = pki.client("ci");
  agentCert = pki.client("agent");
  stranger = pki.client("stranger");
  zk = await startZooKeeper({ tls: { keyStore: pki.serverKeyStore, trustStore: pki.ca } });
}, 70_000);

afterAll(async () => {
  await zk?.stop();
}, 20_000);

const ADMIN = "admin:admin-pw-3f9c";
const AGENT = "agent:agent-pw-77d1";
const CMDS = ["--get-version-cmd", "cat VERSION 2>/dev/null || true", "--deploy-cmd", "echo %(version)s > VERSION"];

function show(r: CliResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** The compiled CLI over mutual TLS as `who` (a certificate), plus any --auth in `args`. */
function cli(connect: string, who: CertPair, args: string[]): Promise<CliResult> {
  return runCli(["--zk", connect, "--tls-ca", pki.ca, "--tls-cert", who.cert, "--tls-key", who.key, ...args]);
}

function expectOk(r: CliResult): void {
  expect({ code: r.code, stderr: r.stderr }, show(r)).toEqual({ code: 0, stderr: "" });
}

function expectNotAuthorised(r: CliResult): void {
  expect(r.code, show(r)).toBe(3);
  expect(r.stderr, show(r)).toContain("not authorised");
  expect(r.stderr.trim().split("\n"), show(r)).toHaveLength(1);
}

async function startAgent(connect: string, hostId: string, who: CertPair, auth: string[] = []): Promise<AgentProcess> {
  return agents.start({ connect, hostId, args: ["--tls-ca", pki.ca, "--tls-cert", who.cert, "--tls-key", who.key, ...auth] });
}

async function untilDeployed(agent: AgentProcess, version: string): Promise<void> {
  const file = join(agent.dir, "VERSION");
  await waitFor(() => existsSync(file) && readFileSync(file, "utf8").trim() === version, 20_000, `${agent.hostId} to deploy ${version}`);
}

/** The app's version as the admin reads it. */
async function versionAsAdmin(connect: string, adminArgs: string[]): Promise<string> {
  const r = await cli(connect, ci, [...adminArgs, "app", "show", "web", "--json"]);
  expectOk(r);
  return (JSON.parse(r.stdout) as { version: string }).version;
}

describe("x509 identities with acl init", () => {
  test("x509 only: the ci certificate publishes, the agent certificate deploys but cannot publish, a stranger reads nothing", async () => {
    const connect = `${zk.secureConnectString}${uniqueChroot("x509-only")}`;
    expectOk(await cli(connect, ci, ["app", "create", "web", "1.0", ...CMDS]));
    const init = await cli(connect, ci, ["acl", "init", "--admin-x509", ci.subject, "--agent-x509", agentCert.subject]);
    expectOk(init);
    expect(init.stdout).toContain(`admin "x509:${ci.subject}"`);

    const shown = await cli(connect, ci, ["acl", "show", "--json"]);
    expectOk(shown);
    const acl = JSON.parse(shown.stdout) as { schemes: string[]; admin: string[]; agent: string[]; nodes: { path: string }[] };
    expect(acl).toMatchObject({ schemes: ["x509"], admin: [`x509:${ci.subject}`], agent: [`x509:${agentCert.subject}`] });
    const text = await cli(connect, ci, ["acl", "show"]);
    expect(text.stdout).toContain("schemes in force: x509\n");
    const hostsRow = text.stdout.split("\n").find((line) => line.startsWith("/apps/web/hosts "));
    expect(hostsRow?.replace(/^\S+\s+/, "")).toBe(`x509:${ci.subject}:cdrwa, x509:${agentCert.subject}:cdrw`);

    const agent = await startAgent(connect, "h1", agentCert);
    await untilDeployed(agent, "1.0");
    expectOk(await cli(connect, ci, ["app", "create", "web", "1.1"]));
    await untilDeployed(agent, "1.1");

    expectNotAuthorised(await cli(connect, agentCert, ["app", "create", "web", "6.6.6"]));
    expectNotAuthorised(await cli(connect, agentCert, ["app", "set-slots", "web", "5"]));
    expectNotAuthorised(await cli(connect, stranger, ["app", "list"]));
    expectNotAuthorised(await cli(connect, stranger, ["app", "create", "web", "6.6.6"]));
    expect(await versionAsAdmin(connect, [])).toBe("1.1");
    // The agent's certificate still reads what it must (status) though it writes no spec.
    // (Polled: the VERSION file is the deploy command's; the status follows the agent's check.)
    const host = await waitFor(
      async () => {
        const status = await cli(connect, agentCert, ["status", "web", "--json"]);
        expectOk(status);
        const h1 = JSON.parse(status.stdout).apps[0].hosts[0];
        return h1?.state === "current" ? h1 : undefined;
      },
      10_000,
      "the agent's certificate to read h1 current",
    );
    expect(host).toMatchObject({ host: "h1", version: "1.1" });
  });

  test("digest over TLS: the same table with passwords, sent encrypted", async () => {
    const connect = `${zk.secureConnectString}${uniqueChroot("x509-digest")}`;
    expectOk(await cli(connect, ci, ["--auth", ADMIN, "acl", "init", "--agent-auth", AGENT]));
    const shown = JSON.parse((await cli(connect, ci, ["--auth", ADMIN, "acl", "show", "--json"])).stdout) as { schemes: string[] };
    expect(shown.schemes).toEqual(["digest"]);
    expectOk(await cli(connect, stranger, ["--auth", ADMIN, "app", "create", "web", "1.0", ...CMDS]));
    const agent = await startAgent(connect, "h1", stranger, ["--auth", AGENT]);
    await untilDeployed(agent, "1.0");
    // The ci certificate is no identity on this tree: without the password it gets nothing.
    expectNotAuthorised(await cli(connect, ci, ["app", "list"]));
    expectNotAuthorised(await cli(connect, stranger, ["--auth", AGENT, "app", "create", "web", "6.6.6"]));
    expect(await versionAsAdmin(connect, ["--auth", ADMIN])).toBe("1.0");
  });

  test("both: each role by password or by certificate, either one alone is enough", async () => {
    const connect = `${zk.secureConnectString}${uniqueChroot("x509-both")}`;
    const init = await cli(connect, ci, [
      "--auth",
      ADMIN,
      "acl",
      "init",
      "--admin-x509",
      ci.subject,
      "--agent-auth",
      AGENT,
      "--agent-x509",
      agentCert.subject,
    ]);
    expectOk(init);
    const shown = JSON.parse((await cli(connect, ci, ["acl", "show", "--json"])).stdout) as Record<string, unknown>;
    expect(shown).toMatchObject({
      schemes: ["digest", "x509"],
      admin: ["digest:admin", `x509:${ci.subject}`],
      agent: ["digest:agent", `x509:${agentCert.subject}`],
    });
    // Admin by certificate alone, then by password alone (with a certificate that is nobody).
    expectOk(await cli(connect, ci, ["app", "create", "web", "1.0", ...CMDS]));
    expectOk(await cli(connect, stranger, ["--auth", ADMIN, "app", "create", "web", "1.1"]));
    // One agent by certificate, one by password.
    const byCert = await startAgent(connect, "h1", agentCert);
    const byPassword = await startAgent(connect, "h2", stranger, ["--auth", AGENT]);
    await Promise.all([untilDeployed(byCert, "1.1"), untilDeployed(byPassword, "1.1")]);
    expectNotAuthorised(await cli(connect, agentCert, ["app", "create", "web", "6.6.6"]));
    expectNotAuthorised(await cli(connect, stranger, ["--auth", AGENT, "app", "create", "web", "6.6.6"]));
    expectNotAuthorised(await cli(connect, stranger, ["app", "list"]));
    expect(await versionAsAdmin(connect, [])).toBe("1.1");
  });

  test("acl init refuses to lock out its caller: an admin subject that is not our certificate changes nothing (exit 1)", async () => {
    const connect = `${zk.secureConnectString}${uniqueChroot("x509-lockout")}`;
    expectOk(await cli(connect, ci, ["app", "create", "web", "1.0", ...CMDS]));
    const r = await cli(connect, stranger, ["acl", "init", "--admin-x509", ci.subject, "--agent-x509", agentCert.subject]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr.trim().split("\n"), show(r)).toHaveLength(1);
    expect(r.stderr, show(r)).toContain("none of the admin identities");
    expect(r.stderr, show(r)).toContain(stranger.subject);
    // Still world-open: the stranger reads and writes as before.
    const shown = JSON.parse((await cli(connect, stranger, ["acl", "show", "--json"])).stdout) as { locked: boolean; schemes: string[] };
    expect(shown).toMatchObject({ locked: false, schemes: ["world"] });
    expectOk(await cli(connect, stranger, ["app", "create", "web", "1.1"]));
  });

  test("a subject in the wrong form exits 2 naming it, before connecting", async () => {
    const connect = `${zk.secureConnectString}${uniqueChroot("x509-bad")}`;
    const cases: [string[], string][] = [
      [["--admin-x509", "/O=Conveyor Test/CN=ci", "--agent-x509", "CN=agent"], "OpenSSL's"],
      [["--admin-x509", "CN=ci, O=Conveyor Test", "--agent-x509", "CN=agent"], "no spaces"],
      [["--admin-x509", "CN=ci", "--agent-x509", "CN=ci"], "must differ"],
      [["--admin-x509", "CN=ci"], "needs an agent identity"],
      [["--agent-x509", "CN=agent"], "needs an admin identity"],
    ];
    for (const [flags, message] of cases) {
      const r = await cli(connect, ci, ["acl", "init", ...flags]);
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr.trim().split("\n"), show(r)).toHaveLength(1);
      expect(r.stderr, show(r)).toContain(message);
    }
  });
});
