/**
 * Watchdog that kills our QEMU processes if this Node process dies without cleaning up — even by
 * SIGKILL, when no handler can run. One job: guarantee no QEMU outlives the orchestrator.
 *
 * A small Node child process (the reaper) holds the read end of a pipe whose write end only we
 * hold. We tell it "add <pid>"/"del <pid>". When we die, the kernel closes our end; the reaper
 * reads EOF, SIGKILLs every registered pid (checking /proc/<pid>/stat start time so a recycled
 * pid is never hit) and exits. The reaper ignores SIGINT/SIGTERM sent to the whole process group
 * (a terminal ^C): it waits for our pipe to close instead.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const REAPER_SOURCE = String.raw`
const fs = require('fs');
const pids = new Map();
function start(p) {
  try { const s = fs.readFileSync('/proc/' + p + '/stat', 'utf8'); return s.slice(s.lastIndexOf(')') + 2).split(' ')[19]; }
  catch { return undefined; }
}
function reap() {
  for (const [p, e] of pids) {
    if (e.t !== undefined && start(p) === e.t) { try { process.kill(p, 'SIGKILL'); } catch {} }
    if (e.dir && /^\/[^\0]*\/hilbox-vm-[A-Za-z0-9]+$/.test(e.dir)) { try { fs.rmSync(e.dir, { recursive: true, force: true }); } catch {} }
  }
  process.exit(0);
}
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d; let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const [cmd, arg, dir] = buf.slice(0, i).split(' '); buf = buf.slice(i + 1);
    const pid = Number(arg);
    if (cmd === 'add') pids.set(pid, { t: start(pid), dir }); else if (cmd === 'del') pids.delete(pid);
  }
});
process.stdin.on('end', reap); process.stdin.on('close', reap); process.stdin.on('error', reap);
process.on('SIGINT', () => {}); process.on('SIGTERM', () => {}); process.on('SIGHUP', () => {});
`;

let reaper: ChildProcess | undefined;

function ensureReaper(): ChildProcess {
  if (reaper && reaper.exitCode === null && reaper.signalCode === null && reaper.stdin?.writable) return reaper;
  const child = spawn(process.execPath, ['-e', REAPER_SOURCE], {
    stdio: ['pipe', 'ignore', 'inherit'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  child.unref();
  // The pipe must not keep our event loop alive either.
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  child.stdin?.on('error', () => {});
  child.on('exit', () => {
    if (reaper === child) reaper = undefined;
  });
  reaper = child;
  return child;
}

/**
 * Registers a pid to be SIGKILLed if this process dies; `runDir` (a private hilbox-vm-* temp
 * directory without spaces) is removed then too.
 */
export function watchPid(pid: number, runDir?: string): void {
  const dir = runDir && !/\s/.test(runDir) ? ` ${runDir}` : '';
  ensureReaper().stdin?.write(`add ${pid}${dir}\n`);
}

/** Forgets a pid (it exited or was stopped by us). */
export function unwatchPid(pid: number): void {
  if (reaper?.stdin?.writable) reaper.stdin.write(`del ${pid}\n`);
}

/** Pid of the reaper process (tests). */
export function reaperPid(): number | undefined {
  return reaper?.pid;
}
