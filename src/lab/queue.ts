/**
 * The lab's bottleneck: frames held in one pooled arena (a slot each, no
 * allocation per packet), an event heap of preallocated slots, and the
 * queue disciplines: drop-tail, CoDel as Linux's sch_codel runs it
 * (include/net/codel_impl.h), and FQ-CoDel as net/sched/sch_fq_codel.c
 * does (flows hashed into queues, deficit round robin with new flows
 * first, CoDel per queue, and on overflow a batch dropped from the head of
 * the fattest queue). Time is the virtual clock's, in milliseconds.
 */
import { INET_ECN_CE, INET_ECN_MASK } from '../wire/ipv4.js';
import { csumFold, csumPartial } from '../lib/checksum.js';

/** Room per frame: one MTU-sized Ethernet frame (the lab's stacks send no super-frames). */
export const SLOT_BYTES = 2048;
const ETH_HLEN = 14;

/** The frames in flight, in slots of one arena; slots are recycled, the arena grows by doubling. */
export class FramePool {
  buf: Buffer;
  len: Int32Array;
  /** When the frame entered the queue (ms). */
  enq: Float64Array;
  /** The flow it belongs to (cross traffic: -1 - source). */
  flow: Int32Array;
  /** The host it is delivered to (-1: none, the cross traffic's sink). */
  dst: Int32Array;
  /** The next frame in its queue (-1: last). */
  next: Int32Array;
  #free: Int32Array;
  #nfree = 0;
  #cap = 0;

  constructor(initial = 256) {
    this.buf = Buffer.alloc(0);
    this.len = new Int32Array(0);
    this.enq = new Float64Array(0);
    this.flow = new Int32Array(0);
    this.dst = new Int32Array(0);
    this.next = new Int32Array(0);
    this.#free = new Int32Array(0);
    this.#grow(initial);
  }

  get capacity(): number {
    return this.#cap;
  }

  #grow(cap: number): void {
    const old = this.#cap;
    const b = Buffer.alloc(cap * SLOT_BYTES);
    this.buf.copy(b);
    this.buf = b;
    const g32 = (a: Int32Array) => {
      const n = new Int32Array(cap);
      n.set(a);
      return n;
    };
    this.len = g32(this.len);
    this.flow = g32(this.flow);
    this.dst = g32(this.dst);
    this.next = g32(this.next);
    const e = new Float64Array(cap);
    e.set(this.enq);
    this.enq = e;
    const f = new Int32Array(cap);
    f.set(this.#free.subarray(0, this.#nfree));
    this.#free = f;
    // Hand out low slots first: the lowest on top of the stack.
    for (let s = cap - 1; s >= old; s--) this.#free[this.#nfree++] = s;
    this.#cap = cap;
  }

  /** A slot holding a copy of the frame. */
  alloc(src: Buffer, off: number, len: number): number {
    if (this.#nfree === 0) this.#grow(this.#cap * 2);
    const s = this.#free[--this.#nfree];
    src.copy(this.buf, s * SLOT_BYTES, off, off + len);
    this.len[s] = len;
    this.next[s] = -1;
    return s;
  }

  release(s: number): void {
    this.#free[this.#nfree++] = s;
  }

  /** Slots in use. */
  get used(): number {
    return this.#cap - this.#nfree;
  }
}

/**
 * A min-heap of events (time, kind, argument) in preallocated typed
 * arrays; events at the same time come out in the order they were pushed,
 * so a run is the same on every machine.
 */
export class EventHeap {
  time = new Float64Array(1024);
  order = new Float64Array(1024);
  kind = new Int32Array(1024);
  arg = new Int32Array(1024);
  #n = 0;
  #seq = 0;

  get size(): number {
    return this.#n;
  }

  /** The earliest event's time, or Infinity. */
  peek(): number {
    return this.#n ? this.time[0] : Infinity;
  }

  push(t: number, kind: number, arg: number): void {
    if (this.#n === this.time.length) this.#grow();
    let i = this.#n++;
    const o = this.#seq++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.time[p] < t || (this.time[p] === t && this.order[p] < o)) break;
      this.#move(p, i);
      i = p;
    }
    this.time[i] = t;
    this.order[i] = o;
    this.kind[i] = kind;
    this.arg[i] = arg;
  }

  /** Removes the earliest; its kind and argument are left in popKind and popArg. */
  popKind = 0;
  popArg = 0;
  pop(): void {
    this.popKind = this.kind[0];
    this.popArg = this.arg[0];
    const n = --this.#n;
    if (n === 0) return;
    const t = this.time[n];
    const o = this.order[n];
    const k = this.kind[n];
    const a = this.arg[n];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && (this.time[c + 1] < this.time[c] || (this.time[c + 1] === this.time[c] && this.order[c + 1] < this.order[c]))) c++;
      if (t < this.time[c] || (t === this.time[c] && o < this.order[c])) break;
      this.#move(c, i);
      i = c;
    }
    this.time[i] = t;
    this.order[i] = o;
    this.kind[i] = k;
    this.arg[i] = a;
  }

  #move(from: number, to: number): void {
    this.time[to] = this.time[from];
    this.order[to] = this.order[from];
    this.kind[to] = this.kind[from];
    this.arg[to] = this.arg[from];
  }

  #grow(): void {
    const n = this.time.length * 2;
    const t = new Float64Array(n);
    t.set(this.time);
    this.time = t;
    const o = new Float64Array(n);
    o.set(this.order);
    this.order = o;
    const k = new Int32Array(n);
    k.set(this.kind);
    this.kind = k;
    const a = new Int32Array(n);
    a.set(this.arg);
    this.arg = a;
  }
}

/** Why the queue let a frame go without sending it. */
export const DROP_OVERLIMIT = 0;
export const DROP_AQM = 1;

/** What a queue tells its owner: a frame dropped (the owner releases the slot), a frame CE-marked. */
export interface QueueSink {
  dropped(slot: number, why: number): void;
  marked(slot: number): void;
}

export interface QueueDisc {
  readonly packets: number;
  readonly bytes: number;
  enqueue(slot: number, now: number): void;
  /** The next frame to send, or -1 when empty. */
  dequeue(now: number): number;
}

/** A FIFO of slots, linked through the pool. */
class Fifo {
  head = -1;
  tail = -1;
  constructor(readonly pool: FramePool) {}
  add(s: number): void {
    this.pool.next[s] = -1;
    if (this.head < 0) this.head = s;
    else this.pool.next[this.tail] = s;
    this.tail = s;
  }
  take(): number {
    const s = this.head;
    if (s >= 0) {
      this.head = this.pool.next[s];
      if (this.head < 0) this.tail = -1;
    }
    return s;
  }
}

/** Drop-tail: a frame that would take the queue past its limit (packets or bytes) is dropped on arrival. */
export class DropTail implements QueueDisc {
  packets = 0;
  bytes = 0;
  readonly #q: Fifo;
  constructor(
    readonly pool: FramePool,
    readonly sink: QueueSink,
    readonly limitPackets: number,
    readonly limitBytes: number,
  ) {
    this.#q = new Fifo(pool);
  }
  enqueue(slot: number, now: number): void {
    const len = this.pool.len[slot];
    if (this.packets + 1 > this.limitPackets || this.bytes + len > this.limitBytes) {
      this.sink.dropped(slot, DROP_OVERLIMIT);
      return;
    }
    this.pool.enq[slot] = now;
    this.#q.add(slot);
    this.packets++;
    this.bytes += len;
  }
  dequeue(_now: number): number {
    const s = this.#q.take();
    if (s >= 0) {
      this.packets--;
      this.bytes -= this.pool.len[s];
    }
    return s;
  }
}

/** struct codel_vars: one queue's CoDel state. */
export class CodelVars {
  count = 0;
  lastcount = 0;
  dropping = false;
  /** 1/sqrt(count): Linux keeps it in fixed point with a Newton step; here it is exact. */
  recInvSqrt = 1;
  /** When the sojourn time went above target for an interval (0: it is not above). */
  firstAboveTime = 0;
  dropNext = 0;
  /** Sojourn time of the last frame dequeued. */
  ldelay = 0;
}

export interface CodelParams {
  targetMs: number;
  intervalMs: number;
  /** The backlog at or below which nothing is dropped (one MTU-sized frame). */
  mtu: number;
  ecn: boolean;
}

/** codel_control_law: the next drop an interval/sqrt(count) after t. */
const controlLaw = (t: number, interval: number, recInvSqrt: number): number => t + interval * recInvSqrt;

/** INET_ECN_set_ce: an ECN-capable IPv4 frame is marked CE (header checksum redone); false for one that is not. */
export function setCe(pool: FramePool, slot: number): boolean {
  const b = pool.buf;
  const o = slot * SLOT_BYTES;
  if (pool.len[slot] < ETH_HLEN + 20 || b[o + 12] !== 0x08 || b[o + 13] !== 0x00) return false;
  const ip = o + ETH_HLEN;
  const ecn = b[ip + 1] & INET_ECN_MASK;
  if (ecn === 0) return false;
  if (ecn === INET_ECN_CE) return true;
  b[ip + 1] |= INET_ECN_CE;
  const ihl = (b[ip] & 15) << 2;
  b[ip + 10] = 0;
  b[ip + 11] = 0;
  const sum = csumFold(csumPartial(b, ip, ihl));
  b[ip + 10] = sum >>> 8;
  b[ip + 11] = sum & 255;
  return true;
}

/**
 * CoDel's dequeue (codel_dequeue) over one FIFO, shared by sch_codel and
 * each fq_codel queue. `take` removes the head frame (or -1), updating the
 * backlog that `backlog` reads; the time is sampled once per call.
 */
export class Codel {
  constructor(
    readonly pool: FramePool,
    readonly sink: QueueSink,
    readonly p: CodelParams,
  ) {}

  /** codel_should_drop: the frame waited above target for at least an interval, and more than a frame is queued. */
  shouldDrop(slot: number, v: CodelVars, now: number, backlog: number): boolean {
    if (slot < 0) {
      v.firstAboveTime = 0;
      return false;
    }
    v.ldelay = now - this.pool.enq[slot];
    if (v.ldelay < this.p.targetMs || backlog <= this.p.mtu) {
      v.firstAboveTime = 0;
      return false;
    }
    if (v.firstAboveTime === 0) {
      v.firstAboveTime = now + this.p.intervalMs;
      return false;
    }
    return now >= v.firstAboveTime;
  }

  dequeue(v: CodelVars, now: number, take: () => number, backlog: () => number): number {
    let s = take();
    if (s < 0) {
      v.firstAboveTime = 0;
      v.dropping = false;
      return s;
    }
    let drop = this.shouldDrop(s, v, now, backlog());
    const interval = this.p.intervalMs;
    if (v.dropping) {
      if (!drop) v.dropping = false;
      else if (now >= v.dropNext) {
        // In the dropping state: drop (or mark) at the control law's pace until the sojourn time is below target.
        while (v.dropping && now >= v.dropNext) {
          v.count++;
          v.recInvSqrt = 1 / Math.sqrt(v.count);
          if (this.p.ecn && setCe(this.pool, s)) {
            this.sink.marked(s);
            v.dropNext = controlLaw(v.dropNext, interval, v.recInvSqrt);
            return s;
          }
          this.sink.dropped(s, DROP_AQM);
          s = take();
          if (!this.shouldDrop(s, v, now, backlog())) v.dropping = false;
          else v.dropNext = controlLaw(v.dropNext, interval, v.recInvSqrt);
        }
      }
    } else if (drop) {
      if (this.p.ecn && setCe(this.pool, s)) this.sink.marked(s);
      else {
        this.sink.dropped(s, DROP_AQM);
        s = take();
        drop = this.shouldDrop(s, v, now, backlog());
      }
      v.dropping = true;
      // Coming back into dropping soon after leaving it: resume near the old rate.
      const delta = v.count - v.lastcount;
      if (delta > 1 && now - v.dropNext < 16 * interval) v.count = delta;
      else v.count = 1;
      v.recInvSqrt = 1 / Math.sqrt(v.count);
      v.lastcount = v.count;
      v.dropNext = controlLaw(now, interval, v.recInvSqrt);
    }
    return s;
  }
}

/** sch_codel: the same tail-dropping FIFO, with CoDel deciding at its head. */
export class CodelQdisc extends DropTail {
  readonly vars = new CodelVars();
  readonly #codel: Codel;
  constructor(pool: FramePool, sink: QueueSink, p: CodelParams, limitPackets: number, limitBytes: number) {
    super(pool, sink, limitPackets, limitBytes);
    this.#codel = new Codel(pool, sink, p);
  }
  readonly #take = (): number => super.dequeue(0);
  readonly #backlog = (): number => this.bytes;
  override dequeue(now: number): number {
    return this.#codel.dequeue(this.vars, now, this.#take, this.#backlog);
  }
}

const LIST_NONE = 0;
const LIST_NEW = 1;
const LIST_OLD = 2;

/** One round of the flow hash: x mixed into h. */
function mix(h: number, x: number): number {
  h = Math.imul(h ^ x, 0x9e3779b1);
  return h ^ (h >>> 15);
}

/** The flow hash's inputs from an IPv4 frame (addresses, protocol, ports), mixed with the seed (the qdisc's perturbation). */
export function flowHash(buf: Buffer, o: number, len: number, perturb: number): number {
  let h = perturb >>> 0;
  if (len >= ETH_HLEN + 20 && buf[o + 12] === 0x08 && buf[o + 13] === 0x00) {
    const ip = o + ETH_HLEN;
    h = mix(h, buf.readUInt32BE(ip + 12));
    h = mix(h, buf.readUInt32BE(ip + 16));
    h = mix(h, buf[ip + 9]);
    const ihl = (buf[ip] & 15) << 2;
    if (len >= ETH_HLEN + ihl + 4) h = mix(h, buf.readUInt32BE(ip + ihl));
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** sch_fq_codel, its defaults as Linux's: 1024 queues, quantum one frame, limit 10240 packets, batch drops of 64. */
export class FqCodel implements QueueDisc {
  packets = 0;
  bytes = 0;
  readonly #n: number;
  readonly #head: Int32Array;
  readonly #tail: Int32Array;
  readonly #backlogs: Float64Array;
  readonly #deficit: Float64Array;
  readonly #vars: CodelVars[] = [];
  /** The two round-robin lists, linked through prev/next by queue index. */
  readonly #list: Uint8Array;
  readonly #lnext: Int32Array;
  readonly #lprev: Int32Array;
  readonly #lhead = [-1, -1, -1];
  readonly #ltail = [-1, -1, -1];
  readonly #codel: Codel;
  /** The queue being dequeued by CoDel. */
  #cur = 0;
  readonly dropBatch = 64;
  /** Queues that became active (fq_codel's new_flow_count). */
  newFlowCount = 0;

  constructor(
    readonly pool: FramePool,
    readonly sink: QueueSink,
    p: CodelParams,
    readonly flows: number,
    readonly quantum: number,
    readonly limitPackets: number,
    readonly limitBytes: number,
    readonly perturb: number,
  ) {
    const n = (this.#n = flows);
    this.#head = new Int32Array(n).fill(-1);
    this.#tail = new Int32Array(n).fill(-1);
    this.#backlogs = new Float64Array(n);
    this.#deficit = new Float64Array(n);
    this.#list = new Uint8Array(n);
    this.#lnext = new Int32Array(n).fill(-1);
    this.#lprev = new Int32Array(n).fill(-1);
    for (let i = 0; i < n; i++) this.#vars.push(new CodelVars());
    this.#codel = new Codel(pool, sink, p);
  }

  /** Which queue a frame goes to (reciprocal_scale of its hash). */
  classify(slot: number): number {
    const h = flowHash(this.pool.buf, slot * SLOT_BYTES, this.pool.len[slot], this.perturb);
    return Math.floor((h / 4294967296) * this.#n);
  }

  #listAddTail(l: number, i: number): void {
    this.#list[i] = l;
    this.#lnext[i] = -1;
    this.#lprev[i] = this.#ltail[l];
    if (this.#ltail[l] >= 0) this.#lnext[this.#ltail[l]] = i;
    else this.#lhead[l] = i;
    this.#ltail[l] = i;
  }

  #listDel(i: number): void {
    const l = this.#list[i];
    if (l === LIST_NONE) return;
    const p = this.#lprev[i];
    const n = this.#lnext[i];
    if (p >= 0) this.#lnext[p] = n;
    else this.#lhead[l] = n;
    if (n >= 0) this.#lprev[n] = p;
    else this.#ltail[l] = p;
    this.#list[i] = LIST_NONE;
  }

  #queueTake(i: number): number {
    const s = this.#head[i];
    if (s < 0) return -1;
    this.#head[i] = this.pool.next[s];
    if (this.#head[i] < 0) this.#tail[i] = -1;
    const len = this.pool.len[s];
    this.#backlogs[i] -= len;
    this.packets--;
    this.bytes -= len;
    return s;
  }

  enqueue(slot: number, now: number): void {
    const i = this.classify(slot);
    const len = this.pool.len[slot];
    this.pool.enq[slot] = now;
    this.pool.next[slot] = -1;
    if (this.#head[i] < 0) this.#head[i] = slot;
    else this.pool.next[this.#tail[i]] = slot;
    this.#tail[i] = slot;
    this.#backlogs[i] += len;
    this.bytes += len;
    if (this.#list[i] === LIST_NONE) {
      this.#listAddTail(LIST_NEW, i);
      this.newFlowCount++;
      this.#deficit[i] = this.quantum;
    }
    if (++this.packets <= this.limitPackets && this.bytes <= this.limitBytes) return;
    this.#dropFattest();
  }

  /** fq_codel_drop: from the head of the queue with the most bytes, up to half its backlog (at most a batch). */
  #dropFattest(): void {
    let idx = 0;
    let max = 0;
    for (let i = 0; i < this.#n; i++)
      if (this.#backlogs[i] > max) {
        max = this.#backlogs[i];
        idx = i;
      }
    const threshold = max / 2;
    let dropped = 0;
    let len = 0;
    do {
      const s = this.#queueTake(idx);
      if (s < 0) break;
      len += this.pool.len[s];
      this.sink.dropped(s, DROP_OVERLIMIT);
    } while (++dropped < this.dropBatch && len < threshold);
    // Tell CoDel to drop harder too.
    this.#vars[idx].count += dropped;
  }

  readonly #take = (): number => this.#queueTake(this.#cur);
  readonly #backlog = (): number => this.bytes;

  dequeue(now: number): number {
    for (;;) {
      let l = LIST_NEW;
      if (this.#lhead[l] < 0) {
        l = LIST_OLD;
        if (this.#lhead[l] < 0) return -1;
      }
      const i = this.#lhead[l];
      if (this.#deficit[i] <= 0) {
        this.#deficit[i] += this.quantum;
        this.#listDel(i);
        this.#listAddTail(LIST_OLD, i);
        continue;
      }
      this.#cur = i;
      const s = this.#codel.dequeue(this.#vars[i], now, this.#take, this.#backlog);
      if (s < 0) {
        // An emptied new queue goes through the old list once, so it cannot starve the others.
        this.#listDel(i);
        if (l === LIST_NEW && this.#lhead[LIST_OLD] >= 0) this.#listAddTail(LIST_OLD, i);
        continue;
      }
      this.#deficit[i] -= this.pool.len[s];
      return s;
    }
  }
}
