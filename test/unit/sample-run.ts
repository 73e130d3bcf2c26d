/** Test helper: a synthetic run with every kind of case (values are made up for tests only). */
import { buildRunResults, type CaseResult, type RunResults } from '../../orchestrator/src/report/results.ts';

const m = (value: number, unit: string) => ({ value, unit });

/** Throughput + mouse cases; `speed` scales every absolute rate, as a faster/slower host would. */
export function throughputCases(speed = 1, overrides: Partial<Record<string, number>> = {}): CaseResult[] {
  const s = (v: number) => v * speed;
  return [
    { suite: 'throughput', name: 'ram-reference', status: 'pass', metrics: { ram_copy_mb_per_s: m(s(4000), 'MB/s') } },
    {
      suite: 'throughput',
      name: 'fb-mmap-direct',
      status: 'pass',
      metrics: {
        fb_copy_mb_per_s: m(s(overrides['fb-mmap-direct'] ?? 2000), 'MB/s'),
        frames_per_s: m(s(320), 'frames/s'),
        torn_frames_seqlock: m(0, 'count'),
        torn_frames_unlocked: m(7, 'count'),
        cpu_ms: m(900, 'ms'),
      },
      durationMs: 2100,
    },
    {
      suite: 'throughput',
      name: 'fb-ioctl-mmio',
      status: 'pass',
      metrics: { fb_copy_mb_per_s: m(s(overrides['fb-ioctl-mmio'] ?? 40), 'MB/s'), frames_per_s: m(s(6.4), 'frames/s'), torn_frames_seqlock: m(0, 'count') },
      durationMs: 2050,
    },
    {
      suite: 'throughput',
      name: 'mouse-polling-r8000-b4',
      status: 'pass',
      details: { mode: 'polling', rate_hz: 8000, bundle: 4 },
      metrics: { events_per_s: m(s(4000), 'events/s'), events_lost: m(0, 'count'), order_violations: m(0, 'count'), latency_p50_us: m(900, 'µs'), latency_p99_us: m(4100, 'µs'), latency_max_us: m(9000, 'µs') },
    },
    {
      suite: 'throughput',
      name: 'mouse-inverted-r8000-b4-p16',
      status: 'pass',
      metrics: {
        events_per_s: m(s(overrides['mouse-inverted-r8000-b4-p16'] ?? 7990), 'events/s'),
        events_lost: m(overrides['events_lost'] ?? 0, 'count'),
        order_violations: m(0, 'count'),
        latency_p50_us: m(120, 'µs'),
        latency_p99_us: m(480, 'µs'),
        latency_max_us: m(2000, 'µs'),
      },
    },
  ];
}

export function securityCases(): CaseResult[] {
  return [
    { suite: 'security', name: 'unmap-on-close', status: 'pass', policy: 'A mapping is torn down when the last reference goes away.', durationMs: 40 },
    {
      suite: 'security',
      name: 'fb-write-denied',
      status: 'fail',
      policy: 'User space cannot get a writable mapping of the framebuffer.',
      reason: 'mmap(PROT_WRITE) succeeded <&> "quoted"\u0001 control',
      durationMs: 12,
    },
    { suite: 'security', name: 'dup-handle', status: 'skip', policy: 'Duplicated handles do not outlive the mapping.', reason: 'Windows only' },
  ];
}

export function sampleRun(): RunResults {
  return buildRunResults(
    { scenario: 'default', guest: 'linux', startedAt: new Date('2025-01-02T03:04:05Z'), durationMs: 65432, environment: { accelerator: 'tcg' } },
    [...throughputCases(), ...securityCases(), { suite: 'verify', name: 'frames', status: 'pass', durationMs: 300 }],
  );
}
