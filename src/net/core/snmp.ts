/**
 * Counters named as Linux names them in /proc/net/snmp, /proc/net/netstat,
 * /proc/net/stat/arp_cache and the netdev stats, so `nstat`-reading habits
 * carry over. Fixed-shape classes: an increment is a property add, no lookup.
 */

export class IpMib {
  Forwarding = 2; // not a router (RFC 1213: 2 = host)
  DefaultTTL = 64;
  InReceives = 0;
  InHdrErrors = 0;
  InAddrErrors = 0;
  ForwDatagrams = 0;
  InUnknownProtos = 0;
  InDiscards = 0;
  InDelivers = 0;
  OutRequests = 0;
  OutDiscards = 0;
  OutNoRoutes = 0;
  ReasmTimeout = 0;
  ReasmReqds = 0;
  ReasmOKs = 0;
  ReasmFails = 0;
  FragOKs = 0;
  FragFails = 0;
  FragCreates = 0;
  OutTransmits = 0;
}

export class IpExtMib {
  InNoRoutes = 0;
  InTruncatedPkts = 0;
  InMcastPkts = 0;
  OutMcastPkts = 0;
  InBcastPkts = 0;
  OutBcastPkts = 0;
  InOctets = 0;
  OutOctets = 0;
  InCsumErrors = 0;
  ReasmOverlaps = 0;
}

export class IcmpMib {
  InMsgs = 0;
  InErrors = 0;
  InCsumErrors = 0;
  InDestUnreachs = 0;
  InTimeExcds = 0;
  InParmProbs = 0;
  InSrcQuenchs = 0;
  InRedirects = 0;
  InEchos = 0;
  InEchoReps = 0;
  InTimestamps = 0;
  InTimestampReps = 0;
  InAddrMasks = 0;
  InAddrMaskReps = 0;
  OutMsgs = 0;
  OutErrors = 0;
  OutRateLimitGlobal = 0;
  OutRateLimitHost = 0;
  OutDestUnreachs = 0;
  OutTimeExcds = 0;
  OutParmProbs = 0;
  OutSrcQuenchs = 0;
  OutRedirects = 0;
  OutEchos = 0;
  OutEchoReps = 0;
  OutTimestamps = 0;
  OutTimestampReps = 0;
  OutAddrMasks = 0;
  OutAddrMaskReps = 0;
}

/** IcmpMsg: per-type counts, shown as InTypeN/OutTypeN for the non-zero ones, as Linux does. */
export class IcmpMsgMib {
  readonly in = new Float64Array(256);
  readonly out = new Float64Array(256);
  toJSON(): Record<string, number> {
    const o: Record<string, number> = {};
    for (let t = 0; t < 256; t++) if (this.in[t]) o[`InType${t}`] = this.in[t];
    for (let t = 0; t < 256; t++) if (this.out[t]) o[`OutType${t}`] = this.out[t];
    return o;
  }
}

/** /proc/net/snmp6's Ip6 lines (shown as Ip6InReceives, ... by nstat). */
export class Ip6Mib {
  InReceives = 0;
  InHdrErrors = 0;
  InTooBigErrors = 0;
  InNoRoutes = 0;
  InAddrErrors = 0;
  InUnknownProtos = 0;
  InTruncatedPkts = 0;
  InDiscards = 0;
  InDelivers = 0;
  OutForwDatagrams = 0;
  OutRequests = 0;
  OutDiscards = 0;
  OutNoRoutes = 0;
  ReasmTimeout = 0;
  ReasmReqds = 0;
  ReasmOKs = 0;
  ReasmFails = 0;
  FragOKs = 0;
  FragFails = 0;
  FragCreates = 0;
  InMcastPkts = 0;
  OutMcastPkts = 0;
  InOctets = 0;
  OutOctets = 0;
  InMcastOctets = 0;
  OutMcastOctets = 0;
  OutTransmits = 0;
}

/** /proc/net/snmp6's Icmp6 lines (the per-type InTypeN/OutTypeN come from an IcmpMsgMib). */
export class Icmp6Mib {
  InMsgs = 0;
  InErrors = 0;
  OutMsgs = 0;
  OutErrors = 0;
  InCsumErrors = 0;
  OutRateLimitHost = 0;
  InDestUnreachs = 0;
  InPktTooBigs = 0;
  InTimeExcds = 0;
  InParmProblems = 0;
  InEchos = 0;
  InEchoReplies = 0;
  InGroupMembQueries = 0;
  InGroupMembResponses = 0;
  InGroupMembReductions = 0;
  InRouterSolicits = 0;
  InRouterAdvertisements = 0;
  InNeighborSolicits = 0;
  InNeighborAdvertisements = 0;
  InRedirects = 0;
  InMLDv2Reports = 0;
  OutDestUnreachs = 0;
  OutPktTooBigs = 0;
  OutTimeExcds = 0;
  OutParmProblems = 0;
  OutEchos = 0;
  OutEchoReplies = 0;
  OutGroupMembQueries = 0;
  OutGroupMembResponses = 0;
  OutGroupMembReductions = 0;
  OutRouterSolicits = 0;
  OutRouterAdvertisements = 0;
  OutNeighborSolicits = 0;
  OutNeighborAdvertisements = 0;
  OutRedirects = 0;
  OutMLDv2Reports = 0;
}

export class UdpMib {
  InDatagrams = 0;
  NoPorts = 0;
  InErrors = 0;
  OutDatagrams = 0;
  RcvbufErrors = 0;
  SndbufErrors = 0;
  InCsumErrors = 0;
  IgnoredMulti = 0;
  MemErrors = 0;
}

export class TcpMib {
  RtoAlgorithm = 1;
  RtoMin = 200;
  RtoMax = 120000;
  MaxConn = -1;
  ActiveOpens = 0;
  PassiveOpens = 0;
  AttemptFails = 0;
  EstabResets = 0;
  CurrEstab = 0;
  InSegs = 0;
  OutSegs = 0;
  RetransSegs = 0;
  InErrs = 0;
  OutRsts = 0;
  InCsumErrors = 0;
}

/** The TCP part of /proc/net/netstat (TcpExt), the counters this stack moves. */
export class TcpExtMib {
  SyncookiesSent = 0;
  SyncookiesRecv = 0;
  SyncookiesFailed = 0;
  EmbryonicRsts = 0;
  OutOfWindowIcmps = 0;
  TW = 0;
  TWRecycled = 0;
  PAWSEstab = 0;
  /** A SYN-ACK echoing a timestamp we never sent (tcp_rcv_synsent_state_process's PAWS): answered with a reset. */
  PAWSActiveRejected = 0;
  /** Segments starting beyond the receive window (tcp_sequence's INVALID_SEQUENCE). */
  BeyondWindow = 0;
  PAWSOldAck = 0;
  DelayedACKs = 0;
  DelayedACKLost = 0;
  ListenOverflows = 0;
  ListenDrops = 0;
  TCPRenoRecovery = 0;
  TCPRenoFailures = 0;
  TCPLossUndo = 0;
  TCPTimeouts = 0;
  TCPFastRetrans = 0;
  TCPSlowStartRetrans = 0;
  TCPLostRetransmit = 0;
  TCPAbortOnData = 0;
  TCPAbortOnClose = 0;
  TCPAbortOnMemory = 0;
  TCPMemoryPressures = 0;
  TCPMemoryPressuresChrono = 0;
  PruneCalled = 0;
  RcvPruned = 0;
  OfoPruned = 0;
  TCPRcvCollapsed = 0;
  TCPTimeWaitOverflow = 0;
  TCPAbortOnTimeout = 0;
  TCPAbortOnLinger = 0;
  TCPSYNChallenge = 0;
  TCPChallengeACK = 0;
  TCPOFOQueue = 0;
  TCPOFODrop = 0;
  TCPOFOMerge = 0;
  TCPRcvQDrop = 0;
  TCPZeroWindowDrop = 0;
  TCPToZeroWindowAdv = 0;
  TCPFromZeroWindowAdv = 0;
  TCPWantZeroWindowAdv = 0;
  TCPSynRetrans = 0;
  TCPFastOpenActive = 0;
  TCPFastOpenActiveFail = 0;
  TCPFastOpenBlackhole = 0;
  TCPOrigDataSent = 0;
  TCPKeepAlive = 0;
  TCPDSACKOldSent = 0;
  TCPDSACKOfoSent = 0;
  TCPACKSkippedSynRecv = 0;
  TCPACKSkippedPAWS = 0;
  TCPACKSkippedSeq = 0;
  TCPACKSkippedChallenge = 0;
  TCPWinProbe = 0;
  TCPReqQFullDrop = 0;
  TCPReqQFullDoCookies = 0;
  /** Fast Open, passive: children made at the SYN; a bad cookie or no child; the queue full; cookie requests; a cookie of the backup key. */
  TCPFastOpenPassive = 0;
  TCPFastOpenPassiveFail = 0;
  TCPFastOpenListenOverflow = 0;
  TCPFastOpenCookieReqd = 0;
  TCPFastOpenPassiveAltKey = 0;
  TCPHPHits = 0;
  TCPPureAcks = 0;
  TCPHPAcks = 0;
  TCPSackRecovery = 0;
  TCPSACKReneging = 0;
  TCPSACKReorder = 0;
  TCPRenoReorder = 0;
  TCPTSReorder = 0;
  TCPFullUndo = 0;
  TCPPartialUndo = 0;
  TCPDSACKUndo = 0;
  TCPDSACKRecv = 0;
  TCPDSACKOfoRecv = 0;
  TCPDSACKRecvSegs = 0;
  TCPDSACKIgnoredOld = 0;
  TCPDSACKIgnoredNoUndo = 0;
  TCPDSACKIgnoredDubious = 0;
  TCPSACKDiscard = 0;
  TCPLossProbes = 0;
  TCPLossProbeRecovery = 0;
  TCPSpuriousRTOs = 0;
  TCPSackRecoveryFail = 0;
  TCPLossFailures = 0;
  TCPRenoRecoveryFail = 0;
  TCPMD5NotFound = 0;
  TCPMD5Unexpected = 0;
  TCPMD5Failure = 0;
  TCPRetransFail = 0;
  TCPDeferAcceptDrop = 0;
  TCPMTUPSuccess = 0;
  TCPMTUPFail = 0;
  /** tapstack's own (Linux loads no untrusted code): calls into a loaded congestion module that threw, set nonsense or overran (tcp_cong_module.ts). */
  TCPCongModuleFault = 0;
  /** Sockets moved from a faulty or stopped congestion module to Reno. */
  TCPCongModuleFallback = 0;
}

/** /proc/net/stat/arp_cache columns. */
export class NeighStats {
  entries = 0;
  allocs = 0;
  destroys = 0;
  lookups = 0;
  hits = 0;
  res_failed = 0;
  rcv_probes_mcast = 0;
  rcv_probes_ucast = 0;
  periodic_gc_runs = 0;
  forced_gc_runs = 0;
  unresolved_discards = 0;
  table_fulls = 0;
}

/** struct rtnl_link_stats64, the fields a TAP-backed device can know. */
export class LinkStats {
  rx_packets = 0;
  tx_packets = 0;
  rx_bytes = 0;
  tx_bytes = 0;
  rx_errors = 0;
  tx_errors = 0;
  rx_dropped = 0;
  tx_dropped = 0;
  multicast = 0;
  rx_length_errors = 0;
  rx_otherhost_dropped = 0;
  rx_nohandler = 0;
  /** Carrier losses and returns (the TAP deleted, then re-attached), as /sys/class/net/X/carrier_{down,up}_count. */
  carrier_down_count = 0;
  carrier_up_count = 0;
}

/**
 * Why a packet was dropped, after the kernel's enum skb_drop_reason: every
 * drop in the stack names one, and the count per reason is exported.
 */
export const SKB_DROP_REASON = {
  NOT_SPECIFIED: 0,
  PKT_TOO_SMALL: 1,
  OTHERHOST: 2,
  UNHANDLED_PROTO: 3,
  IP_CSUM: 4,
  IP_INHDR: 5,
  IP_INADDRERRORS: 6,
  IP_NOPROTO: 7,
  IP_OUTNOROUTES: 8,
  NEIGH_FAILED: 9,
  NEIGH_QUEUEFULL: 10,
  FRAG_REASM_TIMEOUT: 11,
  DUP_FRAG: 12,
  FRAG_OVERLAP: 13,
  FRAG_TOO_BIG: 14,
  FRAG_MEM_LIMIT: 15,
  FRAG_INVALID: 16,
  PKT_TOO_BIG: 17,
  TCP_CSUM: 18,
  UDP_CSUM: 19,
  ICMP_CSUM: 20,
  NO_SOCKET: 21,
  ARP_INVALID: 22,
  ICMP_RATELIMIT: 23,
  TX_QUEUE_FULL: 24,
  TX_ERROR: 25,
  IP_INVALID_SOURCE: 26,
  ICMP_IGNORED: 27,
  IPV6_BAD_EXTHDR: 28,
  IPV6_NDISC_FRAG: 29,
  IPV6_NDISC_HOP_LIMIT: 30,
  IPV6_NDISC_BAD_CODE: 31,
  IPV6_NDISC_BAD_OPTIONS: 32,
  IPV6_NDISC_NS_OTHERHOST: 33,
  IPV6_DAD_FAILED: 34,
  SOCKET_RCVBUFF: 35,
  /** Over the protocol's memory limits (tcp_mem, udp_mem). */
  PROTO_MEM: 36,
  /** Pruned from the out-of-order queue to make room (tcp_prune_ofo_queue). */
  TCP_OFO_QUEUE_PRUNE: 37,
  /** A datagram from one of our own addresses arrived on the link (ip_route_input: martian source). */
  IP_LOCAL_SOURCE: 38,
  /** A SYN in a synchronized state, answered by a challenge ACK (tcp_validate_incoming). */
  TCP_INVALID_SYN: 39,
  /** The device cannot transmit: its link is down (dev_queue_xmit on a device that is not running). */
  DEV_READY: 40,
  /** No MD5 signature where the socket has a key for the peer (tcp_inbound_md5_hash). */
  TCP_MD5NOTFOUND: 41,
  /** An MD5 signature where the socket has no key for the peer. */
  TCP_MD5UNEXPECTED: 42,
  /** A wrong MD5 signature. */
  TCP_MD5FAILURE: 43,
  /** PAWS: the timestamp is older than ts_recent (tcp_validate_incoming). */
  TCP_RFC7323_PAWS: 44,
  /** PAWS on an old pure ACK: common on reordered ACKs, neither counted as PAWSEstab nor answered. */
  TCP_RFC7323_PAWS_ACK: 45,
  /** Not in the receive window (tcp_sequence). */
  TCP_INVALID_SEQUENCE: 46,
  /** A reset, taken or answered by a challenge ACK. */
  TCP_RESET: 47,
  /** Neither ACK, RST nor SYN set. */
  TCP_FLAGS: 48,
  /** An ACK of data never sent, answered by a challenge ACK. */
  TCP_ACK_UNSENT_DATA: 49,
  /** Data the receive queue already has (a retransmission): D-SACKed. */
  TCP_OLD_DATA: 50,
  /** Data while the receive window is zero. */
  TCP_ZEROWINDOW: 51,
  /** Data past the receive window. */
  TCP_OVERWINDOW: 52,
} as const;
export type DropReason = (typeof SKB_DROP_REASON)[keyof typeof SKB_DROP_REASON];
/** The reasons by number, as nstat and `tapstack trace` name them. */
export const SKB_DROP_REASON_NAMES = Object.keys(SKB_DROP_REASON);
const DROP_NAMES = SKB_DROP_REASON_NAMES;

export class DropStats {
  readonly counts = new Float64Array(DROP_NAMES.length);
  toJSON(): Record<string, number> {
    const o: Record<string, number> = {};
    for (let i = 0; i < DROP_NAMES.length; i++) o[DROP_NAMES[i]] = this.counts[i];
    return o;
  }
}

/** One stack's counters, grouped as the kernel groups them. */
export class Mibs {
  readonly Ip = new IpMib();
  readonly IpExt = new IpExtMib();
  readonly Icmp = new IcmpMib();
  readonly IcmpMsg = new IcmpMsgMib();
  readonly Udp = new UdpMib();
  /** /proc/net/snmp6's Udp6 lines: the same counters for IPv6 datagrams. */
  readonly Udp6 = new UdpMib();
  readonly Tcp = new TcpMib();
  readonly TcpExt = new TcpExtMib();
  readonly Arp = new NeighStats();
  readonly Ip6 = new Ip6Mib();
  readonly Icmp6 = new Icmp6Mib();
  /** Icmp6InTypeN / Icmp6OutTypeN. */
  readonly Icmp6Msg = new IcmpMsgMib();
  /** /proc/net/stat/ndisc_cache. */
  readonly Ndisc = new NeighStats();
  readonly Drop = new DropStats();
}
