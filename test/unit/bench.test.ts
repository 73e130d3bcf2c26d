import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchMetrics, combineRepeats } from '../../orchestrator/src/bench/metrics.ts';
import { buildBaselineEntry, NoBaselineError, parseBaseline, readBaseline, withEntry, writeBaseline } from '../../orchestrator/src/bench/baseline.ts';
import { compareToBaseline, regressions } from '../../orchestrator/src/bench/compare.ts';
import { benchTableMarkdown, benchTableText, benchVerdictLine } from '../../orchestrator/src/bench/table.ts';
import { renderBenchChart, writeBenchChart } from '../../orchestrator/src/bench/chart.ts';
import { describeEnvironment, environmentDifferences, fingerprint } from '../../orchestrator/src/report/environment.ts';
import { throughputCases } from './sample-run.ts';
import { decode } from 'fast-png';

const env = fingerprint(
  { cpus: [{ model: 'Test CPU  @ 3GHz' }, { model: 'x' }], totalmem: 8 * 2 ** 30, platform: 'linux', arch: 'x64', release: '6.1.0', nodeVersion: 'v20.0.0' },
  { qemuVersion: 'QEMU emulator version 9.2.0\nCopyright', accelerator: 'kvm' },
  { commit: 'abcdef0123456789', dirty: true },
);
const baseline = buildBaselineEntry(benchMetrics(throughputCases()), { mode: 'wall', scenario: 'default', environment: { ...env }, repeat: 1, ratioTolerance: 0.4, now: new Date('2025-01-01T00:00:00Z') });
const O = { ratioTolerance: 0.4 };

describe('bench metrics', () => {
  it('derives machine-independent ratios, counts and info', () => {
    const byName = Object.fromEntries(benchMetrics(throughputCases()).map((m) => [m.name, m]));
    expect(byName['fb-map-direct.fb_copy_ratio']).toMatchObject({ value: 0.5, kind: 'ratio' });
    expect(byName['fb-copy-mmio.fb_copy_ratio']?.value).toBeCloseTo(0.01);
    expect(byName['mouse-inverted-call-r8000-b4-p16.events_ratio']?.value).toBeCloseTo(7990 / 4000);
    expect(byName['mouse-inverted-call-r8000-b4-p16.delivery_ratio']).toMatchObject({ kind: 'info' });
    expect(byName['mouse-inverted-call-r8000-b4-p16.delivery_ratio']?.value).toBeCloseTo(7990 / 8000);
    expect(byName['mouse-inverted-call-r8000-b4-p16.duplicates']).toMatchObject({ value: 0, kind: 'count' });
    // loss and completion order move with host load under TCG: shown, not judged
    expect(byName['mouse-inverted-call-r8000-b4-p16.lost']).toMatchObject({ value: 0, kind: 'info' });
    expect(byName['fb-map-direct.read_mb_per_s']).toMatchObject({ kind: 'info', unit: 'MB/s' });
    expect(byName['mouse-polling-r8000-b4.events_ratio']).toBeUndefined();
  });
});

describe('the RAM reference of a framebuffer case', () => {
  // A case that measured its own reference read by read is divided by that, not by the `ram`
  // case measured seconds earlier (which a shared TCG host can make faster or slower).
  const own = (name: string, params: Record<string, string>, read: number, ram: number) => ({
    suite: 'throughput', name, status: 'pass' as const, params,
    metrics: { read_mb_per_s: { value: read, unit: 'MB/s' }, ram_mb_per_s: { value: ram, unit: 'MB/s' }, ram_ratio: { value: read / ram, unit: 'x RAM' } },
  });

  it('is the case’s own when it has one, the ram case’s otherwise', () => {
    const cases = [...throughputCases(), own('fb-copy-direct', { method: 'copy', fb_mode: 'direct' }, 1500, 1600), own('fb-map-ivshmem', { method: 'map', peer: 'ivshmem-plain' }, 1580, 1600)];
    const byName = Object.fromEntries(benchMetrics(cases).map((m) => [m.name, m]));
    expect(byName['fb-copy-direct.fb_copy_ratio']?.value).toBeCloseTo(1500 / 1600);
    expect(byName['fb-map-ivshmem.fb_copy_ratio']).toMatchObject({ kind: 'ratio', unit: '× RAM' });
    expect(byName['fb-map-ivshmem.fb_copy_ratio']?.value).toBeCloseTo(1580 / 1600);
    expect(byName['fb-map-ivshmem.ram_mb_per_s']).toMatchObject({ value: 1600, kind: 'info' });
    // fb-map-direct carries no reference of its own: the ram case's 4000 MB/s
    expect(byName['fb-map-direct.fb_copy_ratio']?.value).toBe(0.5);
  });

  it('survives a slow host during the ram case: only the case’s own reference moves with it', () => {
    const slowRam = throughputCases().map((c) => (c.name === 'fb-ram-direct' ? { ...c, metrics: { read_mb_per_s: { value: 1000, unit: 'MB/s' } } } : c));
    const cases = [...slowRam, own('fb-copy-direct', { method: 'copy', fb_mode: 'direct' }, 1500, 1600)];
    const r = benchMetrics(cases).find((m) => m.name === 'fb-copy-direct.fb_copy_ratio');
    expect(r?.value).toBeCloseTo(0.9375);
  });
});

describe('bench compare', () => {
  it('tolerates a uniform machine-speed change', () => {
    for (const speed of [0.4, 3]) {
      const rows = compareToBaseline(benchMetrics(throughputCases(speed)), baseline, O);
      expect(regressions(rows)).toEqual([]);
      expect(rows.filter((r) => r.kind === 'ratio').every((r) => r.verdict === 'ok')).toBe(true);
      // Absolute numbers did change: they are shown as info.
      expect(rows.find((r) => r.metric === 'fb-map-direct.read_mb_per_s')?.change).toBeCloseTo(speed - 1);
    }
  });

  it('flags a regression of one method relative to the RAM reference', () => {
    const rows = compareToBaseline(benchMetrics(throughputCases(1, { 'fb-map-direct': 1000 })), baseline, O);
    expect(regressions(rows).map((r) => r.metric)).toEqual(['fb-map-direct.fb_copy_ratio']);
    const r = rows.find((x) => x.metric === 'fb-map-direct.fb_copy_ratio');
    expect(r).toMatchObject({ baseline: 0.5, current: 0.25, tolerance: '-40%', verdict: 'regression' });
  });

  it('flags a duplicated record exactly, and an inverted-call slowdown against polling', () => {
    const rows = compareToBaseline(benchMetrics(throughputCases(1, { duplicates: 1, 'mouse-inverted-call-r8000-b4-p16': 4000 })), baseline, O);
    expect(regressions(rows).map((r) => r.metric).sort()).toEqual([
      'mouse-inverted-call-r8000-b4-p16.duplicates',
      'mouse-inverted-call-r8000-b4-p16.events_ratio',
    ]);
    expect(rows.find((x) => x.metric.endsWith('.duplicates') && x.verdict === 'regression')?.tolerance).toBe('≤ 0');
  });

  it('reports improvements, new and missing metrics; tolerances can be overridden', () => {
    const cur = benchMetrics(throughputCases(1, { 'fb-copy-mmio': 80 })).filter((m) => !m.name.startsWith('mouse-polling'));
    cur.push({ name: 'extra.fb_copy_ratio', value: 1, kind: 'ratio', unit: '× RAM' });
    const rows = compareToBaseline(cur, baseline, O);
    const v = Object.fromEntries(rows.map((r) => [r.metric, r.verdict]));
    expect(v['fb-copy-mmio.fb_copy_ratio']).toBe('improved');
    expect(v['extra.fb_copy_ratio']).toBe('new');
    expect(v['mouse-polling-r8000-b4.duplicates']).toBe('missing');
    expect(regressions(compareToBaseline(cur, baseline, { ...O, missingIsRegression: true })).length).toBeGreaterThan(0);
    const slower = benchMetrics(throughputCases(1, { 'fb-map-direct': 1000 }));
    expect(regressions(compareToBaseline(slower, baseline, O))).toHaveLength(1);
    expect(regressions(compareToBaseline(slower, baseline, { ...O, tolerances: { 'fb-map-direct.fb_copy_ratio': 0.6 } }))).toHaveLength(0);
  });

  it('renders tables and a one-line verdict', () => {
    const rows = compareToBaseline(benchMetrics(throughputCases(1, { 'fb-map-direct': 1000 })), baseline, O);
    const md = benchTableMarkdown(rows, { hideInfo: true });
    expect(md.split('\n')[0]).toBe('| metric | baseline | current | spread | change | tolerance | verdict |');
    expect(md).toContain('| fb-map-direct.fb_copy_ratio | 0.500 | 0.250 | 0 | -50.0% | -40% | REGRESSION |');
    expect(md).not.toContain('info');
    expect(benchTableText(rows)).toMatch(/fb-map-direct\.fb_copy_ratio +0\.500 +0\.250 +0 +-50\.0% +-40% +REGRESSION/);
    expect(benchVerdictLine(rows)).toMatch(/^\d+ ok, 1 regression, \d+ info$/);
  });
});

describe('baseline file', () => {
  it('round-trips and keeps tuned tolerances on update', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hilbox-bench-'));
    const file = join(dir, 'baseline.json');
    const tuned = structuredClone(baseline);
    const m = tuned.metrics['fb-copy-mmio.fb_copy_ratio'];
    if (m) m.tolerance = 0.6;
    writeBaseline(file, withEntry(undefined, tuned));
    const back = readBaseline(file);
    expect(back.schema).toBe('hilbox-baseline/2');
    const entry = back.baselines[`wall/${baseline.fingerprint}`];
    expect(entry?.environment.cpuModel).toBe('Test CPU @ 3GHz');
    const next = buildBaselineEntry(benchMetrics(throughputCases(2)), { mode: 'wall', scenario: 'default', environment: { ...env }, repeat: 1, ...(entry ? { previous: entry } : {}) });
    expect(next.metrics['fb-copy-mmio.fb_copy_ratio']?.tolerance).toBe(0.6);
    expect(next.metrics['fb-map-direct.fb_copy_ratio']?.tolerance).toBe(0.4);
    expect(next.metrics['mouse-inverted-call-r8000-b4-p16.duplicates']?.max).toBe(0);
  });

  it('a missing baseline is an error that says how to make one', () => {
    const file = join(tmpdir(), 'hilbox-no-such-baseline.json');
    expect(existsSync(file)).toBe(false);
    expect(() => readBaseline(file)).toThrow(NoBaselineError);
    expect(() => readBaseline(file)).toThrow(/no baseline at .*hilbox bench --update-baseline/);
  });

  it('rejects a malformed baseline', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hilbox-bench-'));
    const file = join(dir, 'b.json');
    writeBaseline(file, withEntry(undefined, baseline));
    const text = readFileSync(file, 'utf8').replace('hilbox-baseline/2', 'hilbox-baseline/9');
    expect(() => parseBaseline(text, file)).toThrow(/not a hilbox-baseline\/2 file/);
  });
});


describe('environment', () => {
  it('fingerprints and diffs', () => {
    expect(env).toMatchObject({ cpuModel: 'Test CPU @ 3GHz', cores: 2, qemu: 'QEMU emulator version 9.2.0', accelerator: 'kvm', gitCommit: 'abcdef0123456789', gitDirty: true });
    expect(environmentDifferences(env, { ...env, accelerator: 'tcg' })).toEqual(['accelerator: kvm → tcg']);
    expect(describeEnvironment(env)).toContain('git abcdef012345+dirty');
  });
});

describe('bench chart', () => {
  it('is a decodable PNG with a red bar for a regression', () => {
    const rows = compareToBaseline(benchMetrics(throughputCases(1, { 'fb-map-direct': 1000 })), baseline, O);
    const img = renderBenchChart(rows, { width: 700 });
    const dir = mkdtempSync(join(tmpdir(), 'hilbox-chart-'));
    const file = join(dir, 'chart.png');
    writeBenchChart(file, rows, { width: 700 });
    const png = decode(readFileSync(file)) as { width: number; height: number; data: Uint8Array };
    expect([png.width, png.height]).toEqual([img.width, img.height]);
    expect(Buffer.from(png.data).equals(Buffer.from(img.data))).toBe(true);
    let red = 0;
    for (let i = 0; i < png.data.length; i += 3) if (png.data[i] === 215 && png.data[i + 1] === 38 && png.data[i + 2] === 56) red++;
    expect(red).toBeGreaterThan(100);
  });
});

describe('repeats', () => {
  it('takes medians of ratios and the maximum of counts', () => {
    const a = [{ name: 'r', value: 1, kind: 'ratio' as const, unit: 'x' }, { name: 'c', value: 0, kind: 'count' as const, unit: 'count' }];
    const b = [{ name: 'r', value: 5, kind: 'ratio' as const, unit: 'x' }, { name: 'c', value: 2, kind: 'count' as const, unit: 'count' }];
    const c = [{ name: 'r', value: 2, kind: 'ratio' as const, unit: 'x' }, { name: 'c', value: 0, kind: 'count' as const, unit: 'count' }];
    expect(combineRepeats([a, b, c])).toEqual([
      { name: 'r', value: 2, kind: 'ratio', unit: 'x', min: 1, max: 5, values: [1, 5, 2] },
      { name: 'c', value: 2, kind: 'count', unit: 'count', min: 0, max: 2, values: [0, 2, 0] },
    ]);
  });
});
