/**
 * Signing a catalog and checking a file against it with osslsigncode (Debian's osslsigncode
 * 2.x): `sign` wraps the catalog's trust list in a SHA-256 SignedData by the signer, `verify
 * -catalog` recomputes the file's Authenticode digest, looks it up among the catalog's
 * members and verifies the catalog's signature up to the given root. A missing tool is an
 * InfraError with the apt-get line. One job: osslsigncode.
 */
import { execa } from 'execa';
import { InfraError } from '../core/errors.ts';

export interface ToolResult {
  ok: boolean;
  exitCode: number | undefined;
  /** stdout and stderr, interleaved as printed. */
  output: string;
}

async function osslsigncode(args: readonly string[]): Promise<ToolResult> {
  const r = await execa('osslsigncode', args, { reject: false, all: true, stdin: 'ignore', env: { LC_ALL: 'C' } });
  if ((r as { code?: string }).code === 'ENOENT') throw new InfraError('osslsigncode is not installed; run as root: apt-get install -y osslsigncode');
  return { ok: r.exitCode === 0, exitCode: r.exitCode, output: String(r.all ?? '') };
}

/** "osslsigncode 2.9" (first line of --version). */
export async function osslsigncodeVersion(): Promise<string> {
  const r = await osslsigncode(['--version']);
  return (r.output.split('\n')[0] ?? '').replace(/,.*$/, '').trim();
}

export interface SignCatalogOptions {
  /** The unsigned catalog. */
  in: string;
  /** Where the signed catalog goes. */
  out: string;
  /** PEM: the signer certificate first, then its issuers (embedded in the signature). */
  certs: string;
  /** PEM private key of the signer (unencrypted). */
  key: string;
}

/** Signs a catalog (SHA-256); an InfraError with osslsigncode's words when it refuses. */
export async function signCatalog(o: SignCatalogOptions): Promise<void> {
  const r = await osslsigncode(['sign', '-certs', o.certs, '-key', o.key, '-h', 'sha256', '-in', o.in, '-out', o.out]);
  if (!r.ok) throw new InfraError(`osslsigncode sign ${o.in} failed (exit ${r.exitCode}):\n${r.output.trim()}`);
}

export interface VerifyCatalogOptions {
  catalog: string;
  /** The PE file to look up in the catalog. */
  file: string;
  /** PEM of the trusted root. */
  caFile: string;
}

/**
 * `osslsigncode verify -CAfile root -catalog cat -in file`: ok when the file's Authenticode
 * digest is a member of the catalog and the catalog's signature chains to the root.
 */
export async function verifyAgainstCatalog(o: VerifyCatalogOptions): Promise<ToolResult & { digest: string | undefined }> {
  const r = await osslsigncode(['verify', '-CAfile', o.caFile, '-catalog', o.catalog, '-in', o.file]);
  const ok = r.ok && /^Signature verification: ok$/m.test(r.output);
  const digest = /^Calculated message digest\s*:\s*([0-9A-F]+)/m.exec(r.output)?.[1];
  return { ...r, ok, digest };
}
