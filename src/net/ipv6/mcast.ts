/**
 * IPv6 multicast group membership and MLDv2 (RFC 3810; net/ipv6/mcast.c),
 * host side: the groups we joined (all-nodes, and a solicited-node group
 * per address), each also added to the device's multicast filter; a
 * state-change report (CHANGE_TO_EXCLUDE {} on join, CHANGE_TO_INCLUDE {}
 * on leave) sent at once and repeated mc_qrv-1 more times at random
 * intervals below the unsolicited report interval, as Linux's mld_ifc_work
 * does; answers to general and group-specific queries after a random delay
 * below the query's maximum response delay. The link-scope all-nodes
 * group is never reported (RFC 3810 6). An MLDv1 query puts the link in
 * MLDv1 compatibility mode for the Older Version Querier Present Timeout
 * (RFC 3810 8.2.1: robustness x query interval + query response interval,
 * 260 s): reports are then MLDv1 (to the group), a leave is a Done (to
 * ff02::2), as Linux's mld_in_v1_mode does.
 *
 * Reports go to ff02::16 with hop limit 1 and a hop-by-hop Router Alert
 * option, from our link-local address, or from :: while it is tentative
 * (RFC 3810 5.2.13, as Linux does).
 */
import { csumFold, csumIpv6Magic, csumPartial } from '../../lib/checksum.js';
import { ipv6Equal, ipv6IsUnspecified, ipv6McastMac, parseIpv6 } from '../../lib/addr.js';
import { Timer } from '../../lib/time.js';
import {
  ICMPV6_MGM_REDUCTION,
  ICMPV6_MGM_REPORT,
  ICMPV6_MLD2_REPORT,
  MLD2_CHANGE_TO_EXCLUDE,
  MLD2_CHANGE_TO_INCLUDE,
  MLD2_MODE_IS_EXCLUDE,
} from '../../wire/icmpv6.js';
import { IPV6_HLEN, NEXTHDR_HOP, ip6Header } from '../../wire/ipv6.js';
import { ETH_HLEN, ETH_P_IPV6, ethHeader } from '../../wire/ethernet.js';
import { allocSkb } from '../core/skbuff.js';
import type { Net } from '../core/net.js';
import { IPPROTO_ICMPV6 } from '../../uapi.js';

export const IN6ADDR_LINKLOCAL_ALLNODES = parseIpv6('ff02::1')!;
export const IN6ADDR_LINKLOCAL_ALLROUTERS = parseIpv6('ff02::2')!;
export const IN6ADDR_LINKLOCAL_ALLMLDV2ROUTERS = parseIpv6('ff02::16')!;

/** struct ifmcaddr6. */
class Ifmcaddr6 {
  users = 1;
  /** State-change reports still to send for this group (mca_crcount). */
  crcount = 0;
  /** The pending state change: CHANGE_TO_EXCLUDE (joined) or CHANGE_TO_INCLUDE (left). */
  change = MLD2_CHANGE_TO_EXCLUDE;
  /** A group-specific query asked about this group. */
  queried = false;
  left = false;
  constructor(
    readonly addr: Buffer,
    readonly noReport: boolean,
  ) {}
}

/** Hop-by-hop header with a Router Alert (MLD) and PadN: 8 bytes. */
const HBH_RA_MLD = Buffer.from([IPPROTO_ICMPV6, 0, 5, 2, 0, 0, 1, 0]);

export class Mld {
  #groups: Ifmcaddr6[] = [];
  /** mc_ifc_work: state-change reports. */
  #ifcTimer = new Timer(() => this.#ifcWork());
  #ifcCount = 0;
  /** mc_gq_work / per-group query responses. */
  #queryTimer = new Timer(() => this.#queryWork());
  #generalQuery = false;
  /** MLDv1 compatibility mode until then (ms). */
  #v1Until = -Infinity;
  /** mc_qi and mc_qri, RFC 3810's defaults (ms). */
  queryInterval = 125_000;
  queryResponseInterval = 10_000;
  /** mldv1_unsolicited_report_interval (ms). */
  mldv1UnsolicitedReportInterval = 10_000;

  constructor(private stack: Net) {}

  /** ipv6_chk_mcast_addr: we joined `a`. */
  isJoined(a: Uint8Array, off = 0): boolean {
    const g = this.#groups;
    for (let i = 0; i < g.length; i++) if (!g[i].left && ipv6Equal(g[i].addr, 0, a, off)) return true;
    return false;
  }

  groups(): Buffer[] {
    return this.#groups.filter((g) => !g.left).map((g) => g.addr);
  }

  #find(a: Uint8Array): Ifmcaddr6 | undefined {
    return this.#groups.find((g) => ipv6Equal(g.addr, 0, a, 0));
  }

  /** ipv6_dev_mc_inc: join (counted); the device filter takes the group's MAC. */
  join(group: Uint8Array): void {
    const g = this.#find(group);
    if (g && !g.left) {
      g.users++;
      return;
    }
    const addr = Buffer.from(group.subarray(0, 16));
    this.stack.dev.mcAdd(ipv6McastMac(addr));
    // RFC 3810 6: the link-scope all-nodes group is never reported.
    const noReport = ipv6Equal(addr, 0, IN6ADDR_LINKLOCAL_ALLNODES, 0) || (addr[1] & 0x0f) <= 1;
    let m = g;
    if (m) {
      m.left = false;
      m.users = 1;
    } else {
      m = new Ifmcaddr6(addr, noReport);
      this.#groups.push(m);
    }
    if (!noReport) {
      m.change = MLD2_CHANGE_TO_EXCLUDE;
      m.crcount = this.stack.ipv6.cnf.mc_qrv;
      this.#ifcEvent();
    }
  }

  /** ipv6_dev_mc_dec: the last user leaves: CHANGE_TO_INCLUDE {} reports, then the group is gone. */
  leave(group: Uint8Array): void {
    const g = this.#find(group);
    if (!g || g.left) return;
    if (--g.users > 0) return;
    this.stack.dev.mcDel(ipv6McastMac(g.addr));
    if (g.noReport) {
      this.#groups.splice(this.#groups.indexOf(g), 1);
      return;
    }
    g.left = true;
    g.change = MLD2_CHANGE_TO_INCLUDE;
    g.crcount = this.stack.ipv6.cnf.mc_qrv;
    this.#ifcEvent();
  }

  /** mld_ifc_event: send the pending state changes now (coalesced with others of this turn), then repeat. */
  #ifcEvent(): void {
    this.#ifcCount = this.stack.ipv6.cnf.mc_qrv;
    const t = this.stack.time;
    t.timers.mod(this.#ifcTimer, t.clock.now());
  }

  /** The link is in MLDv1 compatibility mode (an MLDv1 querier was heard lately). */
  get v1Mode(): boolean {
    return this.stack.time.clock.now() < this.#v1Until;
  }

  #ifcWork(): void {
    const stack = this.stack;
    if (!stack.dev.up) return;
    const v1 = this.v1Mode;
    const recs: [Buffer, number][] = [];
    for (const g of this.#groups) {
      if (g.crcount > 0) {
        if (!v1) recs.push([g.addr, g.change]);
        else if (g.change === MLD2_CHANGE_TO_EXCLUDE) this.#sendV1(ICMPV6_MGM_REPORT, g.addr);
        else this.#sendV1(ICMPV6_MGM_REDUCTION, g.addr);
        // One Done is enough (igmp6_leave_group sends it once).
        g.crcount = v1 && g.left ? 0 : g.crcount - 1;
      }
    }
    this.#groups = this.#groups.filter((g) => !(g.left && g.crcount === 0));
    if (recs.length) this.#sendReport(recs);
    if (this.#ifcCount > 0) this.#ifcCount--;
    if (this.#ifcCount > 0 && this.#groups.some((g) => g.crcount > 0)) {
      const ivl = v1 ? this.mldv1UnsolicitedReportInterval : stack.ipv6.cnf.mldv2_unsolicited_report_interval;
      const delay = Math.floor((stack.random.u32() / 0x100000000) * ivl);
      stack.time.timers.mod(this.#ifcTimer, stack.time.clock.now() + delay);
    }
  }

  /**
   * igmp6_event_query: an MLD query (RFC 3810 5.1). `b` at `o` is the
   * ICMPv6 message, `len` bytes; `saddr` at sOff its source.
   */
  rcvQuery(b: Buffer, o: number, len: number, saddr: Uint8Array, sOff: number, hopLimit: number): void {
    const stack = this.stack;
    // Queries come from a link-local source, hop limit 1 (RFC 3810 5.1.14).
    if (!(saddr[sOff] === 0xfe && (saddr[sOff + 1] & 0xc0) === 0x80) || hopLimit !== 1) return;
    let maxDelay: number;
    const group = b.subarray(o + 8, o + 24);
    if (len === 24) {
      // MLDv1 query: Maximum Response Delay in ms; MLDv1 compatibility mode (mld_set_v1_mode).
      maxDelay = b.readUInt16BE(o + 4);
      this.#v1Until = stack.time.clock.now() + stack.ipv6.cnf.mc_qrv * this.queryInterval + this.queryResponseInterval;
    } else if (len >= 28) {
      const code = b.readUInt16BE(o + 4);
      maxDelay = code < 32768 ? code : ((code & 0x0fff) | 0x1000) << (((code >> 12) & 7) + 3);
      const nsrcs = b.readUInt16BE(o + 26);
      if (len < 28 + 16 * nsrcs) return;
    } else {
      return;
    }
    if (maxDelay < 1) maxDelay = 1;
    const now = stack.time.clock.now();
    if (ipv6IsUnspecified(group)) {
      this.#generalQuery = true;
    } else {
      const g = this.#find(group);
      if (!g || g.left || g.noReport) return;
      g.queried = true;
    }
    const at = now + Math.floor((stack.random.u32() / 0x100000000) * maxDelay);
    const t = this.#queryTimer;
    if (!t.pending || t.expires > at) stack.time.timers.mod(t, at);
  }

  /** mld_gq_work / igmp6_timer_handler: current-state records (MODE_IS_EXCLUDE {}), or MLDv1 reports. */
  #queryWork(): void {
    const v1 = this.v1Mode;
    const recs: [Buffer, number][] = [];
    for (const g of this.#groups) {
      if (g.left || g.noReport) continue;
      if (this.#generalQuery || g.queried) {
        if (v1) this.#sendV1(ICMPV6_MGM_REPORT, g.addr);
        else recs.push([g.addr, MLD2_MODE_IS_EXCLUDE]);
      }
      g.queried = false;
    }
    this.#generalQuery = false;
    if (recs.length) this.#sendReport(recs);
  }

  /** mld_sendpack: one MLDv2 report with the given records (no sources). */
  #sendReport(recs: [Buffer, number][]): void {
    this.#send(ICMPV6_MLD2_REPORT, IN6ADDR_LINKLOCAL_ALLMLDV2ROUTERS, 8 + recs.length * 20, (b, m) => {
      b.writeUInt16BE(recs.length, m + 6);
      let r = m + 8;
      for (const [addr, type] of recs) {
        b[r] = type;
        addr.copy(b, r + 4);
        r += 20;
      }
    });
  }

  /** igmp6_send: an MLDv1 report (to the group) or Done (to all routers) for `group`. */
  #sendV1(type: number, group: Buffer): void {
    this.#send(type, type === ICMPV6_MGM_REPORT ? group : IN6ADDR_LINKLOCAL_ALLROUTERS, 24, (b, m) => group.copy(b, m + 8));
  }

  /** An MLD message from our link-local address (or ::), hop limit 1, with a Router Alert. */
  #send(type: number, daddr: Buffer, icmpLen: number, fill: (b: Buffer, m: number) => void): void {
    const stack = this.stack;
    const plen = HBH_RA_MLD.length + icmpLen;
    const skb = allocSkb(IPV6_HLEN + plen);
    const at = skb.put(IPV6_HLEN + plen);
    const b = skb.buf;
    const saddr = Buffer.alloc(16);
    if (!stack.ipv6.addrconf.getLladdr(saddr)) saddr.fill(0);
    ip6Header(b, at, plen, NEXTHDR_HOP, 1, saddr, daddr);
    HBH_RA_MLD.copy(b, at + IPV6_HLEN);
    const m = at + IPV6_HLEN + HBH_RA_MLD.length;
    b.fill(0, m, m + icmpLen);
    b[m] = type;
    fill(b, m);
    const c = csumFold(csumPartial(b, m, icmpLen, csumIpv6Magic(saddr, 0, daddr, 0, IPPROTO_ICMPV6, icmpLen)));
    b.writeUInt16BE(c, m + 2);
    const v6 = stack.mibs;
    v6.Ip6.OutRequests++;
    v6.Ip6.OutMcastPkts++;
    v6.Ip6.OutOctets += IPV6_HLEN + plen;
    v6.Ip6.OutMcastOctets += IPV6_HLEN + plen;
    v6.Ip6.OutTransmits++;
    v6.Icmp6.OutMsgs++;
    if (type === ICMPV6_MLD2_REPORT) v6.Icmp6.OutMLDv2Reports++;
    else if (type === ICMPV6_MGM_REPORT) v6.Icmp6.OutGroupMembResponses++;
    else v6.Icmp6.OutGroupMembReductions++;
    v6.Icmp6Msg.out[type]++;
    const e = skb.push(ETH_HLEN);
    ethHeader(b, e, ipv6McastMac(daddr), stack.dev.mac, ETH_P_IPV6);
    stack.dev.xmit(b, e, skb.len);
  }

  shutdown(): void {
    this.stack.time.timers.del(this.#ifcTimer);
    this.stack.time.timers.del(this.#queryTimer);
  }
}
