/**
 * The verify suite: the device is usable by a real driver. Pixels of several frames checked
 * from user space (mapping and copy path), generator and host-fed events in order, a write
 * through the mapping faults in the guest while the device's write counter stays zero, and one
 * frame as read by the guest next to the same frame computed from the spec (PNG).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MouseFeeder } from '../feed/mouse-feeder.ts';
import type { CaseResult } from '../report/results.ts';
import { writeComparisonPng } from '../report/frame.ts';
import { runProbe, tag } from './probe.ts';
import type { SuiteContext } from './context.ts';
import { withExtraDevice } from './devices.ts';

export async function runVerifySuite(ctx: SuiteContext, runDir: string): Promise<CaseResult[]> {
  const { vm, scenario, out } = ctx;
  const cfg = scenario.suites.verify;
  const t = ctx.caseTimeoutMs;
  const results: CaseResult[] = [];
  const probe = (args: string[], step: string, dev?: string) => runProbe(vm, args, { suite: 'verify', step, timeoutMs: t, ...(dev ? { dev } : {}) });

  out.step('verify: device info and frames');
  results.push(...(await probe(['info'], 'info')));
  results.push(...(await probe(['verify-frames', '--frames', String(cfg.frames), '--method', 'both'], 'verify-frames')));

  out.step('verify: write through the mapping');
  const before = await vm.deviceCounters();
  const wm = await probe(['write-mapping'], 'write-mapping');
  const after = await vm.deviceCounters();
  const delta = after['fb-write-attempts'] - before['fb-write-attempts'];
  for (const c of wm) {
    c.metrics = { ...(c.metrics ?? {}), device_write_attempts_delta: { value: delta, unit: 'writes' } };
    if (delta !== 0 && c.status === 'pass') {
      c.status = 'fail';
      c.reason = `a write through the mapping reached the device (fb-write-attempts +${delta})`;
    }
  }
  results.push(...wm);

  if (scenario.device['mouse-rate-hz'] > 0) {
    out.step('verify: generator events in order');
    results.push(...(await probe(['read-events', '--count', '500', '--timeout-ms', String(t), '--flush'], 'read-events')).map((c) => tag(c, 'generator-events', { source: 'generator' })));
  }

  out.step('verify: host-fed events in order (orchestrator -> chardev -> device -> guest)');
  results.push(await hostFedEvents(ctx, runDir));

  out.step('verify: frame picture');
  results.push(await framePicture(ctx));
  return results;
}

async function hostFedEvents(ctx: SuiteContext, runDir: string): Promise<CaseResult> {
  const { vm, scenario } = ctx;
  const count = 400;
  const props = { width: scenario.device.width, height: scenario.device.height, 'mouse-rate-hz': 0, 'fifo-depth': 1024 };
  try {
    return await withExtraDevice(vm, { id: 'hbfeedv', bus: 'rp2', props, feed: true, runDir }, async (d) => {
      const reading = runProbe(vm, ['--dev', d.dev, 'read-events', '--count', String(count), '--timeout-ms', String(ctx.caseTimeoutMs)], { suite: 'verify', step: 'host-fed-events', timeoutMs: ctx.caseTimeoutMs + 10_000 });
      // Give the reader a moment to open the device (events are enabled on first open).
      await new Promise((r) => setTimeout(r, 1500));
      const feeder = await MouseFeeder.connect(d.feedSocket!);
      try {
        const fed = await feeder.feed(count, { eventsPerSecond: 2000, bundle: 4 });
        const [c] = await reading;
        const counters = await vm.qmp.qomGet<number>(`/machine/peripheral/${d.id}`, 'events-dropped');
        const r = tag(c!, 'host-fed-events', { source: 'host-feed', fed_events: fed.events, fed_rate: Math.round(fed.rate) });
        r.metrics = { ...(r.metrics ?? {}), device_events_dropped: { value: Number(counters), unit: 'events' } };
        return r;
      } finally {
        feeder.close();
      }
    });
  } catch (e) {
    return { suite: 'verify', name: 'host-fed-events', status: 'fail', reason: (e as Error).message.split('\n')[0] };
  }
}

async function framePicture(ctx: SuiteContext): Promise<CaseResult> {
  const { vm, scenario, outDir } = ctx;
  const [c] = await runProbe(vm, ['dump-frame', '--out', '/tmp/frame.raw'], { suite: 'verify', step: 'dump-frame', timeoutMs: ctx.caseTimeoutMs });
  if (!c || c.status !== 'pass') return c ?? { suite: 'verify', name: 'dump-frame', status: 'fail', reason: 'no result' };
  const raw = await vm.exec('base64 /tmp/frame.raw && rm -f /tmp/frame.raw', { timeoutMs: ctx.caseTimeoutMs });
  const meta = await vm.exec('cat /tmp/frame.raw.json', { timeoutMs: 30_000 });
  const buf = Buffer.from(raw.stdout.replace(/\s+/g, ''), 'base64');
  const info = JSON.parse(meta.stdout || '{}') as { frame_number?: number; width?: number; height?: number };
  const width = info.width ?? scenario.device.width;
  const height = info.height ?? scenario.device.height;
  const stride = 3 * width; // dump-frame writes packed lines
  writeFileSync(join(outDir, 'frame-guest.rgb'), buf);
  const png = join(outDir, 'frame.png');
  const cmp = writeComparisonPng(png, buf, { width, height, stride }, info.frame_number !== undefined ? { expectedFrame: info.frame_number } : {});
  const r = tag(c, 'frame-picture', { png: 'frame.png', frame_number: info.frame_number, torn: cmp.torn });
  r.metrics = { ...(r.metrics ?? {}), host_mismatched_pixels: { value: cmp.mismatches, unit: 'px' } };
  if (!cmp.ok) {
    r.status = 'fail';
    r.reason = `the frame read by the guest differs from spec frame ${cmp.expectedFrame}: ${cmp.mismatches} mismatched pixels${cmp.torn ? ', torn' : ''} (see frame.png)`;
  }
  return r;
}
