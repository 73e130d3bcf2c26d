/**
 * Metric names the reports and the benchmarks read from case results, and the accessors that
 * find a case's parameters. One job: the naming convention between probes and reports.
 *
 * Framebuffer throughput cases (suite `throughput`, one case per copy method, e.g.
 * `fb-read-direct`, `fb-mmap-direct`, `fb-ioctl-mmio`) report `fb_copy_mb_per_s` and optionally
 * the other FB metrics; the RAM reference (same copy loop on ordinary RAM, same run) is
 * `ram_copy_mb_per_s`, on the FB case itself or on a case of its own (e.g. `ram-reference`).
 *
 * Mouse cases report `events_per_s` and the loss/order/latency metrics; their parameters are in
 * `details` (`mode`, `rate_hz`, `bundle`, `pending`), or as metrics of those names, or in the
 * case name as `…-r<rate>-b<bundle>-p<pending>` with the mode the name's leading part.
 */
import type { CaseResult } from './results.ts';

export const METRIC = {
  fbCopyMbPerS: 'fb_copy_mb_per_s',
  ramCopyMbPerS: 'ram_copy_mb_per_s',
  framesPerS: 'frames_per_s',
  tornFramesSeqlock: 'torn_frames_seqlock',
  tornFramesUnlocked: 'torn_frames_unlocked',
  cpuMs: 'cpu_ms',
  eventsPerS: 'events_per_s',
  eventsLost: 'events_lost',
  orderViolations: 'order_violations',
  latencyP50Us: 'latency_p50_us',
  latencyP99Us: 'latency_p99_us',
  latencyMaxUs: 'latency_max_us',
} as const;

/** The mouse delivery mode every other mode is compared with. */
export const POLLING_MODE = 'polling';

export function metricValue(c: CaseResult, name: string): number | undefined {
  const m = c.metrics?.[name];
  return m && Number.isFinite(m.value) ? m.value : undefined;
}

export function metricUnit(c: CaseResult, name: string): string | undefined {
  return c.metrics?.[name]?.unit;
}

export function isFbCase(c: CaseResult): boolean {
  return metricValue(c, METRIC.fbCopyMbPerS) !== undefined;
}

export function isMouseCase(c: CaseResult): boolean {
  return metricValue(c, METRIC.eventsPerS) !== undefined;
}

/** RAM reference MB/s for an FB case: its own, else the first one reported in `all`. */
export function ramReference(c: CaseResult, all: readonly CaseResult[]): number | undefined {
  const own = metricValue(c, METRIC.ramCopyMbPerS);
  if (own !== undefined) return own;
  for (const o of all) {
    const v = metricValue(o, METRIC.ramCopyMbPerS);
    if (v !== undefined && o.suite === c.suite) return v;
  }
  return undefined;
}

/** fb copy MB/s ÷ RAM reference MB/s (machine-speed independent), when both are known. */
export function fbRatio(c: CaseResult, all: readonly CaseResult[]): number | undefined {
  const v = metricValue(c, METRIC.fbCopyMbPerS);
  const ref = ramReference(c, all);
  return v !== undefined && ref !== undefined && ref > 0 ? v / ref : undefined;
}

export interface MouseParams {
  mode: string;
  rateHz?: number;
  bundle?: number;
  pending?: number;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

const PARAMS_IN_NAME = /^(.*?)(?:-r(\d+))?(?:-b(\d+))?(?:-p(\d+))?$/;

export function mouseParams(c: CaseResult): MouseParams {
  const d = c.details ?? {};
  const m = PARAMS_IN_NAME.exec(c.name);
  const fromName = (i: number) => (m?.[i] !== undefined ? Number(m[i]) : undefined);
  const mode = typeof d.mode === 'string' ? d.mode : (m?.[1] ?? c.name).replace(/^mouse-/, '');
  const p: MouseParams = { mode };
  const rate = num(d.rate_hz) ?? metricValue(c, 'rate_hz') ?? fromName(2);
  const bundle = num(d.bundle) ?? metricValue(c, 'bundle') ?? fromName(3);
  const pending = num(d.pending) ?? metricValue(c, 'pending') ?? fromName(4);
  if (rate !== undefined) p.rateHz = rate;
  if (bundle !== undefined) p.bundle = bundle;
  if (pending !== undefined) p.pending = pending;
  return p;
}

/** The polling case with the same rate and bundle (pending is a property of the other mode). */
export function pollingCounterpart(c: CaseResult, all: readonly CaseResult[]): CaseResult | undefined {
  const p = mouseParams(c);
  if (p.mode === POLLING_MODE) return undefined;
  return all.find((o) => {
    if (!isMouseCase(o)) return false;
    const q = mouseParams(o);
    return q.mode === POLLING_MODE && q.rateHz === p.rateHz && q.bundle === p.bundle;
  });
}

/** events/s ÷ polling events/s at the same rate and bundle. */
export function mouseRatio(c: CaseResult, all: readonly CaseResult[]): number | undefined {
  const base = pollingCounterpart(c, all);
  if (!base) return undefined;
  const v = metricValue(c, METRIC.eventsPerS);
  const b = metricValue(base, METRIC.eventsPerS);
  return v !== undefined && b !== undefined && b > 0 ? v / b : undefined;
}

/** Compact number formatting for tables. */
export function formatNumber(v: number | undefined, digits = 2): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  return v.toFixed(digits);
}
