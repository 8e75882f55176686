/**
 * The SOL_IP options of a TCP socket (net/ipv4/ip_sockglue.c,
 * do_ip_setsockopt / do_ip_getsockopt), on AF_INET and AF_INET6 sockets
 * alike (ipv6_setsockopt hands SOL_IP to ip_setsockopt): IP_TOS (the ECN
 * bits stay TCP's), IP_TTL, IP_MTU_DISCOVER (whether segments carry DF:
 * ip_dont_fragment) and IP_FREEBIND (bind to an address not ours).
 */
import type { TcpSock } from './tcp_sock.js';
import { EINVAL, ENOPROTOOPT, IP_TOS, IP_TTL } from '../../uapi.js';

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
