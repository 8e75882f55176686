/**
 * IPv6 routes (net/ipv6/route.c, one device): prefix routes (connected,
 * from our addresses and from Router Advertisements' on-link prefixes, the
 * latter with lifetimes), default routes (configured, or one per router
 * that advertised a non-zero router lifetime), and the path-MTU exceptions
 * learned from Packet Too Big (rt6_exception, ip6_rt_mtu_expires 10 min).
 * Few entries: looked up by a linear scan, longest prefix first, on
 * 16-byte views (no strings).
 */
import { ipv6Equal, ipv6PrefixEqual } from '../../lib/addr.js';
import { IPV6_MIN_MTU } from '../../wire/ipv6.js';

/** Route flags (RTF_*), the ones this table uses. */
export const RTF_GATEWAY = 0x0002;
export const RTF_DEFAULT = 0x00010000;
export const RTF_ADDRCONF = 0x00040000;
export const RTF_PREFIX_RT = 0x00080000;

export interface Rt6Info {
  readonly dst: Buffer;
  readonly prefixLen: number;
  /** Next hop, or null when the destination is on the link. */
  readonly gateway: Buffer | null;
  flags: number;
  /** Absolute ms; Infinity for a permanent route. */
  expires: number;
}

interface PmtuEntry {
  addr: Buffer;
  mtu: number;
  expires: number;
}

const MAX_PMTU_ENTRIES = 1024;

export class Fib6 {
  readonly routes: Rt6Info[] = [];
  #pmtu: PmtuEntry[] = [];
  /** ip6_rt_mtu_expires, ms. */
  mtuExpires = 600_000;

  add(dst: Uint8Array, prefixLen: number, gateway: Uint8Array | null, flags = 0, expires = Infinity): Rt6Info {
    const d = Buffer.alloc(16);
    // Keep only the prefix bits: the route's key.
    for (let i = 0; i < 16; i++) {
      const bits = Math.max(0, Math.min(8, prefixLen - i * 8));
      d[i] = dst[i] & ((0xff << (8 - bits)) & 0xff);
    }
    const rt: Rt6Info = { dst: d, prefixLen, gateway: gateway ? Buffer.from(gateway.subarray(0, 16)) : null, flags: flags | (gateway ? RTF_GATEWAY : 0), expires };
    this.routes.push(rt);
    this.routes.sort((a, b) => b.prefixLen - a.prefixLen);
    return rt;
  }

  del(rt: Rt6Info): void {
    const i = this.routes.indexOf(rt);
    if (i >= 0) this.routes.splice(i, 1);
  }

  /** The prefix route for dst/prefixLen (addrconf_get_prefix_route), gateway-less. */
  getPrefixRoute(dst: Uint8Array, prefixLen: number): Rt6Info | null {
    for (const r of this.routes) if (r.prefixLen === prefixLen && !r.gateway && ipv6PrefixEqual(r.dst, 0, dst, 0, prefixLen)) return r;
    return null;
  }

  /** rt6_get_dflt_router: the default route through `gw` learned from its RA. */
  getDefaultRouter(gw: Uint8Array, off = 0): Rt6Info | null {
    for (const r of this.routes) if (r.prefixLen === 0 && r.gateway && r.flags & RTF_DEFAULT && ipv6Equal(r.gateway, 0, gw, off)) return r;
    return null;
  }

  /** ip6_route_output: the most specific unexpired route to `daddr`. */
  lookup(daddr: Uint8Array, off: number, now: number): Rt6Info | null {
    for (const r of this.routes) {
      if (r.expires <= now) continue;
      if (ipv6PrefixEqual(r.dst, 0, daddr, off, r.prefixLen)) return r;
    }
    return null;
  }

  /** Drop expired routes (the fib6 gc). */
  gc(now: number): void {
    for (let i = this.routes.length - 1; i >= 0; i--) if (this.routes[i].expires <= now) this.routes.splice(i, 1);
    this.#pmtu = this.#pmtu.filter((e) => e.expires > now);
  }

  /** The path MTU learned for `daddr`, or 0. */
  pmtu(daddr: Uint8Array, off: number, now: number): number {
    const t = this.#pmtu;
    for (let i = 0; i < t.length; i++) {
      const e = t[i];
      if (ipv6Equal(e.addr, 0, daddr, off)) return e.expires > now ? e.mtu : 0;
    }
    return 0;
  }

  /**
   * rt6_do_update_pmtu: a Packet Too Big lowers the path MTU to `daddr`
   * (never below 1280, RFC 8201 and Linux since RFC 8021; never raises it).
   * Returns whether it changed.
   */
  updatePmtu(daddr: Uint8Array, off: number, mtu: number, current: number, now: number): boolean {
    if (mtu < IPV6_MIN_MTU) mtu = IPV6_MIN_MTU;
    if (mtu >= current) return false;
    for (const e of this.#pmtu) {
      if (ipv6Equal(e.addr, 0, daddr, off)) {
        e.mtu = mtu;
        e.expires = now + this.mtuExpires;
        return true;
      }
    }
    if (this.#pmtu.length >= MAX_PMTU_ENTRIES) this.#pmtu.shift();
    this.#pmtu.push({ addr: Buffer.from(daddr.subarray(off, off + 16)), mtu, expires: now + this.mtuExpires });
    return true;
  }

  /** rt6_mtu_change: the link MTU went down; no exception may exceed it. */
  clampPmtu(mtu: number): void {
    for (const e of this.#pmtu) if (e.mtu > mtu) e.mtu = mtu;
  }
}
