/**
 * A small DER writer and reader: exactly the ASN.1 a Windows catalog needs (SEQUENCE, SET OF,
 * OBJECT IDENTIFIER, INTEGER, OCTET STRING, BIT STRING, BMPString, UTCTime, NULL and
 * context-specific tags), definite lengths only. One job: bytes <-> ASN.1 nodes.
 */

/** Universal tags used here. */
export const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One tag-length-value element (tag is the whole identifier octet, e.g. 0x30 or 0xa0). */
export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

export const sequence = (...items: Buffer[]): Buffer => tlv(TAG.SEQUENCE, Buffer.concat(items));

/** SET OF in DER order: the encodings sorted as octet strings (X.690 11.6). */
export const setOf = (...items: Buffer[]): Buffer => tlv(TAG.SET, Buffer.concat([...items].sort(Buffer.compare)));

export const nullValue = (): Buffer => Buffer.from([TAG.NULL, 0]);

export const octetString = (bytes: Buffer): Buffer => tlv(TAG.OCTET_STRING, bytes);

/** BIT STRING from its bytes and the number of unused bits in the last byte. */
export const bitString = (bytes: Buffer, unusedBits: number): Buffer => tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), bytes]));

/** BMPString: UTF-16 big-endian, no terminator. */
export function bmpString(s: string): Buffer {
  const le = Buffer.from(s, 'utf16le');
  const be = Buffer.alloc(le.length);
  for (let i = 0; i < le.length; i += 2) {
    be[i] = le[i + 1]!;
    be[i + 1] = le[i]!;
  }
  return tlv(TAG.BMP_STRING, be);
}

/** INTEGER in minimal two's complement. */
export function integer(value: number | bigint): Buffer {
  let v = BigInt(value);
  const bytes: number[] = [];
  for (;;) {
    bytes.unshift(Number(v & 0xffn));
    const rest = v >> 8n;
    const sign = (bytes[0]! & 0x80) !== 0;
    if ((rest === 0n && !sign) || (rest === -1n && sign)) break;
    v = rest;
  }
  return tlv(TAG.INTEGER, Buffer.from(bytes));
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => {
    if (!/^\d+$/.test(a)) throw new Error(`DER: bad OID ${dotted}`);
    return BigInt(a);
  });
  if (arcs.length < 2 || arcs[0]! > 2n) throw new Error(`DER: bad OID ${dotted}`);
  const out: number[] = [];
  const arc = (v: bigint) => {
    const groups: number[] = [Number(v & 0x7fn)];
    for (v >>= 7n; v > 0n; v >>= 7n) groups.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...groups);
  };
  arc(arcs[0]! * 40n + arcs[1]!);
  for (const a of arcs.slice(2)) arc(a);
  return tlv(TAG.OID, Buffer.from(out));
}

/** UTCTime YYMMDDHHMMSSZ (years 1950..2049). */
export function utcTime(d: Date): Buffer {
  const y = d.getUTCFullYear();
  if (y < 1950 || y > 2049) throw new Error(`DER: UTCTime cannot hold the year ${y}`);
  const two = (n: number) => String(n).padStart(2, '0');
  const s = `${two(y % 100)}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;
  return tlv(TAG.UTC_TIME, Buffer.from(s, 'latin1'));
}

/** [n] EXPLICIT (constructed, wraps whole encodings). */
export const explicit = (n: number, ...inner: Buffer[]): Buffer => tlv(0xa0 | n, Buffer.concat(inner));

/** [n] IMPLICIT of a primitive type (the content octets only). */
export const implicitPrimitive = (n: number, content: Buffer): Buffer => tlv(0x80 | n, content);

// ---------------------------------------------------------------------------------------------
// Reader

export interface DerNode {
  /** The identifier octet (e.g. 0x30, 0xa0). */
  tag: number;
  constructed: boolean;
  /** Offset of the identifier octet in the parsed buffer. */
  offset: number;
  /** Header length (identifier + length octets). */
  headerLength: number;
  /** The content octets. */
  content: Buffer;
  /** The whole encoding (header + content). */
  raw: Buffer;
  /** Children of a constructed element. */
  children: DerNode[];
}

export class DerError extends Error {
  constructor(message: string) {
    super(`DER: ${message}`);
    this.name = 'DerError';
  }
}

function readNode(buf: Buffer, offset: number, end: number, depth: number): DerNode {
  if (depth > 64) throw new DerError('nesting too deep');
  if (offset + 2 > end) throw new DerError(`truncated element at ${offset}`);
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`high tag numbers are not supported (at ${offset})`);
  let p = offset + 1;
  const first = buf[p++]!;
  let length: number;
  if (first < 0x80) length = first;
  else {
    const n = first & 0x7f;
    if (n === 0) throw new DerError(`indefinite length at ${offset} (BER, not DER)`);
    if (n > 4 || p + n > end) throw new DerError(`bad length at ${offset}`);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[p++]!;
  }
  const headerLength = p - offset;
  if (p + length > end) throw new DerError(`element at ${offset} runs past its container (${length} bytes)`);
  const content = buf.subarray(p, p + length);
  const constructed = (tag & 0x20) !== 0;
  const children: DerNode[] = [];
  if (constructed) {
    for (let q = p; q < p + length;) {
      const child = readNode(buf, q, p + length, depth + 1);
      children.push(child);
      q = child.offset + child.headerLength + child.content.length;
    }
  }
  return { tag, constructed, offset, headerLength, content, raw: buf.subarray(offset, p + length), children };
}

/** Parses one DER element that must fill `buf` exactly. */
export function parseDer(buf: Buffer): DerNode {
  const node = readNode(buf, 0, buf.length, 0);
  if (node.raw.length !== buf.length) throw new DerError(`${buf.length - node.raw.length} bytes after the element`);
  return node;
}

/** Child `i` of a constructed node, checked for the expected tag. */
export function child(node: DerNode, i: number, tag?: number): DerNode {
  const c = node.children[i];
  if (!c) throw new DerError(`element at ${node.offset} has no child ${i}`);
  if (tag !== undefined && c.tag !== tag) throw new DerError(`element at ${c.offset}: tag 0x${c.tag.toString(16)}, expected 0x${tag.toString(16)}`);
  return c;
}

export function expectTag(node: DerNode, tag: number): DerNode {
  if (node.tag !== tag) throw new DerError(`element at ${node.offset}: tag 0x${node.tag.toString(16)}, expected 0x${tag.toString(16)}`);
  return node;
}

export function readOid(node: DerNode): string {
  expectTag(node, TAG.OID);
  const b = node.content;
  const arcs: bigint[] = [];
  let v = 0n;
  for (const byte of b) {
    v = (v << 7n) | BigInt(byte & 0x7f);
    if ((byte & 0x80) === 0) {
      arcs.push(v);
      v = 0n;
    }
  }
  if (arcs.length === 0) throw new DerError(`empty OID at ${node.offset}`);
  const first = arcs[0]!;
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

export function readInteger(node: DerNode): bigint {
  expectTag(node, TAG.INTEGER);
  let v = 0n;
  for (const byte of node.content) v = (v << 8n) | BigInt(byte);
  if (node.content.length > 0 && (node.content[0]! & 0x80) !== 0) v -= 1n << BigInt(8 * node.content.length);
  return v;
}

export function readBmpString(node: DerNode): string {
  expectTag(node, TAG.BMP_STRING);
  const le = Buffer.alloc(node.content.length);
  for (let i = 0; i + 1 < node.content.length; i += 2) {
    le[i] = node.content[i + 1]!;
    le[i + 1] = node.content[i]!;
  }
  return le.toString('utf16le');
}

/** UTCTime or GeneralizedTime (the forms with seconds and Z) as a Date. */
export function readTime(node: DerNode): Date {
  const s = node.content.toString('latin1');
  let m: RegExpExecArray | null;
  if (node.tag === TAG.UTC_TIME && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    const yy = Number(m[1]);
    return new Date(Date.UTC(yy < 50 ? 2000 + yy : 1900 + yy, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  }
  if (node.tag === TAG.GENERALIZED_TIME && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  }
  throw new DerError(`element at ${node.offset}: not a time (${s})`);
}
