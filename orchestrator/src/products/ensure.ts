/**
 * Obtains the build products hilbox needs — the QEMU binary with hilbox-pci, the Linux guest
 * image, the Windows probe — by running the project's own cached build scripts (a no-op when
 * up to date).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { cacheRoot, repoRoot } from '../core/paths.ts';
import { stampUse } from './cache.ts';

export interface GuestManifest {
  schema: 'hilbox-guest/1';
  os: 'linux';
  kernelVersion: string;
  key: string;
  kernel: string;
  initrd: string;
  sshKey: string;
  sshUser: string;
  hostKeyFingerprint?: string;
  append: string;
  readyMarker: string;
  nic: string;
  builtAt?: string;
}

export interface EnsureOptions {
  /** Receives each progress line of the build script (stderr). Default: discard. */
  onProgress?: (line: string) => void;
  /**
   * The guest build's kernel is on disk (before the rest of the image is): called with its path
   * when the build prints KERNEL_READY_LINE, so the KVM probe can start while the image builds.
   * A guest that was up to date prints nothing: the caller has the manifest's kernel soon enough.
   */
  onKernel?: (path: string) => void;
}

/** The line scripts/build-guest.mjs prints on stderr once the kernel it boots is unpacked. */
export const KERNEL_READY_LINE = /^build:guest: kernel ready: (\/.+)$/;

/** Runs `zx scripts/<script>` and returns its last stdout line; errors carry the script's tail. */
async function runBuildScript(script: string, opts: EnsureOptions): Promise<string> {
  const zx = join(repoRoot, 'node_modules', '.bin', 'zx');
  const child = execa(zx, [join(repoRoot, 'scripts', script)], { cwd: repoRoot, reject: false, all: false });
  const tail: string[] = [];
  child.stderr?.setEncoding('utf8');
  let pending = '';
  child.stderr?.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      tail.push(line);
      if (tail.length > 60) tail.shift();
      opts.onProgress?.(line);
      const k = KERNEL_READY_LINE.exec(line);
      if (k) opts.onKernel?.(k[1]!);
    }
  });
  const result = await child;
  const last = String(result.stdout ?? '').trim().split('\n').pop()?.trim() ?? '';
  if (result.exitCode !== 0 || !last.startsWith('/')) {
    throw new Error(`scripts/${script} failed (exit ${result.exitCode}):\n${[...tail, pending].join('\n').trim()}`);
  }
  stampUse(cacheRoot(), last); // `hilbox cache prune` keeps what is used
  return last;
}

/**
 * What the next `hilbox build` would do and why: each build script's `--explain` (which input
 * changed the key since the last build), building nothing. $HILBOX_QEMU / $HILBOX_GUEST say so.
 */
export async function explainBuilds(what: 'qemu' | 'guest' | 'all' = 'all'): Promise<string[]> {
  const zx = join(repoRoot, 'node_modules', '.bin', 'zx');
  const explain = async (script: string): Promise<string[]> => {
    const r = await execa(zx, [join(repoRoot, 'scripts', script), '--explain'], { cwd: repoRoot, reject: false });
    if (r.exitCode !== 0) throw new Error(`scripts/${script} --explain failed (exit ${r.exitCode}):\n${String(r.stderr).trim()}`);
    return String(r.stdout).trim().split('\n');
  };
  return [
    ...(what === 'guest' ? [] : process.env.HILBOX_QEMU ? [`QEMU: $HILBOX_QEMU=${process.env.HILBOX_QEMU} is used; nothing is built`] : await explain('build-qemu.mjs')),
    ...(what === 'qemu' ? [] : process.env.HILBOX_GUEST ? [`guest: $HILBOX_GUEST=${process.env.HILBOX_GUEST} is used; nothing is built`] : await explain('build-guest.mjs')),
  ];
}

/**
 * One build per process: the first call runs the script, later calls share its result; a failed
 * build is forgotten so the next call tries again.
 */
function once<T>(build: (opts: EnsureOptions) => Promise<T>): ((opts?: EnsureOptions) => Promise<T>) & { readonly done: boolean } {
  let result: Promise<T> | undefined;
  let done = false;
  const run = (opts: EnsureOptions = {}): Promise<T> =>
    (result ??= build(opts).then(
      (v) => ((done = true), v),
      (e: unknown) => {
        result = undefined;
        throw e;
      },
    ));
  return Object.defineProperty(run, 'done', { get: () => done }) as typeof run & { readonly done: boolean };
}

const buildQemu = once((o) => runBuildScript('build-qemu.mjs', o));
const buildGuest = once((o) => runBuildScript('build-guest.mjs', o).then(readGuestManifest));

/** Absolute path of qemu-system-x86_64 with hilbox-pci; $HILBOX_QEMU overrides the build. */
export function ensureQemu(opts: EnsureOptions = {}): Promise<string> {
  return process.env.HILBOX_QEMU ? Promise.resolve(process.env.HILBOX_QEMU) : buildQemu(opts);
}

/** Whether ensureQemu / ensureGuest would return at once: built (or checked up to date) earlier in this process, or overridden. */
export const qemuReady = (): boolean => Boolean(process.env.HILBOX_QEMU) || buildQemu.done;
export const guestReady = (): boolean => Boolean(process.env.HILBOX_GUEST) || buildGuest.done;

/** Reads and checks a guest manifest file. */
export async function readGuestManifest(path: string): Promise<GuestManifest> {
  const m = JSON.parse(await readFile(path, 'utf8')) as GuestManifest;
  if (m.schema !== 'hilbox-guest/1') throw new Error(`${path}: not a hilbox guest manifest (schema ${String(m.schema)})`);
  return m;
}

/** The Linux guest image (kernel, initramfs, SSH key); $HILBOX_GUEST names a manifest to use instead. */
export function ensureGuest(opts: EnsureOptions = {}): Promise<GuestManifest> {
  return process.env.HILBOX_GUEST ? readGuestManifest(process.env.HILBOX_GUEST) : buildGuest(opts);
}

/** hilbox-probe.exe, cross-built with mingw-w64 by scripts/build-windows-probe.mjs (cached). */
export const ensureWindowsProbe = once((o) => runBuildScript('build-windows-probe.mjs', o));

/** The project's Windows driver package directory (scripts/build-windows.mjs: .sys, .inf, signed .cat, certificates). */
export const ensureWindowsPackage = once((o) => runBuildScript('build-windows.mjs', o));
