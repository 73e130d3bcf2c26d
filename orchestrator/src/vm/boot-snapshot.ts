/**
 * Boot snapshots: the state of a guest that has just booted (sshd listening, no driver loaded,
 * no SSH session yet), kept in the cache so the next VM of the same configuration resumes it
 * instead of booting again. One job: name a snapshot by everything that shapes the machine, and
 * say where it lives and how QEMU reads and writes it.
 *
 * The state is QEMU's own migration stream (`migrate` to a file, `-incoming defer` +
 * `migrate-incoming` from it), so it holds the guest's RAM and every device's vmstate,
 * hilbox-pci's included (SPEC §9a). The key covers the QEMU binary, the kernel and initrd (path,
 * size, mtime) and the whole argv with its per-run parts (run directory, forwarded port, name)
 * replaced: a device property, the memory, the vCPUs or the accelerator changing gives another key.
 * A VM generation ID device (`vmgenid`) is part of every machine that uses snapshots: QEMU gives a
 * resumed VM a new ID and the guest's kernel reseeds its random generator from it, so two VMs
 * resumed from one snapshot do not share session keys.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The QEMU arguments a machine that uses boot snapshots adds (both when saving and resuming). */
export const SNAPSHOT_DEVICE_ARGS: readonly string[] = ['-device', 'vmgenid,guid=auto'];

export interface SnapshotPaths {
  /** <store>/<key>/: one cache entry. */
  dir: string;
  /** The migration stream. */
  state: string;
  /** What made the key (argv), when and how big: for `hilbox cache list` readers and post-mortems. */
  meta: string;
}

export function snapshotPaths(store: string, key: string): SnapshotPaths {
  const dir = join(store, key);
  return { dir, state: join(dir, 'state.mig'), meta: join(dir, 'meta.json') };
}

/** The argv with what differs from run to run of one configuration replaced by placeholders. */
export function normalizedArgs(args: readonly string[], runDir: string, sshPort: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-name') {
      i++; // the VM's name is the host's label for it
      continue;
    }
    // Sockets are numbered by launch attempt (qmp-0.sock, qmp-1.sock after a port retry).
    out.push(a.split(runDir).join('<run>').replace(/(<run>\/[A-Za-z]+)-\d+\.sock/g, '$1.sock').replace(`tcp:127.0.0.1:${sshPort}-`, 'tcp:127.0.0.1:<port>-'));
  }
  return out;
}

/** A file's identity for the key: path, size and modification time (a rebuild in place changes it). */
function fileId(path: string): string {
  try {
    const st = statSync(path);
    return `${path}:${st.size}:${Math.round(st.mtimeMs)}`;
  } catch {
    return `${path}:missing`;
  }
}

/** The key of the snapshot a machine with this QEMU binary and argv would resume. */
export function snapshotKey(qemu: string, args: readonly string[], runDir: string, sshPort: number): string {
  const h = createHash('sha256');
  h.update('hilbox-boot-snapshot/1\n');
  h.update(fileId(qemu) + '\n');
  for (let i = 0; i < args.length - 1; i++) {
    if (args[i] === '-kernel' || args[i] === '-initrd' || args[i] === '-bios') h.update(fileId(args[i + 1]!) + '\n');
  }
  h.update(JSON.stringify(normalizedArgs(args, runDir, sshPort)));
  return h.digest('hex').slice(0, 16);
}

/** A path as one word of a POSIX shell command (QEMU's exec: migration runs `/bin/sh -c`). */
export function shellWord(path: string): string {
  if (path.includes("'")) throw new TypeError(`path ${JSON.stringify(path)} contains a single quote, which the snapshot command cannot carry`);
  return `'${path}'`;
}

/**
 * Migration URI that writes the stream to `path`, through the page cache: the next VM reads it
 * back from there. (Written with O_DIRECT the store took 150-250 ms instead of 300-450 ms on a
 * fresh host, but the first resume then read it from disk: 914 ms to load instead of 493 ms.)
 */
export const saveUri = (path: string): string => `exec:cat > ${shellWord(path)}`;
/** Migration URI that reads the stream from `path`. */
export const loadUri = (path: string): string => `exec:cat ${shellWord(path)}`;

/** Whether a complete snapshot is stored under `key` (written under a temporary name, then renamed). */
export function hasSnapshot(store: string, key: string): boolean {
  return existsSync(snapshotPaths(store, key).state);
}

/** The temporary name a process stores a snapshot under before renaming it into place. */
export function tempStatePath(p: SnapshotPaths, pid: number, tag: string): string {
  return `${p.state}.${pid}-${tag}.tmp`;
}

/**
 * Removes temporary states left in `dir` by processes that are gone (killed while storing, e.g.
 * by SIGINT); a living process's store in progress is left alone.
 */
export function removeStaleTemps(dir: string): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const m = /^state\.mig\.(\d+)-[0-9a-f]+\.tmp$/.exec(name);
    if (!m) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) rmSync(join(dir, name), { force: true });
  }
}
