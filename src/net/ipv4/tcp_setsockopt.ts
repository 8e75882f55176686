/**
 * The socket options of TCP sockets, SOL_SOCKET's as TCP keeps them and
 * SOL_TCP's (sock_setsockopt's TCP part, do_tcp_setsockopt and
 * do_tcp_getsockopt in net/ipv4/tcp.c), SIOCINQ and friends, and the
 * bytes a reader may take (tcp_inq): apart from tcp.ts, which re-exports
 * them, to keep it readable.
 */
import {
  AF_INET,
  AF_INET6,
  EINVAL,
  ENOENT,
  ENOPROTOOPT,
  ENOTTY,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  POLLOUT,
  SIOCINQ,
  SIOCOUTQ,
  SOL_IP,
  SOL_SOCKET,
  SOL_TCP,
  TCP_CC_INFO,
  TCP_CONGESTION,
  TCP_CORK,
  TCP_FASTOPEN,
  TCP_FASTOPEN_CONNECT,
  TCP_FASTOPEN_KEY,
  TCP_FASTOPEN_NO_COOKIE,
  TCP_INFO,
  TCP_INQ,
  TCP_KEEPCNT,
  TCP_KEEPIDLE,
  TCP_KEEPINTVL,
  TCP_MAXSEG,
  TCP_MD5SIG,
  TCP_MD5SIG_EXT,
  TCP_NODELAY,
  TCP_NOTSENT_LOWAT,
  TCP_SYNCNT,
  TCP_USER_TIMEOUT,
} from '../../uapi.js';
import { sockGetsockoptInt, sockOptInt, sockSetsockoptInt, TCP_CLOSE, TCP_CLOSE_WAIT, TCP_ESTABLISHED, TCP_FIN_WAIT2, TCP_LISTEN } from '../core/sock.js';
import { ipGetsockopt, ipGetsockoptFlag, ipOptvalInt, ipSetsockopt, ipSetsockoptFlag, ipv6GetsockoptFlag, ipv6SetsockoptFlag } from './ip_sockglue.js';
import { TCP_CA_NAME_MAX, tcpInitCongestionControl } from './tcp_cong.js';
import { tcpFastopenGetsockopt, tcpFastopenSetsockopt } from './tcp_fastopen.js';
import { tcpActiveOpenGetsockopt, tcpActiveOpenSetsockopt } from './tcp_fastopen_active.js';
import { encodeTcpInfo, TCP_INFO_SIZE, tcpGetCcInfo, tcpGetInfo } from './tcp_info.js';
import { tcpParseMd5Keys } from './tcp_md5.js';
import { tcpPushPendingFrames } from './tcp_output.js';
import type { TcpProto } from './tcp_proto.js';
import { MAX_TCP_WINDOW, skStreamIsWriteable, TCP_NAGLE_CORK, TCP_NAGLE_OFF, TCP_NAGLE_PUSH, type TcpSock } from './tcp_sock.js';
import { TCP_LINGER2, tcpGetsockoptLinger, tcpSetsockoptLinger } from './tcp_sockopt.js';

/**
 * tcp_inq_hint: what a TCP_INQ socket's recvmsg reports in TCP_CM_INQ,
 * the bytes still to read; 1 after the peer's FIN with nothing left, so
 * the reader goes on to see end of stream.
 */
export function tcpInqHint(sk: TcpSock): number {
  const inq = (sk.rcvNxt - sk.copiedSeq) | 0;
  if (inq <= 0) return sk.done ? 1 : 0;
  return inq;
}

/** Bytes waiting to be read (SIOCINQ). */
export function tcpInq(sk: TcpSock): number {
  return (sk.rcvNxt - sk.copiedSeq - (sk.finQueued ? 1 : 0)) >>> 0;
}

/**
 * tcp_set_keepalive (struct proto's keepalive): SO_KEEPALIVE on arms the
 * keepalive timer of a connection that is up; off stops it (an orphan in
 * FIN_WAIT2 uses the timer for its FIN timeout and keeps it).
 */
export function tcpSetKeepalive(tcp: TcpProto, sk: TcpSock, on: boolean): void {
  if (on && (sk.state === TCP_ESTABLISHED || sk.state === TCP_CLOSE_WAIT)) {
    tcp.time.timers.mod(sk.keepaliveTimer, tcp.now() + (sk.keepaliveTime || tcp.sysctl.tcp_keepalive_time));
  } else if (!on && sk.state !== TCP_FIN_WAIT2) {
    tcp.time.timers.del(sk.keepaliveTimer);
  }
}

/** setsockopt for SOL_SOCKET and SOL_TCP options with integer values. */
export function tcpSetsockopt(tcp: TcpProto, sk: TcpSock, level: number, name: number, val: number): number {
  if (!Number.isInteger(val)) return -EINVAL;
  // The socket layer's, for every protocol (its SO_KEEPALIVE reaches tcpSetKeepalive through sk.prot).
  if (level === SOL_SOCKET) return sockSetsockoptInt(sk, name, val);
  if (level === SOL_IP) return ipSetsockoptFlag(sk, name, val) ?? ipSetsockopt(sk, name, val);
  // IPPROTO_IPV6 options exist on AF_INET6 sockets only (ip_setsockopt says ENOPROTOOPT).
  if (level === IPPROTO_IPV6 && sk.family === AF_INET6) {
    if (name === IPV6_V6ONLY) {
      // do_ipv6_setsockopt: not once the socket holds a port.
      if (sk.num) return -EINVAL;
      sk.ipv6only = val !== 0;
      return 0;
    }
    return ipv6SetsockoptFlag(sk, name, val) ?? -ENOPROTOOPT;
  }
  if (level === SOL_TCP) {
    switch (name) {
      case TCP_NODELAY:
        if (val) {
          sk.nonagle |= TCP_NAGLE_OFF | TCP_NAGLE_PUSH;
          tcpPushPendingFrames(tcp, sk);
        } else {
          sk.nonagle &= ~TCP_NAGLE_OFF;
        }
        return 0;
      case TCP_CORK:
        if (val) {
          sk.nonagle |= TCP_NAGLE_CORK;
        } else {
          sk.nonagle &= ~TCP_NAGLE_CORK;
          if (sk.nonagle & TCP_NAGLE_OFF) sk.nonagle |= TCP_NAGLE_PUSH;
          tcpPushPendingFrames(tcp, sk);
        }
        return 0;
      case TCP_MAXSEG:
        if (val && (val < 88 || val > MAX_TCP_WINDOW)) return -EINVAL;
        sk.userMss = val;
        return 0;
      case TCP_KEEPIDLE:
        if (val < 1 || val > 32767) return -EINVAL;
        sk.keepaliveTime = val * 1000;
        if (sk.keepaliveOn && (sk.state === TCP_ESTABLISHED || sk.state === TCP_CLOSE_WAIT)) tcp.time.timers.mod(sk.keepaliveTimer, tcp.now() + sk.keepaliveTime);
        return 0;
      case TCP_KEEPINTVL:
        if (val < 1 || val > 32767) return -EINVAL;
        sk.keepaliveIntvl = val * 1000;
        return 0;
      case TCP_KEEPCNT:
        if (val < 1 || val > 127) return -EINVAL;
        sk.keepaliveProbes = val;
        return 0;
      case TCP_USER_TIMEOUT:
        if (val < 0) return -EINVAL;
        sk.userTimeout = val;
        return 0;
      case TCP_INQ:
        if (val < 0 || val > 1) return -EINVAL;
        sk.recvmsgInq = val === 1;
        return 0;
      case TCP_NOTSENT_LOWAT:
        sk.notsentLowat = val >>> 0;
        if (skStreamIsWriteable(sk, 0)) sk.wake?.(sk, POLLOUT);
        return 0;
      case TCP_SYNCNT:
      case TCP_FASTOPEN_CONNECT:
      case TCP_FASTOPEN_NO_COOKIE:
        return tcpActiveOpenSetsockopt(tcp, sk, name, val);
      case TCP_FASTOPEN:
        return tcpFastopenSetsockopt(tcp, sk, name, sockOptInt(val));
      default:
        return tcpSetsockoptLinger(sk, name, val);
    }
  }
  return -ENOPROTOOPT;
}

/** getsockopt for integer-valued options; returns the value or a negative errno. */
export function tcpGetsockopt(tcp: TcpProto, sk: TcpSock, level: number, name: number): number {
  if (level === IPPROTO_IPV6 && sk.family === AF_INET6) return name === IPV6_V6ONLY ? (sk.ipv6only ? 1 : 0) : (ipv6GetsockoptFlag(sk, name) ?? -ENOPROTOOPT);
  if (level === SOL_SOCKET) return sockGetsockoptInt(sk, name);
  if (level === SOL_IP) return ipGetsockoptFlag(sk, name) ?? ipGetsockopt(sk, name);
  if (level === SOL_TCP) {
    switch (name) {
      case TCP_NODELAY:
        return sk.nonagle & TCP_NAGLE_OFF ? 1 : 0;
      case TCP_CORK:
        return sk.nonagle & TCP_NAGLE_CORK ? 1 : 0;
      case TCP_MAXSEG:
        // Before the handshake: the user's value or the default; after: the MSS in use.
        if (sk.state === TCP_CLOSE || sk.state === TCP_LISTEN) return sk.userMss || 536;
        return sk.mssCache;
      case TCP_KEEPIDLE:
        return Math.floor((sk.keepaliveTime || tcp.sysctl.tcp_keepalive_time) / 1000);
      case TCP_KEEPINTVL:
        return Math.floor((sk.keepaliveIntvl || tcp.sysctl.tcp_keepalive_intvl) / 1000);
      case TCP_KEEPCNT:
        return sk.keepaliveProbes || tcp.sysctl.tcp_keepalive_probes;
      case TCP_USER_TIMEOUT:
        return sk.userTimeout;
      case TCP_NOTSENT_LOWAT:
        return sk.notsentLowat;
      case TCP_INQ:
        return sk.recvmsgInq ? 1 : 0;
      case TCP_SYNCNT:
      case TCP_FASTOPEN_CONNECT:
      case TCP_FASTOPEN_NO_COOKIE:
        return tcpActiveOpenGetsockopt(tcp, sk, name);
      case TCP_FASTOPEN:
        return sk.fastopenq?.maxQlen ?? 0;
      default:
        return tcpGetsockoptLinger(tcp, sk, name);
    }
  }
  return -ENOPROTOOPT;
}

/**
 * setsockopt for string-valued options: TCP_CONGESTION (the algorithm by
 * name; -ENOENT if unknown). An established connection switches at once,
 * the new algorithm starting from the current window (tcp_reinit_congestion_control:
 * the old one's release, then the new one's init).
 */
export function tcpSetsockoptStr(tcp: TcpProto, sk: TcpSock, level: number, name: number, val: string): number {
  if (level !== SOL_TCP || name !== TCP_CONGESTION) return -ENOPROTOOPT;
  const ops = tcp.congestion.find(val);
  if (!ops) return -ENOENT;
  if (ops !== sk.caOps) tcpInitCongestionControl(sk, ops, tcp.now());
  return 0;
}

/** getsockopt for string-valued options: TCP_CONGESTION. */
export function tcpGetsockoptStr(_tcp: TcpProto, sk: TcpSock, level: number, name: number): string | number {
  if (level !== SOL_TCP || name !== TCP_CONGESTION) return -ENOPROTOOPT;
  return sk.caOps.name;
}

/** tcp_ioctl: SIOCINQ (FIONREAD) and SIOCOUTQ; EINVAL on a listener. */
export function tcpIoctl(sk: TcpSock, cmd: number): number {
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
    if (optname === TCP_INFO || optname === TCP_CC_INFO) return -ENOPROTOOPT;
    if (optname === TCP_FASTOPEN || optname === TCP_FASTOPEN_KEY) return tcpFastopenSetsockopt(tcp, sk, optname, optval);
    if (optname === TCP_MD5SIG || optname === TCP_MD5SIG_EXT) return tcpParseMd5Keys(sk, optname === TCP_MD5SIG_EXT, optval);
    if (optval.length < 4) return -EINVAL;
    return tcpSetsockopt(tcp, sk, level, optname, optval.readInt32LE(0));
  }
  if (level === SOL_IP) return tcpSetsockopt(tcp, sk, level, optname, ipOptvalInt(optval));
  if (level === IPPROTO_IPV6 && optname === IPV6_V6ONLY) {
    if (optval.length < 4) return sk.family === AF_INET ? -ENOPROTOOPT : -EINVAL;
    return tcpSetsockopt(tcp, sk, level, optname, optval.readInt32LE(0));
  }
  return -ENOPROTOOPT;
}

/** tcp_getsockopt after the socket layer: struct tcp_info, TCP_CONGESTION's name, the int options. */
export function tcpSockGetsockopt(tcp: TcpProto, sk: TcpSock, level: number, optname: number): Buffer | number {
  if (level === SOL_TCP) {
    if (optname === TCP_LINGER2) return sockOptInt(tcpGetsockoptLinger(tcp, sk, optname)); // -1 is a value here
    if (optname === TCP_INFO) {
      const b = Buffer.alloc(TCP_INFO_SIZE);
      encodeTcpInfo(tcpGetInfo(tcp, sk), b);
      return b;
    }
    if (optname === TCP_CC_INFO) return tcpGetCcInfo(sk);
    if (optname === TCP_FASTOPEN || optname === TCP_FASTOPEN_KEY) return tcpFastopenGetsockopt(tcp, sk, optname);
    if (optname === TCP_CONGESTION) {
      const v = tcpGetsockoptStr(tcp, sk, level, optname);
      if (typeof v === 'number') return v;
      const b = Buffer.alloc(TCP_CA_NAME_MAX);
      b.write(v);
      return b;
    }
  } else if (level !== IPPROTO_IPV6 && level !== SOL_IP) {
    return -ENOPROTOOPT;
  }
  const v = tcpGetsockopt(tcp, sk, level, optname);
  return v < 0 ? v : sockOptInt(v);
}

