/**
 * TCP_LINGER2 and TCP_DEFER_ACCEPT (do_tcp_setsockopt / do_tcp_getsockopt
 * in net/ipv4/tcp.c), and tcp_fin_time (include/net/tcp.h), which
 * TCP_LINGER2 sets: how long an orphan waits in FIN_WAIT2 (a negative
 * value: not at all, it is reset). TCP_DEFER_ACCEPT is kept as Linux keeps
 * it, a count of SYN-ACK retransmissions (secs_to_retrans); a bare ACK
 * completes no handshake until data comes or the count is reached
 * (tcp_check_req, reqsk_timer_handler).
 */
import type { TcpProto } from './tcp_proto.js';
import { TCP_TIMEOUT_INIT, type TcpSock } from './tcp_sock.js';
import { ENOPROTOOPT } from '../../uapi.js';

export const TCP_LINGER2 = 8;
export const TCP_DEFER_ACCEPT = 9;
/** TCP_FIN_TIMEOUT_MAX: 120 s. */
const TCP_FIN_TIMEOUT_MAX = 120_000;
const TCP_RTO_MAX_SECS = 120;

/** secs_to_retrans: the SYN-ACK retransmissions (1 s, doubling up to 120 s) that cover `seconds`. */
export function secsToRetrans(seconds: number, timeout: number, rtoMax: number): number {
  let res = 0;
  if (seconds > 0) {
    let period = timeout;
    res = 1;
    while (seconds > period && res < 255) {
      res++;
      timeout <<= 1;
      if (timeout > rtoMax) timeout = rtoMax;
      period += timeout;
    }
  }
  return res;
}

/** retrans_to_secs: the seconds `retrans` SYN-ACK timeouts span. */
export function retransToSecs(retrans: number, timeout: number, rtoMax: number): number {
  let period = 0;
  if (retrans > 0) {
    period = timeout;
    while (--retrans) {
      timeout <<= 1;
      if (timeout > rtoMax) timeout = rtoMax;
      period += timeout;
    }
  }
  return period;
}

/** do_tcp_setsockopt for TCP_LINGER2 and TCP_DEFER_ACCEPT (ENOPROTOOPT for other options). */
export function tcpSetsockoptLinger(sk: TcpSock, name: number, val: number): number {
  switch (name) {
    case TCP_LINGER2:
      // Seconds; negative: no FIN_WAIT2 at all; 0: net.ipv4.tcp_fin_timeout.
      sk.linger2 = val < 0 ? -1 : Math.min(val * 1000, TCP_FIN_TIMEOUT_MAX);
      return 0;
    case TCP_DEFER_ACCEPT:
      sk.deferAccept = secsToRetrans(val, TCP_TIMEOUT_INIT / 1000, TCP_RTO_MAX_SECS);
      return 0;
    default:
      return -ENOPROTOOPT;
  }
}

/** do_tcp_getsockopt for TCP_LINGER2 (seconds, -1) and TCP_DEFER_ACCEPT (seconds, rounded up to the retransmissions). */
export function tcpGetsockoptLinger(tcp: TcpProto, sk: TcpSock, name: number): number {
  switch (name) {
    case TCP_LINGER2:
      return sk.linger2 < 0 ? -1 : Math.floor((sk.linger2 || tcp.sysctl.tcp_fin_timeout) / 1000);
    case TCP_DEFER_ACCEPT:
      return sk.deferAccept ? retransToSecs(sk.deferAccept, TCP_TIMEOUT_INIT / 1000, TCP_RTO_MAX_SECS) : 0;
    default:
      return -ENOPROTOOPT;
  }
}

/** tcp_fin_time: how long an orphan may sit in FIN_WAIT2 (TCP_LINGER2 or tcp_fin_timeout, at least 3.5 RTO). */
export function tcpFinTime(tcp: TcpProto, sk: TcpSock): number {
  const finTimeout = sk.linger2 || tcp.sysctl.tcp_fin_timeout;
  const rto = sk.rto;
  return Math.max(finTimeout, (rto << 2) - (rto >> 1));
}
