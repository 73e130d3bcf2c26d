#!/usr/bin/env zx
// Cross-compiles the Windows probe hilbox-probe.exe with mingw-w64: the probe core
// (guest-probe/common) and the Windows primitives (guest-probe/windows), a static x86_64
// console executable, -Wall -Wextra -Werror. The compiler (Debian package
// gcc-mingw-w64-x86-64) is installed when missing and we are root.
//
// The IOCTL codes and the MAP_FB structs come from the Windows driver's own header
// (guest-driver/windows/hilbox_ioctl.h), the ABI structs from guest-driver/include.
//
// The result is cached under <cache>/windows-probe/<key16>/, keyed by the sources of both
// probe directories, the two header directories, the compiler version, the flags and this
// script, so an unchanged second run is a no-op. Progress goes to stderr; the LAST
// STDOUT LINE is the absolute path of hilbox-probe.exe.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { $ } from 'zx';
import { spawnSync } from 'node:child_process';
import { ensureDebianPackages } from './lib/debian.mjs';

$.verbose = false;
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cache = process.env.HILBOX_CACHE
  ? resolve(process.env.HILBOX_CACHE)
  : join(process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'hilbox');
const log = (msg) => process.stderr.write(`build:windows-probe: ${msg}\n`);
const fail = (msg) => { log(`error: ${msg}`); process.exit(1); };

const CC = 'x86_64-w64-mingw32-gcc';
const PACKAGE = 'gcc-mingw-w64-x86-64';
const SRC_DIRS = [join(repo, 'guest-probe', 'common'), join(repo, 'guest-probe', 'windows')];
const INCLUDE_DIRS = [join(repo, 'guest-driver', 'include'), join(repo, 'guest-driver', 'windows')];
const CFLAGS = ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-Werror', '-D__USE_MINGW_ANSI_STDIO=1', '-D_WIN32_WINNT=0x0A00', '-static', '-s'];

function ensureCompiler() {
  if ((spawnSync('sh', ['-c', `command -v ${CC}`]).status ?? 1) === 0) return;
  ensureDebianPackages([PACKAGE], { log, fail });
}

/** Every file the build reads, in a stable order. */
function inputs() {
  const files = [];
  for (const d of SRC_DIRS) {
    for (const f of readdirSync(d).filter((x) => /\.[ch]$/.test(x)).sort()) files.push(join(d, f));
  }
  for (const d of INCLUDE_DIRS) {
    for (const f of readdirSync(d).filter((x) => x.endsWith('.h')).sort()) files.push(join(d, f));
  }
  files.push(fileURLToPath(import.meta.url));
  return files;
}

await ensureCompiler();
const ccVersion = (await $`${CC} --version`).stdout.split('\n')[0];
const hash = createHash('sha256').update(ccVersion).update(JSON.stringify(CFLAGS));
for (const f of inputs()) hash.update(f.slice(repo.length)).update(readFileSync(f));
const key = hash.digest('hex').slice(0, 16);
const outDir = join(cache, 'windows-probe', key);
const outExe = join(outDir, 'hilbox-probe.exe');

if (existsSync(join(outDir, 'build.json')) && existsSync(outExe)) {
  log(`up to date (key ${key})`);
  rmSync(join(outDir, '.last-used'), { force: true }); // an older hilbox stamped use inside the package; stamps now lie beside it
  console.log(outExe);
  process.exit(0);
}

const tmp = `${outDir}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });
log(`compiling with ${ccVersion}`);
const sources = SRC_DIRS.flatMap((d) => readdirSync(d).filter((x) => x.endsWith('.c')).sort().map((f) => join(d, f)));
const incs = [...SRC_DIRS, ...INCLUDE_DIRS].flatMap((d) => ['-I', d]);
const r = await $`${CC} ${CFLAGS} ${incs} -o ${join(tmp, 'hilbox-probe.exe')} ${sources} -ladvapi32`.nothrow();
if (r.exitCode !== 0) {
  rmSync(tmp, { recursive: true, force: true });
  fail(`compilation failed:\n${(r.stderr + r.stdout).trim().split('\n').slice(-40).join('\n')}`);
}
writeFileSync(join(tmp, 'build.json'), JSON.stringify({ key, compiler: ccVersion, cflags: CFLAGS, builtAt: new Date().toISOString() }, null, 2) + '\n');
mkdirSync(dirname(outDir), { recursive: true });
rmSync(outDir, { recursive: true, force: true });
renameSync(tmp, outDir);
log(`built ${outExe} (key ${key})`);
console.log(outExe);
