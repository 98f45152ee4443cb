import type { ZkClient } from "./client.ts";
import { isNoNode, isNodeExists } from "./errors.ts";
import { AGENTS, APPS, appPath, appSubdirs, basename } from "./paths.ts";

/**
 * Re-creates the directories an app node owns (`appSubdirs`: lock, leases, hosts, failures,
 * history, canary) that are missing — deleted by hand with zkCli, say — but only while the app
 * node itself exists: a deleted app's subtree is never brought back. Without them every agent
 * fails to queue, count slots, report or record failures, and the app stalls. One listing when
 * nothing is missing. Returns the paths it created.
 *
 * Throws a `noAuth` ZkError when this identity may not create them: on a locked tree only the
 * admin may create children of an app node (agents then report it; the admin's next change of
 * the app re-creates them).
 */
export async function repairAppLayout(zk: ZkClient, app: string): Promise<string[]> {
  let present: string[];
  try {
    present = await zk.children(appPath(app));
  } catch (error) {
    if (isNoNode(error)) return [];
    throw error;
  }
  const created: string[] = [];
  for (const dir of appSubdirs(app)) {
    if (present.includes(basename(dir))) continue;
    try {
      await zk.create(dir);
      created.push(dir);
    } catch (error) {
      if (isNodeExists(error)) continue;
      if (isNoNode(error)) return created; // the app was deleted meanwhile
      throw error;
    }
  }
  return created;
}

/**
 * Creates /apps and /agents when missing (deleted by hand). Agents re-register by themselves —
 * unless the tree is locked, where only the admin may create them: every admin change of an app
 * runs this, so the next one brings the agents back.
 */
export async function repairTreeLayout(zk: ZkClient): Promise<void> {
  for (const dir of [APPS, AGENTS]) {
    if (await zk.exists(dir)) continue;
    try {
      await zk.create(dir);
    } catch (error) {
      if (!isNodeExists(error)) throw error;
    }
  }
}
