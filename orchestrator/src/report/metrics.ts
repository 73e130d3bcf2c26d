/**
 * How reports and benchmarks read the probe's throughput results. One job: the naming
 * convention between guest-driver/linux/probe.c and the tables.
 *
 * Framebuffer cases (`hilbox-probe fb-throughput`): name `fb-<method>` (possibly renamed by the
 * orchestrator, e.g. with the fb mode appended), `details.method` ∈ copy|map|bytewise|qword|ram,
 * `details.seqlock` ∈ on|off|both, metrics `mb_per_s`, `frames_per_s`, `torn_frames`
 * (with the seqlock unless `seqlock` is off), `torn_frames_no_seqlock` (mode both), `cpu_time`.
 * The RAM reference is the case with method `ram` (same copy loop on ordinary RAM, same run).
 *
 * Mouse cases (`hilbox-probe events-throughput`): `details.mode` ∈ uring|uring-wq|poll|blocking,
 * `details.pending`, `details.ev_rate_hz`, `details.ev_bundle`; metrics `events_per_s`, `lost`,
 * `order_violations`, `latency_p50|p99|max` (ns), `cpu_time`. Parameters missing from `details`
 * are taken from a case name ending in `-r<rate>-b<bundle>-p<pending>`.
 *
 * Each metric is looked up under a list of names (the probe's first), so results written with
 * the longer names (`fb_copy_mb_per_s`, `events_lost`, …) read the same.
 */
import type { CaseResult } from './results.ts';

/** Metric → accepted names, preferred first. */
export const METRIC_NAMES = {
  // read bandwidth (every byte read, torn or not) first; the seqlocked phase's figure after
  fbMbPerS: ['read_mb_per_s', 'mb_per_s', 'fb_copy_mb_per_s'],
  ramMbPerS: ['ram_copy_mb_per_s'],
  framesPerS: ['frames_per_s'],
  tornFrames: ['torn_frames', 'torn_frames_seqlock'],
  tornFramesNoSeqlock: ['torn_frames_no_seqlock', 'torn_frames_unlocked'],
  cpuTime: ['cpu_time', 'cpu_ms'],
  eventsPerS: ['events_per_s'],
  eventsLost: ['lost', 'events_lost'],
  orderViolations: ['order_violations'],
  duplicates: ['duplicates'],
  latencyP50: ['latency_p50', 'latency_p50_us'],
  latencyP99: ['latency_p99', 'latency_p99_us'],
  latencyMax: ['latency_max', 'latency_max_us'],
} as const satisfies Record<string, readonly string[]>;
export type MetricKey = keyof typeof METRIC_NAMES;

/** The mouse delivery mode every other mode is compared with. */
export const POLLING_MODE = 'poll';
/** The fb copy method that reads ordinary RAM: the machine-speed reference. */
export const RAM_METHOD = 'ram';

export function metricValue(c: CaseResult, name: string): number | undefined {
  const m = c.metrics?.[name];
  return m && Number.isFinite(m.value) ? m.value : undefined;
}

/** The first of `key`'s names the case reports: name, value and unit. */
export function findMetric(c: CaseResult, key: MetricKey): { name: string; value: number; unit: string } | undefined {
  for (const name of METRIC_NAMES[key]) {
    const v = metricValue(c, name);
    if (v !== undefined) return { name, value: v, unit: c.metrics?.[name]?.unit ?? '' };
  }
  return undefined;
}

export function metric(c: CaseResult, key: MetricKey): number | undefined {
  return findMetric(c, key)?.value;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function isFbCase(c: CaseResult): boolean {
  return metric(c, 'fbMbPerS') !== undefined && (str(c.details?.method) !== undefined || c.name.startsWith('fb-') || metric(c, 'framesPerS') !== undefined);
}

export function isRamReference(c: CaseResult): boolean {
  return str(c.details?.method) === RAM_METHOD || /^fb-ram(?:-|$)/.test(c.name);
}

export function isMouseCase(c: CaseResult): boolean {
  return metric(c, 'eventsPerS') !== undefined;
}

/** RAM reference MB/s for an FB case: its own `ram_copy_mb_per_s`, else the RAM case of the same suite. */
export function ramReference(c: CaseResult, all: readonly CaseResult[]): number | undefined {
  const own = metric(c, 'ramMbPerS');
  if (own !== undefined) return own;
  for (const o of all) {
    if (o.suite !== c.suite || o.status === 'skip') continue;
    const v = isRamReference(o) ? metric(o, 'fbMbPerS') : metric(o, 'ramMbPerS');
    if (v !== undefined) return v;
  }
  return undefined;
}

/** fb copy MB/s ÷ RAM reference MB/s (machine-speed independent), when both are known. */
export function fbRatio(c: CaseResult, all: readonly CaseResult[]): number | undefined {
  const v = metric(c, 'fbMbPerS');
  const ref = ramReference(c, all);
  return v !== undefined && ref !== undefined && ref > 0 ? v / ref : undefined;
}

/** Torn frames with and without the seqlock, whichever the case measured. */
export function tornFrames(c: CaseResult): { seqlock?: number; noSeqlock?: number } {
  const first = metric(c, 'tornFrames');
  const second = metric(c, 'tornFramesNoSeqlock');
  const out: { seqlock?: number; noSeqlock?: number } = {};
  if (str(c.details?.seqlock) === 'off') {
    if (first !== undefined) out.noSeqlock = first;
    return out;
  }
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

const PARAMS_IN_NAME = /^(.*?)(?:-r(\d+))?(?:-b(\d+))?(?:-p(\d+))?$/;

export function mouseParams(c: CaseResult): MouseParams {
  const d = c.details ?? {};
  const m = PARAMS_IN_NAME.exec(c.name);
  const fromName = (i: number) => (m?.[i] !== undefined ? Number(m[i]) : undefined);
  const mode = str(d.mode) ?? (m?.[1] ?? c.name).replace(/^(?:mouse|events)-/, '');
  const p: MouseParams = { mode };
  const rate = num(d.ev_rate_hz) ?? num(d.rate_hz) ?? fromName(2);
  const bundle = num(d.ev_bundle) ?? num(d.bundle) ?? fromName(3);
  const pending = num(d.pending) ?? fromName(4);
  if (rate !== undefined) p.rateHz = rate;
  if (bundle !== undefined) p.bundle = bundle;
  if (pending !== undefined) p.pending = pending;
  return p;
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
