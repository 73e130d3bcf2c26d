/**
 * The verify suite: the device is usable by a real driver. Pixels of several frames checked
 * from user space (mapping and copy path), generator and host-fed events in order, a write
 * through the mapping faults in the guest while the device's write counter stays zero, and one
 * frame as read by the guest next to the same frame computed from the spec (PNG).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MouseFeeder } from '../feed/mouse-feeder.ts';
import type { GuestTraits } from '../guest/guest.ts';
import type { CaseResult } from '../report/results.ts';
import { writeComparisonPng } from '../report/frame.ts';
import type { Scenario } from '../scenario/schema.ts';
import type { PlannedCase } from './plan.ts';
import { probeCase, skipped } from './probe.ts';
import type { SuiteContext } from './context.ts';
import { withExtraDevice } from './devices.ts';

type VerifyCase = 'device-info' | 'verify-frames' | 'write-mapping' | 'generator-events' | 'host-fed-events' | 'frame-picture';

interface VerifyPlanned extends PlannedCase {
  name: VerifyCase;
}

export function planVerify(s: Scenario, traits: GuestTraits): VerifyPlanned[] {
  const p = (name: VerifyCase, extra: Pick<PlannedCase, 'params' | 'skip'> = {}): VerifyPlanned => ({ suite: 'verify', name, ...extra });
  const out = [p('device-info'), p('verify-frames'), p('write-mapping')];
  if (s.device['mouse-rate-hz'] > 0) out.push(p('generator-events', { params: { source: 'generator' } }));
  out.push(
    p('host-fed-events', {
      params: { source: 'host-feed' },
      ...(traits.findsHotplugged ? {} : { skip: `needs a hot-plugged device with a feed, which a ${traits.os} guest cannot find yet` }),
    }),
  );
  out.push(p('frame-picture'));
  return out;
}

export async function runVerifySuite(ctx: SuiteContext, plan: readonly VerifyPlanned[]): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const p of plan) {
    if (p.skip) {
      results.push(skipped(p));
      continue;
    }
    ctx.out.step(`verify: ${p.name}`);
    results.push(await runCase(ctx, p));
  }
  return results;
}

function runCase(ctx: SuiteContext, p: VerifyPlanned): Promise<CaseResult> {
  const { vm, scenario } = ctx;
  const t = { timeoutMs: ctx.caseTimeoutMs };
  switch (p.name) {
    case 'device-info':
      return probeCase(vm, p, ['info'], t);
    case 'verify-frames':
      return probeCase(vm, p, ['verify-frames', '--frames', String(scenario.suites.verify.frames), '--method', 'both'], t);
    case 'write-mapping':
      return writeMapping(ctx, p);
    case 'generator-events':
      return probeCase(vm, p, ['read-events', '--count', '500', '--timeout-ms', String(ctx.caseTimeoutMs), '--flush'], t);
    case 'host-fed-events':
      return hostFedEvents(ctx, p);
    case 'frame-picture':
      return framePicture(ctx, p);
  }
}

async function writeMapping(ctx: SuiteContext, p: VerifyPlanned): Promise<CaseResult> {
  const before = await ctx.vm.deviceCounters();
  const c = await probeCase(ctx.vm, p, ['write-mapping'], { timeoutMs: ctx.caseTimeoutMs });
  const delta = (await ctx.vm.deviceCounters())['fb-write-attempts'] - before['fb-write-attempts'];
  c.metrics = { ...(c.metrics ?? {}), device_write_attempts_delta: { value: delta, unit: 'writes' } };
  if (delta !== 0 && c.status === 'pass') Object.assign(c, { status: 'fail', reason: `a write through the mapping reached the device (fb-write-attempts +${delta})` });
  return c;
}

async function hostFedEvents(ctx: SuiteContext, p: VerifyPlanned): Promise<CaseResult> {
  const { vm, scenario } = ctx;
  const count = 400;
  const props = { width: scenario.device.width, height: scenario.device.height, 'mouse-rate-hz': 0, 'fifo-depth': 1024 };
  try {
    return await withExtraDevice(vm, { id: 'hbfeedv', bus: 'rp2', props, feed: true, runDir: ctx.runDir }, async (d) => {
      const reading = probeCase(vm, p, ['read-events', '--count', String(count), '--timeout-ms', String(ctx.caseTimeoutMs)], { timeoutMs: ctx.caseTimeoutMs + 10_000, dev: d.dev });
      // Give the reader a moment to open the device (events are enabled on first open).
      await new Promise((r) => setTimeout(r, 1500));
      const feeder = await MouseFeeder.connect(d.feedSocket!);
      try {
        const fed = await feeder.feed(count, { eventsPerSecond: 2000, bundle: 4 });
        const c = await reading;
        const dropped = await vm.qmp.qomGet<number>(`/machine/peripheral/${d.id}`, 'events-dropped');
        c.details = { ...(c.details ?? {}), fed_events: fed.events, fed_rate: Math.round(fed.rate) };
        c.metrics = { ...(c.metrics ?? {}), device_events_dropped: { value: Number(dropped), unit: 'events' } };
        return c;
      } finally {
        feeder.close();
      }
    });
  } catch (e) {
    return { suite: p.suite, name: p.name, status: 'fail', reason: (e as Error).message.split('\n')[0], ...(p.params ? { params: p.params } : {}) };
  }
}

/** dump-frame in the guest, the file downloaded, compared with the spec's frame, drawn as frame.png. */
async function framePicture(ctx: SuiteContext, p: VerifyPlanned): Promise<CaseResult> {
  const { vm, scenario, outDir } = ctx;
  const remote = `${vm.guest.workDir}/frame.raw`;
  const c = await probeCase(vm, p, ['dump-frame', '--out', remote], { timeoutMs: ctx.caseTimeoutMs });
  if (c.status !== 'pass') return c;
  const raw = join(outDir, 'frame-guest.rgb');
  const metaFile = join(ctx.runDir, 'frame.raw.json');
  await vm.ssh.download(remote, raw);
  await vm.ssh.download(`${remote}.json`, metaFile);
  const buf = readFileSync(raw);
  const info = JSON.parse(readFileSync(metaFile, 'utf8') || '{}') as { frame_number?: number; width?: number; height?: number };
  const width = info.width ?? scenario.device.width;
  const height = info.height ?? scenario.device.height;
  // dump-frame writes packed lines (stride = 3 × width)
  const cmp = writeComparisonPng(join(outDir, 'frame.png'), buf, { width, height, stride: 3 * width }, info.frame_number !== undefined ? { expectedFrame: info.frame_number } : {});
  c.details = { ...(c.details ?? {}), png: 'frame.png', frame_number: info.frame_number, torn: cmp.torn };
  c.metrics = { ...(c.metrics ?? {}), host_mismatched_pixels: { value: cmp.mismatches, unit: 'px' } };
  if (!cmp.ok) {
    c.status = 'fail';
    c.reason = `the frame read by the guest differs from spec frame ${cmp.expectedFrame}: ${cmp.mismatches} mismatched pixels${cmp.torn ? ', torn' : ''} (see frame.png)`;
  }
  return c;
}
