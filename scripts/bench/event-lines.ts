// The scale bench's worker processes report to the parent as JSON lines on stdout. Lines are
// batched into one write per tick: 10 000 sessions would otherwise write a line each.

let pending: string[] = [];

/** Queues one line for this tick's write. */
export function emit(line: string): void {
  if (pending.length === 0) setTimeout(flush, 0);
  pending.push(line);
}

/** Writes the queued lines now (before a `ready` wait, or on exit). */
export function flush(): void {
  if (pending.length === 0) return;
  process.stdout.write(`${pending.join("\n")}\n`);
  pending = [];
}

/** Wall-clock time in ms with sub-millisecond resolution, comparable across processes: the
 *  workers stamp their events with it, and the parent its publish times. */
export const epochMs = (): number => performance.timeOrigin + performance.now();
