/**
 * The fq qdisc's pacing (net/sched/sch_fq.c), as a stage in front of the
 * device: a frame whose departure time (skb->tstamp, set by TCP's
 * earliest-departure-time model) is in the future is held until then;
 * one due now goes straight through. A socket whose frames pass here is
 * paced by it (SK_PACING_FQ: TCP only stamps departure times). What it
 * keeps of fq: the horizon (a departure time more than `horizonNs` ahead
 * is dropped, or capped with horizon_drop off), the packet limit, and
 * flow_max_rate for frames without a departure time. What it leaves out:
 * per-flow queues and their round-robin quantum (frames are released in
 * departure-time order, ties in arrival order, which keeps each flow's
 * order) and flow_limit.
 *
 * Enabled by `net.core.default_qdisc = fq` (applied to the device at once:
 * this stack has the one) or a drill script's `tc qdisc add dev tun0 root fq`.
 * Held frames are copies in buffers the stage keeps and reuses: no
 * allocation per frame once warm.
 */
import { Timer, type TimeSource } from '../../lib/time.js';

/** A held frame: its bytes and what the driver needs to send it. */
class FqSlot {
  buf: Buffer = Buffer.alloc(0);
  len = 0;
  gsoSize = 0;
  csumPartial = false;
  /** time_to_send (ns) and the arrival order, the heap's key. */
  timeNs = 0;
  order = 0;
}

export type FqSend = (buf: Buffer, off: number, len: number, gsoSize: number, csumPartial: boolean) => void;

export class FqSched {
  /** Most frames held (limit, 10000 packets as tc-fq's default). */
  limit = 10000;
  /** horizon (10 s) and horizon_drop (on). */
  horizonNs = 10e9;
  horizonDrop = true;
  /** maxrate: a cap for frames without a departure time, bytes per second (~0: none). */
  flowMaxRate = Infinity;
  /** The qdisc's counters (tc -s qdisc: throttled, horizon drops and caps, overlimits). */
  throttled = 0;
  horizonDrops = 0;
  horizonCaps = 0;
  overlimits = 0;
  /** time_next_packet of the unstamped traffic under flowMaxRate, ns. */
  #nextUnstampedNs = 0;
  #heap: FqSlot[] = [];
  #free: FqSlot[] = [];
  #order = 0;
  readonly #timer: Timer<FqSched>;

  constructor(
    readonly time: TimeSource,
    readonly send: FqSend,
  ) {
    this.#timer = new Timer<FqSched>((q) => q.dequeue(), this);
  }

  /** Frames held. */
  get qlen(): number {
    return this.#heap.length;
  }

  /**
   * fq_enqueue: send now, hold, or drop a frame stamped to leave at
   * `tstampNs` (0: now). Returns false for a drop (NET_XMIT_DROP).
   */
  enqueue(buf: Buffer, off: number, len: number, gsoSize: number, csumPartial: boolean, tstampNs: number): boolean {
    const nowNs = Math.round(this.time.clock.now() * 1e6);
    // timer_slack: the timer's lateness (none on the virtual clock).
    const slackNs = (this.time.timerSlack ?? 0) * 1e6;
    let t = tstampNs;
    if (t > nowNs + this.horizonNs) {
      // fq_packet_beyond_horizon.
      if (this.horizonDrop) {
        this.horizonDrops++;
        return false;
      }
      this.horizonCaps++;
      t = nowNs + this.horizonNs;
    }
    if (!t && this.flowMaxRate !== Infinity) {
      // No departure time: fq's own pacing at maxrate.
      t = Math.max(nowNs, this.#nextUnstampedNs);
      this.#nextUnstampedNs = t + Math.min(Math.floor((len * 1e9) / this.flowMaxRate), 1e9);
    }
    if (t <= nowNs + slackNs) {
      // Due: what is held and due goes first, then this frame.
      if (this.#heap.length) this.dequeue();
      this.send(buf, off, len, gsoSize, csumPartial);
      return true;
    }
    if (this.#heap.length >= this.limit) {
      this.overlimits++;
      return false;
    }
    const s = this.#free.pop() ?? new FqSlot();
    if (s.buf.length < len) s.buf = Buffer.allocUnsafe(Math.max(len, 2048));
    buf.copy(s.buf, 0, off, off + len);
    s.len = len;
    s.gsoSize = gsoSize;
    s.csumPartial = csumPartial;
    s.timeNs = t;
    s.order = ++this.#order;
    this.#push(s);
    this.throttled++;
    if (this.#heap[0] === s) this.time.timers.mod(this.#timer, (t - slackNs) / 1e6);
    return true;
  }

  /** fq_dequeue (the watchdog's wake-up): send every held frame that is due, re-arm for the next. */
  dequeue(): void {
    const slackNs = (this.time.timerSlack ?? 0) * 1e6;
    const nowNs = Math.round(this.time.clock.now() * 1e6) + slackNs;
    const h = this.#heap;
    while (h.length && h[0].timeNs <= nowNs) {
      const s = this.#pop();
      this.send(s.buf, 0, s.len, s.gsoSize, s.csumPartial);
      this.#free.push(s);
    }
    if (h.length) this.time.timers.mod(this.#timer, (h[0].timeNs - slackNs) / 1e6);
    else this.time.timers.del(this.#timer);
  }

  /** Drop everything held (the qdisc is replaced or deleted). */
  reset(): void {
    for (const s of this.#heap) this.#free.push(s);
    this.#heap.length = 0;
    this.time.timers.del(this.#timer);
  }

  #less(a: FqSlot, b: FqSlot): boolean {
    return a.timeNs < b.timeNs || (a.timeNs === b.timeNs && a.order < b.order);
  }

  #push(s: FqSlot): void {
    const h = this.#heap;
    let i = h.push(s) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i], h[p])) break;
      const t = h[i];
      h[i] = h[p];
      h[p] = t;
      i = p;
    }
  }

  #pop(): FqSlot {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l], h[m])) m = l;
        if (r < h.length && this.#less(h[r], h[m])) m = r;
        if (m === i) break;
        const t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
      }
    }
    return top;
  }
}
