/**
 * Accelerator choice. One job: turn `auto|tcg|kvm` into a working accelerator and a timeout
 * scale factor.
 *
 * `auto` does not trust the mere existence of /dev/kvm: on some hosts KVM opens fine but a guest
 * under it hangs (or faults in the early boot code). The probe boots the guest kernel under
 * `-accel kvm` with earlyprintk and requires its "Linux version" banner on the serial port: that
 * only happens if the vCPU really executes guest code. The same kernel boots under TCG beside it,
 * and KVM gets KVM_PROBE_TCG_FACTOR times TCG's time to that banner (at least KVM_PROBE_FLOOR_MS,
 * at most KVM_PROBE_CEILING_MS): a KVM slower than emulation is of no use, and a host that is
 * slow for every QEMU (a cold page cache, a loaded machine) stretches the deadline by itself. The
 * verdict is cached per host boot (keyed by /proc/sys/kernel/random/boot_id); a broken KVM falls
 * back to TCG with a warning. Both probe QEMUs are killed when the verdict is in (and by the
 * reaper if this process dies), so the probe never hangs.
 */
import { spawn } from 'node:child_process';
import { access, mkdir, readFile, writeFile, constants } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { cacheRoot, firmwareDirs } from '../core/paths.ts';
import { unwatchPid, watchPid } from './reaper.ts';

export type AccelChoice = 'auto' | 'tcg' | 'kvm';
export type Accel = 'tcg' | 'kvm';

/** Guest-side timeouts are multiplied by this (TCG emulates every instruction). */
export const TIMEOUT_SCALE: Record<Accel, number> = { kvm: 1, tcg: 4 };

/** KVM may take this many times TCG's time to the kernel banner… */
export const KVM_PROBE_TCG_FACTOR = 4;
/** …but never less than this (ms from the probe's start)… */
export const KVM_PROBE_FLOOR_MS = 500;
/** …and never more: the deadline when TCG prints no banner either. */
export const KVM_PROBE_CEILING_MS = 5000;

export interface AccelDecision {
  accel: Accel;
  scale: number;
  /** Why this accelerator (e.g. "KVM guest printed no kernel banner within 1000 ms …"). */
  reason: string;
  cached: boolean;
}

export interface KvmProbeOptions {
  qemu: string;
  /** The guest kernel (PVH vmlinux or bzImage); the probe needs its banner. */
  kernel: string;
  /** The ceiling (KVM_PROBE_CEILING_MS). */
  timeoutMs?: number;
  /** Where the verdict is cached; default <cache>/accel. Set to null to disable caching. */
  cacheDir?: string | null;
  /** Receives the fallback warning; default console.warn. */
  warn?: (msg: string) => void;
}

export interface Verdict {
  ok: boolean;
  reason: string;
}

async function bootId(): Promise<string> {
  try {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  } catch {
    return 'unknown-boot';
  }
}

type BannerResult = { bannerMs: number } | { ended: string };

/** One QEMU booting `kernel` with the given accelerator until its banner; kill() ends it. */
function runToBanner(qemu: string, kernel: string, accel: readonly string[], start: number): { result: Promise<BannerResult>; kill: () => void } {
  const args = [
    ...firmwareDirs.flatMap((d) => ['-L', d]),
    '-machine', 'q35', ...accel, '-m', '128M', '-smp', '1',
    '-display', 'none', '-nodefaults', '-no-reboot', '-serial', 'stdio', '-monitor', 'none',
    '-kernel', kernel, '-append', 'console=ttyS0 earlyprintk=ttyS0 panic=-1 rdinit=/hilbox-kvm-probe',
  ];
  const child = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid !== undefined) watchPid(child.pid);
  const kill = (): void => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
  };
  const result = new Promise<BannerResult>((resolve) => {
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (/Linux version \d/.test(out)) {
        resolve({ bannerMs: Math.round(performance.now() - start) });
        kill();
      }
      if (out.length > 1 << 20) out = out.slice(-4096);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => resolve({ ended: `cannot run ${qemu}: ${e.message}` }));
    child.on('exit', (code, sig) => {
      if (child.pid !== undefined) unwatchPid(child.pid);
      resolve({ ended: `QEMU exited (${sig ?? code}): ${err.trim().split('\n').slice(-3).join(' | ')}` });
    });
  });
  return { result, kill };
}

/**
 * Boots the guest kernel under KVM (and under TCG beside it, for the deadline) and waits for the
 * banner. Never takes longer than ceilingMs.
 */
export async function probeKvm(qemu: string, kernel: string, ceilingMs = KVM_PROBE_CEILING_MS): Promise<Verdict> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { ok: false, reason: '/dev/kvm is missing or not accessible' };
  }
  const start = performance.now();
  const kvm = runToBanner(qemu, kernel, ['-accel', 'kvm', '-cpu', 'host'], start);
  const tcg = runToBanner(qemu, kernel, ['-accel', 'tcg'], start);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<Verdict>((resolve) => {
      const miss = (limit: number, why: string) => (): void =>
        resolve({ ok: false, reason: `KVM guest printed no kernel banner within ${limit} ms (${why}; vCPU hangs or faults)` });
      timer = setTimeout(miss(ceilingMs, 'the ceiling'), ceilingMs);
      void kvm.result.then((r) => resolve('bannerMs' in r ? { ok: true, reason: `KVM probe: guest kernel banner after ${r.bannerMs} ms` } : { ok: false, reason: `under KVM: ${r.ended}` }));
      void tcg.result.then((r) => {
        if (!('bannerMs' in r)) return; // the ceiling stays
        const limit = Math.min(ceilingMs, Math.max(KVM_PROBE_FLOOR_MS, KVM_PROBE_TCG_FACTOR * r.bannerMs));
        clearTimeout(timer);
        timer = setTimeout(miss(limit, `TCG printed it after ${r.bannerMs} ms`), Math.max(0, limit - (performance.now() - start)));
      });
    });
  } finally {
    clearTimeout(timer);
    kvm.kill();
    tcg.kill();
    await Promise.all([kvm.result, tcg.result]);
  }
}
/** Where `auto`'s verdict for this host boot is kept; undefined: caching is off. */
async function verdictFile(probe: KvmProbeOptions): Promise<string | undefined> {
  const dir = probe.cacheDir === undefined ? join(cacheRoot(), 'accel') : probe.cacheDir;
  return dir ? join(dir, `kvm-${await bootId()}.json`) : undefined;
}

function decide(verdict: Verdict, cached: boolean): AccelDecision {
  if (verdict.ok) return { accel: 'kvm', scale: TIMEOUT_SCALE.kvm, reason: verdict.reason, cached };
  return { accel: 'tcg', scale: TIMEOUT_SCALE.tcg, reason: `KVM unusable: ${verdict.reason}`, cached };
}

/**
 * The accelerator when it is known without running the probe: asked for by name (or
 * HILBOX_ACCEL), nothing to probe with, or this host boot's verdict cached. Undefined: only
 * chooseAccel's probe can tell.
 */
export async function knownAccel(choice: AccelChoice, probe?: KvmProbeOptions): Promise<AccelDecision | undefined> {
  const env = process.env.HILBOX_ACCEL;
  if (choice === 'auto' && (env === 'tcg' || env === 'kvm')) choice = env;
  if (choice !== 'auto') return { accel: choice, scale: TIMEOUT_SCALE[choice], reason: `requested ${choice}`, cached: false };
  if (!probe) return { accel: 'tcg', scale: TIMEOUT_SCALE.tcg, reason: 'no kernel to probe KVM with', cached: false };
  const file = await verdictFile(probe);
  if (!file) return undefined;
  try {
    return decide(JSON.parse(await readFile(file, 'utf8')) as Verdict, true);
  } catch {
    return undefined; // no verdict yet
  }
}

/** The probes running in this process, by QEMU binary and verdict cache: every caller while one runs shares its verdict. */
const inFlight = new Map<string, Promise<AccelDecision>>();

/**
 * Resolves the accelerator; `auto` probes KVM (cached per host boot) and falls back to TCG with a
 * warning. Callers that ask while a probe for the same QEMU runs share it (one probe, one warning):
 * a run starts the probe while its guest image still builds (session/early-accel.ts) and its
 * first VM then shares that probe instead of starting another (booting under TCG meanwhile, as
 * Machine.launchWhileProbing does for any probe still running).
 */
export async function chooseAccel(choice: AccelChoice, probe?: KvmProbeOptions): Promise<AccelDecision> {
  const known = await knownAccel(choice, probe);
  if (known) return known;
  if (!probe) throw new Error('knownAccel decides every choice that has no kernel to probe with');
  // Checked and set with no await between: two callers never start two probes.
  const key = `${probe.qemu}\0${String(probe.cacheDir)}`;
  let p = inFlight.get(key);
  if (!p) {
    p = probeAndDecide(probe).finally(() => inFlight.delete(key));
    inFlight.set(key, p);
  }
  return p;
}

async function probeAndDecide(probe: KvmProbeOptions): Promise<AccelDecision> {
  const verdict = await probeKvm(probe.qemu, probe.kernel, probe.timeoutMs ?? KVM_PROBE_CEILING_MS);
  const file = await verdictFile(probe);
  if (file) {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify(verdict) + '\n');
  }
  if (!verdict.ok) (probe.warn ?? ((m: string) => console.warn(m)))(`hilbox: KVM unusable (${verdict.reason}); using TCG (slower, timeouts x${TIMEOUT_SCALE.tcg})`);
  return decide(verdict, false);
}
