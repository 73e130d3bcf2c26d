/**
 * SPEC §4: frame timing on the virtual clock, the pixel function, padding, the seqlock
 * counters, read-only BAR2 with write counting, and fb-mode=mmio.
 *
 * In fb-mode=direct a frame is rendered by the device's own thread and published when it is
 * complete (§4.1, §4.3), so after moving the qtest clock a test waits for it (rig.clockSet /
 * rig.clockStep settle); frames whose interval passes while a render is in progress are
 * skipped (§4.1).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcmd } from '../../orchestrator/src/qtest/client.ts';
import {
  decodeFrameNumber,
  expectedFbBytes,
  fbBarSize,
  frameNumberAt,
  frameTimestamp,
  pixel,
  type DeviceProps,
} from '../../orchestrator/src/device/spec.ts';
import { BUILD_TIMEOUT_MS, qemuBinary, rng, startRig, type HilboxRig } from './helpers.ts';

beforeAll(async () => {
  await qemuBinary();
}, BUILD_TIMEOUT_MS);

/** First differing offset of two buffers, as text, or 'equal'. */
function firstDiff(got: Uint8Array, want: Uint8Array, base = 0): string {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== want[i]) return `offset 0x${(base + i).toString(16)}: got ${got[i]}, want ${want[i]}`;
  }
  return 'equal';
}

/** Reads `count` random pixels byte by byte (batched) and checks them against frame `n`. */
async function checkRandomPixels(rig: HilboxRig, n: bigint, count: number, seed: number): Promise<string[]> {
  const r = rng(seed);
  const pts = Array.from({ length: count }, () => [Math.floor(r() * rig.geo.width), Math.floor(r() * rig.geo.height)] as const);
  const lines = pts.flatMap(([x, y]) => [0, 1, 2].map((c) => qcmd.read(1, rig.fb + y * rig.geo.stride + 3 * x + c)));
  const vals = (await rig.qt.batch(lines)).map(Number);
  const bad: string[] = [];
  pts.forEach(([x, y], i) => {
    const got = [vals[3 * i]!, vals[3 * i + 1]!, vals[3 * i + 2]!] as const;
    const want = pixel(n, x, y);
    if (got.join() !== want.join()) bad.push(`(${x},${y}) frame ${n}: got ${got.join()}, want ${want.join()}`);
    if (decodeFrameNumber(x, y, ...got) !== Number(n % 65536n)) bad.push(`(${x},${y}) decodes to ${decodeFrameNumber(x, y, ...got)}`);
  });
  return bad;
}

async function frameState(rig: HilboxRig): Promise<{ number: bigint; ts: bigint; seq: number; produced: bigint; clock: bigint }> {
  return {
    number: await rig.rd64('FRAME_NUMBER'),
    ts: await rig.rd64('FRAME_TIMESTAMP'),
    seq: await rig.rd32('FRAME_SEQ'),
    produced: await rig.rd64('FRAMES_PRODUCED'),
    clock: await rig.rd64('DEVICE_CLOCK'),
  };
}

describe('direct mode, 1000×300, stride 3008, 60 fps', () => {
  const props: Partial<DeviceProps> = { width: 1000, height: 300, stride: 3008, fps: 60, 'mouse-rate-hz': 0 };
  let rig: HilboxRig;
  beforeAll(async () => {
    rig = await startRig({ props });
  });
  afterAll(async () => {
    await rig?.close();
  });

  const p0 = 1n; // FRAMES_PRODUCED right after reset: the frame-0 render counts (SPEC §3)
  it('shows frame 0 at reset', async () => {
    expect(await frameState(rig)).toEqual({ number: 0n, ts: 0n, seq: Number(2n * p0), produced: p0, clock: 0n });
    expect(await checkRandomPixels(rig, 0n, 300, 1)).toEqual([]);
  });

  it('switches frames exactly at t_n = ceil(n·10^9/fps) and renders every frame when stepped', async () => {
    for (const n of [1n, 2n, 3n, 59n, 60n, 61n]) {
      const tn = frameTimestamp(n, 60);
      await rig.clockSet(tn - 1n);
      const before = await frameState(rig);
      expect(before.number, `just before frame ${n}`).toBe(n - 1n);
      if (n <= 3n) expect(before.produced, 'every frame rendered, stepped one at a time').toBe(p0 + n - 1n);
      await rig.clockSet(tn);
      const s = await frameState(rig);
      // one frame interval further: exactly one more frame rendered (the jump 3 -> 58 above
      // passed 55 intervals in one clock_set, and skipped what found the renderer busy)
      expect(s).toEqual({ number: n, ts: tn, seq: Number(2n * (before.produced + 1n)), produced: before.produced + 1n, clock: tn });
      expect(frameNumberAt(tn, 60)).toBe(n);
    }
    expect(frameTimestamp(1n, 60)).toBe(16_666_667n);
  });

  it('pixels match the pixel function at several frames (random samples, one whole line incl. padding)', async () => {
    const { qt } = rig;
    for (const n of [61n, 255n, 256n, 300n, 1000n]) {
      await rig.clockSet(frameTimestamp(n, 60) + 5n);
      expect(await rig.rd64('FRAME_NUMBER')).toBe(n);
      expect(await checkRandomPixels(rig, n, 200, Number(n))).toEqual([]);
      const y = Number(n % 300n);
      const line = await qt.read(rig.fb + y * 3008, 3008);
      expect(firstDiff(line, expectedFbBytes(n, rig.geo, y * 3008, 3008), y * 3008)).toBe('equal');
      expect([...line.subarray(3000)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    }
  });

  it('the whole BAR (frame plus zero tail) matches in one b64read', async () => {
    const n = await rig.rd64('FRAME_NUMBER');
    const size = fbBarSize({ width: 1000, height: 300, stride: 3008 });
    expect(size).toBe(1 << 20);
    const all = await rig.qt.b64read(rig.fb, size);
    expect(firstDiff(all, expectedFbBytes(n, rig.geo, 0, size))).toBe('equal');
    expect(all.subarray(3008 * 300).every((b) => b === 0)).toBe(true);
  });

  it('reads of 2, 4 and 8 bytes see the same bytes', async () => {
    const n = await rig.rd64('FRAME_NUMBER');
    const off = 3008 * 17 + 3 * 123;
    const want = Buffer.from(expectedFbBytes(n, rig.geo, off, 8));
    expect(await rig.qt.readw(rig.fb + off)).toBe(want.readUInt16LE(0));
    expect(await rig.qt.readl(rig.fb + off)).toBe(want.readUInt32LE(0));
    expect(await rig.qt.readq(rig.fb + off)).toBe(want.readBigUInt64LE(0));
  });

  it('ignores writes of every size to BAR2 and counts each one', async () => {
    const { qt } = rig;
    const n = await rig.rd64('FRAME_NUMBER');
    const before = await qt.b64read(rig.fb, 3008 * 300);
    const base = await rig.rd64('FB_WRITE_ATTEMPTS');
    const writes: Array<[1 | 2 | 4 | 8, number]> = [[1, 0], [2, 3008 + 2], [4, 3008 * 299 + 2996], [8, 3008 * 150 + 8], [1, 3005], [4, (1 << 20) - 4], [8, (1 << 20) - 8]];
    let count = 0n;
    for (const [size, off] of writes) {
      await qt.writeN(size, rig.fb + off, 0xffff_ffff_ffff_ffffn >> BigInt(64 - 8 * size));
      count++;
      expect(await rig.rd64('FB_WRITE_ATTEMPTS'), `after ${size}-byte write at 0x${off.toString(16)}`).toBe(base + count);
    }
    expect(await rig.rd64('FRAME_NUMBER')).toBe(n);
    expect(firstDiff(await qt.b64read(rig.fb, 3008 * 300), before)).toBe('equal');
    expect(await rig.qomU64('fb-write-attempts')).toBe(base + count);
    // still the frame it should be
    expect(firstDiff(before, expectedFbBytes(n, rig.geo, 0, 3008 * 300))).toBe('equal');
  });

  it('QOM frame counters agree with the registers', async () => {
    expect(await rig.qomU64('frame-number')).toBe(await rig.rd64('FRAME_NUMBER'));
    expect(await rig.qomU64('frames-produced')).toBe(await rig.rd64('FRAMES_PRODUCED'));
    expect(BigInt(await rig.rd32('FRAME_SEQ'))).toBe(2n * (await rig.rd64('FRAMES_PRODUCED')));
  });
});

describe('default geometry 1920×1080, 50 fps', () => {
  it('a full frame matches after 1.5 s of virtual time (one clock step: frames skipped, SPEC §4.1)', async () => {
    await using rig = await startRig({ props: { 'mouse-rate-hz': 0 } });
    const p0 = 1n;
    // 75 frame intervals pass in one qtest command, far faster than real time: the render
    // thread renders some of them, always the newest one next, and skips the rest
    await rig.clockStep(1_510_000_000n);
    const s = await frameState(rig);
    expect({ ...s, produced: 0n, seq: 0 }).toEqual({ number: 75n, ts: 1_500_000_000n, seq: 0, produced: 0n, clock: 1_510_000_000n });
    expect(BigInt(s.seq)).toBe(2n * s.produced);
    expect(s.produced).toBeGreaterThanOrEqual(p0 + 1n);
    expect(s.produced).toBeLessThanOrEqual(p0 + 75n);
    const bytes = 1920 * 3 * 1080;
    const all = await rig.qt.b64read(rig.fb, bytes);
    expect(firstDiff(all, expectedFbBytes(75n, rig.geo, 0, bytes))).toBe('equal');
  });
});

describe('frame numbers beyond 65536 (16×16, 1000 fps)', () => {
  it('encodes n mod 65536 and counts every frame', async () => {
    await using rig = await startRig({ props: { width: 16, height: 16, fps: 1000, 'mouse-rate-hz': 0 } });
    const n = 70_001n; // n >> 8 = 273 -> B uses 17
    const p0 = 1n;
    await rig.clockSet(frameTimestamp(n, 1000));
    const s = await frameState(rig);
    expect(s.number).toBe(n);
    // one clock_set over 70 001 frame intervals: the frames that found the render thread busy
    // were skipped (SPEC §4.1); FRAMES_PRODUCED counts the rendered ones
    expect(s.produced).toBeGreaterThanOrEqual(p0 + 1n);
    expect(s.produced).toBeLessThanOrEqual(p0 + n);
    expect(BigInt(s.seq)).toBe(2n * s.produced);
    const buf = await rig.qt.read(rig.fb, 16 * 48);
    expect(firstDiff(buf, expectedFbBytes(n, rig.geo, 0, 16 * 48))).toBe('equal');
    expect(decodeFrameNumber(5, 9, buf[9 * 48 + 15]!, buf[9 * 48 + 16]!, buf[9 * 48 + 17]!)).toBe(Number(n % 65536n));
    // the BAR is 4 KiB; bytes past FB_BYTES (768) read 0
    expect((await rig.qt.read(rig.fb + 768, 4096 - 768)).every((b) => b === 0)).toBe(true);
  });
});

describe('fb-mode=mmio', () => {
  const props: Partial<DeviceProps> = { width: 320, height: 200, stride: 1024, fps: 30, 'fb-mode': 'mmio', 'mouse-rate-hz': 0 };
  let rig: HilboxRig;
  beforeAll(async () => {
    rig = await startRig({ props });
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('gives the same pixels through every access size', async () => {
    const { qt } = rig;
    for (const n of [0n, 1n, 29n, 30n, 257n]) {
      await qt.clockSet(frameTimestamp(n, 30));
      expect(await rig.rd64('FRAME_NUMBER')).toBe(n);
      expect((await rig.rd32('FRAME_SEQ')) % 2).toBe(0);
      expect(await checkRandomPixels(rig, n, 150, 7 + Number(n))).toEqual([]);
      const y = Number(n % 200n);
      const off = y * 1024;
      const want = Buffer.from(expectedFbBytes(n, rig.geo, off, 1024));
      expect(firstDiff(await qt.read(off + rig.fb, 1024), want, off)).toBe('equal');
      const sizes = [2, 4, 8] as const;
      const lines: string[] = [];
      const expectVals: bigint[] = [];
      for (let i = 0; i + 8 <= 1024; i += 8) {
        const size = sizes[(i / 8) % 3]!;
        lines.push(qcmd.read(size, rig.fb + off + i));
        expectVals.push(size === 2 ? BigInt(want.readUInt16LE(i)) : size === 4 ? BigInt(want.readUInt32LE(i)) : want.readBigUInt64LE(i));
      }
      expect((await qt.batch(lines)).map((v) => BigInt(v))).toEqual(expectVals);
    }
  });

  it('the whole BAR matches in one b64read', async () => {
    const n = await rig.rd64('FRAME_NUMBER');
    const size = fbBarSize({ width: 320, height: 200, stride: 1024 });
    expect(firstDiff(await rig.qt.b64read(rig.fb, size), expectedFbBytes(n, rig.geo, 0, size))).toBe('equal');
  });

  it('ignores and counts writes', async () => {
    const { qt } = rig;
    const n = await rig.rd64('FRAME_NUMBER');
    for (const size of [1, 2, 4, 8] as const) await qt.writeN(size, rig.fb + 1024 * 3 + 8 * size, 0);
    expect(await rig.rd64('FB_WRITE_ATTEMPTS')).toBe(4n);
    expect(await rig.qomU64('fb-write-attempts')).toBe(4n);
    expect(firstDiff(await qt.read(rig.fb + 1024 * 3, 64), expectedFbBytes(n, rig.geo, 1024 * 3, 64))).toBe('equal');
  });
});

describe('fb-mode=mmio with mmio-latency-ns', () => {
  it('reads the pixel function; qtest accesses are not delayed (a vCPU is: lock.test.ts)', async () => {
    await using rig = await startRig({ props: { width: 64, height: 64, 'fb-mode': 'mmio', 'mmio-latency-ns': 100_000, 'mouse-rate-hz': 0 } });
    expect(await rig.rd32('MMIO_LATENCY_NS')).toBe(100_000);
    const lines = Array.from({ length: 500 }, (_, i) => qcmd.read(4, rig.fb + 4 * i));
    const vals = await rig.qt.batch(lines);
    const want = Buffer.from(expectedFbBytes(0n, rig.geo, 0, 2000));
    expect(vals.map(Number)).toEqual(Array.from({ length: 500 }, (_, i) => want.readUInt32LE(4 * i)));
  });
});
