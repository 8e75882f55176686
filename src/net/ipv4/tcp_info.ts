/**
 * TCP_INFO (tcp_get_info in net/ipv4/tcp.c): a snapshot of a socket in the
 * field names of Linux's `struct tcp_info`, and its byte image in the
 * layout of include/uapi/linux/tcp.h as of Linux 6.18 (280 bytes, host
 * byte order = little-endian on every platform we run on), so a C caller
 * can cast the bytes to its own `struct tcp_info`. Like the kernel, the
 * encoder writes min(buffer length, sizeof) bytes, so callers built against
 * older headers (232, 240, 248 bytes) read the prefix they know.
 *
 * Fields this stack does not model are reported as Linux reports them when
 * the feature is off or has no sample: rehash 0, fastopen 0, AccECN
 * counters 0, ecn_mode 0 unless RFC 3168 ECN was negotiated.
 */
import type { TcpProto } from './tcp_proto.js';
import {
  TCP_ECN_OK,
  TCP_ECN_SEEN,
  TCP_DELACK_MAX,
  type TcpSock,
} from './tcp_sock.js';
import { TCP_LISTEN } from '../core/sock.js';
import { tcpGetInfoChronoStats } from './tcp_chrono.js';
import { pacingRateU64 } from './tcp_pacing.js';

export const TCPI_OPT_TIMESTAMPS = 1;
export const TCPI_OPT_SACK = 2;
export const TCPI_OPT_WSCALE = 4;
export const TCPI_OPT_ECN = 8;
export const TCPI_OPT_ECN_SEEN = 16;
export const TCPI_OPT_SYN_DATA = 32;
export const TCPI_OPT_USEC_TS = 64;
export const TCPI_OPT_TFO_CHILD = 128;

/** tcpi_ecn_mode values (Linux 6.18). */
export const TCPI_ECN_MODE_DISABLED = 0;
export const TCPI_ECN_MODE_RFC3168 = 1;

/** sizeof(struct tcp_info) in Linux 6.18. */
export const TCP_INFO_SIZE = 280;

/** struct tcp_info, field for field (u64 fields as bigint). */
export interface TcpInfo {
  tcpi_state: number;
  tcpi_ca_state: number;
  tcpi_retransmits: number;
  tcpi_probes: number;
  tcpi_backoff: number;
  tcpi_options: number;
  tcpi_snd_wscale: number;
  tcpi_rcv_wscale: number;
  tcpi_delivery_rate_app_limited: number;
  tcpi_fastopen_client_fail: number;
  tcpi_rto: number;
  tcpi_ato: number;
  tcpi_snd_mss: number;
  tcpi_rcv_mss: number;
  tcpi_unacked: number;
  tcpi_sacked: number;
  tcpi_lost: number;
  tcpi_retrans: number;
  tcpi_fackets: number;
  tcpi_last_data_sent: number;
  tcpi_last_ack_sent: number;
  tcpi_last_data_recv: number;
  tcpi_last_ack_recv: number;
  tcpi_pmtu: number;
  tcpi_rcv_ssthresh: number;
  tcpi_rtt: number;
  tcpi_rttvar: number;
  tcpi_snd_ssthresh: number;
  tcpi_snd_cwnd: number;
  tcpi_advmss: number;
  tcpi_reordering: number;
  tcpi_rcv_rtt: number;
  tcpi_rcv_space: number;
  tcpi_total_retrans: number;
  tcpi_pacing_rate: bigint;
  tcpi_max_pacing_rate: bigint;
  tcpi_bytes_acked: bigint;
  tcpi_bytes_received: bigint;
  tcpi_segs_out: number;
  tcpi_segs_in: number;
  tcpi_notsent_bytes: number;
  tcpi_min_rtt: number;
  tcpi_data_segs_in: number;
  tcpi_data_segs_out: number;
  tcpi_delivery_rate: bigint;
  tcpi_busy_time: bigint;
  tcpi_rwnd_limited: bigint;
  tcpi_sndbuf_limited: bigint;
  tcpi_delivered: number;
  tcpi_delivered_ce: number;
  tcpi_bytes_sent: bigint;
  tcpi_bytes_retrans: bigint;
  tcpi_dsack_dups: number;
  tcpi_reord_seen: number;
  tcpi_rcv_ooopack: number;
  tcpi_snd_wnd: number;
  tcpi_rcv_wnd: number;
  tcpi_rehash: number;
  tcpi_total_rto: number;
  tcpi_total_rto_recoveries: number;
  tcpi_total_rto_time: number;
  tcpi_received_ce: number;
  tcpi_delivered_e1_bytes: number;
  tcpi_delivered_e0_bytes: number;
  tcpi_delivered_ce_bytes: number;
  tcpi_received_e1_bytes: number;
  tcpi_received_e0_bytes: number;
  tcpi_received_ce_bytes: number;
  tcpi_ecn_mode: number;
  tcpi_accecn_opt_seen: number;
  tcpi_accecn_fail_mode: number;
  tcpi_options2: number;
}

type Kind = 'u8' | 'u16' | 'u32' | 'u64';

/**
 * Byte offsets of the plain (non-bitfield) members, in declaration order.
 * Bitfields: byte 6 holds snd_wscale (bits 0-3) and rcv_wscale (4-7);
 * byte 7 delivery_rate_app_limited (bit 0) and fastopen_client_fail (1-2);
 * the u32 at 276 ecn_mode (0-1), accecn_opt_seen (2-3), accecn_fail_mode
 * (4-7), options2 (8-31). GCC's little-endian bitfield order.
 */
export const TCP_INFO_LAYOUT: readonly (readonly [keyof TcpInfo, number, Kind])[] = [
  ['tcpi_state', 0, 'u8'],
  ['tcpi_ca_state', 1, 'u8'],
  ['tcpi_retransmits', 2, 'u8'],
  ['tcpi_probes', 3, 'u8'],
  ['tcpi_backoff', 4, 'u8'],
  ['tcpi_options', 5, 'u8'],
  ['tcpi_rto', 8, 'u32'],
  ['tcpi_ato', 12, 'u32'],
  ['tcpi_snd_mss', 16, 'u32'],
  ['tcpi_rcv_mss', 20, 'u32'],
  ['tcpi_unacked', 24, 'u32'],
  ['tcpi_sacked', 28, 'u32'],
  ['tcpi_lost', 32, 'u32'],
  ['tcpi_retrans', 36, 'u32'],
  ['tcpi_fackets', 40, 'u32'],
  ['tcpi_last_data_sent', 44, 'u32'],
  ['tcpi_last_ack_sent', 48, 'u32'],
  ['tcpi_last_data_recv', 52, 'u32'],
  ['tcpi_last_ack_recv', 56, 'u32'],
  ['tcpi_pmtu', 60, 'u32'],
  ['tcpi_rcv_ssthresh', 64, 'u32'],
  ['tcpi_rtt', 68, 'u32'],
  ['tcpi_rttvar', 72, 'u32'],
  ['tcpi_snd_ssthresh', 76, 'u32'],
  ['tcpi_snd_cwnd', 80, 'u32'],
  ['tcpi_advmss', 84, 'u32'],
  ['tcpi_reordering', 88, 'u32'],
  ['tcpi_rcv_rtt', 92, 'u32'],
  ['tcpi_rcv_space', 96, 'u32'],
  ['tcpi_total_retrans', 100, 'u32'],
  ['tcpi_pacing_rate', 104, 'u64'],
  ['tcpi_max_pacing_rate', 112, 'u64'],
  ['tcpi_bytes_acked', 120, 'u64'],
  ['tcpi_bytes_received', 128, 'u64'],
  ['tcpi_segs_out', 136, 'u32'],
  ['tcpi_segs_in', 140, 'u32'],
  ['tcpi_notsent_bytes', 144, 'u32'],
  ['tcpi_min_rtt', 148, 'u32'],
  ['tcpi_data_segs_in', 152, 'u32'],
  ['tcpi_data_segs_out', 156, 'u32'],
  ['tcpi_delivery_rate', 160, 'u64'],
  ['tcpi_busy_time', 168, 'u64'],
  ['tcpi_rwnd_limited', 176, 'u64'],
  ['tcpi_sndbuf_limited', 184, 'u64'],
  ['tcpi_delivered', 192, 'u32'],
  ['tcpi_delivered_ce', 196, 'u32'],
  ['tcpi_bytes_sent', 200, 'u64'],
  ['tcpi_bytes_retrans', 208, 'u64'],
  ['tcpi_dsack_dups', 216, 'u32'],
  ['tcpi_reord_seen', 220, 'u32'],
  ['tcpi_rcv_ooopack', 224, 'u32'],
  ['tcpi_snd_wnd', 228, 'u32'],
  ['tcpi_rcv_wnd', 232, 'u32'],
  ['tcpi_rehash', 236, 'u32'],
  ['tcpi_total_rto', 240, 'u16'],
  ['tcpi_total_rto_recoveries', 242, 'u16'],
  ['tcpi_total_rto_time', 244, 'u32'],
  ['tcpi_received_ce', 248, 'u32'],
  ['tcpi_delivered_e1_bytes', 252, 'u32'],
  ['tcpi_delivered_e0_bytes', 256, 'u32'],
  ['tcpi_delivered_ce_bytes', 260, 'u32'],
  ['tcpi_received_e1_bytes', 264, 'u32'],
  ['tcpi_received_e0_bytes', 268, 'u32'],
  ['tcpi_received_ce_bytes', 272, 'u32'],
];

function emptyInfo(): TcpInfo {
  return {
    tcpi_state: 0, tcpi_ca_state: 0, tcpi_retransmits: 0, tcpi_probes: 0, tcpi_backoff: 0, tcpi_options: 0,
    tcpi_snd_wscale: 0, tcpi_rcv_wscale: 0, tcpi_delivery_rate_app_limited: 0, tcpi_fastopen_client_fail: 0,
    tcpi_rto: 0, tcpi_ato: 0, tcpi_snd_mss: 0, tcpi_rcv_mss: 0, tcpi_unacked: 0, tcpi_sacked: 0, tcpi_lost: 0,
    tcpi_retrans: 0, tcpi_fackets: 0, tcpi_last_data_sent: 0, tcpi_last_ack_sent: 0, tcpi_last_data_recv: 0,
    tcpi_last_ack_recv: 0, tcpi_pmtu: 0, tcpi_rcv_ssthresh: 0, tcpi_rtt: 0, tcpi_rttvar: 0, tcpi_snd_ssthresh: 0,
    tcpi_snd_cwnd: 0, tcpi_advmss: 0, tcpi_reordering: 0, tcpi_rcv_rtt: 0, tcpi_rcv_space: 0, tcpi_total_retrans: 0,
    tcpi_pacing_rate: 0n, tcpi_max_pacing_rate: 0n, tcpi_bytes_acked: 0n, tcpi_bytes_received: 0n, tcpi_segs_out: 0,
    tcpi_segs_in: 0, tcpi_notsent_bytes: 0, tcpi_min_rtt: 0, tcpi_data_segs_in: 0, tcpi_data_segs_out: 0,
    tcpi_delivery_rate: 0n, tcpi_busy_time: 0n, tcpi_rwnd_limited: 0n, tcpi_sndbuf_limited: 0n, tcpi_delivered: 0,
    tcpi_delivered_ce: 0, tcpi_bytes_sent: 0n, tcpi_bytes_retrans: 0n, tcpi_dsack_dups: 0, tcpi_reord_seen: 0,
    tcpi_rcv_ooopack: 0, tcpi_snd_wnd: 0, tcpi_rcv_wnd: 0, tcpi_rehash: 0, tcpi_total_rto: 0,
    tcpi_total_rto_recoveries: 0, tcpi_total_rto_time: 0, tcpi_received_ce: 0, tcpi_delivered_e1_bytes: 0,
    tcpi_delivered_e0_bytes: 0, tcpi_delivered_ce_bytes: 0, tcpi_received_e1_bytes: 0, tcpi_received_e0_bytes: 0,
    tcpi_received_ce_bytes: 0, tcpi_ecn_mode: 0, tcpi_accecn_opt_seen: 0, tcpi_accecn_fail_mode: 0, tcpi_options2: 0,
  };
}

/** Whole milliseconds between `then` and `now` as the u32 jiffies difference Linux reports. */
function ago(now: number, then: number): number {
  return Math.max(0, Math.floor(now - then)) >>> 0;
}

/** tcp_get_info: the snapshot. */
export function tcpGetInfo(tcp: TcpProto, sk: TcpSock): TcpInfo {
  const info = emptyInfo();
  info.tcpi_state = sk.state;
  info.tcpi_pacing_rate = pacingRateU64(sk.pacingRate);
  info.tcpi_max_pacing_rate = pacingRateU64(sk.maxPacingRate);
  if (sk.state === TCP_LISTEN) {
    // A listener reports its accept queue: current length and the backlog.
    info.tcpi_unacked = sk.acceptQueue.length;
    info.tcpi_sacked = sk.maxAckBacklog;
    return info;
  }
  const now = tcp.now();
  info.tcpi_ca_state = sk.caState;
  info.tcpi_retransmits = sk.retransmits & 0xff;
  info.tcpi_probes = sk.probesOut & 0xff;
  info.tcpi_backoff = sk.backoff & 0xff;
  if (sk.tstampOk) info.tcpi_options |= TCPI_OPT_TIMESTAMPS;
  if (sk.sackOk) info.tcpi_options |= TCPI_OPT_SACK;
  if (sk.wscaleOk) {
    info.tcpi_options |= TCPI_OPT_WSCALE;
    info.tcpi_snd_wscale = sk.sndWscale;
    info.tcpi_rcv_wscale = sk.rcvWscale;
  }
  if (sk.ecnFlags & TCP_ECN_OK) {
    info.tcpi_options |= TCPI_OPT_ECN;
    info.tcpi_ecn_mode = TCPI_ECN_MODE_RFC3168;
  }
  if (sk.ecnFlags & TCP_ECN_SEEN) info.tcpi_options |= TCPI_OPT_ECN_SEEN;
  if (sk.synDataAcked) info.tcpi_options |= TCPI_OPT_SYN_DATA;
  if (sk.synFastopenChild) info.tcpi_options |= TCPI_OPT_TFO_CHILD;
  info.tcpi_fastopen_client_fail = sk.fastopenClientFail;
  info.tcpi_rto = sk.rto * 1000;
  info.tcpi_ato = Math.min(sk.ato, TCP_DELACK_MAX) * 1000;
  info.tcpi_snd_mss = sk.mssCache;
  info.tcpi_rcv_mss = sk.rcvMss;
  info.tcpi_unacked = sk.packetsOut;
  info.tcpi_sacked = sk.sackedOut;
  info.tcpi_lost = sk.lostOut;
  info.tcpi_retrans = sk.retransOut;
  info.tcpi_last_data_sent = ago(now, sk.lsndtime);
  info.tcpi_last_data_recv = ago(now, sk.lrcvtime);
  info.tcpi_last_ack_recv = ago(now, sk.rcvTstamp);
  info.tcpi_pmtu = sk.pmtuCookie;
  info.tcpi_rcv_ssthresh = sk.rcvSsthresh;
  info.tcpi_rtt = sk.srttUs >> 3;
  info.tcpi_rttvar = sk.mdevUs >> 2;
  info.tcpi_snd_ssthresh = sk.sndSsthresh >>> 0;
  info.tcpi_snd_cwnd = sk.sndCwnd;
  info.tcpi_advmss = sk.advmss;
  info.tcpi_reordering = sk.reordering;
  info.tcpi_rcv_rtt = sk.rcvRttUs >> 3;
  info.tcpi_rcv_space = sk.rcvqSpaceSpace;
  info.tcpi_total_retrans = sk.totalRetrans;
  info.tcpi_bytes_acked = BigInt(Math.trunc(sk.bytesAcked));
  info.tcpi_bytes_received = BigInt(Math.trunc(sk.bytesReceived));
  info.tcpi_notsent_bytes = Math.max(0, (sk.writeSeq - sk.sndNxt) | 0);
  info.tcpi_segs_out = sk.segsOut >>> 0;
  info.tcpi_segs_in = sk.segsIn >>> 0;
  // tcp_min_rtt: ~0U until the first sample.
  info.tcpi_min_rtt = sk.minRttUs ? sk.minRttUs >>> 0 : 0xffffffff;
  info.tcpi_data_segs_in = sk.dataSegsIn >>> 0;
  info.tcpi_data_segs_out = sk.dataSegsOut >>> 0;
  info.tcpi_delivery_rate = tcpDeliveryRate(sk);
  const chrono = tcpGetInfoChronoStats(tcp, sk);
  info.tcpi_busy_time = chrono.busy;
  info.tcpi_rwnd_limited = chrono.rwndLimited;
  info.tcpi_sndbuf_limited = chrono.sndbufLimited;
  info.tcpi_delivered = sk.delivered >>> 0;
  info.tcpi_delivered_ce = sk.deliveredCe >>> 0;
  info.tcpi_bytes_sent = BigInt(Math.trunc(sk.bytesSent));
  info.tcpi_bytes_retrans = BigInt(Math.trunc(sk.bytesRetrans));
  info.tcpi_dsack_dups = sk.dsackDups >>> 0;
  info.tcpi_reord_seen = sk.reordSeen >>> 0;
  info.tcpi_rcv_ooopack = sk.rcvOoopack >>> 0;
  info.tcpi_snd_wnd = sk.sndWnd >>> 0;
  info.tcpi_rcv_wnd = sk.rcvWnd >>> 0;
  info.tcpi_total_rto = Math.min(sk.totalRto, 0xffff);
  info.tcpi_total_rto_recoveries = Math.min(sk.totalRtoRecoveries, 0xffff);
  // An unfinished RTO recovery counts up to now (tcp_get_info).
  info.tcpi_total_rto_time = (sk.totalRtoTime + (sk.rtoStamp ? ago(now, sk.rtoStamp) : 0)) >>> 0;
  return info;
}

/**
 * tcp_compute_delivery_rate: the last rate sample, bytes per second
 * (delivered segments * mss over the sample's interval), 0 without one.
 */
export function tcpDeliveryRate(sk: TcpSock): bigint {
  if (!sk.rateIntervalUs) return 0n;
  return (BigInt(Math.trunc(sk.rateDelivered)) * BigInt(sk.mssCache) * 1_000_000n) / BigInt(Math.max(1, Math.trunc(sk.rateIntervalUs)));
}

/**
 * Write `info` into `buf` in struct tcp_info's layout; returns the number of
 * bytes written, min(buf.length, TCP_INFO_SIZE), as getsockopt copies.
 */
export function encodeTcpInfo(info: TcpInfo, buf: Uint8Array): number {
  const full = Buffer.alloc(TCP_INFO_SIZE);
  for (const [name, off, kind] of TCP_INFO_LAYOUT) {
    const v = info[name];
    switch (kind) {
      case 'u8':
        full.writeUInt8((v as number) & 0xff, off);
        break;
      case 'u16':
        full.writeUInt16LE((v as number) & 0xffff, off);
        break;
      case 'u32':
        full.writeUInt32LE((v as number) >>> 0, off);
        break;
      case 'u64':
        full.writeBigUInt64LE(BigInt.asUintN(64, v as bigint), off);
        break;
    }
  }
  full[6] = (info.tcpi_snd_wscale & 0xf) | ((info.tcpi_rcv_wscale & 0xf) << 4);
  full[7] = (info.tcpi_delivery_rate_app_limited & 1) | ((info.tcpi_fastopen_client_fail & 3) << 1);
  full.writeUInt32LE(
    ((info.tcpi_ecn_mode & 3) | ((info.tcpi_accecn_opt_seen & 3) << 2) | ((info.tcpi_accecn_fail_mode & 0xf) << 4) | ((info.tcpi_options2 & 0xffffff) << 8)) >>> 0,
    276,
  );
  const n = Math.min(buf.length, TCP_INFO_SIZE);
  buf.set(full.subarray(0, n), 0);
  return n;
}

/** Read a struct tcp_info image back (for tests and for clients that get the bytes). */
export function decodeTcpInfo(buf: Uint8Array): TcpInfo {
  const full = Buffer.alloc(TCP_INFO_SIZE);
  full.set(buf.subarray(0, Math.min(buf.length, TCP_INFO_SIZE)), 0);
  const info = emptyInfo() as unknown as Record<string, number | bigint>;
  for (const [name, off, kind] of TCP_INFO_LAYOUT) {
    info[name] =
      kind === 'u8' ? full.readUInt8(off) : kind === 'u16' ? full.readUInt16LE(off) : kind === 'u32' ? full.readUInt32LE(off) : full.readBigUInt64LE(off);
  }
  const out = info as unknown as TcpInfo;
  out.tcpi_snd_wscale = full[6] & 0xf;
  out.tcpi_rcv_wscale = full[6] >> 4;
  out.tcpi_delivery_rate_app_limited = full[7] & 1;
  out.tcpi_fastopen_client_fail = (full[7] >> 1) & 3;
  const w = full.readUInt32LE(276);
  out.tcpi_ecn_mode = w & 3;
  out.tcpi_accecn_opt_seen = (w >> 2) & 3;
  out.tcpi_accecn_fail_mode = (w >> 4) & 0xf;
  out.tcpi_options2 = w >>> 8;
  return out;
}

/**
 * TCP_CC_INFO (do_tcp_getsockopt): the algorithm's get_info as Linux's
 * union tcp_cc_info lays out the kind (struct tcpvegas_info, tcp_dctcp_info,
 * tcp_bbr_info; include/uapi/linux/inet_diag.h); no bytes when the algorithm
 * has no get_info, or reports a kind the union has no member for (a loaded
 * module's named fields). The caller trims to its buffer's length.
 */
export function tcpGetCcInfo(sk: TcpSock): Buffer {
  const info = sk.caOps.getInfo?.(sk) ?? null;
  if (!info) return Buffer.alloc(0);
  switch (info.kind) {
    case 'vegas': {
      const b = Buffer.alloc(16);
      const v = info.vegas;
      b.writeUInt32LE(v.enabled >>> 0, 0);
      b.writeUInt32LE(v.rttcnt >>> 0, 4);
      b.writeUInt32LE(v.rtt >>> 0, 8);
      b.writeUInt32LE(v.minrtt >>> 0, 12);
      return b;
    }
    case 'dctcp': {
      const b = Buffer.alloc(16);
      const d = info.dctcp;
      b.writeUInt16LE(d.enabled & 0xffff, 0);
      b.writeUInt16LE(d.ceState & 0xffff, 2);
      b.writeUInt32LE(d.alpha >>> 0, 4);
      b.writeUInt32LE(d.abEcn >>> 0, 8);
      b.writeUInt32LE(d.abTot >>> 0, 12);
      return b;
    }
    case 'bbr': {
      const b = Buffer.alloc(20);
      const r = info.bbr;
      // bbr_bw_lo and bbr_bw_hi: the 64-bit rate in bytes per second, split.
      const bw = BigInt.asUintN(64, BigInt(Math.max(0, Math.floor(r.bw))));
      b.writeUInt32LE(Number(bw & 0xffff_ffffn), 0);
      b.writeUInt32LE(Number(bw >> 32n), 4);
      b.writeUInt32LE(r.minRtt >>> 0, 8);
      b.writeUInt32LE(r.pacingGain >>> 0, 12);
      b.writeUInt32LE(r.cwndGain >>> 0, 16);
      return b;
    }
    default:
      return Buffer.alloc(0);
  }
}
