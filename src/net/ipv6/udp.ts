/**
 * UDP over IPv6 (net/ipv6/udp.c): receive (__udp6_lib_rcv: the checksum
 * is mandatory, so a zero one is an error; look up; queue, or ICMPv6 port
 * unreachable), ICMPv6 errors to the sending socket (__udp6_lib_err), and
 * the AF_INET6 socket calls that differ (inet6_bind, ip6_datagram_connect,
 * udpv6_sendmsg, the SOL_IPV6 options). The table and the other calls are
 * src/net/ipv4/udp.ts's, shared by both families as Linux shares
 * udp_table: an AF_INET6 socket talks to IPv4 peers through v4-mapped
 * addresses on the IPv4 paths.
 */
import { ipv6IcmpError } from './datagram.js';
import { ipv6GetsockoptFlag, ipv6SetsockoptFlag } from '../ipv4/ip_sockglue.js';
import { INET6_RECVERR } from '../core/sock.js';
import { POLLERR } from '../../uapi.js';
import { csumFold, csumIpv6Magic, csumPartial } from '../../lib/checksum.js';
import { INADDR_ANY, ipv4IsMulticast, ipv6IsMulticast, ipv6IsUnspecified, ipv6IsV4Mapped, ipv6V4MappedAddr } from '../../lib/addr.js';
import { ICMPV6_PKT_TOOBIG } from '../../wire/icmpv6.js';
import { ETH_HLEN } from '../../wire/ethernet.js';
import { UDP_HLEN, udpBuild, udpCheck, udpDest, udpLen, udpSource } from '../../wire/udp.js';
import { allocSkb } from '../core/skbuff.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { UDP_CLOSE, UDP_ESTABLISHED, UDP_MAX_PAYLOAD6, UdpPending, type UdpSock } from '../ipv4/udp_sock.js';
import {
  ip4DatagramConnect,
  optvalInt,
  udpAppendPending,
  udpAutobind,
  udpDisconnect,
  udpErrReport,
  udpGetsockopt,
  udpPendingPayload,
  udpProt,
  type UdpProto,
  udpPushPending,
  udpQueueRcv,
  udpSendmsg,
  udpSendPrologue,
  udpSetsockopt,
  udpZerocopySent,
  udpTxTimestamp,
  udpStartPending,
} from '../ipv4/udp.js';
import type { Net } from '../core/net.js';
import type { SkBuff } from '../core/skbuff.js';
import { RTN_BROADCAST, RTN_LOCAL } from '../ipv4/route.js';
import { ip6Xmit } from './ip6_output.js';
import { ipv6AddrIsLocal, ipv6ChooseSaddr } from './addrconf.js';
import { icmpv6ErrConvert, icmpv6PortUnreach } from './icmp.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  EADDRINUSE,
  EADDRNOTAVAIL,
  EAFNOSUPPORT,
  EAGAIN,
  EDESTADDRREQ,
  EINVAL,
  EMSGSIZE,
  ENETDOWN,
  ENETUNREACH,
  ENOBUFS,
  ENOPROTOOPT,
  EOPNOTSUPP,
  IPPROTO_UDP,
  IPV6_UNICAST_HOPS,
  IPV6_V6ONLY,
  MSG_MORE,
  MSG_OOB,
  type SockAddr,
  SOL_IPV6,
} from '../../uapi.js';
import { IPV6_HLEN, NEXTHDR_FRAGMENT } from '../../wire/ipv6.js';
import { LOOPBACK4_IPV6, SOCK_BINDADDR_LOCK, SOCK_BINDPORT_LOCK, sockOptInt, type SockProt } from '../core/sock.js';
import { isInet6 } from '../socket.js';
import type { Net6Protocol } from '../core/protocol.js';


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

export function udpv6Protocol(stack: Net): Net6Protocol {
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
          udpQueueRcv(udp, sk, buf, off + UDP_HLEN, ulen - UDP_HLEN, frameLen, AF_INET6, 0, sport, buf, sOff, skb);
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
        udpQueueRcv(udp, sk, buf, off + UDP_HLEN, ulen - UDP_HLEN, frameLen, AF_INET6, 0, sport, buf, sOff, skb);
        return;
      }
      drop[SKB_DROP_REASON.NO_SOCKET]++;
      mib.NoPorts++;
      icmpv6PortUnreach(stack, skb);
    },
    errHandler(type, code, info, buf, innerOff, innerLen, outer) {
      udpv6Err(stack.udp, type, code, buf, innerOff, innerLen, outer, info);
    },
  };
}

/**
 * __udp6_lib_err: the socket that sent the quoted datagram (our address and
 * port are its source) learns a hard error if it is connected
 * (icmpv6ErrConvert; Packet Too Big is EMSGSIZE, hard under the default
 * IPV6_PMTUDISC_WANT once the path MTU is updated); with IPV6_RECVERR every
 * error is queued (ipv6_icmp_error) and becomes sk_err. No socket:
 * Icmp6InErrors.
 */
export function udpv6Err(udp: UdpProto, type: number, code: number, buf: Buffer, innerOff: number, innerLen: number, outer = -1, info = 0): void {
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
  if (sk.cmsgFlags & INET6_RECVERR) {
    ipv6IcmpError(sk, errno, type, code, info, buf, outer, innerOff, innerOff + innerLen, udpDest(buf, uh), uh + UDP_HLEN, udp.stack.dev.ifindex);
    sk.err = errno;
    if (sk.wake) sk.wake(sk, POLLERR);
    return;
  }
  udpErrReport(sk, errno, hard);
}

/**
 * udpv6_sendmsg for a non-mapped IPv6 destination: source address (bound,
 * or RFC 6724's choice), header, checksum (mandatory; 0 goes out as
 * 0xffff), ip6_xmit (which fragments what exceeds the path MTU). The
 * largest payload is 65527 bytes, as ip6_append_data allows.
 */
function udpv6Send(udp: UdpProto, sk: UdpSock, data: Uint8Array, daddr: Uint8Array, dport: number): number {
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
  // A qdisc drop: as udp.ts.
  if (rc > 0) stack.mibs.Udp6.SndbufErrors++;
  else {
    stack.mibs.Udp6.OutDatagrams++;
    udpTxTimestamp(udp, sk, data);
  }
  return data.length;
}

/**
 * __ip6_datagram_connect for a non-mapped address: choose the source when
 * unbound (binding the local address, rehashed), remember the peer; the
 * IPv4 fields get LOOPBACK4_IPV6 so IPv4 lookups never match the socket.
 */
function ip6DatagramConnectV6(udp: UdpProto, sk: UdpSock, daddr: Uint8Array, dport: number): number {
  if (ipv6IsUnspecified(daddr)) return -ENETUNREACH;
  if (ipv6IsV4Mapped(sk.v6RcvSaddr)) return -EAFNOSUPPORT; // bound to an IPv4 address
  const saddr = udp.saddr6Scratch;
  if (!ipv6IsUnspecified(sk.v6Saddr)) saddr.set(sk.v6Saddr);
  else if (!ipv6ChooseSaddr(udp.stack, daddr, saddr)) return -ENETUNREACH;
  // The route's device has no link (the TAP gone): -ENETDOWN, as the IPv4 connect.
  if (!udp.stack.dev.running && !udp.stack.ipv6.addrconf.isLocal(daddr)) return -ENETDOWN;
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

/**
 * __inet6_bind for an AF_INET6 UDP socket (inet6_bind checked the
 * family): ::, a v4-mapped IPv4 address
 * (unless IPV6_V6ONLY) that is ours, a broadcast or multicast one, or one
 * of our IPv6 addresses (multicast: receive-only). Binding a real IPv6
 * address makes the socket v6-only, as Linux does.
 */
export function udpV6Bind(udp: UdpProto, sk: UdpSock, a: SockAddr): number {
  if (a.port < 0 || a.port > 65535 || !isInet6(a)) return -EINVAL;
  const ad = a.addr6;
  let v4 = INADDR_ANY;
  if (ipv6IsV4Mapped(ad)) {
    if (sk.ipv6only) return -EINVAL;
    v4 = ipv6V4MappedAddr(ad);
    const rt = v4 === INADDR_ANY ? RTN_LOCAL : udp.stack.fib.addrType(v4);
    if (v4 !== INADDR_ANY && rt !== RTN_LOCAL && rt !== RTN_BROADCAST && !ipv4IsMulticast(v4)) return -EADDRNOTAVAIL;
  } else if (!ipv6IsUnspecified(ad)) {
    const mc = ad[0] === 0xff;
    if (!mc && !ipv6AddrIsLocal(udp.stack, ad)) return -EADDRNOTAVAIL;
    v4 = LOOPBACK4_IPV6;
  }
  if (sk.state !== UDP_CLOSE || sk.num) return -EINVAL;
  sk.rcvSaddr = v4;
  sk.saddr = v4 === LOOPBACK4_IPV6 ? 0 : v4;
  sk.v6RcvSaddr.set(ad);
  if (ad[0] !== 0xff) sk.v6Saddr.set(ad);
  // A specific IPv6 address can only ever take IPv6: inet6_bind sets sk_ipv6only for it.
  const wasV6Only = sk.ipv6only;
  if (v4 === LOOPBACK4_IPV6) sk.ipv6only = true;
  if (udp.table.getPort(sk, a.port, udp.portRange(), () => udp.random()) < 0) {
    sk.ipv6only = wasV6Only;
    sk.rcvSaddr = sk.saddr = 0;
    sk.v6RcvSaddr.fill(0);
    sk.v6Saddr.fill(0);
    return -EADDRINUSE;
  }
  if (!ipv6IsUnspecified(ad)) sk.userlocks |= SOCK_BINDADDR_LOCK;
  if (a.port) sk.userlocks |= SOCK_BINDPORT_LOCK;
  sk.daddr = 0;
  sk.dport = 0;
  sk.v6Daddr.fill(0);
  return 0;
}

/**
 * ip6_datagram_connect: AF_UNSPEC disconnects; a plain AF_INET or a
 * v4-mapped address connects over IPv4 (ip4DatagramConnect; not with
 * IPV6_V6ONLY); an IPv6 one the IPv6 way.
 */
export function ip6DatagramConnect(udp: UdpProto, sk: UdpSock, a: SockAddr): number {
  if (a.family === AF_UNSPEC) return udpDisconnect(udp, sk);
  if (a.family === AF_INET) return sk.ipv6only ? -EAFNOSUPPORT : ip4DatagramConnect(udp, sk, a.addr, a.port);
  if (!isInet6(a)) return -EAFNOSUPPORT;
  if (!ipv6IsV4Mapped(a.addr6)) {
    if (udpAutobind(udp, sk, a.port) < 0) return -EAGAIN;
    return ip6DatagramConnectV6(udp, sk, a.addr6, a.port);
  }
  if (sk.ipv6only) return -ENETUNREACH;
  return ip4DatagramConnect(udp, sk, ipv6V4MappedAddr(a.addr6), a.port);
}

/**
 * udpv6_sendmsg: an IPv6 destination (or connected peer) is sent here; a
 * v4-mapped or plain AF_INET one goes to udp_sendmsg (not with
 * IPV6_V6ONLY), as does data joining IPv4 frames already corked.
 */
export function udpv6Sendmsg(udp: UdpProto, sk: UdpSock, data: Uint8Array, flags: number, to: SockAddr | null): number {
  // An AF_UNSPEC address is no address.
  if (to && to.family === AF_UNSPEC) to = null;
  const p = sk.pending;
  if (p && !p.v6) return udpSendmsg(udp, sk, data, flags, null);
  if (to && !(isInet6(to) && !ipv6IsV4Mapped(to.addr6))) {
    // A v4-mapped or a plain AF_INET address goes over IPv4.
    let daddr: number;
    if (isInet6(to)) daddr = ipv6V4MappedAddr(to.addr6);
    else if (to.family === AF_INET) daddr = to.addr;
    else return -EINVAL;
    if (sk.ipv6only) return -ENETUNREACH;
    return udpSendmsg(udp, sk, data, flags, { family: AF_INET, addr: daddr, addr6: null, port: to.port });
  }
  if (!to && !p && sk.state === UDP_ESTABLISHED && ipv6IsV4Mapped(sk.v6Daddr)) return udpSendmsg(udp, sk, data, flags, null);
  if (data.length > 0xffff) return -EMSGSIZE;
  if (flags & MSG_OOB) return -EOPNOTSUPP;
  if (udpAutobind(udp, sk, to?.port ?? sk.dport) < 0) return -EAGAIN;
  const corkreq = sk.corked || (flags & MSG_MORE) !== 0;
  if (p) return udpAppendPending(udp, sk, p, data, corkreq, udpV6PushPendingFrames);
  let daddr: Uint8Array;
  let dport: number;
  if (to) {
    daddr = to.addr6!;
    dport = to.port;
    if (dport === 0) return -EINVAL;
  } else {
    if (sk.state !== UDP_ESTABLISHED) return -EDESTADDRREQ;
    daddr = sk.v6Daddr;
    dport = sk.dport;
  }
  const e = udpSendPrologue(sk);
  if (e) return e;
  if (!corkreq) return udpv6Send(udp, sk, data, daddr, dport);
  if (data.length > UDP_MAX_PAYLOAD6) return -EMSGSIZE;
  return udpStartPending(sk, new UdpPending(true, 0, Uint8Array.from(daddr), dport), data);
}

/** udp_v6_push_pending_frames: corked IPv6 frames go out here, IPv4 ones through udp_push_pending_frames. */
export function udpV6PushPendingFrames(udp: UdpProto, sk: UdpSock): number {
  const p = sk.pending;
  if (!p) return 0;
  if (!p.v6) return udpPushPending(udp, sk);
  sk.pending = null;
  return udpv6Send(udp, sk, udpPendingPayload(p), p.addr6!, p.dport);
}

/** udpv6_setsockopt: SOL_IPV6 here (ipv6_setsockopt), the rest as an AF_INET socket's with the IPv6 push. */
export function udpv6Setsockopt(udp: UdpProto, sk: UdpSock, level: number, name: number, val: number): number {
  if (level !== SOL_IPV6) return udpSetsockopt(udp, sk, level, name, val, udpV6PushPendingFrames);
  if (!Number.isInteger(val)) return -EINVAL;
  switch (name) {
    case IPV6_V6ONLY:
      // Only before bind (inet_num set): EINVAL after, as Linux.
      if (sk.num) return -EINVAL;
      sk.ipv6only = val !== 0;
      return 0;
    case IPV6_UNICAST_HOPS:
      if (val < -1 || val > 255) return -EINVAL;
      sk.hopLimit = val;
      return 0;
    default:
      return ipv6SetsockoptFlag(sk, name, val) ?? -ENOPROTOOPT;
  }
}

/** udpv6_getsockopt: SOL_IPV6 here, the rest as udpGetsockopt. */
export function udpv6Getsockopt(udp: UdpProto, sk: UdpSock, level: number, name: number): number {
  if (level !== SOL_IPV6) return udpGetsockopt(udp, sk, level, name);
  switch (name) {
    case IPV6_V6ONLY:
      return sk.ipv6only ? 1 : 0;
    case IPV6_UNICAST_HOPS:
      return sk.hopLimit < 0 ? 64 : sk.hopLimit;
    default:
      return ipv6GetsockoptFlag(sk, name) ?? -ENOPROTOOPT;
  }
}

/** udpv6_prot: UDP's calls for AF_INET6 sockets: udp_prot's, with the IPv6 bind, connect, sendmsg and options. */
export function udpv6Prot(udp: UdpProto): SockProt<UdpSock> {
  return (udp.prot6 ??= {
    ...udpProt(udp),
    name: 'UDPv6',
    bind: (sk, a) => udpV6Bind(udp, sk, a),
    connect: (sk, a) => ip6DatagramConnect(udp, sk, a),
    setsockopt: (sk, level, optname, optval) => udpv6Setsockopt(udp, sk, level, optname, optvalInt(optval)),
    getsockopt: (sk, level, optname) => {
      const v = udpv6Getsockopt(udp, sk, level, optname);
      return v < 0 ? v : sockOptInt(v);
    },
    sendmsg: (sk, data, flags, to) => udpZerocopySent(sk, flags, udpv6Sendmsg(udp, sk, data, flags, to)),
  });
}
