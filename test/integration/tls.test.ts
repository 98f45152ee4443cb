// TLS to ZooKeeper (issue 13), end to end: a real ZooKeeper serving its secureClientPort (Netty,
// PEM stores, client certificates required), certificates made with openssl, the compiled CLI
// and agents. What travels between client and server is captured by the harness's proxy.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type AgentProcess, useAgentProcesses } from "../harness/agent-process.ts";
import { type Pki, makePki } from "../harness/certs.ts";
import { type CliResult, processTempDir, runCli, useCli } from "../harness/cli.ts";
import { type Proxy as TcpProxy, startProxy } from "../harness/tcp-proxy.ts";
import { waitFor } from "../harness/wait.ts";
import { type ZooKeeperServer, startZooKeeper, uniqueChroot } from "../harness/zookeeper.ts";

useCli();
const agents = useAgentProcesses();

let pki: Pki;
let otherCa: Pki;
let zk: ZooKeeperServer;
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  const dir = mkdtempSync(join(processTempDir(), "pki-"));
  pki = makePki(join(dir, "ok"));
  otherCa = makePki(join(dir, "other"), "Someone Else's CA");
  zk = await startZooKeeper({ tls: { keyStore: pki.serverKeyStore, trustStore: pki.ca } });
}, 70_000);

afterAll(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await zk?.stop();
}, 20_000);

function secure(chroot: string): string {
  return `${zk.secureConnectString}${chroot}`;
}

function tlsFlags(who: { cert: string; key: string } | undefined, ca = pki.ca): string[] {
  return ["--tls-ca", ca, ...(who ? ["--tls-cert", who.cert, "--tls-key", who.key] : [])];
}

function show(r: CliResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

function expectRefused(r: CliResult, mentions: string): void {
  expect(r.code, show(r)).toBe(3);
  expect(r.stdout, show(r)).toBe("");
  expect(r.stderr.trim().split("\n"), show(r)).toHaveLength(1);
  expect(r.stderr, show(r)).toContain(mentions);
}

const CMDS = ["--get-version-cmd", "cat VERSION 2>/dev/null || true", "--deploy-cmd", "echo %(version)s > VERSION"];

describe("TLS to ZooKeeper", () => {
  test("the CLI and an agent work over mutual TLS: publish, deploy, status", async () => {
    const ci = pki.client("ci");
    const agentCert = pki.client("agent");
    const connect = secure(uniqueChroot("tls-ok"));
    const r = await runCli(["--zk", connect, ...tlsFlags(ci), "app", "create", "web", "1.0", ...CMDS]);
    expect(r.code, show(r)).toBe(0);
    const agent: AgentProcess = await agents.start({ connect, hostId: "h1", args: tlsFlags(agentCert) });
    await waitFor(
      () => existsSync(join(agent.dir, "VERSION")) && readFileSync(join(agent.dir, "VERSION"), "utf8").trim() === "1.0",
      20_000,
      "h1 to deploy 1.0",
    );
    // The file is written by the deploy command; `current` comes after the agent's check of it.
    const host = await waitFor(
      async () => {
        const status = await runCli(["--zk", connect, ...tlsFlags(ci), "status", "web", "--json"]);
        expect(status.code, show(status)).toBe(0);
        const h1 = JSON.parse(status.stdout).apps[0].hosts[0];
        return h1?.state === "current" ? h1 : undefined;
      },
      10_000,
      "status over TLS to say h1 is current",
    );
    expect(host).toMatchObject({ host: "h1", state: "current", version: "1.0" });
  });

  test("the same settings from the environment and from the config file's [tls] table", async () => {
    const ci = pki.client("ci-env");
    const connect = secure(uniqueChroot("tls-env"));
    const env = { CONVEYOR_TLS_CA: pki.ca, CONVEYOR_TLS_CERT: ci.cert, CONVEYOR_TLS_KEY: ci.key };
    const r = await runCli(["--zk", connect, "app", "create", "web", "1.0", ...CMDS], { env });
    expect(r.code, show(r)).toBe(0);
    const config = join(mkdtempSync(join(processTempDir(), "tls-cfg-")), "conveyor.toml");
    writeFileSync(config, `zk = "${connect}"\n[tls]\nca = "${pki.ca}"\ncert = "${ci.cert}"\nkey = "${ci.key}"\n`);
    const listed = await runCli(["--config", config, "app", "list", "--json"]);
    expect(listed.code, show(listed)).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ name: "web", version: "1.0" })]);
  });

  test("refused with exit 3 and one line naming the cause: no client certificate, a CA we do not trust, an expired certificate, a plain connection", async () => {
    const connect = secure(uniqueChroot("tls-refused"));
    expectRefused(await runCli(["--zk", connect, "--connect-timeout", "3s", ...tlsFlags(undefined), "app", "list"]), "certificate");
    const started = performance.now();
    expectRefused(await runCli(["--zk", connect, ...tlsFlags(pki.client("x"), otherCa.ca), "app", "list"]), "not signed by a CA we trust");
    expect(performance.now() - started).toBeLessThan(5_000); // a refused certificate fails at once, not at the 10 s timeout
    const expired = pki.client("late", { expired: true });
    expectRefused(await runCli(["--zk", connect, "--connect-timeout", "3s", ...tlsFlags(expired), "app", "list"]), "expired");
    // Plain TCP to the secure port never falls back to anything: unreachable.
    expectRefused(await runCli(["--zk", connect, "--connect-timeout", "2s", "app", "list"]), "unreachable");
  });

  test("bad TLS settings exit 2 naming them, before connecting", async () => {
    const ci = pki.client("ci-bad");
    const connect = secure(uniqueChroot("tls-bad"));
    const cases: [string[], string][] = [
      [["--tls-cert", ci.cert], "--tls-cert needs --tls-key too"],
      [["--tls-key", ci.key], "--tls-key needs --tls-cert too"],
      [["--tls-ca", ci.key], "holds no PEM certificate"],
      [["--tls-cert", ci.cert, "--tls-key", pki.server.key], "is not the key of --tls-cert"],
      [["--tls-ca", "/nonexistent/ca.pem"], "/nonexistent/ca.pem"],
    ];
    for (const [flags, message] of cases) {
      const r = await runCli(["--zk", connect, ...flags, "app", "list"]);
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr.trim().split("\n"), show(r)).toHaveLength(1);
      expect(r.stderr, show(r)).toContain(message);
    }
  });

  test("over TLS a session lost behind a blocked link is replaced: the agent reconnects with a new session (a new TLS handshake) and deploys the next version", async () => {
    const ci = pki.client("ci-expiry");
    const agentCert = pki.client("agent-expiry");
    const chroot = uniqueChroot("tls-expiry");
    const link = await startProxy(zk.securePort ?? 0);
    proxies.push(link);
    const r = await runCli(["--zk", secure(chroot), ...tlsFlags(ci), "app", "create", "web", "1.0", ...CMDS]);
    expect(r.code, show(r)).toBe(0);
    const agent = await agents.start({
      connect: `${link.address}${chroot}`,
      hostId: "h1",
      sessionTimeout: "2s",
      args: tlsFlags(agentCert),
    });
    const versionIs = (v: string) => () =>
      existsSync(join(agent.dir, "VERSION")) && readFileSync(join(agent.dir, "VERSION"), "utf8").trim() === v;
    await waitFor(versionIs("1.0"), 20_000, "h1 to deploy 1.0");
    const from = agent.output.length;
    link.block();
    await agent.waitForLog(/zookeeper lost/, 10_000, from);
    link.unblock();
    await agent.waitForLog(/zookeeper reconnected/, 15_000, from);
    const next = await runCli(["--zk", secure(chroot), ...tlsFlags(ci), "app", "create", "web", "1.1"]);
    expect(next.code, show(next)).toBe(0);
    await waitFor(versionIs("1.1"), 20_000, "h1 to deploy 1.1 on its new session");
  });

  test("what travels between client and server: over TLS never the digest password or a spec field; in clear both (so this can fail)", async () => {
    const password = `pw-${crypto.randomUUID()}`;
    const marker = `deploy-${crypto.randomUUID().slice(0, 8)}`;
    const ci = pki.client("ci-capture");
    const chroot = uniqueChroot("tls-capture");
    const overTls = await startProxy(zk.securePort ?? 0, { capture: true });
    const inClear = await startProxy(zk.port, { capture: true });
    proxies.push(overTls, inClear);
    const publish = (address: string, flags: string[]) =>
      runCli([
        "--zk",
        `${address}${chroot}`,
        "--auth",
        `admin:${password}`,
        ...flags,
        "app",
        "create",
        "web",
        "1.0",
        "--get-version-cmd",
        "true",
        "--deploy-cmd",
        marker,
      ]);
    const tls = await publish(overTls.address, tlsFlags(ci));
    expect(tls.code, show(tls)).toBe(0);
    const clear = await publish(inClear.address, []);
    expect(clear.code, show(clear)).toBe(0);
    const seenOverTls = overTls.captured();
    const seenInClear = inClear.captured();
    expect(seenOverTls.length).toBeGreaterThan(500);
    expect(seenOverTls.includes(password)).toBe(false);
    expect(seenOverTls.includes(marker)).toBe(false);
    expect(seenInClear.includes(password)).toBe(true);
    expect(seenInClear.includes(marker)).toBe(true);
  });
});
