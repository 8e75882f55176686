/** UDP header (RFC 768). */
export const UDP_HLEN = 8;
export const udpSource = (b: Buffer, o: number): number => (b[o] << 8) | b[o + 1];
export const udpDest = (b: Buffer, o: number): number => (b[o + 2] << 8) | b[o + 3];
export const udpLen = (b: Buffer, o: number): number => (b[o + 4] << 8) | b[o + 5];
export const udpCheck = (b: Buffer, o: number): number => (b[o + 6] << 8) | b[o + 7];

/**
 * A UDP header at `at` with the checksum field zero, and the payload copied
 * after it (udp_send_skb's part before the checksum, which needs the
 * family's pseudo-header).
 */
export function udpBuild(b: Buffer, at: number, sport: number, dport: number, data: Uint8Array): number {
  const ulen = UDP_HLEN + data.length;
  b[at] = sport >>> 8;
  b[at + 1] = sport & 255;
  b[at + 2] = dport >>> 8;
  b[at + 3] = dport & 255;
  b[at + 4] = ulen >>> 8;
  b[at + 5] = ulen & 255;
  b[at + 6] = 0;
  b[at + 7] = 0;
  b.set(data, at + UDP_HLEN);
  return ulen;
}
