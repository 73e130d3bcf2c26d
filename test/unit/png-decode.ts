/** Test helper: a minimal PNG reader (8-bit RGB, non-interlaced) to check the encoder's output. */
import { inflateSync } from 'node:zlib';
import { crc32 } from '../../orchestrator/src/report/png.ts';

export interface DecodedPng {
  width: number;
  height: number;
  data: Uint8Array;
  chunks: string[];
}

export function decodePng(png: Uint8Array): DecodedPng {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  sig.forEach((b, i) => {
    if (png[i] !== b) throw new Error('bad signature');
  });
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let o = 8;
  let width = 0;
  let height = 0;
  const idat: Uint8Array[] = [];
  const chunks: string[] = [];
  while (o < png.length) {
    const len = v.getUint32(o);
    const type = String.fromCharCode(...png.subarray(o + 4, o + 8));
    const body = png.subarray(o + 8, o + 8 + len);
    const crc = v.getUint32(o + 8 + len);
    if (crc !== crc32(png.subarray(o + 4, o + 8 + len))) throw new Error(`bad CRC in ${type}`);
    chunks.push(type);
    if (type === 'IHDR') {
      const h = new DataView(body.buffer, body.byteOffset, body.byteLength);
      width = h.getUint32(0);
      height = h.getUint32(4);
      if (body[8] !== 8 || body[9] !== 2 || body[12] !== 0) throw new Error('not 8-bit RGB non-interlaced');
    } else if (type === 'IDAT') idat.push(body);
    o += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const rowBytes = width * 3;
  const data = new Uint8Array(rowBytes * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (rowBytes + 1)];
    for (let i = 0; i < rowBytes; i++) {
      const x = raw[y * (rowBytes + 1) + 1 + i] ?? 0;
      const a = i >= 3 ? (data[y * rowBytes + i - 3] ?? 0) : 0;
      const b = y > 0 ? (data[(y - 1) * rowBytes + i] ?? 0) : 0;
      const c = y > 0 && i >= 3 ? (data[(y - 1) * rowBytes + i - 3] ?? 0) : 0;
      let val: number;
      switch (f) {
        case 0: val = x; break;
        case 1: val = x + a; break;
        case 2: val = x + b; break;
        case 3: val = x + ((a + b) >> 1); break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          val = x + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default: throw new Error(`filter ${f}`);
      }
      data[y * rowBytes + i] = val & 0xff;
    }
  }
  return { width, height, data, chunks };
}
