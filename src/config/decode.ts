import * as v from "valibot";
import { InvalidDataError } from "./errors.ts";
import { printable } from "../text/printable.ts";

/** Largest payload we parse: ZooKeeper's own limit (jute.maxbuffer) is 1 MiB. */
export const MAX_PAYLOAD_BYTES = 1_048_576;

/** One line naming the first problem: "slots: slots must be a whole number ≥ 1 …". */
export function firstIssue(issues: readonly v.BaseIssue<unknown>[]): string {
  const issue = issues[0];
  if (!issue) return "invalid";
  const path = issue.path?.map((p) => String(p.key)).join(".");
  return printable(path ? `${path}: ${issue.message}` : issue.message);
}

/**
 * Parses and validates a znode payload. Never throws anything but InvalidDataError: invalid
 * UTF-8, invalid JSON, absurd nesting and wrong shapes all become a one-line reason.
 */
export function decodeZnode<const S extends v.GenericSchema>(schema: S, data: Buffer, path: string): v.InferOutput<S> {
  const parsed = parseJson(data);
  if ("reason" in parsed) throw new InvalidDataError(path, parsed.reason);
  const result = v.safeParse(schema, parsed.json);
  if (!result.success) throw new InvalidDataError(path, firstIssue(result.issues));
  return result.output;
}

/** The JSON of a payload, or why there is none: empty, too large, not UTF-8 or JSON, nested too deeply. */
function parseJson(data: Buffer): { json: unknown } | { reason: string } {
  if (data.length === 0) return { reason: "empty payload" };
  if (data.length > MAX_PAYLOAD_BYTES) return { reason: `payload of ${data.length} bytes is too large` };
  try {
    return { json: JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data)) };
  } catch (error) {
    return { reason: error instanceof RangeError ? "nested too deeply" : "not valid JSON" };
  }
}

/**
 * One field of a payload that fails validation as a whole, when that field is valid on its own
 * (the version a corrupt app spec still names, say); undefined otherwise. Never throws.
 */
export function salvageField<const S extends v.GenericSchema>(data: Buffer, key: string, schema: S): v.InferOutput<S> | undefined {
  const parsed = parseJson(data);
  if (!("json" in parsed)) return undefined;
  const { json } = parsed;
  if (typeof json !== "object" || json === null || Array.isArray(json) || !Object.hasOwn(json, key)) return undefined;
  const result = v.safeParse(schema, (json as Record<string, unknown>)[key]);
  return result.success ? result.output : undefined;
}

/** Validates before writing, so we never store what we would refuse to read back. */
export function encodeZnode<const S extends v.GenericSchema>(schema: S, value: v.InferInput<S>): Buffer {
  const result = v.safeParse(schema, value);
  if (!result.success) throw new InvalidDataError("(outgoing payload)", firstIssue(result.issues));
  return Buffer.from(JSON.stringify(result.output));
}
