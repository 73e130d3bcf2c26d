/**
 * The Windows driver package's catalog and certificates, checked on Linux with real tools:
 * the package of `npm run build:windows` (scripts/build-windows.mjs, cached), its hilbox.cat
 * read back by our DER reader and by OpenSSL and compared with digests computed elsewhere
 * (osslsigncode's Authenticode digest, the section-by-section digest of ./pe.ts, Node's
 * SHA-256), `osslsigncode verify -catalog` accepting hilbox.sys and rejecting a one-byte-
 * modified copy, the backdated test PKI, and `hilbox package windows` on a user's files.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticodeDigest } from '../../orchestrator/src/package/authenticode.ts';
import { memberTag, OID, parseCatalog, SIP, type Catalog } from '../../orchestrator/src/package/catalog.ts';
import { osAttributes, parseDecoration, readInfFacts } from '../../orchestrator/src/package/inf.ts';
import { EKU_CODE_SIGNING, ensureTestPki, testPkiProblem } from '../../orchestrator/src/package/pki.ts';
import { parseInf } from './inf.ts';
import { authenticodeDigestBySections, parsePe } from './pe.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const zxCli = join(repo, 'node_modules', 'zx', 'build', 'cli.js');
const HOUR = 3600_000;

let pkg = '';
let pkiDir = '';
let cat: Catalog;
let work = '';
let rootPem = '';

const run = (cmd: string, args: string[]): SpawnSyncReturns<string> => spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
const hilbox = (args: string[]): SpawnSyncReturns<string> => spawnSync(process.execPath, [join(repo, 'bin', 'hilbox.js'), ...args], { cwd: repo, encoding: 'utf8', timeout: 120_000 });
const verifyCatalog = (catalog: string, file: string, ca = rootPem) => run('osslsigncode', ['verify', '-CAfile', ca, '-catalog', catalog, '-in', file]);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();
const member = (c: Catalog, file: string) => c.members.find((m) => m.nameValues.get('File') === file);

/** The INF's hardware and compatible IDs, read with the tests' own INF reader. */
function infHardwareIds(text: string): string[] {
  const inf = parseInf(text);
  const [models, ...decorations] = inf.lines('Manufacturer')[0]!.value.split(',').map((s) => s.trim());
  return decorations.flatMap((d) => inf.lines(`${models}.${d}`)).flatMap((l) => l.value.split(',').slice(1).map((s) => s.trim()));
}

/** The .sys's Authenticode digest as osslsigncode computes it verifying the embedded signature. */
function osslsigncodeDigest(file: string): string {
  const r = run('osslsigncode', ['verify', '-CAfile', rootPem, '-in', file]);
  expect(r.status, r.stdout + r.stderr).toBe(0);
  return /^Calculated message digest\s*:\s*([0-9A-F]+)/m.exec(r.stdout)![1]!;
}

beforeAll(() => {
  const r = spawnSync(process.execPath, [zxCli, join(repo, 'scripts', 'build-windows.mjs')], { cwd: repo, encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`build-windows failed (${r.status}):\n${r.stderr}`);
  pkg = r.stdout.trim().split('\n').at(-1) ?? '';
  pkiDir = join(dirname(pkg), 'pki');
  cat = parseCatalog(readFileSync(join(pkg, 'hilbox.cat')));
  work = mkdtempSync(join(tmpdir(), 'hilbox-catalog-test-'));
  rootPem = join(work, 'root.pem');
  writeFileSync(rootPem, new X509Certificate(readFileSync(join(pkg, 'hilbox-test-ca.cer'))).toString());
}, 600_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the package of npm run build:windows', () => {
  it('holds the .sys, the .inf, the signed catalog, both certificates, hilbox-package.json, INSTALL.txt and build.json', () => {
    expect(readdirSync(pkg).sort()).toEqual(['INSTALL.txt', 'build.json', 'hilbox-package.json', 'hilbox-test-ca.cer', 'hilbox-test-signer.cer', 'hilbox.cat', 'hilbox.inf', 'hilbox.sys']);
    const m = JSON.parse(readFileSync(join(pkg, 'hilbox-package.json'), 'utf8')) as Record<string, unknown>;
    expect(m).toEqual({
      schema: 'hilbox-windows-package/1', sys: 'hilbox.sys', inf: 'hilbox.inf', cat: 'hilbox.cat',
      rootCert: 'hilbox-test-ca.cer', signerCert: 'hilbox-test-signer.cer',
      hardwareIds: infHardwareIds(readFileSync(join(pkg, 'hilbox.inf'), 'utf8')), createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(m.hardwareIds).toContain('PCI\\VEN_1234&DEV_4842');
    // the INF is the repository's, byte for byte
    expect(readFileSync(join(pkg, 'hilbox.inf')).equals(readFileSync(join(repo, 'guest-driver', 'windows', 'hilbox.inf')))).toBe(true);
  });

  it('INSTALL.txt says what to import where and runs pnputil; nothing about making a catalog on Windows', () => {
    const text = readFileSync(join(pkg, 'INSTALL.txt'), 'utf8');
    expect(text).toContain('certutil -addstore Root hilbox-test-ca.cer');
    expect(text).toContain('certutil -addstore TrustedPublisher hilbox-test-signer.cer');
    expect(text).toContain('bcdedit /set testsigning on');
    expect(text).toContain('pnputil /add-driver hilbox.inf /install');
    expect(text).not.toMatch(/Inf2Cat|New-FileCatalog|makecat|signtool|no hilbox\.cat/i);
  });

  it('build.json describes the catalog', () => {
    const b = JSON.parse(readFileSync(join(pkg, 'build.json'), 'utf8')) as { catalog: Record<string, unknown>; sha256: Record<string, string> };
    expect(b.catalog).toMatchObject({ file: 'hilbox.cat', os: cat.attributes.get('OS'), osAttr: '2:10.0', tamperedCopyRejected: true });
    expect(b.sha256['hilbox.cat']).toBe(sha256(readFileSync(join(pkg, 'hilbox.cat'))).toString('hex'));
  });
});

describe('hilbox.cat', () => {
  it('is a version-1 catalog: SignedData over a CTL of catalog-list usage with exactly two members', () => {
    expect(cat.contentType).toBe(OID.ctl);
    expect(cat.subjectUsage).toEqual([OID.catalogList]);
    expect(cat.subjectAlgorithm).toBe(OID.catalogListMember);
    expect(cat.listIdentifier).toHaveLength(16);
    expect(Math.abs(cat.thisUpdate.getTime() - Date.now())).toBeLessThan(30 * 86400_000);
    expect(cat.digestAlgorithms).toEqual([OID.sha256]);
    expect(cat.signers).toBe(1);
    expect(cat.certificates).toBe(2); // signer and root
    expect(cat.members.map((m) => m.nameValues.get('File')).sort()).toEqual(['hilbox.inf', 'hilbox.sys']);
    // members sorted by tag, as makecat writes them
    expect(cat.members.map((m) => m.tag)).toEqual(cat.members.map((m) => m.tag).sort());
    for (const m of cat.members) {
      expect(m.nameValues.get('OSAttr')).toBe('2:10.0');
      expect(m.memberInfo?.version).toBe(512);
      expect(m.indirectData?.digestAlgorithm).toBe(OID.sha256);
      expect(m.tag).toBe(memberTag(m.indirectData!.digest));
      expect(m.attributeTypes.sort()).toEqual([OID.catNameValue, OID.catNameValue, OID.catMemberInfo, OID.spcIndirectData].sort());
    }
    expect(member(cat, 'hilbox.sys')).toMatchObject({ memberInfo: { subjectGuid: SIP.pe }, indirectData: { dataType: OID.spcPeImageData } });
    expect(member(cat, 'hilbox.inf')).toMatchObject({ memberInfo: { subjectGuid: SIP.flat }, indirectData: { dataType: OID.spcCabData } });
  });

  it('carries digests equal to ones computed elsewhere: osslsigncode\'s and the spec\'s Authenticode digest, Node\'s SHA-256 of the INF', () => {
    const sys = readFileSync(join(pkg, 'hilbox.sys'));
    const sysDigest = member(cat, 'hilbox.sys')!.indirectData!.digest.toString('hex').toUpperCase();
    expect(sysDigest).toBe(osslsigncodeDigest(join(pkg, 'hilbox.sys')));
    expect(sysDigest).toBe(authenticodeDigestBySections(parsePe(sys)).toString('hex').toUpperCase());
    expect(sysDigest).not.toBe(sha256(sys).toString('hex').toUpperCase()); // not the flat file hash
    const inf = readFileSync(join(pkg, 'hilbox.inf'));
    expect(member(cat, 'hilbox.inf')!.indirectData!.digest.equals(sha256(inf))).toBe(true);
    expect(member(cat, 'hilbox.inf')!.tag).toBe(sha256(inf).toString('hex').toUpperCase());
  });

  it('spells the OS attribute as Inf2Cat does for a decoration: _v100, the architecture, the release of its build', () => {
    const os = (...decorations: string[]) => osAttributes(decorations.map((d) => parseDecoration(d)!), 'amd64').os;
    expect(os('NTamd64.10.0')).toBe('_v100_X64');
    expect(os('NTamd64')).toBe('_v100_X64');
    expect(os('NTamd64.10.0...16299')).toBe('_v100_X64_RS3');
    expect(os('NTamd64.10.0...17763')).toBe('_v100_X64_RS5');
    expect(os('NTamd64.10.0...19045')).toBe('_v100_X64_Vb');
    expect(os('NTamd64.10.0...22000')).toBe('_v100_X64_21H2');
    expect(os('NTamd64.10.0...22631')).toBe('_v100_X64_22H2');
    expect(os('NTamd64.10.0', 'NTamd64.10.0...26100')).toBe('_v100_X64,_v100_X64_24H2');
    expect(osAttributes([], 'arm64')).toEqual({ os: '_v100_ARM64', osAttr: '2:10.0' });
    expect(parseDecoration('NTamd64.10.0...16299')).toEqual({ decoration: 'NTamd64.10.0...16299', arch: 'amd64', version: '10.0', build: 16299 });
    // the package's: from hilbox.inf's [Manufacturer] decoration
    const inf = readFileSync(join(pkg, 'hilbox.inf'));
    const facts = readInfFacts(inf, 'hilbox.inf', 'amd64');
    expect(cat.attributes.get('OS')).toBe(osAttributes(facts.targets, 'amd64').os);
    if (facts.targets.some((t) => t.build === 16299)) expect(cat.attributes.get('OS')).toBe('_v100_X64_RS3');
  });

  it('has the OS attribute and one lower-case HWIDn per hardware ID of the INF', () => {
    const ids = infHardwareIds(readFileSync(join(pkg, 'hilbox.inf'), 'utf8'));
    expect(cat.attributes.get('OS')).toMatch(/^_v100_X64(_\w+)?$/);
    expect([...cat.attributes.keys()]).toEqual(['OS', ...ids.map((_, i) => `HWID${i + 1}`)]);
    ids.forEach((id, i) => expect(cat.attributes.get(`HWID${i + 1}`)).toBe(id.toLowerCase()));
    expect(cat.attributes.get('HWID2')).toBe('pci\\ven_1234&dev_4842');
  });

  it('reads the same with OpenSSL: the catalog OIDs, two SPC_INDIRECT_DATA members with our digests, the signer and root', () => {
    const a = run('openssl', ['asn1parse', '-inform', 'DER', '-in', join(pkg, 'hilbox.cat')]);
    expect(a.status, a.stderr).toBe(0);
    const objects = [...a.stdout.matchAll(/OBJECT\s+:(\S+)/g)].map((m) => m[1]);
    expect(objects.slice(0, 4)).toEqual(['pkcs7-signedData', 'sha256', OID.ctl, OID.catalogList]);
    expect(objects).toContain(OID.catalogListMember);
    expect(objects.filter((o) => o === OID.spcIndirectData)).toHaveLength(2);
    expect(objects.filter((o) => o === OID.catMemberInfo)).toHaveLength(2);
    expect(objects.filter((o) => o === OID.catNameValue)).toHaveLength(4 + cat.attributes.size);
    for (const f of ['hilbox.sys', 'hilbox.inf']) expect(a.stdout).toContain(`[HEX DUMP]:${member(cat, f)!.tag}\n`);
    const certs = run('openssl', ['pkcs7', '-inform', 'DER', '-in', join(pkg, 'hilbox.cat'), '-print_certs', '-noout']);
    expect(certs.status, certs.stderr).toBe(0);
    expect(certs.stdout).toMatch(/subject=O = hilbox, CN = hilbox TEST driver signing/);
    expect(certs.stdout).toMatch(/subject=O = hilbox, CN = hilbox TEST root CA/);
  });

  it('osslsigncode verify -catalog accepts hilbox.sys and rejects a one-byte-modified copy and another root', () => {
    const ok = verifyCatalog(join(pkg, 'hilbox.cat'), join(pkg, 'hilbox.sys'));
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/File is signed in catalog: .*hilbox\.cat/);
    expect(ok.stdout).toMatch(/^Signature verification: ok$/m);
    const sys = readFileSync(join(pkg, 'hilbox.sys'));
    const img = parsePe(sys);
    const text = img.sections.find((s) => s.name === '.text')!;
    const bad = Buffer.from(sys);
    const at = text.rawPointer + Math.floor(text.rawSize / 2);
    bad[at] = bad[at]! ^ 0x01;
    writeFileSync(join(work, 'modified.sys'), bad);
    const no = verifyCatalog(join(pkg, 'hilbox.cat'), join(work, 'modified.sys'));
    expect(no.status, no.stdout).not.toBe(0);
    expect(no.stdout + no.stderr).not.toMatch(/^Signature verification: ok$/m);
    const otherRoot = verifyCatalog(join(pkg, 'hilbox.cat'), join(pkg, 'hilbox.sys'), '/etc/ssl/certs/ca-certificates.crt');
    expect(otherRoot.status).not.toBe(0);
  });
});

describe('the embedded signature and the catalog are independent', () => {
  it('an unsigned copy of hilbox.sys has the same Authenticode digest and verifies against the same catalog', () => {
    const unsigned = join(work, 'unsigned.sys');
    const r = run('osslsigncode', ['remove-signature', '-in', join(pkg, 'hilbox.sys'), '-out', unsigned]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const u = readFileSync(unsigned);
    expect(parsePe(u).directories[4]?.size ?? 0).toBe(0);
    expect(authenticodeDigest(u, 'unsigned').equals(authenticodeDigest(readFileSync(join(pkg, 'hilbox.sys')), 'signed'))).toBe(true);
    const v = verifyCatalog(join(pkg, 'hilbox.cat'), unsigned);
    expect(v.status, v.stdout + v.stderr).toBe(0);
  });

  it('an unsigned image of odd length is zero-padded to 8 bytes, as the signer pads it before the signature', () => {
    const r = run('osslsigncode', ['remove-signature', '-in', join(pkg, 'hilbox.sys'), '-out', join(work, 'even.sys')]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const odd = Buffer.concat([readFileSync(join(work, 'even.sys')), Buffer.from([1, 2, 3])]);
    writeFileSync(join(work, 'odd.sys'), odd);
    const s = run('osslsigncode', ['sign', '-certs', join(pkiDir, 'chain.pem'), '-key', join(pkiDir, 'sign.key'), '-h', 'sha256', '-in', join(work, 'odd.sys'), '-out', join(work, 'odd-signed.sys')]);
    expect(s.status, s.stdout + s.stderr).toBe(0);
    const digest = authenticodeDigest(odd, 'odd').toString('hex').toUpperCase();
    expect(digest).toBe(osslsigncodeDigest(join(work, 'odd-signed.sys')));
    expect(authenticodeDigest(readFileSync(join(work, 'odd-signed.sys')), 'odd-signed').toString('hex').toUpperCase()).toBe(digest);
  });
});

describe('the test PKI', () => {
  const cert = (f: string) => new X509Certificate(readFileSync(f));

  it('ships a root CA and a code-signing certificate it issued, both valid from two days before now', () => {
    const root = cert(join(pkg, 'hilbox-test-ca.cer'));
    const signer = cert(join(pkg, 'hilbox-test-signer.cer'));
    for (const c of [root, signer]) {
      expect(new Date(c.validFrom).getTime(), c.validFrom).toBeLessThanOrEqual(Date.now() - 48 * HOUR + HOUR);
      expect(new Date(c.validTo).getTime()).toBeGreaterThan(Date.now() + 365 * 86400_000);
    }
    expect(root.ca).toBe(true);
    expect(root.checkIssued(root) && root.verify(root.publicKey)).toBe(true);
    expect(signer.ca).toBe(false);
    expect(signer.checkIssued(root) && signer.verify(root.publicKey)).toBe(true);
    expect(signer.keyUsage).toContain(EKU_CODE_SIGNING);
    // the shipped .cer files are the cache's certificates; the keys never leave it
    expect(root.fingerprint256).toBe(cert(join(pkiDir, 'ca.crt')).fingerprint256);
    expect(signer.fingerprint256).toBe(cert(join(pkiDir, 'sign.crt')).fingerprint256);
    const ext = run('openssl', ['x509', '-inform', 'DER', '-in', join(pkg, 'hilbox-test-signer.cer'), '-noout', '-ext', 'extendedKeyUsage,basicConstraints']);
    expect(ext.stdout).toMatch(/Code Signing/);
    expect(ext.stdout).toMatch(/CA:FALSE/);
    expect(testPkiProblem(pkiDir)).toBeUndefined();
  });

  it('an older cache\'s PKI (no pki.json: one certificate, not backdated) is found and made again', async () => {
    const old = join(work, 'old-pki');
    cpSync(pkiDir, old, { recursive: true });
    rmSync(join(old, 'pki.json'));
    expect(testPkiProblem(old)).toMatch(/pki\.json/);
    const made = await ensureTestPki({ dir: old });
    expect(made.created).toBe(true);
    expect(testPkiProblem(old)).toBeUndefined();
    expect(cert(join(old, 'ca.crt')).fingerprint256).not.toBe(cert(join(pkiDir, 'ca.crt')).fingerprint256);
    expect((await ensureTestPki({ dir: old })).created).toBe(false);
  }, 120_000);
});

describe('hilbox package windows', () => {
  /** The built .sys and .inf as a user's driver "mydrv": new names, its own CatalogFile line. */
  function userDriver(dir: string, catName = 'mydrv.cat'): { sys: string; inf: string } {
    mkdirSync(dir, { recursive: true });
    const sys = join(dir, 'mydrv.sys');
    const inf = join(dir, 'mydrv.inf');
    copyFileSync(join(pkg, 'hilbox.sys'), sys);
    const text = readFileSync(join(pkg, 'hilbox.inf'), 'utf8').replaceAll('hilbox.sys', 'mydrv.sys').replace(/^CatalogFile\s*=.*$/m, `CatalogFile = ${catName}`);
    writeFileSync(inf, text);
    return { sys, inf };
  }

  it('packages a user\'s driver under its names into a package that verifies', () => {
    const { sys, inf } = userDriver(join(work, 'user'));
    const out = join(work, 'user-pkg');
    const r = hilbox(['package', 'windows', '--sys', sys, '--inf', inf, '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`package: ${out}`);
    expect(readdirSync(out).sort()).toEqual(['hilbox-package.json', 'hilbox-test-ca.cer', 'hilbox-test-signer.cer', 'mydrv.cat', 'mydrv.inf', 'mydrv.sys']);
    const m = JSON.parse(readFileSync(join(out, 'hilbox-package.json'), 'utf8')) as Record<string, unknown>;
    expect(m).toMatchObject({ schema: 'hilbox-windows-package/1', sys: 'mydrv.sys', inf: 'mydrv.inf', cat: 'mydrv.cat', rootCert: 'hilbox-test-ca.cer', signerCert: 'hilbox-test-signer.cer' });
    const v = verifyCatalog(join(out, 'mydrv.cat'), join(out, 'mydrv.sys'));
    expect(v.status, v.stdout + v.stderr).toBe(0);
    const c = parseCatalog(readFileSync(join(out, 'mydrv.cat')));
    expect(c.members.map((x) => x.nameValues.get('File')).sort()).toEqual(['mydrv.inf', 'mydrv.sys']);
    expect(member(c, 'mydrv.inf')!.indirectData!.digest.equals(sha256(readFileSync(inf)))).toBe(true);
    // a second run replaces the package it made
    expect(hilbox(['package', 'windows', '--sys', sys, '--inf', inf, '--out', out]).status).toBe(0);
  });

  it('signs with --cert/--key (signer first, then the chain to the root) and reports --json', () => {
    const { sys, inf } = userDriver(join(work, 'user2'));
    const out = join(work, 'user2-pkg');
    const r = hilbox(['--json', 'package', 'windows', '--sys', sys, '--inf', inf, '--out', out, '--cert', join(pkiDir, 'chain.pem'), '--key', join(pkiDir, 'sign.key')]);
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { dir: string; manifest: { rootCert: string; signerCert: string; cat: string }; checks: { tamperedCopyRejected: boolean } };
    expect(result).toMatchObject({ dir: out, manifest: { rootCert: 'root.cer', signerCert: 'signer.cer', cat: 'mydrv.cat' }, checks: { tamperedCopyRejected: true } });
    expect(existsSync(join(out, 'root.cer')) && existsSync(join(out, 'signer.cer'))).toBe(true);
    expect(verifyCatalog(join(out, 'mydrv.cat'), join(out, 'mydrv.sys')).status).toBe(0);
  });

  it('bad input exits 2 naming the argument', () => {
    const dir = join(work, 'bad');
    const { sys, inf } = userDriver(dir);
    const noCat = join(dir, 'nocat.inf');
    writeFileSync(noCat, readFileSync(inf, 'utf8').replace(/^CatalogFile\s*=.*$/m, ''));
    const pathCat = join(dir, 'pathcat.inf');
    writeFileSync(pathCat, readFileSync(inf, 'utf8').replace(/^CatalogFile\s*=.*$/m, 'CatalogFile = sub\\mydrv.cat'));
    const catLine = readFileSync(pathCat, 'utf8').split('\n').findIndex((l) => l.startsWith('CatalogFile')) + 1;
    const otherSys = join(dir, 'other.sys');
    copyFileSync(sys, otherSys);
    const busy = join(dir, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'notes.txt'), 'mine');
    const missing = join(dir, 'missing.sys');
    const cases: [string[], RegExp][] = [
      [['--inf', inf], /--sys is required/],
      [['--sys', sys], /--inf is required/],
      [['--sys', missing, '--inf', inf], new RegExp(`--sys ${missing}: no such file`)],
      [['--sys', inf, '--inf', inf], new RegExp(`--sys ${inf}: not a PE image \\(no MZ header\\)`)],
      [['--sys', sys, '--inf', join(dir, 'missing.inf')], /--inf .*missing\.inf: no such file/],
      [['--sys', sys, '--inf', noCat], new RegExp(`--inf ${noCat}: \\[Version\\] has no CatalogFile line`)],
      [['--sys', sys, '--inf', pathCat], new RegExp(`--inf ${pathCat} line ${catLine}: "CatalogFile = sub\\\\mydrv\\.cat"`)],
      [['--sys', otherSys, '--inf', inf], /--inf .*mydrv\.inf: \[SourceDisksFiles\] does not list other\.sys/],
      [['--sys', sys, '--inf', inf, '--out', busy], new RegExp(`--out ${busy}: exists and is not a package directory`)],
      [['--sys', sys, '--inf', inf, '--cert', join(pkiDir, 'chain.pem')], /--cert .*chain\.pem: give --key with it/],
      [['--sys', sys, '--inf', inf, '--cert', join(pkiDir, 'chain.pem'), '--key', join(pkiDir, 'ca.key')], /--key .*ca\.key: this key does not belong/],
      [['--sys', sys, '--inf', inf, '--cert', join(pkiDir, 'sign.crt'), '--key', join(pkiDir, 'sign.key')], /--cert .*sign\.crt: the chain ends at .*append the issuers/],
    ];
    for (const [args, message] of cases) {
      const r = hilbox(['package', 'windows', ...args]);
      expect(r.status, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    expect(readdirSync(busy)).toEqual(['notes.txt']);
  }, 180_000);
});
