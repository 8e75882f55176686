/**
 * TCP input (net/ipv4/tcp_input.c): option parsing, segment validation
 * (RFC 9293 acceptability, PAWS, RFC 5961 challenge ACKs), tcp_ack (window
 * update, clean-up of the write queue, RTT, congestion control, NewReno
 * fast retransmit and recovery), data queueing with the out-of-order queue
 * and SACK blocks, the delayed-ACK engine, FIN handling and the state
 * machine of tcp_rcv_state_process.
 *
 * Loss recovery here is part 1: duplicate-ACK counting (Reno), NewReno
 * partial ACKs and RTO go-back; SACK scoreboard, RACK-TLP and PRR are part 2.
 */
import { after, before, between, seqAdd } from '../../lib/seq.js';
import { TCPHDR_ACK, TCPHDR_FIN, TCPHDR_RST, TCPHDR_SYN } from '../../wire/tcp.js';
import type { TcpProto, TcpSegment } from './tcp_proto.js';
import {
  ICSK_ACK_NOW,
  ICSK_ACK_PUSHED,
  ICSK_ACK_PUSHED2,
  ICSK_ACK_SCHED,
  ICSK_TIME_PROBE0,
  POLLHUP,
  POLLIN,
  POLLOUT,
  POLLRDHUP,
  RCV_SHUTDOWN,
  RcvSeg,
  SEND_SHUTDOWN,
  SHUTDOWN_MASK,
  SOCK_SNDBUF_LOCK,
  TCPCB_LOST,
  TCPCB_SACKED_ACKED,
  TCPCB_SACKED_RETRANS,
  TCP_ATO_MIN,
  TCP_CA_Disorder,
  TCP_CA_Loss,
  TCP_CA_Open,
  TCP_CA_Recovery,
  TCP_CLOSE,
  TCP_CLOSE_WAIT,
  TCP_CLOSING,
  TCP_ESTABLISHED,
  TCP_FIN_WAIT1,
  TCP_FIN_WAIT2,
  TCP_INIT_CWND,
  TCP_LAST_ACK,
  TCP_MAX_QUICKACKS,
  TCP_RTO_MAX,
  TCP_RTO_MIN,
  TCP_SYN_RECV,
  TCP_SYN_SENT,
  TCP_TIMEWAIT_LEN,
  TCP_TIME_WAIT,
  type TcpOptionsReceived,
  type TcpSkb,
  type TcpSock,
} from './tcp_sock.js';
import {
  TCPOPT_EOL,
  TCPOPT_MSS,
  TCPOPT_NOP,
  TCPOPT_SACK,
  TCPOPT_SACK_PERM,
  TCPOPT_TIMESTAMP,
  TCPOPT_WINDOW,
  tcpCurrentMss,
  tcpPacketsInFlight,
  tcpPushPendingFrames,
  tcpRearmRto,
  tcpReceiveWindow,
  tcpSelectWindowRaw,
  tcpSpace,
  tcpSendAck,
  tcpSendDelayedAck,
  tcpSyncMss,
  tcpWndEnd,
  tcpXmitRetransmitQueue,
  tcpFragment,
  tcpWriteXmit,
  tcpCheckProbeTimer,
} from './tcp_output.js';
import { renoCongAvoid, renoSsthresh, renoUndoCwnd } from './tcp_cong.js';
import { tcpRateGen, tcpRateSkbDelivered } from './tcp_rate.js';
import { tcpDone, tcpSetState, tcpTimeWait, tcpWake } from './tcp.js';

// FLAG_* bits: what an ACK did (tcp_input.c).
const FLAG_DATA = 0x01;
const FLAG_WIN_UPDATE = 0x02;
const FLAG_DATA_ACKED = 0x04;
const FLAG_RETRANS_DATA_ACKED = 0x08;
const FLAG_SYN_ACKED = 0x10;
const FLAG_SND_UNA_ADVANCED = 0x400;
const FLAG_UPDATE_TS_RECENT = 0x4000;
const FLAG_NO_CHALLENGE_ACK = 0x8000;
const FLAG_ACKED = FLAG_DATA_ACKED | FLAG_SYN_ACKED;
const FLAG_NOT_DUP = FLAG_DATA | FLAG_WIN_UPDATE | FLAG_ACKED;

import { ECONNREFUSED, ECONNRESET, EPIPE } from '../errno.js';

// --- options -------------------------------------------------------------------

/**
 * tcp_parse_options: fill `o` from the header's options. Malformed lengths
 * end parsing (as Linux does); MSS and window scale count only on a SYN.
 */
export function tcpParseOptions(seg: TcpSegment, o: TcpOptionsReceived, estab: boolean): void {
  o.clear();
  const b = seg.buf;
  let i = seg.off + 20;
  const end = seg.off + seg.doff;
  const syn = (seg.flags & TCPHDR_SYN) !== 0;
  while (i < end) {
    const kind = b[i];
    if (kind === TCPOPT_EOL) return;
    if (kind === TCPOPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return;
    const len = b[i + 1];
    if (len < 2 || i + len > end) return;
    switch (kind) {
      case TCPOPT_MSS:
        if (len === 4 && syn && !estab) {
          const mss = b.readUInt16BE(i + 2);
          if (mss) o.mssClamp = mss;
        }
        break;
      case TCPOPT_WINDOW:
        if (len === 3 && syn && !estab) o.sndWscale = Math.min(b[i + 2], 14);
        break;
      case TCPOPT_TIMESTAMP:
        if (len === 10) {
          o.sawTstamp = true;
          o.rcvTsval = b.readUInt32BE(i + 2);
          o.rcvTsecr = b.readUInt32BE(i + 6);
        }
        break;
      case TCPOPT_SACK_PERM:
        if (len === 2 && syn && !estab) o.sackOk = true;
        break;
      case TCPOPT_SACK:
        if (len >= 10 && (len - 2) % 8 === 0) {
          const n = Math.min((len - 2) / 8, 4);
          for (let k = 0; k < n; k++) {
            o.sackStart[k] = b.readUInt32BE(i + 2 + 8 * k);
            o.sackEnd[k] = b.readUInt32BE(i + 6 + 8 * k);
          }
          o.numSacks = n;
        }
        break;
    }
    i += len;
  }
}

// --- RTT -------------------------------------------------------------------------

/** tcp_rtt_estimator + tcp_set_rto: Linux's mdev-based RFC 6298. */
export function tcpRttEstimator(tcp: TcpProto, sk: TcpSock, mrttUs: number): void {
  let m = Math.max(1, Math.round(mrttUs));
  if (!sk.minRttUs || m < sk.minRttUs) sk.minRttUs = m;
  const rtoMinUs = TCP_RTO_MIN * 1000;
  let srtt = sk.srttUs;
  if (srtt !== 0) {
    m -= srtt >> 3;
    srtt += m;
    if (m < 0) {
      m = -m;
      m -= sk.mdevUs >> 2;
      if (m > 0) m >>= 3;
    } else {
      m -= sk.mdevUs >> 2;
    }
    sk.mdevUs += m;
    if (sk.mdevUs > sk.mdevMaxUs) {
      sk.mdevMaxUs = sk.mdevUs;
      if (sk.mdevMaxUs > sk.rttvarUs) sk.rttvarUs = sk.mdevMaxUs;
    }
    if (after(sk.sndUna, sk.rttSeq)) {
      if (sk.mdevMaxUs < sk.rttvarUs) sk.rttvarUs -= (sk.rttvarUs - sk.mdevMaxUs) >> 2;
      sk.rttSeq = sk.sndNxt;
      sk.mdevMaxUs = rtoMinUs;
    }
  } else {
    srtt = m << 3;
    sk.mdevUs = m << 1;
    sk.rttvarUs = Math.max(sk.mdevUs, rtoMinUs);
    sk.mdevMaxUs = sk.rttvarUs;
    sk.rttSeq = sk.sndNxt;
  }
  sk.srttUs = Math.max(1, srtt);
  tcpSetRto(sk);
  void tcp;
}

/** __tcp_set_rto + tcp_bound_rto: srtt + rttvar (rttvar >= rto_min), at most 120 s. */
export function tcpSetRto(sk: TcpSock): void {
  const rtoUs = (sk.srttUs >> 3) + sk.rttvarUs;
  sk.rto = Math.min(Math.ceil(rtoUs / 1000), TCP_RTO_MAX);
}

// --- validation -------------------------------------------------------------------

/** tcp_sequence: does the segment overlap the receive window? (RFC 9293 3.10.7.4) */
function tcpSequence(sk: TcpSock, seq: number, endSeq: number): boolean {
  return !before(endSeq, sk.rcvWup) && !after(seq, seqAdd(sk.rcvNxt, tcpReceiveWindow(sk)));
}

/** tcp_paws_discard: a timestamp older than ts_recent (allowing 1) and not after 24 days idle. */
function tcpPawsDiscard(tcp: TcpProto, sk: TcpSock, o: TcpOptionsReceived, seg: TcpSegment): boolean {
  if (((sk.tsRecent - o.rcvTsval) | 0) <= 1) return false;
  if (tcp.now() / 1000 >= sk.tsRecentStamp + 24 * 24 * 3600) return false;
  // A pure duplicate ACK (tcp_disordered_ack) is allowed through.
  const ack = seg.ack;
  if (!(seg.flags & TCPHDR_ACK) || seg.dataLen || seg.seq !== sk.rcvNxt || ack !== sk.sndUna) return true;
  return false;
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
 * tcp_send_challenge_ack (RFC 5961): per-socket tcp_invalid_ratelimit, then
 * the stack-wide tcp_challenge_ack_limit per second.
 */
export function tcpSendChallengeAck(tcp: TcpProto, sk: TcpSock): void {
  const now = tcp.now();
  if (now - sk.lastOowAckTime < tcp.sysctl.tcp_invalid_ratelimit && sk.lastOowAckTime) {
    tcp.mibs.TcpExt.TCPACKSkippedChallenge++;
    return;
  }
  sk.lastOowAckTime = now;
  const sec = Math.floor(now / 1000);
  if (sec !== tcp.challengeTimestamp) {
    tcp.challengeTimestamp = sec;
    tcp.challengeCount = 0;
  }
  if (++tcp.challengeCount > tcp.sysctl.tcp_challenge_ack_limit) return;
  tcp.mibs.TcpExt.TCPChallengeACK++;
  tcpSendAck(tcp, sk);
}

/** A duplicate or out-of-window segment is answered with an ACK, rate-limited (tcp_send_dupack / oow). */
function tcpSendDupack(tcp: TcpProto, sk: TcpSock, seg: TcpSegment): void {
  if (seg.dataLen && before(seg.seq, sk.rcvNxt)) {
    tcp.mibs.TcpExt.DelayedACKLost++;
    tcpEnterQuickackMode(sk, TCP_MAX_QUICKACKS);
    tcpDsackSet(tcp, sk, seg.seq, seg.endSeq);
  }
  const now = tcp.now();
  if (!(seg.flags & TCPHDR_RST) && sk.lastOowAckTime && now - sk.lastOowAckTime < tcp.sysctl.tcp_invalid_ratelimit) return;
  sk.lastOowAckTime = now;
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

/**
 * tcp_validate_incoming: PAWS, sequence acceptability, RST and SYN
 * checks for a synchronized connection. Returns false if the segment is
 * consumed here.
 */
function tcpValidateIncoming(tcp: TcpProto, sk: TcpSock, seg: TcpSegment): boolean {
  const o = tcp.opts;
  if (o.sawTstamp && sk.tstampOk && tcpPawsDiscard(tcp, sk, o, seg)) {
    if (!(seg.flags & TCPHDR_RST)) {
      tcp.mibs.TcpExt.PAWSEstab++;
      tcpSendDupack(tcp, sk, seg);
      return false;
    }
    // RFC 7323 5.2: a RST is not subject to PAWS.
  }
  if (!tcpSequence(sk, seg.seq, seg.endSeq)) {
    // RFC 9293: an unacceptable segment gets an ACK (unless it is a RST).
    if (!(seg.flags & TCPHDR_RST)) {
      if (seg.flags & TCPHDR_SYN) {
        tcp.mibs.TcpExt.TCPSYNChallenge++;
        tcpSendChallengeAck(tcp, sk);
      } else {
        tcpSendDupack(tcp, sk, seg);
      }
    }
    return false;
  }
  if (seg.flags & TCPHDR_RST) {
    // RFC 5961 3.2: only an exact rcv_nxt resets; in-window elsewhere gets a challenge ACK.
    if (seg.seq === sk.rcvNxt) {
      tcpReset(tcp, sk);
    } else {
      tcpSendChallengeAck(tcp, sk);
    }
    return false;
  }
  if (seg.flags & TCPHDR_SYN) {
    // RFC 5961 4.2: a SYN in a synchronized state gets a challenge ACK.
    tcp.mibs.TcpExt.TCPSYNChallenge++;
    tcpSendChallengeAck(tcp, sk);
    return false;
  }
  return true;
}

// --- ACK processing --------------------------------------------------------------

/** tcp_may_update_window. */
function tcpMayUpdateWindow(sk: TcpSock, ack: number, seq: number, nwin: number): boolean {
  // A zero window is always taken (Linux's "|| !nwin"): the peer may close it on any ACK.
  return after(ack, sk.sndUna) || after(seq, sk.sndWl1) || (seq === sk.sndWl1 && (nwin > sk.sndWnd || nwin === 0));
}

/** tcp_ack_update_window. */
function tcpAckUpdateWindow(tcp: TcpProto, sk: TcpSock, seg: TcpSegment, ack: number): number {
  let flag = 0;
  // A SYN's window is never scaled (RFC 7323 2.2).
  const nwin = seg.flags & TCPHDR_SYN ? seg.window : seg.window * 2 ** sk.sndWscale;
  if (tcpMayUpdateWindow(sk, ack, seg.seq, nwin)) {
    flag |= FLAG_WIN_UPDATE;
    sk.sndWl1 = seg.seq;
    if (sk.sndWnd !== nwin) {
      sk.sndWnd = nwin;
      if (nwin > sk.maxWindow) {
        sk.maxWindow = nwin;
        tcpSyncMss(sk, tcp.stack.dev.mtu);
      }
    }
  }
  return flag;
}

/** tcp_clean_rtx_queue: free what the ACK covers; RTT from the newest unretransmitted data. */
function tcpCleanRtxQueue(tcp: TcpProto, sk: TcpSock, ack: number): number {
  let flag = 0;
  let firstAckt = 0;
  let lastAckt = 0;
  let ackedPcount = 0;
  const mss = sk.mssCache;
  let skb: TcpSkb | null;
  while ((skb = sk.wqHead) && skb !== sk.sendHead) {
    if (after(skb.endSeq, ack)) {
      // Partly acked (tcp_tso_acked): trim the acked head of a multi-segment skb.
      if (skb.len > mss && after(ack, skb.seq)) {
        const acked = Math.floor(((ack - skb.seq) >>> 0) / mss) * mss;
        if (acked > 0) {
          const oldPcount = skb.pcount;
          skb.off += acked;
          skb.cap -= acked;
          skb.len -= acked;
          skb.seq = seqAdd(skb.seq, acked);
          skb.truesize -= acked;
          sk.wmemQueued -= acked;
          skb.pcount = Math.ceil(skb.len / mss);
          const gone = oldPcount - skb.pcount;
          sk.packetsOut -= gone;
          sk.delivered += gone;
          ackedPcount += gone;
          if (skb.sacked & TCPCB_SACKED_RETRANS) sk.retransOut -= Math.min(gone, sk.retransOut);
          if (skb.sacked & TCPCB_LOST) sk.lostOut -= Math.min(gone, sk.lostOut);
          flag |= FLAG_DATA_ACKED;
          if (!(skb.sacked & TCPCB_SACKED_RETRANS) && !(skb.sacked & 0x80)) {
            if (!firstAckt) firstAckt = skb.sentAt;
            lastAckt = skb.sentAt;
          }
        }
      }
      break;
    }
    const sacked = skb.sacked;
    if (sacked & TCPCB_SACKED_RETRANS) {
      sk.retransOut -= Math.min(skb.pcount, sk.retransOut);
      flag |= FLAG_RETRANS_DATA_ACKED;
    } else if (!(sacked & 0x80)) {
      // Karn: only never-retransmitted segments give an RTT sample.
      if (!firstAckt) firstAckt = skb.sentAt;
      lastAckt = skb.sentAt;
    }
    if (sacked & TCPCB_LOST) sk.lostOut -= Math.min(skb.pcount, sk.lostOut);
    if (sacked & TCPCB_SACKED_ACKED) sk.sackedOut -= Math.min(skb.pcount, sk.sackedOut);
    else sk.delivered += skb.pcount;
    tcpRateSkbDelivered(sk, skb, tcp.rs);
    sk.packetsOut -= skb.pcount;
    ackedPcount += skb.pcount;
    if (skb.tcpFlags & TCPHDR_SYN) flag |= FLAG_SYN_ACKED;
    else flag |= FLAG_DATA_ACKED;
    sk.wmemQueued -= skb.truesize;
    sk.wqHead = skb.next;
    if (!sk.wqHead) sk.wqTail = null;
  }
  if (sk.packetsOut < 0) sk.packetsOut = 0;
  const now = tcp.now();
  if (flag & FLAG_ACKED) {
    let rttUs = -1;
    if (firstAckt) rttUs = (now - firstAckt) * 1000;
    else if (tcp.opts.sawTstamp && tcp.opts.rcvTsecr && sk.tstampOk) {
      // Every acked segment was retransmitted: TS echo gives the sample (RFC 7323 4.1).
      rttUs = (((Math.floor(now) + sk.tsOff - tcp.opts.rcvTsecr) >>> 0) || 1) * 1000;
    }
    if (rttUs >= 0) tcpRttEstimator(tcp, sk, rttUs);
    void lastAckt;
    sk.retransmits = 0;
    sk.backoff = 0;
    tcpRearmRto(tcp, sk);
    sk.deliveredPkts = ackedPcount;
  } else {
    sk.deliveredPkts = 0;
  }
  return flag;
}

/** tcp_enter_recovery (Reno/NewReno part): halve, remember where recovery ends. */
function tcpEnterRecovery(tcp: TcpProto, sk: TcpSock): void {
  tcp.mibs.TcpExt.TCPRenoRecovery++;
  sk.priorSsthresh = sk.sndSsthresh;
  sk.priorCwnd = sk.sndCwnd;
  sk.undoMarker = sk.sndUna;
  sk.sndSsthresh = renoSsthresh(sk);
  sk.highSeq = sk.sndNxt;
  sk.caState = TCP_CA_Recovery;
  // No PRR in part 1: the window drops to ssthresh at once; dupacks (sacked_out) still let data flow.
  sk.sndCwnd = Math.max(sk.sndSsthresh, 1);
}

/**
 * tcp_mark_head_lost for Reno: the oldest unacked segment (one MSS, the
 * skb split if it is a TSO skb) is lost.
 */
function tcpMarkHeadLost(sk: TcpSock): void {
  const skb = sk.wqHead;
  if (!skb || skb === sk.sendHead) return;
  if (skb.pcount > 1 && skb.len > sk.mssCache) tcpFragment(sk, skb, sk.mssCache);
  if (!(skb.sacked & TCPCB_LOST)) {
    skb.sacked |= TCPCB_LOST;
    sk.lostOut += skb.pcount;
  }
}

/**
 * tcp_enter_loss: an RTO. Everything outstanding is lost; the window
 * collapses to one segment and slow start resends from snd_una.
 */
export function tcpEnterLoss(_tcp: TcpProto, sk: TcpSock): void {
  if (sk.caState < TCP_CA_Recovery || sk.caState === TCP_CA_Loss && sk.retransmits === 0) {
    sk.priorSsthresh = sk.sndSsthresh;
    sk.priorCwnd = sk.sndCwnd;
  }
  if (sk.caState <= TCP_CA_Disorder || sk.sndUna === sk.highSeq || (sk.caState === TCP_CA_Loss && !sk.retransmits)) {
    sk.sndSsthresh = renoSsthresh(sk);
  }
  sk.sndCwnd = tcpPacketsInFlight(sk) + 1;
  sk.sndCwnd = 1;
  sk.sndCwndCnt = 0;
  sk.retransOut = 0;
  sk.lostOut = 0;
  sk.sackedOut = 0;
  for (let skb = sk.wqHead; skb && skb !== sk.sendHead; skb = skb.next) {
    skb.sacked &= ~(TCPCB_SACKED_RETRANS | TCPCB_SACKED_ACKED);
    skb.sacked |= TCPCB_LOST;
    sk.lostOut += skb.pcount;
  }
  sk.caState = TCP_CA_Loss;
  sk.highSeq = sk.sndNxt;
  sk.undoMarker = 0;
}

/**
 * tcp_fastretrans_alert, Reno flavour: count duplicate ACKs, enter
 * recovery at tcp_reordering of them, retransmit on partial ACKs, leave
 * recovery once high_seq is acked.
 */
function tcpFastretransAlert(tcp: TcpProto, sk: TcpSock, flag: number, isDupack: boolean): void {
  if (flag & FLAG_SND_UNA_ADVANCED) {
    // A cumulative ACK takes back the dupacks it covers (tcp_remove_reno_sacks).
    const acked = sk.deliveredPkts;
    if (acked > 0) sk.sackedOut = Math.max(0, sk.sackedOut - Math.max(acked - 1, 0));
    if (sk.caState !== TCP_CA_Recovery) sk.sackedOut = 0;
  }
  if (isDupack && sk.packetsOut > 0) {
    // tcp_add_reno_sack: a dupack means a segment left the network.
    sk.sackedOut = Math.min(sk.sackedOut + 1, Math.max(sk.packetsOut - 1, 0));
  }

  switch (sk.caState) {
    case TCP_CA_Recovery:
      if (!before(sk.sndUna, sk.highSeq)) {
        // Full ACK: recovery is over (tcp_end_cwnd_reduction).
        sk.sndCwnd = Math.max(sk.sndSsthresh, 2);
        sk.caState = TCP_CA_Open;
        sk.sackedOut = 0;
        sk.retransStamp = 0;
        return;
      }
      if (flag & FLAG_SND_UNA_ADVANCED) {
        // NewReno partial ACK (RFC 6582): the next hole is lost too, resent at once.
        tcpMarkHeadLost(sk);
        tcpXmitRetransmitQueue(tcp, sk, true);
        return;
      }
      break;
    case TCP_CA_Loss:
      if (!before(sk.sndUna, sk.highSeq)) {
        sk.caState = TCP_CA_Open;
        sk.retransStamp = 0;
        return;
      }
      break;
    default: {
      if (flag & FLAG_SND_UNA_ADVANCED && sk.caState === TCP_CA_Disorder && !sk.sackedOut) sk.caState = TCP_CA_Open;
      // tcp_time_to_recover (Reno): more than tcp_reordering duplicate ACKs.
      if (sk.sackedOut + 1 > tcp.sysctl.tcp_reordering || sk.lostOut) {
        tcpEnterRecovery(tcp, sk);
        tcpMarkHeadLost(sk);
        tcpXmitRetransmitQueue(tcp, sk, true);
        return;
      } else {
        if (sk.sackedOut) sk.caState = TCP_CA_Disorder;
        return;
      }
    }
  }
  tcpXmitRetransmitQueue(tcp, sk);
}

/** tcp_ack_probe: the zero-window probe timer stops once the window opens. */
function tcpAckProbe(tcp: TcpProto, sk: TcpSock): void {
  const head = sk.sendHead;
  if (!head) return;
  if (!after(seqAdd(head.seq, Math.min(head.len, sk.mssCache)), tcpWndEnd(sk))) {
    sk.backoff = 0;
    sk.probesOut = 0;
    if (sk.pending === ICSK_TIME_PROBE0) {
      tcp.time.timers.del(sk.retransmitTimer);
      sk.pending = 0;
    }
  } else {
    const when = Math.min(Math.max(sk.rto, TCP_RTO_MIN) * 2 ** sk.backoff, TCP_RTO_MAX);
    sk.pending = ICSK_TIME_PROBE0;
    tcp.time.timers.mod(sk.retransmitTimer, tcp.now() + when);
  }
}

/**
 * tcp_ack: process the ACK field. Returns 1 if it acknowledged something
 * valid, 0 for an old ACK, -1 for one that must be dropped.
 */
function tcpAck(tcp: TcpProto, sk: TcpSock, seg: TcpSegment, flag: number): number {
  const priorSndUna = sk.sndUna;
  const ack = seg.ack;
  const priorPackets = sk.packetsOut;
  const priorInFlight = tcpPacketsInFlight(sk);

  if (before(ack, priorSndUna)) {
    // RFC 5961 5.2: far-too-old ACKs get a challenge ACK.
    if (before(ack, (priorSndUna - sk.maxWindow) >>> 0)) {
      if (!(flag & FLAG_NO_CHALLENGE_ACK)) tcpSendChallengeAck(tcp, sk);
      return -1;
    }
    return 0;
  }
  if (after(ack, sk.sndNxt)) return -1;

  if (after(ack, priorSndUna)) {
    flag |= FLAG_SND_UNA_ADVANCED;
    sk.retransmits = 0;
    // tcp_update_rto_time: forward progress ends an RTO recovery episode.
    if (sk.rtoStamp) {
      sk.totalRtoTime += tcp.now() - sk.rtoStamp;
      sk.rtoStamp = 0;
    }
  }
  if (flag & FLAG_UPDATE_TS_RECENT) tcpReplaceTsRecent(tcp, sk, tcp.opts, seg.seq);
  if (seg.dataLen) flag |= FLAG_DATA;
  flag |= tcpAckUpdateWindow(tcp, sk, seg, ack);
  if (after(ack, sk.sndUna)) {
    sk.bytesAcked += (ack - sk.sndUna) >>> 0;
    sk.sndUna = ack;
  }
  sk.rcvTstamp = tcp.now();
  // Any ACK resets keepalive probing.
  sk.probesOut = 0;

  if (!priorPackets) {
    tcpAckProbe(tcp, sk);
    return 1;
  }
  tcp.rs.reset();
  flag |= tcpCleanRtxQueue(tcp, sk, ack);
  tcpRateGen(sk, tcp.rs, tcp.now(), sk.minRttUs);

  const isDupack = !(flag & (FLAG_SND_UNA_ADVANCED | FLAG_NOT_DUP));
  const dubious = isDupack || sk.caState !== TCP_CA_Open;
  // tcp_may_raise_cwnd / tcp_cong_control, Reno: grow only outside recovery and on progress.
  if (flag & FLAG_ACKED && sk.caState === TCP_CA_Open) {
    renoCongAvoid(sk, sk.deliveredPkts, priorInFlight);
  }
  if (dubious) tcpFastretransAlert(tcp, sk, flag, isDupack);
  else if (sk.caState === TCP_CA_Open) sk.sackedOut = 0;
  if (sk.caState === TCP_CA_Loss && flag & FLAG_ACKED && before(sk.sndUna, sk.highSeq)) {
    // Slow start through the lost segments (go-back-N from the RTO).
    renoCongAvoid(sk, sk.deliveredPkts, priorInFlight);
    tcpXmitRetransmitQueue(tcp, sk);
  }
  if (sk.caState === TCP_CA_Open && sk.priorCwnd && flag & FLAG_ACKED) sk.priorCwnd = 0;
  void renoUndoCwnd;
  return 1;
}

// --- receiving data --------------------------------------------------------------

/** tcp_incr_quickack. */
function tcpIncrQuickack(sk: TcpSock, max: number): void {
  let q = Math.floor(sk.rcvWnd / (2 * sk.rcvMss));
  if (q === 0) q = 2;
  q = Math.min(q, max);
  if (q > sk.ackQuick) sk.ackQuick = q;
}

/** tcp_enter_quickack_mode. */
export function tcpEnterQuickackMode(sk: TcpSock, max: number): void {
  tcpIncrQuickack(sk, max);
  sk.ackPingpong = 0;
  sk.ato = TCP_ATO_MIN;
}

function tcpInQuickackMode(tcp: TcpProto, sk: TcpSock): boolean {
  return sk.ackQuick > 0 && sk.ackPingpong < tcp.sysctl.tcp_pingpong_thresh;
}

/** tcp_measure_rcv_mss: the biggest segment the peer sends, for ACK and window decisions. */
function tcpMeasureRcvMss(sk: TcpSock, len: number): void {
  const lss = sk.rcvMss;
  if (len >= lss) {
    sk.rcvMss = Math.min(len, sk.advmss);
  } else if (len >= 536) {
    // Smaller but plausible: keep as is. (Linux also tracks last_seg_size for PUSHED2.)
  } else {
    sk.ackPending |= ICSK_ACK_PUSHED;
  }
  if (len < lss && sk.ackPending & ICSK_ACK_PUSHED) sk.ackPending |= ICSK_ACK_PUSHED2;
}

/** tcp_event_data_recv: the delayed-ACK engine learns the arrival rhythm. */
function tcpEventDataRecv(tcp: TcpProto, sk: TcpSock, len: number): void {
  sk.ackPending |= ICSK_ACK_SCHED;
  tcpMeasureRcvMss(sk, len);
  const now = tcp.now();
  if (!sk.ato) {
    // The first data: quick ACKs while the sender is in slow start.
    tcpIncrQuickack(sk, TCP_MAX_QUICKACKS);
    sk.ato = TCP_ATO_MIN;
  } else {
    const m = now - sk.lrcvtime;
    if (m <= TCP_ATO_MIN / 2) {
      sk.ato = (sk.ato >> 1) + TCP_ATO_MIN / 2;
    } else if (m < sk.ato) {
      sk.ato = (sk.ato >> 1) + m;
      if (sk.ato > sk.rto) sk.ato = sk.rto;
    } else if (m > sk.rto) {
      tcpIncrQuickack(sk, TCP_MAX_QUICKACKS);
    }
  }
  sk.lrcvtime = now;
  sk.lastDataRecv = now;
  // tcp_grow_window: the offered window grows toward the buffer as data flows.
  if (len >= 128 && sk.rcvSsthresh < sk.windowClamp && sk.rcvSsthresh < tcpSpace(sk)) {
    sk.rcvSsthresh = Math.min(sk.rcvSsthresh + 2 * sk.advmss, sk.windowClamp);
    sk.ackQuick |= 1;
  }
}

/** tcp_dsack_set: report a duplicate range (RFC 2883) on the next ACK. */
function tcpDsackSet(tcp: TcpProto, sk: TcpSock, seq: number, endSeq: number): void {
  if (sk.sackOk) {
    sk.dsack = true;
    sk.duplicateSack[0] = seq;
    sk.duplicateSack[1] = endSeq;
    tcp.mibs.TcpExt.TCPDSACKOldSent++;
  }
}

/** Rebuild the SACK blocks from the out-of-order queue, the newest block first. */
function tcpUpdateSackBlocks(sk: TcpSock, newest: number): void {
  if (!sk.sackOk) return;
  const q = sk.ofoQueue;
  // Contiguous runs of the ofo queue.
  const runs: [number, number][] = [];
  for (const s of q) {
    const last = runs[runs.length - 1];
    if (last && !before(s.seq, last[0]) && !after(s.seq, last[1])) {
      if (after(s.endSeq, last[1])) last[1] = s.endSeq;
    } else {
      runs.push([s.seq, s.endSeq]);
    }
  }
  // The block holding the newest segment goes first, the rest keep their order.
  runs.sort((a, b) => (between(newest, a[0], a[1]) ? -1 : between(newest, b[0], b[1]) ? 1 : 0));
  const n = Math.min(runs.length, 4);
  for (let i = 0; i < n; i++) {
    sk.selectiveAcks[2 * i] = runs[i][0];
    sk.selectiveAcks[2 * i + 1] = runs[i][1];
  }
  sk.numSacks = n;
}

/** Queue in-order payload for the reader (tcp_queue_rcv), copying it out of the frame. */
function tcpQueueRcv(sk: TcpSock, data: Buffer, seq: number, endSeq: number, fin: boolean): void {
  if (data.length) {
    sk.receiveQueue.push(new RcvSeg(seq, endSeq, data, 0, fin));
    sk.rmemAlloc += data.length;
  }
  sk.rcvNxt = endSeq;
}

/** tcp_ofo_queue: move now-in-order segments from the out-of-order queue. */
function tcpOfoQueue(tcp: TcpProto, sk: TcpSock): void {
  const q = sk.ofoQueue;
  while (q.length && !after(q[0].seq, sk.rcvNxt)) {
    const s = q.shift()!;
    sk.rmemAlloc -= s.data.length;
    if (!after(s.endSeq, sk.rcvNxt)) {
      tcpDsackSet(tcp, sk, s.seq, s.endSeq);
      continue;
    }
    const skip = (sk.rcvNxt - s.seq) >>> 0;
    const data = s.data.subarray(skip);
    const dataEnd = s.fin ? seqAdd(s.endSeq, -1) : s.endSeq;
    tcpQueueRcv(sk, data, sk.rcvNxt, dataEnd, false);
    sk.bytesReceived += data.length;
    if (s.fin) {
      sk.rcvNxt = s.endSeq;
      tcpFin(tcp, sk);
      break;
    }
  }
}

/** tcp_data_queue_ofo: keep a segment that arrived ahead of a hole. */
function tcpDataQueueOfo(tcp: TcpProto, sk: TcpSock, seg: TcpSegment, fin: boolean): void {
  tcp.mibs.TcpExt.TCPOFOQueue++;
  sk.rcvOoopack++;
  sk.ackPending |= ICSK_ACK_SCHED | ICSK_ACK_NOW;
  if (sk.rmemAlloc + seg.dataLen > sk.rcvbuf) {
    tcp.mibs.TcpExt.TCPOFODrop++;
    return;
  }
  const seq = seg.seq;
  const endSeq = seg.endSeq;
  const q = sk.ofoQueue;
  let i = q.length;
  while (i > 0 && after(q[i - 1].seq, seq)) i--;
  // Fully covered by what we hold: a duplicate (D-SACK it).
  const prev = i > 0 ? q[i - 1] : null;
  if (prev && !after(endSeq, prev.endSeq)) {
    tcp.mibs.TcpExt.TCPOFOMerge++;
    tcpDsackSet(tcp, sk, seq, endSeq);
    return;
  }
  // Drop later segments this one fully covers.
  while (i < q.length && !after(q[i].endSeq, endSeq)) {
    sk.rmemAlloc -= q[i].data.length;
    q.splice(i, 1);
    tcp.mibs.TcpExt.TCPOFOMerge++;
  }
  const data = Buffer.from(seg.buf.subarray(seg.dataOff, seg.dataOff + seg.dataLen));
  q.splice(i, 0, new RcvSeg(seq, endSeq, data, 0, fin));
  sk.rmemAlloc += data.length;
  tcpUpdateSackBlocks(sk, seq);
}

/** tcp_data_queue: in-order data to the reader, the rest to the out-of-order queue. */
function tcpDataQueue(tcp: TcpProto, sk: TcpSock, seg: TcpSegment): void {
  const fin = (seg.flags & TCPHDR_FIN) !== 0;
  if (!seg.dataLen && !fin) return;
  let dataOff = seg.dataOff;
  let dataLen = seg.dataLen;
  let seq = seg.seq;

  if (seq === sk.rcvNxt || (before(seq, sk.rcvNxt) && after(seg.endSeq, sk.rcvNxt))) {
    if (before(seq, sk.rcvNxt)) {
      // Partly old: D-SACK the old head, keep the new tail.
      tcpDsackSet(tcp, sk, seq, sk.rcvNxt);
      const skip = (sk.rcvNxt - seq) >>> 0;
      dataOff += skip;
      dataLen -= skip;
      seq = sk.rcvNxt;
    }
    if (dataLen && tcpReceiveWindow(sk) === 0) {
      tcp.mibs.TcpExt.TCPZeroWindowDrop++;
      tcpEnterQuickackMode(sk, TCP_MAX_QUICKACKS);
      sk.ackPending |= ICSK_ACK_SCHED;
      return;
    }
    if (dataLen && sk.rmemAlloc + dataLen > sk.rcvbuf + (sk.rcvbuf >> 1)) {
      tcp.mibs.TcpExt.TCPRcvQDrop++;
      sk.ackPending |= ICSK_ACK_SCHED;
      return;
    }
    const data = dataLen ? Buffer.from(seg.buf.subarray(dataOff, dataOff + dataLen)) : EMPTY;
    tcpQueueRcv(sk, data, seq, seqAdd(seq, dataLen), false);
    sk.bytesReceived += dataLen;
    if (dataLen) tcpEventDataRecv(tcp, sk, seg.dataLen);
    if (fin) {
      sk.rcvNxt = seqAdd(sk.rcvNxt, 1);
      tcpFin(tcp, sk);
    }
    if (sk.ofoQueue.length) {
      tcpOfoQueue(tcp, sk);
      // RFC 5681 4.2: ACK at once when a hole is filled.
      if (!sk.ofoQueue.length) sk.ackPending |= ICSK_ACK_NOW;
      tcpUpdateSackBlocks(sk, sk.rcvNxt);
      if (!sk.ofoQueue.length) sk.numSacks = 0;
    }
    if (!sk.orphan) tcpWake(sk, POLLIN);
    return;
  }
  if (!after(seg.endSeq, sk.rcvNxt)) {
    // A retransmission of what we have: ACK at once and D-SACK it.
    tcp.mibs.TcpExt.DelayedACKLost++;
    tcpDsackSet(tcp, sk, seq, seg.endSeq);
    tcpEnterQuickackMode(sk, TCP_MAX_QUICKACKS);
    sk.ackPending |= ICSK_ACK_SCHED;
    return;
  }
  if (!before(seq, seqAdd(sk.rcvNxt, tcpReceiveWindow(sk)))) {
    // Beyond the window (e.g. a zero-window probe): just ACK.
    tcpEnterQuickackMode(sk, TCP_MAX_QUICKACKS);
    sk.ackPending |= ICSK_ACK_SCHED;
    return;
  }
  tcpDataQueueOfo(tcp, sk, seg, fin);
}
const EMPTY = Buffer.alloc(0);

/** tcp_fin: the peer finished sending. */
function tcpFin(tcp: TcpProto, sk: TcpSock): void {
  sk.ackPending |= ICSK_ACK_SCHED;
  sk.shutdown |= RCV_SHUTDOWN;
  sk.done = true;
  sk.finQueued = true;
  switch (sk.state) {
    case TCP_SYN_RECV:
    case TCP_ESTABLISHED:
      tcpSetState(tcp, sk, TCP_CLOSE_WAIT);
      // Delay the ACK of a FIN so it can ride on our own FIN (inet_csk_enter_pingpong_mode).
      sk.ackPingpong = tcp.sysctl.tcp_pingpong_thresh;
      break;
    case TCP_CLOSE_WAIT:
    case TCP_CLOSING:
    case TCP_LAST_ACK:
      break;
    case TCP_FIN_WAIT1:
      // Simultaneous close: ACK the FIN now, wait for ours to be acked.
      tcpSendAck(tcp, sk);
      tcpSetState(tcp, sk, TCP_CLOSING);
      break;
    case TCP_FIN_WAIT2:
      tcpSendAck(tcp, sk);
      tcpTimeWait(tcp, sk, TCP_TIME_WAIT, 0);
      break;
  }
  // Nothing can follow a FIN: the out-of-order queue is dropped.
  for (const s of sk.ofoQueue) sk.rmemAlloc -= s.data.length;
  sk.ofoQueue = [];
  sk.numSacks = 0;
  if (!sk.orphan) tcpWake(sk, sk.shutdown === SHUTDOWN_MASK || sk.state === TCP_CLOSE ? POLLIN | POLLHUP | POLLRDHUP : POLLIN | POLLRDHUP);
}

/** __tcp_ack_snd_check: ACK now, or schedule a delayed ACK. */
function tcpAckSndCheck(tcp: TcpProto, sk: TcpSock): void {
  if (!(sk.ackPending & ICSK_ACK_SCHED)) return;
  const fullFrames = ((sk.rcvNxt - sk.rcvWup) >>> 0) > sk.rcvMss;
  if (
    (fullFrames && (((sk.rcvNxt - sk.copiedSeq) >>> 0) < sk.rcvlowat || tcpSelectWindowRaw(sk) >= sk.rcvWnd)) ||
    tcpInQuickackMode(tcp, sk) ||
    sk.ackPending & ICSK_ACK_NOW ||
    sk.ofoQueue.length
  ) {
    tcpSendAck(tcp, sk);
    return;
  }
  tcpSendDelayedAck(tcp, sk);
}

/** tcp_new_space / sk_stream_write_space: wake a writer once space reaches the threshold. */
export function tcpCheckSpace(tcp: TcpProto, sk: TcpSock): void {
  if (!(sk.userlocks & SOCK_SNDBUF_LOCK)) tcpSndbufExpand(tcp, sk);
  if (!sk.noSpace) return;
  if (skStreamIsWriteable(sk, 1)) {
    sk.noSpace = false;
    tcpWake(sk, POLLOUT);
  }
}

/** __sk_stream_is_writeable: free space >= half of what is queued, and under notsent_lowat. */
export function skStreamIsWriteable(sk: TcpSock, wake: number): boolean {
  const wspace = sk.sndbuf - sk.wmemQueued;
  const minWspace = sk.wmemQueued >> 1;
  if (wspace < minWspace) return false;
  if (sk.wmemQueued >= sk.sndbuf) return false;
  const notsent = (sk.writeSeq - sk.sndNxt) >>> 0;
  const lowat = sk.notsentLowat || 0xffffffff;
  return notsent * 2 ** wake < lowat;
}

/** tcp_sndbuf_expand: room for two windows' worth of segments, as cwnd grows (unless SO_SNDBUF was set). */
export function tcpSndbufExpand(tcp: TcpProto, sk: TcpSock): void {
  const mss = Math.max(sk.advmss, sk.mssCache);
  let perMss = mss + 320 + 576;
  perMss = 2 ** Math.ceil(Math.log2(perMss));
  const nrSegs = Math.max(TCP_INIT_CWND, sk.sndCwnd, tcp.sysctl.tcp_reordering + 1);
  const sndmem = 2 * nrSegs * perMss;
  if (sk.sndbuf < sndmem) sk.sndbuf = Math.min(sndmem, tcp.sysctl.tcp_wmem[2]);
}

/** tcp_data_snd_check: send what the new ACK allows, then wake writers. */
function tcpDataSndCheck(tcp: TcpProto, sk: TcpSock): void {
  if (sk.sendHead) {
    if (tcpWriteXmit(tcp, sk, tcpCurrentMss(sk), sk.nonagle, false)) tcpCheckProbeTimer(tcp, sk);
  }
  tcpCheckSpace(tcp, sk);
}

// --- established and the state machine ---------------------------------------------

/** tcp_rcv_established (there is no separate header-prediction fast path). */
export function tcpRcvEstablished(tcp: TcpProto, sk: TcpSock, seg: TcpSegment): void {
  tcpRcvStateProcess(tcp, sk, seg);
}

/** tcp_rcv_state_process for every state but LISTEN, SYN_SENT and TIME_WAIT. */
export function tcpRcvStateProcess(tcp: TcpProto, sk: TcpSock, seg: TcpSegment): void {
  const o = tcp.opts;
  tcpParseOptions(seg, o, true);
  sk.segsIn++;
  if (seg.dataLen) sk.dataSegsIn++;

  if (sk.state === TCP_CLOSE) return;
  if (!tcpValidateIncoming(tcp, sk, seg)) return;
  if (!(seg.flags & TCPHDR_ACK)) {
    // RFC 9293: no ACK, drop (the "validate/established-no-flags" behaviour).
    return;
  }
  const acceptable = tcpAck(tcp, sk, seg, FLAG_UPDATE_TS_RECENT) > 0;
  if (!acceptable) {
    if (sk.state === TCP_SYN_RECV) return;
    // Linux drops an ACK of unsent data without answering in ESTABLISHED.
    if (after(seg.ack, sk.sndNxt)) {
      tcpSendChallengeAck(tcp, sk);
      return;
    }
  }
  if (o.sawTstamp && sk.tstampOk) tcpReplaceTsRecent(tcp, sk, o, seg.seq);

  switch (sk.state) {
    case TCP_SYN_RECV:
      // Simultaneous open completes.
      if (!acceptable) return;
      sk.sndUna = seg.ack;
      sk.sndWnd = seg.window * 2 ** sk.sndWscale;
      sk.sndWl1 = seg.seq;
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
      {
        // An orphan waits for the peer's FIN at most tcp_fin_timeout.
        const tmo = tcpFinTime(tcp, sk);
        if (seg.flags & TCPHDR_FIN || tmo > TCP_TIMEWAIT_LEN) {
          tcp.time.timers.mod(sk.keepaliveTimer, tcp.now() + Math.max(tmo - TCP_TIMEWAIT_LEN, 0) || tcp.now() + tmo);
        } else {
          tcpTimeWait(tcp, sk, TCP_FIN_WAIT2, tmo);
          return;
        }
      }
      break;
    case TCP_CLOSING:
      if (sk.sndUna === sk.writeSeq) {
        tcpTimeWait(tcp, sk, TCP_TIME_WAIT, 0);
        return;
      }
      break;
    case TCP_LAST_ACK:
      if (sk.sndUna === sk.writeSeq) {
        tcpDone(tcp, sk);
        return;
      }
      break;
  }

  // Step 7: the segment text.
  const st = sk.state;
  const afterPeerFin = st === TCP_CLOSE_WAIT || st === TCP_CLOSING || st === TCP_LAST_ACK;
  if (afterPeerFin && !before(seg.seq, sk.rcvNxt)) {
    // Nothing new can follow the peer's FIN: ignore it.
  } else if (afterPeerFin || st === TCP_FIN_WAIT1 || st === TCP_FIN_WAIT2 || st === TCP_ESTABLISHED) {
    // New data for a socket that will read no more: reset (tcp_rcv_state_process, as Linux).
    const finBit = seg.flags & TCPHDR_FIN ? 1 : 0;
    if (st !== TCP_ESTABLISHED && sk.shutdown & RCV_SHUTDOWN && seg.endSeq !== seg.seq && after(seqAdd(seg.endSeq, -finBit), sk.rcvNxt)) {
      tcp.mibs.TcpExt.TCPAbortOnData++;
      tcpReset(tcp, sk);
      return;
    }
    tcpDataQueue(tcp, sk, seg);
  }
  if (sk.state !== TCP_CLOSE) {
    tcpDataSndCheck(tcp, sk);
    tcpAckSndCheck(tcp, sk);
  }
}

/** tcp_fin_time: how long an orphan may sit in FIN_WAIT2 (at least 3.5 RTO). */
export function tcpFinTime(tcp: TcpProto, sk: TcpSock): number {
  const finTimeout = tcp.sysctl.tcp_fin_timeout;
  const rto = sk.rto;
  return Math.max(finTimeout, ((rto << 2) - (rto >> 1)));
}

/**
 * tcp_rcv_synsent_state_process: the answer to our SYN. Returns true if
 * the segment was consumed (the caller then returns).
 */
export function tcpRcvSynsentStateProcess(tcp: TcpProto, sk: TcpSock, seg: TcpSegment): void {
  const o = tcp.opts;
  tcpParseOptions(seg, o, false);
  const flags = seg.flags;
  if (flags & TCPHDR_ACK) {
    // RFC 9293: an ACK of something we never sent gets a reset (unless it is one).
    if (!after(seg.ack, sk.iss) || after(seg.ack, sk.sndNxt)) {
      if (!(flags & TCPHDR_RST)) tcp.sendResetFor(seg);
      return;
    }
    if (o.sawTstamp && o.rcvTsecr && sk.tstampOk && ((o.rcvTsecr - sk.rcvTsecrMin) | 0) < 0) {
      tcp.mibs.TcpExt.PAWSEstab++;
      return;
    }
    if (flags & TCPHDR_RST) {
      tcpReset(tcp, sk);
      return;
    }
    if (!(flags & TCPHDR_SYN)) return;

    // SYN-ACK: the connection is established.
    sk.irs = seg.seq;
    sk.rcvNxt = seqAdd(seg.seq, 1);
    sk.rcvWup = sk.rcvNxt;
    sk.copiedSeq = sk.rcvNxt;
    sk.sndWl1 = seg.seq;
    sk.sndWnd = seg.window; // not scaled on a SYN
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
    if (sk.tstampOk) {
      tcpStoreTsRecent(tcp, sk, o);
    }
    if (o.mssClamp) sk.mssClamp = Math.min(sk.mssClamp, o.mssClamp);
    else sk.mssClamp = Math.min(sk.mssClamp, 536);
    if (sk.userMss && sk.userMss < sk.mssClamp) sk.mssClamp = sk.userMss;
    sk.maxWindow = sk.sndWnd;
    tcpAck(tcp, sk, seg, FLAG_NO_CHALLENGE_ACK);
    tcpSyncMss(sk, tcp.stack.dev.mtu);
    tcpFinishConnect(tcp, sk);
    // Linux ACKs the SYN-ACK at once (quick-ack mode at connection start).
    tcpEnterQuickackMode(sk, TCP_MAX_QUICKACKS);
    tcpSendAck(tcp, sk);
    tcpPushPendingFrames(tcp, sk);
    return;
  }
  if (flags & TCPHDR_RST) return;
  if (flags & TCPHDR_SYN) {
    // Simultaneous open (RFC 9293 3.5): SYN_RECV, answer with SYN-ACK.
    sk.irs = seg.seq;
    sk.rcvNxt = seqAdd(seg.seq, 1);
    sk.rcvWup = sk.rcvNxt;
    sk.copiedSeq = sk.rcvNxt;
    sk.sndWl1 = seg.seq;
    sk.sndWnd = seg.window;
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
    if (o.mssClamp) sk.mssClamp = Math.min(sk.mssClamp, o.mssClamp);
    tcpSyncMss(sk, tcp.stack.dev.mtu);
    tcpSetState(tcp, sk, TCP_SYN_RECV);
    tcp.sendSynackFor(sk);
  }
}

/** tcp_finish_connect: ESTABLISHED; tell the connecting caller. */
export function tcpFinishConnect(tcp: TcpProto, sk: TcpSock): void {
  tcpSetState(tcp, sk, TCP_ESTABLISHED);
  sk.rcvTstamp = tcp.now();
  if (sk.keepaliveOn) tcp.time.timers.mod(sk.keepaliveTimer, tcp.now() + (sk.keepaliveTime || tcp.sysctl.tcp_keepalive_time));
  if (!(sk.userlocks & SOCK_SNDBUF_LOCK)) tcpSndbufExpand(tcp, sk);
  tcpWake(sk, POLLOUT);
}

