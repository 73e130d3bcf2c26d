/** Drawing on packed RGB24 images. One job: create, fill, blit, scale, draw text. */
import type { RgbImage } from './png.ts';
import { GLYPH_HEIGHT, GLYPH_WIDTH, glyph } from './font.ts';

export type Rgb = readonly [number, number, number];

export function createImage(width: number, height: number, fill: Rgb = [0, 0, 0]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  const img = { width, height, data };
  fillRect(img, 0, 0, width, height, fill);
  return img;
}

export function setPixel(img: RgbImage, x: number, y: number, c: Rgb): void {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  const o = (y * img.width + x) * 3;
  img.data[o] = c[0];
  img.data[o + 1] = c[1];
  img.data[o + 2] = c[2];
}

export function getPixel(img: RgbImage, x: number, y: number): [number, number, number] {
  const o = (y * img.width + x) * 3;
  return [img.data[o] ?? 0, img.data[o + 1] ?? 0, img.data[o + 2] ?? 0];
}

/** Fills [x, x+w) × [y, y+h), clipped to the image. */
export function fillRect(img: RgbImage, x: number, y: number, w: number, h: number, c: Rgb): void {
  const x0 = Math.max(0, Math.floor(x));
  const y0 = Math.max(0, Math.floor(y));
  const x1 = Math.min(img.width, Math.floor(x + w));
  const y1 = Math.min(img.height, Math.floor(y + h));
  for (let yy = y0; yy < y1; yy++) {
    for (let xx = x0; xx < x1; xx++) {
      const o = (yy * img.width + xx) * 3;
      img.data[o] = c[0];
      img.data[o + 1] = c[1];
      img.data[o + 2] = c[2];
    }
  }
}

/** Copies `src` onto `dst` with its top-left corner at (x, y), clipped. */
export function blit(dst: RgbImage, src: RgbImage, x: number, y: number): void {
  for (let sy = 0; sy < src.height; sy++) {
    const dy = y + sy;
    if (dy < 0 || dy >= dst.height) continue;
    const sx0 = Math.max(0, -x);
    const sx1 = Math.min(src.width, dst.width - x);
    if (sx1 <= sx0) continue;
    dst.data.set(src.data.subarray((sy * src.width + sx0) * 3, (sy * src.width + sx1) * 3), (dy * dst.width + x + sx0) * 3);
  }
}

/**
 * Box-filter downscale by an integer factor (partial blocks at the edges are averaged too).
 * With `marked`, a block holding any pixel whose mask byte is set becomes `marked.color`, so a
 * single marked pixel stays visible after scaling.
 */
export function downscale(img: RgbImage, factor: number, marked?: { mask: Uint8Array; color: Rgb }): RgbImage {
  if (!Number.isInteger(factor) || factor < 1) throw new RangeError(`scale factor ${factor}`);
  if (factor === 1) return img;
  const w = Math.ceil(img.width / factor);
  const h = Math.ceil(img.height / factor);
  const out = createImage(w, h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      let n = 0;
      let hit = false;
      for (let yy = y * factor; yy < Math.min(img.height, (y + 1) * factor); yy++) {
        for (let xx = x * factor; xx < Math.min(img.width, (x + 1) * factor); xx++) {
          const i = yy * img.width + xx;
          if (marked?.mask[i]) hit = true;
          r += img.data[3 * i] ?? 0;
          g += img.data[3 * i + 1] ?? 0;
          b += img.data[3 * i + 2] ?? 0;
          n++;
        }
      }
      setPixel(out, x, y, hit && marked ? marked.color : [Math.round(r / n), Math.round(g / n), Math.round(b / n)]);
    }
  }
  return out;
}

/** Width in pixels of `text` drawn at `scale`. */
export function textWidth(text: string, scale = 1): number {
  return text.length === 0 ? 0 : ([...text].length * (GLYPH_WIDTH + 1) - 1) * scale;
}

export const TEXT_HEIGHT = GLYPH_HEIGHT;

/** Draws `text` with the built-in 5×7 font, top-left at (x, y). */
export function drawText(img: RgbImage, text: string, x: number, y: number, c: Rgb, scale = 1): void {
  let cx = x;
  for (const ch of text) {
    const rows = glyph(ch);
    for (let gy = 0; gy < GLYPH_HEIGHT; gy++) {
      const bits = rows[gy] ?? 0;
      for (let gx = 0; gx < GLYPH_WIDTH; gx++) {
        if (bits & (1 << (GLYPH_WIDTH - 1 - gx))) fillRect(img, cx + gx * scale, y + gy * scale, scale, scale, c);
      }
    }
    cx += (GLYPH_WIDTH + 1) * scale;
  }
}
