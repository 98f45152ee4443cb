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
export function decodeZnode<const S extends v.GenericSchema>(
  schema: S,
  data: Buffer,
  path: string,
): v.InferOutput<S> {
  if (data.length === 0) throw new InvalidDataError(path, "empty payload");
  if (data.length > MAX_PAYLOAD_BYTES) throw new InvalidDataError(path, `payload of ${data.length} bytes is too large`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch (error) {
    const reason = error instanceof RangeError ? "nested too deeply" : "not valid JSON";
    throw new InvalidDataError(path, reason);
  }
  const result = v.safeParse(schema, json);
  if (!result.success) throw new InvalidDataError(path, firstIssue(result.issues));
  return result.output;
}

/** Validates before writing, so we never store what we would refuse to read back. */
export function encodeZnode<const S extends v.GenericSchema>(schema: S, value: v.InferInput<S>): Buffer {
  const result = v.safeParse(schema, value);
  if (!result.success) throw new InvalidDataError("(outgoing payload)", firstIssue(result.issues));
  return Buffer.from(JSON.stringify(result.output));
}
