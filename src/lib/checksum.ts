/**
 * The Internet checksum (RFC 1071), as the kernel's csum_partial/csum_fold
 * split it: csumPartial() adds 16-bit big-endian words into an unfolded sum
 * that can be carried across pieces (pseudo-header, header, payload), and
 * csumFold() folds the carries and complements.
 *
 * Pieces joined with csumPartial(..., prev) must each have an even length,
 * except the last: an odd piece ends with its byte padded by a zero, as the
 * RFC requires for the final byte only.
 */
export function csumPartial(buf: Uint8Array, off: number, len: number, sum = 0): number {
  const end = off + len;
  let i = off;
  // Two words per step; a JS number holds 2^53, so carries can wait until
  // the fold as long as one call covers less than 2^36 bytes.
  for (; i + 3 < end; i += 4) {
    sum += ((buf[i] << 8) | buf[i + 1]) + ((buf[i + 2] << 8) | buf[i + 3]);
  }
  if (i + 1 < end) {
    sum += (buf[i] << 8) | buf[i + 1];
    i += 2;
  }
  if (i < end) sum += buf[i] << 8;
  return sum;
}

/** Fold an unfolded sum to 16 bits and complement it: the checksum field value. */
export function csumFold(sum: number): number {
  // Fold twice through 32 bits, then 16: sums stay below 2^53.
  sum = (sum % 0x100000000) + Math.floor(sum / 0x100000000);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The checksum of one region: 0 means a region that includes a valid checksum field. */
export function ipFastCsum(buf: Uint8Array, off: number, len: number): number {
  return csumFold(csumPartial(buf, off, len));
}

/** Unfolded sum of the IPv4 pseudo-header (RFC 793/768): saddr, daddr, zero+proto, length. */
export function csumTcpUdpMagic(saddr: number, daddr: number, proto: number, len: number): number {
  return (saddr >>> 16) + (saddr & 0xffff) + (daddr >>> 16) + (daddr & 0xffff) + proto + len;
}

/**
 * The check field of a CHECKSUM_PARTIAL packet: the folded pseudo-header
 * sum, not complemented (Linux's ~tcp_v4_check(len, saddr, daddr, 0)); the
 * device adds the header and payload from csum_start and complements.
 */
export function csumPseudoPartial(magic: number): number {
  return ~csumFold(magic) & 0xffff;
}

/**
 * Unfolded sum of the IPv6 pseudo-header (RFC 8200 8.1): source and
 * destination addresses read in place, the upper-layer length and the next
 * header. Feed it to csumPartial/csumFold or csumPseudoPartial like the IPv4 one.
 */
export function csumIpv6Magic(saddr: Uint8Array, sOff: number, daddr: Uint8Array, dOff: number, proto: number, len: number): number {
  let sum = proto + (len >>> 16) + (len & 0xffff);
  for (let i = 0; i < 16; i += 2) {
    sum += ((saddr[sOff + i] << 8) | saddr[sOff + i + 1]) + ((daddr[dOff + i] << 8) | daddr[dOff + i + 1]);
  }
  return sum;
}
