/**
 * SPEC §11: faults on command, under qtest (no guest).
 *
 *  - `link-down`: BAR0, BAR2 (both modes) and config reads are all ones, writes are dropped,
 *    the INTx line drops and comes back with the link; `fault`/`faults-injected` read back;
 *    a reset does not clear a fault.
 *  - `surprise-removal`: the device leaves its native hot-plug slot `fault-delay-ms` later
 *    without an eject request (DEVICE_DELETED; the port's presence detect and link-active
 *    clear, presence-detect-changed and link-state-changed are set, both write-one-to-clear,
 *    its power control untouched); `none` before the delay
 *    cancels it; a device outside such a slot refuses the fault, naming what is missing.
 *  - interrupt faults: `irq-lost` (status set, no line; raised when cleared), `spurious-irq`
 *    (pulses with nothing in INT_STATUS), `irq-storm` (EV_READY stuck through ACK);
 *    `fifo-burst` (N records at once, one-shot), `mmio-spike` accepted with its parameters
 *    (its stall is a vCPU's: lock.test.ts measures it with a real TCG vCPU);
 *  - frame faults: `frame-stall`, `frame-stall-odd`, `bit-flip` in both fb modes.
 *  - bad values are refused with the SPEC's messages and change nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { QtestSession } from '../../orchestrator/src/qtest/client.ts';
import { PciDevice, PCI_CFG, q35IntxGsi, scanBus } from '../../orchestrator/src/qtest/pci.ts';
import { CONTROL, INT, PCI_ID, expectedFbBytes } from '../../orchestrator/src/device/spec.ts';
import { BUILD_TIMEOUT_MS, DEV_QOM, deviceArg, qemuBinary, startRig, type HilboxRig } from './helpers.ts';

let qemu: string;
beforeAll(async () => {
  qemu = await qemuBinary();
}, BUILD_TIMEOUT_MS);

const NATIVE_HOTPLUG = ['-global', 'ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off'];
const PCI_EXP = { SLTCTL: 0x18, SLTSTA: 0x1a } as const;
const SLTSTA = { PDC: 0x08, PDS: 0x40, DLLSC: 0x100 } as const;
const LNKSTA = { offset: 0x12, DLLLA: 0x2000 } as const;

describe('fault=link-down', () => {
  it('every BAR and config read is all ones, writes are dropped, and the link comes back as it was', async () => {
    for (const mode of ['direct', 'mmio'] as const) {
      await using rig = await startRig({ props: { 'fb-mode': mode, width: 64, height: 48, 'mouse-rate-hz': 0 } });
      const { qt, pci } = rig;
      const qmp = qt.qmp!;
      expect(await qmp.qomGet(DEV_QOM, 'fault')).toBe('none');
      const pixel = await qt.readl(rig.fb);
      await rig.wr32('INT_MASK', INT.EV_READY);

      await qmp.execute('qom-set', { path: DEV_QOM, property: 'fault', value: 'link-down' });
      expect(await qmp.qomGet(DEV_QOM, 'fault')).toBe('link-down');
      expect(await rig.qomU64('faults-injected')).toBe(1n);
      expect(await rig.rd32('ID'), mode).toBe(0xffffffff);
      expect(await rig.rd64('DEVICE_CLOCK')).toBe(0xffffffffffffffffn);
      expect(await qt.readb(rig.fb), `${mode} BAR2 byte`).toBe(0xff);
      expect(await qt.readl(rig.fb + 100), `${mode} BAR2 dword`).toBe(0xffffffff);
      expect(await qt.readq(rig.fb + 8), `${mode} BAR2 qword`).toBe(0xffffffffffffffffn);
      expect(await pci.read16(PCI_CFG.VENDOR_ID), 'config vendor id').toBe(0xffff);
      expect(await pci.read32(PCI_CFG.VENDOR_ID)).toBe(0xffffffff);
      await rig.wr32('INT_MASK', 0); // dropped
      await pci.write16(PCI_CFG.COMMAND, 0); // dropped: memory decoding stays on
      const attempts = await rig.qomU64('fb-write-attempts');
      await qt.writel(rig.fb, 0x12345678);
      expect(await rig.qomU64('fb-write-attempts'), 'a write on a dead link is not an attempt').toBe(attempts);

      await qmp.execute('qom-set', { path: DEV_QOM, property: 'fault', value: 'none' });
      expect(await qmp.qomGet(DEV_QOM, 'fault')).toBe('none');
      expect(await rig.qomU64('faults-injected'), '`none` is not a fault').toBe(1n);
      expect(await pci.read16(PCI_CFG.VENDOR_ID)).toBe(PCI_ID.vendorId);
      expect(await rig.rd32('INT_MASK'), 'the write during link-down was dropped').toBe(INT.EV_READY);
      expect(await qt.readl(rig.fb), `${mode}: the same frame as before`).toBe(pixel);
    }
  });

  it('no interrupt while the link is down; the pending one is raised again when it returns', async () => {
    await using rig = await startRig({ props: { 'mouse-rate-hz': 0 } });
    const { qt } = rig;
    const qmp = qt.qmp!;
    await qt.irqInterceptIn('ioapic');
    const gsi = q35IntxGsi(rig.pci.addr.slot);
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await rig.wr32('INT_MASK', INT.EV_READY);
    await qmp.execute('input-send-event', { events: [{ type: 'rel', data: { axis: 'x', value: 1 } }] });
    expect(qt.irqRaised(gsi)).toBe(true);
    await qmp.execute('qom-set', { path: DEV_QOM, property: 'fault', value: 'link-down' });
    expect(qt.irqRaised(gsi), 'line low on a dead link').toBe(false);
    await qmp.execute('input-send-event', { events: [{ type: 'rel', data: { axis: 'x', value: 1 } }] });
    expect(qt.irqRaised(gsi), 'a new event raises nothing').toBe(false);
    // a reset does not heal the link (§11: a host condition)
    await qmp.execute('system_reset');
    expect(await qmp.qomGet(DEV_QOM, 'fault')).toBe('link-down');
    expect(await rig.pci.read16(PCI_CFG.VENDOR_ID)).toBe(0xffff);
    await qmp.execute('qom-set', { path: DEV_QOM, property: 'fault', value: 'none' });
    expect(await rig.pci.read16(PCI_CFG.VENDOR_ID)).toBe(PCI_ID.vendorId);
  });

  it('starts with the link down when given on the command line: invisible until the link comes up', async () => {
    await using qt = await QtestSession.start({ qemu, args: ['-device', deviceArg({ fault: 'link-down' })] });
    const hilbox = async (): Promise<number> => (await scanBus(qt)).filter((d) => d.vendorId === PCI_ID.vendorId && d.deviceId === PCI_ID.deviceId).length;
    expect(await hilbox(), 'enumeration reads all ones').toBe(0);
    expect(await qt.qmp!.qomGet(DEV_QOM, 'fault')).toBe('link-down');
    await qt.qmp!.execute('qom-set', { path: DEV_QOM, property: 'fault', value: 'none' });
    expect(await hilbox()).toBe(1);
  });
});

describe('fault values and parameters', () => {
  it('refuses an unknown fault and an out-of-range fault-delay-ms with the SPEC messages, changing nothing', async () => {
    await using rig = await startRig({ map: false });
    const qmp = rig.qt.qmp!;
    await expect(qmp.execute('qom-set', { path: DEV_QOM, property: 'fault', value: 'link-dwon' })).rejects.toThrow(
      "hilbox-pci: fault 'link-dwon' is not allowed; allowed: none, link-down, surprise-removal, irq-lost, spurious-irq, irq-storm, fifo-burst, mmio-spike, frame-stall, frame-stall-odd, bit-flip",
    );
    await expect(qmp.execute('qom-set', { path: DEV_QOM, property: 'fault-delay-ms', value: 60001 })).rejects.toThrow(
      "hilbox-pci: property 'fault-delay-ms' 60001 is out of range; allowed 0..60000",
    );
    expect(await qmp.qomGet(DEV_QOM, 'fault')).toBe('none');
    expect(await qmp.qomGet(DEV_QOM, 'fault-delay-ms')).toBe(100);
    expect(await rig.qomU64('faults-injected')).toBe(0n);
    await qmp.execute('qom-set', { path: DEV_QOM, property: 'fault-delay-ms', value: 60000 });
    expect(await qmp.qomGet(DEV_QOM, 'fault-delay-ms')).toBe(60000);
  });

  it('surprise-removal is refused outside a native hot-plug slot, saying what is missing', async () => {
    await using rig = await startRig({ map: false });
    await expect(rig.qt.qmp!.execute('qom-set', { path: DEV_QOM, property: 'fault', value: 'surprise-removal' })).rejects.toThrow(
      /fault 'surprise-removal' needs the device in a PCIe slot with native hot-plug .* but its hot-plug handler is/,
    );
    expect(await rig.qomU64('faults-injected')).toBe(0n);
    expect(await rig.pci.read16(PCI_CFG.VENDOR_ID)).toBe(PCI_ID.vendorId);
  });

  it('surprise-removal at start-up is refused (the device is not running yet)', async () => {
    await expect(startRig({ props: { fault: 'surprise-removal' } as never, map: false })).rejects.toThrow(/needs a running device/);
  });
});

/** QEMU with the device in a native hot-plug root port (as hilbox runs it), under qtest. */
async function slotted(extra: string[] = []): Promise<{ qt: QtestSession; port: PciDevice; exp: number }> {
  const qt = await QtestSession.start({
    qemu,
    args: [...NATIVE_HOTPLUG, '-device', 'pcie-root-port,id=rp0,chassis=1,slot=1', '-device', `${deviceArg({ 'mouse-rate-hz': 0 })},bus=rp0`, ...extra],
  });
  const rp = (await scanBus(qt)).find((d) => d.vendorId === 0x1b36 && d.deviceId === 0x000c);
  if (!rp) throw new Error('no pcie-root-port on bus 0');
  const port = new PciDevice(qt, rp);
  const exp = await port.findCapability(0x10);
  if (exp === undefined) throw new Error('root port without a PCIe capability');
  return { qt, port, exp };
}

describe('fault=surprise-removal', () => {
  it('the device leaves its slot fault-delay-ms later, with no eject request', async () => {
    const { qt, port, exp } = await slotted();
    await using _ = qt;
    const qmp = qt.qmp!;
    expect((await port.read16(exp + PCI_EXP.SLTSTA)) & SLTSTA.PDS, 'card present').toBe(SLTSTA.PDS);
    const ctl = await port.read16(exp + PCI_EXP.SLTCTL);
    await qmp.execute('qom-set', { path: DEV_QOM, property: 'fault-delay-ms', value: 50 });
    const deleted = qmp.waitForEvent('DEVICE_DELETED', (e) => e.data?.['device'] === 'hb0', 10_000);
    await qmp.execute('qom-set', { path: DEV_QOM, property: 'fault', value: 'surprise-removal' });
    expect(await qmp.qomGet(DEV_QOM, 'fault')).toBe('surprise-removal');
    await qt.clockStep(40_000_000n);
    expect(await qmp.qomGet(DEV_QOM, 'fault'), 'still in the slot before the delay').toBe('surprise-removal');
    await qt.clockStep(20_000_000n);
    await deleted;
    const sta = await port.read16(exp + PCI_EXP.SLTSTA);
    expect(sta & SLTSTA.PDS, 'presence detect clear').toBe(0);
    expect(sta & SLTSTA.PDC, 'presence detect changed').toBe(SLTSTA.PDC);
    expect(sta & SLTSTA.DLLSC, 'link state changed (what pciehp listens to when the slot has a button)').toBe(SLTSTA.DLLSC);
    expect((await port.read16(exp + LNKSTA.offset)) & LNKSTA.DLLLA, 'link no longer active').toBe(0);
    await port.write16(exp + PCI_EXP.SLTSTA, SLTSTA.DLLSC | SLTSTA.PDC); // the guest acknowledges both
    expect((await port.read16(exp + PCI_EXP.SLTSTA)) & (SLTSTA.DLLSC | SLTSTA.PDC), 'both write-one-to-clear').toBe(0);
    expect(await port.read16(exp + PCI_EXP.SLTCTL), 'slot power and indicators as the guest left them').toBe(ctl);
    const peripherals = await qmp.execute<Array<{ name: string }>>('qom-list', { path: '/machine/peripheral' });
    expect(peripherals.map((p) => p.name)).not.toContain('hb0');
  });

  it('`none` before the delay cancels the removal', async () => {
    const { qt, port, exp } = await slotted();
    await using _ = qt;
    const qmp = qt.qmp!;
    await qmp.execute('qom-set', { path: DEV_QOM, property: 'fault', value: 'surprise-removal' });
    await qt.clockStep(50_000_000n);
    await qmp.execute('qom-set', { path: DEV_QOM, property: 'fault', value: 'none' });
    await qt.clockStep(1_000_000_000n);
    expect(await qmp.qomGet(DEV_QOM, 'fault')).toBe('none');
    expect(BigInt(await qmp.qomGet<number>(DEV_QOM, 'faults-injected'))).toBe(1n);
    expect((await port.read16(exp + PCI_EXP.SLTSTA)) & SLTSTA.PDS, 'card still present').toBe(SLTSTA.PDS);
  });
});

describe('interrupt and FIFO faults', () => {
  const set = (rig: { qt: QtestSession }, property: string, value: string | number) => rig.qt.qmp!.execute('qom-set', { path: DEV_QOM, property, value });
  const event = (rig: { qt: QtestSession }) => rig.qt.qmp!.execute('input-send-event', { events: [{ type: 'rel', data: { axis: 'x', value: 1 } }] });

  it('irq-lost: INT_STATUS set, the line stays low; clearing the fault raises it', async () => {
    await using rig = await startRig({ props: { 'mouse-rate-hz': 0 } });
    const { qt } = rig;
    await qt.irqInterceptIn('ioapic');
    const gsi = q35IntxGsi(rig.pci.addr.slot);
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await rig.wr32('INT_MASK', INT.EV_READY);
    await set(rig, 'fault', 'irq-lost');
    await event(rig);
    expect(await rig.rd32('INT_STATUS')).toBe(INT.EV_READY);
    expect(await rig.rd32('EV_COUNT')).toBe(1);
    expect(qt.irqRaised(gsi), 'lost on the way').toBe(false);
    await set(rig, 'fault', 'none');
    expect(qt.irqRaised(gsi), 'pending interrupt raised when the fault clears').toBe(true);
  });

  it('spurious-irq: the line pulses every fault-period-us with INT_STATUS 0', async () => {
    await using rig = await startRig({ props: { 'mouse-rate-hz': 0 } });
    const { qt } = rig;
    await qt.irqInterceptIn('ioapic');
    const gsi = q35IntxGsi(rig.pci.addr.slot);
    await set(rig, 'fault-period-us', 1000);
    await set(rig, 'fault', 'spurious-irq');
    const before = qt.irqLog.filter((c) => c.line === gsi && c.raised).length;
    await qt.clockStep(5_500_000n);
    const pulses = qt.irqLog.filter((c) => c.line === gsi && c.raised).length - before;
    expect(pulses, 'one pulse per millisecond').toBe(5);
    expect(qt.irqRaised(gsi), 'a pulse ends low').toBe(false);
    expect(await rig.rd32('INT_STATUS')).toBe(0);
    await set(rig, 'fault', 'none');
    await qt.clockStep(5_000_000n);
    expect(qt.irqLog.filter((c) => c.line === gsi && c.raised).length - before, 'no pulse after it clears').toBe(5);
  });

  it('irq-storm: EV_READY stuck whatever the FIFO holds and ACK does', async () => {
    await using rig = await startRig({ props: { 'mouse-rate-hz': 0 } });
    const { qt } = rig;
    await qt.irqInterceptIn('ioapic');
    const gsi = q35IntxGsi(rig.pci.addr.slot);
    await rig.wr32('INT_MASK', INT.EV_READY);
    expect(qt.irqRaised(gsi)).toBe(false);
    await set(rig, 'fault', 'irq-storm');
    expect(await rig.rd32('EV_COUNT')).toBe(0);
    expect(await rig.rd32('INT_STATUS')).toBe(INT.EV_READY);
    expect(qt.irqRaised(gsi), 'asserted with an empty FIFO').toBe(true);
    await rig.wr32('INT_ACK', INT.EV_READY);
    expect(await rig.rd32('INT_STATUS'), 'ACK does not clear it').toBe(INT.EV_READY);
    expect(qt.irqRaised(gsi)).toBe(true);
    await set(rig, 'fault', 'none');
    expect(await rig.rd32('INT_STATUS')).toBe(0);
    expect(qt.irqRaised(gsi)).toBe(false);
  });

  it('fifo-burst: fault-burst records at once, overflow counted, then the fault reads none', async () => {
    await using rig = await startRig({ props: { 'mouse-rate-hz': 0, 'fifo-depth': 16 } });
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await set(rig, 'fault-burst', 20);
    await set(rig, 'fault', 'fifo-burst');
    expect(await rig.qt.qmp!.qomGet(DEV_QOM, 'fault'), 'one-shot').toBe('none');
    expect(await rig.qomU64('faults-injected')).toBe(1n);
    expect(await rig.rd32('EV_COUNT')).toBe(16);
    expect(await rig.qomU64('events-dropped'), 'overflow counted (§5)').toBe(4n);
    const recs = await rig.drain();
    expect(recs.map((r) => Number(r.seq))).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(recs.every((r) => r.dx === 1 && r.dy === 0)).toBe(true);
  });

  it('the parameters refuse out-of-range values with the SPEC message', async () => {
    await using rig = await startRig({ map: false });
    for (const [name, bad, range] of [['fault-period-us', 9, '10..1000000'], ['fault-burst', 0, '1..65536'], ['fault-every', 1000001, '1..1000000'], ['fault-latency-us', 0, '1..100000'], ['fault-rate', 0, '1..1000000']] as const) {
      await expect(set(rig, name, bad)).rejects.toThrow(`hilbox-pci: property '${name}' ${bad} is out of range; allowed ${range}`);
    }
    await set(rig, 'fault-every', 7);
    await set(rig, 'fault', 'mmio-spike');
    expect(await rig.qt.qmp!.qomGet(DEV_QOM, 'fault')).toBe('mmio-spike');
    expect(await rig.rd32('ID'), 'qtest accesses are not a vCPU\'s: not delayed, and the link is up').not.toBe(0xffffffff);
  });
});

describe('frame faults', () => {
  const set = (rig: { qt: QtestSession }, property: string, value: string | number) => rig.qt.qmp!.execute('qom-set', { path: DEV_QOM, property, value });
  const FPS = 50;
  const PERIOD = 20_000_000n;
  /** Lets the render thread finish what it was handed (direct mode renders off the main loop). */
  const settle = async (rig: HilboxRig) => {
    for (let i = 0; i < 200 && (await rig.rd32('FRAME_SEQ')) & 1; i++) await new Promise((r) => setTimeout(r, 5));
  };
  /**
   * Waits until frame `n` is published (FRAME_NUMBER n, FRAME_SEQ even). FRAME_SEQ even alone is
   * not enough: the render thread may not have started the frame the clock step handed it.
   */
  const published = async (rig: HilboxRig, n: bigint) => {
    for (let i = 0; i < 400 && ((await rig.rd64('FRAME_NUMBER')) !== n || (await rig.rd32('FRAME_SEQ')) & 1); i++) await new Promise((r) => setTimeout(r, 5));
  };

  for (const mode of ['direct', 'mmio'] as const) {
    it(`frame-stall (${mode}): nothing new is published while the clock runs; clearing it shows the current frame`, async () => {
      await using rig = await startRig({ props: { 'fb-mode': mode, width: 64, height: 48, fps: FPS, 'mouse-rate-hz': 0 } });
      await rig.qt.clockStep(3n * PERIOD);
      await published(rig, 3n);
      const n0 = await rig.rd64('FRAME_NUMBER');
      const p0 = await rig.rd64('FRAMES_PRODUCED');
      await set(rig, 'fault', 'frame-stall');
      await rig.qt.clockStep(5n * PERIOD);
      await settle(rig);
      expect(await rig.rd64('FRAME_NUMBER')).toBe(n0);
      expect(await rig.rd64('FRAMES_PRODUCED')).toBe(p0);
      expect((await rig.rd32('FRAME_SEQ')) & 1, 'even: the last frame is whole').toBe(0);
      expect(Buffer.compare(await rig.qt.b64read(rig.fb, rig.geo.stride), Buffer.from(expectedFbBytes(n0, rig.geo, 0, rig.geo.stride)))).toBe(0);
      await set(rig, 'fault', 'none');
      await published(rig, n0 + 5n); // the current frame, rendered by the thread
      expect(await rig.rd64('FRAME_NUMBER'), 'the current frame, numbers skipped').toBe(n0 + 5n);
    });
  }

  it('frame-stall-odd: FRAME_SEQ stays odd and nothing is published; clearing it makes it even again', async () => {
    await using rig = await startRig({ props: { width: 64, height: 48, fps: FPS, 'mouse-rate-hz': 0 } });
    await rig.qt.clockStep(2n * PERIOD);
    await published(rig, 2n);
    const produced = await rig.rd64('FRAMES_PRODUCED');
    await set(rig, 'fault', 'frame-stall-odd');
    await rig.qt.clockStep(4n * PERIOD);
    expect((await rig.rd32('FRAME_SEQ')) & 1, 'a writer that died mid-frame').toBe(1);
    expect(await rig.rd64('FRAMES_PRODUCED')).toBe(produced);
    await set(rig, 'fault', 'none');
    // clearing makes FRAME_SEQ even at once and hands the current frame (6) to the render thread
    await published(rig, 6n);
    const seq = await rig.rd32('FRAME_SEQ');
    expect(seq & 1).toBe(0);
    expect(seq).toBe(Number(2n * (await rig.rd64('FRAMES_PRODUCED'))));
    expect(await rig.rd64('FRAME_NUMBER')).toBe(6n);
  });

  for (const mode of ['direct', 'mmio'] as const) {
    it(`bit-flip (${mode}): about fault-rate per million bytes of each frame differ from the pixel function by one bit`, async () => {
      await using rig = await startRig({ props: { 'fb-mode': mode, width: 64, height: 48, fps: FPS, 'mouse-rate-hz': 0 } });
      await set(rig, 'fault-rate', 10_000); // 1 %: 92 of the 9216 visible bytes
      await set(rig, 'fault', 'bit-flip');
      // rig.settle: FRAME_SEQ even is not enough here, the render thread may not have picked
      // the frame up yet (FRAME_SEQ goes odd when it starts), so wait for the clock's frame
      await rig.clockStep(PERIOD);
      const n = await rig.rd64('FRAME_NUMBER');
      const len = rig.geo.stride * rig.geo.height;
      const got = await rig.qt.b64read(rig.fb, len);
      const want = Buffer.from(expectedFbBytes(n, rig.geo, 0, len));
      // bits, not bytes: two flips may land on one byte (different bits)
      let bits = 0;
      for (let i = 0; i < len; i++) for (let x = got[i]! ^ want[i]!; x; x &= x - 1) bits++;
      expect(bits, `${bits} flipped bits`).toBeGreaterThan(40);
      expect(bits).toBeLessThan(200);
      expect((await rig.rd32('FRAME_SEQ')) & 1, 'the seqlock says nothing of it').toBe(0);
      await set(rig, 'fault', 'none');
      await rig.clockStep(PERIOD);
      const m = await rig.rd64('FRAME_NUMBER');
      expect(Buffer.compare(await rig.qt.b64read(rig.fb, len), Buffer.from(expectedFbBytes(m, rig.geo, 0, len))), 'clean again').toBe(0);
    });
  }
});
