/**
 * ICMPv6 errors on an AF_INET6 socket's error queue (net/ipv6/datagram.c's
 * ipv6_icmp_error), under IPV6_RECVERR. The option itself, and
 * IPV6_RECVPKTINFO's in6_pktinfo, are in ipv4/ip_sockglue.ts: TCP and UDP,
 * which both families share, set and read them there.
 */
import { AF_INET6, SO_EE_ORIGIN_ICMP6, type SockAddr } from '../../uapi.js';
import { sockIcmpError } from '../core/errqueue.js';
import { INET6_RECVERR, type Sock } from '../core/sock.js';
import { ipv6IsLinkLocal } from '../../lib/addr.js';

/** An IPv6 address of `buf` at `off` as a sockaddr (a link-local one scoped to `ifindex`). */
function sa6(buf: Buffer, off: number, port: number, ifindex: number): SockAddr {
  const a6 = Uint8Array.prototype.slice.call(buf, off, off + 16);
  return { family: AF_INET6, port, addr: 0, addr6: a6, flowinfo: 0, scopeId: ipv6IsLinkLocal(a6) ? ifindex : 0 };
}

/**
 * ipv6_icmp_error: with IPV6_RECVERR on, an ICMPv6 error about the packet
 * quoted at `inner` (the message's own IPv6 header at `outer`) is queued:
 * the ICMPv6 sender as offender, the quoted destination and `port` as
 * msg_name, the quote from `payloadOff` on as data.
 */
export function ipv6IcmpError(sk: Sock, err: number, type: number, code: number, info: number, buf: Buffer, outer: number, inner: number, innerEnd: number, port: number, payloadOff: number, ifindex: number): void {
  if (!(sk.cmsgFlags & INET6_RECVERR)) return;
  const offender = outer >= 0 ? sa6(buf, outer + 8, 0, ifindex) : ({ family: AF_INET6, port: 0, addr: 0, addr6: new Uint8Array(16) } as SockAddr);
  sockIcmpError(sk, SO_EE_ORIGIN_ICMP6, err, type, code, info, offender, sa6(buf, inner + 24, port, ifindex), buf.subarray(Math.min(payloadOff, innerEnd), innerEnd));
}
