/**
 * Benchmark metrics derived from a run's cases. One job: CaseResult[] → flat, named metrics
 * that can be compared across machines.
 *
 * - `ratio` metrics divide by a reference measured in the same run, so a faster or slower host
 *   moves numerator and denominator together: `<case>.fb_copy_ratio` (fb copy MB/s ÷ RAM copy
 *   MB/s), `<case>.events_ratio` (events/s ÷ polling events/s at the same rate and bundle).
 *   Higher is better.
 * - `count` metrics must not exceed a maximum: `<case>.events_lost`, `<case>.order_violations`,
 *   `<case>.torn_frames_seqlock`.
 * - `info` metrics (absolute MB/s, events/s, latencies, and `<case>.delivery_ratio` = events/s ÷
 *   the generator's rate, which a slow host can lower legitimately) are shown, never judged.
 */
import type { CaseResult } from '../report/results.ts';
import { METRIC, fbRatio, isFbCase, isMouseCase, metricValue, mouseParams, mouseRatio } from '../report/metrics.ts';

export type BenchKind = 'ratio' | 'count' | 'info';

export interface BenchMetric {
  name: string;
  value: number;
  kind: BenchKind;
  unit: string;
}

const COUNT_METRICS = [METRIC.eventsLost, METRIC.orderViolations, METRIC.tornFramesSeqlock] as const;
const INFO_METRICS: readonly [string, string][] = [
  [METRIC.fbCopyMbPerS, 'MB/s'],
  [METRIC.ramCopyMbPerS, 'MB/s'],
  [METRIC.framesPerS, 'frames/s'],
  [METRIC.eventsPerS, 'events/s'],
  [METRIC.latencyP50Us, 'µs'],
  [METRIC.latencyP99Us, 'µs'],
];

export function benchMetrics(cases: readonly CaseResult[]): BenchMetric[] {
  const out: BenchMetric[] = [];
  for (const c of cases) {
    if (c.status === 'skip') continue;
    if (isFbCase(c)) {
      const r = fbRatio(c, cases);
      if (r !== undefined) out.push({ name: `${c.name}.fb_copy_ratio`, value: r, kind: 'ratio', unit: '× RAM' });
    }
    if (isMouseCase(c)) {
      const r = mouseRatio(c, cases);
      if (r !== undefined) out.push({ name: `${c.name}.events_ratio`, value: r, kind: 'ratio', unit: '× polling' });
      const p = mouseParams(c);
      const eps = metricValue(c, METRIC.eventsPerS);
      if (p.rateHz !== undefined && p.rateHz > 0 && eps !== undefined) {
        out.push({ name: `${c.name}.delivery_ratio`, value: eps / p.rateHz, kind: 'info', unit: '× rate' });
      }
    }
    for (const m of COUNT_METRICS) {
      const v = metricValue(c, m);
      if (v !== undefined) out.push({ name: `${c.name}.${m}`, value: v, kind: 'count', unit: 'count' });
    }
    for (const [m, unit] of INFO_METRICS) {
      const v = metricValue(c, m);
      if (v !== undefined) out.push({ name: `${c.name}.${m}`, value: v, kind: 'info', unit: c.metrics?.[m]?.unit || unit });
    }
  }
  return out;
}

/**
 * Combines repeated runs (`hilbox bench --repeat N`): the median of each ratio/info metric, the
 * maximum of each count (a single lost event in any repetition counts). Order of first appearance.
 */
export function combineRepeats(runs: readonly (readonly BenchMetric[])[]): BenchMetric[] {
  const groups = new Map<string, BenchMetric[]>();
  for (const run of runs) {
    for (const m of run) {
      const g = groups.get(m.name);
      if (g) g.push(m);
      else groups.set(m.name, [m]);
    }
  }
  const out: BenchMetric[] = [];
  for (const [name, g] of groups) {
    const first = g[0];
    if (!first) continue;
    const values = g.map((m) => m.value).sort((a, b) => a - b);
    const mid = Math.floor(values.length / 2);
    const median = values.length % 2 === 1 ? (values[mid] ?? 0) : ((values[mid - 1] ?? 0) + (values[mid] ?? 0)) / 2;
    out.push({ name, kind: first.kind, unit: first.unit, value: first.kind === 'count' ? (values[values.length - 1] ?? 0) : median });
  }
  return out;
}
