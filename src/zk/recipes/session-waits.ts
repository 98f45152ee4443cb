import type { ZkClient } from "../client.ts";
import { ZkError, isConnectionLoss, isNoNode } from "../errors.ts";

// How the slot semaphore waits on one session: requests retried across connection loss (same
// session only — a lost session ends the wait with `sessionExpired`), and every wait ended by
// an abort signal without leaving a listener behind.

export class AcquireAbortedError extends Error {
  override readonly name = "AcquireAbortedError";
}

/**
 * Retries `fn` across connection loss (same session); rethrows anything else. A request can
 * time out while the connection still looks up (a frozen server): back off a little then.
 */
export async function retrying<R>(zk: ZkClient, fn: () => Promise<R>, sessionId: string, signal?: AbortSignal): Promise<R> {
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (!isConnectionLoss(error)) throw error;
      if (zk.isConnected) await untilAbortedOr(Bun.sleep(100), signal);
      await untilConnected(zk, sessionId, signal);
    }
  }
}

export async function untilConnected(zk: ZkClient, sessionId: string, signal?: AbortSignal): Promise<void> {
  while (!zk.isConnected) {
    throwIfAborted(signal);
    assertSession(zk, sessionId);
    // Whichever comes first, both listeners go: a wait that ended by abort used to leave its
    // state listener behind (one more per disconnected wait), and the other way round.
    await new Promise<void>((resolve) => {
      const done = (): void => {
        off();
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const off = zk.onState(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
  assertSession(zk, sessionId);
}

export function assertSession(zk: ZkClient, sessionId: string): void {
  if (zk.sessionId !== sessionId) {
    throw new ZkError("sessionExpired", "ZooKeeper session lost while waiting for a slot");
  }
}

/** Deletes a node of ours; gone already, or gone with a lost session, is fine. */
export async function deleteQuietly(zk: ZkClient, path: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await zk.delete(path);
      return;
    } catch (error) {
      if (isNoNode(error) || !isConnectionLoss(error)) return;
      // Unknown outcome: if the session survives, try again; if it is lost, the node is gone.
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * Deletes a lease and touches its directory's data in one transaction: a waiter watches that
 * data (one small notification per release), not the list of leases (every holder's name, O(slots)
 * bytes per wake-up). A lease already gone (session expired, deleted by hand) still touches the
 * directory so the waiter looks again. Gives up quietly like deleteQuietly: if the session is
 * lost, the lease is gone with it and the waiter's periodic re-check counts it.
 */
export async function releaseLease(zk: ZkClient, path: string, leasesDir: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await zk.transaction().delete(path).set(leasesDir, Buffer.alloc(0)).commit();
      return;
    } catch (error) {
      if (isNoNode(error)) {
        await zk.set(leasesDir, Buffer.alloc(0)).catch(() => undefined);
        return;
      }
      if (!isConnectionLoss(error)) return;
      // Unknown outcome: if it was applied, the next attempt finds the lease gone (NoNode).
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** `promise`, or an AcquireAbortedError as soon as `signal` aborts (also if it already has). */
export async function untilAbortedOr<V>(promise: Promise<V>, signal?: AbortSignal): Promise<V> {
  if (!signal) return promise;
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new AcquireAbortedError("acquire cancelled"));
  });
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal.aborted) throw new AcquireAbortedError("acquire cancelled");
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new AcquireAbortedError("acquire cancelled");
}
