/**
 * `tapstack plot`: reads a trace (tapstack trace's JSON lines) or a capture
 * (pcap, pcapng) from a file or standard input, picks a connection and its
 * data direction, and writes the two graphs as PREFIX.svg and PREFIX.html.
 * Needs no daemon. From a pipe it reads until EOF or SIGINT, then draws what
 * it has.
 */
import { createReadStream, writeFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import type { Readable } from 'node:stream';
import { busiest, dataDir, endpoint, parseInput, plotData, PlotInputError, type Conn, type Dir, type Parsed } from '../plot/model.js';
import { renderSvg } from '../plot/svg.js';
import { renderHtml } from '../plot/html.js';

export interface PlotOptions {
  file: string;
  prefix?: string;
  svg?: string;
  html?: string;
  conn?: number;
  dir?: Dir;
  list?: boolean;
  /** What `-` reads (standard input unless a test gives another stream). */
  stdin?: Readable;
  /** Stops reading and draws what arrived (default: SIGINT). */
  interrupt?: AbortSignal;
}

/** A problem with the input or the options: one line, and the exit status. */
export class PlotError extends Error {
  constructor(
    message: string,
    readonly status = 1,
  ) {
    super(message);
  }
}

/** All of the input; from a pipe, until EOF or `interrupt` (then `interrupted`: Ctrl-C on a live trace). */
export function readAll(file: string, stdin: Readable, interrupt: AbortSignal): Promise<{ data: Buffer; interrupted: boolean }> {
  return new Promise((res, rej) => {
    const src: Readable = file === '-' ? stdin : createReadStream(file);
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (interrupted: boolean) => {
      if (done) return;
      done = true;
      interrupt.removeEventListener('abort', onInt);
      res({ data: Buffer.concat(chunks), interrupted });
    };
    const onInt = () => {
      src.pause();
      finish(true);
    };
    if (interrupt.aborted) return finish(true);
    interrupt.addEventListener('abort', onInt);
    src.on('data', (c: Buffer | string) => {
      if (!done) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
    });
    src.on('end', () => finish(false));
    src.on('error', (e: NodeJS.ErrnoException) => {
      if (done) return;
      done = true;
      interrupt.removeEventListener('abort', onInt);
      rej(new PlotError(`${file}: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.code === 'EACCES' ? 'permission denied' : e.message}`));
    });
  });
}

/** --list's table: index, addresses, payload each way, records. */
export function listConns(conns: Conn[]): string {
  const rows = [['#', 'local (out)', 'remote (in)', 'bytes out', 'bytes in', 'records']];
  conns.forEach((c, i) => rows.push([String(i), endpoint(c.local), endpoint(c.remote), String(c.bytes.out), String(c.bytes.in), String(c.records)]));
  const w = rows[0].map((_, j) => Math.max(...rows.map((r) => r[j].length)));
  return rows.map((r) => r.map((v, j) => (j >= 3 ? v.padStart(w[j]) : v.padEnd(w[j]))).join('  ').trimEnd()).join('\n') + '\n';
}

/** The connection and direction to draw, by the options and the defaults. */
export function choose(p: Parsed, opts: Pick<PlotOptions, 'conn' | 'dir'>): { conn: Conn; index: number; dir: Dir } {
  if (p.conns.length === 0) throw new PlotError('no TCP connection in the input');
  let index: number;
  if (opts.conn !== undefined) {
    if (!Number.isInteger(opts.conn) || opts.conn < 0 || opts.conn >= p.conns.length)
      throw new PlotError(`--conn ${opts.conn}: no such connection (the input has ${p.conns.length}: 0-${p.conns.length - 1}; --list shows them)`, 2);
    index = opts.conn;
  } else index = busiest(p.conns);
  const conn = p.conns[index];
  return { conn, index, dir: opts.dir ?? dataDir(conn) };
}

/** The files to write: -o PREFIX's two, --svg and --html, else PREFIX from the input's name. */
export function outputs(opts: PlotOptions): { svg?: string; html?: string } {
  if (opts.svg || opts.html) {
    const o: { svg?: string; html?: string } = { svg: opts.svg, html: opts.html };
    if (opts.prefix) {
      o.svg ??= `${opts.prefix}.svg`;
      o.html ??= `${opts.prefix}.html`;
    }
    return o;
  }
  const prefix = opts.prefix ?? (opts.file === '-' ? 'tapstack-plot' : basename(opts.file, extname(opts.file)));
  return { svg: `${prefix}.svg`, html: `${prefix}.html` };
}

/** The command: returns the lines for stderr (notes), throws PlotError. */
export async function runPlot(opts: PlotOptions, out: (s: string) => void, note: (s: string) => void): Promise<void> {
  let interrupt = opts.interrupt;
  let onSigint: (() => void) | undefined;
  if (!interrupt) {
    const ac = new AbortController();
    onSigint = () => ac.abort();
    process.once('SIGINT', onSigint);
    interrupt = ac.signal;
  }
  let read;
  try {
    read = await readAll(opts.file, opts.stdin ?? process.stdin, interrupt);
  } finally {
    if (onSigint) process.off('SIGINT', onSigint);
  }
  const { data, interrupted } = read;
  if (interrupted && data.length === 0) throw new PlotError('interrupted before anything arrived: nothing to draw');
  let p: Parsed;
  try {
    p = parseInput(data, interrupted);
  } catch (e) {
    if (e instanceof PlotInputError) throw new PlotError(`${opts.file === '-' ? 'standard input' : opts.file}: ${e.message}`);
    throw e;
  }
  if (p.malformed) note(`skipped ${p.malformed} malformed line${p.malformed === 1 ? '' : 's'}`);
  if (p.lost) note(`the trace says ${p.lost} records were lost (the reader fell behind)`);
  if (p.truncated && !interrupted) note('the capture ends in the middle of a record (cut short?): drawn up to there');
  if (opts.list) {
    if (!p.conns.length) throw new PlotError('no TCP connection in the input');
    out(listConns(p.conns));
    return;
  }
  const { conn, index, dir } = choose(p, opts);
  const d = plotData(conn, dir);
  if (conn.source === 'pcap' && !(conn.synSeen.out && conn.synSeen.in))
    note('no SYN of both sides in the capture: windows are drawn unscaled');
  const files = outputs(opts);
  const written: string[] = [];
  try {
    if (files.svg) writeFileSync(files.svg, renderSvg(d));
    if (files.svg) written.push(files.svg);
    if (files.html) writeFileSync(files.html, renderHtml(d));
    if (files.html) written.push(files.html);
  } catch (e) {
    throw new PlotError(`cannot write: ${(e as Error).message}`);
  }
  note(`connection ${index} (${d.title}): wrote ${written.join(', ')}`);
}
