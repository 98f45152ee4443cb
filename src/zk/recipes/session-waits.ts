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
    await nextChange(zk, { signal }); // closed: assertSession then says the session is gone
  }
  assertSession(zk, sessionId);
}

/**
 * Resolves at the client's next state change or close, or when `signal` aborts, or at
 * `deadline` (epoch ms). Whichever comes first, every listener goes: a wait that ended by abort
 * used to leave its state listener behind (one more per disconnected wait), and the other way
 * round.
 */
function nextChange(zk: ZkClient, { signal, deadline }: { signal?: AbortSignal | undefined; deadline?: number }): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      off();
      offClosed();
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const off = zk.onState(done);
    const offClosed = zk.onClosed(done);
    const timer = deadline === undefined ? undefined : setTimeout(done, deadline - Date.now());
    signal?.addEventListener("abort", done, { once: true });
  });
}

export function assertSession(zk: ZkClient, sessionId: string): void {
  if (zk.sessionId !== sessionId) {
    throw new ZkError("sessionExpired", "ZooKeeper session lost while waiting for a slot");
  }
}

/**
 * A write that removes something of ours, retried across connection loss for as long as what it
 * removes can still exist (unknown outcome: if it was applied, the next try meets NoNode):
 * giving up while the session lives would leak the node — a lease or a ticket — until the
 * agent exits. It ends when the session is replaced, or after a session timeout without a
 * connection: by then the server has expired the session, and our ephemeral nodes with it.
 * NoNode ends it, after `ifGone`. Gives up quietly on anything else.
 */
async function removeQuietly(
  zk: ZkClient,
  write: () => Promise<unknown>,
  ifGone: () => Promise<unknown> = async () => undefined,
): Promise<void> {
  const sessionId = zk.sessionId;
  for (;;) {
    try {
      await write();
      return;
    } catch (error) {
      if (isNoNode(error)) {
        await ifGone().catch(() => undefined);
        return;
      }
      if (!isConnectionLoss(error) || zk.sessionId !== sessionId) return;
      // Connected (a request that timed out on a slow server): back off, then try again.
      if (zk.isConnected) await Bun.sleep(200);
      else if (!(await connectedWithin(zk, sessionId, zk.sessionTimeoutMs))) return;
    }
  }
}

/** True once connected on `sessionId`; false after `ms`, or as soon as that session is replaced. */
async function connectedWithin(zk: ZkClient, sessionId: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!zk.isConnected && zk.sessionId === sessionId && Date.now() < deadline) await nextChange(zk, { deadline });
  return zk.isConnected && zk.sessionId === sessionId;
}

/** Deletes a node of ours; gone already, or gone with a lost session, is fine. */
export function deleteQuietly(zk: ZkClient, path: string): Promise<void> {
  return removeQuietly(zk, () => zk.delete(path));
}

/** Deletes our ephemeral node at `path` only if it is still ours: in a directory deleted and
 *  made again, another session's node may have taken its name (sequence numbers start again). */
export function deleteOursQuietly(zk: ZkClient, path: string, sessionId: string): Promise<void> {
  return removeQuietly(zk, async () => {
    const stat = await zk.exists(path);
    if (stat?.ephemeralOwner === sessionId) await zk.delete(path);
  });
}

/**
 * Deletes a lease and touches its directory's data in one transaction: a waiter watches that
 * data (one small notification per release), not the list of leases (every holder's name, O(slots)
 * bytes per wake-up). A lease already gone (session expired, deleted by hand) still touches the
 * directory so the waiter looks again. If the session is lost, the lease is gone with it and the
 * waiter's periodic re-check counts it.
 */
export function releaseLease(zk: ZkClient, path: string, leasesDir: string): Promise<void> {
  return removeQuietly(
    zk,
    () => zk.transaction().delete(path).set(leasesDir, Buffer.alloc(0)).commit(),
    () => zk.set(leasesDir, Buffer.alloc(0)),
  );
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
