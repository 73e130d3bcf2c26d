/**
 * The launcher's guest-neutral parts, proven on the Linux guest that runs here so the Windows
 * path rides tested code: the SSH-command readiness strategy (what Windows boots with) against a
 * real SSH server, and a pvpanic report turned into a crash by the QMP event line (what a
 * Windows bugcheck looks like to hilbox).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { HilboxVm } from '../../orchestrator/src/lib/hilbox-vm.ts';
import { GuestCrashError } from '../../orchestrator/src/core/errors.ts';
import { SshCommandReadiness } from '../../orchestrator/src/vm/readiness.ts';
import { linuxGuest, qemuPath } from './helpers.ts';

describe('guest-neutral launcher parts on a real guest', () => {
  it('SshCommandReadiness: polls SSH until the command answers as expected', async () => {
    await using vm = await new HilboxVm()
      .withQemu(await qemuPath())
      .withGuest(await linuxGuest())
      .withAccel('auto')
      .withMemory('256M')
      .withReadiness(new SshCommandReadiness('uname -s', /Linux/, 500))
      .start();
    expect((await vm.ssh.run('echo up')).stdout).toBe('up\n');
  }, 180_000);

  it('realtime: every QEMU thread under SCHED_FIFO, the main loop one priority above the vCPUs', async () => {
    await using vm = await new HilboxVm()
      .withQemu(await qemuPath())
      .withGuest(await linuxGuest())
      .withAccel('auto')
      .withMemory('256M')
      .withCpus(2)
      .withRealtime()
      .start();
    expect(vm.scheduling).toBe('fifo (priority 1)');
    const pid = vm.machine.pid!;
    const policy = (tid: string): string => execFileSync('chrt', ['-p', tid], { encoding: 'utf8' });
    const tids = readdirSync(`/proc/${pid}/task`);
    expect(tids.length).toBeGreaterThan(2); // main loop, vCPUs, render thread, ...
    for (const tid of tids) expect(policy(tid)).toMatch(/SCHED_FIFO/);
    expect(policy(String(pid))).toMatch(/priority: 2/);
    expect(tids.filter((t) => t !== String(pid)).every((t) => /priority: 1/.test(policy(t)))).toBe(true);
    expect((await vm.ssh.run('echo up')).stdout).toBe('up\n'); // a guest that boots under it
  }, 180_000);

  it('a pvpanic report becomes GuestCrashError through the QMP GUEST_PANICKED line', async () => {
    const vm = await new HilboxVm()
      .withQemu(await qemuPath())
      .withGuest(await linuxGuest())
      .withAccel('auto')
      .withMemory('256M')
      .withQemuArgs('-device', 'pvpanic')
      .start();
    try {
      // What a guest's pvpanic driver does on a crash: write PVPANIC_PANICKED (1) to port 0x505.
      const err = await vm
        .exec("printf '\\001' | dd of=/dev/port bs=1 seek=1285 count=1 2>/dev/null; sleep 30")
        .then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(GuestCrashError);
      expect((err as GuestCrashError).signature).toBe('guest-panicked');
      expect((err as GuestCrashError).message).toMatch(/hilbox: QMP GUEST_PANICKED/);
    } finally {
      await vm.stop();
      await rm(vm.machine.runDir, { recursive: true, force: true }); // a failed VM keeps its logs
    }
  }, 180_000);
});
