import * as v from "valibot";

export const MAX_SLOTS = 100_000;

/** A slot count as stored: a whole number ≥ 1, or "N%" of the app's hosts (1–100). */
export const Slots = v.union(
  [
    v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_SLOTS)),
    v.pipe(v.string(), v.regex(/^(?:[1-9]\d?|100)%$/)),
  ],
  "slots must be a whole number ≥ 1 or a percentage like 25%",
);
export type Slots = v.InferOutput<typeof Slots>;

/** Parses the command-line form ("3", "25%"); undefined when invalid. */
export function parseSlots(input: string): Slots | undefined {
  const text = input.trim();
  if (/^(?:[1-9]\d?|100)%$/.test(text)) return text;
  if (!/^[1-9]\d{0,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX_SLOTS ? n : undefined;
}

/** "N%" = floor(N% × hosts), at least 1; a number is itself. */
export function resolveSlots(slots: Slots, hostCount: number): number {
  if (typeof slots === "number") return slots;
  const percent = Number(slots.slice(0, -1));
  return Math.max(1, Math.floor((percent * hostCount) / 100));
}
