/**
 * hilbox.ko when the device stops answering (INTERFACE.md §5a), in a real guest: the device's
 * `fault=link-down` (SPEC §11) makes every read all ones. The driver's watchdog must notice,
 * fail a blocked reader and the hardware ioctls with EIO, log it once, and bring everything
 * back when the link returns — with no oops, and with the same open files working again.
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
});
