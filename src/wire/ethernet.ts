/** Ethernet II (IEEE 802.3 DIX) header, read in place. */
export const ETH_ALEN = 6;
export const ETH_HLEN = 14;
export const ETH_ZLEN = 60; // minimum frame without FCS
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_8021Q = 0x8100;

export const ethDest = 0; // offset of the destination MAC
export const ethSource = 6;
export const ethProto = 12;

export function ethType(b: Buffer, off: number): number {
  return (b[off + 12] << 8) | b[off + 13];
}

/** Write an Ethernet header at `off`. */
export function ethHeader(b: Buffer, off: number, dst: Uint8Array, src: Uint8Array, proto: number): void {
  b.set(dst, off);
  b.set(src, off + 6);
  b[off + 12] = proto >>> 8;
  b[off + 13] = proto & 255;
}

export const ETH_BROADCAST = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
