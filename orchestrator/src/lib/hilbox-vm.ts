/**
 * Builder for a hilbox VM, in the style of testcontainers: configure, `start()`, get a
 * StartedHilboxVm, and `await using` it so QEMU is stopped whatever happens.
 *
 *   await using vm = await new HilboxVm().withDevice({ fps: 50 }).withMouseFeed().start();
 *   await vm.loadDriver();
 */
import { ensureGuest, ensureQemu } from '../build/ensure.ts';
import { MouseFeeder } from '../feed/mouse-feeder.ts';
import type { AccelChoice } from '../vm/accel.ts';
import { LinuxGuest, type Guest } from '../vm/guest.ts';
import { Machine, type MachineOptions } from '../vm/machine.ts';
import type { DevicePropValue } from '../vm/qemu-args.ts';
import { StartedHilboxVm } from './started-vm.ts';

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

  /** A guest manifest path, manifest object, or Guest (default: ensureGuest()). */
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

  withMemory(size: string): this {
    this.opts.memory = size;
    return this;
  }

  withCpus(n: number): this {
    this.opts.cpus = n;
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

  /** Boot timeout in KVM milliseconds (scaled ×4 under TCG). */
  withBootTimeout(ms: number): this {
    this.opts.bootTimeoutMs = ms;
    return this;
  }

  /** Raw extra QEMU arguments (escape hatch). */
  withQemuArgs(...args: string[]): this {
    this.opts.extraArgs = [...(this.opts.extraArgs ?? []), ...args];
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

  /** Boots the VM; resolves once the guest answers over SSH. */
  async start(): Promise<StartedHilboxVm> {
    const [qemu, guest] = await Promise.all([this.qemu ?? ensureQemu(), this.resolveGuest()]);
    const machine = await Machine.launch({
      ...this.opts,
      qemu,
      guest,
      warn: this.options.warn ?? ((m) => console.warn(m)),
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
