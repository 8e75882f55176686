/**
 * The IPv6 side of one stack (af_inet6.c's inet6_init, the link's
 * inet6_dev and the netns's ipv6 state): settings, routes, addresses,
 * neighbour discovery, MLD, ICMPv6, reassembly and fragment IDs, wired to
 * the device (ETH_P_IPV6) when IPv6 is configured. Without an `ipv6`
 * config (or on a link below the 1280-byte IPv6 minimum, as Linux
 * disables IPv6 there) it stays disabled and sends nothing.
 */
import { formatIpv6, formatMac, ipv6IsLinkLocal } from '../../lib/addr.js';
import { ETH_P_IPV6 } from '../../wire/ethernet.js';
import { IPV6_MIN_MTU } from '../../wire/ipv6.js';
import { nudStateName } from '../core/neighbour.js';
import {
  Addrconf,
  IFA_F_DADFAILED,
  IFA_F_DEPRECATED,
  IFA_F_TENTATIVE,
  type Ipv6AddrConfig,
  ipv6AddrIsLocal,
  ipv6ChooseSaddr,
  Ipv6Devconf,
  ipv6PathMtu,
} from './addrconf.js';
import { Icmpv6, icmpv6Protocol } from './icmp.js';
import { Ip6Idents, ip6Xmit } from './ip6_output.js';
import { IN6ADDR_LINKLOCAL_ALLNODES, Mld } from './mcast.js';
import { Ndisc } from './ndisc.js';
import { Ip6Frags } from './reassembly.js';
import { Fib6 } from './route.js';
import type { Net } from '../core/net.js';
import {
  AF_INET6,
  EAFNOSUPPORT,
  ENOTCONN,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SOCK_DGRAM,
  SOCK_STREAM,
  type SockAddr,
} from '../../uapi.js';
import { TcpProto } from '../ipv4/tcp_proto.js';
import { isInet6, type ProtoOps, Socket } from '../socket.js';
import { TcpSock } from '../ipv4/tcp_sock.js';
import { inetBindPortCheck, inetDgramOps, inetProtocolCheck, inetStreamHasPeer, inetStreamOps } from '../ipv4/af_inet.js';
import { tcpv6Prot, tcpV6Protocol } from './tcp_ipv6.js';
import { UdpProto } from '../ipv4/udp.js';
import { UDP_ESTABLISHED, UdpSock } from '../ipv4/udp_sock.js';
import { udpv6Prot, udpv6Protocol } from './udp.js';
import { tcpNewSock } from '../ipv4/tcp_ipv4.js';
import { ipv6PacketType } from './ip6_input.js';

export interface Ipv6Config {
  addrs: Ipv6AddrConfig[];
  /** A default router (on a connected prefix or link-local), or null. */
  gateway: Buffer | null;
  /** SLAAC from Router Advertisement prefixes (net.ipv6.conf.*.autoconf). */
  slaac?: boolean;
}

export class Ipv6 {
  enabled: boolean;
  readonly cnf = new Ipv6Devconf();
  readonly fib = new Fib6();
  readonly addrconf: Addrconf;
  readonly ndisc: Ndisc;
  readonly mld: Mld;
  readonly icmp: Icmpv6;
  readonly frags: Ip6Frags;
  readonly idents: Ip6Idents;
  /** The secret of the automatic flow labels. */
  readonly flowSecret: number;

  constructor(
    private stack: Net,
    private cfg: Ipv6Config | undefined,
  ) {
    this.enabled = !!cfg && stack.dev.mtu >= IPV6_MIN_MTU;
    this.cnf.mtu6 = stack.dev.mtu;
    this.cnf.autoconf = cfg?.slaac ? 1 : 0;
    // Disabled, IPv6 draws nothing from the stack's random source and arms
    // no timer: an IPv4-only stack behaves exactly as before IPv6 existed.
    const random = this.enabled ? stack.random : { u32: () => 0 };
    this.addrconf = new Addrconf(stack);
    this.ndisc = new Ndisc(stack, random);
    this.mld = new Mld(stack);
    this.icmp = new Icmpv6(stack);
    this.frags = new Ip6Frags(stack.time, stack.mibs, (first, pktType, type, code) => this.icmp.send(first, 0, type, code, 0, pktType));
    this.idents = new Ip6Idents(() => random.u32());
    this.flowSecret = random.u32();
    if (!this.enabled) this.ndisc.tbl.shutdown();
  }

  /** The configured addresses and gateway; the device and protocol hooks. Called once stack.ipv6 is set. */
  init(): void {
    const cfg = this.cfg;
    const stack = this.stack;
    if (!this.enabled || !cfg) return;
    for (const a of cfg.addrs) this.addrconf.addAddress(a.addr, a.prefix);
    if (cfg.gateway) this.fib.add(Buffer.alloc(16), 0, cfg.gateway);
    stack.dev.addPacketHandler(ETH_P_IPV6, ipv6PacketType(stack));
    stack.inet6Protos[IPPROTO_ICMPV6] = icmpv6Protocol(stack);
    // ipv6_stub: what TCP and UDP reach of this layer for their AF_INET6 sockets.
    stack.ipv6Stub = {
      xmit: (skb, saddr, daddr, proto, hopLimit, tclass) => ip6Xmit(stack, skb, saddr, daddr, proto, hopLimit, tclass),
      pathMtu: (daddr) => ipv6PathMtu(stack, daddr),
      chooseSaddr: (daddr, out) => ipv6ChooseSaddr(stack, daddr, out),
      addrIsLocal: (addr) => ipv6AddrIsLocal(stack, addr),
      get ifindex() {
        return stack.dev.ifindex;
      },
    };
  }

  /** addrconf_notify(NETDEV_UP): all-nodes group, link-local address, DAD for every address. */
  up(): void {
    if (!this.enabled) return;
    this.mld.join(IN6ADDR_LINKLOCAL_ALLNODES);
    this.addrconf.up();
  }

  /** `ip -6 addr` as data. */
  addresses(): { addr: string; prefix: number; flags: string[] }[] {
    return this.addrconf.addrs.map((a) => {
      const flags: string[] = [];
      if (a.flags & IFA_F_TENTATIVE) flags.push('tentative');
      if (a.flags & IFA_F_DADFAILED) flags.push('dadfailed');
      if (a.flags & IFA_F_DEPRECATED) flags.push('deprecated');
      return { addr: formatIpv6(a.addr), prefix: a.prefixLen, flags };
    });
  }

  /** `ip -6 neigh` as data. */
  neighbours(): { addr: string; lladdr: string; state: string; router: boolean }[] {
    const out = [];
    for (const n of this.ndisc.tbl.entries()) out.push({ addr: formatIpv6(n.key6!), lladdr: formatMac(n.ha), state: nudStateName(n.nudState), router: n.isRouter });
    return out;
  }

  /** `ip -6 route` as data. */
  routes(): { dst: string; via: string | null; expires: number | null }[] {
    const now = this.stack.time.clock.now();
    return this.fib.routes.map((r) => ({
      dst: `${formatIpv6(r.dst)}/${r.prefixLen}`,
      via: r.gateway ? formatIpv6(r.gateway) : null,
      expires: r.expires === Infinity ? null : Math.max(0, Math.round((r.expires - now) / 1000)),
    }));
  }

  shutdown(): void {
    this.addrconf.shutdown();
    this.mld.shutdown();
    this.ndisc.tbl.shutdown();
    this.frags.shutdown();
  }
}

// --- the AF_INET6 socket calls ------------------------------------------------------------

/**
 * inet6_getname: the address as an AF_INET6 socket sees it (v4-mapped for
 * an IPv4 tuple), with our interface as the scope of a link-local one.
 */
function inet6Getname(stack: Net, out: SockAddr, a6: Uint8Array, port: number): void {
  out.family = AF_INET6;
  out.port = port;
  out.addr = 0;
  out.addr6 = Uint8Array.from(a6);
  out.flowinfo = 0;
  out.scopeId = ipv6IsLinkLocal(a6) ? (stack.ipv6Stub?.ifindex ?? 0) : 0;
}

/**
 * inet6_bind's checks before the protocol's own: sockaddr_in6 only
 * (EAFNOSUPPORT otherwise), then the privilege a low port needs.
 */
function inet6BindCheck(a: SockAddr, privileged: boolean): number {
  return isInet6(a) ? inetBindPortCheck(a.port, privileged) : -EAFNOSUPPORT;
}

/** inet6_stream_ops: AF_INET6 SOCK_STREAM (tcpv6_prot's calls); what is not the family's, as inet_stream_ops. */
export function inet6StreamOps(stack: Net, tcp: TcpProto): ProtoOps<TcpSock> {
  return {
    ...inetStreamOps(tcp),
    family: AF_INET6,
    bind: (sk, a, privileged) => inet6BindCheck(a, privileged) || sk.prot!.bind(sk, a),
    getname: (sk, out, peer) => {
      if (peer && !inetStreamHasPeer(sk, peer)) return -ENOTCONN;
      inet6Getname(stack, out, peer ? sk.v6Daddr! : sk.v6RcvSaddr!, peer ? sk.dport : sk.num);
      return 0;
    },
  };
}

/** inet6_dgram_ops: AF_INET6 SOCK_DGRAM (udpv6_prot's calls); what is not the family's, as inet_dgram_ops. */
export function inet6DgramOps(stack: Net, udp: UdpProto): ProtoOps<UdpSock> {
  return {
    ...inetDgramOps(udp),
    family: AF_INET6,
    bind: (sk, a, privileged) => inet6BindCheck(a, privileged) || sk.prot!.bind(sk, a),
    getname: (sk, out, peer) => {
      if (peer && (!sk.dport || sk.state !== UDP_ESTABLISHED)) return -ENOTCONN;
      inet6Getname(stack, out, peer ? sk.v6Daddr : sk.v6RcvSaddr, peer ? sk.dport : sk.num);
      return 0;
    },
  };
}

/**
 * inet6_init: UDP and TCP over IPv6 (inet6_add_protocol), and
 * sock_register(&inet6_family_ops). TCP sockets of AF_INET6 exist with or
 * without the IPv6 layer (they reach IPv4 peers v4-mapped); UDP ones only
 * with it, as a Linux host without IPv6 answers EAFNOSUPPORT.
 */
export function inet6Init(stack: Net): void {
  const { tcp, udp, families } = stack;
  stack.inet6Protos[IPPROTO_UDP] = udpv6Protocol(stack);
  stack.inet6Protos[IPPROTO_TCP] = tcpV6Protocol(stack);
  const stream = inet6StreamOps(stack, tcp);
  const dgram = inet6DgramOps(stack, udp);
  families.register({
    family: AF_INET6,
    create(type, protocol, uid) {
      if (type === SOCK_DGRAM && !stack.ipv6.enabled) return -EAFNOSUPPORT;
      const rc = inetProtocolCheck(type, protocol);
      if (rc < 0) return rc;
      if (type === SOCK_STREAM) {
        const sk = tcpNewSock(tcp, AF_INET6, tcpv6Prot(tcp));
        sk.uid = uid;
        return new Socket(sk, stream);
      }
      return new Socket(udp.newSock(AF_INET6, uid, udpv6Prot(udp)), dgram);
    },
  });
}
