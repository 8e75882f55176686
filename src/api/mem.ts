/**
 * What the API's clients hold, together (docs/api.md "Memory and
 * back-pressure"): each client's charge (its replies, its partial input),
 * memory pressure past maxBufferedTotal (clients over the floor are not
 * read until memory is released, as TCP under tcp_memory_pressure keeps
 * sockets to tcp_rmem[0]), and the reserve: the one client at a time that
 * may finish a frame begun past the floor.
 */
/** What the accounting reads and writes of a client (conn.ts's C; named by its parts, as conn.ts imports this file). */
export interface MemClient {
  /** Bytes it holds (its replies, its partial input). */
  charge: number;
  closed: boolean;
  /** Look again whether it may be read. */
  update(): void;
}

/** The counters it keeps (the Api group's). */
interface MemMib {
  MemAllocated: number;
  MemoryPressures: number;
  PressureThrottled: number;
  ReserveGrants: number;
  ReserveIdleDrops: number;
}

/**
 * Under memory pressure a client past the floor is read only while it holds
 * the reserve, and only to finish the frame it has begun, so clients that
 * each hold part of a frame cannot wait on one another for ever. A holder
 * that sends nothing for this long while others wait is dropped, as a server
 * times out a request body that stops coming: handing the reserve on would
 * leave its grown buffer behind, a frame's worth past the total each time.
 */
export const RESERVE_IDLE_MS = 1000;

export class ApiMem<C extends MemClient = MemClient> {
  /** Bytes held for all clients (their charges). */
  allocated = 0;
  /** Clients not read because of memory pressure. */
  readonly #pressured = new Set<C>();
  #pressure = false;
  #wakePending = false;
  /** The client that may finish its frame past the floor under pressure, and when it last sent something. */
  #reserve: C | null = null;
  #reserveAt = 0;
  #reserveTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly mib: MemMib,
    /** The server's options, read live (a reload changes maxBufferedTotal). */
    readonly opts: { readonly maxBufferedTotal: number },
    readonly drop: (c: C, reason: string) => void,
    readonly runFor: (c: C, fn: () => void) => void,
  ) {}

  /**
   * A client's charge changed by `delta` (its write queue, its input). Past
   * maxBufferedTotal the daemon is under memory pressure, as TCP under
   * tcp_memory_pressure keeps sockets to tcp_rmem[0]: a client holding more
   * than API_MEM_FLOOR is not read, one whose replies hold more has its
   * frames wait (C.update), until memory is released. The usual
   * client holds next to nothing and is served as before.
   */
  charge(c: C, delta: number): void {
    if (!delta) return;
    c.charge += delta;
    this.allocated += delta;
    this.mib.MemAllocated = this.allocated;
    const over = this.allocated > this.opts.maxBufferedTotal;
    if (over && !this.#pressure) this.mib.MemoryPressures++;
    this.#pressure = over;
    if (delta < 0 && this.#pressured.size) this.#wakePressured();
  }

  /** All clients together hold more than maxBufferedTotal. */
  get underPressure(): boolean {
    return this.#pressure;
  }

  /** Client `c` waits for memory to be released (counted once a wait). */
  pressureWait(c: C): void {
    if (this.#pressured.has(c)) return;
    this.#pressured.add(c);
    this.mib.PressureThrottled++;
  }

  pressureDone(c: C): void {
    this.#pressured.delete(c);
  }

  get reserveHolder(): C | null {
    return this.#reserve;
  }

  /**
   * Whether `c`, past the floor under pressure with a frame begun, may read
   * the rest of it: the reserve is one client's at a time, so the total is
   * passed by one frame at most. Refused, `c` waits (pressureWait) for the
   * holder to finish or go (dropped once it idles for RESERVE_IDLE_MS).
   */
  reserveFor(c: C): boolean {
    if (this.#reserve === c) return true;
    if (this.#reserve === null || this.#reserve.closed) {
      this.#reserve = c;
      this.#reserveAt = performance.now();
      this.mib.ReserveGrants++;
      return true;
    }
    this.#reserveWatch();
    return false;
  }

  /** The holder sent bytes. */
  reserveProgress(): void {
    this.#reserveAt = performance.now();
  }

  /** `c`'s frame is done (or `c` is gone): the reserve is free for the next waiting client. */
  reserveDone(c: C): void {
    if (this.#reserve !== c) return;
    this.#reserve = null;
    if (this.#pressured.size) this.#wakePressured();
  }

  /** While others wait for the reserve, drop a holder that sends nothing. */
  #reserveWatch(): void {
    if (this.#reserveTimer) return;
    const wait = Math.max(1, this.#reserveAt + RESERVE_IDLE_MS - performance.now());
    this.#reserveTimer = setTimeout(() => {
      this.#reserveTimer = null;
      const h = this.#reserve;
      if (!h || !this.#pressured.size) return;
      if (performance.now() - this.#reserveAt < RESERVE_IDLE_MS) return this.#reserveWatch();
      this.mib.ReserveIdleDrops++;
      this.drop(h, `a partial frame past the memory floor, nothing sent for ${RESERVE_IDLE_MS} ms while others wait for memory`);
    }, wait);
    this.#reserveTimer.unref();
  }

  /** Memory was released: look again at the clients pressure stopped, once this turn. */
  #wakePressured(): void {
    if (this.#wakePending) return;
    this.#wakePending = true;
    setImmediate(() => {
      this.#wakePending = false;
      for (const c of [...this.#pressured]) this.runFor(c, () => c.update());
    });
  }

  /** `c` is gone: it holds the reserve no more and waits for nothing. */
  forget(c: C): void {
    this.reserveDone(c);
    this.#pressured.delete(c);
  }

  stop(): void {
    if (this.#reserveTimer) clearTimeout(this.#reserveTimer);
    this.#reserveTimer = null;
  }
}
