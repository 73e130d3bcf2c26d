/**
 * hilbox.ko under load and abuse, in a real guest (QEMU with hilbox-pci, 2 vCPUs): how long the
 * interrupt handler keeps interrupts off, one interrupt per record (SPEC §7: drain, then ACK),
 * non-blocking reads next to poll, a faulting read buffer next to a good reader, io_uring reads
 * as INTERFACE.md describes them, COPY_FRAME against SIGKILL and unbind in slow fb-mode=mmio,
 * COPY_FRAME stuck in a userfaultfd fault on its destination against unbind (both fb modes),
 * and records a previous binding left in the device FIFO.
 *
 * The main device is the slow one (fb-mode=mmio, 100 µs per BAR2 access) with a 65536-record
 * FIFO and a host feed and no generator; the event tests that need a generator hot-plug one.
 * The driver's ring holds 65536 records, so a full FIFO fits.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HilboxVm } from '../../orchestrator/src/lib/hilbox-vm.ts';
import type { StartedHilboxVm } from '../../orchestrator/src/lib/started-vm.ts';
import { runProbe } from '../../orchestrator/src/suites/probe.ts';
import { withExtraDevice } from '../../orchestrator/src/suites/devices.ts';
import { hardIrqRuns, SINGLE_RECORD_MIN_IRQS } from '../../orchestrator/src/suites/hostile.ts';
import { scanForCrashes } from '../../orchestrator/src/vm/crash-scan.ts';
import type { CaseResult } from '../../orchestrator/src/report/results.ts';

let vm: StartedHilboxVm;
const runDir = mkdtempSync(join(tmpdir(), 'hilbox-hardening-test-'));
const FIFO = 65536;
const GEOMETRY = { width: 320, height: 240, fps: 50 };
const MAIN = { ...GEOMETRY, 'fb-mode': 'mmio', 'mmio-latency-ns': 100_000, 'fifo-depth': FIFO, 'mouse-rate-hz': 0 };
const INTERFACE_MD = join(import.meta.dirname, '..', '..', 'guest-driver', 'INTERFACE.md');

const metric = (c: CaseResult, name: string) => c.metrics?.[name]?.value;
const detail = (c: CaseResult, name: string) => (c.details as Record<string, unknown> | undefined)?.[name];
const probe = async (args: string[], o: { dev?: string; timeoutMs?: number } = {}) => {
  const cases = await runProbe(vm, args, { suite: 'test', step: args[0]!, timeoutMs: o.timeoutMs ?? vm.scaled(60_000), ...(o.dev ? { dev: o.dev } : {}) });
  expect(cases.length, JSON.stringify(cases)).toBeGreaterThan(0);
  return cases;
};
const sh = async (cmd: string, timeoutMs = vm.scaled(60_000)) => (await vm.ssh.run(cmd, { timeoutMs })).stdout;
/** The PCI address of a device node's function, e.g. 0000:01:00.0. */
const bdfOf = async (dev: string) => (await sh(`basename $(readlink -f /sys/class/misc/${dev.replace('/dev/', '')}/device)`)).trim();
const rebind = (bdf: string, dev: string) =>
  sh(`echo ${bdf} > /sys/bus/pci/drivers/hilbox/bind; for i in $(seq 100); do [ -e ${dev} ] && break; sleep 0.1; done; [ -e ${dev} ]`);
/**
 * Feeds single records until one reaches the driver: a record offered before the reader
 * subscribed is dropped by the device (EV_ENABLE = 0), so exactly one is delivered in the end.
 */
const primeReader = async () => {
  const deadline = Date.now() + vm.scaled(30_000);
  for (;;) {
    const c0 = await vm.deviceCounters();
    await vm.mouseFeeder!.feed(1);
    let c = c0;
    while (c['events-produced'] === c0['events-produced']) c = (await sleep(50), await vm.deviceCounters());
    if (c['events-dropped'] === c0['events-dropped']) {
      while ((await vm.deviceCounters())['events-delivered'] === c0['events-delivered']) await sleep(50);
      return;
    }
    if (Date.now() > deadline) throw new Error('the reader never subscribed');
    await sleep(300);
  }
};
const irqCount = async () => {
  const [c] = await probe(['info']);
  return metric(c!, 'irq_count')!;
};

beforeAll(async () => {
  vm = await new HilboxVm().withDevice(MAIN).withMouseFeed().withCpus(2).withAccel('auto').start();
  await vm.loadDriver({ params: { ring_size: FIFO } });
  expect((await vm.exec('test -e /dev/hilbox0')).code).toBe(0);
});

afterAll(async () => {
  await vm?.stop();
  rmSync(runDir, { recursive: true, force: true });
});

describe('hilbox.ko hardening', () => {
  it('drains, then acknowledges (SPEC §7): 200 single host-fed records 10 ms apart raise 196-220 interrupts', async () => {
    // ACK before drain gives about two per record. A loaded host only lowers the count (a record
    // whose interrupt thread ran late is drained with the next: up to 2 %), so a run below that is repeated.
    let irqs = 0;
    for (let run = 1; run <= 5; run++) {
      const reading = probe(['read-events', '--count', '201', '--timeout-ms', String(vm.scaled(30_000))]);
      await primeReader();
      const before = await irqCount();
      const fed = await vm.mouseFeeder!.feed(200, { eventsPerSecond: 100, bundle: 1 });
      expect(fed.events).toBe(200);
      const [c] = await reading;
      expect(c!.status, c!.reason).toBe('pass');
      expect(metric(c!, 'records')).toBe(201);
      irqs = (await irqCount()) - before;
      if (irqs >= SINGLE_RECORD_MIN_IRQS) break;
    }
    console.log(`hardening: ${irqs} interrupts for 200 host-fed records`);
    expect(irqs, `${irqs} interrupts for 200 records`).toBeGreaterThanOrEqual(SINGLE_RECORD_MIN_IRQS);
    expect(irqs, `${irqs} interrupts for 200 records`).toBeLessThanOrEqual(220);
  });

  it('a full 65536-record FIFO reaches the reader whole while no hard-IRQ handler run lasts 2 ms', async () => {
    const T = '/sys/kernel/tracing';
    const irq = (await sh('grep -m1 "hilbox0" /proc/interrupts')).trim().split(':')[0]!.trim();
    expect(irq).toMatch(/^\d+$/);
    await sh(
      [
        `[ -e ${T}/trace ] || mount -t tracefs nodev ${T}`,
        `echo 0 > ${T}/tracing_on`,
        `echo 4096 > ${T}/buffer_size_kb`,
        `echo > ${T}/trace`,
        `echo irq==${irq} > ${T}/events/irq/irq_handler_entry/filter`,
        `echo irq==${irq} > ${T}/events/irq/irq_handler_exit/filter`,
        `echo 1 > ${T}/events/irq/irq_handler_entry/enable`,
        `echo 1 > ${T}/events/irq/irq_handler_exit/enable`,
        `echo 1 > ${T}/tracing_on`,
      ].join(' && '),
    );
    const reading = probe(['read-events', '--count', String(FIFO + 1), '--timeout-ms', String(vm.scaled(150_000))], { timeoutMs: vm.scaled(180_000) });
    // One record first: once it is delivered the reader is subscribed (EV_ENABLE = 1).
    await primeReader();
    const base = await vm.deviceCounters();
    // The whole burst enters the FIFO while the vCPUs are stopped, so one interrupt finds it full.
    await vm.qmp.execute('stop');
    try {
      await vm.mouseFeeder!.feed(FIFO, { eventsPerSecond: 4_000_000, bundle: 64 });
      const until = Date.now() + 60_000;
      while ((await vm.deviceCounters())['events-produced'] < base['events-produced'] + FIFO) {
        if (Date.now() > until) throw new Error('the device did not take the burst');
        await sleep(100);
      }
    } finally {
      await vm.qmp.execute('cont');
    }
    const [c] = await reading;
    const after = await vm.deviceCounters();
    expect(after['events-dropped'], 'device drops').toBe(base['events-dropped']);
    await sh(`echo 0 > ${T}/tracing_on`);
    const trace = await sh(`cat ${T}/trace`, vm.scaled(120_000));
    await sh(`echo 0 > ${T}/events/irq/irq_handler_entry/enable; echo 0 > ${T}/events/irq/irq_handler_exit/enable; echo > ${T}/trace`);
    const runs = hardIrqRuns(trace, irq);
    const longest = Math.max(0, ...runs);
    expect(c!.status, c!.reason).toBe('pass');
    expect(metric(c!, 'records')).toBe(FIFO + 1);
    expect(metric(c!, 'seq_gaps')).toBe(0);
    expect(runs.length, 'traced handler runs').toBeGreaterThan(0);
    console.log(`hardening: ${runs.length} hard-IRQ handler runs for ${FIFO + 1} records, longest ${longest.toFixed(3)} ms`);
    const top = [...runs].sort((a, b) => b - a).slice(0, 5).map((r) => r.toFixed(3));
    expect(longest, `longest hard-IRQ handler run ${longest.toFixed(3)} ms over ${runs.length} runs (longest: ${top.join(', ')} ms)`).toBeLessThan(2);
  }, 600_000);

  it('a non-blocking read after POLLIN never returns EAGAIN while records are queued', async () => {
    const [c] = await withExtraDevice(vm, { id: 'hbnb', bus: 'rp1', props: { ...GEOMETRY, 'mouse-rate-hz': 1000 }, runDir }, (d) =>
      probe(['_hb-nb-race', '10', '2'], { dev: d.dev }),
    );
    console.log(`hardening: nb-race ${JSON.stringify(c!.metrics)}`);
    expect(metric(c!, 'pollin'), JSON.stringify(c)).toBeGreaterThan(0);
    expect(metric(c!, 'eagain_after_pollin'), c!.reason).toBe(0);
    expect(metric(c!, 'order_violations')).toBe(0);
    expect(c!.status, c!.reason).toBe('pass');
  });

  it('a read whose buffer faults while it waits fails with EFAULT and reorders nothing for the next reader', async () => {
    const [c] = await withExtraDevice(vm, { id: 'hbef', bus: 'rp1', props: { ...GEOMETRY, 'mouse-rate-hz': 8000, 'mouse-bundle': 64 }, runDir }, (d) =>
      probe(['_hb-efault-race', '256'], { dev: d.dev }),
    );
    expect(detail(c!, 'reader_a'), JSON.stringify(c)).toBe('EFAULT');
    expect(metric(c!, 'order_violations'), JSON.stringify(c!.details)).toBe(0);
    expect(metric(c!, 'duplicates')).toBe(0);
    expect(metric(c!, 'records')).toBeGreaterThanOrEqual(256);
    expect(c!.status, c!.reason).toBe('pass');
  });

  it('io_uring reads, IOSQE_ASYNC or not, wait through poll arming, as INTERFACE.md says, not as blocked readers', async () => {
    const [c] = await withExtraDevice(vm, { id: 'hbur', bus: 'rp1', props: { ...GEOMETRY, 'mouse-rate-hz': 1000 }, runDir }, (d) =>
      probe(['_hb-uring-pending', '4'], { dev: d.dev }),
    );
    expect(c!.status, c!.reason).toBe('pass');
    // 8 reads pending, none of them a blocked read in the driver (FMODE_NOWAIT + poll).
    expect(metric(c!, 'readers_waiting')).toBe(0);
    expect(metric(c!, 'completed_with_record')).toBe(8);
    const doc = readFileSync(INTERFACE_MD, 'utf8');
    const uring = /\*\*io_uring\.\*\*([\s\S]*?)\*\*poll\/epoll\.\*\*/.exec(doc)?.[1] ?? '';
    expect(uring, 'INTERFACE.md io_uring section').toMatch(/FMODE_NOWAIT/);
    expect(uring, 'INTERFACE.md: IOSQE_ASYNC reads go through poll arming').toMatch(/IOSQE_ASYNC[\s\S]*?arms the same poll/);
    expect(uring, 'INTERFACE.md must not describe IOSQE_ASYNC reads as blocked io-wq workers').not.toMatch(/block in io-wq workers|each worker is a pending request/);
  });

  it('records a previous binding left in the FIFO are discarded: the first record after a rebind is fresh', async () => {
    const c = await withExtraDevice(vm, { id: 'hbfr', bus: 'rp1', props: { ...GEOMETRY, 'mouse-rate-hz': 1000 }, runDir }, async (d) => {
      const [pre] = await probe(['read-events', '--count', '20', '--timeout-ms', String(vm.scaled(20_000))], { dev: d.dev });
      expect(pre!.status, pre!.reason).toBe('pass');
      const bdf = await bdfOf(d.dev);
      const bar0 = (await sh(`head -1 /sys/bus/pci/devices/${bdf}/resource`)).trim().split(/\s+/)[0]!;
      const reg = (off: number) => `$((${bar0} + ${off}))`;
      await sh(`echo ${bdf} > /sys/bus/pci/drivers/hilbox/unbind`);
      // What a binding that went away with events enabled leaves behind: CONTROL.EV_ENABLE = 1
      // with nobody draining (INT_MASK = 0), records piling up in the FIFO; then stopped.
      await sh(`devmem ${reg(0x0c)} 32 1; usleep 300000; devmem ${reg(0x0c)} 32 0`);
      const [queued, produced] = (await sh(`devmem ${reg(0x80)} 32; devmem ${reg(0x90)} 32`))
        .trim()
        .split('\n')
        .map((l) => Number.parseInt(l.trim(), 16));
      expect(queued, 'records queued in the FIFO before the rebind').toBeGreaterThan(0);
      await rebind(bdf, d.dev);
      const [first] = await probe(['_hb-first-event'], { dev: d.dev });
      return { first: first!, produced: produced! };
    });
    expect(c.first.status, c.first.reason).toBe('pass');
    const seq = detail(c.first, 'first_seq') as number;
    const ts = detail(c.first, 'first_timestamp') as number;
    const clk = detail(c.first, 'device_clock_at_open') as number;
    expect(seq, `first seq ${seq}, last produced before the rebind ${c.produced}`).toBeGreaterThan(c.produced);
    expect(ts, `first record at ${ts} ns, device clock at open ${clk} ns`).toBeGreaterThan(clk);
  });

  it('COPY_FRAME in fb-mode=mmio (100 µs per access) dies within 1 s of SIGKILL', async () => {
    const out = await sh(
      [
        'for i in 1 2 3; do',
        '  hilbox-probe fb-throughput --method copy --seconds 30 --seqlock on >/dev/null 2>&1 &',
        '  pid=$!',
        '  usleep 1500000',
        '  read t0 x </proc/uptime',
        '  kill -9 $pid',
        '  wait $pid',
        '  read t1 x </proc/uptime',
        '  echo "$t0 $t1"',
        'done',
      ].join('\n'),
      vm.scaled(120_000),
    );
    const took = out.trim().split('\n').map((l) => l.split(' ').map(Number)).map(([a, b]) => b! - a!);
    console.log(`hardening: kill -9 of a COPY_FRAME loop took ${took.map((t) => t.toFixed(2)).join(', ')} s`);
    expect(took.length).toBe(3);
    for (const s of took) expect(s, `kill -9 took ${took.join(', ')} s`).toBeLessThan(1);
  }, 300_000);

  it('unbind during a COPY_FRAME loop in fb-mode=mmio returns promptly and the copier gets ENODEV', async () => {
    const bdf = await bdfOf('/dev/hilbox0');
    const limit = 0.25 * vm.scaled(1);
    for (let i = 0; i < 3; i++) {
      const out = await sh(
        [
          'hilbox-probe fb-throughput --method copy --seconds 30 --seqlock on >/tmp/hb-copy.out 2>&1 &',
          'pid=$!',
          'usleep 1500000',
          'read t0 x </proc/uptime',
          `echo ${bdf} > /sys/bus/pci/drivers/hilbox/unbind`,
          'read t1 x </proc/uptime',
          'wait $pid',
          'echo "T $t0 $t1"',
          'cat /tmp/hb-copy.out',
        ].join('\n'),
        vm.scaled(120_000),
      );
      await rebind(bdf, '/dev/hilbox0');
      const [, t0, t1] = /^T (\S+) (\S+)$/m.exec(out)!;
      const took = Number(t1) - Number(t0);
      console.log(`hardening: unbind during COPY_FRAME took ${took.toFixed(2)} s (trial ${i + 1})`);
      const result = out.split('\n').find((l) => l.startsWith('{'));
      expect(result, out).toBeDefined();
      expect(JSON.parse(result!).reason ?? '', result).toMatch(/No such device/);
      expect(took, `unbind took ${took.toFixed(2)} s (trial ${i + 1})`).toBeLessThan(limit);
    }
  }, 300_000);

  // The copy must take faults on its destination without the hardware lock: a destination whose
  // fault never completes (userfaultfd) would otherwise hold up removal indefinitely. In
  // fb-mode=direct the copy goes straight to user memory with page faults off under the lock
  // and faults the rest in without it; in fb-mode=mmio copy_to_user runs from the bounce buffer.
  it.each(['direct', 'mmio'] as const)('COPY_FRAME held in a userfaultfd fault on its destination (fb-mode=%s) does not hold up an unbind, then gets ENODEV', async (mode) => {
    const run = async (dev: string) => {
      const bdf = await bdfOf(dev);
      const out = await sh(
        [
          `hilbox-probe --dev ${dev} _hb-copy-uffd 3000 >/tmp/hb-uffd.out 2>/tmp/hb-uffd.err &`,
          'pid=$!',
          'for i in $(seq 400); do grep -q blocked /tmp/hb-uffd.err && break; usleep 50000; done',
          'grep -q blocked /tmp/hb-uffd.err || echo NOT-BLOCKED',
          'read t0 x </proc/uptime',
          `echo ${bdf} > /sys/bus/pci/drivers/hilbox/unbind`,
          'read t1 x </proc/uptime',
          'wait $pid',
          'echo "T $t0 $t1"',
          'cat /tmp/hb-uffd.out',
        ].join('\n'),
        vm.scaled(120_000),
      );
      await rebind(bdf, dev);
      return out;
    };
    const out = mode === 'mmio' ? await run('/dev/hilbox0') : await withExtraDevice(vm, { id: 'hbuffd', bus: 'rp1', props: { ...GEOMETRY, 'fb-mode': 'direct', 'mouse-rate-hz': 0 }, runDir }, (d) => run(d.dev));
    expect(out, 'the copy reached the userfaultfd range').not.toMatch(/NOT-BLOCKED/);
    const [, t0, t1] = /^T (\S+) (\S+)$/m.exec(out)!;
    const took = Number(t1) - Number(t0);
    console.log(`hardening: unbind with COPY_FRAME in a userfaultfd fault (fb-mode=${mode}) took ${took.toFixed(2)} s`);
    expect(took, 'the unbind did not wait for the held fault (3 s)').toBeLessThan(0.25 * vm.scaled(1));
    const result = JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!) as CaseResult;
    expect(result.status, result.reason).toBe('pass');
    expect(detail(result, 'copy_errno')).toBe('ENODEV');
  }, 300_000);

  it('leaves the kernel log clean and unloads', async () => {
    expect(scanForCrashes(await vm.kernelLog()).map((h) => h.lines[0])).toEqual([]);
    await vm.unloadDriver();
    expect((await sh('cat /proc/modules'))).not.toMatch(/^hilbox /m);
    vm.assertNoCrash();
  });
});
