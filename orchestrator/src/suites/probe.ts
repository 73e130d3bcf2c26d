/**
 * Runs the guest's probe (one JSON result per stdout line) over SSH and turns its output into
 * case results. A probe that dies, hangs or prints garbage becomes a `fail` case that says so —
 * never a silently missing case. The command line is the guest's (guest.probeCommand).
 */
import type { StartedHilboxVm } from '../lib/started-vm.ts';
import { hostCase, parseProbeOutput, type CaseResult } from '../report/results.ts';
import type { PlannedCase } from './plan.ts';

export interface ProbeRun {
  /** Suite and step name used to name a fail case when the probe's output is unusable. */
  suite: string;
  step: string;
  timeoutMs: number;
  /** The device node to use instead of the first one. */
  dev?: string;
}

export async function runProbe(vm: StartedHilboxVm, args: readonly string[], o: ProbeRun): Promise<CaseResult[]> {
  const started = Date.now();
  let r;
  try {
    r = await vm.probe(args, { timeoutMs: o.timeoutMs, ...(o.dev ? { dev: o.dev } : {}) });
  } catch (e) {
    return [{ suite: o.suite, name: o.step, status: 'fail', reason: `probe ${args.join(' ')} did not finish: ${(e as Error).message.split('\n')[0]}`, durationMs: Date.now() - started }];
  }
  const cases = parseProbeOutput(r.stdout, { suite: o.suite, step: o.step });
  const durationMs = Date.now() - started;
  for (const c of cases) c.durationMs ??= Math.round(durationMs / Math.max(1, cases.length));
  if (cases.length === 0) {
    const why = r.code === null ? `killed by ${r.signal}` : `exit ${r.code}`;
    return [{ suite: o.suite, name: o.step, status: 'fail', reason: `probe ${args.join(' ')} printed no result (${why}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`, durationMs }];
  }
  return cases;
}

/** A probe result (or the failure standing for it) as the planned case: its suite, name and params. */
export function asPlanned(c: CaseResult, p: PlannedCase): CaseResult {
  return { ...c, suite: p.suite, name: p.name, ...(p.params ? { params: p.params } : {}) };
}

/** A planned case that cannot run here. */
export function skipped(p: PlannedCase): CaseResult {
  return asPlanned(hostCase(p.suite, p.name, 'skip', p.skip ?? 'not run'), p);
}

/** Runs one probe command for one planned case; more than one result for it is a failure. */
export async function probeCase(vm: StartedHilboxVm, p: PlannedCase, args: readonly string[], o: { timeoutMs: number; dev?: string }): Promise<CaseResult> {
  const got = await runProbe(vm, args, { suite: p.suite, step: p.name, ...o });
  const c = asPlanned(got[0]!, p);
  if (got.length > 1) return { ...c, status: 'fail', reason: `probe ${args.join(' ')} printed ${got.length} results for one case (${got.map((g) => g.name).join(', ')})` };
  return c;
}
