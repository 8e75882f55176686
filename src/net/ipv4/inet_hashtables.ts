/**
 * The TCP socket lookup tables: struct inet_hashinfo and what works on it
 * (net/ipv4/inet_hashtables.c, inet_connection_sock.c). Three tables, one
 * job each (seed 003):
 *
 *   ehash   every socket with a full 4-tuple: ESTABLISHED and the rest of
 *           the connected states, SYN_SENT after connect(), request socks
 *           (TCP_NEW_SYN_RECV) and TIME_WAIT. Looked up for every incoming
 *           segment, so the lookup allocates nothing: a seeded 32-bit hash of
 *           the 4-tuple picks a slot in a power-of-two, open-addressed slot
 *           array (linear probing, at most half full, doubled past that)
 *           whose slots hold the whole tuple inline, with the socket
 *           pointers in a parallel array. A hit reads the slot's cache line
 *           and the pointer at the same index and nothing else: at 100 000
 *           sockets two cache misses that overlap (both addresses come from
 *           the hash), where a chained table reads a bucket head, then a
 *           node, then the socket.
 *   lhash2  listeners by (address, port); a lookup probes the exact
 *           destination address first, then INADDR_ANY, and a SO_REUSEPORT
 *           group answers with one member picked by a hash of the 4-tuple.
 *   bhash   bind buckets by port (InetBindBucket): who holds the port, plus
 *           the fastreuse/fastreuseport summary that lets bind() and
 *           connect() decide without walking the owners.
 *
 * Addresses are IPv4 as uint32 in host order (skc_rcv_saddr, skc_daddr) and,
 * for AF_INET6 sockets, 16-byte arrays next to them (sk_v6_rcv_saddr,
 * sk_v6_daddr), ports plain numbers; nothing here builds a string key. As in
 * Linux, an AF_INET6 socket talking to an IPv4 peer holds v4-mapped v6
 * addresses and the plain IPv4 ones, and lives in the IPv4 tables: the IPv4
 * path never looks at the v6 fields. Connections over IPv6 (sk.ipv6) have a
 * second established-hash slot array with a wider slot (two 4-word
 * addresses; inet6_ehashfn), looked up by lookupEstablished6() with the
 * packet's addresses read in place. Listeners of both families share
 * lhash2: [::] hashes like 0.0.0.0 and ::ffff:a.b.c.d like a.b.c.d
 * (ipv6_portaddr_hash), so an IPv4 SYN finds a dual-stack [::] listener in
 * its wildcard probe, where compute_score ranks it below an AF_INET one and
 * skips it under IPV6_V6ONLY. Bind conflicts across families follow
 * inet_rcv_saddr_equal / ipv6_rcv_saddr_equal.
 *
 * Hashing and unhashing allocate nothing either (the slot and pointer
 * arrays grow by doubling); the tables read and write no socket field
 * outside InetSock.
 */

import { type HashLinks, type InetSock, ReuseportGroup, TCP_CLOSE, TCP_LISTEN, TCP_TIME_WAIT, addrWord, v6Any, v6Mapped } from '../core/sock.js';
import { InetBindHashtable, inetRcvSaddrEqual, type PortRange } from './inet_connection_sock.js';
import { AF_INET, AF_INET6, EADDRINUSE, EADDRNOTAVAIL } from '../../uapi.js';

/** The default net.ipv4.ip_local_port_range. */
export const DEFAULT_LOCAL_PORT_RANGE: readonly [number, number] = [32768, 60999];

// --- hashing ------------------------------------------------------------------

/** Fold one 32-bit word into a running hash (a MurmurHash3 body step). int32 in, int32 out. */
export function ehashMix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** Final avalanche, so the low bits used as a bucket index depend on every input bit. */
export function ehashFinal(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * inet_ehashfn: the established-hash value of a local/foreign pair, keyed by
 * a secret so a peer cannot aim its tuples at one chain. An IPv6 variant
 * folds laddr and faddr as four words each and the ports word last.
 */
export function inetEhashfn(secret: number, laddr: number, lport: number, faddr: number, fport: number): number {
  return inetEhashfn4(secret, laddr, faddr, (lport << 16) | fport);
}

/** inetEhashfn with the ports already packed as (lport << 16) | fport. */
function inetEhashfn4(secret: number, laddr: number, faddr: number, ports: number): number {
  let h = ehashMix(secret, laddr);
  h = ehashMix(h, faddr);
  h = ehashMix(h, ports);
  return ehashFinal(h ^ 12);
}

/**
 * inet6_ehashfn: the same keyed fold, read in place (laddr at lOff of la,
 * faddr at fOff of fa): the local address's last word, the remote
 * address's four, then the ports (Ehash6.hashKey computes the same).
 */
export function inet6Ehashfn(
  secret: number,
  la: Uint8Array,
  lOff: number,
  fa: Uint8Array,
  fOff: number,
  ports: number,
): number {
  let h = ehashMix(secret, addrWord(la, lOff + 12));
  h = ehashMix(h, addrWord(fa, fOff));
  h = ehashMix(h, addrWord(fa, fOff + 4));
  h = ehashMix(h, addrWord(fa, fOff + 8));
  h = ehashMix(h, addrWord(fa, fOff + 12));
  h = ehashMix(h, ports);
  return ehashFinal(h ^ 24);
}

/** reciprocal_scale: map a uint32 hash onto [0, n) without a division by n. */
export function reciprocalScale(hash: number, n: number): number {
  return Math.floor(((hash >>> 0) * n) / 4294967296);
}

/**
 * The established hash is open-addressed (linear probing) over one
 * Int32Array of slots, each holding the whole key inline, and beside it an
 * array of socket pointers with the same index. A hit reads the slot's
 * cache line and the pointer at the same index, and nothing else (a chained
 * table reads a bucket head, a node, then the socket). Both addresses
 * follow from the hash alone, so the two reads do not wait for each other:
 * at 100 000 sockets, where both miss the cache, their latencies overlap.
 * Slots stay at most half full (the table doubles past that), so most keys
 * sit in their home slot or the next one, in the same line or the adjacent
 * one. The empty slot has a ports word of 0: a hashed socket always has a
 * local port, so its ports word (lport << 16 | rport) is never 0. Deleting
 * shifts the following run back (no tombstones), so a miss stops at the
 * first empty slot.
 */
const EHASH_MIN_BUCKETS = 16;
/** IPv4 slot: ports, remote address, local address (int32), the stored hash: 16 bytes. */
const E4_PORTS = 0;
const E4_FADDR = 1;
const E4_LADDR = 2;
const E4_STRIDE = 4;
/** IPv6 slot: ports, the local address's four words, the remote's four, the stored hash: 40 bytes. */
const E6_PORTS = 0;
const E6_LADDR = 1;
const E6_FADDR = 5;
const E6_STRIDE = 10;
const LHASH_MIN_BUCKETS = 32;
/** RFC 6056 algorithm 4's table (INET_TABLE_PERTURB_SIZE, 2^16 since Linux 5.19). */
const PERTURB_SHIFT = 16;
const PERTURB_SIZE = 1 << PERTURB_SHIFT;

function bucketArray<T>(n: number): (T | null)[] {
  const a: (T | null)[] = [];
  for (let i = 0; i < n; i++) a.push(null);
  return a;
}

function checkPortRange(low: number, high: number): void {
  if (!Number.isInteger(low) || !Number.isInteger(high) || low < 1 || high > 65535 || low > high) {
    throw new RangeError(`bad local port range [${low}, ${high}]`);
  }
}

function pow2AtLeast(n: number, min: number): number {
  let s = min;
  while (s < n) s *= 2;
  return s;
}

/**
 * One half of the established hash (IPv4 or IPv6): the slot array and the
 * socket of each slot. The key layout is the subclass's (stride words a
 * slot: the ports word first, the stored hash last); the lookups, which must
 * not loop over key words, are too.
 */
class EhashSlots<S extends InetSock> {
  slots: Int32Array;
  mask: number;
  /** The socket in each slot (null: empty). */
  socks: (S | null)[];
  count = 0;

  constructor(
    readonly stride: number,
    buckets: number,
  ) {
    this.slots = new Int32Array(buckets * stride);
    this.socks = bucketArray<S>(buckets);
    this.mask = buckets - 1;
  }

  get buckets(): number {
    return this.mask + 1;
  }

  /**
   * Put sk under hash, its key already written to `key` (stride - 1 words,
   * ports first). The caller guarantees the key is not in the table.
   */
  link(sk: S, hash: number, key: Int32Array): void {
    const k = this.slots;
    const m = this.mask;
    const st = this.stride;
    let i = hash & m;
    while (k[i * st] !== 0) i = (i + 1) & m;
    const b = i * st;
    for (let w = 0; w < st - 1; w++) k[b + w] = key[w];
    k[b + st - 1] = hash;
    this.socks[i] = sk;
    const l = sk.hashLinks;
    l.hash = hash;
    l.inEhash = true;
    if (++this.count * 2 > this.buckets) this.#grow();
  }

  /** Take sk (linked under l.hash) out, shifting the run after its slot back. */
  unlink(sk: S): void {
    const l = sk.hashLinks;
    const k = this.slots;
    const socks = this.socks;
    const m = this.mask;
    const st = this.stride;
    let i = l.hash & m;
    while (socks[i] !== sk) i = (i + 1) & m;
    // Knuth's algorithm R: an entry after the hole moves into it unless its
    // home lies cyclically in (hole, entry].
    for (let j = (i + 1) & m; k[j * st] !== 0; j = (j + 1) & m) {
      const home = k[j * st + st - 1] & m;
      if (((j - home) & m) >= ((j - i) & m)) {
        k.copyWithin(i * st, j * st, j * st + st);
        socks[i] = socks[j];
        i = j;
      }
    }
    k.fill(0, i * st, i * st + st);
    socks[i] = null;
    l.inEhash = false;
    this.count--;
  }

  /** Double the slot array and put every entry back by its stored hash. */
  #grow(): void {
    const st = this.stride;
    const old = this.slots;
    const oldSocks = this.socks;
    const n = this.buckets * 2;
    const m = n - 1;
    const k = new Int32Array(n * st);
    const socks = bucketArray<S>(n);
    for (let o = 0, b = 0; b < old.length; o++, b += st) {
      if (old[b] === 0) continue;
      let i = old[b + st - 1] & m;
      while (k[i * st] !== 0) i = (i + 1) & m;
      k.set(old.subarray(b, b + st), i * st);
      socks[i] = oldSocks[o];
    }
    this.slots = k;
    this.socks = socks;
    this.mask = m;
  }
}

/** The IPv4 half: a slot is (ports, faddr, laddr, hash). */
class Ehash4<S extends InetSock> extends EhashSlots<S> {
  readonly key = new Int32Array(E4_STRIDE - 1);

  constructor(buckets: number) {
    super(E4_STRIDE, buckets);
  }

  /** The socket stored under exactly (laddr, faddr, ports), all int32, found from hash; or null. */
  find(hash: number, laddr: number, faddr: number, ports: number): S | null {
    const k = this.slots;
    const m = this.mask;
    for (let i = hash & m; ; i = (i + 1) & m) {
      const b = i << 2;
      const p = k[b + E4_PORTS];
      if (p === ports && k[b + E4_FADDR] === faddr && k[b + E4_LADDR] === laddr) return this.socks[i];
      if (p === 0) return null;
    }
  }

  insert(sk: S, hash: number, laddr: number, faddr: number, ports: number): void {
    const key = this.key;
    key[E4_PORTS] = ports;
    key[E4_FADDR] = faddr;
    key[E4_LADDR] = laddr;
    this.link(sk, hash, key);
  }
}

/**
 * The IPv6 half, with its own secret (inet6_ehash_secret). A lookup first
 * copies the tuple into `key` (the ports word, then the local and remote
 * addresses as four words each): the words then never cross a function
 * call, where V8 would box an int32 beyond the small-integer range (an
 * allocation per packet), and the hash and the slot compare read them from
 * one place.
 */
export class Ehash6<S extends InetSock> extends EhashSlots<S> {
  readonly key = new Int32Array(E6_STRIDE - 1);

  constructor(
    readonly secret: number,
    buckets: number,
  ) {
    super(E6_STRIDE, buckets);
  }

  /** Load the key from addresses in place. */
  setKey(la: Uint8Array, lOff: number, fa: Uint8Array, fOff: number, ports: number): void {
    const key = this.key;
    key[E6_PORTS] = ports;
    for (let w = 0; w < 4; w++) {
      const l = lOff + 4 * w;
      const f = fOff + 4 * w;
      key[E6_LADDR + w] = (la[l] << 24) | (la[l + 1] << 16) | (la[l + 2] << 8) | la[l + 3];
      key[E6_FADDR + w] = (fa[f] << 24) | (fa[f + 1] << 16) | (fa[f + 2] << 8) | fa[f + 3];
    }
  }

  /**
   * inet6_ehashfn of the key. As Linux's, the local address enters by its
   * last word only (a host has few addresses, and they differ there), the
   * remote address by all four, then the ports.
   */
  hashKey(): number {
    const key = this.key;
    let h = ehashMix(this.secret, key[E6_LADDR + 3]);
    h = ehashMix(h, key[E6_FADDR]);
    h = ehashMix(h, key[E6_FADDR + 1]);
    h = ehashMix(h, key[E6_FADDR + 2]);
    h = ehashMix(h, key[E6_FADDR + 3]);
    h = ehashMix(h, key[E6_PORTS]);
    return ehashFinal(h ^ 24);
  }

  /** The socket whose slot holds exactly the key's tuple (hash = hashKey()), or null. */
  findKey(hash: number): S | null {
    const k = this.slots;
    const key = this.key;
    const m = this.mask;
    const ports = key[E6_PORTS];
    for (let i = hash & m; ; i = (i + 1) & m) {
      const b = i * E6_STRIDE;
      const p = k[b];
      if (
        p === ports &&
        k[b + 5] === key[5] &&
        k[b + 6] === key[6] &&
        k[b + 7] === key[7] &&
        k[b + 8] === key[8] &&
        k[b + 1] === key[1] &&
        k[b + 2] === key[2] &&
        k[b + 3] === key[3] &&
        k[b + 4] === key[4]
      ) {
        return this.socks[i];
      }
      if (p === 0) return null;
    }
  }

  /** Link sk under the key's tuple (hash = hashKey()). */
  linkKey(sk: S, hash: number): void {
    this.link(sk, hash, this.key);
    sk.hashLinks.ehash6 = true;
  }

  override unlink(sk: S): void {
    super.unlink(sk);
    sk.hashLinks.ehash6 = false;
  }
}

export interface InetHashinfoOptions {
  /** uint32 source for the hash secrets, the perturbation table and port offsets. */
  random: () => number;
  /** ip_local_port_range, inclusive; default [32768, 60999]. */
  portRange?: [number, number];
  /** Initial established-hash slots for IPv4 (rounded up to a power of two, at least 16); default 1024. */
  ehashBuckets?: number;
}

/**
 * struct inet_hashinfo for TCP over IPv4. S is the engine's socket type
 * (full socks, request socks); the tables hand back what was put in.
 */
export class InetHashinfo<S extends InetSock> {
  readonly #random: () => number;
  /** ip_local_port_range, inclusive (shared with bhash). */
  readonly #range: PortRange;

  // ehash: open-addressed slot arrays, one per family
  readonly #eh4: Ehash4<S>;
  readonly #ehashSecret: number;
  /** The IPv6 connections' half of ehash, with its own secret (inet6_ehash_secret). */
  readonly eh6: Ehash6<S>;
  readonly ehash6Secret: number;

  // lhash2
  #lhash: (S | null)[];
  #lhashMask: number;
  #listening = 0;
  readonly #lhashSecret: number;

  /** bhash: the bind buckets (inet_connection_sock.ts). */
  readonly bhash: InetBindHashtable;

  // __inet_hash_connect
  readonly #portSecret: Uint32Array;
  #perturb: Uint32Array | null = null;
  /** The TIME_WAIT socket __inet_check_established agreed to recycle, handed to its caller. */
  #recycledTw: S | null = null;
  /**
   * A stack shard's constraint on connect()'s ephemeral ports (docs/shards.md): only a local port
   * whose flow the TAP's steering program sends back to this shard's queue. Null with one stack.
   */
  connectPortOk: ((lport: number, dport: number) => boolean) | null = null;

  constructor(opts: InetHashinfoOptions) {
    this.#random = opts.random;
    const [low, high] = opts.portRange ?? DEFAULT_LOCAL_PORT_RANGE;
    checkPortRange(low, high);
    this.#range = { low, high };
    this.bhash = new InetBindHashtable(this.#range, this.#random);
    this.#ehashSecret = this.#random() | 0;
    this.#lhashSecret = this.#random() | 0;
    // Derived rather than drawn, so adding IPv6 left every other random draw where it was.
    this.ehash6Secret = ehashFinal(this.#ehashSecret ^ 0x6a09e667);
    this.eh6 = new Ehash6<S>(this.ehash6Secret, EHASH_MIN_BUCKETS);
    this.#portSecret = new Uint32Array(4);
    for (let i = 0; i < 4; i++) this.#portSecret[i] = this.#random();
    this.#eh4 = new Ehash4<S>(pow2AtLeast(opts.ehashBuckets ?? 1024, EHASH_MIN_BUCKETS));
    this.#lhash = bucketArray<S>(LHASH_MIN_BUCKETS);
    this.#lhashMask = LHASH_MIN_BUCKETS - 1;
  }

  /** Sockets in the established hash (all connected states, request socks, TIME_WAIT). */
  get established(): number {
    return this.#eh4.count + this.eh6.count;
  }
  /** Sockets in the listening hash. */
  get listening(): number {
    return this.#listening;
  }
  /** Sockets holding a local port (bind-bucket owners, TIME_WAIT included). */
  get bound(): number {
    return this.bhash.bound;
  }
  /** Ports with a bind bucket. */
  get bindBuckets(): number {
    return this.bhash.size;
  }
  /** IPv4 established-hash slots (a power of two; at most half are used). */
  get ehashBuckets(): number {
    return this.#eh4.buckets;
  }
  /** The local port range in use, inclusive. */
  get portRange(): [number, number] {
    return [this.#range.low, this.#range.high];
  }
  /** Change ip_local_port_range (inclusive). */
  setPortRange(low: number, high: number): void {
    checkPortRange(low, high);
    this.#range.low = low;
    this.#range.high = high;
  }

  // === established hash =======================================================

  /**
   * inet_ehash_insert: hash sk by its 4-tuple (rcvSaddr, num, daddr, dport).
   * The tuple is captured now: change it only while sk is unhashed. No
   * uniqueness check here: connectPort() is what guarantees one.
   */
  ehashInsert(sk: S): void {
    if (sk.hashLinks.inEhash) throw new Error('ehashInsert: socket already in the established hash');
    const ports = (sk.num << 16) | sk.dport;
    if (sk.ipv6) {
      const e = this.eh6;
      e.setKey(sk.v6RcvSaddr!, 0, sk.v6Daddr!, 0, ports);
      e.linkKey(sk, e.hashKey());
      return;
    }
    const laddr = sk.rcvSaddr | 0;
    const faddr = sk.daddr | 0;
    this.#eh4.insert(sk, inetEhashfn4(this.#ehashSecret, laddr, faddr, ports), laddr, faddr, ports);
  }

  /** Unhash sk from the established hash; a no-op if it is not there. */
  ehashRemove(sk: S): void {
    const l = sk.hashLinks;
    if (!l.inEhash) return;
    if (l.ehash6) this.eh6.unlink(sk);
    else this.#eh4.unlink(sk);
  }

  /**
   * __inet_lookup_established: the socket for a segment from saddr:sport to
   * daddr:dport (so saddr/sport are the peer, daddr/dport are us). Allocates
   * nothing, and reads one slot (rarely a few, in adjacent lines) and the
   * socket pointer it returns.
   *
   * Addresses may be given as uint32 or as their int32 view (`a | 0`); the
   * packet path should pass the int32 view, which V8 keeps as a small
   * integer, where a uint32 of 2^31 or more (192.168/16, 172.16/12 ...) is a
   * double that gets boxed, i.e. allocated, when passed to a function that is
   * not inlined.
   */
  lookupEstablished(saddr: number, sport: number, daddr: number, dport: number): S | null {
    const ports = (dport << 16) | sport;
    const faddr = saddr | 0;
    const laddr = daddr | 0;
    return this.#eh4.find(inetEhashfn4(this.#ehashSecret, laddr, faddr, ports), laddr, faddr, ports);
  }




  // === listening hash =========================================================

  /**
   * inet_csk_listen_start + inet_hash: move a socket to TCP_LISTEN and hash
   * it. The port is checked again as a listener (a SO_REUSEADDR socket may
   * share a port with bound sockets, never with another listener); an
   * unbound socket gets an ephemeral port first (inet_csk_get_port(sk, 0)).
   * Returns 0, or -EADDRINUSE with sk.state set to TCP_CLOSE. A socket
   * already listening is left as it is (0).
   */
  listen(sk: S): number {
    if (sk.hashLinks.listening) return 0;
    sk.state = TCP_LISTEN;
    if (!this.bhash.getPort(sk, sk.num)) {
      sk.state = TCP_CLOSE;
      return -EADDRINUSE;
    }
    this.#lhashLink(sk);
    return 0;
  }

  /**
   * inet_unhash for a listener: out of the listening hash and its reuseport
   * group. The port stays held (unbind() releases it) and the state is the
   * caller's to change.
   */
  unlisten(sk: S): void {
    const l = sk.hashLinks;
    if (!l.listening) return;
    const next = l.lnext;
    const prev = l.lprev;
    if (prev === null) this.#lhash[l.lhash & this.#lhashMask] = next as S | null;
    else prev.hashLinks.lnext = next;
    if (next !== null) next.hashLinks.lprev = prev;
    l.lnext = null;
    l.lprev = null;
    l.listening = false;
    this.#listening--;
    const group = l.reuseportGroup;
    if (group !== null) {
      const socks = group.socks;
      const i = socks.indexOf(sk);
      const last = socks.pop()!;
      if (i >= 0 && i < socks.length) socks[i] = last;
      l.reuseportGroup = null;
    }
  }

  /**
   * __inet_lookup_listener: the listener for a SYN from saddr:sport to
   * daddr:dport. A listener bound to daddr beats one on INADDR_ANY; inside a
   * SO_REUSEPORT group the member is picked by a hash of the 4-tuple, so one
   * flow always reaches the same member. Allocates nothing; addresses as
   * for lookupEstablished (uint32 or int32 view).
   */
  lookupListener(saddr: number, sport: number, daddr: number, dport: number): S | null {
    daddr |= 0;
    const sk = this.#lhash2Lookup(saddr, sport, daddr, dport);
    if (sk !== null || daddr === 0) return sk;
    return this.#lhash2Lookup(saddr, sport, 0, dport);
  }

  /** ipv4_portaddr_hash: the lhash2 key of a listener's (address, port). */
  lhashfn(addr: number, port: number): number {
    return ehashFinal(ehashMix(this.#lhashSecret, addr)) ^ port;
  }

  /**
   * ipv6_portaddr_hash: :: hashes as 0.0.0.0 and ::ffff:a.b.c.d as a.b.c.d,
   * so both families' wildcard (and mapped) listeners share IPv4's chains.
   */
  lhashfn6(a: Uint8Array, off: number, port: number): number {
    if (v6Any(a, off)) return this.lhashfn(0, port);
    if (v6Mapped(a, off)) return this.lhashfn(addrWord(a, off + 12), port);
    let h = ehashMix(this.#lhashSecret, addrWord(a, off));
    h = ehashMix(h, addrWord(a, off + 4));
    h = ehashMix(h, addrWord(a, off + 8));
    h = ehashMix(h, addrWord(a, off + 12));
    return ehashFinal(h) ^ port;
  }

  /**
   * compute_score for an IPv4 segment: -1 if sk cannot take it, else 2 for
   * an AF_INET listener and 1 for an AF_INET6 one (a dual-stack [::] or a
   * v4-mapped address), which IPV6_V6ONLY excludes. An AF_INET6 listener
   * on a real IPv6 address has rcvSaddr LOOPBACK4_IPV6 and never matches.
   */
  #computeScore(sk: InetSock, hnum: number, daddr: number): number {
    if (sk.num !== hnum || (sk.rcvSaddr | 0) !== daddr || sk.ipv6only) return -1;
    return sk.family === AF_INET ? 2 : 1;
  }

  /**
   * inet_lhash2_lookup: best-scoring listener on (daddr, hnum), daddr as
   * int32; daddr is 0 for the wildcard probe, and the reuseport hash then
   * uses 0 as well, as Linux's does.
   */
  #lhash2Lookup(saddr: number, sport: number, daddr: number, hnum: number): S | null {
    const h = this.lhashfn(daddr, hnum);
    let sk: InetSock | null = this.#lhash[h & this.#lhashMask];
    let result: InetSock | null = null;
    let hiscore = 0;
    while (sk !== null) {
      const l: HashLinks = sk.hashLinks;
      if (l.lhash === h) {
        const score = this.#computeScore(sk, hnum, daddr);
        if (score > hiscore) {
          const group = l.reuseportGroup;
          if (group !== null) {
            const phash = inetEhashfn(this.#ehashSecret, daddr, hnum, saddr, sport);
            return group.socks[reciprocalScale(phash, group.socks.length)] as S;
          }
          result = sk;
          hiscore = score;
        }
      }
      sk = l.lnext;
    }
    return result as S | null;
  }





  /** The first listener chained under lhash2 hash h (walk on through hashLinks.lnext). */
  lhashHead(h: number): InetSock | null {
    return this.#lhash[h & this.#lhashMask];
  }

  #lhashLink(sk: S): void {
    const l = sk.hashLinks;
    const h = sk.family === AF_INET6 ? this.lhashfn6(sk.v6RcvSaddr!, 0, sk.num) : this.lhashfn(sk.rcvSaddr, sk.num);
    l.lhash = h;
    if (sk.reuseport) this.#reuseportAdd(sk, h);
    const i = h & this.#lhashMask;
    const head = this.#lhash[i];
    l.lprev = null;
    l.lnext = head;
    if (head !== null) head.hashLinks.lprev = sk;
    this.#lhash[i] = sk;
    l.listening = true;
    if (++this.#listening > this.#lhash.length) this.#lhashGrow();
  }

  /**
   * inet_reuseport_add_sock: join the group of a listener on the very same
   * address and port with SO_REUSEPORT and the same owner, or start one.
   */
  #reuseportAdd(sk: S, h: number): void {
    let sk2: InetSock | null = this.#lhash[h & this.#lhashMask];
    while (sk2 !== null) {
      const l2: HashLinks = sk2.hashLinks;
      if (
        sk2 !== sk &&
        l2.reuseportGroup !== null &&
        sk2.reuseport &&
        sk2.num === sk.num &&
        sk2.family === sk.family &&
        sk2.ipv6only === sk.ipv6only &&
        inetRcvSaddrEqual(sk, sk2, false) &&
        sk2.uid === sk.uid
      ) {
        l2.reuseportGroup.socks.push(sk);
        sk.hashLinks.reuseportGroup = l2.reuseportGroup;
        return;
      }
      sk2 = l2.lnext;
    }
    const group = new ReuseportGroup(sk.uid);
    group.socks.push(sk);
    sk.hashLinks.reuseportGroup = group;
  }

  #lhashGrow(): void {
    const old = this.#lhash;
    const n = old.length * 2;
    const mask = n - 1;
    const t = bucketArray<S>(n);
    // Relink keeping each chain's order, so equal scores resolve as before.
    for (let b = 0; b < old.length; b++) {
      let sk: InetSock | null = old[b];
      const tails: (InetSock | null)[] = [null, null];
      while (sk !== null) {
        const l = sk.hashLinks;
        const next = l.lnext;
        const i = l.lhash & mask;
        const side = i === (b & mask) ? 0 : 1;
        const tail = tails[side];
        l.lnext = null;
        l.lprev = tail;
        if (tail === null) t[i] = sk as S;
        else tail.hashLinks.lnext = sk;
        tails[side] = sk;
        sk = next;
      }
    }
    this.#lhash = t;
    this.#lhashMask = mask;
  }

  // === bind hash ==============================================================





  /**
   * inet_put_port: release sk's port (sk.num becomes 0); the bucket goes
   * with its last owner. A listener is taken out of the listening hash
   * first. A no-op if sk holds no port.
   */
  unbind(sk: S): void {
    const l = sk.hashLinks;
    if (l.listening) this.unlisten(sk);
    if (l.tb === null) return;
    this.bhash.bindUnhash(sk);
    sk.num = 0;
  }























  // === connect ================================================================

  /**
   * __inet_hash_connect (inet_hash_connect): give sk the 4-tuple
   * saddr:num -> daddr:dport and hash it.
   *
   * Unbound sk: ports are tried from a per-destination start (a keyed hash
   * of saddr/daddr/dport plus a perturbation table entry, RFC 6056 alg. 4),
   * even offsets first, then odd. A port is usable if it has no bind bucket,
   * or its bucket was made by connect() (never by bind()) and the 4-tuple is
   * unique in ehash. Bound sk (bind before connect): only the 4-tuple is
   * checked, and not even that when sk is alone on its port.
   *
   * A TIME_WAIT socket on the same 4-tuple makes the tuple taken unless
   * twReuse(tw, bound) agrees (tcp_twsk_unique; `bound` is true on the
   * bind-before-connect path, where Linux does not require tcp_tw_reuse).
   * If it agrees, the tables unhash tw from ehash and its bind bucket at
   * once; the caller only stops tw's timer and frees it.
   *
   * On success sets sk.num (if 0), rcvSaddr = saddr, daddr, dport, adds sk to
   * its bind bucket (if it was unbound), inserts it into ehash and returns 0.
   * Returns -EADDRNOTAVAIL when no port (or not the bound port) is free,
   * leaving sk unchanged.
   */
  connectPort(
    sk: S,
    saddr: number,
    daddr: number,
    dport: number,
    twReuse?: (tw: S, bound: boolean) => boolean,
  ): number {
    if (sk.hashLinks.inEhash) throw new Error('connectPort: socket already in the established hash');
    return this.hashConnect(sk, null, null, saddr, daddr, dport, twReuse);
  }



  /** The tuple's ehash value: IPv6 when sa6/da6 are given (left in the IPv6 key), else IPv4. */
  #connectHash(sa6: Uint8Array | null, da6: Uint8Array | null, saddr: number, daddr: number, ports: number): number {
    if (sa6 !== null) {
      this.eh6.setKey(sa6, 0, da6!, 0, ports);
      return this.eh6.hashKey();
    }
    return inetEhashfn4(this.#ehashSecret, saddr, daddr, ports);
  }

  /** __inet_hash_connect for either family (sa6/da6 null: IPv4; inet6_hash_connect passes them). */
  hashConnect(
    sk: S,
    sa6: Uint8Array | null,
    da6: Uint8Array | null,
    saddr: number,
    daddr: number,
    dport: number,
    twReuse: ((tw: S, bound: boolean) => boolean) | undefined,
  ): number {
    const port = sk.num;
    if (port !== 0) {
      const l = sk.hashLinks;
      const tb = l.tb;
      const ports = (port << 16) | dport;
      const hash = this.#connectHash(sa6, da6, saddr, daddr, ports);
      const alone = tb !== null && tb.owners === sk && l.bnext === null;
      if (!alone && !this.#checkEstablished(hash, sa6, da6, saddr, daddr, ports, twReuse, true)) {
        return -EADDRNOTAVAIL;
      }
      this.#connectFinish(sk, sa6, da6, saddr, daddr, dport, hash, ports);
      return 0;
    }

    const low = this.#range.low;
    const high = this.#range.high + 1; // [low, high)
    let remaining = high - low;
    if (remaining > 1) remaining &= ~1;

    const perturb = this.#perturbTable();
    const ps = this.#portSecret;
    // secure_ipv4_port_ephemeral's two halves: one picks the table entry, one is added to it
    // (secure_ipv6_port_ephemeral folds the four words of each address instead).
    let key = ps[0] | 0;
    if (sa6 !== null) {
      for (let w = 0; w < 16; w += 4) key = ehashMix(key, addrWord(sa6, w));
      for (let w = 0; w < 16; w += 4) key = ehashMix(key, addrWord(da6!, w));
    } else {
      key = ehashMix(ehashMix(key, saddr), daddr);
    }
    key = ehashMix(ehashMix(key, dport), ps[3] | 0);
    const index = ehashFinal(key ^ ps[1]) & (PERTURB_SIZE - 1);
    const extra = ehashFinal(key ^ ps[2]) >>> 0;
    let offset = ((perturb[index] + extra) >>> 0) % remaining;
    offset &= ~1; // even offsets first: bind(0) starts on odd ones

    for (;;) {
      let port = low + offset;
      for (let i = 0; i < remaining; i += 2, port += 2) {
        if (port >= high) port -= remaining;
        if (this.connectPortOk !== null && !this.connectPortOk(port, dport)) continue;
        let tb = this.bhash.bucket(port);
        const ports = (port << 16) | dport;
        const hash = this.#connectHash(sa6, da6, saddr, daddr, ports);
        if (tb !== undefined) {
          // A port bind() handed out is not connect()'s to share.
          if (tb.fastreuse >= 0 || tb.fastreuseport >= 0) continue;
          if (!this.#checkEstablished(hash, sa6, da6, saddr, daddr, ports, twReuse, false)) continue;
        } else {
          tb = this.bhash.bucketCreate(port);
          tb.fastreuse = -1;
          tb.fastreuseport = -1;
        }
        // Move this destination's next start on, by at least one step and by
        // a few at random when the search was short.
        const step = Math.max(i, (this.#random() & 7) * 2);
        perturb[index] = perturb[index] + step + 2;
        this.bhash.bindHash(sk, tb);
        this.#connectFinish(sk, sa6, da6, saddr, daddr, dport, hash, ports);
        return 0;
      }
      offset++;
      if ((offset & 1) === 0 || remaining <= 1) return -EADDRNOTAVAIL;
    }
  }

  /**
   * __inet_check_established: is saddr:lport -> daddr:dport free in ehash
   * (the IPv6 half when sa6/da6 are given)? A TIME_WAIT holder that twReuse
   * lets go counts as free; it is left in #recycledTw for #connectFinish to
   * unhash.
   */
  #checkEstablished(
    hash: number,
    sa6: Uint8Array | null,
    da6: Uint8Array | null,
    saddr: number,
    daddr: number,
    ports: number,
    twReuse: ((tw: S, bound: boolean) => boolean) | undefined,
    bound: boolean,
  ): boolean {
    let sk2: S | null = null;
    if (sa6 !== null) {
      this.eh6.setKey(sa6, 0, da6!, 0, ports);
      sk2 = this.eh6.findKey(hash);
    } else {
      sk2 = this.#eh4.find(hash, saddr | 0, daddr | 0, ports);
    }
    if (sk2 === null) return true;
    if (sk2.state === TCP_TIME_WAIT && twReuse !== undefined && twReuse(sk2, bound)) {
      this.#recycledTw = sk2;
      return true;
    }
    return false;
  }

  #connectFinish(
    sk: S,
    sa6: Uint8Array | null,
    da6: Uint8Array | null,
    saddr: number,
    daddr: number,
    dport: number,
    hash: number,
    ports: number,
  ): void {
    sk.rcvSaddr = saddr;
    sk.daddr = daddr;
    sk.dport = dport;
    if (sa6 !== null) {
      sk.v6RcvSaddr!.set(sa6);
      sk.v6Daddr!.set(da6!);
      this.eh6.setKey(sa6, 0, da6!, 0, ports);
      this.eh6.linkKey(sk, hash);
    } else {
      this.#eh4.insert(sk, hash, saddr | 0, daddr | 0, ports);
    }
    const tw = this.#recycledTw;
    if (tw !== null) {
      this.#recycledTw = null;
      this.ehashRemove(tw);
      if (tw.hashLinks.tb !== null) this.bhash.bindUnhash(tw); // inet_twsk_bind_unhash
    }
  }

  /** The RFC 6056 perturbation table, filled on first use (net_get_random_once). */
  #perturbTable(): Uint32Array {
    let t = this.#perturb;
    if (t === null) {
      t = new Uint32Array(PERTURB_SIZE);
      for (let i = 0; i < PERTURB_SIZE; i++) t[i] = this.#random();
      this.#perturb = t;
    }
    return t;
  }

  // === iteration ==============================================================

  /**
   * Every socket in any table, once: the established hash, then listeners,
   * then sockets that only hold a port (for `ss`). Unhashing the socket just
   * yielded is safe; a socket hashed during the walk may or may not be seen.
   */
  *sockets(): IterableIterator<S> {
    // Unhashing shifts later slots back: walk a copy, so none is skipped or seen twice.
    const est: S[] = [];
    for (const e of [this.#eh4, this.eh6]) for (const sk of e.socks) if (sk !== null) est.push(sk);
    yield* est;
    for (const head of this.#lhash) {
      let sk: InetSock | null = head;
      while (sk !== null) {
        const next: InetSock | null = sk.hashLinks.lnext;
        if (!sk.hashLinks.inEhash) yield sk as S;
        sk = next;
      }
    }
    for (const tb of [...this.bhash.buckets()]) {
      let sk: InetSock | null = tb.owners;
      while (sk !== null) {
        const next: InetSock | null = sk.hashLinks.bnext;
        if (!sk.hashLinks.inEhash && !sk.hashLinks.listening) yield sk as S;
        sk = next;
      }
    }
  }
}
