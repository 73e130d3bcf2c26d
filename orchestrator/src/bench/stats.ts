/**
 * Order statistics of repeated measurements. One job: a list of values → median and spread.
 * The spread is the range (max − min) relative to the median: with 3–5 repetitions a range is
 * what can be estimated honestly; a standard deviation of three numbers says little more.
 */

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** (max − min) ÷ |median|; 0 for one value; Infinity when the median is 0 and the range is not. */
  relative: number;
  n: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

export function spread(values: readonly number[]): Spread {
  const m = median(values);
  const min = Math.min(...values);
  const max = Math.max(...values);
  const range = max - min;
  const relative = range === 0 ? 0 : m === 0 ? Infinity : range / Math.abs(m);
  return { median: m, min, max, relative, n: values.length };
}

/** A relative spread as text: `0.42%` (the whole range, (max − min) ÷ median). */
export function formatSpread(relative: number): string {
  if (!Number.isFinite(relative)) return '∞';
  const pct = relative * 100;
  return `${pct < 10 ? pct.toFixed(2) : pct.toFixed(1)}%`;
}
