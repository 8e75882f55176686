/**
 * IPv6 address configuration (net/ipv6/addrconf.c) for our one link:
 * static addresses from the config, the EUI-64 link-local address,
 * duplicate address detection before an address is used (RFC 4862 5.4,
 * Linux's dad_transmits=1 and its random start delay), router
 * solicitations once the link-local address is ours (RFC 4861 6.3.7),
 * Router Advertisement prefixes (on-link routes, optional SLAAC with the
 * two-hour rule of RFC 4862 5.5.3) and the address lifetimes.
 *
 * Also the IPv6 contract's address queries: ipv6ChooseSaddr (RFC 6724,
 * simplified), ipv6AddrIsLocal and ipv6PathMtu.
 */
import {
  formatIpv6,
  formatMac,
  ipv6Equal,
  ipv6IsLinkLocal,
  ipv6IsLoopback,
  ipv6IsMulticast,
  ipv6LinkLocalEui64,
  ipv6SolicitedNodeMcast,
} from '../../lib/addr.js';
import { Timer } from '../../lib/time.js';
import { IPV6_MIN_MTU } from '../../wire/ipv6.js';
import { RTF_ADDRCONF, RTF_PREFIX_RT } from './route.js';
import type { Net } from '../core/net.js';

// ifa_flags (linux/if_addr.h).
export const IFA_F_NODAD = 0x02;
export const IFA_F_DADFAILED = 0x08;
export const IFA_F_DEPRECATED = 0x20;
export const IFA_F_TENTATIVE = 0x40;
export const IFA_F_PERMANENT = 0x80;

// Scopes (IPV6_ADDR_SCOPE_*, the multicast scope values).
export const IPV6_ADDR_SCOPE_NODELOCAL = 0x01;
export const IPV6_ADDR_SCOPE_LINKLOCAL = 0x02;
export const IPV6_ADDR_SCOPE_SITELOCAL = 0x05;
export const IPV6_ADDR_SCOPE_GLOBAL = 0x0e;

/** The scope of an address (ipv6_addr_scope): multicast by its scope field, unicast by prefix. */
export function ipv6AddrScope(a: Uint8Array, off = 0): number {
  if (ipv6IsMulticast(a, off)) return a[off + 1] & 0x0f;
  if (ipv6IsLinkLocal(a, off)) return IPV6_ADDR_SCOPE_LINKLOCAL;
  if (ipv6IsLoopback(a, off)) return IPV6_ADDR_SCOPE_NODELOCAL;
  if (a[off] === 0xfe && (a[off + 1] & 0xc0) === 0xc0) return IPV6_ADDR_SCOPE_SITELOCAL;
  return IPV6_ADDR_SCOPE_GLOBAL;
}

/** struct ipv6_devconf: the per-link IPv6 settings, Linux's defaults. */
export class Ipv6Devconf {
  hop_limit = 64;
  /** The link MTU for IPv6 (an RA's MTU option may lower it). */
  mtu6 = 1500;
  accept_ra = 1;
  accept_ra_defrtr = 1;
  accept_ra_pinfo = 1;
  accept_ra_mtu = 1;
  accept_ra_min_hop_limit = 1;
  /** SLAAC from RA prefixes with the A flag. Linux's default is 1; ours is the config's ipv6Slaac (off). */
  autoconf = 0;
  accept_dad = 1;
  dad_transmits = 1;
  enhanced_dad = 1;
  /**
   * Router solicitations at start (router_solicitations). Linux's default
   * is -1 (no limit); ours is RFC 4861's MAX_RTR_SOLICITATIONS, 3. The
   * spacing is Linux's: the first interval 4 s +-10%, then RFC 7559's
   * doubling (x1.9..2.1) up to router_solicitation_max_interval.
   */
  rtr_solicits = 3;
  rtr_solicit_interval = 4_000;
  rtr_solicit_max_interval = 3_600_000;
  rtr_solicit_delay = 1_000;
  /** RFC 3810 robustness variable and unsolicited report interval (MLDv2). */
  mldv2_unsolicited_report_interval = 1_000;
  mc_qrv = 2;
  max_hbh_opts_number = 8;
  max_dst_opts_number = 8;
}

/** struct inet6_ifaddr. */
export class Inet6Ifaddr {
  flags: number;
  readonly scope: number;
  /** Solicited-node group of the address (joined while the address exists). */
  readonly snmc: Buffer;
  dadProbes = 0;
  readonly dadNonce = Buffer.alloc(6);
  readonly dadTimer: Timer;
  /** Lifetimes in ms (Infinity: forever), counted from `tstamp`. */
  validLft = Infinity;
  preferLft = Infinity;
  tstamp = 0;
  dead = false;
  constructor(
    readonly addr: Buffer,
    readonly prefixLen: number,
    flags: number,
    dadWork: (ifp: Inet6Ifaddr) => void,
  ) {
    this.flags = flags;
    this.scope = ipv6AddrScope(addr);
    this.snmc = ipv6SolicitedNodeMcast(addr);
    this.dadTimer = new Timer(() => dadWork(this));
  }
  /** Usable as a source and for bind(): DAD done and passed. */
  get usable(): boolean {
    return (this.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)) === 0 && !this.dead;
  }
}

/** An address to configure: the config's --ipv6 ADDR/PREFIX. */
export interface Ipv6AddrConfig {
  addr: Buffer;
  prefix: number;
}

/** RFC 4862 5.5.3 e): a prefix's valid lifetime is not cut below two hours by an unauthenticated RA. */
const TWO_HOURS = 7_200_000;

export class Addrconf {
  readonly addrs: Inet6Ifaddr[] = [];
  #rsTimer = new Timer(() => this.#rsTimerFn());
  #rsProbes = 0;
  #rsInterval = 0;
  /** IF_RA_RCVD: a Router Advertisement arrived; stop soliciting. */
  raReceived = false;
  #verifyTimer = new Timer(() => this.verify());

  constructor(private stack: Net) {}

  get #cnf(): Ipv6Devconf {
    return this.stack.ipv6.cnf;
  }

  /** ipv6_get_ifaddr: our address (any state). */
  getIfaddr(a: Uint8Array, off = 0): Inet6Ifaddr | null {
    const list = this.addrs;
    for (let i = 0; i < list.length; i++) if (ipv6Equal(list[i].addr, 0, a, off)) return list[i];
    return null;
  }

  /** ipv6_chk_addr: a usable (non-tentative) address of ours. */
  isLocal(a: Uint8Array, off = 0): boolean {
    const list = this.addrs;
    for (let i = 0; i < list.length; i++) {
      const ifp = list[i];
      if (ifp.addr[15] === a[off + 15] && ipv6Equal(ifp.addr, 0, a, off)) return ifp.usable;
    }
    return false;
  }

  /** ipv6_get_lladdr: a usable link-local address, copied into out. */
  getLladdr(out: Uint8Array): boolean {
    for (const ifp of this.addrs) {
      if (ifp.scope === IPV6_ADDR_SCOPE_LINKLOCAL && ifp.usable) {
        out.set(ifp.addr);
        return true;
      }
    }
    return false;
  }

  /**
   * ipv6_add_addr + inet6_addr_add: the address, its prefix route, and
   * (once the link is up) its solicited-node group and DAD.
   */
  addAddress(addr: Uint8Array, prefixLen: number, flags = IFA_F_PERMANENT): Inet6Ifaddr {
    const existing = this.getIfaddr(addr);
    if (existing) return existing;
    const ifp = new Inet6Ifaddr(Buffer.from(addr.subarray(0, 16)), prefixLen, flags, (x) => this.#dadWork(x));
    ifp.tstamp = this.stack.time.clock.now();
    this.addrs.push(ifp);
    const fib = this.stack.ipv6.fib;
    // The connected route (addrconf_prefix_route), unless a /128 or already there.
    if (prefixLen < 128 && !fib.getPrefixRoute(ifp.addr, prefixLen)) fib.add(ifp.addr, prefixLen, null, flags & IFA_F_PERMANENT ? 0 : RTF_ADDRCONF);
    if (this.stack.dev.up) this.#dadStart(ifp);
    return ifp;
  }

  /** ipv6_del_addr: leave its group, forget it. */
  delAddress(ifp: Inet6Ifaddr): void {
    const i = this.addrs.indexOf(ifp);
    if (i < 0) return;
    this.addrs.splice(i, 1);
    ifp.dead = true;
    this.stack.time.timers.del(ifp.dadTimer);
    this.stack.ipv6.mld.leave(ifp.snmc);
  }

  /** addrconf_dev_config at link-up: the EUI-64 link-local address, then DAD for every address. */
  up(): void {
    const ll = ipv6LinkLocalEui64(this.stack.dev.mac);
    const fib = this.stack.ipv6.fib;
    if (!fib.getPrefixRoute(ll, 64)) fib.add(ll, 64, null);
    if (!this.getIfaddr(ll)) {
      const ifp = new Inet6Ifaddr(ll, 64, IFA_F_PERMANENT, (x) => this.#dadWork(x));
      ifp.tstamp = this.stack.time.clock.now();
      // The link-local address first: it is the source of NS, RS and MLD.
      this.addrs.unshift(ifp);
    }
    for (const ifp of this.addrs) this.#dadStart(ifp);
  }

  /** addrconf_dad_begin: join the solicited-node group, then probe after a random delay. */
  #dadStart(ifp: Inet6Ifaddr): void {
    const stack = this.stack;
    const cnf = this.#cnf;
    stack.ipv6.mld.join(ifp.snmc);
    if (cnf.accept_dad < 1 || cnf.dad_transmits === 0 || ifp.flags & IFA_F_NODAD) {
      ifp.flags &= ~IFA_F_TENTATIVE;
      this.#dadCompleted(ifp);
      return;
    }
    ifp.flags |= IFA_F_TENTATIVE;
    ifp.flags &= ~IFA_F_DADFAILED;
    ifp.dadProbes = cnf.dad_transmits;
    // RFC 7527 enhanced DAD: a nonce recognises our own NS looped back.
    if (cnf.enhanced_dad) {
      do for (let i = 0; i < 6; i++) ifp.dadNonce[i] = stack.random.u32() & 0xff;
      while (ifp.dadNonce.every((x) => x === 0));
    } else {
      ifp.dadNonce.fill(0);
    }
    // addrconf_dad_kick: a random delay below rtr_solicit_delay (RFC 4862 5.4.2).
    const delay = Math.floor((stack.random.u32() / 0x100000000) * (cnf.rtr_solicit_delay || 1));
    stack.time.timers.mod(ifp.dadTimer, stack.time.clock.now() + delay);
  }

  /** addrconf_dad_work: one NS per dad_transmits, retrans_time apart; then the address is ours. */
  #dadWork(ifp: Inet6Ifaddr): void {
    if (ifp.dead || !(ifp.flags & IFA_F_TENTATIVE) || ifp.flags & IFA_F_DADFAILED) return;
    const stack = this.stack;
    if (ifp.dadProbes === 0) {
      ifp.flags &= ~IFA_F_TENTATIVE;
      this.#dadCompleted(ifp);
      return;
    }
    ifp.dadProbes--;
    stack.time.timers.mod(ifp.dadTimer, stack.time.clock.now() + stack.ipv6.ndisc.tbl.parms.retransTime);
    stack.ipv6.ndisc.sendNs(ifp.addr, ifp.snmc, null, this.#cnf.enhanced_dad ? ifp.dadNonce : null);
  }

  /** addrconf_dad_completed: usable now; the first link-local address starts router solicitation. */
  #dadCompleted(ifp: Inet6Ifaddr): void {
    const stack = this.stack;
    // Rare (once per address): at info, so operators and tests see when an address is usable.
    stack.log.info({ interface: stack.dev.name, addr: formatIpv6(ifp.addr), prefix: ifp.prefixLen }, 'IPv6 address ready');
    const cnf = this.#cnf;
    if (ifp.scope === IPV6_ADDR_SCOPE_LINKLOCAL && cnf.accept_ra && cnf.rtr_solicits !== 0 && this.#rsProbes === 0 && !this.raReceived) {
      stack.ipv6.ndisc.sendRs(ifp.addr);
      this.#rsProbes = 1;
      this.#rsInterval = this.#backoff(cnf.rtr_solicit_interval, 0.9);
      stack.time.timers.mod(this.#rsTimer, stack.time.clock.now() + this.#rsInterval);
    }
  }

  /** rfc3315_s14_backoff_*: `t` times a random factor in [lo, lo + 0.2]. */
  #backoff(t: number, lo: number): number {
    return Math.floor(t * (lo + (this.stack.random.u32() % 200_001) / 1_000_000));
  }

  /** addrconf_rs_timer: solicit again (RFC 7559 backoff) until an RA arrives or router_solicitations are sent. */
  #rsTimerFn(): void {
    const stack = this.stack;
    const cnf = this.#cnf;
    if (this.raReceived || !stack.dev.up) return;
    if (cnf.rtr_solicits >= 0 && this.#rsProbes >= cnf.rtr_solicits) {
      stack.log.info({ interface: stack.dev.name }, 'no IPv6 routers present');
      return;
    }
    const ll = Buffer.alloc(16);
    if (!this.getLladdr(ll)) return;
    this.#rsProbes++;
    stack.ipv6.ndisc.sendRs(ll);
    this.#rsInterval = this.#backoff(this.#rsInterval, 1.9);
    if (this.#rsInterval > cnf.rtr_solicit_max_interval) this.#rsInterval = this.#backoff(cnf.rtr_solicit_max_interval, 0.9);
    // After the last one, one more wake-up a little later only to say there was no answer.
    const last = cnf.rtr_solicits >= 0 && this.#rsProbes >= cnf.rtr_solicits;
    stack.time.timers.mod(this.#rsTimer, stack.time.clock.now() + (last ? cnf.rtr_solicit_delay : this.#rsInterval));
  }

  /** Router solicitations sent so far (tests, status). */
  get rsProbes(): number {
    return this.#rsProbes;
  }

  /**
   * addrconf_dad_failure: another node has the address. It stays
   * configured, marked dadfailed (and tentative), and is never used.
   * An address learned by SLAAC is removed instead, as Linux does.
   */
  dadFailure(ifp: Inet6Ifaddr, mac: Uint8Array | null): void {
    const stack = this.stack;
    if (ifp.flags & IFA_F_DADFAILED) return;
    stack.log.warn(
      { interface: stack.dev.name, addr: formatIpv6(ifp.addr), by: mac ? formatMac(mac) : null },
      `IPv6 duplicate address ${formatIpv6(ifp.addr)} used by ${mac ? formatMac(mac) : 'another node'} detected!`,
    );
    stack.time.timers.del(ifp.dadTimer);
    ifp.flags |= IFA_F_DADFAILED | IFA_F_TENTATIVE;
    if (!(ifp.flags & IFA_F_PERMANENT)) this.delAddress(ifp);
  }

  /**
   * addrconf_prefix_rcv: a Prefix Information option of a Router
   * Advertisement (RFC 4861 6.3.4, RFC 4862 5.5.3). `b` at `o` is the
   * 32-byte option.
   */
  prefixRcv(b: Buffer, o: number): void {
    const stack = this.stack;
    const cnf = this.#cnf;
    const prefixLen = b[o + 2];
    const flags = b[o + 3];
    const valid = b.readUInt32BE(o + 4);
    const preferred = b.readUInt32BE(o + 8);
    const prefix = b.subarray(o + 16, o + 32);
    if (prefixLen > 128) return;
    if (ipv6IsMulticast(prefix) || ipv6IsLinkLocal(prefix)) return;
    if (preferred > valid) {
      stack.log.warn({ prefix: formatIpv6(prefix) }, 'addrconf: prefix option has invalid lifetime');
      return;
    }
    const now = stack.time.clock.now();
    const lft = (s: number) => (s === 0xffffffff ? Infinity : s * 1000);
    const fib = stack.ipv6.fib;
    if (flags & 0x80) {
      // On-link: a prefix route with the valid lifetime (0 removes it).
      const rt = fib.getPrefixRoute(prefix, prefixLen);
      if (valid === 0) {
        if (rt && rt.flags & RTF_ADDRCONF) fib.del(rt);
      } else if (rt) {
        if (rt.flags & RTF_ADDRCONF) rt.expires = now + lft(valid);
      } else {
        fib.add(prefix, prefixLen, null, RTF_ADDRCONF | RTF_PREFIX_RT, now + lft(valid));
      }
    }
    if (flags & 0x40 && cnf.autoconf) {
      if (prefixLen !== 64) {
        stack.log.warn({ prefix: formatIpv6(prefix), prefixLen }, 'IPv6 addrconf: prefix with wrong length');
        return;
      }
      const addr = Buffer.alloc(16);
      prefix.copy(addr, 0, 0, 8);
      ipv6LinkLocalEui64(stack.dev.mac).copy(addr, 8, 8, 16);
      let ifp = this.getIfaddr(addr);
      if (!ifp) {
        if (valid === 0) return;
        ifp = this.addAddress(addr, 64, 0);
        ifp.validLft = lft(valid);
        ifp.preferLft = lft(preferred);
        ifp.tstamp = now;
      } else if (!(ifp.flags & IFA_F_PERMANENT)) {
        // RFC 4862 5.5.3 e): a valid lifetime above two hours, or above what
        // remains, is taken; else the remainder is cut to no less than two hours.
        const remaining = ifp.validLft === Infinity ? Infinity : ifp.tstamp + ifp.validLft - now;
        const newValid = lft(valid);
        let v: number;
        if (newValid > TWO_HOURS || newValid > remaining) v = newValid;
        else if (remaining <= TWO_HOURS) v = remaining;
        else v = TWO_HOURS;
        ifp.validLft = v;
        ifp.preferLft = Math.min(lft(preferred), v);
        ifp.tstamp = now;
        if (ifp.preferLft > 0) ifp.flags &= ~IFA_F_DEPRECATED;
      }
      this.#armVerify();
    }
  }

  #armVerify(): void {
    let next = Infinity;
    for (const ifp of this.addrs) {
      if (ifp.validLft !== Infinity) next = Math.min(next, ifp.tstamp + ifp.validLft);
      if (ifp.preferLft !== Infinity && !(ifp.flags & IFA_F_DEPRECATED)) next = Math.min(next, ifp.tstamp + ifp.preferLft);
    }
    for (const r of this.stack.ipv6.fib.routes) if (r.expires !== Infinity) next = Math.min(next, r.expires);
    if (next !== Infinity) this.stack.time.timers.mod(this.#verifyTimer, next);
  }

  /** addrconf_verify: deprecate addresses past their preferred lifetime, remove those past the valid one, expire routes. */
  verify(): void {
    const now = this.stack.time.clock.now();
    for (const ifp of [...this.addrs]) {
      if (ifp.validLft !== Infinity && now >= ifp.tstamp + ifp.validLft) this.delAddress(ifp);
      else if (ifp.preferLft !== Infinity && now >= ifp.tstamp + ifp.preferLft) ifp.flags |= IFA_F_DEPRECATED;
    }
    this.stack.ipv6.fib.gc(now);
    this.#armVerify();
  }

  /** A route with a lifetime was added or refreshed (an RA): keep the expiry timer in step. */
  routesChanged(): void {
    this.#armVerify();
  }

  shutdown(): void {
    const timers = this.stack.time.timers;
    timers.del(this.#rsTimer);
    timers.del(this.#verifyTimer);
    for (const ifp of this.addrs) timers.del(ifp.dadTimer);
  }
}

function commonPrefixLen(a: Uint8Array, b: Uint8Array, bOff: number): number {
  let n = 0;
  for (let i = 0; i < 16; i++) {
    const x = a[i] ^ b[bOff + i];
    if (x === 0) {
      n += 8;
      continue;
    }
    return n + Math.clz32(x) - 24;
  }
  return n;
}

/**
 * ipv6_dev_get_saddr (RFC 6724 5, simplified for one link): among our
 * usable addresses, the destination itself, else one of the same scope
 * (or the smallest larger one), not deprecated, with the longest common
 * prefix. False when there is none.
 */
export function ipv6ChooseSaddr(stack: Net, daddr: Uint8Array, out: Uint8Array, dOff = 0): boolean {
  const dscope = ipv6AddrScope(daddr, dOff);
  let best: Inet6Ifaddr | null = null;
  let bestPl = -1;
  for (const ifp of stack.ipv6.addrconf.addrs) {
    if (!ifp.usable) continue;
    // Rule 1: the same address.
    if (ipv6Equal(ifp.addr, 0, daddr, dOff)) {
      best = ifp;
      break;
    }
    const pl = commonPrefixLen(ifp.addr, daddr, dOff);
    if (!best) {
      best = ifp;
      bestPl = pl;
      continue;
    }
    // Rule 2: appropriate scope.
    if (ifp.scope !== best.scope) {
      const better = best.scope < ifp.scope ? best.scope < dscope : ifp.scope >= dscope;
      if (better) {
        best = ifp;
        bestPl = pl;
      }
      continue;
    }
    // Rule 3: avoid deprecated addresses.
    const dep = ifp.flags & IFA_F_DEPRECATED;
    const bestDep = best.flags & IFA_F_DEPRECATED;
    if (dep !== bestDep) {
      if (!dep) {
        best = ifp;
        bestPl = pl;
      }
      continue;
    }
    // Rule 8: longest matching prefix.
    if (pl > bestPl) {
      best = ifp;
      bestPl = pl;
    }
  }
  if (!best) return false;
  out.set(best.addr);
  return true;
}

/** A usable (DAD passed, not dadfailed) unicast address of ours: what bind() may use (else EADDRNOTAVAIL). */
export function ipv6AddrIsLocal(stack: Net, addr: Uint8Array, off = 0): boolean {
  return stack.ipv6.enabled && stack.ipv6.addrconf.isLocal(addr, off);
}

/** The path MTU to daddr: the link's IPv6 MTU, lowered by a Packet Too Big (never below 1280). */
export function ipv6PathMtu(stack: Net, daddr: Uint8Array, off = 0): number {
  const v6 = stack.ipv6;
  const link = v6.cnf.mtu6;
  const p = v6.fib.pmtu(daddr, off, stack.time.clock.now());
  const mtu = p && p < link ? p : link;
  return Math.max(mtu, IPV6_MIN_MTU);
}
