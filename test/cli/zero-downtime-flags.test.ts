// Issue 12's app attributes through the compiled binary: set by `app create`, kept on publish,
// cleared with "", shown by `app show` (text and --json), recorded in history, listed by --help;
// bad values exit 2 naming the value, and nothing is written.

import { describe, expect, test } from "bun:test";
import { type CliResult, runCli, splitConnect, useCli, zkCliGet } from "../harness/cli.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";

const zk = useZooKeeper();
useCli();

const CMDS = ["--get-version-cmd", "cat VERSION 2>/dev/null || true", "--deploy-cmd", "deploy %(version)s"];
const GATE = [
  ...["--health-cmd", "curl -fsS localhost:8080/health", "--health-interval", "500ms", "--health-timeout", "2m"],
  ...["--min-healthy-time", "10s", "--drain-cmd", "lb-remove %(host)s", "--undrain-cmd", "lb-add %(host)s"],
  ...["--slot-increment", "2", "--max-slots", "25%", "--max-failures", "10%"],
];

function cli(connect: string, args: string[]): Promise<CliResult> {
  return runCli(["--zk", connect, ...args], { env: { CONVEYOR_ACTOR: "ci" } });
}

function show(r: CliResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

async function ok(connect: string, args: string[]): Promise<CliResult> {
  const r = await cli(connect, args);
  expect({ code: r.code, stderr: r.stderr }, show(r)).toEqual({ code: 0, stderr: "" });
  return r;
}

async function spec(connect: string): Promise<Record<string, unknown>> {
  return JSON.parse((await ok(connect, ["app", "show", "web", "--json"])).stdout) as Record<string, unknown>;
}

describe("zero-downtime attributes", () => {
  test('set on create, kept on publish, cleared with "", shown by app show, listed in history', async () => {
    const connect = zk.withChroot("zdt-attrs");
    await ok(connect, ["app", "create", "web", "1.0", ...CMDS, ...GATE]);
    const created = await spec(connect);
    expect(created).toMatchObject({
      healthCmd: "curl -fsS localhost:8080/health",
      healthIntervalMs: 500,
      healthTimeoutMs: 120_000,
      minHealthyMs: 10_000,
      drainCmd: "lb-remove %(host)s",
      undrainCmd: "lb-add %(host)s",
      slotIncrement: 2,
      maxSlots: "25%",
      maxFailures: "10%",
    });
    // Read back with Debian's own client: it is what is stored.
    const { server, chroot } = splitConnect(connect);
    expect(JSON.parse((await zkCliGet(server, `${chroot}/apps/web`)) ?? "{}")).toMatchObject({ minHealthyMs: 10_000 });

    await ok(connect, ["app", "create", "web", "1.1"]);
    const kept = await spec(connect);
    for (const key of [
      "healthCmd",
      "healthIntervalMs",
      "minHealthyMs",
      "drainCmd",
      "undrainCmd",
      "slotIncrement",
      "maxSlots",
      "maxFailures",
    ]) {
      expect(kept[key], key).toEqual(created[key]);
    }
    const text = (await ok(connect, ["app", "show", "web"])).stdout;
    for (const line of [
      "health-cmd:       curl -fsS localhost:8080/health",
      "health interval:  500ms",
      "health timeout:   2m",
      "min healthy time: 10s",
      "drain-cmd:        lb-remove %(host)s",
      "undrain-cmd:      lb-add %(host)s",
      "slot increment:   2",
      "max slots:        25%",
      "max failures:     10%",
    ]) {
      expect(text).toContain(line);
    }

    await ok(connect, [
      "app",
      "create",
      "web",
      "1.2",
      "--health-cmd",
      "",
      "--drain-cmd",
      "",
      "--max-slots",
      "",
      "--min-healthy-time",
      "0s",
    ]);
    const cleared = await spec(connect);
    expect(cleared.healthCmd).toBeUndefined();
    expect(cleared.drainCmd).toBeUndefined();
    expect(cleared.maxSlots).toBeUndefined();
    expect(cleared.undrainCmd).toBe("lb-add %(host)s");
    expect(cleared.minHealthyMs).toBe(0);
    expect((await ok(connect, ["app", "show", "web"])).stdout).toContain("health-cmd:       -");

    const history = JSON.parse((await ok(connect, ["app", "history", "web", "--json"])).stdout) as { action: string; detail?: string }[];
    expect(history[0]).toMatchObject({
      action: "publish",
      detail: 'health-cmd removed, min-healthy-time (ms) 10000→0, drain-cmd removed, max-slots "25%"→-',
    });
    expect(history[1]?.detail).toBeUndefined(); // 1.1 changed nothing but the version
  });

  test("bad values exit 2 with one line naming the flag and the value; nothing is written", async () => {
    const connect = zk.withChroot("zdt-bad");
    const cases: [string[], string][] = [
      [["--health-interval", "10ms"], 'invalid --health-interval "10ms"'],
      [["--health-timeout", "soon"], 'invalid --health-timeout "soon"'],
      [["--min-healthy-time", "25h"], 'invalid --min-healthy-time "25h"'],
      [["--slot-increment", "-1"], 'invalid --slot-increment "-1"'],
      [["--slot-increment", "1.5"], 'invalid --slot-increment "1.5"'],
      [["--max-slots", "0"], 'invalid --max-slots "0"'],
      [["--max-failures", "101%"], 'invalid --max-failures "101%": must be a whole number from 0 to 1000000 or a percentage like 10%'],
    ];
    for (const [flags, message] of cases) {
      const r = await cli(connect, ["app", "create", "web", "1.0", ...CMDS, ...flags]);
      expect(r.code, show(r)).toBe(2);
      expect(r.stdout, show(r)).toBe("");
      expect(r.stderr.trim().split("\n"), show(r)).toHaveLength(1);
      expect(r.stderr, show(r)).toContain(message);
    }
    const list = await cli(connect, ["app", "list", "--json"]);
    expect(list.code).toBe(1); // the chroot was never created: nothing was written
  });

  test("app create --help lists every flag", async () => {
    const help = (await ok(zk.withChroot("zdt-help"), ["app", "create", "--help"])).stdout;
    for (const flag of [
      "--health-cmd",
      "--health-interval",
      "--health-timeout",
      "--min-healthy-time",
      "--drain-cmd",
      "--undrain-cmd",
      "--slot-increment",
      "--max-slots",
      "--max-failures",
    ]) {
      expect(help).toContain(flag);
    }
  });
});
