/**
 * MSG_ZEROCOPY for TCP (tcp_sendmsg_locked's zerocopy branch,
 * skb_zerocopy_iter_stream and __zerocopy_sg_from_iter in
 * net/core/skbuff.c): the user's pages become the skb's frags, at most
 * MAX_SKB_FRAGS of them, so an skb whose frags are used up is pushed and
 * the send goes on in a new one. The stack copies the data (its device
 * copies as tun does, SO_EE_CODE_ZEROCOPY_COPIED) but keeps the frag
 * boundaries a pinned send has: each iovec element starts a frag, and a
 * page boundary inside one starts another (elements are taken as
 * page-aligned: the stack cannot see user addresses).
 */
import type { TcpSkb } from './tcp_sock.js';

/** MAX_SKB_FRAGS (CONFIG_MAX_SKB_FRAGS's default). */
export const MAX_SKB_FRAGS = 17;
const PAGE_SIZE = 4096;

/** Where a zerocopy send stands in the user's iovec: element lengths, the current element and the offset in it. */
export interface ZcIter {
  lens: readonly number[];
  i: number;
  off: number;
}

/** The iovec of a MSG_ZEROCOPY send (one element when the caller gave a plain buffer). */
export function zcIter(lens: readonly number[]): ZcIter {
  return { lens, i: 0, off: 0 };
}

/**
 * The skb can take no more of this send: its frags are used up. Copied
 * data coalesces into the skb's last page frag when that is one (the
 * socket's page_frag); pinned pages never do.
 */
export function tcpSkbFragsFull(skb: TcpSkb, zc: ZcIter | null): boolean {
  return skb.nrFrags >= MAX_SKB_FRAGS && (zc !== null || !skb.fragCopy);
}

/**
 * __zerocopy_sg_from_iter: walk up to `want` bytes of the iovec into
 * `skb`'s frags. With `commit` the iterator and the skb's frag count move;
 * without, it only measures. Returns the bytes that fit.
 */
function zcWalk(skb: TcpSkb, it: ZcIter, want: number, commit: boolean): number {
  let frags = skb.nrFrags;
  let i = it.i;
  let off = it.off;
  let n = 0;
  while (n < want && i < it.lens.length) {
    if (off >= it.lens[i]) {
      i++;
      off = 0;
      continue;
    }
    if (frags >= MAX_SKB_FRAGS) break;
    frags++;
    const take = Math.min(want - n, it.lens[i] - off, PAGE_SIZE - (off % PAGE_SIZE));
    n += take;
    off += take;
  }
  if (commit) {
    skb.nrFrags = frags;
    skb.fragCopy = false;
    it.i = i;
    it.off = off;
  }
  return n;
}

/** How much of the next `want` bytes of a zerocopy send fits in the frags `skb` has left. */
export function tcpZcRoom(skb: TcpSkb, it: ZcIter, want: number): number {
  return zcWalk(skb, it, want, false);
}

/** `copy` bytes of the send went into `skb`: as pinned frags (`zc`), or copied into its page frag. */
export function tcpSkbFragsAdd(skb: TcpSkb, zc: ZcIter | null, copy: number): void {
  if (zc !== null) zcWalk(skb, zc, copy, true);
  else if (copy && !skb.fragCopy) {
    skb.nrFrags++;
    skb.fragCopy = true;
  }
}
