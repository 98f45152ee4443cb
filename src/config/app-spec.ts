import * as v from "valibot";
import { GroupName, Version } from "./names.ts";
import { jsonObject, wholeNumber } from "./rules.ts";
import { Slots } from "./slots.ts";

export const MAX_COMMAND_LENGTH = 8_192;
export const MAX_DEPLOY_TIMEOUT_SEC = 7 * 24 * 3_600;

/** A shell command template: non-empty, bounded, no NUL byte (it could not be exec'd). */
export const CommandTemplate = v.pipe(
  v.string(),
  v.minLength(1, "command must not be empty"),
  v.maxLength(MAX_COMMAND_LENGTH, `command must be at most ${MAX_COMMAND_LENGTH} characters`),
  v.check((s) => !s.includes("\0"), "command must not contain a NUL byte"),
);

export const Timestamp = v.pipe(v.string(), v.isoTimestamp("timestamp must be ISO 8601"));
/** Who made a change: free text (user@host, a CI URL) but bounded and single-line. */
export const Actor = v.pipe(
  v.string(),
  v.maxLength(512, "actor must be at most 512 characters"),
  v.regex(/^[^\n\r\0]*$/, "actor must be one line"),
);
export const RolloutId = v.pipe(v.string(), v.regex(/^r[0-9a-z]{6,40}$/, "invalid rollout id"));

const Count = wholeNumber(0, 1_000_000);

/** /apps/<app>: what every agent serving the app should run, and how widely at once. */
export const AppSpec = jsonObject({
  version: Version,
  rolloutId: RolloutId,
  previousVersion: v.optional(Version),
  slots: Slots,
  getVersionCmd: CommandTemplate,
  deployCmd: CommandTemplate,
  verifyCmd: v.optional(CommandTemplate),
  groups: v.pipe(v.array(GroupName), v.maxLength(256)),
  maxFailures: Count,
  deployTimeoutSec: wholeNumber(1, MAX_DEPLOY_TIMEOUT_SEC),
  paused: v.boolean(),
  /** Failures of this rollout that `app resume` forgave: they no longer count toward the budget. */
  ignoredFailures: v.optional(Count),
  /** Canary: admit only this many hosts in this rollout until promoted. */
  canary: v.optional(wholeNumber(1, 100_000)),
  /** Promote by itself once every canary host is current and verified. */
  canaryAuto: v.optional(v.boolean()),
  promoted: v.optional(v.boolean()),
  updatedAt: Timestamp,
  updatedBy: Actor,
});
export type AppSpec = v.InferOutput<typeof AppSpec>;

export const DEFAULT_DEPLOY_TIMEOUT_SEC = 600;
export const DEFAULT_MAX_FAILURES = 0;
export const DEFAULT_SLOTS = 1;
