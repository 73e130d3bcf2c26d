/**
 * SPEC §5.1 (host feed, QEMU input layer), §6: chardev-fed records incl. resynchronisation,
 * QMP `input-send-event`, ordering and sequence numbers across sources, drops while disabled.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUTTON,
  CAPS,
  CONTROL,
  EV_FLAG_END_OF_REPORT,
  EV_SOURCE,
  INT,
  encodeFeedRecord,
  type EventRecord,
  type FeedRecord,
} from '../../orchestrator/src/device/spec.ts';
import { BUILD_TIMEOUT_MS, DEV_ID, qemuBinary, rawQmp, startRig, type HilboxRig } from './helpers.ts';

beforeAll(async () => {
  await qemuBinary();
}, BUILD_TIMEOUT_MS);

async function connectFeed(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path, () => resolve(s));
    s.once('error', reject);
  });
}

function write(sock: Socket, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => sock.write(data, (e) => (e ? reject(e) : resolve())));
}

/** Polls `EV_PRODUCED` (and FEED_ERRORS) until they reach the wanted values; QEMU reads the chardev asynchronously. */
async function waitProduced(rig: HilboxRig, produced: bigint, feedErrors?: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await rig.rd64('EV_PRODUCED');
    const fe = await rig.rd32('FEED_ERRORS');
    if (p === produced && (feedErrors === undefined || fe === feedErrors)) return;
    if (p > produced) throw new Error(`EV_PRODUCED overshot: ${p} > ${produced}`);
    if (Date.now() > deadline) throw new Error(`timeout: EV_PRODUCED ${p} (want ${produced}), FEED_ERRORS ${fe} (want ${feedErrors ?? 'any'})`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function feedEvent(seq: bigint, timestamp: bigint, r: FeedRecord): EventRecord {
  return { seq, timestamp, dx: r.dx ?? 0, dy: r.dy ?? 0, wheel: r.wheel ?? 0, buttons: r.buttons ?? 0, source: EV_SOURCE.feed, flags: r.flags ?? 0 };
}

type InputEv = { type: 'rel'; data: { axis: 'x' | 'y'; value: number } } | { type: 'btn'; data: { button: string; down: boolean } } | { type: 'abs'; data: { axis: 'x' | 'y'; value: number } };

/** Sends through the input layer; without `device` the event goes to the focused handler. */
async function sendInput(rig: HilboxRig, events: InputEv[], device?: string): Promise<void> {
  await rig.qt.qmp!.execute('input-send-event', device === undefined ? { events } : { device, events });
}

describe('host feed (chardev)', () => {
  let rig: HilboxRig;
  let dir: string;
  let feed: Socket;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hbfeed-'));
    const path = join(dir, 'feed.sock');
    rig = await startRig({ props: { chardev: 'feed', 'mouse-rate-hz': 0 }, args: ['-chardev', `socket,id=feed,path=${path},server=on,wait=off`] });
    feed = await connectFeed(path);
  });
  afterAll(async () => {
    feed?.destroy();
    await rig?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('advertises FEED in CAPS', async () => {
    expect((await rig.rd32('CAPS')) & CAPS.FEED).toBe(CAPS.FEED);
  });

  it('drops (but numbers) records while EV_ENABLE is 0, without EV_OVERFLOW', async () => {
    await write(feed, Buffer.concat([encodeFeedRecord({ dx: 1 }), encodeFeedRecord({ dx: 2 })]));
    await waitProduced(rig, 2n, 0);
    expect(await rig.rd64('EV_DROPPED')).toBe(2n);
    expect(await rig.rd32('EV_COUNT')).toBe(0);
    expect(await rig.rd32('INT_STATUS')).toBe(0);
  });

  it('turns each 16-byte record into one event with the device clock as timestamp', async () => {
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await rig.qt.clockStep(1_234_567n);
    const t = await rig.rd64('DEVICE_CLOCK');
    const recs: FeedRecord[] = [
      { dx: 5, dy: -7, wheel: -1, buttons: BUTTON.left | BUTTON.right, flags: EV_FLAG_END_OF_REPORT },
      { dx: -32768, dy: 32767, wheel: -128, buttons: 0x1f, flags: 0 },
      { dx: 0, dy: 0, wheel: 127, buttons: 0, flags: EV_FLAG_END_OF_REPORT },
    ];
    await write(feed, Buffer.concat(recs.map(encodeFeedRecord)));
    await waitProduced(rig, 5n, 0);
    expect(await rig.rd32('EV_COUNT')).toBe(3);
    expect(await rig.rd32('INT_STATUS')).toBe(INT.EV_READY);
    expect(await rig.drain()).toEqual(recs.map((r, i) => feedEvent(3n + BigInt(i), t, r)));
  });

  it('reassembles a record split across writes', async () => {
    const rec = encodeFeedRecord({ dx: 9, dy: 8, buttons: BUTTON.middle });
    await write(feed, rec.subarray(0, 3));
    await new Promise((r) => setTimeout(r, 30));
    await write(feed, rec.subarray(3, 11));
    await new Promise((r) => setTimeout(r, 30));
    expect(await rig.rd64('EV_PRODUCED')).toBe(5n);
    await rig.qt.clockStep(1000n);
    await write(feed, rec.subarray(11));
    await waitProduced(rig, 6n, 0);
    const t = await rig.rd64('DEVICE_CLOCK');
    expect(await rig.drain()).toEqual([feedEvent(6n, t, { dx: 9, dy: 8, buttons: BUTTON.middle })]);
  });

  it('resynchronises on garbage, counting each discarded byte in FEED_ERRORS', async () => {
    // one garbage byte, then a record
    await write(feed, Buffer.concat([Buffer.from([0xaa]), encodeFeedRecord({ dx: 1 })]));
    await waitProduced(rig, 7n, 1);
    // a truncated magic "HBE" then a record: "HBEH" is not the magic -> 3 bytes discarded
    await write(feed, Buffer.concat([Buffer.from('HBE', 'latin1'), encodeFeedRecord({ dx: 2 })]));
    await waitProduced(rig, 8n, 4);
    // 5 bytes of junk containing a wrong magic, then two records
    await write(feed, Buffer.concat([Buffer.from('HBEW!', 'latin1'), encodeFeedRecord({ dx: 3 }), encodeFeedRecord({ dx: 4 })]));
    await waitProduced(rig, 10n, 9);
    const t = await rig.rd64('DEVICE_CLOCK');
    expect((await rig.drain()).map((e) => [e.seq, e.dx, e.source])).toEqual([
      [7n, 1, 1],
      [8n, 2, 1],
      [9n, 3, 1],
      [10n, 4, 1],
    ]);
    expect(t).toBeGreaterThan(0n);
    expect(await rig.qomU64('feed-errors')).toBe(9n);
  });

  it('keeps order and numbering for a burst of records', async () => {
    const recs = Array.from({ length: 200 }, (_, i) => ({ dx: i, dy: 0 - i || 0, flags: i % 2 }));
    await write(feed, Buffer.concat(recs.map(encodeFeedRecord)));
    await waitProduced(rig, 210n, 9);
    const got = await rig.drain();
    expect(got.map((e) => e.seq)).toEqual(recs.map((_, i) => 11n + BigInt(i)));
    expect(got.map((e) => [e.dx, e.dy, e.flags])).toEqual(recs.map((r) => [r.dx, r.dy, r.flags]));
    expect(await rig.qomU64('events-produced')).toBe(210n);
    expect(await rig.qomU64('events-dropped')).toBe(2n);
  });

  it('overflows a full FIFO like any other source (no back-pressure)', async () => {
    const depth = await rig.rd32('EV_FIFO_DEPTH');
    expect(depth).toBe(1024);
    const n = depth + 10;
    await write(feed, Buffer.concat(Array.from({ length: n }, (_, i) => encodeFeedRecord({ dx: i & 0x7fff }))));
    await waitProduced(rig, 210n + BigInt(n), 9);
    expect(await rig.rd32('EV_COUNT')).toBe(depth);
    expect(await rig.rd64('EV_DROPPED')).toBe(12n);
    expect((await rig.rd32('INT_STATUS')) & INT.EV_OVERFLOW).toBe(INT.EV_OVERFLOW);
    await rig.wr32('CONTROL', CONTROL.RESET);
    expect(await rig.rd32('EV_COUNT')).toBe(0);
  });
});

describe('QEMU input layer (QMP input-send-event) together with the host feed', () => {
  let rig: HilboxRig;
  let dir: string;
  let feed: Socket;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hbfeed-'));
    const path = join(dir, 'feed.sock');
    rig = await startRig({ props: { chardev: 'feed', 'mouse-rate-hz': 0 }, args: ['-chardev', `socket,id=feed,path=${path},server=on,wait=off`] });
    feed = await connectFeed(path);
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
  });
  afterAll(async () => {
    feed?.destroy();
    await rig?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('advertises INPUT in CAPS', async () => {
    expect((await rig.rd32('CAPS')) & CAPS.INPUT).toBe(CAPS.INPUT);
  });

  it('cannot be addressed with "device": "<id>" (no console; SPEC §5.1), so input goes by focus', async () => {
    await expect(sendInput(rig, [{ type: 'rel', data: { axis: 'x', value: 1 } }], DEV_ID)).rejects.toThrow(/not bound to a QemuConsole/);
    await sendInput(rig, [{ type: 'rel', data: { axis: 'x', value: 1 } }]);
    expect((await rig.drain()).map((e) => [e.dx, e.source])).toEqual([[1, 2]]);
  });

  it('accumulates one input-send-event into one event until sync', async () => {
    await rig.wr32('CONTROL', CONTROL.RESET); // sequence numbers and device clock restart
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await rig.qt.clockStep(5000n);
    await sendInput(rig, [
      { type: 'rel', data: { axis: 'x', value: 10 } },
      { type: 'rel', data: { axis: 'y', value: -4 } },
      { type: 'rel', data: { axis: 'x', value: 3 } },
      { type: 'btn', data: { button: 'left', down: true } },
    ]);
    expect(await rig.rd64('EV_PRODUCED')).toBe(1n);
    expect(await rig.drain()).toEqual([{ seq: 1n, timestamp: 5000n, dx: 13, dy: -4, wheel: 0, buttons: BUTTON.left, source: EV_SOURCE.input, flags: EV_FLAG_END_OF_REPORT }]);
  });

  it('maps wheel buttons to ±1 and keeps button state', async () => {
    await sendInput(rig, [{ type: 'btn', data: { button: 'wheel-up', down: true } }]);
    await sendInput(rig, [{ type: 'btn', data: { button: 'wheel-down', down: true } }, { type: 'btn', data: { button: 'right', down: true } }]);
    await sendInput(rig, [{ type: 'btn', data: { button: 'left', down: false } }, { type: 'btn', data: { button: 'middle', down: true } }]);
    await sendInput(rig, [{ type: 'btn', data: { button: 'side', down: true } }, { type: 'btn', data: { button: 'extra', down: true } }]);
    const got = await rig.drain();
    expect(got.map((e) => ({ wheel: e.wheel, buttons: e.buttons, source: e.source, flags: e.flags }))).toEqual([
      { wheel: 1, buttons: BUTTON.left, source: 2, flags: 1 },
      { wheel: -1, buttons: BUTTON.left | BUTTON.right, source: 2, flags: 1 },
      { wheel: 0, buttons: BUTTON.right | BUTTON.middle, source: 2, flags: 1 },
      { wheel: 0, buttons: BUTTON.right | BUTTON.middle | BUTTON.side | BUTTON.extra, source: 2, flags: 1 },
    ]);
    expect(got.map((e) => e.seq)).toEqual([2n, 3n, 4n, 5n]);
  });

  it('ignores absolute events', async () => {
    await sendInput(rig, [{ type: 'abs', data: { axis: 'x', value: 5000 } }]).catch(() => undefined);
    await sendInput(rig, [{ type: 'rel', data: { axis: 'x', value: -2 } }]);
    expect((await rig.drain()).map((e) => [e.seq, e.dx, e.source])).toEqual([[6n, -2, 2]]);
  });

  it('interleaves feed and input events in sequence order', async () => {
    const expected: Array<[bigint, number, number]> = [];
    let seq = 7n;
    for (let i = 0; i < 10; i++) {
      await write(feed, encodeFeedRecord({ dx: 100 + i }));
      await waitProduced(rig, seq);
      expected.push([seq++, 100 + i, 1]);
      await sendInput(rig, [{ type: 'rel', data: { axis: 'x', value: 200 + i } }]);
      expected.push([seq++, 200 + i, 2]);
    }
    expect((await rig.drain()).map((e) => [e.seq, e.dx, e.source])).toEqual(expected);
  });

  it('drops input events while disabled, still numbering them', async () => {
    await rig.wr32('CONTROL', 0);
    const dropped = await rig.rd64('EV_DROPPED');
    await sendInput(rig, [{ type: 'rel', data: { axis: 'x', value: 1 } }]);
    expect(await rig.rd64('EV_DROPPED')).toBe(dropped + 1n);
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await sendInput(rig, [{ type: 'rel', data: { axis: 'y', value: 1 } }]);
    expect((await rig.drain()).map((e) => e.seq)).toEqual([28n]);
  });
});

describe('input=off', () => {
  it('clears CAPS.INPUT and takes no input events', async () => {
    await using rig = await startRig({ props: { input: false, 'mouse-rate-hz': 0 } });
    expect((await rig.rd32('CAPS')) & CAPS.INPUT).toBe(0);
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await rig.qt.qmp!.execute('input-send-event', { events: [{ type: 'rel', data: { axis: 'x', value: 1 } }] }).catch(() => undefined);
    expect(await rig.rd64('EV_PRODUCED')).toBe(0n);
  });
});

describe('host feed: a partial record does not survive a reconnect (§6)', () => {
  it('10 bytes, disconnect, reconnect, whole records: exactly those records arrive', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hbfeed-'));
    const path = join(dir, 'feed.sock');
    try {
      await using rig = await startRig({ props: { chardev: 'feed', 'mouse-rate-hz': 0 }, args: ['-chardev', `socket,id=feed,path=${path},server=on,wait=off`] });
      await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
      const first = await connectFeed(path);
      await write(first, encodeFeedRecord({ dx: 111, dy: 222 }).subarray(0, 10));
      await new Promise((r) => setTimeout(r, 50));
      first.destroy();
      await new Promise((r) => setTimeout(r, 100)); // QEMU sees the close and accepts again
      const second = await connectFeed(path);
      try {
        const recs: FeedRecord[] = [{ dx: 1, dy: -1, flags: EV_FLAG_END_OF_REPORT }, { dx: 2, dy: -2, buttons: BUTTON.left }, { dx: 3, dy: -3, wheel: 1 }];
        await write(second, Buffer.concat(recs.map(encodeFeedRecord)));
        await waitProduced(rig, 3n);
        const t = await rig.rd64('DEVICE_CLOCK');
        expect(await rig.drain()).toEqual(recs.map((r, i) => feedEvent(1n + BigInt(i), t, r)));
        // the 10 bytes of the broken record are counted as discarded
        expect(await rig.rd32('FEED_ERRORS')).toBe(10);
      } finally {
        second.destroy();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('QMP input-send-event: relative deltas saturate to the record range (§5.1)', () => {
  it('2^32+1, INT64_MAX, INT64_MIN and sums beyond int64 become ±32767/-32768', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hbqmp-'));
    const path = join(dir, 'raw.sock');
    try {
      await using rig = await startRig({ props: { 'mouse-rate-hz': 0 }, args: ['-chardev', `socket,id=rawqmp,path=${path},server=on,wait=off`, '-mon', 'chardev=rawqmp,mode=control'] });
      await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
      const qmp = await rawQmp(path);
      try {
        const rel = (axis: string, v: string) => `{"type":"rel","data":{"axis":"${axis}","value":${v}}}`;
        const sendRel = async (...evs: string[]) => {
          const r = await qmp.send(`{"execute":"input-send-event","arguments":{"events":[${evs.join(',')}]}}`);
          expect(r, JSON.stringify(r)).toHaveProperty('return');
        };
        await sendRel(rel('x', '4294967297'), rel('y', '-4294967297')); // 2^32 + 1: not +1 / -1
        await sendRel(rel('x', '9223372036854775807'), rel('y', '-9223372036854775808'));
        await sendRel(rel('x', '9223372036854775807'), rel('x', '9223372036854775807'), rel('y', '-9223372036854775808'), rel('y', '-1'));
        await sendRel(rel('x', '9223372036854775807'), rel('x', '-9223372036854775807'), rel('y', '40000'), rel('y', '-40000'));
        await sendRel(rel('x', '32768'), rel('y', '-32769'));
        expect((await rig.drain()).map((e) => [e.dx, e.dy])).toEqual([
          [32767, -32768],
          [32767, -32768],
          [32767, -32768],
          [0, 0], // the sum of one sync is what saturates, not each delta
          [32767, -32768],
        ]);
      } finally {
        qmp.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
