/**
 * Frames for tests, in both address families: builders that produce
 * correct packets unless told otherwise (so a test can break exactly one
 * field), and a parser that turns what the stack sent into plain objects to
 * assert field by field. A test names its family (AF_INET or AF_INET6) where
 * the two differ: the stack's and the peer's addresses (stackAddr, peerAddr),
 * the network header (inetFrame), and the pseudo-header the TCP and UDP
 * checksums cover, which follows from the addresses given.
 */
import { csumFold, csumIpv6Magic, csumPartial, csumPseudoPartial, csumTcpUdpMagic, ipFastCsum } from '../../src/lib/checksum.js';
import { formatIpv4, formatIpv6, ipv6LinkLocalEui64, ipv6McastMac, ipv6SolicitedNodeMcast, parseIpv4, parseIpv6, parseMac } from '../../src/lib/addr.js';
import { AF_INET, AF_INET6 } from '../../src/uapi.js';

/** The address family a test runs in. */
export type Family = typeof AF_INET | typeof AF_INET6;
/** An address of either family: IPv4 as a host-order number, IPv6 as its 16 bytes. */
export type IpAddr = number | Uint8Array;

export const STACK_MAC = parseMac('02:74:73:00:00:02')!;
export const PEER_MAC = parseMac('02:00:00:00:00:01')!;
export const BCAST_MAC = Buffer.alloc(6, 0xff);
export const STACK_IP = parseIpv4('10.0.0.2')!;
export const PEER_IP = parseIpv4('10.0.0.1')!;
export const GW_IP = PEER_IP;
export const STACK6 = parseIpv6('fd00::2')!;
export const PEER6 = parseIpv6('fd00::1')!;
export const STACK_LL = ipv6LinkLocalEui64(STACK_MAC);
export const PEER_LL = ipv6LinkLocalEui64(PEER_MAC);
export const ALL_NODES = parseIpv6('ff02::1')!;
export const ALL_ROUTERS = parseIpv6('ff02::2')!;
export const UNSPEC = Buffer.alloc(16);
export const snmc = (a: Uint8Array) => ipv6SolicitedNodeMcast(a);

/** The stack's address in a family (10.0.0.2, fd00::2). */
export function stackAddr(family: Family): IpAddr {
  return family === AF_INET6 ? STACK6 : STACK_IP;
}

/** The peer's address in a family (10.0.0.1, fd00::1). */
export function peerAddr(family: Family): IpAddr {
  return family === AF_INET6 ? PEER6 : PEER_IP;
}

/** An address as `ip` prints it (RFC 5952 for IPv6). */
export function formatAddr(a: IpAddr): string {
  return typeof a === 'number' ? formatIpv4(a) : formatIpv6(a);
}

/** The unfolded TCP/UDP pseudo-header sum of src -> dst: IPv4's (RFC 793) or IPv6's (RFC 8200 8.1), by the addresses' family. */
export function pseudoSum(src: IpAddr, dst: IpAddr, proto: number, len: number): number {
  if (typeof src === 'number' && typeof dst === 'number') return csumTcpUdpMagic(src, dst, proto, len);
  if (typeof src !== 'number' && typeof dst !== 'number') return csumIpv6Magic(src, 0, dst, 0, proto, len);
  throw new Error('pseudoSum: addresses of two families');
}

export function eth(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Buffer {
  const b = Buffer.alloc(14 + payload.length);
  b.set(dst, 0);
  b.set(src, 6);
  b.writeUInt16BE(type, 12);
  b.set(payload, 14);
  return b;
}

// --- IPv4 ------------------------------------------------------------------------------------

export interface Ipv4Spec {
  src?: number;
  dst?: number;
  proto: number;
  payload: Uint8Array;
  id?: number;
  /** Raw flags+offset field (IP_DF, IP_MF | offset/8). */
  frag?: number;
  ttl?: number;
  tos?: number;
  version?: number;
  /** Header length in bytes (options zero-filled). */
  ihl?: number;
  totLen?: number;
  badCsum?: boolean;
}

export function ipv4(s: Ipv4Spec): Buffer {
  const ihl = s.ihl ?? 20;
  const hdrLen = Math.max(ihl, 20);
  const b = Buffer.alloc(hdrLen + s.payload.length);
  b[0] = ((s.version ?? 4) << 4) | ((ihl >> 2) & 15);
  b[1] = s.tos ?? 0;
  b.writeUInt16BE(s.totLen ?? hdrLen + s.payload.length, 2);
  b.writeUInt16BE(s.id ?? 0x1234, 4);
  b.writeUInt16BE(s.frag ?? 0, 6);
  b[8] = s.ttl ?? 64;
  b[9] = s.proto;
  b.writeUInt32BE(s.src ?? PEER_IP, 12);
  b.writeUInt32BE(s.dst ?? STACK_IP, 16);
  const c = ipFastCsum(b, 0, hdrLen);
  b.writeUInt16BE(s.badCsum ? c ^ 0x5555 : c, 10);
  b.set(s.payload, hdrLen);
  return b;
}

export function icmp(type: number, code: number, rest: number, data: Uint8Array, badCsum = false): Buffer {
  const b = Buffer.alloc(8 + data.length);
  b[0] = type;
  b[1] = code;
  b.writeUInt32BE(rest >>> 0, 4);
  b.set(data, 8);
  const c = csumFold(csumPartial(b, 0, b.length));
  b.writeUInt16BE(badCsum ? c ^ 0x0101 : c, 2);
  return b;
}

export function echo(id: number, seq: number, data: Uint8Array): Buffer {
  return icmp(8, 0, (id << 16) | seq, data);
}

export function arp(op: number, sha: Uint8Array, sip: number, tha: Uint8Array, tip: number): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(1, 0);
  b.writeUInt16BE(0x0800, 2);
  b[4] = 6;
  b[5] = 4;
  b.writeUInt16BE(op, 6);
  b.set(sha, 8);
  b.writeUInt32BE(sip >>> 0, 14);
  b.set(tha, 18);
  b.writeUInt32BE(tip >>> 0, 24);
  return b;
}

/** An IPv4 frame from the peer to the stack. */
export function ipFrame(s: Ipv4Spec, dstMac: Uint8Array = STACK_MAC): Buffer {
  return eth(dstMac, PEER_MAC, 0x0800, ipv4(s));
}

// --- IPv6 ------------------------------------------------------------------------------------

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

// --- transports, over either family ---------------------------------------------------------

/** A UDP datagram, its checksum over the pseudo-header of src -> dst (IPv4 or IPv6, by the addresses). */
export function udp(sport: number, dport: number, payload: Uint8Array, src: IpAddr = PEER_IP, dst: IpAddr = STACK_IP, badCsum = false): Buffer {
  const b = Buffer.alloc(8 + payload.length);
  b.writeUInt16BE(sport, 0);
  b.writeUInt16BE(dport, 2);
  b.writeUInt16BE(b.length, 4);
  b.set(payload, 8);
  let c = csumFold(csumPartial(b, 0, b.length, pseudoSum(src, dst, 17, b.length)));
  if (c === 0) c = 0xffff;
  b.writeUInt16BE(badCsum ? c ^ 0x0f0f : c, 6);
  return b;
}

export interface TcpSpec {
  sport: number;
  dport: number;
  seq: number;
  ack?: number;
  flags: number;
  win?: number;
  payload?: Uint8Array;
  options?: Uint8Array;
  /** The addresses of the pseudo-header (default the peer's and the stack's IPv4 ones). */
  src?: IpAddr;
  dst?: IpAddr;
  badCsum?: boolean;
}

/** A TCP segment, its checksum over the pseudo-header of src -> dst (IPv4 or IPv6, by the addresses). */
export function tcp(s: TcpSpec): Buffer {
  const opt = s.options ?? Buffer.alloc(0);
  const hl = 20 + ((opt.length + 3) & ~3);
  const pl = s.payload ?? Buffer.alloc(0);
  const b = Buffer.alloc(hl + pl.length);
  b.writeUInt16BE(s.sport, 0);
  b.writeUInt16BE(s.dport, 2);
  b.writeUInt32BE(s.seq >>> 0, 4);
  b.writeUInt32BE((s.ack ?? 0) >>> 0, 8);
  b[12] = (hl >> 2) << 4;
  b[13] = s.flags;
  b.writeUInt16BE(s.win ?? 65535, 14);
  b.set(opt, 20);
  b.set(pl, hl);
  const c = csumFold(csumPartial(b, 0, b.length, pseudoSum(s.src ?? PEER_IP, s.dst ?? STACK_IP, 6, b.length)));
  b.writeUInt16BE(s.badCsum ? c ^ 0x1111 : c, 16);
  return b;
}

/** What inetFrame puts in the network header: IPv4's TOS is IPv6's traffic class, TTL its hop limit. */
export interface InetSpec {
  proto: number;
  payload: Uint8Array;
  src?: IpAddr;
  dst?: IpAddr;
  tos?: number;
  ttl?: number;
}

/** An IPv4 or IPv6 packet carrying `payload` (addresses default to the peer's and the stack's in the family). */
export function inetPacket(family: Family, s: InetSpec): Buffer {
  for (const a of [s.src, s.dst]) {
    if (a !== undefined && (typeof a === 'number') === (family === AF_INET6)) throw new Error(`inetPacket: ${formatAddr(a)} is not an address of the family`);
  }
  if (family === AF_INET6) {
    return ip6({ nexthdr: s.proto, payload: s.payload, src: s.src as Uint8Array | undefined, dst: s.dst as Uint8Array | undefined, tclass: s.tos, hopLimit: s.ttl });
  }
  return ipv4({ proto: s.proto, payload: s.payload, src: s.src as number | undefined, dst: s.dst as number | undefined, tos: s.tos, ttl: s.ttl });
}

/** That packet in a frame from the peer (to the group's MAC for an IPv6 multicast destination). */
export function inetFrame(family: Family, s: InetSpec): Buffer {
  const dst = s.dst ?? stackAddr(family);
  const mac = typeof dst !== 'number' && dst[0] === 0xff ? ipv6McastMac(dst) : STACK_MAC;
  return eth(mac, PEER_MAC, family === AF_INET6 ? 0x86dd : 0x0800, inetPacket(family, s));
}

// --- what the stack sent ----------------------------------------------------------------------

export interface Parsed {
  dst: Buffer;
  src: Buffer;
  type: number;
  /** What the device was told of the frame (the harness link keeps it): a TSO super-frame's segment size, 0 for none. */
  gsoSize: number;
  /** CHECKSUM_PARTIAL: the TCP check field holds the pseudo-header sum for the device to finish. */
  csumPartial: boolean;
  arp?: { op: number; sha: Buffer; sip: number; tha: Buffer; tip: number };
  ip?: {
    ihl: number;
    tos: number;
    totLen: number;
    id: number;
    df: boolean;
    mf: boolean;
    offset: number;
    ttl: number;
    proto: number;
    src: number;
    dst: number;
    csumOk: boolean;
    payload: Buffer;
  };
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
  icmp?: { type: number; code: number; rest: number; data: Buffer; csumOk: boolean };
  icmp6?: { type: number; code: number; csumOk: boolean; body: Buffer };
  /** TCP over either family; csumOk over that family's pseudo-header (the partial form under csumPartial). */
  tcp?: { sport: number; dport: number; seq: number; ack: number; flags: number; win: number; csumOk: boolean; payload: Buffer; options: string };
}

/** A frame the stack sent, parsed; `dev` is what the device was told of it (see Parsed). */
export function parse(f: Buffer, dev: { gsoSize?: number; csumPartial?: boolean } = {}): Parsed {
  const p: Parsed = { dst: f.subarray(0, 6), src: f.subarray(6, 12), type: f.readUInt16BE(12), gsoSize: dev.gsoSize ?? 0, csumPartial: dev.csumPartial ?? false };
  const o = 14;
  if (p.type === 0x0806) {
    p.arp = { op: f.readUInt16BE(o + 6), sha: f.subarray(o + 8, o + 14), sip: f.readUInt32BE(o + 14), tha: f.subarray(o + 18, o + 24), tip: f.readUInt32BE(o + 24) };
  } else if (p.type === 0x0800) {
    const ihl = (f[o] & 15) * 4;
    const totLen = f.readUInt16BE(o + 2);
    const fo = f.readUInt16BE(o + 6);
    const ip = {
      ihl,
      tos: f[o + 1],
      totLen,
      id: f.readUInt16BE(o + 4),
      df: (fo & 0x4000) !== 0,
      mf: (fo & 0x2000) !== 0,
      offset: (fo & 0x1fff) * 8,
      ttl: f[o + 8],
      proto: f[o + 9],
      src: f.readUInt32BE(o + 12),
      dst: f.readUInt32BE(o + 16),
      csumOk: ipFastCsum(f, o, ihl) === 0,
      payload: f.subarray(o + ihl, o + totLen),
    };
    p.ip = ip;
    const l4 = ip.payload;
    if (ip.proto === 1 && ip.offset === 0 && !ip.mf && l4.length >= 8) {
      p.icmp = { type: l4[0], code: l4[1], rest: l4.readUInt32BE(4), data: l4.subarray(8), csumOk: csumFold(csumPartial(l4, 0, l4.length)) === 0 };
    } else if (ip.proto === 6 && l4.length >= 20) {
      p.tcp = parseTcp(l4, ip.src, ip.dst, p.csumPartial);
    }
  } else if (p.type === 0x86dd) {
    parseIp6(f, p);
  }
  return p;
}

function parseIp6(f: Buffer, p: Parsed): void {
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
  const whole = !frag || (frag.offset === 0 && !frag.more);
  const l4 = p.ip6.payload;
  if (nh === 58 && whole) {
    p.icmp6 = {
      type: l4[0],
      code: l4[1],
      csumOk: csumFold(csumPartial(l4, 0, l4.length, csumIpv6Magic(srcBuf, 0, dstBuf, 0, 58, l4.length))) === 0,
      body: l4.subarray(4),
    };
  } else if (nh === 6 && whole && l4.length >= 20) {
    p.tcp = parseTcp(l4, srcBuf, dstBuf, p.csumPartial);
  }
}

function parseTcp(l4: Buffer, src: IpAddr, dst: IpAddr, partial: boolean): NonNullable<Parsed['tcp']> {
  const hl = (l4[12] >> 4) * 4;
  const magic = pseudoSum(src, dst, 6, l4.length);
  return {
    sport: l4.readUInt16BE(0),
    dport: l4.readUInt16BE(2),
    seq: l4.readUInt32BE(4),
    ack: l4.readUInt32BE(8),
    flags: l4[13],
    win: l4.readUInt16BE(14),
    csumOk: partial ? l4.readUInt16BE(16) === csumPseudoPartial(magic) : csumFold(csumPartial(l4, 0, l4.length, magic)) === 0,
    payload: l4.subarray(hl),
    options: tcpOptionsString(l4.subarray(20, hl)),
  };
}

/** TCP options as packetdrill/tcpdump print them: "mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7". */
export function tcpOptionsString(o: Uint8Array): string {
  const out: string[] = [];
  for (let i = 0; i < o.length; ) {
    const k = o[i];
    if (k === 0) {
      out.push('eol');
      break;
    }
    if (k === 1) {
      out.push('nop');
      i++;
      continue;
    }
    const len = o[i + 1];
    const v = Buffer.from(o.subarray(i + 2, i + len));
    if (k === 2) out.push(`mss ${v.readUInt16BE(0)}`);
    else if (k === 3) out.push(`wscale ${v[0]}`);
    else if (k === 4) out.push('sackOK');
    else if (k === 8) out.push(`TS val ${v.readUInt32BE(0)} ecr ${v.readUInt32BE(4)}`);
    else if (k === 5) {
      const blocks: string[] = [];
      for (let j = 0; j + 8 <= v.length; j += 8) blocks.push(`${v.readUInt32BE(j)}:${v.readUInt32BE(j + 4)}`);
      out.push(`sack ${blocks.join(' ')}`);
    } else if (k === 34) out.push(v.length ? `FO ${v.toString('hex')}` : 'FO');
    else if (k === 254 && v.length >= 2 && v.readUInt16BE(0) === 0xf989) out.push(v.length > 2 ? `FOEXP ${v.subarray(2).toString('hex')}` : 'FOEXP');
    else out.push(`opt${k}`);
    i += len;
  }
  return out.join(',');
}

/** Build TCP options from packetdrill-like parts: [['mss',1460],['sackOK'],['TS',1,0],['nop'],['wscale',7]]. */
export function tcpOptions(parts: (string | number)[][]): Buffer {
  const bytes: number[] = [];
  for (const p of parts) {
    switch (p[0]) {
      case 'mss':
        bytes.push(2, 4, (Number(p[1]) >> 8) & 255, Number(p[1]) & 255);
        break;
      case 'wscale':
        bytes.push(3, 3, Number(p[1]));
        break;
      case 'sackOK':
        bytes.push(4, 2);
        break;
      case 'nop':
        bytes.push(1);
        break;
      case 'TS': {
        const b = Buffer.alloc(10);
        b[0] = 8;
        b[1] = 10;
        b.writeUInt32BE(Number(p[1]) >>> 0, 2);
        b.writeUInt32BE(Number(p[2]) >>> 0, 6);
        bytes.push(...b);
        break;
      }
      case 'sack': {
        const n = (p.length - 1) / 2;
        bytes.push(5, 2 + 8 * n);
        for (let i = 0; i < n; i++) {
          const b = Buffer.alloc(8);
          b.writeUInt32BE(Number(p[1 + 2 * i]) >>> 0, 0);
          b.writeUInt32BE(Number(p[2 + 2 * i]) >>> 0, 4);
          bytes.push(...b);
        }
        break;
      }
      case 'FO':
      case 'FOEXP': {
        // Fast Open: ['FO'] asks for a cookie, ['FO', 'hex'] presents one; FOEXP the experimental form (254, 0xF989).
        const cookie = Buffer.from(String(p[1] ?? ''), 'hex');
        if (p[0] === 'FO') bytes.push(34, 2 + cookie.length, ...cookie);
        else bytes.push(254, 4 + cookie.length, 0xf9, 0x89, ...cookie);
        break;
      }
    }
  }
  while (bytes.length % 4) bytes.push(1);
  return Buffer.from(bytes);
}
