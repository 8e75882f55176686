/** IPv4 header (RFC 791), read and written in place. */
export const IP_HLEN = 20;
export const IP_DF = 0x4000;
export const IP_MF = 0x2000;
export const IP_OFFSET = 0x1fff;
export const IP_MAX_LEN = 65535;
/** The ECN field of the TOS byte (RFC 3168, include/net/inet_ecn.h). */
export const INET_ECN_MASK = 3;
export const INET_ECN_ECT_0 = 2;
export const INET_ECN_CE = 3;

/** Option types (RFC 791, include/uapi/linux/ip.h IPOPT_*) and the timestamp option's flags. */
export const IPOPT_END = 0;
export const IPOPT_NOOP = 1;
export const IPOPT_RR = 7;
export const IPOPT_TIMESTAMP = 0x44;
export const IPOPT_CIPSO = 0x86;
export const IPOPT_LSRR = 0x83;
export const IPOPT_SSRR = 0x89;
export const IPOPT_RA = 0x94;
export const IPOPT_TS_TSANDADDR = 1;
export const IPOPT_TS_PRESPEC = 3;

export const ipVersion = (b: Buffer, o: number): number => b[o] >>> 4;
/** Header length in bytes. */
export const ipIhl = (b: Buffer, o: number): number => (b[o] & 15) << 2;
export const ipTos = (b: Buffer, o: number): number => b[o + 1];
export const ipTotLen = (b: Buffer, o: number): number => (b[o + 2] << 8) | b[o + 3];
export const ipId = (b: Buffer, o: number): number => (b[o + 4] << 8) | b[o + 5];
/** Flags and fragment offset, raw (IP_DF, IP_MF, IP_OFFSET in 8-byte units). */
export const ipFragOff = (b: Buffer, o: number): number => (b[o + 6] << 8) | b[o + 7];
export const ipTtl = (b: Buffer, o: number): number => b[o + 8];
export const ipProto = (b: Buffer, o: number): number => b[o + 9];
export const ipCheck = (b: Buffer, o: number): number => (b[o + 10] << 8) | b[o + 11];
export const ipSaddr = (b: Buffer, o: number): number => b.readUInt32BE(o + 12);
export const ipDaddr = (b: Buffer, o: number): number => b.readUInt32BE(o + 16);

/** A fragment: MF set or a non-zero offset. */
export const ipIsFragment = (b: Buffer, o: number): boolean => (ipFragOff(b, o) & (IP_MF | IP_OFFSET)) !== 0;

/** Write a 20-byte header without options at `o`; the checksum is filled by ipSendCheck(). */
export function ipHeader(
  b: Buffer,
  o: number,
  totLen: number,
  id: number,
  fragOff: number,
  ttl: number,
  proto: number,
  saddr: number,
  daddr: number,
  tos = 0,
): void {
  b[o] = 0x45;
  b[o + 1] = tos;
  b[o + 2] = totLen >>> 8;
  b[o + 3] = totLen & 255;
  b[o + 4] = (id >>> 8) & 255;
  b[o + 5] = id & 255;
  b[o + 6] = fragOff >>> 8;
  b[o + 7] = fragOff & 255;
  b[o + 8] = ttl;
  b[o + 9] = proto;
  b[o + 10] = 0;
  b[o + 11] = 0;
  b.writeUInt32BE(saddr >>> 0, o + 12);
  b.writeUInt32BE(daddr >>> 0, o + 16);
}
