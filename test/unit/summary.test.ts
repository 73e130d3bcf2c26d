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
    expect(md).toMatch(/\| fb-ram \| 4000 \| 640 \| 1\.000 \| — \| — \| — \| PASS \|/);
    expect(md).toMatch(/\| fb-copy-mmio \| 40 \| 6\.4 \| 0\.010 \| 0 \| — \| 2 \|/);
    expect(md).toContain('## Mouse events');
    expect(md).toMatch(/\| uring \| 8000 \| 4 \| 16 \| 7990 \| 0 \| 0 \| 120 \| 480 \| 2000 \| PASS \|/);
    expect(md).toMatch(/\| poll \| 8000 \| 4 \| 1 \| 4000 \| 0 \| 0 \| 900 \| 4100 \| 9000 \| PASS \|/);
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
    expect(lines[head + 2]).toMatch(/^fb-ram /);
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

  it('mouse parameters come from details, metrics or the case name', () => {
    expect(mouseParams({ suite: 't', name: 'events-uring-r1000-b1-p64', status: 'pass' })).toEqual({ mode: 'uring', rateHz: 1000, bundle: 1, pending: 64 });
    expect(mouseParams({ suite: 't', name: 'x', status: 'pass', details: { mode: 'blocking', ev_rate_hz: 125, ev_bundle: 4 } })).toEqual({ mode: 'blocking', rateHz: 125, bundle: 4 });
  });
});

describe('metric names', () => {
  it('reads the longer alias names and converts time units', () => {
    const c = {
      suite: 'throughput',
      name: 'x-r1000-b1',
      status: 'pass' as const,
      details: { mode: 'blocking' },
      metrics: { events_per_s: { value: 990, unit: 'events/s' }, events_lost: { value: 2, unit: 'count' }, latency_p99_us: { value: 35, unit: 'µs' } },
    };
    const md = toSummaryMarkdown({ ...sampleRun(), cases: [c] });
    expect(md).toMatch(/\| blocking \| 1000 \| 1 \| — \| 990 \| 2 \| — \| — \| 35 \| — \| PASS \|/);
  });
});

describe('terminal safety', () => {
  it('shows control characters as escapes in both renderings', () => {
    expect(toSummaryText(sampleRun())).toContain('"quoted"\\u0001 control');
    expect(toSummaryText(sampleRun())).not.toContain('\u0001');
    expect(toSummaryMarkdown(sampleRun())).not.toContain('\u0001');
  });
});
