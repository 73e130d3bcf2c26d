/** A short benchmark scenario and a runner for `hilbox bench` in a scratch directory. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliResult } from '../cli/helpers.ts';

export interface ShortBench {
  dir: string;
  scenario: string;
  slowed: string;
  baseline: string;
}

const scenarioYaml = (name: string, driverParams: string) => `name: ${name}
accelerator: tcg
memory: 512M
cpus: 2
device: { width: 640, height: 480, fps: 50, fb-mode: direct, mouse-rate-hz: 8000, mouse-bundle: 1 }
${driverParams}suites:
  verify: { enabled: false }
  throughput:
    enabled: true
    short: true
    seconds: 0.5
    fbModes: [direct]
    mouse: { rates: [8000], bundles: [1], pending: [1] }
  security: { enabled: false }
  robustness: { enabled: false }
`;

/**
 * A scratch directory with two scenarios: the same short throughput suite (direct mode only,
 * 640×480, 0.5 s per phase, one inverted-call and one polling mouse case), once with the driver
 * as shipped and once with the test-only `test_copy_extra_passes=2` (INTERFACE.md §1).
 */
export function shortBench(): ShortBench {
  const dir = mkdtempSync(join(tmpdir(), 'hilbox-bench-'));
  const scenario = join(dir, 'short.yaml');
  const slowed = join(dir, 'short-slowed.yaml');
  writeFileSync(scenario, scenarioYaml('bench-short', ''));
  writeFileSync(slowed, scenarioYaml('bench-short', 'driver: { params: { test_copy_extra_passes: 2 } }\n'));
  return { dir, scenario, slowed, baseline: join(dir, 'baseline.json') };
}

export interface BenchRun extends CliResult {
  out: string;
  bench: { mode: string; fingerprint: string; metrics: { name: string; value: number; kind: string; min?: number; max?: number; values?: number[] }[] };
}

export async function bench(b: ShortBench, scenario: string, out: string, args: string[]): Promise<BenchRun> {
  const dir = join(b.dir, out);
  const r = await runCli(['bench', scenario, '--baseline', b.baseline, '--history', join(b.dir, 'history'), '--out', dir, ...args]);
  let parsed: BenchRun['bench'] = { mode: '', fingerprint: '', metrics: [] };
  try {
    parsed = JSON.parse(readFileSync(join(dir, 'bench.json'), 'utf8')) as BenchRun['bench'];
  } catch {
    /* the assertion on the exit code names the failure */
  }
  return { ...r, out: dir, bench: parsed };
}

export function metricValue(r: BenchRun, name: string): number | undefined {
  return r.bench.metrics.find((m) => m.name === name)?.value;
}
