/**
 * The throughput suite: the seeds' questions answered by measurement in one run.
 *  - Framebuffer, per fb-mode: zero-copy reads through the mapping, the driver's copy path,
 *    byte-wise reads (the thread's memcmp), 8-byte reads, and the same copy from ordinary guest
 *    RAM as the physical-limit reference; with and without the seqlock. Every case also
 *    measures the RAM reference itself, read by read in the same loop (guest-driver/INTERFACE.md
 *    §6). Beside them, the peer: the same zero-copy reads of a stock QEMU device's BAR
 *    (ivshmem-plain, hot-plugged), `fb-map-ivshmem`.
 *  - Mouse: generator rates × bundles × reads pending, inverted call vs polling vs the
 *    driver-written shared-memory ring (guest-driver/INTERFACE.md §3b), and the host-fed path
 *    (orchestrator → chardev → device → guest process).
 * Device settings other than the booted device's are measured on a hot-plugged device when the
 * guest can find one; otherwise those cases are skipped, saying why.
 */
import { MouseFeeder } from '../feed/mouse-feeder.ts';
import type { GuestTraits } from '../guest/guest.ts';
import type { CaseResult } from '../report/results.ts';
import type { PropValue } from '../qmp/hotplug.ts';
import { selectCases } from '../scenario/cases.ts';
import type { Scenario } from '../scenario/schema.ts';
import type { PlannedCase } from './plan.ts';
import { probeCase, skipped } from './probe.ts';
import type { SuiteContext } from './context.ts';
import { withExtraDevice, withIvshmem } from './devices.ts';

export const FB_METHODS = ['ram', 'map', 'copy', 'qword', 'bytewise'] as const;
/** Rate of the host-fed case (events/s). */
const HOST_FED_RATE = 1000;

interface FbPlanned extends PlannedCase {
  kind: 'fb';
  method: (typeof FB_METHODS)[number];
  fbMode: 'direct' | 'mmio';
}
/** The same reads from a stock QEMU device's RAM BAR: hilbox's zero copy beside a peer. */
interface FbPeerPlanned extends PlannedCase {
  kind: 'fb-peer';
  method: 'map';
  peer: 'ivshmem-plain';
}
interface MousePlanned extends PlannedCase {
  kind: 'mouse';
  mode: 'inverted-call' | 'polling' | 'shared-ring';
  rate: number;
  bundle: number;
  pending: number;
  /** On the booted device (no extra device needed). */
  booted: boolean;
}
interface HostFedPlanned extends PlannedCase {
  kind: 'host-fed';
}
/**
 * The ceiling: events as fast as the device takes them — back-to-back `fifo-burst` faults
 * (SPEC §11: CEILING_BURST records enter the FIFO at once) on a hot-plugged device without a
 * generator — read by one delivery mode.
 */
interface CeilingPlanned extends PlannedCase {
  kind: 'ceiling';
  mode: MousePlanned['mode'];
  pending: number;
}
/** The bare notification cost in the same boot (eventfd write → wake-up), beside the ceiling. */
interface NotifyPlanned extends PlannedCase {
  kind: 'notify';
}
export type ThroughputPlanned = FbPlanned | FbPeerPlanned | MousePlanned | HostFedPlanned | CeilingPlanned | NotifyPlanned;

/** Reads pending in the ceiling's inverted-call rows. */
export const CEILING_PENDING = [1, 4, 16, 64, 256] as const;
/** Records per fifo-burst of the ceiling, and the hot-plugged device's FIFO (SPEC §9 maximum). */
const CEILING_BURST = 4096;
const CEILING_FIFO = 65536;

const NEEDS_HOTPLUG = (os: string, what: string): string => `needs a hot-plugged device (${what}), which a ${os} guest cannot find yet; only the booted device is measured`;

/** What to measure: the scenario's lists, cut down when `short` is set, then to `cases` (unknown names refused, naming the allowed ones). */
export function planThroughput(s: Scenario, traits: GuestTraits): ThroughputPlanned[] {
  const all = planAllThroughput(s, traits);
  const chosen = new Set(selectCases('throughput', s.suites.throughput.cases, all.map((c) => c.name)));
  return all.filter((c) => chosen.has(c.name));
}

function planAllThroughput(s: Scenario, traits: GuestTraits): ThroughputPlanned[] {
  const t = s.suites.throughput;
  const booted = s.device['fb-mode'];
  const out: ThroughputPlanned[] = [];
  for (const fbMode of t.fbModes) {
    // The RAM reference does not depend on the device: measured once, on the booted device.
    for (const method of FB_METHODS.filter((m) => m !== 'ram' || fbMode === booted)) {
      const c: FbPlanned = { suite: 'throughput', kind: 'fb', name: `fb-${method}-${fbMode}`, params: { method, fb_mode: fbMode }, method, fbMode };
      if (fbMode !== booted && !traits.findsHotplugged) c.skip = NEEDS_HOTPLUG(traits.os, `fb-mode ${fbMode}`);
      out.push(c);
    }
    // The peer reads the booted device's geometry: measured once, beside the booted mode's rows.
    if (fbMode === booted) {
      const c: FbPeerPlanned = { suite: 'throughput', kind: 'fb-peer', name: 'fb-map-ivshmem', params: { method: 'map', peer: 'ivshmem-plain' }, method: 'map', peer: 'ivshmem-plain' };
      if (!traits.mapsPeerBars) c.skip = `needs another PCI device's BAR mapped by the probe, which a ${traits.os} guest cannot do yet`;
      out.push(c);
    }
  }
  const bootedRate = s.device['mouse-rate-hz'];
  const bootedBundle = s.device['mouse-bundle'];
  let pairs = t.mouse.rates.flatMap((rate) => t.mouse.bundles.map((bundle) => ({ rate, bundle })));
  if (t.short) pairs = pairs.filter((p) => p.rate === Math.max(...t.mouse.rates));
  const pending = t.short ? t.mouse.pending.filter((_, i, a) => i === 0 || i === a.length - 1) : [...t.mouse.pending];
  if (!traits.findsHotplugged && bootedRate > 0 && !pairs.some((p) => p.rate === bootedRate && p.bundle === bootedBundle)) pairs.push({ rate: bootedRate, bundle: bootedBundle });
  for (const { rate, bundle } of pairs) {
    const booted = !traits.findsHotplugged;
    const skip = booted && (rate !== bootedRate || bundle !== bootedBundle) ? NEEDS_HOTPLUG(traits.os, `mouse-rate-hz ${rate}, mouse-bundle ${bundle}`) : undefined;
    const mk = (mode: MousePlanned['mode'], n: number, name: string): MousePlanned => ({
      suite: 'throughput',
      kind: 'mouse',
      name,
      params: { mode, rate_hz: rate, bundle, pending: n },
      mode,
      rate,
      bundle,
      pending: n,
      booted,
      ...(skip ? { skip } : {}),
    });
    for (const n of pending) out.push(mk('inverted-call', n, `mouse-inverted-call-r${rate}-b${bundle}-p${n}`));
    out.push(mk('polling', 1, `mouse-polling-r${rate}-b${bundle}`));
    const ring = mk('shared-ring', 1, `mouse-shared-ring-r${rate}-b${bundle}`);
    if (!traits.eventModes.sharedRing && !ring.skip) ring.skip = `a ${traits.os} guest's driver has no shared-memory event ring yet`;
    out.push(ring);
  }
  const noHotplug = traits.findsHotplugged ? undefined : NEEDS_HOTPLUG(traits.os, 'without a generator, for fifo-burst loads');
  // icount (SPEC §4.5): the bursts are fired by the host as fast as QMP answers, while the
  // reading guest's clock jumps ahead whenever it waits: its window ends before the load lands.
  const hostPaced = s.icount !== undefined ? 'the ceiling\'s fifo-bursts are fired by the host as fast as QMP answers, not paced by the guest clock: not measurable under icount (SPEC §4.5)' : undefined;
  const ceiling = (mode: CeilingPlanned['mode'], pending: number, name: string): CeilingPlanned => {
    const c: CeilingPlanned = { suite: 'throughput', kind: 'ceiling', name, params: { mode, rate_hz: 0, bundle: CEILING_BURST, pending, load: 'fifo-burst' }, mode, pending };
    if (noHotplug) c.skip = noHotplug;
    else if (hostPaced) c.skip = hostPaced;
    else if (mode === 'shared-ring' && !traits.eventModes.sharedRing) c.skip = `a ${traits.os} guest's driver has no shared-memory event ring yet`;
    return c;
  };
  for (const n of CEILING_PENDING) out.push(ceiling('inverted-call', n, `ceiling-inverted-call-p${n}`));
  out.push(ceiling('polling', 1, 'ceiling-polling'));
  out.push(ceiling('shared-ring', 1, 'ceiling-shared-ring'));
  out.push({
    suite: 'throughput',
    kind: 'notify',
    name: 'notify-baseline',
    params: { mode: 'notify', mechanism: 'eventfd' },
    ...(traits.os === 'linux' ? {} : { skip: `the notification baseline is measured with eventfd, which a ${traits.os} guest has not` }),
  });
  out.push({
    suite: 'throughput',
    kind: 'host-fed',
    name: `mouse-host-fed-r${HOST_FED_RATE}`,
    params: { mode: 'host-fed', rate_hz: HOST_FED_RATE, bundle: 1, pending: 16 },
    ...(traits.findsHotplugged ? {} : { skip: NEEDS_HOTPLUG(traits.os, 'with a host feed') }),
    // icount (SPEC §4.5): host-fed events arrive at whatever guest time the host gets to them,
    // and an idle guest's clock jumps ahead of the host: not a measurement in guest time.
    ...(s.icount !== undefined ? { skip: 'the host feed is paced by the host, not by the guest clock: not measurable under icount (SPEC §4.5)' } : {}),
  });
  return out;
}

function geometry(s: Scenario): Record<string, PropValue> {
  const d = s.device;
  return { width: d.width, height: d.height, stride: d.stride, fps: d.fps };
}

const extraTime = (ctx: SuiteContext): number => ctx.caseTimeoutMs + ctx.scenario.suites.throughput.seconds * 4000;

async function fbCase(ctx: SuiteContext, c: FbPlanned, dev?: string): Promise<CaseResult> {
  ctx.out.step(`throughput: framebuffer ${c.method} (${c.fbMode})`);
  const seconds = String(ctx.scenario.suites.throughput.seconds);
  return probeCase(ctx.vm, c, ['fb-throughput', '--method', c.method, '--seconds', seconds, '--seqlock', 'both'], { timeoutMs: extraTime(ctx), ...(dev ? { dev } : {}) });
}

/** The smallest power of two that holds the booted device's frame: BAR2's size (SPEC §2). */
function frameBarSize(s: Scenario): number {
  const d = s.device;
  const bytes = (d.stride || 3 * d.width) * d.height;
  return 2 ** Math.ceil(Math.log2(Math.max(bytes, 4096)));
}

async function fbPeerCase(ctx: SuiteContext, c: FbPeerPlanned): Promise<CaseResult> {
  return withIvshmem(ctx.vm, { id: 'ivfb', bus: 'rp2', size: frameBarSize(ctx.scenario) }, async (d) => {
    ctx.out.step(`throughput: framebuffer ${c.method} (${c.peer} peer)`);
    const seconds = String(ctx.scenario.suites.throughput.seconds);
    const r = await probeCase(ctx.vm, c, ['fb-throughput', '--method', c.method, '--seconds', seconds, '--peer-bar', d.bar], { timeoutMs: extraTime(ctx) });
    r.details = { ...(r.details ?? {}), peer: c.peer };
    return r;
  });
}

async function mouseCase(ctx: SuiteContext, c: MousePlanned, dev?: string): Promise<CaseResult> {
  const m = probeModeOf(ctx, c.mode);
  if (!m) return skipped({ ...c, skip: `the guest has no ${c.mode} event mode` });
  ctx.out.step(`throughput: mouse ${c.rate} Hz ×${c.bundle}, ${c.mode}${c.mode === 'inverted-call' ? `, ${c.pending} pending` : ''}`);
  const seconds = String(ctx.scenario.suites.throughput.seconds);
  const r = await probeCase(ctx.vm, c, ['events-throughput', '--pending', String(c.pending), '--seconds', seconds, '--mode', m.probeMode], { timeoutMs: extraTime(ctx), ...(dev ? { dev } : {}) });
  r.details = { ...(r.details ?? {}), mechanism: m.mechanism };
  return r;
}

async function hostFedCase(ctx: SuiteContext, c: HostFedPlanned): Promise<CaseResult> {
  const props = { ...geometry(ctx.scenario), 'mouse-rate-hz': 0 };
  const t = ctx.scenario.suites.throughput;
  return withExtraDevice(ctx.vm, { id: 'hbfeedt', bus: 'rp2', props, feed: true, runDir: ctx.runDir }, async (d) => {
    ctx.out.step(`throughput: host-fed events at ${HOST_FED_RATE}/s`);
    const seconds = t.seconds + 2;
    const reading = probeCase(ctx.vm, c, ['events-throughput', '--pending', '16', '--seconds', String(seconds), '--mode', ctx.vm.guest.eventModes.invertedCall.probeMode], {
      timeoutMs: ctx.caseTimeoutMs + seconds * 4000,
      dev: d.dev,
    });
    await new Promise((r) => setTimeout(r, 1000));
    const feeder = await MouseFeeder.connect(d.feedSocket!);
    try {
      const fed = await feeder.feed(HOST_FED_RATE * t.seconds, { eventsPerSecond: HOST_FED_RATE, bundle: 1 });
      const r = await reading;
      r.metrics = { ...(r.metrics ?? {}), host_fed_events: { value: fed.events, unit: 'events' }, host_feed_rate: { value: fed.rate, unit: 'events/s' } };
      return r;
    } finally {
      feeder.close();
    }
  });
}

function probeModeOf(ctx: SuiteContext, mode: MousePlanned['mode']): { probeMode: string; mechanism: string } | undefined {
  const modes = ctx.vm.guest.eventModes;
  return mode === 'polling' ? modes.polling : mode === 'shared-ring' ? modes.sharedRing : modes.invertedCall;
}

/** One ceiling row: the probe reads for `seconds` while the host fires fifo-bursts back to back. */
async function ceilingCase(ctx: SuiteContext, c: CeilingPlanned, d: { id: string; dev: string }): Promise<CaseResult> {
  const m = probeModeOf(ctx, c.mode);
  if (!m) return skipped({ ...c, skip: `the guest has no ${c.mode} event mode` });
  const t = ctx.scenario.suites.throughput;
  const path = `/machine/peripheral/${d.id}`;
  ctx.out.step(`throughput: ceiling, ${c.mode}${c.mode === 'inverted-call' ? `, ${c.pending} pending` : ''}`);
  const seconds = t.seconds + 1.5;
  const reading = probeCase(ctx.vm, c, ['events-throughput', '--pending', String(c.pending), '--seconds', String(seconds), '--mode', m.probeMode], {
    timeoutMs: ctx.caseTimeoutMs + seconds * 4000,
    dev: d.dev,
  });
  await new Promise((r) => setTimeout(r, 1000));
  let bursts = 0;
  const end = Date.now() + t.seconds * 1000;
  while (Date.now() < end) {
    await ctx.vm.qmp.execute('qom-set', { path, property: 'fault', value: 'fifo-burst' });
    bursts++;
  }
  const r = await reading;
  r.details = { ...(r.details ?? {}), mechanism: m.mechanism, load: `${bursts} fifo-bursts of ${CEILING_BURST} records` };
  r.metrics = { ...(r.metrics ?? {}), bursts: { value: bursts, unit: 'bursts' } };
  return r;
}

async function notifyCase(ctx: SuiteContext, c: NotifyPlanned): Promise<CaseResult> {
  ctx.out.step('throughput: notification baseline (eventfd write → wake-up)');
  return probeCase(ctx.vm, c, ['notify-baseline', '--count', '2000'], { timeoutMs: ctx.caseTimeoutMs });
}

/** Runs `cases` in plan order, grouping those that share an extra device onto one hot-plug. */
export async function runThroughputSuite(ctx: SuiteContext, plan: readonly ThroughputPlanned[]): Promise<CaseResult[]> {
  const s = ctx.scenario;
  const booted = s.device['fb-mode'];
  const done = new Map<ThroughputPlanned, CaseResult>();
  const runGroup = async <T extends ThroughputPlanned>(group: T[], run: (c: T, dev?: string) => Promise<CaseResult>, device?: { id: string; props: Record<string, PropValue> }): Promise<void> => {
    const todo = group.filter((c) => !c.skip);
    if (todo.length === 0) return;
    if (!device) {
      for (const c of todo) done.set(c, await run(c));
      return;
    }
    await withExtraDevice(ctx.vm, { ...device, bus: 'rp1', runDir: ctx.runDir }, async (d) => {
      for (const c of todo) done.set(c, await run(c, d.dev));
    });
  };
  const fb = plan.filter((c): c is FbPlanned => c.kind === 'fb');
  for (const mode of [...new Set(fb.map((c) => c.fbMode))]) {
    const group = fb.filter((c) => c.fbMode === mode);
    const props = { ...geometry(s), 'fb-mode': mode, 'mouse-rate-hz': 0 };
    await runGroup(group, (c, dev) => fbCase(ctx, c, dev), mode === booted ? undefined : { id: `hbfb${mode}`, props });
  }
  for (const c of plan) if (c.kind === 'fb-peer' && !c.skip) done.set(c, await fbPeerCase(ctx, c));
  const mouse = plan.filter((c): c is MousePlanned => c.kind === 'mouse');
  for (const key of [...new Set(mouse.map((c) => `${c.rate}x${c.bundle}`))]) {
    const group = mouse.filter((c) => `${c.rate}x${c.bundle}` === key);
    const { rate, bundle, booted: onBooted } = group[0]!;
    const props = { ...geometry(s), 'mouse-rate-hz': rate, 'mouse-bundle': bundle, 'fifo-depth': s.device['fifo-depth'] };
    await runGroup(group, (c, dev) => mouseCase(ctx, c, dev), onBooted ? undefined : { id: `hbm${key}`, props });
  }
  const ceil = plan.filter((c): c is CeilingPlanned => c.kind === 'ceiling' && !c.skip);
  if (ceil.length > 0) {
    const props = { ...geometry(s), 'mouse-rate-hz': 0, 'fifo-depth': CEILING_FIFO };
    await withExtraDevice(ctx.vm, { id: 'hbceil', bus: 'rp2', props, runDir: ctx.runDir }, async (d) => {
      await ctx.vm.qmp.execute('qom-set', { path: `/machine/peripheral/${d.id}`, property: 'fault-burst', value: CEILING_BURST });
      for (const c of ceil) done.set(c, await ceilingCase(ctx, c, d));
    });
  }
  for (const c of plan) if (c.kind === 'notify' && !c.skip) done.set(c, await notifyCase(ctx, c));
  for (const c of plan) if (c.kind === 'host-fed' && !c.skip) done.set(c, await hostFedCase(ctx, c));
  return plan.map((c) => done.get(c) ?? skipped(c));
}
