/**
 * `hilbox matrix SCENARIO… -j N [--shard K/N] [--out DIR]`: several scenarios on one machine,
 * up to N VMs side by side (each its own SSH port, QMP and console sockets, scratch directory
 * and artifact directory `DIR/<scenario>/`), the builds done once before any VM starts, one
 * combined report in DIR.
 */
import { UsageError } from '../../core/errors.ts';
import type { Output } from '../output.ts';
import { runScenariosCommand } from './run.ts';

/** The largest -j: each VM takes its memory and a share of the host's cores. */
export const MAX_JOBS = 16;

export function parseJobs(text: string): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_JOBS) throw new UsageError(`-j ${JSON.stringify(text)}: allowed: a whole number of VMs, 1..${MAX_JOBS}`);
  return n;
}

export async function matrixCommand(a: { scenarios: readonly string[]; jobs: string; shard?: string; outDir?: string; json: boolean; out: Output }): Promise<number> {
  const jobs = parseJobs(a.jobs);
  if (a.scenarios.length === 0) throw new UsageError('matrix: no scenario given; allowed: one or more scenario YAML files, e.g. hilbox matrix fixtures/default.yaml fixtures/scenarios/mmio-latency.yaml -j 2');
  return runScenariosCommand({ scenarios: a.scenarios, jobs, json: a.json, out: a.out, ...(a.shard !== undefined ? { shard: a.shard } : {}), ...(a.outDir ? { outDir: a.outDir } : {}) });
}
