import { describe, expect, it } from 'vitest';
import { toSummaryMarkdown, toSummaryText } from '../../orchestrator/src/report/summary.ts';
import { markdownTable, textTable } from '../../orchestrator/src/report/table.ts';
import { mouseParams } from '../../orchestrator/src/report/metrics.ts';
import { sampleRun } from './sample-run.ts';

describe('summary', () => {
  const run = sampleRun();

  it('Markdown has header, tables and failures', () => {
    const md = toSummaryMarkdown(run);
    expect(md).toContain('# hilbox run: default');
    expect(md).toContain('- **accelerator**: tcg');
    expect(md).toContain('- **duration**: 65.4 s');
    expect(md).toContain('## Framebuffer throughput');
    expect(md).toMatch(/\| fb-map-direct \| 2000 \| 320 \| 0\.500 \| 0 \| 7 \| 0\.90 \| PASS \|/);
    expect(md).toMatch(/\| fb-ram-direct \| 4000 \| 640 \| 1\.000 \| — \| — \| — \| PASS \|/);
    expect(md).toMatch(/\| fb-copy-mmio \| 40 \| 6\.4 \| 0\.010 \| 0 \| — \| 2 \|/);
    expect(md).toContain('## Mouse events');
    expect(md).toMatch(/\| inverted-call \| 8000 \| 4 \| 16 \| 7990 \| 0 \| 0 \| — \| — \| 120 \| 480 \| 2000 \| PASS \|/);
    expect(md).toMatch(/\| polling \| 8000 \| 4 \| 1 \| 4000 \| 0 \| 0 \| — \| — \| 900 \| 4100 \| 9000 \| PASS \|/);
    expect(md).toContain('## Security');
    expect(md).toContain('| fb-write-denied | User space cannot get a writable mapping of the framebuffer. | FAIL |');
    expect(md).toContain('## Failures');
    expect(md).toContain('## Other cases');
  });

  it('console text has aligned columns and no Markdown', () => {
    const t = toSummaryText(run);
    expect(t).not.toContain('|');
    expect(t).not.toContain('##');
    expect(t).toMatch(/^scenario {5}default$/m);
    const lines = t.split('\n');
    const head = lines.findIndex((l) => l.startsWith('method'));
    expect(lines[head + 2]).toMatch(/^fb-ram-direct /);
    const rule = lines[head + 1] ?? '';
    expect(rule).toMatch(/^-+( {2}-+)+$/);
    // Right-aligned numbers end in the same column.
    const mbEnd = (lines[head] ?? '').indexOf('MB/s') + 4;
    expect((lines[head + 3] ?? '').slice(0, mbEnd)).toMatch(/ 2000$/);
    expect((lines[head + 4] ?? '').slice(0, mbEnd)).toMatch(/ {3}40$/);
  });

  it('tables escape pipes', () => {
    expect(markdownTable({ headers: ['a'], rows: [['x|y']] })).toContain('x\\|y');
    expect(textTable({ headers: ['a', 'b'], rows: [['long value', '1']], align: ['left', 'right'] }).split('\n')[2]).toBe('long value  1');
  });

  it('mouse parameters come from the case params, never from its name', () => {
    expect(mouseParams({ suite: 't', name: 'mouse-inverted-call-r1000-b1-p64', status: 'pass', params: { mode: 'inverted-call', rate_hz: 1000, bundle: 1, pending: 64 } })).toEqual({ mode: 'inverted-call', rateHz: 1000, bundle: 1, pending: 64 });
    expect(mouseParams({ suite: 't', name: 'mouse-polling-r125-b4', status: 'pass' })).toEqual({ mode: '' });
  });
});

describe('metric names', () => {
  it('has one spelling per metric and converts time units', () => {
    const c = {
      suite: 'throughput',
      name: 'mouse-polling-r1000-b1',
      status: 'pass' as const,
      params: { mode: 'polling', rate_hz: 1000, bundle: 1, pending: 1 },
      metrics: { events_per_s: { value: 990, unit: 'events/s' }, lost: { value: 2, unit: 'events' }, latency_p99: { value: 35_000, unit: 'ns' }, events_lost: { value: 9, unit: 'count' } },
    };
    const md = toSummaryMarkdown({ ...sampleRun(), cases: [c] });
    expect(md).toMatch(/\| polling \| 1000 \| 1 \| 1 \| 990 \| 2 \| — \| — \| — \| — \| 35 \| — \| PASS \|/);
  });

  it('shows records per completion and CPU per 1000 events, and the ceiling beside the notification baseline', () => {
    const mk = (name: string, params: Record<string, string | number>, metrics: Record<string, number>) => ({
      suite: 'throughput',
      name,
      status: 'pass' as const,
      params,
      metrics: Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, { value: v, unit: '' }])),
    });
    const cases = [
      mk('mouse-inverted-call-r8000-b4-p64', { mode: 'inverted-call', rate_hz: 8000, bundle: 4, pending: 64 }, { events_per_s: 8000, lost: 0, order_violations: 0, records_per_completion: 4, cpu_us_per_1000_events: 12.5 }),
      mk('ceiling-inverted-call-p16', { mode: 'inverted-call', rate_hz: 0, bundle: 4096, pending: 16, load: 'fifo-burst' }, { events_per_s: 50000, records_per_completion: 10, cpu_us_per_1000_events: 300, device_drops: 7, order_violations: 0 }),
      mk('notify-baseline', { mode: 'notify', mechanism: 'eventfd' }, { wakeups_per_s: 20000, cpu_us_per_1000_events: 40 }),
    ];
    const md = toSummaryMarkdown({ ...sampleRun(), cases });
    expect(md).toMatch(/\| inverted-call \| 8000 \| 4 \| 64 \| 8000 \| 0 \| 0 \| 4 \| 12\.5 \| — \| — \| — \| PASS \|/);
    expect(md).toContain('## Event delivery ceiling (fifo-burst load)');
    expect(md).toMatch(/\| inverted-call \| 16 \| 5000 \| 50000 \| 10 \| 300 \| 7 \| 0 \| PASS \|/);
    expect(md).toMatch(/\| eventfd wake-up \| — \| 20000 \| — \| — \| 40 \| — \| — \| PASS \|/);
    // the ceiling rows are not mouse rows, nor "other cases"
    expect(md.split('## Event delivery ceiling')[0]).not.toMatch(/\| inverted-call \| 0 \|/);
    expect(md).not.toContain('notify-baseline');
  });
});

describe('terminal safety', () => {
  it('shows control characters as escapes in both renderings', () => {
    expect(toSummaryText(sampleRun())).toContain('"quoted"\\u0001 control');
    expect(toSummaryText(sampleRun())).not.toContain('\u0001');
    expect(toSummaryMarkdown(sampleRun())).not.toContain('\u0001');
  });
});
