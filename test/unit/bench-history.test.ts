/**
 * The noise-aware verdict, per-mode/per-machine baselines and the history/trend, as pure
 * functions. The figures are real: `test/unit/data/bench-repeats.json` holds the
 * per-repetition ratios of real wall-clock and deterministic `hilbox bench` runs on an
 * unchanged tree (its `source` says when), `test/unit/data/bench-baseline-v1.json` the
 * baseline committed before per-mode baselines, and `fixtures/bench-baseline.json` the current one.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBaselineEntry, chooseBaseline, DEFAULT_BASELINE_PATH, DEFAULT_RATIO_TOLERANCE, parseBaseline, withEntry } from '../../orchestrator/src/bench/baseline.ts';
import { compareToBaseline, judgeRatio, ratioSpread, regressions } from '../../orchestrator/src/bench/compare.ts';
import { baselineKey, machineFingerprint } from '../../orchestrator/src/bench/fingerprint.ts';
import { appendHistory, BENCH_SCHEMA, historyFileName, readHistory, trends, type BenchRecord } from '../../orchestrator/src/bench/history.ts';
import { combineRepeats, type BenchMetric } from '../../orchestrator/src/bench/metrics.ts';
import { median, spread } from '../../orchestrator/src/bench/stats.ts';
import { renderTrendChart, trendMarkdown } from '../../orchestrator/src/bench/trend-chart.ts';

interface RepeatsData {
  /** How the figures were made. */
  source: string;
  environment: Record<string, unknown>;
  /** mode → scenario → run label → metric → the ratio of each repetition. */
  runs: Record<'wall' | 'deterministic', Record<string, Record<string, Record<string, number[]>>>>;
}
const data = JSON.parse(readFileSync(join(import.meta.dirname, 'data', 'bench-repeats.json'), 'utf8')) as RepeatsData;

function firstRun(mode: 'wall' | 'deterministic'): Record<string, number[]> {
  return Object.values(Object.values(data.runs[mode])[0]!)[0]!;
}

/** One run's metrics as combineRepeats makes them from its repetitions. */
function runMetrics(run: Record<string, number[]>): BenchMetric[] {
  const reps = Math.max(...Object.values(run).map((v) => v.length));
  const perRep: BenchMetric[][] = [];
  for (let i = 0; i < reps; i++) perRep.push(Object.entries(run).flatMap(([name, v]) => (v[i] === undefined ? [] : [{ name, value: v[i] as number, kind: 'ratio' as const, unit: '×' }])));
  return combineRepeats(perRep);
}

describe('stats', () => {
  it('median and spread of repetitions', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(spread([0.99, 1.01, 1.0])).toMatchObject({ median: 1, min: 0.99, max: 1.01, n: 3 });
    expect(spread([0.99, 1.01, 1.0]).relative).toBeCloseTo(0.02);
    expect(spread([5]).relative).toBe(0);
    expect(() => median([])).toThrow(RangeError);
  });
});

describe('the ratio rule: beyond the tolerance and outside the noise', () => {
  const base = { value: 1.5, range: [1.4, 1.6] as [number, number] };
  it('a drop beyond the tolerance whose repetitions mingle with the baseline’s is noise, not a regression', () => {
    expect(judgeRatio({ value: 1.5, range: [1.0, 1.6] }, { value: 1.1, range: [1.0, 1.55] }, 0.2)).toBe('noise');
  });
  it('a drop beyond the tolerance with the repetitions apart is a regression, one outlier allowed on either side', () => {
    expect(judgeRatio(base, { value: 1.1, range: [1.0, 1.2] }, 0.2)).toBe('regression');
    // one current repetition above the baseline's minimum (an outlier), the median below it
    expect(judgeRatio(base, { value: 1.1, range: [1.05, 1.45] }, 0.2)).toBe('regression');
    // one baseline repetition as low as the current ones (an outlier), every current one below its median
    expect(judgeRatio({ value: 1.5, range: [0.6, 1.6] }, { value: 0.7, range: [0.65, 0.75] }, 0.2)).toBe('regression');
  });
  it('a drop no larger than the quieter side’s ± spread is noise', () => {
    expect(judgeRatio({ value: 1, range: [0.2, 3] }, { value: 0.5, range: [0.1, 1.4] }, 0.2)).toBe('noise');
  });
  it('a drop within the tolerance is ok however clean', () => {
    expect(judgeRatio(base, { value: 1.3, range: [1.29, 1.31] }, 0.2)).toBe('ok');
  });
  it('improvements are judged the same way upwards', () => {
    expect(judgeRatio(base, { value: 2, range: [1.9, 2.1] }, 0.2)).toBe('improved');
    expect(judgeRatio({ value: 1.5, range: [1.4, 2.2] }, { value: 2, range: [1.45, 2.1] }, 0.2)).toBe('noise');
  });
  it('a non-finite ratio is a regression', () => {
    expect(judgeRatio(base, { value: Number.NaN, range: [0, 0] }, 0.2)).toBe('regression');
  });
});

describe('real repetitions on an unchanged tree', () => {
  const env = data.environment;
  it('wall clock: each later run against the baseline recorded before it (--repeat 3 each) gives no regression', () => {
    let runs = 0;
    for (const byLabel of Object.values(data.runs.wall)) {
      const base = byLabel.baseline;
      if (!base) continue;
      const entry = buildBaselineEntry(runMetrics(base), { mode: 'wall', scenario: 'default', environment: env, repeat: 3 });
      for (const [label, run] of Object.entries(byLabel)) {
        if (label === 'baseline') continue;
        runs++;
        const rows = compareToBaseline(runMetrics(run), entry, { ratioTolerance: DEFAULT_RATIO_TOLERANCE.wall });
        expect(regressions(rows).map((r) => `${label}: ${r.metric} ${r.change}`)).toEqual([]);
      }
    }
    expect(runs).toBeGreaterThanOrEqual(5);
  });

  it('deterministic: every run against a baseline made of any other run of its scenario gives no regression', () => {
    let pairs = 0;
    for (const runs of Object.values(data.runs.deterministic)) {
      const labels = Object.keys(runs);
      for (const bl of labels) {
        const entry = buildBaselineEntry(runMetrics(runs[bl]!), { mode: 'deterministic', scenario: 'default', environment: env, repeat: 3 });
        for (const cl of labels) {
          if (cl === bl) continue;
          pairs++;
          const rows = compareToBaseline(runMetrics(runs[cl]!), entry, { ratioTolerance: DEFAULT_RATIO_TOLERANCE.deterministic });
          expect(regressions(rows).map((r) => `${cl} vs ${bl}: ${r.metric} ${r.change}`)).toEqual([]);
          // and closer than the spread limit, not just the tolerance
          for (const r of rows) if (r.kind === 'ratio' && r.change !== undefined) expect(Math.abs(r.change), `${cl} vs ${bl}: ${r.metric}`).toBeLessThanOrEqual(0.01);
        }
      }
    }
    expect(pairs).toBeGreaterThanOrEqual(2);
  });

  it('wall clock: the load moving between runs is larger than any repetition spread (what the tolerance is for)', () => {
    // the baseline was recorded at a load average of about 12 on 2 cores, the runs after it at 9–10:
    // the mmio ratios moved far beyond their repetitions' spread, in the same direction every run
    const runs = data.runs.wall.default!;
    const base = runMetrics(runs.baseline!);
    const later = Object.entries(runs).filter(([l]) => l !== 'baseline').map(([, r]) => runMetrics(r));
    const m = 'fb-map-mmio.fb_copy_ratio';
    const b = base.find((x) => x.name === m)!;
    const ups = later.map((r) => r.find((x) => x.name === m)!.value / b.value - 1);
    expect(Math.min(...ups)).toBeGreaterThan(0.25);
  });

  it('deterministic: every ratio metric of a run repeated 2–3 times is within 1 %', () => {
    let runs = 0;
    for (const byLabel of Object.values(data.runs.deterministic)) {
      for (const run of Object.values(byLabel)) {
        const s = ratioSpread(runMetrics(run));
        if (s.metrics === 0) continue; // one repetition
        runs++;
        expect(s.worst!.relative).toBeLessThanOrEqual(0.01);
      }
    }
    expect(runs).toBeGreaterThan(0);
  });

  it('wall clock: the same figures judged by the median and the tolerance alone would fail', () => {
    // what the gate did before: median below baseline × (1 − 40 %) … and below × (1 − 25 %)
    let flagged25 = 0;
    for (const runs of Object.values(data.runs.wall)) {
      const labels = Object.keys(runs);
      for (const bl of labels) {
        const b = runMetrics(runs[bl]!);
        for (const cl of labels) {
          if (cl === bl) continue;
          for (const m of runMetrics(runs[cl]!)) {
            const ref = b.find((x) => x.name === m.name);
            if (ref && m.value < ref.value * 0.75) flagged25++;
          }
        }
      }
    }
    expect(flagged25, 'medians 25 % below another unchanged run’s: noise the range rule must absorb').toBeGreaterThan(0);
  });
});

describe('baselines per mode and machine', () => {
  it('reads a hilbox-baseline/1 file as the wall-clock baseline of the machine it names', () => {
    // the committed baseline before per-mode baselines: one real `hilbox bench` run
    const v1Path = join(import.meta.dirname, 'data', 'bench-baseline-v1.json');
    const raw = JSON.parse(readFileSync(v1Path, 'utf8')) as { schema: string; environment: Record<string, unknown>; metrics: Record<string, { value: number }> };
    expect(raw.schema).toBe('hilbox-baseline/1');
    const legacy = parseBaseline(readFileSync(v1Path, 'utf8'), v1Path);
    const key = baselineKey('wall', machineFingerprint(raw.environment));
    expect(Object.keys(legacy.baselines)).toEqual([key]);
    const e = legacy.baselines[key]!;
    expect(e.metrics['fb-copy-direct.fb_copy_ratio']?.value).toBe(raw.metrics['fb-copy-direct.fb_copy_ratio']?.value);
    // its uniform ±40 % was not chosen per metric: not carried over
    expect(e.metrics['fb-copy-direct.fb_copy_ratio']?.tolerance).toBeUndefined();
  });

  it('the committed baseline holds a wall-clock and a deterministic baseline of one machine', () => {
    const f = parseBaseline(readFileSync(DEFAULT_BASELINE_PATH, 'utf8'), DEFAULT_BASELINE_PATH);
    const modes = Object.values(f.baselines).map((e) => e.mode).sort();
    expect(modes).toEqual(['deterministic', 'wall']);
    for (const e of Object.values(f.baselines)) expect(e.repeat).toBeGreaterThanOrEqual(3);
  });

  it('keeps modes and machines apart; another machine’s baseline is found but marked', () => {
    const envA = data.environment;
    const envB = { ...data.environment, cpuModel: 'Some Other CPU', cores: 8 };
    expect(machineFingerprint(envA)).not.toBe(machineFingerprint(envB));
    expect(machineFingerprint({ ...envA, gitCommit: 'x', node: 'v99' })).toBe(machineFingerprint(envA));
    const wall = buildBaselineEntry(runMetrics(firstRun('wall')), { mode: 'wall', scenario: 'default', environment: envA, repeat: 3 });
    const det = buildBaselineEntry(runMetrics(firstRun('deterministic')), { mode: 'deterministic', scenario: 'default', environment: envA, repeat: 3 });
    const file = withEntry(withEntry(undefined, wall), det);
    expect(Object.keys(file.baselines).sort()).toEqual([baselineKey('deterministic', wall.fingerprint), baselineKey('wall', wall.fingerprint)]);
    expect(chooseBaseline(file, 'wall', wall.fingerprint)).toMatchObject({ sameMachine: true, entry: { mode: 'wall' } });
    expect(chooseBaseline(file, 'deterministic', machineFingerprint(envB))).toMatchObject({ sameMachine: false, entry: { mode: 'deterministic' } });
    const back = parseBaseline(JSON.stringify(file), 'mem');
    expect(back).toEqual(file);
    expect(() => parseBaseline(JSON.stringify({ ...file, baselines: { 'wall/000000000000': wall } }), 'bad.json')).toThrow(/bad\.json: baselines\.wall\/000000000000: key must be "wall\//);
  });

  it('compares across machines without judging: a halved ratio is info, not a regression', () => {
    const run = runMetrics(firstRun('wall'));
    const entry = buildBaselineEntry(run, { mode: 'wall', scenario: 'default', environment: data.environment, repeat: 3 });
    const halved = run.map((m) => ({ ...m, value: m.value / 2, min: (m.min ?? m.value) / 2, max: (m.max ?? m.value) / 2 }));
    const judged = compareToBaseline(halved, entry, { ratioTolerance: 0.2 });
    expect(regressions(judged).length).toBeGreaterThan(0); // the ratios whose own noise is below 50 %
    const shown = compareToBaseline(halved, entry, { ratioTolerance: 0.2, judge: false });
    expect(regressions(shown)).toEqual([]);
    expect(shown.every((r) => r.verdict === 'info' && r.change !== undefined && Math.abs(r.change + 0.5) < 1e-9)).toBe(true);
  });
});

describe('history and trend', () => {
  const record = (createdAt: string, commit: string, mode: 'wall' | 'deterministic', run: Record<string, number[]>, fp = machineFingerprint(data.environment)): BenchRecord => ({
    schema: BENCH_SCHEMA, scenario: 'default', mode, repeat: 3, createdAt, commit, fingerprint: fp, environment: data.environment, metrics: runMetrics(run),
  });
  it('appends records, reads them back oldest first, and draws a series per metric of one mode and machine', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hilbox-history-'));
    const wallRuns = Object.values(Object.values(data.runs.wall)[0]!);
    const detRun = firstRun('deterministic');
    wallRuns.forEach((run, i) => appendHistory(dir, record(`2026-12-01T1${i}:00:00.000Z`, `${i}`.repeat(40), 'wall', run)));
    appendHistory(dir, record('2026-12-01T09:00:00.000Z', 'd'.repeat(40), 'deterministic', detRun));
    appendHistory(dir, record('2026-12-01T08:00:00.000Z', 'e'.repeat(40), 'wall', wallRuns[0]!, 'ffffffffffff'));
    writeFileSync(join(dir, 'notes.json'), '{"hello": 1}');
    const h = readHistory(dir);
    expect(h.unreadable).toEqual(['notes.json']);
    expect(h.records.map((r) => r.createdAt)).toEqual([...h.records.map((r) => r.createdAt)].sort());
    const t = trends(h.records, { mode: 'wall', fingerprint: machineFingerprint(data.environment) });
    expect(t.excluded).toBe(2);
    const first = t.trends[0]!;
    expect(first.points).toHaveLength(wallRuns.length);
    expect(first.points[0]!.label).toBe('0000000');
    const reps = wallRuns[0]![first.metric]!;
    expect(first.points[0]).toMatchObject({ value: median(reps), min: Math.min(...reps), max: Math.max(...reps) });
    expect(historyFileName({ createdAt: '2026-12-01T10:00:00.000Z', mode: 'wall', commit: 'abcdef0123456789', dirty: true })).toBe('2026-12-01T10-00-00-000Z-wall-abcdef0123-dirty.json');
    const md = trendMarkdown(t.trends);
    expect(md.split('\n')[0]).toBe('| metric | runs | oldest → newest (median, spread) |');
    expect(md).toContain(`| ${first.metric} | ${wallRuns.length} | `);
    expect(md).toContain(`${String(wallRuns.length - 1).repeat(7)}: `); // the newest run, labelled by its commit
    const img = renderTrendChart(t.trends, { width: 600 });
    expect(img.width).toBe(600);
    let green = 0;
    for (let i = 0; i < img.data.length; i += 3) if (img.data[i] === 46 && img.data[i + 1] === 160 && img.data[i + 2] === 67) green++;
    expect(green).toBeGreaterThanOrEqual(9 * t.trends.length); // the newest run's dot in every panel
  });
});
