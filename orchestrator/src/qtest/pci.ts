/**
 * PCI configuration-space access and BAR set-up over qtest, the job firmware would do: config
 * mechanism #1 (ports 0xCF8/0xCFC), device discovery on bus 0, BAR sizing and assignment,
 * COMMAND enables, capability lookup and MSI programming.
 */
import type { QtestSession } from './client.ts';

export const PCI_CFG = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION_ID: 0x08,
  CLASS_PROG: 0x09,
  HEADER_TYPE: 0x0e,
  BAR0: 0x10,
  SUBSYSTEM_VENDOR_ID: 0x2c,
  SUBSYSTEM_ID: 0x2e,
  CAPABILITY_LIST: 0x34,
  INTERRUPT_LINE: 0x3c,
  INTERRUPT_PIN: 0x3d,
} as const;

export const PCI_COMMAND = { IO: 1, MEMORY: 2, MASTER: 4, INTX_DISABLE: 0x400 } as const;
export const PCI_STATUS_CAP_LIST = 0x10;
export const PCI_CAP_ID = { MSI: 0x05, MSIX: 0x11, PCIE: 0x10, PM: 0x01, VNDR: 0x09 } as const;

/** MSI capability register offsets relative to the capability. */
export const MSI = {
  FLAGS: 0x02,
  FLAGS_ENABLE: 0x0001,
  FLAGS_64BIT: 0x0080,
  FLAGS_MASKBIT: 0x0100,
  ADDRESS_LO: 0x04,
  ADDRESS_HI: 0x08,
  /** Data register offset: 0x08 for 32-bit, 0x0C for 64-bit capabilities. */
  dataOffset: (is64: boolean): number => (is64 ? 0x0c : 0x08),
} as const;

export interface PciAddress {
  bus: number;
  slot: number;
  fn: number;
}

export interface BarInfo {
  index: number;
  kind: 'mem' | 'io';
  is64: boolean;
  prefetchable: boolean;
  size: number;
  /** Assigned base (after {@link PciDevice.mapBars}); 0 otherwise. */
  addr: number;
}

export interface MsiCapability {
  offset: number;
  is64: boolean;
  perVectorMask: boolean;
  /** log2 of the number of vectors the function can request (Multiple Message Capable). */
  multipleMessageCapable: number;
}

/** Config space of one function via mechanism #1. */
export class PciDevice {
  constructor(
    readonly qt: QtestSession,
    readonly addr: PciAddress,
  ) {}

  private select(off: number): number {
    if (off < 0 || off > 0xff) throw new RangeError(`config offset ${off} beyond 256 bytes (CF8 reaches only the legacy space)`);
    const { bus, slot, fn } = this.addr;
    return (0x8000_0000 | (bus << 16) | (slot << 11) | (fn << 8) | (off & 0xfc)) >>> 0;
  }

  async read8(off: number): Promise<number> {
    await this.qt.outl(0xcf8, this.select(off));
    return this.qt.inb(0xcfc + (off & 3));
  }
  async read16(off: number): Promise<number> {
    await this.qt.outl(0xcf8, this.select(off));
    return this.qt.inw(0xcfc + (off & 2));
  }
  async read32(off: number): Promise<number> {
    await this.qt.outl(0xcf8, this.select(off));
    return (await this.qt.inl(0xcfc)) >>> 0;
  }
  async write8(off: number, v: number): Promise<void> {
    await this.qt.outl(0xcf8, this.select(off));
    await this.qt.outb(0xcfc + (off & 3), v & 0xff);
  }
  async write16(off: number, v: number): Promise<void> {
    await this.qt.outl(0xcf8, this.select(off));
    await this.qt.outw(0xcfc + (off & 2), v & 0xffff);
  }
  async write32(off: number, v: number): Promise<void> {
    await this.qt.outl(0xcf8, this.select(off));
    await this.qt.outl(0xcfc, v >>> 0);
  }

  async vendorId(): Promise<number> {
    return this.read16(PCI_CFG.VENDOR_ID);
  }
  async deviceId(): Promise<number> {
    return this.read16(PCI_CFG.DEVICE_ID);
  }
  /** 24-bit class code (base class << 16 | subclass << 8 | prog-if). */
  async classCode(): Promise<number> {
    return (await this.read32(PCI_CFG.REVISION_ID)) >>> 8;
  }
  async revision(): Promise<number> {
    return this.read8(PCI_CFG.REVISION_ID);
  }

  /** Sets bits in COMMAND (e.g. MEMORY | MASTER). */
  async enable(bits: number): Promise<void> {
    const cmd = await this.read16(PCI_CFG.COMMAND);
    await this.write16(PCI_CFG.COMMAND, cmd | bits);
  }

  /** Walks the capability list; returns [id, offset] pairs in list order. */
  async capabilities(): Promise<Array<{ id: number; offset: number }>> {
    const caps: Array<{ id: number; offset: number }> = [];
    if (!((await this.read16(PCI_CFG.STATUS)) & PCI_STATUS_CAP_LIST)) return caps;
    let ptr = (await this.read8(PCI_CFG.CAPABILITY_LIST)) & 0xfc;
    const seen = new Set<number>();
    while (ptr !== 0) {
      if (seen.has(ptr) || ptr < 0x40) throw new Error(`capability list corrupt at 0x${ptr.toString(16)}`);
      seen.add(ptr);
      const id = await this.read8(ptr);
      caps.push({ id, offset: ptr });
      ptr = (await this.read8(ptr + 1)) & 0xfc;
    }
    return caps;
  }

  async findCapability(id: number): Promise<number | undefined> {
    return (await this.capabilities()).find((c) => c.id === id)?.offset;
  }

  async msiCapability(): Promise<MsiCapability | undefined> {
    const offset = await this.findCapability(PCI_CAP_ID.MSI);
    if (offset === undefined) return undefined;
    const flags = await this.read16(offset + MSI.FLAGS);
    return {
      offset,
      is64: (flags & MSI.FLAGS_64BIT) !== 0,
      perVectorMask: (flags & MSI.FLAGS_MASKBIT) !== 0,
      multipleMessageCapable: (flags >> 1) & 7,
    };
  }

  /**
   * Programs and enables MSI (one vector) so that a message is a 32-bit write of `data` to
   * `address`. Under qtest point `address` at RAM and read it back to observe messages.
   */
  async enableMsi(address: number | bigint, data: number): Promise<MsiCapability> {
    const cap = await this.msiCapability();
    if (!cap) throw new Error('device has no MSI capability');
    const a = BigInt(address);
    await this.write32(cap.offset + MSI.ADDRESS_LO, Number(a & 0xffff_ffffn));
    if (cap.is64) await this.write32(cap.offset + MSI.ADDRESS_HI, Number(a >> 32n));
    else if (a >> 32n) throw new Error('32-bit MSI capability cannot take a 64-bit address');
    await this.write16(cap.offset + MSI.dataOffset(cap.is64), data);
    const flags = await this.read16(cap.offset + MSI.FLAGS);
    await this.write16(cap.offset + MSI.FLAGS, (flags & ~0x70) | MSI.FLAGS_ENABLE); // 1 vector
    await this.enable(PCI_COMMAND.MASTER);
    return cap;
  }

  async disableMsi(): Promise<void> {
    const cap = await this.msiCapability();
    if (!cap) return;
    const flags = await this.read16(cap.offset + MSI.FLAGS);
    await this.write16(cap.offset + MSI.FLAGS, flags & ~MSI.FLAGS_ENABLE);
  }

  /**
   * Sizes every BAR (writes all-ones, reads back, restores). Returns the implemented ones;
   * a 64-bit BAR occupies two slots and is reported once at its lower index.
   */
  async sizeBars(): Promise<BarInfo[]> {
    const bars: BarInfo[] = [];
    for (let i = 0; i < 6; i++) {
      const off = PCI_CFG.BAR0 + 4 * i;
      const orig = await this.read32(off);
      await this.write32(off, 0xffff_ffff);
      const probe = await this.read32(off);
      await this.write32(off, orig);
      if (probe === 0) continue;
      if (probe & 1) {
        const mask = (probe & ~0x3) >>> 0;
        const size = ((~mask & 0xffff) + 1) >>> 0;
        bars.push({ index: i, kind: 'io', is64: false, prefetchable: false, size, addr: 0 });
        continue;
      }
      const type = (probe >> 1) & 3;
      const prefetchable = (probe & 8) !== 0;
      let sizeMask = BigInt((probe & ~0xf) >>> 0);
      const is64 = type === 2;
      if (is64) {
        const offHi = off + 4;
        const origHi = await this.read32(offHi);
        await this.write32(offHi, 0xffff_ffff);
        const probeHi = await this.read32(offHi);
        await this.write32(offHi, origHi);
        sizeMask |= BigInt(probeHi) << 32n;
      } else {
        sizeMask |= 0xffff_ffff_0000_0000n;
      }
      const size = (~sizeMask & 0xffff_ffff_ffff_ffffn) + 1n;
      bars.push({ index: i, kind: 'mem', is64, prefetchable, size: Number(size), addr: 0 });
      if (is64) i++;
    }
    return bars;
  }

  /** Writes a memory BAR's base address (low and, for 64-bit BARs, high word). */
  async setBar(bar: Pick<BarInfo, 'index' | 'is64'>, addr: number): Promise<void> {
    const off = PCI_CFG.BAR0 + 4 * bar.index;
    await this.write32(off, addr >>> 0);
    if (bar.is64) await this.write32(off + 4, Math.floor(addr / 2 ** 32));
  }

  /**
   * Sizes and assigns every memory BAR, naturally aligned and non-overlapping, from `base`
   * upward (default 0xC0000000, inside q35's 32-bit PCI hole above the MMCONFIG window), then
   * enables memory decoding (and bus mastering unless `busMaster: false`).
   */
  async mapBars(opts: { base?: number; limit?: number; busMaster?: boolean } = {}): Promise<Map<number, BarInfo>> {
    const base = opts.base ?? 0xc000_0000;
    const limit = opts.limit ?? 0xfec0_0000;
    const bars = (await this.sizeBars()).filter((b) => b.kind === 'mem');
    // Largest first keeps natural alignment without holes.
    const order = [...bars].sort((a, b) => b.size - a.size);
    let next = base;
    for (const b of order) {
      const aligned = Math.ceil(next / b.size) * b.size;
      if (aligned + b.size > limit) throw new Error(`BAR${b.index} (${b.size} bytes) does not fit below 0x${limit.toString(16)}`);
      b.addr = aligned;
      await this.setBar(b, aligned);
      next = aligned + b.size;
    }
    await this.enable(PCI_COMMAND.MEMORY | (opts.busMaster === false ? 0 : PCI_COMMAND.MASTER));
    return new Map(bars.map((b) => [b.index, b]));
  }

  /** Reads a memory BAR's currently programmed base address. */
  async barAddress(index: number): Promise<number> {
    const lo = await this.read32(PCI_CFG.BAR0 + 4 * index);
    let addr = (lo & ~0xf) >>> 0;
    if (((lo >> 1) & 3) === 2) addr += (await this.read32(PCI_CFG.BAR0 + 4 * index + 4)) * 2 ** 32;
    return addr;
  }
}

/** Enumerates functions on `bus` (0 by default). */
export async function scanBus(qt: QtestSession, bus = 0): Promise<Array<PciAddress & { vendorId: number; deviceId: number }>> {
  const found: Array<PciAddress & { vendorId: number; deviceId: number }> = [];
  for (let slot = 0; slot < 32; slot++) {
    const fn0 = new PciDevice(qt, { bus, slot, fn: 0 });
    const id0 = await fn0.read32(0);
    if ((id0 & 0xffff) === 0xffff) continue;
    found.push({ bus, slot, fn: 0, vendorId: id0 & 0xffff, deviceId: id0 >>> 16 });
    const multi = ((await fn0.read8(PCI_CFG.HEADER_TYPE)) & 0x80) !== 0;
    if (!multi) continue;
    for (let fn = 1; fn < 8; fn++) {
      const id = await new PciDevice(qt, { bus, slot, fn }).read32(0);
      if ((id & 0xffff) === 0xffff) continue;
      found.push({ bus, slot, fn, vendorId: id & 0xffff, deviceId: id >>> 16 });
    }
  }
  return found;
}

/** Finds the first function on bus 0 with the given IDs. */
export async function findDevice(qt: QtestSession, vendorId: number, deviceId: number, bus = 0): Promise<PciDevice | undefined> {
  const hit = (await scanBus(qt, bus)).find((d) => d.vendorId === vendorId && d.deviceId === deviceId);
  return hit ? new PciDevice(qt, { bus: hit.bus, slot: hit.slot, fn: hit.fn }) : undefined;
}

/**
 * The I/O APIC input a function's INTA..INTD reaches on q35 (no BIOS routing needed): slots
 * below 25 use PIRQ[E-H] swizzled by slot (hw/isa/lpc_ich9.c), PIRQ n drives GSI 16 + n.
 * Use with `irq_intercept_in ioapic`.
 */
export function q35IntxGsi(slot: number, pin: 1 | 2 | 3 | 4 = 1): number {
  if (slot >= 25) throw new Error('slots 25..31 use chipset-configured routing; not modelled');
  return 16 + (((slot + pin - 1) % 4) + 4);
}
