import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLValidator } from 'fast-xml-parser';
import {
  failCase,
  parseProbeLine,
  parseProbeOutput,
  summarize,
  writeResults,
} from '../../orchestrator/src/report/results.ts';
import { applyThresholds, checkThresholds } from '../../orchestrator/src/report/thresholds.ts';
import { writeRunReports } from '../../orchestrator/src/report/artifacts.ts';
import { sampleRun, throughputCases } from './sample-run.ts';

const from = { suite: 'security', step: 'probe-security' };

describe('probe lines', () => {
  it('accepts a schema line', () => {
    const r = parseProbeLine(
      '{"suite":"security","name":"scm-rights-map","status":"pass","policy":"p","metrics":{"mb_per_s":{"value":812.4,"unit":"MB/s"}},"details":{"a":1}}',
      from,
    );
    expect(r.ok).toBe(true);
    expect(r.result).toEqual({ suite: 'security', name: 'scm-rights-map', status: 'pass', policy: 'p', metrics: { mb_per_s: { value: 812.4, unit: 'MB/s' } }, details: { a: 1 } });
  });

  it.each([
    ['not json', 'Segmentation fault', /not JSON/],
    ['array', '[1,2]', /not a JSON object/],
    ['missing status', '{"suite":"s","name":"n"}', /status/],
    ['bad status', '{"suite":"s","name":"n","status":"ok"}', /status/],
    ['bad metric', '{"suite":"s","name":"n","status":"pass","metrics":{"x":{"value":"1","unit":"u"}}}', /metrics/],
  ])('turns a broken line (%s) into a fail case named after the step', (_, line, why) => {
    const r = parseProbeLine(line, from);
    expect(r.ok).toBe(false);
    expect(r.result).toMatchObject({ suite: 'security', name: 'probe-security-output', status: 'fail' });
    expect(r.result.reason).toMatch(why);
    expect(r.result.reason).toContain('invalid result line');
  });

  it('gives fail and skip without reason a reason', () => {
    expect(parseProbeLine('{"suite":"s","name":"n","status":"fail"}', from).result.reason).toContain('no reason');
  });

  it('parses a whole stdout, numbering broken lines and flagging duplicates', () => {
    const out = [
      '{"suite":"security","name":"a","status":"pass"}',
      '',
      'garbage 1',
      '{"suite":"security","name":"b","status":"skip","reason":"r"}',
      'garbage 2',
      '{"suite":"security","name":"a","status":"pass"}',
    ].join('\n');
    const cases = parseProbeOutput(out, from);
    expect(cases.map((c) => [c.name, c.status])).toEqual([
      ['a', 'pass'],
      ['probe-security-output', 'fail'],
      ['b', 'skip'],
      ['probe-security-output-2', 'fail'],
      ['a-duplicate', 'fail'],
    ]);
    expect(summarize(cases)).toEqual({ pass: 1, fail: 3, skip: 1 });
  });

  it('failCase keeps an earlier reason', () => {
    const c = failCase({ suite: 's', name: 'n', status: 'pass' }, 'kernel log not clean');
    expect(c).toMatchObject({ status: 'fail', reason: 'kernel log not clean' });
    expect(failCase(c, 'QEMU died').reason).toBe('kernel log not clean; QEMU died');
  });
});

describe('results.json', () => {
  it('round-trips with schema and summary', () => {
    const r = sampleRun();
    expect(r.schema).toBe('hilbox-results/1');
    expect(r.summary).toEqual({ pass: 7, fail: 1, skip: 1 });
    const dir = mkdtempSync(join(tmpdir(), 'hilbox-results-'));
    const path = join(dir, 'sub', 'results.json');
    writeResults(path, r);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(r);
  });
});

describe('thresholds', () => {
  it('fails cases whose metrics break a limit (general and per-case keys)', () => {
    const cases = throughputCases(1, { lost: 3 });
    const v = checkThresholds(cases, { lost: { max: 0 }, 'fb-copy-mmio.read_mb_per_s': { min: 100 } });
    expect(v.map((x) => `${x.caseName}:${x.metric}`)).toEqual(['fb-copy-mmio:read_mb_per_s', 'mouse-inverted-call-r8000-b4-p16:lost']);
    const applied = applyThresholds(cases, { lost: { max: 0 } });
    const bad = applied.find((c) => c.name === 'mouse-inverted-call-r8000-b4-p16');
    expect(bad).toMatchObject({ status: 'fail' });
    expect(bad?.reason).toBe('threshold: lost = 3 events exceeds the maximum 0');
    expect(applied.filter((c) => c.status === 'fail')).toHaveLength(1);
  });
});

describe('artifacts', () => {
  it('writes results.json, junit.xml and summary.md', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hilbox-art-'));
    const p = writeRunReports(join(dir, 'out'), sampleRun());
    for (const f of [p.results, p.junit, p.summary]) expect(existsSync(f)).toBe(true);
    expect(XMLValidator.validate(readFileSync(p.junit, 'utf8'))).toBe(true);
    expect(readFileSync(p.summary, 'utf8')).toContain('# hilbox run: default');
  });
});
