// Prometheus metrics through the compiled binary: the agent's /metrics (--metrics-listen) and the
// dashboard's fleet /metrics, each checked by promtool (Prometheus' own parser: no errors, no
// convention warnings), with the counters moving across a real rollout.

import { afterEach, describe, expect, test } from "bun:test";
import { type CliResult, runOk, ensureBinary, useCli } from "../harness/cli.ts";
import { useAgentProcesses } from "../harness/agent-process.ts";
import { checkMetrics } from "../harness/promtool.ts";
import { waitForStrict } from "../harness/wait.ts";
import { freePort, useZooKeeper } from "../harness/zookeeper.ts";
import { spawnLive, stopAllLive } from "../helpers/pty.ts";

const zk = useZooKeeper();
useCli();
const agents = useAgentProcesses();
afterEach(() => stopAllLive());

const CMDS = ["--get-version-cmd", "cat VERSION 2>/dev/null || true", "--deploy-cmd", "sleep 0.3; echo %(version)s > VERSION"];

const ok = (connect: string, args: string[]): Promise<CliResult> => runOk(["--zk", connect, ...args]);

/** The value of one series (`name{labels}` exactly as exposed), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(url: string): Promise<string> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return response.text();
}

async function converged(connect: string, version: string): Promise<void> {
  await waitForStrict(
    async () => {
      const app = (JSON.parse((await ok(connect, ["status", "web", "--json"])).stdout) as { apps: { version: string; state: string }[] })
        .apps[0];
      return (app?.version === version && app.state === "converged") || undefined;
    },
    30_000,
    `web ${version} converged`,
  );
}

describe("Prometheus metrics", () => {
  test("agent /metrics: valid for promtool; deploys, durations and phase move across a rollout, and a failure counts as failed", async () => {
    const connect = zk.withChroot("metrics-agent");
    await ok(connect, [
      "app",
      "create",
      "web",
      "1.0",
      ...CMDS,
      "--health-cmd",
      "true",
      "--health-interval",
      "100ms",
      "--min-healthy-time",
      "300ms",
    ]);
    const port = await freePort();
    const agent = await agents.start({ connect, hostId: "m1", args: ["--metrics-listen", `127.0.0.1:${port}`] });
    await agent.waitForLog(/metrics served url=http:\/\/127\.0\.0\.1:\d+\/metrics/, 10_000);
    await converged(connect, "1.0");
    const url = `http://127.0.0.1:${port}/metrics`;
    const before = await scrape(url);
    const verdict = await checkMetrics(before);
    expect(verdict, before).toEqual({ code: 0, output: "" });
    expect(sample(before, 'conveyor_agent_deploys_total{app="web",outcome="success"}')).toBe(1);
    expect(sample(before, "conveyor_agent_zookeeper_connected")).toBe(1);
    expect(before).toMatch(/^conveyor_build_info\{version="[^"]+",commit="[^"]+"\} 1$/m);

    await ok(connect, ["app", "create", "web", "2.0"]);
    await converged(connect, "2.0");
    const after = await scrape(url);
    expect(await checkMetrics(after)).toEqual({ code: 0, output: "" });
    expect(sample(after, 'conveyor_agent_deploys_total{app="web",outcome="success"}')).toBe(2);
    expect(sample(after, 'conveyor_agent_deploy_duration_seconds_count{app="web"}')).toBe(2);
    expect(sample(after, 'conveyor_agent_deploy_duration_seconds_sum{app="web"}')).toBeGreaterThanOrEqual(0.6);
    expect(sample(after, 'conveyor_agent_health_duration_seconds_sum{app="web"}')).toBeGreaterThanOrEqual(0.6);
    expect(sample(after, 'conveyor_agent_deploy_duration_seconds_bucket{app="web",le="0.1"}')).toBe(0);
    expect(sample(after, 'conveyor_agent_deploy_duration_seconds_bucket{app="web",le="+Inf"}')).toBe(2);
    expect(sample(after, 'conveyor_agent_app_phase{app="web",phase="idle"}')).toBe(1);

    await ok(connect, ["app", "create", "web", "3.0", "--deploy-cmd", "exit 9"]);
    await waitForStrict(
      async () => sample(await scrape(url), 'conveyor_agent_deploys_total{app="web",outcome="failed"}') === 1 || undefined,
      20_000,
      "a failed deploy counted",
    );
    expect(sample(await scrape(url), 'conveyor_agent_deploys_total{app="web",outcome="success"}')).toBe(2);
  }, 90_000);

  test("dashboard /metrics: fleet gauges valid for promtool, following the rollout", async () => {
    const connect = zk.withChroot("metrics-fleet");
    await ok(connect, ["app", "create", "web", "1.0", ...CMDS]);
    for (const host of ["f1", "f2"]) await agents.start({ connect, hostId: host });
    await converged(connect, "1.0");
    const port = await freePort();
    const dashboard = spawnLive([await ensureBinary(), "--zk", connect, "dashboard", "--listen", `127.0.0.1:${port}`]);
    await dashboard.waitForOutput(/^dashboard: http:\/\//m, 15_000);
    const url = `http://127.0.0.1:${port}/metrics`;
    const first = await scrape(url);
    expect(await checkMetrics(first)).toEqual({ code: 0, output: "" });
    expect(sample(first, 'conveyor_fleet_hosts{app="web",state="current"}')).toBe(2);
    expect(sample(first, 'conveyor_fleet_rollout_progress_ratio{app="web"}')).toBe(1);
    expect(sample(first, 'conveyor_fleet_app_converged{app="web"}')).toBe(1);
    expect(sample(first, "conveyor_fleet_agents_online")).toBe(2);

    await ok(connect, ["app", "create", "web", "2.0", "--deploy-cmd", "exit 3"]);
    // The failure marker (the halt) and the host's failed status are two writes: wait for both.
    await waitForStrict(
      async () => {
        const text = await scrape(url);
        return (
          (sample(text, 'conveyor_fleet_app_halted{app="web"}') === 1 &&
            sample(text, 'conveyor_fleet_hosts{app="web",state="failed"}') === 1) ||
          undefined
        );
      },
      20_000,
      "web halted with its failed host",
    );
    const halted = await scrape(url);
    expect(await checkMetrics(halted)).toEqual({ code: 0, output: "" });
    expect(sample(halted, 'conveyor_fleet_hosts{app="web",state="failed"}')).toBe(1);
    expect(sample(halted, 'conveyor_fleet_rollout_progress_ratio{app="web"}')).toBe(0);
    expect(sample(halted, 'conveyor_fleet_rollout_age_seconds{app="web"}')).toBeLessThan(60);
  }, 90_000);
});
