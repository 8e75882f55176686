/**
 * struct sk_buff: one packet, in either direction, as one buffer and the
 * offsets of its headers in it.
 *
 * Outgoing, the buffer has headroom and each layer pushes its header in
 * front of the payload (skb_push). Incoming, the buffer is the driver's
 * frame, read in place: each layer records where its header starts
 * (mac_header, network_header, transport_header) and pulls past it
 * (skb_pull), so `data`/`len` always describe the current layer. What the
 * driver knows of the frame (the checksum verdict, the GSO size, the ring
 * slot it sits in) and what the layers decide about it (pkt_type, the
 * route type, IP6CB's flags, TCP's control block) travel with it, from the
 * driver through ip_rcv/ipv6_rcv to the transport: nothing about the packet
 * being processed is left on the device or in module state.
 *
 * Received skbs come from a pool (SkbPool): the driver's frame is described,
 * not copied, and the skb goes back to the pool when the receive call
 * returns. Whoever keeps packet bytes past that copies them (reassembly,
 * the receive queues).
 */
import type { RcvPage } from './page.js';

/** Room for a vnet header, Ethernet, and the largest IP and TCP headers. */
export const MAX_HEADER = 12 + 14 + 60 + 60;

/** IP6CB(skb)->flags. */
/** Reassembled, or an atomic fragment: Neighbor Discovery refuses it (IP6SKB_FRAGMENTED). */
export const IP6SKB_FRAGMENTED = 0x10;
/** A hop-by-hop Router Alert was present (IP6SKB_ROUTERALERT): MLD needs one. */
export const IP6SKB_ROUTERALERT = 0x08;

const EMPTY = Buffer.alloc(0);

export class SkBuff {
  /** Offset of the first valid byte in `buf`. */
  data: number;
  len = 0;
  /** Filled by the IP layer: what an error report needs without re-parsing. */
  daddr = 0;
  protocol = 0;
  /** A TSO super-segment: larger than the MTU, cut by the device (skb_is_gso). */
  gso = false;
  /**
   * The segment size of a GSO skb (gso_size): the size the device cuts an
   * outgoing one into, or the size a received GRO super-frame was made of
   * (0 for an ordinary frame).
   */
  gsoSize = 0;
  /** skb->tstamp on transmit: the earliest departure time in ns of the stack's clock (0: now); the fq stage holds the frame till then. */
  tstamp = 0;
  /** ip_summed == CHECKSUM_PARTIAL: the TCP checksum holds only the pseudo-header sum. */
  csumPartial = false;
  /**
   * ip_summed == CHECKSUM_UNNECESSARY on receive: the device vouched for the
   * TCP/UDP checksum (VIRTIO_NET_HDR_F_DATA_VALID, or NEEDS_CSUM: never
   * computed because the packet never left the host; looped-back packets).
   */
  csumValid = false;
  /** An IPv6 packet (skb->protocol == ETH_P_IPV6): the driver writes VIRTIO_NET_HDR_GSO_TCPV6 for a gso skb. */
  ipv6 = false;
  /**
   * A reusable transmit skb (TCP's per-stack one): the next segment is
   * built in the same buffer, so whoever keeps the skb after the xmit call
   * returns (the neighbour's unresolved queue, the loopback backlog) keeps
   * a copy instead (skbHold). Drivers copy before xmit returns.
   */
  scratch = false;

  // --- receive ------------------------------------------------------------
  /** Header offsets in buf (-1: none): Ethernet (none for a reassembled or looped-back packet), IP, transport. */
  macHeader = -1;
  networkHeader = -1;
  transportHeader = -1;
  /** skb->pkt_type: PACKET_HOST etc., as eth_type_trans decided. */
  pktType = 0;
  /** The input route's type (skb_rtable(skb)->rt_type): RTN_LOCAL, RTN_BROADCAST, RTN_MULTICAST. */
  rtType = 0;
  /** IP6CB(skb)->flags: IP6SKB_*. */
  ip6Flags = 0;
  /** skb_iif: the ifindex of the device it came in on (LOOPBACK_IFINDEX for one looped back; 0 for a sent skb). */
  iif = 0;
  /**
   * The driver's ring slot the frame sits in, when the driver lets the
   * stack keep it (TCP references a super-frame's payload there instead of
   * copying it, and the driver then gives the slot a new buffer); null for
   * frames from anywhere else.
   */
  page: RcvPage | null = null;
  /**
   * skb->cb: the transport's per-packet control block, made once for a
   * pooled skb by the first protocol that needs one (TCP_SKB_CB) and
   * reused for every packet the skb carries after.
   */
  cb: object | null = null;

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
    this.tstamp = 0;
  }

  headroom(): number {
    return this.data;
  }

  /** The bytes as a view (no copy). */
  view(): Buffer {
    return this.buf.subarray(this.data, this.data + this.len);
  }
}

/** The loopback device's ifindex (LOOPBACK_IFINDEX). */
export const LOOPBACK_IFINDEX = 1;

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
  c.tstamp = skb.tstamp;
  return c;
}

/**
 * The receive skbs of one stack: a free list, so receiving a frame
 * allocates nothing once the pool holds as many skbs as receive calls
 * nest (one, or a few while the loopback backlog drains).
 */
export class SkbPool {
  #free: SkBuff[] = [];

  /** An skb describing `len` bytes of `buf` at `off`, every receive field at its default. */
  get(buf: Buffer, off: number, len: number): SkBuff {
    const skb = this.#free.pop() ?? new SkBuff(EMPTY, 0);
    skb.buf = buf;
    skb.data = off;
    skb.len = len;
    return skb;
  }

  /** kfree_skb: back to the pool, holding no reference to the frame. */
  put(skb: SkBuff): void {
    skb.buf = EMPTY;
    skb.data = 0;
    skb.len = 0;
    skb.gsoSize = 0;
    skb.csumValid = false;
    skb.ipv6 = false;
    skb.macHeader = -1;
    skb.networkHeader = -1;
    skb.transportHeader = -1;
    skb.pktType = 0;
    skb.rtType = 0;
    skb.ip6Flags = 0;
    skb.iif = 0;
    skb.page = null;
    this.#free.push(skb);
  }
}
