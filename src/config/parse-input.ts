import * as v from "valibot";
import { UsageError } from "./errors.ts";
import { AppName, GroupName, HostId, NAME_PATTERN, Version } from "./names.ts";
import { isZnodeName } from "../zk/paths.ts";
import { type Slots, parseSlots } from "./slots.ts";
import { parseDurationMs } from "./durations.ts";
import { CommandTemplate } from "./app-spec.ts";
import { firstIssue } from "./decode.ts";
import { quote } from "../text/printable.ts";

/** Validates one value typed by a person; the UsageError names the value and the rule. */
export function parseWith<const S extends v.GenericSchema>(schema: S, value: unknown, label: string): v.InferOutput<S> {
  const result = v.safeParse(schema, value);
  if (!result.success) throw new UsageError(`invalid ${label} ${quote(value)}: ${firstIssue(result.issues)}`);
  return result.output;
}

export const parseAppName = (value: string): string => parseWith(AppName, value, "app name");

/**
 * `app delete` also takes a name that `status` and `app list` show as invalid (a node made by
 * hand, e.g. with zkCli), so it can be removed without zkCli: any name a node under /apps can
 * have. `valid` false: the caller must find the node, else it is a UsageError after all (a
 * typo). A name no node can have is the usual UsageError here, before connecting.
 */
export function parseDeletableAppName(value: string): { name: string; valid: boolean } {
  if (!isZnodeName(value) || NAME_PATTERN.test(value)) return { name: parseAppName(value), valid: true };
  return { name: value, valid: false };
}
export const parseHostId = (value: string, label = "host id"): string => parseWith(HostId, value, label);
export const parseVersion = (value: string): string => parseWith(Version, value, "version");
export const parseCommand = (value: string, label: string): string => parseWith(CommandTemplate, value, label);

/** "a,b" → ["a","b"]; an empty string means no groups (every agent). */
export function parseGroups(value: string, label = "--groups"): string[] {
  if (value.trim() === "") return [];
  const groups = value.split(",").map((g) => g.trim());
  for (const g of groups) parseWith(GroupName, g, `${label} entry`);
  return [...new Set(groups)];
}

export function parseSlotsInput(value: string, label = "slots"): Slots {
  const slots = parseSlots(value);
  if (slots === undefined) {
    throw new UsageError(`invalid ${label} ${quote(value)}: must be a whole number ≥ 1 or a percentage like 25%`);
  }
  return slots;
}

export function parseCount(value: string, label: string, max = 1_000_000): number {
  if (!/^\d{1,7}$/.test(value.trim()) || Number(value) > max) {
    throw new UsageError(`invalid ${label} ${quote(value)}: must be a whole number from 0 to ${max}`);
  }
  return Number(value);
}

/** A duration flag ("10m", "30s", "1h") within [minMs, maxMs]. */
export function parseDurationInput(value: string, label: string, minMs: number, maxMs: number): number {
  const ms = parseDurationMs(value);
  if (ms === undefined || ms < minMs || ms > maxMs) {
    throw new UsageError(
      `invalid ${label} ${quote(value)}: use a duration like 30s, 10m or 1h (between ${minMs / 1000}s and ${maxMs / 1000}s)`,
    );
  }
  return ms;
}
