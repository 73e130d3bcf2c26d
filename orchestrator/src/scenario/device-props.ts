/**
 * Scenario `device` → QEMU `-device hilbox-pci,…` properties. One job: name and format the
 * properties exactly as SPEC §9 spells them. `feed` is not a property: it asks the launcher to
 * attach the host-feed chardev (which sets `chardev=`).
 */
import type { DeviceConfig } from './schema.ts';

/** SPEC §9 configuration property names, in SPEC order (`chardev` is set by the launcher). */
export const DEVICE_PROPERTY_NAMES = [
  'width',
  'height',
  'stride',
  'fps',
  'fb-mode',
  'mmio-latency-ns',
  'fifo-depth',
  'mouse-rate-hz',
  'mouse-bundle',
  'input',
  'msi',
] as const;
export type DevicePropertyName = (typeof DEVICE_PROPERTY_NAMES)[number];

/** The SPEC §9 properties of a scenario device (everything but `feed`). */
export type DeviceProperties = Pick<DeviceConfig, DevicePropertyName>;

/** Property values keyed as in SPEC §9 (fits `DeviceSpec.props` of vm/qemu-args.ts). */
export function deviceProperties(d: DeviceConfig): DeviceProperties {
  const { feed: _feed, ...props } = d;
  return Object.fromEntries(DEVICE_PROPERTY_NAMES.map((k) => [k, props[k]])) as DeviceProperties;
}

/** Whether the scenario wants the host feed chardev attached. */
export function wantsFeed(d: DeviceConfig): boolean {
  return d.feed;
}
