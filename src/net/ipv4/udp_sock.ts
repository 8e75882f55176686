import { AF_INET, IPPROTO_UDP, SOCK_DGRAM } from '../../uapi.js';
import { Sock, type SockProt, SYSCTL_RMEM_DEFAULT, SYSCTL_WMEM_DEFAULT } from '../core/sock.js';
/**
 * struct udp_sock and what hangs off it: the received-datagram queue entry
 * (UdpSkb), the receive queue, and the constants of the UDP socket calls.
 * One socket type serves both families, as Linux's udp_table holds AF_INET
 * and AF_INET6 sockets side by side: IPv4 addresses are uint32 (host order)
 * in rcvSaddr/saddr/daddr, an AF_INET6 socket adds 16-byte v6 addresses and
 * keeps the v4 fields as Linux keeps inet_rcv_saddr for it (0 when bound to
 * ::, the v4 address when bound to a v4-mapped one, LOOPBACK4_IPV6
 * otherwise), so the IPv4 lookup needs no family branch beyond ipv6only.
 *
 * Logic lives in udp.ts (input, output, socket calls) and udp_table.ts
 * (hashing and lookup); this file is data.
 */


/** sk_state for UDP: TCP_CLOSE unconnected, TCP_ESTABLISHED after connect(). */
export const UDP_CLOSE = 7;
export const UDP_ESTABLISHED = 1;




/** The largest UDP payload over IPv4: 65535 - 20 (IP) - 8 (UDP). */
export const UDP_MAX_PAYLOAD4 = 65_507;
/**
 * The largest UDP payload over IPv6 that Linux sends (non-jumbo): the
 * payload length field's 65535 less the UDP header (ip6_append_data with
 * maxnonfragsize = 40 + IPV6_MAXPLEN under the default PMTUDISC_WANT).
 */
export const UDP_MAX_PAYLOAD6 = 65_527;


/**
 * Receive-buffer charge of one datagram, as skb->truesize for a linear skb
 * of the received frame: SKB_DATA_ALIGN(frame + NET_SKB_PAD) plus the
 * aligned sizes of struct sk_buff (256) and skb_shared_info (320).
 */
export function udpTruesize(frameLen: number): number {
  return ((frameLen + 64 + 63) & ~63) + 576;
}

/** A corked datagram (MSG_MORE / UDP_CORK): its destination, fixed by the first send, and the data so far. */
export class UdpPending {
  readonly chunks: Buffer[] = [];
  len = 0;
  constructor(
    /** Over IPv6 (addr6), else IPv4 (daddr). */
    readonly v6: boolean,
    readonly daddr: number,
    readonly addr6: Uint8Array | null,
    readonly dport: number,
  ) {}
}

/** One received datagram on a socket's queue (an skb with its UDP_SKB_CB). */
export class UdpSkb {
  constructor(
    /** The payload (a copy: the frame it came in is the driver's). */
    readonly data: Buffer,
    readonly truesize: number,
    /** AF_INET or AF_INET6: the family of the packet (an AF_INET6 socket reports v4 sources v4-mapped). */
    readonly family: number,
    /** IPv4 source (family AF_INET). */
    readonly saddr: number,
    readonly sport: number,
    /** IPv6 source (family AF_INET6), else null. */
    readonly saddr6: Uint8Array | null,
  ) {}
  /**
   * IP_PKTINFO / IPV6_RECVPKTINFO's record (PKTINFO_SKB_CB), kept when the
   * socket asked for it at queueing: the ifindex it came in on, the
   * header's destination and the local address a reply goes from.
   */
  pktinfo: UdpPktinfo | null = null;
  /** skb->tstamp: when it was received (wall-clock ms), taken when the socket asked for receive stamps; 0 = none. */
  tstamp = 0;
}

/** What IP_PKTINFO / IPV6_RECVPKTINFO report of a datagram. */
export interface UdpPktinfo {
  ifindex: number;
  daddr: number;
  specDst: number;
  daddr6: Uint8Array | null;
}

/** A FIFO of received datagrams; a head index instead of Array.shift (O(1) dequeue). */
export class UdpQueue {
  #a: (UdpSkb | undefined)[] = [];
  #head = 0;
  get length(): number {
    return this.#a.length - this.#head;
  }
  push(s: UdpSkb): void {
    this.#a.push(s);
  }
  peek(): UdpSkb | undefined {
    return this.#a[this.#head];
  }
  shift(): UdpSkb | undefined {
    if (this.#head >= this.#a.length) return undefined;
    const s = this.#a[this.#head];
    this.#a[this.#head++] = undefined;
    if (this.#head > 64 && this.#head * 2 > this.#a.length) {
      this.#a = this.#a.slice(this.#head);
      this.#head = 0;
    }
    return s;
  }
  clear(): void {
    this.#a = [];
    this.#head = 0;
  }
}

/**
 * struct udp_sock: the inet_sock fields UDP adds to Sock (the source it
 * sends from, hop limits, corking) and its udp_table links. Both families'
 * sockets have the IPv6 address arrays (sk_v6_rcv_saddr, np->saddr,
 * sk_v6_daddr); an AF_INET socket leaves them ::.
 */
export class UdpSock extends Sock {
  /** udp_prot or udpv6_prot. */
  declare prot: SockProt<UdpSock> | null;
  declare v6RcvSaddr: Uint8Array;
  declare v6Daddr: Uint8Array;
  /** inet_saddr: the source address we send from (0 = the route's). */
  saddr = 0;
  readonly v6Saddr = new Uint8Array(16);
  /** sk_drops: datagrams dropped at this socket (receive buffer full). */
  drops = 0;
  /** IP_TTL (-1: the default 64), IP_MULTICAST_TTL; IPV6_UNICAST_HOPS (-1: default). */
  ttl = -1;
  mcTtl = 1;
  hopLimit = -1;
  /** IPV6_MULTICAST_HOPS (default 1) and IPV6_TCLASS. */
  mcHops = 1;
  tclass = 0;
  /** UDP_CORK, and the datagram being corked (up->pending). */
  corked = false;
  pending: UdpPending | null = null;
  readonly receiveQueue = new UdpQueue();
  // udp_table links
  /** In the table (hashed by port and by address+port). */
  hashed = false;
  /** udp_portaddr_hash of the address the socket is hashed under in hslot2. */
  hash2 = 0;
  /** The SO_REUSEPORT group this socket belongs to (shared array), or null. */
  reuseportGroup: UdpSock[] | null = null;
  closed = false;

  constructor(family: number = AF_INET) {
    super(SOCK_DGRAM, IPPROTO_UDP, SYSCTL_WMEM_DEFAULT, SYSCTL_RMEM_DEFAULT);
    this.family = family;
    this.v6RcvSaddr = new Uint8Array(16);
    this.v6Daddr = new Uint8Array(16);
  }
}
