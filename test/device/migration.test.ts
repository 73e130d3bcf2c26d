/**
 * SPEC §4.4, §6, §10 (migration): what the device's migration state holds and how it is
 * checked.
 *
 *  - BAR2's picture is not in the stream (it is a function of FRAME_NUMBER): the stream of a
 *    1920×1080 device is much smaller than its 8 MiB BAR, and after a load (live migration
 *    while frames change, or savevm/loadvm) every pixel is frame FRAME_NUMBER.
 *  - A crafted stream is refused cleanly: QEMU ends with exit code 1 and an error naming the
 *    field (FIFO head/count beyond the depth, a different fifo-depth on the destination).
 *  - A partial host-feed record is not in the stream, and loadvm does not bring one back.
 *
 * Streams are written with QMP `migrate` to `exec:cat > FILE` and loaded into a new QEMU
 * started with `-incoming defer` (helpers.ts loadFromFile); the device section is found by the
 * bytes of FIFO records the test put there.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcmd } from '../../orchestrator/src/qtest/client.ts';
import { createEmptyQcow2 } from '../../orchestrator/src/vm/qcow2.ts';
import {
  CONTROL,
  EV_FLAG_END_OF_REPORT,
  EV_SOURCE,
  decodeFrameNumber,
  encodeEventRecord,
  encodeFeedRecord,
  expectedFbBytes,
  frameTimestamp,
  type DeviceProps,
} from '../../orchestrator/src/device/spec.ts';
import { BUILD_TIMEOUT_MS, loadFromFile, migrateToFile, qemuBinary, rng, startRig, type HilboxRig } from './helpers.ts';

let dir: string;
beforeAll(async () => {
  await qemuBinary();
  dir = await mkdtemp(join(tmpdir(), 'hbmig-'));
}, BUILD_TIMEOUT_MS);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const MEM = ['-m', '32'];

/** `count` random pixels (whole pixels) of BAR2, each decoded; returns problems. */
async function pixelsDecodeTo(rig: HilboxRig, n: bigint, count: number, seed: number): Promise<string[]> {
  const r = rng(seed);
  const pts = Array.from({ length: count }, () => [Math.floor(r() * rig.geo.width), Math.floor(r() * rig.geo.height)] as const);
  const vals = (await rig.qt.batch(pts.flatMap(([x, y]) => [0, 1, 2].map((c) => qcmd.read(1, rig.fb + y * rig.geo.stride + 3 * x + c))))).map(Number);
  const decoded = new Map<number | undefined, number>();
  pts.forEach(([x, y], i) => {
    const d = decodeFrameNumber(x, y, vals[3 * i]!, vals[3 * i + 1]!, vals[3 * i + 2]!);
    decoded.set(d, (decoded.get(d) ?? 0) + 1);
  });
  const want = Number(n % 65536n);
  return [...decoded].filter(([d]) => d !== want).map(([d, c]) => `${c} of ${count} pixels decode to frame ${d}, FRAME_NUMBER is ${n}`);
}

describe('BAR2 is not migrated; the picture is redrawn from FRAME_NUMBER', () => {
  const props: Partial<DeviceProps> = { 'mouse-rate-hz': 0 }; // 1920×1080 rgb24: 6 MiB in an 8 MiB BAR

  it('the stream is much smaller than the BAR', async () => {
    const file = join(dir, 'small.mig');
    await using rig = await startRig({ props, args: MEM });
    await rig.qt.clockSet(frameTimestamp(7n, 50));
    await migrateToFile(rig.qt, file);
    const size = (await stat(file)).size;
    expect(size, `stream of ${size} bytes`).toBeLessThan(1024 * 1024);
  });

  it('after a live migration during which frames changed, every pixel is frame FRAME_NUMBER', async () => {
    const file = join(dir, 'live.mig');
    const src = await startRig({ props, args: MEM });
    let n: bigint, clock: bigint;
    try {
      await src.qt.clockSet(frameTimestamp(10n, 50));
      // Slow enough that the frame changes while RAM is being sent: 16 MiB of RAM that is not
      // zero at 8 MiB/s (zero pages travel as a few bytes each: an idle qtest guest's RAM went
      // in one go, the migration ended before the first poll, and no frame changed during it).
      await src.qt.memset(0x100000, 16 * 1024 * 1024, 0x5a);
      await src.qt.qmp!.execute('migrate-set-parameters', { 'max-bandwidth': 8 * 1024 * 1024 });
      let steps = 0;
      await migrateToFile(src.qt, file, {
        onPoll: async () => {
          if (steps++ < 200) await src.qt.clockStep(20_000_000n).catch(() => undefined); // one frame
          await new Promise((r) => setTimeout(r, 5));
        },
      });
      n = await src.rd64('FRAME_NUMBER');
      clock = await src.qt.clock();
      expect(n).toBeGreaterThan(10n);
    } finally {
      await src.close();
    }
    const dst = await loadFromFile(file, { props, args: MEM, clock });
    expect(dst.ok, dst.ok ? '' : dst.stderr).toBe(true);
    if (!dst.ok) return;
    await using rig = dst.rig;
    // The stream holds frame n; the destination's clock (the source's after the migration,
    // which qtest may have stepped on after the stream was taken) can already be in a later
    // frame, which the device then shows (SPEC §4.1). Either way: one whole frame, that one.
    const m = await rig.rd64('FRAME_NUMBER');
    expect(m >= n && m <= (clock * 50n) / 1_000_000_000n, `destination frame ${m}, stream frame ${n}`).toBe(true);
    expect(await rig.rd32('FRAME_SEQ')).toBe(Number(2n * (await rig.rd64('FRAMES_PRODUCED'))));
    expect(await pixelsDecodeTo(rig, m, 400, 1)).toEqual([]);
    const line = 1000 * rig.geo.stride;
    expect(Buffer.compare(await rig.qt.b64read(rig.fb + line, rig.geo.stride), Buffer.from(expectedFbBytes(m, rig.geo, line, rig.geo.stride)))).toBe(0);
    // and the frame clock goes on from there (the next frame once rendered, SPEC §4.1)
    await rig.clockStep(20_000_000n);
    const next = await rig.rd64('FRAME_NUMBER');
    expect(next > m, `frame ${next} after frame ${m}`).toBe(true);
    expect(await pixelsDecodeTo(rig, next, 200, 2)).toEqual([]);
  });

  it('savevm / loadvm (the fast reset path): small snapshot, the saved frame after loadvm', async () => {
    const disk = join(dir, 'snap.qcow2');
    await createEmptyQcow2(disk);
    await using rig = await startRig({ props, args: [...MEM, '-drive', `if=none,id=snap,format=qcow2,file=${disk}`] });
    const { qmp } = rig.qt;
    await rig.qt.clockSet(frameTimestamp(42n, 50) + 5n);
    await qmp!.savevm('clean', 60_000);
    const info = await qmp!.hmp('info snapshots');
    const m = /clean\s+([\d.]+)\s*(B|KiB|MiB|GiB)/.exec(info);
    expect(m, info).not.toBeNull();
    const bytes = Number(m![1]) * { B: 1, KiB: 1024, MiB: 2 ** 20, GiB: 2 ** 30 }[m![2] as 'B'];
    expect(bytes, info).toBeLessThan(1024 * 1024);
    // later frames, then back (VM stopped so no frame timer runs before we look)
    await rig.clockStep(1_000_000_000n);
    expect(await rig.rd64('FRAME_NUMBER')).toBe(92n);
    await qmp!.execute('stop');
    await qmp!.loadvm('clean', 60_000);
    expect(await rig.rd64('FRAME_NUMBER')).toBe(42n);
    expect(await pixelsDecodeTo(rig, 42n, 400, 3)).toEqual([]);
    await new Promise((r) => setTimeout(r, 300)); // background redraw done: still frame 42 from RAM
    expect(await pixelsDecodeTo(rig, 42n, 400, 4)).toEqual([]);
    await qmp!.execute('cont');
  });
});

describe('a crafted or mismatched stream is refused cleanly', () => {
  const props: Partial<DeviceProps> = { width: 64, height: 32, 'mouse-rate-hz': 0, 'fifo-depth': 16 };
  const T = 123_456_789n;
  let stream: Buffer;
  let fifoAt: number; // offset of the FIFO buffer in the stream

  beforeAll(async () => {
    const file = join(dir, 'fifo.mig');
    await using rig = await startRig({ props, args: MEM });
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await rig.qt.clockSet(T);
    for (let i = 0; i < 5; i++) await rig.qt.qmp!.execute('input-send-event', { events: [{ type: 'rel', data: { axis: 'x', value: 0x1230 + i } }] });
    await rig.wr32('EV_POP', 1);
    await rig.wr32('EV_POP', 1); // head 2, count 3
    await migrateToFile(rig.qt, file);
    stream = await readFile(file);
    const fifo = Buffer.alloc(16 * 24);
    for (let i = 0; i < 5; i++) {
      Buffer.from(encodeEventRecord({ seq: BigInt(i + 1), timestamp: T, dx: 0x1230 + i, dy: 0, wheel: 0, buttons: 0, source: EV_SOURCE.input, flags: EV_FLAG_END_OF_REPORT })).copy(fifo, 24 * i);
    }
    fifoAt = stream.indexOf(fifo);
  });

  /** The stream with big-endian u32 `value` at `off` after the FIFO buffer (0: fifo_head, 4: fifo_count). */
  async function patched(name: string, off: number, value: number): Promise<string> {
    const s = Buffer.from(stream);
    s.writeUInt32BE(value, fifoAt + 16 * 24 + off);
    const file = join(dir, `${name}.mig`);
    await writeFile(file, s);
    return file;
  }

  it('the FIFO is in the stream where expected (head 2, count 3), and the unpatched stream loads', async () => {
    expect(fifoAt).toBeGreaterThan(0);
    expect(stream.readUInt32BE(fifoAt + 384)).toBe(2);
    expect(stream.readUInt32BE(fifoAt + 388)).toBe(3);
    const r = await loadFromFile(await patched('same', 4, 3), { props, args: MEM, clock: T });
    expect(r.ok, r.ok ? '' : r.stderr).toBe(true);
    if (!r.ok) return;
    await using rig = r.rig;
    expect(await rig.rd32('EV_COUNT')).toBe(3);
    expect((await rig.drain()).map((e) => [e.seq, e.dx])).toEqual([[3n, 0x1232], [4n, 0x1233], [5n, 0x1234]]);
  });

  for (const [what, off, value, field] of [
    ['fifo_count above fifo-depth', 4, 17, 'fifo_count'],
    ['fifo_count far above fifo-depth', 4, 0xffff_ffff, 'fifo_count'],
    ['fifo_head at fifo-depth', 0, 16, 'fifo_head'],
    ['fifo_head far beyond fifo-depth', 0, 0x8000_0000, 'fifo_head'],
  ] as const) {
    it(`${what}: exit code 1, the error names ${field}`, async () => {
      const r = await loadFromFile(await patched(field + value, off, value), { props, args: MEM, clock: T });
      if (r.ok) await r.rig.close();
      expect(r.ok, 'the crafted stream was accepted').toBe(false);
      if (r.ok) return;
      expect(r.signal, r.stderr).toBeNull();
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stderr).toContain(`hilbox-pci: migrated ${field}`);
      expect(r.stderr).toMatch(/load of migration failed: Invalid argument/);
    });
  }

  it('a destination with another fifo-depth refuses the stream, naming fifo-depth', async () => {
    const file = join(dir, 'fifo.mig');
    await writeFile(file, stream);
    const r = await loadFromFile(file, { props: { ...props, 'fifo-depth': 32 }, args: MEM, clock: T });
    if (r.ok) await r.rig.close();
    expect(r.ok, 'loaded into a device with another fifo-depth').toBe(false);
    if (r.ok) return;
    expect(r.signal, r.stderr).toBeNull();
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toContain("property 'fifo-depth' differs");
    expect(r.stderr).toContain('hilbox-pci:fifo_depth');
  });
});

describe('a partial host-feed record belongs to the connection, not to the machine state (§6)', () => {
  async function feedRig(extra: string[] = []): Promise<{ rig: HilboxRig; feed: Socket }> {
    const path = join(dir, `feed-${Math.random().toString(36).slice(2)}.sock`);
    const rig = await startRig({ props: { width: 64, height: 32, chardev: 'feed', 'mouse-rate-hz': 0 }, args: [...MEM, ...extra, '-chardev', `socket,id=feed,path=${path},server=on,wait=off`] });
    const feed = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path, () => resolve(s));
      s.once('error', reject);
    });
    return { rig, feed };
  }
  const send = (s: Socket, b: Uint8Array) => new Promise<void>((res, rej) => s.write(b, (e) => (e ? rej(e) : res())));
  const settle = () => new Promise((r) => setTimeout(r, 100));
  const A = encodeFeedRecord({ dx: 0x0a0a, dy: 0x0b0b, buttons: 1 });
  const B = encodeFeedRecord({ dx: 0x0c0c, dy: -0x0d0d, flags: EV_FLAG_END_OF_REPORT });

  it('is not in the migration stream', async () => {
    const { rig, feed } = await feedRig();
    try {
      await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
      await send(feed, A.subarray(0, 10));
      await settle();
      const file = join(dir, 'partial.mig');
      await migrateToFile(rig.qt, file);
      const s = await readFile(file);
      expect(s.indexOf(Buffer.from(A.subarray(0, 10))), 'the 10 received bytes of the record are in the stream').toBe(-1);
    } finally {
      feed.destroy();
      await rig.close();
    }
  });

  it('loadvm does not bring back the partial record of the snapshot', async () => {
    const disk = join(dir, 'feed.qcow2');
    await createEmptyQcow2(disk);
    const { rig, feed } = await feedRig(['-drive', `if=none,id=snap,format=qcow2,file=${disk}`]);
    try {
      await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
      await send(feed, A.subarray(0, 10));
      await settle();
      await rig.qt.qmp!.savevm('partial', 60_000); // the snapshot is taken mid-record
      await send(feed, A.subarray(10)); // the live connection completes record A
      await settle();
      expect((await rig.drain()).map((e) => [e.dx, e.dy])).toEqual([[0x0a0a, 0x0b0b]]);
      await rig.qt.qmp!.loadvm('partial', 60_000);
      await send(feed, B);
      await settle();
      // exactly B: the snapshot's 10 bytes of A do not come back to swallow B's first bytes
      expect((await rig.drain()).map((e) => [e.dx, e.dy, e.flags, e.source])).toEqual([[0x0c0c, -0x0d0d, EV_FLAG_END_OF_REPORT, EV_SOURCE.feed]]);
      expect(await rig.rd32('FEED_ERRORS')).toBe(0);
    } finally {
      feed.destroy();
      await rig.close();
    }
  });
});
