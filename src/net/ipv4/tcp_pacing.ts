/**
 * TCP pacing, the earliest-departure-time model (the pacing parts of
 * net/ipv4/tcp_output.c and tcp_input.c): every skb leaves no earlier than
 * tcp_wstamp_ns, and sending one moves tcp_wstamp_ns on by the time its
 * bytes take at sk_pacing_rate. Who enforces the departure time depends on
 * sk_pacing_status: the fq stage on the device (SK_PACING_FQ, the skb
 * carries its time), or TCP itself (SK_PACING_NEEDED: BBR, or a
 * SO_MAX_PACING_RATE), which stops tcp_write_xmit while the time is in the
 * future and arms the pacing timer for it. With neither (CUBIC without fq,
 * Linux's default) the rate only sizes TSO packets.
 */
import type { TcpProto } from './tcp_proto.js';
import type { TcpSock } from './tcp_sock.js';
import { SK_PACING_NEEDED, SK_PACING_NONE } from '../core/sock.js';

/** A pacing rate as the u64 Linux reports (~0UL for "no limit"). */
export const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** The stack's clock (ms, fractional) in whole ns: tcp_clock_ns. */
export function tcpClockNs(tcp: TcpProto): number {
  return Math.round(tcp.now() * 1e6);
}

/** A rate field (Infinity = ~0UL) as the u64 Linux reports. */
export function pacingRateU64(rate: number): bigint {
  return rate === Infinity ? U64_MAX : BigInt(Math.trunc(rate));
}

/**
 * tcp_update_pacing_rate: pace at 200% of cwnd*mss/srtt in slow start
 * (cwnd below half of ssthresh), 120% after (the two ratios are sysctls),
 * using packets_out when it is above the cwnd; at most
 * sk_max_pacing_rate. Without an RTT sample yet the quotient is not divided
 * (Linux skips the do_div): an enormous rate, as good as none.
 */
export function tcpUpdatePacingRate(tcp: TcpProto, sk: TcpSock): void {
  const s = tcp.sysctl;
  const ratio = sk.sndCwnd < sk.sndSsthresh / 2 ? s.tcp_pacing_ss_ratio : s.tcp_pacing_ca_ratio;
  // mss * (USEC_PER_SEC / 100) << 3 * ratio * cwnd / srtt_us (srtt_us is <<3): bytes/s.
  let rate = sk.mssCache * 80_000 * ratio * Math.max(sk.sndCwnd, sk.packetsOut);
  if (sk.srttUs) rate = Math.floor(rate / Math.trunc(sk.srttUs));
  sk.pacingRate = Math.min(rate, sk.maxPacingRate);
}

/**
 * tcp_update_skb_after_send: an skb of `len` payload bytes went out at
 * tcp_wstamp_ns; with pacing on, the next may leave len/rate later (less
 * up to half of it for the time this one was late: OS jitter). Like sch_fq
 * the first ten segments of a connection are not paced.
 */
export function tcpUpdateSkbAfterSend(sk: TcpSock, len: number, priorWstampNs: number): void {
  if (sk.pacingStatus === SK_PACING_NONE) return;
  const rate = sk.pacingRate;
  if (rate === Infinity || !rate || sk.dataSegsOut < 10) return;
  let lenNs = Math.floor((len * 1e9) / rate);
  const credit = sk.wstampNs - priorWstampNs;
  lenNs -= Math.min(Math.floor(lenNs / 2), credit);
  sk.wstampNs += lenNs;
}

/** tcp_needs_internal_pacing: TCP enforces the departure times itself (no fq stage does). */
export function tcpNeedsInternalPacing(sk: TcpSock): boolean {
  return sk.pacingStatus === SK_PACING_NEEDED;
}

/**
 * tcp_pacing_check: with internal pacing, is the next departure time still
 * ahead? Then arm the pacing timer for it (once) and tell the caller to
 * stop sending.
 */
export function tcpPacingCheck(tcp: TcpProto, sk: TcpSock): boolean {
  if (sk.pacingStatus !== SK_PACING_NEEDED) return false;
  // The hrtimer is exact; a coarser timer (the daemon's) gets its slack: a departure that
  // close goes now, and the timer is set that much early (else every late wake-up, reset to
  // now by the next send, would slow the flow below its pacing rate).
  const slackNs = (tcp.time.timerSlack ?? 0) * 1e6;
  if (sk.wstampNs <= tcpClockNs(tcp) + slackNs) return false;
  if (!sk.pacingTimer.pending) tcp.time.timers.mod(sk.pacingTimer, (sk.wstampNs - slackNs) / 1e6);
  return true;
}
