/**
 * Real-time scheduling of one QEMU process. One job: put every thread of a running QEMU under
 * SCHED_FIFO (priority 1, the lowest real-time one) and say whether the host allowed it.
 *
 * Why: under TCG on a small host, QEMU's main loop (device timers, MSI delivery), its vCPU
 * threads and its render thread compete for the cores with each other and with the host's own
 * tasks. With the default policy a thread woken for an event can wait milliseconds behind a
 * time slice, and that wait is charged to the device-to-process latency a driver writer wants to
 * measure. A real-time thread runs as soon as it wakes and until it blocks (the practice for
 * latency-sensitive guests, e.g. libvirt's `vcpusched`). The kernel's real-time throttling
 * (`/proc/sys/kernel/sched_rt_runtime_us`) still leaves the host's other tasks their share if
 * the guest spins. Threads QEMU creates later (a hot-plugged device's render thread) inherit the
 * policy from the thread that creates them.
 */
import { execa } from 'execa';

export type RealtimeStatus = { policy: 'fifo'; priority: number } | { policy: 'default'; refused: string };

export const REALTIME_PRIORITY = 1;

/** `chrt -f -a -p 1 PID` (util-linux): every thread of the process. Never throws. */
export async function applyRealtime(pid: number): Promise<RealtimeStatus> {
  const r = await execa('chrt', ['-f', '-a', '-p', String(REALTIME_PRIORITY), String(pid)], { reject: false, timeout: 10_000 });
  if (r.exitCode === 0) return { policy: 'fifo', priority: REALTIME_PRIORITY };
  const why = String(r.stderr || r.stdout || (r as { shortMessage?: string }).shortMessage || `exit ${r.exitCode}`).trim().split('\n')[0] ?? '';
  return { policy: 'default', refused: why || 'chrt failed' };
}
