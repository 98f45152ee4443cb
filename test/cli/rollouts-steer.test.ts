// Steering a rollout with the compiled binary against a real ZooKeeper and in-process agents:
// pause/resume, resume clearing a halt, retry, rollback (--to, errors), and the history with
// who did what (CONVEYOR_ACTOR, CI variables, user@host), --limit and the 200-entry cap.
//
// One ZooKeeper for the file, one chroot per test. State is read back through `status --json`
// (the binary) for assertions; bounded polling in between goes through the library for speed.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { setSlots } from "../../src/apps/set-slots.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { historyDir } from "../../src/zk/paths.ts";
import { useCli } from "../harness/cli.ts";
import type { AgentEvent } from "../helpers/agent-events.ts";
import { readDeployLog } from "../helpers/deploy-log.ts";
import { testActor } from "../helpers/in-process-fleet.ts";
import { allOn, expectOk, peek, show, useRolloutFixture, versionFiles } from "../helpers/rollout-fixture.ts";
import { waitFor } from "../harness/wait.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";

setDefaultTimeout(60_000);
const zookeeper = useZooKeeper();
useCli();

const { setup, cli, warmUp, appStatus } = useRolloutFixture(zookeeper);

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * get-version/deploy commands. The deploy appends start/end lines to `log`, sleeps `seconds`
 * and writes VERSION; but if the host's directory holds FAIL-<version> it fails (exit 3), and if
 * it holds FAILONCE-<version> it removes that file and fails — so the next attempt succeeds.
 * With `gate`, every deploy waits (after its start line) until the file `gate` exists.
 */
function commandArgs(log: string, seconds: number, gate?: string): string[] {
  const fail = `echo "boom on $CONVEYOR_HOST"; echo "end $CONVEYOR_HOST $CONVEYOR_VERSION" >> '${log}'; exit 3`;
  const deploy = [
    `echo "start $CONVEYOR_HOST $CONVEYOR_VERSION" >> '${log}'`,
    ...(gate === undefined ? [] : [`while [ ! -e '${gate}' ]; do sleep 0.05; done`]),
    `if [ -e "FAIL-$CONVEYOR_VERSION" ]; then ${fail}; fi`,
    `if [ -e "FAILONCE-$CONVEYOR_VERSION" ]; then rm -f "FAILONCE-$CONVEYOR_VERSION"; ${fail}; fi`,
    `sleep ${seconds}`,
    `echo %(version)s > VERSION`,
    `echo "end $CONVEYOR_HOST $CONVEYOR_VERSION" >> '${log}'`,
  ].join("; ");
  return ["--get-version-cmd", "cat VERSION 2>/dev/null || true", "--deploy-cmd", deploy];
}

interface ShownSpec {
  version: string;
  rolloutId: string;
  previousVersion?: string;
  paused: boolean;
  updatedBy: string;
}

async function showSpec(connect: string, app: string): Promise<ShownSpec> {
  const r = await cli(connect, ["app", "show", app, "--json"]);
  expectOk(r);
  return JSON.parse(r.stdout) as ShownSpec;
}

interface History {
  seq: number;
  at: string;
  by: string;
  action: string;
  from?: string;
  to?: string;
  detail?: string;
}

async function history(connect: string, app: string, extra: string[] = []): Promise<History[]> {
  const r = await cli(connect, ["app", "history", app, "--json", ...extra]);
  expectOk(r);
  return JSON.parse(r.stdout) as History[];
}

/** Our login name as the system knows it (Bun's os.userInfo() may say "unknown"). */
function loginName(): string {
  const r = Bun.spawnSync(["id", "-un"], { env: { PATH: "/usr/bin:/bin" } });
  const name = r.stdout.toString().trim();
  if (r.exitCode !== 0 || name === "") throw new Error(`id -un failed: ${r.stderr.toString()}`);
  return name;
}

/** An agent at the head of the slot queue looked and found the app paused. */
function pausedHead(e: AgentEvent): boolean {
  return e.message === "waiting for a slot" && e.fields.reason === "paused";
}

function deploysOf(log: string, host: string, version: string): number {
  return readDeployLog(log).filter((e) => e.kind === "start" && e.host === host && e.version === version).length;
}

// ---------------------------------------------------------------------------------------------

describe("pause and resume", () => {
  test("pause → publish: nobody deploys, hosts queue, app paused; resume → every host converges (app wait exits 0)", async () => {
    const s = await setup("pause", 3);
    // The hosts already run 1.0: the create deploys nothing, so the log stays empty until 2.0.
    await warmUp(s, "1.0", ["--slots", "2", ...commandArgs(s.log, 0.2)]);
    expect(readDeployLog(s.log)).toEqual([]);

    const paused = await cli(s.connect, ["app", "pause", "web"]);
    expectOk(paused);
    expect(paused.stdout).toContain("paused");
    const published = s.events.all.length;
    expectOk(await cli(s.connect, ["app", "create", "web", "2.0"]));
    expect((await showSpec(s.connect, "web")).paused).toBe(true); // publishing does not unpause

    // Every host has seen 2.0 and queues for it, and the head of the queue has looked and found
    // the app paused: until the app changes nobody can be admitted (nothing to sleep on).
    await waitFor(
      async () => (await peek(s, "web"))?.hosts.every((h) => h.state === "queued" && h.target === "2.0"),
      10_000,
      "all hosts queued for 2.0",
    );
    await s.events.waitFor(pausedHead, 10_000, "the queue head to find the app paused", published);
    expect(readDeployLog(s.log)).toEqual([]);
    const view = await appStatus(s.connect, "web");
    expect(view.state).toBe("paused");
    expect(view.paused).toBe(true);
    expect(view.hosts.map((h) => [h.host, h.state, h.version]).sort()).toEqual([
      ["h1", "queued", "1.0"],
      ["h2", "queued", "1.0"],
      ["h3", "queued", "1.0"],
    ]);
    expect(versionFiles(s.agents)).toEqual(allOn(s.agents, "1.0"));

    expectOk(await cli(s.connect, ["app", "resume", "web"]));
    const waited = await cli(s.connect, ["app", "wait", "web", "--wait-timeout", "30s"]);
    const atExit = versionFiles(s.agents);
    expect(waited.code, show(waited)).toBe(0);
    expect(atExit).toEqual(allOn(s.agents, "2.0"));
    const after = await appStatus(s.connect, "web");
    expect(after.state).toBe("converged");
    expect(after.hosts.every((h) => h.state === "current" && h.version === "2.0" && h.rolloutId === after.rolloutId)).toBe(true);
  });

  test("pause during a rollout: the running deploy finishes, nobody else starts; resume carries on", async () => {
    const s = await setup("pause-mid", 3);
    const gate = join(s.fleet.root, "GO");
    await warmUp(s, "1.0", ["--slots", "1", ...commandArgs(s.log, 0.1, gate)]);
    expectOk(await cli(s.connect, ["app", "create", "web", "2.0"]));
    // The first host is deploying (held at the gate): pause now, then let it finish.
    await waitFor(() => readDeployLog(s.log).some((e) => e.kind === "start"), 10_000, "a deploy to start");
    const beforePause = s.events.all.length;
    expectOk(await cli(s.connect, ["app", "pause", "web"]));
    expect(readDeployLog(s.log).filter((e) => e.kind === "start")).toHaveLength(1);
    const first = readDeployLog(s.log)[0]?.host ?? "";
    // The head of the queue (waiting for the busy slot) has seen the pause ...
    const seen = await s.events.waitFor(pausedHead, 10_000, "the queue head to see the pause", beforePause);
    writeFileSync(gate, "");
    // ... the first host finishes and releases its slot, and the head, woken by that, looks again
    // and finds the app still paused: from now on nothing happens until resume.
    await waitFor(async () => (await peek(s, "web"))?.hosts.find((h) => h.host === first)?.state === "current", 10_000, `${first} current`);
    await s.events.waitFor(pausedHead, 10_000, "the queue head to look again after the release", seen.index + 1);
    // ... and nobody else was admitted meanwhile.
    expect(
      readDeployLog(s.log)
        .filter((e) => e.kind === "start")
        .map((e) => e.host),
    ).toEqual([first]);
    const view = await appStatus(s.connect, "web");
    expect(view.state).toBe("paused");
    expect(view.hosts.filter((h) => h.state === "queued")).toHaveLength(2);

    expectOk(await cli(s.connect, ["app", "resume", "web"]));
    const waited = await cli(s.connect, ["app", "wait", "web", "--wait-timeout", "30s"]);
    const atExit = versionFiles(s.agents);
    expect(waited.code, show(waited)).toBe(0);
    expect(atExit).toEqual(allOn(s.agents, "2.0"));
    expect(readDeployLog(s.log).filter((e) => e.kind === "start")).toHaveLength(3);
  });

  test("resume clears a halt (the failed host is not retried); retry starts a new rollout in which it tries again", async () => {
    const s = await setup("resume-halt", 1);
    const [h1] = s.agents;
    if (!h1) throw new Error("no h1");
    // h1 fails its first attempt at 1.0 (FAILONCE), so a retry would succeed.
    writeFileSync(join(h1.dir, "FAILONCE-1.0"), "");
    expectOk(await cli(s.connect, ["app", "create", "web", "1.0", "--slots", "1", "--max-failures", "0", ...commandArgs(s.log, 0.1)]));
    // The failure node (which halts) is written before h1's `failed` status: wait for both.
    await waitFor(
      async () => {
        const view = await peek(s, "web");
        return view?.state === "halted" && view.hosts[0]?.state === "failed";
      },
      10_000,
      "halted, h1 failed",
    );
    const halted = await appStatus(s.connect, "web");
    expect(halted.state).toBe("halted");
    expect(halted.hosts).toMatchObject([{ host: "h1", state: "failed", exitCode: 3 }]);

    // Three more hosts arrive: the halt admits none of them (the head of their queue has looked
    // and found the rollout halted).
    const arriving = s.events.all.length;
    const late = [await s.fleet.start("h2"), await s.fleet.start("h3"), await s.fleet.start("h4")];
    await waitFor(async () => (await peek(s, "web"))?.hosts.filter((h) => h.state === "queued").length === 3, 10_000, "3 hosts queued");
    await s.events.waitFor(
      (e) => e.message === "waiting for a slot" && String(e.fields.reason).startsWith("halted"),
      10_000,
      "the queue head to find the rollout halted",
      arriving,
    );
    expect(readDeployLog(s.log).filter((e) => e.host !== "h1")).toEqual([]);
    expect((await appStatus(s.connect, "web")).state).toBe("halted");

    const resumed = await cli(s.connect, ["app", "resume", "web"]);
    expectOk(resumed);
    await waitFor(
      async () => {
        const v = await peek(s, "web");
        return v?.hosts.filter((h) => h.state === "current" && h.version === "1.0").length === 3;
      },
      20_000,
      "h2..h4 current after resume",
    );
    const afterResume = await appStatus(s.connect, "web");
    expect(afterResume.rolloutId).toBe(halted.rolloutId); // resume does not start a new rollout
    expect(afterResume.state).not.toBe("halted");
    expect(afterResume.hosts.find((h) => h.host === "h1")).toMatchObject({ state: "failed", rolloutId: halted.rolloutId });
    expect(versionFiles(late)).toEqual(allOn(late, "1.0"));
    expect(deploysOf(s.log, "h1", "1.0")).toBe(1); // not retried
    // (Nothing h1's agent does tells that it decided not to retry: a short look for a retry.)
    await Bun.sleep(300);
    expect(deploysOf(s.log, "h1", "1.0")).toBe(1);

    const retried = await cli(s.connect, ["app", "retry", "web", "--wait", "--wait-timeout", "30s"]);
    const atExit = versionFiles(s.agents);
    expect(retried.code, show(retried)).toBe(0);
    expect(atExit).toEqual(allOn(s.agents, "1.0"));
    expect(deploysOf(s.log, "h1", "1.0")).toBe(2); // tried again, succeeded
    for (const h of late) expect(deploysOf(s.log, h.host, "1.0")).toBe(1); // already current: no redeploy
    const final = await appStatus(s.connect, "web");
    expect(final.rolloutId).not.toBe(halted.rolloutId);
    expect(final.state).toBe("converged");
    expect(final.hosts.every((h) => h.state === "current" && h.rolloutId === final.rolloutId)).toBe(true);
  });
});

describe("rollback", () => {
  test("rollback --to V publishes V as a new rollout (previousVersion = the replaced version); hosts converge on V", async () => {
    const s = await setup("rollback", 2);
    await warmUp(s, "1.0", ["--slots", "2", ...commandArgs(s.log, 0.05)]);
    for (const v of ["2.0", "3.0"]) expectOk(await cli(s.connect, ["app", "create", "web", v, "--wait"]));
    const before = await showSpec(s.connect, "web");
    expect(before).toMatchObject({ version: "3.0", previousVersion: "2.0" });

    const r = await cli(s.connect, ["app", "rollback", "web", "--to", "1.0", "--wait"]);
    const atExit = versionFiles(s.agents);
    expect(r.code, show(r)).toBe(0);
    expect(atExit).toEqual(allOn(s.agents, "1.0"));
    const spec = await showSpec(s.connect, "web");
    expect(spec).toMatchObject({ version: "1.0", previousVersion: "3.0" });
    expect(spec.rolloutId).not.toBe(before.rolloutId);
    const view = await appStatus(s.connect, "web");
    expect(view.state).toBe("converged");
    expect(view.hosts.every((h) => h.state === "current" && h.version === "1.0" && h.rolloutId === spec.rolloutId)).toBe(true);
    expect((await history(s.connect, "web", ["--limit", "1"]))[0]).toMatchObject({ action: "rollback", from: "3.0", to: "1.0" });

    // Without --to: back to the version it replaced.
    const back = await cli(s.connect, ["app", "rollback", "web", "--wait"]);
    expect(back.code, show(back)).toBe(0);
    expect(versionFiles(s.agents)).toEqual(allOn(s.agents, "3.0"));
    expect(await showSpec(s.connect, "web")).toMatchObject({ version: "3.0", previousVersion: "1.0" });
  });

  test("rollback errors: no previous version exits 1 with a clear message; an invalid --to exits 2; nothing is written", async () => {
    const connect = zookeeper.withChroot("rollback-errors");
    expectOk(await cli(connect, ["app", "create", "fresh", "1.0", "--get-version-cmd", "true", "--deploy-cmd", "true"]));
    const before = await showSpec(connect, "fresh");

    const none = await cli(connect, ["app", "rollback", "fresh"]);
    expect(none.code, show(none)).toBe(1);
    expect(none.stdout).toBe("");
    expect(none.stderr, show(none)).toMatch(/^error: .*no previous version.*\n$/);
    expect(none.stderr).toContain("fresh");

    for (const bad of ["1.0;rm -rf /", "-1", "", "v 2"]) {
      const r = await cli(connect, ["app", "rollback", "fresh", "--to", bad]);
      expect(r.code, `--to ${JSON.stringify(bad)}: ${show(r)}`).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
      if (bad !== "") expect(r.stderr, show(r)).toContain(bad);
    }
    // Rolling back to the version it already runs is a usage error too.
    const same = await cli(connect, ["app", "rollback", "fresh", "--to", "1.0"]);
    expect(same.code, show(same)).toBe(2);

    expect(await showSpec(connect, "fresh")).toEqual(before);
    expect((await history(connect, "fresh")).map((h) => h.action)).toEqual(["create"]);

    // A version that looks like a number is taken exactly as typed.
    expectOk(await cli(connect, ["app", "rollback", "fresh", "--to", "1.10"]));
    expect(await showSpec(connect, "fresh")).toMatchObject({ version: "1.10", previousVersion: "1.0" });
  });
});

describe("history", () => {
  test("every action is listed newest first with `by` from CONVEYOR_ACTOR; else GITHUB_ACTOR; else user@host; --limit", async () => {
    const connect = zookeeper.withChroot("history");
    const alice = { CONVEYOR_ACTOR: "alice" };
    const steps: { args: string[]; action: string; from?: string; to?: string }[] = [
      { args: ["app", "create", "web", "1.0", "--get-version-cmd", "true", "--deploy-cmd", "true"], action: "create", to: "1.0" },
      { args: ["app", "create", "web", "2.0", "--canary", "1"], action: "publish", from: "1.0", to: "2.0" },
      { args: ["app", "set-slots", "web", "3"], action: "set-slots", from: "1", to: "3" },
      { args: ["app", "pause", "web"], action: "pause", to: "2.0" },
      { args: ["app", "resume", "web"], action: "resume", to: "2.0" },
      { args: ["app", "promote", "web"], action: "promote", to: "2.0" },
      { args: ["app", "retry", "web"], action: "retry", from: "2.0", to: "2.0" },
      { args: ["app", "rollback", "web"], action: "rollback", from: "2.0", to: "1.0" },
    ];
    for (const step of steps) expectOk(await cli(connect, step.args, alice));

    const all = await history(connect, "web");
    expect(all).toHaveLength(steps.length);
    expect(all.map((h) => h.action)).toEqual(steps.map((s) => s.action).reverse());
    for (const [i, step] of [...steps].reverse().entries()) {
      const entry = all[i];
      expect(entry?.by).toBe("alice");
      expect(entry?.from).toBe(step.from);
      expect(entry?.to).toBe(step.to);
    }
    expect(all[2]?.detail).toBe("canary 1"); // promote
    expect(all.at(-2)?.detail).toBe("canary 1"); // the publish with --canary
    // Newest first: strictly decreasing sequence numbers, non-increasing timestamps.
    for (let i = 1; i < all.length; i++) {
      expect((all[i - 1]?.seq ?? 0) > (all[i]?.seq ?? 0)).toBe(true);
      expect(Date.parse(all[i - 1]?.at ?? "") >= Date.parse(all[i]?.at ?? "")).toBe(true);
    }

    // Who acted, without CONVEYOR_ACTOR: the CI's variable; with both, CONVEYOR_ACTOR wins.
    expectOk(await cli(connect, ["app", "pause", "web"], { GITHUB_ACTOR: "octocat" }));
    expectOk(await cli(connect, ["app", "resume", "web"], { GITHUB_ACTOR: "octocat", CONVEYOR_ACTOR: "deploy-bot" }));
    // With neither: user@hostname (runCli passes only PATH, so the user comes from the system).
    expectOk(await cli(connect, ["app", "set-slots", "web", "2"], {}));
    const newest = await history(connect, "web", ["--limit", "3"]);
    expect(newest.map((h) => [h.action, h.by])).toEqual([
      ["set-slots", `${loginName()}@${hostname()}`],
      ["resume", "deploy-bot"],
      ["pause", "octocat"],
    ]);
    expect(await showSpec(connect, "web")).toMatchObject({ updatedBy: `${loginName()}@${hostname()}` });

    const two = await history(connect, "web", ["--limit", "2"]);
    expect(two).toHaveLength(2);
    expect(two).toEqual(newest.slice(0, 2));
    for (const bad of ["0", "201", "x", "-1"]) {
      const r = await cli(connect, ["app", "history", "web", "--limit", bad]);
      expect(r.code, `--limit ${bad}: ${show(r)}`).toBe(2);
    }
    // USER (or LOGNAME) names the user when no actor variable is set.
    expectOk(await cli(connect, ["app", "set-slots", "web", "1"], { USER: "carol" }));
    expect((await history(connect, "web", ["--limit", "1"]))[0]?.by).toBe(`carol@${hostname()}`);

    // The text table carries the same entries.
    const table = await cli(connect, ["app", "history", "web", "--limit", "2"]);
    expectOk(table);
    const rows = table.stdout.trim().split("\n");
    expect(rows[0]).toMatch(/^WHEN\s+WHO\s+ACTION\s+VERSION\s+DETAIL$/);
    expect(rows).toHaveLength(3);
    expect(rows[1]).toContain("set-slots");
    expect(rows[1]).toContain("carol@");
    expect(rows[2]).toContain("set-slots");
  });

  test("only the newest 200 entries are kept", async () => {
    const connect = zookeeper.withChroot("history-cap");
    expectOk(await cli(connect, ["app", "create", "web", "1.0", "--get-version-cmd", "true", "--deploy-cmd", "true"]));
    const zk = await ZkClient.connect({ connectString: connect, connectTimeoutMs: 10_000 });
    try {
      // 1 create + 230 set-slots = 231 mutations; the last one sets slots to 230.
      for (let i = 1; i <= 230; i++) await setSlots(zk, "web", i, testActor);
      expect(await zk.children(historyDir("web"))).toHaveLength(200);
    } finally {
      await zk.close();
    }
    const kept = await history(connect, "web", ["--limit", "200"]);
    expect(kept).toHaveLength(200);
    expect(kept[0]).toMatchObject({ action: "set-slots", from: "229", to: "230", by: "test" });
    // Entry k (k ≥ 1) is set-slots k-1 → k; the oldest kept is #31; create and #1..#30 are gone.
    expect(kept.at(-1)).toMatchObject({ action: "set-slots", from: "30", to: "31" });
    expect(kept.some((h) => h.action === "create")).toBe(false);
    // One more mutation through the binary: still 200, and it is the newest.
    expectOk(await cli(connect, ["app", "pause", "web"]));
    const again = await history(connect, "web", ["--limit", "200"]);
    expect(again).toHaveLength(200);
    expect(again[0]).toMatchObject({ action: "pause", by: "ops" });
    expect(again.at(-1)).toMatchObject({ from: "31", to: "32" });
    // The default limit is 20.
    expect(await history(connect, "web")).toHaveLength(20);
  });
});
