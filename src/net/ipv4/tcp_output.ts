/**
 * TCP output (net/ipv4/tcp_output.c): segment building with Linux's option
 * order, receive-window selection, MSS and TSO sizing (size_goal,
 * tcp_tso_autosize, tcp_min_tso_segs), tcp_write_xmit with the cwnd,
 * receive-window, Nagle and TSO-deferral tests, retransmission from the
 * write queue, and the control segments (SYN, SYN-ACK, ACK, FIN, RST).
 *
 * A write-queue skb may be a TSO super-segment of many MSS; unless the
 * device offers TSO (dev.tso), tcpTransmit cuts it into MSS-sized frames in
 * software (GSO) and no frame on the wire exceeds the MTU.
 */
import { tcpFragmentShared, tcpSkbTransmitted } from './tcp_tstamp.js';
import { csumFold, csumIpv6Magic, csumPartial, csumPseudoPartial, csumTcpUdpMagic } from '../../lib/checksum.js';
import { after, before, seqAdd } from '../../lib/seq.js';
import { INET_ECN_ECT_0, INET_ECN_MASK, IP_HLEN } from '../../wire/ipv4.js';
import {
  TCP_HLEN,
  TCPHDR_ACK,
  TCPHDR_CWR,
  TCPHDR_ECE,
  TCPHDR_FIN,
  TCPHDR_PSH,
  TCPHDR_RST,
  TCPHDR_SYN,
  tcpHeader,
  TCPOLEN_SACK_BASE_ALIGNED,
  TCPOLEN_SACK_PERBLOCK,
  TCPOLEN_TSTAMP_ALIGNED,
  tcpOptionsSize,
  tcpOptionsWrite,
  TcpOutOptions,
} from '../../wire/tcp.js';
import { MAX_HEADER, allocSkb, type SkBuff } from '../core/skbuff.js';
import { ipLocalOut } from './ip_output.js';
import { tcpRateSkbSent } from './tcp_rate.js';
import { tcpClockNs, tcpPacingCheck, tcpUpdateSkbAfterSend } from './tcp_pacing.js';
import { TCP_RETRANS } from './tcp_trace.js';
import { TCP_CHRONO_BUSY, TCP_CHRONO_RWND_LIMITED, TCP_CHRONO_SNDBUF_LIMITED, tcpChronoStart, tcpChronoStop } from './tcp_chrono.js';
import { CA_EVENT_CWND_RESTART, CA_EVENT_TX_START, tcpCaEvent, tcpEnterCwr, tcpIsCwndLimited } from './tcp_cong.js';

/** TCP_TIMEOUT_MIN in microseconds (2 jiffies). */
const TCP_TIMEOUT_MIN_US = 2000;
import { type TcpProto } from './tcp_proto.js';
import {
  ICSK_ACK_PUSHED,
  ICSK_ACK_SCHED,
  ICSK_ACK_TIMER,
  ICSK_TIME_LOSS_PROBE,
  ICSK_TIME_PROBE0,
  ICSK_TIME_REO_TIMEOUT,
  ICSK_TIME_RETRANS,
  skbPcount,
  TCP_CA_CWR,
  TCP_CA_Loss,
  TCP_CA_Open,
  TCP_CA_Recovery,
  TCP_DELACK_MAX,
  TCP_DELACK_MIN,
  TCP_ECN_DEMAND_CWR,
  TCP_ECN_OK,
  TCP_ECN_QUEUE_CWR,
  TCP_INIT_CWND,
  TCP_NAGLE_CORK,
  TCP_NAGLE_OFF,
  TCP_NAGLE_PUSH,
  TCP_RTO_MAX,
  TCP_RTO_MIN,
  TCP_TIMEOUT_INIT,
  TCPCB_EVER_RETRANS,
  TCPCB_LOST,
  TCPCB_SACKED_ACKED,
  TCPCB_SACKED_RETRANS,
  type TcpRequestSock,
  TcpSkb,
  type TcpSock,
  XMIT_SKB_ROOM,
} from './tcp_sock.js';
import { type InetSock, SK_PACING_FQ, skForcedMemSchedule, skMemCharge, skMemUncharge, TCP_CLOSE, TCP_CLOSE_WAIT, TCP_ESTABLISHED, TCP_SYN_SENT } from '../core/sock.js';
import { ENETUNREACH, IPPROTO_TCP } from '../../uapi.js';
import { tcpSendSynData, tcpSynOptionsFastopen } from './tcp_fastopen_active.js';
import { IPV6_HLEN } from '../../wire/ipv6.js';
import { tcpFastopenOptionSize, tcpSynackFoc, type TcpOptionsReceived } from '../../wire/tcp.js';
import { ipDontFragment } from './ip_sockglue.js';
import { MAX_TCP_OPTION_SPACE, tcpMtuToMss, tcpMssToMtu, tcpCurrentMss, tcpTsoSegs } from './tcp_mss.js';
export { MAX_TCP_OPTION_SPACE, tcpHeaderLen, tcpSyncMss, tcpMtuToMss, tcpMssToMtu, tcpCurrentMss, tcpTsoSegs, tcpXmitSizeGoal } from './tcp_mss.js';
import { tcpSelectWindow } from './tcp_window.js';
// The receive window's functions live in tcp_window.ts; their callers import them from here too.
export { tcpWinFromSpace, tcpSpace, tcpFullSpace, tcpReceiveWindow, tcpSelectInitialWindow, tcpSelectWindowRaw, tcpAdjustRcvSsthresh, tcpSelectWindow } from './tcp_window.js';
import { TCPOLEN_MD5SIG_ALIGNED, tcpMd5LookupPeer, tcpMd5Sign, tcpMd5SynackOptions } from './tcp_md5.js';
import type { TcpMd5SigKey } from './tcp_sock.js';


function resetOpts(tcp: TcpProto): TcpOutOptions {
  const o = tcp.outOpts;
  o.md5 = false;
  o.mss = 0;
  o.ws = -1;
  o.sackPerm = false;
  o.ts = false;
  o.tsval = 0;
  o.tsecr = 0;
  o.numSacks = 0;
  o.sacks = null;
  o.fastopenLen = -1;
  o.fastopenCookie = null;
  return o;
}

/** The TSval we send: milliseconds plus the connection's random offset (RFC 7323 5.4, tcp_clock_ms + ts_off). */
export function tcpTimeStamp(tcp: TcpProto, tsOff: number): number {
  return (Math.floor(tcp.now()) + tsOff) >>> 0;
}

// --- MSS: tcp_mss.ts (re-exported for the callers of this file) ---------------

// --- building segments -------------------------------------------------------

/**
 * __tcp_transmit_skb: send the sequence range [seq, seq+len) of `skb`'s
 * payload (or a control segment when skb is null) with `flags`, cutting it
 * into MSS-sized frames (software GSO). Returns 0 or a negative errno.
 */
export function tcpTransmit(tcp: TcpProto, sk: TcpSock, skb: TcpSkb | null, flags: number, seq: number, dataOff: number, len: number, mss: number): number {
  const syn = (flags & TCPHDR_SYN) !== 0;
  const o = resetOpts(tcp);
  const md5 = tcpMd5LookupPeer(sk.md5sigInfo, sk);
  o.md5 = md5 !== null;
  if (syn) {
    // A SYN in SYN_SENT: our full option set.
    o.mss = sk.advmss = Math.min(sk.advmss, (sk.pmtuCookie || tcp.stack.dev.mtu) - (sk.ipv6 ? IPV6_HLEN : IP_HLEN) - TCP_HLEN); // tcp_advertise_mss: the path MTU's
    o.ts = sk.tstampOk;
    o.sackPerm = sk.sackOk;
    o.ws = sk.wscaleOk ? sk.rcvWscale : -1;
    if (o.ts) {
      o.tsval = tcpTimeStamp(tcp, sk.tsOff);
      o.tsecr = sk.tsRecent;
    }
    if (sk.fastopenReq) tcpSynOptionsFastopen(sk, o);
  } else {
    // Linux forces PSH on every multi-MSS (GSO) packet to flush the receiver's
    // GRO early (__tcp_transmit_skb); it sets it on the clone it sends, so the
    // queued skb (and a later retransmission of part of it) does not keep it.
    if (len > mss && mss > 0) flags |= TCPHDR_PSH;
    if (sk.tstampOk) {
      o.ts = true;
      o.tsval = tcpTimeStamp(tcp, sk.tsOff);
      o.tsecr = sk.tsRecent;
    }
    if (sk.sackOk && (sk.dsack || sk.numSacks)) {
      const max = Math.floor((MAX_TCP_OPTION_SPACE - (o.ts ? TCPOLEN_TSTAMP_ALIGNED : 0) - (o.md5 ? TCPOLEN_MD5SIG_ALIGNED : 0) - TCPOLEN_SACK_BASE_ALIGNED) / TCPOLEN_SACK_PERBLOCK);
      o.numSacks = Math.min(max, sk.numSacks + (sk.dsack ? 1 : 0));
      o.sacks = tcp.sackScratch;
      let j = 0;
      if (sk.dsack) {
        tcp.sackScratch[0] = sk.duplicateSack[0];
        tcp.sackScratch[1] = sk.duplicateSack[1];
        j = 1;
      }
      for (let i = 0; j < o.numSacks; i++, j++) {
        tcp.sackScratch[2 * j] = sk.selectiveAcks[2 * i];
        tcp.sackScratch[2 * j + 1] = sk.selectiveAcks[2 * i + 1];
      }
    }
  }
  const optLen = tcpOptionsSize(o);
  const hdrLen = TCP_HLEN + optLen;
  // SYN windows are never scaled (RFC 7323 2.2).
  const window = syn ? Math.min(sk.rcvWnd, 65535) : tcpSelectWindow(tcp, sk);
  const ack = flags & TCPHDR_ACK ? sk.rcvNxt : 0;
  if (flags & TCPHDR_ACK) tcpEventAckSent(tcp, sk);
  if (sk.dsack) sk.dsack = false;
  // tcp_ecn_send (RFC 3168): new data is ECT(0) and carries a queued CWR; ACKs
  // and retransmissions are not ECT; ECE is echoed until the peer's CWR.
  let tos = sk.tos;
  let cwrFirst = 0;
  if (sk.ecnFlags & TCP_ECN_OK) {
    if (syn) {
      // Our SYN asks for ECN (tcp_ecn_send_syn); a retransmitted one stops asking (tcp_ecn_fallback).
      if (!(sk.retransmits && tcp.sysctl.tcp_ecn_fallback)) flags |= TCPHDR_ECE | TCPHDR_CWR;
    } else {
      if (len && !before(seq, sk.sndNxt)) {
        tos = (tos & ~INET_ECN_MASK) | INET_ECN_ECT_0;
        if (sk.ecnFlags & TCP_ECN_QUEUE_CWR) {
          sk.ecnFlags &= ~TCP_ECN_QUEUE_CWR;
          cwrFirst = TCPHDR_CWR;
        }
      } else {
        tos &= ~INET_ECN_MASK;
      }
      if (sk.ecnFlags & TCP_ECN_DEMAND_CWR) flags |= TCPHDR_ECE;
    }
  }

  // The departure time (tcp_wstamp_ns): now, or later while pacing holds the flow back; fq paces what passes it.
  if (tcp.stack.dev.fq !== null && sk.pacingStatus !== SK_PACING_FQ) sk.pacingStatus = SK_PACING_FQ;
  const priorWstampNs = sk.wstampNs;
  const nowNs = tcpClockNs(tcp);
  if (sk.wstampNs < nowNs) sk.wstampNs = nowNs;
  // With TSO the device gets the super-segment whole (one header, PSH/FIN as the skb has them).
  const tso = tcp.stack.dev.tso && len > mss && mss > 0 && !md5;
  const segLen = len > mss && mss > 0 && !tso ? mss : len;
  let sent = 0;
  let s = seq;
  let rc = 0;
  do {
    const chunk = Math.min(segLen, len - sent);
    const last = sent + chunk >= len;
    // GSO: PSH and FIN only on the last frame of a super-segment.
    let f = last ? flags : flags & ~(TCPHDR_PSH | TCPHDR_FIN);
    // CWR on the first frame of a super-segment only (SKB_GSO_TCP_ECN).
    if (sent === 0) f |= cwrFirst;
    const pkt = tcpXmitSkbGet(tcp, hdrLen + chunk);
    pkt.gso = tso;
    if (tso) pkt.gsoSize = mss;
    const at = pkt.put(hdrLen + chunk);
    tcpHeader(pkt.buf, at, sk.num, sk.dport, s, ack, hdrLen, f, window);
    tcpOptionsWrite(pkt.buf, at + TCP_HLEN, o);
    if (chunk && skb) skb.buf.copy(pkt.buf, at + hdrLen, skb.off + dataOff + sent, skb.off + dataOff + sent + chunk);
    if (md5) tcpMd5Sign(md5, sk, pkt.buf, at, hdrLen + chunk);
    tcp.mibs.Tcp.OutSegs++;
    sk.segsOut++;
    pkt.tstamp = sk.wstampNs;
    if (chunk) sk.dataSegsOut++;
    const id = sk.inetId;
    sk.inetId = (sk.inetId + 1) & 0xffff;
    // CHECKSUM_PARTIAL when the device completes it (tcp_v4_send_check /
    // tcp_v6_send_check): the pseudo-header sum, uncomplemented, for the
    // kernel to add the rest to.
    rc = tcpAfXmit(tcp, sk, pkt, at, hdrLen + chunk, tcp.stack.dev.csumOffload, sk.ttl, tos, id);
    if (pkt.scratch) tcp.xmitBusy = false;
    if (rc > 0) tcpEnterCwr(tcp, sk); // the qdisc dropped it: local congestion
    if (rc !== 0) break;
    sent += chunk;
    s = seqAdd(s, chunk);
  } while (sent < len);
  if (rc === 0 && len) tcpUpdateSkbAfterSend(sk, len, priorWstampNs);
  if (skb !== null && (skb.txFlags || skb.uarg) && rc >= 0) tcpSkbTransmitted(tcp, sk, skb, seq, len);
  if (len) tcpEventDataSent(tcp, sk);
  const tr = tcp.trace;
  if (tr !== null && rc >= 0) tr.xmit(sk, seq, len, flags, ack, window, o.sacks, o.numSacks);
  return rc;
}

/** The skb for one frame of `size` bytes: the stack's reusable one unless it is in use. */
function tcpXmitSkbGet(tcp: TcpProto, size: number): SkBuff {
  if (tcp.xmitBusy || size > XMIT_SKB_ROOM) return allocSkb(size);
  tcp.xmitBusy = true;
  const skb = tcp.xmitSkb;
  skb.reset(MAX_HEADER);
  return skb;
}

/**
 * icsk_af_ops->send_check then ->queue_xmit for a segment built at `at`
 * (len bytes of TCP header and payload) from the sock-like `s` (a full,
 * request or TIME_WAIT sock): the checksum over the IPv4 or IPv6
 * pseudo-header (left partial when `partial`), then ip_queue_xmit (DF set,
 * the given TTL and IP ID) or ip6_xmit (the route's hop limit, tos as the
 * traffic class).
 */
export function tcpAfXmit(tcp: TcpProto, s: InetSock, pkt: SkBuff, at: number, len: number, partial: boolean, ttl: number, tos: number, id: number): number {
  const ipv6 = s.ipv6;
  const magic = ipv6 ? csumIpv6Magic(s.v6RcvSaddr!, 0, s.v6Daddr!, 0, IPPROTO_TCP, len) : csumTcpUdpMagic(s.rcvSaddr, s.daddr, IPPROTO_TCP, len);
  pkt.csumPartial = partial;
  const c = partial ? csumPseudoPartial(magic) : csumFold(csumPartial(pkt.buf, at, len, magic));
  pkt.buf[at + 16] = c >>> 8;
  pkt.buf[at + 17] = c & 255;
  const stack = tcp.stack;
  // A segment to ourselves is delivered after this call, not inside it (see holdLoopback).
  stack.holdLoopback();
  try {
    if (ipv6) {
      const ops = tcp.stack.ipv6Stub;
      if (ops === null) return -ENETUNREACH;
      return ops.xmit(pkt, s.v6RcvSaddr!, s.v6Daddr!, IPPROTO_TCP, -1, tos);
    }
    return ipLocalOut(stack, pkt, s.rcvSaddr, s.daddr, IPPROTO_TCP, ttl, tos, ipDontFragment(s as { pmtudisc?: number }), id);
  } finally {
    stack.releaseLoopback();
  }
}

/** The ACK we owed is being sent: clear the delayed-ACK state (tcp_event_ack_sent). */
function tcpEventAckSent(tcp: TcpProto, sk: TcpSock): void {
  sk.ackPending = 0;
  if (sk.ackQuick > 0) sk.ackQuick--;
  tcp.time.timers.del(sk.delackTimer);
}

/** tcp_event_data_sent: sending data soon after receiving some marks an interactive session. */
function tcpEventDataSent(tcp: TcpProto, sk: TcpSock): void {
  const now = tcp.now();
  if (tcpPacketsInFlight(sk) === 0) tcpCaEvent(sk, CA_EVENT_TX_START, now);
  sk.lsndtime = now;
  if (tcp.now() - sk.lrcvtime < sk.ato && sk.ackPingpong < 255) sk.ackPingpong++;
}

/** tcp_send_ack: a pure ACK now. */
export function tcpSendAck(tcp: TcpProto, sk: TcpSock): void {
  if (sk.state === TCP_CLOSE) return;
  tcpTransmit(tcp, sk, null, TCPHDR_ACK, sk.sndNxt, 0, 0, 0);
}

/** tcp_send_delayed_ack: ACK within the ack timeout (40 ms .. 200 ms, bounded by the RTT). */
export function tcpSendDelayedAck(tcp: TcpProto, sk: TcpSock): void {
  let ato = sk.ato;
  if (ato > TCP_DELACK_MIN) {
    let maxAto = 500;
    if (sk.ackPingpong >= tcp.sysctl.tcp_pingpong_thresh || sk.ackPending & ICSK_ACK_PUSHED) maxAto = TCP_DELACK_MAX;
    if (sk.srttUs) {
      const rtt = Math.max((sk.srttUs >> 3) / 1000, TCP_DELACK_MIN);
      if (rtt < maxAto) maxAto = rtt;
    }
    ato = Math.min(ato, maxAto);
  }
  // Bounded by icsk_delack_max only: a connection that has received no data
  // yet has ato 0 and ACKs at the next tick (a bare FIN after the handshake).
  ato = Math.min(ato, TCP_DELACK_MAX);
  const now = tcp.now();
  let timeout = now + ato;
  if (sk.ackPending & ICSK_ACK_TIMER) {
    // An ACK is already scheduled: if it is due soon, send now instead of moving it later.
    if (sk.delackTimer.pending && sk.delackTimer.expires <= now + (ato >> 2)) {
      tcpSendAck(tcp, sk);
      return;
    }
    if (sk.delackTimer.pending && sk.delackTimer.expires < timeout) timeout = sk.delackTimer.expires;
  }
  sk.ackPending |= ICSK_ACK_SCHED | ICSK_ACK_TIMER;
  sk.ackTimeout = timeout;
  tcp.time.timers.mod(sk.delackTimer, timeout);
}

/** tcp_send_active_reset: RST|ACK at snd_nxt (abort). */
export function tcpSendActiveReset(tcp: TcpProto, sk: TcpSock): void {
  tcp.mibs.Tcp.OutRsts++;
  tcpTransmit(tcp, sk, null, TCPHDR_ACK | TCPHDR_RST, sk.sndNxt, 0, 0, 0);
}

/** tcp_make_synack + send: the answer to a SYN, from a request sock. */
export function tcpSendSynack(tcp: TcpProto, req: TcpRequestSock, tsval?: number, foc?: TcpOptionsReceived): number {
  const o = resetOpts(tcp);
  const md5 = tcpMd5SynackOptions(req, o);
  // Our MSS: the path's, less the listener's TCP_MAXSEG if set (not the peer's).
  o.mss = tcp.advmss(req.listener, req.ipv6);
  o.ws = req.wscaleOk ? req.rcvWscale : -1;
  o.sackPerm = req.sackOk;
  o.ts = req.tstampOk;
  if (o.ts) {
    o.tsval = tsval ?? tcpTimeStamp(tcp, req.tsOff);
    o.tsecr = req.tsRecent;
  }
  // tcp_synack_options: the Fast Open cookie last, if it fits.
  if (foc && foc.fastopenLen >= 0 && MAX_TCP_OPTION_SPACE - tcpOptionsSize(o) >= tcpFastopenOptionSize(foc.fastopenLen, foc.fastopenExp)) tcpSynackFoc(o, foc);
  const optLen = tcpOptionsSize(o);
  const hdrLen = TCP_HLEN + optLen;
  const pkt = allocSkb(hdrLen);
  const at = pkt.put(hdrLen);
  // tcp_ecn_make_synack: ECE accepts the peer's ECN request.
  const synackFlags = TCPHDR_SYN | TCPHDR_ACK | (req.ecnOk ? TCPHDR_ECE : 0);
  tcpHeader(pkt.buf, at, req.num, req.dport, req.sntIsn, req.tfoRcvNxt >= 0 ? req.tfoRcvNxt : seqAdd(req.rcvIsn, 1), hdrLen, synackFlags, Math.min(req.rcvWnd, 65535));
  tcpOptionsWrite(pkt.buf, at + TCP_HLEN, o);
  if (md5) tcpMd5Sign(md5, req, pkt.buf, at, hdrLen);
  tcp.mibs.Tcp.OutSegs++;
  // No connected socket yet: DF with IP ID 0 (an atomic datagram).
  return tcpAfXmit(tcp, req, pkt, at, hdrLen, false, 64, req.tos, 0);
}

// --- the write queue -----------------------------------------------------------

/** Append a new skb to the write queue (tcp_skb_entail). */
export function tcpSkbEntail(sk: TcpSock, skb: TcpSkb, tcp: TcpProto | null = null): void {
  if (sk.wqTail) sk.wqTail.next = skb;
  else sk.wqHead = skb;
  sk.wqTail = skb;
  if (!sk.sendHead) {
    sk.sendHead = skb;
    // tcp_add_write_queue_tail: something to send (the SYN, queued without tcp, is not busy time).
    if (tcp) tcpChronoStart(tcp, sk, TCP_CHRONO_BUSY);
  }
  // tcpSendmsg scheduled its skbs' memory; a SYN or FIN is forced in (tcp_stream_alloc_skb's force_schedule).
  skForcedMemSchedule(sk, skb.truesize);
  skMemCharge(sk, skb.truesize);
  sk.wmemQueued += skb.truesize;
  tcpSlowStartAfterIdleCheck(tcp, sk);
}

/** tcp_slow_start_after_idle_check: idle for more than an RTO, the cwnd restarts (RFC 2861 as Linux does it). */
export function tcpSlowStartAfterIdleCheck(tcp: TcpProto | null, sk: TcpSock): void {
  if (!tcp || !tcp.sysctl.tcp_slow_start_after_idle || sk.packetsOut) return;
  const delta = tcp.now() - sk.lsndtime;
  if (sk.lsndtime && delta > sk.rto) tcpCwndRestart(tcp, sk, delta);
}

/** tcp_current_ssthresh: ssthresh, or 3/4 of the cwnd if that is more, outside a reduction. */
export function tcpCurrentSsthresh(sk: TcpSock): number {
  if (sk.caState === TCP_CA_CWR || sk.caState === TCP_CA_Recovery) return sk.sndSsthresh;
  return Math.max(sk.sndSsthresh, (sk.sndCwnd >> 1) + (sk.sndCwnd >> 2));
}

/** tcp_cwnd_restart: halve the cwnd per idle RTO, down to the initial window. */
function tcpCwndRestart(tcp: TcpProto, sk: TcpSock, delta: number): void {
  let cwnd = sk.sndCwnd;
  const restart = Math.min(TCP_INIT_CWND, cwnd);
  tcpCaEvent(sk, CA_EVENT_CWND_RESTART, tcp.now());
  sk.sndSsthresh = tcpCurrentSsthresh(sk);
  while ((delta -= sk.rto) > 0 && cwnd > restart) cwnd >>= 1;
  sk.sndCwnd = Math.max(cwnd, restart);
  sk.sndCwndStamp = tcp.now();
  sk.sndCwndUsed = 0;
}

/**
 * tso_fragment / tcp_fragment: split `skb` after `len` payload bytes; the
 * new skb (the rest) follows it in the queue and shares its buffer.
 */
export function tcpFragment(sk: TcpSock, skb: TcpSkb, len: number, mss = sk.mssCache): TcpSkb {
  const rest = new TcpSkb(skb.buf, skb.off + len, skb.cap - len, seqAdd(skb.seq, len));
  // Both halves use the page now.
  rest.page = skb.page;
  if (skb.page) skb.page.refs++;
  rest.len = skb.len - len;
  rest.endSeq = skb.endSeq;
  rest.tcpFlags = skb.tcpFlags;
  rest.eor = skb.eor;
  rest.nrFrags = skb.nrFrags;
  tcpFragmentShared(skb, rest);
  rest.sacked = skb.sacked;
  rest.sentAt = skb.sentAt;
  rest.sentOrder = skb.sentOrder;
  rest.firstSentAt = skb.firstSentAt;
  rest.mss = skb.mss;
  rest.txDelivered = skb.txDelivered;
  rest.txDeliveredMstamp = skb.txDeliveredMstamp;
  rest.txFirstMstamp = skb.txFirstMstamp;
  rest.txDeliveredCe = skb.txDeliveredCe;
  rest.txIsAppLimited = skb.txIsAppLimited;
  rest.truesize += rest.len;
  // PSH and FIN go with the tail part.
  skb.tcpFlags &= ~(TCPHDR_FIN | TCPHDR_PSH);
  skb.len = len;
  skb.cap = len;
  skb.endSeq = rest.seq;
  skb.truesize -= rest.len;
  rest.next = skb.next;
  skb.next = rest;
  if (sk.wqTail === skb) sk.wqTail = rest;
  // The payload moved from one skb to the other: only the new skb's overhead is new (forced, as tcp_fragment's).
  const overhead = rest.truesize - rest.len;
  skForcedMemSchedule(sk, overhead);
  skMemCharge(sk, overhead);
  sk.wmemQueued += overhead;
  // tcp_adjust_pcount: a sent skb's segment count is shared by the two parts.
  if (skb.pcount) {
    const old = skb.pcount;
    skb.pcount = skbPcount(skb, mss);
    rest.pcount = skbPcount(rest, mss);
    const diff = old - skb.pcount - rest.pcount;
    if (diff) {
      sk.packetsOut -= diff;
      if (skb.sacked & TCPCB_LOST) sk.lostOut -= diff;
      if (skb.sacked & TCPCB_SACKED_RETRANS) sk.retransOut -= diff;
      if (skb.sacked & TCPCB_SACKED_ACKED) sk.sackedOut -= diff;
    }
  }
  return rest;
}

/** tcp_wnd_end: the right edge of the peer's window. */
export function tcpWndEnd(sk: TcpSock): number {
  return seqAdd(sk.sndUna, sk.sndWnd);
}

/** tcp_packets_in_flight: sent, not acked, not considered gone, plus retransmissions. */
export function tcpPacketsInFlight(sk: TcpSock): number {
  return sk.packetsOut - (sk.sackedOut + sk.lostOut) + sk.retransOut;
}

/** tcp_cwnd_test: segments the window allows now, at most half the cwnd in one burst. */
function tcpCwndTest(sk: TcpSock): number {
  const inFlight = tcpPacketsInFlight(sk);
  const cwnd = sk.sndCwnd;
  if (inFlight >= cwnd) return 0;
  const half = Math.max(cwnd >> 1, 1);
  return Math.min(half, cwnd - inFlight);
}

/** tcp_snd_wnd_test: the first MSS of the skb fits the peer's window. */
function tcpSndWndTest(sk: TcpSock, skb: TcpSkb, mss: number): boolean {
  let end = skb.endSeq;
  if (skb.len > mss) end = seqAdd(skb.seq, mss);
  return !after(end, tcpWndEnd(sk));
}

/** tcp_minshall_check: a small segment is still unacknowledged. */
function tcpMinshallCheck(sk: TcpSock): boolean {
  return after(sk.sndSml, sk.sndUna) && !after(sk.sndSml, sk.sndNxt);
}

function tcpNagleCheck(partial: boolean, sk: TcpSock, nonagle: number): boolean {
  return partial && ((nonagle & TCP_NAGLE_CORK) !== 0 || (!nonagle && sk.packetsOut > 0 && tcpMinshallCheck(sk)));
}

/** tcp_nagle_test: may this (single-MSS or smaller) skb go now? */
function tcpNagleTest(sk: TcpSock, skb: TcpSkb, mss: number, nonagle: number): boolean {
  if (nonagle & TCP_NAGLE_PUSH) return true;
  if (skb.tcpFlags & TCPHDR_FIN) return true;
  return !tcpNagleCheck(skb.len < mss, sk, nonagle);
}

/** tcp_mss_split_point: how much of a TSO skb to send now. */
function tcpMssSplitPoint(sk: TcpSock, skb: TcpSkb, mss: number, maxSegs: number, nonagle: number): number {
  const window = (tcpWndEnd(sk) - skb.seq) | 0;
  const maxLen = mss * maxSegs;
  if (maxLen <= window && skb !== sk.wqTail) return maxLen;
  const needed = Math.min(skb.len, window);
  if (maxLen <= needed) return maxLen;
  const partial = needed % mss;
  if (tcpNagleCheck(partial !== 0, sk, nonagle)) return needed - partial;
  return needed;
}

/** tcp_tso_should_defer: wait for more window or data to build a bigger TSO packet? */
function tcpTsoShouldDefer(tcp: TcpProto, sk: TcpSock, skb: TcpSkb, maxSegs: number): boolean {
  if (sk.caState >= TCP_CA_Recovery) return false;
  // Defer only within 1 ms of the last departure time (pacing may put it ahead): a quiet sender sends now.
  if (tcpClockNs(tcp) - sk.wstampNs > 1e6) return false;
  const inFlight = tcpPacketsInFlight(sk);
  const sendWin = (tcpWndEnd(sk) - skb.seq) | 0;
  const congWin = (sk.sndCwnd - inFlight) * sk.mssCache;
  const limit = Math.min(sendWin, congWin);
  if (limit >= maxSegs * sk.mssCache) return false;
  if (skb !== sk.wqTail && limit >= skb.len) return false;
  const divisor = tcp.sysctl.tcp_tso_win_divisor;
  if (divisor) {
    const chunk = Math.floor(Math.min(sk.sndWnd, sk.sndCwnd * sk.mssCache) / divisor);
    if (limit >= chunk) return false;
  }
  // The next ACK would come too late (more than half an RTT after the oldest send): send.
  const head = sk.wqHead;
  if (!head || head === sk.sendHead) return false;
  if (tcp.now() - head.sentAt < (sk.srttUs >> 4) / 1000) return false;
  if (congWin < sendWin) {
    if (congWin <= skb.len) {
      sk.isCwndLimited = true;
      return true;
    }
  } else if (sendWin <= skb.len) {
    return true;
  }
  if (skb.tcpFlags & TCPHDR_FIN || skb.eor) return false;
  return true;
}

/** inet_csk_reset_xmit_timer: arm the retransmit timer for `what`, at most TCP_RTO_MAX ahead. */
export function tcpResetXmitTimer(tcp: TcpProto, sk: TcpSock, what: number, when: number): void {
  sk.pending = what;
  tcp.time.timers.mod(sk.retransmitTimer, tcp.now() + Math.min(when, TCP_RTO_MAX));
}

/** tcp_rto_delta_us: how far ahead the head's RTO lies, in ms (may be negative). */
function tcpRtoDelta(tcp: TcpProto, sk: TcpSock): number {
  const head = sk.wqHead;
  return (head ? head.sentAt : tcp.now()) + sk.rto - tcp.now();
}

/**
 * tcp_rearm_rto: the retransmit timer runs a full RTO from now while data
 * is in flight; after a loss probe or reordering timer it keeps the head's
 * original RTO deadline.
 */
export function tcpRearmRto(tcp: TcpProto, sk: TcpSock): void {
  if (!sk.packetsOut) {
    if (sk.pending === ICSK_TIME_RETRANS || sk.pending === ICSK_TIME_LOSS_PROBE || sk.pending === ICSK_TIME_REO_TIMEOUT) {
      tcp.time.timers.del(sk.retransmitTimer);
      sk.pending = 0;
    }
    return;
  }
  let rto = sk.rto;
  if (sk.pending === ICSK_TIME_REO_TIMEOUT || sk.pending === ICSK_TIME_LOSS_PROBE) rto = Math.max(tcpRtoDelta(tcp, sk), 0.001);
  tcpResetXmitTimer(tcp, sk, ICSK_TIME_RETRANS, rto);
}

/**
 * tcp_schedule_loss_probe: a tail loss probe (RFC 8985 TLP) two RTTs out
 * (plus the min RTO when one segment is out, for a delayed ACK), never past
 * the RTO; only for SACK connections in Open or CWR.
 */
export function tcpScheduleLossProbe(tcp: TcpProto, sk: TcpSock, advancingRto: boolean): boolean {
  const er = tcp.sysctl.tcp_early_retrans;
  if ((er !== 3 && er !== 4) || !sk.packetsOut || !sk.sackOk || (sk.caState !== TCP_CA_Open && sk.caState !== TCP_CA_CWR)) return false;
  let timeout: number;
  if (sk.srttUs) {
    let us = sk.srttUs >> 2;
    us += sk.packetsOut === 1 ? TCP_RTO_MIN * 1000 : TCP_TIMEOUT_MIN_US;
    timeout = Math.ceil(us / 1000);
  } else {
    timeout = TCP_TIMEOUT_INIT;
  }
  const rtoDelta = advancingRto ? sk.rto : tcpRtoDelta(tcp, sk);
  if (rtoDelta > 0) timeout = Math.min(timeout, Math.ceil(rtoDelta));
  tcpResetXmitTimer(tcp, sk, ICSK_TIME_LOSS_PROBE, timeout);
  return true;
}

/** tcp_send_loss_probe: send new data if the window allows, else resend the last segment; one probe per episode. */
export function tcpSendLossProbe(tcp: TcpProto, sk: TcpSock): void {
  const mss = tcpCurrentMss(sk);
  probe: if (!sk.tlpHighSeq) {
    sk.tlpRetrans = false;
    const head = sk.sendHead;
    if (head && tcpSndWndTest(sk, head, mss)) {
      const pcount = sk.packetsOut;
      tcpWriteXmit(tcp, sk, mss, TCP_NAGLE_OFF, 2);
      if (sk.packetsOut <= pcount) break probe;
    } else {
      // The last sent skb: the one before the send head.
      let skb: TcpSkb | null = null;
      for (let q = sk.wqHead; q && q !== sk.sendHead; q = q.next) skb = q;
      if (!skb) {
        sk.pending = 0;
        return;
      }
      if (!skb.pcount) break probe;
      const smss = skb.mss || mss;
      if (skb.pcount > 1 && skb.len > (skb.pcount - 1) * smss) skb = tcpFragment(sk, skb, (skb.pcount - 1) * smss, smss);
      if (__tcpRetransmitSkb(tcp, sk, skb, 1, TCP_RETRANS.TLP) !== 0) break probe;
      sk.tlpRetrans = true;
    }
    sk.tlpHighSeq = sk.sndNxt;
    tcp.mibs.TcpExt.TCPLossProbes++;
    // tcp_rearm_rto restarts a full RTO from now.
    sk.pending = 0;
  }
  tcpRearmRto(tcp, sk);
}

/** tcp_event_new_data_sent: skb went out for the first time. */
function tcpEventNewDataSent(tcp: TcpProto, sk: TcpSock, skb: TcpSkb): void {
  const prior = sk.packetsOut;
  sk.sndNxt = skb.endSeq;
  sk.sendHead = skb.next;
  sk.packetsOut += skb.pcount;
  if (sk.packetsOut > sk.maxPacketsOut) sk.maxPacketsOut = sk.packetsOut;
  tcp.mibs.TcpExt.TCPOrigDataSent += skb.pcount;
  if (!prior || sk.pending === ICSK_TIME_LOSS_PROBE || sk.pending === ICSK_TIME_PROBE0) {
    if (sk.pending === ICSK_TIME_PROBE0) sk.pending = 0;
    tcpRearmRto(tcp, sk);
  }
}

/**
 * tcp_write_xmit: send what the windows, Nagle and TSO sizing allow from
 * the send head. Returns true when nothing could be sent and nothing is in
 * flight (the caller then starts the zero-window probe timer).
 */
export function tcpWriteXmit(tcp: TcpProto, sk: TcpSock, mssNow: number, nonagle: number, pushOne: boolean | 2): boolean {
  let sentPkts = 0;
  let isCwndLimited = false;
  let isRwndLimited = false;
  const maxSegs = tcpTsoSegs(tcp, sk, mssNow);
  let skb: TcpSkb | null;
  if (!pushOne) {
    // PLPMTUD: a larger segment first, when it is time for one.
    const probe = tcpMtuProbe(tcp, sk);
    if (probe === 0) return false;
    if (probe > 0) sentPkts = 1;
  }
  while ((skb = sk.sendHead)) {
    if (tcpPacingCheck(tcp, sk)) break;
    const tsoSegs = skbPcount(skb, mssNow);
    let cwndQuota = tcpCwndTest(sk);
    // tcp_cwnd_test: the congestion window does not hold back the final FIN alone.
    if (!cwndQuota && skb.tcpFlags & TCPHDR_FIN && skb.len === 0) cwndQuota = 1;
    if (!cwndQuota) {
      // A loss probe goes out whatever the cwnd says.
      if (pushOne === 2) cwndQuota = 1;
      else {
        isCwndLimited = true;
        break;
      }
    }
    if (!tcpSndWndTest(sk, skb, mssNow)) {
      isRwndLimited = true;
      break;
    }
    if (tsoSegs === 1 || skb.len <= mssNow) {
      if (!tcpNagleTest(sk, skb, mssNow, skb === sk.wqTail ? nonagle : TCP_NAGLE_PUSH)) break;
    } else if (!pushOne && tcpTsoShouldDefer(tcp, sk, skb, maxSegs)) {
      break;
    }
    let limit = mssNow;
    if (tsoSegs > 1) limit = tcpMssSplitPoint(sk, skb, mssNow, Math.min(cwndQuota, maxSegs), nonagle);
    if (skb.len > limit && limit > 0) tcpFragment(sk, skb, limit);
    skb.pcount = skbPcount(skb, mssNow);
    skb.mss = mssNow;
    const flags = TCPHDR_ACK | (skb.tcpFlags & (TCPHDR_PSH | TCPHDR_FIN | TCPHDR_SYN));
    // Its departure time (skb_mstamp_ns): ahead of now while the fq stage paces (internal pacing sends it now).
    const now = sk.pacingStatus === SK_PACING_FQ && sk.wstampNs > tcp.now() * 1e6 ? sk.wstampNs / 1e6 : tcp.now();
    tcpRateSkbSent(sk, skb, now);
    skb.sentAt = now;
    skb.sentOrder = ++sk.xmitOrder;
    if (!skb.firstSentAt) skb.firstSentAt = now;
    if (tcpTransmit(tcp, sk, skb, flags, skb.seq, 0, skb.len, mssNow) !== 0) break;
    sk.bytesSent += skb.len;
    tcpEventNewDataSent(tcp, sk, skb);
    // tcp_minshall_update: remember the end of a small segment.
    if (skb.len < mssNow) sk.sndSml = skb.endSeq;
    sentPkts += skb.pcount;
    if (pushOne) break;
  }
  if (isRwndLimited) tcpChronoStart(tcp, sk, TCP_CHRONO_RWND_LIMITED);
  else tcpChronoStop(tcp, sk, TCP_CHRONO_RWND_LIMITED);
  if (sentPkts) {
    if (sk.caState === TCP_CA_CWR || sk.caState === TCP_CA_Recovery) sk.prrOut += sentPkts;
    // One loss probe per tail-loss episode: not after sending the probe itself.
    if (pushOne !== 2) tcpScheduleLossProbe(tcp, sk, false);
    isCwndLimited ||= tcpPacketsInFlight(sk) >= sk.sndCwnd;
    tcpCwndValidate(tcp, sk, isCwndLimited);
    return false;
  }
  return !sk.packetsOut && sk.sendHead !== null;
}

/**
 * tcp_cwnd_validate: track whether the cwnd was the limit during the
 * current window; when the sender was application-limited for an RTO,
 * shrink the cwnd toward what was used (tcp_cwnd_application_limited).
 */
function tcpCwndValidate(tcp: TcpProto, sk: TcpSock, isCwndLimited: boolean): void {
  if (!before(sk.sndUna, sk.cwndUsageSeq) || isCwndLimited || (!sk.isCwndLimited && sk.packetsOut > sk.maxPacketsOut)) {
    sk.isCwndLimited = isCwndLimited;
    sk.maxPacketsOut = sk.packetsOut;
    sk.cwndUsageSeq = sk.sndNxt;
  }
  const now = tcp.now();
  if (tcpIsCwndLimited(sk)) {
    sk.sndCwndUsed = 0;
    sk.sndCwndStamp = now;
  } else {
    if (sk.packetsOut > sk.sndCwndUsed) sk.sndCwndUsed = sk.packetsOut;
    if (tcp.sysctl.tcp_slow_start_after_idle && now - sk.sndCwndStamp >= sk.rto) tcpCwndApplicationLimited(tcp, sk);
    // All sent, not cwnd-limited, and the writer waits for room: the send buffer is the limit.
    if (!sk.sendHead && sk.noSpace && (sk.state === TCP_ESTABLISHED || sk.state === TCP_CLOSE_WAIT)) tcpChronoStart(tcp, sk, TCP_CHRONO_SNDBUF_LIMITED);
  }
}

/** tcp_cwnd_application_limited: limited by the application (not waiting for buffer space): halve toward what was used. */
function tcpCwndApplicationLimited(tcp: TcpProto, sk: TcpSock): void {
  if (sk.caState === TCP_CA_Open && !sk.noSpace) {
    const winUsed = Math.max(sk.sndCwndUsed, TCP_INIT_CWND);
    if (winUsed < sk.sndCwnd) {
      sk.sndSsthresh = tcpCurrentSsthresh(sk);
      sk.sndCwnd = (sk.sndCwnd + winUsed) >> 1;
    }
    sk.sndCwndUsed = 0;
  }
  sk.sndCwndStamp = tcp.now();
}

/** __tcp_push_pending_frames. */
export function tcpPushPendingFrames(tcp: TcpProto, sk: TcpSock, nonagle = sk.nonagle): void {
  if (sk.state === TCP_CLOSE || sk.state === TCP_SYN_SENT) return;
  if (!sk.sendHead) return;
  if (tcpWriteXmit(tcp, sk, tcpCurrentMss(sk), nonagle, false)) tcpCheckProbeTimer(tcp, sk);
}

/** tcp_check_probe_timer: nothing in flight but data waiting: probe the zero window. */
export function tcpCheckProbeTimer(tcp: TcpProto, sk: TcpSock): void {
  if (!sk.packetsOut && !sk.pending) {
    sk.pending = ICSK_TIME_PROBE0;
    tcp.time.timers.mod(sk.retransmitTimer, tcp.now() + Math.min(sk.rto, TCP_RTO_MAX));
  }
}

/**
 * __tcp_retransmit_skb: resend (the first `segs` segments of) a queued skb,
 * without the scoreboard marks (a loss probe uses it directly).
 */
export function __tcpRetransmitSkb(tcp: TcpProto, sk: TcpSock, skb: TcpSkb, segs: number, reason: number): number {
  const mss = tcpCurrentMss(sk);
  // Never past the peer's window (tcp_retransmit_skb's snd_wnd check).
  if (!before(skb.seq, tcpWndEnd(sk)) && skb.seq !== sk.sndUna) return -11;
  let len = Math.min(skb.len, segs * mss);
  if (len < skb.len && len > 0) tcpFragment(sk, skb, len, mss);
  len = skb.len;
  // Resent at today's MSS: the segment count may change (tcp_set_skb_tso_segs + tcp_adjust_pcount).
  if (skb.pcount && !(skb.tcpFlags & TCPHDR_SYN)) {
    const pc = skbPcount(skb, mss);
    if (pc !== skb.pcount) {
      const diff = skb.pcount - pc;
      sk.packetsOut -= diff;
      if (skb.sacked & TCPCB_LOST) sk.lostOut -= diff;
      if (skb.sacked & TCPCB_SACKED_RETRANS) sk.retransOut -= diff;
      skb.pcount = pc;
    }
    skb.mss = mss;
  }
  const flags = TCPHDR_ACK | (skb.tcpFlags & (TCPHDR_PSH | TCPHDR_FIN | TCPHDR_SYN));
  const isSyn = (skb.tcpFlags & TCPHDR_SYN) !== 0;
  const now = tcp.now();
  if (!isSyn) tcpRateSkbSent(sk, skb, now);
  const rc = isSyn ? tcpTransmit(tcp, sk, null, TCPHDR_SYN, skb.seq, 0, 0, 0) : tcpTransmit(tcp, sk, skb, flags, skb.seq, 0, len, mss);
  // Marked even when the send failed, so no RTT sample comes from a transmission that never happened.
  skb.sacked |= TCPCB_EVER_RETRANS;
  if (rc !== 0) {
    tcp.mibs.TcpExt.TCPRetransFail++;
    return rc;
  }
  skb.sentAt = now;
  skb.sentOrder = ++sk.xmitOrder;
  sk.bytesSent += len;
  sk.bytesRetrans += len;
  sk.totalRetrans += skb.pcount || 1;
  tcp.mibs.Tcp.RetransSegs += skb.pcount || 1;
  if (isSyn) tcp.mibs.TcpExt.TCPSynRetrans++;
  const tr = tcp.trace;
  if (tr !== null) tr.retransmit(sk, skb.seq, skb.endSeq, isSyn ? TCP_RETRANS.SYN : reason);
  return 0;
}

/** tcp_retransmit_skb: resend and mark it retransmitted (retrans_out, retrans_stamp, undo_retrans). */
export function tcpRetransmitSkb(tcp: TcpProto, sk: TcpSock, skb: TcpSkb, segs: number, reason: number): number {
  const rc = __tcpRetransmitSkb(tcp, sk, skb, segs, reason);
  if (rc === 0 && !(skb.sacked & TCPCB_SACKED_RETRANS)) {
    skb.sacked |= TCPCB_SACKED_RETRANS;
    sk.retransOut += skb.pcount;
  }
  // The first (attempted) retransmission's time: undo compares echoed timestamps with it.
  if (!sk.retransStamp) sk.retransStamp = skb.sentAt || tcp.now();
  if (sk.undoRetrans < 0) sk.undoRetrans = 0;
  sk.undoRetrans += skb.pcount || 1;
  return rc;
}

/**
 * tcp_xmit_retransmit_queue: resend segments marked lost, in sequence
 * order, as far as the cwnd allows (PRR sets the cwnd during recovery).
 */
export function tcpXmitRetransmitQueue(tcp: TcpProto, sk: TcpSock, reason: number): void {
  if (!sk.packetsOut) return;
  const head = sk.wqHead;
  const maxSegs = tcpTsoSegs(tcp, sk, tcpCurrentMss(sk));
  let rearm = false;
  for (let skb = head; skb && skb !== sk.sendHead; skb = skb.next) {
    if (tcpPacingCheck(tcp, sk)) break;
    let segs = sk.sndCwnd - tcpPacketsInFlight(sk);
    if (segs <= 0) break;
    segs = Math.min(segs, maxSegs);
    const sacked = skb.sacked;
    if (sk.retransOut >= sk.lostOut) break;
    if (!(sacked & TCPCB_LOST)) continue;
    if (sacked & (TCPCB_SACKED_ACKED | TCPCB_SACKED_RETRANS)) continue;
    if (tcpRetransmitSkb(tcp, sk, skb, segs, reason) !== 0) break;
    if (sk.caState !== TCP_CA_Loss) tcp.mibs.TcpExt.TCPFastRetrans += skb.pcount;
    else tcp.mibs.TcpExt.TCPSlowStartRetrans += skb.pcount;
    if (sk.caState === TCP_CA_CWR || sk.caState === TCP_CA_Recovery) sk.prrOut += skb.pcount;
    if (skb === head && sk.pending !== ICSK_TIME_REO_TIMEOUT) rearm = true;
  }
  if (rearm) tcpResetXmitTimer(tcp, sk, ICSK_TIME_RETRANS, sk.rto);
}

/** The storage of a SYN's or a lone FIN's skb: none (a zero-length buffer nothing can write into, shared). */
const NO_PAYLOAD = Buffer.alloc(0);

/** tcp_send_fin: the FIN rides on the last unsent skb, or gets its own. */
export function tcpSendFin(tcp: TcpProto, sk: TcpSock): void {
  // Unsent data at the tail: the FIN rides on it. (sendHead..tail are the unsent skbs.)
  const tail = sk.wqTail;
  if (tail && sk.sendHead) {
    tail.tcpFlags |= TCPHDR_FIN;
    tail.endSeq = seqAdd(tail.endSeq, 1);
  } else {
    const skb = new TcpSkb(NO_PAYLOAD, 0, 0, sk.writeSeq);
    skb.tcpFlags = TCPHDR_FIN;
    skb.endSeq = seqAdd(skb.seq, 1);
    tcpSkbEntail(sk, skb);
    // tcp_queue_skb: a FIN alone in the queue is something to send.
    if (sk.sendHead === skb) tcpChronoStart(tcp, sk, TCP_CHRONO_BUSY);
  }
  sk.writeSeq = seqAdd(sk.writeSeq, 1);
  tcpPushPendingFrames(tcp, sk, TCP_NAGLE_PUSH | (sk.nonagle & ~TCP_NAGLE_CORK));
}

/** tcp_connect: queue and send the SYN (it lives in the write queue for retransmission). */
export function tcpConnectSend(tcp: TcpProto, sk: TcpSock): void {
  const skb = new TcpSkb(NO_PAYLOAD, 0, 0, sk.iss);
  skb.tcpFlags = TCPHDR_SYN;
  skb.endSeq = seqAdd(sk.iss, 1);
  tcpSkbEntail(sk, skb);
  sk.sndNxt = sk.iss;
  sk.writeSeq = skb.endSeq;
  // tcp_ecn_send_syn: ask for ECN only with tcp_ecn=1 (2, the default, only accepts).
  sk.ecnFlags = tcp.sysctl.tcp_ecn === 1 ? TCP_ECN_OK : 0;
  const now = tcp.now();
  skb.sentAt = now;
  skb.firstSentAt = now;
  skb.pcount = 1;
  if (!sk.fastopenReq) tcpTransmit(tcp, sk, null, TCPHDR_SYN, sk.iss, 0, 0, 0);
  sk.sndNxt = skb.endSeq;
  sk.pushedSeq = sk.writeSeq;
  sk.sendHead = null;
  sk.packetsOut = 1;
  if (sk.fastopenReq) tcpSendSynData(tcp, sk, skb, (data, len) => tcpTransmit(tcp, sk, data, TCPHDR_SYN, sk.iss, 0, len, 0));
  sk.retransStamp = now;
  tcp.mibs.Tcp.ActiveOpens++;
  sk.pending = ICSK_TIME_RETRANS;
  tcp.time.timers.mod(sk.retransmitTimer, now + sk.rto);
}

/**
 * tcp_write_wakeup: a probe for the zero-window or keepalive timer: new
 * data if the window allows some, else a segment with an old sequence number
 * (snd_una - 1) that the peer must answer with an ACK.
 */
export function tcpWriteWakeup(tcp: TcpProto, sk: TcpSock): number {
  const skb = sk.sendHead;
  if (skb && before(skb.seq, tcpWndEnd(sk))) {
    const mss = tcpCurrentMss(sk);
    const segSize = Math.min((tcpWndEnd(sk) - skb.seq) | 0, mss);
    if (segSize < skb.len) tcpFragment(sk, skb, segSize);
    skb.pcount = skbPcount(skb, mss);
    skb.tcpFlags |= TCPHDR_PSH;
    const now = tcp.now();
    tcpRateSkbSent(sk, skb, now);
    skb.sentAt = now;
    skb.sentOrder = ++sk.xmitOrder;
    if (!skb.firstSentAt) skb.firstSentAt = now;
    const rc = tcpTransmit(tcp, sk, skb, TCPHDR_ACK | (skb.tcpFlags & (TCPHDR_PSH | TCPHDR_FIN)), skb.seq, 0, skb.len, mss);
    if (rc === 0) {
      sk.bytesSent += skb.len;
      tcpEventNewDataSent(tcp, sk, skb);
    }
    return rc;
  }
  // tcp_xmit_probe_skb: an out-of-window ACK at snd_una - 1.
  tcp.mibs.TcpExt.TCPWinProbe++;
  return tcpTransmit(tcp, sk, null, TCPHDR_ACK, (sk.sndUna - 1) >>> 0, 0, 0, 0);
}

/**
 * A bare ACK from no full socket (tcp_v4_send_ack / tcp_v6_send_ack):
 * request socks and TIME_WAIT socks answer with it, from their tuple.
 */
export function tcpSendAckRaw(
  tcp: TcpProto,
  from: InetSock,
  seq: number,
  ack: number,
  win: number,
  ts: boolean,
  tsOff: number,
  tsecr: number,
  tos: number,
  md5: TcpMd5SigKey | null = null,
): void {
  const o = resetOpts(tcp);
  if (ts) {
    o.ts = true;
    o.tsval = tcpTimeStamp(tcp, tsOff);
    o.tsecr = tsecr;
  }
  const optLen = tcpOptionsSize(o);
  const hdrLen = TCP_HLEN + optLen + (md5 ? TCPOLEN_MD5SIG_ALIGNED : 0);
  const pkt = allocSkb(hdrLen);
  const at = pkt.put(hdrLen);
  tcpHeader(pkt.buf, at, from.num, from.dport, seq, ack, hdrLen, TCPHDR_ACK, win);
  tcpOptionsWrite(pkt.buf, at + TCP_HLEN, o);
  if (md5) {
    // tcp_v4_send_ack / tcp_v6_send_response: NOP NOP MD5 after the timestamp.
    const m = at + TCP_HLEN + optLen;
    pkt.buf.writeUInt32BE(0x01011312, m);
    pkt.buf.fill(0, m + 4, m + 20);
    tcpMd5Sign(md5, from, pkt.buf, at, hdrLen, m + 4);
  }
  tcp.mibs.Tcp.OutSegs++;
  tcpAfXmit(tcp, from, pkt, at, hdrLen, false, 64, tos, 0);
}

// --- PLPMTUD (RFC 4821): the probe ----------------------------------------------

/** tcp_mtu_check_reprobe: after tcp_probe_interval, search again from the current MSS up to the peer's. */
function tcpMtuCheckReprobe(tcp: TcpProto, sk: TcpSock): void {
  if (tcp.now() - sk.mtupProbeTimestamp < tcp.sysctl.tcp_probe_interval) return;
  const mss = tcpCurrentMss(sk);
  sk.mtupProbeSize = 0;
  sk.mtupSearchHigh = sk.mssClamp + TCP_HLEN + (sk.ipv6 ? IPV6_HLEN : IP_HLEN);
  sk.mtupSearchLow = tcpMssToMtu(sk, mss);
  sk.mtupProbeTimestamp = tcp.now();
}

/**
 * tcp_can_coalesce_send_queue_head: the unsent data from the send head can
 * make one segment of `len` bytes (no record end, FIN or SYN inside it).
 */
function tcpCanCoalesceSendQueueHead(sk: TcpSock, len: number): boolean {
  for (let skb = sk.sendHead; skb; skb = skb.next) {
    if (skb.tcpFlags & (TCPHDR_SYN | TCPHDR_FIN)) return false;
    if (len <= skb.len) return true;
    if (skb.eor) return false;
    len -= skb.len;
  }
  return false;
}

/**
 * The send head made exactly `size` bytes long, taking the bytes of the
 * skbs after it as tcp_mtu_probe's new skb eats them (whole ones leave the
 * queue, the last is trimmed at its head).
 */
function tcpMtuProbeBuild(tcp: TcpProto, sk: TcpSock, size: number): TcpSkb {
  const head = sk.sendHead!;
  if (head.len < size) {
    const buf = Buffer.allocUnsafe(size);
    head.buf.copy(buf, 0, head.off, head.off + head.len);
    if (head.page) tcp.sndPages.put(head.page);
    head.page = null;
    head.buf = buf;
    head.off = 0;
    head.cap = size;
    while (head.len < size) {
      const next = head.next!;
      const take = Math.min(next.len, size - head.len);
      next.buf.copy(buf, head.len, next.off, next.off + take);
      head.len += take;
      head.truesize += take;
      if (take === next.len) {
        // Eaten whole (tcp_eat_one_skb): its overhead is freed, its bytes now the head's.
        head.next = next.next;
        if (sk.wqTail === next) sk.wqTail = head;
        head.tcpFlags |= next.tcpFlags & TCPHDR_PSH;
        sk.wmemQueued -= next.truesize - take;
        skMemUncharge(sk, next.truesize - take);
        if (next.page) tcp.sndPages.put(next.page);
      } else {
        next.off += take;
        next.len -= take;
        next.cap -= take;
        next.truesize -= take;
        next.seq = seqAdd(next.seq, take);
      }
    }
    head.endSeq = seqAdd(head.seq, size);
  } else if (head.len > size) {
    tcpFragment(sk, head, size);
  }
  // The probe carries no PSH of its own (tcp_mtu_probe builds it with ACK only).
  head.tcpFlags &= ~TCPHDR_PSH;
  return head;
}

/**
 * tcp_mtu_probe: when PLPMTUD is on and nothing stands in the way (no
 * probe out, Open, cwnd of 11 or more, no SACK blocks to send), send the
 * next segment at the middle of the MTU search range. Returns 1 when sent,
 * 0 when the caller must wait (window or cwnd), -1 to go on without one.
 */
export function tcpMtuProbe(tcp: TcpProto, sk: TcpSock): number {
  if (!sk.mtupEnabled || sk.mtupProbeSize || sk.caState !== TCP_CA_Open || sk.sndCwnd < 11 || sk.numSacks || sk.dsack) return -1;
  const probeSize = tcpMtuToMss(sk, (sk.mtupSearchHigh + sk.mtupSearchLow) >> 1);
  const sizeNeeded = probeSize + (sk.reordering + 1) * sk.mssCache;
  const interval = sk.mtupSearchHigh - sk.mtupSearchLow;
  if (probeSize > tcpMtuToMss(sk, sk.mtupSearchHigh) || interval < tcp.sysctl.tcp_probe_threshold) {
    tcpMtuCheckReprobe(tcp, sk);
    return -1;
  }
  // Enough unsent data, and room in the peer's window and our cwnd.
  if (((sk.writeSeq - sk.sndNxt) | 0) < sizeNeeded) return -1;
  if (sk.sndWnd < sizeNeeded) return -1;
  if (after(seqAdd(sk.sndNxt, sizeNeeded), tcpWndEnd(sk))) return 0;
  if (tcpPacketsInFlight(sk) + 2 > sk.sndCwnd) return tcpPacketsInFlight(sk) ? 0 : -1;
  if (!tcpCanCoalesceSendQueueHead(sk, probeSize)) return -1;
  const skb = tcpMtuProbeBuild(tcp, sk, probeSize);
  skb.pcount = 1;
  skb.mss = skb.len;
  const now = tcp.now();
  tcpRateSkbSent(sk, skb, now);
  skb.sentAt = now;
  skb.sentOrder = ++sk.xmitOrder;
  if (!skb.firstSentAt) skb.firstSentAt = now;
  // If it cannot be sent, tcp_write_xmit cuts it back to MSS-sized segments.
  if (tcpTransmit(tcp, sk, skb, TCPHDR_ACK, skb.seq, 0, skb.len, skb.len) !== 0) return -1;
  // Two segments' worth in one: the cwnd pays one back.
  sk.sndCwnd--;
  sk.bytesSent += skb.len;
  tcpEventNewDataSent(tcp, sk, skb);
  sk.mtupProbeSize = tcpMssToMtu(sk, skb.len);
  sk.mtuProbeSeqStart = skb.seq;
  sk.mtuProbeSeqEnd = skb.endSeq;
  return 1;
}
