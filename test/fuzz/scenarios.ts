/**
 * The fuzzer's scenarios: one per receive path (Ethernet, ARP, IPv4 with
 * options and fragments, ICMP, IPv6 with extension headers, ICMPv6 with
 * ND and MLD, UDP) and one per TCP state of the target connection. Each
 * sets the world up from its parameters (deterministic) and makes valid
 * frames for that path, built around the live state (sequence numbers
 * near the window's edges, SACK blocks on the holes, ICMP errors quoting
 * what the stack really sent), for the mutator to start from.
 */
import {
  ALL_NODES,
  ALL_ROUTERS,
  BCAST_MAC,
  PEER6,
  PEER_IP,
  PEER_LL,
  PEER_MAC,
  STACK6,
  STACK_IP,
  STACK_LL,
  STACK_MAC,
  UNSPEC,
  arp,
  echo,
  echo6,
  eth,
  fragHdr,
  icmp,
  icmp6,
  inetFrame,
  ip6,
  ip6Frame,
  naMsg,
  ndFrame,
  nsMsg,
  optsHdr,
  snmc,
  stackAddr,
  peerAddr,
  tcp as tcpSeg,
  udp,
  type Family,
} from '../lib/frames.js';
import { ipFastCsum } from '../../src/lib/checksum.js';
import { ipv6McastMac } from '../../src/lib/addr.js';
import { AF_INET, AF_INET6 } from '../../src/uapi.js';
import type { Rng } from './mutate.js';
import { TARGET_LPORT, UDP_PORT, type World } from './world.js';
import { tcpAccept, tcpClose, tcpSendmsg, tcpSetsockopt, tcpShutdown } from '../../src/net/ipv4/tcp.js';
import { SHUT_WR, SOL_SOCKET, SOL_TCP, SO_RCVBUF, SO_SNDBUF, TCP_FASTOPEN } from '../../src/uapi.js';

/** Per-episode choices a scenario's setup depends on (kept in a regression case). */
export interface Params {
  ts: boolean;
  sack: boolean;
  ws: number;
  /** SO_RCVBUF / SO_SNDBUF of the target (0: the defaults): small ones reach the memory limits. */
  rcvbuf?: number;
  sndbuf?: number;
}

export function drawParams(rng: Rng): Params {
  return {
    ts: rng.chance(0.5),
    sack: rng.chance(0.7),
    ws: rng.pick([-1, 0, 7, 14]),
    rcvbuf: rng.chance(0.3) ? rng.pick([2048, 4608, 16384]) : 0,
    sndbuf: rng.chance(0.2) ? rng.pick([4608, 16384]) : 0,
  };
}

/** The target's buffer sizes, set on the listener so the accepted socket starts with them. */
function buffers(w: World, p: Params): void {
  if (p.rcvbuf) tcpSetsockopt(w.tcp, w.listener, SOL_SOCKET, SO_RCVBUF, p.rcvbuf);
  if (p.sndbuf) tcpSetsockopt(w.tcp, w.listener, SOL_SOCKET, SO_SNDBUF, p.sndbuf);
}

export interface Scenario {
  name: string;
  /** Put the world in the scenario's state. */
  setup(w: World, p: Params): void;
  /** One valid frame, or a burst (fragments), for this path. */
  gen(w: World, rng: Rng): Buffer[];
}

// --- builders ----------------------------------------------------------------------------------

/** An IPv4 packet with real option bytes (padded with EOL to a multiple of 4). */
function ipv4o(o: { proto: number; payload: Uint8Array; opts?: number[]; src?: number; dst?: number; frag?: number; id?: number; ttl?: number; tos?: number }): Buffer {
  const opts = [...(o.opts ?? [])];
  while (opts.length % 4) opts.push(0);
  const hl = 20 + opts.length;
  const b = Buffer.alloc(hl + o.payload.length);
  b[0] = 0x40 | (hl >> 2);
  b[1] = o.tos ?? 0;
  b.writeUInt16BE(b.length, 2);
  b.writeUInt16BE(o.id ?? 0x4242, 4);
  b.writeUInt16BE(o.frag ?? 0, 6);
  b[8] = o.ttl ?? 64;
  b[9] = o.proto;
  b.writeUInt32BE((o.src ?? PEER_IP) >>> 0, 12);
  b.writeUInt32BE((o.dst ?? STACK_IP) >>> 0, 16);
  Buffer.from(opts).copy(b, 20);
  b.writeUInt16BE(ipFastCsum(b, 0, hl), 10);
  Buffer.from(o.payload).copy(b, hl);
  return b;
}

const VALID_IP4_OPTS: number[][] = [
  [],
  [1, 1, 1, 1],
  [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0], // record route, room for two
  [0x44, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0], // timestamps only
  [0x44, 20, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // address + timestamp
  [0x94, 4, 0, 0], // router alert
  [0x83, 7, 4, 10, 0, 0, 9], // LSRR naming another hop
  [0x82, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0], // security
  [1, 0x94, 4, 0, 0, 0],
];

/** The datagram cut into fragments (8-byte units, the last one rest), some overlapping, in a shuffled order. */
function fragment4(proto: number, l4: Buffer, rng: Rng, dst = STACK_IP): Buffer[] {
  const id = rng.int(0x10000);
  const cut = 8 * (1 + rng.int(Math.max(1, l4.length / 8 - 1)));
  const pieces: [number, number][] = [];
  for (let o = 0; o < l4.length; o += cut) pieces.push([o, Math.min(l4.length, o + cut)]);
  if (rng.chance(0.3) && pieces.length > 1) pieces.push([pieces[1][0] - 8 > 0 ? pieces[1][0] - 8 : 0, pieces[1][1]]); // overlap
  if (rng.chance(0.2)) pieces.push(pieces[0]); // duplicate
  const frames = pieces.map(([a, b]) => {
    const more = b < l4.length ? 0x2000 : 0;
    return eth(STACK_MAC, PEER_MAC, 0x0800, ipv4o({ proto, payload: l4.subarray(a, b), frag: more | (a >> 3), id, dst, opts: rng.chance(0.2) ? [0x94, 4, 0, 0] : [] }));
  });
  if (rng.chance(0.5)) frames.reverse();
  else if (rng.chance(0.5)) frames.push(frames.shift()!);
  return frames;
}

/** The same over IPv6: each piece behind a fragment header, a duplicate now and then, in some order. */
function fragment6(nexthdr: number, l4: Buffer, rng: Rng, dst: Uint8Array = STACK6): Buffer[] {
  const id = rng.u32();
  const cut = 8 * (1 + rng.int(Math.max(1, l4.length / 8 - 1)));
  const out: Buffer[] = [];
  for (let o = 0; o < l4.length; o += cut) {
    const e = Math.min(l4.length, o + cut);
    out.push(ip6Frame({ dst, nexthdr: 44, payload: Buffer.concat([fragHdr(nexthdr, o, e < l4.length, id), l4.subarray(o, e)]) }));
  }
  if (rng.chance(0.3) && out.length > 1) out.push(out[out.length - 1]);
  if (rng.chance(0.5)) out.reverse();
  return out;
}

/** A datagram of the stack's from its address to the peer's: what an ICMP error quotes. */
function ourTcp(w: World, rng: Rng): Buffer {
  const c = w.targetCtx();
  const span = (c.sndNxt - c.sndUna) >>> 0;
  const seq = span ? (c.sndUna + rng.int(span)) >>> 0 : rng.chance(0.5) ? c.sndUna : rng.u32();
  const src = stackAddr(w.family);
  const dst = peerAddr(w.family);
  const seg = tcpSeg({ sport: TARGET_LPORT, dport: w.target.pport, seq, ack: c.rcvNxt, flags: 0x18, payload: Buffer.alloc(rng.pick([0, 8, 100])), src, dst });
  if (w.family === AF_INET6) return ip6({ src: src as Uint8Array, dst: dst as Uint8Array, nexthdr: 6, payload: seg });
  return ipv4o({ proto: 6, payload: seg, src: src as number, dst: dst as number });
}

function ourUdp(family: Family, rng: Rng): Buffer {
  const src = stackAddr(family);
  const dst = peerAddr(family);
  const u = udp(UDP_PORT, rng.pick([53, 7, 9999]), Buffer.alloc(rng.int(40)), src, dst);
  if (family === AF_INET6) return ip6({ src: src as Uint8Array, dst: dst as Uint8Array, nexthdr: 17, payload: u });
  return ipv4o({ proto: 17, payload: u, src: src as number, dst: dst as number });
}

// --- TCP segments for the target -----------------------------------------------------------------

const FLAGS = [0x02, 0x12, 0x10, 0x18, 0x11, 0x19, 0x01, 0x00, 0x03, 0x50, 0x90, 0x30, 0xc2, 0x38, 0x0a];
/** Flags with RST: rarer, so the target lives long enough to be fuzzed in its state. */
const RST_FLAGS = [0x04, 0x14, 0x06, 0x07, 0x3f, 0xff, 0x1c];

function tcpOpts(w: World, rng: Rng, c: ReturnType<World['targetCtx']>, syn: boolean): Buffer {
  const out: number[] = [];
  const n = rng.int(5);
  for (let i = 0; i < n; i++) {
    switch (rng.int(syn ? 6 : 3)) {
      case 0: {
        // Timestamps: an echo of ours, a TSval near the one we hold (older, newer, wrapped).
        const val = (c.tsRecent + rng.pick([1, 0, -1, 1000, -0x7fffffff, 0x7fffffff, rng.u32()])) >>> 0;
        const ecr = rng.chance(0.8) ? w.target.tsRecent : rng.u32();
        out.push(1, 1, 8, 10, ...u32(val), ...u32(ecr));
        break;
      }
      case 1: {
        // SACK blocks on the holes of what is in flight, or around it.
        const k = 1 + rng.int(4);
        out.push(1, 1, 5, 2 + 8 * k);
        const span = Math.max(1, (c.sndNxt - c.sndUna) >>> 0);
        for (let j = 0; j < k; j++) {
          const a = (c.sndUna + c.mss * rng.int(Math.max(1, span / c.mss)) + rng.pick([0, 0, 0, 1, -1, -c.mss, span, 0x40000000])) >>> 0;
          const b = (a + c.mss * (1 + rng.int(3)) + rng.pick([0, 0, 1, -1, -c.mss * 4])) >>> 0;
          out.push(...u32(a), ...u32(b));
        }
        break;
      }
      case 2:
        out.push(1);
        break;
      case 3:
        out.push(2, 4, ...u16(rng.pick([1000, 536, 88, 1, 0, 65535, 1460])));
        break;
      case 4:
        out.push(1, 3, 3, rng.pick([0, 7, 14, 15, 255]));
        break;
      default:
        out.push(4, 2);
    }
  }
  while (out.length % 4) out.push(1);
  return Buffer.from(out.slice(0, 40));
}

const u32 = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
const u16 = (v: number) => [(v >>> 8) & 255, v & 255];

/** A segment for the target connection (or the listener), built around its live numbers. */
export function tcpForTarget(w: World, rng: Rng, listen = false): Buffer {
  const c = w.targetCtx();
  const t = w.target;
  const valid = rng.chance(0.35);
  let flags = valid ? rng.pick([0x10, 0x18, 0x18, 0x11, 0x10]) : rng.chance(0.08) ? rng.pick(RST_FLAGS) : rng.pick(FLAGS);
  if (rng.chance(0.05)) flags = rng.int(256);
  const rst = (flags & 0x04) !== 0;
  const seq = valid
    ? c.rcvNxt
    : (c.rcvNxt + (rst && rng.chance(0.7) ? rng.pick([1, c.rcvWnd, c.rcvWnd + 1, -1, rng.u32()]) : rng.pick([0, 0, 1, -1, c.rcvWnd, c.rcvWnd - 1, c.rcvWnd + 1, c.mss, 3 * c.mss, -c.mss, -70000, 0x80000000, rng.u32()]))) >>> 0;
  const span = (c.sndNxt - c.sndUna) >>> 0;
  const ack = valid
    ? (c.sndUna + (span ? c.mss * rng.int(span / c.mss + 1) : 0)) >>> 0
    : (rng.pick([c.sndNxt, c.sndUna, c.sndNxt + 1, c.sndUna - 1, c.sndUna - 70000, c.sndNxt + 0x40000000, rng.u32()]) + (span ? rng.int(span + 1) * (rng.int(4) === 0 ? 1 : 0) : 0)) >>> 0;
  // Sometimes a GRO super-frame's worth (the device's checksum verdict and segment size go with it).
  const len = valid ? rng.pick([0, 0, 1, 100, c.mss, c.mss, 8 * c.mss, 30_000]) : rng.pick([0, 0, 0, 1, 10, c.mss, c.mss + 1, 1400, 20_000]);
  const payload = Buffer.alloc(Math.min(len, 60_000), 0x61 + rng.int(26));
  const opts = tcpOpts(w, rng, c, (flags & 0x02) !== 0);
  const win = rng.pick([65535, 50000, 0, 1, 1000, rng.int(65536)]);
  const sport = listen && rng.chance(0.7) ? 1024 + rng.int(60000) : t.pport;
  const src = peerAddr(w.family);
  const dst = stackAddr(w.family);
  const seg = tcpSeg({ sport, dport: t.lport, seq, ack, flags, win, payload, options: opts.length ? opts : undefined, src, dst });
  if (rng.chance(0.05)) seg.writeUInt16BE(rng.int(65536), 18); // urgent pointer
  return inetFrame(w.family, { proto: 6, payload: seg, src, dst, tos: rng.pick([0, 0, 0, 1, 2, 3]) });
}

// --- setups ------------------------------------------------------------------------------------

/** The target established, with data in flight both ways and (with SACK) holes in what the peer acknowledged. */
function established(w: World, p: Params): void {
  buffers(w, p);
  const c = w.target;
  w.targetSk = w.passiveOpen(c, w.listener, p);
  const sk = w.targetSk;
  tcpSendmsg(w.tcp, sk, Buffer.alloc(12_000, 0x42));
  w.pump();
  const mss = sk.mssCache;
  const una = (sk.sndUna + 2 * mss) >>> 0;
  const opts: number[] = [];
  if (p.sack) {
    opts.push(1, 1, 5, 18, ...u32(una + 2 * mss), ...u32(una + 4 * mss), ...u32(una + 5 * mss), ...u32(una + 6 * mss));
  }
  // An in-order segment and one past a hole: the receive and out-of-order queues both hold data.
  w.inject(c.frame(0x10, c.nxt, una, Buffer.alloc(500, 0x31), opts.length ? Buffer.from(opts) : undefined, 50000));
  c.nxt = (c.nxt + 500) >>> 0;
  w.inject(c.frame(0x10, (c.nxt + 1000) >>> 0, una, Buffer.alloc(300, 0x32), undefined, 50000));
  w.pump();
}

function finWait1(w: World, p: Params): void {
  established(w, p);
  tcpShutdown(w.tcp, w.targetSk!, SHUT_WR);
  w.pump();
}

function finWait2(w: World, p: Params): void {
  buffers(w, p);
  const c = w.target;
  w.targetSk = w.passiveOpen(c, w.listener, p);
  tcpSendmsg(w.tcp, w.targetSk, Buffer.alloc(800, 0x42));
  tcpShutdown(w.tcp, w.targetSk, SHUT_WR);
  w.pump();
  w.inject(c.frame(0x10, c.nxt, w.targetSk.sndNxt, undefined, c.tsOpt(), 50000));
  w.pump();
}

function closeWait(w: World, p: Params): void {
  established(w, p);
  const c = w.target;
  const sk = w.targetSk!;
  w.inject(c.frame(0x11, sk.rcvNxt, sk.sndUna, undefined, c.tsOpt(), 50000));
  c.nxt = (sk.rcvNxt) >>> 0;
  w.pump();
}

function lastAck(w: World, p: Params): void {
  closeWait(w, p);
  // Read first: closing with unread data would be an abort, not a FIN.
  w.app('read');
  tcpClose(w.tcp, w.targetSk!);
  w.pump();
}

function closing(w: World, p: Params): void {
  buffers(w, p);
  const c = w.target;
  w.targetSk = w.passiveOpen(c, w.listener, p);
  tcpShutdown(w.tcp, w.targetSk, SHUT_WR);
  w.pump();
  // Their FIN crosses ours: it does not acknowledge it.
  w.inject(c.frame(0x11, w.targetSk.rcvNxt, w.targetSk.sndUna, undefined, c.tsOpt(), 50000));
  w.pump();
}

function timeWait(w: World, p: Params): void {
  buffers(w, p);
  const c = w.target;
  w.targetSk = w.passiveOpen(c, w.listener, p);
  const sk = w.targetSk;
  tcpClose(w.tcp, sk);
  w.pump();
  w.inject(c.frame(0x11, sk.rcvNxt, sk.sndNxt, undefined, c.tsOpt(), 50000));
  w.pump();
}

function synRecv(w: World, p: Params): void {
  buffers(w, p);
  const c = w.target;
  const o: number[] = [2, 4, 3, 0xe8];
  if (p.sack) o.push(4, 2);
  if (p.ts) o.push(8, 10, ...u32(c.tsval), 0, 0, 0, 0);
  if (p.ws >= 0) o.push(1, 3, 3, p.ws);
  while (o.length % 4) o.push(1);
  w.inject(c.frame(0x02, c.isn, 0, undefined, Buffer.from(o), 50000));
  c.nxt = (c.isn + 1) >>> 0;
  w.pump();
}

/**
 * A Fast Open child: the listener opens any SYN with data
 * (TFO_SERVER_COOKIE_NOT_REQD), the child is accepted in SYN_RECV with the
 * SYN's data and has written some of its own before the handshake's ACK.
 */
function fastopenChild(w: World, p: Params): void {
  buffers(w, p);
  w.tcp.sysctl.tcp_fastopen = 0x203;
  tcpSetsockopt(w.tcp, w.listener, SOL_TCP, TCP_FASTOPEN, 4);
  const c = w.target;
  const o: number[] = [2, 4, 3, 0xe8];
  if (p.sack) o.push(4, 2);
  if (p.ts) o.push(8, 10, ...u32(c.tsval), 0, 0, 0, 0);
  if (p.ws >= 0) o.push(1, 3, 3, p.ws);
  while (o.length % 4) o.push(1);
  w.inject(c.frame(0x02, c.isn, 0, Buffer.alloc(300, 0x33), Buffer.from(o), 50000));
  c.ts = p.ts;
  c.nxt = (c.isn + 301) >>> 0;
  w.pump();
  const sk = tcpAccept(w.tcp, w.listener);
  if (typeof sk === 'number') throw new Error(`no Fast Open child: accept ${sk}`);
  w.targetSk = sk;
  tcpSendmsg(w.tcp, sk, Buffer.alloc(3000, 0x34));
  w.pump();
}

function synSent(w: World): void {
  w.targetSk = w.activeOpen();
  (w.target as { lport: number }).lport = w.targetSk.num;
  w.pump();
}

// --- the protocols' frames ---------------------------------------------------------------------

function ethFrames(_w: World, rng: Rng): Buffer[] {
  switch (rng.int(6)) {
    case 0:
      return [eth(rng.pick([STACK_MAC, BCAST_MAC]), PEER_MAC, 0x0800, ipv4o({ proto: 1, payload: echo(1, 1, Buffer.alloc(16)) }))];
    case 1: {
      // 802.1Q: a VLAN tag we do not handle.
      const inner = ipv4o({ proto: 1, payload: echo(1, 2, Buffer.alloc(16)) });
      return [eth(STACK_MAC, PEER_MAC, 0x8100, Buffer.concat([Buffer.from([0, 5, 8, 0]), inner]))];
    }
    case 2:
      return [eth(STACK_MAC, PEER_MAC, rng.pick([0x88cc, 0x0000, 0x05dc, 0x88b5, 0x86dd]), rng.bytes(rng.int(80)))];
    case 3:
      return [Buffer.from(rng.bytes(rng.int(15)))];
    case 4:
      return [eth(rng.pick([Buffer.from([1, 0, 0x5e, 0, 0, 1]), Buffer.from([0x33, 0x33, 0, 0, 0, 1]), Buffer.from([1, 0, 0x5e, 1, 2, 3]), Buffer.from([0x02, 9, 9, 9, 9, 9])]), PEER_MAC, 0x0800, ipv4o({ proto: 17, dst: 0xe0000001, payload: udp(9, UDP_PORT + 1, Buffer.alloc(8), PEER_IP, 0xe0000001) }))];
    default:
      return [ip6Frame({ nexthdr: 58, payload: echo6(2, 2, Buffer.alloc(8)) })];
  }
}

function arpFrames(_w: World, rng: Rng): Buffer[] {
  const sip = rng.pick([PEER_IP, 0x0a000005, 0x0a000063, 0, STACK_IP, 0x0a0000ff, 0xc0a80101]);
  const tip = rng.pick([STACK_IP, STACK_IP, 0x0a000007, sip, PEER_IP]);
  const sha = rng.pick([PEER_MAC, Buffer.from([2, 1, 2, 3, 4, 5]), Buffer.from([2, 0, 0, 0, 0, 0x99])]);
  const op = rng.pick([1, 1, 2, 2, 3, 8]);
  const dst = rng.pick([BCAST_MAC, STACK_MAC]);
  const f = eth(dst, sha, 0x0806, arp(op, sha, sip, op === 2 ? STACK_MAC : Buffer.alloc(6), tip));
  // Link padding to 60 bytes, as on the wire.
  return [rng.chance(0.5) ? Buffer.concat([f, Buffer.alloc(60 - f.length)]) : f];
}

function ipv4Frames(_w: World, rng: Rng): Buffer[] {
  const opts = rng.pick(VALID_IP4_OPTS);
  const dst = rng.pick([STACK_IP, STACK_IP, STACK_IP, 0x0a0000ff, 0xffffffff, 0xe0000001]);
  const mac = dst === STACK_IP ? STACK_MAC : dst === 0xe0000001 ? Buffer.from([1, 0, 0x5e, 0, 0, 1]) : BCAST_MAC;
  switch (rng.int(5)) {
    case 0:
    case 1: {
      const proto = rng.chance(0.5) ? 1 : 17;
      const payload = proto === 1 ? echo(7, rng.int(100), Buffer.alloc(rng.pick([8, 100, 1400, 3000]), 0x11)) : udp(1234, rng.pick([UDP_PORT, UDP_PORT + 1, 7777]), Buffer.alloc(rng.pick([0, 20, 2000])), PEER_IP, dst);
      if (payload.length + 20 + opts.length > 1500 || rng.chance(0.4)) return fragment4(proto, payload, rng, dst).map((f) => (f.set(mac, 0), f));
      return [eth(mac, PEER_MAC, 0x0800, ipv4o({ proto, payload, opts, dst, ttl: rng.pick([64, 1, 0, 255]), tos: rng.int(256) }))];
    }
    case 2:
      return [eth(STACK_MAC, PEER_MAC, 0x0800, ipv4o({ proto: rng.pick([2, 4, 41, 47, 50, 132, 255]), payload: rng.bytes(rng.int(60)), opts }))];
    case 3:
      // A TCP SYN to the listener, options in the IP header.
      return [eth(STACK_MAC, PEER_MAC, 0x0800, ipv4o({ proto: 6, opts, payload: tcpSeg({ sport: 2000 + rng.int(1000), dport: TARGET_LPORT, seq: rng.u32(), flags: 0x02, options: Buffer.from([2, 4, 5, 0xb4]) }) }))];
    default: {
      // Fragments of a datagram that ends too long, or overlaps.
      const big = echo(9, 9, Buffer.alloc(rng.pick([100, 2000, 65000]), 0x22));
      const frags = fragment4(1, big, rng);
      return frags.slice(0, 6);
    }
  }
}

function icmpFrames(w: World, rng: Rng): Buffer[] {
  const r = rng.int(8);
  if (r === 0) return [inetFrame(AF_INET, { proto: 1, payload: echo(3, rng.int(1000), rng.bytes(rng.int(64))) })];
  if (r === 1) return [inetFrame(AF_INET, { proto: 1, payload: icmp(rng.pick([13, 14, 15, 16, 17, 18, 0, 9, 10, 19, 40, 255]), rng.int(3), rng.u32(), rng.bytes(rng.pick([0, 12, 40]))) })];
  // Errors quoting what we sent: the target's TCP (when it is IPv4), our UDP, or noise.
  const quoted = w.family === AF_INET && rng.chance(0.6) ? ourTcp(w, rng) : rng.chance(0.5) ? ourUdp(AF_INET, rng) : ipv4o({ proto: rng.pick([6, 17, 1]), payload: rng.bytes(rng.pick([8, 28])), src: STACK_IP, dst: PEER_IP });
  const type = rng.pick([3, 3, 3, 4, 5, 11, 12]);
  const code = type === 3 ? rng.pick([0, 1, 2, 3, 4, 4, 4, 13, 15]) : type === 5 ? rng.int(4) : rng.int(2);
  const info = type === 3 && code === 4 ? rng.pick([0, 68, 576, 1280, 1400, 1499, 1500, 9000]) : type === 12 ? rng.int(40) << 24 : type === 5 ? 0x0a000063 : 0;
  const body = quoted.subarray(0, rng.pick([28, 48, quoted.length, 576 - 28, 20, 8]));
  return [inetFrame(AF_INET, { proto: 1, src: rng.chance(0.9) ? PEER_IP : 0x0a000063, payload: icmp(type, code, info, body) })];
}

function ipv6Frames(_w: World, rng: Rng): Buffer[] {
  const ping = echo6(4, rng.int(1000), Buffer.alloc(rng.pick([8, 100, 1300, 3000]), 0x44));
  const chainParts: Buffer[] = [];
  const types: number[] = [];
  const nExt = rng.int(4);
  for (let i = 0; i < nExt; i++) {
    const t = rng.pick([0, 60, 43, 44, 60]);
    if (t === 0 && i > 0) continue;
    types.push(t);
  }
  types.push(58);
  for (let i = 0; i < types.length - 1; i++) {
    const next = types[i + 1];
    switch (types[i]) {
      case 0:
        chainParts.push(optsHdr(next, rng.pick([[], [5, 2, 0, 0], [0x1e, 2, 0, 0], [0xc2, 4, 0, 1, 0, 0], [1, 3, 0, 0, 0]])));
        break;
      case 60:
        chainParts.push(optsHdr(next, rng.pick([[], [0x1e, 2, 0, 0], [0x5e, 2, 0, 0], [0x9e, 4, 0, 0, 0, 0], [0xde, 2, 0, 0]])));
        break;
      case 43: {
        const type = rng.pick([0, 2, 3, 4, 253]);
        const left = rng.pick([0, 0, 1, 2]);
        chainParts.push(Buffer.concat([Buffer.from([next, 2, type, left, 0, 0, 0, 0]), STACK6]));
        break;
      }
      case 44:
        chainParts.push(fragHdr(next, 0, false, rng.u32()));
        break;
    }
  }
  const nh0 = types[0];
  const dst = rng.pick([STACK6, STACK6, STACK_LL, ALL_NODES, snmc(STACK6), Buffer.from('ff020000000000000000000000000099', 'hex')]);
  const src = rng.pick([PEER6, PEER6, PEER_LL, UNSPEC]);
  if (rng.chance(0.25)) {
    // Fragments of the echo (after any unfragmentable headers we leave out here).
    return fragment6(58, echo6(5, 5, Buffer.alloc(rng.pick([200, 3000, 65000 - 48]), 0x55)), rng).slice(0, 6);
  }
  if (rng.chance(0.2)) {
    const up = rng.chance(0.5) ? udp(1234, UDP_PORT, Buffer.alloc(rng.int(100)), src, dst) : tcpSeg({ sport: 3000 + rng.int(100), dport: TARGET_LPORT, seq: rng.u32(), flags: 0x02, src, dst });
    return [ip6Frame({ src, dst, nexthdr: up.length > 8 && up[13] === 0x02 && up.length === 20 ? 6 : 17, payload: up })];
  }
  const payload = Buffer.concat([...chainParts, ping.length > 1400 ? ping.subarray(0, 1400) : ping]);
  // The echo's checksum was over fd00::1 -> fd00::2; a mutation's fix-up recomputes it for the real addresses.
  return [ip6Frame({ src, dst, nexthdr: nh0, payload, hopLimit: rng.pick([64, 255, 1, 0]) })];
}

function icmpv6Frames(w: World, rng: Rng): Buffer[] {
  switch (rng.int(10)) {
    case 0:
      return [ndFrame(nsMsg(rng.pick([STACK6, STACK_LL, PEER6]), PEER6, snmc(STACK6), rng.chance(0.8) ? PEER_MAC : null, rng.chance(0.2) ? Buffer.from([1, 2, 3, 4, 5, 6]) : null), PEER6, snmc(STACK6))];
    case 1:
      // DAD probe for our address, from ::.
      return [ndFrame(nsMsg(rng.pick([STACK6, STACK_LL]), UNSPEC, snmc(STACK6), null), UNSPEC, snmc(STACK6))];
    case 2: {
      const target = rng.pick([PEER6, PEER_LL, STACK6, Buffer.from('fd000000000000000000000000000009', 'hex')]);
      return [ndFrame(naMsg(target, rng.pick([0x60, 0x20, 0x40, 0xe0, 0x00]), PEER6, rng.pick([STACK6, ALL_NODES]), rng.chance(0.7) ? rng.pick([PEER_MAC, Buffer.from([2, 0, 0, 0, 0, 0x77])]) : null), PEER6, rng.pick([STACK6, ALL_NODES]))];
    }
    case 3: {
      // A Router Advertisement: a prefix for SLAAC, the MTU, the source's link-layer address.
      const hdr = Buffer.from([rng.pick([64, 0, 255]), rng.pick([0, 0x80, 0x40, 0xc0]), ...u16(rng.pick([1800, 0, 9000])), ...u32(rng.pick([0, 30000])), ...u32(rng.pick([0, 1000]))]);
      const pfx = Buffer.concat([Buffer.from([3, 4, rng.pick([64, 48, 128, 0]), rng.pick([0xc0, 0x80, 0x40, 0]), ...u32(rng.pick([86400, 0, 0xffffffff, 7200])), ...u32(rng.pick([14400, 0, 0xffffffff, 9000])), 0, 0, 0, 0]), rng.pick([Buffer.from('fd000000000000010000000000000000', 'hex'), Buffer.from('fe800000000000000000000000000000', 'hex'), Buffer.from('20010db8000000000000000000000000', 'hex')])]);
      const mtu = Buffer.from([5, 1, 0, 0, ...u32(rng.pick([1280, 1500, 1400, 68, 65535]))]);
      const sll = Buffer.from([1, 1, ...PEER_MAC]);
      const body = Buffer.concat([hdr, ...[pfx, mtu, sll].filter(() => rng.chance(0.7))]);
      return [ndFrame(icmp6(134, 0, body, PEER_LL, ALL_NODES), PEER_LL, ALL_NODES)];
    }
    case 4: {
      // MLD: a query (v1 or v2) with a router alert, or a report.
      const v2 = rng.chance(0.5);
      // Maximum response delay, reserved, the group; MLDv2 adds S/QRV, QQIC and a source count (with no sources).
      const q = Buffer.concat([Buffer.from([0, rng.pick([0, 10, 100]), 0, 0]), rng.pick([UNSPEC, snmc(STACK6), ALL_NODES]), v2 ? Buffer.from([2, 125, 0, 0]) : Buffer.alloc(0)]);
      const type = rng.pick([130, 130, 131, 132, 143]);
      const dst = rng.pick([ALL_NODES, snmc(STACK6), ALL_ROUTERS]);
      const msg = icmp6(type, 0, q, PEER_LL, dst);
      return [eth(ipv6McastMac(dst), PEER_MAC, 0x86dd, ip6({ src: PEER_LL, dst, nexthdr: 0, hopLimit: 1, payload: Buffer.concat([Buffer.from([58, 0, 5, 2, 0, 0, 1, 0]), msg]) }))];
    }
    case 5:
      return [ndFrame(icmp6(133, 0, Buffer.concat([Buffer.alloc(4), Buffer.from([1, 1, ...PEER_MAC])]), PEER6, ALL_ROUTERS), PEER6, ALL_ROUTERS)];
    case 6: {
      // A redirect: for the peer, to another on-link node.
      const body = Buffer.concat([Buffer.alloc(4), Buffer.from('fe800000000000000000000000000042', 'hex'), rng.pick([PEER6, Buffer.from('fd000000000000000000000000000077', 'hex')])]);
      return [ndFrame(icmp6(137, 0, body, PEER_LL, STACK_LL), PEER_LL, STACK_LL)];
    }
    case 7:
      return [ip6Frame({ nexthdr: 58, payload: echo6(6, rng.int(100), rng.bytes(rng.int(100))) })];
    default: {
      // An error quoting what we sent.
      const quoted = w.family === AF_INET6 && rng.chance(0.6) ? ourTcp(w, rng) : ourUdp(AF_INET6, rng);
      const type = rng.pick([1, 2, 2, 3, 4, 1]);
      const info = type === 2 ? rng.pick([1280, 1000, 1500, 9000, 0, 0xffffffff]) : type === 4 ? rng.int(60) : 0;
      const body = Buffer.concat([Buffer.from(u32(info)), quoted.subarray(0, rng.pick([quoted.length, 40, 48, 60, 8]))]);
      return [ip6Frame({ nexthdr: 58, payload: icmp6(type, rng.int(type === 1 ? 7 : 2), body) })];
    }
  }
}

function udpFrames(_w: World, rng: Rng): Buffer[] {
  const fam = rng.chance(0.5) ? AF_INET : AF_INET6;
  const port = rng.pick([UDP_PORT, UDP_PORT, UDP_PORT + 1, 9, 7777]);
  const data = rng.bytes(rng.pick([0, 1, 8, 100, 1000, 1472]));
  const src = peerAddr(fam);
  const dst = fam === AF_INET && rng.chance(0.1) ? 0x0a0000ff : stackAddr(fam);
  const u = udp(rng.pick([1234, 53, 0]), port, data, src, dst);
  if (fam === AF_INET && rng.chance(0.1)) u.writeUInt16BE(0, 6); // no checksum: allowed over IPv4
  if (dst === 0x0a0000ff) return [eth(BCAST_MAC, PEER_MAC, 0x0800, ipv4o({ proto: 17, payload: u, dst }))];
  if (rng.chance(0.15)) return fam === AF_INET ? fragment4(17, u, rng) : fragment6(17, u, rng);
  return [inetFrame(fam, { proto: 17, payload: u, src, dst })];
}

/** Mostly the scenario's own frames, sometimes any other path's. */
const any = (w: World, rng: Rng): Buffer[] => rng.pick([ethFrames, arpFrames, ipv4Frames, icmpFrames, ipv6Frames, icmpv6Frames, udpFrames])(w, rng);

function proto(name: string, gen: (w: World, rng: Rng) => Buffer[]): Scenario {
  return {
    name,
    setup: established,
    gen: (w, rng) => (rng.chance(0.85) ? gen(w, rng) : rng.chance(0.5) ? [tcpForTarget(w, rng)] : any(w, rng)),
  };
}

function tcpState(name: string, setup: (w: World, p: Params) => void, listen = false): Scenario {
  return {
    name,
    setup,
    gen: (w, rng) => (rng.chance(0.9) ? [tcpForTarget(w, rng, listen)] : rng.chance(0.5) ? icmpFrames(w, rng) : icmpv6Frames(w, rng)),
  };
}

export const SCENARIOS: Scenario[] = [
  proto('eth', ethFrames),
  proto('arp', arpFrames),
  proto('ipv4', ipv4Frames),
  proto('icmp', icmpFrames),
  proto('ipv6', ipv6Frames),
  proto('icmpv6', icmpv6Frames),
  proto('udp', udpFrames),
  tcpState('tcp:LISTEN', () => {}, true),
  tcpState('tcp:SYN_SENT', (w) => synSent(w)),
  tcpState('tcp:SYN_RECV', synRecv),
  tcpState('tcp:ESTABLISHED', established),
  tcpState('tcp:FIN_WAIT1', finWait1),
  tcpState('tcp:FIN_WAIT2', finWait2),
  tcpState('tcp:CLOSE_WAIT', closeWait),
  tcpState('tcp:CLOSING', closing),
  tcpState('tcp:LAST_ACK', lastAck),
  tcpState('tcp:TIME_WAIT', timeWait),
  tcpState('tcp:SYN_RECV (Fast Open child)', fastopenChild),
];

export function scenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) throw new Error(`no scenario ${name}`);
  return s;
}

