/**
 * The removal cases of the security suite: the device taken away while a process holds it —
 * BAR2 mapped, blocking and io_uring reads pending (the probe's unplug-prepare holder). A
 * device goes in one of two ways, and each is a case group driven from the host:
 *
 *  - orderly, QMP device_del (the slot's attention button, then the OS's eject). The OS
 *    decides what happens while a handle is open (GuestTraits.orderlyRemoval): where the
 *    removal proceeds (Linux) the pair `unplug-while-mapped` / `unplug-reads-pending` checks
 *    that the driver revokes everything the holder has; where the driver vetoes it (Windows)
 *    `unplug-vetoed-while-open` checks the veto, the device still serving, and the same
 *    removal completing once the holder let go;
 *  - surprise, the device's own fault (SPEC §11 `fault=surprise-removal`: the link drops,
 *    then the card is gone with no eject request, as a pulled card): the pair
 *    `surprise-removal-while-mapped` / `surprise-removal-reads-pending`, on every OS.
 *
 * After each group the device is plugged back into its slot as it was and must answer.
 */
import type { GuestTraits } from '../guest/guest.ts';
import type { CaseResult } from '../report/results.ts';
import { deviceProperties, wantsFeed } from '../scenario/device-props.ts';
import { plugDevice } from '../qmp/hotplug.ts';
import { deviceDel } from '../qmp/device.ts';
import type { PlannedCase } from './plan.ts';
import { asPlanned, runProbe } from './probe.ts';
import type { SuiteContext } from './context.ts';
import { deviceAnswers } from './answers.ts';

export const ORDERLY_CASES = ['unplug-while-mapped', 'unplug-reads-pending'] as const;
export const VETO_CASE = 'unplug-vetoed-while-open';
export const SURPRISE_CASES = ['surprise-removal-while-mapped', 'surprise-removal-reads-pending'] as const;
/** How long an orderly removal must stay refused while the holder has the device open. */
const VETO_HOLD_MS = 20_000;

const ORDERLY_POLICY = 'Orderly removal (QMP device_del) while a process has the framebuffer mapped and reads pending: the removal proceeds, the mapping is revoked, pending reads complete with an error, and nothing crashes.';
const VETO_POLICY = 'Orderly removal (QMP device_del: attention button, PnP query-remove) while a process holds the device open (handle, view, pending reads) is vetoed by the driver: the device stays and keeps serving; once the process let go, the same removal completes.';
const SURPRISE_POLICY = 'Surprise removal (device fault surprise-removal: the link drops, then the card is gone with no eject request) while a process has the framebuffer mapped and reads pending: the mapping is revoked, pending reads complete with an error, nothing touches the removed device, and nothing crashes.';

/** The removal case names a guest runs, in run order. */
export function removalCaseNames(t: Pick<GuestTraits, 'orderlyRemoval'>): string[] {
  return [...(t.orderlyRemoval === 'proceeds' ? ORDERLY_CASES : [VETO_CASE]), ...SURPRISE_CASES];
}

export function isRemovalCase(name: string): boolean {
  return (ORDERLY_CASES as readonly string[]).includes(name) || (SURPRISE_CASES as readonly string[]).includes(name) || name === VETO_CASE;
}

type Group = 'orderly' | 'surprise' | 'veto';
const groupOf = (name: string): Group => ((SURPRISE_CASES as readonly string[]).includes(name) ? 'surprise' : name === VETO_CASE ? 'veto' : 'orderly');

/** Runs each group once, the first time one of its cases is asked for. */
export function removalRunner(ctx: SuiteContext): (p: PlannedCase) => Promise<CaseResult> {
  const groups = new Map<Group, Promise<CaseResult[]>>();
  return async (p) => {
    const g = groupOf(p.name);
    let run = groups.get(g);
    if (!run) {
      run = g === 'orderly' ? removeWhileHeld(ctx, ORDERLY_CASES, ORDERLY_POLICY, orderly) : g === 'surprise' ? removeWhileHeld(ctx, SURPRISE_CASES, SURPRISE_POLICY, surprise) : vetoWhileOpen(ctx);
      groups.set(g, run);
    }
    const c = (await run).find((r) => r.name === p.name);
    return c ? asPlanned(c, p) : { suite: p.suite, name: p.name, status: 'fail', reason: `the ${g} removal reported no ${p.name} result` };
  };
}

export interface Removal {
  remove(ctx: SuiteContext, id: string): Promise<void>;
  /** Before the card goes back into the slot (after unplug-check). */
  settle?(ctx: SuiteContext): Promise<void>;
}

export const orderly: Removal = { remove: async ({ vm }, id) => deviceDel(vm.qmp, id, vm.scaled(60_000)) };

export const surprise: Removal = {
  async remove({ vm }, id) {
    const deleted = vm.qmp.waitForEvent('DEVICE_DELETED', (e) => e.data?.['device'] === id, vm.scaled(30_000));
    deleted.catch(() => {}); // awaited below; a qom-set failure must not leave it unhandled
    await vm.qmp.execute('qom-set', { path: `/machine/peripheral/${id}`, property: 'fault', value: 'surprise-removal' });
    await deleted;
  },
  // QEMU removed the card at once; the guest is still shutting the slot down.
  settle: ({ vm }) => vm.machine.guard(vm.guest.settleAfterSurpriseRemoval(vm.session)),
};

/** The scenario's device back into its slot rp0; undefined when it answers again, else why not. */
export async function replug(ctx: SuiteContext, id: string): Promise<string | undefined> {
  const { vm, scenario } = ctx;
  const props = deviceProperties(scenario.device) as Record<string, string | number | boolean>;
  try {
    await plugDevice(vm.qmp, { id, bus: 'rp0', props: wantsFeed(scenario.device) ? { ...props, chardev: 'hbfeed' } : props });
  } catch (e) {
    return `device_add ${id}: ${(e as Error).message.split('\n')[0]}`;
  }
  const why = await deviceAnswers(ctx, vm.scaled(30_000));
  return why && `the re-plugged device does not answer: ${why}`;
}

/** unplug-prepare in the guest, the removal from the host, unplug-check (its two results renamed to `names`), re-plug. */
async function removeWhileHeld(ctx: SuiteContext, names: readonly [string, string], policy: string, removal: Removal): Promise<CaseResult[]> {
  const { vm } = ctx;
  const fail = (reason: string): CaseResult[] => names.map((name) => ({ suite: 'security', name, status: 'fail', policy, reason }));
  const [prep] = await runProbe(vm, ['security', '--case', 'unplug-prepare'], { suite: 'security', step: 'unplug-prepare', timeoutMs: ctx.caseTimeoutMs });
  if (!prep || prep.status !== 'pass') return fail(`unplug-prepare: ${prep?.reason ?? 'no result'}`);
  const id = vm.deviceId ?? 'hb0';
  try {
    await removal.remove(ctx, id);
  } catch (e) {
    return fail(`removing ${id}: ${(e as Error).message.split('\n')[0]}`);
  }
  // The probe names its two verdicts after the orderly pair; position says which is which.
  const checked = await runProbe(vm, ['security', '--case', 'unplug-check'], { suite: 'security', step: 'unplug-check', timeoutMs: ctx.caseTimeoutMs });
  await removal.settle?.(ctx);
  const back = await replug(ctx, id);
  return names.map((name, i): CaseResult => {
    const c = checked.find((r) => r.name === ORDERLY_CASES[i]);
    if (!c) return { suite: 'security', name, status: 'fail', policy, reason: `unplug-check reported no ${ORDERLY_CASES[i]} result${checked[0] ? `: ${checked[0].reason ?? checked[0].status}` : ''}` };
    const r: CaseResult = { ...c, name, policy: `${policy} ${c.policy ?? ''}`.trim() };
    if (!back) return r;
    return { ...r, status: 'fail', reason: r.status === 'pass' ? `policy held, but: ${back}` : `${r.reason ?? 'failed'}; also: ${back}` };
  });
}

/** The orderly removal refused while the holder has the device open, then completed once it let go. */
async function vetoWhileOpen(ctx: SuiteContext): Promise<CaseResult[]> {
  const { vm } = ctx;
  const result = (status: 'pass' | 'fail', reason?: string, details?: Record<string, unknown>): CaseResult[] => [
    { suite: 'security', name: VETO_CASE, status, policy: VETO_POLICY, ...(reason ? { reason } : {}), ...(details ? { details } : {}) },
  ];
  const [prep] = await runProbe(vm, ['security', '--case', 'unplug-prepare'], { suite: 'security', step: 'unplug-prepare', timeoutMs: ctx.caseTimeoutMs });
  if (!prep || prep.status !== 'pass') return result('fail', `unplug-prepare: ${prep?.reason ?? 'no result'}`);
  const id = vm.deviceId ?? 'hb0';
  const hold = vm.scaled(VETO_HOLD_MS);
  const gone = vm.qmp.waitForEvent('DEVICE_DELETED', (e) => e.data?.['device'] === id, hold).then(() => true, () => false);
  await vm.qmp.execute('device_del', { id });
  if (await gone) {
    const back = await replug(ctx, id);
    return result('fail', `the device was removed while a process held it open (no veto)${back ? `; also: ${back}` : ''}`);
  }
  const serving = await deviceAnswers(ctx, 0);
  await vm.guest.killProbes(vm.session); // the holder lets go: handle closed, view unmapped, reads cancelled
  try {
    await deviceDel(vm.qmp, id, vm.scaled(60_000));
  } catch (e) {
    return result('fail', `once the holder let go, device_del still did not complete: ${(e as Error).message.split('\n')[0]}`);
  }
  const back = await replug(ctx, id);
  const problems = [...(serving ? [`the device did not serve a new open during the veto: ${serving}`] : []), ...(back ? [back] : [])];
  return problems.length ? result('fail', problems.join('; ')) : result('pass', undefined, { vetoed_for_ms: hold });
}
