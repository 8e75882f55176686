/**
 * A seeded fault injector around the link (smoltcp's FaultInjector idea):
 * loss, delay, reordering and duplication of frames in both directions,
 * in the spirit of `tc netem`. It exists because the kernels this project
 * runs on may lack sch_netem; with it the same impairments can be put
 * between the stack and its peer from inside the daemon (--fault).
 *
 * Semantics follow netem's: each frame is lost with probability `loss`;
 * otherwise it is delayed by `delay` ms, except that with probability
 * `reorder` it goes at once (overtaking the delayed ones); with
 * probability `duplicate` a copy is sent as well.
 */
import { Timer, type TimeSource } from '../lib/time.js';
import type { Random } from '../lib/random.js';
import type { LinkDriver } from '../net/core/dev.js';

export interface FaultSpec {
  /** Probabilities in [0, 1]. */
  loss: number;
  duplicate: number;
  reorder: number;
  /** Milliseconds. */
  delay: number;
  /** A bottleneck before the delay, bytes per second (netem's rate); absent: none. */
  rate?: number;
}

export const NO_FAULTS: FaultSpec = { loss: 0, duplicate: 0, reorder: 0, delay: 0 };

/** Parse "loss=10%,delay=20ms,reorder=25%,duplicate=5%"; throws with the bad part named. */
export function parseFaultSpec(s: string): FaultSpec {
  const spec: FaultSpec = { ...NO_FAULTS };
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const r = /^rate=(\d+(?:\.\d+)?)(kbit|mbit|gbit)$/.exec(part);
    if (r) {
      spec.rate = (Number(r[1]) * { kbit: 1e3, mbit: 1e6, gbit: 1e9 }[r[2] as 'kbit']) / 8;
      if (!(spec.rate > 0)) throw new Error(`"${part}": rate must be above 0`);
      continue;
    }
    const m = /^(loss|duplicate|reorder|delay)=(\d+(?:\.\d+)?)(%|ms)?$/.exec(part);
    if (!m) throw new Error(`"${part}" is not loss=N%, duplicate=N%, reorder=N%, delay=Nms or rate=N(kbit|mbit|gbit)`);
    const v = Number(m[2]);
    if (m[1] === 'delay') {
      if (m[3] && m[3] !== 'ms') throw new Error(`"${part}": delay is in ms`);
      spec.delay = v;
    } else {
      if (m[3] !== '%' || v > 100) throw new Error(`"${part}": ${m[1]} is a percentage from 0% to 100%`);
      spec[m[1] as 'loss' | 'duplicate' | 'reorder'] = v / 100;
    }
  }
  return spec;
}

export function faultSpecString(f: FaultSpec): string {
  return `loss=${f.loss * 100}%,delay=${f.delay}ms,reorder=${f.reorder * 100}%,duplicate=${f.duplicate * 100}%${f.rate ? `,rate=${(f.rate * 8) / 1e6}mbit` : ''}`;
}

/** Counters of what the injector did, per direction. */
export class FaultStats {
  passed = 0;
  dropped = 0;
  duplicated = 0;
  delayed = 0;
  reordered = 0;
}

interface Held {
  at: number;
  frame: Buffer;
}

/** One direction of impairment: frames in, frames out through `deliver`. */
export class FaultLine {
  readonly stats = new FaultStats();
  #queue: Held[] = [];
  #head = 0;
  #timer: Timer;
  /** Frames held at most (bounds memory under a flood; the bottleneck's drop-tail queue). */
  limit = 10_000;
  /** When the bottleneck (spec.rate) is next free, ms. */
  #busyUntil = 0;

  constructor(
    private spec: FaultSpec,
    private time: TimeSource,
    private random: Random,
    private deliver: (buf: Buffer, off: number, len: number) => void,
  ) {
    this.#timer = new Timer(() => this.#release());
  }

  #chance(p: number): boolean {
    return p > 0 && this.random.u32() / 0x100000000 < p;
  }

  /** One frame. The bytes are copied if they must wait (the caller's buffer is reused). */
  push(buf: Buffer, off: number, len: number): void {
    const s = this.spec;
    const st = this.stats;
    if (this.#chance(s.loss)) {
      st.dropped++;
      return;
    }
    const copies = this.#chance(s.duplicate) ? 2 : 1;
    if (copies === 2) st.duplicated++;
    for (let i = 0; i < copies; i++) {
      if ((s.delay <= 0 && !s.rate) || this.#chance(s.reorder)) {
        if (s.delay > 0) st.reordered++;
        st.passed++;
        this.deliver(buf, off, len);
        continue;
      }
      if (this.#queue.length - this.#head >= this.limit) {
        st.dropped++;
        continue;
      }
      st.delayed++;
      let at = this.time.clock.now();
      if (s.rate) {
        // Serialized at the bottleneck's rate behind what it already holds, then the delay.
        at = this.#busyUntil = Math.max(at, this.#busyUntil) + (len * 1000) / s.rate;
      }
      this.#queue.push({ at: at + s.delay, frame: Buffer.from(buf.subarray(off, off + len)) });
      if (!this.#timer.pending) this.time.timers.mod(this.#timer, this.#queue[this.#head].at);
    }
  }

  #release(): void {
    const now = this.time.clock.now();
    const q = this.#queue;
    while (this.#head < q.length && q[this.#head].at <= now) {
      const h = q[this.#head++];
      this.stats.passed++;
      this.deliver(h.frame, 0, h.frame.length);
    }
    if (this.#head > 1024 && this.#head * 2 > q.length) {
      q.splice(0, this.#head);
      this.#head = 0;
    }
    if (this.#head < q.length) this.time.timers.mod(this.#timer, q[this.#head].at);
  }

  stop(): void {
    this.time.timers.del(this.#timer);
    this.#queue = [];
    this.#head = 0;
  }
}

/**
 * A fault spec between the stack and its device, both ways: the stack
 * sends through `link` (the transmit line, then the device); receive(rx)
 * puts the receive line in front of the stack's receive function.
 */
export class FaultedLink {
  readonly tx: FaultLine;
  rx: FaultLine | null = null;
  readonly link: LinkDriver;

  constructor(
    readonly spec: FaultSpec,
    readonly time: TimeSource,
    readonly random: Random,
    dev: LinkDriver,
  ) {
    const tx = (this.tx = new FaultLine(spec, time, random, (b, o, l) => dev.xmit(b, o, l)));
    this.link = { xmit: (b, o, l) => (tx.push(b, o, l), true) };
  }

  /** The receive side: what `rx` gets passes through its own line first. */
  receive(rx: (buf: Buffer, off: number, len: number) => void): (buf: Buffer, off: number, len: number) => void {
    const line = (this.rx = new FaultLine(this.spec, this.time, this.random, rx));
    return (b, o, l) => line.push(b, o, l);
  }

  /** Each direction's figures, copied (for counters and reports). */
  stats(): { rx: FaultStats; tx: FaultStats } {
    return { rx: { ...(this.rx?.stats ?? new FaultStats()) }, tx: { ...this.tx.stats } };
  }

  stop(): void {
    this.rx?.stop();
    this.tx.stop();
  }
}
