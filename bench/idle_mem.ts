/**
 * Memory per idle established connection, in-process: the stack on the
 * in-memory link, N handshakes from scripted peers (SYN with Linux's
 * options: mss, sackOK, TS, wscale; then the ACK), the children left in
 * the listener's accept queue, as `npm run bench`'s idle part leaves them
 * in the daemon. Then a full GC and the JS heap (heapUsed + external) and
 * RSS against the same figures before the handshakes, per connection.
 *
 *   node --expose-gc dist/bench/idle_mem.js [N ...]      (default 10000 100000)
 *   IDLE_MEM_TOP=1 ...  also a heap snapshot's bytes per connection by
 *                       constructor (self sizes), for the first N; the
 *                       snapshots themselves leave strings and code behind,
 *                       so that run's totals read high: take the totals
 *                       from a run without it
 *
 * No packets leave the process: the link is a MemLink whose frames are
 * dropped after each handshake.
 */
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { Harness } from '../test/lib/harness.js';
import { ipFrame, tcp as tcpSeg, tcpOptions, STACK_IP, PEER_MAC } from '../test/lib/frames.js';
import { tcpBind, tcpListen } from '../src/net/ipv4/tcp.js';
import { TCP_ESTABLISHED } from '../src/net/core/sock.js';
import { tcpNewSock } from '../src/net/ipv4/tcp_ipv4.js';
import { AF_INET } from '../src/uapi.js';

const gc = (globalThis as { gc?: () => void }).gc;

function settle(): void {
  for (let i = 0; i < 3; i++) gc!();
}

export interface IdleMem {
  n: number;
  held: number;
  heapPerConn: number;
  rssPerConn: number;
  top?: { name: string; bytesPerConn: number; countPerConn: number }[];
}

/** A heap snapshot's JSON text. */
function snapshotText(): Promise<string> {
  const chunks: string[] = [];
  const s = v8.getHeapSnapshot();
  return new Promise<string>((resolve, reject) => {
    s.on('data', (c: Buffer) => chunks.push(c.toString()));
    s.on('end', () => resolve(chunks.join('')));
    s.on('error', reject);
  });
}

/** Self sizes and counts by constructor name (other node types by type). */
async function byCtor(): Promise<Map<string, { size: number; count: number }>> {
  const text = await snapshotText();
  const snap = JSON.parse(text) as { snapshot: { meta: { node_fields: string[]; node_types: string[][] } }; nodes: number[]; strings: string[] };
  const f = snap.snapshot.meta.node_fields;
  const stride = f.length;
  const iType = f.indexOf('type');
  const iName = f.indexOf('name');
  const iSize = f.indexOf('self_size');
  const types = snap.snapshot.meta.node_types[0];
  const out = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < snap.nodes.length; i += stride) {
    const t = types[snap.nodes[i + iType]];
    const name = t === 'object' || t === 'closure' ? snap.strings[snap.nodes[i + iName]] : `(${t})`;
    const e = out.get(name) ?? { size: 0, count: 0 };
    e.size += snap.nodes[i + iSize];
    e.count++;
    out.set(name, e);
  }
  return out;
}

export async function idleMem(n: number, top = false): Promise<IdleMem> {
  if (!gc) throw new Error('run with node --expose-gc');
  const h = Harness.withPeer(AF_INET);
  const tcp = h.stack.tcp;
  tcp.sysctl.somaxconn = n + 1024;
  const l = tcpNewSock(tcp);
  if (tcpBind(tcp, l, 0, 9100) !== 0 || tcpListen(tcp, l, n + 1024) !== 0) throw new Error('listen');
  // Peers 10.0.0.10.. , 50 000 ports each, all known to the neighbour table.
  const per = 50_000;
  const peers: number[] = [];
  for (let i = 0; i * per < n; i++) {
    const ip = ((10 << 24) | (10 + i)) >>> 0;
    h.stack.neighAddPermanent(ip, PEER_MAC);
    peers.push(ip);
  }
  h.link.take();
  const synOpts = tcpOptions([['mss', 1460], ['sackOK'], ['TS', 1000, 0], ['nop'], ['wscale', 7]]);
  const frameFor = (src: number, sport: number, seq: number, ack: number, flags: number, options?: Buffer) =>
    ipFrame({ proto: 6, src, dst: STACK_IP, payload: tcpSeg({ sport, dport: 9100, seq, ack, flags, win: 64240, payload: Buffer.alloc(0), options, src, dst: STACK_IP }) });
  let before: { heap: number; rss: number } | null = null;
  let beforeCtor: Map<string, { size: number; count: number }> | null = null;
  const mark = async () => {
    settle();
    const m = process.memoryUsage();
    return { heap: m.heapUsed + m.external, rss: m.rss };
  };
  // One warm-up connection so code, ICs and lazily built stack state are in the baseline.
  const handshake = (i: number) => {
    const src = peers[Math.floor(i / per)];
    const sport = 10_000 + (i % per);
    h.rx(frameFor(src, sport, 1_000_000, 0, 0x02, synOpts));
    const out = h.link.take();
    if (out.length !== 1) throw new Error(`handshake ${i}: ${out.length} frames for the SYN`);
    const f = out[0];
    // The SYN-ACK's seq, at 14 (ethernet) + 20 (IP) + 4.
    const isn = f.readUInt32BE(14 + 20 + 4);
    const tsval = tsvalOf(f);
    h.rx(frameFor(src, sport, 1_000_001, (isn + 1) >>> 0, 0x10, tcpOptions([['nop'], ['nop'], ['TS', 1001, tsval]])));
    if (h.link.take().length !== 0) throw new Error(`handshake ${i}: the final ACK was answered`);
  };
  for (let i = 0; i <= n; i++) {
    if (i === 1) {
      before = await mark();
      if (top) beforeCtor = await byCtor();
    }
    handshake(i);
  }
  h.time.advance(1000); // past the handshake's delayed work, as an idle daemon would be
  h.link.take();
  const after = await mark();
  const held = l.acceptQueue.filter((c) => c.state === TCP_ESTABLISHED).length - 1;
  const r: IdleMem = { n, held, heapPerConn: (after.heap - before!.heap) / n, rssPerConn: (after.rss - before!.rss) / n };
  if (top) {
    const a = await byCtor();
    const rows: { name: string; bytesPerConn: number; countPerConn: number }[] = [];
    for (const [name, e] of a) {
      const b = beforeCtor!.get(name) ?? { size: 0, count: 0 };
      const d = (e.size - b.size) / n;
      if (Math.abs(d) >= 4) rows.push({ name, bytesPerConn: d, countPerConn: (e.count - b.count) / n });
    }
    rows.sort((x, y) => y.bytesPerConn - x.bytesPerConn);
    r.top = rows;
  }
  // Keep everything alive until measured.
  if (l.acceptQueue.length !== n + 1) throw new Error(`accept queue holds ${l.acceptQueue.length}, expected ${n + 1}`);
  return r;
}

/** The TSval of a segment's timestamp option (the stack always sends one after a TS SYN). */
function tsvalOf(f: Buffer): number {
  const tcpOff = 14 + 20;
  const end = tcpOff + (f[tcpOff + 12] >> 4) * 4;
  for (let o = tcpOff + 20; o < end; ) {
    const kind = f[o];
    if (kind === 0) break;
    if (kind === 1) {
      o++;
      continue;
    }
    if (kind === 8) return f.readUInt32BE(o + 2);
    o += f[o + 1];
  }
  throw new Error('no timestamp in the SYN-ACK');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const sizes = process.argv.slice(2).map(Number).filter((x) => x > 0);
  const top = process.env.IDLE_MEM_TOP === '1';
  for (const [i, n] of (sizes.length ? sizes : [10_000, 100_000]).entries()) {
    const r = await idleMem(n, top && i === 0);
    console.log(`${n} idle connections (${r.held} established): heap+external ${(r.heapPerConn / 1024).toFixed(2)} KiB/conn, RSS ${(r.rssPerConn / 1024).toFixed(2)} KiB/conn`);
    if (r.top) for (const t of r.top.slice(0, 30)) console.log(`  ${t.bytesPerConn.toFixed(0).padStart(6)} B  ${t.countPerConn.toFixed(2).padStart(6)}x  ${t.name}`);
  }
}
