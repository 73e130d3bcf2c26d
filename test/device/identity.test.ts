/**
 * SPEC §1–§3, §8: PCI identity, BARs, the register map at reset, access rules, CONTROL and
 * CONTROL.RESET. No guest: config space through 0xCF8/0xCFC, registers through qtest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PCI_CFG, PCI_CAP_ID } from '../../orchestrator/src/qtest/pci.ts';
import {
  BAR,
  CAPS,
  CONTROL,
  DEFAULT_PROPS,
  FB_MODE,
  FORMAT_RGB24,
  ID_MAGIC,
  INT,
  PCI_ID,
  REG,
  SPEC_VERSION,
  expectedCaps,
  effectiveStride,
  fbBarSize,
  fbBytes,
  REG64,
  type DeviceProps,
  type RegName,
} from '../../orchestrator/src/device/spec.ts';
import { BUILD_TIMEOUT_MS, qemuBinary, startRig, type HilboxRig } from './helpers.ts';

beforeAll(async () => {
  await qemuBinary();
}, BUILD_TIMEOUT_MS);

/** Expected value of every 32-bit word of BAR0 right after reset at device clock 0. */
function resetRegisterMap(p: DeviceProps): Map<number, number> {
  const m = new Map<number, number>();
  m.set(REG.ID, ID_MAGIC);
  m.set(REG.VERSION, SPEC_VERSION);
  m.set(REG.CAPS, expectedCaps(p));
  m.set(REG.CONTROL, 0);
  m.set(REG.WIDTH, p.width);
  m.set(REG.HEIGHT, p.height);
  m.set(REG.STRIDE, effectiveStride(p));
  m.set(REG.FORMAT, FORMAT_RGB24);
  m.set(REG.FPS, p.fps);
  m.set(REG.FB_BYTES, fbBytes(p));
  m.set(REG.FB_MODE, FB_MODE[p['fb-mode']]);
  m.set(REG.MMIO_LATENCY_NS, p['mmio-latency-ns']);
  m.set(REG.EV_FIFO_DEPTH, p['fifo-depth']);
  m.set(REG.EV_RATE_HZ, p['mouse-rate-hz']);
  m.set(REG.EV_BUNDLE, p['mouse-bundle']);
  // reset renders frame 0, and that render counts (SPEC §3: FRAME_SEQ 2, FRAMES_PRODUCED 1)
  m.set(REG.FRAME_SEQ, 2);
  m.set(REG.FRAMES_PRODUCED, 1);
  // Everything else — counters, FIFO, head, interrupt registers, write-only and undefined
  // offsets, DEVICE_CLOCK at clock 0 — reads 0.
  return m;
}

function hex(v: number): string {
  return '0x' + (v >>> 0).toString(16).padStart(8, '0');
}

async function readAllWords(rig: HilboxRig): Promise<number[]> {
  const lines = Array.from({ length: BAR.regsSize / 4 }, (_, i) => `readl 0x${(rig.regs + 4 * i).toString(16)}`);
  return (await rig.qt.batch(lines)).map((r) => Number(r) >>> 0);
}

/** Compares a whole BAR0 dump with the expected map; returns readable mismatches. */
function diffMap(words: number[], expected: Map<number, number>): string[] {
  const bad: string[] = [];
  words.forEach((w, i) => {
    const want = expected.get(4 * i) ?? 0;
    if (w !== want >>> 0) {
      const name =
        Object.entries(REG).find(([, o]) => o === 4 * i)?.[0] ??
        Object.entries(REG).find(([n, o]) => o + 4 === 4 * i && REG64.has(n as RegName))?.[0]?.concat('.hi') ??
        'undefined';
      bad.push(`BAR0+0x${(4 * i).toString(16).padStart(3, '0')} (${name}): got ${hex(w)}, want ${hex(want)}`);
    }
  });
  return bad;
}

describe('default configuration', () => {
  let rig: HilboxRig;
  beforeAll(async () => {
    rig = await startRig();
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('has the PCI identity of SPEC §1', async () => {
    const { pci } = rig;
    expect(await pci.vendorId()).toBe(PCI_ID.vendorId);
    expect(await pci.deviceId()).toBe(PCI_ID.deviceId);
    expect(await pci.revision()).toBe(PCI_ID.revision);
    expect(hex(await pci.classCode())).toBe(hex(PCI_ID.classCode));
    expect(await pci.read16(PCI_CFG.SUBSYSTEM_VENDOR_ID)).toBe(PCI_ID.subsystemVendorId);
    expect(await pci.read16(PCI_CFG.SUBSYSTEM_ID)).toBe(PCI_ID.subsystemId);
    expect(await pci.read8(PCI_CFG.INTERRUPT_PIN)).toBe(PCI_ID.interruptPin);
    expect((await pci.read8(PCI_CFG.HEADER_TYPE)) & 0x7f).toBe(0);
  });

  it('has BAR0 (4 KiB mem32) and BAR2 (prefetchable mem32 framebuffer) only', async () => {
    const bars = await rig.pci.sizeBars();
    expect(bars.map((b) => ({ ...b, addr: 0 }))).toEqual([
      { index: 0, kind: 'mem', is64: false, prefetchable: false, size: BAR.regsSize, addr: 0 },
      { index: 2, kind: 'mem', is64: false, prefetchable: true, size: fbBarSize(DEFAULT_PROPS), addr: 0 },
    ]);
    expect(fbBarSize(DEFAULT_PROPS)).toBe(8 << 20);
  });

  it('offers a 64-bit single-vector MSI capability', async () => {
    const msi = await rig.pci.msiCapability();
    expect(msi).toBeDefined();
    expect(msi).toMatchObject({ is64: true, multipleMessageCapable: 0 });
    expect(await rig.pci.findCapability(PCI_CAP_ID.MSIX)).toBeUndefined();
  });

  it('reads the whole register block as SPEC §3 says at reset', async () => {
    expect(await rig.qt.clock()).toBe(0n);
    const words = await readAllWords(rig);
    expect(diffMap(words, resetRegisterMap(DEFAULT_PROPS))).toEqual([]);
    expect(hex(words[REG.CAPS / 4]!)).toBe(hex(CAPS.FB | CAPS.MOUSE | CAPS.MSI | CAPS.INPUT | CAPS.GEN));
    expect(Buffer.from(await rig.qt.read(rig.regs, 4)).toString('latin1')).toBe('HBOX');
  });

  it('counts the frame rendered at reset: FRAME_SEQ = 2, FRAMES_PRODUCED = 1 (SPEC §3)', async () => {
    expect({ FRAME_SEQ: await rig.rd32('FRAME_SEQ'), FRAMES_PRODUCED: await rig.rd64('FRAMES_PRODUCED') }).toEqual({ FRAME_SEQ: 2, FRAMES_PRODUCED: 1n });
    expect(await rig.qomU64('frames-produced')).toBe(1n);
  });

  it('returns 0 for 1- and 2-byte and misaligned accesses', async () => {
    const { qt, regs } = rig;
    expect.soft(await qt.readb(regs + REG.ID)).toBe(0);
    expect.soft(await qt.readb(regs + REG.ID + 1)).toBe(0);
    expect.soft(await qt.readw(regs + REG.ID)).toBe(0);
    expect.soft(await qt.readw(regs + REG.VERSION + 2)).toBe(0);
    expect.soft(await qt.readl(regs + REG.ID + 2)).toBe(0);
    expect.soft(await qt.readq(regs + REG.FRAME_NUMBER + 4)).toBe(0n); // misaligned 64-bit
    expect.soft(await qt.readq(regs + REG.DEVICE_CLOCK + 2)).toBe(0n);
  });

  it('returns 0 for 8-byte reads of 32-bit registers ("accesses of other sizes")', async () => {
    const { qt, regs } = rig;
    expect.soft(await qt.readq(regs + REG.ID)).toBe(0n);
    expect.soft(await qt.readq(regs + REG.WIDTH)).toBe(0n);
    expect.soft(await qt.readq(regs + REG.EV_HEAD)).toBe(0n);
  });

  it('ignores 8-byte writes that cover 32-bit registers ("accesses of other sizes")', async () => {
    const { qt, regs } = rig;
    await qt.writeq(regs + 0x008, 1n << 32n); // upper half would be CONTROL = EV_ENABLE
    expect.soft(await rig.rd32('CONTROL'), 'CONTROL after writeq(0x008, 1 << 32)').toBe(0);
    await qt.writeq(regs + REG.INT_STATUS, 3n << 32n); // upper half would be INT_MASK = 3
    expect.soft(await rig.rd32('INT_MASK'), 'INT_MASK after writeq(0x100, 3 << 32)').toBe(0);
    await rig.wr32('CONTROL', 0);
    await rig.wr32('INT_MASK', 0);
  });

  it('ignores writes to read-only, undefined and badly sized targets', async () => {
    const { qt, regs } = rig;
    const targets = [REG.ID, REG.VERSION, REG.CAPS, REG.WIDTH, REG.HEIGHT, REG.STRIDE, REG.FORMAT, REG.FPS, REG.FB_BYTES, REG.FB_MODE,
      REG.MMIO_LATENCY_NS, REG.FRAME_SEQ, REG.FRAME_NUMBER, REG.FRAME_NUMBER + 4, REG.DEVICE_CLOCK, REG.FB_WRITE_ATTEMPTS,
      REG.EV_COUNT, REG.EV_FIFO_DEPTH, REG.EV_RATE_HZ, REG.EV_BUNDLE, REG.EV_PRODUCED, REG.EV_DROPPED, REG.FEED_ERRORS,
      REG.EV_HEAD, REG.EV_HEAD + 20, REG.INT_STATUS, 0x034, 0x060, 0x0ac, 0x0dc, 0x10c, 0x800, 0xffc];
    await qt.batch(targets.map((o) => `writel 0x${(regs + o).toString(16)} 0xffffffff`));
    // CONTROL and INT_MASK written with bytes/words/quads: ignored
    await qt.writeb(regs + REG.CONTROL, 1);
    await qt.writew(regs + REG.INT_MASK, 3);
    await qt.writeq(regs + REG.CONTROL, 1n);
    await qt.writel(regs + REG.CONTROL + 1, 1);
    expect(diffMap(await readAllWords(rig), resetRegisterMap(DEFAULT_PROPS))).toEqual([]);
  });

  it('CONTROL keeps only EV_ENABLE; INT_MASK keeps only bits 0..1', async () => {
    await rig.wr32('CONTROL', 0x7fff_ffff);
    expect(hex(await rig.rd32('CONTROL'))).toBe(hex(CONTROL.EV_ENABLE));
    await rig.wr32('CONTROL', 0);
    expect(await rig.rd32('CONTROL')).toBe(0);
    await rig.wr32('INT_MASK', 0xffff_ffff);
    expect(hex(await rig.rd32('INT_MASK'))).toBe(hex(INT.EV_READY | INT.EV_OVERFLOW));
    await rig.wr32('INT_MASK', INT.EV_OVERFLOW);
    expect(await rig.rd32('INT_MASK')).toBe(INT.EV_OVERFLOW);
    await rig.wr32('INT_MASK', 0);
    expect(await rig.rd32('INT_MASK')).toBe(0);
  });

  it('reads 64-bit registers atomically or as a latched low/high pair', async () => {
    const { qt } = rig;
    await qt.clockSet(5_000_000_123n); // high word 1
    expect(await rig.rd64('DEVICE_CLOCK')).toBe(5_000_000_123n);
    expect(await rig.rd64pair('DEVICE_CLOCK')).toBe(5_000_000_123n);
    const lo = (await rig.rd32('DEVICE_CLOCK')) >>> 0;
    expect(lo).toBe(Number(5_000_000_123n & 0xffff_ffffn));
    await qt.clockStep(5_000_000_000n); // high word becomes 2
    expect(await rig.rd32(REG.DEVICE_CLOCK + 4)).toBe(1); // latched with the low read
    expect(await rig.rd64('DEVICE_CLOCK')).toBe(10_000_000_123n);
    expect(await rig.rd64pair('DEVICE_CLOCK')).toBe(10_000_000_123n);
    // FRAME_NUMBER read both ways agrees (fps 50: frame 500 at 10 s, once rendered)
    await rig.settle();
    expect(await rig.rd64('FRAME_NUMBER')).toBe(500n);
    expect(await rig.rd64pair('FRAME_NUMBER')).toBe(500n);
  });

  it('CONTROL.RESET restores every register, restarts the device clock, keeps config space', async () => {
    const { qt } = rig;
    await rig.wr32('INT_MASK', 3);
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await qt.clockStep(50_000_000n); // generator: 50 events; frames advance
    await qt.writeb(rig.fb, 0);
    expect(await rig.rd64('EV_PRODUCED')).toBeGreaterThan(0n);
    expect(await rig.rd64('FB_WRITE_ATTEMPTS')).toBe(1n);
    const cmdBefore = await rig.pci.read16(PCI_CFG.COMMAND);
    const barsBefore = [await rig.pci.barAddress(0), await rig.pci.barAddress(2)];

    await rig.wr32('CONTROL', CONTROL.RESET);
    expect(diffMap(await readAllWords(rig), resetRegisterMap(DEFAULT_PROPS))).toEqual([]);
    expect(await rig.pci.read16(PCI_CFG.COMMAND)).toBe(cmdBefore);
    expect([await rig.pci.barAddress(0), await rig.pci.barAddress(2)]).toEqual(barsBefore);
    for (const p of ['frame-number', 'fb-write-attempts', 'events-produced', 'events-delivered', 'events-dropped', 'feed-errors']) {
      expect(await rig.qomU64(p), p).toBe(0n);
    }
    const framesAtReset = 1n; // frame 0, rendered by the reset
    expect(await rig.qomU64('frames-produced')).toBe(framesAtReset);
    // device clock restarts at 0 and runs with the virtual clock; frame 1 at 20 ms
    await rig.clockStep(19_999_999n);
    expect(await rig.rd64('DEVICE_CLOCK')).toBe(19_999_999n);
    expect(await rig.rd64('FRAME_NUMBER')).toBe(0n);
    await rig.clockStep(1n); // frame 1, once its render is published (SPEC §4.1)
    expect(await rig.rd64('FRAME_NUMBER')).toBe(1n);
    expect(await rig.rd64('FRAME_TIMESTAMP')).toBe(20_000_000n);
    expect(await rig.rd64('FRAMES_PRODUCED')).toBe(framesAtReset + 1n);
    // generator stopped by reset: nothing produced
    expect(await rig.rd64('EV_PRODUCED')).toBe(0n);
  });
});

describe('configured properties', () => {
  const configs: Array<Partial<DeviceProps>> = [
    { width: 640, height: 480, stride: 2048, fps: 60, 'fb-mode': 'mmio', 'mmio-latency-ns': 250, 'fifo-depth': 7, 'mouse-rate-hz': 125, 'mouse-bundle': 64, msi: false, input: false },
    { width: 16, height: 16, fps: 1000, 'fifo-depth': 65536, 'mouse-rate-hz': 0, 'mouse-bundle': 1 },
    { width: 8192, height: 16, stride: 65536, fps: 1, 'mouse-rate-hz': 8000 },
  ];
  for (const cfg of configs) {
    it(`reflects ${JSON.stringify(cfg)} in config space and registers`, async () => {
      const props: DeviceProps = { ...DEFAULT_PROPS, ...cfg };
      await using rig = await startRig({ props: cfg });
      const bars = await rig.pci.sizeBars();
      expect(bars.map((b) => [b.index, b.size, b.prefetchable, b.is64])).toEqual([
        [0, BAR.regsSize, false, false],
        [2, fbBarSize(props), props['fb-mode'] === 'direct', false],
      ]);
      expect((await rig.pci.msiCapability()) !== undefined).toBe(props.msi);
      expect(diffMap(await readAllWords(rig), resetRegisterMap(props))).toEqual([]);
    });
  }
});
