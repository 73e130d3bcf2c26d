/**
 * Hot-plugging extra hilbox-pci devices at run time (on the spare root ports rp1, rp2), so a
 * run can measure other device settings — the other fb-mode, other generator rates — without
 * a second boot. Taking them away again: deviceDel (device.ts), or the guest's own eject
 * (suites/devices.ts removeDevice).
 */
import { checkPropValue, type DevicePropValue } from '../device/prop-value.ts';
import type { QmpClient } from './client.ts';

export type PropValue = DevicePropValue;

export interface HotplugOptions {
  id: string;
  /** Root port: rp1 or rp2. */
  bus: string;
  props: Record<string, PropValue>;
  /** Unix socket path for a host feed chardev created with the device. */
  feedSocket?: string;
}

export async function plugDevice(qmp: QmpClient, o: HotplugOptions): Promise<void> {
  const args: Record<string, unknown> = { driver: 'hilbox-pci', id: o.id, bus: o.bus };
  // QMP device_add takes JSON-typed values: numbers and booleans stay what they are.
  for (const [k, v] of Object.entries(o.props)) args[k] = checkPropValue(k, v);
  if (o.feedSocket) {
    const chardev = `${o.id}-feed`;
    await qmp.execute('chardev-add', {
      id: chardev,
      backend: { type: 'socket', data: { addr: { type: 'unix', data: { path: o.feedSocket } }, server: true, wait: false } },
    });
    args.chardev = chardev;
  }
  await qmp.execute('device_add', args);
}
