/**
 * Neighbor Discovery (RFC 4861; net/ipv6/ndisc.c), host side: the
 * neighbour cache on the shared NeighTable state machine (INCOMPLETE,
 * REACHABLE, STALE, DELAY, PROBE, FAILED with Linux's ndisc defaults:
 * reachable 30 s randomised, retrans 1 s, delay 5 s, 3 unicast and 3
 * multicast probes), neighbour solicitations and advertisements sent and
 * received with RFC 4861 7.1's checks (hop limit 255, code 0, no
 * fragments, well-formed options), DAD's side of both (a tentative
 * address that someone else claims or probes for), router solicitations,
 * and Router Advertisements (default router, hop limit, timers, prefixes,
 * MTU). Redirects are counted and ignored (one link, no routing cache).
 */
import { csumFold, csumIpv6Magic, csumPartial } from '../../lib/checksum.js';
import {
  formatIpv6,
  formatMac,
  IN6ADDR_ANY,
  ipv6IsMulticast,
  ipv6IsUnspecified,
  ipv6McastMac,
  ipv6SolicitedNodeMcast,
} from '../../lib/addr.js';
import {
  ICMPV6_ADDR_UNREACH,
  ICMPV6_DEST_UNREACH,
  NA_OVERRIDE,
  NA_ROUTER,
  NA_SOLICITED,
  ND_OPT_MTU,
  ND_OPT_NONCE,
  ND_OPT_PREFIX_INFO,
  ND_OPT_SOURCE_LL_ADDR,
  ND_OPT_TARGET_LL_ADDR,
  NDISC_NEIGHBOUR_ADVERTISEMENT,
  NDISC_NEIGHBOUR_SOLICITATION,
  NDISC_REDIRECT,
  NDISC_ROUTER_ADVERTISEMENT,
  NDISC_ROUTER_SOLICITATION,
} from '../../wire/icmpv6.js';
import { IPV6_HLEN, IPV6_MIN_MTU, ip6Header, ip6HopLimit } from '../../wire/ipv6.js';
import { ETH_HLEN, ETH_P_IPV6, ethHeader } from '../../wire/ethernet.js';
import {
  NEIGH_UPDATE_F_OVERRIDE,
  NEIGH_UPDATE_F_WEAK_OVERRIDE,
  NUD_REACHABLE,
  NUD_STALE,
  NUD_VALID,
  NeighTable,
  neighHash6,
  type Neighbour,
} from '../core/neighbour.js';
import { IP6SKB_FRAGMENTED, allocSkb, type SkBuff } from '../core/skbuff.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { IFA_F_TENTATIVE } from './addrconf.js';
import { IN6ADDR_LINKLOCAL_ALLNODES, IN6ADDR_LINKLOCAL_ALLROUTERS } from './mcast.js';
import { RTF_ADDRCONF, RTF_DEFAULT } from './route.js';
import type { Random } from '../../lib/random.js';
import type { Net } from '../core/net.js';
import { IPPROTO_ICMPV6 } from '../../uapi.js';


/** Where ndisc_parse_options put what it found (offsets into the message; -1 absent). */
class NdOpts {
  srcLl = -1;
  tgtLl = -1;
  mtu = -1;
  nonce = -1;
  prefixes: number[] = [];
  reset(): void {
    this.srcLl = this.tgtLl = this.mtu = this.nonce = -1;
    this.prefixes.length = 0;
  }
}

export class Ndisc {
  readonly tbl: NeighTable;
  #opts = new NdOpts();
  /** Last "advertised our address" warning, for the log's rate limit. */
  #lastWarn = -Infinity;

  constructor(
    private stack: Net,
    random: Random,
  ) {
    this.tbl = new NeighTable(
      'ndisc_cache',
      stack.dev,
      ETH_P_IPV6,
      stack.time,
      random,
      {
        solicit: (n) => this.#solicit(n),
        errorReport: (_n, skb) => this.#linkFailure(skb),
        notify: (n, old) => {
          if (stack.debug) stack.log.debug({ neigh: formatIpv6(n.key6!), from: old, to: n.nudState }, 'ndisc neighbour state');
        },
      },
      stack.mibs.Ndisc,
    );
  }

  /** __ipv6_neigh_lookup_noref + neigh_output, ip6_finish_output2's neighbour step: to `nexthop` (16 bytes at off) on the link. */
  output(nexthop: Uint8Array, off: number, skb: SkBuff): void {
    this.tbl.resolveOutput(neighHash6(nexthop, off), skb, nexthop, off);
  }

  lookup(a: Uint8Array, off = 0): Neighbour | undefined {
    return this.tbl.lookup(neighHash6(a, off), a, off);
  }

  /** ndisc_confirm: forward progress (a TCP ACK) confirms the neighbour. */
  confirm(a: Uint8Array, off = 0): void {
    this.tbl.confirm(neighHash6(a, off), a, off);
  }

  /** ip6_link_failure: the next hop never answered; tell the sender (ICMPv6 address unreachable). */
  #linkFailure(skb: SkBuff): void {
    const stack = this.stack;
    stack.mibs.Drop.counts[SKB_DROP_REASON.NEIGH_FAILED]++;
    stack.mibs.Ip6.OutDiscards++;
    stack.ipv6.icmp.send(skb.buf, skb.data, ICMPV6_DEST_UNREACH, ICMPV6_ADDR_UNREACH, 0);
  }

  /**
   * ndisc_solicit: unicast to the cached address while PROBE, multicast to
   * the solicited-node group while INCOMPLETE; from the queued packet's
   * source when it is ours, else our link-local address.
   */
  #solicit(n: Neighbour): void {
    const p = this.tbl.parms;
    const target = n.key6!;
    let saddr: Buffer | null = null;
    const q = n.arpQueue[0];
    if (q && q.len >= IPV6_HLEN) {
      const s = q.buf.subarray(q.data + 8, q.data + 24);
      if (this.stack.ipv6.addrconf.isLocal(s)) saddr = Buffer.from(s);
    }
    const probes = n.probes - p.ucastProbes;
    if (probes < 0) {
      if (!(n.nudState & NUD_VALID)) return;
      this.sendNs(target, target, saddr, null, n.ha);
    } else if (probes - p.appProbes < 0) {
      return; // no user-space resolver (app_probes 0)
    } else {
      this.sendNs(target, ipv6SolicitedNodeMcast(target), saddr, null);
    }
  }

  /**
   * One ND message: IPv6 header (hop limit 255), the ICMPv6 body written by
   * `fill` at the given offset, the checksum; then to the link, directly
   * (multicast or a known MAC) or through the neighbour table.
   */
  #send(type: number, saddr: Uint8Array, daddr: Uint8Array, bodyLen: number, fill: (b: Buffer, o: number) => void, dstMac: Uint8Array | null = null): void {
    const stack = this.stack;
    const skb = allocSkb(IPV6_HLEN + bodyLen);
    const at = skb.put(IPV6_HLEN + bodyLen);
    const b = skb.buf;
    ip6Header(b, at, bodyLen, IPPROTO_ICMPV6, 255, saddr, daddr);
    const m = at + IPV6_HLEN;
    b.fill(0, m, m + bodyLen);
    b[m] = type;
    fill(b, m);
    const c = csumFold(csumPartial(b, m, bodyLen, csumIpv6Magic(saddr, 0, daddr, 0, IPPROTO_ICMPV6, bodyLen)));
    b.writeUInt16BE(c, m + 2);
    const mib = stack.mibs;
    mib.Ip6.OutRequests++;
    mib.Ip6.OutOctets += IPV6_HLEN + bodyLen;
    mib.Icmp6.OutMsgs++;
    mib.Icmp6Msg.out[type]++;
    switch (type) {
      case NDISC_NEIGHBOUR_SOLICITATION: mib.Icmp6.OutNeighborSolicits++; break;
      case NDISC_NEIGHBOUR_ADVERTISEMENT: mib.Icmp6.OutNeighborAdvertisements++; break;
      case NDISC_ROUTER_SOLICITATION: mib.Icmp6.OutRouterSolicits++; break;
    }
    if (ipv6IsMulticast(daddr) || dstMac) {
      if (ipv6IsMulticast(daddr)) {
        mib.Ip6.OutMcastPkts++;
        mib.Ip6.OutMcastOctets += IPV6_HLEN + bodyLen;
      }
      mib.Ip6.OutTransmits++;
      const e = skb.push(ETH_HLEN);
      ethHeader(b, e, dstMac ?? ipv6McastMac(daddr), stack.dev.mac, ETH_P_IPV6);
      stack.dev.xmit(b, e, skb.len);
      return;
    }
    mib.Ip6.OutTransmits++;
    this.output(daddr, 0, skb);
  }

  /** ndisc_send_ns: `saddr` null = our link-local address (none usable: nothing sent); :: for DAD. */
  sendNs(target: Uint8Array, daddr: Uint8Array, saddr: Uint8Array | null, nonce: Buffer | null, dstMac: Uint8Array | null = null): void {
    const stack = this.stack;
    let src: Uint8Array;
    if (saddr) src = saddr;
    else if (nonce) src = IN6ADDR_ANY;
    else {
      const ll = Buffer.alloc(16);
      if (!stack.ipv6.addrconf.getLladdr(ll)) return;
      src = ll;
    }
    // A DAD probe (from ::) carries no source link-layer address (RFC 4861 7.2.2).
    const sllao = !ipv6IsUnspecified(src);
    const len = 24 + (sllao ? 8 : 0) + (nonce ? 8 : 0);
    this.#send(NDISC_NEIGHBOUR_SOLICITATION, src, daddr, len, (b, o) => {
      b.set(target.subarray(0, 16), o + 8);
      let p = o + 24;
      if (sllao) {
        b[p] = ND_OPT_SOURCE_LL_ADDR;
        b[p + 1] = 1;
        stack.dev.mac.copy(b, p + 2);
        p += 8;
      }
      if (nonce) {
        b[p] = ND_OPT_NONCE;
        b[p + 1] = 1;
        nonce.copy(b, p + 2);
      }
    }, dstMac);
  }

  /** ndisc_send_na: from the target (ours), with our MAC as the target link-layer address when asked. */
  sendNa(daddr: Uint8Array, target: Uint8Array, router: boolean, solicited: boolean, override: boolean, inclOpt: boolean): void {
    const stack = this.stack;
    const len = 24 + (inclOpt ? 8 : 0);
    const flags = (router ? NA_ROUTER : 0) | (solicited ? NA_SOLICITED : 0) | (override ? NA_OVERRIDE : 0);
    this.#send(NDISC_NEIGHBOUR_ADVERTISEMENT, target, daddr, len, (b, o) => {
      b[o + 4] = flags;
      b.set(target.subarray(0, 16), o + 8);
      if (inclOpt) {
        b[o + 24] = ND_OPT_TARGET_LL_ADDR;
        b[o + 25] = 1;
        stack.dev.mac.copy(b, o + 26);
      }
    });
  }

  /** ndisc_send_rs: to all-routers, with our MAC unless the source is ::. */
  sendRs(saddr: Uint8Array): void {
    const sllao = !ipv6IsUnspecified(saddr);
    this.#send(NDISC_ROUTER_SOLICITATION, saddr, IN6ADDR_LINKLOCAL_ALLROUTERS, 8 + (sllao ? 8 : 0), (b, o) => {
      if (sllao) {
        b[o + 8] = ND_OPT_SOURCE_LL_ADDR;
        b[o + 9] = 1;
        this.stack.dev.mac.copy(b, o + 10);
      }
    });
  }

  /**
   * ndisc_parse_options: every option at least 8 bytes and inside the
   * message; the first of each kind is kept. False: malformed.
   */
  #parseOptions(b: Buffer, o: number, end: number): boolean {
    const opts = this.#opts;
    opts.reset();
    while (o < end) {
      if (end - o < 2) return false;
      const l = b[o + 1] << 3;
      if (l === 0 || o + l > end) return false;
      switch (b[o]) {
        case ND_OPT_SOURCE_LL_ADDR:
          if (opts.srcLl < 0) opts.srcLl = o;
          break;
        case ND_OPT_TARGET_LL_ADDR:
          if (opts.tgtLl < 0) opts.tgtLl = o;
          break;
        case ND_OPT_MTU:
          if (opts.mtu < 0) opts.mtu = o;
          break;
        case ND_OPT_NONCE:
          if (opts.nonce < 0) opts.nonce = o;
          break;
        case ND_OPT_PREFIX_INFO:
          opts.prefixes.push(o);
          break;
        default:
          break; // unknown options are ignored (RFC 4861 4.6)
      }
      o += l;
    }
    return true;
  }

  /** ndisc_opt_addr_data: an Ethernet link-layer address option is exactly 8 bytes. */
  #lladdr(b: Buffer, at: number): Buffer | null {
    if (at < 0) return null;
    if (b[at + 1] !== 1) return null;
    return b.subarray(at + 2, at + 8);
  }

  /** ndisc_rcv: the checks every ND message passes, then by type. */
  rcv(skb: SkBuff): void {
    const b = skb.buf;
    const o = skb.data;
    const len = skb.len;
    const drop = this.stack.mibs.Drop.counts;
    if (skb.ip6Flags & IP6SKB_FRAGMENTED) {
      drop[SKB_DROP_REASON.IPV6_NDISC_FRAG]++;
      return;
    }
    if (ip6HopLimit(b, skb.networkHeader) !== 255) {
      drop[SKB_DROP_REASON.IPV6_NDISC_HOP_LIMIT]++;
      return;
    }
    if (b[o + 1] !== 0) {
      drop[SKB_DROP_REASON.IPV6_NDISC_BAD_CODE]++;
      return;
    }
    switch (b[o]) {
      case NDISC_NEIGHBOUR_SOLICITATION:
        this.#recvNs(b, o, len, skb);
        return;
      case NDISC_NEIGHBOUR_ADVERTISEMENT:
        this.#recvNa(b, o, len, skb);
        return;
      case NDISC_ROUTER_ADVERTISEMENT:
        this.#recvRa(b, o, len, skb);
        return;
      case NDISC_ROUTER_SOLICITATION:
      case NDISC_REDIRECT:
        // A host ignores solicitations; redirects: one link, nothing to redirect.
        return;
    }
  }

  #bad(reason: number): void {
    this.stack.mibs.Drop.counts[reason]++;
  }

  /** ndisc_recv_ns. */
  #recvNs(b: Buffer, o: number, len: number, skb: SkBuff): void {
    const sOff = skb.networkHeader + 8;
    const dOff = skb.networkHeader + 24;
    const stack = this.stack;
    const ib = skb.buf;
    if (len < 24) return this.#bad(SKB_DROP_REASON.PKT_TOO_SMALL);
    const target = b.subarray(o + 8, o + 24);
    if (ipv6IsMulticast(target)) return this.#bad(SKB_DROP_REASON.IPV6_NDISC_BAD_OPTIONS);
    const dad = ipv6IsUnspecified(ib, sOff);
    // A DAD probe goes to the target's solicited-node group (ff02::1:ffXX:XXXX).
    if (dad && !(ib[dOff] === 0xff && ib[dOff + 1] === 0x02 && ib[dOff + 11] === 0x01 && ib[dOff + 12] === 0xff)) {
      return this.#bad(SKB_DROP_REASON.IPV6_NDISC_BAD_OPTIONS);
    }
    if (!this.#parseOptions(b, o + 24, o + len)) return this.#bad(SKB_DROP_REASON.IPV6_NDISC_BAD_OPTIONS);
    const opts = this.#opts;
    let lladdr: Buffer | null = null;
    if (opts.srcLl >= 0) {
      lladdr = this.#lladdr(b, opts.srcLl);
      if (!lladdr) return this.#bad(SKB_DROP_REASON.IPV6_NDISC_BAD_OPTIONS);
      // RFC 4861 7.1.1: no source link-layer address from ::.
      if (dad) return this.#bad(SKB_DROP_REASON.IPV6_NDISC_BAD_OPTIONS);
    }
    const inc = ipv6IsMulticast(ib, dOff);
    const ifp = stack.ipv6.addrconf.getIfaddr(target);
    if (!ifp) return this.#bad(SKB_DROP_REASON.IPV6_NDISC_NS_OTHERHOST);
    if (ifp.flags & IFA_F_TENTATIVE) {
      if (!dad) return; // not a DAD probe: a tentative address does not answer
      const nonce = opts.nonce >= 0 && b[opts.nonce + 1] === 1 ? b.subarray(opts.nonce + 2, opts.nonce + 8) : null;
      // Our own probe looped back (RFC 7527): not a collision.
      if (nonce && nonce.equals(ifp.dadNonce)) return;
      // Someone else is doing DAD for it: we both lose it (RFC 4862 5.4.3).
      stack.ipv6.addrconf.dadFailure(ifp, skb.macHeader >= 0 ? ib.subarray(skb.macHeader + 6, skb.macHeader + 12) : null);
      return;
    }
    if (!ifp.usable) return;
    if (dad) {
      // Defend the address: to all nodes, not solicited (RFC 4862 5.4.3).
      this.sendNa(IN6ADDR_LINKLOCAL_ALLNODES, target, false, false, true, true);
      return;
    }
    const st = stack.mibs.Ndisc;
    if (inc) st.rcv_probes_mcast++;
    else st.rcv_probes_ucast++;
    const saddr = ib.subarray(sOff, sOff + 16);
    const h = neighHash6(saddr);
    let n = this.tbl.lookup(h, saddr);
    if (!n && (!inc || lladdr)) n = this.tbl.create(h, saddr) ?? undefined;
    if (n) this.tbl.update(n, lladdr, NUD_STALE, NEIGH_UPDATE_F_WEAK_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE);
    if (n) this.sendNa(saddr, target, false, true, inc, inc);
  }

  /** ndisc_recv_na. */
  #recvNa(b: Buffer, o: number, len: number, skb: SkBuff): void {
    const dOff = skb.networkHeader + 24;
    const stack = this.stack;
    const ib = skb.buf;
    if (len < 24) return this.#bad(SKB_DROP_REASON.PKT_TOO_SMALL);
    const flags = b[o + 4];
    const target = b.subarray(o + 8, o + 24);
    if (ipv6IsMulticast(target)) return this.#bad(SKB_DROP_REASON.IPV6_NDISC_BAD_OPTIONS);
    // A solicited advertisement is unicast (RFC 4861 7.1.2).
    if (ipv6IsMulticast(ib, dOff) && flags & NA_SOLICITED) return this.#bad(SKB_DROP_REASON.IPV6_NDISC_BAD_OPTIONS);
    if (!this.#parseOptions(b, o + 24, o + len)) return this.#bad(SKB_DROP_REASON.IPV6_NDISC_BAD_OPTIONS);
    let lladdr: Buffer | null = null;
    if (this.#opts.tgtLl >= 0) {
      lladdr = this.#lladdr(b, this.#opts.tgtLl);
      if (!lladdr) return this.#bad(SKB_DROP_REASON.IPV6_NDISC_BAD_OPTIONS);
    }
    const ifp = stack.ipv6.addrconf.getIfaddr(target);
    if (ifp) {
      if (ifp.flags & IFA_F_TENTATIVE) {
        stack.ipv6.addrconf.dadFailure(ifp, lladdr ?? (skb.macHeader >= 0 ? ib.subarray(skb.macHeader + 6, skb.macHeader + 12) : null));
        return;
      }
      const now = stack.time.clock.now();
      if (now - this.#lastWarn > 5_000) {
        this.#lastWarn = now;
        stack.log.warn({ addr: formatIpv6(target), by: lladdr ? formatMac(lladdr) : null }, `NA: someone advertises our address ${formatIpv6(target)}!`);
      }
      return;
    }
    const n = this.lookup(target);
    if (!n) return; // accept_untracked_na = 0
    const wasRouter = n.isRouter;
    const ok = this.tbl.update(
      n,
      lladdr,
      flags & NA_SOLICITED ? NUD_REACHABLE : NUD_STALE,
      NEIGH_UPDATE_F_WEAK_OVERRIDE | (flags & NA_OVERRIDE ? NEIGH_UPDATE_F_OVERRIDE : 0),
    );
    if (ok) n.isRouter = (flags & NA_ROUTER) !== 0;
    // rt6_clean_tohost: a router that became a host no longer routes for us.
    if (wasRouter && !n.isRouter) {
      const rt = stack.ipv6.fib.getDefaultRouter(target);
      if (rt) stack.ipv6.fib.del(rt);
    }
  }

  /** ndisc_router_discovery. */
  #recvRa(b: Buffer, o: number, len: number, skb: SkBuff): void {
    const sOff = skb.networkHeader + 8;
    const stack = this.stack;
    const v6 = stack.ipv6;
    const cnf = v6.cnf;
    const ib = skb.buf;
    if (!(ib[sOff] === 0xfe && (ib[sOff + 1] & 0xc0) === 0x80)) return this.#bad(SKB_DROP_REASON.IPV6_NDISC_BAD_OPTIONS);
    if (len < 16) return this.#bad(SKB_DROP_REASON.PKT_TOO_SMALL);
    if (!cnf.accept_ra) return;
    if (!this.#parseOptions(b, o + 16, o + len)) return this.#bad(SKB_DROP_REASON.IPV6_NDISC_BAD_OPTIONS);
    v6.addrconf.raReceived = true;
    const saddr = Buffer.from(ib.subarray(sOff, sOff + 16));
    const now = stack.time.clock.now();
    const lifetime = b.readUInt16BE(o + 6);
    if (cnf.accept_ra_defrtr) {
      let rt = v6.fib.getDefaultRouter(saddr);
      if (rt && lifetime === 0) {
        v6.fib.del(rt);
        rt = null;
      }
      if (!rt && lifetime) rt = v6.fib.add(IN6ADDR_ANY, 0, saddr, RTF_DEFAULT | RTF_ADDRCONF);
      if (rt) rt.expires = now + lifetime * 1000;
    }
    const curHop = b[o + 4];
    if (curHop && curHop >= cnf.accept_ra_min_hop_limit) cnf.hop_limit = curHop;
    const parms = this.tbl.parms;
    const retrans = b.readUInt32BE(o + 12);
    if (retrans) parms.retransTime = Math.max(retrans, 10);
    const reach = b.readUInt32BE(o + 8);
    if (reach && reach !== parms.baseReachableTime) {
      parms.baseReachableTime = Math.max(reach, 100);
      parms.reachableTime = parms.baseReachableTime / 2 + (stack.random.u32() / 0x100000000) * parms.baseReachableTime;
    }
    const opts = this.#opts;
    let lladdr: Buffer | null = null;
    if (opts.srcLl >= 0) {
      lladdr = this.#lladdr(b, opts.srcLl);
      if (!lladdr) return this.#bad(SKB_DROP_REASON.IPV6_NDISC_BAD_OPTIONS);
    }
    const h = neighHash6(saddr);
    const n = this.tbl.lookup(h, saddr) ?? this.tbl.create(h, saddr);
    if (n) {
      this.tbl.update(n, lladdr, NUD_STALE, NEIGH_UPDATE_F_WEAK_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE);
      n.isRouter = true;
    }
    if (cnf.accept_ra_pinfo) {
      for (const p of [...opts.prefixes]) if (b[p + 1] === 4) v6.addrconf.prefixRcv(b, p);
    }
    if (opts.mtu >= 0 && cnf.accept_ra_mtu && b[opts.mtu + 1] === 1) {
      const mtu = b.readUInt32BE(opts.mtu + 4);
      if (mtu < IPV6_MIN_MTU || mtu > stack.dev.mtu) {
        if (stack.debug) stack.log.debug({ mtu }, 'RA: invalid mtu');
      } else if (cnf.mtu6 !== mtu) {
        cnf.mtu6 = mtu;
        v6.fib.clampPmtu(mtu);
      }
    }
    v6.addrconf.routesChanged();
  }

  /** A neighbour's link-layer address by IPv6 address (tests, `ip -6 neigh`). */
  neighMac(a: Uint8Array): Buffer | null {
    const n = this.lookup(a);
    return n && n.nudState & NUD_VALID ? n.ha : null;
  }
}
