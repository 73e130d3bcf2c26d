/**
 * `hilbox run [scenario.yaml…] [--shard K/N]`: the main job — scenarios end to end (one after
 * the other), or shard K of N of them, artifacts, a summary. `hilbox matrix` is the same with
 * several VMs side by side.
 */
import { cpus as hostCpus } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError } from '../../core/errors.ts';
import { checkRealtimeSideBySide, rtThrottleShare } from '../../vm/realtime.ts';
import { loadScenario } from '../../session/boot.ts';
import { planScenarios, runMany, type ManyOutcome } from '../../suites/run-many.ts';
import { assignShards, parseShard, type ShardSpec } from '../../suites/shard.ts';
import type { LoadedScenario } from '../../session/boot.ts';
import { toSummaryText } from '../../report/summary.ts';
import { runPassed } from '../../report/results.ts';
import { ExitCode, type ExitCodeValue } from '../exit-codes.ts';
import { exitCodeFor } from '../errors.ts';
import type { Output } from '../output.ts';

export function defaultOutDir(name: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace(/-\d+Z$/, 'Z');
  return resolve('hilbox-out', `${name}-${stamp}`);
}

export interface RunArgs {
  /** Scenario files; none: the embedded default scenario. */
  scenarios: readonly string[];
  outDir?: string;
  /** `K/N`, as given on the command line. */
  shard?: string;
  /** VMs side by side (`hilbox matrix -j`). */
  jobs?: number;
  /** Plan only: print what each shard would run and its expected cost; build and boot nothing. */
  dryRun?: boolean;
  json: boolean;
  out: Output;
}

const minutes = (ms: number) => `${(ms / 60_000).toFixed(1)} min`;

/** Shared by run and matrix: every argument checked before anything is built or booted. */
export async function runScenariosCommand(a: RunArgs): Promise<number> {
  const shard: ShardSpec | undefined = a.shard === undefined ? undefined : parseShard(a.shard);
  const loaded = a.scenarios.length === 0 ? [loadScenario(undefined)] : a.scenarios.map((s) => loadScenario(s));
  if (a.dryRun) return dryRun(loaded, shard);
  const rt = a.jobs && a.jobs > 1 ? checkRealtimeSideBySide(loaded.map((l) => l.scenario), a.jobs, hostCpus().length, rtThrottleShare()) : undefined;
  if (rt) throw new UsageError(`-j ${a.jobs}: ${rt}`);
  const name = `${loaded.length === 1 ? loaded[0]!.scenario.name : 'matrix'}${shard ? `-shard-${shard.index}-of-${shard.count}` : ''}`;
  const outDir = resolve(a.outDir ?? defaultOutDir(name));
  for (const l of loaded) a.out.info(`scenario ${l.scenario.name} (${l.source})${l.scenario.description ? `: ${l.scenario.description}` : ''}`);
  a.out.info(`artifacts in ${outDir}${a.jobs && a.jobs > 1 ? `; up to ${a.jobs} VMs side by side` : ''}`);
  const outcome = await runMany({ scenarios: loaded, outDir, out: a.out, ...(shard ? { shard } : {}), ...(a.jobs ? { jobs: a.jobs } : {}) });
  a.out.close();
  report(outcome, outDir, a.json);
  return exitCode(outcome);
}

/** `--dry-run`: the split every shard count up to N would make, the chosen shard's cases. */
function dryRun(loaded: readonly LoadedScenario[], shard: ShardSpec | undefined): number {
  const planned = planScenarios(loaded);
  const count = shard?.count ?? 1;
  const lines: string[] = [];
  for (let n = 1; n <= Math.max(count, 1); n++) {
    const a = assignShards(planned, n);
    const slowest = Math.max(...a.costMs);
    lines.push(`N=${n}: slowest shard ${minutes(slowest)}, all shards ${minutes(a.costMs.reduce((x, y) => x + y, 0))} (boots: ${a.boots.reduce((k, b) => k + b.length, 0)}), ${(assignShards(planned, 1).costMs[0]! / slowest).toFixed(2)}× faster than one job`);
  }
  const k = shard?.index ?? 1;
  const mine = assignShards(planned, count).shards[k - 1]!;
  lines.push('', `shard ${k}/${count} runs:`);
  for (const u of mine) for (const c of u.cases) lines.push(`  ${u.scenario}/${c.suite}/${c.name}${c.skip ? ' (skip)' : ''}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return ExitCode.ok;
}

function report(o: ManyOutcome, outDir: string, json: boolean): void {
  if (o.shardPlan) {
    const p = o.shardPlan;
    const line = p.cases === 0
      ? `shard ${o.results.shard!.index}/${o.results.shard!.count}: no cases (more shards than units of work); nothing booted`
      : `shard ${o.results.shard!.index}/${o.results.shard!.count}: ${p.cases} of ${o.results.shard!.planned.length} cases, booting ${p.scenarios.join(', ')}; expected ${minutes(p.expectedMs)} (every shard: ${p.expectedMsPerShard.map(minutes).join(', ')})`;
    process.stderr.write(`hilbox: ${line}\n`);
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(o.results, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${toSummaryText(o.results)}\n`);
  const frame = o.parts.some((p) => p.results.cases.some((c) => c.name === 'frame-picture'));
  if (o.parts.length <= 1) process.stdout.write(`artifacts: ${outDir} (results.json, junit.xml, summary.md${o.parts.length ? `, console.log, qmp.log${frame ? ', frame.png' : ''}` : ''})\n`);
  else {
    process.stdout.write(`artifacts: ${outDir} (results.json, junit.xml, summary.md; each scenario's run in ${o.parts.map((p) => `${p.name}/`).join(', ')})\n`);
    // What running side by side bought, measured in this run: the runs' own durations against the wall time.
    const sum = o.parts.reduce((n, p) => n + p.results.durationMs, 0);
    const wall = Math.max(1, o.results.durationMs);
    process.stdout.write(`time: ${(wall / 1000).toFixed(1)} s wall; the ${o.parts.length} runs' own durations add up to ${(sum / 1000).toFixed(1)} s (${(sum / wall).toFixed(2)}× the wall time; ${o.parts.map((p) => `${p.name} ${(p.results.durationMs / 1000).toFixed(1)} s`).join(', ')})\n`);
  }
}

/** The worst of the runs' errors (exit 3, 4, 5), else 1 when a case failed, else 0. */
function exitCode(o: ManyOutcome): number {
  let code: ExitCodeValue | undefined;
  for (const p of o.parts) {
    if (p.error === undefined) continue;
    process.stderr.write(`hilbox: ${o.parts.length > 1 ? `${p.name}: ` : ''}${(p.error as Error).message ?? String(p.error)}\n(console log: ${join(p.outDir, 'console.log')})\n`);
    const c = exitCodeFor(p.error);
    if (code === undefined || c > code) code = c;
  }
  if (code !== undefined) return code;
  return runPassed(o.results) ? ExitCode.ok : ExitCode.failed;
}

export async function runCommand(a: { scenario?: string; outDir?: string; json: boolean; out: Output }): Promise<number> {
  return runScenariosCommand({ scenarios: a.scenario ? [a.scenario] : [], json: a.json, out: a.out, ...(a.outDir ? { outDir: a.outDir } : {}) });
}
