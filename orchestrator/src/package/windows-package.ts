/**
 * Makes a Windows driver package directory that pnputil installs unattended: the .sys and .inf
 * as given, the catalog the INF's CatalogFile names (SHA-256 members for both files, signed by
 * the signer), the root and signer certificates (DER .cer) and hilbox-package.json. Before
 * writing anything it checks its own work: `osslsigncode verify -catalog` must accept the .sys
 * and reject a copy with one byte changed, and the signed catalog must hold exactly the two
 * digests computed here. Inputs are checked first; problems are UsageErrors naming the option.
 * One job: assembling the package.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { InfraError, UsageError } from '../core/errors.ts';
import { authenticodeDigest, readPeLayout } from './authenticode.ts';
import { buildCatalog, ctlBytes, memberTag, OID, parseCatalog } from './catalog.ts';
import { osAttributes, readInfFacts, type InfArch } from './inf.ts';
import { signCatalog, verifyAgainstCatalog } from './osslsigncode.ts';
import type { Signer } from './pki.ts';

export const PACKAGE_MANIFEST = 'hilbox-package.json';
export const PACKAGE_SCHEMA = 'hilbox-windows-package/1';

export interface WindowsPackageManifest {
  schema: typeof PACKAGE_SCHEMA;
  sys: string;
  inf: string;
  cat: string;
  rootCert: string;
  signerCert: string;
  /** The INF's hardware and compatible IDs, as written there. */
  hardwareIds: string[];
  createdAt: string;
}

export interface WindowsPackageOptions {
  sys: string;
  inf: string;
  /** The package directory: created, or replaced when it holds an earlier package. */
  out: string;
  signer: Signer;
  /** File names of the DER certificates in the package. */
  rootCertName: string;
  signerCertName: string;
  now?: Date;
  log?: (line: string) => void;
}

export interface WindowsPackageResult {
  dir: string;
  manifest: WindowsPackageManifest;
  catalog: {
    file: string;
    sha256: string;
    os: string;
    osAttr: string;
    members: { file: string; kind: 'pe' | 'flat'; tag: string }[];
    signer: string;
    root: string;
  };
  /** What the self-check ran and saw. */
  checks: { verify: string; tamperedCopyRejected: true };
}

const MACHINES: Readonly<Record<number, InfArch>> = { 0x8664: 'amd64', 0xaa64: 'arm64', 0x14c: 'x86' };

function readInput(path: string, label: string): Buffer {
  if (!existsSync(path)) throw new UsageError(`${label}: no such file`);
  if (!statSync(path).isFile()) throw new UsageError(`${label}: not a file`);
  return readFileSync(path);
}

/** Checks that `out` may be (re)written: absent, empty, or an earlier package. */
function checkOut(out: string, label: string): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new UsageError(`${label}: exists and is not a directory`);
  const entries = readdirSync(out);
  if (entries.length > 0 && !entries.includes(PACKAGE_MANIFEST)) {
    throw new UsageError(`${label}: exists and is not a package directory (no ${PACKAGE_MANIFEST}); remove it or choose another --out`);
  }
}

/** A copy of a PE image with one byte flipped inside the hashed image data. */
function tampered(sys: Buffer): Buffer {
  const l = readPeLayout(sys, 'tamper');
  const end = l.certTable ? l.certTable.offset : sys.length;
  const at = Math.floor((l.sizeOfHeaders + end) / 2);
  const copy = Buffer.from(sys);
  copy[at] = copy[at]! ^ 0xff;
  return copy;
}

export async function makeWindowsPackage(o: WindowsPackageOptions): Promise<WindowsPackageResult> {
  const log = o.log ?? (() => {});
  const now = o.now ?? new Date();
  const sysLabel = `--sys ${o.sys}`;
  const infLabel = `--inf ${o.inf}`;
  const out = resolve(o.out);
  const outLabel = `--out ${o.out}`;

  // --- inputs
  const sys = readInput(o.sys, sysLabel);
  const layout = readPeLayout(sys, sysLabel);
  const arch = MACHINES[layout.machine];
  if (!arch) throw new UsageError(`${sysLabel}: machine type 0x${layout.machine.toString(16)} is not x64, arm64 or x86`);
  const inf = readInput(o.inf, infLabel);
  const facts = readInfFacts(inf, infLabel, arch);
  const sysName = basename(o.sys);
  const infName = basename(o.inf);
  const catName = facts.catalogFile.name;
  if (!/\.inf$/i.test(infName)) throw new UsageError(`${infLabel}: the INF's file name must end in .inf (pnputil looks for *.inf)`);
  if (!facts.sourceFiles.some((f) => f.name.toLowerCase() === sysName.toLowerCase())) {
    const listed = facts.sourceFiles.map((f) => `${f.name} (line ${f.line})`).join(', ') || 'nothing';
    throw new UsageError(`${infLabel}: [SourceDisksFiles] does not list ${sysName} (it lists ${listed}); the driver store would not copy the --sys file`);
  }
  const extra = facts.sourceFiles.find((f) => f.name.toLowerCase() !== sysName.toLowerCase());
  if (extra) throw new UsageError(`${infLabel} line ${extra.line}: the INF copies ${extra.name}, but the package holds only ${sysName} and ${infName}`);
  const names = [sysName, infName, catName, o.rootCertName, o.signerCertName, PACKAGE_MANIFEST];
  const clash = names.find((n, i) => names.findIndex((m) => m.toLowerCase() === n.toLowerCase()) !== i);
  if (clash) throw new UsageError(`two files of the package would be called ${clash} (--sys ${sysName}, --inf ${infName}, CatalogFile ${catName} at ${infLabel} line ${facts.catalogFile.line})`);
  checkOut(out, outLabel);

  // --- catalog
  const sysDigest = authenticodeDigest(sys, sysLabel, 'sha256');
  const infDigest = createHash('sha256').update(inf).digest();
  const { os, osAttr } = osAttributes(facts.targets, arch);
  const members = [
    { fileName: sysName, kind: 'pe' as const, digest: sysDigest, osAttr },
    { fileName: infName, kind: 'flat' as const, digest: infDigest, osAttr },
  ];
  const unsigned = buildCatalog({ members, os, hardwareIds: facts.hardwareIds, thisUpdate: now });

  const work = mkdtempSync(join(tmpdir(), 'hilbox-package-'));
  try {
    const unsignedFile = join(work, 'unsigned.cat');
    const signedFile = join(work, catName);
    const rootPem = join(work, 'root.pem');
    writeFileSync(unsignedFile, unsigned);
    writeFileSync(rootPem, o.signer.root.toString());
    log(`signing ${catName} (SHA-256) as ${o.signer.signer.subject.replace(/\n/g, ', ')}`);
    await signCatalog({ in: unsignedFile, out: signedFile, certs: o.signer.chainFile, key: o.signer.keyFile });
    const signed = readFileSync(signedFile);

    // --- self-checks: osslsigncode finds the .sys in the catalog, and no longer after a one-byte change
    const sysFile = join(work, sysName);
    writeFileSync(sysFile, sys);
    const v = await verifyAgainstCatalog({ catalog: signedFile, file: sysFile, caFile: rootPem });
    if (!v.ok) throw new InfraError(`self-check: osslsigncode verify -catalog ${catName} -in ${sysName} failed:\n${v.output.trim()}`);
    if (v.digest?.toLowerCase() !== sysDigest.toString('hex')) {
      throw new InfraError(`self-check: osslsigncode computed the Authenticode digest ${v.digest ?? '(none)'}, this code ${sysDigest.toString('hex')}`);
    }
    const badFile = join(work, `tampered-${sysName}`);
    writeFileSync(badFile, tampered(sys));
    const bad = await verifyAgainstCatalog({ catalog: signedFile, file: badFile, caFile: rootPem });
    if (bad.ok) throw new InfraError(`self-check: osslsigncode accepted a copy of ${sysName} with one byte changed:\n${bad.output.trim()}`);
    // ... and the signed catalog holds exactly our two digests, unchanged by signing
    const cat = parseCatalog(signed);
    const byFile = new Map(cat.members.map((m) => [m.nameValues.get('File'), m]));
    const problems: string[] = [];
    if (!ctlBytes(signed).equals(ctlBytes(unsigned))) problems.push('the trust list changed in signing');
    if (cat.signers !== 1) problems.push(`${cat.signers} signers`);
    if (cat.members.length !== 2) problems.push(`${cat.members.length} members`);
    for (const m of members) {
      const got = byFile.get(m.fileName);
      if (!got || got.tag !== memberTag(m.digest) || !got.indirectData?.digest.equals(m.digest) || got.indirectData.digestAlgorithm !== OID.sha256) {
        problems.push(`${m.fileName}'s member does not carry its SHA-256 digest`);
      }
    }
    if (problems.length > 0) throw new InfraError(`self-check of ${catName}: ${problems.join('; ')}`);

    // --- the package directory, written next to `out` and moved into place
    const manifest: WindowsPackageManifest = {
      schema: PACKAGE_SCHEMA, sys: sysName, inf: infName, cat: catName, rootCert: o.rootCertName, signerCert: o.signerCertName,
      hardwareIds: facts.hardwareIds, createdAt: now.toISOString(),
    };
    mkdirSync(dirname(out), { recursive: true });
    const staging = `${out}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    mkdirSync(staging);
    try {
      writeFileSync(join(staging, sysName), sys);
      writeFileSync(join(staging, infName), inf);
      writeFileSync(join(staging, catName), signed);
      writeFileSync(join(staging, o.rootCertName), o.signer.root.raw);
      writeFileSync(join(staging, o.signerCertName), o.signer.signer.raw);
      writeFileSync(join(staging, PACKAGE_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
      checkOut(out, outLabel);
      rmSync(out, { recursive: true, force: true });
      renameSync(staging, out);
    } catch (e) {
      rmSync(staging, { recursive: true, force: true });
      throw e;
    }
    log(`package ${out}: ${sysName}, ${infName}, ${catName} (verified), ${o.rootCertName}, ${o.signerCertName}`);
    return {
      dir: out,
      manifest,
      catalog: {
        file: catName,
        sha256: createHash('sha256').update(signed).digest('hex'),
        os,
        osAttr,
        members: members.map((m) => ({ file: m.fileName, kind: m.kind, tag: memberTag(m.digest) })),
        signer: o.signer.signer.subject.replace(/\n/g, ', '),
        root: o.signer.root.subject.replace(/\n/g, ', '),
      },
      checks: { verify: `osslsigncode verify -catalog ${catName} -in ${sysName}: ok`, tamperedCopyRejected: true },
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
