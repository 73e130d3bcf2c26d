/**
 * The guest seam. One job: say what a guest OS supplies — and nothing else. Boot, suites,
 * reports and benchmarks are written once against this interface; `linux.ts` and `windows.ts`
 * are its two implementations and `for-scenario.ts` is the one place that picks between them.
 *
 * A guest supplies:
 *  - how to boot it (`prepare`, `bootArgs`, `nicModel`, `machine` settings) and how to know it
 *    booted (`readiness`, a strategy object in the manner of testcontainers' wait strategies);
 *  - how to reach it (`sshTarget`) and what its crashes look like (`crashSignatures`);
 *  - verbs on the running guest, each given a GuestSession: driver install/uninstall, the
 *    probe's command line and set-up, the kernel log, killing leftover probes, listing device
 *    nodes (when extra devices can be hot-plugged and found), finding another PCI device's
 *    BAR for the probe to map (the peer of the framebuffer benchmark), the reboot command;
 *  - the probe's vocabulary where the OSes differ (`eventModes`, `securityCases`).
 */
import type { BootableGuest } from '../vm/bootable.ts';
import type { ExecOptions, ExecResult } from '../ssh/client.ts';

export type GuestOs = 'linux' | 'windows';

export type { BootableGuest };

/** What a verb may do in the running guest (the started VM's guarded SSH side). */
export interface GuestSession {
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  upload(localPath: string, remotePath: string, mode?: number): Promise<void>;
  download(remotePath: string, localPath: string): Promise<void>;
  /** Reboots the guest on purpose (its rebootCommand) and waits until it is ready again. */
  reboot(): Promise<void>;
  /** Keeps a text next to the run's logs (console.log, qmp.log), e.g. an installer log tail. */
  saveArtifact(name: string, text: string): void;
  /** A KVM-calibrated timeout in this accelerator's time. */
  scaled(ms: number): number;
}

export interface DriverOptions {
  /** A host driver file to upload and install instead of the image's (.ko on Linux, .sys on Windows). */
  path?: string;
  /** Linux module parameters, e.g. { debug: 1 }. */
  params?: Record<string, string | number>;
}

/** A PCI function's vendor and device ID. */
export interface PciId {
  vendor: number;
  device: number;
}

/** How the guest's probe names the two event-delivery modes (SPEC: the inverted call vs polling). */
export interface EventModes {
  invertedCall: { probeMode: string; mechanism: string };
  polling: { probeMode: string; mechanism: string };
  /** The driver-written ring mapped read-only (guest-driver/INTERFACE.md §3b), where the OS has one. */
  sharedRing?: { probeMode: string; mechanism: string };
}

/**
 * What the OS does when the host asks for an orderly removal (QMP device_del: the slot's
 * attention button, then the OS's eject) while a process holds the device open:
 *  - 'proceeds': the removal goes through and the driver revokes what the process holds
 *    (Linux: pciehp removes the device; hilbox.ko zaps mappings, fails reads with ENODEV);
 *  - 'vetoed-while-open': the driver refuses the query-remove while a handle or a view is open,
 *    the device stays, and the same removal succeeds once the process let go (Windows PnP).
 */
export type OrderlyRemoval = 'proceeds' | 'vetoed-while-open';

/** A guest OS: how to boot it (BootableGuest, what the launcher needs), then its verbs. */
export interface Guest extends BootableGuest {
  readonly os: GuestOs;
  /** For progress lines: "Linux 6.1.0-57-amd64", "Windows from x.qcow2 on an overlay (UEFI)". */
  readonly description: string;

  // ---- verbs on the running guest ---------------------------------------------------------
  installDriver(s: GuestSession, opts?: DriverOptions): Promise<ExecResult>;
  uninstallDriver(s: GuestSession): Promise<ExecResult>;
  /**
   * Loads again what installDriver installed, after uninstallDriver (no upload). Present: the
   * security suite unloads and reloads the driver after every case, which proves each case left
   * the driver unloadable. (Windows: absent — a pnputil reinstall re-enumerates the device.)
   */
  reinstallDriver?(s: GuestSession): Promise<ExecResult>;
  /** Puts the probe where probeCommand expects it (nothing when the image carries it). */
  setupProbe(s: GuestSession): Promise<void>;
  /** The command line that runs the probe with these arguments (against `dev`, if given). */
  probeCommand(args: readonly string[], dev?: string): string;
  /** Stops probe processes a case left behind (they would hold the device open). */
  killProbes(s: GuestSession): Promise<void>;
  /** The kernel's log as text, scanned with `crashSignatures`. */
  kernelLog(s: GuestSession): Promise<string>;
  /** Forgets the kernel log so far (the next kernelLog shows only what follows). */
  clearKernelLog(s: GuestSession): Promise<void>;
  /** A guest directory for files the probe writes and the host downloads ('/'-separated). */
  readonly workDir: string;
  /**
   * Device nodes of hilbox devices, when the guest can find one that was hot-plugged (absent:
   * suites skip what needs an extra device, saying why).
   */
  listDeviceNodes?(s: GuestSession): Promise<string[]>;
  /**
   * Waits until the OS has finished with a slot whose card was pulled (surprise removal), so a
   * card inserted next is not taken for the one being shut down. (QEMU detaches a populated
   * slot whose power and power indicator the guest turns off: Linux pciehp powers the slot
   * off, waits 1 s, then turns the indicator off — a card inserted in that second would go.)
   */
  settleAfterSurpriseRemoval(s: GuestSession): Promise<void>;
  /**
   * The OS's own orderly removal of the card in physical slot `slot` (the root port's `slot=`),
   * returning once the OS has let the card go: the driver's remove ran and the slot's power and
   * power indicator are off, which is when QEMU detaches the card. It skips the attention button
   * of QMP device_del, whose press the OS waits 5 s on before acting (PCIe's abort window).
   * Suites take a device they plugged for a few cases away with it (absent: device_del).
   */
  ejectSlot?(s: GuestSession, slot: number): Promise<void>;
  /**
   * What the probe's `fb-throughput --peer-bar` takes for BAR `bar` of a PCI function with these
   * IDs that no driver holds (Linux: its sysfs resource file), or undefined while there is none
   * (absent: the guest cannot map another device's BAR; the peer case is skipped, saying why).
   */
  findPeerBar?(s: GuestSession, id: PciId, bar: number): Promise<string | undefined>;
  /** Command that reboots the guest at once. */
  readonly rebootCommand: string;

  // ---- the probe's vocabulary -------------------------------------------------------------
  readonly eventModes: EventModes;
  /** Security case names the guest's probe runs (known before boot, checked against the probe). */
  readonly securityCases: readonly string[];
  readonly orderlyRemoval: OrderlyRemoval;
}

/** What suites plan with, known from the OS alone (before anything is built or booted). */
export interface GuestTraits {
  readonly os: GuestOs;
  readonly eventModes: EventModes;
  readonly securityCases: readonly string[];
  readonly orderlyRemoval: OrderlyRemoval;
  /** Devices hot-plugged at run time can be found in the guest (it has listDeviceNodes). */
  readonly findsHotplugged: boolean;
  /** Another PCI device's BAR can be mapped by the probe (it has findPeerBar). */
  readonly mapsPeerBars: boolean;
}
