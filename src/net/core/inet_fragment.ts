/**
 * What IPv4 and IPv6 reassembly share (net/ipv4/inet_fragment.c): the
 * table of queues keyed by a hash with its memory accounting and expiry
 * timers, the sorted fragment list with Linux's duplicate/overlap rule,
 * and the length bookkeeping of a queue. Each family keeps its own keys,
 * header handling and counters (ip_fragment.ts, ipv6/reassembly.ts).
 */
import { Timer, type TimeSource } from '../../lib/time.js';
import { SKB_DROP_REASON } from './snmp.js';

export const INET_FRAG_FIRST_IN = 1;
export const INET_FRAG_LAST_IN = 2;
/** Accounting overhead per fragment, standing in for the skb's truesize. */
export const FRAG_OVERHEAD = 256;

export interface Frag {
  offset: number;
  end: number;
  data: Buffer;
}

/** struct inet_frag_queue: one datagram being reassembled. */
export class InetFragQueue {
  /** Received fragments, sorted by offset, never overlapping. */
  frags: Frag[] = [];
  /** Total length, known once the last fragment arrived; the largest end before. */
  len = 0;
  /** Bytes received. */
  meat = 0;
  flags = 0;
  mem = 0;
  next: InetFragQueue | null = null;
  readonly timer: Timer;

  constructor(
    readonly hash: number,
    expire: (q: InetFragQueue) => void,
  ) {
    this.timer = new Timer(() => expire(this));
  }

  /**
   * The length checks of ip_frag_queue/ip6_frag_queue for a fragment
   * [offset, end): the last one fixes the length, and nothing may
   * contradict it. Returns 0, or the drop reason.
   */
  checkEnd(offset: number, end: number, last: boolean): number {
    if (last) {
      if (end < this.len || (this.flags & INET_FRAG_LAST_IN && end !== this.len)) return SKB_DROP_REASON.FRAG_INVALID;
      this.flags |= INET_FRAG_LAST_IN;
      this.len = end;
    } else if (end > this.len) {
      if (this.flags & INET_FRAG_LAST_IN) return SKB_DROP_REASON.FRAG_INVALID;
      this.len = end;
    }
    return end === offset ? SKB_DROP_REASON.FRAG_INVALID : 0;
  }

  /** Every byte from 0 to the known length is here. */
  complete(): boolean {
    return this.flags === (INET_FRAG_FIRST_IN | INET_FRAG_LAST_IN) && this.meat === this.len;
  }
}

export const IPFRAG_DUP = -1;
export const IPFRAG_OVERLAP = -2;

/**
 * inet_frag_queue_insert: where [offset, end) goes in the sorted list, or
 * IPFRAG_DUP when it lies wholly inside a run of contiguous fragments we
 * hold (dropped alone), or IPFRAG_OVERLAP for any other overlap (RFC 5722:
 * the whole queue is dropped).
 */
export function inetFragQueueInsert(frags: Frag[], offset: number, end: number): number {
  let i = frags.length;
  const last = i > 0 ? frags[i - 1] : null;
  if (!last || last.end <= offset) return i;
  if (last.end < end) return offset < last.end ? IPFRAG_OVERLAP : i;
  while (i > 0 && frags[i - 1].offset > offset) i--;
  // The run of contiguous fragments around `offset` (Linux's frag runs).
  let rs = i - 1;
  if (rs >= 0 && frags[rs].end > offset) {
    let re = rs;
    while (rs > 0 && frags[rs - 1].end === frags[rs].offset) rs--;
    while (re + 1 < frags.length && frags[re].end === frags[re + 1].offset) re++;
    return offset >= frags[rs].offset && end <= frags[re].end ? IPFRAG_DUP : IPFRAG_OVERLAP;
  }
  // Starts in a gap: running into the next fragment is an overlap.
  return i < frags.length && frags[i].offset < end ? IPFRAG_OVERLAP : i;
}

/** The family's reassembly limits (ipfrag_* / ip6frag_* sysctls). */
export interface FragSysctl {
  /** *_high_thresh, bytes. */
  highThresh: number;
  /** *_time, milliseconds. */
  time: number;
}

/** struct fqdir + its hash table: the queues of one family, their memory and their timers. */
export class InetFragTable<Q extends InetFragQueue> {
  /** Bytes held by all queues (frag_mem_limit). */
  mem = 0;
  #buckets = new Map<number, Q>();
  #count = 0;

  constructor(
    readonly sysctl: FragSysctl,
    private time: TimeSource,
  ) {}

  get queues(): number {
    return this.#count;
  }

  /** The first queue on a hash chain (follow q.next). */
  chain(hash: number): Q | null {
    return this.#buckets.get(hash) ?? null;
  }

  /** Over the memory limit: no new queue may start (inet_frag_find returns NULL). */
  full(): boolean {
    return this.mem > this.sysctl.highThresh;
  }

  /** Link a new queue and start its expiry timer. */
  add(q: Q): void {
    q.next = this.chain(q.hash);
    this.#buckets.set(q.hash, q);
    this.#count++;
    this.time.timers.mod(q.timer, this.time.clock.now() + this.sysctl.time);
  }

  /** Keep a fragment's bytes at position i of the queue's list. */
  insert(q: Q, i: number, offset: number, end: number, data: Buffer, truesize: number): void {
    q.frags.splice(i, 0, { offset, end, data });
    q.meat += end - offset;
    q.mem += truesize;
    this.mem += truesize;
  }

  /** inet_frag_kill: unlink and free. */
  kill(q: Q): void {
    this.time.timers.del(q.timer);
    let p: InetFragQueue | null = this.chain(q.hash);
    if (p === q) {
      if (q.next) this.#buckets.set(q.hash, q.next as Q);
      else this.#buckets.delete(q.hash);
    } else {
      while (p && p.next !== q) p = p.next;
      if (p) p.next = q.next;
    }
    this.#count--;
    this.mem -= q.mem;
    q.frags = [];
    q.mem = 0;
  }

  shutdown(): void {
    for (const head of [...this.#buckets.values()]) {
      for (let q: InetFragQueue | null = head; q; ) {
        const n: InetFragQueue | null = q.next;
        this.kill(q as Q);
        q = n;
      }
    }
  }
}
