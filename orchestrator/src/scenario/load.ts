/**
 * Reads a scenario YAML file and validates it. One job: text → `Scenario`, or an error that
 * names the file, the field path, what is wrong and what is allowed, with the line and column.
 *
 *   fixtures/x.yaml: device.fps: 0 is out of range; allowed 1..1000 (line 7, column 8)
 */
import { readFileSync } from 'node:fs';
import { join, relative, isAbsolute } from 'node:path';
import { LineCounter, isMap, isNode, isPair, isScalar, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { UsageError } from '../core/errors.ts';
import { repoRoot } from '../core/paths.ts';
import { ScenarioSchema, type Scenario } from './schema.ts';

/** One problem in a scenario file. */
export interface ScenarioProblem {
  file: string;
  /** Field path like `device.fps` or `suites.throughput.mouse.rates[1]`; empty for the whole file. */
  field: string;
  message: string;
  line?: number;
  column?: number;
}

/** Thrown by the loaders; `message` lists every problem, one per line. */
export class ScenarioError extends UsageError {
  readonly problems: readonly ScenarioProblem[];
  constructor(problems: readonly ScenarioProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.problems = problems;
  }
}

export function formatProblem(p: ScenarioProblem): string {
  const where = p.line !== undefined ? ` (line ${p.line}, column ${p.column ?? 1})` : '';
  const field = p.field === '' ? '' : `${p.field}: `;
  return `${p.file}: ${field}${p.message}${where}`;
}

/** `['suites', 'throughput', 'mouse', 'rates', 1]` → `suites.throughput.mouse.rates[1]`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += out === '' ? String(k) : `.${String(k)}`;
  }
  return out;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

/** Messages for issues the schema does not word itself. */
const fallbackMessages: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type':
      return iss.input === undefined ? `is required (${iss.expected})` : `expected ${iss.expected}, got ${describe(iss.input)}`;
    case 'too_small':
      if (iss.origin === 'array') return `needs at least ${String(iss.minimum)} entr${iss.minimum === 1 ? 'y' : 'ies'}`;
      return `${describe(iss.input)} is too small; allowed ≥ ${String(iss.minimum)}`;
    case 'too_big':
      if (iss.origin === 'array') return `allows at most ${String(iss.maximum)} entries`;
      return `${describe(iss.input)} is too big; allowed ≤ ${String(iss.maximum)}`;
    case 'invalid_value':
      return `${describe(iss.input)} is not allowed; allowed: ${iss.values.map((v) => String(v)).join(', ')}`;
    default:
      return undefined;
  }
};

/** Where a field sits in the YAML text (1-based line and column), when it is there. */
function locate(doc: Document, lc: LineCounter, path: readonly PropertyKey[], unknownKey?: string): { line: number; column: number } | undefined {
  const keys = path.map((k) => (typeof k === 'symbol' ? String(k) : k));
  const at = (n: number): unknown => (n === 0 ? doc.contents : doc.getIn(keys.slice(0, n), true));
  // A field that is missing: point at the closest mapping that is there.
  let n = keys.length;
  let node = at(n);
  while (node === undefined && n > 0) node = at(--n);
  if (unknownKey !== undefined && isMap(node)) {
    const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === unknownKey);
    if (pair && isPair(pair) && isNode(pair.key)) node = pair.key;
  }
  if (!isNode(node) || !node.range) return undefined;
  const pos = lc.linePos(node.range[0]);
  return { line: pos.line, column: pos.col };
}

/**
 * Parses and validates scenario text. `file` is the name used in messages (e.g. a path relative
 * to the working directory). Throws {@link ScenarioError}.
 */
export function parseScenario(source: string, file: string): Scenario {
  const lc = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ScenarioError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? lc.linePos(e.pos[0]);
        const first = e.message.split('\n')[0] ?? e.message;
        return { file, field: '', message: `YAML syntax error: ${first}`, line: pos?.line, column: pos?.col };
      }),
    );
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  if (data === null || data === undefined) {
    throw new ScenarioError([{ file, field: '', message: 'the file is empty; expected a mapping with at least `name`' }]);
  }
  const parsed = ScenarioSchema.safeParse(data, { error: fallbackMessages });
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((iss): ScenarioProblem => {
    const unknownKey = iss.code === 'unrecognized_keys' && iss.keys.length > 0 ? iss.keys[0] : undefined;
    const pos = locate(doc, lc, iss.path, unknownKey);
    return { file, field: fieldPath(iss.path), message: iss.message, line: pos?.line, column: pos?.column };
  });
  throw new ScenarioError(problems);
}

/** Display name for a path: relative to the working directory when inside it. */
export function displayPath(path: string, cwd = process.cwd()): string {
  if (!isAbsolute(path)) return path;
  const rel = relative(cwd, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/** Reads and validates a scenario file. Throws {@link ScenarioError} (also when unreadable). */
export function loadScenarioFile(path: string): Scenario {
  const name = displayPath(path);
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ScenarioError([{ file: name, field: '', message: `cannot read the scenario file (${code ?? String(e)})` }]);
  }
  return parseScenario(source, name);
}

/** The embedded default scenario, fixtures/default.yaml. */
export const DEFAULT_SCENARIO_PATH = join(repoRoot, 'fixtures', 'default.yaml');

export function loadDefaultScenario(): Scenario {
  return loadScenarioFile(DEFAULT_SCENARIO_PATH);
}

/** The full scenario, fixtures/scenarios/full.yaml: every case the default scenario samples (what `hilbox bench` measures without a file). */
export const FULL_SCENARIO_PATH = join(repoRoot, 'fixtures', 'scenarios', 'full.yaml');

export function loadFullScenario(): Scenario {
  return loadScenarioFile(FULL_SCENARIO_PATH);
}
