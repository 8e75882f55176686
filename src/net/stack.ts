/**
 * One network stack instance (the kernel's `struct net`): a device, its
 * IPv4 addresses and routes, ARP, the IPv4 input/output paths, ICMP, and
 * the transports registered by protocol number. It is given its time,
 * randomness and logger; it does no I/O of its own beyond the driver.
 *
 *   driver -> receive() -> NetDevice.receive -> ipRcv / Arp.rcv -> inetProtos[p]
 *                                             -> ipv6Rcv -> inet6Protos[p] (ndisc, MLD in ICMPv6)
 *   transport -> ipLocalOut -> ipFinishOutput2 -> Arp.output -> NetDevice.xmit -> driver
 *   transport -> ip6Xmit -> ip6FinishOutput2 -> Ndisc.output -> NetDevice.xmit -> driver
 */
import type { Random } from '../lib/random.js';
import type { TimeSource } from '../lib/time.js';
import { formatIpv4, formatMac, ipv4McastMac } from '../lib/addr.js';
import { ipDaddr, ipTotLen } from '../wire/ipv4.js';
import { ICMP_DEST_UNREACH, ICMP_EXC_FRAGTIME, ICMP_HOST_UNREACH, ICMP_TIME_EXCEEDED } from '../wire/icmp.js';
import { NetDevice, PACKET_HOST, type LinkDriver } from './core/dev.js';
import { NEIGH_UPDATE_F_ADMIN, NEIGH_UPDATE_F_OVERRIDE, NUD_PERMANENT, nudStateName } from './core/neighbour.js';
import { LOOPBACK_IFINDEX, SkbPool, skbHold, type SkBuff } from './core/skbuff.js';
import type { RcvPage } from './core/page.js';
import { Mibs, SKB_DROP_REASON } from './core/snmp.js';
import { Arp } from './ipv4/arp.js';
import { Icmp } from './ipv4/icmp.js';
import { IpFrags } from './ipv4/ip_fragment.js';
import { ipLocalDeliver } from './ipv4/ip_input.js';
import { Fib, IpIdents, RTN_BROADCAST, RTN_LOCAL } from './ipv4/route.js';
import { TcpProto } from './ipv4/tcp_proto.js';
import { udpInitMem, UdpProto } from './ipv4/udp.js';
import { inet6Init, Ipv6 } from './ipv6/af_inet6.js';
import { ipv6Rcv } from './ipv6/ip6_input.js';
import type { Ipv6Stub } from './ipv6/ipv6_stub.js';
import { NetFamilies } from './socket.js';
import { inetInit } from './ipv4/af_inet.js';
import type { Net6Protocol, NetProtocol } from './core/protocol.js';
import { type Net, nullLog, type StackLog } from './core/net.js';
import { tcpInitMem } from './ipv4/tcp.js';
import { SHARE_TCP_MEM, SHARE_TCP_ORPHANS, SHARE_TCP_TW, SHARE_UDP_MEM } from './core/percpu_counter.js';

export interface StackConfig {
  ifname: string;
  mac: Buffer;
  mtu: number;
  ipv4: { addr: number; prefix: number }[];
  /** Default gateway, or 0 for none. */
  gateway: number;
  /**
   * The stack's static IPv6 addresses. Present (even empty): IPv6 is on,
   * with the EUI-64 link-local address besides; absent: IPv6 is off.
   */
  ipv6?: { addr: Buffer; prefix: number }[];
  /** An IPv6 default router, or null. */
  ipv6Gateway?: Buffer | null;
  /** SLAAC addresses from Router Advertisement prefixes. */
  ipv6Slaac?: boolean;
  /**
   * The memory the stack's limits are scaled to, in bytes (Linux scales
   * them to the machine's): tcp_mem, udp_mem, tcp_max_orphans,
   * tcp_max_tw_buckets. Without it, a 1 GiB stack's.
   */
  memory?: number;
}

/** 224.0.0.1, joined by every IPv4 host (RFC 1112). */
export const INADDR_ALLHOSTS_GROUP = 0xe0000001;

/** One stack: struct net (core/net.ts documents its members) and what builds and drives it. */
export class Stack implements Net {
  readonly mibs = new Mibs();
  readonly dev: NetDevice;
  readonly fib = new Fib();
  readonly arp: Arp;
  readonly icmp: Icmp;
  readonly frags: IpFrags;
  readonly ipIdents: IpIdents;
  readonly tcp: TcpProto;
  readonly udp: UdpProto;
  readonly debug: boolean;
  readonly inetProtos: (NetProtocol | undefined)[] = new Array(256);
  readonly inet6Protos: (Net6Protocol | undefined)[] = new Array(256);
  ipv6Stub: Ipv6Stub | null = null;
  readonly families = new NetFamilies();
  readonly ipv6: Ipv6;
  /** The receive path's skbs. */
  readonly #rxPool = new SkbPool();
  /** Packets to our own addresses, delivered when the current packet is done (the loopback device's backlog). */
  #backlog: SkBuff[] = [];
  /** Receive calls in progress (a packet's processing may loop another back to us). */
  #depth = 0;

  constructor(
    cfg: StackConfig,
    driver: LinkDriver,
    readonly time: TimeSource,
    readonly random: Random,
    readonly log: StackLog = nullLog,
  ) {
    this.debug = log.isLevelEnabled?.('debug') ?? false;
    this.dev = new NetDevice(cfg.ifname, cfg.mac, cfg.mtu, driver, this.mibs.Drop);
    for (const a of cfg.ipv4) this.fib.addAddress(a.addr, a.prefix);
    if (cfg.gateway) this.fib.addRoute(0, 0, cfg.gateway);
    this.ipIdents = new IpIdents(() => random.u32());
    this.arp = new Arp(this, this.dev);
    this.icmp = new Icmp(this);
    this.frags = new IpFrags(time, this.mibs, (offending) => this.#fragExpired(offending));
    this.tcp = new TcpProto(this, random);
    this.udp = new UdpProto(this);
    if (cfg.memory !== undefined) {
      tcpInitMem(this.tcp.sysctl, cfg.memory);
      udpInitMem(this.udp.sysctl, cfg.memory);
    }
    // Last, so that an IPv4-only stack draws its random numbers as before.
    this.ipv6 = new Ipv6(this, cfg.ipv6 ? { addrs: cfg.ipv6, gateway: cfg.ipv6Gateway ?? null, slaac: cfg.ipv6Slaac } : undefined);
    this.ipv6.init();
    // inet_init and inet6_init: the transports by protocol number, socket(2)'s families.
    // UDP and TCP over IPv6 are registered either way (AF_INET6 sockets reach IPv4 peers v4-mapped).
    inetInit(this);
    inet6Init(this);
  }

  /**
   * Count with the daemon's other stacks (docs/shards.md, Memory): from
   * now on tcp_mem, udp_mem, tcp_max_orphans and tcp_max_tw_buckets limit
   * the sum over the `stacks` stacks counting into `buf`
   * (stackShareCreate), what this one holds already included. Each folds
   * its changes in batches of at most 1/16 of the limit over all the
   * stacks. The stack's counters stay its own.
   */
  shareAccounting(buf: SharedArrayBuffer, stacks: number): void {
    const t = this.tcp.sysctl;
    this.tcp.mem.share(buf, SHARE_TCP_MEM, stacks);
    this.udp.mem.share(buf, SHARE_UDP_MEM, stacks);
    this.tcp.orphans.share(buf, SHARE_TCP_ORPHANS, stacks, () => t.tcp_max_orphans);
    this.tcp.tw.share(buf, SHARE_TCP_TW, stacks, () => t.tcp_max_tw_buckets);
  }

  /** Bring the link up: join the all-hosts group and announce our addresses. */
  up(): void {
    this.dev.up = true;
    this.dev.mcAdd(ipv4McastMac(INADDR_ALLHOSTS_GROUP));
    this.fib.mcGroups.add(INADDR_ALLHOSTS_GROUP);
    this.arp.announce();
    this.ipv6.up();
  }

  /**
   * netif_carrier_off and what the protocols do on it: the link is gone
   * (the TAP deleted). Addresses and routes stay, so connections keep their
   * state and retransmit on their timers; sends fail with -ENETDOWN until
   * carrierOn. The neighbours go (neigh_carrier_down): a link that comes
   * back may have another address behind it.
   */
  carrierOff(): void {
    if (!this.dev.carrier) return;
    this.dev.carrierOff();
    this.arp.tbl.carrierDown();
    this.ipv6.ndisc.tbl.carrierDown();
  }

  /** netif_carrier_on: the link is back; neighbours are resolved afresh as packets need them. */
  carrierOn(): void {
    this.dev.carrierOn();
  }

  /**
   * netif_receive_skb for one frame from the driver: a pooled skb describes
   * the frame in place, with what the driver knows of it: the checksum
   * verdict (csumValid: CHECKSUM_UNNECESSARY), the segment size of a GRO
   * super-frame, and the ring slot it sits in when the driver lets the
   * stack keep the slot (see SkBuff.page).
   */
  receive(buf: Buffer, off: number, len: number, csumValid = false, gsoSize = 0, page: RcvPage | null = null): void {
    const skb = this.#rxPool.get(buf, off, len);
    skb.iif = this.dev.ifindex;
    skb.csumValid = csumValid;
    skb.gsoSize = gsoSize;
    skb.page = page;
    this.#depth++;
    try {
      this.dev.receive(skb);
    } finally {
      this.#rxPool.put(skb);
      if (--this.#depth === 0 && this.#backlog.length) this.#drainBacklog();
    }
  }

  /**
   * process_backlog now, for a caller with no call in progress (a
   * synchronous test between two steps): what the stack looped back to
   * itself is otherwise delivered on a microtask or at the end of the next
   * received frame.
   */
  processBacklog(): void {
    if (this.#depth === 0 && this.#backlog.length) this.#drainBacklog();
  }

  /** The loopback device's transmit: queue for local delivery. */
  loopbackXmit(skb: SkBuff): void {
    this.#backlog.push(skbHold(skb));
    if (this.#depth > 0) return;
    if (this.#held > 0) this.#deferDrain();
    else this.#drainBacklog();
  }

  /**
   * TCP hands a segment to IP under this hold (tcpAfXmit): one looped back
   * to ourselves is delivered once the current call has returned (a
   * microtask), never in the middle of it. Linux gets the same from the
   * socket lock, which parks segments for a socket its owner is using: TCP
   * must finish its bookkeeping for a segment (snd_nxt, the write queue)
   * before the answer to it arrives.
   */
  holdLoopback(): void {
    this.#held++;
  }

  releaseLoopback(): void {
    this.#held--;
  }

  #held = 0;
  #drainQueued = false;
  #deferDrain(): void {
    if (this.#drainQueued) return;
    this.#drainQueued = true;
    queueMicrotask(() => {
      this.#drainQueued = false;
      if (this.#depth === 0 && this.#backlog.length) this.#drainBacklog();
    });
  }

  /**
   * process_backlog for the loopback device: each held packet is received
   * as a frame without a link-layer header, its checksum taken as good (it
   * is complete, or CHECKSUM_PARTIAL and never left the host).
   */
  #drainBacklog(): void {
    this.#depth++;
    try {
      for (let i = 0; i < this.#backlog.length && i < 10_000; i++) {
        const held = this.#backlog[i];
        const b = held.buf;
        const o = held.data;
        const skb = this.#rxPool.get(b, o, held.len);
        skb.csumValid = true;
        skb.iif = LOOPBACK_IFINDEX;
        skb.gsoSize = held.gsoSize;
        skb.pktType = PACKET_HOST;
        try {
          if (held.ipv6) {
            ipv6Rcv(this, skb);
            continue;
          }
          this.mibs.Ip.InReceives++;
          this.mibs.IpExt.InOctets += held.len;
          skb.networkHeader = o;
          skb.len = ipTotLen(b, o);
          // A looped-back broadcast arrives as a broadcast (RTN_BROADCAST), the rest as local.
          skb.rtType = this.fib.addrType(ipDaddr(b, o)) === RTN_BROADCAST ? RTN_BROADCAST : RTN_LOCAL;
          ipLocalDeliver(this, skb);
        } finally {
          this.#rxPool.put(skb);
        }
      }
    } finally {
      this.#backlog.length = 0;
      this.#depth--;
    }
  }

  /** ipv4_link_failure: the next hop did not resolve; tell the sender. */
  ipv4LinkFailure(skb: SkBuff): void {
    this.mibs.Drop.counts[SKB_DROP_REASON.NEIGH_FAILED]++;
    this.mibs.Ip.OutDiscards++;
    this.icmp.send(skb.buf, skb.data, ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0, true);
  }

  #fragExpired(offending: Buffer): void {
    this.icmp.send(offending, 0, ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME, 0, true);
  }

  /** Every counter, grouped like /proc/net/snmp and netstat, plus the neighbour table. */
  counters(): Record<string, unknown> {
    const m = this.mibs;
    return {
      Link: { [this.dev.name]: { ...this.dev.stats, mc_filtered: this.dev.mcFiltered } },
      Ip: { ...m.Ip },
      IpExt: { ...m.IpExt },
      Icmp: { ...m.Icmp },
      IcmpMsg: m.IcmpMsg.toJSON(),
      Tcp: { ...m.Tcp },
      TcpExt: { ...m.TcpExt },
      Udp: { ...m.Udp },
      Udp6: { ...m.Udp6 },
      Arp: { ...m.Arp },
      Ip6: { ...m.Ip6 },
      Icmp6: { ...m.Icmp6, ...m.Icmp6Msg.toJSON() },
      Ndisc: { ...m.Ndisc },
      Drop: m.Drop.toJSON(),
      Frag: { queues: this.frags.queues, memory: this.frags.mem },
      Frag6: { queues: this.ipv6.frags.queues, memory: this.ipv6.frags.mem },
      // /proc/net/sockstat: sockets in use, orphans, TIME_WAIT socks, and pages held (tcp_mem, udp_mem units).
      Sockstat: {
        TcpInuse: this.tcp.socks.size,
        TcpOrphan: this.tcp.orphans.count,
        TcpTw: this.tcp.tw.count,
        TcpMem: this.tcp.mem.allocated,
        TcpMemPressure: this.tcp.mem.pressure ? 1 : 0,
        UdpInuse: this.udp.table.count,
        UdpMem: this.udp.mem.allocated,
      },
    };
  }

  /** `ip neigh replace ADDR lladdr MAC nud permanent`: a static entry. */
  neighAddPermanent(addr: number, mac: Uint8Array): boolean {
    const tbl = this.arp.tbl;
    const n = tbl.lookup(addr) ?? tbl.create(addr);
    if (!n) return false;
    return tbl.update(n, mac, NUD_PERMANENT, NEIGH_UPDATE_F_OVERRIDE | NEIGH_UPDATE_F_ADMIN);
  }

  /** `ip neigh` as data. */
  neighbours(): { addr: string; lladdr: string; state: string }[] {
    const out = [];
    for (const n of this.arp.tbl.entries()) out.push({ addr: formatIpv4(n.key), lladdr: formatMac(n.ha), state: nudStateName(n.nudState) });
    for (const n of this.ipv6.neighbours()) out.push({ addr: n.addr, lladdr: n.lladdr, state: n.state });
    return out;
  }

  shutdown(): void {
    this.dev.up = false;
    this.arp.tbl.shutdown();
    this.frags.shutdown();
    this.ipv6.shutdown();
  }
}
