/**
 * The CPU table as a chart (SVG). One job: CpuRow[] → an SVG document. One row per picture ×
 * BAR × method, two bars each — the guest CPU share with the seqlock and without it, on a scale
 * of one CPU (100 %) — labelled with the CPU %, the missed and published frames and the torn
 * frames. A bar is red when its consumer missed frames: it could not keep up.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CpuPhase, CpuRow } from '../report/cpu-table.ts';
import { formatNumber } from '../report/metrics.ts';

export interface CpuChartOptions {
  title?: string;
  /** Width in pixels. Default 960. */
  width?: number;
}

const FAMILY = 'font-family="DejaVu Sans Mono, Menlo, Consolas, monospace"';
const FONT = `${FAMILY} font-size="11"`;
const PAD = 10;
const BAR = 9;
const ROW = 2 * BAR + 8;
const LABEL_W = 300;
const NOTE_W = 220;
const KEPT_UP = ['#1f6feb', '#8cb8f5'] as const;
const MISSED = ['#cf222e', '#f0a0a6'] as const;

/** Escapes text for an SVG text node or attribute. */
export function xmlText(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function note(p: CpuPhase): string {
  if (p.cpuPercent === undefined) return 'not measured';
  const parts = [`${formatNumber(p.cpuPercent, 1)}%`];
  if (p.missed !== undefined) parts.push(`${formatNumber(p.missed)}/${formatNumber(p.published)} missed`);
  if (p.torn) parts.push(`${formatNumber(p.torn)} torn`);
  return parts.join(' · ');
}

export function renderCpuChart(rows: readonly CpuRow[], o: CpuChartOptions = {}): string {
  const width = Math.max(LABEL_W + NOTE_W + 200, o.width ?? 960);
  const title = o.title ?? 'hilbox: guest CPU to consume every frame (% of one CPU)';
  const x0 = PAD + LABEL_W;
  const plotW = width - x0 - NOTE_W - PAD;
  const max = Math.max(100, ...rows.flatMap((r) => [r.seqlock.cpuPercent ?? 0, r.noSeqlock.cpuPercent ?? 0]));
  const scale = (v: number) => Math.max(0, (Math.min(v, max) / max) * plotW);
  const top = PAD + 20 + 18 + 8;
  const plotH = Math.max(1, rows.length) * ROW;
  const height = top + plotH + 24 + PAD;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${PAD}" y="${PAD + 14}" ${FAMILY} font-size="15" font-weight="bold" fill="#1e1e1e">${xmlText(title)}</text>`);
  const legend: [string, string][] = [
    [KEPT_UP[0], 'seqlock: kept up'],
    [KEPT_UP[1], 'no seqlock: kept up'],
    [MISSED[0], 'seqlock: frames missed'],
    [MISSED[1], 'no seqlock: frames missed'],
  ];
  let lx = PAD;
  for (const [color, label] of legend) {
    out.push(`<rect x="${lx}" y="${PAD + 26}" width="10" height="10" fill="${color}"/>`);
    out.push(`<text x="${lx + 14}" y="${PAD + 35}" ${FONT} fill="#1e1e1e">${xmlText(label)}</text>`);
    lx += 14 + label.length * 7 + 18;
  }
  for (let q = 0; q <= 4; q++) {
    const v = (max * q) / 4;
    const x = x0 + scale(v);
    out.push(`<line x1="${x.toFixed(1)}" y1="${top - 4}" x2="${x.toFixed(1)}" y2="${top + plotH}" stroke="#e1e1e1"/>`);
    out.push(`<text x="${x.toFixed(1)}" y="${top + plotH + 14}" ${FONT} text-anchor="middle" fill="#1e1e1e">${formatNumber(v, 0)}%</text>`);
  }
  if (rows.length === 0) out.push(`<text x="${x0}" y="${top + 12}" ${FONT} fill="#1e1e1e">no CPU table cases in this run</text>`);
  let prevGroup = '';
  rows.forEach((r, i) => {
    const y = top + i * ROW;
    const group = `${r.picture} ${r.bar}`;
    if (i > 0 && group !== prevGroup) out.push(`<line x1="${PAD}" y1="${y - 3}" x2="${width - PAD}" y2="${y - 3}" stroke="#b0b0b0"/>`);
    prevGroup = group;
    const label = `${r.picture}  ${r.bar}  ${r.method}${r.status === 'pass' ? '' : ` (${r.status})`}`;
    out.push(`<text x="${x0 - 6}" y="${y + BAR + 4}" ${FONT} text-anchor="end" fill="#1e1e1e">${xmlText(label)}</text>`);
    ([['seqlock', r.seqlock, 0], ['no seqlock', r.noSeqlock, 1]] as const).forEach(([what, p, k]) => {
      const by = y + k * (BAR + 1);
      const color = (p.missed ?? 0) > 0 ? MISSED[k] : KEPT_UP[k];
      const w = scale(p.cpuPercent ?? 0);
      out.push(`<rect x="${x0}" y="${by}" width="${w.toFixed(1)}" height="${BAR}" fill="${color}"><title>${xmlText(`${r.name} (${what}): ${note(p)}`)}</title></rect>`);
      out.push(`<text x="${(x0 + w + 4).toFixed(1)}" y="${by + BAR - 1}" ${FAMILY} font-size="9" fill="#1e1e1e">${xmlText(note(p))}</text>`);
    });
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

export function writeCpuChart(path: string, rows: readonly CpuRow[], o: CpuChartOptions = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, renderCpuChart(rows, o));
}
