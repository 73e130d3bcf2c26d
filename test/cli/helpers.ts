/** Runs the real `hilbox` CLI as a child process and watches its QEMU processes. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../../orchestrator/src/core/paths.ts';

export const HILBOX = join(repoRoot, 'bin', 'hilbox.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function startCli(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<CliResult>; output: () => string } {
  const child = spawn(process.execPath, [HILBOX, ...args], { cwd: repoRoot, env: { ...process.env, CI: 'true', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((res) => child.on('close', (code, signal) => res({ code, signal, stdout, stderr })));
  return { child, done, output: () => stdout + stderr };
}

export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return startCli(args, env).done;
}

/** PIDs of QEMU processes whose command line mentions `marker`. */
export function qemuPids(marker: string): number[] {
  try {
    const out = execFileSync('pgrep', ['-f', `qemu-system.*${marker}`], { encoding: 'utf8' });
    return out.split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Descendant PIDs of `pid` (the QEMU a CLI process started is its child). */
export function descendants(pid: number): number[] {
  try {
    const out = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' });
    const rows = out.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
    const found: number[] = [];
    const walk = (p: number) => {
      for (const [c, pp] of rows) if (pp === p) { found.push(c); walk(c); }
    };
    walk(pid);
    return found;
  } catch {
    return [];
  }
}

export function isQemu(pid: number): boolean {
  try {
    return execFileSync('cat', [`/proc/${pid}/comm`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('qemu-system');
  } catch {
    return false;
  }
}

export async function waitFor(pred: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return pred();
}
