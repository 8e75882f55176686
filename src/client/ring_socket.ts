/**
 * A stream socket's data through its shared-memory rings (docs/api.md
 * "Data rings"), with net.Socket's shape.
 */
import { Duplex } from 'node:stream';
import { unixAddon, type RingHandle } from '../api/unix.js';
import { EAGAIN, EPROTO } from '../uapi.js';
import { SyscallError } from './client.js';

/**
 * Received bytes are copied out of the down ring into slabs shared by every
 * ringed socket of the process, as Node's streams carve small buffers out of
 * one pool: a chunk handed to 'data' is a piece of the current slab, which
 * moves on and never writes again where it handed a chunk out; a new slab is
 * taken when the rest is too small. One allocation per RING_SLAB bytes and a
 * chunk of up to RING_READ_MAX per read (fewer 'data' events per wake-up)
 * where each read took a new Buffer of at most 64 KiB: a Buffer of 128 KiB
 * or more of its own is a mapping of its own, faulted in page by page, while
 * slabs of one size are reused by the allocator once collected. A chunk the
 * program keeps keeps its slab (as a pooled Buffer keeps Node's pool).
 */
const RING_SLAB = 1024 * 1024;
/** The most one read hands to 'data': what the ring holds, up to this. */
const RING_READ_MAX = 256 * 1024;
/** A slab whose rest is smaller than this is left for a new one (at most this much of a slab unused). */
const RING_SLAB_MIN = 16 * 1024;
let slab: Buffer | null = null;
let slabOff = 0;

/** Doorbell bytes read per wake-up. */
const RING_BELL_READ = 256;
/** The most TAPSTACK_BUSY_READ may ask for, in µs: a spin holds the event loop, bounded. */
const BUSY_READ_MAX = 10_000;

/**
 * TAPSTACK_BUSY_READ=µs (0, the default: off), the counterpart of Linux's
 * net.core.busy_read: a socket that finds its down ring empty watches it
 * that long (once the program has reacted to what it read: from a
 * setImmediate, before the loop would sleep) before it asks for a doorbell.
 * Data that comes meanwhile moves with no system call on either side. The
 * spin holds the event loop, as busy polling holds a thread.
 */
export function busyReadUs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.TAPSTACK_BUSY_READ ?? 0);
  return Number.isFinite(v) && v > 0 ? Math.min(Math.floor(v), BUSY_READ_MAX) : 0;
}

/**
 * A stream socket whose data moves through its shared-memory rings
 * (docs/api.md "Data rings"), with net.Socket's shape: a Duplex that reads
 * what the daemon put in the down ring and writes into the up ring, and a
 * doorbell (the data descriptor, a socketpair) watched only for the
 * daemon's wake-ups. Back-pressure is the rings': reading stops when the
 * stream's buffer is full, so the down ring fills and the daemon leaves the
 * rest in TCP's receive queue (its window closes); a write that does not fit
 * the up ring waits for the daemon to make room (NEED_SPACE, then a bell).
 * Wake-ups are asked for only before sleeping (NEED_WAKEUP): while both
 * sides are busy, no descriptor is touched at all.
 */
export class RingSocket extends Duplex {
  readonly #ux = unixAddon();
  readonly #h: RingHandle;
  readonly #bell: number;
  readonly #watch: unknown;
  readonly #bellBuf = Buffer.allocUnsafe(RING_BELL_READ);
  /** _read asked for data and push() still takes it. */
  #reading = false;
  #bellHup = false;
  #ended = false;
  /** A write the up ring had no room for yet. */
  #wq: { chunk: Buffer; off: number; cb: (err?: Error | null) => void } | null = null;
  #timeout = 0;
  #timer: NodeJS.Timeout | null = null;
  /** Busy read budget (µs, 0: off) and its state: a spin is queued / the last one ran out (sleep now). */
  readonly #busyUs = busyReadUs();
  #spinQueued = false;
  #spun = false;
  readonly #spin = (): void => {
    this.#spinQueued = false;
    if (this.destroyed || !this.#reading) return;
    const ux = this.#ux;
    const end = performance.now() + this.#busyUs / 1000;
    for (let i = 1; ; i++) {
      if (ux.ringQueued(this.#h, 0) !== 0 || ux.ringPeer(this.#h) & 1) break; // data, its end, or a fault: #pull says
      if ((i & 15) === 0 && performance.now() >= end) {
        this.#spun = true;
        break;
      }
    }
    this.#pull();
  };
  bytesRead = 0;
  bytesWritten = 0;
  readonly connecting = false;

  /** As net.Socket's: 'open', 'readOnly' (we ended our side), 'writeOnly' (the peer's FIN was read) or 'closed'. */
  get readyState(): 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  /** As net.Socket's: true once there is no connection under it (a ringed socket is connected when made). */
  get pending(): boolean {
    return this.destroyed;
  }

  /** net.Socket's (deprecated) name for the bytes written but not yet taken: writableLength. */
  get bufferSize(): number {
    return this.writableLength;
  }

  /** Map the ring memfd (closed here either way) and take the doorbell descriptor. */
  static open(bell: number, ringFd: number): RingSocket {
    const ux = unixAddon();
    const h = ux.ringAttach(ringFd, 0);
    ux.close(ringFd);
    if (typeof h === 'number') {
      ux.close(bell);
      throw new SyscallError(h || -EPROTO, 'mmap');
    }
    return new RingSocket(h, bell);
  }

  constructor(h: RingHandle, bell: number) {
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, decodeStrings: true });
    this.#h = h;
    this.#bell = bell;
    this.#ux.ringBell(h, bell);
    this.#watch = this.#ux.watch(bell, () => this.#onBell());
    this.#ux.watchSet(this.#watch, this.#ux.UV_READABLE);
  }

  /** A doorbell: the daemon put data, room, or an end in the rings while we slept. */
  #onBell(): void {
    if (this.destroyed) return;
    for (;;) {
      const n = this.#ux.read(this.#bell, this.#bellBuf, 0, RING_BELL_READ);
      if (n === 0) {
        // The daemon's end is gone (it closed the socket): what the rings hold is still read.
        this.#bellHup = true;
        this.#ux.watchSet(this.#watch, 0);
      }
      if (n < RING_BELL_READ) break;
    }
    if (this.#reading) this.#pull();
    if (this.#wq) this.#flush();
  }

  override _read(): void {
    this.#reading = true;
    this.#pull();
  }

  /**
   * Hand what the down ring holds to the stream while it takes it, a piece
   * of the slab per read (one native call: the read says data, empty, the
   * end, or a fault); sleep (NEED_WAKEUP) once the ring is empty.
   */
  #pull(): void {
    const ux = this.#ux;
    while (this.#reading && !this.#ended && !this.destroyed) {
      let s = slab;
      if (s === null || s.length - slabOff < RING_SLAB_MIN) {
        s = slab = Buffer.allocUnsafeSlow(RING_SLAB);
        slabOff = 0;
      }
      const off = slabOff;
      // FIN is looked at before the producer's index: 0 means the end with nothing left before it.
      const n = ux.ringRead(this.#h, s, off, Math.min(s.length - off, RING_READ_MAX));
      if (n > 0) {
        // Never handed out again: the next read starts past this chunk (8-byte aligned, as Node's pool).
        slabOff = (off + n + 7) & ~7;
        this.bytesRead += n;
        this.#active();
        this.#reading = this.push(s.subarray(off, off + n));
        continue;
      }
      if (n === 0) {
        this.#ended = true;
        this.push(null);
        return;
      }
      if (n !== -EAGAIN) return void this.destroy(new SyscallError(-n, 'read'));
      if (this.#bellHup) {
        // The daemon closed its end (the socket was closed over the API, or the daemon is gone)
        // without a FIN in the ring: nothing more will come, the stream ends, as a pair's EOF.
        this.#ended = true;
        this.push(null);
        return;
      }
      if (this.#busyUs > 0 && !this.#spun) {
        // Busy read: watch the ring for a while before asking for a bell, once the program has had its turn.
        if (!this.#spinQueued) {
          this.#spinQueued = true;
          setImmediate(this.#spin);
        }
        return;
      }
      this.#spun = false;
      const w = ux.ringWait(this.#h, 0);
      if (w < 0) return void this.destroy(new SyscallError(-w, 'read'));
      if (w === 0) return; // the daemon rings when it has put more
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#wq = { chunk, off: 0, cb };
    this.#flush();
  }

  /** Copy the pending write into the up ring as room allows; sleep (NEED_SPACE) when it is full. */
  #flush(): void {
    const ux = this.#ux;
    const w = this.#wq;
    while (w) {
      const n = ux.ringWrite(this.#h, w.chunk, w.off, w.chunk.length - w.off);
      if (n < 0) {
        // EPIPE: the connection is over (its reason comes by SO_ERROR at the end of the stream).
        this.#wq = null;
        return w.cb(new SyscallError(-n, 'write'));
      }
      w.off += n;
      this.bytesWritten += n;
      if (n > 0) this.#active();
      if (w.off === w.chunk.length) {
        this.#wq = null;
        return w.cb();
      }
      if (this.#bellHup) {
        this.#wq = null;
        return w.cb(new SyscallError(32 /* EPIPE */, 'write'));
      }
      const r = ux.ringWait(this.#h, 1);
      if (r < 0) {
        this.#wq = null;
        return w.cb(new SyscallError(-r, 'write'));
      }
      if (r === 0) return; // the daemon rings when it has made room
    }
  }

  /** end(): FIN after the data, as shutdown(SHUT_WR). */
  override _final(cb: (err?: Error | null) => void): void {
    this.#ux.ringFin(this.#h);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#ux.watchClose(this.#watch);
    // Closing the doorbell is the last copy's close: the daemon then hears the hang-up, as with the pair.
    this.#ux.close(this.#bell);
    this.#ux.ringClose(this.#h);
    cb(err);
  }

  /** net.Socket's idle timeout: 'timeout' after `ms` without data either way (0 turns it off). */
  setTimeout(ms: number, cb?: () => void): this {
    this.#timeout = ms;
    if (cb) this.once('timeout', cb);
    this.#active();
    return this;
  }

  #active(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#timeout > 0 && !this.destroyed) {
      this.#timer = setTimeout(() => this.emit('timeout'), this.#timeout);
      this.#timer.unref?.();
    }
  }

  setNoDelay(_on = true): this {
    return this;
  }
  setKeepAlive(_on = false, _delay = 0): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  address(): { address: string; port: number; family: string } | Record<string, never> {
    const me = this as unknown as { localAddress?: string; localPort?: number; localFamily?: string };
    return me.localAddress === undefined ? {} : { address: me.localAddress, port: me.localPort ?? 0, family: me.localFamily ?? 'IPv4' };
  }
}
