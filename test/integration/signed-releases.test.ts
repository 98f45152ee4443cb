// Signed releases (issue 13), end to end with the compiled binary and a real ZooKeeper:
// `keygen`, `--sign-key` on create / rollback / retry, and an agent with `--trusted-key` that
// runs nothing for an unsigned release, one signed by a key it does not trust, one changed
// after signing (with Debian's zkCli, as an attacker with write access would), or an older
// signed release written back. Every command of the app appends to a file in the agent's
// directory, so "nothing ran" is checked on the server itself.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type AgentProcess, useAgentProcesses } from "../harness/agent-process.ts";
import { type CliResult, processTempDir, runCli, splitConnect, useCli, zkCliGet, zkCliSet } from "../harness/cli.ts";
import { waitFor } from "../harness/wait.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";

setDefaultTimeout(90_000);
const zk = useZooKeeper();
useCli();
const agents = useAgentProcesses();

// Each command logs itself and the release's version to RAN (in the agent's directory) before
// doing its job, so "nothing ran for release X" is a fact of the server's own files.
const CMDS = [
  "--get-version-cmd",
  "echo probe %(version)s >> RAN; cat VERSION 2>/dev/null || true",
  "--deploy-cmd",
  "echo deploy %(version)s >> RAN; echo %(version)s > VERSION",
];

/** Every signed field given: a release that inherits nothing from the spec it replaces. */
const EVERY_FIELD = [...CMDS, "--verify-cmd", "", "--health-cmd", "", "--drain-cmd", "", "--undrain-cmd", "", "--groups", ""];

function show(r: CliResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

function expectOk(r: CliResult): CliResult {
  expect({ code: r.code, stderr: r.stderr }, show(r)).toEqual({ code: 0, stderr: "" });
  return r;
}

function expectUsage(r: CliResult, mentions: string): void {
  expect(r.code, show(r)).toBe(2);
  expect(r.stderr.trim().split("\n"), show(r)).toHaveLength(1);
  expect(r.stderr, show(r)).toContain(mentions);
}

async function keygen(dir: string, name: string): Promise<{ key: string; pub: string; fingerprint: string }> {
  const key = join(dir, name);
  const r = expectOk(await runCli(["keygen", "--out", key]));
  const fingerprint = /^fingerprint (SHA256:[A-Za-z0-9+/]{43})$/m.exec(r.stdout)?.[1];
  expect(fingerprint, r.stdout).toBeDefined();
  return { key, pub: `${key}.pub`, fingerprint: fingerprint ?? "" };
}

const ran = (agent: AgentProcess): string => (existsSync(join(agent.dir, "RAN")) ? readFileSync(join(agent.dir, "RAN"), "utf8") : "");
const version = (agent: AgentProcess): string =>
  existsSync(join(agent.dir, "VERSION")) ? readFileSync(join(agent.dir, "VERSION"), "utf8").trim() : "";

async function untilDeployed(agent: AgentProcess, v: string): Promise<void> {
  await waitFor(() => version(agent) === v, 20_000, `${agent.hostId} to deploy ${v}`);
}

interface HostJson {
  host: string;
  state: string;
  error?: string;
  rolloutId: string;
}

/** Waits for `host` to report `state` for the current rollout, and returns its error. */
async function untilState(connect: string, host: string, state: "failed" | "current"): Promise<string> {
  let error = "";
  await waitFor(
    async () => {
      const r = await runCli(["--zk", connect, "status", "web", "--json"]);
      const app = JSON.parse(r.stdout).apps[0] as { rolloutId: string; hosts: HostJson[] };
      const h = app.hosts.find((x) => x.host === host);
      if (h?.state !== state || h.rolloutId !== app.rolloutId) return false;
      error = h.error ?? "";
      return true;
    },
    20_000,
    `${host} to report ${state}`,
  );
  return error;
}

const untilRefused = (connect: string, host: string): Promise<string> => untilState(connect, host, "failed");

describe("signed releases", () => {
  test("keygen writes a 0600 private key and its .pub, prints the fingerprint, and never overwrites", async () => {
    const dir = mkdtempSync(join(processTempDir(), "keys-"));
    const { key, pub } = await keygen(dir, "release.key");
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(key, "utf8")).toContain("-----BEGIN PRIVATE KEY-----");
    expect(readFileSync(pub, "utf8")).toContain("-----BEGIN PUBLIC KEY-----");
    const before = readFileSync(key, "utf8");
    expectUsage(await runCli(["keygen", "--out", key]), "already exists");
    expect(readFileSync(key, "utf8")).toBe(before);
    expectUsage(await runCli(["keygen"]), "--out");
    expectUsage(await runCli(["keygen", "--out", join(dir, "no", "such", "dir", "k")]), "directory does not exist");
  });

  test("bad keys exit 2 naming the file, before anything is written", async () => {
    const dir = mkdtempSync(join(processTempDir(), "badkeys-"));
    const { key, pub } = await keygen(dir, "k");
    const connect = zk.withChroot("bad-keys");
    const create = (flags: string[]) => runCli(["--zk", connect, "app", "create", "web", "1.0", ...CMDS, ...flags]);
    expectUsage(await create(["--sign-key", pub]), "that is a public key");
    expectUsage(await create(["--sign-key", join(dir, "missing.key")]), "missing.key");
    const rsa = join(dir, "rsa.pem");
    const { privateKey } = await import("node:crypto").then((c) => c.generateKeyPairSync("rsa", { modulusLength: 2048 }));
    writeFileSync(rsa, privateKey.export({ format: "pem", type: "pkcs8" }).toString());
    expectUsage(await create(["--sign-key", rsa]), "release keys are Ed25519");
    expect(await zkCliGet(splitConnect(connect).server, `${splitConnect(connect).chroot}/apps/web`)).toBeNull();
    const agent = await runCli(["--zk", connect, "agent", "--host-id", "h1", "--trusted-key", key]);
    expectUsage(agent, "is a private key");
  });

  test("an agent with trustedKeys runs only intact releases signed by a trusted key, never an older one", async () => {
    const dir = mkdtempSync(join(processTempDir(), "signing-"));
    const trusted = await keygen(dir, "release.key");
    const stranger = await keygen(dir, "stranger.key");
    const connect = zk.withChroot("signed");
    const { server, chroot } = splitConnect(connect);
    const specPath = `${chroot}/apps/web`;
    const cli = (args: string[]) => runCli(["--zk", connect, ...args]);

    // Signed 1.0: deployed. status and app show name the key.
    expectOk(await cli(["app", "create", "web", "1.0", ...CMDS, "--max-failures", "100%", "--sign-key", trusted.key]));
    const strict = await agents.start({ connect, hostId: "strict", args: ["--trusted-key", trusted.pub] });
    // An agent without trustedKeys runs what it always ran: adoption is gradual.
    const lax = await agents.start({ connect, hostId: "lax" });
    await Promise.all([untilDeployed(strict, "1.0"), untilDeployed(lax, "1.0")]);
    const shown = JSON.parse(expectOk(await cli(["app", "show", "web", "--json"])).stdout);
    expect(shown.release).toEqual({ signed: true, fingerprint: trusted.fingerprint, sequence: shown.signature.sequence, intact: true });
    expect(expectOk(await cli(["status", "web"])).stdout).toContain(`signed by ${trusted.fingerprint}`);

    /** Publishes `version` with `publish`, then: the strict host refuses it, naming `reason`;
     *  nothing of that release ran there, and no slot was taken. */
    const refused = async (version: string, publish: () => Promise<void>, reason: string, agent = strict) => {
      const before = ran(agent).length;
      const slotsBefore = agent.output.split("slot acquired").length;
      await publish();
      const error = await untilRefused(connect, "strict");
      expect(error, version).toContain("release refused");
      expect(error, version).toContain(reason);
      const after = ran(agent).slice(before);
      expect(
        after.split("\n").filter((line) => line.endsWith(` ${version}`) || line.includes("pwned")),
        `${version}: nothing may run`,
      ).toEqual([]);
      expect(agent.output.split("slot acquired").length, `${version}: no slot taken`).toBe(slotsBefore);
    };

    // 1. Unsigned: refused by the strict agent, deployed by the lax one.
    await refused("1.1", async () => void expectOk(await cli(["app", "create", "web", "1.1"])), "not signed");
    await untilDeployed(lax, "1.1");
    expect(version(strict)).toBe("1.0");
    expect(expectOk(await cli(["app", "show", "web"])).stdout).toMatch(/release:\s+unsigned/);

    // 2. Signed by a key the agent does not trust.
    await refused(
      "1.2",
      async () => void expectOk(await cli(["app", "create", "web", "1.2", ...EVERY_FIELD, "--sign-key", stranger.key])),
      `signed by ${stranger.fingerprint}, which is not one of this agent's trustedKeys`,
    );

    // A trusted release again, on top of a spec this key did not sign: every field given (it
    // would not vouch for commands someone else wrote). Deployed. Keep its bytes for the replay.
    const inherits = await cli(["app", "create", "web", "1.3", "--sign-key", trusted.key]);
    expect(inherits.code, show(inherits)).toBe(1);
    expect(inherits.stderr).toContain(`is signed by another key (${stranger.fingerprint})`);
    expectOk(await cli(["app", "create", "web", "1.3", ...EVERY_FIELD, "--sign-key", trusted.key]));
    await untilDeployed(strict, "1.3");
    const signed13 = (await zkCliGet(server, specPath)) ?? "";
    expect(JSON.parse(signed13).signature).toBeDefined();

    // 3. Changed after signing: zkCli rewrites the deploy command, keeping the signature.
    const laxRan = ran(lax);
    await refused(
      "1.3.1",
      async () => {
        const spec = JSON.parse(signed13);
        spec.deployCmd = "echo pwned >> RAN; echo %(version)s > VERSION";
        spec.version = "1.3.1";
        spec.rolloutId = "rtampered01";
        expect(await zkCliSet(server, specPath, JSON.stringify(spec))).toBe(true);
      },
      "does not match its contents",
    );
    expect(expectOk(await cli(["status", "web"])).stdout).toContain("SIGNATURE DOES NOT MATCH");
    await waitFor(() => ran(lax).includes("pwned"), 20_000, "the lax agent to run the tampered release (it trusts anything)");
    expect(laxRan).not.toContain("pwned");

    // CI publishes next: signing on top of the tampered spec would sign the attacker's
    // deploy-cmd, so it is refused until every command is given again.
    const onTampered = await cli(["app", "create", "web", "1.4", "--sign-key", trusted.key]);
    expect(onTampered.code, show(onTampered)).toBe(1);
    expect(onTampered.stderr).toContain("was changed after it was signed");
    const retryTampered = await cli(["app", "retry", "web", "--sign-key", trusted.key]);
    expect(retryTampered.code, show(retryTampered)).toBe(1);

    // A newer trusted release, then 4. the older signed 1.3 written back: a replay.
    expectOk(await cli(["app", "create", "web", "1.4", ...EVERY_FIELD, "--sign-key", trusted.key]));
    await untilDeployed(strict, "1.4");
    const signed14 = (await zkCliGet(server, specPath)) ?? "";
    await refused("1.3", async () => void expect(await zkCliSet(server, specPath, signed13)).toBe(true), "older than");
    expect(version(strict)).toBe("1.4");

    // A deliberate rollback is a new signature: deployed. (1.4 published again first: the
    // replayed spec names 1.3 already.)
    expectOk(await cli(["app", "create", "web", "1.4", "--sign-key", trusted.key]));
    expectOk(await cli(["app", "rollback", "web", "--to", "1.3", "--sign-key", trusted.key]));
    await untilDeployed(strict, "1.3");
    // retry signs too (a new rollout of the same release).
    const retried = JSON.parse(expectOk(await cli(["app", "retry", "web", "--sign-key", trusted.key, "--json"])).stdout);
    expect(retried.spec.signature.sequence).toBeGreaterThan(JSON.parse(signed13).signature.sequence);

    // Replay protection survives an agent restart (the state directory remembers): 1.4, which
    // this agent ran (no failure of its rollout recorded), written back after the rollback.
    await untilState(connect, "strict", "current");
    await strict.stop();
    const again = await agents.start({ connect, hostId: "strict", dir: strict.dir, args: ["--trusted-key", trusted.pub] });
    await again.waitForLog(/agent started/, 20_000);
    expect(again.output).toContain(`trustedKeys=${trusted.fingerprint}`);
    await refused("1.4", async () => void expect(await zkCliSet(server, specPath, signed14)).toBe(true), "older than", again);
  });

  test("pause, set-slots and promote keep a release's signature; a retry without the key drops it", async () => {
    const dir = mkdtempSync(join(processTempDir(), "carry-"));
    const trusted = await keygen(dir, "release.key");
    const connect = zk.withChroot("carry");
    const cli = (args: string[]) => runCli(["--zk", connect, ...args]);
    expectOk(await cli(["app", "create", "web", "1.0", ...CMDS, "--sign-key", trusted.key]));
    const signature = JSON.parse(expectOk(await cli(["app", "show", "web", "--json"])).stdout).signature;
    expectOk(await cli(["app", "pause", "web"]));
    expectOk(await cli(["app", "set-slots", "web", "3"]));
    expectOk(await cli(["app", "resume", "web"]));
    const after = JSON.parse(expectOk(await cli(["app", "show", "web", "--json"])).stdout);
    expect(after.signature).toEqual(signature);
    expect(after.release.intact).toBe(true);
    expectOk(await cli(["app", "retry", "web"]));
    const retried = JSON.parse(expectOk(await cli(["app", "show", "web", "--json"])).stdout);
    expect(retried.signature).toBeUndefined();
    expect(retried.release).toEqual({ signed: false });
  });

  test("a signed publish over an invalid spec takes nothing from it: every command and --groups, and no version to roll back to", async () => {
    const dir = mkdtempSync(join(processTempDir(), "replace-"));
    const trusted = await keygen(dir, "release.key");
    const connect = zk.withChroot("replace");
    const { server, chroot } = splitConnect(connect);
    const cli = (args: string[]) => runCli(["--zk", connect, ...args]);
    expectOk(await cli(["app", "create", "web", "1.0", ...CMDS, "--groups", "web", "--sign-key", trusted.key]));
    // Someone with write access and no key names a version of their choosing in an invalid spec.
    expect(await zkCliSet(server, `${chroot}/apps/web`, JSON.stringify({ version: "0.1-theirs" }))).toBe(true);

    // A CI job that gives only the two commands must not sign a replacement, nor plan one.
    for (const extra of [[], ["--dry-run"]]) {
      const r = await cli(["app", "create", "web", "2.0", ...CMDS, "--sign-key", trusted.key, ...extra]);
      expect(r.code, show(r)).toBe(1);
      expect(r.stderr.trim().split("\n"), show(r)).toHaveLength(1);
      expect(r.stderr, show(r)).toContain("every command and --groups given");
    }
    expect(await zkCliGet(server, `${chroot}/apps/web`)).toContain("0.1-theirs");

    // With every signed field given it is replaced, signed, and rolls back nowhere the invalid node named.
    expectOk(await cli(["app", "create", "web", "2.0", ...EVERY_FIELD.slice(0, -1), "web", "--sign-key", trusted.key]));
    const replaced = JSON.parse(expectOk(await cli(["app", "show", "web", "--json"])).stdout);
    expect({ version: replaced.version, previousVersion: replaced.previousVersion, groups: replaced.groups }).toEqual({
      version: "2.0",
      previousVersion: undefined,
      groups: ["web"],
    });
    expect(replaced.release.intact).toBe(true);
    // Unsigned, the invalid spec's version is still kept to roll back to (what app-repair tests).
    expect(await zkCliSet(server, `${chroot}/apps/web`, JSON.stringify({ version: "1.9" }))).toBe(true);
    expectOk(await cli(["app", "create", "web", "3.0", ...CMDS]));
    expect(JSON.parse(expectOk(await cli(["app", "show", "web", "--json"])).stdout).previousVersion).toBe("1.9");
  });
});
