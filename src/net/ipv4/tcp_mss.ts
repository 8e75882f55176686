/**
 * The segment size (net/ipv4/tcp_output.c's MSS half): the header length
 * with options (tcp_header_len), tcp_sync_mss from the path MTU and the
 * peer's MSS (capped by PLPMTUD's search while it runs), tcp_current_mss,
 * the MTU/MSS conversions PLPMTUD uses, and the TSO size goal. Kept apart
 * from tcp_output.ts, which re-exports it.
 */
import { TCP_HLEN, TCPOLEN_SACK_BASE_ALIGNED, TCPOLEN_SACK_PERBLOCK, TCPOLEN_TSTAMP_ALIGNED } from '../../wire/tcp.js';
import { IP_HLEN } from '../../wire/ipv4.js';
import { IPV6_HLEN } from '../../wire/ipv6.js';
import type { TcpProto } from './tcp_proto.js';
import { GSO_MAX_SEGS, GSO_MAX_SIZE, MAX_TCP_HEADER, TCP_MIN_MSS, TCP_MSS_DEFAULT, type TcpSock } from './tcp_sock.js';
import { TCPOLEN_MD5SIG_ALIGNED } from './tcp_md5.js';

export const MAX_TCP_OPTION_SPACE = 40;

/** The TCP header length of established segments (tp->tcp_header_len). */
export function tcpHeaderLen(sk: TcpSock): number {
  return TCP_HLEN + (sk.tstampOk ? TCPOLEN_TSTAMP_ALIGNED : 0) + (sk.md5Hdr ? TCPOLEN_MD5SIG_ALIGNED : 0);
}

/** tcp_bound_to_half_wnd. */
function boundToHalfWnd(sk: TcpSock, pktsize: number): number {
  const cutoff = sk.maxWindow > TCP_MSS_DEFAULT ? sk.maxWindow >> 1 : sk.maxWindow;
  if (cutoff && pktsize > cutoff) return Math.max(cutoff, 68 - tcpHeaderLen(sk));
  return pktsize;
}

/** tcp_sync_mss: the MSS for the path MTU, the peer's MSS and the user's limit. */
export function tcpSyncMss(sk: TcpSock, pmtu: number): number {
  if (sk.mtupSearchHigh > pmtu) sk.mtupSearchHigh = pmtu;
  sk.pmtuCookie = pmtu;
  // tcp_mtu_to_mss: icsk_af_ops->net_header_len is 40 over IPv6.
  let mss = pmtu - (sk.ipv6 ? IPV6_HLEN : IP_HLEN) - TCP_HLEN;
  if (mss > sk.mssClamp) mss = sk.mssClamp;
  mss -= tcpHeaderLen(sk) - TCP_HLEN;
  mss = boundToHalfWnd(sk, mss);
  if (mss < TCP_MIN_MSS - 40) mss = TCP_MIN_MSS - 40;
  // While PLPMTUD searches, segments stay at the size known to work (search_low).
  if (sk.mtupEnabled) mss = Math.min(mss, tcpMtuToMss(sk, sk.mtupSearchLow));
  sk.mssCache = mss;
  return mss;
}

/** tcp_mtu_to_mss: the MSS of a path MTU, with this connection's header options (at least tcp_min_snd_mss). */
export function tcpMtuToMss(sk: TcpSock, pmtu: number): number {
  let mss = pmtu - (sk.ipv6 ? IPV6_HLEN : IP_HLEN) - TCP_HLEN;
  if (mss > sk.mssClamp) mss = sk.mssClamp;
  mss = Math.max(mss, sk.netSysctl.tcp_min_snd_mss);
  return mss - (tcpHeaderLen(sk) - TCP_HLEN);
}

/** tcp_mss_to_mtu: the path MTU a segment of `mss` bytes needs. */
export function tcpMssToMtu(sk: TcpSock, mss: number): number {
  return mss + tcpHeaderLen(sk) + (sk.ipv6 ? IPV6_HLEN : IP_HLEN);
}

/** tcp_current_mss: the MSS of the next segment, less any SACK blocks it carries. */
export function tcpCurrentMss(sk: TcpSock): number {
  let mss = sk.mssCache;
  if (sk.numSacks || sk.dsack) {
    const blocks = sk.numSacks + (sk.dsack ? 1 : 0);
    // The blocks that fit beside the timestamp and an MD5 signature (tcp_established_options).
    const n = Math.min(blocks, Math.floor((MAX_TCP_OPTION_SPACE - (tcpHeaderLen(sk) - TCP_HLEN) - TCPOLEN_SACK_BASE_ALIGNED) / TCPOLEN_SACK_PERBLOCK));
    if (n > 0) mss -= TCPOLEN_SACK_BASE_ALIGNED + n * TCPOLEN_SACK_PERBLOCK;
  }
  return mss;
}

/**
 * tcp_tso_autosize: sk_pacing_rate >> sk_pacing_shift bytes (about a
 * millisecond at the pacing rate; everything while there is no rate), plus
 * up to a full GSO packet on short RTTs (tcp_tso_rtt_log = 9: 64 KB below
 * 512 us of min RTT, half that below 1 ms, ...), at least `minTsoSegs`.
 */
export function tcpTsoAutosize(sk: TcpSock, mssNow: number, minTsoSegs: number): number {
  let bytes = Math.min(Math.floor(sk.pacingRate / 2 ** sk.pacingShift), GSO_MAX_SIZE);
  // No RTT sample yet: min_rtt is ~0U, which adds nothing.
  const r = sk.minRttUs > 0 ? Math.floor(sk.minRttUs / 512) : 32;
  if (r < 32) bytes += Math.floor(GSO_MAX_SIZE / 2 ** r);
  bytes = Math.min(bytes, GSO_MAX_SIZE);
  return Math.max(Math.floor(bytes / mssNow), minTsoSegs);
}

/** tcp_tso_segs: the TSO packet size goal, in segments; the algorithm may set the floor (min_tso_segs), else the sysctl does. */
export function tcpTsoSegs(tcp: TcpProto, sk: TcpSock, mssNow: number): number {
  return tcpTsoAutosize(sk, mssNow, sk.caOps.minTsoSegs ? sk.caOps.minTsoSegs(sk) : tcp.sysctl.tcp_min_tso_segs);
}

/** tcp_xmit_size_goal: how big a write-queue skb may grow. */
export function tcpXmitSizeGoal(sk: TcpSock, mssNow: number): number {
  if (sk.md5sigInfo) return mssNow; // no GSO with MD5 keys (sk_gso_disable): one segment per skb
  const newSizeGoal = boundToHalfWnd(sk, GSO_MAX_SIZE - 1 - MAX_TCP_HEADER);
  let sizeGoal = sk.gsoSegs * mssNow;
  if (newSizeGoal < sizeGoal || newSizeGoal >= sizeGoal + mssNow) {
    sk.gsoSegs = Math.min(Math.floor(newSizeGoal / mssNow), GSO_MAX_SEGS);
    sizeGoal = sk.gsoSegs * mssNow;
  }
  return Math.max(sizeGoal, mssNow);
}
