/**
 * The Windows guest path. One job: run the user's Windows image under hilbox the way
 * LinuxGuest runs ours — and say clearly what went wrong when it does not.
 *
 *  - The user's qcow2 is never written: every run boots a qcow2 overlay (backing file = the
 *    image) created with the qemu-img next to the QEMU binary, in the VM's private directory.
 *  - Firmware: SeaBIOS (default) or UEFI (`guest.firmware` = an OVMF *code* file; a private copy
 *    of the matching non-secure VARS template is used, so Secure Boot stays off and test-signed
 *    drivers load).
 *  - In-box drivers only: AHCI disk (q35's ICH9 controller), e1000e NIC, std VGA.
 *  - Boot wait: Windows prints nothing on the serial port, so we poll SSH until `cmd /c ver`
 *    answers, with a generous timeout (600 s under KVM, ×4 under TCG).
 *  - Crashes: `-device pvpanic` makes a bugcheck a QMP GUEST_PANICKED event (with the pvpanic
 *    driver from virtio-win installed), and -no-reboot turns Windows' automatic restart after a
 *    bugcheck into a RESET/SHUTDOWN(guest-reset) event. Both are written into the console
 *    stream as a crash signature line, so the launcher classifies QEMU's exit as a
 *    GuestCrashError with a message that says what happened.
 *  - Driver: upload the .sys (with its .inf/.cat) over SFTP, `pnputil /add-driver … /install`,
 *    optionally Driver Verifier (`verifier /standard /driver hilbox.sys`, reboot, wait).
 *
 * The Windows suites (probe over SSH, same case and metric names as Linux) are at the bottom.
 */
import { constants, existsSync, writeFileSync } from 'node:fs';
import { access, copyFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { homedir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { CrashSignature } from './crash-scan.ts';
import { BootError, HilboxError, InfraError } from './errors.ts';
import type { Guest, LoadDriverOptions } from './guest.ts';
import { Machine } from './machine.ts';
import { optPath } from './qemu-args.ts';
import type { Accel, AccelChoice } from './accel.ts';
import { SshClient, type ExecOptions, type ExecResult, type SshTarget } from '../ssh/client.ts';
import type { QmpEvent } from '../qmp/client.ts';
import { deviceDel } from '../qmp/device.ts';
import { plugDevice } from '../qmp/hotplug.ts';
import { StartedHilboxVm } from '../lib/started-vm.ts';
import { MouseFeeder } from '../feed/mouse-feeder.ts';
import { deviceProperties, wantsFeed } from '../scenario/device-props.ts';
import type { Scenario } from '../scenario/schema.ts';
import { selectCases } from '../scenario/cases.ts';
import { parseProbeOutput, hostCase, type CaseResult } from '../report/results.ts';
import { writeComparisonPng } from '../report/frame.ts';
import { repoRoot } from '../paths.ts';
import { UsageError } from '../cli/errors.ts';

// ---------------------------------------------------------------------------------------------
// Configuration

export interface WindowsGuestConfig {
  /** The user's qcow2 image (never modified). */
  image: string;
  /** UEFI code file (OVMF_CODE*.fd); omit for SeaBIOS. */
  firmware?: string;
  /** UEFI variable store template; default: the VARS file next to `firmware`. */
  firmwareVars?: string;
  sshUser: string;
  sshKeyPath?: string;
  sshPassword?: string;
  /** qemu-system-x86_64; its directory must hold qemu-img (or qemu-img is on PATH). */
  qemu: string;
  /** Where the Windows driver package lives in the guest when no host .sys is given. */
  imageDriverInf?: string;
}

/** Directory in the guest for everything hilbox uploads. */
export const GUEST_DIR = 'C:\\hilbox';
export const GUEST_PROBE = `${GUEST_DIR}\\hilbox-probe.exe`;
/** The driver package a golden image built with fixtures/windows/ carries. */
export const IMAGE_DRIVER_INF = `${GUEST_DIR}\\driver\\hilbox.inf`;

const PANIC_LINE = 'hilbox: QMP GUEST_PANICKED';
const RESET_LINE = 'hilbox: unexpected guest reset';

export const WINDOWS_CRASH_SIGNATURES: readonly CrashSignature[] = [
  { name: 'bugcheck', pattern: new RegExp(`^${PANIC_LINE}`), fatal: true },
  { name: 'bugcheck', pattern: /INSTANCE CLASS="BLUESCREEN"|\*STOP: 0x[0-9A-Fa-f]{8}/, fatal: true },
  { name: 'guest-reset', pattern: new RegExp(`^${RESET_LINE}`), fatal: true },
];

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p;
}

/** The UEFI VARS template that belongs to a CODE file (Debian's ovmf names). */
export function varsTemplateFor(code: string): string {
  const dir = dirname(code);
  const name = basename(code);
  const candidates = [name.replace(/CODE/g, 'VARS'), name.replace(/_CODE(_4M)?(\.secboot|\.ms)?\.fd$/, '_VARS$1.fd'), 'OVMF_VARS_4M.fd', 'OVMF_VARS.fd'];
  for (const c of candidates) {
    const p = join(dir, c);
    if (c !== name && existsSync(p)) return p;
  }
  return join(dir, candidates[0]!);
}

/** Quotes one argument for cmd.exe (the default OpenSSH shell on Windows). */
export function winQuote(s: string): string {
  if (/["%^&|<>\r\n]/.test(s)) throw new TypeError(`argument ${JSON.stringify(s)}: characters cmd.exe would interpret`);
  return /[\s]/.test(s) || s === '' ? `"${s}"` : s;
}

/** `Published Name` of the driver package whose `Original Name` is `inf` (pnputil /enum-drivers). */
export function publishedNameOf(enumDrivers: string, inf: string): string | undefined {
  for (const block of enumDrivers.split(/\r?\n\s*\r?\n/)) {
    const orig = /Original Name:\s*(\S+)/i.exec(block)?.[1];
    const pub = /Published Name:\s*(\S+)/i.exec(block)?.[1];
    if (orig && pub && orig.toLowerCase() === inf.toLowerCase()) return pub;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The guest

export class WindowsGuest implements Guest {
  readonly os = 'windows' as const;
  /** Windows writes nothing to the serial port: boot readiness comes from SSH (waitForWindowsBoot). */
  readonly readyMarker = /^\u0000never\u0000$/;
  readonly crashSignatures = WINDOWS_CRASH_SIGNATURES;
  readonly nicModel = 'e1000e';
  readonly sshUser: string;
  readonly sshKey: string;
  readonly sshPassword: string | undefined;
  /** Set while we reboot on purpose (Driver Verifier), so the RESET is not a crash. */
  expectingReboot = false;
  private overlay: string | undefined;
  private vars: string | undefined;

  constructor(readonly config: WindowsGuestConfig) {
    this.sshUser = config.sshUser;
    this.sshKey = config.sshKeyPath ?? '';
    this.sshPassword = config.sshPassword;
  }

  /**
   * From a validated scenario. Relative paths are resolved against `baseDir` (the scenario
   * file's directory). Throws UsageError naming the scenario field when something is missing.
   */
  static fromScenario(s: Scenario, qemu: string, baseDir = process.cwd()): WindowsGuest {
    const g = s.guest;
    const abs = (p: string): string => {
      const e = expandHome(p);
      return isAbsolute(e) ? e : resolve(baseDir, e);
    };
    if (g.os !== 'windows') throw new UsageError(`scenario ${s.name}: guest.os is ${g.os}, not windows`);
    if (!g.image) throw new UsageError(`scenario ${s.name}: guest.image is not set — give the path of your Windows qcow2 (build one with: hilbox image windows --iso WIN.iso)`);
    const image = abs(g.image);
    if (!existsSync(image)) throw new UsageError(`scenario ${s.name}: guest.image ${image} does not exist (build one with: hilbox image windows --iso WIN.iso)`);
    if (!g.ssh) throw new UsageError(`scenario ${s.name}: guest.ssh is not set ({user, keyPath | password})`);
    const firmware = g.firmware ? abs(g.firmware) : undefined;
    if (firmware && !existsSync(firmware)) throw new UsageError(`scenario ${s.name}: guest.firmware ${firmware} does not exist (apt-get install ovmf, or omit guest.firmware for SeaBIOS)`);
    if (firmware && /secboot|\.ms\.fd$/i.test(firmware)) {
      throw new UsageError(`scenario ${s.name}: guest.firmware ${firmware} is a Secure Boot build; use the non-secure OVMF_CODE_4M.fd (test-signed drivers do not load with Secure Boot on)`);
    }
    const key = g.ssh.keyPath ? abs(g.ssh.keyPath) : undefined;
    if (key && !existsSync(key)) throw new UsageError(`scenario ${s.name}: guest.ssh.keyPath ${key} does not exist`);
    return new WindowsGuest({
      image,
      qemu,
      sshUser: g.ssh.user,
      ...(firmware ? { firmware } : {}),
      ...(key ? { sshKeyPath: key } : {}),
      ...(g.ssh.password ? { sshPassword: g.ssh.password } : {}),
    });
  }

  /** qemu-img next to the QEMU binary, else on PATH. */
  qemuImg(): string {
    const local = join(dirname(this.config.qemu), 'qemu-img');
    return existsSync(local) ? local : 'qemu-img';
  }

  /** Per-run overlay (and UEFI variable store) in the VM's private directory. */
  async prepare(runDir: string): Promise<void> {
    const image = resolve(this.config.image);
    try {
      await access(image, constants.R_OK);
    } catch {
      throw new UsageError(`guest.image ${image}: not readable`);
    }
    this.overlay = join(runDir, 'windows-overlay.qcow2');
    await createOverlay(this.qemuImg(), image, this.overlay);
    if (this.config.firmware) {
      const tmpl = this.config.firmwareVars ?? varsTemplateFor(this.config.firmware);
      if (!existsSync(tmpl)) throw new InfraError(`UEFI variable template ${tmpl} not found (apt-get install ovmf)`);
      this.vars = join(runDir, 'efivars.fd');
      await copyFile(tmpl, this.vars);
    }
  }

  bootArgs(): string[] {
    if (!this.overlay) throw new InfraError('WindowsGuest.bootArgs() before prepare(): no overlay yet');
    const a: string[] = [];
    if (this.config.firmware) {
      a.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${optPath(this.config.firmware)}`);
      a.push('-drive', `if=pflash,format=raw,unit=1,file=${optPath(this.vars!)}`);
    }
    // q35's built-in AHCI (storahci is in-box), the overlay as the boot disk.
    a.push('-drive', `if=none,id=windisk,format=qcow2,file=${optPath(this.overlay)}`);
    a.push('-device', 'ide-hd,drive=windisk,bus=ide.0,bootindex=0');
    a.push('-device', 'VGA');
    a.push('-device', 'pvpanic');
    a.push('-rtc', 'base=localtime');
    return a;
  }

  /** Installs the driver package: a host .sys (+ .inf/.cat next to it) or the image's. */
  async loadDriver(ssh: SshClient, opts: LoadDriverOptions = {}): Promise<ExecResult> {
    let inf = this.config.imageDriverInf ?? IMAGE_DRIVER_INF;
    if (opts.ko) {
      const sys = opts.ko;
      const base = sys.slice(0, -extname(sys).length);
      const files = [sys, `${base}.inf`, `${base}.cat`].filter((f) => existsSync(f));
      if (!files.some((f) => f.endsWith('.inf'))) throw new UsageError(`driver.path ${sys}: pnputil needs ${basename(base)}.inf next to it`);
      await ssh.exec(`if not exist ${GUEST_DIR}\\upload mkdir ${GUEST_DIR}\\upload`, { timeoutMs: 30_000 });
      for (const f of files) await ssh.upload(f, `${GUEST_DIR}/upload/${basename(f)}`.replace(/\\/g, '/'));
      inf = `${GUEST_DIR}\\upload\\${basename(base)}.inf`;
    }
    const r = await ssh.exec(`pnputil /add-driver ${winQuote(inf)} /install`, { timeoutMs: 180_000 });
    // 3010: installed, reboot required (ERROR_SUCCESS_REBOOT_REQUIRED).
    if (r.code === 3010) return { ...r, code: 0, stdout: `${r.stdout}\n(hilbox: pnputil asks for a reboot)` };
    return r;
  }

  /** Removes the driver package (and its devices' driver) again. */
  async unloadDriver(ssh: SshClient, name = 'hilbox'): Promise<ExecResult> {
    const list = await ssh.exec('pnputil /enum-drivers', { timeoutMs: 60_000 });
    const pub = publishedNameOf(list.stdout, `${name}.inf`);
    if (!pub) return { code: 1, signal: null, stdout: list.stdout, stderr: `no driver package ${name}.inf is installed` };
    return ssh.exec(`pnputil /delete-driver ${winQuote(pub)} /uninstall /force`, { timeoutMs: 180_000 });
  }

  /** Windows has no dmesg: the System event log's critical and error entries, newest first. */
  async kernelLog(ssh: SshClient): Promise<string> {
    const q = '*[System[(Level=1 or Level=2)]]';
    return (await ssh.exec(`wevtutil qe System /c:50 /rd:true /f:text /q:"${q}"`, { timeoutMs: 60_000 })).stdout;
  }

  sshTarget(port: number): SshTarget {
    // `password` is honoured once ssh/client.ts passes it to ssh2 (see the lead's patch).
    return Object.assign(
      { port, user: this.sshUser, privateKey: this.sshKey },
      this.sshPassword !== undefined ? { password: this.sshPassword } : {},
    ) as SshTarget;
  }
}

// ---------------------------------------------------------------------------------------------
// Disk overlay

/** Creates `overlay` with `base` as its read-only backing file; the base is never opened for writing. */
export async function createOverlay(qemuImg: string, base: string, overlay: string): Promise<void> {
  const r = await execa(qemuImg, ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', resolve(base), overlay], { reject: false });
  if (r.exitCode !== 0) {
    const why = String(r.stderr || r.stdout).trim();
    if (/Could not open|No such file/i.test(why)) throw new UsageError(`guest.image ${base}: ${why}`);
    if (/not.*qcow2|Image is not in qcow2 format|format/i.test(why)) throw new UsageError(`guest.image ${base} is not a qcow2 image: ${why}`);
    throw new InfraError(`qemu-img create (overlay of ${base}) failed: ${why}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Boot

export interface WindowsBootOptions {
  qemu: string;
  /** Directory of the scenario file, for relative paths in it. */
  baseDir?: string;
  logDir?: string;
  /** Load the driver after boot (default true). */
  loadDriver?: boolean;
  /** Enable Driver Verifier for hilbox.sys (reboot included). Default: $HILBOX_VERIFIER=1. */
  verifier?: boolean;
  warn?: (m: string) => void;
  progress?: (step: string) => void;
  onBooted?: (ms: number) => void;
}

async function kvmUsable(): Promise<boolean> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** `auto` → kvm when /dev/kvm is usable (Windows under TCG is very slow), else tcg. */
export async function resolveWindowsAccel(choice: AccelChoice): Promise<Accel> {
  const env = process.env.HILBOX_ACCEL;
  if (choice === 'auto' && (env === 'tcg' || env === 'kvm')) choice = env;
  if (choice !== 'auto') return choice;
  return (await kvmUsable()) ? 'kvm' : 'tcg';
}

function memoryBytes(m: string): number {
  const n = Number.parseInt(m, 10);
  const unit = m.at(-1)?.toUpperCase();
  const mul = unit === 'K' ? 2 ** 10 : unit === 'M' ? 2 ** 20 : unit === 'G' ? 2 ** 30 : unit === 'T' ? 2 ** 40 : 1;
  return n * mul;
}

/** Turns QMP GUEST_PANICKED / unexpected RESET events into crash lines in the console stream. */
export function watchWindowsCrashes(machine: Machine, guest: WindowsGuest): void {
  const note = (line: string): void => machine.console.push(`\n${line}\n`);
  machine.qmp.on('GUEST_PANICKED', (ev: QmpEvent) => {
    const info = (ev.data?.info ?? {}) as Record<string, unknown>;
    const code = typeof info.arg1 === 'number' ? ` bugcheck code 0x${info.arg1.toString(16)}` : '';
    note(`${PANIC_LINE}: Windows bugcheck (blue screen)${code} ${JSON.stringify(ev.data ?? {})}`);
  });
  const onReset = (ev: QmpEvent): void => {
    if (guest.expectingReboot) return;
    const reason = String(ev.data?.reason ?? '');
    if (ev.event === 'SHUTDOWN' && reason !== 'guest-reset') return; // a power-off is not a crash
    note(`${RESET_LINE} (${ev.event}${reason ? ` ${reason}` : ''}): Windows restarted by itself — usually a bugcheck with automatic restart; install the pvpanic driver (virtio-win) for the stop code`);
  };
  machine.qmp.on('RESET', onReset);
  machine.qmp.on('SHUTDOWN', onReset);
}

/** Polls SSH until `cmd /c ver` answers; throws BootError (QEMU is stopped by the caller). */
export async function waitForWindowsBoot(machine: Machine, guest: WindowsGuest, timeoutMs: number): Promise<SshClient> {
  const t0 = Date.now();
  let last = 'no attempt yet';
  while (Date.now() - t0 < timeoutMs) {
    if (!machine.alive) break;
    let ssh: SshClient | undefined;
    try {
      ssh = await machine.guard(SshClient.connect(guest.sshTarget(machine.sshPort), Math.min(30_000, Math.max(1000, timeoutMs - (Date.now() - t0)))));
      const r = await machine.guard(ssh.exec('cmd /c ver', { timeoutMs: 30_000 }));
      if (r.code === 0 && /Windows/i.test(r.stdout)) return ssh;
      last = `cmd /c ver: exit ${r.code} ${r.stdout.trim()} ${r.stderr.trim()}`;
    } catch (e) {
      if (e instanceof HilboxError && e.kind !== 'timeout') throw e;
      last = (e as Error).message.split('\n')[0] ?? String(e);
      if (/authentication methods failed/i.test(last)) {
        ssh?.close();
        throw new BootError(`Windows answered on SSH but refused user ${guest.sshUser}: ${last} — check guest.ssh (key in C:\\ProgramData\\ssh\\administrators_authorized_keys with the right ACL, or the password)`);
      }
    }
    ssh?.close();
    await sleep(2000);
  }
  const f = machine.failure();
  if (f) throw f;
  throw new BootError(
    `Windows did not answer \`cmd /c ver\` over SSH (127.0.0.1:${machine.sshPort}) within ${timeoutMs} ms (${machine.decision.accel}); last: ${last}. ` +
      'Check that the image starts OpenSSH Server automatically and the firewall allows TCP 22 (fixtures/windows/provision.ps1 does both).',
  );
}

/** Reboots on purpose (Driver Verifier): -no-reboot is lifted for this one reset via QMP set-action. */
export async function rebootWindows(machine: Machine, guest: WindowsGuest, ssh: SshClient, timeoutMs: number): Promise<SshClient> {
  guest.expectingReboot = true;
  try {
    await machine.qmp.execute('set-action', { reboot: 'reset' });
    const reset = machine.qmp.waitForEvent('RESET', () => true, timeoutMs);
    await ssh.exec('shutdown /r /t 0 /f', { timeoutMs: 30_000 }).catch(() => undefined);
    ssh.close();
    await machine.guard(reset);
  } finally {
    await machine.qmp.execute('set-action', { reboot: 'shutdown' }).catch(() => undefined);
    guest.expectingReboot = false;
  }
  return waitForWindowsBoot(machine, guest, timeoutMs);
}

/** Boots the scenario's Windows image with hilbox-pci and (by default) installs the driver. */
export async function bootWindowsScenario(scenario: Scenario, o: WindowsBootOptions): Promise<StartedHilboxVm> {
  const guest = WindowsGuest.fromScenario(scenario, o.qemu, o.baseDir);
  if (memoryBytes(scenario.memory) < 2 * 2 ** 30) o.warn?.(`memory: ${scenario.memory} is little for Windows; use 4G`);
  const accel = await resolveWindowsAccel(scenario.accelerator);
  const props = deviceProperties(scenario.device) as Record<string, string | number | boolean>;
  o.progress?.(`booting Windows from ${guest.config.image} on an overlay (${accel}, ${guest.config.firmware ? 'UEFI' : 'SeaBIOS'})`);
  const started = Date.now();
  const machine = await Machine.launch({
    qemu: o.qemu,
    guest,
    accel,
    memory: scenario.memory,
    cpus: scenario.cpus,
    device: { id: 'hb0', props, feed: wantsFeed(scenario.device) },
    snapshotDisk: false,
    rng: false,
    ...(o.logDir ? { logDir: o.logDir } : {}),
    ...(o.warn ? { warn: o.warn } : {}),
  });
  let feeder: MouseFeeder | undefined;
  try {
    watchWindowsCrashes(machine, guest);
    const timeoutMs = machine.scaled((scenario.timeouts?.bootSeconds ?? 600) * 1000);
    let ssh = await waitForWindowsBoot(machine, guest, timeoutMs);
    o.onBooted?.(Date.now() - started);
    if (o.loadDriver !== false) {
      o.progress?.('installing the driver (pnputil /add-driver /install)');
      const r = await machine.guard(guest.loadDriver(ssh, scenario.driver?.path ? { ko: resolve(o.baseDir ?? process.cwd(), scenario.driver.path) } : {}));
      if (r.code !== 0) throw new BootError(`installing the driver failed (pnputil exit ${r.code}): ${(r.stdout + r.stderr).trim().split('\n').slice(-5).join(' | ')}`);
      if (o.verifier ?? process.env.HILBOX_VERIFIER === '1') {
        o.progress?.('enabling Driver Verifier for hilbox.sys (reboot)');
        const v = await machine.guard(ssh.exec('verifier /standard /driver hilbox.sys', { timeoutMs: 60_000 }));
        // verifier exits 2 when a reboot is needed for the change.
        if (v.code !== 0 && v.code !== 2) throw new BootError(`verifier /standard failed (exit ${v.code}): ${v.stdout.trim()}`);
        ssh = await rebootWindows(machine, guest, ssh, timeoutMs);
        const q = await machine.guard(ssh.exec('verifier /querysettings', { timeoutMs: 60_000 }));
        if (!/hilbox\.sys/i.test(q.stdout)) throw new BootError(`Driver Verifier is not active for hilbox.sys after the reboot:\n${q.stdout.trim()}`);
      }
    }
    if (machine.feedSocket) feeder = await MouseFeeder.connect(machine.feedSocket);
    return new StartedHilboxVm(machine, guest, ssh, feeder, 'hb0');
  } catch (e) {
    feeder?.close();
    await machine.stop();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Windows suites: the probe over SSH, the same case and metric names as on Linux

export interface WindowsSuiteContext {
  vm: StartedHilboxVm;
  scenario: Scenario;
  outDir: string;
  caseTimeoutMs: number;
  step?: (text: string) => void;
}

/** Builds (cached) hilbox-probe.exe with scripts/build-windows-probe.mjs; returns its path. */
export async function ensureWindowsProbe(): Promise<string> {
  const zx = join(repoRoot, 'node_modules', '.bin', 'zx');
  const r = await execa(zx, [join(repoRoot, 'scripts', 'build-windows-probe.mjs')], { cwd: repoRoot, reject: false });
  const last = String(r.stdout).trim().split('\n').pop()?.trim() ?? '';
  if (r.exitCode !== 0 || !last.endsWith('.exe')) throw new InfraError(`scripts/build-windows-probe.mjs failed (exit ${r.exitCode}):\n${String(r.stderr).trim()}`);
  return last;
}

/** The probe command line for cmd.exe. */
export function probeCommand(args: readonly string[], dev?: string): string {
  return [GUEST_PROBE, ...(dev ? ['--dev', dev] : []), ...args].map(winQuote).join(' ');
}

async function runWinProbe(ctx: WindowsSuiteContext, args: string[], suite: string, step: string, opts: ExecOptions = {}): Promise<CaseResult[]> {
  const started = Date.now();
  let r: ExecResult;
  try {
    r = await ctx.vm.exec(probeCommand(args), { timeoutMs: ctx.caseTimeoutMs, ...opts });
  } catch (e) {
    return [{ suite, name: step, status: 'fail', reason: `probe ${args.join(' ')} did not finish: ${(e as Error).message.split('\n')[0]}`, durationMs: Date.now() - started }];
  }
  const cases = parseProbeOutput(r.stdout, { suite, step });
  const durationMs = Date.now() - started;
  if (cases.length === 0) return [{ suite, name: step, status: 'fail', reason: `probe ${args.join(' ')} printed no result (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`, durationMs }];
  for (const c of cases) c.durationMs ??= Math.round(durationMs / cases.length);
  return cases;
}

function retag(c: CaseResult, name: string, details: Record<string, unknown>): CaseResult {
  return { ...c, name, details: { ...(c.details ?? {}), ...details } };
}

export async function runWindowsVerify(ctx: WindowsSuiteContext): Promise<CaseResult[]> {
  const { vm, scenario } = ctx;
  const out: CaseResult[] = [];
  ctx.step?.('verify: device info and frames (Windows)');
  out.push(...(await runWinProbe(ctx, ['info'], 'verify', 'info')));
  out.push(...(await runWinProbe(ctx, ['verify-frames', '--frames', String(scenario.suites.verify.frames), '--method', 'both'], 'verify', 'verify-frames')));
  ctx.step?.('verify: write through the mapping (Windows)');
  const before = await vm.deviceCounters();
  const wm = await runWinProbe(ctx, ['write-mapping'], 'verify', 'write-mapping');
  const delta = (await vm.deviceCounters())['fb-write-attempts'] - before['fb-write-attempts'];
  for (const c of wm) {
    c.metrics = { ...(c.metrics ?? {}), device_write_attempts_delta: { value: delta, unit: 'writes' } };
    if (delta !== 0 && c.status === 'pass') Object.assign(c, { status: 'fail', reason: `a write through the mapping reached the device (fb-write-attempts +${delta})` });
  }
  out.push(...wm);
  if (scenario.device['mouse-rate-hz'] > 0) {
    ctx.step?.('verify: generator events in order (Windows)');
    const ev = await runWinProbe(ctx, ['read-events', '--count', '500', '--timeout-ms', String(ctx.caseTimeoutMs), '--flush'], 'verify', 'read-events');
    out.push(...ev.map((c) => retag(c, 'generator-events', { source: 'generator' })));
  }
  ctx.step?.('verify: frame picture (Windows)');
  out.push(await windowsFramePicture(ctx));
  return out;
}

async function windowsFramePicture(ctx: WindowsSuiteContext): Promise<CaseResult> {
  const { vm, scenario, outDir } = ctx;
  const raw = `${GUEST_DIR}\\frame.raw`;
  const [c] = await runWinProbe(ctx, ['dump-frame', '--out', raw], 'verify', 'dump-frame');
  if (!c || c.status !== 'pass') return c ?? hostCase('verify', 'dump-frame', 'fail', 'no result');
  const b64 = await vm.exec(`powershell -NoProfile -Command "[Convert]::ToBase64String([IO.File]::ReadAllBytes('${raw}'))"`, { timeoutMs: ctx.caseTimeoutMs });
  const meta = await vm.exec(`type ${raw}.json`, { timeoutMs: 30_000 });
  const buf = Buffer.from(b64.stdout.replace(/\s+/g, ''), 'base64');
  const info = JSON.parse(meta.stdout || '{}') as { frame_number?: number; width?: number; height?: number };
  const width = info.width ?? scenario.device.width;
  const height = info.height ?? scenario.device.height;
  writeFileSync(join(outDir, 'frame-guest.rgb'), buf);
  const cmp = writeComparisonPng(join(outDir, 'frame.png'), buf, { width, height, stride: 3 * width }, info.frame_number !== undefined ? { expectedFrame: info.frame_number } : {});
  const r = retag(c, 'frame-picture', { png: 'frame.png', frame_number: info.frame_number, torn: cmp.torn });
  r.metrics = { ...(r.metrics ?? {}), host_mismatched_pixels: { value: cmp.mismatches, unit: 'px' } };
  if (!cmp.ok) Object.assign(r, { status: 'fail', reason: `the frame read by the guest differs from spec frame ${cmp.expectedFrame}: ${cmp.mismatches} mismatched pixels (see frame.png)` });
  return r;
}

const FB_METHODS = ['ram', 'map', 'copy', 'qword', 'bytewise'] as const;

export async function runWindowsThroughput(ctx: WindowsSuiteContext): Promise<CaseResult[]> {
  const { scenario } = ctx;
  const t = scenario.suites.throughput;
  const mode = scenario.device['fb-mode'];
  const extra = (s: number): ExecOptions => ({ timeoutMs: ctx.caseTimeoutMs + s * 4000 });
  const out: CaseResult[] = [];
  for (const method of FB_METHODS) {
    ctx.step?.(`throughput: framebuffer ${method} (${mode}, Windows)`);
    const cases = await runWinProbe(ctx, ['fb-throughput', '--method', method, '--seconds', String(t.seconds), '--seqlock', 'both'], 'throughput', `fb-${method}-${mode}`, extra(t.seconds));
    out.push(...cases.map((c) => retag(c, `fb-${method}-${mode}`, { method, fb_mode: mode })));
  }
  for (const other of t.fbModes.filter((m) => m !== mode)) {
    out.push(hostCase('throughput', `fb-${other}`, 'skip', `fb-mode ${other}: on Windows only the booted device (fb-mode ${mode}) is measured — hot-plugging a second device needs PnP support not driven yet`));
  }
  const rate = scenario.device['mouse-rate-hz'];
  const bundle = scenario.device['mouse-bundle'];
  if (rate === 0) {
    out.push(hostCase('throughput', 'mouse', 'skip', 'device mouse-rate-hz is 0: no generator events to measure (set device.mouse-rate-hz)'));
    return out;
  }
  const pending = t.short ? t.mouse.pending.filter((_, i, a) => i === 0 || i === a.length - 1) : t.mouse.pending;
  for (const p of [...pending.map((n) => ({ m: 'iocp', n })), { m: 'poll', n: 1 }]) {
    ctx.step?.(`throughput: mouse ${rate} Hz ×${bundle}, ${p.m}${p.m === 'iocp' ? `, ${p.n} pending` : ''} (Windows)`);
    const cases = await runWinProbe(ctx, ['events-throughput', '--pending', String(p.n), '--seconds', String(t.seconds), '--mode', p.m], 'throughput', `events-${p.m}`, extra(t.seconds));
    const label = p.m === 'poll' ? 'polling' : 'inverted-call';
    out.push(...cases.map((c) => retag(c, `mouse-${label}-r${rate}-b${bundle}${p.m === 'poll' ? '' : `-p${p.n}`}`, { mode: label, rate_hz: rate, bundle, pending: p.n, mechanism: p.m === 'iocp' ? 'I/O completion port' : 'STATS poll + ReadFile' })));
  }
  return out;
}

const UNPLUG_CASES = ['unplug-while-mapped', 'unplug-reads-pending'];

async function windowsPostChecks(ctx: WindowsSuiteContext): Promise<string[]> {
  const { vm } = ctx;
  const problems: string[] = [];
  try {
    const s = await vm.qmp.execute<{ status: string }>('query-status');
    if (s.status !== 'running') problems.push(`QEMU is ${s.status}, not running`);
  } catch (e) {
    return [`QEMU does not answer: ${(e as Error).message.split('\n')[0]}`];
  }
  try {
    vm.assertNoCrash();
  } catch (e) {
    return [(e as Error).message.split('\n')[0]!];
  }
  await vm.exec('taskkill /F /IM hilbox-probe.exe >nul 2>&1', { timeoutMs: 30_000 }).catch(() => undefined);
  const info = await runWinProbe(ctx, ['info'], 'security', 'post-check');
  if (info[0]?.status !== 'pass') problems.push(`the device does not answer afterwards: ${info[0]?.reason ?? 'no result'}`);
  return problems;
}

export async function runWindowsSecurity(ctx: WindowsSuiteContext): Promise<CaseResult[]> {
  const { vm, scenario } = ctx;
  const listed = await vm.exec(probeCommand(['security', '--list']), { timeoutMs: 30_000 });
  const parsed = JSON.parse(listed.stdout.trim().split('\n')[0] ?? '{}') as { cases?: { name: string; policy?: string; host_action: boolean }[] };
  const cases = parsed.cases ?? [];
  const known = [...cases.filter((c) => !c.host_action).map((c) => c.name), ...UNPLUG_CASES];
  const selected = selectCases('security', scenario.suites.security.cases, known);
  const out: CaseResult[] = [];
  let unplug: CaseResult[] | undefined;
  for (const name of selected) {
    ctx.step?.(`security: ${name} (Windows)`);
    const started = Date.now();
    let got: CaseResult[];
    if (UNPLUG_CASES.includes(name)) {
      unplug ??= await windowsUnplug(ctx);
      got = unplug.filter((c) => c.name === name);
    } else {
      got = await runWinProbe(ctx, ['security', '--case', name], 'security', name);
    }
    const problems = await windowsPostChecks(ctx);
    for (const c of got) {
      c.policy ??= cases.find((l) => l.name === c.name)?.policy;
      c.durationMs = Date.now() - started;
      if (problems.length) Object.assign(c, { status: 'fail', reason: `${c.status === 'pass' ? 'policy held, but' : `${c.reason ?? 'failed'}; also`}: ${problems.join('; ')}` });
      out.push(c);
    }
  }
  return out;
}

async function windowsUnplug(ctx: WindowsSuiteContext): Promise<CaseResult[]> {
  const { vm, scenario } = ctx;
  const fail = (reason: string): CaseResult[] => UNPLUG_CASES.map((name) => hostCase('security', name, 'fail', reason));
  const [prep] = await runWinProbe(ctx, ['security', '--case', 'unplug-prepare'], 'security', 'unplug-prepare');
  if (!prep || prep.status !== 'pass') return fail(`unplug-prepare: ${prep?.reason ?? 'no result'}`);
  try {
    await deviceDel(vm.qmp, 'hb0', vm.scaled(60_000));
  } catch (e) {
    return fail(`device_del hb0: ${(e as Error).message.split('\n')[0]} (Windows vetoes an orderly removal when the driver fails IRP_MN_QUERY_REMOVE_DEVICE)`);
  }
  const checked = await runWinProbe(ctx, ['security', '--case', 'unplug-check'], 'security', 'unplug-check');
  const props = deviceProperties(scenario.device) as Record<string, string | number | boolean>;
  await plugDevice(vm.qmp, { id: 'hb0', bus: 'rp0', props: wantsFeed(scenario.device) ? { ...props, chardev: 'hbfeed' } : props });
  // Give PnP time to start the device again before the next case opens \\.\Hilbox0.
  for (let i = 0; i < 30; i++) {
    const [c] = await runWinProbe(ctx, ['info'], 'security', 'replug');
    if (c?.status === 'pass') break;
    await sleep(1000);
  }
  const byName = new Map(checked.map((c) => [c.name, c]));
  return UNPLUG_CASES.map((name) => byName.get(name) ?? hostCase('security', name, 'fail', `unplug-check reported no ${name} result`));
}

/** Uploads the probe, then runs the enabled suites. */
export async function runWindowsSuites(ctx: WindowsSuiteContext, suites: readonly ('verify' | 'throughput' | 'security')[]): Promise<CaseResult[]> {
  const exe = await ensureWindowsProbe();
  if (!(await stat(exe)).isFile()) throw new InfraError(`${exe} is not a file`);
  await ctx.vm.exec(`if not exist ${GUEST_DIR} mkdir ${GUEST_DIR}`, { timeoutMs: 30_000 });
  await ctx.vm.upload(exe, 'C:/hilbox/hilbox-probe.exe', 0o755);
  const out: CaseResult[] = [];
  for (const s of suites) {
    if (s === 'verify') out.push(...(await runWindowsVerify(ctx)));
    if (s === 'throughput') out.push(...(await runWindowsThroughput(ctx)));
    if (s === 'security') out.push(...(await runWindowsSecurity(ctx)));
  }
  return out;
}
