/**
 * IPv6 frames for tests: builders that produce correct packets unless told
 * otherwise, and a parser turning what the stack sent into plain objects
 * (addresses as RFC 5952 strings) to assert field by field.
 */
import { csumFold, csumIpv6Magic, csumPartial } from '../../src/lib/checksum.js';
import { formatIpv6, ipv6LinkLocalEui64, ipv6McastMac, ipv6SolicitedNodeMcast, parseIpv6 } from '../../src/lib/addr.js';
import { PEER_MAC, STACK_MAC, eth } from './frames.js';

export const STACK6 = parseIpv6('fd00::2')!;
export const PEER6 = parseIpv6('fd00::1')!;
export const STACK_LL = ipv6LinkLocalEui64(STACK_MAC);
export const PEER_LL = ipv6LinkLocalEui64(PEER_MAC);
export const ALL_NODES = parseIpv6('ff02::1')!;
export const ALL_ROUTERS = parseIpv6('ff02::2')!;
export const UNSPEC = Buffer.alloc(16);
export const snmc = (a: Uint8Array) => ipv6SolicitedNodeMcast(a);

export interface Ip6Spec {
  src?: Uint8Array;
  dst?: Uint8Array;
  nexthdr: number;
  payload: Uint8Array;
  hopLimit?: number;
  tclass?: number;
  flow?: number;
  /** Payload length field (default: the payload's length). */
  plen?: number;
  version?: number;
}

export function ip6(s: Ip6Spec): Buffer {
  const b = Buffer.alloc(40 + s.payload.length);
  const tc = s.tclass ?? 0;
  const fl = s.flow ?? 0;
  b[0] = ((s.version ?? 6) << 4) | (tc >> 4);
  b[1] = ((tc & 15) << 4) | ((fl >> 16) & 15);
  b.writeUInt16BE(fl & 0xffff, 2);
  b.writeUInt16BE(s.plen ?? s.payload.length, 4);
  b[6] = s.nexthdr;
  b[7] = s.hopLimit ?? 64;
  b.set(s.src ?? PEER6, 8);
  b.set(s.dst ?? STACK6, 24);
  b.set(s.payload, 40);
  return b;
}

/** An ICMPv6 message with its checksum over the pseudo-header of src -> dst. */
export function icmp6(type: number, code: number, rest: Uint8Array, src: Uint8Array = PEER6, dst: Uint8Array = STACK6, badCsum = false): Buffer {
  const b = Buffer.alloc(4 + rest.length);
  b[0] = type;
  b[1] = code;
  b.set(rest, 4);
  const c = csumFold(csumPartial(b, 0, b.length, csumIpv6Magic(src, 0, dst, 0, 58, b.length)));
  b.writeUInt16BE(badCsum ? c ^ 0x0101 : c, 2);
  return b;
}

export function echo6(id: number, seq: number, data: Uint8Array, src: Uint8Array = PEER6, dst: Uint8Array = STACK6): Buffer {
  const r = Buffer.alloc(4 + data.length);
  r.writeUInt16BE(id, 0);
  r.writeUInt16BE(seq, 2);
  r.set(data, 4);
  return icmp6(128, 0, r, src, dst);
}

/** A neighbour solicitation: target, optional source link-layer address, optional nonce. */
export function nsMsg(target: Uint8Array, src: Uint8Array, dst: Uint8Array, sllao: Uint8Array | null = PEER_MAC, nonce: Uint8Array | null = null): Buffer {
  const parts = [Buffer.alloc(4), Buffer.from(target)];
  if (sllao) parts.push(Buffer.from([1, 1, ...sllao]));
  if (nonce) parts.push(Buffer.from([14, 1, ...nonce]));
  return icmp6(135, 0, Buffer.concat(parts), src, dst);
}

/** A neighbour advertisement: flags R=0x80 S=0x40 O=0x20, optional target link-layer address. */
export function naMsg(target: Uint8Array, flags: number, src: Uint8Array, dst: Uint8Array, tllao: Uint8Array | null = PEER_MAC): Buffer {
  const parts = [Buffer.from([flags, 0, 0, 0]), Buffer.from(target)];
  if (tllao) parts.push(Buffer.from([2, 1, ...tllao]));
  return icmp6(136, 0, Buffer.concat(parts), src, dst);
}

/** An IPv6 frame from the peer (dst MAC ours, or the group's for a multicast destination). */
export function ip6Frame(s: Ip6Spec, srcMac: Uint8Array = PEER_MAC): Buffer {
  const dst = s.dst ?? STACK6;
  const mac = dst[0] === 0xff ? ipv6McastMac(dst) : STACK_MAC;
  return eth(mac, srcMac, 0x86dd, ip6(s));
}

/** An ND message from src to dst with hop limit 255. */
export function ndFrame(msg: Buffer, src: Uint8Array, dst: Uint8Array, hopLimit = 255, srcMac: Uint8Array = PEER_MAC): Buffer {
  return ip6Frame({ src, dst, nexthdr: 58, payload: msg, hopLimit }, srcMac);
}

/** A fragment header. */
export function fragHdr(nexthdr: number, offset: number, more: boolean, id: number): Buffer {
  const b = Buffer.alloc(8);
  b[0] = nexthdr;
  b.writeUInt16BE(offset | (more ? 1 : 0), 2);
  b.writeUInt32BE(id >>> 0, 4);
  return b;
}

/** An options header (hop-by-hop or destination) with the given raw options, padded to 8n with PadN/Pad1. */
export function optsHdr(nexthdr: number, opts: number[]): Buffer {
  const body = [...opts];
  const total = 2 + body.length;
  const pad = (8 - (total % 8)) % 8;
  if (pad === 1) body.push(0);
  else if (pad > 1) body.push(1, pad - 2, ...new Array(pad - 2).fill(0));
  const b = Buffer.from([nexthdr, (2 + body.length) / 8 - 1, ...body]);
  return b;
}

export interface Parsed6 {
  dst: Buffer;
  src: Buffer;
  type: number;
  ip6?: {
    tclass: number;
    flow: number;
    plen: number;
    nexthdr: number;
    hopLimit: number;
    src: string;
    dst: string;
    srcBuf: Buffer;
    dstBuf: Buffer;
    /** Extension headers walked: their types in order. */
    exts: number[];
    frag?: { offset: number; more: boolean; id: number; nexthdr: number };
    /** Upper-layer protocol and bytes. */
    proto: number;
    payload: Buffer;
  };
  icmp6?: { type: number; code: number; csumOk: boolean; body: Buffer };
}

export function parse6(f: Buffer): Parsed6 {
  const p: Parsed6 = { dst: f.subarray(0, 6), src: f.subarray(6, 12), type: f.readUInt16BE(12) };
  if (p.type !== 0x86dd) return p;
  const o = 14;
  const plen = f.readUInt16BE(o + 4);
  const end = o + 40 + plen;
  let nh = f[o + 6];
  let q = o + 40;
  const exts: number[] = [];
  let frag: { offset: number; more: boolean; id: number; nexthdr: number } | undefined;
  while (nh === 0 || nh === 43 || nh === 60 || nh === 44) {
    exts.push(nh);
    if (nh === 44) {
      frag = { nexthdr: f[q], offset: f.readUInt16BE(q + 2) & 0xfff8, more: (f[q + 3] & 1) === 1, id: f.readUInt32BE(q + 4) };
      nh = f[q];
      q += 8;
      if (frag.offset !== 0) break;
      continue;
    }
    const l = (f[q + 1] + 1) * 8;
    nh = f[q];
    q += l;
  }
  const srcBuf = Buffer.from(f.subarray(o + 8, o + 24));
  const dstBuf = Buffer.from(f.subarray(o + 24, o + 40));
  p.ip6 = {
    tclass: ((f[o] & 15) << 4) | (f[o + 1] >> 4),
    flow: ((f[o + 1] & 15) << 16) | f.readUInt16BE(o + 2),
    plen,
    nexthdr: f[o + 6],
    hopLimit: f[o + 7],
    src: formatIpv6(srcBuf),
    dst: formatIpv6(dstBuf),
    srcBuf,
    dstBuf,
    exts,
    frag,
    proto: nh,
    payload: f.subarray(q, end),
  };
  if (nh === 58 && (!frag || (frag.offset === 0 && !frag.more))) {
    const l4 = p.ip6.payload;
    p.icmp6 = {
      type: l4[0],
      code: l4[1],
      csumOk: csumFold(csumPartial(l4, 0, l4.length, csumIpv6Magic(srcBuf, 0, dstBuf, 0, 58, l4.length))) === 0,
      body: l4.subarray(4),
    };
  }
  return p;
}
