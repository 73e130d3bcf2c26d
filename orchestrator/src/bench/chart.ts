/**
 * Bar chart of ratio metrics, current against baseline, as a PNG. One job: CompareRow[] → image.
 * Horizontal bars, one pair per metric: baseline grey, current green (red when it regressed),
 * labels in the built-in 5×7 font.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createImage, drawText, fillRect, textWidth, TEXT_HEIGHT, type Rgb } from '../report/image.ts';
import { formatNumber } from '../report/metrics.ts';
import { encodePng, type RgbImage } from '../report/png.ts';
import type { CompareRow } from './compare.ts';

export interface ChartOptions {
  title?: string;
  /** Image width in pixels. Default 900. */
  width?: number;
}

const BG: Rgb = [255, 255, 255];
const FG: Rgb = [30, 30, 30];
const GRID: Rgb = [225, 225, 225];
const BASE: Rgb = [150, 150, 150];
const OK: Rgb = [46, 160, 67];
const BAD: Rgb = [215, 38, 56];
const PAD = 10;
const BAR = 10;
const ROW = 2 * BAR + 2 + 10;

/** Rows the chart shows: ratio metrics with a current or baseline value. */
export function chartRows(rows: readonly CompareRow[]): CompareRow[] {
  return rows.filter((r) => r.kind === 'ratio' && (r.current !== undefined || r.baseline !== undefined));
}

export function renderBenchChart(rows: readonly CompareRow[], o: ChartOptions = {}): RgbImage {
  const shown = chartRows(rows);
  const width = Math.max(300, o.width ?? 900);
  const title = o.title ?? 'hilbox bench: ratios (higher is better)';
  const labelW = Math.min(Math.floor(width * 0.45), Math.max(60, ...shown.map((r) => textWidth(r.metric))));
  const top = PAD + TEXT_HEIGHT * 2 + PAD + TEXT_HEIGHT + PAD; // title, legend
  const height = top + Math.max(1, shown.length) * ROW + PAD + TEXT_HEIGHT + PAD;
  const img = createImage(width, height, BG);

  drawText(img, title, PAD, PAD, FG, 2);
  const ly = PAD + TEXT_HEIGHT * 2 + PAD;
  fillRect(img, PAD, ly, 10, TEXT_HEIGHT, BASE);
  drawText(img, 'baseline', PAD + 14, ly, FG);
  fillRect(img, PAD + 80, ly, 10, TEXT_HEIGHT, OK);
  drawText(img, 'current', PAD + 94, ly, FG);
  fillRect(img, PAD + 150, ly, 10, TEXT_HEIGHT, BAD);
  drawText(img, 'regression', PAD + 164, ly, FG);

  const x0 = PAD + labelW + PAD;
  const valueRoom = textWidth('0000.000');
  const plotW = Math.max(20, width - x0 - PAD - valueRoom - 4);
  const max = Math.max(1e-9, ...shown.flatMap((r) => [r.current ?? 0, r.baseline ?? 0])) * 1.05;
  const scale = (v: number) => Math.max(0, Math.round((v / max) * plotW));

  // Vertical grid at quarters, labelled underneath.
  const plotBottom = top + Math.max(1, shown.length) * ROW;
  for (let q = 0; q <= 4; q++) {
    const x = x0 + Math.round((q / 4) * plotW);
    fillRect(img, x, top - 4, 1, plotBottom - top + 4, GRID);
    const label = formatNumber((max * q) / 4, 2);
    drawText(img, label, Math.min(width - PAD - textWidth(label), Math.max(0, x - textWidth(label) / 2)), plotBottom + PAD / 2, FG);
  }

  if (shown.length === 0) drawText(img, 'no ratio metrics to compare', x0, top + 4, FG);
  shown.forEach((r, i) => {
    const y = top + i * ROW + 4;
    let label = r.metric;
    while (label.length > 1 && textWidth(label) > labelW) label = label.slice(1);
    if (label !== r.metric) label = `..${label.slice(2)}`;
    drawText(img, label, PAD + labelW - textWidth(label), y + BAR - TEXT_HEIGHT / 2, FG);
    if (r.baseline !== undefined) {
      fillRect(img, x0, y, scale(r.baseline), BAR, BASE);
      drawText(img, formatNumber(r.baseline, 3), x0 + scale(r.baseline) + 4, y + 1, FG);
    }
    if (r.current !== undefined) {
      const c = r.verdict === 'regression' ? BAD : OK;
      fillRect(img, x0, y + BAR + 2, scale(r.current), BAR, c);
      drawText(img, formatNumber(r.current, 3), x0 + scale(r.current) + 4, y + BAR + 3, c);
    }
  });
  return img;
}

export function writeBenchChart(path: string, rows: readonly CompareRow[], o: ChartOptions = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, encodePng(renderBenchChart(rows, o)));
}
