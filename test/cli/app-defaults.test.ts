// Per-app defaults in the config file ([apps.defaults], [apps.<name>]) through the compiled
// binary: precedence flags > [apps.<name>] > [apps.defaults] > the current spec, --dry-run's
// spec and origins (and that it writes nothing), and bad tables exiting 2 naming the key.

import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type CliResult, runOk, show, processTempDir, runCli, useCli } from "../harness/cli.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";

const zk = useZooKeeper();
useCli();

let configs = 0;
function configFile(connect: string, body: string): string {
  const path = join(processTempDir(), `app-defaults-${++configs}.toml`);
  writeFileSync(path, `zk = "${connect}"\n${body}`);
  return path;
}

const ok = (config: string, args: string[]): Promise<CliResult> => runOk(["--config", config, ...args], { env: { CONVEYOR_ACTOR: "ci" } });

async function spec(config: string, app: string): Promise<Record<string, unknown>> {
  return JSON.parse((await ok(config, ["app", "show", app, "--json"])).stdout) as Record<string, unknown>;
}

const TABLES = `
[apps.defaults]
slots = 2
getVersionCmd = "cat VERSION"
deployCmd = "deploy-default %(version)s"
maxFailures = "10%"

[apps.web]
deployCmd = "deploy-web %(version)s"
groups = ["web", "edge"]
healthCmd = "curl -fsS localhost/health"
`;

describe("per-app defaults in the config file", () => {
  test("precedence: flags > [apps.<name>] > [apps.defaults] > the current spec", async () => {
    const connect = zk.withChroot("app-defaults-precedence");
    const config = configFile(connect, TABLES);
    // Only the version: everything else from the config file.
    await ok(config, ["app", "create", "web", "1.0"]);
    expect(await spec(config, "web")).toMatchObject({
      slots: 2,
      getVersionCmd: "cat VERSION",
      deployCmd: "deploy-web %(version)s",
      groups: ["web", "edge"],
      healthCmd: "curl -fsS localhost/health",
      maxFailures: "10%",
    });
    // Another app gets [apps.defaults] only.
    await ok(config, ["app", "create", "api", "1.0"]);
    const api = await spec(config, "api");
    expect(api).toMatchObject({ slots: 2, deployCmd: "deploy-default %(version)s", groups: [] });
    expect(api.healthCmd).toBeUndefined();
    // A flag beats both tables.
    await ok(config, ["app", "create", "web", "1.1", "--slots", "5", "--deploy-cmd", "deploy-flag %(version)s"]);
    expect(await spec(config, "web")).toMatchObject({ version: "1.1", slots: 5, deployCmd: "deploy-flag %(version)s" });
    // The config beats the current spec on the next publish; what no layer sets is kept.
    await ok(config, ["app", "create", "web", "1.2", "--deploy-timeout", "2m"]);
    expect(await spec(config, "web")).toMatchObject({ slots: 2, deployCmd: "deploy-web %(version)s", deployTimeoutSec: 120 });
    await ok(config, ["app", "create", "web", "1.3"]);
    expect(await spec(config, "web")).toMatchObject({ version: "1.3", deployTimeoutSec: 120 });
  });

  test("--dry-run prints the spec and where each value came from, and writes nothing", async () => {
    const connect = zk.withChroot("app-defaults-dry-run");
    const config = configFile(connect, TABLES);
    const created = await ok(config, ["app", "create", "web", "1.0", "--dry-run", "--slots", "3", "--json"]);
    const plan = JSON.parse(created.stdout) as { kind: string; spec: Record<string, unknown>; origins: Record<string, string> };
    expect(plan.kind).toBe("create");
    expect(plan.spec).toMatchObject({ version: "1.0", slots: 3, deployCmd: "deploy-web %(version)s", maxFailures: "10%" });
    expect(plan.origins).toMatchObject({
      version: "argument",
      slots: "--slots",
      deployCmd: `[apps.web] in "${config}"`,
      getVersionCmd: `[apps.defaults] in "${config}"`,
      maxFailures: `[apps.defaults] in "${config}"`,
      deployTimeoutSec: "default",
    });
    // Nothing was written: the app does not exist.
    const missing = await runCli(["--config", config, "app", "show", "web"]);
    expect(missing.code, show(missing)).toBe(1);

    await ok(config, ["app", "create", "web", "1.0", "--deploy-timeout", "3m"]);
    const text = (await ok(config, ["app", "create", "web", "2.0", "--dry-run"])).stdout;
    expect(text).toContain("dry run: would publish web 2.0 (was 1.0); nothing written");
    const row = (field: string): string[] => (text.split("\n").find((l) => l.startsWith(`${field} `)) ?? "").split(/\s{2,}/);
    expect(row("deployTimeoutSec")).toEqual(["deployTimeoutSec", "180", "current spec"]);
    expect(row("groups")).toEqual(["groups", '["web","edge"]', `[apps.web] in "${config}"`]);
    expect(row("previousVersion")).toEqual(["previousVersion", "1.0", "the version it replaces"]);
    expect((await spec(config, "web")).version).toBe("1.0");

    const both = await runCli(["--config", config, "app", "create", "web", "2.0", "--dry-run", "--wait"]);
    expect(both.code, show(both)).toBe(2);
  });

  test("an unknown key, a bad value or a bad table name exits 2 naming it, for every command", async () => {
    const connect = zk.withChroot("app-defaults-bad");
    const cases: [string, string][] = [
      ["[apps.web]\nslotz = 3\n", "[apps.web] slotz: unknown key"],
      ['[apps.defaults]\nslots = "x"\n', 'invalid [apps.defaults] slots "x"'],
      ["[apps.web]\ndeployTimeout = true\n", 'invalid [apps.web] deployTimeout "true"'],
      ['[apps."we b"]\nslots = 1\n', '"[apps.we b]": not a valid app name'],
      ["[apps]\nweb = 1\n", "apps.web: must be a table"],
    ];
    for (const [body, message] of cases) {
      const config = configFile(connect, body);
      for (const args of [["app", "create", "web", "1.0"], ["status"]]) {
        const r = await runCli(["--config", config, ...args]);
        expect(r.code, show(r)).toBe(2);
        expect(r.stderr.trim().split("\n")).toHaveLength(1);
        expect(r.stderr).toContain(`config file ${config}: `);
        expect(r.stderr).toContain(message);
      }
    }
  });
});
