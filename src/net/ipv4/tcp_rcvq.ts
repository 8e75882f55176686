/**
 * Receive-queue storage without a per-segment allocation. Received payload
 * is copied once: a TCP super-frame (GRO, RCV_REF_MIN bytes or more) is
 * kept where the driver read it, its ring slot's buffer becoming the page
 * (the driver gives the slot a fresh one), and smaller payload is copied out
 * of the driver's ring into a page fragment
 * (page_frag_alloc: a stack-wide cache of large pages, each cut into
 * fragments and refcounted); the receive and out-of-order queues hold
 * RcvSegs that name a page, an offset and a length. In-order data that
 * lands right after the queue's tail in the same page extends the tail
 * (tcp_try_coalesce), so a bulk stream allocates nothing per segment. The
 * reader copies out of the page once (tcpRecvmsg) and drops its reference
 * when a RcvSeg is used up; a page nobody references goes back to the
 * cache. Pages hold no socket state: a queue purged without releasing its
 * references only leaves a page to the garbage collector.
 */

import { RcvPage } from '../core/page.js';
import { skMemCharge, skMemUncharge, type Sock } from '../core/sock.js';

export { RcvPage };

/** Page size: two 64 KB GRO super-frames, or ~90 MSS-sized segments. */
export const RCV_PAGE_SIZE = 128 * 1024;
/** Free pages the cache keeps (4 MiB); more are left to the garbage collector. */
const RCV_PAGES_FREE_MAX = 32;

/**
 * In-order payload of at least this many bytes in a driver's ring slot is
 * referenced there, not copied. Only super-frames: the slot (64 KiB and the
 * headers) then holds at most twice what the socket's rmem counts, and
 * MSS-sized segments keep coalescing into shared pages with no allocation.
 */
export const RCV_REF_MIN = 32 * 1024;

/**
 * What a queued segment costs besides its bytes: the RcvSeg itself and its
 * share of page slack, as an skb's truesize counts its head besides the data.
 */
export const RCV_SEG_OVERHEAD = 256;

/** One queued range of the byte stream (an skb in a receive or out-of-order queue). */
export class RcvSeg {
  constructor(
    public seq: number,
    public endSeq: number,
    public page: RcvPage,
    /** The bytes not yet read: page.buf[off, off + len). */
    public off: number,
    public len: number,
    public fin: boolean,
    /** skb->truesize: what it holds of memory (its bytes and overhead, or the whole ring slot it keeps). */
    public truesize: number,
  ) {}
}

/**
 * A socket with receive queues of RcvSegs (a TcpSock): what its queues
 * cost (the sum of their segments' truesize), charged to its protocol's
 * memory, beside rmemAlloc, their unread bytes.
 */
export interface RcvQueueOwner extends Sock {
  rcvTruesize: number;
}

/** A segment joins a queue: its truesize is charged (sk_mem_charge; the caller scheduled it). */
export function rcvSegCharge(sk: RcvQueueOwner, truesize: number): void {
  sk.rcvTruesize += truesize;
  skMemCharge(sk, truesize);
}

/** A segment leaves its queue for good (skb freed): its page reference dropped, its truesize uncharged. */
export function rcvSegFree(cache: RcvPageCache, sk: RcvQueueOwner, s: RcvSeg): void {
  cache.put(s.page);
  sk.rcvTruesize -= s.truesize;
  skMemUncharge(sk, s.truesize);
}

/** page_frag_cache: the page being cut, and the free ones. */
export class RcvPageCache {
  /** The page fragments are cut from, and the first byte not yet handed out. */
  page: RcvPage | null = null;
  used = 0;
  #free: RcvPage[] = [];
  /** Pages allocated (for tests and the status page: a steady stream keeps this flat). */
  allocated = 0;

  /** A fragment of `len` (<= RCV_PAGE_SIZE) bytes: the page is this.page, the offset the return value; one reference taken. */
  alloc(len: number): number {
    let p = this.page;
    if (p === null || this.used + len > RCV_PAGE_SIZE) {
      if (p !== null && p.refs === 0) this.#recycle(p);
      p = this.#free.pop() ?? this.#newPage();
      this.page = p;
      this.used = 0;
    }
    const at = this.used;
    this.used = at + len;
    p.refs++;
    return at;
  }

  /**
   * Room to extend a fragment that ends at the cache's cut point (the
   * queue's tail, for coalescing): `len` more bytes there, no new reference.
   */
  canExtend(page: RcvPage, end: number, len: number): boolean {
    return page === this.page && end === this.used && end + len <= RCV_PAGE_SIZE;
  }

  /** Drop one reference; an unreferenced page is reused. */
  put(p: RcvPage): void {
    if (--p.refs > 0) return;
    if (p.release !== null) {
      p.release(p);
      return;
    }
    // The current page starts over (a reader that keeps up stays in one page).
    if (p === this.page) this.used = 0;
    else this.#recycle(p);
  }

  #recycle(p: RcvPage): void {
    if (this.#free.length < RCV_PAGES_FREE_MAX) this.#free.push(p);
  }

  #newPage(): RcvPage {
    this.allocated++;
    return new RcvPage(Buffer.allocUnsafe(RCV_PAGE_SIZE));
  }
}

/** Copy buf[off, off+len) into a new fragment, as an RcvSeg for [seq, endSeq) (truesize: its bytes and RCV_SEG_OVERHEAD). */
export function rcvSegCopy(cache: RcvPageCache, seq: number, endSeq: number, buf: Buffer, off: number, len: number, fin: boolean): RcvSeg {
  const at = cache.alloc(len);
  const page = cache.page!;
  // Buffer#copy takes the range itself: no view object per segment, as set(subarray()) would make.
  buf.copy(page.buf, at, off, off + len);
  return new RcvSeg(seq, endSeq, page, at, len, fin, len + RCV_SEG_OVERHEAD);
}

/** Free every segment of a queue (skb_queue_purge) and return how many unread bytes it held. */
export function rcvQueuePurge(cache: RcvPageCache, sk: RcvQueueOwner, q: RcvSeg[]): number {
  let n = 0;
  for (const s of q) {
    n += s.len;
    rcvSegFree(cache, sk, s);
  }
  q.length = 0;
  return n;
}

/**
 * The write queue's storage (sk_page_frag for tcp_sendmsg): tcpSendmsg
 * copies the user's bytes into a pooled page instead of a fresh 64 KB
 * buffer per skb. An skb split in two (tcp_fragment) shares its page, so
 * pages are refcounted; the last skb on a page to be acked (or purged)
 * hands it back. A page nobody returns is only left to the garbage collector.
 */
export const SND_PAGE_SIZE = 65536;
/** Free pages kept (8 MiB: a couple of bulk senders' windows); more go to the garbage collector. */
const SND_PAGES_FREE_MAX = 128;

export class SndPage {
  refs = 1;
  constructor(readonly buf: Buffer) {}
}

export class SndPagePool {
  #free: SndPage[] = [];
  /** Pages allocated (a steady stream keeps this flat). */
  allocated = 0;

  /** A page with one reference, or null when `size` does not fit one (the caller allocates). */
  get(size: number): SndPage | null {
    if (size > SND_PAGE_SIZE) return null;
    const p = this.#free.pop();
    if (p) {
      p.refs = 1;
      return p;
    }
    this.allocated++;
    return new SndPage(Buffer.allocUnsafe(SND_PAGE_SIZE));
  }

  put(p: SndPage): void {
    if (--p.refs === 0 && this.#free.length < SND_PAGES_FREE_MAX) this.#free.push(p);
  }
}
