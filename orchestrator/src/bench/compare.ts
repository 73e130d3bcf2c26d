/**
 * Current benchmark metrics against a baseline. One job: metrics → verdict rows.
 *
 * Ratios (higher is better) regress only when the change exceeds **both** the tolerance and the
 * measured noise: the median dropped by more than the relative tolerance **and** the
 * repetitions are apart (one outlier allowed) **and** the drop exceeds the quieter side's ±
 * spread (judgeRatio).
 * A median beyond the tolerance whose ranges overlap is `noise`: not a regression, shown as
 * such. Improvements are judged the same way upwards. With one repetition on each side the ranges
 * are single points and the tolerance alone decides. Counts (duplicated records) are compared
 * exactly against their maximum. Info metrics are shown, never judged. Because ratios divide by
 * a reference from the same run, a uniformly faster or slower machine leaves every verdict `ok`.
 * A baseline from another machine is compared but not judged (`judge: false`): every row `info`.
 */
import type { BaselineEntry, BaselineMetric } from './baseline.ts';
import type { BenchKind, BenchMetric } from './metrics.ts';
import { formatSpread } from './stats.ts';

export type Verdict = 'ok' | 'regression' | 'improved' | 'noise' | 'new' | 'missing' | 'info';

export interface CompareRow {
  metric: string;
  kind: BenchKind;
  unit: string;
  baseline?: number;
  current?: number;
  /** The baseline's and this run's repetitions: [min, max]. */
  baselineRange?: [number, number];
  currentRange?: [number, number];
  /** Human-readable rule, e.g. `-25%` or `≤ 0`. */
  tolerance: string;
  /** current ÷ baseline − 1, for ratio and info metrics with a non-zero baseline. */
  change?: number;
  verdict: Verdict;
}

export interface CompareOptions {
  /** Tolerance for ratio metrics the baseline does not give one for. */
  ratioTolerance: number;
  /** Per-metric tolerance overrides (exact metric name → relative tolerance). */
  tolerances?: Record<string, number>;
  /** A baseline metric the current run lacks counts as a regression. Default false. */
  missingIsRegression?: boolean;
  /** False: the baseline is another machine's; rows are shown with their change, never judged. */
  judge?: boolean;
}

function pct(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}

function rangeOf(m: { value: number; min?: number; max?: number }): [number, number] {
  return [m.min ?? m.value, m.max ?? m.value];
}

/** Half the relative range of one side's repetitions: its ± noise. */
function halfSpread(m: { value: number; range: [number, number] }): number {
  const r = m.range[1] - m.range[0];
  return r === 0 ? 0 : m.value === 0 ? Infinity : r / Math.abs(m.value) / 2;
}

/**
 * The ratio rule on its own. A change counts only when all three hold:
 *  - the median moved by more than the tolerance;
 *  - the repetitions are apart, allowing one outlier on one side: every current repetition is
 *    beyond the baseline's median, or the current median is beyond every baseline repetition
 *    (with three each, a rank-sum statistic of at most 1: p ≤ 1/10 one-sided);
 *  - the change exceeds the measured noise: half the relative range of the quieter side.
 */
export function judgeRatio(base: { value: number; range: [number, number] }, cur: { value: number; range: [number, number] }, tolerance: number): 'ok' | 'regression' | 'improved' | 'noise' {
  if (!Number.isFinite(cur.value)) return 'regression';
  if (base.value === 0) return 'ok';
  const change = cur.value / base.value - 1;
  const noise = Math.min(halfSpread(base), halfSpread(cur));
  if (change < -tolerance) {
    const apart = cur.range[1] < base.value || cur.value < base.range[0];
    return apart && -change > noise ? 'regression' : 'noise';
  }
  if (change > tolerance) {
    const apart = cur.range[0] > base.value || cur.value > base.range[1];
    return apart && change > noise ? 'improved' : 'noise';
  }
  return 'ok';
}

function judge(name: string, b: BaselineMetric, cur: BenchMetric, o: CompareOptions): CompareRow {
  const row: CompareRow = { metric: name, kind: b.kind, unit: b.unit, baseline: b.value, current: cur.value, tolerance: '', verdict: 'ok' };
  if (b.kind === 'count') {
    const max = b.max ?? b.value;
    row.tolerance = `≤ ${max}`;
    row.verdict = cur.value <= max ? 'ok' : 'regression';
    if (o.judge === false) row.verdict = 'info';
    return row;
  }
  row.baselineRange = b.range ?? [b.value, b.value];
  row.currentRange = rangeOf(cur);
  if (b.value !== 0) row.change = cur.value / b.value - 1;
  if (b.kind === 'info' || o.judge === false) {
    row.tolerance = '—';
    row.verdict = 'info';
    return row;
  }
  const tol = o.tolerances?.[name] ?? b.tolerance ?? o.ratioTolerance;
  row.tolerance = `-${pct(tol)}`;
  row.verdict = judgeRatio({ value: b.value, range: row.baselineRange }, { value: cur.value, range: row.currentRange }, tol);
  return row;
}

export function compareToBaseline(current: readonly BenchMetric[], baseline: Pick<BaselineEntry, 'metrics'>, o: CompareOptions): CompareRow[] {
  const rows: CompareRow[] = [];
  const seen = new Set<string>();
  for (const m of current) {
    seen.add(m.name);
    const b = baseline.metrics[m.name];
    if (!b) {
      rows.push({ metric: m.name, kind: m.kind, unit: m.unit, current: m.value, currentRange: rangeOf(m), tolerance: '—', verdict: 'new' });
      continue;
    }
    rows.push(judge(m.name, b, m, o));
  }
  for (const [name, b] of Object.entries(baseline.metrics)) {
    if (seen.has(name)) continue;
    rows.push({ metric: name, kind: b.kind, unit: b.unit, baseline: b.value, tolerance: '—', verdict: o.missingIsRegression && o.judge !== false ? 'regression' : 'missing' });
  }
  return rows;
}

export function regressions(rows: readonly CompareRow[]): CompareRow[] {
  return rows.filter((r) => r.verdict === 'regression');
}

export function verdictCounts(rows: readonly CompareRow[]): Record<Verdict, number> {
  const c: Record<Verdict, number> = { ok: 0, regression: 0, improved: 0, noise: 0, new: 0, missing: 0, info: 0 };
  for (const r of rows) c[r.verdict]++;
  return c;
}

export interface SpreadSummary {
  /** Ratio metrics measured more than once. */
  metrics: number;
  /** The largest relative spread among them and which metric it was. */
  worst?: { metric: string; relative: number };
}

/** The widest (max − min) ÷ median among the ratio metrics of a run (what `--repeat` shows). */
export function ratioSpread(metrics: readonly BenchMetric[]): SpreadSummary {
  let worst: SpreadSummary['worst'];
  let n = 0;
  for (const m of metrics) {
    if (m.kind !== 'ratio' || (m.values?.length ?? 0) < 2 || m.min === undefined || m.max === undefined) continue;
    n++;
    const rel = m.max === m.min ? 0 : m.value === 0 ? Infinity : (m.max - m.min) / Math.abs(m.value);
    if (!worst || rel > worst.relative) worst = { metric: m.name, relative: rel };
  }
  return { metrics: n, ...(worst ? { worst } : {}) };
}

export function spreadLine(s: SpreadSummary, repeat: number): string {
  if (!s.worst) return `spread: one repetition (use --repeat 3 to measure it)`;
  return `spread over ${repeat} repetitions, (max − min) ÷ median, worst of ${s.metrics} ratio metrics: ${formatSpread(s.worst.relative)} (${s.worst.metric})`;
}
