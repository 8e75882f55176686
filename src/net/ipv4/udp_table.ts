/**
 * udp_table (net/ipv4/udp.c): every UDP socket of both families, hashed
 * twice, as Linux does:
 *
 *   hslot   by local port: bind() conflict checks (udp_lib_lport_inuse)
 *           and the multicast/broadcast delivery walk.
 *   hslot2  by (local address, port) (udp_portaddr_hash): the unicast
 *           lookup probes the packet's destination address first, then
 *           the wildcard, and scores each candidate like compute_score
 *           (a connected peer and a bound address score higher); an
 *           unconnected SO_REUSEPORT group answers with one member picked
 *           by a hash of the 4-tuple (reuseport_select_sock).
 *
 * An AF_INET6 socket bound to :: hashes with the IPv4 wildcard and one
 * bound to ::ffff:a.b.c.d with a.b.c.d (ipv6_portaddr_hash), so a
 * dual-stack socket is found by IPv4 lookups without a second table.
 * Buckets are arrays of sockets; lookups allocate nothing.
 */
import { ipv6IsUnspecified, ipv6IsV4Mapped, ipv6V4MappedAddr } from '../../lib/addr.js';
import { ehashFinal, ehashMix, inetEhashfn } from './inet_hashtables.js';
import { UDP_ESTABLISHED, UdpSock } from './udp_sock.js';
import { AF_INET6 } from '../../uapi.js';

const UDP_HTABLE_SIZE = 1024;

/** reciprocal_scale: map a uint32 hash onto [0, n). */
function reciprocalScale(hash: number, n: number): number {
  return Math.floor(((hash >>> 0) * n) / 0x1_0000_0000);
}

function v6Equal(a: Uint8Array, b: Uint8Array, bOff = 0): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[bOff + i]) return false;
  return true;
}

/** The IPv4 address to compare for an AF_INET6 socket's v6 address kind. */
const ADDR_ANY = 0;
const ADDR_MAPPED = 1;
const ADDR_V6 = 2;
function v6Kind(a: Uint8Array, off = 0): number {
  if (ipv6IsUnspecified(a, off)) return ADDR_ANY;
  if (ipv6IsV4Mapped(a, off)) return ADDR_MAPPED;
  return ADDR_V6;
}

/**
 * inet_rcv_saddr_equal(sk, sk2, match_wildcard): do the two sockets' bound
 * addresses overlap (ipv4_rcv_saddr_equal / ipv6_rcv_saddr_equal)?
 */
export function udpRcvSaddrEqual(sk: UdpSock, sk2: UdpSock, matchWildcard: boolean): boolean {
  if (sk.family !== AF_INET6) {
    if (sk2.ipv6only) return false;
    if (sk.rcvSaddr === sk2.rcvSaddr) return true;
    return matchWildcard && (sk.rcvSaddr === 0 || sk2.rcvSaddr === 0);
  }
  const t1 = v6Kind(sk.v6RcvSaddr);
  // An AF_INET sk2 counts as v4-mapped.
  const t2 = sk2.family === AF_INET6 ? v6Kind(sk2.v6RcvSaddr) : ADDR_MAPPED;
  if (t1 === ADDR_MAPPED && t2 === ADDR_MAPPED) {
    if (sk2.ipv6only) return false;
    if (sk.rcvSaddr === sk2.rcvSaddr) return true;
    return matchWildcard && (sk.rcvSaddr === 0 || sk2.rcvSaddr === 0);
  }
  if (t1 === ADDR_ANY && t2 === ADDR_ANY) return true;
  if (t2 === ADDR_ANY && matchWildcard && !(sk2.ipv6only && t1 === ADDR_MAPPED)) return true;
  if (t1 === ADDR_ANY && matchWildcard && !(sk.ipv6only && t2 === ADDR_MAPPED)) return true;
  return sk2.family === AF_INET6 && v6Equal(sk.v6RcvSaddr, sk2.v6RcvSaddr);
}

export class UdpTable {
  readonly #mask = UDP_HTABLE_SIZE - 1;
  readonly #hash: UdpSock[][] = [];
  readonly #hash2: UdpSock[][] = [];
  #mix = 0;
  #ehashSecret = 0;
  #seeded = false;
  /**
   * A stack shard's constraint on autobind's ports when the peer's port is known (connect, the first
   * sendto): only a local port whose datagrams the TAP's steering program sends back to this shard
   * (docs/shards.md). Null with one stack.
   */
  connectPortOk: ((lport: number, dport: number) => boolean) | null = null;
  readonly #random: () => number;
  #count = 0;

  constructor(random: () => number) {
    for (let i = 0; i < UDP_HTABLE_SIZE; i++) {
      this.#hash.push([]);
      this.#hash2.push([]);
    }
    // The secrets are drawn when the first socket is hashed: a stack that
    // never opens a UDP socket leaves the shared random stream untouched.
    this.#random = random;
  }

  get count(): number {
    return this.#count;
  }

  /** Every hashed socket (for `ss`). */
  *sockets(): IterableIterator<UdpSock> {
    for (const slot of this.#hash) yield* slot;
  }

  /** The sockets on a local port (hslot), for the multicast walk. */
  portSlot(port: number): readonly UdpSock[] {
    return this.#hash[(port + this.#mix) & this.#mask];
  }

  /** ipv4_portaddr_hash. */
  portaddrHash4(addr: number, port: number): number {
    return (ehashFinal(ehashMix(this.#mix, addr | 0)) ^ port) >>> 0;
  }

  /** ipv6_portaddr_hash: :: and v4-mapped addresses hash as their IPv4 form, so dual-stack sockets share IPv4's slots. */
  portaddrHash6(a: Uint8Array, off: number, port: number): number {
    if (ipv6IsUnspecified(a, off)) return this.portaddrHash4(0, port);
    if (ipv6IsV4Mapped(a, off)) return this.portaddrHash4(ipv6V4MappedAddr(a, off), port);
    let h = this.#mix;
    for (let i = 0; i < 16; i += 4) h = ehashMix(h, (a[off + i] << 24) | (a[off + i + 1] << 16) | (a[off + i + 2] << 8) | a[off + i + 3]);
    return (ehashFinal(h) ^ port) >>> 0;
  }

  /** udp_portaddr_hash of a socket's bound address. */
  #sockHash2(sk: UdpSock): number {
    return sk.family === AF_INET6 ? this.portaddrHash6(sk.v6RcvSaddr, 0, sk.num) : this.portaddrHash4(sk.rcvSaddr, sk.num);
  }

  /**
   * udp_lib_lport_inuse: does `port` conflict for `sk`? Two sockets clash
   * when not both SO_REUSEADDR and their addresses overlap, unless both
   * are SO_REUSEPORT of the same user (connected or not: UDP has no
   * listen state to tell them apart).
   */
  #inuse(sk: UdpSock, port: number): boolean {
    for (const sk2 of this.portSlot(port)) {
      if (sk2 === sk || sk2.num !== port) continue;
      if (sk2.reuse && sk.reuse) continue;
      if (!udpRcvSaddrEqual(sk, sk2, true)) continue;
      if (sk2.reuseport && sk.reuseport && sk2.uid === sk.uid) continue;
      return true;
    }
    return false;
  }

  /**
   * udp_lib_get_port: bind `sk` to `snum`, or to a free ephemeral port when
   * 0, searched as Linux does: a random first port in ip_local_port_range,
   * then every port of its hash chain in steps of an odd multiple of the
   * table size (16-bit arithmetic), then the next chain, for one table's
   * worth of chains. Returns 0, or -1 when the port (or the whole range) is taken.
   */
  getPort(sk: UdpSock, snum: number, range: readonly [number, number], random: () => number, dport = 0): number {
    const steer = dport > 0 ? this.connectPortOk : null;
    if (!this.#seeded) {
      this.#seeded = true;
      this.#mix = this.#random() | 0;
      this.#ehashSecret = this.#random() | 0;
    }
    if (snum === 0) {
      const [low, high] = range;
      const rand = random() >>> 0;
      let first = (reciprocalScale(rand, high - low + 1) + low) & 0xffff;
      const step = Math.imul(rand | 1, UDP_HTABLE_SIZE) & 0xffff;
      const last = (first + UDP_HTABLE_SIZE) & 0xffff;
      let found = 0;
      search: do {
        let p = first;
        do {
          if (p >= low && p <= high && (steer === null || steer(p, dport)) && !this.#inuse(sk, p)) {
            found = p;
            break search;
          }
          p = (p + step) & 0xffff;
        } while (p !== first);
        first = (first + 1) & 0xffff;
      } while (first !== last);
      if (!found) return -1;
      snum = found;
    } else if (this.#inuse(sk, snum)) {
      return -1;
    }
    sk.num = snum;
    this.#hash[(snum + this.#mix) & this.#mask].push(sk);
    sk.hash2 = this.#sockHash2(sk);
    this.#hash2[sk.hash2 & this.#mask].push(sk);
    sk.hashed = true;
    this.#count++;
    if (sk.reuseport) this.#reuseportAdd(sk);
    return 0;
  }

  /**
   * udp_reuseport_add_sock: join the group of a socket with the same
   * family, v6-only setting, exact address and owner; else start one.
   */
  #reuseportAdd(sk: UdpSock): void {
    for (const sk2 of this.portSlot(sk.num)) {
      if (sk2 === sk || sk2.num !== sk.num || !sk2.reuseport || !sk2.reuseportGroup) continue;
      if (sk2.family !== sk.family || sk2.ipv6only !== sk.ipv6only || sk2.uid !== sk.uid) continue;
      if (!udpRcvSaddrEqual(sk, sk2, false)) continue;
      sk.reuseportGroup = sk2.reuseportGroup;
      sk.reuseportGroup.push(sk);
      return;
    }
    sk.reuseportGroup = [sk];
  }

  #reuseportDetach(sk: UdpSock): void {
    const g = sk.reuseportGroup;
    if (!g) return;
    const i = g.indexOf(sk);
    if (i >= 0) g.splice(i, 1);
    sk.reuseportGroup = null;
  }

  /** udp_lib_rehash: the bound address changed (connect, disconnect): move the socket in hslot2. */
  rehash(sk: UdpSock): void {
    if (!sk.hashed) return;
    const nh = this.#sockHash2(sk);
    if (nh === sk.hash2) return;
    const old = this.#hash2[sk.hash2 & this.#mask];
    const i = old.indexOf(sk);
    if (i >= 0) old.splice(i, 1);
    sk.hash2 = nh;
    this.#hash2[nh & this.#mask].push(sk);
    // A socket whose address changed leaves its reuseport group for good (reuseport_detach_sock).
    this.#reuseportDetach(sk);
  }

  /** udp_lib_unhash: out of both tables and its reuseport group; the port is free again. */
  unhash(sk: UdpSock): void {
    if (!sk.hashed) return;
    const s1 = this.#hash[(sk.num + this.#mix) & this.#mask];
    const i = s1.indexOf(sk);
    if (i >= 0) s1.splice(i, 1);
    const s2 = this.#hash2[sk.hash2 & this.#mask];
    const j = s2.indexOf(sk);
    if (j >= 0) s2.splice(j, 1);
    this.#reuseportDetach(sk);
    sk.hashed = false;
    sk.num = 0;
    this.#count--;
  }

  /** udp_ehashfn: the 4-tuple hash a reuseport group selects with. */
  ehash(laddr: number, lport: number, faddr: number, fport: number): number {
    return inetEhashfn(this.#ehashSecret, laddr, lport, faddr, fport) >>> 0;
  }

  /**
   * __udp4_lib_lookup: the socket for a datagram saddr:sport -> daddr:dport.
   * A connected or address-bound match in the destination's slot wins;
   * otherwise the wildcard slot is searched.
   */
  lookup4(saddr: number, sport: number, daddr: number, dport: number): UdpSock | null {
    if (!this.#count) return null;
    const r = this.#lookup2v4(saddr, sport, daddr, dport, this.portaddrHash4(daddr, dport));
    if (r) return r;
    if (daddr === 0) return null;
    return this.#lookup2v4(saddr, sport, 0, dport, this.portaddrHash4(0, dport));
  }

  /** udp4_lib_lookup2 over one hslot2 chain: the best compute_score, reuseport groups answering by hash. */
  #lookup2v4(saddr: number, sport: number, daddr: number, hnum: number, hash2: number): UdpSock | null {
    let result: UdpSock | null = null;
    let badness = 0;
    for (const sk of this.#hash2[hash2 & this.#mask]) {
      const score = computeScore4(sk, saddr, sport, daddr, hnum);
      if (score <= badness) continue;
      if (sk.state !== UDP_ESTABLISHED && sk.reuseportGroup && sk.reuseportGroup.length > 1) {
        const g = sk.reuseportGroup;
        const sel = g[reciprocalScale(this.ehash(daddr, hnum, saddr, sport), g.length)];
        // reuseport_has_conns: with a connected member, a better-scoring socket may still win.
        if (!hasConns(g)) return sel;
        result = sel;
        badness = score;
        continue;
      }
      result = sk;
      badness = score;
    }
    return result;
  }

  /** __udp6_lib_lookup: as lookup4 for an IPv6 datagram (AF_INET6 sockets only). */
  lookup6(saddr: Uint8Array, sOff: number, sport: number, daddr: Uint8Array, dOff: number, dport: number): UdpSock | null {
    if (!this.#count) return null;
    const r = this.#lookup2v6(saddr, sOff, sport, daddr, dOff, dport, this.portaddrHash6(daddr, dOff, dport), false);
    if (r) return r;
    return this.#lookup2v6(saddr, sOff, sport, daddr, dOff, dport, this.portaddrHash4(0, dport), true);
  }

  #lookup2v6(saddr: Uint8Array, sOff: number, sport: number, daddr: Uint8Array, dOff: number, hnum: number, hash2: number, wildcard: boolean): UdpSock | null {
    let result: UdpSock | null = null;
    let badness = -1;
    for (const sk of this.#hash2[hash2 & this.#mask]) {
      const score = computeScore6(sk, saddr, sOff, sport, daddr, dOff, hnum, wildcard);
      if (score <= badness) continue;
      if (sk.state !== UDP_ESTABLISHED && sk.reuseportGroup && sk.reuseportGroup.length > 1) {
        const g = sk.reuseportGroup;
        let h = this.#ehashSecret;
        for (let i = 0; i < 16; i += 4) {
          h = ehashMix(h, (saddr[sOff + i] << 24) | (saddr[sOff + i + 1] << 16) | (saddr[sOff + i + 2] << 8) | saddr[sOff + i + 3]);
          h = ehashMix(h, (daddr[dOff + i] << 24) | (daddr[dOff + i + 1] << 16) | (daddr[dOff + i + 2] << 8) | daddr[dOff + i + 3]);
        }
        h = ehashFinal(ehashMix(h, (hnum << 16) | sport));
        const sel = g[reciprocalScale(h >>> 0, g.length)];
        if (!hasConns(g)) return sel;
        result = sel;
        badness = score;
        continue;
      }
      result = sk;
      badness = score;
    }
    return result;
  }
}

function hasConns(g: UdpSock[]): boolean {
  for (const s of g) if (s.state === UDP_ESTABLISHED) return true;
  return false;
}

/**
 * compute_score (IPv4): -1 unless the port and bound address match and the
 * socket may take IPv4; an AF_INET socket scores 2, a dual-stack one 1, and
 * a connected peer address and port add 4 each.
 */
export function computeScore4(sk: UdpSock, saddr: number, sport: number, daddr: number, hnum: number): number {
  if (sk.num !== hnum || sk.ipv6only) return -1;
  if (sk.rcvSaddr !== daddr) return -1;
  let score = sk.family === AF_INET6 ? 1 : 2;
  if (sk.daddr) {
    if (sk.daddr !== saddr) return -1;
    score += 4;
  }
  if (sk.dport) {
    if (sk.dport !== sport) return -1;
    score += 4;
  }
  return score;
}

/**
 * compute_score (IPv6): AF_INET6 sockets whose bound address is the
 * destination (or :: on the wildcard pass); a connected peer address and
 * port add one each.
 */
export function computeScore6(sk: UdpSock, saddr: Uint8Array, sOff: number, sport: number, daddr: Uint8Array, dOff: number, hnum: number, wildcard: boolean): number {
  if (sk.num !== hnum || sk.family !== AF_INET6) return -1;
  if (wildcard ? !ipv6IsUnspecified(sk.v6RcvSaddr) : !v6Equal(sk.v6RcvSaddr, daddr, dOff)) return -1;
  let score = 0;
  if (!ipv6IsUnspecified(sk.v6Daddr)) {
    if (!v6Equal(sk.v6Daddr, saddr, sOff)) return -1;
    score++;
  }
  if (sk.dport) {
    if (sk.dport !== sport) return -1;
    score++;
  }
  return score;
}
