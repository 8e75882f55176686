/**
 * ICMPv6 (RFC 4443; net/ipv6/icmp.c): the checksum and the dispatch of
 * received messages (echo replies, errors handed to the transport that
 * sent the quoted packet, Neighbor Discovery and MLD to their modules),
 * and icmp6_send() with RFC 4443 2.4's rules and Linux's two rate limits:
 * the global token bucket (icmp_msgs_per_sec / icmp_msgs_burst) and the
 * per-destination one (net.ipv6.icmp.ratelimit: a token every 100 ms, a
 * burst of 6). Linux 6.18 (commit 0201eedb69b2) made the default 100 ms
 * and dropped the old scaling by the route's prefix, which had let wide
 * prefixes send more; 1000 ms is the default of older kernels. For
 * the types in net.ipv6.icmp.ratemask (0-1,3-127: every error but Packet
 * Too Big; informational messages such as echo replies are never limited).
 * The global bucket is IPv4's (stack.icmp), shared as in Linux, and its
 * refusals count in Icmp.OutRateLimitGlobal as Linux counts them.
 */
import { csumFold, csumIpv6Magic, csumPartial } from '../../lib/checksum.js';
import { ipv6Equal, ipv6IsMulticast, ipv6IsUnspecified } from '../../lib/addr.js';
import {
  ICMPV6_DEST_UNREACH,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_HLEN,
  ICMPV6_MGM_QUERY,
  ICMPV6_MGM_REDUCTION,
  ICMPV6_MGM_REPORT,
  ICMPV6_MLD2_REPORT,
  ICMPV6_PARAMPROB,
  ICMPV6_PKT_TOOBIG,
  ICMPV6_PORT_UNREACH,
  ICMPV6_TIME_EXCEED,
  ICMPV6_UNK_OPTION,
  NDISC_NEIGHBOUR_ADVERTISEMENT,
  NDISC_NEIGHBOUR_SOLICITATION,
  NDISC_REDIRECT,
  NDISC_ROUTER_ADVERTISEMENT,
  NDISC_ROUTER_SOLICITATION,
} from '../../wire/icmpv6.js';
import { IPV6_HLEN, IPV6_MIN_MTU, ip6HopLimit, ip6Nexthdr, ip6PayloadLen, ip6Tclass, ipv6SkipExthdr } from '../../wire/ipv6.js';
import { PACKET_HOST } from '../core/dev.js';
import { allocSkb } from '../core/skbuff.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { ipv6ChooseSaddr, ipv6PathMtu } from './addrconf.js';
import { ip6Xmit } from './ip6_output.js';
import { RTN_LOCAL } from '../ipv4/route.js';
import type { SkBuff } from '../core/skbuff.js';
import type { Net } from '../core/net.js';
import { EACCES, ECONNREFUSED, EHOSTUNREACH, EMSGSIZE, ENETUNREACH, EPROTO, IPPROTO_ICMPV6 } from '../../uapi.js';
import { MAX_PEERS, XRLIM_BURST_FACTOR } from '../ipv4/icmp.js';
import type { Net6Protocol } from '../core/protocol.js';

/** net.ipv6.icmp.* with Linux's defaults. */
export class Icmpv6Sysctl {
  /** ratelimit: ms per token for one destination (Linux 6.18's default; 1000 before). */
  ratelimit = 100;
  /** ratemask as four 32-bit words, types 0..127: "0-1,3-127" (all errors but Packet Too Big). */
  readonly ratemask = new Uint32Array([0xfffffffb, 0xffffffff, 0xffffffff, 0xffffffff]);
  echo_ignore_all = 0;
  echo_ignore_multicast = 0;
}

interface PeerRate {
  tokens: number;
  last: number;
}

/** icmpv6_protocol: ICMPv6 at inet6Protos[IPPROTO_ICMPV6]. */
export function icmpv6Protocol(stack: Net): Net6Protocol {
  return { handler: (skb) => stack.ipv6.icmp.rcv(skb) };
}

export class Icmpv6 {
  readonly sysctl = new Icmpv6Sysctl();
  /** inet_peer rate state per destination, keyed by a hash with the address checked. */
  #peers = new Map<number, { addr: Buffer; rate: PeerRate }>();
  #walk = new Int32Array(2);

  constructor(private stack: Net) {}

  /** icmpv6_rcv: skb.data at the ICMPv6 message, skb.len bytes. */
  rcv(skb: SkBuff): void {
    const b = skb.buf;
    const o = skb.data;
    const len = skb.len;
    const nh = skb.networkHeader;
    const stack = this.stack;
    const mib = stack.mibs.Icmp6;
    const drop = stack.mibs.Drop.counts;
    mib.InMsgs++;
    if (len < ICMPV6_HLEN) {
      mib.InErrors++;
      drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
      return;
    }
    if (csumFold(csumPartial(b, o, len, csumIpv6Magic(b, nh + 8, b, nh + 24, IPPROTO_ICMPV6, len))) !== 0) {
      mib.InCsumErrors++;
      mib.InErrors++;
      drop[SKB_DROP_REASON.ICMP_CSUM]++;
      return;
    }
    const type = b[o];
    stack.mibs.Icmp6Msg.in[type]++;
    switch (type) {
      case ICMPV6_ECHO_REQUEST:
        mib.InEchos++;
        if (!this.sysctl.echo_ignore_all) this.#echoReply(skb);
        return;
      case ICMPV6_ECHO_REPLY:
        mib.InEchoReplies++;
        return;
      case ICMPV6_PKT_TOOBIG:
        mib.InPktTooBigs++;
        this.#notify(b, o, len, true, skb.networkHeader);
        return;
      case ICMPV6_DEST_UNREACH:
        mib.InDestUnreachs++;
        this.#notify(b, o, len, false, skb.networkHeader);
        return;
      case ICMPV6_TIME_EXCEED:
        mib.InTimeExcds++;
        this.#notify(b, o, len, false, skb.networkHeader);
        return;
      case ICMPV6_PARAMPROB:
        mib.InParmProblems++;
        this.#notify(b, o, len, false, skb.networkHeader);
        return;
      case NDISC_ROUTER_SOLICITATION:
        mib.InRouterSolicits++;
        stack.ipv6.ndisc.rcv(skb);
        return;
      case NDISC_ROUTER_ADVERTISEMENT:
        mib.InRouterAdvertisements++;
        stack.ipv6.ndisc.rcv(skb);
        return;
      case NDISC_NEIGHBOUR_SOLICITATION:
        mib.InNeighborSolicits++;
        stack.ipv6.ndisc.rcv(skb);
        return;
      case NDISC_NEIGHBOUR_ADVERTISEMENT:
        mib.InNeighborAdvertisements++;
        stack.ipv6.ndisc.rcv(skb);
        return;
      case NDISC_REDIRECT:
        mib.InRedirects++;
        stack.ipv6.ndisc.rcv(skb);
        return;
      case ICMPV6_MGM_QUERY:
        mib.InGroupMembQueries++;
        stack.ipv6.mld.rcvQuery(b, o, len, b, nh + 8, ip6HopLimit(b, nh));
        return;
      case ICMPV6_MGM_REPORT:
        mib.InGroupMembResponses++;
        return;
      case ICMPV6_MGM_REDUCTION:
        mib.InGroupMembReductions++;
        return;
      case ICMPV6_MLD2_REPORT:
        mib.InMLDv2Reports++;
        return;
      default:
        // Unknown informational messages are dropped; unknown errors go to the transport (RFC 4443 2.4).
        if (type & 0x80) return;
        this.#notify(b, o, len, false, skb.networkHeader);
    }
  }

  /**
   * icmpv6_notify: find the quoted packet's transport past its extension
   * headers and hand it the error; a Packet Too Big first lowers the path
   * MTU to the quoted destination.
   */
  #notify(b: Buffer, o: number, len: number, tooBig: boolean, outer: number): void {
    const stack = this.stack;
    const inner = o + ICMPV6_HLEN;
    const innerLen = len - ICMPV6_HLEN;
    const drop = stack.mibs.Drop.counts;
    if (innerLen < IPV6_HLEN) {
      stack.mibs.Icmp6.InErrors++;
      drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
      return;
    }
    const w = this.#walk;
    const walked = ipv6SkipExthdr(b, inner + IPV6_HLEN, inner + innerLen, ip6Nexthdr(b, inner), w);
    if (!walked || w[0] + 8 > inner + innerLen) {
      // icmpv6_notify's reasons: a quoted chain that cannot be walked, or no room for 8 transport bytes.
      stack.mibs.Icmp6.InErrors++;
      drop[walked ? SKB_DROP_REASON.PKT_TOO_SMALL : SKB_DROP_REASON.IPV6_BAD_EXTHDR]++;
      return;
    }
    const info = b.readUInt32BE(o + 4);
    if (tooBig) {
      const now = stack.time.clock.now();
      const cur = ipv6PathMtu(stack, b, inner + 24);
      if (stack.ipv6.fib.updatePmtu(b, inner + 24, info, cur, now)) stack.ipv6.addrconf.routesChanged();
    }
    const prot = stack.inet6Protos[w[1]];
    if (prot?.errHandler) prot.errHandler(b[o], b[o + 1], info, b, inner, innerLen, outer);
  }

  /** icmpv6_echo_reply: the same identifier, sequence and data, from the address pinged (or ours for multicast). */
  #echoReply(in_: SkBuff): void {
    const b = in_.buf;
    const o = in_.data;
    const len = in_.len;
    const nh = in_.networkHeader;
    const stack = this.stack;
    const mcast = ipv6IsMulticast(b, nh + 24);
    if (mcast && this.sysctl.echo_ignore_multicast) {
      stack.mibs.Drop.counts[SKB_DROP_REASON.ICMP_IGNORED]++;
      return;
    }
    const daddr = Buffer.from(b.subarray(nh + 8, nh + 24));
    const saddr = Buffer.alloc(16);
    if (in_.rtType === RTN_LOCAL) b.copy(saddr, 0, nh + 24, nh + 40);
    else if (!ipv6ChooseSaddr(stack, daddr, saddr)) return;
    const skb = allocSkb(len);
    const at = skb.put(len);
    const r = skb.buf;
    b.copy(r, at, o, o + len);
    r[at] = ICMPV6_ECHO_REPLY;
    r[at + 1] = 0;
    r[at + 2] = 0;
    r[at + 3] = 0;
    const c = csumFold(csumPartial(r, at, len, csumIpv6Magic(saddr, 0, daddr, 0, IPPROTO_ICMPV6, len)));
    r[at + 2] = c >>> 8;
    r[at + 3] = c & 255;
    this.#count(ICMPV6_ECHO_REPLY);
    if (ip6Xmit(stack, skb, saddr, daddr, IPPROTO_ICMPV6, -1, ip6Tclass(b, nh)) < 0) stack.mibs.Icmp6.OutErrors++;
  }

  #count(type: number): void {
    const mib = this.stack.mibs.Icmp6;
    mib.OutMsgs++;
    this.stack.mibs.Icmp6Msg.out[type]++;
    switch (type) {
      case ICMPV6_ECHO_REPLY: mib.OutEchoReplies++; break;
      case ICMPV6_DEST_UNREACH: mib.OutDestUnreachs++; break;
      case ICMPV6_PKT_TOOBIG: mib.OutPktTooBigs++; break;
      case ICMPV6_TIME_EXCEED: mib.OutTimeExcds++; break;
      case ICMPV6_PARAMPROB: mib.OutParmProblems++; break;
      case ICMPV6_ECHO_REQUEST: mib.OutEchos++; break;
    }
  }

  /** inet_peer_xrlim_allow for daddr with icmpv6_xrlim_allow's timeout. */
  #peerAllow(daddr: Uint8Array, off: number, tmo: number): boolean {
    if (tmo === 0) return true;
    const now = this.stack.time.clock.now();
    let h = 0;
    for (let i = 0; i < 16; i++) h = (Math.imul(h, 31) + daddr[off + i]) | 0;
    let e = this.#peers.get(h);
    if (e && !ipv6Equal(e.addr, 0, daddr, off)) e = undefined;
    if (!e) {
      if (this.#peers.size >= MAX_PEERS) this.#peers.delete(this.#peers.keys().next().value!);
      // A new peer starts as if idle for a minute: a full burst (inet_getpeer).
      e = { addr: Buffer.from(daddr.subarray(off, off + 16)), rate: { tokens: 0, last: now - 60_000 } };
      this.#peers.set(h, e);
    }
    const p = e.rate;
    let token = p.tokens + (now - p.last);
    p.last = now;
    if (token > XRLIM_BURST_FACTOR * tmo) token = XRLIM_BURST_FACTOR * tmo;
    let ok = false;
    if (token >= tmo) {
      token -= tmo;
      ok = true;
    }
    p.tokens = token;
    return ok;
  }

  #ratelimited(type: number): boolean {
    return type < 128 && (this.sysctl.ratemask[type >>> 5] & (1 << (type & 31))) !== 0;
  }

  /**
   * icmp6_send: an error about the packet whose IPv6 header is at `nhOff`
   * in `buf`. `pktType`: how it arrived (an error about a packet sent to
   * a link multicast/broadcast address is suppressed, RFC 4443 2.4 e).
   */
  send(buf: Buffer, nhOff: number, type: number, code: number, info: number, pktType = PACKET_HOST): void {
    const stack = this.stack;
    const mib = stack.mibs.Icmp6;
    if (!stack.ipv6.enabled || nhOff < 0 || nhOff + IPV6_HLEN > buf.length) return;
    const sOff = nhOff + 8;
    const dOff = nhOff + 24;
    const saddr = Buffer.alloc(16);
    let haveSaddr = false;
    if (stack.ipv6.addrconf.isLocal(buf, dOff)) {
      buf.copy(saddr, 0, dOff, dOff + 16);
      haveSaddr = true;
    }
    if (ipv6IsMulticast(buf, dOff) || pktType !== PACKET_HOST) {
      // Only Packet Too Big, and a parameter problem about an option that
      // asked for one even then (RFC 4443 2.4 e.3, RFC 8200 4.2).
      const optUnrec = type === ICMPV6_PARAMPROB && code === ICMPV6_UNK_OPTION && nhOff + info < buf.length && (buf[nhOff + info] & 0xc0) === 0x80;
      if (type !== ICMPV6_PKT_TOOBIG && !optUnrec) return;
      haveSaddr = false;
    }
    if (ipv6IsUnspecified(buf, sOff) || ipv6IsMulticast(buf, sOff)) return;
    const total = Math.min(IPV6_HLEN + ip6PayloadLen(buf, nhOff), buf.length - nhOff);
    // is_ineligible: never about an ICMPv6 error.
    const w = this.#walk;
    if (ipv6SkipExthdr(buf, nhOff + IPV6_HLEN, nhOff + total, ip6Nexthdr(buf, nhOff), w) && w[1] === IPPROTO_ICMPV6) {
      if (w[0] >= nhOff + total || !(buf[w[0]] & 0x80)) return;
    }
    const daddr = buf.subarray(sOff, sOff + 16);
    if (this.#ratelimited(type) && !stack.ipv6.addrconf.isLocal(daddr)) {
      if (!stack.icmp.globalAllow()) {
        stack.mibs.Icmp.OutRateLimitGlobal++;
        stack.mibs.Drop.counts[SKB_DROP_REASON.ICMP_RATELIMIT]++;
        return;
      }
      if (!this.#peerAllow(daddr, 0, this.sysctl.ratelimit)) {
        mib.OutRateLimitHost++;
        stack.mibs.Drop.counts[SKB_DROP_REASON.ICMP_RATELIMIT]++;
        return;
      }
    }
    const dst = Buffer.from(daddr);
    if (!haveSaddr && !ipv6ChooseSaddr(stack, dst, saddr)) return;
    // Quote as much as fits in the minimum MTU (RFC 4443 2.4 c).
    const quote = Math.min(total, IPV6_MIN_MTU - IPV6_HLEN - ICMPV6_HLEN);
    const skb = allocSkb(ICMPV6_HLEN + quote);
    const at = skb.put(ICMPV6_HLEN + quote);
    const b = skb.buf;
    b[at] = type;
    b[at + 1] = code;
    b[at + 2] = 0;
    b[at + 3] = 0;
    b.writeUInt32BE(info >>> 0, at + 4);
    buf.copy(b, at + ICMPV6_HLEN, nhOff, nhOff + quote);
    const len = ICMPV6_HLEN + quote;
    const c = csumFold(csumPartial(b, at, len, csumIpv6Magic(saddr, 0, dst, 0, IPPROTO_ICMPV6, len)));
    b[at + 2] = c >>> 8;
    b[at + 3] = c & 255;
    this.#count(type);
    if (ip6Xmit(stack, skb, saddr, dst, IPPROTO_ICMPV6, -1, 0) < 0) mib.OutErrors++;
  }
}

/**
 * icmpv6_send about the packet being received: its IPv6 header and its
 * link-layer kind (no errors about link-layer multicast, RFC 4443 2.4 e)
 * come with the skb. UDP's port unreachable and the IPv6 layer's own errors.
 */
export function icmpv6SendSkb(stack: Net, skb: SkBuff, type: number, code: number, info: number): void {
  stack.ipv6.icmp.send(skb.buf, skb.networkHeader, type, code, info, skb.pktType);
}

/**
 * What __udp6_lib_rcv does for a datagram nobody bound: ICMPv6 port
 * unreachable about the datagram being received (suppressed, as
 * icmp6_send does, when it went to a multicast address).
 */
export function icmpv6PortUnreach(stack: Net, skb: SkBuff): void {
  icmpv6SendSkb(stack, skb, ICMPV6_DEST_UNREACH, ICMPV6_PORT_UNREACH, 0);
}

/** Destination unreachable codes 0..6 to errno and whether the error is fatal (Linux's tab_unreach). */
const TAB_UNREACH: readonly [number, boolean][] = [
  [ENETUNREACH, false], // no route
  [EACCES, true], // administratively prohibited
  [EHOSTUNREACH, false], // beyond the scope of the source (was "not a neighbour")
  [EHOSTUNREACH, false], // address unreachable
  [ECONNREFUSED, true], // port unreachable
  [EACCES, true], // source address failed ingress/egress policy
  [EACCES, true], // reject route
];

/**
 * icmpv6_err_convert: the errno a transport reports for an ICMPv6 error,
 * and whether it is fatal (aborts a connection attempt) — for errHandlers.
 */
export function icmpv6ErrConvert(type: number, code: number): { errno: number; fatal: boolean } {
  switch (type) {
    case ICMPV6_DEST_UNREACH:
      if (code < TAB_UNREACH.length) return { errno: TAB_UNREACH[code][0], fatal: TAB_UNREACH[code][1] };
      return { errno: EPROTO, fatal: true };
    case ICMPV6_PKT_TOOBIG:
      return { errno: EMSGSIZE, fatal: false };
    case ICMPV6_PARAMPROB:
      return { errno: EPROTO, fatal: true };
    case ICMPV6_TIME_EXCEED:
      return { errno: EHOSTUNREACH, fatal: false };
    default:
      return { errno: EPROTO, fatal: false };
  }
}
