/**
 * Current benchmark metrics against a baseline. One job: metrics → verdict rows.
 *
 * Ratios (higher is better) regress when they drop by more than their relative tolerance, and
 * count as improved when they rise by more than it. Counts (events lost, order violations,
 * torn frames with the seqlock) are compared exactly against their maximum. Info metrics are
 * shown, never judged. Because ratios divide by a reference from the same run, a uniformly
 * faster or slower machine leaves every verdict `ok`.
 */
import type { Baseline, BaselineMetric } from './baseline.ts';
import { DEFAULT_RATIO_TOLERANCE } from './baseline.ts';
import type { BenchKind, BenchMetric } from './metrics.ts';

export type Verdict = 'ok' | 'regression' | 'improved' | 'new' | 'missing' | 'info';

export interface CompareRow {
  metric: string;
  kind: BenchKind;
  unit: string;
  baseline?: number;
  current?: number;
  /** Human-readable rule, e.g. `-25%` or `≤ 0`. */
  tolerance: string;
  /** current ÷ baseline − 1, for ratio and info metrics with a non-zero baseline. */
  change?: number;
  verdict: Verdict;
}

export interface CompareOptions {
  /** Tolerance for ratio metrics the baseline does not give one for. */
  ratioTolerance?: number;
  /** Per-metric tolerance overrides (exact metric name → relative tolerance). */
  tolerances?: Record<string, number>;
  /** A baseline metric the current run lacks counts as a regression. Default false. */
  missingIsRegression?: boolean;
}

function pct(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}

function judge(name: string, b: BaselineMetric, cur: number, o: CompareOptions): CompareRow {
  const row: CompareRow = { metric: name, kind: b.kind, unit: b.unit, baseline: b.value, current: cur, tolerance: '', verdict: 'ok' };
  if (b.kind === 'count') {
    const max = b.max ?? b.value;
    row.tolerance = `≤ ${max}`;
    row.verdict = cur <= max ? 'ok' : 'regression';
    return row;
  }
  if (b.value !== 0) row.change = cur / b.value - 1;
  if (b.kind === 'info') {
    row.tolerance = '—';
    row.verdict = 'info';
    return row;
  }
  const tol = o.tolerances?.[name] ?? b.tolerance ?? o.ratioTolerance ?? DEFAULT_RATIO_TOLERANCE;
  row.tolerance = `-${pct(tol)}`;
  if (!Number.isFinite(cur) || cur < b.value * (1 - tol)) row.verdict = 'regression';
  else if (cur > b.value * (1 + tol)) row.verdict = 'improved';
  return row;
}

export function compareToBaseline(current: readonly BenchMetric[], baseline: Baseline, o: CompareOptions = {}): CompareRow[] {
  const rows: CompareRow[] = [];
  const seen = new Set<string>();
  for (const m of current) {
    seen.add(m.name);
    const b = baseline.metrics[m.name];
    if (!b) {
      rows.push({ metric: m.name, kind: m.kind, unit: m.unit, current: m.value, tolerance: '—', verdict: 'new' });
      continue;
    }
    rows.push(judge(m.name, b, m.value, o));
  }
  for (const [name, b] of Object.entries(baseline.metrics)) {
    if (seen.has(name)) continue;
    rows.push({ metric: name, kind: b.kind, unit: b.unit, baseline: b.value, tolerance: '—', verdict: o.missingIsRegression ? 'regression' : 'missing' });
  }
  return rows;
}

export function regressions(rows: readonly CompareRow[]): CompareRow[] {
  return rows.filter((r) => r.verdict === 'regression');
}

export function verdictCounts(rows: readonly CompareRow[]): Record<Verdict, number> {
  const c: Record<Verdict, number> = { ok: 0, regression: 0, improved: 0, new: 0, missing: 0, info: 0 };
  for (const r of rows) c[r.verdict]++;
  return c;
}
