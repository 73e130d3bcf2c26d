/**
 * The accelerator choice against the real QEMU and the real guest kernel: the KVM probe's
 * verdict and deadline, its cache, and a VM launched before any verdict exists (it boots under
 * TCG while the probe runs). On a host whose KVM works the same tests check the KVM side.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheRoot } from '../../orchestrator/src/core/paths.ts';
import { HilboxVm } from '../../orchestrator/src/lib/hilbox-vm.ts';
import {
  chooseAccel,
  knownAccel,
  probeKvm,
  KVM_PROBE_CEILING_MS,
  KVM_PROBE_FLOOR_MS,
  KVM_PROBE_TCG_FACTOR,
} from '../../orchestrator/src/vm/accel.ts';
import { linuxGuest, qemuPath } from './helpers.ts';

let qemu: string;
let kernel: string;
let tmp: string;

/** QEMU processes still running with `needle` in their command line. */
function qemusWith(needle: string): string[] {
  try {
    return execFileSync('pgrep', ['-af', 'qemu-system'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(needle));
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

describe.sequential('accelerator choice (real QEMU, real guest kernel)', () => {
  beforeAll(async () => {
    qemu = await qemuPath();
    kernel = (await linuxGuest()).probeKernel;
    tmp = await mkdtemp(join(tmpdir(), 'hilbox-accel-test-'));
  }, 300_000);

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('the probe returns a verdict within its ceiling and leaves no QEMU behind', async () => {
    const t0 = performance.now();
    const v = await probeKvm(qemu, kernel);
    const took = performance.now() - t0;
    expect(took).toBeLessThan(KVM_PROBE_CEILING_MS + 2000); // the bound the probe promises, plus the kill
    if (v.ok) {
      expect(v.reason).toMatch(/^KVM probe: guest kernel banner after \d+ ms$/);
    } else {
      // A KVM that fails is told by what it missed: the deadline TCG's banner set, or the ceiling.
      expect(v.reason).toMatch(/\/dev\/kvm is missing|under KVM: QEMU exited|no kernel banner within \d+ ms \((TCG printed it after \d+ ms|the ceiling); vCPU hangs or faults\)/);
      const m = /within (\d+) ms \(TCG printed it after (\d+) ms/.exec(v.reason);
      if (m) {
        const [limit, tcg] = [Number(m[1]), Number(m[2])];
        expect(limit).toBe(Math.min(KVM_PROBE_CEILING_MS, Math.max(KVM_PROBE_FLOOR_MS, KVM_PROBE_TCG_FACTOR * tcg)));
      }
    }
    expect(qemusWith('hilbox-kvm-probe')).toEqual([]);
  }, 30_000);

  it('the verdict is cached per host boot; a named accelerator needs no probe', async () => {
    const cacheDir = join(tmp, 'accel');
    const warnings: string[] = [];
    expect(await knownAccel('auto', { qemu, kernel, cacheDir })).toBeUndefined();
    const first = await chooseAccel('auto', { qemu, kernel, cacheDir, warn: (m) => warnings.push(m) });
    expect(first.cached).toBe(false);
    const files = await readdir(cacheDir);
    const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    expect(files).toEqual([`kvm-${bootId}.json`]);
    if (first.accel === 'tcg') expect(warnings.join('\n')).toMatch(/KVM unusable .*using TCG/);
    const again = await knownAccel('auto', { qemu, kernel, cacheDir });
    expect(again).toEqual({ ...first, cached: true });
    expect(await knownAccel('tcg', { qemu, kernel, cacheDir })).toMatchObject({ accel: 'tcg', reason: 'requested tcg' });
    expect(await knownAccel('auto')).toMatchObject({ accel: 'tcg', reason: 'no kernel to probe KVM with' });
  }, 30_000);

  it('callers that ask while a probe runs share it: one probe, one verdict, one warning', async () => {
    const cacheDir = join(tmp, 'accel-shared');
    const warnings: string[] = [];
    const warn = (m: string): void => void warnings.push(m);
    const [x, y] = await Promise.all([chooseAccel('auto', { qemu, kernel, cacheDir, warn }), chooseAccel('auto', { qemu, kernel, cacheDir, warn })]);
    expect(y).toBe(x); // the same decision object: the second caller got the first one's probe
    expect(x.cached).toBe(false);
    expect(warnings).toHaveLength(x.accel === 'tcg' ? 1 : 0);
    // Once it is in, the next caller reads the cache.
    expect(await chooseAccel('auto', { qemu, kernel, cacheDir, warn })).toEqual({ ...x, cached: true });
    expect(qemusWith('hilbox-kvm-probe')).toEqual([]);
  }, 30_000);

  it('a VM launched before any verdict boots while the probe runs and ends with the verdict', async () => {
    const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    await rm(join(cacheRoot(), 'accel', `kvm-${bootId}.json`), { force: true });
    const vm = await new HilboxVm().withQemu(qemu).withGuest(await linuxGuest()).withAccel('auto').withMemory('256M').withCpus(1).withSnapshot().start();
    const runDir = vm.machine.runDir;
    try {
      // The decision is the probe's, never the placeholder the speculative TCG boot started with.
      expect(vm.machine.decision.reason).toMatch(/^(KVM unusable: |KVM probe: )/);
      expect(vm.machine.decision.accel).toBe(vm.machine.decision.reason.startsWith('KVM probe:') ? 'kvm' : 'tcg');
      expect((await vm.exec('echo up')).stdout).toBe('up\n');
      // Exactly one QEMU for this VM: a discarded speculative one (KVM hosts) is gone.
      expect(qemusWith(runDir)).toHaveLength(1);
      expect(await knownAccel('auto', { qemu, kernel })).toMatchObject({ accel: vm.machine.decision.accel, cached: true });
    } finally {
      await vm.stop();
    }
    expect(qemusWith(runDir)).toEqual([]);
    expect(qemusWith('hilbox-kvm-probe')).toEqual([]);
  }, 120_000);
});
