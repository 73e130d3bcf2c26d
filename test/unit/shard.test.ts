/**
 * The shard split, before anything boots: every case of every scenario in exactly one shard, the
 * same split on every call, cases sharing a hot-plugged device kept together, shards balanced
 * by the expected-cost model, and bad K/N refused (exit 2) naming --shard.
 */
import { describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../orchestrator/src/cli/errors.ts';
import { loadFullScenario, parseScenario } from '../../orchestrator/src/scenario/load.ts';
import { planRun } from '../../orchestrator/src/suites/run-plan.ts';
import { SUITE_NAMES } from '../../orchestrator/src/suites/plan.ts';
import { assignShards, caseId, COST, parseShard, planCases, planDigest, plannedIds, selectShard, type PlannedScenario } from '../../orchestrator/src/suites/shard.ts';

const planned = (yaml?: string): PlannedScenario => {
  const scenario = yaml === undefined ? loadFullScenario() : parseScenario(yaml, 't.yaml');
  return { scenario, plan: planRun(scenario, SUITE_NAMES.filter((s) => scenario.suites[s].enabled)) };
};
const small = planned('name: small\ndevice:\n  width: 320\n  height: 240\nsuites:\n  throughput:\n    enabled: false\n  robustness:\n    enabled: false\n');
const run = [planned(), small];
const shardIds = (spec: string) => selectShard(run, parseShard(spec)).flatMap((p) => planCases(p.plan).map((c) => caseId(p.scenario.name, c)));

describe('--shard K/N', () => {
  it.each([1, 2, 3, 4, 7, 200])('N = %i: the shards\' union is the whole run, no case twice', (n) => {
    const all = Array.from({ length: n }, (_, i) => shardIds(`${i + 1}/${n}`)).flat();
    expect(new Set(all).size).toBe(all.length);
    expect([...all].sort()).toEqual([...plannedIds(run)].sort());
  });

  it('is stable: the same scenarios give every shard the same cases, in plan order', () => {
    for (const k of [1, 2, 3]) expect(shardIds(`${k}/3`)).toEqual(shardIds(`${k}/3`));
    const order = plannedIds(run);
    const mine = shardIds('2/3');
    expect(mine).toEqual(order.filter((id) => mine.includes(id)));
  });

  it('balances the expected cost (boots included) across shards', () => {
    for (const n of [2, 3, 4]) {
      const a = assignShards(run, n);
      expect(Math.max(...a.costMs) / Math.min(...a.costMs)).toBeLessThan(1.25);
      // every shard pays a boot per scenario it runs cases of
      for (const [k, units] of a.shards.entries()) expect(a.boots[k]).toEqual([...new Set(units.map((u) => u.scenario))].filter((s) => a.boots[k]!.includes(s)));
    }
    const one = assignShards(run, 1);
    const total = one.costMs[0]!;
    expect(total).toBeGreaterThan(2 * COST.bootMs);
    // N shards cost more in total (extra boots) but each takes a fraction
    const four = assignShards(run, 4);
    expect(four.costMs.reduce((x, y) => x + y, 0)).toBeGreaterThan(total);
    expect(Math.max(...four.costMs)).toBeLessThan(total / 3);
  });

  it('keeps throughput cases that share a hot-plugged device in one shard', () => {
    for (const n of [2, 3, 5]) {
      const holder = new Set<number>();
      for (let k = 1; k <= n; k++) if (shardIds(`${k}/${n}`).some((id) => /^full\/throughput\/fb-\w+-mmio$/.test(id))) holder.add(k);
      expect(holder.size).toBe(1);
    }
  });

  it('keeps the CPU table\'s methods on one picture × BAR (one hot-plugged device) in one shard', () => {
    const cpu = [planned('name: cpu\nsuites:\n  cpu:\n    enabled: true\n')];
    const all = planCases(cpu[0]!.plan).filter((c) => c.suite === 'cpu');
    expect(all.length).toBeGreaterThan(8);
    for (const n of [2, 3, 4]) {
      const where = new Map<string, Set<number>>();
      for (let k = 1; k <= n; k++) {
        for (const p of selectShard(cpu, parseShard(`${k}/${n}`))) {
          for (const c of p.plan.cpu) {
            const device = c.name.replace(/^cpu-\w+?-/, '');
            where.set(device, (where.get(device) ?? new Set()).add(k));
          }
        }
      }
      expect(where.size).toBe(all.length / new Set(all.map((c) => c.params?.['method'])).size);
      for (const shards of where.values()) expect(shards.size).toBe(1);
    }
  });

  it('more shards than units: the extra shards have nothing to run', () => {
    const units = assignShards(run, 200).shards.filter((s) => s.length > 0).length;
    expect(shardIds(`200/200`)).toEqual([]);
    expect(units).toBeLessThan(200);
  });

  it('names the run: another scenario content or shard count is another plan', () => {
    const d = planDigest(run, 3);
    expect(planDigest([planned(), small], 3)).toBe(d);
    expect(planDigest(run, 4)).not.toBe(d);
    const changed = planned('name: small\ndevice:\n  width: 640\n  height: 240\nsuites:\n  throughput:\n    enabled: false\n  robustness:\n    enabled: false\n');
    expect(planDigest([planned(), changed], 3)).not.toBe(d);
  });

  it.each([['0/2', /K = 0 is out of range/], ['3/2', /K = 3 is out of range/], ['1/0', /N = 0 is out of range/], ['1/257', /N = 257 is out of range/], ['2', /not K\/N/], ['a/b', /not K\/N/], ['', /not K\/N/]])('refuses --shard %j with exit 2', (spec, why) => {
    let e: unknown;
    try {
      parseShard(spec);
    } catch (x) {
      e = x;
    }
    expect(exitCodeFor(e)).toBe(2);
    expect((e as Error).message).toMatch(why);
    expect((e as Error).message).toMatch(/allowed: K\/N with 1 <= K <= N <= 256/);
  });
});
