/**
 * tapstack plot: a hand-built capture and a hand-built trace become the model
 * field by field (relative sequence numbers across 2^32, window scaling,
 * retransmissions, SACK blocks, the ACK and window lines, the connection
 * and direction chosen), the SVG carries each series as one path with one
 * subpath per mark, and bad input gets one clear line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eth, inetPacket, udp, PEER_MAC, STACK_MAC } from '../lib/frames.js';
import { AF_INET } from '../../src/uapi.js';
import { C4, CISN, MAIN, S4, SISN, SMALL, T0, TRACE_ID, capture, frame, pcap, syntheticTrace, traceLines } from '../lib/plot_inputs.js';
import { busiest, connsFromTrace, dataDir, parseInput, plotData, PlotInputError, SeqSpace } from '../../src/plot/model.js';
import { renderSvg, fullView } from '../../src/plot/svg.js';
import { renderHtml } from '../../src/plot/html.js';
import { choose, listConns, PlotError, runPlot } from '../../src/cli/plot.js';
import { PassThrough } from 'node:stream';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

test('SeqSpace: relative to the base, continuous across 2^32 and past 4 GB, and back across it', () => {
  const s = new SeqSpace();
  assert.equal(s.rel(0xffffff00), 0);
  assert.equal(s.rel(0x00000010), 0x110);
  assert.equal(s.rel(0xffffff80), 0x80, 'a retransmission from before the wrap');
  let abs = 0xffffff00;
  let last = 0;
  for (let i = 1; i <= 6; i++) {
    abs += 1e9;
    last = s.rel(abs >>> 0);
  }
  assert.equal(last, 6e9, 'six 1 GB steps, though the wire numbers wrapped');
});

test('plot: a capture becomes its connections, field by field', () => {
  const p = parseInput(capture());
  assert.equal(p.kind, 'pcap');
  assert.equal(p.conns.length, 2);
  const [c, small] = p.conns;
  assert.deepEqual([c.local, c.remote], [{ addr: '10.0.0.1', port: 40000 }, { addr: '10.0.0.2', port: 80 }]);
  assert.equal(c.family, 4);
  assert.deepEqual([small.local, small.remote, small.family], [{ addr: 'fd00::1', port: 50000 }, { addr: 'fd00::2', port: 8080 }, 6]);
  assert.deepEqual(c.wscale, { out: 7, in: 2 });
  assert.deepEqual(c.mss, { out: 1000, in: 1460 });
  assert.deepEqual(c.synSeen, { out: true, in: true });
  assert.deepEqual(c.isn, { out: CISN, in: SISN });
  assert.deepEqual(c.bytes, { out: 6000, in: 0 });
  assert.equal(c.records, MAIN.length);
  assert.equal(busiest(p.conns), 0);
  assert.equal(dataDir(c), 'out');
  assert.equal(dataDir(small), 'in', 'the server sent the payload');

  const s = c.segs;
  assert.deepEqual(
    s.map((x) => [x.dir, x.seq, x.end_seq, x.len, x.flags]),
    [
      ['out', 0, 1, 0, 'S'],
      ['in', 0, 1, 0, 'S.'],
      ['out', 1, 1, 0, '.'],
      ['out', 1, 1001, 1000, 'P.'],
      ['out', 1001, 2001, 1000, 'P.'],
      ['out', 2001, 3001, 1000, 'P.'],
      ['out', 3001, 4001, 1000, 'P.'],
      ['out', 4001, 5001, 1000, 'P.'],
      ['in', 1, 1, 0, '.'],
      ['in', 1, 1, 0, '.'],
      ['in', 1, 1, 0, '.'],
      ['out', 1001, 2001, 1000, '.'],
      ['in', 1, 1, 0, '.'],
      ['out', 5001, 5002, 0, 'F.'],
      ['in', 1, 2, 0, 'F.'],
    ],
  );
  // From relative 2048 on the wire's numbers wrapped past 2^32: still relative and increasing.
  assert.ok(((CISN + 3001) >>> 0) < CISN);
  assert.deepEqual(s.map((x) => x.ack), [0, 1, 1, 1, 1, 1, 1, 1, 1001, 1001, 1001, 1, 5001, 1, 5002]);
  // Windows: SYNs as sent; the server's others << 2, the client's << 7.
  assert.deepEqual(s.map((x) => x.win), [64240, 1000, 12800, 12800, 12800, 12800, 12800, 12800, 2000, 2000, 2000, 12800, 2400, 12800, 2400]);
  assert.deepEqual(s[9].sack, [[2001, 4001]]);
  assert.deepEqual(s[10].sack, [[2001, 5001]]);
  assert.ok(Math.abs(s[1].t - 0.01) < 1e-6, `t is seconds since the first record: ${s[1].t}`);
  assert.deepEqual(c.retrans.map((r) => [r.dir, r.seq, r.end_seq, r.reason]), [['out', 1001, 2001, undefined]]);
  assert.equal(c.probes.length, 0);
});

test('plot: the series of a capture: segments, the retransmission, ACK and window lines, SACK blocks, in flight estimated', () => {
  const [c] = parseInput(capture()).conns;
  const d = plotData(c, 'out');
  assert.equal(d.title, '10.0.0.1:40000 \u2192 10.0.0.2:80');
  const triples = (v: number[]) => Array.from({ length: v.length / 3 }, (_, i) => [v[3 * i + 1], v[3 * i + 2]]);
  const pairs = (v: (number | null)[]) => Array.from({ length: v.length / 2 }, (_, i) => v[2 * i + 1]);
  assert.deepEqual(triples(d.seq.segs), [[0, 1], [1, 1001], [1001, 2001], [2001, 3001], [3001, 4001], [4001, 5001], [1001, 2001], [5001, 5002]]);
  assert.deepEqual(triples(d.seq.retrans), [[1001, 2001]]);
  assert.deepEqual(pairs(d.seq.acks), [1, 1001, 1001, 1001, 5001, 5002]);
  assert.deepEqual(pairs(d.seq.win), [1 + 1000, 1001 + 2000, 1001 + 2000, 1001 + 2000, 5001 + 2400, 5002 + 2400]);
  assert.deepEqual(triples(d.seq.sack), [[2001, 4001], [2001, 5001]]);
  assert.equal(d.seq.sack[0], d.seq.acks[4], 'a SACK block is drawn at its ACK\'s time');
  assert.equal(d.cc.estimated, true);
  assert.deepEqual([d.cc.cwnd, d.cc.ssthresh], [[], []], 'a capture has no cwnd');
  // In flight in segments of the receiver's MSS bounded by the largest segment (1000), on each change:
  // the SYN (1 byte: 0.00), 1..5 segments, 4 after the first ACK (the dup ACKs change nothing), 0 at the last.
  assert.deepEqual(pairs(d.cc.inflight), [0, 1, 2, 3, 4, 5, 4, 0]);
  assert.match(d.cc.note, /estimated from the capture/);
  // The other direction of the same connection carries no data: its series are its SYN-ACK and FIN.
  const back = plotData(c, 'in');
  assert.deepEqual(triples(back.seq.segs), [[0, 1], [1, 2]]);
});

test('plot: the SVG has one path per series with one subpath per mark, and the HTML page carries the renderer and the data', () => {
  const [c] = parseInput(capture()).conns;
  const d = plotData(c, 'out');
  const svg = renderSvg(d);
  const series = (key: string) => {
    const m = new RegExp(`<path class="series s-${key}" data-n="(\\d+)" d="([^"]*)"`).exec(svg);
    assert.ok(m, `series ${key} in the SVG`);
    return { n: Number(m[1]), moves: (m[2].match(/M/g) ?? []).length, steps: (m[2].match(/H/g) ?? []).length };
  };
  assert.deepEqual(series('segs'), { n: 8, moves: 8, steps: 0 });
  // The bar and tcptrace's R beside it.
  assert.deepEqual(series('retrans'), { n: 1, moves: 2, steps: 0 });
  assert.deepEqual(series('acks'), { n: 1, moves: 1, steps: 5 });
  assert.deepEqual(series('win'), { n: 1, moves: 1, steps: 5 });
  assert.deepEqual(series('sack'), { n: 2, moves: 2, steps: 0 });
  assert.deepEqual(series('inflight'), { n: 1, moves: 1, steps: 7 });
  assert.deepEqual(series('cwnd'), { n: 0, moves: 0, steps: 0 });
  assert.equal((svg.match(/<path class="series/g) ?? []).length, 8, 'one path per series, not one per segment');
  assert.match(svg, /10\.0\.0\.1:40000 \u2192 10\.0\.0\.2:80/);
  assert.match(svg, /in flight estimated from the capture/);
  assert.doesNotMatch(svg, />cwnd</, 'no cwnd in the legend of a capture');
  assert.doesNotMatch(svg, /NaN|Infinity|undefined/);
  // Zoomed on the retransmission: the bars outside the time range are left out.
  const v = fullView(d);
  const zoomed = renderSvg(d, { ...v, x: [0.055, 0.065] });
  assert.match(zoomed, /s-segs" data-n="1"/);
  const html = renderHtml(d);
  assert.match(html, /<script type="application\/json" id="plot-data">/);
  assert.match(html, /export function renderSvg/);
  assert.doesNotMatch(html, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no address the page could fetch');
  assert.doesNotMatch(html, /sourceMappingURL/);
});

test('plot: a trace becomes its connection: the socket is out, its retransmissions from retransmit records, cwnd from probe', () => {
  const p = parseInput(Buffer.from(traceLines().join('\n')));
  assert.equal(p.kind, 'trace');
  assert.equal(p.malformed, 2, 'the cut line and the xmit without its fields');
  assert.equal(p.lost, 3);
  assert.equal(p.conns.length, 1);
  const c = p.conns[0];
  assert.deepEqual([c.local, c.remote, c.source], [{ addr: '10.0.0.2', port: 80 }, { addr: '10.0.0.1', port: 40000 }, 'trace']);
  assert.deepEqual(c.bytes, { out: 4344, in: 0 });
  assert.equal(dataDir(c), 'out');
  assert.deepEqual(c.synSeen, { out: true, in: true });
  assert.deepEqual(
    c.segs.map((s) => [s.dir, s.seq, s.end_seq, s.ack, s.win]),
    [
      ['in', 0, 1, 0, 64240],
      ['out', 0, 1, 1, 65535],
      ['in', 1, 1, 1, 131072],
      ['out', 1, 1449, 1, 65535],
      ['out', 1449, 2897, 1, 65535],
      ['in', 1, 1, 1, 131072],
      ['out', 1, 1449, 1, 65535],
      ['in', 1, 1, 2897, 131072],
    ],
  );
  assert.deepEqual(c.segs[5].sack, [[1449, 2897]]);
  // From the record (with its reason), not found again from the xmit that followed it.
  assert.deepEqual(c.retrans.map((r) => [r.seq, r.end_seq, r.reason]), [[1, 1449, 'FAST']]);
  const d = plotData(c, 'out');
  assert.equal(d.cc.estimated, false);
  assert.deepEqual(d.cc.cwnd.filter((_, i) => i % 2), [10, 5]);
  assert.deepEqual(d.cc.ssthresh.filter((_, i) => i % 2), [null, 5]);
  // A writer that gives TCP_INFINITE_SSTHRESH as a number means the same as null.
  const inf = parseInput(Buffer.from(traceLines().join('\n').replace('"ssthresh":null', '"ssthresh":2147483647')));
  assert.deepEqual(plotData(inf.conns[0], 'out').cc.ssthresh.filter((_, i) => i % 2), [null, 5]);
  assert.deepEqual(d.cc.inflight.filter((_, i) => i % 2), [2, 1]);
  const svg = renderSvg(d);
  // ssthresh is infinite (not drawn) until the loss: one subpath, from its first value.
  assert.match(svg, /s-ssthresh" data-n="1" d="M[\d.]+ [\d.]+"/);
  assert.match(svg, /s-cwnd" data-n="1" d="M[^"]*H[^"]*"/);
  assert.match(svg, />cwnd</);
  // Seen from the peer's side, the data it received has no retransmit records: none is invented.
  assert.deepEqual(plotData(c, 'in').seq.retrans, []);
});

test('plot: the peer\'s retransmissions in a trace are found as in a capture', () => {
  const r = (ts: number, o: Record<string, unknown>) => JSON.stringify({ ts: T0 + ts, ...TRACE_ID, ...o });
  const { conns } = connsFromTrace([
    r(0, { ev: 'rcv', seq: 100, end_seq: 200, ack: 1, len: 100, flags: '.', win: 1000 }),
    r(0.1, { ev: 'rcv', seq: 200, end_seq: 300, ack: 1, len: 100, flags: '.', win: 1000 }),
    r(0.2, { ev: 'rcv', seq: 100, end_seq: 200, ack: 1, len: 100, flags: '.', win: 1000 }),
  ]);
  assert.deepEqual(conns[0].retrans.map((x) => [x.dir, x.seq, x.end_seq]), [['in', 0, 100]]);
  assert.equal(dataDir(conns[0]), 'in');
});

test('plot: choosing: the busiest connection, --conn, --dir, and --list', () => {
  const p = parseInput(capture());
  assert.deepEqual(
    (({ index, dir }) => ({ index, dir }))(choose(p, {})),
    { index: 0, dir: 'out' },
  );
  assert.deepEqual((({ index, dir }) => ({ index, dir }))(choose(p, { conn: 1 })), { index: 1, dir: 'in' });
  assert.equal(choose(p, { conn: 0, dir: 'in' }).dir, 'in');
  assert.throws(() => choose(p, { conn: 2 }), (e: unknown) => e instanceof PlotError && e.status === 2 && /--conn 2: no such connection \(the input has 2: 0-1/.test(e.message));
  assert.throws(() => choose({ ...p, conns: [] }, {}), /no TCP connection in the input/);
  const list = listConns(p.conns).split('\n');
  assert.match(list[0], /^#\s+local \(out\)\s+remote \(in\)\s+bytes out\s+bytes in\s+records$/);
  assert.match(list[1], /^0\s+10\.0\.0\.1:40000\s+10\.0\.0\.2:80\s+6000\s+0\s+15$/);
  assert.match(list[2], /^1\s+\[fd00::1\]:50000\s+\[fd00::2\]:8080\s+0\s+300\s+5$/);
});

test('plot: other capture forms: big-endian nanosecond pcap, raw IP, Linux cooked, pcapng; a cut-short capture keeps what it has', () => {
  const frames = MAIN.slice(0, 4).map((s) => [T0 + s.t, frame(4, 40000, 80, s)] as [number, Buffer]);
  const expect = (b: Buffer, what: string) => {
    const p = parseInput(b);
    assert.equal(p.conns.length, 1, what);
    assert.deepEqual(p.conns[0].segs.map((s) => [s.dir, s.seq, s.end_seq]), [['out', 0, 1], ['in', 0, 1], ['out', 1, 1], ['out', 1, 1001]], what);
    assert.ok(Math.abs(p.conns[0].segs[1].t - 0.01) < 1e-6, `${what}: time ${p.conns[0].segs[1].t}`);
  };
  // Big-endian, nanoseconds.
  const be = Buffer.alloc(24);
  be.writeUInt32BE(0xa1b23c4d, 0);
  be.writeUInt16BE(2, 4);
  be.writeUInt16BE(4, 6);
  be.writeUInt32BE(65535, 16);
  be.writeUInt32BE(1, 20);
  const recs = frames.map(([t, f]) => {
    const r = Buffer.alloc(16);
    r.writeUInt32BE(Math.floor(t), 0);
    r.writeUInt32BE(Math.round((t - Math.floor(t)) * 1e9), 4);
    r.writeUInt32BE(f.length, 8);
    r.writeUInt32BE(f.length, 12);
    return Buffer.concat([r, f]);
  });
  expect(Buffer.concat([be, ...recs]), 'big-endian ns');
  expect(pcap(frames.map(([t, f]) => [t, f.subarray(14)]), 101), 'LINKTYPE_RAW');
  expect(
    pcap(
      frames.map(([t, f]) => {
        const sll = Buffer.alloc(16);
        sll.writeUInt16BE(0x0800, 14);
        return [t, Buffer.concat([sll, f.subarray(14)])];
      }),
      113,
    ),
    'LINUX_SLL',
  );
  // pcapng: section header, an interface (Ethernet, default microseconds), enhanced packets.
  const block = (type: number, body: Buffer) => {
    const len = 12 + body.length + ((4 - (body.length % 4)) % 4);
    const b = Buffer.alloc(len);
    b.writeUInt32LE(type, 0);
    b.writeUInt32LE(len, 4);
    body.copy(b, 8);
    b.writeUInt32LE(len, len - 4);
    return b;
  };
  const shb = Buffer.alloc(16);
  shb.writeUInt32LE(0x1a2b3c4d, 0);
  shb.writeUInt16LE(1, 4);
  shb.writeBigInt64LE(-1n, 8);
  const idb = Buffer.alloc(8);
  idb.writeUInt16LE(1, 0);
  idb.writeUInt32LE(65535, 4);
  const epbs = frames.map(([t, f]) => {
    const h = Buffer.alloc(20);
    const us = BigInt(Math.round(t * 1e6));
    h.writeUInt32LE(Number(us >> 32n), 4);
    h.writeUInt32LE(Number(us & 0xffffffffn), 8);
    h.writeUInt32LE(f.length, 12);
    h.writeUInt32LE(f.length, 16);
    return block(6, Buffer.concat([h, f]));
  });
  expect(Buffer.concat([block(0x0a0d0d0a, shb), block(1, idb), ...epbs]), 'pcapng');
  // Cut in the middle of the last record: the first three are kept, and it says so.
  const whole = pcap(frames);
  const cut = parseInput(whole.subarray(0, whole.length - 10));
  assert.equal(cut.truncated, true);
  assert.equal(cut.conns[0].segs.length, 3);
});

test('plot: bad input is one clear error, never a crash', () => {
  const bad = (b: Buffer | string, re: RegExp) => assert.throws(() => parseInput(Buffer.isBuffer(b) ? b : Buffer.from(b)), (e: unknown) => e instanceof PlotInputError && re.test((e as Error).message));
  bad(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0]), /neither a pcap file nor JSON lines/);
  bad('hello world\nnot json\n', /neither a pcap file nor JSON lines/);
  bad('', /the input is empty/);
  bad('[1,2,3]\n', /line 1 is JSON but not a record/);
  bad(`${JSON.stringify({ ts: 1, ev: 'state', ...TRACE_ID })}\n42\n`, /line 2 is JSON but not a record/);
  bad(pcap([[T0, Buffer.alloc(40)]], 147), /link type 147/);
  bad(Buffer.from([0xd4, 0xc3, 0xb2, 0xa1, 2, 0]), /header is cut short/);
  // A capture without TCP parses, and then has nothing to draw.
  const udpOnly = pcap([[T0, eth(STACK_MAC, PEER_MAC, 0x0800, inetPacket(AF_INET, { proto: 17, payload: udp(53, 53, Buffer.from('x')), src: C4, dst: S4 }))]]);
  assert.equal(parseInput(udpOnly).conns.length, 0);
});

test('plot: the command line: files written, --list, and one line on stderr for bad input (no stack trace)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapstack-plot-'));
  try {
    const run = (...args: string[]) => spawnSync(process.execPath, [CLI, 'plot', ...args], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    writeFileSync(join(dir, 'c.pcap'), capture());
    writeFileSync(join(dir, 't.jsonl'), traceLines().join('\n'));
    writeFileSync(join(dir, 'junk.bin'), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]));
    writeFileSync(join(dir, 'udp.pcap'), pcap([[T0, eth(STACK_MAC, PEER_MAC, 0x0800, inetPacket(AF_INET, { proto: 17, payload: udp(53, 53, Buffer.from('x')), src: C4, dst: S4 }))]]));
    let r = run('c.pcap', '-o', 'out');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^tapstack: plot: connection 0 \(10\.0\.0\.1:40000 \u2192 10\.0\.0\.2:80\): wrote out\.svg, out\.html\n$/);
    assert.ok(readFileSync(join(dir, 'out.svg'), 'utf8').startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
    assert.ok(readFileSync(join(dir, 'out.html'), 'utf8').startsWith('<!DOCTYPE html>'));
    // Standard input, --svg only.
    r = spawnSync(process.execPath, [CLI, 'plot', '-', '--svg', 'only.svg'], { cwd: dir, input: traceLines().join('\n'), encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /skipped 2 malformed lines\n/);
    assert.match(r.stderr, /3 records were lost/);
    assert.ok(existsSync(join(dir, 'only.svg')) && !existsSync(join(dir, 'only.html')) && !existsSync(join(dir, 'tapstack-plot.html')));
    r = run('c.pcap', '--list');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.split('\n').length, 4);
    for (const [args, re, status] of [
      [['junk.bin'], /^tapstack: plot: junk\.bin: neither a pcap file nor JSON lines \(tapstack trace records\)\n$/, 1],
      [['udp.pcap'], /^tapstack: plot: no TCP connection in the input\n$/, 1],
      [['missing.pcap'], /^tapstack: plot: missing\.pcap: no such file\n$/, 1],
      [['c.pcap', '--conn', '7'], /^tapstack: plot: --conn 7: no such connection/, 2],
      [['c.pcap', '--conn', 'abc'], /^tapstack: plot: --conn abc: a connection's number \(--list shows them\)\n$/, 2],
      [['c.pcap', '--dir', 'up'], /^tapstack: plot: --dir up: out or in\n$/, 2],
    ] as [string[], RegExp, number][]) {
      r = run(...args);
      assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one line: ${r.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});


test('plot: a 50 000-segment trace is one path per series and a few MB, not one element per segment', () => {
  const p = parseInput(Buffer.from(syntheticTrace(50_000)));
  const d = plotData(p.conns[0], 'out');
  const svg = renderSvg(d);
  // The SYN, 50 000 segments, and the 10 sent again.
  assert.match(svg, /s-segs" data-n="50011"/);
  assert.match(svg, /s-retrans" data-n="10"/);
  assert.equal((svg.match(/<path/g) ?? []).length, 8 + 2 + 3 + 5, 'series, grids, legend samples');
  assert.ok(svg.length < 3.5e6, `${svg.length} bytes`);
  // The sequence axis ends past 72 MB (50 000 x 1448) though the wire's numbers wrapped.
  assert.ok(fullView(d).ySeq[1] > 72.4e6);
});

test('plot: from a pipe, an interrupt (Ctrl-C on a live trace) draws what arrived, less the record it cut', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapstack-plot-'));
  try {
    const lines = syntheticTrace(100).split('\n');
    const xmits = lines.slice(0, 60).filter((l) => l.includes('"xmit"')).length;
    const pipe = new PassThrough();
    const ac = new AbortController();
    const notes: string[] = [];
    const done = runPlot({ file: '-', prefix: join(dir, 'live'), stdin: pipe, interrupt: ac.signal }, () => {}, (s) => notes.push(s));
    pipe.write(lines.slice(0, 60).join('\n') + '\n' + lines[60].slice(0, 25));
    // The chunk reaches the reader in this turn of the loop; the interrupt comes after it, the stream still open.
    await new Promise((r) => setImmediate(r));
    ac.abort();
    await done;
    assert.deepEqual(notes, [`connection 0 (10.0.0.2:40000 \u2192 10.0.0.1:80): wrote ${join(dir, 'live.svg')}, ${join(dir, 'live.html')}`], 'no malformed line for the cut one');
    assert.match(readFileSync(join(dir, 'live.svg'), 'utf8'), new RegExp(`s-segs" data-n="${xmits}"`));
    // Interrupted before anything came: one line, nothing written.
    const early = new AbortController();
    early.abort();
    await assert.rejects(runPlot({ file: '-', prefix: join(dir, 'none'), stdin: new PassThrough(), interrupt: early.signal }, () => {}, () => {}), /interrupted before anything arrived/);
    assert.equal(existsSync(join(dir, 'none.svg')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('plot: a capture with the same 4-tuple used twice (a new SYN, a new ISN) has two connections; a SYN sent again stays one', () => {
  const first = SMALL.map((x) => [T0 + x.t, frame(6, 50000, 8080, x)] as [number, Buffer]);
  const again = SMALL.map((x) => [T0 + 10 + x.t, frame(6, 50000, 8080, { ...x, seq: x.seq + 777777, ack: x.ack === undefined ? undefined : x.ack + 777777 })] as [number, Buffer]);
  const synAgain: [number, Buffer] = [T0 + 0.0015, frame(6, 50000, 8080, SMALL[0])];
  const p = parseInput(pcap([first[0], synAgain, ...first.slice(1), ...again]));
  assert.equal(p.conns.length, 2);
  assert.deepEqual(p.conns.map((c) => [c.segs.length, c.isn.out, c.bytes.in]), [[6, 100, 300], [5, 100 + 777777, 300]]);
  assert.deepEqual(p.conns[0].retrans.map((r) => [r.dir, r.seq, r.end_seq]), [['out', 0, 1]], 'the SYN sent again');
});
