/**
 * Writes a run's report files into its artifact directory. One job: RunResults → files.
 * results.json (schema), junit.xml (CI), summary.md (humans).
 */
import { join } from 'node:path';
import { writeJUnit } from './junit.ts';
import type { RunResults } from './results.ts';
import { writeResults } from './results.ts';
import { writeSummary, type SummaryOptions } from './summary.ts';

export interface ReportPaths {
  results: string;
  junit: string;
  summary: string;
}

export function reportPaths(outDir: string): ReportPaths {
  return { results: join(outDir, 'results.json'), junit: join(outDir, 'junit.xml'), summary: join(outDir, 'summary.md') };
}

export function writeRunReports(outDir: string, r: RunResults, o: SummaryOptions = {}): ReportPaths {
  const p = reportPaths(outDir);
  writeResults(p.results, r);
  writeJUnit(p.junit, r);
  writeSummary(p.summary, r, o);
  return p;
}
