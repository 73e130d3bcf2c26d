/**
 * The security suite: every hostile use of the handle the seeds worry about. Each case states
 * its policy and passes only if the policy held (the probe's verdict) AND the guest kernel log
 * stayed free of crash signatures AND QEMU is alive AND the device still answers afterwards AND,
 * where the guest can (guest.reinstallDriver), the driver unloads and reloads cleanly. Hot-unplug
 * cases are driven from the host with QMP device_del; the hostile-load cases are in hostile.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { GuestTraits } from '../guest/guest.ts';
import type { CaseResult } from '../report/results.ts';
import { scanForCrashes } from '../vm/crash-scan.ts';
import { selectCases } from '../scenario/cases.ts';
import type { Scenario } from '../scenario/schema.ts';
import { deviceProperties, wantsFeed } from '../scenario/device-props.ts';
import { plugDevice } from '../qmp/hotplug.ts';
import { deviceDel } from '../qmp/device.ts';
import type { PlannedCase } from './plan.ts';
import { asPlanned, probeCase, runProbe, skipped } from './probe.ts';
import type { SuiteContext } from './context.ts';
import { HOSTILE_CASES, runHostile, type HostileCase } from './hostile.ts';

/** Cases the host drives (device_del between the probe's unplug-prepare and unplug-check steps). */
export const UNPLUG_CASES = ['unplug-while-mapped', 'unplug-reads-pending'] as const;
/** Their policy when the host side fails before the probe could state its own (unplug-check does). */
const UNPLUG_POLICY = 'Hot-unplug (QMP device_del) while a process has the framebuffer mapped and reads pending: the mapping is revoked, pending reads complete with an error, and nothing crashes.';

/** Every security case name this guest knows, in run order. */
export function securityCaseNames(traits: GuestTraits): string[] {
  return [...traits.securityCases, ...UNPLUG_CASES, ...HOSTILE_CASES];
}

export function planSecurity(s: Scenario, traits: GuestTraits): PlannedCase[] {
  return selectCases('security', s.suites.security.cases, securityCaseNames(traits)).map((name): PlannedCase => {
    if (!(HOSTILE_CASES as readonly string[]).includes(name)) return { suite: 'security', name };
    if (!traits.findsHotplugged) return { suite: 'security', name, skip: `needs a hot-plugged device, which a ${traits.os} guest cannot find yet (no listDeviceNodes)` };
    if (name === 'irq-drain-bounded' && s.driver?.path) return { suite: 'security', name, skip: 'reloads the image\'s hilbox.ko with ring_size=65536; not run against a scenario\'s own driver (driver.path)' };
    return { suite: 'security', name };
  });
}

interface ListedCase {
  name: string;
  policy?: string;
  host_action: boolean;
}

/** The probe's own case list (policies), read in the guest. */
async function listCases(ctx: SuiteContext): Promise<ListedCase[]> {
  const r = await ctx.vm.probe(['security', '--list'], { timeoutMs: 30_000 });
  const parsed = JSON.parse(r.stdout.trim().split('\n')[0] ?? '{}') as { cases?: ListedCase[] };
  return parsed.cases ?? [];
}

/** The device answers the probe's info command within `ms` (after a re-plug: PnP/udev take a moment). */
async function deviceAnswers(ctx: SuiteContext, ms: number): Promise<string | undefined> {
  const deadline = Date.now() + ms;
  let why = 'no attempt';
  for (;;) {
    const [c] = await runProbe(ctx.vm, ['info'], { suite: 'security', step: 'post-check', timeoutMs: ctx.caseTimeoutMs });
    if (c?.status === 'pass') return undefined;
    why = c?.reason ?? 'no result';
    if (Date.now() > deadline) return why;
    await sleep(500);
  }
}

/** The checks every security case must also pass; returns the problems found. */
async function postChecks(ctx: SuiteContext): Promise<string[]> {
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

function applyPostChecks(c: CaseResult, problems: string[]): CaseResult {
  if (problems.length === 0) return c;
  const why = problems.join('; ');
  return { ...c, status: 'fail', reason: c.status === 'pass' ? `policy held, but: ${why}` : `${c.reason ?? 'failed'}; also: ${why}` };
}

export async function runSecuritySuite(ctx: SuiteContext, plan: readonly PlannedCase[]): Promise<CaseResult[]> {
  const { vm, out } = ctx;
  const listed = await listCases(ctx);
  const results: CaseResult[] = [];
  let unplug: Promise<CaseResult[]> | undefined;
  await vm.guest.clearKernelLog(vm.session);
  for (const p of plan) {
    out.step(`security: ${p.name}`);
    const started = Date.now();
    let c: CaseResult;
    if (p.skip) {
      results.push(skipped(p));
      continue;
    }
    if ((HOSTILE_CASES as readonly string[]).includes(p.name)) {
      c = await runHostile(ctx, p, p.name as HostileCase);
    } else if ((UNPLUG_CASES as readonly string[]).includes(p.name)) {
      unplug ??= runUnplug(ctx);
      c = (await unplug).find((u) => u.name === p.name)!;
    } else {
      c = await probeCase(vm, p, ['security', '--case', p.name], { timeoutMs: ctx.caseTimeoutMs });
    }
    const problems = await postChecks(ctx);
    c.policy ??= listed.find((l) => l.name === p.name)?.policy;
    c.durationMs = Date.now() - started;
    results.push(applyPostChecks(c, problems));
  }
  return results;
}

/** unplug-prepare in the guest, device_del from the host, unplug-check, then the device comes back as it was. */
async function runUnplug(ctx: SuiteContext): Promise<CaseResult[]> {
  const { vm, scenario } = ctx;
  const planned = UNPLUG_CASES.map((name): PlannedCase => ({ suite: 'security', name }));
  const fail = (reason: string): CaseResult[] => planned.map((p) => ({ suite: p.suite, name: p.name, status: 'fail', policy: UNPLUG_POLICY, reason }));
  const [prep] = await runProbe(vm, ['security', '--case', 'unplug-prepare'], { suite: 'security', step: 'unplug-prepare', timeoutMs: ctx.caseTimeoutMs });
  if (!prep || prep.status !== 'pass') return fail(`unplug-prepare: ${prep?.reason ?? 'no result'}`);
  const id = vm.deviceId ?? 'hb0';
  try {
    await deviceDel(vm.qmp, id, vm.scaled(60_000));
  } catch (e) {
    return fail(`device_del ${id}: ${(e as Error).message.split('\n')[0]} (a driver that vetoes an orderly removal keeps the device)`);
  }
  const checked = await runProbe(vm, ['security', '--case', 'unplug-check'], { suite: 'security', step: 'unplug-check', timeoutMs: ctx.caseTimeoutMs });
  const props = deviceProperties(scenario.device) as Record<string, string | number | boolean>;
  await plugDevice(vm.qmp, { id, bus: 'rp0', props: wantsFeed(scenario.device) ? { ...props, chardev: 'hbfeed' } : props });
  const back = await deviceAnswers(ctx, vm.scaled(30_000));
  const byName = new Map(checked.map((c) => [c.name, c]));
  return planned.map((p) => {
    const c = byName.get(p.name);
    if (!c) return { suite: p.suite, name: p.name, status: 'fail', policy: UNPLUG_POLICY, reason: `unplug-check reported no ${p.name} result` };
    const r = asPlanned(c, p);
    return back ? applyPostChecks(r, [`the re-plugged device does not answer: ${back}`]) : r;
  });
}
