/**
 * Runs the guest probe (`hilbox-probe`, one JSON result per stdout line) over SSH and turns
 * its output into case results. A probe that dies, hangs or prints garbage becomes a `fail`
 * case that says so — never a silently missing case.
 */
import type { StartedHilboxVm } from '../lib/started-vm.ts';
import { parseProbeOutput, type CaseResult } from '../report/results.ts';
import { shellQuote } from '../ssh/client.ts';

export const PROBE = '/usr/bin/hilbox-probe';

export interface ProbeRun {
  /** Suite and step name used to name a fail case when the probe's output is unusable. */
  suite: string;
  step: string;
  timeoutMs: number;
  /** Run as this user (default root). */
  dev?: string;
}

export async function runProbe(vm: StartedHilboxVm, args: readonly string[], o: ProbeRun): Promise<CaseResult[]> {
  const dev = o.dev ? ['--dev', o.dev] : [];
  const cmd = [PROBE, ...dev, ...args].map(shellQuote).join(' ');
  const started = Date.now();
  let r;
  try {
    r = await vm.exec(cmd, { timeoutMs: o.timeoutMs });
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

/** Renames a case and records the parameters it ran with. */
export function tag(c: CaseResult, name: string, details: Record<string, unknown>): CaseResult {
  return { ...c, name, details: { ...(c.details ?? {}), ...details } };
}
