/**
 * QEMU command line for one hilbox VM. One job: turn a validated description into argv, with no
 * shell and no way for a property value to smuggle in extra `,key=value` options.
 */
import type { Accel } from './accel.ts';
import { formatPropValue, type DevicePropValue } from '../device/prop-value.ts';

export { formatPropValue, type DevicePropValue };

export interface DeviceSpec {
  /** QEMU device type; default hilbox-pci. */
  type?: string;
  /** QOM id; default hb0. */
  id?: string;
  props?: Record<string, DevicePropValue>;
  /** Unix socket path for the host mouse feed chardev (SPEC §6). */
  feedSocket?: string;
}

export interface QemuArgsSpec {
  firmwareDirs: readonly string[];
  accel: Accel;
  memory: string;
  cpus: number;
  /** Guest-specific boot arguments (Guest.bootArgs): -kernel/-initrd/-append, or a disk. */
  boot: readonly string[];
  qmpSocket: string;
  serialSocket: string;
  sshPort: number;
  /** The port sshd listens on inside the guest (default 22). */
  guestSshPort?: number;
  nicModel: string;
  /** Start paused (-S); the launcher resumes with QMP `cont` once it listens to everything. */
  paused: boolean;
  /** A guest reboot resets the VM instead of ending QEMU (-no-reboot left out). */
  rebootResets?: boolean;
  /** hilbox-pci (or another device) on root port rp0; omit for a VM without it. */
  device?: DeviceSpec;
  /** qcow2 file used only to hold savevm snapshots. */
  snapshotDisk?: string;
  /** Adds virtio-rng-pci so the guest's CRNG (and sshd) need not wait for entropy. */
  rng?: boolean;
  name?: string;
  /**
   * Deterministic time (TCG only): the guest clock follows instructions executed, 2^shift ns
   * each (`-icount shift=N,sleep=off,align=off`, single-threaded TCG). Omit for real time.
   */
  icountShift?: number;
  extraArgs?: readonly string[];
}

/** Largest `-icount shift` hilbox accepts (2^10 ns = about 1 µs per instruction). */
export const ICOUNT_SHIFT_MAX = 10;

const TOKEN = /^[A-Za-z0-9_.:/+@-]+$/;
const MEMORY = /^\d+[KMGT]?$/i;

/** Paths become `path=` option values: QEMU's option parser treats ',' specially, so refuse it. */
export function optPath(p: string): string {
  if (p.includes(',')) throw new TypeError(`path ${JSON.stringify(p)} contains ',' which QEMU options cannot carry`);
  return p;
}

/** The root ports of a hilbox VM: rp0 holds the scenario's device, rp1 and rp2 take devices hot-plugged at run time. */
export const ROOT_PORTS = ['rp0', 'rp1', 'rp2'] as const;
export type RootPort = (typeof ROOT_PORTS)[number];

/** A root port's physical slot number (its `chassis=` and `slot=`; the guest's /sys/bus/pci/slots/N on Linux). */
export function rootPortSlot(port: RootPort): number {
  return ROOT_PORTS.indexOf(port) + 1;
}

export function buildQemuArgs(s: QemuArgsSpec): string[] {
  if (!MEMORY.test(s.memory)) throw new TypeError(`memory ${JSON.stringify(s.memory)}: expected e.g. 512M`);
  if (!Number.isInteger(s.cpus) || s.cpus < 1 || s.cpus > 64) throw new TypeError(`cpus ${s.cpus}: expected 1..64`);
  if (!Number.isInteger(s.sshPort) || s.sshPort < 1 || s.sshPort > 65535) throw new TypeError(`ssh port ${s.sshPort}`);
  if (!TOKEN.test(s.nicModel)) throw new TypeError(`nic model ${JSON.stringify(s.nicModel)}`);
  const a: string[] = [];
  for (const d of s.firmwareDirs) a.push('-L', d);
  if (s.name) a.push('-name', formatPropValue('name', s.name));
  if (s.icountShift !== undefined) {
    if (s.accel !== 'tcg') throw new TypeError(`icount needs the tcg accelerator, not ${s.accel}`);
    if (!Number.isInteger(s.icountShift) || s.icountShift < 0 || s.icountShift > ICOUNT_SHIFT_MAX) throw new TypeError(`icount shift ${s.icountShift}: expected 0..${ICOUNT_SHIFT_MAX}`);
    // One vCPU thread runs every vCPU in turn; the clock never warps to follow the host (sleep=off).
    a.push('-machine', 'q35', '-accel', 'tcg,thread=single', '-icount', `shift=${s.icountShift},sleep=off,align=off`);
  } else a.push('-machine', 'q35', '-accel', s.accel);
  if (s.accel === 'kvm') a.push('-cpu', 'host');
  a.push('-m', s.memory, '-smp', String(s.cpus));
  a.push('-display', 'none', '-nodefaults', ...(s.rebootResets ? [] : ['-no-reboot']), '-no-user-config');
  if (s.paused) a.push('-S');
  // Monitor and console on private unix sockets; the launcher connects to both.
  a.push('-chardev', `socket,id=qmp0,path=${optPath(s.qmpSocket)},server=on,wait=off`, '-mon', 'chardev=qmp0,mode=control');
  a.push('-chardev', `socket,id=ser0,path=${optPath(s.serialSocket)},server=on,wait=off`, '-serial', 'chardev:ser0');
  a.push(...s.boot);
  // User-mode network with SSH forwarded to a loopback-only host port. romfile= : no PXE ROM needed.
  const guestPort = s.guestSshPort ?? 22;
  if (!Number.isInteger(guestPort) || guestPort < 1 || guestPort > 65535) throw new TypeError(`guest ssh port ${guestPort}`);
  a.push('-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${s.sshPort}-:${guestPort}`);
  a.push('-device', `${s.nicModel},netdev=net0,romfile=`);
  if (s.rng) a.push('-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0');
  if (s.snapshotDisk) a.push('-drive', `if=none,id=snapdisk,format=qcow2,file=${optPath(s.snapshotDisk)}`);
  if (s.device) {
    const type = s.device.type ?? 'hilbox-pci';
    const id = s.device.id ?? 'hb0';
    // A PCIe root port of its own, so the device can be hot-unplugged with QMP device_del.
    // Spare root ports rp1, rp2 take devices hot-plugged at run time (other fb-mode, generator
    // settings). Each port reserves windows big enough for a re-plugged or hot-plugged
    // framebuffer BAR (prefetchable in direct mode, plain memory in mmio mode).
    // Native PCIe hot-plug (the guest's pciehp / pci.sys drive the slots, as on real PCIe
    // hardware) instead of q35's ACPI hot-plug: only a native slot reports a card that is pulled
    // without an eject request (SPEC §10, fault=surprise-removal).
    a.push('-global', 'ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off');
    for (const port of ROOT_PORTS) a.push('-device', `pcie-root-port,id=${port},chassis=${rootPortSlot(port)},slot=${rootPortSlot(port)},mem-reserve=64M,pref32-reserve=64M`);
    const props = [`${formatPropValue('type', type)}`, `id=${formatPropValue('id', id)}`, 'bus=rp0'];
    if (s.device.feedSocket) {
      a.push('-chardev', `socket,id=hbfeed,path=${optPath(s.device.feedSocket)},server=on,wait=off`);
      props.push('chardev=hbfeed');
    }
    for (const [k, v] of Object.entries(s.device.props ?? {})) {
      if (k === 'id' || k === 'bus' || k === 'chardev') throw new TypeError(`device property ${k} is set by hilbox`);
      props.push(`${k}=${formatPropValue(k, v)}`);
    }
    a.push('-device', props.join(','));
  }
  if (s.extraArgs) a.push(...s.extraArgs);
  return a;
}
