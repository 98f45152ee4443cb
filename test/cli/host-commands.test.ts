// `host list`, `host show` and `host forget` through the compiled binary, with real agents: a
// decommissioned host holds a rollout back as offline until it is forgotten; forgetting is
// refused while its agent is online, and (on a locked tree) for an agent identity.

import { describe, expect, test } from "bun:test";
import { type CliResult, runOk, show, runCli, useCli } from "../harness/cli.ts";
import { useAgentProcesses } from "../harness/agent-process.ts";
import { appFromStatus } from "../harness/app-status.ts";
import { waitForStrict } from "../harness/wait.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";

const zk = useZooKeeper();
useCli();
const agents = useAgentProcesses();

const ADMIN = "admin:admin-secret";
const AGENT = "agent:agent-secret";
const CMDS = ["--get-version-cmd", "cat VERSION 2>/dev/null || true", "--deploy-cmd", "echo %(version)s > VERSION"];

const ok = (connect: string, args: string[]): Promise<CliResult> => runOk(["--zk", connect, ...args], { env: { CONVEYOR_ACTOR: "ops" } });

/** `pre`: global options, e.g. the admin's --auth on a locked tree. */
async function appStatus(connect: string, pre: string[] = []) {
  return appFromStatus((await ok(connect, [...pre, "status", "web", "--json"])).stdout, "web");
}

function currentOn(connect: string, hosts: string[], version: string, pre: string[] = []): Promise<true> {
  return waitForStrict(
    async () => {
      const app = await appStatus(connect, pre);
      return hosts.every((h) => app.hosts.some((x) => x.host === h && x.state === "current" && x.version === version)) || undefined;
    },
    20_000,
    `${hosts.join(", ")} current on ${version}`,
  );
}

interface HostJson {
  host: string;
  online: boolean;
  groups?: string[];
  agentVersion?: string;
  apps: { app: string; state: string; version?: string }[];
}

describe("host commands", () => {
  test("a decommissioned host stays offline and holds the rollout until `host forget`; refused while online", async () => {
    const connect = zk.withChroot("host-forget");
    await ok(connect, ["app", "create", "web", "1.0", ...CMDS, "--slots", "2"]);
    const h1 = await agents.start({ connect, hostId: "h1", groups: "web" });
    const h2 = await agents.start({ connect, hostId: "h2", groups: "web" });
    await currentOn(connect, ["h1", "h2"], "1.0");

    const listed = JSON.parse((await ok(connect, ["host", "list", "--json"])).stdout) as HostJson[];
    expect(listed.map((h) => [h.host, h.online, h.groups])).toEqual([
      ["h1", true, ["web"]],
      ["h2", true, ["web"]],
    ]);
    expect(listed[0]?.apps).toEqual([expect.objectContaining({ app: "web", state: "current", version: "1.0" })]);
    expect(listed[0]?.agentVersion).toMatch(/\S/);

    // h2 is decommissioned: its agent stops for good; the next rollout never converges.
    await h2.stop();
    await ok(connect, ["app", "create", "web", "2.0"]);
    await currentOn(connect, ["h1"], "2.0");
    const held = await appStatus(connect);
    expect(held.state).toBe("rolling");
    expect(held.hosts.find((h) => h.host === "h2")?.state).toBe("offline");
    const text = (await ok(connect, ["host", "list"])).stdout;
    expect(text).toMatch(/^h2\s+offline\s+-\s+-\s+web offline 1\.0$/m);

    // Refused for a live agent: exit 1, one line naming it, nothing removed.
    const refused = await runCli(["--zk", connect, "host", "forget", "h1"]);
    expect(refused.code, show(refused)).toBe(1);
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);
    expect(refused.stderr).toContain('host "h1" has an agent online');
    expect((await appStatus(connect)).hosts.map((h) => h.host)).toEqual(["h1", "h2"]);

    const forgot = await ok(connect, ["host", "forget", "h2"]);
    expect(forgot.stdout).toContain("forgot h2 in web");
    const after = await appStatus(connect);
    expect(after.hosts.map((h) => h.host)).toEqual(["h1"]);
    expect(after.counts.total).toBe(1);
    expect(after.counts.offline).toBe(0);
    expect(after.state).toBe("converged");
    const history = JSON.parse((await ok(connect, ["app", "history", "web", "--json"])).stdout) as {
      action: string;
      to?: string;
      by: string;
    }[];
    expect(history[0]).toMatchObject({ action: "forget-host", to: "h2", by: "ops" });

    const gone = await runCli(["--zk", connect, "host", "show", "h2"]);
    expect(gone.code, show(gone)).toBe(1);
    expect(gone.stderr).toContain('host "h2" is not known');
    const again = await runCli(["--zk", connect, "host", "forget", "h2"]);
    expect(again.code, show(again)).toBe(1);
    const one = JSON.parse((await ok(connect, ["host", "show", "h1", "--json"])).stdout) as HostJson;
    expect(one).toMatchObject({ host: "h1", online: true, apps: [{ app: "web", state: "current", version: "2.0" }] });
    await h1.stop();
  });

  test("on a locked tree only the admin may forget a host: the agent identity is not authorised", async () => {
    const connect = zk.withChroot("host-forget-acl");
    await ok(connect, ["app", "create", "web", "1.0", ...CMDS]);
    await ok(connect, ["--auth", ADMIN, "acl", "init", "--agent-auth", AGENT]);
    const h1 = await agents.start({ connect, hostId: "h1", args: ["--auth", AGENT] });
    await currentOn(connect, ["h1"], "1.0", ["--auth", ADMIN]);
    await h1.stop();

    const denied = await runCli(["--zk", connect, "--auth", AGENT, "host", "forget", "h1"]);
    expect(denied.code, show(denied)).toBe(3);
    expect(denied.stderr).toContain("not authorised");
    expect(denied.stderr.trim().split("\n")).toHaveLength(1);
    expect((await appStatus(connect, ["--auth", ADMIN])).hosts.map((h) => h.host)).toEqual(["h1"]);

    await ok(connect, ["--auth", ADMIN, "host", "forget", "h1"]);
    expect((await appStatus(connect, ["--auth", ADMIN])).hosts).toEqual([]);
  });

  test("bad host ids exit 2 before connecting", async () => {
    for (const args of [
      ["host", "show", "a/b"],
      ["host", "forget", ""],
      ["host", "forget", "-x"],
    ]) {
      const r = await runCli(["--zk", "127.0.0.1:1/none", ...args]);
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });
});
