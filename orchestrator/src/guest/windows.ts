/**
 * The Windows guest: the user's own image (hilbox ships no Windows). One job: the Windows verbs
 * of the guest seam (guest.ts); boot, suites and reports are the same code as for Linux.
 *
 *  - The user's qcow2 is never written: every run boots a qcow2 overlay (backing file = the
 *    image) created with the qemu-img next to the QEMU binary, in the VM's private directory.
 *  - Firmware: SeaBIOS (default) or UEFI (`guest.firmware` = an OVMF *code* file; a private copy
 *    of the matching non-secure VARS template is used, so Secure Boot stays off and test-signed
 *    drivers load).
 *  - In-box drivers only: AHCI disk (q35's ICH9 controller), e1000e NIC, std VGA.
 *  - Readiness: Windows prints nothing on the serial port, so SSH is polled until `cmd /c ver`
 *    answers (600 s under KVM, ×4 under TCG).
 *  - Crashes: `-device pvpanic` makes a bugcheck a QMP GUEST_PANICKED event (with the pvpanic
 *    driver from virtio-win), and -no-reboot turns Windows' automatic restart after a bugcheck
 *    into SHUTDOWN(guest-reset); the launcher writes both into the console stream (machine.ts)
 *    and the signatures below match them.
 *  - Driver: the .sys with its .inf/.cat uploaded over SFTP, `pnputil /add-driver … /install`,
 *    optionally Driver Verifier (`verifier /standard /driver hilbox.sys`, then a reboot).
 */
import { constants, existsSync } from 'node:fs';
import { access, copyFile } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { homedir } from 'node:os';
import { execa } from 'execa';
import { InfraError, UsageError } from '../core/errors.ts';
import { QMP_PANIC_LINE, QMP_RESET_LINE, type CrashSignature } from '../vm/crash-scan.ts';
import { optPath } from '../vm/qemu-args.ts';
import { SshCommandReadiness } from '../vm/readiness.ts';
import type { ExecResult, SshTarget } from '../ssh/client.ts';
import { ensureWindowsProbe } from '../products/ensure.ts';
import type { GuestConfig } from '../scenario/schema.ts';
import type { DriverOptions, EventModes, Guest, GuestSession } from './guest.ts';
import { securityCaseNames } from './probe-cases.ts';

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
  /** Where the Windows driver package lives in the guest when no host .sys is given. */
  imageDriverInf?: string;
  /** Enable Driver Verifier for hilbox.sys after installing it (a reboot). */
  verifier?: boolean;
}

/** Directory in the guest for everything hilbox uploads ('/'-separated: SFTP and Win32 both take it). */
export const GUEST_DIR = 'C:/hilbox';
export const GUEST_PROBE = 'C:\\hilbox\\hilbox-probe.exe';
/** The driver package a golden image built with fixtures/windows/ carries. */
export const IMAGE_DRIVER_INF = 'C:\\hilbox\\driver\\hilbox.inf';

export const WINDOWS_CRASH_SIGNATURES: readonly CrashSignature[] = [
  { name: 'bugcheck', pattern: new RegExp(`^${QMP_PANIC_LINE}`), fatal: true },
  { name: 'bugcheck', pattern: /INSTANCE CLASS="BLUESCREEN"|\*STOP: 0x[0-9A-Fa-f]{8}/, fatal: true },
  { name: 'guest-reset', pattern: new RegExp(`^${QMP_RESET_LINE}`), fatal: true },
];

const EVENT_MODES: EventModes = {
  invertedCall: { probeMode: 'iocp', mechanism: 'I/O completion port' },
  polling: { probeMode: 'poll', mechanism: 'STATS poll + ReadFile' },
};

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

/** qemu-img next to the QEMU binary, else on PATH. */
export function qemuImgBeside(qemu: string): string {
  const local = join(dirname(qemu), 'qemu-img');
  return existsSync(local) ? local : 'qemu-img';
}

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

export class WindowsGuest implements Guest {
  readonly os = 'windows' as const;
  readonly readiness = new SshCommandReadiness(
    'cmd /c ver',
    /Windows/i,
    2000,
    'check guest.ssh (the key in C:\\ProgramData\\ssh\\administrators_authorized_keys with the right ACL, or the password); fixtures/windows/provision.ps1 starts OpenSSH Server and opens TCP 22',
  );
  readonly crashSignatures = WINDOWS_CRASH_SIGNATURES;
  readonly nicModel = 'e1000e';
  // The overlay is the disk: no scratch snapshot disk; no virtio-rng driver in-box.
  readonly machine = { snapshotDisk: false, rng: false, bootTimeoutMs: 600_000, minMemoryBytes: 2 * 2 ** 30 };
  readonly workDir = GUEST_DIR;
  readonly rebootCommand = 'shutdown /r /t 0 /f';
  static readonly eventModes = EVENT_MODES;
  readonly eventModes = EVENT_MODES;

  /** Read from the probe's case table on first use. */
  static get securityCases(): readonly string[] {
    return securityCaseNames('windows');
  }

  get securityCases(): readonly string[] {
    return securityCaseNames('windows');
  }
  private overlay: string | undefined;
  private vars: string | undefined;

  constructor(readonly config: WindowsGuestConfig) {}

  /**
   * From a scenario's `guest` section. Relative paths are resolved against `baseDir` (the
   * scenario file's directory). Throws UsageError naming the scenario field when something is
   * missing or wrong — before anything boots.
   */
  static fromScenario(g: GuestConfig, baseDir = process.cwd()): WindowsGuest {
    const abs = (p: string): string => {
      const e = expandHome(p);
      return isAbsolute(e) ? e : resolve(baseDir, e);
    };
    if (g.os !== 'windows') throw new UsageError(`guest.os is ${g.os}, not windows`);
    if (!g.image) throw new UsageError('guest.image is not set — give the path of your Windows qcow2 (build one with: hilbox image windows --iso WIN.iso)');
    const image = abs(g.image);
    if (!existsSync(image)) throw new UsageError(`guest.image ${image} does not exist (build one with: hilbox image windows --iso WIN.iso)`);
    if (!g.ssh) throw new UsageError('guest.ssh is not set ({user, keyPath | password})');
    const firmware = g.firmware ? abs(g.firmware) : undefined;
    if (firmware && !existsSync(firmware)) throw new UsageError(`guest.firmware ${firmware} does not exist (apt-get install ovmf, or omit guest.firmware for SeaBIOS)`);
    if (firmware && /secboot|\.ms\.fd$/i.test(firmware)) {
      throw new UsageError(`guest.firmware ${firmware} is a Secure Boot build; use the non-secure OVMF_CODE_4M.fd (test-signed drivers do not load with Secure Boot on)`);
    }
    const key = g.ssh.keyPath ? abs(g.ssh.keyPath) : undefined;
    if (key && !existsSync(key)) throw new UsageError(`guest.ssh.keyPath ${key} does not exist`);
    return new WindowsGuest({
      image,
      sshUser: g.ssh.user,
      ...(firmware ? { firmware } : {}),
      ...(key ? { sshKeyPath: key } : {}),
      ...(g.ssh.password ? { sshPassword: g.ssh.password } : {}),
      ...(process.env.HILBOX_VERIFIER === '1' ? { verifier: true } : {}),
    });
  }

  get description(): string {
    return `Windows from ${this.config.image} on an overlay (${this.config.firmware ? 'UEFI' : 'SeaBIOS'})`;
  }

  sshTarget(port: number): SshTarget {
    return {
      port,
      user: this.config.sshUser,
      privateKey: this.config.sshKeyPath ?? '',
      ...(this.config.sshPassword !== undefined ? { password: this.config.sshPassword } : {}),
    };
  }

  /** Per-run overlay (made with the qemu-img next to `qemu`) and UEFI variable store in the VM's private directory. */
  async prepare(runDir: string, qemu: string): Promise<void> {
    const image = resolve(this.config.image);
    try {
      await access(image, constants.R_OK);
    } catch {
      throw new UsageError(`guest.image ${image}: not readable`);
    }
    this.overlay = join(runDir, 'windows-overlay.qcow2');
    await createOverlay(qemuImgBeside(qemu), image, this.overlay);
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

  /** Installs the driver package: a host .sys (+ .inf/.cat next to it) or the image's; then Driver Verifier if asked. */
  async installDriver(s: GuestSession, opts: DriverOptions = {}): Promise<ExecResult> {
    let inf = this.config.imageDriverInf ?? IMAGE_DRIVER_INF;
    if (opts.path) {
      const sys = opts.path;
      const base = sys.slice(0, -extname(sys).length);
      const files = [sys, `${base}.inf`, `${base}.cat`].filter((f) => existsSync(f));
      if (!files.some((f) => f.endsWith('.inf'))) throw new UsageError(`driver.path ${sys}: pnputil needs ${basename(base)}.inf next to it`);
      await s.exec('if not exist C:\\hilbox\\upload mkdir C:\\hilbox\\upload', { timeoutMs: 30_000 });
      for (const f of files) await s.upload(f, `${GUEST_DIR}/upload/${basename(f)}`);
      inf = `C:\\hilbox\\upload\\${basename(base)}.inf`;
    }
    let r = await s.exec(`pnputil /add-driver ${winQuote(inf)} /install`, { timeoutMs: 180_000 });
    // 3010: installed, reboot required (ERROR_SUCCESS_REBOOT_REQUIRED).
    if (r.code === 3010) r = { ...r, code: 0, stdout: `${r.stdout}\n(hilbox: pnputil asks for a reboot)` };
    if (r.code !== 0 || !this.config.verifier) return r;
    const v = await s.exec('verifier /standard /driver hilbox.sys', { timeoutMs: 60_000 });
    // verifier exits 2 when a reboot is needed for the change.
    if (v.code !== 0 && v.code !== 2) return { ...v, stderr: `verifier /standard failed: ${v.stderr}` };
    await s.reboot();
    const q = await s.exec('verifier /querysettings', { timeoutMs: 60_000 });
    if (!/hilbox\.sys/i.test(q.stdout)) return { ...q, code: 1, stderr: `Driver Verifier is not active for hilbox.sys after the reboot: ${q.stdout.trim()}` };
    return r;
  }

  /** Removes the driver package (and its devices' driver) again. */
  async uninstallDriver(s: GuestSession): Promise<ExecResult> {
    const list = await s.exec('pnputil /enum-drivers', { timeoutMs: 60_000 });
    const pub = publishedNameOf(list.stdout, 'hilbox.inf');
    if (!pub) return { code: 1, signal: null, stdout: list.stdout, stderr: 'no driver package hilbox.inf is installed' };
    return s.exec(`pnputil /delete-driver ${winQuote(pub)} /uninstall /force`, { timeoutMs: 180_000 });
  }

  /** Builds (cached) and uploads hilbox-probe.exe. */
  async setupProbe(s: GuestSession): Promise<void> {
    const exe = await ensureWindowsProbe();
    await s.exec('if not exist C:\\hilbox mkdir C:\\hilbox', { timeoutMs: 30_000 });
    await s.upload(exe, `${GUEST_DIR}/hilbox-probe.exe`, 0o755);
  }

  probeCommand(args: readonly string[], dev?: string): string {
    return [GUEST_PROBE, ...(dev ? ['--dev', dev] : []), ...args].map(winQuote).join(' ');
  }

  async killProbes(s: GuestSession): Promise<void> {
    await s.exec('taskkill /F /IM hilbox-probe.exe >nul 2>&1', { timeoutMs: 30_000 }).catch(() => undefined);
  }

  /** Windows has no dmesg: the System event log's critical and error entries, newest first. */
  async kernelLog(s: GuestSession): Promise<string> {
    const q = '*[System[(Level=1 or Level=2)]]';
    return (await s.exec(`wevtutil qe System /c:50 /rd:true /f:text /q:"${q}"`, { timeoutMs: 60_000 })).stdout;
  }

  async clearKernelLog(): Promise<void> {
    // The event log is kept: crash signatures match only bugcheck text, which a clean run never has.
  }
}
