/**
 * The security case names each guest's probe runs, read from the probe core's own case table
 * (guest-probe/common/probe_cases.c: one row per case per OS), so a scenario naming an unknown
 * case is refused before anything boots — without a second copy of the list. One job: probe
 * source → case names. The unit tests and the suites test hold this reading against what the
 * built probe prints (`security --list`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../core/paths.ts';

export const CASE_TABLE_FILE = 'guest-probe/common/probe_cases.c';

/** The table's OS column (`L`, `W`: OS_LINUX, OS_WINDOWS). */
const OS_COLUMN: Readonly<Record<'linux' | 'windows', string>> = { linux: 'L', windows: 'W' };

/** Case names of one OS, in table order. Throws when the table cannot be found (a moved table must say so). */
export function parseCaseTable(source: string, os: 'linux' | 'windows', file = CASE_TABLE_FILE): string[] {
  const start = source.search(/\bsec_cases\[\]\s*=\s*\{/);
  if (start < 0) throw new Error(`${file}: no sec_cases[] table`);
  const end = source.indexOf('\n};', start);
  const body = source.slice(start, end < 0 ? undefined : end);
  const names = [...body.matchAll(/\{\s*"([a-z0-9]+(?:-[a-z0-9]+)*)"\s*,\s*([A-Z])\s*,/g)].filter((m) => m[2] === OS_COLUMN[os]).map((m) => m[1]!);
  if (names.length === 0) throw new Error(`${file}: sec_cases[] names no ${os} case`);
  return names;
}

const cache = new Map<string, string[]>();

export function securityCaseNames(os: 'linux' | 'windows'): string[] {
  let names = cache.get(os);
  if (!names) {
    names = parseCaseTable(readFileSync(join(repoRoot, CASE_TABLE_FILE), 'utf8'), os);
    cache.set(os, names);
  }
  return names;
}
