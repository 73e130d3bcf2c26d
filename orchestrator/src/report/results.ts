/**
 * The results model of docs/results-schema.md. One job: case results in, `results.json` out,
 * with probe output parsed defensively (a broken line becomes a `fail` case, never a crash or a
 * silently missing case).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';

export const RESULTS_SCHEMA = 'hilbox-results/1' as const;

export type CaseStatus = 'pass' | 'fail' | 'skip';

export interface Metric {
  value: number;
  unit: string;
}

/** A case parameter value (`params`): what the case ran with, as data. */
export type ParamValue = string | number;

/** One case as a probe reports it (and as results.json stores it). */
export interface CaseResult {
  /** Only in a report of several scenarios (`hilbox matrix`, a merge): the scenario the case ran in. */
  scenario?: string;
  suite: string;
  name: string;
  status: CaseStatus;
  /**
   * The parameters that make this case what it is (e.g. `{mode: 'inverted-call', rate_hz: 8000,
   * bundle: 1, pending: 64}`), set by the suite that planned it. Reports read these, never the name.
   */
  params?: Record<string, ParamValue>;
  /** Required for fail and skip. */
  reason?: string;
  /** Security cases: the policy the case checks, as a sentence. */
  policy?: string;
  metrics?: Record<string, Metric>;
  details?: Record<string, unknown>;
  /** Host-measured duration of the case. */
  durationMs?: number;
}

export interface Summary {
  pass: number;
  fail: number;
  skip: number;
}

export interface RunResults {
  schema: typeof RESULTS_SCHEMA;
  scenario: string;
  guest: string;
  /** ISO 8601. */
  startedAt: string;
  durationMs: number;
  environment: Record<string, unknown>;
  cases: CaseResult[];
  summary: Summary;
  /** A report of several scenarios: each one (its cases carry `scenario`). */
  scenarios?: ScenarioInfo[];
  /** A run of one shard (`hilbox run --shard K/N`): which one, and the whole run it is part of. */
  shard?: ShardInfo;
  /** A merged report (`hilbox merge`): the shards it was made of. */
  merged?: MergedInfo;
}

export interface ScenarioInfo {
  name: string;
  guest: string;
}

export interface ShardInfo {
  /** 1-based. */
  index: number;
  count: number;
  /** Identifies the whole run (scenarios as loaded, shard count); equal in all its shards. */
  plan: string;
  /** Every case of the whole run (all shards), `<scenario>/<suite>/<case>`, in plan order. */
  planned: string[];
  /** Every scenario of the whole run (all shards). */
  scenarios: ScenarioInfo[];
}

export interface MergedShard {
  index: number;
  from: string;
  /** Scenarios the shard booted (its `run/boot` cases). */
  boots: number;
  bootMs: number;
  cases: number;
  /** Sum of its cases' durations. */
  caseMs: number;
  /** The shard's whole run. */
  durationMs: number;
}

export interface MergedInfo {
  plan: string;
  count: number;
  /** The shards found: the directory each came from and what it cost (its boots, its cases, its whole run). */
  shards: MergedShard[];
  /** Shard indices no directory held. */
  missing: number[];
}

const MetricSchema = z.object({ value: z.number().refine(Number.isFinite, 'must be a finite number'), unit: z.string() });

/** A probe line's object. Unknown extra fields are tolerated (and dropped). */
const ProbeCaseSchema = z.object({
  suite: z.string().min(1),
  name: z.string().min(1),
  status: z.enum(['pass', 'fail', 'skip']),
  reason: z.string().optional(),
  policy: z.string().optional(),
  params: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
  metrics: z.record(z.string(), MetricSchema).optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});

export type ProbeLineResult = { ok: true; result: CaseResult } | { ok: false; result: CaseResult; error: string };

/** Identifies where a probe line came from, used to name the `fail` case for a broken line. */
export interface ProbeStep {
  /** Suite the step was running, e.g. `security`. */
  suite: string;
  /** The probe step, e.g. `probe-security`; the broken line's case is named after it. */
  step: string;
}

function clip(s: string, max = 160): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

function issueText(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : 'line'}: ${i.message}`).join('; ');
}

/**
 * Parses one stdout line of a probe. Valid: a JSON object with suite, name and status (plus the
 * optional fields of the schema). Anything else yields a `fail` case named `<step>-output`
 * whose reason quotes the problem and the line. `fail`/`skip` without a reason keep their
 * status and get a reason saying the probe gave none.
 */
export function parseProbeLine(line: string, from: ProbeStep): ProbeLineResult {
  const broken = (why: string): ProbeLineResult => {
    const error = `${why}: ${JSON.stringify(clip(line))}`;
    return {
      ok: false,
      error,
      result: { suite: from.suite, name: `${from.step}-output`, status: 'fail', reason: `probe printed an invalid result line (${error})` },
    };
  };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return broken(`not JSON (${(e as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return broken('not a JSON object');
  const parsed = ProbeCaseSchema.safeParse(value);
  if (!parsed.success) return broken(issueText(parsed.error));
  const p = parsed.data;
  const result: CaseResult = { suite: p.suite, name: p.name, status: p.status };
  if (p.reason !== undefined && p.reason !== '') result.reason = p.reason;
  else if (p.status !== 'pass') result.reason = `(the probe gave no reason for ${p.status})`;
  if (p.policy !== undefined) result.policy = p.policy;
  if (p.params !== undefined) result.params = p.params;
  if (p.metrics !== undefined) result.metrics = p.metrics;
  if (p.details !== undefined) result.details = p.details;
  return { ok: true, result };
}

/**
 * Parses a probe's whole stdout: one case per non-blank line. Broken lines become `fail` cases
 * (numbered when there are several). A duplicate (suite, name) becomes a `fail` too.
 */
export function parseProbeOutput(stdout: string, from: ProbeStep): CaseResult[] {
  const out: CaseResult[] = [];
  const seen = new Set<string>();
  let broken = 0;
  for (const raw of stdout.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    const r = parseProbeLine(line, from);
    if (!r.ok) {
      broken++;
      if (broken > 1) r.result.name = `${from.step}-output-${broken}`;
      out.push(r.result);
      continue;
    }
    const key = `${r.result.suite}\u0000${r.result.name}`;
    if (seen.has(key)) {
      out.push({ ...r.result, name: `${r.result.name}-duplicate`, status: 'fail', reason: `the probe reported case ${r.result.suite}/${r.result.name} more than once` });
      continue;
    }
    seen.add(key);
    out.push(r.result);
  }
  return out;
}

/** Turns a case into a failure (e.g. pass → fail because the kernel log was not clean). */
export function failCase(c: CaseResult, reason: string): CaseResult {
  const prior = c.status === 'fail' && c.reason ? `${c.reason}; ` : '';
  return { ...c, status: 'fail', reason: `${prior}${reason}` };
}

/** A case the orchestrator reports on its own (probe never ran, timed out, QEMU died, …). */
export function hostCase(suite: string, name: string, status: CaseStatus, reason?: string, durationMs?: number): CaseResult {
  const c: CaseResult = { suite, name, status };
  if (reason !== undefined) c.reason = reason;
  if (durationMs !== undefined) c.durationMs = durationMs;
  return c;
}

export function summarize(cases: readonly CaseResult[]): Summary {
  const s: Summary = { pass: 0, fail: 0, skip: 0 };
  for (const c of cases) s[c.status]++;
  return s;
}

export interface RunInfo {
  scenario: string;
  guest: string;
  startedAt: Date | string;
  durationMs: number;
  environment?: Record<string, unknown>;
}

export function buildRunResults(info: RunInfo, cases: readonly CaseResult[]): RunResults {
  return {
    schema: RESULTS_SCHEMA,
    scenario: info.scenario,
    guest: info.guest,
    startedAt: typeof info.startedAt === 'string' ? info.startedAt : info.startedAt.toISOString(),
    durationMs: Math.round(info.durationMs),
    environment: info.environment ?? {},
    cases: [...cases],
    summary: summarize(cases),
  };
}

/** Cases grouped by suite (by scenario and suite, `<scenario>/<suite>`, when cases name their scenario), in first-seen order. */
export function groupBySuite(cases: readonly CaseResult[]): Map<string, CaseResult[]> {
  const m = new Map<string, CaseResult[]>();
  for (const c of cases) {
    const key = c.scenario === undefined ? c.suite : `${c.scenario}/${c.suite}`;
    const list = m.get(key);
    if (list) list.push(c);
    else m.set(key, [c]);
  }
  return m;
}

/** The run failed when any case failed. */
export function runPassed(r: Pick<RunResults, 'summary'>): boolean {
  return r.summary.fail === 0;
}

export function serializeResults(r: RunResults): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

/** Writes results.json (creating the directory). */
export function writeResults(path: string, r: RunResults): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, serializeResults(r));
}
