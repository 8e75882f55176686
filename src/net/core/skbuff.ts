/**
 * The outgoing packet: one buffer with headroom, headers pushed in front of
 * the payload layer by layer (skb_push), as the kernel's sk_buff does. The
 * receive path does not use it: received frames are read in place.
 */

/** Room for a vnet header, Ethernet, and the largest IP and TCP headers. */
export const MAX_HEADER = 12 + 14 + 60 + 60;

export class SkBuff {
  /** Offset of the first valid byte in `buf`. */
  data: number;
  len = 0;
  /** Filled by the IP layer: what an error report needs without re-parsing. */
  daddr = 0;
  protocol = 0;
  /** A TSO super-segment: larger than the MTU, cut by the device (skb_is_gso). */
  gso = false;
  /** The segment size the device cuts a gso skb into (gso_size). */
  gsoSize = 0;
  /** ip_summed == CHECKSUM_PARTIAL: the TCP checksum holds only the pseudo-header sum. */
  csumPartial = false;
  /** An IPv6 packet (skb->protocol == ETH_P_IPV6): the driver writes VIRTIO_NET_HDR_GSO_TCPV6 for a gso skb. */
  ipv6 = false;
  /**
   * A reusable transmit skb (TCP's per-stack one): the next segment is
   * built in the same buffer, so whoever keeps the skb after the xmit call
   * returns (the neighbour's unresolved queue, the loopback backlog) keeps
   * a copy instead (skbHold). Drivers copy before xmit returns.
   */
  scratch = false;

  constructor(
    public buf: Buffer,
    headroom: number,
  ) {
    this.data = headroom;
  }

  /** skb_push: grow at the front by n bytes; returns the new head offset. */
  push(n: number): number {
    if (n > this.data) throw new RangeError(`skb_push: ${n} bytes past ${this.data} of headroom`);
    this.data -= n;
    this.len += n;
    return this.data;
  }

  /** skb_put: grow at the tail by n bytes; returns the offset of the new room. */
  put(n: number): number {
    const at = this.data + this.len;
    if (at + n > this.buf.length) throw new RangeError(`skb_put: ${n} bytes past the tail`);
    this.len += n;
    return at;
  }

  /** skb_pull: drop n bytes from the front. */
  pull(n: number): void {
    this.data += n;
    this.len -= n;
  }

  /** Empty again, `headroom` bytes of headroom (a reused skb starts over). */
  reset(headroom: number): void {
    this.data = headroom;
    this.len = 0;
    this.daddr = 0;
    this.protocol = 0;
    this.gso = false;
    this.gsoSize = 0;
    this.csumPartial = false;
    this.ipv6 = false;
  }

  headroom(): number {
    return this.data;
  }

  /** The bytes as a view (no copy). */
  view(): Buffer {
    return this.buf.subarray(this.data, this.data + this.len);
  }
}

/** alloc_skb(): `size` bytes of payload room after `headroom` bytes of headroom. */
export function allocSkb(size: number, headroom = MAX_HEADER): SkBuff {
  return new SkBuff(Buffer.allocUnsafe(headroom + size), headroom);
}

/**
 * What a holder keeps of `skb` past the call it came in (skb_copy for a
 * shared skb): the skb itself, or for a reusable one a private copy with the
 * same headroom, so headers can still be pushed in front.
 */
export function skbHold(skb: SkBuff): SkBuff {
  if (!skb.scratch) return skb;
  const c = new SkBuff(Buffer.allocUnsafe(skb.data + skb.len), skb.data);
  skb.buf.copy(c.buf, skb.data, skb.data, skb.data + skb.len);
  c.len = skb.len;
  c.daddr = skb.daddr;
  c.protocol = skb.protocol;
  c.gso = skb.gso;
  c.gsoSize = skb.gsoSize;
  c.csumPartial = skb.csumPartial;
  c.ipv6 = skb.ipv6;
  return c;
}
