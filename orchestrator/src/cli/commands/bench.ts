/**
 * `hilbox bench [scenario]`: repeats the throughput cases, writes bench.json (every metric's
 * median, min, max and repetitions, an environment fingerprint, the commit), adds it to the
 * history directory, compares with the baseline of the same mode and machine (ratios measured in
 * the same run; a regression only when a change exceeds both the tolerance and the measured
 * noise), prints a table with the spread, writes bench.md, bench.png and the trend chart
 * trend.png, exits 1 on a regression.
 *  - default (wall clock): real time, TCG or KVM as the scenario says; repetitions show the noise.
 *  - `--deterministic`: TCG with `-icount shift=0,sleep=off,align=off`: the guest clock follows
 *    the instructions executed, so every figure is in guest time and repeats (SPEC §4.5).
 * `--update-baseline` records the measured metrics as the baseline of this mode and machine.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadScenario } from '../../session/boot.ts';
import { FULL_SCENARIO_PATH } from '../../scenario/load.ts';
import { runScenario } from '../../suites/run-scenario.ts';
import { benchMetrics, combineRepeats, guestCostMetrics, hostDrivenAsInfo, type BenchMetric } from '../../bench/metrics.ts';
import { buildBaselineEntry, chooseBaseline, DEFAULT_BASELINE_PATH, DEFAULT_RATIO_TOLERANCE, readBaseline, withEntry, writeBaseline, type BaselineFile } from '../../bench/baseline.ts';
import { compareToBaseline, ratioSpread, regressions, spreadLine } from '../../bench/compare.ts';
import { benchTableMarkdown, benchTableText, benchVerdictLine } from '../../bench/table.ts';
import { writeBenchChart } from '../../bench/chart.ts';
import { benchSuites, withoutCpuTable, writeCpuTable } from '../../bench/cpu-table.ts';
import { baselineKey, machineFingerprint, type BenchMode } from '../../bench/fingerprint.ts';
import { appendHistory, BENCH_SCHEMA, readHistory, trends, type BenchRecord } from '../../bench/history.ts';
import { trendMarkdown, writeTrendChart } from '../../bench/trend-chart.ts';
import { formatSpread } from '../../bench/stats.ts';
import { environmentDifferences, describeEnvironment } from '../../report/environment.ts';
import { ceilingSection, mouseSection, toSummaryMarkdown, toSummaryText } from '../../report/summary.ts';
import { markdownTable, textTable } from '../../report/table.ts';
import { medianCases } from '../../bench/median-cases.ts';
import type { CaseResult } from '../../report/results.ts';
import type { Scenario } from '../../scenario/schema.ts';
import { ExitCode } from '../exit-codes.ts';
import { exitCodeFor, UsageError } from '../errors.ts';
import type { Output } from '../output.ts';
import { defaultOutDir } from './run.ts';

export interface BenchArgs {
  scenario?: string;
  baseline?: string;
  updateBaseline: boolean;
  /** Default: 3 (wall clock), 1 (deterministic). */
  repeat?: number;
  deterministic: boolean;
  /** History directory (default ./hilbox-out/bench-history); false: keep no history. */
  history?: string | false;
  outDir?: string;
  json: boolean;
  out: Output;
}

/** Deterministic figures must repeat within this (ratio metrics, (max − min) ÷ median). */
export const DETERMINISTIC_SPREAD_LIMIT = 0.01;
export const DEFAULT_HISTORY_DIR = join('hilbox-out', 'bench-history');
/**
 * Guest seconds per measurement window in deterministic mode (at most; the scenario's if shorter).
 * The figures do not need long windows to settle, and guest time is slow where the guest traps
 * a lot: at shift 0 a BAR2 byte read in mmio mode costs a few ns of guest time and about a
 * microsecond of host time, so 2 s of byte-wise mmio reads would take minutes.
 */
export const DETERMINISTIC_SECONDS = 0.5;

/**
 * The scenario as `--deterministic` runs it: TCG, icount shift 0 unless the scenario gives one,
 * one vCPU (under icount the guest kernel does not bring up a second one).
 */
function deterministicScenario(s: Scenario): Scenario {
  if (s.accelerator === 'kvm') throw new UsageError(`--deterministic: scenario ${s.name}: accelerator: kvm; icount needs tcg (allowed: tcg, auto)`);
  const t = s.suites.throughput;
  return { ...s, accelerator: 'tcg', icount: s.icount ?? 0, cpus: 1, suites: { ...s.suites, throughput: { ...t, seconds: Math.min(t.seconds, DETERMINISTIC_SECONDS) } } };
}

export async function benchCommand(a: BenchArgs): Promise<number> {
  // Without a file: the full scenario (a benchmark wants every row; the default scenario samples them).
  const loaded = loadScenario(a.scenario ?? FULL_SCENARIO_PATH);
  const mode: BenchMode = a.deterministic || loaded.scenario.icount !== undefined ? 'deterministic' : 'wall';
  const scenario = mode === 'deterministic' ? deterministicScenario(loaded.scenario) : loaded.scenario;
  const { baseDir } = loaded;
  const repeat = a.repeat ?? (mode === 'wall' ? 3 : 1);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20) throw new UsageError(`--repeat ${repeat}: allowed 1..20`);
  const baselinePath = resolve(a.baseline ?? DEFAULT_BASELINE_PATH);
  const record = `hilbox bench${a.scenario ? ` ${a.scenario}` : ''}${mode === 'deterministic' ? ' --deterministic' : ''} --update-baseline`;
  let file: BaselineFile | undefined;
  if (existsSync(baselinePath)) file = readBaseline(baselinePath);
  else if (!a.updateBaseline) throw new UsageError(`no baseline at ${baselinePath}; record one with: ${record}`);
  if (!a.updateBaseline && file && !Object.values(file.baselines).some((e) => e.mode === mode)) {
    throw new UsageError(`${baselinePath} has no ${mode} baseline (it has: ${Object.keys(file.baselines).join(', ') || 'none'}); record one with: ${record}`);
  }
  const outDir = resolve(a.outDir ?? defaultOutDir(`bench-${scenario.name}${mode === 'deterministic' ? '-det' : ''}`));
  mkdirSync(outDir, { recursive: true });
  const historyDir = a.history === false ? undefined : resolve(a.history ?? DEFAULT_HISTORY_DIR);

  const runs: CaseResult[][] = [];
  let environment: Record<string, unknown> = {};
  for (let i = 1; i <= repeat; i++) {
    a.out.info(`repetition ${i}/${repeat} (${mode === 'deterministic' ? `deterministic: tcg, icount shift=${scenario.icount}` : 'wall clock'})`);
    // Every repetition boots cold: the fast-reset row compares its restore with a real boot, and
    // a bench's figures do not depend on whether an earlier run left a boot snapshot.
    const { results, error } = await runScenario({ scenario: { ...scenario, bootSnapshot: false }, baseDir, outDir: join(outDir, `run-${i}`), out: a.out, suites: mode === 'wall' ? benchSuites(scenario, i, repeat) : ['throughput'], measureReset: i === 1 });
    if (error !== undefined) {
      process.stderr.write(`hilbox bench: repetition ${i} failed: ${(error as Error).message}\n`);
      return exitCodeFor(error);
    }
    runs.push(results.cases);
    environment = results.environment;
    if (i === repeat) writeFileSync(join(outDir, 'summary.md'), toSummaryMarkdown(results));
    if (i === repeat && !a.json) process.stdout.write(`${toSummaryText(withoutCpuTable(results))}\n`);
  }
  if (mode === 'deterministic') environment = { ...environment, icount: `shift=${scenario.icount},sleep=off,align=off` };
  const perRun = (cases: CaseResult[]): BenchMetric[] => {
    const m = benchMetrics(cases);
    if (mode === 'wall') return m;
    return hostDrivenAsInfo([...m, ...guestCostMetrics(cases, scenario.icount ?? 0, scenario.suites.throughput.seconds)], cases);
  };
  const metrics = combineRepeats(runs.map(perRun));
  const cases = runs.at(-1) ?? [];
  // the event tables as the verdict sees them: medians over the repetitions
  const medianSections = repeat > 1 ? [mouseSection(medianCases(runs)), ceilingSection(medianCases(runs))].filter((x) => x !== undefined) : [];
  const medianTitle = (t: string): string => `${t} — median of ${repeat} repetitions (max µs: the median of each repetition's maximum)`;
  const fingerprint = machineFingerprint(environment);
  const commit = typeof environment.gitCommit === 'string' ? environment.gitCommit : undefined;
  const bench: BenchRecord = {
    schema: BENCH_SCHEMA,
    scenario: scenario.name,
    mode,
    ...(mode === 'deterministic' ? { icountShift: scenario.icount ?? 0 } : {}),
    repeat,
    createdAt: new Date().toISOString(),
    ...(commit ? { commit } : {}),
    ...(typeof environment.gitDirty === 'boolean' ? { dirty: environment.gitDirty } : {}),
    fingerprint,
    environment,
    metrics,
    cases,
  };
  writeFileSync(join(outDir, 'bench.json'), `${JSON.stringify(bench, null, 2)}\n`);
  if (historyDir) appendHistory(historyDir, bench);
  const spread = ratioSpread(metrics);
  const spreadText = spreadLine(spread, repeat);
  const detCheck =
    mode === 'deterministic' && spread.worst
      ? spread.worst.relative <= DETERMINISTIC_SPREAD_LIMIT
        ? `deterministic: every ratio metric repeated within ${formatSpread(DETERMINISTIC_SPREAD_LIMIT)}`
        : `warning: not deterministic: ${spread.worst.metric} spread ${formatSpread(spread.worst.relative)} > ${formatSpread(DETERMINISTIC_SPREAD_LIMIT)}`
      : undefined;

  if (a.updateBaseline) {
    const key = baselineKey(mode, fingerprint);
    const previous = file?.baselines[key];
    const entry = buildBaselineEntry(metrics, { mode, scenario: scenario.name, environment, repeat, ...(commit ? { commit } : {}), ...(previous ? { previous } : {}) });
    writeBaseline(baselinePath, withEntry(file, entry));
    if (a.json) process.stdout.write(`${JSON.stringify(cases, null, 2)}\n`);
    else process.stdout.write(`${spreadText}\n${detCheck ? `${detCheck}\n` : ''}baseline written: ${baselinePath} [${key}] (${metrics.length} metrics; ${describeEnvironment(environment)})\n`);
    return ExitCode.ok;
  }

  const choice = file ? chooseBaseline(file, mode, fingerprint) : undefined;
  if (!choice) throw new UsageError(`no ${mode} baseline in ${baselinePath}; record one with: ${record}`);
  const rows = compareToBaseline(metrics, choice.entry, { ratioTolerance: DEFAULT_RATIO_TOLERANCE[mode], judge: choice.sameMachine });
  const crossMachine = choice.sameMachine
    ? undefined
    : `note: the ${mode} baseline is from another machine (fingerprint ${choice.entry.fingerprint}, this one ${fingerprint}: ${environmentDifferences(choice.entry.environment, environment).join('; ') || 'same facts, other fingerprint'}); compared, not judged — record this machine's with: ${record}`;
  const cpu = writeCpuTable(outDir, cases);
  const verdict = benchVerdictLine(rows);
  const history = historyDir ? readHistory(historyDir) : { records: [bench], unreadable: [] };
  const trend = trends(history.records, { mode, fingerprint });
  writeTrendChart(join(outDir, 'trend.png'), trend.trends, { title: `hilbox bench trend (${mode}): dot median, bar min..max` });
  const md = [
    `# hilbox bench — ${scenario.name} (${mode === 'deterministic' ? `deterministic, icount shift=${scenario.icount}` : 'wall clock'})`,
    '',
    `${verdict}; baseline ${baselineKey(choice.entry.mode, choice.entry.fingerprint)} of ${choice.entry.createdAt}${choice.entry.commit ? ` (${choice.entry.commit.slice(0, 12)})` : ''}, ${choice.entry.repeat} repetition(s)`,
    '',
    spreadText,
    ...(detCheck ? ['', detCheck] : []),
    ...(crossMachine ? ['', crossMachine] : []),
    '',
    benchTableMarkdown(rows),
    '',
    `## Trend (${trend.trends.length ? trend.trends[0]?.points.length : 0} runs of this mode and machine${trend.excluded ? `; ${trend.excluded} of other modes or machines left out` : ''})`,
    '',
    '![trend](trend.png)',
    '',
    trendMarkdown(trend.trends),
    '',
    ...medianSections.flatMap((x) => [`## ${medianTitle(x.title)}`, '', markdownTable(x.table), '']),
    ...(cpu ? [cpu.markdown] : []),
  ].join('\n');
  writeFileSync(join(outDir, 'bench.md'), md);
  writeBenchChart(join(outDir, 'bench.png'), rows);
  if (a.json) process.stdout.write(`${JSON.stringify(cases, null, 2)}\n`);
  else {
    process.stdout.write(`${benchTableText(rows)}\n${verdict}\n${spreadText}\n`);
    if (detCheck) process.stdout.write(`${detCheck}\n`);
    if (crossMachine) process.stdout.write(`${crossMachine}\n`);
    for (const x of medianSections) process.stdout.write(`\n${medianTitle(x.title)}\n\n${textTable(x.table)}\n`);
    if (cpu) process.stdout.write(`\n${cpu.text}`);
    if (history.unreadable.length) process.stdout.write(`note: history files not read: ${history.unreadable.join(', ')}\n`);
    process.stdout.write(`artifacts: ${outDir} (bench.json, bench.md, bench.png, trend.png${cpu ? ', cpu-table.svg' : ''})${historyDir ? `; history: ${historyDir}` : ''}\n`);
  }
  return regressions(rows).length ? ExitCode.failed : ExitCode.ok;
}
