/**
 * The human summary of a run: `summary.md` (Markdown) and the console variant (plain aligned
 * text). One job: RunResults → sections of tables → text. Both renderings share the sections.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CaseResult, RunResults } from './results.ts';
import { fbRatio, formatNumber, isFbCase, isMouseCase, metric, microseconds, mouseParams, seconds, tornFrames } from './metrics.ts';
import { markdownTable, textTable, visible, type TableSpec } from './table.ts';
import { cpuTableSpec, isCpuCase } from './cpu-table.ts';

export interface SummaryOptions {
  /** Overrides `environment.accelerator`. */
  accelerator?: string;
}

export interface Section {
  title: string;
  table: TableSpec;
}

const STATUS_MARK: Record<CaseResult['status'], string> = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' };

function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function throughputSection(cases: readonly CaseResult[]): Section | undefined {
  const fb = cases.filter(isFbCase);
  if (fb.length === 0) return undefined;
  return {
    title: 'Framebuffer throughput',
    table: {
      headers: ['method', 'MB/s', 'frames/s', '× RAM', 'torn (seqlock)', 'torn (no seqlock)', 'CPU s', 'status'],
      align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
      rows: fb.map((c) => {
        const ratio = fbRatio(c, cases);
        const torn = tornFrames(c);
        return [
          c.name,
          formatNumber(metric(c, 'fbMbPerS'), 1),
          formatNumber(metric(c, 'framesPerS'), 1),
          ratio === undefined ? '—' : ratio.toFixed(3),
          formatNumber(torn.seqlock),
          formatNumber(torn.noSeqlock),
          formatNumber(seconds(c, 'cpuTime'), 2),
          STATUS_MARK[c.status],
        ];
      }),
    },
  };
}

/** A ceiling row (fifo-burst load, `params.load`) or the notification baseline beside them. */
export function isCeilingCase(c: CaseResult): boolean {
  return c.params?.load === 'fifo-burst' || c.params?.mode === 'notify';
}

export function mouseSection(cases: readonly CaseResult[]): Section | undefined {
  const ms = cases.filter((c) => isMouseCase(c) && !isCeilingCase(c));
  if (ms.length === 0) return undefined;
  return {
    title: 'Mouse events',
    table: {
      headers: ['mode', 'rate Hz', 'bundle', 'pending', 'events/s', 'lost', 'order viol.', 'rec/compl.', 'CPU µs/1k ev', 'p50 µs', 'p99 µs', 'max µs', 'status'],
      align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
      rows: ms.map((c) => {
        const p = mouseParams(c);
        return [
          p.mode,
          formatNumber(p.rateHz),
          formatNumber(p.bundle),
          formatNumber(p.pending),
          formatNumber(metric(c, 'eventsPerS'), 1),
          formatNumber(metric(c, 'eventsLost')),
          formatNumber(metric(c, 'orderViolations')),
          formatNumber(metric(c, 'recordsPerCompletion'), 2),
          formatNumber(metric(c, 'cpuPer1000Events'), 1),
          formatNumber(microseconds(c, 'latencyP50'), 1),
          formatNumber(microseconds(c, 'latencyP99'), 1),
          formatNumber(microseconds(c, 'latencyMax'), 1),
          STATUS_MARK[c.status],
        ];
      }),
    },
  };
}

/**
 * The ceiling: each delivery mode reading back-to-back fifo-bursts, and the bare notification
 * (eventfd write → wake-up) measured in the same boot.
 */
export function ceilingSection(cases: readonly CaseResult[]): Section | undefined {
  const cs = cases.filter((c) => isCeilingCase(c) && c.status !== 'skip');
  if (cs.length === 0) return undefined;
  return {
    title: 'Event delivery ceiling (fifo-burst load)',
    table: {
      headers: ['mode', 'pending', 'completions/s', 'events/s', 'rec/compl.', 'CPU µs/1k ev', 'device drops', 'order viol.', 'status'],
      align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
      rows: cs.map((c) => {
        const p = mouseParams(c);
        const notify = p.mode === 'notify';
        const eps = notify ? metric(c, 'wakeupsPerS') : metric(c, 'eventsPerS');
        const rpc = notify ? 1 : metric(c, 'recordsPerCompletion');
        return [
          notify ? 'eventfd wake-up' : p.mode,
          notify ? '—' : formatNumber(p.pending),
          formatNumber(eps !== undefined && rpc ? eps / rpc : undefined, 1),
          notify ? '—' : formatNumber(eps, 1),
          notify ? '—' : formatNumber(rpc, 2),
          formatNumber(metric(c, 'cpuPer1000Events'), 1),
          notify ? '—' : formatNumber(metric(c, 'deviceDrops')),
          notify ? '—' : formatNumber(metric(c, 'orderViolations')),
          STATUS_MARK[c.status],
        ];
      }),
    },
  };
}

export function securitySection(cases: readonly CaseResult[]): Section | undefined {
  const sec = cases.filter((c) => c.suite === 'security');
  if (sec.length === 0) return undefined;
  return {
    title: 'Security',
    table: {
      headers: ['case', 'policy', 'status', 'reason'],
      rows: sec.map((c) => [c.name, c.policy ?? '', STATUS_MARK[c.status], c.reason ?? '']),
    },
  };
}

/** The CPU table (suite `cpu`): what consuming every frame costs, seqlock on and off. */
export function cpuSection(cases: readonly CaseResult[]): Section | undefined {
  if (!cases.some(isCpuCase)) return undefined;
  return { title: 'CPU to consume every frame (% of one guest CPU; missed = missed/published frames)', table: cpuTableSpec(cases) };
}

/** Every case the tables above do not show (verify, events, host-side cases, …). */
export function otherSection(cases: readonly CaseResult[]): Section | undefined {
  const rest = cases.filter((c) => c.suite !== 'security' && !isFbCase(c) && !isMouseCase(c) && !isCpuCase(c) && !(isCeilingCase(c) && c.status !== 'skip'));
  if (rest.length === 0) return undefined;
  return {
    title: 'Other cases',
    table: {
      headers: ['suite', 'case', 'status', 'reason'],
      rows: rest.map((c) => [c.suite, c.name, STATUS_MARK[c.status], c.reason ?? '']),
    },
  };
}

function sectionsOf(cases: readonly CaseResult[]): Section[] {
  return [throughputSection(cases), mouseSection(cases), ceilingSection(cases), cpuSection(cases), securitySection(cases), otherSection(cases)].filter((s): s is Section => s !== undefined);
}

/**
 * A merged report's shards: what each cost (boots, cases, its whole run), its boots' share of it,
 * and its run against the slowest shard's (the wall time of a CI matrix is its slowest job).
 */
export function shardsSection(r: RunResults): Section | undefined {
  const shards = r.merged?.shards;
  if (!shards || shards.length === 0) return undefined;
  const slowest = Math.max(1, ...shards.map((x) => x.durationMs));
  const s = (ms: number) => (ms / 1000).toFixed(1);
  return {
    title: 'Shards',
    table: {
      headers: ['shard', 'boots', 'boot s', 'cases', 'case s', 'run s', 'boot share', '× slowest'],
      align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
      rows: shards.map((x) => [`${x.index}/${r.merged!.count}`, String(x.boots), s(x.bootMs), String(x.cases), s(x.caseMs), s(x.durationMs), x.durationMs > 0 ? (x.bootMs / x.durationMs).toFixed(2) : '—', (x.durationMs / slowest).toFixed(2)]),
    },
  };
}

/** The tables of a report; a report of several scenarios has each scenario's, titled `<scenario>: <table>`. */
export function summarySections(r: RunResults): Section[] {
  const shards = shardsSection(r);
  const tables = !r.scenarios || r.scenarios.length < 2
    ? sectionsOf(r.cases)
    : r.scenarios.flatMap((s) => sectionsOf(r.cases.filter((c) => c.scenario === s.name)).map((x) => ({ ...x, title: `${s.name}: ${x.title}` })));
  return shards ? [...tables, shards] : tables;
}

function headerFacts(r: RunResults, o: SummaryOptions): [string, string][] {
  const accel = o.accelerator ?? (typeof r.environment.accelerator === 'string' ? r.environment.accelerator : 'unknown');
  return [
    ['scenario', r.scenario],
    ['guest', r.guest],
    ['accelerator', accel],
    ['started', r.startedAt],
    ['duration', duration(r.durationMs)],
    ['result', `${r.summary.fail === 0 ? 'PASS' : 'FAIL'} — ${r.summary.pass} passed, ${r.summary.fail} failed, ${r.summary.skip} skipped`],
    ...shardFacts(r),
  ];
}

function shardFacts(r: RunResults): [string, string][] {
  if (r.shard) return [['shard', `${r.shard.index}/${r.shard.count} (${r.cases.filter((c) => c.suite !== 'run').length} of the run's ${r.shard.planned.length} cases; run ${r.shard.plan})`]];
  if (!r.merged) return [];
  const m = r.merged;
  return [['merged', `${m.shards.length} of ${m.count} shards (run ${m.plan})${m.missing.length ? `; missing: ${m.missing.map((k) => `${k}/${m.count}`).join(', ')}` : ''}`]];
}

function failures(r: RunResults): string[] {
  return r.cases.filter((c) => c.status === 'fail').map((c) => visible(`${c.scenario ? `${c.scenario}/` : ''}${c.suite}/${c.name}: ${c.reason ?? 'failed'}`));
}

export function toSummaryMarkdown(r: RunResults, o: SummaryOptions = {}): string {
  const out: string[] = [`# hilbox run: ${r.scenario}`, ''];
  for (const [k, v] of headerFacts(r, o)) out.push(`- **${k}**: ${v}`);
  const fails = failures(r);
  if (fails.length > 0) {
    out.push('', '## Failures', '');
    for (const f of fails) out.push(`- ${f.replace(/\r?\n/g, ' ')}`);
  }
  for (const s of summarySections(r)) out.push('', `## ${s.title}`, '', markdownTable(s.table));
  return `${out.join('\n')}\n`;
}

/** Plain text for the terminal: aligned columns, no Markdown. */
export function toSummaryText(r: RunResults, o: SummaryOptions = {}): string {
  const facts = headerFacts(r, o);
  const w = Math.max(...facts.map(([k]) => k.length));
  const out: string[] = facts.map(([k, v]) => `${k.padEnd(w)}  ${v}`);
  for (const s of summarySections(r)) out.push('', s.title, '', textTable(s.table));
  const fails = failures(r);
  if (fails.length > 0) {
    out.push('', 'Failures', '');
    for (const f of fails) out.push(`  ${f.replace(/\r?\n/g, ' ')}`);
  }
  return `${out.join('\n')}\n`;
}

export function writeSummary(path: string, r: RunResults, o: SummaryOptions = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, toSummaryMarkdown(r, o));
}
