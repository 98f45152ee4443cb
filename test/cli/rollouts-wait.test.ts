// `app create … --wait` against the compiled binary, a real ZooKeeper and in-process agents
// (each its own session and directory; commands are real /bin/sh): exit codes, the promise that
// exit 0 never comes before convergence, the CI log (one line per host event + summary table),
// --max-failures 0, --rollback-on-failure, --wait-timeout with an offline host, and --json.
//
// One ZooKeeper for the file, one chroot per test.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AppView } from "../../src/apps/fleet-view.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { ensureBinary, useCli } from "../harness/cli.ts";
import { maxConcurrency, readDeployLog } from "../helpers/deploy-log.ts";
import type { FleetAgent } from "../helpers/in-process-fleet.ts";
import { spawnInPty, spawnLive } from "../helpers/pty.ts";
import { allOn, expectOk, peek, show, useRolloutFixture, versionFiles } from "../helpers/rollout-fixture.ts";
import { waitFor } from "../harness/wait.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";

setDefaultTimeout(60_000);
const zookeeper = useZooKeeper();
useCli();

const { setup, cli, warmUp, appStatus } = useRolloutFixture(zookeeper, { actor: "ci-test" });

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * get-version/deploy commands. The deploy appends start/end lines to `log`, sleeps `seconds`
 * and writes VERSION; but if the host's directory holds a file FAIL-<version>, it first waits
 * until the log shows as many deploys of that version started as the file says (its own
 * included), then prints two lines (stdout, stderr) and exits 3.
 */
function commandArgs(log: string, seconds: number): string[] {
  const deploy = [
    `echo "start $CONVEYOR_HOST $CONVEYOR_VERSION" >> '${log}'`,
    `if [ -e "FAIL-$CONVEYOR_VERSION" ]; then while [ "$(grep -c "^start .* $CONVEYOR_VERSION$" '${log}')" -lt "$(cat "FAIL-$CONVEYOR_VERSION")" ]; do sleep 0.02; done; echo "boom: cannot install $CONVEYOR_VERSION on $CONVEYOR_HOST"; echo "second line of output" >&2; echo "end $CONVEYOR_HOST $CONVEYOR_VERSION" >> '${log}'; exit 3; fi`,
    `sleep ${seconds}`,
    `echo %(version)s > VERSION`,
    `echo "end $CONVEYOR_HOST $CONVEYOR_VERSION" >> '${log}'`,
  ].join("; ");
  return ["--get-version-cmd", "cat VERSION 2>/dev/null || true", "--deploy-cmd", deploy];
}

/** `agent` fails `version` — once `afterStarts` deploys of it have started, its own included. */
function failOn(agent: FleetAgent, version: string, afterStarts = 1): void {
  writeFileSync(join(agent.dir, `FAIL-${version}`), `${afterStarts}\n`);
}

/** Every host reports `current` on `version` for the app's current rollout. */
function expectConverged(view: AppView, version: string, hosts: string[]): void {
  expect(view.version).toBe(version);
  expect(view.state).toBe("converged");
  expect(view.pendingAgents).toEqual([]);
  const seen = view.hosts.map((h) => ({ host: h.host, state: h.state, version: h.version, rolloutId: h.rolloutId }));
  expect(seen.sort((a, b) => a.host.localeCompare(b.host))).toEqual(
    hosts.map((host) => ({ host, state: "current" as const, version, rolloutId: view.rolloutId })),
  );
}

function nonEmptyLines(text: string): string[] {
  return text.split("\n").filter((l) => l.trim() !== "");
}

const HOSTS4 = ["h1", "h2", "h3", "h4"];

// ---------------------------------------------------------------------------------------------

describe("app create --wait", () => {
  test("healthy fleet: exit 0 only once every host runs the version; a line per host event and a summary table", async () => {
    const s = await setup("wait-ok", 4);
    for (const version of ["1.0", "2.0"]) {
      // 1.0 creates the app (no host has reported yet); 2.0 publishes over reported hosts.
      const create = version === "1.0" ? ["--slots", "2", ...commandArgs(s.log, 0.3)] : [];
      const r = await cli(s.connect, ["app", "create", "web", version, ...create, "--wait", "--wait-timeout", "40s"]);
      // Read the servers the moment the command has exited: nothing may still be deploying.
      const atExit = versionFiles(s.agents);
      expect(r.code, show(r)).toBe(0);
      expect(atExit, show(r)).toEqual(allOn(s.agents, version));
      const events = readDeployLog(s.log).filter((e) => e.version === version);
      expect(
        events
          .filter((e) => e.kind === "start")
          .map((e) => e.host)
          .sort(),
      ).toEqual(HOSTS4);
      expect(
        events
          .filter((e) => e.kind === "end")
          .map((e) => e.host)
          .sort(),
      ).toEqual(HOSTS4);
      expect(maxConcurrency(events)).toBeLessThanOrEqual(2);

      const view = await appStatus(s.connect, "web");
      expectConverged(view, version, HOSTS4);

      // Non-TTY (CI log): one plain line per host event, no terminal control sequences.
      expect(r.stdout).not.toContain("\x1b");
      expect(r.stdout).not.toContain("\r");
      const out = nonEmptyLines(r.stdout);
      const eventLines = out.filter((l) => /^\[\+\d+\.\ds\] /.test(l));
      for (const host of HOSTS4) {
        const mine = eventLines.filter((l) => new RegExp(`^\\[\\+\\d+\\.\\ds\\] ${host}\\s`).test(l));
        expect(
          mine.some((l) => l.includes(`deploying ${version}`)),
          show(r),
        ).toBe(true);
        expect(
          mine.some((l) => new RegExp(`current ${version.replace(".", "\\.")} \\(deploy took `).test(l)),
          show(r),
        ).toBe(true);
        // One line per event: a host's line never repeats the same state back to back.
        const states = mine.map((l) => l.replace(/^\[\+\d+\.\ds\] /, ""));
        for (let i = 1; i < states.length; i++) expect(states[i], show(r)).not.toBe(states[i - 1]);
      }
      // Then the summary table: HOST / RESULT / DURATION, one row per host, and a final line.
      const header = out.findIndex((l) => /^HOST\s+RESULT\s+DURATION$/.test(l));
      expect(header, show(r)).toBeGreaterThan(-1);
      expect(header).toBeGreaterThan(out.indexOf(eventLines.at(-1) ?? ""));
      const rows = out.slice(header + 1, header + 1 + HOSTS4.length);
      expect(rows.map((l) => l.split(/\s+/)[0]).sort()).toEqual(HOSTS4);
      for (const row of rows)
        expect(row, show(r)).toMatch(new RegExp(`^h\\d\\s+current ${version.replace(".", "\\.")}\\s+\\d+(\\.\\d+)?m?s$`));
      expect(out.at(-1), show(r)).toMatch(new RegExp(`^web ${version.replace(".", "\\.")}: converged on 4 host\\(s\\) in `));
      expect(r.stderr).toBe("");
    }
  });

  test("--max-failures 0 and one host fails: exit 1 naming the host, its exit code and error; status shows halted/failed with the output", async () => {
    const s = await setup("wait-halt", 4);
    const h3 = s.agents[2];
    if (!h3) throw new Error("no h3");
    await warmUp(s, "0.9", ["--slots", "2", "--max-failures", "0", ...commandArgs(s.log, 0.3)]);
    failOn(h3, "1.0");
    const r = await cli(s.connect, ["app", "create", "web", "1.0", "--wait"]);
    expect(r.code, show(r)).toBe(1);

    const view = await appStatus(s.connect, "web");
    expect(view.state).toBe("halted");
    const failed = view.hosts.find((h) => h.host === "h3");
    expect(failed?.state).toBe("failed");
    expect(failed?.exitCode).toBe(3);
    expect(failed?.rolloutId).toBe(view.rolloutId);
    expect(failed?.outputTail ?? "").toContain("boom: cannot install 1.0 on h3");
    expect(failed?.outputTail ?? "").toContain("second line of output");
    const firstErrorLine = (failed?.error ?? "").split("\n")[0] ?? "";
    expect(firstErrorLine).not.toBe("");

    // stderr: the halt, and the failed host with its exit code and the first line of its error.
    expect(r.stderr, show(r)).toMatch(/halted/);
    const hostLine = r.stderr.split("\n").find((l) => /\bh3\b/.test(l));
    expect(hostLine, show(r)).toBeDefined();
    expect(hostLine, show(r)).toContain("exit 3");
    expect(hostLine, show(r)).toContain(firstErrorLine);
    // No other host is named as failed.
    for (const host of ["h1", "h2", "h4"]) expect(r.stderr, show(r)).not.toMatch(new RegExp(`\\b${host}\\b`));
    expect(r.stdout, show(r)).toMatch(/^h3\s+FAILED \(exit 3\)/m);
  });

  test("--rollback-on-failure: the failed release is rolled back on every host, exit 1, history records the rollback", async () => {
    const s = await setup("wait-rollback", 4);
    await warmUp(s, "1.0", ["--slots", "2", "--max-failures", "0", ...commandArgs(s.log, 0.5)]);
    const h2 = s.agents[1];
    if (!h2) throw new Error("no h2");
    // h2 fails 2.0 only once another host has started it (not after a time that may or may not
    // be long enough for the other slot to be taken): whichever wave h2 is in, a host of its
    // wave or of an earlier one installs 2.0 (a running deploy finishes after the halt).
    failOn(h2, "2.0", 2);
    const r = await cli(s.connect, ["app", "create", "web", "2.0", "--wait", "--rollback-on-failure", "--wait-timeout", "40s"]);
    const atExit = versionFiles(s.agents);
    expect(r.code, show(r)).toBe(1);
    expect(atExit, show(r)).toEqual(allOn(s.agents, "1.0"));
    expect(r.stdout, show(r)).toContain("rolling back web to 1.0");
    expect(r.stderr, show(r)).toMatch(/h2: exit 3/);

    // Some hosts really had the bad version and were taken back to 1.0 afterwards.
    const events = readDeployLog(s.log);
    const gotBad = events.filter((e) => e.kind === "end" && e.version === "2.0" && e.host !== "h2");
    expect(gotBad.length, JSON.stringify(events)).toBeGreaterThan(0);
    for (const bad of gotBad) {
      const back = events.find((e) => e.kind === "end" && e.version === "1.0" && e.host === bad.host && e.line > bad.line);
      expect(back, `${bad.host} never went back to 1.0: ${JSON.stringify(events)}`).toBeDefined();
    }

    const view = await appStatus(s.connect, "web");
    expect(view.previousVersion).toBe("2.0");
    expectConverged(view, "1.0", HOSTS4);

    const h = await cli(s.connect, ["app", "history", "web", "--json"]);
    expect(h.code, show(h)).toBe(0);
    const history = JSON.parse(h.stdout) as { action: string; from?: string; to?: string; by: string }[];
    expect(history[0]).toMatchObject({ action: "rollback", from: "2.0", to: "1.0", by: "ci-test" });
    expect(history[1]).toMatchObject({ action: "publish", from: "1.0", to: "2.0" });
  });

  test("no agent serves the app: --wait exits 1 at once instead of waiting for the timeout", async () => {
    const connect = zookeeper.withChroot("wait-nohosts");
    const r = await cli(connect, [
      "app",
      "create",
      "web",
      "1.0",
      "--get-version-cmd",
      "true",
      "--deploy-cmd",
      "true",
      "--wait",
      "--wait-timeout",
      "30s",
    ]);
    expect(r.code, show(r)).toBe(1);
    // The outcome tells, not the time: at the timeout it would say "timed out".
    expect(r.stderr, show(r)).toMatch(/no agent serves app "web"/);
    expect(r.stderr, show(r)).not.toMatch(/timed out/);
  });

  test("--wait-timeout: an offline host (reported before, agent stopped) makes the wait exit 1 at the timeout, naming it offline", async () => {
    const s = await setup("wait-offline", 3);
    await warmUp(s, "1.0", [...commandArgs(s.log, 0.1), "--slots", "3"]);
    // Stop h3: its status node stays (it ran 1.0), its presence node goes with its session.
    const h3 = s.agents[2];
    if (!h3) throw new Error("no h3");
    await h3.stop();
    s.fleet.agents.splice(s.fleet.agents.indexOf(h3), 1);
    const before = await appStatus(s.connect, "web");
    expect(before.hosts.find((h) => h.host === "h3")).toMatchObject({ state: "offline", online: false, version: "1.0" });

    // The live hosts converge first (however long that takes here), then the wait starts: only
    // the offline host can be left when its timeout runs out.
    expectOk(await cli(s.connect, ["app", "create", "web", "2.0"]));
    await waitFor(
      async () => {
        const view = await peek(s, "web");
        return ["h1", "h2"].every((host) =>
          view?.hosts.some((h) => h.host === host && h.state === "current" && h.version === "2.0" && h.rolloutId === view.rolloutId),
        );
      },
      20_000,
      "h1 and h2 current on 2.0",
    );
    expect(versionFiles(s.agents.slice(0, 2))).toEqual({ h1: "2.0", h2: "2.0" });
    const r = await cli(s.connect, ["app", "wait", "web", "--wait-timeout", "2s"]);
    expect(r.code, show(r)).toBe(1);
    expect(r.ms, show(r)).toBeGreaterThanOrEqual(2_000);
    expect(r.stderr, show(r)).toMatch(/timed out/);
    expect(r.stderr, show(r)).toMatch(/\bh3 \(offline\b/);
    expect(r.stderr, show(r)).not.toMatch(/\bh[12]\b/);

    // An offline host that already runs the version does not hold convergence back.
    const back = await cli(s.connect, ["app", "rollback", "web", "--wait", "--wait-timeout", "20s"]);
    expect(back.code, show(back)).toBe(0);
    expect(versionFiles(s.agents.slice(0, 2))).toEqual({ h1: "1.0", h2: "1.0" });
    expect(back.stdout, show(back)).toMatch(/^h3\s+current 1\.0 \(offline\)/m);
  });

  test("--json with --wait: one JSON object with exitCode and the outcome of each rollout", async () => {
    const s = await setup("wait-json", 3);
    await warmUp(s, "0.9", ["--slots", "2", "--max-failures", "0", ...commandArgs(s.log, 0.1)]);
    let r = await cli(s.connect, ["--json", "app", "create", "web", "1.0", "--wait"]);
    const atExit = versionFiles(s.agents);
    expect(r.code, show(r)).toBe(0);
    expect(atExit).toEqual(allOn(s.agents, "1.0"));
    let doc = JSON.parse(r.stdout) as Record<string, unknown>; // the whole stdout is one document
    expect(typeof doc === "object" && doc !== null && !Array.isArray(doc)).toBe(true);
    const view = await appStatus(s.connect, "web");
    expect(doc).toMatchObject({
      app: "web",
      exitCode: 0,
      rollouts: [{ rolloutId: view.rolloutId, version: "1.0", outcome: "converged", failed: [] }],
    });
    expect(Array.isArray(doc.rollouts) ? doc.rollouts.length : -1).toBe(1);
    expect(r.stderr).toBe("");

    // A failed release with --rollback-on-failure: still one object, exit 1, both rollouts.
    const h2 = s.agents[1];
    if (!h2) throw new Error("no h2");
    failOn(h2, "2.0");
    r = await cli(s.connect, ["--json", "app", "create", "web", "2.0", "--wait", "--rollback-on-failure"]);
    expect(r.code, show(r)).toBe(1);
    doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(doc).toMatchObject({
      app: "web",
      exitCode: 1,
      rollouts: [
        { version: "2.0", outcome: "halted", failed: ["h2"] },
        { version: "1.0", outcome: "converged" },
      ],
    });
    expect(Array.isArray(doc.rollouts) ? doc.rollouts.length : -1).toBe(2);
    expect(versionFiles(s.agents)).toEqual(allOn(s.agents, "1.0"));
  });

  test("groups narrowed by a publish: a host whose agent no longer serves the app is not waited for (exit 0) and status lists it apart", async () => {
    const s = await setup("wait-groups", 0);
    const web = await s.fleet.start("w1", { groups: ["web"] });
    const db = await s.fleet.start("d1", { groups: ["db"] });
    expectOk(await cli(s.connect, ["app", "create", "web", "1.0", ...commandArgs(s.log, 0.1)]));
    await waitFor(async () => (await peek(s, "web"))?.state === "converged", 15_000, "both hosts on 1.0");
    const r = await cli(s.connect, ["app", "create", "web", "2.0", "--groups", "web", "--wait", "--wait-timeout", "10s"]);
    expect(r.code, show(r)).toBe(0);
    expect(versionFiles([web, db])).toEqual({ w1: "2.0", d1: "1.0" });
    const view = await appStatus(s.connect, "web");
    expect(view.state).toBe("converged");
    expect(view.hosts.map((h) => h.host)).toEqual(["w1"]);
    expect(view.untargetedHosts).toEqual(["d1"]);
    const text = await cli(s.connect, ["status", "web"]);
    expect(text.stdout).toContain("no longer served by these hosts (app groups or agent apps list): d1");
  });
});

// ---------------------------------------------------------------------------------------------
// Regression (issue 10): a rollout in which every targeted host failed, within --max-failures,
// ended as "converged on 0 host(s)" with exit 0, and `status` said ROLLING for ever. Now the
// outcome and the app state are `failed` (exit 1); a rollout in which some host succeeded and
// the failures stay within the budget still converges (exit 0, warnings).

describe("every host has a verdict", () => {
  test("every host failed within --max-failures: exit 1, outcome failed, status FAILED; some succeeded: converged with warnings", async () => {
    const s = await setup("wait-all-failed", 3);
    await warmUp(s, "1.0", ["--slots", "3", "--max-failures", "5", ...commandArgs(s.log, 0.1)]);

    // --json, --rollback-on-failure: the failed release is rolled back too.
    for (const a of s.agents) failOn(a, "2.0");
    const back = await cli(s.connect, [
      "--json",
      "app",
      "create",
      "web",
      "2.0",
      "--wait",
      "--rollback-on-failure",
      "--wait-timeout",
      "40s",
    ]);
    expect(back.code, show(back)).toBe(1);
    expect(JSON.parse(back.stdout), show(back)).toMatchObject({
      app: "web",
      exitCode: 1,
      rollouts: [
        { version: "2.0", outcome: "failed", failed: ["h1", "h2", "h3"] },
        { version: "1.0", outcome: "converged", failed: [] },
      ],
    });
    expect(versionFiles(s.agents)).toEqual(allOn(s.agents, "1.0"));

    // Text: the failure, each host with its exit code; never "converged".
    for (const a of s.agents) failOn(a, "3.0");
    const r = await cli(s.connect, ["app", "create", "web", "3.0", "--wait", "--wait-timeout", "40s"]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout, show(r)).not.toMatch(/converged/);
    expect(r.stderr, show(r)).toMatch(/^error: web 3\.0: rollout failed: no host succeeded \(3 failed, within --max-failures 5\)/m);
    for (const host of ["h1", "h2", "h3"])
      expect(r.stderr, show(r)).toMatch(new RegExp(`^  ${host}: exit 3: deploy-cmd exited with code 3$`, "m"));
    const failed = await appStatus(s.connect, "web");
    expect(failed.state).toBe("failed");
    expect(failed.counts).toMatchObject({ failed: 3, total: 3, failuresThisRollout: 3 });
    const text = await cli(s.connect, ["status", "web"]);
    expectOk(text);
    expect(text.stdout).toMatch(/^web\s+3\.0 \(was 1\.0\)\s+slots 3\s+FAILED\s+current 0\/3 .* failed 3\b/m);
    // `app wait` on the finished rollout says the same at once.
    const again = await cli(s.connect, ["app", "wait", "web", "--wait-timeout", "40s"]);
    expect(again.code, show(again)).toBe(1);
    expect(again.stderr, show(again)).toMatch(/rollout failed: no host succeeded/);

    // One host fails, two succeed, within the budget: converged (exit 0), the failure a warning.
    const [h1] = s.agents;
    if (!h1) throw new Error("no h1");
    failOn(h1, "4.0");
    const some = await cli(s.connect, ["app", "create", "web", "4.0", "--wait", "--wait-timeout", "40s"]);
    expect(some.code, show(some)).toBe(0);
    expect(some.stdout, show(some)).toMatch(/^web 4\.0: converged on 2 host\(s\) in /m);
    expect(some.stderr, show(some)).toMatch(/^warning: h1 failed \(exit 3: deploy-cmd exited with code 3\), within --max-failures$/m);
    const view = await appStatus(s.connect, "web");
    expect(view.state).toBe("converged");
    expect(view.counts).toMatchObject({ current: 2, failed: 1, total: 3 });
  });
});

// ---------------------------------------------------------------------------------------------
// Regression (issue 10): `--wait` on an existing app whose every host is offline waited the whole
// --wait-timeout (30 min by default). When the wait starts and no live agent serves the app (no
// online host, no pending agent) it now ends at once as no-hosts (exit 1), as for a new app.

describe("no live agent serves the app", () => {
  test("every host offline when the wait starts: no-hosts at once (exit 1), naming the offline hosts", async () => {
    const s = await setup("wait-all-offline", 2);
    await warmUp(s, "1.0", ["--slots", "2", ...commandArgs(s.log, 0.1)]);
    for (const a of s.fleet.agents.splice(0)) await a.stop();

    // The outcome, not the time, tells: a wait that ran to its timeout says "timeout".
    const r = await cli(s.connect, ["--json", "app", "create", "web", "2.0", "--wait", "--wait-timeout", "20s"]);
    expect(r.code, show(r)).toBe(1);
    expect(JSON.parse(r.stdout), show(r)).toMatchObject({ app: "web", exitCode: 1, rollouts: [{ version: "2.0", outcome: "no-hosts" }] });

    const w = await cli(s.connect, ["app", "wait", "web", "--wait-timeout", "20s"]);
    expect(w.code, show(w)).toBe(1);
    expect(w.stderr, show(w)).toMatch(/^error: no agent serves app "web": its 2 host\(s\) are offline \(h1, h2\)/m);
    expect(w.stderr, show(w)).not.toMatch(/timed out/);
  });

  test("decided when the wait starts: an agent that restarts during the wait does not end it", async () => {
    const s = await setup("wait-agent-restart", 1);
    await warmUp(s, "1.0", ["--slots", "1", ...commandArgs(s.log, 0.1)]);
    // Paused: h1 sees 2.0 and queues, nothing deploys until the resume below.
    expectOk(await cli(s.connect, ["app", "pause", "web"]));
    expectOk(await cli(s.connect, ["app", "create", "web", "2.0"]));
    await waitFor(async () => (await peek(s, "web"))?.hosts[0]?.state === "queued", 10_000, "h1 queued for 2.0");
    const binary = await ensureBinary();
    const w = spawnLive([binary, "--zk", s.connect, "app", "wait", "web", "--wait-timeout", "40s"]);
    await w.waitForOutput(/h1\s+queued #1 for 2\.0/, 10_000);
    // h1's agent stops: for a moment no live agent serves the app.
    for (const a of s.fleet.agents.splice(0)) await a.stop();
    await w.waitForOutput(/h1\s+offline \(agent not running; runs 1\.0\)/, 10_000);
    expect(w.exit, w.output).toBeUndefined();
    // It comes back (same server directory) and, once resumed, deploys 2.0: the wait converges.
    const back = await s.fleet.start("h1");
    expectOk(await cli(s.connect, ["app", "resume", "web"]));
    const exit = await w.exited;
    expect(exit.code, w.output).toBe(0);
    expect(versionFiles([back])).toEqual({ h1: "2.0" });
  });
});

// Regression (issue 10): `--wait` on a paused app waited (up to the whole timeout) without saying
// why. It now says so on the progress output, once per change, and keeps waiting.
describe("a paused app", () => {
  test("--wait says the app is paused (once), keeps waiting, and converges after the resume", async () => {
    const s = await setup("wait-paused", 2);
    await warmUp(s, "1.0", ["--slots", "2", ...commandArgs(s.log, 0.1)]);
    expectOk(await cli(s.connect, ["app", "pause", "web"]));
    const binary = await ensureBinary();
    const w = spawnLive([binary, "--zk", s.connect, "app", "create", "web", "2.0", "--wait", "--wait-timeout", "40s"]);
    await w.waitForOutput(/^\[\+\d+\.\ds\] web is paused: waiting for "conveyor app resume web"$/m, 15_000);
    // Both hosts queue for 2.0 meanwhile: each is an event, the pause is not repeated.
    await w.waitForOutput(/h1\s+queued #\d for 2\.0/, 10_000);
    await w.waitForOutput(/h2\s+queued #\d for 2\.0/, 10_000);
    expect(w.exit, w.output).toBeUndefined();
    expectOk(await cli(s.connect, ["app", "resume", "web"]));
    const exit = await w.exited;
    expect(exit.code, w.output).toBe(0);
    expect(w.stdout.match(/is paused/g), w.output).toHaveLength(1);
    expect(w.stdout, w.output).toMatch(/^\[\+\d+\.\ds\] web resumed$/m);
    expect(versionFiles(s.agents)).toEqual(allOn(s.agents, "2.0"));
  });
});

// ---------------------------------------------------------------------------------------------
// Regression: FleetReader published a new child list before reading the new children.
//
// Found while writing these tests (src/apps/fleet-reader.ts, readHostList / readAgentList, as of
// commit bb5b2a3): when a watch reported new children, the reader stored the new name list first
// (`this.hostNames.set(app, names)`) and only then read the new nodes. Any other refresh that
// completed in between (here: the slot queue under /lock, which an agent writes right after its
// first status) called onChange, and waitForRollout took a snapshot in which those hosts had no
// status yet: raw() gave them `{ error: "unreadable" }`, so buildAppView dropped them from
// `hosts` (into invalidNodes) AND from `pendingAgents` (they counted as "reported"). Then
// evaluateRollout saw "converged" when the other hosts were done (exit 0 before convergence), or
// "no-hosts" when none was left (exit 1 "no agent serves app" on a healthy fleet: 2-3 of 30 plain
// `app create … --wait` runs with two in-process agents). Fixed by reading the new children
// before publishing the list (the working tree has that change now).
//
// Both tests drive ZooKeeper directly as agents would (presence, status and queue nodes) so the
// window is hit almost every time: the status of a new host and a queue node in one transaction.

interface FakeFleet {
  zk: ZkClient;
  status(host: string, state: "current" | "queued", version: string, rolloutId: string): Promise<void>;
  firstReportAndQueue(hosts: string[], rolloutId: string): Promise<void>;
}

async function fakeFleet(connect: string, hosts: string[]): Promise<FakeFleet> {
  const zk = await ZkClient.connect({ connectString: connect, connectTimeoutMs: 10_000 });
  await zk.mkdirp("/agents");
  const now = new Date().toISOString();
  for (const host of hosts) {
    await zk.create(
      `/agents/${host}`,
      Buffer.from(JSON.stringify({ groups: [], agentVersion: "fake", pid: process.pid, startedAt: now })),
      "ephemeral",
    );
  }
  const payload = (state: string, version: string, target: string, rolloutId: string): Buffer => {
    const at = new Date().toISOString();
    return Buffer.from(JSON.stringify({ state, version, target, rolloutId, since: at, updatedAt: at }));
  };
  return {
    zk,
    async status(host, state, version, rolloutId) {
      const path = `/apps/web/hosts/${host}`;
      const data = payload(state, version, "1.0", rolloutId);
      if (await zk.exists(path)) await zk.set(path, data);
      else await zk.create(path, data);
    },
    async firstReportAndQueue(names, rolloutId) {
      const txn = zk.transaction();
      for (const host of names) {
        txn.create(`/apps/web/hosts/${host}`, payload("queued", "", "1.0", rolloutId));
        txn.create(`/apps/web/lock/${host}-${zk.sessionId}-`, Buffer.alloc(0), "ephemeralSequential");
      }
      await txn.commit();
    },
  };
}

describe("regression: --wait while a new host's first report is being read", () => {
  // The window is a few microseconds wide and ZooKeeper's notifications do not always land in
  // it (with the old reader the first case hit it in ~11 of 12 rounds, the second in ~6 of 10),
  // so each case runs several rounds (fresh chroot each) and fails at the first premature exit.

  test("never exit 0 before convergence when a host's first report arrives with its queue node", async () => {
    const rounds = 5;
    for (let round = 1; round <= rounds; round++) {
      const connect = zookeeper.withChroot(`wait-race-converged-${round}`);
      const fake = await fakeFleet(connect, ["h1", "h2"]);
      try {
        const binary = await ensureBinary();
        const w = spawnLive([
          binary,
          "--zk",
          connect,
          "app",
          "create",
          "web",
          "1.0",
          "--get-version-cmd",
          "true",
          "--deploy-cmd",
          "true",
          "--wait",
          "--wait-timeout",
          "20s",
        ]);
        const rolloutId = (await w.waitForOutput(/rollout (r[0-9a-z]+)/, 10_000))[1] ?? "";
        // h1 already runs 1.0 and says so. The waiter prints it from a snapshot taken after
        // load() (which watched /lock) and after the refresh of /hosts that found h1.
        await fake.status("h1", "current", "1.0", rolloutId);
        await w.waitForOutput(/h1\s+current 1\.0/, 10_000);
        // h2 (live, not done) reports for the first time and queues for a slot. The waiter
        // prints it from the first snapshot that has it; one without it (the bug) ended the
        // wait before — waitForOutput then fails on the exit.
        await fake.firstReportAndQueue(["h2"], rolloutId);
        await w.waitForOutput(/h2\s+queued/, 10_000);
        // h2 has not deployed anything: the wait must still be running.
        expect(w.exit, `round ${round}:\n${w.output}`).toBeUndefined();
        await fake.status("h2", "current", "1.0", rolloutId);
        const exit = await Promise.race([w.exited, Bun.sleep(10_000).then(() => undefined)]);
        expect(exit?.code, w.output).toBe(0);
      } finally {
        await fake.zk.close();
      }
    }
  });

  test("hosts whose first reports arrive together never vanish from the wait (it ended with 'no agent serves app')", async () => {
    const rounds = 10;
    for (let round = 1; round <= rounds; round++) {
      const connect = zookeeper.withChroot(`wait-race-nohosts-${round}`);
      const fake = await fakeFleet(connect, ["h1", "h2"]);
      try {
        const binary = await ensureBinary();
        // In a terminal the waiter draws its progress line from its first snapshot, which it
        // takes once load() has read — and watched — everything: the moment to report.
        const w = spawnInPty([
          binary,
          "--zk",
          connect,
          "app",
          "create",
          "web",
          "1.0",
          "--get-version-cmd",
          "true",
          "--deploy-cmd",
          "true",
          "--wait",
          "--wait-timeout",
          "20s",
        ]);
        const rolloutId = (await w.waitForOutput(/rollout (r[0-9a-z]+)/, 10_000))[1] ?? "";
        await w.waitForOutput(/ 0\/2 done · 0 deploying · 0 queued /, 10_000);
        await fake.firstReportAndQueue(["h1", "h2"], rolloutId);
        // Drawn from a snapshot with both hosts; the bug ended the wait ("no agent serves app")
        // on one without them, before — waitForOutput then fails on the exit.
        await w.waitForOutput(/ 0\/2 done · 0 deploying · 2 queued /, 10_000);
        expect(w.exit, `round ${round}:\n${w.output}`).toBeUndefined(); // two live hosts queued: still waiting
        await fake.status("h1", "current", "1.0", rolloutId);
        await fake.status("h2", "current", "1.0", rolloutId);
        const exit = await Promise.race([w.exited, Bun.sleep(10_000).then(() => undefined)]);
        expect(exit?.code, w.output).toBe(0);
        // No snapshot lost the two live hosts (the wait no longer ends on one — "no agent serves
        // the app" is decided when it starts — but its progress showed them gone: 0/0).
        expect(w.output, `round ${round}`).not.toMatch(/ 0\/0 done /);
      } finally {
        await fake.zk.close();
      }
    }
  });
});
