/**
 * RACK-TLP loss detection (net/ipv4/tcp_recovery.c, RFC 8985 as Linux runs
 * it with net.ipv4.tcp_recovery=1): a segment is lost once a segment sent
 * after it has been delivered and more than an RTT plus the reordering
 * window has passed since it was sent. The reordering window is a quarter
 * of min_rtt (times a step count D-SACKs raise), or zero while no
 * reordering has been seen and the duplicate threshold is met. Plus the
 * NewReno marking for connections without SACK, and tcp_mark_skb_lost.
 *
 * Linux walks its send-time-ordered list and stops at the first segment not
 * sent before RACK's; this walks the write queue in sequence order and
 * tests each segment, which marks the same set.
 */
import { after } from '../../lib/seq.js';
import type { TcpProto } from './tcp_proto.js';
import {
  ICSK_TIME_REO_TIMEOUT,
  TCPCB_LOST,
  TCPCB_RETRANS,
  TCPCB_SACKED_ACKED,
  TCPCB_SACKED_RETRANS,
  TCP_CA_Recovery,
  ICSK_TIME_RETRANS,
  type TcpSkb,
  type TcpSock,
} from './tcp_sock.js';
import { tcpFragment, tcpPacketsInFlight, tcpRearmRto, tcpResetXmitTimer, tcpXmitRetransmitQueue } from './tcp_output.js';
import { tcpCwndReduction, tcpEnterRecovery } from './tcp_input.js';
import type { RateSample } from './tcp_rate.js';

/** tcp_recovery bits. */
export const TCP_RACK_LOSS_DETECTION = 1;
export const TCP_RACK_STATIC_REO_WND = 2;
export const TCP_RACK_NO_DUPTHRESH = 4;
/** Recoveries a raised reordering window persists for (TCP_RACK_RECOVERY_THRESH). */
const TCP_RACK_RECOVERY_THRESH = 16;
/** TCP_TIMEOUT_MIN: the smallest timer Linux arms, 2 jiffies = 2 ms. */
export const TCP_TIMEOUT_MIN = 2;

/** tcp_is_rack: RACK on and the peer does SACK. */
export function tcpIsRack(tcp: TcpProto, sk: TcpSock): boolean {
  return sk.sackOk && (tcp.sysctl.tcp_recovery & TCP_RACK_LOSS_DETECTION) !== 0;
}

/**
 * tcp_skb_sent_after: o1/seq1 sent after o2/seq2. Linux compares
 * nanosecond send stamps (its tsorted list order) and breaks ties by
 * sequence, which only happens for pieces of one TSO burst. Our clocks tick
 * in milliseconds, so a retransmission and new data sent in the same tick
 * would tie and the sequence would wrongly make the new data "later": each
 * transmission carries its place in send order instead (skb.sentOrder).
 */
export function tcpSkbSentAfter(o1: number, o2: number, seq1: number, seq2: number): boolean {
  return o1 > o2 || (o1 === o2 && after(seq1, seq2));
}

/** tcp_min_rtt in microseconds, ~0 before a sample. */
function minRttUs(sk: TcpSock): number {
  return sk.minRttUs || 0xffffffff;
}

/**
 * tcp_rack_advance: a delivered segment's send time becomes RACK's if it is
 * the most recently sent so far. An ambiguous retransmission (RTT below
 * min_rtt) is ignored.
 */
export function tcpRackAdvance(sk: TcpSock, sacked: number, endSeq: number, xmitTime: number, xmitOrder: number, now: number): void {
  const rttUs = Math.max(0, Math.round((now - xmitTime) * 1000));
  if (rttUs < minRttUs(sk) && sacked & TCPCB_RETRANS) return;
  sk.rackAdvanced = true;
  sk.rackRttUs = rttUs;
  if (tcpSkbSentAfter(xmitOrder, sk.rackXmitOrder, endSeq, sk.rackEndSeq)) {
    sk.rackMstamp = xmitTime;
    sk.rackXmitOrder = xmitOrder;
    sk.rackEndSeq = endSeq;
  }
}

/** tcp_rack_reo_wnd, microseconds. */
function tcpRackReoWnd(tcp: TcpProto, sk: TcpSock): number {
  if (!sk.reordSeen) {
    // No reordering seen: be aggressive in recovery, or once the dupack threshold is met.
    if (sk.caState >= TCP_CA_Recovery) return 0;
    if (sk.sackedOut >= sk.reordering && !(tcp.sysctl.tcp_recovery & TCP_RACK_NO_DUPTHRESH)) return 0;
  }
  return Math.min((minRttUs(sk) >>> 2) * sk.rackReoWndSteps, sk.srttUs >> 3);
}

/** tcp_rack_skb_timeout: how long until `skb` counts as lost (<= 0: already). */
export function tcpRackSkbTimeout(sk: TcpSock, skb: TcpSkb, reoWndUs: number, now: number): number {
  return sk.rackRttUs + reoWndUs - Math.round((now - skb.sentAt) * 1000);
}

/** tcp_mark_skb_lost: count it lost (a lost retransmission stops counting as retransmitted). */
export function tcpMarkSkbLost(tcp: TcpProto, sk: TcpSock, skb: TcpSkb): void {
  const sacked = skb.sacked;
  if (sacked & TCPCB_SACKED_ACKED) return;
  if (sacked & TCPCB_LOST) {
    if (sacked & TCPCB_SACKED_RETRANS) {
      skb.sacked &= ~TCPCB_SACKED_RETRANS;
      sk.retransOut -= Math.min(skb.pcount, sk.retransOut);
      tcp.mibs.TcpExt.TCPLostRetransmit += skb.pcount;
    }
  } else {
    sk.lostOut += skb.pcount;
    sk.lost += skb.pcount;
    skb.sacked |= TCPCB_LOST;
  }
}

/** tcp_rack_detect_loss: mark what RACK shows lost; returns the longest wait still pending, us. */
function tcpRackDetectLoss(tcp: TcpProto, sk: TcpSock, now: number): number {
  let reoTimeout = 0;
  const reoWnd = tcpRackReoWnd(tcp, sk);
  for (let skb = sk.wqHead; skb && skb !== sk.sendHead; skb = skb.next) {
    const sacked = skb.sacked;
    // Marked lost and not yet resent, or already SACKed: nothing to decide.
    if ((sacked & TCPCB_LOST && !(sacked & TCPCB_SACKED_RETRANS)) || sacked & TCPCB_SACKED_ACKED) continue;
    if (!tcpSkbSentAfter(sk.rackXmitOrder, skb.sentOrder, sk.rackEndSeq, skb.endSeq)) continue;
    const remaining = tcpRackSkbTimeout(sk, skb, reoWnd, now);
    if (remaining <= 0) tcpMarkSkbLost(tcp, sk, skb);
    else if (remaining > reoTimeout) reoTimeout = remaining;
  }
  return reoTimeout;
}

/** tcp_rack_mark_lost: run detection if RACK advanced; arm the reordering timer for what must wait. Returns true if it did. */
export function tcpRackMarkLost(tcp: TcpProto, sk: TcpSock): boolean {
  if (!sk.rackAdvanced) return false;
  sk.rackAdvanced = false;
  const timeoutUs = tcpRackDetectLoss(tcp, sk, tcp.now());
  if (timeoutUs) {
    const ms = Math.ceil(timeoutUs / 1000) + TCP_TIMEOUT_MIN;
    tcpResetXmitTimer(tcp, sk, ICSK_TIME_REO_TIMEOUT, Math.min(ms, sk.rto));
  }
  return timeoutUs !== 0;
}

/** tcp_rack_reo_timeout: the reordering window ran out: mark, enter recovery if needed, resend. */
export function tcpRackReoTimeout(tcp: TcpProto, sk: TcpSock): void {
  const lostBefore = sk.lost;
  const priorInflight = tcpPacketsInFlight(sk);
  tcpRackDetectLoss(tcp, sk, tcp.now());
  if (priorInflight !== tcpPacketsInFlight(sk)) {
    if (sk.caState !== TCP_CA_Recovery) {
      tcpEnterRecovery(tcp, sk, false);
      tcpCwndReduction(sk, 1, sk.lost - lostBefore, 0);
    }
    tcpXmitRetransmitQueue(tcp, sk);
  }
  if (sk.pending !== ICSK_TIME_RETRANS) tcpRearmRto(tcp, sk);
}

/** tcp_rack_update_reo_wnd: D-SACKs widen the reordering window, for TCP_RACK_RECOVERY_THRESH recoveries. */
export function tcpRackUpdateReoWnd(tcp: TcpProto, sk: TcpSock, rs: RateSample): void {
  if (tcp.sysctl.tcp_recovery & TCP_RACK_STATIC_REO_WND || !rs.priorDelivered) return;
  // A D-SACK within an RTT of the last adjustment is disregarded.
  if (rs.priorDelivered < sk.rackLastDelivered) sk.rackDsackSeen = false;
  if (sk.rackDsackSeen) {
    sk.rackReoWndSteps = Math.min(0xff, sk.rackReoWndSteps + 1);
    sk.rackDsackSeen = false;
    sk.rackLastDelivered = sk.delivered;
    sk.rackReoWndPersist = TCP_RACK_RECOVERY_THRESH;
  } else if (!sk.rackReoWndPersist) {
    sk.rackReoWndSteps = 1;
  }
}

/** A recovery ended without undo: a raised window persists one recovery less. */
export function tcpRackRecoveryDone(sk: TcpSock): void {
  if (sk.rackReoWndPersist) sk.rackReoWndPersist--;
}

/** An undo by D-SACK keeps the raised window longer. */
export function tcpRackDsackUndo(sk: TcpSock): void {
  sk.rackReoWndPersist = Math.min(TCP_RACK_RECOVERY_THRESH, sk.rackReoWndPersist + 1);
}

/**
 * tcp_newreno_mark_lost (no SACK): the head is lost after tp->reordering
 * duplicate ACKs, and again on each partial ACK in recovery.
 */
export function tcpNewrenoMarkLost(tcp: TcpProto, sk: TcpSock, sndUnaAdvanced: boolean): void {
  const state = sk.caState;
  if ((state < TCP_CA_Recovery && sk.sackedOut >= sk.reordering) || (state === TCP_CA_Recovery && sndUnaAdvanced)) {
    const skb = sk.wqHead;
    if (!skb || skb === sk.sendHead || skb.sacked & TCPCB_LOST) return;
    const mss = skb.mss || sk.mssCache;
    if (skb.pcount > 1 && skb.len > mss) tcpFragment(sk, skb, mss, mss);
    tcpMarkSkbLost(tcp, sk, skb);
  }
}

