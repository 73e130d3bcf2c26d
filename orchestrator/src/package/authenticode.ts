/**
 * The Authenticode digest of a PE image (Microsoft "Windows Authenticode Portable Executable
 * Signature Format"): the file hashed without the CheckSum field, without the Certificate Table
 * entry of the data directory and without the certificate table itself; an image with no
 * certificate table is zero-padded to a multiple of 8 bytes first, which is exactly the padding
 * a signer inserts before appending the table. So the digest of a signed image equals the digest
 * of the same image before signing, and a catalog may be made before or after the embedded
 * signature. The image is hashed as one run from the end of the Certificate Table entry to the
 * certificate table (what osslsigncode and signtool compute for images whose sections follow
 * the headers back to back, as every linker writes them). One job: that digest.
 */
import { createHash } from 'node:crypto';
import { UsageError } from '../core/errors.ts';

export interface PeLayout {
  /** IMAGE_FILE_MACHINE_* of the COFF header. */
  machine: number;
  /** 0x10b (PE32) or 0x20b (PE32+). */
  magic: number;
  /** File offset of OptionalHeader.CheckSum. */
  checksumOffset: number;
  /** File offset of the Certificate Table data-directory entry, or undefined when the image has none. */
  certDirOffset: number | undefined;
  /** The certificate table (attribute certificates), when the image has one. */
  certTable: { offset: number; size: number } | undefined;
  sizeOfHeaders: number;
}

/** IMAGE_FILE_MACHINE_AMD64 */
export const MACHINE_AMD64 = 0x8664;

/**
 * Reads the header fields the digest needs; anything that is not a sane PE image is a
 * UsageError starting with `label` (e.g. "--sys foo.sys").
 */
export function readPeLayout(buf: Buffer, label: string): PeLayout {
  const bad = (why: string): never => {
    throw new UsageError(`${label}: not a PE image (${why})`);
  };
  if (buf.length < 0x40 || buf.toString('latin1', 0, 2) !== 'MZ') bad('no MZ header');
  const pe = buf.readUInt32LE(0x3c);
  if (pe + 24 > buf.length || buf.toString('latin1', pe, pe + 4) !== 'PE\0\0') bad('no PE signature');
  const coff = pe + 4;
  const machine = buf.readUInt16LE(coff);
  const optSize = buf.readUInt16LE(coff + 16);
  const opt = coff + 20;
  if (optSize < 2 || opt + optSize > buf.length) bad('truncated optional header');
  const magic = buf.readUInt16LE(opt);
  if (magic !== 0x10b && magic !== 0x20b) bad(`optional header magic 0x${magic.toString(16)}`);
  const dirBase = opt + (magic === 0x20b ? 112 : 96);
  const countOffset = dirBase - 4;
  if (countOffset + 4 > opt + optSize) bad('optional header too short for its data directories');
  const sizeOfHeaders = buf.readUInt32LE(opt + 60);
  const dirCount = buf.readUInt32LE(countOffset);
  const checksumOffset = opt + 64;
  let certDirOffset: number | undefined;
  let certTable: PeLayout['certTable'];
  if (dirCount > 4) {
    certDirOffset = dirBase + 4 * 8;
    if (certDirOffset + 8 > opt + optSize) bad('the Certificate Table entry lies outside the optional header');
    const offset = buf.readUInt32LE(certDirOffset);
    const size = buf.readUInt32LE(certDirOffset + 4);
    if (size > 0) {
      if (offset < certDirOffset + 8 || offset + size > buf.length) bad('the certificate table lies outside the file');
      if (offset + size !== buf.length) bad('the certificate table is not at the end of the file, as Authenticode requires');
      certTable = { offset, size };
    }
  }
  if (sizeOfHeaders > buf.length || sizeOfHeaders < (certDirOffset ?? checksumOffset + 4)) bad(`SizeOfHeaders 0x${sizeOfHeaders.toString(16)}`);
  return { machine, magic, checksumOffset, certDirOffset, certTable, sizeOfHeaders };
}

/** The Authenticode digest of a PE image (default SHA-256). */
export function authenticodeDigest(buf: Buffer, label: string, algorithm: 'sha256' | 'sha1' = 'sha256'): Buffer {
  const l = readPeLayout(buf, label);
  const h = createHash(algorithm);
  const end = l.certTable ? l.certTable.offset : buf.length;
  h.update(buf.subarray(0, l.checksumOffset));
  if (l.certDirOffset === undefined) {
    h.update(buf.subarray(l.checksumOffset + 4, end));
  } else {
    h.update(buf.subarray(l.checksumOffset + 4, l.certDirOffset));
    h.update(buf.subarray(l.certDirOffset + 8, end));
  }
  if (!l.certTable && buf.length % 8 !== 0) h.update(Buffer.alloc(8 - (buf.length % 8)));
  return h.digest();
}
