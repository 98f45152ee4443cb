// The command runner's notion of "the deploy has ended": every process of its group is gone —
// not the closing of stdout, which a daemon started in its own session may hold for its life.
import { afterEach, describe, expect, test } from "bun:test";
import { ShellCommandRunner } from "../../src/agent/command-runner.ts";
import { killGroup, pidAlive } from "../harness/processes.ts";

const runner = new ShellCommandRunner();
const run = (command: string, timeoutMs = 10_000) => runner.run({ command, env: {}, timeoutMs });

// Daemons a test starts in their own session: killed by process group id after each test.
const daemons: number[] = [];
afterEach(() => {
  for (const pgid of daemons.splice(0)) killGroup(pgid);
});

describe("ShellCommandRunner", () => {
  test("a command started with an already aborted signal (the second shutdown signal came first) is killed, not run to its end", async () => {
    const aborted = new AbortController();
    aborted.abort();
    const result = await runner.run({ command: "sleep 30", env: {}, timeoutMs: 60_000, signal: aborted.signal });
    expect({ killed: result.killed, timedOut: result.timedOut, exitCode: result.exitCode }).toEqual({
      killed: true,
      timedOut: false,
      exitCode: null,
    });
  });

  test("a daemon started with setsid that keeps our stdout open does not hold the command (or its slot) open; it keeps running", async () => {
    const result = await run("setsid sh -c 'while :; do echo tick; sleep 0.05; done' & echo $!");
    const pid = Number(result.firstLine);
    expect(pid).toBeGreaterThan(1);
    daemons.push(pid);
    expect(result.exitCode).toBe(0);
    expect(result.timedOut).toBe(false);
    expect(result.durationMs).toBeLessThan(2_000);
    // Its output is still drained: it neither blocks on a full pipe nor dies of SIGPIPE.
    await Bun.sleep(500);
    expect(pidAlive(pid)).toBe(true);
  });

  test("a background child in the command's own group still holds it open, and its output is kept", async () => {
    const result = await run("echo one; (sleep 0.3; echo two) &");
    expect(result.exitCode).toBe(0);
    expect(result.durationMs).toBeGreaterThanOrEqual(280);
    expect(result.outputTail).toContain("one");
    expect(result.outputTail).toContain("two");
  });

  test("the first line of stdout of a quick command is never cut short (50 runs)", async () => {
    for (let i = 0; i < 50; i++) {
      const result = await run(`printf 'version-${i}\\nrest\\n'`);
      expect(result.firstLine).toBe(`version-${i}`);
    }
  });

  test("a timeout kills the whole group; exit code and flags say so", async () => {
    const result = await run("sleep 30 & sleep 30", 300);
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBeNull();
    expect(result.durationMs).toBeLessThan(3_000);
  });
});
