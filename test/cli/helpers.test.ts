// The harness the CLI contract tests stand on: a process the tests spawn sees only the
// environment they give it, can be fed stdin, and never outlives its timeout.
import { afterEach, expect, test } from "bun:test";
import { spawnCollect } from "../harness/cli.ts";

const saved = process.env.CONVEYOR_ZK;
afterEach(() => {
  if (saved === undefined) delete process.env.CONVEYOR_ZK;
  else process.env.CONVEYOR_ZK = saved;
});

test("the environment is PATH=/usr/bin:/bin plus what the test passes, never the developer's", async () => {
  process.env.CONVEYOR_ZK = "developer-zk:2181";
  const r = await spawnCollect(["/usr/bin/env"], { env: { CONVEYOR_ACTOR: "t" } });
  expect(r.code).toBe(0);
  expect(r.stdout.split("\n").filter(Boolean).sort()).toEqual(["CONVEYOR_ACTOR=t", "PATH=/usr/bin:/bin"]);
});

test("stdin is written and closed; the cwd defaults to an empty private directory", async () => {
  const cat = await spawnCollect(["/bin/cat"], { stdin: "line one\nline two\n" });
  expect(cat).toMatchObject({ code: 0, stdout: "line one\nline two\n", stderr: "", timedOut: false });
  const ls = await spawnCollect(["/bin/ls", "-A"]);
  expect(ls).toMatchObject({ code: 0, stdout: "" });
});

test("a process still running at timeoutMs is SIGKILLed", async () => {
  const r = await spawnCollect(["/bin/sleep", "30"], { timeoutMs: 300 });
  expect(r.timedOut).toBe(true);
  expect(r.code).toBe(128 + 9);
  expect(r.ms).toBeGreaterThanOrEqual(290);
  expect(r.ms).toBeLessThan(5_000);
});
