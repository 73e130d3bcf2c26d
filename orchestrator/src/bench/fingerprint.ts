/**
 * The machine a benchmark figure belongs to. One job: an environment → a short, stable key.
 * What changes what `hilbox bench` measures goes in: the CPU model and count, memory, the host
 * kernel, the architecture, the QEMU build's version line and the accelerator. What does not
 * (Node's version, the commit measured) stays out, so a baseline follows the machine across
 * commits. Benchmark modes (wall clock, deterministic) are kept apart by the baseline file, not here.
 */
import { createHash } from 'node:crypto';

export type BenchMode = 'wall' | 'deterministic';
export const BENCH_MODES: readonly BenchMode[] = ['wall', 'deterministic'];

const KEYS = ['cpuModel', 'cores', 'memoryBytes', 'platform', 'arch', 'kernel', 'qemu', 'accelerator'] as const;

/** 12 hex digits naming the machine; the same environment always gives the same key. */
export function machineFingerprint(env: Readonly<Record<string, unknown>>): string {
  const facts: Record<string, unknown> = {};
  for (const k of KEYS) {
    let v = env[k];
    // total memory as reported moves by a few MiB across boots: whole GiB
    if (k === 'memoryBytes' && typeof v === 'number') v = Math.round(v / 2 ** 30);
    facts[k] = v ?? null;
  }
  return createHash('sha256').update(JSON.stringify(facts)).digest('hex').slice(0, 12);
}

/** The baseline file's key for a mode on a machine: `wall/3fa2…`. */
export function baselineKey(mode: BenchMode, fingerprint: string): string {
  return `${mode}/${fingerprint}`;
}
