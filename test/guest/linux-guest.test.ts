/**
 * The Linux guest path against real parts: the project's QEMU with hilbox-pci, the Debian guest
 * kernel, Dropbear SSH, hilbox.ko and hilbox-probe. Boot, load the driver, a clean kernel log,
 * pixels of several frames verified from user space, generator and host-fed events in order, a
 * write through the mapping faulting in the guest while the device's write counter stays zero,
 * unload.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HilboxVm } from '../../orchestrator/src/lib/hilbox-vm.ts';
import type { StartedHilboxVm } from '../../orchestrator/src/lib/started-vm.ts';
import { runProbe } from '../../orchestrator/src/suites/probe.ts';
import { withExtraDevice } from '../../orchestrator/src/suites/devices.ts';
import { scanForCrashes } from '../../orchestrator/src/vm/crash-scan.ts';
import type { CaseResult } from '../../orchestrator/src/report/results.ts';

let vm: StartedHilboxVm;
const runDir = mkdtempSync(join(tmpdir(), 'hilbox-guest-test-'));
// A small picture so a seqlocked copy fits in one frame period under TCG.
const GEOMETRY = { width: 320, height: 240, fps: 50 };

const metric = (c: CaseResult, name: string) => c.metrics?.[name]?.value;
const probe = async (args: string[], dev?: string) => {
  const cases = await runProbe(vm, args, { suite: 'test', step: args[0]!, timeoutMs: vm.scaled(60_000), ...(dev ? { dev } : {}) });
  expect(cases.length, JSON.stringify(cases)).toBeGreaterThan(0);
  return cases;
};

beforeAll(async () => {
  vm = await new HilboxVm().withDevice({ ...GEOMETRY, 'mouse-rate-hz': 0 }).withMouseFeed().withAccel('auto').start();
});

afterAll(async () => {
  await vm?.stop();
  rmSync(runDir, { recursive: true, force: true });
});

describe('Linux guest with hilbox.ko', () => {
  it("init mounted /etc/fstab's file systems, set the hostname, brought lo and eth0 up and loaded the NIC modules", async () => {
    const mounts = (await vm.ssh.run('cat /proc/mounts')).stdout.split('\n').map((l) => l.split(' ')).filter((f) => f.length > 3);
    const at = (dir: string) => mounts.find((f) => f[1] === dir);
    for (const [dir, type] of [['/proc', 'proc'], ['/sys', 'sysfs'], ['/dev', 'devtmpfs'], ['/dev/pts', 'devpts'], ['/dev/shm', 'tmpfs'], ['/tmp', 'tmpfs'], ['/run', 'tmpfs'], ['/sys/kernel/debug', 'debugfs']] as const) {
      expect(at(dir)?.[2], `${dir} in /proc/mounts`).toBe(type);
    }
    expect(at('/dev/pts')?.[3]).toContain('ptmxmode=666');
    expect(at('/tmp')?.[3]).toContain('nodev');
    expect((await vm.ssh.run('hostname')).stdout.trim()).toBe('hilbox-guest');
    const links = (await vm.ssh.run('ip -o link show')).stdout;
    expect(links).toMatch(/\blo: <[^>]*\bUP\b/);
    expect(links).toMatch(/\beth0: <[^>]*\bUP\b/);
    const modules = (await vm.ssh.run('cat /proc/modules')).stdout;
    for (const m of ['virtio_pci', 'virtio_net', 'virtio_rng']) expect(modules).toMatch(new RegExp(`^${m} `, 'm'));
  });

  it('loads the driver, creates /dev/hilbox0 root-only, and the kernel log stays clean', async () => {
    await vm.loadDriver();
    const ls = await vm.ssh.run('stat -c "%a %U" /dev/hilbox0');
    expect(ls.stdout.trim()).toBe('600 root');
    const hits = scanForCrashes(await vm.kernelLog());
    expect(hits.map((h) => h.lines[0])).toEqual([]);
  });

  it('verifies every pixel of several frames through the mapping and the copy path', async () => {
    const [c] = await probe(['verify-frames', '--frames', '5', '--method', 'both']);
    expect(c!.status, c!.reason).toBe('pass');
    expect(metric(c!, 'mismatched_pixels') ?? 0).toBe(0);
  });

  it('receives host-fed events in order with sequence numbers (orchestrator -> chardev -> device -> guest)', async () => {
    const reading = probe(['read-events', '--count', '200', '--timeout-ms', String(vm.scaled(20_000))]);
    await new Promise((r) => setTimeout(r, 1500));
    const fed = await vm.mouseFeeder!.feed(200, { eventsPerSecond: 1000, bundle: 4 });
    expect(fed.events).toBe(200);
    const [c] = await reading;
    expect(c!.status, c!.reason).toBe('pass');
    expect(metric(c!, 'order_violations')).toBe(0);
    expect(metric(c!, 'seq_gaps')).toBe(0);
    const counters = await vm.deviceCounters();
    expect(counters['events-dropped']).toBe(0);
    expect(counters['events-delivered']).toBeGreaterThanOrEqual(200);
  });

  it('receives generator events in order from a hot-plugged device at 1 kHz', async () => {
    const cases = await withExtraDevice(vm, { id: 'hbgen', bus: 'rp1', props: { ...GEOMETRY, 'mouse-rate-hz': 1000 }, runDir }, (d) =>
      probe(['read-events', '--count', '300', '--timeout-ms', String(vm.scaled(20_000)), '--flush'], d.dev),
    );
    const [c] = cases;
    expect(c!.status, c!.reason).toBe('pass');
    expect(metric(c!, 'order_violations')).toBe(0);
    expect(metric(c!, 'records')).toBe(300);
  });

  it('a write through the mapping faults in the guest and never reaches the device', async () => {
    const before = await vm.deviceCounters();
    const [c] = await probe(['write-mapping']);
    expect(c!.status, c!.reason).toBe('pass');
    const after = await vm.deviceCounters();
    expect(after['fb-write-attempts']).toBe(0);
    expect(after['fb-write-attempts']).toBe(before['fb-write-attempts']);
  });

  it('unbinds with a live mapping (later access faults), rebinds, and works again', async () => {
    const bdf = (await vm.ssh.run('basename $(readlink -f /sys/class/misc/hilbox0/device)')).stdout.trim();
    expect(bdf).toMatch(/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/);
    // unplug-prepare maps the framebuffer and pends reads in a detached holder; unbind is a removal.
    const [prep] = await probe(['security', '--case', 'unplug-prepare']);
    expect(prep!.status, prep!.reason).toBe('pass');
    await vm.ssh.run(`echo ${bdf} > /sys/bus/pci/drivers/hilbox/unbind`);
    const checked = await probe(['security', '--case', 'unplug-check']);
    for (const c of checked) expect(c.status, `${c.name}: ${c.reason}`).toBe('pass');
    expect((await vm.exec('ls /dev/hilbox0')).code).not.toBe(0);
    await vm.ssh.run(`echo ${bdf} > /sys/bus/pci/drivers/hilbox/bind; for i in $(seq 50); do [ -e /dev/hilbox0 ] && break; sleep 0.1; done`);
    const [v] = await probe(['verify-frames', '--frames', '2', '--method', 'copy']);
    expect(v!.status, v!.reason).toBe('pass');
  });

  it('unloads cleanly with nothing left behind and no warning in the kernel log', async () => {
    await vm.unloadDriver();
    const lsmod = await vm.ssh.run('cat /proc/modules');
    expect(lsmod.stdout).not.toMatch(/^hilbox /m);
    expect((await vm.exec('ls /dev/hilbox0')).code).not.toBe(0);
    expect(scanForCrashes(await vm.kernelLog()).map((h) => h.lines[0])).toEqual([]);
    vm.assertNoCrash();
  });
});
