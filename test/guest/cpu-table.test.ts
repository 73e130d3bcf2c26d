/**
 * The CPU table's probe case against real parts: the project's QEMU with hilbox-pci, the Debian
 * guest kernel, hilbox.ko and hilbox-probe's fb-consume. Every method consumes frames at the
 * device's rate on the booted device, and the books balance (each frame consumed is a distinct
 * frame published during the phase, missed = published - consumed);
 * the seqlock never hands over a torn frame, also on a hot-plugged trapping BAR with a read
 * latency, where a read outlasts a frame period; the suite's runner measures a small table on
 * hot-plugged devices and unplugs them (by the guest's own eject of the slot). Nothing here depends on how fast the host is: what a
 * method costs is the benchmark's answer (hilbox bench), not a test's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentOutput } from '../../orchestrator/src/core/output.ts';
import { HilboxVm } from '../../orchestrator/src/lib/hilbox-vm.ts';
import type { StartedHilboxVm } from '../../orchestrator/src/lib/started-vm.ts';
import { cpuRows } from '../../orchestrator/src/report/cpu-table.ts';
import { isMetricName } from '../../orchestrator/src/report/metric-names.ts';
import type { CaseResult } from '../../orchestrator/src/report/results.ts';
import { guestTraits } from '../../orchestrator/src/guest/for-scenario.ts';
import { parseScenario } from '../../orchestrator/src/scenario/load.ts';
import { planCpuTable, runCpuTable } from '../../orchestrator/src/suites/cpu-table.ts';
import { withExtraDevice } from '../../orchestrator/src/suites/devices.ts';
import { runProbe } from '../../orchestrator/src/suites/probe.ts';
import { scanForCrashes } from '../../orchestrator/src/vm/crash-scan.ts';

let vm: StartedHilboxVm;
const runDir = mkdtempSync(join(tmpdir(), 'hilbox-cpu-test-'));
const GEOMETRY = { width: 320, height: 240, fps: 10 };
const SECONDS = 2;

const metric = (c: CaseResult, name: string) => c.metrics?.[name]?.value;
const consume = async (method: string, dev?: string) => {
  const cases = await runProbe(vm, ['fb-consume', '--method', method, '--seconds', String(SECONDS), '--seqlock', 'both'], { suite: 'test', step: method, timeoutMs: vm.scaled(60_000), ...(dev ? { dev } : {}) });
  expect(cases).toHaveLength(1);
  return cases[0]!;
};

/** The books of one phase balance, and the seqlock phase hands over no torn frame. */
function expectBalanced(c: CaseResult): void {
  for (const sfx of ['', '_no_seqlock']) {
    const published = metric(c, `frames_published${sfx}`)!;
    const consumed = metric(c, `frames_consumed${sfx}`)!;
    expect(published, `frames_published${sfx}`).toBeGreaterThan(0);
    // every frame consumed is a distinct frame published during the phase
    expect(consumed, `frames_consumed${sfx}`).toBeLessThanOrEqual(published);
    expect(metric(c, `frames_missed${sfx}`), `frames_missed${sfx}`).toBe(published - consumed);
    expect(metric(c, `torn_frames${sfx}`)!).toBeLessThanOrEqual(consumed);
    const cpu = metric(c, `cpu_percent${sfx}`)!;
    expect(cpu).toBeGreaterThan(0);
    expect(cpu).toBeLessThanOrEqual(101);
    expect(metric(c, `wall_time${sfx}`)!).toBeGreaterThanOrEqual(SECONDS * 0.99);
  }
  expect(metric(c, 'torn_frames')).toBe(0);
  for (const m of Object.keys(c.metrics ?? {})) expect(isMetricName(m), m).toBe(true);
}

beforeAll(async () => {
  vm = await new HilboxVm().withDevice({ ...GEOMETRY, 'mouse-rate-hz': 0 }).withAccel('auto').start();
  await vm.loadDriver();
});

afterAll(async () => {
  await vm?.stop();
  rmSync(runDir, { recursive: true, force: true });
});

describe('fb-consume in the Linux guest', () => {
  it('every method waits for each frame, reads it once and accounts for every frame published', async () => {
    for (const method of ['map', 'copy', 'qword', 'bytewise']) {
      const c = await consume(method);
      expect(c.status, `${method}: ${c.reason}`).toBe('pass');
      expect(c.name).toBe(`fb-consume-${method}`);
      expect(c.details).toMatchObject({ method, seqlock: 'both', fb_mode: 'direct', width: 320, height: 240, fps: 10 });
      expectBalanced(c);
      // it slept between frames rather than spinning: far fewer polls than a 1 ms poll loop would make
      expect(metric(c, 'frame_sleeps')!).toBeGreaterThan(0);
    }
  });

  it('refuses a method it does not have and a bad --seqlock (usage, exit 2) before opening the device', async () => {
    const a = await vm.ssh.run('hilbox-probe fb-consume --method ram; echo "exit=$?"');
    expect(a.stdout).toMatch(/exit=2/);
    expect(a.stderr).toMatch(/unknown method ram \(allowed: copy, map, bytewise, qword\)/);
    const b = await vm.ssh.run('hilbox-probe fb-consume --method map --seqlock maybe; echo "exit=$?"');
    expect(b.stdout).toMatch(/exit=2/);
    expect(b.stderr).toMatch(/--seqlock maybe \(allowed: on, off, both\)/);
  });

  it('on a trapping BAR with a read latency the seqlock still never hands over a torn frame', async () => {
    const props = { ...GEOMETRY, 'fb-mode': 'mmio', 'mmio-latency-ns': 500, 'mouse-rate-hz': 0 };
    const cases = await withExtraDevice(vm, { id: 'hbcpuslow', bus: 'rp1', props, runDir }, async (d) => [await consume('qword', d.dev), await consume('copy', d.dev)]);
    for (const c of cases) {
      expect(c.status, c.reason).toBe('pass');
      expect(c.details).toMatchObject({ fb_mode: 'mmio', mmio_latency_ns: 500 });
      expectBalanced(c);
    }
  });

  it('the suite runner measures a small table on hot-plugged devices, one per picture and BAR, and unplugs them', async () => {
    const scenario = parseScenario(
      `name: t\ndevice: { width: 320, height: 240, fps: 10, mouse-rate-hz: 0 }\nsuites:\n  cpu:\n    seconds: 1\n    pictures: [{ width: 256, height: 128, fps: 20 }]\n    bars: [{ fb-mode: direct }, { fb-mode: mmio, mmio-latency-ns: 200 }]\n    methods: [map, copy]\n`,
      't.yaml',
    );
    const plan = planCpuTable(scenario, guestTraits('linux'));
    const before = await vm.guest.listDeviceNodes!(vm.session);
    const cases = await runCpuTable({ vm, scenario, out: silentOutput, outDir: runDir, runDir, caseTimeoutMs: vm.scaled(120_000) }, plan);
    expect(cases.map((c) => c.name)).toEqual(['cpu-map-256x128-20fps-direct', 'cpu-copy-256x128-20fps-direct', 'cpu-map-256x128-20fps-mmio-200ns', 'cpu-copy-256x128-20fps-mmio-200ns']);
    for (const c of cases) {
      expect(c.status, `${c.name}: ${c.reason}`).toBe('pass');
      expect(c.suite).toBe('cpu');
      expect(c.details).toMatchObject({ width: 256, height: 128, fps: 20, fb_mode: c.params?.fb_mode });
    }
    expect(cpuRows(cases).map((r) => `${r.picture} ${r.bar} ${r.method}`)).toEqual(['256x128@20 direct map', '256x128@20 direct copy', '256x128@20 mmio 200 ns map', '256x128@20 mmio 200 ns copy']);
    expect(await vm.guest.listDeviceNodes!(vm.session)).toEqual(before);
    expect(scanForCrashes(await vm.kernelLog()).map((h) => h.lines[0])).toEqual([]);
  });

  it('a device the suites plugged goes by the guest\'s own eject of its slot (no device_del), and the slot takes the next card', async () => {
    const before = await vm.guest.listDeviceNodes!(vm.session);
    const commands: string[] = [];
    const execute = vm.qmp.execute.bind(vm.qmp);
    vm.qmp.execute = ((cmd: string, args?: Record<string, unknown>, timeoutMs?: number) => {
      commands.push(cmd);
      return execute(cmd, args, timeoutMs);
    }) as typeof vm.qmp.execute;
    try {
      for (const id of ['hbej1', 'hbej2']) {
        const seen = await withExtraDevice(vm, { id, bus: 'rp2', props: { ...GEOMETRY, 'mouse-rate-hz': 0 }, runDir }, async (d) => {
          const [c] = await runProbe(vm, ['verify-frames', '--frames', '1', '--method', 'map'], { suite: 'test', step: id, timeoutMs: vm.scaled(60_000), dev: d.dev });
          expect(c?.status, c?.reason).toBe('pass');
          return d.dev;
        });
        expect(before).not.toContain(seen);
        expect(await vm.guest.listDeviceNodes!(vm.session)).toEqual(before);
      }
    } finally {
      vm.qmp.execute = execute;
    }
    expect(commands.filter((c) => c === 'device_add')).toHaveLength(2);
    expect(commands).not.toContain('device_del');
    const peripherals = (await vm.qmp.execute('qom-list', { path: '/machine/peripheral' })) as { name: string }[];
    expect(peripherals.map((p) => p.name)).not.toContain('hbej2');
    await expect(vm.guest.ejectSlot!(vm.session, 99)).rejects.toThrow(/powering slot 99 off: .*(No such file|nonexistent|can't create)/i);
    expect(scanForCrashes(await vm.kernelLog()).map((h) => h.lines[0])).toEqual([]);
  });
});
