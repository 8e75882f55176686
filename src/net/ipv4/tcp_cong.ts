/**
 * Congestion control (net/ipv4/tcp_cong.c): Reno, the shape of the
 * kernel's tcp_congestion_ops (ssthresh, cong_avoid, undo_cwnd). CUBIC and
 * the pluggable interface come with TCP part 2.
 */
import type { TcpSock } from './tcp_sock.js';

/** tcp_is_cwnd_limited: grow only when the window, not the application, was the limit. */
export function tcpIsCwndLimited(sk: TcpSock): boolean {
  if (sk.sndCwnd < sk.sndSsthresh) return sk.sndCwnd < 2 * sk.maxPacketsOut;
  return sk.isCwndLimited;
}

/** tcp_slow_start: one segment per segment acked, up to ssthresh; returns the acks left over. */
export function tcpSlowStart(sk: TcpSock, acked: number): number {
  const cwnd = Math.min(sk.sndCwnd + acked, sk.sndSsthresh);
  acked -= cwnd - sk.sndCwnd;
  sk.sndCwnd = cwnd;
  return acked;
}

/** tcp_cong_avoid_ai: one segment per window of acks. */
export function tcpCongAvoidAi(sk: TcpSock, w: number, acked: number): void {
  if (sk.sndCwndCnt >= w) {
    sk.sndCwndCnt = 0;
    sk.sndCwnd++;
  }
  sk.sndCwndCnt += acked;
  if (sk.sndCwndCnt >= w) {
    const delta = Math.floor(sk.sndCwndCnt / w);
    sk.sndCwndCnt -= delta * w;
    sk.sndCwnd += delta;
  }
}

/** tcp_reno_cong_avoid. */
export function renoCongAvoid(sk: TcpSock, acked: number, _priorInFlight: number): void {
  if (!tcpIsCwndLimited(sk)) return;
  if (sk.sndCwnd < sk.sndSsthresh) {
    acked = tcpSlowStart(sk, acked);
    if (!acked) return;
  }
  tcpCongAvoidAi(sk, sk.sndCwnd, acked);
}

/** tcp_reno_ssthresh: half the window, at least two segments. */
export function renoSsthresh(sk: TcpSock): number {
  return Math.max(sk.sndCwnd >> 1, 2);
}

/** tcp_reno_undo_cwnd. */
export function renoUndoCwnd(sk: TcpSock): number {
  return Math.max(sk.sndCwnd, sk.priorCwnd);
}
