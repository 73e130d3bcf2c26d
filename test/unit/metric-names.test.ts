/**
 * One spelling per metric: every metric name the probes can print (read from their C sources,
 * both OSes) is in the registry thresholds and reports use, and the registry's computed
 * families match the probe core's. The suites test holds every metric of a real run against it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../orchestrator/src/core/paths.ts';
import { FB_CONSUME_METRICS, FB_METHOD_NAMES, FB_PHASE_METRICS, isMetricName, PROBE_METRICS, VERIFY_METHOD_METRICS } from '../../orchestrator/src/report/metric-names.ts';

const probeDir = join(repoRoot, 'guest-probe');
const sources = readdirSync(probeDir, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.c'))
  .map((f) => ({ f, text: readFileSync(join(probeDir, f), 'utf8') }));

describe('metric names', () => {
  it('every r_metric("name", …) literal in the probes is registered with its unit', () => {
    const seen: string[] = [];
    for (const { f, text } of sources) {
      for (const m of text.matchAll(/r_metric\(&?\w+,\s*"([a-z0-9_]+)",[^;]*?"([^"]*)"\)\s*;/gs)) {
        seen.push(m[1]!);
        expect(PROBE_METRICS[m[1]!], `${f}: ${m[1]} (${m[2]})`).toBe(m[2]);
      }
    }
    expect(seen.length).toBeGreaterThan(40);
  });

  it('fb-throughput and fb-consume phase metrics and verify-frames method metrics match the probe core', () => {
    const core = sources.find((s) => s.f.endsWith('probe_core.c'))!.text;
    const phase = Object.fromEntries([...core.matchAll(/\bM\("([a-z_]+)",[^;]*?"([^"]*)"\);/g)].map((m) => [m[1], m[2]]));
    expect(phase).toEqual(FB_PHASE_METRICS);
    const verify = Object.fromEntries([...core.matchAll(/"%s_([a-z_]+)", method\);\s*r_metric\(r, key, [^;]*?"([^"]*)"\);/g)].map((m) => [m[1], m[2]]));
    expect(verify).toEqual(VERIFY_METHOD_METRICS);
    const methods = /method_name\[\] = \{([^}]*)\}/.exec(core)![1]!.match(/"([a-z]+)"/g)!.map((q) => q.slice(1, -1));
    expect(methods).toEqual([...FB_METHOD_NAMES]);
    expect(isMetricName('torn_frames_no_seqlock')).toBe(true);
    expect(isMetricName('map_mismatched_pixels')).toBe(true);
    const consume = sources.find((s) => s.f.endsWith('probe_consume.c'))!.text;
    expect(Object.fromEntries([...consume.matchAll(/\bCM\("([a-z_]+)",[^;]*?"([^"]*)"\);/g)].map((m) => [m[1], m[2]]))).toEqual(FB_CONSUME_METRICS);
    for (const unit of ['frames_consumed', 'frames_published_no_seqlock', 'frame_polls', 'check_cpu_time_no_seqlock']) expect(isMetricName(unit), unit).toBe(true);
    for (const gone of ['events_lost', 'latency_p50_us', 'cpu_ms', 'fb_copy_mb_per_s', 'torn_frames_seqlock']) expect(isMetricName(gone), gone).toBe(false);
  });
});
