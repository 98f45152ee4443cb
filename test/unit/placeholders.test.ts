import { describe, expect, test } from "bun:test";
import { commandEnv, renderCommand, shellQuote } from "../../src/agent/placeholders.ts";

const values = { app: "myapp", version: "1.2.3", host: "web-01", previous: "1.2.2" };

describe("placeholders", () => {
  test("substitutes every placeholder shell-quoted", () => {
    expect(renderCommand("deploy %(id)s %(version)s %(host)s %(previous)s", values)).toBe("deploy 'myapp' '1.2.3' 'web-01' '1.2.2'");
  });
  test("leaves ${...} and other shell syntax alone", () => {
    const template = "dpkg-query --showformat '${Version}' --show %(id)s; echo $HOME %d %(unknown)s";
    expect(renderCommand(template, values)).toBe("dpkg-query --showformat '${Version}' --show 'myapp'; echo $HOME %d %(unknown)s");
  });
  test("an empty previous version is an empty word, not nothing", () => {
    expect(renderCommand("x %(previous)s y", { ...values, previous: "" })).toBe("x '' y");
  });
  test("quoting survives single quotes", () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });
  test("a quoted value is one literal word to /bin/sh", async () => {
    const hostile = `a'; touch /tmp/pwned-$$; echo '$(id)\`id\``;
    const proc = Bun.spawn(["/bin/sh", "-c", `printf '%s' ${shellQuote(hostile)}`], { stdout: "pipe" });
    expect(await new Response(proc.stdout).text()).toBe(hostile);
  });
  test("env vars", () => {
    expect(commandEnv(values)).toEqual({
      CONVEYOR_APP: "myapp",
      CONVEYOR_VERSION: "1.2.3",
      CONVEYOR_HOST: "web-01",
      CONVEYOR_PREVIOUS_VERSION: "1.2.2",
    });
  });
});
