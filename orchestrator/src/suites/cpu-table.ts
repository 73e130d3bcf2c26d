/**
 * The CPU table: what consuming every frame costs the guest CPU (the zero-copy seed's question:
 * "FullHD at 50 Hz", "memcmp over 900 KB at 5 Hz"). For each picture (geometry and fps) × BAR
 * (direct, or trapping with an mmio latency) × method (map, copy, bytewise, qword), the probe's
 * `fb-consume` waits for each new frame, reads it once by the method, and reports the share of
 * one CPU the consumer used, the frames it missed and the torn frames it was handed, with and
 * without the seqlock (guest-driver/INTERFACE.md §6).
 *
 * Every picture × BAR is its own device: hot-plugged for its cases and unplugged afterwards,
 * with the mouse generator off so only the consumer's work is on the CPU. A guest that cannot
 * find a hot-plugged device measures the booted device's own picture and BAR and skips the rest.
 */
import { UsageError } from '../core/errors.ts';
import { validateProps } from '../device/spec.ts';
import type { GuestTraits } from '../guest/guest.ts';
import type { CaseResult } from '../report/results.ts';
import type { PropValue } from '../qmp/hotplug.ts';
import type { Scenario } from '../scenario/schema.ts';
import type { SuiteContext } from './context.ts';
import { withExtraDevice } from './devices.ts';
import type { PlannedCase } from './plan.ts';
import { probeCase, skipped } from './probe.ts';

export type CpuMethod = Scenario['suites']['cpu']['methods'][number];
export interface CpuPicture {
  width: number;
  height: number;
  fps: number;
}
export interface CpuBar {
  'fb-mode': 'direct' | 'mmio';
  'mmio-latency-ns': number;
}

export interface CpuPlanned extends PlannedCase {
  suite: 'cpu';
  method: CpuMethod;
  picture: CpuPicture;
  bar: CpuBar;
}

/** `1920x1080-50fps`, `direct` / `mmio-200ns`: the parts of a case name. */
export const pictureName = (p: CpuPicture): string => `${p.width}x${p.height}-${p.fps}fps`;
export const barName = (b: CpuBar): string => (b['fb-mode'] === 'direct' ? 'direct' : `mmio-${b['mmio-latency-ns']}ns`);
export const cpuCaseName = (method: string, p: CpuPicture, b: CpuBar): string => `cpu-${method}-${pictureName(p)}-${barName(b)}`;

/** The device properties of one picture × BAR (generator off: the consumer alone on the CPU). */
export function cpuDeviceProps(p: CpuPicture, b: CpuBar): Record<string, PropValue> {
  return { width: p.width, height: p.height, stride: 0, fps: p.fps, 'fb-mode': b['fb-mode'], 'mmio-latency-ns': b['mmio-latency-ns'], 'mouse-rate-hz': 0 };
}

function bootedMatches(s: Scenario, p: CpuPicture, b: CpuBar): boolean {
  const d = s.device;
  return d.width === p.width && d.height === p.height && d.stride === 0 && d.fps === p.fps && d['fb-mode'] === b['fb-mode'] && d['mmio-latency-ns'] === b['mmio-latency-ns'];
}

/** Every picture × BAR × method, in that order; a device the device would refuse is bad input. */
export function planCpuTable(s: Scenario, traits: GuestTraits): CpuPlanned[] {
  const t = s.suites.cpu;
  const out: CpuPlanned[] = [];
  t.pictures.forEach((picture, i) => {
    t.bars.forEach((bar, j) => {
      const problem = validateProps(cpuDeviceProps(picture, bar));
      if (problem) throw new UsageError(`suites.cpu: pictures[${i}] (${pictureName(picture)}) with bars[${j}] (${barName(bar)}): ${problem.property}: ${problem.message}`);
      const skip = traits.findsHotplugged || bootedMatches(s, picture, bar) ? undefined : `needs a hot-plugged device (${pictureName(picture)}, ${barName(bar)}), which a ${traits.os} guest cannot find yet; only the booted device's picture and BAR are measured`;
      for (const method of t.methods) {
        const params = { method, width: picture.width, height: picture.height, fps: picture.fps, fb_mode: bar['fb-mode'], mmio_latency_ns: bar['mmio-latency-ns'] };
        out.push({ suite: 'cpu', name: cpuCaseName(method, picture, bar), params, method, picture, bar, ...(skip ? { skip } : {}) });
      }
    });
  });
  const names = out.map((c) => c.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new UsageError(`suites.cpu: ${dup} is planned twice; give each picture and each BAR once`);
  return out;
}

async function cpuCase(ctx: SuiteContext, c: CpuPlanned, dev?: string): Promise<CaseResult> {
  ctx.out.step(`cpu: ${c.method}, ${pictureName(c.picture)}, ${barName(c.bar)}`);
  const seconds = ctx.scenario.suites.cpu.seconds;
  // two phases of `seconds`; a read cut off at a phase's end adds at most one poll
  const timeoutMs = ctx.caseTimeoutMs + ctx.vm.scaled(seconds * 2 * 1000);
  return probeCase(ctx.vm, c, ['fb-consume', '--method', c.method, '--seconds', String(seconds), '--seqlock', 'both'], { timeoutMs, ...(dev ? { dev } : {}) });
}

/** Runs the plan one device at a time, in plan order. */
export async function runCpuTable(ctx: SuiteContext, plan: readonly CpuPlanned[]): Promise<CaseResult[]> {
  const done = new Map<CpuPlanned, CaseResult>();
  const groups = new Map<string, CpuPlanned[]>();
  for (const c of plan) {
    if (c.skip) continue;
    const key = `${pictureName(c.picture)}-${barName(c.bar)}`;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  const hotplug = ctx.vm.guest.listDeviceNodes !== undefined;
  let n = 0;
  for (const group of groups.values()) {
    const { picture, bar } = group[0]!;
    if (!hotplug) {
      for (const c of group) done.set(c, await cpuCase(ctx, c));
      continue;
    }
    await withExtraDevice(ctx.vm, { id: `hbcpu${n++}`, bus: 'rp1', props: cpuDeviceProps(picture, bar), runDir: ctx.runDir }, async (d) => {
      for (const c of group) done.set(c, await cpuCase(ctx, c, d.dev));
    });
  }
  return plan.map((c) => done.get(c) ?? skipped(c));
}
