// Seeded randomness for fuzz tests: a tiny PRNG (mulberry32) and generators of hostile input.
// Typical use:
//
//   const seed = fuzzSeed();                      // FUZZ_SEED from the environment, else a fixed default
//   const rng = new Rng(seed);
//   const s = hostileString(rng);                 // shell metacharacters, unicode, NUL, huge, empty...
//   const payload = mutate(rng, validObject);     // a valid payload with a field deleted/retyped/...
//
// The same seed always yields the same sequence, so a failure is reproduced with
// `FUZZ_SEED=<seed> bun test test/unit/fuzz.test.ts`. No dependency beyond the runtime.

/** Default seed when FUZZ_SEED is not set: fixed, so CI runs are reproducible. */
export const DEFAULT_FUZZ_SEED = 0x5eed_c0de;

/** FUZZ_SEED (decimal or 0x-hex) from `env`, else DEFAULT_FUZZ_SEED. */
export function fuzzSeed(env: Record<string, string | undefined> = process.env): number {
  const text = env.FUZZ_SEED?.trim();
  if (text === undefined || text === "") return DEFAULT_FUZZ_SEED;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new Error(`FUZZ_SEED must be a number, got ${JSON.stringify(text)}`);
  return value >>> 0;
}

/** mulberry32: a 32-bit state PRNG, good enough for test data and fully deterministic. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export class Rng {
  private readonly next01: () => number;

  constructor(readonly seed: number) {
    this.next01 = mulberry32(seed);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.next01();
  }

  /** Integer in [0, max). */
  int(max: number): number {
    return Math.floor(this.next01() * max);
  }

  /** Integer in [min, max] (inclusive). */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  bool(probability = 0.5): boolean {
    return this.next01() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[this.int(items.length)] as T;
  }

  /** Picks one of the generators by weight and runs it. */
  weighted<T>(choices: readonly (readonly [number, () => T])[]): T {
    const total = choices.reduce((sum, [w]) => sum + w, 0);
    let roll = this.next01() * total;
    for (const [weight, make] of choices) {
      roll -= weight;
      if (roll < 0) return make();
    }
    const last = choices[choices.length - 1];
    if (!last) throw new Error("weighted() needs at least one choice");
    return last[1]();
  }
}

// ---------------------------------------------------------------------------------------------
// Hostile strings

/** Hand-picked strings that have broken shells, parsers and terminals somewhere. */
export const HOSTILE_STRINGS: readonly string[] = [
  "",
  " ",
  "\t",
  "\n",
  "\r\n",
  "-",
  "--",
  "-rf",
  "--help",
  ".",
  "..",
  "../../etc/passwd",
  "/",
  "~",
  "~root",
  "*",
  "?",
  "[a-z]*",
  "{a,b}",
  "$HOME",
  "${HOME}",
  "${IFS}",
  "$(id)",
  "$(touch pwned)",
  "`id`",
  "`touch pwned`",
  "; touch pwned",
  "1.0;touch pwned",
  "1.0 && touch pwned",
  "1.0 || touch pwned",
  "1.0 | tee pwned",
  "1.0 > pwned",
  "1.0 < /etc/passwd",
  "1.0 & touch pwned &",
  "1.0\ntouch pwned",
  "1.0\rtouch pwned",
  "1.0'$(touch pwned)'",
  '1.0"$(touch pwned)"',
  "'",
  "''",
  "'\\''",
  '"',
  "\\",
  "\\'",
  "a'b\"c\\d",
  "!!",
  "!$",
  "#",
  "# comment",
  "%(version)s",
  "%(id)s%(host)s",
  "%s%s%s%n",
  "%x%x%x",
  "{{7*7}}",
  "<script>alert(1)</script>",
  "\u0000",
  "a\u0000b",
  "\u0000$(touch pwned)",
  "\u0007\u0008\u001b[2J\u001b[31mred",
  "\u001b]0;title\u0007",
  "\u202e1.0",
  "\u200b",
  "\ufeff1.0",
  "\ud800",
  "\udfff\ud800",
  "１.０",
  "ǅ",
  "İ",
  "ß",
  "é",
  "e\u0301",
  "😀",
  "👨‍👩‍👧",
  "\u0085",
  "\u2028",
  "NaN",
  "Infinity",
  "-0",
  "0",
  "00",
  "1e309",
  "0x10",
  "9007199254740993",
  "-1",
  "1.10",
  "true",
  "false",
  "null",
  "undefined",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "{}",
  "[]",
  '{"__proto__":{"polluted":true}}',
  '{"a":',
  "]]]",
  '"\\u0000"',
  "a".repeat(128),
  "a".repeat(129),
  "9".repeat(400),
  "CON",
  "nul",
  "lock",
  "leases",
  "zookeeper",
];

const METACHARACTERS = [..."`$()|&;<>*?[]{}!#~'\"\\\n\r\t =%^,"];
const UNICODE_BITS = ["é", "ü", "ß", "Ω", "中", "文", "😀", "\u202e", "\u200b", "\u00a0", "\ufeff", "\u0301", "\u2028", "\ud83d", "\udc00"];
const ASCII_WORDS = ["1.0", "web", "deploy", "rm", "-rf", "touch", "x", "app", "host", "2.3.4-rc1", "v1+build", "1:2.0~rc"];

/** A string of `length` characters drawn from `alphabet`. */
export function stringFrom(rng: Rng, alphabet: readonly string[], length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += rng.pick(alphabet);
  return out;
}

/** Random code units, lone surrogates and control characters included. */
export function randomUnicode(rng: Rng, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) {
    out += rng.weighted<string>([
      [4, () => String.fromCharCode(rng.range(0x20, 0x7e))],
      [1, () => String.fromCharCode(rng.range(0, 0x1f))],
      [1, () => String.fromCharCode(rng.range(0x80, 0xffff))],
      [1, () => String.fromCodePoint(rng.range(0x10000, 0x10ffff))],
      [1, () => rng.pick(UNICODE_BITS)],
    ]);
  }
  return out;
}

/** A hostile string: metacharacters, unicode, very long, empty, numeric, JSON fragments, NUL. */
export function hostileString(rng: Rng): string {
  return rng.weighted<string>([
    [6, () => rng.pick(HOSTILE_STRINGS)],
    [4, () => `${rng.pick(ASCII_WORDS)}${rng.pick(METACHARACTERS)}${rng.pick(HOSTILE_STRINGS)}`],
    [3, () => stringFrom(rng, METACHARACTERS, rng.range(1, 12))],
    [3, () => randomUnicode(rng, rng.range(1, 24))],
    [2, () => `${rng.pick(ASCII_WORDS)}${randomUnicode(rng, rng.range(1, 4))}`],
    [1, () => stringFrom(rng, ["a", "1", ".", "-", "_"], rng.range(120, 140))],
    [1, () => rng.pick(["x", "$(id)", "é", "\u0000"]).repeat(rng.pick([1_000, 10_000, 70_000]))],
    [
      1,
      () =>
        String(
          rng.weighted<number>([
            [1, () => rng.int(1_000)],
            [1, () => -rng.int(1_000)],
            [1, () => rng.next() * 1e12],
            [1, () => Number.MAX_SAFE_INTEGER + rng.int(10)],
          ]),
        ),
    ],
    [1, () => JSON.stringify(randomJson(rng, 2))],
    [1, () => JSON.stringify(randomJson(rng, 2)).slice(0, rng.range(0, 10))],
    [1, () => `${rng.pick(ASCII_WORDS)}\u0000${rng.pick(ASCII_WORDS)}`],
  ]);
}

/** A plausible-looking valid-ish token (so fuzzed input sometimes passes validation). */
export function plausibleToken(rng: Rng): string {
  return rng.weighted<string>([
    [3, () => rng.pick(ASCII_WORDS)],
    [2, () => `${rng.pick(["web", "api", "db", "a", "x1"])}${rng.bool() ? `-${rng.int(100)}` : ""}`],
    [2, () => `${rng.int(10)}.${rng.int(20)}${rng.bool() ? `.${rng.int(100)}` : ""}`],
    [1, () => String(rng.int(200))],
    [1, () => `${rng.range(1, 100)}%`],
    [1, () => `${rng.range(1, 900)}${rng.pick(["ms", "s", "m", "h", "d"])}`],
  ]);
}

// ---------------------------------------------------------------------------------------------
// Random JSON and bytes

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A random JSON value, at most `depth` levels of arrays/objects. */
export function randomJson(rng: Rng, depth: number): Json {
  const scalar = (): Json =>
    rng.weighted<Json>([
      [1, () => null],
      [1, () => rng.bool()],
      [1, () => rng.int(100)],
      [1, () => rng.pick([0, -1, 1.5, -0, 1e308, -1e308, 2 ** 53, 0.1, 1_000_001])],
      [3, () => hostileString(rng)],
      [1, () => plausibleToken(rng)],
    ]);
  if (depth <= 0) return scalar();
  return rng.weighted<Json>([
    [4, scalar],
    [1, () => Array.from({ length: rng.int(5) }, () => randomJson(rng, depth - 1))],
    [
      1,
      () => {
        const obj: { [key: string]: Json } = {};
        const n = rng.int(5);
        for (let i = 0; i < n; i++) obj[rng.bool(0.7) ? plausibleKey(rng) : hostileString(rng).slice(0, 40)] = randomJson(rng, depth - 1);
        return obj;
      },
    ],
  ]);
}

function plausibleKey(rng: Rng): string {
  return rng.pick([
    "version",
    "state",
    "host",
    "groups",
    "slots",
    "pid",
    "at",
    "by",
    "action",
    "error",
    "apps",
    "__proto__",
    "constructor",
    "x",
  ]);
}

/** Random bytes: pure noise, invalid UTF-8, or a valid payload with bytes flipped. */
export function randomBytes(rng: Rng, maxLength: number): Buffer {
  const length = rng.int(maxLength + 1);
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = rng.int(256);
  return out;
}

/** Flips, inserts or deletes a few bytes of `data` (often breaking UTF-8 or JSON). */
export function corruptBytes(rng: Rng, data: Buffer): Buffer {
  const bytes = [...data];
  const edits = rng.range(1, 4);
  for (let i = 0; i < edits; i++) {
    const at = rng.int(bytes.length + 1);
    rng.weighted<void>([
      [
        1,
        () => {
          bytes[at] = rng.int(256);
        },
      ],
      [1, () => void bytes.splice(at, 0, rng.pick([0x00, 0x22, 0x5c, 0x7b, 0x7d, 0x80, 0xc3, 0xff]))],
      [1, () => void bytes.splice(at, 1)],
    ]);
  }
  return Buffer.from(bytes);
}

// ---------------------------------------------------------------------------------------------
// Mutating valid payloads

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A value of a different type than `value` (number → string, string → array, ...). */
export function swapType(rng: Rng, value: unknown): unknown {
  const options: (() => unknown)[] = [
    () => null,
    () => rng.bool(),
    () => rng.pick([0, -1, 1.5, 1e308, Number.MAX_SAFE_INTEGER]),
    () => hostileString(rng),
    () => (value === undefined ? [] : [value]),
    () => ({ value: value ?? null }),
    () => String(value),
  ];
  for (;;) {
    const next = rng.pick(options)();
    if (typeof next !== typeof value || Array.isArray(next) !== Array.isArray(value)) return next;
  }
}

/** `value` wrapped `levels` times in arrays or objects. */
export function nestDeeper(rng: Rng, value: unknown, levels: number): unknown {
  let out = value;
  for (let i = 0; i < levels; i++) out = rng.bool() ? [out] : { [plausibleKey(rng)]: out };
  return out;
}

/**
 * One to three mutations of a valid payload: a field deleted, its type swapped, replaced by a
 * hostile string, nested deeper, an unknown field added (flat or deeply nested), or the whole
 * payload wrapped. Fields are chosen among `value`'s own keys. Returns a new value.
 */
export function mutate(rng: Rng, value: Record<string, unknown>): unknown {
  let current: unknown = structuredClone(value);
  const rounds = rng.range(1, 3);
  for (let i = 0; i < rounds; i++) current = mutateOnce(rng, current);
  return current;
}

function mutateOnce(rng: Rng, value: unknown): unknown {
  if (!isRecord(value)) return rng.bool(0.5) ? value : swapType(rng, value);
  const out: Record<string, unknown> = { ...value };
  const keys = Object.keys(out);
  const key = keys.length > 0 ? rng.pick(keys) : "x";
  rng.weighted<void>([
    [3, () => void delete out[key]],
    [
      3,
      () => {
        out[key] = swapType(rng, out[key]);
      },
    ],
    [
      4,
      () => {
        out[key] = hostileString(rng);
      },
    ],
    [
      2,
      () => {
        out[key] = nestDeeper(rng, out[key], rng.range(1, 50));
      },
    ],
    [
      2,
      () => {
        out[rng.bool() ? plausibleKey(rng) : hostileString(rng).slice(0, 30)] = randomJson(rng, 3);
      },
    ],
    [
      1,
      () => {
        out.extra = nestDeeper(rng, "deep", rng.range(100, 2_000));
      },
    ],
    [
      1,
      () => {
        out[key] = Array.isArray(out[key]) ? [...(out[key] as unknown[]), hostileString(rng)] : [out[key]];
      },
    ],
    [
      1,
      () => {
        out[key] = typeof out[key] === "string" ? `${String(out[key])}${rng.pick(METACHARACTERS)}` : out[key];
      },
    ],
  ]);
  return rng.bool(0.03) ? [out] : out;
}
