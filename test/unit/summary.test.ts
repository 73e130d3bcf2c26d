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
    expect(md).toMatch(/\| fb-mmap-direct \| 2000 \| 320 \| 0\.500 \| 0 \| 7 \| 900 ms \| PASS \|/);
    expect(md).toMatch(/\| fb-ioctl-mmio \| 40 \| 6\.4 \| 0\.010 \|/);
    expect(md).toContain('## Mouse events');
    expect(md).toMatch(/\| inverted \| 8000 \| 4 \| 16 \| 7990 \| 0 \| 0 \| 120 \| 480 \| 2000 \| PASS \|/);
    expect(md).toMatch(/\| polling \| 8000 \| 4 \| — \|/);
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
    const rule = lines[head + 1] ?? '';
    expect(rule).toMatch(/^-+( {2}-+)+$/);
    // Right-aligned numbers end in the same column.
    const mbEnd = (lines[head] ?? '').indexOf('MB/s') + 4;
    expect((lines[head + 2] ?? '').slice(0, mbEnd)).toMatch(/2000$/);
    expect((lines[head + 3] ?? '').slice(0, mbEnd)).toMatch(/ 40$/);
  });

  it('tables escape pipes', () => {
    expect(markdownTable({ headers: ['a'], rows: [['x|y']] })).toContain('x\\|y');
    expect(textTable({ headers: ['a', 'b'], rows: [['long value', '1']], align: ['left', 'right'] }).split('\n')[2]).toBe('long value  1');
  });

  it('mouse parameters come from details, metrics or the case name', () => {
    expect(mouseParams({ suite: 't', name: 'mouse-inverted-r1000-b1-p64', status: 'pass' })).toEqual({ mode: 'inverted', rateHz: 1000, bundle: 1, pending: 64 });
    expect(mouseParams({ suite: 't', name: 'x', status: 'pass', details: { mode: 'shared-memory', rate_hz: 125 } })).toEqual({ mode: 'shared-memory', rateHz: 125 });
  });
});
