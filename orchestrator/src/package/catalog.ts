/**
 * Windows catalog (.cat) assembly and reading. A catalog is a PKCS#7 SignedData whose content
 * is a certificate trust list (szOID_CTL) of "catalog list" usage: one member per file, tagged
 * by its hash, with attributes (file name, OS versions, SIP type and the hash as Authenticode
 * SPC_INDIRECT_DATA), plus catalog-wide name/value extensions (OS, HWID1..n). Layout as makecat
 * and Inf2Cat write a version-1 catalog (szOID_CATALOG_LIST_MEMBER) with SHA-256 hashes:
 *
 *   ContentInfo { signedData, [0] SignedData { 1, {}, ContentInfo { szOID_CTL, [0] CTL }, {} } }
 *   CTL {
 *     SEQUENCE { szOID_CATALOG_LIST }                 -- subjectUsage
 *     OCTET STRING (16 random bytes)                   -- listIdentifier
 *     UTCTime                                          -- thisUpdate
 *     SEQUENCE { szOID_CATALOG_LIST_MEMBER, NULL }     -- subjectAlgorithm
 *     SEQUENCE OF member, sorted by tag {              -- trustedSubjects
 *       OCTET STRING UTF-16LE("<HASH HEX>\0")          -- tag: the upper-case hex digest
 *       SET OF Attribute {
 *         CAT_NAMEVALUE { "File", 0x10010001, UTF-16LE("name\0") }
 *         CAT_NAMEVALUE { "OSAttr", 0x10010001, UTF-16LE("2:10.0\0") }
 *         CAT_MEMBERINFO { "{SIP GUID}", 512 }          -- PE image SIP or flat-file SIP
 *         SPC_INDIRECT_DATA { SPC_PE_IMAGE_DATA | SPC_CAB_DATA (flat), DigestInfo { sha256, digest } }
 *       }
 *     }
 *     [0] SEQUENCE OF { CAT_NAMEVALUE, OCTET STRING (CatNameValue) }   -- OS, HWID1, HWID2, ...
 *   }
 *
 * Signing is osslsigncode's job (./osslsigncode.ts). One job: catalog bytes.
 */
import { randomBytes } from 'node:crypto';
import {
  bitString, bmpString, child, DerError, expectTag, explicit, implicitPrimitive, integer, nullValue, octetString, oid, parseDer,
  readBmpString, readInteger, readOid, readTime, sequence, setOf, TAG, tlv, utcTime, type DerNode,
} from './der.ts';

export const OID = {
  signedData: '1.2.840.113549.1.7.2',
  ctl: '1.3.6.1.4.1.311.10.1',
  catalogList: '1.3.6.1.4.1.311.12.1.1',
  catalogListMember: '1.3.6.1.4.1.311.12.1.2',
  catNameValue: '1.3.6.1.4.1.311.12.2.1',
  catMemberInfo: '1.3.6.1.4.1.311.12.2.2',
  spcIndirectData: '1.3.6.1.4.1.311.2.1.4',
  spcPeImageData: '1.3.6.1.4.1.311.2.1.15',
  spcCabData: '1.3.6.1.4.1.311.2.1.25',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha1: '1.3.14.3.2.26',
} as const;

/** Subject interface package GUIDs (CAT_MEMBERINFO): how Windows hashes the member. */
export const SIP = {
  /** PE images: the Authenticode digest. */
  pe: '{C689AAB8-8E78-11D0-8C47-00C04FC295EE}',
  /** Any other file: the digest of all its bytes. */
  flat: '{DE351A42-8E59-11D0-8C47-00C04FC295EE}',
} as const;

/** CRYPTCAT_ATTR_AUTHENTICATED | CRYPTCAT_ATTR_DATAASCII | CRYPTCAT_ATTR_NAMEASCII (makecat's 0x10010001). */
export const NAMEVALUE_FLAGS = 0x10010001;
/** CAT_MEMBERINFO dwCertVersion as makecat writes it. */
export const MEMBERINFO_VERSION = 512;

export interface CatalogMemberInput {
  /** The file name as shipped next to the INF (the File attribute). */
  fileName: string;
  /** 'pe': digest is the Authenticode digest; 'flat': the digest of the whole file. */
  kind: 'pe' | 'flat';
  /** SHA-256 digest. */
  digest: Buffer;
  /** OSAttr value, e.g. 2:10.0. */
  osAttr: string;
}

export interface CatalogInput {
  members: readonly CatalogMemberInput[];
  /** The catalog's OS attribute, e.g. _v100_X64. */
  os: string;
  /** Hardware IDs; written lower case as HWID1, HWID2, ... */
  hardwareIds: readonly string[];
  /** 16 bytes; random when not given. */
  listIdentifier?: Buffer;
  thisUpdate?: Date;
}

/** UTF-16LE with a terminating NUL: how catalogs store tags and name/value data. */
const utf16z = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf16le');

/** A member's tag: the digest in upper-case hex (what CryptCATAdminCalcHashFromFileHandle2 callers look up). */
export const memberTag = (digest: Buffer): string => digest.toString('hex').toUpperCase();

const nameValue = (name: string, value: string): Buffer => sequence(bmpString(name), integer(NAMEVALUE_FLAGS), octetString(utf16z(value)));
const attribute = (type: string, value: Buffer): Buffer => sequence(oid(type), setOf(value));
/** SpcLink file: [2] { [0] IMPLICIT BMPString "" } (the empty link makecat writes). */
const emptyFileLink = (): Buffer => explicit(2, implicitPrimitive(0, Buffer.alloc(0)));

function indirectData(m: CatalogMemberInput): Buffer {
  const data = m.kind === 'pe'
    // SpcPeImageData { flags includeResources|includeImportAddressTable (0xa0, 5 unused bits), [0] file link }
    ? sequence(oid(OID.spcPeImageData), sequence(bitString(Buffer.from([0xa0]), 5), explicit(0, emptyFileLink())))
    : sequence(oid(OID.spcCabData), emptyFileLink());
  return sequence(data, sequence(sequence(oid(OID.sha256), nullValue()), octetString(m.digest)));
}

function member(m: CatalogMemberInput): Buffer {
  if (m.digest.length !== 32) throw new Error(`catalog: ${m.fileName}: expected a SHA-256 digest, got ${m.digest.length} bytes`);
  return sequence(
    octetString(utf16z(memberTag(m.digest))),
    setOf(
      attribute(OID.catNameValue, nameValue('File', m.fileName)),
      attribute(OID.catNameValue, nameValue('OSAttr', m.osAttr)),
      attribute(OID.catMemberInfo, sequence(bmpString(m.kind === 'pe' ? SIP.pe : SIP.flat), integer(MEMBERINFO_VERSION))),
      attribute(OID.spcIndirectData, indirectData(m)),
    ),
  );
}

/** The unsigned catalog (a SignedData without signers), DER. */
export function buildCatalog(input: CatalogInput): Buffer {
  if (input.members.length === 0) throw new Error('catalog: no members');
  const id = input.listIdentifier ?? randomBytes(16);
  // members sorted by tag, as makecat writes them (Windows may search a sorted catalog)
  const members = input.members.map((m) => ({ tag: utf16z(memberTag(m.digest)), der: member(m) })).sort((a, b) => Buffer.compare(a.tag, b.tag));
  const ext = (name: string, value: string) => sequence(oid(OID.catNameValue), octetString(nameValue(name, value)));
  const extensions = [ext('OS', input.os), ...input.hardwareIds.map((h, i) => ext(`HWID${i + 1}`, h.toLowerCase()))];
  const ctl = sequence(
    sequence(oid(OID.catalogList)),
    octetString(id),
    utcTime(input.thisUpdate ?? new Date()),
    sequence(oid(OID.catalogListMember), nullValue()),
    sequence(...members.map((m) => m.der)),
    explicit(0, sequence(...extensions)),
  );
  const signedData = sequence(
    integer(1),
    tlv(TAG.SET, Buffer.alloc(0)), // digestAlgorithms: none yet
    sequence(oid(OID.ctl), explicit(0, ctl)),
    tlv(TAG.SET, Buffer.alloc(0)), // signerInfos: none yet
  );
  return sequence(oid(OID.signedData), explicit(0, signedData));
}

// ---------------------------------------------------------------------------------------------
// Reading (signed or unsigned)

export interface CatalogMember {
  /** The tag as text (trailing NUL removed). */
  tag: string;
  /** CAT_NAMEVALUE attributes: name -> value (trailing NUL removed). */
  nameValues: Map<string, string>;
  memberInfo: { subjectGuid: string; version: number } | undefined;
  indirectData: { dataType: string; digestAlgorithm: string; digest: Buffer } | undefined;
  /** Attribute type OIDs in encoded order. */
  attributeTypes: string[];
}

export interface Catalog {
  signedDataVersion: number;
  digestAlgorithms: string[];
  contentType: string;
  subjectUsage: string[];
  listIdentifier: Buffer | undefined;
  thisUpdate: Date;
  subjectAlgorithm: string;
  members: CatalogMember[];
  /** Catalog-wide CAT_NAMEVALUE extensions: name -> value. */
  attributes: Map<string, string>;
  /** Number of certificates and signers in the SignedData. */
  certificates: number;
  signers: number;
}

const fromUtf16z = (b: Buffer): string => b.toString('utf16le').replace(/\0+$/, '');

function readNameValue(n: DerNode): { name: string; flags: number; value: string } {
  expectTag(n, TAG.SEQUENCE);
  return {
    name: readBmpString(child(n, 0)),
    flags: Number(readInteger(child(n, 1))),
    value: fromUtf16z(child(n, 2, TAG.OCTET_STRING).content),
  };
}

function readMember(n: DerNode): CatalogMember {
  expectTag(n, TAG.SEQUENCE);
  const tag = fromUtf16z(child(n, 0, TAG.OCTET_STRING).content);
  const m: CatalogMember = { tag, nameValues: new Map(), memberInfo: undefined, indirectData: undefined, attributeTypes: [] };
  for (const a of n.children[1] ? expectTag(n.children[1], TAG.SET).children : []) {
    const type = readOid(child(a, 0));
    m.attributeTypes.push(type);
    const value = child(child(a, 1, TAG.SET), 0);
    if (type === OID.catNameValue) {
      const nv = readNameValue(value);
      m.nameValues.set(nv.name, nv.value);
    } else if (type === OID.catMemberInfo) {
      m.memberInfo = { subjectGuid: readBmpString(child(value, 0)), version: Number(readInteger(child(value, 1))) };
    } else if (type === OID.spcIndirectData) {
      const digestInfo = child(value, 1, TAG.SEQUENCE);
      m.indirectData = {
        dataType: readOid(child(child(value, 0, TAG.SEQUENCE), 0)),
        digestAlgorithm: readOid(child(child(digestInfo, 0, TAG.SEQUENCE), 0)),
        digest: Buffer.from(child(digestInfo, 1, TAG.OCTET_STRING).content),
      };
    }
  }
  return m;
}

/** Reads a catalog file (DER); a DerError for anything that is not one. */
export function parseCatalog(der: Buffer): Catalog {
  const root = expectTag(parseDer(der), TAG.SEQUENCE);
  if (readOid(child(root, 0)) !== OID.signedData) throw new DerError('not a PKCS#7 SignedData');
  const sd = child(child(root, 1, 0xa0), 0, TAG.SEQUENCE);
  const digestAlgorithms = child(sd, 1, TAG.SET).children.map((a) => readOid(child(a, 0)));
  const contentInfo = child(sd, 2, TAG.SEQUENCE);
  const contentType = readOid(child(contentInfo, 0));
  if (contentType !== OID.ctl) throw new DerError(`content type ${contentType} is not szOID_CTL`);
  const ctl = child(child(contentInfo, 1, 0xa0), 0, TAG.SEQUENCE);
  let certificates = 0;
  let i = 3;
  if (sd.children[i]?.tag === 0xa0) certificates = sd.children[i++]!.children.length;
  if (sd.children[i]?.tag === 0xa1) i++;
  const signers = child(sd, i, TAG.SET).children.length;

  let p = 0;
  const c = ctl.children;
  if (c[p]?.tag === TAG.INTEGER) p++; // version (default v1)
  const subjectUsage = child(ctl, p++, TAG.SEQUENCE).children.map(readOid);
  let listIdentifier: Buffer | undefined;
  if (c[p]?.tag === TAG.OCTET_STRING) listIdentifier = Buffer.from(c[p++]!.content);
  if (c[p]?.tag === TAG.INTEGER) p++; // sequenceNumber
  const thisUpdate = readTime(child(ctl, p++));
  if (c[p]?.tag === TAG.UTC_TIME || c[p]?.tag === TAG.GENERALIZED_TIME) p++; // nextUpdate
  const subjectAlgorithm = readOid(child(child(ctl, p++, TAG.SEQUENCE), 0));
  const members = c[p]?.tag === TAG.SEQUENCE ? c[p++]!.children.map(readMember) : [];
  const attributes = new Map<string, string>();
  if (c[p]?.tag === 0xa0) {
    for (const e of child(c[p]!, 0, TAG.SEQUENCE).children) {
      if (readOid(child(e, 0)) !== OID.catNameValue) continue;
      const nv = readNameValue(parseDer(Buffer.from(child(e, e.children.length - 1, TAG.OCTET_STRING).content)));
      attributes.set(nv.name, nv.value);
    }
  }
  return {
    signedDataVersion: Number(readInteger(child(sd, 0))),
    digestAlgorithms, contentType, subjectUsage, listIdentifier, thisUpdate, subjectAlgorithm, members, attributes, certificates, signers,
  };
}

/** The raw CTL content (the bytes a signature covers), for comparing an unsigned and a signed catalog. */
export function ctlBytes(der: Buffer): Buffer {
  const sd = child(child(parseDer(der), 1, 0xa0), 0, TAG.SEQUENCE);
  return Buffer.from(child(child(child(sd, 2, TAG.SEQUENCE), 1, 0xa0), 0, TAG.SEQUENCE).raw);
}
