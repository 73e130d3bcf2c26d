/**
 * What goes wrong around a VM: a boot that hangs, QEMU killed under us, two VMs at once, and the
 * orchestrator itself killed (no QEMU may survive it).
 */
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HilboxVm } from '../../orchestrator/src/lib/hilbox-vm.ts';
import { BootError, InfraError } from '../../orchestrator/src/core/errors.ts';
import { linuxGuest, pidAlive, qemuPath, waitGone } from './helpers.ts';

describe('boot failures', () => {
  it('a guest that never reaches sshd fails with BootError and its console, within the scaled timeout', async () => {
    // rdinit=/bin/sh: PID 1 is a shell waiting on the (silent) serial console, so the guest is
    // alive but never starts sshd nor prints the ready marker.
    const t0 = Date.now();
    const err = await new HilboxVm()
      .withQemu(await qemuPath())
      .withGuest(await linuxGuest())
      .withAccel('tcg')
      .withKernelArgs('rdinit=/bin/sh')
      .withBootTimeout(3000)
      .start()
      .then(() => undefined, (e: unknown) => e);
    const took = Date.now() - t0;
    expect(err).toBeInstanceOf(BootError);
    const e = err as BootError;
    expect(e.message).toMatch(/did not boot within 12000 ms \(tcg\): still waiting for ready marker/);
    expect(e.consoleTail.join('\n')).toMatch(/\S/);
    expect(e.consoleLogPath).toBeTruthy();
    const log = await readFile(e.consoleLogPath as string, 'utf8');
    expect(log).toContain((e.consoleTail.filter((l) => l.trim()).at(-1) ?? '').trim());
    expect(took).toBeLessThan(12_000 + 5_000);
    await rm(dirname(e.consoleLogPath as string), { recursive: true, force: true }); // kept for post-mortem
  }, 60_000);
});

describe('two VMs in parallel, then QEMU killed under one', () => {
  it('boots both on different ports; kill -9 of one QEMU is an InfraError, the other lives on', async () => {
    const [qemu, guest] = await Promise.all([qemuPath(), linuxGuest()]);
    const mk = () => new HilboxVm().withQemu(qemu).withGuest(guest).withAccel('auto').withMemory('256M').start();
    await using a = await mk();
    await using b = await mk();
    expect(a.sshPort).not.toBe(b.sshPort);
    const [ra, rb] = await Promise.all([a.ssh.run('echo a'), b.ssh.run('echo b')]);
    expect(ra.stdout + rb.stdout).toBe('a\nb\n');

    const pid = a.machine.pid as number;
    process.kill(pid, 'SIGKILL');
    const t0 = Date.now();
    const err = await a.exec('sleep 30').then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(InfraError);
    expect((err as Error).message).toMatch(/QEMU died \(killed by SIGKILL\)/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await b.ssh.run('echo still')).stdout).toBe('still\n');
    await a.stop();
    await rm(a.machine.runDir, { recursive: true, force: true }); // failed VMs keep their logs
  }, 300_000);
});

describe('no QEMU outlives the orchestrator', () => {
  const fixture = fileURLToPath(new URL('./fixtures/launch-and-wait.ts', import.meta.url));

  async function launchChild(): Promise<{ child: ReturnType<typeof spawn>; qemuPid: number }> {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
    const rl = createInterface({ input: child.stdout! });
    const line = await new Promise<string>((resolve, reject) => {
      rl.once('line', resolve);
      child.once('exit', (c) => reject(new Error(`fixture exited (${c}) before launching`)));
    });
    const qemuPid = (JSON.parse(line) as { qemuPid: number }).qemuPid;
    expect(pidAlive(qemuPid)).toBe(true);
    return { child, qemuPid };
  }

  it('kill -9 of the orchestrator: the reaper kills QEMU within seconds', async () => {
    const { child, qemuPid } = await launchChild();
    child.kill('SIGKILL');
    expect(await waitGone(qemuPid, 5000)).toBe(true);
  }, 60_000);

  it('SIGINT: QEMU is killed and the process dies of SIGINT (status 130)', async () => {
    const { child, qemuPid } = await launchChild();
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('exit', (c, s) => r([c, s])));
    child.kill('SIGINT');
    const [code, signal] = await exited;
    expect(signal === 'SIGINT' || code === 130).toBe(true);
    expect(await waitGone(qemuPid, 5000)).toBe(true);
  }, 60_000);

  it('SIGTERM likewise (status 143)', async () => {
    const { child, qemuPid } = await launchChild();
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('exit', (c, s) => r([c, s])));
    child.kill('SIGTERM');
    const [code, signal] = await exited;
    expect(signal === 'SIGTERM' || code === 143).toBe(true);
    expect(await waitGone(qemuPid, 5000)).toBe(true);
  }, 60_000);
});
