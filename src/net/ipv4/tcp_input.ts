/**
 * TCP input (net/ipv4/tcp_input.c): option parsing, segment validation
 * (RFC 9293 acceptability, PAWS, RFC 5961 challenge ACKs), tcp_ack (window
 * update, clean-up of the write queue, RTT, the SACK scoreboard, congestion
 * control with PRR, fast retransmit and recovery with undo, TLP/RACK via
 * tcp_recovery.ts) and the state machine of tcp_rcv_state_process. The
 * receive half (data and out-of-order queues, SACK blocks we send, the
 * delayed-ACK engine, FIN) is tcp_rcv.ts.
 */
import { tcpSkbAcked } from './tcp_tstamp.js';
import { after, before, seqAdd } from '../../lib/seq.js';
import { TCPHDR_ACK, TCPHDR_CWR, TCPHDR_ECE, TCPHDR_FIN, TCPHDR_RST, TCPHDR_SYN, type TcpOptionsReceived } from '../../wire/tcp.js';
import type { TcpProto } from './tcp_proto.js';
import type { SkBuff } from '../core/skbuff.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { TCP_CHRONO_BUSY, tcpChronoStop } from './tcp_chrono.js';
import {
  FLAG_ACKED,
  FLAG_CA_ALERT,
  FLAG_DATA,
  FLAG_DATA_ACKED,
  FLAG_DATA_SACKED,
  FLAG_DSACKING_ACK,
  FLAG_DSACK_TLP,
  FLAG_ECE,
  FLAG_FORWARD_PROGRESS,
  FLAG_LOST_RETRANS,
  FLAG_NOT_DUP,
  FLAG_NO_CHALLENGE_ACK,
  FLAG_ORIG_SACK_ACKED,
  FLAG_RETRANS_DATA_ACKED,
  FLAG_SACK_RENEGING,
  FLAG_SET_XMIT_TIMER,
  FLAG_SND_UNA_ADVANCED,
  FLAG_SYN_ACKED,
  FLAG_UPDATE_TS_RECENT,
  FLAG_WIN_UPDATE,
  type TcpAckState,
  tcpParseSkbOptions,
  tcpSkbCb,
} from './tcp_skb_cb.js';
import {
  ICSK_TIME_PROBE0,
  ICSK_TIME_RETRANS,
  TCPCB_LOST,
  TCPCB_SACKED_ACKED,
  TCPCB_SACKED_RETRANS,
  TCP_CA_CWR,
  TCP_CA_Disorder,
  TCP_CA_Loss,
  TCP_CA_Open,
  TCP_CA_Recovery,
  TCP_MAX_QUICKACKS,
  TCP_RTO_MAX,
  TCP_RTO_MIN,
  TCP_TIMEWAIT_LEN,
  TCP_ECN_OK,
  TCP_NAGLE_OFF,
  skbPcount,
  tcpHighestSackSeq,
  TCPCB_RETRANS,
  type TcpSkb,
  type TcpSock,
} from './tcp_sock.js';
import {
  tcpTransmit,
  tcpPacketsInFlight,
  tcpPushPendingFrames,
  tcpRearmRto,
  tcpReceiveWindow,
  tcpSendAck,
  tcpSyncMss,
  tcpWndEnd,
  tcpXmitRetransmitQueue,
  tcpResetXmitTimer,
  tcpScheduleLossProbe,
  tcpSlowStartAfterIdleCheck,
} from './tcp_output.js';
import { tcpInAckEvent, tcpInitCongestionControl, tcpSetCaState } from './tcp_cong.js';
import {
  TCP_RACK_LOSS_DETECTION,
  tcpCheckSackReordering,
  tcpCwndReduction,
  tcpEndCwndReduction,
  tcpEnterRecovery,
  tcpForceFastRetransmit,
  tcpInitCwndReduction,
  tcpIsRack,
  tcpMarkSkbLost,
  tcpNewrenoMarkLost,
  tcpRackAdvance,
  tcpRackMarkLost,
  tcpRackUpdateReoWnd,
  tcpTryKeepOpen,
  tcpTryToOpen,
  tcpTryUndoDsack,
  tcpTryUndoLoss,
  tcpTryUndoPartial,
  tcpTryUndoRecovery,
  tcpTsoptEcrBefore,
} from './tcp_recovery.js';
import { type RateSample, tcpRateGen, tcpRateSkbDelivered } from './tcp_rate.js';
import { tcpUpdatePacingRate } from './tcp_pacing.js';
import { tcpSynsentFastopen } from './tcp_fastopen_input.js';
import { tcpDone, tcpSetState, tcpTimeWait, tcpWake } from './tcp.js';
import { tcpRcvSynrecvStateFastopen } from './tcp_fastopen.js';
import { tcpAckSndCheck, tcpDataQueue, tcpDataSndCheck, tcpDsackSet, tcpEnterQuickackMode, tcpInitRcvqSpace, tcpRcvRttMeasureTs, tcpSndbufExpand } from './tcp_rcv.js';
import { tcpAddRenoSack, tcpRemoveRenoSacks, tcpSacktagWriteQueue } from './tcp_sacktag.js';
import { tcpClampProbe0ToUserTimeout } from './tcp_timer.js';
import { TCP_RETRANS, tcpDropReason } from './tcp_trace.js';
import { tcpUrg } from './tcp_urg.js';
import { tcpFinTime } from './tcp_sockopt.js';
import { tcpMtupInit, tcpMtupProbeLost, tcpMtupProbeSuccess } from './tcp_mtu_probe.js';
import {
  RCV_SHUTDOWN,
  SEND_SHUTDOWN,
  skMemUncharge,
  SOCK_SNDBUF_LOCK,
  TCP_CLOSE,
  TCP_CLOSE_WAIT,
  TCP_CLOSING,
  TCP_ESTABLISHED,
  TCP_FIN_WAIT1,
  TCP_FIN_WAIT2,
  TCP_LAST_ACK,
  TCP_SYN_RECV,
  TCP_SYN_SENT,
  TCP_TIME_WAIT,
} from '../core/sock.js';
import { ECONNREFUSED, ECONNRESET, EPIPE, POLLOUT } from '../../uapi.js';

// --- RTT: tcp_rtt.ts (re-exported for the callers of this file) -------------------
import { tcpRttEstimator } from './tcp_rtt.js';
export { tcpRttEstimator, tcpSetRto } from './tcp_rtt.js';

// --- validation -------------------------------------------------------------------

/** tcp_sequence: does the segment overlap the receive window? (RFC 9293 3.10.7.4) */
function tcpSequence(sk: TcpSock, seq: number, endSeq: number): boolean {
  return !before(endSeq, sk.rcvWup) && !after(seq, seqAdd(sk.rcvNxt, tcpReceiveWindow(sk)));
}

/** tcp_paws_check: is the timestamp recent enough (within one of ts_recent, or ts_recent 24 days stale)? */
function tcpPawsCheck(tcp: TcpProto, sk: TcpSock, o: TcpOptionsReceived): boolean {
  return ((sk.tsRecent - o.rcvTsval) | 0) <= 1 || tcp.now() / 1000 >= sk.tsRecentStamp + 24 * 24 * 3600 || !sk.tsRecent;
}

const PAWS = 1;
/** SKB_DROP_REASON_TCP_RFC7323_PAWS_ACK: an old ACK, common, neither counted as PAWSEstab nor answered. */
const PAWS_ACK = 2;

/**
 * tcp_disordered_ack_check: 0 for a segment PAWS lets through anyway (a pure
 * duplicate ACK, no window update, within the replay window: the ACKs of a
 * reordered burst), else why it is dropped.
 */
function tcpDisorderedAckCheck(sk: TcpSock, o: TcpOptionsReceived, skb: SkBuff): number {
  const tcb = tcpSkbCb(skb);
  if (!(tcb.tcpFlags & TCPHDR_ACK) || tcb.seq !== tcb.endSeq) return PAWS;
  if (tcb.seq !== sk.rcvNxt) return before(tcb.seq, sk.rcvNxt) ? PAWS_ACK : PAWS;
  if (tcb.ackSeq !== sk.sndUna) return PAWS;
  if (tcpMayUpdateWindow(sk, tcb.ackSeq, tcb.seq, tcb.window * 2 ** sk.sndWscale)) return PAWS;
  // tcp_tsval_replay: 1.2 RTO in timestamp units (ms).
  if (((sk.tsRecent - o.rcvTsval) | 0) > (sk.rto * 6) / 5) return PAWS;
  return 0;
}

/** tcp_store_ts_recent. */
function tcpStoreTsRecent(tcp: TcpProto, sk: TcpSock, o: TcpOptionsReceived): void {
  sk.tsRecent = o.rcvTsval;
  sk.tsRecentStamp = tcp.now() / 1000;
}

/** tcp_replace_ts_recent: a newer timestamp on a segment that covers rcv_wup. */
function tcpReplaceTsRecent(tcp: TcpProto, sk: TcpSock, o: TcpOptionsReceived, seq: number): void {
  if (o.sawTstamp && !after(seq, sk.rcvWup)) {
    if (((o.rcvTsval - sk.tsRecent) | 0) >= 0 || tcp.now() / 1000 >= sk.tsRecentStamp + 24 * 24 * 3600) tcpStoreTsRecent(tcp, sk, o);
  }
}

/**
 * __tcp_oow_rate_limited: at most one answer to an invalid segment per
 * tcp_invalid_ratelimit ms per socket; true (and `mib` counted) when this
 * one must stay unanswered.
 */
function __tcpOowRateLimited(tcp: TcpProto, sk: TcpSock, mib: 'TCPACKSkippedSeq' | 'TCPACKSkippedPAWS' | 'TCPACKSkippedChallenge'): boolean {
  const now = tcp.now();
  const last = sk.lastOowAckTime;
  if (last && now - last >= 0 && now - last < tcp.sysctl.tcp_invalid_ratelimit) {
    tcp.mibs.TcpExt[mib]++;
    return true;
  }
  sk.lastOowAckTime = now;
  return false;
}

/** tcp_oow_rate_limited: a segment with data and no SYN is never held back (it cannot be part of an ACK loop). */
function tcpOowRateLimited(tcp: TcpProto, sk: TcpSock, skb: SkBuff, mib: 'TCPACKSkippedSeq' | 'TCPACKSkippedPAWS'): boolean {
  const tcb = tcpSkbCb(skb);
  if (tcb.seq !== tcb.endSeq && !(tcb.tcpFlags & TCPHDR_SYN)) return false;
  return __tcpOowRateLimited(tcp, sk, mib);
}

/**
 * tcp_send_challenge_ack (RFC 5961): per-socket tcp_invalid_ratelimit, then
 * the stack-wide tcp_challenge_ack_limit per second.
 */
export function tcpSendChallengeAck(tcp: TcpProto, sk: TcpSock): void {
  if (__tcpOowRateLimited(tcp, sk, 'TCPACKSkippedChallenge')) return;
  const sec = Math.floor(tcp.now() / 1000);
  if (sec !== tcp.challengeTimestamp) {
    tcp.challengeTimestamp = sec;
    tcp.challengeCount = 0;
  }
  if (++tcp.challengeCount > tcp.sysctl.tcp_challenge_ack_limit) return;
  tcp.mibs.TcpExt.TCPChallengeACK++;
  tcpSendAck(tcp, sk);
}

/**
 * tcp_send_dupack: answer an unacceptable segment with an ACK (its caller
 * has applied the rate limit). One below rcv_nxt was a retransmission: our
 * ACK was lost (DelayedACKLost), and it is D-SACKed up to rcv_nxt.
 */
function tcpSendDupack(tcp: TcpProto, sk: TcpSock, skb: SkBuff): void {
  const tcb = tcpSkbCb(skb);
  if (tcb.endSeq !== tcb.seq && before(tcb.seq, sk.rcvNxt)) {
    tcp.mibs.TcpExt.DelayedACKLost++;
    tcpEnterQuickackMode(sk, TCP_MAX_QUICKACKS);
    tcpDsackSet(tcp, sk, tcb.seq, after(tcb.endSeq, sk.rcvNxt) ? sk.rcvNxt : tcb.endSeq);
  }
  tcpSendAck(tcp, sk);
}

/** tcp_reset: the peer reset the connection. */
export function tcpReset(tcp: TcpProto, sk: TcpSock): void {
  switch (sk.state) {
    case TCP_SYN_SENT:
      sk.err = ECONNREFUSED;
      break;
    case TCP_CLOSE_WAIT:
      sk.err = EPIPE;
      break;
    case TCP_CLOSE:
      return;
    default:
      sk.err = ECONNRESET;
  }
  tcpDone(tcp, sk);
}

/** The challenge ACK to a SYN in a synchronized state (RFC 5961 4.2); tcp_rcv_established counts it an input error too. */
function tcpSynChallenge(tcp: TcpProto, sk: TcpSock, skb: SkBuff, synInerr: boolean): false {
  if (synInerr) tcp.mibs.Tcp.InErrs++;
  tcpDropReason(tcp, sk, skb, SKB_DROP_REASON.TCP_INVALID_SYN);
  tcp.mibs.TcpExt.TCPSYNChallenge++;
  tcpSendChallengeAck(tcp, sk);
  return false;
}

/**
 * tcp_validate_incoming: PAWS, sequence acceptability, RST and SYN
 * checks for a synchronized connection. Returns false if the segment is
 * consumed here.
 */
function tcpValidateIncoming(tcp: TcpProto, sk: TcpSock, skb: SkBuff, synInerr: boolean): boolean {
  const tcb = tcpSkbCb(skb);
  const o = tcb.opt;
  const rst = (tcb.tcpFlags & TCPHDR_RST) !== 0;
  const syn = (tcb.tcpFlags & TCPHDR_SYN) !== 0;
  // RFC 7323 5.2: a RST is not subject to PAWS.
  if (o.sawTstamp && sk.tstampOk && !rst && !tcpPawsCheck(tcp, sk, o)) {
    const reason = tcpDisorderedAckCheck(sk, o, skb);
    if (reason && syn) return tcpSynChallenge(tcp, sk, skb, synInerr);
    if (reason === PAWS_ACK) {
      tcp.mibs.TcpExt.PAWSOldAck++;
      tcpDropReason(tcp, sk, skb, SKB_DROP_REASON.TCP_RFC7323_PAWS_ACK);
      return false;
    }
    if (reason) {
      tcp.mibs.TcpExt.PAWSEstab++;
      tcpDropReason(tcp, sk, skb, SKB_DROP_REASON.TCP_RFC7323_PAWS);
      if (!tcpOowRateLimited(tcp, sk, skb, 'TCPACKSkippedPAWS')) tcpSendDupack(tcp, sk, skb);
      return false;
    }
  }
  if (!tcpSequence(sk, tcb.seq, tcb.endSeq)) {
    // RFC 9293: an unacceptable segment gets an ACK (unless it is a RST).
    if (syn && !rst) return tcpSynChallenge(tcp, sk, skb, synInerr);
    tcpDropReason(tcp, sk, skb, SKB_DROP_REASON.TCP_INVALID_SEQUENCE);
    if (rst) return false;
    if (after(tcb.seq, seqAdd(sk.rcvNxt, tcpReceiveWindow(sk)))) tcp.mibs.TcpExt.BeyondWindow++;
    if (!tcpOowRateLimited(tcp, sk, skb, 'TCPACKSkippedSeq')) tcpSendDupack(tcp, sk, skb);
    return false;
  }
  if (rst) {
    // RFC 5961 3.2: only an exact rcv_nxt resets; in-window elsewhere gets a challenge ACK.
    tcpDropReason(tcp, sk, skb, SKB_DROP_REASON.TCP_RESET);
    if (tcb.seq === sk.rcvNxt) {
      tcpReset(tcp, sk);
    } else {
      tcpSendChallengeAck(tcp, sk);
    }
    return false;
  }
  // RFC 5961 4.2: a SYN in a synchronized state gets a challenge ACK, but for the SYN-ACK completing a simultaneous open.
  if (syn && !(sk.state === TCP_SYN_RECV && tcb.tcpFlags & TCPHDR_ACK && seqAdd(tcb.seq, 1) === tcb.endSeq && tcb.endSeq === sk.rcvNxt && tcb.ackSeq === sk.sndNxt)) return tcpSynChallenge(tcp, sk, skb, synInerr);
  return true;
}

// --- ACK processing --------------------------------------------------------------

/** tcp_may_update_window. */
function tcpMayUpdateWindow(sk: TcpSock, ack: number, seq: number, nwin: number): boolean {
  // A zero window is always taken (Linux's "|| !nwin"): the peer may close it on any ACK.
  return after(ack, sk.sndUna) || after(seq, sk.sndWl1) || (seq === sk.sndWl1 && (nwin > sk.sndWnd || nwin === 0));
}

/** tcp_ack_update_window. */
function tcpAckUpdateWindow(tcp: TcpProto, sk: TcpSock, skb: SkBuff, ack: number): number {
  const tcb = tcpSkbCb(skb);
  let flag = 0;
  // A SYN's window is never scaled (RFC 7323 2.2).
  const nwin = tcb.tcpFlags & TCPHDR_SYN ? tcb.window : tcb.window * 2 ** sk.sndWscale;
  if (tcpMayUpdateWindow(sk, ack, tcb.seq, nwin)) {
    flag |= FLAG_WIN_UPDATE;
    sk.sndWl1 = tcb.seq;
    if (sk.sndWnd !== nwin) {
      const tr = tcp.trace;
      if (tr !== null) tr.window(sk, sk.sndWnd, nwin);
      sk.sndWnd = nwin;
      if (sk.sendHead) tcpSlowStartAfterIdleCheck(tcp, sk); // data waited (zero-window probes send none): idle
      if (nwin > sk.maxWindow) {
        sk.maxWindow = nwin;
        // The path MTU this connection last learnt (icsk_pmtu_cookie), not the device's.
        tcpSyncMss(sk, sk.pmtuCookie || tcp.routeMtu(sk));
      }
    }
  }
  return flag;
}

const REXMIT_NONE = 0;
const REXMIT_LOST = 1;
const REXMIT_NEW = 2;

/** tcp_skb_spurious_retrans: the ACK echoes a timestamp from before the skb's last (re)send. */
function tcpSkbSpuriousRetrans(st: TcpAckState, sk: TcpSock, skb: TcpSkb): boolean {
  return (skb.sacked & TCPCB_RETRANS) !== 0 && tcpTsoptEcrBefore(st.opt, sk, skb.sentAt);
}

// --- RTT -------------------------------------------------------------------------

/** tcp_ack_update_rtt: an RTT sample from the ACK, the SACKs or the timestamp echo (RFC 7323 RTTM). */
function tcpAckUpdateRtt(tcp: TcpProto, sk: TcpSock, st: TcpAckState, flag: number, seqRttUs: number, sackRttUs: number, caRttUs: number): boolean {
  const o = st.opt;
  if (seqRttUs < 0) seqRttUs = sackRttUs;
  // Only a segment that acknowledges new data may use its TS echo.
  if (seqRttUs < 0 && o.sawTstamp && o.rcvTsecr && sk.tstampOk && flag & FLAG_ACKED) {
    const delta = (Math.floor(tcp.now()) + sk.tsOff - o.rcvTsecr) >>> 0;
    if (delta < 0x7fffffff / 1000) seqRttUs = caRttUs = (delta || 1) * 1000;
  }
  st.rs.rttUs = caRttUs;
  if (seqRttUs < 0) return false;
  if (caRttUs >= 0 && (!sk.minRttUs || caRttUs < sk.minRttUs)) sk.minRttUs = Math.max(1, Math.round(caRttUs));
  tcpRttEstimator(tcp, sk, seqRttUs);
  // RFC 6298: the backoff ends only with a valid RTT measurement.
  sk.backoff = 0;
  return true;
}

/**
 * tcp_clean_rtx_queue: free what the ACK covers (trimming a partly acked
 * TSO skb), take RTT samples (Karn), detect reordering and reneging, and
 * feed the congestion control's pkts_acked.
 */
function tcpCleanRtxQueue(tcp: TcpProto, sk: TcpSock, ack: number, priorFack: number, st: TcpAckState): number {
  const now = tcp.now();
  const rs = st.rs;
  const sack = st.sack;
  let flag = 0;
  let firstAckt = 0;
  let lastAckt = 0;
  let pktsAcked = 0;
  let reord = sk.sndNxt;
  const isSack = sk.sackOk;
  let skb: TcpSkb | null;
  while ((skb = sk.wqHead) && skb !== sk.sendHead) {
    const sacked = skb.sacked;
    let ackedPcount = skb.pcount;
    let fully = true;
    if (after(skb.endSeq, ack)) {
      // tcp_tso_acked: trim the acked head of a multi-segment skb.
      if (skb.pcount <= 1 || !after(ack, skb.seq)) break;
      const mss = skb.mss || sk.mssCache;
      const trim = Math.floor(((ack - skb.seq) >>> 0) / mss) * mss;
      if (!trim) break;
      const old = skb.pcount;
      skb.off += trim;
      skb.cap -= trim;
      skb.len -= trim;
      skb.seq = seqAdd(skb.seq, trim);
      skb.truesize -= trim;
      sk.wmemQueued -= trim;
      skMemUncharge(sk, trim);
      skb.pcount = skbPcount(skb, mss);
      ackedPcount = old - skb.pcount;
      fully = false;
    }
    if (sacked & TCPCB_RETRANS) {
      if (sacked & TCPCB_SACKED_RETRANS) sk.retransOut -= Math.min(ackedPcount, sk.retransOut);
      flag |= FLAG_RETRANS_DATA_ACKED;
    } else if (!(sacked & TCPCB_SACKED_ACKED)) {
      lastAckt = skb.sentAt;
      if (!firstAckt) firstAckt = lastAckt;
      if (before(skb.seq, reord)) reord = skb.seq;
      if (!after(skb.endSeq, sk.highSeq)) flag |= FLAG_ORIG_SACK_ACKED;
    }
    if (sacked & TCPCB_SACKED_ACKED) {
      sk.sackedOut -= Math.min(ackedPcount, sk.sackedOut);
    } else if (isSack) {
      sk.delivered += ackedPcount;
      if (!tcpSkbSpuriousRetrans(st, sk, skb)) tcpRackAdvance(sk, sacked, skb.endSeq, skb.sentAt, skb.sentOrder, now);
    }
    if (sacked & TCPCB_LOST) sk.lostOut -= Math.min(ackedPcount, sk.lostOut);
    sk.packetsOut -= ackedPcount;
    pktsAcked += ackedPcount;
    tcpRateSkbDelivered(sk, skb, rs);
    if (skb.tcpFlags & TCPHDR_SYN) {
      flag |= FLAG_SYN_ACKED;
      sk.retransStamp = 0;
    } else {
      flag |= FLAG_DATA_ACKED;
    }
    if (skb.txstampAck || skb.uarg) tcpSkbAcked(tcp, sk, skb, st.priorSndUna, ack, fully);
    if (!fully) break;
    sk.wmemQueued -= skb.truesize;
    skMemUncharge(sk, skb.truesize);
    sk.wqHead = skb.next;
    if (!sk.wqHead) sk.wqTail = null;
    // Acked: its page goes back once no other part of it is queued.
    if (skb.page) tcp.sndPages.put(skb.page);
  }
  if (sk.packetsOut < 0) sk.packetsOut = 0;
  if (sk.wqHead === sk.sendHead) tcpChronoStop(tcp, sk, TCP_CHRONO_BUSY); // nothing left in flight
  // The new head is SACKed: the receiver dropped data it had SACKed (reneging).
  skb = sk.wqHead;
  if (skb && skb !== sk.sendHead && skb.sacked & TCPCB_SACKED_ACKED) flag |= FLAG_SACK_RENEGING;

  let seqRttUs = -1;
  let caRttUs = -1;
  let sackRttUs = -1;
  if (firstAckt && !(flag & FLAG_RETRANS_DATA_ACKED)) {
    seqRttUs = (now - firstAckt) * 1000;
    caRttUs = (now - lastAckt) * 1000;
  }
  if (sack.firstSackt) {
    sackRttUs = (now - sack.firstSackt) * 1000;
    caRttUs = (now - sack.lastSackt) * 1000;
  }
  const rttUpdate = tcpAckUpdateRtt(tcp, sk, st, flag, seqRttUs, sackRttUs, caRttUs);

  if (flag & FLAG_ACKED) {
    flag |= FLAG_SET_XMIT_TIMER;
    if (sk.mtupProbeSize && !after(sk.mtuProbeSeqEnd, ack)) tcpMtupProbeSuccess(tcp, sk);
    if (!isSack) {
      tcpRemoveRenoSacks(tcp, sk, pktsAcked);
      // Without SACK an ACK covering a retransmission cannot prove the original arrived.
      if (flag & FLAG_RETRANS_DATA_ACKED) flag &= ~FLAG_ORIG_SACK_ACKED;
    } else if (before(reord, priorFack)) {
      // A never-retransmitted hole got filled: reordering.
      tcpCheckSackReordering(tcp, sk, reord, false);
    }
  } else if (skb && skb !== sk.sendHead && rttUpdate && sackRttUs >= 0 && sackRttUs > (now - skb.sentAt) * 1000) {
    // The SACK RTT comes from data sent before the head's last (re)send: restart the timer.
    flag |= FLAG_SET_XMIT_TIMER;
  }
  if (sk.caOps.pktsAcked) {
    const sample = st.sample;
    sample.pktsAcked = pktsAcked;
    sample.rttUs = rs.rttUs;
    sample.inFlight = sk.mssCache * (sk.delivered - rs.priorDelivered);
    sk.caOps.pktsAcked(sk, sample, now);
  }
  return flag;
}

// --- congestion window reduction (PRR) and undo -------------------------------------

/** tcp_mark_head_lost (tcp_recovery=0): mark unSACKed segments from the head lost, up to `packets` SACKed ones. */
function tcpMarkHeadLost(tcp: TcpProto, sk: TcpSock, packets: number, markHead: boolean): void {
  let cnt = 0;
  for (let skb = sk.wqHead; skb && skb !== sk.sendHead; skb = skb.next) {
    if (after(skb.endSeq, sk.sndNxt)) break;
    if (skb.sacked & TCPCB_SACKED_ACKED) cnt += skb.pcount;
    if (cnt > packets) break;
    if (!(skb.sacked & TCPCB_LOST)) tcpMarkSkbLost(tcp, sk, skb);
    if (markHead) break;
  }
}

/** tcp_update_scoreboard (without RACK): RFC 6675's DupThresh rule. */
function tcpUpdateScoreboard(tcp: TcpProto, sk: TcpSock, fastRexmit: boolean): void {
  if (!sk.sackOk) return;
  const sackedUpto = sk.sackedOut - sk.reordering;
  if (sackedUpto >= 0) tcpMarkHeadLost(tcp, sk, sackedUpto, false);
  else if (fastRexmit) tcpMarkHeadLost(tcp, sk, 1, true);
}

/** tcp_time_to_recover: loss is proven (something is marked lost), or (without RACK) enough dupacks. */
function tcpTimeToRecover(tcp: TcpProto, sk: TcpSock): boolean {
  if (sk.lostOut) return true;
  if (!tcpIsRack(tcp, sk) && sk.sackedOut + 1 > sk.reordering) return true;
  return false;
}

/** tcp_identify_packet_loss: NewReno marking without SACK, RACK with it. */
function tcpIdentifyPacketLoss(tcp: TcpProto, sk: TcpSock, st: TcpAckState): void {
  if (!sk.wqHead || sk.wqHead === sk.sendHead) return;
  if (!sk.sackOk) {
    tcpNewrenoMarkLost(tcp, sk, (st.flag & FLAG_SND_UNA_ADVANCED) !== 0);
  } else if (tcp.sysctl.tcp_recovery & TCP_RACK_LOSS_DETECTION) {
    const priorRetrans = sk.retransOut;
    if (tcpRackMarkLost(tcp, sk)) st.flag &= ~FLAG_SET_XMIT_TIMER;
    if (priorRetrans > sk.retransOut) st.flag |= FLAG_LOST_RETRANS;
  }
}

/** tcp_check_sack_reneging: the head is SACKed but not acked: wait a moment, then treat as an RTO. */
function tcpCheckSackReneging(tcp: TcpProto, sk: TcpSock, st: TcpAckState): boolean {
  if (st.flag & FLAG_SACK_RENEGING && st.flag & FLAG_SND_UNA_ADVANCED) {
    const delay = Math.max((sk.srttUs >> 4) / 1000, 10);
    sk.tlpHighSeq = 0;
    tcpResetXmitTimer(tcp, sk, ICSK_TIME_RETRANS, delay);
    st.flag &= ~FLAG_SET_XMIT_TIMER;
    return true;
  }
  return false;
}

/** tcp_update_rto_time: an RTO recovery ended. */
function tcpUpdateRtoTime(tcp: TcpProto, sk: TcpSock): void {
  if (sk.rtoStamp) {
    sk.totalRtoTime += tcp.now() - sk.rtoStamp;
    sk.rtoStamp = 0;
  }
}

/**
 * tcp_process_loss: ACKs during RTO recovery: undo when shown spurious,
 * F-RTO (RFC 5682, SACK-enhanced) to test whether the RTO was spurious by
 * sending new data, else keep retransmitting what is marked lost.
 */
function tcpProcessLoss(tcp: TcpProto, sk: TcpSock, st: TcpAckState, flag: number, numDupack: number): number {
  const recovered = !before(sk.sndUna, sk.highSeq);
  if (flag & FLAG_SND_UNA_ADVANCED && tcpTryUndoLoss(tcp, sk, st, false)) return REXMIT_NONE;
  if (sk.frto) {
    // Step 3.b: never-retransmitted data was (S)ACKed: not all was lost, the RTO was spurious.
    if (flag & FLAG_ORIG_SACK_ACKED && tcpTryUndoLoss(tcp, sk, st, true)) return REXMIT_NONE;
    if (after(sk.sndNxt, sk.highSeq)) {
      // Step 3.a: new data went out and the peer still reports holes: the loss was real.
      if (flag & FLAG_DATA_SACKED || numDupack) sk.frto = false;
    } else if (flag & FLAG_SND_UNA_ADVANCED && !recovered) {
      sk.highSeq = sk.sndNxt;
      // Step 2.b: try sending new data (after the cwnd update); else conventional recovery.
      if (sk.sendHead && after(tcpWndEnd(sk), sk.sndNxt)) return REXMIT_NEW;
      sk.frto = false;
    }
  }
  if (recovered) {
    // Step 2.a and the first part of 3.a.
    tcpTryUndoRecovery(tcp, sk, st);
    return REXMIT_NONE;
  }
  if (!sk.sackOk) {
    // A Reno dupack after F-RTO's new data: lower in-flight to clock out retransmissions.
    if (after(sk.sndNxt, sk.highSeq) && numDupack) tcpAddRenoSack(tcp, sk, numDupack);
    else if (flag & FLAG_SND_UNA_ADVANCED) sk.sackedOut = 0;
  }
  return REXMIT_LOST;
}

/**
 * tcp_fastretrans_alert: the congestion state machine for ACKs that are
 * dubious (duplicate, SACKing, ECE) or arrive outside Open. Returns what
 * to retransmit (REXMIT_*); may change st.flag.
 */
function tcpFastretransAlert(tcp: TcpProto, sk: TcpSock, st: TcpAckState, numDupack: number): number {
  const flag = st.flag;
  const eceAck = (flag & FLAG_ECE) !== 0;
  st.doLost = numDupack > 0 || ((flag & FLAG_DATA_SACKED) !== 0 && tcpForceFastRetransmit(sk));
  if (!sk.packetsOut && sk.sackedOut) sk.sackedOut = 0;
  // A. ECE proves congestion: no undo of this reduction.
  if (eceAck) sk.priorSsthresh = 0;
  // B. Reneging.
  if (tcpCheckSackReneging(tcp, sk, st)) return REXMIT_NONE;
  // D. Leaving a state once high_seq is acked.
  if (sk.caState === TCP_CA_Open) {
    sk.retransStamp = 0;
  } else if (!before(sk.sndUna, sk.highSeq)) {
    switch (sk.caState) {
      case TCP_CA_CWR:
        // Held until something above high_seq is acked, so the CWR bit reached the peer.
        if (sk.sndUna !== sk.highSeq) {
          tcpEndCwndReduction(tcp, sk);
          tcpSetCaState(sk, TCP_CA_Open, tcp.now());
        }
        break;
      case TCP_CA_Recovery:
        if (!sk.sackOk) sk.sackedOut = 0;
        if (tcpTryUndoRecovery(tcp, sk, st)) return REXMIT_NONE;
        tcpEndCwndReduction(tcp, sk);
        break;
    }
  }
  // E. The state's own processing.
  switch (sk.caState) {
    case TCP_CA_Recovery:
      if (!(flag & FLAG_SND_UNA_ADVANCED)) {
        if (!sk.sackOk) tcpAddRenoSack(tcp, sk, numDupack);
      } else if (tcpTryUndoPartial(tcp, sk, st)) {
        return REXMIT_NONE;
      }
      if (tcpTryUndoDsack(tcp, sk)) tcpTryToOpen(tcp, sk, flag);
      tcpIdentifyPacketLoss(tcp, sk, st);
      if (sk.caState !== TCP_CA_Recovery) {
        if (!tcpTimeToRecover(tcp, sk)) return REXMIT_NONE;
        // Undone, yet loss is evident (reordering, then loss): a new recovery.
        tcpEnterRecovery(tcp, sk, eceAck);
      }
      break;
    case TCP_CA_Loss: {
      const rexmit = tcpProcessLoss(tcp, sk, st, flag, numDupack);
      if (sk.caState !== TCP_CA_Loss) tcpUpdateRtoTime(tcp, sk);
      tcpIdentifyPacketLoss(tcp, sk, st);
      if (!((sk.caState as number) === TCP_CA_Open || st.flag & FLAG_LOST_RETRANS)) return rexmit;
      // Undone, or retransmissions were lost again: decide afresh as in Open.
      const r = tcpFastretransOpen(tcp, sk, st, flag, numDupack, eceAck);
      return r < 0 ? rexmit : r;
    }
    default: {
      const r = tcpFastretransOpen(tcp, sk, st, flag, numDupack, eceAck);
      return r < 0 ? REXMIT_NONE : r;
    }
  }
  // Still in recovery: without RACK, RFC 6675's rule marks what is lost.
  if (!(tcp.sysctl.tcp_recovery & TCP_RACK_LOSS_DETECTION) && st.doLost) tcpUpdateScoreboard(tcp, sk, false);
  return REXMIT_LOST;
}

/** The Open/Disorder/CWR branch of tcp_fastretrans_alert: -1 if no recovery starts, else REXMIT_LOST. */
function tcpFastretransOpen(tcp: TcpProto, sk: TcpSock, st: TcpAckState, flag: number, numDupack: number, eceAck: boolean): number {
  if (!sk.sackOk) {
    if (flag & FLAG_SND_UNA_ADVANCED) sk.sackedOut = 0;
    tcpAddRenoSack(tcp, sk, numDupack);
  }
  if (sk.caState <= TCP_CA_Disorder) tcpTryUndoDsack(tcp, sk);
  tcpIdentifyPacketLoss(tcp, sk, st);
  if (!tcpTimeToRecover(tcp, sk)) {
    tcpTryToOpen(tcp, sk, flag);
    return -1;
  }
  // A lost MTU probe is no congestion: no recovery, no cwnd reduction.
  if (sk.caState < TCP_CA_CWR && sk.mtupProbeSize && sk.sndUna === sk.mtuProbeSeqStart) {
    tcpMtupProbeLost(tcp, sk);
    return -1;
  }
  tcpEnterRecovery(tcp, sk, eceAck);
  if (!(tcp.sysctl.tcp_recovery & TCP_RACK_LOSS_DETECTION) && st.doLost) tcpUpdateScoreboard(tcp, sk, true);
  return REXMIT_LOST;
}

/** tcp_process_tlp_ack: the ACK for a tail loss probe tells whether there was a loss. */
function tcpProcessTlpAck(tcp: TcpProto, sk: TcpSock, ack: number, flag: number): void {
  if (before(ack, sk.tlpHighSeq)) return;
  if (!sk.tlpRetrans) {
    // A probe of new data was acknowledged.
    sk.tlpHighSeq = 0;
  } else if (flag & FLAG_DSACK_TLP) {
    // The D-SACK shows both original and probe arrived: no loss.
    sk.tlpHighSeq = 0;
  } else if (after(ack, sk.tlpHighSeq)) {
    // The probe repaired a loss: reduce the window once.
    tcpInitCwndReduction(tcp, sk);
    tcpSetCaState(sk, TCP_CA_CWR, tcp.now());
    tcpEndCwndReduction(tcp, sk);
    tcpTryKeepOpen(tcp, sk);
    tcp.mibs.TcpExt.TCPLossProbeRecovery++;
  } else if (!(flag & (FLAG_SND_UNA_ADVANCED | FLAG_NOT_DUP | FLAG_DATA_SACKED))) {
    // A pure duplicate ACK: original and probe both arrived.
    sk.tlpHighSeq = 0;
  }
}

/** tcp_ack_probe: the zero-window probe timer stops once the window opens. */
function tcpAckProbe(tcp: TcpProto, sk: TcpSock): void {
  const head = sk.sendHead;
  if (!head) return;
  if (!after(seqAdd(head.seq, Math.min(head.len, sk.mssCache)), tcpWndEnd(sk))) {
    sk.backoff = 0;
    sk.probesOut = 0;
    sk.probesTstamp = 0;
    if (sk.pending === ICSK_TIME_PROBE0) {
      tcp.time.timers.del(sk.retransmitTimer);
      sk.pending = 0;
    }
  } else {
    const when = Math.min(Math.max(sk.rto, TCP_RTO_MIN) * 2 ** sk.backoff, TCP_RTO_MAX);
    tcpResetXmitTimer(tcp, sk, ICSK_TIME_PROBE0, tcpClampProbe0ToUserTimeout(tcp, sk, when));
  }
}

/** tcp_may_raise_cwnd: grow on in-order delivery (on any delivery once reordering is high). */
function tcpMayRaiseCwnd(tcp: TcpProto, sk: TcpSock, flag: number): boolean {
  if (sk.reordering > tcp.sysctl.tcp_reordering) return (flag & FLAG_FORWARD_PROGRESS) !== 0;
  return (flag & FLAG_DATA_ACKED) !== 0;
}

/** tcp_cong_control: the algorithm's congControl if it has one; else PRR during a reduction, or its congAvoid, then the pacing rate. */
function tcpCongControl(tcp: TcpProto, sk: TcpSock, ack: number, ackedSacked: number, flag: number, rs: RateSample): void {
  const ops = sk.caOps;
  if (ops.congControl) {
    // The algorithm sets the cwnd and the pacing rate itself (BBR).
    ops.congControl(sk, ack, flag, rs, tcp.now());
    return;
  }
  if (sk.caState === TCP_CA_CWR || sk.caState === TCP_CA_Recovery) {
    tcpCwndReduction(sk, ackedSacked, rs.losses, flag);
  } else if (tcpMayRaiseCwnd(tcp, sk, flag)) {
    const now = tcp.now();
    ops.congAvoid!(sk, ack, ackedSacked, now);
    sk.sndCwndStamp = now;
  }
  tcpUpdatePacingRate(tcp, sk);
}

/** tcp_xmit_recovery. */
function tcpXmitRecovery(tcp: TcpProto, sk: TcpSock, rexmit: number): void {
  if (rexmit === REXMIT_NONE || sk.state === TCP_SYN_SENT) return;
  if (rexmit === REXMIT_NEW) {
    tcpPushPendingFrames(tcp, sk, TCP_NAGLE_OFF);
    if (after(sk.sndNxt, sk.highSeq)) return;
    sk.frto = false;
  }
  // The reason a tracer sees: after an RTO the whole queue goes again; in recovery, RACK marked
  // the losses where it runs, the duplicate-ACK threshold elsewhere.
  tcpXmitRetransmitQueue(tcp, sk, sk.caState === TCP_CA_Loss ? TCP_RETRANS.RTO : tcpIsRack(tcp, sk) ? TCP_RETRANS.RACK : TCP_RETRANS.FAST);
}

/** tcp_set_xmit_timer: a loss probe if one applies, else the RTO. */
function tcpSetXmitTimer(tcp: TcpProto, sk: TcpSock): void {
  if (!tcpScheduleLossProbe(tcp, sk, true)) tcpRearmRto(tcp, sk);
}

/** tcp_ack_is_dubious. */
function tcpAckIsDubious(sk: TcpSock, flag: number): boolean {
  return !(flag & FLAG_NOT_DUP) || (flag & FLAG_CA_ALERT) !== 0 || sk.caState !== TCP_CA_Open;
}

/**
 * tcp_ack: process the ACK field. Returns 1 if it acknowledged something
 * valid, 0 for an old ACK, -1 for one that must be dropped.
 */
function tcpAck(tcp: TcpProto, sk: TcpSock, skb: SkBuff, flag: number): number {
  const tcb = tcpSkbCb(skb);
  const st = tcb.ack;
  const o = st.opt;
  const priorSndUna = sk.sndUna;
  const ack = tcb.ackSeq;
  const priorPackets = sk.packetsOut;
  const priorDelivered = sk.delivered;
  const priorLost = sk.lost;
  const rs = st.rs;
  rs.reset();
  st.sack.reset(sk.sndNxt);
  st.priorSndUna = priorSndUna;
  st.doLost = false;

  if (before(ack, priorSndUna)) {
    // RFC 5961 5.2: far-too-old ACKs get a challenge ACK.
    if (before(ack, (priorSndUna - sk.maxWindow) >>> 0)) {
      if (!(flag & FLAG_NO_CHALLENGE_ACK)) tcpSendChallengeAck(tcp, sk);
      return -1;
    }
    // An old ACK may still carry useful SACK information.
    if (o.numSacks && sk.sackOk) {
      st.flag = flag | tcpSacktagWriteQueue(tcp, sk, ack, st);
      const rexmit = tcpFastretransAlert(tcp, sk, st, 0);
      tcpXmitRecovery(tcp, sk, rexmit);
    }
    return 0;
  }
  if (after(ack, sk.sndNxt)) return -1;

  if (after(ack, priorSndUna)) {
    flag |= FLAG_SND_UNA_ADVANCED;
    sk.retransmits = 0;
  }
  const priorFack = sk.sackOk ? tcpHighestSackSeq(sk) : sk.sndUna;
  rs.priorInFlight = tcpPacketsInFlight(sk);
  if (flag & FLAG_UPDATE_TS_RECENT) tcpReplaceTsRecent(tcp, sk, o, tcb.seq);
  if (tcb.dataLen) flag |= FLAG_DATA;
  flag |= tcpAckUpdateWindow(tcp, sk, skb, ack);
  if (after(ack, sk.sndUna)) {
    sk.bytesAcked += (ack - sk.sndUna) >>> 0;
    sk.sndUna = ack;
  }
  if (o.numSacks && sk.sackOk) flag |= tcpSacktagWriteQueue(tcp, sk, ack, st);
  if (tcpEcnRcvEcnEcho(sk, skb)) flag |= FLAG_ECE;
  tcpInAckEvent(sk, flag, tcp.now());
  sk.errSoft = 0;
  sk.probesOut = 0;
  sk.rcvTstamp = tcp.now();

  if (!priorPackets) {
    // Nothing was outstanding: a D-SACK may still undo a reduction.
    if (flag & FLAG_DSACKING_ACK) {
      st.flag = flag;
      tcpFastretransAlert(tcp, sk, st, 0);
      flag = st.flag;
    }
    tcpAckProbe(tcp, sk);
    if (sk.tlpHighSeq) tcpProcessTlpAck(tcp, sk, ack, flag);
    return 1;
  }
  flag |= tcpCleanRtxQueue(tcp, sk, ack, priorFack, st);
  tcpRackUpdateReoWnd(tcp, sk, rs);
  if (sk.tlpHighSeq) tcpProcessTlpAck(tcp, sk, ack, flag);

  st.flag = flag;
  let rexmit = REXMIT_NONE;
  if (tcpAckIsDubious(sk, flag)) {
    const numDupack = flag & (FLAG_SND_UNA_ADVANCED | FLAG_NOT_DUP | FLAG_DSACKING_ACK) ? 0 : 1;
    rexmit = tcpFastretransAlert(tcp, sk, st, numDupack);
  }
  flag = st.flag;
  if (flag & FLAG_SET_XMIT_TIMER) tcpSetXmitTimer(tcp, sk);
  const now = tcp.now();
  const delivered = sk.delivered - priorDelivered;
  // tcp_count_delivered's CE share: what an ACK with ECE delivers was CE-marked.
  if (flag & FLAG_ECE) sk.deliveredCe += delivered;
  tcpRateGen(sk, delivered, sk.lost - priorLost, rs, now);
  tcpCongControl(tcp, sk, ack, delivered, flag, rs);
  tcpXmitRecovery(tcp, sk, rexmit);
  if (tcp.sysctl.tcp_cwnd_trace && tcp.cwndTrace) tcp.cwndTrace(sk, now, sk.sndCwnd, sk.sndSsthresh, sk.caState, tcpPacketsInFlight(sk), rs.rttUs);
  const tr = tcp.trace;
  if (tr !== null) tr.probe(sk, rs.rttUs);
  return 1;
}


// --- ECN (RFC 3168) -------------------------------------------------------------------

/** tcp_ecn_rcv_ecn_echo: the peer echoes congestion (ECE on a non-SYN, ECN negotiated). */
function tcpEcnRcvEcnEcho(sk: TcpSock, skb: SkBuff): boolean {
  const tcb = tcpSkbCb(skb);
  return (tcb.tcpFlags & TCPHDR_ECE) !== 0 && !(tcb.tcpFlags & TCPHDR_SYN) && (sk.ecnFlags & TCP_ECN_OK) !== 0;
}

// --- established and the state machine ---------------------------------------------

/**
 * tcp_rcv_established: a segment for an ESTABLISHED connection. There is no
 * header-prediction fast path: every segment takes Linux's slow path
 * (validation, tcp_ack, the text, then the ACK and send checks). Returns 1
 * when the caller must answer the segment with a reset, as tcp_v4_do_rcv does.
 */
export function tcpRcvEstablished(tcp: TcpProto, sk: TcpSock, skb: SkBuff): number {
  const tcb = tcpSkbCb(skb);
  const o = tcpParseSkbOptions(skb, true);
  sk.segsIn++;
  if (tcb.dataLen) sk.dataSegsIn++;
  // Neither ACK, RST nor SYN: dropped before anything answers it.
  if (!(tcb.tcpFlags & (TCPHDR_ACK | TCPHDR_RST | TCPHDR_SYN))) {
    tcpDropReason(tcp, sk, skb, SKB_DROP_REASON.TCP_FLAGS);
    return 0;
  }
  if (!tcpValidateIncoming(tcp, sk, skb, true)) return 0;
  // Linux drops an ACK of unsent data, answering with a challenge ACK.
  if (tcpAck(tcp, sk, skb, FLAG_UPDATE_TS_RECENT) <= 0 && after(tcb.ackSeq, sk.sndNxt)) {
    tcpDropReason(tcp, sk, skb, SKB_DROP_REASON.TCP_ACK_UNSENT_DATA);
    tcpSendChallengeAck(tcp, sk);
    return 0;
  }
  if (o.sawTstamp && sk.tstampOk) tcpReplaceTsRecent(tcp, sk, o, tcb.seq);
  if (tcb.dataLen) tcpRcvRttMeasureTs(tcp, sk, skb);
  return tcpRcvText(tcp, sk, skb);
}

/**
 * tcp_rcv_state_process for a synchronized connection in any state but
 * ESTABLISHED (tcp_rcv_established) and TIME_WAIT (a TIME_WAIT sock):
 * SYN_RECV of a simultaneous open, FIN_WAIT1/2, CLOSING, LAST_ACK,
 * CLOSE_WAIT. Returns 1 when the caller must answer with a reset.
 */
export function tcpRcvStateProcess(tcp: TcpProto, sk: TcpSock, skb: SkBuff): number {
  const tcb = tcpSkbCb(skb);
  const o = tcpParseSkbOptions(skb, true);
  sk.segsIn++;
  if (tcb.dataLen) sk.dataSegsIn++;

  if (sk.state === TCP_CLOSE) return 0;
  // Neither ACK, RST nor SYN: dropped before anything answers it.
  if (!(tcb.tcpFlags & (TCPHDR_ACK | TCPHDR_RST | TCPHDR_SYN))) return 0;
  if (!tcpValidateIncoming(tcp, sk, skb, false)) return 0;
  const acceptable = tcpAck(tcp, sk, skb, FLAG_UPDATE_TS_RECENT) > 0;
  if (!acceptable) {
    if (sk.state === TCP_SYN_RECV) return 0;
    // Linux drops an ACK of unsent data without answering in ESTABLISHED.
    if (after(tcb.ackSeq, sk.sndNxt)) {
      tcpSendChallengeAck(tcp, sk);
      return 0;
    }
  }
  if (o.sawTstamp && sk.tstampOk) tcpReplaceTsRecent(tcp, sk, o, tcb.seq);
  if (sk.fastopenRsk && acceptable) tcpRcvSynrecvStateFastopen(tcp, sk, tcpRttEstimator);
  switch (sk.state) {
    case TCP_SYN_RECV:
      // Simultaneous open completes.
      if (!acceptable) return 0;
      sk.sndUna = tcb.ackSeq;
      sk.sndWnd = tcb.window * 2 ** sk.sndWscale;
      sk.sndWl1 = tcb.seq;
      // The handshake's ACK went through no tcp_cong_control: the first pacing rate is set here.
      if (!sk.caOps.congControl) tcpUpdatePacingRate(tcp, sk);
      tcpSetState(tcp, sk, TCP_ESTABLISHED);
      tcpWake(sk, POLLOUT);
      break;
    case TCP_FIN_WAIT1:
      if (sk.sndUna !== sk.writeSeq) break;
      tcpSetState(tcp, sk, TCP_FIN_WAIT2);
      sk.shutdown |= SEND_SHUTDOWN;
      if (!sk.orphan) {
        tcpWake(sk, POLLOUT);
        break;
      }
      if (sk.linger2 < 0) {
        // TCP_LINGER2 < 0: no FIN_WAIT2 for an orphan.
        tcpDone(tcp, sk);
        tcp.mibs.TcpExt.TCPAbortOnData++;
        return 1;
      }
      {
        // An orphan waits for the peer's FIN at most tcp_fin_timeout.
        const tmo = tcpFinTime(tcp, sk);
        if (tcb.tcpFlags & TCPHDR_FIN || tmo > TCP_TIMEWAIT_LEN) {
          tcp.time.timers.mod(sk.keepaliveTimer, tcp.now() + Math.max(tmo - TCP_TIMEWAIT_LEN, 0) || tcp.now() + tmo);
        } else {
          tcpTimeWait(tcp, sk, TCP_FIN_WAIT2, tmo);
          return 0;
        }
      }
      break;
    case TCP_CLOSING:
      if (sk.sndUna === sk.writeSeq) {
        tcpTimeWait(tcp, sk, TCP_TIME_WAIT, 0);
        return 0;
      }
      break;
    case TCP_LAST_ACK:
      if (sk.sndUna === sk.writeSeq) {
        tcpDone(tcp, sk);
        return 0;
      }
      break;
  }
  return tcpRcvText(tcp, sk, skb);
}

/**
 * Step 7 of tcp_rcv_state_process (RFC 9293 3.10.7.4, "process the segment
 * text"), then the send and ACK checks. Returns 1 when the segment must be
 * answered with a reset: new data for a socket that will read no more.
 */
function tcpRcvText(tcp: TcpProto, sk: TcpSock, skb: SkBuff): number {
  const tcb = tcpSkbCb(skb);
  const st = sk.state;
  const afterPeerFin = st === TCP_CLOSE_WAIT || st === TCP_CLOSING || st === TCP_LAST_ACK;
  tcpUrg(tcp, sk, skb); // step 6, the URG bit
  if (afterPeerFin && !before(tcb.seq, sk.rcvNxt)) {
    // Nothing new can follow the peer's FIN: ignore it.
  } else if (afterPeerFin || st === TCP_FIN_WAIT1 || st === TCP_FIN_WAIT2 || st === TCP_ESTABLISHED) {
    const finBit = tcb.tcpFlags & TCPHDR_FIN ? 1 : 0;
    if (st !== TCP_ESTABLISHED && sk.shutdown & RCV_SHUTDOWN && tcb.endSeq !== tcb.seq && after(seqAdd(tcb.endSeq, -finBit), sk.rcvNxt)) {
      tcp.mibs.TcpExt.TCPAbortOnData++;
      tcpReset(tcp, sk);
      return 1;
    }
    tcpDataQueue(tcp, sk, skb);
  }
  if (sk.state !== TCP_CLOSE) {
    tcpDataSndCheck(tcp, sk);
    tcpAckSndCheck(tcp, sk);
  }
  return 0;
}

/**
 * tcp_rcv_synsent_state_process: the answer to our SYN. Returns 1 when the
 * segment must be answered with a reset (an ACK of something we never sent).
 */
export function tcpRcvSynsentStateProcess(tcp: TcpProto, sk: TcpSock, skb: SkBuff): number {
  const tcb = tcpSkbCb(skb);
  const o = tcpParseSkbOptions(skb, false);
  const flags = tcb.tcpFlags;
  if (flags & TCPHDR_ACK) {
    // RFC 9293: an ACK of something we never sent gets a reset (unless it is one).
    if (!after(tcb.ackSeq, sk.iss) || after(tcb.ackSeq, sk.sndNxt)) return flags & TCPHDR_RST ? 0 : 1;
    if (o.sawTstamp && o.rcvTsecr && sk.tstampOk && (((o.rcvTsecr - sk.rcvTsecrMin) | 0) < 0 || ((o.rcvTsecr - Math.floor(tcp.now()) - sk.tsOff) | 0) > 0)) {
      tcp.mibs.TcpExt.PAWSActiveRejected++; // RFC 7323: an echo of no TSval we sent (before our SYN or from the future): reset
      return flags & TCPHDR_RST ? 0 : 1;
    }
    if (flags & TCPHDR_RST) {
      tcpReset(tcp, sk);
      return 0;
    }
    if (!(flags & TCPHDR_SYN)) return 0;

    // SYN-ACK: the connection is established.
    sk.irs = tcb.seq;
    sk.rcvNxt = seqAdd(tcb.seq, 1);
    sk.rcvWup = sk.rcvNxt;
    sk.copiedSeq = sk.rcvNxt;
    sk.sndWl1 = tcb.seq;
    sk.sndWnd = tcb.window; // not scaled on a SYN
    if (!o.sawTstamp || !sk.tstampOk) sk.tstampOk = false;
    if (o.sndWscale < 0 || !sk.wscaleOk) {
      sk.wscaleOk = false;
      sk.sndWscale = 0;
      sk.rcvWscale = 0;
      sk.windowClamp = Math.min(sk.windowClamp, 65535);
    } else {
      sk.sndWscale = o.sndWscale;
    }
    sk.sackOk = sk.sackOk && o.sackOk;
    // tcp_ecn_rcv_synack: ECN only if the SYN-ACK has ECE without CWR.
    if (sk.ecnFlags & TCP_ECN_OK && (!(flags & TCPHDR_ECE) || flags & TCPHDR_CWR)) sk.ecnFlags &= ~TCP_ECN_OK;
    if (sk.tstampOk) tcpStoreTsRecent(tcp, sk, o);
    if (o.mssClamp) sk.mssClamp = Math.min(sk.mssClamp, o.mssClamp);
    else sk.mssClamp = Math.min(sk.mssClamp, 536);
    if (sk.userMss && sk.userMss < sk.mssClamp) sk.mssClamp = sk.userMss;
    sk.maxWindow = sk.sndWnd;
    tcpAck(tcp, sk, skb, FLAG_NO_CHALLENGE_ACK);
    tcpSyncMss(sk, sk.pmtuCookie || tcp.routeMtu(sk));
    tcpFinishConnect(tcp, sk);
    if (tcpSynsentFastopen(tcp, sk, skb, o)) return 0;
    // Linux ACKs the SYN-ACK at once, without entering quick-ack mode (that
    // is only for a deferred ACK): the delayed-ACK engine (ato) starts with
    // the first data received, so a prompt first write is no pingpong reply.
    tcpSendAck(tcp, sk);
    tcpPushPendingFrames(tcp, sk);
    return 0;
  }
  if (flags & TCPHDR_RST) return 0;
  if (flags & TCPHDR_SYN) {
    // Simultaneous open (RFC 9293 3.5): SYN_RECV, answer with SYN-ACK.
    sk.irs = tcb.seq;
    sk.rcvNxt = seqAdd(tcb.seq, 1);
    sk.rcvWup = sk.rcvNxt;
    sk.copiedSeq = sk.rcvNxt;
    sk.sndWl1 = tcb.seq;
    sk.sndWnd = tcb.window;
    sk.maxWindow = sk.sndWnd;
    if (o.sndWscale < 0 || !sk.wscaleOk) {
      sk.wscaleOk = false;
      sk.sndWscale = 0;
      sk.rcvWscale = 0;
    } else {
      sk.sndWscale = o.sndWscale;
    }
    if (!o.sawTstamp) sk.tstampOk = false;
    else tcpStoreTsRecent(tcp, sk, o);
    sk.sackOk = sk.sackOk && o.sackOk;
    // tcp_ecn_rcv_syn: a simultaneous SYN must ask for ECN too.
    if (sk.ecnFlags & TCP_ECN_OK && (!(flags & TCPHDR_ECE) || !(flags & TCPHDR_CWR))) sk.ecnFlags &= ~TCP_ECN_OK;
    if (o.mssClamp) sk.mssClamp = Math.min(sk.mssClamp, o.mssClamp);
    tcpSyncMss(sk, sk.pmtuCookie || tcp.routeMtu(sk));
    tcpSetState(tcp, sk, TCP_SYN_RECV);
    // tcp_send_synack: our SYN again, now with the ACK.
    tcpTransmit(tcp, sk, null, TCPHDR_SYN | TCPHDR_ACK, sk.iss, 0, 0, 0);
  }
  return 0;
}

/** tcp_finish_connect: ESTABLISHED; tell the connecting caller. */
export function tcpFinishConnect(tcp: TcpProto, sk: TcpSock): void {
  tcpSetState(tcp, sk, TCP_ESTABLISHED);
  // tcp_init_transfer: the MTU search now knows the peer's MSS; the algorithm starts with the connection.
  tcpMtupInit(tcp, sk);
  tcpInitCongestionControl(sk, sk.caOps, tcp.now());
  tcpInitRcvqSpace(tcp, sk);
  sk.rcvTstamp = tcp.now();
  // icsk_ack.lrcvtime starts with the session (tcpi_last_data_recv counts from here until data comes).
  sk.lrcvtime = tcp.now();
  if (sk.keepaliveOn) tcp.time.timers.mod(sk.keepaliveTimer, tcp.now() + (sk.keepaliveTime || tcp.sysctl.tcp_keepalive_time));
  if (!(sk.userlocks & SOCK_SNDBUF_LOCK)) tcpSndbufExpand(tcp, sk);
  tcpWake(sk, POLLOUT);
}


