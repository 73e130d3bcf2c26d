/**
 * Case identity as data, before anything boots: what a run will report, with its parameters,
 * for either guest; and bad input — an unknown case, an unknown metric, a case a threshold
 * names but the run does not have — refused as a UsageError (exit 2) naming it and the allowed
 * names.
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../orchestrator/src/core/errors.ts';
import { exitCodeFor } from '../../orchestrator/src/cli/errors.ts';
import { guestTraits } from '../../orchestrator/src/guest/for-scenario.ts';
import { parseCaseTable, securityCaseNames } from '../../orchestrator/src/guest/probe-cases.ts';
import { loadDefaultScenario, loadFullScenario, parseScenario } from '../../orchestrator/src/scenario/load.ts';
import { planRun } from '../../orchestrator/src/suites/run-plan.ts';
import { SUITE_NAMES } from '../../orchestrator/src/suites/plan.ts';
import { planSecurity } from '../../orchestrator/src/suites/security.ts';

const scenario = (yaml: string) => parseScenario(`name: t\n${yaml}`, 't.yaml');
const err = (f: () => unknown): Error => {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
};

describe('the plan of the full scenario (Linux)', () => {
  const plan = planRun(loadFullScenario(), SUITE_NAMES);

  it('names every case and carries its parameters as data', () => {
    expect(plan.verify.map((c) => c.name)).toEqual(['device-info', 'verify-frames', 'write-mapping', 'generator-events', 'host-fed-events', 'frame-picture']);
    const tp = Object.fromEntries(plan.throughput.map((c) => [c.name, c]));
    expect(tp['fb-ram-direct']?.params).toEqual({ method: 'ram', fb_mode: 'direct' });
    expect(tp['fb-map-mmio']?.params).toEqual({ method: 'map', fb_mode: 'mmio' });
    expect(tp['fb-ram-mmio']).toBeUndefined(); // the RAM reference is measured once
    // the peer: the same zero-copy reads of a stock QEMU device's BAR, once, after the booted mode's rows
    expect(tp['fb-map-ivshmem']?.params).toEqual({ method: 'map', peer: 'ivshmem-plain' });
    expect(plan.throughput.map((c) => c.name).indexOf('fb-map-ivshmem')).toBe(plan.throughput.map((c) => c.name).indexOf('fb-bytewise-direct') + 1);
    expect(tp['mouse-inverted-call-r8000-b4-p64']?.params).toEqual({ mode: 'inverted-call', rate_hz: 8000, bundle: 4, pending: 64 });
    expect(tp['mouse-polling-r8000-b1']?.params).toEqual({ mode: 'polling', rate_hz: 8000, bundle: 1, pending: 1 });
    expect(tp['mouse-host-fed-r1000']?.params).toMatchObject({ mode: 'host-fed' });
    expect(tp['mouse-shared-ring-r8000-b4']?.params).toEqual({ mode: 'shared-ring', rate_hz: 8000, bundle: 4, pending: 1 });
    expect(tp['ceiling-inverted-call-p256']?.params).toEqual({ mode: 'inverted-call', rate_hz: 0, bundle: 4096, pending: 256, load: 'fifo-burst' });
    expect(plan.throughput.filter((c) => c.params?.load === 'fifo-burst').map((c) => c.name)).toEqual(['ceiling-inverted-call-p1', 'ceiling-inverted-call-p4', 'ceiling-inverted-call-p16', 'ceiling-inverted-call-p64', 'ceiling-inverted-call-p256', 'ceiling-polling', 'ceiling-shared-ring']);
    expect(tp['notify-baseline']?.params).toEqual({ mode: 'notify', mechanism: 'eventfd' });
    expect(plan.throughput.every((c) => !c.skip)).toBe(true);
    expect(plan.security.map((c) => c.name)).toEqual([...securityCaseNames('linux'), 'unplug-while-mapped', 'unplug-reads-pending', 'surprise-removal-while-mapped', 'surprise-removal-reads-pending', 'irq-drain-bounded', 'mmio-stall', 'vmstate-hostile']);
  });
});

describe('the default scenario: a sample of the full one', () => {
  const enabled = (sc: ReturnType<typeof loadDefaultScenario>) => SUITE_NAMES.filter((n) => sc.suites[n].enabled);
  const quick = loadDefaultScenario();
  const full = loadFullScenario();
  const names = (p: ReturnType<typeof planRun>) => Object.fromEntries(SUITE_NAMES.map((n) => [n, p[n].map((c) => c.name)]));
  const q = names(planRun(quick, enabled(quick)));
  const f = names(planRun(full, enabled(full)));

  it('runs every suite but the CPU table, each on a sample of the full scenario\'s cases', () => {
    for (const suite of ['verify', 'throughput', 'security', 'robustness'] as const) {
      expect(q[suite]!.length, suite).toBeGreaterThan(0);
      expect(f[suite], suite).toEqual(expect.arrayContaining(q[suite]!));
    }
    expect(q['verify']).toEqual(f['verify']);
    expect(q['cpu']).toEqual([]);
    expect(q['throughput']).toEqual(['fb-map-direct', 'fb-copy-direct', 'fb-map-ivshmem', 'mouse-inverted-call-r8000-b1-p1', 'mouse-inverted-call-r8000-b1-p64', 'mouse-polling-r8000-b1', 'mouse-shared-ring-r8000-b1']);
    // the attacks on handles and mappings, and a card pulled while mapped
    expect(q['security']).toEqual(expect.arrayContaining([...securityCaseNames('linux'), 'surprise-removal-while-mapped', 'surprise-removal-reads-pending']));
  });

  it('boots the same machine and device as the full scenario, with the same thresholds', () => {
    for (const k of ['guest', 'accelerator', 'memory', 'cpus', 'device', 'driver', 'thresholds', 'timeouts', 'realtime'] as const) expect(quick[k], k).toEqual(full[k]);
  });
});

describe('the same scenario on a Windows guest', () => {
  const s = scenario('guest:\n  os: windows\n  image: /nonexistent.qcow2\n  ssh: { user: u, password: p }\nsuites:\n  throughput:\n    short: true\n');

  it('has the Windows probe’s cases and skips, saying why, what needs a hot-plugged device', () => {
    const traits = guestTraits('windows');
    expect(traits.findsHotplugged).toBe(false);
    expect(guestTraits('linux').findsHotplugged).toBe(true);
    expect(traits.mapsPeerBars).toBe(false);
    expect(guestTraits('linux').mapsPeerBars).toBe(true);
    expect(traits.securityCases).toContain('duplicate-handle-map');
    expect(traits.securityCases).not.toContain('scm-rights-map');
    // an orderly removal is vetoed while open there; the surprise removal is the same case pair
    expect(traits.orderlyRemoval).toBe('vetoed-while-open');
    expect(guestTraits('linux').orderlyRemoval).toBe('proceeds');
    expect(planSecurity(s, traits).map((c) => c.name).filter((n) => /unplug|removal/.test(n))).toEqual(['unplug-vetoed-while-open', 'surprise-removal-while-mapped', 'surprise-removal-reads-pending']);
    // planRun also checks the guest section: the image must exist.
    expect(err(() => planRun(s, SUITE_NAMES)).message).toMatch(/guest\.image \/nonexistent\.qcow2 does not exist/);
  });

  it('plans skips instead of hot-plugged devices', async () => {
    const { planThroughput } = await import('../../orchestrator/src/suites/throughput.ts');
    const { planVerify } = await import('../../orchestrator/src/suites/verify.ts');
    const traits = guestTraits('windows');
    const tp = planThroughput(s, traits);
    const byName = Object.fromEntries(tp.map((c) => [c.name, c]));
    expect(byName['fb-map-direct']?.skip).toBeUndefined();
    expect(byName['fb-map-mmio']?.skip).toMatch(/hot-plugged device \(fb-mode mmio\), which a windows guest cannot find yet/);
    expect(byName['fb-map-ivshmem']?.skip).toMatch(/another PCI device's BAR mapped by the probe, which a windows guest cannot do yet/);
    // the booted device's rate and bundle (8000 Hz is not the default 1000) are measured on it
    expect(byName['mouse-inverted-call-r1000-b1-p1']?.skip).toBeUndefined();
    expect(byName['mouse-host-fed-r1000']?.skip).toMatch(/host feed/);
    // the Windows driver's shared-memory ring on the booted device; no hot-plugged device for the ceiling
    expect(byName['mouse-shared-ring-r1000-b1']?.skip).toBeUndefined();
    expect(byName['ceiling-polling']?.skip).toMatch(/hot-plugged device/);
    expect(byName['notify-baseline']?.skip).toMatch(/eventfd/);
    expect(planVerify(s, traits).find((c) => c.name === 'host-fed-events')?.skip).toMatch(/windows guest/);
  });
});

describe('bad input is refused before anything boots', () => {
  it('an unknown security case names itself and the allowed cases (exit 2)', () => {
    const e = err(() => planRun(scenario('suites:\n  security:\n    cases: [bad-ioctls, scm-rights-mapp]\n'), SUITE_NAMES));
    expect(e).toBeInstanceOf(UsageError);
    expect(exitCodeFor(e)).toBe(2);
    expect(e.message).toMatch(/^suites\.security\.cases: unknown case scm-rights-mapp; allowed: unprivileged-open, .*scm-rights-map.*, unplug-reads-pending, surprise-removal-while-mapped, surprise-removal-reads-pending, irq-drain-bounded, mmio-stall, vmstate-hostile$/);
  });

  it('a throughput selection keeps the plan\'s order and refuses a case the lists do not make, naming the ones they do', () => {
    const s = scenario('suites:\n  throughput:\n    fbModes: [direct]\n    mouse: { rates: [8000], bundles: [1], pending: [1] }\n    cases: [mouse-polling-r8000-b1, fb-map-direct]\n');
    expect(planRun(s, ['throughput']).throughput.map((c) => c.name)).toEqual(['fb-map-direct', 'mouse-polling-r8000-b1']);
    const e = err(() => planRun(scenario('suites:\n  throughput:\n    fbModes: [direct]\n    cases: [fb-map-mmio]\n'), SUITE_NAMES));
    expect(e).toBeInstanceOf(UsageError);
    expect(exitCodeFor(e)).toBe(2);
    expect(e.message).toMatch(/^suites\.throughput\.cases: unknown case fb-map-mmio; allowed: fb-ram-direct, fb-map-direct, .*mouse-host-fed-r1000$/);
    expect(err(() => planRun(scenario('suites:\n  throughput:\n    cases: []\n'), SUITE_NAMES)).message).toMatch(/suites\.throughput\.cases: needs at least 1 entry/);
  });

  it('under icount the host-paced cases (host feed, the ceiling\'s bursts) are skips saying why', () => {
    const s = scenario('accelerator: tcg\ncpus: 1\nicount: 0\n');
    const tp = planRun(s, ['throughput']).throughput;
    const hostPaced = tp.filter((c) => c.kind === 'ceiling' || c.kind === 'host-fed');
    expect(hostPaced.length).toBe(8);
    for (const c of hostPaced) expect(c.skip, c.name).toMatch(/not measurable under icount \(SPEC §4\.5\)/);
    expect(tp.filter((c) => c.skip === undefined).map((c) => c.kind)).not.toContain('ceiling');
    expect(planRun(scenario(''), ['throughput']).throughput.filter((c) => c.kind === 'ceiling' && c.skip)).toEqual([]);
  });

  it('a Windows-only case in a Linux scenario is unknown there', () => {
    expect(err(() => planRun(scenario('suites:\n  security:\n    cases: [duplicate-handle-map]\n'), SUITE_NAMES)).message).toMatch(/unknown case duplicate-handle-map/);
  });

  it('a threshold on a metric no probe prints (the old aliases included) is refused, naming the allowed metrics', () => {
    for (const alias of ['events_lost', 'latency_p50_us', 'cpu_ms']) {
      const e = err(() => planRun(scenario(`thresholds:\n  ${alias}: { max: 0 }\n`), SUITE_NAMES));
      expect(e).toBeInstanceOf(UsageError);
      expect(e.message).toMatch(new RegExp(`^thresholds\\.${alias}: unknown metric "${alias}"; allowed metrics: `));
      expect(e.message).toMatch(/[ ,]lost,.*/);
      expect(e.message).toMatch(/ latency_p50,/);
    }
  });

  it('a threshold on a case this run does not have is refused, naming the run’s cases', () => {
    const e = err(() => planRun(scenario('thresholds:\n  fb-map-direkt.read_mb_per_s: { min: 1 }\n'), SUITE_NAMES));
    expect(e.message).toMatch(/^thresholds\.fb-map-direkt\.read_mb_per_s: this run has no case "fb-map-direkt"; allowed cases: boot, fast-reset, device-info, .*fb-map-direct/);
    // a case of a disabled suite is not in the run either
    expect(err(() => planRun(scenario('thresholds:\n  fb-map-direct.read_mb_per_s: { min: 1 }\n'), ['verify'])).message).toMatch(/no case "fb-map-direct"/);
    expect(() => planRun(scenario('thresholds:\n  fb-map-direct.read_mb_per_s: { min: 1 }\n  duplicates: { max: 0 }\n'), SUITE_NAMES)).not.toThrow();
  });
});

describe('the probe case table', () => {
  it('is read per OS and fails loudly when it cannot be found', () => {
    const src = 'static const struct sec_case sec_cases[] = {\n\t{ "a-b", L, ATTACK(x), 0,\n\t  "p" },\n\t{ "c", W, ATTACK(y), 0, "q" },\n};\n';
    expect(parseCaseTable(src, 'linux')).toEqual(['a-b']);
    expect(parseCaseTable(src, 'windows')).toEqual(['c']);
    expect(() => parseCaseTable('int x;', 'linux')).toThrow(/no sec_cases\[\] table/);
  });
});
