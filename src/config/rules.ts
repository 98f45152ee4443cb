import * as v from "valibot";

// Schema pieces whose every failure names the rule in words. valibot's defaults show its
// internals to operators ("Invalid format: Expected /^(?:[1-9]\d?|100)%$/", "Invalid key:
// Expected \"version\" but received undefined"); every message here reads as the rule instead.
// test/unit/schema-messages.test.ts holds every schema to that.

/** A JSON object of `entries`: not an object, or a required key missing, said as such. */
export function jsonObject<const E extends v.ObjectEntries>(entries: E) {
  return v.object(entries, (issue) => (issue.expected === "Object" ? "must be a JSON object" : "is missing"));
}

/**
 * As jsonObject, but keys it does not know are kept, not stripped: for a node that is read,
 * changed and written back (an app spec), where a field a newer Conveyor wrote must survive a
 * change made by an older one.
 */
export function openJsonObject<const E extends v.ObjectEntries>(entries: E) {
  return v.looseObject(entries, (issue) => (issue.expected === "Object" ? "must be a JSON object" : "is missing"));
}

/** A whole number from `min` (to `max`); any way of failing gives the same message. */
export function wholeNumber(min: number, max?: number) {
  const rule = max === undefined ? `must be a whole number ≥ ${min}` : `must be a whole number from ${min} to ${max}`;
  return v.pipe(v.number(rule), v.integer(rule), v.minValue(min, rule), v.maxValue(max ?? Number.MAX_SAFE_INTEGER, rule));
}

/** One of `options`, listed in the message. */
export function oneOf<const T extends readonly string[]>(options: T) {
  return v.picklist(options, `must be one of ${options.join(", ")}`);
}
