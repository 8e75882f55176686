/**
 * One graph of step lines over time as an SVG (the lab's queue length):
 * the axes and ticks of `tapstack plot`'s graphs, one <path> per series.
 */
import { ticks } from './svg.js';

export interface StepLine {
  label: string;
  color: string;
  /** [t, v, ...], t in seconds; null breaks the line. */
  points: (number | null)[];
}

export interface SeriesChart {
  title: string;
  subtitle: string;
  yLabel: string;
  lines: StepLine[];
  /** A horizontal reference line (a limit), or none. */
  ref?: { value: number; label: string };
}

const W = 1100;
const H = 480;
const L = 84;
const R = 24;
const T = 90;
const B = 50;

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const n1 = (v: number): string => v.toFixed(1).replace(/\.0$/, '');
const decimals = (step: number): number => Math.max(0, Math.min(9, -Math.floor(Math.log10(step) + 1e-9)));

export function renderSeriesSvg(c: SeriesChart): string {
  let t1 = 0;
  let y1 = c.ref ? c.ref.value : 0;
  for (const l of c.lines)
    for (let i = 0; i < l.points.length; i += 2) {
      const t = l.points[i] as number;
      const v = l.points[i + 1];
      if (t > t1) t1 = t;
      if (v !== null && v > y1) y1 = v;
    }
  if (!(t1 > 0)) t1 = 1;
  if (!(y1 > 0)) y1 = 1;
  y1 *= 1.05;
  const aw = W - L - R;
  const ah = H - T - B;
  const x = (t: number) => n1(L + (t / t1) * aw);
  const y = (v: number) => n1(T + ah - (v / y1) * ah);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${L}" y="22" font-size="16" font-weight="bold">${esc(c.title)}</text>`);
  out.push(`<text x="${L}" y="42" fill="#444">${esc(c.subtitle)}</text>`);
  const grid: string[] = [];
  const xt = ticks(0, t1, 10);
  for (const v of xt.values) {
    grid.push(`M${x(v)} ${T}V${T + ah}`);
    out.push(`<text x="${x(v)}" y="${T + ah + 16}" text-anchor="middle">${v.toFixed(decimals(xt.step))}</text>`);
  }
  const yt = ticks(0, y1, 8);
  for (const v of yt.values) {
    grid.push(`M${L} ${y(v)}H${L + aw}`);
    out.push(`<text x="${L - 6}" y="${y(v)}" dy="0.32em" text-anchor="end">${v.toFixed(decimals(yt.step))}</text>`);
  }
  out.splice(4, 0, `<path d="${grid.join('')}" stroke="#e4e4e4" fill="none"/>`);
  out.push(`<rect x="${L}" y="${T}" width="${aw}" height="${ah}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${L + aw / 2}" y="${T + ah + 38}" text-anchor="middle">time (s)</text>`);
  out.push(`<text transform="translate(${L - 62} ${T + ah / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`);
  let lx = L;
  const items = c.ref ? [...c.lines, { label: c.ref.label, color: '#777', points: [] }] : c.lines;
  for (const l of items) {
    out.push(`<path d="M${lx} ${T - 14}h18" stroke="${l.color}" stroke-width="2.5"/><text x="${lx + 23}" y="${T - 14}" dy="0.32em">${esc(l.label)}</text>`);
    lx += 34 + l.label.length * 6.6;
  }
  if (c.ref) out.push(`<path class="ref" d="M${L} ${y(c.ref.value)}H${L + aw}" stroke="#777" stroke-dasharray="6 3" fill="none"/>`);
  for (const l of c.lines) {
    const d: string[] = [];
    let open = false;
    for (let i = 0; i < l.points.length; i += 2) {
      const v = l.points[i + 1];
      if (v === null) {
        open = false;
        continue;
      }
      const px = x(l.points[i] as number);
      d.push(open ? `H${px}V${y(v)}` : `M${px} ${y(v)}`);
      open = true;
    }
    out.push(`<path class="series" data-n="${l.points.length / 2}" d="${d.join('')}" fill="none" stroke="${l.color}" stroke-width="1.2"/>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
