/**
 * Real-time scheduling of one QEMU process. One job: put every thread of a running QEMU under
 * SCHED_FIFO and say whether the host allowed it: the vCPU threads (and the render thread) at
 * priority 1, the lowest real-time one, and the main loop at 2, so that the thread that runs the
 * device's timers, delivers its interrupts and answers the monitor preempts a spinning vCPU
 * instead of waiting behind it (at equal priority a vCPU busy in firmware starves it for good).
 *
 * Why: under TCG on a small host, QEMU's main loop (device timers, MSI delivery), its vCPU
 * threads and its render thread compete for the cores with each other and with the host's own
 * tasks. With the default policy a thread woken for an event can wait milliseconds behind a
 * time slice, and that wait is charged to the device-to-process latency a driver writer wants to
 * measure. A real-time thread runs as soon as it wakes and until it blocks (the practice for
 * latency-sensitive guests, e.g. libvirt's `vcpusched`). The kernel's real-time throttling
 * (`/proc/sys/kernel/sched_rt_runtime_us`) still leaves the host's other tasks their share if
 * the guest spins. Threads QEMU creates later (a hot-plugged device's render thread) inherit the
 * policy from the thread that creates them. A spinning vCPU under SCHED_FIFO keeps its host core
 * but for the throttled share, so the boot refuses `realtime` when the guest has more vCPUs than
 * the host has cores, or as many with throttling off (checkRealtimeFits).
 */
import { readFileSync } from 'node:fs';
import { execa } from 'execa';

export type RealtimeStatus = { policy: 'fifo'; priority: number } | { policy: 'default'; refused: string };

export const REALTIME_PRIORITY = 1;
export const MAIN_LOOP_PRIORITY = 2;

/** The kernel's real-time throttling: the share of each period real-time threads may use, or undefined (off or unknown). */
export function rtThrottleShare(): number | undefined {
  try {
    const runtime = Number(readFileSync('/proc/sys/kernel/sched_rt_runtime_us', 'utf8').trim());
    const period = Number(readFileSync('/proc/sys/kernel/sched_rt_period_us', 'utf8').trim());
    return runtime >= 0 && period > 0 && runtime < period ? runtime / period : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why `realtime` cannot be used with `cpus` vCPUs on this host, or undefined. With real-time
 * throttling on (Linux's default: 95 % of each second), vCPUs spinning on every core still leave
 * the host's own tasks the rest; without it one core at least must stay free of vCPUs.
 * `quantity` names the figure in the message (a scenario field, or "vCPUs together").
 */
export function checkRealtimeFits(cpus: number, hostCores: number, throttle: number | undefined, quantity = 'cpus'): string | undefined {
  if (throttle !== undefined ? cpus <= hostCores : cpus < hostCores) return undefined;
  if (throttle !== undefined) return `needs at most as many vCPUs as host cores (${quantity}: ${cpus}, this host: ${hostCores}); allowed here: ${quantity} ≤ ${hostCores}`;
  return `needs fewer vCPUs than host cores while real-time throttling is off (/proc/sys/kernel/sched_rt_runtime_us is -1; ${quantity}: ${cpus}, this host: ${hostCores}): a vCPU spinning under SCHED_FIFO would keep its core from the host's own tasks; allowed here: ${quantity} ≤ ${hostCores - 1}${hostCores < 2 ? ' (none: this host has one core)' : ''}`;
}

/**
 * Why these scenarios cannot run `jobs` at a time on this host, or undefined: realtime VMs side
 * by side share the host's cores, so the most vCPUs that can be under SCHED_FIFO at once (the
 * `jobs` largest realtime scenarios) must fit as one guest's would (checkRealtimeFits).
 */
export function checkRealtimeSideBySide(scenarios: readonly { name: string; cpus: number; realtime: boolean }[], jobs: number, hostCores: number, throttle: number | undefined): string | undefined {
  const together = scenarios.filter((s) => s.realtime).sort((a, b) => b.cpus - a.cpus).slice(0, jobs);
  if (together.length < 2) return undefined;
  const sum = together.reduce((n, s) => n + s.cpus, 0);
  const why = checkRealtimeFits(sum, hostCores, throttle, 'vCPUs together');
  return why && `${together.map((s) => s.name).join(', ')} side by side put ${sum} vCPUs under SCHED_FIFO at once; realtime ${why}; run them with a smaller -j`;
}

/**
 * `chrt -f -a -p 1 PID`, then `chrt -f -p 2 PID` (util-linux): every thread of the process, then
 * the main thread (TID = PID) above them. Never throws.
 */
export async function applyRealtime(pid: number): Promise<RealtimeStatus> {
  for (const args of [['-f', '-a', '-p', String(REALTIME_PRIORITY), String(pid)], ['-f', '-p', String(MAIN_LOOP_PRIORITY), String(pid)]]) {
    const r = await execa('chrt', args, { reject: false, timeout: 10_000 });
    if (r.exitCode === 0) continue;
    const why = String(r.stderr || r.stdout || (r as { shortMessage?: string }).shortMessage || `exit ${r.exitCode}`).trim().split('\n')[0] ?? '';
    // one refused step leaves nothing half-done: every thread back to the default policy
    await execa('chrt', ['-o', '-a', '-p', '0', String(pid)], { reject: false, timeout: 10_000 });
    return { policy: 'default', refused: why || 'chrt failed' };
  }
  return { policy: 'fifo', priority: REALTIME_PRIORITY };
}
