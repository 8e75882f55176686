/**
 * UDP over IPv6 (net/ipv6/udp.c): receive (__udp6_lib_rcv: the checksum
 * is mandatory, so a zero one is an error; look up; queue, or ICMPv6 port
 * unreachable), ICMPv6 errors to the sending socket (__udp6_lib_err), and
 * the IPv6 halves of connect and sendmsg for AF_INET6 sockets. The socket
 * calls and the table are src/net/ipv4/udp.ts's, shared by both families
 * as Linux shares udp_table: an AF_INET6 socket talks to IPv4 peers through
 * v4-mapped addresses on the IPv4 paths.
 */
import { csumFold, csumIpv6Magic, csumPartial } from '../../lib/checksum.js';
import { ipv6IsMulticast, ipv6IsUnspecified, ipv6IsV4Mapped } from '../../lib/addr.js';
import { ICMPV6_PKT_TOOBIG } from '../../wire/icmpv6.js';
import { ETH_HLEN } from '../../wire/ethernet.js';
import { UDP_HLEN, udpBuild, udpCheck, udpDest, udpLen, udpSource } from '../../wire/udp.js';
import { allocSkb } from '../core/skbuff.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { UDP_ESTABLISHED, UDP_MAX_PAYLOAD6, type UdpSock } from '../ipv4/udp_sock.js';
import { udpErrReport, udpQueueRcv, type UdpProto } from '../ipv4/udp.js';
import type { Stack } from '../stack.js';
import type { Net6Protocol } from './ip6_input.js';
import type { SkBuff } from '../core/skbuff.js';
import { RTN_LOCAL } from '../ipv4/route.js';
import { ip6Xmit } from './ip6_output.js';
import { ipv6ChooseSaddr } from './addrconf.js';
import { icmpv6ErrConvert, icmpv6PortUnreach } from './icmp.js';
import { AF_INET6, EADDRNOTAVAIL, EAFNOSUPPORT, EMSGSIZE, ENETUNREACH, ENOBUFS, IPPROTO_UDP } from '../../uapi.js';
import { IPV6_HLEN, NEXTHDR_FRAGMENT } from '../../wire/ipv6.js';
import { LOOPBACK4_IPV6 } from '../core/sock.js';


function v6Equal(a: Uint8Array, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[bOff + i]) return false;
  return true;
}

/** __udp_v6_is_mcast_sock: may this AF_INET6 socket take a multicast datagram? */
function udp6IsMcastSock(sk: UdpSock, buf: Buffer, dOff: number, sOff: number, rmtPort: number, hnum: number): boolean {
  if (sk.num !== hnum || sk.family !== AF_INET6) return false;
  if (sk.dport && sk.dport !== rmtPort) return false;
  if (!ipv6IsUnspecified(sk.v6Daddr) && !v6Equal(sk.v6Daddr, buf, sOff)) return false;
  if (!ipv6IsUnspecified(sk.v6RcvSaddr) && !v6Equal(sk.v6RcvSaddr, buf, dOff)) return false;
  return true;
}

export function udpv6Protocol(stack: Stack): Net6Protocol {
  return {
    /** __udp6_lib_rcv: skb.data at the UDP header. */
    handler(skb: SkBuff): void {
      const buf = skb.buf;
      const off = skb.data;
      const len = skb.len;
      const sOff = skb.networkHeader + 8;
      const dOff = skb.networkHeader + 24;
      const udp = stack.udp;
      const mib = stack.mibs.Udp6;
      const drop = stack.mibs.Drop.counts;
      if (len < UDP_HLEN) {
        mib.InErrors++;
        drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
        return;
      }
      let ulen = udpLen(buf, off);
      // A zero length is the jumbogram form: the IPv6 payload length rules.
      if (ulen === 0) ulen = len;
      if (ulen < UDP_HLEN || ulen > len) {
        mib.InErrors++;
        drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
        return;
      }
      // RFC 8200 8.1: the checksum is mandatory; a zero one is dropped and counted (udp6_csum_init).
      if (udpCheck(buf, off) === 0) {
        mib.InCsumErrors++;
        mib.InErrors++;
        drop[SKB_DROP_REASON.UDP_CSUM]++;
        return;
      }
      if (!skb.csumValid && csumFold(csumPartial(buf, off, ulen, csumIpv6Magic(buf, sOff, buf, dOff, IPPROTO_UDP, ulen))) !== 0) {
        mib.InCsumErrors++;
        mib.InErrors++;
        drop[SKB_DROP_REASON.UDP_CSUM]++;
        return;
      }
      const sport = udpSource(buf, off);
      const dport = udpDest(buf, off);
      const frameLen = ETH_HLEN + IPV6_HLEN + len;
      if (skb.rtType !== RTN_LOCAL) {
        // __udp6_lib_mcast_deliver: a copy to every matching socket.
        let n = 0;
        for (const sk of udp.table.portSlot(dport)) {
          if (!udp6IsMcastSock(sk, buf, dOff, sOff, sport, dport)) continue;
          udpQueueRcv(udp, sk, buf, off + UDP_HLEN, ulen - UDP_HLEN, frameLen, AF_INET6, 0, sport, buf, sOff);
          n++;
        }
        if (!n) {
          drop[SKB_DROP_REASON.NO_SOCKET]++;
          mib.IgnoredMulti++;
        }
        return;
      }
      const sk = udp.table.lookup6(buf, sOff, sport, buf, dOff, dport);
      if (sk) {
        udpQueueRcv(udp, sk, buf, off + UDP_HLEN, ulen - UDP_HLEN, frameLen, AF_INET6, 0, sport, buf, sOff);
        return;
      }
      drop[SKB_DROP_REASON.NO_SOCKET]++;
      mib.NoPorts++;
      icmpv6PortUnreach(stack, skb);
    },
    errHandler(type, code, _info, buf, innerOff, innerLen) {
      udpv6Err(stack.udp, type, code, buf, innerOff, innerLen);
    },
  };
}

/**
 * __udp6_lib_err: the socket that sent the quoted datagram (our address and
 * port are its source) learns a hard error if it is connected
 * (icmpv6ErrConvert; Packet Too Big is EMSGSIZE, hard under the default
 * IPV6_PMTUDISC_WANT once the path MTU is updated); no socket: Icmp6InErrors.
 */
export function udpv6Err(udp: UdpProto, type: number, code: number, buf: Buffer, innerOff: number, innerLen: number): void {
  // A large datagram we sent went out in fragments: the quote starts with its fragment header.
  const uh = innerOff + IPV6_HLEN + (buf[innerOff + 6] === NEXTHDR_FRAGMENT ? 8 : 0);
  if (innerOff + innerLen < uh + 4) return;
  const sk = udp.table.lookup6(buf, innerOff + 24, udpDest(buf, uh), buf, innerOff + 8, udpSource(buf, uh));
  if (!sk) {
    udp.stack.mibs.Icmp6.InErrors++;
    return;
  }
  const { errno, fatal } = icmpv6ErrConvert(type, code);
  // Packet Too Big is a hard error under the default IPV6_PMTUDISC_WANT (the path MTU is already updated).
  const hard = fatal || type === ICMPV6_PKT_TOOBIG;
  udpErrReport(sk, errno, hard);
}

/**
 * udpv6_sendmsg for a non-mapped IPv6 destination: source address (bound,
 * or RFC 6724's choice), header, checksum (mandatory; 0 goes out as
 * 0xffff), ip6_xmit (which fragments what exceeds the path MTU). The
 * largest payload is 65527 bytes, as ip6_append_data allows.
 */
export function udpv6Send(udp: UdpProto, sk: UdpSock, data: Uint8Array, daddr: Uint8Array, dport: number): number {
  const stack = udp.stack;
  if (data.length > UDP_MAX_PAYLOAD6) return -EMSGSIZE;
  if (ipv6IsV4Mapped(sk.v6Saddr)) return -EAFNOSUPPORT; // bound to an IPv4 address
  const saddr = udp.saddr6Scratch;
  if (!ipv6IsUnspecified(sk.v6Saddr)) saddr.set(sk.v6Saddr);
  else if (!ipv6ChooseSaddr(stack, daddr, saddr)) return -EADDRNOTAVAIL;
  const ulen = UDP_HLEN + data.length;
  const skb = allocSkb(ulen);
  const at = skb.put(ulen);
  const b = skb.buf;
  udpBuild(b, at, sk.num, dport, data);
  let c = csumFold(csumPartial(b, at, ulen, csumIpv6Magic(saddr, 0, daddr, 0, IPPROTO_UDP, ulen)));
  if (c === 0) c = 0xffff;
  b[at + 6] = c >>> 8;
  b[at + 7] = c & 255;
  const hops = ipv6IsMulticast(daddr) ? sk.mcHops : sk.hopLimit;
  const rc = ip6Xmit(stack, skb, saddr, daddr, IPPROTO_UDP, hops, sk.tclass);
  if (rc < 0) {
    if (rc === -ENOBUFS) stack.mibs.Udp6.SndbufErrors++;
    return rc;
  }
  stack.mibs.Udp6.OutDatagrams++;
  return data.length;
}

/**
 * __ip6_datagram_connect for a non-mapped address: choose the source when
 * unbound (binding the local address, rehashed), remember the peer; the
 * IPv4 fields get LOOPBACK4_IPV6 so IPv4 lookups never match the socket.
 */
export function udpv6Connect(udp: UdpProto, sk: UdpSock, daddr: Uint8Array, dport: number): number {
  if (ipv6IsUnspecified(daddr)) return -ENETUNREACH;
  if (ipv6IsV4Mapped(sk.v6RcvSaddr)) return -EAFNOSUPPORT; // bound to an IPv4 address
  const saddr = udp.saddr6Scratch;
  if (!ipv6IsUnspecified(sk.v6Saddr)) saddr.set(sk.v6Saddr);
  else if (!ipv6ChooseSaddr(udp.stack, daddr, saddr)) return -ENETUNREACH;
  if (ipv6IsUnspecified(sk.v6Saddr)) sk.v6Saddr.set(saddr);
  if (ipv6IsUnspecified(sk.v6RcvSaddr)) {
    sk.v6RcvSaddr.set(saddr);
    sk.rcvSaddr = LOOPBACK4_IPV6;
    udp.table.rehash(sk);
  }
  sk.v6Daddr.set(daddr);
  sk.daddr = LOOPBACK4_IPV6;
  sk.dport = dport;
  sk.state = UDP_ESTABLISHED;
  return 0;
}

/** Give the shared UDP calls their IPv6 paths. */
export function udpv6Init(stack: Stack): void {
  const udp = stack.udp;
  udp.send6 = udpv6Send;
  udp.connect6 = udpv6Connect;
}
