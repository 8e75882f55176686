/**
 * `tapstack lab SCENARIO`: runs a scenario file (docs/lab.md) in the lab's
 * simulator (src/lab) on the virtual clock, prints the per-flow table (or
 * the results as JSON), and writes the plots (each flow's time-sequence and cwnd graphs,
 * the queue and the flows' goodput over time) and results.json into a
 * directory. Needs no daemon. What goes to standard output and the files
 * depends only on the scenario and the seed; the wall time goes to
 * standard error.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseScenarioText, type Scenario, ScenarioError } from '../lab/scenario.js';
import { Lab } from '../lab/sim.js';
import { flowPlotData, formatTable, goodputLines, type LabResult, summarize } from '../lab/report.js';
import { renderSvg } from '../plot/svg.js';
import { renderHtml } from '../plot/html.js';
import { renderSeriesSvg } from '../plot/series.js';

export interface LabOptions {
  file: string;
  seed?: number;
  /** The directory for plots and results.json (default lab-NAME); null: write none. */
  out?: string | null;
  json?: boolean;
}

/** A problem with the scenario or the options: one line, and the exit status. */
export class LabError extends Error {
  constructor(
    message: string,
    readonly status = 1,
  ) {
    super(message);
  }
}

/** The scenario from its file, checked. */
export function loadScenario(file: string, seed?: number): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LabError(`${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message}`);
  }
  try {
    return parseScenarioText(text, seed);
  } catch (e) {
    if (e instanceof ScenarioError) throw new LabError(`${file}: ${e.message}`);
    throw e;
  }
}

const safe = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_');

/** Runs the command: the table (or JSON) to `out`, notes to `note`; returns the results. */
export async function runLab(opts: LabOptions, out: (s: string) => void, note: (s: string) => void): Promise<LabResult> {
  const sc = loadScenario(opts.file, opts.seed);
  let lab: Lab;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  try {
    lab = await Lab.create(sc, dirname(resolve(opts.file)));
  } catch (e) {
    if (e instanceof ScenarioError) throw new LabError(`${opts.file}: ${e.message}`);
    throw e;
  }
  const rec = lab.run();
  // A module's fault does not stop the run (its socket goes on with Reno): said here, and in the table and results.
  for (const n of lab.notes) note(`cc module ${n}`);
  const wall = (performance.now() - t0) / 1000;
  const cu = process.cpuUsage(c0);
  const cpu = (cu.user + cu.system) / 1e6;
  const res = summarize(rec);
  out(opts.json ? JSON.stringify(res, null, 2) + '\n' : formatTable(res));
  const dir = opts.out === undefined ? `lab-${safe(sc.name)}` : opts.out;
  if (dir !== null) {
    const written: string[] = [];
    const write = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      written.push(name);
    };
    try {
      mkdirSync(dir, { recursive: true });
      write('results.json', JSON.stringify(res, null, 2) + '\n');
      rec.flows.forEach((f, i) => {
        const d = flowPlotData(rec, i);
        const base = `flow${i}-${safe(f.spec.name)}`;
        write(`${base}.svg`, renderSvg(d));
        write(`${base}.html`, renderHtml(d));
      });
      const b = sc.bottleneck;
      write(
        'queue.svg',
        renderSeriesSvg({
          title: `${sc.name}: the bottleneck's queue`,
          subtitle: `${b.rateBps / 1e6} Mbit/s, ${b.qdisc}, buffer ${b.bufferText}; each time bucket drawn by its first, lowest, highest and last lengths`,
          yLabel: 'queue (packets)',
          lines: [{ label: 'queue length', color: '#1f77b4', points: rec.queue.out }],
          ref: Number.isFinite(b.limitPackets) ? { value: b.limitPackets, label: `limit ${b.limitPackets} packets` } : Number.isFinite(b.limitBytes) ? { value: b.limitBytes / 1514, label: `limit ${b.limitBytes} bytes (in full frames)` } : undefined,
        }),
      );
      write(
        'goodput.svg',
        renderSeriesSvg({
          title: `${sc.name}: goodput over time`,
          subtitle: `bytes each flow's receiver read per ${rec.binMs / 1000} s, as Mbit/s; the bottleneck is ${b.rateBps / 1e6} Mbit/s`,
          yLabel: 'goodput (Mbit/s)',
          lines: goodputLines(rec),
          ref: { value: b.rateBps / 1e6, label: 'bottleneck rate' },
        }),
      );
    } catch (e) {
      throw new LabError(`cannot write into ${dir}: ${(e as Error).message}`);
    }
    note(`wrote ${written.join(', ')} into ${dir}`);
  }
  note(`simulated ${sc.duration} s (${rec.events} events) in ${wall.toFixed(2)} s (CPU ${cpu.toFixed(2)} s)`);
  return res;
}
