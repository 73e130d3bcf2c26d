/** `hilbox build [qemu|guest|all]`: runs the cached builds and prints what they produced. */
import { ensureGuest, ensureQemu, explainBuilds } from '../../products/ensure.ts';
import type { Output } from '../output.ts';

export type BuildTarget = 'qemu' | 'guest' | 'all';

export interface BuildResult {
  qemu?: string;
  guestManifest?: string;
  kernelVersion?: string;
}

export async function buildCommand(target: BuildTarget, out: Output): Promise<BuildResult> {
  const result: BuildResult = {};
  const onProgress = (l: string) => out.progress(l);
  if (target === 'qemu' || target === 'all') {
    out.step('building QEMU with hilbox-pci');
    result.qemu = await ensureQemu({ onProgress });
    out.done(`QEMU: ${result.qemu}`);
  }
  if (target === 'guest' || target === 'all') {
    out.step('building the Linux guest image');
    const m = await ensureGuest({ onProgress });
    result.guestManifest = m.initrd.replace(/initrd\.img$/, 'manifest.json');
    result.kernelVersion = m.kernelVersion;
    out.done(`guest: Linux ${m.kernelVersion}`);
  }
  return result;
}

/** `hilbox build --explain`: whether each build is up to date and, if not, which input changed. */
export async function explainCommand(target: BuildTarget): Promise<string> {
  return (await explainBuilds(target)).join('\n');
}
