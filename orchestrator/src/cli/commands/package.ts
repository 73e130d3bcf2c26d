/**
 * `hilbox package windows --sys X.sys --inf X.inf [--out DIR] [--cert signer.pem --key signer.key]`
 *
 * Makes a driver package pnputil installs unattended on a test-signing Windows: DIR gets the
 * .sys and .inf, the catalog the INF's CatalogFile names (made here, signed with osslsigncode,
 * checked with `osslsigncode verify -catalog`), the root and signer certificates as DER .cer
 * files and hilbox-package.json, which the Windows guest flow reads. Without --cert/--key the
 * project's test PKI signs (<cache>/windows/pki/, made on first use); --cert is a PEM file with
 * the signer certificate first and its issuers up to the self-signed root after it. Bad input
 * is a UsageError naming the option (exit 2). scripts/build-windows.mjs packages hilbox.sys
 * through this same function.
 */
import { basename, resolve } from 'node:path';
import { UsageError } from '../../core/errors.ts';
import { ensureTestPki, loadSigner } from '../../package/pki.ts';
import { makeWindowsPackage, type WindowsPackageResult } from '../../package/windows-package.ts';

export interface PackageWindowsOptions {
  sys?: string;
  inf?: string;
  out?: string;
  cert?: string;
  key?: string;
  /** The test PKI used without --cert/--key (default <cache>/windows/pki; not a CLI option). */
  pkiDir?: string;
}

/** Certificate file names in a package signed by the project's test PKI. */
export const TEST_ROOT_CER = 'hilbox-test-ca.cer';
export const TEST_SIGNER_CER = 'hilbox-test-signer.cer';

export async function packageWindowsCommand(o: PackageWindowsOptions, log: (line: string) => void = () => {}): Promise<WindowsPackageResult> {
  if (!o.sys) throw new UsageError('hilbox package windows: --sys is required (the driver image, e.g. --sys build/mydriver.sys)');
  if (!o.inf) throw new UsageError('hilbox package windows: --inf is required (the driver\'s INF, e.g. --inf build/mydriver.inf)');
  if (Boolean(o.cert) !== Boolean(o.key)) {
    throw new UsageError(o.cert ? `--cert ${o.cert}: give --key with it (the signer's private key)` : `--key ${o.key}: give --cert with it (the signer certificate and its chain, PEM)`);
  }
  const out = resolve(o.out ?? `${basename(o.sys).replace(/\.[^.]*$/, '')}-package`);
  let signer;
  let names: { root: string; signer: string };
  if (o.cert && o.key) {
    signer = loadSigner(o.cert, o.key, `--cert ${o.cert}`, `--key ${o.key}`);
    names = { root: 'root.cer', signer: 'signer.cer' };
  } else {
    const pki = await ensureTestPki({ log, ...(o.pkiDir ? { dir: o.pkiDir } : {}) });
    signer = loadSigner(pki.chain, pki.signerKey, pki.chain, pki.signerKey);
    names = { root: TEST_ROOT_CER, signer: TEST_SIGNER_CER };
  }
  return makeWindowsPackage({ sys: o.sys, inf: o.inf, out, signer, rootCertName: names.root, signerCertName: names.signer, log });
}
