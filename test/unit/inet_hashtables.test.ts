import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InetHashinfo } from '../../src/net/ipv4/inet_hashtables.js';
import { SeededRandom } from '../../src/lib/random.js';
import { parseIpv4 } from '../../src/lib/addr.js';
import {
  SockCommon,
  TCP_CLOSE,
  TCP_ESTABLISHED,
  TCP_FIN_WAIT2,
  TCP_LISTEN,
  TCP_NEW_SYN_RECV,
  TCP_SYN_SENT,
  TCP_TIME_WAIT,
} from '../../src/net/core/sock.js';
import { EADDRINUSE, EADDRNOTAVAIL, EINVAL } from '../../src/uapi.js';

const ip = (s: string): number => {
  const a = parseIpv4(s);
  if (a === null) throw new Error(`bad address ${s}`);
  return a;
};
const ANY = 0;
const LOCAL = ip('10.0.0.2');
const LOCAL2 = ip('10.0.0.3');
const PEER = ip('192.168.1.10');
const PEER2 = ip('192.168.1.11');

interface SkOpts {
  state?: number;
  reuse?: boolean;
  reuseport?: boolean;
  uid?: number;
}

class Sk extends SockCommon {
  constructor(o: SkOpts = {}) {
    super();
    this.state = o.state ?? TCP_CLOSE;
    this.reuse = o.reuse ?? false;
    this.reuseport = o.reuseport ?? false;
    this.uid = o.uid ?? 0;
  }
}

function tables(opts: { seed?: number; portRange?: [number, number]; ehashBuckets?: number } = {}): InetHashinfo<Sk> {
  const r = new SeededRandom(opts.seed ?? 12345);
  return new InetHashinfo<Sk>({ random: () => r.u32(), portRange: opts.portRange, ehashBuckets: opts.ehashBuckets });
}

/** A socket with a full 4-tuple, us laddr:lport, peer raddr:rport. */
function connected(laddr: number, lport: number, raddr: number, rport: number, state = TCP_ESTABLISHED): Sk {
  const sk = new Sk({ state });
  sk.rcvSaddr = laddr;
  sk.num = lport;
  sk.daddr = raddr;
  sk.dport = rport;
  return sk;
}

/** A socket bound (through the tables) to addr:port. */
function bound(h: InetHashinfo<Sk>, addr: number, port: number, o: SkOpts = {}): Sk {
  const sk = new Sk(o);
  assert.equal(h.bhash.bind(sk, addr, port), 0, 'setup bind');
  return sk;
}

// --- established hash ---------------------------------------------------------

test('ehash: insert, look up by the segment (peer is the source), remove', () => {
  const h = tables();
  const sk = connected(LOCAL, 80, PEER, 40000);
  h.ehashInsert(sk);
  assert.equal(h.established, 1);
  assert.equal(h.lookupEstablished(PEER, 40000, LOCAL, 80), sk);
  // Every field of the tuple matters, and direction matters.
  const misses: [number, number, number, number][] = [
    [LOCAL, 80, PEER, 40000], // reversed
    [PEER2, 40000, LOCAL, 80],
    [PEER, 40001, LOCAL, 80],
    [PEER, 40000, LOCAL2, 80],
    [PEER, 40000, LOCAL, 81],
  ];
  for (const [sa, sp, da, dp] of misses) assert.equal(h.lookupEstablished(sa, sp, da, dp), null, `${sa}:${sp} -> ${da}:${dp}`);
  h.ehashRemove(sk);
  assert.equal(h.established, 0);
  assert.equal(sk.hashLinks.inEhash, false);
  assert.equal(h.lookupEstablished(PEER, 40000, LOCAL, 80), null);
  h.ehashRemove(sk); // a second remove is a no-op
  assert.equal(h.established, 0);
  assert.throws(() => {
    h.ehashInsert(sk);
    h.ehashInsert(sk);
  }, /already/);
});

test('ehash: every state with a 4-tuple is found (request sock, SYN_SENT, TIME_WAIT, FIN_WAIT2)', () => {
  const h = tables();
  const cases = [
    { state: TCP_NEW_SYN_RECV, rport: 1000 },
    { state: TCP_SYN_SENT, rport: 1001 },
    { state: TCP_ESTABLISHED, rport: 1002 },
    { state: TCP_FIN_WAIT2, rport: 1003 },
    { state: TCP_TIME_WAIT, rport: 1004 },
  ];
  const socks = cases.map((c) => connected(LOCAL, 443, PEER, c.rport, c.state));
  for (const sk of socks) h.ehashInsert(sk);
  for (const [i, c] of cases.entries()) {
    const found = h.lookupEstablished(PEER, c.rport, LOCAL, 443);
    assert.equal(found, socks[i]);
    assert.equal(found!.state, c.state);
  }
  assert.equal(h.established, 5);
});

test('ehash: 100 000 sockets, the table doubles from 16 slots, every one found, removal keeps the rest', () => {
  const h = tables({ ehashBuckets: 16 });
  assert.equal(h.ehashBuckets, 16);
  const N = 100_000;
  const socks: Sk[] = [];
  for (let i = 0; i < N; i++) {
    // 1000 peers x 100 ports each, onto two local services.
    const sk = connected(i & 1 ? LOCAL : LOCAL2, i & 1 ? 80 : 443, (PEER + ((i / 100) | 0)) >>> 0, 20000 + (i % 100));
    h.ehashInsert(sk);
    socks.push(sk);
  }
  assert.equal(h.established, N);
  assert.equal(h.ehashBuckets, 262144); // 2^18: the first power of two >= 2 * 100 000 (at most half full)
  for (const sk of socks) assert.equal(h.lookupEstablished(sk.daddr, sk.dport, sk.rcvSaddr, sk.num), sk);
  assert.equal(h.lookupEstablished(PEER, 19999, LOCAL, 80), null);
  for (let i = 0; i < N; i += 2) h.ehashRemove(socks[i]);
  assert.equal(h.established, N / 2);
  for (let i = 0; i < N; i++) {
    const sk = socks[i];
    assert.equal(h.lookupEstablished(sk.daddr, sk.dport, sk.rcvSaddr, sk.num), i % 2 ? sk : null);
  }
  assert.equal([...h.sockets()].length, N / 2);
});

test('ehash: random insert/remove churn in a small table (probe runs wrap and shift back) matches a model', () => {
  // Few distinct tuples in a table that starts at 16 slots: long probe runs,
  // runs wrapping past the last slot, removals from the middle of a run.
  for (const seed of [1, 2, 3]) {
    const h = tables({ seed, ehashBuckets: 16 });
    const r = new SeededRandom(seed * 7919);
    const live = new Map<number, Sk>();
    const key = (i: number) => [(PEER + (i % 7)) >>> 0, 1000 + i, LOCAL, 80] as const;
    for (let step = 0; step < 4000; step++) {
      const i = r.u32() % 60;
      const sk = live.get(i);
      if (sk === undefined) {
        const [pa, pp, la, lp] = key(i);
        const n = connected(la, lp, pa, pp);
        h.ehashInsert(n);
        live.set(i, n);
      } else {
        h.ehashRemove(sk);
        live.delete(i);
      }
      if (step % 97 === 0 || step > 3900) {
        for (let j = 0; j < 60; j++) {
          const [pa, pp, la, lp] = key(j);
          assert.equal(h.lookupEstablished(pa, pp, la, lp), live.get(j) ?? null, `seed ${seed} step ${step} tuple ${j}`);
        }
        assert.equal(h.established, live.size);
      }
    }
    assert.equal([...h.sockets()].length, live.size);
  }
});

test('ehash: the bucket index depends on the secret (two seeds spread one tuple set differently)', () => {
  // Same 1 000 tuples, 1 024 buckets: a decent keyed hash leaves ~37% empty
  // buckets; a degenerate one (e.g. ports only) would pile them into few chains.
  for (const seed of [1, 2]) {
    const h = tables({ seed, ehashBuckets: 1024 });
    for (let i = 0; i < 1000; i++) h.ehashInsert(connected(LOCAL, 80, PEER, 30000 + i));
    let longest = 0;
    // Occupancy per bucket, from each socket's stored hash (no growth below 1 025 entries).
    const seen = new Map<number, number>();
    for (const sk of h.sockets()) {
      const b = sk.hashLinks.hash & 1023;
      const n = (seen.get(b) ?? 0) + 1;
      seen.set(b, n);
      if (n > longest) longest = n;
    }
    assert.ok(seen.size > 550 && seen.size < 720, `occupied buckets ${seen.size}`);
    assert.ok(longest <= 8, `longest chain ${longest}`);
  }
  const a = tables({ seed: 1 });
  const b = tables({ seed: 2 });
  const x = connected(LOCAL, 80, PEER, 30000);
  const y = connected(LOCAL, 80, PEER, 30000);
  a.ehashInsert(x);
  b.ehashInsert(y);
  assert.notEqual(x.hashLinks.hash, y.hashLinks.hash);
});

test('lookups take addresses as uint32 or as their int32 view (a | 0)', () => {
  const h = tables();
  const us = ip('192.168.0.2'); // >= 2^31: the int32 view is negative
  const peer = ip('172.16.5.9');
  assert.ok(us > 0x7fffffff && (us | 0) < 0);
  const sk = connected(us, 443, peer, 33000);
  h.ehashInsert(sk);
  assert.equal(h.lookupEstablished(peer, 33000, us, 443), sk);
  assert.equal(h.lookupEstablished(peer | 0, 33000, us | 0, 443), sk);
  const l = bound(h, us, 443);
  assert.equal(h.listen(l), 0);
  assert.equal(h.lookupListener(peer | 0, 1, us | 0, 443), l);
  assert.equal(h.lookupListener(peer, 1, us, 443), l);
});

// --- listening hash -----------------------------------------------------------

test('listeners: the exact address beats the wildcard; wrong port or address finds none', () => {
  const h = tables();
  // On Linux a wildcard and a specific listener share a port only under SO_REUSEPORT (one owner).
  const wild80 = bound(h, ANY, 80, { reuseport: true });
  const exact80 = bound(h, LOCAL, 80, { reuseport: true });
  const exact8080 = bound(h, LOCAL2, 8080);
  for (const sk of [wild80, exact80, exact8080]) assert.equal(h.listen(sk), 0);
  assert.equal(h.listening, 3);
  const cases: { daddr: number; dport: number; want: Sk | null }[] = [
    { daddr: LOCAL, dport: 80, want: exact80 },
    { daddr: LOCAL2, dport: 80, want: wild80 },
    { daddr: LOCAL2, dport: 8080, want: exact8080 },
    { daddr: LOCAL, dport: 8080, want: null },
    { daddr: LOCAL, dport: 81, want: null },
  ];
  for (const c of cases) assert.equal(h.lookupListener(PEER, 5555, c.daddr, c.dport), c.want, `${c.daddr}:${c.dport}`);
  h.unlisten(exact80);
  assert.equal(h.lookupListener(PEER, 5555, LOCAL, 80), wild80);
  assert.equal(h.listening, 2);
  assert.equal(exact80.state, TCP_LISTEN, 'unlisten leaves the state to the caller');
});

test('listeners: the listening hash grows past 32 buckets and still finds every listener', () => {
  const h = tables();
  const socks: Sk[] = [];
  for (let port = 1000; port < 1200; port++) {
    const sk = bound(h, port & 1 ? LOCAL : ANY, port);
    assert.equal(h.listen(sk), 0);
    socks.push(sk);
  }
  for (const sk of socks) assert.equal(h.lookupListener(PEER, 1, LOCAL, sk.num), sk);
  assert.equal(h.lookupListener(PEER, 1, LOCAL, 1200), null);
});

test('listeners: a SO_REUSEPORT group keeps a flow on one member and spreads flows over all', () => {
  const h = tables();
  const members = [0, 1, 2, 3].map(() => bound(h, ANY, 443, { reuseport: true, uid: 1000 }));
  for (const sk of members) assert.equal(h.listen(sk), 0);
  assert.equal(members[0].hashLinks.reuseportGroup!.socks.length, 4);
  const first = h.lookupListener(PEER, 50000, LOCAL, 443);
  for (let i = 0; i < 10; i++) assert.equal(h.lookupListener(PEER, 50000, LOCAL, 443), first);
  const hits = new Map<Sk, number>();
  for (let p = 0; p < 4000; p++) {
    const sk = h.lookupListener((PEER + (p >> 8)) >>> 0, 10000 + p, LOCAL, 443)!;
    hits.set(sk, (hits.get(sk) ?? 0) + 1);
  }
  assert.equal(hits.size, 4);
  for (const [, n] of hits) assert.ok(n > 800 && n < 1200, `member got ${n} of 4000`);
  // A member that stops listening is never picked again.
  h.unlisten(members[2]);
  assert.equal(members[0].hashLinks.reuseportGroup!.socks.length, 3);
  for (let p = 0; p < 1000; p++) assert.notEqual(h.lookupListener(PEER, 10000 + p, LOCAL, 443), members[2]);
});

test('listeners: another owner on the same port forms no group with a reuseport listener and cannot listen', () => {
  const h = tables();
  const a = bound(h, ANY, 443, { reuseport: true, uid: 1000 });
  assert.equal(h.listen(a), 0);
  const b = new Sk({ reuseport: true, uid: 1001 });
  assert.equal(h.bhash.bind(b, ANY, 443), -EADDRINUSE);
  assert.equal(h.lookupListener(PEER, 1, LOCAL, 443), a);
});

// --- bind ---------------------------------------------------------------------

interface Side {
  addr: number;
  reuse?: boolean;
  reuseport?: boolean;
  uid?: number;
  /** The state the first socket is in when the second binds. */
  state?: number;
}

const BIND_MATRIX: { name: string; a: Side; b: Side; want: number }[] = [
  { name: 'same port, no options', a: { addr: ANY }, b: { addr: ANY }, want: -EADDRINUSE },
  { name: 'both SO_REUSEADDR, neither listening', a: { addr: ANY, reuse: true }, b: { addr: ANY, reuse: true }, want: 0 },
  { name: 'both SO_REUSEADDR, the first listening', a: { addr: ANY, reuse: true, state: TCP_LISTEN }, b: { addr: ANY, reuse: true }, want: -EADDRINUSE },
  { name: 'only the first SO_REUSEADDR', a: { addr: ANY, reuse: true }, b: { addr: ANY }, want: -EADDRINUSE },
  { name: 'only the second SO_REUSEADDR', a: { addr: ANY }, b: { addr: ANY, reuse: true }, want: -EADDRINUSE },
  { name: 'wildcard then specific', a: { addr: ANY }, b: { addr: LOCAL }, want: -EADDRINUSE },
  { name: 'specific then wildcard', a: { addr: LOCAL }, b: { addr: ANY }, want: -EADDRINUSE },
  { name: 'wildcard then specific, both SO_REUSEADDR', a: { addr: ANY, reuse: true }, b: { addr: LOCAL, reuse: true }, want: 0 },
  { name: 'specific then wildcard, both SO_REUSEADDR', a: { addr: LOCAL, reuse: true }, b: { addr: ANY, reuse: true }, want: 0 },
  { name: 'wildcard listener, specific SO_REUSEADDR', a: { addr: ANY, reuse: true, state: TCP_LISTEN }, b: { addr: LOCAL, reuse: true }, want: -EADDRINUSE },
  { name: 'different specific addresses', a: { addr: LOCAL }, b: { addr: LOCAL2 }, want: 0 },
  { name: 'different addresses, the first listening', a: { addr: LOCAL, state: TCP_LISTEN }, b: { addr: LOCAL2 }, want: 0 },
  { name: 'same specific address', a: { addr: LOCAL }, b: { addr: LOCAL }, want: -EADDRINUSE },
  { name: 'SO_REUSEPORT, same uid', a: { addr: ANY, reuseport: true, uid: 1000 }, b: { addr: ANY, reuseport: true, uid: 1000 }, want: 0 },
  { name: 'SO_REUSEPORT, same uid, first listening', a: { addr: ANY, reuseport: true, uid: 1000, state: TCP_LISTEN }, b: { addr: ANY, reuseport: true, uid: 1000 }, want: 0 },
  { name: 'SO_REUSEPORT, different uid', a: { addr: ANY, reuseport: true, uid: 1000 }, b: { addr: ANY, reuseport: true, uid: 1001 }, want: -EADDRINUSE },
  { name: 'SO_REUSEPORT on one side only', a: { addr: ANY, reuseport: true }, b: { addr: ANY }, want: -EADDRINUSE },
  { name: 'SO_REUSEPORT, different uid, different addresses', a: { addr: LOCAL, reuseport: true, uid: 1 }, b: { addr: LOCAL2, reuseport: true, uid: 2 }, want: 0 },
  { name: 'SO_REUSEPORT, different uid, holder in TIME_WAIT', a: { addr: ANY, reuseport: true, uid: 1000, state: TCP_TIME_WAIT }, b: { addr: ANY, reuseport: true, uid: 1001 }, want: 0 },
  { name: 'TIME_WAIT holds its port', a: { addr: ANY, state: TCP_TIME_WAIT }, b: { addr: ANY }, want: -EADDRINUSE },
  { name: 'TIME_WAIT, both SO_REUSEADDR', a: { addr: ANY, reuse: true, state: TCP_TIME_WAIT }, b: { addr: ANY, reuse: true }, want: 0 },
  { name: 'ESTABLISHED holder, both SO_REUSEADDR', a: { addr: LOCAL, reuse: true, state: TCP_ESTABLISHED }, b: { addr: ANY, reuse: true }, want: 0 },
];

for (const c of BIND_MATRIX) {
  test(`bind conflict: ${c.name} -> ${c.want === 0 ? 'ok' : 'EADDRINUSE'}`, () => {
    const h = tables();
    const a = new Sk({ reuse: c.a.reuse, reuseport: c.a.reuseport, uid: c.a.uid });
    assert.equal(h.bhash.bind(a, c.a.addr, 8000), 0);
    if (c.a.state === TCP_LISTEN) assert.equal(h.listen(a), 0);
    else if (c.a.state !== undefined) a.state = c.a.state;
    const b = new Sk({ reuse: c.b.reuse, reuseport: c.b.reuseport, uid: c.b.uid });
    assert.equal(h.bhash.bind(b, c.b.addr, 8000), c.want);
    if (c.want === 0) {
      assert.equal(b.num, 8000);
      assert.equal(b.rcvSaddr, c.b.addr);
      assert.equal(h.bhash.bucket(8000)!.count, 2);
    } else {
      assert.equal(b.num, 0);
      assert.equal(b.rcvSaddr, 0);
      assert.equal(b.hashLinks.bound, false);
      assert.equal(h.bhash.bucket(8000)!.count, 1);
    }
  });
}

test('bind: the SO_REUSEADDR fast path stops once an owner listens', () => {
  const h = tables();
  const a = bound(h, ANY, 8000, { reuse: true });
  bound(h, ANY, 8000, { reuse: true });
  assert.equal(h.bhash.bucket(8000)!.fastreuse, 1);
  assert.equal(h.listen(a), 0);
  assert.equal(h.bhash.bucket(8000)!.fastreuse, 0);
  assert.equal(h.bhash.bind(new Sk({ reuse: true }), ANY, 8000), -EADDRINUSE);
});

test('bind: unbind frees the port; the bucket goes with its last owner', () => {
  const h = tables();
  const a = bound(h, ANY, 8000);
  assert.equal(h.bhash.bind(new Sk(), ANY, 8000), -EADDRINUSE);
  h.unbind(a);
  assert.equal(a.num, 0);
  assert.equal(h.bound, 0);
  assert.equal(h.bhash.bucket(8000), undefined);
  const b = new Sk();
  assert.equal(h.bhash.bind(b, ANY, 8000), 0);
  assert.equal(h.bound, 1);
  assert.equal(h.bhash.bind(b, ANY, 8001), -EINVAL, 'already bound');
  h.unbind(a); // not bound any more: a no-op
  assert.equal(h.bound, 1);
});

test('bind(port 0): picks a port in the range, never one in use, until none is left', () => {
  const h = tables({ portRange: [40000, 40009] });
  const taken = bound(h, ANY, 40003); // held by an explicit bind
  const ports = new Set<number>([taken.num]);
  for (let i = 0; i < 9; i++) {
    const sk = new Sk();
    assert.equal(h.bhash.bind(sk, ANY, 0), 0);
    assert.ok(sk.num >= 40000 && sk.num <= 40009, `port ${sk.num}`);
    assert.ok(!ports.has(sk.num), `port ${sk.num} handed out twice`);
    ports.add(sk.num);
  }
  assert.equal(ports.size, 10);
  const last = new Sk();
  assert.equal(h.bhash.bind(last, ANY, 0), -EADDRINUSE);
  assert.equal(last.num, 0);
  // A socket on another specific address does not overlap the one on LOCAL.
  const h2 = tables({ portRange: [40000, 40001] });
  const onLocal = bound(h2, LOCAL, 0);
  const onLocal2 = bound(h2, LOCAL, 0);
  assert.notEqual(onLocal.num, onLocal2.num);
  assert.equal(h2.bhash.bind(new Sk(), LOCAL, 0), -EADDRINUSE);
  assert.equal(h2.bhash.bind(new Sk(), LOCAL2, 0), 0);
});

test('bind(port 0): odd ports first (even ones are left to connect), in the default range', () => {
  const h = tables();
  for (let i = 0; i < 50; i++) {
    const sk = bound(h, ANY, 0);
    assert.ok(sk.num >= 32768 && sk.num <= 60999, `port ${sk.num}`);
    assert.equal(sk.num % 2, 1, `port ${sk.num}`);
  }
});

test('bind(port 0) with SO_REUSEADDR searches the lower half of the range first', () => {
  const h = tables({ portRange: [40000, 40099] });
  for (let i = 0; i < 20; i++) {
    const sk = bound(h, ANY, 0, { reuse: true });
    assert.ok(sk.num >= 40000 && sk.num < 40050, `port ${sk.num}`);
  }
});

// --- listen -------------------------------------------------------------------

test('listen: re-checks the port as a listener', () => {
  const h = tables();
  // Two SO_REUSEADDR sockets may share a bound port; only one may listen on it.
  const a = bound(h, ANY, 8080, { reuse: true });
  const b = bound(h, ANY, 8080, { reuse: true });
  assert.equal(h.listen(a), 0);
  assert.equal(a.state, TCP_LISTEN);
  assert.equal(h.listen(b), -EADDRINUSE);
  assert.equal(b.state, TCP_CLOSE);
  assert.equal(h.listening, 1);
  assert.equal(b.hashLinks.bound, true, 'the failed listener keeps its bind');
  // Once the listener is gone the other may listen.
  h.unbind(a);
  assert.equal(h.listen(b), 0);
  assert.equal(h.lookupListener(PEER, 1, LOCAL, 8080), b);

  // Wildcard and specific, SO_REUSEADDR only: both bind, only the first to listen gets to.
  const w = bound(h, ANY, 7070, { reuse: true });
  const s = bound(h, LOCAL, 7070, { reuse: true });
  assert.equal(h.listen(s), 0);
  assert.equal(h.listen(w), -EADDRINUSE);

  // Both on the wildcard with SO_REUSEPORT and one uid: both listen, one group.
  const c = bound(h, ANY, 9090, { reuseport: true, uid: 7 });
  const d = bound(h, ANY, 9090, { reuseport: true, uid: 7 });
  assert.equal(h.listen(c), 0);
  assert.equal(h.listen(d), 0);
  assert.equal(c.hashLinks.reuseportGroup, d.hashLinks.reuseportGroup);
  assert.equal(h.listen(d), 0, 'listening again is a no-op');
  assert.equal(h.listening, 4);
});

test('listen: an unbound socket is given an ephemeral port', () => {
  const h = tables({ portRange: [40000, 40009] });
  const sk = new Sk();
  assert.equal(h.listen(sk), 0);
  assert.ok(sk.num >= 40000 && sk.num <= 40009);
  assert.equal(h.lookupListener(PEER, 1, LOCAL, sk.num), sk);
});

test('inheritPort: an accepted child holds the port after its listener is gone', () => {
  const h = tables();
  const l = bound(h, ANY, 80);
  assert.equal(h.listen(l), 0);
  const child = connected(LOCAL, 0, PEER, 5000);
  h.bhash.inheritPort(child, l);
  assert.equal(child.num, 80);
  h.ehashInsert(child);
  h.unbind(l);
  assert.equal(h.listening, 0);
  assert.equal(h.bhash.bucket(80)!.count, 1);
  assert.equal(h.bhash.bind(new Sk(), ANY, 80), -EADDRINUSE);
  assert.equal(h.lookupEstablished(PEER, 5000, LOCAL, 80), child);
});

// --- connect ------------------------------------------------------------------

test('connectPort: ephemeral ports in [32768, 60999], a new one per connection to one destination', () => {
  const h = tables();
  const ports: number[] = [];
  for (let i = 0; i < 200; i++) {
    const sk = new Sk({ state: TCP_SYN_SENT });
    assert.equal(h.connectPort(sk, LOCAL, PEER, 80), 0);
    assert.ok(sk.num >= 32768 && sk.num <= 60999, `port ${sk.num}`);
    assert.equal(sk.rcvSaddr, LOCAL);
    assert.equal(sk.daddr, PEER);
    assert.equal(sk.dport, 80);
    assert.equal(h.lookupEstablished(PEER, 80, LOCAL, sk.num), sk);
    ports.push(sk.num);
  }
  assert.equal(new Set(ports).size, 200, 'no port reused for the same destination');
  for (let i = 1; i < ports.length; i++) assert.notEqual(ports[i], ports[i - 1]);
  assert.equal(ports[0] % 2, 0, 'the first try is an even port');
  assert.equal(h.established, 200);
  assert.equal(h.bound, 200);
  assert.equal(h.bhash.bucket(ports[0])!.fastreuse, -1);
});

test('connectPort: destinations start at different offsets', () => {
  const h = tables();
  const first = new Set<number>();
  for (let d = 0; d < 20; d++) {
    const sk = new Sk();
    assert.equal(h.connectPort(sk, LOCAL, (PEER + d) >>> 0, 443), 0);
    first.add(sk.num);
  }
  assert.ok(first.size >= 18, `${first.size} distinct first ports for 20 destinations`);
});

test('connectPort: exhaustion gives EADDRNOTAVAIL, another destination shares the ports', () => {
  const h = tables({ portRange: [40000, 40009] });
  const ports = new Set<number>();
  for (let i = 0; i < 10; i++) {
    const sk = new Sk();
    assert.equal(h.connectPort(sk, LOCAL, PEER, 80), 0);
    ports.add(sk.num);
  }
  assert.equal(ports.size, 10);
  const sk = new Sk();
  assert.equal(h.connectPort(sk, LOCAL, PEER, 80), -EADDRNOTAVAIL);
  assert.deepEqual([sk.num, sk.rcvSaddr, sk.daddr, sk.dport, sk.hashLinks.inEhash], [0, 0, 0, 0, false]);
  // The same ports towards another port or host are unique 4-tuples.
  for (const [daddr, dport] of [[PEER, 81], [PEER2, 80]]) {
    const other = new Sk();
    assert.equal(h.connectPort(other, LOCAL, daddr, dport), 0);
    assert.ok(ports.has(other.num));
    assert.equal(h.bhash.bucket(other.num)!.count, 2);
  }
});

test('connectPort: skips ports that bind() handed out', () => {
  const h = tables({ portRange: [40000, 40009] });
  for (const port of [40000, 40002, 40004, 40006, 40008]) bound(h, ANY, port, { reuse: true });
  const got = new Set<number>();
  for (let i = 0; i < 5; i++) {
    const sk = new Sk();
    assert.equal(h.connectPort(sk, LOCAL, PEER, 80), 0);
    got.add(sk.num);
  }
  assert.deepEqual([...got].sort(), [40001, 40003, 40005, 40007, 40009]);
  assert.equal(h.connectPort(new Sk(), LOCAL, PEER, 80), -EADDRNOTAVAIL);
});

test('connectPort: a TIME_WAIT 4-tuple is reused only when twReuse agrees, and is unhashed', () => {
  const h = tables({ portRange: [40000, 40009] });
  const socks: Sk[] = [];
  for (let i = 0; i < 10; i++) {
    const sk = new Sk({ state: TCP_SYN_SENT });
    assert.equal(h.connectPort(sk, LOCAL, PEER, 80), 0);
    socks.push(sk);
  }
  const tw = socks[4];
  tw.state = TCP_TIME_WAIT;
  const twPort = tw.num;
  assert.equal(h.connectPort(new Sk(), LOCAL, PEER, 80), -EADDRNOTAVAIL, 'no twReuse');
  const asked: [Sk, boolean][] = [];
  assert.equal(h.connectPort(new Sk(), LOCAL, PEER, 80, (t, b) => (asked.push([t, b]), false)), -EADDRNOTAVAIL);
  assert.deepEqual(asked, [[tw, false]]);
  assert.equal(h.lookupEstablished(PEER, 80, LOCAL, twPort), tw);

  const sk = new Sk({ state: TCP_SYN_SENT });
  assert.equal(h.connectPort(sk, LOCAL, PEER, 80, (t) => t === tw), 0);
  assert.equal(sk.num, twPort);
  assert.equal(h.lookupEstablished(PEER, 80, LOCAL, twPort), sk);
  assert.equal(tw.hashLinks.inEhash, false);
  assert.equal(tw.hashLinks.bound, false);
  assert.equal(h.established, 10);
  assert.equal(h.bhash.bucket(twPort)!.count, 1);
  assert.equal(h.bhash.bucket(twPort)!.owners, sk);
});

test('connectPort after bind: alone on the port it just hashes; shared, the 4-tuple must be unique', () => {
  const h = tables();
  const alone = bound(h, ANY, 5000);
  assert.equal(h.connectPort(alone, LOCAL, PEER, 80), 0);
  assert.equal(alone.num, 5000);
  assert.equal(alone.rcvSaddr, LOCAL);
  assert.equal(h.lookupEstablished(PEER, 80, LOCAL, 5000), alone);

  const a = bound(h, ANY, 6000, { reuse: true });
  const b = bound(h, ANY, 6000, { reuse: true });
  assert.equal(h.connectPort(a, LOCAL, PEER, 80), 0);
  assert.equal(h.connectPort(b, LOCAL, PEER, 80), -EADDRNOTAVAIL);
  assert.deepEqual([b.rcvSaddr, b.daddr, b.dport, b.num], [0, 0, 0, 6000], 'unchanged on failure');
  assert.equal(h.connectPort(b, LOCAL, PEER, 81), 0);

  // With a TIME_WAIT holder: reusable when twReuse agrees, told it is the bound path.
  a.state = TCP_TIME_WAIT;
  const c = bound(h, ANY, 6000, { reuse: true });
  const seen: boolean[] = [];
  assert.equal(
    h.connectPort(c, LOCAL, PEER, 80, (_tw, boundPath) => (seen.push(boundPath), true)),
    0,
  );
  assert.deepEqual(seen, [true]);
  assert.equal(h.lookupEstablished(PEER, 80, LOCAL, 6000), c);
  assert.equal(a.hashLinks.inEhash, false);
});

// --- iteration ----------------------------------------------------------------

test('sockets(): every socket in any table exactly once', () => {
  const h = tables();
  const listener = bound(h, ANY, 80);
  h.listen(listener);
  const onlyBound = bound(h, LOCAL, 9000);
  const req = connected(LOCAL, 80, PEER, 1234, TCP_NEW_SYN_RECV); // ehash only
  h.ehashInsert(req);
  const child = connected(LOCAL, 0, PEER, 1235);
  h.bhash.inheritPort(child, listener); // bhash and ehash
  h.ehashInsert(child);
  const client = new Sk();
  assert.equal(h.connectPort(client, LOCAL, PEER2, 443), 0);
  const all = [...h.sockets()];
  assert.equal(all.length, 5);
  assert.deepEqual(new Set(all), new Set([listener, onlyBound, req, child, client]));
  assert.deepEqual([h.established, h.listening, h.bound], [3, 1, 4]);
});
