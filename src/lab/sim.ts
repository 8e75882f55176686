/**
 * The lab's discrete-event simulator: a dumbbell of tapstack stacks on one
 * virtual clock. Each flow has a sender stack and a receiver stack; every
 * sender's frames go through one bottleneck (a queue discipline and a link
 * of the scenario's rate, a frame serialized after another), then the
 * flow's one-way propagation delay (half its base RTT), random loss and
 * reordering, to its receiver; the receiver's frames (ACKs) come back over
 * the other half of the RTT without a queue. Cross traffic is UDP frames
 * made here, through the same bottleneck to a sink. Nothing leaves the
 * process: frames are copied between the stacks' link drivers through one
 * pooled arena, and the simulator's events (a frame serialized, a frame
 * arriving, a source sending, a flow starting) sit in a heap driven by a
 * timer on the stacks' own clock, so the stacks' timers and the path's
 * events run in one time order. Same scenario and seed: the same run.
 */
import { Stack } from '../net/stack.js';
import { Timer, VirtualTime } from '../lib/time.js';
import { SeededRandom } from '../lib/random.js';
import type { LinkDriver } from '../net/core/dev.js';
import { tcpAccept, tcpBind, tcpClose, tcpConnect, tcpListen, tcpReadSock, tcpSendmsg, tcpSetsockoptStr } from '../net/ipv4/tcp.js';
import { tcpNewSock } from '../net/ipv4/tcp_ipv4.js';
import type { TcpSock } from '../net/ipv4/tcp_sock.js';
import type { TcpTracer } from '../net/ipv4/tcp_trace.js';
import { tcpSkbCb } from '../net/ipv4/tcp_skb_cb.js';
import { tcpPacketsInFlight } from '../net/ipv4/tcp_output.js';
import type { SkBuff } from '../net/core/skbuff.js';
import { TCPHDR_ACK } from '../wire/tcp.js';
import { SOL_TCP, TCP_CONGESTION } from '../uapi.js';
import { SeqSpace } from '../plot/model.js';
import { CodelQdisc, DROP_AQM, DropTail, EventHeap, FqCodel, FramePool, type QueueDisc, type QueueSink, SLOT_BYTES } from './queue.js';
import { BarSeries, Samples, StepSeries } from './record.js';
import { FRAME_BYTES, type Scenario, ScenarioError } from './scenario.js';
import { LabCcModules } from './modules.js';

const EV_XMIT_DONE = 0;
const EV_DELIVER = 1;
const EV_CROSS = 2;
const EV_START = 3;

const PORT = 5001;
const TCP_INFINITE_SSTHRESH = 0x7fffffff;
/** What a sender writes: its content does not matter, only its length. */
const CHUNK = Buffer.alloc(65536);

/** Sender i is 10.0.(i+1).1, its receiver 10.0.(i+1).2; MACs follow. */
const senderAddr = (i: number) => (0x0a000000 | ((i + 1) << 8) | 1) >>> 0;
const receiverAddr = (i: number) => (0x0a000000 | ((i + 1) << 8) | 2) >>> 0;
const mac = (i: number, h: number) => Buffer.from([2, 0x1a, 0xb0, (i + 1) >> 8, (i + 1) & 255, h]);

/** A seed for one of the run's random sources, from the scenario's. */
function subSeed(seed: number, k: number): number {
  let h = Math.imul(seed ^ 0x6c62272e, 0x9e3779b1) ^ Math.imul(k + 1, 0x85ebca6b);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h >>> 0 || 1;
}

/** One flow's stacks, sockets and records. */
export class FlowState {
  sender!: Stack;
  receiver!: Stack;
  ssk: TcpSock | null = null;
  lsk: TcpSock | null = null;
  rsk: TcpSock | null = null;
  written = 0;
  received = 0;
  wantWrite = true;
  closed = false;
  /** Virtual ms when the receiver had every byte (sized flows), else NaN. */
  doneAt = NaN;
  /** One-way propagation delay, ms. */
  owd = 0;
  // Per-flow path counters.
  queueDrops = 0;
  aqmDrops = 0;
  marks = 0;
  wireLost = 0;
  ackLost = 0;
  reordered = 0;
  /** Samples: RTT from the sender's ACKs, and each data-direction frame's queueing delay, ms. */
  readonly rtt = new Samples();
  /** Bytes read per interval of Lab.binMs (the goodput-over-time plot). */
  readonly rxBins: number[] = [];
  readonly qdelay = new Samples();
  readonly space = new SeqSpace();
  readonly segs: BarSeries;
  readonly retrans: number[] = [];
  readonly acks: StepSeries;
  readonly win: StepSeries;
  readonly cwnd: StepSeries;
  readonly ssthresh: StepSeries;
  readonly inflight: StepSeries;
  segments = 0;
  constructor(
    readonly index: number,
    readonly spec: Scenario['flows'][number],
    bucket: number,
  ) {
    this.segs = new BarSeries(bucket);
    this.acks = new StepSeries(bucket);
    this.win = new StepSeries(bucket);
    this.cwnd = new StepSeries(bucket);
    this.ssthresh = new StepSeries(bucket);
    this.inflight = new StepSeries(bucket);
  }
}

/** The sender's tracepoints (net/ipv4/tcp_trace.ts), recorded for the flow's plots and RTT samples. */
class FlowTracer implements TcpTracer {
  constructor(
    readonly f: FlowState,
    readonly time: VirtualTime,
  ) {}
  setState(): void {}
  xmit(_sk: TcpSock, seq: number, len: number): void {
    const f = this.f;
    const rel = f.space.rel(seq);
    if (len > 0) {
      f.segs.push(this.time.now() / 1000, rel, rel + len);
      f.segments++;
    }
  }
  rcv(sk: TcpSock, skb: SkBuff): void {
    const tcb = tcpSkbCb(skb);
    if (!(tcb.tcpFlags & TCPHDR_ACK)) return;
    const f = this.f;
    const t = this.time.now() / 1000;
    const a = f.space.rel(tcb.ackSeq);
    f.acks.push(t, a);
    f.win.push(t, a + tcb.window * 2 ** sk.sndWscale);
  }
  retransmit(_sk: TcpSock, seq: number, endSeq: number): void {
    const f = this.f;
    const t = Math.round((this.time.now() / 1000) * 1e6) / 1e6;
    f.retrans.push(t, f.space.rel(seq), f.space.rel(endSeq));
  }
  probe(sk: TcpSock, rttUs: number): void {
    const f = this.f;
    const t = this.time.now() / 1000;
    if (rttUs >= 0) f.rtt.push(rttUs / 1000);
    f.cwnd.push(t, sk.sndCwnd);
    f.ssthresh.push(t, sk.sndSsthresh >= TCP_INFINITE_SSTHRESH ? null : sk.sndSsthresh);
    f.inflight.push(t, tcpPacketsInFlight(sk));
  }
  sack(): void {}
  window(): void {}
  drop(): void {}
  wspace(): void {}
}

/** A cross-traffic source: its frame (made once) and its on/off state. */
class CrossSource {
  frame: Buffer;
  sent = 0;
  dropped = 0;
  /** When the current on period ends (onoff), ms. */
  onUntil = 0;
  constructor(
    readonly index: number,
    readonly spec: Scenario['cross'][number],
  ) {
    // An IPv4/UDP frame from 10.255.i.1:9 to 10.255.i.2:9; nobody checks its checksums (it ends at the sink).
    const f = Buffer.alloc(spec.packetBytes);
    f.writeUInt16BE(0x0800, 12);
    const ip = 14;
    f[ip] = 0x45;
    f.writeUInt16BE(spec.packetBytes - 14, ip + 2);
    f[ip + 8] = 64;
    f[ip + 9] = 17;
    f.writeUInt32BE((0x0aff0001 | (index << 8)) >>> 0, ip + 12);
    f.writeUInt32BE((0x0aff0002 | (index << 8)) >>> 0, ip + 16);
    f.writeUInt16BE(9, ip + 20);
    f.writeUInt16BE(9, ip + 22);
    f.writeUInt16BE(spec.packetBytes - 34, ip + 24);
    this.frame = f;
  }
  /** Ms between frames while on. */
  get gap(): number {
    return (this.spec.packetBytes * 8) / this.spec.rateBps * 1000;
  }
}

/** A host's link driver: what its stack sends enters the path here. */
class HostPort implements LinkDriver {
  constructor(
    readonly lab: Lab,
    readonly host: number,
  ) {}
  xmit(buf: Buffer, off: number, len: number): boolean {
    this.lab.fromHost(this.host, buf, off, len);
    return true;
  }
}

/** What a run measured, before it is summarized (report.ts). */
export interface RunRecord {
  scenario: Scenario;
  flows: FlowState[];
  cross: CrossSource[];
  queue: StepSeries;
  /** Bytes the bottleneck sent, frames it dropped (overflow, AQM), frames CE-marked. */
  txBytes: number;
  overlimitDrops: number;
  aqmDrops: number;
  marks: number;
  /** Queue length in packets, time-weighted mean and maximum; bytes maximum. */
  meanQueuePackets: number;
  maxQueuePackets: number;
  maxQueueBytes: number;
  /** Frames the hosts sent that the path does not carry (ARP, IPv6). */
  nonIp: number;
  /** The scenario's congestion-control modules and what each did (calls, faults, fallbacks). */
  modules: RunModule[];
  /** Simulated ms. */
  durationMs: number;
  /** The interval of the flows' rxBins. */
  binMs: number;
  events: number;
}

/** A module at the end of a run. */
export interface RunModule {
  path: string;
  name: string;
  calls: number;
  faults: number;
  fallbacks: number;
  broken: boolean;
  lastFault: string;
}

export class Lab implements QueueSink {
  readonly time: VirtualTime;
  readonly pool = new FramePool(512);
  readonly heap = new EventHeap();
  readonly qdisc: QueueDisc;
  readonly flows: FlowState[];
  readonly cross: CrossSource[];
  readonly queueSeries: StepSeries;
  readonly #rand: SeededRandom;
  readonly #timer: Timer<Lab>;
  #inEvents = false;
  #busy = false;
  txBytes = 0;
  overlimitDrops = 0;
  aqmDrops = 0;
  marks = 0;
  nonIp = 0;
  events = 0;
  #maxQueuePackets = 0;
  #maxQueueBytes = 0;
  /** Integral of queue packets over time, for the mean. */
  #qArea = 0;
  #qAt = 0;
  /** The goodput plot's interval: a 300th of the run, at least 100 ms. */
  readonly binMs: number;
  /** Ms to send one byte at the bottleneck. */
  readonly #msPerByte: number;

  /**
   * A lab whose scenario loads modules (`cc_modules`): they are loaded
   * first (asynchronously: each starts a worker), so that the flows' `cc`
   * may name them; relative paths are relative to `baseDir`, the scenario
   * file's folder. The workers end when run() does, or here if the
   * scenario is refused.
   */
  static async create(sc: Scenario, baseDir = process.cwd()): Promise<Lab> {
    if (!sc.ccModules.length) return new Lab(sc);
    const cc = await LabCcModules.load(sc.ccModules, baseDir, new VirtualTime(0));
    try {
      return new Lab(sc, cc);
    } catch (e) {
      cc.stop();
      throw e;
    }
  }

  /** A scenario without modules may be built directly; one with `cc_modules` through create(). */
  constructor(
    readonly sc: Scenario,
    readonly cc: LabCcModules | null = null,
  ) {
    if (sc.ccModules.length && !cc) throw new Error('a scenario with cc_modules is built by Lab.create()');
    this.time = cc ? cc.time : new VirtualTime(0);
    const bucket = sc.duration / 3000;
    this.binMs = Math.max(100, sc.duration * 1000 / 300);
    this.#rand = new SeededRandom(subSeed(sc.seed, 1000));
    this.#timer = new Timer<Lab>((lab) => lab.#runEvents(), this);
    this.queueSeries = new StepSeries(bucket);
    const b = sc.bottleneck;
    this.#msPerByte = 8000 / b.rateBps;
    const codel = { targetMs: b.targetMs, intervalMs: b.intervalMs, mtu: FRAME_BYTES, ecn: b.ecn };
    this.qdisc =
      b.qdisc === 'droptail'
        ? new DropTail(this.pool, this, b.limitPackets, b.limitBytes)
        : b.qdisc === 'codel'
          ? new CodelQdisc(this.pool, this, codel, b.limitPackets, b.limitBytes)
          : new FqCodel(this.pool, this, codel, b.flows, b.quantum, b.limitPackets, b.limitBytes, subSeed(sc.seed, 2000));
    this.flows = sc.flows.map((spec, i) => new FlowState(i, spec, bucket));
    for (const f of this.flows) this.#setupFlow(f);
    this.cross = sc.cross.map((spec, i) => new CrossSource(i, spec));
    for (const c of this.cross) this.#schedule(c.spec.start * 1000, EV_CROSS, c.index);
  }

  #setupFlow(f: FlowState): void {
    const i = f.index;
    const mk = (h: number, addr: number) =>
      new Stack({ ifname: `lab${h}`, mac: mac(i, h & 1 ? 2 : 1), mtu: 1500, ipv4: [{ addr, prefix: 24 }], gateway: 0 }, new HostPort(this, h), this.time, new SeededRandom(subSeed(this.sc.seed, h)));
    f.sender = mk(2 * i, senderAddr(i));
    f.receiver = mk(2 * i + 1, receiverAddr(i));
    f.owd = f.spec.rttMs / 2;
    // Static neighbours: no ARP on the path.
    f.sender.neighAddPermanent(receiverAddr(i), mac(i, 2));
    f.receiver.neighAddPermanent(senderAddr(i), mac(i, 1));
    const reg = f.sender.tcp.congestion;
    this.cc?.registerInto(reg);
    const ops = reg.find(f.spec.cc);
    if (!ops) throw new ScenarioError(`flows[${i}].cc: "${f.spec.cc}" is not an available congestion control (available: ${reg.available()})`);
    if (f.spec.ecn) f.sender.tcp.sysctl.tcp_ecn = 1;
    // Frames never leave the process: TCP's checksum is left to the "device" (CHECKSUM_PARTIAL) and
    // taken as verified on receipt, as over the TAP with offloads; segments stay MTU-sized (no TSO).
    for (const st of [f.sender, f.receiver]) st.dev.csumOffload = true;
    f.sender.up();
    f.receiver.up();
    f.sender.tcp.trace = new FlowTracer(f, this.time);
    const lsk = tcpNewSock(f.receiver.tcp);
    tcpBind(f.receiver.tcp, lsk, 0, PORT);
    tcpListen(f.receiver.tcp, lsk, 4);
    f.lsk = lsk;
    this.#schedule(f.spec.start * 1000, EV_START, i);
  }

  #schedule(t: number, kind: number, arg: number): void {
    this.heap.push(t, kind, arg);
    if (this.#inEvents) return;
    const tm = this.#timer;
    if (!tm.pending || t < tm.expires) this.time.timers.mod(tm, t);
  }

  /** Run the whole scenario; returns what it measured. The modules' workers end with it, even on an error. */
  run(): RunRecord {
    const end = this.sc.duration * 1000;
    let modules: RunModule[];
    try {
      this.time.advance(end);
      // Before close(), which marks every module stopped.
      modules = (this.cc?.loaded ?? []).map(({ path, mod }) => ({ path, name: mod.name, calls: mod.calls, faults: mod.faults, fallbacks: mod.fallbacks, broken: mod.broken, lastFault: mod.lastFault }));
    } finally {
      this.close();
    }
    this.#queueChanged();
    this.queueSeries.finish();
    for (const f of this.flows) {
      f.segs.finish();
      f.acks.finish();
      f.win.finish();
      f.cwnd.finish();
      f.ssthresh.finish();
      f.inflight.finish();
    }
    return {
      scenario: this.sc,
      flows: this.flows,
      cross: this.cross,
      queue: this.queueSeries,
      txBytes: this.txBytes,
      overlimitDrops: this.overlimitDrops,
      aqmDrops: this.aqmDrops,
      marks: this.marks,
      meanQueuePackets: this.#qArea / end,
      maxQueuePackets: this.#maxQueuePackets,
      maxQueueBytes: this.#maxQueueBytes,
      nonIp: this.nonIp,
      modules,
      durationMs: end,
      binMs: this.binMs,
      events: this.events,
    };
  }

  /** Stop the modules' workers (run() does; for a lab built and not run). */
  close(): void {
    this.cc?.stop();
  }

  /** What the loader reported while the lab ran (a module's first fault, a module stopped): one line each. */
  get notes(): readonly string[] {
    return this.cc?.warnings ?? [];
  }

  /** The simulator's timer: every event due now, in order; then armed for the next. */
  #runEvents(): void {
    const now = this.time.now();
    const h = this.heap;
    this.#inEvents = true;
    try {
      while (h.size && h.peek() <= now) {
        h.pop();
        this.events++;
        const a = h.popArg;
        switch (h.popKind) {
          case EV_XMIT_DONE:
            this.#xmitDone(a, now);
            break;
          case EV_DELIVER:
            this.#deliver(a);
            break;
          case EV_CROSS:
            this.#crossSend(this.cross[a], now);
            break;
          case EV_START:
            this.#start(this.flows[a]);
            break;
        }
      }
    } finally {
      this.#inEvents = false;
    }
    if (h.size) this.time.timers.mod(this.#timer, h.peek());
  }

  /** A frame from host h's stack. Senders' go to the bottleneck; receivers' back over the reverse path. */
  fromHost(h: number, buf: Buffer, off: number, len: number): void {
    if (len < 34 || buf[off + 12] !== 0x08 || buf[off + 13] !== 0x00 || len > SLOT_BYTES) {
      this.nonIp++;
      return;
    }
    const f = this.flows[h >> 1];
    if (h & 1) {
      if (this.sc.path.ackLoss > 0 && this.#uniform() < this.sc.path.ackLoss) {
        f.ackLost++;
        return;
      }
      const s = this.pool.alloc(buf, off, len);
      this.pool.dst[s] = h - 1;
      this.#schedule(this.time.now() + f.owd, EV_DELIVER, s);
      return;
    }
    const s = this.pool.alloc(buf, off, len);
    this.pool.flow[s] = f.index;
    this.pool.dst[s] = h + 1;
    this.#enqueue(s);
  }

  #enqueue(s: number): void {
    const now = this.time.now();
    this.#queueChanged();
    this.qdisc.enqueue(s, now);
    this.#queueRecord(now);
    if (!this.#busy) this.#startXmit(now);
  }

  /** The link takes the next frame from the queue, if any, and is busy for its serialization time. */
  #startXmit(now: number): void {
    this.#queueChanged();
    const s = this.qdisc.dequeue(now);
    this.#queueRecord(now);
    if (s < 0) {
      this.#busy = false;
      return;
    }
    this.#busy = true;
    const fi = this.pool.flow[s];
    if (fi >= 0) this.flows[fi].qdelay.push(now - this.pool.enq[s]);
    this.#schedule(now + this.pool.len[s] * this.#msPerByte, EV_XMIT_DONE, s);
  }

  /** The frame is on the wire: propagation, random loss and reordering, then its host. */
  #xmitDone(s: number, now: number): void {
    this.txBytes += this.pool.len[s];
    const fi = this.pool.flow[s];
    const p = this.sc.path;
    if (fi < 0) this.pool.release(s);
    else {
      const f = this.flows[fi];
      if (p.loss > 0 && this.#uniform() < p.loss) {
        f.wireLost++;
        this.pool.release(s);
      } else {
        let t = now + f.owd;
        if (p.reorder > 0 && this.#uniform() < p.reorder) {
          t += p.reorderDelayMs;
          f.reordered++;
        }
        this.#schedule(t, EV_DELIVER, s);
      }
    }
    this.#startXmit(now);
  }

  #deliver(s: number): void {
    const h = this.pool.dst[s];
    const f = this.flows[h >> 1];
    const st = h & 1 ? f.receiver : f.sender;
    st.receive(this.pool.buf, s * SLOT_BYTES, this.pool.len[s], true);
    this.pool.release(s);
    this.#app(f);
  }

  #start(f: FlowState): void {
    const tcp = f.sender.tcp;
    const sk = tcpNewSock(tcp);
    tcpSetsockoptStr(tcp, sk, SOL_TCP, TCP_CONGESTION, f.spec.cc);
    sk.wake = () => {
      f.wantWrite = true;
    };
    f.ssk = sk;
    tcpConnect(tcp, sk, receiverAddr(f.index), PORT);
  }

  /** The flow's applications: the receiver accepts and reads everything; the sender writes while it may. */
  #app(f: FlowState): void {
    const rtcp = f.receiver.tcp;
    if (!f.rsk && f.lsk) {
      const c = tcpAccept(rtcp, f.lsk);
      if (typeof c !== 'number') f.rsk = c;
    }
    if (f.rsk) {
      for (;;) {
        const n = tcpReadSock(rtcp, f.rsk, this.#take, 1 << 30);
        if (n > 0) {
          f.received += n;
          const bin = Math.floor(this.time.now() / this.binMs);
          while (f.rxBins.length <= bin) f.rxBins.push(0);
          f.rxBins[bin] += n;
          if (f.received >= f.spec.bytes && Number.isNaN(f.doneAt)) f.doneAt = this.time.now();
          continue;
        }
        if (n === 0 && !f.closed) {
          f.closed = true;
          tcpClose(rtcp, f.rsk);
        }
        break;
      }
    }
    const sk = f.ssk;
    if (sk && f.wantWrite && f.written < f.spec.bytes) {
      const tcp = f.sender.tcp;
      while (f.written < f.spec.bytes) {
        const left = f.spec.bytes - f.written;
        const n = tcpSendmsg(tcp, sk, left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left));
        if (n <= 0) {
          f.wantWrite = false;
          break;
        }
        f.written += n;
      }
      if (f.written >= f.spec.bytes) tcpClose(tcp, sk);
    }
  }

  readonly #take = (_b: Buffer, _o: number, len: number): number => len;

  #crossSend(c: CrossSource, now: number): void {
    const spec = c.spec;
    if (now >= spec.stop * 1000) return;
    if (spec.kind === 'onoff' && now >= c.onUntil) {
      // An on period begins after an off period; both exponential with their means.
      if (c.onUntil > 0 || c.sent > 0) {
        const off = this.#exp(spec.offS * 1000);
        c.onUntil = now + off + this.#exp(spec.onS * 1000);
        this.#schedule(now + off, EV_CROSS, c.index);
        return;
      }
      c.onUntil = now + this.#exp(spec.onS * 1000);
    }
    c.sent++;
    const s = this.pool.alloc(c.frame, 0, c.frame.length);
    this.pool.flow[s] = -1 - c.index;
    this.pool.dst[s] = -1;
    this.#enqueue(s);
    this.#schedule(now + c.gap, EV_CROSS, c.index);
  }

  #uniform(): number {
    return this.#rand.u32() / 4294967296;
  }

  #exp(meanMs: number): number {
    return -meanMs * Math.log(1 - this.#uniform());
  }

  /** Before the queue changes: the time-weighted area of its length so far. */
  #queueChanged(): void {
    const now = this.time.now();
    this.#qArea += this.qdisc.packets * (now - this.#qAt);
    this.#qAt = now;
  }

  #queueRecord(now: number): void {
    const q = this.qdisc;
    if (q.packets > this.#maxQueuePackets) this.#maxQueuePackets = q.packets;
    if (q.bytes > this.#maxQueueBytes) this.#maxQueueBytes = q.bytes;
    this.queueSeries.push(now / 1000, q.packets);
  }

  // QueueSink: the qdisc dropped or marked a frame.
  dropped(slot: number, why: number): void {
    const fi = this.pool.flow[slot];
    if (why === DROP_AQM) this.aqmDrops++;
    else this.overlimitDrops++;
    if (fi >= 0) {
      if (why === DROP_AQM) this.flows[fi].aqmDrops++;
      else this.flows[fi].queueDrops++;
    } else this.cross[-1 - fi].dropped++;
    this.pool.release(slot);
  }

  marked(slot: number): void {
    this.marks++;
    const fi = this.pool.flow[slot];
    if (fi >= 0) this.flows[fi].marks++;
  }
}
