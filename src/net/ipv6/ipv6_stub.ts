/**
 * What TCP and UDP reach of the IPv6 layer for their AF_INET6 sockets
 * (Linux's ipv6_stub, include/net/ipv6_stubs.h): the one way the transports
 * written beside IPv4 get to ip6_xmit, routes and addresses. The IPv6 layer
 * installs its implementation on the stack when it starts (stack.ipv6Stub);
 * without IPv6 there is none, and AF_INET6 sockets work dual-stack over
 * v4-mapped addresses only.
 */
import type { SkBuff } from '../core/skbuff.js';

export interface Ipv6Stub {
  /** ip6_xmit: skb.data at the transport header; hopLimit -1 for the route's. Returns 0 or a negative errno. */
  xmit(skb: SkBuff, saddr: Uint8Array, daddr: Uint8Array, proto: number, hopLimit: number, tclass: number): number;
  /** The path MTU towards daddr (the route's MTU, lowered by Packet Too Big). */
  pathMtu(daddr: Uint8Array): number;
  /** ipv6_dev_get_saddr: a source address for daddr into out, false if none. */
  chooseSaddr(daddr: Uint8Array, out: Uint8Array): boolean;
  /** ipv6_chk_addr: addr is one of our usable unicast addresses (bind()'s EADDRNOTAVAIL). */
  addrIsLocal(addr: Uint8Array): boolean;
  /** The ifindex a link-local address's sin6_scope_id must name (the TAP's). */
  readonly ifindex: number;
}
