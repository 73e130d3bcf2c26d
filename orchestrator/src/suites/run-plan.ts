/**
 * Everything a run will report, planned before anything is built or booted. One job: scenario →
 * the planned cases of each enabled suite, refusing (UsageError, exit 2) a guest section that
 * cannot work, a case selection or a threshold that names an unknown case or metric — each
 * message names what was wrong and what is allowed.
 */
import { UsageError } from '../core/errors.ts';
import { checkGuestConfig, guestTraits } from '../guest/for-scenario.ts';
import { isMetricName, METRIC_NAMES } from '../report/metric-names.ts';
import type { Scenario } from '../scenario/schema.ts';
import type { SuiteName } from './plan.ts';
import { planSecurity } from './security.ts';
import { planRobustness } from './robustness.ts';
import { planThroughput, type ThroughputPlanned } from './throughput.ts';
import { planVerify } from './verify.ts';
import { planCpuTable, type CpuPlanned } from './cpu-table.ts';

export interface RunPlan {
  verify: ReturnType<typeof planVerify>;
  throughput: ThroughputPlanned[];
  cpu: CpuPlanned[];
  security: ReturnType<typeof planSecurity>;
  robustness: ReturnType<typeof planRobustness>;
}

/** Cases the orchestrator reports itself (suite `run`). */
export const HOST_CASES = ['boot', 'fast-reset'] as const;

export function planRun(s: Scenario, suites: readonly SuiteName[], baseDir?: string): RunPlan {
  checkGuestConfig(s.guest, baseDir);
  const traits = guestTraits(s.guest.os);
  const plan: RunPlan = {
    verify: suites.includes('verify') ? planVerify(s, traits) : [],
    throughput: suites.includes('throughput') ? planThroughput(s, traits) : [],
    cpu: suites.includes('cpu') ? planCpuTable(s, traits) : [],
    security: suites.includes('security') ? planSecurity(s, traits) : [],
    robustness: suites.includes('robustness') ? planRobustness(s, traits) : [],
  };
  checkThresholdNames(s, [...HOST_CASES, ...plan.verify.map((c) => c.name), ...plan.throughput.map((c) => c.name), ...plan.cpu.map((c) => c.name), ...plan.security.map((c) => c.name), ...plan.robustness.map((c) => c.name)]);
  return plan;
}

/** A threshold key is `metric` or `case-name.metric`; both parts must exist in this run. */
export function checkThresholdNames(s: Scenario, caseNames: readonly string[]): void {
  const cases = new Set(caseNames);
  for (const key of Object.keys(s.thresholds ?? {})) {
    const dot = key.lastIndexOf('.');
    const caseName = dot < 0 ? undefined : key.slice(0, dot);
    const metric = dot < 0 ? key : key.slice(dot + 1);
    if (caseName !== undefined && !cases.has(caseName)) {
      throw new UsageError(`thresholds.${key}: this run has no case ${JSON.stringify(caseName)}; allowed cases: ${[...cases].join(', ')}`);
    }
    if (!isMetricName(metric)) throw new UsageError(`thresholds.${key}: unknown metric ${JSON.stringify(metric)}; allowed metrics: ${METRIC_NAMES.join(', ')}`);
  }
}
