import { existsSync, readFileSync } from "node:fs";

/**
 * The invariant checker: every test deploy-cmd appends `start <host> <version>` when it begins
 * and `end <host> <version>` just before it exits. O_APPEND writes of one short line are atomic,
 * so the file order is the real order, and counting open starts gives a lower bound on the
 * deploys running at once (a start is written after the slot was taken, an end before release).
 */
export interface DeployEvent {
  kind: "start" | "end";
  host: string;
  version: string;
  line: number;
}

export function readDeployLog(path: string): DeployEvent[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .map((text, line) => {
      const [kind, host = "", version = ""] = text.trim().split(/\s+/);
      return kind === "start" || kind === "end" ? { kind, host, version, line } : undefined;
    })
    .filter((e): e is DeployEvent => e !== undefined);
}

/** Highest number of deploys between their start and end lines at any point. */
export function maxConcurrency(events: DeployEvent[]): number {
  let running = 0;
  let max = 0;
  for (const e of events) {
    running += e.kind === "start" ? 1 : -1;
    max = Math.max(max, running);
  }
  return max;
}

/** Hosts in the order their deploys started. */
export function startOrder(events: DeployEvent[]): string[] {
  return events.filter((e) => e.kind === "start").map((e) => e.host);
}

/**
 * Shell commands for a test app whose "installed version" is the file VERSION in the agent's
 * working directory. `deploySeconds` is how long a deploy takes.
 */
export function testCommands(logPath: string, deploySeconds: number): { getVersionCmd: string; deployCmd: string } {
  return {
    getVersionCmd: "cat VERSION 2>/dev/null || true",
    deployCmd: `echo "start $CONVEYOR_HOST $CONVEYOR_VERSION" >> '${logPath}'; sleep ${deploySeconds}; echo %(version)s > VERSION; echo "end $CONVEYOR_HOST $CONVEYOR_VERSION" >> '${logPath}'`,
  };
}
