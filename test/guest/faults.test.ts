/**
 * hilbox.ko against a misbehaving device (INTERFACE.md §5a), in a real guest, with the device's
 * own faults (SPEC §11):
 *  - `link-down` makes every read all ones: the watchdog notices, fails a blocked reader and
 *    the hardware ioctls with EIO, logs it once, and brings everything back when the link
 *    returns — no oops, the driver unloads;
 *  - `irq-lost`: events still arrive, drained by the watchdog (fallback_drains);
 *  - `spurious-irq`: MSIs with nothing to report are counted, not "nobody cared";
 *  - `irq-storm`: a stuck EV_READY is throttled (masked, polled), events still arrive.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HilboxVm } from '../../orchestrator/src/lib/hilbox-vm.ts';
import type { StartedHilboxVm } from '../../orchestrator/src/lib/started-vm.ts';
import { runProbe } from '../../orchestrator/src/suites/probe.ts';
import { LINUX_CRASH_SIGNATURES, scanForCrashes } from '../../orchestrator/src/vm/crash-scan.ts';

let vm: StartedHilboxVm;
const DEV = '/machine/peripheral/hb0';

const fault = (value: string) => vm.qmp.execute('qom-set', { path: DEV, property: 'fault', value });
const probe = (args: string[], timeoutMs = vm.scaled(60_000)) => runProbe(vm, args, { suite: 'test', step: args[0]!, timeoutMs });
const dmesg = async () => (await vm.exec('dmesg')).stdout;
const param = (name: string, value: number) => vm.qmp.execute('qom-set', { path: DEV, property: name, value });
const stat = async (name: string) => {
  const [info] = await probe(['info']);
  expect(info?.status, info?.reason).toBe('pass');
  return info!.metrics![name]!.value;
};
/** 50 generator records reach a reader (1000 Hz generator). */
const eventsFlow = async () => {
  const [ev] = await probe(['read-events', '--count', '50', '--timeout-ms', String(vm.scaled(20_000))]);
  expect(ev?.status, ev?.reason).toBe('pass');
};

beforeAll(async () => {
  vm = await new HilboxVm().withDevice({ width: 320, height: 240, fps: 50, 'mouse-rate-hz': 1000 }).withCpus(2).withAccel('auto').start();
  expect((await vm.loadDriver()).code).toBe(0);
});

afterAll(async () => {
  await vm?.stop();
});

describe('link down and back (watchdog)', () => {
  it('a blocked reader and the hardware ioctls get EIO while the link is down; all works again after', async () => {
    // a reader that wants far more records than will come before the link drops
    const reading = probe(['read-events', '--count', '1000000', '--timeout-ms', String(vm.scaled(60_000))], vm.scaled(120_000));
    await sleep(vm.scaled(1000));
    const t0 = Date.now();
    await fault('link-down');
    const [r] = await reading;
    const took = Date.now() - t0;
    expect(r?.status, JSON.stringify(r)).toBe('fail');
    expect(r?.reason ?? '', 'the pending read ended with EIO').toMatch(/EIO|Input\/output error/);
    // within a few watchdog periods (100 ms each), not the reader's own 60 s timeout
    expect(took, `the reader ended ${took} ms after the link dropped`).toBeLessThan(vm.scaled(10_000));
    const [info] = await probe(['info']);
    expect(info?.status).toBe('fail');
    expect(info?.reason ?? '').toMatch(/EIO|Input\/output error/);
    expect(await dmesg()).toMatch(/hilbox0: link down \(ID reads all ones\)/);

    await fault('none');
    const deadline = Date.now() + vm.scaled(10_000);
    while (!/hilbox0: link up after \d+ ms/.test(await dmesg())) {
      if (Date.now() > deadline) throw new Error(`no "link up" in the kernel log:\n${(await dmesg()).split('\n').slice(-10).join('\n')}`);
      await sleep(200);
    }
    const [ev] = await probe(['read-events', '--count', '50', '--timeout-ms', String(vm.scaled(20_000))]);
    expect(ev?.status, ev?.reason).toBe('pass');
    const [frames] = await probe(['verify-frames', '--frames', '2', '--method', 'both']);
    expect(frames?.status, frames?.reason).toBe('pass');
    const [info2] = await probe(['info']);
    expect(info2?.status, info2?.reason).toBe('pass');
    expect(info2?.metrics?.['link_downs']?.value).toBe(1);
    expect(scanForCrashes(await dmesg(), LINUX_CRASH_SIGNATURES)).toEqual([]);
    expect((await vm.unloadDriver()).code, 'the driver unloads after a link loss').toBe(0);
    expect((await vm.loadDriver()).code).toBe(0);
  });

  it('irq-lost: events still arrive, drained by the watchdog', async () => {
    const before = await stat('fallback_drains');
    await fault('irq-lost');
    try {
      await eventsFlow();
      expect(await stat('fallback_drains')).toBeGreaterThan(before);
    } finally {
      await fault('none');
    }
    await eventsFlow();
  });

  it('spurious-irq: interrupts with nothing to report are counted and harmless', async () => {
    await param('fault-period-us', 1000);
    const before = await stat('irq_spurious');
    await fault('spurious-irq');
    try {
      await sleep(vm.scaled(2000));
      await eventsFlow();
      expect(await stat('irq_spurious')).toBeGreaterThan(before);
    } finally {
      await fault('none');
    }
    expect(await dmesg()).not.toMatch(/nobody cared/);
  });

  it('irq-storm: a stuck interrupt is throttled, counted and logged, and events still arrive', async () => {
    const before = await stat('irq_storms');
    await fault('irq-storm');
    try {
      await sleep(vm.scaled(2000));
      await eventsFlow();
      expect((await vm.exec('echo still-here', { timeoutMs: vm.scaled(10_000) })).stdout).toMatch(/still-here/);
    } finally {
      await fault('none');
    }
    expect(await stat('irq_storms')).toBeGreaterThan(before);
    expect(await dmesg()).toMatch(/hilbox0: interrupt storm/);
    await eventsFlow();
    expect(scanForCrashes(await dmesg(), LINUX_CRASH_SIGNATURES)).toEqual([]);
  });
});
