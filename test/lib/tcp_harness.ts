/**
 * Deterministic TCP tests: the stack on the in-memory link and a virtual
 * clock, a scripted peer, and sequence numbers shown relative to each side's
 * ISN as packetdrill shows them (the peer's ISN is 0 in the script).
 */
import { Harness } from './harness.js';
import { ipFrame, tcp as tcpSeg, tcpOptions, type Parsed, PEER_IP, PEER_MAC, STACK_IP } from './frames.js';
import { tcpAccept, tcpBind, tcpConnect, tcpListen, tcpSetsockopt } from '../../src/net/ipv4/tcp.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { SOL_SOCKET, SO_REUSEADDR } from '../../src/uapi.js';

export const S = 0x02;
export const A = 0x10;
export const F = 0x01;
export const R = 0x04;
export const P = 0x08;

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
  /** All TCP flag bits (ECE, CWR included) and the IP TOS byte. */
  tcpFlags: number;
  tos: number;
}

export interface PeerSend {
  flags: number;
  seq: number;
  ack?: number;
  win?: number;
  payload?: Buffer | number;
  options?: (string | number)[][];
  /** IP TOS byte (ECN bits in the low two). */
  tos?: number;
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
  /** Frames other than TCP (ARP probes) are kept here, not returned by out(). */
  other: Parsed[] = [];

  constructor(opts: { mtu?: number } = {}) {
    this.h = Harness.withPeer(opts);
    this.tcp = this.h.stack.tcp;
    // The scripted peer answers no ARP: a static entry, as packetdrill's tun setup has.
    this.h.stack.neighAddPermanent(PEER_IP, PEER_MAC);
  }

  get time() {
    return this.h.time;
  }

  get mibs() {
    return this.h.stack.mibs;
  }

  /** A listener on localPort with SO_REUSEADDR, like packetdrill's preamble. */
  listen(backlog = 1): TcpSock {
    const l = tcpNewSock(this.tcp);
    tcpSetsockopt(this.tcp, l, SOL_SOCKET, SO_REUSEADDR, 1);
    if (tcpBind(this.tcp, l, 0, this.localPort) !== 0) throw new Error('bind');
    if (tcpListen(this.tcp, l, backlog) !== 0) throw new Error('listen');
    this.listener = l;
    return l;
  }

  /** Send a segment from the peer; seq relative to the peer's ISN, ack to the stack's. */
  send(p: PeerSend): void {
    const payload = typeof p.payload === 'number' ? Buffer.alloc(p.payload, 0x61) : (p.payload ?? Buffer.alloc(0));
    const frame = ipFrame({
      proto: 6,
      tos: p.tos,
      payload: tcpSeg({
        sport: this.peerPort,
        dport: this.localPort,
        seq: (this.peerIsn + p.seq) >>> 0,
        ack: p.ack === undefined ? 0 : (this.stackIsn + p.ack) >>> 0,
        flags: p.flags,
        win: p.win ?? 65535,
        payload,
        options: p.options ? tcpOptions(p.options) : undefined,
        src: PEER_IP,
        dst: STACK_IP,
      }),
    });
    this.h.rx(frame);
  }

  /** TCP segments the stack sent since the last call, relative numbers. */
  out(): Seg[] {
    const segs: Seg[] = [];
    for (const p of this.h.sent()) {
      if (!p.tcp) {
        this.other.push(p);
        continue;
      }
      const t = p.tcp;
      if (!t.csumOk || !p.ip!.csumOk) throw new Error('bad checksum from the stack');
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
        tos: p.ip!.tos,
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
  static established(): TcpHarness {
    const t = new TcpHarness();
    t.accept([['mss', 1000], ['nop'], ['wscale', 0]], 50000);
    t.out();
    return t;
  }

  /** An active open to the peer; returns the socket (SYN sent). */
  connect(): TcpSock {
    const sk = tcpNewSock(this.tcp);
    const rc = tcpConnect(this.tcp, sk, PEER_IP, this.peerPort);
    if (rc !== -115) throw new Error(`connect: ${rc}`);
    this.sk = sk;
    this.localPort = sk.num;
    return sk;
  }
}
