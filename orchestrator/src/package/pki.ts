/**
 * Certificates for signing a driver package: the project's test PKI — a root CA and a separate
 * code-signing certificate it issued, both valid from two days before they were made (a guest
 * whose clock runs a timezone or a day behind still accepts them), made once per cache with
 * `openssl ca` (OpenSSL 3.0's `req -x509`/`x509 -req` cannot backdate) — and reading a user's
 * signer (certificate chain + key) for `hilbox package windows --cert --key`. Private keys stay
 * in <cache>/windows/pki/. One job: signer certificates.
 */
import { createPrivateKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { InfraError, UsageError } from '../core/errors.ts';
import { cacheRoot } from '../core/paths.ts';

/** The pki.json schema; a PKI without it (made before backdating and the root/signer split) is made again. */
export const PKI_SCHEMA = 'hilbox-test-pki/2';
/** How far before their creation the test certificates become valid. */
export const BACKDATE_HOURS = 48;
/** extendedKeyUsage codeSigning */
export const EKU_CODE_SIGNING = '1.3.6.1.5.5.7.3.3';
const ROOT_DAYS = 3650;
const SIGNER_DAYS = 1825;

export interface TestPki {
  dir: string;
  /** PEM of the root CA (and its key, which never leaves the cache). */
  rootCert: string;
  rootKey: string;
  /** PEM of the code-signing certificate and its key. */
  signerCert: string;
  signerKey: string;
  /** signer + root, PEM: what osslsigncode embeds. */
  chain: string;
}

/** <cache>/windows/pki */
export function testPkiDir(): string {
  return join(cacheRoot(), 'windows', 'pki');
}

function files(dir: string): TestPki {
  return {
    dir,
    rootCert: join(dir, 'ca.crt'),
    rootKey: join(dir, 'ca.key'),
    signerCert: join(dir, 'sign.crt'),
    signerKey: join(dir, 'sign.key'),
    chain: join(dir, 'chain.pem'),
  };
}

/** Certificates of a PEM file, in file order. */
export function readPemCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

const notBefore = (c: X509Certificate): Date => new Date(c.validFrom);
const notAfter = (c: X509Certificate): Date => new Date(c.validTo);
const selfSigned = (c: X509Certificate): boolean => c.checkIssued(c) && c.verify(c.publicKey);
const issuedBy = (c: X509Certificate, issuer: X509Certificate): boolean => c.checkIssued(issuer) && c.verify(issuer.publicKey);
/** A certificate without extendedKeyUsage may sign code; with one it must list codeSigning. */
const maySignCode = (c: X509Certificate): boolean => !c.keyUsage || c.keyUsage.includes(EKU_CODE_SIGNING);

/** Why the test PKI in `dir` has to be made (again), or undefined when it is fine. */
export function testPkiProblem(dir: string, now: Date = new Date()): string | undefined {
  const f = files(dir);
  const manifest = join(dir, 'pki.json');
  for (const p of [f.rootCert, f.rootKey, f.signerCert, f.signerKey, f.chain]) if (!existsSync(p)) return `${p} is missing`;
  if (!existsSync(manifest)) return 'it predates the backdated root + signer PKI (no pki.json)';
  try {
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as { schema?: unknown };
    if (m.schema !== PKI_SCHEMA) return `pki.json schema ${String(m.schema)} is not ${PKI_SCHEMA}`;
    const [root] = readPemCertificates(readFileSync(f.rootCert, 'utf8'));
    const [signer] = readPemCertificates(readFileSync(f.signerCert, 'utf8'));
    if (!root || !signer) return 'a certificate file holds no certificate';
    if (!root.ca || !selfSigned(root)) return 'ca.crt is not a self-signed CA';
    if (signer.ca || !issuedBy(signer, root)) return 'sign.crt is not an end-entity certificate issued by ca.crt';
    if (!signer.keyUsage?.includes(EKU_CODE_SIGNING)) return 'sign.crt lacks the code-signing EKU';
    if (!signer.checkPrivateKey(createPrivateKey(readFileSync(f.signerKey)))) return 'sign.key does not belong to sign.crt';
    const latest = now.getTime() - (BACKDATE_HOURS - 1) * 3600_000;
    for (const [name, c] of [['ca.crt', root], ['sign.crt', signer]] as const) {
      if (notBefore(c).getTime() > latest) return `${name} is valid only from ${c.validFrom} (not backdated ${BACKDATE_HOURS} h)`;
      if (notAfter(c).getTime() < now.getTime() + 30 * 86400_000) return `${name} expires on ${c.validTo}`;
    }
  } catch (e) {
    return `it cannot be read (${(e as Error).message})`;
  }
  return undefined;
}

/** openssl's -startdate/-enddate form (UTCTime). */
function opensslTime(d: Date): string {
  return d.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');
}

const CA_CONFIG = `# openssl ca configuration for the hilbox test PKI (made by orchestrator/src/package/pki.ts)
[ ca ]
default_ca = hilbox_test_ca

[ hilbox_test_ca ]
dir            = .
database       = $dir/index.txt
new_certs_dir  = $dir/issued
serial         = $dir/serial
default_md     = sha256
policy         = policy_any
unique_subject = no
copy_extensions = none
email_in_dn    = no

[ policy_any ]
organizationName = optional
commonName       = supplied

[ v3_root ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ v3_signer ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = codeSigning
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
`;

async function openssl(cwd: string, args: readonly string[]): Promise<void> {
  const r = await execa('openssl', args, { cwd, reject: false, all: true, stdin: 'ignore' });
  if ((r as { code?: string }).code === 'ENOENT') throw new InfraError('openssl is not installed; run as root: apt-get install -y openssl');
  if (r.exitCode !== 0) throw new InfraError(`openssl ${args[0]} failed (exit ${r.exitCode}) making the test PKI:\n${String(r.all ?? '').trim()}`);
}

/** Makes a fresh test PKI in `dir` (replacing what is there). */
export async function createTestPki(dir: string, now: Date = new Date()): Promise<TestPki> {
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'issued'), { recursive: true, mode: 0o700 });
  try {
    const start = opensslTime(new Date(now.getTime() - BACKDATE_HOURS * 3600_000));
    const days = (n: number) => opensslTime(new Date(now.getTime() + n * 86400_000));
    writeFileSync(join(tmp, 'ca.cnf'), CA_CONFIG);
    writeFileSync(join(tmp, 'index.txt'), '');
    // random positive 64-bit serial (openssl ca increments it for the signer)
    const serial = randomBytes(8);
    serial[0] = (serial[0]! & 0x3f) | 0x10;
    writeFileSync(join(tmp, 'serial'), `${serial.toString('hex').toUpperCase()}\n`);
    const day = now.toISOString().slice(0, 10);
    const common = ['-batch', '-notext', '-preserveDN', '-config', 'ca.cnf', '-startdate', start];
    await openssl(tmp, ['req', '-new', '-newkey', 'rsa:3072', '-nodes', '-keyout', 'ca.key', '-out', 'ca.csr', '-subj', `/O=hilbox/CN=hilbox TEST root CA ${day} (not trusted)`]);
    await openssl(tmp, ['ca', ...common, '-selfsign', '-keyfile', 'ca.key', '-in', 'ca.csr', '-enddate', days(ROOT_DAYS), '-extensions', 'v3_root', '-out', 'ca.crt']);
    await openssl(tmp, ['req', '-new', '-newkey', 'rsa:3072', '-nodes', '-keyout', 'sign.key', '-out', 'sign.csr', '-subj', '/O=hilbox/CN=hilbox TEST driver signing']);
    await openssl(tmp, ['ca', ...common, '-cert', 'ca.crt', '-keyfile', 'ca.key', '-in', 'sign.csr', '-enddate', days(SIGNER_DAYS), '-extensions', 'v3_signer', '-out', 'sign.crt']);
    writeFileSync(join(tmp, 'chain.pem'), readFileSync(join(tmp, 'sign.crt'), 'utf8') + readFileSync(join(tmp, 'ca.crt'), 'utf8'));
    for (const k of ['ca.key', 'sign.key']) chmodSync(join(tmp, k), 0o600);
    for (const junk of ['ca.csr', 'sign.csr', 'ca.cnf', 'index.txt', 'index.txt.attr', 'index.txt.old', 'index.txt.attr.old', 'serial', 'serial.old', 'issued']) {
      rmSync(join(tmp, junk), { recursive: true, force: true });
    }
    writeFileSync(join(tmp, 'pki.json'), `${JSON.stringify({ schema: PKI_SCHEMA, createdAt: now.toISOString(), validFrom: new Date(now.getTime() - BACKDATE_HOURS * 3600_000).toISOString(), root: 'ca.crt', signer: 'sign.crt', chain: 'chain.pem' }, null, 2)}\n`);
    const problem = testPkiProblem(tmp, now);
    if (problem) throw new InfraError(`the freshly made test PKI is not right: ${problem}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, '..'), { recursive: true });
    renameSync(tmp, dir);
    return files(dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The project's test PKI in `dir` (default <cache>/windows/pki), made on first use and made
 * again when testPkiProblem finds it outdated (e.g. an older cache's PKI without backdating).
 */
export async function ensureTestPki(opts: { dir?: string; now?: Date; log?: (line: string) => void } = {}): Promise<TestPki & { created: boolean }> {
  const dir = opts.dir ?? testPkiDir();
  const problem = testPkiProblem(dir, opts.now);
  if (!problem) return { ...files(dir), created: false };
  opts.log?.(existsSync(dir) ? `making the test PKI in ${dir} again: ${problem}` : `making the test PKI (root CA + code-signing certificate) in ${dir}`);
  return { ...(await createTestPki(dir, opts.now)), created: true };
}

export interface Signer {
  /** The file holding the signer certificate followed by its issuers (what osslsigncode -certs takes). */
  chainFile: string;
  keyFile: string;
  signer: X509Certificate;
  /** The self-signed root the chain ends in (the signer itself when it is self-signed). */
  root: X509Certificate;
  key: KeyObject;
}

/**
 * Reads and checks a signer: `certFile` holds the signer certificate first, then its issuers up
 * to a self-signed root; `keyFile` the signer's unencrypted private key. Problems are
 * UsageErrors naming the option (`certLabel`, `keyLabel`).
 */
export function loadSigner(certFile: string, keyFile: string, certLabel: string, keyLabel: string, now: Date = new Date()): Signer {
  if (!existsSync(certFile)) throw new UsageError(`${certLabel}: no such file`);
  if (!existsSync(keyFile)) throw new UsageError(`${keyLabel}: no such file`);
  let chain: X509Certificate[];
  try {
    chain = readPemCertificates(readFileSync(certFile, 'utf8'));
  } catch (e) {
    throw new UsageError(`${certLabel}: not a PEM certificate file (${(e as Error).message})`);
  }
  if (chain.length === 0) throw new UsageError(`${certLabel}: no "-----BEGIN CERTIFICATE-----" block (give the signer certificate, then its issuers up to the root, in PEM)`);
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(keyFile));
  } catch (e) {
    throw new UsageError(`${keyLabel}: not an unencrypted PEM/DER private key (${(e as Error).message})`);
  }
  const signer = chain[0]!;
  if (!signer.checkPrivateKey(key)) throw new UsageError(`${keyLabel}: this key does not belong to the first certificate of ${certLabel} (${signer.subject.replace(/\n/g, ', ')})`);
  if (!maySignCode(signer)) throw new UsageError(`${certLabel}: the signer certificate's extendedKeyUsage lacks codeSigning`);
  if (notBefore(signer) > now || notAfter(signer) < now) throw new UsageError(`${certLabel}: the signer certificate is valid from ${signer.validFrom} to ${signer.validTo}, not now`);
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!issuedBy(chain[i]!, chain[i + 1]!)) throw new UsageError(`${certLabel}: certificate ${i + 1} (${chain[i]!.subject.replace(/\n/g, ', ')}) is not issued by certificate ${i + 2}; order the file signer first, root last`);
  }
  const root = chain.at(-1)!;
  if (!selfSigned(root)) {
    throw new UsageError(`${certLabel}: the chain ends at ${root.subject.replace(/\n/g, ', ')}, issued by ${root.issuer.replace(/\n/g, ', ')}; append the issuers up to the self-signed root (the package ships the root for the Root store)`);
  }
  return { chainFile: certFile, keyFile, signer, root, key };
}
