/**
 * Two stacks on one virtual clock over a modelled bottleneck: A's frames
 * to B go through a FIFO served at `rate` bytes per ms (a drop-tail buffer
 * of `buffer` bytes), optionally a token-bucket policer, then `delay` ms of
 * propagation; B's frames to A only take the delay. Every frame is handed
 * over by a timer at its arrival time, so departures and arrivals are exact.
 * For congestion-control tests (BBR's model of the path).
 */
import { Stack } from '../../src/net/stack.js';
import { Timer, VirtualTime } from '../../src/lib/time.js';
import { SeededRandom } from '../../src/lib/random.js';
import type { LinkDriver } from '../../src/net/core/dev.js';
import { tcpAccept, tcpBind, tcpConnect, tcpListen, tcpRecvmsg, tcpSendmsg, tcpSetsockoptStr } from '../../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { SOL_TCP, TCP_CONGESTION } from '../../src/uapi.js';

const ADDR_A = 0x0a000002;
const ADDR_B = 0x0a000001;

export interface PathSpec {
  /** Bottleneck rate A to B, bytes per ms (1250 is 10 Mbit/s). */
  rate: number;
  /** Drop-tail buffer in front of it, bytes. */
  buffer: number;
  /** One-way propagation delay, ms, each way. */
  delay: number;
  /** A token-bucket policer before the queue: bytes per ms and bucket depth, bytes. */
  policer?: { rate: number; burst: number };
}

class Hop implements LinkDriver {
  /** When the bottleneck's transmitter is next free. */
  busyUntil = 0;
  tokens = 0;
  tokensAt = 0;
  drops = 0;
  policed = 0;
  constructor(
    readonly time: VirtualTime,
    public spec: PathSpec,
    readonly bottleneck: boolean,
    readonly deliver: (frame: Buffer) => void,
  ) {
    if (spec.policer) this.tokens = spec.policer.burst;
  }

  xmit(buf: Buffer, off: number, len: number): boolean {
    const now = this.time.now();
    let at = now + this.spec.delay;
    if (this.bottleneck) {
      const p = this.spec.policer;
      if (p) {
        this.tokens = Math.min(p.burst, this.tokens + (now - this.tokensAt) * p.rate);
        this.tokensAt = now;
        if (this.tokens < len) {
          this.policed++;
          return true;
        }
        this.tokens -= len;
      }
      const start = Math.max(now, this.busyUntil);
      if ((start - now) * this.spec.rate > this.spec.buffer) {
        this.drops++;
        return true;
      }
      this.busyUntil = start + len / this.spec.rate;
      at = this.busyUntil + this.spec.delay;
    }
    const frame = Buffer.from(buf.subarray(off, off + len));
    const t = new Timer<Buffer>((f) => this.deliver(f), frame);
    this.time.timers.mod(t, at);
    return true;
  }
}

export class Bottleneck {
  readonly time = new VirtualTime(0);
  readonly a: Stack;
  readonly b: Stack;
  readonly ab: Hop;
  readonly ba: Hop;
  sender: TcpSock | null = null;
  receiver: TcpSock | null = null;
  received = 0;
  #buf = Buffer.alloc(65536);

  constructor(spec: PathSpec, seed = 1) {
    const t = this.time;
    this.ab = new Hop(t, spec, true, (f) => this.b.receive(f, 0, f.length));
    this.ba = new Hop(t, spec, false, (f) => this.a.receive(f, 0, f.length));
    this.a = new Stack({ ifname: 'a', mac: Buffer.from([2, 0, 0, 0, 0, 0xa]), mtu: 1500, ipv4: [{ addr: ADDR_A, prefix: 24 }], gateway: 0 }, this.ab, t, new SeededRandom(seed));
    this.b = new Stack({ ifname: 'b', mac: Buffer.from([2, 0, 0, 0, 0, 0xb]), mtu: 1500, ipv4: [{ addr: ADDR_B, prefix: 24 }], gateway: 0 }, this.ba, t, new SeededRandom(seed + 1));
    this.a.up();
    this.b.up();
  }

  /** B connects to A; A's accepted socket (the sender) gets congestion control `cc`. */
  connect(cc: string): TcpSock {
    const l = tcpNewSock(this.a.tcp);
    tcpBind(this.a.tcp, l, 0, 9000);
    tcpListen(this.a.tcp, l, 4);
    const c = tcpNewSock(this.b.tcp);
    tcpConnect(this.b.tcp, c, ADDR_A, 9000);
    this.receiver = c;
    for (let i = 0; i < 1000 && !this.sender; i++) {
      this.time.advance(1);
      const s = tcpAccept(this.a.tcp, l);
      if (typeof s !== 'number') this.sender = s;
    }
    if (!this.sender) throw new Error('no connection');
    if (tcpSetsockoptStr(this.a.tcp, this.sender, SOL_TCP, TCP_CONGESTION, cc) !== 0) throw new Error(`no ${cc}`);
    return this.sender;
  }

  /**
   * Run a bulk transfer for `ms`: A always has data queued, B reads all it
   * can; `each` sees the sender after every `step` ms.
   */
  run(ms: number, each?: (sk: TcpSock, now: number) => void, step = 1): void {
    const s = this.sender!;
    for (let i = 0; i < ms; i += step) {
      while (tcpSendmsg(this.a.tcp, s, this.#buf) > 0);
      this.time.advance(step);
      for (;;) {
        const n = tcpRecvmsg(this.b.tcp, this.receiver!, this.#buf);
        if (n <= 0) break;
        this.received += n;
      }
      each?.(s, this.time.now());
    }
  }
}
