import { describe, expect, it } from 'vitest';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { toJUnitXml } from '../../orchestrator/src/report/junit.ts';
import { escapeAttr, escapeText } from '../../orchestrator/src/report/xml.ts';
import { sampleRun } from './sample-run.ts';

type Node = Record<string, unknown>;
const arr = (v: unknown): Node[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]) as Node[];

describe('JUnit XML', () => {
  const run = sampleRun();
  const xml = toJUnitXml(run);

  it('is well-formed XML', () => {
    expect(XMLValidator.validate(xml)).toBe(true);
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>')).toBe(true);
  });

  it('has the structure and counts CI servers read', () => {
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', parseAttributeValue: false }).parse(xml) as Node;
    const root = doc.testsuites as Node;
    expect(root['@tests']).toBe('9');
    expect(root['@failures']).toBe('1');
    expect(root['@skipped']).toBe('1');
    expect(root['@errors']).toBe('0');
    expect(root['@time']).toBe('65.432');
    const suites = arr(root.testsuite);
    expect(suites.map((s) => s['@name'])).toEqual(['throughput', 'security', 'verify']);
    const sec = suites[1] as Node;
    expect([sec['@tests'], sec['@failures'], sec['@skipped'], sec['@errors'], sec['@time']]).toEqual(['3', '1', '1', '0', '0.052']);
    const cases = arr(sec.testcase);
    expect(cases.map((c) => c['@classname'])).toEqual(['hilbox.security', 'hilbox.security', 'hilbox.security']);
    expect(cases.map((c) => c['@name'])).toEqual(['unmap-on-close', 'fb-write-denied', 'dup-handle']);
    const failure = cases[1]?.failure as Node;
    expect(failure['@message']).toBe('mmap(PROT_WRITE) succeeded <&> "quoted"\\u0001 control');
    expect(failure['@type']).toBe('fail');
    expect((cases[2]?.skipped as Node)['@message']).toBe('Windows only');
    expect(String(cases[0]?.['system-out'])).toContain('policy: A mapping is torn down');
    const tp = arr((suites[0] as Node).testcase);
    expect(String(tp[1]?.['system-out'])).toContain('mb_per_s: 2000 MB/s');
  });

  it('escapes markup and characters XML cannot carry', () => {
    expect(escapeText('a<b>&c\u0000\u001b\ud800z')).toBe('a&lt;b&gt;&amp;c\\u0000\\u001b\\ud800z');
    expect(escapeAttr('"\'\n\t')).toBe('&quot;&apos;&#10;&#9;');
    const nasty = sampleRun();
    nasty.cases[0] = { suite: 'x]]>', name: '<&\u0007>', status: 'fail', reason: '\u0000\u0008 ]]> \ud83d\ude00' };
    expect(XMLValidator.validate(toJUnitXml(nasty))).toBe(true);
  });
});
