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
import type { Stack } from '../stack.js';

/** What parsing a hop-by-hop header found: a Router Alert; a jumbo length (0: none). */
export class TlvResult {
  routerAlert = false;
  jumboLen = 0;
  /** The packet was short for its jumbo length (Ip6InTruncatedPkts rather than InHdrErrors). */
  truncated = false;
  reset(): void {
    this.routerAlert = false;
    this.jumboLen = 0;
    this.truncated = false;
  }
}

/**
 * ip6_parse_tlv over the options header at `o` (`len` bytes, including
 * its first two bytes), in the packet whose IPv6 header is at nhOff and
 * which is `avail` bytes long from nhOff. False: drop it (the caller
 * counts Ip6InHdrErrors); a parameter problem has been sent if one was due.
 */
export function ip6ParseTlv(stack: Stack, hopByHop: boolean, b: Buffer, nhOff: number, o: number, len: number, pktType: number, avail: number, res: TlvResult): boolean {
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
      if (padlen > 7) return false;
      off++;
      continue;
    }
    if (end - off < 2) return false;
    const optlen = b[off + 1] + 2;
    if (optlen > end - off) return false;
    if (type === IPV6_TLV_PADN) {
      padlen += optlen;
      if (padlen > 7) return false;
      for (let i = 2; i < optlen; i++) if (b[off + i] !== 0) return false;
      off += optlen;
      continue;
    }
    if (++count > maxCount) return false;
    if (hopByHop && type === IPV6_TLV_ROUTERALERT) {
      if (b[off + 1] !== 2) return false;
      res.routerAlert = true;
    } else if (hopByHop && type === IPV6_TLV_JUMBO) {
      // ipv6_hop_jumbo: 4 bytes at 4n+2; only when the header's length is 0 and it is over 65535.
      if (b[off + 1] !== 4 || ((off - nhOff) & 3) !== 2) return false;
      const plen = b.readUInt32BE(off + 2);
      if (plen <= IPV6_MAXPLEN) {
        stack.ipv6.icmp.send(b, nhOff, ICMPV6_PARAMPROB, ICMPV6_HDR_FIELD, off + 2 - nhOff, pktType);
        return false;
      }
      if (b[nhOff + 4] | b[nhOff + 5]) {
        stack.ipv6.icmp.send(b, nhOff, ICMPV6_PARAMPROB, ICMPV6_HDR_FIELD, off - nhOff, pktType);
        return false;
      }
      if (plen > avail - IPV6_HLEN) {
        res.truncated = true;
        return false;
      }
      res.jumboLen = plen;
    } else if (disallowUnknowns || !tlvUnknown(stack, b, nhOff, off, pktType)) {
      return false;
    }
    padlen = 0;
    off += optlen;
  }
  return off === end;
}

/** ip6_tlvopt_unknown: what the option type's two high bits ask for. */
function tlvUnknown(stack: Stack, b: Buffer, nhOff: number, off: number, pktType: number): boolean {
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
