/**
 * Urgent data on receive (net/ipv4/tcp_input.c's tcp_check_urg and
 * tcp_urg, with tcp.c's reading rules): the urgent pointer marks one byte
 * (BSD's reading, net.ipv4.tcp_stdurg=0), held out of the stream: a read
 * stops before it and steps over it (no SO_OOBINLINE here), tcp_read_sock
 * (splice) stops at it, and poll reports POLLPRI while it is pending.
 */
import { after, before, seqAdd } from '../../lib/seq.js';
import type { SkBuff } from '../core/skbuff.js';
import { TCPHDR_URG } from '../../wire/tcp.js';
import { rcvSegFree } from './tcp_rcvq.js';
import { tcpSkbCb } from './tcp_skb_cb.js';
import type { TcpProto } from './tcp_proto.js';
import type { TcpSock } from './tcp_sock.js';

/** tp->urg_data's flags; the low byte holds the urgent byte once it came. */
export const TCP_URG_VALID = 0x0100;
export const TCP_URG_NOTYET = 0x0200;
export const TCP_URG_READ = 0x0400;

/** tcp_check_urg: a new urgent pointer (seq + urg_ptr - 1) replaces an older one. */
function tcpCheckUrg(tcp: TcpProto, sk: TcpSock, seq: number, urgPtr: number): void {
  let ptr = urgPtr;
  if (ptr) ptr--;
  ptr = seqAdd(seq, ptr);
  // Already read, in the past, or no newer than the one we have.
  if (after(sk.copiedSeq, ptr)) return;
  if (before(ptr, sk.rcvNxt)) return;
  if (sk.urgData && !after(ptr, sk.urgSeq)) return;
  // The last byte read was urgent and more data follows: step over it now.
  if (sk.urgSeq === sk.copiedSeq && sk.urgData && sk.copiedSeq !== sk.rcvNxt) {
    const q = sk.receiveQueue;
    sk.copiedSeq = seqAdd(sk.copiedSeq, 1);
    const s = q[0];
    if (s && !before(sk.copiedSeq, s.endSeq)) {
      q.shift();
      sk.rmemAlloc -= s.len;
      rcvSegFree(tcp.rcvPages, sk, s);
    }
  }
  sk.urgData = TCP_URG_NOTYET;
  sk.urgSeq = ptr;
}

/** tcp_urg: step 6 of segment processing, before the text is queued. */
export function tcpUrg(tcp: TcpProto, sk: TcpSock, skb: SkBuff): void {
  const tcb = tcpSkbCb(skb);
  if (tcb.tcpFlags & TCPHDR_URG) {
    const th = tcb.dataOff - tcb.doff;
    tcpCheckUrg(tcp, sk, tcb.seq, (skb.buf[th + 18] << 8) | skb.buf[th + 19]);
  }
  if (sk.urgData === TCP_URG_NOTYET) {
    // Does the urgent pointer point into this segment's payload?
    const ptr = (sk.urgSeq - tcb.seq) >>> 0;
    if (ptr < tcb.dataLen) {
      sk.urgData = TCP_URG_VALID | skb.buf[tcb.dataOff + ptr];
      sk.wake?.(sk, 0);
    }
  }
}

/**
 * tcp_recvmsg's urgent-data rules, for a read of up to `len` bytes from
 * copied_seq: at the mark the urgent byte is stepped over (not for
 * MSG_PEEK, which reads through it); before it, the read stops at it.
 * Returns how many bytes the read may take.
 */
export function tcpUrgRecvLimit(tcp: TcpProto, sk: TcpSock, len: number, peek: boolean): number {
  if (!sk.urgData) return len;
  let off = (sk.urgSeq - sk.copiedSeq) >>> 0;
  if (off === 0 && !peek && sk.receiveQueue.length) {
    const s = sk.receiveQueue[0];
    s.off++;
    s.len--;
    sk.rmemAlloc--;
    sk.copiedSeq = seqAdd(sk.copiedSeq, 1);
    if (s.len === 0) {
      sk.receiveQueue.shift();
      rcvSegFree(tcp.rcvPages, sk, s);
    }
    off = (sk.urgSeq - sk.copiedSeq) >>> 0;
  }
  // Past the urgent byte: it is done with (the skip_copy check).
  if (after(sk.copiedSeq, sk.urgSeq)) {
    sk.urgData = 0;
    return len;
  }
  // MSG_PEEK at the mark reads through the urgent byte.
  return off === 0 && peek ? len : Math.min(len, off);
}

/** tcp_read_sock's stop: the bytes before the urgent mark (0 at it). */
export function tcpUrgReadLimit(sk: TcpSock, len: number): number {
  if (!sk.urgData) return len;
  const off = (sk.urgSeq - sk.copiedSeq) >>> 0;
  return off < len ? off : len;
}
