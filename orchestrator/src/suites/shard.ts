/**
 * Splitting a run over CI jobs. One job: the planned cases of one or more scenarios → the cases
 * shard K of N runs. The split is deterministic (the same scenarios give every shard the same
 * cases, on any machine), complete (the shards' union is the whole plan, no case twice) and
 * balanced by expected cost: each shard pays a boot for every scenario it runs cases of, plus
 * its cases' expected durations.
 *
 * Cases that share a set-up — throughput cases on the same hot-plugged device (a non-booted fb
 * mode, a non-booted mouse rate × bundle), the CPU table's methods on one picture × BAR — form
 * one unit and stay in one shard, so no shard hot-plugs a device for one case of a group. Units are assigned greedily, most expensive first
 * (ties by name), each to the shard whose load grows least (ties to the lowest index): the
 * "longest processing time first" rule.
 */
import { createHash } from 'node:crypto';
import { UsageError } from '../core/errors.ts';
import type { Scenario } from '../scenario/schema.ts';
import type { PlannedCase, SuiteName } from './plan.ts';
import { SUITE_NAMES } from './plan.ts';
import type { RunPlan } from './run-plan.ts';

export interface ShardSpec {
  /** 1-based. */
  index: number;
  count: number;
}

/** The largest N `--shard K/N` takes. */
export const MAX_SHARDS = 256;

/** `K/N` → spec; anything else is a UsageError naming the option and what is allowed. */
export function parseShard(text: string): ShardSpec {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const allowed = `allowed: K/N with 1 <= K <= N <= ${MAX_SHARDS}, e.g. --shard 2/4`;
  if (!m) throw new UsageError(`--shard ${JSON.stringify(text)}: not K/N; ${allowed}`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > MAX_SHARDS) throw new UsageError(`--shard ${text}: N = ${count} is out of range; ${allowed}`);
  if (index < 1 || index > count) throw new UsageError(`--shard ${text}: K = ${index} is out of range; ${allowed}`);
  return { index, count };
}

/** One scenario's plan, as the shard selection sees it. */
export interface PlannedScenario {
  scenario: Scenario;
  plan: RunPlan;
}

/** Cases that go to one shard together. */
export interface ShardUnit {
  scenario: string;
  /** `<suite>/<case>` of the first case, or `<suite>/<group>` for a shared set-up. */
  id: string;
  cases: PlannedCase[];
  costMs: number;
}

/** A case's id across scenarios: `<scenario>/<suite>/<case>`. */
export function caseId(scenario: string, c: Pick<PlannedCase, 'suite' | 'name'>): string {
  return `${scenario}/${c.suite}/${c.name}`;
}

/**
 * Expected cost model, in milliseconds of a TCG run on a 2-core CI machine: the boot of a
 * scenario's guest (QEMU start to the probe set up, with the builds' up-to-date checks) and each
 * case's duration. Taken from the per-case `durationMs` of a run of fixtures/scenarios/full.yaml
 * (`hilbox run`, results.json); only the ratios matter for balancing, and a case the table does
 * not name costs its suite's default.
 */
export const COST = {
  bootMs: 12_000,
  /** A hot-plug and removal of an extra device a group of throughput cases shares. */
  hotplugMs: 2_500,
  /** Framebuffer cases: two phases (seqlock on, off) of `seconds` each, plus set-up. */
  fbOverheadMs: 300,
  /** CPU table cases: two phases of `suites.cpu.seconds`, plus the consumer's start and wait for frames. */
  cpuOverheadMs: 2_500,
  /** Mouse cases: one phase of `seconds`, plus set-up. */
  mouseOverheadMs: 200,
  /** Per suite, a case the table below does not name. */
  suiteMs: { verify: 1_000, throughput: 2_500, cpu: 4_500, security: 2_000, robustness: 5_000 } as Record<SuiteName, number>,
  /** Cases that take longer than their suite's default (device removals, stalls, hostile load). */
  caseMs: {
    'host-fed-events': 3_000,
    'frame-picture': 4_000,
    'close-while-mapped': 5_000,
    'many-threads-map-read-close': 5_000,
    'unplug-while-mapped': 8_000,
    'surprise-removal-while-mapped': 7_000,
    'irq-drain-bounded': 10_000,
    'mmio-stall': 14_000,
    'vmstate-hostile': 8_000,
    'link-down': 3_000,
    'spurious-irq': 9_000,
    'irq-storm': 9_000,
    'irq-lost': 2_500,
    'mmio-spike': 2_000,
    'bit-flip': 2_000,
  } as Record<string, number>,
  /** Per cycle of the counted robustness cases (params.cycles). */
  cycleMs: { 'load-unload': 900, 'unplug-replug': 4_600, 'open-close': 1 } as Record<string, number>,
} as const;

/** The expected duration of one planned case of `s` (0 for a case planned as skip). */
export function expectedCaseMs(s: Scenario, c: PlannedCase): number {
  if (c.skip) return 0;
  const seconds = s.suites.throughput.seconds * 1000;
  if (c.suite === 'throughput') {
    if (c.params?.['method'] === 'ram' || c.params?.['peer'] !== undefined) return seconds + COST.fbOverheadMs;
    if (c.name.startsWith('fb-')) return 2 * seconds + COST.fbOverheadMs;
    if (c.params?.['mode'] === 'host-fed') return seconds + COST.mouseOverheadMs + COST.hotplugMs / 3;
    return seconds + COST.mouseOverheadMs;
  }
  // The CPU table: two phases (seqlock on, off) of suites.cpu.seconds each.
  if (c.suite === 'cpu') return 2 * s.suites.cpu.seconds * 1000 + COST.cpuOverheadMs;
  const cycles = Number(c.params?.['cycles'] ?? 0);
  const perCycle = COST.cycleMs[c.name];
  if (perCycle !== undefined && cycles > 0) return cycles * perCycle;
  return COST.caseMs[c.name] ?? COST.suiteMs[c.suite];
}

/** The hot-plugged device a case shares with others of its group, if any. */
function sharedSetUp(s: Scenario, c: PlannedCase): string | undefined {
  if (c.skip) return undefined;
  // The CPU table hot-plugs one device per picture × BAR for all its methods.
  if (c.suite === 'cpu') return `${c.params?.['width']}x${c.params?.['height']}-${c.params?.['fps']}fps-${c.params?.['fb_mode']}-${c.params?.['mmio_latency_ns']}ns`;
  if (c.suite !== 'throughput') return undefined;
  const mode = c.params?.['fb_mode'];
  if (typeof mode === 'string' && mode !== s.device['fb-mode']) return `fb-${mode}`;
  const rate = c.params?.['rate_hz'];
  const bundle = c.params?.['bundle'];
  if (c.params?.['mode'] !== 'host-fed' && rate !== undefined && (rate !== s.device['mouse-rate-hz'] || bundle !== s.device['mouse-bundle'])) return `mouse-r${rate}-b${bundle}`;
  return undefined;
}

export function planCases(plan: RunPlan): PlannedCase[] {
  return SUITE_NAMES.flatMap((suite) => plan[suite] as PlannedCase[]);
}

/** A scenario's plan as units: one per case, one per group of cases sharing a hot-plugged device. */
export function shardUnits(p: PlannedScenario): ShardUnit[] {
  const s = p.scenario;
  const units: ShardUnit[] = [];
  const groups = new Map<string, ShardUnit>();
  for (const c of planCases(p.plan)) {
    const cost = expectedCaseMs(s, c);
    const group = sharedSetUp(s, c);
    if (group === undefined) {
      units.push({ scenario: s.name, id: `${c.suite}/${c.name}`, cases: [c], costMs: cost });
      continue;
    }
    const key = `${c.suite}/${group}`;
    const u = groups.get(key);
    if (u) {
      u.cases.push(c);
      u.costMs += cost;
    } else {
      const nu: ShardUnit = { scenario: s.name, id: key, cases: [c], costMs: cost + COST.hotplugMs };
      groups.set(key, nu);
      units.push(nu);
    }
  }
  return units;
}

export interface ShardAssignment {
  /** Per shard (index 0 = shard 1): its units, in plan order. */
  shards: ShardUnit[][];
  /** Per shard: expected cost (boots of its scenarios + its cases), ms. */
  costMs: number[];
  /** Per shard: the scenarios it boots. */
  boots: string[][];
}

/** Assigns every unit of every scenario to one of `count` shards (deterministic, balanced). */
export function assignShards(scenarios: readonly PlannedScenario[], count: number): ShardAssignment {
  const all = scenarios.flatMap((p, si) => shardUnits(p).map((u, ui) => ({ u, order: si * 1_000_000 + ui })));
  const ranked = [...all].sort((a, b) => b.u.costMs - a.u.costMs || (caseKey(a.u) < caseKey(b.u) ? -1 : caseKey(a.u) > caseKey(b.u) ? 1 : 0));
  const load = new Array<number>(count).fill(0);
  const booted = Array.from({ length: count }, () => new Set<string>());
  const picked: { u: ShardUnit; order: number }[][] = Array.from({ length: count }, () => []);
  for (const item of ranked) {
    let best = 0;
    let bestLoad = Infinity;
    for (let k = 0; k < count; k++) {
      const l = load[k]! + item.u.costMs + (booted[k]!.has(item.u.scenario) ? 0 : COST.bootMs);
      if (l < bestLoad) {
        best = k;
        bestLoad = l;
      }
    }
    load[best] = bestLoad;
    booted[best]!.add(item.u.scenario);
    picked[best]!.push(item);
  }
  return {
    shards: picked.map((list) => list.sort((a, b) => a.order - b.order).map((x) => x.u)),
    costMs: load,
    boots: booted.map((b) => scenarios.map((p) => p.scenario.name).filter((n) => b.has(n))),
  };
}

function caseKey(u: ShardUnit): string {
  return `${u.scenario}/${u.id}`;
}

/** The plan restricted to `keep` (order kept). */
function filterPlan(plan: RunPlan, keep: ReadonlySet<PlannedCase>): RunPlan {
  const out = { ...plan };
  for (const suite of SUITE_NAMES) (out as Record<SuiteName, PlannedCase[]>)[suite] = (plan[suite] as PlannedCase[]).filter((c) => keep.has(c));
  return out;
}

/** What one shard runs: the scenarios it has cases of, each with its part of the plan. */
export function selectShard(scenarios: readonly PlannedScenario[], spec: ShardSpec): PlannedScenario[] {
  const a = assignShards(scenarios, spec.count);
  const mine = new Set(a.shards[spec.index - 1]!.flatMap((u) => u.cases));
  return scenarios
    .map((p) => ({ scenario: p.scenario, plan: filterPlan(p.plan, mine) }))
    .filter((p) => planCases(p.plan).length > 0);
}

/**
 * Identifies the whole run the shards split: every scenario as loaded (so a changed threshold or
 * device property is a different run) and the shard count. Shards of one run share it.
 */
export function planDigest(scenarios: readonly PlannedScenario[], count: number): string {
  const h = createHash('sha256');
  h.update(`shards ${count}\n`);
  for (const p of scenarios) {
    h.update(JSON.stringify(p.scenario));
    h.update('\n');
    h.update(planCases(p.plan).map((c) => caseId(p.scenario.name, c)).join('\n'));
    h.update('\n');
  }
  return h.digest('hex').slice(0, 16);
}

/** Every case id of the whole run, in plan order (what a merge of all shards must report). */
export function plannedIds(scenarios: readonly PlannedScenario[]): string[] {
  return scenarios.flatMap((p) => planCases(p.plan).map((c) => caseId(p.scenario.name, c)));
}

