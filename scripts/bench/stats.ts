import { percentile } from "../../test/harness/percentile.ts";

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export const round = (value: number, digits = 1): number => Math.round(value * 10 ** digits) / 10 ** digits;

export interface Quantiles {
  p50: number;
  p99: number;
}

export function quantiles(values: readonly number[]): Quantiles {
  return { p50: round(percentile(values, 50), 2), p99: round(percentile(values, 99), 2) };
}
