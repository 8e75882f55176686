/**
 * The small socks of TCP (net/ipv4/tcp_minisocks.c and the request-sock
 * half of tcp_input.c/tcp_ipv4.c):
 *  - request socks: a SYN creates one (tcp_conn_request), it answers with
 *    SYN-ACKs on its own timer, and the handshake's final ACK turns it into
 *    a full socket on the listener's accept queue (tcp_check_req);
 *  - TIME_WAIT socks: what is left of a connection for 2*MSL, answering
 *    retransmitted FINs and letting a new SYN reuse the 4-tuple
 *    (tcp_timewait_state_process).
 */
import { tcpInitCongestionControl } from './tcp_cong.js';
import { after, before, seqAdd } from '../../lib/seq.js';
import { TCPHDR_ACK, TCPHDR_CWR, TCPHDR_ECE, TCPHDR_FIN, TCPHDR_RST, TCPHDR_SYN } from '../../wire/tcp.js';
import { ipv6SetV4Mapped } from '../../lib/addr.js';
import type { TcpProto } from './tcp_proto.js';
import type { SkBuff } from '../core/skbuff.js';
import { tcpParseSkbOptions, tcpSkbCb } from './tcp_skb_cb.js';
import {
  TCP_ECN_OK,
  TCP_TIMEOUT_INIT,
  TCP_TIMEWAIT_LEN,
  TcpRequestSock,
  type TcpSock,
  TcpTimewaitSock,
} from './tcp_sock.js';
import { tcpRcvStateProcess, tcpRttEstimator } from './tcp_input.js';
import { tcpInitRcvqSpace, tcpSndbufExpand } from './tcp_rcv.js';
import { tcpFullSpace, tcpSelectInitialWindow, tcpSendSynack, tcpSyncMss, tcpSendAckRaw } from './tcp_output.js';
import { LOOPBACK4_IPV6, TCP_ESTABLISHED, TCP_FIN_WAIT2, TCP_SYN_RECV, TCP_TIME_WAIT } from '../core/sock.js';
import { inetTwskKill } from './inet_timewait_sock.js';
import { tcpMd5CopyToChild, tcpMd5LookupPeer } from './tcp_md5.js';
import { tcpMtupInit } from './tcp_mtu_probe.js';
import {
  inetCskCompleteHashdance,
  inetCskReqskQueueAdd,
  inetCskReqskQueueDrop,
  inetCskReqskQueueHashAdd,
  reqskTimerFn,
} from './inet_connection_sock.js';
import { tcpInitSock } from './tcp.js';
import { tcpTryFastopen } from './tcp_fastopen.js';
import { AF_INET, AF_INET6, POLLIN } from '../../uapi.js';

/** A SYN-cookie request sock is never armed. */
function noTimer(): void {}

/** syn_recv_sock for a Fast Open SYN: the child from the SYN itself (its RTT measured when the handshake ends). */
function fastopenSynRecvSock(tcp: TcpProto, req: TcpRequestSock, skb: SkBuff): TcpSock {
  return tcpCreateOpenreqChild(tcp, req, skb, true);
}

// --- request socks -------------------------------------------------------------

/** Bits of the listener's SYN handling that tcp_ipv4 calls. */
export function tcpConnRequest(tcp: TcpProto, listener: TcpSock, skb: SkBuff, isn = 0): void {
  const tcb = tcpSkbCb(skb);
  const sys = tcp.sysctl;
  const ext = tcp.mibs.TcpExt;
  // A full accept queue drops SYNs (the peer retries), as Linux does.
  if (listener.acceptQueue.length > listener.maxAckBacklog) {
    ext.ListenOverflows++;
    ext.ListenDrops++;
    return;
  }
  // A full SYN queue: SYN cookies (tcp_syncookies=1), or a drop without them.
  let wantCookie = sys.tcp_syncookies === 2;
  if (!isn && listener.reqQlen > listener.maxAckBacklog) {
    if (!sys.tcp_syncookies) {
      ext.TCPReqQFullDrop++;
      ext.ListenDrops++;
      return;
    }
    ext.TCPReqQFullDoCookies++;
    wantCookie = true;
  }
  if (!wantCookie && !isn && !sys.tcp_syncookies && sys.tcp_max_syn_backlog - listener.reqQlen < sys.tcp_max_syn_backlog >> 2) {
    ext.ListenDrops++;
    return;
  }
  const o = tcpParseSkbOptions(skb, false);
  const req = new TcpRequestSock(listener, reqskTimerFn(tcp));
  reqInitTuple(req, listener, skb);
  req.rcvIsn = tcb.seq;
  req.tos = tcb.tos & ~3;
  req.synAt = tcp.now();
  req.tstampOk = o.sawTstamp && sys.tcp_timestamps !== 0;
  req.sackOk = o.sackOk && sys.tcp_sack !== 0;
  // tcp_ecn_create_request: ECE+CWR on a SYN that is not itself ECT asks for ECN; any tcp_ecn but 0 accepts.
  req.ecnOk = (tcb.tcpFlags & (TCPHDR_ECE | TCPHDR_CWR)) === (TCPHDR_ECE | TCPHDR_CWR) && (tcb.tos & 3) === 0 && sys.tcp_ecn !== 0;
  req.wscaleOk = o.sndWscale >= 0 && sys.tcp_window_scaling !== 0;
  req.sndWscale = req.wscaleOk ? o.sndWscale : 0;
  req.mss = o.mssClamp || 536;
  if (listener.userMss && listener.userMss < req.mss) req.mss = listener.userMss;
  const sa6 = tcb.ipv6 ? tcb.saddr6 : null;
  const da6 = tcb.ipv6 ? tcb.daddr6 : null;
  if (req.tstampOk) {
    req.tsRecent = o.rcvTsval;
    req.tsOff = tcp.tsOff(tcb.daddr, tcb.saddr, da6, sa6);
  }
  req.sntIsn = isn || tcp.secureSeq(tcb.daddr, tcb.saddr, tcb.dport, tcb.sport, da6, sa6);
  reqInitRwin(tcp, listener, req, tcp.advmss(listener, req.ipv6));
  if (wantCookie) {
    // Nothing is kept: the ISN and the timestamp carry what the ACK must prove.
    listener.synqOverflowAt = tcp.now();
    const tab = cookieMsstab(req.ipv6);
    req.mss = tab[cookieMssIndex(tab, req.mss)];
    req.sntIsn = cookieV4InitSequence(tcp, req);
    ext.SyncookiesSent++;
    tcpSendSynack(tcp, req, req.tstampOk ? cookieInitTimestamp(tcp, req) : undefined);
    return;
  }
  // tcp_try_fastopen: a child at once (its SYN-ACK acks the SYN's data), or the SYN-ACK carries a cookie.
  const fastopenSk = tcpTryFastopen(tcp, listener, skb, req, o, fastopenSynRecvSock);
  if (fastopenSk) {
    tcpSendSynack(tcp, req, undefined, o);
    if (listener.wake) listener.wake(listener, POLLIN);
    return;
  }
  inetCskReqskQueueHashAdd(tcp, req, TCP_TIMEOUT_INIT);
  tcpSendSynack(tcp, req, undefined, o);
}

/**
 * The request's 4-tuple from the SYN (tcp_v4_init_req / tcp_v6_init_req).
 * Under an AF_INET6 listener the request is AF_INET6 too: IPv6 addresses
 * for an IPv6 SYN (with the IPv4 fields at LOOPBACK4_IPV6, as
 * tcp_v6_connect leaves them), v4-mapped ones next to the IPv4 addresses
 * for an IPv4 SYN to a dual-stack listener.
 */
function reqInitTuple(req: TcpRequestSock, listener: TcpSock, skb: SkBuff): void {
  const tcb = tcpSkbCb(skb);
  req.num = tcb.dport;
  req.dport = tcb.sport;
  if (tcb.ipv6) {
    req.setFamily6();
    req.ipv6 = true;
    req.v6RcvSaddr!.set(tcb.daddr6);
    req.v6Daddr!.set(tcb.saddr6);
    req.rcvSaddr = LOOPBACK4_IPV6;
    req.daddr = LOOPBACK4_IPV6;
    return;
  }
  req.rcvSaddr = tcb.daddr;
  req.daddr = tcb.saddr;
  if (listener.family === AF_INET6) {
    req.setFamily6();
    ipv6SetV4Mapped(req.v6RcvSaddr!, tcb.daddr);
    ipv6SetV4Mapped(req.v6Daddr!, tcb.saddr);
  }
}

/**
 * tcp_check_req: a segment for a request sock. Returns the new child (the
 * caller runs it through the state machine), null when consumed here, or
 * the listener when the segment deserves a reset from it.
 */
export function tcpCheckReq(tcp: TcpProto, req: TcpRequestSock, skb: SkBuff): TcpSock | null | 'reset' {
  const tcb = tcpSkbCb(skb);
  const o = tcpParseSkbOptions(skb, false);
  const flg = tcb.tcpFlags;
  const rcvNxt = seqAdd(req.rcvIsn, 1);
  const pawsReject = req.tstampOk && o.sawTstamp && ((req.tsRecent - o.rcvTsval) | 0) > 1;

  // A retransmitted SYN: answer with the SYN-ACK again.
  if (tcb.seq === req.rcvIsn && flg & TCPHDR_SYN && !(flg & TCPHDR_RST) && !pawsReject) {
    tcpSendSynack(tcp, req);
    req.numRetrans++;
    return null;
  }
  // An ACK of something else: the listener resets it.
  if (flg & TCPHDR_ACK && tcb.ackSeq !== seqAdd(req.sntIsn, 1)) return 'reset';
  const inWindow = !before(tcb.endSeq, rcvNxt) && !after(tcb.seq, seqAdd(rcvNxt, req.rcvWnd));
  if (pawsReject || !inWindow) {
    if (!(flg & TCPHDR_RST)) {
      const key = tcpMd5LookupPeer(req.listener.md5sigInfo, req);
      tcpSendAckRaw(tcp, req, seqAdd(req.sntIsn, 1), rcvNxt, req.rcvWnd >> req.rcvWscale, req.tstampOk, req.tsOff, req.tsRecent, req.tos, key);
    }
    return null;
  }
  if (flg & (TCPHDR_RST | TCPHDR_SYN)) {
    tcp.mibs.Tcp.AttemptFails++;
    tcp.mibs.TcpExt.EmbryonicRsts++;
    inetCskReqskQueueDrop(tcp, req);
    return flg & TCPHDR_RST ? null : 'reset';
  }
  if (!(flg & TCPHDR_ACK)) return null;

  const listener = req.listener;
  // TCP_DEFER_ACCEPT: a bare ACK completes nothing while the deferral lasts; data will.
  if (req.numTimeout < listener.deferAccept && tcb.endSeq === rcvNxt) {
    req.acked = true;
    tcp.mibs.TcpExt.TCPDeferAcceptDrop++;
    return null;
  }
  if (listener.acceptQueue.length > listener.maxAckBacklog) {
    // tcp_abort_on_overflow=0: drop the ACK; the SYN-ACK timer lets the peer ACK again.
    tcp.mibs.TcpExt.ListenOverflows++;
    tcp.mibs.TcpExt.ListenDrops++;
    req.acked = true;
    if (tcp.sysctl.tcp_abort_on_overflow) {
      inetCskReqskQueueDrop(tcp, req);
      return 'reset';
    }
    return null;
  }
  if (o.sawTstamp && req.tstampOk) req.tsRecent = o.rcvTsval;
  const child = tcpCreateOpenreqChild(tcp, req, skb);
  inetCskCompleteHashdance(tcp, req, child);
  return child;
}

/** tcp_openreq_init_rwin: the request's first window and scale, from the listener's buffer. */
function reqInitRwin(tcp: TcpProto, listener: TcpSock, req: TcpRequestSock, mss: number): void {
  const [rcvWnd, clamp, wscale] = tcpSelectInitialWindow(tcp, tcpFullSpace(listener), mss - (req.tstampOk ? 12 : 0), listener.windowClamp, req.wscaleOk);
  req.rcvWnd = rcvWnd;
  req.windowClamp = clamp;
  req.rcvWscale = wscale;
}

/** tcp_create_openreq_child: a full socket from the request's negotiated state. */
function tcpCreateOpenreqChild(tcp: TcpProto, req: TcpRequestSock, skb: SkBuff, fastopen = false): TcpSock {
  const tcb = tcpSkbCb(skb);
  const l = req.listener;
  // The child is a clone of its listener (inet_csk_clone_lock): its timers call the same handlers.
  const sk = tcpInitSock(tcp, AF_INET, { retransmit: l.retransmitTimer.fn, delack: l.delackTimer.fn, keepalive: l.keepaliveTimer.fn, pacing: l.pacingTimer.fn }, l.prot!);
  sk.copyTuple(req);
  sk.uid = l.uid;
  sk.ipv6only = l.ipv6only;
  // sk_clone_lock copies SO_REUSEADDR, SO_REUSEPORT and SOCK_BINDPORT_LOCK: the child, and
  // the TIME_WAIT sock after it, hold the listener's port on the listener's terms.
  sk.reuse = l.reuse;
  sk.reuseport = l.reuseport;
  sk.userBoundPort = l.userBoundPort;
  sk.state = TCP_SYN_RECV;
  sk.tos = req.tos;
  // inet_sock options the clone keeps (ip_sockglue.ts).
  sk.ttl = l.ttl;
  sk.pmtudisc = l.pmtudisc;
  sk.freebind = l.freebind;
  sk.linger2 = l.linger2;
  // Socket options a child inherits from its listener.
  sk.sndbuf = l.sndbuf;
  sk.rcvbuf = l.rcvbuf;
  sk.userlocks = l.userlocks;
  sk.nonagle = l.nonagle;
  sk.keepaliveOn = l.keepaliveOn;
  sk.keepaliveTime = l.keepaliveTime;
  sk.keepaliveIntvl = l.keepaliveIntvl;
  sk.keepaliveProbes = l.keepaliveProbes;
  sk.userTimeout = l.userTimeout;
  sk.lingerSec = l.lingerSec;
  sk.notsentLowat = l.notsentLowat;
  // SO_MAX_PACING_RATE and the pacing it asked for.
  sk.maxPacingRate = l.maxPacingRate;
  sk.pacingRate = l.pacingRate;
  sk.pacingStatus = l.pacingStatus;
  sk.userMss = l.userMss;
  // tcp_ca_openreq_child: the listener's algorithm if TCP_CONGESTION chose it, else the default now.
  sk.caSetsockopt = l.caSetsockopt;
  sk.caOps = l.caSetsockopt ? l.caOps : (tcp.congestion.find(tcp.sysctl.tcp_congestion_control) ?? tcp.congestion.fallback);
  sk.recvmsgInq = l.recvmsgInq;
  sk.zerocopy = l.zerocopy;
  // sk_clone_lock copies the sock whole: SO_TIMESTAMPING's flags, SO_MARK, IP(V6)_RECVERR and PKTINFO go with it.
  sk.tsflags = l.tsflags;
  sk.mark = l.mark;
  sk.cmsgFlags = l.cmsgFlags;

  sk.irs = req.rcvIsn;
  sk.iss = req.sntIsn;
  sk.rcvNxt = seqAdd(req.rcvIsn, 1);
  sk.rcvWup = sk.rcvNxt;
  sk.copiedSeq = sk.rcvNxt;
  sk.sndUna = seqAdd(req.sntIsn, 1);
  sk.sndNxt = sk.sndUna;
  sk.writeSeq = sk.sndUna;
  sk.pushedSeq = sk.sndUna;
  sk.sndSml = sk.sndUna;
  sk.sndWl1 = req.rcvIsn;
  sk.tstampOk = req.tstampOk;
  sk.sackOk = req.sackOk;
  sk.ecnFlags = req.ecnOk ? TCP_ECN_OK : 0;
  sk.wscaleOk = req.wscaleOk;
  sk.sndWscale = req.sndWscale;
  sk.rcvWscale = req.rcvWscale;
  sk.rcvWnd = req.rcvWnd;
  sk.windowClamp = req.windowClamp;
  sk.rcvSsthresh = req.rcvWnd;
  sk.tsRecent = req.tsRecent;
  sk.tsRecentStamp = tcp.now() / 1000;
  sk.tsOff = req.tsOff;
  sk.sndWnd = tcb.window * 2 ** sk.sndWscale;
  sk.maxWindow = sk.sndWnd;
  sk.mssClamp = req.mss;
  sk.advmss = tcp.advmss(l, sk.ipv6);
  tcpMd5CopyToChild(l, req, sk);
  tcpSyncMss(sk, tcp.routeMtu(sk));
  tcpMtupInit(tcp, sk); // tcp_init_transfer's, after the child's MSS is set
  sk.rcvMss = Math.min(sk.advmss, sk.mssCache, 536);
  // The SYN-ACK's RTT seeds the estimator when it was not retransmitted (tcp_synack_rtt_meas).
  // (A Fast Open child, made at the SYN, measures it when the handshake ends.)
  if (!req.numRetrans && !fastopen) tcpRttEstimator(tcp, sk, (tcp.now() - req.synAt) * 1000);
  sk.rcvTstamp = tcp.now();
  // icsk_ack.lrcvtime starts with the session (tcp_create_openreq_child).
  sk.lrcvtime = tcp.now();
  if (!(sk.userlocks & 1)) tcpSndbufExpand(tcp, sk);
  // tcp_init_transfer: the algorithm starts with the connection.
  tcpInitCongestionControl(sk, sk.caOps, tcp.now());
  tcpInitRcvqSpace(tcp, sk);
  tcp.mibs.Tcp.PassiveOpens++;
  return sk;
}

/**
 * tcp_child_process: run the child through the state machine, then wake the
 * listener. Returns 1 when the caller must answer the segment with a reset.
 */
export function tcpChildProcess(tcp: TcpProto, listener: TcpSock, child: TcpSock, skb: SkBuff): number {
  const ret = tcpRcvStateProcess(tcp, child, skb);
  if (child.state === TCP_ESTABLISHED || child.state !== TCP_SYN_RECV) {
    if (listener.wake) listener.wake(listener, POLLIN);
  }
  return ret;
}

// --- SYN cookies ----------------------------------------------------------------

/** The MSS values a cookie can carry (Linux's msstab for IPv4). */
export const SYNCOOKIE_MSSTAB = [536, 1300, 1440, 1460];
/** net/ipv6/syncookies.c's msstab: common IPv6 MTUs less 60 (1280 is IPv6's minimum). */
export const SYNCOOKIE_MSSTAB6 = [1280 - 60, 1480 - 60, 1500 - 60, 9000 - 60];

function cookieMsstab(ipv6: boolean): number[] {
  return ipv6 ? SYNCOOKIE_MSSTAB6 : SYNCOOKIE_MSSTAB;
}
const COOKIEBITS = 24;
const COOKIEMASK = (1 << COOKIEBITS) - 1;
const MAX_SYNCOOKIE_AGE = 2;
/** Cookies are only checked for this long after the SYN queue overflowed (TCP_SYNCOOKIE_VALIDITY). */
const TCP_SYNCOOKIE_VALIDITY = 120_000;
const TS_OPT_WSCALE_MASK = 0xf;
const TS_OPT_SACK = 1 << 4;
const TSBITS = 6;

function cookieMssIndex(tab: number[], mss: number): number {
  for (let i = tab.length - 1; i > 0; i--) if (mss >= tab[i]) return i;
  return 0;
}

/** tcp_cookie_time: a counter that ticks once a minute. */
function tcpCookieTime(tcp: TcpProto): number {
  return Math.floor(tcp.now() / 60_000) & 0xff;
}

/**
 * secure_tcp_syn_cookie (cookie_v4_init_sequence, or cookie_v6_init_sequence
 * over the IPv6 addresses): hash + peer ISN + (minute << 24) + (hash2 + mss
 * index) in the low 24 bits.
 */
function cookieV4InitSequence(tcp: TcpProto, req: TcpRequestSock): number {
  const count = tcpCookieTime(tcp);
  const sa6 = req.ipv6 ? req.v6Daddr : null;
  const da6 = req.ipv6 ? req.v6RcvSaddr : null;
  const h0 = tcp.cookieHash(req.daddr, req.rcvSaddr, req.dport, req.num, 0, 0, sa6, da6);
  const h1 = tcp.cookieHash(req.daddr, req.rcvSaddr, req.dport, req.num, count, 1, sa6, da6);
  return (h0 + req.rcvIsn + count * 2 ** COOKIEBITS + ((h1 + cookieMssIndex(cookieMsstab(req.ipv6), req.mss)) & COOKIEMASK)) >>> 0;
}

/** cookie_init_timestamp: the low 6 bits of TSval carry wscale and SACK (RFC 7323 permits any clock). */
function cookieInitTimestamp(tcp: TcpProto, req: TcpRequestSock): number {
  let options = req.wscaleOk ? req.sndWscale : TS_OPT_WSCALE_MASK;
  if (req.sackOk) options |= TS_OPT_SACK;
  const now = (Math.floor(tcp.now()) + req.tsOff) >>> 0;
  let ts = ((now & ~((1 << TSBITS) - 1)) | options) >>> 0;
  if (((ts - now) | 0) > 0) ts = (ts - (1 << TSBITS)) >>> 0;
  return ts;
}

/**
 * cookie_v4_check: an ACK for a listener with no request sock. If it
 * carries a valid cookie, build the connection the SYN would have made.
 * Returns the child; null when it is no cookie of ours (the caller
 * resets, as Linux's listener does); 'drop' for a valid cookie that made
 * no child (a full accept queue: Linux returns NULL and discards).
 */
export function cookieV4Check(tcp: TcpProto, listener: TcpSock, skb: SkBuff): TcpSock | null | 'drop' {
  const tcb = tcpSkbCb(skb);
  const ext = tcp.mibs.TcpExt;
  if (!tcp.sysctl.tcp_syncookies || tcp.now() - listener.synqOverflowAt > TCP_SYNCOOKIE_VALIDITY) return null;
  const cookie = (tcb.ackSeq - 1) >>> 0;
  const sseq = (tcb.seq - 1) >>> 0;
  const count = tcpCookieTime(tcp);
  const sa6 = tcb.ipv6 ? tcb.saddr6 : null;
  const da6 = tcb.ipv6 ? tcb.daddr6 : null;
  const tab = cookieMsstab(tcb.ipv6);
  const h0 = tcp.cookieHash(tcb.saddr, tcb.daddr, tcb.sport, tcb.dport, 0, 0, sa6, da6);
  let c = (cookie - h0 - sseq) >>> 0;
  const diff = (count - (c >>> COOKIEBITS)) & 0xff;
  if (diff >= MAX_SYNCOOKIE_AGE) {
    ext.SyncookiesFailed++;
    return null;
  }
  const h1 = tcp.cookieHash(tcb.saddr, tcb.daddr, tcb.sport, tcb.dport, (count - diff) & 0xff, 1, sa6, da6);
  c = (c - h1) & COOKIEMASK;
  if (c >= tab.length) {
    ext.SyncookiesFailed++;
    return null;
  }
  ext.SyncookiesRecv++;
  // A full accept queue (tcp_v4_syn_recv_sock's overflow): the ACK is dropped, not reset; the peer
  // sends it again with its data or its retransmission, when there may be room.
  if (listener.acceptQueue.length > listener.maxAckBacklog) {
    ext.ListenOverflows++;
    ext.ListenDrops++;
    return 'drop';
  }
  const o = tcpParseSkbOptions(skb, true);
  const req = new TcpRequestSock(listener, noTimer);
  reqInitTuple(req, listener, skb);
  req.rcvIsn = sseq;
  req.sntIsn = cookie;
  req.mss = tab[c];
  req.tos = tcb.tos & ~3;
  req.synAt = tcp.now();
  req.numRetrans = 1; // no RTT sample from a cookie handshake
  if (o.sawTstamp && tcp.sysctl.tcp_timestamps) {
    // cookie_timestamp_decode: the options we could not keep come back in TSecr.
    const opts = o.rcvTsecr & ((1 << TSBITS) - 1);
    req.tstampOk = true;
    req.tsRecent = o.rcvTsval;
    req.tsOff = tcp.tsOff(tcb.daddr, tcb.saddr, da6, sa6);
    req.sackOk = (opts & TS_OPT_SACK) !== 0 && tcp.sysctl.tcp_sack !== 0;
    const ws = opts & TS_OPT_WSCALE_MASK;
    req.wscaleOk = ws !== TS_OPT_WSCALE_MASK && tcp.sysctl.tcp_window_scaling !== 0;
    req.sndWscale = req.wscaleOk ? ws : 0;
  }
  reqInitRwin(tcp, listener, req, req.mss);
  const child = tcpCreateOpenreqChild(tcp, req, skb);
  inetCskReqskQueueAdd(tcp, listener, child);
  return child;
}

// --- TIME_WAIT ---------------------------------------------------------------

export const TCP_TW_SUCCESS = 0;
export const TCP_TW_RST = 1;
export const TCP_TW_ACK = 2;
export const TCP_TW_SYN = 3;

/**
 * tcp_timewait_state_process: returns what to do with the segment; for
 * TCP_TW_SYN, `tcp.twIsn` holds the ISN the new connection must use
 * (beyond the old one's sequence space, RFC 1122 4.2.2.13).
 */
export function tcpTimewaitStateProcess(tcp: TcpProto, tw: TcpTimewaitSock, skb: SkBuff): number {
  const tcb = tcpSkbCb(skb);
  const o = tcpParseSkbOptions(skb, true);
  const flg = tcb.tcpFlags;
  const pawsReject = tw.tstampOk && o.sawTstamp && ((tw.tsRecent - o.rcvTsval) | 0) > 1 && tcp.now() / 1000 < tw.tsRecentStamp + 24 * 24 * 3600;

  if (tw.substate === TCP_FIN_WAIT2) {
    // An orphan waiting for the peer's FIN.
    if (pawsReject || !(!before(tcb.endSeq, tw.rcvNxt) && !after(tcb.seq, seqAdd(tw.rcvNxt, tw.rcvWnd)))) {
      return flg & TCPHDR_RST ? TCP_TW_SUCCESS : TCP_TW_ACK;
    }
    if (flg & TCPHDR_RST) {
      inetTwskKill(tcp, tw);
      return TCP_TW_SUCCESS;
    }
    if (flg & TCPHDR_SYN) return TCP_TW_RST;
    if (!(flg & TCPHDR_ACK) || !after(tcb.endSeq, tw.rcvNxt) || tcb.endSeq === tcb.seq) return TCP_TW_SUCCESS;
    // New data after our close, or a FIN that is not next in order: reset.
    if (!(flg & TCPHDR_FIN) || tcb.endSeq !== seqAdd(tw.rcvNxt, 1)) {
      inetTwskKill(tcp, tw);
      return TCP_TW_RST;
    }
    // The FIN: TIME_WAIT proper.
    tw.substate = TCP_TIME_WAIT;
    tw.rcvNxt = tcb.endSeq;
    if (o.sawTstamp) {
      tw.tsRecent = o.rcvTsval;
      tw.tsRecentStamp = tcp.now() / 1000;
    }
    tcp.time.timers.mod(tw.timer, tcp.now() + TCP_TIMEWAIT_LEN);
    return TCP_TW_ACK;
  }

  if (!pawsReject && tcb.seq === tw.rcvNxt && (tcb.seq === tcb.endSeq || flg & TCPHDR_RST)) {
    // In-window: only a reset or a bare ACK is possible.
    if (flg & TCPHDR_RST) {
      // RFC 1337 hazard: Linux kills the tw unless tcp_rfc1337 is set.
      if (!tcp.sysctl.tcp_rfc1337) {
        inetTwskKill(tcp, tw);
        return TCP_TW_SUCCESS;
      }
    } else {
      tcp.time.timers.mod(tw.timer, tcp.now() + TCP_TIMEWAIT_LEN);
    }
    if (o.sawTstamp) {
      tw.tsRecent = o.rcvTsval;
      tw.tsRecentStamp = tcp.now() / 1000;
    }
    return TCP_TW_SUCCESS;
  }

  // A new SYN beyond the old sequence space (or with a newer timestamp) may reuse the 4-tuple.
  if (flg & TCPHDR_SYN && !(flg & (TCPHDR_RST | TCPHDR_ACK)) && !pawsReject &&
      (after(tcb.seq, tw.rcvNxt) || (o.sawTstamp && tw.tstampOk && ((o.rcvTsval - tw.tsRecent) | 0) > 0))) {
    let isn = (tw.sndNxt + 65535 + 2) >>> 0;
    if (isn === 0) isn++;
    tcp.twIsn = isn;
    return TCP_TW_SYN;
  }

  if (!(flg & TCPHDR_RST)) {
    // A retransmitted FIN or an old duplicate: re-ACK and restart the 2*MSL clock.
    if (pawsReject || flg & TCPHDR_ACK) tcp.time.timers.mod(tw.timer, tcp.now() + TCP_TIMEWAIT_LEN);
    return TCP_TW_ACK;
  }
  return TCP_TW_SUCCESS;
}

/** tcp_v4_timewait_ack. */
export function tcpTimewaitAck(tcp: TcpProto, tw: TcpTimewaitSock): void {
  tcpSendAckRaw(tcp, tw, tw.sndNxt, tw.rcvNxt, Math.min(tw.rcvWnd >> tw.rcvWscale, 65535), tw.tstampOk, tw.tsOff, tw.tsRecent, tw.tos, tw.md5Key);
}

