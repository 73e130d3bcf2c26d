/** `hilbox build [--only qemu|guest] [--boot-snapshots SCENARIO…]`: runs the cached builds and prints what they produced. */
import { ensureGuest, ensureQemu, explainBuilds } from '../../products/ensure.ts';
import type { Output } from '../output.ts';
import { bootScenario, loadScenario, type LoadedScenario } from '../../session/boot.ts';
import { checkGuestConfig } from '../../guest/for-scenario.ts';

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

export interface BootSnapshotResult {
  scenario: string;
  /** How its guest came up: `cold, boot snapshot stored`, `resumed from boot snapshot <key>` (there already), or why it has none. */
  outcome: string;
}

/** Reads and checks the scenarios of `--boot-snapshots` (before anything is built). */
export function loadBootSnapshotScenarios(paths: readonly string[]): LoadedScenario[] {
  return paths.map((p) => {
    const l = loadScenario(p);
    checkGuestConfig(l.scenario.guest, l.baseDir);
    return l;
  });
}

/**
 * `hilbox build --boot-snapshots SCENARIO…`: boots each scenario's configuration once, so its
 * boot snapshot is in the cache before anything runs (a CI build job saves it with the builds
 * and every shard resumes instead of booting cold). The scenarios were read and checked before
 * anything was built (loadBootSnapshotScenarios); one whose guest boots cold by design
 * (snapshots off, icount, Windows) is named and skipped. A configuration already stored resumes
 * once, which proves its snapshot loads.
 */
export async function bootSnapshotsCommand(loaded: readonly LoadedScenario[], out: Output): Promise<BootSnapshotResult[]> {
  const results: BootSnapshotResult[] = [];
  for (const { scenario, source, baseDir } of loaded) {
    const why = scenario.guest.os !== 'linux' ? `a ${scenario.guest.os} guest always boots cold` : !scenario.bootSnapshot ? 'bootSnapshot: false' : scenario.icount !== undefined ? 'icount runs boot cold' : undefined;
    if (why) {
      out.warn(`hilbox: ${source}: no boot snapshot (${why})`);
      results.push({ scenario: source, outcome: `none (${why})` });
      continue;
    }
    out.step(`boot snapshot of ${source}`);
    await using vm = await bootScenario(scenario, { out, baseDir, loadDriver: false });
    out.done(vm.bootKind);
    results.push({ scenario: source, outcome: vm.bootKind });
  }
  return results;
}
