import type { ZkClient } from "../zk/client.ts";
import { appPath } from "../zk/paths.ts";
import { AppNotFoundError } from "./errors.ts";

/**
 * Removes the app and its whole subtree (status, queue, history). Agents notice the app node's
 * deletion through their watch and stop serving it; a running deploy finishes on its own.
 */
export async function deleteApp(zk: ZkClient, app: string): Promise<void> {
  if (!(await zk.exists(appPath(app)))) throw new AppNotFoundError(app);
  await zk.deleteRecursive(appPath(app));
}
