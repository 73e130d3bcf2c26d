/**
 * Extra hilbox-pci devices for one part of a run: hot-plugged on a spare root port, found as
 * the /dev/hilboxN node that appears, unplugged afterwards. Nothing is left plugged.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import type { StartedHilboxVm } from '../lib/started-vm.ts';
import { plugDevice, unplugDevice, type PropValue } from '../qmp/hotplug.ts';

async function nodes(vm: StartedHilboxVm): Promise<Set<string>> {
  const r = await vm.exec('ls /dev/ | grep "^hilbox[0-9]" || true');
  return new Set(r.stdout.split('\n').map((s) => s.trim()).filter(Boolean).map((s) => `/dev/${s}`));
}

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
  const before = await nodes(vm);
  const feedSocket = o.feed ? join(o.runDir, `${o.id}-feed.sock`) : undefined;
  await plugDevice(vm.qmp, { id: o.id, bus: o.bus, props: o.props, ...(feedSocket ? { feedSocket } : {}) });
  try {
    const deadline = Date.now() + vm.scaled(20_000);
    let dev: string | undefined;
    while (!dev) {
      const now = await nodes(vm);
      dev = [...now].find((n) => !before.has(n));
      if (dev) break;
      if (Date.now() > deadline) throw new Error(`hot-plugged ${o.id}: no new /dev/hilboxN appeared (is the driver bound?)`);
      await sleep(200);
    }
    return await body({ id: o.id, dev, ...(feedSocket ? { feedSocket } : {}) });
  } finally {
    await unplugDevice(vm.qmp, o.id, vm.scaled(30_000), Boolean(feedSocket));
  }
}
