/**
 * The network device: one Ethernet link backed by a driver (the TAP, or the
 * in-memory link of the tests). Receive runs eth_type_trans's filtering and
 * hands the frame up by ethertype; transmit counts and passes frames to the
 * driver, which batches them.
 */
import { DropStats, LinkStats, SKB_DROP_REASON } from './snmp.js';
import type { SkBuff } from './skbuff.js';
import { ETH_HLEN, ethType } from '../../wire/ethernet.js';
import { FqSched } from '../sched/sch_fq.js';
import type { TimeSource } from '../../lib/time.js';

/** What a link driver offers the device. */
export interface LinkDriver {
  /**
   * Queue one frame for the wire. The driver copies the bytes before it
   * returns (the caller may reuse the buffer) and sends queued frames in
   * one batch per event-loop turn. Returns false when the frame was dropped.
   */
  xmit(buf: Buffer, off: number, len: number, gsoSize?: number, csumPartial?: boolean): boolean;
}

/** A frame observer (the pcap writer, captures): sees every frame in and out (outbound: PACKET_OUTGOING). */
export interface FrameTap {
  frame(buf: Buffer, off: number, len: number, outbound: boolean): void;
}

/** skb->pkt_type, as eth_type_trans decides it. */
export const PACKET_HOST = 0;
export const PACKET_BROADCAST = 1;
export const PACKET_MULTICAST = 2;
export const PACKET_OTHERHOST = 3;

/** packet_type.func: a protocol's receive for one ethertype; skb.data is past the Ethernet header. */
export type PacketHandler = (skb: SkBuff) => void;

/** dev_queue_xmit's answers (NET_XMIT_*): the frame was taken, or the qdisc dropped it. */
export const NET_XMIT_SUCCESS = 0;
export const NET_XMIT_DROP = 1;

export class NetDevice {
  readonly stats = new LinkStats();
  /** The root qdisc drops every frame (`tc qdisc add dev X root pfifo limit 0`); qdiscDrops counts them. */
  qdiscDropAll = false;
  qdiscDrops = 0;
  /** The root qdisc is fq (sch_fq.ts): frames wait for their departure time; null: none (frames go at once). */
  fq: FqSched | null = null;
  /**
   * dev_queue_xmit's answer for the last frame: the IP output paths, which
   * return nothing of their own, hand it back to the transport (a qdisc
   * drop is NET_XMIT_DROP, positive, as Linux returns it).
   */
  xmitVerdict = NET_XMIT_SUCCESS;
  ifindex = 1;
  #up = false;
  #carrier = true;
  /**
   * netif_running() && netif_carrier_ok(): frames may go out. One flag for
   * the transmit paths, kept by the setters of `up` and the carrier.
   */
  running = false;
  /** Multicast frames for groups we did not join: what a hardware filter would drop. */
  mcFiltered = 0;
  /**
   * NETIF_F_TSO: the driver takes TCP super-segments (up to 64 KB of IP
   * datagram) and cuts them itself, as a TUN device with TSO on does. Off
   * for the TAP and the test link: TCP then cuts them in software (GSO).
   */
  tso = false;
  /**
   * NETIF_F_HW_CSUM: the driver completes TCP checksums itself (a TAP with a
   * vnet header and TUN_F_CSUM): TCP writes only the pseudo-header sum and
   * leaves the rest to the kernel (CHECKSUM_PARTIAL).
   */
  csumOffload = false;
  tap: FrameTap | null = null;
  /** Joined link-layer multicast groups, with users counted (dev_mc_add). */
  #mc: { addr: Buffer; users: number }[] = [];
  /** ptype_base: handlers by ethertype. */
  #ptype = new Map<number, PacketHandler>();

  constructor(
    readonly name: string,
    readonly mac: Buffer,
    public mtu: number,
    public driver: LinkDriver,
    /** The stack's drop reasons: a frame the device refuses is counted there too, as Linux's kfree_skb_reason does. */
    readonly drops: DropStats = new DropStats(),
  ) {}

  /** IFF_UP: the stack brought the device up (Stack.up) or down (shutdown). */
  get up(): boolean {
    return this.#up;
  }

  set up(v: boolean) {
    this.#up = v;
    this.running = v && this.#carrier;
  }

  /** netif_carrier_ok. */
  get carrier(): boolean {
    return this.#carrier;
  }

  /** netif_carrier_off: the link under the device is gone; transmits fail until netif_carrier_on. */
  carrierOff(): void {
    if (!this.#carrier) return;
    this.#carrier = false;
    this.stats.carrier_down_count++;
    this.running = false;
  }

  /** netif_carrier_on. */
  carrierOn(): void {
    if (this.#carrier) return;
    this.#carrier = true;
    this.stats.carrier_up_count++;
    this.running = this.#up;
  }

  /**
   * The drop of a packet for a device that cannot transmit, as
   * __dev_queue_xmit counts it (tx_dropped, SKB_DROP_REASON_DEV_READY);
   * the sender gets -ENETDOWN.
   */
  xmitDropDown(): void {
    this.stats.tx_dropped++;
    this.drops.counts[SKB_DROP_REASON.DEV_READY]++;
  }

  addPacketHandler(ethertype: number, h: PacketHandler): void {
    this.#ptype.set(ethertype, h);
  }

  mcAdd(addr: Buffer): void {
    const e = this.#mc.find((m) => m.addr.equals(addr));
    if (e) e.users++;
    else this.#mc.push({ addr: Buffer.from(addr), users: 1 });
  }

  mcDel(addr: Buffer): void {
    const i = this.#mc.findIndex((m) => m.addr.equals(addr));
    if (i >= 0 && --this.#mc[i].users === 0) this.#mc.splice(i, 1);
  }

  #mcJoined(b: Buffer, off: number): boolean {
    for (const m of this.#mc) {
      const a = m.addr;
      if (a[0] === b[off] && a[1] === b[off + 1] && a[2] === b[off + 2] && a[3] === b[off + 3] && a[4] === b[off + 4] && a[5] === b[off + 5])
        return true;
    }
    return false;
  }

  /**
   * netif_receive_skb with eth_type_trans: one frame from the driver, read
   * in place (skb.data at the Ethernet header). Decides who it is for
   * (pkt_type), pulls the Ethernet header and hands it to the protocol.
   */
  receive(skb: SkBuff): void {
    const st = this.stats;
    const buf = skb.buf;
    const off = skb.data;
    const len = skb.len;
    if (this.tap) this.tap.frame(buf, off, len, false);
    st.rx_packets++;
    st.rx_bytes += len;
    if (!this.up) {
      st.rx_dropped++;
      return;
    }
    if (len < ETH_HLEN) {
      st.rx_length_errors++;
      st.rx_errors++;
      return;
    }
    // eth_type_trans: who the frame is for.
    let pktType: number;
    const d0 = buf[off];
    if (d0 & 1) {
      if ((d0 & buf[off + 1] & buf[off + 2] & buf[off + 3] & buf[off + 4] & buf[off + 5]) === 0xff) {
        pktType = PACKET_BROADCAST;
      } else if (this.#mcJoined(buf, off)) {
        pktType = PACKET_MULTICAST;
        st.multicast++;
      } else {
        // A NIC's multicast filter would never have passed it up; a TAP has
        // none, so this is that filter. Not rx_otherhost_dropped (unicast only).
        this.mcFiltered++;
        return;
      }
    } else {
      const m = this.mac;
      pktType =
        m[0] === d0 && m[1] === buf[off + 1] && m[2] === buf[off + 2] && m[3] === buf[off + 3] && m[4] === buf[off + 4] && m[5] === buf[off + 5]
          ? PACKET_HOST
          : PACKET_OTHERHOST;
    }
    if (pktType === PACKET_OTHERHOST) {
      st.rx_otherhost_dropped++;
      this.drops.counts[SKB_DROP_REASON.OTHERHOST]++;
      return;
    }
    const h = this.#ptype.get(ethType(buf, off));
    if (!h) {
      st.rx_nohandler++;
      this.drops.counts[SKB_DROP_REASON.UNHANDLED_PROTO]++;
      return;
    }
    skb.pktType = pktType;
    skb.macHeader = off;
    skb.pull(ETH_HLEN);
    h(skb);
  }

  /**
   * dev_queue_xmit: a complete frame (Ethernet header included); gsoSize > 0
   * for a TSO super-frame, csumPartial when its TCP checksum is left for the
   * device to finish (CHECKSUM_PARTIAL).
   */
  xmit(buf: Buffer, off: number, len: number, gsoSize = 0, csumPartial = false, tstampNs = 0): void {
    if (!this.running) {
      // Down (never brought up, shut down, or no carrier): __dev_queue_xmit's -ENETDOWN path.
      this.xmitDropDown();
      return;
    }
    if (this.qdiscDropAll) {
      this.qdiscDrops++;
      this.xmitVerdict = NET_XMIT_DROP;
      return;
    }
    this.xmitVerdict = NET_XMIT_SUCCESS;
    if (this.fq !== null && !this.fq.enqueue(buf, off, len, gsoSize, csumPartial, tstampNs)) {
      this.qdiscDrops++;
      this.stats.tx_dropped++;
      this.xmitVerdict = NET_XMIT_DROP;
      return;
    }
    if (this.fq === null) this.xmitNow(buf, off, len, gsoSize, csumPartial);
  }

  /**
   * `tc qdisc replace dev X root fq` (or net.core.default_qdisc = fq): a
   * stage that holds each frame until its departure time; null puts the
   * device back to sending at once (what it held is dropped, as a qdisc
   * being replaced drops its queue).
   */
  setFq(time: TimeSource | null): void {
    this.fq?.reset();
    this.fq = time ? new FqSched(time, (b, o, l, g, c) => this.xmitNow(b, o, l, g, c)) : null;
  }

  /** dev_hard_start_xmit: the frame to the driver, seen by the tap. */
  xmitNow(buf: Buffer, off: number, len: number, gsoSize: number, csumPartial: boolean): void {
    const st = this.stats;
    if (!this.running) {
      this.xmitDropDown();
      return;
    }
    if (this.tap) this.tap.frame(buf, off, len, true);
    if (this.driver.xmit(buf, off, len, gsoSize, csumPartial)) {
      st.tx_packets++;
      st.tx_bytes += len;
    } else {
      st.tx_dropped++;
    }
  }
}
