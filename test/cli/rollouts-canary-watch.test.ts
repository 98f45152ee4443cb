// Canary rollouts (--canary N, app promote, --canary-auto) and `status --watch` (piped, and
// under a pseudo-terminal), with the compiled binary, a real ZooKeeper and in-process agents.
//
// One ZooKeeper for the file, one chroot per test.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { childrenOf, pidAlive } from "../harness/processes.ts";
import { ensureBinary, useCli } from "../harness/cli.ts";
import { readDeployLog, testCommands } from "../helpers/deploy-log.ts";
import { type LiveProcess, spawnInPty, spawnLive } from "../helpers/pty.ts";
import { type RolloutSetup, allOn, expectOk, peek, show, useRolloutFixture, versionFiles } from "../helpers/rollout-fixture.ts";
import { waitFor } from "../harness/wait.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";

setDefaultTimeout(60_000);
const zookeeper = useZooKeeper();
useCli();

const { setup: setupFleet, cli, warmUp, appStatus } = useRolloutFixture(zookeeper);

// ---------------------------------------------------------------------------------------------
// Helpers

interface Setup extends RolloutSetup {
  /** --get-version-cmd / --deploy-cmd of testCommands(log, deploySeconds). */
  cmds: string[];
}

async function setup(prefix: string, hosts: number, deploySeconds: number): Promise<Setup> {
  const s = await setupFleet(prefix, hosts);
  const c = testCommands(s.log, deploySeconds);
  return { ...s, cmds: ["--get-version-cmd", c.getVersionCmd, "--deploy-cmd", c.deployCmd] };
}

function starts(log: string, version: string): string[] {
  return readDeployLog(log)
    .filter((e) => e.kind === "start" && e.version === version)
    .map((e) => e.host);
}

// ---------------------------------------------------------------------------------------------

describe("canary", () => {
  test("--canary 2: exactly 2 hosts deploy, the rest stay queued, a wait times out (exit 1); promote → every host converges", async () => {
    const s = await setup("canary", 5, 0.2);
    await warmUp(s, "0.9", ["--slots", "5", ...s.cmds]);
    expectOk(await cli(s.connect, ["app", "create", "web", "1.0", "--canary", "2"]));
    // The canaries finish (however long that takes here) and the rest queue; only then does the
    // wait start, so its timeout can only leave the queued hosts behind.
    await waitFor(
      async () => {
        const v = await peek(s, "web");
        const mine = v?.hosts.filter((h) => h.rolloutId === v.rolloutId) ?? [];
        return (
          mine.filter((h) => h.state === "current" && h.version === "1.0").length === 2 &&
          mine.filter((h) => h.state === "queued").length === 3
        );
      },
      20_000,
      "2 canaries current and 3 hosts queued",
    );
    const r = await cli(s.connect, ["app", "wait", "web", "--wait-timeout", "2s"]);
    expect(r.code, show(r)).toBe(1);
    expect(r.ms, show(r)).toBeGreaterThanOrEqual(2_000);
    expect(r.stderr, show(r)).toMatch(/timed out/);

    const canaries = starts(s.log, "1.0");
    expect(canaries, show(r)).toHaveLength(2);
    const files = versionFiles(s.agents);
    expect(Object.values(files).filter((v) => v === "1.0")).toHaveLength(2);
    for (const host of canaries) expect(files[host]).toBe("1.0");
    const view = await appStatus(s.connect, "web");
    expect(view.state).toBe("rolling");
    const byState = (state: string): string[] =>
      view.hosts
        .filter((h) => h.state === state)
        .map((h) => h.host)
        .sort();
    expect(byState("current")).toEqual([...canaries].sort());
    const rest = s.agents.map((a) => a.host).filter((h) => !canaries.includes(h));
    expect(byState("queued")).toEqual(rest);
    // The timeout names the hosts that did not finish: exactly the non-canary ones.
    for (const host of rest) expect(r.stderr, show(r)).toMatch(new RegExp(`\\b${host} \\(queued`));
    for (const host of canaries) expect(r.stderr, show(r)).not.toMatch(new RegExp(`\\b${host}\\b`));
    expect(starts(s.log, "1.0")).toHaveLength(2); // nobody else deployed during the wait either

    const promoted = await cli(s.connect, ["app", "promote", "web"]);
    expectOk(promoted);
    const waited = await cli(s.connect, ["app", "wait", "web", "--wait-timeout", "30s"]);
    const atExit = versionFiles(s.agents);
    expect(waited.code, show(waited)).toBe(0);
    expect(atExit).toEqual(allOn(s.agents, "1.0"));
    expect(starts(s.log, "1.0").sort()).toEqual(["h1", "h2", "h3", "h4", "h5"]); // canaries not redeployed
    const after = await appStatus(s.connect, "web");
    expect(after.state).toBe("converged");
    expect(after.hosts.every((h) => h.state === "current" && h.rolloutId === after.rolloutId)).toBe(true);

    // Promoting twice, or a rollout without a canary, is an error (exit 1).
    const twice = await cli(s.connect, ["app", "promote", "web"]);
    expect(twice.code, show(twice)).toBe(1);
    expect(twice.stderr).toMatch(/already promoted/);
  });

  test("--canary 1 --canary-auto --wait converges without promote; the others start only after the canary is current", async () => {
    const s = await setup("canary-auto", 5, 0.3);
    await warmUp(s, "1.0", ["--slots", "2", ...s.cmds]);
    const r = await cli(s.connect, ["app", "create", "web", "2.0", "--canary", "1", "--canary-auto", "--wait", "--wait-timeout", "40s"]);
    const atExit = versionFiles(s.agents);
    expect(r.code, show(r)).toBe(0);
    expect(atExit).toEqual(allOn(s.agents, "2.0"));
    const events = readDeployLog(s.log).filter((e) => e.version === "2.0");
    const first = events[0];
    expect(first?.kind).toBe("start");
    // The canary ran alone: its end comes before any other host's start.
    expect(events[1], JSON.stringify(events)).toMatchObject({ kind: "end", host: first?.host });
    expect(events.filter((e) => e.kind === "start")).toHaveLength(5);
    const view = await appStatus(s.connect, "web");
    expect(view.state).toBe("converged");
    const history = JSON.parse((await cli(s.connect, ["app", "history", "web", "--json", "--limit", "1"])).stdout) as {
      action: string;
      detail?: string;
    }[];
    expect(history[0]).toMatchObject({ action: "publish", detail: "canary 1 (auto-promote)" });
  });

  test("a failing canary halts the rollout before the fleet is touched; --rollback-on-failure restores the version", async () => {
    const s = await setup("canary-fail", 4, 0.1);
    await warmUp(s, "1.0", ["--slots", "4", "--max-failures", "0", ...s.cmds]);
    // 2.0 is broken everywhere: its deploy exits 4 without installing anything.
    const broken = `echo "start $CONVEYOR_HOST $CONVEYOR_VERSION" >> '${s.log}'; echo "end $CONVEYOR_HOST $CONVEYOR_VERSION" >> '${s.log}'; echo "2.0 is broken"; exit 4`;
    const r = await cli(s.connect, [
      "app",
      "create",
      "web",
      "2.0",
      "--deploy-cmd",
      broken,
      "--canary",
      "1",
      "--canary-auto",
      "--wait",
      "--rollback-on-failure",
      "--wait-timeout",
      "30s",
    ]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr, show(r)).toMatch(/exit 4/);
    expect(starts(s.log, "2.0"), show(r)).toHaveLength(1); // only the canary tried
    expect(r.stdout, show(r)).toContain("rolling back web to 1.0");
    expect(versionFiles(s.agents)).toEqual(allOn(s.agents, "1.0"));
    const view = await appStatus(s.connect, "web");
    expect(view).toMatchObject({ version: "1.0", previousVersion: "2.0", state: "converged" });
  });

  test("promote without a canary exits 1; bad canary options exit 2", async () => {
    const connect = zookeeper.withChroot("canary-errors");
    expectOk(await cli(connect, ["app", "create", "web", "1.0", "--get-version-cmd", "true", "--deploy-cmd", "true"]));
    const r = await cli(connect, ["app", "promote", "web"]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr, show(r)).toMatch(/^error: .*no canary.*\n$/);
    for (const args of [["--canary-auto"], ["--canary", "0"], ["--canary", "x"], ["--canary", "-1"]]) {
      const bad = await cli(connect, ["app", "create", "web", "2.0", ...args]);
      expect(bad.code, `${args.join(" ")}: ${show(bad)}`).toBe(2);
    }
    const spec = JSON.parse((await cli(connect, ["app", "show", "web", "--json"])).stdout) as { version: string };
    expect(spec.version).toBe("1.0"); // nothing was published
  });
});

describe("status --watch", () => {
  test("piped: one line per change; a new version shows as it is published; stopped by PID", async () => {
    const s = await setup("watch", 2, 0.2);
    await warmUp(s, "1.0", ["--slots", "2", ...s.cmds]);
    const binary = await ensureBinary();
    const w: LiveProcess = spawnLive([binary, "--zk", s.connect, "status", "--watch"]);
    await w.waitForOutput(/^\S+ web 1\.0 converged slots=2 current=2\/2$/m, 10_000);
    await w.waitForOutput(/^\S+ web h2 current version=1\.0 target=1\.0$/m, 10_000);
    expect(w.output).not.toContain("\x1b");

    const from = w.output.length;
    const published = await cli(s.connect, ["app", "create", "web", "2.0"]);
    expectOk(published);
    // Watches, not a timed poll, bring it (how fast is for `bun run bench`, not a bound here
    // that a loaded machine would break).
    await w.waitForOutput(/^\S+ web 2\.0 (rolling|converged) slots=2 /m, 10_000, from);
    // Then the hosts' events, and the end of the rollout.
    await w.waitForOutput(/^\S+ web h1 (queued|deploying)\b.* target=2\.0/m, 10_000, from);
    await w.waitForOutput(/^\S+ web 2\.0 converged slots=2 current=2\/2$/m, 15_000, from);
    // Each line is a change: no line is printed twice in a row for the same key.
    const lines = w.output
      .slice(from)
      .split("\n")
      .filter(Boolean)
      .map((l) => l.replace(/^\S+ /, ""));
    for (let i = 1; i < lines.length; i++) expect(lines[i]).not.toBe(lines[i - 1]);

    expect(pidAlive(w.pid)).toBe(true); // still watching until told to stop
    const exit = await w.stop();
    expect(exit.code !== null || exit.signal !== null).toBe(true);
    expect(pidAlive(w.pid)).toBe(false);
    expect(w.stderr).toBe("");
  });

  test("under a pseudo-terminal: the whole view is redrawn in place and the redraw shows the new state", async () => {
    const s = await setup("watch-tty", 2, 0.2);
    await warmUp(s, "1.0", ["--slots", "2", ...s.cmds]);
    const binary = await ensureBinary();
    const w = spawnInPty([binary, "--zk", s.connect, "status", "web", "--watch"]);
    const CLEAR = "\x1b[H\x1b[2J";
    await w.waitForOutput(/\(watching; Ctrl-C to stop\)/, 10_000);
    expect(w.output).toContain(CLEAR);
    expect(w.output).toMatch(/web\s+1\.0\s+slots 2\s+CONVERGED/);

    // Publish with --wait in a terminal too: one live progress line rewritten in place, not a
    // line per event.
    const from = w.output.length;
    const publisher = spawnInPty([binary, "--zk", s.connect, "app", "create", "web", "2.0", "--wait"]);
    const published = await Promise.race([publisher.exited, Bun.sleep(30_000).then(() => undefined)]);
    expect(published?.code, publisher.output).toBe(0);
    expect(publisher.output).toContain("\r\x1b[2K");
    expect(publisher.output).toMatch(/web 2\.0 \[#{20}\] 2\/2 done · 0 deploying · 0 queued · 0 failed/);
    expect(publisher.output).not.toMatch(/\[\+\d+\.\ds\]/);
    expect(publisher.output).toMatch(/web 2\.0: converged on 2 host\(s\)/);
    const lastFrame = async (): Promise<string> => {
      await w.waitForOutput(/web\s+2\.0 \(was 1\.0\)\s+slots 2\s+CONVERGED[\s\S]*\(watching; Ctrl-C to stop\)/, 10_000, from);
      return w.output.slice(w.output.lastIndexOf(CLEAR));
    };
    const frame = await lastFrame();
    expect(frame).toMatch(/web\s+2\.0 \(was 1\.0\)\s+slots 2\s+CONVERGED\s+current 2\/2/);
    expect(frame).toMatch(/^\s*h1\s+current\s+2\.0\s+2\.0\b/m);
    expect(frame).toMatch(/^\s*h2\s+current\s+2\.0\s+2\.0\b/m);
    // Not the piped format.
    expect(w.output).not.toMatch(/current=\d+\/\d+/);

    // Stopping kills the watcher that script runs as well as script itself.
    const watcher = childrenOf(w.pid);
    expect(watcher).toHaveLength(1);
    await w.stop();
    expect(pidAlive(w.pid)).toBe(false);
    await waitFor(() => watcher.every((pid) => !pidAlive(pid)), 5_000, "the watcher under script to exit");
  });
});
