/**
 * `tapstack plot`'s HTML page: the same two graphs, drawn in the browser by
 * the same renderer (svg.ts, inlined), with zoom: the wheel zooms around the
 * pointer, a drag zooms to the box it draws (time only when it is flat),
 * a double-click shows everything again. Time is shared by both graphs.
 * Self-contained: no request leaves the page.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { PlotData } from './svg.js';

/** The renderer's compiled module, as the page runs it. */
function rendererSource(): string {
  const src = readFileSync(fileURLToPath(new URL('./svg.js', import.meta.url)), 'utf8');
  return src.replace(/^\/\/# sourceMappingURL=.*$/m, '');
}

/** Page script after the renderer: state, drawing, and the mouse. Plain browser JavaScript. */
const PAGE = String.raw`
const data = JSON.parse(document.getElementById('plot-data').textContent);
const full = fullView(data);
let view = structuredClone(full);
const root = document.getElementById('plot');
const box = document.getElementById('box');
const areas = plotAreas();
const keys = ['ySeq', 'yCc'];

function draw() {
  root.innerHTML = renderSvg(data, view);
  // After layout: the marks each graph drew (series with a non-empty box), for a reader or a test.
  for (const g of ['seq', 'cc']) {
    let n = 0;
    for (const p of root.querySelectorAll('#graph-' + g + ' path.series')) {
      const b = p.getBBox();
      if (p.getAttribute('d') && (b.width > 0 || b.height > 0)) n++;
    }
    document.body.dataset['marks' + (g === 'seq' ? 'Seq' : 'Cc')] = String(n);
  }
}

/** The graph under a point of the SVG (0, 1 or -1) and the point in its data units. */
function at(ev) {
  const r = root.firstElementChild.getBoundingClientRect();
  const px = ev.clientX - r.left;
  const py = ev.clientY - r.top;
  for (let i = 0; i < 2; i++) {
    const a = areas[i];
    if (px >= a.left && px <= a.left + a.width && py >= a.top && py <= a.top + a.height) {
      const y = view[keys[i]];
      return {
        g: i, px, py,
        t: view.x[0] + ((px - a.left) / a.width) * (view.x[1] - view.x[0]),
        v: y[0] + ((a.top + a.height - py) / a.height) * (y[1] - y[0]),
      };
    }
  }
  return null;
}

root.addEventListener('wheel', (ev) => {
  const p = at(ev);
  if (!p) return;
  ev.preventDefault();
  const f = ev.deltaY > 0 ? 1.25 : 0.8;
  view.x = [p.t - (p.t - view.x[0]) * f, p.t + (view.x[1] - p.t) * f];
  // Shift zooms time only.
  if (!ev.shiftKey) {
    const y = view[keys[p.g]];
    view[keys[p.g]] = [p.v - (p.v - y[0]) * f, p.v + (y[1] - p.v) * f];
  }
  draw();
}, { passive: false });

let drag = null;
root.addEventListener('mousedown', (ev) => {
  const p = at(ev);
  if (!p || ev.button !== 0) return;
  ev.preventDefault();
  drag = p;
});
window.addEventListener('mousemove', (ev) => {
  if (!drag) return;
  const r = root.firstElementChild.getBoundingClientRect();
  const a = areas[drag.g];
  const px = Math.min(Math.max(ev.clientX - r.left, a.left), a.left + a.width);
  const py = Math.min(Math.max(ev.clientY - r.top, a.top), a.top + a.height);
  Object.assign(box.style, {
    display: 'block',
    left: r.left + window.scrollX + Math.min(px, drag.px) + 'px',
    top: r.top + window.scrollY + Math.min(py, drag.py) + 'px',
    width: Math.abs(px - drag.px) + 'px',
    height: Math.abs(py - drag.py) + 'px',
  });
});
window.addEventListener('mouseup', (ev) => {
  if (!drag) return;
  const d = drag;
  drag = null;
  box.style.display = 'none';
  const r = root.firstElementChild.getBoundingClientRect();
  const a = areas[d.g];
  const px = Math.min(Math.max(ev.clientX - r.left, a.left), a.left + a.width);
  const py = Math.min(Math.max(ev.clientY - r.top, a.top), a.top + a.height);
  if (Math.abs(px - d.px) < 5) return;
  const t = (x) => view.x[0] + ((x - a.left) / a.width) * (view.x[1] - view.x[0]);
  const y = view[keys[d.g]];
  const v = (yy) => y[0] + ((a.top + a.height - yy) / a.height) * (y[1] - y[0]);
  view.x = [t(Math.min(px, d.px)), t(Math.max(px, d.px))];
  if (Math.abs(py - d.py) >= 5) view[keys[d.g]] = [v(Math.max(py, d.py)), v(Math.min(py, d.py))];
  draw();
});
root.addEventListener('dblclick', () => {
  view = structuredClone(full);
  draw();
});
draw();
`;

/** JSON inside a <script> element: nothing in it may close the element. */
const scriptSafe = (s: string): string => s.replace(/</g, '\\u003c');

export function renderHtml(d: PlotData): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
<title>${d.title.replace(/&/g, '&amp;').replace(/</g, '&lt;')} \u2014 tapstack plot</title>
<style>
body { margin: 12px; font-family: sans-serif; }
#plot { user-select: none; cursor: crosshair; }
#plot svg { display: block; }
#box { position: absolute; display: none; border: 1px dashed #333; background: rgba(80, 120, 255, 0.12); pointer-events: none; }
p { color: #555; font-size: 13px; }
</style>
</head>
<body>
<p>Wheel: zoom around the pointer (with Shift: time only). Drag: zoom to the box (a flat drag: time only). Double-click: everything.</p>
<div id="plot"></div>
<div id="box"></div>
<script type="application/json" id="plot-data">${scriptSafe(JSON.stringify(d))}</script>
<script type="module">
${rendererSource()}
${PAGE}
</script>
</body>
</html>
`;
}
