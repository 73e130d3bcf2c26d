/**
 * The benchmark baseline file (`schema: "hilbox-baseline/2"`). One job: read, validate, build
 * and write it. It holds one baseline per benchmark mode and machine fingerprint
 * (`baselines["wall/3fa2…"]`, `baselines["deterministic/3fa2…"]`): a figure is only ever
 * judged against one taken the same way on the same kind of machine. Values are only ever
 * produced by a real `hilbox bench --update-baseline`; there is no built-in fallback, so a
 * missing file or mode is an error that says how to make one. A `hilbox-baseline/1` file (one
 * wall-clock baseline) is read as the wall-clock entry of the machine it names.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { repoRoot } from '../core/paths.ts';
import type { Environment } from '../report/environment.ts';
import { baselineKey, BENCH_MODES, machineFingerprint, type BenchMode } from './fingerprint.ts';
import type { BenchKind, BenchMetric } from './metrics.ts';

export const BASELINE_SCHEMA = 'hilbox-baseline/2' as const;
const BASELINE_SCHEMA_V1 = 'hilbox-baseline/1' as const;

/** Where `hilbox bench` keeps the committed baseline. */
export const DEFAULT_BASELINE_PATH = join(repoRoot, 'fixtures', 'bench-baseline.json');

/**
 * Allowed relative drop of a ratio metric before it can count as a regression, per mode. A
 * wall-clock ratio must also move out of the measured noise (compare.ts); the tolerance covers
 * what repetitions seconds apart cannot see — the host's load changing between the baseline's
 * run and this one, which on a shared 2-core TCG host moved the mmio ratios by 40–90 %
 * between runs minutes apart. Small changes are the deterministic mode's job: its figures repeat
 * within 1 %, so 3 % is a real change.
 */
export const DEFAULT_RATIO_TOLERANCE: Record<BenchMode, number> = { wall: 0.4, deterministic: 0.03 };

export interface BaselineMetric {
  /** The median over the baseline's repetitions (count: the maximum seen). */
  value: number;
  kind: BenchKind;
  unit: string;
  /** ratio, info: the smallest and largest repetition (the noise the baseline saw). */
  range?: [number, number];
  /** ratio: allowed relative drop (0.25 = current may be 25 % below the baseline). */
  tolerance?: number;
  /** count: the largest acceptable value (default: the baseline value). */
  max?: number;
}

export interface BaselineEntry {
  mode: BenchMode;
  fingerprint: string;
  createdAt: string;
  scenario: string;
  repeat: number;
  commit?: string;
  environment: Partial<Environment> & Record<string, unknown>;
  metrics: Record<string, BaselineMetric>;
}

export interface BaselineFile {
  schema: typeof BASELINE_SCHEMA;
  /** Key `<mode>/<fingerprint>` (fingerprint.ts). */
  baselines: Record<string, BaselineEntry>;
}

const MetricSchema = z.object({
  value: z.number(),
  kind: z.enum(['ratio', 'count', 'info']),
  unit: z.string(),
  range: z.tuple([z.number(), z.number()]).optional(),
  tolerance: z.number().min(0).max(1).optional(),
  max: z.number().optional(),
});

const EntrySchema = z.object({
  mode: z.enum(BENCH_MODES as [BenchMode, ...BenchMode[]]),
  fingerprint: z.string().regex(/^[0-9a-f]{12}$/),
  createdAt: z.string(),
  scenario: z.string(),
  repeat: z.number().int().min(1),
  commit: z.string().optional(),
  environment: z.record(z.string(), z.unknown()),
  metrics: z.record(z.string(), MetricSchema),
});

const FileSchema = z.object({ schema: z.literal(BASELINE_SCHEMA), baselines: z.record(z.string(), EntrySchema) });

const V1Schema = z.object({
  schema: z.literal(BASELINE_SCHEMA_V1),
  createdAt: z.string(),
  scenario: z.string(),
  environment: z.record(z.string(), z.unknown()),
  metrics: z.record(z.string(), MetricSchema),
});

export class NoBaselineError extends Error {
  constructor(readonly path: string) {
    super(`no baseline at ${path}; record one on a quiet machine with \`hilbox bench --update-baseline\``);
    this.name = 'NoBaselineError';
  }
}

function issues(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ');
}

export function parseBaseline(text: string, file: string): BaselineFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not JSON (${(e as Error).message})`);
  }
  const schema = (data as { schema?: unknown } | null)?.schema;
  if (schema === BASELINE_SCHEMA_V1) {
    const r = V1Schema.safeParse(data);
    if (!r.success) throw new Error(`${file}: not a ${BASELINE_SCHEMA_V1} file: ${issues(r.error)}`);
    const v1 = r.data;
    const fingerprint = machineFingerprint(v1.environment);
    const commit = typeof v1.environment.gitCommit === 'string' ? v1.environment.gitCommit : undefined;
    // v1 gave every ratio the same ±40 % (noise swallowed by the tolerance): not carried over.
    const metrics = Object.fromEntries(Object.entries(v1.metrics).map(([k, { tolerance: _t, ...m }]) => [k, m as BaselineMetric]));
    const entry: BaselineEntry = { mode: 'wall', fingerprint, createdAt: v1.createdAt, scenario: v1.scenario, repeat: 1, environment: v1.environment, metrics, ...(commit ? { commit } : {}) };
    return { schema: BASELINE_SCHEMA, baselines: { [baselineKey('wall', fingerprint)]: entry } };
  }
  const r = FileSchema.safeParse(data);
  if (!r.success) throw new Error(`${file}: not a ${BASELINE_SCHEMA} file: ${issues(r.error)}`);
  for (const [key, e] of Object.entries(r.data.baselines)) {
    if (key !== baselineKey(e.mode, e.fingerprint)) throw new Error(`${file}: baselines.${key}: key must be "${baselineKey(e.mode, e.fingerprint)}" (its mode/fingerprint)`);
  }
  return r.data as BaselineFile;
}

/** Reads a baseline file; throws {@link NoBaselineError} when it does not exist. */
export function readBaseline(path = DEFAULT_BASELINE_PATH): BaselineFile {
  if (!existsSync(path)) throw new NoBaselineError(path);
  return parseBaseline(readFileSync(path, 'utf8'), path);
}

export interface BaselineChoice {
  entry: BaselineEntry;
  /** The entry was taken on a machine with this run's fingerprint. */
  sameMachine: boolean;
}

/**
 * The baseline to compare a run with: the one of this mode and machine; else the newest of this
 * mode from another machine (shown, never judged: `sameMachine` false); else none.
 */
export function chooseBaseline(file: BaselineFile, mode: BenchMode, fingerprint: string): BaselineChoice | undefined {
  const exact = file.baselines[baselineKey(mode, fingerprint)];
  if (exact) return { entry: exact, sameMachine: true };
  const others = Object.values(file.baselines)
    .filter((e) => e.mode === mode)
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  return others[0] ? { entry: others[0], sameMachine: false } : undefined;
}

export interface BuildBaselineOptions {
  mode: BenchMode;
  scenario: string;
  environment: Partial<Environment> & Record<string, unknown>;
  repeat: number;
  commit?: string;
  /** The entry being replaced (or another of the same mode): its per-metric tolerances and maxima are kept. */
  previous?: BaselineEntry;
  ratioTolerance?: number;
  now?: Date;
}

/** A new baseline entry from measured metrics (combineRepeats: median, min, max). */
export function buildBaselineEntry(metrics: readonly BenchMetric[], o: BuildBaselineOptions): BaselineEntry {
  const out: Record<string, BaselineMetric> = {};
  for (const m of metrics) {
    const prev = o.previous?.metrics[m.name];
    const b: BaselineMetric = { value: m.value, kind: m.kind, unit: m.unit };
    if (m.kind !== 'count' && m.min !== undefined && m.max !== undefined) b.range = [m.min, m.max];
    if (m.kind === 'ratio') b.tolerance = o.ratioTolerance ?? prev?.tolerance ?? DEFAULT_RATIO_TOLERANCE[o.mode];
    if (m.kind === 'count') b.max = prev?.max ?? m.value;
    out[m.name] = b;
  }
  return {
    mode: o.mode,
    fingerprint: machineFingerprint(o.environment),
    createdAt: (o.now ?? new Date()).toISOString(),
    scenario: o.scenario,
    repeat: o.repeat,
    ...(o.commit ? { commit: o.commit } : {}),
    environment: o.environment,
    metrics: out,
  };
}

/** The file with `entry` put in (replacing the one of its mode and machine, keeping the others). */
export function withEntry(file: BaselineFile | undefined, entry: BaselineEntry): BaselineFile {
  return { schema: BASELINE_SCHEMA, baselines: { ...(file?.baselines ?? {}), [baselineKey(entry.mode, entry.fingerprint)]: entry } };
}

export function writeBaseline(path: string, b: BaselineFile): void {
  mkdirSync(dirname(path), { recursive: true });
  const baselines = Object.fromEntries(
    Object.entries(b.baselines)
      .sort(([a], [c]) => a.localeCompare(c))
      .map(([k, e]) => [k, { ...e, metrics: Object.fromEntries(Object.entries(e.metrics).sort(([a], [c]) => a.localeCompare(c))) }]),
  );
  writeFileSync(path, `${JSON.stringify({ schema: b.schema, baselines }, null, 2)}\n`);
}
