/**
 * The one place that picks a guest OS. One job: a scenario's `guest` section → a Guest (and the
 * traits suites plan with), with every problem in it reported as bad input naming the field,
 * before anything is built or boots.
 */
import { ensureGuest, type EnsureOptions } from '../products/ensure.ts';
import type { GuestConfig } from '../scenario/schema.ts';
import type { Guest, GuestOs, GuestTraits } from './guest.ts';
import { LinuxGuest } from './linux.ts';
import { WindowsGuest } from './windows.ts';

interface GuestKind {
  /** The class: its statics are the OS's traits. */
  readonly impl: { readonly eventModes: GuestTraits['eventModes']; readonly securityCases: readonly string[]; readonly orderlyRemoval: GuestTraits['orderlyRemoval']; readonly prototype: object };
  /** Throws UsageError naming the field when the section cannot work (cheap: no build). */
  check(g: GuestConfig, baseDir: string): void;
  /** The guest, building what it needs (cached). */
  create(g: GuestConfig, baseDir: string, o: EnsureOptions): Promise<Guest>;
}

const KINDS: Readonly<Record<GuestOs, GuestKind>> = {
  linux: {
    impl: LinuxGuest,
    check() {},
    create: async (_g, _b, o) => LinuxGuest.fromManifest(await ensureGuest(o)),
  },
  windows: {
    impl: WindowsGuest,
    check: (g, baseDir) => void WindowsGuest.fromScenario(g, baseDir),
    create: async (g, baseDir) => WindowsGuest.fromScenario(g, baseDir),
  },
};

/** Checks a scenario's guest section without building anything; throws UsageError. */
export function checkGuestConfig(g: GuestConfig, baseDir = process.cwd()): void {
  KINDS[g.os].check(g, baseDir);
}

export function guestForScenario(g: GuestConfig, o: EnsureOptions & { baseDir?: string } = {}): Promise<Guest> {
  const { baseDir = process.cwd(), ...ensure } = o;
  return KINDS[g.os].create(g, baseDir, ensure);
}

/** What a guest OS offers the suites, from the OS alone: plans are checked with this before anything boots. */
export function guestTraits(os: GuestOs): GuestTraits {
  const { impl } = KINDS[os];
  return { os, eventModes: impl.eventModes, securityCases: impl.securityCases, orderlyRemoval: impl.orderlyRemoval, findsHotplugged: typeof (impl.prototype as Partial<Guest>).listDeviceNodes === 'function', mapsPeerBars: typeof (impl.prototype as Partial<Guest>).findPeerBar === 'function' };
}
