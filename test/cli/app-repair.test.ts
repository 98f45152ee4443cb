// Issue 11: an app spec corrupted by hand (`zkCli set /conveyor/apps/good '{"version":"2.0",
// "slots":"many"}'`) can be repaired with `app create` instead of only `app delete` (which loses
// the history and the hosts' status). Checked against the compiled binary; the corrupt node is
// written with a raw client and the result read back with Debian's zkCli.

import { describe, expect, test } from "bun:test";
import { type CliResult, runCli, splitConnect, useCli, zkCliGet, zkCliLs } from "../harness/cli.ts";
import { startWriteGate } from "../helpers/zk-write-gate.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";
import { withRaw } from "../helpers/raw-client.ts";

const zk = useZooKeeper();
useCli();

const GET_VERSION = "cat /srv/good/VERSION";
const DEPLOY = "/srv/deploy.sh %(version)s";
const CMDS = ["--get-version-cmd", GET_VERSION, "--deploy-cmd", DEPLOY];
/** The example of the issue: most attributes missing. */
const BARE = '{"version":"2.0","slots":"many"}';
const SLOTS_RULE = "slots: slots must be a whole number ≥ 1 or a percentage like 25%";
const SUBDIRS = ["canary", "done", "failures", "history", "hosts", "leases", "lock"];

function cli(connect: string, args: string[]): Promise<CliResult> {
  return runCli(["--zk", connect, ...args], { env: { CONVEYOR_ACTOR: "repairer" } });
}

function show(r: CliResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

function expectOk(r: CliResult): void {
  expect({ code: r.code, stderr: r.stderr }, show(r)).toEqual({ code: 0, stderr: "" });
}

function expectOneLineError(r: CliResult, code: number, text: string): void {
  expect(r.code, show(r)).toBe(code);
  expect(r.stdout, show(r)).toBe("");
  expect(r.stderr, show(r)).toBe(`${text}\n`);
}

function hostStatus(host: string, version: string, rolloutId: string): string {
  const at = "2026-01-02T03:04:05.000Z";
  return JSON.stringify({ state: "current", version, target: version, rolloutId, since: at, updatedAt: at, durationMs: host.length });
}

/**
 * `good` created at 1.0 with two hosts reporting on it, then its spec overwritten by hand: the
 * stored spec at version 2.0 with `"slots": "many"`.
 */
async function corruptApp(connect: string): Promise<{ corrupt: string; hosts: Record<string, string> }> {
  expectOk(await cli(connect, ["app", "create", "good", "1.0", ...CMDS]));
  return withRaw(connect, async (raw) => {
    const stored = JSON.parse((await raw.get("/apps/good")).data.toString("utf8")) as Record<string, unknown>;
    const rolloutId = String(stored.rolloutId);
    const hosts = { h1: hostStatus("h1", "1.0", rolloutId), h2: hostStatus("h2", "0.9", rolloutId) };
    for (const [host, data] of Object.entries(hosts)) await raw.create(`/apps/good/hosts/${host}`, Buffer.from(data));
    const corrupt = JSON.stringify({ ...stored, version: "2.0", slots: "many" });
    await raw.set("/apps/good", Buffer.from(corrupt));
    return { corrupt, hosts };
  });
}

async function history(connect: string): Promise<Record<string, unknown>[]> {
  const r = await cli(connect, ["app", "history", "good", "--json"]);
  expectOk(r);
  return JSON.parse(r.stdout) as Record<string, unknown>[];
}

describe("app create on a corrupt spec", () => {
  test("without --get-version-cmd and --deploy-cmd: exit 1, one line saying how to repair it, nothing written", async () => {
    const connect = zk.withChroot("repair-hint");
    const { corrupt } = await corruptApp(connect);
    const hint = `invalid data at /apps/good: ${SLOTS_RULE}; to replace it, run "conveyor app create good 3.0" with --get-version-cmd and --deploy-cmd (every other attribute starts from its default unless given)`;
    const [none, onlyDeploy, onlyGetVersion] = await Promise.all([
      cli(connect, ["app", "create", "good", "3.0"]),
      cli(connect, ["app", "create", "good", "3.0", "--deploy-cmd", DEPLOY, "--slots", "2"]),
      cli(connect, ["app", "create", "good", "3.0", "--get-version-cmd", GET_VERSION]),
    ]);
    for (const r of [none, onlyDeploy, onlyGetVersion]) expectOneLineError(r, 1, `error: ${hint}`);
    const { server, chroot } = splitConnect(connect);
    expect(await zkCliGet(server, `${chroot}/apps/good`)).toBe(corrupt);
    expect((await history(connect)).map((e) => e.action)).toEqual(["create"]);
  });

  test("with them: the spec is replaced, history says `repaired`, host status and history are kept, missing directories come back", async () => {
    const connect = zk.withChroot("repair");
    const { hosts } = await corruptApp(connect);
    // Directories deleted by hand too: the repair re-creates them (agents could not on a locked tree).
    await withRaw(connect, async (raw) => {
      for (const dir of ["lock", "leases", "canary"]) await raw.delete(`/apps/good/${dir}`);
    });

    const r = await cli(connect, ["app", "create", "good", "3.0", ...CMDS, "--slots", "2", "--json"]);
    expectOk(r);
    const out = JSON.parse(r.stdout) as { app: string; created: boolean; repaired: boolean; spec: Record<string, unknown> };
    expect(out).toMatchObject({ app: "good", created: false, repaired: true, spec: { version: "3.0", slots: 2 } });

    const { server, chroot } = splitConnect(connect);
    const stored = JSON.parse((await zkCliGet(server, `${chroot}/apps/good`)) ?? "null") as Record<string, unknown>;
    expect(stored).toMatchObject({
      version: "3.0",
      previousVersion: "2.0", // the version the corrupt node named, kept so a rollback has somewhere to go
      slots: 2,
      getVersionCmd: GET_VERSION,
      deployCmd: DEPLOY,
      groups: [],
      maxFailures: 0,
      deployTimeoutSec: 600,
      paused: false,
      updatedBy: "repairer",
    });
    expect(String(stored.rolloutId)).toMatch(/^r[0-9a-z]{6,40}$/);
    expect(await zkCliLs(server, `${chroot}/apps/good`)).toEqual(SUBDIRS);
    expect(await zkCliLs(server, `${chroot}/apps/good/hosts`)).toEqual(["h1", "h2"]);
    for (const [host, data] of Object.entries(hosts)) expect(await zkCliGet(server, `${chroot}/apps/good/hosts/${host}`)).toBe(data);

    const entries = await history(connect);
    expect(entries.map((e) => e.action)).toEqual(["repaired", "create"]);
    expect(entries[0]).toMatchObject({ by: "repairer", from: "2.0", to: "3.0", detail: `replaced an invalid spec (${SLOTS_RULE})` });

    // Usable again: show, status, a plain publish on top.
    expectOk(await cli(connect, ["app", "show", "good"]));
    const status = await cli(connect, ["status", "good", "--json"]);
    expectOk(status);
    expect(JSON.parse(status.stdout)).toMatchObject({ apps: [{ name: "good", version: "3.0" }], invalidApps: [] });
    const text = await cli(connect, ["app", "create", "good", "3.1"]);
    expectOk(text);
    expect(text.stdout).toContain("published good 3.1 (was 3.0)");
  });

  test("the text output says it was repaired; a spec missing most attributes, or not even JSON, is repaired too", async () => {
    const connect = zk.withChroot("repair-text");
    expectOk(await cli(connect, ["app", "create", "good", "1.0", ...CMDS]));
    expectOk(await cli(connect, ["app", "create", "text", "1.0", ...CMDS]));
    await withRaw(connect, async (raw) => {
      await raw.set("/apps/good", Buffer.from(BARE));
      await raw.set("/apps/text", Buffer.from("{not json"));
    });
    expectOneLineError(
      await cli(connect, ["app", "create", "good", "3.0"]),
      1,
      'error: invalid data at /apps/good: rolloutId: is missing; to replace it, run "conveyor app create good 3.0" with --get-version-cmd and --deploy-cmd (every other attribute starts from its default unless given)',
    );
    const good = await cli(connect, ["app", "create", "good", "3.0", ...CMDS]);
    expectOk(good);
    expect(good.stdout).toMatch(
      /^repaired good 3\.0 \(was 2\.0\): replaced the invalid spec at \/apps\/good \(rolloutId: is missing\); rollout r[0-9a-z]+, slots 1\n$/,
    );
    const text = await cli(connect, ["app", "create", "text", "3.0", ...CMDS]);
    expectOk(text);
    expect(text.stdout).toMatch(
      /^repaired text 3\.0: replaced the invalid spec at \/apps\/text \(not valid JSON\); rollout r[0-9a-z]+, slots 1\n$/,
    );
    const entries = JSON.parse((await cli(connect, ["app", "history", "text", "--json"])).stdout) as Record<string, unknown>[];
    expect(entries[0]).toMatchObject({ action: "repaired", to: "3.0", detail: "replaced an invalid spec (not valid JSON)" });
    expect(entries[0]?.from).toBeUndefined();
  });

  test("compare-and-set: a write to the corrupt node after the repair read it is not overwritten", async () => {
    const connect = zk.withChroot("repair-race");
    await corruptApp(connect);
    const { chroot } = splitConnect(connect);
    // The repair reaches ZooKeeper through a gate that holds its first write: it has read the
    // corrupt node (and its version) by then. Someone else writes the node meanwhile.
    const gate = await startWriteGate(zk.port);
    const other = '{"version":"2.5","slots":"some"}';
    let r: CliResult;
    try {
      const run = cli(`${gate.address}${chroot}`, ["app", "create", "good", "3.0", ...CMDS]);
      await Promise.race([gate.holding, run.then((res) => Promise.reject(new Error(`exited before writing: ${show(res)}`)))]);
      await withRaw(connect, (raw) => raw.set("/apps/good", Buffer.from(other)));
      gate.release();
      r = await run;
    } finally {
      await gate.close();
    }
    expectOneLineError(
      r,
      1,
      'error: app "good" was changed by someone else while its invalid spec was being replaced; not overwriting — run the command again',
    );
    const { server } = splitConnect(connect);
    expect(await zkCliGet(server, `${chroot}/apps/good`)).toBe(other);
    expect((await history(connect)).map((e) => e.action)).toEqual(["create"]);
  });
});

describe("a spec written by a newer Conveyor", () => {
  test("fields this version does not know survive pause, set-slots, resume and a publish (they were stripped)", async () => {
    const connect = zk.withChroot("newer-fields");
    expectOk(await cli(connect, ["app", "create", "good", "1.0", ...CMDS]));
    const ramp = [{ after: "5m", slots: "50%" }];
    await withRaw(connect, async (raw) => {
      const stored = JSON.parse((await raw.get("/apps/good")).data.toString("utf8")) as Record<string, unknown>;
      await raw.set("/apps/good", Buffer.from(JSON.stringify({ ...stored, rampSchedule: ramp, name: "impostor" })));
    });
    // Shown as kept, but never in place of what app show itself says.
    const shown = await cli(connect, ["app", "show", "good", "--json"]);
    expectOk(shown);
    expect(JSON.parse(shown.stdout)).toMatchObject({ name: "good", rampSchedule: ramp });
    for (const args of [
      ["app", "pause", "good"],
      ["app", "set-slots", "good", "3"],
      ["app", "resume", "good"],
      ["app", "create", "good", "1.1"],
    ]) {
      expectOk(await cli(connect, args));
      const stored = await withRaw(
        connect,
        async (raw) => JSON.parse((await raw.get("/apps/good")).data.toString("utf8")) as Record<string, unknown>,
      );
      expect({ after: args.join(" "), rampSchedule: stored.rampSchedule }).toEqual({ after: args.join(" "), rampSchedule: ramp });
    }
  });
});
