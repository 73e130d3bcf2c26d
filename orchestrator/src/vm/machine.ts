/**
 * The QEMU launcher shared by the guest tests and the orchestrator. One job: run one VM from
 * start to stop and turn everything that can go wrong into the right error (errors.ts).
 *
 * Start: QEMU begins paused (-S) with QMP, serial console and mouse feed on unix sockets in a
 * private directory; we connect to all of them, then `cont`, so no console byte is lost. A
 * hostfwd port lost to a race is retried with a new port. Boot: wait for the guest's ready marker
 * on the console, then for SSH to run `true`, within a timeout scaled for the accelerator. While
 * it runs, the console is scanned for crash signatures and QEMU's exit is classified. QEMU never
 * outlives us: stop(), errors, signals (registry.ts) and our own SIGKILL (reaper.ts) kill it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { access, constants, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { QmpClient, type QmpEvent } from '../qmp/client.ts';
import { SshClient } from '../ssh/client.ts';
import { firmwareDirs as defaultFirmwareDirs } from '../core/paths.ts';
import { chooseAccel, knownAccel, TIMEOUT_SCALE, type AccelChoice, type AccelDecision } from './accel.ts';
import { ConsoleCapture } from './console.ts';
import { QMP_PANIC_LINE, QMP_RESET_LINE } from './crash-scan.ts';
import {
  BootError,
  GuestCrashError,
  GuestExitError,
  HilboxError,
  InfraError,
  TimeoutError,
  type GuestContext,
} from '../core/errors.ts';
import type { BootableGuest } from './bootable.ts';
import type { Readiness, ReadinessContext } from './readiness.ts';
import { isHostForwardFailure, pickFreePort, releasePort } from './ports.ts';
import { buildQemuArgs, type DeviceSpec } from './qemu-args.ts';
import { createEmptyQcow2 } from './qcow2.ts';
import { registerVm, unregisterVm, type Killable } from './registry.ts';
import { unwatchPid, watchPid } from './reaper.ts';
import { applyRealtime, type RealtimeStatus } from './realtime.ts';
import { qemuCommand } from './qemu-command.ts';
import { hasSnapshot, loadUri, normalizedArgs, removeStaleTemps, saveUri, snapshotKey, snapshotPaths, SNAPSHOT_DEVICE_ARGS, tempStatePath } from './boot-snapshot.ts';
import { stampUse } from '../products/cache.ts';

/** Bytes per second: a migration limit no host reaches (QEMU refuses values above SIZE_MAX). */
const UNCAPPED_BANDWIDTH = 2 ** 40;

/** The part of QEMU's final query-migrate report that explains a store's time and size (kept in the snapshot's meta.json). */
function migrationFigures(r: Record<string, unknown>): Record<string, unknown> {
  const ram = (r.ram ?? {}) as Record<string, unknown>;
  const pick = (o: Record<string, unknown>, keys: readonly string[]) => Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
  return { ...pick(r, ['total-time', 'setup-time', 'downtime']), ram: pick(ram, ['total', 'transferred', 'duplicate', 'normal', 'normal-bytes', 'mbps', 'dirty-sync-count']) };
}

/** The console line that says a guest was resumed from a boot snapshot rather than booted. */
export const RESUMED_LINE = 'hilbox: resumed from boot snapshot';
/** How long a resumed guest gets to answer SSH before its snapshot is dropped for a cold boot (KVM ms, scaled). */
const RESUME_TIMEOUT_MS = 10_000;

export interface MachineOptions {
  qemu: string;
  guest: BootableGuest;
  accel?: AccelChoice;
  /** Kernel the KVM probe boots for `auto` when the guest has none of its own (guest.probeKernel). */
  accelProbeKernel?: string;
  /** How to know the guest booted, instead of the guest's own strategy. */
  readiness?: Readiness;
  memory?: string;
  cpus?: number;
  /** hilbox-pci (omit for a VM without it); `feed: true` adds the host mouse feed chardev. */
  device?: Omit<DeviceSpec, 'feedSocket'> & { feed?: boolean };
  /** Attach a scratch qcow2 so savevm/loadvm (fast reset) work. Default: the guest's need. */
  snapshotDisk?: boolean;
  /** Appended to the guest kernel command line. */
  extraCmdline?: string;
  /** Deterministic guest time (TCG only): `-icount shift=N,sleep=off,align=off` (qemu-args.ts). */
  icountShift?: number;
  /** Every QEMU thread under SCHED_FIFO before the guest runs (realtime.ts); refused: a warning. */
  realtime?: boolean;
  extraArgs?: readonly string[];
  /** Console log file; default <logDir>/console.log. */
  consoleLogPath?: string;
  /** Where console.log, qmp.log and qemu-stderr.log go; default the VM's private run directory. */
  logDir?: string;
  /** Keep the run directory after stop (always kept after a failure). */
  keepArtifacts?: boolean;
  /** Boot timeout before scaling (KVM milliseconds); default the guest's (Linux 30 s, 120 s under TCG). */
  bootTimeoutMs?: number;
  firmwareDirs?: readonly string[];
  /** virtio-rng for fast guest entropy; default: the guest's need. */
  rng?: boolean;
  name?: string;
  /**
   * A guest that installs itself (hilbox image windows): its reboots reset the VM instead of
   * ending QEMU, and its power-off (exit 0) is the expected end, not a failure.
   */
  installer?: boolean;
  /** hostfwd port retries; default 5. */
  portRetries?: number;
  /** QEMU with the host's transparent huge pages (default: without, qemu-command.ts says why). */
  hugePages?: boolean;
  /**
   * The store of boot snapshots (boot-snapshot.ts; `<cache>/boot`): a VM whose configuration has
   * a snapshot resumes it instead of booting; one that has none stores one after its first boot,
   * before any SSH session. A snapshot that does not resume is removed and the VM boots cold.
   * Not used under icount or for installers.
   */
  bootSnapshotDir?: string;
  warn?: (msg: string) => void;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

type Phase = 'startup' | 'boot' | 'running' | 'stopping' | 'stopped';

const STDERR_LINES = 50;

function connectUnix(path: string, deadline: number): Promise<Socket> {
  return (async () => {
    for (;;) {
      try {
        return await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => (s.removeListener('error', reject), resolve(s)));
          s.once('error', reject);
        });
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await sleep(20);
      }
    }
  })();
}

export class Machine implements Killable {
  readonly console: ConsoleCapture;
  readonly runDir: string;
  readonly logDir: string;
  readonly qmpLogPath: string;
  readonly stderrLogPath: string;
  readonly feedSocket: string | undefined;
  /** The accelerator and why; set once more when a VM started during the KVM probe learns its verdict. */
  decision: AccelDecision;
  sshPort = 0;
  qmp!: QmpClient;
  /** The scheduling QEMU's threads run under (MachineOptions.realtime); undefined: not asked. */
  realtime: RealtimeStatus | undefined;
  private proc: ChildProcess | undefined;
  private exitInfo: ExitInfo | undefined;
  private exitPromise: Promise<ExitInfo> = new Promise(() => {});
  private stderrTail: string[] = [];
  private phase: Phase = 'startup';
  private failureError: HilboxError | undefined;
  private stopPromise: Promise<void> | undefined;
  private stderrWritten: Promise<void> = Promise.resolve();
  /** The boot snapshot key of this configuration; undefined: snapshots not used. */
  private snapshotKey: string | undefined;
  /** This QEMU resumes the stored snapshot (-incoming defer) instead of booting. */
  private resuming = false;
  /** A snapshot failed to resume: boot cold from now on. */
  private coldOnly = false;
  private args: string[] = [];
  /** How the guest came up: booted (and whether it became its configuration's boot snapshot), or resumed from one. */
  bootKind: { kind: 'cold'; snapshotStored?: boolean } | { kind: 'resumed'; snapshot: string } = { kind: 'cold' };
  private consoleDrained: Promise<void> = Promise.resolve();
  /** Set while the orchestrator reboots the guest on purpose (the reset is not a crash). */
  private expectingReset = false;

  private constructor(
    readonly opts: MachineOptions,
    runDir: string,
    decision: AccelDecision,
  ) {
    this.runDir = runDir;
    this.decision = decision;
    this.logDir = opts.logDir ?? runDir;
    this.console = new ConsoleCapture(opts.consoleLogPath ?? join(this.logDir, 'console.log'), opts.guest.crashSignatures);
    this.qmpLogPath = join(this.logDir, 'qmp.log');
    this.stderrLogPath = join(this.logDir, 'qemu-stderr.log');
    this.feedSocket = opts.device?.feed ? join(runDir, 'feed.sock') : undefined;
  }

  /** Timeout scale of the chosen accelerator (TCG ×4). */
  get scale(): number {
    return this.decision.scale;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get consoleLogPath(): string {
    return this.console.logPath;
  }

  /** Whether QEMU is still running. */
  get alive(): boolean {
    return this.proc !== undefined && this.exitInfo === undefined;
  }

  /** Resolves when QEMU exits (never rejects). */
  get exited(): Promise<ExitInfo> {
    return this.exitPromise;
  }

  /** Starts QEMU (paused), connects console/QMP/feed sockets and resumes the guest. */
  static async launch(opts: MachineOptions): Promise<Machine> {
    try {
      await access(opts.qemu, constants.X_OK);
    } catch {
      throw new InfraError(`QEMU binary not found or not executable: ${opts.qemu}`);
    }
    const kernel = opts.guest.probeKernel ?? opts.accelProbeKernel;
    const choice = opts.accel ?? 'auto';
    const probe = kernel ? { qemu: opts.qemu, kernel, ...(opts.warn ? { warn: opts.warn } : {}) } : undefined;
    const known = await knownAccel(choice, probe);
    if (known) return Machine.launchAs(opts, known);
    if (opts.installer) return Machine.launchAs(opts, await chooseAccel(choice, probe));
    return Machine.launchWhileProbing(opts, chooseAccel(choice, probe));
  }

  /**
   * No verdict for this host boot yet: the guest starts booting under TCG while the KVM probe
   * runs, so on a host whose KVM fails the probe (every CI machine we know) the probe costs CPU
   * but no waiting. If KVM proves itself, that TCG guest is killed (it has done nothing lasting:
   * its disk writes go to its own overlay or snapshot file) and the VM starts again under KVM.
   * Installers never start speculatively: they write to the image they install.
   */
  private static async launchWhileProbing(opts: MachineOptions, probing: Promise<AccelDecision>): Promise<Machine> {
    const pending: AccelDecision = { accel: 'tcg', scale: TIMEOUT_SCALE.tcg, reason: 'KVM probe running', cached: false };
    const started = Machine.launchAs(opts, pending).then(
      (m) => ({ m }),
      (e: unknown) => ({ e }),
    );
    let decision: AccelDecision;
    try {
      decision = await probing;
    } catch (e) {
      const s = await started;
      if ('m' in s) await s.m.discard('the KVM probe failed');
      throw e;
    }
    const s = await started;
    if (decision.accel === 'tcg') {
      if ('e' in s) throw s.e;
      s.m.decision = decision;
      return s.m;
    }
    if ('m' in s) await s.m.discard('KVM proved itself: the VM starts again under KVM');
    return Machine.launchAs(opts, decision);
  }

  private static async launchAs(opts: MachineOptions, decision: AccelDecision): Promise<Machine> {
    const runDir = await mkdtemp(join(tmpdir(), 'hilbox-vm-'));
    if (opts.logDir) await mkdir(opts.logDir, { recursive: true });
    const m = new Machine(opts, runDir, decision);
    try {
      await m.start();
    } catch (e) {
      m.killNow('launch failed');
      await m.cleanup(true);
      throw e;
    }
    return m;
  }

  private ctx(extra: Partial<GuestContext> = {}): GuestContext {
    return { consoleTail: this.console.tail(), consoleLogPath: this.console.logPath, qemuStderr: this.stderrTail.slice(-20), ...extra };
  }

  private async start(): Promise<void> {
    const o = this.opts;
    const snapshotDisk = (o.snapshotDisk ?? o.guest.machine.snapshotDisk) ? join(this.runDir, 'snapshots.qcow2') : undefined;
    if (snapshotDisk) await createEmptyQcow2(snapshotDisk);
    await o.guest.prepare?.(this.runDir, o.qemu);
    const retries = o.portRetries ?? 5;
    for (let attempt = 0; ; attempt++) {
      const port = await pickFreePort();
      const qmpSocket = join(this.runDir, `qmp-${attempt}.sock`);
      const serialSocket = join(this.runDir, `console-${attempt}.sock`);
      const args = buildQemuArgs({
        firmwareDirs: o.firmwareDirs ?? defaultFirmwareDirs,
        accel: this.decision.accel,
        memory: o.memory ?? '512M',
        cpus: o.cpus ?? 1,
        boot: o.guest.bootArgs(o.extraCmdline),
        qmpSocket,
        serialSocket,
        sshPort: port,
        guestSshPort: o.guest.sshGuestPort,
        nicModel: o.guest.nicModel,
        paused: true,
        ...(o.installer ? { rebootResets: true } : {}),
        ...(o.device ? { device: { ...o.device, ...(this.feedSocket ? { feedSocket: this.feedSocket } : {}) } } : {}),
        ...(snapshotDisk ? { snapshotDisk } : {}),
        rng: o.rng ?? o.guest.machine.rng,
        ...(o.name ? { name: o.name } : {}),
        ...(o.icountShift !== undefined ? { icountShift: o.icountShift } : {}),
        ...(o.extraArgs || this.snapshotStore ? { extraArgs: [...(o.extraArgs ?? []), ...(this.snapshotStore ? SNAPSHOT_DEVICE_ARGS : [])] } : {}),
      });
      if (this.snapshotStore) {
        this.snapshotKey = snapshotKey(o.qemu, args, this.runDir, port);
        this.resuming = !this.coldOnly && hasSnapshot(this.snapshotStore, this.snapshotKey);
        if (this.resuming) args.push('-incoming', 'defer');
      }
      this.args = args;
      this.spawnQemu(args);
      try {
        await this.connectAll(qmpSocket, serialSocket);
        this.sshPort = port;
        return;
      } catch (e) {
        releasePort(port);
        if (this.resuming) {
          await this.dropSnapshot(`it did not resume: ${(e as Error).message.split('\n')[0]}`);
          continue;
        }
        const stderr = this.stderrTail.join('\n');
        if (attempt < retries && isHostForwardFailure(stderr)) {
          o.warn?.(`hilbox: host port ${port} was taken, retrying with another`);
          this.killNow('retry');
          await this.exitPromise;
          continue;
        }
        throw e;
      }
    }
  }

  private spawnQemu(args: string[]): void {
    this.exitInfo = undefined;
    this.stderrTail = [];
    const cmd = qemuCommand(this.opts.qemu, args, { hugePages: Boolean(this.opts.hugePages) });
    const proc = spawn(cmd.file, cmd.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    if (proc.pid !== undefined) watchPid(proc.pid, this.runDir);
    registerVm(this);
    let partial = '';
    const stderrLog: string[] = [];
    const onOut = (d: string): void => {
      stderrLog.push(d);
      const parts = (partial + d).split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) if (l.trim()) this.stderrTail.push(l);
      if (this.stderrTail.length > STDERR_LINES) this.stderrTail.splice(0, this.stderrTail.length - STDERR_LINES);
    };
    proc.stderr?.setEncoding('utf8').on('data', onOut);
    proc.stdout?.setEncoding('utf8').on('data', onOut);
    this.exitPromise = new Promise<ExitInfo>((resolve) => {
      const done = (info: ExitInfo): void => {
        if (this.proc !== proc || this.exitInfo) return;
        if (partial.trim()) this.stderrTail.push(partial);
        this.exitInfo = info;
        if (proc.pid !== undefined) unwatchPid(proc.pid);
        // cleanup() awaits this write: removing the run directory under it fails (ENOTEMPTY).
        this.stderrWritten = writeFile(this.stderrLogPath, stderrLog.join('')).catch(() => {});
        unregisterVm(this);
        // Let the console socket drain so crash lines are scanned before classification.
        void Promise.race([this.consoleDrained, sleep(1500)]).then(() => {
          this.failureError ??= this.classifyExit(info);
          resolve(info);
        });
      };
      proc.once('error', (e) => {
        this.stderrTail.push(`spawn ${this.opts.qemu}: ${e.message}`);
        done({ code: null, signal: null });
      });
      proc.once('exit', (code, signal) => done({ code, signal }));
    });
  }

  /** Rejects with the classified failure once QEMU has exited. */
  private exitAsError(): Promise<never> {
    return this.exitPromise.then(() => {
      throw this.failureError ?? new InfraError('QEMU exited', this.ctx());
    });
  }

  private async connectAll(qmpSocket: string, serialSocket: string): Promise<void> {
    const deadline = Date.now() + 15_000;
    const work = (async () => {
      const ser = await connectUnix(serialSocket, deadline);
      this.consoleDrained = this.console.attach(ser);
      this.qmp = await QmpClient.connect(qmpSocket, { connectTimeoutMs: Math.max(1000, deadline - Date.now()), logPath: this.qmpLogPath });
      this.noteGuestEvents();
      if (this.opts.realtime && this.proc?.pid !== undefined) {
        this.realtime = await applyRealtime(this.proc.pid);
        if (this.realtime.policy === 'default') this.opts.warn?.(`hilbox: realtime: the host refused SCHED_FIFO for QEMU (${this.realtime.refused}); latencies include host scheduling delays`);
      }
      this.phase = 'boot';
      if (this.resuming) await this.resumeSnapshot();
      await this.qmp.execute('cont');
    })();
    work.catch(() => {});
    await Promise.race([
      work.catch(async (e: unknown) => {
        // A socket error usually means QEMU is exiting: prefer its own words.
        const exited = await Promise.race([this.exitPromise.then(() => true), sleep(2000).then(() => false)]);
        if (exited) return this.exitAsError();
        throw new InfraError(`cannot talk to QEMU: ${(e as Error).message}`, this.ctx({ cause: e }));
      }),
      this.exitAsError(),
    ]);
  }

  /** Decides what a QEMU exit means, given when it happened and what the console shows. */
  private classifyExit(info: ExitInfo): HilboxError | undefined {
    if (this.phase === 'stopping' || this.phase === 'stopped') return undefined;
    const hit = this.console.scanner.first;
    const how = info.signal ? `killed by ${info.signal}` : `exit code ${info.code}`;
    if (hit) return new GuestCrashError(hit.signature, hit.lines, this.ctx());
    if (this.phase === 'startup') {
      const msg = this.stderrTail.find((l) => /qemu-system|error|invalid|property/i.test(l)) ?? this.stderrTail[0] ?? '';
      return new InfraError(`QEMU failed to start (${how})${msg ? `: ${msg}` : ''}`, this.ctx());
    }
    if (info.signal) return new InfraError(`QEMU died (${how}) while the guest was ${this.phase === 'boot' ? 'booting' : 'running'}`, this.ctx());
    if (info.code !== 0) return new InfraError(`QEMU exited unexpectedly (${how})`, this.ctx());
    if (this.opts.installer && info.code === 0) return undefined;
    if (this.phase === 'boot') return new BootError(`guest stopped during boot (QEMU ${how})`, this.ctx());
    return new GuestExitError(`guest powered off or rebooted unexpectedly (QEMU ${how})`, this.ctx());
  }

  /** The classified failure, once QEMU has died on its own (undefined while fine). */
  failure(): HilboxError | undefined {
    return this.failureError;
  }

  /**
   * Writes what QMP says of the guest's fate into the console stream as lines a guest's crash
   * signatures can match: a pvpanic GUEST_PANICKED (e.g. a Windows bugcheck), and a reset the
   * orchestrator did not ask for (-no-reboot turns a guest's reboot into SHUTDOWN guest-reset).
   */
  private noteGuestEvents(): void {
    const note = (line: string): void => this.console.push(`\n${line}\n`);
    this.qmp.on('GUEST_PANICKED', (ev: QmpEvent) => {
      const info = (ev.data?.info ?? {}) as Record<string, unknown>;
      const code = typeof info.arg1 === 'number' ? ` bugcheck code 0x${info.arg1.toString(16)}` : '';
      note(`${QMP_PANIC_LINE}: the guest reported a panic${code} ${JSON.stringify(ev.data ?? {})}`);
    });
    const onReset = (ev: QmpEvent): void => {
      if (this.expectingReset) return;
      const reason = String(ev.data?.reason ?? '');
      if (ev.event === 'SHUTDOWN' && reason !== 'guest-reset') return; // a power-off is not a reset
      note(`${QMP_RESET_LINE} (${ev.event}${reason ? ` ${reason}` : ''}): the guest restarted by itself`);
    };
    this.qmp.on('RESET', onReset);
    this.qmp.on('SHUTDOWN', onReset);
  }

  /** Where boot snapshots live for this VM; undefined: not used (icount, an installer, not asked). */
  private get snapshotStore(): string | undefined {
    const o = this.opts;
    return o.bootSnapshotDir && o.icountShift === undefined && !o.installer ? o.bootSnapshotDir : undefined;
  }

  /** Loads the stored snapshot into this (paused, -incoming defer) QEMU; throws if QEMU refuses it. */
  private async resumeSnapshot(): Promise<void> {
    const p = snapshotPaths(this.snapshotStore!, this.snapshotKey!);
    const t0 = Date.now();
    await this.qmp.execute('migrate-incoming', { uri: loadUri(p.state) });
    await this.migrationDone(60_000 * this.scale);
    stampUse(dirname(this.snapshotStore!), p.dir);
    this.bootKind = { kind: 'resumed', snapshot: this.snapshotKey! };
    this.console.push(`\n${RESUMED_LINE} ${this.snapshotKey} (${Date.now() - t0} ms to load)\n`);
  }

  /** Polls query-migrate until the migration (either way) completed and returns QEMU's final report; throws on failure or after `timeoutMs`. */
  private async migrationDone(timeoutMs: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = (await this.qmp.execute('query-migrate')) as { status?: string; 'error-desc'?: string };
      if (s.status === 'completed') return s;
      if (s.status === 'failed' || s.status === 'cancelled') throw new Error(`migration ${s.status}${s['error-desc'] ? `: ${s['error-desc']}` : ''}`);
      if (Date.now() > deadline) {
        await this.qmp.execute('migrate_cancel').catch(() => undefined);
        throw new Error(`migration not done after ${timeoutMs} ms (status ${s.status ?? 'none'})`);
      }
      // A store or load takes 0.1-0.6 s; polled every 5 ms the wait after it ends is 2.5 ms on average (10 ms at 20 ms).
      await sleep(5);
    }
  }

  /**
   * Stores this just-booted guest as the configuration's boot snapshot: the VM pauses, its state
   * goes to a temporary file that is renamed into place when complete, and it runs on. A failure is
   * a warning (the next VM boots cold too), never a boot failure.
   */
  private async storeSnapshot(): Promise<void> {
    const p = snapshotPaths(this.snapshotStore!, this.snapshotKey!);
    const tmp = tempStatePath(p, process.pid, randomBytes(4).toString('hex')); // VMs of one process may store at once
    const t0 = Date.now();
    let report: Record<string, unknown> = {};
    try {
      await mkdir(p.dir, { recursive: true });
      removeStaleTemps(p.dir);
      // QEMU caps every migration at max-bandwidth (128 MiB/s by default), which made the store
      // of a paused guest take 0.5 s; the cap is lifted for it and put back afterwards.
      const { 'max-bandwidth': cap } = (await this.qmp.execute('query-migrate-parameters')) as { 'max-bandwidth'?: number };
      await this.qmp.execute('migrate-set-parameters', { 'max-bandwidth': UNCAPPED_BANDWIDTH });
      try {
        await this.qmp.execute('stop');
        try {
          await this.qmp.execute('migrate', { uri: saveUri(tmp) });
          report = await this.migrationDone(60_000 * this.scale);
        } finally {
          await this.qmp.execute('cont');
        }
      } finally {
        // Back to the old cap whatever failed, so later migrations of this VM (savevm cases) see QEMU's default.
        if (cap !== undefined) await this.qmp.execute('migrate-set-parameters', { 'max-bandwidth': cap });
      }
      const meta = { schema: 'hilbox-boot-snapshot/1', key: this.snapshotKey, created: new Date().toISOString(), storeMs: Date.now() - t0, migration: migrationFigures(report), args: normalizedArgs(this.args, this.runDir, this.sshPort) };
      await writeFile(p.meta, `${JSON.stringify(meta, null, 2)}\n`);
      await rename(tmp, p.state);
      stampUse(dirname(this.snapshotStore!), p.dir);
      this.bootKind = { kind: 'cold', snapshotStored: true };
    } catch (e) {
      await rm(tmp, { force: true });
      this.opts.warn?.(`hilbox: could not store the boot snapshot (${(e as Error).message}); the next boot is cold too`);
    }
  }

  /** Removes a snapshot that failed, stops this QEMU and makes the next start() boot cold. */
  private async dropSnapshot(why: string): Promise<void> {
    this.opts.warn?.(`hilbox: boot snapshot ${this.snapshotKey} removed (${why}); booting cold`);
    await rm(snapshotPaths(this.snapshotStore!, this.snapshotKey!).dir, { recursive: true, force: true });
    this.killNow('snapshot failed');
    await this.exitPromise;
    this.failureError = undefined;
    this.phase = 'startup';
    this.resuming = false;
    this.coldOnly = true;
    this.bootKind = { kind: 'cold' };
  }

  /** Opens SSH to the guest's forwarded port. */
  connectSsh(timeoutMs: number, signal?: AbortSignal): Promise<SshClient> {
    return SshClient.connect(this.opts.guest.sshTarget(this.sshPort), timeoutMs, signal);
  }

  /**
   * Waits until the guest's readiness strategy says it is up (Linux: the ready marker, then SSH;
   * Windows: a command answering over SSH), within the guest's boot timeout scaled for the
   * accelerator. Kills QEMU and throws BootError/GuestCrashError/… on failure. `since`: a console
   * mark taken before a reboot; only lines after it count.
   */
  async waitForBoot(o: { since?: number } = {}): Promise<SshClient> {
    if (!this.resuming || o.since !== undefined) return this.awaitReady(o);
    try {
      return await this.awaitReady(o, RESUME_TIMEOUT_MS * this.scale);
    } catch (e) {
      if (e instanceof GuestCrashError) {
        // Reported as it is; the snapshot it came from is not resumed again.
        await rm(snapshotPaths(this.snapshotStore!, this.snapshotKey!).dir, { recursive: true, force: true });
        throw e;
      }
      releasePort(this.sshPort);
      await this.dropSnapshot(`the resumed guest did not answer: ${(e as Error).message.split('\n')[0]}`);
      await this.start();
      return this.awaitReady(o);
    }
  }

  private async awaitReady(o: { since?: number }, limitMs?: number): Promise<SshClient> {
    const g = this.opts.guest;
    const readiness = this.opts.readiness ?? g.readiness;
    const timeoutMs = Math.min(limitMs ?? Infinity, (this.opts.bootTimeoutMs ?? g.machine.bootTimeoutMs) * this.scale);
    const store = this.snapshotKey && !this.resuming && o.since === undefined && this.bootKind.kind === 'cold' && !this.bootKind.snapshotStored;
    const ac = new AbortController();
    let stage = readiness.description;
    const ctx: ReadinessContext = {
      console: this.console,
      connect: (ms) => this.connectSsh(ms, ac.signal),
      signal: ac.signal,
      deadline: Date.now() + timeoutMs,
      ...(o.since !== undefined ? { since: o.since } : {}),
      resumed: this.resuming && o.since === undefined,
      ...(store ? { beforeConnect: () => this.storeSnapshot() } : {}),
      stage: (t) => (stage = t === readiness.description ? t : `${t} on 127.0.0.1:${this.sshPort}`),
    };
    const booting = readiness.wait(ctx);
    booting.catch(() => {});
    const marker = readiness.failureMarker;
    const failFast = marker
      ? this.console.waitForLine(marker, { signal: ac.signal, ...(o.since === undefined ? { includeTail: true } : { since: o.since }) }).then(async (line) => {
          // Give QEMU a moment to exit (panic=-1 / poweroff) so the full story is in the log.
          await Promise.race([this.exitPromise, sleep(3000)]);
          const hit = this.console.scanner.first;
          if (hit) throw new GuestCrashError(hit.signature, hit.lines, this.ctx());
          throw new BootError(`guest boot failed: ${line}`, this.ctx());
        })
      : new Promise<never>(() => {});
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new BootError(`guest did not boot within ${timeoutMs} ms (${this.decision.accel}): still waiting for ${stage}`, this.ctx())),
        timeoutMs,
      );
    });
    try {
      const ssh = await Promise.race([booting, failFast, timeout, this.exitAsError()]);
      this.phase = 'running';
      return ssh;
    } catch (e) {
      const err =
        e instanceof HilboxError
          ? e
          : new BootError(`guest boot failed while waiting for ${stage}: ${(e as Error).message}`, this.ctx({ cause: e }));
      this.failureError ??= err;
      ac.abort(err);
      void booting.then((s) => s.close(), () => {});
      this.killNow('boot failed');
      await this.exitPromise;
      throw err;
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
  }

  /**
   * Reboots the guest on purpose (`command` run over `ssh`, e.g. Driver Verifier's reboot):
   * -no-reboot is lifted for this one reset with QMP set-action, the reset is not reported as a
   * crash, and the guest's readiness is awaited again. Returns the new SSH client.
   */
  async reboot(ssh: SshClient, command: string): Promise<SshClient> {
    const timeoutMs = (this.opts.bootTimeoutMs ?? this.opts.guest.machine.bootTimeoutMs) * this.scale;
    this.expectingReset = true;
    const since = this.console.mark();
    try {
      await this.qmp.execute('set-action', { reboot: 'reset' });
      const reset = this.qmp.waitForEvent('RESET', () => true, timeoutMs);
      reset.catch(() => {});
      // The command does not return (the guest goes away under it): the RESET event is the answer.
      void ssh.exec(command, { timeoutMs: 30_000 }).catch(() => undefined);
      await this.guard(reset);
      ssh.close();
      this.phase = 'boot';
      // Firmware may reset once more on its way up (SeaBIOS does after a warm reset): resets stay
      // resets until the guest is ready again.
      return await this.waitForBoot({ since });
    } finally {
      if (this.alive) await this.qmp.execute('set-action', { reboot: 'shutdown' }).catch(() => undefined);
      this.expectingReset = false;
    }
  }

  /**
   * Runs `op` but fails fast with the classified error if QEMU dies meanwhile (an SSH command
   * whose guest panicked would otherwise hang or fail with a meaningless socket error).
   */
  async guard<T>(op: Promise<T>): Promise<T> {
    op.catch(() => {});
    if (this.failureError) throw this.failureError;
    try {
      return await Promise.race([op, this.exitAsError()]);
    } catch (e) {
      if (e instanceof HilboxError) throw e;
      // The op failed; if QEMU is going down right now, report that instead.
      const exited = await Promise.race([this.exitPromise.then(() => true), sleep(1500).then(() => false)]);
      if (exited && this.failureError) throw this.failureError;
      throw e;
    }
  }

  /** Throws GuestCrashError if any crash signature has appeared on the console so far. */
  assertNoCrash(): void {
    const hit = this.console.scanner.first;
    if (hit) throw new GuestCrashError(hit.signature, hit.lines, this.ctx());
    if (this.failureError) throw this.failureError;
  }

  /** Restores a timeout to this accelerator's scale. */
  scaled(ms: number): number {
    return ms * this.scale;
  }

  /** Throws TimeoutError with the console tail attached. */
  timeoutError(operation: string, ms: number): TimeoutError {
    return new TimeoutError(operation, ms, this.ctx());
  }

  killNow(reason: string): void {
    if (this.proc && !this.exitInfo) {
      try {
        this.proc.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
    // The process is going away (signal/exit): no async cleanup will run, so do it now.
    if (/^received |^process exit/.test(reason) && !this.opts.keepArtifacts) {
      try {
        rmSync(this.runDir, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }
  }

  /** Ends a VM nobody will use (started while the KVM probe ran): SIGKILL, then the usual cleanup. */
  private discard(reason: string): Promise<void> {
    this.stopPromise ??= (async () => {
      this.phase = 'stopping';
      this.killNow(reason);
      if (this.proc && !this.exitInfo) await this.exitPromise;
      this.phase = 'stopped';
      this.qmp?.close();
      await this.cleanup(false);
    })();
    return this.stopPromise;
  }

  /** Stops QEMU (QMP quit, then SIGKILL) and removes the run directory. Idempotent. */
  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      const failed = this.failureError !== undefined;
      this.phase = 'stopping';
      if (this.alive) {
        try {
          if (this.qmp && !this.qmp.closed) await Promise.race([this.qmp.quit(2000), sleep(2000)]);
        } catch {
          /* fall through to SIGKILL */
        }
        const gone = await Promise.race([this.exitPromise.then(() => true), sleep(3000).then(() => false)]);
        if (!gone) {
          this.killNow('stop');
          await this.exitPromise;
        }
      }
      this.phase = 'stopped';
      this.qmp?.close();
      await this.cleanup(failed);
    })();
    return this.stopPromise;
  }

  private async cleanup(failed: boolean): Promise<void> {
    if (this.proc && !this.exitInfo) await this.exitPromise;
    this.console.end();
    await this.console.whenClosed();
    // Log writes still in flight would recreate files under the directory being removed.
    this.qmp?.close();
    await Promise.all([this.stderrWritten, this.qmp?.logClosed]);
    releasePort(this.sshPort);
    unregisterVm(this);
    if (failed || this.opts.keepArtifacts) {
      // Keep the logs for the post-mortem, drop the sockets and the scratch disk.
      for (const f of ['snapshots.qcow2']) await rm(join(this.runDir, f), { force: true });
      return;
    }
    await rm(this.runDir, { recursive: true, force: true });
  }
}
