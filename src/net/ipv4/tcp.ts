/**
 * The socket calls of TCP (net/ipv4/tcp.c, af_inet.c, inet_connection_sock.c):
 * bind, listen, accept, connect, sendmsg, recvmsg, shutdown, close, socket
 * options and poll, plus the state changes they share with the input path
 * (tcp_set_state, tcp_done). Calls never block: they return -EAGAIN and the
 * caller waits for the socket's wake-up (the API's blocking calls and the
 * built-in services are written that way).
 *
 * Errors are negative Linux errno values.
 */
import { ipGetsockoptFlag, ipSetsockoptFlag, ipv6GetsockoptFlag, ipv6SetsockoptFlag } from './ip_sockglue.js';
import { rcvQueuePurge, rcvSegFree } from './tcp_rcvq.js';
import { formatIpv4, formatIpv6, IN6ADDR_ANY, INADDR_ANY, INADDR_BROADCAST, ipv4IsMulticast } from '../../lib/addr.js';
import { seqAdd } from '../../lib/seq.js';
import { TCPHDR_PSH } from '../../wire/tcp.js';
import type { TcpProto } from './tcp_proto.js';
import {
  MAX_TCP_WINDOW,
  SKB_TRUESIZE_OVERHEAD,
  skStreamIsWriteable,
  tcpNotsentLowat,
  TCP_NAGLE_CORK,
  TCP_NAGLE_OFF,
  TCP_NAGLE_PUSH,
  TCP_TIMEWAIT_LEN,
  TcpSkb,
  TcpSock,
  TcpSysctl,
  type TcpTimerFns,
} from './tcp_sock.js';
import {
  tcpConnectSend,
  tcpCurrentMss,
  tcpFullSpace,
  tcpPushPendingFrames,
  tcpReceiveWindow,
  tcpSelectInitialWindow,
  tcpSelectWindowRaw,
  tcpSendAck,
  tcpSendActiveReset,
  tcpSendFin,
  tcpSkbEntail,
  tcpSyncMss,
  tcpWriteXmit,
  tcpXmitSizeGoal,
  tcpCheckProbeTimer,
} from './tcp_output.js';

import { tcpInitCongestionControl } from './tcp_cong.js';
import {
  type InetSock,
  RCV_SHUTDOWN,
  SEND_SHUTDOWN,
  SHUTDOWN_MASK,
  SK_MEM_QUANTUM,
  SK_MEM_SEND,
  skForcedMemSchedule,
  skMemCharge,
  skMemReclaim,
  skMemSchedule,
  skMemUncharge,
  skStreamModerateSndbuf,
  SOCK_MIN_SNDBUF,
  SOCK_RCVBUF_LOCK,
  sockGetsockoptInt,
  sockOptInt,
  type SockProt,
  sockSetsockoptInt,
  TCP_CLOSE,
  TCP_CLOSE_WAIT,
  TCP_ESTABLISHED,
  TCP_FIN_WAIT1,
  TCP_FIN_WAIT2,
  TCP_LAST_ACK,
  TCP_LISTEN,
  TCP_STATE_NAMES,
  TCP_SYN_RECV,
  TCP_SYN_SENT,
  TCP_TIME_WAIT,
} from '../core/sock.js';
import { inetTwskHashdance } from './inet_timewait_sock.js';
import { inetCskReqskQueueDropAll } from './inet_connection_sock.js';
import { inet6BindPort } from '../ipv6/inet6_hashtables.js';
import {
  AF_INET,
  AF_INET6,
  EADDRNOTAVAIL,
  EAFNOSUPPORT,
  EAGAIN,
  EALREADY,
  EINPROGRESS,
  EINVAL,
  EISCONN,
  ENETDOWN,
  ENETUNREACH,
  ENOENT,
  ENOPROTOOPT,
  ENOTCONN,
  ENOTTY,
  EPIPE,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  MSG_EOR,
  MSG_MORE,
  MSG_PEEK,
  MSG_ZEROCOPY,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLOUT,
  POLLRDHUP,
  POLLRDNORM,
  POLLWRNORM,
  SHUT_RD,
  SHUT_RDWR,
  SIOCINQ,
  SIOCOUTQ,
  SOL_IP,
  SOL_SOCKET,
  SOL_TCP,
  TCP_CONGESTION,
  TCP_CORK,
  TCP_INFO,
  TCP_INQ,
  TCP_KEEPCNT,
  TCP_KEEPIDLE,
  TCP_KEEPINTVL,
  TCP_MAXSEG,
  TCP_NODELAY,
  TCP_NOTSENT_LOWAT,
  TCP_USER_TIMEOUT,
} from '../../uapi.js';
import { encodeTcpInfo, TCP_INFO_SIZE, tcpGetInfo } from './tcp_info.js';
import { msgZerocopyPutAbort, netZcopyPut, skbZcopyClear, tcpSkbFragsAdd, tcpSkbFragsFull, tcpZcRoom, zcIter } from './tcp_zerocopy.js';
import { tcpTxTimestamp } from './tcp_tstamp.js';
import { type RecvErr, sockRecvErrorMsg } from '../core/errqueue.js';
import { TCP_CHRONO_BUSY, tcpChronoStop } from './tcp_chrono.js';
// The socket calls' errors, for their callers.

// recv/send flags (include/linux/socket.h).

// Socket option levels and names (asm-generic/socket.h, linux/tcp.h).


// --- state ---------------------------------------------------------------------

/** Tell the socket's owner what is now true (sk_data_ready / sk_write_space / sk_state_change). */
export function tcpWake(sk: TcpSock, events: number): void {
  // A child not yet accepted has no owner: its data waits for accept().
  if (sk.wake) sk.wake(sk, events);
}

/** tcp_set_state: the counters and hash changes that go with a state change. */
export function tcpSetState(tcp: TcpProto, sk: TcpSock, state: number): void {
  const old = sk.state;
  if (old === state) return;
  const mib = tcp.mibs.Tcp;
  if (state === TCP_ESTABLISHED) mib.CurrEstab++;
  else if (old === TCP_ESTABLISHED) mib.CurrEstab--;
  const sport = sk.num;
  if (state === TCP_CLOSE) {
    if (old === TCP_CLOSE_WAIT || old === TCP_ESTABLISHED) mib.EstabResets++;
    if (old !== TCP_LISTEN && old !== TCP_CLOSE && sk.hashLinks.inEhash) tcp.hashinfo.ehashRemove(sk);
    // inet_put_port: a port connect() or listen() picked goes with the connection; one bind() named stays until close().
    if (sk.hashLinks.bound && !sk.userBoundPort) tcp.hashinfo.unbind(sk);
  }
  sk.state = state;
  if (tcp.stack.debug) tcp.stack.log.debug({ sport, dport: sk.dport, from: TCP_STATE_NAMES[old], to: TCP_STATE_NAMES[state] }, 'tcp state');
}

/** tcp_clear_xmit_timers. */
export function tcpClearXmitTimers(tcp: TcpProto, sk: TcpSock): void {
  tcp.time.timers.del(sk.retransmitTimer);
  tcp.time.timers.del(sk.delackTimer);
  tcp.time.timers.del(sk.keepaliveTimer);
  sk.pending = 0;
  sk.ackPending = 0;
}

/** The write queue is freed (tcp_write_queue_purge). */
function tcpWriteQueuePurge(tcp: TcpProto, sk: TcpSock): void {
  for (let skb = sk.wqHead; skb; skb = skb.next) {
    if (skb.page) tcp.sndPages.put(skb.page);
    skbZcopyClear(skb);
  }
  sk.wqHead = sk.wqTail = sk.sendHead = null;
  skMemUncharge(sk, sk.wmemQueued);
  sk.wmemQueued = 0;
  sk.packetsOut = sk.retransOut = sk.lostOut = sk.sackedOut = 0;
  tcpChronoStop(tcp, sk, TCP_CHRONO_BUSY);
}

/** inet_csk_destroy_sock: gone for good (an orphan reaching CLOSE, or close() of a closed socket). */
export function tcpDestroySock(tcp: TcpProto, sk: TcpSock): void {
  tcpClearXmitTimers(tcp, sk);
  tcpWriteQueuePurge(tcp, sk);
  rcvQueuePurge(tcp.rcvPages, sk, sk.receiveQueue);
  sk.errQueuePurge();
  rcvQueuePurge(tcp.rcvPages, sk, sk.ofoQueue);
  sk.rmemAlloc = 0;
  // sk_mem_reclaim_final: the socket's reservation goes back whole.
  skMemReclaim(sk);
  if (sk.hashLinks.inEhash) tcp.hashinfo.ehashRemove(sk);
  if (sk.num && sk.hashLinks.bound) tcp.hashinfo.unbind(sk);
  if (tcp.socks.delete(sk) && sk.orphan) tcp.orphanCount--;
}

/** tcp_done: the connection is over (reset, timeout, or the last ACK). */
export function tcpDone(tcp: TcpProto, sk: TcpSock): void {
  if (sk.state === TCP_SYN_SENT || sk.state === TCP_SYN_RECV) tcp.mibs.Tcp.AttemptFails++;
  tcpSetState(tcp, sk, TCP_CLOSE);
  tcpClearXmitTimers(tcp, sk);
  tcpWriteQueuePurge(tcp, sk);
  sk.shutdown = SHUTDOWN_MASK;
  sk.done = true;
  if (sk.orphan) {
    tcpDestroySock(tcp, sk);
    return;
  }
  // A child reset before accept() stays queued, as in Linux: accept returns it and reads fail.
  tcpWake(sk, POLLIN | POLLOUT | POLLHUP | (sk.err ? POLLERR : 0));
}

/**
 * tcp_time_wait: hand the connection's last state to a TIME_WAIT sock; the
 * socket itself closes. Past tcp_max_tw_buckets there is no TIME_WAIT sock
 * (TCPTimeWaitOverflow): the connection just ends, its 4-tuple and port free.
 */
export function tcpTimeWait(tcp: TcpProto, sk: TcpSock, substate: number, timeo: number): void {
  if (!inetTwskHashdance(tcp, sk, substate, timeo)) {
    tcp.mibs.TcpExt.TCPTimeWaitOverflow++;
    if (sk.hashLinks.inEhash) tcp.hashinfo.ehashRemove(sk);
    if (sk.num && sk.hashLinks.bound && (sk.orphan || !sk.userBoundPort)) tcp.hashinfo.unbind(sk);
  }
  const wasOrphan = sk.orphan;
  // The tw sock now owns the 4-tuple and the port; the socket just ends.
  tcpSetState(tcp, sk, TCP_CLOSE);
  tcpClearXmitTimers(tcp, sk);
  tcpWriteQueuePurge(tcp, sk);
  sk.shutdown = SHUTDOWN_MASK;
  sk.done = true;
  if (wasOrphan) tcpDestroySock(tcp, sk);
  else tcpWake(sk, POLLIN | POLLHUP);
}

// --- socket, bind, listen, accept, connect -------------------------------------------

/**
 * sk_alloc + tcp_init_sock: a new socket with the stack's defaults (its
 * default congestion control, buffer sizes, a random IP ID), its timers
 * calling `timers` (tcp_init_xmit_timers: the stack's handlers, or the
 * listener's for a child), its calls `prot` (tcp_prot, tcpv6_prot, or the
 * listener's for a child). AF_INET6 sockets start dual-stack unless
 * net.ipv6.bindv6only.
 */
export function tcpInitSock(tcp: TcpProto, family: number, timers: TcpTimerFns, prot: SockProt<TcpSock>): TcpSock {
  const ops = tcp.congestion.find(tcp.sysctl.tcp_congestion_control) ?? tcp.congestion.fallback;
  const sk = new TcpSock(tcp.sysctl, ops, timers);
  if (family === AF_INET6) {
    sk.setFamily6();
    // inet6_create: IPV6_V6ONLY starts as net.ipv6.bindv6only says.
    sk.ipv6only = tcp.sysctl.bindv6only !== 0;
  }
  sk.inetId = tcp.random.u32() & 0xffff;
  sk.prot = prot;
  // tcp_assign_congestion_control: the stack default (its state is set up again at establishment).
  tcpInitCongestionControl(sk, ops, tcp.now());
  return sk;
}

/** inet_bind: `addr` must be ours (or any); the port must be free by Linux's rules. */
export function tcpBind(tcp: TcpProto, sk: TcpSock, addr: number, port: number): number {
  // An AF_INET6 socket binds through tcpV6Bind (ipv6/tcp_ipv6.ts), a v4-mapped address for IPv4.
  if (sk.family === AF_INET6) return -EAFNOSUPPORT;
  if (sk.state !== TCP_CLOSE || sk.num) return -EINVAL;
  if (port < 0 || port > 65535) return -EINVAL;
  if (addr !== INADDR_ANY && !tcp.stack.fib.isLocal(addr)) return -EADDRNOTAVAIL;
  const rc = tcp.hashinfo.bhash.bind(sk, addr, port);
  if (rc < 0) return rc;
  sk.userBoundPort = port !== 0;
  return 0;
}

/** inet_listen. */
export function tcpListen(tcp: TcpProto, sk: TcpSock, backlog: number): number {
  if (sk.state !== TCP_CLOSE && sk.state !== TCP_LISTEN) return -EINVAL;
  sk.maxAckBacklog = Math.max(0, Math.min(backlog, tcp.sysctl.somaxconn));
  if (sk.state === TCP_LISTEN) return 0;
  if (!sk.num) {
    const rc = sk.family === AF_INET6 ? inet6BindPort(tcp.hashinfo, sk, IN6ADDR_ANY, 0) : tcp.hashinfo.bhash.bind(sk, INADDR_ANY, 0);
    if (rc < 0) return rc;
  }
  const rc = tcp.hashinfo.listen(sk);
  if (rc < 0) return rc;
  sk.state = TCP_LISTEN;
  tcp.socks.add(sk);
  return 0;
}

/** inet_csk_accept (non-blocking): the oldest established child, or -EAGAIN. */
export function tcpAccept(_tcp: TcpProto, sk: TcpSock): TcpSock | number {
  if (sk.state !== TCP_LISTEN) return -EINVAL;
  const child = sk.acceptQueue.shift();
  if (!child) return -EAGAIN;
  child.parent = null;
  return child;
}

/** tcp_v4_connect: route, ephemeral port, ISN, SYN. -EINPROGRESS while the handshake runs. */
export function tcpConnect(tcp: TcpProto, sk: TcpSock, daddr: number, dport: number): number {
  const st = tcpConnectStateCheck(sk);
  if (st < 0) return st;
  if (dport <= 0 || dport > 65535) return -EINVAL;
  if (daddr === INADDR_ANY || daddr === INADDR_BROADCAST || ipv4IsMulticast(daddr)) return -ENETUNREACH;
  const fib = tcp.stack.fib;
  let saddr = sk.rcvSaddr;
  if (!saddr) {
    if (fib.isLocal(daddr)) saddr = daddr;
    else {
      const rt = fib.lookup(daddr);
      if (!rt) return -ENETUNREACH;
      saddr = rt.prefsrc;
    }
  }
  // ip_route_connect through a device without link (the TAP gone): -ENETDOWN, nothing sent.
  if (!tcp.stack.dev.running && !fib.isLocal(daddr)) return -ENETDOWN;
  const rc = tcp.hashinfo.connectPort(sk, saddr, daddr, dport, (tw) => tcp.twReusable(tw));
  if (rc < 0) return rc;
  tcp.socks.add(sk);
  sk.iss = tcp.secureSeq(saddr, daddr, sk.num, dport);
  sk.tsOff = tcp.tsOff(saddr, daddr);
  tcpConnectInit(tcp, sk);
  tcpSetState(tcp, sk, TCP_SYN_SENT);
  tcpConnectSend(tcp, sk);
  return -EINPROGRESS;
}

/** The states connect() refuses in, as tcp_v4_connect/inet_stream_connect do; 0 to go on. */
export function tcpConnectStateCheck(sk: TcpSock): number {
  switch (sk.state) {
    case TCP_ESTABLISHED:
    case TCP_CLOSE_WAIT:
      return -EISCONN;
    case TCP_SYN_SENT:
    case TCP_SYN_RECV:
      return -EALREADY;
    case TCP_LISTEN:
      return -EINVAL;
    case TCP_CLOSE:
      if (sk.done) return sk.err ? -sk.err : -EISCONN;
      return 0;
    default:
      return -EISCONN;
  }
}


/** tcp_connect_init: options, MSS and the first window for an active open. */
export function tcpConnectInit(tcp: TcpProto, sk: TcpSock): void {
  const sys = tcp.sysctl;
  sk.tstampOk = sys.tcp_timestamps !== 0;
  sk.wscaleOk = sys.tcp_window_scaling !== 0;
  sk.sackOk = sys.tcp_sack !== 0;
  sk.advmss = tcp.advmss(sk, sk.ipv6);
  sk.mssClamp = sk.userMss || 65535;
  sk.maxWindow = 0;
  tcpSyncMss(sk, tcp.routeMtu(sk));
  sk.rcvMss = Math.min(sk.advmss, 536);
  const mss = sk.advmss - (sk.tstampOk ? 12 : 0);
  const [rcvWnd, clamp, wscale] = tcpSelectInitialWindow(tcp, tcpFullSpace(sk), mss, sk.windowClamp, sk.wscaleOk);
  sk.rcvWnd = rcvWnd;
  sk.windowClamp = clamp;
  sk.rcvWscale = wscale;
  sk.rcvSsthresh = rcvWnd;
  sk.sndUna = sk.iss;
  sk.sndNxt = sk.iss;
  sk.writeSeq = sk.iss;
  sk.sndSml = sk.iss;
  sk.rcvNxt = 0;
  sk.rcvWup = 0;
  sk.copiedSeq = 0;
  sk.rto = 1000;
  sk.retransmits = 0;
  sk.rcvTsecrMin = (Math.floor(tcp.now()) + sk.tsOff) >>> 0;
}

/**
 * tcp_init_mem and tcp_init's limits for a stack of `bytes` memory (Linux
 * sizes them from the machine's free buffer pages): tcp_mem's pressure
 * point is 1/16 of it, the min 3/4 of that, the max twice the min; the
 * established hash Linux would make for it (a bucket per 128 KiB, a power
 * of two, at least 128) halved gives tcp_max_orphans and tcp_max_tw_buckets.
 */
export function tcpInitMem(sysctl: TcpSysctl, bytes: number): void {
  const pages = Math.floor(bytes / SK_MEM_QUANTUM);
  const limit = Math.max(Math.floor(pages / 16), 128);
  const min = Math.floor(limit / 4) * 3;
  sysctl.tcp_mem = [min, limit, min * 2];
  const ehash = 2 ** Math.ceil(Math.log2(Math.max(pages >> 5, 128)));
  sysctl.tcp_max_orphans = ehash / 2;
  sysctl.tcp_max_tw_buckets = ehash / 2;
}

// --- sending ---------------------------------------------------------------------

/**
 * tcp_sendmsg_locked, non-blocking: copies what the send buffer takes into
 * size_goal-sized skbs and pushes. Returns bytes taken, or -EAGAIN (nothing
 * fitted; the writer is woken at the sk_stream_min_wspace threshold), or an error.
 */
export function tcpSendmsg(tcp: TcpProto, sk: TcpSock, data: Uint8Array, flags = 0, iov?: readonly number[]): number {
  if (sk.err) {
    const e = sk.err;
    sk.err = 0;
    return -e;
  }
  if (sk.shutdown & SEND_SHUTDOWN) return -EPIPE;
  if (sk.state !== TCP_ESTABLISHED && sk.state !== TCP_CLOSE_WAIT) {
    if (sk.state === TCP_SYN_SENT || sk.state === TCP_SYN_RECV) return -EAGAIN;
    return -EPIPE; // sk_stream_wait_connect: not connecting
  }
  const zc = flags & MSG_ZEROCOPY && sk.zerocopy && data.length ? zcIter(sk, data.length, iov ?? [data.length], sk.sendHead && sk.wqTail) : null;
  const mssNow = tcpCurrentMss(sk);
  const sizeGoal = tcpXmitSizeGoal(sk, mssNow);
  let copied = 0;
  let left = data.length;
  while (left > 0) {
    let skb = sk.wqTail;
    // Append only to an unsent tail skb (sendHead..tail are unsent).
    let copy = skb && sk.sendHead && !skb.eor && !(skb.tcpFlags & 0x01) ? sizeGoal - skb.len : 0;
    if (copy > 0 && skb && tcpSkbFragsFull(skb, zc)) copy = tcpMarkPush(sk, skb); // out of frags: a new segment
    if (copy <= 0 || !skb) {
      if (!tcpStreamMemoryFree(sk)) {
        sk.noSpace = true;
        break;
      }
      // tcp_stream_alloc_skb: tcp_mem refuses a new skb (the first one, with both queues
      // empty, is forced in): pressure, a smaller send buffer, and wait.
      if (!sk.wqHead) skForcedMemSchedule(sk, SKB_TRUESIZE_OVERHEAD);
      else if (!skMemSchedule(sk, SKB_TRUESIZE_OVERHEAD, SK_MEM_SEND)) {
        sk.prot?.memory?.enterPressure();
        skStreamModerateSndbuf(sk);
        sk.noSpace = true;
        break;
      }
      // sk_page_frag: a pooled page rather than a new buffer per skb.
      const page = tcp.sndPages.get(sizeGoal);
      skb = new TcpSkb(page ? page.buf : Buffer.allocUnsafe(sizeGoal), 0, sizeGoal, sk.writeSeq);
      skb.page = page;
      tcpSkbEntail(sk, skb, tcp);
      copy = sizeGoal;
    }
    if (copy > left) copy = left;
    if (zc) copy = tcpZcRoom(skb, zc, copy);
    copy = tcpWmemSchedule(tcp, sk, copy);
    if (!copy) {
      sk.noSpace = true;
      break;
    }
    if (skb.len + copy > skb.cap) {
      // A split-off tail (tso_fragment) shares its buffer and has no room of
      // its own; Linux appends to it anyway (page frags) up to size_goal, so
      // the skb boundaries the wire shows stay Linux's: give it its own buffer.
      const size = Math.max(sizeGoal, skb.len + copy);
      const page = tcp.sndPages.get(size);
      const buf = page ? page.buf : Buffer.allocUnsafe(size);
      skb.buf.copy(buf, 0, skb.off, skb.off + skb.len);
      if (skb.page) tcp.sndPages.put(skb.page);
      skb.page = page;
      skb.buf = buf;
      skb.off = 0;
      skb.cap = buf.length;
    }
    skb.buf.set(data.subarray(copied, copied + copy), skb.off + skb.len);
    tcpSkbFragsAdd(skb, zc, copy);
    skb.len += copy;
    skb.endSeq = seqAdd(skb.endSeq, copy);
    skb.truesize += copy;
    skMemCharge(sk, copy);
    sk.wmemQueued += copy;
    sk.writeSeq = seqAdd(sk.writeSeq, copy);
    copied += copy;
    left -= copy;
    if (!left) {
      if (flags & MSG_EOR) skb.eor = true;
      break;
    }
    if (skb.len < sizeGoal) continue;
    if (forcedPush(sk)) {
      tcpMarkPush(sk, skb);
      tcpPushPendingFrames(tcp, sk, TCP_NAGLE_PUSH);
    } else if (skb === sk.sendHead) {
      // tcp_push_one.
      if (tcpWriteXmit(tcp, sk, mssNow, sk.nonagle, true)) tcpCheckProbeTimer(tcp, sk);
    }
  }
  if (copied) {
    tcpTxTimestamp(sk);
    tcpPush(tcp, sk, flags, mssNow);
    if (zc) netZcopyPut(zc.uarg);
    return copied;
  }
  if (zc) msgZerocopyPutAbort(zc.uarg);
  return sk.noSpace ? -EAGAIN : 0;
}

/** inet_recv_error: tcp_recvmsg with MSG_ERRQUEUE, the oldest queued entry, or -EAGAIN. */
export function tcpRecvErrqueue(sk: TcpSock, into: Uint8Array = Buffer.alloc(0)): RecvErr | number {
  return sockRecvErrorMsg(sk, sk.family, into);
}

/**
 * tcp_wmem_schedule: reserve send memory for `copy` bytes. With tcp_mem
 * refusing, a socket holding less than tcp_wmem[0] still gets that much
 * (some progress is guaranteed); returns how many bytes may be copied.
 */
function tcpWmemSchedule(tcp: TcpProto, sk: TcpSock, copy: number): number {
  if (skMemSchedule(sk, copy, SK_MEM_SEND)) return copy;
  const left = tcp.sysctl.tcp_wmem[0] - sk.wmemQueued;
  if (left > 0) skForcedMemSchedule(sk, Math.min(left, copy));
  return Math.max(0, Math.min(copy, sk.forwardAlloc));
}

/** sk_stream_memory_free: below the send buffer and the not-sent low-water mark. */
function tcpStreamMemoryFree(sk: TcpSock): boolean {
  if (sk.wmemQueued >= sk.sndbuf) return false;
  const notsent = (sk.writeSeq - sk.sndNxt) >>> 0;
  return notsent < tcpNotsentLowat(sk);
}

function forcedPush(sk: TcpSock): boolean {
  return ((sk.writeSeq - (sk.pushedSeq + (sk.maxWindow >> 1))) | 0) > 0;
}

function tcpMarkPush(sk: TcpSock, skb: TcpSkb): 0 {
  skb.tcpFlags |= TCPHDR_PSH;
  sk.pushedSeq = sk.writeSeq;
  return 0;
}

/** tcp_push: PSH the tail unless MSG_MORE, then send what Nagle/cork allow. */
function tcpPush(tcp: TcpProto, sk: TcpSock, flags: number, mssNow: number): void {
  const skb = sk.wqTail;
  if (!skb || !sk.sendHead) return;
  if (!(flags & MSG_MORE) || forcedPush(sk)) tcpMarkPush(sk, skb);
  const nonagle = flags & MSG_MORE ? TCP_NAGLE_CORK : sk.nonagle;
  if (sk.state === TCP_CLOSE) return;
  if (tcpWriteXmit(tcp, sk, mssNow, nonagle, false)) tcpCheckProbeTimer(tcp, sk);
}

// --- receiving -------------------------------------------------------------------

/**
 * tcp_recvmsg, non-blocking: copy queued data into `into`. Returns bytes,
 * 0 at end of stream, -EAGAIN when nothing is there yet, or an error.
 */
export function tcpRecvmsg(tcp: TcpProto, sk: TcpSock, into: Uint8Array, flags = 0): number {
  if (sk.state === TCP_LISTEN) return -ENOTCONN;
  const peek = (flags & MSG_PEEK) !== 0;
  let copied = 0;
  const q = sk.receiveQueue;
  let i = 0;
  const want = into.length;
  while (copied < want && i < q.length) {
    const s = q[i];
    const n = Math.min(s.len, want - copied);
    // The one copy: page fragment -> the reader's buffer.
    s.page.buf.copy(into, copied, s.off, s.off + n);
    copied += n;
    if (peek) {
      i++;
      continue;
    }
    s.off += n;
    s.len -= n;
    if (s.len === 0) {
      q.shift();
      rcvSegFree(tcp.rcvPages, sk, s);
    }
  }
  if (copied) {
    if (!peek) {
      sk.copiedSeq = seqAdd(sk.copiedSeq, copied);
      sk.rmemAlloc -= copied;
      tcpRcvSpaceAdjust(tcp, sk);
      tcpCleanupRbuf(tcp, sk, copied);
      skMemReclaim(sk);
    }
    return copied;
  }
  if (sk.err) {
    const e = sk.err;
    sk.err = 0;
    return -e;
  }
  if (sk.done || sk.shutdown & RCV_SHUTDOWN) return 0;
  if (sk.state === TCP_CLOSE) return -ENOTCONN;
  return -EAGAIN;
}

/**
 * tcp_read_sock (what splice uses): hand queued data to `actor` where it
 * lies in the receive queue's pages, with no copy into a buffer of ours;
 * `actor(buf, off, len)` returns the bytes it took, and taking fewer than
 * offered stops the walk. At most `max` bytes. Returns the bytes taken;
 * with nothing taken, what tcpRecvmsg would (0 at end of stream, an error,
 * or -EAGAIN, also when data is queued but the actor took none).
 */
export function tcpReadSock(tcp: TcpProto, sk: TcpSock, actor: (buf: Buffer, off: number, len: number) => number, max: number): number {
  if (sk.state === TCP_LISTEN) return -ENOTCONN;
  const q = sk.receiveQueue;
  let copied = 0;
  while (q.length && copied < max) {
    const s = q[0];
    const want = Math.min(s.len, max - copied);
    const n = actor(s.page.buf, s.off, want);
    if (n <= 0) break;
    copied += n;
    s.off += n;
    s.len -= n;
    if (s.len === 0) {
      q.shift();
      rcvSegFree(tcp.rcvPages, sk, s);
    }
    if (n < want) break;
  }
  if (copied) {
    sk.copiedSeq = seqAdd(sk.copiedSeq, copied);
    sk.rmemAlloc -= copied;
    tcpRcvSpaceAdjust(tcp, sk);
    tcpCleanupRbuf(tcp, sk, copied);
    skMemReclaim(sk);
    return copied;
  }
  if (q.length) return -EAGAIN;
  return tcpRecvmsg(tcp, sk, EMPTY_READ, 0);
}
/** An empty read: what tcpRecvmsg answers when nothing is queued (0 at EOF, an error, or -EAGAIN). */
const EMPTY_READ = new Uint8Array(0);

/**
 * tcp_inq_hint: what a TCP_INQ socket's recvmsg reports in TCP_CM_INQ,
 * the bytes still to read; 1 after the peer's FIN with nothing left, so
 * the reader goes on to see end of stream.
 */
export function tcpInqHint(sk: TcpSock): number {
  const inq = (sk.rcvNxt - sk.copiedSeq) | 0;
  if (inq <= 0) return sk.done ? 1 : 0;
  return inq;
}

/** Bytes waiting to be read (SIOCINQ). */
export function tcpInq(sk: TcpSock): number {
  return (sk.rcvNxt - sk.copiedSeq - (sk.finQueued ? 1 : 0)) >>> 0;
}

/**
 * tcp_cleanup_rbuf: after a read, send a window update when the window
 * the peer sees is less than half of what we could now offer.
 */
function tcpCleanupRbuf(tcp: TcpProto, sk: TcpSock, copied: number): void {
  if (sk.state === TCP_CLOSE || sk.state === TCP_LISTEN) return;
  let timeToAck = false;
  if (sk.ackPending & 1 && ((sk.rcvNxt - sk.rcvWup) >>> 0) > sk.rcvMss && sk.ackPingpong === 0) timeToAck = true;
  if (copied > 0 && !timeToAck && !(sk.shutdown & RCV_SHUTDOWN)) {
    const now = tcpReceiveWindow(sk);
    if (2 * now <= sk.windowClamp) {
      const nw = tcpSelectWindowRaw(sk);
      if (nw && nw >= 2 * now) timeToAck = true;
    }
  }
  if (timeToAck) tcpSendAck(tcp, sk);
}

/**
 * tcp_rcv_space_adjust (dynamic right-sizing, simplified): when a reader
 * drains more than the buffer held per RTT, grow the buffer (up to
 * tcp_rmem[2]) so the window can cover the path.
 */
function tcpRcvSpaceAdjust(tcp: TcpProto, sk: TcpSock): void {
  if (!tcp.sysctl.tcp_moderate_rcvbuf || sk.userlocks & SOCK_RCVBUF_LOCK) return;
  const now = tcp.now();
  const rtt = Math.max((sk.srttUs >> 3) / 1000, 1);
  if (!sk.rcvqSpaceTime) {
    sk.rcvqSpaceTime = now;
    sk.rcvqSpaceSeq = sk.copiedSeq;
    return;
  }
  if (now - sk.rcvqSpaceTime < rtt) return;
  const got = (sk.copiedSeq - sk.rcvqSpaceSeq) >>> 0;
  sk.rcvqSpaceSeq = sk.copiedSeq;
  sk.rcvqSpaceTime = now;
  if (got <= sk.rcvqSpaceSpace) return;
  sk.rcvqSpaceSpace = got;
  // Room for twice what arrived per RTT, as payload is half the buffer (tcp_win_from_space).
  const want = Math.min(4 * got, tcp.sysctl.tcp_rmem[2]);
  if (want > sk.rcvbuf) {
    sk.rcvbuf = want;
    sk.windowClamp = Math.max(sk.windowClamp, Math.min(want >> 1, 65535 * 2 ** sk.rcvWscale));
  }
}

// --- shutdown and close -----------------------------------------------------------

/** tcp_close_state: where close/shutdown(WR) moves us; true if a FIN must go out. */
function tcpCloseState(tcp: TcpProto, sk: TcpSock): boolean {
  switch (sk.state) {
    case TCP_ESTABLISHED:
    case TCP_SYN_RECV:
      tcpSetState(tcp, sk, TCP_FIN_WAIT1);
      return true;
    case TCP_CLOSE_WAIT:
      tcpSetState(tcp, sk, TCP_LAST_ACK);
      return true;
    case TCP_SYN_SENT:
    case TCP_LISTEN:
      tcpSetState(tcp, sk, TCP_CLOSE);
      return false;
    default:
      return false;
  }
}

/** inet_shutdown + tcp_shutdown. */
export function tcpShutdown(tcp: TcpProto, sk: TcpSock, how: number): number {
  if (how < SHUT_RD || how > SHUT_RDWR) return -EINVAL;
  const mask = how + 1; // SHUT_RD -> RCV_SHUTDOWN, SHUT_WR -> SEND_SHUTDOWN, both
  switch (sk.state) {
    case TCP_CLOSE:
      return -ENOTCONN;
    case TCP_SYN_SENT:
      tcpDisconnect(tcp, sk);
      return 0;
    case TCP_LISTEN:
      if (!(mask & RCV_SHUTDOWN)) return 0;
      tcpListenStop(tcp, sk);
      tcpSetState(tcp, sk, TCP_CLOSE);
      return 0;
  }
  sk.shutdown |= mask;
  if (mask & SEND_SHUTDOWN && (sk.state === TCP_ESTABLISHED || sk.state === TCP_SYN_RECV || sk.state === TCP_CLOSE_WAIT)) {
    if (tcpCloseState(tcp, sk)) tcpSendFin(tcp, sk);
  }
  tcpWake(sk, POLLIN | POLLOUT | POLLRDHUP);
  return 0;
}

/** tcp_disconnect: abort (RST where the peer knows us), back to CLOSE. */
export function tcpDisconnect(tcp: TcpProto, sk: TcpSock): void {
  const old = sk.state;
  if (old === TCP_LISTEN) tcpListenStop(tcp, sk);
  else if (old !== TCP_CLOSE && old !== TCP_SYN_SENT && old !== TCP_TIME_WAIT) tcpSendActiveReset(tcp, sk);
  if (old === TCP_SYN_SENT) tcp.mibs.Tcp.AttemptFails++;
  tcpSetState(tcp, sk, TCP_CLOSE);
  tcpClearXmitTimers(tcp, sk);
  tcpWriteQueuePurge(tcp, sk);
  rcvQueuePurge(tcp.rcvPages, sk, sk.receiveQueue);
  rcvQueuePurge(tcp.rcvPages, sk, sk.ofoQueue);
  sk.rmemAlloc = 0;
  sk.shutdown = 0;
  sk.done = false;
}

/** inet_csk_listen_stop: pending children are aborted, request socks dropped. */
function tcpListenStop(tcp: TcpProto, sk: TcpSock): void {
  for (const child of sk.acceptQueue) {
    child.parent = null;
    child.orphan = true;
    tcp.orphanCount++;
    tcpDisconnect(tcp, child);
    tcpDestroySock(tcp, child);
  }
  sk.acceptQueue = [];
  inetCskReqskQueueDropAll(tcp, sk);
  tcp.hashinfo.unlisten(sk);
}

/**
 * tcp_close: the user lets go. Unread data means RST (RFC 2525, as Linux);
 * SO_LINGER 0 means RST; otherwise FIN and the socket lives on as an orphan
 * until the close handshake ends.
 */
export function tcpClose(tcp: TcpProto, sk: TcpSock): void {
  sk.shutdown = SHUTDOWN_MASK;
  sk.wake = null;
  if (sk.state === TCP_LISTEN) {
    tcpListenStop(tcp, sk);
    tcpSetState(tcp, sk, TCP_CLOSE);
    tcpDestroySock(tcp, sk);
    return;
  }
  const unread = rcvQueuePurge(tcp.rcvPages, sk, sk.receiveQueue);
  // Only the receive queue is let go: the out-of-order queue stays charged until the socket is destroyed.
  sk.rmemAlloc -= unread;

  if (sk.state === TCP_CLOSE) {
    tcpDestroySock(tcp, sk);
    return;
  }
  if (unread) {
    tcp.mibs.TcpExt.TCPAbortOnClose++;
    // The reset first: it goes out from the port, which CLOSE may release (Linux keeps inet_sport).
    tcpSendActiveReset(tcp, sk);
    tcpSetState(tcp, sk, TCP_CLOSE);
  } else if (sk.lingerSec === 0) {
    tcp.mibs.TcpExt.TCPAbortOnData++;
    tcpDisconnect(tcp, sk);
  } else if (tcpCloseState(tcp, sk)) {
    tcpSendFin(tcp, sk);
  }
  sk.orphan = true;
  tcp.orphanCount++;
  if (sk.state === TCP_FIN_WAIT2) {
    const tmo = Math.max(tcp.sysctl.tcp_fin_timeout, (sk.rto << 2) - (sk.rto >> 1));
    if (tmo > TCP_TIMEWAIT_LEN) tcp.time.timers.mod(sk.keepaliveTimer, tcp.now() + tmo - TCP_TIMEWAIT_LEN);
    else {
      tcpTimeWait(tcp, sk, TCP_FIN_WAIT2, tmo);
      return;
    }
  }
  if (sk.state !== TCP_CLOSE && tcpCheckOom(tcp, sk, 0)) {
    tcpSetState(tcp, sk, TCP_CLOSE);
    tcpSendActiveReset(tcp, sk);
    tcp.mibs.TcpExt.TCPAbortOnMemory++;
  }
  if (sk.state === TCP_CLOSE) tcpDestroySock(tcp, sk);
}

/**
 * tcp_check_oom: too many orphans (their count shifted left by `shift`
 * past tcp_max_orphans), or this socket holds send data while tcp_mem is
 * over its max. Said in the log at most once a second.
 */
export function tcpCheckOom(tcp: TcpProto, sk: TcpSock, shift: number): boolean {
  const tooManyOrphans = tcp.orphanCount * 2 ** shift > tcp.sysctl.tcp_max_orphans;
  const mem = tcp.mem;
  const outOfMemory = sk.wmemQueued > SOCK_MIN_SNDBUF && mem.allocated > mem.limits()[2];
  if (tooManyOrphans || outOfMemory) {
    const now = tcp.now();
    if (now - tcp.oomLogged >= 1000) {
      tcp.oomLogged = now;
      tcp.stack.log.warn({ orphans: tcp.orphanCount, pages: mem.allocated }, tooManyOrphans ? 'too many orphaned sockets' : 'out of memory -- consider tuning tcp_mem');
    }
  }
  return tooManyOrphans || outOfMemory;
}

// --- options and poll -----------------------------------------------------------------

/**
 * tcp_set_keepalive (struct proto's keepalive): SO_KEEPALIVE on arms the
 * keepalive timer of a connection that is up; off stops it (an orphan in
 * FIN_WAIT2 uses the timer for its FIN timeout and keeps it).
 */
export function tcpSetKeepalive(tcp: TcpProto, sk: TcpSock, on: boolean): void {
  if (on && (sk.state === TCP_ESTABLISHED || sk.state === TCP_CLOSE_WAIT)) {
    tcp.time.timers.mod(sk.keepaliveTimer, tcp.now() + (sk.keepaliveTime || tcp.sysctl.tcp_keepalive_time));
  } else if (!on && sk.state !== TCP_FIN_WAIT2) {
    tcp.time.timers.del(sk.keepaliveTimer);
  }
}

/** setsockopt for SOL_SOCKET and SOL_TCP options with integer values. */
export function tcpSetsockopt(tcp: TcpProto, sk: TcpSock, level: number, name: number, val: number): number {
  if (!Number.isInteger(val)) return -EINVAL;
  // The socket layer's, for every protocol (its SO_KEEPALIVE reaches tcpSetKeepalive through sk.prot).
  if (level === SOL_SOCKET) return sockSetsockoptInt(sk, name, val);
  // IPPROTO_IPV6 options exist on AF_INET6 sockets only (ip_setsockopt says ENOPROTOOPT).
  if (level === IPPROTO_IPV6 && sk.family === AF_INET6) {
    if (name === IPV6_V6ONLY) {
      // do_ipv6_setsockopt: not once the socket holds a port.
      if (sk.num) return -EINVAL;
      sk.ipv6only = val !== 0;
      return 0;
    }
    return ipv6SetsockoptFlag(sk, name, val) ?? -ENOPROTOOPT;
  }
  if (level === SOL_IP) return ipSetsockoptFlag(sk, name, val) ?? -ENOPROTOOPT;
  if (level === SOL_TCP) {
    switch (name) {
      case TCP_NODELAY:
        if (val) {
          sk.nonagle |= TCP_NAGLE_OFF | TCP_NAGLE_PUSH;
          tcpPushPendingFrames(tcp, sk);
        } else {
          sk.nonagle &= ~TCP_NAGLE_OFF;
        }
        return 0;
      case TCP_CORK:
        if (val) {
          sk.nonagle |= TCP_NAGLE_CORK;
        } else {
          sk.nonagle &= ~TCP_NAGLE_CORK;
          if (sk.nonagle & TCP_NAGLE_OFF) sk.nonagle |= TCP_NAGLE_PUSH;
          tcpPushPendingFrames(tcp, sk);
        }
        return 0;
      case TCP_MAXSEG:
        if (val && (val < 88 || val > MAX_TCP_WINDOW)) return -EINVAL;
        sk.userMss = val;
        return 0;
      case TCP_KEEPIDLE:
        if (val < 1 || val > 32767) return -EINVAL;
        sk.keepaliveTime = val * 1000;
        if (sk.keepaliveOn && (sk.state === TCP_ESTABLISHED || sk.state === TCP_CLOSE_WAIT)) tcp.time.timers.mod(sk.keepaliveTimer, tcp.now() + sk.keepaliveTime);
        return 0;
      case TCP_KEEPINTVL:
        if (val < 1 || val > 32767) return -EINVAL;
        sk.keepaliveIntvl = val * 1000;
        return 0;
      case TCP_KEEPCNT:
        if (val < 1 || val > 127) return -EINVAL;
        sk.keepaliveProbes = val;
        return 0;
      case TCP_USER_TIMEOUT:
        if (val < 0) return -EINVAL;
        sk.userTimeout = val;
        return 0;
      case TCP_INQ:
        if (val < 0 || val > 1) return -EINVAL;
        sk.recvmsgInq = val === 1;
        return 0;
      case TCP_NOTSENT_LOWAT:
        sk.notsentLowat = val >>> 0;
        if (skStreamIsWriteable(sk, 0)) tcpWake(sk, POLLOUT);
        return 0;
      default:
        return -ENOPROTOOPT;
    }
  }
  return -ENOPROTOOPT;
}

/** getsockopt for integer-valued options; returns the value or a negative errno. */
export function tcpGetsockopt(tcp: TcpProto, sk: TcpSock, level: number, name: number): number {
  if (level === IPPROTO_IPV6 && sk.family === AF_INET6) return name === IPV6_V6ONLY ? (sk.ipv6only ? 1 : 0) : (ipv6GetsockoptFlag(sk, name) ?? -ENOPROTOOPT);
  if (level === SOL_IP) return ipGetsockoptFlag(sk, name) ?? -ENOPROTOOPT;
  if (level === SOL_SOCKET) return sockGetsockoptInt(sk, name);
  if (level === SOL_TCP) {
    switch (name) {
      case TCP_NODELAY:
        return sk.nonagle & TCP_NAGLE_OFF ? 1 : 0;
      case TCP_CORK:
        return sk.nonagle & TCP_NAGLE_CORK ? 1 : 0;
      case TCP_MAXSEG:
        // Before the handshake: the user's value or the default; after: the MSS in use.
        if (sk.state === TCP_CLOSE || sk.state === TCP_LISTEN) return sk.userMss || 536;
        return sk.mssCache;
      case TCP_KEEPIDLE:
        return Math.floor((sk.keepaliveTime || tcp.sysctl.tcp_keepalive_time) / 1000);
      case TCP_KEEPINTVL:
        return Math.floor((sk.keepaliveIntvl || tcp.sysctl.tcp_keepalive_intvl) / 1000);
      case TCP_KEEPCNT:
        return sk.keepaliveProbes || tcp.sysctl.tcp_keepalive_probes;
      case TCP_USER_TIMEOUT:
        return sk.userTimeout;
      case TCP_NOTSENT_LOWAT:
        return sk.notsentLowat;
      case TCP_INQ:
        return sk.recvmsgInq ? 1 : 0;
      default:
        return -ENOPROTOOPT;
    }
  }
  return -ENOPROTOOPT;
}

/**
 * setsockopt for string-valued options: TCP_CONGESTION (the algorithm by
 * name; -ENOENT if unknown). An established connection switches at once,
 * the new algorithm starting from the current window (tcp_reinit_congestion_control).
 */
export function tcpSetsockoptStr(tcp: TcpProto, sk: TcpSock, level: number, name: number, val: string): number {
  if (level !== SOL_TCP || name !== TCP_CONGESTION) return -ENOPROTOOPT;
  const ops = tcp.congestion.find(val);
  if (!ops) return -ENOENT;
  if (ops !== sk.caOps) tcpInitCongestionControl(sk, ops, tcp.now());
  return 0;
}

/** getsockopt for string-valued options: TCP_CONGESTION. */
export function tcpGetsockoptStr(_tcp: TcpProto, sk: TcpSock, level: number, name: number): string | number {
  if (level !== SOL_TCP || name !== TCP_CONGESTION) return -ENOPROTOOPT;
  return sk.caOps.name;
}

/** TCP_CA_NAME_MAX: the room TCP_CONGESTION's name has (NUL-padded when read). */
const TCP_CA_NAME_MAX = 16;

/** tcp_ioctl: SIOCINQ (FIONREAD) and SIOCOUTQ; EINVAL on a listener. */
export function tcpIoctl(sk: TcpSock, cmd: number): number {
  if (cmd !== SIOCINQ && cmd !== SIOCOUTQ) return -ENOTTY;
  if (sk.state === TCP_LISTEN) return -EINVAL;
  return cmd === SIOCINQ ? tcpInq(sk) : (sk.writeSeq - sk.sndUna) >>> 0;
}

/**
 * tcp_setsockopt after the socket layer: SOL_TCP (TCP_CONGESTION by name,
 * the rest ints) and IPPROTO_IPV6's IPV6_V6ONLY (an AF_INET socket has no
 * IPv6 options: ENOPROTOOPT, as ip_setsockopt says).
 */
export function tcpSockSetsockopt(tcp: TcpProto, sk: TcpSock, level: number, optname: number, optval: Buffer): number {
  if (level === SOL_TCP) {
    // tcp_set_congestion_control: a name up to TCP_CA_NAME_MAX, ENOENT if no such algorithm.
    if (optname === TCP_CONGESTION) return tcpSetsockoptStr(tcp, sk, level, optname, optval.subarray(0, TCP_CA_NAME_MAX).toString('latin1').replace(/\0.*$/s, ''));
    if (optname === TCP_INFO) return -ENOPROTOOPT;
    if (optval.length < 4) return -EINVAL;
    return tcpSetsockopt(tcp, sk, level, optname, optval.readInt32LE(0));
  }
  if (level === IPPROTO_IPV6 && optname === IPV6_V6ONLY) {
    if (optval.length < 4) return sk.family === AF_INET ? -ENOPROTOOPT : -EINVAL;
    return tcpSetsockopt(tcp, sk, level, optname, optval.readInt32LE(0));
  }
  return -ENOPROTOOPT;
}

/** tcp_getsockopt after the socket layer: struct tcp_info, TCP_CONGESTION's name, the int options. */
export function tcpSockGetsockopt(tcp: TcpProto, sk: TcpSock, level: number, optname: number): Buffer | number {
  if (level === SOL_TCP) {
    if (optname === TCP_INFO) {
      const b = Buffer.alloc(TCP_INFO_SIZE);
      encodeTcpInfo(tcpGetInfo(tcp, sk), b);
      return b;
    }
    if (optname === TCP_CONGESTION) {
      const v = tcpGetsockoptStr(tcp, sk, level, optname);
      if (typeof v === 'number') return v;
      const b = Buffer.alloc(TCP_CA_NAME_MAX);
      b.write(v);
      return b;
    }
  } else if (level !== IPPROTO_IPV6) {
    return -ENOPROTOOPT;
  }
  const v = tcpGetsockopt(tcp, sk, level, optname);
  return v < 0 ? v : sockOptInt(v);
}

/** tcp_poll: the events true now. */
export function tcpPoll(_tcp: TcpProto, sk: TcpSock): number {
  if (sk.state === TCP_LISTEN) return sk.acceptQueue.length ? POLLIN | POLLRDNORM : 0;
  let mask = 0;
  if (sk.shutdown === SHUTDOWN_MASK || sk.state === TCP_CLOSE) mask |= POLLHUP;
  if (sk.shutdown & RCV_SHUTDOWN) mask |= POLLIN | POLLRDNORM | POLLRDHUP;
  if (sk.state !== TCP_SYN_SENT && (sk.state !== TCP_SYN_RECV || sk.parent)) {
    if (tcpInq(sk) >= sk.rcvlowat) mask |= POLLIN | POLLRDNORM;
    if (!(sk.shutdown & SEND_SHUTDOWN)) {
      if (skStreamIsWriteable(sk, 0)) mask |= POLLOUT | POLLWRNORM;
      else sk.noSpace = true;
    } else {
      mask |= POLLOUT | POLLWRNORM;
    }
  }
  if (sk.err || sk.errQueueLen) mask |= POLLERR;
  return mask;
}

/** A state name for display (`ss`). */
/**
 * One end of a socket as `ss` prints it: a.b.c.d:port for AF_INET (`*` for
 * the wildcard), [addr]:port for AF_INET6 (v4-mapped for an IPv4 peer).
 */
export function tcpEndpoint(s: InetSock, peer: boolean): string {
  const port = peer ? s.dport : s.num;
  if (s.family === AF_INET6) return `[${formatIpv6((peer ? s.v6Daddr : s.v6RcvSaddr)!)}]:${port || '*'}`;
  const a = peer ? s.daddr : s.rcvSaddr;
  return `${a ? formatIpv4(a) : '*'}:${port || '*'}`;
}

export function tcpStateName(state: number): string {
  return TCP_STATE_NAMES[state] ?? String(state);
}

