// `conveyor events` through the compiled binary with real agents: the events of a rollout in
// order; --webhook against a local receiver that is down (connection refused, then 503) while
// the rollout runs — every event arrives once it is back, in the stream's order; --exec; the
// --since replay; bad input exits 2.

import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type CliResult, runOk, show, emptyDir, ensureBinary, runCli, useCli } from "../harness/cli.ts";
import { useAgentProcesses } from "../harness/agent-process.ts";
import { waitForStrict } from "../harness/wait.ts";
import { freePort, useZooKeeper } from "../harness/zookeeper.ts";
import { type LiveProcess, spawnLive, stopAllLive } from "../helpers/pty.ts";

const zk = useZooKeeper();
useCli();
const agents = useAgentProcesses();
afterEach(() => stopAllLive());

const CMDS = ["--get-version-cmd", "cat VERSION 2>/dev/null || true", "--deploy-cmd", "sleep 0.2; echo %(version)s > VERSION"];

interface EventJson {
  seq: number;
  type: string;
  app: string;
  version: string;
  host?: string;
  from?: string;
  exitCode?: number | null;
  outputTail?: string;
  text: string;
}

const ok = (connect: string, args: string[]): Promise<CliResult> => runOk(["--zk", connect, ...args]);

function parsed(p: LiveProcess): EventJson[] {
  return p.stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as EventJson);
}

async function startEvents(connect: string, args: string[]): Promise<LiveProcess> {
  const p = spawnLive([await ensureBinary(), "--zk", connect, "events", ...args]);
  await p.waitForOutput(/^events: following .* from seq \d+$/m, 10_000);
  return p;
}

/** Two agents, slots 1: every host goes queued → deploying → current, one after the other. */
async function fleet(connect: string): Promise<void> {
  await ok(connect, ["app", "create", "web", "1.0", ...CMDS]);
  await agents.start({ connect, hostId: "h1" });
  await agents.start({ connect, hostId: "h2" });
  await waitForStrict(
    async () => {
      const r = await ok(connect, ["status", "web", "--json"]);
      return (JSON.parse(r.stdout) as { apps: { state: string }[] }).apps[0]?.state === "converged" || undefined;
    },
    20_000,
    "web 1.0 converged on h1 and h2",
  );
}

function converged(p: LiveProcess, version: string): Promise<EventJson> {
  return waitForStrict(() => parsed(p).find((e) => e.type === "converged" && e.version === version), 20_000, `converged ${version}`);
}

describe("events", () => {
  test("a rollout's events in order: published, each host queued → deploying → current, converged; a failure with its output", async () => {
    const connect = zk.withChroot("events-order");
    await fleet(connect);
    const p = await startEvents(connect, ["web", "--json"]);
    await ok(connect, ["app", "create", "web", "2.0"]);
    await converged(p, "2.0");
    const events = parsed(p);
    expect(events[0]).toMatchObject({ type: "published", app: "web", version: "2.0", from: "1.0" });
    expect(events.at(-1)).toMatchObject({ type: "converged", version: "2.0" });
    for (const host of ["h1", "h2"]) {
      const mine = events.filter((e) => e.host === host).map((e) => e.type);
      // A state that lasts less than the stream's settle may be skipped; current is always last.
      expect(mine.at(-1)).toBe("host-current");
      expect(mine.indexOf("host-deploying")).toBeGreaterThanOrEqual(0);
      expect(mine.indexOf("host-deploying")).toBeLessThan(mine.indexOf("host-current"));
    }
    for (let i = 1; i < events.length; i++) expect((events[i]?.seq ?? 0) >= (events[i - 1]?.seq ?? 0)).toBe(true);

    const from = p.stdout.length;
    await ok(connect, ["app", "create", "web", "3.0", "--deploy-cmd", "echo broken-build >&2; exit 7"]);
    // The failure marker (halted) and the host's failed status are two writes: either may show first.
    const halted = await waitForStrict(() => parsed(p).find((e) => e.type === "halted" && e.version === "3.0"), 20_000, "halted");
    const failed = await waitForStrict(() => parsed(p).find((e) => e.type === "host-failed" && e.version === "3.0"), 20_000, "host-failed");
    expect(failed).toMatchObject({ exitCode: 7 });
    expect(failed?.outputTail).toContain("broken-build");
    expect(halted.text).toBe("web 3.0: halted");
    expect(p.stdout.slice(from)).not.toContain('"type":"converged"');
  }, 90_000);

  test("--webhook: the receiver is down (refused, then 503) during the rollout; every event arrives, in order, once it is back", async () => {
    const connect = zk.withChroot("events-webhook");
    await fleet(connect);
    const port = await freePort(); // nothing listens yet: connection refused
    const p = await startEvents(connect, ["--json", "--webhook", `http://127.0.0.1:${port}/hook`]);
    await ok(connect, ["app", "create", "web", "2.0"]);
    await converged(p, "2.0");
    await ok(connect, ["app", "create", "web", "2.1"]);
    await converged(p, "2.1");
    await p.waitForOutput(/events: webhook http:\/\/127\.0\.0\.1:\d+\/hook: event seq \d+ not delivered .*; retrying in \d+ ms/, 10_000);

    const received: string[] = [];
    let unavailable = 2; // back, but answers 503 twice first
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port,
      async fetch(request) {
        const body = await request.text();
        if (unavailable > 0) {
          unavailable -= 1;
          return new Response("busy", { status: 503 });
        }
        received.push(body);
        return new Response("ok");
      },
    });
    try {
      const printed = p.stdout.split("\n").filter(Boolean);
      expect(printed.length).toBeGreaterThanOrEqual(8);
      await waitForStrict(() => received.length >= printed.length || undefined, 60_000, `${printed.length} events at the receiver`);
      expect(received).toEqual(printed);
      expect(unavailable).toBe(0);
      const exit = await p.stop(10_000);
      expect(exit.code, p.stderr).toBe(0);
    } finally {
      server.stop(true);
    }
  }, 90_000);

  test("--exec runs per event with the event on stdin; --since replays what changed after a seq", async () => {
    const connect = zk.withChroot("events-exec");
    await fleet(connect);
    const out = join(emptyDir("events-exec-"), "events.jsonl");
    const p = await startEvents(connect, ["web", "--json", "--exec", `cat >> ${out}`]);
    await ok(connect, ["app", "create", "web", "2.0"]);
    const done = await converged(p, "2.0");
    await waitForStrict(() => readFileSync(out, "utf8").includes('"type":"converged"') || undefined, 10_000, "exec got converged");
    expect(readFileSync(out, "utf8").split("\n").filter(Boolean)).toEqual(p.stdout.split("\n").filter(Boolean));
    await p.stop();

    // Replay from 0: the fleet as it is; from the last seq seen: nothing until something changes.
    const all = await startEvents(connect, ["web", "--json", "--since", "0"]);
    await all.waitForOutput(/"type":"converged"/, 10_000);
    const replay = parsed(all);
    // In ZooKeeper's order: the publish, each host's report (whichever finished first), the verdict.
    expect(replay.map((e) => e.type)).toEqual(["published", "host-current", "host-current", "converged"]);
    expect(
      replay
        .map((e) => e.host)
        .filter(Boolean)
        .sort(),
    ).toEqual(["h1", "h2"]);
    expect(replay.at(-1)?.seq).toBe(done.seq);
    const none = await startEvents(connect, ["web", "--json", "--since", String(done.seq)]);
    await ok(connect, ["app", "pause", "web"]);
    await none.waitForOutput(/"type":"paused"/, 10_000);
    expect(parsed(none).map((e) => e.type)).toEqual(["paused"]);
  }, 90_000);

  test("bad input exits 2 naming the value", async () => {
    for (const [args, mention] of [
      [["--since", "abc"], '--since "abc"'],
      [["--webhook", "ftp://x"], '--webhook "ftp://x"'],
      [["--webhook", "not a url"], '--webhook "not a url"'],
      [["bad/app"], '"bad/app"'],
    ] as [string[], string][]) {
      const r = await runCli(["--zk", "127.0.0.1:1/none", "events", ...args]);
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr).toContain(mention);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  }, 30_000);
});
