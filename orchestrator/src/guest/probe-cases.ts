/**
 * The security case names each guest's probe runs, read from the probe's own case table, so a
 * scenario naming an unknown case is refused before anything boots — without a second copy of
 * the list. One job: probe source → case names. test/unit/probe-cases.test.ts and the suites
 * test hold this reading against what the built probe prints (`security --list`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../core/paths.ts';

/** The C file holding each OS's case table (`sec_cases[] = { { "name", "policy", fn }, … }`). */
export const CASE_TABLE_FILES: Readonly<Record<'linux' | 'windows', string>> = {
  linux: 'guest-driver/linux/probe.c',
  windows: 'guest-driver/windows-probe/hilbox-probe.c',
};

/** Case names in table order. Throws when the table cannot be found (a moved probe must say so). */
export function parseCaseTable(source: string, file: string): string[] {
  const start = source.search(/\bsec_cases\[\]\s*=\s*\{/);
  if (start < 0) throw new Error(`${file}: no sec_cases[] table`);
  const end = source.indexOf('\n};', start);
  const body = source.slice(start, end < 0 ? undefined : end);
  const names = [...body.matchAll(/\{\s*"([a-z0-9]+(?:-[a-z0-9]+)*)"\s*,/g)].map((m) => m[1]!);
  if (names.length === 0) throw new Error(`${file}: sec_cases[] names no case`);
  return names;
}

const cache = new Map<string, string[]>();

export function securityCaseNames(os: 'linux' | 'windows'): string[] {
  const rel = CASE_TABLE_FILES[os];
  let names = cache.get(rel);
  if (!names) {
    names = parseCaseTable(readFileSync(join(repoRoot, rel), 'utf8'), rel);
    cache.set(rel, names);
  }
  return names;
}
