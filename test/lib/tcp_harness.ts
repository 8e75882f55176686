/**
 * Deterministic TCP tests in the address family a test names: the stack on
 * the in-memory link and a virtual clock (Harness), and a scripted peer
 * whose segments reach the stack as frames through the link (ip_rcv or
 * ipv6_rcv, then TCP) while what the stack sends is taken from the link as
 * frames and parsed (Ethernet, IPv4 or IPv6, TCP). Sequence numbers are
 * shown relative to each side's ISN as packetdrill shows them (the peer's
 * ISN is 0 in the script).
 *
 * The peer answers no ARP (a static entry, as packetdrill's tun setup has);
 * over IPv6 it is known REACHABLE from the start and answers the stack's
 * neighbour solicitations at once, as a host on the link does.
 */
import { Harness } from './harness.js';
import {
  PEER6,
  PEER_IP,
  PEER_LL,
  PEER_MAC,
  formatAddr,
  inetFrame,
  inetPacket,
  icmp,
  icmp6,
  naMsg,
  ndFrame,
  parse,
  peerAddr,
  stackAddr,
  rfc2385Digest,
  tcp as tcpSeg,
  tcpOptions,
  type Family,
  type IpAddr,
  type Parsed,
} from './frames.js';
import { tcpAccept, tcpBind, tcpConnect, tcpListen, tcpSetsockopt } from '../../src/net/ipv4/tcp.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { tcpV6Bind, tcpV6Connect } from '../../src/net/ipv6/tcp_ipv6.js';
import { Timer } from '../../src/lib/time.js';
import { AF_INET, AF_INET6, SOL_SOCKET, SO_REUSEADDR } from '../../src/uapi.js';

export const S = 0x02;
export const A = 0x10;
export const F = 0x01;
export const R = 0x04;
export const P = 0x08;

/** Both families, for tests that run once in each. */
export const FAMILIES: readonly Family[] = [AF_INET, AF_INET6];

/** 'IPv4' or 'IPv6', to name a test's run. */
export function familyName(family: Family): string {
  return family === AF_INET6 ? 'IPv6' : 'IPv4';
}

/** The MSS for an MTU in a family: less the IPv4 or IPv6 header and TCP's 20 bytes. */
export function mtuToMss(family: Family, mtu = 1500): number {
  return mtu - (family === AF_INET6 ? 60 : 40);
}

/** Flags as packetdrill writes them: S, S., ., P., F., R, R. */
export function flagStr(f: number): string {
  let s = '';
  if (f & S) s += 'S';
  if (f & F) s += 'F';
  if (f & R) s += 'R';
  if (f & P) s += 'P';
  if (f & A) s += '.';
  return s;
}

/** A segment the stack sent, as the peer read it off the wire. */
export interface Seg {
  flags: string;
  seq: number;
  ack: number;
  win: number;
  len: number;
  options: string;
  payload: Buffer;
  /** Virtual time it was seen (ms). */
  at: number;
  /** All TCP flag bits (ECE, CWR included). */
  tcpFlags: number;
  /** IPv4's TOS byte or IPv6's traffic class (ECN in the low two bits). */
  tos: number;
  /** IPv4's TTL or IPv6's hop limit. */
  ttl: number;
  /** The addresses as `ip` prints them, and the ports. */
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** What the device was told: a TSO super-segment's gso_size (0 for none), CHECKSUM_PARTIAL. */
  gsoSize: number;
  csumPartial: boolean;
}

export interface PeerSend {
  flags: number;
  seq: number;
  ack?: number;
  win?: number;
  payload?: Buffer | number;
  options?: (string | number)[][];
  /** IPv4 TOS byte or IPv6 traffic class (ECN bits in the low two). */
  tos?: number;
  /** Addresses other than the peer's and the stack's (an IPv4 pair over an AF_INET6 harness is sent over IPv4). */
  src?: IpAddr;
  dst?: IpAddr;
  sport?: number;
  dport?: number;
  badCsum?: boolean;
  /** The urgent pointer field. */
  urg?: number;
  /** Sign with this TCP-MD5 key (RFC 2385): NOP NOP MD5 go before the other options. */
  md5Key?: Buffer;
}

export class TcpHarness {
  readonly h: Harness;
  readonly tcp;
  /** The stack's ISN, learned from its SYN or SYN-ACK. */
  stackIsn = 0;
  peerIsn = 1_000_000;
  localPort = 8080;
  peerPort = 54321;
  listener: TcpSock | null = null;
  sk: TcpSock | null = null;
  /** Frames other than TCP (ARP, neighbour discovery, MLD) are kept here, not returned by out(). */
  other: Parsed[] = [];
  /** The peer's segments arrive as the device verified their checksum (CHECKSUM_UNNECESSARY): TCP checks none. */
  csumValid = false;
  /** Neighbour advertisements the peer owes the stack. */
  #ndAnswers: Buffer[] = [];
  #ndTimer = new Timer(() => this.#answerNd());

  constructor(
    readonly family: Family,
    opts: { mtu?: number } = {},
  ) {
    this.h = Harness.withPeer(family, opts);
    this.tcp = this.h.stack.tcp;
    this.h.stack.neighAddPermanent(PEER_IP, PEER_MAC);
    if (family === AF_INET6) this.h.link.onXmit = (f) => this.#solicited(f);
  }

  get time() {
    return this.h.time;
  }

  get mibs() {
    return this.h.stack.mibs;
  }

  /** The stack's and the peer's address in the harness's family. */
  get stackAddr(): IpAddr {
    return stackAddr(this.family);
  }

  get peerAddr(): IpAddr {
    return peerAddr(this.family);
  }

  /**
   * A neighbour solicitation for one of the peer's addresses: the answer, a
   * solicited NA, is due at the same virtual instant (it arrives before the
   * clock moves on, or before the test's next segment or look at the wire).
   */
  #solicited(f: Buffer): void {
    const p = parse(f);
    if (p.icmp6?.type !== 135 || p.ip6!.srcBuf.every((b) => b === 0)) return;
    const target = p.icmp6.body.subarray(4, 20);
    if (!target.equals(PEER6) && !target.equals(PEER_LL)) return;
    this.#ndAnswers.push(ndFrame(naMsg(target, 0x60, target, p.ip6!.srcBuf), target, p.ip6!.srcBuf));
    this.time.timers.mod(this.#ndTimer, this.time.now());
  }

  #answerNd(): void {
    this.time.timers.del(this.#ndTimer);
    for (const f of this.#ndAnswers.splice(0, this.#ndAnswers.length)) this.h.rx(f);
  }

  /** A listener on localPort with SO_REUSEADDR, like packetdrill's preamble (AF_INET6: on [::]). */
  listen(backlog = 1): TcpSock {
    const l = tcpNewSock(this.tcp, this.family);
    tcpSetsockopt(this.tcp, l, SOL_SOCKET, SO_REUSEADDR, 1);
    const rc = this.family === AF_INET6 ? tcpV6Bind(this.tcp, l, new Uint8Array(16), this.localPort) : tcpBind(this.tcp, l, 0, this.localPort);
    if (rc !== 0) throw new Error('bind');
    if (tcpListen(this.tcp, l, backlog) !== 0) throw new Error('listen');
    this.listener = l;
    return l;
  }

  /** Send a segment from the peer; seq relative to the peer's ISN, ack to the stack's. */
  send(p: PeerSend): void {
    this.#answerNd();
    const payload = typeof p.payload === 'number' ? Buffer.alloc(p.payload, 0x61) : (p.payload ?? Buffer.alloc(0));
    const src = p.src ?? this.peerAddr;
    const dst = p.dst ?? this.stackAddr;
    const spec = {
      sport: p.sport ?? this.peerPort,
      dport: p.dport ?? this.localPort,
      seq: (this.peerIsn + p.seq) >>> 0,
      ack: p.ack === undefined ? 0 : (this.stackIsn + p.ack) >>> 0,
      flags: p.flags,
      win: p.win ?? 65535,
      payload,
      options: p.options ? tcpOptions(p.options) : undefined,
      src,
      dst,
      badCsum: p.badCsum,
      urg: p.urg,
    };
    let seg = tcpSeg(spec);
    if (p.md5Key) {
      // The digest does not cover the options: sign a copy with a zero digest, then put the digest in.
      const opts = [['nop'], ['nop'], ['md5', '00'.repeat(16)], ...(p.options ?? [])];
      seg = tcpSeg({ ...spec, options: tcpOptions(opts) });
      const d = rfc2385Digest(seg, src, dst, p.md5Key);
      seg = tcpSeg({ ...spec, options: tcpOptions([['nop'], ['nop'], ['md5', d.toString('hex')], ...(p.options ?? [])]) });
    }
    this.h.rx(inetFrame(typeof src === 'number' ? AF_INET : AF_INET6, { proto: 6, payload: seg, src, dst, tos: p.tos }), this.csumValid);
  }

  /**
   * TCP segments the stack sent since the last call, relative numbers. Every
   * checksum is checked on the way (IPv4's header checksum, TCP's over its
   * family's pseudo-header, the partial form when left to the device).
   */
  out(): Seg[] {
    this.#answerNd();
    const segs: Seg[] = [];
    for (const p of this.h.sent()) {
      const t = p.tcp;
      if (!t) {
        this.other.push(p);
        continue;
      }
      if (!t.csumOk || (p.ip && !p.ip.csumOk)) throw new Error(`bad checksum from the stack: ${JSON.stringify({ ...t, payload: t.payload.length })}`);
      if (t.flags & S) this.stackIsn = t.seq;
      segs.push({
        flags: flagStr(t.flags),
        seq: (t.seq - this.stackIsn) >>> 0,
        ack: t.flags & A ? (t.ack - this.peerIsn) >>> 0 : 0,
        win: t.win,
        len: t.payload.length,
        options: t.options,
        payload: Buffer.from(t.payload),
        at: this.time.now(),
        tcpFlags: t.flags,
        tos: p.ip ? p.ip.tos : p.ip6!.tclass,
        ttl: p.ip ? p.ip.ttl : p.ip6!.hopLimit,
        src: p.ip ? formatAddr(p.ip.src) : p.ip6!.src,
        dst: p.ip ? formatAddr(p.ip.dst) : p.ip6!.dst,
        sport: t.sport,
        dport: t.dport,
        gsoSize: p.gsoSize,
        csumPartial: p.csumPartial,
      });
    }
    return segs;
  }

  /** Handshake as in packetdrill's usual preamble; returns the accepted socket. */
  accept(synOptions: (string | number)[][] = [['mss', 1000], ['nop'], ['wscale', 0]], win = 50000): TcpSock {
    if (!this.listener) this.listen();
    this.send({ flags: S, seq: 0, win, options: synOptions });
    const synack = this.out();
    if (synack.length !== 1 || synack[0].flags !== 'S.') throw new Error(`expected a SYN-ACK, got ${JSON.stringify(synack)}`);
    const ts = synOptions.find((o) => o[0] === 'TS');
    this.send({ flags: A, seq: 1, ack: 1, win, options: ts ? [['nop'], ['nop'], ['TS', Number(ts[1]) + 1, this.lastTsval(synack[0])]] : undefined });
    const c = tcpAccept(this.tcp, this.listener!);
    if (typeof c === 'number') throw new Error(`accept: ${c}`);
    this.sk = c;
    return c;
  }

  lastTsval(s: Seg): number {
    const m = /TS val (\d+)/.exec(s.options);
    return m ? Number(m[1]) : 0;
  }

  /** An accepted connection after a handshake without timestamps (mss 1000, wscale 0, window 50000). */
  static established(family: Family): TcpHarness {
    const t = new TcpHarness(family);
    t.accept([['mss', 1000], ['nop'], ['wscale', 0]], 50000);
    t.out();
    return t;
  }

  /** An active open to the peer; returns the socket (SYN sent). */
  connect(): TcpSock {
    const sk = tcpNewSock(this.tcp, this.family);
    const rc = this.family === AF_INET6 ? tcpV6Connect(this.tcp, sk, PEER6, this.peerPort) : tcpConnect(this.tcp, sk, PEER_IP, this.peerPort);
    if (rc !== -115) throw new Error(`connect: ${rc}`);
    this.sk = sk;
    this.localPort = sk.num;
    return sk;
  }

  /**
   * A segment as the stack sent it (from our address and localPort to the
   * peer's), in its IP packet: what an ICMP error quotes. seq is absolute.
   */
  ourPacket(s: { seq: number; ack?: number; flags: number; payload?: Buffer; sport?: number; dport?: number }): Buffer {
    const src = this.stackAddr;
    const dst = this.peerAddr;
    const seg = tcpSeg({ sport: s.sport ?? this.localPort, dport: s.dport ?? this.peerPort, seq: s.seq, ack: s.ack, flags: s.flags, payload: s.payload, src, dst });
    return inetPacket(this.family, { proto: 6, payload: seg, src, dst });
  }

  /**
   * An ICMP (AF_INET) or ICMPv6 (AF_INET6) error from `from` (default the
   * peer) quoting `quoted`, as much of it as the family's minimum MTU allows:
   * through the stack's ICMP receive to TCP's error handler.
   */
  icmpError(type: number, code: number, info: number, quoted: Buffer, from: IpAddr = this.peerAddr): void {
    if (this.family === AF_INET6) {
      const body = Buffer.alloc(4 + Math.min(quoted.length, 1280 - 48));
      body.writeUInt32BE(info >>> 0, 0);
      quoted.copy(body, 4, 0, body.length - 4);
      this.h.rx(inetFrame(AF_INET6, { proto: 58, src: from, payload: icmp6(type, code, body, from as Uint8Array, this.stackAddr as Uint8Array) }));
      return;
    }
    this.h.rx(inetFrame(AF_INET, { proto: 1, src: from, payload: icmp(type, code, info, quoted.subarray(0, 576 - 28)) }));
  }
}
