/**
 * What the TCP tables know of a socket (the sock_common part of struct
 * sock, with inet_sock's addresses and ports): the InetSock shape every
 * hashed sock has (full sockets, request socks, TIME_WAIT socks), its
 * links into the three tables (HashLinks), and the records the tables
 * keep (a bind bucket per port, a SO_REUSEPORT group per listening
 * address). Data only: the tables are inet_hashtables.ts (established and
 * listening), inet_connection_sock.ts (bind buckets) and
 * ipv6/inet6_hashtables.ts (the IPv6 lookups).
 *
 * Addresses are IPv4 as uint32 in host order (skc_rcv_saddr, skc_daddr)
 * and, for AF_INET6 sockets, 16-byte arrays next to them (sk_v6_rcv_saddr,
 * sk_v6_daddr), ports plain numbers; nothing builds a string key. As in
 * Linux, an AF_INET6 socket talking to an IPv4 peer holds v4-mapped v6
 * addresses and the plain IPv4 ones, and lives in the IPv4 tables: the IPv4
 * path never looks at the v6 fields.
 */
import { TCP_CLOSE } from '../core/sock.js';
import { AF_INET, AF_INET6 } from '../../uapi.js';

/**
 * LOOPBACK4_IPV6 (127.0.0.6): the IPv4 rcv_saddr an AF_INET6 socket bound to
 * a real IPv6 address gets, so IPv4 lookups never match it (inet6_bind).
 */
export const LOOPBACK4_IPV6 = 0x7f000006;

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
export function v6Any(a: Uint8Array, off: number): boolean {
  return (addrWord(a, off) | addrWord(a, off + 4) | addrWord(a, off + 8) | addrWord(a, off + 12)) === 0;
}

/** ::ffff:0:0/96 */
export function v6Mapped(a: Uint8Array, off: number): boolean {
  return (addrWord(a, off) | addrWord(a, off + 4)) === 0 && addrWord(a, off + 8) === 0xffff;
}

/** ipv6_addr_equal */
export function v6Equal(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  return (
    addrWord(a, aOff) === addrWord(b, bOff) &&
    addrWord(a, aOff + 4) === addrWord(b, bOff + 4) &&
    addrWord(a, aOff + 8) === addrWord(b, bOff + 8) &&
    addrWord(a, aOff + 12) === addrWord(b, bOff + 12)
  );
}
