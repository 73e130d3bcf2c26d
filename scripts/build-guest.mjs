#!/usr/bin/env zx
// Builds the hilbox Linux guest image: Debian's kernel plus a small initramfs (busybox,
// Dropbear + OpenSSH's sftp-server, the virtio-net modules, the reference driver hilbox.ko
// and the hilbox-probe tool), with an SSH host key and a client key made for that image.
//
// Inputs: guest-image/ (init, config.json, packages.list, rootfs/), this script,
// guest-driver/linux and guest-driver/include (the module), guest-probe/common and
// guest-probe/linux (the probe), the kernel version (from Debian's linux-image-amd64
// metapackage, or $HILBOX_KERNEL_VERSION) and the Debian versions of the guest packages.
// Their hash is the image key; the image lives in
// <cache>/guest/linux-<key16>/ and is rebuilt only when the key changes. The build happens
// in a temporary directory that is renamed into place at the end, so an interrupted build
// never leaves an image that looks complete.
//
// Output: progress lines on stderr; the LAST STDOUT LINE is the absolute path of the
// image's manifest.json (schema "hilbox-guest/1").
//
// Options: --force (rebuild even if the image exists), --help.
// The module is built with `make -C guest-driver/linux KDIR=<headers> OUT=<dir>` (-> OUT/hilbox.ko),
// the probe with `make -C guest-probe/linux OUT=<dir>` (-> OUT/hilbox-probe), both from a copy
// of exactly the hashed files laid out as in the repository.
//
// Environment: HILBOX_CACHE / XDG_CACHE_HOME (cache root), HILBOX_KERNEL_VERSION (e.g.
// 6.1.0-56-amd64), HILBOX_GUEST_DRIVER_DIR (a directory holding linux/ and include/ to use
// instead of the repository's guest-driver/), HILBOX_GUEST_PROBE_DIR (a directory holding
// common/ and linux/ to use instead of the repository's guest-probe/).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync,
  renameSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { memoAptAnswer } from './lib/debian.mjs';

const SCHEMA = 'hilbox-guest/1';
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const scriptPath = fileURLToPath(import.meta.url);
const imageSrc = join(repo, 'guest-image');
const driverRoot = process.env.HILBOX_GUEST_DRIVER_DIR
  ? resolve(process.env.HILBOX_GUEST_DRIVER_DIR)
  : join(repo, 'guest-driver');
const probeRoot = process.env.HILBOX_GUEST_PROBE_DIR
  ? resolve(process.env.HILBOX_GUEST_PROBE_DIR)
  : join(repo, 'guest-probe');
const cache = process.env.HILBOX_CACHE
  ? resolve(process.env.HILBOX_CACHE)
  : join(process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'hilbox');
const isRoot = process.getuid?.() === 0;
const started = Date.now();

const log = (msg) => process.stderr.write(`build:guest: ${msg}\n`);
class BuildError extends Error {}
const fail = (msg) => { throw new BuildError(msg); };
const secs = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;

// ---------------------------------------------------------------------------------------
// Running host commands

/** Runs a command and returns its stdout; throws (with stderr) when it fails. */
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0 && !opts.allowFail) {
    fail(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}\n${(r.stderr ?? '').trim()}`);
  }
  return opts.allowFail ? r : r.stdout;
}

/** Runs a command whose output is progress: both streams go to our stderr. */
function runLoud(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 2, 2], ...opts });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  return r.status;
}

const hasCommand = (name) => spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;

function aptUpdate() {
  log('apt-get update');
  if (runLoud('apt-get', ['update', '-q', '-o', 'DPkg::Lock::Timeout=300']) !== 0) fail('apt-get update failed');
}

/** Makes sure the host has these Debian packages: installs them when root, else says how. */
function ensureHostPackages(pkgs) {
  const missing = pkgs.filter((p) => {
    const r = run('dpkg-query', ['-W', '-f=${Status}', p], { allowFail: true });
    return !String(r.stdout).includes('install ok installed');
  });
  if (missing.length === 0) return;
  const line = `apt-get install -y ${missing.join(' ')}`;
  if (!isRoot) fail(`missing host packages; as root run:\n  ${line}`);
  log(`installing host packages: ${missing.join(' ')}`);
  const install = () => runLoud('apt-get', ['install', '-y', '-q', '-o', 'DPkg::Lock::Timeout=300', ...missing],
    { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (install() !== 0) {
    aptUpdate();
    if (install() !== 0) fail(`could not install host packages; try:\n  ${line}`);
  }
}

// ---------------------------------------------------------------------------------------
// Inputs

function parseArgs(argv) {
  const opts = { force: false, explain: false };
  for (const a of argv) {
    if (a === '--force') opts.force = true;
    else if (a === '--explain') opts.explain = true;
    else if (a === '--help' || a === '-h') {
      process.stderr.write('usage: zx scripts/build-guest.mjs [--force] [--explain]\n'
        + 'Builds (or finds in the cache) the hilbox Linux guest image and prints the path of its manifest.json.\n'
        + '--explain: say whether the image is up to date and, if not, which inputs differ from the last image built; build nothing.\n');
      process.exit(0);
    } else fail(`unknown argument ${a} (try --help)`);
  }
  return opts;
}

/** The running Debian kernel ABI name, e.g. 6.1.0-56-amd64, from the linux-image-amd64 metapackage. */
function resolveKernelVersion() {
  const env = process.env.HILBOX_KERNEL_VERSION;
  if (env) {
    if (!/^\d+\.\d+\.\d+-\d+-amd64$/.test(env)) fail(`HILBOX_KERNEL_VERSION=${env}: expected a version like 6.1.0-56-amd64`);
    return env;
  }
  const query = () => {
    const r = run('apt-cache', ['depends', 'linux-image-amd64'], { allowFail: true });
    return /Depends:\s*linux-image-(\d+\.\d+\.\d+-\d+-amd64)\b/.exec(String(r.stdout))?.[1];
  };
  let ver = query();
  if (!ver && isRoot) { aptUpdate(); ver = query(); }
  if (!ver) fail('cannot resolve the kernel version from `apt-cache depends linux-image-amd64` (run apt-get update as root?)');
  return ver;
}

/** Package names from guest-image/packages.list ('#' comments, one name per line). */
function readPackageList() {
  const text = readFileSync(join(imageSrc, 'packages.list'), 'utf8');
  const names = text.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
  for (const n of names) if (!/^[a-z0-9][a-z0-9+.-]+$/.test(n)) fail(`guest-image/packages.list: bad package name "${n}"`);
  return names;
}

/** Candidate Debian versions of the packages, via one `apt-cache policy` call. */
function candidateVersions(pkgs) {
  const query = () => {
    const out = String(run('apt-cache', ['policy', ...pkgs], { allowFail: true }).stdout);
    const versions = new Map();
    let current;
    for (const line of out.split('\n')) {
      const head = /^(\S+):$/.exec(line);
      if (head) { current = head[1].replace(/:amd64$/, ''); continue; }
      const cand = /^\s+Candidate:\s*(\S+)/.exec(line);
      if (cand && current && cand[1] !== '(none)') versions.set(current, cand[1]);
    }
    return versions;
  };
  let versions = query();
  if (pkgs.some((p) => !versions.has(p)) && isRoot) { aptUpdate(); versions = query(); }
  const missing = pkgs.filter((p) => !versions.has(p));
  if (missing.length) fail(`no installable version of: ${missing.join(' ')} (is apt's package list current? run apt-get update)`);
  return versions;
}

/** Build products a driver build leaves in its tree: never hashed, never copied. */
const ARTEFACT = /(\.o|\.ko|\.mod|\.mod\.c|\.mod\.o|\.cmd|\.a|\.d|~)$|^(modules\.order|Module\.symvers|\.tmp_versions)$/;

/** Files under dir (relative paths, sorted), skipping VCS/build artefacts. */
function listFiles(dir) {
  const out = [];
  const walk = (rel) => {
    for (const ent of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.name === '.git' || ent.name === 'node_modules' || ARTEFACT.test(ent.name)) continue;
      if (ent.isDirectory()) walk(r);
      else if (ent.isFile() || ent.isSymbolicLink()) out.push(r);
    }
  };
  if (existsSync(dir)) walk('');
  return out.sort();
}

/**
 * Driver and probe sources: git's view (tracked + untracked-not-ignored) when the directory
 * is in a work tree, so whatever .gitignore excludes (build outputs) does not change the key.
 */
function sourceFiles(dir) {
  if (!existsSync(dir)) return [];
  const r = spawnSync('git', ['-C', dir, 'ls-files', '-co', '--exclude-standard', '-z', '.'], { encoding: 'utf8' });
  const all = listFiles(dir);
  if (r.status !== 0) return all;
  const listed = new Set(r.stdout.split('\0').filter(Boolean));
  return all.filter((f) => listed.has(f));
}

/**
 * The image key: a hash over every input. `inputs` (label -> short hash of that input) goes into
 * the manifest, so `--explain` can name what changed since the last image.
 */
function computeKey({ kernelVersion, versions, sourceSets }) {
  const h = createHash('sha256');
  const inputs = {};
  const add = (label, data) => {
    h.update(`${label}\0${data.length}\0`);
    h.update(data);
    if (label !== 'x') inputs[label] = createHash('sha256').update(data).digest('hex').slice(0, 16);
  };
  add('schema', SCHEMA);
  add('kernel', kernelVersion);
  for (const [p, v] of [...versions].sort()) add('package', `${p}=${v}`);
  add('script', readFileSync(scriptPath));
  for (const f of listFiles(imageSrc)) {
    const abs = join(imageSrc, f);
    const st = lstatSync(abs);
    add(`guest-image/${f}`, st.isSymbolicLink() ? `->${readlinkSync(abs)}` : readFileSync(abs));
    add('x', String(st.mode & 0o111 ? 1 : 0));
  }
  for (const [name, dir, files] of sourceSets) {
    for (const f of files) {
      const abs = join(dir, f);
      add(`${name}/${f}`, lstatSync(abs).isSymbolicLink() ? `->${readlinkSync(abs)}` : readFileSync(abs));
    }
  }
  return { key: h.digest('hex'), inputs };
}

/** Lines saying how `inputs` differ from those of the newest image in guestDir (for --explain). */
function explainAgainstLast(guestDir, key, inputs) {
  const images = existsSync(guestDir) ? readdirSync(guestDir).filter((n) => n.startsWith('linux-')) : [];
  const manifests = images.flatMap((n) => {
    try { return [JSON.parse(readFileSync(join(guestDir, n, 'manifest.json'), 'utf8'))]; } catch { return []; }
  }).sort((a, b) => String(b.builtAt ?? '').localeCompare(String(a.builtAt ?? '')));
  const last = manifests[0];
  if (!last) return [`guest: image linux-${key.slice(0, 16)} is not built and no earlier image exists in ${guestDir}: a first build`];
  const head = `guest: image linux-${key.slice(0, 16)} is not built; the last image (linux-${String(last.key).slice(0, 16)}, ${last.builtAt ?? 'date unknown'}) differs in:`;
  if (!last.inputs) return [head, '  the last image recorded no inputs (built by an older script)'];
  const lines = [];
  for (const label of [...new Set([...Object.keys(last.inputs), ...Object.keys(inputs)])].sort()) {
    const [was, now] = [last.inputs[label], inputs[label]];
    if (was === now) continue;
    lines.push(`  ${label} ${was === undefined ? 'added' : now === undefined ? 'removed' : 'changed'}`);
  }
  return [head, ...(lines.length ? lines : ['  no input differs (the image directory is incomplete)'])];
}

/** An image directory is usable when its manifest names this key and its files exist. */
function validImage(dir, key) {
  try {
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    return m.schema === SCHEMA && m.key === key && [m.kernel, m.initrd, m.sshKey].every((f) => statSync(f).size > 0);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// Debian packages

const debFileName = (pkg, ver) => `${pkg}_${ver.replace(/:/g, '%3a')}_`;

/** Returns pkg -> path of the cached .deb, downloading what is missing into <cache>/debs. */
function fetchDebs(versions) {
  const dir = join(cache, 'debs');
  mkdirSync(dir, { recursive: true });
  const find = (pkg, ver) => {
    const prefix = debFileName(pkg, ver);
    const f = readdirSync(dir).find((n) => n.startsWith(prefix) && n.endsWith('.deb'));
    return f && join(dir, f);
  };
  const missing = [...versions].filter(([p, v]) => !find(p, v));
  if (missing.length) {
    log(`downloading ${missing.map(([p, v]) => `${p}=${v}`).join(' ')}`);
    // Download beside the cache, then move in: a killed download never looks like a cached .deb.
    const part = join(dir, `.partial-${process.pid}`);
    rmSync(part, { recursive: true, force: true });
    mkdirSync(part, { recursive: true });
    try {
      const args = ['download', '-q', ...missing.map(([p, v]) => `${p}=${v}`)];
      if (isRoot) args.unshift('-o', 'APT::Sandbox::User=root');
      const r = run('apt-get', args, { cwd: part, allowFail: true });
      if (r.status !== 0) fail(`apt-get download failed:\n${String(r.stderr).trim()}`);
      for (const f of readdirSync(part)) if (f.endsWith('.deb')) renameSync(join(part, f), join(dir, f));
    } finally {
      rmSync(part, { recursive: true, force: true });
    }
  }
  const paths = new Map();
  for (const [p, v] of versions) {
    const f = find(p, v);
    if (!f) fail(`apt-get download did not produce ${debFileName(p, v)}*.deb`);
    paths.set(p, f);
  }
  return paths;
}

/** Unpacks the kernel package once into <cache>/kernel/<ver>_<debver>/ (never into /boot). */
function extractKernel(kernelVersion, deb, debVersion) {
  const dir = join(cache, 'kernel', `${kernelVersion}_${debVersion.replace(/[^A-Za-z0-9.+~-]/g, '_')}`);
  const vmlinuz = join(dir, 'boot', `vmlinuz-${kernelVersion}`);
  if (existsSync(join(dir, '.complete'))) return dir;
  log(`unpacking ${basename(deb)} into ${dir}`);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  run('dpkg-deb', ['-x', deb, tmp]);
  if (!existsSync(join(tmp, 'boot', `vmlinuz-${kernelVersion}`))) fail(`${basename(deb)} has no boot/vmlinuz-${kernelVersion}`);
  writeFileSync(join(tmp, '.complete'), `${debVersion}\n`);
  rmSync(dir, { recursive: true, force: true });
  try {
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(join(dir, '.complete'))) throw e; // else: a parallel run got there first
  }
  if (!existsSync(vmlinuz)) fail(`missing ${vmlinuz}`);
  return dir;
}

/** True when an ELF kernel carries the PVH entry point note (Xen note type 18) QEMU boots directly. */
function hasPvhNote(buf) {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) return false;
  const phoff = Number(buf.readBigUInt64LE(0x20));
  for (let i = 0; i < buf.readUInt16LE(0x38); i++) {
    const o = phoff + i * buf.readUInt16LE(0x36);
    if (buf.readUInt32LE(o) !== 4 /* PT_NOTE */) continue;
    let n = Number(buf.readBigUInt64LE(o + 8));
    const end = n + Number(buf.readBigUInt64LE(o + 0x20));
    while (n + 12 <= end) {
      const namesz = buf.readUInt32LE(n);
      const descsz = buf.readUInt32LE(n + 4);
      const type = buf.readUInt32LE(n + 8);
      if (type === 18 && buf.toString('latin1', n + 12, n + 15) === 'Xen') return true;
      n += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
    }
  }
  return false;
}

/**
 * The uncompressed kernel (ELF vmlinux) out of Debian's bzImage, cached beside it. QEMU
 * boots it through its PVH entry point, skipping the in-guest xz decompression, which
 * costs seconds under TCG. Returns null when the kernel is not xz-packed or has no PVH
 * entry point (the caller then boots the bzImage).
 */
function extractVmlinux(kdir, kernelVersion) {
  const out = join(kdir, 'vmlinux');
  if (existsSync(out)) return out;
  const bz = readFileSync(join(kdir, 'boot', `vmlinuz-${kernelVersion}`));
  const at = bz.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
  if (at < 0) { log('vmlinuz is not xz-compressed; booting the bzImage'); return null; }
  if (!hasCommand('xz')) ensureHostPackages(['xz-utils']);
  const r = spawnSync('xz', ['-dc', '--single-stream'], { input: bz.subarray(at), maxBuffer: 1 << 30 });
  if (r.status !== 0 || !hasPvhNote(r.stdout)) { log('could not unpack a PVH vmlinux; booting the bzImage'); return null; }
  writeFileSync(`${out}.tmp-${process.pid}`, r.stdout);
  renameSync(`${out}.tmp-${process.pid}`, out);
  return out;
}

/** Hard-links a cached file into the image (no extra space), else copies it. */
function linkOrCopy(from, to) {
  try { linkSync(from, to); } catch { copyFileSync(from, to); }
}

// ---------------------------------------------------------------------------------------
// ELF (x86-64, little endian): just enough to read sections, NEEDED, PT_INTERP, .modinfo

function readElf(file) {
  const b = readFileSync(file);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) return null;
  if (b[4] !== 2 || b[5] !== 1) fail(`${file}: not a 64-bit little-endian ELF file`);
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const shstrndx = b.readUInt16LE(0x3e);
  const sections = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    sections.push({
      nameOff: b.readUInt32LE(o), type: b.readUInt32LE(o + 4),
      offset: Number(b.readBigUInt64LE(o + 0x18)), size: Number(b.readBigUInt64LE(o + 0x20)),
      link: b.readUInt32LE(o + 0x28),
    });
  }
  const cstr = (off) => b.toString('latin1', off, b.indexOf(0, off));
  if (sections[shstrndx]) for (const s of sections) s.name = cstr(sections[shstrndx].offset + s.nameOff);
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  let interp = null;
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (b.readUInt32LE(o) === 3 /* PT_INTERP */) {
      const off = Number(b.readBigUInt64LE(o + 8));
      interp = cstr(off);
    }
  }
  const needed = [];
  const dyn = sections.find((s) => s.type === 6 /* SHT_DYNAMIC */);
  if (dyn) {
    const strtab = sections[dyn.link];
    for (let o = dyn.offset; o + 16 <= dyn.offset + dyn.size; o += 16) {
      const tag = b.readBigInt64LE(o);
      if (tag === 0n) break;
      if (tag === 1n /* DT_NEEDED */) needed.push(cstr(strtab.offset + Number(b.readBigUInt64LE(o + 8))));
    }
  }
  const modinfo = new Map();
  const mi = sections.find((s) => s.name === '.modinfo');
  if (mi) {
    for (const kv of b.toString('latin1', mi.offset, mi.offset + mi.size).split('\0')) {
      const eq = kv.indexOf('=');
      if (eq > 0 && !modinfo.has(kv.slice(0, eq))) modinfo.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
  }
  return { interp, needed, modinfo };
}

// ---------------------------------------------------------------------------------------
// The initramfs as a list of entries, written as a newc cpio archive

class Tree {
  constructor() { this.entries = new Map(); }

  /** Image paths are canonical: /bin, /sbin, /lib, /lib64 are symlinks into /usr. */
  static canon(p) {
    const m = /^\/(bin|sbin|lib|lib64)(\/.*)?$/.exec(posix.normalize(p));
    return m && m[2] ? `/usr/${m[1]}${m[2]}` : posix.normalize(p);
  }

  parents(p) {
    const dir = posix.dirname(p);
    if (dir !== '/' && !this.entries.has(dir)) this.dir(dir);
  }

  dir(p, mode = 0o755, uid = 0, gid = 0) {
    p = Tree.canon(p);
    this.parents(p);
    const old = this.entries.get(p);
    if (old && old.type !== 'dir') fail(`image: ${p} is both a directory and a ${old.type}`);
    this.entries.set(p, { type: 'dir', mode, uid, gid });
  }

  file(p, data, mode = 0o644, uid = 0, gid = 0) {
    p = Tree.canon(p);
    this.parents(p);
    this.entries.set(p, { type: 'file', data: Buffer.from(data), mode, uid, gid });
  }

  symlink(p, target) {
    p = Tree.canon(p);
    this.parents(p);
    this.entries.set(p, { type: 'symlink', data: Buffer.from(target), mode: 0o777, uid: 0, gid: 0 });
  }

  chardev(p, major, minor, mode) {
    p = Tree.canon(p);
    this.parents(p);
    this.entries.set(p, { type: 'char', data: Buffer.alloc(0), mode, uid: 0, gid: 0, major, minor });
  }

  setMode(p, mode) {
    const e = this.entries.get(Tree.canon(p));
    if (!e) fail(`config.json modes: ${p} is not in the image`);
    e.mode = mode;
  }

  /** newc ("070701") cpio; parents sort before children; fixed timestamps. */
  cpio() {
    const TYPE = { dir: 0o040000, file: 0o100000, symlink: 0o120000, char: 0o020000 };
    const chunks = [];
    const pad4 = (n) => (4 - (n % 4)) % 4;
    let ino = 1;
    const put = (name, e) => {
      const data = e.data ?? Buffer.alloc(0);
      const fields = [ino++, TYPE[e.type] | e.mode, e.uid, e.gid, e.type === 'dir' ? 2 : 1, 0, data.length,
        0, 0, e.major ?? 0, e.minor ?? 0, name.length + 1, 0];
      const header = `070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`;
      chunks.push(Buffer.from(header + name + '\0'.repeat(1 + pad4(110 + name.length + 1))));
      chunks.push(data, Buffer.alloc(pad4(data.length)));
    };
    const names = [...this.entries.keys()].sort();
    put('.', { type: 'dir', mode: 0o755, uid: 0, gid: 0 });
    for (const p of names) put(p.slice(1), this.entries.get(p));
    put('TRAILER!!!', { type: 'file', mode: 0, uid: 0, gid: 0 });
    const buf = Buffer.concat(chunks);
    return Buffer.concat([buf, Buffer.alloc(pad4(buf.length) + ((512 - ((buf.length + pad4(buf.length)) % 512)) % 512))]);
  }
}

/** Resolves a path inside an unpacked root, following symlinks within that root. */
function resolveIn(root, p, depth = 0) {
  if (depth > 40) fail(`symlink loop at ${p} in ${root}`);
  const parts = posix.normalize(p).split('/').filter(Boolean);
  let cur = '/';
  for (let i = 0; i < parts.length; i++) {
    const next = posix.join(cur, parts[i]);
    let st;
    try { st = lstatSync(join(root, next)); } catch { return null; }
    if (st.isSymbolicLink()) {
      const t = readlinkSync(join(root, next));
      const target = t.startsWith('/') ? t : posix.join(cur, t);
      return resolveIn(root, posix.join(target, ...parts.slice(i + 1)), depth + 1);
    }
    cur = next;
  }
  return join(root, cur);
}

const LIB_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib'];

/** Adds an ELF program and, recursively, the shared libraries and loader it needs from pkgroot. */
function addWithLibraries(tree, pkgroot, hostFile, imagePath, mode, seen = new Set()) {
  tree.file(imagePath, readFileSync(hostFile), mode);
  const elf = readElf(hostFile);
  if (!elf) return;
  if (elf.interp && !seen.has(`interp:${elf.interp}`)) {
    seen.add(`interp:${elf.interp}`);
    const f = resolveIn(pkgroot, elf.interp);
    if (!f) fail(`${imagePath} needs the loader ${elf.interp}, which no package in guest-image/packages.list provides (add libc6)`);
    tree.file(elf.interp, readFileSync(f), 0o755);
  }
  for (const so of elf.needed) {
    if (seen.has(so)) continue;
    seen.add(so);
    const f = LIB_DIRS.map((d) => resolveIn(pkgroot, `${d}/${so}`)).find(Boolean);
    if (!f) fail(`${imagePath} needs ${so}, which no package in guest-image/packages.list provides (find it with: dpkg -S ${so})`);
    addWithLibraries(tree, pkgroot, f, `/usr/lib/x86_64-linux-gnu/${so}`, 0o755, seen);
  }
}

/**
 * Modules to insmod, in dependency order, as paths relative to lib/modules/<ver>/; `levels`
 * groups them so that a module's dependencies are all in earlier levels (a level's modules can
 * load side by side).
 */
function resolveModules(kdir, kernelVersion, wanted) {
  const moddir = join(kdir, 'lib', 'modules', kernelVersion);
  const norm = (n) => n.replace(/-/g, '_');
  const builtin = new Set(readFileSync(join(moddir, 'modules.builtin'), 'utf8').split('\n').filter(Boolean)
    .map((l) => norm(basename(l, '.ko'))));
  const byName = new Map();
  const walk = (rel) => {
    for (const ent of readdirSync(join(moddir, rel), { withFileTypes: true })) {
      const r = `${rel}/${ent.name}`;
      if (ent.isDirectory()) walk(r);
      else if (/\.ko(\.xz|\.zst|\.gz)?$/.test(ent.name)) byName.set(norm(ent.name.replace(/\.ko.*$/, '')), r);
    }
  };
  walk('kernel');
  const order = [];
  const level = new Map(); // module name -> dependency level (0: depends on nothing loadable)
  const levels = []; // level -> files of that level
  const state = new Map();
  const visit = (name, from) => {
    name = norm(name);
    if (builtin.has(name) || state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') fail(`module dependency cycle at ${name}`);
    const rel = byName.get(name);
    if (!rel) fail(`kernel module ${name}${from ? ` (needed by ${from})` : ''} is neither built in nor in ${basename(kdir)}`);
    if (!rel.endsWith('.ko')) fail(`${rel}: compressed modules are not supported (busybox insmod)`);
    state.set(name, 'visiting');
    const deps = (readElf(join(moddir, rel))?.modinfo.get('depends') ?? '').split(',').filter(Boolean).map(norm).filter((d) => !builtin.has(d));
    for (const d of deps) visit(d, name);
    state.set(name, 'done');
    const l = Math.max(-1, ...deps.map((d) => level.get(d))) + 1;
    level.set(name, l);
    order.push(rel);
    (levels[l] ??= []).push(rel);
  };
  for (const m of wanted) visit(m);
  return { moddir, order, levels };
}

/** The /etc/passwd entries of the overlay: name -> { uid, gid, home }. */
function readPasswd(text) {
  const users = new Map();
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 7) users.set(f[0], { uid: Number(f[2]), gid: Number(f[3]), home: f[5] });
  }
  return users;
}

// ---------------------------------------------------------------------------------------
// Build

function buildDriver(kernelVersion, work, sourceSets) {
  const kdir = `/usr/src/linux-headers-${kernelVersion}`;
  if (!existsSync(join(kdir, 'Makefile'))) fail(`${kdir} is missing (apt-get install -y linux-headers-${kernelVersion})`);
  // Build a copy of the sources that were hashed, laid out as in the repository (the probe's
  // Makefile finds ../../guest-driver/include): the build cannot dirty the repository, and
  // what is built is exactly what the key describes.
  const src = join(work, 'src');
  for (const [name, dir, files] of sourceSets) {
    for (const f of files) {
      mkdirSync(dirname(join(src, name, f)), { recursive: true });
      copyFileSync(join(dir, f), join(src, name, f));
      chmodSync(join(src, name, f), statSync(join(dir, f)).mode & 0o777);
    }
    mkdirSync(join(src, name), { recursive: true });
  }
  const out = join(work, 'driver-out');
  mkdirSync(out, { recursive: true });
  log(`building the driver: make -C guest-driver/linux KDIR=${kdir} OUT=${out}`);
  let status = runLoud('make', ['-C', join(src, 'guest-driver', 'linux'), `KDIR=${kdir}`, `OUT=${out}`]);
  if (status !== 0) fail(`driver build failed (make exited ${status}); see the output above`);
  log(`building the probe: make -C guest-probe/linux OUT=${out}`);
  status = runLoud('make', ['-C', join(src, 'guest-probe', 'linux'), `OUT=${out}`]);
  if (status !== 0) fail(`probe build failed (make exited ${status}); see the output above`);
  const ko = join(out, 'hilbox.ko');
  const probe = join(out, 'hilbox-probe');
  for (const f of [ko, probe]) if (!existsSync(f)) fail(`the build did not produce ${basename(f)} in OUT (contract: OUT/hilbox.ko from guest-driver/linux, OUT/hilbox-probe from guest-probe/linux)`);
  const vermagic = readElf(ko)?.modinfo.get('vermagic') ?? '';
  if (!vermagic.startsWith(`${kernelVersion} `)) fail(`hilbox.ko was built for "${vermagic}", not ${kernelVersion}`);
  if (readElf(probe)?.interp) log('note: hilbox-probe is dynamically linked; adding its libraries');
  return { ko, probe };
}

function makeKeys(work, pkgroot) {
  const keys = join(work, 'keys');
  mkdirSync(keys, { recursive: true });
  const client = join(keys, 'id_ed25519');
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'hilbox-guest-client', '-f', client]);
  // Dropbear's own key format; dropbearkey comes from the unpacked dropbear-bin and runs
  // under the unpacked loader so the host needs no libtomcrypt.
  const hostKey = join(keys, 'dropbear_ed25519_host_key');
  const dropbearkey = resolveIn(pkgroot, '/usr/bin/dropbearkey');
  if (!dropbearkey) fail('dropbear-bin provides no /usr/bin/dropbearkey');
  const interp = readElf(dropbearkey).interp;
  const loader = interp && resolveIn(pkgroot, interp);
  const libPath = LIB_DIRS.map((d) => join(pkgroot, d)).filter(existsSync).join(':');
  const out = loader
    ? run(loader, ['--library-path', libPath, dropbearkey, '-t', 'ed25519', '-f', hostKey])
    : run(dropbearkey, ['-t', 'ed25519', '-f', hostKey]);
  const pub = /^(ssh-ed25519 [A-Za-z0-9+/=]+)/m.exec(out)?.[1];
  if (!pub) fail(`dropbearkey printed no public key:\n${out}`);
  const blob = Buffer.from(pub.split(' ')[1], 'base64');
  const fingerprint = `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
  return { client, clientPub: readFileSync(`${client}.pub`, 'utf8').trim(), hostKey, hostPub: `${pub} hilbox-guest`, fingerprint };
}

function build({ key, kernelVersion, versions, config, sourceSets, work, out }) {
  const kernelPkg = `linux-image-${kernelVersion}`;
  ensureHostPackages(['make', 'gcc', 'libc6-dev', 'openssh-client', `linux-headers-${kernelVersion}`]);

  const debs = fetchDebs(versions);
  const kdir = extractKernel(kernelVersion, debs.get(kernelPkg), versions.get(kernelPkg));
  // The kernel the image boots, first: the orchestrator starts its KVM probe on this line
  // (KERNEL_READY_LINE in orchestrator/src/products/ensure.ts) while the rest is built.
  const vmlinux = (config.kernelFormat ?? 'pvh') === 'pvh' ? extractVmlinux(kdir, kernelVersion) : null;
  log(`kernel ready: ${vmlinux ?? join(kdir, 'boot', `vmlinuz-${kernelVersion}`)}`);

  log('unpacking guest packages');
  const pkgroot = join(work, 'pkgroot');
  mkdirSync(pkgroot, { recursive: true });
  for (const [p, deb] of debs) if (p !== kernelPkg) run('dpkg-deb', ['-x', deb, pkgroot]);

  const driver = buildDriver(kernelVersion, work, sourceSets);
  const keys = makeKeys(work, pkgroot);

  log('assembling the initramfs');
  const tree = new Tree();
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) {
    tree.dir(`/usr/${d}`);
    tree.entries.set(`/${d}`, { type: 'symlink', data: Buffer.from(`usr/${d}`), mode: 0o777, uid: 0, gid: 0 });
  }
  for (const d of ['/etc/dropbear', '/etc/hilbox', '/dev', '/proc', '/sys', '/run', '/var/log', '/mnt', '/home', '/root']) tree.dir(d);
  tree.dir('/tmp', 0o1777);
  tree.symlink('/var/run', '../run');
  tree.symlink('/var/tmp', '../tmp');
  tree.chardev('/dev/console', 5, 1, 0o600); // the kernel opens it for init before devtmpfs is mounted
  tree.chardev('/dev/null', 1, 3, 0o666); // the stdin of init's background jobs started before devtmpfs is mounted

  // rootfs overlay, then init
  const overlay = join(imageSrc, 'rootfs');
  for (const f of listFiles(overlay)) {
    const abs = join(overlay, f);
    if (lstatSync(abs).isSymbolicLink()) tree.symlink(`/${f}`, readlinkSync(abs));
    else tree.file(`/${f}`, readFileSync(abs), statSync(abs).mode & 0o111 ? 0o755 : 0o644);
  }
  tree.file('/init', readFileSync(join(imageSrc, 'init')), 0o755);

  // programs from the packages, with their libraries
  const seen = new Set();
  for (const [from, to] of Object.entries(config.files ?? {})) {
    const f = resolveIn(pkgroot, from);
    if (!f) fail(`config.json files: ${from} is in none of the packages of guest-image/packages.list`);
    addWithLibraries(tree, pkgroot, f, to, 0o755, seen);
  }
  for (const [p, target] of Object.entries(config.symlinks ?? {})) tree.symlink(p, target);

  // busybox applets: a symlink per applet, where busybox itself would install it
  const busybox = resolveIn(pkgroot, '/bin/busybox');
  if (!busybox) fail('busybox-static provides no /bin/busybox');
  const applets = run(busybox, ['--list-full']).split('\n').filter(Boolean);
  for (const a of applets) {
    const p = Tree.canon(`/${a}`);
    if (!tree.entries.has(p)) tree.symlink(p, '/usr/bin/busybox');
  }

  // NIC modules in dependency order
  const mods = resolveModules(kdir, kernelVersion, config.modules ?? []);
  for (const rel of mods.order) tree.file(`/lib/modules/${kernelVersion}/${rel}`, readFileSync(join(mods.moddir, rel)));
  // One line per level: the guest's init loads a line's modules side by side.
  tree.file('/etc/hilbox/modules.load', mods.levels.map((l) => `${l.map((rel) => `/lib/modules/${kernelVersion}/${rel}`).join(' ')}\n`).join(''));
  log(`modules: ${mods.levels.map((l) => l.map((m) => basename(m, '.ko')).join(' ')).join(' | ') || '(none, all built in)'}`);

  // reference driver and probe tool (not loaded at boot: the orchestrator insmods it)
  tree.file('/lib/modules/hilbox/hilbox.ko', readFileSync(driver.ko));
  addWithLibraries(tree, pkgroot, driver.probe, '/usr/bin/hilbox-probe', 0o755, seen);

  // SSH: host key and the client key for the users that log in with it
  tree.file('/etc/dropbear/dropbear_ed25519_host_key', readFileSync(keys.hostKey), 0o600);
  tree.file('/etc/dropbear/dropbear_ed25519_host_key.pub', `${keys.hostPub}\n`);
  const users = readPasswd(readFileSync(join(overlay, 'etc', 'passwd'), 'utf8'));
  for (const u of users.values()) if (u.home !== '/nonexistent' && u.uid !== 0) tree.dir(u.home, 0o755, u.uid, u.gid);
  for (const name of config.authorizedKeys ?? []) {
    const u = users.get(name);
    if (!u) fail(`config.json authorizedKeys: no user ${name} in rootfs/etc/passwd`);
    tree.dir(u.home, u.uid === 0 ? 0o700 : 0o755, u.uid, u.gid);
    tree.dir(`${u.home}/.ssh`, 0o700, u.uid, u.gid);
    tree.file(`${u.home}/.ssh/authorized_keys`, `${keys.clientPub}\n`, 0o600, u.uid, u.gid);
  }
  tree.file('/etc/hilbox/image', `key=${key}\nkernelVersion=${kernelVersion}\n`);
  for (const [p, mode] of Object.entries(config.modes ?? {})) tree.setMode(p, parseInt(mode, 8));

  const cpio = tree.cpio();
  const initrd = config.initrdCompression === 'none' ? cpio : gzipSync(cpio, { level: 9 });
  log(`initramfs: ${tree.entries.size} entries, ${(cpio.length / 1048576).toFixed(1)} MiB cpio, `
    + `${(initrd.length / 1048576).toFixed(1)} MiB ${config.initrdCompression === 'none' ? 'uncompressed' : 'gzip'}`);

  // the image directory (still the temporary one; the caller renames it into place)
  mkdirSync(out, { recursive: true });
  linkOrCopy(join(kdir, 'boot', `vmlinuz-${kernelVersion}`), join(out, 'vmlinuz'));
  let kernel = 'vmlinuz';
  if (vmlinux) { linkOrCopy(vmlinux, join(out, 'vmlinux')); kernel = 'vmlinux'; }
  writeFileSync(join(out, 'initrd.img'), initrd);
  copyFileSync(keys.client, join(out, 'id_ed25519'));
  chmodSync(join(out, 'id_ed25519'), 0o600);
  writeFileSync(join(out, 'id_ed25519.pub'), `${keys.clientPub}\n`);
  copyFileSync(keys.hostKey, join(out, 'dropbear_ed25519_host_key'));
  chmodSync(join(out, 'dropbear_ed25519_host_key'), 0o600);
  writeFileSync(join(out, 'ssh_host_ed25519_key.pub'), `${keys.hostPub}\n`);
  return { kernel, hostKeyFingerprint: keys.fingerprint, hostPublicKey: keys.hostPub };
}

/** Removes temporary build directories of runs that are no longer alive. */
function sweepStale(guestDir) {
  if (!existsSync(guestDir)) return;
  for (const n of readdirSync(guestDir)) {
    const m = /^\.build-.*-(\d+)$/.exec(n);
    if (!m) continue;
    let alive = true;
    try { process.kill(Number(m[1]), 0); } catch (e) { alive = e.code === 'EPERM'; }
    if (!alive) rmSync(join(guestDir, n), { recursive: true, force: true });
  }
}

function main() {
  const opts = parseArgs(process.argv.slice(2).filter((a) => resolve(a) !== scriptPath));
  for (const tool of ['apt-get', 'apt-cache', 'dpkg-deb', 'dpkg-query']) {
    if (!hasCommand(tool)) fail(`${tool} not found: the guest image is built from Debian packages on a Debian host`);
  }
  for (const f of ['init', 'config.json', 'packages.list', 'rootfs/etc/passwd']) {
    if (!existsSync(join(imageSrc, f))) fail(`guest-image/${f} is missing`);
  }
  const config = JSON.parse(readFileSync(join(imageSrc, 'config.json'), 'utf8'));

  const makefiles = [
    [join(driverRoot, 'linux', 'Makefile'), 'the reference driver (contract: make -C guest-driver/linux KDIR=<headers> OUT=<dir> -> OUT/hilbox.ko)'],
    [join(probeRoot, 'linux', 'Makefile'), 'the probe (contract: make -C guest-probe/linux OUT=<dir> -> OUT/hilbox-probe)'],
  ];
  for (const [makefile, what] of makefiles) {
    if (!existsSync(makefile)) fail(`${relative(repo, makefile) || makefile} does not exist yet: the guest image needs ${what}`);
  }

  // apt-cache costs seconds on every warm run; its answers stay valid while apt's lists do.
  const aptMemo = join(cache, 'debs', 'apt-answers.json');
  const memo = { store: !opts.explain }; // --explain builds nothing and writes nothing
  const kernelVersion = process.env.HILBOX_KERNEL_VERSION ? resolveKernelVersion() : memoAptAnswer(aptMemo, 'kernel-version', resolveKernelVersion, memo);
  const pkgs = [`linux-image-${kernelVersion}`, ...readPackageList()];
  const versions = new Map(Object.entries(memoAptAnswer(aptMemo, `candidates ${pkgs.join(' ')}`, () => Object.fromEntries(candidateVersions(pkgs)), memo)));
  // [path in the repository layout, directory, its files]
  const sourceSets = [
    ...['linux', 'include'].map((d) => [`guest-driver/${d}`, join(driverRoot, d)]),
    ...['common', 'linux'].map((d) => [`guest-probe/${d}`, join(probeRoot, d)]),
  ].map(([name, dir]) => [name, dir, sourceFiles(dir)]);
  const { key, inputs } = computeKey({ kernelVersion, versions, sourceSets });
  const guestDir = join(cache, 'guest');
  const imageDir = join(guestDir, `linux-${key.slice(0, 16)}`);
  const manifestPath = join(imageDir, 'manifest.json');
  if (opts.explain) {
    const lines = validImage(imageDir, key)
      ? [`guest: up to date (image linux-${key.slice(0, 16)}, kernel ${kernelVersion}): nothing to build`]
      : explainAgainstLast(guestDir, key, inputs);
    process.stdout.write(`${lines.join('\n')}\n`);
    return;
  }
  {
    const why = validImage(imageDir, key) ? [] : explainAgainstLast(guestDir, key, inputs).slice(1).map((l) => l.trim());
    if (why.length) log(`building because: ${why.join('; ')}`);
  }

  if (!opts.force && validImage(imageDir, key)) {
    log(`up to date: ${imageDir} (kernel ${kernelVersion})`);
    process.stdout.write(`${manifestPath}\n`);
    return;
  }

  log(`building the guest image linux-${key.slice(0, 16)} (kernel ${kernelVersion}) in ${guestDir}`);
  mkdirSync(guestDir, { recursive: true });
  sweepStale(guestDir);
  const work = join(guestDir, `.build-${key.slice(0, 16)}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const tmpImage = join(work, 'image');
  // No signal handlers: a killed build dies at once and leaves only this .build-* directory,
  // which the next build sweeps (sweepStale); the image directory appears only by rename.
  const cleanup = () => rmSync(work, { recursive: true, force: true });
  try {
    const extra = build({ key, kernelVersion, versions, config, sourceSets, work, out: tmpImage });
    // Paths in the manifest are those of the final directory.
    const manifest = {
      schema: SCHEMA,
      os: 'linux',
      kernelVersion,
      key,
      kernel: join(imageDir, extra.kernel),
      initrd: join(imageDir, 'initrd.img'),
      sshKey: join(imageDir, 'id_ed25519'),
      sshUser: config.sshUser ?? 'root',
      hostKeyFingerprint: extra.hostKeyFingerprint,
      hostPublicKey: extra.hostPublicKey,
      append: (config.append ?? []).join(' '),
      readyMarker: config.readyMarker ?? 'hilbox-guest: sshd ready',
      nic: config.nic ?? 'virtio-net-pci',
      packages: Object.fromEntries([...versions].sort()),
      inputs,
      builtAt: new Date().toISOString(),
    };
    writeFileSync(join(tmpImage, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    if (existsSync(imageDir)) {
      if (!opts.force && validImage(imageDir, key)) {
        log('a parallel build finished first; using its image');
      } else {
        rmSync(imageDir, { recursive: true, force: true });
      }
    }
    if (!existsSync(imageDir)) {
      try {
        renameSync(tmpImage, imageDir);
      } catch (e) {
        if (!validImage(imageDir, key)) throw e;
      }
    }
  } finally {
    cleanup();
  }
  log(`done in ${secs()}: ${imageDir}`);
  process.stdout.write(`${manifestPath}\n`);
}

try {
  main();
} catch (e) {
  log(`error: ${e instanceof BuildError ? e.message : e.stack ?? e}`);
  process.exit(1);
}
