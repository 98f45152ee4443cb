import * as v from "valibot";
import { GroupName, Version } from "./names.ts";
import { flag, list, openJsonObject, wholeNumber } from "./rules.ts";
import { FailureBudget } from "./budget.ts";
import { Slots } from "./slots.ts";

export const MAX_COMMAND_LENGTH = 8_192;
export const MAX_DEPLOY_TIMEOUT_SEC = 7 * 24 * 3_600;
/** Bounds of the health gate's durations (interval, timeout, min-healthy time). */
export const MIN_HEALTH_INTERVAL_MS = 100;
export const MAX_GATE_MS = 24 * 3_600_000;

/** A shell command template: non-empty, bounded, no NUL byte (it could not be exec'd). */
export const CommandTemplate = v.pipe(
  v.string("command must be a string"),
  v.minLength(1, "command must not be empty"),
  v.maxLength(MAX_COMMAND_LENGTH, `command must be at most ${MAX_COMMAND_LENGTH} characters`),
  v.check((s) => !s.includes("\0"), "command must not contain a NUL byte"),
);

// Date.parse is the check too: isoTimestamp lets "…T00:00:00+05" through, which it cannot read.
export const Timestamp = v.pipe(
  v.string("timestamp must be an ISO 8601 string"),
  v.isoTimestamp("timestamp must be ISO 8601"),
  v.check((s) => !Number.isNaN(Date.parse(s)), "timestamp must be ISO 8601 (with a zone like Z or +05:00)"),
);
/** Who made a change: free text (user@host, a CI URL) but bounded and single-line. */
export const Actor = v.pipe(
  v.string("actor must be a string"),
  v.maxLength(512, "actor must be at most 512 characters"),
  v.regex(/^[^\n\r\0]*$/, "actor must be one line"),
);
export const RolloutId = v.pipe(v.string("invalid rollout id"), v.regex(/^r[0-9a-z]{6,40}$/, "invalid rollout id"));

const Count = wholeNumber(0, 1_000_000);

/**
 * An Ed25519 signature over the release (src/apps/release-signature.ts): the signer's raw public
 * key, the release sequence it signed, and the signature, all base64.
 */
export const ReleaseSignature = openJsonObject({
  key: v.pipe(
    v.string("must be a base64 Ed25519 public key (32 bytes)"),
    v.regex(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/, "must be a base64 Ed25519 public key (32 bytes)"),
  ),
  sequence: wholeNumber(1),
  value: v.pipe(
    v.string("must be a base64 Ed25519 signature (64 bytes)"),
    v.regex(/^[A-Za-z0-9+/]{85}[AQgw]==$/, "must be a base64 Ed25519 signature (64 bytes)"),
  ),
});
export type ReleaseSignature = v.InferOutput<typeof ReleaseSignature>;

/**
 * /apps/<app>: what every agent serving the app should run, and how widely at once. Fields of
 * a newer version are kept through every change (openJsonObject).
 */
const APP_SPEC_FIELDS = {
  version: Version,
  rolloutId: RolloutId,
  previousVersion: v.optional(Version),
  slots: Slots,
  getVersionCmd: CommandTemplate,
  deployCmd: CommandTemplate,
  verifyCmd: v.optional(CommandTemplate),
  /** The health gate: run after the deploy is verified, every healthIntervalMs until it passes
   *  (within healthTimeoutMs), then it must keep passing for minHealthyMs. */
  healthCmd: v.optional(CommandTemplate),
  healthIntervalMs: v.optional(wholeNumber(MIN_HEALTH_INTERVAL_MS, MAX_GATE_MS)),
  healthTimeoutMs: v.optional(wholeNumber(1_000, MAX_GATE_MS)),
  minHealthyMs: v.optional(wholeNumber(0, MAX_GATE_MS)),
  /** Run after admission, before deploy-cmd (take the host out of rotation), and after the
   *  health gate, before the slot is released (put it back). */
  drainCmd: v.optional(CommandTemplate),
  undrainCmd: v.optional(CommandTemplate),
  /** The ramp: each host that completes the rollout adds slotIncrement − 1 slots (0: only
   *  `slots` hosts, then wait for promote), capped by maxSlots. */
  slotIncrement: v.optional(wholeNumber(0, 10_000)),
  maxSlots: v.optional(Slots),
  groups: list(GroupName, 256),
  maxFailures: FailureBudget,
  deployTimeoutSec: wholeNumber(1, MAX_DEPLOY_TIMEOUT_SEC),
  paused: flag,
  /** Failures of this rollout that `app resume` forgave: they no longer count toward the budget. */
  ignoredFailures: v.optional(Count),
  /** Canary: admit only this many hosts in this rollout until promoted. */
  canary: v.optional(wholeNumber(1, 100_000)),
  /** Promote by itself once every canary host is current and verified. */
  canaryAuto: v.optional(flag),
  promoted: v.optional(flag),
  /** Set by `--sign-key`; agents with trustedKeys run nothing without a valid one. */
  signature: v.optional(ReleaseSignature),
  updatedAt: Timestamp,
  updatedBy: Actor,
};
export const AppSpec = openJsonObject(APP_SPEC_FIELDS);
/** A field this version knows (a spec may hold others: see AppSpec). */
export type AppSpecField = keyof typeof APP_SPEC_FIELDS;

/**
 * Every command a spec may hold, in the order an admission runs them, with its flag's name:
 * what local policy checks and what a release signature covers.
 */
export const COMMAND_FIELDS = [
  ["getVersionCmd", "get-version-cmd"],
  ["drainCmd", "drain-cmd"],
  ["deployCmd", "deploy-cmd"],
  ["verifyCmd", "verify-cmd"],
  ["healthCmd", "health-cmd"],
  ["undrainCmd", "undrain-cmd"],
] as const satisfies readonly (readonly [AppSpecField, string])[];
export type AppSpec = v.InferOutput<typeof AppSpec>;

export const DEFAULT_DEPLOY_TIMEOUT_SEC = 600;
export const DEFAULT_MAX_FAILURES = 0;
export const DEFAULT_SLOTS = 1;
export const DEFAULT_HEALTH_INTERVAL_MS = 1_000;
export const DEFAULT_HEALTH_TIMEOUT_MS = 300_000;
export const DEFAULT_MIN_HEALTHY_MS = 0;
/** A single health check is killed after this (or the health timeout, if shorter) and counts
 *  as failed: a check that hangs must not hold the gate open. */
export const HEALTH_CHECK_TIMEOUT_MS = 10_000;

/** The health gate of a spec with its defaults filled in; undefined without a health-cmd. */
export function healthGate(spec: AppSpec): { cmd: string; intervalMs: number; timeoutMs: number; minHealthyMs: number } | undefined {
  if (spec.healthCmd === undefined) return undefined;
  return {
    cmd: spec.healthCmd,
    intervalMs: spec.healthIntervalMs ?? DEFAULT_HEALTH_INTERVAL_MS,
    timeoutMs: spec.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS,
    minHealthyMs: spec.minHealthyMs ?? DEFAULT_MIN_HEALTHY_MS,
  };
}
