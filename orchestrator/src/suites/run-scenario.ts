/**
 * One scenario, end to end: boot, driver, suites, artifacts. Every run leaves one directory
 * with results.json, junit.xml, summary.md, console.log, qmp.log and frame.png — also when the
 * run fails (a boot error still yields results naming it, and the console log).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Scenario } from '../scenario/schema.ts';
import type { Output } from '../cli/output.ts';
import { bootScenario } from '../session/boot.ts';
import { buildRunResults, hostCase, type CaseResult, type RunResults, writeResults } from '../report/results.ts';
import { writeJUnit } from '../report/junit.ts';
import { writeSummary } from '../report/summary.ts';
import { applyThresholds } from '../report/thresholds.ts';
import { collectEnvironment } from '../bench/environment.ts';
import { ensureQemu } from '../build/ensure.ts';
import { repoRoot } from '../paths.ts';
import { HilboxError } from '../vm/errors.ts';
import { caseTimeoutMs, type SuiteContext } from './context.ts';
import { runVerifySuite } from './verify.ts';
import { runThroughputSuite, type ThroughputPlan } from './throughput.ts';
import { runSecuritySuite, resetUnplugMemo } from './security.ts';
import { bootWindowsScenario, runWindowsSuites } from '../vm/windows-guest.ts';

export interface RunOptions {
  scenario: Scenario;
  outDir: string;
  out: Output;
  /** Which suites; default: those the scenario enables. */
  suites?: ('verify' | 'throughput' | 'security')[];
  /** Override the throughput plan (bench). */
  throughputPlan?: ThroughputPlan;
  /** Measure fast reset (snapshot restore) against the cold boot before the suites (bench). */
  measureReset?: boolean;
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

/** A Windows scenario with no image: every case is a skip with the reason, never a pass. */
function windowsSkips(s: Scenario): CaseResult[] {
  const reason = 'no Windows image configured (guest.image): supply your own qcow2 (hilbox image windows --iso WIN.iso), see README';
  return ['verify', 'throughput', 'security'].map((suite) => hostCase(suite, `${suite}-windows`, 'skip', reason));
}

export async function runScenario(o: RunOptions): Promise<RunOutcome> {
  const { scenario, out, outDir } = o;
  mkdirSync(outDir, { recursive: true });
  const startedAt = new Date();
  const cases: CaseResult[] = [];
  let error: unknown;
  let accelerator: string | undefined;
  const enabled = o.suites ?? (['verify', 'throughput', 'security'] as const).filter((s) => scenario.suites[s].enabled);
  const runDir = mkdtempSync(join(tmpdir(), 'hilbox-run-'));
  resetUnplugMemo();
  try {
    if (scenario.guest.os === 'windows' && !scenario.guest.image) {
      cases.push(...windowsSkips(scenario));
    } else if (scenario.guest.os === 'windows') {
      let bootMs = 0;
      const qemu = await ensureQemu({ onProgress: (l) => out.progress(l) });
      out.step('booting the Windows image');
      await using vm = await bootWindowsScenario(scenario, { qemu, logDir: outDir, warn: (m) => out.warn(m), progress: (m) => out.step(m), onBooted: (ms) => (bootMs = ms) });
      accelerator = vm.accel;
      const boot = hostCase('run', 'boot', 'pass');
      boot.metrics = { boot_to_first_ssh_command_ms: { value: bootMs, unit: 'ms' } };
      boot.details = { accelerator: vm.accel, guest: 'windows' };
      cases.push(boot);
      cases.push(...(await runWindowsSuites({ vm, scenario, outDir, caseTimeoutMs: caseTimeoutMs(vm, scenario), step: (t) => out.step(t) }, enabled)));
      out.done();
      vm.assertNoCrash();
    } else {
      let bootMs = 0;
      await using vm = await bootScenario(scenario, { out, logDir: outDir, onBooted: (ms) => (bootMs = ms) });
      accelerator = vm.accel;
      const boot = hostCase('run', 'boot', 'pass');
      boot.metrics = { boot_to_first_ssh_command_ms: { value: bootMs, unit: 'ms' } };
      boot.details = { accelerator: vm.accel };
      cases.push(boot);
      if (o.measureReset) cases.push(await measureReset(vm, bootMs, out));
      const ctx: SuiteContext = { vm, scenario, out, outDir, caseTimeoutMs: caseTimeoutMs(vm, scenario) };
      for (const suite of enabled) {
        if (suite === 'verify') cases.push(...(await runVerifySuite(ctx, runDir)));
        if (suite === 'throughput') cases.push(...(await runThroughputSuite(ctx, runDir, o.throughputPlan)));
        if (suite === 'security') cases.push(...(await runSecuritySuite(ctx)));
        out.done();
      }
      vm.assertNoCrash();
    }
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
  writeResults(join(outDir, 'results.json'), results);
  writeJUnit(join(outDir, 'junit.xml'), results);
  writeSummary(join(outDir, 'summary.md'), results, accelerator ? { accelerator } : {});
  return { results, ...(error !== undefined ? { error } : {}) };
}

/** Fast reset between cases: savevm once, then loadvm + SSH reconnect, timed against the cold boot. */
async function measureReset(vm: import('../lib/started-vm.ts').StartedHilboxVm, bootMs: number, out: Output): Promise<CaseResult> {
  out.step('measuring fast reset (snapshot restore) against the cold boot');
  const c = hostCase('run', 'fast-reset', 'pass');
  try {
    await vm.snapshot();
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      await vm.reset();
      await vm.ssh.run('true');
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
