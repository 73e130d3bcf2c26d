import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { repoRoot } from '../../orchestrator/src/core/paths.ts';
import { loadDefaultScenario, loadFullScenario, loadScenarioFile, parseScenario, ScenarioError } from '../../orchestrator/src/scenario/load.ts';
import { deviceProperties, DEVICE_PROPERTY_NAMES } from '../../orchestrator/src/scenario/device-props.ts';
import { buildQemuArgs } from '../../orchestrator/src/vm/qemu-args.ts';
import { checkRealtimeFits, checkRealtimeSideBySide } from '../../orchestrator/src/vm/realtime.ts';
import { selectCases, CaseSelectionError } from '../../orchestrator/src/scenario/cases.ts';
import { DEFAULT_PROPS, validateProps } from '../../orchestrator/src/device/spec.ts';

const fx = (p: string) => join(repoRoot, 'fixtures', p);

function problemsOf(fn: () => unknown): ScenarioError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return e as ScenarioError;
  }
  throw new Error('expected a ScenarioError');
}

describe('default scenario', () => {
  it('is valid and says what the brief says', () => {
    const s = loadDefaultScenario();
    expect(s.name).toBe('default');
    expect(s.guest.os).toBe('linux');
    expect(s.accelerator).toBe('auto');
    expect(s.memory).toBe('256M');
    expect(s.cpus).toBe(2);
    expect(s.device).toMatchObject({ width: 1920, height: 1080, fps: 50, 'fb-mode': 'direct', 'mouse-rate-hz': 8000, 'mouse-bundle': 1 });
    expect(s.suites.security.enabled).toBe(true);
    expect(s.suites.robustness).toMatchObject({ enabled: true, full: false });
    expect(s.suites.throughput.short).toBe(true);
    // the full scenario: every case of the suites the default samples
    const full = loadFullScenario();
    expect(full.name).toBe('full');
    expect(full.suites.security).toEqual({ enabled: true, cases: 'all' });
    expect(full.suites.robustness).toEqual({ enabled: true, cases: 'all', full: false });
    expect(full.suites.throughput).toMatchObject({ short: true, cases: 'all', fbModes: ['direct', 'mmio'] });
    expect(s.thresholds.duplicates).toEqual({ max: 0 });
    expect(s.thresholds.torn_frames).toEqual({ max: 0 });
  });

  it('device properties agree with the device contract and use SPEC §9 names', () => {
    const s = loadDefaultScenario();
    const props = deviceProperties(s.device);
    expect(Object.keys(props)).toEqual([...DEVICE_PROPERTY_NAMES]);
    expect(validateProps(props)).toBeUndefined();
    // What the launcher puts on QEMU's command line for them.
    const argv = buildQemuArgs({
      firmwareDirs: [], accel: 'tcg', memory: '512M', cpus: 1, boot: [], qmpSocket: '/q', serialSocket: '/s', sshPort: 2222, nicModel: 'e1000e', paused: true,
      device: { props: props },
    });
    const dev = argv.find((a) => a.startsWith('hilbox-pci,'))!.split(',');
    expect(dev).toEqual(expect.arrayContaining(['fb-mode=direct', 'msi=on', 'mouse-rate-hz=8000', 'width=1920']));
    expect(dev.some((p) => p.startsWith('feed='))).toBe(false);
  });

  it('all example scenarios are valid', () => {
    for (const f of ['mmio-latency.yaml', 'mouse-8khz-bundled.yaml', 'windows.yaml', 'full.yaml', 'event-delivery.yaml', 'cpu-table.yaml']) {
      const s = loadScenarioFile(fx(`scenarios/${f}`));
      expect(s.name).toBe(f.replace(/\.yaml$/, ''));
    }
    const mmio = loadScenarioFile(fx('scenarios/mmio-latency.yaml'));
    expect(mmio.device['mmio-latency-ns']).toBe(200);
    const win = loadScenarioFile(fx('scenarios/windows.yaml'));
    expect(win.guest).toMatchObject({ os: 'windows', ssh: { user: 'hilbox' } });
  });

  it('fills every default from the minimal scenario', () => {
    const s = parseScenario('name: tiny\n', 'tiny.yaml');
    expect(s.device).toEqual({ ...DEFAULT_PROPS, feed: false });
    expect(s.suites.throughput.mouse).toEqual({ rates: [125, 1000, 8000], bundles: [1, 4], pending: [1, 4, 16, 64] });
    expect(s.suites.throughput.fbModes).toEqual(['direct', 'mmio']);
    expect(s.timeouts).toEqual({});
  });
});

describe('invalid scenarios', () => {
  const rel = (f: string) => join('fixtures', 'invalid', f);
  const load = (f: string) => problemsOf(() => loadScenarioFile(join(repoRoot, rel(f))));

  it('wrong type names file, field and what is allowed', () => {
    const e = load('wrong-type.yaml');
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatchObject({ field: 'device.width', line: 3, column: 10 });
    expect(e.message).toMatch(/wrong-type\.yaml: device\.width: expected an integer \(allowed 16\.\.8192\), got "wide"/);
  });

  it('out of range', () => {
    const e = load('out-of-range.yaml');
    expect(e.message).toContain('out-of-range.yaml: device.fps: 0 is out of range; allowed 1..1000');
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]?.line).toBe(5);
  });

  it('unknown key lists the allowed keys', () => {
    const e = load('unknown-key.yaml');
    expect(e.problems[0]?.field).toBe('device');
    expect(e.message).toContain('unknown key "colour-depth"; allowed keys: width, height, stride, fps, fb-mode');
    expect(e.problems[0]).toMatchObject({ line: 4, column: 3 });
  });

  it('unknown top-level key', () => {
    const e = problemsOf(() => parseScenario('name: x\ncpu: 4\n', 'top.yaml'));
    expect(e.message).toMatch(/^top\.yaml: unknown key "cpu"; allowed keys: name, description, guest, accelerator, memory, cpus/);
  });

  it('bad enum lists the allowed values', () => {
    expect(load('bad-enum.yaml').message).toContain('accelerator: "hvf" is not allowed; allowed: auto, tcg, kvm');
  });

  it('cross-field: mmio-latency-ns only with fb-mode mmio', () => {
    const e = load('cross-field.yaml');
    expect(e.problems[0]?.field).toBe('device.mmio-latency-ns');
    expect(e.message).toMatch(/only allowed with fb-mode: mmio/);
  });

  it('cross-field: stride at least 3 × width', () => {
    const e = load('stride-too-small.yaml');
    expect(e.problems[0]?.field).toBe('device.stride');
    expect(e.message).toContain('allowed 0 (= 3 × width) or 1920..65536');
  });

  it('cross-field: stride × height limit and mouse-rate gap', () => {
    const e = problemsOf(() => parseScenario('name: x\ndevice:\n  stride: 65536\n  height: 8192\n  mouse-rate-hz: 50\n', 'big.yaml'));
    const fields = e.problems.map((p) => p.field);
    expect(fields).toContain('device.stride');
    expect(fields).toContain('device.mouse-rate-hz');
    expect(e.message).toContain('allowed 0 (no generator) or 125..8000');
  });

  it('YAML syntax errors carry line and column', () => {
    const e = load('yaml-syntax.yaml');
    expect(e.problems.length).toBeGreaterThan(0);
    expect(e.problems[0]?.message).toMatch(/^YAML syntax error: /);
    expect(e.problems[0]?.line).toBeGreaterThan(1);
    expect(e.message).toContain(`${rel('yaml-syntax.yaml')}: YAML syntax error`);
  });

  it('windows requires an image', () => {
    const e = load('windows-no-image.yaml');
    expect(e.problems.map((p) => p.field)).toEqual(['guest.image']);
  });

  it('reports several problems at once', () => {
    const e = load('bad-memory.yaml');
    expect(e.problems.map((p) => p.field)).toEqual(['memory', 'cpus']);
    expect(e.message.split('\n')).toHaveLength(2);
  });

  it('list items, thresholds and driver path', () => {
    const src = [
      'name: x',
      'suites:',
      '  throughput:',
      '    mouse:',
      '      rates: [125, 100]',
      'thresholds:',
      '  events_lost: {}',
      '  Bad-Metric: {max: 1}',
      'driver:',
      '  path: hilbox.sys',
    ].join('\n');
    const e = problemsOf(() => parseScenario(src, 'x.yaml'));
    const by = Object.fromEntries(e.problems.map((p) => [p.field, p.message]));
    expect(by['suites.throughput.mouse.rates[1]']).toBe('100 is out of range; allowed 125..8000');
    expect(by['thresholds.events_lost']).toBe('give min, max or both');
    expect(Object.keys(by).some((k) => k.startsWith('thresholds'))).toBe(true);
  });

  it('driver path must fit the guest', () => {
    const e = problemsOf(() => parseScenario('name: x\ndriver:\n  path: hilbox.sys\n', 'x.yaml'));
    expect(e.problems[0]).toMatchObject({ field: 'driver.path' });
    expect(e.message).toContain('.ko');
  });

  it('icount: tcg and one vCPU only, and a shift in range', () => {
    expect(parseScenario('name: x\naccelerator: tcg\ncpus: 1\nicount: 0\n', 'x.yaml').icount).toBe(0);
    const kvm = problemsOf(() => parseScenario('name: x\naccelerator: kvm\ncpus: 1\nicount: 0\n', 'x.yaml'));
    expect(kvm.problems.map((p) => p.field)).toEqual(['icount']);
    expect(kvm.message).toContain('icount needs the tcg accelerator');
    const smp = problemsOf(() => parseScenario('name: x\nicount: 0\n', 'x.yaml'));
    expect(smp.problems[0]).toMatchObject({ field: 'cpus' });
    expect(smp.message).toContain('allowed with icount: 1');
    expect(problemsOf(() => parseScenario('name: x\ncpus: 1\nicount: 11\n', 'x.yaml')).message).toContain('11 is out of range; allowed 0..10');
  });

  it('icount on the QEMU command line: single-threaded TCG and the deterministic clock, refused with KVM', () => {
    const base = { firmwareDirs: [], memory: '512M', cpus: 1, boot: [], qmpSocket: '/q', serialSocket: '/s', sshPort: 2222, nicModel: 'e1000e', paused: true } as const;
    const argv = buildQemuArgs({ ...base, accel: 'tcg', icountShift: 0 });
    expect(argv.join(' ')).toContain('-accel tcg,thread=single -icount shift=0,sleep=off,align=off');
    expect(buildQemuArgs({ ...base, accel: 'tcg' })).not.toContain('-icount');
    expect(() => buildQemuArgs({ ...base, accel: 'kvm', icountShift: 0 })).toThrow(/icount needs the tcg accelerator/);
    expect(() => buildQemuArgs({ ...base, accel: 'tcg', icountShift: 11 })).toThrow(/icount shift 11: expected 0..10/);
  });

  it('realtime: a boolean, refused when the guest has more vCPUs than the host has cores', () => {
    expect(parseScenario('name: x\n', 'x.yaml').realtime).toBe(false);
    expect(parseScenario('name: x\nrealtime: true\n', 'x.yaml').realtime).toBe(true);
    expect(problemsOf(() => parseScenario('name: x\nrealtime: yes please\n', 'x.yaml')).message).toContain('realtime: expected true or false');
    expect(checkRealtimeFits(2, 2, 0.95)).toBeUndefined(); // throttled: vCPUs may take every core
    expect(checkRealtimeFits(3, 2, 0.95)).toMatch(/at most as many vCPUs as host cores \(cpus: 3, this host: 2\); allowed here: cpus ≤ 2/);
    expect(checkRealtimeFits(1, 2, undefined)).toBeUndefined();
    expect(checkRealtimeFits(2, 2, undefined)).toMatch(/throttling is off .*allowed here: cpus ≤ 1/);
    expect(checkRealtimeFits(1, 1, undefined)).toMatch(/none: this host has one core/);
    // VMs side by side (hilbox matrix -j N): the realtime ones that can run at once share the cores
    const rt = (name: string, cpus: number, realtime = true) => ({ name, cpus, realtime });
    expect(checkRealtimeSideBySide([rt('a', 2), rt('b', 2)], 1, 2, 0.95)).toBeUndefined();
    expect(checkRealtimeSideBySide([rt('a', 2), rt('b', 2, false), rt('c', 1, false)], 3, 2, 0.95)).toBeUndefined();
    expect(checkRealtimeSideBySide([rt('a', 1), rt('b', 1)], 2, 2, 0.95)).toBeUndefined();
    expect(checkRealtimeSideBySide([rt('a', 2), rt('b', 1), rt('c', 2)], 2, 2, 0.95)).toMatch(/^a, c side by side put 4 vCPUs under SCHED_FIFO at once; realtime needs at most as many vCPUs as host cores \(vCPUs together: 4, this host: 2\); allowed here: vCPUs together ≤ 2; run them with a smaller -j$/);
  });

  it('driver params: Linux module parameters, name → integer', () => {
    expect(parseScenario('name: x\ndriver:\n  params: { test_copy_extra_passes: 2 }\n', 'x.yaml').driver.params).toEqual({ test_copy_extra_passes: 2 });
    const bad = problemsOf(() => parseScenario('name: x\ndriver:\n  params: { Bad-Name: 1, ok: -1 }\n', 'x.yaml'));
    expect(bad.message).toContain('is not a module parameter name');
    expect(bad.message).toContain('-1 is out of range');
  });

  it('empty and unreadable files', () => {
    expect(problemsOf(() => parseScenario('', 'e.yaml')).message).toContain('e.yaml: the file is empty');
    expect(problemsOf(() => loadScenarioFile('/nonexistent/x.yaml')).message).toContain('cannot read the scenario file (ENOENT)');
  });
});

describe('case selection', () => {
  it('resolves all, lists and unknown names', () => {
    expect(selectCases('security', 'all', ['a', 'b'])).toEqual(['a', 'b']);
    expect(selectCases('security', ['b', 'b'], ['a', 'b'])).toEqual(['b']);
    expect(() => selectCases('security', ['c'], ['a', 'b'])).toThrow(CaseSelectionError);
    expect(() => selectCases('security', ['c'], ['a', 'b'])).toThrow('suites.security.cases: unknown case c; allowed: a, b');
  });
});
