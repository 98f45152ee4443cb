import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAppTable } from "../../src/config/app-attributes.ts";
import { UsageError } from "../../src/config/errors.ts";
import { resolveSettings } from "../../src/config/settings.ts";

const dir = mkdtempSync(join(tmpdir(), "conveyor-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function usageMessage(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error("expected a UsageError");
}

describe("settings precedence: flags > env > file", () => {
  const config = file("ok.toml", `zk = "file:2181/f"\nlogLevel = "warn"\n[agent]\nhostId = "web-01"\ngroups = ["web"]\n`);
  test("file alone", async () => {
    const s = await resolveSettings({ config }, {});
    expect(s.connectString).toBe("file:2181/f");
    expect(s.logLevel).toBe("warn");
    expect(s.file.agent?.hostId).toBe("web-01");
  });
  test("env beats file", async () => {
    expect((await resolveSettings({ config }, { CONVEYOR_ZK: "env:2181" })).connectString).toBe("env:2181");
  });
  test("flag beats env", async () => {
    expect((await resolveSettings({ config, zk: "flag:1" }, { CONVEYOR_ZK: "env:2181" })).connectString).toBe("flag:1");
  });
  test("credentials: flag > env, password never echoed", async () => {
    expect((await resolveSettings({ config, auth: "ci:s3cret" }, { CONVEYOR_AUTH: "x:y" })).credentials).toEqual([
      { user: "ci", password: "s3cret" },
    ]);
    expect((await resolveSettings({ config }, { CONVEYOR_AUTH: "x:y" })).credentials).toEqual([{ user: "x", password: "y" }]);
    const message = await usageMessage(resolveSettings({ config, auth: "nopassword" }, {}));
    expect(message).toContain("--auth");
    const secret = await usageMessage(resolveSettings({ config, auth: "bad user:hunter2" }, {}));
    expect(secret).not.toContain("hunter2");
  });
});

describe("bad config files are rejected clearly", () => {
  test("unknown key", async () => {
    const path = file("unknown.toml", `zk = "a:1"\nzookeper = "typo"\n`);
    expect(await usageMessage(resolveSettings({ config: path }, {}))).toBe(`config file ${path}: zookeper: unknown key`);
  });
  test("unknown nested key", async () => {
    const path = file("nested.toml", `[agent]\nhost = "x"\n`);
    expect(await usageMessage(resolveSettings({ config: path }, {}))).toContain("agent.host: unknown key");
  });
  test("wrong type", async () => {
    const path = file("type.toml", `logLevel = 3\n`);
    expect(await usageMessage(resolveSettings({ config: path }, {}))).toContain("logLevel");
  });
  test("an [apps.*] value TOML reads as inf or nan is named as a number (JSON would say null)", () => {
    const table = Bun.TOML.parse("slots = inf\nmaxFailures = nan\n") as Record<string, unknown>;
    expect(() => parseAppTable({ slots: table.slots }, "[apps.web]")).toThrow(
      'invalid [apps.web] slots "Infinity": must be a string or a number',
    );
    expect(() => parseAppTable({ maxFailures: table.maxFailures }, "[apps.web]")).toThrow('"NaN"');
  });
  test("invalid TOML", async () => {
    const path = file("syntax.toml", `zk = "unterminated\n`);
    expect(await usageMessage(resolveSettings({ config: path }, {}))).toContain("not valid TOML");
  });
  test("missing file", async () => {
    expect(await usageMessage(resolveSettings({ config: join(dir, "nope.toml") }, {}))).toContain("does not exist");
  });
  test("bad regex in allowCommands", async () => {
    const path = file("regex.toml", `[agent]\nallowCommands = ["(unclosed"]\n`);
    expect(await usageMessage(resolveSettings({ config: path }, {}))).toContain("allowCommands");
  });
  test("bad connect string", async () => {
    expect(await usageMessage(resolveSettings({ zk: "host:99999" }, {}))).toContain("host:99999");
    expect(await usageMessage(resolveSettings({ zk: "a:1/bad chroot" }, {}))).toContain("chroot");
  });
});
