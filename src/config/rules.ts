import * as v from "valibot";

// Schema pieces whose every failure names the rule in words. valibot's defaults show its
// internals to operators ("Invalid format: Expected /^(?:[1-9]\d?|100)%$/", "Invalid key:
// Expected \"version\" but received undefined"); every message here reads as the rule instead.
// test/unit/schema-messages.test.ts holds every schema to that.

/** A JSON object of `entries`: not an object, or a required key missing, said as such. */
export function jsonObject<const E extends v.ObjectEntries>(entries: E) {
  return v.pipe(NOT_AN_ARRAY, v.object(entries, objectIssue));
}

/** valibot takes an array for an object (then every key is missing): said as what it is. */
const NOT_AN_ARRAY = v.custom<unknown>((input) => !Array.isArray(input), "must be a JSON object");

/** Not an object, or a required key missing, said as such. */
const objectIssue = (issue: v.BaseIssue<unknown>): string => (issue.expected === "Object" ? "must be a JSON object" : "is missing");

/**
 * As jsonObject, but keys it does not know are kept, not stripped: for a node that is read,
 * changed and written back (an app spec), where a field a newer Conveyor wrote must survive a
 * change made by an older one.
 */
export function openJsonObject<const E extends v.ObjectEntries>(entries: E) {
  return v.pipe(NOT_AN_ARRAY, v.looseObject(entries, objectIssue));
}

/** A string of at most `max` characters. */
export function text(max: number) {
  return v.pipe(v.string("must be a string"), v.maxLength(max, `must be at most ${max} characters`));
}

/** A list of `item`s, at most `max` of them. */
export function list<const T extends v.GenericSchema>(item: T, max: number) {
  return v.pipe(v.array(item, "must be a list"), v.maxLength(max, `must hold at most ${max} entries`));
}

/** true or false. */
export const flag = v.boolean("must be true or false");

/** A process exit code, or null (killed by a signal). */
export const ExitCode = v.nullable(v.pipe(v.number("must be a whole number (or null)"), v.integer("must be a whole number (or null)")));

/** A whole number from `min` (to `max`); any way of failing gives the same message. */
export function wholeNumber(min: number, max?: number) {
  const rule = max === undefined ? `must be a whole number ≥ ${min}` : `must be a whole number from ${min} to ${max}`;
  return v.pipe(v.number(rule), v.integer(rule), v.minValue(min, rule), v.maxValue(max ?? Number.MAX_SAFE_INTEGER, rule));
}

/** One of `options`, listed in the message. */
export function oneOf<const T extends readonly string[]>(options: T) {
  return v.picklist(options, `must be one of ${options.join(", ")}`);
}
