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

/** TCP states, Linux's numbering (include/net/tcp_states.h). */
export const TCP_ESTABLISHED = 1;
export const TCP_SYN_SENT = 2;
export const TCP_SYN_RECV = 3;
export const TCP_FIN_WAIT1 = 4;
export const TCP_FIN_WAIT2 = 5;
export const TCP_TIME_WAIT = 6;
export const TCP_CLOSE = 7;
export const TCP_CLOSE_WAIT = 8;
export const TCP_LAST_ACK = 9;
export const TCP_LISTEN = 10;
export const TCP_CLOSING = 11;
export const TCP_NEW_SYN_RECV = 12;

/** Errno values (Linux, x86-64); the tables return them negated. */
import { EADDRINUSE, EADDRNOTAVAIL, EINVAL } from '../errno.js';
export { EADDRINUSE, EADDRNOTAVAIL, EINVAL };

/** Address families (include/linux/socket.h). */
export const AF_INET = 2;
export const AF_INET6 = 10;
/**
 * LOOPBACK4_IPV6 (127.0.0.6): the IPv4 rcv_saddr an AF_INET6 socket bound to
 * a real IPv6 address gets, so IPv4 lookups never match it (inet6_bind).
 */
export const LOOPBACK4_IPV6 = 0x7f000006;

/** The default net.ipv4.ip_local_port_range. */
export const DEFAULT_LOCAL_PORT_RANGE: readonly [number, number] = [32768, 60999];

/** What the tables need of a socket (struct sock / inet_sock / inet_connection_sock parts). */
export interface InetSock {
  /** TCP_* above (sk_state). */
  state: number;
  /** Local bound address, 0 = INADDR_ANY (sk_rcv_saddr). */
  rcvSaddr: number;
  /** Local port (inet_num), 0 if unbound. */
  num: number;
  /** Remote address, 0 if unconnected (inet_daddr). */
  daddr: number;
  /** Remote port (inet_dport). */
  dport: number;
  /** SO_REUSEADDR (sk_reuse). */
  reuse: boolean;
  /** SO_REUSEPORT (sk_reuseport). */
  reuseport: boolean;
  /** Owner uid, for SO_REUSEPORT's same-user rule (sock_i_uid). */
  uid: number;
  /** AF_INET or AF_INET6 (sk_family). */
  family: number;
  /** IPV6_V6ONLY (sk_ipv6only): an AF_INET6 socket that takes no IPv4. */
  ipv6only: boolean;
  /**
   * The connection runs over IPv6 (icsk_af_ops is ipv6_specific): false for
   * AF_INET and for an AF_INET6 socket whose peer is v4-mapped. Decides the
   * established-hash pool; fixed while the socket is hashed.
   */
  ipv6: boolean;
  /** sk_v6_rcv_saddr (AF_INET6 only, else null): local address, :: = any, v4-mapped for IPv4. */
  v6RcvSaddr: Uint8Array | null;
  /** sk_v6_daddr (AF_INET6 only, else null): the peer, v4-mapped for an IPv4 peer. */
  v6Daddr: Uint8Array | null;
  /** Managed by the tables: do not touch outside this module. */
  hashLinks: HashLinks;
}

/**
 * A SO_REUSEPORT listening group (struct sock_reuseport): listeners on the
 * same exact address and port, same owner. Members are kept dense; removing
 * one moves the last member into its slot, as reuseport_detach_sock does.
 */
export class ReuseportGroup {
  readonly socks: InetSock[] = [];
  constructor(readonly uid: number) {}
}

/**
 * struct inet_bind_bucket: one per local port in use.
 *
 * fastreuse: 1 = every owner has SO_REUSEADDR and none listens, so another
 * such socket may join without a conflict walk; 0 = walk; -1 = created by
 * connect() (__inet_hash_connect), which bind() never fast-paths and which
 * connect() may share as long as the 4-tuple is unique.
 * fastreuseport: FASTREUSEPORT_ANY / _STRICT with fastuid and fastRcvSaddr,
 * 0 = walk, -1 = created by connect().
 */
export class InetBindBucket {
  fastreuse = 0;
  fastreuseport = 0;
  fastuid = 0;
  fastRcvSaddr = 0;
  /** The family, IPV6_V6ONLY and IPv6 address of the socket fastreuseport STRICT was recorded from. */
  fastSkFamily = AF_INET;
  fastIpv6Only = false;
  readonly fastV6RcvSaddr = new Uint8Array(16);
  /** Head of the owners list (tb->owners), chained through hashLinks.bnext/bprev. */
  owners: InetSock | null = null;
  /** Number of owners. */
  count = 0;
  constructor(readonly port: number) {}
}

/**
 * tb->fastreuseport. ANY: any SO_REUSEPORT socket of fastuid may join
 * without a walk. STRICT: only one bound to fastRcvSaddr, or to anything
 * when fastRcvSaddr is the wildcard.
 */
export const FASTREUSEPORT_ANY = 1;
export const FASTREUSEPORT_STRICT = 2;

/**
 * Per-socket link state for the three tables (the sk_node, sk_bind_node,
 * sk_hash, icsk_bind_hash and sk_reuseport_cb of struct sock), allocated
 * once with the socket. Read-only outside this module.
 */
export class HashLinks {
  // --- ehash --------------------------------------------------------------
  /** In the established hash. */
  inEhash = false;
  /** sk_hash: inetEhashfn() of the 4-tuple, int32. */
  hash = 0;
  /** Hashed in the IPv6 half (the socket was hashed with ipv6 set). */
  ehash6 = false;
  // --- lhash2 -------------------------------------------------------------
  /** In the listening hash. */
  listening = false;
  /** The (address, port) hash the listener is chained under, int32. */
  lhash = 0;
  lnext: InetSock | null = null;
  lprev: InetSock | null = null;
  /** sk_reuseport_cb: the group this listener belongs to, if SO_REUSEPORT. */
  reuseportGroup: ReuseportGroup | null = null;
  // --- bhash --------------------------------------------------------------
  /** icsk_bind_hash: the bind bucket holding this socket's port. */
  tb: InetBindBucket | null = null;
  bnext: InetSock | null = null;
  bprev: InetSock | null = null;

  /** Holds a port in a bind bucket. */
  get bound(): boolean {
    return this.tb !== null;
  }
}

/**
 * The fields the tables read, as a class to build on: full sockets,
 * request socks and TIME_WAIT socks all are one of these.
 */
export class InetSockBase implements InetSock {
  state = TCP_CLOSE;
  rcvSaddr = 0;
  num = 0;
  daddr = 0;
  dport = 0;
  reuse = false;
  reuseport = false;
  uid = 0;
  family = AF_INET;
  ipv6only = false;
  ipv6 = false;
  v6RcvSaddr: Uint8Array | null = null;
  v6Daddr: Uint8Array | null = null;
  readonly hashLinks = new HashLinks();

  /** sk_family = AF_INET6: the v6 address fields exist from now on (::, unconnected). */
  setFamily6(): void {
    this.family = AF_INET6;
    if (this.v6RcvSaddr === null) {
      this.v6RcvSaddr = new Uint8Array(16);
      this.v6Daddr = new Uint8Array(16);
    }
  }

  /** Take over another sock's identity: family, addresses, ports, reuse flags, owner. */
  copyTuple(from: InetSock): void {
    this.rcvSaddr = from.rcvSaddr;
    this.num = from.num;
    this.daddr = from.daddr;
    this.dport = from.dport;
    this.reuse = from.reuse;
    this.reuseport = from.reuseport;
    this.uid = from.uid;
    this.ipv6only = from.ipv6only;
    this.ipv6 = from.ipv6;
    if (from.family === AF_INET6) {
      this.setFamily6();
      this.v6RcvSaddr!.set(from.v6RcvSaddr!);
      this.v6Daddr!.set(from.v6Daddr!);
    } else {
      this.family = from.family;
    }
  }
}

/** One 32-bit word of an address array, big-endian, as int32. */
export function addrWord(a: Uint8Array, off: number): number {
  return (a[off] << 24) | (a[off + 1] << 16) | (a[off + 2] << 8) | a[off + 3];
}

/** ipv6_addr_any */
function v6Any(a: Uint8Array, off: number): boolean {
  return (addrWord(a, off) | addrWord(a, off + 4) | addrWord(a, off + 8) | addrWord(a, off + 12)) === 0;
}

/** ::ffff:0:0/96 */
function v6Mapped(a: Uint8Array, off: number): boolean {
  return (addrWord(a, off) | addrWord(a, off + 4)) === 0 && addrWord(a, off + 8) === 0xffff;
}

/** ipv6_addr_equal */
function v6Equal(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  return (
    addrWord(a, aOff) === addrWord(b, bOff) &&
    addrWord(a, aOff + 4) === addrWord(b, bOff + 4) &&
    addrWord(a, aOff + 8) === addrWord(b, bOff + 8) &&
    addrWord(a, aOff + 12) === addrWord(b, bOff + 12)
  );
}

/**
 * ipv6_rcv_saddr_equal: do two local addresses overlap for bind()? sk1 is
 * AF_INET6; sk2's v6 address is null for an AF_INET socket (counted as
 * v4-mapped). With match*Wildcard, :: on that side overlaps everything
 * its IPV6_V6ONLY lets it take.
 */
function ipv6RcvSaddrEqual(
  a1: Uint8Array,
  a2: Uint8Array | null,
  v4a1: number,
  v4a2: number,
  only1: boolean,
  only2: boolean,
  matchWild1: boolean,
  matchWild2: boolean,
): boolean {
  const mapped1 = v6Mapped(a1, 0);
  const mapped2 = a2 === null || v6Mapped(a2, 0);
  if (mapped1 && mapped2) return ipv4RcvSaddrEqual(v4a1, v4a2, only2, matchWild1, matchWild2);
  const any1 = v6Any(a1, 0);
  const any2 = a2 !== null && v6Any(a2, 0);
  if (any1 && any2) return true;
  if (any2 && matchWild2 && !(only2 && mapped1)) return true;
  if (any1 && matchWild1 && !(only1 && mapped2)) return true;
  return a2 !== null && v6Equal(a1, 0, a2, 0);
}

/** ipv4_rcv_saddr_equal: an IPV6_V6ONLY sk2 never overlaps an IPv4 address. */
function ipv4RcvSaddrEqual(a1: number, a2: number, only2: boolean, matchWild1: boolean, matchWild2: boolean): boolean {
  if (only2) return false;
  if ((a1 | 0) === (a2 | 0)) return true;
  return (matchWild1 && a1 === 0) || (matchWild2 && a2 === 0);
}

/** inet_rcv_saddr_equal: sk and sk2 bound to overlapping addresses (either family). */
export function inetRcvSaddrEqual(sk: InetSock, sk2: InetSock, matchWildcard: boolean): boolean {
  if (sk.family === AF_INET6) {
    return ipv6RcvSaddrEqual(
      sk.v6RcvSaddr!,
      sk2.family === AF_INET6 ? sk2.v6RcvSaddr : null,
      sk.rcvSaddr,
      sk2.rcvSaddr,
      sk.ipv6only,
      sk2.ipv6only,
      matchWildcard,
      matchWildcard,
    );
  }
  return ipv4RcvSaddrEqual(sk.rcvSaddr, sk2.rcvSaddr, sk2.ipv6only, matchWildcard, matchWildcard);
}

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
function reciprocalScale(hash: number, n: number): number {
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
class Ehash6<S extends InetSock> extends EhashSlots<S> {
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
  #low: number;
  #high: number;

  // ehash: open-addressed slot arrays, one per family
  readonly #eh4: Ehash4<S>;
  readonly #ehashSecret: number;
  /** The IPv6 connections' half of ehash, with its own secret (inet6_ehash_secret). */
  readonly #eh6: Ehash6<S>;
  readonly #ehash6Secret: number;

  // lhash2
  #lhash: (S | null)[];
  #lhashMask: number;
  #listening = 0;
  readonly #lhashSecret: number;

  // bhash
  readonly #bhash = new Map<number, InetBindBucket>();
  #bound = 0;

  // __inet_hash_connect
  readonly #portSecret: Uint32Array;
  #perturb: Uint32Array | null = null;
  /** The TIME_WAIT socket __inet_check_established agreed to recycle, handed to its caller. */
  #recycledTw: S | null = null;

  constructor(opts: InetHashinfoOptions) {
    this.#random = opts.random;
    const [low, high] = opts.portRange ?? DEFAULT_LOCAL_PORT_RANGE;
    checkPortRange(low, high);
    this.#low = low;
    this.#high = high;
    this.#ehashSecret = this.#random() | 0;
    this.#lhashSecret = this.#random() | 0;
    // Derived rather than drawn, so adding IPv6 left every other random draw where it was.
    this.#ehash6Secret = ehashFinal(this.#ehashSecret ^ 0x6a09e667);
    this.#eh6 = new Ehash6<S>(this.#ehash6Secret, EHASH_MIN_BUCKETS);
    this.#portSecret = new Uint32Array(4);
    for (let i = 0; i < 4; i++) this.#portSecret[i] = this.#random();
    this.#eh4 = new Ehash4<S>(pow2AtLeast(opts.ehashBuckets ?? 1024, EHASH_MIN_BUCKETS));
    this.#lhash = bucketArray<S>(LHASH_MIN_BUCKETS);
    this.#lhashMask = LHASH_MIN_BUCKETS - 1;
  }

  /** Sockets in the established hash (all connected states, request socks, TIME_WAIT). */
  get established(): number {
    return this.#eh4.count + this.#eh6.count;
  }
  /** Sockets in the listening hash. */
  get listening(): number {
    return this.#listening;
  }
  /** Sockets holding a local port (bind-bucket owners, TIME_WAIT included). */
  get bound(): number {
    return this.#bound;
  }
  /** Ports with a bind bucket. */
  get bindBuckets(): number {
    return this.#bhash.size;
  }
  /** IPv4 established-hash slots (a power of two; at most half are used). */
  get ehashBuckets(): number {
    return this.#eh4.buckets;
  }
  /** The local port range in use, inclusive. */
  get portRange(): [number, number] {
    return [this.#low, this.#high];
  }
  /** Change ip_local_port_range (inclusive). */
  setPortRange(low: number, high: number): void {
    checkPortRange(low, high);
    this.#low = low;
    this.#high = high;
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
      const e = this.#eh6;
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
    if (l.ehash6) this.#eh6.unlink(sk);
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

  /**
   * __inet6_lookup_established: the IPv6 connection for a segment from
   * saddr:sport to daddr:dport, the addresses read in place (saddr at sOff
   * of sa, daddr at dOff of da: the packet's own header). Allocates nothing.
   */
  lookupEstablished6(sa: Uint8Array, sOff: number, sport: number, da: Uint8Array, dOff: number, dport: number): S | null {
    const e = this.#eh6;
    e.setKey(da, dOff, sa, sOff, (dport << 16) | sport);
    return e.findKey(e.hashKey());
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
    if (!this.#getPort(sk, sk.num)) {
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
  #lhashfn(addr: number, port: number): number {
    return ehashFinal(ehashMix(this.#lhashSecret, addr)) ^ port;
  }

  /**
   * ipv6_portaddr_hash: :: hashes as 0.0.0.0 and ::ffff:a.b.c.d as a.b.c.d,
   * so both families' wildcard (and mapped) listeners share IPv4's chains.
   */
  #lhashfn6(a: Uint8Array, off: number, port: number): number {
    if (v6Any(a, off)) return this.#lhashfn(0, port);
    if (v6Mapped(a, off)) return this.#lhashfn(addrWord(a, off + 12), port);
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
    const h = this.#lhashfn(daddr, hnum);
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

  /**
   * inet6_lookup_listener: the AF_INET6 listener for a SYN from saddr:sport
   * to daddr:dport (addresses in place, as lookupEstablished6): one bound
   * to daddr, else one on [::]. AF_INET listeners never take IPv6.
   */
  lookupListener6(sa: Uint8Array, sOff: number, sport: number, da: Uint8Array, dOff: number, dport: number): S | null {
    const sk = this.#lhash2Lookup6(sa, sOff, sport, da, dOff, dport, false);
    if (sk !== null) return sk;
    return this.#lhash2Lookup6(sa, sOff, sport, da, dOff, dport, true);
  }

  /**
   * inet6_lhash2_lookup: best-scoring AF_INET6 listener on (daddr, hnum),
   * or on (::, hnum) when wildcard (compute_score in inet6_hashtables.c: 1
   * for a match, no device binding here). The reuseport hash uses the
   * packet's addresses either way.
   */
  #lhash2Lookup6(sa: Uint8Array, sOff: number, sport: number, da: Uint8Array, dOff: number, hnum: number, wildcard: boolean): S | null {
    const h = wildcard ? this.#lhashfn(0, hnum) : this.#lhashfn6(da, dOff, hnum);
    let sk: InetSock | null = this.#lhash[h & this.#lhashMask];
    while (sk !== null) {
      const l: HashLinks = sk.hashLinks;
      if (l.lhash === h && sk.family === AF_INET6 && sk.num === hnum) {
        const a = sk.v6RcvSaddr!;
        if (wildcard ? v6Any(a, 0) : v6Equal(a, 0, da, dOff)) {
          const group = l.reuseportGroup;
          if (group !== null) {
            const phash = inet6Ehashfn(this.#ehash6Secret, da, dOff, sa, sOff, (hnum << 16) | sport);
            return group.socks[reciprocalScale(phash, group.socks.length)] as S;
          }
          return sk as S;
        }
      }
      sk = l.lnext;
    }
    return null;
  }

  #lhashLink(sk: S): void {
    const l = sk.hashLinks;
    const h = sk.family === AF_INET6 ? this.#lhashfn6(sk.v6RcvSaddr!, 0, sk.num) : this.#lhashfn(sk.rcvSaddr, sk.num);
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
   * inet_bind's port part (inet_csk_get_port): take addr:port for sk, or any
   * free port in the local range when port is 0 (inet_csk_find_open_port:
   * random start, odd ports first, lower half first under SO_REUSEADDR).
   * Returns 0 with sk.rcvSaddr/sk.num set, -EADDRINUSE on a conflict or when
   * no port is free (sk unchanged), -EINVAL if sk is already bound. The
   * caller checks that addr is local and that a port below 1024 is allowed.
   */
  bind(sk: S, addr: number, port: number): number {
    if (sk.num !== 0 || sk.hashLinks.tb !== null) return -EINVAL;
    const oldAddr = sk.rcvSaddr;
    sk.rcvSaddr = addr;
    if (!this.#getPort(sk, port)) {
      sk.rcvSaddr = oldAddr;
      return -EADDRINUSE;
    }
    return 0;
  }

  /**
   * inet6_bind's port part: as bind() for an AF_INET6 socket, addr being
   * its IPv6 address (:: for any, v4-mapped for an IPv4 one). Sets
   * v6RcvSaddr and the IPv4 rcvSaddr that goes with it (the mapped address,
   * 0 for ::, LOOPBACK4_IPV6 for a real IPv6 address) so IPv4 lookups and
   * conflict checks see the socket as Linux's do. The caller sets ipv6only
   * first (inet6_bind makes a socket bound to a real IPv6 address v6-only).
   */
  bind6(sk: S, addr: Uint8Array, port: number): number {
    if (sk.num !== 0 || sk.hashLinks.tb !== null) return -EINVAL;
    if (sk.family !== AF_INET6) throw new Error('bind6: not an AF_INET6 socket');
    const a = sk.v6RcvSaddr!;
    const old = Uint8Array.from(a);
    const oldAddr = sk.rcvSaddr;
    a.set(addr);
    sk.rcvSaddr = v6Any(a, 0) ? 0 : v6Mapped(a, 0) ? addrWord(a, 12) >>> 0 : LOOPBACK4_IPV6;
    if (!this.#getPort(sk, port)) {
      a.set(old);
      sk.rcvSaddr = oldAddr;
      return -EADDRINUSE;
    }
    return 0;
  }

  /**
   * inet_put_port: release sk's port (sk.num becomes 0); the bucket goes
   * with its last owner. A listener is taken out of the listening hash
   * first. A no-op if sk holds no port.
   */
  unbind(sk: S): void {
    const l = sk.hashLinks;
    if (l.listening) this.unlisten(sk);
    if (l.tb === null) return;
    this.#bindUnhash(sk);
    sk.num = 0;
  }

  /**
   * __inet_inherit_port: an accepted child takes its listener's port, in the
   * same bucket, with no conflict check (it shares the port by construction).
   * Sets child.num.
   */
  inheritPort(child: S, parent: S): void {
    const tb = parent.hashLinks.tb;
    if (tb === null) throw new Error('inheritPort: the parent holds no port');
    if (child.hashLinks.tb !== null) throw new Error('inheritPort: the child already holds a port');
    this.#bindHash(child, tb);
  }

  /** The bind bucket of a port, if any (read-only; for diagnostics and tests). */
  bindBucket(port: number): InetBindBucket | undefined {
    return this.#bhash.get(port);
  }

  /** inet_csk_get_port on sk as it stands (state, rcvSaddr); true on success. */
  #getPort(sk: S, snum: number): boolean {
    const reuse = sk.reuse && sk.state !== TCP_LISTEN;
    let tb: InetBindBucket | undefined;
    if (snum === 0) {
      const port = this.#findOpenPort(sk);
      if (port < 0) return false;
      tb = this.#bhash.get(port) ?? this.#bucketCreate(port);
    } else {
      tb = this.#bhash.get(snum);
      if (tb === undefined) {
        tb = this.#bucketCreate(snum);
      } else if (tb.owners !== null) {
        const fast = (tb.fastreuse > 0 && reuse) || this.#reuseportMatch(tb, sk);
        if (!fast && this.#bindConflict(sk, tb, true, true)) return false;
      }
    }
    this.#updateFastreuse(tb, sk);
    if (sk.hashLinks.tb === null) this.#bindHash(sk, tb);
    return true;
  }

  /**
   * inet_csk_bind_conflict: does another owner of tb stop sk from sharing
   * its port? relax: allow two SO_REUSEADDR non-listeners (a real bind;
   * port 0's search passes false so it prefers ports nobody overlaps).
   * reuseportOk: allow two SO_REUSEPORT sockets of one owner (or a
   * TIME_WAIT one). Addresses overlap when equal or either is INADDR_ANY.
   */
  #bindConflict(sk: InetSock, tb: InetBindBucket, relax: boolean, reuseportOk: boolean): boolean {
    const reuse = sk.reuse;
    const reuseport = sk.reuseport;
    for (let sk2 = tb.owners; sk2 !== null; sk2 = sk2.hashLinks.bnext) {
      if (sk2 === sk) continue;
      if (!inetRcvSaddrEqual(sk, sk2, true)) continue;
      const sameOwner = sk2.state === TCP_TIME_WAIT || sk2.uid === sk.uid;
      if (reuse && sk2.reuse && sk2.state !== TCP_LISTEN) {
        if (!relax || (!reuseportOk && reuseport && sk2.reuseport && sameOwner)) return true;
      } else if (!reuseportOk || !reuseport || !sk2.reuseport || !sameOwner) {
        return true;
      }
    }
    return false;
  }

  /** sk_reuseport_match: may sk join tb on the SO_REUSEPORT fast path? */
  #reuseportMatch(tb: InetBindBucket, sk: InetSock): boolean {
    if (tb.fastreuseport <= 0 || !sk.reuseport || tb.fastuid !== sk.uid) return false;
    if (tb.fastreuseport === FASTREUSEPORT_ANY) return true;
    // STRICT: only the recorded address, or anything under a recorded wildcard.
    if (tb.fastSkFamily === AF_INET6) {
      return ipv6RcvSaddrEqual(
        tb.fastV6RcvSaddr,
        sk.family === AF_INET6 ? sk.v6RcvSaddr : null,
        tb.fastRcvSaddr,
        sk.rcvSaddr,
        tb.fastIpv6Only,
        sk.ipv6only,
        true,
        false,
      );
    }
    return ipv4RcvSaddrEqual(tb.fastRcvSaddr, sk.rcvSaddr, sk.ipv6only, true, false);
  }

  /** Record sk as the socket fastreuseport STRICT compares against (the fast_* fields). */
  #setFastSock(tb: InetBindBucket, sk: InetSock): void {
    tb.fastuid = sk.uid;
    tb.fastRcvSaddr = sk.rcvSaddr;
    tb.fastSkFamily = sk.family;
    tb.fastIpv6Only = sk.ipv6only;
    if (sk.family === AF_INET6) tb.fastV6RcvSaddr.set(sk.v6RcvSaddr!);
  }

  /** inet_csk_update_fastreuse: fold sk (about to own tb, or re-checked as a listener) into tb's summary. */
  #updateFastreuse(tb: InetBindBucket, sk: InetSock): void {
    const reuse = sk.reuse && sk.state !== TCP_LISTEN;
    if (tb.owners === null) {
      tb.fastreuse = reuse ? 1 : 0;
      if (sk.reuseport) {
        tb.fastreuseport = FASTREUSEPORT_ANY;
        this.#setFastSock(tb, sk);
      } else {
        tb.fastreuseport = 0;
      }
      return;
    }
    if (!reuse) tb.fastreuse = 0;
    if (sk.reuseport) {
      // No conflict with sk, but the bucket did not match it on the fast path:
      // restart the fast path from sk, checking addresses from now on.
      if (!this.#reuseportMatch(tb, sk)) {
        tb.fastreuseport = FASTREUSEPORT_STRICT;
        this.#setFastSock(tb, sk);
      }
    } else {
      tb.fastreuseport = 0;
    }
  }

  /** inet_csk_find_open_port: a port sk may bind, or -1. */
  #findOpenPort(sk: InetSock): number {
    let attemptHalf = sk.reuse ? 1 : 0;
    for (;;) {
      let low = this.#low;
      let high = this.#high + 1; // [low, high)
      if (high - low < 4) attemptHalf = 0;
      if (attemptHalf !== 0) {
        const half = low + (((high - low) >> 2) << 1);
        if (attemptHalf === 1) high = half;
        else low = half;
      }
      let remaining = high - low;
      if (remaining > 1) remaining &= ~1;
      // Odd offsets first: connect() starts on even ones.
      let offset = ((this.#random() >>> 0) % remaining) | 1;
      for (;;) {
        let port = low + offset;
        for (let i = 0; i < remaining; i += 2, port += 2) {
          if (port >= high) port -= remaining;
          const tb = this.#bhash.get(port);
          if (tb === undefined || !this.#bindConflict(sk, tb, false, false)) return port;
        }
        offset--;
        if ((offset & 1) !== 0 || offset < 0) break; // both parities done
      }
      if (attemptHalf === 1) {
        attemptHalf = 2; // now the upper half
        continue;
      }
      return -1;
    }
  }

  #bucketCreate(port: number): InetBindBucket {
    const tb = new InetBindBucket(port);
    this.#bhash.set(port, tb);
    return tb;
  }

  /** inet_bind_hash: sk becomes an owner of tb and takes its port. */
  #bindHash(sk: InetSock, tb: InetBindBucket): void {
    const l = sk.hashLinks;
    const head = tb.owners;
    l.bprev = null;
    l.bnext = head;
    if (head !== null) head.hashLinks.bprev = sk;
    tb.owners = sk;
    tb.count++;
    l.tb = tb;
    sk.num = tb.port;
    this.#bound++;
  }

  /** Drop sk from its bucket, and the bucket if sk was the last owner (inet_bind_bucket_destroy). */
  #bindUnhash(sk: InetSock): void {
    const l = sk.hashLinks;
    const tb = l.tb!;
    const next = l.bnext;
    const prev = l.bprev;
    if (prev === null) tb.owners = next;
    else prev.hashLinks.bnext = next;
    if (next !== null) next.hashLinks.bprev = prev;
    l.bnext = null;
    l.bprev = null;
    l.tb = null;
    tb.count--;
    this.#bound--;
    if (tb.owners === null) this.#bhash.delete(tb.port);
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
    return this.#hashConnect(sk, null, null, saddr, daddr, dport, twReuse);
  }

  /**
   * inet6_hash_connect: connectPort for a connection over IPv6 (sk.ipv6
   * set, an AF_INET6 socket): saddr/daddr are its IPv6 addresses, copied
   * into v6RcvSaddr/v6Daddr on success; the IPv4 fields get
   * LOOPBACK4_IPV6 as tcp_v6_connect leaves them. Same port search and
   * TIME_WAIT rules, the tuple checked in the IPv6 half of ehash.
   */
  connectPort6(
    sk: S,
    saddr: Uint8Array,
    daddr: Uint8Array,
    dport: number,
    twReuse?: (tw: S, bound: boolean) => boolean,
  ): number {
    if (sk.hashLinks.inEhash) throw new Error('connectPort6: socket already in the established hash');
    if (!sk.ipv6 || sk.family !== AF_INET6) throw new Error('connectPort6: not an IPv6 connection');
    return this.#hashConnect(sk, saddr, daddr, LOOPBACK4_IPV6, LOOPBACK4_IPV6, dport, twReuse);
  }

  /** The tuple's ehash value: IPv6 when sa6/da6 are given (left in the IPv6 key), else IPv4. */
  #connectHash(sa6: Uint8Array | null, da6: Uint8Array | null, saddr: number, daddr: number, ports: number): number {
    if (sa6 !== null) {
      this.#eh6.setKey(sa6, 0, da6!, 0, ports);
      return this.#eh6.hashKey();
    }
    return inetEhashfn4(this.#ehashSecret, saddr, daddr, ports);
  }

  /** __inet_hash_connect for either family (sa6/da6 null: IPv4). */
  #hashConnect(
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

    const low = this.#low;
    const high = this.#high + 1; // [low, high)
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
        let tb = this.#bhash.get(port);
        const ports = (port << 16) | dport;
        const hash = this.#connectHash(sa6, da6, saddr, daddr, ports);
        if (tb !== undefined) {
          // A port bind() handed out is not connect()'s to share.
          if (tb.fastreuse >= 0 || tb.fastreuseport >= 0) continue;
          if (!this.#checkEstablished(hash, sa6, da6, saddr, daddr, ports, twReuse, false)) continue;
        } else {
          tb = this.#bucketCreate(port);
          tb.fastreuse = -1;
          tb.fastreuseport = -1;
        }
        // Move this destination's next start on, by at least one step and by
        // a few at random when the search was short.
        const step = Math.max(i, (this.#random() & 7) * 2);
        perturb[index] = perturb[index] + step + 2;
        this.#bindHash(sk, tb);
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
      this.#eh6.setKey(sa6, 0, da6!, 0, ports);
      sk2 = this.#eh6.findKey(hash);
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
      this.#eh6.setKey(sa6, 0, da6!, 0, ports);
      this.#eh6.linkKey(sk, hash);
    } else {
      this.#eh4.insert(sk, hash, saddr | 0, daddr | 0, ports);
    }
    const tw = this.#recycledTw;
    if (tw !== null) {
      this.#recycledTw = null;
      this.ehashRemove(tw);
      if (tw.hashLinks.tb !== null) this.#bindUnhash(tw); // inet_twsk_bind_unhash
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
    for (const e of [this.#eh4, this.#eh6]) for (const sk of e.socks) if (sk !== null) est.push(sk);
    yield* est;
    for (const head of this.#lhash) {
      let sk: InetSock | null = head;
      while (sk !== null) {
        const next: InetSock | null = sk.hashLinks.lnext;
        if (!sk.hashLinks.inEhash) yield sk as S;
        sk = next;
      }
    }
    for (const tb of [...this.#bhash.values()]) {
      let sk: InetSock | null = tb.owners;
      while (sk !== null) {
        const next: InetSock | null = sk.hashLinks.bnext;
        if (!sk.hashLinks.inEhash && !sk.hashLinks.listening) yield sk as S;
        sk = next;
      }
    }
  }
}
