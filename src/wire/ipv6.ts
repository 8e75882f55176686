/**
 * IPv6 header (RFC 8200) and its extension headers, read and written in
 * place. Addresses stay in the frame: readers take (buf, offset) pairs.
 */
export const IPV6_HLEN = 40;
/** The minimum link MTU every IPv6 link must carry (RFC 8200 5). */
export const IPV6_MIN_MTU = 1280;
export const IPV6_MAXPLEN = 65535;

// Next-header values (linux/ipv6.h NEXTHDR_*, plus the transports).
export const NEXTHDR_HOP = 0;
export const NEXTHDR_TCP = 6;
export const NEXTHDR_UDP = 17;
export const NEXTHDR_IPV6 = 41;
export const NEXTHDR_ROUTING = 43;
export const NEXTHDR_FRAGMENT = 44;
export const NEXTHDR_GRE = 47;
export const NEXTHDR_ESP = 50;
export const NEXTHDR_AUTH = 51;
export const NEXTHDR_ICMP = 58;
export const NEXTHDR_NONE = 59;
export const NEXTHDR_DEST = 60;
export const NEXTHDR_MOBILITY = 135;

// Fragment header (RFC 8200 4.5): next header, reserved, offset|res|M, identification.
export const FRAG_HLEN = 8;
export const IP6_MF = 0x0001;
export const IP6_OFFSET = 0xfff8;

// TLV options in hop-by-hop and destination options headers.
export const IPV6_TLV_PAD1 = 0;
export const IPV6_TLV_PADN = 1;
export const IPV6_TLV_ROUTERALERT = 5;
export const IPV6_TLV_JUMBO = 0xc2;

// Routing header types.
export const IPV6_SRCRT_TYPE_0 = 0;
export const IPV6_SRCRT_TYPE_2 = 2;
export const IPV6_SRCRT_TYPE_3 = 3;
export const IPV6_SRCRT_TYPE_4 = 4;

export const ip6Version = (b: Buffer, o: number): number => b[o] >>> 4;
export const ip6Tclass = (b: Buffer, o: number): number => ((b[o] & 0x0f) << 4) | (b[o + 1] >>> 4);
export const ip6FlowLabel = (b: Buffer, o: number): number => ((b[o + 1] & 0x0f) << 16) | (b[o + 2] << 8) | b[o + 3];
export const ip6PayloadLen = (b: Buffer, o: number): number => (b[o + 4] << 8) | b[o + 5];
export const ip6Nexthdr = (b: Buffer, o: number): number => b[o + 6];
export const ip6HopLimit = (b: Buffer, o: number): number => b[o + 7];
/** Offsets of the addresses from the header's start. */
export const IP6_SADDR = 8;
export const IP6_DADDR = 24;

/** Write a 40-byte header at `o`. */
export function ip6Header(
  b: Buffer,
  o: number,
  payloadLen: number,
  nexthdr: number,
  hopLimit: number,
  saddr: Uint8Array,
  daddr: Uint8Array,
  tclass = 0,
  flowLabel = 0,
): void {
  b[o] = 0x60 | (tclass >>> 4);
  b[o + 1] = ((tclass & 0x0f) << 4) | ((flowLabel >>> 16) & 0x0f);
  b[o + 2] = (flowLabel >>> 8) & 255;
  b[o + 3] = flowLabel & 255;
  b[o + 4] = (payloadLen >>> 8) & 255;
  b[o + 5] = payloadLen & 255;
  b[o + 6] = nexthdr;
  b[o + 7] = hopLimit;
  b.set(saddr.subarray(0, 16), o + 8);
  b.set(daddr.subarray(0, 16), o + 24);
}

/** Hop-by-hop, routing and destination options headers: (hdrlen + 1) * 8 bytes. */
export const ip6OptLen = (b: Buffer, o: number): number => (b[o + 1] + 1) << 3;

export const fragOffset = (b: Buffer, o: number): number => ((b[o + 2] << 8) | b[o + 3]) & IP6_OFFSET;
export const fragMore = (b: Buffer, o: number): boolean => (b[o + 3] & IP6_MF) !== 0;
export const fragId = (b: Buffer, o: number): number => b.readUInt32BE(o + 4);

/** The extension headers this stack walks (ipv6_ext_hdr). */
export function ipv6ExtHdr(nexthdr: number): boolean {
  return (
    nexthdr === NEXTHDR_HOP ||
    nexthdr === NEXTHDR_ROUTING ||
    nexthdr === NEXTHDR_FRAGMENT ||
    nexthdr === NEXTHDR_AUTH ||
    nexthdr === NEXTHDR_NONE ||
    nexthdr === NEXTHDR_DEST
  );
}

/**
 * ipv6_skip_exthdr: from the header whose type is `nexthdr` at `start`,
 * skip extension headers within `end`. Returns the upper-layer offset and
 * its protocol in out[0], out[1]; false when the chain is cut short. A
 * non-first fragment stops the walk at its fragment header (out[1] is
 * then NEXTHDR_FRAGMENT: its payload is not a header).
 */
export function ipv6SkipExthdr(b: Buffer, start: number, end: number, nexthdr: number, out: Int32Array): boolean {
  let o = start;
  while (ipv6ExtHdr(nexthdr)) {
    if (nexthdr === NEXTHDR_NONE) break;
    if (o + 8 > end) return false;
    let hdrlen: number;
    if (nexthdr === NEXTHDR_FRAGMENT) {
      hdrlen = 8;
      if (fragOffset(b, o) !== 0) {
        // A later fragment: what follows is data, not a header (Linux stops here too).
        out[0] = o;
        out[1] = NEXTHDR_FRAGMENT;
        return true;
      }
    } else if (nexthdr === NEXTHDR_AUTH) {
      hdrlen = (b[o + 1] + 2) << 2;
    } else {
      hdrlen = ip6OptLen(b, o);
    }
    nexthdr = b[o];
    o += hdrlen;
  }
  out[0] = o;
  out[1] = nexthdr;
  return o <= end;
}
