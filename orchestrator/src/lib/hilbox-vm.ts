/**
 * Builder for a hilbox VM, in the style of testcontainers: configure, `start()`, get a
 * StartedHilboxVm, and `await using` it so QEMU is stopped whatever happens.
 *
 *   await using vm = await new HilboxVm().withDevice({ fps: 50 }).withMouseFeed().start();
 *   await vm.loadDriver();
 */
import { join } from 'node:path';
import { cacheRoot } from '../core/paths.ts';
import { ensureGuest, ensureQemu } from '../products/ensure.ts';
import { MouseFeeder } from '../feed/mouse-feeder.ts';
import type { AccelChoice } from '../vm/accel.ts';
import type { Guest } from '../guest/guest.ts';
import { LinuxGuest } from '../guest/linux.ts';
import { Machine, type MachineOptions } from '../vm/machine.ts';
import type { DevicePropValue } from '../vm/qemu-args.ts';
import type { Readiness } from '../vm/readiness.ts';
import { StartedHilboxVm } from './started-vm.ts';
import { validateProps, type DeviceProps } from '../device/spec.ts';
import { UsageError } from '../core/errors.ts';

/** QEMU -m size in bytes ("512M", "4G"). */
export function memoryBytes(m: string): number {
  const n = Number.parseInt(m, 10);
  const unit = m.at(-1)?.toUpperCase();
  const mul = unit === 'K' ? 2 ** 10 : unit === 'M' ? 2 ** 20 : unit === 'G' ? 2 ** 30 : unit === 'T' ? 2 ** 40 : 1;
  return n * mul;
}

export interface HilboxVmOptions {
  /** Log/warning sink; default console.warn. */
  warn?: (msg: string) => void;
}

export class HilboxVm {
  private qemu: string | undefined;
  private guestSource: string | object | Guest | undefined;
  private device: Record<string, DevicePropValue> | undefined;
  private deviceId = 'hb0';
  private feed = false;
  private snapshotOnStart = false;
  private opts: Partial<MachineOptions> = {};

  constructor(private readonly options: HilboxVmOptions = {}) {}

  /** Path of qemu-system-x86_64 (default: ensureQemu(), i.e. $HILBOX_QEMU or the cached build). */
  withQemu(path: string): this {
    this.qemu = path;
    return this;
  }

  /** A Linux guest manifest path or object, or any Guest (e.g. a WindowsGuest); default: ensureGuest(). */
  withGuest(manifest: string | object | Guest): this {
    this.guestSource = manifest;
    return this;
  }

  /** Adds hilbox-pci with these properties (SPEC §9), e.g. { fps: 50, 'fb-mode': 'mmio' }. */
  withDevice(props: Record<string, DevicePropValue> = {}, id = 'hb0'): this {
    this.device = props;
    this.deviceId = id;
    return this;
  }

  /** Connects a host mouse feed (SPEC §6); implies withDevice(). */
  withMouseFeed(): this {
    this.device ??= {};
    this.feed = true;
    return this;
  }

  withAccel(accel: AccelChoice): this {
    this.opts.accel = accel;
    return this;
  }

  /**
   * Deterministic guest time: TCG with `-icount shift=N,sleep=off,align=off` — the guest clock
   * (and every device timer on it) follows the instructions executed, 2^shift ns each.
   */
  withIcount(shift = 0): this {
    this.opts.accel = 'tcg';
    this.opts.icountShift = shift;
    return this;
  }

  withMemory(size: string): this {
    this.opts.memory = size;
    return this;
  }

  withCpus(n: number): this {
    this.opts.cpus = n;
    return this;
  }

  /** Every QEMU thread under SCHED_FIFO (vm/realtime.ts): latency runs without host time slices. */
  withRealtime(on = true): this {
    this.opts.realtime = on;
    return this;
  }

  withConsoleLog(path: string): this {
    this.opts.consoleLogPath = path;
    return this;
  }

  /** Directory for console.log, qmp.log, qemu-stderr.log. */
  withLogDir(dir: string): this {
    this.opts.logDir = dir;
    return this;
  }

  /** Extra kernel command line words. */
  withKernelArgs(args: string): this {
    this.opts.extraCmdline = `${this.opts.extraCmdline ?? ''} ${args}`.trim();
    return this;
  }

  /** QEMU with the host's transparent huge pages, as a plain QEMU runs (default: without; vm/qemu-command.ts). */
  withHugePages(): this {
    this.opts.hugePages = true;
    return this;
  }

  /** How to know the guest booted, instead of its own strategy (vm/readiness.ts). */
  withReadiness(r: Readiness): this {
    this.opts.readiness = r;
    return this;
  }

  /** Boot timeout in KVM milliseconds (scaled ×4 under TCG); default the guest's. */
  withBootTimeout(ms: number): this {
    this.opts.bootTimeoutMs = ms;
    return this;
  }

  /** Raw extra QEMU arguments (escape hatch). */
  withQemuArgs(...args: string[]): this {
    this.opts.extraArgs = [...(this.opts.extraArgs ?? []), ...args];
    return this;
  }

  /**
   * Resume this configuration's boot snapshot from `dir` (default `<cache>/boot`) instead of
   * booting, or store one after the first boot (vm/boot-snapshot.ts). Not under icount.
   */
  withBootSnapshots(dir: string = join(cacheRoot(), 'boot')): this {
    this.opts.bootSnapshotDir = dir;
    return this;
  }

  /** Take the fast-reset snapshot right after boot, so vm.reset() works at once. */
  withSnapshot(): this {
    this.snapshotOnStart = true;
    return this;
  }

  /** Any other launcher option. */
  withOptions(o: Partial<Omit<MachineOptions, 'qemu' | 'guest'>>): this {
    Object.assign(this.opts, o);
    return this;
  }

  private async resolveGuest(): Promise<Guest> {
    const src = this.guestSource;
    if (src === undefined) return LinuxGuest.fromManifest(await ensureGuest());
    if (typeof src === 'string') return LinuxGuest.fromManifestFile(src);
    if ('bootArgs' in src && typeof (src as Guest).bootArgs === 'function') return src as Guest;
    return LinuxGuest.fromManifest(src);
  }

  /**
   * The kernel the KVM probe boots for `auto` when the guest has none (Windows): the Linux guest
   * image's, so both OSes are judged by the same probe.
   */
  private async accelProbeKernel(guest: Guest): Promise<string | undefined> {
    const forced = process.env.HILBOX_ACCEL === 'tcg' || process.env.HILBOX_ACCEL === 'kvm';
    if (guest.probeKernel || (this.opts.accel ?? 'auto') !== 'auto' || forced) return undefined;
    return (await ensureGuest()).kernel;
  }

  /**
   * Boots the VM; resolves once the guest's readiness strategy says it is up. Device properties
   * that break SPEC §9 are a UsageError naming the property, before anything is built or started.
   */
  async start(): Promise<StartedHilboxVm> {
    const bad = this.device ? validateProps(this.device as Partial<DeviceProps>) : undefined;
    if (bad) throw new UsageError(`device property ${bad.property}: ${bad.message}`);
    const [qemu, guest] = await Promise.all([this.qemu ?? ensureQemu(), this.resolveGuest()]);
    const warn = this.options.warn ?? ((m: string) => console.warn(m));
    if (this.opts.memory && memoryBytes(this.opts.memory) < guest.machine.minMemoryBytes) {
      warn(`hilbox: memory ${this.opts.memory} is little for a ${guest.os} guest (at least ${guest.machine.minMemoryBytes / 2 ** 20}M)`);
    }
    const probeKernel = await this.accelProbeKernel(guest);
    const machine = await Machine.launch({
      ...this.opts,
      qemu,
      guest,
      ...(probeKernel ? { accelProbeKernel: probeKernel } : {}),
      warn,
      ...(this.device ? { device: { id: this.deviceId, props: this.device, feed: this.feed } } : {}),
    });
    let feeder: MouseFeeder | undefined;
    try {
      const ssh = await machine.waitForBoot();
      if (machine.feedSocket) feeder = await MouseFeeder.connect(machine.feedSocket);
      const vm = new StartedHilboxVm(machine, guest, ssh, feeder, this.device ? this.deviceId : undefined);
      if (this.snapshotOnStart) await vm.snapshot();
      return vm;
    } catch (e) {
      feeder?.close();
      await machine.stop();
      throw e;
    }
  }
}
