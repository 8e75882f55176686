/**
 * Established-hash lookup cost against table size: for 1, 1 000 and
 * 100 000 sockets in the table, the time of one lookupEstablished() (IPv4)
 * and lookupEstablished6() (IPv6, addresses read in place from 40-byte
 * IPv6 headers, as tcp_v6_rcv passes them).
 *
 * The access pattern is the same at every size: a stream of STREAM
 * (131 072) segment tuples, read front to back the way a receive ring is,
 * made of shuffled permutations of all n stored tuples one after another.
 * So at 100 000 sockets every pass touches the whole table in random order
 * (segments of many flows interleaved: each lookup is a fresh cache miss
 * unless the table's lines happen to be cached), while the 1-socket table
 * sits in L1 and every lookup looks up the same tuple. The stream itself
 * costs the same at every size. The ratio to the 1-socket figure is what
 * the lookup target (<= 1.2, in the README) is about.
 *
 *   hit   the stream above (the figure returned as nsPerLookup)
 *   hot   the same, but the tuples drawn from a fixed 1 000 of the n: the
 *         table's own cost at size n with its working set in cache
 *   miss  the stream with the local port replaced by one nobody uses
 *
 *   node dist/bench/lookup.js
 *
 * Each figure is the fastest pass of the stream (131 072 lookups) among
 * those timed over ~0.3 s, after a warm-up over all sizes with every table
 * already built, so all sizes run the same compiled code (see
 * measureSizes()).
 * A lookup's answer is only compared with null: the socket it returns is
 * not read, since the caller's first touch of it is the caller's cost.
 */
import { fileURLToPath } from 'node:url';
import { InetHashinfo } from '../src/net/ipv4/inet_hashtables.js';
import { SockCommon, TCP_ESTABLISHED } from '../src/net/core/sock.js';
import { inet6LookupEstablished } from '../src/net/ipv6/inet6_hashtables.js';

class BenchSock extends SockCommon {
  override state = TCP_ESTABLISHED;
}

/** An IPv6 connection in the bench. */
class BenchSock6 extends SockCommon {
  override state = TCP_ESTABLISHED;
  constructor() {
    super();
    this.setFamily6();
    this.ipv6 = true;
  }
}

export interface LookupFigure {
  /** Established sockets in the table. */
  n: number;
  /** One hit, the stream over all n tuples. */
  nsPerLookup: number;
  /** One hit, the stream over a fixed 1 000 of the n tuples. */
  hotNsPerLookup: number;
  /** One lookup that finds nothing. */
  missNsPerLookup: number;
}

const SIZES = [1, 1_000, 100_000];
/** Lookups in one pass of the stream: more than the largest table, the same at every size. */
const STREAM = 131_072;
const MEASURE_NS = 300_000_000n; // 0.3 s
const MIN_PASSES = 10;
const WARMUP_NS = 150_000_000n;

/** xorshift32, so the tuple set is the same on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
}

/** STREAM indexes into [0, m): shuffled permutations of 0..m-1 back to back. */
function streamOrder(m: number, seed: number): Uint32Array {
  const r = rng(seed);
  const out = new Uint32Array(STREAM);
  const perm = new Uint32Array(m);
  for (let i = 0; i < m; i++) perm[i] = i;
  for (let o = 0; o < STREAM; ) {
    for (let i = m - 1; i > 0; i--) {
      const j = r() % (i + 1);
      const x = perm[i];
      perm[i] = perm[j];
      perm[j] = x;
    }
    for (let i = 0; i < m && o < STREAM; i++) out[o++] = perm[i];
  }
  return out;
}

/**
 * ns per lookup for each of `passes` (one per table size). Every table is
 * built before any is timed and a warm-up runs them all, so every size runs
 * the same compiled code (timing the 1-socket table first, alone, can let
 * V8 specialise the lookup on that one table). Then each size in turn runs
 * pass after pass, one timed at a time, over ~MEASURE_NS (at least
 * MIN_PASSES), in its own steady state; its fastest pass counts. The machine
 * is shared: a pass that lost the CPU or its cache to another process is
 * slower, never faster, so the minimum is the figure least disturbed by the
 * rest of the machine. Each pass returns the hits it saw, checked against
 * expectHits.
 */
function measureSizes(passes: (() => number)[], expectHits: boolean, what: string): number[] {
  const check = (found: number) => {
    if (found !== (expectHits ? STREAM : 0)) throw new Error(`${what} answered wrongly: ${found} of ${STREAM} found`);
  };
  const w0 = process.hrtime.bigint();
  while (process.hrtime.bigint() - w0 < WARMUP_NS) for (const pass of passes) check(pass());
  return passes.map((pass) => {
    let best = Infinity;
    const m0 = process.hrtime.bigint();
    for (let p = 0; p < MIN_PASSES || process.hrtime.bigint() - m0 < MEASURE_NS; p++) {
      const t0 = process.hrtime.bigint();
      const found = pass();
      const el = Number(process.hrtime.bigint() - t0);
      check(found);
      best = Math.min(best, el / STREAM);
    }
    return best;
  });
}

/**
 * A segment stream for IPv4: source = peer, destination = us. Addresses as
 * int32 views, as the packet path passes them (see lookupEstablished): a
 * uint32 above 2^31 would be boxed at each call.
 */
interface Stream4 {
  saddr: Int32Array;
  sport: Uint16Array;
  daddr: Int32Array;
  dport: Uint16Array;
}

function stream4(t: { saddr: Int32Array; sport: Uint16Array; daddr: Int32Array; dport: Uint16Array }, order: Uint32Array, dportOverride = 0): Stream4 {
  const s: Stream4 = { saddr: new Int32Array(STREAM), sport: new Uint16Array(STREAM), daddr: new Int32Array(STREAM), dport: new Uint16Array(STREAM) };
  for (let j = 0; j < STREAM; j++) {
    const i = order[j];
    s.saddr[j] = t.saddr[i];
    s.sport[j] = t.sport[i];
    s.daddr[j] = t.daddr[i];
    s.dport[j] = dportOverride || t.dport[i];
  }
  return s;
}

function pass4(h: InetHashinfo<BenchSock>, s: Stream4): number {
  const { saddr, sport, daddr, dport } = s;
  let found = 0;
  for (let j = 0; j < STREAM; j++) {
    if (h.lookupEstablished(saddr[j], sport[j], daddr[j], dport[j]) !== null) found++;
  }
  return found;
}

/** n connections to two local services from random peers (192.168/16 and 10/8: both above and below 2^31). */
function build4(n: number): { h: InetHashinfo<BenchSock>; hit: Stream4; hot: Stream4; miss: Stream4 } {
  const r = rng(0x9e3779b9 ^ n);
  const h = new InetHashinfo<BenchSock>({ random: r });
  const t = { saddr: new Int32Array(n), sport: new Uint16Array(n), daddr: new Int32Array(n), dport: new Uint16Array(n) };
  const local = [0x0a000002, 0xc0a80002];
  for (let i = 0; i < n; i++) {
    const sk = new BenchSock();
    sk.rcvSaddr = local[i & 1];
    sk.num = i & 2 ? 443 : 80;
    sk.daddr = i & 1 ? (0xc0a80000 | (r() & 0xffff)) >>> 0 : (0x0a000000 | (r() & 0xffffff)) >>> 0;
    sk.dport = 1024 + (r() % 64000);
    if (h.lookupEstablished(sk.daddr, sk.dport, sk.rcvSaddr, sk.num) !== null) {
      i--; // drew a tuple twice; draw again
      continue;
    }
    h.ehashInsert(sk);
    t.saddr[i] = sk.daddr | 0;
    t.sport[i] = sk.dport;
    t.daddr[i] = sk.rcvSaddr | 0;
    t.dport[i] = sk.num;
  }
  const all = streamOrder(n, 0x2545f491 ^ n);
  return { h, hit: stream4(t, all), hot: stream4(t, streamOrder(Math.min(n, 1000), 0x68e31da4 ^ n)), miss: stream4(t, all, 8080) };
}

export async function benchLookup(): Promise<LookupFigure[]> {
  const sets = SIZES.map(build4);
  const hit = measureSizes(sets.map((s) => () => pass4(s.h, s.hit)), true, 'lookupEstablished');
  const hot = measureSizes(sets.map((s) => () => pass4(s.h, s.hot)), true, 'lookupEstablished');
  const miss = measureSizes(sets.map((s) => () => pass4(s.h, s.miss)), false, 'lookupEstablished');
  return SIZES.map((n, i) => ({ n, nsPerLookup: hit[i], hotNsPerLookup: hot[i], missNsPerLookup: miss[i] }));
}

export interface Lookup6Figure {
  n: number;
  /** lookupEstablished6, one hit, the stream over all n tuples, addresses read in place from packet headers. */
  nsPerLookup: number;
  /** One lookup that finds nothing. */
  missNsPerLookup: number;
}

/** An IPv6 segment stream: STREAM 40-byte headers (source at 8, destination at 24) and the ports. */
interface Stream6 {
  hdrs: Buffer;
  sport: Uint16Array;
  dport: Uint16Array;
}

function pass6(h: InetHashinfo<BenchSock6>, s: Stream6): number {
  const { hdrs, sport, dport } = s;
  let found = 0;
  for (let j = 0, o = 0; j < STREAM; j++, o += 40) {
    if (inet6LookupEstablished(h, hdrs, o + 8, sport[j], hdrs, o + 24, dport[j]) !== null) found++;
  }
  return found;
}

/**
 * The IPv6 half of ehash: n connections from random peers in 2001:db8::/32
 * to fd00::2 port 80/443, looked up with the same kind of stream as IPv4.
 */
export async function benchLookup6(): Promise<Lookup6Figure[]> {
  const local = Buffer.from('fd000000000000000000000000000002', 'hex');
  const sets = SIZES.map((n) => {
    const r = rng(0x7f4a7c15 ^ n);
    const h = new InetHashinfo<BenchSock6>({ random: r });
    const peers = Buffer.alloc(n * 16);
    const sports = new Uint16Array(n);
    const dports = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      const sk = new BenchSock6();
      sk.v6RcvSaddr!.set(local);
      const peer = sk.v6Daddr!;
      peer.set([0x20, 0x01, 0x0d, 0xb8]);
      for (let k = 4; k < 16; k += 4) new DataView(peer.buffer, peer.byteOffset).setUint32(k, r());
      sk.num = i & 2 ? 443 : 80;
      sk.dport = 1024 + (r() % 64000);
      h.ehashInsert(sk);
      peers.set(peer, i * 16);
      sports[i] = sk.dport;
      dports[i] = sk.num;
    }
    const order = streamOrder(n, 0x2545f491 ^ n);
    const mk = (miss: boolean): Stream6 => {
      const s: Stream6 = { hdrs: Buffer.alloc(STREAM * 40), sport: new Uint16Array(STREAM), dport: new Uint16Array(STREAM) };
      for (let j = 0; j < STREAM; j++) {
        const i = order[j];
        s.hdrs[j * 40] = 0x60;
        peers.copy(s.hdrs, j * 40 + 8, i * 16, i * 16 + 16);
        local.copy(s.hdrs, j * 40 + 24);
        s.sport[j] = sports[i];
        s.dport[j] = miss ? 8080 : dports[i];
      }
      return s;
    };
    return { h, hit: mk(false), miss: mk(true) };
  });
  const hit = measureSizes(sets.map((s) => () => pass6(s.h, s.hit)), true, 'lookupEstablished6');
  const miss = measureSizes(sets.map((s) => () => pass6(s.h, s.miss)), false, 'lookupEstablished6');
  return SIZES.map((n, i) => ({ n, nsPerLookup: hit[i], missNsPerLookup: miss[i] }));
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((s, c) => s.padStart(w[c])).join('  ')).join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const t0 = Date.now();
  const cell = (v: number, b: number) => [v.toFixed(1), (v / b).toFixed(2)];
  const figs = await benchLookup();
  console.log('lookupEstablished (IPv4), ns per lookup; ratio to 1 socket');
  const rows = [['sockets', 'hit ns', 'ratio', 'hot ns', 'ratio', 'miss ns', 'ratio']];
  for (const f of figs) {
    rows.push([
      f.n.toLocaleString('en-US'),
      ...cell(f.nsPerLookup, figs[0].nsPerLookup),
      ...cell(f.hotNsPerLookup, figs[0].hotNsPerLookup),
      ...cell(f.missNsPerLookup, figs[0].missNsPerLookup),
    ]);
  }
  console.log(table(rows));
  const f6 = await benchLookup6();
  console.log('\nlookupEstablished6 (IPv6, addresses in place), ns per lookup; ratio to 1 socket');
  const rows6 = [['sockets', 'hit ns', 'ratio', 'miss ns', 'ratio']];
  for (const f of f6) rows6.push([f.n.toLocaleString('en-US'), ...cell(f.nsPerLookup, f6[0].nsPerLookup), ...cell(f.missNsPerLookup, f6[0].missNsPerLookup)]);
  console.log(table(rows6));
  console.log(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}
