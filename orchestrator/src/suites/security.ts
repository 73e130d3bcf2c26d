/**
 * The security suite: every hostile use of the handle the seeds worry about. Each case states
 * its policy and passes only if the policy held (the probe's verdict) AND the guest kernel log
 * stayed free of oopses/warnings AND QEMU is alive AND the driver still unloads (and reloads)
 * cleanly afterwards. Hot-unplug cases are driven from the host with QMP device_del.
 */
import type { CaseResult } from '../report/results.ts';
import { scanForCrashes } from '../vm/crash-scan.ts';
import { selectCases } from '../scenario/cases.ts';
import { deviceProperties, wantsFeed } from '../scenario/device-props.ts';
import { plugDevice } from '../qmp/hotplug.ts';
import { deviceDel } from '../qmp/device.ts';
import { runProbe } from './probe.ts';
import type { SuiteContext } from './context.ts';

interface ListedCase {
  name: string;
  policy?: string;
  host_action: boolean;
}

const UNPLUG_CASES = ['unplug-while-mapped', 'unplug-reads-pending'];
const UNPLUG_POLICY = 'Hot-unplug (QMP device_del) while a process has the framebuffer mapped and reads pending: the mapping is revoked (later access faults, no access to a removed device), pending reads complete with ENODEV, and nothing crashes.';

async function listCases(ctx: SuiteContext): Promise<ListedCase[]> {
  const r = await ctx.vm.exec('/usr/bin/hilbox-probe security --list', { timeoutMs: 30_000 });
  const parsed = JSON.parse(r.stdout.trim().split('\n')[0] ?? '{}') as { cases?: ListedCase[] };
  return parsed.cases ?? [];
}

/** The kernel log, QEMU and module checks that every security case must also pass. */
async function postChecks(ctx: SuiteContext): Promise<string[]> {
  const { vm } = ctx;
  const problems: string[] = [];
  try {
    const status = await vm.qmp.execute<{ status: string }>('query-status');
    if (status.status !== 'running') problems.push(`QEMU is ${status.status}, not running`);
  } catch (e) {
    problems.push(`QEMU does not answer: ${(e as Error).message.split('\n')[0]}`);
    return problems;
  }
  const log = await vm.exec('dmesg', { timeoutMs: 30_000 });
  const hits = scanForCrashes(log.stdout);
  if (hits.length) problems.push(`kernel log: ${hits.map((h) => `${h.signature}: ${(h.lines[0] ?? '').trim()}`).slice(0, 3).join(' | ')}`);
  // Leftover probe processes of the case would hold the device open: they are ours, stop them.
  await vm.exec('pkill -9 -f hilbox-probe; sleep 0.2; true', { timeoutMs: 30_000 });
  const rm = await vm.exec('rmmod hilbox', { timeoutMs: 60_000 });
  if (rm.code !== 0) problems.push(`rmmod hilbox failed: ${(rm.stderr || rm.stdout).trim()}`);
  const ins = await vm.exec('insmod /lib/modules/hilbox/hilbox.ko && dmesg -c >/dev/null', { timeoutMs: 60_000 });
  if (ins.code !== 0) problems.push(`insmod after the case failed: ${(ins.stderr || ins.stdout).trim()}`);
  try {
    ctx.vm.assertNoCrash();
  } catch (e) {
    problems.push((e as Error).message.split('\n')[0]!);
  }
  return problems;
}

function applyPostChecks(c: CaseResult, problems: string[]): CaseResult {
  if (problems.length === 0) return c;
  const why = problems.join('; ');
  return { ...c, status: 'fail', reason: c.status === 'pass' ? `policy held, but: ${why}` : `${c.reason ?? 'failed'}; also: ${why}` };
}

export async function runSecuritySuite(ctx: SuiteContext): Promise<CaseResult[]> {
  const { vm, scenario, out } = ctx;
  const listed = await listCases(ctx);
  const probeCases = listed.filter((c) => !c.host_action).map((c) => c.name);
  const known = [...probeCases, ...UNPLUG_CASES];
  const selected = selectCases('security', scenario.suites.security.cases, known);
  const results: CaseResult[] = [];
  await vm.exec('dmesg -c >/dev/null', { timeoutMs: 30_000 });
  for (const name of selected) {
    out.step(`security: ${name}`);
    const started = Date.now();
    let cases: CaseResult[];
    if (UNPLUG_CASES.includes(name)) {
      cases = (await unplugCases(ctx)).filter((c) => c.name === name);
    } else {
      cases = await runProbe(vm, ['security', '--case', name], { suite: 'security', step: name, timeoutMs: ctx.caseTimeoutMs });
    }
    const problems = await postChecks(ctx);
    for (const c of cases) {
      c.policy ??= listed.find((l) => l.name === c.name)?.policy ?? UNPLUG_POLICY;
      c.durationMs = Date.now() - started;
      results.push(applyPostChecks(c, problems));
    }
  }
  return results;
}

/** unplug-prepare in the guest, device_del from the host, unplug-check, then the device comes back. */
let unplugMemo: Promise<CaseResult[]> | undefined;
function unplugCases(ctx: SuiteContext): Promise<CaseResult[]> {
  unplugMemo ??= runUnplug(ctx);
  return unplugMemo;
}

async function runUnplug(ctx: SuiteContext): Promise<CaseResult[]> {
  const { vm, scenario } = ctx;
  const fail = (reason: string): CaseResult[] => UNPLUG_CASES.map((name) => ({ suite: 'security', name, status: 'fail', policy: UNPLUG_POLICY, reason }));
  const [prep] = await runProbe(vm, ['security', '--case', 'unplug-prepare'], { suite: 'security', step: 'unplug-prepare', timeoutMs: ctx.caseTimeoutMs });
  if (!prep || prep.status !== 'pass') return fail(`unplug-prepare: ${prep?.reason ?? 'no result'}`);
  const id = vm.deviceId ?? 'hb0';
  try {
    await deviceDel(vm.qmp, id, vm.scaled(30_000));
  } catch (e) {
    return fail(`device_del ${id}: ${(e as Error).message.split('\n')[0]}`);
  }
  const checked = await runProbe(vm, ['security', '--case', 'unplug-check'], { suite: 'security', step: 'unplug-check', timeoutMs: ctx.caseTimeoutMs });
  // Bring the device back exactly as it was, for the cases that follow.
  const props = deviceProperties(scenario.device) as Record<string, string | number | boolean>;
  await plugDevice(vm.qmp, { id, bus: 'rp0', props: wantsFeed(scenario.device) ? { ...props, chardev: 'hbfeed' } : props });
  await vm.exec('for i in $(seq 50); do [ -e /dev/hilbox0 ] && break; sleep 0.2; done; [ -e /dev/hilbox0 ]', { timeoutMs: vm.scaled(30_000) });
  const byName = new Map(checked.map((c) => [c.name, c]));
  return UNPLUG_CASES.map((name) => byName.get(name) ?? { suite: 'security', name, status: 'fail', policy: UNPLUG_POLICY, reason: `unplug-check reported no ${name} result` });
}

export function resetUnplugMemo(): void {
  unplugMemo = undefined;
}
