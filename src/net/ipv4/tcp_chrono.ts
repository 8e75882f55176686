/**
 * TCP chronographs (tcp_chrono_* in net/ipv4/tcp_output.c): how long the
 * sender was busy, and of that how long the peer's receive window or our
 * send buffer held it back (TCP_INFO's tcpi_busy_time, tcpi_rwnd_limited,
 * tcpi_sndbuf_limited). One chrono runs at a time; a higher-numbered one
 * is "more interesting" and preempts a lower one.
 *
 * Time is counted in whole milliseconds of the stack's clock, the jiffies
 * of a HZ=1000 kernel, so the values reported are Linux's: multiples of
 * 1000 us.
 */
import type { TcpProto } from './tcp_proto.js';
import type { TcpSock } from './tcp_sock.js';

/** enum tcp_chrono. */
export const TCP_CHRONO_UNSPEC = 0;
/** Data queued (sent or not): the sender is active. */
export const TCP_CHRONO_BUSY = 1;
/** Data waits for the peer's receive window. */
export const TCP_CHRONO_RWND_LIMITED = 2;
/** Everything is sent and the writer waits for send-buffer space. */
export const TCP_CHRONO_SNDBUF_LIMITED = 3;
export type TcpChrono = 0 | 1 | 2 | 3;

/** tcp_jiffies32: the clock in whole ms, u32. */
function tcpJiffies32(tcp: TcpProto): number {
  return Math.floor(tcp.now()) >>> 0;
}

/** tcp_chrono_set: charge the running chrono up to now, then run `type` from now. */
function tcpChronoSet(tcp: TcpProto, sk: TcpSock, type: TcpChrono): void {
  const now = tcpJiffies32(tcp);
  if (sk.chronoType > TCP_CHRONO_UNSPEC) sk.chronoStat[sk.chronoType - 1] += (now - sk.chronoStart) >>> 0;
  sk.chronoStart = now;
  sk.chronoType = type;
}

/** tcp_chrono_start: `type` runs unless a more interesting chrono already does. */
export function tcpChronoStart(tcp: TcpProto, sk: TcpSock, type: TcpChrono): void {
  if (type > sk.chronoType) tcpChronoSet(tcp, sk, type);
}

/**
 * tcp_chrono_stop: the condition `type` ended. With nothing queued all
 * timing stops; otherwise, if `type` was the running chrono, the sender is
 * back to merely busy.
 */
export function tcpChronoStop(tcp: TcpProto, sk: TcpSock, type: TcpChrono): void {
  // tcp_rtx_and_write_queues_empty: one queue here, sent then unsent skbs.
  if (!sk.wqHead) {
    // Already stopped: nothing to charge, no clock to read (this runs on every transmit attempt).
    if (sk.chronoType !== TCP_CHRONO_UNSPEC) tcpChronoSet(tcp, sk, TCP_CHRONO_UNSPEC);
  } else if (type === sk.chronoType) tcpChronoSet(tcp, sk, TCP_CHRONO_BUSY);
}

/**
 * tcp_get_info_chrono_stats: each chrono's total in microseconds, the
 * running one counted up to now; busy time is all three together.
 */
export function tcpGetInfoChronoStats(tcp: TcpProto, sk: TcpSock): { busy: bigint; rwndLimited: bigint; sndbufLimited: bigint } {
  const stats = [0n, 0n, 0n, 0n];
  let total = 0n;
  for (let i = TCP_CHRONO_BUSY; i <= TCP_CHRONO_SNDBUF_LIMITED; i++) {
    let ms = sk.chronoStat[i - 1];
    if (i === sk.chronoType) ms += (tcpJiffies32(tcp) - sk.chronoStart) >>> 0;
    stats[i] = BigInt(ms) * 1000n;
    total += stats[i];
  }
  return { busy: total, rwndLimited: stats[TCP_CHRONO_RWND_LIMITED], sndbufLimited: stats[TCP_CHRONO_SNDBUF_LIMITED] };
}
