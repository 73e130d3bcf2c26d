/**
 * Cache keys for CI. One job: a short hash of every repository file a build reads, per build,
 * computed without building anything — so a CI job can restore `<cache>` (`~/.cache/hilbox`)
 * before `hilbox build` runs, and a job on another commit with the same build inputs restores
 * the same entry.
 *
 * The build scripts key their products on more than this (the Debian versions of the QEMU
 * source, the kernel and the guest packages, found through apt at build time). When only those
 * changed, a restored cache still holds the persistent QEMU tree and the downloads, and the
 * script rebuilds incrementally inside it: the key here decides what to restore, the script's
 * own key what to rebuild.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/** The repository paths (files or directories) each build reads. */
export const BUILD_INPUTS = {
  qemu: ['scripts/build-qemu.mjs', 'scripts/lib', 'scripts/host-packages.json', 'qemu-device', 'guest-driver/include'],
  guest: ['scripts/build-guest.mjs', 'scripts/lib', 'scripts/host-packages.json', 'guest-image', 'guest-driver/linux', 'guest-driver/include', 'guest-probe/common', 'guest-probe/linux'],
} as const;

export type BuildName = keyof typeof BUILD_INPUTS;

export interface BuildKeys {
  /** The host's distribution (ID and VERSION_ID of /etc/os-release): the builds use its packages. */
  host: string;
  qemu: string;
  guest: string;
  /** One key for the whole cache directory: `hilbox-<host>-<qemu>-<guest>`. */
  cache: string;
}

/** Every file under `rel` (a file or a directory), relative to `root`, sorted; no .git, no node_modules. */
function walk(root: string, rel: string): string[] {
  const abs = join(root, rel);
  if (!existsSync(abs)) return [];
  if (!lstatSync(abs).isDirectory()) return [rel];
  return readdirSync(abs)
    .filter((n) => n !== '.git' && n !== 'node_modules')
    .flatMap((n) => walk(root, `${rel}/${n}`))
    .sort();
}

/** The files git would commit under `paths` (tracked and untracked-not-ignored), else every file. */
export function inputFiles(root: string, paths: readonly string[]): string[] {
  const all = [...new Set(paths.flatMap((p) => walk(root, p)))].sort();
  const r = spawnSync('git', ['-C', root, 'ls-files', '-co', '--exclude-standard', '-z', '--', ...paths], { encoding: 'utf8' });
  if (r.status !== 0) return all;
  const listed = new Set(r.stdout.split('\0').filter(Boolean));
  return all.filter((f) => listed.has(f));
}

export function hostId(osRelease = '/etc/os-release'): string {
  let text = '';
  try {
    text = readFileSync(osRelease, 'utf8');
  } catch {
    return `${process.platform}-unknown`;
  }
  const field = (k: string) => new RegExp(`^${k}="?([^"\\n]*)"?$`, 'm').exec(text)?.[1] ?? '';
  return `${field('ID') || 'unknown'}${field('VERSION_ID')}`.replace(/[^A-Za-z0-9.]/g, '');
}

/** sha256 over each input file's path, executable bit and content (a link: its target), 16 hex digits. */
export function hashInputs(root: string, paths: readonly string[], host: string): string {
  const h = createHash('sha256');
  const add = (label: string, data: string | Buffer) => {
    h.update(`${label}\0${data.length}\0`);
    h.update(data);
  };
  add('host', host);
  for (const f of inputFiles(root, paths)) {
    const abs = join(root, f);
    const st = lstatSync(abs);
    add(f, st.isSymbolicLink() ? `->${readlinkSync(abs)}` : readFileSync(abs));
    add('x', st.mode & 0o111 ? '1' : '0');
  }
  return h.digest('hex').slice(0, 16);
}

export function buildKeys(root: string): BuildKeys {
  const host = hostId();
  const qemu = hashInputs(root, BUILD_INPUTS.qemu, host);
  const guest = hashInputs(root, BUILD_INPUTS.guest, host);
  return { host, qemu, guest, cache: `hilbox-${host}-${qemu}-${guest}` };
}

/** `NAME=value` lines, as GitHub's $GITHUB_OUTPUT and GitLab's dotenv reports read them. */
export function formatKeys(k: BuildKeys): string {
  return `HILBOX_HOST=${k.host}\nHILBOX_QEMU_KEY=${k.qemu}\nHILBOX_GUEST_KEY=${k.guest}\nHILBOX_CACHE_KEY=${k.cache}\n`;
}
