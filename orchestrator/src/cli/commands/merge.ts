/**
 * `hilbox merge DIR… [--out DIR]`: the shards of one run (`hilbox run --shard K/N`, one artifact
 * directory each) → one results.json, junit.xml and summary.md, and what each shard cost.
 * Exit 0 when every case passed, 1 when one failed or a shard is missing, 2 when the
 * directories do not belong together (another run's shard, a shard twice, a case twice).
 * The summary's `Shards` table says what each shard cost (report/summary.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../../core/errors.ts';
import { writeRunReports } from '../../report/artifacts.ts';
import { mergeShards, type ShardReport } from '../../report/merge.ts';
import { runPassed, type RunResults } from '../../report/results.ts';
import { toSummaryText } from '../../report/summary.ts';
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

export function mergeCommand(a: { dirs: readonly string[]; outDir?: string; json: boolean }): number {
  const parts = a.dirs.map((d) => readShard(resolve(d)));
  const results = mergeShards(parts);
  const outDir = resolve(a.outDir ?? defaultOutDir('merged'));
  writeRunReports(outDir, results);
  if (a.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else {
    process.stdout.write(`${toSummaryText(results)}\nmerged: ${outDir} (results.json, junit.xml, summary.md)\n`);
  }
  if (results.merged!.missing.length > 0) process.stderr.write(`hilbox: missing shard${results.merged!.missing.length > 1 ? 's' : ''} ${results.merged!.missing.map((k) => `${k}/${results.merged!.count}`).join(', ')}: their cases are reported as failed\n`);
  return runPassed(results) ? ExitCode.ok : ExitCode.failed;
}
