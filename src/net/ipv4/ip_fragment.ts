/**
 * IPv4 fragment reassembly (net/ipv4/ip_fragment.c, inet_fragment.c).
 *
 * As Linux does it today:
 *  - queues keyed by (saddr, daddr, id, protocol), each with a 30 s timer
 *    armed once at creation (ipfrag_time), not refreshed by new fragments;
 *  - a memory cap over all queues (ipfrag_high_thresh, 4 MiB): above it new
 *    fragments are dropped (Linux stopped evicting old queues in 4.17);
 *  - any overlap kills the whole queue (RFC 5722's rule, which Linux applies
 *    to IPv4 too since 4.19); a fragment lying wholly inside a run of
 *    fragments already held is a duplicate and only dropped itself;
 *  - on timeout, an ICMP time exceeded (fragment reassembly) goes back if
 *    the first fragment had arrived.
 * Fragments are copied out of the receive ring: they outlive the batch.
 */
import { IP_MAX_LEN, IP_MF, IP_OFFSET, ipDaddr, ipFragOff, ipId, ipProto, ipSaddr } from '../../wire/ipv4.js';
import { ipFastCsum } from '../../lib/checksum.js';
import type { TimeSource } from '../../lib/time.js';
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

export type { FragSysctl };

/** struct ipq: an IPv4 datagram being reassembled, keyed by (saddr, daddr, id, protocol). */
export class IpFragQueue extends InetFragQueue {
  /** The first fragment's header (with options): the reassembled datagram's header. */
  header: Buffer | null = null;
  constructor(
    hash: number,
    readonly saddr: number,
    readonly daddr: number,
    readonly id: number,
    readonly protocol: number,
    expire: (q: IpFragQueue) => void,
  ) {
    super(hash, expire as (q: InetFragQueue) => void);
  }
}

/** Called on timeout with the first fragment's header and 8 bytes of its payload. */
export type FragExpired = (offending: Buffer) => void;

export class IpFrags {
  readonly sysctl: FragSysctl = { highThresh: 4 * 1024 * 1024, time: 30_000 };
  readonly #table: InetFragTable<IpFragQueue>;

  constructor(
    time: TimeSource,
    private mibs: Mibs,
    private expired: FragExpired,
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

  static hash(saddr: number, daddr: number, id: number, proto: number): number {
    let h = Math.imul(saddr ^ 0x9e3779b9, 0x85ebca6b);
    h ^= Math.imul(daddr ^ (h >>> 15), 0xc2b2ae35);
    h ^= Math.imul((id << 8) | proto, 0x27d4eb2f) ^ (h >>> 13);
    return h >>> 0;
  }

  /** ip_find: the queue for this datagram, or a new one unless memory is over the limit. */
  #find(saddr: number, daddr: number, id: number, proto: number): IpFragQueue | null {
    const hash = IpFrags.hash(saddr, daddr, id, proto);
    for (let q = this.#table.chain(hash); q; q = q.next as IpFragQueue | null) {
      if (q.saddr === saddr && q.daddr === daddr && q.id === id && q.protocol === proto) return q;
    }
    if (this.#table.full()) return null;
    const q = new IpFragQueue(hash, saddr, daddr, id, proto, (x) => this.#expire(x));
    this.#table.add(q);
    return q;
  }

  #fail(q: IpFragQueue | null, reason: number): null {
    if (q) this.#table.kill(q);
    this.mibs.Ip.ReasmFails++;
    this.mibs.Drop.counts[reason]++;
    return null;
  }

  /** ip_expire. */
  #expire(q: IpFragQueue): void {
    const first = q.flags & INET_FRAG_FIRST_IN && q.frags.length && q.frags[0].offset === 0 ? q.frags[0] : null;
    const header = q.header;
    this.#table.kill(q);
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

    // Non-final fragments carry multiples of 8 bytes; trim as Linux does.
    if (fo & IP_MF) end &= ~7;
    const bad = q.checkEnd(offset, end, !(fo & IP_MF));
    if (bad) return this.#fail(q, bad);
    if (end > IP_MAX_LEN) return this.#fail(q, SKB_DROP_REASON.FRAG_TOO_BIG);

    const i = inetFragQueueInsert(q.frags, offset, end);
    if (i === IPFRAG_DUP) {
      this.mibs.Drop.counts[SKB_DROP_REASON.DUP_FRAG]++;
      return null;
    }
    if (i < 0) {
      this.mibs.IpExt.ReasmOverlaps++;
      return this.#fail(q, SKB_DROP_REASON.FRAG_OVERLAP);
    }
    const data = Buffer.from(buf.subarray(off + ihl, off + ihl + (end - offset)));
    this.#table.insert(q, i, offset, end, data, data.length + FRAG_OVERHEAD);
    if (offset === 0) {
      q.flags |= INET_FRAG_FIRST_IN;
      q.header = Buffer.from(buf.subarray(off, off + ihl));
    }

    if (q.complete()) return this.#reasm(q);
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
    this.#table.kill(q);
    this.mibs.Ip.ReasmOKs++;
    return out;
  }

  shutdown(): void {
    this.#table.shutdown();
  }
}
