/**
 * Resolves a suite's `cases` selection ("all" or a list) against the case names a probe knows.
 * One job: selection → ordered list of names, or an error naming the unknown ones.
 */
import { UsageError } from '../core/errors.ts';
import type { CaseSelection } from './schema.ts';

export class CaseSelectionError extends UsageError {
  constructor(
    readonly suite: string,
    readonly unknown: readonly string[],
    readonly known: readonly string[],
  ) {
    super(`suites.${suite}.cases: unknown case${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; allowed: ${known.join(', ')}`);
  }
}

/** Known names in their own order when "all", else the selected ones in the order given (deduplicated). */
export function selectCases(suite: string, selection: CaseSelection, known: readonly string[]): string[] {
  if (selection === 'all') return [...known];
  const knownSet = new Set(known);
  const unknown = selection.filter((n) => !knownSet.has(n));
  if (unknown.length > 0) throw new CaseSelectionError(suite, unknown, known);
  return [...new Set(selection)];
}
