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
import { after, before } from '../../lib/seq.js';
import type { TcpProto } from './tcp_proto.js';
import {
  ICSK_TIME_REO_TIMEOUT,
  ICSK_TIME_RETRANS,
  TCP_CA_CWR,
  TCP_CA_Disorder,
  TCP_CA_Loss,
  TCP_CA_Open,
  TCP_CA_Recovery,
  TCP_ECN_QUEUE_CWR,
  TCPCB_EVER_RETRANS,
  TCPCB_LOST,
  TCPCB_RETRANS,
  TCPCB_SACKED_ACKED,
  TCPCB_SACKED_RETRANS,
  tcpHighestSackSeq,
  type TcpSkb,
  type TcpSock,
} from './tcp_sock.js';
import {
  tcpCurrentMss,
  tcpCurrentSsthresh,
  tcpFragment,
  tcpPacketsInFlight,
  tcpRearmRto,
  tcpResetXmitTimer,
  tcpXmitRetransmitQueue,
} from './tcp_output.js';
import type { RateSample } from './tcp_rate.js';
import { tcpEcnQueueCwr, tcpEnterCwr, tcpInitCwndReduction } from './tcp_cong.js';
// tcp_output.ts calls these too (a qdisc drop is local congestion): they live in tcp_cong.ts, below both.
export { tcpEcnQueueCwr, tcpEnterCwr, tcpInitCwndReduction };
import { TcpOptionsReceived } from '../../wire/tcp.js';
import { FLAG_ECE, FLAG_SND_UNA_ADVANCED, TcpAckState } from './tcp_skb_cb.js';
import { CA_EVENT_COMPLETE_CWR, CA_EVENT_LOSS, tcpCaEvent, tcpSetCaState } from './tcp_cong.js';
import { TCP_SYN_SENT } from '../core/sock.js';
import { TCP_RETRANS } from './tcp_trace.js';

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
    tcpXmitRetransmitQueue(tcp, sk, TCP_RETRANS.RACK);
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

/** The TS echo predates `when` (a clock time in ms): tcp_tsopt_ecr_before. */
export function tcpTsoptEcrBefore(o: TcpOptionsReceived, sk: TcpSock, when: number): boolean {
  return o.sawTstamp && o.rcvTsecr !== 0 && before(o.rcvTsecr, (Math.floor(when) + sk.tsOff) >>> 0);
}

/** tcp_init_undo. */
export function tcpInitUndo(sk: TcpSock): void {
  sk.undoMarker = sk.sndUna;
  // Retransmissions still in flight may yet be D-SACKed.
  sk.undoRetrans = sk.retransOut || -1;
}

/**
 * tcp_cwnd_reduction: Proportional Rate Reduction (RFC 6937). While the
 * pipe is above ssthresh, send ssthresh/prior_cwnd per delivered segment;
 * below it, slow-start back up to ssthresh (PRR-SSRB); one fast retransmit
 * always goes out.
 */
export function tcpCwndReduction(sk: TcpSock, newlyAckedSacked: number, newlyLost: number, flag: number): void {
  if (newlyAckedSacked <= 0 || !sk.priorCwnd) return;
  const inFlight = tcpPacketsInFlight(sk);
  const delta = sk.sndSsthresh - inFlight;
  let sndcnt: number;
  sk.prrDelivered += newlyAckedSacked;
  if (delta < 0) {
    sndcnt = Math.floor((sk.sndSsthresh * sk.prrDelivered + sk.priorCwnd - 1) / sk.priorCwnd) - sk.prrOut;
  } else {
    sndcnt = Math.max(sk.prrDelivered - sk.prrOut, newlyAckedSacked);
    if (flag & FLAG_SND_UNA_ADVANCED && !newlyLost) sndcnt++;
    sndcnt = Math.min(delta, sndcnt);
  }
  sndcnt = Math.max(sndcnt, sk.prrOut ? 0 : 1);
  sk.sndCwnd = inFlight + sndcnt;
}

/** tcp_end_cwnd_reduction: the window lands on ssthresh (unless undone). */
export function tcpEndCwndReduction(tcp: TcpProto, sk: TcpSock): void {
  if (sk.sndSsthresh < 0x7fffffff && (sk.caState === TCP_CA_CWR || sk.undoMarker)) {
    sk.sndCwnd = sk.sndSsthresh;
    sk.sndCwndStamp = tcp.now();
  }
  tcpCaEvent(sk, CA_EVENT_COMPLETE_CWR, tcp.now());
}

/** tcp_any_retrans_done. */
export function tcpAnyRetransDone(sk: TcpSock): boolean {
  if (sk.retransOut) return true;
  const head = sk.wqHead;
  return !!head && head !== sk.sendHead && (head.sacked & TCPCB_EVER_RETRANS) !== 0;
}

/** tcp_try_keep_open: Disorder while anything is SACKed, lost or retransmitted, else Open. */
export function tcpTryKeepOpen(tcp: TcpProto, sk: TcpSock): void {
  let state = TCP_CA_Open;
  if (sk.sackedOut + sk.lostOut || tcpAnyRetransDone(sk)) state = TCP_CA_Disorder;
  if (sk.caState !== state) {
    tcpSetCaState(sk, state, tcp.now());
    sk.highSeq = sk.sndNxt;
  }
}

export function tcpTryToOpen(tcp: TcpProto, sk: TcpSock, flag: number): void {
  if (!tcpAnyRetransDone(sk)) sk.retransStamp = 0;
  if (flag & FLAG_ECE) tcpEnterCwr(tcp, sk);
  if (sk.caState !== TCP_CA_CWR) tcpTryKeepOpen(tcp, sk);
}

/** tcp_packet_delayed: the ACK echoes a timestamp from before the first retransmission. */
export function tcpPacketDelayed(st: TcpAckState, sk: TcpSock): boolean {
  if (sk.retransStamp) return tcpTsoptEcrBefore(st.opt, sk, sk.retransStamp);
  // No retransmission happened yet (or Reno cleared the stamp at high_seq).
  if (!sk.sackOk && !before(sk.sndUna, sk.highSeq)) return false;
  if (sk.state === TCP_SYN_SENT) return false;
  return true;
}

/** tcp_may_undo: nothing was really retransmitted, or the originals arrived. */
export function tcpMayUndo(st: TcpAckState, sk: TcpSock): boolean {
  return sk.undoMarker !== 0 && (!sk.undoRetrans || tcpPacketDelayed(st, sk));
}

/** tcp_undo_cwnd_reduction: restore the window and ssthresh from before the reduction. */
export function tcpUndoCwndReduction(tcp: TcpProto, sk: TcpSock, unmarkLoss: boolean): void {
  if (unmarkLoss) {
    for (let skb = sk.wqHead; skb && skb !== sk.sendHead; skb = skb.next) skb.sacked &= ~TCPCB_LOST;
    sk.lostOut = 0;
  }
  if (sk.priorSsthresh) {
    sk.sndCwnd = sk.caOps.undoCwnd(sk);
    if (sk.priorSsthresh > sk.sndSsthresh) {
      sk.sndSsthresh = sk.priorSsthresh;
      sk.ecnFlags &= ~TCP_ECN_QUEUE_CWR;
    }
  }
  sk.sndCwndStamp = tcp.now();
  sk.undoMarker = 0;
  // Let RACK look at the queue again.
  sk.rackAdvanced = true;
}

/** tcp_is_non_sack_preventing_reopen: Reno holds the state until data above high_seq is acked (RFC 6582). */
export function tcpIsNonSackPreventingReopen(sk: TcpSock): boolean {
  if (sk.sndUna === sk.highSeq && !sk.sackOk) {
    if (!tcpAnyRetransDone(sk)) sk.retransStamp = 0;
    return true;
  }
  return false;
}

/** tcp_try_undo_recovery: at the end of recovery, undo if it was spurious. Returns true to stay put. */
export function tcpTryUndoRecovery(tcp: TcpProto, sk: TcpSock, st: TcpAckState): boolean {
  if (tcpMayUndo(st, sk)) {
    tcpUndoCwndReduction(tcp, sk, false);
    if (sk.caState === TCP_CA_Loss) tcp.mibs.TcpExt.TCPLossUndo++;
    else tcp.mibs.TcpExt.TCPFullUndo++;
  } else {
    tcpRackRecoveryDone(sk);
  }
  if (tcpIsNonSackPreventingReopen(sk)) return true;
  tcpSetCaState(sk, TCP_CA_Open, tcp.now());
  sk.isSackReneg = false;
  return false;
}

/** tcp_try_undo_dsack: every retransmission was D-SACKed: undo. */
export function tcpTryUndoDsack(tcp: TcpProto, sk: TcpSock): boolean {
  if (sk.undoMarker && !sk.undoRetrans) {
    tcpRackDsackUndo(sk);
    tcpUndoCwndReduction(tcp, sk, false);
    tcp.mibs.TcpExt.TCPDSACKUndo++;
    return true;
  }
  return false;
}

/** tcp_try_undo_loss: undo an RTO recovery (partial ACK proof or F-RTO). */
export function tcpTryUndoLoss(tcp: TcpProto, sk: TcpSock, st: TcpAckState, frtoUndo: boolean): boolean {
  if (frtoUndo || tcpMayUndo(st, sk)) {
    tcpUndoCwndReduction(tcp, sk, true);
    tcp.mibs.TcpExt.TCPLossUndo++;
    if (frtoUndo) tcp.mibs.TcpExt.TCPSpuriousRTOs++;
    sk.retransmits = 0;
    if (tcpIsNonSackPreventingReopen(sk)) return true;
    if (frtoUndo || sk.sackOk) {
      tcpSetCaState(sk, TCP_CA_Open, tcp.now());
      sk.isSackReneg = false;
    }
    return true;
  }
  return false;
}

/** tcp_force_fast_retransmit: SACKs reach more than `reordering` segments past snd_una. */
export function tcpForceFastRetransmit(sk: TcpSock): boolean {
  return after(tcpHighestSackSeq(sk), (sk.sndUna + sk.reordering * sk.mssCache) >>> 0);
}

/** tcp_try_undo_partial: in recovery, a partial ACK of a delayed original. Returns true to stop; may set st.doLost. */
export function tcpTryUndoPartial(tcp: TcpProto, sk: TcpSock, st: TcpAckState): boolean {
  if (sk.undoMarker && tcpPacketDelayed(st, sk)) {
    // The hole was filled by the delayed original: reordering.
    tcpCheckSackReordering(tcp, sk, st.priorSndUna, true);
    // Still retransmissions out: keep clocking out new data but mark nothing more.
    if (sk.retransOut) return true;
    if (!tcpAnyRetransDone(sk)) sk.retransStamp = 0;
    tcpUndoCwndReduction(tcp, sk, true);
    tcp.mibs.TcpExt.TCPPartialUndo++;
    tcpTryKeepOpen(tcp, sk);
  } else {
    // A partial ACK: force the next retransmission.
    st.doLost = tcpForceFastRetransmit(sk);
  }
  return false;
}

/** tcp_enter_recovery: fast recovery begins (RFC 6675 with PRR). */
export function tcpEnterRecovery(tcp: TcpProto, sk: TcpSock, eceAck: boolean): void {
  if (!sk.sackOk) tcp.mibs.TcpExt.TCPRenoRecovery++;
  else tcp.mibs.TcpExt.TCPSackRecovery++;
  sk.priorSsthresh = 0;
  tcpInitUndo(sk);
  if (sk.caState !== TCP_CA_CWR && sk.caState !== TCP_CA_Recovery) {
    if (!eceAck) sk.priorSsthresh = tcpCurrentSsthresh(sk);
    tcpInitCwndReduction(tcp, sk);
  }
  tcpSetCaState(sk, TCP_CA_Recovery, tcp.now());
}

/** tcp_timeout_mark_lost: at an RTO everything outstanding is lost, except what RACK says was sent too recently. */
export function tcpTimeoutMarkLost(tcp: TcpProto, sk: TcpSock): void {
  const head = sk.wqHead;
  if (!head || head === sk.sendHead) return;
  const isReneg = (head.sacked & TCPCB_SACKED_ACKED) !== 0;
  if (isReneg) {
    tcp.mibs.TcpExt.TCPSACKReneging++;
    sk.sackedOut = 0;
    sk.isSackReneg = true;
  } else if (!sk.sackOk) {
    sk.sackedOut = 0;
  }
  const now = tcp.now();
  for (let skb: TcpSkb | null = head; skb && skb !== sk.sendHead; skb = skb.next) {
    if (isReneg) skb.sacked &= ~TCPCB_SACKED_ACKED;
    else if (skb !== head && tcpRackSkbTimeout(sk, skb, 0, now) > 0) continue;
    tcpMarkSkbLost(tcp, sk, skb);
  }
}

/**
 * tcp_enter_loss: an RTO. Mark the outstanding data lost, reduce ssthresh
 * once per window, cwnd to what is in flight plus one, and start F-RTO.
 */
export function tcpEnterLoss(tcp: TcpProto, sk: TcpSock): void {
  const newRecovery = sk.caState < TCP_CA_Recovery;
  tcpTimeoutMarkLost(tcp, sk);
  if (sk.caState <= TCP_CA_Disorder || !after(sk.highSeq, sk.sndUna) || (sk.caState === TCP_CA_Loss && !sk.retransmits)) {
    sk.priorSsthresh = tcpCurrentSsthresh(sk);
    sk.priorCwnd = sk.sndCwnd;
    sk.sndSsthresh = sk.caOps.ssthresh(sk);
    tcpCaEvent(sk, CA_EVENT_LOSS, tcp.now());
    tcpInitUndo(sk);
  }
  sk.sndCwnd = tcpPacketsInFlight(sk) + 1;
  sk.sndCwndCnt = 0;
  sk.sndCwndStamp = tcp.now();
  // An RTO after many dupacks: the reordering estimate was too high.
  if (sk.caState <= TCP_CA_Disorder && sk.sackedOut >= tcp.sysctl.tcp_reordering) sk.reordering = Math.min(sk.reordering, tcp.sysctl.tcp_reordering);
  tcpSetCaState(sk, TCP_CA_Loss, tcp.now());
  sk.highSeq = sk.sndNxt;
  sk.tlpHighSeq = 0;
  tcpEcnQueueCwr(sk);
  // F-RTO step 1: only for a new recovery or a repeated timeout of the same snd_una.
  sk.frto = tcp.sysctl.tcp_frto !== 0 && (newRecovery || sk.retransmits !== 0);
}

/**
 * tcp_simple_retransmit: the path MTU shrank: everything in flight larger
 * than the new MSS is lost; resend it at once without a congestion
 * response (Loss state without a window reduction).
 */
export function tcpSimpleRetransmit(tcp: TcpProto, sk: TcpSock): void {
  // A Fast Open SYN and its data are two skbs: the whole SYN was lost, mark all (MSS -1).
  const mss = sk.synData && sk.state === TCP_SYN_SENT ? -1 : tcpCurrentMss(sk);
  const priorLost = sk.lostOut;
  for (let skb = sk.wqHead; skb && skb !== sk.sendHead; skb = skb.next) {
    // tcp_skb_seglen: a GSO skb went out in segments of its own MSS, not as one of its whole length.
    if ((skb.pcount > 1 ? skb.mss : skb.len) > mss) tcpMarkSkbLost(tcp, sk, skb);
  }
  if (priorLost === sk.lostOut) return;
  // tcp_limit_reno_sacked (tcp_sacktag.ts has it for the dupack path): without SACK,
  // sacked_out counts duplicate ACKs, which cannot stand for segments now marked lost.
  if (!sk.sackOk) {
    const holes = Math.min(Math.max(sk.lostOut, 1), sk.packetsOut);
    if (sk.sackedOut + holes > sk.packetsOut) sk.sackedOut = sk.packetsOut - holes;
  }
  tcpNonCongestionLossRetransmit(tcp, sk, TCP_RETRANS.MTU);
}

/**
 * tcp_non_congestion_loss_retransmit: what was marked lost goes again at
 * once, in Loss state but without a cwnd reduction (no congestion caused
 * it: a smaller MTU, or SYN data the peer did not take).
 */
export function tcpNonCongestionLossRetransmit(tcp: TcpProto, sk: TcpSock, reason: number): void {
  if (sk.caState !== TCP_CA_Loss) {
    sk.highSeq = sk.sndNxt;
    sk.sndSsthresh = tcpCurrentSsthresh(sk);
    sk.priorSsthresh = 0;
    sk.undoMarker = 0;
    tcpSetCaState(sk, TCP_CA_Loss, tcp.now());
  }
  tcpXmitRetransmitQueue(tcp, sk, reason);
}


/** tcp_check_sack_reordering: data below the highest SACK arrived late; raise tp->reordering. */
export function tcpCheckSackReordering(tcp: TcpProto, sk: TcpSock, lowSeq: number, ts: boolean): void {
  const mss = sk.mssCache;
  const fack = tcpHighestSackSeq(sk);
  if (!before(lowSeq, fack)) return;
  const metric = (fack - lowSeq) >>> 0;
  if (metric > sk.reordering * mss && mss) {
    sk.reordering = Math.min(Math.ceil(metric / mss), tcp.sysctl.tcp_max_reordering);
  }
  sk.reordSeen++;
  if (ts) tcp.mibs.TcpExt.TCPTSReorder++;
  else tcp.mibs.TcpExt.TCPSACKReorder++;
}
