/**
 * A small PNG encoder for 8-bit RGB images (colour type 2). One job: pixels → PNG bytes.
 * Rows are filtered with None, Sub or Up (whichever has the smallest sum of absolute values)
 * and deflated with node:zlib.
 */
import { deflateSync } from 'node:zlib';

/** Packed RGB24: `data.length === width * height * 3`, rows top to bottom. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

const CRC_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309 / PNG), optionally continuing from a previous value. */
export function crc32(bytes: Uint8Array, prev = 0): number {
  let c = (prev ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = (CRC_TABLE[(c ^ (bytes[i] ?? 0)) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function filterRows(img: RgbImage): Uint8Array {
  const rowBytes = img.width * 3;
  const out = new Uint8Array(img.height * (rowBytes + 1));
  const cand = [new Uint8Array(rowBytes), new Uint8Array(rowBytes), new Uint8Array(rowBytes)];
  for (let y = 0; y < img.height; y++) {
    const row = img.data.subarray(y * rowBytes, (y + 1) * rowBytes);
    const prev = y > 0 ? img.data.subarray((y - 1) * rowBytes, y * rowBytes) : undefined;
    const [none, sub, up] = cand as [Uint8Array, Uint8Array, Uint8Array];
    let sNone = 0;
    let sSub = 0;
    let sUp = 0;
    for (let i = 0; i < rowBytes; i++) {
      const cur = row[i] ?? 0;
      const a = i >= 3 ? (row[i - 3] ?? 0) : 0;
      const b = prev ? (prev[i] ?? 0) : 0;
      none[i] = cur;
      sub[i] = (cur - a) & 0xff;
      up[i] = (cur - b) & 0xff;
      // Sum of the bytes read as signed values: the usual "minimum sum of absolute differences".
      sNone += cur < 128 ? cur : 256 - cur;
      sSub += (sub[i] ?? 0) < 128 ? (sub[i] ?? 0) : 256 - (sub[i] ?? 0);
      sUp += (up[i] ?? 0) < 128 ? (up[i] ?? 0) : 256 - (up[i] ?? 0);
    }
    let type = 0;
    let best = none;
    if (sSub < sNone && sSub <= sUp) {
      type = 1;
      best = sub;
    } else if (sUp < sNone) {
      type = 2;
      best = up;
    }
    const base = y * (rowBytes + 1);
    out[base] = type;
    out.set(best, base + 1);
  }
  return out;
}

export function encodePng(img: RgbImage, level = 6): Uint8Array {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new RangeError(`PNG size ${width}x${height}`);
  if (data.length !== width * height * 3) throw new RangeError(`PNG data is ${data.length} bytes; ${width}x${height} RGB needs ${width * height * 3}`);
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering
  ihdr[12] = 0; // no interlace
  const idat = deflateSync(filterRows(img), { level });
  const parts = [PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
