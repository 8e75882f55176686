/**
 * Addresses and routes: the local table (our addresses and their subnet
 * broadcasts, like the kernel's RTN_LOCAL/RTN_BROADCAST entries) and the
 * main table (a connected route per address, a default gateway), looked up
 * longest prefix first. One device, so no per-device tables.
 */
import { INADDR_BROADCAST, ipv4IsLoopback, ipv4IsMulticast, ipv4IsZeronet, prefixMask } from '../../lib/addr.js';

export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_BROADCAST = 3;
export const RTN_MULTICAST = 5;
export const RTN_UNREACHABLE = 7;

/** struct in_ifaddr: one of our addresses. */
export interface InIfaddr {
  readonly local: number;
  readonly prefixLen: number;
  readonly mask: number;
  readonly broadcast: number;
}

/** A route: `gateway` 0 means the destination is on the link. */
export interface FibRoute {
  readonly dst: number;
  readonly prefixLen: number;
  readonly mask: number;
  readonly gateway: number;
  /** Preferred source address for locally generated packets. */
  readonly prefsrc: number;
}

export class Fib {
  readonly addrs: InIfaddr[] = [];
  /** Sorted by prefix length, longest first. */
  readonly routes: FibRoute[] = [];
  /** Joined IPv4 multicast groups (224.0.0.1 always, RFC 1112). */
  readonly mcGroups = new Set<number>();

  addAddress(local: number, prefixLen: number): InIfaddr {
    if (this.addrs.some((a) => a.local === local)) throw new Error(`address already configured`);
    const mask = prefixMask(prefixLen);
    const ifa: InIfaddr = {
      local,
      prefixLen,
      mask,
      broadcast: prefixLen >= 31 ? 0 : ((local & mask) | ~mask) >>> 0,
    };
    this.addrs.push(ifa);
    // The connected route, as the kernel adds with the address.
    if (prefixLen < 32) this.addRoute((local & mask) >>> 0, prefixLen, 0, local);
    return ifa;
  }

  addRoute(dst: number, prefixLen: number, gateway: number, prefsrc = 0): void {
    const mask = prefixMask(prefixLen);
    if (!prefsrc) prefsrc = this.selectAddr(gateway || dst);
    this.routes.push({ dst: (dst & mask) >>> 0, prefixLen, mask, gateway, prefsrc });
    this.routes.sort((a, b) => b.prefixLen - a.prefixLen);
  }

  /** inet_select_addr: an address of ours on the same subnet, else the first. */
  selectAddr(dst: number): number {
    for (const a of this.addrs) if (((dst ^ a.local) & a.mask) === 0) return a.local;
    return this.addrs.length ? this.addrs[0].local : 0;
  }

  isLocal(addr: number): boolean {
    for (const a of this.addrs) if (a.local === addr) return true;
    return false;
  }

  /** inet_addr_type for an incoming destination. */
  addrType(addr: number): number {
    if (addr === INADDR_BROADCAST) return RTN_BROADCAST;
    if (ipv4IsMulticast(addr)) return RTN_MULTICAST;
    for (const a of this.addrs) {
      if (a.local === addr) return RTN_LOCAL;
      if (a.broadcast === addr && a.broadcast !== 0) return RTN_BROADCAST;
    }
    return RTN_UNICAST;
  }

  /** A source address nobody may use (martian, RFC 1812 5.3.7). */
  isMartianSource(saddr: number): boolean {
    return ipv4IsMulticast(saddr) || saddr === INADDR_BROADCAST || ipv4IsLoopback(saddr) || (ipv4IsZeronet(saddr) && saddr !== 0);
  }

  /** ip_route_output: the route to `daddr`, or null (ENETUNREACH). */
  lookup(daddr: number): FibRoute | null {
    for (const r of this.routes) if (((daddr ^ r.dst) & r.mask) === 0) return r;
    return null;
  }
}

/** ip_idents: per-destination-hash ID counters with a random start, as Linux keeps them. */
export class IpIdents {
  #idents = new Uint16Array(2048);
  #secret: number;
  constructor(rand: () => number) {
    for (let i = 0; i < this.#idents.length; i++) this.#idents[i] = rand() & 0xffff;
    this.#secret = rand();
  }
  next(saddr: number, daddr: number, proto: number): number {
    let h = Math.imul(daddr ^ this.#secret, 0x9e3779b1) ^ Math.imul(saddr, 0x85ebca6b) ^ proto;
    h = (h ^ (h >>> 16)) & 2047;
    return this.#idents[h]++;
  }
}
