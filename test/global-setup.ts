/**
 * Builds (or reuses from cache) QEMU with hilbox-pci and the guest image once for the whole
 * test run, and hands the paths to every test file through HILBOX_QEMU / HILBOX_GUEST.
 */
import { join } from 'node:path';
import { ensureGuest, ensureQemu } from '../orchestrator/src/products/ensure.ts';

export default async function setup(): Promise<void> {
  const log = (l: string) => process.stderr.write(`  ${l}\n`);
  if (!process.env.HILBOX_QEMU) process.env.HILBOX_QEMU = await ensureQemu({ onProgress: log });
  if (!process.env.HILBOX_GUEST) {
    const m = await ensureGuest({ onProgress: log });
    process.env.HILBOX_GUEST = join(m.initrd, '..', 'manifest.json');
  }
}
