/**
 * The checks every security and robustness case must also pass, whatever its own policy: QEMU
 * alive and running, the guest kernel log free of crash signatures, no probe left behind, the
 * driver unloading and reloading (where the guest can), no crash seen by the launcher, the
 * device answering afterwards.
 */
import { scanForCrashes } from '../vm/crash-scan.ts';
import type { CaseResult } from '../report/results.ts';
import type { SuiteContext } from './context.ts';
import { deviceAnswers } from './answers.ts';

/** The checks every security case must also pass; returns the problems found. */
export async function postChecks(ctx: SuiteContext): Promise<string[]> {
  const { vm } = ctx;
  const guest = vm.guest;
  const problems: string[] = [];
  try {
    const status = await vm.qmp.execute<{ status: string }>('query-status');
    if (status.status !== 'running') problems.push(`QEMU is ${status.status}, not running`);
  } catch (e) {
    return [`QEMU does not answer: ${(e as Error).message.split('\n')[0]}`];
  }
  const hits = scanForCrashes(await vm.kernelLog(), guest.crashSignatures);
  if (hits.length) problems.push(`kernel log: ${hits.map((h) => `${h.signature}: ${(h.lines[0] ?? '').trim()}`).slice(0, 3).join(' | ')}`);
  // Leftover probe processes of the case would hold the device open: they are ours, stop them.
  await guest.killProbes(vm.session);
  if (guest.reinstallDriver) {
    const rm = await vm.unloadDriver();
    if (rm.code !== 0) problems.push(`unloading the driver failed: ${(rm.stderr || rm.stdout).trim()}`);
    const ins = await vm.machine.guard(guest.reinstallDriver(vm.session));
    if (ins.code !== 0) problems.push(`loading the driver after the case failed: ${(ins.stderr || ins.stdout).trim()}`);
  }
  await guest.clearKernelLog(vm.session);
  try {
    vm.assertNoCrash();
  } catch (e) {
    problems.push((e as Error).message.split('\n')[0]!);
  }
  const dead = await deviceAnswers(ctx, 0);
  if (dead) problems.push(`the device does not answer afterwards: ${dead}`);
  return problems;
}

export function applyPostChecks(c: CaseResult, problems: string[]): CaseResult {
  if (problems.length === 0) return c;
  const why = problems.join('; ');
  return { ...c, status: 'fail', reason: c.status === 'pass' ? `policy held, but: ${why}` : `${c.reason ?? 'failed'}; also: ${why}` };
}

