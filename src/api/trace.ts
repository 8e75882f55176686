/**
 * `tapstack trace`: TCP's tracepoints (net/ipv4/tcp_trace.ts) as JSON lines
 * (docs/trace.md) on a descriptor the daemon hands the client, one stream
 * per trace, each with its ss-style filter. The hub stands on tcp.trace
 * only while a trace runs, so the stack pays a null test per tracepoint
 * otherwise. Records are built as strings, at the event, only for the
 * traces whose filter takes the socket.
 */
import type { Stack } from '../net/stack.js';
import type { SkBuff } from '../net/core/skbuff.js';
import { SKB_DROP_REASON_NAMES, type DropReason } from '../net/core/snmp.js';
import { TCP_STATE_NAMES } from '../net/core/sock.js';
import { tcpPacketsInFlight } from '../net/ipv4/tcp_output.js';
import { tcpSkbCb } from '../net/ipv4/tcp_skb_cb.js';
import type { TcpSock } from '../net/ipv4/tcp_sock.js';
import { TCP_RETRANS_NAMES, type TcpTracer } from '../net/ipv4/tcp_trace.js';
import { formatIpv4, formatIpv6 } from '../lib/addr.js';
import type { SsFilterSock, SsPredicate } from '../lib/ss_filter.js';
import { TcpOptionsReceived, tcpParseOptions, TCPHDR_ACK, TCPHDR_CWR, TCPHDR_ECE, TCPHDR_FIN, TCPHDR_PSH, TCPHDR_RST, TCPHDR_SYN, TCPHDR_URG } from '../wire/tcp.js';
import { RecordPipe } from './record_pipe.js';

/** What one trace may have waiting for its reader before new records are dropped. */
export const TRACE_BACKLOG = 4 << 20;
const CA_STATE_NAMES = ['Open', 'Disorder', 'CWR', 'Recovery', 'Loss'];
const TCP_INFINITE_SSTHRESH = 0x7fffffff;

/** tcpdump's flag letters, in its order. */
function flagString(f: number): string {
  let s = '';
  if (f & TCPHDR_FIN) s += 'F';
  if (f & TCPHDR_SYN) s += 'S';
  if (f & TCPHDR_RST) s += 'R';
  if (f & TCPHDR_PSH) s += 'P';
  if (f & TCPHDR_ACK) s += '.';
  if (f & TCPHDR_URG) s += 'U';
  if (f & TCPHDR_ECE) s += 'E';
  if (f & TCPHDR_CWR) s += 'W';
  return s;
}

export class Trace {
  readonly out: RecordPipe;
  constructor(
    fd: number,
    readonly filter: SsPredicate,
    readonly hub: TraceHub,
    backlog = TRACE_BACKLOG,
  ) {
    this.out = new RecordPipe(fd, backlog, () => hub.remove(this));
  }
  /** Records the reader lost, not yet reported in the stream. */
  unreported = 0;

  write(line: string): void {
    if (this.out.closed) return;
    this.#reportLost();
    if (!this.out.writeString(line)) this.unreported++;
    this.hub.wantFlush();
  }

  /** Say how many records were lost, where they were, as soon as there is room. */
  #reportLost(): void {
    if (this.unreported && this.out.writeString(`{"ev":"lost","records":${this.unreported}}\n`)) this.unreported = 0;
  }

  flush(): void {
    this.#reportLost();
    this.out.flush();
  }
}

/** Every trace running, and the tracepoints' one watcher. */
export class TraceHub implements TcpTracer {
  readonly traces = new Set<Trace>();
  #flushQueued = false;
  #reaper: NodeJS.Timeout | null = null;
  /** The filter's view of the socket an event is about: one object, refilled per event. */
  readonly #view: SsFilterSock = { state: '', family: 4, src: new Uint8Array(16), dst: new Uint8Array(16), sport: 0, dport: 0 };
  /** Where a received segment's options are parsed for its record (not the segment's own control block). */
  readonly #opt = new TcpOptionsReceived();
  /** The traces that take the current event's socket. */
  readonly #taking: Trace[] = [];
  /** Each socket's address fields, made once per socket and state (connect and accept set them). */
  #addrs = new WeakMap<TcpSock, string>();

  constructor(
    readonly stack: Stack,
    readonly onEnd: (t: Trace) => void = () => {},
  ) {}

  add(t: Trace): void {
    if (!this.traces.size) {
      this.stack.tcp.trace = this;
      // A reader that left while nothing was traced is found within a second.
      this.#reaper = setInterval(() => {
        for (const x of [...this.traces]) if (x.out.hungUp()) x.out.close();
      }, 1000);
      this.#reaper.unref();
    }
    this.traces.add(t);
  }

  remove(t: Trace): void {
    if (!this.traces.delete(t)) return;
    this.onEnd(t);
    if (this.traces.size) return;
    if (this.stack.tcp.trace === this) this.stack.tcp.trace = null;
    if (this.#reaper) clearInterval(this.#reaper);
    this.#reaper = null;
  }

  closeAll(): void {
    for (const t of [...this.traces]) t.out.close();
  }

  wantFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => {
      this.#flushQueued = false;
      for (const t of [...this.traces]) t.flush();
    });
  }

  /** The traces that take sk, in #taking; their count. */
  #select(sk: TcpSock): number {
    const v = this.#view;
    const v4 = !sk.ipv6;
    v.family = v4 ? 4 : 6;
    v.state = TCP_STATE_NAMES[sk.state] ?? '';
    v.sport = sk.num;
    v.dport = sk.dport;
    if (v4) {
      // An AF_INET6 socket with an IPv4 peer keeps the plain IPv4 addresses beside the mapped ones.
      putV4(v.src, sk.rcvSaddr);
      putV4(v.dst, sk.daddr);
    } else {
      v.src.set(sk.v6RcvSaddr!);
      v.dst.set(sk.v6Daddr!);
    }
    const taking = this.#taking;
    taking.length = 0;
    for (const t of this.traces) if (t.filter(v)) taking.push(t);
    return taking.length;
  }

  /** The fields every record has: `{"ts":..,"ev":..,"family":..,"saddr":..,...` (no closing brace). */
  #head(sk: TcpSock, ev: string): string {
    let a = this.#addrs.get(sk);
    if (a === undefined) {
      const v4 = !sk.ipv6;
      const saddr = v4 ? formatIpv4(sk.rcvSaddr) : formatIpv6(sk.v6RcvSaddr!);
      const daddr = v4 ? formatIpv4(sk.daddr) : formatIpv6(sk.v6Daddr!);
      a = `"family":${v4 ? 4 : 6},"saddr":"${saddr}","sport":${sk.num},"daddr":"${daddr}","dport":${sk.dport}`;
      this.#addrs.set(sk, a);
    }
    const ts = (this.stack.time.clock.wall() / 1000).toFixed(6);
    return `{"ts":${ts},"ev":"${ev}",${a}`;
  }

  #emit(line: string): void {
    for (const t of this.#taking) t.write(line);
  }

  setState(sk: TcpSock, newState: number): void {
    if (!this.#select(sk)) return;
    this.#addrs.delete(sk);
    this.#emit(`${this.#head(sk, 'state')},"old":"${TCP_STATE_NAMES[sk.state]}","new":"${TCP_STATE_NAMES[newState]}"}\n`);
  }

  xmit(sk: TcpSock, seq: number, len: number, flags: number, ack: number, win: number, sacks: Uint32Array | null, numSacks: number): void {
    if (!this.#select(sk)) return;
    const syn = flags & TCPHDR_SYN;
    const end = (seq + len + (syn ? 1 : 0) + (flags & TCPHDR_FIN ? 1 : 0)) >>> 0;
    const bytes = syn ? win : win * 2 ** sk.rcvWscale;
    let line = `${this.#head(sk, 'xmit')},"seq":${seq >>> 0},"end_seq":${end},"ack":${ack >>> 0},"len":${len},"flags":"${flagString(flags)}","win":${bytes}`;
    if (sacks !== null && numSacks > 0) {
      line += ',"sack":[';
      for (let i = 0; i < numSacks; i++) line += `${i ? ',' : ''}[${sacks[2 * i] >>> 0},${sacks[2 * i + 1] >>> 0}]`;
      line += ']';
    }
    this.#emit(line + '}\n');
  }

  rcv(sk: TcpSock, skb: SkBuff): void {
    if (!this.#select(sk)) return;
    const tcb = tcpSkbCb(skb);
    const f = tcb.tcpFlags;
    const win = f & TCPHDR_SYN ? tcb.window : tcb.window * 2 ** sk.sndWscale;
    let line = `${this.#head(sk, 'rcv')},"seq":${tcb.seq >>> 0},"end_seq":${tcb.endSeq >>> 0},"ack":${tcb.ackSeq >>> 0},"len":${tcb.dataLen},"flags":"${flagString(f)}","win":${win}`;
    // The SACK blocks, parsed into the hub's own options (the segment's own parse comes later, in its state's handler).
    const o = this.#opt;
    tcpParseOptions(skb.buf, skb.transportHeader, tcb.doff, f, true, o);
    let sack = '';
    for (let i = 0; i < o.numSacks; i++) sack += `${i ? ',' : ''}[${o.sackStart[i] >>> 0},${o.sackEnd[i] >>> 0}]`;
    if (sack) line += `,"sack":[${sack}]`;
    this.#emit(line + '}\n');
  }

  retransmit(sk: TcpSock, seq: number, endSeq: number, reason: number): void {
    if (!this.#select(sk)) return;
    this.#emit(`${this.#head(sk, 'retransmit')},"seq":${seq >>> 0},"end_seq":${endSeq >>> 0},"reason":"${TCP_RETRANS_NAMES[reason]}"}\n`);
  }

  probe(sk: TcpSock, rttUs: number): void {
    if (!this.#select(sk)) return;
    const ssthresh = sk.sndSsthresh >= TCP_INFINITE_SSTHRESH ? 'null' : String(sk.sndSsthresh);
    this.#emit(
      `${this.#head(sk, 'probe')},"snd_una":${sk.sndUna >>> 0},"snd_nxt":${sk.sndNxt >>> 0},"rcv_nxt":${sk.rcvNxt >>> 0},` +
        `"snd_wnd":${sk.sndWnd},"rcv_wnd":${sk.rcvWnd},"cwnd":${sk.sndCwnd},"ssthresh":${ssthresh},"inflight":${tcpPacketsInFlight(sk)},` +
        `"mss":${sk.mssCache},"srtt_us":${sk.srttUs >> 3},"rttvar_us":${sk.mdevUs >> 2},"rtt_us":${rttUs},"ca_state":"${CA_STATE_NAMES[sk.caState]}"}\n`,
    );
  }

  sack(sk: TcpSock, opt: { numSacks: number; sackStart: ArrayLike<number>; sackEnd: ArrayLike<number> }, dsack: boolean): void {
    if (!this.#select(sk)) return;
    let blocks = '';
    for (let i = 0; i < opt.numSacks; i++) blocks += `${i ? ',' : ''}[${opt.sackStart[i] >>> 0},${opt.sackEnd[i] >>> 0}]`;
    this.#emit(`${this.#head(sk, 'sack')},"blocks":[${blocks}],"dsack":${dsack}}\n`);
  }

  window(sk: TcpSock, oldWnd: number, newWnd: number): void {
    if (!this.#select(sk)) return;
    this.#emit(`${this.#head(sk, 'window')},"old":${oldWnd},"new":${newWnd}}\n`);
  }

  drop(sk: TcpSock, skb: SkBuff, reason: DropReason): void {
    if (!this.#select(sk)) return;
    const tcb = tcpSkbCb(skb);
    this.#emit(`${this.#head(sk, 'drop')},"reason":"${SKB_DROP_REASON_NAMES[reason]}","seq":${tcb.seq >>> 0},"end_seq":${tcb.endSeq >>> 0}}\n`);
  }

  wspace(sk: TcpSock): void {
    if (!this.#select(sk)) return;
    this.#emit(
      `${this.#head(sk, 'wspace')},"sndbuf":${sk.sndbuf},"wmem_queued":${sk.wmemQueued},"min_wspace":${sk.wmemQueued >> 1},"notsent":${(sk.writeSeq - sk.sndNxt) >>> 0}}\n`,
    );
  }
}

function putV4(out: Uint8Array, a: number): void {
  out[0] = a >>> 24;
  out[1] = (a >>> 16) & 255;
  out[2] = (a >>> 8) & 255;
  out[3] = a & 255;
}
