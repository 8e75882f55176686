/**
 * The UNIX-socket addon (native/unix.c), typed, and UnixConn: one API
 * connection read and written through recvmsg/sendmsg so descriptors can
 * ride along (Node's net drops SCM_RIGHTS on non-IPC pipes).
 */
import { createRequire } from 'node:module';
import { EAGAIN } from '../uapi.js';

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
  UV_READABLE: number;
  UV_WRITABLE: number;
  UV_DISCONNECT: number;
  FIONREAD: number;
  SIOCOUTQ: number;
  MAX_FDS: number;
}

let cached: UnixAddon | null = null;
export function unixAddon(): UnixAddon {
  if (!cached) cached = createRequire(import.meta.url)('../../../build/Release/unix.node') as UnixAddon;
  return cached;
}


/**
 * A non-blocking UNIX stream connection with descriptor passing. Bytes in
 * arrive through onData (a view valid only during the call) with any
 * descriptors that came with them; writes queue when the socket is full and
 * are flushed when it becomes writable, in order, a descriptor staying with
 * its frame's first byte.
 */
export class UnixConn {
  readonly ux = unixAddon();
  readonly #watch: unknown;
  #queue: { buf: Buffer; off: number; fd: number }[] = [];
  #queued = 0;
  #reading = true;
  #closed = false;
  #rbuf: Buffer;
  readonly #fdsOut = new Int32Array(17);
  readonly #fdsIn = new Int32Array(1);
  onData: (buf: Buffer, fds: number[]) => void = () => {};
  /** The peer hung up or the socket failed (errno, 0 for a clean EOF). */
  onClose: (errno: number) => void = () => {};
  /** The write queue emptied (after having bytes). */
  onDrain: () => void = () => {};

  constructor(readonly fd: number, readSize = 256 * 1024) {
    this.#rbuf = Buffer.allocUnsafe(readSize);
    this.#watch = this.ux.watch(fd, (ev, status) => this.#ready(ev, status));
    this.#arm();
  }

  /** Bytes waiting in our write queue (not yet taken by the kernel). */
  get queued(): number {
    return this.#queued;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stop or resume reading (back-pressure on a client that pipelines too much). */
  setReading(on: boolean): void {
    if (this.#reading === on) return;
    this.#reading = on;
    this.#arm();
  }

  /** Queue a frame; `fd` (>= 0) is passed with its first byte. Returns false once closed. */
  write(buf: Buffer, fd = -1): boolean {
    if (this.#closed) return false;
    if (this.#queue.length === 0) {
      const n = this.#send(buf, 0, fd);
      if (n < 0 && n !== -EAGAIN) {
        this.#fail(-n);
        return false;
      }
      const sent = n > 0 ? n : 0;
      if (sent === buf.length) return true;
      this.#queue.push({ buf, off: sent, fd: sent > 0 ? -1 : fd });
      this.#queued += buf.length - sent;
      this.#arm();
      return true;
    }
    this.#queue.push({ buf, off: 0, fd });
    this.#queued += buf.length;
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.ux.watchClose(this.#watch);
    for (const q of this.#queue) if (q.fd >= 0) this.ux.close(q.fd);
    this.#queue = [];
    this.ux.close(this.fd);
  }

  #send(buf: Buffer, off: number, fd: number): number {
    if (fd >= 0) {
      this.#fdsIn[0] = fd;
      const n = this.ux.sendmsg(this.fd, buf, off, buf.length - off, this.#fdsIn, 1);
      // Our copy of a descriptor is closed once the kernel holds the peer's.
      if (n > 0) this.ux.close(fd);
      return n;
    }
    return this.ux.write(this.fd, buf, off, buf.length - off);
  }

  #arm(): void {
    if (this.#closed) return;
    const ev = (this.#reading ? this.ux.UV_READABLE : 0) | (this.#queue.length ? this.ux.UV_WRITABLE : 0) | this.ux.UV_DISCONNECT;
    this.ux.watchSet(this.#watch, ev);
  }

  #ready(ev: number, status: number): void {
    if (this.#closed) return;
    if (status < 0) return this.#fail(-status);
    if (ev & this.ux.UV_WRITABLE) this.#flush();
    if (this.#closed) return;
    if (this.#reading && ev & (this.ux.UV_READABLE | this.ux.UV_DISCONNECT)) this.#read();
  }

  #flush(): void {
    while (this.#queue.length) {
      const q = this.#queue[0];
      const n = this.#send(q.buf, q.off, q.fd);
      if (n === -EAGAIN) break;
      if (n < 0) return this.#fail(-n);
      q.fd = -1;
      q.off += n;
      this.#queued -= n;
      if (q.off < q.buf.length) break;
      this.#queue.shift();
    }
    this.#arm();
    if (this.#queue.length === 0) this.onDrain();
  }

  #read(): void {
    // A bounded number of reads per wake-up: one client never starves the loop.
    for (let i = 0; i < 16 && this.#reading && !this.#closed; i++) {
      const n = this.ux.recvmsg(this.fd, this.#rbuf, 0, this.#rbuf.length, this.#fdsOut);
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
