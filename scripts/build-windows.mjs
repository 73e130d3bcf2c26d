#!/usr/bin/env zx
// Cross-builds the Windows reference driver package (guest-driver/windows) on Linux:
// hilbox.sys (x64 WDM kernel driver, MinGW-w64), test-signed with osslsigncode using a
// test CA + code-signing certificate generated here with openssl, plus hilbox.inf.
//
// Inputs: guest-driver/windows/*, guest-driver/include/hilbox_{uapi,regs}.h, this script, the
// MinGW-w64 GCC and osslsigncode versions and the test CA. Their hash is the key; the
// package lives in <cache>/windows/<key16>/ and is rebuilt only when the key changes
// (an unchanged second run is a no-op). The test PKI (private keys included) lives in
// <cache>/windows/pki/ and is reused by later builds, so the CA is imported on Windows
// once; keys never go into the repository or the package.
//
// Output: progress on stderr; the LAST STDOUT LINE is the absolute path of the package
// directory: hilbox.sys (signed), hilbox.inf, hilbox-test-ca.cer (DER, to import on the
// Windows side), INSTALL.txt, build.json.
//
// Options: --force (rebuild even if the package exists), --help.
// Environment: HILBOX_CACHE / XDG_CACHE_HOME (cache root).
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { $ } from 'zx';

$.verbose = false;
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(repo, 'guest-driver', 'windows');
const sharedHeaders = ['hilbox_uapi.h', 'hilbox_regs.h'].map((f) => join(repo, 'guest-driver', 'include', f));
const cache = process.env.HILBOX_CACHE
  ? resolve(process.env.HILBOX_CACHE)
  : join(process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'hilbox');
const log = (msg) => process.stderr.write(`build:windows: ${msg}\n`);
const fail = (msg) => { log(`error: ${msg}`); process.exit(1); };
const args = process.argv.slice(2);
if (args.includes('--help')) {
  process.stderr.write('usage: zx scripts/build-windows.mjs [--force]\n' +
    'Builds and test-signs hilbox.sys; prints the package directory as the last stdout line.\n');
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

/** Test PKI: a CA and a code-signing leaf it issued; generated once per cache. */
async function ensurePki(dir) {
  const files = ['ca.key', 'ca.crt', 'sign.key', 'sign.crt', 'chain.pem'];
  if (files.every((f) => existsSync(join(dir, f)))) return;
  log(`generating the test CA and code-signing certificate in ${dir}`);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  const day = new Date().toISOString().slice(0, 10);
  const caSubj = `/O=hilbox/CN=hilbox TEST driver CA ${day} (not trusted)`;
  await $({ cwd: tmp })`openssl req -x509 -newkey rsa:3072 -sha256 -days 3650 -nodes -keyout ca.key -out ca.crt -subj ${caSubj} -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -addext subjectKeyIdentifier=hash`;
  writeFileSync(join(tmp, 'leaf.ext'), [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=codeSigning',
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid',
    '',
  ].join('\n'));
  await $({ cwd: tmp })`openssl req -newkey rsa:3072 -sha256 -nodes -keyout sign.key -out sign.csr -subj ${'/O=hilbox/CN=hilbox TEST driver signing'}`;
  await $({ cwd: tmp })`openssl x509 -req -in sign.csr -CA ca.crt -CAkey ca.key -set_serial ${'0x' + createHash('sha256').update(String(Date.now())).digest('hex').slice(0, 16)} -days 1825 -sha256 -extfile leaf.ext -out sign.crt`;
  writeFileSync(join(tmp, 'chain.pem'), readFileSync(join(tmp, 'sign.crt'), 'utf8') + readFileSync(join(tmp, 'ca.crt'), 'utf8'));
  await $`chmod 0600 ${join(tmp, 'ca.key')} ${join(tmp, 'sign.key')}`;
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
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
  return h.digest('hex').slice(0, 16);
}

const INSTALL = `hilbox Windows driver package (test-signed)
===========================================

Files: hilbox.sys (x64, embedded Authenticode signature by the hilbox TEST CA),
hilbox.inf, hilbox-test-ca.cer (the CA certificate, DER). There is no hilbox.cat:
catalogs cannot be created on Linux (no makecat/Inf2Cat; osslsigncode only signs or
verifies existing catalogs).

On the Windows 10/11 x64 guest, elevated:

1. Test mode (Secure Boot must be off):   bcdedit /set testsigning on   then reboot
2. Trust the test CA:
     certutil -addstore Root hilbox-test-ca.cer
     certutil -addstore TrustedPublisher hilbox-test-ca.cer
3. Catalog (pnputil /add-driver needs a signed catalog), either
     a) with the WDK:  Inf2Cat /driver:. /os:10_X64
                       signtool sign /fd sha256 /f <pfx of the signing key> hilbox.cat
     b) without it:    New-FileCatalog -Path . -CatalogFilePath hilbox.cat -CatalogVersion 2
                       then sign hilbox.cat (signtool, or on Linux:
                       osslsigncode sign -certs chain.pem -key sign.key -h sha256 -in hilbox.cat -out hilbox-signed.cat)
   The signing key/cert are in the build cache on the Linux host (<cache>/windows/pki/).
4. pnputil /add-driver hilbox.inf /install
   (without a catalog: Device Manager > Update driver > Have Disk accepts the package
   after an "unsigned driver" warning in test mode; the kernel still checks the
   embedded signature of hilbox.sys.)

The device then appears as \\\\.\\Hilbox0 and through the interface
{a1c04ace-9862-4389-80ff-26e12b4e9149}, accessible to SYSTEM and Administrators only.
`;

await ensureHostPackages(BUILD_DEPS);
const gccVersion = (await $`${CC} -dumpfullversion`).stdout.trim();
const osslVersion = ((await $`osslsigncode --version`.nothrow()).stdout.split('\n')[0] ?? '').replace(/,.*$/, '').trim();
log(`${CC} ${gccVersion}, ${osslVersion}`);

const pki = join(cache, 'windows', 'pki');
await ensurePki(pki);
const caPem = readFileSync(join(pki, 'ca.crt'), 'utf8');
const key = hashInputs(`${gccVersion}\n${osslVersion}\n`, caPem);
const outDir = join(cache, 'windows', key);
const outSys = join(outDir, 'hilbox.sys');
if (!force && existsSync(join(outDir, 'build.json')) && existsSync(outSys)) {
  log(`up to date (key ${key})`);
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
const sign = await $`osslsigncode sign -certs ${join(pki, 'chain.pem')} -key ${join(pki, 'sign.key')} -h sha256 -ph -n ${'hilbox-pci reference driver (TEST)'} -in ${unsigned} -out ${join(tmp, 'hilbox.sys')}`.nothrow();
if (sign.exitCode !== 0) { process.stderr.write(sign.stdout + sign.stderr); fail('osslsigncode sign failed'); }
const verify = await $`osslsigncode verify -CAfile ${join(pki, 'ca.crt')} -in ${join(tmp, 'hilbox.sys')}`.nothrow();
if (verify.exitCode !== 0) { process.stderr.write(verify.stdout + verify.stderr); fail('osslsigncode verify failed'); }

copyFileSync(join(srcDir, 'hilbox.inf'), join(tmp, 'hilbox.inf'));
await $`openssl x509 -in ${join(pki, 'ca.crt')} -outform DER -out ${join(tmp, 'hilbox-test-ca.cer')}`;
writeFileSync(join(tmp, 'INSTALL.txt'), INSTALL);
rmSync(join(tmp, 'obj'), { recursive: true, force: true });
const sysHash = createHash('sha256').update(readFileSync(join(tmp, 'hilbox.sys'))).digest('hex');
writeFileSync(join(tmp, 'build.json'), JSON.stringify({
  key, gcc: gccVersion, osslsigncode: osslVersion, sha256: { 'hilbox.sys': sysHash },
  imports: dlls, catalog: null, pki, builtAt: new Date().toISOString(),
}, null, 2) + '\n');
rmSync(outDir, { recursive: true, force: true });
renameSync(tmp, outDir);
writeFileSync(join(cache, 'windows', 'current'), outDir + '\n');
log(`built and signed hilbox.sys (key ${key})`);
console.log(outDir);
