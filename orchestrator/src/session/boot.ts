/**
 * Boots the guest a scenario describes — QEMU with hilbox-pci and its properties, the host
 * mouse feed when asked — and loads the driver. Shared by `run`, `exec`, `shell` and `bench`.
 */
import { resolve } from 'node:path';
import { ensureGuest, ensureQemu } from '../build/ensure.ts';
import { HilboxVm } from '../lib/hilbox-vm.ts';
import type { StartedHilboxVm } from '../lib/started-vm.ts';
import { deviceProperties, wantsFeed } from '../scenario/device-props.ts';
import { loadDefaultScenario, loadScenarioFile } from '../scenario/load.ts';
import type { Scenario } from '../scenario/schema.ts';
import type { Output } from '../cli/output.ts';
import { UsageError } from '../cli/errors.ts';
import { bootWindowsScenario } from '../vm/windows-guest.ts';

export function loadScenario(path: string | undefined): { scenario: Scenario; source: string } {
  if (!path) return { scenario: loadDefaultScenario(), source: 'fixtures/default.yaml (embedded default)' };
  return { scenario: loadScenarioFile(resolve(path)), source: path };
}

export interface BootOptions {
  out: Output;
  /** Directory for console.log and qmp.log (kept after the run). */
  logDir?: string;
  loadDriver?: boolean;
  /** Extra device properties overriding the scenario's (e.g. for bench variants). */
  deviceOverrides?: Record<string, string | number | boolean>;
  /** Called with the milliseconds from QEMU start to the first command run over SSH. */
  onBooted?: (ms: number) => void;
}

export async function bootScenario(scenario: Scenario, opts: BootOptions): Promise<StartedHilboxVm> {
  const { out } = opts;
  if (scenario.guest.os === 'windows') {
    if (!scenario.guest.image) throw new UsageError('guest.image: no Windows image configured (build one with: hilbox image windows --iso WIN.iso)');
    out.step('building QEMU with hilbox-pci (cached)');
    const qemu = await ensureQemu({ onProgress: (l) => out.progress(l) });
    const vm = await bootWindowsScenario(scenario, {
      qemu,
      ...(opts.logDir ? { logDir: opts.logDir } : {}),
      ...(opts.loadDriver === false ? { loadDriver: false } : {}),
      warn: (m) => out.warn(m),
      progress: (m) => out.step(m),
      ...(opts.onBooted ? { onBooted: opts.onBooted } : {}),
    });
    out.done(`Windows up (${vm.accel}, ssh port ${vm.sshPort})`);
    return vm;
  }
  out.step('building QEMU with hilbox-pci (cached)');
  const qemu = await ensureQemu({ onProgress: (l) => out.progress(l) });
  out.step('building the Linux guest image (cached)');
  const guest = await ensureGuest({ onProgress: (l) => out.progress(l) });
  out.step(`booting Linux ${guest.kernelVersion} (accelerator ${scenario.accelerator})`);
  const props = { ...deviceProperties(scenario.device), ...(opts.deviceOverrides ?? {}) };
  let builder = new HilboxVm({ warn: (m) => out.warn(m) })
    .withQemu(qemu)
    .withGuest(guest)
    .withDevice(props)
    .withAccel(scenario.accelerator)
    .withMemory(scenario.memory)
    .withCpus(scenario.cpus);
  if (wantsFeed(scenario.device)) builder = builder.withMouseFeed();
  if (opts.logDir) builder = builder.withLogDir(opts.logDir);
  if (scenario.timeouts?.bootSeconds) builder = builder.withBootTimeout(scenario.timeouts.bootSeconds * 1000);
  const bootStarted = Date.now();
  const vm = await builder.start();
  try {
    await vm.ssh.run('true');
    opts.onBooted?.(Date.now() - bootStarted);
    out.done(`guest up (${vm.accel}, ssh port ${vm.sshPort})`);
    if (opts.loadDriver !== false) {
      out.step('loading hilbox.ko');
      const r = await vm.loadDriver(scenario.driver?.path ? { ko: resolve(scenario.driver.path) } : undefined);
      if (r.code !== 0) throw new Error(`loading the driver failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
      out.done('driver loaded');
    }
    return vm;
  } catch (e) {
    await vm.stop();
    throw e;
  }
}
