/**
 * A running hilbox VM as test code sees it. One job: expose the guest (SSH and the guest's
 * verbs), the device (QMP, counters, feed) and the checks (crash scan), routing every operation
 * through the launcher's guard so a dead QEMU surfaces as the right error instead of a hang.
 */
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { QmpClient } from '../qmp/client.ts';
import { deviceCounters, deviceDel, type DeviceCounters } from '../qmp/device.ts';
import type { SshClient, ExecOptions, ExecResult } from '../ssh/client.ts';
import type { MouseFeeder } from '../feed/mouse-feeder.ts';
import type { DriverOptions, Guest, GuestSession } from '../guest/guest.ts';
import type { Machine } from '../vm/machine.ts';
import { InfraError } from '../core/errors.ts';

const CLEAN_SNAPSHOT = 'hilbox-clean';

/** The SSH side of a started VM, guarded against QEMU dying underneath. */
export interface GuestShell {
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** exec that throws unless the command exits 0. */
  run(command: string, opts?: ExecOptions): Promise<ExecResult>;
  upload(localPath: string, remotePath: string, mode?: number): Promise<void>;
  download(remotePath: string, localPath: string): Promise<void>;
  /** Interactive shell bridged to this terminal. */
  shell(): Promise<number | null>;
}

export class StartedHilboxVm implements AsyncDisposable {
  readonly ssh: GuestShell;
  /** What the guest's verbs are given: the guarded SSH side, reboot and the timeout scale. */
  readonly session: GuestSession;
  private sshClient: SshClient;
  /** Snapshot tags taken so far (reset needs one). */
  private readonly snapshots = new Set<string>();

  constructor(
    readonly machine: Machine,
    readonly guest: Guest,
    ssh: SshClient,
    readonly mouseFeeder: MouseFeeder | undefined,
    readonly deviceId: string | undefined,
  ) {
    this.sshClient = ssh;
    const g = <T>(f: (c: SshClient) => Promise<T>): Promise<T> => this.machine.guard(f(this.sshClient));
    this.ssh = {
      exec: (cmd, o) => g((c) => c.exec(cmd, { timeoutMs: this.machine.scaled(60_000), ...o })),
      run: (cmd, o) => g((c) => c.run(cmd, { timeoutMs: this.machine.scaled(60_000), ...o })),
      upload: (l, r, m) => g((c) => c.upload(l, r, m)),
      download: (r, l) => g((c) => c.download(r, l)),
      shell: () => g((c) => c.shell()),
    };
    this.session = {
      exec: this.ssh.exec,
      upload: this.ssh.upload,
      download: this.ssh.download,
      reboot: () => this.reboot(),
      saveArtifact: (name, text) => writeFileSync(join(this.machine.logDir, basename(name)), text),
      scaled: (ms) => this.machine.scaled(ms),
    };
  }

  get qmp(): QmpClient {
    return this.machine.qmp;
  }

  get consoleLog(): string {
    return this.machine.consoleLogPath;
  }

  get sshPort(): number {
    return this.machine.sshPort;
  }

  get accel(): 'tcg' | 'kvm' {
    return this.machine.decision.accel;
  }

  /** QEMU's thread scheduling: `fifo` when asked for and granted (vm/realtime.ts), else `default`. */
  /** How the guest came up: `cold` (booted; `cold, snapshot stored` when it became the boot snapshot) or `resumed from boot snapshot <key>`. */
  get bootKind(): string {
    const b = this.machine.bootKind;
    return b.kind === 'resumed' ? `resumed from boot snapshot ${b.snapshot}` : b.snapshotStored ? 'cold, boot snapshot stored' : 'cold';
  }

  get scheduling(): string {
    const r = this.machine.realtime;
    return !r ? 'default' : r.policy === 'fifo' ? `fifo (priority ${r.priority})` : `default (SCHED_FIFO refused: ${r.refused})`;
  }

  /** Multiplies a KVM-calibrated timeout by the accelerator's factor. */
  scaled(ms: number): number {
    return this.machine.scaled(ms);
  }

  exec(command: string, opts?: ExecOptions): Promise<ExecResult> {
    return this.ssh.exec(command, opts);
  }

  upload(localPath: string, remotePath: string, mode?: number): Promise<void> {
    return this.ssh.upload(localPath, remotePath, mode);
  }

  /** SPEC §9 counters of the hilbox-pci device. */
  deviceCounters(): Promise<DeviceCounters> {
    if (!this.deviceId) throw new InfraError('this VM has no hilbox-pci device (use withDevice())');
    return this.machine.guard(deviceCounters(this.qmp, this.deviceId));
  }

  /** Hot-unplugs the device (QMP device_del) and waits for DEVICE_DELETED. */
  unplugDevice(timeoutMs = this.scaled(30_000)): Promise<void> {
    if (!this.deviceId) throw new InfraError('this VM has no hilbox-pci device');
    return this.machine.guard(deviceDel(this.qmp, this.deviceId, timeoutMs));
  }

  /** Installs the image's driver, or uploads and installs `opts.path` (guest.installDriver). */
  loadDriver(opts?: DriverOptions): Promise<ExecResult> {
    return this.machine.guard(this.guest.installDriver(this.session, opts));
  }

  unloadDriver(): Promise<ExecResult> {
    return this.machine.guard(this.guest.uninstallDriver(this.session));
  }

  kernelLog(): Promise<string> {
    return this.machine.guard(this.guest.kernelLog(this.session));
  }

  /** Runs the guest's probe with `args` (against `dev` when given); the raw result. */
  probe(args: readonly string[], opts: ExecOptions & { dev?: string } = {}): Promise<ExecResult> {
    const { dev, ...o } = opts;
    return this.exec(this.guest.probeCommand(args, dev), o);
  }

  /**
   * Reboots the guest on purpose (its reboot command; the reset is not reported as a crash) and
   * waits until it is ready again, as after the first boot.
   */
  async reboot(): Promise<void> {
    this.sshClient = await this.machine.reboot(this.sshClient, this.guest.rebootCommand);
  }

  /** Throws GuestCrashError if the console showed any crash signature (or QEMU died). */
  assertNoCrash(): void {
    this.machine.assertNoCrash();
  }

  /**
   * Saves the current state as a snapshot for reset() — by default the "clean" one; a case that
   * needs its own passes a tag so the clean one stays. Done without an SSH session open, so the
   * restored guest has no half-open connection.
   */
  async snapshot(tag = CLEAN_SNAPSHOT): Promise<void> {
    this.sshClient.close();
    await this.machine.guard(this.qmp.savevm(tag, this.scaled(60_000)));
    this.snapshots.add(tag);
    this.sshClient = await this.reconnect();
  }

  /** Deletes a snapshot taken with snapshot(tag). */
  async dropSnapshot(tag: string): Promise<void> {
    const out = (await this.machine.guard(this.qmp.hmp(`delvm ${tag}`, this.scaled(60_000)))).trim();
    if (out) throw new InfraError(`delvm ${tag}: ${out}`);
    this.snapshots.delete(tag);
  }

  /**
   * Fast reset: restores a snapshot taken by snapshot() (the clean one by default) with HMP
   * loadvm, and reconnects SSH.
   * Crash hits seen before the reset are kept in the console log but no longer fail checks.
   */
  async reset(tag = CLEAN_SNAPSHOT): Promise<void> {
    if (!this.snapshots.has(tag)) throw new InfraError(`reset() needs snapshot(${tag === CLEAN_SNAPSHOT ? '' : JSON.stringify(tag)}) first${tag === CLEAN_SNAPSHOT ? ' (or start with withSnapshot())' : ''}`);
    this.sshClient.close();
    await this.machine.guard(this.qmp.loadvm(tag, this.scaled(60_000)));
    this.machine.console.scanner.hits.length = 0;
    this.sshClient = await this.reconnect();
  }

  private reconnect(): Promise<SshClient> {
    return this.machine.guard(this.machine.connectSsh(this.scaled(15_000)));
  }

  /** Stops QEMU and removes the run directory (logs are kept if the VM failed). */
  async stop(): Promise<void> {
    this.mouseFeeder?.close();
    this.sshClient.close();
    await this.machine.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
