/**
 * The fuzzer's world: one dual-stack stack (test/lib/harness.ts) on the
 * in-memory link and a virtual clock, and around it
 *  - a scripted peer that answers the stack's neighbour solicitations;
 *  - the side connection: an established TCP connection in the family
 *    under test that carries a byte pattern both ways beside the fuzzed
 *    traffic, its peer checking and acknowledging every byte it is sent;
 *  - the target: the connection (or listener) the scenario put in the TCP
 *    state under test, reached by the fuzzed segments;
 *  - a UDP socket on port 5000 and a TCP listener on 8080.
 * Everything is built from the scenario's parameters alone, so an action
 * log replays exactly.
 *
 * check() asserts the invariants after each action (oracle.ts); the side
 * connection's bytes are checked as they arrive and at the end (finish()).
 */
import { Harness } from '../lib/harness.js';
import {
  PEER6,
  PEER_IP,
  PEER_LL,
  PEER_MAC,
  STACK_MAC,
  inetFrame,
  naMsg,
  ndFrame,
  peerAddr,
  stackAddr,
  tcp as tcpSeg,
  tcpOptions,
  type Family,
  type Parsed,
} from '../lib/frames.js';
import { tcpAccept, tcpBind, tcpClose, tcpConnect, tcpListen, tcpRecvmsg, tcpSendmsg, tcpSetsockopt, tcpShutdown } from '../../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { tcpV6Bind, tcpV6Connect } from '../../src/net/ipv6/tcp_ipv6.js';
import type { TcpRequestSock, TcpSock, TcpTimewaitSock } from '../../src/net/ipv4/tcp_sock.js';
import { inet6LookupEstablished } from '../../src/net/ipv6/inet6_hashtables.js';
import { udpBind, udpRecvmsg } from '../../src/net/ipv4/udp.js';
import { udpV6Bind } from '../../src/net/ipv6/udp.js';
import type { UdpSock } from '../../src/net/ipv4/udp_sock.js';
import { MsgHdr, TCP_NEW_SYN_RECV, TCP_TIME_WAIT, type SockCommon } from '../../src/net/core/sock.js';
import { AF_INET, AF_INET6, SHUT_WR, SOL_SOCKET, SO_REUSEADDR } from '../../src/uapi.js';
import type { Stack } from '../../src/net/stack.js';
import { ipv6SkipExthdr } from '../../src/wire/ipv6.js';
import { RTN_BROADCAST } from '../../src/net/ipv4/route.js';

/** One step of an episode; an episode is its scenario and its list of actions. */
export type Action =
  /** A fuzzed frame, hex; what the device said of it: checksum verified, GRO segment size. */
  | { rx: string; csum?: boolean; gso?: number }
  /** The virtual clock moves (timers fire). */
  | { adv: number }
  /** Side connection: the peer sends n bytes ('in'), or the application writes n bytes ('out'). */
  | { side: 'in' | 'out'; n: number }
  /** The application on the target socket: read all, write n bytes, shutdown(SHUT_WR), close. */
  | { app: 'read' | 'write' | 'shutdown' | 'close'; n?: number };

/** The peer's TCP state for one connection, in absolute sequence numbers. */
export class PeerTcp {
  /** The peer's ISN and the next sequence number it sends. */
  isn: number;
  nxt: number;
  /** The stack's ISN (from its SYN or SYN-ACK) and the highest stack sequence acknowledged. */
  stackIsn = 0;
  rcvNxt = 0;
  /** What the stack last acknowledged of ours. */
  stackAck = 0;
  /** The timestamp option is in use (the stack's last TSval, to echo). */
  ts = false;
  tsRecent = 0;
  tsval = 1000;

  constructor(
    readonly family: Family,
    /** The stack's port and the peer's. */
    readonly lport: number,
    readonly pport: number,
    isn: number,
  ) {
    this.isn = isn >>> 0;
    this.nxt = this.isn;
  }

  /** A segment from the peer; numbers absolute. */
  frame(flags: number, seq: number, ack: number, payload: Buffer = Buffer.alloc(0), options: Buffer | undefined = undefined, win = 65535, tos = 0): Buffer {
    const src = peerAddr(this.family);
    const dst = stackAddr(this.family);
    const seg = tcpSeg({ sport: this.pport, dport: this.lport, seq, ack, flags, win, payload, options, src, dst });
    return inetFrame(this.family, { proto: 6, payload: seg, src, dst, tos });
  }

  /** The options every segment carries once timestamps are on. */
  tsOpt(): Buffer | undefined {
    if (!this.ts) return undefined;
    this.tsval = (this.tsval + 1) >>> 0;
    return tcpOptions([['nop'], ['nop'], ['TS', this.tsval, this.tsRecent]]);
  }

  /** Does this frame (parsed) belong to the connection, from the stack? */
  owns(p: Parsed): boolean {
    return !!p.tcp && p.tcp.sport === this.lport && p.tcp.dport === this.pport && (this.family === AF_INET6 ? !!p.ip6 : !!p.ip);
  }

  note(p: Parsed): void {
    const t = p.tcp!;
    if (t.flags & 0x02) {
      this.stackIsn = t.seq;
      this.rcvNxt = (t.seq + 1) >>> 0;
    }
    if (t.flags & 0x10) this.stackAck = t.ack;
    const m = /TS val (\d+)/.exec(t.options);
    if (m) this.tsRecent = Number(m[1]);
  }
}

/** A byte pattern with a 251-byte (prime) period: a byte at the wrong offset shows. */
export const patternByte = (i: number, salt: number) => (i * 7 + salt + (i / 251) | 0) & 255;

/** ICMPv4 error types (RFC 792): never sent about one another. */
const ICMP_ERRORS = new Set([3, 4, 5, 11, 12]);

export class FuzzFailure extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(`${kind}: ${message}`);
  }
}

export const SIDE_LPORT = 9000;
export const SIDE_PPORT = 40000;
export const TARGET_LPORT = 8080;
export const TARGET_PPORT = 50000;
export const UDP_PORT = 5000;

export class World {
  readonly h: Harness;
  readonly stack: Stack;
  readonly family: Family;
  readonly side: PeerTcp;
  sideSk!: TcpSock;
  /** Side bytes: the peer sent / the application read; the application wrote / the peer received in order. */
  sideIn = 0;
  sideRead = 0;
  sideOut = 0;
  sideGot = 0;
  readonly target: PeerTcp;
  targetSk: TcpSock | null = null;
  listener!: TcpSock;
  readonly udp: UdpSock;
  readonly udp4: UdpSock;
  /** Neighbour advertisements the peer owes the stack (sent once the current action is done). */
  #ndAnswers: Buffer[] = [];
  /** Side segments the peer owes (its ACKs), likewise. */
  #sideOwed: Buffer[] = [];
  /** Everything the stack sent since the last action, parsed (the oracle reads it). */
  out: Parsed[] = [];
  readonly #rbuf = Buffer.alloc(1 << 20);

  constructor(family: Family) {
    this.family = family;
    this.h = Harness.withPeer(AF_INET6, { slaac: true });
    this.stack = this.h.stack;
    this.stack.neighAddPermanent(PEER_IP, PEER_MAC);
    this.h.link.take();
    this.listener = this.listen(TARGET_LPORT, 16);
    const u = this.stack.udp.newSock(AF_INET6);
    if (udpV6Bind(this.stack.udp, u, { family: AF_INET6, addr: 0, addr6: new Uint8Array(16), port: UDP_PORT }) !== 0) throw new Error('udp bind');
    this.udp = u;
    // A second UDP socket, IPv4 only, on the next port.
    const u4 = this.stack.udp.newSock(AF_INET);
    if (udpBind(this.stack.udp, u4, { family: AF_INET, addr: 0, addr6: null, port: UDP_PORT + 1 }) !== 0) throw new Error('udp bind 4');
    this.udp4 = u4;
    this.side = new PeerTcp(family, SIDE_LPORT, SIDE_PPORT, 0x5eed0000);
    this.target = new PeerTcp(family, TARGET_LPORT, TARGET_PPORT, 0x7a700000);
    this.#openSide();
  }

  get tcp() {
    return this.stack.tcp;
  }

  listen(port: number, backlog: number): TcpSock {
    const l = tcpNewSock(this.tcp, this.family);
    tcpSetsockopt(this.tcp, l, SOL_SOCKET, SO_REUSEADDR, 1);
    const rc = this.family === AF_INET6 ? tcpV6Bind(this.tcp, l, new Uint8Array(16), port) : tcpBind(this.tcp, l, 0, port);
    if (rc !== 0 || tcpListen(this.tcp, l, backlog) !== 0) throw new Error(`listen ${port}`);
    return l;
  }

  /** The socket holding a connection's 4-tuple in the established hash (full, request or timewait sock). */
  lookup(c: PeerTcp): SockCommon | null {
    const t = this.tcp.hashinfo;
    if (c.family === AF_INET6) return inet6LookupEstablished(t, PEER6, 0, c.pport, stackAddr(AF_INET6) as Uint8Array, 0, c.lport) as SockCommon | null;
    return t.lookupEstablished(PEER_IP, c.pport, stackAddr(AF_INET) as number, c.lport) as SockCommon | null;
  }

  /** A handshake from the peer's side to a listener; returns the accepted socket. */
  passiveOpen(c: PeerTcp, listener: TcpSock, opts: { ts: boolean; sack: boolean; ws: number }): TcpSock {
    const o: (string | number)[][] = [['mss', 1000]];
    if (opts.sack) o.push(['sackOK']);
    if (opts.ts) o.push(['TS', c.tsval, 0]);
    if (opts.ws >= 0) o.push(['nop'], ['wscale', opts.ws]);
    this.inject(c.frame(0x02, c.isn, 0, undefined, tcpOptions(o), 50000));
    this.pump();
    if (!c.stackIsn) throw new Error('no SYN-ACK');
    c.ts = opts.ts;
    c.nxt = (c.isn + 1) >>> 0;
    this.inject(c.frame(0x10, c.nxt, c.rcvNxt, undefined, c.tsOpt(), 50000));
    this.pump();
    const sk = tcpAccept(this.tcp, listener);
    if (typeof sk === 'number') throw new Error(`accept ${sk}`);
    return sk;
  }

  #openSide(): void {
    const l = this.listen(SIDE_LPORT, 4);
    this.sideSk = this.passiveOpen(this.side, l, { ts: true, sack: true, ws: 7 });
    tcpClose(this.tcp, l);
  }

  /** An active open from the stack to the target peer port; returns the socket (SYN sent, not answered). */
  activeOpen(): TcpSock {
    const sk = tcpNewSock(this.tcp, this.family);
    const rc = this.family === AF_INET6 ? tcpV6Connect(this.tcp, sk, PEER6, TARGET_PPORT) : tcpConnect(this.tcp, sk, PEER_IP, TARGET_PPORT);
    if (rc !== -115) throw new Error(`connect ${rc}`);
    return sk;
  }

  /** A frame the world itself sends (handshakes, ACKs, answers): not fuzzed, not checked frame by frame. */
  inject(f: Buffer): void {
    this.h.rx(f);
  }

  /**
   * Take what the stack sent: every checksum must be right; the side
   * connection's segments go to its peer, neighbour solicitations for the
   * peer are answered, the target's segments are noted. Then deliver what
   * the peer owes, until quiet.
   */
  pump(): void {
    for (let round = 0; round < 64; round++) {
      const frames = this.h.link.takeParsed();
      for (const p of frames) {
        this.out.push(p);
        this.#checkOut(p);
        if (this.side.owns(p)) this.#sideSeg(p);
        else if (this.target.owns(p)) this.target.note(p);
        else if (p.icmp6?.type === 135) this.#solicited(p);
      }
      if (!this.#ndAnswers.length && !this.#sideOwed.length) return;
      for (const f of this.#ndAnswers.splice(0)) this.h.rx(f);
      for (const f of this.#sideOwed.splice(0)) this.h.rx(f);
    }
    throw new FuzzFailure('livelock', 'the stack and the peer kept exchanging frames for 64 rounds');
  }

  #checkOut(p: Parsed): void {
    if (p.ip && !p.ip.csumOk) throw new FuzzFailure('bad-output', `an IPv4 header with a wrong checksum: ${JSON.stringify(p.ip)}`);
    if (p.tcp && !p.tcp.csumOk) throw new FuzzFailure('bad-output', `a TCP segment with a wrong checksum (${p.tcp.sport} -> ${p.tcp.dport})`);
    if (p.icmp && !p.icmp.csumOk) throw new FuzzFailure('bad-output', `an ICMP message with a wrong checksum (type ${p.icmp.type})`);
    if (p.icmp6 && !p.icmp6.csumOk) throw new FuzzFailure('bad-output', `an ICMPv6 message with a wrong checksum (type ${p.icmp6.type})`);
    // The peer's IPv4 neighbour entry is permanent: nothing received may move it.
    if (p.ip && p.ip.dst === PEER_IP && !p.dst.equals(PEER_MAC)) throw new FuzzFailure('neigh', `a frame to ${PEER_IP} left for ${p.dst.toString('hex')}, not the permanent entry's MAC`);
    if (!p.src.equals(STACK_MAC)) throw new FuzzFailure('bad-output', `a frame sent from ${p.src.toString('hex')}`);
    if (p.ip) {
      if (!this.stack.fib.isLocal(p.ip.src)) throw new FuzzFailure('bad-output', `an IPv4 packet sent from ${p.ip.src >>> 0}, not one of our addresses`);
      if (p.icmp && ICMP_ERRORS.has(p.icmp.type)) this.#checkIcmpError(p.icmp.data);
    }
    if (p.ip6) {
      const unspec = p.ip6.srcBuf.every((b) => b === 0);
      // Only duplicate address detection's solicitations and MLD reports before an address leave from ::.
      if (!unspec && !this.stack.ipv6.addrconf.isLocal(p.ip6.srcBuf)) throw new FuzzFailure('bad-output', `an IPv6 packet sent from ${p.ip6.src}, not one of our addresses`);
      if (p.icmp6 && p.icmp6.type < 128) this.#checkIcmp6Error(p.icmp6.type, p.icmp6.code, p.icmp6.body);
    }
  }

  /**
   * RFC 1122 3.2.2: no ICMP error about an ICMP error, a datagram to a
   * broadcast or multicast address, a non-first fragment, or a source that
   * does not name one host.
   */
  #checkIcmpError(q: Buffer): void {
    if (q.length < 20) throw new FuzzFailure('bad-output', `an ICMP error quoting ${q.length} bytes`);
    const ihl = (q[0] & 15) * 4;
    const src = q.readUInt32BE(12);
    const dst = q.readUInt32BE(16);
    const fib = this.stack.fib;
    // Zero, multicast, limited or subnet broadcast, loopback: no single host (class E is left alone, as Linux does).
    const bad = (a: number) => a === 0 || (a >>> 28) === 0xe || a === 0xffffffff || (a >>> 24) === 127 || fib.addrType(a) === RTN_BROADCAST;
    if (bad(dst)) throw new FuzzFailure('bad-output', `an ICMP error about a datagram to ${dst >>> 0}`);
    if (bad(src)) throw new FuzzFailure('bad-output', `an ICMP error about a datagram from ${src >>> 0}`);
    if (q.readUInt16BE(6) & 0x1fff) throw new FuzzFailure('bad-output', 'an ICMP error about a non-first fragment');
    if (q[9] === 1 && q.length > ihl && ICMP_ERRORS.has(q[ihl])) throw new FuzzFailure('bad-output', `an ICMP error about ICMP error type ${q[ihl]}`);
  }

  /**
   * RFC 4443 2.4 (e): no ICMPv6 error about an ICMPv6 error, nor (but for
   * Packet Too Big and an unknown option's Parameter Problem) about a packet
   * to a multicast address, nor about one from an address that names no single node.
   */
  #checkIcmp6Error(type: number, code: number, body: Buffer): void {
    const q = body.subarray(4);
    if (q.length < 40) return;
    const dstMc = q[24] === 0xff;
    const srcBad = q[8] === 0xff || q.subarray(8, 24).every((b) => b === 0);
    if (srcBad) throw new FuzzFailure('bad-output', `an ICMPv6 error (type ${type}) about a packet from a multicast or unspecified source`);
    if (dstMc && type !== 2 && !(type === 4 && code === 2)) throw new FuzzFailure('bad-output', `an ICMPv6 error (type ${type}, code ${code}) about a packet to a multicast address`);
    const out = new Int32Array(2);
    if (ipv6SkipExthdr(q, 40, q.length, q[6], out) && out[1] === 58 && out[0] < q.length && q[out[0]] < 128) {
      throw new FuzzFailure('bad-output', `an ICMPv6 error (type ${type}) about ICMPv6 error type ${q[out[0]]}`);
    }
  }

  #solicited(p: Parsed): void {
    if (!p.ip6 || p.ip6.srcBuf.every((b) => b === 0)) return;
    const target = p.icmp6!.body.subarray(4, 20);
    if (!target.equals(PEER6) && !target.equals(PEER_LL)) return;
    this.#ndAnswers.push(ndFrame(naMsg(target, 0x60, target, p.ip6.srcBuf), target, p.ip6.srcBuf));
  }

  /** The side peer: check each byte it is sent against the pattern, acknowledge in order. */
  #sideSeg(p: Parsed): void {
    const c = this.side;
    c.note(p);
    const t = p.tcp!;
    if (t.flags & 0x04) throw new FuzzFailure('side', 'the side connection was reset');
    const len = t.payload.length;
    if (len) {
      const at = (t.seq - c.rcvNxt) | 0;
      const base = this.sideGot + at;
      for (let i = 0; i < len; i++) {
        if (base + i < 0) continue;
        if (t.payload[i] !== patternByte(base + i, 0x33)) throw new FuzzFailure('side', `byte ${base + i} of the side stream: ${t.payload[i]}, expected ${patternByte(base + i, 0x33)}`);
      }
      if (at <= 0 && at + len > 0) {
        c.rcvNxt = (c.rcvNxt + at + len) >>> 0;
        this.sideGot += at + len;
      }
    }
    if (len || t.flags & 0x01) {
      if (t.flags & 0x01) throw new FuzzFailure('side', 'the side connection was closed by the stack');
      this.#sideOwed.push(c.frame(0x10, c.nxt, c.rcvNxt, undefined, c.tsOpt(), 65535));
    }
  }

  /** The side peer sends n more bytes of its pattern (as much as the window allows). */
  sideSend(n: number): void {
    const c = this.side;
    const sent = (c.nxt - c.isn - 1) >>> 0;
    // Keep within what the stack has room for: the application reads after each action.
    n = Math.min(n, 60_000 - (sent - this.sideRead));
    for (let off = 0; off < n; ) {
      const l = Math.min(1000, n - off);
      const b = Buffer.alloc(l);
      for (let i = 0; i < l; i++) b[i] = patternByte(sent + off + i, 0x77);
      this.inject(c.frame(0x18, (c.nxt + off) >>> 0, c.rcvNxt, b, c.tsOpt(), 65535));
      off += l;
    }
    if (n > 0) c.nxt = (c.nxt + n) >>> 0;
    this.sideIn = (c.nxt - c.isn - 1) >>> 0;
  }

  /** The peer resends what the stack has not acknowledged (after a drop, say). */
  sideResend(): void {
    const c = this.side;
    const acked = (c.stackAck - c.isn - 1) >>> 0;
    if (acked >= this.sideIn) return;
    for (let off = acked; off < this.sideIn; ) {
      const l = Math.min(1000, this.sideIn - off);
      const b = Buffer.alloc(l);
      for (let i = 0; i < l; i++) b[i] = patternByte(off + i, 0x77);
      this.inject(c.frame(0x18, (c.isn + 1 + off) >>> 0, c.rcvNxt, b, c.tsOpt(), 65535));
      off += l;
    }
  }

  /** The application reads the side socket and checks every byte. */
  sideReadAll(): void {
    for (;;) {
      const n = tcpRecvmsg(this.tcp, this.sideSk, this.#rbuf);
      if (n <= 0) return;
      for (let i = 0; i < n; i++) {
        const want = patternByte(this.sideRead + i, 0x77);
        if (this.#rbuf[i] !== want) throw new FuzzFailure('side', `the application read byte ${this.sideRead + i} as ${this.#rbuf[i]}, the peer sent ${want}`);
      }
      this.sideRead += n;
    }
  }

  sideWrite(n: number): void {
    n = Math.min(n, 200_000 - (this.sideOut - this.sideGot));
    if (n <= 0) return;
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = patternByte(this.sideOut + i, 0x33);
    const w = tcpSendmsg(this.tcp, this.sideSk, b);
    if (w > 0) this.sideOut += w;
  }

  /** The target socket's application. */
  app(a: 'read' | 'write' | 'shutdown' | 'close', n = 0): void {
    const sk = this.targetSk;
    if (!sk) return;
    if (a === 'read') while (tcpRecvmsg(this.tcp, sk, this.#rbuf) > 0);
    else if (a === 'write') tcpSendmsg(this.tcp, sk, Buffer.alloc(n, 0x5a));
    else if (a === 'shutdown') tcpShutdown(this.tcp, sk, SHUT_WR);
    else tcpClose(this.tcp, sk);
  }

  /** The UDP sockets' application: read everything. */
  udpReadAll(): void {
    const m = new MsgHdr();
    for (const s of [this.udp, this.udp4]) while (udpRecvmsg(this.stack.udp, s, this.#rbuf, 0, m) >= 0);
  }

  /** The target's sock in the established hash, whatever its kind. */
  targetSock(): SockCommon | null {
    return this.lookup(this.target);
  }

  /** The numbers a segment for the target should be built around (absolute). */
  targetCtx(): { rcvNxt: number; sndUna: number; sndNxt: number; rcvWnd: number; mss: number; tsRecent: number; ts: boolean; state: number } {
    const s = this.targetSock();
    if (s && s.state === TCP_NEW_SYN_RECV) {
      const r = s as TcpRequestSock;
      return { rcvNxt: (r.rcvIsn + 1) >>> 0, sndUna: r.sntIsn >>> 0, sndNxt: (r.sntIsn + 1) >>> 0, rcvWnd: r.rcvWnd, mss: 1000, tsRecent: r.tsRecent, ts: r.tstampOk, state: s.state };
    }
    if (s && s.state === TCP_TIME_WAIT) {
      const tw = s as unknown as TcpTimewaitSock;
      return { rcvNxt: tw.rcvNxt, sndUna: tw.sndNxt, sndNxt: tw.sndNxt, rcvWnd: tw.rcvWnd, mss: 1000, tsRecent: tw.tsRecent, ts: tw.tstampOk, state: TCP_TIME_WAIT };
    }
    const sk = (s as TcpSock | null) ?? this.targetSk;
    if (sk) return { rcvNxt: sk.rcvNxt, sndUna: sk.sndUna, sndNxt: sk.sndNxt, rcvWnd: sk.rcvWnd, mss: sk.mssCache, tsRecent: sk.tsRecent, ts: sk.tstampOk, state: sk.state };
    const c = this.target;
    return { rcvNxt: c.nxt, sndUna: c.stackAck, sndNxt: c.stackAck, rcvWnd: 65535, mss: 1000, tsRecent: 0, ts: false, state: 10 };
  }
}
