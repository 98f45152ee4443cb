import { describe, expect, test } from "bun:test";
import { UsageError } from "../../src/config/errors.ts";
import { parseAppName, parseCount, parseDurationInput, parseGroups, parseSlotsInput, parseVersion } from "../../src/config/parse-input.ts";
import { parseDurationMs } from "../../src/config/durations.ts";
import { parseSlots, resolveSlots } from "../../src/config/slots.ts";

describe("names and versions", () => {
  test.each(["myapp", "web-01", "a", "A.b_c-d", "x".repeat(128)])("app name %p is accepted", (name) => {
    expect(parseAppName(name)).toBe(name);
  });
  test.each(["bad/name", "..", ".hidden", "-x", "$(id)", "a b", "", "x".repeat(129), "a;b", "é"])(
    "app name %p is rejected naming the value",
    (name) => {
      expect(() => parseAppName(name)).toThrow(UsageError);
      try {
        parseAppName(name);
      } catch (error) {
        expect((error as Error).message).toContain(JSON.stringify(name.length > 80 ? `${name.slice(0, 77)}...` : name));
      }
    },
  );
  test.each(["1.0", "1.10", "2:1.4-3~deb12u1", "1.0.0+build.5", "v2"])("version %p is accepted", (v) => {
    expect(parseVersion(v)).toBe(v);
  });
  test.each(["1.0;touch x", "$(id)", "`id`", "1.0 2", "", "../1", "1|2", "x".repeat(129)])("version %p is rejected", (v) => {
    expect(() => parseVersion(v)).toThrow(UsageError);
  });
});

describe("slots", () => {
  test.each([
    ["1", 1],
    ["3", 3],
    ["25%", "25%"],
    ["100%", "100%"],
  ])("%p parses", (input, expected) => {
    expect(parseSlotsInput(input)).toBe(expected);
  });
  test.each(["0", "1.5", "abc", "-1", "0%", "101%", "1e3", "", " ", "50 %", "999999999"])("%p is rejected", (input) => {
    expect(() => parseSlotsInput(input)).toThrow(UsageError);
  });
  test.each([
    ["1", 1],
    [" 3 ", 3],
    ["100000", 100_000],
    ["1%", "1%"],
    ["25%", "25%"],
    ["100%", "100%"],
    ["0", undefined],
    ["05", undefined],
    ["100001", undefined],
    ["1000000", undefined],
    ["3.0", undefined],
    ["+3", undefined],
    ["1e3", undefined],
    ["0x10", undefined],
    ["٣", undefined],
    ["0%", undefined],
    ["05%", undefined],
    ["101%", undefined],
    ["2.5%", undefined],
    ["%", undefined],
    ["", undefined],
  ])("parseSlots(%p) → %p", (input, expected) => {
    expect(parseSlots(input)).toBe(expected);
  });
  test.each([
    [4, 1000, 4],
    [5, 2, 5], // a number is itself, even above the host count
    ["50%", 10, 5],
    ["25%", 10, 2], // floor
    ["33%", 10, 3],
    ["50%", 3, 1],
    ["10%", 9, 1], // floor(0.9) = 0 → at least 1
    ["10%", 0, 1], // no hosts yet
    ["1%", 250, 2],
    ["99%", 100, 99],
    ["100%", 7, 7],
  ] as const)("resolveSlots(%p, %p hosts) → %p", (slots, hosts, expected) => {
    expect(resolveSlots(slots, hosts)).toBe(expected);
  });
});

describe("durations and counts", () => {
  test("durations", () => {
    expect(parseDurationMs("10m")).toBe(600_000);
    expect(parseDurationMs("30s")).toBe(30_000);
    expect(parseDurationMs("1h30m")).toBe(5_400_000);
    expect(parseDurationMs("500ms")).toBe(500);
    expect(parseDurationMs("90")).toBe(90_000);
    expect(parseDurationMs("ten")).toBeUndefined();
    expect(parseDurationMs("10x")).toBeUndefined();
    expect(parseDurationMs("-5s")).toBeUndefined();
  });
  test("out-of-range durations are usage errors", () => {
    expect(() => parseDurationInput("0s", "--deploy-timeout", 1000, 60_000)).toThrow(UsageError);
    expect(() => parseDurationInput("2m", "--deploy-timeout", 1000, 60_000)).toThrow(/--deploy-timeout "2m"/);
    expect(parseDurationInput("1m", "--deploy-timeout", 1000, 60_000)).toBe(60_000);
  });
  test("counts", () => {
    expect(parseCount("0", "--max-failures")).toBe(0);
    expect(parseCount("12", "--max-failures")).toBe(12);
    expect(() => parseCount("-1", "--max-failures")).toThrow(UsageError);
    expect(() => parseCount("1.5", "--max-failures")).toThrow(UsageError);
  });
  test("groups", () => {
    expect(parseGroups("web,db,web")).toEqual(["web", "db"]);
    expect(parseGroups("")).toEqual([]);
    expect(() => parseGroups("web,bad group")).toThrow(UsageError);
  });
});
