/**
 * The CPU table (suite `cpu`, the probe's fb-consume): one row per picture × BAR × method with
 * the guest CPU share needed to consume every frame, the frames missed and the torn frames
 * returned, with and without the seqlock. One job: cases → rows and a table. Read from `params`
 * and metrics only (report/metric-names.ts), never from case names.
 */
import type { CaseResult } from './results.ts';
import { formatNumber, metricValue } from './metrics.ts';
import type { TableSpec } from './table.ts';

export const CPU_SUITE = 'cpu';
const NO_SEQLOCK = '_no_seqlock';

export interface CpuPhase {
  cpuPercent?: number;
  published?: number;
  consumed?: number;
  missed?: number;
  torn?: number;
}

export interface CpuRow {
  name: string;
  /** `1920x1080@50` */
  picture: string;
  /** `direct`, `mmio 200 ns` */
  bar: string;
  method: string;
  status: CaseResult['status'];
  reason?: string;
  seqlock: CpuPhase;
  noSeqlock: CpuPhase;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function phase(c: CaseResult, sfx: string): CpuPhase {
  const get = (m: string) => metricValue(c, `${m}${sfx}`);
  const out: CpuPhase = {};
  const set = (k: keyof CpuPhase, v: number | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set('cpuPercent', get('cpu_percent'));
  set('published', get('frames_published'));
  set('consumed', get('frames_consumed'));
  set('missed', get('frames_missed'));
  set('torn', get('torn_frames'));
  return out;
}

export function isCpuCase(c: CaseResult): boolean {
  return c.suite === CPU_SUITE;
}

export function cpuRows(cases: readonly CaseResult[]): CpuRow[] {
  return cases.filter(isCpuCase).map((c) => {
    const p = c.params ?? {};
    const w = num(p.width), h = num(p.height), fps = num(p.fps), lat = num(p.mmio_latency_ns);
    const mode = typeof p.fb_mode === 'string' ? p.fb_mode : '?';
    return {
      name: c.name,
      picture: `${w ?? '?'}x${h ?? '?'}@${fps ?? '?'}`,
      bar: mode === 'mmio' ? `mmio ${lat ?? 0} ns` : mode,
      method: typeof p.method === 'string' ? p.method : '?',
      status: c.status,
      ...(c.reason ? { reason: c.reason } : {}),
      seqlock: phase(c, ''),
      noSeqlock: phase(c, NO_SEQLOCK),
    };
  });
}

const pct = (v: number | undefined): string => (v === undefined ? '—' : v >= 10 ? formatNumber(v, 0) : formatNumber(v, 1));
const missed = (p: CpuPhase): string => (p.missed === undefined ? '—' : `${formatNumber(p.missed)}/${formatNumber(p.published)}`);

const STATUS: Record<CaseResult['status'], string> = { pass: 'PASS', fail: 'FAIL', skip: 'skip' };

/** The table: CPU % of one CPU, missed/published and torn, seqlock on then off. */
export function cpuTableSpec(cases: readonly CaseResult[]): TableSpec {
  return {
    headers: ['picture', 'BAR', 'method', 'CPU % (seqlock)', 'missed', 'torn', 'CPU % (no seqlock)', 'missed', 'torn', 'status'],
    align: ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
    rows: cpuRows(cases).map((r) => [
      r.picture,
      r.bar,
      r.method,
      pct(r.seqlock.cpuPercent),
      missed(r.seqlock),
      formatNumber(r.seqlock.torn),
      pct(r.noSeqlock.cpuPercent),
      missed(r.noSeqlock),
      formatNumber(r.noSeqlock.torn),
      r.status === 'pass' ? STATUS.pass : `${STATUS[r.status]}${r.reason ? `: ${r.reason}` : ''}`,
    ]),
  };
}
