/**
 * SPEC §4.1, §4.3, §4.4: in fb-mode=direct the device renders in a thread of its own, not in
 * QEMU's main loop, and publishes each frame under the seqlock.
 *
 *  - QEMU's main loop is not held by rendering: one qtest clock step across 3000 frame
 *    intervals of a 1920×1080 device at 300 fps returns at once and QMP answers meanwhile
 *    (with the render on the main loop that step alone was 3000 renders long).
 *  - The seqlock contract holds against a render that really runs concurrently: qtest reads
 *    (FRAME_SEQ, FRAME_NUMBER, pixels spread over the frame, FRAME_SEQ) racing the render
 *    thread of a 4096×2048 frame see FRAME_SEQ odd or changed while it writes, and every copy
 *    with s1 == s2 (even) is exactly frame FRAME_NUMBER.
 *  - The thread exists per direct-mode device (named with -name debug-threads=on); mmio mode
 *    has none.
 *  - A render in progress is abandoned by CONTROL.RESET (it never publishes; BAR2 is frame 0
 *    throughout), by savevm counted as complete (the snapshot holds the frame being rendered),
 *    and the device can be pulled (surprise removal: unrealized) in the middle of one.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QtestSession, qcmd } from '../../orchestrator/src/qtest/client.ts';
import { createEmptyQcow2 } from '../../orchestrator/src/vm/qcow2.ts';
import { CONTROL, REG, decodeFrameNumber, expectedFbBytes, frameTimestamp, type DeviceProps } from '../../orchestrator/src/device/spec.ts';
import { BUILD_TIMEOUT_MS, DEV_QOM, deviceArg, qemuBinary, rng, startRig } from './helpers.ts';

let qemu: string;
let dir: string;
beforeAll(async () => {
  qemu = await qemuBinary();
  dir = await mkdtemp(join(tmpdir(), 'hbrender-'));
}, BUILD_TIMEOUT_MS);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

/** Names of QEMU's threads (`-name …,debug-threads=on` names them). */
function threadNames(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((t) => readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim());
}

/** `count` pixels spread over the frame (every line band, both ends of lines). */
function spreadPixels(geo: { width: number; height: number }, count: number, seed: number): Array<[number, number]> {
  const r = rng(seed);
  return Array.from({ length: count }, (_, i) => [Math.floor(r() * geo.width), Math.floor(((i + r()) * geo.height) / count)] as [number, number]);
}

describe('the main loop is not held by rendering', () => {
  it('a clock step across 3000 frames of a 1080p device returns at once, and QMP answers meanwhile', async () => {
    // 1920×1080 at 300 fps: 1.87 GB/s, inside the §9 bound
    await using rig = await startRig({ props: { fps: 300, 'mouse-rate-hz': 0 } });
    await rig.clockStep(100_000_000n); // warm up: 30 frames
    const t0 = process.hrtime.bigint();
    const step = rig.qt.clockStep(10_000_000_000n).then(() => ms(t0)); // 3000 frame intervals
    const q0 = process.hrtime.bigint();
    const qmp = rig.qt.qmp!.execute('query-status').then(() => ms(q0));
    const [stepMs, qmpMs] = await Promise.all([step, qmp]);
    const summary = `clock step ${stepMs.toFixed(1)} ms, query-status ${qmpMs.toFixed(1)} ms`;
    // rendering 3000 frames of 6 MiB on the main loop takes well over half a second
    expect(stepMs, summary).toBeLessThan(150);
    expect(qmpMs, summary).toBeLessThan(150);
    // the renderer caught up with the newest frame; the others were skipped (§4.1)
    await rig.settle();
    const n = await rig.rd64('FRAME_NUMBER');
    expect(n).toBe(3030n);
    const produced = await rig.rd64('FRAMES_PRODUCED');
    expect(produced).toBeLessThan(1n + 3030n);
    expect(BigInt(await rig.rd32('FRAME_SEQ'))).toBe(2n * produced);
    const line = 777 * rig.geo.stride;
    expect(Buffer.compare(await rig.qt.b64read(rig.fb + line, rig.geo.stride), Buffer.from(expectedFbBytes(n, rig.geo, line, rig.geo.stride)))).toBe(0);
  });
});

describe('seqlock against a concurrent render (4096×2048)', () => {
  it('a copy with s1 == s2 (even) is exactly frame FRAME_NUMBER; a copy during a render sees FRAME_SEQ odd or changed', async () => {
    const props: Partial<DeviceProps> = { width: 4096, height: 2048, fps: 50, 'mouse-rate-hz': 0 };
    await using rig = await startRig({ props, start: { timeoutMs: 30_000 } });
    const geo = rig.geo;
    let during = 0; // copies that overlapped a render (s1 odd or s1 != s2)
    let torn = 0; // ... whose pixels decoded to more than one frame
    let clean = 0;
    const bad: string[] = [];
    const FRAMES = 150;
    for (let i = 0; i < FRAMES && bad.length < 5; i++) {
      await rig.qt.clockStep(20_000_000n); // frame i + 1 handed to the render thread; no wait
      // a seqlock reader: copy, retry until the copy is clean
      for (let attempt = 0; attempt < 1000; attempt++) {
        const px = spreadPixels(geo, 16, 1000 * i + attempt);
        const lines = [qcmd.read(4, rig.regs + REG.FRAME_SEQ), qcmd.read(8, rig.regs + REG.FRAME_NUMBER)];
        for (const [x, y] of px) for (let c = 0; c < 3; c++) lines.push(qcmd.read(1, rig.fb + y * geo.stride + 3 * x + c));
        lines.push(qcmd.read(4, rig.regs + REG.FRAME_SEQ));
        const v = (await rig.qt.batch(lines)).map((s) => BigInt(s));
        const s1 = v[0]!;
        const n = v[1]!;
        const s2 = v.at(-1)!;
        const decoded = new Set(px.map(([x, y], k) => decodeFrameNumber(x, y, Number(v[2 + 3 * k]), Number(v[3 + 3 * k]), Number(v[4 + 3 * k]))));
        if (s1 % 2n === 1n || s1 !== s2) {
          during++;
          if (decoded.size > 1) torn++;
          continue;
        }
        clean++;
        if (decoded.size !== 1 || !decoded.has(Number(n % 65536n))) bad.push(`frame ${i + 1}: s1 = s2 = ${s1}, FRAME_NUMBER ${n}, pixels decode to ${[...decoded].join(', ')}`);
        break;
      }
    }
    const summary = `${clean} clean copies, ${during} retried during a render (${torn} of them torn)`;
    expect(bad, summary).toEqual([]);
    expect(clean, summary).toBe(FRAMES);
    // the render really runs beside the reads (with the render on the main loop, inside the
    // clock step, no read ever saw it in progress)
    expect(during, summary).toBeGreaterThan(0);
  }, 120_000);
});

describe('the render thread', () => {
  it('is one thread per direct-mode device, none in fb-mode=mmio', async () => {
    await using qt = await QtestSession.start({
      qemu,
      args: ['-name', 'hb,debug-threads=on', '-device', deviceArg({ 'mouse-rate-hz': 0 }, 'a'), '-device', deviceArg({ 'mouse-rate-hz': 0 }, 'b'), '-device', deviceArg({ 'fb-mode': 'mmio', 'mouse-rate-hz': 0 }, 'c')],
    });
    expect(threadNames(qt.pid!).filter((t) => t === 'hilbox-render')).toHaveLength(2);
  });

  it('a reset abandons the render in progress: it never publishes, and BAR2 is frame 0 throughout', async () => {
    // 8192×8192 (192 MiB): a render takes tens of milliseconds
    const geo = { width: 8192, height: 8192, stride: 8192 * 3 };
    await using rig = await startRig({ props: { width: 8192, height: 8192, fps: 1, 'mouse-rate-hz': 0 }, start: { timeoutMs: 30_000 } });
    await rig.settle();
    await rig.qt.clockSet(frameTimestamp(1n, 1)); // frame 1's render starts
    await rig.wr32('CONTROL', CONTROL.RESET); // most likely in the middle of it
    const check = async (seed: number): Promise<string[]> => {
      const px = spreadPixels(geo, 64, seed);
      const v = (await rig.qt.batch(px.flatMap(([x, y]) => [0, 1, 2].map((c) => qcmd.read(1, rig.fb + y * geo.stride + 3 * x + c))))).map(Number);
      return px.flatMap(([x, y], k) => (decodeFrameNumber(x, y, v[3 * k]!, v[3 * k + 1]!, v[3 * k + 2]!) === 0 ? [] : [`(${x},${y}) is not frame 0`])).slice(0, 3);
    };
    expect(await check(1)).toEqual([]);
    expect({ seq: await rig.rd32('FRAME_SEQ'), n: await rig.rd64('FRAME_NUMBER'), p: await rig.rd64('FRAMES_PRODUCED') }).toEqual({ seq: 2, n: 0n, p: 1n });
    await new Promise((r) => setTimeout(r, 1500)); // the redraw of frame 0 is done by now
    expect({ seq: await rig.rd32('FRAME_SEQ'), n: await rig.rd64('FRAME_NUMBER'), p: await rig.rd64('FRAMES_PRODUCED') }).toEqual({ seq: 2, n: 0n, p: 1n });
    expect(await check(2)).toEqual([]);
  }, 120_000);

  it('savevm during a render counts the frame being rendered as complete (SPEC §10)', async () => {
    const disk = join(dir, 'snap.qcow2');
    await createEmptyQcow2(disk);
    const props: Partial<DeviceProps> = { width: 8192, height: 4096, fps: 10, 'mouse-rate-hz': 0 };
    await using rig = await startRig({ props, args: ['-m', '32', '-drive', `if=none,id=snap,format=qcow2,file=${disk}`], start: { timeoutMs: 30_000 } });
    const qmp = rig.qt.qmp!;
    await rig.settle();
    await rig.qt.clockSet(frameTimestamp(7n, 10)); // frame 7's render starts; no wait
    await qmp.savevm('mid', 60_000);
    await rig.settle(); // the source completes it
    expect(await rig.rd64('FRAME_NUMBER')).toBe(7n);
    const produced = await rig.rd64('FRAMES_PRODUCED');
    await rig.clockStep(1_000_000_000n);
    await qmp.execute('stop');
    await qmp.loadvm('mid', 60_000);
    expect({ n: await rig.rd64('FRAME_NUMBER'), p: await rig.rd64('FRAMES_PRODUCED'), seq: await rig.rd32('FRAME_SEQ') }).toEqual({ n: 7n, p: produced, seq: Number(2n * produced) });
    const line = 3000 * rig.geo.stride;
    expect(Buffer.compare(await rig.qt.b64read(rig.fb + line, rig.geo.stride), Buffer.from(expectedFbBytes(7n, rig.geo, line, rig.geo.stride)))).toBe(0);
    await qmp.execute('cont');
  }, 120_000);

  it('the device can be pulled out (unrealized) in the middle of a render', async () => {
    await using qt = await QtestSession.start({
      qemu,
      args: ['-global', 'ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off', '-device', 'pcie-root-port,id=rp0,chassis=1,slot=1', '-device', `${deviceArg({ width: 8192, height: 8192, fps: 1, 'mouse-rate-hz': 0 })},bus=rp0`],
      timeoutMs: 30_000,
    });
    const qmp = qt.qmp!;
    await qmp.execute('qom-set', { path: DEV_QOM, property: 'fault-delay-ms', value: 0 });
    const deleted = qmp.waitForEvent('DEVICE_DELETED', (e) => e.data?.['device'] === 'hb0', 20_000);
    for (let i = 1; i <= 3; i++) await qt.clockStep(1_000_000_000n); // renders of 192 MiB frames
    await qmp.execute('qom-set', { path: DEV_QOM, property: 'fault', value: 'surprise-removal' });
    await qt.clockStep(1_000_000_000n); // the removal, and frame 4's render handed over just before
    await deleted;
    expect(await qmp.execute<{ status: string }>('query-status')).toMatchObject({ status: 'running' });
    expect(qt.alive).toBe(true);
  }, 120_000);
});
