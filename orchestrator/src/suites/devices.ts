/**
 * Extra devices for one part of a run, hot-plugged on a spare root port and unplugged
 * afterwards: hilbox-pci devices, found as the device node that appears in the guest
 * (guest.listDeviceNodes), and QEMU's ivshmem-plain as the framebuffer benchmark's peer, found
 * by its PCI IDs (guest.findPeerBar). Nothing is left plugged: each goes again the way the
 * guest's OS ejects a card itself where it can (removeDevice).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { InfraError } from '../core/errors.ts';
import type { PciId } from '../guest/guest.ts';
import type { StartedHilboxVm } from '../lib/started-vm.ts';
import { deviceDel } from '../qmp/device.ts';
import { plugDevice, type PropValue } from '../qmp/hotplug.ts';
import { rootPortSlot, type RootPort } from '../vm/qemu-args.ts';

export interface ExtraDevice {
  id: string;
  dev: string;
  feedSocket?: string;
}

/** Plugs a device, waits for its node; `feed` creates a host feed socket in runDir. */
export async function withExtraDevice<T>(
  vm: StartedHilboxVm,
  o: { id: string; bus: 'rp1' | 'rp2'; props: Record<string, PropValue>; feed?: boolean; runDir: string },
  body: (d: ExtraDevice) => Promise<T>,
): Promise<T> {
  const list = vm.guest.listDeviceNodes?.bind(vm.guest);
  if (!list) throw new InfraError(`a ${vm.guest.os} guest cannot find a hot-plugged device (no listDeviceNodes)`);
  const nodes = async (): Promise<Set<string>> => new Set(await list(vm.session));
  const before = await nodes();
  const feedSocket = o.feed ? join(o.runDir, `${o.id}-feed.sock`) : undefined;
  await plugDevice(vm.qmp, { id: o.id, bus: o.bus, props: o.props, ...(feedSocket ? { feedSocket } : {}) });
  try {
    const deadline = Date.now() + vm.scaled(20_000);
    let dev: string | undefined;
    while (!dev) {
      dev = [...(await nodes())].find((n) => !before.has(n));
      if (dev) break;
      if (Date.now() > deadline) throw new Error(`hot-plugged ${o.id}: no new device node appeared (is the driver bound?)`);
      await sleep(200);
    }
    return await body({ id: o.id, dev, ...(feedSocket ? { feedSocket } : {}) });
  } finally {
    await removeDevice(vm, o.id, o.bus);
    if (feedSocket) await vm.qmp.execute('chardev-remove', { id: `${o.id}-feed` });
  }
}

/**
 * Takes a device this run plugged into `port` away again and waits for QEMU's DEVICE_DELETED:
 * through the guest's own eject of the slot where the OS has one (guest.ejectSlot — an orderly
 * removal without the attention button's 5 s abort window), else, or when that eject fails,
 * through QMP device_del. The cases about device_del itself (suites/removal.ts) call
 * deviceDel.
 */
export async function removeDevice(vm: StartedHilboxVm, id: string, port: RootPort, timeoutMs = vm.scaled(30_000)): Promise<void> {
  const eject = vm.guest.ejectSlot?.bind(vm.guest);
  if (!eject) return deviceDel(vm.qmp, id, timeoutMs);
  const deleted = vm.qmp.waitForEvent('DEVICE_DELETED', (e) => e.data?.['device'] === id, timeoutMs);
  deleted.catch(() => {}); // awaited below, or replaced by device_del's own wait
  try {
    await vm.machine.guard(eject(vm.session, rootPortSlot(port)));
  } catch (e) {
    try {
      await deviceDel(vm.qmp, id, timeoutMs);
      return;
    } catch (e2) {
      throw new Error(`removing ${id}: the guest's eject failed (${(e as Error).message.split('\n')[0]}), then device_del: ${(e2 as Error).message.split('\n')[0]}`);
    }
  }
  await deleted;
}

/** QEMU's ivshmem-plain (Red Hat 1af4:1110): BAR2 is the memory backend's RAM, mapped by the guest. */
export const IVSHMEM_PLAIN: PciId = { vendor: 0x1af4, device: 0x1110 };

export interface PeerDevice {
  id: string;
  /** What the probe's `--peer-bar` maps (the guest's file for the device's BAR2). */
  bar: string;
}

/**
 * A stock QEMU device beside hilbox for the framebuffer benchmark: `-object memory-backend-ram`
 * of `size` bytes (a power of two) and `device_add ivshmem-plain` on a spare root port, found in
 * the guest by its IDs (guest.findPeerBar), unplugged and its memory deleted afterwards.
 */
export async function withIvshmem<T>(vm: StartedHilboxVm, o: { id: string; bus: 'rp1' | 'rp2'; size: number }, body: (d: PeerDevice) => Promise<T>): Promise<T> {
  const find = vm.guest.findPeerBar?.bind(vm.guest);
  if (!find) throw new InfraError(`a ${vm.guest.os} guest cannot map another device's BAR (no findPeerBar)`);
  if (!Number.isInteger(Math.log2(o.size))) throw new TypeError(`ivshmem size ${o.size}: not a power of two`);
  if (await find(vm.session, IVSHMEM_PLAIN, 2)) throw new InfraError('an ivshmem-plain device is already present in the guest');
  const memdev = `${o.id}-mem`;
  await vm.qmp.execute('object-add', { 'qom-type': 'memory-backend-ram', id: memdev, size: o.size, share: true });
  let plugged = false;
  try {
    await vm.qmp.execute('device_add', { driver: 'ivshmem-plain', id: o.id, bus: o.bus, memdev });
    plugged = true;
    const deadline = Date.now() + vm.scaled(20_000);
    let bar: string | undefined;
    while (!(bar = await find(vm.session, IVSHMEM_PLAIN, 2))) {
      if (Date.now() > deadline) throw new Error(`hot-plugged ${o.id} (ivshmem-plain): the guest found no such PCI device`);
      await sleep(200);
    }
    return await body({ id: o.id, bar });
  } finally {
    if (plugged) await removeDevice(vm, o.id, o.bus);
    await vm.qmp.execute('object-del', { id: memdev });
  }
}
