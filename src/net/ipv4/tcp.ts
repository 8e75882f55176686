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
import { rcvQueuePurge, rcvSegFree } from './tcp_rcvq.js';
import { IN6ADDR_ANY, INADDR_ANY, INADDR_BROADCAST, ipv4IsMulticast } from '../../lib/addr.js';
import { seqAdd } from '../../lib/seq.js';
import { TCPHDR_PSH } from '../../wire/tcp.js';
import type { TcpProto } from './tcp_proto.js';
import { reqskFastopenRemove, tcpFastopenListen, tcpPassiveFastopen } from './tcp_fastopen.js';
import {
  SKB_TRUESIZE_OVERHEAD,
  SS_CONNECTED,
  SS_CONNECTING,
  SS_UNCONNECTED,
  skStreamIsWriteable,
  tcpNotsentLowat,
  TCP_NAGLE_CORK,
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
  tcpPacketsInFlight,
} from './tcp_output.js';
import { tcpRateCheckAppLimited } from './tcp_rate.js';

import { tcpCleanupCongestionControl, tcpInitCongestionControl } from './tcp_cong.js';
import { tcpFastopenActiveRelease, tcpFastopenDeferConnect, tcpSendmsgFastopen } from './tcp_fastopen_active.js';
import {
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
  type SockProt,
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
import { tcpConnectStateCheck } from './af_inet_connect.js';
import { tcpInq } from './tcp_setsockopt.js';
import { inetTwskHashdance } from './inet_timewait_sock.js';
import { inetCskReqskQueueDropAll } from './inet_connection_sock.js';
import { inet6BindPort } from '../ipv6/inet6_hashtables.js';
import {
  AF_INET6,
  EADDRNOTAVAIL,
  EAFNOSUPPORT,
  EAGAIN,
  EFAULT,
  EINPROGRESS,
  EINVAL,
  ENETDOWN,
  ENETUNREACH,
  ENOTCONN,
  EPIPE,
  MSG_EOR,
  MSG_FASTOPEN,
  type SockAddr,
  MSG_MORE,
  MSG_PEEK,
  MSG_ZEROCOPY,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLOUT,
  POLLPRI,
  POLLRDHUP,
  POLLRDNORM,
  POLLWRNORM,
  SHUT_RD,
  SHUT_RDWR,
} from '../../uapi.js';
import { msgZerocopyPutAbort, msgZerocopyRealloc, netZcopyPut, skbZcopyClear, skbZcopySet, tcpSkbFragsAdd, tcpSkbFragsFull, tcpZcRoom, zcIter } from './tcp_zerocopy.js';
import { tcpTxTimestamp } from './tcp_tstamp.js';
import { type RecvErr, sockRecvErrorMsg } from '../core/errqueue.js';
import { TCP_CHRONO_BUSY, tcpChronoStop } from './tcp_chrono.js';
import { tcpMd5LookupPeer } from './tcp_md5.js';
import { tcpCopyFaults, userAccessible } from './tcp_uaccess.js';
import { tcpMtupInit } from './tcp_mtu_probe.js';
import { tcpFinTime } from './tcp_sockopt.js';
import { TCP_URG_VALID, tcpUrgReadLimit, tcpUrgRecvLimit } from './tcp_urg.js';
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
  const tr = tcp.trace;
  if (tr !== null) tr.setState(sk, state);
  sk.state = state;
  if (tcp.stack.debug) tcp.stack.log.debug({ sport, dport: sk.dport, from: TCP_STATE_NAMES[old], to: TCP_STATE_NAMES[state] }, 'tcp state');
}

/** tcp_clear_xmit_timers. */
export function tcpClearXmitTimers(tcp: TcpProto, sk: TcpSock): void {
  tcp.time.timers.del(sk.retransmitTimer);
  tcp.time.timers.del(sk.delackTimer);
  tcp.time.timers.del(sk.keepaliveTimer);
  tcp.time.timers.del(sk.pacingTimer);
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
  if (sk.fastopenRsk) reqskFastopenRemove(tcp, sk, sk.fastopenRsk, false);
  tcpClearXmitTimers(tcp, sk);
  // tcp_v4_destroy_sock: the algorithm lets go of the socket first.
  tcpCleanupCongestionControl(sk);
  tcpWriteQueuePurge(tcp, sk);
  tcpFastopenActiveRelease(tcp, sk, sk.ofoQueue.length === 1 && sk.ofoQueue[0].fin);
  rcvQueuePurge(tcp.rcvPages, sk, sk.receiveQueue);
  sk.errQueuePurge();
  rcvQueuePurge(tcp.rcvPages, sk, sk.ofoQueue);
  sk.rmemAlloc = 0;
  // sk_mem_reclaim_final: the socket's reservation goes back whole.
  skMemReclaim(sk);
  if (sk.hashLinks.inEhash) tcp.hashinfo.ehashRemove(sk);
  if (sk.num && sk.hashLinks.bound) tcp.hashinfo.unbind(sk);
  if (tcp.socks.delete(sk) && sk.orphan) tcp.orphans.add(-1);
}

/** tcp_done: the connection is over (reset, timeout, or the last ACK). */
export function tcpDone(tcp: TcpProto, sk: TcpSock): void {
  if (sk.state === TCP_SYN_SENT || sk.state === TCP_SYN_RECV) tcp.mibs.Tcp.AttemptFails++;
  if (sk.fastopenRsk) reqskFastopenRemove(tcp, sk, sk.fastopenRsk, false);
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
  if (addr !== INADDR_ANY && !tcp.stack.fib.isLocal(addr) && !sk.freebind) return -EADDRNOTAVAIL;
  const rc = tcp.hashinfo.bhash.bind(sk, addr, port);
  if (rc < 0) return rc;
  sk.userBoundPort = port !== 0;
  return 0;
}

/** inet_listen. */
export function tcpListen(tcp: TcpProto, sk: TcpSock, backlog: number): number {
  // inet_listen: only a socket that never connected (a reset one is still SS_CONNECTED).
  if (sk.socketState !== SS_UNCONNECTED) return -EINVAL;
  if (sk.state !== TCP_CLOSE && sk.state !== TCP_LISTEN) return -EINVAL;
  sk.maxAckBacklog = Math.max(0, Math.min(backlog, tcp.sysctl.somaxconn));
  if (sk.state === TCP_LISTEN) return 0;
  tcpFastopenListen(tcp, sk, backlog);
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
  child.socketState = SS_CONNECTED; // inet_accept
  return child;
}

/** tcp_v4_connect: route, ephemeral port, ISN, SYN. -EINPROGRESS while the handshake runs. */
export function tcpConnect(tcp: TcpProto, sk: TcpSock, daddr: number, dport: number): number {
  const st = tcpConnectStateCheck(sk);
  if (st !== null) return st;
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
  sk.socketState = SS_CONNECTING;
  if (tcpFastopenDeferConnect(tcp, sk)) return 0;
  tcpConnectSend(tcp, sk);
  return -EINPROGRESS;
}

/** tcp_connect_init: options, MSS and the first window for an active open. */
export function tcpConnectInit(tcp: TcpProto, sk: TcpSock): void {
  const sys = tcp.sysctl;
  sk.tstampOk = sys.tcp_timestamps !== 0;
  sk.wscaleOk = sys.tcp_window_scaling !== 0;
  sk.sackOk = sys.tcp_sack !== 0;
  // tcp_syn_options: no timestamps beside an MD5 signature, which tcp_header_len counts.
  sk.md5Hdr = tcpMd5LookupPeer(sk.md5sigInfo, sk) !== null;
  if (sk.md5Hdr) sk.tstampOk = false;
  sk.advmss = tcp.advmss(sk, sk.ipv6);
  sk.mssClamp = sk.userMss || 65535;
  sk.maxWindow = 0;
  tcpMtupInit(tcp, sk);
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
export function tcpSendmsg(tcp: TcpProto, sk: TcpSock, data: Uint8Array, flags = 0, to: SockAddr | null = null, iov?: readonly number[]): number {
  // tcp_sendmsg_fastopen: the bytes the SYN took, or the connect's result (a blocking caller waits for it, then sends).
  const fo = flags & MSG_FASTOPEN || sk.deferConnect ? tcpSendmsgFastopen(tcp, sk, data, to, (s, a) => s.prot!.connect(s, a), (s) => (tcpConnectInit(tcp, s), tcpConnectSend(tcp, s))) : 0;
  if (fo > 0 && flags & MSG_ZEROCOPY && sk.zerocopy) {
    // A notification only for data the SYN took: the SYN-data skb holds the send until it is acked.
    const u = msgZerocopyRealloc(sk, fo, null);
    const synData = sk.synData ? (sk.wqHead?.next ?? null) : null;
    if (synData) {
      skbZcopySet(synData, u);
      u.zerocopy = false; // the SYN already took it out through the device, which copies (tcpSkbTransmitted)
    }
    netZcopyPut(u);
  }
  if (fo !== 0) return fo;
  tcpRateCheckAppLimited(sk, tcpPacketsInFlight(sk)); // is sending application-limited?
  if (sk.err) {
    const e = sk.err;
    sk.err = 0;
    return -e;
  }
  if (sk.shutdown & SEND_SHUTDOWN) return -EPIPE;
  if (sk.state !== TCP_ESTABLISHED && sk.state !== TCP_CLOSE_WAIT && !tcpPassiveFastopen(sk)) {
    if (sk.state === TCP_SYN_SENT || sk.state === TCP_SYN_RECV) return -EAGAIN;
    // sk_stream_wait_connect: never connected, listening or closed alike (Linux 6.18, measured).
    return -EPIPE;
  }
  const zc = flags & MSG_ZEROCOPY && sk.zerocopy && data.length ? zcIter(sk, data.length, iov ?? [data.length], sk.sendHead && sk.wqTail) : null;
  const mssNow = tcpCurrentMss(sk);
  const sizeGoal = tcpXmitSizeGoal(sk, mssNow);
  let copied = 0;
  let left = data.length;
  let faulted = false;
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
    // copy_from_iter_full: a chunk reaching memory that faults is not copied (EFAULT, or what was).
    if ((faulted = tcpCopyFaults(tcp, sk, skb, data, copied, copy))) break;
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
  return faulted ? -EFAULT : sk.noSpace ? -EAGAIN : 0;
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
  let faulted = false;
  const want = tcpUrgRecvLimit(tcp, sk, into.length, peek);
  while (copied < want && i < q.length) {
    const s = q[i];
    const n = Math.min(s.len, want - copied);
    if ((faulted = userAccessible(into, copied, n) < n)) break; // copy_to_user fails: EFAULT, or what was copied
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
  if (faulted) return -EFAULT;
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
  max = tcpUrgReadLimit(sk, max); // stop at urgent data
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
 * tcp_rcv_space_adjust: once per receiver RTT (rcv_rtt_est, not srtt: a
 * pure receiver's srtt is the handshake's), what the application took in
 * that RTT, less what still waits in the queue (a slow reader must not look
 * fast), becomes the baseline; a larger one grows the buffer to keep twice
 * it in flight (tcp_rcvbuf_grow), payload being half the buffer.
 */
function tcpRcvSpaceAdjust(tcp: TcpProto, sk: TcpSock): void {
  const now = tcp.now();
  if (sk.rcvRttUs === 0 || (now - sk.rcvqSpaceTime) * 1000 < sk.rcvRttUs >> 3) return;
  const copied = ((sk.copiedSeq - sk.rcvqSpaceSeq) >>> 0) - ((sk.rcvNxt - sk.copiedSeq) >>> 0);
  if (copied > sk.rcvqSpaceSpace) {
    sk.rcvqSpaceSpace = copied;
    if (tcp.sysctl.tcp_moderate_rcvbuf && !(sk.userlocks & SOCK_RCVBUF_LOCK)) {
      const want = Math.min(4 * copied, tcp.sysctl.tcp_rmem[2]);
      if (want > sk.rcvbuf) {
        sk.rcvbuf = want;
        sk.windowClamp = Math.max(sk.windowClamp, Math.min(want >> 1, 65535 * 2 ** sk.rcvWscale));
      }
    }
  }
  sk.rcvqSpaceSeq = sk.copiedSeq;
  sk.rcvqSpaceTime = now;
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
  tcpFastopenActiveRelease(tcp, sk, sk.ofoQueue.length === 1 && sk.ofoQueue[0].fin);
  rcvQueuePurge(tcp.rcvPages, sk, sk.receiveQueue);
  rcvQueuePurge(tcp.rcvPages, sk, sk.ofoQueue);
  sk.rmemAlloc = 0;
  sk.shutdown = 0;
  sk.done = false;
}

/** inet_csk_listen_stop: pending children are aborted, request socks dropped. */
function tcpListenStop(tcp: TcpProto, sk: TcpSock): void {
  for (const child of sk.acceptQueue) {
    if (child.fastopenRsk) reqskFastopenRemove(tcp, child, child.fastopenRsk, false);
    child.parent = null;
    child.orphan = true;
    tcp.orphans.add(1);
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
  tcp.orphans.add(1);
  if (sk.state === TCP_FIN_WAIT2 && sk.linger2 < 0) {
    // TCP_LINGER2 < 0: an orphan does not wait in FIN_WAIT2, it is reset.
    tcpSendActiveReset(tcp, sk);
    tcpSetState(tcp, sk, TCP_CLOSE);
    tcp.mibs.TcpExt.TCPAbortOnLinger++;
  } else if (sk.state === TCP_FIN_WAIT2) {
    const tmo = tcpFinTime(tcp, sk);
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
  const orphans = tcp.orphans.read();
  const tooManyOrphans = orphans * 2 ** shift > tcp.sysctl.tcp_max_orphans;
  const mem = tcp.mem;
  const allocated = mem.memoryAllocated();
  const outOfMemory = sk.wmemQueued > SOCK_MIN_SNDBUF && allocated > mem.limits()[2];
  if (tooManyOrphans || outOfMemory) {
    const now = tcp.now();
    if (now - tcp.oomLogged >= 1000) {
      tcp.oomLogged = now;
      tcp.stack.log.warn({ orphans, pages: allocated }, tooManyOrphans ? 'too many orphaned sockets' : 'out of memory -- consider tuning tcp_mem');
    }
  }
  return tooManyOrphans || outOfMemory;
}

// --- poll (the options are in tcp_setsockopt.ts) --------------------------------------

export {
  tcpGetsockopt,
  tcpGetsockoptStr,
  tcpInq,
  tcpInqHint,
  tcpIoctl,
  tcpSetKeepalive,
  tcpSetsockopt,
  tcpSetsockoptStr,
  tcpSockGetsockopt,
  tcpSockSetsockopt,
} from './tcp_setsockopt.js';

/** tcp_poll: the events true now. */
export function tcpPoll(_tcp: TcpProto, sk: TcpSock): number {
  if (sk.state === TCP_LISTEN) return sk.acceptQueue.length ? POLLIN | POLLRDNORM : 0;
  let mask = 0;
  if (sk.shutdown === SHUTDOWN_MASK || sk.state === TCP_CLOSE) mask |= POLLHUP;
  if (sk.shutdown & RCV_SHUTDOWN) mask |= POLLIN | POLLRDNORM | POLLRDHUP;
  if (sk.state !== TCP_SYN_SENT && (sk.state !== TCP_SYN_RECV || sk.parent || sk.fastopenRsk)) {
    if (tcpInq(sk) >= sk.rcvlowat) mask |= POLLIN | POLLRDNORM;
    if (!(sk.shutdown & SEND_SHUTDOWN)) {
      if (skStreamIsWriteable(sk, 0)) mask |= POLLOUT | POLLWRNORM;
      else sk.noSpace = true;
    } else {
      mask |= POLLOUT | POLLWRNORM;
    }
  } else if (sk.state === TCP_SYN_SENT && sk.deferConnect) mask |= POLLOUT | POLLWRNORM; // the write that sends the SYN
  if (sk.urgData & TCP_URG_VALID) mask |= POLLPRI;
  if (sk.err || sk.errQueueLen) mask |= POLLERR;
  return mask;
}

