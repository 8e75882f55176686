/**
 * The AF_INET family (net/ipv4/af_inet.c): the socket calls of
 * SOCK_STREAM (inet_stream_ops over TCP) and SOCK_DGRAM (inet_dgram_ops
 * over UDP) as ProtoOps tables, and inet_create behind socket(2). The
 * AF_INET6 tables (src/net/ipv6/af_inet6.ts) reuse what is the same and
 * replace bind, connect, getname and the IPv6 options, as Linux's
 * inet6_stream_ops and inet6_dgram_ops do.
 */
import {
  AF_INET,
  AF_UNSPEC,
  EACCES,
  EAFNOSUPPORT,
  EINPROGRESS,
  EINVAL,
  ENOPROTOOPT,
  ENOTCONN,
  ENOTTY,
  EOPNOTSUPP,
  EPROTONOSUPPORT,
  ESOCKTNOSUPPORT,
  IPPROTO_ICMP,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_V6ONLY,
  MSG_PEEK,
  MSG_TRUNC,
  POLLHUP,
  POLLIN,
  POLLOUT,
  POLLRDHUP,
  SIOCINQ,
  SIOCOUTQ,
  SOCK_DGRAM,
  SOCK_STREAM,
  type SockAddr,
  SOL_TCP,
  TCP_CONGESTION,
  TCP_INFO,
} from '../../uapi.js';
import { PROT_SOCK, sockError, sockOptInt, TCP_CLOSE, TCP_LISTEN, TCP_SYN_RECV, TCP_SYN_SENT } from '../core/sock.js';
import { Socket, type ProtoOps, type ReadActor } from '../socket.js';
import {
  tcpAccept,
  tcpBind,
  tcpClose,
  tcpConnect,
  tcpGetsockopt,
  tcpGetsockoptStr,
  tcpInq,
  tcpListen,
  tcpPoll,
  tcpReadSock,
  tcpRecvmsg,
  tcpSendmsg,
  tcpSetsockopt,
  tcpSetsockoptStr,
  tcpShutdown,
} from './tcp.js';
import { TCP_INFO_SIZE, encodeTcpInfo, tcpGetInfo } from './tcp_info.js';
import { tcpNewSock, tcpProtocol } from './tcp_ipv4.js';
import type { TcpProto } from './tcp_proto.js';
import type { TcpSock } from './tcp_sock.js';
import {
  udpBind,
  udpClose,
  udpConnect,
  udpGetname,
  udpGetsockopt,
  udpIoctl,
  udpPoll,
  type UdpProto,
  udpProtocol,
  udpReadSock,
  udpRecvmsg,
  udpSendmsg,
  udpSetsockopt,
  udpShutdown,
} from './udp.js';
import type { UdpSock } from './udp_sock.js';
import { INADDR_ANY } from '../../lib/addr.js';
import type { Net } from '../core/net.js';
import { ETH_P_IP } from '../../wire/ethernet.js';
import { ipPacketType } from './ip_input.js';
import { icmpProtocol } from './icmp.js';

/** TCP_CA_NAME_MAX: the room TCP_CONGESTION's name has (NUL-padded when read). */
const TCP_CA_NAME_MAX = 16;

/**
 * inet_bind's checks before the protocol's own: the family (AF_UNSPEC is
 * taken for INADDR_ANY, Linux's compatibility rule), then the privilege a
 * port below PROT_SOCK needs.
 */
export function inetBindCheck(a: SockAddr, privileged: boolean): number {
  if (a.family !== AF_INET && !(a.family === AF_UNSPEC && a.addr === INADDR_ANY)) return -EAFNOSUPPORT;
  return inetBindPortCheck(a.port, privileged);
}

/** __inet_bind / __inet6_bind: EACCES for a port below PROT_SOCK without the privilege. */
export function inetBindPortCheck(port: number, privileged: boolean): number {
  return port > 0 && port < PROT_SOCK && !privileged ? -EACCES : 0;
}

// --- SOCK_STREAM ----------------------------------------------------------------------

/**
 * __inet_stream_connect's wait and result: in progress while SYN_SENT or
 * SYN_RECV; a connection that ended reports its error once (sk_err, then
 * the soft error of an ICMP, else ENOTCONN).
 */
function inetStreamConnectWait(sk: TcpSock): number {
  if (sk.state === TCP_SYN_SENT || sk.state === TCP_SYN_RECV) return -EINPROGRESS;
  if (sk.state === TCP_CLOSE) return -(sockError(sk) || sk.errSoft || ENOTCONN);
  return 0;
}

/** Whether a TCP socket has a peer getpeername may report (inet_getname's ENOTCONN rule). */
export function inetStreamHasPeer(sk: TcpSock): boolean {
  return !!sk.daddr && sk.state !== TCP_LISTEN && !(sk.state === TCP_CLOSE && !sk.done) && sk.state !== TCP_SYN_SENT;
}

/** inet_getname for an AF_INET TCP socket. */
function inetStreamGetname(sk: TcpSock, out: SockAddr, peer: boolean): number {
  if (peer && !inetStreamHasPeer(sk)) return -ENOTCONN;
  out.family = AF_INET;
  out.port = peer ? sk.dport : sk.num;
  out.addr = peer ? sk.daddr : sk.rcvSaddr;
  return 0;
}

/**
 * tcp_poll as a descriptor sees it: a socket never connected is
 * writable and hung up (POLLOUT | POLLHUP), as Linux reports it.
 */
export function inetStreamPoll(tcp: TcpProto, sk: TcpSock): number {
  let m = tcpPoll(tcp, sk);
  if (sk.state === TCP_CLOSE && !sk.done && !sk.err && !sk.daddr) m = POLLOUT | POLLHUP;
  if (m & POLLIN && sk.shutdown & 1) m |= POLLRDHUP;
  return m & 0xffff;
}

/** tcp_ioctl: SIOCINQ (FIONREAD) and SIOCOUTQ; EINVAL on a listener. */
function tcpIoctl(sk: TcpSock, cmd: number): number {
  if (cmd !== SIOCINQ && cmd !== SIOCOUTQ) return -ENOTTY;
  if (sk.state === TCP_LISTEN) return -EINVAL;
  return cmd === SIOCINQ ? tcpInq(sk) : (sk.writeSeq - sk.sndUna) >>> 0;
}

/**
 * tcp_setsockopt after the socket layer: SOL_TCP (TCP_CONGESTION by name,
 * the rest ints) and IPPROTO_IPV6's IPV6_V6ONLY (an AF_INET socket has no
 * IPv6 options: ENOPROTOOPT, as ip_setsockopt says).
 */
export function tcpSockSetsockopt(tcp: TcpProto, sk: TcpSock, level: number, optname: number, optval: Buffer): number {
  if (level === SOL_TCP) {
    // tcp_set_congestion_control: a name up to TCP_CA_NAME_MAX, ENOENT if no such algorithm.
    if (optname === TCP_CONGESTION) return tcpSetsockoptStr(tcp, sk, level, optname, optval.subarray(0, TCP_CA_NAME_MAX).toString('latin1').replace(/\0.*$/s, ''));
    if (optname === TCP_INFO) return -ENOPROTOOPT;
    if (optval.length < 4) return -EINVAL;
    return tcpSetsockopt(tcp, sk, level, optname, optval.readInt32LE(0));
  }
  if (level === IPPROTO_IPV6 && optname === IPV6_V6ONLY) {
    if (optval.length < 4) return sk.family === AF_INET ? -ENOPROTOOPT : -EINVAL;
    return tcpSetsockopt(tcp, sk, level, optname, optval.readInt32LE(0));
  }
  return -ENOPROTOOPT;
}

/** tcp_getsockopt after the socket layer: struct tcp_info, TCP_CONGESTION's name, the int options. */
export function tcpSockGetsockopt(tcp: TcpProto, sk: TcpSock, level: number, optname: number): Buffer | number {
  if (level === SOL_TCP) {
    if (optname === TCP_INFO) {
      const b = Buffer.alloc(TCP_INFO_SIZE);
      encodeTcpInfo(tcpGetInfo(tcp, sk), b);
      return b;
    }
    if (optname === TCP_CONGESTION) {
      const v = tcpGetsockoptStr(tcp, sk, level, optname);
      if (typeof v === 'number') return v;
      const b = Buffer.alloc(TCP_CA_NAME_MAX);
      b.write(v);
      return b;
    }
  } else if (level !== IPPROTO_IPV6) {
    return -ENOPROTOOPT;
  }
  const v = tcpGetsockopt(tcp, sk, level, optname);
  return v < 0 ? v : sockOptInt(v);
}

/** inet_stream_ops: AF_INET SOCK_STREAM over TCP. */
export function inetStreamOps(tcp: TcpProto): ProtoOps<TcpSock> {
  return {
    family: AF_INET,
    release: (sk) => tcpClose(tcp, sk),
    bind: (sk, a, privileged) => inetBindCheck(a, privileged) || tcpBind(tcp, sk, a.addr, a.port),
    connect: (sk, a) => (a.family !== AF_INET ? -EAFNOSUPPORT : tcpConnect(tcp, sk, a.addr, a.port)),
    connectWait: inetStreamConnectWait,
    listen: (sk, backlog) => tcpListen(tcp, sk, backlog),
    accept: (sk) => tcpAccept(tcp, sk),
    getname: inetStreamGetname,
    poll: (sk) => inetStreamPoll(tcp, sk),
    ioctl: tcpIoctl,
    shutdown: (sk, how) => tcpShutdown(tcp, sk, how),
    setsockopt: (sk, level, optname, optval) => tcpSockSetsockopt(tcp, sk, level, optname, optval),
    getsockopt: (sk, level, optname) => tcpSockGetsockopt(tcp, sk, level, optname),
    sendmsg: (sk, data, flags) => tcpSendmsg(tcp, sk, data, flags),
    recvmsg: (sk, into, flags) => tcpRecvmsg(tcp, sk, into, flags & MSG_PEEK),
    readSock: (sk, actor, max) => tcpReadSock(tcp, sk, actor, max),
  };
}

// --- SOCK_DGRAM -----------------------------------------------------------------------

/** sock_no_listen, sock_no_accept. */
const sockNoListen = (): number => -EOPNOTSUPP;
const sockNoAccept = (): number => -EOPNOTSUPP;

/** An int optval for udp_setsockopt (EINVAL when shorter than an int). */
export function optvalInt(optval: Buffer): number {
  return optval.length < 4 ? NaN : optval.readInt32LE(0);
}

/** inet_dgram_ops: AF_INET SOCK_DGRAM over UDP. */
export function inetDgramOps(udp: UdpProto): ProtoOps<UdpSock> {
  return {
    family: AF_INET,
    release: (sk) => udpClose(udp, sk),
    bind: (sk, a, privileged) => inetBindCheck(a, privileged) || udpBind(udp, sk, a),
    connect: (sk, a) => udpConnect(udp, sk, a),
    connectWait: () => 0,
    listen: sockNoListen,
    accept: sockNoAccept,
    getname: udpGetname,
    poll: (sk) => udpPoll(sk) & 0xffff,
    ioctl: (sk, cmd) => (cmd === SIOCINQ || cmd === SIOCOUTQ ? udpIoctl(sk, cmd) : -ENOTTY),
    shutdown: (sk, how) => udpShutdown(udp, sk, how),
    setsockopt: (sk, level, optname, optval) => udpSetsockopt(udp, sk, level, optname, optvalInt(optval)),
    getsockopt: (sk, level, optname) => {
      const v = udpGetsockopt(udp, sk, level, optname);
      return v < 0 ? v : sockOptInt(v);
    },
    sendmsg: (sk, data, flags, to) => udpSendmsg(udp, sk, data, flags, to),
    recvmsg: (sk, into, flags, msg, nonblock) => udpRecvmsg(udp, sk, into, flags & (MSG_PEEK | MSG_TRUNC), msg, nonblock),
    readSock: (sk, actor: ReadActor, max) => udpReadSock(udp, sk, actor, max, udp.readFrom),
  };
}

// --- socket(2) ------------------------------------------------------------------------

/**
 * inet_create's protocol switch (inetsw): a type the family has no
 * protocol for is ESOCKTNOSUPPORT; a protocol other than the type's is
 * EPROTONOSUPPORT.
 */
export function inetProtocolCheck(type: number, protocol: number): number {
  if (type === SOCK_STREAM) return protocol === 0 || protocol === IPPROTO_TCP ? 0 : -EPROTONOSUPPORT;
  if (type === SOCK_DGRAM) return protocol === 0 || protocol === IPPROTO_UDP ? 0 : -EPROTONOSUPPORT;
  return -ESOCKTNOSUPPORT;
}

/**
 * inet_init: IPv4 on the device (ip_packet_type), ICMP, UDP and TCP by
 * protocol number (inet_add_protocol), and sock_register(&inet_family_ops)
 * for socket(2).
 */
export function inetInit(stack: Net): void {
  const { tcp, udp, families } = stack;
  stack.dev.addPacketHandler(ETH_P_IP, ipPacketType(stack));
  stack.inetProtos[IPPROTO_ICMP] = icmpProtocol(stack);
  stack.inetProtos[IPPROTO_UDP] = udpProtocol(stack);
  stack.inetProtos[IPPROTO_TCP] = tcpProtocol(stack);
  const stream = inetStreamOps(tcp);
  const dgram = inetDgramOps(udp);
  families.register({
    family: AF_INET,
    create(type, protocol, uid) {
      const rc = inetProtocolCheck(type, protocol);
      if (rc < 0) return rc;
      if (type === SOCK_STREAM) {
        const sk = tcpNewSock(tcp, AF_INET);
        sk.uid = uid;
        return new Socket(sk, stream);
      }
      return new Socket(udp.newSock(AF_INET, uid), dgram);
    },
  });
}
