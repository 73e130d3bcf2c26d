/**
 * The wall-clock verdict notices a slower driver in the median: a short `hilbox bench --repeat 3`
 * with the driver as shipped records the baseline, the same bench with the test-only
 * `test_copy_extra_passes=2` (three copies' work per COPY_FRAME) must exit 1 with the copy
 * path's ratio as the regression — beyond the tolerance and outside the noise of both runs.
 * (The deterministic mode's check is in deterministic.test.ts.)
 */
import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { bench, metricValue, shortBench } from './helpers.ts';

const b = shortBench();
const T = 2_400_000;

afterAll(() => rmSync(b.dir, { recursive: true, force: true }));

describe('hilbox bench (wall clock) and a slowed driver', () => {
  it('flags fb-copy-direct in the median of three repetitions', { timeout: T }, async () => {
    const base = await bench(b, b.scenario, 'base', ['--repeat', '3', '--update-baseline']);
    expect(base.code, base.stdout + base.stderr).toBe(0);
    const slowed = await bench(b, b.slowed, 'slowed', ['--repeat', '3']);
    expect(slowed.code, slowed.stdout + slowed.stderr).toBe(1);
    expect(slowed.stdout).toMatch(/fb-copy-direct\.fb_copy_ratio .*REGRESSION/);
    const m = slowed.bench.metrics.find((x) => x.name === 'fb-copy-direct.fb_copy_ratio');
    expect(m?.values).toHaveLength(3);
    expect(metricValue(slowed, 'fb-copy-direct.fb_copy_ratio')!).toBeLessThan(metricValue(base, 'fb-copy-direct.fb_copy_ratio')! * 0.8);
  });
});
