/** Tables as Markdown or aligned plain text. One job: rows of cells → text. */

export type Align = 'left' | 'right';

export interface TableSpec {
  headers: readonly string[];
  rows: readonly (readonly string[])[];
  /** Per column; default left. */
  align?: readonly Align[];
}

/** Control characters (other than tab/newline) as visible `\uXXXX`, so no cell can drive a terminal. */
export function visible(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Escapes a Markdown table cell: pipes, newlines, control characters, surrounding space. */
export function mdCell(s: string): string {
  return visible(s).replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ').trim() || ' ';
}

export function markdownTable(t: TableSpec): string {
  const align = (i: number) => (t.align?.[i] === 'right' ? '---:' : '---');
  const line = (cells: readonly string[]) => `| ${cells.map(mdCell).join(' | ')} |`;
  return [line(t.headers), `|${t.headers.map((_, i) => ` ${align(i)} `).join('|')}|`, ...t.rows.map((r) => line(t.headers.map((_, i) => r[i] ?? '')))].join('\n');
}

/** Display width of a string, counting code points (good enough for the symbols we print). */
function width(s: string): number {
  return [...s].length;
}

function oneLine(s: string): string {
  return visible(s.replace(/[\r\n\t]+/g, ' '));
}

/** Aligned columns separated by two spaces, a dashed rule under the header; no Markdown. */
export function textTable(t: TableSpec): string {
  const cells = [t.headers, ...t.rows].map((r) => t.headers.map((_, i) => oneLine(r[i] ?? '')));
  const widths = t.headers.map((_, i) => Math.max(...cells.map((r) => width(r[i] ?? ''))));
  const pad = (s: string, i: number) => {
    const fill = ' '.repeat((widths[i] ?? 0) - width(s));
    return t.align?.[i] === 'right' ? fill + s : s + fill;
  };
  const fmt = (r: readonly string[]) => r.map(pad).join('  ').replace(/\s+$/, '');
  const [head, ...body] = cells;
  return [fmt(head ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(fmt)].join('\n');
}
