/**
 * A tiny PE32+ reader: just enough of the headers, sections, imports, exports, exception
 * table (x64 unwind info) and the certificate table to check a kernel driver image, and a
 * section-by-section Authenticode digest to check the catalog's against.
 */
import { createHash } from 'node:crypto';

export interface PeSection {
  name: string;
  virtualAddress: number;
  virtualSize: number;
  rawPointer: number;
  rawSize: number;
  characteristics: number;
}

export interface PeDirectory {
  rva: number;
  size: number;
}

export interface PeImport {
  dll: string;
  functions: string[];
  /** RVA of the IAT slot of each function, same order. */
  iatRvas: number[];
}

export interface PeUnwindEntry {
  begin: number;
  end: number;
  unwindRva: number;
  flags: number;
  handlerRva?: number;
  handlerDataRva?: number;
}

export interface PeImage {
  buf: Buffer;
  machine: number;
  characteristics: number;
  magic: number;
  entryPoint: number;
  imageBase: bigint;
  sectionAlignment: number;
  fileAlignment: number;
  subsystemVersion: [number, number];
  checksum: number;
  checksumOffset: number;
  subsystem: number;
  dllCharacteristics: number;
  directories: PeDirectory[];
  sections: PeSection[];
}

export const IMAGE_FILE_MACHINE_AMD64 = 0x8664;
export const IMAGE_SUBSYSTEM_NATIVE = 1;
export const IMAGE_FILE_EXECUTABLE_IMAGE = 0x0002;
export const IMAGE_FILE_RELOCS_STRIPPED = 0x0001;
export const DLLCHAR_HIGH_ENTROPY_VA = 0x0020;
export const DLLCHAR_DYNAMIC_BASE = 0x0040;
export const DLLCHAR_FORCE_INTEGRITY = 0x0080;
export const DLLCHAR_NX_COMPAT = 0x0100;
export const DLLCHAR_NO_SEH = 0x0400;
export const DLLCHAR_APPCONTAINER = 0x1000;
export const SCN_CNT_CODE = 0x00000020;
export const SCN_MEM_EXECUTE = 0x20000000;
export const SCN_MEM_READ = 0x40000000;
export const SCN_MEM_WRITE = 0x80000000;
export const DIR_EXPORT = 0;
export const DIR_IMPORT = 1;
export const DIR_EXCEPTION = 3;
export const DIR_SECURITY = 4;
export const DIR_BASERELOC = 5;
export const UNW_FLAG_EHANDLER = 1;
export const UNW_FLAG_UHANDLER = 2;
export const UNW_FLAG_CHAININFO = 4;

function fail(msg: string): never {
  throw new Error(`PE: ${msg}`);
}

export function parsePe(buf: Buffer): PeImage {
  if (buf.length < 0x40 || buf.toString('latin1', 0, 2) !== 'MZ') fail('no MZ header');
  const pe = buf.readUInt32LE(0x3c);
  if (pe + 24 > buf.length || buf.toString('latin1', pe, pe + 4) !== 'PE\0\0') fail('no PE signature');
  const coff = pe + 4;
  const machine = buf.readUInt16LE(coff);
  const nSections = buf.readUInt16LE(coff + 2);
  const optSize = buf.readUInt16LE(coff + 16);
  const characteristics = buf.readUInt16LE(coff + 18);
  const opt = coff + 20;
  const magic = buf.readUInt16LE(opt);
  if (magic !== 0x20b) fail(`optional header magic ${magic.toString(16)} is not PE32+`);
  const nDirs = buf.readUInt32LE(opt + 108);
  const directories: PeDirectory[] = [];
  for (let i = 0; i < nDirs; i++) {
    directories.push({ rva: buf.readUInt32LE(opt + 112 + 8 * i), size: buf.readUInt32LE(opt + 116 + 8 * i) });
  }
  const sections: PeSection[] = [];
  const secBase = opt + optSize;
  for (let i = 0; i < nSections; i++) {
    const s = secBase + 40 * i;
    sections.push({
      name: buf.toString('latin1', s, s + 8).replace(/\0+$/, ''),
      virtualSize: buf.readUInt32LE(s + 8),
      virtualAddress: buf.readUInt32LE(s + 12),
      rawSize: buf.readUInt32LE(s + 16),
      rawPointer: buf.readUInt32LE(s + 20),
      characteristics: buf.readUInt32LE(s + 36),
    });
  }
  return {
    buf, machine, characteristics, magic,
    entryPoint: buf.readUInt32LE(opt + 16),
    imageBase: buf.readBigUInt64LE(opt + 24),
    sectionAlignment: buf.readUInt32LE(opt + 32),
    fileAlignment: buf.readUInt32LE(opt + 36),
    subsystemVersion: [buf.readUInt16LE(opt + 48), buf.readUInt16LE(opt + 50)],
    checksum: buf.readUInt32LE(opt + 64),
    checksumOffset: opt + 64,
    subsystem: buf.readUInt16LE(opt + 68),
    dllCharacteristics: buf.readUInt16LE(opt + 70),
    directories,
    sections,
  };
}

export function sectionOf(img: PeImage, rva: number): PeSection | undefined {
  return img.sections.find((s) => rva >= s.virtualAddress && rva < s.virtualAddress + Math.max(s.virtualSize, s.rawSize));
}

export function rvaToOffset(img: PeImage, rva: number): number {
  const s = sectionOf(img, rva);
  if (!s) fail(`RVA 0x${rva.toString(16)} outside every section`);
  const off = rva - s.virtualAddress;
  if (off >= s.rawSize) fail(`RVA 0x${rva.toString(16)} is in uninitialised data`);
  return s.rawPointer + off;
}

function cstring(img: PeImage, rva: number): string {
  const off = rvaToOffset(img, rva);
  const end = img.buf.indexOf(0, off);
  return img.buf.toString('latin1', off, end < 0 ? img.buf.length : end);
}

export function readImports(img: PeImage): PeImport[] {
  const dir = img.directories[DIR_IMPORT];
  if (!dir || !dir.rva) return [];
  const out: PeImport[] = [];
  for (let d = rvaToOffset(img, dir.rva); ; d += 20) {
    const ilt = img.buf.readUInt32LE(d);
    const nameRva = img.buf.readUInt32LE(d + 12);
    const iat = img.buf.readUInt32LE(d + 16);
    if (!nameRva && !iat) break;
    const functions: string[] = [];
    const iatRvas: number[] = [];
    const thunks = ilt || iat;
    for (let i = 0; ; i++) {
      const t = img.buf.readBigUInt64LE(rvaToOffset(img, thunks + 8 * i));
      if (t === 0n) break;
      if (t & (1n << 63n)) functions.push(`#${Number(t & 0xffffn)}`);
      else functions.push(cstring(img, Number(t & 0x7fffffffn) + 2));
      iatRvas.push(iat + 8 * i);
    }
    out.push({ dll: cstring(img, nameRva), functions, iatRvas });
  }
  return out;
}

/** Number of exported functions (0 when there is no export directory). */
export function exportCount(img: PeImage): number {
  const dir = img.directories[DIR_EXPORT];
  if (!dir || !dir.rva) return 0;
  return img.buf.readUInt32LE(rvaToOffset(img, dir.rva) + 20);
}

export function readUnwindEntries(img: PeImage): PeUnwindEntry[] {
  const dir = img.directories[DIR_EXCEPTION];
  if (!dir || !dir.rva) return [];
  const base = rvaToOffset(img, dir.rva);
  const out: PeUnwindEntry[] = [];
  for (let i = 0; i < dir.size / 12; i++) {
    const begin = img.buf.readUInt32LE(base + 12 * i);
    const end = img.buf.readUInt32LE(base + 12 * i + 4);
    const unwindRva = img.buf.readUInt32LE(base + 12 * i + 8);
    const u = rvaToOffset(img, unwindRva);
    const flags = img.buf.readUInt8(u) >> 3;
    const codes = img.buf.readUInt8(u + 2);
    const e: PeUnwindEntry = { begin, end, unwindRva, flags };
    if (flags & (UNW_FLAG_EHANDLER | UNW_FLAG_UHANDLER)) {
      const after = unwindRva + 4 + 2 * (codes + (codes & 1));
      e.handlerRva = img.buf.readUInt32LE(rvaToOffset(img, after));
      e.handlerDataRva = after + 4;
    }
    out.push(e);
  }
  return out;
}

/** The standard PE image checksum (what the loader and signtool compute). */
export function computeChecksum(img: PeImage): number {
  const b = img.buf;
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) {
    if (i === img.checksumOffset || i === img.checksumOffset + 2) continue;
    const w = i + 1 < b.length ? b.readUInt16LE(i) : b[i]!;
    sum += w;
    sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  }
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum + b.length) >>> 0;
}

export interface WinCertificate {
  length: number;
  revision: number;
  type: number;
}

/** Entries of the attribute certificate table (the security directory holds a FILE offset). */
export function readCertificates(img: PeImage): WinCertificate[] {
  const dir = img.directories[DIR_SECURITY];
  if (!dir || !dir.rva || !dir.size) return [];
  const out: WinCertificate[] = [];
  for (let p = dir.rva; p < dir.rva + dir.size;) {
    const length = img.buf.readUInt32LE(p);
    if (length < 8) fail('bad WIN_CERTIFICATE length');
    out.push({ length, revision: img.buf.readUInt16LE(p + 4), type: img.buf.readUInt16LE(p + 6) });
    p += (length + 7) & ~7;
  }
  return out;
}

/**
 * The Authenticode digest computed section by section, as the PE Authenticode specification
 * describes it (a second, independent computation for the tests): the headers without the
 * CheckSum field and the Certificate Table entry, then each section's raw data in file order,
 * then the data after the last section up to the certificate table.
 */
export function authenticodeDigestBySections(img: PeImage, algorithm: 'sha256' | 'sha1' = 'sha256'): Buffer {
  const b = img.buf;
  const h = createHash(algorithm);
  const opt = img.checksumOffset - 64;
  const certEntry = opt + (img.magic === 0x20b ? 112 : 96) + 8 * DIR_SECURITY;
  const sizeOfHeaders = b.readUInt32LE(opt + 60);
  h.update(b.subarray(0, img.checksumOffset));
  h.update(b.subarray(img.checksumOffset + 4, certEntry));
  h.update(b.subarray(certEntry + 8, sizeOfHeaders));
  let hashed = sizeOfHeaders;
  for (const s of [...img.sections].filter((x) => x.rawSize > 0).sort((x, y) => x.rawPointer - y.rawPointer)) {
    h.update(b.subarray(s.rawPointer, s.rawPointer + s.rawSize));
    hashed += s.rawSize;
  }
  const certSize = img.directories[DIR_SECURITY]?.size ?? 0;
  const extra = b.length - certSize - hashed;
  if (extra > 0) h.update(b.subarray(hashed, hashed + extra));
  return h.digest();
}
