/**
 * SPEC §5, §5.1 (generator), §3 event registers: exact packet counts and contents in virtual
 * time, bundling, restart on re-enable, FIFO overflow and sequence gaps.
 */
import { describe, expect, it, beforeAll } from 'vitest';
import { qcmd } from '../../orchestrator/src/qtest/client.ts';
import {
  CONTROL,
  EV_FLAG_END_OF_REPORT,
  EV_HEAD_WORDS,
  INT,
  REG,
  generatorPacket,
  generatorPacketsAfter,
  generatorTimestamp,
  parseEventHeadWords,
  type EventRecord,
} from '../../orchestrator/src/device/spec.ts';
import { BUILD_TIMEOUT_MS, qemuBinary, startRig, type HilboxRig } from './helpers.ts';

beforeAll(async () => {
  await qemuBinary();
}, BUILD_TIMEOUT_MS);

/** Pops `n` records with batched qtest commands (6 head reads + 1 pop each). */
async function drainBatch(rig: HilboxRig, n: number): Promise<EventRecord[]> {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    for (let w = 0; w < EV_HEAD_WORDS; w++) lines.push(qcmd.read(4, rig.regs + REG.EV_HEAD + 4 * w));
    lines.push(qcmd.write(4, rig.regs + REG.EV_POP, 1));
  }
  const replies = await rig.qt.batch(lines);
  const out: EventRecord[] = [];
  for (let i = 0; i < n; i++) {
    const words = replies.slice(7 * i, 7 * i + 6).map((r) => Number(r) >>> 0);
    out.push(parseEventHeadWords(words));
  }
  return out;
}

/** Describes the first records that differ from packets k0.. enabled at g. */
function checkGenerated(recs: EventRecord[], opts: { seq0: bigint; k0: number; g: bigint; rate: number; bundle: number }): string[] {
  const bad: string[] = [];
  recs.forEach((r, i) => {
    const k = opts.k0 + i;
    const want: EventRecord = { seq: opts.seq0 + BigInt(i), timestamp: generatorTimestamp(opts.g, k, opts.rate), ...generatorPacket(k, opts.bundle) };
    if (JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? v.toString() : v)) !== JSON.stringify(want, (_, v) => (typeof v === 'bigint' ? v.toString() : v))) {
      if (bad.length < 5) bad.push(`record ${i} (k=${k}): got ${fmt(r)}, want ${fmt(want)}`);
    }
  });
  return bad;
}

function fmt(r: EventRecord): string {
  return `{seq ${r.seq}, ts ${r.timestamp}, dx ${r.dx}, dy ${r.dy}, wheel ${r.wheel}, buttons ${r.buttons}, source ${r.source}, flags ${r.flags}}`;
}

async function counters(rig: HilboxRig): Promise<{ count: number; produced: bigint; delivered: bigint; dropped: bigint }> {
  return {
    count: await rig.rd32('EV_COUNT'),
    produced: await rig.rd64('EV_PRODUCED'),
    delivered: await rig.rd64('EV_DELIVERED'),
    dropped: await rig.rd64('EV_DROPPED'),
  };
}

describe('generator', () => {
  it('1000 Hz, bundle 1: one packet per ms, exactly 1000 in 1 s, content per SPEC §5.1', async () => {
    await using rig = await startRig();
    const { qt } = rig;
    await qt.clockStep(10_000_000n); // disabled: nothing
    expect(await counters(rig)).toEqual({ count: 0, produced: 0n, delivered: 0n, dropped: 0n });
    const g = await rig.rd64('DEVICE_CLOCK');
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await qt.clockStep(999_999n);
    expect((await counters(rig)).produced).toBe(0n);
    await qt.clockStep(1n);
    expect(await counters(rig)).toEqual({ count: 1, produced: 1n, delivered: 0n, dropped: 0n });
    expect(await rig.evHead()).toEqual({ seq: 1n, timestamp: g + 1_000_000n, ...generatorPacket(0, 1) });
    expect(await rig.rd32('INT_STATUS')).toBe(INT.EV_READY);

    await qt.clockSet(g + 1_000_000_000n);
    expect(await counters(rig)).toEqual({ count: 1000, produced: 1000n, delivered: 0n, dropped: 0n });
    const recs = await drainBatch(rig, 1000);
    expect(checkGenerated(recs, { seq0: 1n, k0: 0, g, rate: 1000, bundle: 1 })).toEqual([]);
    expect(recs.some((r) => r.wheel === 1)).toBe(true);
    expect(await counters(rig)).toEqual({ count: 0, produced: 1000n, delivered: 1000n, dropped: 0n });
    expect(await rig.evHead()).toEqual({ seq: 0n, timestamp: 0n, dx: 0, dy: 0, wheel: 0, buttons: 0, source: 0, flags: 0 });
    expect(await rig.qomU64('events-produced')).toBe(1000n);
    expect(await rig.qomU64('events-delivered')).toBe(1000n);
    expect(await rig.qomU64('events-dropped')).toBe(0n);
    // popping an empty FIFO changes nothing
    await rig.wr32('EV_POP', 1);
    expect((await counters(rig)).delivered).toBe(1000n);

    // disable stops it; re-enable restarts at k = 0 with fresh timestamps, seq continues
    await rig.wr32('CONTROL', 0);
    await qt.clockStep(5_000_000n);
    expect((await counters(rig)).produced).toBe(1000n);
    const g2 = await rig.rd64('DEVICE_CLOCK');
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await qt.clockStep(3_000_000n);
    const again = await drainBatch(rig, 3);
    expect(checkGenerated(again, { seq0: 1001n, k0: 0, g: g2, rate: 1000, bundle: 1 })).toEqual([]);
  });

  it('8000 Hz, bundle 4: reports of 4 enter together, floor(floor(T·r/1e9)/b)·b after T', async () => {
    await using rig = await startRig({ props: { 'mouse-rate-hz': 8000, 'mouse-bundle': 4, 'fifo-depth': 8192 } });
    const { qt } = rig;
    expect(await rig.rd32('EV_RATE_HZ')).toBe(8000);
    expect(await rig.rd32('EV_BUNDLE')).toBe(4);
    await qt.clockStep(1_234_567n);
    const g = await rig.rd64('DEVICE_CLOCK');
    expect(g).toBe(1_234_567n);
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    // packets 0..2 are due at 125, 250, 375 µs but the report completes at 500 µs
    await qt.clockSet(g + 499_999n);
    expect((await counters(rig)).produced).toBe(0n);
    await qt.clockSet(g + 500_000n);
    expect((await counters(rig)).produced).toBe(4n);
    for (const T of [123_456_789n, 500_000_001n, 999_999_999n, 1_000_000_000n]) {
      await qt.clockSet(g + T);
      const want = generatorPacketsAfter(T, 8000, 4);
      expect((await counters(rig)).produced, `after T=${T}`).toBe(want);
      expect(await rig.rd32('EV_COUNT')).toBe(Number(want));
    }
    expect(generatorPacketsAfter(123_456_789n, 8000, 4)).toBe(984n);
    const recs = await drainBatch(rig, 8000);
    expect(checkGenerated(recs, { seq0: 1n, k0: 0, g, rate: 8000, bundle: 4 })).toEqual([]);
    expect(recs.filter((r) => r.flags & EV_FLAG_END_OF_REPORT)).toHaveLength(2000);
    expect(recs.some((r) => r.buttons === 1)).toBe(true); // k >= 1024
    expect(await counters(rig)).toEqual({ count: 0, produced: 8000n, delivered: 8000n, dropped: 0n });
  });

  it('125 Hz (the minimum rate): one packet every 8 ms', async () => {
    // 125 Hz is the minimum rate; period 8 ms exactly
    await using rig = await startRig({ props: { 'mouse-rate-hz': 125 } });
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await rig.qt.clockStep(1_000_000_000n);
    expect((await counters(rig)).produced).toBe(125n);
    const recs = await drainBatch(rig, 125);
    expect(checkGenerated(recs, { seq0: 1n, k0: 0, g: 0n, rate: 125, bundle: 1 })).toEqual([]);
  });

  it('rates whose period is not an integer number of ns (7000 Hz) use ceil((k+1)·1e9/r)', async () => {
    await using rig = await startRig({ props: { 'mouse-rate-hz': 7000, 'mouse-bundle': 3, 'fifo-depth': 4096 } });
    await rig.qt.clockStep(777n);
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    const T = 432_109_876n;
    await rig.qt.clockStep(T);
    const want = generatorPacketsAfter(T, 7000, 3);
    expect((await counters(rig)).produced).toBe(want);
    const recs = await drainBatch(rig, Number(want));
    expect(checkGenerated(recs, { seq0: 1n, k0: 0, g: 777n, rate: 7000, bundle: 3 })).toEqual([]);
  });
});

describe('FIFO overflow', () => {
  it('drops when full, counts drops, leaves sequence gaps, sets EV_OVERFLOW', async () => {
    await using rig = await startRig({ props: { 'fifo-depth': 4 } });
    const { qt } = rig;
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await qt.clockStep(10_000_000n);
    expect(await counters(rig)).toEqual({ count: 4, produced: 10n, delivered: 0n, dropped: 6n });
    expect(await rig.rd32('INT_STATUS')).toBe(INT.EV_READY | INT.EV_OVERFLOW);
    expect(await rig.qomU64('events-dropped')).toBe(6n);
    const first = await drainBatch(rig, 4);
    expect(first.map((r) => r.seq)).toEqual([1n, 2n, 3n, 4n]);
    expect(checkGenerated(first, { seq0: 1n, k0: 0, g: 0n, rate: 1000, bundle: 1 })).toEqual([]);
    await qt.clockStep(3_000_000n);
    const next = await drainBatch(rig, 3);
    expect(next.map((r) => r.seq)).toEqual([11n, 12n, 13n]);
    // the gap 4 -> 11 is exactly the 6 dropped events
    expect(next[0]!.seq - first[3]!.seq - 1n).toBe(await rig.rd64('EV_DROPPED'));
    expect(checkGenerated(next, { seq0: 11n, k0: 10, g: 0n, rate: 1000, bundle: 1 })).toEqual([]);
    // INT_ACK clears; EV_READY is not re-set with an empty FIFO
    await rig.wr32('INT_ACK', INT.EV_READY | INT.EV_OVERFLOW);
    expect(await rig.rd32('INT_STATUS')).toBe(0);
    expect(await counters(rig)).toEqual({ count: 0, produced: 13n, delivered: 7n, dropped: 6n });
  });

  it('fifo-depth 1 keeps exactly one record', async () => {
    await using rig = await startRig({ props: { 'fifo-depth': 1 } });
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await rig.qt.clockStep(5_000_000n);
    expect(await counters(rig)).toEqual({ count: 1, produced: 5n, delivered: 0n, dropped: 4n });
    expect((await rig.evHead()).seq).toBe(1n);
  });
});
