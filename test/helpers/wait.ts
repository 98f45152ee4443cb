import { poll } from "../harness/wait.ts";

/** Polls `condition` until it is truthy or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(condition: () => T | Promise<T>, timeoutMs: number, what: string, intervalMs = 25): Promise<NonNullable<T>> {
  return await poll(condition, timeoutMs, what, intervalMs, true);
}

/**
 * Like waitFor, polling every 20 ms, but an error thrown by `condition` is not retried: it
 * rejects at once (for conditions that must not fail, such as reads from a live session).
 */
export async function waitForStrict<T>(condition: () => T | Promise<T>, timeoutMs: number, what: string): Promise<NonNullable<T>> {
  return await poll(condition, timeoutMs, what, 20, false);
}
