/**
 * TCP over IPv6 (net/ipv6/tcp_ipv6.c): the receive entry (tcp_v6_rcv:
 * validation and the IPv6 pseudo-header checksum, then the lookup and
 * state machine the IPv4 path uses, on the IPv6 tables), resets for
 * segments with no socket (tcp_v6_send_reset), and ICMPv6 errors about our
 * segments (tcp_v6_err: Packet Too Big lowers the MSS and retransmits,
 * unreachables end a connection attempt or are kept as soft errors).
 *
 * The engine is shared with IPv4, as in Linux: a connection over IPv6 is a
 * TcpSock with `ipv6` set and its addresses in v6RcvSaddr/v6Daddr; output
 * goes through the IPv6 layer's stub (stack.ipv6Stub, ip6_xmit).
 */
import { ipv6IcmpError } from './datagram.js';
import { csumFold, csumIpv6Magic, csumPartial } from '../../lib/checksum.js';
import { after, before } from '../../lib/seq.js';
import { TCP_HLEN, TCPHDR_ACK, TCPHDR_RST, tcpHeader } from '../../wire/tcp.js';
import { allocSkb, type SkBuff } from '../core/skbuff.js';
import { tcpFillCb, tcpSkbCb } from '../ipv4/tcp_skb_cb.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import type { Net } from '../core/net.js';
import { ICMPV6_DEST_UNREACH, ICMPV6_PARAMPROB, ICMPV6_PKT_TOOBIG, ICMPV6_TIME_EXCEED } from '../../wire/icmpv6.js';
import { IPV6_MIN_MTU, ip6Tclass } from '../../wire/ipv6.js';
import { tcpLookupRcv, tcpProt, tcpRcvHeader } from '../ipv4/tcp_ipv4.js';
import type { TcpProto } from '../ipv4/tcp_proto.js';
import { SS_CONNECTING, type TcpRequestSock, type TcpSock } from '../ipv4/tcp_sock.js';
import { tcpReqErr } from '../ipv4/tcp_err.js';
import { tcpConnectSend, tcpSyncMss } from '../ipv4/tcp_output.js';
import { tcpFastopenDeferConnect } from '../ipv4/tcp_fastopen_active.js';
import { tcpConnect, tcpConnectInit, tcpDone, tcpSetState, tcpWake } from '../ipv4/tcp.js';
import { tcpConnectStateCheck } from '../ipv4/af_inet_connect.js';
import { INET6_RECVERR, type SockProt, TCP_CLOSE, TCP_LISTEN, TCP_NEW_SYN_RECV, TCP_SYN_RECV, TCP_SYN_SENT, TCP_TIME_WAIT } from '../core/sock.js';
import { tcpSimpleRetransmit } from '../ipv4/tcp_recovery.js';
import { inet6BindPort, inet6HashConnect, inet6LookupEstablished, inet6LookupListener } from './inet6_hashtables.js';
import { TCPOLEN_MD5SIG_ALIGNED, tcpMd5ResetKey, tcpMd5SignReply } from '../ipv4/tcp_md5.js';
import { AF_INET6, EADDRNOTAVAIL, EAFNOSUPPORT, EINPROGRESS, EINVAL, ENETDOWN, ENETUNREACH, ENODEV, IPPROTO_TCP, POLLERR } from '../../uapi.js';
import { icmpv6ErrConvert } from './icmp.js';
import {
  INADDR_ANY,
  ipv6IsLinkLocal,
  ipv6IsMulticast,
  ipv6IsUnspecified,
  ipv6IsV4Mapped,
  ipv6SetV4Mapped,
  ipv6V4MappedAddr,
} from '../../lib/addr.js';
import type { Net6Protocol } from '../core/protocol.js';
import { isInet6 } from '../socket.js';


export { ICMPV6_DEST_UNREACH, ICMPV6_PARAMPROB, ICMPV6_PKT_TOOBIG, ICMPV6_TIME_EXCEED };

/** tcpv6_protocol: TCP at inet6Protos[IPPROTO_TCP]. */
export function tcpV6Protocol(stack: Net): Net6Protocol {
  return {
    handler(skb: SkBuff): void {
      tcpV6Rcv(stack.tcp, skb);
    },
    errHandler(type: number, code: number, info: number, buf: Buffer, innerOff: number, innerLen: number, outer: number): void {
      tcpV6Err(stack.tcp, type, code, info, buf, innerOff, innerLen, outer);
    },
  };
}

/**
 * tcp_v6_rcv: only segments to our unicast addresses; header length and the
 * checksum over the IPv6 pseudo-header (skipped when the device vouched for
 * it, skb.csumValid, as tcp_v4_rcv does); then TCP_SKB_CB (tcp_v6_fill_cb)
 * and the lookup and dispatch both families share.
 */
export function tcpV6Rcv(tcp: TcpProto, skb: SkBuff): void {
  const doff = tcpRcvHeader(tcp, skb);
  if (!doff) return;
  const mib = tcp.mibs.Tcp;
  const drop = tcp.mibs.Drop.counts;
  const buf = skb.buf;
  const th = skb.data;
  const len = skb.len;
  const nh = skb.networkHeader;
  if (!skb.csumValid && csumFold(csumPartial(buf, th, len, csumIpv6Magic(buf, nh + 8, buf, nh + 24, IPPROTO_TCP, len))) !== 0) {
    mib.InCsumErrors++;
    mib.InErrs++;
    drop[SKB_DROP_REASON.TCP_CSUM]++;
    return;
  }
  mib.InSegs++;
  const tcb = tcpFillCb(skb, doff);
  tcb.ipv6 = true;
  buf.copy(tcb.saddr6, 0, nh + 8, nh + 24);
  buf.copy(tcb.daddr6, 0, nh + 24, nh + 40);
  tcb.saddr = 0;
  tcb.daddr = 0;
  tcb.tos = ip6Tclass(buf, nh);
  tcpLookupRcv(tcp, skb, tcpV6SendReset);
}

/**
 * tcp_v6_send_reset: RFC 9293's answer to a segment with no connection,
 * over IPv6 (tcp_v6_send_response with rst): never to a reset; the
 * incoming traffic class without its ECN bits.
 */
export function tcpV6SendReset(tcp: TcpProto, skb: SkBuff, sk: TcpSock | null = null): void {
  const tcb = tcpSkbCb(skb);
  const flags = tcb.tcpFlags;
  if (flags & TCPHDR_RST) return;
  const ops = tcp.stack.ipv6Stub;
  if (ops === null) return;
  // TCP-MD5 as tcp_v4_send_reset (tcpMd5ResetKey).
  const key = tcpMd5ResetKey(sk, skb, (port) => inet6LookupListener(tcp.hashinfo, tcb.saddr6, 0, tcb.sport, tcb.daddr6, 0, port) as TcpSock | null);
  if (key === false) return;
  const hl = TCP_HLEN + (key ? TCPOLEN_MD5SIG_ALIGNED : 0);
  let seq = 0;
  let ack = 0;
  let rflags = TCPHDR_RST;
  if (flags & TCPHDR_ACK) {
    seq = tcb.ackSeq;
  } else {
    ack = tcb.endSeq;
    rflags |= TCPHDR_ACK;
  }
  const nskb = allocSkb(hl);
  const at = nskb.put(hl);
  tcpHeader(nskb.buf, at, tcb.dport, tcb.sport, seq, ack, hl, rflags, 0);
  if (key) tcpMd5SignReply(key, skb, nskb.buf, at, hl);
  const c = csumFold(csumPartial(nskb.buf, at, hl, csumIpv6Magic(tcb.daddr6, 0, tcb.saddr6, 0, IPPROTO_TCP, hl)));
  nskb.buf[at + 16] = c >>> 8;
  nskb.buf[at + 17] = c & 255;
  tcp.mibs.Tcp.OutSegs++;
  tcp.mibs.Tcp.OutRsts++;
  ops.xmit(nskb, tcb.daddr6, tcb.saddr6, IPPROTO_TCP, -1, tcb.tos & ~3);
}

/**
 * tcp_v6_err: an ICMPv6 error quoting one of our segments (innerOff: the
 * quoted IPv6 header; TCP sends no extension headers, so its TCP header is
 * right behind). A request sock's goes to tcp_req_err. Only about data still outstanding. Packet Too Big (info =
 * the MTU, the IPv6 layer having updated its path-MTU cache) lowers the
 * MSS and retransmits what no longer fits (tcp_v6_mtu_reduced). Other
 * errors end a connection attempt (SYN_SENT / SYN_RECV) with the converted
 * errno, and are kept as the soft error otherwise.
 */
export function tcpV6Err(tcp: TcpProto, type: number, code: number, info: number, buf: Buffer, innerOff: number, innerLen: number, outer = -1): void {
  if (innerLen < 40 + 8 || buf[innerOff + 6] !== IPPROTO_TCP) return;
  const th = innerOff + 40;
  const sport = buf.readUInt16BE(th);
  const dport = buf.readUInt16BE(th + 2);
  const seq = buf.readUInt32BE(th + 4);
  // The quoted segment went from us (its source) to the peer.
  const found = inet6LookupEstablished(tcp.hashinfo, buf, innerOff + 24, dport, buf, innerOff + 8, sport);
  if (!found || found.state === TCP_TIME_WAIT || found.state === TCP_LISTEN) return;
  if (found.state === TCP_NEW_SYN_RECV) {
    tcpReqErr(tcp, found as TcpRequestSock, seq, type === ICMPV6_PKT_TOOBIG ? false : icmpv6ErrConvert(type, code).fatal);
    return;
  }
  const sk = found as TcpSock;
  // A Fast Open child's window starts at the SYN-ACK (its snd_una is past it already).
  if (before(seq, sk.fastopenRsk ? sk.fastopenRsk.sntIsn : sk.sndUna) || after(seq, sk.sndNxt)) {
    tcp.mibs.TcpExt.OutOfWindowIcmps++;
    return;
  }
  if (type === ICMPV6_PKT_TOOBIG) {
    const mtu = info >>> 0;
    if (mtu >= IPV6_MIN_MTU) tcpV6MtuReduced(tcp, sk, mtu);
    return;
  }
  if (type !== ICMPV6_DEST_UNREACH && type !== ICMPV6_TIME_EXCEED && type !== ICMPV6_PARAMPROB) return;
  // icmpv6_err_convert; while connecting every error is fatal, as tcp_v6_err treats them.
  const err = icmpv6ErrConvert(type, code).errno;
  // An accepted Fast Open child is treated as a connected socket.
  if ((sk.state === TCP_SYN_SENT || sk.state === TCP_SYN_RECV) && !(sk.fastopenRsk && !sk.parent)) {
    // ipv6_icmp_error: on the error queue under IPV6_RECVERR.
    ipv6IcmpError(sk, err, type, code, info, buf, outer, innerOff, innerOff + innerLen, dport, th, tcp.stack.dev.ifindex);
    sk.err = err;
    tcpDone(tcp, sk);
    return;
  }
  // Connected: a hard error at once only under IPV6_RECVERR, else kept for a timeout.
  if (sk.cmsgFlags & INET6_RECVERR) {
    sk.err = err;
    tcpWake(sk, POLLERR);
  } else sk.errSoft = err;
}

/**
 * tcp_v6_mtu_reduced: nothing to do if the MSS already fits; else the MSS
 * for the smaller of the reported MTU and the route's, and a retransmission
 * of what was sent too big.
 */
function tcpV6MtuReduced(tcp: TcpProto, sk: TcpSock, mtu: number): void {
  const pmtu = Math.min(mtu, tcp.routeMtu(sk));
  if (sk.pmtuCookie && sk.pmtuCookie <= pmtu) return;
  tcpSyncMss(sk, pmtu);
  tcpSimpleRetransmit(tcp, sk);
}

/**
 * inet6_bind for an AF_INET6 TCP socket: addr is :: (any), a v4-mapped IPv4
 * address (which an IPV6_V6ONLY socket may not take: EINVAL) that must be
 * ours, or an IPv6 address that must be ours (EADDRNOTAVAIL); a
 * link-local one needs scopeId naming our interface (EINVAL without one,
 * ENODEV for another). Binding a real IPv6 address makes the socket
 * v6-only, as Linux does.
 */
export function tcpV6Bind(tcp: TcpProto, sk: TcpSock, addr: Uint8Array, port: number, scopeId = 0): number {
  if (sk.family !== AF_INET6) return -EAFNOSUPPORT;
  if (sk.state !== TCP_CLOSE || sk.num) return -EINVAL;
  if (port < 0 || port > 65535) return -EINVAL;
  const mapped = ipv6IsV4Mapped(addr);
  if (mapped) {
    if (sk.ipv6only) return -EINVAL;
    const v4 = ipv6V4MappedAddr(addr);
    if (v4 !== INADDR_ANY && !tcp.stack.fib.isLocal(v4) && !sk.freebind) return -EADDRNOTAVAIL;
  } else if (!ipv6IsUnspecified(addr)) {
    if (ipv6IsMulticast(addr)) return -EINVAL;
    const ops = tcp.stack.ipv6Stub;
    if (ipv6IsLinkLocal(addr)) {
      if (!scopeId) return -EINVAL;
      if (ops === null || scopeId !== ops.ifindex) return -ENODEV;
    }
    if (ops === null || (!ops.addrIsLocal(addr) && !sk.freebind)) return -EADDRNOTAVAIL;
  }
  const only = sk.ipv6only;
  if (!mapped && !ipv6IsUnspecified(addr)) sk.ipv6only = true;
  const rc = inet6BindPort(tcp.hashinfo, sk, addr, port);
  if (rc < 0) {
    sk.ipv6only = only;
    return rc;
  }
  sk.userBoundPort = port !== 0;
  return 0;
}

/**
 * tcp_v6_connect for an AF_INET6 socket. A v4-mapped destination goes the
 * IPv4 way (ipv6_mapped: tcp_v4_connect, the socket's v6 addresses
 * mapped), which an IPV6_V6ONLY socket refuses (ENETUNREACH). Otherwise:
 * no connecting to :: or multicast (ENETUNREACH); a link-local peer needs
 * scopeId (EINVAL); the source is the bound address or the IPv6 layer's
 * choice (ipv6_dev_get_saddr; EADDRNOTAVAIL with none); an ephemeral port
 * unique for the IPv6 4-tuple; ISN and timestamp offset keyed on the IPv6
 * addresses; the MSS from the IPv6 path MTU (mtu - 60).
 */
export function tcpV6Connect(tcp: TcpProto, sk: TcpSock, daddr: Uint8Array, dport: number, scopeId = 0): number {
  if (sk.family !== AF_INET6) return -EAFNOSUPPORT;
  const st = tcpConnectStateCheck(sk);
  if (st !== null) return st;
  if (dport <= 0 || dport > 65535) return -EINVAL;
  const bound = sk.v6RcvSaddr!;
  if (ipv6IsV4Mapped(daddr)) {
    if (sk.ipv6only) return -ENETUNREACH;
    // A socket bound to a real IPv6 address cannot talk IPv4.
    if (!ipv6IsUnspecified(bound) && !ipv6IsV4Mapped(bound)) return -ENETUNREACH;
    sk.ipv6 = false;
    const rc = tcpConnect(tcp, sk, ipv6V4MappedAddr(daddr), dport);
    // ipv6_mapped: the v6 view of the IPv4 tuple tcp_v4_connect chose (0: a deferred Fast Open connect).
    if (rc === -EINPROGRESS || (rc === 0 && sk.deferConnect)) {
      ipv6SetV4Mapped(sk.v6RcvSaddr!, sk.rcvSaddr);
      ipv6SetV4Mapped(sk.v6Daddr!, sk.daddr);
    }
    return rc;
  }
  if (ipv6IsUnspecified(daddr) || ipv6IsMulticast(daddr)) return -ENETUNREACH;
  const ops = tcp.stack.ipv6Stub;
  if (ops === null) return -ENETUNREACH;
  if (ipv6IsLinkLocal(daddr)) {
    if (!scopeId) return -EINVAL;
    if (scopeId !== ops.ifindex) return -ENODEV;
  }
  if (ipv6IsV4Mapped(bound)) return -ENETUNREACH;
  const saddr = new Uint8Array(16);
  if (!ipv6IsUnspecified(bound)) saddr.set(bound);
  else if (!ops.chooseSaddr(daddr, saddr)) return -EADDRNOTAVAIL;
  // ip6_route_connect through a device without link (the TAP gone): -ENETDOWN, nothing sent, as tcp_v4_connect.
  if (!tcp.stack.dev.running && !ops.addrIsLocal(daddr)) return -ENETDOWN;
  sk.ipv6 = true;
  const rc = inet6HashConnect(tcp.hashinfo, sk, saddr, daddr, dport, (tw) => tcp.twReusable(tw));
  if (rc < 0) {
    sk.ipv6 = false;
    return rc;
  }
  tcp.socks.add(sk);
  sk.iss = tcp.secureSeq(sk.rcvSaddr, sk.daddr, sk.num, dport, sk.v6RcvSaddr, sk.v6Daddr);
  sk.tsOff = tcp.tsOff(sk.rcvSaddr, sk.daddr, sk.v6RcvSaddr, sk.v6Daddr);
  tcpConnectInit(tcp, sk);
  tcpSetState(tcp, sk, TCP_SYN_SENT);
  sk.socketState = SS_CONNECTING;
  if (tcpFastopenDeferConnect(tcp, sk)) return 0;
  tcpConnectSend(tcp, sk);
  return -EINPROGRESS;
}

/** tcpv6_prot: TCP's calls for AF_INET6 sockets: tcp_prot's, with inet6_bind's and tcp_v6_connect's halves. */
export function tcpv6Prot(tcp: TcpProto): SockProt<TcpSock> {
  return (tcp.prot6 ??= {
    ...tcpProt(tcp),
    name: 'TCPv6',
    bind: (sk, a) => (isInet6(a) ? tcpV6Bind(tcp, sk, a.addr6, a.port, a.scopeId ?? 0) : -EAFNOSUPPORT),
    // tcp_v6_connect: sockaddr_in6 only.
    connect: (sk, a) => (isInet6(a) ? tcpV6Connect(tcp, sk, a.addr6, a.port, a.scopeId ?? 0) : -EAFNOSUPPORT),
  });
}
