/**
 * Packetization-layer path MTU discovery (RFC 4821), as Linux does it with
 * net.ipv4.tcp_mtu_probing: the MTU search range (icsk_mtup, tcp_mtup_init),
 * what an acknowledged probe (tcp_mtup_probe_success) or a lost one
 * (tcp_mtup_probe_failed) teaches, and black-hole detection when
 * retransmissions time out (tcp_timer.c's tcp_mtu_probing). The probe
 * itself is built and sent by tcp_output.ts (tcp_mtu_probe), where
 * tcp_write_xmit calls it.
 */
import type { TcpProto } from './tcp_proto.js';
import { TCP_HLEN } from '../../wire/tcp.js';
import { IP_HLEN } from '../../wire/ipv4.js';
import { IPV6_HLEN } from '../../wire/ipv6.js';
import type { TcpSock } from './tcp_sock.js';
import { tcpCurrentSsthresh, tcpMssToMtu, tcpMtuToMss, tcpSyncMss } from './tcp_output.js';
import { tcpSimpleRetransmit } from './tcp_recovery.js';

/** tcp_mtup_init: the search range, from tcp_base_mss up to the peer's MSS; on with tcp_mtu_probing 2. */
export function tcpMtupInit(tcp: TcpProto, sk: TcpSock): void {
  sk.mtupEnabled = tcp.sysctl.tcp_mtu_probing > 1;
  sk.mtupSearchHigh = sk.mssClamp + TCP_HLEN + (sk.ipv6 ? IPV6_HLEN : IP_HLEN);
  sk.mtupSearchLow = tcpMssToMtu(sk, tcp.sysctl.tcp_base_mss);
  sk.mtupProbeSize = 0;
  if (sk.mtupEnabled) sk.mtupProbeTimestamp = tcp.now();
}

/**
 * tcp_mtup_probe_success: the probe's size works. The cwnd keeps its
 * bytes at the larger segments, the search goes on above it, and the MSS
 * grows to it.
 */
export function tcpMtupProbeSuccess(tcp: TcpProto, sk: TcpSock): void {
  sk.priorSsthresh = tcpCurrentSsthresh(sk);
  sk.sndCwnd = Math.max(1, Math.floor((sk.sndCwnd * tcpMssToMtu(sk, sk.mssCache)) / sk.mtupProbeSize));
  sk.sndCwndCnt = 0;
  sk.sndCwndStamp = tcp.now();
  sk.sndSsthresh = tcpCurrentSsthresh(sk);
  sk.mtupSearchLow = sk.mtupProbeSize;
  sk.mtupProbeSize = 0;
  tcpSyncMss(sk, sk.pmtuCookie);
  tcp.mibs.TcpExt.TCPMTUPSuccess++;
}

/**
 * tcp_fastretrans_alert's case of a lost probe: the search stops below
 * its size (tcp_mtup_probe_failed), the cwnd gets back what sending it
 * took, and its data is resent at the current MSS (tcp_simple_retransmit)
 * without a reduction.
 */
export function tcpMtupProbeLost(tcp: TcpProto, sk: TcpSock): void {
  sk.mtupSearchHigh = sk.mtupProbeSize - 1;
  sk.mtupProbeSize = 0;
  tcp.mibs.TcpExt.TCPMTUPFail++;
  sk.sndCwnd++;
  tcpSimpleRetransmit(tcp, sk);
}

/**
 * tcp_mtu_probing (tcp_timer.c): retransmissions time out, perhaps into a
 * black hole: with tcp_mtu_probing on, start searching, or search from
 * half the size known to work (not below tcp_mtu_probe_floor).
 */
export function tcpMtuProbing(tcp: TcpProto, sk: TcpSock): void {
  const sys = tcp.sysctl;
  if (!sys.tcp_mtu_probing) return;
  if (!sk.mtupEnabled) {
    sk.mtupEnabled = true;
    sk.mtupProbeTimestamp = tcp.now();
  } else {
    let mss = tcpMtuToMss(sk, sk.mtupSearchLow) >> 1;
    mss = Math.min(sys.tcp_base_mss, mss);
    mss = Math.max(mss, sys.tcp_mtu_probe_floor, sys.tcp_min_snd_mss);
    sk.mtupSearchLow = tcpMssToMtu(sk, mss);
  }
  tcpSyncMss(sk, sk.pmtuCookie);
}
