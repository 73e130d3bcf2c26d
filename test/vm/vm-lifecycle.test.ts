/**
 * One booted VM (with hilbox-pci and the mouse feed when this QEMU has the device), reused by
 * the tests of this file; the destructive crash test runs last.
 */
import { existsSync } from 'node:fs';
import { access, readFile, readlink, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HilboxVm } from '../../orchestrator/src/lib/hilbox-vm.ts';
import type { StartedHilboxVm } from '../../orchestrator/src/lib/started-vm.ts';
import { GuestCrashError, InfraError, UsageError } from '../../orchestrator/src/core/errors.ts';
import { QMP_RESET_LINE } from '../../orchestrator/src/vm/crash-scan.ts';
import { NO_THP_HELPER } from '../../orchestrator/src/vm/qemu-command.ts';
import { hasHilboxDevice, linuxGuest, qemuPath } from './helpers.ts';

let vm: StartedHilboxVm;
let withDevice = false;

describe.sequential('VM lifecycle (real QEMU, real guest)', () => {
  beforeAll(async () => {
    const qemu = await qemuPath();
    withDevice = hasHilboxDevice(qemu);
    const b = new HilboxVm().withQemu(qemu).withGuest(await linuxGuest()).withAccel('auto').withMemory('512M').withCpus(1);
    if (withDevice) b.withDevice({ fps: 50, 'mouse-rate-hz': 0 }).withMouseFeed();
    vm = await b.withSnapshot().start();
  }, 300_000);

  afterAll(async () => {
    await vm?.stop();
    // The crash test leaves the run directory for post-mortem; this suite expects it.
    if (vm) await rm(vm.machine.runDir, { recursive: true, force: true });
  });

  it('runs guest commands over SSH and streams output', async () => {
    const chunks: string[] = [];
    const r = await vm.exec('uname -r; echo err >&2; exit 3', { onStdout: (c) => chunks.push(c) });
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^\d+\.\d+/);
    expect(r.stderr).toBe('err\n');
    expect(chunks.join('')).toBe(r.stdout);
    await expect(vm.ssh.run('false')).rejects.toThrow(/exit 1/);
    await access(vm.consoleLog);
  });

  it('QEMU runs in place of the build\'s hilbox-no-thp helper: same pid, transparent huge pages off', async (ctx) => {
    const helper = join(dirname(await qemuPath()), NO_THP_HELPER);
    if (process.env.HILBOX_QEMU && !existsSync(helper)) ctx.skip(); // a QEMU of one's own without the helper runs as it is
    expect(existsSync(helper), `${helper}: the QEMU build installs it`).toBe(true);
    const pid = vm.machine.pid!;
    expect(await readlink(`/proc/${pid}/exe`)).toMatch(/qemu-system-x86_64$/);
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    if (/^THP_enabled:/m.test(status)) expect(status).toMatch(/^THP_enabled:\s*0$/m); // kernels since 5.0 say so
    expect(await readFile(`/proc/${pid}/smaps_rollup`, 'utf8')).toMatch(/^AnonHugePages:\s+0 kB$/m);
  });

  it('uploads files', async () => {
    await vm.upload(new URL(import.meta.url).pathname, '/tmp/up.ts', 0o600);
    const r = await vm.ssh.run('stat -c %a /tmp/up.ts && grep -c "uploads files" /tmp/up.ts');
    expect(r.stdout.split('\n')[0]).toBe('600');
  });

  it('reads device counters and feeds mouse events (SPEC §6, §9)', async (ctx) => {
    if (!withDevice) ctx.skip();
    const before = await vm.deviceCounters();
    expect(before['frames-produced']).toBeGreaterThan(0);
    const res = await vm.mouseFeeder!.feed(40, { eventsPerSecond: 400, bundle: 4 });
    expect(res).toMatchObject({ events: 40, reports: 10, bytes: 640 });
    // No driver enabled events: every record is produced (numbered) and dropped (SPEC §5.1).
    let after = await vm.deviceCounters();
    for (let i = 0; i < 50 && after['events-produced'] < before['events-produced'] + 40; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await vm.deviceCounters();
    }
    expect(after['events-produced'] - before['events-produced']).toBe(40);
    expect(after['feed-errors']).toBe(before['feed-errors']);
  });

  // How much faster than a cold boot is measured by `hilbox bench` (case run/fast-reset), not here.
  it('fast reset (loadvm) restores the clean state', async () => {
    await vm.ssh.run('echo dirty > /tmp/marker');
    await vm.reset();
    const r = await vm.exec('cat /tmp/marker');
    expect(r.code).not.toBe(0);
  }, 120_000);

  // The path Windows takes after enabling Driver Verifier, proven on Linux: same launcher code.
  it('a deliberate reboot comes back ready through the guest readiness, not reported as a crash', async () => {
    const up0 = Number((await vm.ssh.run('cut -d. -f1 /proc/uptime')).stdout.trim());
    await vm.ssh.run('echo before > /tmp/reboot-marker');
    await vm.reboot();
    expect((await vm.exec('cat /tmp/reboot-marker')).code).not.toBe(0); // a fresh boot, not the old guest
    const up1 = Number((await vm.ssh.run('cut -d. -f1 /proc/uptime')).stdout.trim());
    expect(up1).toBeLessThanOrEqual(Math.max(up0, 60));
    expect(() => vm.assertNoCrash()).not.toThrow();
    const log = await readFile(vm.consoleLog, 'utf8');
    expect(log.split('hilbox-guest: sshd ready').length - 1).toBe(2);
    expect(log).not.toContain(QMP_RESET_LINE);
  }, 180_000);

  it('a kernel panic in the guest becomes GuestCrashError', async () => {
    const err = await vm.exec('echo c > /proc/sysrq-trigger').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GuestCrashError);
    const crash = err as GuestCrashError;
    expect(crash.signature).toBe('kernel-panic');
    expect(crash.message).toContain('sysrq triggered crash');
    expect(crash.consoleTail.length).toBeGreaterThan(0);
    expect(() => vm.assertNoCrash()).toThrow(GuestCrashError);
    expect(vm.machine.alive).toBe(false);
  }, 120_000);
});

describe('start-up failures', () => {
  it('refuses a device property SPEC §9 forbids, naming it, before QEMU starts', async () => {
    const err = await new HilboxVm()
      .withQemu('/nonexistent/qemu') // never reached
      .withGuest(await linuxGuest())
      .withDevice({ fps: 5000 })
      .start()
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe('device property fps: 5000 is out of range; allowed 1..1000');
  });

  it('a missing QEMU binary is an InfraError', async () => {
    const err = await new HilboxVm().withQemu('/nonexistent/qemu').withGuest(await linuxGuest()).start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfraError);
    expect((err as Error).message).toContain('/nonexistent/qemu');
  });
});
