/**
 * MSG_ZEROCOPY for TCP (tcp_sendmsg_locked's zerocopy branch,
 * skb_zerocopy_iter_stream and __zerocopy_sg_from_iter, the msg_zerocopy
 * uarg of net/core/skbuff.c): the user's pages become the skb's frags, at
 * most MAX_SKB_FRAGS of them, so an skb whose frags are used up is pushed
 * and the send goes on in a new one; every skb holding a send's data holds
 * its notification (ZcUarg), which is queued when the last of them is
 * freed (acknowledged, or purged). The stack copies the data but keeps
 * what a pinned send has: the frag boundaries (each iovec element starts a
 * frag, and a page boundary inside one starts another; elements are taken
 * as page-aligned, the stack cannot see user addresses) and the completion
 * timing; its device copies what it transmits, as tun does
 * (skb_orphan_frags_rx), so a sent skb's completion says
 * SO_EE_CODE_ZEROCOPY_COPIED.
 */
import { msgZerocopyCallback } from '../core/errqueue.js';
import type { Sock } from '../core/sock.js';
import { type TcpSkb, ZcUarg } from './tcp_sock.js';

/**
 * msg_zerocopy_realloc: the notification of a new MSG_ZEROCOPY send of
 * `size` bytes. It extends the one the unsent tail skb holds when that is
 * the socket's latest (ids consecutive, under 512 KiB in all), else it is
 * a new one (msg_zerocopy_alloc); either takes the next sk_zckey.
 */
export function msgZerocopyRealloc(sk: Sock, size: number, tail: ZcUarg | null): ZcUarg {
  const next = sk.zckey;
  sk.zckey = (next + 1) >>> 0;
  if (tail && tail.len < 0xfffe && tail.bytelen + size <= 1 << 19 && ((tail.id + tail.len) >>> 0) === next) {
    tail.len++;
    tail.bytelen += size;
    tail.refs++;
    return tail;
  }
  const u = new ZcUarg(sk, next);
  u.bytelen = size;
  return u;
}

/** net_zcopy_put (msg_zerocopy_complete): a holder is done; the last one queues the notification, if it names any send. */
export function netZcopyPut(u: ZcUarg): void {
  if (--u.refs > 0 || !u.len) return;
  msgZerocopyCallback(u.sk, u.id, (u.id + u.len - 1) >>> 0, u.zerocopy);
}

/** msg_zerocopy_put_abort: the send took nothing: its id goes back, and so does the call's hold. */
export function msgZerocopyPutAbort(u: ZcUarg): void {
  u.sk.zckey = (u.sk.zckey - 1) >>> 0;
  u.len--;
  netZcopyPut(u);
}

/** skb_zcopy_set: the skb now holds the send's pages (one hold per skb). */
export function skbZcopySet(skb: TcpSkb, u: ZcUarg): void {
  if (skb.uarg !== null) return;
  skb.uarg = u;
  u.refs++;
}

/** skb_zcopy_clear: the skb is freed; its hold goes. */
export function skbZcopyClear(skb: TcpSkb): void {
  const u = skb.uarg;
  if (u === null) return;
  skb.uarg = null;
  netZcopyPut(u);
}


/** MAX_SKB_FRAGS (CONFIG_MAX_SKB_FRAGS's default). */
export const MAX_SKB_FRAGS = 17;
const PAGE_SIZE = 4096;

/** A zerocopy send: its notification, and where it stands in the user's iovec (element lengths, the current element, the offset in it). */
export interface ZcIter {
  uarg: ZcUarg;
  lens: readonly number[];
  i: number;
  off: number;
}

/**
 * The start of a MSG_ZEROCOPY send of `size` bytes on a SO_ZEROCOPY socket
 * (`lens`: its iovec, one element when the caller gave a plain buffer):
 * its notification, taken from the unsent tail skb's when it can extend it.
 */
export function zcIter(sk: Sock, size: number, lens: readonly number[], tail: TcpSkb | null): ZcIter {
  return { uarg: msgZerocopyRealloc(sk, size, tail?.uarg ?? null), lens, i: 0, off: 0 };
}

/**
 * The skb can take no more of this send: its frags are used up, or it
 * holds another send's notification (an skb points to one uarg: -EEXIST).
 * Copied data coalesces into the skb's last page frag when that is one
 * (the socket's page_frag); pinned pages never do.
 */
export function tcpSkbFragsFull(skb: TcpSkb, zc: ZcIter | null): boolean {
  if (zc !== null && skb.uarg !== null && skb.uarg !== zc.uarg) return true;
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
  if (zc !== null) {
    zcWalk(skb, zc, copy, true);
    skbZcopySet(skb, zc.uarg);
  } else if (copy && !skb.fragCopy) {
    skb.nrFrags++;
    skb.fragCopy = true;
  }
}
