/** ARP for IPv4 over Ethernet (RFC 826): the fixed 28-byte form, read in place. */
export const ARP_HLEN = 28;
export const ARPHRD_ETHER = 1;
export const ARPOP_REQUEST = 1;
export const ARPOP_REPLY = 2;

export const arpHrd = (b: Buffer, o: number): number => (b[o] << 8) | b[o + 1];
export const arpPro = (b: Buffer, o: number): number => (b[o + 2] << 8) | b[o + 3];
export const arpHln = (b: Buffer, o: number): number => b[o + 4];
export const arpPln = (b: Buffer, o: number): number => b[o + 5];
export const arpOp = (b: Buffer, o: number): number => (b[o + 6] << 8) | b[o + 7];
/** Offsets of the sender/target hardware and protocol addresses. */
export const ARP_SHA = 8;
export const ARP_SIP = 14;
export const ARP_THA = 18;
export const ARP_TIP = 24;
export const arpSip = (b: Buffer, o: number): number => b.readUInt32BE(o + ARP_SIP);
export const arpTip = (b: Buffer, o: number): number => b.readUInt32BE(o + ARP_TIP);

/** Write an Ethernet/IPv4 ARP packet at `o`. */
export function arpBuild(
  b: Buffer,
  o: number,
  op: number,
  sha: Uint8Array,
  sip: number,
  tha: Uint8Array,
  tip: number,
): void {
  b[o] = 0;
  b[o + 1] = ARPHRD_ETHER;
  b[o + 2] = 0x08;
  b[o + 3] = 0x00;
  b[o + 4] = 6;
  b[o + 5] = 4;
  b[o + 6] = 0;
  b[o + 7] = op;
  b.set(sha, o + ARP_SHA);
  b.writeUInt32BE(sip >>> 0, o + ARP_SIP);
  b.set(tha, o + ARP_THA);
  b.writeUInt32BE(tip >>> 0, o + ARP_TIP);
}
