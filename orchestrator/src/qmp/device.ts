/**
 * hilbox-pci over QMP (SPEC §9 counters, hot-unplug). One job: device-level helpers on top of
 * QmpClient.execute.
 */
import type { QmpClient } from './client.ts';

/** QOM counters of SPEC §9 (all uint64, read via qom-get). */
export const DEVICE_COUNTERS = [
  'frames-produced',
  'frame-number',
  'fb-write-attempts',
  'events-produced',
  'events-delivered',
  'events-dropped',
  'feed-errors',
] as const;

export type DeviceCounterName = (typeof DEVICE_COUNTERS)[number];
export type DeviceCounters = Record<DeviceCounterName, number>;

/** The QOM path of a device added with `-device …,id=<id>`. */
export function devicePath(id: string): string {
  return id.startsWith('/') ? id : `/machine/peripheral/${id}`;
}

export async function deviceCounters(qmp: QmpClient, id = 'hb0'): Promise<DeviceCounters> {
  const path = devicePath(id);
  const values = await Promise.all(DEVICE_COUNTERS.map((p) => qmp.qomGet<number>(path, p)));
  return Object.fromEntries(DEVICE_COUNTERS.map((p, i) => [p, Number(values[i])])) as DeviceCounters;
}

/**
 * Hot-unplugs a device and waits for DEVICE_DELETED (the guest must acknowledge the PCIe
 * unplug, which takes the guest's pciehp a few seconds — the ACPI attention-button delay).
 */
export async function deviceDel(qmp: QmpClient, id: string, timeoutMs = 30_000): Promise<void> {
  const deleted = qmp.waitForEvent('DEVICE_DELETED', (e) => e.data?.device === id, timeoutMs);
  deleted.catch(() => {});
  await qmp.execute('device_del', { id });
  await deleted;
}
