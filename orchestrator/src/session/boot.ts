/**
 * Boots the guest a scenario describes — QEMU with hilbox-pci and its properties, the host mouse
 * feed when asked — and installs the driver. One path for every guest OS; shared by `run`,
 * `exec`, `shell` and `bench`.
 */
import { dirname, resolve } from 'node:path';
import { ensureQemu, guestReady, qemuReady } from '../products/ensure.ts';
import { HilboxVm } from '../lib/hilbox-vm.ts';
import type { StartedHilboxVm } from '../lib/started-vm.ts';
import { guestForScenario } from '../guest/for-scenario.ts';
import { earlyAccelProbe } from './early-accel.ts';
import { deviceProperties, wantsFeed } from '../scenario/device-props.ts';
import { loadDefaultScenario, loadScenarioFile } from '../scenario/load.ts';
import type { Scenario } from '../scenario/schema.ts';
import type { Output } from '../core/output.ts';
import { UsageError } from '../core/errors.ts';
import { checkRealtimeFits, rtThrottleShare } from '../vm/realtime.ts';
import { cpus as hostCpus } from 'node:os';

export interface LoadedScenario {
  scenario: Scenario;
  /** What to call it in messages. */
  source: string;
  /** Directory relative paths in the scenario are resolved against. */
  baseDir: string;
}

export function loadScenario(path: string | undefined): LoadedScenario {
  if (!path) return { scenario: loadDefaultScenario(), source: 'fixtures/default.yaml (embedded default)', baseDir: process.cwd() };
  return { scenario: loadScenarioFile(resolve(path)), source: path, baseDir: dirname(resolve(path)) };
}

export interface BootOptions {
  out: Output;
  /** Directory relative paths of the scenario are resolved against (default: cwd). */
  baseDir?: string;
  /** Directory for console.log and qmp.log (kept after the run). */
  logDir?: string;
  loadDriver?: boolean;
  /** Extra device properties overriding the scenario's (e.g. for bench variants). */
  deviceOverrides?: Record<string, string | number | boolean>;
  /** Called with the milliseconds from QEMU start to the first command run over SSH. */
  onBooted?: (ms: number) => void;
  /** Kernel arguments added to the guest's own (Linux guests; `hilbox boot-time --kernel-args`). */
  kernelArgs?: string;
  /** Where boot snapshots live (default <cache>/boot). */
  bootSnapshotDir?: string;
  /** QEMU with the host's transparent huge pages (`hilbox boot-time --thp`; default without). */
  hugePages?: boolean;
}

export async function bootScenario(scenario: Scenario, opts: BootOptions): Promise<StartedHilboxVm> {
  const { out } = opts;
  const baseDir = opts.baseDir ?? process.cwd();
  const rt = scenario.realtime ? checkRealtimeFits(scenario.cpus, hostCpus().length, rtThrottleShare()) : undefined;
  if (rt) throw new UsageError(`scenario ${scenario.name}: realtime: ${rt}`);
  // The build steps show only when a build may run: after `hilbox run`'s builds they are silent.
  if (!qemuReady()) out.step('building QEMU with hilbox-pci');
  const qemu = await ensureQemu({ onProgress: (l) => out.progress(l) });
  if (scenario.guest.os === 'linux' && !guestReady()) out.step(`preparing the ${scenario.guest.os} guest`);
  const early = earlyAccelProbe(scenario.icount === undefined ? scenario.accelerator : 'tcg', qemu, (m) => out.warn(m));
  const guest = await guestForScenario(scenario.guest, { baseDir, onProgress: (l) => out.progress(l), onKernel: (k) => early.onKernel(k) });
  if (guest.probeKernel) early.onKernel(guest.probeKernel);
  out.step(`booting ${guest.description} (accelerator ${scenario.icount !== undefined ? `tcg, icount shift=${scenario.icount}` : scenario.accelerator})`);
  const props = { ...deviceProperties(scenario.device), ...(opts.deviceOverrides ?? {}) };
  let builder = new HilboxVm({ warn: (m) => out.warn(m) })
    .withQemu(qemu)
    .withGuest(guest)
    .withDevice(props)
    .withAccel(scenario.accelerator)
    .withMemory(scenario.memory)
    .withCpus(scenario.cpus);
  if (scenario.icount !== undefined) builder = builder.withIcount(scenario.icount);
  if (scenario.realtime) builder = builder.withRealtime();
  // A Linux guest resumes its configuration's boot snapshot (vm/boot-snapshot.ts); icount runs boot cold.
  if (scenario.bootSnapshot && guest.os === 'linux') builder = builder.withBootSnapshots(opts.bootSnapshotDir);
  if (opts.kernelArgs) builder = builder.withKernelArgs(opts.kernelArgs);
  if (opts.hugePages) builder = builder.withHugePages();
  if (wantsFeed(scenario.device)) builder = builder.withMouseFeed();
  if (opts.logDir) builder = builder.withLogDir(opts.logDir);
  if (scenario.timeouts?.bootSeconds) builder = builder.withBootTimeout(scenario.timeouts.bootSeconds * 1000);
  const bootStarted = Date.now();
  // start() returns once the guest's readiness strategy has run a command over SSH.
  const vm = await builder.start();
  try {
    opts.onBooted?.(Date.now() - bootStarted);
    out.done(`guest up (${vm.accel}, ssh port ${vm.sshPort})`);
    if (opts.loadDriver !== false) {
      out.step(`installing the driver`);
      const d = scenario.driver;
      const r = await vm.loadDriver(d?.path || d?.params ? { ...(d.path ? { path: resolve(baseDir, d.path) } : {}), ...(d.params ? { params: d.params } : {}) } : undefined);
      if (r.code !== 0) throw new Error(`installing the driver failed (exit ${r.code}): ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join(' | ')}`);
      out.done('driver installed');
    }
    return vm;
  } catch (e) {
    await vm.stop();
    throw e;
  }
}
