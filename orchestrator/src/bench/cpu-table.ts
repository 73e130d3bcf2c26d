/**
 * `hilbox bench`'s CPU table: which suites a benchmark runs (the throughput cases, and — in the
 * last repetition, unless the scenario's `suites.cpu.bench` is false — the CPU table), and the
 * table it prints, appends to bench.md and draws as cpu-table.svg. One job: the bench command's hook for the CPU table.
 */
import { join } from 'node:path';
import { cpuRows, cpuTableSpec, isCpuCase } from '../report/cpu-table.ts';
import type { CaseResult, RunResults } from '../report/results.ts';
import { markdownTable, textTable } from '../report/table.ts';
import type { Scenario } from '../scenario/schema.ts';
import type { SuiteName } from '../suites/plan.ts';
import { writeCpuChart } from './cpu-chart.ts';

export const CPU_CHART_FILE = 'cpu-table.svg';
const TITLE = 'CPU to consume every frame';
const LEGEND =
  'CPU % = the consumer process\'s CPU time over wall time (100 = one guest CPU busy), the tear check left out; ' +
  'missed = frames published during the phase and not consumed / frames published; torn = consumed frames whose pixels hold more than one frame.';

/**
 * The suites `hilbox bench` runs in a repetition: the throughput cases in each, the CPU table
 * once, in the last (it is shown, not compared, and takes minutes).
 */
export function benchSuites(s: Scenario, repetition = 1, repeat = 1): SuiteName[] {
  return s.suites.cpu.bench && repetition === repeat ? ['throughput', 'cpu'] : ['throughput'];
}

export interface CpuTableReport {
  text: string;
  markdown: string;
  chart: string;
}

/** The table of the run's CPU cases (text and Markdown) and its chart written to outDir; undefined without such cases. */
export function writeCpuTable(outDir: string, cases: readonly CaseResult[]): CpuTableReport | undefined {
  const rows = cpuRows(cases);
  if (rows.length === 0) return undefined;
  const spec = cpuTableSpec(cases);
  const chart = join(outDir, CPU_CHART_FILE);
  writeCpuChart(chart, rows);
  return {
    text: `${TITLE}\n${textTable(spec)}\n${LEGEND}\n`,
    markdown: `## ${TITLE}\n\n${LEGEND}\n\n${markdownTable(spec)}\n\n![${TITLE}](${CPU_CHART_FILE})\n`,
    chart,
  };
}

/** The run's results for the console summary: the CPU table is printed once, after the comparison. */
export function withoutCpuTable(r: RunResults): RunResults {
  return { ...r, cases: r.cases.filter((c) => !isCpuCase(c)) };
}
