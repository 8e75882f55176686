/**
 * UDP (net/ipv4/udp.c, datagram.c, af_inet.c's datagram paths): receive
 * (__udp4_lib_rcv: validate, look up, queue with receive-buffer
 * accounting, or ICMP port unreachable), ICMP errors to the sending socket
 * (__udp4_lib_err), and the socket calls: bind, connect/disconnect,
 * sendmsg, recvmsg, poll, options, shutdown and close.
 *
 * Calls never block: they return -EAGAIN and the owner waits for the
 * socket's wake-up (sk.wake), as the TCP calls do. Errors are negative
 * Linux errno values. An AF_INET6 socket shares the table, the receive
 * side and these calls' IPv4 halves (src/net/ipv6/udp.ts has udpv6_sendmsg,
 * ip6_datagram_connect and inet6_bind for it, as Linux splits them).
 */
import { icmpUnreachInfo, ipCmsgPktinfo, ipv6CmsgPktinfo, ipGetsockoptFlag, ipIcmpError, ipSetsockoptFlag } from './ip_sockglue.js';
import { scmTimestamping, skbTstampTx, sockRecvError, sockZerocopyDone } from '../core/errqueue.js';
import { csumFold, csumPartial, csumTcpUdpMagic } from '../../lib/checksum.js';
import {
  INADDR_ANY,
  INADDR_BROADCAST,
  formatIpv4,
  formatIpv6,
  ipv4IsMulticast,
  ipv6IsUnspecified,
  ipv6SetV4Mapped,
} from '../../lib/addr.js';
import {
  ICMP_DEST_UNREACH,
  ICMP_FRAG_NEEDED,
  ICMP_PARAMETERPROB,
  ICMP_PORT_UNREACH,
  ICMP_SOURCE_QUENCH,
  ICMP_TIME_EXCEEDED,
} from '../../wire/icmp.js';
import { IP_HLEN, ipDaddr, ipIhl, ipSaddr } from '../../wire/ipv4.js';
import { ETH_HLEN } from '../../wire/ethernet.js';
import { UDP_HLEN, udpBuild, udpCheck, udpDest, udpLen, udpSource } from '../../wire/udp.js';
import { PACKET_HOST } from '../core/dev.js';
import { allocSkb, type SkBuff } from '../core/skbuff.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { ipLocalOut, IP_ID_AUTO } from './ip_output.js';
import { RTN_BROADCAST, RTN_LOCAL } from './route.js';
import type { Net } from '../core/net.js';
import { UdpTable } from './udp_table.js';
import { ICMP_ERR_CONVERT } from './icmp.js';
import {
  UDP_CLOSE,
  UDP_ESTABLISHED,
  UDP_MAX_PAYLOAD4,
  UDP_MAX_PAYLOAD6,
  UdpPending,
  UdpSkb,
  UdpSock,
  udpTruesize,
  type UdpPktinfo,
} from './udp_sock.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  EACCES,
  EADDRINUSE,
  EADDRNOTAVAIL,
  EAFNOSUPPORT,
  EAGAIN,
  EDESTADDRREQ,
  EHOSTUNREACH,
  EINVAL,
  EMSGSIZE,
  ENETDOWN,
  ENETUNREACH,
  ENOBUFS,
  ENOPROTOOPT,
  ENOTCONN,
  ENOTTY,
  EOPNOTSUPP,
  EPIPE,
  EPROTO,
  IP_MULTICAST_TTL,
  IP_TOS,
  IP_TTL,
  IPPROTO_UDP,
  MSG_ERRQUEUE,
  MSG_ZEROCOPY,
  SCM_TIMESTAMPING,
  SOF_TIMESTAMPING_OPT_RX_FILTER,
  SOF_TIMESTAMPING_RX_SOFTWARE,
  SOF_TIMESTAMPING_SOFTWARE,
  SOF_TIMESTAMPING_OPT_ID,
  SOF_TIMESTAMPING_TX_SCHED,
  SOF_TIMESTAMPING_TX_SOFTWARE,
  SCM_TSTAMP_SCHED,
  SCM_TSTAMP_SND,
  MSG_MORE,
  MSG_OOB,
  MSG_PEEK,
  MSG_TRUNC,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLOUT,
  POLLRDHUP,
  POLLRDNORM,
  POLLWRNORM,
  SIOCINQ,
  SIOCOUTQ,
  type SockAddr,
  SOL_IP,
  SOL_SOCKET,
  SOL_UDP,
  UDP_CORK,
} from '../../uapi.js';
import { ProtoMemory } from '../core/proto_memory.js';
import {
  MsgHdr,
  RCV_SHUTDOWN,
  SEND_SHUTDOWN,
  SHUTDOWN_MASK,
  SK_MEM_QUANTUM,
  SK_MEM_RECV,
  skMemCharge,
  skMemReclaim,
  skMemSchedule,
  skMemUncharge,
  SOCK_BINDADDR_LOCK,
  SOCK_BINDPORT_LOCK,
  sockAddr,
  sockGetsockoptInt,
  sockOptInt,
  type SockProt,
  sockSetsockoptInt,
  INET_RECVERR,
  INET_PKTINFO,
  INET6_RXINFO,
  type Cmsg,
} from '../core/sock.js';
import { type ReadActor } from '../socket.js';
import type { NetProtocol } from '../core/protocol.js';



/** net.ipv4.udp_mem (pages: min, pressure, max), udp_rmem_min, udp_wmem_min; udp_mem set from the stack's memory by udpInitMem. */
export class UdpSysctl {
  udp_mem: [number, number, number] = [24576, 32768, 49152];
  udp_rmem_min = SK_MEM_QUANTUM;
  udp_wmem_min = SK_MEM_QUANTUM;
}

/**
 * udp_init's udp_mem for a stack of `bytes` memory: the pressure point
 * 1/8 of it, the min 3/4 of that, the max twice the min.
 */
export function udpInitMem(sysctl: UdpSysctl, bytes: number): void {
  const limit = Math.max(Math.floor(bytes / SK_MEM_QUANTUM / 8), 128);
  const min = Math.floor(limit / 4) * 3;
  sysctl.udp_mem = [min, limit, min * 2];
}

/** The stack's UDP: its table and counters (udp_table and the netns's UDP state). */
export class UdpProto {
  readonly table: UdpTable;
  readonly sysctl = new UdpSysctl();
  /**
   * udp_memory_allocated and udp_mem: what all UDP sockets' receive queues
   * hold (udp_prot.memory). UDP has no pressure state: past udp_mem's min a
   * socket gets memory only while under udp_rmem_min.
   */
  readonly mem: ProtoMemory;
  readonly #random: () => number;
  /** Where udpv6_sendmsg puts the source address it chooses, for the call. */
  readonly saddr6Scratch = new Uint8Array(16);
  /** The source udpReadSock hands its actor with each datagram (read at once, never kept). */
  readonly readFrom = sockAddr();

  constructor(readonly stack: Net) {
    this.#random = () => stack.random.u32();
    this.table = new UdpTable(this.#random);
    const sys = this.sysctl;
    this.mem = new ProtoMemory(() => sys.udp_mem, () => sys.udp_rmem_min, () => sys.udp_wmem_min, () => this.table.count, null);
  }

  get mib() {
    return this.stack.mibs.Udp;
  }

  /** The counters of a packet family: Udp for IPv4 datagrams (v4-mapped ones too), Udp6 for IPv6. */
  mibOf(family: number) {
    return family === AF_INET6 ? this.stack.mibs.Udp6 : this.stack.mibs.Udp;
  }

  random(): number {
    return this.#random();
  }

  /** ip_local_port_range, shared with TCP. */
  portRange(): readonly [number, number] {
    return this.stack.tcp.hashinfo.portRange;
  }

  /** udp_prot for this stack's AF_INET sockets, made once by udpProt. */
  prot: SockProt<UdpSock> | null = null;
  /** udpv6_prot, made once by ipv6/udp.ts. */
  prot6: SockProt<UdpSock> | null = null;

  /** A new unbound socket (inet_create / inet6_create for SOCK_DGRAM) whose calls are `prot`. */
  newSock(family: number = AF_INET, uid = 0, prot: SockProt<UdpSock> = udpProt(this)): UdpSock {
    const sk = new UdpSock(family);
    sk.uid = uid;
    sk.prot = prot;
    return sk;
  }
}


/** An int optval for udp_setsockopt (NaN, so EINVAL, when shorter than an int). */
export function optvalInt(optval: Buffer): number {
  return optval.length < 4 ? NaN : optval.readInt32LE(0);
}

/**
 * A MSG_ZEROCOPY datagram send (as ip_append_data takes it): data sent on a SO_ZEROCOPY
 * socket gets a completion id; the stack copied the data, so it completes
 * as the call returns (SO_EE_CODE_ZEROCOPY_COPIED). Returns `rc`.
 */
export function udpZerocopySent(sk: UdpSock, flags: number, rc: number): number {
  if (rc > 0 && flags & MSG_ZEROCOPY) sockZerocopyDone(sk);
  return rc;
}

/** udp_prot: UDP's calls for AF_INET sockets (udpv6_prot, ipv6/udp.ts, takes most of them). */
export function udpProt(udp: UdpProto): SockProt<UdpSock> {
  return (udp.prot ??= {
    name: 'UDP',
    close: (sk) => udpClose(udp, sk),
    bind: (sk, a) => udpBind(udp, sk, a),
    connect: (sk, a) => udpConnect(udp, sk, a),
    ioctl: (sk, cmd) => (cmd === SIOCINQ || cmd === SIOCOUTQ ? udpIoctl(sk, cmd) : -ENOTTY),
    shutdown: (sk, how) => udpShutdown(udp, sk, how),
    setsockopt: (sk, level, optname, optval) => udpSetsockopt(udp, sk, level, optname, optvalInt(optval)),
    getsockopt: (sk, level, optname) => {
      const v = udpGetsockopt(udp, sk, level, optname);
      return v < 0 ? v : sockOptInt(v);
    },
    sendmsg: (sk, data, flags, to) => udpZerocopySent(sk, flags, udpSendmsg(udp, sk, data, flags, to)),
    recvmsg: (sk, into, flags, msg, nonblock) => udpRecvmsg(udp, sk, into, flags & (MSG_PEEK | MSG_TRUNC | MSG_ERRQUEUE), msg, nonblock),
    memory: udp.mem,
  });
}

function wake(sk: UdpSock, events: number): void {
  if (sk.wake) sk.wake(sk, events);
}

// --- receive ----------------------------------------------------------------------

/**
 * __udp_enqueue_schedule_skb: queue a copy of the payload, charging its
 * truesize to sk_rmem_alloc. The queue is full when what it holds already
 * exceeds SO_RCVBUF (so one datagram always fits an empty queue); a drop is
 * UdpRcvbufErrors and UdpInErrors, and the socket's sk_drops.
 */
export function udpQueueRcv(
  udp: UdpProto,
  sk: UdpSock,
  buf: Buffer,
  off: number,
  len: number,
  frameLen: number,
  family: number,
  saddr: number,
  sport: number,
  saddr6: Uint8Array | null,
  s6Off = 0,
  rx: SkBuff | null = null,
): boolean {
  if (sk.rmemAlloc > sk.rcvbuf || sk.closed) {
    const mib = udp.mibOf(family);
    sk.drops++;
    mib.RcvbufErrors++;
    mib.InErrors++;
    udp.stack.mibs.Drop.counts[SKB_DROP_REASON.SOCKET_RCVBUFF]++;
    return false;
  }
  const truesize = udpTruesize(frameLen);
  // __udp_enqueue_schedule_skb: udp_mem refuses (MemErrors).
  if (!skMemSchedule(sk, truesize, SK_MEM_RECV)) {
    const mib = udp.mibOf(family);
    sk.drops++;
    mib.MemErrors++;
    mib.InErrors++;
    udp.stack.mibs.Drop.counts[SKB_DROP_REASON.PROTO_MEM]++;
    return false;
  }
  skMemCharge(sk, truesize);
  const data = Buffer.allocUnsafe(len);
  buf.copy(data, 0, off, off + len);
  const src6 = saddr6 ? Uint8Array.prototype.slice.call(saddr6, s6Off, s6Off + 16) : null;
  const q = new UdpSkb(data, truesize, family, saddr, sport, src6);
  if (rx && sk.cmsgFlags & (INET_PKTINFO | INET6_RXINFO)) q.pktinfo = udpPktinfo(udp, rx);
  // net_timestamp_check: stamped on receive while a socket wants software receive stamps.
  if (sk.tsflags & SOF_TIMESTAMPING_RX_SOFTWARE) q.tstamp = udp.stack.time.clock.wall();
  sk.receiveQueue.push(q);
  sk.rmemAlloc += truesize;
  wake(sk, POLLIN | POLLRDNORM);
  return true;
}

/**
 * ipv4_pktinfo_prepare (and the IPv6 one's PKTINFO_SKB_CB): what the
 * datagram's headers say for IP_PKTINFO / IPV6_RECVPKTINFO. ipi_spec_dst
 * (fib_compute_spec_dst) is the destination for a unicast datagram and the
 * address we would answer a broadcast or multicast from.
 */
function udpPktinfo(udp: UdpProto, rx: SkBuff): UdpPktinfo {
  const buf = rx.buf;
  const nh = rx.networkHeader;
  if (rx.ipv6 || (buf[nh] >> 4) === 6) {
    return { ifindex: rx.iif, daddr: 0, specDst: 0, daddr6: Uint8Array.prototype.slice.call(buf, nh + 24, nh + 40) };
  }
  const daddr = ipDaddr(buf, nh);
  const specDst = rx.rtType === RTN_LOCAL ? daddr : udp.stack.fib.selectAddr(ipSaddr(buf, nh));
  return { ifindex: rx.iif, daddr, specDst, daddr6: null };
}

/** __udp_is_mcast_sock: may this socket take a broadcast/multicast datagram? */
function udpIsMcastSock(sk: UdpSock, locAddr: number, rmtAddr: number, rmtPort: number, hnum: number): boolean {
  if (sk.num !== hnum || sk.ipv6only) return false;
  if (sk.daddr && sk.daddr !== rmtAddr) return false;
  if (sk.dport && sk.dport !== rmtPort) return false;
  if (sk.rcvSaddr && sk.rcvSaddr !== locAddr) return false;
  return true;
}

export function udpProtocol(stack: Net): NetProtocol {
  return {
    /** __udp4_lib_rcv: skb.data at the UDP header. */
    handler(skb: SkBuff): void {
      const buf = skb.buf;
      const off = skb.data;
      const len = skb.len;
      const nh = skb.networkHeader;
      const saddr = ipSaddr(buf, nh);
      const daddr = ipDaddr(buf, nh);
      const udp = stack.udp;
      const mib = stack.mibs.Udp;
      const drop = stack.mibs.Drop.counts;
      // __udp4_lib_rcv: the UDP length must fit the IP payload (trim any excess).
      const ulen = len >= UDP_HLEN ? udpLen(buf, off) : 0;
      if (len < UDP_HLEN || ulen < UDP_HLEN || ulen > len) {
        mib.InErrors++;
        drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
        return;
      }
      // Checksum 0: the sender did not compute one (allowed over IPv4). A
      // checksum the device vouched for (offload, loopback) is not redone.
      if (
        !skb.csumValid &&
        udpCheck(buf, off) !== 0 &&
        csumFold(csumPartial(buf, off, ulen, csumTcpUdpMagic(saddr, daddr, IPPROTO_UDP, ulen))) !== 0
      ) {
        mib.InCsumErrors++;
        mib.InErrors++;
        drop[SKB_DROP_REASON.UDP_CSUM]++;
        return;
      }
      const sport = udpSource(buf, off);
      const dport = udpDest(buf, off);
      const frameLen = off - nh + len + ETH_HLEN;
      if (skb.rtType !== RTN_LOCAL) {
        // __udp4_lib_mcast_deliver: a copy to every socket that matches.
        let n = 0;
        for (const sk of udp.table.portSlot(dport)) {
          if (!udpIsMcastSock(sk, daddr, saddr, sport, dport)) continue;
          udpQueueRcv(udp, sk, buf, off + UDP_HLEN, ulen - UDP_HLEN, frameLen, AF_INET, saddr, sport, null, 0, skb);
          n++;
        }
        if (!n) {
          // Broadcast/multicast nobody takes is IgnoredMulti and silent.
          drop[SKB_DROP_REASON.NO_SOCKET]++;
          mib.IgnoredMulti++;
        }
        return;
      }
      const sk = udp.table.lookup4(saddr, sport, daddr, dport);
      if (sk) {
        udpQueueRcv(udp, sk, buf, off + UDP_HLEN, ulen - UDP_HLEN, frameLen, AF_INET, saddr, sport, null, 0, skb);
        return;
      }
      drop[SKB_DROP_REASON.NO_SOCKET]++;
      mib.NoPorts++;
      stack.icmp.send(buf, nh, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, skb.pktType === PACKET_HOST);
    },
    errHandler(type, code, info, buf, innerOff, innerLen, outer) {
      udpV4Err(stack.udp, type, code, buf, innerOff, innerLen, outer, info);
    },
  };
}

/**
 * __udp4_lib_err: an ICMP error quoting a datagram we sent. The socket that
 * sent it is looked up (our address and port are the quoted source). Without
 * IP_RECVERR, only a hard error on a connected socket is kept, in sk_err, for
 * the next call or SO_ERROR (RFC 1122 4.1.3.3); unconnected sockets never
 * hear of it. With IP_RECVERR every error is queued on the error queue
 * (ip_icmp_error) and becomes sk_err. No socket: IcmpInErrors.
 */
export function udpV4Err(udp: UdpProto, type: number, code: number, buf: Buffer, innerOff: number, innerLen: number, outer = -1, info = 0): void {
  const ihl = ipIhl(buf, innerOff);
  if (innerLen < ihl + 4) return;
  const uh = innerOff + ihl;
  const sk = udp.table.lookup4(ipDaddr(buf, innerOff), udpDest(buf, uh), ipSaddr(buf, innerOff), udpSource(buf, uh));
  if (!sk) {
    udp.stack.mibs.Icmp.InErrors++;
    return;
  }
  let err: number;
  let harderr = false;
  switch (type) {
    case ICMP_SOURCE_QUENCH:
      return;
    case ICMP_PARAMETERPROB:
      err = EPROTO;
      harderr = true;
      break;
    case ICMP_DEST_UNREACH:
      if (code === ICMP_FRAG_NEEDED) {
        // IP_PMTUDISC_WANT (the default): the sender learns the datagram was too big.
        err = EMSGSIZE;
        harderr = true;
        break;
      }
      err = EHOSTUNREACH;
      if (code < ICMP_ERR_CONVERT.length) [err, harderr] = ICMP_ERR_CONVERT[code];
      break;
    case ICMP_TIME_EXCEEDED:
    default:
      err = EHOSTUNREACH;
      break;
  }
  if (sk.cmsgFlags & INET_RECVERR) {
    ipIcmpError(sk, err, type, code, icmpUnreachInfo(type, code, info), buf, outer, innerOff, innerOff + innerLen, udpDest(buf, uh), uh + UDP_HLEN);
    sk.err = err;
    wake(sk, POLLERR);
    return;
  }
  udpErrReport(sk, err, harderr);
}

/** The tail of __udp4_lib_err / __udp6_lib_err without IP_RECVERR. */
export function udpErrReport(sk: UdpSock, err: number, harderr: boolean): void {
  if (!harderr || sk.state !== UDP_ESTABLISHED) return;
  sk.err = err;
  wake(sk, POLLERR);
}

// --- bind, connect -------------------------------------------------------------------

/** inet_autobind: an ephemeral port on first send/connect (to `dport`, when known: a shard steers by it); -EAGAIN if none is free. */
export function udpAutobind(udp: UdpProto, sk: UdpSock, dport = 0): number {
  if (sk.num) return 0;
  return udp.table.getPort(sk, 0, udp.portRange(), () => udp.random(), dport) < 0 ? -EAGAIN : 0;
}

/**
 * __inet_bind for an AF_INET UDP socket (inet_bind checked the family):
 * the address must be ours, a broadcast or multicast address
 * (receive-only), or any; the port free by UDP's rules.
 */
export function udpBind(udp: UdpProto, sk: UdpSock, a: SockAddr): number {
  if (a.port < 0 || a.port > 65535) return -EINVAL;
  const fib = udp.stack.fib;
  const rt = a.addr === INADDR_ANY ? RTN_LOCAL : fib.addrType(a.addr);
  if (a.addr !== INADDR_ANY && rt !== RTN_LOCAL && rt !== RTN_BROADCAST && !ipv4IsMulticast(a.addr)) return -EADDRNOTAVAIL;
  if (sk.state !== UDP_CLOSE || sk.num) return -EINVAL;
  sk.rcvSaddr = a.addr;
  // A broadcast/multicast bind receives there but sends from the route's address.
  sk.saddr = rt === RTN_LOCAL ? a.addr : 0;
  if (udp.table.getPort(sk, a.port, udp.portRange(), () => udp.random()) < 0) {
    sk.rcvSaddr = sk.saddr = 0;
    return -EADDRINUSE;
  }
  if (sk.rcvSaddr) sk.userlocks |= SOCK_BINDADDR_LOCK;
  if (a.port) sk.userlocks |= SOCK_BINDPORT_LOCK;
  sk.daddr = 0;
  sk.dport = 0;
  return 0;
}

/**
 * The route part of an IPv4 send or connect: the source address for
 * `daddr`, or a negative errno (-ENETUNREACH, or -EACCES for a broadcast
 * destination without SO_BROADCAST, as RTCF_BROADCAST is checked).
 */
function udpRoute4(udp: UdpProto, sk: UdpSock, daddr: number): number {
  const fib = udp.stack.fib;
  if (daddr === INADDR_BROADCAST || fib.addrType(daddr) === RTN_BROADCAST) {
    // The limited broadcast needs a route like any destination (the default one, on a host).
    if (daddr === INADDR_BROADCAST && !fib.lookup(daddr)) {
      udp.stack.mibs.Ip.OutNoRoutes++;
      return -ENETUNREACH;
    }
    if (!sk.broadcast) return -EACCES;
    return sk.saddr || fib.selectAddr(daddr);
  }
  if (ipv4IsMulticast(daddr)) return sk.saddr || fib.selectAddr(daddr);
  if (fib.isLocal(daddr)) return sk.saddr || daddr;
  const rt = fib.lookup(daddr);
  if (!rt) {
    udp.stack.mibs.Ip.OutNoRoutes++;
    return -ENETUNREACH;
  }
  // The route's device is down (no link under it): ip_route_output's -ENETDOWN.
  if (!udp.stack.dev.running) return -ENETDOWN;
  return sk.saddr || rt.prefsrc;
}

/**
 * inet_dgram_connect for an AF_INET socket: AF_UNSPEC disconnects, an
 * AF_INET address connects (ip4DatagramConnect).
 */
export function udpConnect(udp: UdpProto, sk: UdpSock, a: SockAddr): number {
  if (a.family === AF_UNSPEC) return udpDisconnect(udp, sk);
  if (a.family !== AF_INET) return -EAFNOSUPPORT;
  return ip4DatagramConnect(udp, sk, a.addr, a.port);
}

/**
 * __ip4_datagram_connect: autobind, route (EACCES for a broadcast without
 * SO_BROADCAST), fix the local address if it was any (rehashing), and
 * remember the peer. Connecting to 0.0.0.0 means this host, as Linux
 * routes it. An AF_INET6 socket connecting to a v4-mapped peer comes here
 * too, and sees the tuple v4-mapped.
 */
export function ip4DatagramConnect(udp: UdpProto, sk: UdpSock, daddr: number, dport: number): number {
  if (udpAutobind(udp, sk, dport) < 0) return -EAGAIN;
  const fib = udp.stack.fib;
  if (daddr === INADDR_ANY) daddr = sk.saddr || (fib.addrs.length ? fib.addrs[0].local : 0);
  const saddr = udpRoute4(udp, sk, daddr);
  if (saddr < 0) return saddr;
  if (!sk.saddr) sk.saddr = saddr;
  if (!sk.rcvSaddr) {
    sk.rcvSaddr = saddr;
    if (sk.family === AF_INET6) ipv6SetV4Mapped(sk.v6RcvSaddr, saddr);
    udp.table.rehash(sk);
  }
  if (sk.family === AF_INET6) {
    ipv6SetV4Mapped(sk.v6Daddr, daddr);
    ipv6SetV4Mapped(sk.v6Saddr, sk.saddr);
  }
  sk.daddr = daddr;
  sk.dport = dport;
  sk.state = UDP_ESTABLISHED;
  sk.inetId = udp.random() & 0xffff;
  return 0;
}

/**
 * __udp_disconnect: forget the peer; an address or port the user did not
 * bind is given back (the socket may be autobound again later).
 */
export function udpDisconnect(udp: UdpProto, sk: UdpSock): number {
  sk.state = UDP_CLOSE;
  sk.daddr = 0;
  sk.dport = 0;
  sk.v6Daddr.fill(0);
  if (!(sk.userlocks & SOCK_BINDADDR_LOCK)) {
    sk.rcvSaddr = sk.saddr = 0;
    sk.v6RcvSaddr.fill(0);
    sk.v6Saddr.fill(0);
    if (sk.userlocks & SOCK_BINDPORT_LOCK) udp.table.rehash(sk);
  }
  if (!(sk.userlocks & SOCK_BINDPORT_LOCK)) udp.table.unhash(sk);
  return 0;
}

// --- send ----------------------------------------------------------------------------

/**
 * inet_sendmsg + udp_sendmsg: one datagram of `data` to `to` (AF_INET, or
 * the connected peer when null). Autobinds first; EDESTADDRREQ without an
 * address on an unconnected socket; an address on a connected socket is
 * allowed (it overrides the peer for this datagram, as Linux). A pending
 * error (sk_err, e.g. ECONNREFUSED) is returned and cleared first, as
 * sock_alloc_send_skb does. Returns the bytes sent or a negative errno.
 * An AF_INET6 socket's IPv4 datagrams come here from udpv6Sendmsg.
 */
export function udpSendmsg(udp: UdpProto, sk: UdpSock, data: Uint8Array, flags: number, to: SockAddr | null): number {
  if (data.length > 0xffff) return -EMSGSIZE;
  if (flags & MSG_OOB) return -EOPNOTSUPP;
  if (udpAutobind(udp, sk, to?.port ?? sk.dport) < 0) return -EAGAIN;
  const corkreq = sk.corked || (flags & MSG_MORE) !== 0;
  // Frames pending (corked): the data joins them; the address is not looked at again, as udp_sendmsg skips to append.
  if (sk.pending) return udpAppendPending(udp, sk, sk.pending, data, corkreq, udpPushPending);
  let daddr: number;
  let dport: number;
  if (to) {
    if (to.family !== AF_INET && to.family !== AF_UNSPEC) return -EAFNOSUPPORT;
    daddr = to.addr;
    dport = to.port;
    if (dport === 0) return -EINVAL;
  } else {
    if (sk.state !== UDP_ESTABLISHED) return -EDESTADDRREQ;
    daddr = sk.daddr;
    dport = sk.dport;
  }
  const e = udpSendPrologue(sk);
  if (e) return e;
  if (corkreq) {
    // udp_sendmsg routes before ip_append_data: a corked send fails as an immediate one would.
    if (data.length > UDP_MAX_PAYLOAD4) return -EMSGSIZE;
    const r = udpRoute4(udp, sk, daddr === INADDR_ANY ? sk.saddr || udp.stack.fib.selectAddr(0) : daddr);
    if (r < 0) return r;
    return udpStartPending(sk, new UdpPending(false, daddr, null, dport), data);
  }
  return udpSend4(udp, sk, data, daddr, dport);
}

export function udpStartPending(sk: UdpSock, p: UdpPending, data: Uint8Array): number {
  p.chunks.push(Buffer.from(data));
  p.len = data.length;
  sk.pending = p;
  return data.length;
}

/**
 * ip_append_data onto corked frames; past the largest datagram they are all
 * flushed (udp_flush_pending_frames). Uncorked, the family's `push` sends them.
 */
export function udpAppendPending(udp: UdpProto, sk: UdpSock, p: UdpPending, data: Uint8Array, corkreq: boolean, push: UdpPushPending): number {
  if (p.len + data.length > (p.v6 ? UDP_MAX_PAYLOAD6 : UDP_MAX_PAYLOAD4)) {
    sk.pending = null;
    return -EMSGSIZE;
  }
  p.chunks.push(Buffer.from(data));
  p.len += data.length;
  if (corkreq) return data.length;
  const rc = push(udp, sk);
  return rc < 0 ? rc : data.length;
}

/** A family's push_pending_frames: udpPushPending, or udpV6PushPendingFrames for an AF_INET6 socket. */
export type UdpPushPending = (udp: UdpProto, sk: UdpSock) => number;

/** udp_push_pending_frames: the corked IPv4 datagram goes out (udpV6PushPendingFrames sends IPv6 ones). */
export function udpPushPending(udp: UdpProto, sk: UdpSock): number {
  const p = sk.pending;
  if (!p || p.v6) return 0;
  sk.pending = null;
  return udpSend4(udp, sk, udpPendingPayload(p), p.daddr, p.dport);
}

/** The corked chunks as one payload. */
export function udpPendingPayload(p: UdpPending): Buffer {
  return p.chunks.length === 1 ? p.chunks[0] : Buffer.concat(p.chunks, p.len);
}

/** sock_alloc_send_skb's checks: a pending error first (read once), then a shut-down send side. */
export function udpSendPrologue(sk: UdpSock): number {
  if (sk.err) {
    const e = sk.err;
    sk.err = 0;
    return -e;
  }
  if (sk.shutdown & SEND_SHUTDOWN) return -EPIPE;
  return 0;
}

/**
 * udp_send_skb over ip_make_skb: header, checksum (a computed 0 goes out as
 * 0xffff; RFC 768), and IP output. DF is set on what fits the MTU
 * (IP_PMTUDISC_WANT) with the socket's own IP ID when connected, 0
 * otherwise; larger datagrams are fragmented locally (up to 65507 bytes of
 * payload).
 */
function udpSend4(udp: UdpProto, sk: UdpSock, data: Uint8Array, daddr: number, dport: number): number {
  const stack = udp.stack;
  if (data.length > UDP_MAX_PAYLOAD4) return -EMSGSIZE;
  if (daddr === INADDR_ANY) daddr = sk.saddr || (stack.fib.addrs.length ? stack.fib.addrs[0].local : 0);
  const saddr = udpRoute4(udp, sk, daddr);
  if (saddr < 0) return saddr;
  const ulen = UDP_HLEN + data.length;
  const skb = allocSkb(ulen);
  const at = skb.put(ulen);
  const b = skb.buf;
  udpBuild(b, at, sk.num, dport, data);
  let c = csumFold(csumPartial(b, at, ulen, csumTcpUdpMagic(saddr, daddr, IPPROTO_UDP, ulen)));
  if (c === 0) c = 0xffff;
  b[at + 6] = c >>> 8;
  b[at + 7] = c & 255;
  const df = ulen + IP_HLEN <= stack.dev.mtu;
  let id = IP_ID_AUTO;
  if (df) {
    if (sk.daddr) {
      sk.inetId = (sk.inetId + 1) & 0xffff;
      id = sk.inetId;
    } else {
      id = 0;
    }
  }
  const ttl = ipv4IsMulticast(daddr) ? sk.mcTtl : sk.ttl < 0 ? 64 : sk.ttl;
  const rc = ipLocalOut(stack, skb, saddr, daddr, IPPROTO_UDP, ttl, sk.tos, df, id);
  if (rc < 0) {
    if (rc === -ENOBUFS) udp.mib.SndbufErrors++;
    return rc;
  }
  // A qdisc drop (NET_XMIT_DROP, ENOBUFS to ip_send_skb) is not the sender's error without IP_RECVERR.
  if (rc > 0) udp.mib.SndbufErrors++;
  else {
    udp.mib.OutDatagrams++;
    udpTxTimestamp(udp, sk, data);
  }
  return data.length;
}

/**
 * SO_TIMESTAMPING on a datagram that reached the device: its key (with
 * OPT_ID, the socket's counter from 0, one per datagram: ip_append_data's
 * cork tskey), then SCM_TSTAMP_SCHED (dev_queue_xmit) and SCM_TSTAMP_SND
 * (the driver), at this moment, as the output path runs to the driver in
 * one call. TX_ACK means nothing without acknowledgements.
 */
export function udpTxTimestamp(udp: UdpProto, sk: UdpSock, data: Uint8Array): void {
  const f = sk.tsflags;
  if (!(f & (SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE))) return;
  let key = 0;
  if (f & SOF_TIMESTAMPING_OPT_ID) {
    key = sk.tskey;
    sk.tskey = (key + 1) >>> 0;
  }
  const wall = udp.stack.time.clock.wall();
  const payload = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (f & SOF_TIMESTAMPING_TX_SCHED) skbTstampTx(sk, key, SCM_TSTAMP_SCHED, wall, payload);
  if (f & SOF_TIMESTAMPING_TX_SOFTWARE) skbTstampTx(sk, key, SCM_TSTAMP_SND, wall, payload);
}

// --- receive calls -------------------------------------------------------------------

/**
 * udp_recvmsg (non-blocking): the oldest datagram into `into`. A pending
 * error comes first (read once). Returns the bytes copied, or with
 * MSG_TRUNC the datagram's real length; info.flags gets MSG_TRUNC when the
 * datagram did not fit. MSG_PEEK leaves it queued. -EAGAIN when empty
 * (0 after shutdown(SHUT_RD) for a blocking caller, as Linux's wait ends).
 */
export function udpRecvmsg(udp: UdpProto, sk: UdpSock, into: Uint8Array, flags: number, msg: MsgHdr | null, nonblock = true): number {
  if (msg) {
    msg.flags = 0;
    msg.len = -1;
  }
  if (flags & MSG_ERRQUEUE) return sockRecvError(sk, sk.family, into, msg);
  if (msg && msg.cmsgs.length) msg.cmsgs = [];
  if (sk.err) {
    const e = sk.err;
    sk.err = 0;
    return -e;
  }
  const skb = (flags & MSG_PEEK) !== 0 ? sk.receiveQueue.peek() : sk.receiveQueue.shift();
  if (!skb) {
    if (sk.shutdown & RCV_SHUTDOWN && !nonblock) return 0;
    return -EAGAIN;
  }
  const ulen = skb.data.length;
  let copied = into.length;
  if (copied >= ulen) copied = ulen;
  else if (msg) msg.flags |= MSG_TRUNC;
  into.set(skb.data.subarray(0, copied), 0);
  if (!(flags & MSG_PEEK)) {
    sk.rmemAlloc -= skb.truesize;
    skMemUncharge(sk, skb.truesize);
    // udp_rmem_release: an emptied queue gives its pages back.
    if (!sk.receiveQueue.length) skMemReclaim(sk);
    udp.mibOf(skb.family).InDatagrams++;
  }
  if (msg) {
    udpFillSource(sk, skb, msg.name);
    msg.len = ulen;
    if (skb.pktinfo || skb.tstamp) udpCmsgRecv(sk, skb, msg.cmsgs);
  }
  return flags & MSG_TRUNC ? ulen : copied;
}

/**
 * The control messages of a datagram read in udp_recvmsg's order:
 * SCM_TIMESTAMPING (sock_recv_cmsgs: with SOF_TIMESTAMPING_SOFTWARE, and
 * RX_SOFTWARE or no OPT_RX_FILTER), IPV6_PKTINFO on an AF_INET6 socket that
 * asked (ip6_datagram_recv_common_ctl; an IPv4 destination v4-mapped), then
 * IP_PKTINFO (ip_cmsg_recv) when asked and the datagram came over IPv4.
 */
function udpCmsgRecv(sk: UdpSock, skb: UdpSkb, out: Cmsg[]): void {
  const ts = sk.tsflags;
  if (skb.tstamp && ts & SOF_TIMESTAMPING_SOFTWARE && (ts & SOF_TIMESTAMPING_RX_SOFTWARE || !(ts & SOF_TIMESTAMPING_OPT_RX_FILTER))) {
    out.push({ level: SOL_SOCKET, type: SCM_TIMESTAMPING, data: scmTimestamping(skb.tstamp) });
  }
  const pi = skb.pktinfo;
  if (!pi) return;
  const flags = sk.cmsgFlags;
  if (sk.family === AF_INET6 && flags & INET6_RXINFO) {
    let a6 = pi.daddr6;
    if (!a6) {
      a6 = new Uint8Array(16);
      ipv6SetV4Mapped(a6, pi.daddr);
    }
    out.push(ipv6CmsgPktinfo(a6, pi.ifindex));
  }
  if (!pi.daddr6 && flags & INET_PKTINFO) out.push(ipCmsgPktinfo(pi.ifindex, pi.specDst, pi.daddr));
}

/**
 * Dequeue the oldest datagram for a reader that copies it itself (the API's
 * descriptor pump): the accounting of a read, without its error check.
 */
export function udpTakeSkb(udp: UdpProto, sk: UdpSock): UdpSkb | undefined {
  const skb = sk.receiveQueue.shift();
  if (skb) {
    sk.rmemAlloc -= skb.truesize;
    skMemUncharge(sk, skb.truesize);
    if (!sk.receiveQueue.length) skMemReclaim(sk);
    udp.mibOf(skb.family).InDatagrams++;
  }
  return skb;
}

/**
 * udp_read_skb for a reader that takes datagrams in place (the API's
 * descriptor pump): each datagram goes to `actor` with its source and its
 * control messages (as a read would get them); one the
 * actor does not take whole stays queued and ends the walk. At most `max`
 * datagrams. Returns how many were taken.
 */
export function udpReadSock(udp: UdpProto, sk: UdpSock, actor: ReadActor, max: number, from: SockAddr): number {
  let n = 0;
  while (n < max) {
    const skb = sk.receiveQueue.peek();
    if (!skb) break;
    udpFillSource(sk, skb, from);
    const len = skb.data.length;
    let cmsgs: Cmsg[] | undefined;
    if (skb.pktinfo || skb.tstamp) udpCmsgRecv(sk, skb, (cmsgs = []));
    if (actor(skb.data, 0, len, from, cmsgs) !== len) break;
    udpTakeSkb(udp, sk);
    n++;
  }
  return n;
}

/** The source address as the socket's family gives it (an AF_INET6 socket sees IPv4 peers v4-mapped). */
function udpFillSource(sk: UdpSock, skb: UdpSkb, from: SockAddr): void {
  from.port = skb.sport;
  if (sk.family === AF_INET6) {
    from.family = AF_INET6;
    const a6 = (from.addr6 ??= new Uint8Array(16));
    if (skb.saddr6) a6.set(skb.saddr6);
    else ipv6SetV4Mapped(a6, skb.saddr);
    from.addr = skb.saddr6 ? 0 : skb.saddr;
  } else {
    from.family = AF_INET;
    from.addr = skb.saddr;
  }
}

/** SIOCINQ: the length of the next datagram's payload (0 when none); SIOCOUTQ: sk_wmem_alloc. */
export function udpIoctl(sk: UdpSock, req: number): number {
  if (req === SIOCINQ) return sk.receiveQueue.peek()?.data.length ?? 0;
  // Datagrams are handed to the device as they are sent and hold no send-buffer memory
  // afterwards; only a corked one is held (its payload bytes here, not Linux's truesize).
  if (req === SIOCOUTQ) return sk.pending?.len ?? 0;
  return -EINVAL;
}

/** udp_poll / datagram_poll. */
export function udpPoll(sk: UdpSock): number {
  let mask = 0;
  if (sk.err || sk.errQueueLen) mask |= POLLERR;
  if (sk.shutdown & RCV_SHUTDOWN) mask |= POLLRDHUP | POLLIN | POLLRDNORM;
  if (sk.shutdown === SHUTDOWN_MASK) mask |= POLLHUP;
  if (sk.receiveQueue.length) mask |= POLLIN | POLLRDNORM;
  // sock_writeable: sent datagrams hold no send-buffer memory here, so always.
  mask |= POLLOUT | POLLWRNORM;
  return mask;
}

/**
 * inet_getname / inet6_getname: the local (peer=false) or connected
 * (peer=true) address, or -ENOTCONN. An AF_INET6 socket gives its v6 view.
 */
export function udpGetname(sk: UdpSock, out: SockAddr, peer: boolean): number {
  out.family = sk.family;
  if (peer) {
    if (!sk.dport || sk.state !== UDP_ESTABLISHED) return -ENOTCONN;
    out.port = sk.dport;
    out.addr = sk.daddr;
    if (sk.family === AF_INET6) out.addr6 = Uint8Array.from(sk.v6Daddr);
    return 0;
  }
  out.port = sk.num;
  out.addr = sk.rcvSaddr || sk.saddr;
  if (sk.family === AF_INET6) out.addr6 = Uint8Array.from(sk.v6RcvSaddr);
  return 0;
}

// --- shutdown, close, options ------------------------------------------------------------

/**
 * inet_shutdown: an unconnected socket answers ENOTCONN but the shutdown
 * bits are still set (and pollers woken), as Linux does for UDP.
 */
export function udpShutdown(_udp: UdpProto, sk: UdpSock, how: number): number {
  if (how < 0 || how > 2) return -EINVAL;
  sk.shutdown |= how + 1;
  wake(sk, POLLIN | POLLOUT | POLLHUP | POLLRDHUP);
  return sk.state === UDP_CLOSE ? -ENOTCONN : 0;
}

/** udp_lib_close: unhash, free the queue. */
export function udpClose(udp: UdpProto, sk: UdpSock): void {
  sk.closed = true;
  sk.pending = null; // udp_destroy_sock flushes corked frames unsent
  sk.wake = null;
  udp.table.unhash(sk);
  sk.receiveQueue.clear();
  skMemUncharge(sk, sk.rmemAlloc);
  skMemReclaim(sk);
  sk.rmemAlloc = 0;
  sk.shutdown = SHUTDOWN_MASK;
}

/**
 * udp_setsockopt with an int value (SOL_SOCKET, SOL_UDP, SOL_IP; an
 * AF_INET6 socket's SOL_IPV6 is udpv6Setsockopt's). Uncorking sends what
 * is pending through the family's `push`, as udp_lib_setsockopt is given it.
 */
export function udpSetsockopt(udp: UdpProto, sk: UdpSock, level: number, name: number, val: number, push: UdpPushPending = udpPushPending): number {
  if (!Number.isInteger(val)) return -EINVAL;
  if (level === SOL_SOCKET) return sockSetsockoptInt(sk, name, val);
  if (level === SOL_UDP) {
    if (name !== UDP_CORK) return -ENOPROTOOPT;
    sk.corked = val !== 0;
    // Uncorking sends what is pending (its error is not setsockopt's).
    if (!sk.corked) push(udp, sk);
    return 0;
  }
  if (level === SOL_IP) {
    switch (name) {
      case IP_TTL:
        if (val !== -1 && (val < 1 || val > 255)) return -EINVAL;
        sk.ttl = val;
        return 0;
      case IP_MULTICAST_TTL:
        if (val === -1) val = 1;
        if (val < 0 || val > 255) return -EINVAL;
        sk.mcTtl = val;
        return 0;
      case IP_TOS:
        sk.tos = val & 0xff & ~3;
        return 0;
      default:
        return ipSetsockoptFlag(sk, name, val) ?? -ENOPROTOOPT;
    }
  }
  return -ENOPROTOOPT;
}

/** udp_getsockopt for int-valued options (SOL_IPV6: udpv6Getsockopt); the value or a negative errno. */
export function udpGetsockopt(_udp: UdpProto, sk: UdpSock, level: number, name: number): number {
  if (level === SOL_SOCKET) return sockGetsockoptInt(sk, name);
  if (level === SOL_UDP) return name === UDP_CORK ? (sk.corked ? 1 : 0) : -ENOPROTOOPT;
  if (level === SOL_IP) {
    switch (name) {
      case IP_TTL:
        return sk.ttl < 0 ? 64 : sk.ttl;
      case IP_MULTICAST_TTL:
        return sk.mcTtl;
      case IP_TOS:
        return sk.tos;
      default:
        return ipGetsockoptFlag(sk, name) ?? -ENOPROTOOPT;
    }
  }
  return -ENOPROTOOPT;
}

/** `ss` notation of the local or peer end: 10.0.0.2:53, [fd00::2]:53, *:* for none. */
export function udpEndpoint(sk: UdpSock, peer: boolean): string {
  const port = peer ? sk.dport : sk.num;
  const p = port ? String(port) : '*';
  if (sk.family === AF_INET6) {
    const a = peer ? sk.v6Daddr : sk.v6RcvSaddr;
    if (ipv6IsUnspecified(a)) return `*:${p}`;
    return `[${formatIpv6(a)}]:${p}`;
  }
  const a = peer ? sk.daddr : sk.rcvSaddr;
  return `${a ? formatIpv4(a) : '*'}:${p}`;
}

/** A row for `ss -uan`. */
export function udpStateName(sk: UdpSock): string {
  return sk.state === UDP_ESTABLISHED ? 'ESTAB' : 'UNCONN';
}
