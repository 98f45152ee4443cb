/** Percentile by nearest rank (p in 0..100) of an unsorted sample; NaN when empty. The one
 *  definition behind the fault suite's reports, the chaos summary and the benchmarks. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}
