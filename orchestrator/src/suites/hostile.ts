/**
 * The security suite's hostile-load cases, driven from the host on a hot-plugged extra device:
 * QMP stop/cont around a 65536-record feed with tracefs timing the hard-IRQ handler
 * (irq-drain-bounded), QMP round trips and QOM counters under slow-mmio copies and an unbind
 * (mmio-stall), partial feed records across reconnects and savevm/loadvm, a crafted and a live
 * migration stream in qtest QEMUs (vmstate-hostile). One job: those three cases; security.ts
 * plans them and applies the post-checks every case gets.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CaseResult } from '../report/results.ts';
import type { PlannedCase } from './plan.ts';
import { runProbe } from './probe.ts';
import type { SuiteContext } from './context.ts';
import { withExtraDevice, type ExtraDevice } from './devices.ts';
import { MouseFeeder } from '../feed/mouse-feeder.ts';
import { deviceCounters, type DeviceCounters } from '../qmp/device.ts';
import type { StartedHilboxVm } from '../lib/started-vm.ts';
import type { Metric } from '../report/results.ts';
import {
  CONTROL,
  EV_FLAG_END_OF_REPORT,
  EV_SOURCE,
  decodeFrameNumber,
  encodeEventRecord,
  encodeFeedRecord,
  expectedFbBytes,
  frameTimestamp,
  type DeviceProps,
} from '../device/spec.ts';
import { loadFromFile, migrateToFile, startRig } from '../qtest/rig.ts';
import { ensureQemu } from '../products/ensure.ts';

/** Cases the host drives on a hot-plugged extra device (hostile load from outside the guest). */
export const HOSTILE_CASES = ['irq-drain-bounded', 'mmio-stall', 'vmstate-hostile'] as const;
export type HostileCase = (typeof HOSTILE_CASES)[number];

const HOSTILE_POLICY: Record<HostileCase, string> = {
  'irq-drain-bounded':
    'A full 65536-record FIFO (fed while the VM is stopped) reaches the reader whole in every burst (no gaps, no drops); no hard-IRQ handler run lasts 2 ms and a reader pinned to the other vCPU never waits 5 ms in one read, both judged on the best of up to 5 bursts (host preemption of a vCPU thread only lengthens a measured time, so a burst within both bounds shows the driver\'s own part; a driver past a bound exceeds it in every burst; the reader is not judged with 1 vCPU); and 200 single records 10 ms apart raise 196-220 interrupts (drain, then ACK gives one per record, ACK before drain about two; a record whose interrupt thread the host delayed past the next record is drained with it, so up to 2 % may coalesce; a run below 196 is repeated, up to 5 runs).',
  'mmio-stall':
    'Two COPY_FRAME loops and an 8-byte reader on a fb-mode=mmio device at 100 us per access never stall QEMU (QMP query-status p99 < 50 ms over 10 s) nor the frame clock (>= 95 % of fps x 10 frames), and an unbind during them returns within 250 ms (scaled) with the copiers ending in ENODEV.',
  'vmstate-hostile':
    'A partial host-feed record never reaches the guest: dropped (and counted in feed-errors) when its connection closes, and neither kept in nor brought back by a savevm/loadvm taken mid-record; the guest reads exactly the whole records sent afterwards. A migration stream patched to an impossible fifo_count is refused by a fresh QEMU (exit 1, naming the field), and right after a live migration spanning >= 3 frames every pixel is frame FRAME_NUMBER.',
};

/** The snapshot vmstate-hostile takes mid-record (dropped again afterwards). */
const CASE_SNAPSHOT = 'hilbox-vmstate-hostile';

// ---------------------------------------------------------------------------------------------
// Host-driven hostile load on an extra device

const FULL_FIFO = 65536;
const TRACEFS = '/sys/kernel/tracing';

async function sh(vm: StartedHilboxVm, cmd: string, timeoutMs: number): Promise<string> {
  const r = await vm.exec(cmd, { timeoutMs });
  if (r.code !== 0) throw new Error(`${cmd.split('\n')[0]}: exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`);
  return r.stdout;
}

const m = (value: number, unit: string): Metric => ({ value, unit });

/**
 * Hard-IRQ handler run times (ms) of interrupt line `irq` in a tracefs irq_handler_entry/exit
 * trace, entry and exit paired per CPU (a hard-IRQ handler runs with interrupts off on its CPU).
 */
export function hardIrqRuns(trace: string, irq: string): number[] {
  const open = new Map<string, number>();
  const runs: number[] = [];
  for (const line of trace.split('\n')) {
    const x = /\[(\d+)\].*?\s(\d+\.\d+): irq_handler_(entry|exit): irq=(\d+)/.exec(line);
    if (!x || x[4] !== irq) continue;
    const ms = Number(x[2]) * 1000;
    if (x[3] === 'entry') open.set(x[1]!, ms);
    else if (open.has(x[1]!)) {
      runs.push(ms - open.get(x[1]!)!);
      open.delete(x[1]!);
    }
  }
  return runs;
}

export async function runHostile(ctx: SuiteContext, p: PlannedCase, name: HostileCase): Promise<CaseResult> {
  const c: CaseResult = { suite: p.suite, name: p.name, status: 'pass', policy: HOSTILE_POLICY[name], metrics: {} };
  const problems: string[] = [];
  try {
    if (name === 'irq-drain-bounded') await irqDrainBounded(ctx, c, problems);
    else if (name === 'mmio-stall') await mmioStall(ctx, c, problems);
    else await vmstateHostile(ctx, c, problems);
  } catch (e) {
    problems.push((e as Error).message.split('\n')[0]!);
  }
  if (problems.length) {
    c.status = 'fail';
    c.reason = problems.join('; ');
  }
  return c;
}

/** The PCI address of a device node's function (e.g. 0000:01:00.0). */
async function bdfOf(vm: StartedHilboxVm, dev: string): Promise<string> {
  return (await sh(vm, `basename $(readlink -f /sys/class/misc/${dev.replace('/dev/', '')}/device)`, vm.scaled(30_000))).trim();
}

/**
 * Feeds single records until one reaches the driver: a record offered before the reader opened
 * the device is dropped (EV_ENABLE = 0), so exactly one is delivered in the end.
 */
async function primeReader(vm: StartedHilboxVm, id: string, feeder: MouseFeeder): Promise<void> {
  const counters = (): Promise<DeviceCounters> => vm.machine.guard(deviceCounters(vm.qmp, id));
  const deadline = Date.now() + vm.scaled(30_000);
  for (;;) {
    const c0 = await counters();
    await feeder.feed(1);
    let c = c0;
    const until = Date.now() + vm.scaled(10_000);
    while (c['events-produced'] === c0['events-produced']) {
      if (Date.now() > until) throw new Error('the device did not take a fed record');
      await sleep(50);
      c = await counters();
    }
    if (c['events-dropped'] === c0['events-dropped']) {
      while ((await counters())['events-delivered'] === c0['events-delivered']) {
        if (Date.now() > until) throw new Error('a fed record was never delivered to the driver');
        await sleep(50);
      }
      return;
    }
    if (Date.now() > deadline) throw new Error('the reader never subscribed');
    await sleep(300);
  }
}

async function irqCount(vm: StartedHilboxVm, dev: string, timeoutMs: number): Promise<number> {
  const [c] = await runProbe(vm, ['info'], { suite: 'security', step: 'info', timeoutMs, dev });
  const v = c?.metrics?.['irq_count']?.value;
  if (c?.status !== 'pass' || typeof v !== 'number') throw new Error(`info --dev ${dev}: ${c?.reason ?? 'no irq_count'}`);
  return v;
}

/**
 * irq-drain-bounded. The suite's driver has the default ring (4096 records), which a full
 * 65536-record FIFO overflows by design (counted drops); so the case reloads the image's
 * driver with ring_size=65536 for its duration and restores the default install afterwards.
 */
async function irqDrainBounded(ctx: SuiteContext, c: CaseResult, problems: string[]): Promise<void> {
  const { vm } = ctx;
  const rm = await vm.unloadDriver();
  if (rm.code !== 0) throw new Error(`unloading the driver: ${(rm.stderr || rm.stdout).trim()}`);
  try {
    const ld = await vm.loadDriver({ params: { ring_size: FULL_FIFO } });
    if (ld.code !== 0) throw new Error(`loading the driver with ring_size=${FULL_FIFO}: ${(ld.stderr || ld.stdout).trim()}`);
    const props = { width: 64, height: 48, fps: 10, 'mouse-rate-hz': 0, 'fifo-depth': FULL_FIFO };
    await withExtraDevice(vm, { id: 'hbirq', bus: 'rp1', props, feed: true, runDir: ctx.runDir }, async (d) => {
      const feeder = await MouseFeeder.connect(d.feedSocket!);
      try {
        await singleRecordIrqs(ctx, d, feeder, c, problems);
        await fullFifoBurst(ctx, d, feeder, c, problems);
      } finally {
        feeder.close();
        await vm.guest.killProbes(vm.session);
      }
    });
  } finally {
    await vm.unloadDriver();
    const back = await vm.loadDriver(); // the default install (the image's driver, no parameters)
    if (back.code !== 0) problems.push(`restoring the default driver: ${(back.stderr || back.stdout).trim()}`);
  }
}

/**
 * 200 single host-fed records 10 ms apart: 196-220 interrupts (one per record, drain then ACK;
 * ACK before drain gives about two per record). A loaded host only lowers the count — a record
 * whose interrupt thread ran more than 10 ms late is drained together with the next; on this
 * noisy 2-core TCG host, 3 of 3 runs of one `npm test` lost 1-6 that way — so up to 2 % (4) may
 * coalesce, a run below 196 is repeated (up to 5 runs), and a run above 220 fails at once.
 */
/** At most 2 % of the 200 records coalesced behind a host delay; and how many runs may try. */
export const SINGLE_RECORD_MIN_IRQS = 196;
const SINGLE_RECORD_RUNS = 5;

async function singleRecordIrqs(ctx: SuiteContext, d: ExtraDevice, feeder: MouseFeeder, c: CaseResult, problems: string[]): Promise<void> {
  const { vm } = ctx;
  const counts: number[] = [];
  for (let run = 1; run <= SINGLE_RECORD_RUNS; run++) {
    const reading = runProbe(vm, ['read-events', '--count', '201', '--timeout-ms', String(vm.scaled(30_000))], { suite: 'security', step: 'read-events', timeoutMs: ctx.caseTimeoutMs, dev: d.dev });
    await primeReader(vm, d.id, feeder);
    const before = await irqCount(vm, d.dev, ctx.caseTimeoutMs);
    const fed = await feeder.feed(200, { eventsPerSecond: 100, bundle: 1 });
    const [r] = await reading;
    const irqs = (await irqCount(vm, d.dev, ctx.caseTimeoutMs)) - before;
    counts.push(irqs);
    if (fed.events !== 200) problems.push(`fed ${fed.events} of 200 single records`);
    if (r?.status !== 'pass' || r.metrics?.['records']?.value !== 201) problems.push(`reading 201 single records: ${r?.reason ?? `${r?.metrics?.['records']?.value} records`}`);
    if (problems.length || irqs >= SINGLE_RECORD_MIN_IRQS) break;
  }
  const last = counts[counts.length - 1]!;
  c.metrics!['single_record_irqs'] = m(last, 'irqs');
  c.details = { ...(c.details ?? {}), single_record_irqs_per_run: counts };
  if (last < SINGLE_RECORD_MIN_IRQS || last > 220) problems.push(`${counts.join(', ')} interrupts for 200 single records 10 ms apart in ${counts.length} run(s) (want ${SINGLE_RECORD_MIN_IRQS}-220)`);
}

/** The longest a reader on the other vCPU may wait in one read (the issue's bound). */
const READER_WAIT_LIMIT_MS = 5;
/** The longest one hard-IRQ handler run may take. */
const HARD_IRQ_LIMIT_MS = 2;
/** Full-FIFO bursts run at most, until one keeps both time bounds. */
const MAX_BURSTS = 5;

/** What one full-FIFO burst measured and which of its checks failed. */
interface Burst {
  records: number;
  gaps: number;
  drops: number;
  /** The reader's longest wait (ms), undefined when the reader did not report one. */
  wait: number | undefined;
  slow: number;
  irqRuns: number[];
  /** The longest hard-IRQ handler run (ms). */
  irqMax: number;
  /** Correctness problems (records, gaps, drops, tracing): any one fails the case. */
  problems: string[];
}

/** Both time bounds held in this burst (the reader's only where it is judged). */
const inTime = (b: Burst, judged: boolean): boolean => b.irqMax < HARD_IRQ_LIMIT_MS && (!judged || (b.wait !== undefined && b.wait <= READER_WAIT_LIMIT_MS));

/**
 * The 65536-record burst, up to MAX_BURSTS times. The two time bounds — no hard-IRQ handler
 * run of 2 ms, no read of the reader on the other vCPU waiting 5 ms — are judged on the best
 * burst: under TCG the host preempting a vCPU thread only ever adds to a measured time (a
 * 250 Hz host kernel takes ~4 ms at a time), so the burst with both times within bounds shows
 * the driver's own part, while a driver that really holds its lock or its handler past a bound
 * exceeds it in every burst. (Seen on one burst: 0.16-4.2 ms waits on a quiet host, a third of
 * bursts over 5 ms with a compile beside it; 5 bursts all over happens then about 1 % of the
 * time.) Correctness is judged in every burst (all records read, no gaps, no device drops);
 * the first burst that fails it ends the series. With one vCPU the reader shares CPU 0 with the
 * interrupt, so its wait is reported, not judged.
 */
async function fullFifoBurst(ctx: SuiteContext, d: ExtraDevice, feeder: MouseFeeder, c: CaseResult, problems: string[]): Promise<void> {
  const { vm } = ctx;
  const T = TRACEFS;
  const node = d.dev.replace('/dev/', '');
  const irq = (await sh(vm, `grep -m1 -w ${node} /proc/interrupts`, vm.scaled(30_000))).trim().split(':')[0]!.trim();
  if (!/^\d+$/.test(irq)) throw new Error(`no interrupt line of ${node} in /proc/interrupts`);
  // The interrupt (and its thread) on CPU 0, the reader on the other vCPU: how long a reader
  // there waits for the driver's locks while the interrupt side drains is what is measured.
  const cpus = Number((await sh(vm, 'nproc', vm.scaled(30_000))).trim()) || 1;
  const readerCpu = cpus > 1 ? 1 : 0;
  const judged = cpus > 1;
  await sh(vm, `echo 0 > /proc/irq/${irq}/smp_affinity_list`, vm.scaled(30_000));
  const events = [`${T}/events/irq/irq_handler_entry`, `${T}/events/irq/irq_handler_exit`];
  const bursts: Burst[] = [];
  let complete = false;
  try {
    await sh(
      vm,
      [
        `[ -e ${T}/trace ] || mount -t tracefs nodev ${T}`,
        `echo 0 > ${T}/tracing_on`,
        `echo 4096 > ${T}/buffer_size_kb`,
        ...events.map((e) => `echo irq==${irq} > ${e}/filter`),
        ...events.map((e) => `echo 1 > ${e}/enable`),
      ].join(' && '),
      vm.scaled(30_000),
    );
    for (let i = 0; i < MAX_BURSTS; i++) {
      const b = await oneFullFifoBurst(ctx, d, feeder, irq, readerCpu);
      bursts.push(b);
      if (b.problems.length) break; // the case has failed; another burst cannot change that
      if (inTime(b, judged)) break;
    }
    complete = true;
  } finally {
    // Tracing off and the events, filters and buffer cleared on every path (even after a failed setup).
    const off = [`echo 0 > ${T}/tracing_on`, ...events.flatMap((e) => [`echo 0 > ${e}/enable`, `echo 0 > ${e}/filter`]), `echo > ${T}/trace`];
    const r = await vm.exec(off.join('; '), { timeoutMs: vm.scaled(30_000) }).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
    if (r.code !== 0) problems.push(`turning the irq tracing off: ${(r.stderr || r.stdout).trim().split('\n').slice(-1)[0]}`);
    if (bursts.length) report(bursts, c, problems, { judged, complete, readerCpu, cpus });
  }
}

/** The case's metrics and verdict over the bursts run. */
function report(bursts: Burst[], c: CaseResult, problems: string[], o: { judged: boolean; complete: boolean; readerCpu: number; cpus: number }): void {
  const many = bursts.length > 1;
  bursts.forEach((b, i) => problems.push(...b.problems.map((p) => (many ? `burst ${i + 1}: ${p}` : p))));
  const runs = bursts.flatMap((b) => b.irqRuns);
  const ms = (v: number): number => Number(v.toFixed(3));
  c.metrics!['burst_records_read'] = m(Math.min(...bursts.map((b) => b.records)), 'records');
  c.metrics!['burst_seq_gaps'] = m(bursts.reduce((s, b) => s + b.gaps, 0), 'events');
  c.metrics!['burst_device_drops'] = m(bursts.reduce((s, b) => s + b.drops, 0), 'events');
  c.metrics!['irq_handler_max_ms'] = m(ms(Math.max(0, ...runs)), 'ms');
  c.metrics!['irq_handler_runs'] = m(runs.length, 'runs');
  // The best burst: the one within both bounds, else the least longest wait.
  const measured = bursts.filter((b) => b.wait !== undefined);
  const best = bursts.find((b) => inTime(b, o.judged)) ?? measured.reduce<Burst | undefined>((a, b) => (a === undefined || b.wait! < a.wait! ? b : a), undefined);
  if (best) {
    c.metrics!['reader_max_wait_ms'] = m(ms(best.wait!), 'ms');
    c.metrics!['reader_waits_over_5ms'] = m(best.slow, 'reads');
  }
  const perBurst = bursts.map((b) => (b.wait === undefined ? null : ms(b.wait)));
  c.details = {
    ...(c.details ?? {}),
    reader_cpu: o.readerCpu,
    irq_cpu: 0,
    vcpus: o.cpus,
    bursts: bursts.length,
    reader_max_wait_ms_per_burst: perBurst,
    irq_handler_max_ms_per_burst: bursts.map((b) => ms(b.irqMax)),
    ...(o.cpus > 1 ? {} : { reader_wait_not_judged: 'one vCPU: the reader shares CPU 0 with the interrupt' }),
  };
  // Judged when the bursts ran to the end and each was correct (else the case has failed anyway).
  if (o.complete && !bursts.some((b) => b.problems.length) && !bursts.some((b) => inTime(b, o.judged))) {
    const figures = bursts.map((b, i) => `${ms(b.irqMax)} ms hard-IRQ${o.judged ? ` / ${perBurst[i] === null ? 'no' : `${perBurst[i]} ms`} reader wait` : ''}`).join(', ');
    problems.push(`no burst of ${bursts.length} kept the hard-IRQ run under ${HARD_IRQ_LIMIT_MS} ms${o.judged ? ` and the reader on CPU ${o.readerCpu}'s wait within ${READER_WAIT_LIMIT_MS} ms` : ''} (per burst: ${figures})`);
  }
}

/** 65536 records enter the FIFO while the VM is stopped; after `cont` every one is read; hard-IRQ runs traced. */
async function oneFullFifoBurst(ctx: SuiteContext, d: ExtraDevice, feeder: MouseFeeder, irq: string, readerCpu: number): Promise<Burst> {
  const { vm } = ctx;
  const T = TRACEFS;
  const b: Burst = { records: 0, gaps: 0, drops: 0, wait: undefined, slow: 0, irqRuns: [], irqMax: 0, problems: [] };
  await sh(vm, `echo > ${T}/trace && echo 1 > ${T}/tracing_on`, vm.scaled(30_000));
  let trace = '';
  try {
    const readTimeout = vm.scaled(150_000);
    const reading = runProbe(vm, ['_hb-drain-reader', String(FULL_FIFO + 1), String(readerCpu), String(readTimeout)], { suite: 'security', step: 'drain-reader', timeoutMs: readTimeout + ctx.caseTimeoutMs, dev: d.dev });
    await primeReader(vm, d.id, feeder);
    const counters = (): Promise<DeviceCounters> => vm.machine.guard(deviceCounters(vm.qmp, d.id));
    const base = await counters();
    await vm.qmp.execute('stop');
    try {
      await feeder.feed(FULL_FIFO, { eventsPerSecond: 4_000_000, bundle: 64 });
      const until = Date.now() + vm.scaled(60_000);
      while ((await counters())['events-produced'] < base['events-produced'] + FULL_FIFO) {
        if (Date.now() > until) throw new Error('the stopped device did not take the 65536-record burst');
        await sleep(100);
      }
    } finally {
      await vm.qmp.execute('cont');
    }
    const [r] = await reading;
    const after = await counters();
    const records = r?.metrics?.['records']?.value ?? 0;
    b.records = records - 1;
    b.gaps = r?.metrics?.['seq_gaps']?.value ?? 0;
    b.drops = after['events-dropped'] - base['events-dropped'];
    b.wait = r?.metrics?.['reader_max_wait_ms']?.value;
    b.slow = r?.metrics?.['reader_waits_over_5ms']?.value ?? 0;
    if (r?.status !== 'pass') b.problems.push(`reading the burst: ${r?.reason ?? 'no result'}`);
    if (records !== FULL_FIFO + 1) b.problems.push(`${records - 1} of ${FULL_FIFO} burst records read`);
    if (b.gaps !== 0) b.problems.push(`${b.gaps} sequence gaps in the burst`);
    if (b.drops !== 0) b.problems.push(`the device dropped ${b.drops} records`);
  } finally {
    await sh(vm, `echo 0 > ${T}/tracing_on`, vm.scaled(30_000));
    trace = await sh(vm, `cat ${T}/trace`, vm.scaled(120_000));
  }
  b.irqRuns = hardIrqRuns(trace, irq);
  b.irqMax = Math.max(0, ...b.irqRuns);
  if (b.irqRuns.length === 0) b.problems.push('no hard-IRQ handler run was traced');
  return b;
}

/**
 * mmio-stall: 2 COPY_FRAME loops and one 8-byte reader on a fb-mode=mmio device at 100 us per
 * access; QMP round trips and the frame clock are sampled from the host for 10 s, then the
 * device is unbound under them.
 */
async function mmioStall(ctx: SuiteContext, c: CaseResult, problems: string[]): Promise<void> {
  const { vm } = ctx;
  const fps = 50;
  const WINDOW_MS = 10_000;
  const props = { width: 320, height: 240, fps, 'fb-mode': 'mmio', 'mmio-latency-ns': 100_000, 'mouse-rate-hz': 0 };
  await withExtraDevice(vm, { id: 'hbstall', bus: 'rp1', props, runDir: ctx.runDir }, async (d) => {
    const bdf = await bdfOf(vm, d.dev);
    const runFor = String(Math.ceil((WINDOW_MS + vm.scaled(20_000)) / 1000));
    const loads = [
      { out: '/tmp/hb-stall-copy1.out', method: 'copy' },
      { out: '/tmp/hb-stall-copy2.out', method: 'copy' },
      { out: '/tmp/hb-stall-qword.out', method: 'qword' },
    ];
    const start = loads.map((l) => `${vm.guest.probeCommand(['fb-throughput', '--method', l.method, '--seconds', runFor], d.dev)} >${l.out} 2>&1 </dev/null &`).join('\n');
    let rebound = false;
    try {
      await sh(vm, `rm -f /tmp/hb-stall-*.out\n${start}\nsleep 1`, vm.scaled(30_000));
      const qom = async (): Promise<number> => Number(await vm.machine.guard(vm.qmp.qomGet<number>(`/machine/peripheral/${d.id}`, 'frames-produced')));
      const f0 = await qom();
      const t0 = performance.now();
      const rtts: number[] = [];
      while (performance.now() - t0 < WINDOW_MS) {
        const a = performance.now();
        await vm.qmp.execute('query-status');
        rtts.push(performance.now() - a);
        await sleep(10);
      }
      const f1 = await qom();
      const seconds = (performance.now() - t0) / 1000;
      rtts.sort((a, b) => a - b);
      const p99 = rtts[Math.min(rtts.length - 1, Math.floor(rtts.length * 0.99))] ?? Infinity;
      const frames = f1 - f0;
      const expected = fps * seconds;
      c.metrics!['qmp_rtt_p99_ms'] = m(Number(p99.toFixed(2)), 'ms');
      c.metrics!['qmp_rtt_max_ms'] = m(Number((rtts.at(-1) ?? 0).toFixed(2)), 'ms');
      c.metrics!['qmp_round_trips'] = m(rtts.length, 'requests');
      c.metrics!['frames_produced_delta'] = m(frames, 'frames');
      c.metrics!['frames_expected'] = m(Math.round(expected), 'frames');
      if (p99 >= 50) problems.push(`QMP query-status p99 ${p99.toFixed(1)} ms over ${rtts.length} round trips (limit 50 ms)`);
      if (frames < 0.95 * expected) problems.push(`${frames} frames produced in ${seconds.toFixed(1)} s, want >= 95 % of ${expected.toFixed(0)}`);
      const alive = await sh(vm, `for f in ${loads.map((l) => l.out).join(' ')}; do grep -q '^{' $f && echo "$f ended early: $(tail -c 300 $f)"; done; true`, vm.scaled(30_000));
      if (alive.trim()) problems.push(alive.trim().split('\n').join(' | '));
      // unbind under the load
      const u = await sh(vm, `read t0 x </proc/uptime; echo ${bdf} > /sys/bus/pci/drivers/hilbox/unbind; read t1 x </proc/uptime; echo "T $t0 $t1"`, vm.scaled(60_000));
      const [, u0, u1] = /^T (\S+) (\S+)$/m.exec(u) ?? [];
      const unbindMs = (Number(u1) - Number(u0)) * 1000;
      c.metrics!['unbind_ms'] = m(Math.round(unbindMs), 'ms');
      if (!(unbindMs < vm.scaled(250))) problems.push(`unbind under the load took ${unbindMs.toFixed(0)} ms (limit ${vm.scaled(250)} ms)`);
      // the copiers end on their own (ENODEV), each printing its result line
      const outs = await sh(
        vm,
        `for i in $(seq 100); do n=0; for f in ${loads.slice(0, 2).map((l) => l.out).join(' ')}; do grep -q '^{' $f && n=$((n+1)); done; [ $n = 2 ] && break; sleep 0.1; done; for f in ${loads.slice(0, 2).map((l) => l.out).join(' ')}; do echo "== $f"; cat $f; done`,
        vm.scaled(60_000),
      );
      const enodev = outs.split('== ').slice(1).filter((o) => /No such device|ENODEV/.test(o)).length;
      c.metrics!['copiers_enodev'] = m(enodev, 'processes');
      if (enodev !== 2) problems.push(`${enodev} of 2 COPY_FRAME loops ended with ENODEV: ${outs.replace(/\s+/g, ' ').slice(0, 400)}`);
      await sh(vm, `echo ${bdf} > /sys/bus/pci/drivers/hilbox/bind; for i in $(seq 100); do [ -e ${d.dev} ] && break; sleep 0.1; done; [ -e ${d.dev} ]`, vm.scaled(60_000));
      rebound = true;
    } finally {
      await vm.guest.killProbes(vm.session);
      if (!rebound) await vm.exec(`[ -e /sys/bus/pci/drivers/hilbox/${bdf} ] || echo ${bdf} > /sys/bus/pci/drivers/hilbox/bind; true`, { timeoutMs: vm.scaled(30_000) });
    }
  });
}

/**
 * vmstate-hostile, in the guest: (a) 10 bytes of a 16-byte feed record, the connection closed,
 * a new one, whole records: the guest reads exactly those (feed-errors +10); (b) 10 bytes, then
 * savevm (the fast-reset snapshot) mid-record, the record completed live, loadvm, then whole
 * records on the same connection: exactly those again, no feed error. The guest's reader starts
 * after the restore (loadvm takes the whole VM back).
 */
async function vmstateHostile(ctx: SuiteContext, c: CaseResult, problems: string[]): Promise<void> {
  const { vm } = ctx;
  const props = { width: 64, height: 48, fps: 10, 'mouse-rate-hz': 0, 'fifo-depth': 1024 };
  const WHOLE = 3;
  const partial = Buffer.from(encodeFeedRecord({ dx: 0x0a0a, dy: 0x0b0b, buttons: 1 }));
  await withExtraDevice(vm, { id: 'hbvms', bus: 'rp1', props, feed: true, runDir: ctx.runDir }, async (d) => {
    const counters = (): Promise<DeviceCounters> => vm.machine.guard(deviceCounters(vm.qmp, d.id));
    /** Starts a reader of 1 + WHOLE records, primes it, sends WHOLE records; the deltas after the prime. */
    const readWhole = async (feeder: () => MouseFeeder, label: string, before?: () => Promise<void>): Promise<{ records: number; produced: number; feedErrors: number }> => {
      const reading = runProbe(vm, ['read-events', '--count', String(1 + WHOLE), '--timeout-ms', String(vm.scaled(30_000))], { suite: 'security', step: 'read-events', timeoutMs: ctx.caseTimeoutMs, dev: d.dev });
      await primeReader(vm, d.id, feeder());
      const c0 = await counters();
      if (before) await before();
      await feeder().feed(Array.from({ length: WHOLE }, (_, i) => ({ dx: 100 + i, dy: -100 - i, flags: EV_FLAG_END_OF_REPORT })), { eventsPerSecond: 1000, bundle: 1 });
      const [r] = await reading;
      const c1 = await counters();
      const records = r?.metrics?.['records']?.value ?? 0;
      if (r?.status !== 'pass') problems.push(`${label}: reading: ${r?.reason ?? 'no result'}`);
      return { records: records - 1, produced: c1['events-produced'] - c0['events-produced'], feedErrors: c1['feed-errors'] - c0['feed-errors'] };
    };
    // (a) a partial record, its connection closed, a new connection with whole records
    let first = await MouseFeeder.connect(d.feedSocket!);
    let a;
    try {
      a = await readWhole(() => first, 'reconnect', async () => {
        await first.writeRaw(partial.subarray(0, 10));
        await sleep(200);
        first.close();
        await sleep(200);
        first = await MouseFeeder.connect(d.feedSocket!);
      });
    } finally {
      first.close();
    }
    c.metrics!['records_after_reconnect'] = m(a.records, 'records');
    c.metrics!['feed_errors_delta'] = m(a.feedErrors, 'B');
    if (a.records !== WHOLE || a.produced !== WHOLE) problems.push(`after a partial record and a reconnect: ${a.records} records read, ${a.produced} produced, want exactly ${WHOLE}`);
    if (a.feedErrors !== 10) problems.push(`feed-errors rose by ${a.feedErrors} for a 10-byte partial record dropped at disconnect (want 10)`);
    await vm.guest.killProbes(vm.session);
    // (b) savevm mid-record, the record completed live, loadvm, whole records on the same connection
    const feeder = await MouseFeeder.connect(d.feedSocket!);
    try {
      await feeder.writeRaw(partial.subarray(0, 10));
      await sleep(200);
      // A snapshot of its own: the VM's clean fast-reset snapshot stays what it was.
      await vm.snapshot(CASE_SNAPSHOT);
      await feeder.writeRaw(partial.subarray(10));
      await sleep(200);
      await vm.reset(CASE_SNAPSHOT);
      await vm.dropSnapshot(CASE_SNAPSHOT);
      const b = await readWhole(() => feeder, 'loadvm');
      c.metrics!['restore_records'] = m(b.records, 'records');
      c.metrics!['restore_feed_errors'] = m(b.feedErrors, 'B');
      if (b.records !== WHOLE || b.produced !== WHOLE) problems.push(`after loadvm of a snapshot taken mid-record: ${b.records} records read, ${b.produced} produced, want exactly ${WHOLE}`);
      if (b.feedErrors !== 0) problems.push(`feed-errors rose by ${b.feedErrors} after loadvm (the snapshot's partial record came back?)`);
    } finally {
      feeder.close();
    }
  });
  // (c) and (d) need a second QEMU: qtest QEMUs holding a device like the booted one
  const qemu = await ensureQemu();
  await craftedStreamRefused(ctx, qemu, c, problems);
  await liveMigrationRedraws(ctx, qemu, c, problems);
}

const QTEST_MEM = ['-m', '32'];

/** (c) A stream whose hilbox-pci section says fifo_count 17 for a 16-deep FIFO: a fresh QEMU refuses it (exit 1, naming fifo_count). */
async function craftedStreamRefused(ctx: SuiteContext, qemu: string, c: CaseResult, problems: string[]): Promise<void> {
  const { scenario } = ctx;
  const depth = 16;
  const props: Partial<DeviceProps> = { width: scenario.device.width, height: scenario.device.height, stride: scenario.device.stride, fps: scenario.device.fps, 'mouse-rate-hz': 0, 'fifo-depth': depth };
  const T = 123_456_789n;
  const file = join(ctx.runDir, 'vmstate-fifo.mig');
  {
    await using rig = await startRig({ qemu, props, args: QTEST_MEM });
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await rig.qt.clockSet(T);
    for (let i = 0; i < 5; i++) await rig.qt.qmp!.execute('input-send-event', { events: [{ type: 'rel', data: { axis: 'x', value: 0x1230 + i } }] });
    await rig.wr32('EV_POP', 1);
    await rig.wr32('EV_POP', 1); // head 2, count 3
    await migrateToFile(rig.qt, file);
  }
  const stream = await readFile(file);
  const fifo = Buffer.alloc(depth * 24);
  for (let i = 0; i < 5; i++) {
    Buffer.from(encodeEventRecord({ seq: BigInt(i + 1), timestamp: T, dx: 0x1230 + i, dy: 0, wheel: 0, buttons: 0, source: EV_SOURCE.input, flags: EV_FLAG_END_OF_REPORT })).copy(fifo, 24 * i);
  }
  const at = stream.indexOf(fifo);
  if (at < 0 || stream.readUInt32BE(at + depth * 24 + 4) !== 3) {
    problems.push('crafted stream: the FIFO (head 2, count 3) was not found in the migration stream');
    return;
  }
  const patched = Buffer.from(stream);
  patched.writeUInt32BE(depth + 1, at + depth * 24 + 4);
  const bad = join(ctx.runDir, 'vmstate-fifo-count.mig');
  await writeFile(bad, patched);
  const r = await loadFromFile(bad, { qemu, props, args: QTEST_MEM, clock: T });
  if (r.ok) {
    await r.rig.close();
    c.metrics!['crafted_stream_exit_code'] = m(0, 'code');
    problems.push(`a stream with fifo_count ${depth + 1} for a ${depth}-deep FIFO was accepted`);
    return;
  }
  c.metrics!['crafted_stream_exit_code'] = m(r.exitCode ?? -1, 'code');
  const last = r.stderr.trim().split('\n').slice(-3).join(' | ');
  if (r.signal !== null || r.exitCode !== 1) problems.push(`the crafted stream ended the destination with ${r.signal ?? `exit ${r.exitCode}`}, not a clean exit 1: ${last}`);
  if (!r.stderr.includes('hilbox-pci: migrated fifo_count')) problems.push(`the refusal does not name fifo_count: ${last}`);
}

/** (d) A live migration of an fps=1 device during which >= 3 frames pass: on the destination every pixel is frame FRAME_NUMBER at once. */
async function liveMigrationRedraws(ctx: SuiteContext, qemu: string, c: CaseResult, problems: string[]): Promise<void> {
  const { scenario } = ctx;
  const props: Partial<DeviceProps> = { width: scenario.device.width, height: scenario.device.height, stride: scenario.device.stride, fps: 1, 'mouse-rate-hz': 0 };
  const file = join(ctx.runDir, 'vmstate-live.mig');
  const start = 10n;
  let n: bigint, clock: bigint;
  {
    await using src = await startRig({ qemu, props, args: QTEST_MEM });
    await src.qt.clockSet(frameTimestamp(start, 1));
    // slow enough that frames change while RAM is being sent
    await src.qt.qmp!.execute('migrate-set-parameters', { 'max-bandwidth': 2 * 1024 * 1024 });
    let steps = 0;
    await migrateToFile(src.qt, file, {
      onPoll: async () => {
        if (steps++ < 5) await src.qt.clockStep(1_000_000_000n).catch(() => undefined); // one frame at fps 1
        await sleep(20);
      },
    });
    n = await src.rd64('FRAME_NUMBER');
    clock = await src.qt.clock();
  }
  c.metrics!['migration_frames_during'] = m(Number(n - start), 'frames');
  if (n - start < 3n) problems.push(`only ${n - start} frames passed during the live migration (want >= 3)`);
  const dst = await loadFromFile(file, { qemu, props, args: QTEST_MEM, clock });
  if (!dst.ok) {
    problems.push(`the live migration stream did not load: exit ${dst.exitCode}: ${dst.stderr.trim().split('\n').slice(-2).join(' | ')}`);
    return;
  }
  await using rig = dst.rig;
  const got = await rig.rd64('FRAME_NUMBER');
  if (got !== n) problems.push(`FRAME_NUMBER ${got} on the destination, ${n} on the source`);
  const { geo } = rig;
  const fb = await rig.qt.b64read(rig.fb, geo.stride * geo.height);
  const want = Buffer.from(expectedFbBytes(got, geo, 0, geo.stride * geo.height));
  let wrong = 0;
  let example = '';
  const frame = Number(got % 65536n);
  for (let y = 0; y < geo.height; y++) {
    for (let x = 0; x < geo.width; x++) {
      const o = y * geo.stride + 3 * x;
      if (fb[o] === want[o] && fb[o + 1] === want[o + 1] && fb[o + 2] === want[o + 2]) continue;
      wrong++;
      if (!example) example = `pixel (${x},${y}) decodes to frame ${decodeFrameNumber(x, y, fb[o]!, fb[o + 1]!, fb[o + 2]!)}, FRAME_NUMBER is ${frame}`;
    }
  }
  c.metrics!['migrated_mismatched_pixels'] = m(wrong, 'px');
  if (wrong) problems.push(`right after the switch-over ${wrong} of ${geo.width * geo.height} pixels are not frame FRAME_NUMBER (${example})`);
}
