/**
 * Benchmark history: every run's bench.json kept in one directory, and the trend of each metric
 * over the commits measured. One job: append a record, read them back, series per metric.
 * A record is the run's bench.json itself (`hilbox-bench/2`: mode, machine fingerprint, commit,
 * environment, every metric's median, min, max and repetitions). The trend is taken over the
 * records of one mode and one machine fingerprint only — figures of other machines or the other
 * mode are not comparable and are left out (and counted).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CaseResult } from '../report/results.ts';
import type { BenchMode } from './fingerprint.ts';
import type { BenchMetric } from './metrics.ts';

export const BENCH_SCHEMA = 'hilbox-bench/2' as const;

export interface BenchRecord {
  schema: typeof BENCH_SCHEMA;
  scenario: string;
  mode: BenchMode;
  /** icount shift in deterministic mode. */
  icountShift?: number;
  repeat: number;
  createdAt: string;
  commit?: string;
  dirty?: boolean;
  fingerprint: string;
  environment: Record<string, unknown>;
  metrics: BenchMetric[];
  cases?: CaseResult[];
}

function isRecord(x: unknown): x is BenchRecord {
  const r = x as Partial<BenchRecord> | null;
  return !!r && r.schema === BENCH_SCHEMA && typeof r.createdAt === 'string' && typeof r.fingerprint === 'string' && (r.mode === 'wall' || r.mode === 'deterministic') && Array.isArray(r.metrics);
}

/** The file name a record gets: sortable by time, naming mode and commit. */
export function historyFileName(r: Pick<BenchRecord, 'createdAt' | 'mode' | 'commit' | 'dirty'>): string {
  const stamp = r.createdAt.replace(/[:.]/g, '-');
  return `${stamp}-${r.mode}-${(r.commit ?? 'nocommit').slice(0, 10)}${r.dirty ? '-dirty' : ''}.json`;
}

/** Writes the record into `dir` (created) without its cases (they stay in the run's bench.json); returns the path. */
export function appendHistory(dir: string, r: BenchRecord): string {
  mkdirSync(dir, { recursive: true });
  const { cases: _cases, ...kept } = r;
  const path = join(dir, historyFileName(r));
  writeFileSync(path, `${JSON.stringify(kept, null, 2)}\n`);
  return path;
}

export interface History {
  records: BenchRecord[];
  /** Files that are not hilbox-bench/2 records (named, so nothing is dropped silently). */
  unreadable: string[];
}

/** Every record in `dir`, oldest first; a missing directory is an empty history. */
export function readHistory(dir: string): History {
  if (!existsSync(dir)) return { records: [], unreadable: [] };
  const records: BenchRecord[] = [];
  const unreadable: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
    try {
      const data: unknown = JSON.parse(readFileSync(join(dir, f), 'utf8'));
      if (isRecord(data)) records.push(data);
      else unreadable.push(f);
    } catch {
      unreadable.push(f);
    }
  }
  records.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  return { records, unreadable };
}

export interface TrendPoint {
  /** Short commit (+ `+` when the tree was dirty), or the time when there is no commit. */
  label: string;
  createdAt: string;
  value: number;
  min: number;
  max: number;
}

export interface Trend {
  metric: string;
  unit: string;
  points: TrendPoint[];
}

export interface TrendSelection {
  mode: BenchMode;
  fingerprint: string;
  /** Metric kinds to keep (default: ratio). */
  kinds?: readonly BenchMetric['kind'][];
}

/** Series per metric over the records of one mode and machine, oldest first; plus how many records were left out. */
export function trends(records: readonly BenchRecord[], sel: TrendSelection): { trends: Trend[]; excluded: number } {
  const kinds = sel.kinds ?? ['ratio'];
  const kept = records.filter((r) => r.mode === sel.mode && r.fingerprint === sel.fingerprint);
  const byMetric = new Map<string, Trend>();
  for (const r of kept) {
    const label = r.commit ? `${r.commit.slice(0, 7)}${r.dirty ? '+' : ''}` : r.createdAt.slice(5, 16);
    for (const m of r.metrics) {
      if (!kinds.includes(m.kind)) continue;
      let t = byMetric.get(m.name);
      if (!t) byMetric.set(m.name, (t = { metric: m.name, unit: m.unit, points: [] }));
      t.points.push({ label, createdAt: r.createdAt, value: m.value, min: m.min ?? m.value, max: m.max ?? m.value });
    }
  }
  return { trends: [...byMetric.values()], excluded: records.length - kept.length };
}
