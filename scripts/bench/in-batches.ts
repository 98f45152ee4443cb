// Bench fleets start their sessions a batch at a time: thousands of connection handshakes at
// once would queue on the server past their connect timeout.

/** `start(0)` … `start(count − 1)`, `size` at a time (each batch in parallel); results in order. */
export async function inBatches<T>(count: number, size: number, start: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < count; i += size) {
    results.push(...(await Promise.all(Array.from({ length: Math.min(size, count - i) }, (_, k) => start(i + k)))));
  }
  return results;
}
