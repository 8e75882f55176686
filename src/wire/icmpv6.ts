/** ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861) types, codes and options, as linux/icmpv6.h and net/ndisc.h name them. */
export const ICMPV6_HLEN = 8;

export const ICMPV6_DEST_UNREACH = 1;
export const ICMPV6_PKT_TOOBIG = 2;
export const ICMPV6_TIME_EXCEED = 3;
export const ICMPV6_PARAMPROB = 4;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;
export const ICMPV6_MGM_QUERY = 130;
export const ICMPV6_MGM_REPORT = 131;
export const ICMPV6_MGM_REDUCTION = 132;
export const NDISC_ROUTER_SOLICITATION = 133;
export const NDISC_ROUTER_ADVERTISEMENT = 134;
export const NDISC_NEIGHBOUR_SOLICITATION = 135;
export const NDISC_NEIGHBOUR_ADVERTISEMENT = 136;
export const NDISC_REDIRECT = 137;
export const ICMPV6_MLD2_REPORT = 143;

// Destination unreachable codes.
export const ICMPV6_NOROUTE = 0;
export const ICMPV6_ADM_PROHIBITED = 1;
export const ICMPV6_NOT_NEIGHBOUR = 2;
export const ICMPV6_ADDR_UNREACH = 3;
export const ICMPV6_PORT_UNREACH = 4;
export const ICMPV6_POLICY_FAIL = 5;
export const ICMPV6_REJECT_ROUTE = 6;
// Time exceeded codes.
export const ICMPV6_EXC_HOPLIMIT = 0;
export const ICMPV6_EXC_FRAGTIME = 1;
// Parameter problem codes.
export const ICMPV6_HDR_FIELD = 0;
export const ICMPV6_UNK_NEXTHDR = 1;
export const ICMPV6_UNK_OPTION = 2;
export const ICMPV6_HDR_INCOMP = 3;

/** Error messages have the high bit of the type clear (RFC 4443 2.1). */
export const icmpv6IsError = (type: number): boolean => (type & 0x80) === 0;

// Neighbor Discovery options (RFC 4861 4.6).
export const ND_OPT_SOURCE_LL_ADDR = 1;
export const ND_OPT_TARGET_LL_ADDR = 2;
export const ND_OPT_PREFIX_INFO = 3;
export const ND_OPT_REDIRECT_HDR = 4;
export const ND_OPT_MTU = 5;
export const ND_OPT_NONCE = 14;

// Neighbor Advertisement flags (first byte after the ICMPv6 header).
export const NA_ROUTER = 0x80;
export const NA_SOLICITED = 0x40;
export const NA_OVERRIDE = 0x20;

// Prefix information option flags.
export const PREFIX_ONLINK = 0x80;
export const PREFIX_AUTOCONF = 0x40;

// MLDv2 (RFC 3810) record types.
export const MLD2_MODE_IS_INCLUDE = 1;
export const MLD2_MODE_IS_EXCLUDE = 2;
export const MLD2_CHANGE_TO_INCLUDE = 3;
export const MLD2_CHANGE_TO_EXCLUDE = 4;
