/**
 * Hop-by-hop and destination options (net/ipv6/exthdrs.c ip6_parse_tlv):
 * padding checked as Linux checks it (at most 7 bytes in a row, PadN
 * bytes zero, RFC 4942 2.1.9.5), at most max_*_opts_number real options,
 * Router Alert and Jumbo Payload understood in hop-by-hop, and every
 * other option handled by the two high bits of its type (RFC 8200 4.2):
 * 00 skip, 01 discard, 10 discard and send a parameter problem, 11 the
 * same unless the destination was multicast.
 */
import { ipv6IsMulticast } from '../../lib/addr.js';
import { ICMPV6_HDR_FIELD, ICMPV6_PARAMPROB, ICMPV6_UNK_OPTION } from '../../wire/icmpv6.js';
import { IPV6_HLEN, IPV6_MAXPLEN, IPV6_TLV_JUMBO, IPV6_TLV_PAD1, IPV6_TLV_PADN, IPV6_TLV_ROUTERALERT } from '../../wire/ipv6.js';
import type { Net } from '../core/net.js';
import { IP6SKB_ROUTERALERT, type SkBuff } from '../core/skbuff.js';

/** ip6ParseTlv's verdicts: keep the packet; drop it (Ip6InHdrErrors); drop it, short for its jumbo length (Ip6InTruncatedPkts). */
export const TLV_OK = 0;
export const TLV_BAD = 1;
export const TLV_TRUNCATED = 2;

/**
 * ip6_parse_tlv over the options header at `o` (`len` bytes, including its
 * first two bytes) of the packet in skb (IPv6 header at skb.networkHeader,
 * skb.len bytes from there). A Router Alert sets IP6SKB_ROUTERALERT; a
 * Jumbo Payload trims skb.len to the jumbogram's length (ipv6_hop_jumbo).
 * A parameter problem has been sent when one was due.
 */
export function ip6ParseTlv(stack: Net, hopByHop: boolean, skb: SkBuff, o: number, len: number): number {
  const b = skb.buf;
  const nhOff = skb.networkHeader;
  const pktType = skb.pktType;
  const cnf = stack.ipv6.cnf;
  let maxCount = hopByHop ? cnf.max_hbh_opts_number : cnf.max_dst_opts_number;
  // A negative limit also refuses every unknown option, silently (Linux's disallow_unknowns).
  const disallowUnknowns = maxCount < 0;
  if (disallowUnknowns) maxCount = -maxCount;
  const end = o + len;
  let off = o + 2;
  let padlen = 0;
  let count = 0;
  while (off < end) {
    const type = b[off];
    if (type === IPV6_TLV_PAD1) {
      padlen++;
      if (padlen > 7) return TLV_BAD;
      off++;
      continue;
    }
    if (end - off < 2) return TLV_BAD;
    const optlen = b[off + 1] + 2;
    if (optlen > end - off) return TLV_BAD;
    if (type === IPV6_TLV_PADN) {
      padlen += optlen;
      if (padlen > 7) return TLV_BAD;
      for (let i = 2; i < optlen; i++) if (b[off + i] !== 0) return TLV_BAD;
      off += optlen;
      continue;
    }
    if (++count > maxCount) return TLV_BAD;
    if (hopByHop && type === IPV6_TLV_ROUTERALERT) {
      if (b[off + 1] !== 2) return TLV_BAD;
      skb.ip6Flags |= IP6SKB_ROUTERALERT;
    } else if (hopByHop && type === IPV6_TLV_JUMBO) {
      // ipv6_hop_jumbo: 4 bytes at 4n+2; only when the header's length is 0 and it is over 65535.
      if (b[off + 1] !== 4 || ((off - nhOff) & 3) !== 2) return TLV_BAD;
      const plen = b.readUInt32BE(off + 2);
      if (plen <= IPV6_MAXPLEN) {
        stack.ipv6.icmp.send(b, nhOff, ICMPV6_PARAMPROB, ICMPV6_HDR_FIELD, off + 2 - nhOff, pktType);
        return TLV_BAD;
      }
      if (b[nhOff + 4] | b[nhOff + 5]) {
        stack.ipv6.icmp.send(b, nhOff, ICMPV6_PARAMPROB, ICMPV6_HDR_FIELD, off - nhOff, pktType);
        return TLV_BAD;
      }
      if (plen > skb.len - IPV6_HLEN) return TLV_TRUNCATED;
      skb.len = IPV6_HLEN + plen;
    } else if (disallowUnknowns || !tlvUnknown(stack, b, nhOff, off, pktType)) {
      return TLV_BAD;
    }
    padlen = 0;
    off += optlen;
  }
  return off === end ? TLV_OK : TLV_BAD;
}

/** ip6_tlvopt_unknown: what the option type's two high bits ask for. */
function tlvUnknown(stack: Net, b: Buffer, nhOff: number, off: number, pktType: number): boolean {
  switch (b[off] >> 6) {
    case 0:
      return true; // skip over it
    case 1:
      return false; // discard silently
    case 2:
      stack.ipv6.icmp.send(b, nhOff, ICMPV6_PARAMPROB, ICMPV6_UNK_OPTION, off - nhOff, pktType);
      return false;
    default:
      // 11: the same, but not about a packet to a multicast destination.
      if (!ipv6IsMulticast(b, nhOff + 24)) stack.ipv6.icmp.send(b, nhOff, ICMPV6_PARAMPROB, ICMPV6_UNK_OPTION, off - nhOff, pktType);
      return false;
  }
}
