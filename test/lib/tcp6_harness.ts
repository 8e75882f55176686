/**
 * Deterministic TCP-over-IPv6 tests at the transport boundary: segments are
 * built as IPv6 packets and handed to tcp_v6_rcv (tcpV6RcvPacket) as the
 * IPv6 layer would; what TCP sends is taken from its icsk_af_ops
 * (the stack's ipv6Stub.xmit), recorded with the addresses and traffic class it
 * was given, and checked against the IPv6 pseudo-header. IPv4 still goes
 * through the whole stack (for dual-stack tests). Sequence numbers are
 * relative to each side's ISN, as in tcp_harness.
 */
import { Harness } from './harness.js';
import { PEER_IP, PEER_MAC, tcpOptionsString, tcpOptions } from './frames.js';
import { csumFold, csumIpv6Magic, csumPartial } from '../../src/lib/checksum.js';
import { parseIpv6 } from '../../src/lib/addr.js';
import { tcpV6Rcv } from '../../src/net/ipv6/tcp_ipv6.js';
import { SkBuff } from '../../src/net/core/skbuff.js';
import { RTN_LOCAL, RTN_MULTICAST } from '../../src/net/ipv4/route.js';
import type { Ipv6Stub } from '../../src/net/ipv6/ipv6_stub.js';
import { flagStr, S, type PeerSend } from './tcp_harness.js';
import { AF_INET } from '../../src/uapi.js';

export const STACK6 = parseIpv6('fd00::2')!;
export const PEER6 = parseIpv6('fd00::1')!;
export const STACK6_LL = parseIpv6('fe80::74:73ff:fe00:2')!;
export const IFINDEX = 7;

/** A TCP segment over IPv6, its checksum over the IPv6 pseudo-header (or broken on request). */
export function tcp6Packet(s: {
  src: Uint8Array;
  dst: Uint8Array;
  sport: number;
  dport: number;
  seq: number;
  ack?: number;
  flags: number;
  win?: number;
  payload?: Uint8Array;
  options?: Uint8Array;
  tclass?: number;
  badCsum?: boolean;
}): Buffer {
  const opt = s.options ?? Buffer.alloc(0);
  const hl = 20 + ((opt.length + 3) & ~3);
  const pl = s.payload ?? Buffer.alloc(0);
  const len = hl + pl.length;
  const b = Buffer.alloc(40 + len);
  const tc = s.tclass ?? 0;
  b.writeUInt32BE(((6 << 28) | (tc << 20)) >>> 0, 0);
  b.writeUInt16BE(len, 4);
  b[6] = 6;
  b[7] = 64;
  b.set(s.src, 8);
  b.set(s.dst, 24);
  const t = 40;
  b.writeUInt16BE(s.sport, t);
  b.writeUInt16BE(s.dport, t + 2);
  b.writeUInt32BE(s.seq >>> 0, t + 4);
  b.writeUInt32BE((s.ack ?? 0) >>> 0, t + 8);
  b[t + 12] = (hl >> 2) << 4;
  b[t + 13] = s.flags;
  b.writeUInt16BE(s.win ?? 65535, t + 14);
  b.set(opt, t + 20);
  b.set(pl, t + hl);
  const c = csumFold(csumPartial(b, t, len, csumIpv6Magic(s.src, 0, s.dst, 0, 6, len)));
  b.writeUInt16BE(s.badCsum ? c ^ 0x1111 : c, t + 16);
  return b;
}

/** One segment TCP handed to ip6_xmit. */
export interface Sent6 {
  saddr: Buffer;
  daddr: Buffer;
  tclass: number;
  sport: number;
  dport: number;
  flags: string;
  tcpFlags: number;
  seq: number;
  ack: number;
  win: number;
  len: number;
  options: string;
  payload: Buffer;
  /** Checksum complete and right, or (csumPartial) the pseudo-header sum left for the device. */
  csumOk: boolean;
  csumPartial: boolean;
  gso: boolean;
  gsoSize: number;
}

export class Tcp6Harness {
  readonly h: Harness;
  readonly tcp;
  stackIsn = 0;
  peerIsn = 1_000_000;
  localPort = 8080;
  peerPort = 54321;
  /** The path MTU the fake IPv6 layer reports. */
  pathMtu = 1500;
  /** Local addresses the fake IPv6 layer owns. */
  readonly locals: Uint8Array[] = [STACK6, STACK6_LL];
  /** Rx checksum already verified by the device (dev.rxCsumValid). */
  csumValid = false;
  #sent: Sent6[] = [];

  constructor(opts: { mtu?: number } = {}) {
    this.h = Harness.withPeer(AF_INET, opts);
    this.tcp = this.h.stack.tcp;
    this.h.stack.neighAddPermanent(PEER_IP, PEER_MAC);
    this.pathMtu = opts.mtu ?? 1500;
    const ops: Ipv6Stub = {
      xmit: (skb, saddr, daddr, _proto, _hopLimit, tclass) => {
        this.#record(skb, saddr, daddr, tclass);
        return 0;
      },
      pathMtu: () => this.pathMtu,
      chooseSaddr: (_daddr, out) => {
        out.set(STACK6);
        return true;
      },
      addrIsLocal: (a) => this.locals.some((l) => Buffer.compare(Buffer.from(l), Buffer.from(a)) === 0),
      ifindex: IFINDEX,
    };
    this.h.stack.ipv6Stub = ops;
  }

  get time() {
    return this.h.time;
  }

  get mibs() {
    return this.h.stack.mibs;
  }

  #record(skb: SkBuff, saddr: Uint8Array, daddr: Uint8Array, tclass: number): void {
    const b = Buffer.from(skb.view());
    const hl = (b[12] >> 4) * 4;
    const magic = csumIpv6Magic(saddr, 0, daddr, 0, 6, b.length);
    // A partial checksum holds the folded pseudo-header sum, uncomplemented (tcp_v6_send_check).
    const csumOk = skb.csumPartial ? b.readUInt16BE(16) === (~csumFold(magic) & 0xffff) : csumFold(csumPartial(b, 0, b.length, magic)) === 0;
    const f = b[13];
    if (f & S && !(f & 0x04)) this.stackIsn = b.readUInt32BE(4);
    this.#sent.push({
      saddr: Buffer.from(saddr),
      daddr: Buffer.from(daddr),
      tclass,
      sport: b.readUInt16BE(0),
      dport: b.readUInt16BE(2),
      flags: flagStr(f),
      tcpFlags: f,
      seq: (b.readUInt32BE(4) - this.stackIsn) >>> 0,
      ack: f & 0x10 ? (b.readUInt32BE(8) - this.peerIsn) >>> 0 : 0,
      win: b.readUInt16BE(14),
      len: b.length - hl,
      options: tcpOptionsString(b.subarray(20, hl)),
      payload: b.subarray(hl),
      csumOk,
      csumPartial: skb.csumPartial,
      gso: skb.gso,
      gsoSize: skb.gsoSize,
    });
  }

  /** Segments sent over IPv6 since the last call. */
  out(): Sent6[] {
    return this.#sent.splice(0, this.#sent.length);
  }

  /** The peer sends a segment over IPv6 (seq relative to the peer's ISN, ack to the stack's). */
  send(p: PeerSend & { src?: Uint8Array; dst?: Uint8Array; badCsum?: boolean; dport?: number }): void {
    const payload = typeof p.payload === 'number' ? Buffer.alloc(p.payload, 0x61) : (p.payload ?? Buffer.alloc(0));
    const pkt = tcp6Packet({
      src: p.src ?? PEER6,
      dst: p.dst ?? STACK6,
      sport: this.peerPort,
      dport: p.dport ?? this.localPort,
      seq: (this.peerIsn + p.seq) >>> 0,
      ack: p.ack === undefined ? 0 : (this.stackIsn + p.ack) >>> 0,
      flags: p.flags,
      win: p.win ?? 65535,
      payload,
      options: p.options ? tcpOptions(p.options) : undefined,
      tclass: p.tos,
      badCsum: p.badCsum,
    });
    this.rx(pkt);
  }

  /** Hand an IPv6 packet (header at 0) to tcp_v6_rcv as the IPv6 layer would. */
  rx(pkt: Buffer, rtLocal = true): void {
    const skb = new SkBuff(pkt, 40);
    skb.len = pkt.readUInt16BE(4);
    skb.networkHeader = 0;
    skb.transportHeader = 40;
    skb.rtType = rtLocal ? RTN_LOCAL : RTN_MULTICAST;
    skb.csumValid = this.csumValid;
    tcpV6Rcv(this.tcp, skb);
  }
}
