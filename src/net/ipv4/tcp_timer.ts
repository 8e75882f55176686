/**
 * TCP timers (net/ipv4/tcp_timer.c): retransmission (RTO, SYN, and the
 * zero-window probe that shares its timer), delayed ACK, keepalive (which
 * also ends orphaned FIN_WAIT2 sockets), and the give-up rules
 * (tcp_syn_retries with Linux's linear SYN timeouts, tcp_retries2 modelled
 * as a time budget, TCP_USER_TIMEOUT).
 */
import { tcpFastopenActiveDetectBlackhole } from './tcp_fastopen_active.js';
import type { TcpProto } from './tcp_proto.js';
import {
  ICSK_ACK_SCHED,
  ICSK_ACK_TIMER,
  ICSK_TIME_LOSS_PROBE,
  ICSK_TIME_PROBE0,
  ICSK_TIME_REO_TIMEOUT,
  ICSK_TIME_RETRANS,
  TCP_ATO_MIN,
  TCP_CA_Loss,
  TCP_CA_Recovery,
  TCP_TIMEOUT_INIT,
  TCP_RESOURCE_PROBE_INTERVAL,
  TCP_RTO_MAX,
  TCP_RTO_MIN,
  TCP_TIMEOUT_MIN,
  TCP_TIMEWAIT_LEN,
  type TcpSock,
  type TcpTimerFns,
} from './tcp_sock.js';
import { TCP_RETRANS } from './tcp_trace.js';
import { tcpPacketsInFlight, tcpRetransmitSkb, tcpSendAck, tcpSendActiveReset, tcpSendLossProbe, tcpWriteWakeup, tcpWriteXmit, tcpXmitRetransmitQueue } from './tcp_output.js';
import { tcpCurrentMss } from './tcp_mss.js';
import { tcpEnterLoss, tcpIsRack, tcpRackReoTimeout } from './tcp_recovery.js';
import { tcpCheckOom, tcpDone, tcpTimeWait } from './tcp.js';
import { tcpFastopenSynackTimer } from './tcp_fastopen.js';
import { tcpFinTime } from './tcp_sockopt.js';
import { tcpMtuProbing } from './tcp_mtu_probe.js';
import { TCP_CLOSE, TCP_CLOSE_WAIT, TCP_CLOSING, TCP_ESTABLISHED, TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_LAST_ACK, TCP_LISTEN, TCP_SYN_RECV, TCP_SYN_SENT } from '../core/sock.js';
import { ETIMEDOUT } from '../../uapi.js';

/** tcp_model_timeout: how long `boundary` exponential retransmissions take from rto_base. */
function tcpModelTimeout(boundary: number, rtoBase: number): number {
  const linearBackoffThresh = Math.floor(Math.log2(TCP_RTO_MAX / rtoBase));
  if (boundary <= linearBackoffThresh) return (2 ** (boundary + 1) - 1) * rtoBase;
  return (2 ** (linearBackoffThresh + 1) - 1) * rtoBase + (boundary - linearBackoffThresh) * TCP_RTO_MAX;
}

/** retransmits_timed_out: the retransmission episode has used its time budget. */
function retransmitsTimedOut(tcp: TcpProto, sk: TcpSock, boundary: number, timeout: number): boolean {
  if (!sk.retransmits) return false;
  const start = sk.retransStamp;
  if (!start) return false;
  // The handshake's budget counts from the initial RTO (tcp_timeout_init), the rest from TCP_RTO_MIN.
  const t = timeout || tcpModelTimeout(boundary, sk.state === TCP_SYN_SENT || sk.state === TCP_SYN_RECV ? TCP_TIMEOUT_INIT : TCP_RTO_MIN);
  return tcp.now() - start >= t;
}

/** tcp_write_err: give up with the soft error or ETIMEDOUT. */
function tcpWriteErr(tcp: TcpProto, sk: TcpSock): void {
  sk.err = sk.errSoft || ETIMEDOUT;
  tcp.mibs.TcpExt.TCPAbortOnTimeout++;
  tcpDone(tcp, sk);
}

/** tcp_orphan_retries: 0 means 8, and a dead-looking orphan gets none. */
function tcpOrphanRetries(tcp: TcpProto, alive: boolean): number {
  const r = tcp.sysctl.tcp_orphan_retries;
  if (r === 0 && alive) return 8;
  return r;
}

/**
 * tcp_out_of_resources: an orphan's timer checks tcp_check_oom, the count
 * of orphans weighing double for one idle past twice TCP_RTO_MAX (or
 * without `doReset`) and again for one with a soft error. Given up: RST if
 * it sent lately or the window is shut, the connection done
 * (TCPAbortOnMemory). True if it was.
 */
function tcpOutOfResources(tcp: TcpProto, sk: TcpSock, doReset: boolean): boolean {
  let shift = 0;
  const idle = tcp.now() - sk.lsndtime;
  if (idle > 2 * TCP_RTO_MAX || !doReset) shift++;
  if (sk.errSoft) shift++;
  if (!tcpCheckOom(tcp, sk, shift)) return false;
  if (idle <= TCP_TIMEWAIT_LEN || (!sk.sndWnd && !sk.packetsOut)) doReset = true;
  if (doReset) tcpSendActiveReset(tcp, sk);
  tcpDone(tcp, sk);
  tcp.mibs.TcpExt.TCPAbortOnMemory++;
  return true;
}

/** tcp_write_timeout: true if the connection was given up. */
function tcpWriteTimeout(tcp: TcpProto, sk: TcpSock): boolean {
  let expired: boolean;
  if (sk.state === TCP_SYN_SENT || sk.state === TCP_SYN_RECV) {
    const retryUntil = sk.synRetries || tcp.sysctl.tcp_syn_retries;
    let max = retryUntil;
    if (sk.state === TCP_SYN_SENT) max += tcp.sysctl.tcp_syn_linear_timeouts;
    expired = sk.retransmits >= max || retransmitsTimedOut(tcp, sk, retryUntil, sk.userTimeout);
  } else {
    // Black hole detection: segments this size may never arrive (tcp_mtu_probing).
    if (retransmitsTimedOut(tcp, sk, tcp.sysctl.tcp_retries1, 0)) tcpMtuProbing(tcp, sk);
    let retryUntil = tcp.sysctl.tcp_retries2;
    if (sk.orphan) {
      const alive = sk.rto < TCP_RTO_MAX;
      retryUntil = tcpOrphanRetries(tcp, alive);
      if (tcpOutOfResources(tcp, sk, alive || !retransmitsTimedOut(tcp, sk, retryUntil, 0))) return true;
    }
    expired = retransmitsTimedOut(tcp, sk, retryUntil, sk.userTimeout);
  }
  tcpFastopenActiveDetectBlackhole(tcp, sk, expired);
  if (expired) {
    tcpWriteErr(tcp, sk);
    return true;
  }
  return false;
}

/** tcp_clamp_rto_to_user_timeout. */
function clampRtoToUserTimeout(tcp: TcpProto, sk: TcpSock): number {
  if (!sk.userTimeout || !sk.retransStamp) return sk.rto;
  const remaining = sk.userTimeout - (tcp.now() - sk.retransStamp);
  if (remaining <= 0) return 1;
  return Math.min(sk.rto, remaining);
}

/**
 * tcp_clamp_probe0_to_user_timeout: the next zero-window probe timer, no
 * later than TCP_USER_TIMEOUT after the probing began.
 */
export function tcpClampProbe0ToUserTimeout(tcp: TcpProto, sk: TcpSock, when: number): number {
  if (!sk.userTimeout || !sk.probesTstamp) return when;
  const remaining = sk.userTimeout - Math.max(0, tcp.now() - sk.probesTstamp);
  // Past it already (a late timer): as Linux's unsigned arithmetic, the unclamped time.
  if (remaining < 0) return when;
  return Math.min(Math.max(remaining, TCP_TIMEOUT_MIN), when);
}

/**
 * tcp_rtx_probe0_timed_out: with data in flight under a window shrunk to
 * nothing, retransmissions are window probes; give up once the peer has
 * been silent and we have been retransmitting for 2 * TCP_RTO_MAX each (or
 * TCP_USER_TIMEOUT, which a zero-window ACK does not put off).
 */
function tcpRtxProbe0TimedOut(tcp: TcpProto, sk: TcpSock, rtxDelta: number): boolean {
  let timeout = TCP_RTO_MAX * 2;
  if (sk.userTimeout) {
    if (rtxDelta > sk.userTimeout) return true;
    timeout = Math.min(timeout, sk.userTimeout);
  }
  if (tcp.now() - sk.rcvTstamp <= timeout) return false;
  return rtxDelta > timeout;
}

/** tcp_retransmit_timer: an RTO. */
function tcpRetransmitTimer(tcp: TcpProto, sk: TcpSock): void {
  // A Fast Open child's handshake is open: the timer resends its SYN-ACK (tcp_fastopen_synack_timer).
  if (sk.fastopenRsk) {
    if (!tcpFastopenSynackTimer(tcp, sk, sk.fastopenRsk, tcpEnterLoss)) tcpWriteErr(tcp, sk);
    return;
  }
  if (!sk.packetsOut || !sk.wqHead) return;
  const head = sk.wqHead;
  if (!sk.sndWnd && !sk.orphan && sk.state !== TCP_SYN_SENT && sk.state !== TCP_SYN_RECV) {
    // The peer shrank its window to nothing: our retransmissions probe it.
    if (tcpRtxProbe0TimedOut(tcp, sk, tcp.now() - (sk.retransStamp || head.sentAt))) {
      tcpWriteErr(tcp, sk);
      return;
    }
    tcpEnterLoss(tcp, sk);
    tcpRetransmitSkb(tcp, sk, head, 1, TCP_RETRANS.RTO);
  } else {
    if (tcpWriteTimeout(tcp, sk)) return;
    tcp.mibs.TcpExt.TCPTimeouts++;
    if (sk.retransmits === 0) {
      if (sk.caState === TCP_CA_Recovery) {
        if (sk.sackOk) tcp.mibs.TcpExt.TCPSackRecoveryFail++;
        else tcp.mibs.TcpExt.TCPRenoRecoveryFail++;
      } else if (sk.caState === TCP_CA_Loss) {
        tcp.mibs.TcpExt.TCPLossFailures++;
      }
      // tcp_update_rto_stats: a new RTO recovery episode starts.
      sk.totalRtoRecoveries++;
      sk.rtoStamp = tcp.now();
    }
    tcpEnterLoss(tcp, sk);
    sk.retransmits++;
    sk.totalRto++;
    if (tcpRetransmitSkb(tcp, sk, head, 1, TCP_RETRANS.RTO) !== 0) {
      // Could not send (no route, no room, the qdisc dropped it): try again soon without backing off.
      sk.pending = ICSK_TIME_RETRANS;
      tcp.time.timers.mod(sk.retransmitTimer, tcp.now() + Math.min(sk.rto, TCP_RESOURCE_PROBE_INTERVAL));
      return;
    }
  }
  // Exponential backoff, except for the first SYN timeouts (tcp_syn_linear_timeouts).
  if (sk.state !== TCP_SYN_SENT || sk.totalRto > tcp.sysctl.tcp_syn_linear_timeouts) {
    sk.backoff++;
    sk.rto = Math.min(sk.rto * 2, TCP_RTO_MAX);
  }
  sk.pending = ICSK_TIME_RETRANS;
  tcp.time.timers.mod(sk.retransmitTimer, tcp.now() + clampRtoToUserTimeout(tcp, sk));
}

/**
 * tcp_probe_timer: the zero-window probe. Answers keep the connection open
 * as long as they come (RFC 1122 4.2.2.17: tcp_ack resets probesOut);
 * tcp_retries2 unanswered probes end it, and so does TCP_USER_TIMEOUT
 * counted from the first probe timer (probesTstamp), answered or not.
 */
function tcpProbeTimer(tcp: TcpProto, sk: TcpSock): void {
  if (sk.packetsOut || !sk.sendHead) {
    sk.probesOut = 0;
    sk.probesTstamp = 0;
    return;
  }
  const now = tcp.now();
  if (!sk.probesTstamp) sk.probesTstamp = now;
  else if (sk.userTimeout && now - sk.probesTstamp >= sk.userTimeout) {
    tcpWriteErr(tcp, sk);
    return;
  }
  let maxProbes = tcp.sysctl.tcp_retries2;
  if (sk.orphan) {
    const alive = Math.min(Math.max(sk.rto, TCP_RTO_MIN) * 2 ** sk.backoff, TCP_RTO_MAX) < TCP_RTO_MAX;
    maxProbes = tcpOrphanRetries(tcp, alive);
    if (!alive && sk.backoff >= maxProbes) {
      tcpWriteErr(tcp, sk);
      return;
    }
    if (tcpOutOfResources(tcp, sk, true)) return;
  }
  if (sk.probesOut >= maxProbes) {
    tcpWriteErr(tcp, sk);
    return;
  }
  tcpSendProbe0(tcp, sk);
}

/** tcp_send_probe0: a window probe, and the probe timer backed off (and clamped to TCP_USER_TIMEOUT). */
function tcpSendProbe0(tcp: TcpProto, sk: TcpSock): void {
  const err = tcpWriteWakeup(tcp, sk);
  if (sk.packetsOut || !sk.sendHead) {
    // Data went out (the window opened): the RTO takes over.
    sk.probesOut = 0;
    sk.backoff = 0;
    sk.probesTstamp = 0;
    return;
  }
  sk.probesOut++;
  let timeout: number;
  if (err <= 0) {
    // Sent, or failed for a reason other than local congestion (-ENETDOWN: the
    // link is gone): backed off as an unanswered probe, so tcp_retries2 probes
    // span minutes, not seconds, and an outage of the link is survived.
    if (sk.backoff < tcp.sysctl.tcp_retries2) sk.backoff++;
    timeout = Math.min(Math.max(sk.rto, TCP_RTO_MIN) * 2 ** sk.backoff, TCP_RTO_MAX);
  } else {
    // Dropped by local congestion (Linux's NET_XMIT_DROP, positive): try again soon, conservatively.
    timeout = TCP_RESOURCE_PROBE_INTERVAL;
  }
  sk.pending = ICSK_TIME_PROBE0;
  tcp.time.timers.mod(sk.retransmitTimer, tcp.now() + tcpClampProbe0ToUserTimeout(tcp, sk, timeout));
}

/** tcp_write_timer: whichever job the retransmit timer holds. */
export function tcpWriteTimer(tcp: TcpProto, sk: TcpSock): void {
  if (sk.state === TCP_CLOSE || sk.state === TCP_LISTEN) return;
  const what = sk.pending;
  switch (what) {
    case ICSK_TIME_REO_TIMEOUT:
      tcpRackReoTimeout(tcp, sk);
      break;
    case ICSK_TIME_LOSS_PROBE:
      tcpSendLossProbe(tcp, sk);
      break;
    case ICSK_TIME_RETRANS:
      sk.pending = 0;
      tcpRetransmitTimer(tcp, sk);
      break;
    case ICSK_TIME_PROBE0:
      sk.pending = 0;
      tcpProbeTimer(tcp, sk);
      break;
  }
}

/** tcp_delack_timer_handler: the delayed ACK is due. */
export function tcpDelackTimer(tcp: TcpProto, sk: TcpSock): void {
  if (sk.state === TCP_CLOSE || !(sk.ackPending & ICSK_ACK_TIMER)) return;
  sk.ackPending &= ~ICSK_ACK_TIMER;
  if (!(sk.ackPending & ICSK_ACK_SCHED)) return;
  if (sk.ackPingpong < tcp.sysctl.tcp_pingpong_thresh) {
    // The delayed ACK was missed: inflate the ACK timeout.
    sk.ato = Math.min(sk.ato * 2, sk.rto);
  } else {
    // Interactive mode misjudged: leave it and deflate.
    sk.ackPingpong = 0;
    sk.ato = TCP_ATO_MIN;
  }
  tcpSendAck(tcp, sk);
  tcp.mibs.TcpExt.DelayedACKs++;
}

/** tcp_keepalive_timer (also the FIN_WAIT2 timeout of orphans). */
export function tcpKeepaliveTimer(tcp: TcpProto, sk: TcpSock): void {
  const now = tcp.now();
  if (sk.state === TCP_FIN_WAIT2 && sk.orphan) {
    // TCP_LINGER2 < 0: no wait, the reset below.
    const tmo = sk.linger2 < 0 ? 0 : tcpFinTime(tcp, sk) - TCP_TIMEWAIT_LEN;
    if (tmo > 0) {
      tcpTimeWait(tcp, sk, TCP_FIN_WAIT2, tmo);
      return;
    }
    tcpSendActiveReset(tcp, sk);
    tcpDone(tcp, sk);
    return;
  }
  if (!sk.keepaliveOn || (sk.state !== TCP_ESTABLISHED && sk.state !== TCP_CLOSE_WAIT && sk.state !== TCP_FIN_WAIT2)) return;
  const keepTime = sk.keepaliveTime || tcp.sysctl.tcp_keepalive_time;
  const keepIntvl = sk.keepaliveIntvl || tcp.sysctl.tcp_keepalive_intvl;
  const keepProbes = sk.keepaliveProbes || tcp.sysctl.tcp_keepalive_probes;
  let next = keepTime;
  if (!sk.packetsOut && !sk.sendHead) {
    // keepalive_time_elapsed: since the last thing we heard.
    const elapsed = now - Math.max(sk.rcvTstamp, sk.lrcvtime);
    if (elapsed >= keepTime) {
      if ((sk.userTimeout && elapsed >= sk.userTimeout && sk.probesOut > 0) || (!sk.userTimeout && sk.probesOut >= keepProbes)) {
        tcpSendActiveReset(tcp, sk);
        tcpWriteErr(tcp, sk);
        return;
      }
      if (tcpWriteWakeup(tcp, sk) <= 0) {
        tcp.mibs.TcpExt.TCPKeepAlive++;
        sk.probesOut++;
        next = keepIntvl;
      } else {
        next = TCP_RESOURCE_PROBE_INTERVAL;
      }
    } else {
      next = keepTime - elapsed;
    }
  }
  tcp.time.timers.mod(sk.keepaliveTimer, now + next);
}

/**
 * tcp_pace_kick, then tcp_tsq_write: the departure time internal pacing
 * waited for has come; send what is due (lost segments first) in the
 * states that send data.
 */
export function tcpPacingTimer(tcp: TcpProto, sk: TcpSock): void {
  const st = sk.state;
  if (st !== TCP_ESTABLISHED && st !== TCP_FIN_WAIT1 && st !== TCP_CLOSING && st !== TCP_CLOSE_WAIT && st !== TCP_LAST_ACK) return;
  if (sk.lostOut > sk.retransOut && sk.sndCwnd > tcpPacketsInFlight(sk)) {
    tcpXmitRetransmitQueue(tcp, sk, sk.caState === TCP_CA_Loss ? TCP_RETRANS.RTO : tcpIsRack(tcp, sk) ? TCP_RETRANS.RACK : TCP_RETRANS.FAST);
  }
  tcpWriteXmit(tcp, sk, tcpCurrentMss(sk), sk.nonagle, false);
}

/** tcp_init_xmit_timers' handlers for this stack, made once: every socket's timers call them with the socket. */
export function tcpTimerFns(tcp: TcpProto): TcpTimerFns {
  return (tcp.timerFns ??= {
    retransmit: (sk) => tcpWriteTimer(tcp, sk),
    delack: (sk) => tcpDelackTimer(tcp, sk),
    keepalive: (sk) => tcpKeepaliveTimer(tcp, sk),
    pacing: (sk) => tcpPacingTimer(tcp, sk),
  });
}
