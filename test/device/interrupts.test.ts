/**
 * SPEC §7: INT_STATUS / INT_MASK / INT_ACK, the level-triggered INTx line (observed on the
 * intercepted I/O APIC input of q35) and MSI messages (observed by pointing the MSI address at
 * guest RAM and reading what the device writes there). Events come from QMP
 * `input-send-event`, which is processed synchronously.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { q35IntxGsi } from '../../orchestrator/src/qtest/pci.ts';
import { CONTROL, INT } from '../../orchestrator/src/device/spec.ts';
import { BUILD_TIMEOUT_MS, qemuBinary, startRig, type HilboxRig } from './helpers.ts';

beforeAll(async () => {
  await qemuBinary();
}, BUILD_TIMEOUT_MS);

const MSI_ADDR = 0x0010_0000; // guest RAM
const MSI_DATA = 0x4b5a;

async function event(rig: HilboxRig): Promise<void> {
  await rig.qt.qmp!.execute('input-send-event', { events: [{ type: 'rel', data: { axis: 'x', value: 1 } }] });
}

async function popAll(rig: HilboxRig): Promise<number> {
  return (await rig.drain()).length;
}

describe('INTx (MSI not enabled by the guest)', () => {
  it('asserts the line while INT_STATUS & INT_MASK != 0, level-triggered', async () => {
    await using rig = await startRig({ props: { 'mouse-rate-hz': 0 } });
    const { qt } = rig;
    await qt.irqInterceptIn('ioapic');
    const gsi = q35IntxGsi(rig.pci.addr.slot);
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);

    // masked: status set, line low
    await event(rig);
    expect(await rig.rd32('INT_STATUS')).toBe(INT.EV_READY);
    expect(qt.irqRaised(gsi)).toBe(false);
    // unmasking raises it
    await rig.wr32('INT_MASK', INT.EV_READY);
    expect(qt.irqRaised(gsi)).toBe(true);
    // a second event: still high, no extra edges
    const edges = qt.irqLog.length;
    await event(rig);
    expect(qt.irqLog.length).toBe(edges);
    // ACK with records left: EV_READY is set again, line stays asserted (no low pulse either)
    const before = qt.irqLog.length;
    await rig.wr32('INT_ACK', INT.EV_READY);
    expect(await rig.rd32('INT_STATUS')).toBe(INT.EV_READY);
    expect(qt.irqRaised(gsi)).toBe(true);
    expect(qt.irqLog.slice(before).filter((c) => c.line === gsi), 'INTx changes during the ACK').toEqual([]);
    // recipe: pop all, then ACK -> line drops
    expect(await popAll(rig)).toBe(2);
    await rig.wr32('INT_ACK', INT.EV_READY);
    expect(await rig.rd32('INT_STATUS')).toBe(0);
    expect(qt.irqRaised(gsi)).toBe(false);
    // masking also drops the line
    await event(rig);
    expect(qt.irqRaised(gsi)).toBe(true);
    await rig.wr32('INT_MASK', 0);
    expect(qt.irqRaised(gsi)).toBe(false);
    expect(await rig.rd32('INT_STATUS')).toBe(INT.EV_READY);
    // CONTROL.RESET clears status and mask: line stays low after re-mask attempt with empty status
    await rig.wr32('INT_MASK', INT.EV_READY);
    expect(qt.irqRaised(gsi)).toBe(true);
    await rig.wr32('CONTROL', CONTROL.RESET);
    expect(qt.irqRaised(gsi)).toBe(false);
    // COMMAND.INTX_DISABLE would be honoured by QEMU's PCI core; not part of this spec.
  });

  it('EV_OVERFLOW alone drives the line when only it is unmasked', async () => {
    await using rig = await startRig({ props: { 'mouse-rate-hz': 0, 'fifo-depth': 2 } });
    const { qt } = rig;
    await qt.irqInterceptIn('ioapic');
    const gsi = q35IntxGsi(rig.pci.addr.slot);
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await rig.wr32('INT_MASK', INT.EV_OVERFLOW);
    await event(rig);
    await event(rig);
    expect(qt.irqRaised(gsi)).toBe(false);
    await event(rig); // FIFO full -> dropped
    expect(await rig.rd32('INT_STATUS')).toBe(INT.EV_READY | INT.EV_OVERFLOW);
    expect(await rig.rd64('EV_DROPPED')).toBe(1n);
    expect(qt.irqRaised(gsi)).toBe(true);
    await rig.wr32('INT_ACK', INT.EV_OVERFLOW);
    expect(await rig.rd32('INT_STATUS')).toBe(INT.EV_READY);
    expect(qt.irqRaised(gsi)).toBe(false);
  });

  it('with msi=off there is no MSI capability and INTx works', async () => {
    await using rig = await startRig({ props: { 'mouse-rate-hz': 0, msi: false } });
    expect(await rig.pci.msiCapability()).toBeUndefined();
    await rig.qt.irqInterceptIn('ioapic');
    const gsi = q35IntxGsi(rig.pci.addr.slot);
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await rig.wr32('INT_MASK', INT.EV_READY);
    await event(rig);
    expect(rig.qt.irqRaised(gsi)).toBe(true);
  });
});

describe('MSI', () => {
  it('sends one message per false->true transition of INT_STATUS & INT_MASK', async () => {
    await using rig = await startRig({ props: { 'mouse-rate-hz': 0 } });
    const { qt } = rig;
    await qt.irqInterceptIn('ioapic');
    const gsi = q35IntxGsi(rig.pci.addr.slot);
    await rig.pci.enableMsi(MSI_ADDR, MSI_DATA);
    const msgs = async (): Promise<number> => {
      // one message == one 32-bit write of MSI_DATA; clear after looking
      const v = await qt.readl(MSI_ADDR);
      await qt.writel(MSI_ADDR, 0);
      if (v !== 0 && v !== MSI_DATA) throw new Error(`unexpected MSI payload 0x${v.toString(16)}`);
      return v === MSI_DATA ? 1 : 0;
    };
    await qt.writel(MSI_ADDR, 0);
    await rig.wr32('CONTROL', CONTROL.EV_ENABLE);
    await rig.wr32('INT_MASK', INT.EV_READY);

    await event(rig);
    expect(await msgs()).toBe(1);
    await event(rig); // condition already true: no message
    expect(await msgs()).toBe(0);
    // ACK while records remain: false -> true again -> one message
    await rig.wr32('INT_ACK', INT.EV_READY);
    expect(await msgs()).toBe(1);
    // recipe: pop all then ACK: no message
    expect(await popAll(rig)).toBe(2);
    await rig.wr32('INT_ACK', INT.EV_READY);
    expect(await msgs()).toBe(0);
    expect(await rig.rd32('INT_STATUS')).toBe(0);
    // next event: message
    await event(rig);
    expect(await msgs()).toBe(1);
    // masked event: no message; unmasking with status set is a transition -> message
    await rig.wr32('INT_MASK', 0);
    await rig.wr32('INT_ACK', INT.EV_READY);
    await event(rig);
    expect(await msgs()).toBe(0);
    await rig.wr32('INT_MASK', INT.EV_READY);
    expect(await msgs()).toBe(1);
    // the INTx line never moved
    expect(qt.irqLog.filter((c) => c.line === gsi)).toEqual([]);
  });
});
