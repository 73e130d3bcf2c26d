/**
 * JUnit XML for CI servers (Jenkins, GitLab, GitHub test reporters). One job: RunResults → XML.
 *
 * <testsuites name="hilbox" tests failures errors skipped time>
 *   <testsuite name="<suite>" tests failures errors skipped time timestamp>
 *     <testcase classname="hilbox.<suite>" name="<case>" time>
 *   (a report of several scenarios: testsuite "<scenario>/<suite>", classname "hilbox.<scenario>.<suite>")
 *       <failure message="reason" type="fail">reason</failure> | <skipped message="reason"/>
 *       <system-out>policy and metrics</system-out>
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { groupBySuite, summarize, type CaseResult, type RunResults } from './results.ts';
import { attrs, escapeText } from './xml.ts';
import { formatNumber } from './metrics.ts';

function seconds(ms: number | undefined): string {
  return ((ms ?? 0) / 1000).toFixed(3);
}

/** What goes into a case's <system-out>: policy, reason, metrics (one per line), details. */
export function caseOutput(c: CaseResult): string {
  const lines: string[] = [];
  if (c.policy) lines.push(`policy: ${c.policy}`);
  if (c.reason) lines.push(`reason: ${c.reason}`);
  for (const [k, m] of Object.entries(c.metrics ?? {})) lines.push(`${k}: ${formatNumber(m.value, 3)}${m.unit ? ` ${m.unit}` : ''}`);
  if (c.details && Object.keys(c.details).length > 0) lines.push(`details: ${JSON.stringify(c.details)}`);
  return lines.join('\n');
}

function testcase(c: CaseResult): string {
  const classname = c.scenario === undefined ? `hilbox.${c.suite}` : `hilbox.${c.scenario}.${c.suite}`;
  const open = `    <testcase${attrs({ classname, name: c.name, time: seconds(c.durationMs) })}`;
  const body: string[] = [];
  if (c.status === 'fail') {
    const reason = c.reason ?? 'failed';
    body.push(`      <failure${attrs({ message: reason, type: 'fail' })}>${escapeText(reason)}</failure>`);
  } else if (c.status === 'skip') {
    body.push(`      <skipped${attrs({ message: c.reason ?? 'skipped' })}/>`);
  }
  const out = caseOutput(c);
  if (out !== '') body.push(`      <system-out>${escapeText(out)}</system-out>`);
  return body.length === 0 ? `${open}/>` : `${open}>\n${body.join('\n')}\n    </testcase>`;
}

export function toJUnitXml(r: RunResults): string {
  const parts: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const total = summarize(r.cases);
  parts.push(
    `<testsuites${attrs({
      name: `hilbox ${r.scenario}`,
      tests: r.cases.length,
      failures: total.fail,
      errors: 0,
      skipped: total.skip,
      time: seconds(r.durationMs),
      timestamp: r.startedAt,
    })}>`,
  );
  for (const [suite, cases] of groupBySuite(r.cases)) {
    const s = summarize(cases);
    const time = cases.reduce((a, c) => a + (c.durationMs ?? 0), 0);
    parts.push(
      `  <testsuite${attrs({
        name: suite,
        tests: cases.length,
        failures: s.fail,
        errors: 0,
        skipped: s.skip,
        time: seconds(time),
        timestamp: r.startedAt,
      })}>`,
    );
    const scenario = cases[0]!.scenario ?? r.scenario;
    const guest = r.scenarios?.find((x) => x.name === scenario)?.guest ?? r.guest;
    parts.push(`    <properties>\n      <property${attrs({ name: 'scenario', value: scenario })}/>\n      <property${attrs({ name: 'guest', value: guest })}/>\n    </properties>`);
    for (const c of cases) parts.push(testcase(c));
    parts.push('  </testsuite>');
  }
  parts.push('</testsuites>');
  return `${parts.join('\n')}\n`;
}

export function writeJUnit(path: string, r: RunResults): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, toJUnitXml(r));
}
