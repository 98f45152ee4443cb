import * as v from "valibot";
import { Actor, RolloutId, Timestamp } from "./app-spec.ts";
import { AppName, GroupName, HostId, Version } from "./names.ts";
import { ExitCode, flag, jsonObject, list, oneOf, text, wholeNumber } from "./rules.ts";

/** What a host reports it runs: output of get-version-cmd, kept short and printable. */
export const ObservedVersion = text(256);

export const HOST_STATES = ["current", "queued", "deploying", "verifying", "failed"] as const;
export type StoredHostState = (typeof HOST_STATES)[number];

/**
 * Where an admitted host is, finer than its state: `draining` and `deploying` (state
 * deploying), `verifying`, `health` (the health gate) and `undraining` (state verifying).
 */
export const DEPLOY_PHASES = ["draining", "deploying", "verifying", "health", "undraining"] as const;
export type DeployPhase = (typeof DEPLOY_PHASES)[number];

/** /apps/<app>/hosts/<host>, written only by that host's agent. */
export const HostStatus = jsonObject({
  state: oneOf(HOST_STATES),
  version: ObservedVersion,
  target: Version,
  rolloutId: RolloutId,
  since: Timestamp,
  updatedAt: Timestamp,
  queuePosition: v.optional(wholeNumber(1)),
  /** While queued: the sequence number of the host's queue node; `status` orders the queue by it. */
  ticket: v.optional(wholeNumber(0)),
  exitCode: v.optional(ExitCode),
  error: v.optional(text(4_096)),
  outputTail: v.optional(text(8_192)),
  durationMs: v.optional(v.pipe(v.number("must be a number ≥ 0"), v.minValue(0, "must be a number ≥ 0"))),
  phase: v.optional(oneOf(DEPLOY_PHASES)),
  /** In the health gate: when the current run of passing checks began. */
  healthySince: v.optional(Timestamp),
  /** drain-cmd ran and undrain-cmd did not: the host is out of rotation (a failed deploy or
   *  health gate leaves it so, on purpose). */
  drained: v.optional(flag),
});
export type HostStatus = v.InferOutput<typeof HostStatus>;

/** /apps/<app>/leases/<host>-<sid>-N: a held slot. */
export const Lease = jsonObject({ host: HostId, version: Version, since: Timestamp });
export type Lease = v.InferOutput<typeof Lease>;

/** /apps/<app>/failures/<rolloutId>-<host>. */
export const Failure = jsonObject({
  exitCode: ExitCode,
  at: Timestamp,
  error: text(4_096),
});
export type Failure = v.InferOutput<typeof Failure>;

export const HISTORY_ACTIONS = [
  "create",
  "publish",
  "set-slots",
  "pause",
  "resume",
  "retry",
  "rollback",
  "promote",
  "delete",
  /** `app create` replaced a spec that failed validation (detail: why it was invalid). */
  "repaired",
  /** `host forget` removed a decommissioned host's status and markers (to: the host). */
  "forget-host",
] as const;

/** /apps/<app>/history/h-N. */
export const HistoryEntry = jsonObject({
  at: Timestamp,
  by: Actor,
  action: oneOf(HISTORY_ACTIONS),
  from: v.optional(text(256)),
  to: v.optional(text(256)),
  detail: v.optional(text(1_024)),
});
export type HistoryEntry = v.InferOutput<typeof HistoryEntry>;

/** /agents/<host>: presence of a live agent (ephemeral). */
export const AgentInfo = jsonObject({
  groups: list(GroupName, 256),
  /** The agent's local allowlist of apps, if it has one (it serves no other app). */
  apps: v.optional(list(AppName, 10_000)),
  agentVersion: text(128),
  pid: wholeNumber(1),
  startedAt: Timestamp,
});
export type AgentInfo = v.InferOutput<typeof AgentInfo>;
