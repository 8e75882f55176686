/**
 * struct tcp_sock and what hangs off it: the write-queue skb (TcpSkb), the
 * receive and out-of-order queues, the stack-wide TCP sysctls, and the
 * request sock of a half-open passive connection. Field names follow the
 * kernel's (snd_una -> sndUna, icsk_rto -> rto ...) so the code reads next
 * to net/ipv4/tcp_*.c.
 *
 * Logic lives by job in tcp_input.ts, tcp_output.ts, tcp_timer.ts,
 * tcp_minisocks.ts and tcp.ts (the socket calls); this file is data.
 */
import { Timer } from '../../lib/time.js';
import { Sock, SockCold, SockCommon, type SockProt, TCP_CLOSE, TCP_LISTEN, TCP_NEW_SYN_RECV, TCP_TIME_WAIT } from '../core/sock.js';

/** struct socket's states (include/uapi/linux/net.h's socket_state). */
export const SS_UNCONNECTED = 1;
export const SS_CONNECTING = 2;
export const SS_CONNECTED = 3;

/** Time constants (include/net/tcp.h), in milliseconds. */
export const TCP_TIMEOUT_INIT = 1000;
/** The shortest timer a clamp may leave (two jiffies). */
export const TCP_TIMEOUT_MIN = 2;
export const TCP_RTO_MIN = 200;
export const TCP_RTO_MAX = 120_000;
export const TCP_TIMEWAIT_LEN = 60_000;
export const TCP_DELACK_MIN = 40;
export const TCP_DELACK_MAX = 200;
export const TCP_ATO_MIN = 40;
export const TCP_MAX_QUICKACKS = 16;
export const TCP_RESOURCE_PROBE_INTERVAL = 500;
export const TCP_INIT_CWND = 10;
export const TCP_MSS_DEFAULT = 536;
export const TCP_MIN_MSS = 88;
export const MAX_TCP_WINDOW = 32767;
/** Headers a TSO super-segment must leave room for (MAX_TCP_HEADER). */
export const MAX_TCP_HEADER = 320;
/** Payload room of TCP's reusable transmit skb: a 64 KB super-segment with the largest TCP header. */
export const XMIT_SKB_ROOM = 65536 + 60;
/** GSO_LEGACY_MAX_SIZE: the largest TSO packet. */
export const GSO_MAX_SIZE = 65536;
export const GSO_MAX_SEGS = 65535;
/**
 * The overhead an skb adds to sk_wmem_queued beyond its payload. Linux's
 * figure on x86-64 (SKB_TRUESIZE of the header skb) is what seed 000's
 * trace shows: every new skb costs 1280 bytes.
 */
export const SKB_TRUESIZE_OVERHEAD = 1280;

// sk_shutdown bits.

// Congestion-avoidance states (enum tcp_ca_state).
export const TCP_CA_Open = 0;
export const TCP_CA_Disorder = 1;
export const TCP_CA_CWR = 2;
export const TCP_CA_Recovery = 3;
export const TCP_CA_Loss = 4;

// TCP_SKB_CB(skb)->sacked bits.
export const TCPCB_SACKED_ACKED = 0x01;
export const TCPCB_SACKED_RETRANS = 0x02;
export const TCPCB_LOST = 0x04;
export const TCPCB_EVER_RETRANS = 0x80;
/** Retransmitted at some point (TCPCB_RETRANS). */
export const TCPCB_RETRANS = TCPCB_SACKED_RETRANS | TCPCB_EVER_RETRANS;

// tp->ecn_flags.
export const TCP_ECN_OK = 1;
export const TCP_ECN_QUEUE_CWR = 2;
export const TCP_ECN_DEMAND_CWR = 4;
export const TCP_ECN_SEEN = 8;

// icsk_ack.pending bits.
export const ICSK_ACK_SCHED = 1;
export const ICSK_ACK_TIMER = 2;
export const ICSK_ACK_PUSHED = 4;
export const ICSK_ACK_PUSHED2 = 8;
export const ICSK_ACK_NOW = 16;

// Which job icsk_retransmit_timer is doing (icsk_pending).
export const ICSK_TIME_RETRANS = 1;
export const ICSK_TIME_PROBE0 = 3;
export const ICSK_TIME_LOSS_PROBE = 5;
export const ICSK_TIME_REO_TIMEOUT = 6;

// Nagle bits (tp->nonagle).
export const TCP_NAGLE_OFF = 1;
export const TCP_NAGLE_CORK = 2;
export const TCP_NAGLE_PUSH = 4;

// sk_userlocks.

/**
 * Stack-wide TCP settings named after net.ipv4.tcp_* sysctls, with
 * Linux's defaults. Times are in milliseconds.
 */
export class TcpSysctl {
  tcp_timestamps = 1;
  tcp_window_scaling = 1;
  tcp_sack = 1;
  tcp_syn_retries = 6;
  /** SYN_SENT timeouts that do not double the RTO (Linux 6.5+). */
  tcp_syn_linear_timeouts = 4;
  tcp_synack_retries = 5;
  tcp_retries1 = 3;
  tcp_retries2 = 15;
  tcp_orphan_retries = 0;
  tcp_fin_timeout = 60_000;
  tcp_keepalive_time = 7_200_000;
  tcp_keepalive_intvl = 75_000;
  tcp_keepalive_probes = 9;
  tcp_rmem: [number, number, number] = [4096, 131072, 6291456];
  tcp_wmem: [number, number, number] = [4096, 16384, 4194304];
  tcp_syncookies = 1;
  tcp_max_syn_backlog = 4096;
  tcp_abort_on_overflow = 0;
  tcp_min_tso_segs = 2;
  /** The pacing rate's percentage of cwnd*mss/srtt in slow start and after (tcp_update_pacing_rate). */
  tcp_pacing_ss_ratio = 200;
  tcp_pacing_ca_ratio = 120;
  tcp_tso_win_divisor = 3;
  tcp_reordering = 3;
  tcp_slow_start_after_idle = 1;
  tcp_rfc1337 = 0;
  tcp_tw_reuse = 2;
  tcp_invalid_ratelimit = 500;
  tcp_challenge_ack_limit = 1000;
  tcp_notsent_lowat = 0xffffffff;
  tcp_base_mss = 1024;
  /** PLPMTUD (RFC 4821, tcp_mtu_probe.ts): 0 off, 1 after a black hole is detected, 2 always. */
  tcp_mtu_probing = 0;
  tcp_probe_threshold = 8;
  /** ms between probing rounds (tcp_probe_interval, 600 s). */
  tcp_probe_interval = 600_000;
  tcp_mtu_probe_floor = 48;
  tcp_min_snd_mss = 48;
  tcp_moderate_rcvbuf = 1;
  tcp_workaround_signed_windows = 0;
  tcp_app_win = 31;
  tcp_pingpong_thresh = 1;
  tcp_limit_output_bytes = 1_048_576;
  tcp_dsack = 1;
  /** RACK loss detection bits: 1 = RACK on, 2 = static reordering window, 4 = no dupack threshold. */
  tcp_recovery = 1;
  /** 3 = tail loss probes (TLP) on, the Linux default. */
  tcp_early_retrans = 3;
  tcp_frto = 2;
  tcp_max_reordering = 300;
  /** RFC 3168 ECN: 0 off, 1 request and accept, 2 accept only (default). */
  tcp_ecn = 2;
  tcp_ecn_fallback = 1;
  tcp_congestion_control = 'cubic';
  /**
   * Fast Open's bits (TFO_CLIENT_ENABLE 1, TFO_SERVER_ENABLE 2,
   * TFO_CLIENT_NO_COOKIE 4, TFO_SERVER_COOKIE_NOT_REQD 0x200,
   * TFO_SERVER_WO_SOCKOPT1 0x400, ...): Linux's default is the client only.
   */
  tcp_fastopen = 1;
  /** Seconds Fast Open stays off after a suspected middlebox blackhole (doubling on repeats); 0 never. */
  tcp_fastopen_blackhole_timeout_sec = 0;
  /** Log every ACK's (time, cwnd, ssthresh, ca_state, in flight) through the stack's cwnd trace hook. */
  tcp_cwnd_trace = 0;
  /** net.core.somaxconn. */
  somaxconn = 4096;
  /**
   * tcp_mem: [min, pressure, max] pages all TCP sockets may reserve;
   * tcp_max_orphans, tcp_max_tw_buckets. Set from the stack's memory by
   * tcpInitMem (these are a 1 GiB stack's).
   */
  tcp_mem: [number, number, number] = [12288, 16384, 24576];
  tcp_max_orphans = 4096;
  tcp_max_tw_buckets = 4096;
  /** net.ipv6.bindv6only: the IPV6_V6ONLY a new AF_INET6 socket starts with (0: dual-stack). */
  bindv6only = 0;
}

/**
 * One skb of the write queue: a contiguous run of sequence space with its
 * payload, built once and retransmitted from here. `buf` may be a view into
 * a larger buffer shared with the next skb after a split (tso_fragment).
 */
export class TcpSkb {
  next: TcpSkb | null = null;
  /** Payload storage: bytes [off, off+len) are this skb's data; room up to `cap`. */
  buf: Buffer;
  /** The pooled page `buf` is (shared with the skbs split from this one), or null: tcp_rcvq.ts. */
  page: SndPage | null = null;
  off: number;
  len = 0;
  cap: number;
  /** Sequence range; SYN/FIN count one each. */
  seq: number;
  endSeq: number;
  /** TCPHDR_* flags this skb carries (SYN, FIN, PSH). */
  tcpFlags = 0;
  /** TCPCB_* scoreboard bits. */
  sacked = 0;
  /** When it was (last) sent, ms; 0 = never. */
  sentAt = 0;
  /** Its place in the socket's send order when (last) sent (see tcpSkbSentAfter). */
  sentOrder = 0;
  /** When it was first sent, for retrans_stamp and RTT (Karn). */
  firstSentAt = 0;
  /** GSO segment count it stood for when last sent, and the segment size it was cut at (tcp_skb_mss). */
  pcount = 0;
  mss = 0;
  /** What it adds to sk_wmem_queued. */
  truesize: number;
  /** MSG_EOR: no more data may be appended. */
  eor = false;
  /** Delivery-rate state at send time (tcp_skb_cb tx: delivered, delivered_mstamp, first_tx_mstamp). */
  txDelivered = 0;
  txDeliveredMstamp = 0;
  txFirstMstamp = 0;
  /** tcp_skb_cb tx.delivered_ce and tx.is_app_limited. */
  txDeliveredCe = 0;
  txIsAppLimited = false;
  /**
   * skb_shinfo nr_frags as a MSG_ZEROCOPY send counts them: each page of
   * the user's iovec pinned is a frag (tcp_zerocopy.ts); copied data is one
   * page frag, coalesced while it continues (fragCopy: the last frag is one).
   */
  nrFrags = 0;
  fragCopy = false;
  /** skb_zcopy: the MSG_ZEROCOPY notification whose pages this skb holds (tcp_zerocopy.ts), or null. */
  uarg: ZcUarg | null = null;
  /** skb_shinfo tx_flags (SKBTX_*_TSTAMP) and tskey, TCP_SKB_CB txstamp_ack: SO_TIMESTAMPING (tcp_tx_timestamp). */
  txFlags = 0;
  tskey = 0;
  txstampAck = false;

  constructor(buf: Buffer, off: number, cap: number, seq: number) {
    this.buf = buf;
    this.off = off;
    this.cap = cap;
    this.seq = seq;
    this.endSeq = seq;
    this.truesize = SKB_TRUESIZE_OVERHEAD;
  }
}

/**
 * struct ubuf_info_msgzc: the notification of sends id..id+len-1, held by
 * the sendmsg call and by each skb with their data (refs).
 */
export class ZcUarg {
  len = 1;
  bytelen = 0;
  refs = 1;
  /** Still true if no byte was copied on the way out (no SO_EE_CODE_ZEROCOPY_COPIED). */
  zerocopy = true;
  constructor(
    readonly sk: Sock,
    readonly id: number,
  ) {}
}

/** A segment of the receive or out-of-order queue: payload copied once into a page fragment (tcp_rcvq.ts). */
export { RcvSeg } from './tcp_rcvq.js';
import type { RcvSeg, SndPage } from './tcp_rcvq.js';
import type { TcpFastopenRequest } from './tcp_fastopen_req.js';
import type { RateSample } from './tcp_rate_sample.js';
import { EINVAL, IPPROTO_TCP, POLLOUT, SOCK_STREAM } from '../../uapi.js';

/** struct ack_sample: what tcp_clean_rtx_queue tells pkts_acked. */
export interface AckSample {
  pktsAcked: number;
  /** RTT of the newest acked never-retransmitted segment, microseconds; -1 if none. */
  rttUs: number;
  inFlight: number;
}

/**
 * What an algorithm's get_info reports (union tcp_cc_info and its
 * INET_DIAG_* attribute). The kinds Linux has are encoded for TCP_CC_INFO
 * as Linux lays them out (include/uapi/linux/inet_diag.h); 'fields' is a
 * loadable module's own numbers, for `ss -i` only (TCP_CC_INFO has no
 * layout for them and returns 0 bytes, as for an algorithm without get_info).
 */
export type TcpCcInfo =
  /** struct tcpvegas_info (vegas, and westwood and illinois in Linux): times in us. */
  | { kind: 'vegas'; vegas: { enabled: number; rttcnt: number; rtt: number; minrtt: number } }
  /** struct tcp_dctcp_info: alpha scaled by 1024. */
  | { kind: 'dctcp'; dctcp: { enabled: number; ceState: number; alpha: number; abEcn: number; abTot: number } }
  /** struct tcp_bbr_info: bw in bytes per second, min RTT in us, gains scaled by 256 (BBR_UNIT). */
  | { kind: 'bbr'; bbr: { bw: number; minRtt: number; pacingGain: number; cwndGain: number } }
  /** A module's numbers by name; `ss -i` prints them as NAME:(key:value,...). */
  | { kind: 'fields'; fields: Record<string, number> };

/**
 * struct tcp_congestion_ops: the one interface of congestion control, for
 * the built-in algorithms and loaded modules alike (tcp_cong.ts validates
 * it at registration as tcp_validate_congestion_control does).
 */
export interface TcpCongestionOps {
  readonly name: string;
  /** Set up per-socket state (icsk_ca_priv): at establishment, and when switched to. */
  init?(sk: TcpSock, now: number): void;
  /** Let go of per-socket state (tcp_cleanup_congestion_control): on destroy and before a switch. */
  release?(sk: TcpSock): void;
  /** New slow-start threshold on loss. */
  ssthresh(sk: TcpSock): number;
  /** Grow the window on an ACK that allows it (exactly one of congAvoid and congControl). */
  congAvoid?(sk: TcpSock, ack: number, acked: number, now: number): void;
  /** Own the window and pacing on every ACK, in place of PRR and congAvoid (tcp_cong_control). */
  congControl?(sk: TcpSock, ack: number, flag: number, rs: RateSample, now: number): void;
  /** The ca_state is about to change. */
  setState?(sk: TcpSock, newState: number, now: number): void;
  /** An event of enum tcp_ca_event (CA_EVENT_* in tcp_cong.ts). */
  cwndEvent?(sk: TcpSock, ev: number, now: number): void;
  /** An ACK arrived (in_ack_event): CA_ACK_* flags. */
  inAckEvent?(sk: TcpSock, flags: number, now: number): void;
  pktsAcked?(sk: TcpSock, sample: AckSample, now: number): void;
  /** The cwnd to restore when a reduction is undone. */
  undoCwnd(sk: TcpSock): number;
  /** The send buffer's multiple of cwnd (sndbuf_expand; 2 without it). */
  sndbufExpand?(sk: TcpSock): number;
  /** The fewest segments per TSO burst (min_tso_segs). */
  minTsoSegs?(sk: TcpSock): number;
  /** TCP_CC_INFO and `ss -i`; null for nothing to report. */
  getInfo?(sk: TcpSock): TcpCcInfo | null;
}

/**
 * struct tcp_request_sock: a half-open passive connection, held in the
 * established hash as TCP_NEW_SYN_RECV until the handshake's final ACK.
 */
export class TcpRequestSock extends SockCommon {
  readonly listener: TcpSock;
  rcvIsn = 0;
  sntIsn = 0;
  mss = 0;
  sndWscale = 0;
  rcvWscale = 0;
  wscaleOk = false;
  tstampOk = false;
  sackOk = false;
  /** The SYN asked for ECN and net.ipv4.tcp_ecn allows it (inet_rsk(req)->ecn_ok). */
  ecnOk = false;
  tsRecent = 0;
  tsOff = 0;
  rcvWnd = 0;
  windowClamp = 0;
  /** SYN-ACKs sent after the first (req->num_retrans) and timeouts seen. */
  numRetrans = 0;
  numTimeout = 0;
  /** The final ACK came but the accept queue was full. */
  acked = false;
  readonly timer: Timer<TcpRequestSock>;
  tos = 0;
  /** When the SYN arrived (for the child's RTT seed). */
  synAt = 0;
  /** Fast Open: its child was made at the SYN (tcp_rsk(req)->tfo_listener), and rcv_nxt after the SYN's data (-1: rcv_isn + 1). */
  tfoListener = false;
  tfoRcvNxt = -1;
  /** Fast Open: held on its listener's reset list until then (rsk_timer.expires). */
  tfoRstExpires = 0;
  /** Links in the listener's request queue (its reqHead list). */
  qprev: TcpRequestSock | null = null;
  qnext: TcpRequestSock | null = null;
  constructor(listener: TcpSock, fn: (r: TcpRequestSock) => void) {
    super();
    this.listener = listener;
    this.state = TCP_NEW_SYN_RECV;
    this.timer = new Timer<TcpRequestSock>(fn, this);
  }
}

/**
 * struct fastopen_queue: a listener's children made by Fast Open before
 * their handshake ended (qlen, at most max_qlen), the reset ones it still
 * counts (rskq_rst_head), and its own keys (TCP_FASTOPEN_KEY; the stack's
 * when null): SipHash keys, the primary first.
 */
export class FastopenQueue {
  qlen = 0;
  maxQlen = 0;
  readonly rst: TcpRequestSock[] = [];
  keys: Uint32Array[] | null = null;
}

/** struct tcp_md5sig_key. */
export class TcpMd5SigKey {
  constructor(
    readonly family: number,
    /** 4 bytes (network order) for AF_INET, 16 for AF_INET6. */
    readonly addr: Buffer,
    readonly prefixlen: number,
    readonly l3index: number,
    readonly flags: number,
    public key: Buffer,
  ) {}
}

/** struct tcp_timewait_sock: the 4-tuple and sequence state, nothing else. */
export class TcpTimewaitSock extends SockCommon {
  override state = TCP_TIME_WAIT;
  /** TCP_TIME_WAIT, or TCP_FIN_WAIT2 for an orphan still waiting for the peer's FIN. */
  substate = TCP_TIME_WAIT;
  rcvNxt = 0;
  sndNxt = 0;
  rcvWnd = 0;
  rcvWscale = 0;
  tstampOk = false;
  tsRecent = 0;
  tsRecentStamp = 0;
  tsOff = 0;
  tos = 0;
  /** tw_md5_key: a copy of the connection's key for its peer, to sign the ACKs it sends (tcp_time_wait_init). */
  md5Key: TcpMd5SigKey | null = null;
  readonly timer: Timer<TcpTimewaitSock>;
  constructor(fn: (tw: TcpTimewaitSock) => void) {
    super();
    this.timer = new Timer<TcpTimewaitSock>(fn, this);
  }
}

/**
 * What a socket needs only as a listener, under a rarely used option or
 * after a rare event, kept apart from struct tcp_sock's hot fields and made
 * on the first write of a value other than the default: an idle
 * established connection never has one. TcpSock reads and writes these
 * through accessors of the same names.
 */
export class TcpSockCold extends SockCold {
  // Fast Open's active side (tcp_fastopen_active.ts), TCP_SYNCNT, sk_write_pending: only a socket that uses them has them.
  /** tp->fastopen_req: the send whose data rides in the SYN, and the cookie the SYN carries. */
  fastopenReq: TcpFastopenRequest | null = null;
  /** TCP_FASTOPEN_CONNECT and TCP_FASTOPEN_NO_COOKIE as set. */
  fastopenConnect = false;
  fastopenNoCookie = false;
  /** inet DEFER_CONNECT: connect() returned 0 and the SYN waits for the first write. */
  deferConnect = false;
  /** syn_fastopen (our SYN had the option), syn_fastopen_exp, syn_fastopen_ch (check for the blackhole history), syn_data (syn_data_acked is TcpSock's, both sides set it). */
  synFastopen = false;
  synFastopenExp = false;
  synFastopenCh = false;
  synData = false;
  /** tcpi_fastopen_client_fail (TFO_*). */
  fastopenClientFail = 0;
  /** TCP_SYNCNT (icsk_syn_retries): SYN retransmissions before giving up; 0 = tcp_syn_retries. */
  synRetries = 0;
  /** sk_write_pending: a writer waits for the handshake with data to send (inet_wait_for_connect's writebias). */
  writePending = 0;

  // listener (struct request_sock_queue and sk_ack_backlog)
  /** sk_max_ack_backlog. */
  maxAckBacklog = 0;
  acceptQueue: TcpSock[] = [];
  /** Request socks outstanding (inet_csk_reqsk_queue_len), linked from reqHead. */
  reqQlen = 0;
  reqHead: TcpRequestSock | null = null;
  /** When the SYN queue last overflowed (tp->rx_opt.ts_recent_stamp's job for listeners): cookies are only checked after one. */
  synqOverflowAt = -Infinity;
  // options
  /** TCP_INQ: recvmsg reports the bytes left to read (a TCP_CM_INQ control message). */
  recvmsgInq = false;
  /** User's TCP_MAXSEG (rx_opt.user_mss), 0 = none. */
  userMss = 0;
  /** TCP_USER_TIMEOUT, ms; 0 = none. */
  userTimeout = 0;
  /** TCP_KEEPIDLE/INTVL/CNT; 0 = the sysctl. */
  keepaliveTime = 0;
  keepaliveIntvl = 0;
  keepaliveProbes = 0;
  // rare events
  /** Timestamp of the last challenge ACK (per-socket rate limit, tcp_invalid_ratelimit). */
  lastOowAckTime = 0;
  /** HyStart exits seen on this socket (ACK train, delay). */
  hystartTrainDetect = 0;
  hystartDelayDetect = 0;
  /** D-SACK blocks received, reordering events seen, out-of-order packets received. */
  dsackDups = 0;
  reordSeen = 0;
  rcvOoopack = 0;
  /** RTO recoveries and their total time (ms). */
  totalRtoRecoveries = 0;
  totalRtoTime = 0;
}

/** The handlers of a socket's three timers (tcp_init_xmit_timers): the stack's, shared by its sockets. */
export interface TcpTimerFns {
  retransmit: (sk: TcpSock) => void;
  delack: (sk: TcpSock) => void;
  keepalive: (sk: TcpSock) => void;
  /** The pacing timer (tcp_pace_kick): the departure time of the next skb has come. */
  pacing: (sk: TcpSock) => void;
}

/** struct tcp_sock (with the inet_connection_sock and sock parts it embeds). */
export class TcpSock extends Sock {
  /** tcp_prot or tcpv6_prot. */
  declare prot: SockProt<TcpSock> | null;
  // --- sock ------------------------------------------------------------
  /** SOCK_DONE: the connection is finished (FIN received or reset). */
  done = false;
  /**
   * struct socket's state as __inet_stream_connect keeps it (SS_UNCONNECTED,
   * SS_CONNECTING, SS_CONNECTED): a socket that was ever connected answers a
   * second connect() with EISCONN even after a reset, a failed attempt may
   * be retried.
   */
  socketState = SS_UNCONNECTED;
  /** No user holds it any more (close() was called): an orphan. */
  orphan = false;
  ttl = 64;
  /** md5sig_info: the TCP-MD5 keys (tcp_md5.ts), null until the first one; GSO is off with them (sk_gso_disable). */
  md5sigInfo: TcpMd5SigKey[] | null = null;
  /** tcp_header_len counts an MD5 option: the connection started with a key for its peer. */
  md5Hdr = false;
  /** tp->urg_data (TCP_URG_* flags and the urgent byte) and tp->urg_seq: urgent data on receive (tcp_urg.ts). */
  urgData = 0;
  urgSeq = 0;
  /** IP_MTU_DISCOVER (IP_PMTUDISC_WANT by default) and IP_FREEBIND (ip_sockglue.ts). */
  pmtudisc = 1;
  freebind = false;
  /** TCP_LINGER2 (ms; 0: tcp_fin_timeout, -1: none) and TCP_DEFER_ACCEPT (SYN-ACK retransmissions), tcp_sockopt.ts. */
  linger2 = 0;
  deferAccept = 0;
  /** icsk_mtup (PLPMTUD, tcp_mtu_probe.ts): the MTU search range, the probe in flight (its size, its sequence range), when probing last began. */
  mtupEnabled = false;
  mtupSearchHigh = 0;
  mtupSearchLow = 0;
  mtupProbeSize = 0;
  mtupProbeTimestamp = 0;
  mtuProbeSeqStart = 0;
  mtuProbeSeqEnd = 0;

  /** sock_set_timestamping's key base: bytes count from snd_una (write_seq with OPT_ID_TCP); none before a connection. */
  override tskeyBase(optIdTcp: boolean): number {
    if (this.state === TCP_CLOSE || this.state === TCP_LISTEN) return -EINVAL;
    return optIdTcp ? this.writeSeq : this.sndUna;
  }

  // --- listener --------------------------------------------------------
  /** bind() named a port (SOCK_BINDPORT_LOCK): it stays bound after the connection ends. */
  userBoundPort = false;
  /** The listener a child came from, until accept() takes it. */
  parent: TcpSock | null = null;
  /** Fast Open: a listener's queue of children made at the SYN and its own keys (icsk_accept_queue.fastopenq). */
  fastopenq: FastopenQueue | null = null;
  /** Fast Open, passive: the request a child made at the SYN came from, until the handshake ends (fastopen_rsk). */
  fastopenRsk: TcpRequestSock | null = null;
  /** The SYN's data was acked (syn_data_acked: TCPI_OPT_SYN_DATA); a Fast Open child (syn_fastopen_child: TCPI_OPT_TFO_CHILD). */
  synDataAcked = false;
  synFastopenChild = false;

  // --- tcp_sock: send side ---------------------------------------------
  iss = 0;
  sndUna = 0;
  sndNxt = 0;
  sndWnd = 0;
  sndWl1 = 0;
  maxWindow = 0;
  /** Sequence after the last byte written by the user. */
  writeSeq = 0;
  pushedSeq = 0;
  sndUp = 0;
  /** Write queue: head (oldest unacked) .. tail; sendHead is the first not yet sent. */
  wqHead: TcpSkb | null = null;
  wqTail: TcpSkb | null = null;
  sendHead: TcpSkb | null = null;
  /** Segments (GSO units) in flight, lost, retransmitted, SACKed (dupacks under Reno). */
  packetsOut = 0;
  retransOut = 0;
  lostOut = 0;
  sackedOut = 0;
  maxPacketsOut = 0;
  isCwndLimited = false;
  /** tp->nonagle: TCP_NAGLE_* bits. */
  nonagle = 0;
  /** TCP_NODELAY as set by the user (nonagle keeps TCP_NAGLE_OFF for it). */
  gsoSegs = 0;
  notsentLowat = 0;
  /** The stack's TCP sysctls (sock_net(sk)->ipv4): the defaults a setting of 0 on the socket falls back to. */
  readonly netSysctl: TcpSysctl;
  /** Time data was last sent (lsndtime). */
  lsndtime = 0;
  /**
   * tcp_wstamp_ns: the earliest departure time of the next skb, in ns of
   * the stack's clock. Each send moves it to now at least, and with pacing
   * on past the time the skb takes at the pacing rate (tcp_pacing.ts).
   */
  wstampNs = 0;
  /** When the cwnd was last validated (snd_cwnd_stamp). */
  sndCwndStamp = 0;
  /** End of the last small (sub-MSS) segment sent, for Minshall's Nagle (snd_sml). */
  sndSml = 0;

  // --- receive side ----------------------------------------------------
  irs = 0;
  rcvNxt = 0;
  rcvWup = 0;
  rcvWnd = 0;
  /** Next byte the user will read. */
  copiedSeq = 0;
  rcvSsthresh = 0;
  windowClamp = 0;
  receiveQueue: RcvSeg[] = [];
  /** What the receive and out-of-order queues cost (their segments' truesize), charged to tcp_mem; rmemAlloc is their unread bytes. */
  rcvTruesize = 0;
  ofoQueue: RcvSeg[] = [];
  /** A FIN arrived and is queued after the data (end of stream for readers). */
  finQueued = false;
  /** SACK blocks we advertise (most recent first) and D-SACK; the arrays behind them are made on first use (see below). */
  numSacks = 0;
  #selectiveAcks: Uint32Array | null = null;
  dsack = false;
  #duplicateSack: Uint32Array | null = null;
  /** Receive-buffer autotuning (tcp_rcv_space_adjust). */
  rcvqSpaceSpace = 0;
  rcvqSpaceSeq = 0;
  rcvqSpaceTime = 0;

  // --- options ---------------------------------------------------------
  /** Our MSS limit from the peer's option and MTU (rx_opt.mss_clamp). */
  mssClamp = TCP_MSS_DEFAULT;
  advmss = 0;
  mssCache = TCP_MSS_DEFAULT;
  tstampOk = false;
  wscaleOk = false;
  sackOk = false;
  sndWscale = 0;
  rcvWscale = 0;
  tsRecent = 0;
  tsRecentStamp = 0;
  tsOff = 0;

  // --- RTT and timers (inet_connection_sock) ------------------------------
  /** Smoothed RTT << 3 and mean deviation << 2, in microseconds, as the kernel keeps them. */
  srttUs = 0;
  mdevUs = 0;
  mdevMaxUs = 0;
  rttvarUs = 0;
  rttSeq = 0;
  rto = TCP_TIMEOUT_INIT;
  /** icsk_retransmits: consecutive RTOs; icsk_backoff: exponent. */
  retransmits = 0;
  backoff = 0;
  probesOut = 0;
  /**
   * icsk_probes_tstamp: when the zero-window probe timer first fired with the
   * window still shut (0: not probing); what TCP_USER_TIMEOUT is counted from.
   */
  probesTstamp = 0;
  /** What the retransmit timer is armed for (ICSK_TIME_*), 0 = not armed. */
  pending = 0;
  /** First retransmission's time of the current episode (retrans_stamp). */
  retransStamp = 0;
  totalRetrans = 0;
  /** RTO expirations over the connection's life (total_rto). */
  totalRto = 0;
  /** Our TSval when the SYN went out: a SYN-ACK echoing an older one is stale. */
  rcvTsecrMin = 0;
  /** Segments the last ACK delivered (cumulatively), for congestion control. */
  deliveredPkts = 0;
  /** Lowest RTT seen, microseconds (min_rtt, unwindowed). */
  minRttUs = 0;
  /** Time of the last segment received (rcv_tstamp) and of the last data received (icsk_ack.lrcvtime). */
  rcvTstamp = 0;
  lrcvtime = 0;
  ackPending = 0;
  ackQuick = 0;
  ackPingpong = 0;
  ato = 0;
  ackTimeout = 0;
  rcvMss = TCP_MSS_DEFAULT;
  readonly retransmitTimer: Timer<TcpSock>;
  readonly delackTimer: Timer<TcpSock>;
  readonly keepaliveTimer: Timer<TcpSock>;
  /** tp->pacing_timer: internal pacing's wake-up at the next departure time. */
  readonly pacingTimer: Timer<TcpSock>;
  lingerTimer = false;

  // --- congestion control ----------------------------------------------
  /** icsk_ca_ops and icsk_ca_priv: the algorithm and its per-socket state. */
  caOps: TcpCongestionOps;
  caPriv: unknown = null;
  /** init has run and release is owed (tcp_cleanup_congestion_control). */
  caInitialized = false;
  /** The algorithm was chosen by TCP_CONGESTION (icsk_ca_setsockopt): a listener's children keep it. */
  caSetsockopt = false;
  sndCwnd = TCP_INIT_CWND;
  sndSsthresh = 0x7fffffff;
  sndCwndCnt = 0;
  caState = TCP_CA_Open;
  highSeq = 0;
  priorSsthresh = 0;
  priorCwnd = 0;
  undoMarker = 0;
  /** Retransmissions not yet shown spurious by D-SACK; -1 = none were in flight at the start. */
  undoRetrans = 0;
  /** PRR (RFC 6937): segments delivered and sent since the reduction began. */
  prrDelivered = 0;
  prrOut = 0;
  /** tp->lost: segments ever marked lost. */
  lost = 0;
  /** The peer reneged on SACKed data; held until this loss episode ends. */
  isSackReneg = false;
  /** End of the highest SACKed segment (tcp_highest_sack_seq), valid while sackedOut > 0. */
  highestSackSeq = 0;
  /** tcp_cwnd_validate: snd_nxt when cwnd use was last recorded; most packets in flight since (snd_cwnd_used). */
  cwndUsageSeq = 0;
  sndCwndUsed = 0;
  /** F-RTO (RFC 5682) in progress after an RTO. */
  frto = false;
  /** Tail loss probe: snd_nxt when a probe was sent (0 = none out), and whether it was a retransmission. */
  tlpHighSeq = 0;
  tlpRetrans = false;
  /** RACK (RFC 8985): newest delivered send time and its end_seq, its RTT, the reordering window state. */
  rackMstamp = 0;
  /** The send order of RACK's segment, and the counter transmissions draw from. */
  rackXmitOrder = 0;
  xmitOrder = 0;
  rackEndSeq = 0;
  rackRttUs = 0;
  rackAdvanced = false;
  rackReoWndSteps = 1;
  rackReoWndPersist = 0;
  rackDsackSeen = false;
  rackLastDelivered = 0;
  /** A D-SACK arrived on this connection (rx_opt.sack_ok & TCP_DSACK_SEEN). */
  dsackSeen = false;
  /** Bytes acknowledged / received, for TCP_INFO and autotuning. */
  bytesAcked = 0;
  bytesReceived = 0;
  segsIn = 0;
  segsOut = 0;
  dataSegsIn = 0;
  dataSegsOut = 0;
  /** Last time data was sent/received (tcp_info last_data_*). */
  lastDataRecv = 0;
  /** tp->delivered / delivered_ce: segments delivered (cumulatively or SACKed), CE-marked ones. */
  delivered = 0;
  deliveredCe = 0;
  /** Data bytes sent including retransmissions, and retransmitted (tcpi_bytes_sent / bytes_retrans). */
  bytesSent = 0;
  bytesRetrans = 0;
  /** When the unfinished RTO recovery began (0 = none); see TcpSockCold for the totals. */
  rtoStamp = 0;
  /** tp->chrono_type, chrono_start (ms), chrono_stat[]: the running chrono and each one's total (tcp_chrono.ts). */
  chronoType = 0;
  chronoStart = 0;
  chronoStat = [0, 0, 0];
  /** tp->reordering: the duplicate threshold, raised when reordering is seen. */
  reordering = 3;
  /** icsk_pmtu_cookie: the path MTU the MSS was last computed for (0 before). */
  pmtuCookie = 0;
  /** tp->ecn_flags (TCP_ECN_*). */
  ecnFlags = 0;
  /** Receiver-side RTT estimate << 3, microseconds (rcv_rtt_est.rtt_us); 0 before the first sample. */
  rcvRttUs = 0;
  /** rcv_rtt_est.seq/time: a window's measurement without timestamps ends when rcvNxt passes seq. -1: none started. */
  rcvRttEstSeq = 0;
  rcvRttEstTime = -1;
  /** tp->rcv_rtt_last_tsecr: the echo the last timestamp sample came from (one sample per echo). */
  rcvRttLastTsecr = 0;
  /** Delivery-rate estimation (tcp_rate.c): stamps in ms, the last valid sample. */
  deliveredMstamp = 0;
  firstTxMstamp = 0;
  rateDelivered = 0;
  rateIntervalUs = 0;
  rateAppLimited = false;
  /**
   * tp->app_limited: the delivered count that ends the current
   * app-limited stretch (0: none). A new connection starts app-limited
   * (~0U), cleared by its first ACK.
   */
  appLimited = 0xffffffff;

  constructor(sysctl: TcpSysctl, caOps: TcpCongestionOps, fns: TcpTimerFns) {
    super(SOCK_STREAM, IPPROTO_TCP, sysctl.tcp_wmem[1], sysctl.tcp_rmem[1]);
    this.netSysctl = sysctl;
    this.caOps = caOps;
    this.reordering = sysctl.tcp_reordering;
    // The stack's shared handlers, called with this socket: no closure per socket.
    this.retransmitTimer = new Timer<TcpSock>(fns.retransmit, this);
    this.delackTimer = new Timer<TcpSock>(fns.delack, this);
    this.keepaliveTimer = new Timer<TcpSock>(fns.keepalive, this);
    this.pacingTimer = new Timer<TcpSock>(fns.pacing, this);
  }

  // --- the cold part: TcpSockCold's fields, through accessors of the same names ---
  // A read before the part exists gives the default; a write of the default
  // does not create it, so copying a listener's untouched options to a child
  // (tcp_create_openreq_child) costs nothing.
  protected override newCold(): TcpSockCold {
    return new TcpSockCold();
  }

  get #tcpCold(): TcpSockCold | null {
    return this.cold as TcpSockCold | null;
  }

  #coldPart(): TcpSockCold {
    return this.coldPart() as TcpSockCold;
  }

  /** sk_write_space for a stream: a writer is woken only past sk_stream_min_wspace. */
  override writeSpace(): void {
    if (skStreamIsWriteable(this, 0) && this.wake) this.wake(this, POLLOUT);
  }

  get maxAckBacklog(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.maxAckBacklog;
  }
  set maxAckBacklog(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().maxAckBacklog = v;
  }
  /** Made with the cold part on first use: only listeners read it. */
  get acceptQueue(): TcpSock[] {
    return this.#coldPart().acceptQueue;
  }
  set acceptQueue(v: TcpSock[]) {
    this.#coldPart().acceptQueue = v;
  }
  get reqHead(): TcpRequestSock | null {
    const c = this.#tcpCold;
    return c === null ? null : c.reqHead;
  }
  set reqHead(v: TcpRequestSock | null) {
    if (this.#tcpCold !== null || v !== null) this.#coldPart().reqHead = v;
  }
  get fastopenReq(): TcpFastopenRequest | null {
    const c = this.#tcpCold;
    return c === null ? null : c.fastopenReq;
  }
  set fastopenReq(v: TcpFastopenRequest | null) {
    if (this.#tcpCold !== null || v !== null) this.#coldPart().fastopenReq = v;
  }
  get fastopenConnect(): boolean {
    const c = this.#tcpCold;
    return c === null ? false : c.fastopenConnect;
  }
  set fastopenConnect(v: boolean) {
    if (this.#tcpCold !== null || v !== false) this.#coldPart().fastopenConnect = v;
  }
  get fastopenNoCookie(): boolean {
    const c = this.#tcpCold;
    return c === null ? false : c.fastopenNoCookie;
  }
  set fastopenNoCookie(v: boolean) {
    if (this.#tcpCold !== null || v !== false) this.#coldPart().fastopenNoCookie = v;
  }
  get deferConnect(): boolean {
    const c = this.#tcpCold;
    return c === null ? false : c.deferConnect;
  }
  set deferConnect(v: boolean) {
    if (this.#tcpCold !== null || v !== false) this.#coldPart().deferConnect = v;
  }
  get synFastopen(): boolean {
    const c = this.#tcpCold;
    return c === null ? false : c.synFastopen;
  }
  set synFastopen(v: boolean) {
    if (this.#tcpCold !== null || v !== false) this.#coldPart().synFastopen = v;
  }
  get synFastopenExp(): boolean {
    const c = this.#tcpCold;
    return c === null ? false : c.synFastopenExp;
  }
  set synFastopenExp(v: boolean) {
    if (this.#tcpCold !== null || v !== false) this.#coldPart().synFastopenExp = v;
  }
  get synFastopenCh(): boolean {
    const c = this.#tcpCold;
    return c === null ? false : c.synFastopenCh;
  }
  set synFastopenCh(v: boolean) {
    if (this.#tcpCold !== null || v !== false) this.#coldPart().synFastopenCh = v;
  }
  get synData(): boolean {
    const c = this.#tcpCold;
    return c === null ? false : c.synData;
  }
  set synData(v: boolean) {
    if (this.#tcpCold !== null || v !== false) this.#coldPart().synData = v;
  }
  get fastopenClientFail(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.fastopenClientFail;
  }
  set fastopenClientFail(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().fastopenClientFail = v;
  }
  get synRetries(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.synRetries;
  }
  set synRetries(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().synRetries = v;
  }
  get writePending(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.writePending;
  }
  set writePending(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().writePending = v;
  }
  get reqQlen(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.reqQlen;
  }
  set reqQlen(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().reqQlen = v;
  }
  get synqOverflowAt(): number {
    const c = this.#tcpCold;
    return c === null ? -Infinity : c.synqOverflowAt;
  }
  set synqOverflowAt(v: number) {
    if (this.#tcpCold !== null || v !== -Infinity) this.#coldPart().synqOverflowAt = v;
  }
  get recvmsgInq(): boolean {
    const c = this.#tcpCold;
    return c === null ? false : c.recvmsgInq;
  }
  set recvmsgInq(v: boolean) {
    if (this.#tcpCold !== null || v !== false) this.#coldPart().recvmsgInq = v;
  }
  get userMss(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.userMss;
  }
  set userMss(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().userMss = v;
  }
  get userTimeout(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.userTimeout;
  }
  set userTimeout(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().userTimeout = v;
  }
  get keepaliveTime(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.keepaliveTime;
  }
  set keepaliveTime(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().keepaliveTime = v;
  }
  get keepaliveIntvl(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.keepaliveIntvl;
  }
  set keepaliveIntvl(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().keepaliveIntvl = v;
  }
  get keepaliveProbes(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.keepaliveProbes;
  }
  set keepaliveProbes(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().keepaliveProbes = v;
  }
  get lastOowAckTime(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.lastOowAckTime;
  }
  set lastOowAckTime(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().lastOowAckTime = v;
  }
  get hystartTrainDetect(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.hystartTrainDetect;
  }
  set hystartTrainDetect(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().hystartTrainDetect = v;
  }
  get hystartDelayDetect(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.hystartDelayDetect;
  }
  set hystartDelayDetect(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().hystartDelayDetect = v;
  }
  get dsackDups(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.dsackDups;
  }
  set dsackDups(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().dsackDups = v;
  }
  get reordSeen(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.reordSeen;
  }
  set reordSeen(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().reordSeen = v;
  }
  get rcvOoopack(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.rcvOoopack;
  }
  set rcvOoopack(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().rcvOoopack = v;
  }
  get totalRtoRecoveries(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.totalRtoRecoveries;
  }
  set totalRtoRecoveries(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().totalRtoRecoveries = v;
  }
  get totalRtoTime(): number {
    const c = this.#tcpCold;
    return c === null ? 0 : c.totalRtoTime;
  }
  set totalRtoTime(v: number) {
    if (this.#tcpCold !== null || v !== 0) this.#coldPart().totalRtoTime = v;
  }

  /**
   * tp->selective_acks: the SACK blocks we advertise, start/end pairs. Only
   * out-of-order data makes any, so most connections never need the array:
   * it is made on first use (two typed arrays cost ~0.5 KB a socket).
   */
  get selectiveAcks(): Uint32Array {
    return (this.#selectiveAcks ??= new Uint32Array(8));
  }

  /** tp->duplicate_sack: the D-SACK block to send (start, end); made on first use like selectiveAcks. */
  get duplicateSack(): Uint32Array {
    return (this.#duplicateSack ??= new Uint32Array(2));
  }
}

/** Payload bytes of an skb in flight terms (tcp_skb_pcount). */
export function skbPcount(skb: TcpSkb, mss: number): number {
  return skb.len <= mss ? 1 : Math.ceil(skb.len / mss);
}

/** tcp_highest_sack_seq: the end of the highest SACKed data, snd_una when nothing is SACKed. */
export function tcpHighestSackSeq(sk: TcpSock): number {
  return sk.sackedOut ? sk.highestSackSeq : sk.sndUna;
}

/** tcp_notsent_lowat: the socket's TCP_NOTSENT_LOWAT, else net.ipv4.tcp_notsent_lowat (read each time, as Linux does). */
export function tcpNotsentLowat(sk: TcpSock): number {
  return sk.notsentLowat || sk.netSysctl.tcp_notsent_lowat;
}

/** __sk_stream_is_writeable: free space >= half of what is queued, and under notsent_lowat. */
export function skStreamIsWriteable(sk: TcpSock, wake: number): boolean {
  const wspace = sk.sndbuf - sk.wmemQueued;
  const minWspace = sk.wmemQueued >> 1;
  if (wspace < minWspace) return false;
  if (sk.wmemQueued >= sk.sndbuf) return false;
  const notsent = (sk.writeSeq - sk.sndNxt) >>> 0;
  return notsent * 2 ** wake < tcpNotsentLowat(sk);
}
