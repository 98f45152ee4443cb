// test/harness/junit-failures.ts (printed by scripts/failed-tests.ts), on a report written by the bun that runs this suite: when a CI log is
// cut to its tail, these lines are all that says which assertion failed.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { failedTests } from "../harness/junit-failures.ts";

const dir = mkdtempSync(join(tmpdir(), "failed-tests-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SUITE = `import { describe, expect, test } from "bun:test";
test("top level passes", () => expect(1).toBe(1));
describe("outer", () => {
  describe("inner <&>", () => {
    test("a length", () => { expect([1, 2]).toHaveLength(1); });
    test("passes", () => expect(2).toBe(2));
  });
  test("throws \\"quoted\\"", () => { throw new Error("boom & <bang>\\nsecond line"); });
});
`;

test("names each failed test in full with its file:line and its error; passing tests are left out", async () => {
  writeFileSync(join(dir, "sample.test.ts"), SUITE);
  const report = join(dir, "report.xml");
  const run = Bun.spawnSync([process.execPath, "test", "--reporter=junit", `--reporter-outfile=${report}`, "./sample.test.ts"], {
    cwd: dir,
    env: { ...process.env, FORCE_COLOR: "0" },
  });
  expect(run.exitCode).toBe(1);
  const failed = failedTests(await Bun.file(report).text());
  expect(failed.map((f) => f.name)).toEqual(["outer > inner <&> > a length", 'outer > throws "quoted"']);
  expect(failed.map((f) => f.where)).toEqual(["sample.test.ts:5", "sample.test.ts:8"]);
  expect(failed[0]?.error).toContain("Expected length: 1");
  expect(failed[0]?.error).toContain("Received length: 2");
  expect(failed[1]?.error).toContain("boom & <bang>\nsecond line");
});

test("a report with no failures, or no tests, gives nothing", () => {
  expect(failedTests('<testsuites><testsuite name="f"><testcase name="t" file="f" line="1" /></testsuite></testsuites>')).toEqual([]);
  expect(failedTests("")).toEqual([]);
});
