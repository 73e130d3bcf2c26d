/**
 * `hilbox bench --deterministic` in a real guest: the same short bench run twice gives the same
 * figures (every ratio within 1 %), and a driver made slower on purpose (the test-only
 * `test_copy_extra_passes`) is flagged as a regression. Real QEMU with icount, the real guest
 * kernel, the real driver and probe.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { bench, metricValue, shortBench, type BenchRun } from './helpers.ts';

const b = shortBench();
const T = 1_800_000;
let first: BenchRun | undefined;

afterAll(() => rmSync(b.dir, { recursive: true, force: true }));

describe('hilbox bench --deterministic', () => {
  it('records a baseline', { timeout: T }, async () => {
    first = await bench(b, b.scenario, 'first', ['--deterministic', '--update-baseline']);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/baseline written: .* \[deterministic\/[0-9a-f]{12}\]/);
    expect(first.bench.mode).toBe('deterministic');
    expect(metricValue(first, 'fb-copy-direct.fb_copy_ratio')).toBeGreaterThan(0);
  });

  it('repeats its figures: a second run matches every ratio within 1 % and exits 0', { timeout: T }, async () => {
    expect(first).toBeDefined();
    const second = await bench(b, b.scenario, 'second', ['--deterministic']);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    const ratios = first!.bench.metrics.filter((m) => m.kind === 'ratio');
    expect(ratios.length).toBeGreaterThan(3);
    const moved = ratios
      .map((m) => ({ name: m.name, a: m.value, b: metricValue(second, m.name) }))
      .filter((x) => x.b === undefined || Math.abs(x.b / x.a - 1) > 0.01);
    expect(moved, 'ratio metrics that moved by more than 1 % between two deterministic runs').toEqual([]);
    expect(second.stdout).toMatch(/\d+ ok/);
    expect(second.stdout).not.toMatch(/REGRESSION/);
  });

  it('flags a driver slowed on purpose (test_copy_extra_passes=2) as a regression of the copy path', { timeout: T }, async () => {
    const slowed = await bench(b, b.slowed, 'slowed', ['--deterministic']);
    expect(slowed.code, slowed.stdout + slowed.stderr).toBe(1);
    expect(slowed.stdout).toMatch(/fb-copy-direct\.fb_copy_ratio .*REGRESSION/);
    // the zero-copy mapping does not go through COPY_FRAME: unchanged
    expect(slowed.stdout).not.toMatch(/fb-map-direct\.fb_copy_ratio .*REGRESSION/);
    const base = metricValue(first!, 'fb-copy-direct.fb_copy_ratio')!;
    expect(metricValue(slowed, 'fb-copy-direct.fb_copy_ratio')!).toBeLessThan(base * 0.7);
  });
});
