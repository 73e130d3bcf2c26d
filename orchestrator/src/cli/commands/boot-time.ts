/**
 * `hilbox boot-time [scenario] [--repeat N] [--kernel-args ARGS] [--thp] [--idle S]`: how long the scenario's guest
 * takes from QEMU's start to the first command run over SSH, each way it can come up, measured
 * in one run so the rows compare on one host at one time. One job: boot, time, tabulate.
 *
 * Every round boots, in this order: the first boot of a configuration (cold, storing its boot
 * snapshot in a private directory), a VM resuming that snapshot, a cold boot with snapshots off
 * and, with --kernel-args, a cold boot with those kernel arguments added (for trying a knob: the
 * ratio row says what it changed). With --thp each of those ways also runs with QEMU given the
 * host's transparent huge pages (vm/qemu-command.ts: hilbox runs it without), right after the same
 * way without. --idle S lets the host idle S seconds before every timed boot, so each meets the
 * host as the first VM of a command does (on a host that hands free memory back to its own host,
 * that first VM touches fresh memory). No driver is loaded; the user's snapshot cache is not touched.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootScenario, loadScenario } from '../../session/boot.ts';
import { checkGuestConfig } from '../../guest/for-scenario.ts';
import type { Scenario } from '../../scenario/schema.ts';
import { spread, formatSpread, type Spread } from '../../bench/stats.ts';
import { textTable } from '../../report/table.ts';
import { silentOutput, type Output } from '../../core/output.ts';
import { UsageError } from '../errors.ts';

export interface BootTimeArgs {
  scenario?: string;
  repeat?: string;
  kernelArgs?: string;
  thp?: boolean;
  idle?: string;
  json: boolean;
  out: Output;
}

export const BOOT_TIME_REPEAT_MAX = 50;
export const BOOT_TIME_IDLE_MAX_S = 120;

interface Way {
  name: string;
  /** Boots once; resolves with milliseconds to the first SSH command and how the guest came up. */
  boot: () => Promise<{ firstCommandMs: number; kind: string }>;
}

export interface BootTimeRow {
  way: string;
  firstCommandMs: Spread;
  /** Median time to the first SSH command ÷ that of the cold boot without snapshots. */
  ratioToCold: number;
  kinds: string[];
}

export function parseRepeat(v: string | undefined): number {
  if (v === undefined) return 5;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > BOOT_TIME_REPEAT_MAX) throw new UsageError(`boot-time: --repeat ${JSON.stringify(v)}: expected a whole number from 1 to ${BOOT_TIME_REPEAT_MAX}`);
  return n;
}

export function parseIdle(v: string | undefined): number {
  if (v === undefined) return 0;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > BOOT_TIME_IDLE_MAX_S) throw new UsageError(`boot-time: --idle ${JSON.stringify(v)}: expected seconds from 0 to ${BOOT_TIME_IDLE_MAX_S}`);
  return n;
}

const THP_SUFFIX = ', QEMU with transparent huge pages';

export async function bootTimeCommand(a: BootTimeArgs): Promise<number> {
  const repeat = parseRepeat(a.repeat);
  const idleMs = parseIdle(a.idle) * 1000;
  const kernelArgs = a.kernelArgs?.trim();
  if (kernelArgs === '') throw new UsageError('boot-time: --kernel-args is empty');
  const { scenario, baseDir, source } = loadScenario(a.scenario);
  checkGuestConfig(scenario.guest, baseDir);
  const linux = scenario.guest.os === 'linux';
  if (kernelArgs !== undefined && !linux) throw new UsageError(`boot-time: --kernel-args needs a Linux guest (${source} has guest.os ${scenario.guest.os})`);
  a.out.step(`boot-time: ${source}, ${repeat} round${repeat === 1 ? '' : 's'}${idleMs ? `, ${idleMs / 1000} s idle before each boot` : ''}`);
  const store = await mkdtemp(join(tmpdir(), 'hilbox-boot-time-'));
  try {
    type Knobs = { kernelArgs?: string; snapshots?: boolean; hugePages?: boolean };
    const once = async (s: Scenario, o: Knobs = {}) => {
      let firstCommandMs = 0;
      await using vm = await bootScenario(
        { ...s, bootSnapshot: Boolean(o.snapshots) },
        { out: silentOutput, baseDir, loadDriver: false, bootSnapshotDir: store, onBooted: (ms) => (firstCommandMs = ms), ...(o.kernelArgs ? { kernelArgs: o.kernelArgs } : {}), ...(o.hugePages ? { hugePages: true } : {}) },
      );
      return { firstCommandMs, kind: vm.bootKind };
    };
    const ways: Way[] = [];
    // Each way, and with --thp its twin with huge pages right after it.
    const add = (name: string, boot: (o: Knobs) => Promise<{ firstCommandMs: number; kind: string }>): number => {
      const i = ways.push({ name, boot: () => boot({}) }) - 1;
      if (a.thp) ways.push({ name: `${name}${THP_SUFFIX}`, boot: () => boot({ hugePages: true }) });
      return i;
    };
    if (linux) {
      add('first boot of the configuration (cold, stores its boot snapshot)', async (o) => {
        await rm(store, { recursive: true, force: true });
        return once(scenario, { ...o, snapshots: true });
      });
      add('resumed from the boot snapshot', (o) => once(scenario, { ...o, snapshots: true }));
    }
    const coldRow = add('cold, boot snapshots off', (o) => once(scenario, o));
    if (kernelArgs) add(`cold, boot snapshots off, kernel args "${kernelArgs}"`, (o) => once(scenario, { ...o, kernelArgs }));
    // Builds, the accelerator probe and a first QEMU start happen here, untimed.
    await once(scenario);
    const samples = ways.map(() => ({ first: [] as number[], kinds: new Set<string>() }));
    for (let r = 1; r <= repeat; r++) {
      for (const [i, w] of ways.entries()) {
        if (idleMs) await new Promise((res) => setTimeout(res, idleMs));
        a.out.step(`round ${r}/${repeat}: ${w.name}`);
        const t = await w.boot();
        samples[i]!.first.push(t.firstCommandMs);
        samples[i]!.kinds.add(t.kind);
        a.out.done(`${t.firstCommandMs} ms to the first SSH command (${t.kind})`);
      }
    }
    a.out.close();
    const cold = spread(samples[coldRow]!.first).median;
    const rows: BootTimeRow[] = ways.map((w, i) => {
      const first = spread(samples[i]!.first);
      return { way: w.name, firstCommandMs: first, ratioToCold: cold > 0 ? first.median / cold : 0, kinds: [...samples[i]!.kinds] };
    });
    if (a.json) process.stdout.write(`${JSON.stringify({ scenario: source, repeat, idleSeconds: idleMs / 1000, rows }, null, 2)}\n`);
    else process.stdout.write(`${formatBootTime(rows)}\n`);
    return 0;
  } finally {
    await rm(store, { recursive: true, force: true });
  }
}

export function formatBootTime(rows: readonly BootTimeRow[]): string {
  const ms = (s: Spread) => `${Math.round(s.median)}`;
  return [
    'QEMU start -> first SSH command, median of the rounds; spread = (max - min) / median; x cold = median / that of the cold boot',
    textTable({
      headers: ['boot', 'n', 'first command ms', 'min-max', 'spread', 'x cold'],
      align: ['left', 'right', 'right', 'right', 'right', 'right'],
      rows: rows.map((r) => [r.way, String(r.firstCommandMs.n), ms(r.firstCommandMs), `${Math.round(r.firstCommandMs.min)}-${Math.round(r.firstCommandMs.max)}`, formatSpread(r.firstCommandMs.relative), r.ratioToCold.toFixed(2)]),
    }),
  ].join('\n');
}
