/**
 * The throughput suite: the seeds' questions answered by measurement in one run.
 *  - Framebuffer, per fb-mode: zero-copy reads through the mapping, the driver's copy path,
 *    byte-wise reads (the thread's memcmp), 8-byte reads, and the same copy from ordinary guest
 *    RAM as the physical-limit reference; with and without the seqlock.
 *  - Mouse: generator rates × bundles × reads pending, inverted call (io_uring) vs polling,
 *    and the host-fed path (orchestrator → chardev → device → guest process).
 * Device settings other than the booted device's are measured on a hot-plugged device.
 */
import { MouseFeeder } from '../feed/mouse-feeder.ts';
import type { CaseResult } from '../report/results.ts';
import type { PropValue } from '../qmp/hotplug.ts';
import { runProbe, tag } from './probe.ts';
import type { SuiteContext } from './context.ts';
import { withExtraDevice } from './devices.ts';

export const FB_METHODS = ['ram', 'map', 'copy', 'qword', 'bytewise'] as const;

export interface ThroughputPlan {
  fbModes: ('direct' | 'mmio')[];
  methods: readonly string[];
  mouse: { rate: number; bundle: number }[];
  pending: number[];
  seconds: number;
  hostFed: boolean;
}

/** What to measure: the scenario's lists, cut down when `short` is set. */
export function throughputPlan(ctx: SuiteContext): ThroughputPlan {
  const t = ctx.scenario.suites.throughput;
  const pairs = t.mouse.rates.flatMap((rate) => t.mouse.bundles.map((bundle) => ({ rate, bundle })));
  const short = t.short;
  return {
    fbModes: [...t.fbModes],
    methods: FB_METHODS,
    mouse: short ? pairs.filter((p) => p.rate === Math.max(...t.mouse.rates)) : pairs,
    pending: short ? t.mouse.pending.filter((p, i, a) => i === 0 || i === a.length - 1) : [...t.mouse.pending],
    seconds: t.seconds,
    hostFed: true,
  };
}

function geometry(ctx: SuiteContext): Record<string, PropValue> {
  const d = ctx.scenario.device;
  return { width: d.width, height: d.height, stride: d.stride, fps: d.fps };
}

async function fbCases(ctx: SuiteContext, plan: ThroughputPlan, mode: string, dev?: string): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  for (const method of plan.methods.filter((m) => m !== 'ram' || !dev)) {
    ctx.out.step(`throughput: framebuffer ${method} (${mode})`);
    const cases = await runProbe(ctx.vm, ['fb-throughput', '--method', method, '--seconds', String(plan.seconds), '--seqlock', 'both'], {
      suite: 'throughput',
      step: `fb-${method}-${mode}`,
      timeoutMs: ctx.caseTimeoutMs + plan.seconds * 4000,
      ...(dev ? { dev } : {}),
    });
    out.push(...cases.map((c) => tag(c, `fb-${method}-${mode}`, { method, fb_mode: mode })));
  }
  return out;
}

async function mouseCases(ctx: SuiteContext, plan: ThroughputPlan, rate: number, bundle: number, dev: string): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  const runs: { mode: string; pending: number }[] = [...plan.pending.map((p) => ({ mode: 'uring', pending: p })), { mode: 'poll', pending: 1 }];
  for (const r of runs) {
    ctx.out.step(`throughput: mouse ${rate} Hz ×${bundle}, ${r.mode}${r.mode === 'uring' ? `, ${r.pending} pending` : ''}`);
    const cases = await runProbe(ctx.vm, ['events-throughput', '--pending', String(r.pending), '--seconds', String(plan.seconds), '--mode', r.mode], {
      suite: 'throughput',
      step: `events-${r.mode}`,
      timeoutMs: ctx.caseTimeoutMs + plan.seconds * 4000,
      dev,
    });
    const label = r.mode === 'poll' ? 'polling' : 'inverted-call';
    out.push(...cases.map((c) => tag(c, `mouse-${label}-r${rate}-b${bundle}${r.mode === 'poll' ? '' : `-p${r.pending}`}`, { mode: label, rate_hz: rate, bundle, pending: r.pending })));
  }
  return out;
}

async function hostFedCase(ctx: SuiteContext, plan: ThroughputPlan, runDir: string): Promise<CaseResult[]> {
  const rate = 1000;
  const props = { ...geometry(ctx), 'mouse-rate-hz': 0 };
  return withExtraDevice(ctx.vm, { id: 'hbfeedt', bus: 'rp2', props, feed: true, runDir }, async (d) => {
    ctx.out.step(`throughput: host-fed events at ${rate}/s`);
    const seconds = plan.seconds + 2;
    const reading = runProbe(ctx.vm, ['events-throughput', '--pending', '16', '--seconds', String(seconds), '--mode', 'uring'], {
      suite: 'throughput',
      step: 'events-host-fed',
      timeoutMs: ctx.caseTimeoutMs + seconds * 4000,
      dev: d.dev,
    });
    await new Promise((r) => setTimeout(r, 1000));
    const feeder = await MouseFeeder.connect(d.feedSocket!);
    try {
      const fed = await feeder.feed(rate * plan.seconds, { eventsPerSecond: rate, bundle: 1 });
      const cases = await reading;
      return cases.map((c) => {
        const t = tag(c, `mouse-host-fed-r${rate}`, { mode: 'host-fed', rate_hz: rate, bundle: 1, pending: 16 });
        t.metrics = { ...(t.metrics ?? {}), host_fed_events: { value: fed.events, unit: 'events' }, host_feed_rate: { value: fed.rate, unit: 'events/s' } };
        return t;
      });
    } finally {
      feeder.close();
    }
  });
}

export async function runThroughputSuite(ctx: SuiteContext, runDir: string, plan = throughputPlan(ctx)): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const booted = ctx.scenario.device['fb-mode'];
  for (const mode of plan.fbModes) {
    // The RAM reference does not depend on the device: measure it once, on the booted device.
    if (mode === booted) results.push(...(await fbCases(ctx, plan, mode)));
    else {
      results.push(
        ...(await withExtraDevice(ctx.vm, { id: `hbfb${mode}`, bus: 'rp1', props: { ...geometry(ctx), 'fb-mode': mode, 'mouse-rate-hz': 0 }, runDir }, (d) =>
          fbCases(ctx, plan, mode, d.dev),
        )),
      );
    }
  }
  for (const { rate, bundle } of plan.mouse) {
    const props = { ...geometry(ctx), 'mouse-rate-hz': rate, 'mouse-bundle': bundle, 'fifo-depth': ctx.scenario.device['fifo-depth'] };
    results.push(...(await withExtraDevice(ctx.vm, { id: `hbm${rate}x${bundle}`, bus: 'rp1', props, runDir }, (d) => mouseCases(ctx, plan, rate, bundle, d.dev))));
  }
  if (plan.hostFed) results.push(...(await hostFedCase(ctx, plan, runDir)));
  return results;
}
