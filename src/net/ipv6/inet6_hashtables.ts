/**
 * The IPv6 side of TCP's tables (net/ipv6/inet6_hashtables.c): lookups of
 * connections over IPv6 in the established hash's IPv6 half (their own
 * slot layout and secret, inet6_ehashfn) and of AF_INET6 listeners in the
 * listening hash both families share; inet6_hash_connect; and inet6_bind's
 * port part. The tables themselves are ipv4/inet_hashtables.ts and
 * ipv4/inet_connection_sock.ts.
 */
import { inet6Ehashfn, reciprocalScale, type InetHashinfo } from '../ipv4/inet_hashtables.js';
import { AF_INET6, EADDRINUSE, EINVAL } from '../../uapi.js';
import { type HashLinks, type InetSock, LOOPBACK4_IPV6, addrWord, v6Any, v6Equal, v6Mapped } from '../core/sock.js';

/**
 * __inet6_lookup_established: the IPv6 connection for a segment from
 * saddr:sport to daddr:dport, the addresses read in place (saddr at sOff of
 * sa, daddr at dOff of da: the packet's own header). Allocates nothing.
 */
export function inet6LookupEstablished<S extends InetSock>(
  h: InetHashinfo<S>,
  sa: Uint8Array,
  sOff: number,
  sport: number,
  da: Uint8Array,
  dOff: number,
  dport: number,
): S | null {
  const e = h.eh6;
  e.setKey(da, dOff, sa, sOff, (dport << 16) | sport);
  return e.findKey(e.hashKey());
}

/**
 * inet6_lookup_listener: the AF_INET6 listener for a SYN from saddr:sport
 * to daddr:dport (addresses in place, as inet6LookupEstablished): one
 * bound to daddr, else one on [::]. AF_INET listeners never take IPv6.
 */
export function inet6LookupListener<S extends InetSock>(
  h: InetHashinfo<S>,
  sa: Uint8Array,
  sOff: number,
  sport: number,
  da: Uint8Array,
  dOff: number,
  dport: number,
): S | null {
  const sk = inet6Lhash2Lookup(h, sa, sOff, sport, da, dOff, dport, false);
  if (sk !== null) return sk;
  return inet6Lhash2Lookup(h, sa, sOff, sport, da, dOff, dport, true);
}

/**
 * inet6_lhash2_lookup: best-scoring AF_INET6 listener on (daddr, hnum), or
 * on (::, hnum) when wildcard (compute_score in inet6_hashtables.c: 1 for a
 * match, no device binding here). The reuseport hash uses the packet's
 * addresses either way.
 */
function inet6Lhash2Lookup<S extends InetSock>(
  h: InetHashinfo<S>,
  sa: Uint8Array,
  sOff: number,
  sport: number,
  da: Uint8Array,
  dOff: number,
  hnum: number,
  wildcard: boolean,
): S | null {
  const hash = wildcard ? h.lhashfn(0, hnum) : h.lhashfn6(da, dOff, hnum);
  let sk: InetSock | null = h.lhashHead(hash);
  while (sk !== null) {
    const l: HashLinks = sk.hashLinks;
    if (l.lhash === hash && sk.family === AF_INET6 && sk.num === hnum) {
      const a = sk.v6RcvSaddr!;
      if (wildcard ? v6Any(a, 0) : v6Equal(a, 0, da, dOff)) {
        const group = l.reuseportGroup;
        if (group !== null) {
          const phash = inet6Ehashfn(h.ehash6Secret, da, dOff, sa, sOff, (hnum << 16) | sport);
          return group.socks[reciprocalScale(phash, group.socks.length)] as S;
        }
        return sk as S;
      }
    }
    sk = l.lnext;
  }
  return null;
}

/**
 * inet6_hash_connect: InetHashinfo.connectPort for a connection over IPv6
 * (sk.ipv6 set, an AF_INET6 socket): saddr/daddr are its IPv6 addresses,
 * copied into v6RcvSaddr/v6Daddr on success; the IPv4 fields get
 * LOOPBACK4_IPV6 as tcp_v6_connect leaves them. Same port search and
 * TIME_WAIT rules, the tuple checked in the IPv6 half of ehash.
 */
export function inet6HashConnect<S extends InetSock>(
  h: InetHashinfo<S>,
  sk: S,
  saddr: Uint8Array,
  daddr: Uint8Array,
  dport: number,
  twReuse?: (tw: S, bound: boolean) => boolean,
): number {
  if (sk.hashLinks.inEhash) throw new Error('inet6HashConnect: socket already in the established hash');
  if (!sk.ipv6 || sk.family !== AF_INET6) throw new Error('inet6HashConnect: not an IPv6 connection');
  return h.hashConnect(sk, saddr, daddr, LOOPBACK4_IPV6, LOOPBACK4_IPV6, dport, twReuse);
}

/**
 * inet6_bind's port part: InetBindHashtable.bind for an AF_INET6 socket,
 * addr being its IPv6 address (:: for any, v4-mapped for an IPv4 one). Sets
 * v6RcvSaddr and the IPv4 rcvSaddr that goes with it (the mapped address, 0
 * for ::, LOOPBACK4_IPV6 for a real IPv6 address) so IPv4 lookups and
 * conflict checks see the socket as Linux's do. The caller sets ipv6only
 * first (inet6_bind makes a socket bound to a real IPv6 address v6-only).
 */
export function inet6BindPort<S extends InetSock>(h: InetHashinfo<S>, sk: S, addr: Uint8Array, port: number): number {
  if (sk.num !== 0 || sk.hashLinks.tb !== null) return -EINVAL;
  if (sk.family !== AF_INET6) throw new Error('inet6BindPort: not an AF_INET6 socket');
  const a = sk.v6RcvSaddr!;
  const old = Uint8Array.from(a);
  const oldAddr = sk.rcvSaddr;
  a.set(addr);
  sk.rcvSaddr = v6Any(a, 0) ? 0 : v6Mapped(a, 0) ? addrWord(a, 12) >>> 0 : LOOPBACK4_IPV6;
  if (!h.bhash.getPort(sk, port)) {
    a.set(old);
    sk.rcvSaddr = oldAddr;
    return -EADDRINUSE;
  }
  return 0;
}
