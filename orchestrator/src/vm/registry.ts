/**
 * Process-wide registry of live VMs. One job: kill them all when this process is asked to stop
 * (SIGINT, SIGTERM, SIGHUP) or exits. Handlers are installed while at least one VM lives, and
 * removed afterwards so an idle process keeps its default signal behaviour. After killing the
 * VMs, if no other listener handles the signal, it is re-raised so the process dies of it
 * (shell status 130/143) — exactly as it would have without hilbox.
 */

export interface Killable {
  /** Synchronously sends SIGKILL to QEMU (must not throw). */
  killNow(reason: string): void;
}

const live = new Set<Killable>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type Sig = (typeof SIGNALS)[number];
const handlers = new Map<Sig, () => void>();

function onExit(): void {
  for (const vm of live) vm.killNow('process exit');
}

function install(): void {
  if (handlers.size > 0) return;
  for (const sig of SIGNALS) {
    const h = (): void => {
      for (const vm of [...live]) vm.killNow(`received ${sig}`);
      live.clear();
      uninstall();
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    handlers.set(sig, h);
    process.on(sig, h);
  }
  process.on('exit', onExit);
}

function uninstall(): void {
  for (const [sig, h] of handlers) process.off(sig, h);
  handlers.clear();
  process.off('exit', onExit);
}

export function registerVm(vm: Killable): void {
  live.add(vm);
  install();
}

export function unregisterVm(vm: Killable): void {
  live.delete(vm);
  if (live.size === 0) uninstall();
}

export function liveVmCount(): number {
  return live.size;
}
