/**
 * Frames for tests: builders that produce correct packets unless told
 * otherwise (so a test can break exactly one field), and a parser that
 * turns what the stack sent into plain objects to assert field by field.
 */
import { csumFold, csumPartial, csumTcpUdpMagic, ipFastCsum } from '../../src/lib/checksum.js';
import { parseIpv4, parseMac } from '../../src/lib/addr.js';

export const STACK_MAC = parseMac('02:74:73:00:00:02')!;
export const PEER_MAC = parseMac('02:00:00:00:00:01')!;
export const BCAST_MAC = Buffer.alloc(6, 0xff);
export const STACK_IP = parseIpv4('10.0.0.2')!;
export const PEER_IP = parseIpv4('10.0.0.1')!;
export const GW_IP = PEER_IP;

export function eth(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Buffer {
  const b = Buffer.alloc(14 + payload.length);
  b.set(dst, 0);
  b.set(src, 6);
  b.writeUInt16BE(type, 12);
  b.set(payload, 14);
  return b;
}

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

export function udp(sport: number, dport: number, payload: Uint8Array, src = PEER_IP, dst = STACK_IP, badCsum = false): Buffer {
  const b = Buffer.alloc(8 + payload.length);
  b.writeUInt16BE(sport, 0);
  b.writeUInt16BE(dport, 2);
  b.writeUInt16BE(b.length, 4);
  b.set(payload, 8);
  let c = csumFold(csumPartial(b, 0, b.length, csumTcpUdpMagic(src, dst, 17, b.length)));
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
  src?: number;
  dst?: number;
  badCsum?: boolean;
}

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
  const c = csumFold(csumPartial(b, 0, b.length, csumTcpUdpMagic(s.src ?? PEER_IP, s.dst ?? STACK_IP, 6, b.length)));
  b.writeUInt16BE(s.badCsum ? c ^ 0x1111 : c, 16);
  return b;
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

export interface Parsed {
  dst: Buffer;
  src: Buffer;
  type: number;
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
  icmp?: { type: number; code: number; rest: number; data: Buffer; csumOk: boolean };
  tcp?: { sport: number; dport: number; seq: number; ack: number; flags: number; win: number; csumOk: boolean; payload: Buffer; options: string };
}

export function parse(f: Buffer): Parsed {
  const p: Parsed = { dst: f.subarray(0, 6), src: f.subarray(6, 12), type: f.readUInt16BE(12) };
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
      const hl = (l4[12] >> 4) * 4;
      p.tcp = {
        sport: l4.readUInt16BE(0),
        dport: l4.readUInt16BE(2),
        seq: l4.readUInt32BE(4),
        ack: l4.readUInt32BE(8),
        flags: l4[13],
        win: l4.readUInt16BE(14),
        csumOk: csumFold(csumPartial(l4, 0, l4.length, csumTcpUdpMagic(ip.src, ip.dst, 6, l4.length))) === 0,
        payload: l4.subarray(hl),
        options: tcpOptionsString(l4.subarray(20, hl)),
      };
    }
  }
  return p;
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
    } else out.push(`opt${k}`);
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
    }
  }
  while (bytes.length % 4) bytes.push(1);
  return Buffer.from(bytes);
}
