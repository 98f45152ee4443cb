// Prints each failed test of a `bun test --reporter=junit` report: its full name, file:line, and
// the error as bun wrote it. scripts/test runs it when the suite fails, so the failures are the
// last thing in the log — a CI log cut to its tail still says which assertion failed and why
// (bun prints each error next to its test, hundreds of lines before the summary).
//
//   bun scripts/failed-tests.ts <report.xml>
//
// A missing or unreadable report prints one line saying so (the suite's own exit code stands).

import { readFileSync } from "node:fs";
import { failedTests } from "../test/harness/junit-failures.ts";

const path = process.argv[2] ?? "";
let xml: string;
try {
  xml = readFileSync(path, "utf8");
} catch (error) {
  console.error(`failed tests: no report to read at "${path}" (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  process.exit(0);
}
const failed = failedTests(xml);
if (failed.length > 0) {
  const lines = [`=== ${failed.length} failed test(s), again, with their errors ===`];
  for (const test of failed) lines.push("", `(fail) ${test.name}  [${test.where}]`, test.error.replace(/^/gm, "    "));
  console.error(lines.join("\n"));
}
