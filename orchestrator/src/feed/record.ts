/**
 * SPEC §6 host feed records. One job: encode (and, for tests and diagnostics, decode) the
 * 16-byte little-endian records the host writes to the hilbox-pci feed chardev.
 */

export const FEED_MAGIC = 0x56454248; // bytes "HBEV"
export const FEED_RECORD_SIZE = 16;
export const FLAG_END_OF_REPORT = 0x01;

export interface MouseEvent {
  dx: number;
  dy: number;
  wheel?: number;
  /** bit0 left, bit1 right, bit2 middle, bit3 side, bit4 extra. */
  buttons?: number;
  /** bit0 END_OF_REPORT; the feeder sets it on the last event of each bundle. */
  flags?: number;
}

function checkInt(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`feed record ${name}=${v}: expected ${min}..${max}`);
  return v;
}

/** Writes one record at `offset` of `buf`. */
export function encodeRecordInto(buf: Buffer, offset: number, ev: MouseEvent): void {
  buf.writeUInt32LE(FEED_MAGIC, offset);
  buf.writeInt16LE(checkInt('dx', ev.dx, -32768, 32767), offset + 4);
  buf.writeInt16LE(checkInt('dy', ev.dy, -32768, 32767), offset + 6);
  buf.writeInt8(checkInt('wheel', ev.wheel ?? 0, -128, 127), offset + 8);
  buf.writeUInt8(checkInt('buttons', ev.buttons ?? 0, 0, 0x1f), offset + 9);
  buf.writeUInt8(checkInt('flags', ev.flags ?? 0, 0, 0xff), offset + 10);
  buf.writeUInt8(0, offset + 11);
  buf.writeUInt32LE(0, offset + 12);
}

export function encodeRecord(ev: MouseEvent): Buffer {
  const b = Buffer.alloc(FEED_RECORD_SIZE);
  encodeRecordInto(b, 0, ev);
  return b;
}

/** Encodes a bundle (one report): END_OF_REPORT is set on the last record only. */
export function encodeBundle(events: readonly MouseEvent[]): Buffer {
  const b = Buffer.alloc(events.length * FEED_RECORD_SIZE);
  events.forEach((ev, i) => {
    const eor = i === events.length - 1 ? FLAG_END_OF_REPORT : 0;
    encodeRecordInto(b, i * FEED_RECORD_SIZE, { ...ev, flags: ((ev.flags ?? 0) & ~FLAG_END_OF_REPORT) | eor });
  });
  return b;
}

export function decodeRecord(buf: Buffer, offset = 0): MouseEvent & { magic: number } {
  return {
    magic: buf.readUInt32LE(offset),
    dx: buf.readInt16LE(offset + 4),
    dy: buf.readInt16LE(offset + 6),
    wheel: buf.readInt8(offset + 8),
    buttons: buf.readUInt8(offset + 9),
    flags: buf.readUInt8(offset + 10),
  };
}

/** Deterministic motion pattern (same shape as the device generator, SPEC §5.1). */
export function patternEvent(k: number): MouseEvent {
  return { dx: (k % 7) - 3, dy: (k % 5) - 2, wheel: k % 64 === 63 ? 1 : 0, buttons: (k >> 10) & 1 };
}
