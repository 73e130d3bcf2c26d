/**
 * `hilbox bench [scenario]`: repeats the throughput cases, writes bench.json (metrics + an
 * environment fingerprint), compares with a baseline using per-metric tolerances on ratios
 * measured in the same run (so a faster or slower machine does not read as a regression),
 * prints a table, writes bench.md and a chart (bench.png), exits 1 on a regression.
 * `--update-baseline` records the measured metrics as the new baseline instead.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadScenario } from '../../session/boot.ts';
import { runScenario } from '../../suites/run-scenario.ts';
import { benchMetrics, combineRepeats } from '../../bench/metrics.ts';
import { buildBaseline, DEFAULT_BASELINE_PATH, readBaseline, writeBaseline } from '../../bench/baseline.ts';
import { compareToBaseline, regressions } from '../../bench/compare.ts';
import { benchTableMarkdown, benchTableText, benchVerdictLine } from '../../bench/table.ts';
import { writeBenchChart } from '../../bench/chart.ts';
import { benchSuites, withoutCpuTable, writeCpuTable } from '../../bench/cpu-table.ts';
import { environmentDifferences, describeEnvironment } from '../../report/environment.ts';
import { toSummaryMarkdown, toSummaryText } from '../../report/summary.ts';
import type { CaseResult } from '../../report/results.ts';
import { ExitCode } from '../exit-codes.ts';
import { exitCodeFor, UsageError } from '../errors.ts';
import type { Output } from '../output.ts';
import { defaultOutDir } from './run.ts';

export interface BenchArgs {
  scenario?: string;
  baseline?: string;
  updateBaseline: boolean;
  repeat: number;
  outDir?: string;
  json: boolean;
  out: Output;
}

export async function benchCommand(a: BenchArgs): Promise<number> {
  if (!Number.isInteger(a.repeat) || a.repeat < 1 || a.repeat > 20) throw new UsageError(`--repeat ${a.repeat}: allowed 1..20`);
  const { scenario, baseDir } = loadScenario(a.scenario);
  const baselinePath = resolve(a.baseline ?? DEFAULT_BASELINE_PATH);
  if (!a.updateBaseline && !existsSync(baselinePath)) {
    throw new UsageError(`no baseline at ${baselinePath}; record one with: hilbox bench${a.scenario ? ` ${a.scenario}` : ''} --update-baseline`);
  }
  const outDir = resolve(a.outDir ?? defaultOutDir(`bench-${scenario.name}`));
  mkdirSync(outDir, { recursive: true });
  const runs: CaseResult[][] = [];
  let environment: Record<string, unknown> = {};
  for (let i = 1; i <= a.repeat; i++) {
    a.out.info(`repetition ${i}/${a.repeat}`);
    const { results, error } = await runScenario({ scenario, baseDir, outDir: join(outDir, `run-${i}`), out: a.out, suites: benchSuites(scenario, i, a.repeat), measureReset: i === 1 });
    if (error !== undefined) {
      process.stderr.write(`hilbox bench: repetition ${i} failed: ${(error as Error).message}\n`);
      return exitCodeFor(error);
    }
    runs.push(results.cases);
    environment = results.environment;
    if (i === a.repeat) writeFileSync(join(outDir, 'summary.md'), toSummaryMarkdown(results));
    if (i === a.repeat && !a.json) process.stdout.write(`${toSummaryText(withoutCpuTable(results))}\n`);
  }
  const metrics = combineRepeats(runs.map((cases) => benchMetrics(cases)));
  const cases = runs.at(-1) ?? [];
  writeFileSync(join(outDir, 'bench.json'), `${JSON.stringify({ schema: 'hilbox-bench/1', scenario: scenario.name, repeat: a.repeat, environment, metrics, cases }, null, 2)}\n`);

  if (a.updateBaseline) {
    const previous = existsSync(baselinePath) ? readBaseline(baselinePath) : undefined;
    writeBaseline(baselinePath, buildBaseline(metrics, { scenario: scenario.name, environment, ...(previous ? { previous } : {}) }));
    if (a.json) process.stdout.write(`${JSON.stringify(cases, null, 2)}\n`);
    else process.stdout.write(`baseline written: ${baselinePath} (${metrics.length} metrics; ${describeEnvironment(environment)})\n`);
    return ExitCode.ok;
  }

  const baseline = readBaseline(baselinePath);
  const rows = compareToBaseline(metrics, baseline);
  const cpu = writeCpuTable(outDir, cases);
  const md = `# hilbox bench — ${scenario.name}\n\n${benchVerdictLine(rows)}\n\n${benchTableMarkdown(rows)}\n${cpu ? `\n${cpu.markdown}` : ''}`;
  writeFileSync(join(outDir, 'bench.md'), md);
  writeBenchChart(join(outDir, 'bench.png'), rows);
  if (a.json) process.stdout.write(`${JSON.stringify(cases, null, 2)}\n`);
  else {
    const diffs = environmentDifferences(baseline.environment, environment);
    process.stdout.write(`${benchTableText(rows)}\n${benchVerdictLine(rows)}\n`);
    if (cpu) process.stdout.write(`\n${cpu.text}`);
    if (diffs.length) process.stdout.write(`note: environment differs from the baseline's: ${diffs.join('; ')}\n`);
    process.stdout.write(`artifacts: ${outDir} (bench.json, bench.md, bench.png${cpu ? ', cpu-table.svg' : ''})\n`);
  }
  return regressions(rows).length ? ExitCode.failed : ExitCode.ok;
}
