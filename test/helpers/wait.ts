/** Polls `condition` until it is truthy or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(condition: () => T | Promise<T>, timeoutMs: number, what: string, intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
    }
    await Bun.sleep(intervalMs);
  }
}
