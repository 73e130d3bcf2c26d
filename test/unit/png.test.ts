import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { encodePng } from '../../orchestrator/src/report/png.ts';
import { createImage, drawText, setPixel } from '../../orchestrator/src/report/image.ts';
import { renderSpecFrame } from '../../orchestrator/src/report/frame.ts';

function hasPython(): boolean {
  try {
    execFileSync('python3', ['-c', 'import zlib'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('PNG encoding', () => {
  it('writes signature, IHDR, IDAT, IEND and the exact pixels', () => {
    const img = createImage(7, 5, [10, 20, 30]);
    setPixel(img, 0, 0, [255, 0, 0]);
    setPixel(img, 6, 4, [0, 0, 255]);
    setPixel(img, 3, 2, [1, 2, 3]);
    const png = encodePng(img);
    expect(Buffer.from(png.subarray(0, 8)).toString('hex')).toBe('89504e470d0a1a0a');
    const d = decode(png);
    expect([d.width, d.height, d.channels, d.depth]).toEqual([7, 5, 3, 8]);
    expect(Buffer.from(d.data).equals(Buffer.from(img.data))).toBe(true);
  });

  it('round-trips a spec frame with text drawn on it', () => {
    const img = renderSpecFrame(1234, 300, 70);
    drawText(img, 'HILBOX 0123', 2, 2, [255, 255, 255]);
    const d = decode(encodePng(img));
    expect(Buffer.from(d.data).equals(Buffer.from(img.data))).toBe(true);
  });

  it('rejects inconsistent sizes', () => {
    expect(() => encodePng({ width: 2, height: 2, data: new Uint8Array(5) })).toThrow(/needs 12/);
    expect(() => encodePng({ width: 0, height: 2, data: new Uint8Array(0) })).toThrow(RangeError);
  });

  it.runIf(hasPython())('an independent decoder (python zlib) agrees', () => {
    const img = renderSpecFrame(77, 33, 9);
    const dir = mkdtempSync(join(tmpdir(), 'hilbox-png-'));
    const file = join(dir, 'f.png');
    writeFileSync(file, encodePng(img));
    const script = `
import sys, zlib, struct
b = open(sys.argv[1], 'rb').read()
assert b[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
o, idat = 8, b''
while o < len(b):
    n, t = struct.unpack('>I4s', b[o:o+8]); body = b[o+8:o+8+n]
    assert zlib.crc32(b[o+4:o+8+n]) & 0xffffffff == struct.unpack('>I', b[o+8+n:o+12+n])[0]
    if t == b'IHDR': w, h = struct.unpack('>II', body[:8])
    if t == b'IDAT': idat += body
    o += 12 + n
raw = zlib.decompress(idat); rb = w * 3; out = bytearray()
for y in range(h):
    f = raw[y*(rb+1)]; row = bytearray(raw[y*(rb+1)+1:(y+1)*(rb+1)])
    prev = out[(y-1)*rb:y*rb] if y else bytearray(rb)
    for i in range(rb):
        a = row[i-3] if i >= 3 else 0
        b_, c_ = prev[i], (prev[i-3] if i >= 3 else 0)
        if f == 1: row[i] = (row[i] + a) & 255
        elif f == 2: row[i] = (row[i] + b_) & 255
        elif f == 3: row[i] = (row[i] + (a + b_) // 2) & 255
        elif f == 4:
            p = a + b_ - c_; pa, pb, pc = abs(p - a), abs(p - b_), abs(p - c_)
            row[i] = (row[i] + (a if pa <= pb and pa <= pc else b_ if pb <= pc else c_)) & 255
        else: assert f == 0
    out += row
print(w, h, out.hex())
`;
    const [w, h, hex] = execFileSync('python3', ['-c', script, file], { encoding: 'utf8' }).trim().split(' ');
    expect([Number(w), Number(h)]).toEqual([33, 9]);
    expect(hex).toBe(Buffer.from(img.data).toString('hex'));
  });
});
