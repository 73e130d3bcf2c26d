/**
 * The Linux guest: the project's own image (scripts/build-guest.mjs) — Debian's kernel booted
 * through PVH with a BusyBox/Dropbear initramfs that carries hilbox.ko and hilbox-probe. One
 * job: the Linux verbs of the guest seam (guest.ts).
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { LINUX_CRASH_SIGNATURES } from '../vm/crash-scan.ts';
import { optPath } from '../vm/qemu-args.ts';
import { ConsoleLineReadiness } from '../vm/readiness.ts';
import { shellQuote, type ExecResult, type SshTarget } from '../ssh/client.ts';
import type { DriverOptions, EventModes, Guest, GuestSession, PciId } from './guest.ts';
import { securityCaseNames } from './probe-cases.ts';

export const GuestManifestSchema = z.looseObject({
  schema: z.literal('hilbox-guest/1'),
  os: z.literal('linux'),
  kernelVersion: z.string().optional(),
  kernel: z.string().min(1),
  initrd: z.string().optional(),
  sshKey: z.string().min(1),
  sshUser: z.string().default('root'),
  hostKeyFingerprint: z.string().optional(),
  append: z.string().default('console=ttyS0'),
  readyMarker: z.string().default('hilbox-guest: sshd ready'),
  nic: z.string().default('virtio-net-pci'),
});
export type LinuxGuestManifest = z.infer<typeof GuestManifestSchema>;

/** Where the image keeps the reference driver and the probe. */
export const IMAGE_DRIVER_PATH = '/lib/modules/hilbox/hilbox.ko';
export const PROBE = '/usr/bin/hilbox-probe';
/** Where a driver given by the user is uploaded. */
const USER_DRIVER_PATH = '/tmp/hilbox-user.ko';

const EVENT_MODES: EventModes = {
  invertedCall: { probeMode: 'uring', mechanism: 'io_uring reads pending' },
  polling: { probeMode: 'poll', mechanism: 'poll() + non-blocking read' },
  sharedRing: { probeMode: 'ring', mechanism: 'read-only shared-memory ring + EV_RING_WAIT' },
};

function moduleParams(params: Record<string, string | number> = {}): string[] {
  return Object.entries(params).map(([k, v]) => {
    if (!/^[a-z_][a-z0-9_]*$/i.test(k) || !/^[A-Za-z0-9_.,:-]*$/.test(String(v))) throw new TypeError(`module parameter ${k}=${v}`);
    return `${k}=${v}`;
  });
}

export class LinuxGuest implements Guest {
  readonly os = 'linux' as const;
  readonly readiness: ConsoleLineReadiness;
  readonly crashSignatures = LINUX_CRASH_SIGNATURES;
  readonly nicModel: string;
  readonly machine = { snapshotDisk: true, rng: true, bootTimeoutMs: 30_000, minMemoryBytes: 128 * 2 ** 20 };
  readonly probeKernel: string;
  readonly workDir = '/root';
  readonly sshGuestPort = 22;
  readonly rebootCommand = 'reboot -f';

  /** pciehp's remove_board: power off, msleep(1000), indicator off — 2 s of guest time covers it. */
  async settleAfterSurpriseRemoval(s: GuestSession): Promise<void> {
    await s.exec('sleep 2', { timeoutMs: s.scaled(30_000) });
  }
  static readonly eventModes = EVENT_MODES;
  readonly eventModes = EVENT_MODES;
  static readonly orderlyRemoval = 'proceeds';
  readonly orderlyRemoval = 'proceeds';

  /** Read from the probe's case table on first use. */
  static get securityCases(): readonly string[] {
    return securityCaseNames('linux');
  }

  get securityCases(): readonly string[] {
    return securityCaseNames('linux');
  }
  /** The module installDriver loaded last (reinstalls load the same one). */
  private loaded: { path: string; params: string[] } = { path: IMAGE_DRIVER_PATH, params: [] };

  constructor(readonly manifest: LinuxGuestManifest) {
    // A resumed guest's wall clock says when its snapshot was taken: set it to the host's (busybox date, UTC seconds).
    this.readiness = new ConsoleLineReadiness(manifest.readyMarker, /hilbox-guest: FATAL|Kernel panic - not syncing/, () => `date -u -s @${Math.floor(Date.now() / 1000)} >/dev/null`);
    this.nicModel = manifest.nic;
    this.probeKernel = manifest.kernel;
  }

  /** Parses a manifest object; relative paths are resolved against `baseDir`. */
  static fromManifest(obj: unknown, baseDir = process.cwd()): LinuxGuest {
    const m = GuestManifestSchema.parse(obj);
    const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
    return new LinuxGuest({ ...m, kernel: abs(m.kernel), sshKey: abs(m.sshKey), ...(m.initrd ? { initrd: abs(m.initrd) } : {}) });
  }

  static async fromManifestFile(path: string): Promise<LinuxGuest> {
    return LinuxGuest.fromManifest(JSON.parse(await readFile(path, 'utf8')), dirname(path));
  }

  get description(): string {
    return `Linux ${this.manifest.kernelVersion ?? ''}`.trim();
  }

  sshTarget(port: number): SshTarget {
    const m = this.manifest;
    return { port, user: m.sshUser, privateKey: m.sshKey, ...(m.hostKeyFingerprint ? { hostKeyFingerprint: m.hostKeyFingerprint } : {}) };
  }

  bootArgs(extraCmdline = ''): string[] {
    let append = this.manifest.append;
    if (!/\bconsole=ttyS0\b/.test(append)) append += ' console=ttyS0';
    // panic=-1: a panic reboots at once, and -no-reboot turns that into QEMU exiting.
    append = `${append} panic=-1 ${extraCmdline}`.replace(/\s+/g, ' ').trim();
    const a = ['-kernel', optPath(this.manifest.kernel)];
    if (this.manifest.initrd) a.push('-initrd', optPath(this.manifest.initrd));
    a.push('-append', append);
    return a;
  }

  /** insmod the image's hilbox.ko, or upload `opts.path` and load that. */
  async installDriver(s: GuestSession, opts: DriverOptions = {}): Promise<ExecResult> {
    if (opts.path) await s.upload(opts.path, USER_DRIVER_PATH, 0o644);
    this.loaded = { path: opts.path ? USER_DRIVER_PATH : IMAGE_DRIVER_PATH, params: moduleParams(opts.params) };
    return this.reinstallDriver(s);
  }

  /** Loads the module installDriver loaded last (with its parameters). */
  reinstallDriver(s: GuestSession): Promise<ExecResult> {
    return s.exec(`insmod ${shellQuote(this.loaded.path)} ${this.loaded.params.join(' ')}`.trim(), { timeoutMs: 60_000 });
  }

  uninstallDriver(s: GuestSession): Promise<ExecResult> {
    return s.exec('rmmod hilbox', { timeoutMs: 60_000 });
  }

  async setupProbe(): Promise<void> {
    // The image carries /usr/bin/hilbox-probe.
  }

  probeCommand(args: readonly string[], dev?: string): string {
    return [PROBE, ...(dev ? ['--dev', dev] : []), ...args].map(shellQuote).join(' ');
  }

  async killProbes(s: GuestSession): Promise<void> {
    await s.exec('pkill -9 -f hilbox-probe; sleep 0.2; true', { timeoutMs: 30_000 });
  }

  async kernelLog(s: GuestSession): Promise<string> {
    return (await s.exec('dmesg', { timeoutMs: 30_000 })).stdout;
  }

  async clearKernelLog(s: GuestSession): Promise<void> {
    await s.exec('dmesg -c >/dev/null', { timeoutMs: 30_000 });
  }

  async listDeviceNodes(s: GuestSession): Promise<string[]> {
    const r = await s.exec('ls /dev/ | grep "^hilbox[0-9]" || true', { timeoutMs: 30_000 });
    return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean).map((n) => `/dev/${n}`);
  }

  /** pciehp's sysfs slot power: the write returns when the slot is off (driver removed, power and indicator off). */
  async ejectSlot(s: GuestSession, slot: number): Promise<void> {
    if (!Number.isInteger(slot) || slot < 1 || slot > 8191) throw new TypeError(`PCIe slot ${slot}`);
    const r = await s.exec(`echo 0 > /sys/bus/pci/slots/${slot}/power`, { timeoutMs: s.scaled(60_000) });
    if (r.code !== 0) throw new Error(`powering slot ${slot} off: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}`);
  }

  /** The sysfs resource file of the first function with these IDs (the probe maps it read-only). */
  async findPeerBar(s: GuestSession, id: PciId, bar: number): Promise<string | undefined> {
    const hex = (v: number) => `0x${v.toString(16).padStart(4, '0')}`;
    if (![id.vendor, id.device].every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffff) || !Number.isInteger(bar) || bar < 0 || bar > 5) throw new TypeError(`PCI ${JSON.stringify(id)} BAR ${bar}`);
    const r = await s.exec(`for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor):$(cat $d/device)" = ${hex(id.vendor)}:${hex(id.device)} ] && [ -e $d/resource${bar} ] && echo $d/resource${bar}; done; true`, { timeoutMs: 30_000 });
    return r.stdout.split('\n').map((l) => l.trim()).find(Boolean);
  }
}
