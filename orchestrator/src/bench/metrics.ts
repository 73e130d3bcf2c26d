/**
 * Benchmark metrics derived from a run's cases. One job: CaseResult[] → flat, named metrics
 * that can be compared across machines.
 *
 * - `ratio` metrics divide by a reference measured in the same run, so a faster or slower host
 *   moves numerator and denominator together: `<case>.fb_copy_ratio` (fb read MB/s ÷ the RAM
 *   reference the case measured read by read in the same loop — the `ram` method's copy — or,
 *   for a case without one, ÷ the `ram` case's MB/s), `<case>.events_ratio` (events/s ÷ `polling` mode events/s at the
 *   same rate and bundle). Higher is better.
 * - `count` metrics must not exceed a maximum: `<case>.duplicates` (mouse cases),
 *   `<case>.torn_frames_seqlock` (fb cases that used the seqlock).
 * - `info` metrics (absolute MB/s, events/s, latencies, and `<case>.delivery_ratio` = events/s ÷
 *   the generator's rate, which a slow host can lower legitimately) are shown, never judged.
 */
import type { CaseResult } from '../report/results.ts';
import { isCpuCase } from '../report/cpu-table.ts';
import { fbRatio, findMetric, isFbCase, isMouseCase, isRamReference, metric, mouseParams, mouseRatio, seconds, tornFrames, type MetricKey } from '../report/metrics.ts';
import { median } from './stats.ts';

export type BenchKind = 'ratio' | 'count' | 'info';

export interface BenchMetric {
  name: string;
  /** One run's value; after combineRepeats the median (ratio, info) or the maximum (count). */
  value: number;
  kind: BenchKind;
  unit: string;
  /** After combineRepeats: the smallest and largest repetition, and every repetition in order. */
  min?: number;
  max?: number;
  values?: number[];
}

// Judged counts: a record delivered twice is a bug whatever the machine. Loss and completion
// order depend on host load under TCG (and order is restored by sequence number), so they are
// shown as info, not judged.
const COUNT_METRICS: readonly [MetricKey, string][] = [['duplicates', 'duplicates']];
const INFO_METRICS: readonly MetricKey[] = ['fbMbPerS', 'ramMbPerS', 'framesPerS', 'eventsPerS', 'eventsLost', 'orderViolations', 'latencyP50', 'latencyP99', 'cpuTime'];

export function benchMetrics(cases: readonly CaseResult[]): BenchMetric[] {
  const out: BenchMetric[] = [];
  for (const c of cases) {
    if (c.status === 'skip') continue;
    // The CPU table (suite cpu) is shown as its own table (bench/cpu-table.ts), not compared:
    // CPU shares under TCG follow host load, with no reference measured beside them.
    if (isCpuCase(c)) continue;
    if (isFbCase(c) && !isRamReference(c)) {
      const r = fbRatio(c, cases);
      if (r !== undefined) out.push({ name: `${c.name}.fb_copy_ratio`, value: r, kind: 'ratio', unit: '× RAM' });
      const torn = tornFrames(c).seqlock;
      if (torn !== undefined) out.push({ name: `${c.name}.torn_frames_seqlock`, value: torn, kind: 'count', unit: 'frames' });
    }
    if (isMouseCase(c)) {
      const r = mouseRatio(c, cases);
      if (r !== undefined) out.push({ name: `${c.name}.events_ratio`, value: r, kind: 'ratio', unit: '× polling' });
      const p = mouseParams(c);
      const eps = metric(c, 'eventsPerS');
      // The generator's rate is what a delivery ratio divides by; the host feed paces itself.
      if (p.mode !== 'host-fed' && p.rateHz !== undefined && p.rateHz > 0 && eps !== undefined) {
        out.push({ name: `${c.name}.delivery_ratio`, value: eps / p.rateHz, kind: 'info', unit: '× rate' });
      }
      for (const [key, name] of COUNT_METRICS) {
        const v = metric(c, key);
        if (v !== undefined) out.push({ name: `${c.name}.${name}`, value: v, kind: 'count', unit: 'count' });
      }
    }
    for (const key of INFO_METRICS) {
      const f = findMetric(c, key);
      if (f) out.push({ name: `${c.name}.${f.name}`, value: f.value, kind: 'info', unit: f.unit });
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
    const values = g.map((m) => m.value);
    const min = Math.min(...values);
    const max = Math.max(...values);
    out.push({ name, kind: first.kind, unit: first.unit, value: first.kind === 'count' ? max : median(values), min, max, values });
  }
  return out;
}

/**
 * Deterministic mode (icount, `shift`): guest instructions per frame read and per event
 * received, from the case's guest CPU time (each instruction is 2^shift ns of guest time, so CPU
 * time counts instructions; kernel work on the reader's behalf included). Lower is better;
 * shown as info. Only meaningful when the guest clock is the instruction counter.
 */
export function guestCostMetrics(cases: readonly CaseResult[], shift: number, windowSeconds: number): BenchMetric[] {
  const out: BenchMetric[] = [];
  const perNs = 2 ** -shift;
  for (const c of cases) {
    if (c.status === 'skip') continue;
    const cpu = seconds(c, 'cpuTime');
    if (cpu === undefined || !(windowSeconds > 0)) continue;
    const insns = cpu * 1e9 * perNs;
    if (isFbCase(c)) {
      const fps = metric(c, 'framesPerS');
      if (fps !== undefined && fps > 0) out.push({ name: `${c.name}.guest_insns_per_frame`, value: insns / (fps * windowSeconds), kind: 'info', unit: 'insns' });
    }
    if (isMouseCase(c)) {
      const eps = metric(c, 'eventsPerS');
      if (eps !== undefined && eps > 0) out.push({ name: `${c.name}.guest_insns_per_event`, value: insns / (eps * windowSeconds), kind: 'info', unit: 'insns' });
    }
  }
  return out;
}

/**
 * Metrics of cases driven by the host rather than by the guest clock (the host feed: the
 * orchestrator writes events when the host gets to it) cannot be deterministic under icount:
 * judged metrics of those cases become info.
 */
export function hostDrivenAsInfo(metrics: readonly BenchMetric[], cases: readonly CaseResult[]): BenchMetric[] {
  const hostDriven = new Set(cases.filter((c) => isMouseCase(c) && mouseParams(c).mode === 'host-fed').map((c) => c.name));
  return metrics.map((m) => (m.kind !== 'info' && hostDriven.has(m.name.slice(0, m.name.lastIndexOf('.'))) ? { ...m, kind: 'info' as const } : m));
}
