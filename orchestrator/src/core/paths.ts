/** Where hilbox keeps its build caches and where the repository lives. One job: paths. */
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (the directory holding package.json). */
export const repoRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Cache root: $HILBOX_CACHE, else $XDG_CACHE_HOME/hilbox, else ~/.cache/hilbox. */
export function cacheRoot(): string {
  if (process.env.HILBOX_CACHE) return resolve(process.env.HILBOX_CACHE);
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg ? resolve(xdg) : join(homedir(), '.cache'), 'hilbox');
}

/** Firmware directories a QEMU built without blobs needs (-L), from Debian's seabios and qemu-system-data. */
export const firmwareDirs: readonly string[] = ['/usr/share/seabios', '/usr/share/qemu'];
