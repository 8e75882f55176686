/**
 * TCP-MD5 signatures (RFC 2385), as net/ipv4/tcp_ipv4.c, net/ipv6/tcp_ipv6.c
 * and net/ipv4/tcp.c keep them: keys per peer address (a prefix, optionally
 * bound to an L3 domain) set with TCP_MD5SIG / TCP_MD5SIG_EXT, looked up
 * by the peer's address for every segment sent (signed) and received
 * (checked, dropped and counted when a signature is missing, unexpected or
 * wrong). Listeners keep the keys; a request sock signs with its
 * listener's key for the peer, and the child gets a copy of it.
 */
import { createHash } from 'node:crypto';
import { ipv6IsV4Mapped, ipv6PrefixEqual, prefixMask } from '../../lib/addr.js';
import { TCP_HLEN, TCPOPT_EOL, TCPOPT_NOP, type TcpOutOptions } from '../../wire/tcp.js';
import type { SkBuff } from '../core/skbuff.js';
import { SKB_DROP_REASON } from '../core/snmp.js';
import type { InetSock } from '../core/sock.js';
import { tcpSkbCb } from './tcp_skb_cb.js';
import type { TcpProto } from './tcp_proto.js';
import { TcpMd5SigKey, type TcpRequestSock, type TcpSock } from './tcp_sock.js';
import { AF_INET, AF_INET6, EINVAL, ENOENT, IPPROTO_TCP } from '../../uapi.js';

export const TCPOPT_MD5SIG = 19;
export const TCPOLEN_MD5SIG = 18;
export const TCPOLEN_MD5SIG_ALIGNED = 20;
export const TCP_MD5SIG_MAXKEYLEN = 80;
export const TCP_MD5SIG_FLAG_PREFIX = 1;
export const TCP_MD5SIG_FLAG_IFINDEX = 2;
/** sizeof(struct tcp_md5sig): sockaddr_storage, flags, prefixlen, keylen, ifindex, key[80]. */
export const TCP_MD5SIG_SIZE = 128 + 1 + 1 + 2 + 4 + TCP_MD5SIG_MAXKEYLEN;

/** Does `k` cover the peer: an IPv4 address `a4` (host order) or the 16 IPv6 bytes `a6`? */
function keyMatches(k: TcpMd5SigKey, family: number, a4: number, a6: Uint8Array | null): boolean {
  if (k.family !== family) return false;
  if (family === AF_INET) {
    const mask = prefixMask(k.prefixlen);
    return ((k.addr.readUInt32BE(0) & mask) >>> 0) === ((a4 & mask) >>> 0);
  }
  return ipv6PrefixEqual(k.addr, 0, a6!, 0, k.prefixlen);
}

/** better_md5_match: a key bound to an L3 domain beats one that is not, then the longer prefix. */
function betterMd5Match(old: TcpMd5SigKey | null, k: TcpMd5SigKey): boolean {
  if (!old) return true;
  if (!!k.l3index !== !!old.l3index) return k.l3index !== 0;
  return k.prefixlen > old.prefixlen;
}

/**
 * __tcp_md5_do_lookup: the best key of `keys` for the peer (`a4` for
 * AF_INET, `a6` for AF_INET6), or null. No device here is an L3 master, so
 * the segment's l3index is always 0.
 */
export function tcpMd5DoLookup(keys: TcpMd5SigKey[] | null, family: number, a4: number, a6: Uint8Array | null): TcpMd5SigKey | null {
  if (!keys) return null;
  let best: TcpMd5SigKey | null = null;
  const l3index = 0;
  for (const k of keys) {
    if (k.flags & TCP_MD5SIG_FLAG_IFINDEX && k.l3index !== l3index) continue;
    if (keyMatches(k, family, a4, a6) && betterMd5Match(best, k)) best = k;
  }
  return best;
}

/** tcp_md5_do_lookup_exact: the key with exactly this address, prefix, domain and flags. */
function tcpMd5DoLookupExact(keys: TcpMd5SigKey[], family: number, addr: Buffer, prefixlen: number, l3index: number, flags: number): number {
  return keys.findIndex(
    (k) => k.family === family && k.prefixlen === prefixlen && k.l3index === l3index && (k.flags & TCP_MD5SIG_FLAG_IFINDEX) === flags && k.addr.equals(addr),
  );
}

/** tcp_md5_do_add: a new key, or a new secret for an existing one. GSO goes off for the socket (sk_gso_disable). */
export function tcpMd5DoAdd(sk: TcpSock, family: number, addr: Buffer, prefixlen: number, l3index: number, flags: number, key: Buffer): number {
  const keys = (sk.md5sigInfo ??= []);
  const i = tcpMd5DoLookupExact(keys, family, addr, prefixlen, l3index, flags);
  if (i >= 0) keys[i].key = Buffer.from(key);
  else keys.unshift(new TcpMd5SigKey(family, Buffer.from(addr), prefixlen, l3index, flags, Buffer.from(key)));
  return 0;
}

/** tcp_md5_do_del. */
export function tcpMd5DoDel(sk: TcpSock, family: number, addr: Buffer, prefixlen: number, l3index: number, flags: number): number {
  const keys = sk.md5sigInfo;
  const i = keys ? tcpMd5DoLookupExact(keys, family, addr, prefixlen, l3index, flags) : -1;
  if (i < 0) return -ENOENT;
  keys!.splice(i, 1);
  return 0;
}

/**
 * tcp_v4_parse_md5_keys / tcp_v6_parse_md5_keys: setsockopt(TCP_MD5SIG or
 * TCP_MD5SIG_EXT) with a struct tcp_md5sig. A zero key length deletes the
 * key; a v4-mapped address on an AF_INET6 socket makes an AF_INET key.
 */
export function tcpParseMd5Keys(sk: TcpSock, ext: boolean, optval: Buffer): number {
  if (optval.length < TCP_MD5SIG_SIZE) return -EINVAL;
  const family = optval.readUInt16LE(0);
  const tflags = optval[128];
  const keylen = optval.readUInt16LE(130);
  const ifindex = optval.readInt32LE(132);
  const flags = tflags & TCP_MD5SIG_FLAG_IFINDEX;
  let addrFamily: number;
  let addr: Buffer;
  let prefixlen: number;
  if (sk.family === AF_INET6) {
    if (family !== AF_INET6) return -EINVAL;
    const a6 = optval.subarray(8, 24);
    const mapped = ipv6IsV4Mapped(a6);
    if (ext && tflags & TCP_MD5SIG_FLAG_PREFIX) {
      prefixlen = optval[129];
      if (prefixlen > 128 || (mapped && prefixlen > 32)) return -EINVAL;
    } else {
      prefixlen = mapped ? 32 : 128;
    }
    addrFamily = mapped ? AF_INET : AF_INET6;
    addr = Buffer.from(mapped ? a6.subarray(12, 16) : a6);
  } else {
    if (family !== AF_INET) return -EINVAL;
    prefixlen = 32;
    if (ext && tflags & TCP_MD5SIG_FLAG_PREFIX) {
      prefixlen = optval[129];
      if (prefixlen > 32) return -EINVAL;
    }
    addrFamily = AF_INET;
    addr = Buffer.from(optval.subarray(4, 8));
  }
  // The ifindex must name an L3 master device (a VRF): the stack has none.
  if (ext && ifindex && tflags & TCP_MD5SIG_FLAG_IFINDEX) return -EINVAL;
  const l3index = 0;
  if (!keylen) return tcpMd5DoDel(sk, addrFamily, addr, prefixlen, l3index, flags);
  if (keylen > TCP_MD5SIG_MAXKEYLEN) return -EINVAL;
  return tcpMd5DoAdd(sk, addrFamily, addr, prefixlen, l3index, flags, optval.subarray(136, 136 + keylen));
}

/**
 * tcp_v4_md5_lookup / tcp_v6_md5_lookup: the key `keys` (a socket's or a
 * listener's) hold for the peer of `s` (a full, request or TIME_WAIT sock):
 * an AF_INET key for an IPv4 peer (v4-mapped ones included), AF_INET6 otherwise.
 */
export function tcpMd5LookupPeer(keys: TcpMd5SigKey[] | null, s: InetSock): TcpMd5SigKey | null {
  if (!keys) return null;
  return s.ipv6 ? tcpMd5DoLookup(keys, AF_INET6, 0, s.v6Daddr) : tcpMd5DoLookup(keys, AF_INET, s.daddr, null);
}

/**
 * tcp_v4_md5_hash_skb / tcp_v6_md5_hash_skb: the digest of one segment
 * (`len` bytes of TCP header and payload at `th` in `buf`) from `saddr` to
 * `daddr`: the pseudo-header, the fixed header with a zero checksum, the
 * payload, then the key.
 */
export function tcpMd5HashSegment(
  key: TcpMd5SigKey,
  ipv6: boolean,
  saddr: number,
  daddr: number,
  saddr6: Uint8Array | null,
  daddr6: Uint8Array | null,
  buf: Buffer,
  th: number,
  len: number,
): Buffer {
  const h = createHash('md5');
  if (ipv6) {
    // struct tcp6_pseudohdr: saddr, daddr, len (be32), protocol (be32).
    const p = Buffer.alloc(40);
    p.set(saddr6!, 0);
    p.set(daddr6!, 16);
    p.writeUInt32BE(len, 32);
    p.writeUInt32BE(IPPROTO_TCP, 36);
    h.update(p);
  } else {
    // struct tcp4_pseudohdr: saddr, daddr, pad, protocol, len (be16).
    const p = Buffer.alloc(12);
    p.writeUInt32BE(saddr >>> 0, 0);
    p.writeUInt32BE(daddr >>> 0, 4);
    p[9] = IPPROTO_TCP;
    p.writeUInt16BE(len, 10);
    h.update(p);
  }
  const hdr = Buffer.from(buf.subarray(th, th + TCP_HLEN));
  hdr[16] = 0;
  hdr[17] = 0;
  h.update(hdr);
  const doff = (buf[th + 12] >>> 4) << 2;
  if (len > doff) h.update(buf.subarray(th + doff, th + len));
  h.update(key.key);
  return h.digest();
}

/**
 * Sign an outgoing segment from `s` whose options start with NOP NOP MD5
 * (tcp_options_write puts it first): the digest goes at header + 24, or
 * at `digestAt` (tcp_v4_send_ack puts the option after the timestamp).
 */
export function tcpMd5Sign(key: TcpMd5SigKey, s: InetSock, buf: Buffer, th: number, len: number, digestAt = th + TCP_HLEN + 4): void {
  const d = s.ipv6
    ? tcpMd5HashSegment(key, true, 0, 0, s.v6RcvSaddr, s.v6Daddr, buf, th, len)
    : tcpMd5HashSegment(key, false, s.rcvSaddr, s.daddr, null, null, buf, th, len);
  d.copy(buf, digestAt);
}

/**
 * The key a reset answering `skb` is signed with (tcp_v4_send_reset /
 * tcp_v6_send_reset): a full socket's for the sender; with no full socket
 * and a signed segment, the key of a listener found by the segment's
 * source port (Linux looks the listener up with th->source as the local
 * port), and only if the segment's signature checks out. False: send no
 * reset at all.
 */
export function tcpMd5ResetKey(sk: TcpSock | null, skb: SkBuff, listener: (port: number) => TcpSock | null): TcpMd5SigKey | null | false {
  const tcb = tcpSkbCb(skb);
  const lookup = (keys: TcpMd5SigKey[] | null) => (tcb.ipv6 ? tcpMd5DoLookup(keys, AF_INET6, 0, tcb.saddr6) : tcpMd5DoLookup(keys, AF_INET, tcb.saddr, null));
  if (sk) return lookup(sk.md5sigInfo);
  const loc = tcpParseMd5sigOption(skb.buf, tcb.dataOff - tcb.doff, tcb.doff);
  if (loc < 0) return null;
  const l = listener(tcb.sport);
  const key = l ? lookup(l.md5sigInfo) : null;
  if (!key) return false;
  const th = tcb.dataOff - tcb.doff;
  const d = tcpMd5HashSegment(key, tcb.ipv6, tcb.saddr, tcb.daddr, tcb.saddr6, tcb.daddr6, skb.buf, th, tcb.doff + tcb.dataLen);
  return d.equals(skb.buf.subarray(loc, loc + 16)) ? key : false;
}

/**
 * A reply built without a socket (a reset) at `th`, `len` bytes, its
 * options NOP NOP MD5 at header + 20: signed from the segment's
 * destination to its source.
 */
export function tcpMd5SignReply(key: TcpMd5SigKey, skb: SkBuff, buf: Buffer, th: number, len: number): void {
  const tcb = tcpSkbCb(skb);
  buf.writeUInt32BE(0x01011312, th + TCP_HLEN);
  buf.fill(0, th + TCP_HLEN + 4, th + TCP_HLEN + 20);
  tcpMd5HashSegment(key, tcb.ipv6, tcb.daddr, tcb.saddr, tcb.daddr6, tcb.saddr6, buf, th, len).copy(buf, th + TCP_HLEN + 4);
}

/** tcp_parse_md5sig_option: where the segment's 16 digest bytes are, or -1 (none, or not 18 bytes long). */
export function tcpParseMd5sigOption(buf: Buffer, th: number, doff: number): number {
  let i = th + TCP_HLEN;
  const end = th + doff;
  while (i < end) {
    const kind = buf[i];
    if (kind === TCPOPT_EOL) return -1;
    if (kind === TCPOPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return -1;
    const len = buf[i + 1];
    if (len < 2 || i + len > end) return -1;
    if (kind === TCPOPT_MD5SIG) return len === TCPOLEN_MD5SIG ? i + 2 : -1;
    i += len;
  }
  return -1;
}

/**
 * tcp_inbound_hash (the MD5 half, with tcp_inbound_md5_hash): may the
 * segment reach `sk` (a full socket or, for a request sock, its
 * listener)? Its signature must be there exactly when `sk` has a key for
 * the sender, and right. A drop is counted (TCPMD5NotFound,
 * TCPMD5Unexpected, TCPMD5Failure) and true returned.
 */
export function tcpInboundHash(tcp: TcpProto, sk: TcpSock, skb: SkBuff): boolean {
  const tcb = tcpSkbCb(skb);
  const keys = sk.md5sigInfo;
  const th = skb.data;
  // Nothing to check on a socket without keys and a segment without the option (the fast path).
  const loc = tcpParseMd5sigOption(skb.buf, th, tcb.doff);
  if (!keys && loc < 0) return false;
  const key = tcb.ipv6 ? tcpMd5DoLookup(keys, AF_INET6, 0, tcb.saddr6) : tcpMd5DoLookup(keys, AF_INET, tcb.saddr, null);
  const ext = tcp.mibs.TcpExt;
  const drop = tcp.mibs.Drop.counts;
  if (loc < 0) {
    if (!key) return false;
    ext.TCPMD5NotFound++;
    drop[SKB_DROP_REASON.TCP_MD5NOTFOUND]++;
    return true;
  }
  if (!key) {
    ext.TCPMD5Unexpected++;
    drop[SKB_DROP_REASON.TCP_MD5UNEXPECTED]++;
    return true;
  }
  const d = tcpMd5HashSegment(key, tcb.ipv6, tcb.saddr, tcb.daddr, tcb.saddr6, tcb.daddr6, skb.buf, th, skb.len);
  if (!d.equals(skb.buf.subarray(loc, loc + 16))) {
    ext.TCPMD5Failure++;
    drop[SKB_DROP_REASON.TCP_MD5FAILURE]++;
    return true;
  }
  return false;
}

/**
 * tcp_v4_syn_recv_sock / tcp_v6_syn_recv_sock: a child whose listener has
 * a key for the peer gets a copy of it for the peer's address alone, and
 * counts the option in its header length.
 */
export function tcpMd5CopyToChild(listener: TcpSock, req: InetSock, child: TcpSock): void {
  const key = tcpMd5LookupPeer(listener.md5sigInfo, req);
  if (!key) return;
  let addr: Buffer;
  if (key.family === AF_INET6) addr = Buffer.from(req.v6Daddr!);
  else {
    addr = Buffer.alloc(4);
    addr.writeUInt32BE(req.daddr >>> 0, 0);
  }
  tcpMd5DoAdd(child, key.family, addr, key.family === AF_INET6 ? 128 : 32, key.l3index, key.flags, key.key);
  child.md5Hdr = true;
}

/**
 * tcp_synack_options, the MD5 part: the listener's key for the peer, if
 * any, with room for its option; there is none left for SACK blocks beside
 * it and timestamps, so a SACK-permitting request loses its timestamps.
 */
export function tcpMd5SynackOptions(req: TcpRequestSock, o: TcpOutOptions): TcpMd5SigKey | null {
  const key = tcpMd5LookupPeer(req.listener.md5sigInfo, req);
  if (!key) return null;
  o.md5 = true;
  req.tstampOk &&= !req.sackOk;
  return key;
}
