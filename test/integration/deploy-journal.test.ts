// The deploy journal finds a deploy a crashed agent left running — also when the deploy's shell
// has exited and only its background children go on.
import { afterEach, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeployJournal, processStartTicks, waitForOrphan } from "../../src/agent/deploy-journal.ts";
import { groupAlive } from "../../src/agent/process-group.ts";
import { killGroup } from "../harness/processes.ts";
import { waitFor } from "../harness/wait.ts";

const groups: number[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const pgid of groups.splice(0)) killGroup(pgid);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Starts `command` under /bin/sh in its own process group; resolves with its pgid and the
 *  shell's start ticks, and a promise of the shell's exit. */
function startGroup(command: string): { pgid: number; startTicks: string; exited: Promise<void> } {
  const child = spawn("/bin/sh", ["-c", command], { detached: true, stdio: "ignore" });
  const pgid = child.pid ?? 0;
  groups.push(pgid);
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  return { pgid, startTicks: processStartTicks(pgid) ?? "", exited };
}

function journal(): DeployJournal {
  const dir = mkdtempSync(join(tmpdir(), "conveyor-journal-"));
  dirs.push(dir);
  return new DeployJournal(dir);
}

/** A journal with an admission of "web" whose command is the group `pgid`. */
function running(j: DeployJournal, pgid: number, startTicks: string): void {
  j.admit("web", "r1", "2.0", "deploying");
  j.update("web", { pgid, startTicks, startedAt: new Date().toISOString(), timeoutMs: 60_000 });
}

describe("DeployJournal.orphans", () => {
  test("a running deploy is found; once its group is gone it is no orphan, but the admission stays unfinished", async () => {
    const j = journal();
    const g = startGroup("sleep 30");
    running(j, g.pgid, g.startTicks);
    expect(j.orphans().map((e) => e.pgid)).toEqual([g.pgid]);
    process.kill(-g.pgid, "SIGKILL");
    await g.exited;
    await waitFor(() => !groupAlive(g.pgid), 5_000, "the group to end");
    expect(j.orphans()).toEqual([]);
    expect(j.admitted().map((e) => [e.app, e.phase, e.pgid])).toEqual([["web", "deploying", g.pgid]]);
  });

  test("the shell has exited but a background child of its group still runs: still an orphan", async () => {
    const j = journal();
    const g = startGroup("sleep 30 & exit 0");
    running(j, g.pgid, g.startTicks);
    await g.exited;
    await waitFor(() => processStartTicks(g.pgid) === undefined, 5_000, "the shell to be reaped");
    expect(groupAlive(g.pgid)).toBe(true);
    expect(j.orphans().map((e) => e.pgid)).toEqual([g.pgid]);
  });

  test("a live process at the recorded pid with another start time is not ours (pid reuse)", () => {
    const j = journal();
    const g = startGroup("sleep 30");
    running(j, g.pgid, `${g.startTicks}1`);
    expect(j.orphans()).toEqual([]);
  });

  test("an admission with no command running (in its health gate) is found unfinished, in its phase; clear() ends it", () => {
    const j = journal();
    j.admit("web", "r1", "2.0", "deploying");
    j.update("web", { phase: "health" });
    expect(new DeployJournal(dirs.at(-1)).admitted().map((e) => [e.app, e.phase, e.pgid])).toEqual([["web", "health", 0]]);
    expect(j.orphans()).toEqual([]);
    j.clear("web");
    expect(j.admitted()).toEqual([]);
  });

  test("an entry written before admissions were journaled reads as deploying; an unreadable one is removed", () => {
    const dir = mkdtempSync(join(tmpdir(), "conveyor-journal-"));
    dirs.push(dir);
    const old = {
      app: "web",
      rolloutId: "r1",
      version: "2.0",
      pgid: 4242,
      startTicks: "1",
      startedAt: new Date().toISOString(),
      timeoutMs: 1_000,
    };
    writeFileSync(join(dir, "web.deploy.json"), JSON.stringify(old));
    writeFileSync(join(dir, "bad.deploy.json"), "{not json");
    const found = new DeployJournal(dir).admitted();
    expect(found.map((e) => [e.app, e.phase, e.admittedAt === old.startedAt])).toEqual([["web", "deploying", true]]);
    expect(readdirSync(dir).sort()).toEqual(["web.deploy.json"]);
  });
});

describe("waitForOrphan", () => {
  test("the agent's second shutdown signal kills an orphaned deploy at once instead of waiting for its timeout", async () => {
    const j = journal();
    const g = startGroup("sleep 60 & sleep 60");
    running(j, g.pgid, g.startTicks);
    const [entry] = j.orphans();
    if (!entry) throw new Error("no orphan");
    const kill = new AbortController();
    let ended = false;
    const waiting = waitForOrphan(entry, kill.signal).then(() => {
      ended = true;
    });
    await Bun.sleep(300);
    expect(ended).toBe(false); // its timeout is a minute away: it is waited for
    kill.abort();
    await Promise.race([waiting, Bun.sleep(10_000)]);
    expect(ended).toBe(true);
    expect(groupAlive(g.pgid)).toBe(false);
  });
});
