/**
 * Polls `condition` until it is truthy or `timeoutMs` passes, then throws naming `what` (and the
 * last error `condition` threw). With `retryErrors` false, an error from `condition` rejects at
 * once. The one polling loop of the tests, the fault fleet, the chaos script and the benchmarks;
 * waitFor and waitForStrict are its two usual settings.
 */
export async function poll<T>(
  condition: () => T | Promise<T>,
  timeoutMs: number,
  what: string,
  intervalMs = 25,
  retryErrors = true,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      if (!retryErrors) throw error;
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
    }
    await Bun.sleep(intervalMs);
  }
}

/** Polls `condition` until it is truthy or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  timeoutMs: number,
  what: string,
  intervalMs = 25,
): Promise<NonNullable<T>> {
  return await poll(condition, timeoutMs, what, intervalMs, true);
}

/**
 * Like waitFor, polling every 20 ms, but an error thrown by `condition` is not retried: it
 * rejects at once (for conditions that must not fail, such as reads from a live session).
 */
export async function waitForStrict<T>(condition: () => T | Promise<T>, timeoutMs: number, what: string): Promise<NonNullable<T>> {
  return await poll(condition, timeoutMs, what, 20, false);
}
