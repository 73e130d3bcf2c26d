#!/usr/bin/env zx
// Builds QEMU 7.2 (x86_64-softmmu, TCG + KVM, slirp, no docs) with the hilbox-pci device.
//
// Source: $HILBOX_QEMU_SRC (an unpacked source tree or a .tar.* tarball), else Debian's
// source package `qemu` (a deb-src entry is added when missing). The result is cached under
// <cache>/qemu/<key>/, keyed by the QEMU version, the device sources (DEVICE_FILES: the device,
// the register header it shares with the guest drivers, the device list qemu-device/devices.mak;
// the helper programs HELPERS, compiled into bin/),
// the QEMU patches, the configure flags and this script, so an unchanged
// second run is a no-op; a changed device file recompiles only what includes it (the source
// and build tree persist). Progress goes to stderr; the LAST STDOUT LINE is the absolute path
// of the built qemu-system-x86_64.
//
// `--explain` prints why the next build would compile (which input changed since the last
// build), building nothing.
//
// `--sanitizers` (or HILBOX_QEMU_SANITIZE=1) builds a second, separately cached QEMU with
// AddressSanitizer + UBSan (QEMU's own configure option --enable-sanitizers), same minimal
// configuration, in its own build directory of the same source tree (build-sanitizers/) and
// under its own cache key; only qemu-system-x86_64 is built, and <cache>/qemu/current is left
// alone (the sanitizer binary's path goes to <cache>/qemu/current-sanitizers). The seeded
// device fuzz (test/device/fuzz.test.ts, `npm run fuzz`) runs it.
//
// QEMU_PATCHES (qemu-device/patches/*.patch, in name order) fix bugs of QEMU 7.2 itself that
// hilbox runs into; qemu-device/patches/README.md says what each one fixes and how it was seen.
// They are applied to the persistent tree after Debian's own patches, are inputs of the key, and
// a changed set is undone and applied again (the build directories stay; only what the patches
// touch recompiles).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, copyFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { $ } from 'zx';
import { ensureDebianPackages } from './lib/debian.mjs';
import { precompileOsdep } from './lib/qemu-pch.mjs';
import { secondsLeft } from './lib/ninja-eta.mjs';

$.verbose = false;
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cache = process.env.HILBOX_CACHE
  ? resolve(process.env.HILBOX_CACHE)
  : join(process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'hilbox');
const log = (msg) => process.stderr.write(`build:qemu: ${msg}\n`);
const fail = (msg) => { log(`error: ${msg}`); process.exit(1); };

const isRoot = process.getuid?.() === 0;
const hostPackages = JSON.parse(readFileSync(join(repo, 'scripts', 'host-packages.json'), 'utf8'));
// Build dependencies, and the firmware a blob-free QEMU needs at run time (-L): SeaBIOS and option ROMs.
const BUILD_DEPS = [...hostPackages.qemuBuild, ...hostPackages.qemuRuntime];
const SANITIZE = process.argv.includes('--sanitizers') || /^(1|yes|on|true)$/i.test(process.env.HILBOX_QEMU_SANITIZE ?? '');
// Only what hilbox uses: one target, no optional features, only the devices of
// qemu-device/devices.mak (--without-default-devices), no debug info (a third of the compile
// time; the binary is not debugged here).
const BASE_CONFIGURE_FLAGS = ['--target-list=x86_64-softmmu', '--without-default-features', '--without-default-devices',
  '--enable-tcg', '--enable-kvm', '--enable-slirp', '--enable-fdt=system', '--enable-tools', '--disable-docs',
  '--disable-werror', '--meson=/usr/bin/meson', '--with-git-submodules=ignore'];
// The sanitizer build: the same configuration plus ASan + UBSan, with debug info and
// -fno-omit-frame-pointer so the reports' stack traces name lines.
const CONFIGURE_FLAGS = SANITIZE
  ? [...BASE_CONFIGURE_FLAGS, '--enable-sanitizers', '--extra-cflags=-fno-omit-frame-pointer']
  : [...BASE_CONFIGURE_FLAGS, '--disable-debug-info'];
const BUILD_DIR_NAME = SANITIZE ? 'build-sanitizers' : 'build';
const BINARIES = SANITIZE ? ['qemu-system-x86_64'] : ['qemu-system-x86_64', 'qemu-img'];
// A sanitizer binary's own leak report at exit is not what these builds are for.
const RUN_ENV = { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=0' };
// Repository file -> its place in the QEMU source tree. The header is where the device's
// `#include "hw/misc/hilbox_regs.h"` finds it (like pvpanic's shared standard-headers file).
const DEVICE_FILES = [
  { from: 'qemu-device/hilbox-pci.c', to: 'hw/misc/hilbox-pci.c' },
  { from: 'guest-driver/include/hilbox_regs.h', to: 'include/hw/misc/hilbox_regs.h' },
  { from: 'qemu-device/devices.mak', to: 'configs/devices/x86_64-softmmu/default.mak' },
];
// Fixes to QEMU itself, in the order they apply (qemu-device/patches/README.md).
const PATCH_DIR = join(repo, 'qemu-device', 'patches');
const QEMU_PATCHES = readdirSync(PATCH_DIR).filter((f) => f.endsWith('.patch')).sort().map((f) => `qemu-device/patches/${f}`);
// Programs of the build besides QEMU's, compiled from the repository into bin/: the launcher
// starts QEMU through hilbox-no-thp (qemu-device/no-thp-exec.c says why).
const HELPERS = [{ from: 'qemu-device/no-thp-exec.c', bin: 'hilbox-no-thp' }];

async function ensureDebSrc() {
  // Quiet: on a machine without deb-src entries apt prints an "E:" line here, which is expected.
  const probe = await $({ quiet: true })`apt-get source --print-uris qemu`.nothrow();
  if (probe.exitCode === 0 && probe.stdout.includes('.dsc')) return;
  if (!isRoot) fail("no deb-src entry for Debian's source packages; as root add one to /etc/apt/sources.list.d/ and run apt-get update");
  log('adding a deb-src entry (/etc/apt/sources.list.d/hilbox-debsrc.sources) and updating apt');
  const codename = (await $`sh -c '. /etc/os-release; echo $VERSION_CODENAME'`).stdout.trim() || 'bookworm';
  writeFileSync('/etc/apt/sources.list.d/hilbox-debsrc.sources',
    `Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: ${codename} ${codename}-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`);
  await $`apt-get update -q`.pipe(process.stderr);
}

/** Returns { kind: 'debian', dsc } or { kind: 'tree', dir } or { kind: 'tarball', file }, plus a version string. */
async function locateSource() {
  const env = process.env.HILBOX_QEMU_SRC;
  if (env) {
    const p = resolve(env);
    if (!existsSync(p)) fail(`HILBOX_QEMU_SRC=${env}: no such file or directory`);
    if (statSync(p).isDirectory()) {
      if (!existsSync(join(p, 'VERSION'))) fail(`HILBOX_QEMU_SRC=${env}: not a QEMU source tree (no VERSION file)`);
      return { kind: 'tree', dir: p, version: readFileSync(join(p, 'VERSION'), 'utf8').trim() };
    }
    return { kind: 'tarball', file: p, version: basename(p).replace(/\.tar\..*$/, '') };
  }
  const dl = join(cache, 'qemu-src');
  mkdirSync(dl, { recursive: true });
  let dsc = readdirSync(dl).find((f) => f.endsWith('.dsc'));
  if (!dsc) {
    // Only a download needs a deb-src entry (asking apt costs a second on every warm run).
    await ensureDebSrc();
    log("downloading Debian's qemu source package");
    await $({ cwd: dl })`apt-get source --download-only qemu`.pipe(process.stderr);
    dsc = readdirSync(dl).find((f) => f.endsWith('.dsc'));
    if (!dsc) fail('apt-get source qemu produced no .dsc');
  }
  const version = /^Version:\s*(\S+)/m.exec(readFileSync(join(dl, dsc), 'utf8'))?.[1] ?? dsc;
  if (!version.match(/^(\d+:)?7\.2/)) log(`warning: Debian's qemu is ${version}, the device targets 7.2`);
  return { kind: 'debian', dsc: join(dl, dsc), version };
}

async function unpack(src, dest) {
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dirname(dest), { recursive: true });
  if (src.kind === 'debian') {
    await $`dpkg-source --no-check -x ${src.dsc} ${dest}`.pipe(process.stderr);
  } else if (src.kind === 'tree') {
    await $`cp -a ${src.dir}/. ${dest}/`;
  } else {
    mkdirSync(dest, { recursive: true });
    await $`tar -xf ${src.file} -C ${dest} --strip-components=1`;
  }
}

/**
 * Adds the device to a pristine tree: DEVICE_FILES + Kconfig + meson entries (idempotent). A file
 * is copied only when its content differs, so ninja recompiles only what really changed.
 */
function addDevice(tree) {
  const misc = join(tree, 'hw', 'misc');
  for (const { from, to } of DEVICE_FILES) {
    const dest = join(tree, to);
    const content = readFileSync(join(repo, from));
    if (existsSync(dest) && readFileSync(dest).equals(content)) continue;
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(join(repo, from), dest);
  }
  const kconfig = join(misc, 'Kconfig');
  if (!readFileSync(kconfig, 'utf8').includes('HILBOX_PCI')) {
    writeFileSync(kconfig, readFileSync(kconfig, 'utf8') +
      '\nconfig HILBOX_PCI\n    bool\n    default y if TEST_DEVICES\n    depends on PCI && MSI_NONBROKEN\n');
  }
  const meson = join(misc, 'meson.build');
  if (!readFileSync(meson, 'utf8').includes('hilbox-pci.c')) {
    writeFileSync(meson, readFileSync(meson, 'utf8') +
      "\nsoftmmu_ss.add(when: 'CONFIG_HILBOX_PCI', if_true: files('hilbox-pci.c'))\n");
  }
}

/**
 * Brings the tree's QEMU patches to QEMU_PATCHES: a copy of each applied patch is kept in
 * <tree>/applied-patches/, so a changed set is first undone (patch -R, newest first) and then
 * applied again in order. A patch that does not apply is an error naming it.
 */
async function applyPatches(tree, srcDir) {
  const keep = join(tree, 'applied-patches');
  const want = QEMU_PATCHES.map((p, i) => ({ name: `${String(i).padStart(2, '0')}-${basename(p)}`, from: p, text: readFileSync(join(repo, p), 'utf8') }));
  const have = existsSync(keep) ? readdirSync(keep).sort().map((name) => ({ name, text: readFileSync(join(keep, name), 'utf8') })) : [];
  if (want.length === have.length && want.every((w, i) => w.name === have[i].name && w.text === have[i].text)) return;
  for (const h of [...have].reverse()) {
    const r = await $({ cwd: srcDir, input: h.text })`patch -p1 -R --batch --silent`.nothrow();
    if (r.exitCode !== 0) fail(`could not undo QEMU patch ${h.name} in ${srcDir} (${(r.stdout + r.stderr).trim().split('\n')[0]}); delete ${tree} to unpack the source again`);
    rmSync(join(keep, h.name));
  }
  mkdirSync(keep, { recursive: true });
  for (const w of want) {
    const r = await $({ cwd: srcDir, input: w.text })`patch -p1 --forward --batch --silent`.nothrow();
    if (r.exitCode !== 0) fail(`QEMU patch ${w.from} does not apply to QEMU in ${srcDir}: ${(r.stdout + r.stderr).trim().split('\n').slice(0, 3).join(' / ')}`);
    writeFileSync(join(keep, w.name), w.text);
    log(`applied ${w.from}`);
  }
}

/**
 * What a build is made of: the QEMU version, this script, the configure flags and each device
 * file's hash. The key hashes all of it; build.json keeps it, so `--explain` can say which input
 * a new key comes from.
 */
function buildInputs(version) {
  const sha = (data) => createHash('sha256').update(data).digest('hex').slice(0, 16);
  return {
    qemu: version,
    script: sha(readFileSync(fileURLToPath(import.meta.url))),
    configure: CONFIGURE_FLAGS,
    files: Object.fromEntries([
      ...DEVICE_FILES.map(({ from, to }) => [from, `${sha(readFileSync(join(repo, from)))} -> ${to}`]),
      ...QEMU_PATCHES.map((p) => [p, `${sha(readFileSync(join(repo, p)))} applied`]),
      ...HELPERS.map(({ from, bin }) => [from, `${sha(readFileSync(join(repo, from)))} -> bin/${bin}`]),
    ]),
  };
}

const keyOf = (inputs) => createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);

/** Human-readable differences between the inputs of the last build and of this one. */
function inputChanges(before, now) {
  if (!before) return ['the last build recorded no inputs (built by an older script)'];
  const changes = [];
  if (before.qemu !== now.qemu) changes.push(`QEMU source ${before.qemu} -> ${now.qemu}`);
  if (before.script !== now.script) changes.push('scripts/build-qemu.mjs changed');
  const added = now.configure.filter((f) => !before.configure.includes(f));
  const removed = before.configure.filter((f) => !now.configure.includes(f));
  if (added.length || removed.length) changes.push(`configure flags: ${[...added.map((f) => `+${f}`), ...removed.map((f) => `-${f}`)].join(' ')}`);
  for (const f of new Set([...Object.keys(before.files ?? {}), ...Object.keys(now.files)])) {
    if (before.files?.[f] === now.files[f]) continue;
    changes.push(`${f} ${before.files?.[f] === undefined ? 'added' : now.files[f] === undefined ? 'removed' : 'changed'}`);
  }
  return changes.length ? changes : ['no input differs (the last build was removed or is incomplete)'];
}

/** The build.json of the build <cache>/qemu/current (or current-sanitizers) points at, if any. */
function lastBuild() {
  try {
    const bin = readFileSync(join(cache, 'qemu', SANITIZE ? 'current-sanitizers' : 'current'), 'utf8').trim();
    return JSON.parse(readFileSync(join(dirname(dirname(bin)), 'build.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

const upToDate = (dir) => existsSync(join(dir, 'build.json')) && existsSync(join(dir, 'bin', 'qemu-system-x86_64'));

// `--explain`: why the next build would (or would not) compile, without building or installing anything.
if (process.argv.includes('--explain')) {
  const dsc = existsSync(join(cache, 'qemu-src')) ? readdirSync(join(cache, 'qemu-src')).find((f) => f.endsWith('.dsc')) : undefined;
  const version = process.env.HILBOX_QEMU_SRC
    ? (await locateSource()).version
    : dsc ? (/^Version:\s*(\S+)/m.exec(readFileSync(join(cache, 'qemu-src', dsc), 'utf8'))?.[1] ?? dsc) : undefined;
  const what = SANITIZE ? 'sanitizer QEMU' : 'QEMU';
  if (!version) {
    console.log(`${what}: not built yet (the QEMU source is not downloaded into ${cache}): the first build downloads, configures and compiles everything`);
    process.exit(0);
  }
  const inputs = buildInputs(version);
  const key = keyOf(inputs);
  if (upToDate(join(cache, 'qemu', key))) {
    console.log(`${what}: up to date (key ${key}): nothing to build`);
    process.exit(0);
  }
  const last = lastBuild();
  if (!last) {
    console.log(`${what}: key ${key} is not built and no earlier build exists in ${cache}: a first build`);
    process.exit(0);
  }
  console.log(`${what}: key ${key} is not built; the last build (key ${last.key}, ${last.builtAt ?? 'date unknown'}) differs in:`);
  for (const c of inputChanges(last.inputs, inputs)) console.log(`  ${c}`);
  process.exit(0);
}

/**
 * One build at a time per source tree: a lock directory holding the builder's pid. A lock whose
 * process is gone is taken over; a live one is waited for (another command or test building the
 * same cache), with a line every 15 s.
 */
async function lockTree(lockDir) {
  let waitedSince = 0;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, 'pid'), String(process.pid));
      process.on('exit', () => rmSync(lockDir, { recursive: true, force: true }));
      return;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
    let pid = 0;
    try { pid = Number(readFileSync(join(lockDir, 'pid'), 'utf8')); } catch { /* being written or removed */ }
    let alive = true;
    if (pid > 0) {
      try { process.kill(pid, 0); } catch (e) { alive = e.code === 'EPERM'; }
    } else if (Date.now() - statSync(lockDir, { throwIfNoEntry: false })?.mtimeMs > 10_000) {
      alive = false;
    }
    if (!alive) {
      log(`taking over the build lock of a build that is gone (pid ${pid || 'unknown'})`);
      rmSync(lockDir, { recursive: true, force: true });
      continue;
    }
    const now = Date.now();
    if (!waitedSince) waitedSince = now;
    if ((now - waitedSince) % 15_000 < 500) log(`waiting for another build of this tree to finish (pid ${pid}, ${Math.round((now - waitedSince) / 1000)} s)`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

ensureDebianPackages(BUILD_DEPS, { log, fail });
const src = await locateSource();
const inputs = buildInputs(src.version);
const key = keyOf(inputs);
const outDir = join(cache, 'qemu', key);
const outBin = join(outDir, 'bin', 'qemu-system-x86_64');
const reportUpToDate = () => {
  log(`up to date (QEMU ${src.version}${SANITIZE ? ', sanitizers' : ''}, key ${key})`);
  console.log(outBin);
  process.exit(0);
};
if (upToDate(outDir)) reportUpToDate();
{
  const last = lastBuild();
  if (last) log(`building key ${key}: ${inputChanges(last.inputs, inputs).join('; ')} (since key ${last.key})`);
}

// One persistent source+build tree per QEMU version: a device change recompiles one file.
const tree = join(cache, 'qemu', `tree-${src.version.replace(/[^A-Za-z0-9.+-]/g, '_')}`);
mkdirSync(tree, { recursive: true });
await lockTree(join(tree, 'lock'));
if (upToDate(outDir)) reportUpToDate(); // built meanwhile by the build we waited for
const srcDir = join(tree, 'src');
const buildDir = join(srcDir, BUILD_DIR_NAME);
if (!existsSync(join(tree, 'unpacked'))) {
  log(`unpacking QEMU ${src.version}`);
  await unpack(src, srcDir);
  rmSync(join(tree, 'applied-patches'), { recursive: true, force: true });
  writeFileSync(join(tree, 'unpacked'), src.version);
}
await applyPatches(tree, srcDir);
addDevice(srcDir);
// ccache, when installed, keeps object files across reconfigurations and cache restores (meson
// uses it by itself when it is on PATH); its files live in the hilbox cache.
const ccache = (await $`sh -c 'command -v ccache'`.nothrow()).stdout.trim();
const buildEnv = ccache ? { ...process.env, CCACHE_DIR: process.env.CCACHE_DIR ?? join(cache, 'ccache'), CCACHE_BASEDIR: srcDir } : process.env;
if (ccache) log(`using ccache (${buildEnv.CCACHE_DIR})`);
// A build directory configured with other flags is configured again from scratch.
const configStamp = join(buildDir, '.hilbox-configure');
if (existsSync(join(buildDir, 'build.ninja')) && (!existsSync(configStamp) || readFileSync(configStamp, 'utf8') !== JSON.stringify(CONFIGURE_FLAGS))) {
  log('the build directory was configured with other flags: configuring again');
  rmSync(buildDir, { recursive: true, force: true });
}
if (!existsSync(join(buildDir, 'build.ninja'))) {
  log(`configuring: ${CONFIGURE_FLAGS.join(' ')}`);
  const tc = Date.now();
  mkdirSync(buildDir, { recursive: true });
  const r = await $({ cwd: buildDir, env: buildEnv })`../configure ${CONFIGURE_FLAGS}`.nothrow();
  if (r.exitCode !== 0) {
    process.stderr.write(r.stdout.split('\n').slice(-40).join('\n'));
    rmSync(buildDir, { recursive: true, force: true });
    fail('configure failed (output above)');
  }
  writeFileSync(configStamp, JSON.stringify(CONFIGURE_FLAGS));
  log(`configured in ${Math.round((Date.now() - tc) / 1000)} s`);
}
// A precompiled qemu/osdep.h takes about a third off a cold build (scripts/lib/qemu-pch.mjs).
if (!ccache) await precompileOsdep({ buildDir, srcDir, env: buildEnv, log });
log(`building${SANITIZE ? ' the sanitizer (ASan + UBSan) QEMU' : ''} with ninja (a few minutes on 2 cores the first time)`);
const t0 = Date.now();
const jobs = process.env.HILBOX_JOBS ?? '';
// ninja's [n/N] as a progress line with an ETA (scripts/lib/ninja-eta.mjs), at most every 10 s (a CI log stays readable and
// never goes quiet for long; the orchestrator turns these lines into its live line on a TTY).
const ninjaRun = $({ cwd: buildDir, quiet: true, env: buildEnv })`ninja ${jobs ? ['-j', jobs] : []} ${BINARIES}`.nothrow();
let lastReport = 0;
let partial = '';
ninjaRun.stdout.on('data', (chunk) => {
  partial += chunk.toString();
  const lines = partial.split('\n');
  partial = lines.pop() ?? '';
  for (const line of lines) {
    const m = /^\[(\d+)\/(\d+)\]/.exec(line);
    if (!m) continue;
    const [done, total] = [Number(m[1]), Number(m[2])];
    const now = Date.now();
    if (now - lastReport < 10_000 && done !== total) continue;
    lastReport = now;
    const elapsed = (now - t0) / 1000;
    const eta = secondsLeft(done, total, elapsed);
    const left = eta === undefined ? '' : `, about ${eta >= 60 ? `${Math.floor(eta / 60)} min ${eta % 60} s` : `${eta} s`} left`;
    log(`[${done}/${total}] ${Math.floor((100 * done) / total)}% after ${Math.round(elapsed)} s${left}`);
  }
});
const ninja = await ninjaRun;
if (ninja.exitCode !== 0) {
  // A file that could not use the precompiled header says so (-Winvalid-pch); that is not the failure.
  process.stderr.write((ninja.stdout + ninja.stderr).split('\n').filter((l) => /error|warning|FAILED/i.test(l) && !/not used because/.test(l)).slice(-40).join('\n') + '\n');
  fail('ninja failed (errors above)');
}
log(`ninja finished in ${Math.round((Date.now() - t0) / 1000)} s`);
const help = await $({ env: RUN_ENV })`${join(buildDir, 'qemu-system-x86_64')} -L /usr/share/seabios -L /usr/share/qemu -device help`.nothrow();
if (!help.stdout.includes('"hilbox-pci"')) fail('the built QEMU does not list hilbox-pci in -device help');

const tmpOut = `${outDir}.tmp-${process.pid}`;
rmSync(tmpOut, { recursive: true, force: true });
mkdirSync(join(tmpOut, 'bin'), { recursive: true });
for (const b of BINARIES) copyFileSync(join(buildDir, b), join(tmpOut, 'bin', b));
for (const h of HELPERS) {
  const r = await $`gcc -O2 -Wall -Wextra -Werror -o ${join(tmpOut, 'bin', h.bin)} ${join(repo, h.from)}`.nothrow();
  if (r.exitCode !== 0) {
    process.stderr.write(r.stderr);
    rmSync(tmpOut, { recursive: true, force: true });
    fail(`compiling ${h.from} failed (errors above)`);
  }
}
await $`chmod 0755 ${[...BINARIES, ...HELPERS.map((h) => h.bin)].map((b) => join(tmpOut, 'bin', b))}`;
writeFileSync(join(tmpOut, 'build.json'), JSON.stringify({ key, qemuVersion: src.version, source: src.kind, configure: CONFIGURE_FLAGS, sanitizers: SANITIZE, inputs, builtAt: new Date().toISOString() }, null, 2) + '\n');
rmSync(outDir, { recursive: true, force: true });
renameSync(tmpOut, outDir);
writeFileSync(join(cache, 'qemu', SANITIZE ? 'current-sanitizers' : 'current'), outBin + '\n');
log(`built QEMU ${src.version} with hilbox-pci${SANITIZE ? ', ASan + UBSan' : ''} (key ${key})`);
console.log(outBin);
