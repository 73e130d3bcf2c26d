/**
 * The hilbox-pci device contract (qemu-device/SPEC.md, version 1.0) as code: PCI identity,
 * register offsets, property limits, the framebuffer pixel function, frame timing, the event
 * record layout, the generator's packet sequence and the host-feed record encoding.
 *
 * Pure module: no I/O, no Node-specific APIs except `Buffer`/`Uint8Array` views. Every other
 * part of hilbox (tests, orchestrator, host tools) imports these instead of re-deriving them.
 *
 * Conventions: 64-bit device quantities (frame numbers, timestamps, clocks, sequence numbers,
 * counters) are `bigint`; arguments accept `number | bigint`. Pixel coordinates and 8/16/32-bit
 * fields are `number`.
 */

/** SPEC §1 — PCI identity. */
export const PCI_ID = {
  vendorId: 0x1234,
  deviceId: 0x4842,
  revision: 0x01,
  /** 24-bit class code: base class 0x03 (display), subclass 0x80 (other), prog-if 0. */
  classCode: 0x038000,
  subsystemVendorId: 0x1234,
  subsystemId: 0x4842,
  /** Interrupt pin register value: 1 = INTA. */
  interruptPin: 1,
} as const;

/** SPEC §2 — BAR numbers and fixed sizes. */
export const BAR = {
  regs: 0,
  fb: 2,
  regsSize: 0x1000,
  /** Smallest BAR2 size. */
  fbMinSize: 0x1000,
} as const;

/** SPEC §3 — register offsets within BAR0. 64-bit registers: low word at the offset, high at +4. */
export const REG = {
  ID: 0x000,
  VERSION: 0x004,
  CAPS: 0x008,
  CONTROL: 0x00c,
  WIDTH: 0x010,
  HEIGHT: 0x014,
  STRIDE: 0x018,
  FORMAT: 0x01c,
  FPS: 0x020,
  FB_BYTES: 0x024,
  FB_MODE: 0x028,
  MMIO_LATENCY_NS: 0x02c,
  FRAME_SEQ: 0x030,
  FRAME_NUMBER: 0x038,
  FRAME_TIMESTAMP: 0x040,
  DEVICE_CLOCK: 0x048,
  FB_WRITE_ATTEMPTS: 0x050,
  FRAMES_PRODUCED: 0x058,
  EV_COUNT: 0x080,
  EV_FIFO_DEPTH: 0x084,
  EV_RATE_HZ: 0x088,
  EV_BUNDLE: 0x08c,
  EV_PRODUCED: 0x090,
  EV_DELIVERED: 0x098,
  EV_DROPPED: 0x0a0,
  FEED_ERRORS: 0x0a8,
  EV_HEAD: 0x0c0,
  EV_POP: 0x0d8,
  INT_STATUS: 0x100,
  INT_MASK: 0x104,
  INT_ACK: 0x108,
} as const;
export type RegName = keyof typeof REG;

/** Registers that are 64 bits wide (two words, low first). */
export const REG64: ReadonlySet<RegName> = new Set<RegName>([
  'FRAME_NUMBER', 'FRAME_TIMESTAMP', 'DEVICE_CLOCK', 'FB_WRITE_ATTEMPTS', 'FRAMES_PRODUCED',
  'EV_PRODUCED', 'EV_DELIVERED', 'EV_DROPPED',
]);

/** Number of 32-bit words of `EV_HEAD`. */
export const EV_HEAD_WORDS = 6;

/** `ID` register value; the bytes "HBOX" in memory. */
export const ID_MAGIC = 0x584f4248;
/** `VERSION` register value: major 1, minor 0. */
export const SPEC_VERSION = 0x00010000;
/** `FORMAT` value for RGB24. */
export const FORMAT_RGB24 = 1;

/** `CAPS` bits. */
export const CAPS = {
  FB: 1 << 0,
  MOUSE: 1 << 1,
  MSI: 1 << 2,
  FEED: 1 << 3,
  INPUT: 1 << 4,
  GEN: 1 << 5,
  FB_MMIO: 1 << 8,
} as const;

/** `CONTROL` bits. `RESET` is write-only and self-clearing. */
export const CONTROL = {
  EV_ENABLE: 1 << 0,
  RESET: 0x80000000,
} as const;

/** `INT_STATUS` / `INT_MASK` / `INT_ACK` bits. */
export const INT = {
  EV_READY: 1 << 0,
  EV_OVERFLOW: 1 << 1,
} as const;

/** `FB_MODE` register values. */
export const FB_MODE = { direct: 0, mmio: 1 } as const;
export type FbMode = keyof typeof FB_MODE;

/** Event record `source` values (SPEC §5). */
export const EV_SOURCE = { generator: 0, feed: 1, input: 2 } as const;
/** Event record / feed record `flags` bits. */
export const EV_FLAG_END_OF_REPORT = 1;
/** Event record `buttons` bits. */
export const BUTTON = { left: 1, right: 2, middle: 4, side: 8, extra: 16 } as const;

/** Size of an event record (SPEC §5). */
export const EVENT_RECORD_SIZE = 24;
/** Size of a host-feed record (SPEC §6). */
export const FEED_RECORD_SIZE = 16;
/** Host-feed record magic (bytes "HBEV"). */
export const FEED_MAGIC = 0x56454248;

/** QOM type name. */
export const DEVICE_TYPE = 'hilbox-pci';

/** SPEC §9 — configuration properties and their defaults. */
export interface DeviceProps {
  width: number;
  height: number;
  /** 0 means 3 × width. */
  stride: number;
  fps: number;
  'fb-mode': FbMode;
  'mmio-latency-ns': number;
  'fifo-depth': number;
  'mouse-rate-hz': number;
  'mouse-bundle': number;
  chardev?: string;
  input: boolean;
  msi: boolean;
}

export const DEFAULT_PROPS: Readonly<DeviceProps> = Object.freeze({
  width: 1920,
  height: 1080,
  stride: 0,
  fps: 50,
  'fb-mode': 'direct',
  'mmio-latency-ns': 0,
  'fifo-depth': 1024,
  'mouse-rate-hz': 1000,
  'mouse-bundle': 1,
  input: true,
  msi: true,
});

/** Simple numeric ranges of SPEC §9 (cross-property rules are in {@link crossPropertyProblems}). */
export const PROP_LIMITS = {
  width: { min: 16, max: 8192 },
  height: { min: 16, max: 8192 },
  stride: { min: 0, max: 65536 },
  fps: { min: 1, max: 1000 },
  'mmio-latency-ns': { min: 0, max: 100000 },
  'fifo-depth': { min: 1, max: 65536 },
  'mouse-rate-hz': { min: 0, max: 8000 },
  'mouse-bundle': { min: 1, max: 64 },
} as const;

/** SPEC §11 — the faults, in the order of the SPEC table (QOM property `fault`, run time). */
export const FAULTS = ['none', 'link-down', 'surprise-removal', 'irq-lost', 'spurious-irq', 'irq-storm', 'fifo-burst', 'mmio-spike', 'frame-stall', 'frame-stall-odd', 'bit-flip'] as const;
export type Fault = (typeof FAULTS)[number];

/** SPEC §11 — fault parameters (QOM, run time): range and default. */
export const FAULT_PARAMS = {
  'fault-delay-ms': { min: 0, max: 60000, default: 100 },
  'fault-period-us': { min: 10, max: 1000000, default: 1000 },
  'fault-burst': { min: 1, max: 65536, default: 256 },
  'fault-every': { min: 1, max: 1000000, default: 100 },
  'fault-latency-us': { min: 1, max: 100000, default: 1000 },
  'fault-rate': { min: 1, max: 1000000, default: 10 },
} as const;

/** Upper bound of `stride × height`. */
export const FB_MAX_BYTES = 256 * 1024 * 1024;

/** fb-mode=direct: upper bound of `stride × height × fps` (the device rewrites every frame). */
export const FB_MAX_BYTES_PER_S = 2048 * 1024 * 1024;

/** A property that breaks SPEC §9, with the message a user sees ("… ; allowed …"). */
export interface PropProblem {
  property: keyof DeviceProps;
  message: string;
}

/** The rules of SPEC §9 that involve more than one property (ranges are in PROP_LIMITS). */
export function crossPropertyProblems(q: DeviceProps): PropProblem[] {
  const out: PropProblem[] = [];
  if (q['fb-mode'] !== 'direct' && q['fb-mode'] !== 'mmio') out.push({ property: 'fb-mode', message: `${JSON.stringify(q['fb-mode'])} is not allowed; allowed: direct, mmio` });
  if (q['mmio-latency-ns'] !== 0 && q['fb-mode'] !== 'mmio') {
    out.push({ property: 'mmio-latency-ns', message: `${q['mmio-latency-ns']} is only allowed with fb-mode: mmio (fb-mode is ${q['fb-mode']}); allowed here: 0` });
  }
  if (q.stride !== 0 && q.stride < 3 * q.width) {
    out.push({ property: 'stride', message: `${q.stride} is less than 3 × width (${3 * q.width}); allowed 0 (= 3 × width) or ${3 * q.width}..${PROP_LIMITS.stride.max}` });
  } else if (effectiveStride(q) * q.height > FB_MAX_BYTES) {
    out.push({ property: 'stride', message: `stride × height = ${effectiveStride(q) * q.height} bytes exceeds 256 MiB; allowed stride × height ≤ ${FB_MAX_BYTES}` });
  }
  const rate = effectiveStride(q) * q.height * q.fps;
  if (q['fb-mode'] === 'direct' && rate > FB_MAX_BYTES_PER_S) {
    out.push({ property: 'fps', message: `${q.fps} makes stride × height × fps = ${rate} bytes/s; allowed up to 2048 MiB/s in fb-mode=direct (at most ${Math.floor(FB_MAX_BYTES_PER_S / (effectiveStride(q) * q.height))} fps here)` });
  }
  const r = q['mouse-rate-hz'];
  if (r !== 0 && r < MOUSE_RATE_MIN) out.push({ property: 'mouse-rate-hz', message: `${r} is out of range; allowed 0 (no generator) or ${MOUSE_RATE_MIN}..${PROP_LIMITS['mouse-rate-hz'].max}` });
  return out;
}

/** Smallest non-zero `mouse-rate-hz` (0 turns the generator off). */
export const MOUSE_RATE_MIN = 125;

/**
 * Checks a property set against SPEC §9 (what the device itself refuses). Returns the first
 * offending property and why, or `undefined` when the set is valid. The scenario schema applies
 * the same rules (crossPropertyProblems), so a scenario the device would refuse never boots.
 */
export function validateProps(p: Partial<DeviceProps>): PropProblem | undefined {
  const q: DeviceProps = { ...DEFAULT_PROPS, ...p };
  for (const [name, lim] of Object.entries(PROP_LIMITS) as [keyof typeof PROP_LIMITS, { min: number; max: number }][]) {
    const v = q[name];
    if (!Number.isInteger(v) || v < lim.min || v > lim.max) return { property: name, message: `${v} is out of range; allowed ${lim.min}..${lim.max}` };
  }
  return crossPropertyProblems(q)[0];
}

/** Bytes per line: the `stride` property, or 3 × width when it is 0. */
export function effectiveStride(p: Pick<DeviceProps, 'width' | 'stride'>): number {
  return p.stride === 0 ? 3 * p.width : p.stride;
}

/** `FB_BYTES`: stride × height. */
export function fbBytes(p: Pick<DeviceProps, 'width' | 'height' | 'stride'>): number {
  return effectiveStride(p) * p.height;
}

/** BAR2 size: smallest power of two ≥ stride × height, at least 4 KiB. */
export function fbBarSize(p: Pick<DeviceProps, 'width' | 'height' | 'stride'>): number {
  const need = Math.max(BAR.fbMinSize, fbBytes(p));
  let size = BAR.fbMinSize;
  while (size < need) size *= 2;
  return size;
}

/** Expected `CAPS` for a property set. `feed`: whether the chardev property is set. */
export function expectedCaps(p: Partial<DeviceProps>): number {
  const q: DeviceProps = { ...DEFAULT_PROPS, ...p };
  let caps = CAPS.FB | CAPS.MOUSE;
  if (q.msi) caps |= CAPS.MSI;
  if (q.chardev !== undefined) caps |= CAPS.FEED;
  if (q.input) caps |= CAPS.INPUT;
  if (q['mouse-rate-hz'] > 0) caps |= CAPS.GEN;
  if (q['fb-mode'] === 'mmio') caps |= CAPS.FB_MMIO;
  return caps;
}

// ---------------------------------------------------------------------------------------------
// §4 Framebuffer

const NS_PER_S = 1_000_000_000n;

function big(v: number | bigint): bigint {
  if (typeof v === 'bigint') return v;
  if (!Number.isInteger(v)) throw new RangeError(`expected an integer, got ${v}`);
  return BigInt(v);
}

/** Frame number shown at device clock `clockNs`: floor(t × fps / 10^9). */
export function frameNumberAt(clockNs: number | bigint, fps: number | bigint): bigint {
  const t = big(clockNs);
  if (t < 0n) throw new RangeError('negative clock');
  return (t * big(fps)) / NS_PER_S;
}

/** Device clock at which frame `n` begins: ceil(n × 10^9 / fps). */
export function frameTimestamp(n: number | bigint, fps: number | bigint): bigint {
  const num = big(n) * NS_PER_S;
  const f = big(fps);
  return (num + f - 1n) / f;
}

/** RGB bytes of pixel (x, y) in frame `n` (SPEC §4.2). */
export function pixel(n: number | bigint, x: number, y: number): [r: number, g: number, b: number] {
  const nb = big(n);
  const lo = Number(nb & 0xffn);
  const hi = Number((nb >> 8n) & 0xffn);
  return [(x + lo) & 0xff, (y + lo) & 0xff, (x ^ y ^ hi) & 0xff];
}

/**
 * The frame number modulo 65536 a pixel reveals (SPEC §4.2), or `undefined` when the pixel is
 * not a value of the pixel function at (x, y) (its G byte disagrees with its R byte).
 */
export function decodeFrameNumber(x: number, y: number, r: number, g: number, b: number): number | undefined {
  const lo = (r - x) & 0xff;
  const hi = (b ^ x ^ y) & 0xff;
  if (((y + lo) & 0xff) !== (g & 0xff)) return undefined;
  return (hi << 8) | lo;
}

/** Geometry needed to lay out a frame in memory. */
export interface FbGeometry {
  width: number;
  height: number;
  /** Bytes per line (already resolved: not 0). */
  stride: number;
}

/**
 * The expected bytes of BAR2 range [offset, offset + length) for frame `n`: pixels where they
 * are, 0 in line padding and past `stride × height`.
 */
export function expectedFbBytes(n: number | bigint, geo: FbGeometry, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const nb = big(n);
  const lo = Number(nb & 0xffn);
  const hi = Number((nb >> 8n) & 0xffn);
  const fbEnd = geo.stride * geo.height;
  for (let i = 0; i < length; i++) {
    const off = offset + i;
    if (off >= fbEnd) continue;
    const y = Math.floor(off / geo.stride);
    const col = off - y * geo.stride;
    if (col >= 3 * geo.width) continue;
    const x = Math.floor(col / 3);
    const c = col - 3 * x;
    out[i] = c === 0 ? (x + lo) & 0xff : c === 1 ? (y + lo) & 0xff : (x ^ y ^ hi) & 0xff;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// §5 Events

/** One decoded 24-byte event record. */
export interface EventRecord {
  seq: bigint;
  timestamp: bigint;
  dx: number;
  dy: number;
  wheel: number;
  buttons: number;
  source: number;
  flags: number;
}

/** Decodes a 24-byte event record (little-endian) starting at `offset`. */
export function parseEventRecord(buf: Uint8Array, offset = 0): EventRecord {
  if (buf.length - offset < EVENT_RECORD_SIZE) throw new RangeError(`event record needs ${EVENT_RECORD_SIZE} bytes`);
  const v = new DataView(buf.buffer, buf.byteOffset + offset, EVENT_RECORD_SIZE);
  return {
    seq: v.getBigUint64(0, true),
    timestamp: v.getBigUint64(8, true),
    dx: v.getInt16(16, true),
    dy: v.getInt16(18, true),
    wheel: v.getInt8(20),
    buttons: v.getUint8(21),
    source: v.getUint8(22),
    flags: v.getUint8(23),
  };
}

/** Decodes the six `EV_HEAD` register words (word0 at 0x0C0). */
export function parseEventHeadWords(words: readonly number[]): EventRecord {
  if (words.length !== EV_HEAD_WORDS) throw new RangeError(`EV_HEAD has ${EV_HEAD_WORDS} words`);
  const buf = new Uint8Array(EVENT_RECORD_SIZE);
  const v = new DataView(buf.buffer);
  words.forEach((w, i) => v.setUint32(4 * i, w >>> 0, true));
  return parseEventRecord(buf);
}

/** Encodes an event record (inverse of {@link parseEventRecord}). */
export function encodeEventRecord(e: EventRecord): Uint8Array {
  const buf = new Uint8Array(EVENT_RECORD_SIZE);
  const v = new DataView(buf.buffer);
  v.setBigUint64(0, e.seq, true);
  v.setBigUint64(8, e.timestamp, true);
  v.setInt16(16, e.dx, true);
  v.setInt16(18, e.dy, true);
  v.setInt8(20, e.wheel);
  v.setUint8(21, e.buttons);
  v.setUint8(22, e.source);
  v.setUint8(23, e.flags);
  return buf;
}

/** Content fields of an event (what a producer decides; the device adds seq and timestamp). */
export interface EventContent {
  dx: number;
  dy: number;
  wheel: number;
  buttons: number;
  source: number;
  flags: number;
}

/**
 * Generator packet `k` (SPEC §5.1). `bundle` (mouse-bundle) decides the END_OF_REPORT flag:
 * set on the last packet of each report, i.e. when (k + 1) is a multiple of `bundle`.
 */
export function generatorPacket(k: number, bundle = 1): EventContent {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`packet index ${k}`);
  return {
    dx: (k % 7) - 3,
    dy: (k % 5) - 2,
    wheel: k % 64 === 63 ? 1 : 0,
    buttons: Math.floor(k / 1024) & 1,
    source: EV_SOURCE.generator,
    flags: (k + 1) % bundle === 0 ? EV_FLAG_END_OF_REPORT : 0,
  };
}

/** Sampling instant of generator packet `k` when enabled at device clock `g`: g + ceil((k+1)·10^9/r). */
export function generatorTimestamp(g: number | bigint, k: number | bigint, rateHz: number | bigint): bigint {
  const r = big(rateHz);
  return big(g) + ((big(k) + 1n) * NS_PER_S + r - 1n) / r;
}

/** Packets produced after `enabledNs` of enabled time: floor(floor(T·r/10^9)/b)·b. */
export function generatorPacketsAfter(enabledNs: number | bigint, rateHz: number | bigint, bundle: number | bigint): bigint {
  const due = (big(enabledNs) * big(rateHz)) / NS_PER_S;
  const b = big(bundle);
  return (due / b) * b;
}

// ---------------------------------------------------------------------------------------------
// §6 Host feed

/** A host-feed record's fields (SPEC §6); unspecified fields are 0. */
export interface FeedRecord {
  dx?: number;
  dy?: number;
  wheel?: number;
  buttons?: number;
  flags?: number;
}

/** Encodes a 16-byte host-feed record. */
export function encodeFeedRecord(r: FeedRecord): Uint8Array {
  const buf = new Uint8Array(FEED_RECORD_SIZE);
  const v = new DataView(buf.buffer);
  v.setUint32(0, FEED_MAGIC, true);
  v.setInt16(4, r.dx ?? 0, true);
  v.setInt16(6, r.dy ?? 0, true);
  v.setInt8(8, r.wheel ?? 0);
  v.setUint8(9, r.buttons ?? 0);
  v.setUint8(10, r.flags ?? 0);
  return buf;
}
