import type { ZkClient } from "../zk/client.ts";
import { appPath } from "../zk/paths.ts";
import { deleteSubtreeAtomically } from "../zk/subtree.ts";
import { parseAppName } from "../config/parse-input.ts";
import { AppNotFoundError } from "./errors.ts";

/**
 * Removes the app and its whole subtree (status, queue, history) in one transaction, so agents
 * never see a half-deleted app (deleteSubtreeAtomically). Agents notice the app node's deletion
 * through their watch and stop serving it; a running deploy finishes on its own.
 * `validName` false (parseDeletableAppName): a node with an invalid name is removed as well,
 * but if there is none the name was a typo — the usual invalid-name UsageError.
 */
export async function deleteApp(zk: ZkClient, app: string, validName = true): Promise<void> {
  if (await deleteSubtreeAtomically(zk, appPath(app))) return;
  if (!validName) parseAppName(app); // throws: names the rule
  throw new AppNotFoundError(app);
}
