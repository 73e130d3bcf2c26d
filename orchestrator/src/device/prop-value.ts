/**
 * Device property values on their way to QEMU, checked in one place for both routes: the
 * `-device` command line (vm/qemu-args.ts) and QMP `device_add` (qmp/hotplug.ts). One job: no
 * property name or value can smuggle in extra `,key=value` options or anything QEMU would parse.
 */
export type DevicePropValue = string | number | boolean;

const KEY = /^[a-z][a-z0-9_-]*$/i;
const TOKEN = /^[A-Za-z0-9_.:/+@-]+$/;

/** Throws TypeError naming the property unless name and value are plain tokens / integers. */
export function checkPropValue(key: string, value: DevicePropValue): DevicePropValue {
  if (!KEY.test(key)) throw new TypeError(`device property name ${JSON.stringify(key)} is not a simple identifier`);
  if (typeof value === 'number' && (!Number.isFinite(value) || !Number.isInteger(value))) throw new TypeError(`device property ${key}=${value}: integers only`);
  if (typeof value === 'string' && !TOKEN.test(value)) throw new TypeError(`device property ${key}=${JSON.stringify(value)}: only [A-Za-z0-9_.:/+@-] allowed`);
  return value;
}

/** The value as QEMU's option parser wants it (booleans as on/off). */
export function formatPropValue(key: string, value: DevicePropValue): string {
  const v = checkPropValue(key, value);
  return typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v);
}
