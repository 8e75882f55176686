/**
 * The fuzzer's view of a frame: where each layer starts and which fields it
 * has, read from the bytes as they are (a mutated frame included), so a
 * mutation can aim at a field and the fix-up can recompute what a real
 * sender would have (lengths, checksums). Tolerant by design: a field that
 * is not there is not listed, and nothing here throws on short input.
 */
import { csumFold, csumIpv6Magic, csumPartial, csumTcpUdpMagic, ipFastCsum } from '../../src/lib/checksum.js';

/** What a field holds, for the mutator's choice of values. */
export type FieldKind = 'mac' | 'ethertype' | 'u8' | 'u16' | 'u32' | 'addr4' | 'addr6' | 'port' | 'len' | 'flags' | 'csum' | 'bytes';

export interface Field {
  name: string;
  off: number;
  size: number;
  kind: FieldKind;
}

/** An option or extension-header region where bytes may be inserted or removed. */
export interface Region {
  name: 'ip4opts' | 'tcpopts' | 'ip6ext' | 'payload' | 'ndopts';
  off: number;
  len: number;
}

export interface Dissected {
  ethertype: number;
  /** 'arp' | 'ipv4' | 'ipv6' | null (other or too short). */
  l3: 'arp' | 'ipv4' | 'ipv6' | null;
  l3Off: number;
  /** The IP datagram's end as its header says (clamped to the frame). */
  ipEnd: number;
  /** Upper-layer protocol and its offset (-1 when the chain cannot be walked, or a later fragment). */
  proto: number;
  l4Off: number;
  /** A fragment other than an atomic one: its transport checksum cannot be fixed alone. */
  fragment: boolean;
  /** IPv6 extension headers walked: type and offset. */
  exts: { type: number; off: number }[];
  fields: Field[];
  regions: Region[];
}

const u16 = (b: Buffer, o: number) => (o + 2 <= b.length ? (b[o] << 8) | b[o + 1] : 0);

export function dissect(f: Buffer): Dissected {
  const d: Dissected = { ethertype: -1, l3: null, l3Off: 14, ipEnd: f.length, proto: -1, l4Off: -1, fragment: false, exts: [], fields: [], regions: [] };
  const F = (name: string, off: number, size: number, kind: FieldKind) => {
    if (off + size <= f.length) d.fields.push({ name, off, size, kind });
  };
  F('eth.dst', 0, 6, 'mac');
  F('eth.src', 6, 6, 'mac');
  F('eth.type', 12, 2, 'ethertype');
  if (f.length < 14) return d;
  d.ethertype = u16(f, 12);
  const o = 14;
  if (d.ethertype === 0x0806) {
    d.l3 = 'arp';
    F('arp.hrd', o, 2, 'u16');
    F('arp.pro', o + 2, 2, 'ethertype');
    F('arp.hln', o + 4, 1, 'u8');
    F('arp.pln', o + 5, 1, 'u8');
    F('arp.op', o + 6, 2, 'u16');
    F('arp.sha', o + 8, 6, 'mac');
    F('arp.sip', o + 14, 4, 'addr4');
    F('arp.tha', o + 18, 6, 'mac');
    F('arp.tip', o + 24, 4, 'addr4');
    return d;
  }
  if (d.ethertype === 0x0800 && f.length >= o + 20) {
    d.l3 = 'ipv4';
    F('ip.verihl', o, 1, 'u8');
    F('ip.tos', o + 1, 1, 'u8');
    F('ip.totlen', o + 2, 2, 'len');
    F('ip.id', o + 4, 2, 'u16');
    F('ip.frag', o + 6, 2, 'flags');
    F('ip.ttl', o + 8, 1, 'u8');
    F('ip.proto', o + 9, 1, 'u8');
    F('ip.check', o + 10, 2, 'csum');
    F('ip.saddr', o + 12, 4, 'addr4');
    F('ip.daddr', o + 16, 4, 'addr4');
    const ihl = (f[o] & 15) * 4;
    if (ihl > 20 && o + ihl <= f.length) {
      d.regions.push({ name: 'ip4opts', off: o + 20, len: ihl - 20 });
      for (let i = o + 20; i < o + ihl; i++) F(`ip.opt${i - o - 20}`, i, 1, 'u8');
    }
    d.ipEnd = Math.min(f.length, o + u16(f, o + 2));
    const fo = u16(f, o + 6);
    d.fragment = (fo & 0x3fff) !== 0;
    if ((fo & 0x1fff) === 0 && ihl >= 20 && o + ihl <= f.length) {
      d.proto = f[o + 9];
      d.l4Off = o + ihl;
      transport(f, d, F);
    }
    return d;
  }
  if (d.ethertype === 0x86dd && f.length >= o + 40) {
    d.l3 = 'ipv6';
    F('ip6.vtcfl', o, 4, 'u32');
    F('ip6.plen', o + 4, 2, 'len');
    F('ip6.nexthdr', o + 6, 1, 'u8');
    F('ip6.hlim', o + 7, 1, 'u8');
    F('ip6.saddr', o + 8, 16, 'addr6');
    F('ip6.daddr', o + 24, 16, 'addr6');
    d.ipEnd = Math.min(f.length, o + 40 + u16(f, o + 4));
    let nh = f[o + 6];
    let q = o + 40;
    for (let n = 0; n < 16; n++) {
      if (nh !== 0 && nh !== 43 && nh !== 44 && nh !== 60 && nh !== 51) break;
      if (q + 8 > f.length) return d;
      d.exts.push({ type: nh, off: q });
      F(`ext${n}.nexthdr`, q, 1, 'u8');
      F(`ext${n}.len`, q + 1, 1, 'len');
      let l: number;
      if (nh === 44) {
        F(`ext${n}.fragoff`, q + 2, 2, 'flags');
        F(`ext${n}.id`, q + 4, 4, 'u32');
        const off = u16(f, q + 2) & 0xfff8;
        const more = (f[q + 3] & 1) !== 0;
        if (off !== 0 || more) d.fragment = true;
        l = 8;
        if (off !== 0) return d;
      } else {
        l = nh === 51 ? (f[q + 1] + 2) * 4 : (f[q + 1] + 1) * 8;
        if (nh === 43) {
          F(`ext${n}.rtype`, q + 2, 1, 'u8');
          F(`ext${n}.segleft`, q + 3, 1, 'u8');
        }
        for (let i = q + 2; i < Math.min(q + l, f.length); i++) F(`ext${n}.b${i - q}`, i, 1, 'u8');
      }
      d.regions.push({ name: 'ip6ext', off: q, len: l });
      nh = f[q];
      q += l;
    }
    // 59, no next header: proto says so, and nothing follows.
    d.proto = nh;
    d.l4Off = q;
    transport(f, d, F);
    return d;
  }
  return d;
}

function transport(f: Buffer, d: Dissected, F: (name: string, off: number, size: number, kind: FieldKind) => void): void {
  const t = d.l4Off;
  if (d.proto === 6) {
    F('tcp.sport', t, 2, 'port');
    F('tcp.dport', t + 2, 2, 'port');
    F('tcp.seq', t + 4, 4, 'u32');
    F('tcp.ack', t + 8, 4, 'u32');
    F('tcp.doff', t + 12, 1, 'u8');
    F('tcp.flags', t + 13, 1, 'flags');
    F('tcp.win', t + 14, 2, 'u16');
    F('tcp.check', t + 16, 2, 'csum');
    F('tcp.urg', t + 18, 2, 'u16');
    const doff = t + 12 < f.length ? (f[t + 12] >> 4) * 4 : 0;
    if (doff > 20 && t + doff <= f.length) {
      d.regions.push({ name: 'tcpopts', off: t + 20, len: doff - 20 });
      for (let i = t + 20; i < t + doff; i++) F(`tcp.opt${i - t - 20}`, i, 1, 'u8');
    }
    if (doff >= 20 && t + doff <= d.ipEnd) d.regions.push({ name: 'payload', off: t + doff, len: d.ipEnd - t - doff });
  } else if (d.proto === 17) {
    F('udp.sport', t, 2, 'port');
    F('udp.dport', t + 2, 2, 'port');
    F('udp.len', t + 4, 2, 'len');
    F('udp.check', t + 6, 2, 'csum');
    if (t + 8 <= d.ipEnd) d.regions.push({ name: 'payload', off: t + 8, len: d.ipEnd - t - 8 });
  } else if (d.proto === 1 || d.proto === 58) {
    const p = d.proto === 1 ? 'icmp' : 'icmp6';
    F(`${p}.type`, t, 1, 'u8');
    F(`${p}.code`, t + 1, 1, 'u8');
    F(`${p}.check`, t + 2, 2, 'csum');
    F(`${p}.rest`, t + 4, 4, 'u32');
    // The body: an error's quoted packet, or ND's target and options, byte by byte in its first part.
    for (let i = t + 8; i < Math.min(d.ipEnd, t + 72); i++) F(`${p}.b${i - t}`, i, 1, 'u8');
    if (d.proto === 58 && f[t] >= 133 && f[t] <= 137) {
      const start = t + (f[t] === 133 ? 8 : f[t] === 134 ? 16 : f[t] === 137 ? 40 : 24);
      if (start <= d.ipEnd) d.regions.push({ name: 'ndopts', off: start, len: d.ipEnd - start });
    }
    if (t + 8 <= d.ipEnd) d.regions.push({ name: 'payload', off: t + 8, len: d.ipEnd - t - 8 });
  }
}

/**
 * What a real sender computes: the IPv4 header checksum, and the transport
 * checksum of a whole (unfragmented) datagram over its family's
 * pseudo-header. Lengths are left as they are.
 */
export function fixChecksums(f: Buffer): void {
  const d = dissect(f);
  const o = d.l3Off;
  if (d.l3 === 'ipv4') {
    const ihl = (f[o] & 15) * 4;
    if (ihl >= 20 && o + ihl <= f.length) {
      f.writeUInt16BE(0, o + 10);
      f.writeUInt16BE(ipFastCsum(f, o, ihl), o + 10);
    }
  }
  if (d.fragment || d.l4Off < 0) return;
  const t = d.l4Off;
  const len = d.ipEnd - t;
  let at: number;
  if (d.proto === 6) at = t + 16;
  else if (d.proto === 17) at = t + 6;
  else if (d.proto === 1 || d.proto === 58) at = t + 2;
  else return;
  if (len < at - t + 2) return;
  f.writeUInt16BE(0, at);
  let sum = 0;
  if (d.l3 === 'ipv4') {
    if (d.proto !== 1) sum = csumTcpUdpMagic(f.readUInt32BE(o + 12), f.readUInt32BE(o + 16), d.proto, len);
  } else {
    sum = csumIpv6Magic(f, o + 8, f, o + 24, d.proto, len);
  }
  let c = csumFold(csumPartial(f, t, len, sum));
  if (c === 0 && d.proto === 17) c = 0xffff;
  f.writeUInt16BE(c, at);
}

/**
 * Length fields made to match the bytes after a mutation inserted or removed
 * some: IPv4's total length, IPv6's payload length, UDP's length. (IHL and
 * TCP's data offset are adjusted by the mutation that resized their region.)
 */
export function fixLengths(f: Buffer): void {
  const d = dissect(f);
  const o = d.l3Off;
  if (d.l3 === 'ipv4') f.writeUInt16BE(Math.min(0xffff, f.length - o), o + 2);
  else if (d.l3 === 'ipv6') f.writeUInt16BE(Math.min(0xffff, f.length - o - 40), o + 4);
  const e = dissect(f);
  if (e.proto === 17 && !e.fragment && e.l4Off >= 0 && e.l4Off + 8 <= f.length) f.writeUInt16BE(Math.min(0xffff, e.ipEnd - e.l4Off), e.l4Off + 4);
}
