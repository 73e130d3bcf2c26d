/**
 * The machine a benchmark ran on. One job: a fingerprint that travels with results and
 * baselines, and the list of what differs between two of them.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

export interface Environment {
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  platform: string;
  arch: string;
  kernel: string;
  node: string;
  /** First line of `qemu-system-x86_64 --version`, as the caller found it. */
  qemu?: string;
  accelerator?: string;
  gitCommit?: string;
  gitDirty?: boolean;
}

export interface EnvironmentInputs {
  qemuVersion?: string;
  accelerator?: string;
  /** Repository to ask for the commit; omit to skip git. */
  repoDir?: string;
}

/** Host facts the fingerprint is built from (injectable for tests). */
export interface HostFacts {
  cpus: { model: string }[];
  totalmem: number;
  platform: string;
  arch: string;
  release: string;
  nodeVersion: string;
}

export function hostFacts(): HostFacts {
  return {
    cpus: os.cpus().map((c) => ({ model: c.model })),
    totalmem: os.totalmem(),
    platform: os.platform(),
    arch: os.arch(),
    release: os.release(),
    nodeVersion: process.version,
  };
}

function git(args: string[], cwd: string): string | undefined {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
  } catch {
    return undefined;
  }
}

/** Commit and dirty flag of `dir`, when it is a git work tree and git is installed. */
export function gitState(dir: string): { commit?: string; dirty?: boolean } {
  const commit = git(['rev-parse', 'HEAD'], dir);
  if (!commit) return {};
  const status = git(['status', '--porcelain', '--untracked-files=no'], dir);
  return status === undefined ? { commit } : { commit, dirty: status !== '' };
}

/** Pure: facts + inputs → fingerprint. */
export function fingerprint(h: HostFacts, inputs: EnvironmentInputs = {}, vcs: { commit?: string; dirty?: boolean } = {}): Environment {
  const env: Environment = {
    cpuModel: (h.cpus[0]?.model ?? 'unknown').replace(/\s+/g, ' ').trim(),
    cores: h.cpus.length,
    memoryBytes: h.totalmem,
    platform: h.platform,
    arch: h.arch,
    kernel: h.release,
    node: h.nodeVersion,
  };
  if (inputs.qemuVersion) env.qemu = inputs.qemuVersion.split('\n')[0]?.trim();
  if (inputs.accelerator) env.accelerator = inputs.accelerator;
  if (vcs.commit) env.gitCommit = vcs.commit;
  if (vcs.dirty !== undefined) env.gitDirty = vcs.dirty;
  return env;
}

export function collectEnvironment(inputs: EnvironmentInputs = {}): Environment {
  return fingerprint(hostFacts(), inputs, inputs.repoDir ? gitState(inputs.repoDir) : {});
}

/** Fields that change what absolute numbers mean. */
const COMPARED: readonly (keyof Environment)[] = ['cpuModel', 'cores', 'memoryBytes', 'arch', 'kernel', 'qemu', 'accelerator', 'node'];

/** Human-readable differences, e.g. `accelerator: kvm → tcg`. */
export function environmentDifferences(a: Partial<Environment>, b: Partial<Environment>): string[] {
  const out: string[] = [];
  for (const k of COMPARED) {
    const x = a[k];
    const y = b[k];
    if (x !== y) out.push(`${k}: ${x === undefined ? '—' : String(x)} → ${y === undefined ? '—' : String(y)}`);
  }
  return out;
}

/** One line for report headers. */
export function describeEnvironment(e: Partial<Environment>): string {
  const mem = e.memoryBytes ? `${(e.memoryBytes / 2 ** 30).toFixed(1)} GiB` : '? GiB';
  const parts = [`${e.cpuModel ?? 'unknown CPU'} × ${e.cores ?? '?'}`, mem, `${e.platform ?? '?'} ${e.kernel ?? ''}`.trim(), `node ${e.node ?? '?'}`];
  if (e.qemu) parts.push(e.qemu);
  if (e.accelerator) parts.push(`accel ${e.accelerator}`);
  if (e.gitCommit) parts.push(`git ${e.gitCommit.slice(0, 12)}${e.gitDirty ? '+dirty' : ''}`);
  return parts.join(', ');
}
