/**
 * Every metric name a case can carry, with one spelling each: what the probes print (both OSes
 * share the names through the probe core) and what the host adds. One job: the metric
 * vocabulary. A scenario threshold naming anything else is bad input, and
 * test/unit/metric-names.test.ts fails when a probe prints a name this list does not hold.
 */

/** Metrics the probes print, name → unit. */
export const PROBE_METRICS: Readonly<Record<string, string>> = {
  // info
  width: 'px', height: 'px', stride: 'B', fps: '1/s', fb_bytes: 'B', bar2_size: 'B', mmio_latency: 'ns',
  frame_number: 'frame', frames_produced: 'frames', device_clock: 'ns', fb_write_attempts: 'writes',
  ev_rate: 'Hz', ev_bundle: 'packets', ev_fifo_depth: 'records', ev_produced: 'events', ev_delivered: 'events', ev_dropped: 'events',
  drv_ring_drops: 'events', irq_count: 'irqs', ring_size: 'records', link_downs: 'times', fallback_drains: 'drains', irq_storms: 'times', irq_spurious: 'irqs',
  // robustness stress
  cycles: 'cycles', threads: 'threads', failures: 'cycles', open_close_ms: 'ms',
  // frames
  mismatched_pixels: 'px', bar2_tail_nonzero: 'B', copy_time: 'ns', fb_write_attempts_delta: 'writes',
  read_mb_per_s: 'MB/s', ram_mb_per_s: 'MB/s', ram_ratio: 'x RAM',
  // events
  records: 'records', events: 'events', events_per_s: 'events/s', lost: 'events', duplicates: 'events', seq_gaps: 'events',
  order_violations: 'records', latency_p50: 'ns', latency_p99: 'ns', latency_max: 'ns', latency_samples: 'samples',
  driver_ring_drops: 'events', device_drops: 'events', irqs: 'irqs', read_errors: 'reads', errors: 'errors',
  completions: 'completions', records_per_completion: 'records', split_reports: 'completions', eagain_completions: 'completions', cpu_us_per_1000_events: 'us',
  ring_dropped: 'events', ring_wakeups: 'wakeups', records_after_fork: 'records', wakeups_per_s: 'wakeups/s',
  // security cases
  requests: 'requests', cancelled: 'requests', completed_otherwise: 'requests', stuck: 'requests',
  readers_waiting_before: 'requests', readers_waiting_after: 'requests', retries: 'retries', iterations: 'iterations',
  kill_to_reap: 'ms', exit_ms: 'ms', worst_round_ms: 'ms', elapsed: 's', seconds: 's',
  cpu_time: 's', cpu_percent: '%',
  // the internal _hb-* commands (guest-probe/linux/hardening.c, driven by test/guest/driver-hardening.test.ts)
  completed: 'requests', completed_with_record: 'requests', contender_rounds: 'rounds', eagain_after_pollin: 'reads',
  eagain_with_records_queued: 'reads', pollin: 'polls', readers_waiting: 'requests', reads: 'reads',
  reader_max_wait_ms: 'ms', reader_waits_over_5ms: 'reads',
};

/** fb-throughput's per-phase metrics (probe core tp_metrics), each also with `_no_seqlock`. */
export const FB_PHASE_METRICS: Readonly<Record<string, string>> = {
  mb_per_s: 'MB/s', frames_read: 'frames', read_time: 's', wait_time: 's',
  frames_per_s: 'frames/s', frames_copied: 'frames', distinct_frames: 'frames', frames_missed: 'frames',
  torn_frames: 'frames', seq_mismatch: 'frames', seqlock_retries: 'retries', seqlock_giveups: 'copies',
  cpu_time: 's', cpu_percent: '%', wall_time: 's',
};
export const NO_SEQLOCK_SUFFIX = '_no_seqlock';

/** fb-consume's per-phase metrics (probe core probe_consume.c fc_report), each also with `_no_seqlock`. */
export const FB_CONSUME_METRICS: Readonly<Record<string, string>> = {
  cpu_percent: '%', cpu_time: 's', wall_time: 's', frames_published: 'frames', frames_consumed: 'frames',
  frames_missed: 'frames', torn_frames: 'frames', frames_discarded: 'frames', frame_polls: 'polls',
  frame_sleeps: 'sleeps', consume_time: 's', check_cpu_time: 's',
};

/** verify-frames' per-method metrics (probe core verify_report): `<method>_<metric>`. */
export const FB_METHOD_NAMES = ['copy', 'map', 'bytewise', 'qword', 'ram'] as const;
export const VERIFY_METHOD_METRICS: Readonly<Record<string, string>> = {
  frames_verified: 'frames', mismatched_pixels: 'px', torn_frames: 'frames', seqlock_retries: 'retries', seconds: 's',
};

/** Metrics the orchestrator adds to cases. */
export const HOST_METRICS: Readonly<Record<string, string>> = {
  boot_to_first_ssh_command_ms: 'ms',
  cold_boot_ms: 'ms',
  fast_reset_ms: 'ms',
  reset_speedup: '× cold boot',
  device_write_attempts_delta: 'writes',
  device_events_dropped: 'events',
  host_mismatched_pixels: 'px',
  host_fed_events: 'events', bursts: 'bursts',
  host_feed_rate: 'events/s',
  // security: irq-drain-bounded
  burst_records_read: 'records',
  burst_seq_gaps: 'events',
  burst_device_drops: 'events',
  irq_handler_max_ms: 'ms',
  irq_handler_runs: 'runs',
  single_record_irqs: 'irqs',
  // security: mmio-stall
  qmp_rtt_p99_ms: 'ms',
  qmp_rtt_max_ms: 'ms',
  qmp_round_trips: 'requests',
  frames_produced_delta: 'frames',
  frames_expected: 'frames',
  unbind_ms: 'ms',
  copiers_enodev: 'processes',
  // security: vmstate-hostile
  feed_errors_delta: 'B',
  records_after_reconnect: 'records',
  restore_records: 'records',
  restore_feed_errors: 'B',
  crafted_stream_exit_code: 'code',
  migration_frames_during: 'frames',
  migrated_mismatched_pixels: 'px',
  // robustness
  reader_end_ms: 'ms',
  command_during_storm_ms: 'ms',
  consumer_end_ms: 'ms',
  burst: 'records',
};

/** Every metric name, sorted. */
export const METRIC_NAMES: readonly string[] = [
  ...new Set([
    ...Object.keys(PROBE_METRICS),
    ...Object.keys(FB_PHASE_METRICS).flatMap((m) => [m, `${m}${NO_SEQLOCK_SUFFIX}`]),
    ...Object.keys(FB_CONSUME_METRICS).flatMap((m) => [m, `${m}${NO_SEQLOCK_SUFFIX}`]),
    ...FB_METHOD_NAMES.flatMap((method) => Object.keys(VERIFY_METHOD_METRICS).map((m) => `${method}_${m}`)),
    ...Object.keys(HOST_METRICS),
  ]),
].sort();

const KNOWN = new Set(METRIC_NAMES);

export function isMetricName(name: string): boolean {
  return KNOWN.has(name);
}
