/**
 * Reports put together: the scenarios of a matrix into one report (one testsuite per scenario
 * and suite in JUnit), the shards of a run into one report in plan order — and shards that do
 * not belong together refused (exit 2) naming the directories.
 */
import { describe, expect, it } from 'vitest';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { exitCodeFor } from '../../orchestrator/src/cli/errors.ts';
import { combineScenarios, mergeShards, type ShardReport } from '../../orchestrator/src/report/merge.ts';
import { buildRunResults, type CaseResult, type RunResults, type ShardInfo } from '../../orchestrator/src/report/results.ts';
import { toJUnitXml } from '../../orchestrator/src/report/junit.ts';
import { toSummaryMarkdown } from '../../orchestrator/src/report/summary.ts';

const pass = (suite: string, name: string, scenario?: string): CaseResult => ({ ...(scenario ? { scenario } : {}), suite, name, status: 'pass', durationMs: 100 });
const planned = ['a/verify/device-info', 'a/verify/verify-frames', 'a/security/bad-ioctls', 'b/verify/device-info', 'b/security/bad-ioctls'];
const scenarios = [{ name: 'a', guest: 'linux' }, { name: 'b', guest: 'linux' }];
const info = (index: number, plan = 'p1', count = 3): ShardInfo => ({ index, count, plan, planned, scenarios });

/** A shard's results.json as run-many writes it (several scenarios: cases name theirs). */
function shard(index: number, ids: string[], o: { plan?: string; count?: number } = {}): ShardReport {
  const cases = [pass('run', 'boot', ids[0]?.split('/')[0]), ...ids.map((id) => {
    const [s, suite, name] = id.split('/') as [string, string, string];
    return pass(suite, name, s);
  })];
  const r = buildRunResults({ scenario: 'a, b', guest: 'linux', startedAt: new Date(Date.UTC(2026, 11, 1, 12, index)), durationMs: 1000 * index }, cases);
  r.scenarios = scenarios;
  r.shard = info(index, o.plan, o.count);
  return { from: `/ci/shard-${index}`, results: r };
}

const err = (f: () => unknown): Error => {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
};

describe('hilbox merge', () => {
  const shards = [shard(2, ['a/security/bad-ioctls', 'b/verify/device-info']), shard(1, ['a/verify/device-info', 'a/verify/verify-frames']), shard(3, ['b/security/bad-ioctls'])];

  it('puts the shards back together in plan order, each shard\'s host cases kept', () => {
    const m = mergeShards(shards);
    expect(m.cases.filter((c) => c.suite !== 'run').map((c) => `${c.scenario}/${c.suite}/${c.name}`)).toEqual(planned);
    expect(m.cases.filter((c) => c.suite === 'run').map((c) => c.name)).toEqual(['boot-shard-1-of-3', 'boot-shard-2-of-3', 'boot-shard-3-of-3']);
    expect(m.summary).toEqual({ pass: 8, fail: 0, skip: 0 });
    expect(m.merged).toMatchObject({ plan: 'p1', count: 3, missing: [] });
    expect(m.merged!.shards.map((s) => s.index)).toEqual([1, 2, 3]);
    // what each shard cost, from its own results, in the summary's Shards table
    expect(m.merged!.shards[0]).toEqual({ index: 1, from: '/ci/shard-1', boots: 1, bootMs: 0, cases: 2, caseMs: 200, durationMs: 1000 });
    expect(toSummaryMarkdown(m)).toMatch(/## Shards\n\n\| shard \| boots \| boot s \| cases \| case s \| run s \| boot share \| × slowest \|/);
    expect(toSummaryMarkdown(m)).toMatch(/\| 1\/3 +\| +1 \| +0\.0 \| +2 \| +0\.2 \| +1\.0 \| +0\.00 \| +0\.33 \|/);
    expect(m.startedAt).toBe('2026-12-01T12:01:00.000Z');
    expect(m.durationMs).toBe(3000); // the slowest shard
    expect(m.scenarios).toEqual(scenarios);
  });

  it('a single scenario\'s merge looks like its unsharded run (no per-case scenario)', () => {
    const one = (index: number, names: string[]): ShardReport => {
      const r = buildRunResults({ scenario: 'a', guest: 'linux', startedAt: new Date(), durationMs: 10 }, [pass('run', 'boot'), ...names.map((n) => pass('verify', n))]);
      r.shard = { index, count: 2, plan: 'p', planned: ['a/verify/x', 'a/verify/y'], scenarios: [{ name: 'a', guest: 'linux' }] };
      return { from: `d${index}`, results: r };
    };
    const m = mergeShards([one(1, ['y']), one(2, ['x'])]);
    expect(m.scenario).toBe('a');
    expect(m.scenarios).toBeUndefined();
    expect(m.cases.map((c) => c.name)).toEqual(['boot-shard-1-of-2', 'boot-shard-2-of-2', 'x', 'y']);
    expect(m.cases.every((c) => c.scenario === undefined)).toBe(true);
  });

  it('a missing shard: its cases fail, naming it', () => {
    const m = mergeShards([shards[0]!, shards[1]!]);
    expect(m.merged!.missing).toEqual([3]);
    const lost = m.cases.find((c) => c.scenario === 'b' && c.suite === 'security');
    expect(lost).toMatchObject({ status: 'fail', reason: 'not reported: no results for shard 3/3' });
  });

  it('refuses a shard given twice, another run\'s shard, a case twice, a directory that is no shard — exit 2', () => {
    const twice = err(() => mergeShards([shards[0]!, { ...shards[0]!, from: '/elsewhere' }]));
    expect(exitCodeFor(twice)).toBe(2);
    expect(twice.message).toBe('shard 2/3 given twice: /ci/shard-2 and /elsewhere');
    const other = err(() => mergeShards([shards[1]!, shard(2, ['a/security/bad-ioctls'], { plan: 'p2' })]));
    expect(exitCodeFor(other)).toBe(2);
    expect(other.message).toMatch(/^\/ci\/shard-2 \(shard 2\/3 of run p2, scenarios a, b\) is not a shard of the same run as \/ci\/shard-1 \(shard 1\/3 of run p1, scenarios a, b\)/);
    expect(err(() => mergeShards([shards[1]!, shard(2, ['a/security/bad-ioctls'], { count: 4 })])).message).toMatch(/not a shard of the same run/);
    const dup = err(() => mergeShards([shards[1]!, shard(2, ['a/verify/device-info'])]));
    expect(dup.message).toBe('case a/verify/device-info reported twice: by /ci/shard-1 and by /ci/shard-2');
    const stranger = err(() => mergeShards([shard(1, ['a/verify/no-such-case'])]));
    expect(stranger.message).toMatch(/case a\/verify\/no-such-case is not in the run's plan/);
    const plain = { from: '/plain', results: buildRunResults({ scenario: 'a', guest: 'linux', startedAt: new Date(), durationMs: 1 }, []) };
    expect(err(() => mergeShards([plain])).message).toMatch(/^\/plain: results.json is not a shard's \(no "shard" field\)/);
    expect(exitCodeFor(err(() => mergeShards([])))).toBe(2);
  });
});

describe('a report of several scenarios', () => {
  const part = (name: string, cases: CaseResult[]): RunResults => buildRunResults({ scenario: name, guest: 'linux', startedAt: new Date(), durationMs: 5 }, cases);
  const r = combineScenarios(
    [part('a', [pass('run', 'boot'), pass('verify', 'device-info'), { suite: 'security', name: 'bad-ioctls', status: 'fail', reason: 'oops' }]), part('b', [pass('run', 'boot'), pass('verify', 'device-info')])],
    { startedAt: new Date(), durationMs: 10, environment: {} },
  );

  it('tags every case with its scenario and lists the scenarios', () => {
    expect(r.scenarios).toEqual(scenarios);
    expect(r.scenario).toBe('a, b');
    expect(r.cases.map((c) => c.scenario)).toEqual(['a', 'a', 'a', 'b', 'b']);
    expect(r.summary).toEqual({ pass: 4, fail: 1, skip: 0 });
  });

  it('JUnit: one testsuite per scenario and suite, classnames naming the scenario', () => {
    const xml = toJUnitXml(r);
    expect(XMLValidator.validate(xml)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false }).parse(xml);
    const suites = [doc.testsuites.testsuite].flat() as Record<string, unknown>[];
    expect(suites.map((s) => s['@_name'])).toEqual(['a/run', 'a/verify', 'a/security', 'b/run', 'b/verify']);
    const first = [suites[2]!['testcase']].flat()[0] as Record<string, string>;
    expect(first['@_classname']).toBe('hilbox.a.security');
  });

  it('summary: each scenario\'s tables, failures naming the scenario', () => {
    const md = toSummaryMarkdown(r);
    expect(md).toMatch(/## a: Security/);
    expect(md).toMatch(/## b: Other cases/);
    expect(md).toMatch(/- a\/security\/bad-ioctls: oops/);
  });
});
