/**
 * The benchmark baseline file (`schema: "hilbox-baseline/1"`). One job: read, validate, build
 * and write it. Values in it are only ever produced by a real `hilbox bench --update-baseline`;
 * there is no built-in fallback, so a missing file is an error that says how to make one.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { repoRoot } from '../core/paths.ts';
import type { Environment } from '../report/environment.ts';
import type { BenchKind, BenchMetric } from './metrics.ts';

export const BASELINE_SCHEMA = 'hilbox-baseline/1' as const;

/** Where `hilbox bench` keeps the committed baseline. */
export const DEFAULT_BASELINE_PATH = join(repoRoot, 'fixtures', 'bench-baseline.json');

/** Allowed relative drop of a ratio metric before it counts as a regression. */
/** Ratios of two timings taken seconds apart under TCG move with host load: ±40 % is noise. */
export const DEFAULT_RATIO_TOLERANCE = 0.4;

export interface BaselineMetric {
  value: number;
  kind: BenchKind;
  unit: string;
  /** ratio: allowed relative drop (0.25 = current may be 25 % below the baseline). */
  tolerance?: number;
  /** count: the largest acceptable value (default: the baseline value). */
  max?: number;
}

export interface Baseline {
  schema: typeof BASELINE_SCHEMA;
  createdAt: string;
  scenario: string;
  environment: Partial<Environment> & Record<string, unknown>;
  metrics: Record<string, BaselineMetric>;
}

const BaselineSchema = z.object({
  schema: z.literal(BASELINE_SCHEMA),
  createdAt: z.string(),
  scenario: z.string(),
  environment: z.record(z.string(), z.unknown()),
  metrics: z.record(
    z.string(),
    z.object({
      value: z.number(),
      kind: z.enum(['ratio', 'count', 'info']),
      unit: z.string(),
      tolerance: z.number().min(0).max(1).optional(),
      max: z.number().optional(),
    }),
  ),
});

export class NoBaselineError extends Error {
  constructor(readonly path: string) {
    super(`no baseline at ${path}; record one on a quiet machine with \`hilbox bench --update-baseline\``);
    this.name = 'NoBaselineError';
  }
}

export function parseBaseline(text: string, file: string): Baseline {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not JSON (${(e as Error).message})`);
  }
  const r = BaselineSchema.safeParse(data);
  if (!r.success) {
    throw new Error(`${file}: not a ${BASELINE_SCHEMA} file: ${r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  }
  return r.data as Baseline;
}

/** Reads a baseline; throws {@link NoBaselineError} when the file does not exist. */
export function readBaseline(path = DEFAULT_BASELINE_PATH): Baseline {
  if (!existsSync(path)) throw new NoBaselineError(path);
  return parseBaseline(readFileSync(path, 'utf8'), path);
}

export interface BuildBaselineOptions {
  scenario: string;
  environment: Partial<Environment> & Record<string, unknown>;
  /** The baseline being replaced: its per-metric tolerances and maxima are kept. */
  previous?: Baseline;
  ratioTolerance?: number;
  now?: Date;
}

/** A new baseline from measured metrics. */
export function buildBaseline(metrics: readonly BenchMetric[], o: BuildBaselineOptions): Baseline {
  const out: Record<string, BaselineMetric> = {};
  for (const m of metrics) {
    const prev = o.previous?.metrics[m.name];
    const b: BaselineMetric = { value: m.value, kind: m.kind, unit: m.unit };
    if (m.kind === 'ratio') b.tolerance = prev?.tolerance ?? o.ratioTolerance ?? DEFAULT_RATIO_TOLERANCE;
    if (m.kind === 'count') b.max = prev?.max ?? m.value;
    out[m.name] = b;
  }
  return {
    schema: BASELINE_SCHEMA,
    createdAt: (o.now ?? new Date()).toISOString(),
    scenario: o.scenario,
    environment: o.environment,
    metrics: out,
  };
}

export function writeBaseline(path: string, b: Baseline): void {
  mkdirSync(dirname(path), { recursive: true });
  const sorted = Object.fromEntries(Object.entries(b.metrics).sort(([a], [c]) => a.localeCompare(c)));
  writeFileSync(path, `${JSON.stringify({ ...b, metrics: sorted }, null, 2)}\n`);
}
