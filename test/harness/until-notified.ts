/**
 * The one "wait until something shows up" of the test helpers: runs `check` now and each time
 * one of `listeners` is called (new output, a new event), and resolves with the first value it
 * returns. `check` may return an Error to reject at once (the process exited without it); after
 * `timeoutMs` it rejects with `timedOut()`. Its listener is removed either way.
 */
export function untilNotified<T>(
  listeners: Set<() => void>,
  check: () => T | Error | undefined,
  timeoutMs: number,
  timedOut: () => string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const listener = (): void => {
      const found = check();
      if (found === undefined) return;
      done();
      if (found instanceof Error) reject(found);
      else resolve(found);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(timedOut()));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      listeners.delete(listener);
    };
    listeners.add(listener);
    listener();
  });
}
