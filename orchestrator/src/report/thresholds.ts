/**
 * Applies a scenario's `thresholds` to case metrics. One job: metric limits → failed cases.
 * Key `metric` applies to every case reporting it; `case-name.metric` to that case only.
 */
import type { Thresholds } from '../scenario/schema.ts';
import { failCase, type CaseResult } from './results.ts';
import { formatNumber } from './metrics.ts';

export interface ThresholdViolation {
  suite: string;
  caseName: string;
  metric: string;
  value: number;
  limit: { min?: number; max?: number };
  message: string;
}

function limitsFor(c: CaseResult, metric: string, t: Thresholds): { min?: number; max?: number }[] {
  const out: { min?: number; max?: number }[] = [];
  const general = t[metric];
  if (general) out.push(general);
  const specific = t[`${c.name}.${metric}`];
  if (specific) out.push(specific);
  return out;
}

export function checkThresholds(cases: readonly CaseResult[], t: Thresholds): ThresholdViolation[] {
  const out: ThresholdViolation[] = [];
  for (const c of cases) {
    if (c.status === 'skip') continue;
    for (const [metric, m] of Object.entries(c.metrics ?? {})) {
      for (const lim of limitsFor(c, metric, t)) {
        const v = m.value;
        const unit = m.unit ? ` ${m.unit}` : '';
        let message: string | undefined;
        if (lim.min !== undefined && !(v >= lim.min)) message = `${metric} = ${formatNumber(v)}${unit} is below the minimum ${lim.min}`;
        else if (lim.max !== undefined && !(v <= lim.max)) message = `${metric} = ${formatNumber(v)}${unit} exceeds the maximum ${lim.max}`;
        if (message) out.push({ suite: c.suite, caseName: c.name, metric, value: v, limit: lim, message });
      }
    }
  }
  return out;
}

/** Cases with threshold violations turned into failures (reason lists the violations). */
export function applyThresholds(cases: readonly CaseResult[], t: Thresholds): CaseResult[] {
  const v = checkThresholds(cases, t);
  return cases.map((c) => {
    const mine = v.filter((x) => x.suite === c.suite && x.caseName === c.name);
    return mine.length === 0 ? c : failCase(c, `threshold: ${mine.map((x) => x.message).join('; ')}`);
  });
}
