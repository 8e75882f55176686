/**
 * The socket's error queue (sk_error_queue) and what reads it: zerocopy
 * completions (net/core/skbuff.c's msg_zerocopy callback), transmit
 * timestamps (__skb_tstamp_tx), the ICMP errors IP_RECVERR keeps, and
 * recvmsg(MSG_ERRQUEUE) (ip_recv_error, ipv6_recv_error, with
 * sock_recv_timestamp's SCM_TIMESTAMPING). One queue for every protocol:
 * TCP and UDP put their entries here and read them with sockRecvError.
 * Control messages are built as the kernel lays them out (x86-64), so the
 * API hands them to programs unchanged.
 */
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  type SockAddr,
  EAGAIN,
  ENOMEM,
  ENOMSG,
  IP_RECVERR,
  IPV6_RECVERR,
  MSG_ERRQUEUE,
  MSG_TRUNC,
  POLLERR,
  SCM_TIMESTAMPING,
  SCM_TIMESTAMPING_SIZE,
  SOCK_EE_SIZE,
  SOF_TIMESTAMPING_OPT_ID,
  SOF_TIMESTAMPING_OPT_TSONLY,
  SOF_TIMESTAMPING_SOFTWARE,
  SO_EE_CODE_ZEROCOPY_COPIED,
  SO_EE_ORIGIN_ICMP,
  SO_EE_ORIGIN_ICMP6,
  SO_EE_ORIGIN_TIMESTAMPING,
  SO_EE_ORIGIN_ZEROCOPY,
  SOCK_STREAM,
  SOL_IP,
  SOL_IPV6,
  SOL_SOCKET,
} from '../../uapi.js';
import { type Cmsg, MsgHdr, type Sock, type SockExterrSkb } from './sock.js';
import { ipv6SetV4Mapped } from '../../lib/addr.js';
export type { Cmsg } from './sock.js';

/** What recvmsg(MSG_ERRQUEUE) returns: bytes copied, msg_flags, the control messages in order. */
export interface RecvErr {
  copied: number;
  flags: number;
  cmsgs: Cmsg[];
  name: SockAddr | null;
}

/** A new error-queue entry of `origin` (the rest zero, as the kernel memsets it). */
export function newExterr(origin: number, errno = 0): SockExterrSkb {
  return { eeErrno: errno, eeOrigin: origin, eeType: 0, eeCode: 0, eeInfo: 0, eeData: 0, offender: null, tstamp: 0, payload: null, name: null };
}

/** SKB_TRUESIZE(0) on x86-64: struct sk_buff and skb_shared_info, cache-aligned. */
const SKB_TRUESIZE_0 = 576;

/** What an entry costs the socket's receive budget (skb->truesize). */
function exterrTruesize(e: SockExterrSkb): number {
  return SKB_TRUESIZE_0 + (e.payload ? e.payload.length : 0);
}

/**
 * sock_queue_err_skb: queue an entry and report POLLERR (sk_error_report).
 * The entry is charged to the receive buffer: one that would take the
 * socket past SO_RCVBUF is dropped (-ENOMEM), so a program that never
 * reads the queue cannot grow it without bound.
 */
export function sockQueueErrSkb(sk: Sock, e: SockExterrSkb): number {
  const size = exterrTruesize(e);
  if (sk.errQueueMem + size >= sk.rcvbuf) return -ENOMEM;
  sk.errQueueMem += size;
  sk.errQueuePush(e);
  return 0;
}

/**
 * __msg_zerocopy_callback: sends lo..hi are done with the user's pages.
 * The completion extends the queue's last zerocopy entry when it follows
 * it (skb_zerocopy_notify_extend: ee_info..ee_data is the range, at most
 * 2^32 ids); else a new entry. `zerocopy` false: the data was copied
 * (SO_EE_CODE_ZEROCOPY_COPIED). The socket is told either way.
 */
export function msgZerocopyCallback(sk: Sock, lo: number, hi: number, zerocopy: boolean): void {
  const tail = sk.errQueueTail();
  if (tail && tail.eeOrigin === SO_EE_ORIGIN_ZEROCOPY && ((tail.eeData + 1) >>> 0) === lo && (hi - tail.eeInfo) >>> 0 < 0xffffffff) {
    tail.eeData = hi;
    if (sk.wake) sk.wake(sk, POLLERR);
    return;
  }
  const e = newExterr(SO_EE_ORIGIN_ZEROCOPY);
  e.eeInfo = lo;
  e.eeData = hi;
  if (!zerocopy) e.eeCode = SO_EE_CODE_ZEROCOPY_COPIED;
  sk.errQueueMem += exterrTruesize(e);
  sk.errQueuePush(e);
}

/**
 * A MSG_ZEROCOPY send on a SO_ZEROCOPY socket took data and holds none of
 * the caller's memory past its return (it was copied: a UDP datagram,
 * built whole as the call runs; data that crossed an API descriptor; TCP
 * holds its sends' pages in its skbs instead, tcp_zerocopy.ts): its id,
 * the next sk_zckey, completes now with SO_EE_CODE_ZEROCOPY_COPIED. A send
 * that took nothing gets no id.
 */
export function sockZerocopyDone(sk: Sock): void {
  if (!sk.zerocopy) return;
  const id = sk.zckey;
  sk.zckey = (id + 1) >>> 0;
  msgZerocopyCallback(sk, id, id, false);
}

/**
 * __skb_tstamp_tx and __skb_complete_tx_timestamp: a transmit timestamp of
 * type `tstype` (SCM_TSTAMP_SCHED, _SND, _ACK) for the data whose key is
 * `tskey`, taken now (`wall`: the real-time clock, ms). ee_errno ENOMSG;
 * with OPT_ID ee_data is the key (a TCP socket's counted from sk_tskey);
 * OPT_TSONLY queues the stamp without the data.
 */
export function skbTstampTx(sk: Sock, tskey: number, tstype: number, wall: number, payload: Buffer | null): void {
  const e = newExterr(SO_EE_ORIGIN_TIMESTAMPING, ENOMSG);
  e.eeInfo = tstype;
  e.tstamp = wall;
  const tsflags = sk.tsflags;
  if (tsflags & SOF_TIMESTAMPING_OPT_ID) e.eeData = (sk.type === SOCK_STREAM ? tskey - sk.tskey : tskey) >>> 0;
  if (!(tsflags & SOF_TIMESTAMPING_OPT_TSONLY) && payload) e.payload = Buffer.from(payload);
  sockQueueErrSkb(sk, e);
}

/** An ICMP error's origin: SO_EE_ORIGIN_ICMP or _ICMP6 (is_icmp_err_skb). */
function isIcmpErr(e: SockExterrSkb): boolean {
  return e.eeOrigin === SO_EE_ORIGIN_ICMP || e.eeOrigin === SO_EE_ORIGIN_ICMP6;
}

/**
 * sock_dequeue_err_skb: the oldest entry. An ICMP error next in line
 * becomes the pending sk_err; taking the last ICMP error clears it; the
 * socket is told when more remain.
 */
export function sockDequeueErrSkb(sk: Sock): SockExterrSkb | null {
  const e = sk.errQueueShift();
  if (typeof e === 'number') return null;
  sk.errQueueMem = Math.max(0, sk.errQueueMem - exterrTruesize(e));
  const next = sk.errQueuePeek();
  const icmpNext = next !== null && isIcmpErr(next);
  if (icmpNext) sk.err = next.eeErrno;
  else if (isIcmpErr(e)) sk.err = 0;
  if (next !== null && sk.wake) sk.wake(sk, POLLERR);
  return e;
}

/** struct scm_timestamping: ts[0] the software stamp (wall ms), ts[1..2] (hardware) zero. */
export function scmTimestamping(wall: number): Buffer {
  const b = Buffer.alloc(SCM_TIMESTAMPING_SIZE);
  const ns = BigInt(Math.round(wall * 1e6));
  b.writeBigInt64LE(ns / 1_000_000_000n, 0);
  b.writeBigInt64LE(ns % 1_000_000_000n, 8);
  return b;
}

/**
 * A sockaddr_in or sockaddr_in6 as the kernel writes it into `b` at `off`:
 * an AF_INET6 socket sees an IPv4 address v4-mapped. Nothing (zeros) for
 * null: the offender of an entry that is not an ICMP error (a zerocopy
 * completion, a transmit stamp: ip(v6)_datagram_support_cmsg says no).
 */
function writeSockaddr(b: Buffer, off: number, v6: boolean, a: SockAddr | null): void {
  if (!a) return;
  if (!v6) {
    b.writeUInt16LE(AF_INET, off);
    b.writeUInt16BE(a.port, off + 2);
    b.writeUInt32BE(a.addr >>> 0, off + 4);
    return;
  }
  b.writeUInt16LE(AF_INET6, off);
  b.writeUInt16BE(a.port, off + 2);
  if (a.family === AF_INET6 && a.addr6) {
    b.set(a.addr6.subarray(0, 16), off + 8);
    b.writeUInt32LE((a.scopeId ?? 0) >>> 0, off + 24);
  } else {
    const m = new Uint8Array(16);
    ipv6SetV4Mapped(m, a.addr);
    b.set(m, off + 8);
  }
}

/** The erring packet's destination as an error-queue read's msg_name, in the socket's family. */
function fillName(out: SockAddr, v6: boolean, a: SockAddr): void {
  out.port = a.port;
  out.flowinfo = 0;
  out.scopeId = 0;
  if (!v6) {
    out.family = AF_INET;
    out.addr = a.addr;
    return;
  }
  out.family = AF_INET6;
  const a6 = (out.addr6 ??= new Uint8Array(16));
  if (a.family === AF_INET6 && a.addr6) {
    a6.set(a.addr6.subarray(0, 16));
    out.scopeId = a.scopeId ?? 0;
    out.addr = 0;
  } else {
    ipv6SetV4Mapped(a6, a.addr);
    out.addr = a.addr;
  }
}

/**
 * ip_recv_error / ipv6_recv_error (with sock_recv_timestamp before it):
 * recvmsg(MSG_ERRQUEUE) of the oldest entry into `into`, the rest into
 * `msg`. The data is the entry's payload (MSG_TRUNC when longer); msg_name
 * the erring packet's destination (ICMP errors); SCM_TIMESTAMPING comes
 * first when the entry has a stamp and SOF_TIMESTAMPING_SOFTWARE reports
 * it; then IP_RECVERR (SOL_IP, for an AF_INET socket) or IPV6_RECVERR:
 * struct sock_extended_err and the offender's sockaddr_in / sockaddr_in6.
 * Returns the bytes copied, or -EAGAIN when the queue is empty.
 */
export function sockRecvError(sk: Sock, family: number, into: Uint8Array, msg: MsgHdr | null): number {
  const e = sockDequeueErrSkb(sk);
  if (e === null) return -EAGAIN;
  let flags = MSG_ERRQUEUE;
  let copied = 0;
  if (e.payload) {
    copied = Math.min(e.payload.length, into.length);
    into.set(e.payload.subarray(0, copied));
    if (e.payload.length > into.length) flags |= MSG_TRUNC;
  }
  if (msg === null) return copied;
  const v6 = family === AF_INET6;
  msg.flags = flags;
  msg.cmsgs = [];
  if (e.name) fillName(msg.name, v6, e.name);
  else msg.name.family = AF_UNSPEC;
  if (e.tstamp && sk.tsflags & SOF_TIMESTAMPING_SOFTWARE) msg.cmsgs.push({ level: SOL_SOCKET, type: SCM_TIMESTAMPING, data: scmTimestamping(e.tstamp) });
  const data = Buffer.alloc(SOCK_EE_SIZE + (v6 ? 28 : 16));
  data.writeUInt32LE(e.eeErrno >>> 0, 0);
  data[4] = e.eeOrigin;
  data[5] = e.eeType;
  data[6] = e.eeCode;
  data.writeUInt32LE(e.eeInfo >>> 0, 8);
  data.writeUInt32LE(e.eeData >>> 0, 12);
  writeSockaddr(data, SOCK_EE_SIZE, v6, e.offender);
  msg.cmsgs.push({ level: v6 ? SOL_IPV6 : SOL_IP, type: v6 ? IPV6_RECVERR : IP_RECVERR, data });
  return copied;
}

/** sockRecvError for a caller that wants the pieces (the packetdrill runner, tests). */
export function sockRecvErrorMsg(sk: Sock, family: number, into: Uint8Array): RecvErr | number {
  const msg = new MsgHdr();
  const n = sockRecvError(sk, family, into, msg);
  if (n < 0) return n;
  return { copied: n, flags: msg.flags, cmsgs: msg.cmsgs, name: msg.name.family === AF_UNSPEC ? null : msg.name };
}

/**
 * Queue an ICMP error about a packet the socket sent (what ip_icmp_error
 * and ipv6_icmp_error share): ee_errno, SO_EE_ORIGIN_ICMP or _ICMP6 with the message's
 * type, code and info (the MTU of a "too big"), the sender of the ICMP
 * message as the offender, the quoted packet's destination as msg_name,
 * and what the message quoted past the transport header's start as data.
 */
export function sockIcmpError(sk: Sock, origin: number, err: number, type: number, code: number, info: number, offender: SockAddr, name: SockAddr, payload: Buffer): void {
  const e = newExterr(origin, err);
  e.eeType = type;
  e.eeCode = code;
  e.eeInfo = info >>> 0;
  e.offender = offender;
  e.name = name;
  e.payload = Buffer.from(payload);
  sockQueueErrSkb(sk, e);
}
