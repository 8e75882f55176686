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
  ip6OptLen,
  ip6PayloadLen,
  ip6Version,
  ipv6SkipExthdr,
} from '../../wire/ipv6.js';
import { PACKET_HOST, type PacketHandler } from '../core/dev.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import { TLV_OK, TLV_TRUNCATED, ip6ParseTlv } from './exthdrs.js';
import { IP6SKB_FRAGMENTED, type SkBuff } from '../core/skbuff.js';
import { RTN_LOCAL, RTN_MULTICAST } from '../ipv4/route.js';
import type { Net } from '../core/net.js';
import { IPPROTO_ICMPV6 } from '../../uapi.js';

/** ipv6_packet_type: IPv6's handler on the device (ETH_P_IPV6). */
export function ipv6PacketType(stack: Net): PacketHandler {
  return (skb) => ipv6Rcv(stack, skb);
}

/**
 * ipv6_rcv + ip6_rcv_core + ip6_rcv_finish: skb.data at the IPv6 header
 * (skb.macHeader: the Ethernet header's offset, -1 if none).
 */
export function ipv6Rcv(stack: Net, skb: SkBuff): void {
  const buf = skb.buf;
  const off = skb.data;
  const len = skb.len;
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
    (ipv6IsMulticast(buf, dOff) && (buf[dOff + 1] & 0x0f) <= 1 && skb.macHeader >= 0)
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
  skb.networkHeader = off;
  skb.len = totLen;
  skb.ip6Flags = 0;
  let hbhLen = 0;
  if (buf[off + 6] === NEXTHDR_HOP) {
    // ipv6_parse_hopopts.
    if (totLen < IPV6_HLEN + 8 || ip6OptLen(buf, off + IPV6_HLEN) > totLen - IPV6_HLEN) {
      mib.InHdrErrors++;
      drop[SKB_DROP_REASON.IP_INHDR]++;
      return;
    }
    hbhLen = ip6OptLen(buf, off + IPV6_HLEN);
    const r = ip6ParseTlv(stack, true, skb, off + IPV6_HLEN, hbhLen);
    if (r !== TLV_OK) {
      if (r === TLV_TRUNCATED) {
        mib.InTruncatedPkts++;
        drop[SKB_DROP_REASON.PKT_TOO_SMALL]++;
      } else {
        mib.InHdrErrors++;
        drop[SKB_DROP_REASON.IPV6_BAD_EXTHDR]++;
      }
      return;
    }
    // A jumbogram's length came from its option (ipv6_hop_jumbo trimmed the skb to it).
    totLen = skb.len;
  }

  // ip6_route_input: ours, a group we joined, or (no forwarding) nothing.
  let rtType = RTN_MULTICAST;
  if (ipv6IsMulticast(buf, dOff)) {
    mib.InMcastPkts++;
    mib.InMcastOctets += totLen;
    if (!stack.ipv6.mld.isJoined(buf, dOff)) {
      drop[SKB_DROP_REASON.OTHERHOST]++;
      return;
    }
  } else if (stack.ipv6.addrconf.isLocal(buf, dOff)) {
    rtType = RTN_LOCAL;
  } else {
    mib.InAddrErrors++;
    drop[SKB_DROP_REASON.IP_INADDRERRORS]++;
    return;
  }
  skb.rtType = rtType;
  ip6InputFinish(stack, skb, hbhLen);
}

/**
 * ip6_input_finish / ip6_protocol_deliver_rcu: from the first header
 * after the IPv6 header (and the hop-by-hop header, `hbhLen` bytes, already
 * parsed) to the transport.
 */
function ip6InputFinish(stack: Net, skb: SkBuff, hbhLen: number): void {
  const mib = stack.mibs.Ip6;
  const drop = stack.mibs.Drop.counts;
  let buf = skb.buf;
  let nhOff = skb.networkHeader;
  let totLen = skb.len;
  const pktType = skb.pktType;

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
        if (ip6ParseTlv(stack, false, skb, o, l) !== TLV_OK) {
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
          skb.ip6Flags |= IP6SKB_FRAGMENTED;
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
        // The datagram is a new buffer now, with no link-layer header before it.
        skb.buf = buf;
        skb.networkHeader = 0;
        skb.len = totLen;
        skb.macHeader = -1;
        skb.ip6Flags |= IP6SKB_FRAGMENTED;
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
        skb.data = o;
        skb.len = end - o;
        skb.transportHeader = o;
        mib.InDelivers++;
        prot.handler(skb);
        return;
      }
    }
  }
}

/** ipv6frag_thdr_truncated: the first fragment stops before the upper-layer header does. */
function headerChainTruncated(b: Buffer, start: number, end: number, nexthdr: number): boolean {
  // Only first fragments come here: a small array per call is no per-packet cost.
  const walk = new Int32Array(2);
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
