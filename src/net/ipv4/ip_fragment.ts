/**
 * IPv4 fragment reassembly (net/ipv4/ip_fragment.c, inet_fragment.c).
 *
 * As Linux does it today:
 *  - queues keyed by (saddr, daddr, id, protocol), each with a 30 s timer
 *    armed once at creation (ipfrag_time), not refreshed by new fragments;
 *  - a memory cap over all queues (ipfrag_high_thresh, 4 MiB): above it new
 *    fragments are dropped (Linux stopped evicting old queues in 4.17);
 *  - any overlap kills the whole queue (RFC 5722's rule, which Linux applies
 *    to IPv4 too since 4.19); an exact duplicate is only dropped itself;
 *  - on timeout, an ICMP time exceeded (fragment reassembly) goes back if
 *    the first fragment had arrived.
 * Fragments are copied out of the receive ring: they outlive the batch.
 */
import { IP_MAX_LEN, IP_MF, IP_OFFSET, ipDaddr, ipFragOff, ipId, ipProto, ipSaddr } from '../../wire/ipv4.js';
import { ipFastCsum } from '../../lib/checksum.js';
import { Timer, type TimeSource } from '../../lib/time.js';
import { SKB_DROP_REASON, type Mibs } from '../core/snmp.js';

const INET_FRAG_FIRST_IN = 1;
const INET_FRAG_LAST_IN = 2;
/** Accounting overhead per fragment, standing in for the skb's truesize. */
const FRAG_OVERHEAD = 256;

interface Frag {
  offset: number;
  end: number;
  data: Buffer;
}

export class IpFragQueue {
  frags: Frag[] = [];
  /** Total payload length, known once the last fragment arrived; max end before. */
  len = 0;
  /** Payload bytes received. */
  meat = 0;
  flags = 0;
  /** The first fragment's header (with options): the reassembled datagram's header. */
  header: Buffer | null = null;
  mem = 0;
  next: IpFragQueue | null = null;
  readonly timer: Timer;
  constructor(
    readonly hash: number,
    readonly saddr: number,
    readonly daddr: number,
    readonly id: number,
    readonly protocol: number,
    expire: (q: IpFragQueue) => void,
  ) {
    this.timer = new Timer(() => expire(this));
  }
}

export interface FragSysctl {
  /** ipfrag_high_thresh, bytes. */
  highThresh: number;
  /** ipfrag_time, milliseconds. */
  time: number;
}

/** Called on timeout with the first fragment's header and 8 bytes of its payload. */
export type FragExpired = (offending: Buffer) => void;

export class IpFrags {
  readonly sysctl: FragSysctl = { highThresh: 4 * 1024 * 1024, time: 30_000 };
  /** Bytes held by all queues (frag_mem_limit). */
  mem = 0;
  #buckets = new Map<number, IpFragQueue>();
  #count = 0;

  constructor(
    private time: TimeSource,
    private mibs: Mibs,
    private expired: FragExpired,
  ) {}

  get queues(): number {
    return this.#count;
  }

  static hash(saddr: number, daddr: number, id: number, proto: number): number {
    let h = Math.imul(saddr ^ 0x9e3779b9, 0x85ebca6b);
    h ^= Math.imul(daddr ^ (h >>> 15), 0xc2b2ae35);
    h ^= Math.imul((id << 8) | proto, 0x27d4eb2f) ^ (h >>> 13);
    return h >>> 0;
  }

  #find(saddr: number, daddr: number, id: number, proto: number): IpFragQueue | null {
    const hash = IpFrags.hash(saddr, daddr, id, proto);
    for (let q = this.#buckets.get(hash) ?? null; q; q = q.next) {
      if (q.saddr === saddr && q.daddr === daddr && q.id === id && q.protocol === proto) return q;
    }
    if (this.mem > this.sysctl.highThresh) return null;
    const q = new IpFragQueue(hash, saddr, daddr, id, proto, (x) => this.#expire(x));
    q.next = this.#buckets.get(hash) ?? null;
    this.#buckets.set(hash, q);
    this.#count++;
    this.time.timers.mod(q.timer, this.time.clock.now() + this.sysctl.time);
    return q;
  }

  /** inet_frag_kill: unlink and free. */
  #kill(q: IpFragQueue): void {
    this.time.timers.del(q.timer);
    let p = this.#buckets.get(q.hash) ?? null;
    if (p === q) {
      if (q.next) this.#buckets.set(q.hash, q.next);
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

  #fail(q: IpFragQueue | null, reason: number): null {
    if (q) this.#kill(q);
    this.mibs.Ip.ReasmFails++;
    this.mibs.Drop.counts[reason]++;
    return null;
  }

  /** ip_expire. */
  #expire(q: IpFragQueue): void {
    const first = q.flags & INET_FRAG_FIRST_IN && q.frags.length && q.frags[0].offset === 0 ? q.frags[0] : null;
    const header = q.header;
    this.#kill(q);
    this.mibs.Ip.ReasmFails++;
    this.mibs.Ip.ReasmTimeout++;
    this.mibs.Drop.counts[SKB_DROP_REASON.FRAG_REASM_TIMEOUT]++;
    if (first && header) {
      const n = Math.min(8, first.data.length);
      const off = Buffer.allocUnsafe(header.length + n);
      header.copy(off, 0);
      first.data.copy(off, header.length, 0, n);
      this.expired(off);
    }
  }

  /**
   * ip_defrag: add one fragment (header at `off`, `ihl` header bytes,
   * `totLen` in all). Returns the whole datagram (a new buffer, header
   * first) when this fragment completes it, else null.
   */
  defrag(buf: Buffer, off: number, ihl: number, totLen: number): Buffer | null {
    const ip = this.mibs.Ip;
    ip.ReasmReqds++;
    const q = this.#find(ipSaddr(buf, off), ipDaddr(buf, off), ipId(buf, off), ipProto(buf, off));
    if (!q) return this.#fail(null, SKB_DROP_REASON.FRAG_MEM_LIMIT);

    const fo = ipFragOff(buf, off);
    const offset = (fo & IP_OFFSET) << 3;
    let end = offset + totLen - ihl;

    if (!(fo & IP_MF)) {
      // The last fragment fixes the length; one that contradicts it is corrupt.
      if (end < q.len || (q.flags & INET_FRAG_LAST_IN && end !== q.len)) return this.#fail(q, SKB_DROP_REASON.FRAG_INVALID);
      q.flags |= INET_FRAG_LAST_IN;
      q.len = end;
    } else {
      // Non-final fragments carry multiples of 8 bytes; trim as Linux does.
      end &= ~7;
      if (end > q.len) {
        if (q.flags & INET_FRAG_LAST_IN) return this.#fail(q, SKB_DROP_REASON.FRAG_INVALID);
        q.len = end;
      }
    }
    if (end === offset) return this.#fail(q, SKB_DROP_REASON.FRAG_INVALID);
    if (end > IP_MAX_LEN) return this.#fail(q, SKB_DROP_REASON.FRAG_TOO_BIG);

    // inet_frag_queue_insert: sorted by offset; duplicates dropped, overlaps fatal.
    const frags = q.frags;
    let i = frags.length;
    while (i > 0 && frags[i - 1].offset >= offset) i--;
    const prev = i > 0 ? frags[i - 1] : null;
    const next = i < frags.length ? frags[i] : null;
    if (next && next.offset === offset && next.end === end) {
      this.mibs.Drop.counts[SKB_DROP_REASON.DUP_FRAG]++;
      return null;
    }
    if ((prev && prev.end > offset) || (next && next.offset < end)) {
      this.mibs.IpExt.ReasmOverlaps++;
      return this.#fail(q, SKB_DROP_REASON.FRAG_OVERLAP);
    }
    const data = Buffer.from(buf.subarray(off + ihl, off + ihl + (end - offset)));
    frags.splice(i, 0, { offset, end, data });
    if (offset === 0) {
      q.flags |= INET_FRAG_FIRST_IN;
      q.header = Buffer.from(buf.subarray(off, off + ihl));
    }
    q.meat += end - offset;
    const truesize = data.length + FRAG_OVERHEAD;
    q.mem += truesize;
    this.mem += truesize;

    if (q.flags === (INET_FRAG_FIRST_IN | INET_FRAG_LAST_IN) && q.meat === q.len) return this.#reasm(q);
    return null;
  }

  /** ip_frag_reasm: one buffer, header from the first fragment. */
  #reasm(q: IpFragQueue): Buffer | null {
    const hdr = q.header!;
    const total = hdr.length + q.len;
    if (total > IP_MAX_LEN) return this.#fail(q, SKB_DROP_REASON.FRAG_TOO_BIG);
    const out = Buffer.allocUnsafe(total);
    hdr.copy(out, 0);
    for (const f of q.frags) f.data.copy(out, hdr.length + f.offset);
    out[2] = total >>> 8;
    out[3] = total & 255;
    out[6] &= 0x40; // keep DF, clear MF and the offset
    out[7] = 0;
    out[10] = 0;
    out[11] = 0;
    const c = ipFastCsum(out, 0, hdr.length);
    out[10] = c >>> 8;
    out[11] = c & 255;
    this.#kill(q);
    this.mibs.Ip.ReasmOKs++;
    return out;
  }

  shutdown(): void {
    for (const head of [...this.#buckets.values()]) {
      for (let q: IpFragQueue | null = head; q; ) {
        const n: IpFragQueue | null = q.next;
        this.#kill(q);
        q = n;
      }
    }
  }
}
