/**
 * Trend of each metric over the commits measured, as a PNG and as Markdown. One job: Trend[] →
 * image / text. One panel per metric (the style of chart.ts: white, the built-in 5×7 font): the
 * median of each run as a dot, its spread (min … max of the repetitions) as a vertical bar, the
 * newest run in green, first and last commit labelled underneath.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createImage, drawText, fillRect, textWidth, TEXT_HEIGHT, type Rgb } from '../report/image.ts';
import { formatNumber } from '../report/metrics.ts';
import { encodePng, type RgbImage } from '../report/png.ts';
import type { Trend } from './history.ts';
import { formatSpread } from './stats.ts';

const BG: Rgb = [255, 255, 255];
const FG: Rgb = [30, 30, 30];
const GRID: Rgb = [225, 225, 225];
const PAST: Rgb = [110, 110, 110];
const SPREAD: Rgb = [170, 190, 230];
const NOW: Rgb = [46, 160, 67];
const PAD = 10;
const PANEL_H = 70;
const COLS = 2;

export interface TrendChartOptions {
  title?: string;
  /** Image width in pixels. Default 900. */
  width?: number;
  /** Newest runs shown per panel. Default 30. */
  last?: number;
}

function panel(img: RgbImage, t: Trend, x: number, y: number, w: number, last: number): void {
  const pts = t.points.slice(-last);
  let label = t.metric;
  while (label.length > 4 && textWidth(label) > w - 4) label = label.slice(1);
  drawText(img, label === t.metric ? label : `..${label.slice(2)}`, x, y, FG);
  const top = y + TEXT_HEIGHT + 4;
  const h = PANEL_H - TEXT_HEIGHT * 2 - 12;
  const valueW = textWidth('0000.000') + 4;
  const plotW = Math.max(10, w - valueW);
  fillRect(img, x, top, plotW, 1, GRID);
  fillRect(img, x, top + h, plotW, 1, GRID);
  if (pts.length === 0) return;
  let lo = Math.min(...pts.map((p) => p.min));
  let hi = Math.max(...pts.map((p) => p.max));
  if (hi - lo < Math.abs(hi) * 1e-6 + 1e-12) {
    lo -= Math.abs(lo) * 0.01 + 1e-9;
    hi += Math.abs(hi) * 0.01 + 1e-9;
  }
  const yOf = (v: number) => top + h - Math.round(((v - lo) / (hi - lo)) * h);
  drawText(img, formatNumber(hi, 3), x + plotW + 4, top - 3, FG);
  drawText(img, formatNumber(lo, 3), x + plotW + 4, top + h - 4, FG);
  const step = pts.length > 1 ? (plotW - 6) / (pts.length - 1) : 0;
  pts.forEach((p, i) => {
    const px = x + 3 + Math.round(i * step);
    const y1 = yOf(p.max);
    const y0 = yOf(p.min);
    fillRect(img, px, y1, 1, Math.max(1, y0 - y1 + 1), SPREAD);
    const c = i === pts.length - 1 ? NOW : PAST;
    fillRect(img, px - 1, yOf(p.value) - 1, 3, 3, c);
  });
  const first = pts[0]?.label ?? '';
  const lastLabel = pts[pts.length - 1]?.label ?? '';
  drawText(img, first, x, top + h + 4, FG);
  if (pts.length > 1) drawText(img, lastLabel, Math.max(x + textWidth(first) + 6, x + plotW - textWidth(lastLabel)), top + h + 4, NOW);
}

export function renderTrendChart(trends: readonly Trend[], o: TrendChartOptions = {}): RgbImage {
  const width = Math.max(400, o.width ?? 900);
  const title = o.title ?? 'hilbox bench trend: dot median, bar min..max';
  const top = PAD + TEXT_HEIGHT * 2 + PAD;
  const rows = Math.max(1, Math.ceil(trends.length / COLS));
  const img = createImage(width, top + rows * (PANEL_H + PAD) + PAD, BG);
  drawText(img, title, PAD, PAD, FG, 2);
  if (trends.length === 0) drawText(img, 'no history yet', PAD, top, FG);
  const colW = Math.floor((width - PAD * (COLS + 1)) / COLS);
  trends.forEach((t, i) => panel(img, t, PAD + (i % COLS) * (colW + PAD), top + Math.floor(i / COLS) * (PANEL_H + PAD), colW, o.last ?? 30));
  return img;
}

export function writeTrendChart(path: string, trends: readonly Trend[], o: TrendChartOptions = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, encodePng(renderTrendChart(trends, o)));
}

/** Markdown: one row per metric, the newest runs as `value (spread)` from old to new. */
export function trendMarkdown(trends: readonly Trend[], last = 6): string {
  if (trends.length === 0) return '_no history yet_';
  const lines = ['| metric | runs | ' + 'oldest → newest (median, spread) |', '|---|---:|---|'];
  for (const t of trends) {
    const cells = t.points.slice(-last).map((p) => {
      const rel = p.max === p.min ? 0 : p.value === 0 ? Infinity : (p.max - p.min) / Math.abs(p.value);
      return `${p.label}: ${formatNumber(p.value, 3)} (${formatSpread(rel)})`;
    });
    lines.push(`| ${t.metric} | ${t.points.length} | ${cells.join(' → ')} |`);
  }
  return lines.join('\n');
}
