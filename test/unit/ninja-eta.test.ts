/** The QEMU build's ETA: by the measured progress curve of a cold build, else a straight line. */
import { describe, expect, it } from 'vitest';
// @ts-expect-error -- a zx script library without type declarations
import { QEMU_COLD_CURVE, secondsLeft, timeShare } from '../../scripts/lib/ninja-eta.mjs';

describe('secondsLeft', () => {
  it("reads a cold build's early, quick steps as the small share of the time they are", () => {
    // [900/1250] after 82 s of a cold build that took 180 s: a straight line says 32 s are left.
    expect(Math.round((82 / 900) * 350)).toBe(32);
    const left = secondsLeft(900, 1250, 82);
    expect(left).toBeGreaterThan(85);
    expect(left).toBeLessThan(110);
  });

  it('is a straight line for a build of another size (an incremental one)', () => {
    expect(secondsLeft(10, 40, 5)).toBe(15);
  });

  it('says nothing before 2 % of the steps, 0 at the end, and the curve rises from 0 to 1', () => {
    expect(secondsLeft(0, 1250, 0)).toBeUndefined();
    expect(secondsLeft(1, 1250, 0.5)).toBeUndefined();
    expect(secondsLeft(1250, 1250, 180)).toBe(0);
    const pts = (QEMU_COLD_CURVE as { points: [number, number][] }).points;
    for (let i = 1; i < pts.length; i++) {
      expect(pts[i]![0]).toBeGreaterThan(pts[i - 1]![0]);
      expect(pts[i]![1]).toBeGreaterThan(pts[i - 1]![1]);
    }
    expect(timeShare(QEMU_COLD_CURVE, 0)).toBe(0);
    expect(timeShare(QEMU_COLD_CURVE, 1)).toBe(1);
  });
});
