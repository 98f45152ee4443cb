/**
 * Polls `condition` until it is truthy or `timeoutMs` passes, then throws naming `what` (and the
 * last error `condition` threw). With `retryErrors` false, an error from `condition` rejects at
 * once. The one polling loop of tests, the fault fleet and the chaos script.
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
