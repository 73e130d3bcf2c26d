/**
 * The build cache as entries a user can see and prune. One job: list, stamp, prune and clean
 * what lives under the cache root (core/paths.ts cacheRoot).
 *
 * Layout (written by scripts/build-*.mjs): `qemu/<key>/` (a QEMU build), `qemu/tree-<version>/`
 * (the persistent source and build tree a device change recompiles in), `guest/linux-<key>/`,
 * `boot/<key>/` (a booted guest's state, written by the launcher: vm/boot-snapshot.ts),
 * `windows/<key>/` (a driver package), `windows/pki/` (the test PKI with its keys),
 * `windows-probe/<key>/`, and the downloads `debs/`, `kernel/<version>/`, `qemu-src/`, plus
 * `accel/` (the KVM verdict). Keyed entries are stamped each time the orchestrator uses
 * them, in a file beside the entry (`<entry>.last-used`, never inside it: a driver package is
 * uploaded whole and a build directory is a product); prune removes keyed entries not used for N days that are not
 * current (`qemu/current`, `qemu/current-sanitizers`).
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync, lstatSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

export type CacheKind = 'qemu' | 'qemu-tree' | 'guest' | 'boot' | 'windows' | 'windows-pki' | 'windows-probe' | 'kernel' | 'debs' | 'qemu-src' | 'accel';
export const CACHE_KINDS: readonly CacheKind[] = ['qemu', 'qemu-tree', 'guest', 'boot', 'windows', 'windows-pki', 'windows-probe', 'kernel', 'debs', 'qemu-src', 'accel'];
/** Kinds prune may remove (rebuilt from their inputs on the next use). */
const PRUNABLE: ReadonlySet<CacheKind> = new Set(['qemu', 'guest', 'boot', 'windows', 'windows-probe']);

export interface CacheEntry {
  kind: CacheKind;
  /** The entry's name under its directory (a build key, a version, or the directory itself). */
  key: string;
  path: string;
  bytes: number;
  /** The last use stamp, else the entry's own modification time. */
  lastUsed: Date;
  /** Named by qemu/current or qemu/current-sanitizers: never pruned. */
  current: boolean;
}

export const STAMP = '.last-used';
/** The use stamp of the entry at `path`: a sibling file, so the entry holds only its product. */
export const stampPath = (path: string): string => `${path}${STAMP}`;

/** Bytes under `path` (files, not following links). */
function sizeOf(path: string): number {
  const st = lstatSync(path);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const name of readdirSync(path)) total += sizeOf(join(path, name));
  return total;
}

function entry(root: string, kind: CacheKind, path: string, current: ReadonlySet<string>): CacheEntry {
  const stamp = stampPath(path);
  const lastUsed = existsSync(stamp) ? statSync(stamp).mtime : statSync(path).mtime;
  return { kind, key: relative(root, path).split(sep).slice(1).join('/') || relative(root, path), path, bytes: sizeOf(path), lastUsed, current: current.has(path) };
}

const dirs = (p: string): string[] => (existsSync(p) ? readdirSync(p).filter((n) => statSync(join(p, n)).isDirectory()) : []);

/** Build directories the `current` pointers name. */
function currentBuilds(root: string): Set<string> {
  const out = new Set<string>();
  for (const f of ['current', 'current-sanitizers']) {
    const p = join(root, 'qemu', f);
    if (!existsSync(p)) continue;
    const bin = readFileSync(p, 'utf8').trim(); // <root>/qemu/<key>/bin/qemu-system-x86_64
    const rel = relative(join(root, 'qemu'), bin).split(sep);
    if (rel.length >= 1 && rel[0] && rel[0] !== '..') out.add(join(root, 'qemu', rel[0]));
  }
  return out;
}

/** Every entry under the cache root, largest first. */
export function listCache(root: string): CacheEntry[] {
  if (!existsSync(root)) return [];
  const current = currentBuilds(root);
  const out: CacheEntry[] = [];
  for (const name of dirs(join(root, 'qemu'))) {
    out.push(entry(root, name.startsWith('tree-') ? 'qemu-tree' : 'qemu', join(root, 'qemu', name), current));
  }
  for (const name of dirs(join(root, 'guest'))) out.push(entry(root, 'guest', join(root, 'guest', name), current));
  for (const name of dirs(join(root, 'boot'))) out.push(entry(root, 'boot', join(root, 'boot', name), current));
  for (const name of dirs(join(root, 'windows'))) out.push(entry(root, name === 'pki' ? 'windows-pki' : 'windows', join(root, 'windows', name), current));
  for (const name of dirs(join(root, 'windows-probe'))) out.push(entry(root, 'windows-probe', join(root, 'windows-probe', name), current));
  for (const name of dirs(join(root, 'kernel'))) out.push(entry(root, 'kernel', join(root, 'kernel', name), current));
  for (const kind of ['debs', 'qemu-src', 'accel'] as const) if (existsSync(join(root, kind))) out.push(entry(root, kind, join(root, kind), current));
  return out.sort((a, b) => b.bytes - a.bytes);
}

/** Marks the keyed entry holding `productPath` (a build script's result) as used now. */
export function stampUse(root: string, productPath: string): void {
  const rel = relative(root, productPath).split(sep);
  if (rel.length < 2 || rel[0] === '..' || !rel[0] || !rel[1]) return;
  const dir = join(root, rel[0], rel[1]);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return;
  const stamp = stampPath(dir);
  const now = new Date();
  rmSync(join(dir, STAMP), { force: true }); // a stamp an older hilbox left inside the entry
  if (existsSync(stamp)) utimesSync(stamp, now, now);
  else writeFileSync(stamp, `${now.toISOString()}\n`);
}

/** Keyed entries (qemu, guest, boot, windows, windows-probe) unused for `days`, never a current one. */
export function pruneCandidates(root: string, days: number, now = new Date()): CacheEntry[] {
  const limit = now.getTime() - days * 86_400_000;
  return listCache(root).filter((e) => PRUNABLE.has(e.kind) && !e.current && e.lastUsed.getTime() < limit);
}

/** Removes `entries`; returns the bytes freed. */
export function removeEntries(entries: readonly CacheEntry[]): number {
  let freed = 0;
  for (const e of entries) {
    rmSync(e.path, { recursive: true, force: true });
    rmSync(stampPath(e.path), { force: true });
    freed += e.bytes;
  }
  return freed;
}

/** Human size: 1.2 GiB, 340 MiB, 12 KiB. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v >= 10 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}
