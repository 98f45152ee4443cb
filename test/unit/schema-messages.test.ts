// Every validation message a person reads (invalid znode data in `status`, a bad config file)
// names the rule in words. Regression (issue 10): a spec corrupted to `"slots": "many"` was
// reported as `slots: Invalid format: Expected /^(?:[1-9]\d?|100)%$/ but received "many"` —
// valibot's default message for a v.regex without one, reached through a v.union whose string
// branch accepted the type. The guard: a table of bad inputs over every schema in src/config, and
// no message (nested union issues included) may show a regex literal or valibot's default
// wording for a regex, a check, a picklist or a union.

import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { AppSpec } from "../../src/config/app-spec.ts";
import { ConfigFile } from "../../src/config/config-file.ts";
import { firstIssue } from "../../src/config/decode.ts";
import { AgentInfo, Failure, HistoryEntry, HostStatus, Lease } from "../../src/config/payloads.ts";
import { SAMPLE_SPEC } from "../helpers/sample-spec.ts";

const AT = "2026-01-01T00:00:00.000Z";
const SPEC = { ...SAMPLE_SPEC, updatedAt: AT };
const STATUS = { state: "current", version: "1.0", target: "1.0", rolloutId: "rabcdefg", since: AT, updatedAt: AT };
const AGENT = { groups: [], agentVersion: "0.1.0", pid: 1, startedAt: AT };

/** A copy of `value` without `key` (as JSON read back from a znode lacks it). */
function without(value: Record<string, unknown>, key: string): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([k]) => k !== key));
}

/** [what, schema, bad input, words the first message must contain]. */
const CASES: [string, v.GenericSchema, unknown, string][] = [
  ['slots "many"', AppSpec, { ...SPEC, slots: "many" }, "slots: slots must be a whole number ≥ 1 or a percentage like 25%"],
  ['slots "101%"', AppSpec, { ...SPEC, slots: "101%" }, "slots: slots must be a whole number ≥ 1 or a percentage like 25%"],
  ['slots "0%"', AppSpec, { ...SPEC, slots: "0%" }, "slots: slots must be a whole number ≥ 1 or a percentage like 25%"],
  ["slots 0", AppSpec, { ...SPEC, slots: 0 }, "slots: slots must be a whole number ≥ 1 or a percentage like 25%"],
  ["slots 1.5", AppSpec, { ...SPEC, slots: 1.5 }, "slots: slots must be a whole number ≥ 1 or a percentage like 25%"],
  ["slots true", AppSpec, { ...SPEC, slots: true }, "slots: slots must be a whole number ≥ 1 or a percentage like 25%"],
  ["slots 10^6", AppSpec, { ...SPEC, slots: 1_000_000 }, "slots: slots must be a whole number from 1 to 100000 or a percentage like 25%"],
  ["the example of issue 10", AppSpec, { version: "2.0", slots: "many" }, "rolloutId: is missing"],
  ["version", AppSpec, { ...SPEC, version: "1.0;rm" }, "version: version must be letters"],
  ["missing version", AppSpec, without(SPEC, "version"), "version: is missing"],
  ["rolloutId", AppSpec, { ...SPEC, rolloutId: "x" }, "rolloutId: "],
  ["group", AppSpec, { ...SPEC, groups: ["a b"] }, "groups.0: group name must be"],
  ["maxFailures -1", AppSpec, { ...SPEC, maxFailures: -1 }, "maxFailures: must be a whole number from 0 to 1000000"],
  ["maxFailures 1.5", AppSpec, { ...SPEC, maxFailures: 1.5 }, "maxFailures: must be a whole number from 0 to 1000000"],
  ['maxFailures "2"', AppSpec, { ...SPEC, maxFailures: "2" }, "maxFailures: must be a whole number from 0 to 1000000"],
  ["deployTimeoutSec 0", AppSpec, { ...SPEC, deployTimeoutSec: 0 }, "deployTimeoutSec: must be a whole number from 1 to 604800"],
  ["canary 0", AppSpec, { ...SPEC, canary: 0 }, "canary: must be a whole number from 1 to 100000"],
  ["ignoredFailures -1", AppSpec, { ...SPEC, ignoredFailures: -1 }, "ignoredFailures: must be a whole number from 0 to 1000000"],
  ["updatedAt", AppSpec, { ...SPEC, updatedAt: "yesterday" }, "updatedAt: "],
  ["updatedBy", AppSpec, { ...SPEC, updatedBy: "a\nb" }, "updatedBy: actor must be one line"],
  ["deployCmd", AppSpec, { ...SPEC, deployCmd: "a\0b" }, "deployCmd: command must not contain a NUL byte"],
  ["not an object", AppSpec, "1.0", "must be a JSON object"],
  ["an array", AppSpec, [SPEC], "must be a JSON object"],
  [
    "a timestamp Date cannot read",
    AppSpec,
    { ...SPEC, updatedAt: "2026-01-01T00:00:00+05" },
    "updatedAt: timestamp must be ISO 8601 (with a zone",
  ],
  ["paused 1", AppSpec, { ...SPEC, paused: 1 }, "paused: must be true or false"],
  ["groups not a list", AppSpec, { ...SPEC, groups: "web" }, "groups: must be a list"],
  ["host error 5", HostStatus, { ...STATUS, error: 5 }, "error: must be a string"],
  ["host state", HostStatus, { ...STATUS, state: "exploded" }, "state: must be one of current, queued, deploying, verifying, failed"],
  ["host target", HostStatus, { ...STATUS, target: "$(id)" }, "target: version must be letters"],
  ["host exitCode", HostStatus, { ...STATUS, exitCode: 1.5 }, "exitCode: "],
  ["host queuePosition", HostStatus, { ...STATUS, queuePosition: 0 }, "queuePosition: must be a whole number ≥ 1"],
  ["host missing target", HostStatus, without(STATUS, "target"), "target: is missing"],
  ["host phase", HostStatus, { ...STATUS, phase: "resting" }, "phase: must be one of draining, deploying, verifying, health, undraining"],
  ["healthIntervalMs 50", AppSpec, { ...SPEC, healthIntervalMs: 50 }, "healthIntervalMs: must be a whole number from 100"],
  ["slotIncrement -1", AppSpec, { ...SPEC, slotIncrement: -1 }, "slotIncrement: must be a whole number from 0"],
  [
    'maxFailures "101%"',
    AppSpec,
    { ...SPEC, maxFailures: "101%" },
    "maxFailures: must be a whole number from 0 to 1000000 or a percentage like 10%",
  ],
  ['maxSlots "0%"', AppSpec, { ...SPEC, maxSlots: "0%" }, "maxSlots: slots must be a whole number ≥ 1 or a percentage like 25%"],
  ["lease host", Lease, { host: "a;b", version: "1.0", since: AT }, "host: host id must be"],
  ["failure exitCode", Failure, { exitCode: "3", at: AT, error: "x" }, "exitCode: "],
  ["history action", HistoryEntry, { at: AT, by: "ci", action: "explode" }, "action: must be one of create, publish, set-slots"],
  ["agent apps", AgentInfo, { ...AGENT, apps: ["a;b"] }, "apps.0: app name must be"],
  ["agent pid", AgentInfo, { ...AGENT, pid: 0 }, "pid: must be a whole number ≥ 1"],
  ["config logLevel", ConfigFile, { logLevel: "loud" }, "logLevel: must be one of error, warn, info, debug"],
  ["config logFormat", ConfigFile, { agent: { logFormat: "xml" } }, "agent.logFormat: must be one of text, json"],
  ["config hostId", ConfigFile, { agent: { hostId: "a b" } }, "agent.hostId: host id must be"],
  ["config allowCommands", ConfigFile, { agent: { allowCommands: ["("] } }, "agent.allowCommands.0: not a valid regular expression"],
  ["config unknown key", ConfigFile, { zookeeper: "x" }, "zookeeper: unknown key"],
  ["config agent", ConfigFile, { agent: 1 }, "agent: must be a table"],
  ["config zk 5", ConfigFile, { zk: 5 }, "zk: must be a string (in quotes)"],
  ["config groups not a list", ConfigFile, { agent: { groups: "web" } }, 'agent.groups: must be a list, like ["a", "b"]'],
  ["config stateDir empty", ConfigFile, { agent: { stateDir: "" } }, "agent.stateDir: must be a path"],
  [
    "config trustedKeys 65",
    ConfigFile,
    { agent: { trustedKeys: Array.from({ length: 65 }, () => "k.pub") } },
    "agent.trustedKeys: at most 64 keys",
  ],
];

/** valibot's own wording for a rule it was given no message for, or a regex shown as such. */
const INTERNAL = [/\/\^/, /\$\//, /Expected \//, /Invalid format/, /Invalid type: Expected/, /Invalid length/, /Expected ".*" \| "/];

function allMessages(issues: readonly v.BaseIssue<unknown>[]): string[] {
  return issues.flatMap((i) => [i.message, ...allMessages(i.issues ?? [])]);
}

describe("validation messages name the rule in words", () => {
  test.each(CASES)("%s", (_what, schema, input, words) => {
    const result = v.safeParse(schema, input);
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(firstIssue(result.issues)).toContain(words);
    for (const message of allMessages(result.issues)) {
      for (const pattern of INTERNAL) expect(message).not.toMatch(pattern);
    }
  });
});
