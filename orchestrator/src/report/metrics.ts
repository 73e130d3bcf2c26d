/**
 * How reports and benchmarks read throughput cases. One job: case parameters and metrics →
 * the figures of the tables. Nothing is parsed out of a case name: every case carries its
 * parameters in `params` (set by the suite that planned it) and each metric has one spelling
 * (report/metric-names.ts).
 *
 * Framebuffer cases: `params.method` ∈ copy|map|bytewise|qword|ram, `params.fb_mode` (hilbox's
 * BAR2) or `params.peer` (another device's BAR, e.g. ivshmem-plain); metrics `read_mb_per_s`
 * (bytes of whole frames read per second spent reading, torn or not), `ram_mb_per_s` (the RAM
 * reference, read by read in the same loop of the same case), `frames_per_s`, `torn_frames`
 * (with the seqlock), `torn_frames_no_seqlock`, `cpu_time` (guest-driver/INTERFACE.md §6). A
 * case without its own reference (results of older probes) is compared with the case of method
 * `ram` of the same run.
 *
 * Mouse cases: `params.mode` ∈ inverted-call|polling|shared-ring|host-fed, `params.rate_hz`,
 * `params.bundle`, `params.pending`; metrics `events_per_s`, `lost`, `order_violations`,
 * `duplicates`, `latency_p50|p99|max` (ns), `records_per_completion`, `cpu_us_per_1000_events`,
 * `cpu_time`.
 */
import type { CaseResult } from './results.ts';

/** The metric each table column reads. */
export const METRIC = {
  fbMbPerS: 'read_mb_per_s',
  ramMbPerS: 'ram_mb_per_s',
  framesPerS: 'frames_per_s',
  tornFrames: 'torn_frames',
  tornFramesNoSeqlock: 'torn_frames_no_seqlock',
  cpuTime: 'cpu_time',
  eventsPerS: 'events_per_s',
  eventsLost: 'lost',
  orderViolations: 'order_violations',
  duplicates: 'duplicates',
  latencyP50: 'latency_p50',
  latencyP99: 'latency_p99',
  latencyMax: 'latency_max',
  recordsPerCompletion: 'records_per_completion',
  cpuPer1000Events: 'cpu_us_per_1000_events',
  deviceDrops: 'device_drops',
  wakeupsPerS: 'wakeups_per_s',
} as const satisfies Record<string, string>;
export type MetricKey = keyof typeof METRIC;

/** Mouse delivery modes (`params.mode`); every other mode is compared with polling. */
export const MOUSE_MODES = ['inverted-call', 'polling', 'shared-ring', 'host-fed'] as const;
export type MouseMode = (typeof MOUSE_MODES)[number];
export const POLLING_MODE: MouseMode = 'polling';
/** The fb copy method that reads ordinary RAM: the machine-speed reference. */
export const RAM_METHOD = 'ram';

export function metricValue(c: CaseResult, name: string): number | undefined {
  const m = c.metrics?.[name];
  return m && Number.isFinite(m.value) ? m.value : undefined;
}

/** The metric behind `key`, with its name and unit, when the case reports it. */
export function findMetric(c: CaseResult, key: MetricKey): { name: string; value: number; unit: string } | undefined {
  const name = METRIC[key];
  const v = metricValue(c, name);
  return v === undefined ? undefined : { name, value: v, unit: c.metrics?.[name]?.unit ?? '' };
}

export function metric(c: CaseResult, key: MetricKey): number | undefined {
  return metricValue(c, METRIC[key]);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function isFbCase(c: CaseResult): boolean {
  return str(c.params?.method) !== undefined && metric(c, 'fbMbPerS') !== undefined;
}

export function isRamReference(c: CaseResult): boolean {
  return str(c.params?.method) === RAM_METHOD;
}

export function isMouseCase(c: CaseResult): boolean {
  return (MOUSE_MODES as readonly string[]).includes(str(c.params?.mode) ?? '') && metric(c, 'eventsPerS') !== undefined;
}

/**
 * RAM reference MB/s for an FB case: its own, measured read by read in the same loop; else the
 * RAM case of the same suite and run.
 */
export function ramReference(c: CaseResult, all: readonly CaseResult[]): number | undefined {
  const own = metric(c, 'ramMbPerS');
  if (own !== undefined && own > 0) return own;
  for (const o of all) {
    if (o.suite !== c.suite || o.status === 'skip' || !isRamReference(o)) continue;
    const v = metric(o, 'fbMbPerS');
    if (v !== undefined) return v;
  }
  return undefined;
}

/** fb read MB/s ÷ RAM reference MB/s (machine-speed independent), when both are known. */
export function fbRatio(c: CaseResult, all: readonly CaseResult[]): number | undefined {
  const v = metric(c, 'fbMbPerS');
  const ref = ramReference(c, all);
  return v !== undefined && ref !== undefined && ref > 0 ? v / ref : undefined;
}

/** Torn frames with and without the seqlock, whichever the case measured. */
export function tornFrames(c: CaseResult): { seqlock?: number; noSeqlock?: number } {
  const out: { seqlock?: number; noSeqlock?: number } = {};
  const first = metric(c, 'tornFrames');
  const second = metric(c, 'tornFramesNoSeqlock');
  if (first !== undefined) out.seqlock = first;
  if (second !== undefined) out.noSeqlock = second;
  return out;
}

export interface MouseParams {
  mode: string;
  rateHz?: number;
  bundle?: number;
  pending?: number;
}

export function mouseParams(c: CaseResult): MouseParams {
  const p = c.params ?? {};
  const out: MouseParams = { mode: str(p.mode) ?? '' };
  const rate = num(p.rate_hz);
  const bundle = num(p.bundle);
  const pending = num(p.pending);
  if (rate !== undefined) out.rateHz = rate;
  if (bundle !== undefined) out.bundle = bundle;
  if (pending !== undefined) out.pending = pending;
  return out;
}

/** The polling case with the same rate and bundle (pending is a property of the other modes). */
export function pollingCounterpart(c: CaseResult, all: readonly CaseResult[]): CaseResult | undefined {
  const p = mouseParams(c);
  if (p.mode === POLLING_MODE) return undefined;
  return all.find((o) => {
    if (!isMouseCase(o) || o.status === 'skip') return false;
    const q = mouseParams(o);
    return q.mode === POLLING_MODE && q.rateHz === p.rateHz && q.bundle === p.bundle;
  });
}

/** events/s ÷ polling events/s at the same rate and bundle. */
export function mouseRatio(c: CaseResult, all: readonly CaseResult[]): number | undefined {
  const base = pollingCounterpart(c, all);
  if (!base) return undefined;
  const v = metric(c, 'eventsPerS');
  const b = metric(base, 'eventsPerS');
  return v !== undefined && b !== undefined && b > 0 ? v / b : undefined;
}

const TIME_SCALE_TO_US: Record<string, number> = { ns: 1e-3, us: 1, 'µs': 1, ms: 1e3, s: 1e6 };
const TIME_SCALE_TO_S: Record<string, number> = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, ms: 1e-3, s: 1 };

/** A time metric in µs (latencies), converting from its unit; µs assumed when the unit is unknown. */
export function microseconds(c: CaseResult, key: MetricKey): number | undefined {
  const f = findMetric(c, key);
  if (!f) return undefined;
  return f.value * (TIME_SCALE_TO_US[f.unit] ?? 1);
}

/** A time metric in seconds (CPU time), converting from its unit; s assumed when unknown. */
export function seconds(c: CaseResult, key: MetricKey): number | undefined {
  const f = findMetric(c, key);
  if (!f) return undefined;
  return f.value * (TIME_SCALE_TO_S[f.unit] ?? 1);
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
