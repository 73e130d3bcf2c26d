import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectedFbBytes, pixel } from '../../orchestrator/src/device/spec.ts';
import { compareFrame, composeComparison, describeComparison, renderSpecFrame, writeComparisonPng } from '../../orchestrator/src/report/frame.ts';
import { getPixel } from '../../orchestrator/src/report/image.ts';
import { decode } from 'fast-png';

/** A guest buffer holding frame n with line padding, as BAR2 would. */
function guestBuffer(n: number, width: number, height: number, stride: number): Uint8Array {
  return expectedFbBytes(n, { width, height, stride }, 0, stride * height);
}

describe('spec frame', () => {
  it('renders SPEC §4.2', () => {
    const img = renderSpecFrame(0x1234, 300, 20);
    expect(getPixel(img, 0, 0)).toEqual(pixel(0x1234, 0, 0));
    expect(getPixel(img, 299, 19)).toEqual([(299 + 0x34) & 255, (19 + 0x34) & 255, (299 ^ 19 ^ 0x12) & 255]);
  });
});

describe('frame compare', () => {
  const geo = { width: 64, height: 32, stride: 64 * 3 + 8 };

  it('accepts a clean frame', () => {
    const c = compareFrame(guestBuffer(500, geo.width, geo.height, geo.stride), geo, { expectedFrame: 500n });
    expect(c).toMatchObject({ ok: true, mismatches: 0, torn: false, expectedFrame: 500, undecodable: 0, paddingNonZero: 0 });
    expect(c.frames).toEqual([{ frame: 500, pixels: 64 * 32 }]);
    expect(describeComparison(c)).toContain('matches');
  });

  it('detects a single flipped pixel (not as tearing)', () => {
    const buf = guestBuffer(500, geo.width, geo.height, geo.stride);
    const o = 10 * geo.stride + 3 * 20;
    buf[o + 2] = (buf[o + 2] ?? 0) ^ 0x40; // B byte: decodes to another frame number
    const c = compareFrame(buf, geo);
    expect(c.ok).toBe(false);
    expect(c.torn).toBe(false);
    expect(c.mismatches).toBe(1);
    expect(c.expectedFrame).toBe(500);
    expect(c.strayPixels).toBe(1);
    expect(c.firstMismatches[0]).toMatchObject({ x: 20, y: 10, expected: pixel(500, 20, 10) });
    expect(c.firstMismatches[0]?.decoded).toBe(500 ^ 0x4000);

    const buf2 = guestBuffer(500, geo.width, geo.height, geo.stride);
    buf2[o] = (buf2[o] ?? 0) ^ 1; // R byte: no longer a pixel-function value
    const c2 = compareFrame(buf2, geo);
    expect([c2.mismatches, c2.undecodable, c2.torn]).toEqual([1, 1, false]);
    expect(describeComparison(c2)).toMatch(/1 of 2048 pixels differ from frame 500; first at \(20,10\)/);
  });

  it('detects a torn frame (top from frame n, bottom from n+1)', () => {
    const top = guestBuffer(700, geo.width, geo.height, geo.stride);
    const bottom = guestBuffer(701, geo.width, geo.height, geo.stride);
    const buf = new Uint8Array(top);
    const split = 12 * geo.stride + 3 * 5; // the frame changed mid-line
    buf.set(bottom.subarray(split), split);
    const c = compareFrame(buf, geo, { expectedFrame: 700 });
    expect(c.torn).toBe(true);
    expect(c.frames.map((f) => f.frame).sort()).toEqual([700, 701]);
    expect(c.mismatches).toBe(64 * 32 - (12 * 64 + 5));
    expect(c.runs.map((r) => [r.frame, r.start])).toEqual([
      [700, 0],
      [701, 12 * 64 + 5],
    ]);
    expect(describeComparison(c)).toContain('torn: frames 700, 701');
  });

  it('flags non-zero line padding', () => {
    const buf = guestBuffer(1, geo.width, geo.height, geo.stride);
    buf[geo.stride - 1] = 9;
    expect(compareFrame(buf, geo)).toMatchObject({ paddingNonZero: 1, mismatches: 0, ok: false });
  });

  it('rejects a short buffer', () => {
    expect(() => compareFrame(new Uint8Array(10), geo)).toThrow(/needs/);
  });
});

describe('side-by-side PNG', () => {
  it('shows guest | spec | diff, with the flipped pixel red even when downscaled', () => {
    const geo = { width: 1920, height: 40, stride: 1920 * 3 };
    const buf = guestBuffer(42, geo.width, geo.height, geo.stride);
    const o = 21 * geo.stride + 3 * 1001;
    buf[o + 1] = (buf[o + 1] ?? 0) ^ 0x80;
    const dir = mkdtempSync(join(tmpdir(), 'hilbox-frame-'));
    const file = join(dir, 'cmp.png');
    const c = writeComparisonPng(file, buf, geo, { maxPanelWidth: 960 });
    expect(c.mismatches).toBe(1);
    const png = decode(readFileSync(file)) as { width: number; height: number; data: Uint8Array };
    const panelW = 960;
    expect(png.width).toBe(3 * panelW + 4 * 8);
    const img = { width: png.width, height: png.height, data: png.data };
    const panelY = png.height - 8 - 20; // 40 lines / 2
    // Diff panel: pixel (1001, 21) → (500, 10) after halving.
    expect(getPixel(img, 8 + 2 * (panelW + 8) + 500, panelY + 10)).toEqual([255, 0, 0]);
    expect(getPixel(img, 8 + 2 * (panelW + 8) + 100, panelY + 10)).not.toEqual([255, 0, 0]);
    // Spec panel at full resolution equals the reference where the block is uniform enough: check averaging of a 2×2 block.
    const spec = renderSpecFrame(42, geo.width, geo.height);
    const avg = [0, 1, 2].map((k) => Math.round([0, 1].flatMap((dy) => [0, 1].map((dx) => getPixel(spec, 200 + dx, 6 + dy)[k] ?? 0)).reduce((a, b) => a + b) / 4));
    expect(getPixel(img, 8 + panelW + 8 + 100, panelY + 3)).toEqual(avg);
  });

  it('keeps full resolution for small frames', () => {
    const geo = { width: 32, height: 16, stride: 96 };
    const buf = guestBuffer(3, 32, 16, 96);
    const img = composeComparison(buf, geo, compareFrame(buf, geo), { labels: false });
    expect([img.width, img.height]).toEqual([3 * 32 + 32, 16 + 16]);
    expect(getPixel(img, 8 + 5, 8 + 7)).toEqual(pixel(3, 5, 7));
    expect(getPixel(img, 8 + 40 + 5, 8 + 7)).toEqual(pixel(3, 5, 7));
  });
});
