/**
 * Case identity as data. One job: the cases a suite will report, named and parameterised
 * before anything boots, so a selection or threshold naming an unknown case is refused up front
 * and reports read parameters instead of parsing names.
 */
import type { ParamValue } from '../report/results.ts';

export type SuiteName = 'verify' | 'throughput' | 'cpu' | 'security' | 'robustness';
export const SUITE_NAMES: readonly SuiteName[] = ['verify', 'throughput', 'cpu', 'security', 'robustness'];

export interface PlannedCase {
  suite: SuiteName;
  name: string;
  /** What makes the case what it is; copied into the result's `params`. */
  params?: Record<string, ParamValue>;
  /** Set: the case cannot run with this guest or scenario; it is reported as skip with this reason. */
  skip?: string;
}
