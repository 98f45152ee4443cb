import { decodeZnode } from "../config/decode.ts";
import { InvalidDataError } from "../config/errors.ts";
import { type HistoryEntry, HistoryEntry as HistorySchema } from "../config/payloads.ts";
import type { ZkClient } from "../zk/client.ts";
import { isNoNode } from "../zk/errors.ts";
import { canaryDir, doneDir, failuresDir, historyDir, sequenceOf } from "../zk/paths.ts";
import { AppNotFoundError } from "./errors.ts";
import { readApp } from "./read-app.ts";

export const HISTORY_KEEP = 200;

export type HistoryRecord = (HistoryEntry & { seq: number }) | { seq: number; invalid: string };

async function sortedEntries(zk: ZkClient, app: string): Promise<string[]> {
  try {
    const names = await zk.children(historyDir(app));
    return names.filter((n) => !Number.isNaN(sequenceOf(n))).sort((a, b) => sequenceOf(a) - sequenceOf(b));
  } catch (error) {
    if (isNoNode(error)) throw new AppNotFoundError(app);
    throw error;
  }
}

/** Newest first; an entry that fails validation is listed as invalid, not dropped. */
export async function readHistory(zk: ZkClient, app: string, limit: number): Promise<HistoryRecord[]> {
  const names = (await sortedEntries(zk, app)).reverse().slice(0, limit);
  const records = await Promise.all(
    names.map(async (name): Promise<HistoryRecord | undefined> => {
      const path = `${historyDir(app)}/${name}`;
      try {
        return { seq: sequenceOf(name), ...decodeZnode(HistorySchema, (await zk.get(path)).data, path) };
      } catch (error) {
        if (isNoNode(error)) return undefined; // pruned meanwhile
        if (error instanceof InvalidDataError) return { seq: sequenceOf(name), invalid: error.reason };
        throw error;
      }
    }),
  );
  return records.filter((r): r is HistoryRecord => r !== undefined);
}

/** Keeps the newest HISTORY_KEEP entries. Best effort: a concurrent prune is not an error. */
export async function pruneHistory(zk: ZkClient, app: string): Promise<void> {
  const names = await sortedEntries(zk, app).catch(() => []);
  const excess = names.slice(0, Math.max(0, names.length - HISTORY_KEEP));
  await Promise.all(excess.map((name) => zk.delete(`${historyDir(app)}/${name}`).catch(() => undefined)));
}

/**
 * A new rollout makes the failure and canary markers of older rollouts meaningless (only the
 * current rollout's count toward its budget or its canary); remove them so those directories,
 * which admission lists, do not grow forever. Best effort.
 *
 * The current rollout is read only after listing: a listed marker belongs to a rollout
 * published before the listing, and if that rollout is not current now it never will be again
 * (ids are never reused). So another publish landing meanwhile never loses its own markers —
 * deleting them would hide its halt or open its canary wider.
 */
export async function pruneRolloutMarkers(zk: ZkClient, app: string): Promise<void> {
  const dirs = [failuresDir(app), canaryDir(app), doneDir(app)];
  const listed = await Promise.all(dirs.map((dir) => zk.children(dir).catch(() => [] as string[])));
  const current = await readApp(zk, app).then(
    ({ spec }) => spec.rolloutId,
    () => undefined,
  );
  if (current === undefined) return;
  // done/ holds one directory per rollout (and, from agents of earlier versions, flat
  // `<rolloutId>-<host>` markers): anything not the current rollout's goes, with its children.
  const stale = (dir: string, name: string): boolean =>
    dir === doneDir(app) ? name !== current && !name.startsWith(`${current}-`) : !name.startsWith(`${current}-`);
  await Promise.all(
    dirs.flatMap((dir, i) =>
      (listed[i] ?? []).filter((n) => stale(dir, n)).map((n) => zk.deleteRecursive(`${dir}/${n}`).catch(() => undefined)),
    ),
  );
}
