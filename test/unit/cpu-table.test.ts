/**
 * The CPU table without a guest: its plan (picture × BAR × method as data, bad input refused
 * before anything boots, a Windows guest skipping what needs a hot-plugged device), the table
 * rows read from params and metrics, the SVG chart (parsed back as XML), and the bench hook.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { renderCpuChart } from '../../orchestrator/src/bench/cpu-chart.ts';
import { benchSuites, CPU_CHART_FILE, withoutCpuTable, writeCpuTable } from '../../orchestrator/src/bench/cpu-table.ts';
import { benchMetrics } from '../../orchestrator/src/bench/metrics.ts';
import { UsageError } from '../../orchestrator/src/core/errors.ts';
import { guestTraits } from '../../orchestrator/src/guest/for-scenario.ts';
import { cpuRows, cpuTableSpec } from '../../orchestrator/src/report/cpu-table.ts';
import { isMetricName } from '../../orchestrator/src/report/metric-names.ts';
import type { CaseResult } from '../../orchestrator/src/report/results.ts';
import { summarySections } from '../../orchestrator/src/report/summary.ts';
import { textTable } from '../../orchestrator/src/report/table.ts';
import { loadDefaultScenario, loadFullScenario, parseScenario } from '../../orchestrator/src/scenario/load.ts';
import { planCpuTable } from '../../orchestrator/src/suites/cpu-table.ts';
import { planRun } from '../../orchestrator/src/suites/run-plan.ts';
import { SUITE_NAMES } from '../../orchestrator/src/suites/plan.ts';

const scenario = (yaml: string) => parseScenario(`name: t\n${yaml}`, 't.yaml');
const err = (f: () => unknown): Error => {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
};

/** A result as the probe's fb-consume reports it, planned as the suite plans it. */
function cpuCase(name: string, params: CaseResult['params'], on: [number, number, number, number], off: [number, number, number, number], status: CaseResult['status'] = 'pass'): CaseResult {
  const m = (sfx: string, [cpu, published, consumed, torn]: [number, number, number, number]) => ({
    [`cpu_percent${sfx}`]: { value: cpu, unit: '%' },
    [`frames_published${sfx}`]: { value: published, unit: 'frames' },
    [`frames_consumed${sfx}`]: { value: consumed, unit: 'frames' },
    [`frames_missed${sfx}`]: { value: published - consumed, unit: 'frames' },
    [`torn_frames${sfx}`]: { value: torn, unit: 'frames' },
    [`cpu_time${sfx}`]: { value: cpu / 50, unit: 's' },
  });
  return { suite: 'cpu', name, status, params, metrics: { ...m('', on), ...m('_no_seqlock', off) } };
}

const CASES: CaseResult[] = [
  cpuCase('cpu-map-1920x1080-50fps-direct', { method: 'map', width: 1920, height: 1080, fps: 50, fb_mode: 'direct', mmio_latency_ns: 0 }, [14.6, 100, 100, 0], [13.9, 100, 100, 3]),
  cpuCase('cpu-bytewise-640x480-5fps-mmio-500ns', { method: 'bytewise', width: 640, height: 480, fps: 5, fb_mode: 'mmio', mmio_latency_ns: 500 }, [97.2, 10, 0, 0], [98, 10, 1, 1]),
];

describe('the CPU table plan', () => {
  it('plans every picture × BAR × method of the full scenario, with its parameters as data', () => {
    expect(benchSuites(loadDefaultScenario())).toEqual(['throughput']); // the default scenario samples; hilbox bench measures the full one
    const s = loadFullScenario();
    expect(s.suites.cpu.enabled).toBe(false); // hilbox run leaves it out
    expect(benchSuites(s)).toEqual(['throughput', 'cpu']); // hilbox bench runs it, once: in the last repetition
    expect([1, 2, 3].map((i) => benchSuites(s, i, 3))).toEqual([['throughput'], ['throughput'], ['throughput', 'cpu']]);
    const plan = planCpuTable(s, guestTraits('linux'));
    expect(plan).toHaveLength(2 * 4 * 4);
    expect(plan.every((c) => !c.skip && c.suite === 'cpu')).toBe(true);
    const byName = Object.fromEntries(plan.map((c) => [c.name, c]));
    expect(byName['cpu-map-1920x1080-50fps-direct']?.params).toEqual({ method: 'map', width: 1920, height: 1080, fps: 50, fb_mode: 'direct', mmio_latency_ns: 0 });
    expect(byName['cpu-bytewise-640x480-5fps-mmio-500ns']?.params).toEqual({ method: 'bytewise', width: 640, height: 480, fps: 5, fb_mode: 'mmio', mmio_latency_ns: 500 });
    expect(Object.keys(byName)).toContain('cpu-qword-640x480-5fps-mmio-0ns');
    // the default run plans none of it; a threshold may name a CPU case only when the run has it
    expect(planRun(s, SUITE_NAMES.filter((n) => s.suites[n].enabled)).cpu).toEqual([]);
    const t = scenario('suites:\n  cpu: { enabled: true, pictures: [{ width: 640, height: 480, fps: 5 }], bars: [{ fb-mode: direct }], methods: [map] }\nthresholds:\n  cpu-map-640x480-5fps-direct.frames_missed: { max: 0 }\n');
    expect(planRun(t, ['cpu']).cpu.map((c) => c.name)).toEqual(['cpu-map-640x480-5fps-direct']);
    expect(err(() => planRun(t, ['throughput'])).message).toMatch(/no case "cpu-map-640x480-5fps-direct"/);
  });

  it('a Windows guest measures the booted device and skips, saying why, what needs a hot-plugged device', () => {
    const s = scenario('guest:\n  os: windows\n  image: /nonexistent.qcow2\n  ssh: { user: u, password: p }\n');
    const plan = planCpuTable(s, guestTraits('windows'));
    const run = plan.filter((c) => !c.skip).map((c) => c.name);
    expect(run).toEqual(['cpu-map-1920x1080-50fps-direct', 'cpu-copy-1920x1080-50fps-direct', 'cpu-bytewise-1920x1080-50fps-direct', 'cpu-qword-1920x1080-50fps-direct']);
    expect(plan.find((c) => c.name === 'cpu-map-640x480-5fps-mmio-200ns')?.skip).toMatch(/needs a hot-plugged device \(640x480-5fps, mmio-200ns\), which a windows guest cannot find yet/);
  });

  it('refuses bad input naming the field before anything boots', () => {
    expect(err(() => scenario('suites:\n  cpu:\n    bars: [{ fb-mode: direct, mmio-latency-ns: 200 }]\n')).message).toMatch(/suites\.cpu\.bars\[0\]\.mmio-latency-ns: 200 is only allowed with fb-mode: mmio/);
    expect(err(() => scenario('suites:\n  cpu:\n    methods: [ram]\n')).message).toMatch(/suites\.cpu\.methods\[0\]: "ram" is not allowed; allowed: map, copy, bytewise, qword/);
    expect(err(() => scenario('suites:\n  cpu:\n    pictures: [{ width: 1920, height: 1080 }]\n')).message).toMatch(/suites\.cpu\.pictures\[0\]\.fps/);
    // what the device itself refuses: the render-rate bound of fb-mode=direct
    const fast = scenario('suites:\n  cpu:\n    pictures: [{ width: 1920, height: 1080, fps: 1000 }]\n');
    const e = err(() => planCpuTable(fast, guestTraits('linux')));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toMatch(/suites\.cpu: pictures\[0\] \(1920x1080-1000fps\) with bars\[0\] \(direct\): fps: .*2048 MiB\/s/);
    const twice = scenario('suites:\n  cpu:\n    bars: [{ fb-mode: direct }, { fb-mode: direct }]\n');
    expect(err(() => planCpuTable(twice, guestTraits('linux'))).message).toMatch(/cpu-map-1920x1080-50fps-direct is planned twice/);
    expect(benchSuites(scenario('suites:\n  cpu: { bench: false }\n'))).toEqual(['throughput']);
  });
});

describe('the CPU table', () => {
  it('reads each row from params and metrics: CPU %, missed/published, torn, seqlock on and off', () => {
    const rows = cpuRows(CASES);
    expect(rows[0]).toMatchObject({ picture: '1920x1080@50', bar: 'direct', method: 'map', seqlock: { cpuPercent: 14.6, missed: 0, published: 100, torn: 0 }, noSeqlock: { torn: 3 } });
    expect(rows[1]).toMatchObject({ picture: '640x480@5', bar: 'mmio 500 ns', method: 'bytewise', seqlock: { missed: 10, consumed: 0 } });
    const text = textTable(cpuTableSpec(CASES)).split('\n');
    expect(text[0]).toMatch(/^picture\s+BAR\s+method\s+CPU % \(seqlock\)\s+missed\s+torn\s+CPU % \(no seqlock\)\s+missed\s+torn\s+status$/);
    expect(text[2]).toMatch(/^1920x1080@50\s+direct\s+map\s+15\s+0\/100\s+0\s+14\s+0\/100\s+3\s+PASS$/);
    expect(text[3]).toMatch(/^640x480@5\s+mmio 500 ns\s+bytewise\s+97\s+10\/10\s+0\s+98\s+9\/10\s+1\s+PASS$/);
  });

  it('is a section of the run summary, and the bench leaves it out of the baseline comparison', () => {
    const results = { schema: 'hilbox-results/1' as const, scenario: 't', guest: 'linux', startedAt: '', durationMs: 0, environment: {}, cases: CASES, summary: { pass: 2, fail: 0, skip: 0 } };
    expect(summarySections(results).map((s) => s.title)).toEqual([expect.stringMatching(/^CPU to consume every frame/)]);
    // the bench prints it once, after its comparison, not in the console summary too
    expect(summarySections(withoutCpuTable(results))).toEqual([]);
    expect(withoutCpuTable(results).summary).toEqual(results.summary);
    expect(benchMetrics(CASES)).toEqual([]);
    for (const m of Object.keys(CASES[0]!.metrics!)) expect(isMetricName(m), m).toBe(true);
  });

  it('draws the chart as SVG: two bars per row, red where frames were missed, text escaped', () => {
    const rows = cpuRows(CASES);
    rows[0]!.method = 'map <&>';
    const svg = renderCpuChart(rows);
    expect(XMLValidator.validate(svg)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(svg) as { svg: { rect: { fill: string; title?: string; width: string }[]; text: (string | { '#text': string })[] } };
    const bars = doc.svg.rect.filter((r) => r.title !== undefined);
    expect(bars).toHaveLength(4);
    // kept up: blue; missed frames: red
    expect(bars.map((b) => b.fill)).toEqual(['#1f6feb', '#8cb8f5', '#cf222e', '#f0a0a6']);
    expect(bars[2]!.title).toMatch(/cpu-bytewise-640x480-5fps-mmio-500ns \(seqlock\): 97\.2% · 10\/10 missed/);
    // widths follow the CPU share on a 0..100 % scale
    expect(Number(bars[2]!.width) / Number(bars[0]!.width)).toBeCloseTo(97.2 / 14.6, 1);
    const texts = doc.svg.text.map((t) => (typeof t === 'string' ? t : t['#text']));
    expect(texts).toContain('1920x1080@50  direct  map <&>');
    expect(renderCpuChart([])).toMatch(/no CPU table cases in this run/);
  });

  it('the bench hook writes the chart and gives the table as text and Markdown', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hilbox-cpu-'));
    try {
      expect(writeCpuTable(dir, [])).toBeUndefined();
      const r = writeCpuTable(dir, CASES)!;
      expect(r.chart).toBe(join(dir, CPU_CHART_FILE));
      expect(XMLValidator.validate(readFileSync(r.chart, 'utf8'))).toBe(true);
      expect(r.text).toMatch(/^CPU to consume every frame\npicture/);
      expect(r.markdown).toMatch(/\| 640x480@5 \| mmio 500 ns \| bytewise \| 97 \| 10\/10 \| 0 \| 98 \| 9\/10 \| 1 \| PASS \|/);
      expect(r.markdown).toContain(`](${CPU_CHART_FILE})`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
