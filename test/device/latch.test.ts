/**
 * SPEC §3: 64-bit registers read as two 32-bit words. Each register has its own latch (per
 * vCPU; qtest is one accessor): the high-word read returns the value latched by the same
 * accessor's last low-word read of the same register, whatever was read in between.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { REG, frameTimestamp } from '../../orchestrator/src/device/spec.ts';
import { BUILD_TIMEOUT_MS, qemuBinary, startRig } from './helpers.ts';

beforeAll(async () => {
  await qemuBinary();
}, BUILD_TIMEOUT_MS);

const pair = (lo: number, hi: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);

describe('per-register 64-bit latch', () => {
  it('DEVICE_CLOCK low, FRAME_NUMBER low, step across a high-word change, both highs: no cross-talk', async () => {
    await using rig = await startRig({ props: { width: 16, height: 16, fps: 1, 'mouse-rate-hz': 0 } });
    const { qt } = rig;
    const rd = async (off: number) => (await qt.readl(rig.regs + off)) >>> 0;
    const c = 2n ** 33n - 1000n; // device clock just below a change of its high word (1 -> 2)
    await rig.clockSet(c); // and frame 8 rendered (the settle reads 64-bit registers atomically: no latch)
    const clkLo = await rd(REG.DEVICE_CLOCK); // latches DEVICE_CLOCK's high word (1)
    const fnLo = await rd(REG.FRAME_NUMBER); // latches FRAME_NUMBER's; must not replace the clock's
    await qt.clockStep(2000n);
    expect(await rig.rd64('DEVICE_CLOCK')).toBe(c + 2000n); // an 8-byte read: atomic, latches untouched
    expect(pair(clkLo, await rd(REG.DEVICE_CLOCK + 4)), 'DEVICE_CLOCK pair').toBe(c);
    expect(pair(fnLo, await rd(REG.FRAME_NUMBER + 4)), 'FRAME_NUMBER pair').toBe(8n);
  });

  it('FRAME_TIMESTAMP low, DEVICE_CLOCK low, step to the next frame (both high words change), both highs', async () => {
    await using rig = await startRig({ props: { width: 16, height: 16, fps: 1, 'mouse-rate-hz': 0 } });
    const { qt } = rig;
    const rd = async (off: number) => (await qt.readl(rig.regs + off)) >>> 0;
    await rig.clockSet(frameTimestamp(4n, 1)); // 4.0 s: high words 0 (frame 4 rendered)
    const tsLo = await rd(REG.FRAME_TIMESTAMP);
    const clkLo = await rd(REG.DEVICE_CLOCK);
    await rig.clockSet(frameTimestamp(5n, 1)); // 5.0 s > 2^32 ns: high words 1
    expect(await rig.rd64('FRAME_TIMESTAMP')).toBe(5_000_000_000n);
    expect(pair(tsLo, await rd(REG.FRAME_TIMESTAMP + 4)), 'FRAME_TIMESTAMP pair').toBe(4_000_000_000n);
    expect(pair(clkLo, await rd(REG.DEVICE_CLOCK + 4)), 'DEVICE_CLOCK pair').toBe(4_000_000_000n);
  });

  it('a high-word read repeats the latched value; a new low-word read latches anew', async () => {
    await using rig = await startRig({ props: { width: 16, height: 16, 'mouse-rate-hz': 0 } });
    const { qt } = rig;
    const rd = async (off: number) => (await qt.readl(rig.regs + off)) >>> 0;
    await qt.clockSet(2n ** 32n - 10n);
    const lo = await rd(REG.DEVICE_CLOCK);
    await qt.clockStep(100n);
    expect(await rd(REG.DEVICE_CLOCK + 4)).toBe(0);
    expect(await rd(REG.DEVICE_CLOCK + 4)).toBe(0);
    expect(pair(lo, 0)).toBe(2n ** 32n - 10n);
    const lo2 = await rd(REG.DEVICE_CLOCK);
    expect(pair(lo2, await rd(REG.DEVICE_CLOCK + 4))).toBe(2n ** 32n + 90n);
  });
});
