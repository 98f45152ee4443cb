import { AppSpec } from "../config/app-spec.ts";
import { decodeZnode } from "../config/decode.ts";
import { InvalidDataError } from "../config/errors.ts";
import type { ZkClient } from "../zk/client.ts";
import { isConnectivity, isNoNode } from "../zk/errors.ts";
import { appPath } from "../zk/paths.ts";
import type { Logger } from "./logger.ts";

export interface SpecEvents {
  /** The node was deleted and created again since the last read (a new czxid): runs before the
   *  new spec is taken; if it throws a connectivity error the read is tried again later. */
  recreated(): Promise<void>;
  /** A valid spec was read (after any change of the node). */
  spec(spec: AppSpec): void;
  /** Nothing to act on: the node was deleted (`deleted`), or its payload is invalid. */
  none(deleted: boolean): void;
}

/**
 * Follows one app node with a data watch and hands every version of the spec to the worker.
 * A read of a missing node leaves no watch, so when the node is gone it watches for its
 * creation instead (an app deleted and created again at once may never be seen missing from
 * /apps). A connectivity failure leaves no watch either: the agent calls start() again once
 * reconnected.
 */
export class SpecWatch {
  /** Which incarnation of the node we last read (its czxid). */
  private czxid: string | undefined;
  private stopped = false;

  constructor(
    private readonly zk: ZkClient,
    private readonly app: string,
    private readonly log: Logger,
    private readonly events: SpecEvents,
  ) {}

  start(): void {
    void this.read();
  }

  /** Also drops our watcher: a deleted app's creation watch would otherwise keep this watch —
   *  and its worker — reachable for the agent's life (one per app ever deleted). */
  stop(): void {
    this.stopped = true;
    this.zk.unwatch(this.watcher);
  }

  // One stable function: registering it again (start() after a reconnect) never doubles it.
  private readonly watcher = (event: { type: string }): void => {
    if (event.type !== "sessionLost") void this.read();
  };

  private async read(): Promise<void> {
    if (this.stopped) return;
    const path = appPath(this.app);
    try {
      const { data, stat } = await this.zk.get(path, this.watcher);
      // The incarnation is noted only once `recreated` is done: a failure retries on the next read.
      if (this.czxid !== undefined && stat.czxid !== this.czxid) await this.events.recreated();
      this.czxid = stat.czxid;
      this.events.spec(decodeZnode(AppSpec, data, path));
    } catch (error) {
      if (isNoNode(error)) {
        this.events.none(true);
        const back = await this.zk.exists(path, this.watcher).catch((e: unknown) => {
          if (!isConnectivity(e)) this.log.error("cannot watch for the app to come back", { error: String(e) });
          return null;
        });
        if (back !== null) return this.read();
      } else if (error instanceof InvalidDataError) {
        this.events.none(false);
        this.log.error("app spec is invalid; not deploying it", { reason: error.reason });
      } else if (!isConnectivity(error)) {
        this.log.error("cannot read app spec", { error: String(error) });
      }
    }
  }
}
