/** Shared by the real-VM tests: which QEMU and guest to use, and process checks. */
import { execFileSync } from 'node:child_process';
import { ensureGuest, ensureQemu } from '../../orchestrator/src/products/ensure.ts';
import { LinuxGuest } from '../../orchestrator/src/guest/linux.ts';

/** $HILBOX_QEMU or the project's build. */
export const qemuPath = (): Promise<string> => ensureQemu();

/** $HILBOX_GUEST or the project's build. */
export async function linuxGuest(): Promise<LinuxGuest> {
  if (process.env.HILBOX_GUEST) return LinuxGuest.fromManifestFile(process.env.HILBOX_GUEST);
  return LinuxGuest.fromManifest(await ensureGuest());
}

export function hasHilboxDevice(qemu: string): boolean {
  try {
    return execFileSync(qemu, ['-device', 'help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('"hilbox-pci"');
  } catch {
    return false;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers kill 0; it is dead for our purposes.
    return !/^\S+ \(.*\) Z/.test(execFileSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' }));
  } catch {
    return false;
  }
}

export async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!pidAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !pidAlive(pid);
}
