/**
 * Extra hilbox-pci devices for one part of a run: hot-plugged on a spare root port, found as
 * the device node that appears in the guest (guest.listDeviceNodes), unplugged afterwards.
 * Nothing is left plugged.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { InfraError } from '../core/errors.ts';
import type { StartedHilboxVm } from '../lib/started-vm.ts';
import { plugDevice, unplugDevice, type PropValue } from '../qmp/hotplug.ts';

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
    await unplugDevice(vm.qmp, o.id, vm.scaled(30_000), Boolean(feedSocket));
  }
}
