/**
 * What the VM layer needs to know about a guest OS. One job: the Guest interface and its Linux
 * implementation (kernel + initramfs boot, console ready marker, insmod/rmmod, dmesg).
 *
 * A WindowsGuest would implement the same interface: `prepare()` creates a per-run qcow2 overlay
 * of the user's image, `bootArgs()` returns `-drive …` instead of `-kernel`, the ready marker
 * comes from a serial-port script, `loadDriver` runs `pnputil /add-driver … /install` over
 * OpenSSH, and `crashSignatures` match bugcheck output.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { LINUX_CRASH_SIGNATURES, type CrashSignature } from './crash-scan.ts';
import { optPath } from './qemu-args.ts';
import { shellQuote, type ExecResult, type SshClient } from '../ssh/client.ts';

export interface LoadDriverOptions {
  /** A host .ko to upload and load instead of the one in the image. */
  ko?: string;
  /** Module parameters, e.g. { debug: 1 }. */
  params?: Record<string, string | number>;
}

export interface Guest {
  readonly os: 'linux' | 'windows';
  /** Console text that says the guest finished booting (SSH should follow). */
  readonly readyMarker: string | RegExp;
  /** Console text that says the boot failed for sure (fail fast instead of waiting). */
  readonly bootFailureMarker?: RegExp;
  readonly crashSignatures: readonly CrashSignature[];
  /** NIC model the guest has a driver for. */
  readonly nicModel: string;
  readonly sshUser: string;
  readonly sshKey: string;
  readonly hostKeyFingerprint?: string;
  /** A kernel the accelerator probe can boot (undefined: probe impossible, use TCG for `auto`). */
  readonly probeKernel?: string;
  /** Per-run preparation in the VM's private directory (e.g. a disk overlay). */
  prepare?(runDir: string): Promise<void>;
  /** QEMU arguments that boot this guest. `extraCmdline` is appended to the kernel command line. */
  bootArgs(extraCmdline?: string): string[];
  loadDriver(ssh: SshClient, opts?: LoadDriverOptions): Promise<ExecResult>;
  unloadDriver(ssh: SshClient, name?: string): Promise<ExecResult>;
  kernelLog(ssh: SshClient): Promise<string>;
}

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

/** Where the image keeps the reference driver. */
export const IMAGE_DRIVER_PATH = '/lib/modules/hilbox/hilbox.ko';

export class LinuxGuest implements Guest {
  readonly os = 'linux' as const;
  readonly readyMarker: string;
  readonly bootFailureMarker = /hilbox-guest: FATAL|Kernel panic - not syncing/;
  readonly crashSignatures = LINUX_CRASH_SIGNATURES;
  readonly nicModel: string;
  readonly sshUser: string;
  readonly sshKey: string;
  readonly hostKeyFingerprint?: string;
  readonly probeKernel: string;

  constructor(readonly manifest: LinuxGuestManifest) {
    this.readyMarker = manifest.readyMarker;
    this.nicModel = manifest.nic;
    this.sshUser = manifest.sshUser;
    this.sshKey = manifest.sshKey;
    if (manifest.hostKeyFingerprint) this.hostKeyFingerprint = manifest.hostKeyFingerprint;
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

  async loadDriver(ssh: SshClient, opts: LoadDriverOptions = {}): Promise<ExecResult> {
    let path = IMAGE_DRIVER_PATH;
    if (opts.ko) {
      path = '/tmp/hilbox-user.ko';
      await ssh.upload(opts.ko, path, 0o644);
    }
    const params = Object.entries(opts.params ?? {}).map(([k, v]) => {
      if (!/^[a-z_][a-z0-9_]*$/i.test(k) || !/^[A-Za-z0-9_.,:-]*$/.test(String(v))) throw new TypeError(`module parameter ${k}=${v}`);
      return `${k}=${v}`;
    });
    return ssh.run(`insmod ${shellQuote(path)} ${params.join(' ')}`.trim(), { timeoutMs: 60_000 });
  }

  unloadDriver(ssh: SshClient, name = 'hilbox'): Promise<ExecResult> {
    return ssh.run(`rmmod ${shellQuote(name)}`, { timeoutMs: 60_000 });
  }

  async kernelLog(ssh: SshClient): Promise<string> {
    return (await ssh.run('dmesg', { timeoutMs: 30_000 })).stdout;
  }
}
