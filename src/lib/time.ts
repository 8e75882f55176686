/**
 * Time for the stack: a monotonic clock in milliseconds and one timer queue
 * (a binary min-heap), the way the kernel gives every subsystem jiffies and
 * timer_list. Protocol code never calls Date.now() or setTimeout(): it is
 * handed a Clock and a TimerQueue, so tests drive every timer with a
 * VirtualTime and the daemon with RealTime.
 */

export interface Clock {
  /** Monotonic milliseconds (fractional). */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch (ICMP timestamps, pcap). */
  wall(): number;
}

/**
 * A timer owned by whoever embeds it (a neighbour, a socket): allocated once,
 * re-armed with mod(). It calls fn(arg): many timers can share one function
 * with their owner as the argument (timer_setup's callback and timer_list),
 * so a socket's timers cost no closure each.
 */
export class Timer<A = unknown> {
  expires = 0;
  /** Heap slot, -1 when not pending. */
  index = -1;
  constructor(
    public fn: (arg: A) => void,
    public arg: A = undefined as A,
  ) {}
  get pending(): boolean {
    return this.index >= 0;
  }
}

/** A timer of any owner type, as the queue holds them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyTimer = Timer<any>;

export class TimerQueue {
  #heap: AnyTimer[] = [];
  /** Called when the earliest expiry may have moved earlier (RealTime re-arms its one setTimeout). */
  onEarliest: ((expires: number) => void) | null = null;

  get size(): number {
    return this.#heap.length;
  }

  /** mod_timer(): arm or re-arm to fire at `expires`. */
  mod(t: AnyTimer, expires: number): void {
    if (t.index >= 0) {
      const old = t.expires;
      t.expires = expires;
      if (expires < old) this.#up(t.index);
      else this.#down(t.index);
    } else {
      t.expires = expires;
      t.index = this.#heap.length;
      this.#heap.push(t);
      this.#up(t.index);
    }
    if (this.#heap[0] === t && this.onEarliest) this.onEarliest(expires);
  }

  /** del_timer(): returns whether the timer was pending. */
  del(t: AnyTimer): boolean {
    const i = t.index;
    if (i < 0) return false;
    const last = this.#heap.pop()!;
    t.index = -1;
    if (last !== t) {
      this.#heap[i] = last;
      last.index = i;
      this.#up(i);
      this.#down(last.index);
    }
    return true;
  }

  /** Expiry of the earliest pending timer, or Infinity. */
  next(): number {
    return this.#heap.length ? this.#heap[0].expires : Infinity;
  }

  /** Fire every timer due at `now`, earliest first; timers re-armed for `now` by a callback fire in this call too. */
  run(now: number): void {
    const h = this.#heap;
    while (h.length && h[0].expires <= now) {
      const t = h[0];
      this.del(t);
      t.fn(t.arg);
    }
  }

  #up(i: number): void {
    const h = this.#heap;
    const t = h[i];
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p].expires <= t.expires) break;
      h[i] = h[p];
      h[i].index = i;
      i = p;
    }
    h[i] = t;
    t.index = i;
  }

  #down(i: number): void {
    const h = this.#heap;
    const n = h.length;
    const t = h[i];
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && h[c + 1].expires < h[c].expires) c++;
      if (h[c].expires >= t.expires) break;
      h[i] = h[c];
      h[i].index = i;
      i = c;
    }
    h[i] = t;
    t.index = i;
  }
}

/** What the stack is given: time and timers. */
export interface TimeSource {
  readonly clock: Clock;
  readonly timers: TimerQueue;
  /**
   * How late a timer may fire, ms (0 or absent: exactly on time). Pacing
   * lets a departure this close go now and wakes this much early, as
   * sch_fq's timer_slack does, so a coarse timer does not slow it down.
   */
  readonly timerSlack?: number;
}

/** Tests: time moves only when told. advance() fires timers in order, each at its own expiry. */
export class VirtualTime implements TimeSource, Clock {
  readonly timers = new TimerQueue();
  readonly clock: Clock = this;
  #now: number;
  /** The wall clock at virtual time 0. */
  #epoch: number;
  constructor(start = 0, epoch = Date.UTC(2026, 0, 1)) {
    this.#now = start;
    this.#epoch = epoch;
  }
  now(): number {
    return this.#now;
  }
  wall(): number {
    return this.#epoch + this.#now;
  }
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      const next = this.timers.next();
      if (next > target) break;
      if (next > this.#now) this.#now = next;
      this.timers.run(this.#now);
    }
    this.#now = target;
  }
}

/** The daemon: performance.now() and one setTimeout for the earliest timer. */
export class RealTime implements TimeSource, Clock {
  readonly timers = new TimerQueue();
  readonly clock: Clock = this;
  /** setTimeout's whole milliseconds, and the event loop's turn. */
  readonly timerSlack = 1;
  #handle: NodeJS.Timeout | null = null;
  #armedFor = Infinity;

  constructor() {
    this.timers.onEarliest = (expires) => {
      if (expires < this.#armedFor) this.#arm(expires);
    };
  }
  now(): number {
    return performance.now();
  }
  wall(): number {
    return performance.timeOrigin + performance.now();
  }
  #arm(expires: number): void {
    if (this.#handle) clearTimeout(this.#handle);
    this.#armedFor = expires;
    this.#handle = setTimeout(this.#fire, Math.max(0, expires - this.now()));
    this.#handle.unref();
  }
  #fire = (): void => {
    this.#handle = null;
    this.#armedFor = Infinity;
    this.timers.run(this.now());
    const next = this.timers.next();
    if (next !== Infinity) this.#arm(next);
  };
  stop(): void {
    if (this.#handle) clearTimeout(this.#handle);
    this.#handle = null;
    this.#armedFor = Infinity;
    this.timers.onEarliest = null;
  }
}
