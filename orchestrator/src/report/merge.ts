/**
 * Reports of several parts as one. One job: RunResults of the scenarios of one run (`hilbox
 * matrix`, `hilbox run A B`) or of the shards of one run (`hilbox merge`) → one RunResults, the
 * same schema a single run writes (docs/results-schema.md). Shards that do not belong together
 * — another run's shard, a shard given twice, a case reported twice — are refused
 * (UsageError, exit 2) naming the directories; cases no shard reported become `fail` cases
 * saying which shards are missing.
 */
import { UsageError } from '../core/errors.ts';
import { RESULTS_SCHEMA, buildRunResults, type CaseResult, type MergedInfo, type MergedShard, type RunResults, type ScenarioInfo, type ShardInfo } from './results.ts';

/** The scenarios a report covers. */
export function scenariosOf(r: RunResults): ScenarioInfo[] {
  return r.scenarios ?? [{ name: r.scenario, guest: r.guest }];
}

/** The report's cases, each naming its scenario. */
export function casesWithScenario(r: RunResults): CaseResult[] {
  return r.cases.map((c) => ({ ...c, scenario: c.scenario ?? r.scenario }));
}

export interface Assembly {
  scenarios: readonly ScenarioInfo[];
  /** Every case names its scenario. */
  cases: readonly CaseResult[];
  startedAt: Date | string;
  durationMs: number;
  environment: Record<string, unknown>;
  shard?: ShardInfo;
  merged?: MergedInfo;
}

/**
 * One report: a single scenario's looks exactly like `hilbox run`'s (no per-case `scenario`);
 * several scenarios' lists them in `scenarios` and tag each case.
 */
export function assembleResults(a: Assembly): RunResults {
  const single = a.scenarios.length === 1 ? a.scenarios[0]! : undefined;
  const cases = single ? a.cases.map(({ scenario: _s, ...c }) => c) : a.cases.map((c) => ({ ...c }));
  const guests = [...new Set(a.scenarios.map((s) => s.guest))];
  const r = buildRunResults(
    {
      scenario: single ? single.name : a.scenarios.map((s) => s.name).join(', '),
      guest: single ? single.guest : guests.join(', '),
      startedAt: a.startedAt,
      durationMs: a.durationMs,
      environment: a.environment,
    },
    cases,
  );
  if (!single) r.scenarios = a.scenarios.map((s) => ({ ...s }));
  if (a.shard) r.shard = a.shard;
  if (a.merged) r.merged = a.merged;
  return r;
}

/** Per-scenario results of one run (one machine, one shard or all) → one report. */
export function combineScenarios(parts: readonly RunResults[], o: { startedAt: Date; durationMs: number; environment: Record<string, unknown>; shard?: ShardInfo; scenarios?: ScenarioInfo[] }): RunResults {
  return assembleResults({
    scenarios: o.scenarios ?? parts.flatMap(scenariosOf),
    cases: parts.flatMap(casesWithScenario),
    startedAt: o.startedAt,
    durationMs: o.durationMs,
    environment: o.environment,
    ...(o.shard ? { shard: o.shard } : {}),
  });
}

/** One shard's report and where it came from (its artifact directory). */
export interface ShardReport {
  from: string;
  results: RunResults;
}

/** What a shard cost, from its own results: its boots (`run/boot`), its cases, its whole run. */
export function shardCost(p: ShardReport): MergedShard {
  const boots = p.results.cases.filter((c) => c.suite === 'run' && c.name === 'boot');
  const cases = p.results.cases.filter((c) => c.suite !== 'run');
  return {
    index: p.results.shard!.index,
    from: p.from,
    boots: boots.length,
    bootMs: boots.reduce((n, c) => n + (c.metrics?.['boot_to_first_ssh_command_ms']?.value ?? 0), 0),
    cases: cases.length,
    caseMs: cases.reduce((n, c) => n + (c.durationMs ?? 0), 0),
    durationMs: p.results.durationMs,
  };
}

const idOf = (c: CaseResult): string => `${c.scenario}/${c.suite}/${c.name}`;

function describeRun(p: ShardReport): string {
  return `${p.from} (shard ${p.results.shard!.index}/${p.results.shard!.count} of run ${p.results.shard!.plan}, scenarios ${scenariosOf(p.results).map((s) => s.name).join(', ')})`;
}

/** Refuses what cannot be merged; returns the shards sorted by index. */
function checkShards(parts: readonly ShardReport[]): ShardReport[] {
  if (parts.length === 0) throw new UsageError('merge: no artifact directories given; allowed: one or more directories written by `hilbox run --shard K/N`');
  for (const p of parts) {
    if (p.results.schema !== RESULTS_SCHEMA) throw new UsageError(`${p.from}: results.json has schema ${JSON.stringify(p.results.schema)}; allowed: ${RESULTS_SCHEMA}`);
    if (!p.results.shard) throw new UsageError(`${p.from}: results.json is not a shard's (no "shard" field); allowed: directories written by \`hilbox run --shard K/N\``);
  }
  const first = parts[0]!;
  for (const p of parts.slice(1)) {
    if (p.results.shard!.plan !== first.results.shard!.plan || p.results.shard!.count !== first.results.shard!.count) {
      throw new UsageError(`${describeRun(p)} is not a shard of the same run as ${describeRun(first)}: the scenarios, their contents or the shard count differ`);
    }
  }
  const byIndex = new Map<number, ShardReport>();
  for (const p of parts) {
    const seen = byIndex.get(p.results.shard!.index);
    if (seen) throw new UsageError(`shard ${p.results.shard!.index}/${p.results.shard!.count} given twice: ${seen.from} and ${p.from}`);
    byIndex.set(p.results.shard!.index, p);
  }
  return [...byIndex.values()].sort((a, b) => a.results.shard!.index - b.results.shard!.index);
}

/**
 * The shards of one run → one report, cases in plan order. Each shard's own host cases (suite
 * `run`: its boot, or the error that ended it) are kept, named `<case>-shard-K-of-N`.
 */
export function mergeShards(parts: readonly ShardReport[]): RunResults {
  const shards = checkShards(parts);
  const info = shards[0]!.results.shard!;
  const planned = new Set(info.planned);
  const reportedBy = new Map<string, ShardReport>();
  const host: CaseResult[] = [];
  const byId = new Map<string, CaseResult>();
  for (const p of shards) {
    const k = p.results.shard!.index;
    for (const c of casesWithScenario(p.results)) {
      if (c.suite === 'run') {
        host.push({ ...c, name: `${c.name}-shard-${k}-of-${info.count}`, params: { ...(c.params ?? {}), shard: `${k}/${info.count}` } });
        continue;
      }
      const id = idOf(c);
      if (!planned.has(id)) throw new UsageError(`${p.from}: case ${id} is not in the run's plan; the shard's results.json was changed or comes from another run`);
      const other = reportedBy.get(id);
      if (other) throw new UsageError(`case ${id} reported twice: by ${other.from} and by ${p.from}`);
      reportedBy.set(id, p);
      byId.set(id, c);
    }
  }
  const present = new Set(shards.map((p) => p.results.shard!.index));
  const missing = Array.from({ length: info.count }, (_, i) => i + 1).filter((k) => !present.has(k));
  const why = missing.length > 0
    ? `not reported: no results for shard${missing.length > 1 ? 's' : ''} ${missing.map((k) => `${k}/${info.count}`).join(', ')}`
    : 'not reported by its shard (the shard ended early; see its run cases)';
  const cases: CaseResult[] = [...host];
  for (const id of info.planned) {
    const c = byId.get(id);
    if (c) {
      cases.push(c);
      continue;
    }
    const [scenario, suite, ...rest] = id.split('/');
    cases.push({ scenario: scenario!, suite: suite!, name: rest.join('/'), status: 'fail', reason: why });
  }
  const starts = shards.map((p) => Date.parse(p.results.startedAt)).filter(Number.isFinite);
  return assembleResults({
    scenarios: info.scenarios,
    cases,
    startedAt: new Date(starts.length ? Math.min(...starts) : Date.now()),
    durationMs: Math.max(0, ...shards.map((p) => p.results.durationMs)),
    environment: shards[0]!.results.environment,
    merged: { plan: info.plan, count: info.count, shards: shards.map(shardCost), missing },
  });
}
