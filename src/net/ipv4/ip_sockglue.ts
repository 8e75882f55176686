/**
 * The IP-level socket options (net/ipv4/ip_sockglue.c, do_ip_setsockopt /
 * do_ip_getsockopt). Of a TCP socket, on AF_INET and AF_INET6 sockets
 * alike (ipv6_setsockopt hands SOL_IP to ip_setsockopt): IP_TOS (the ECN
 * bits stay TCP's), IP_TTL, IP_MTU_DISCOVER (whether segments carry DF:
 * ip_dont_fragment) and IP_FREEBIND (bind to an address not ours). Of every
 * inet socket, and what they add to recvmsg: IP_RECVERR (ICMP errors kept
 * on the error queue, ip_icmp_error) and IP_PKTINFO (struct in_pktinfo with
 * each datagram, ip_cmsg_recv_pktinfo); and their IPv6 twins IPV6_RECVERR
 * and IPV6_RECVPKTINFO, which TCP and UDP (shared by both families) set here.
 */
import { AF_INET, IP_PKTINFO, IP_RECVERR, IPV6_PKTINFO, IPV6_RECVERR, IPV6_RECVPKTINFO, SO_EE_ORIGIN_ICMP, SOL_IP, SOL_IPV6, type SockAddr } from '../../uapi.js';
import { sockIcmpError } from '../core/errqueue.js';
import { type Cmsg, INET6_RECVERR, INET6_RXINFO, INET_PKTINFO, INET_RECVERR, type Sock } from '../core/sock.js';
import { ipDaddr, ipSaddr } from '../../wire/ipv4.js';
import { ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_PARAMETERPROB } from '../../wire/icmp.js';
import type { TcpSock } from './tcp_sock.js';
import { EINVAL, ENOPROTOOPT, IP_TOS, IP_TTL } from '../../uapi.js';

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

export const IP_MTU_DISCOVER = 10;
export const IP_FREEBIND = 15;
export const IP_PMTUDISC_DONT = 0;
export const IP_PMTUDISC_WANT = 1;
export const IP_PMTUDISC_DO = 2;
export const IP_PMTUDISC_PROBE = 3;
export const IP_PMTUDISC_INTERFACE = 4;
export const IP_PMTUDISC_OMIT = 5;
/** net.ipv4.ip_default_ttl, what IP_TTL -1 stands for. */
const IP_DEFAULT_TTL = 64;

/**
 * The int an option's bytes make (ip_setsockopt): an int when there are
 * four, else one byte, else 0. Returns null for an option that needs at
 * least one byte and got none.
 */
export function ipOptvalInt(optval: Buffer): number {
  if (optval.length >= 4) return optval.readInt32LE(0);
  if (optval.length >= 1) return optval[0];
  return 0;
}

/** do_ip_setsockopt for a TCP socket, the value already an int. */
export function ipSetsockopt(sk: TcpSock, optname: number, val: number): number {
  switch (optname) {
    case IP_TOS: {
      // __ip_sock_set_tos: a stream socket keeps its own ECN bits.
      const tos = (val & 0xff & ~3) | (sk.tos & 3);
      sk.tos = tos;
      return 0;
    }
    case IP_TTL:
      if (val !== -1 && (val < 1 || val > 255)) return -EINVAL;
      sk.ttl = val === -1 ? IP_DEFAULT_TTL : val;
      return 0;
    case IP_MTU_DISCOVER:
      if (val < IP_PMTUDISC_DONT || val > IP_PMTUDISC_OMIT) return -EINVAL;
      sk.pmtudisc = val;
      return 0;
    case IP_FREEBIND:
      sk.freebind = val !== 0;
      return 0;
    default:
      return -ENOPROTOOPT;
  }
}

/** do_ip_getsockopt for a TCP socket's int options. */
export function ipGetsockopt(sk: TcpSock, optname: number): number {
  switch (optname) {
    case IP_TOS:
      return sk.tos;
    case IP_TTL:
      return sk.ttl;
    case IP_MTU_DISCOVER:
      return sk.pmtudisc;
    case IP_FREEBIND:
      return sk.freebind ? 1 : 0;
    default:
      return -ENOPROTOOPT;
  }
}

/**
 * ip_dont_fragment: DF on what a socket sends (IP_PMTUDISC_DO, or WANT on a
 * route whose MTU is not locked); request and TIME_WAIT socks, which have no
 * option of their own, send with DF.
 */
export function ipDontFragment(sk: { pmtudisc?: number }): boolean {
  const p = sk.pmtudisc ?? IP_PMTUDISC_WANT;
  return p === IP_PMTUDISC_DO || p === IP_PMTUDISC_WANT;
}
