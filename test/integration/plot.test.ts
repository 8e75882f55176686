/**
 * tapstack plot's outputs in a real browser: headless Chromium opens the
 * SVG (a screenshot, decoded here: both graphs' plotting areas hold pixels
 * of their series' colours) and the HTML page (its DOM after the page's
 * script drew: each graph's series with a non-empty box, counted by the
 * page with getBBox). From a trace (cwnd, ssthresh, in flight) and from a
 * capture (in flight estimated). Chromium runs in a network namespace of
 * its own with nothing in it (unshare --net), on file:// URLs: nothing it
 * does can reach a network.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { CLI, exitOf, outputOf, requireIntegration, track } from './netns.js';
import { capture, syntheticTrace } from '../lib/plot_inputs.js';
import { HEIGHT, WIDTH, plotAreas, SERIES } from '../../src/plot/svg.js';

const skip = requireIntegration(['chromium', 'unshare']);
const dir = mkdtempSync(join(tmpdir(), 'tapstack-plot-'));
const started: ChildProcess[] = [];

after(() => {
  // Chromium's helpers are in its process group: end the group of each one we started, if still there.
  for (const p of started) {
    if (p.pid && p.exitCode === null && p.signalCode === null) {
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/** Headless Chromium on a file, with a throw-away profile; its stdout once it exits (bounded). */
async function chromium(args: string[], url: string): Promise<string> {
  const profile = mkdtempSync(join(dir, 'profile-'));
  const p = spawn(
    'unshare',
    [
      '--net',
      'chromium',
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--hide-scrollbars',
      '--force-device-scale-factor=1',
      `--user-data-dir=${profile}`,
      ...args,
      url,
    ],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  started.push(p);
  let stdout = '';
  p.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  track(p);
  const code = await exitOf(p, 90_000);
  assert.equal(code, 0, `chromium exited ${code}: ${outputOf(p).slice(-1500)}`);
  rmSync(profile, { recursive: true, force: true });
  return stdout;
}

/** A PNG's pixels as RGBA (8-bit RGB or RGBA, not interlaced: what Chromium writes). */
function decodePng(b: Buffer): { width: number; height: number; px: Buffer } {
  assert.equal(b.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'a PNG signature');
  let o = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (o < b.length) {
    const len = b.readUInt32BE(o);
    const type = b.toString('latin1', o + 4, o + 8);
    const data = b.subarray(o + 8, o + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.equal(data[8], 8, 'bit depth 8');
      assert.ok(data[9] === 2 || data[9] === 6, `colour type ${data[9]}`);
      assert.equal(data[12], 0, 'not interlaced');
      channels = data[9] === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    o += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const px = Buffer.alloc(width * height * 4);
  let prev = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? line[i - channels] : 0;
      const up = prev[i];
      const c = i >= channels ? prev[i - channels] : 0;
      let add = 0;
      if (filter === 1) add = a;
      else if (filter === 2) add = up;
      else if (filter === 3) add = (a + up) >> 1;
      else if (filter === 4) {
        const p = a + up - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - up);
        const pc = Math.abs(p - c);
        add = pa <= pb && pa <= pc ? a : pb <= pc ? up : c;
      }
      line[i] = (line[i] + add) & 255;
    }
    for (let x = 0; x < width; x++) {
      px[(y * width + x) * 4] = line[x * channels];
      px[(y * width + x) * 4 + 1] = line[x * channels + 1];
      px[(y * width + x) * 4 + 2] = line[x * channels + 2];
      px[(y * width + x) * 4 + 3] = channels === 4 ? line[x * channels + 3] : 255;
    }
    prev = line;
  }
  return { width, height, px };
}

const rgb = (hex: string): [number, number, number] => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];

/** Pixels inside an area within a small distance of each colour (antialiasing blends the edges). */
function colourCounts(img: { width: number; px: Buffer }, area: { left: number; top: number; width: number; height: number }, colours: string[]): Record<string, number> {
  const want = colours.map(rgb);
  const n: Record<string, number> = Object.fromEntries(colours.map((c) => [c, 0]));
  for (let y = area.top + 1; y < area.top + area.height - 1; y++) {
    for (let x = area.left + 1; x < area.left + area.width - 1; x++) {
      const i = (y * img.width + x) * 4;
      want.forEach(([r, g, b], k) => {
        if (Math.abs(img.px[i] - r) + Math.abs(img.px[i + 1] - g) + Math.abs(img.px[i + 2] - b) < 40) n[colours[k]]++;
      });
    }
  }
  return n;
}

const colour = (graph: 'seq' | 'cc', key: string): string => SERIES[graph].find((s) => s.key === key)!.color;

for (const input of ['trace', 'capture'] as const) {
  test(`tapstack plot from a ${input}: Chromium draws both graphs of the SVG and of the HTML page`, { skip, timeout: 240_000 }, async () => {
    const file = join(dir, input === 'trace' ? 'conn.jsonl' : 'conn.pcap');
    writeFileSync(file, input === 'trace' ? syntheticTrace(3000) : capture());
    const prefix = join(dir, input);
    const p = spawn(process.execPath, [CLI, 'plot', file, '-o', prefix], { stdio: ['ignore', 'pipe', 'pipe'] });
    track(p);
    assert.equal(await exitOf(p, 60_000), 0, outputOf(p));

    // The SVG on its own (no script in it): a screenshot, the series' colours counted in each plotting area.
    const png = join(dir, `${input}.png`);
    await chromium([`--screenshot=${png}`, `--window-size=${WIDTH},${HEIGHT}`], `file://${prefix}.svg`);
    const img = decodePng(readFileSync(png));
    assert.deepEqual([img.width, img.height], [WIDTH, HEIGHT]);
    const [aSeq, aCc] = plotAreas();
    const seqKeys = ['segs', 'retrans', 'acks', 'win', 'sack'];
    const seq = colourCounts(img, aSeq, seqKeys.map((k) => colour('seq', k)));
    const ccKeys = input === 'trace' ? ['cwnd', 'ssthresh', 'inflight'] : ['inflight'];
    const cc = colourCounts(img, aCc, ccKeys.map((k) => colour('cc', k)));
    for (const k of seqKeys) assert.ok(seq[colour('seq', k)] >= 20, `time-sequence graph: ${k} drew ${seq[colour('seq', k)]} pixels (${JSON.stringify(seq)})`);
    for (const k of ccKeys) assert.ok(cc[colour('cc', k)] >= 20, `congestion graph: ${k} drew ${cc[colour('cc', k)]} pixels (${JSON.stringify(cc)})`);

    // The HTML page: its script draws with the inlined renderer and counts, after layout, the series with a box.
    const dom = await chromium(['--dump-dom'], `file://${prefix}.html`);
    const m = /<body[^>]*data-marks-seq="(\d+)"[^>]*data-marks-cc="(\d+)"/.exec(dom);
    assert.ok(m, `the page's script ran and counted its marks: ${dom.slice(0, 300)}`);
    assert.equal(Number(m[1]), 5, 'segments, retransmissions, ACKs, window, SACK blocks');
    assert.equal(Number(m[2]), ccKeys.length, ccKeys.join(', '));
    assert.match(dom, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);

    // Zoom, as a user would: a wheel turn at the middle of the time-sequence graph draws fewer segments
    // over a narrower time range; a drag across a tenth of it fewer again; a double-click all of them.
    const zoomPage = join(dir, `${input}-zoom.html`);
    const probe = `<script type="module">
const n = () => Number(document.querySelector('path.s-segs').dataset.n);
const svg = () => document.querySelector('#plot svg');
const a = ${JSON.stringify(plotAreas()[0])};
const r = svg().getBoundingClientRect();
const at = (fx, fy) => ({ clientX: r.left + a.left + a.width * fx, clientY: r.top + a.top + a.height * fy, bubbles: true, cancelable: true });
const seen = [n()];
for (let i = 0; i < 4; i++) svg().dispatchEvent(new WheelEvent('wheel', { ...at(0.5, 0.5), deltaY: -100 }));
seen.push(n());
svg().dispatchEvent(new MouseEvent('mousedown', { ...at(0.45, 0.5), button: 0 }));
window.dispatchEvent(new MouseEvent('mousemove', at(0.5, 0.5)));
window.dispatchEvent(new MouseEvent('mouseup', at(0.55, 0.5)));
seen.push(n());
svg().dispatchEvent(new MouseEvent('dblclick', at(0.5, 0.5)));
seen.push(n());
document.body.dataset.zoom = seen.join(',');
</script>`;
    writeFileSync(zoomPage, readFileSync(`${prefix}.html`, 'utf8').replace('</body>', `${probe}\n</body>`));
    const zdom = await chromium(['--dump-dom'], `file://${zoomPage}`);
    const z = /data-zoom="([\d,]+)"/.exec(zdom);
    assert.ok(z, `the zoom probe ran: ${zdom.slice(0, 300)}`);
    const [full, wheel, box, reset] = z[1].split(',').map(Number);
    assert.ok(full > 0 && wheel < full && box < wheel && reset === full, `segments drawn: all ${full}, after the wheel ${wheel}, after the box ${box}, after the double-click ${reset}`);
  });
}
