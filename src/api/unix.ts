/**
 * The UNIX-socket addon (native/unix.c), typed, and UnixConn: one API
 * connection read and written through recvmsg/sendmsg so descriptors can
 * ride along (Node's net drops SCM_RIGHTS on non-IPC pipes). What a
 * connection cannot send at once waits in its WriteQueue, which is charged
 * by what it really holds (truesize), as a kernel socket's write queue is.
 */
import { createRequire } from 'node:module';
import { EAGAIN, POLLHUP } from '../uapi.js';
import { ACCEPT_BATCH_MAX } from './proto.js';

export interface UnixAddon {
  unixListen(path: string, backlog: number): number;
  unixConnect(path: string): number;
  accept(fd: number): number;
  peerCred(fd: number, out: Int32Array): number;
  /** type: 1 SOCK_STREAM (default) or 5 SOCK_SEQPACKET. */
  socketPair(sndbuf: number, rcvbuf: number, out: Int32Array, type?: number): number;
  sendmsg(fd: number, buf: Uint8Array, off: number, len: number, fds: Int32Array, nfds: number): number;
  recvmsg(fd: number, buf: Uint8Array, off: number, len: number, fdsOut: Int32Array): number;
  read(fd: number, buf: Uint8Array, off: number, len: number): number;
  write(fd: number, buf: Uint8Array, off: number, len: number): number;
  /** Messages buf[ends[i-1] (0), ends[i]) for i < count (at most 64), in one sendmmsg: how many were sent, or -errno when none was. */
  writeMsgs(fd: number, buf: Uint8Array, ends: Uint32Array, count: number): number;
  shutdown(fd: number, how: number): number;
  close(fd: number): number;
  ioctlInt(fd: number, req: number): number;
  dupFd(fd: number): number;
  setSndbuf(fd: number, bytes: number): number;
  /** poll(2) with a zero timeout: the revents, or -errno. */
  pollEvents(fd: number): number;
  watch(fd: number, cb: (events: number, status: number) => void): unknown;
  watchSet(h: unknown, events: number): void;
  watchClose(h: unknown): void;
  /** A buffer over its own mapping (null when mmap fails); pageRelease hands it back at once. */
  pageBuffer(size: number): Buffer | null;
  /** Detach a whole-ArrayBuffer buffer (pageBuffer's, or allocUnsafeSlow's) so its memory is freed now; false otherwise. */
  pageRelease(buf: Buffer): boolean;
  // The data rings (native/ring.h, docs/api.md "Data rings"): a handle per socket; data calls return a count or -errno.
  /** The daemon's side of a new ring; fdOut[0] is its memfd to pass, or -errno with null. */
  ringCreate(up: number, down: number, fdOut: Int32Array): RingHandle | null;
  /** A side of the ring in memfd `fd` (role 0 the application's, 1 the daemon's), or -errno (-EPROTO: not a ring). */
  ringAttach(fd: number, role: number): RingHandle | number;
  ringBell(h: RingHandle, fd: number): void;
  ringWrite(h: RingHandle, buf: Uint8Array, off: number, len: number): number;
  ringRead(h: RingHandle, buf: Uint8Array, off: number, len: number): number;
  ringPeek(h: RingHandle, out: Int32Array): number;
  ringAdvance(h: RingHandle, n: number): number;
  ringWait(h: RingHandle, dir: number): number;
  /** Room to copy into ringView of the ring we produce into (out[0]: the produce offset), published by ringCommit. */
  ringReserve(h: RingHandle, out: Int32Array): number;
  ringCommit(h: RingHandle, n: number): number;
  ringFin(h: RingHandle): void;
  ringCloseIn(h: RingHandle): void;
  ringQueued(h: RingHandle, which: number): number;
  ringPeer(h: RingHandle): number;
  ringView(h: RingHandle, which: number): Buffer;
  ringClose(h: RingHandle, ...views: Buffer[]): void;
  /** RING_LEVEL, before the memfd is passed: the down ring's consumer starts asleep, so the first data rings. */
  ringLevel(h: RingHandle): void;
  /** RING_LEVEL: ring the consumer if it asks for a byte while data (or FIN) waits, once per sleep. */
  ringKick(h: RingHandle): void;
  /** Doorbell bytes sent so far. */
  ringBells(h: RingHandle): number;
  /** Bytes we produced not yet consumed (-errno), out[0] where they start in ringView. */
  ringUnsent(h: RingHandle, out: Int32Array): number;
  /** The ring as new for another socket of the same client (RING_POOL): what the last one left cleared (full: all of it), indices and flags at 0; -EBADF once closed. */
  ringReset(h: RingHandle, full: number): number;
  UV_READABLE: number;
  UV_WRITABLE: number;
  UV_DISCONNECT: number;
  FIONREAD: number;
  SIOCOUTQ: number;
  MAX_FDS: number;
  PAGE_SIZE: number;
}

/** A ring handle (an external over the addon's private state). */
export type RingHandle = { readonly __ring: unique symbol };

/**
 * A stream socket's data rings, the daemon's side: the handle, the view of
 * the up ring's data that sendmsg reads from in place, and what to count
 * when the client corrupts it.
 */
export interface RingSide {
  h: RingHandle;
  up: Buffer;
  down: Buffer;
  onFault: () => void;
  /**
   * RING_LEVEL (the LD_PRELOAD library): only the down ring carries data, a
   * byte stays in the client's end while it holds any (ringKick after every
   * run), and the up direction is the socketpair's, as without rings.
   */
  level?: boolean;
  /** A pooled ring: the pipe is done with it (instead of ringClose); `faulted`: the daemon lets go of the mapping now. */
  letGo?: (faulted: boolean) => void;
}

let cached: UnixAddon | null = null;
export function unixAddon(): UnixAddon {
  if (!cached) cached = createRequire(import.meta.url)('../../../build/Release/unix.node') as UnixAddon;
  return cached;
}


/** Below this a buffer comes from the heap; from it up, from its own mapping. */
const PAGE_MIN = 16 * 1024;
/** What a buffer costs besides its bytes: the Buffer and ArrayBuffer objects, the slot that holds it. */
export const BUF_OVERHEAD = 256;

/**
 * A buffer the API holds for a client (queued replies, a partial request)
 * and can give back the moment it is done with it (bufFree), not at some
 * later collection: a large one has its own mapping, unmapped on release.
 */
export function bufAlloc(size: number): Buffer {
  return (size >= PAGE_MIN ? unixAddon().pageBuffer(size) : null) ?? Buffer.allocUnsafeSlow(size);
}

/** Give a bufAlloc buffer back now; every view of it is empty after. */
export function bufFree(b: Buffer): void {
  unixAddon().pageRelease(b);
}

/** What a bufAlloc buffer of `size` bytes costs: whole pages, and its objects (an skb's truesize). */
export function bufTruesize(size: number): number {
  const page = unixAddon().PAGE_SIZE;
  return Math.ceil(size / page) * page + BUF_OVERHEAD;
}

/** A FIFO with O(1) push and shift at any length (a ring that doubles; an empty big one shrinks). */
export class Ring<T> {
  #a: (T | undefined)[] = new Array(8);
  #h = 0;
  #n = 0;

  get length(): number {
    return this.#n;
  }

  push(v: T): void {
    if (this.#n === this.#a.length) {
      const b = new Array<T | undefined>(this.#a.length * 2);
      for (let i = 0; i < this.#n; i++) b[i] = this.#a[(this.#h + i) & (this.#a.length - 1)];
      this.#a = b;
      this.#h = 0;
    }
    this.#a[(this.#h + this.#n) & (this.#a.length - 1)] = v;
    this.#n++;
  }

  /** The i-th from the head (0 is the head), or undefined. */
  at(i: number): T | undefined {
    return i < this.#n ? this.#a[(this.#h + i) & (this.#a.length - 1)] : undefined;
  }

  last(): T | undefined {
    return this.#n ? this.#a[(this.#h + this.#n - 1) & (this.#a.length - 1)] : undefined;
  }

  shift(): T | undefined {
    if (!this.#n) return undefined;
    const v = this.#a[this.#h];
    this.#a[this.#h] = undefined;
    this.#h = (this.#h + 1) & (this.#a.length - 1);
    if (--this.#n === 0 && this.#a.length > 64) {
      this.#a = new Array(8);
      this.#h = 0;
    }
    return v;
  }
}

/** One piece of a write queue: a chunk of coalesced frames we own, or a large frame as it was given. */
interface Seg {
  buf: Buffer;
  off: number;
  end: number;
  own: boolean;
  truesize: number;
}

/** The chunks small frames are coalesced into: the first of a queue, and the largest. */
export const WQ_CHUNK_MIN = 4 * 1024;
export const WQ_CHUNK = 64 * 1024;
/** Frames up to this size are copied into the tail chunk; larger ones are queued as they are. */
export const WQ_COPY_MAX = 8 * 1024;
/** What a queued descriptor costs besides the descriptor itself. */
const FD_OVERHEAD = 64;
const EMPTY = Buffer.alloc(0);

/** Descriptors riding on a frame: one (-1 for none), or a list (ts_accept_batch's, up to ACCEPT_BATCH_MAX). */
export type Fds = number | readonly number[];
const hasFds = (fd: Fds): boolean => (typeof fd === 'number' ? fd >= 0 : fd.length > 0);
function forFds(fd: Fds, fn: (f: number) => void): void {
  if (typeof fd === 'number') {
    if (fd >= 0) fn(fd);
  } else for (const f of fd) fn(f);
}

/**
 * What a connection could not send yet, in order: small frames coalesced
 * into chunks (as unix_stream_sendmsg and tcp_sendmsg append to the tail
 * skb), so a client that never reads costs its bytes and a chunk's slack,
 * not an object per reply, and leaves as one write per chunk. Descriptors
 * are marks at their frame's first byte: a write starts at a mark and stops
 * before the next, so each rides on the sendmsg of its frame's first byte.
 * `truesize` is what the queue holds in memory, the figure the server
 * charges the client.
 */
export class WriteQueue {
  readonly #segs = new Ring<Seg>();
  readonly #fds = new Ring<{ pos: number; fd: Fds }>();
  /** Stream positions: of the next byte to send, and past the last queued. */
  #head = 0;
  #tail = 0;
  truesize = 0;
  /** The next write, as next() leaves it. */
  wbuf: Buffer = EMPTY;
  woff = 0;
  wlen = 0;
  wfd: Fds = -1;

  /** Bytes waiting. */
  get bytes(): number {
    return this.#tail - this.#head;
  }

  get empty(): boolean {
    return this.#tail === this.#head;
  }

  /** Queue buf[off..]; `fd` (>= 0, or a non-empty list) rides on its first byte. */
  push(buf: Buffer, off: number, fd: Fds): void {
    const len = buf.length - off;
    if (hasFds(fd)) {
      this.#fds.push({ pos: this.#tail, fd });
      this.truesize += FD_OVERHEAD;
    }
    this.#tail += len;
    if (len > WQ_COPY_MAX) {
      const truesize = buf.buffer.byteLength + BUF_OVERHEAD;
      this.#segs.push({ buf, off, end: buf.length, own: false, truesize });
      this.truesize += truesize;
      return;
    }
    let t = this.#segs.last();
    while (off < buf.length) {
      if (!t || !t.own || t.end === t.buf.length) {
        // A few replies get a small chunk; a queue that keeps growing, ever larger ones.
        const size = t?.own ? Math.min(WQ_CHUNK, t.buf.length * 2) : WQ_CHUNK_MIN;
        t = { buf: bufAlloc(size), off: 0, end: 0, own: true, truesize: bufTruesize(size) };
        this.#segs.push(t);
        this.truesize += t.truesize;
      }
      const n = Math.min(buf.length - off, t.buf.length - t.end);
      buf.copy(t.buf, t.end, off, off + n);
      t.end += n;
      off += n;
    }
  }

  /** Set wbuf/woff/wlen/wfd to the next write; false when empty. */
  next(): boolean {
    const s = this.#segs.at(0);
    if (!s) return false;
    let len = s.end - s.off;
    let fd: Fds = -1;
    const m = this.#fds.at(0);
    if (m) {
      if (m.pos === this.#head) {
        fd = m.fd;
        const m2 = this.#fds.at(1);
        if (m2) len = Math.min(len, m2.pos - this.#head);
      } else {
        len = Math.min(len, m.pos - this.#head);
      }
    }
    this.wbuf = s.buf;
    this.woff = s.off;
    this.wlen = len;
    this.wfd = fd;
    return true;
  }

  /** `n` bytes of the write next() described were sent (its descriptor with them, when n > 0). */
  consume(n: number): void {
    if (n <= 0) return;
    if (hasFds(this.wfd)) {
      this.#fds.shift();
      this.truesize -= FD_OVERHEAD;
      this.wfd = -1;
    }
    this.#head += n;
    const s = this.#segs.at(0)!;
    s.off += n;
    // A sent chunk goes at once, even the tail one: an idle connection holds nothing.
    if (s.off === s.end) this.#drop();
  }

  #drop(): void {
    const s = this.#segs.shift()!;
    this.truesize -= s.truesize;
    this.wbuf = EMPTY;
    if (s.own) bufFree(s.buf);
  }

  /** Empty the queue; the descriptors still queued are handed to `closeFd`. */
  clear(closeFd: (fd: number) => void): void {
    while (this.#segs.length) this.#drop();
    for (let m = this.#fds.shift(); m; m = this.#fds.shift()) forFds(m.fd, closeFd);
    this.#head = this.#tail;
    this.truesize = 0;
  }
}

/** Bytes written to one connection per wake-up: a client that reads fast does not keep the loop. */
export const FLUSH_BUDGET = 1024 * 1024;
/** Reads per wake-up. */
const READS_PER_WAKE = 16;

/**
 * A non-blocking UNIX stream connection with descriptor passing. Bytes in
 * arrive through onData (a view valid only during the call) with any
 * descriptors that came with them; writes queue when the socket is full and
 * are flushed when it becomes writable, in order, a descriptor staying with
 * its frame's first byte. The read buffer may be shared between
 * connections (the server's), since onData's view does not outlive the call.
 */
export class UnixConn {
  readonly ux = unixAddon();
  readonly #watch: unknown;
  readonly #q = new WriteQueue();
  #reading = true;
  #closed = false;
  /** The peer shut its sending side while we were not reading. */
  #rdhup = false;
  readonly #rbuf: Buffer;
  readonly #fdsOut = new Int32Array(17);
  readonly #fdsIn = new Int32Array(ACCEPT_BATCH_MAX);
  /** The most one read may bring in (setReading's max); 0 reads nothing. */
  readMax = Infinity;
  /** Asked before each read how much it may bring in (the owner's memory allowance, fresh each time). */
  allow: () => number = () => Infinity;
  onData: (buf: Buffer, fds: number[]) => void = () => {};
  /** The peer hung up or the socket failed (errno, 0 for a clean EOF). */
  onClose: (errno: number) => void = () => {};
  /** The write queue emptied (after having bytes). */
  onDrain: () => void = () => {};
  /** The write queue's truesize changed by `delta` bytes. */
  onMem: (delta: number) => void = () => {};

  constructor(readonly fd: number, rbuf: Buffer | number = 256 * 1024) {
    this.#rbuf = typeof rbuf === 'number' ? Buffer.allocUnsafe(rbuf) : rbuf;
    this.#watch = this.ux.watch(fd, (ev, status) => this.#ready(ev, status));
    this.#arm();
  }

  /** Bytes waiting in our write queue (not yet taken by the kernel). */
  get queued(): number {
    return this.#q.bytes;
  }

  /** What the write queue holds in memory. */
  get truesize(): number {
    return this.#q.truesize;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Stop or resume reading (back-pressure on a client that pipelines too
   * much); `max` bounds each read (the owner's memory allowance).
   */
  setReading(on: boolean, max = Infinity): void {
    const was = this.#reading && this.readMax > 0;
    this.#reading = on;
    this.readMax = max;
    if (was !== (on && max > 0)) this.#arm();
  }

  /** Queue a frame; `fd` (>= 0, or a list of up to ACCEPT_BATCH_MAX) is passed with its first byte. Returns false once closed. */
  write(buf: Buffer, fd: Fds = -1): boolean {
    if (this.#closed) return false;
    const t0 = this.#q.truesize;
    if (this.#q.empty) {
      const n = this.#send(buf, 0, buf.length, fd);
      if (n < 0 && n !== -EAGAIN) {
        this.#fail(-n);
        return false;
      }
      const sent = n > 0 ? n : 0;
      if (sent === buf.length) return true;
      this.#q.push(buf, sent, sent > 0 ? -1 : fd);
      this.#arm();
    } else {
      this.#q.push(buf, 0, fd);
    }
    if (this.#q.truesize !== t0) this.onMem(this.#q.truesize - t0);
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.ux.watchClose(this.#watch);
    const t0 = this.#q.truesize;
    this.#q.clear((f) => this.ux.close(f));
    this.ux.close(this.fd);
    if (t0) this.onMem(-t0);
  }

  #send(buf: Buffer, off: number, len: number, fd: Fds): number {
    if (typeof fd === 'number' ? fd >= 0 : fd.length > 0) {
      let nfds = 1;
      if (typeof fd === 'number') this.#fdsIn[0] = fd;
      else {
        nfds = fd.length;
        for (let i = 0; i < nfds; i++) this.#fdsIn[i] = fd[i];
      }
      const n = this.ux.sendmsg(this.fd, buf, off, len, this.#fdsIn, nfds);
      // Our copy of a descriptor is closed once the kernel holds the peer's.
      if (n > 0) forFds(fd, (f) => this.ux.close(f));
      return n;
    }
    return this.ux.write(this.fd, buf, off, len);
  }

  #arm(): void {
    if (this.#closed) return;
    const reading = this.#reading && this.readMax > 0;
    // A half-closed peer stays "disconnected" (level-triggered): unread, watching that would spin.
    const hup = reading || !this.#rdhup ? this.ux.UV_DISCONNECT : 0;
    const ev = (reading ? this.ux.UV_READABLE : 0) | (this.#q.empty ? 0 : this.ux.UV_WRITABLE) | hup;
    this.ux.watchSet(this.#watch, ev);
  }

  #ready(ev: number, status: number): void {
    if (this.#closed) return;
    if (status < 0) return this.#fail(-status);
    if (ev & this.ux.UV_WRITABLE) this.#flush();
    if (this.#closed) return;
    if (this.#reading && this.readMax > 0) {
      if (ev & (this.ux.UV_READABLE | this.ux.UV_DISCONNECT)) this.#read();
    } else if (ev & this.ux.UV_DISCONNECT) {
      // Not being read (back-pressure) and the peer hung up: closed altogether, nobody is left to
      // read a reply and what it sent goes with it (a dying process's unfinished calls); only
      // half-closed, it may still read, and is read to its end once reading resumes.
      const re = this.ux.pollEvents(this.fd);
      if (re >= 0 && re & POLLHUP) return this.#fail(0);
      this.#rdhup = true;
      this.#arm();
    }
  }

  /** Write what is queued, a chunk per call, up to FLUSH_BUDGET; the rest on the next wake-up. */
  #flush(): void {
    const q = this.#q;
    const t0 = q.truesize;
    let budget = FLUSH_BUDGET;
    let errno = 0;
    while (budget > 0 && q.next()) {
      const n = this.#send(q.wbuf, q.woff, q.wlen, q.wfd);
      if (n === -EAGAIN) break;
      if (n < 0) {
        errno = -n;
        break;
      }
      const full = n < q.wlen;
      q.consume(n);
      budget -= n;
      if (full) break;
    }
    if (q.truesize !== t0) this.onMem(q.truesize - t0);
    if (errno) return this.#fail(errno);
    this.#arm();
    if (q.empty) this.onDrain();
  }

  #read(): void {
    // A bounded number of reads per wake-up: one client never starves the loop.
    for (let i = 0; i < READS_PER_WAKE && this.#reading && !this.#closed && this.readMax > 0; i++) {
      const len = Math.min(this.#rbuf.length, this.readMax, this.allow());
      if (len <= 0) {
        // Nothing allowed now: unwatched until the owner lets it read again (setReading).
        this.readMax = 0;
        return this.#arm();
      }
      const n = this.ux.recvmsg(this.fd, this.#rbuf, 0, len, this.#fdsOut);
      const nfds = this.#fdsOut[0];
      const fds: number[] = [];
      for (let k = 0; k < nfds; k++) fds.push(this.#fdsOut[1 + k]);
      if (n === -EAGAIN) return;
      if (n < 0) return this.#fail(-n);
      if (n === 0) {
        for (const f of fds) this.ux.close(f);
        return this.#fail(0);
      }
      this.onData(this.#rbuf.subarray(0, n), fds);
    }
  }

  #fail(errno: number): void {
    if (this.#closed) return;
    this.close();
    this.onClose(errno);
  }
}
