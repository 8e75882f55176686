/**
 * The IP-level socket options every inet socket has and what they add to
 * recvmsg (net/ipv4/ip_sockglue.c): IP_RECVERR (ICMP errors kept on the
 * error queue, ip_icmp_error) and IP_PKTINFO (struct in_pktinfo with each
 * datagram, ip_cmsg_recv_pktinfo); and their IPv6 twins IPV6_RECVERR and
 * IPV6_RECVPKTINFO, which TCP and UDP (shared by both families) set here.
 */
import { AF_INET, IP_PKTINFO, IP_RECVERR, IPV6_PKTINFO, IPV6_RECVERR, IPV6_RECVPKTINFO, SO_EE_ORIGIN_ICMP, SOL_IP, SOL_IPV6, type SockAddr } from '../../uapi.js';
import { sockIcmpError } from '../core/errqueue.js';
import { type Cmsg, INET6_RECVERR, INET6_RXINFO, INET_PKTINFO, INET_RECVERR, type Sock } from '../core/sock.js';
import { ipDaddr, ipSaddr } from '../../wire/ipv4.js';
import { ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_PARAMETERPROB } from '../../wire/icmp.js';

/**
 * ip_setsockopt for IP_RECVERR and IP_PKTINFO (booleans). Turning
 * IP_RECVERR off purges the error queue. Returns undefined for another
 * option (the caller's own, or ENOPROTOOPT).
 */
export function ipSetsockoptFlag(sk: Sock, name: number, val: number): number | undefined {
  const bit = name === IP_RECVERR ? INET_RECVERR : name === IP_PKTINFO ? INET_PKTINFO : 0;
  if (!bit) return undefined;
  sk.cmsgFlags = val ? sk.cmsgFlags | bit : sk.cmsgFlags & ~bit;
  if (name === IP_RECVERR && !val) sk.errQueuePurge();
  return 0;
}

/**
 * ipv6_setsockopt for IPV6_RECVERR and IPV6_RECVPKTINFO (booleans; turning
 * IPV6_RECVERR off purges the error queue). Undefined for another option.
 * Here rather than in ipv6/ because TCP and UDP, shared by both families,
 * call it.
 */
export function ipv6SetsockoptFlag(sk: Sock, name: number, val: number): number | undefined {
  const bit = name === IPV6_RECVERR ? INET6_RECVERR : name === IPV6_RECVPKTINFO ? INET6_RXINFO : 0;
  if (!bit) return undefined;
  sk.cmsgFlags = val ? sk.cmsgFlags | bit : sk.cmsgFlags & ~bit;
  if (name === IPV6_RECVERR && !val) sk.errQueuePurge();
  return 0;
}

/** ipv6_getsockopt for IPV6_RECVERR and IPV6_RECVPKTINFO; undefined for another option. */
export function ipv6GetsockoptFlag(sk: Sock, name: number): number | undefined {
  if (name === IPV6_RECVERR) return sk.cmsgFlags & INET6_RECVERR ? 1 : 0;
  if (name === IPV6_RECVPKTINFO) return sk.cmsgFlags & INET6_RXINFO ? 1 : 0;
  return undefined;
}

/** ip_getsockopt for IP_RECVERR and IP_PKTINFO; undefined for another option. */
export function ipGetsockoptFlag(sk: Sock, name: number): number | undefined {
  if (name === IP_RECVERR) return sk.cmsgFlags & INET_RECVERR ? 1 : 0;
  if (name === IP_PKTINFO) return sk.cmsgFlags & INET_PKTINFO ? 1 : 0;
  return undefined;
}

/**
 * icmp_unreach's info for the transport: the next-hop MTU of a
 * "fragmentation needed", the pointer of a parameter problem, else 0.
 */
export function icmpUnreachInfo(type: number, code: number, raw: number): number {
  if (type === ICMP_DEST_UNREACH && code === ICMP_FRAG_NEEDED) return raw & 0xffff;
  if (type === ICMP_PARAMETERPROB) return raw >>> 24;
  return 0;
}

/**
 * ip_icmp_error: an ICMP error about the IPv4 packet quoted at `inner` in
 * `buf` (the ICMP message's own IP header at `outer`): queued with the
 * ICMP sender as offender, the quoted destination and `port` as msg_name,
 * and the quote from `payloadOff` on as data. The caller checks
 * IP_RECVERR where Linux does.
 */
export function ipIcmpError(sk: Sock, err: number, type: number, code: number, info: number, buf: Buffer, outer: number, inner: number, innerEnd: number, port: number, payloadOff: number): void {
  const offender: SockAddr = { family: AF_INET, port: 0, addr: outer >= 0 ? ipSaddr(buf, outer) : 0, addr6: null };
  const name: SockAddr = { family: AF_INET, port, addr: ipDaddr(buf, inner), addr6: null };
  sockIcmpError(sk, SO_EE_ORIGIN_ICMP, err, type, code, info, offender, name, buf.subarray(Math.min(payloadOff, innerEnd), innerEnd));
}

/**
 * ip_cmsg_recv_pktinfo: struct in_pktinfo of a datagram received on
 * `ifindex` for `daddr`: ipi_ifindex, ipi_spec_dst (the local address a
 * reply goes from: `specDst`) and ipi_addr (the header's destination).
 */
export function ipCmsgPktinfo(ifindex: number, specDst: number, daddr: number): Cmsg {
  const data = Buffer.alloc(12);
  data.writeInt32LE(ifindex, 0);
  data.writeUInt32BE(specDst >>> 0, 4);
  data.writeUInt32BE(daddr >>> 0, 8);
  return { level: SOL_IP, type: IP_PKTINFO, data };
}

/**
 * ip6_datagram_recv_common_ctl's struct in6_pktinfo (IPV6_PKTINFO) for an
 * AF_INET6 socket: the datagram's destination (an IPv4 one v4-mapped) and
 * the interface it came in on.
 */
export function ipv6CmsgPktinfo(daddr: Uint8Array, ifindex: number): Cmsg {
  const data = Buffer.alloc(20);
  data.set(daddr.subarray(0, 16), 0);
  data.writeInt32LE(ifindex, 16);
  return { level: SOL_IPV6, type: IPV6_PKTINFO, data };
}
