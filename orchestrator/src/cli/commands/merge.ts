/**
 * `hilbox merge DIR… [--out DIR]`: the shards of one run (`hilbox run --shard K/N`, one artifact
 * directory each) → one results.json, junit.xml and summary.md, and what each shard cost.
 * Exit 0 when every case passed, 1 when one failed or a shard is missing, 2 when the
 * directories do not belong together (another run's shard, a shard twice, a case twice).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../../core/errors.ts';
import { writeRunReports } from '../../report/artifacts.ts';
import { mergeShards, type ShardReport } from '../../report/merge.ts';
import { runPassed, type RunResults } from '../../report/results.ts';
import { toSummaryText } from '../../report/summary.ts';
import { textTable } from '../../report/table.ts';
import { ExitCode } from '../exit-codes.ts';
import { defaultOutDir } from './run.ts';

function readShard(dir: string): ShardReport {
  const file = join(dir, 'results.json');
  if (!existsSync(file)) throw new UsageError(`${dir}: no results.json; allowed: artifact directories written by \`hilbox run --shard K/N --out DIR\``);
  let results: RunResults;
  try {
    results = JSON.parse(readFileSync(file, 'utf8')) as RunResults;
  } catch (e) {
    throw new UsageError(`${file}: not JSON (${(e as Error).message})`);
  }
  return { from: dir, results };
}

/**
 * What each shard cost, from its own results: its boots (`run/boot`), its cases, its whole run —
 * and each one's share of the slowest shard (the wall time of a CI matrix is its slowest job).
 */
export function shardCostTable(parts: readonly ShardReport[]): string {
  const rows = [...parts]
    .sort((a, b) => (a.results.shard?.index ?? 0) - (b.results.shard?.index ?? 0))
    .map((p) => {
      const boots = p.results.cases.filter((c) => c.suite === 'run' && c.name === 'boot');
      const bootMs = boots.reduce((n, c) => n + (c.metrics?.['boot_to_first_ssh_command_ms']?.value ?? 0), 0);
      const caseMs = p.results.cases.filter((c) => c.suite !== 'run').reduce((n, c) => n + (c.durationMs ?? 0), 0);
      return { p, boots: boots.length, bootMs, caseMs, totalMs: p.results.durationMs, cases: p.results.cases.filter((c) => c.suite !== 'run').length };
    });
  const slowest = Math.max(1, ...rows.map((r) => r.totalMs));
  const s = (ms: number) => (ms / 1000).toFixed(1);
  return textTable({
    headers: ['shard', 'boots', 'boot s', 'cases', 'case s', 'run s', 'boot share', '× slowest'],
    align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    rows: rows.map((r) => [
      `${r.p.results.shard?.index ?? '?'}/${r.p.results.shard?.count ?? '?'}`,
      String(r.boots),
      s(r.bootMs),
      String(r.cases),
      s(r.caseMs),
      s(r.totalMs),
      r.totalMs > 0 ? (r.bootMs / r.totalMs).toFixed(2) : '—',
      (r.totalMs / slowest).toFixed(2),
    ]),
  });
}

export function mergeCommand(a: { dirs: readonly string[]; outDir?: string; json: boolean }): number {
  const parts = a.dirs.map((d) => readShard(resolve(d)));
  const results = mergeShards(parts);
  const outDir = resolve(a.outDir ?? defaultOutDir('merged'));
  writeRunReports(outDir, results);
  if (a.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else {
    process.stdout.write(`${toSummaryText(results)}\nShards\n\n${shardCostTable(parts)}\n\nmerged: ${outDir} (results.json, junit.xml, summary.md)\n`);
  }
  if (results.merged!.missing.length > 0) process.stderr.write(`hilbox: missing shard${results.merged!.missing.length > 1 ? 's' : ''} ${results.merged!.missing.map((k) => `${k}/${results.merged!.count}`).join(', ')}: their cases are reported as failed\n`);
  return runPassed(results) ? ExitCode.ok : ExitCode.failed;
}
