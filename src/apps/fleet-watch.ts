import type { ZkClient } from "../zk/client.ts";
import { FleetReader } from "./fleet-reader.ts";
import type { FleetStatus } from "./fleet-view.ts";

export type WakeReason = "changed" | "deadline" | "aborted";

export interface ChangeWait {
  /** Epoch milliseconds; without it, waits for a change or the abort only. */
  deadline?: number;
  signal?: AbortSignal;
  /** After the first change, wait this much longer so a burst of events is one change. */
  settleMs?: number;
}

/**
 * A FleetReader in watch mode and the one loop both `status --watch` and `--wait` need: take a
 * snapshot, then sleep until the reader sees something new. A change that lands between a
 * snapshot and the next wait is not lost: it is remembered and wakes that wait at once.
 */
export class FleetWatch {
  private readonly reader: FleetReader;
  private changed = false;
  private wake: (() => void) | undefined;

  constructor(zk: ZkClient, options: { app?: string } = {}) {
    this.reader = new FleetReader(zk, {
      ...options,
      watch: true,
      onChange: () => {
        this.changed = true;
        this.wake?.();
      },
    });
  }

  /** Reads everything once and starts following changes. */
  load(): Promise<void> {
    return this.reader.load();
  }

  /** The fleet now; only changes after this call wake the next waitForChange. Throws what a
   *  background re-read failed with (e.g. not authorised), so the caller ends with it. */
  snapshot(): FleetStatus {
    this.changed = false;
    return this.reader.snapshot();
  }

  /**
   * Resolves once the reader saw a change since the last snapshot (at once if it already has),
   * settleMs after it; "deadline" if the deadline passes first, "aborted" when the signal is
   * aborted (also during the settle). Never rejects.
   */
  waitForChange({ deadline, signal, settleMs = 0 }: ChangeWait): Promise<WakeReason> {
    return new Promise<WakeReason>((resolve) => {
      let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
      let settleTimer: ReturnType<typeof setTimeout> | undefined;
      const finish = (reason: WakeReason): void => {
        clearTimeout(deadlineTimer);
        clearTimeout(settleTimer);
        signal?.removeEventListener("abort", onAbort);
        this.wake = undefined;
        resolve(reason);
      };
      const onAbort = (): void => finish("aborted");
      if (signal?.aborted) return finish("aborted");
      signal?.addEventListener("abort", onAbort, { once: true });
      if (deadline !== undefined) deadlineTimer = setTimeout(() => finish("deadline"), Math.max(0, deadline - Date.now()));
      this.wake = () => {
        this.wake = undefined; // later events of the burst are covered by this wake-up
        if (settleMs <= 0) return finish("changed");
        clearTimeout(deadlineTimer); // the change is seen, even if the deadline falls in the settle
        settleTimer = setTimeout(() => finish("changed"), settleMs);
      };
      if (this.changed) this.wake();
    });
  }

  stop(): void {
    this.wake = undefined;
    this.reader.stop();
  }
}
