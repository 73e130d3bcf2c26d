/**
 * Test helper: a synthetic run shaped like the throughput suite's results (probe output, suite params).
 * The numbers are made up for tests only.
 */
import { buildRunResults, type CaseResult, type RunResults } from '../../orchestrator/src/report/results.ts';

const m = (value: number, unit: string) => ({ value, unit });

/** Throughput cases; `speed` scales every absolute rate, as a faster/slower host would. */
export function throughputCases(speed = 1, overrides: Partial<Record<string, number>> = {}): CaseResult[] {
  const s = (v: number) => v * speed;
  return [
    { suite: 'throughput', name: 'fb-ram-direct', status: 'pass', params: { method: 'ram', fb_mode: 'direct' }, metrics: { read_mb_per_s: m(s(4000), 'MB/s'), frames_per_s: m(s(640), 'frames/s') } },
    {
      suite: 'throughput',
      name: 'fb-map-direct',
      status: 'pass',
      params: { method: 'map', fb_mode: 'direct' },
      metrics: {
        read_mb_per_s: m(s(overrides['fb-map-direct'] ?? 2000), 'MB/s'),
        frames_per_s: m(s(320), 'frames/s'),
        torn_frames: m(0, 'frames'),
        torn_frames_no_seqlock: m(7, 'frames'),
        cpu_time: m(0.9, 's'),
      },
      durationMs: 2100,
    },
    {
      suite: 'throughput',
      name: 'fb-copy-mmio',
      status: 'pass',
      params: { method: 'copy', fb_mode: 'mmio' },
      metrics: { read_mb_per_s: m(s(overrides['fb-copy-mmio'] ?? 40), 'MB/s'), frames_per_s: m(s(6.4), 'frames/s'), torn_frames: m(0, 'frames'), cpu_time: m(2, 's') },
      durationMs: 2050,
    },
    {
      suite: 'throughput',
      name: 'mouse-polling-r8000-b4',
      status: 'pass',
      params: { mode: 'polling', rate_hz: 8000, bundle: 4, pending: 1 },
      metrics: {
        events_per_s: m(s(4000), 'events/s'),
        lost: m(0, 'events'),
        duplicates: m(0, 'events'),
        order_violations: m(0, 'records'),
        latency_p50: m(900_000, 'ns'),
        latency_p99: m(4_100_000, 'ns'),
        latency_max: m(9_000_000, 'ns'),
        cpu_time: m(1.5, 's'),
      },
    },
    {
      suite: 'throughput',
      name: 'mouse-inverted-call-r8000-b4-p16',
      status: 'pass',
      params: { mode: 'inverted-call', rate_hz: 8000, bundle: 4, pending: 16 },
      metrics: {
        events_per_s: m(s(overrides['mouse-inverted-call-r8000-b4-p16'] ?? 7990), 'events/s'),
        lost: m(overrides.lost ?? 0, 'events'),
        duplicates: m(overrides.duplicates ?? 0, 'events'),
        order_violations: m(0, 'records'),
        latency_p50: m(120_000, 'ns'),
        latency_p99: m(480_000, 'ns'),
        latency_max: m(2_000_000, 'ns'),
        cpu_time: m(0.2, 's'),
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
    [...throughputCases(), ...securityCases(), { suite: 'verify', name: 'verify-frames', status: 'pass', durationMs: 300 }],
  );
}
