/**
 * Frame verification on the host: render the SPEC §4.2 picture, compare a frame buffer a guest
 * read against it, and compose a side-by-side PNG (guest | spec | diff). One job: frame pixels.
 * The pixel function itself comes from the device contract (device/spec.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { decodeFrameNumber, pixel, type FbGeometry } from '../device/spec.ts';
import { encodePng, type RgbImage } from './png.ts';
import { blit, createImage, downscale, drawText, setPixel, TEXT_HEIGHT, textWidth, type Rgb } from './image.ts';

export type { FbGeometry };

/** Frame numbers modulo 65536 are all a picture can show (SPEC §4.2). */
export const FRAME_MODULUS = 65536;

function mod16(n: number | bigint): number {
  return typeof n === 'bigint' ? Number(n & 0xffffn) : ((n % FRAME_MODULUS) + FRAME_MODULUS) % FRAME_MODULUS;
}

/** Frame `n` as packed RGB24 (stride = 3 × width). */
export function renderSpecFrame(n: number | bigint, width: number, height: number): RgbImage {
  const img = createImage(width, height);
  const nn = mod16(n);
  let o = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(nn, x, y);
      img.data[o++] = r;
      img.data[o++] = g;
      img.data[o++] = b;
    }
  }
  return img;
}

function checkBuffer(buf: Uint8Array, geo: FbGeometry): void {
  if (geo.stride < 3 * geo.width) throw new RangeError(`stride ${geo.stride} < 3 × width ${geo.width}`);
  const need = geo.height > 0 ? geo.stride * (geo.height - 1) + 3 * geo.width : 0;
  if (buf.length < need) throw new RangeError(`frame buffer has ${buf.length} bytes; ${geo.width}x${geo.height} with stride ${geo.stride} needs ${need}`);
}

/** A guest buffer (rows `stride` bytes apart) as packed RGB24. */
export function unpackFrame(buf: Uint8Array, geo: FbGeometry): RgbImage {
  checkBuffer(buf, geo);
  const rowBytes = 3 * geo.width;
  const data = new Uint8Array(rowBytes * geo.height);
  for (let y = 0; y < geo.height; y++) data.set(buf.subarray(y * geo.stride, y * geo.stride + rowBytes), y * rowBytes);
  return { width: geo.width, height: geo.height, data };
}

export interface PixelMismatch {
  x: number;
  y: number;
  got: [number, number, number];
  expected: [number, number, number];
  /** Frame number (mod 65536) this pixel decodes to, if it is a pixel-function value at all. */
  decoded?: number;
}

/** A run of consecutive decodable pixels (memory order) that show the same frame. */
export interface FrameRun {
  frame: number;
  /** Index (y × width + x) of the first pixel. */
  start: number;
  pixels: number;
}

export interface FrameComparison {
  width: number;
  height: number;
  pixels: number;
  /** The frame compared against (mod 65536): the one given, else the most common decoded one. */
  expectedFrame: number;
  /** Pixels that differ from frame `expectedFrame`. */
  mismatches: number;
  firstMismatches: PixelMismatch[];
  /** Decoded frame numbers (mod 65536) with their pixel counts, most common first. */
  frames: { frame: number; pixels: number }[];
  /** Pixels that are not a value of the pixel function at their position (corruption). */
  undecodable: number;
  /** Runs shorter than `minRun`: isolated pixels of another frame (corruption, not tearing). */
  strayPixels: number;
  /** Runs of at least `minRun` pixels, memory order (at most 64 listed). */
  runs: FrameRun[];
  /** True when two or more different frames each fill a run of at least `minRun` pixels. */
  torn: boolean;
  /** Non-zero bytes in line padding (stride > 3 × width), which SPEC §4.2 says read as 0. */
  paddingNonZero: number;
  /** No mismatches, no tearing, clean padding. */
  ok: boolean;
}

export interface CompareOptions {
  /** Frame the buffer should hold (e.g. FRAME_NUMBER read with the copy). Default: majority. */
  expectedFrame?: number | bigint;
  /** How many mismatches to list. Default 10. */
  maxListed?: number;
  /** Shortest run of one frame that counts as a real part of a frame (tearing). Default 8. */
  minRun?: number;
}

/** Decodes every pixel; -1 marks an undecodable one. */
function decodeAll(buf: Uint8Array, geo: FbGeometry): Int32Array {
  const out = new Int32Array(geo.width * geo.height);
  let i = 0;
  for (let y = 0; y < geo.height; y++) {
    let o = y * geo.stride;
    for (let x = 0; x < geo.width; x++, o += 3) {
      out[i++] = decodeFrameNumber(x, y, buf[o] ?? 0, buf[o + 1] ?? 0, buf[o + 2] ?? 0) ?? -1;
    }
  }
  return out;
}

export function compareFrame(buf: Uint8Array, geo: FbGeometry, opts: CompareOptions = {}): FrameComparison {
  checkBuffer(buf, geo);
  const maxListed = opts.maxListed ?? 10;
  const minRun = Math.max(1, opts.minRun ?? 8);
  const decoded = decodeAll(buf, geo);

  const counts = new Map<number, number>();
  let undecodable = 0;
  for (const f of decoded) {
    if (f < 0) undecodable++;
    else counts.set(f, (counts.get(f) ?? 0) + 1);
  }
  const frames = [...counts].map(([frame, pixels]) => ({ frame, pixels })).sort((a, b) => b.pixels - a.pixels || a.frame - b.frame);
  const expectedFrame = opts.expectedFrame !== undefined ? mod16(opts.expectedFrame) : (frames[0]?.frame ?? 0);

  // Runs of one frame in memory order; undecodable pixels neither break nor extend a run.
  const allRuns: FrameRun[] = [];
  let cur: FrameRun | undefined;
  for (let i = 0; i < decoded.length; i++) {
    const f = decoded[i] ?? -1;
    if (f < 0) continue;
    if (cur && cur.frame === f) cur.pixels++;
    else {
      cur = { frame: f, start: i, pixels: 1 };
      allRuns.push(cur);
    }
  }
  const long = allRuns.filter((r) => r.pixels >= minRun);
  const strayPixels = allRuns.filter((r) => r.pixels < minRun).reduce((a, r) => a + r.pixels, 0);
  const torn = new Set(long.map((r) => r.frame)).size > 1;

  let mismatches = 0;
  const firstMismatches: PixelMismatch[] = [];
  for (let y = 0, i = 0; y < geo.height; y++) {
    for (let x = 0; x < geo.width; x++, i++) {
      const o = y * geo.stride + 3 * x;
      const exp = pixel(expectedFrame, x, y);
      const got: [number, number, number] = [buf[o] ?? 0, buf[o + 1] ?? 0, buf[o + 2] ?? 0];
      if (got[0] === exp[0] && got[1] === exp[1] && got[2] === exp[2]) continue;
      mismatches++;
      if (firstMismatches.length < maxListed) {
        const d = decoded[i] ?? -1;
        const m: PixelMismatch = { x, y, got, expected: [exp[0], exp[1], exp[2]] };
        if (d >= 0) m.decoded = d;
        firstMismatches.push(m);
      }
    }
  }

  let paddingNonZero = 0;
  for (let y = 0; y < geo.height; y++) {
    const end = Math.min(buf.length, (y + 1) * geo.stride);
    for (let o = y * geo.stride + 3 * geo.width; o < end; o++) if (buf[o] !== 0) paddingNonZero++;
  }

  return {
    width: geo.width,
    height: geo.height,
    pixels: geo.width * geo.height,
    expectedFrame,
    mismatches,
    firstMismatches,
    frames,
    undecodable,
    strayPixels,
    runs: long.slice(0, 64),
    torn,
    paddingNonZero,
    ok: mismatches === 0 && !torn && paddingNonZero === 0,
  };
}

/** One sentence for a case reason. */
export function describeComparison(c: FrameComparison): string {
  if (c.ok) return `frame ${c.expectedFrame} matches the spec (${c.pixels} pixels)`;
  const parts: string[] = [];
  if (c.torn) parts.push(`torn: frames ${[...new Set(c.runs.map((r) => r.frame))].join(', ')} in one copy`);
  if (c.mismatches > 0) {
    const m = c.firstMismatches[0];
    const first = m ? `; first at (${m.x},${m.y}) got ${m.got.join('/')} expected ${m.expected.join('/')}` : '';
    parts.push(`${c.mismatches} of ${c.pixels} pixels differ from frame ${c.expectedFrame}${first}`);
  }
  if (c.undecodable > 0) parts.push(`${c.undecodable} pixels are not pixel-function values`);
  if (c.paddingNonZero > 0) parts.push(`${c.paddingNonZero} padding bytes are not 0`);
  return parts.join('; ');
}

// ---------------------------------------------------------------------------------------------
// Side-by-side picture

export interface ComposeOptions {
  /** Largest width of one panel; larger frames are downscaled by an integer factor. Default 960. */
  maxPanelWidth?: number;
  /** Draw a caption bar above the panels. Default true. */
  labels?: boolean;
}

const BG: Rgb = [32, 32, 32];
const MISMATCH: Rgb = [255, 0, 0];
const GAP = 8;

/**
 * guest | spec frame `cmp.expectedFrame` | diff (matching pixels as dim grey, differing ones red;
 * a downscaled block with any differing pixel stays red, so one flipped pixel remains visible).
 */
export function composeComparison(buf: Uint8Array, geo: FbGeometry, cmp: FrameComparison, opts: ComposeOptions = {}): RgbImage {
  const guest = unpackFrame(buf, geo);
  const spec = renderSpecFrame(cmp.expectedFrame, geo.width, geo.height);
  const mask = new Uint8Array(geo.width * geo.height);
  const diff = createImage(geo.width, geo.height);
  for (let i = 0; i < mask.length; i++) {
    const o = 3 * i;
    const same = guest.data[o] === spec.data[o] && guest.data[o + 1] === spec.data[o + 1] && guest.data[o + 2] === spec.data[o + 2];
    if (!same) mask[i] = 1;
    const luma = ((guest.data[o] ?? 0) * 77 + (guest.data[o + 1] ?? 0) * 150 + (guest.data[o + 2] ?? 0) * 29) >> 8;
    const c: Rgb = same ? [luma >> 2, luma >> 2, luma >> 2] : MISMATCH;
    diff.data[o] = c[0];
    diff.data[o + 1] = c[1];
    diff.data[o + 2] = c[2];
  }
  const maxW = Math.max(1, opts.maxPanelWidth ?? 960);
  const factor = Math.max(1, Math.ceil(geo.width / maxW));
  const panels = [downscale(guest, factor), downscale(spec, factor), downscale(diff, factor, { mask, color: MISMATCH })];
  const pw = panels[0]?.width ?? 1;
  const ph = panels[0]?.height ?? 1;
  const labels = opts.labels ?? true;
  const textScale = pw >= 200 ? 2 : 1;
  const panelY = labels ? GAP + TEXT_HEIGHT * textScale + GAP : GAP;
  const out = createImage(3 * pw + 4 * GAP, panelY + ph + GAP, BG);
  const captions = [
    'guest',
    `spec frame ${cmp.expectedFrame}`,
    cmp.mismatches === 0 ? 'diff: none' : `diff: ${cmp.mismatches} px${cmp.torn ? ' torn' : ''}`,
  ];
  panels.forEach((p, i) => {
    const x = GAP + i * (pw + GAP);
    if (labels) {
      let cap = captions[i] ?? '';
      while (cap.length > 1 && textWidth(cap, textScale) > pw) cap = cap.slice(0, -1);
      drawText(out, cap, x, GAP, i === 2 && cmp.mismatches > 0 ? MISMATCH : [230, 230, 230], textScale);
    }
    blit(out, p, x, panelY);
  });
  return out;
}

/** Compares, composes and writes the PNG; returns the comparison. */
export function writeComparisonPng(path: string, buf: Uint8Array, geo: FbGeometry, opts: CompareOptions & ComposeOptions = {}): FrameComparison {
  const cmp = compareFrame(buf, geo, opts);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, encodePng(composeComparison(buf, geo, cmp, opts)));
  return cmp;
}
