/**
 * Several scenarios in one command, optionally one shard of them, optionally side by side. One
 * job: plan every scenario (bad input refused before anything is built or booted), pick the
 * shard's cases (suites/shard.ts), build QEMU and the guests once, run up to `jobs` scenarios at
 * a time — each its own VM, artifact directory and progress prefix — and write one report.
 *
 * Artifacts: with one scenario, `outDir` holds that run's files (as `hilbox run` always did);
 * with several, `outDir/<scenario>/` holds each run's and `outDir` the combined results.json,
 * junit.xml and summary.md. A shard's report records the shard (`shard` in results.json) so
 * `hilbox merge` can put the shards back together.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../core/errors.ts';
import { prefixedOutput, type Output } from '../core/output.ts';
import { repoRoot } from '../core/paths.ts';
import { guestForScenario } from '../guest/for-scenario.ts';
import { earlyAccelProbe } from '../session/early-accel.ts';
import { ensureQemu, ensureWindowsPackage, ensureWindowsProbe } from '../products/ensure.ts';
import { writeRunReports } from '../report/artifacts.ts';
import { collectEnvironment } from '../report/environment.ts';
import { assembleResults, combineScenarios } from '../report/merge.ts';
import type { RunResults, ShardInfo } from '../report/results.ts';
import type { LoadedScenario } from '../session/boot.ts';
import { SUITE_NAMES } from './plan.ts';
import { runScenario } from './run-scenario.ts';
import { planRun } from './run-plan.ts';
import { assignShards, planDigest, plannedIds, selectShard, type PlannedScenario, type ShardSpec } from './shard.ts';

export interface ManyOptions {
  scenarios: readonly LoadedScenario[];
  outDir: string;
  out: Output;
  shard?: ShardSpec;
  /** Scenarios running at once (each its own VM); default 1. */
  jobs?: number;
}

export interface ScenarioPart {
  name: string;
  outDir: string;
  results: RunResults;
  error?: unknown;
}

export interface ManyOutcome {
  results: RunResults;
  parts: ScenarioPart[];
  /** What this shard ran (with `shard`): scenarios, cases, expected cost. */
  shardPlan?: { scenarios: string[]; cases: number; expectedMs: number; expectedMsPerShard: number[] };
}

/** Plans every scenario; refuses two with one name (their artifact directories would collide). */
export function planScenarios(list: readonly LoadedScenario[]): (PlannedScenario & LoadedScenario)[] {
  const seen = new Map<string, string>();
  for (const l of list) {
    const prior = seen.get(l.scenario.name);
    if (prior !== undefined) throw new UsageError(`scenario name ${JSON.stringify(l.scenario.name)} is used by ${prior} and ${l.source}; allowed: distinct names (each names its artifact directory)`);
    seen.set(l.scenario.name, l.source);
  }
  return list.map((l) => ({ ...l, plan: planRun(l.scenario, SUITE_NAMES.filter((s) => l.scenario.suites[s].enabled), l.baseDir) }));
}

/** Builds what the scenarios need, once, before any VM starts (the builds are cached). */
async function buildOnce(list: readonly LoadedScenario[], out: Output): Promise<void> {
  out.step('building QEMU with hilbox-pci');
  const qemu = await ensureQemu({ onProgress: (l) => out.progress(l) });
  // The KVM probe runs while the guest image builds, when some scenario leaves the choice to it.
  const auto = list.some((l) => l.scenario.accelerator === 'auto' && l.scenario.icount === undefined);
  const early = earlyAccelProbe(auto ? 'auto' : 'tcg', qemu, (m) => out.warn(m));
  for (const os of [...new Set(list.map((l) => l.scenario.guest.os))]) {
    out.step(`preparing the ${os} guest`);
    const l = list.find((x) => x.scenario.guest.os === os)!;
    const guest = await guestForScenario(l.scenario.guest, { baseDir: l.baseDir, onProgress: (x) => out.progress(x), onKernel: (k) => early.onKernel(k) });
    if (guest.probeKernel) early.onKernel(guest.probeKernel);
    if (os === 'windows') {
      await ensureWindowsProbe({ onProgress: (x) => out.progress(x) });
      if (list.some((x) => x.scenario.guest.os === 'windows' && !x.scenario.driver?.path)) await ensureWindowsPackage({ onProgress: (x) => out.progress(x) });
    }
  }
  out.done('builds ready');
}

async function pool<T>(items: readonly T[], jobs: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, worker));
}

export async function runMany(o: ManyOptions): Promise<ManyOutcome> {
  const jobs = o.jobs ?? 1;
  const planned = planScenarios(o.scenarios);
  const multi = planned.length > 1;
  let todo: (PlannedScenario & LoadedScenario)[] = planned;
  let shard: ShardInfo | undefined;
  let shardPlan: ManyOutcome['shardPlan'];
  if (o.shard) {
    const picked = selectShard(planned, o.shard);
    todo = picked.map((p) => ({ ...planned.find((x) => x.scenario.name === p.scenario.name)!, plan: p.plan }));
    const a = assignShards(planned, o.shard.count);
    shard = { index: o.shard.index, count: o.shard.count, plan: planDigest(planned, o.shard.count), planned: plannedIds(planned), scenarios: planned.map((p) => ({ name: p.scenario.name, guest: p.scenario.guest.os })) };
    shardPlan = {
      scenarios: todo.map((p) => p.scenario.name),
      cases: a.shards[o.shard.index - 1]!.reduce((n, u) => n + u.cases.length, 0),
      expectedMs: a.costMs[o.shard.index - 1]!,
      expectedMsPerShard: a.costMs,
    };
  }
  mkdirSync(o.outDir, { recursive: true });
  const startedAt = new Date();
  if (todo.length === 0) {
    // More shards than units of work: this one has nothing to run, and says so.
    const results = assembleResults({ scenarios: shard!.scenarios, cases: [], startedAt, durationMs: 0, environment: { ...collectEnvironment({ repoDir: repoRoot }) }, shard: shard! });
    writeRunReports(o.outDir, results);
    return { results, parts: [], ...(shardPlan ? { shardPlan } : {}) };
  }
  await buildOnce(todo, o.out);
  const parts: ScenarioPart[] = [];
  const concurrent = jobs > 1 && todo.length > 1;
  await pool(todo, jobs, async (p) => {
    const outDir = multi ? join(o.outDir, p.scenario.name) : o.outDir;
    const out = concurrent || multi ? prefixedOutput(o.out, p.scenario.name) : o.out;
    if (multi) out.info(`${p.source}: artifacts in ${outDir}`);
    const r = await runScenario({ scenario: p.scenario, outDir, out, baseDir: p.baseDir, plan: p.plan, ...(shard && !multi ? { shard } : {}) });
    parts.push({ name: p.scenario.name, outDir, results: r.results, ...(r.error !== undefined ? { error: r.error } : {}) });
  });
  parts.sort((a, b) => todo.findIndex((t) => t.scenario.name === a.name) - todo.findIndex((t) => t.scenario.name === b.name));
  if (!multi) return { results: parts[0]!.results, parts, ...(shardPlan ? { shardPlan } : {}) };
  // A shard that boots only some of the run's scenarios still names all of them.
  const results = combineScenarios(parts.map((p) => p.results), { startedAt, durationMs: Date.now() - startedAt.getTime(), environment: parts[0]!.results.environment, ...(shard ? { shard, scenarios: shard.scenarios } : {}) });
  writeRunReports(o.outDir, results);
  return { results, parts, ...(shardPlan ? { shardPlan } : {}) };
}
