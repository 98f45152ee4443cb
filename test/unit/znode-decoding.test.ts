import { describe, expect, test } from "bun:test";
import { AppSpec } from "../../src/config/app-spec.ts";
import { decodeZnode, encodeZnode } from "../../src/config/decode.ts";
import { InvalidDataError } from "../../src/config/errors.ts";
import { HostStatus } from "../../src/config/payloads.ts";
import { SAMPLE_SPEC } from "../helpers/sample-spec.ts";

const spec: AppSpec = { ...SAMPLE_SPEC };

function reason(data: Buffer): string {
  try {
    decodeZnode(AppSpec, data, "/apps/x");
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidDataError);
    return (error as InvalidDataError).reason;
  }
  throw new Error("expected InvalidDataError");
}

describe("znode payloads", () => {
  test("round trip", () => {
    expect(decodeZnode(AppSpec, encodeZnode(AppSpec, spec), "/apps/x")).toEqual(spec);
  });
  test("slots as a percentage", () => {
    expect(decodeZnode(AppSpec, encodeZnode(AppSpec, { ...spec, slots: "25%" }), "/apps/x").slots).toBe("25%");
  });
  test("invalid payloads become one-line reasons", () => {
    expect(reason(Buffer.from(""))).toBe("empty payload");
    expect(reason(Buffer.from("{not json"))).toBe("not valid JSON");
    expect(reason(Buffer.from([0xff, 0xfe, 0x00]))).toBe("not valid JSON");
    expect(reason(Buffer.from(JSON.stringify({ ...spec, version: "1.0;rm -rf /" })))).toStartWith("version:");
    expect(reason(Buffer.from(JSON.stringify({ ...spec, slots: 0 })))).toStartWith("slots:");
    expect(reason(Buffer.from(JSON.stringify({ ...spec, deployCmd: undefined })))).toStartWith("deployCmd:");
    expect(reason(Buffer.from(JSON.stringify([1, 2])))).not.toBe("");
    expect(reason(Buffer.from("[".repeat(100_000) + "]".repeat(100_000)))).not.toBe("");
    expect(reason(Buffer.alloc(1_048_577, 0x20))).toContain("too large");
  });
  test("host status state is an enum", () => {
    const status = {
      state: "hacking",
      version: "1.0",
      target: "1.0",
      rolloutId: "rabc12345",
      since: "2026-11-24T20:00:00.000Z",
      updatedAt: "2026-11-24T20:00:00.000Z",
    };
    expect(() => decodeZnode(HostStatus, Buffer.from(JSON.stringify(status)), "/h")).toThrow(InvalidDataError);
    expect(decodeZnode(HostStatus, Buffer.from(JSON.stringify({ ...status, state: "queued" })), "/h").state).toBe("queued");
  });
});
