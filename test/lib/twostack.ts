/**
 * Two stacks on one virtual clock, joined by a FaultLine each way (the
 * impairment tapstackd --fault applies): a whole connection, both ends
 * ours, replayed deterministically from seeds. Used by the loss-recovery
 * tests and by bench/tools/loss_sim.
 *
 * Frames the lines let through are queued and handed over only between
 * stack calls (flush()), never from inside one: a frame the line passes at
 * once (reordered ahead) would otherwise re-enter the sending stack through
 * the peer's synchronous reply, which neither the kernel (socket lock and
 * backlog) nor the daemon (driver callbacks) ever does.
 */
import { Stack } from '../../src/net/stack.js';
import { VirtualTime } from '../../src/lib/time.js';
import { SeededRandom } from '../../src/lib/random.js';
import { FaultLine, type FaultSpec } from '../../src/drivers/fault.js';
import type { LinkDriver } from '../../src/net/core/dev.js';
import { tcpAccept, tcpBind, tcpConnect, tcpListen, tcpRecvmsg, tcpSendmsg, tcpSetsockoptStr } from '../../src/net/ipv4/tcp.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { SOL_TCP, TCP_CONGESTION } from '../../src/uapi.js';

export const ADDR_A = 0x0a000002;
export const ADDR_B = 0x0a000001;

/** A frame observer on one direction, before the impairment (sent) and after it (delivered). */
export interface WireObserver {
  sent?(buf: Buffer, off: number, len: number): void;
  delivered?(buf: Buffer, off: number, len: number): void;
}

class Wire implements LinkDriver {
  line!: FaultLine;
  obs: WireObserver = {};
  xmit(buf: Buffer, off: number, len: number): boolean {
    this.obs.sent?.(buf, off, len);
    this.line.push(buf, off, len);
    return true;
  }
}

export class TwoStacks {
  readonly time = new VirtualTime(0);
  readonly a: Stack;
  readonly b: Stack;
  readonly #wa = new Wire();
  readonly #wb = new Wire();
  /** Frames passed by a line and not yet received: [to A?, bytes]. */
  readonly #pending: { toA: boolean; frame: Buffer }[] = [];
  #flushing = false;

  /** `ab` impairs A's frames to B, `ba` B's to A. */
  constructor(ab: FaultSpec, ba: FaultSpec, seed: number) {
    const t = this.time;
    this.a = new Stack({ ifname: 'a', mac: Buffer.from([2, 0, 0, 0, 0, 0xa]), mtu: 1500, ipv4: [{ addr: ADDR_A, prefix: 24 }], gateway: 0 }, this.#wa, t, new SeededRandom(seed));
    this.b = new Stack({ ifname: 'b', mac: Buffer.from([2, 0, 0, 0, 0, 0xb]), mtu: 1500, ipv4: [{ addr: ADDR_B, prefix: 24 }], gateway: 0 }, this.#wb, t, new SeededRandom(seed + 1));
    this.#wa.line = new FaultLine(ab, t, new SeededRandom(seed * 7 + 3), (buf, off, len) => {
      this.#wa.obs.delivered?.(buf, off, len);
      this.#pending.push({ toA: false, frame: Buffer.from(buf.subarray(off, off + len)) });
    });
    this.#wb.line = new FaultLine(ba, t, new SeededRandom(seed * 13 + 5), (buf, off, len) => {
      this.#wb.obs.delivered?.(buf, off, len);
      this.#pending.push({ toA: true, frame: Buffer.from(buf.subarray(off, off + len)) });
    });
    this.a.up();
    this.b.up();
  }

  /** Hand every passed frame to its stack, and whatever those answer at once, until quiet. */
  flush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      for (let i = 0; i < this.#pending.length; i++) {
        const p = this.#pending[i];
        (p.toA ? this.a : this.b).receive(p.frame, 0, p.frame.length);
      }
      this.#pending.length = 0;
    } finally {
      this.#flushing = false;
    }
  }

  /** Advance the clock one millisecond at a time, flushing after each. */
  advance(ms: number): void {
    for (let i = 0; i < ms; i++) {
      this.time.advance(1);
      this.flush();
    }
  }

  observe(dir: 'ab' | 'ba', obs: WireObserver): void {
    (dir === 'ab' ? this.#wa : this.#wb).obs = obs;
  }

  lineStats(dir: 'ab' | 'ba') {
    return (dir === 'ab' ? this.#wa : this.#wb).line.stats;
  }

  /**
   * A sends `bytes` to B over one connection (A listens, B connects), both
   * sides moving data every virtual millisecond. The bytes follow a pattern
   * B checks as it reads (throws at the first wrong byte). Returns the
   * virtual milliseconds until B had everything, or -1 past `limitMs`.
   */
  bulk(bytes: number, opts: { cc?: string; limitMs?: number; onAccept?: (sk: TcpSock) => void } = {}): number {
    const A = this.a;
    const B = this.b;
    const lsk = tcpNewSock(A.tcp);
    tcpBind(A.tcp, lsk, 0, 9000);
    tcpListen(A.tcp, lsk, 8);
    const csk = tcpNewSock(B.tcp);
    tcpConnect(B.tcp, csk, ADDR_A, 9000);
    this.flush();
    let sender: TcpSock | null = null;
    let sent = 0;
    let got = 0;
    // A 251-byte cycle (prime) so a segment resent at the wrong offset shows.
    const chunk = Buffer.alloc(65536 + 251);
    for (let i = 0; i < chunk.length; i++) chunk[i] = i % 251;
    const into = Buffer.alloc(262144);
    const t0 = this.time.now();
    const limit = opts.limitMs ?? 600_000;
    while (this.time.now() - t0 < limit) {
      if (!sender) {
        const c = tcpAccept(A.tcp, lsk);
        if (typeof c !== 'number') {
          sender = c;
          if (opts.cc) tcpSetsockoptStr(A.tcp, sender, SOL_TCP, TCP_CONGESTION, opts.cc);
          opts.onAccept?.(sender);
        }
      }
      while (sender && sent < bytes) {
        const at = sent % 251;
        const n = tcpSendmsg(A.tcp, sender, chunk.subarray(at, at + Math.min(65536, bytes - sent)));
        this.flush();
        if (n <= 0) break;
        sent += n;
      }
      for (;;) {
        const n = tcpRecvmsg(B.tcp, csk, into);
        this.flush();
        if (n <= 0) break;
        for (let i = 0; i < n; i++) {
          if (into[i] !== (got + i) % 251) throw new Error(`byte ${got + i}: got ${into[i]}, sent ${(got + i) % 251}`);
        }
        got += n;
      }
      if (got >= bytes) return this.time.now() - t0;
      this.advance(1);
    }
    return -1;
  }
}

/** The sequence number of an Ethernet/IPv4/TCP frame carrying data, or -1. */
export function dataSeq(b: Buffer, o: number, l: number): number {
  if (l < 54 || b.readUInt16BE(o + 12) !== 0x0800 || b[o + 23] !== 6) return -1;
  const ihl = (b[o + 14] & 15) * 4;
  const tot = b.readUInt16BE(o + 16);
  const th = o + 14 + ihl;
  const doff = (b[th + 12] >> 4) * 4;
  if (tot - ihl - doff <= 0) return -1;
  return b.readUInt32BE(th + 4);
}
