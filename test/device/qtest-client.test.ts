/**
 * The qtest client and PCI helper themselves, exercised against QEMU's built-in `edu` test
 * device (docs/specs/edu.txt), so failures here point at the tooling, not at hilbox-pci.
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QemuExitError, QtestCommandError, QtestSession, qcmd } from '../../orchestrator/src/qtest/client.ts';
import { QmpError } from '../../orchestrator/src/qmp/client.ts';
import { PCI_CFG, PCI_CAP_ID, findDevice, q35IntxGsi, scanBus, type PciDevice } from '../../orchestrator/src/qtest/pci.ts';
import { BUILD_TIMEOUT_MS, qemuBinary } from './helpers.ts';

const EDU = { vendor: 0x1234, device: 0x11e8 } as const;
const RAM_SCRATCH = 0x0020_0000;

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let qemu: string;
beforeAll(async () => {
  qemu = await qemuBinary();
}, BUILD_TIMEOUT_MS);

describe('qtest client (edu device)', () => {
  let qt: QtestSession;
  let edu: PciDevice;
  let bar0: number;

  beforeAll(async () => {
    qt = await QtestSession.start({ qemu, args: ['-device', 'edu,id=edu0'] });
    const d = await findDevice(qt, EDU.vendor, EDU.device);
    if (!d) throw new Error('edu not found');
    edu = d;
    const bars = await edu.mapBars();
    bar0 = bars.get(0)!.addr;
  });
  afterAll(async () => {
    await qt?.close();
  });

  it('answers basic commands and steps the virtual clock exactly', async () => {
    expect(await qt.command('endianness')).toBe('little');
    const t0 = await qt.clock();
    expect(await qt.clockStep(1234)).toBe(t0 + 1234n);
    expect(await qt.clockSet(t0 + 1_000_000n)).toBe(t0 + 1_000_000n);
    expect(await qt.clockSet(0)).toBe(t0 + 1_000_000n); // never goes back
  });

  it('enumerates bus 0 and sizes BARs', async () => {
    const devs = await scanBus(qt);
    expect(devs.some((d) => d.vendorId === 0x8086 && d.deviceId === 0x29c0)).toBe(true); // q35 host bridge
    expect(devs.filter((d) => d.vendorId === EDU.vendor && d.deviceId === EDU.device)).toHaveLength(1);
    expect(await edu.classCode()).toBe(0x00ff00);
    const bars = await edu.sizeBars();
    expect(bars).toEqual([{ index: 0, kind: 'mem', is64: false, prefetchable: false, size: 1 << 20, addr: 0 }]);
    expect(await edu.barAddress(0)).toBe(bar0);
    expect(bar0 % (1 << 20)).toBe(0);
    expect((await edu.read16(PCI_CFG.COMMAND)) & 6).toBe(6);
    const msi = await edu.msiCapability();
    expect(msi).toMatchObject({ is64: true, multipleMessageCapable: 0 });
    expect(await edu.findCapability(PCI_CAP_ID.MSIX)).toBeUndefined();
  });

  it('reads and writes MMIO in every width', async () => {
    expect(await qt.readl(bar0)).toBe(0x010000ed);
    await qt.writel(bar0 + 4, 0x12345678);
    expect(await qt.readl(bar0 + 4)).toBe(~0x12345678 >>> 0);
    await qt.writeq(bar0 + 0x80, 0x1122334455667788n);
    expect(await qt.readq(bar0 + 0x80)).toBe(0x1122334455667788n);
    // RAM: byte-exact read/b64read/write/memset
    await qt.memset(RAM_SCRATCH, 64, 0xa5);
    await qt.write(RAM_SCRATCH + 8, Uint8Array.from([1, 2, 3, 4]));
    await qt.writew(RAM_SCRATCH + 16, 0xbeef);
    const hexDump = await qt.read(RAM_SCRATCH, 20);
    const b64 = await qt.b64read(RAM_SCRATCH, 20);
    expect(hexDump.equals(b64)).toBe(true);
    expect([...hexDump.subarray(6, 18)]).toEqual([0xa5, 0xa5, 1, 2, 3, 4, 0xa5, 0xa5, 0xa5, 0xa5, 0xef, 0xbe]);
    expect(await qt.readb(RAM_SCRATCH + 17)).toBe(0xbe);
    const big = Buffer.alloc(300_000, 7);
    await qt.b64write(RAM_SCRATCH, big);
    expect((await qt.b64read(RAM_SCRATCH, big.length)).equals(big)).toBe(true);
  });

  it('fires device timers when the clock is stepped (edu DMA, 100 ms timer)', async () => {
    const src = RAM_SCRATCH;
    const dst = RAM_SCRATCH + 0x1000;
    await qt.write(src, Buffer.from('hilbox-dma-test'));
    await qt.memset(dst, 16, 0);
    // RAM -> edu buffer
    await qt.writeq(bar0 + 0x80, src);
    await qt.writeq(bar0 + 0x88, 0x40000);
    await qt.writeq(bar0 + 0x90, 15);
    await qt.writeq(bar0 + 0x98, 1);
    await qt.clockStep(99_000_000);
    expect(Number(await qt.readq(bar0 + 0x98)) & 1).toBe(1); // still running
    await qt.clockStep(2_000_000);
    expect(Number(await qt.readq(bar0 + 0x98)) & 1).toBe(0);
    // edu buffer -> RAM
    await qt.writeq(bar0 + 0x80, 0x40000);
    await qt.writeq(bar0 + 0x88, dst);
    await qt.writeq(bar0 + 0x98, 1 | 2);
    await qt.clockStep(101_000_000);
    expect((await qt.read(dst, 15)).toString()).toBe('hilbox-dma-test');
  });

  it('reports INTx through the intercepted I/O APIC, then MSI into RAM', async () => {
    await qt.irqInterceptIn('ioapic');
    const gsi = q35IntxGsi(edu.addr.slot);
    expect(qt.irqRaised(gsi)).toBe(false);
    await qt.writel(bar0 + 0x60, 0x1);
    expect(qt.irqRaised(gsi)).toBe(true);
    expect(qt.irqLog.at(-1)).toEqual({ line: gsi, raised: true });
    await qt.writel(bar0 + 0x64, 0x1);
    expect(qt.irqRaised(gsi)).toBe(false);

    await qt.writel(RAM_SCRATCH, 0);
    await edu.enableMsi(RAM_SCRATCH, 0x4321);
    const before = qt.irqLog.length;
    await qt.writel(bar0 + 0x60, 0x2);
    expect(await qt.readl(RAM_SCRATCH)).toBe(0x4321);
    expect(qt.irqLog.length).toBe(before); // no INTx with MSI on
    await qt.writel(bar0 + 0x64, 0x2);
    await edu.disableMsi();
  });

  it('turns FAIL replies into errors and stays usable', async () => {
    await expect(qt.command('frobnicate 1')).rejects.toBeInstanceOf(QtestCommandError);
    await expect(qt.irqInterceptIn('/machine/nonexistent')).rejects.toThrow(/Unknown device/);
    expect(await qt.readl(bar0)).toBe(0x010000ed);
  });

  it('batches many commands in one write and stays in sync after a FAIL inside a batch', async () => {
    const lines = Array.from({ length: 10_000 }, (_, i) => (i % 2 ? qcmd.read(4, bar0) : qcmd.clockStep(1)));
    const t0 = await qt.clock();
    const replies = await qt.batch(lines);
    expect(replies.filter((_, i) => i % 2).every((r) => Number(r) === 0x010000ed)).toBe(true);
    expect(BigInt(replies.at(-2)!)).toBe(t0 + 5000n);
    await expect(qt.batch([qcmd.read(4, bar0), 'bogus', qcmd.read(4, bar0)])).rejects.toThrow(/bogus/);
    expect(await qt.readl(bar0)).toBe(0x010000ed);
  });

  it('speaks QMP: qom-get and errors', async () => {
    expect(await qt.qmp!.qomGet('/machine/peripheral/edu0', 'dma_mask')).toBe(2 ** 28 - 1);
    await expect(qt.qmp!.qomGet('/machine/peripheral/edu0', 'nope')).rejects.toBeInstanceOf(QmpError);
  });

  it('serialises concurrent callers', async () => {
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? qt.readl(bar0) : qt.clock())));
    results.forEach((r, i) => {
      if (i % 2) expect(r).toBe(0x010000ed);
      else expect(typeof r).toBe('bigint');
    });
  });
});

describe('qtest client lifecycle', () => {
  it('leaves no socket files once connected and kills QEMU on close (await using)', async () => {
    let pid: number | undefined;
    {
      await using qt = await QtestSession.start({ qemu });
      pid = qt.pid;
      const sock = qt.argv.find((a) => a.startsWith('unix:'))!.slice(5);
      expect(alive(pid)).toBe(true);
      expect(existsSync(dirname(sock))).toBe(false);
    }
    expect(alive(pid)).toBe(false);
  });

  it('rejects start-up with QEMU stderr when QEMU refuses the command line', async () => {
    const err = await QtestSession.start({ qemu, args: ['-device', 'no-such-device-xyz'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QemuExitError);
    expect((err as QemuExitError).exitCode).toBe(1);
    expect((err as Error).message).toMatch(/no-such-device-xyz/);
  });

  it('fails pending and later commands with QEMU stderr when QEMU dies', async () => {
    const qt = await QtestSession.start({ qemu });
    try {
      await qt.qmp!.execute('human-monitor-command', { 'command-line': 'info version' });
      const pending = qt.clockStep(1000);
      process.kill(qt.pid!, 'SIGKILL');
      await pending.catch(() => undefined); // may have been answered first
      await expect(qt.readl(0)).rejects.toBeInstanceOf(QemuExitError);
      await expect(qt.readl(0)).rejects.toThrow(/SIGKILL/);
      expect(qt.alive).toBe(false);
    } finally {
      await qt.close();
    }
  });

  it('a QMP command lost with the connection says how QEMU ended', async () => {
    const qt = await QtestSession.start({ qemu });
    try {
      const pending = qt.qmp!.execute('human-monitor-command', { 'command-line': 'info version' });
      process.kill(qt.pid!, 'SIGKILL');
      await pending.catch(() => undefined); // may have been answered first
      await expect(qt.qmp!.execute('query-status')).rejects.toThrow(/connection closed \(.*QEMU exited \(signal SIGKILL\)/);
    } finally {
      await qt.close();
    }
  });

  it('times out a command QEMU never answers and abandons the session', async () => {
    const qt = await QtestSession.start({ qemu });
    try {
      process.kill(qt.pid!, 'SIGSTOP');
      await expect(qt.command('readl 0x0', 300)).rejects.toThrow(/no reply within 300 ms/);
      await expect(qt.readl(0)).rejects.toThrow(/abandoned/);
    } finally {
      await qt.close();
    }
    expect(alive(qt.pid)).toBe(false);
  });
});
