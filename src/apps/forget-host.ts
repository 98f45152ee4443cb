import { repairTreeLayout } from "../zk/app-layout.ts";
import { type ZkClient, isEphemeral } from "../zk/client.ts";
import { isNoNode, isNodeExists } from "../zk/errors.ts";
import { APPS, type AppDir, agentPath, appDir, historyPrefix, hostStatusPath, markerHost } from "../zk/paths.ts";
import { OperationError } from "./errors.ts";
import { type MutationContext, historyEntry } from "./mutate-app.ts";
import { pruneHistory } from "./history.ts";

/** Per-rollout marker directories whose nodes are named `<rolloutId>-<host>` — in done/, each
 *  rollout's markers are `<rolloutId>/<host>` (flat names left by agents of earlier versions). */
const MARKER_DIRS: readonly AppDir[] = ["failures", "canary", "done"];
const ATTEMPTS = 8;

export interface ForgottenHost {
  host: string;
  /** Per app: the nodes removed (chroot-relative paths). */
  apps: { app: string; removed: string[] }[];
}

/**
 * `host forget`: removes a decommissioned host's status node and its failure, canary and done
 * markers from every app, with a `forget-host` history entry in each, so the host stops
 * counting as offline or pending (and its old failures stop counting toward a budget).
 *
 * One transaction, which also creates and deletes the host's presence node: it fails whole if
 * the host's agent is online at the commit (its ephemeral node exists), so a host whose agent
 * comes back between our check and our write is never forgotten under it. On a locked tree
 * only an admin may write history, so an agent identity is refused by ZooKeeper itself. A node
 * added or removed meanwhile fails the transaction, which is listed and tried again.
 */
export async function forgetHost(zk: ZkClient, host: string, ctx: MutationContext): Promise<ForgottenHost> {
  await repairTreeLayout(zk);
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    await refuseOnline(zk, host);
    const apps = await hostNodes(zk, host);
    if (apps.length === 0) throw new OperationError(`host "${host}" is not known to any app: nothing to forget`);
    const txn = zk.transaction().create(agentPath(host)).delete(agentPath(host));
    for (const { app, removed } of apps) {
      for (const path of removed) txn.delete(path);
      const markers = removed.length - (removed.includes(hostStatusPath(app, host)) ? 1 : 0);
      const detail = `status node${markers ? ` and ${markers} rollout marker${markers === 1 ? "" : "s"}` : ""} removed`;
      txn.create(historyPrefix(app), historyEntry({ action: "forget-host", to: host, detail }, ctx), "persistentSequential");
    }
    try {
      await txn.commit();
    } catch (error) {
      if (isNodeExists(error)) continue; // the agent came online: refuseOnline says so
      if (isNoNode(error)) continue; // a node (or an app) went away meanwhile: list again
      throw error;
    }
    await Promise.all(apps.map(({ app }) => pruneHistory(zk, app)));
    return { host, apps };
  }
  throw new OperationError(`host "${host}" keeps changing while being forgotten; try again`);
}

async function refuseOnline(zk: ZkClient, host: string): Promise<void> {
  const stat = await zk.exists(agentPath(host));
  if (stat === null) return;
  if (!isEphemeral(stat)) {
    throw new OperationError(
      `host "${host}": ${agentPath(host)} is a persistent node (made by hand), not an agent's presence; delete it (zkCli deleteall) or start the host's agent, which replaces it`,
    );
  }
  throw new OperationError(`host "${host}" has an agent online: stop its agent (and let its session end) before forgetting it`);
}

/** The host's status node and markers in each app that has any. */
async function hostNodes(zk: ZkClient, host: string): Promise<{ app: string; removed: string[] }[]> {
  const apps = await zk.children(APPS).catch((error: unknown) => {
    if (isNoNode(error)) return [] as string[];
    throw error;
  });
  const found = await Promise.all(
    apps.map(async (app) => {
      const removed: string[] = [];
      if ((await zk.exists(hostStatusPath(app, host))) !== null) removed.push(hostStatusPath(app, host));
      for (const dir of MARKER_DIRS) {
        const names = await zk.children(appDir(app, dir)).catch((error: unknown) => {
          if (isNoNode(error)) return [] as string[];
          throw error;
        });
        for (const name of names) {
          if (markerHost(name) === host) removed.push(`${appDir(app, dir)}/${name}`);
          else if (dir === "done" && markerHost(name) === undefined) {
            const marker = `${appDir(app, dir)}/${name}/${host}`;
            if ((await zk.exists(marker)) !== null) removed.push(marker);
          }
        }
      }
      return { app, removed };
    }),
  );
  return found.filter((f) => f.removed.length > 0);
}
