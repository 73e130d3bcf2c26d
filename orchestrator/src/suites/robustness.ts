/**
 * The robustness suite: the device misbehaves on command (SPEC §11 faults, set with QMP
 * qom-set on the running device) and the driver must keep its policy (INTERFACE.md §5a), plus
 * stress cycles. Each case states its policy and passes only if the policy held AND the
 * post-checks every security case passes (post-checks.ts: QEMU alive, kernel log clean, the
 * driver unloads and reloads, the device answers). Every fault is cleared again on every path.
 *
 * Counts: `short` in the default run, the issue's full counts with `suites.robustness.full`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { GuestTraits } from '../guest/guest.ts';
import type { CaseResult, Metric } from '../report/results.ts';
import { selectCases } from '../scenario/cases.ts';
import type { Scenario } from '../scenario/schema.ts';
import type { PlannedCase } from './plan.ts';
import { runProbe, skipped } from './probe.ts';
import type { SuiteContext } from './context.ts';
import { deviceAnswers } from './answers.ts';
import { applyPostChecks, postChecks } from './post-checks.ts';
import { orderly, replug, surprise } from './removal.ts';
import { removeDevice } from './devices.ts';

export const ROBUSTNESS_CASES = ['link-down', 'irq-lost', 'spurious-irq', 'irq-storm', 'fifo-burst', 'mmio-spike', 'frame-stall', 'frame-stall-odd', 'bit-flip', 'surprise-removal', 'load-unload', 'unplug-replug', 'open-close'] as const;
export type RobustnessCase = (typeof ROBUSTNESS_CASES)[number];

/** Stress counts: the default run's and the issue's full ones. */
const COUNTS = {
  short: { 'load-unload': 10, 'unplug-replug': 2, 'open-close': 1000 },
  full: { 'load-unload': 100, 'unplug-replug': 20, 'open-close': 10000 },
} as const;
const OPEN_CLOSE_THREADS = 8;

const POLICY: Record<RobustnessCase, string> = {
  'link-down': 'The link drops (every read all ones, fault link-down): a blocked reader and the hardware ioctls fail with EIO within a few watchdog periods, nothing waits on an all-ones register; when the link returns, reads, mappings and ioctls work again (STATS.link_downs counts it).',
  'irq-lost': 'Interrupts are lost on the way (fault irq-lost): events still reach a reader, drained by the watchdog (STATS.fallback_drains grows).',
  'spurious-irq': 'MSIs with nothing to report every millisecond (fault spurious-irq): counted (STATS.irq_spurious), harmless — events flow, no "nobody cared".',
  'irq-storm': 'A stuck interrupt (fault irq-storm: EV_READY stuck through ACK): throttled (masked and polled, STATS.irq_storms), the guest stays responsive, events still reach a reader.',
  'fifo-burst': 'Half a FIFO of records at once (fault fifo-burst): they reach a reader in order and every record the device did not count as dropped arrives.',
  'mmio-spike': 'Every 50th register or trapping framebuffer access takes 1 ms more (fault mmio-spike): copies and mapped reads still verify and events flow.',
  'frame-stall': 'The frame engine stops (fault frame-stall): a consumer waiting for new frames gets a timeout error within its budget, never hangs, and the last frame still copies whole and correct.',
  'frame-stall-odd': 'A writer dies mid-frame (fault frame-stall-odd: FRAME_SEQ stays odd): COPY_FRAME and the mapped seqlocked read give up with a timeout error within their budget, never hang, and return no frame.',
  'bit-flip': 'Pixels are corrupted (fault bit-flip, 100 per million bytes): copies and mapped reads report the corruption (mismatched pixels), never pass such a frame as good.',
  'surprise-removal': 'The card is pulled with nobody holding it (fault surprise-removal): the driver lets go cleanly and a card put back into the slot works.',
  'load-unload': 'The driver loads and unloads N times, a mapped read and an event reader active in every cycle: each cycle works and each unload succeeds.',
  'unplug-replug': 'An orderly hot-unplug and a re-plug N times, the removals alternating between the host\'s (QMP device_del: the attention button) and the guest OS\'s own eject of the slot where it has one: each removal completes and each re-plugged device answers.',
  'open-close': `N open / STATS ioctl / close cycles from ${OPEN_CLOSE_THREADS} threads at once: every one succeeds.`,
};

export function planRobustness(s: Scenario, traits: GuestTraits): PlannedCase[] {
  const counts = COUNTS[s.suites.robustness.full ? 'full' : 'short'];
  return selectCases('robustness', s.suites.robustness.cases, [...ROBUSTNESS_CASES]).map((name): PlannedCase => {
    const p: PlannedCase = { suite: 'robustness', name };
    if (name in counts) p.params = { cycles: counts[name as keyof typeof counts] };
    if (name === 'load-unload' && traits.os !== 'linux') p.skip = `reloads the driver ${counts['load-unload']} times, which a ${traits.os} guest does with a PnP reinstall (not a cycle the suite can time yet)`;
    if (name === 'open-close' && traits.os !== 'linux') p.skip = `needs the probe's _hb-open-close, which the ${traits.os} probe does not have yet`;
    return p;
  });
}

/** What a case found: problems (empty = its policy held), metrics and details to report. */
interface Found {
  problems: string[];
  metrics: Record<string, Metric>;
  details: Record<string, unknown>;
}

export async function runRobustnessSuite(ctx: SuiteContext, plan: readonly PlannedCase[]): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  await ctx.vm.guest.clearKernelLog(ctx.vm.session);
  for (const p of plan) {
    ctx.out.step(`robustness: ${p.name}`);
    if (p.skip) {
      results.push(skipped(p));
      continue;
    }
    const started = Date.now();
    const f: Found = { problems: [], metrics: {}, details: {} };
    try {
      await CASES[p.name as RobustnessCase](ctx, f, Number(p.params?.['cycles'] ?? 0));
    } catch (e) {
      f.problems.push((e as Error).message.split('\n')[0]!);
    } finally {
      await clearFault(ctx, f);
    }
    const c: CaseResult = {
      suite: 'robustness',
      name: p.name,
      status: f.problems.length ? 'fail' : 'pass',
      policy: POLICY[p.name as RobustnessCase],
      ...(f.problems.length ? { reason: f.problems.join('; ') } : {}),
      metrics: f.metrics,
      details: f.details,
      ...(p.params ? { params: p.params } : {}),
    };
    const checked = applyPostChecks(c, await postChecks(ctx));
    checked.durationMs = Date.now() - started;
    results.push(checked);
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// helpers

const qomPath = (ctx: SuiteContext): string => `/machine/peripheral/${ctx.vm.deviceId ?? 'hb0'}`;

async function setFault(ctx: SuiteContext, value: string, params: Record<string, number> = {}): Promise<void> {
  for (const [property, v] of Object.entries(params)) await ctx.vm.qmp.execute('qom-set', { path: qomPath(ctx), property, value: v });
  await ctx.vm.qmp.execute('qom-set', { path: qomPath(ctx), property: 'fault', value });
}

/** The device back to `none` (it may be gone: a surprise removal re-plugs a fresh one). */
async function clearFault(ctx: SuiteContext, f: Found): Promise<void> {
  try {
    await ctx.vm.qmp.execute('qom-set', { path: qomPath(ctx), property: 'fault', value: 'none' });
  } catch (e) {
    f.problems.push(`clearing the fault: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** Waits until the device has published `n` more frames (its `frames-produced` counter). */
async function framesPublished(ctx: SuiteContext, n: number): Promise<void> {
  const count = async (): Promise<number> => Number(await ctx.vm.qmp.qomGet<number>(qomPath(ctx), 'frames-produced'));
  const target = (await count()) + n;
  const deadline = Date.now() + ctx.vm.scaled(10_000);
  while ((await count()) < target) {
    if (Date.now() > deadline) throw new Error(`the device published fewer than ${n} frames in ${ctx.vm.scaled(10_000)} ms`);
    await sleep(10);
  }
}

async function probeOne(ctx: SuiteContext, args: string[], timeoutMs = ctx.caseTimeoutMs): Promise<CaseResult> {
  const [c] = await runProbe(ctx.vm, args, { suite: 'robustness', step: args[0]!, timeoutMs });
  return c ?? { suite: 'robustness', name: args[0]!, status: 'fail', reason: 'no result' };
}

/** One driver counter from the probe's info (STATS). */
async function stat(ctx: SuiteContext, name: string): Promise<number> {
  const c = await probeOne(ctx, ['info']);
  const v = c.metrics?.[name]?.value;
  if (c.status !== 'pass' || v === undefined) throw new Error(`info: ${c.reason ?? `no ${name}`}`);
  return v;
}

/** `count` records reach a reader; a problem otherwise. */
async function eventsFlow(ctx: SuiteContext, f: Found, what: string, count = 50): Promise<CaseResult> {
  const c = await probeOne(ctx, ['read-events', '--count', String(count), '--timeout-ms', String(ctx.vm.scaled(20_000))]);
  if (c.status !== 'pass') f.problems.push(`${what}: reading ${count} events: ${c.reason ?? c.status}`);
  return c;
}

async function framesVerify(ctx: SuiteContext, f: Found, what: string): Promise<void> {
  const c = await probeOne(ctx, ['verify-frames', '--frames', '2', '--method', 'both']);
  if (c.status !== 'pass') f.problems.push(`${what}: verify-frames: ${c.reason ?? c.status}`);
}

const EIO = /EIO|Input\/output error/;

/** verify-frames for `frames` frames with a 3 s budget must end in a timeout, within the budget (scaled). */
async function consumerGivesUp(ctx: SuiteContext, f: Found, frames: number, what: string): Promise<CaseResult> {
  const t0 = Date.now();
  const c = await probeOne(ctx, ['verify-frames', '--frames', String(frames), '--method', 'both', '--timeout-s', '3']);
  const ms = Date.now() - t0;
  f.metrics['consumer_end_ms'] = { value: ms, unit: 'ms' };
  if (c.status === 'pass' || !/timed out/.test(c.reason ?? '')) f.problems.push(`${what}: ${c.reason ?? c.status} (want a timeout)`);
  if (ms > ctx.vm.scaled(15_000)) f.problems.push(`the consumer took ${ms} ms to give up (budget 3 s)`);
  return c;
}

// ---------------------------------------------------------------------------------------------
// the cases

type CaseFn = (ctx: SuiteContext, f: Found, cycles: number) => Promise<void>;

/**
 * Time a reader started over SSH gets to block before the fault: its start takes 0.1–0.4 s
 * under TCG here. Not scaled like a timeout: a reader that is not blocked yet meets the fault
 * on its first read instead, which the case judges the same way.
 */
const READER_START_MS = 1500;

const CASES: Record<RobustnessCase, CaseFn> = {
  async 'link-down'(ctx, f) {
    const { vm } = ctx;
    const before = await stat(ctx, 'link_downs');
    const reading = probeOne(ctx, ['read-events', '--count', '1000000', '--timeout-ms', String(vm.scaled(60_000))], vm.scaled(120_000));
    await sleep(READER_START_MS);
    const t0 = Date.now();
    await setFault(ctx, 'link-down');
    const r = await reading;
    const tookMs = Date.now() - t0;
    f.metrics['reader_end_ms'] = { value: tookMs, unit: 'ms' };
    if (r.status === 'pass' || !EIO.test(r.reason ?? '')) f.problems.push(`the blocked reader did not end with EIO: ${r.reason ?? r.status}`);
    if (tookMs > vm.scaled(10_000)) f.problems.push(`the blocked reader ended ${tookMs} ms after the link dropped`);
    const info = await probeOne(ctx, ['info']);
    if (info.status === 'pass' || !EIO.test(info.reason ?? '')) f.problems.push(`STATS during the link loss: ${info.reason ?? info.status} (want EIO)`);
    await setFault(ctx, 'none');
    const back = await deviceAnswers(ctx, vm.scaled(10_000)); // polls until the link is back
    if (back) {
      f.problems.push(`after the link came back the device does not answer: ${back}`);
      return;
    }
    await eventsFlow(ctx, f, 'after the link came back');
    await framesVerify(ctx, f, 'after the link came back');
    const downs = (await stat(ctx, 'link_downs')) - before;
    f.metrics['link_downs'] = { value: downs, unit: 'times' };
    if (downs !== 1) f.problems.push(`STATS.link_downs grew by ${downs}, not 1`);
  },

  async 'irq-lost'(ctx, f) {
    const before = await stat(ctx, 'fallback_drains');
    await setFault(ctx, 'irq-lost');
    await eventsFlow(ctx, f, 'with interrupts lost');
    const drains = (await stat(ctx, 'fallback_drains')) - before;
    f.metrics['fallback_drains'] = { value: drains, unit: 'drains' };
    if (drains < 1) f.problems.push('no watchdog drain was counted');
    await setFault(ctx, 'none');
    await eventsFlow(ctx, f, 'after the fault');
  },

  async 'spurious-irq'(ctx, f) {
    const before = await stat(ctx, 'irq_spurious');
    await setFault(ctx, 'spurious-irq', { 'fault-period-us': 1000 });
    await sleep(ctx.vm.scaled(2000));
    await eventsFlow(ctx, f, 'with spurious interrupts');
    await setFault(ctx, 'none');
    const n = (await stat(ctx, 'irq_spurious')) - before;
    f.metrics['irq_spurious'] = { value: n, unit: 'irqs' };
    // an INTx pulse on a shared line is someone else's as far as the driver knows: not counted
    if (ctx.scenario.device.msi && n < 1) f.problems.push('no spurious MSI was counted');
    if (/nobody cared/.test(await ctx.vm.kernelLog())) f.problems.push('the kernel disabled the interrupt ("nobody cared")');
  },

  async 'irq-storm'(ctx, f) {
    const { vm } = ctx;
    const before = await stat(ctx, 'irq_storms');
    await setFault(ctx, 'irq-storm');
    await sleep(vm.scaled(2000));
    const t0 = Date.now();
    const echo = await vm.exec('echo responsive', { timeoutMs: vm.scaled(10_000) });
    f.metrics['command_during_storm_ms'] = { value: Date.now() - t0, unit: 'ms' };
    if (!/responsive/.test(echo.stdout)) f.problems.push('the guest did not answer a command during the storm');
    await eventsFlow(ctx, f, 'during the storm');
    await setFault(ctx, 'none');
    const n = (await stat(ctx, 'irq_storms')) - before;
    f.metrics['irq_storms'] = { value: n, unit: 'times' };
    if (n < 1) f.problems.push('the storm was not detected (STATS.irq_storms)');
    await eventsFlow(ctx, f, 'after the storm');
  },

  async 'fifo-burst'(ctx, f) {
    const { vm } = ctx;
    const burst = Math.max(1, Math.floor(ctx.scenario.device['fifo-depth'] / 2));
    const c0 = await vm.deviceCounters();
    const reading = probeOne(ctx, ['read-events', '--count', String(burst), '--timeout-ms', String(vm.scaled(30_000))], vm.scaled(60_000));
    await sleep(vm.scaled(1000));
    await setFault(ctx, 'fifo-burst', { 'fault-burst': burst });
    const r = await reading;
    const dropped = (await vm.deviceCounters())['events-dropped'] - c0['events-dropped'];
    const gaps = r.metrics?.['seq_gaps']?.value ?? 0;
    f.metrics['burst'] = { value: burst, unit: 'records' };
    f.metrics['seq_gaps'] = { value: gaps, unit: 'events' };
    if (r.status !== 'pass') f.problems.push(`reading the burst: ${r.reason ?? r.status}`);
    if (gaps > dropped) f.problems.push(`${gaps} records missing, the device dropped ${dropped}`);
  },

  async 'mmio-spike'(ctx, f) {
    await setFault(ctx, 'mmio-spike', { 'fault-every': 50, 'fault-latency-us': 1000 });
    await framesVerify(ctx, f, 'with slow accesses');
    await eventsFlow(ctx, f, 'with slow accesses');
  },

  async 'frame-stall'(ctx, f) {
    await setFault(ctx, 'frame-stall');
    const c = await consumerGivesUp(ctx, f, 3, 'waiting for new frames of a stalled engine');
    if ((c.metrics?.['copy_frames_verified']?.value ?? 0) < 1) f.problems.push('the last frame did not copy whole');
    for (const m of ['copy_mismatched_pixels', 'map_mismatched_pixels'] as const) if ((c.metrics?.[m]?.value ?? 0) !== 0) f.problems.push(`${m}: ${c.metrics?.[m]?.value}`);
    await setFault(ctx, 'none');
    await framesVerify(ctx, f, 'after the stall');
  },

  async 'frame-stall-odd'(ctx, f) {
    await setFault(ctx, 'frame-stall-odd');
    const c = await consumerGivesUp(ctx, f, 1, 'copying while FRAME_SEQ stays odd');
    if ((c.metrics?.['copy_frames_verified']?.value ?? 0) !== 0) f.problems.push('a frame was returned while FRAME_SEQ was odd');
    await setFault(ctx, 'none');
    await framesVerify(ctx, f, 'after the writer came back');
  },

  async 'bit-flip'(ctx, f) {
    await setFault(ctx, 'bit-flip', { 'fault-rate': 100 });
    const c = await probeOne(ctx, ['verify-frames', '--frames', '2', '--method', 'both']);
    const copy = c.metrics?.['copy_mismatched_pixels']?.value ?? 0;
    const map = c.metrics?.['map_mismatched_pixels']?.value ?? 0;
    f.metrics['copy_mismatched_pixels'] = { value: copy, unit: 'px' };
    f.metrics['map_mismatched_pixels'] = { value: map, unit: 'px' };
    if (c.status === 'pass') f.problems.push('corrupted frames passed as good');
    if (copy < 1 || map < 1) f.problems.push(`corruption not reported by both methods (copy ${copy}, map ${map} mismatched pixels)`);
    await setFault(ctx, 'none');
    await framesPublished(ctx, 2); // SPEC §11: the frame in BAR2 keeps its flips until the next one
    await framesVerify(ctx, f, 'after the corruption stopped');
  },

  async 'surprise-removal'(ctx, f) {
    const id = ctx.vm.deviceId ?? 'hb0';
    await surprise.remove(ctx, id);
    await surprise.settle?.(ctx);
    const back = await replug(ctx, id);
    if (back) f.problems.push(back);
  },

  async 'load-unload'(ctx, f, cycles) {
    const { vm } = ctx;
    const reinstall = vm.guest.reinstallDriver?.bind(vm.guest);
    if (!reinstall) throw new Error('this guest cannot reload its driver');
    for (let i = 1; i <= cycles; i++) {
      const map = await probeOne(ctx, ['verify-frames', '--frames', '1', '--method', 'map']);
      if (map.status !== 'pass') f.problems.push(`cycle ${i}: a mapped read: ${map.reason ?? map.status}`);
      await eventsFlow(ctx, f, `cycle ${i}`, 5);
      const rm = await vm.unloadDriver();
      if (rm.code !== 0) f.problems.push(`cycle ${i}: unloading: ${(rm.stderr || rm.stdout).trim()}`);
      const ld = await vm.machine.guard(reinstall(vm.session));
      if (ld.code !== 0) f.problems.push(`cycle ${i}: loading: ${(ld.stderr || ld.stdout).trim()}`);
      if (f.problems.length) return;
    }
    f.metrics['cycles'] = { value: cycles, unit: 'cycles' };
  },

  async 'unplug-replug'(ctx, f, cycles) {
    const id = ctx.vm.deviceId ?? 'hb0';
    for (let i = 1; i <= cycles; i++) {
      if (i % 2 === 1) await orderly.remove(ctx, id);
      else await removeDevice(ctx.vm, id, 'rp0', ctx.vm.scaled(60_000));
      const back = await replug(ctx, id);
      if (back) {
        f.problems.push(`cycle ${i}: ${back}`);
        return;
      }
    }
    f.metrics['cycles'] = { value: cycles, unit: 'cycles' };
  },

  async 'open-close'(ctx, f, cycles) {
    const c = await probeOne(ctx, ['_hb-open-close', String(cycles), String(OPEN_CLOSE_THREADS)], ctx.vm.scaled(300_000));
    for (const k of ['cycles', 'failures', 'open_close_ms'] as const) if (c.metrics?.[k]) f.metrics[k] = c.metrics[k]!;
    if (c.status !== 'pass') f.problems.push(c.reason ?? 'failed');
  },
};
