/**
 * What TCP does when a copy from user memory faults in tcp_sendmsg: the
 * skb made for the copy, still empty, leaves the write queue
 * (tcp_remove_empty_skb), so nothing is sent for it.
 */
import { skMemUncharge } from '../core/sock.js';
import { userAccessible } from '../core/uaccess.js';
import { TCP_CHRONO_BUSY, tcpChronoStop } from './tcp_chrono.js';
import type { TcpProto } from './tcp_proto.js';
import type { TcpSkb, TcpSock } from './tcp_sock.js';

export { userAccessible };

/**
 * Does copying `len` bytes of `data` from `off` into `skb` fault? Then the
 * skb, if the copy was to be its first, is removed (tcp_sendmsg_locked's
 * do_error path).
 */
export function tcpCopyFaults(tcp: TcpProto, sk: TcpSock, skb: TcpSkb, data: Uint8Array, off: number, len: number): boolean {
  if (userAccessible(data, off, len) >= len) return false;
  tcpRemoveEmptySkb(tcp, sk, skb);
  return true;
}

/** tcp_remove_empty_skb: unlink the empty tail skb and give back what it holds. */
export function tcpRemoveEmptySkb(tcp: TcpProto, sk: TcpSock, skb: TcpSkb): void {
  if (skb.len || sk.wqTail !== skb) return;
  let prev: TcpSkb | null = null;
  for (let s = sk.wqHead; s && s !== skb; s = s.next) prev = s;
  if (prev) prev.next = null;
  else sk.wqHead = null;
  sk.wqTail = prev;
  if (sk.sendHead === skb) sk.sendHead = null;
  if (!sk.sendHead) tcpChronoStop(tcp, sk, TCP_CHRONO_BUSY); // tcp_write_queue_empty
  sk.wmemQueued -= skb.truesize;
  skMemUncharge(sk, skb.truesize);
  if (skb.page) tcp.sndPages.put(skb.page);
}
