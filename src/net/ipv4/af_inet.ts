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
  ENOTCONN,
  EOPNOTSUPP,
  EPROTONOSUPPORT,
  ESOCKTNOSUPPORT,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  POLLHUP,
  POLLIN,
  POLLOUT,
  POLLRDHUP,
  SOCK_DGRAM,
  SOCK_STREAM,
  type SockAddr,
} from '../../uapi.js';
import { PROT_SOCK, Sock, TCP_CLOSE, TCP_LISTEN, TCP_SYN_SENT } from '../core/sock.js';
import { Socket, type ProtoOps, type ReadActor } from '../socket.js';
import { tcpListen, tcpPoll, tcpReadSock } from './tcp.js';
import { inetStreamConnectResult } from './af_inet_connect.js';
import { tcpNewSock, tcpProtocol } from './tcp_ipv4.js';
import type { TcpProto } from './tcp_proto.js';
import type { TcpSock } from './tcp_sock.js';
import { udpGetname, udpPoll, type UdpProto, udpProtocol, udpReadSock } from './udp.js';
import type { UdpSock } from './udp_sock.js';
import { INADDR_ANY } from '../../lib/addr.js';
import type { Net } from '../core/net.js';
import { ETH_P_IP } from '../../wire/ethernet.js';
import { ipPacketType } from './ip_input.js';
import { icmpProtocol } from './icmp.js';

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

/** __inet_stream_connect's wait and result (inetStreamConnectResult), for a connect() that waits. */
function inetStreamConnectWait(sk: TcpSock): number {
  return inetStreamConnectResult(sk);
}

/**
 * Whether a TCP socket has a peer to name (inet_getname's ENOTCONN rule):
 * getpeername (peer 1) not in CLOSE or SYN_SENT; accept's view (peer 2)
 * names the peer of a child reset before it was accepted.
 */
export function inetStreamHasPeer(sk: TcpSock, peer: boolean | 2): boolean {
  if (!sk.dport || sk.state === TCP_LISTEN) return false;
  return peer === 2 || (sk.state !== TCP_CLOSE && sk.state !== TCP_SYN_SENT);
}

/** inet_getname for an AF_INET TCP socket. */
function inetStreamGetname(sk: TcpSock, out: SockAddr, peer: boolean | 2): number {
  if (peer && !inetStreamHasPeer(sk, peer)) return -ENOTCONN;
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

/**
 * The calls every inet socket makes through its protocol (sk->sk_prot), as
 * inet_release, inet_sendmsg, inet_recvmsg, inet_ioctl, inet_shutdown and
 * sock_common_setsockopt do; the family's tables add what is theirs.
 */
function inetProtCalls<S extends Sock>(): Pick<ProtoOps<S>, 'release' | 'connect' | 'ioctl' | 'shutdown' | 'setsockopt' | 'getsockopt' | 'sendmsg' | 'recvmsg'> {
  return {
    release: (sk) => sk.prot!.close(sk),
    connect: (sk, a) => sk.prot!.connect(sk, a),
    ioctl: (sk, cmd) => sk.prot!.ioctl(sk, cmd),
    shutdown: (sk, how) => sk.prot!.shutdown(sk, how),
    setsockopt: (sk, level, optname, optval) => sk.prot!.setsockopt(sk, level, optname, optval),
    getsockopt: (sk, level, optname) => sk.prot!.getsockopt(sk, level, optname),
    sendmsg: (sk, data, flags, to) => sk.prot!.sendmsg(sk, data, flags, to),
    recvmsg: (sk, into, flags, msg, nonblock) => sk.prot!.recvmsg(sk, into, flags, msg, nonblock),
  };
}

/** inet_stream_ops: AF_INET SOCK_STREAM; the protocol's calls through sk->sk_prot (tcp_prot). */
export function inetStreamOps(tcp: TcpProto): ProtoOps<TcpSock> {
  return {
    ...inetProtCalls<TcpSock>(),
    family: AF_INET,
    bind: (sk, a, privileged) => inetBindCheck(a, privileged) || sk.prot!.bind(sk, a),
    connectWait: inetStreamConnectWait,
    listen: (sk, backlog) => tcpListen(tcp, sk, backlog),
    accept: (sk) => sk.prot!.accept!(sk),
    getname: inetStreamGetname,
    poll: (sk) => inetStreamPoll(tcp, sk),
    readSock: (sk, actor, max) => tcpReadSock(tcp, sk, actor, max),
  };
}

// --- SOCK_DGRAM -----------------------------------------------------------------------

/** sock_no_listen, sock_no_accept. */
const sockNoListen = (): number => -EOPNOTSUPP;
const sockNoAccept = (): number => -EOPNOTSUPP;

/** inet_dgram_ops: AF_INET SOCK_DGRAM; the protocol's calls through sk->sk_prot (udp_prot). */
export function inetDgramOps(udp: UdpProto): ProtoOps<UdpSock> {
  return {
    ...inetProtCalls<UdpSock>(),
    family: AF_INET,
    bind: (sk, a, privileged) => inetBindCheck(a, privileged) || sk.prot!.bind(sk, a),
    connectWait: () => 0,
    listen: sockNoListen,
    accept: sockNoAccept,
    getname: udpGetname,
    poll: (sk) => udpPoll(sk) & 0xffff,
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
