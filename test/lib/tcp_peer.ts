/**
 * A scripted TCP peer for tests that drive a server on the stack (the
 * built-in services): it opens the connection, sends what it is given as
 * fast as the stack's window allows, ACKs everything the stack sends,
 * collects the bytes, and handles FIN and RST. Several peers share one
 * PeerNet, which takes the stack's frames off the in-memory link and hands
 * each to its peer by port.
 *
 * The stack's socket owners act in microtasks, so a test moves the world
 * with `await net.settle()` (until nothing more is sent either way) and
 * `await net.advance(ms)` (virtual time, settling after every step).
 *
 * Deliberately simple and strict: no SACK, no timestamps, no
 * retransmission of its own (the in-memory link loses nothing it is not
 * told to: `lose` drops chosen segments on their way to the peer), no
 * out-of-order queue (a segment past a hole is dropped and answered with a
 * duplicate ACK, so the stack must resend from the hole); bytes the stack
 * sends beyond the advertised window are counted in `overWindow` and
 * dropped, which a test can assert is 0.
 */
import { Harness } from './harness.js';
import { PEER_IP, PEER_MAC, STACK_IP, ipFrame, tcp as tcpSeg, tcpOptions, type Parsed } from './frames.js';
import { AF_INET } from '../../src/uapi.js';

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;

const before = (a: number, b: number): boolean => ((a - b) | 0) < 0;
const after = (a: number, b: number): boolean => ((b - a) | 0) < 0;
const diff = (a: number, b: number): number => (a - b) | 0;

export interface PeerOptions {
  /** MSS in our SYN. */
  mss?: number;
  /** Window scale in our SYN; null sends none. */
  wscale?: number | null;
  /** Receive buffer: the window is this less what the test has not read. */
  rcvBuf?: number;
  /** Read everything as it comes (the window never closes); false leaves it to take()/read(). */
  autoRead?: boolean;
}

/** A segment as the peer saw it, sequence numbers relative to each side's ISN. */
export interface SeenSeg {
  flags: string;
  seq: number;
  ack: number;
  win: number;
  len: number;
  /** Virtual time it arrived (ms). */
  at: number;
}

export function flagString(f: number): string {
  return (f & SYN ? 'S' : '') + (f & FIN ? 'F' : '') + (f & RST ? 'R' : '') + (f & PSH ? 'P' : '') + (f & ACK ? '.' : '');
}

export class PeerNet {
  readonly h: Harness;
  readonly peers = new Map<number, TcpPeer>();
  /** Frames that were not TCP for a known peer (ARP, ICMP, resets to unknown ports). */
  readonly other: Parsed[] = [];
  #nextPort = 40000;
  /** Drop this segment from the stack before its peer sees it (loss on the way to the peer). */
  lose: ((p: TcpPeer, seg: NonNullable<Parsed['tcp']>) => boolean) | null = null;
  lost = 0;

  constructor(h?: Harness) {
    this.h = h ?? Harness.withPeer(AF_INET);
    // The scripted peer answers no ARP: a static entry.
    this.h.stack.neighAddPermanent(PEER_IP, PEER_MAC);
  }

  get time() {
    return this.h.time;
  }

  /** A new peer (not yet connected) that will talk to the stack's `dport`. */
  peer(dport: number, opts: PeerOptions = {}): TcpPeer {
    const p = new TcpPeer(this, this.#nextPort++, dport, opts);
    this.peers.set(p.port, p);
    return p;
  }

  /** A peer that has completed the handshake. */
  async connect(dport: number, opts: PeerOptions = {}): Promise<TcpPeer> {
    const p = this.peer(dport, opts);
    p.connect();
    await this.settle();
    if (!p.established) throw new Error(`no connection to port ${dport}: ${JSON.stringify(p.segs)}`);
    return p;
  }

  /** Hand the stack's frames to the peers and let them answer, until neither side has anything to send. */
  async settle(): Promise<void> {
    let quiet = 0;
    for (let rounds = 0; quiet < 2; rounds++) {
      if (rounds > 1_000_000) throw new Error('settle: the exchange never goes quiet');
      // Microtasks (the services) run before an immediate; two quiet rounds let one yielding to setImmediate finish too.
      await new Promise<void>((r) => setImmediate(r));
      let moved = false;
      for (const f of this.h.sent()) {
        moved = true;
        const t = f.tcp;
        const p = t && f.ip!.src === STACK_IP ? this.peers.get(t.dport) : undefined;
        if (!p || !t || t.sport !== p.dport) {
          this.other.push(f);
          continue;
        }
        if (!t.csumOk || !f.ip!.csumOk) throw new Error('bad checksum from the stack');
        if (this.lose && this.lose(p, t)) {
          this.lost++;
          continue;
        }
        p.input(t);
      }
      for (const p of this.peers.values()) if (p.output()) moved = true;
      quiet = moved ? 0 : quiet + 1;
    }
  }

  /** Move virtual time in steps, settling after each (timers: delayed ACKs, RTOs, the services' own). */
  async advance(ms: number, step = 10): Promise<void> {
    await this.settle();
    for (let t = 0; t < ms; t += step) {
      this.h.time.advance(Math.min(step, ms - t));
      await this.settle();
    }
  }

  /** Put one segment on the wire to the stack (the peers' only way out). */
  xmit(p: TcpPeer, flags: number, seq: number, ack: number, win: number, payload?: Uint8Array, options?: Buffer): void {
    const seg = tcpSeg({ sport: p.port, dport: p.dport, seq, ack, flags, win, payload, options, src: PEER_IP, dst: STACK_IP });
    this.h.rx(ipFrame({ proto: 6, payload: seg }));
  }
}

export class TcpPeer {
  readonly iss: number;
  irs = 0;
  sndUna: number;
  sndNxt: number;
  /** The stack's receive window, in bytes. */
  sndWnd = 0;
  rcvNxt = 0;
  /** The stack's MSS and window scale from its SYN-ACK. */
  stackMss = 536;
  stackWscale = 0;
  established = false;
  /** Our FIN is queued (after the data), sent, ACKed. */
  finQueued = false;
  finSent = false;
  finAcked = false;
  /** The stack's FIN has arrived (in order). */
  finReceived = false;
  /** A RST arrived, or abort() sent one. */
  reset = false;
  /** Every segment from the stack, in order. */
  readonly segs: SeenSeg[] = [];
  /** Payload bytes the stack sent beyond the window we offered (dropped). */
  overWindow = 0;
  /** Received bytes the test has not taken yet (autoRead leaves them here too, but keeps the window open). */
  #chunks: Buffer[] = [];
  unread = 0;
  /** Every byte ever received in order. */
  receivedTotal = 0;
  readonly rcvBuf: number;
  readonly autoRead: boolean;
  readonly #wscale: number | null;
  readonly #mss: number;
  #wscaleOk = false;
  /** Data not yet sent, oldest first; #sendOff into the first. */
  #sendQ: Buffer[] = [];
  #sendOff = 0;
  /** Bytes written and not yet sent. */
  queued = 0;
  #ackNeeded = false;
  /** The window we last advertised (to send an update when reading opens it). */
  #lastWnd = 0;

  constructor(
    readonly net: PeerNet,
    readonly port: number,
    readonly dport: number,
    opts: PeerOptions,
  ) {
    this.iss = (port * 0x10001 + 0x1000) >>> 0;
    this.sndUna = this.sndNxt = this.iss;
    this.#mss = opts.mss ?? 1460;
    this.#wscale = opts.wscale === undefined ? 7 : opts.wscale;
    this.rcvBuf = opts.rcvBuf ?? 262144;
    this.autoRead = opts.autoRead ?? true;
  }

  /** Send the SYN. */
  connect(): void {
    const opts: (string | number)[][] = [['mss', this.#mss]];
    if (this.#wscale !== null) opts.push(['nop'], ['wscale', this.#wscale]);
    this.net.xmit(this, SYN, this.iss, 0, Math.min(this.rcvBuf, 65535), undefined, tcpOptions(opts));
    this.sndNxt = (this.iss + 1) >>> 0;
  }

  /** Queue bytes to send; they go as the window allows (on the next settle). */
  write(data: Buffer | string): void {
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (this.finQueued) throw new Error('write after close');
    if (b.length) {
      this.#sendQ.push(b);
      this.queued += b.length;
    }
  }

  /** FIN after the queued data. */
  close(): void {
    this.finQueued = true;
  }

  /** Send a RST now. */
  abort(): void {
    this.net.xmit(this, RST | ACK, this.sndNxt, this.rcvNxt, 0);
    this.reset = true;
  }

  /** Take every received byte not yet taken (opens the window). */
  take(): Buffer {
    return this.read(this.unread);
  }

  /** Take up to n received bytes (opens the window by as much). */
  read(n: number): Buffer {
    const parts: Buffer[] = [];
    let left = Math.min(n, this.unread);
    while (left > 0) {
      const c = this.#chunks[0];
      if (c.length <= left) {
        parts.push(c);
        this.#chunks.shift();
        left -= c.length;
        this.unread -= c.length;
      } else {
        parts.push(c.subarray(0, left));
        this.#chunks[0] = c.subarray(left);
        this.unread -= left;
        left = 0;
      }
    }
    return Buffer.concat(parts);
  }

  /** Our data bytes the stack has ACKed. */
  get bytesAcked(): number {
    return diff(this.sndUna, this.iss) - 1 - (this.finAcked ? 1 : 0);
  }

  #window(): number {
    return Math.max(0, this.rcvBuf - (this.autoRead ? 0 : this.unread));
  }

  #wndField(): number {
    const w = this.#window();
    return Math.min(0xffff, this.#wscaleOk ? w >>> this.#wscale! : w);
  }

  /** One segment from the stack. */
  input(t: NonNullable<Parsed['tcp']>): void {
    const f = t.flags;
    this.segs.push({
      flags: flagString(f),
      seq: diff(t.seq, this.irs || t.seq),
      ack: f & ACK ? diff(t.ack, this.iss) : 0,
      win: t.win,
      len: t.payload.length,
      at: this.net.time.now(),
    });
    if (f & RST) {
      this.reset = true;
      return;
    }
    if (f & SYN) {
      if (!(f & ACK) || t.ack !== ((this.iss + 1) >>> 0)) return;
      if (this.established) {
        // A retransmitted SYN-ACK: our ACK was lost (it never is here), ACK again.
        this.#ackNeeded = true;
        return;
      }
      this.irs = t.seq;
      this.rcvNxt = (t.seq + 1) >>> 0;
      this.sndUna = t.ack;
      this.established = true;
      const mss = /mss (\d+)/.exec(t.options);
      if (mss) this.stackMss = Number(mss[1]);
      const ws = /wscale (\d+)/.exec(t.options);
      this.#wscaleOk = ws !== null && this.#wscale !== null;
      this.stackWscale = this.#wscaleOk ? Number(ws![1]) : 0;
      this.sndWnd = t.win; // never scaled in a SYN
      this.#ackNeeded = true;
      this.segs[this.segs.length - 1].seq = 0;
      return;
    }
    if (!this.established) return;
    if (f & ACK && !after(t.ack, this.sndNxt)) {
      if (after(t.ack, this.sndUna)) this.sndUna = t.ack;
      this.sndWnd = t.win << this.stackWscale;
      if (this.finSent && t.ack === this.sndNxt) this.finAcked = true;
    }
    let seq = t.seq;
    let data = t.payload;
    // An old sequence number with nothing new (a zero-window probe, a keepalive) is answered with an ACK (RFC 9293 3.10.7.4).
    if (!data.length && !(f & FIN) && before(seq, this.rcvNxt)) this.#ackNeeded = true;
    if (data.length) {
      this.#ackNeeded = true;
      if (before(seq, this.rcvNxt)) {
        const skip = diff(this.rcvNxt, seq);
        data = data.subarray(Math.min(skip, data.length));
        seq = this.rcvNxt;
      }
      if (seq !== this.rcvNxt) {
        // A hole (a segment was lost on the way): a duplicate ACK for each segment past it, as RFC 5681 4.2 asks.
        this.net.xmit(this, ACK, this.sndNxt, this.rcvNxt, this.#wndField());
        this.#ackNeeded = false;
        return;
      }
      const room = this.#window();
      if (data.length > room) {
        this.overWindow += data.length - room;
        data = data.subarray(0, room);
      }
      if (data.length) {
        const copy = Buffer.from(data);
        this.receivedTotal += copy.length;
        this.#chunks.push(copy);
        this.unread += copy.length;
        this.rcvNxt = (this.rcvNxt + copy.length) >>> 0;
      }
    }
    if (f & FIN) {
      this.#ackNeeded = true;
      if (((t.seq + t.payload.length) >>> 0) === this.rcvNxt && !this.finReceived) {
        this.rcvNxt = (this.rcvNxt + 1) >>> 0;
        this.finReceived = true;
      }
    }
  }

  /** Send what the window allows, our FIN when due, and an ACK if one is owed. True if anything went out. */
  output(): boolean {
    if (!this.established || this.reset) return false;
    let sent = false;
    // A window update when reading opened the window by an MSS or more (or from zero).
    const wnd = this.#window();
    if (wnd - this.#lastWnd >= Math.min(this.stackMss, this.rcvBuf / 2) || (this.#lastWnd === 0 && wnd > 0)) this.#ackNeeded = true;
    while (this.queued > 0) {
      const inFlight = diff(this.sndNxt, this.sndUna);
      const room = this.sndWnd - inFlight;
      if (room <= 0) break;
      const len = Math.min(this.queued, this.stackMss, room);
      const payload = this.#dequeue(len);
      this.#lastWnd = this.#window();
      this.net.xmit(this, ACK | (this.queued === 0 ? PSH : 0), this.sndNxt, this.rcvNxt, this.#wndField(), payload);
      this.sndNxt = (this.sndNxt + len) >>> 0;
      this.#ackNeeded = false;
      sent = true;
    }
    if (this.finQueued && !this.finSent && this.queued === 0) {
      this.#lastWnd = this.#window();
      this.net.xmit(this, FIN | ACK, this.sndNxt, this.rcvNxt, this.#wndField());
      this.sndNxt = (this.sndNxt + 1) >>> 0;
      this.finSent = true;
      this.#ackNeeded = false;
      sent = true;
    }
    if (this.#ackNeeded) {
      this.#lastWnd = this.#window();
      this.net.xmit(this, ACK, this.sndNxt, this.rcvNxt, this.#wndField());
      this.#ackNeeded = false;
      sent = true;
    }
    return sent;
  }

  #dequeue(len: number): Buffer {
    const out = Buffer.allocUnsafe(len);
    let o = 0;
    while (o < len) {
      const c = this.#sendQ[0];
      const n = Math.min(c.length - this.#sendOff, len - o);
      c.copy(out, o, this.#sendOff, this.#sendOff + n);
      o += n;
      this.#sendOff += n;
      if (this.#sendOff === c.length) {
        this.#sendQ.shift();
        this.#sendOff = 0;
      }
    }
    this.queued -= len;
    return out;
  }
}
