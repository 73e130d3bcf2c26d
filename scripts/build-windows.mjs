#!/usr/bin/env zx
// Cross-builds the Windows reference driver package (guest-driver/windows) on Linux:
// hilbox.sys (x64 WDM kernel driver, MinGW-w64), Authenticode test-signed with osslsigncode,
// then packaged by the same code as `hilbox package windows` (orchestrator/src/package/, run
// in-process through tsx): hilbox.cat, the catalog hilbox.inf names, made here (SHA-256
// members for hilbox.sys and hilbox.inf), signed with osslsigncode and checked with
// `osslsigncode verify -catalog` (and a one-byte-modified copy of the .sys must fail it).
//
// Test PKI: a root CA and a code-signing certificate it issued, both valid from two days
// before they were made, in <cache>/windows/pki/ (private keys included; they never go into
// the repository or the package). Made once per cache and reused, so Windows imports the
// root once; an older cache's PKI (no pki.json: not backdated) is made again.
//
// Inputs: guest-driver/windows/*, guest-driver/include/hilbox_{uapi,regs}.h, this script, the
// packaging code (orchestrator/src/package/*, orchestrator/src/cli/commands/package.ts), the
// MinGW-w64 GCC and osslsigncode versions and the test root. Their hash is the key; the
// package lives in <cache>/windows/<key16>/ and is rebuilt only when the key changes (an
// unchanged second run is a no-op).
//
// Output: progress on stderr; the LAST STDOUT LINE is the absolute path of the package
// directory: hilbox.sys (signed), hilbox.inf, hilbox.cat (signed), hilbox-test-ca.cer (the
// root, DER) and hilbox-test-signer.cer (the signer, DER), hilbox-package.json (what the
// Windows guest flow reads), INSTALL.txt, build.json.
//
// Options: --force (rebuild even if the package exists), --help.
// Environment: HILBOX_CACHE / XDG_CACHE_HOME (cache root).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';
import { $ } from 'zx';

$.verbose = false;
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(repo, 'guest-driver', 'windows');
// the packaging code this script runs (part of the key: a change to it repackages)
const packageCode = [
  ...readdirSync(join(repo, 'orchestrator', 'src', 'package')).filter((f) => f.endsWith('.ts')).sort().map((f) => join(repo, 'orchestrator', 'src', 'package', f)),
  join(repo, 'orchestrator', 'src', 'cli', 'commands', 'package.ts'),
];
const sharedHeaders = ['hilbox_uapi.h', 'hilbox_regs.h'].map((f) => join(repo, 'guest-driver', 'include', f));
const cache = process.env.HILBOX_CACHE
  ? resolve(process.env.HILBOX_CACHE)
  : join(process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'hilbox');
const log = (msg) => process.stderr.write(`build:windows: ${msg}\n`);
const fail = (msg) => { log(`error: ${msg}`); process.exit(1); };
const args = process.argv.slice(2);
if (args.includes('--help')) {
  process.stderr.write('usage: zx scripts/build-windows.mjs [--force]\n' +
    'Builds and test-signs hilbox.sys, makes and signs hilbox.cat; prints the package directory as the last stdout line.\n');
  process.exit(0);
}
const force = args.includes('--force');
const isRoot = process.getuid?.() === 0;

// Debian packages (tell `hilbox doctor` via scripts/host-packages.json "windowsBuild").
const BUILD_DEPS = ['gcc-mingw-w64-x86-64', 'binutils-mingw-w64-x86-64', 'osslsigncode', 'openssl', 'make'];
const CC = 'x86_64-w64-mingw32-gcc';
const OBJDUMP = 'x86_64-w64-mingw32-objdump';

async function missingPackages(pkgs) {
  const fmt = '${Package} ${Status}\n';
  const r = await $`dpkg-query -W -f=${fmt} ${pkgs}`.nothrow();
  const installed = new Set(r.stdout.split('\n').filter((l) => l.endsWith('install ok installed')).map((l) => l.split(' ')[0].split(':')[0]));
  return pkgs.filter((p) => !installed.has(p));
}

async function ensureHostPackages(pkgs) {
  const missing = await missingPackages(pkgs);
  if (missing.length === 0) return;
  const line = `apt-get install -y ${missing.join(' ')}`;
  if (!isRoot) fail(`missing Debian packages; run as root:\n  ${line}`);
  log(`installing ${missing.join(' ')}`);
  const r = await $`env DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${missing}`.nothrow();
  if (r.exitCode !== 0) {
    await $`apt-get update -q`.nothrow();
    await $`env DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${missing}`.pipe(process.stderr);
  }
}

function hashInputs(toolVersions, caPem) {
  const h = createHash('sha256');
  h.update(readFileSync(fileURLToPath(import.meta.url)));
  h.update(toolVersions);
  h.update(caPem);
  for (const f of readdirSync(srcDir).filter((n) => n !== 'README.md').sort()) {
    h.update(`\0${f}\0`);
    h.update(readFileSync(join(srcDir, f)));
  }
  for (const f of sharedHeaders) h.update(readFileSync(f));
  for (const f of packageCode) {
    h.update(`\0${f.slice(repo.length)}\0`);
    h.update(readFileSync(f));
  }
  return h.digest('hex').slice(0, 16);
}

const INSTALL = `hilbox Windows driver package (test-signed)
===========================================

Files:
  hilbox.sys              x64 WDM kernel driver; embedded Authenticode signature (SHA-256)
  hilbox.inf              its INF (PCI\\VEN_1234&DEV_4842)
  hilbox.cat              the package's catalog: the SHA-256 hashes of hilbox.sys
                          (Authenticode) and hilbox.inf, signed by the test signer
  hilbox-test-ca.cer      the hilbox TEST root CA (DER)              -> Root store
  hilbox-test-signer.cer  the code-signing certificate it issued     -> TrustedPublisher store
  hilbox-package.json     what hilbox reads to install the package
The private keys stay on the Linux host that built the package (<cache>/windows/pki/).
Both certificates are valid from two days before they were made.

On the Windows 10/11 x64 machine, in an elevated command prompt in this directory:

1. Test signing (Secure Boot must be off), then reboot:
     bcdedit /set testsigning on
2. Trust the test root and the signer:
     certutil -addstore Root hilbox-test-ca.cer
     certutil -addstore TrustedPublisher hilbox-test-signer.cer
3. Add the package to the driver store and install it on the device:
     pnputil /add-driver hilbox.inf /install

The device then appears as \\\\.\\Hilbox0 and through the interface
{a1c04ace-9862-4389-80ff-26e12b4e9149}, accessible to SYSTEM and Administrators only.
To remove it: pnputil /enum-drivers (find the oemNN.inf whose original name is
hilbox.inf), then pnputil /delete-driver oemNN.inf /uninstall.
`;

await ensureHostPackages(BUILD_DEPS);
const gccVersion = (await $`${CC} -dumpfullversion`).stdout.trim();
const osslVersion = ((await $`osslsigncode --version`.nothrow()).stdout.split('\n')[0] ?? '').replace(/,.*$/, '').trim();
log(`${CC} ${gccVersion}, ${osslVersion}`);

// the packaging code is TypeScript: load it through tsx, as bin/hilbox.js does
register();
const { ensureTestPki } = await import('../orchestrator/src/package/pki.ts');
const { packageWindowsCommand } = await import('../orchestrator/src/cli/commands/package.ts');
const pkiDir = join(cache, 'windows', 'pki');
const pki = await ensureTestPki({ dir: pkiDir, log });
const caPem = readFileSync(pki.rootCert, 'utf8');
const key = hashInputs(`${gccVersion}\n${osslVersion}\n`, caPem);
const outDir = join(cache, 'windows', key);
const complete = ['build.json', 'hilbox.sys', 'hilbox.cat', 'hilbox-package.json'].every((f) => existsSync(join(outDir, f)));
if (!force && complete) {
  log(`up to date (key ${key})`);
  rmSync(join(outDir, '.last-used'), { force: true }); // an older hilbox stamped use inside the package; stamps now lie beside it
  console.log(outDir);
  process.exit(0);
}

const tmp = `${outDir}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
mkdirSync(join(tmp, 'obj'), { recursive: true });
log('compiling hilbox.sys (-Wall -Wextra -Werror)');
const mk = await $`make -C ${srcDir} OUT=${join(tmp, 'obj')}`.nothrow();
if (mk.exitCode !== 0) {
  process.stderr.write(mk.stdout + mk.stderr);
  rmSync(tmp, { recursive: true, force: true });
  fail('make failed (output above)');
}
const unsigned = join(tmp, 'obj', 'hilbox.sys');

// The hand-built SEH scope (seh.c) must be the image's only language-specific handler.
const dump = (await $`${OBJDUMP} -x ${unsigned}`).stdout;
const handlers = dump.split('\n').filter((l) => l.includes('UNW_FLAG_EHANDLER')).length;
if (handlers !== 1) fail(`expected exactly one UNW_FLAG_EHANDLER unwind entry (seh.c), found ${handlers}`);
const dlls = [...dump.matchAll(/DLL Name: (\S+)/g)].map((m) => m[1]);
if (dlls.some((d) => !['ntoskrnl.exe', 'HAL.dll'].includes(d))) fail(`unexpected imports from ${dlls.join(', ')}`);

log('test-signing hilbox.sys (SHA-256, page hashes)');
mkdirSync(join(tmp, 'signed'));
const signedSys = join(tmp, 'signed', 'hilbox.sys');
const sign = await $`osslsigncode sign -certs ${pki.chain} -key ${pki.signerKey} -h sha256 -ph -n ${'hilbox-pci reference driver (TEST)'} -in ${unsigned} -out ${signedSys}`.nothrow();
if (sign.exitCode !== 0) { process.stderr.write(sign.stdout + sign.stderr); fail('osslsigncode sign failed'); }
const verify = await $`osslsigncode verify -CAfile ${pki.rootCert} -in ${signedSys}`.nothrow();
if (verify.exitCode !== 0) { process.stderr.write(verify.stdout + verify.stderr); fail('osslsigncode verify failed'); }

// the package: hilbox.sys, hilbox.inf, hilbox.cat (made, signed, verified), both certificates, hilbox-package.json
log('making and signing hilbox.cat');
const pkgDir = join(tmp, 'package');
let result;
try {
  result = await packageWindowsCommand({ sys: signedSys, inf: join(srcDir, 'hilbox.inf'), out: pkgDir, pkiDir }, log);
} catch (e) {
  rmSync(tmp, { recursive: true, force: true });
  fail(`packaging failed: ${e instanceof Error ? e.message : String(e)}`);
}
writeFileSync(join(pkgDir, 'INSTALL.txt'), INSTALL);
const sha256 = (f) => createHash('sha256').update(readFileSync(join(pkgDir, f))).digest('hex');
writeFileSync(join(pkgDir, 'build.json'), JSON.stringify({
  key, gcc: gccVersion, osslsigncode: osslVersion,
  sha256: Object.fromEntries(['hilbox.sys', 'hilbox.inf', result.manifest.cat].map((f) => [f, sha256(f)])),
  imports: dlls,
  catalog: { file: result.manifest.cat, os: result.catalog.os, osAttr: result.catalog.osAttr, members: result.catalog.members,
    signer: result.catalog.signer, root: result.catalog.root, verified: result.checks.verify, tamperedCopyRejected: result.checks.tamperedCopyRejected },
  certificates: { root: result.manifest.rootCert, signer: result.manifest.signerCert },
  pki: pkiDir, builtAt: new Date().toISOString(),
}, null, 2) + '\n');
rmSync(outDir, { recursive: true, force: true });
renameSync(pkgDir, outDir);
rmSync(tmp, { recursive: true, force: true });
writeFileSync(join(cache, 'windows', 'current'), outDir + '\n');
log(`built and signed hilbox.sys and hilbox.cat (key ${key})`);
console.log(outDir);
