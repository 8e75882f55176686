/**
 * The transports' entry points as the network layers call them (Linux's
 * include/net/protocol.h: struct net_protocol for inet_protos,
 * struct inet6_protocol for inet6_protos).
 */
import type { SkBuff } from './skbuff.js';

/**
 * net_protocol: a transport's receive and ICMP-error handlers. The handler
 * gets the skb with data at the transport header and len the transport's
 * bytes; the IP header is at skb.networkHeader, the route type in skb.rtType.
 */
export interface NetProtocol {
  handler(skb: SkBuff): void;
  /** An ICMP error quoting one of our packets: its IP header at `innerOff`, `innerLen` bytes present; the ICMP message's own IP header at `outer`. */
  errHandler?(type: number, code: number, info: number, buf: Buffer, innerOff: number, innerLen: number, outer: number): void;
}

/**
 * inet6_protocol: a transport's receive and ICMPv6-error handlers. The
 * handler gets the skb with data at the upper-layer header and len its
 * bytes; the IPv6 header is at skb.networkHeader (its addresses read in
 * place there), skb.rtType says ours (RTN_LOCAL) or a joined group
 * (RTN_MULTICAST), skb.ip6Flags what the extension headers held.
 */
export interface Net6Protocol {
  handler(skb: SkBuff): void;
  /**
   * An ICMPv6 error quoting one of our packets: its IPv6 header at
   * `innerOff`, `innerLen` bytes present (at least up to 8 bytes of the
   * transport header). PKT_TOOBIG: `info` is the MTU, already applied to
   * the path-MTU cache. The ICMPv6 message's own IPv6 header is at `outer`.
   */
  errHandler?(type: number, code: number, info: number, buf: Buffer, innerOff: number, innerLen: number, outer: number): void;
}
