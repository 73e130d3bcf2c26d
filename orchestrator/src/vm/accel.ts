/**
 * Accelerator choice. One job: turn `auto|tcg|kvm` into a working accelerator and a timeout
 * scale factor.
 *
 * `auto` does not trust the mere existence of /dev/kvm: on some hosts KVM opens fine but a guest
 * under it hangs (or faults in the early boot code). The probe boots the guest kernel under
 * `-accel kvm` with earlyprintk and requires its "Linux version" banner on the serial port within
 * a few seconds: that only happens if the vCPU really executes guest code. The verdict is cached
 * per host boot (keyed by /proc/sys/kernel/random/boot_id); a broken KVM falls back to TCG with a
 * warning. The probe is always killed at its deadline, so it never hangs.
 */
import { spawn } from 'node:child_process';
import { access, mkdir, readFile, writeFile, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheRoot, firmwareDirs } from '../core/paths.ts';

export type AccelChoice = 'auto' | 'tcg' | 'kvm';
export type Accel = 'tcg' | 'kvm';

/** Guest-side timeouts are multiplied by this (TCG emulates every instruction). */
export const TIMEOUT_SCALE: Record<Accel, number> = { kvm: 1, tcg: 4 };

export interface AccelDecision {
  accel: Accel;
  scale: number;
  /** Why this accelerator (e.g. "KVM probe: no kernel banner within 5000 ms"). */
  reason: string;
  cached: boolean;
}

export interface KvmProbeOptions {
  qemu: string;
  /** A bzImage to boot; the probe needs its banner. */
  kernel: string;
  timeoutMs?: number;
  /** Where the verdict is cached; default <cache>/accel. Set to null to disable caching. */
  cacheDir?: string | null;
  /** Receives the fallback warning; default console.warn. */
  warn?: (msg: string) => void;
}

interface Verdict {
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

/** Runs the guest kernel under KVM and waits for its banner. Never takes longer than timeoutMs + ~1 s. */
export async function probeKvm(qemu: string, kernel: string, timeoutMs = 5000): Promise<Verdict> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { ok: false, reason: '/dev/kvm is missing or not accessible' };
  }
  const args = [
    ...firmwareDirs.flatMap((d) => ['-L', d]),
    '-machine', 'q35', '-accel', 'kvm', '-cpu', 'host', '-m', '128M', '-smp', '1',
    '-display', 'none', '-nodefaults', '-no-reboot', '-serial', 'stdio', '-monitor', 'none',
    '-kernel', kernel, '-append', 'console=ttyS0 earlyprintk=ttyS0 panic=-1 rdinit=/hilbox-kvm-probe',
  ];
  return new Promise<Verdict>((resolve) => {
    const child = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let settled = false;
    const finish = (v: Verdict): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(v);
    };
    const timer = setTimeout(
      () => finish({ ok: false, reason: `KVM guest printed no kernel banner within ${timeoutMs} ms (vCPU hangs or faults)` }),
      timeoutMs,
    );
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (/Linux version \d/.test(out)) finish({ ok: true, reason: 'KVM probe: guest kernel banner seen' });
      if (out.length > 1 << 20) out = out.slice(-4096);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => finish({ ok: false, reason: `cannot run ${qemu}: ${e.message}` }));
    child.on('exit', (code, sig) =>
      finish({ ok: false, reason: `QEMU exited (${sig ?? code}) under KVM: ${err.trim().split('\n').slice(-3).join(' | ')}` }),
    );
  });
}

/** Resolves the accelerator; `auto` probes KVM (cached per host boot) and falls back to TCG. */
export async function chooseAccel(choice: AccelChoice, probe?: KvmProbeOptions): Promise<AccelDecision> {
  const env = process.env.HILBOX_ACCEL;
  if (choice === 'auto' && (env === 'tcg' || env === 'kvm')) choice = env;
  if (choice !== 'auto') return { accel: choice, scale: TIMEOUT_SCALE[choice], reason: `requested ${choice}`, cached: false };
  if (!probe) return { accel: 'tcg', scale: TIMEOUT_SCALE.tcg, reason: 'no kernel to probe KVM with', cached: false };

  const dir = probe.cacheDir === undefined ? join(cacheRoot(), 'accel') : probe.cacheDir;
  const file = dir ? join(dir, `kvm-${await bootId()}.json`) : undefined;
  let verdict: Verdict | undefined;
  let cached = false;
  if (file) {
    try {
      verdict = JSON.parse(await readFile(file, 'utf8')) as Verdict;
      cached = true;
    } catch {
      /* no verdict yet */
    }
  }
  if (!verdict) {
    verdict = await probeKvm(probe.qemu, probe.kernel, probe.timeoutMs ?? 5000);
    if (file && dir) {
      await mkdir(dir, { recursive: true });
      await writeFile(file, JSON.stringify(verdict) + '\n');
    }
  }
  if (verdict.ok) return { accel: 'kvm', scale: TIMEOUT_SCALE.kvm, reason: verdict.reason, cached };
  if (!cached) (probe.warn ?? ((m: string) => console.warn(m)))(`hilbox: KVM unusable (${verdict.reason}); using TCG (slower, timeouts x${TIMEOUT_SCALE.tcg})`);
  return { accel: 'tcg', scale: TIMEOUT_SCALE.tcg, reason: `KVM unusable: ${verdict.reason}`, cached };
}
