/**
 * The TCP segments of a capture file, for `tapstack plot`: classic pcap (either
 * byte order, micro- or nanosecond stamps) and pcapng, over Ethernet (VLAN
 * tags skipped), raw IP (LINKTYPE_RAW), Linux cooked (SLL, SLL2) and BSD
 * loopback. Only what the time-sequence graph needs is kept: addresses,
 * ports, sequence numbers, flags, window, payload length and the SYN's and
 * SACK options.
 */
import { formatIpv4, formatIpv6 } from '../lib/addr.js';
import { ipIhl, ipProto, ipTotLen, ipFragOff, IP_OFFSET, ipSaddr, ipDaddr } from '../wire/ipv4.js';
import {
  TCP_HLEN,
  TCPOPT_EOL,
  TCPOPT_NOP,
  TCPOPT_MSS,
  TCPOPT_WINDOW,
  TCPOPT_SACK,
  tcpSource,
  tcpDest,
  tcpSeq,
  tcpAckSeq,
  tcpDoff,
  tcpFlags,
  tcpWindow,
} from '../wire/tcp.js';

export interface PcapTcp {
  /** Seconds (wall clock, as the record's stamp). */
  t: number;
  family: 4 | 6;
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  seq: number;
  ack: number;
  /** TCPHDR_* bits. */
  flags: number;
  /** The window field as on the wire (not scaled). */
  win: number;
  /** Payload bytes, from the IP length (a short snap length does not shorten it). */
  len: number;
  mss?: number;
  wscale?: number;
  sack?: [number, number][];
}

export interface PcapRead {
  packets: PcapTcp[];
  /** Records cut short at the end (an interrupted live capture), or not TCP we could read. */
  truncated: boolean;
  /** Frames that were not TCP over IPv4/IPv6 (ARP, UDP, fragments, ...). */
  other: number;
}

const LINKTYPE_NULL = 0;
const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101;
const LINKTYPE_LINUX_SLL = 113;
const LINKTYPE_IPV4 = 228;
const LINKTYPE_IPV6 = 229;
const LINKTYPE_LINUX_SLL2 = 276;
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;

export class CaptureError extends Error {}

/** What the first bytes say the input is. */
export function captureKind(b: Buffer): 'pcap' | 'pcapng' | null {
  if (b.length < 4) return null;
  const le = b.readUInt32LE(0);
  if (le === 0xa1b2c3d4 || le === 0xd4c3b2a1 || le === 0xa1b23c4d || le === 0x4d3cb2a1) return 'pcap';
  if (le === 0x0a0d0d0a) return 'pcapng';
  return null;
}

/** The offset of the IP header in a frame of this link type, or -1 (not IP). */
function ipOffset(linktype: number, b: Buffer, o: number, end: number): number {
  switch (linktype) {
    case LINKTYPE_ETHERNET: {
      let at = o + 12;
      let proto = end - at >= 2 ? b.readUInt16BE(at) : 0;
      while ((proto === ETH_P_8021Q || proto === ETH_P_8021AD) && end - at >= 6) {
        at += 4;
        proto = b.readUInt16BE(at);
      }
      return proto === ETH_P_IP || proto === ETH_P_IPV6 ? at + 2 : -1;
    }
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6:
      return o;
    case LINKTYPE_LINUX_SLL: {
      const proto = end - o >= 16 ? b.readUInt16BE(o + 14) : 0;
      return proto === ETH_P_IP || proto === ETH_P_IPV6 ? o + 16 : -1;
    }
    case LINKTYPE_LINUX_SLL2: {
      const proto = end - o >= 20 ? b.readUInt16BE(o) : 0;
      return proto === ETH_P_IP || proto === ETH_P_IPV6 ? o + 20 : -1;
    }
    case LINKTYPE_NULL:
      return o + 4;
    default:
      throw new CaptureError(`link type ${linktype} is not one plot reads (Ethernet, raw IP, Linux cooked, loopback)`);
  }
}

/** One frame's TCP segment, or null when it is not one. */
function tcpOf(t: number, b: Buffer, ip: number, end: number): PcapTcp | null {
  if (ip < 0 || end - ip < 20) return null;
  const version = b[ip] >>> 4;
  let th: number;
  let payloadEnd: number;
  let family: 4 | 6;
  let saddr: string;
  let daddr: string;
  if (version === 4) {
    const ihl = ipIhl(b, ip);
    if (ihl < 20 || ipProto(b, ip) !== 6 || (ipFragOff(b, ip) & IP_OFFSET) !== 0) return null;
    th = ip + ihl;
    // A TSO super-segment may carry 0 here: then the captured length is all we know.
    const tot = ipTotLen(b, ip);
    payloadEnd = tot ? ip + tot : end;
    family = 4;
    saddr = formatIpv4(ipSaddr(b, ip));
    daddr = formatIpv4(ipDaddr(b, ip));
  } else if (version === 6) {
    if (end - ip < 40) return null;
    const plen = b.readUInt16BE(ip + 4);
    payloadEnd = plen ? ip + 40 + plen : end;
    let next = b[ip + 6];
    th = ip + 40;
    // Hop-by-hop, routing, destination options, fragment (the first only): skip to TCP.
    for (let i = 0; i < 8 && next !== 6; i++) {
      if (end - th < 8) return null;
      if (next === 0 || next === 43 || next === 60) {
        const n = b[th];
        th += (b[th + 1] + 1) * 8;
        next = n;
      } else if (next === 44) {
        if ((b.readUInt16BE(th + 2) & 0xfff8) !== 0) return null;
        next = b[th];
        th += 8;
      } else return null;
    }
    if (next !== 6) return null;
    family = 6;
    saddr = formatIpv6(b, ip + 8);
    daddr = formatIpv6(b, ip + 24);
  } else return null;
  if (end - th < TCP_HLEN) return null;
  const doff = tcpDoff(b, th);
  if (doff < TCP_HLEN) return null;
  const flags = tcpFlags(b, th);
  const p: PcapTcp = {
    t,
    family,
    saddr,
    sport: tcpSource(b, th),
    daddr,
    dport: tcpDest(b, th),
    seq: tcpSeq(b, th),
    ack: tcpAckSeq(b, th),
    flags,
    win: tcpWindow(b, th),
    len: Math.max(0, payloadEnd - th - doff),
  };
  // The options, as far as they were captured; a malformed length ends them (as tcp_parse_options).
  const optEnd = Math.min(th + doff, end);
  for (let i = th + TCP_HLEN; i < optEnd; ) {
    const kind = b[i];
    if (kind === TCPOPT_EOL) break;
    if (kind === TCPOPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= optEnd) break;
    const olen = b[i + 1];
    if (olen < 2 || i + olen > optEnd) break;
    if (kind === TCPOPT_MSS && olen === 4) p.mss = b.readUInt16BE(i + 2);
    else if (kind === TCPOPT_WINDOW && olen === 3) p.wscale = Math.min(b[i + 2], 14);
    else if (kind === TCPOPT_SACK && olen >= 10 && (olen - 2) % 8 === 0) {
      p.sack = [];
      for (let j = i + 2; j < i + olen; j += 8) p.sack.push([b.readUInt32BE(j), b.readUInt32BE(j + 4)]);
    }
    i += olen;
  }
  return p;
}

/** The TCP segments of a classic pcap file. */
function readPcap(b: Buffer): PcapRead {
  if (b.length < 24) throw new CaptureError('the pcap file header is cut short');
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const nano = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  // The link type's low 16 bits (the rest are FCS bits some writers set).
  const linktype = u32(20) & 0xffff;
  const out: PcapRead = { packets: [], truncated: false, other: 0 };
  let o = 24;
  while (o < b.length) {
    if (b.length - o < 16) {
      out.truncated = true;
      break;
    }
    const t = u32(o) + u32(o + 4) / (nano ? 1e9 : 1e6);
    const cap = u32(o + 8);
    o += 16;
    if (b.length - o < cap) {
      out.truncated = true;
      break;
    }
    const p = tcpOf(t, b, ipOffset(linktype, b, o, o + cap), o + cap);
    if (p) out.packets.push(p);
    else out.other++;
    o += cap;
  }
  return out;
}

/** The TCP segments of a pcapng file: its Enhanced Packet Blocks, with each interface's link type and stamp unit. */
function readPcapng(b: Buffer): PcapRead {
  const out: PcapRead = { packets: [], truncated: false, other: 0 };
  let le = true;
  const ifaces: { linktype: number; unit: number }[] = [];
  let o = 0;
  while (o < b.length) {
    if (b.length - o < 12) {
      out.truncated = true;
      break;
    }
    const type = b.readUInt32LE(o);
    if (type === 0x0a0d0d0a) {
      // Section header: its byte-order magic decides how everything after it is read.
      const bom = b.readUInt32LE(o + 8);
      if (bom === 0x1a2b3c4d) le = true;
      else if (bom === 0x4d3c2b1a) le = false;
      else throw new CaptureError('pcapng section header with an unknown byte-order magic');
      ifaces.length = 0;
    }
    const u32 = (x: number) => (le ? b.readUInt32LE(x) : b.readUInt32BE(x));
    const u16 = (x: number) => (le ? b.readUInt16LE(x) : b.readUInt16BE(x));
    const len = u32(o + 4);
    if (len < 12 || len % 4 !== 0) throw new CaptureError(`pcapng block at byte ${o} has a bad length ${len}`);
    if (b.length - o < len) {
      out.truncated = true;
      break;
    }
    const btype = u32(o);
    if (btype === 1) {
      // Interface description: link type, then options; if_tsresol (9) changes the stamp unit.
      let unit = 1e-6;
      for (let i = o + 16; i + 4 <= o + len - 4; ) {
        const code = u16(i);
        const olen = u16(i + 2);
        if (code === 0) break;
        if (code === 9 && olen >= 1) {
          const r = b[i + 4];
          unit = r & 0x80 ? 2 ** -(r & 0x7f) : 10 ** -(r & 0x7f);
        }
        i += 4 + ((olen + 3) & ~3);
      }
      ifaces.push({ linktype: u16(o + 8), unit });
    } else if (btype === 6) {
      const iface = ifaces[u32(o + 8)];
      if (!iface) throw new CaptureError(`pcapng packet on interface ${u32(o + 8)}, which was never described`);
      const stamp = u32(o + 12) * 2 ** 32 + u32(o + 16);
      const cap = u32(o + 20);
      const data = o + 28;
      if (data + cap > o + len) throw new CaptureError(`pcapng packet block at byte ${o} is shorter than its captured length`);
      const p = tcpOf(stamp * iface.unit, b, ipOffset(iface.linktype, b, data, data + cap), data + cap);
      if (p) out.packets.push(p);
      else out.other++;
    }
    o += len;
  }
  return out;
}

/** The TCP segments of a capture (classic pcap or pcapng, by its magic). */
export function readCapture(b: Buffer): PcapRead {
  const kind = captureKind(b);
  if (kind === 'pcap') return readPcap(b);
  if (kind === 'pcapng') return readPcapng(b);
  throw new CaptureError('not a pcap file');
}
