/**
 * PNG bytes from 8-bit RGB pixels. One job: RgbImage → PNG. The encoding is fast-png's (a
 * maintained, dependency-light encoder); this module fixes the image type hilbox draws into and
 * checks sizes before encoding, so a wrong buffer is a clear error here rather than a bad file.
 */
import { encode } from 'fast-png';

/** Packed RGB24: `data.length === width * height * 3`, rows top to bottom. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export function encodePng(img: RgbImage): Uint8Array {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width < 1 || img.height < 1) {
    throw new RangeError(`PNG size ${img.width}x${img.height}: width and height must be positive integers`);
  }
  const need = img.width * img.height * 3;
  if (img.data.length !== need) throw new RangeError(`PNG ${img.width}x${img.height} RGB needs ${need} bytes, got ${img.data.length}`);
  return encode({ width: img.width, height: img.height, data: img.data, channels: 3, depth: 8 });
}
