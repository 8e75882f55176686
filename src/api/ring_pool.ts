/**
 * A client's pool of data rings (docs/api.md "RING_POOL"): a ring memfd the
 * daemon made, sealed, passed and mapped for one socket of a client serves
 * that client's later sockets, so a connection per request does not pay a
 * memfd made and mapped and unmapped on both sides each time. A pooled ring
 * is named to the client by a small slot number; its memfd goes over the
 * socket only the first time (or after the daemon replaced it).
 *
 * Reuse is strictly within one client: a pool belongs to one API connection
 * (one process) and dies with it. A slot is reused only once both sides are
 * done with it: the pipe let go of it (the socket's release, ts_ring_off, or
 * a fault) and the client said it let go (its close of the socket, or its
 * ts_ring_off: the client sends either only after it stopped reading the
 * ring). Then it is reset (ringReset: nothing of the last connection left
 * readable, every index and flag at 0). Every index in it stays the
 * client's, untrusted, as for any ring (native/ring.h).
 */
import { RING_DOWN, RING_UP, type ApiFile } from './files.js';
import type { RingSide, UnixAddon } from './unix.js';

/** Most slots of one client's pool (the slot number is a byte on the wire): past it a socket gets a ring of its own. */
export const RING_POOL_MAX = 64;
/**
 * Free slots a client keeps even when it uses fewer at once. Beyond max(this, the most it had in use at
 * once lately) a released one is unmapped: a server whose connections come and go in bursts keeps what
 * a burst takes (unmapping at each lull would make every burst pay memfds again).
 */
export const RING_POOL_KEEP = 4;
/** Releases after which "lately" starts again from the slots in use now (the pool shrinks after a busy spell). */
const RING_POOL_PEAK_WINDOW = 4096;

/** The daemon's mapping of a slot's ring: its handle and views, kept between sockets. */
type Mapped = Pick<RingSide, 'h' | 'up' | 'down'>;

interface Slot {
  n: number;
  side: Mapped | null; // null: empty (never made, faulted, or trimmed): the next use makes a memfd
  file: ApiFile | null; // the socket it is bound to, null when free
  acked: boolean; // the client let go (close, ts_ring_off)
  dropped: boolean; // the pipe let go
}

export interface PoolTake {
  side: RingSide;
  slot: number;
  /** The new memfd to pass, or -1: the client's mapping of the slot is reused. */
  fd: number;
}

export class RingPool {
  readonly #slots: Slot[] = [];
  readonly #bound = new Map<ApiFile, Slot>();
  #free = 0;
  #dead = false;
  /** The most slots bound at once lately, and releases since it was reset. */
  #peak = 0;
  #released = 0;

  constructor(
    readonly ux: UnixAddon,
    readonly upSize: number,
    readonly downSize: number,
    readonly fdOut: Int32Array,
    readonly onFault: () => void,
  ) {}

  /** Slots bound to a socket now, and free ones (tests, stats). */
  get inUse(): number {
    return this.#bound.size;
  }
  get idle(): number {
    return this.#free;
  }

  /**
   * A ring for `f`'s new socket: a free slot's (reset at its release), or a
   * new memfd for an empty slot; null when every slot is bound (the caller
   * makes a ring of its own) or the memfd cannot be made.
   */
  take(f: ApiFile, level: boolean): PoolTake | null {
    if (this.#dead) return null;
    let s: Slot | undefined;
    let empty: Slot | undefined;
    for (const x of this.#slots) {
      if (x.file) continue;
      if (x.side) {
        s = x;
        break;
      }
      empty ??= x;
    }
    let fd = -1;
    if (s) {
      this.#free--;
      // Cleared at its release already; again for what the client may have written into its mapping since.
      this.ux.ringReset(s.side!.h, 0);
    } else {
      if (!empty) {
        if (this.#slots.length >= RING_POOL_MAX) return null;
        empty = { n: this.#slots.length, side: null, file: null, acked: false, dropped: false };
        this.#slots.push(empty);
      }
      const h = this.ux.ringCreate(this.upSize, this.downSize, this.fdOut);
      if (!h) return null;
      s = empty;
      fd = this.fdOut[0];
      s.side = { h, up: this.ux.ringView(h, 0), down: this.ux.ringView(h, 1) };
    }
    s.file = f;
    s.acked = false;
    s.dropped = false;
    this.#bound.set(f, s);
    if (this.#bound.size > this.#peak) this.#peak = this.#bound.size;
    const { h, up, down } = s.side!;
    if (level) this.ux.ringLevel(h);
    // A side of its own per socket: a pipe that lets go late (after a fault, at its close) names its own binding, never the slot's next one.
    const slot = s;
    return { side: { h, up, down, onFault: this.onFault, level, letGo: (faulted) => this.#letGo(slot, f, faulted) }, slot: s.n, fd };
  }

  /** The client let go of `f`'s ring (its close, or ts_ring_off): the slot is reused once the pipe has let go too. */
  ack(f: ApiFile): void {
    const s = this.#bound.get(f);
    if (!s) return;
    s.acked = true;
    if (s.dropped) this.#finish(s);
  }

  #letGo(s: Slot, f: ApiFile, faulted: boolean): void {
    if (s.file !== f || s.dropped) return;
    s.dropped = true;
    if (faulted || this.#dead) this.#unmap(s);
    if (s.acked || this.#dead) this.#finish(s);
  }

  /** Both sides are done: free (reset), or empty when the daemon no longer maps it, or unmapped past what use keeps. */
  #finish(s: Slot): void {
    this.#bound.delete(s.file!);
    s.file = null;
    if (!s.side) return;
    if (++this.#released >= RING_POOL_PEAK_WINDOW) {
      this.#released = 0;
      this.#peak = this.#bound.size;
    }
    if (this.#dead || this.#free >= Math.max(RING_POOL_KEEP, this.#peak)) {
      this.#unmap(s);
      return;
    }
    this.ux.ringReset(s.side.h, 0);
    this.#free++;
  }

  /** The daemon lets go of the slot's mapping, its pages punched out first (the client may map the memfd still). */
  #unmap(s: Slot): void {
    const side = s.side;
    if (!side) return;
    s.side = null;
    this.ux.ringReset(side.h, 1);
    this.ux.ringClose(side.h, side.up, side.down);
  }

  /** The client is gone: free slots unmapped now, bound ones when their pipe lets go. */
  destroy(): void {
    if (this.#dead) return;
    this.#dead = true;
    for (const s of this.#slots) if (!s.file) this.#unmap(s);
    this.#free = 0;
  }
}

/** What ringFor needs of the client (server.ts's ApiClient). */
export interface RingClient {
  readonly ringLevel: boolean;
  readonly wantPool: boolean;
  ringPool: RingPool | null;
}

/**
 * The rings of a new stream socket of a client that asked for them: a slot
 * of its pool (RING_POOL), else one of its own. out[0] is the memfd to pass
 * (-1: a pooled ring the client maps already), out[1] the slot (-1: none).
 * null when no memfd can be made: the socket stays on its socketpair.
 */
export function ringFor(ux: UnixAddon, c: RingClient, f: ApiFile, out: Int32Array, mib: { Rings: number; RingsReused: number; RingFaults: number }): RingSide | null {
  const onFault = () => mib.RingFaults++;
  const level = c.ringLevel;
  out[1] = -1;
  if (c.wantPool) c.ringPool ??= new RingPool(ux, RING_UP, RING_DOWN, out, onFault);
  const got = c.ringPool?.take(f, level);
  if (got) {
    mib.Rings++;
    if (got.fd < 0) mib.RingsReused++;
    out[0] = got.fd;
    out[1] = got.slot;
    return got.side;
  }
  const h = ux.ringCreate(RING_UP, RING_DOWN, out);
  if (!h) return null;
  mib.Rings++;
  if (level) ux.ringLevel(h);
  return { h, up: ux.ringView(h, 0), down: ux.ringView(h, 1), onFault, level };
}
