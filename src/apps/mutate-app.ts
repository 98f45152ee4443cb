import { randomBytes } from "node:crypto";
import { AppSpec } from "../config/app-spec.ts";
import { encodeZnode } from "../config/decode.ts";
import { HistoryEntry } from "../config/payloads.ts";
import { repairAppLayout, repairTreeLayout } from "../zk/app-layout.ts";
import type { ZkClient } from "../zk/client.ts";
import { isBadVersion } from "../zk/errors.ts";
import { appPath, historyPrefix } from "../zk/paths.ts";
import { OperationError } from "./errors.ts";
import { pruneHistory, pruneRolloutMarkers } from "./history.ts";
import { readApp } from "./read-app.ts";
import { sealRelease } from "./release-signature.ts";
import type { SigningKey } from "../config/signing-keys.ts";

/** Who acts and when; injected so tests and benchmarks control both. */
export interface MutationContext {
  actor: string;
  now: () => Date;
  /** Signs every release this change writes (`--sign-key`); see sealRelease. */
  signer?: SigningKey;
}

export type HistoryAction = HistoryEntry["action"];

export interface Change {
  spec: AppSpec;
  history: { action: HistoryAction; from?: string; to?: string; detail?: string };
}

const MAX_ATTEMPTS = 8;

export function newRolloutId(now: Date): string {
  return `r${now.getTime().toString(36)}${randomBytes(4).toString("hex")}`;
}

/** When a rollout was started (epoch ms), from its id (newRolloutId); undefined for an id not made there. */
export function rolloutStartedAt(rolloutId: string): number | undefined {
  const ms = Number.parseInt(rolloutId.slice(1, -8), 36);
  return /^r[0-9a-z]+[0-9a-f]{8}$/.test(rolloutId) && Number.isSafeInteger(ms) && ms > 0 ? ms : undefined;
}

export function historyEntry(change: Change["history"], ctx: MutationContext): Buffer {
  return encodeZnode(HistoryEntry, { at: ctx.now().toISOString(), by: ctx.actor, ...change });
}

/**
 * Read-modify-write of an app spec with compare-and-set: the spec and its history entry are
 * written in one transaction that fails if anyone changed the app since we read it; then we
 * re-read and apply `change` again, so a concurrent writer's change is never lost. `change` may
 * throw (e.g. to refuse when the concurrent change conflicts with ours).
 *
 * Directories of the tree and of the app deleted by hand are re-created first (before the spec changes, so
 * agents woken by the change find them): on a locked tree agents may not re-create them, and an
 * operator's `app retry` or publish is what repairs the app.
 */
export async function updateApp(
  zk: ZkClient,
  app: string,
  ctx: MutationContext,
  change: (current: AppSpec, attempt: number) => Change | Promise<Change>,
): Promise<AppSpec> {
  await repairTreeLayout(zk);
  await repairAppLayout(zk, app);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const { spec, stat } = await readApp(zk, app);
    const next = await change(spec, attempt);
    const now = ctx.now();
    const updated = sealRelease(app, spec, { ...next.spec, updatedAt: now.toISOString(), updatedBy: ctx.actor }, ctx.signer, now);
    try {
      await zk
        .transaction()
        .set(appPath(app), encodeZnode(AppSpec, updated), stat.version)
        .create(historyPrefix(app), historyEntry(next.history, ctx), "persistentSequential")
        .commit();
      await pruneHistory(zk, app);
      if (updated.rolloutId !== spec.rolloutId) await pruneRolloutMarkers(zk, app);
      return updated;
    } catch (error) {
      if (!isBadVersion(error)) throw error;
    }
  }
  throw new OperationError(`app "${app}" is being changed by others too often; try again`);
}
