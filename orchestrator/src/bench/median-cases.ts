/**
 * The cases of repeated runs as one: every numeric metric replaced by its median over the
 * repetitions that measured it, the status the worst one seen. One job: let the event tables
 * (mouse rows, ceiling) of `hilbox bench --repeat N` show what the verdict is built on — the
 * median — instead of whichever repetition happened to be last.
 */
import type { CaseResult, CaseStatus } from '../report/results.ts';
import { median } from './stats.ts';

const WORST: readonly CaseStatus[] = ['fail', 'skip', 'pass'];

function key(c: CaseResult): string {
  return `${c.suite}/${c.name}`;
}

/** The last repetition's cases, each with per-metric medians over `runs` (same case names). */
export function medianCases(runs: readonly (readonly CaseResult[])[]): CaseResult[] {
  const last = runs.at(-1) ?? [];
  const byKey = new Map<string, CaseResult[]>();
  for (const run of runs) for (const c of run) byKey.set(key(c), [...(byKey.get(key(c)) ?? []), c]);
  return last.map((c) => {
    const all = byKey.get(key(c)) ?? [c];
    const metrics: NonNullable<CaseResult['metrics']> = {};
    for (const [name, m] of Object.entries(c.metrics ?? {})) {
      const values = all.map((x) => x.metrics?.[name]?.value).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
      metrics[name] = { value: values.length ? median(values) : m.value, unit: m.unit };
    }
    const status = WORST.find((s) => all.some((x) => x.status === s)) ?? c.status;
    return { ...c, status, metrics };
  });
}
