import {
  type AppSpec,
  type AppSpecField,
  COMMAND_FIELDS,
  DEFAULT_DEPLOY_TIMEOUT_SEC,
  DEFAULT_MAX_FAILURES,
  DEFAULT_SLOTS,
} from "../config/app-spec.ts";
import { AppSpec as AppSpecSchema } from "../config/app-spec.ts";
import { encodeZnode, salvageField } from "../config/decode.ts";
import { InvalidDataError, UsageError } from "../config/errors.ts";
import { Version } from "../config/names.ts";
import type { AppAttributes } from "../config/app-attributes.ts";
import { firstLine } from "../text/printable.ts";
import { repairTreeLayout } from "../zk/app-layout.ts";
import type { ZkClient } from "../zk/client.ts";
import { isBadVersion, isNoNode, isNodeExists } from "../zk/errors.ts";
import { appPath, appSubdirs, historyPrefix } from "../zk/paths.ts";
import { AppNotFoundError, OperationError } from "./errors.ts";
import { pruneHistory, pruneRolloutMarkers } from "./history.ts";
import { type MutationContext, historyEntry, newRolloutId, updateApp } from "./mutate-app.ts";
import { type AppNode, readAppNode } from "./read-app.ts";
import { assertSignableBasis, sealRelease, vouchedBy } from "./release-signature.ts";

export type { AppAttributes };

/** `spec` with `attributes` applied: given ones set, null ones removed, the rest kept. */
function applyAttributes(spec: AppSpec, attributes: AppAttributes): AppSpec {
  const next: Record<string, unknown> = { ...spec };
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null) delete next[key];
    else if (value !== undefined) next[key] = value;
  }
  return next as AppSpec;
}

/** Per-rollout options: they apply to this publish only and are not inherited by the next. */
export interface RolloutOptions {
  canary?: number;
  canaryAuto?: boolean;
}

/**
 * The spec of a new rollout on top of `current`: new rolloutId, and the per-rollout state
 * (forgiven failures, canary, promotion) starts afresh.
 */
export function startRollout(
  current: AppSpec,
  changes: Partial<AppSpec> & { version: string; previousVersion?: string },
  rollout: RolloutOptions,
  now: Date,
): AppSpec {
  const { ignoredFailures: _f, canary: _c, canaryAuto: _a, promoted: _p, previousVersion: _v, ...kept } = current;
  const previousVersion = changes.previousVersion ?? current.previousVersion;
  return {
    ...kept,
    ...changes,
    ...(previousVersion === undefined ? {} : { previousVersion }),
    ...(rollout.canary === undefined ? {} : { canary: rollout.canary, canaryAuto: rollout.canaryAuto === true }),
    rolloutId: newRolloutId(now),
  };
}

export interface PublishResult {
  spec: AppSpec;
  created: boolean;
  /** Set when the app's spec failed validation and was replaced: where, and why it was invalid. */
  repaired?: { path: string; reason: string };
}

/**
 * Creates the app, or publishes a new version of an existing one: keeps every attribute not
 * given, records previousVersion, writes a new rolloutId. Compare-and-set throughout: if another
 * publisher changes the app between our read and our write, we fail with a clear error rather
 * than overwrite their version (a concurrent non-publish change, e.g. set-slots, is merged).
 *
 * A spec that fails validation (written by hand, say) is replaced when the attributes a create
 * needs are given (replaceInvalidSpec); otherwise the error says how to do that.
 */
export async function publishApp(
  zk: ZkClient,
  app: string,
  version: string,
  attributes: AppAttributes,
  ctx: MutationContext,
  rollout: RolloutOptions = {},
): Promise<PublishResult> {
  const request: PublishRequest = { app, version, attributes, rollout };
  for (;;) {
    try {
      return { spec: await publishExisting(zk, request, ctx), created: false };
    } catch (error) {
      if (error instanceof InvalidDataError && error.path === appPath(app)) {
        const repaired = await replaceInvalidSpec(zk, request, ctx);
        if (repaired) return { ...repaired, created: false };
        continue; // valid again, or gone: publish or create after all
      }
      if (!(error instanceof AppNotFoundError)) throw error;
    }
    try {
      return { spec: await createApp(zk, request, ctx), created: true };
    } catch (error) {
      // Someone created it between our read and our create: publish on top of theirs.
      if (!isNodeExists(error)) throw error;
    }
  }
}

interface PublishRequest {
  app: string;
  version: string;
  attributes: AppAttributes;
  rollout: RolloutOptions;
}

async function publishExisting(
  zk: ZkClient,
  { app, version, attributes, rollout }: PublishRequest,
  ctx: MutationContext,
): Promise<AppSpec> {
  let seenRollout: string | undefined;
  return updateApp(zk, app, ctx, (current) => {
    seenRollout ??= current.rolloutId;
    if (current.rolloutId !== seenRollout) {
      throw new OperationError(
        `app "${app}" was published concurrently by ${current.updatedBy} (now ${current.version}); not overwriting — re-run to publish ${version} on top`,
      );
    }
    const spec = publishedSpec(current, { app, version, attributes, rollout }, ctx);
    const detail = [canaryDetail(rollout).detail, describeChanges(current, spec)].filter(Boolean).join("; ");
    return { spec, history: { action: "publish", from: current.version, to: version, ...(detail ? { detail } : {}) } };
  });
}

/** The spec a publish writes on top of `current` (before updateApp stamps and seals it). */
function publishedSpec(current: AppSpec, { app, version, attributes, rollout }: PublishRequest, ctx: MutationContext): AppSpec {
  // Signing on top of a spec this key did not sign: only with every command and the groups
  // given (nothing inherited), and without its version as the one to roll back to.
  const fresh = ctx.signer !== undefined && !vouchedBy(app, current, ctx.signer);
  if (fresh && !givesEverySignedField(attributes)) assertSignableBasis(app, current, ctx.signer, "publishing on top of it");
  // Publishing the version already live (a re-run CI job) must not make it its own previous
  // version: rollback would have nowhere to go.
  const previous = version === current.version ? {} : { previousVersion: current.version };
  const base = fresh ? withoutPreviousVersion(current) : current;
  return applyAttributes(startRollout(base, { version, ...(fresh ? {} : previous) }, rollout, ctx.now()), attributes);
}

/** What `app create --dry-run` shows: the spec publishApp would write now, and on top of what. */
export interface PublishPlan {
  spec: AppSpec;
  /** "create": no app yet; "replace": its stored spec is invalid; "publish": on top of `current`. */
  kind: "create" | "replace" | "publish";
  current?: AppSpec;
}

/**
 * The spec publishApp would write, computed from one read and written nowhere. The same rules
 * (and the same refusals: a create without its commands, a signed publish on an unsigned basis)
 * as the real publish; a concurrent change after the read can make the real one differ.
 */
export async function planPublish(
  zk: ZkClient,
  app: string,
  version: string,
  attributes: AppAttributes,
  ctx: MutationContext,
  rollout: RolloutOptions = {},
): Promise<PublishPlan> {
  const request: PublishRequest = { app, version, attributes, rollout };
  let node: AppNode;
  try {
    node = await readAppNode(zk, app);
  } catch (error) {
    if (!(error instanceof AppNotFoundError)) throw error;
    return { spec: freshSpec(request, requireCommands(request), ctx), kind: "create" };
  }
  if (node.invalid) return { spec: replacementSpec(request, node.data, node.invalid, ctx).spec, kind: "replace" };
  const now = ctx.now();
  const stamped = { ...publishedSpec(node.spec, request, ctx), updatedAt: now.toISOString(), updatedBy: ctx.actor };
  return { spec: sealRelease(app, node.spec, stamped, ctx.signer, now), kind: "publish", current: node.spec };
}

/** The two commands a new app needs; a UsageError naming the missing one. */
function requireCommands({ app, attributes }: PublishRequest): { getVersionCmd: string; deployCmd: string } {
  const { getVersionCmd, deployCmd } = attributes;
  if (getVersionCmd === undefined) throw new UsageError(`app "${app}" does not exist yet: --get-version-cmd is required to create it`);
  if (deployCmd === undefined) throw new UsageError(`app "${app}" does not exist yet: --deploy-cmd is required to create it`);
  return { getVersionCmd, deployCmd };
}

/** Every command (a value, or null: none) and the groups given: the release inherits nothing. */
function givesEverySignedField(attributes: AppAttributes): boolean {
  return attributes.groups !== undefined && COMMAND_FIELDS.every(([field]) => attributes[field] !== undefined);
}

function withoutPreviousVersion(spec: AppSpec): AppSpec {
  const { previousVersion: _, ...rest } = spec;
  return rest;
}

async function createApp(zk: ZkClient, request: PublishRequest, ctx: MutationContext): Promise<AppSpec> {
  const { app, version, rollout } = request;
  const spec = freshSpec(request, requireCommands(request), ctx);
  await repairTreeLayout(zk);
  const txn = zk.transaction().create(appPath(app), encodeZnode(AppSpecSchema, spec));
  for (const dir of appSubdirs(app)) txn.create(dir);
  txn.create(historyPrefix(app), historyEntry({ action: "create", to: version, ...canaryDetail(rollout) }, ctx), "persistentSequential");
  await txn.commit();
  return spec;
}

/**
 * Replaces an app spec that fails validation, as `app create` would create it: the attributes
 * given, defaults for the rest, a new rollout — and, as previousVersion, the version the
 * invalid spec still names if that one is valid, so a rollback has somewhere to go. Host status,
 * failures and history stay. Reached only after publishExisting found the spec invalid, and
 * that (updateApp) has re-created the app's missing directories first — agents may not on a
 * locked tree.
 *
 * Compare-and-set on the invalid node's version: if anyone writes it after our read, we fail
 * rather than overwrite them. Undefined when the spec is valid again (someone repaired it: the
 * caller publishes on top) or the app is gone (the caller creates it). Without
 * --get-version-cmd and --deploy-cmd it fails saying how to repair.
 */
async function replaceInvalidSpec(
  zk: ZkClient,
  request: PublishRequest,
  ctx: MutationContext,
): Promise<Omit<PublishResult, "created"> | undefined> {
  const { app, version, rollout } = request;
  // The missing directories were re-created by updateApp (publishExisting) just before it found the spec invalid.
  let node: AppNode;
  try {
    node = await readAppNode(zk, app);
  } catch (error) {
    if (error instanceof AppNotFoundError) return undefined;
    throw error;
  }
  if (!node.invalid) return undefined;
  const { spec, salvaged } = replacementSpec(request, node.data, node.invalid, ctx);
  const { path, reason } = node.invalid;
  const detail = [`replaced an invalid spec (${firstLine(reason, 200)})`, canaryDetail(rollout).detail].filter(Boolean).join("; ");
  try {
    await zk
      .transaction()
      .set(appPath(app), encodeZnode(AppSpecSchema, spec), node.stat.version)
      .create(
        historyPrefix(app),
        historyEntry({ action: "repaired", ...(salvaged === undefined ? {} : { from: salvaged }), to: version, detail }, ctx),
        "persistentSequential",
      )
      .commit();
  } catch (error) {
    if (isBadVersion(error)) {
      throw new OperationError(
        `app "${app}" was changed by someone else while its invalid spec was being replaced; not overwriting — run the command again`,
      );
    }
    if (isNoNode(error)) return undefined; // the app (or its history directory) was deleted meanwhile: start over
    throw error;
  }
  await pruneHistory(zk, app);
  await pruneRolloutMarkers(zk, app);
  return { spec, repaired: { path, reason } };
}

/**
 * The spec that replaces an invalid one, as a create would write it (the attributes given,
 * defaults for the rest), and the version the invalid node still names, if that one is valid.
 * Unsigned, that version becomes previousVersion, so a rollback has somewhere to go. Signed,
 * nothing of the invalid node is taken: whoever wrote it may not hold the key, and the
 * signature would vouch for their choice — the version a signed rollback goes to, and (through
 * the default groups) every host. So a signed replacement needs every command and --groups,
 * as a signed publish on top of any spec the key did not sign does. Throws an OperationError
 * saying what to give.
 */
function replacementSpec(
  request: PublishRequest,
  data: Buffer,
  invalid: InvalidDataError,
  ctx: MutationContext,
): { spec: AppSpec; salvaged: string | undefined } {
  const { app, version, attributes } = request;
  const { getVersionCmd, deployCmd } = attributes;
  const signed = ctx.signer !== undefined;
  if (getVersionCmd === undefined || deployCmd === undefined || (signed && !givesEverySignedField(attributes))) {
    const needed = signed
      ? 'every command and --groups given (a signed replacement takes nothing from the invalid spec): --get-version-cmd … --deploy-cmd … --verify-cmd … --health-cmd … --drain-cmd … --undrain-cmd … --groups … ("" for none)'
      : "--get-version-cmd and --deploy-cmd (every other attribute starts from its default unless given)";
    throw new OperationError(`${invalid.message}; to replace it, run "conveyor app create ${app} ${version}" with ${needed}`);
  }
  const salvaged = salvageField(data, "version", Version);
  const previousVersion = signed || salvaged === version ? undefined : salvaged;
  return { spec: freshSpec(request, { getVersionCmd, deployCmd }, ctx, previousVersion), salvaged };
}

/** The spec of a new app (or of one whose spec is replaced): the attributes given, defaults for the rest. */
function freshSpec(
  { app, version, attributes, rollout }: PublishRequest,
  commands: { getVersionCmd: string; deployCmd: string },
  ctx: MutationContext,
  previousVersion?: string,
): AppSpec {
  const now = ctx.now();
  const defaults: AppSpec = {
    version,
    ...(previousVersion === undefined ? {} : { previousVersion }),
    rolloutId: newRolloutId(now),
    slots: DEFAULT_SLOTS,
    getVersionCmd: commands.getVersionCmd,
    deployCmd: commands.deployCmd,
    groups: [],
    maxFailures: DEFAULT_MAX_FAILURES,
    deployTimeoutSec: DEFAULT_DEPLOY_TIMEOUT_SEC,
    paused: false,
    ...(rollout.canary === undefined ? {} : { canary: rollout.canary, canaryAuto: rollout.canaryAuto === true }),
    updatedAt: now.toISOString(),
    updatedBy: ctx.actor,
  };
  return sealRelease(app, undefined, applyAttributes(defaults, attributes), ctx.signer, now);
}

function canaryDetail(rollout: RolloutOptions): { detail?: string } {
  if (rollout.canary === undefined) return {};
  return { detail: `canary ${rollout.canary}${rollout.canaryAuto ? " (auto-promote)" : ""}` };
}

/** The attributes a publish changed, for its history entry: "slots 1→2; health-cmd set". */
function describeChanges(before: AppSpec, after: AppSpec): string {
  const changes: string[] = [];
  for (const [key, label] of ATTRIBUTE_LABELS) {
    const was = before[key];
    const now = after[key];
    if (JSON.stringify(was) === JSON.stringify(now)) continue;
    if (key.endsWith("Cmd")) changes.push(`${label} ${now === undefined ? "removed" : was === undefined ? "set" : "changed"}`);
    else changes.push(`${label} ${was === undefined ? "-" : JSON.stringify(was)}→${now === undefined ? "-" : JSON.stringify(now)}`);
  }
  return changes.join(", ").slice(0, 900);
}

/** The attributes of a spec a person sets, as the flags name them. */
const ATTRIBUTE_LABELS: [AppSpecField, string][] = [
  ["slots", "slots"],
  ["getVersionCmd", "get-version-cmd"],
  ["deployCmd", "deploy-cmd"],
  ["verifyCmd", "verify-cmd"],
  ["healthCmd", "health-cmd"],
  ["healthIntervalMs", "health-interval (ms)"],
  ["healthTimeoutMs", "health-timeout (ms)"],
  ["minHealthyMs", "min-healthy-time (ms)"],
  ["drainCmd", "drain-cmd"],
  ["undrainCmd", "undrain-cmd"],
  ["slotIncrement", "slot-increment"],
  ["maxSlots", "max-slots"],
  ["groups", "groups"],
  ["maxFailures", "max-failures"],
  ["deployTimeoutSec", "deploy-timeout (s)"],
];
