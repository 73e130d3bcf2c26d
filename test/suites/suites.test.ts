/**
 * The suites users run hilbox for, end to end on real parts: every security case (each passes
 * only if its policy held, the kernel log stayed clean, QEMU lived and the driver unloaded
 * cleanly afterwards), every robustness case (the device's faults and the stress cycles, short
 * counts, with the same post-checks) and a short throughput run, through the same runner as
 * `hilbox run`.
 */
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScenario } from '../../orchestrator/src/scenario/load.ts';
import { runScenario } from '../../orchestrator/src/suites/run-scenario.ts';
import { createOutput } from '../../orchestrator/src/cli/output.ts';
import type { CaseResult, RunResults } from '../../orchestrator/src/report/results.ts';
import { isMetricName } from '../../orchestrator/src/report/metric-names.ts';
import { securityCaseNames } from '../../orchestrator/src/guest/probe-cases.ts';
import { HilboxVm } from '../../orchestrator/src/lib/hilbox-vm.ts';

const SECURITY_CASES = [
  'unprivileged-open', 'proc-fd-reopen', 'pidfd-getfd-unprivileged', 'scm-rights-map', 'fork-exec-inherit',
  'write-through-mapping', 'mprotect-write', 'proc-self-mem-write', 'map-private', 'map-prot-write',
  'offset-out-of-range', 'length-overflow', 'mremap-grow', 'close-while-mapped', 'reads-pending-then-killed',
  'many-threads-map-read-close', 'bad-ioctls', 'short-read-buffer', 'unplug-while-mapped', 'unplug-reads-pending',
  'surprise-removal-while-mapped', 'surprise-removal-reads-pending', 'irq-drain-bounded', 'mmio-stall', 'vmstate-hostile',
];
const ROBUSTNESS_CASES = ['link-down', 'irq-lost', 'spurious-irq', 'irq-storm', 'fifo-burst', 'mmio-spike', 'frame-stall', 'frame-stall-odd', 'bit-flip', 'surprise-removal', 'load-unload', 'unplug-replug', 'open-close'];

const outDir = mkdtempSync(join(tmpdir(), 'hilbox-suites-test-'));
let results: RunResults;
let listed: string[] = [];
const byName = (name: string): CaseResult | undefined => results.cases.find((c) => c.name === name);
const metric = (c: CaseResult | undefined, m: string) => c?.metrics?.[m]?.value;

beforeAll(async () => {
  const scenario = parseScenario(
    `name: suites-test
device:
  width: 640
  height: 480
  fps: 50
  mouse-rate-hz: 1000
  feed: true
suites:
  verify:
    enabled: false
  throughput:
    enabled: true
    short: true
    seconds: 1
    fbModes: [direct, mmio]
    mouse:
      rates: [1000]
      bundles: [4]
      pending: [1, 16]
  security:
    enabled: true
    cases: all
`,
    'suites-test.yaml',
  );
  const run = await runScenario({ scenario, outDir, out: createOutput({ json: true }) });
  results = run.results;
  if (run.error) throw run.error;
  // What the built probe in the image says of itself, asked in a small VM of its own.
  await using vm = await new HilboxVm().withDevice({ width: 64, height: 64, 'mouse-rate-hz': 0 }).withAccel('auto').withMemory('256M').start();
  const r = await vm.probe(['security', '--list'], { timeoutMs: vm.scaled(30_000) });
  listed = (JSON.parse(r.stdout.trim()) as { cases: { name: string; host_action: boolean }[] }).cases.filter((c) => !c.host_action).map((c) => c.name);
}, 900_000);

afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe('security suite', () => {
  it.each(SECURITY_CASES)('%s: policy held, kernel log clean, QEMU alive, driver unloads', (name) => {
    const c = byName(name);
    expect(c, `case ${name} missing from results`).toBeDefined();
    expect(c!.policy, 'each security case states its policy').toMatch(/\w+/);
    expect(c!.status, c!.reason).toBe('pass');
  });
});

describe('robustness suite', () => {
  it.each(ROBUSTNESS_CASES)('%s: policy held, kernel log clean, QEMU alive, driver unloads', (name) => {
    const c = results.cases.find((r) => r.suite === 'robustness' && r.name === name);
    expect(c, `robustness case ${name} missing from results`).toBeDefined();
    expect(c!.policy, 'each robustness case states its policy').toMatch(/\w+/);
    expect(c!.status, c!.reason).toBe('pass');
  });

  it('the stress cases report their counts as parameters', () => {
    const cycles = (name: string) => results.cases.find((r) => r.suite === 'robustness' && r.name === name)?.params?.['cycles'];
    expect([cycles('load-unload'), cycles('unplug-replug'), cycles('open-close')]).toEqual([10, 2, 1000]);
  });
});

describe('short throughput run', () => {
  it('measures the framebuffer methods in both fb modes against the RAM reference', () => {
    const ram = metric(byName('fb-ram-direct'), 'mb_per_s');
    expect(ram).toBeGreaterThan(0);
    for (const m of ['map', 'copy', 'qword', 'bytewise']) {
      for (const mode of ['direct', 'mmio']) {
        const c = byName(`fb-${m}-${mode}`);
        expect(c, `fb-${m}-${mode}`).toBeDefined();
        expect(c!.status, c!.reason).toBe('pass');
        expect(metric(c, 'mb_per_s'), `fb-${m}-${mode} MB/s`).toBeGreaterThan(0);
        expect(metric(c, 'torn_frames'), 'seqlocked copies are never torn').toBe(0);
        // the RAM reference, read by read in the same loop: bandwidth = whole frames per read time
        expect(metric(c, 'ram_mb_per_s'), `fb-${m}-${mode} RAM reference`).toBeGreaterThan(0);
        expect(metric(c, 'ram_ratio')).toBeCloseTo(metric(c, 'read_mb_per_s')! / metric(c, 'ram_mb_per_s')!, 3);
        expect(metric(c, 'read_time_no_seqlock')!).toBeLessThanOrEqual(metric(c, 'wall_time_no_seqlock')!);
      }
    }
    // the same loop on two RAM buffers: the noise floor of a ratio
    expect(metric(byName('fb-ram-direct'), 'ram_ratio')).toBeGreaterThan(0.8);
    expect(metric(byName('fb-ram-direct'), 'ram_ratio')).toBeLessThan(1.25);
    // nothing in the mapping costs a direct-mode read under TCG (no caches, no memory types)
    expect(metric(byName('fb-map-direct'), 'ram_ratio')).toBeGreaterThan(0.8);
  });

  it('reads a stock QEMU device (ivshmem-plain, hot-plugged) the same way, beside hilbox', () => {
    const c = byName('fb-map-ivshmem');
    expect(c, 'fb-map-ivshmem').toBeDefined();
    expect(c!.status, c!.reason).toBe('pass');
    expect(c!.params).toEqual({ method: 'map', peer: 'ivshmem-plain' });
    expect(String(c!.details?.source)).toMatch(/^\/sys\/bus\/pci\/devices\/[0-9a-f:.]+\/resource2$/);
    expect(metric(c, 'read_mb_per_s')).toBeGreaterThan(0);
    expect(metric(c, 'ram_ratio')).toBeGreaterThan(0.8);
    // no hilbox frame there: no frame checks, no seqlock phase
    expect(metric(c, 'torn_frames')).toBeUndefined();
    expect(metric(c, 'mb_per_s_no_seqlock')).toBeUndefined();
  });

  it('measures inverted call, polling and the shared ring with no record delivered twice and every loss counted', () => {
    const mouse = results.cases.filter((c) => c.name.startsWith('mouse-'));
    expect(mouse.map((c) => c.name)).toEqual(expect.arrayContaining(['mouse-inverted-call-r1000-b4-p1', 'mouse-inverted-call-r1000-b4-p16', 'mouse-polling-r1000-b4', 'mouse-shared-ring-r1000-b4', 'mouse-host-fed-r1000']));
    for (const c of mouse) {
      expect(c.status, `${c.name}: ${c.reason}`).toBe('pass');
      expect(metric(c, 'events_per_s'), c.name).toBeGreaterThan(0);
      expect(metric(c, 'duplicates'), c.name).toBe(0);
      expect(metric(c, 'latency_p50'), c.name).toBeGreaterThan(0);
    }
  });

  it('one consumer gets its completions in sequence order whatever the reads pending, and bundles of 4 whole', () => {
    for (const name of ['mouse-inverted-call-r1000-b4-p1', 'mouse-inverted-call-r1000-b4-p16', 'mouse-polling-r1000-b4', 'mouse-shared-ring-r1000-b4']) {
      const c = byName(name);
      expect(metric(c, 'order_violations'), name).toBe(0);
      // a read buffer of 16 records: a report never ends up split over two completions
      expect(metric(c, 'split_reports'), name).toBe(0);
      expect(metric(c, 'records_per_completion'), name).toBeGreaterThanOrEqual(4);
    }
  });

  it('drives every delivery mode to its ceiling with fifo-bursts, beside the bare notification cost', () => {
    const ceiling = results.cases.filter((c) => c.params?.load === 'fifo-burst');
    expect(ceiling.map((c) => c.name)).toEqual(['ceiling-inverted-call-p1', 'ceiling-inverted-call-p4', 'ceiling-inverted-call-p16', 'ceiling-inverted-call-p64', 'ceiling-inverted-call-p256', 'ceiling-polling', 'ceiling-shared-ring']);
    for (const c of ceiling) {
      expect(c.status, `${c.name}: ${c.reason}`).toBe('pass');
      expect(metric(c, 'events_per_s'), c.name).toBeGreaterThan(0);
      expect(metric(c, 'duplicates'), c.name).toBe(0);
      expect(metric(c, 'order_violations'), c.name).toBe(0);
      expect(metric(c, 'cpu_us_per_1000_events'), c.name).toBeGreaterThan(0);
      expect(metric(c, 'bursts'), c.name).toBeGreaterThan(0);
    }
    const n = byName('notify-baseline');
    expect(n?.status, n?.reason).toBe('pass');
    expect(metric(n, 'wakeups_per_s')).toBeGreaterThan(0);
  });

  it('every case carries its parameters as data and every metric has its one registered spelling', () => {
    for (const c of results.cases.filter((c) => c.suite === 'throughput' && c.status !== 'skip')) {
      expect(c.params, c.name).toBeDefined();
      if (c.name.startsWith('mouse-') || c.name.startsWith('ceiling-')) expect(c.params).toMatchObject({ mode: expect.stringMatching(/^(inverted-call|polling|shared-ring|host-fed)$/), rate_hz: expect.any(Number), bundle: expect.any(Number), pending: expect.any(Number) });
      else if (c.name === 'notify-baseline') expect(c.params).toEqual({ mode: 'notify', mechanism: 'eventfd' });
      else if (c.params?.peer !== undefined) expect(c.params).toEqual({ method: 'map', peer: 'ivshmem-plain' });
      else expect(c.params).toMatchObject({ method: expect.any(String), fb_mode: expect.stringMatching(/^(direct|mmio)$/) });
    }
    for (const c of results.cases) for (const m of Object.keys(c.metrics ?? {})) expect(isMetricName(m), `${c.name}: ${m}`).toBe(true);
  });

  it('the probe in the guest lists exactly the security cases the orchestrator planned from its table', () => {
    const planned = results.cases.filter((c) => c.suite === 'security').map((c) => c.name);
    expect(planned).toEqual([...securityCaseNames('linux'), 'unplug-while-mapped', 'unplug-reads-pending', 'surprise-removal-while-mapped', 'surprise-removal-reads-pending', 'irq-drain-bounded', 'mmio-stall', 'vmstate-hostile']);
    expect(listed).toEqual(securityCaseNames('linux'));
  });

  it('writes the artifacts with every case in them', () => {
    const json = JSON.parse(readFileSync(join(outDir, 'results.json'), 'utf8')) as RunResults;
    expect(json.cases.length).toBe(results.cases.length);
    expect(readFileSync(join(outDir, 'summary.md'), 'utf8')).toMatch(/unplug-while-mapped/);
  });
});
