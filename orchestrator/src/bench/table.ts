/** Benchmark comparison as a Markdown or plain-text table. One job: CompareRow[] → text. */
import { formatNumber } from '../report/metrics.ts';
import { markdownTable, textTable, type TableSpec } from '../report/table.ts';
import type { CompareRow } from './compare.ts';
import { verdictCounts } from './compare.ts';
import { formatSpread } from './stats.ts';

const MARK: Record<CompareRow['verdict'], string> = {
  ok: 'ok',
  regression: 'REGRESSION',
  improved: 'improved',
  new: 'new',
  noise: 'within noise',
  missing: 'missing',
  info: 'info',
};

/** The current repetitions' (max − min) ÷ median, or — for one repetition. */
function spreadCell(r: CompareRow): string {
  const [lo, hi] = r.currentRange ?? [0, 0];
  if (r.current === undefined || r.currentRange === undefined || lo === hi) return r.currentRange && lo === hi ? '0' : '—';
  return formatSpread(r.current === 0 ? Infinity : (hi - lo) / Math.abs(r.current));
}

export interface BenchTableOptions {
  /** Leave out `info` rows. Default false. */
  hideInfo?: boolean;
}

function spec(rows: readonly CompareRow[], o: BenchTableOptions): TableSpec {
  const shown = o.hideInfo ? rows.filter((r) => r.verdict !== 'info') : rows;
  return {
    headers: ['metric', 'baseline', 'current', 'spread', 'change', 'tolerance', 'verdict'],
    align: ['left', 'right', 'right', 'right', 'right', 'right', 'left'],
    rows: shown.map((r) => [
      r.metric,
      formatNumber(r.baseline, 3),
      formatNumber(r.current, 3),
      spreadCell(r),
      r.change === undefined ? '—' : `${r.change >= 0 ? '+' : ''}${(r.change * 100).toFixed(1)}%`,
      r.tolerance,
      MARK[r.verdict],
    ]),
  };
}

export function benchTableMarkdown(rows: readonly CompareRow[], o: BenchTableOptions = {}): string {
  return markdownTable(spec(rows, o));
}

export function benchTableText(rows: readonly CompareRow[], o: BenchTableOptions = {}): string {
  return textTable(spec(rows, o));
}

/** One line: `3 ok, 1 regression, …` (zero counts left out). */
export function benchVerdictLine(rows: readonly CompareRow[]): string {
  const c = verdictCounts(rows);
  const parts = (Object.keys(c) as (keyof typeof c)[]).filter((k) => c[k] > 0).map((k) => `${c[k]} ${k}`);
  return parts.length === 0 ? 'no metrics' : parts.join(', ');
}
