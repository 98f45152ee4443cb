import { repairAppLayout } from "../zk/app-layout.ts";
import type { ZkClient } from "../zk/client.ts";
import { isNoAuth } from "../zk/errors.ts";
import { appPath } from "../zk/paths.ts";
import type { Logger } from "./logger.ts";
import { sleep } from "./sleep.ts";

/** Reconciles in a row that may end on a missing node before a worker waits for a change. */
const MAX_MISSING_NODE_RETRIES = 8;

/** `repaired`: something was re-created; `intact`: nothing missing (someone else repaired it);
 *  `gone`: the app itself was deleted; `forbidden`: this agent may not re-create it. */
export type LayoutState = "repaired" | "intact" | "gone" | "forbidden";

/**
 * Re-creates an app's directories deleted by hand (lock, leases, hosts, failures, …): an agent
 * that took their absence for "app deleted" stalled the app for good. On a tree locked with
 * `acl init` only the admin may create children of an app node: that is reported loudly, and
 * the admin's next change of the app (e.g. `app retry`) repairs it and wakes the agents.
 */
export async function repairLayout(zk: ZkClient, app: string, log: Logger): Promise<LayoutState> {
  try {
    const created = await repairAppLayout(zk, app);
    for (const path of created) log.warn("re-created a missing node of the app (deleted outside Conveyor?)", { path });
    if (created.length > 0) return "repaired";
    return (await zk.exists(appPath(app))) === null ? "gone" : "intact";
  } catch (error) {
    if (!isNoAuth(error)) throw error;
    log.error(
      "a node of the app is missing and this agent may not re-create it; the app waits until an admin changes it (e.g. conveyor app retry)",
      {
        error: error.message,
      },
    );
    return "forbidden";
  }
}

/** For writes into the app's directories: may they be tried again? */
export async function layoutUsable(zk: ZkClient, app: string, log: Logger): Promise<boolean> {
  const state = await repairLayout(zk, app, log);
  return state === "repaired" || state === "intact";
}

/**
 * A worker's reconcile ended on a missing node: the app was deleted underneath it — or one of
 * its directories was. `shouldRetry` re-creates what is missing (or finds another agent already
 * has) and says whether to go round again, after a back-off: someone deleting the tree node by
 * node (zkCli deleteall, app delete) may take a while. Bounded: a node that stays missing must
 * not become a busy loop; the next change of the app tries again.
 */
export class MissingNodeRetries {
  private count = 0;

  constructor(
    private readonly zk: ZkClient,
    private readonly app: string,
    private readonly log: Logger,
  ) {}

  /** A reconcile went through: the next missing node starts a fresh series. */
  reset(): void {
    this.count = 0;
  }

  async shouldRetry(error: Error, signal: AbortSignal): Promise<boolean> {
    const layout = await repairLayout(this.zk, this.app, this.log).catch(() => "gone" as const);
    if ((layout === "repaired" || layout === "intact") && this.count < MAX_MISSING_NODE_RETRIES) {
      await sleep(Math.min(100 * 2 ** this.count, 2_000), signal);
      this.count += 1;
      return true;
    }
    if (layout === "intact")
      this.log.error("a node the app needs is still missing; waiting for the app to change", { error: error.message });
    return false;
  }
}
