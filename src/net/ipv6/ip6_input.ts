/**
 * IPv6 receive (net/ipv6/ip6_input.c, exthdrs.c): ipv6_rcv validates the
 * header in place (RFC 8200, RFC 4291's address rules) with Linux's
 * counters, parses a hop-by-hop header (only right after the IPv6
 * header), decides local unicast / joined multicast / not ours, and
 * ip6_input_finish walks the extension headers (routing, fragment,
 * destination options) to the upper-layer protocol, which it finds in
 * stack.inet6Protos. An unknown next header gets a parameter problem
 * (code 1) pointing at the byte that named it.
 */
import { ipv6IsLoopback, ipv6IsMulticast } from '../../lib/addr.js';
import {
  ICMPV6_HDR_FIELD,
  ICMPV6_HDR_INCOMP,
  ICMPV6_PARAMPROB,
  ICMPV6_UNK_NEXTHDR,
} from '../../wire/icmpv6.js';
import {
  FRAG_HLEN,
  IPPROTO_ICMPV6,
  IPV6_HLEN,
  IPV6_SRCRT_TYPE_2,
  IPV6_SRCRT_TYPE_3,
  IPV6_SRCRT_TYPE_4,
  NEXTHDR_DEST,
  NEXTHDR_FRAGMENT,
  NEXTHDR_HOP,
  NEXTHDR_NONE,
  NEXTHDR_ROUTING,
  NEXTHDR_TCP,
  NEXTHDR_UDP,
  fragMore,
  fragOffset,
  ip6FlowLabel,
  ip6HopLimit,
  ip6OptLen,
  ip6PayloadLen,
  ip6Tclass,
  ip6Version,
  ipv6SkipExthdr,
} from '../../wire/ipv6.js';
import { PACKET_HOST, type NetDevice } from '../core/dev.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { TlvResult, ip6ParseTlv } from './exthdrs.js';
import type { Stack } from '../stack.js';

/**
 * The current datagram as the transport handler sees it: one instance per
 * stack, overwritten per packet, read synchronously. Addresses are read in
 * place at saddrOff/daddrOff.
 */
export class Ip6RxInfo {
  buf: Buffer = Buffer.alloc(0);
  /** Offset of the IPv6 header in buf. */
  nhOff = 0;
  saddrOff = 8;
  daddrOff = 24;
  hopLimit = 0;
  tclass = 0;
  flowLabel = 0;
  /** The upper-layer protocol, after the extension headers. */
  nexthdr = 0;
  /** Offset of the upper-layer header in buf. */
  thOff = 0;
  /** PACKET_HOST etc.: the link-layer destination kind. */
  pktType = 0;
  /** daddr is one of our unicast addresses (else a multicast group we joined). */
  rtLocal = false;
  /** Reassembled, or an atomic fragment (IP6SKB_FRAGMENTED): Neighbor Discovery refuses it. */
  fragmented = false;
  /** Offset of the Ethernet header in buf, or -1 (reassembled, or looped back). */
  ethOff = -1;
  /** A hop-by-hop Router Alert was present (MLD). */
  routerAlert = false;
}

/** inet6_protocol: a transport's receive and ICMPv6-error handlers. */
export interface Net6Protocol {
  /** Upper-layer header at `off`, `len` bytes; `ip6` describes the datagram. */
  handler(buf: Buffer, off: number, len: number, ip6: Ip6RxInfo): void;
  /**
   * An ICMPv6 error quoting one of our packets: its IPv6 header at
   * `innerOff`, `innerLen` bytes present (at least up to 8 bytes of the
   * transport header). PKT_TOOBIG: `info` is the MTU, already applied to
   * the path-MTU cache.
   */
  errHandler?(type: number, code: number, info: number, buf: Buffer, innerOff: number, innerLen: number): void;
}

const tlvRes = new TlvResult();
const walk = new Int32Array(2);

/** ipv6_rcv + ip6_rcv_core + ip6_rcv_finish. `ethOff`: the Ethernet header's offset, -1 if none. */
export function ipv6Rcv(stack: Stack, _dev: NetDevice | null, buf: Buffer, off: number, len: number, pktType: number, ethOff = off - 14): void {
  const mib = stack.mibs.Ip6;
  const drop = stack.mibs.Drop.counts;
  mib.InReceives++;
  mib.InOctets += len;
  if (len < IPV6_HLEN) {
    mib.InHdrErrors++;
    drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
    return;
  }
  if (ip6Version(buf, off) !== 6) {
    mib.InHdrErrors++;
    drop[SKB_DROP_REASON.UNHANDLED_PROTO]++;
    return;
  }
  const sOff = off + 8;
  const dOff = off + 24;
  // RFC 4291 2.5.3: ::1 never arrives on a real link. 2.7: a multicast
  // destination of scope 0 is reserved, of scope 1 (interface-local) never
  // leaves its node; a multicast source is invalid.
  if (
    ipv6IsLoopback(buf, sOff) ||
    ipv6IsLoopback(buf, dOff) ||
    ipv6IsMulticast(buf, sOff) ||
    (ipv6IsMulticast(buf, dOff) && (buf[dOff + 1] & 0x0f) <= 1 && ethOff >= 0)
  ) {
    mib.InHdrErrors++;
    drop[SKB_DROP_REASON.IP_INVALID_SOURCE]++;
    return;
  }
  const plen = ip6PayloadLen(buf, off);
  let totLen = len;
  if (plen || buf[off + 6] !== NEXTHDR_HOP) {
    if (plen + IPV6_HLEN > len) {
      mib.InTruncatedPkts++;
      drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
      return;
    }
    // Bytes past the payload length are link padding.
    totLen = plen + IPV6_HLEN;
  }
  tlvRes.reset();
  let hbhLen = 0;
  if (buf[off + 6] === NEXTHDR_HOP) {
    // ipv6_parse_hopopts.
    if (totLen < IPV6_HLEN + 8 || ip6OptLen(buf, off + IPV6_HLEN) > totLen - IPV6_HLEN) {
      mib.InHdrErrors++;
      drop[SKB_DROP_REASON.IP_INHDR]++;
      return;
    }
    hbhLen = ip6OptLen(buf, off + IPV6_HLEN);
    if (!ip6ParseTlv(stack, true, buf, off, off + IPV6_HLEN, hbhLen, pktType, totLen, tlvRes)) {
      if (tlvRes.truncated) {
        mib.InTruncatedPkts++;
        drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
      } else {
        mib.InHdrErrors++;
        drop[SKB_DROP_REASON.IPV6_BAD_EXTHDR]++;
      }
      return;
    }
    if (tlvRes.jumboLen) totLen = IPV6_HLEN + tlvRes.jumboLen;
  }

  // ip6_route_input: ours, a group we joined, or (no forwarding) nothing.
  let rtLocal = false;
  if (ipv6IsMulticast(buf, dOff)) {
    mib.InMcastPkts++;
    mib.InMcastOctets += totLen;
    if (!stack.ipv6.mld.isJoined(buf, dOff)) {
      drop[SKB_DROP_REASON.OTHERHOST]++;
      return;
    }
  } else if (stack.ipv6.addrconf.isLocal(buf, dOff)) {
    rtLocal = true;
  } else {
    mib.InAddrErrors++;
    drop[SKB_DROP_REASON.IP_INADDRERRORS]++;
    return;
  }
  ip6InputFinish(stack, buf, off, totLen, pktType, rtLocal, ethOff, hbhLen);
}

/**
 * ip6_input_finish / ip6_protocol_deliver_rcu: from the first header
 * after the IPv6 header (and the hop-by-hop header, `hbhLen` bytes, already
 * parsed) to the transport.
 */
function ip6InputFinish(stack: Stack, buf: Buffer, nhOff: number, totLen: number, pktType: number, rtLocal: boolean, ethOff: number, hbhLen: number): void {
  const mib = stack.mibs.Ip6;
  const drop = stack.mibs.Drop.counts;
  const rx = stack.ip6Rx;
  rx.buf = buf;
  rx.nhOff = nhOff;
  rx.saddrOff = nhOff + 8;
  rx.daddrOff = nhOff + 24;
  rx.pktType = pktType;
  rx.rtLocal = rtLocal;
  rx.ethOff = ethOff;
  rx.fragmented = false;
  rx.routerAlert = tlvRes.routerAlert;

  let end = nhOff + totLen;
  let nhoff = nhOff + 6; // the byte that names the header at `o`
  let o = nhOff + IPV6_HLEN;
  let nexthdr = buf[nhoff];
  if (hbhLen) {
    nhoff = o;
    nexthdr = buf[o];
    o += hbhLen;
  }
  for (;;) {
    switch (nexthdr) {
      case NEXTHDR_DEST: {
        // ipv6_destopt_rcv.
        if (end - o < 8 || ip6OptLen(buf, o) > end - o) {
          mib.InHdrErrors++;
          drop[SKB_DROP_REASON.IP_INHDR]++;
          return;
        }
        const l = ip6OptLen(buf, o);
        tlvRes.reset();
        if (!ip6ParseTlv(stack, false, buf, nhOff, o, l, pktType, totLen, tlvRes)) {
          mib.InHdrErrors++;
          drop[SKB_DROP_REASON.IPV6_BAD_EXTHDR]++;
          return;
        }
        nhoff = o;
        nexthdr = buf[o];
        o += l;
        continue;
      }
      case NEXTHDR_ROUTING: {
        // ipv6_rthdr_rcv, as a host that forwards nothing.
        if (end - o < 8 || ip6OptLen(buf, o) > end - o) {
          mib.InHdrErrors++;
          drop[SKB_DROP_REASON.IP_INHDR]++;
          return;
        }
        if (ipv6IsMulticast(buf, nhOff + 24) || pktType !== PACKET_HOST) {
          mib.InAddrErrors++;
          drop[SKB_DROP_REASON.IP_INADDRERRORS]++;
          return;
        }
        const type = buf[o + 2];
        const segLeft = buf[o + 3];
        // Segment routing and RPL headers are refused while they are off (seg6_enabled = 0).
        if (type === IPV6_SRCRT_TYPE_4 || type === IPV6_SRCRT_TYPE_3) {
          drop[SKB_DROP_REASON.IPV6_BAD_EXTHDR]++;
          return;
        }
        if (segLeft !== 0) {
          if (type === IPV6_SRCRT_TYPE_2) {
            // Mobile IPv6's home address: a malformed one is discarded; a
            // well-formed one names another node to go to, and we do not forward.
            if (buf[o + 1] !== 2 || segLeft !== 1) mib.InHdrErrors++;
            else mib.InAddrErrors++;
            drop[SKB_DROP_REASON.IPV6_BAD_EXTHDR]++;
            return;
          }
          // Type 0 (RFC 5095) and unknown types: parameter problem at the type field.
          mib.InHdrErrors++;
          drop[SKB_DROP_REASON.IPV6_BAD_EXTHDR]++;
          stack.ipv6.icmp.send(buf, nhOff, ICMPV6_PARAMPROB, ICMPV6_HDR_FIELD, o + 2 - nhOff, pktType);
          return;
        }
        nhoff = o;
        nexthdr = buf[o];
        o += ip6OptLen(buf, o);
        continue;
      }
      case NEXTHDR_FRAGMENT: {
        // ipv6_frag_rcv.
        mib.ReasmReqds++;
        if (end - o < FRAG_HLEN || ip6PayloadLen(buf, nhOff) === 0) {
          mib.InHdrErrors++;
          drop[SKB_DROP_REASON.IP_INHDR]++;
          stack.ipv6.icmp.send(buf, nhOff, ICMPV6_PARAMPROB, ICMPV6_HDR_FIELD, o - nhOff, pktType);
          return;
        }
        const offset = fragOffset(buf, o);
        const more = fragMore(buf, o);
        if (offset === 0 && !more) {
          // An atomic fragment (RFC 6946): processed in isolation.
          mib.ReasmOKs++;
          rx.fragmented = true;
          nhoff = o;
          nexthdr = buf[o];
          o += FRAG_HLEN;
          continue;
        }
        if (offset === 0 && headerChainTruncated(buf, o + FRAG_HLEN, end, buf[o])) {
          // RFC 7112: the first fragment carries the whole header chain.
          mib.ReasmFails++;
          drop[SKB_DROP_REASON.FRAG_INVALID]++;
          stack.ipv6.icmp.send(buf, nhOff, ICMPV6_PARAMPROB, ICMPV6_HDR_INCOMP, 0, pktType);
          return;
        }
        const frags = stack.ipv6.frags;
        const whole = frags.queue(buf, nhOff, totLen, o, nhoff, pktType);
        if (!whole) {
          if (frags.probOffset >= 0) {
            mib.InHdrErrors++;
            drop[SKB_DROP_REASON.FRAG_INVALID]++;
            stack.ipv6.icmp.send(buf, nhOff, ICMPV6_PARAMPROB, ICMPV6_HDR_FIELD, frags.probOffset, pktType);
          }
          return;
        }
        // Go on in the reassembled datagram where the fragment header was.
        const fhRel = o - nhOff;
        nhoff = nhoff - nhOff;
        buf = whole;
        nhOff = 0;
        totLen = whole.length;
        end = totLen;
        o = fhRel;
        nexthdr = buf[nhoff];
        rx.buf = buf;
        rx.nhOff = 0;
        rx.saddrOff = 8;
        rx.daddrOff = 24;
        rx.ethOff = -1;
        rx.fragmented = true;
        continue;
      }
      case NEXTHDR_NONE:
        // ipv6_nodata_rcv: nothing follows; delivered to nobody.
        mib.InDelivers++;
        return;
      default: {
        const prot = stack.inet6Protos[nexthdr];
        if (!prot) {
          mib.InUnknownProtos++;
          drop[SKB_DROP_REASON.IP_NOPROTO]++;
          stack.ipv6.icmp.send(buf, nhOff, ICMPV6_PARAMPROB, ICMPV6_UNK_NEXTHDR, nhoff - nhOff, pktType);
          return;
        }
        rx.hopLimit = ip6HopLimit(buf, nhOff);
        rx.tclass = ip6Tclass(buf, nhOff);
        rx.flowLabel = ip6FlowLabel(buf, nhOff);
        rx.nexthdr = nexthdr;
        rx.thOff = o;
        mib.InDelivers++;
        prot.handler(buf, o, end - o, rx);
        return;
      }
    }
  }
}

/** ipv6frag_thdr_truncated: the first fragment stops before the upper-layer header does. */
function headerChainTruncated(b: Buffer, start: number, end: number, nexthdr: number): boolean {
  // A chain that cannot be walked is not called truncated (Linux returns false there too).
  if (!ipv6SkipExthdr(b, start, end, nexthdr, walk)) return false;
  let need = walk[0];
  switch (walk[1]) {
    case NEXTHDR_TCP: need += 20; break;
    case NEXTHDR_UDP: need += 8; break;
    case IPPROTO_ICMPV6: need += 8; break;
    default: need += 1;
  }
  return need > end;
}
