/** UDP header (RFC 768). */
export const UDP_HLEN = 8;
export const udpSource = (b: Buffer, o: number): number => (b[o] << 8) | b[o + 1];
export const udpDest = (b: Buffer, o: number): number => (b[o + 2] << 8) | b[o + 3];
export const udpLen = (b: Buffer, o: number): number => (b[o + 4] << 8) | b[o + 5];
export const udpCheck = (b: Buffer, o: number): number => (b[o + 6] << 8) | b[o + 7];
