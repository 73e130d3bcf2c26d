/** Pure checks of orchestrator/src/device/spec.ts against worked examples from SPEC.md. */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PROPS,
  EVENT_RECORD_SIZE,
  decodeFrameNumber,
  encodeEventRecord,
  encodeFeedRecord,
  expectedCaps,
  expectedFbBytes,
  fbBarSize,
  frameNumberAt,
  frameTimestamp,
  generatorPacket,
  generatorPacketsAfter,
  generatorTimestamp,
  parseEventHeadWords,
  parseEventRecord,
  pixel,
  validateProps,
} from '../../orchestrator/src/device/spec.ts';

describe('spec.ts', () => {
  it('pixel function and its inverse', () => {
    expect(pixel(0, 0, 0)).toEqual([0, 0, 0]);
    expect(pixel(1, 2, 3)).toEqual([3, 4, 2 ^ 3]);
    expect(pixel(0x1234, 0x10, 0x20)).toEqual([(0x10 + 0x34) & 255, (0x20 + 0x34) & 255, 0x10 ^ 0x20 ^ 0x12]);
    expect(pixel(2n ** 40n + 5n, 300, 700)).toEqual([(300 + 5) & 255, (700 + 5) & 255, (300 ^ 700) & 255]);
    for (const n of [0, 1, 255, 256, 65535, 65536, 70001, 123456789]) {
      for (const [x, y] of [[0, 0], [1919, 1079], [257, 3], [8191, 8191]] as const) {
        expect(decodeFrameNumber(x, y, ...pixel(n, x, y))).toBe(n % 65536);
      }
    }
    const [r, g, b] = pixel(10, 5, 5);
    expect(decodeFrameNumber(5, 5, r, (g + 1) & 255, b)).toBeUndefined();
  });

  it('frame timing: t_n = ceil(n·1e9/fps), n = floor(t·fps/1e9)', () => {
    expect(frameTimestamp(1, 60)).toBe(16_666_667n);
    expect(frameTimestamp(3, 60)).toBe(50_000_000n);
    expect(frameNumberAt(16_666_666n, 60)).toBe(0n);
    expect(frameNumberAt(16_666_667n, 60)).toBe(1n);
    for (const fps of [1, 7, 50, 60, 144, 1000]) {
      for (const n of [0n, 1n, 2n, 999n, 123_457n]) {
        const t = frameTimestamp(n, fps);
        expect(frameNumberAt(t, fps)).toBe(n);
        if (t > 0n) expect(frameNumberAt(t - 1n, fps)).toBe(n - 1n);
      }
    }
  });

  it('framebuffer layout with padding and tail', () => {
    const geo = { width: 2, height: 2, stride: 8 };
    expect([...expectedFbBytes(1, geo, 0, 20)]).toEqual([1, 1, 1, 2, 1, 0, 0, 0, 1, 2, 0, 2, 2, 1, 0, 0, 0, 0, 0, 0].map((v, i) => {
      // recompute from pixel() to keep the table honest
      const off = i;
      if (off >= 16) return 0;
      const y = Math.floor(off / 8), col = off % 8;
      if (col >= 6) return 0;
      return pixel(1, Math.floor(col / 3), y)[col % 3]!;
    }));
    expect(fbBarSize(DEFAULT_PROPS)).toBe(8 << 20);
    expect(fbBarSize({ width: 16, height: 16, stride: 0 })).toBe(4096);
    expect(fbBarSize({ width: 16, height: 4096, stride: 65536 })).toBe(256 << 20);
  });

  it('generator arithmetic (SPEC §5.1)', () => {
    expect(generatorPacket(0)).toEqual({ dx: -3, dy: -2, wheel: 0, buttons: 0, source: 0, flags: 1 });
    expect(generatorPacket(63, 4)).toEqual({ dx: -3, dy: 1, wheel: 1, buttons: 0, source: 0, flags: 1 });
    expect(generatorPacket(1024, 4)).toMatchObject({ buttons: 1, flags: 0 });
    expect(generatorTimestamp(100n, 0, 1000)).toBe(1_000_100n);
    expect(generatorTimestamp(0n, 0, 7000)).toBe(142_858n);
    expect(generatorPacketsAfter(1_000_000_000n, 8000, 4)).toBe(8000n);
    expect(generatorPacketsAfter(499_999n, 8000, 4)).toBe(0n);
    expect(generatorPacketsAfter(500_000n, 8000, 4)).toBe(4n);
  });

  it('record encodings round-trip', () => {
    const e = { seq: 2n ** 40n + 3n, timestamp: 123_456_789_012n, dx: -5, dy: 32767, wheel: -1, buttons: 0x1f, source: 2, flags: 1 };
    const buf = encodeEventRecord(e);
    expect(buf.length).toBe(EVENT_RECORD_SIZE);
    expect(parseEventRecord(buf)).toEqual(e);
    const v = new DataView(buf.buffer);
    expect(parseEventHeadWords([0, 1, 2, 3, 4, 5].map((i) => v.getUint32(4 * i, true)))).toEqual(e);
    const f = encodeFeedRecord({ dx: -2, dy: 3, wheel: -1, buttons: 5, flags: 1 });
    expect(Buffer.from(f).toString('hex')).toBe('48424556' + 'feff' + '0300' + 'ff' + '05' + '01' + '00' + '00000000');
  });

  it('property validation and CAPS', () => {
    expect(validateProps({})).toBeUndefined();
    expect(validateProps({ 'mouse-rate-hz': 100 })?.property).toBe('mouse-rate-hz');
    expect(validateProps({ width: 8192, height: 8192, stride: 65536 })?.property).toBe('stride');
    expect(expectedCaps({})).toBe(0x37);
    expect(expectedCaps({ 'fb-mode': 'mmio', chardev: 'x', msi: false, input: false, 'mouse-rate-hz': 0 })).toBe(0x10b);
  });
});
