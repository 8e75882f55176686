/**
 * The lab's bottleneck parts on their own: the event heap's order, the
 * frame pool's growth, drop-tail's limits, CoDel's control law as
 * codel_impl.h runs it, fq_codel's round robin and its overflow drops from
 * the fattest queue, and CE marking that leaves a valid IPv4 header.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Codel, CodelQdisc, CodelVars, DROP_AQM, DROP_OVERLIMIT, DropTail, EventHeap, FqCodel, FramePool, type QueueSink, setCe, SLOT_BYTES } from '../../src/lab/queue.js';
import { ipFastCsum } from '../../src/lib/checksum.js';

/** An Ethernet+IPv4+UDP frame of `len` bytes from 10.0.0.`src` port `sport`, ECN field `ecn`, header checksum valid. */
function frame(len: number, src: number, sport: number, ecn = 0): Buffer {
  const f = Buffer.alloc(len);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f[15] = ecn;
  f.writeUInt16BE(len - 14, 16);
  f[22] = 64;
  f[23] = 17;
  f.writeUInt32BE(0x0a000000 + src, 26);
  f.writeUInt32BE(0x0a0000fe, 30);
  f.writeUInt16BE(sport, 34);
  f.writeUInt16BE(9, 36);
  const c = ipFastCsum(f, 14, 20);
  f.writeUInt16BE(c, 24);
  return f;
}

class Sink implements QueueSink {
  drops: [number, number][] = [];
  marks: number[] = [];
  constructor(readonly pool: FramePool) {}
  dropped(slot: number, why: number): void {
    this.drops.push([slot, why]);
    this.pool.release(slot);
  }
  marked(slot: number): void {
    this.marks.push(slot);
  }
}

test('EventHeap: earliest first, and events at the same time in the order pushed', () => {
  const h = new EventHeap();
  const times = [5, 1, 3, 1, 5, 0, 3, 1];
  times.forEach((t, i) => h.push(t, 0, i));
  // Past the initial capacity too.
  for (let i = 0; i < 3000; i++) h.push(10 + (i % 7), 1, 100 + i);
  const got: [number, number][] = [];
  while (h.size) {
    const t = h.peek();
    h.pop();
    got.push([t, h.popArg]);
  }
  const want = [
    ...times.map((t, i) => [t, i] as [number, number]),
    ...Array.from({ length: 3000 }, (_, i) => [10 + (i % 7), 100 + i] as [number, number]),
  ].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  assert.deepEqual(got, want);
  assert.equal(h.peek(), Infinity);
});

test('FramePool: slots are copies, recycled, and survive the arena growing', () => {
  const p = new FramePool(2);
  const a = p.alloc(frame(100, 1, 1), 0, 100);
  const b = p.alloc(frame(200, 2, 2), 0, 200);
  const c = p.alloc(frame(300, 3, 3), 0, 300); // grows
  assert.equal(p.capacity, 4);
  assert.equal(p.buf[a * SLOT_BYTES + 29], 1);
  assert.equal(p.buf[b * SLOT_BYTES + 29], 2);
  assert.equal(p.len[c], 300);
  p.release(b);
  assert.equal(p.alloc(frame(64, 4, 4), 0, 64), b, 'a released slot is used again');
  assert.equal(p.used, 3);
});

test('DropTail: a frame past the packet or byte limit is dropped on arrival; FIFO order', () => {
  const pool = new FramePool();
  const sink = new Sink(pool);
  const q = new DropTail(pool, sink, 3, Infinity);
  const slots = [0, 1, 2, 3].map((i) => pool.alloc(frame(1000, i, i), 0, 1000));
  for (const s of slots) q.enqueue(s, 0);
  assert.equal(q.packets, 3);
  assert.deepEqual(sink.drops, [[slots[3], DROP_OVERLIMIT]]);
  assert.deepEqual([q.dequeue(0), q.dequeue(0), q.dequeue(0), q.dequeue(0)], [slots[0], slots[1], slots[2], -1]);
  const qb = new DropTail(pool, sink, Infinity, 2500);
  const s1 = pool.alloc(frame(1500, 1, 1), 0, 1500);
  const s2 = pool.alloc(frame(1500, 2, 2), 0, 1500);
  const s3 = pool.alloc(frame(900, 3, 3), 0, 900);
  qb.enqueue(s1, 0);
  qb.enqueue(s2, 0);
  qb.enqueue(s3, 0);
  assert.equal(qb.bytes, 2400, 'the 1500-byte frame did not fit, the 900-byte one did');
});

test('CoDel: no drop before a whole interval above target; then drops spaced interval/sqrt(count)', () => {
  const pool = new FramePool();
  const sink = new Sink(pool);
  const q = new CodelQdisc(pool, sink, { targetMs: 5, intervalMs: 100, mtu: 1514, ecn: false }, 1000, Infinity);
  // A standing queue: 100 frames that all arrived at t=0, one taken per ms.
  for (let i = 0; i < 400; i++) q.enqueue(pool.alloc(frame(1500, 1, 1), 0, 1500), 0);
  const dropTimes: number[] = [];
  for (let t = 0; t <= 300; t++) {
    const before = sink.drops.length;
    const s = q.dequeue(t);
    if (s >= 0) pool.release(s);
    for (let k = before; k < sink.drops.length; k++) {
      assert.equal(sink.drops[k][1], DROP_AQM);
      dropTimes.push(t);
    }
  }
  // Above target from t=5 on: first_above_time = 5 + 100; the first drop at 105 (count 1), the next an
  // interval later, then 100/sqrt(2), 100/sqrt(3), ... after each.
  assert.equal(dropTimes[0], 105);
  assert.equal(dropTimes[1], 205);
  let next = 205;
  for (let c = 2; next + 100 / Math.sqrt(c) <= 300; c++) {
    next += 100 / Math.sqrt(c);
    assert.ok(dropTimes.includes(Math.ceil(next)), `a drop at ${Math.ceil(next)} ms (count ${c}): ${dropTimes}`);
  }
  assert.equal(q.vars.dropping, true);
});

test('CoDel: a queue back under target leaves the dropping state; one frame of backlog is never dropped', () => {
  const pool = new FramePool();
  const sink = new Sink(pool);
  const codel = new Codel(pool, sink, { targetMs: 5, intervalMs: 100, mtu: 1514, ecn: false });
  const v = new CodelVars();
  const s = pool.alloc(frame(1500, 1, 1), 0, 1500);
  pool.enq[s] = 0;
  assert.equal(codel.shouldDrop(s, v, 50, 3000), false, 'first time above target: the interval starts');
  assert.equal(v.firstAboveTime, 150);
  assert.equal(codel.shouldDrop(s, v, 150, 3000), true);
  assert.equal(codel.shouldDrop(s, v, 200, 1514), false, 'backlog of one MTU frame');
  assert.equal(v.firstAboveTime, 0);
  assert.equal(codel.shouldDrop(s, v, 4, 3000), false, 'below target');
});

test('CE marking: an ECT frame is marked, its header checksum still valid; a not-ECT frame is not', () => {
  const pool = new FramePool();
  const ect = pool.alloc(frame(200, 1, 1, 2), 0, 200);
  const plain = pool.alloc(frame(200, 1, 1, 0), 0, 200);
  assert.equal(setCe(pool, ect), true);
  const o = ect * SLOT_BYTES;
  assert.equal(pool.buf[o + 15] & 3, 3);
  assert.equal(ipFastCsum(pool.buf, o + 14, 20), 0, 'the header sums to zero');
  assert.equal(setCe(pool, plain), false);
  assert.equal(pool.buf[plain * SLOT_BYTES + 15], 0);
});

test('fq_codel: a queue keeps its turn while its deficit lasts, a new queue before the old ones; overflow drops from the head of the fattest', () => {
  const pool = new FramePool();
  const sink = new Sink(pool);
  const p = { targetMs: 5, intervalMs: 100, mtu: 1514, ecn: true };
  const q = new FqCodel(pool, sink, p, 1024, 1514, 20, Infinity, 12345);
  // Two sources hashing to different queues.
  let fat = 1;
  let thin = 2;
  const idx = (src: number) => q.classify(pool.alloc(frame(1000, src, src), 0, 1000));
  while (idx(thin) === idx(fat)) thin++;
  const fatSlots: number[] = [];
  for (let i = 0; i < 16; i++) {
    const s = pool.alloc(frame(1000, fat, fat), 0, 1000);
    fatSlots.push(s);
    q.enqueue(s, 0);
  }
  // The thin flow arrives later: it is a new flow, served before the old one's next turn.
  const thinSlots = [0, 1, 2].map(() => pool.alloc(frame(1000, thin, thin), 0, 1000));
  const first = q.dequeue(1);
  assert.equal(first, fatSlots[0]);
  for (const s of thinSlots) q.enqueue(s, 1);
  const order: number[] = [];
  for (let i = 0; i < 6; i++) order.push(q.dequeue(2));
  const who = order.map((s) => (thinSlots.includes(s) ? 'thin' : 'fat'));
  // fat finishes its quantum (514 bytes left: one more frame), goes to the old list; thin, new, takes its
  // quantum (two frames) before fat's next turn; then fat's 1028 bytes (two frames), then thin's.
  assert.deepEqual(who, ['fat', 'thin', 'thin', 'fat', 'fat', 'thin']);
  // Overflow: limit 20 packets; fill the fat flow past it: the drops come from its head, about half its bytes at once.
  const q2 = new FqCodel(pool, sink, p, 1024, 1514, 20, Infinity, 12345);
  const heads: number[] = [];
  for (let i = 0; i < 20; i++) {
    const s = pool.alloc(frame(1000, fat, fat), 0, 1000);
    heads.push(s);
    q2.enqueue(s, 0);
  }
  const ts = pool.alloc(frame(1000, thin, thin), 0, 1000);
  sink.drops.length = 0;
  q2.enqueue(ts, 0);
  const dropped = sink.drops.map(([s]) => s);
  assert.deepEqual(dropped, heads.slice(0, 10), 'half of the fat queue (10 of 20 kB), from its head');
  assert.equal(q2.packets, 11);
  assert.equal(q2.dequeue(0), heads[10], 'the fat queue goes on from its new head');
});
