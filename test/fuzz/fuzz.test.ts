// Seeded fuzzing of the two places where untrusted text enters Conveyor:
//   (a) every znode decoder (decodeZnode + a valibot schema): random bytes, random JSON, mutated
//       valid payloads. Nothing but InvalidDataError may escape, and whatever decodes must be
//       valid by the schema's own rules (names, versions, ...).
//   (b) the argv parser: run(argv) in-process with a ZooKeeper that cannot be reached, so
//       anything that passes validation fails fast with exit 3.
// The seed is printed; reproduce a failure with FUZZ_SEED=<seed> bun test test/unit/fuzz.test.ts.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { AppSpec, MAX_COMMAND_LENGTH } from "../../src/config/app-spec.ts";
import { MAX_PAYLOAD_BYTES, decodeZnode, encodeZnode } from "../../src/config/decode.ts";
import { parseDurationMs } from "../../src/config/durations.ts";
import { InvalidDataError } from "../../src/config/errors.ts";
import { NAME_PATTERN, VERSION_PATTERN } from "../../src/config/names.ts";
import { AgentInfo, Failure, HISTORY_ACTIONS, HOST_STATES, HistoryEntry, HostStatus, Lease } from "../../src/config/payloads.ts";
import { run } from "../../src/cli/run.ts";
import type { Io } from "../../src/cli/io.ts";
import { parseConnectString } from "../../src/zk/connect-string.ts";
import { Rng, corruptBytes, fuzzSeed, hostileString, mutate, plausibleToken, randomBytes, randomJson } from "../helpers/fuzz.ts";

const SEED = fuzzSeed();
console.log(`fuzz seed: ${SEED} (set FUZZ_SEED to reproduce or vary)`);

const NOW = "2026-11-24T20:00:00.000Z";
const STACK_LINE = /^\s+at /m;
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

// ---------------------------------------------------------------------------------------------
// (a) znode decoders

interface DecoderCase {
  name: string;
  schema: v.GenericSchema;
  /** Valid payloads to mutate: every optional field set, and the minimal one. */
  samples: Record<string, unknown>[];
  /** Extra checks on a successfully decoded value, independent of valibot. */
  check(value: Record<string, unknown>): void;
  /** Keys the schema does not know are kept (an app spec: fields of a newer version), not stripped. */
  open?: boolean;
}

/** The entries of a payload schema: an object schema, the last item of its pipe (jsonObject). */
function entriesOf(schema: v.GenericSchema): Record<string, unknown> {
  const withPipe = schema as unknown as { pipe?: { entries?: Record<string, unknown> }[]; entries?: Record<string, unknown> };
  const entries = withPipe.entries ?? withPipe.pipe?.at(-1)?.entries;
  if (!entries) throw new Error("not an object schema");
  return entries;
}

const isVersion = (s: unknown): boolean => typeof s === "string" && VERSION_PATTERN.test(s);
const isName = (s: unknown): boolean => typeof s === "string" && NAME_PATTERN.test(s);
const isTimestamp = (s: unknown): boolean => typeof s === "string" && !Number.isNaN(Date.parse(s));
const oneLine = (s: unknown): boolean => typeof s === "string" && !/[\r\n\0]/.test(s);

function expectAll(value: Record<string, unknown>, checks: Record<string, boolean>): void {
  const failed = Object.entries(checks)
    .filter(([, ok]) => !ok)
    .map(([what]) => what);
  if (failed.length > 0) throw new Error(`decoded value breaks ${failed.join(", ")}: ${JSON.stringify(value).slice(0, 400)}`);
}

const APP_SPEC_FULL = {
  version: "1.2.3",
  rolloutId: "rabc12345",
  previousVersion: "1.2.2",
  slots: "25%",
  getVersionCmd: "cat VERSION",
  deployCmd: "deploy %(id)s %(version)s",
  verifyCmd: "curl -f localhost",
  groups: ["web", "db"],
  maxFailures: 1,
  deployTimeoutSec: 600,
  paused: false,
  ignoredFailures: 0,
  canary: 1,
  canaryAuto: true,
  promoted: false,
  updatedAt: NOW,
  updatedBy: "ci@build",
};
const {
  previousVersion: _p,
  verifyCmd: _v,
  ignoredFailures: _i,
  canary: _c,
  canaryAuto: _a,
  promoted: _r,
  ...APP_SPEC_MIN
} = APP_SPEC_FULL;

const DECODERS: DecoderCase[] = [
  {
    name: "AppSpec",
    open: true,
    schema: AppSpec,
    samples: [APP_SPEC_FULL, { ...APP_SPEC_MIN, slots: 2 }],
    check: (s) =>
      expectAll(s, {
        version: isVersion(s.version),
        previousVersion: s.previousVersion === undefined || isVersion(s.previousVersion),
        rolloutId: typeof s.rolloutId === "string" && /^r[0-9a-z]{6,40}$/.test(s.rolloutId),
        slots:
          (typeof s.slots === "number" && Number.isInteger(s.slots) && s.slots >= 1) ||
          (typeof s.slots === "string" && /^(?:[1-9]\d?|100)%$/.test(s.slots)),
        commands: [s.getVersionCmd, s.deployCmd, s.verifyCmd ?? "x"].every(
          (c) => typeof c === "string" && c.length >= 1 && c.length <= MAX_COMMAND_LENGTH && !c.includes("\0"),
        ),
        groups: Array.isArray(s.groups) && s.groups.every(isName),
        maxFailures: Number.isInteger(s.maxFailures) && (s.maxFailures as number) >= 0,
        deployTimeoutSec: Number.isInteger(s.deployTimeoutSec) && (s.deployTimeoutSec as number) >= 1,
        paused: typeof s.paused === "boolean",
        updatedAt: isTimestamp(s.updatedAt),
        updatedBy: oneLine(s.updatedBy),
      }),
  },
  {
    name: "HostStatus",
    schema: HostStatus,
    samples: [
      {
        state: "failed",
        version: "1.0",
        target: "1.1",
        rolloutId: "rabc12345",
        since: NOW,
        updatedAt: NOW,
        queuePosition: 2,
        exitCode: 1,
        error: "deploy-cmd exited with code 1",
        outputTail: "boom",
        durationMs: 12,
      },
      { state: "current", version: "1.1", target: "1.1", rolloutId: "rabc12345", since: NOW, updatedAt: NOW },
    ],
    check: (s) =>
      expectAll(s, {
        state: (HOST_STATES as readonly unknown[]).includes(s.state),
        target: isVersion(s.target),
        version: typeof s.version === "string" && s.version.length <= 256,
        since: isTimestamp(s.since),
        exitCode: s.exitCode === undefined || s.exitCode === null || Number.isInteger(s.exitCode),
      }),
  },
  {
    name: "Lease",
    schema: Lease,
    samples: [{ host: "web-01", version: "1.1", since: NOW }],
    check: (s) => expectAll(s, { host: isName(s.host), version: isVersion(s.version), since: isTimestamp(s.since) }),
  },
  {
    name: "Failure",
    schema: Failure,
    samples: [
      { exitCode: 1, at: NOW, error: "deploy-cmd exited with code 1" },
      { exitCode: null, at: NOW, error: "" },
    ],
    check: (s) =>
      expectAll(s, {
        exitCode: s.exitCode === null || Number.isInteger(s.exitCode),
        at: isTimestamp(s.at),
        error: typeof s.error === "string" && s.error.length <= 4_096,
      }),
  },
  {
    name: "HistoryEntry",
    schema: HistoryEntry,
    samples: [
      { at: NOW, by: "ci", action: "publish", from: "1.0", to: "1.1", detail: "canary 1" },
      { at: NOW, by: "", action: "pause" },
    ],
    check: (s) =>
      expectAll(s, {
        action: (HISTORY_ACTIONS as readonly unknown[]).includes(s.action),
        by: oneLine(s.by),
        at: isTimestamp(s.at),
      }),
  },
  {
    name: "AgentInfo",
    schema: AgentInfo,
    samples: [
      { groups: ["web"], apps: ["a", "b"], agentVersion: "0.1.0", pid: 4242, startedAt: NOW },
      { groups: [], agentVersion: "0.1.0", pid: 1, startedAt: NOW },
    ],
    check: (s) =>
      expectAll(s, {
        groups: Array.isArray(s.groups) && s.groups.every(isName),
        apps: s.apps === undefined || (Array.isArray(s.apps) && s.apps.every(isName)),
        pid: Number.isInteger(s.pid) && (s.pid as number) >= 1,
        startedAt: isTimestamp(s.startedAt),
      }),
  },
];

const PER_DECODER = 5_000;

/** Payloads every decoder must survive, besides the random ones. */
function edgePayloads(sample: Record<string, unknown>): Buffer[] {
  const json = JSON.stringify(sample);
  const giantKey = Object.keys(sample).find((k) => typeof sample[k] === "string") ?? "x";
  return [
    Buffer.alloc(0),
    Buffer.from("null"),
    Buffer.from("[]"),
    Buffer.from('"string"'),
    Buffer.from("1e999"),
    Buffer.from(json.slice(0, -1)),
    Buffer.from(`${json}garbage`),
    Buffer.from(`\ufeff${json}`),
    Buffer.from([0xc3, 0x28, 0xa0, 0xa1]),
    Buffer.from(`[${json}]`),
    Buffer.from(`{"__proto__":{"polluted":true},${json.slice(1)}`),
    Buffer.from(`{"constructor":{"prototype":{"polluted":true}},${json.slice(1)}`),
    // Valid JSON, absurdly nested (stays under ZooKeeper's 1 MiB).
    Buffer.from(`${"[".repeat(400_000)}${"]".repeat(400_000)}`),
    Buffer.from(`{"a":${'{"a":'.repeat(150_000)}1${"}".repeat(150_000)}}`),
    // ~1,000,000 bytes of JSON: a giant known string field (valid JSON), the same cut short
    // (invalid JSON), a giant unknown field; then exactly at and one byte over the limit.
    Buffer.from(JSON.stringify({ ...sample, [giantKey]: "x".repeat(1_000_000 - json.length) })),
    Buffer.from(JSON.stringify({ ...sample, [giantKey]: "x".repeat(1_000_000) }).slice(0, 1_000_000)),
    Buffer.from(JSON.stringify({ ...sample, blob: "x".repeat(1_000_000 - json.length - 20) })),
    Buffer.alloc(MAX_PAYLOAD_BYTES, 0x20),
    Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x20),
  ];
}

function generatePayload(rng: Rng, samples: Record<string, unknown>[]): Buffer {
  const sample = rng.pick(samples);
  return rng.weighted<Buffer>([
    [1, () => randomBytes(rng, 80)],
    [1, () => corruptBytes(rng, Buffer.from(JSON.stringify(sample)))],
    [2, () => Buffer.from(JSON.stringify(randomJson(rng, 4)))],
    [7, () => Buffer.from(JSON.stringify(mutate(rng, sample)))],
    [1, () => Buffer.from(JSON.stringify({ ...sample, [rng.pick(Object.keys(sample))]: hostileString(rng) }))],
  ]);
}

interface DecodeStats {
  accepted: number;
  rejected: number;
  /** Rejections whose reason is not one line of printable text (see the failing test below). */
  unprintableReasons: string[];
}

function fuzzDecoder(c: DecoderCase, rng: Rng): DecodeStats {
  const stats: DecodeStats = { accepted: 0, rejected: 0, unprintableReasons: [] };
  const path = `/apps/fuzz-${c.name}`;
  const payloads = [...edgePayloads(c.samples[0] ?? {})];
  for (let i = 0; i < PER_DECODER; i++) payloads.push(generatePayload(rng, c.samples));
  for (const data of payloads) {
    let decoded: unknown;
    try {
      decoded = decodeZnode(c.schema, data, path);
    } catch (error) {
      if (!(error instanceof InvalidDataError)) {
        throw new Error(`${c.name}: ${String(error)} escaped for payload ${JSON.stringify(data.toString("utf8").slice(0, 300))}`);
      }
      expect(error.path).toBe(path);
      expect(error.reason.length).toBeGreaterThan(0);
      if (CONTROL.test(error.reason)) stats.unprintableReasons.push(error.reason);
      stats.rejected += 1;
      continue;
    }
    stats.accepted += 1;
    if (typeof decoded !== "object" || decoded === null || Array.isArray(decoded)) {
      throw new Error(`${c.name}: decoded a non-object ${JSON.stringify(decoded)}`);
    }
    const value = decoded as Record<string, unknown>;
    // It re-validates, carries no key the schema does not know (unless open), and round-trips through encode.
    expect(v.safeParse(c.schema, value).success).toBe(true);
    const known = Object.keys(entriesOf(c.schema));
    const unknownKeys = Object.keys(value).filter((k) => !known.includes(k));
    if (unknownKeys.length > 0 && !c.open) throw new Error(`${c.name}: decoded value kept unknown keys ${JSON.stringify(unknownKeys)}`);
    c.check(value);
    expect(decodeZnode(c.schema, encodeZnode(c.schema, value), path)).toEqual(value);
  }
  return stats;
}

describe("fuzz: znode decoders", () => {
  const totals: { name: string; stats: DecodeStats }[] = [];

  for (const [index, c] of DECODERS.entries()) {
    test(`${c.name}: ≥${PER_DECODER} generated payloads — only InvalidDataError escapes, decoded values re-validate`, () => {
      const stats = fuzzDecoder(c, new Rng(SEED + index));
      totals.push({ name: c.name, stats });
      expect(stats.accepted + stats.rejected).toBeGreaterThanOrEqual(PER_DECODER);
      // Not vacuous: the generator reaches both outcomes.
      expect(stats.accepted).toBeGreaterThan(0);
      expect(stats.rejected).toBeGreaterThan(0);
      // Object.prototype was not polluted by any payload.
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  }

  afterAll(() => {
    for (const { name, stats } of totals) {
      console.log(
        `fuzz decoder ${name}: ${stats.accepted + stats.rejected} payloads, ${stats.accepted} accepted, ${stats.rejected} rejected, ` +
          `${stats.unprintableReasons.length} reasons with control characters`,
      );
    }
  });

  // Regression (was a bug: src/config/decode.ts, firstIssue): the reason quotes the offending znode value raw, via
  // valibot's default messages ('Invalid type: Expected ("current" | …) but received "<raw>"'),
  // so a hostile payload puts newlines and terminal escapes into `status`, `app show` and agent
  // log output, although decodeZnode promises "a one-line reason". Anyone who may write a
  // hosts/<host> node (the agent identity) can forge lines in an operator's `conveyor status`.
  // Fixed by: in firstIssue, escape control characters (e.g. replace /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g
  // with JSON-style \uXXXX escapes) and cap the length.
  test("a rejected payload's reason is one line of printable text (no raw control characters)", () => {
    const status = {
      state: "current\n2026-11-24T20:00:00Z INFO deploy succeeded\u001b[2J",
      version: "1",
      target: "1",
      rolloutId: "rabc12345",
      since: NOW,
      updatedAt: NOW,
    };
    const slots = { ...APP_SPEC_MIN, slots: "5\n%" };
    for (const [schema, payload] of [
      [HostStatus, status],
      [AppSpec, slots],
    ] as const) {
      let reason = "";
      try {
        decodeZnode(schema, Buffer.from(JSON.stringify(payload)), "/x");
      } catch (error) {
        if (error instanceof InvalidDataError) reason = error.reason;
      }
      expect(reason).not.toBe("");
      expect(reason).not.toMatch(CONTROL);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// (b) the argv parser

const APP_SUBCOMMANDS = [
  "create",
  "set-slots",
  "show",
  "list",
  "delete",
  "wait",
  "pause",
  "resume",
  "retry",
  "promote",
  "rollback",
  "history",
];
const VALUE_FLAGS = [
  "--zk",
  "--auth",
  "--auth-file",
  "--config",
  "--connect-timeout",
  "--log-level",
  "--slots",
  "--get-version-cmd",
  "--deploy-cmd",
  "--verify-cmd",
  "--groups",
  "--max-failures",
  "--deploy-timeout",
  "--canary",
  "--wait-timeout",
  "--to",
  "--limit",
  "--agent-auth",
  "--agent-auth-file",
  "--host-id",
  "--session-timeout",
  "--log-format",
];
const BOOLEAN_FLAGS = ["--json", "--help", "-h", "--canary-auto", "--rollback-on-failure", "--version", "-v"];
/** Never generated: they could block (a real agent loop, a rollout wait, a live status view). */
const EXCLUDED = new Set(["agent", "--wait", "--watch"]);
const UNREACHABLE = "127.0.0.1:1";
const TIMEOUT_PREFIX = ["--connect-timeout", "100ms"];

let fixtureDir = "";
const pathValues: string[] = [];

beforeAll(() => {
  fixtureDir = mkdtempSync(join(tmpdir(), "conveyor-fuzz-"));
  const file = (name: string, text: string): string => {
    const path = join(fixtureDir, name);
    writeFileSync(path, text);
    return path;
  };
  mkdirSync(join(fixtureDir, "a-directory"));
  pathValues.push(
    file("good.toml", `zk = "${UNREACHABLE}/fuzz"\nconnectTimeout = "100ms"\n[agent]\napps = ["a"]\n`),
    file("unknown.toml", `zk = "${UNREACHABLE}"\nbogus = 1\n`),
    file("types.toml", `connectTimeout = 5\n[agent]\napps = "a"\n`),
    file("broken.toml", "zk = \n[[[\n"),
    file("creds", "admin:s3cret\n"),
    file("bad-creds", "no colon here\n"),
    file("empty", ""),
    join(fixtureDir, "a-directory"),
    join(fixtureDir, "missing"),
    "",
  );
});

afterAll(() => {
  if (fixtureDir !== "") rmSync(fixtureDir, { recursive: true, force: true });
});

/** A value for a flag: hostile, plausible, or (for path flags) one of the fixture files. */
function flagValue(rng: Rng, flag: string): string {
  if (/file|config/.test(flag) && rng.bool(0.5)) return rng.pick(pathValues);
  return rng.weighted<string>([
    [3, () => hostileString(rng)],
    [3, () => plausibleToken(rng)],
  ]);
}

function token(rng: Rng): string[] {
  return rng.weighted<string[]>([
    [
      4,
      () => {
        const flag = rng.pick(VALUE_FLAGS);
        const value = flagValue(rng, flag);
        return rng.bool(0.8) ? [flag, value] : [`${flag}=${value}`];
      },
    ],
    [1, () => [rng.pick(VALUE_FLAGS)]], // value missing (or the next token taken as it)
    [2, () => [rng.pick(BOOLEAN_FLAGS)]],
    [
      1,
      () => [
        rng.pick([
          "--frob",
          "-x",
          "--",
          "-",
          "--slot",
          "--json=false",
          "--no-json",
          "--constructor",
          "--toString",
          `--${hostileString(rng)}`,
        ]),
      ],
    ],
    [3, () => [hostileString(rng)]],
    [2, () => [plausibleToken(rng)]],
  ]);
}

function commandWords(rng: Rng): string[] {
  return rng.weighted<string[]>([
    [2, () => ["status"]],
    [5, () => ["app", rng.pick(APP_SUBCOMMANDS)]],
    [2, () => ["acl", rng.pick(["init", "show"])]],
    [2, () => ["host", rng.pick(["list", "show", "forget"])]],
    [1, () => ["app"]],
    [1, () => ["acl"]],
    [1, () => ["host"]],
    [1, () => []],
    [1, () => [rng.pick(["help", "stat", "apps", "ACL", "version", "-v", "--version"])]],
    [1, () => [hostileString(rng)]],
  ]);
}

/**
 * Keeps every generated run fast and harmless: ZooKeeper is always unreachable (a --zk value
 * that would parse to anything but 127.0.0.1:1 is replaced), the connect timeout stays ≤ 200 ms,
 * no path under /dev, /proc or /sys is read, and nothing that could block is generated.
 */
function sanitize(argv: string[]): string[] {
  const out = argv.map((t) => (EXCLUDED.has(t) || EXCLUDED.has(t.split("=")[0] ?? "") ? "x" : t));
  const safeZk = (value: string): string => {
    const parsed = parseConnectString(value);
    if (typeof parsed === "string") return value; // invalid: exits 2 before connecting
    return parsed.servers.every((s) => s.host === "127.0.0.1" && s.port === 1) ? value : `${UNREACHABLE}/fuzz`;
  };
  const safeTimeout = (value: string): string => {
    const ms = parseDurationMs(value);
    return ms !== undefined && ms > 200 && ms <= 600_000 ? "100ms" : value;
  };
  const safePath = (value: string): string => (/^\s*\/+(dev|proc|sys)\b/.test(value) ? "/nonexistent" : value);
  const fixers: Record<string, (value: string) => string> = {
    "--zk": safeZk,
    "--connect-timeout": safeTimeout,
    "--config": safePath,
    "--auth-file": safePath,
    "--agent-auth-file": safePath,
  };
  for (let i = 0; i < out.length; i++) {
    const t = out[i] ?? "";
    for (const [flag, fix] of Object.entries(fixers)) {
      if (t === flag && i + 1 < out.length) out[i + 1] = fix(out[i + 1] ?? "");
      else if (t.startsWith(`${flag}=`)) out[i] = `${flag}=${fix(t.slice(flag.length + 1))}`;
    }
  }
  return out;
}

/** A valid command with, now and then, one word or value replaced by a hostile one. */
function nearValidArgv(rng: Rng): string[] {
  const name = (): string => rng.pick(["web", "api-2", "db.main", "a_b"]);
  const version = (): string => rng.pick(["1.0", "2.3.4-rc1", "1:2.0~rc1+b1", "v10"]);
  const template = rng.pick<() => string[]>([
    () => [
      "app",
      "create",
      name(),
      version(),
      "--get-version-cmd",
      "cat VERSION",
      "--deploy-cmd",
      "deploy %(version)s",
      "--slots",
      rng.pick(["1", "3", "25%"]),
    ],
    () => [
      "app",
      "create",
      name(),
      version(),
      "--groups",
      "web,db",
      "--max-failures",
      "2",
      "--deploy-timeout",
      "5m",
      "--canary",
      "1",
      "--canary-auto",
    ],
    () => ["app", "set-slots", name(), rng.pick(["2", "50%"])],
    () => ["app", rng.pick(["show", "delete", "pause", "resume", "retry", "promote", "wait"]), name()],
    () => ["app", "rollback", name(), "--to", version()],
    () => ["app", "history", name(), "--limit", "5"],
    () => ["app", "list", "--json"],
    () => ["status", ...(rng.bool() ? [name()] : []), ...(rng.bool() ? ["--json"] : [])],
    () => ["acl", "init", "--auth", "admin:pw", "--agent-auth", "agent:pw2"],
    () => ["acl", "show", "--auth", "admin:pw"],
  ]);
  const argv = template();
  for (let i = 0; i < argv.length; i++) if (rng.bool(0.12)) argv[i] = hostileString(rng);
  if (rng.bool(0.2)) argv.splice(rng.int(argv.length + 1), 0, ...token(rng));
  return [...TIMEOUT_PREFIX, ...sanitize(argv)];
}

function generateArgv(rng: Rng): string[] {
  if (rng.bool(0.35)) return nearValidArgv(rng);
  if (rng.bool(0.03)) return [rng.pick(["--version", "-v", "version"]), ...Array.from({ length: rng.int(3) }, () => hostileString(rng))];
  const parts: string[] = [];
  const before = rng.int(3);
  for (let i = 0; i < before; i++) parts.push(...token(rng));
  parts.push(...commandWords(rng));
  const positionals = rng.int(4);
  for (let i = 0; i < positionals; i++) parts.push(rng.bool(0.5) ? hostileString(rng) : plausibleToken(rng));
  const after = rng.int(6);
  for (let i = 0; i < after; i++) parts.push(...token(rng));
  if (rng.bool(0.05)) parts.splice(rng.int(parts.length + 1), 0, "--");
  return [...TIMEOUT_PREFIX, ...sanitize(parts)];
}

function generateEnv(rng: Rng): Record<string, string> {
  const env: Record<string, string> = {
    CONVEYOR_ZK: rng.weighted<string>([
      [8, () => UNREACHABLE],
      [1, () => `${UNREACHABLE}/fuzz-env`],
      [1, () => rng.pick(["", "bad host!:2181", "h:99999", `${UNREACHABLE}/bad chroot`, "$(id)", "a\nb"])],
    ]),
  };
  if (rng.bool(0.2)) env.CONVEYOR_AUTH = rng.bool(0.5) ? hostileString(rng) : "admin:pw";
  if (rng.bool(0.1)) env.CONVEYOR_ACTOR = hostileString(rng);
  return env;
}

interface Captured extends Io {
  outs: string[];
  errs: string[];
}

function capturingIo(): Captured {
  const outs: string[] = [];
  const errs: string[] = [];
  return { outs, errs, out: (t) => void outs.push(t), write: (t) => void outs.push(t), err: (t) => void errs.push(t), isTty: false };
}

type Shape = "silent" | "help" | "error" | "error+hint";

/** How stderr is laid out, or undefined when it fits none of the accepted layouts. */
function stderrShape(errs: string[]): Shape | undefined {
  if (errs.length === 0) return "silent";
  const [first = "", second = ""] = errs;
  if (errs.length === 2 && /^conveyor(?: app| acl| host)?: (?:unknown|missing) command/.test(first) && second.includes("Usage:"))
    return "help";
  if (!first.startsWith("error: ")) return undefined;
  if (errs.length === 1) return "error";
  // cac's usage errors add one fixed hint line (command-group.ts usage()).
  if (errs.length === 2 && /^run "conveyor(?: [a-z-]+)* --help" for usage$/.test(second)) return "error+hint";
  return undefined;
}

const ARGV_RUNS = 3_200;
const BATCH = 100;

describe("fuzz: argv parser", () => {
  test(`≥${ARGV_RUNS} generated argv arrays: exit 0-3, nothing thrown, no stack trace, one error line`, async () => {
    const rng = new Rng(SEED ^ 0xa5a5a5a5);
    const codes = new Map<number, number>();
    const shapes = new Map<string, number>();
    const multiLine: { argv: string[]; err: string }[] = [];
    const internal: { argv: string[]; err: string }[] = [];
    const problems: string[] = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const started = performance.now();
    try {
      for (let done = 0; done < ARGV_RUNS; done += BATCH) {
        const batch = Array.from({ length: BATCH }, () => ({ argv: generateArgv(rng), env: generateEnv(rng), io: capturingIo() }));
        const results = await Promise.all(
          batch.map(async (c) => {
            try {
              return { ...c, code: await run(c.argv, { io: c.io, env: c.env }) };
            } catch (error) {
              return { ...c, code: -1, thrown: error };
            }
          }),
        );
        for (const r of results) {
          const label = `argv ${JSON.stringify(r.argv).slice(0, 600)} env ${JSON.stringify(r.env).slice(0, 200)}`;
          const errText = r.io.errs.join("\n");
          codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
          if ("thrown" in r) problems.push(`${label}: threw ${String(r.thrown)}`);
          else if (![0, 1, 2, 3].includes(r.code)) problems.push(`${label}: exit ${r.code}`);
          if (STACK_LINE.test(errText) || STACK_LINE.test(r.io.outs.join("\n"))) problems.push(`${label}: stack trace: ${errText}`);
          const shape = stderrShape(r.io.errs);
          shapes.set(shape ?? "other", (shapes.get(shape ?? "other") ?? 0) + 1);
          if (shape === undefined) problems.push(`${label}: unexpected stderr layout ${JSON.stringify(r.io.errs)}`);
          if (r.code === 0 && shape !== "silent") problems.push(`${label}: exit 0 with stderr ${JSON.stringify(r.io.errs)}`);
          if (r.code !== 0 && shape === "silent") problems.push(`${label}: exit ${r.code} without a message`);
          if (shape === "help" && r.code !== 2) problems.push(`${label}: unknown command but exit ${r.code}`);
          const message = r.io.errs[0] ?? "";
          if ((shape === "error" || shape === "error+hint") && /[\r\n]/.test(message)) {
            multiLine.push({ argv: r.argv, err: message });
            problems.push(`${label}: multi-line error message: ${JSON.stringify(message)}`);
          }
          if (message.startsWith("error: internal error:")) {
            internal.push({ argv: r.argv, err: message });
            problems.push(`${label}: internal error ${message}`);
          }
        }
      }
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const total = [...codes.values()].reduce((a, b) => a + b, 0);
    console.log(
      `fuzz argv: ${total} runs in ${seconds} s; exit codes ${JSON.stringify(Object.fromEntries(codes))}; ` +
        `stderr layouts ${JSON.stringify(Object.fromEntries(shapes))}; ${multiLine.length} multi-line messages (raw value echoed); ` +
        `${internal.length} internal errors`,
    );
    for (const m of multiLine.slice(0, 3))
      console.log(`  multi-line example: ${JSON.stringify(m.argv).slice(0, 200)} → ${JSON.stringify(m.err).slice(0, 200)}`);
    expect(problems.slice(0, 10)).toEqual([]);
    expect(unhandled.map(String)).toEqual([]);
    expect(total).toBeGreaterThanOrEqual(ARGV_RUNS);
    // Not vacuous: help (0), usage errors (2) and validated commands that tried to connect (3) all occur.
    for (const code of [0, 2, 3]) expect(codes.get(code) ?? 0).toBeGreaterThan(0);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  }, 60_000);

  // Regression (was a bug): several usage errors echo the offending value raw, so a value with a line break (or a
  // terminal escape) turns the one-line error into several lines: src/config/settings.ts
  // (`invalid connect timeout "${timeoutText}"`, `invalid --log-level "${levelText}"`, the user in
  // parseCredential), src/zk/connect-string.ts (host, port, chroot), src/config/config-file.ts and
  // settings.ts readCredentialFile (the path), src/cli/run.ts commandWordIndex (unknown option),
  // src/cli/commands/agent.ts (--log-format), and cac's "Unknown option" via command-group.ts
  // usage() (also cac's "Unused args: ..."). parse-input.ts already does it right (quote() = JSON.stringify). Fixed by: quote every
  // named value the same way, or escape control characters once in run()/usage() before printing.
  test("a usage error naming a value with a line break or escape is still one line", async () => {
    const cases: { argv: string[]; env?: Record<string, string> }[] = [
      { argv: [...TIMEOUT_PREFIX, "--log-level", "a\nb", "status"] },
      { argv: ["--connect-timeout", "a\nb", "status"] },
      { argv: [...TIMEOUT_PREFIX, "--zk", "a\nb", "status"] },
      { argv: [...TIMEOUT_PREFIX, "--config", "/no\nfile", "status"] },
      { argv: [...TIMEOUT_PREFIX, "--auth", "us\ner:pw", "status"] },
      { argv: [...TIMEOUT_PREFIX, "--fr\nob", "status"] },
      { argv: [...TIMEOUT_PREFIX, "status", "--fr\nob"] },
      { argv: [...TIMEOUT_PREFIX, "--log-level", "\u001b[2J", "status"] },
      { argv: [...TIMEOUT_PREFIX, "status"], env: { CONVEYOR_ZK: "a\nb" } },
      { argv: [...TIMEOUT_PREFIX, "status", "web", "extra\nline"] }, // cac: "Unused args: ..."
    ];
    for (const c of cases) {
      const io = capturingIo();
      expect(await run(c.argv, { io, env: c.env ?? { CONVEYOR_ZK: UNREACHABLE } })).toBe(2);
      expect(io.errs[0] ?? "").not.toMatch(CONTROL);
    }
  });

  // Regression (was a bug): a file path with a NUL byte (possible from a config file's authFile, the run() API, or
  // CONVEYOR_* plumbing) makes Bun.file() throw synchronously outside the try blocks:
  // src/config/config-file.ts:50 (`Bun.file(path)`), src/config/settings.ts readCredentialFile
  // (`Bun.file(path)`), src/cli/commands/acl.ts:28 (`Bun.file(agentFile).text().catch(...)` — the
  // throw happens before .catch). The CLI then exits 1 with "internal error: The argument 'path'
  // must be ... without null bytes" instead of 2 naming the value. Fixed by: create the Bun.file inside
  // the try (or reject paths containing "\0" with a UsageError).
  test("a NUL byte in a file path is a usage error (exit 2), not an internal error", async () => {
    for (const argv of [
      ["--config", "a\u0000b", "status"],
      [...TIMEOUT_PREFIX, "--auth-file", "a\u0000b", "status"],
      [...TIMEOUT_PREFIX, "--auth", "admin:pw", "acl", "init", "--agent-auth-file", "x\u0000y"],
    ]) {
      const io = capturingIo();
      const code = await run(argv, { io, env: { CONVEYOR_ZK: UNREACHABLE } });
      expect(io.errs.join("\n")).not.toContain("internal error");
      expect(code).toBe(2);
    }
  });

  // Regression (was a bug: src/cli/run.ts:62, `GROUPS[word]`): the command word is looked up on a plain object, so
  // "constructor", "__proto__", "toString", "valueOf", ... find Object.prototype members; run()
  // hands that to runCommandGroup as a command list and exits 1 with "internal error: {} is not
  // iterable" (or "... is not a function") instead of 2 "unknown command". Repro:
  // `conveyor constructor` → exit 1. Fixed by: `Object.hasOwn(GROUPS, word) ? GROUPS[word] : undefined`
  // (or a Map).
  test("a command word named after an Object.prototype member is an unknown command (exit 2)", async () => {
    for (const word of ["constructor", "__proto__", "toString", "valueOf", "hasOwnProperty"]) {
      const io = capturingIo();
      const code = await run([...TIMEOUT_PREFIX, word], { io, env: { CONVEYOR_ZK: UNREACHABLE } });
      expect(io.errs.join("\n")).not.toContain("internal error");
      expect(code).toBe(2);
    }
  });

  // Regression (was a bug: minor): an unknown option named after an Object.prototype member ("--constructor",
  // "--__proto__") is silently ignored instead of refused with exit 2: cac drops UNSAFE_KEYS from
  // the parsed options (its prototype-pollution guard, node_modules/cac setDotProp), so
  // checkUnknownOptions never sees them. A typo guard, not a pollution: Object.prototype stays
  // clean. Fixed by: in src/cli/command-group.ts, check argv's option names against the known flags
  // before cac parses (as commandWordIndex already does before the command word).
  test("--constructor / --__proto__ are refused as unknown options", async () => {
    for (const flag of ["--constructor", "--__proto__"]) {
      const io = capturingIo();
      expect(await run([...TIMEOUT_PREFIX, "status", flag, "1"], { io, env: { CONVEYOR_ZK: UNREACHABLE } })).toBe(2);
    }
  });
});
