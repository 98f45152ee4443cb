// Prometheus' own parser: `promtool check metrics` reads an exposition on stdin and fails on any
// format error (and warns on convention breaks: names, units, HELP). From PATH, or unpacked from
// Debian's prometheus package by scripts/ensure-deps.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./cli.ts";

export function promtoolPath(): string {
  const unpacked = join(REPO_ROOT, "node_modules", ".cache", "prometheus-deb", "usr", "bin", "promtool");
  if (existsSync(unpacked)) return unpacked;
  const onPath = Bun.which("promtool");
  if (onPath) return onPath;
  throw new Error("promtool not found: run ./scripts/ensure-deps (unpacks Debian's prometheus package)");
}

/** promtool's verdict on an exposition: exit code and what it printed (problems, one per line). */
export async function checkMetrics(text: string): Promise<{ code: number; output: string }> {
  const proc = Bun.spawn([promtoolPath(), "check", "metrics"], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  proc.stdin.write(text);
  await proc.stdin.end();
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, output: `${stdout}${stderr}`.trim() };
}
