/**
 * IPv6 fragment reassembly (net/ipv6/reassembly.c on inet_fragment.c), as
 * Linux does it:
 *  - queues keyed by (saddr, daddr, identification), each with a 60 s
 *    timer armed once at creation (ip6frag_time);
 *  - a memory cap over all queues (ip6frag_high_thresh, 4 MiB): above it
 *    new fragments are dropped;
 *  - RFC 5722: any overlap drops the whole queue (an exact duplicate of
 *    bytes already held is only dropped itself);
 *  - a non-final fragment whose length is not a multiple of 8, or one
 *    that would end past 65535, is answered with a parameter problem
 *    (RFC 8200 4.5), pointing at the payload length or the offset field;
 *  - on timeout, Ip6ReasmFails and Ip6ReasmTimeout, and an ICMPv6 time
 *    exceeded (fragment reassembly) quoting the first fragment if it came.
 * Atomic fragments (offset 0, M clear; RFC 6946) never get here: the
 * input path processes them in isolation.
 */
import { ipv6Equal } from '../../lib/addr.js';
import type { TimeSource } from '../../lib/time.js';
import { ICMPV6_EXC_FRAGTIME, ICMPV6_TIME_EXCEED } from '../../wire/icmpv6.js';
import { FRAG_HLEN, IPV6_HLEN, IPV6_MAXPLEN, fragId, fragMore, fragOffset } from '../../wire/ipv6.js';
import { SKB_DROP_REASON, type Mibs } from '../core/snmp.js';
import {
  FRAG_OVERHEAD,
  INET_FRAG_FIRST_IN,
  IPFRAG_DUP,
  InetFragQueue,
  InetFragTable,
  inetFragQueueInsert,
  type FragSysctl,
} from '../core/inet_fragment.js';

/** struct frag_queue: an IPv6 datagram being reassembled, keyed by (saddr, daddr, id). */
export class Ip6FragQueue extends InetFragQueue {
  /** The first fragment as received (IPv6 header to the end of its data). */
  first: Buffer | null = null;
  /** In `first`: length of the unfragmentable part (IPv6 header and the headers before the fragment header). */
  unfragLen = 0;
  /** In `first`: the byte that named the fragment header (IP6CB nhoff). */
  nhoff = 0;
  firstPktType = 0;
  constructor(
    hash: number,
    /** Source then destination address, 32 bytes. */
    readonly addrs: Buffer,
    readonly id: number,
    expire: (q: Ip6FragQueue) => void,
  ) {
    super(hash, expire as (q: InetFragQueue) => void);
  }
}

export type Frag6Sysctl = FragSysctl;

/** Reports the expiry of a queue whose first fragment had arrived (pktType: how it came). */
export type Frag6Expired = (first: Buffer, pktType: number, type: number, code: number) => void;

export class Ip6Frags {
  readonly sysctl: Frag6Sysctl = { highThresh: 4 * 1024 * 1024, time: 60_000 };
  /** Set by queue() when the fragment deserves a parameter problem: the pointer (from the IPv6 header). */
  probOffset = -1;
  readonly #table: InetFragTable<Ip6FragQueue>;

  constructor(
    time: TimeSource,
    private mibs: Mibs,
    private expired: Frag6Expired,
  ) {
    this.#table = new InetFragTable(this.sysctl, time);
  }

  /** Bytes held by all queues. */
  get mem(): number {
    return this.#table.mem;
  }

  get queues(): number {
    return this.#table.queues;
  }

  static hash(b: Buffer, nhOff: number, id: number): number {
    let h = id ^ 0x9e3779b9;
    for (let i = 8; i < 40; i += 4) {
      h = Math.imul(h ^ b.readUInt32BE(nhOff + i), 0x85ebca6b);
      h ^= h >>> 13;
    }
    return h >>> 0;
  }

  /** fq_find: the queue for this datagram, or a new one unless memory is over the limit. */
  #find(b: Buffer, nhOff: number, id: number): Ip6FragQueue | null {
    const hash = Ip6Frags.hash(b, nhOff, id);
    for (let q = this.#table.chain(hash); q; q = q.next as Ip6FragQueue | null) {
      if (q.id === id && ipv6Equal(q.addrs, 0, b, nhOff + 8) && ipv6Equal(q.addrs, 16, b, nhOff + 24)) return q;
    }
    if (this.#table.full()) return null;
    const q = new Ip6FragQueue(hash, Buffer.from(b.subarray(nhOff + 8, nhOff + 40)), id, (x) => this.#expire(x));
    this.#table.add(q);
    return q;
  }

  #kill(q: Ip6FragQueue): void {
    this.#table.kill(q);
    q.first = null;
  }

  #fail(q: Ip6FragQueue | null, reason: number): null {
    if (q) this.#kill(q);
    this.mibs.Ip6.ReasmFails++;
    this.mibs.Drop.counts[reason]++;
    return null;
  }

  /** ip6_frag_expire. */
  #expire(q: Ip6FragQueue): void {
    const first = q.flags & INET_FRAG_FIRST_IN ? q.first : null;
    const pktType = q.firstPktType;
    this.#kill(q);
    this.mibs.Ip6.ReasmFails++;
    this.mibs.Ip6.ReasmTimeout++;
    this.mibs.Drop.counts[SKB_DROP_REASON.FRAG_REASM_TIMEOUT]++;
    if (first) this.expired(first, pktType, ICMPV6_TIME_EXCEED, ICMPV6_EXC_FRAGTIME);
  }

  /**
   * ip6_frag_queue + ip6_frag_reasm: one fragment whose IPv6 header is at
   * nhOff (totLen bytes from there), fragment header at fhOff, named by the
   * byte at nhoff. Returns the whole datagram (a new buffer: the
   * unfragmentable part, then the payload, the fragment header gone and
   * the byte at nhoff naming what followed it), or null (kept, or dropped;
   * then probOffset >= 0 asks for a parameter problem).
   */
  queue(b: Buffer, nhOff: number, totLen: number, fhOff: number, nhoff: number, pktType: number): Buffer | null {
    this.probOffset = -1;
    const offset = fragOffset(b, fhOff);
    const more = fragMore(b, fhOff);
    const dataOff = fhOff + FRAG_HLEN;
    const dataLen = nhOff + totLen - dataOff;
    const end = offset + dataLen;
    if (end > IPV6_MAXPLEN) {
      this.probOffset = fhOff + 2 - nhOff;
      return null;
    }
    if (more && end & 7) {
      // RFC 8200 4.5: discard, and point at the payload length.
      this.probOffset = 4;
      return null;
    }
    const q = this.#find(b, nhOff, fragId(b, fhOff));
    if (!q) return this.#fail(null, SKB_DROP_REASON.FRAG_MEM_LIMIT);
    const bad = q.checkEnd(offset, end, !more);
    if (bad) return this.#fail(q, bad);

    const i = inetFragQueueInsert(q.frags, offset, end);
    if (i === IPFRAG_DUP) {
      this.mibs.Drop.counts[SKB_DROP_REASON.DUP_FRAG]++;
      return null;
    }
    if (i < 0) return this.#fail(q, SKB_DROP_REASON.FRAG_OVERLAP);

    let data: Buffer;
    if (offset === 0) {
      const copy = Buffer.from(b.subarray(nhOff, nhOff + totLen));
      q.first = copy;
      q.unfragLen = fhOff - nhOff;
      q.nhoff = nhoff - nhOff;
      q.firstPktType = pktType;
      q.flags |= INET_FRAG_FIRST_IN;
      data = copy.subarray(dataOff - nhOff);
    } else {
      data = Buffer.from(b.subarray(dataOff, dataOff + dataLen));
    }
    this.#table.insert(q, i, offset, end, data, dataLen + FRAG_OVERHEAD + (offset === 0 ? dataOff - nhOff : 0));
    if (q.complete()) return this.#reasm(q);
    return null;
  }

  /** ip6_frag_reasm. */
  #reasm(q: Ip6FragQueue): Buffer | null {
    const first = q.first!;
    const unfrag = q.unfragLen;
    const payloadLen = unfrag - IPV6_HLEN + q.len;
    if (payloadLen > IPV6_MAXPLEN) return this.#fail(q, SKB_DROP_REASON.FRAG_TOO_BIG);
    const out = Buffer.allocUnsafe(unfrag + q.len);
    first.copy(out, 0, 0, unfrag);
    // The header before the fragment header now names what the fragment header named.
    out[q.nhoff] = first[unfrag];
    for (const f of q.frags) f.data.copy(out, unfrag + f.offset);
    out[4] = payloadLen >>> 8;
    out[5] = payloadLen & 255;
    this.#kill(q);
    this.mibs.Ip6.ReasmOKs++;
    return out;
  }

  shutdown(): void {
    this.#table.shutdown();
  }
}
