/**
 * What the launcher needs to know of a guest OS to boot it. One job: the boot-facing half of
 * the guest seam (guest/guest.ts adds the verbs on a running guest).
 */
import type { CrashSignature } from './crash-scan.ts';
import type { Readiness } from './readiness.ts';
import type { SshTarget } from '../ssh/client.ts';

/** Machine settings a guest needs. */
export interface GuestMachineNeeds {
  /** Attach the scratch qcow2 that holds savevm snapshots (fast reset). */
  snapshotDisk: boolean;
  /** virtio-rng for fast guest entropy (needs a guest driver for it). */
  rng: boolean;
  /** Boot timeout in KVM milliseconds (scaled for TCG). */
  bootTimeoutMs: number;
  /** Less memory than this gets a warning. */
  minMemoryBytes: number;
}

export interface BootableGuest {
  /** How to know the guest booted. */
  readonly readiness: Readiness;
  readonly crashSignatures: readonly CrashSignature[];
  /** NIC model the guest has an in-box driver for. */
  readonly nicModel: string;
  readonly machine: GuestMachineNeeds;
  /** The SSH endpoint of the guest behind the forwarded host port. */
  sshTarget(port: number): SshTarget;
  /** The port the guest's sshd listens on (the host port is forwarded to it). */
  readonly sshGuestPort: number;
  /** A Linux kernel the KVM probe can boot, when the guest has one (else the launcher is given one). */
  readonly probeKernel?: string;
  /** Per-run preparation in the VM's private directory (e.g. a disk overlay made with `qemu`'s qemu-img). */
  prepare?(runDir: string, qemu: string): Promise<void>;
  /** QEMU arguments that boot this guest. `extraCmdline` is appended to a kernel command line. */
  bootArgs(extraCmdline?: string): string[];
}
