/**
 * One scenario, end to end, for any guest OS: plan (bad input refused before anything starts),
 * boot, driver, probe set-up, suites, artifacts. Every run that starts leaves one directory with
 * results.json, junit.xml, summary.md, console.log, qmp.log and frame.png — also when the run
 * fails (a boot error still yields results naming it, and the console log).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Scenario } from '../scenario/schema.ts';
import type { Output } from '../core/output.ts';
import { HilboxError } from '../core/errors.ts';
import { repoRoot } from '../core/paths.ts';
import { bootScenario } from '../session/boot.ts';
import type { StartedHilboxVm } from '../lib/started-vm.ts';
import { buildRunResults, hostCase, type CaseResult, type RunResults, type ShardInfo } from '../report/results.ts';
import { writeRunReports } from '../report/artifacts.ts';
import { applyThresholds } from '../report/thresholds.ts';
import { collectEnvironment } from '../report/environment.ts';
import { ensureQemu } from '../products/ensure.ts';
import { caseTimeoutMs, type SuiteContext } from './context.ts';
import { SUITE_NAMES, type SuiteName } from './plan.ts';
import { planRun, type RunPlan } from './run-plan.ts';
import { runVerifySuite } from './verify.ts';
import { runThroughputSuite } from './throughput.ts';
import { runCpuTable } from './cpu-table.ts';
import { runSecuritySuite } from './security.ts';
import { runRobustnessSuite } from './robustness.ts';

export interface RunOptions {
  scenario: Scenario;
  outDir: string;
  out: Output;
  /** Directory relative paths of the scenario are resolved against (default: cwd). */
  baseDir?: string;
  /** Which suites; default: those the scenario enables. */
  suites?: SuiteName[];
  /** Measure fast reset (snapshot restore) against the cold boot before the suites (bench). */
  measureReset?: boolean;
  /** The cases to run, planned (and checked) already — e.g. one shard's part (suites/shard.ts); default: planRun. */
  plan?: RunPlan;
  /** This run is one shard of a larger run: recorded in results.json. */
  shard?: ShardInfo;
}

export interface RunOutcome {
  results: RunResults;
  /** The error that ended the run early, if any (boot error, crash, infra). */
  error?: unknown;
}

async function qemuVersion(): Promise<string | undefined> {
  try {
    const q = await ensureQemu();
    return String((await execa(q, ['--version'])).stdout).split('\n')[0];
  } catch {
    return undefined;
  }
}

/** Throws UsageError (before anything is built or booted) when the scenario names what does not exist. */
export async function runScenario(o: RunOptions): Promise<RunOutcome> {
  const { scenario, out, outDir } = o;
  const enabled = o.suites ?? SUITE_NAMES.filter((s) => scenario.suites[s].enabled);
  const plan = o.plan ?? planRun(scenario, enabled, o.baseDir);
  mkdirSync(outDir, { recursive: true });
  const startedAt = new Date();
  const cases: CaseResult[] = [];
  let error: unknown;
  let accelerator: string | undefined;
  const runDir = mkdtempSync(join(tmpdir(), 'hilbox-run-'));
  try {
    let bootMs = 0;
    await using vm = await bootScenario(scenario, { out, logDir: outDir, ...(o.baseDir ? { baseDir: o.baseDir } : {}), onBooted: (ms) => (bootMs = ms) });
    accelerator = vm.accel;
    const boot = hostCase('run', 'boot', 'pass');
    boot.metrics = { boot_to_first_ssh_command_ms: { value: bootMs, unit: 'ms' } };
    boot.details = { accelerator: vm.accel, guest: vm.guest.os, scheduling: vm.scheduling, boot: vm.bootKind };
    cases.push(boot);
    if (o.measureReset) cases.push(await measureReset(vm, bootMs, out));
    out.step('setting up the probe');
    await vm.guest.setupProbe(vm.session);
    const ctx: SuiteContext = { vm, scenario, out, outDir, runDir, caseTimeoutMs: caseTimeoutMs(vm, scenario) };
    for (const suite of enabled) {
      if (plan[suite].length === 0) continue;
      if (suite === 'verify') cases.push(...(await runVerifySuite(ctx, plan.verify)));
      if (suite === 'throughput') cases.push(...(await runThroughputSuite(ctx, plan.throughput)));
      if (suite === 'cpu') cases.push(...(await runCpuTable(ctx, plan.cpu)));
      if (suite === 'security') cases.push(...(await runSecuritySuite(ctx, plan.security)));
      if (suite === 'robustness') cases.push(...(await runRobustnessSuite(ctx, plan.robustness)));
      out.done();
    }
    vm.assertNoCrash();
  } catch (e) {
    error = e;
    const kind = e instanceof HilboxError ? e.kind : 'error';
    cases.push(hostCase('run', kind === 'boot' ? 'boot' : 'run', 'fail', (e as Error).message.split('\n').slice(0, 3).join(' ')));
  } finally {
    rmSync(runDir, { recursive: true, force: true });
    out.close();
  }
  const judged = applyThresholds(cases, scenario.thresholds ?? {});
  const environment = { ...collectEnvironment({ qemuVersion: await qemuVersion(), ...(accelerator ? { accelerator } : {}), repoDir: repoRoot }) };
  const results = buildRunResults({ scenario: scenario.name, guest: scenario.guest.os, startedAt, durationMs: Date.now() - startedAt.getTime(), environment }, judged);
  if (o.shard) results.shard = o.shard;
  writeRunReports(outDir, results, accelerator ? { accelerator } : {});
  return { results, ...(error !== undefined ? { error } : {}) };
}

/** Fast reset between cases: savevm once, then loadvm + SSH reconnect, timed against the cold boot (QEMU start → SSH ready). */
async function measureReset(vm: StartedHilboxVm, bootMs: number, out: Output): Promise<CaseResult> {
  out.step('measuring fast reset (snapshot restore) against the cold boot');
  const c = hostCase('run', 'fast-reset', 'pass');
  try {
    await vm.snapshot();
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      await vm.reset(); // loadvm + SSH reconnect: the guest is usable again
      times.push(Date.now() - t0);
    }
    times.sort((a, b) => a - b);
    const median = times[1]!;
    c.metrics = {
      cold_boot_ms: { value: bootMs, unit: 'ms' },
      fast_reset_ms: { value: median, unit: 'ms' },
      reset_speedup: { value: median > 0 ? bootMs / median : 0, unit: '× cold boot' },
    };
  } catch (e) {
    c.status = 'fail';
    c.reason = `fast reset failed: ${(e as Error).message.split('\n')[0]}`;
  }
  return c;
}
