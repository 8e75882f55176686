/** TCP header (RFC 9293), read in place. */
export const TCP_HLEN = 20;
export const TCPHDR_FIN = 0x01;
export const TCPHDR_SYN = 0x02;
export const TCPHDR_RST = 0x04;
export const TCPHDR_PSH = 0x08;
export const TCPHDR_ACK = 0x10;
export const TCPHDR_URG = 0x20;
export const TCPHDR_ECE = 0x40;
export const TCPHDR_CWR = 0x80;

export const tcpSource = (b: Buffer, o: number): number => (b[o] << 8) | b[o + 1];
export const tcpDest = (b: Buffer, o: number): number => (b[o + 2] << 8) | b[o + 3];
export const tcpSeq = (b: Buffer, o: number): number => b.readUInt32BE(o + 4);
export const tcpAckSeq = (b: Buffer, o: number): number => b.readUInt32BE(o + 8);
/** Header length in bytes. */
export const tcpDoff = (b: Buffer, o: number): number => (b[o + 12] >>> 4) << 2;
export const tcpFlags = (b: Buffer, o: number): number => b[o + 13];
export const tcpWindow = (b: Buffer, o: number): number => (b[o + 14] << 8) | b[o + 15];

export function tcpHeader(
  b: Buffer,
  o: number,
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  doff: number,
  flags: number,
  window: number,
): void {
  b[o] = sport >>> 8;
  b[o + 1] = sport & 255;
  b[o + 2] = dport >>> 8;
  b[o + 3] = dport & 255;
  b.writeUInt32BE(seq >>> 0, o + 4);
  b.writeUInt32BE(ack >>> 0, o + 8);
  b[o + 12] = (doff >>> 2) << 4;
  b[o + 13] = flags;
  b[o + 14] = window >>> 8;
  b[o + 15] = window & 255;
  b[o + 16] = 0;
  b[o + 17] = 0;
  b[o + 18] = 0;
  b[o + 19] = 0;
}
