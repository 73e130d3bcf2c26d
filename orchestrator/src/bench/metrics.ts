/**
 * Benchmark metrics derived from a run's cases. One job: CaseResult[] → flat, named metrics
 * that can be compared across machines.
 *
 * - `ratio` metrics divide by a reference measured in the same run, so a faster or slower host
 *   moves numerator and denominator together: `<case>.fb_copy_ratio` (fb copy MB/s ÷ RAM copy
 *   MB/s), `<case>.events_ratio` (events/s ÷ polling events/s at the same rate and bundle),
 *   `<case>.delivery_ratio` (events/s ÷ the generator's rate). Higher is better.
 * - `count` metrics must not exceed a maximum: `<case>.events_lost`, `<case>.order_violations`,
 *   `<case>.torn_frames_seqlock`.
 * - `info` metrics (absolute MB/s, events/s, latencies) are recorded and shown, never judged.
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
        out.push({ name: `${c.name}.delivery_ratio`, value: eps / p.rateHz, kind: 'ratio', unit: '× rate' });
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
