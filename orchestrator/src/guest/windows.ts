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
 *  - Driver: a package directory (hilbox-package.json: .sys, .inf, signed .cat, the test root
 *    and signer certificates — `npm run build:windows` makes the project's, `hilbox package
 *    windows` a user's) uploaded whole over SFTP; the root goes into the Root store and the
 *    signer into TrustedPublisher (certutil), so pnputil installs without a dialog;
 *    `pnputil /add-driver … /install`; then the device must report no problem code. On failure
 *    the tail of setupapi.dev.log goes into the error and the artifacts. Optionally Driver
 *    Verifier (`verifier /standard /driver X.sys`, then a reboot).
 *  - Clock: QEMU keeps the RTC on UTC (`-rtc base=utc`) and the golden image is told so
 *    (RealTimeIsUniversal, fixtures/windows/provision.ps1); the test certificates are also
 *    valid from two days before they were made.
 */
import { constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { access, copyFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { homedir } from 'node:os';
import { execa } from 'execa';
import { InfraError, UsageError } from '../core/errors.ts';
import { QMP_PANIC_LINE, QMP_RESET_LINE, type CrashSignature } from '../vm/crash-scan.ts';
import { optPath } from '../vm/qemu-args.ts';
import { SshCommandReadiness } from '../vm/readiness.ts';
import type { ExecResult, SshTarget } from '../ssh/client.ts';
import { ensureWindowsPackage, ensureWindowsProbe } from '../products/ensure.ts';
import { PACKAGE_MANIFEST, PACKAGE_SCHEMA, type WindowsPackageManifest } from '../package/windows-package.ts';
import { z } from 'zod';
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
  /** guest.ssh.port: where the image's sshd listens (default 22). */
  sshPort?: number;
  /** Enable Driver Verifier for hilbox.sys after installing it (a reboot). */
  verifier?: boolean;
}

/** Directory in the guest for everything hilbox uploads ('/'-separated: SFTP and Win32 both take it). */
export const GUEST_DIR = 'C:/hilbox';
export const GUEST_PROBE = 'C:\\hilbox\\hilbox-probe.exe';
/** Where the driver package is uploaded. */
export const GUEST_DRIVER_DIR = `${GUEST_DIR}/driver`;

/** hilbox-package.json as `hilbox package windows` (package/windows-package.ts) writes it, checked on reading. */
export { PACKAGE_MANIFEST };
const PackageManifestSchema = z.looseObject({
  schema: z.literal(PACKAGE_SCHEMA),
  sys: z.string().min(1),
  inf: z.string().min(1),
  cat: z.string().min(1),
  rootCert: z.string().min(1),
  signerCert: z.string().min(1),
  hardwareIds: z.array(z.string().min(1)).min(1),
});
type PackageManifest = Pick<WindowsPackageManifest, 'sys' | 'inf' | 'cat' | 'rootCert' | 'signerCert' | 'hardwareIds'>;

/** Reads and checks a package directory; every problem names the file. */
export function readPackage(dir: string, what = 'driver package'): PackageManifest {
  const file = join(dir, PACKAGE_MANIFEST);
  if (!existsSync(file)) {
    throw new UsageError(`${what} ${dir}: no ${PACKAGE_MANIFEST} (make the package with: hilbox package windows --sys X.sys --inf X.inf --out DIR)`);
  }
  let m: PackageManifest;
  try {
    m = PackageManifestSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch (e) {
    throw new UsageError(`${file}: not a ${PACKAGE_SCHEMA} manifest (${(e as Error).message.split('\n')[0]})`);
  }
  for (const f of [m.sys, m.inf, m.cat, m.rootCert, m.signerCert]) {
    if (basename(f) !== f || !existsSync(join(dir, f))) throw new UsageError(`${file}: ${f} is not a file of the package directory`);
  }
  return m;
}

/** ConfigManagerErrorCode values a driver writer meets first (Device Manager's "Code N"). */
const PROBLEM_CODES: Readonly<Record<number, string>> = {
  1: 'not configured correctly', 10: 'cannot start (the driver\'s start routine failed)', 12: 'not enough free resources',
  18: 'drivers must be reinstalled', 19: 'registry information incomplete or damaged', 22: 'disabled', 24: 'not present or not working',
  28: 'no driver installed', 31: 'not working properly (the driver could not be loaded)', 37: 'the driver\'s DriverEntry failed',
  39: 'the driver could not be loaded (corrupted or missing)', 43: 'stopped after reporting problems', 52: 'the driver\'s signature could not be verified',
};

export const WINDOWS_CRASH_SIGNATURES: readonly CrashSignature[] = [
  { name: 'bugcheck', pattern: new RegExp(`^${QMP_PANIC_LINE}`), fatal: true },
  { name: 'bugcheck', pattern: /INSTANCE CLASS="BLUESCREEN"|\*STOP: 0x[0-9A-Fa-f]{8}/, fatal: true },
  { name: 'guest-reset', pattern: new RegExp(`^${QMP_RESET_LINE}`), fatal: true },
];

const EVENT_MODES: EventModes = {
  invertedCall: { probeMode: 'iocp', mechanism: 'I/O completion port' },
  polling: { probeMode: 'poll', mechanism: 'STATS poll + ReadFile' },
  sharedRing: { probeMode: 'ring', mechanism: 'read-only shared-memory ring + event object' },
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

/** 'C:/hilbox/driver/x.inf' → 'C:\\hilbox\\driver\\x.inf' (what cmd.exe tools want). */
export function winPath(p: string): string {
  return p.replace(/\//g, '\\');
}

/** A PowerShell script as one cmd.exe-safe command line (UTF-16LE base64: no quoting to get wrong). */
export function powershell(script: string): string {
  return `powershell -NoProfile -NonInteractive -EncodedCommand ${Buffer.from(script, 'utf16le').toString('base64')}`;
}

const SETUPAPI_TAIL = 60;
const tail = (text: string, n: number): string => text.trim().split(/\r?\n/).slice(-n).join(' | ');

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

  /** pci.sys's own timing is not documented; 2 s of guest time, as on Linux (unproven here: no image). */
  async settleAfterSurpriseRemoval(s: GuestSession): Promise<void> {
    await s.exec('powershell -NoProfile -Command "Start-Sleep -Seconds 2"', { timeoutMs: s.scaled(30_000) });
  }
  static readonly eventModes = EVENT_MODES;
  readonly eventModes = EVENT_MODES;
  static readonly orderlyRemoval = 'vetoed-while-open';
  readonly orderlyRemoval = 'vetoed-while-open';

  /** Read from the probe's case table on first use. */
  static get securityCases(): readonly string[] {
    return securityCaseNames('windows');
  }

  get securityCases(): readonly string[] {
    return securityCaseNames('windows');
  }
  private overlay: string | undefined;
  private vars: string | undefined;
  /** The INF installDriver installed (uninstallDriver removes it). */
  private installedInf: string | undefined;

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
      ...(g.ssh.port ? { sshPort: g.ssh.port } : {}),
      ...(process.env.HILBOX_VERIFIER === '1' ? { verifier: true } : {}),
    });
  }

  get sshGuestPort(): number {
    return this.config.sshPort ?? 22;
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
    a.push('-rtc', 'base=utc');
    return a;
  }

  /**
   * Installs a driver package: the project's (built or reused by `npm run build:windows`) or the
   * one next to `opts.path` (a .sys in a directory made by `hilbox package windows`). Uploads the
   * whole package, trusts its root (Root) and signer (TrustedPublisher), runs pnputil, and checks
   * that the device reports no problem; then Driver Verifier when asked (a reboot).
   */
  async installDriver(s: GuestSession, opts: DriverOptions = {}): Promise<ExecResult> {
    const dir = opts.path ? dirname(opts.path) : await ensureWindowsPackage();
    const pkg = readPackage(dir, opts.path ? `driver.path ${opts.path}:` : 'the package of npm run build:windows');
    if (opts.path && basename(opts.path) !== pkg.sys) throw new UsageError(`driver.path ${opts.path}: the package next to it is for ${pkg.sys}`);
    await s.exec(`if not exist ${winPath(GUEST_DRIVER_DIR)} mkdir ${winPath(GUEST_DRIVER_DIR)}`, { timeoutMs: 30_000 });
    for (const f of readdirSync(dir).filter((f) => !f.endsWith('.key'))) await s.upload(join(dir, f), `${GUEST_DRIVER_DIR}/${f}`);
    const steps: [string, string][] = [
      ['trusting the test root (Root store)', `certutil -f -addstore Root ${winQuote(winPath(`${GUEST_DRIVER_DIR}/${pkg.rootCert}`))}`],
      ['trusting the signer (TrustedPublisher store)', `certutil -f -addstore TrustedPublisher ${winQuote(winPath(`${GUEST_DRIVER_DIR}/${pkg.signerCert}`))}`],
      ['pnputil /add-driver', `pnputil /add-driver ${winQuote(winPath(`${GUEST_DRIVER_DIR}/${pkg.inf}`))} /install`],
    ];
    for (const [what, cmd] of steps) {
      const r = await s.exec(cmd, { timeoutMs: 180_000 });
      // pnputil 3010: installed, reboot required (ERROR_SUCCESS_REBOOT_REQUIRED).
      if (r.code !== 0 && !(r.code === 3010 && cmd.startsWith('pnputil'))) return this.installFailed(s, `${what} failed (exit ${r.code}): ${tail(r.stdout + r.stderr, 5)}`, r);
    }
    const problems = await this.deviceProblems(s, pkg.hardwareIds);
    if (problems) return this.installFailed(s, problems, { code: 1, signal: null, stdout: '', stderr: problems });
    this.installedInf = pkg.inf;
    if (!this.config.verifier) return { code: 0, signal: null, stdout: `installed ${pkg.inf}`, stderr: '' };
    const v = await s.exec(`verifier /standard /driver ${winQuote(pkg.sys)}`, { timeoutMs: 60_000 });
    // verifier exits 2 when a reboot is needed for the change.
    if (v.code !== 0 && v.code !== 2) return { ...v, stderr: `verifier /standard failed: ${v.stderr}` };
    await s.reboot();
    const q = await s.exec('verifier /querysettings', { timeoutMs: 60_000 });
    if (!q.stdout.toLowerCase().includes(pkg.sys.toLowerCase())) return { ...q, code: 1, stderr: `Driver Verifier is not active for ${pkg.sys} after the reboot: ${q.stdout.trim()}` };
    return { code: 0, signal: null, stdout: `installed ${pkg.inf} with Driver Verifier`, stderr: '' };
  }

  /** The devices of the package's hardware IDs and their problem codes; undefined when all work. */
  private async deviceProblems(s: GuestSession, hardwareIds: readonly string[]): Promise<string | undefined> {
    const ids = hardwareIds.map((h) => `'${h.replace(/'/g, "''")}*'`).join(', ');
    const script = `$ids = @(${ids}); Get-PnpDevice -PresentOnly | Where-Object { $i = $_.InstanceId; $ids | Where-Object { $i -like $_ } } | ForEach-Object { '{0}|{1}|{2}' -f $_.InstanceId, [int]$_.ConfigManagerErrorCode, $_.Status }`;
    const r = await s.exec(powershell(script), { timeoutMs: 60_000 });
    const devices = r.stdout.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.includes('|')).map((l) => l.split('|'));
    if (devices.length === 0) return `no present device matches ${hardwareIds.join(', ')} (Get-PnpDevice found none${r.stderr.trim() ? `: ${tail(r.stderr, 2)}` : ''})`;
    const bad = devices.filter(([, code]) => Number(code) !== 0);
    if (bad.length === 0) return undefined;
    return bad.map(([id, code, status]) => `${id} reports problem code ${code} (${PROBLEM_CODES[Number(code)] ?? 'see Device Manager'}; status ${status})`).join('; ');
  }

  /** The failure with the tail of setupapi.dev.log in the message and in the artifacts. */
  private async installFailed(s: GuestSession, why: string, r: ExecResult): Promise<ExecResult> {
    const log = await s.exec(powershell(`Get-Content -Tail ${SETUPAPI_TAIL} -Path "$env:WINDIR\\INF\\setupapi.dev.log"`), { timeoutMs: 60_000 }).catch(() => undefined);
    const text = log?.stdout ?? '';
    if (text) s.saveArtifact('setupapi.dev.log.tail', text);
    return { ...r, code: r.code === 0 ? 1 : r.code, stderr: `${why}${text ? `\n--- setupapi.dev.log (last lines; saved as setupapi.dev.log.tail) ---\n${tail(text, 20)}` : ''}` };
  }

  /** Removes the driver package (and its devices' driver) again. */
  async uninstallDriver(s: GuestSession): Promise<ExecResult> {
    const list = await s.exec('pnputil /enum-drivers', { timeoutMs: 60_000 });
    const inf = this.installedInf ?? 'hilbox.inf';
    const pub = publishedNameOf(list.stdout, inf);
    if (!pub) return { code: 1, signal: null, stdout: list.stdout, stderr: `no driver package ${inf} is installed` };
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
