/**
 * Established-hash lookup cost against table size: for 1, 1 000 and 100 000
 * sockets, time lookupEstablished() in a tight loop over
 *
 *   hit   every stored tuple, in a shuffled order (segments of many flows
 *         interleaved: the figure returned as nsPerLookup);
 *   seq   every stored tuple in insertion order (flows arriving in turn);
 *   hot   a fixed 1 000 of the stored tuples, shuffled: the table's own cost
 *         at size n with the working set kept in cache;
 *   miss  tuples that are not stored (same addresses, an unused local port).
 *
 *   node dist/bench/lookup.js
 *
 * Each figure is the best of three rounds of ~0.1 s after a 50 ms warm-up,
 * so ~0.35 s per case and a few seconds in all. At 100 000 sockets hit, seq
 * and miss also pay cache misses the table cannot avoid (its nodes alone are
 * ~4 MB); hot shows that the algorithmic cost itself stays flat.
 */
import { fileURLToPath } from 'node:url';
import { InetHashinfo, InetSockBase, TCP_ESTABLISHED } from '../src/net/ipv4/inet_hashtables.js';

class BenchSock extends InetSockBase {
  override state = TCP_ESTABLISHED;
}

export interface LookupFigure {
  /** Established sockets in the table. */
  n: number;
  /** One hit, tuples in shuffled order. */
  nsPerLookup: number;
  /** One hit, tuples in insertion order. */
  seqNsPerLookup: number;
  /** One hit among a fixed, shuffled 1 000 of the n tuples. */
  hotNsPerLookup: number;
  /** One lookup that finds nothing. */
  missNsPerLookup: number;
}

/**
 * A segment's view of a tuple: source = peer, destination = us. Addresses
 * are kept as int32 views, as the packet path passes them (see
 * lookupEstablished): a uint32 above 2^31 would be boxed at each call.
 */
interface Tuples {
  saddr: Int32Array;
  sport: Uint16Array;
  daddr: Int32Array;
  dport: Uint16Array;
}

const SIZES = [1, 1_000, 100_000];
const ROUND_NS = 100_000_000n; // 0.1 s
const ROUNDS = 3;
const WARMUP_NS = 50_000_000n;
const BATCH_NS = 5_000_000n;

function tuples(n: number): Tuples {
  return { saddr: new Int32Array(n), sport: new Uint16Array(n), daddr: new Int32Array(n), dport: new Uint16Array(n) };
}

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

/** n connections to two local services from random peers (192.168/16 and 10/8: both above and below 2^31). */
function build(n: number): { h: InetHashinfo<BenchSock>; seq: Tuples; miss: Tuples } {
  const r = rng(0x9e3779b9 ^ n);
  const h = new InetHashinfo<BenchSock>({ random: r });
  const hit = tuples(n);
  const miss = tuples(n);
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
    hit.saddr[i] = sk.daddr;
    hit.sport[i] = sk.dport;
    hit.daddr[i] = sk.rcvSaddr;
    hit.dport[i] = sk.num;
    // Same shape, but a local port nobody uses.
    miss.saddr[i] = sk.daddr;
    miss.sport[i] = sk.dport;
    miss.daddr[i] = sk.rcvSaddr;
    miss.dport[i] = 8080;
  }
  return { h, seq: hit, miss };
}

/** The first m tuples of t, shuffled (Fisher-Yates with a fixed seed). */
function shuffled(t: Tuples, m: number): Tuples {
  const r = rng(0x2545f491 ^ m);
  const o = tuples(m);
  o.saddr.set(t.saddr.subarray(0, m));
  o.sport.set(t.sport.subarray(0, m));
  o.daddr.set(t.daddr.subarray(0, m));
  o.dport.set(t.dport.subarray(0, m));
  for (let i = m - 1; i > 0; i--) {
    const j = r() % (i + 1);
    for (const a of [o.saddr, o.sport, o.daddr, o.dport]) {
      const x = a[i];
      a[i] = a[j];
      a[j] = x;
    }
  }
  return o;
}

/** `iters` lookups cycling through the tuples; returns how many were found. */
function loop(h: InetHashinfo<BenchSock>, t: Tuples, n: number, iters: number): number {
  const { saddr, sport, daddr, dport } = t;
  let found = 0;
  let j = 0;
  for (let i = 0; i < iters; i++) {
    if (h.lookupEstablished(saddr[j], sport[j], daddr[j], dport[j]) !== null) found++;
    if (++j === n) j = 0;
  }
  return found;
}

/** ns per lookup: best of ROUNDS rounds of ~ROUND_NS each. */
function measure(h: InetHashinfo<BenchSock>, t: Tuples, expectHits: boolean): number {
  const n = t.saddr.length;
  // Warm up, and size one batch to ~5 ms so a round overshoots by little.
  let iters = 1024;
  const w0 = process.hrtime.bigint();
  for (;;) {
    const b0 = process.hrtime.bigint();
    loop(h, t, n, iters);
    const b1 = process.hrtime.bigint();
    if (b1 - w0 >= WARMUP_NS) break;
    if (b1 - b0 < BATCH_NS) iters *= 2;
  }
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    let done = 0;
    let found = 0;
    const t0 = process.hrtime.bigint();
    let el = 0n;
    while (el < ROUND_NS) {
      found += loop(h, t, n, iters);
      done += iters;
      el = process.hrtime.bigint() - t0;
    }
    if (found !== (expectHits ? done : 0)) throw new Error(`lookup answered wrongly: ${found} of ${done} found`);
    best = Math.min(best, Number(el) / done);
  }
  return best;
}

export async function benchLookup(): Promise<{ n: number; nsPerLookup: number }[]> {
  const out: LookupFigure[] = [];
  for (const n of SIZES) {
    const { h, seq, miss } = build(n);
    const nsPerLookup = measure(h, shuffled(seq, n), true);
    const seqNsPerLookup = measure(h, seq, true);
    const hotNsPerLookup = measure(h, shuffled(seq, Math.min(n, 1000)), true);
    const missNsPerLookup = measure(h, miss, false);
    out.push({ n, nsPerLookup, seqNsPerLookup, hotNsPerLookup, missNsPerLookup });
  }
  return out;
}

/** An IPv6 connection in the bench. */
class BenchSock6 extends InetSockBase {
  override state = TCP_ESTABLISHED;
  constructor() {
    super();
    this.setFamily6();
    this.ipv6 = true;
  }
}

export interface Lookup6Figure {
  n: number;
  /** lookupEstablished6, one hit, tuples shuffled, addresses read in place from packet headers. */
  nsPerLookup: number;
  /** One lookup that finds nothing. */
  missNsPerLookup: number;
}

/**
 * The IPv6 half of ehash: n connections from random peers in 2001:db8::/32
 * to fd00::2 port 80/443; each tuple kept as a 40-byte IPv6 header (source
 * at 8, destination at 24) that lookupEstablished6 reads in place, as
 * tcp_v6_rcv does. Figures: best of ROUNDS, like the IPv4 ones.
 */
export async function benchLookup6(): Promise<Lookup6Figure[]> {
  const out: Lookup6Figure[] = [];
  for (const n of SIZES) {
    const r = rng(0x7f4a7c15 ^ n);
    const h = new InetHashinfo<BenchSock6>({ random: r });
    const hdrs = Buffer.alloc(n * 40);
    const sport = new Uint16Array(n);
    const dport = new Uint16Array(n);
    const local = Buffer.from('fd000000000000000000000000000002', 'hex');
    for (let i = 0; i < n; i++) {
      const sk = new BenchSock6();
      sk.v6RcvSaddr!.set(local);
      const peer = sk.v6Daddr!;
      peer[0] = 0x20;
      peer[1] = 0x01;
      peer[2] = 0x0d;
      peer[3] = 0xb8;
      for (let k = 4; k < 16; k += 4) new DataView(peer.buffer, peer.byteOffset).setUint32(k, r());
      sk.num = i & 2 ? 443 : 80;
      sk.dport = 1024 + (r() % 64000);
      hdrs.set(peer, i * 40 + 8);
      hdrs.set(local, i * 40 + 24);
      sport[i] = sk.dport;
      dport[i] = sk.num;
      h.ehashInsert(sk);
    }
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const sr = rng(0x2545f491 ^ n);
    for (let i = n - 1; i > 0; i--) {
      const j = sr() % (i + 1);
      const x = order[i];
      order[i] = order[j];
      order[j] = x;
    }
    const run = (iters: number, miss: boolean): number => {
      let found = 0;
      let j = 0;
      for (let i = 0; i < iters; i++) {
        const k = order[j];
        const o = k * 40;
        if (h.lookupEstablished6(hdrs, o + 8, sport[k], hdrs, o + 24, miss ? 8080 : dport[k]) !== null) found++;
        if (++j === n) j = 0;
      }
      return found;
    };
    const measure6 = (miss: boolean): number => {
      let iters = 1024;
      const w0 = process.hrtime.bigint();
      for (;;) {
        const b0 = process.hrtime.bigint();
        run(iters, miss);
        const b1 = process.hrtime.bigint();
        if (b1 - w0 >= WARMUP_NS) break;
        if (b1 - b0 < BATCH_NS) iters *= 2;
      }
      let best = Infinity;
      for (let round = 0; round < ROUNDS; round++) {
        let done = 0;
        let found = 0;
        const t0 = process.hrtime.bigint();
        let el = 0n;
        while (el < ROUND_NS) {
          found += run(iters, miss);
          done += iters;
          el = process.hrtime.bigint() - t0;
        }
        if (found !== (miss ? 0 : done)) throw new Error(`lookupEstablished6 answered wrongly: ${found} of ${done} found`);
        best = Math.min(best, Number(el) / done);
      }
      return best;
    };
    out.push({ n, nsPerLookup: measure6(false), missNsPerLookup: measure6(true) });
  }
  return out;
}

function table(figs: LookupFigure[]): string {
  const base = figs[0];
  const rows = [['sockets', 'hit ns', 'ratio', 'seq ns', 'ratio', 'hot ns', 'ratio', 'miss ns', 'ratio']];
  const cell = (v: number, b: number) => [v.toFixed(1), (v / b).toFixed(2)];
  for (const f of figs) {
    rows.push([
      f.n.toLocaleString('en-US'),
      ...cell(f.nsPerLookup, base.nsPerLookup),
      ...cell(f.seqNsPerLookup, base.seqNsPerLookup),
      ...cell(f.hotNsPerLookup, base.hotNsPerLookup),
      ...cell(f.missNsPerLookup, base.missNsPerLookup),
    ]);
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((s, c) => s.padStart(w[c])).join('  ')).join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const t0 = Date.now();
  const figs = (await benchLookup()) as LookupFigure[];
  console.log('lookupEstablished (IPv4), ns per lookup; ratio to 1 socket');
  console.log(table(figs));
  console.log('\nlookupEstablished6 (IPv6, addresses in place), ns per lookup');
  console.log('sockets  hit ns  miss ns');
  for (const f of await benchLookup6()) console.log(`${f.n.toLocaleString('en-US').padStart(7)}  ${f.nsPerLookup.toFixed(1).padStart(6)}  ${f.missNsPerLookup.toFixed(1).padStart(7)}`);
  console.log(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}
