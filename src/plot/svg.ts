/**
 * Draws `tapstack plot`'s two graphs as one SVG: the time-sequence graph
 * above (segments, retransmissions marked R, the ACK line, the receive
 * window line, SACK blocks) and cwnd, ssthresh and in flight below, sharing
 * the time axis. One <path> per series, so a trace of 100 000 segments stays
 * a few MB and a browser draws it at once.
 *
 * This module imports nothing: the HTML page inlines its compiled JavaScript
 * and redraws with it on every zoom, so both outputs are one drawing.
 */

/** Flat series: [t, value, ...] or [t, low, high, ...]; t in seconds from the first record. */
export interface PlotData {
  title: string;
  subtitle: string;
  seq: {
    /** Data segments [t, seq, end_seq]. */
    segs: number[];
    /** Retransmissions [t, seq, end_seq]. */
    retrans: number[];
    /** Cumulative ACKs the sender received [t, ack]. */
    acks: number[];
    /** The receive window's right edge [t, ack + window]. */
    win: number[];
    /** SACK blocks [t, start, end], at the ACK's time. */
    sack: number[];
  };
  cc: {
    /** [t, segments]. */
    cwnd: number[];
    /** [t, segments or null while infinite]. */
    ssthresh: (number | null)[];
    inflight: number[];
    /** In flight estimated from the wire (no cwnd known). */
    estimated: boolean;
    note: string;
  };
}

/** The visible ranges: time shared by both graphs, one value range each. */
export interface PlotView {
  x: [number, number];
  ySeq: [number, number];
  yCc: [number, number];
}

export interface Area {
  left: number;
  top: number;
  width: number;
  height: number;
}

export const WIDTH = 1100;
const HEAD = 56;
const GRAPH_H = 430;
const M_LEFT = 84;
const M_RIGHT = 24;
const M_TOP = 34;
const M_BOTTOM = 46;
export const HEIGHT = HEAD + 2 * GRAPH_H;

/** The plotting areas, in the SVG's pixels: [time-sequence, congestion]. */
export function plotAreas(): [Area, Area] {
  const a = (i: number): Area => ({ left: M_LEFT, top: HEAD + i * GRAPH_H + M_TOP, width: WIDTH - M_LEFT - M_RIGHT, height: GRAPH_H - M_TOP - M_BOTTOM });
  return [a(0), a(1)];
}

export const SERIES = {
  seq: [
    { key: 'segs', label: 'segment', color: '#1f3d99', width: 1.5 },
    { key: 'retrans', label: 'retransmission (R)', color: '#d62728', width: 2 },
    { key: 'acks', label: 'ACK', color: '#2ca02c', width: 1.2 },
    { key: 'win', label: 'receive window', color: '#e6a100', width: 1.2 },
    { key: 'sack', label: 'SACK block', color: '#9467bd', width: 2.5 },
  ],
  cc: [
    { key: 'cwnd', label: 'cwnd', color: '#1f77b4', width: 1.5 },
    { key: 'ssthresh', label: 'ssthresh', color: '#ff7f0e', width: 1.5 },
    { key: 'inflight', label: 'in flight', color: '#2ca02c', width: 1.2 },
  ],
} as const;

function extent(vals: (number | null)[], stride: number, from: number, to: number, lo: number, hi: number): [number, number] {
  for (let i = 0; i < vals.length; i += stride) {
    for (let j = from; j < to; j++) {
      const v = vals[i + j];
      if (v === null || v === undefined) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return [lo, hi];
}

function pad([a, b]: [number, number]): [number, number] {
  if (!(b > a)) return [a - 1, a + 1];
  const p = (b - a) * 0.03;
  return [a - p, b + p];
}

/** Everything in view: all of time, each graph's whole value range. */
export function fullView(d: PlotData): PlotView {
  const s = d.seq;
  let [t0, t1] = [Infinity, -Infinity];
  for (const [arr, stride] of [
    [s.segs, 3],
    [s.retrans, 3],
    [s.acks, 2],
    [s.sack, 3],
    [d.cc.cwnd, 2],
    [d.cc.inflight, 2],
    [d.cc.ssthresh, 2],
  ] as [(number | null)[], number][])
    [t0, t1] = extent(arr, stride, 0, 1, t0, t1);
  if (t0 === Infinity) [t0, t1] = [0, 1];
  let y = extent(s.segs, 3, 1, 3, Infinity, -Infinity);
  y = extent(s.retrans, 3, 1, 3, y[0], y[1]);
  y = extent(s.acks, 2, 1, 2, y[0], y[1]);
  y = extent(s.win, 2, 1, 2, y[0], y[1]);
  y = extent(s.sack, 3, 1, 3, y[0], y[1]);
  if (y[0] === Infinity) y = [0, 1];
  let c = extent(d.cc.cwnd, 2, 1, 2, 0, -Infinity);
  c = extent(d.cc.inflight, 2, 1, 2, c[0], c[1]);
  c = extent(d.cc.ssthresh, 2, 1, 2, c[0], c[1]);
  if (c[1] === -Infinity) c = [0, 1];
  return { x: [Math.min(0, t0), t1 > 0 ? t1 : 1], ySeq: pad(y), yCc: [0, pad(c)[1]] };
}

/** About n round ticks in [a, b] and the step between them. */
export function ticks(a: number, b: number, n: number): { values: number[]; step: number } {
  const span = b - a;
  if (!(span > 0) || !Number.isFinite(span)) return { values: [a], step: 1 };
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const e = raw / mag;
  const step = mag * (e < 1.5 ? 1 : e < 3.5 ? 2 : e < 7.5 ? 5 : 10);
  const values: number[] = [];
  for (let v = Math.ceil(a / step) * step; v <= b + step * 1e-9; v += step) values.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return { values, step };
}

const decimals = (step: number): number => Math.max(0, Math.min(9, -Math.floor(Math.log10(step) + 1e-9)));

function fmtBytes(v: number, step: number): string {
  if (v === 0) return '0';
  const [u, s] = step >= 1e6 ? [1e6, 'M'] : step >= 1e3 ? [1e3, 'k'] : [1, ''];
  return (v / u).toFixed(decimals(step / u)) + s;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A number for a path: one decimal, clamped just outside the area (the clip hides it) so a deep zoom cannot overflow. */
function num(v: number, lo: number, hi: number): string {
  return (v < lo ? lo : v > hi ? hi : v).toFixed(1).replace(/\.0$/, '');
}

interface Scale {
  x: (t: number) => string;
  y: (v: number) => string;
  /** Whether t is worth drawing (a little outside the view still is, for the lines entering it). */
  inX: (t: number) => boolean;
  range: [number, number];
}

function scale(area: Area, x: [number, number], y: [number, number]): Scale {
  const kx = area.width / (x[1] - x[0] || 1);
  const ky = area.height / (y[1] - y[0] || 1);
  const xl = area.left - 20;
  const xh = area.left + area.width + 20;
  const yl = area.top - 20;
  const yh = area.top + area.height + 20;
  const margin = (x[1] - x[0]) * 0.02;
  return {
    x: (t) => num(area.left + (t - x[0]) * kx, xl, xh),
    y: (v) => num(area.top + area.height - (v - y[0]) * ky, yl, yh),
    inX: (t) => t >= x[0] - margin && t <= x[1] + margin,
    range: x,
  };
}

/** Vertical bars [t, lo, hi]: one subpath each; `glyph` adds tcptrace's R beside each. */
function bars(v: number[], s: Scale, glyph: boolean): { d: string; n: number } {
  const parts: string[] = [];
  for (let i = 0; i < v.length; i += 3) {
    if (!s.inX(v[i])) continue;
    const x = s.x(v[i]);
    const yTop = s.y(v[i + 2]);
    parts.push(`M${x} ${s.y(v[i + 1])}V${yTop}`);
    if (glyph) parts.push(`M${(Number(x) + 3).toFixed(1)} ${yTop}v-8h3.5a2 2 0 0 1 0 4h-3.5m2 0l3 4`);
  }
  return { d: parts.join(''), n: glyph ? parts.length / 2 : parts.length };
}

/** A step line (the value holds until the next point) [t, v]; null breaks it. Its count is its subpaths. */
function steps(v: (number | null)[], s: Scale): { d: string; n: number } {
  const parts: string[] = [];
  let n = 0;
  let open = false;
  // From the last point before the view to the first after it: the line crosses the whole view.
  const [x0, x1] = s.range;
  let from = 0;
  for (let i = 0; i < v.length; i += 2) if ((v[i] as number) <= x0) from = i;
  else break;
  let to = v.length;
  for (let i = from; i < v.length; i += 2)
    if ((v[i] as number) > x1) {
      to = i + 2;
      break;
    }
  for (let i = from; i < to; i += 2) {
    const t = v[i] as number;
    const val = v[i + 1];
    if (val === null || val === undefined) {
      open = false;
      continue;
    }
    const x = s.x(t);
    const y = s.y(val);
    if (!open) {
      parts.push(`M${x} ${y}`);
      n++;
      open = true;
    } else parts.push(`H${x}V${y}`);
  }
  return { d: parts.join(''), n };
}

function axes(area: Area, x: [number, number], y: [number, number], yFmt: (v: number, step: number) => string, xLabel: string, yLabel: string): string {
  const out: string[] = [];
  const s = scale(area, x, y);
  const bottom = area.top + area.height;
  const xt = ticks(x[0], x[1], 10);
  const yt = ticks(y[0], y[1], 8);
  const grid: string[] = [];
  for (const v of xt.values) {
    const px = s.x(v);
    grid.push(`M${px} ${area.top}V${bottom}`);
    out.push(`<text x="${px}" y="${bottom + 16}" text-anchor="middle">${v.toFixed(decimals(xt.step))}</text>`);
  }
  for (const v of yt.values) {
    const py = s.y(v);
    grid.push(`M${area.left} ${py}H${area.left + area.width}`);
    out.push(`<text x="${area.left - 6}" y="${py}" dy="0.32em" text-anchor="end">${yFmt(v, yt.step)}</text>`);
  }
  out.unshift(`<path class="grid" d="${grid.join('')}" stroke="#e4e4e4" fill="none"/>`);
  out.push(`<rect x="${area.left}" y="${area.top}" width="${area.width}" height="${area.height}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${area.left + area.width / 2}" y="${bottom + 36}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(${area.left - 62} ${area.top + area.height / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  return out.join('');
}

function legend(area: Area, items: readonly { label: string; color: string; width: number }[], note: string): string {
  let x = area.left;
  const y = area.top - 12;
  const out: string[] = [];
  for (const it of items) {
    out.push(`<path d="M${x} ${y}h18" stroke="${it.color}" stroke-width="${it.width + 1}"/><text x="${x + 23}" y="${y}" dy="0.32em">${esc(it.label)}</text>`);
    x += 34 + it.label.length * 6.6;
  }
  if (note) out.push(`<text x="${area.left + area.width}" y="${y}" dy="0.32em" text-anchor="end" font-style="italic" fill="#555">${esc(note)}</text>`);
  return out.join('');
}

/** The whole SVG document, for the view given (all of it by default). */
export function renderSvg(d: PlotData, view: PlotView = fullView(d)): string {
  const [aSeq, aCc] = plotAreas();
  const sSeq = scale(aSeq, view.x, view.ySeq);
  const sCc = scale(aCc, view.x, view.yCc);
  const paths: Record<string, { d: string; n: number }> = {
    segs: bars(d.seq.segs, sSeq, false),
    retrans: bars(d.seq.retrans, sSeq, true),
    acks: steps(d.seq.acks, sSeq),
    win: steps(d.seq.win, sSeq),
    sack: bars(d.seq.sack, sSeq, false),
    cwnd: steps(d.cc.cwnd, sCc),
    ssthresh: steps(d.cc.ssthresh, sCc),
    inflight: steps(d.cc.inflight, sCc),
  };
  const series = (graph: 'seq' | 'cc', clip: string) =>
    SERIES[graph]
      // As tcptrace stacks them: the ACK line over the segments (it runs just below them), retransmissions on top.
      .slice()
      .sort((a, b) => order(a.key) - order(b.key))
      .map((s) => `<path class="series s-${s.key}" data-n="${paths[s.key].n}" d="${paths[s.key].d}" fill="none" stroke="${s.color}" stroke-width="${s.width}" stroke-linecap="square"${s.key === 'ssthresh' ? ' stroke-dasharray="6 3"' : ''} clip-path="url(#${clip})"/>`)
      .join('');
  const ccItems = SERIES.cc.filter((s) => !(d.cc.estimated && s.key !== 'inflight'));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<defs><clipPath id="clip-seq"><rect x="${aSeq.left}" y="${aSeq.top}" width="${aSeq.width}" height="${aSeq.height}"/></clipPath><clipPath id="clip-cc"><rect x="${aCc.left}" y="${aCc.top}" width="${aCc.width}" height="${aCc.height}"/></clipPath></defs>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`,
    `<text x="${M_LEFT}" y="22" font-size="16" font-weight="bold">${esc(d.title)}</text>`,
    `<text x="${M_LEFT}" y="42" fill="#444">${esc(d.subtitle)}</text>`,
    `<g class="graph" id="graph-seq">`,
    `<text x="${aSeq.left + aSeq.width}" y="${aSeq.top - 26}" text-anchor="end" font-weight="bold">time-sequence</text>`,
    axes(aSeq, view.x, view.ySeq, fmtBytes, 'time (s)', 'relative sequence (bytes)'),
    legend(aSeq, SERIES.seq, ''),
    series('seq', 'clip-seq'),
    `</g>`,
    `<g class="graph" id="graph-cc">`,
    `<text x="${aCc.left + aCc.width}" y="${aCc.top - 26}" text-anchor="end" font-weight="bold">congestion window</text>`,
    axes(aCc, view.x, view.yCc, (v, step) => v.toFixed(decimals(step)), 'time (s)', 'segments'),
    legend(aCc, ccItems, d.cc.note),
    series('cc', 'clip-cc'),
    `</g>`,
    `</svg>`,
  ].join('\n');
}

function order(key: string): number {
  return ['win', 'sack', 'segs', 'acks', 'retrans', 'ssthresh', 'inflight', 'cwnd'].indexOf(key);
}
