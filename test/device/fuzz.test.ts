/**
 * Bounded, seeded random register / framebuffer / config-space traffic (fixed seed, 2000
 * operations). Afterwards QEMU must be alive and answering, the identity must read back and
 * the invariants that survive arbitrary traffic must hold:
 *   - 4-byte aligned reads of constant registers return their values, undefined offsets 0,
 *     1-/2-byte and misaligned 4-byte reads 0 (SPEC §3 access rules);
 *   - BAR2 always reads as the current frame (writes never change it) and every BAR2 write
 *     access is counted in FB_WRITE_ATTEMPTS (reset by CONTROL.RESET);
 *   - unused BARs stay unimplemented; the BARs can be re-sized and re-mapped.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { qcmd } from '../../orchestrator/src/qtest/client.ts';
import { PCI_CFG, PCI_COMMAND } from '../../orchestrator/src/qtest/pci.ts';
import {
  BAR,
  CONTROL,
  DEFAULT_PROPS,
  FB_MODE,
  EV_HEAD_WORDS,
  ID_MAGIC,
  PCI_ID,
  REG,
  REG64,
  SPEC_VERSION,
  expectedCaps,
  expectedFbBytes,
  fbBarSize,
  fbBytes,
  type DeviceProps,
  type RegName,
} from '../../orchestrator/src/device/spec.ts';
import { BUILD_TIMEOUT_MS, qemuBinary, rng, startRig } from './helpers.ts';

beforeAll(async () => {
  await qemuBinary();
}, BUILD_TIMEOUT_MS);

const SEED = 0x4842_2024;
const OPS = 2000;
const PER_BATCH = 100;

const geo = { width: 256, height: 64, stride: 800 };

/** Expected 4-byte aligned reads that no traffic can change. */
function constants(props: DeviceProps): Map<number, number> {
  return new Map<number, number>([
    [REG.ID, ID_MAGIC],
    [REG.VERSION, SPEC_VERSION],
    [REG.CAPS, expectedCaps(props)],
    [REG.WIDTH, props.width],
    [REG.HEIGHT, props.height],
    [REG.STRIDE, props.stride],
    [REG.FORMAT, 1],
    [REG.FPS, props.fps],
    [REG.FB_BYTES, fbBytes(props)],
    [REG.FB_MODE, FB_MODE[props['fb-mode']]],
    [REG.MMIO_LATENCY_NS, props['mmio-latency-ns']],
    [REG.EV_FIFO_DEPTH, props['fifo-depth']],
    [REG.EV_RATE_HZ, props['mouse-rate-hz']],
    [REG.EV_BUNDLE, props['mouse-bundle']],
  ]);
}

/** Word offsets the spec defines (anything else reads 0). */
const DEFINED = new Set<number>();
for (const [name, off] of Object.entries(REG) as [RegName, number][]) {
  DEFINED.add(off);
  if (REG64.has(name)) DEFINED.add(off + 4);
}
for (let w = 0; w < EV_HEAD_WORDS; w++) DEFINED.add(REG.EV_HEAD + 4 * w);

type Check = (reply: string) => string | undefined;

describe.each(['direct', 'mmio'] as const)('seeded fuzz, fb-mode=%s', (mode) => {
  it(`survives ${OPS} random accesses (seed 0x${SEED.toString(16)}) with invariants intact`, async () => {
    const props: DeviceProps = { ...DEFAULT_PROPS, ...geo, fps: 100, 'fifo-depth': 16, 'fb-mode': mode };
    const CONSTANT = constants(props);
    await using rig = await startRig({ props });
    const { qt, pci, regs, fb } = rig;
    const fbSize = fbBarSize(geo);
    const r = rng(SEED);
    const int = (n: number): number => Math.floor(r() * n);
    const rand32 = (): number => (int(0x10000) * 0x10000 + int(0x10000)) >>> 0;
    const sizes = [1, 2, 4, 8] as const;
    let fbWrites = 0n; // model of FB_WRITE_ATTEMPTS
    const violations: string[] = [];
    const note = (s: string): void => {
      if (violations.length < 20) violations.push(s);
    };
    const stats = { bar0r: 0, bar0w: 0, bar2r: 0, bar2w: 0, cfgr: 0, cfgw: 0, reset: 0, steps: 0 };

    for (let done = 0; done < OPS; ) {
      if (r() < 0.5) {
        await qt.clockStep(int(3_000_000));
        stats.steps++;
      }
      let frame = await rig.rd64('FRAME_NUMBER');
      const lines: string[] = [];
      const checks: Array<Check | undefined> = [];
      const push = (line: string, check?: Check): void => {
        lines.push(line);
        checks.push(check);
      };
      for (let i = 0; i < PER_BATCH && done < OPS; i++, done++) {
        const p = r();
        if (p < 0.35) {
          // BAR0 read
          const size = sizes[int(4)]!;
          const off = int(BAR.regsSize - size + 1);
          stats.bar0r++;
          push(qcmd.read(size, regs + off), (reply) => {
            const v = BigInt(reply);
            const where = `BAR0+0x${off.toString(16)}/${size}`;
            if (size === 1 || size === 2 || (size === 4 && off % 4 !== 0)) return v === 0n ? undefined : `${where} read 0x${v.toString(16)}, want 0`;
            if (size === 4 && CONSTANT.has(off)) return v === BigInt(CONSTANT.get(off)!) ? undefined : `${where} read 0x${v.toString(16)}, want 0x${CONSTANT.get(off)!.toString(16)}`;
            if (size === 4 && !DEFINED.has(off)) return v === 0n ? undefined : `${where} (undefined) read 0x${v.toString(16)}`;
            return undefined;
          });
        } else if (p < 0.55) {
          // BAR0 write; never sets CONTROL.RESET by accident (bit 31 of byte 0x00F)
          const size = sizes[int(4)]!;
          const off = int(BAR.regsSize - size + 1);
          let v = size === 8 ? (BigInt(rand32()) << 32n) | BigInt(rand32()) : BigInt(rand32()) & ((1n << BigInt(8 * size)) - 1n);
          if (off <= 0x00f && off + size > 0x00f) v &= ~(1n << BigInt((0x00f - off) * 8 + 7));
          stats.bar0w++;
          push(qcmd.write(size, regs + off, v));
        } else if (p < 0.75) {
          // BAR2 read, naturally aligned, checked against the current frame
          const size = sizes[int(4)]!;
          const off = int(fbSize / size) * size;
          const f = frame;
          stats.bar2r++;
          push(qcmd.read(size, fb + off), (reply) => {
            const want = Buffer.from(expectedFbBytes(f, geo, off, 8)).readBigUInt64LE(0) & ((1n << BigInt(8 * size)) - 1n);
            return BigInt(reply) === want ? undefined : `BAR2+0x${off.toString(16)}/${size} frame ${f}: got 0x${BigInt(reply).toString(16)}, want 0x${want.toString(16)}`;
          });
        } else if (p < 0.85) {
          // BAR2 write, naturally aligned: ignored, counted once
          const size = sizes[int(4)]!;
          const off = int(fbSize / size) * size;
          stats.bar2w++;
          fbWrites++;
          push(qcmd.write(size, fb + off, BigInt(rand32())));
        } else if (p < 0.95) {
          // config read anywhere in the legacy 256 bytes
          const off = int(256);
          const size = ([1, 2, 4] as const)[int(3)]!;
          const aligned = off & ~(size - 1);
          stats.cfgr++;
          const sel = (0x8000_0000 | (pci.addr.slot << 11) | (pci.addr.fn << 8) | (aligned & 0xfc)) >>> 0;
          push(qcmd.out(4, 0xcf8, sel));
          push(qcmd.in(size, 0xcfc + (aligned & 3)));
        } else if (p < 0.99) {
          // config write to registers that cannot unmap the device
          const choices: Array<[number, 1 | 2 | 4]> = [[0x00, 4], [0x08, 4], [0x0c, 1], [0x0d, 1], [0x0f, 1], [0x06, 2], [0x2c, 4], [0x3c, 1], [0x3d, 1], [0x3e, 2], [0x14, 4], [0x1c, 4], [0x20, 4], [0x24, 4]];
          const [off, size] = choices[int(choices.length)]!;
          const sel = (0x8000_0000 | (pci.addr.slot << 11) | (pci.addr.fn << 8) | (off & 0xfc)) >>> 0;
          stats.cfgw++;
          push(qcmd.out(4, 0xcf8, sel));
          push(qcmd.out(size, 0xcfc + (off & 3), size === 4 ? rand32() : rand32() & (size === 2 ? 0xffff : 0xff)));
        } else {
          stats.reset++;
          push(qcmd.write(4, regs + REG.CONTROL, CONTROL.RESET));
          fbWrites = 0n;
          frame = 0n;
        }
      }
      const replies = await qt.batch(lines);
      replies.forEach((rep, i) => {
        const bad = checks[i]?.(rep);
        if (bad) note(bad);
      });
      expect(qt.alive, 'QEMU died during the fuzz').toBe(true);
    }

    // Still alive and answering, identity intact
    expect(violations, `stats ${JSON.stringify(stats)}`).toEqual([]);
    expect(await qt.qmp!.execute<{ status: string }>('query-status')).toMatchObject({ status: 'running' });
    expect(await pci.vendorId()).toBe(PCI_ID.vendorId);
    expect(await pci.deviceId()).toBe(PCI_ID.deviceId);
    expect(await rig.rd32('ID')).toBe(ID_MAGIC);
    expect(await rig.rd64('FB_WRITE_ATTEMPTS')).toBe(fbWrites);
    expect(await rig.qomU64('fb-write-attempts')).toBe(fbWrites);
    // unused BARs stay unimplemented; used ones keep their size; re-map and use
    const bars = await pci.sizeBars();
    expect(bars.map((b) => [b.index, b.size])).toEqual([[0, BAR.regsSize], [2, fbSize]]);
    const mapped = await pci.mapBars({ base: 0xd000_0000 });
    expect((await pci.read16(PCI_CFG.COMMAND)) & (PCI_COMMAND.MEMORY | PCI_COMMAND.MASTER)).toBe(PCI_COMMAND.MEMORY | PCI_COMMAND.MASTER);
    const regs2 = mapped.get(0)!.addr;
    const fb2 = mapped.get(2)!.addr;
    expect(await qt.readl(regs2 + REG.ID)).toBe(ID_MAGIC);
    expect(await qt.readl(regs)).not.toBe(ID_MAGIC); // old address no longer decodes (unassigned reads 0)
    const frame = await qt.readq(regs2 + REG.FRAME_NUMBER);
    expect(Buffer.compare(await qt.b64read(fb2, fbSize), Buffer.from(expectedFbBytes(frame, geo, 0, fbSize)))).toBe(0);
    // every operation kind was exercised
    for (const [k, v] of Object.entries(stats)) expect(v, k).toBeGreaterThan(0);
  });
});
