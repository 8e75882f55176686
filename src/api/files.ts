/**
 * The descriptor side of the syscall API: what one client's descriptor
 * table holds for a stack socket (its flags, edge-poll state and parked
 * calls) and the data descriptor's pump between the stack socket and one
 * end of a socketpair (a SOCK_STREAM pair for TCP, SOCK_SEQPACKET for UDP),
 * moving only as far as the other side has room. The server
 * (server.ts) owns the calls; this file owns the bytes, and knows the
 * server only as the ApiCaller a file belongs to.
 */
import { Timer } from '../lib/time.js';
import { TcpSock } from '../net/ipv4/tcp_sock.js';
import { API_MAX_CONTROL, cmsgPut, DGRAM_ERR_MARK, DGRAM_F_CMSG, FrameWriter, sockaddrDecode, sockaddrWrite, ArgError } from './proto.js';
import { unixAddon, type RingSide } from './unix.js';
import { SEND_SHUTDOWN, sockError, SockWaiter, TCP_CLOSE, TCP_LISTEN, TCP_SYN_RECV, TCP_SYN_SENT, type Cmsg, type Sock } from '../net/core/sock.js';
import type { ProtoOps, Socket } from '../net/socket.js';
import { EAGAIN, EBADF, EFAULT, EINPROGRESS, EINVAL, ENOTCONN, EPIPE, POLLHUP, POLLIN, SHUT_RDWR, SHUT_WR, SOCK_STREAM, type SockAddr } from '../uapi.js';

/** Size of each end of the data socketpair: small, so TCP's buffers do the buffering. */
export const PAIR_BUF = 64 * 1024;
/**
 * SO_SNDBUF of the daemon's end, from PAIR_RX_MIN up to PAIR_RX_BUF.
 * Received data moves to the client in bigger steps, with fewer wake-ups on
 * both sides. Kernel to client library measured 9.5 Gbit/s with 64 KiB,
 * 11.3 with 256 KiB, and 12.9-13.4 with 1 MiB. Between the two bounds the
 * pair follows the socket's SO_RCVBUF (autotuned or set), so what a client
 * leaves unread in the pair grows only as the socket's own buffer does. The
 * client's writes still meet TCP's buffers after PAIR_BUF.
 */
export const PAIR_RX_MIN = 256 * 1024;
export const PAIR_RX_BUF = 1024 * 1024;
/**
 * Data ring sizes (docs/api.md "Data rings"), each as the pair's
 * PAIR_RX_BUF: a writer that fills a smaller up ring waits for the daemon
 * after every drain (stack -> kernel measured 0.56 of the kernel with
 * 256 KiB, 0.76 with 1 MiB, one shared-machine run each). Pages of a ring
 * cost memory only once touched.
 */
export const RING_UP = 1024 * 1024;
export const RING_DOWN = 1024 * 1024;
/** Doorbell bytes read per pump run (each is only "look at the ring"). */
const BELL_READ = 256;

/** Per-wake-up budget of the data pump, so one socket cannot hog the loop. */
export const PUMP_BUDGET = 1024 * 1024;
/**
 * SO_SNDBUF of the client's end while the daemon holds it unwritable: the
 * kernel raises it to its minimum (SOCK_MIN_SNDBUF), so a few KiB of filler
 * fill it.
 */
const HOLD_SNDBUF = 1;
const FILLER = Buffer.alloc(2048);
const READY_BYTE = Buffer.from([1]);
const QUEUED_BYTES = Buffer.alloc(64, 2);

export type Body = (w: FrameWriter) => void;

/** What an attempt at a call produced: done (ret, body, descriptor) or WOULD_BLOCK. */
export interface Outcome {
  ret: number;
  body?: Body;
  fd?: number;
  /** Several descriptors on one reply (ts_accept_batch: `ret` of them, FRAME_F_FDS). */
  fds?: number[];
  /** With fd: the socket's ring memfd, passed after it (FRAME_F_RING). */
  ring?: number;
  /** With fd: the slot of the client's ring pool the socket reads through (FRAME_F_RING_SLOT), or -1. */
  slot?: number;
}

/**
 * What a file needs of the client process that holds it (server.ts's
 * ApiClient): its replies and parked calls, and a guarded run of its work.
 */
export interface ApiCaller {
  readonly pid: number;
  readonly uid: number;
  readonly parked: Set<Parked>;
  reply(id: number, call: number, o: Outcome): void;
  /** Run work for this client outside its input: a bug there costs this client only. */
  runFor(fn: () => void): void;
  /** Run the calls parked on `f` once more. */
  retry(f: ApiFile): void;
  /** End this client (a corrupt stream, or a bug of ours while serving it). */
  drop(reason: string): void;
}

export interface Parked {
  client: ApiCaller;
  id: number;
  call: number;
  socks: ApiFile[];
  attempt: () => Outcome | null;
  timeout: () => Outcome;
  timer: Timer | null;
  done: boolean;
}

/**
 * One socket in one client's descriptor table (struct file over struct
 * socket): its flags, edge-poll state, the calls parked on it, and in
 * descriptor mode the pump of its data descriptor. The socket's wake-up
 * runs the pump and the parked calls once, after the stack is done.
 */
export class ApiFile {
  nonblock = false;
  cloexec = false;
  /** Events reported to an edge-triggered poll and not re-armed since. */
  edgeSeen = 0;
  waiters: Parked[] = [];
  pipe: DataPipe | DgramPipe | null = null;
  /**
   * The files of every client holding this socket, when a forked child took
   * its parent's listener (ts_inherit): one socket, one data descriptor (the
   * child's is a copy of the parent's), a file per process, as the kernel's
   * struct file is shared by the descriptor tables of a fork. Null while the
   * file is the socket's only one.
   */
  group: Set<ApiFile> | null = null;
  readonly waiter: SockWaiter;
  /**
   * Set when the socket outlives its client (server.ts #keepOrRelease): its
   * pump then runs on its own, and a bug there ends only this socket.
   */
  kept: ((e: unknown) => void) | null = null;

  constructor(
    readonly client: ApiCaller,
    public fd: number,
    readonly sock: Socket,
  ) {
    this.waiter = new SockWaiter(() => {
      this.runPipe(true);
      if (!this.kept) client.retry(this);
    });
    sock.sk.wake = (_sk, events) => this.wake(events);
  }

  get sk(): Sock {
    return this.sock.sk;
  }

  /**
   * Move the socket's data: as the client's work, or on its own once kept past the client. A TCP
   * wake-up (fromTcp) skips a stream's pair read while its watch has not said readable (tcpWake).
   */
  runPipe(fromTcp = false): void {
    const k = this.kept;
    const run = (): void => {
      const p = this.pipe;
      if (fromTcp && p instanceof DataPipe) p.tcpWake();
      else p?.run();
    };
    if (!k) {
      this.client.runFor(run);
      return;
    }
    try {
      run();
    } catch (e) {
      k(e);
    }
  }

  get ops(): ProtoOps {
    return this.sock.ops;
  }

  /** SOCK_STREAM (a byte stream with a connection) rather than SOCK_DGRAM. */
  get stream(): boolean {
    return this.sock.sk.type === SOCK_STREAM;
  }

  /** Share this file's socket with `other` (a new file of another client's): the socket's wake-ups go to both. */
  share(other: ApiFile): void {
    const g = (this.group ??= new Set([this]));
    g.add(other);
    other.group = g;
    other.pipe = this.pipe;
    this.sock.sk.wake = (_sk, events) => {
      for (const f of g) f.wake(events);
    };
  }

  /** sk.wake: re-arm edge-triggered polls for `events`; run the pump and the parked calls once, soon. */
  wake(events: number): void {
    this.edgeSeen &= ~events;
    this.waiter.schedule(events);
  }
}

/**
 * The data descriptor of a stream socket: one end of a socketpair, the other
 * end with the client. Bytes the client writes are sent with the
 * socket's sendmsg; bytes TCP receives are written to it (read_sock). Each direction moves only when the
 * other side has room, so back-pressure stays with TCP's buffers.
 */
export class DataPipe {
  readonly ux = unixAddon();
  readonly #watch: unknown;
  /** Client -> TCP bytes read but not yet taken by sendmsg. */
  #up: Buffer | null = null;
  #upEof = false;
  #downEof = false;
  /** The pair took less than offered (wait for POLLOUT) / failed (the client is gone): set by #downActor. */
  #downFull = false;
  #downErr = false;
  readonly #downActor = (buf: Buffer, off: number, len: number): number => {
    const w = this.ux.write(this.fd, buf, off, len);
    if (w < 0) {
      if (w === -EAGAIN) this.#downFull = true;
      else this.#downErr = true;
      return 0;
    }
    if (w < len) this.#downFull = true;
    return w;
  };
  #closed = false;
  /**
   * Ring mode (docs/api.md "Data rings"): the bytes move through shared
   * memory and the pair carries only doorbell bytes. Every index read from
   * the mapping is the client's and checked in native/ring.h; a bad one
   * ends this socket (EFAULT), never anything else.
   */
  #ring: RingSide | null = null;
  readonly #peek = new Int32Array(2);
  /** The client's ends of the pair are all closed (a doorbell read hit EOF). */
  #bellHup = false;
  /** The pair turned readable: doorbell bytes to read. */
  #rang = false;
  /**
   * The client's end may hold bytes for us (without rings): false once a
   * read found the pair empty (EAGAIN, or a short read, which takes all a
   * stream pair holds), true again when the watch fires or a call runs the
   * pump (run()). A run for TCP's sake (tcpWake: data received, ACKed
   * room) then costs no read that would say
   * EAGAIN: one recv a message fewer each way on a request/response
   * connection, while the level-triggered watch still sees every byte.
   */
  #upReady = true;
  /** A run is due on the next turn of the loop (the ring pump ran out of budget). */
  #again = false;
  /** The down ring's room reserved for this batch, where it starts, and how much of it the batch filled. */
  #room = 0;
  #at = 0;
  #made = 0;
  /** The down ring is corrupt (its consume index): set by #ringDown. */
  #ringBad = false;
  /** RING_LEVEL: the down ring only (RingSide.level). */
  #level = false;
  /** After ts_ring_off: what the down ring held unread, written to the pair before anything TCP still holds. */
  #downPend: Buffer | null = null;
  /** After ts_ring_off: the stream's end went down the ring; the pair's write side is shut once #downPend is out. */
  #finPend = false;
  /** RING_LEVEL: the stream's end went down the ring; the pair's write side is shut once the client has read the ring empty. */
  #shutDownWhenRead = false;
  /**
   * Received bytes into the down ring: copied straight from the receive
   * queue's pages into the shared mapping, published once per batch (one
   * store, one fence, at most one doorbell), not once per segment.
   */
  readonly #ringActor = (buf: Buffer, off: number, len: number): number => {
    const view = this.#ring!.down;
    const n = Math.min(len, this.#room - this.#made);
    if (n > 0) {
      const pos = (this.#at + this.#made) & (view.length - 1);
      const first = Math.min(n, view.length - pos);
      buf.copy(view, pos, off, off + first);
      if (n > first) buf.copy(view, 0, off + first, off + n);
      this.#made += n;
    }
    if (n < len) this.#downFull = true;
    return Math.max(n, 0);
  };
  /** An error the pump took from the socket (sk_err is read once): SO_ERROR reports it. */
  error = 0;
  /**
   * The daemon's own copy of the client's end, kept while the socket is not
   * yet connected (a listener keeps it for life): with it the daemon sets
   * that end's readiness as the kernel sets a socket's, where the bytes alone
   * cannot (a pending connection on a listener, a handshake in progress).
   * Closed once the socket is connected, so the client's last close of its
   * end reads as EOF here.
   */
  #peer: number;
  /** SO_SNDBUF last set on our end (PAIR_BUF from socketPair; then min(sk_rcvbuf, PAIR_RX_BUF)). */
  #rxBuf = PAIR_BUF;
  /** The client's end is held unwritable: its send buffer is full of filler. */
  #held = false;
  /** Filler bytes at the head of our receive queue, discarded when the hold ends. */
  #filler = 0;
  /** A listener's readiness byte is waiting in the client's end. */
  #ready = false;
  /**
   * Set when the client closed the socket over the API with CLOSE_F_SHARED
   * while its end was still open (another process holds a copy after fork):
   * called once, when the last copy is closed (the pair hangs up) or the
   * connection is over, to release the socket as the kernel does at its last
   * close.
   */
  onLastClose: (() => void) | null = null;
  /** Set while a released socket still sends what its client wrote (lingering): called once that is all with TCP. */
  onDrained: (() => void) | null = null;
  readonly ops: ProtoOps;
  /**
   * `sk`: the file's socket, a TCP one (the pump follows its states);
   * `scratch`: the server's read buffer, shared by every pump (a run never
   * outlives its use of it).
   */
  constructor(readonly file: ApiFile, readonly sk: TcpSock, readonly fd: number, readonly scratch: Buffer, peer = -1, ring: RingSide | null = null) {
    this.ops = file.ops;
    this.#peer = peer;
    this.#ring = ring;
    this.#level = ring?.level === true;
    if (ring) this.ux.ringBell(ring.h, fd);
    this.#watch = this.ux.watch(fd, () => {
      this.#rang = true;
      this.#upReady = true;
      this.run();
    });
  }

  get buffered(): number {
    return (this.#up?.length ?? 0) + (this.#downPend?.length ?? 0);
  }

  /** Through a RING_LEVEL ring (ts_ring_wake, ts_ring_off apply). */
  get levelRing(): boolean {
    return this.#ring !== null && this.#level;
  }

  /**
   * ts_ring_off: back to the socketpair mid-stream (the client forks, or
   * hands the descriptor to code that reads it directly: stdio, splice).
   * What the down ring holds unread goes down the pair first, in order;
   * then the pump carries on as without rings. Returns the doorbell bytes
   * ever sent down (the client takes exactly those out of its end, so
   * none is read as data), or -errno.
   */
  ringOff(): number {
    const r = this.#ring;
    if (!r || !this.#level) return -EINVAL;
    const n = this.ux.ringUnsent(r.h, this.#peek);
    if (n < 0) {
      this.#fault();
      return -EFAULT;
    }
    const bells = this.ux.ringBells(r.h);
    if (n > 0) {
      const v = r.down;
      const at = this.#peek[0];
      const first = Math.min(n, v.length - at);
      const b = Buffer.allocUnsafe(n);
      v.copy(b, 0, at, at + first);
      if (n > first) v.copy(b, first, 0, n - first);
      this.#downPend = b;
    }
    // The stream's end already went down the ring (FIN, or an error): the pair's end follows the bytes
    // (it is shut already if the client had read them all).
    this.#finPend = this.#downEof;
    this.#shutDownWhenRead = false;
    this.#unmap();
    this.#ring = null;
    this.#level = false;
    this.run();
    return bells & 0x7fffffff;
  }

  /** Our copy of the client's end (-1 once connected): a listener keeps it for life. */
  get peerFd(): number {
    return this.#peer;
  }

  /** Through rings (the pair is the doorbell). */
  get ringed(): boolean {
    return this.#ring !== null;
  }

  /** Received bytes the client has not read yet: in the pair, or in the down ring. */
  unread(): number {
    if (this.#ring) return Math.max(0, this.ux.ringQueued(this.#ring.h, 1));
    return Math.max(0, this.ux.ioctlInt(this.fd, this.ux.SIOCOUTQ));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.ux.watchClose(this.#watch);
    this.ux.close(this.fd);
    if (this.#peer >= 0) this.ux.close(this.#peer);
    this.#peer = -1;
    this.#unmap();
    this.#ring = null; // a pooled ring serves another socket from now on
  }

  /** The daemon lets go of the client's memory: no access after this (the view is detached; a pooled ring goes back to its pool). */
  #unmap(): void {
    const r = this.#ring;
    if (!r) return;
    if (r.letGo) r.letGo(this.error === EFAULT);
    else this.ux.ringClose(r.h, r.up, r.down);
  }

  /**
   * The client wrote an index or length no ring can hold: this socket's data
   * path ends (EFAULT for SO_ERROR, FIN after what was already taken, the
   * mapping let go), and nothing else is touched.
   */
  #fault(): void {
    if (this.error !== EFAULT) this.#ring?.onFault();
    this.error = EFAULT;
    this.#up = null;
    this.#upEof = true;
    this.#downEof = true;
    this.#unmap();
    this.ux.shutdown(this.fd, SHUT_RDWR);
    // What the client wrote before is sent; then FIN, as a process that dies after its last write.
    if (this.sk.state !== TCP_CLOSE) this.ops.shutdown(this.sk, SHUT_WR);
  }

  /** One batch of received bytes into the down ring: reserve its room, copy (#ringActor), publish. */
  #ringDown(budget: number): number {
    const r = this.#ring!;
    const room = this.ux.ringReserve(r.h, this.#peek);
    if (room < 0) {
      if (room === -EPIPE) this.#downErr = true; // the client reads no more: leave the rest to TCP
      else this.#ringBad = true;
      return 0;
    }
    if (room === 0) {
      this.#downFull = true;
      return 0;
    }
    this.#room = room;
    this.#at = this.#peek[0];
    this.#made = 0;
    const n = this.ops.readSock(this.sk, this.#ringActor, Math.min(budget, room));
    if (this.#made > 0 && this.ux.ringCommit(r.h, this.#made) < 0) this.#ringBad = true;
    this.#room = 0;
    return n;
  }

  /** The client's writes fail with EPIPE from now on. */
  #shutUp(): void {
    if (this.#ring && !this.#level) this.ux.ringCloseIn(this.#ring.h);
    else this.ux.shutdown(this.fd, 0);
  }

  #runAgain(): void {
    if (this.#again) return;
    this.#again = true;
    setImmediate(() => {
      this.#again = false;
      this.file.runPipe();
    });
  }

  /**
   * Up through the ring: sendmsg reads the client's bytes in place from the
   * shared mapping (it copies them into its skbs), and only what TCP took
   * is consumed, so a full send buffer leaves the rest in the ring and the
   * client's writes meet back-pressure there. True: wait for a doorbell.
   */
  #ringUp(): boolean {
    const r = this.#ring!;
    const sk = this.sk;
    const ops = this.ops;
    const pk = this.#peek;
    let budget = PUMP_BUDGET;
    for (;;) {
      const avail = this.ux.ringPeek(r.h, pk);
      if (avail === -EFAULT || avail === -EBADF) {
        this.#fault();
        return false;
      }
      if (avail === -EAGAIN) {
        if (this.#bellHup) {
          // Every copy of the client's end is closed and it said nothing more: close() decides, as tcp_close does.
          this.#upEof = true;
          return false;
        }
        const w = this.ux.ringWait(r.h, 0);
        if (w < 0) {
          this.#fault();
          return false;
        }
        if (w === 1) continue; // bytes came as we went to sleep
        return true;
      }
      if (avail === 0) {
        // The client's FIN, after its data: FIN on the connection.
        this.#upEof = true;
        if (!(sk.shutdown & SEND_SHUTDOWN)) ops.shutdown(sk, SHUT_WR);
        return false;
      }
      if (budget <= 0) {
        this.#runAgain();
        return false;
      }
      const len = pk[1];
      const taken = ops.sendmsg(sk, r.up.subarray(pk[0], pk[0] + len), 0, null);
      if (taken > 0) {
        budget -= taken;
        if (this.ux.ringAdvance(r.h, taken) < 0) {
          this.#fault();
          return false;
        }
        if (taken === len) continue;
      }
      if (taken >= 0 || taken === -EAGAIN || taken === -EINPROGRESS) return false; // woken by write space
      // EPIPE/ECONNRESET: the client learns it from SO_ERROR; what it wrote is dropped.
      if (taken !== -EPIPE || !this.error) this.error = -taken;
      this.#upEof = true;
      this.#shutUp();
      return false;
    }
  }

  /** Read the doorbell bytes (each says only "look at the rings"); EOF: every copy of the client's end is closed. */
  #drainBells(): void {
    if (this.#bellHup) return;
    for (;;) {
      const n = this.ux.read(this.fd, this.scratch, 0, BELL_READ);
      if (n === 0) this.#bellHup = true;
      if (n < BELL_READ) return;
    }
  }

  /**
   * Make the client's end unwritable, as a socket in SYN_SENT or LISTEN is
   * to poll(2): shrink its send buffer to the minimum and fill it from our
   * copy, so the client's writes get EAGAIN (or wait) and POLLOUT is clear.
   * Only with nothing of the client's in our receive queue, since the filler
   * is later discarded by count.
   */
  hold(): void {
    if (this.#held || this.#closed || this.#peer < 0) return;
    if (this.ux.ioctlInt(this.fd, this.ux.FIONREAD) !== 0) return;
    if (this.ux.setSndbuf(this.#peer, HOLD_SNDBUF) < 0) return;
    this.#held = true;
    for (let i = 0; i < 64; i++) {
      const w = this.ux.write(this.#peer, FILLER, 0, FILLER.length);
      if (w <= 0) break;
      this.#filler += w;
    }
  }

  /** End the hold: the client's end gets its buffer back and becomes writable (POLLOUT fires). */
  #unhold(): void {
    this.#held = false;
    this.ux.setSndbuf(this.#peer, PAIR_BUF);
    const scratch = this.scratch;
    while (this.#filler > 0) {
      const n = this.ux.read(this.fd, scratch, 0, Math.min(this.#filler, scratch.length));
      if (n <= 0) break;
      this.#filler -= n;
    }
    this.#filler = 0;
  }

  /**
   * A listener's end is readable exactly while its accept queue is not
   * empty (inet_csk_listen_poll): one byte sits in the client's end then,
   * taken back through our copy when the queue empties. The client never
   * reads it; accept over the API is what empties the queue.
   */
  #listenReady(): void {
    this.hold();
    const want = this.remoteReady || (this.ops.poll(this.sk) & POLLIN) !== 0;
    if (want && !this.#ready) {
      if (this.ux.write(this.fd, READY_BYTE, 0, 1) === 1) this.#ready = true;
    } else if (!want && this.#ready) {
      this.#unready();
    }
  }

  /** A listener group's member in another shard has a connection queued (api/shard_proxy.ts): readable as if it were here. */
  remoteReady = false;

  /** Take the readiness byte back: exactly one byte, since the client's queued bytes (queued()) may sit beside it. */
  #unready(): void {
    this.ux.read(this.#peer, this.scratch, 0, 1);
    this.#ready = false;
  }

  /**
   * A listener's client took `n` connections into a queue of its own
   * (ts_accept_batch): one byte each goes into its end, beside the
   * readiness byte, so the end stays readable until the client has handed
   * them all on; the client reads one back for each (docs/api.md).
   */
  queued(n: number): void {
    if (n > 0 && this.#peer >= 0) this.ux.write(this.fd, QUEUED_BYTES, 0, Math.min(n, QUEUED_BYTES.length));
  }

  /**
   * Bytes the client wrote that TCP has not taken yet (its send buffer was
   * full): in the up ring, held back from a short send, or in the pair. A
   * kernel socket closed with data in its send queue still sends it; so does
   * a released socket here until this is false (ApiServer #release).
   */
  pendingUp(): boolean {
    if (this.#closed || this.#upEof || this.error === EFAULT || this.sk.state === TCP_CLOSE) return false;
    // A listener's or a connecting socket's pair carries no stream data (readiness bytes, at most).
    if (this.#peer >= 0 || this.sk.state === TCP_LISTEN || this.sk.state === TCP_SYN_SENT || this.sk.state === TCP_SYN_RECV) return false;
    if (this.#up) return true;
    if (this.#ring && !this.#level) return this.ux.ringQueued(this.#ring.h, 0) > 0;
    return this.ux.ioctlInt(this.fd, this.ux.FIONREAD) > 0;
  }

  /** Copies of the client's end may be open anywhere: connected (no copy of ours keeps it alive) and not hung up. */
  shared(): boolean {
    return !this.#closed && this.#peer < 0 && !this.#hungUp();
  }

  /** Every copy of the client's end is closed (the kernel set SHUTDOWN_MASK on ours: POLLHUP). */
  #hungUp(): boolean {
    const ev = this.ux.pollEvents(this.fd);
    return ev < 0 || (ev & POLLHUP) !== 0;
  }

  /**
   * Move what can move in both directions, then watch for what blocks.
   * The client's end is read whatever the watch said: a call over the API
   * (close, shutdown) can overtake the bytes written before it.
   */
  run(): void {
    this.#upReady = true;
    this.#run();
  }

  /** The socket's wake-up (data received, room, a state change): the client's end is read only if the watch said so. */
  tcpWake(): void {
    this.#run();
  }

  #run(): void {
    if (this.#closed) return;
    const sk = this.sk;
    const ops = this.ops;
    const scratch = this.scratch;
    let wantRead = false;
    let wantWrite = false;
    if (this.#peer >= 0) {
      if (sk.state === TCP_LISTEN) {
        this.#listenReady();
        this.ux.watchSet(this.#watch, 0); // a listener carries no data
        return;
      }
      if (this.#ready) this.#unready();
      if (sk.state !== TCP_SYN_SENT && sk.state !== TCP_SYN_RECV) {
        if (this.#held) this.#unhold();
        if (!(sk.state === TCP_CLOSE && !sk.done)) {
          // Connected (or its connect failed): the client's end is the client's alone.
          this.ux.close(this.#peer);
          this.#peer = -1;
        }
      }
    }
    // Only an established (or closing) connection carries data, and a deferred Fast Open connect, whose first write sends the SYN.
    const open = (sk.state !== TCP_SYN_SENT || sk.deferConnect) && sk.state !== TCP_SYN_RECV && sk.state !== TCP_LISTEN && !(sk.state === TCP_CLOSE && !sk.done);

    // The connection is over (reset, or closed both ways): the client's writes fail with EPIPE from now
    // on, and with the stream's end below its end hangs up (tcp_poll's POLLHUP in TCP_CLOSE).
    if (sk.state === TCP_CLOSE && sk.done && !this.#upEof) {
      this.#upEof = true;
      this.#up = null;
      this.#shutUp();
    }

    if (this.#ring && this.#rang && !this.#level) {
      this.#rang = false;
      this.#drainBells();
    }
    // Up: client -> TCP (through the pair with RING_LEVEL).
    if (open && !this.#upEof && this.#ring && !this.#level) {
      wantRead = this.#ringUp();
      if (this.error === EFAULT) return;
    } else if (open && !this.#upEof) {
      let budget = PUMP_BUDGET;
      for (;;) {
        if (this.#up) {
          const n = ops.sendmsg(sk, this.#up, 0, null);
          // Woken by write space, or by the handshake a Fast Open write started without taking data (EINPROGRESS).
          if (n === -EAGAIN || n === -EINPROGRESS) break;
          if (n < 0) {
            // EPIPE/ECONNRESET: the client learns it from SO_ERROR; what it wrote is dropped.
            if (n !== -EPIPE || !this.error) this.error = -n;
            this.#up = null;
            this.#upEof = true;
            this.#shutUp();
            break;
          }
          this.#up = n === this.#up.length ? null : this.#up.subarray(n);
          if (this.#up) break;
        }
        if (budget <= 0 || !this.#upReady) {
          wantRead = true;
          break;
        }
        const n = this.ux.read(this.fd, scratch, 0, scratch.length);
        if (n === -EAGAIN) {
          this.#upReady = false;
          wantRead = true;
          break;
        }
        if (n > 0 && n < scratch.length) this.#upReady = false;
        if (n <= 0) {
          // EOF. The client shut its side: FIN after the data. Its last copy closed instead (our
          // end hangs up): close() decides, FIN or RST (SO_LINGER 0, unread data), as tcp_close does.
          // Once our own side is shut (the peer's FIN went down) a hang-up cannot tell the two apart:
          // FIN then, as before.
          this.#upEof = true;
          const closed = !this.#downEof && this.#hungUp();
          if (!(sk.shutdown & SEND_SHUTDOWN) && !closed) ops.shutdown(sk, SHUT_WR);
          break;
        }
        budget -= n;
        const taken = ops.sendmsg(sk, scratch.subarray(0, n), 0, null);
        if (taken === n) continue;
        const from = taken > 0 ? taken : 0;
        if (taken < 0 && taken !== -EAGAIN && taken !== -EINPROGRESS) {
          if (taken !== -EPIPE || !this.error) this.error = -taken;
          this.#upEof = true;
          this.#shutUp();
          break;
        }
        this.#up = Buffer.from(scratch.subarray(from, n));
        break;
      }
    } else if (!open && !this.#upEof) {
      wantRead = false; // nothing moves until the handshake is done
    }

    // Down: TCP -> client, written to the pair straight from the receive
    // queue's pages (tcp_read_sock, as splice does): no copy of ours, and
    // what the pair cannot take yet stays in TCP's queue (and its window).
    if (this.#downPend) {
      // ts_ring_off's bytes, ahead of anything TCP still holds.
      const p = this.#downPend;
      const w = this.ux.write(this.fd, p, 0, p.length);
      if (w === p.length) this.#downPend = null;
      else if (w >= 0 || w === -EAGAIN) {
        this.#downPend = p.subarray(Math.max(w, 0));
        wantWrite = true;
      } else {
        this.#downPend = null; // the client's end is gone
        this.#downEof = true;
      }
    }
    if (!this.#downPend && this.#finPend) {
      this.#finPend = false;
      this.ux.shutdown(this.fd, 1);
    }
    if (!this.#downEof && !this.#downPend) {
      const want = Math.min(Math.max(sk.rcvbuf, PAIR_RX_MIN), PAIR_RX_BUF);
      if (open && want !== this.#rxBuf && this.ux.setSndbuf(this.fd, want) === 0) this.#rxBuf = want;
      let budget = PUMP_BUDGET;
      this.#downFull = false;
      this.#downErr = false;
      for (;;) {
        const n = this.#ring ? this.#ringDown(budget) : ops.readSock(sk, this.#downActor, budget);
        if (this.#ringBad) return this.#fault();
        if (this.#downErr) {
          this.#downEof = true;
          break;
        }
        if (this.#downFull) {
          if (this.#ring) {
            // The client consumes as it likes: it rings once it made room after we said we wait (NEED_SPACE).
            this.#downFull = false;
            const w = this.ux.ringWait(this.#ring.h, 1);
            if (w < 0) return this.#fault();
            if (w === 1 && budget > 0) continue;
            if (w === 1) this.#runAgain();
          }
          wantWrite = true;
          break;
        }
        if (n > 0) {
          budget -= n;
          if (budget > 0) continue; // more may have come, or the end of the stream
          this.file.wake(POLLIN); // out of budget: go on after others had their turn
          break;
        }
        if (n === -EAGAIN || (n === -ENOTCONN && !sk.done)) break; // nothing yet / not connected yet
        if (n < 0) this.error = -n;
        this.#downEof = true;
        // The client reads EOF; errors come by SO_ERROR.
        if (this.#ring) this.ux.ringFin(this.#ring.h);
        else this.ux.shutdown(this.fd, 1);
        // RING_LEVEL: the descriptor's own end of stream too (POLLRDHUP, and POLLHUP once the up side is
        // shut), once the client has read what the ring holds: ts_ring_off may still need the pair for it.
        if (this.#ring && this.#level) this.#shutDownWhenRead = true;
        break;
      }
    }
    // RING_LEVEL: a byte for a client that asks for one while the down ring holds data (or its end).
    if (this.#ring && this.#level) {
      this.ux.ringKick(this.#ring.h);
      if (this.#shutDownWhenRead && this.ux.ringUnsent(this.#ring.h, this.#peek) === 0) {
        this.#shutDownWhenRead = false;
        this.ux.shutdown(this.fd, 1);
      }
    }
    // Through rings both waits are for a doorbell byte (data, or room); none comes once the client's ends are closed.
    // RING_LEVEL: the up direction waits on the pair as without rings, room in the down ring comes by ts_ring_wake.
    const ev = this.#ring && !this.#level
      ? (wantRead || wantWrite) && !this.#bellHup ? this.ux.UV_READABLE : 0
      : (wantRead ? this.ux.UV_READABLE : 0) | (wantWrite && !this.#ring ? this.ux.UV_WRITABLE : 0);
    this.ux.watchSet(this.#watch, ev);
    if (this.onLastClose && (sk.state === TCP_CLOSE || ((this.#upEof || this.#downEof) && this.#hungUp()))) {
      const last = this.onLastClose;
      this.onLastClose = null; // release runs this pump once more
      last();
    }
    if (this.onDrained && !this.pendingUp()) {
      const drained = this.onDrained;
      this.onDrained = null;
      drained();
    }
  }
}

// --- datagram sockets ---------------------------------------------------------------

/**
 * SO_SNDBUF/SO_RCVBUF first set on each end of a datagram socket's
 * SOCK_SEQPACKET pair (the kernel doubles it): one largest datagram and its
 * header fit. From then on the daemon's end follows the socket's SO_RCVBUF
 * (dgramPairSndbuf), never below this.
 */
export const DGRAM_PAIR_BUF = 96 * 1024;

/**
 * The SO_SNDBUF to set on the daemon's end of a datagram pair for a socket
 * whose sk_rcvbuf is `rcvbuf`: half of it, as the kernel doubles what is
 * set, so the pair holds what the socket's own buffer would (the program
 * sees at least the room its SO_RCVBUF asked for: Linux keeps that much
 * unread), and never less than DGRAM_PAIR_BUF.
 */
export function dgramPairSndbuf(rcvbuf: number): number {
  return Math.max(DGRAM_PAIR_BUF, rcvbuf >>> 1);
}
/** Datagrams one pump run moves each way before yielding. */
export const DGRAM_PUMP_BUDGET = 256;
/** Datagrams one sendmmsg takes at most (the addon's limit). */
export const DGRAM_BATCH = 64;
/** The batch's arena: a message is added while it fits (one largest datagram, its header and control messages always do). */
const DGRAM_ARENA = 256 * 1024;
/** The most a message's header takes: u16 addrlen, the largest sockaddr, u16 ctllen, the control messages. */
const DGRAM_HDR_MAX = 2 + 28 + 2 + API_MAX_CONTROL;

/**
 * The batch a datagram pump builds in one run and writes with one
 * sendmmsg: shared by every pump (a run writes its batch before it ends,
 * so none outlives its run; what the pair refused moves to the pump).
 */
class DgramBatch {
  readonly buf = Buffer.allocUnsafe(DGRAM_ARENA);
  readonly ends = new Uint32Array(DGRAM_BATCH);
  count = 0;
  used = 0;
}
let dgramBatch: DgramBatch | null = null;
/** The header's u16 in a descriptor message that carries an errno instead of a datagram. */

/**
 * The data descriptor of a datagram socket: one end of a SOCK_SEQPACKET
 * pair, so each message is one datagram and boundaries hold. Every message
 * is `u16 addrlen, sockaddr, payload` (docs/api.md): down, each received
 * datagram with its source; up, addrlen 0 sends to the connected peer,
 * otherwise to the address (sendto). An error (ECONNREFUSED kept by the
 * socket, or a send the stack refused) goes down in-band as
 * `u16 0xffff, i32 errno`, read once as the next receive call would on
 * Linux. Datagrams leave the stack's receive queue only when the pair
 * takes them, so a client that does not read fills SO_RCVBUF and the stack
 * drops (UdpRcvbufErrors), as a kernel socket does.
 */
export class DgramPipe {
  readonly ux = unixAddon();
  readonly #watch: unknown;
  #closed = false;
  #upEof = false;
  /** The client's end is gone for reading: datagrams stay in the stack (and its buffer limits them). */
  #downDead = false;
  /** The pair took less than a whole batch: wait for POLLOUT. */
  #downFull = false;
  /**
   * Messages of a batch the pair refused (it filled meanwhile), already
   * off the stack's queue: written first when the pair has room, and no
   * datagram is taken from the stack until they are. At most one batch;
   * charged to the client as the daemon's memory (buffered).
   */
  #pend: Buffer | null = null;
  #pendEnds: Uint32Array | null = null;
  /** In-band errors waiting for room in the pair. */
  #errs: number[] = [];
  /** The API's SO_ERROR view of an error the pump could not yet deliver. */
  error = 0;
  readonly #errMsg = Buffer.alloc(6);
  /** The events the watch was last set to (-1: never): watchSet re-arms the poll (an epoll_ctl), so only on a change. */
  #mask = -1;
  /**
   * The client's end may hold messages for us: set when the watch reports it
   * readable, cleared when a read finds nothing. A run the socket's wake-up
   * started (a datagram came in) then costs no read that would only say
   * EAGAIN: the watch stays armed for readable meanwhile.
   */
  #upReady = true;
  /** SO_SNDBUF last set on our end (dgramPairSndbuf of the socket's SO_RCVBUF). */
  #sndbuf = DGRAM_PAIR_BUF;
  /**
   * Each received datagram goes down as one message: its source, its
   * control messages when it has any (IP_PKTINFO, ...: DGRAM_F_CMSG in
   * addrlen, then u16 length and the kernel's cmsg layout), its payload.
   * It joins the run's batch (taken off the stack's queue); a full batch is
   * written first, and if the pair refused part of it, the walk stops here.
   */
  readonly #downActor = (buf: Buffer, off: number, len: number, from?: SockAddr, cmsgs?: readonly Cmsg[]): number => {
    const b = (dgramBatch ??= new DgramBatch());
    if (b.count === DGRAM_BATCH || b.used + DGRAM_HDR_MAX + len > DGRAM_ARENA) this.#flush(b);
    if (this.#downFull || this.#downDead) return 0;
    const out = b.buf;
    const o = b.used;
    let h = o + sockaddrWrite(out, o, from!);
    if (cmsgs && cmsgs.length) {
      const ctl = cmsgPut(cmsgs, API_MAX_CONTROL).buf;
      out.writeUInt16LE(out.readUInt16LE(o) | DGRAM_F_CMSG, o);
      out.writeUInt16LE(ctl.length, h);
      ctl.copy(out, h + 2);
      h += 2 + ctl.length;
    }
    out.set(buf.subarray(off, off + len), h);
    b.used = h + len;
    b.ends[b.count++] = b.used;
    return len;
  };

  /** Write the run's batch in one sendmmsg; what the pair did not take waits in #pend. */
  #flush(b: DgramBatch | null): void {
    if (!b?.count) return;
    const w = this.ux.writeMsgs(this.fd, b.buf, b.ends, b.count);
    if (w !== b.count) {
      if (w < 0 && w !== -EAGAIN) {
        this.#downDead = true; // the client's end is gone: what the batch held is dropped with it
      } else {
        const k = w < 0 ? 0 : w;
        const from = k ? b.ends[k - 1] : 0;
        this.#pend = Buffer.from(b.buf.subarray(from, b.used));
        this.#pendEnds = b.ends.slice(k, b.count).map((e) => e - from);
        this.#downFull = true;
      }
    }
    b.count = 0;
    b.used = 0;
  }

  /** Write what the pair refused before; true when all of it went. */
  #flushPending(): boolean {
    const pend = this.#pend!;
    const ends = this.#pendEnds!;
    let w = 0;
    for (let i = 0; i < ends.length && w >= 0; i += DGRAM_BATCH) {
      const base = i ? ends[i - 1] : 0;
      const part = ends.subarray(i, i + DGRAM_BATCH).map((e) => e - base);
      w = this.ux.writeMsgs(this.fd, pend.subarray(base), part, part.length);
      if (w === part.length) continue;
      if (w < 0 && w !== -EAGAIN) {
        this.#downDead = true;
        this.#pend = this.#pendEnds = null;
        return false;
      }
      const k = i + Math.max(w, 0);
      const from = ends[k - 1] ?? 0;
      this.#pend = Buffer.from(pend.subarray(from));
      this.#pendEnds = ends.slice(k).map((e) => e - from);
      return false;
    }
    this.#pend = this.#pendEnds = null;
    return true;
  }
  constructor(readonly file: ApiFile, readonly fd: number, readonly scratch: Buffer) {
    this.#watch = this.ux.watch(fd, (events) => {
      if (events & this.ux.UV_READABLE) this.#upReady = true;
      this.run();
    });
  }

  get buffered(): number {
    return this.#pend?.length ?? 0;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pend = this.#pendEnds = null;
    this.ux.watchClose(this.#watch);
    this.ux.close(this.fd);
  }

  /** Queue an errno for the client's next read of the descriptor. */
  #fail(errno: number): void {
    if (this.#errs.length < 16) this.#errs.push(errno);
  }

  run(): void {
    if (this.#closed) return;
    const { sk, ops } = this.file;
    const scratch = this.scratch;
    let wantRead = false;
    let wantWrite = false;
    // Up: each message is one datagram to send.
    if (!this.#upEof && !this.#upReady) wantRead = true;
    else if (!this.#upEof) {
      for (let i = 0; ; i++) {
        if (i >= DGRAM_PUMP_BUDGET) {
          wantRead = true;
          break;
        }
        const n = this.ux.read(this.fd, scratch, 0, scratch.length);
        if (n === -EAGAIN) {
          wantRead = true;
          this.#upReady = false;
          break;
        }
        if (n <= 0) {
          this.#upEof = true; // the client closed its end; the socket lives until close over the API
          break;
        }
        if (n < 2) {
          this.#fail(EINVAL);
          continue;
        }
        const alen = scratch.readUInt16LE(0);
        let to: SockAddr | null = null;
        if (alen) {
          if (2 + alen > n) {
            this.#fail(EINVAL);
            continue;
          }
          try {
            to = sockaddrDecode(scratch.subarray(2, 2 + alen));
          } catch (e) {
            this.#fail(e instanceof ArgError ? e.errno : EINVAL);
            continue;
          }
        }
        const rc = ops.sendmsg(sk, scratch.subarray(2 + alen, n), 0, to);
        if (rc < 0) this.#fail(-rc);
      }
    }
    // Down: errors first (as udp_recvmsg reports sk_err first), then datagrams while the pair takes them.
    if (sk.err && this.#errs.length < 16) this.#errs.push(sockError(sk));
    const hdr = this.#errMsg;
    while (this.#errs.length) {
      hdr.writeUInt16LE(DGRAM_ERR_MARK, 0);
      hdr.writeInt32LE(this.#errs[0], 2);
      const w = this.ux.write(this.fd, hdr, 0, 6);
      if (w === -EAGAIN) {
        wantWrite = true;
        break;
      }
      this.#errs.shift();
    }
    this.error = this.#errs.length ? this.#errs[0] : 0;
    if (!wantWrite && !this.#downDead) {
      // The pair holds what the socket's SO_RCVBUF allows (set or default), as the socket's queue does.
      const want = dgramPairSndbuf(sk.rcvbuf);
      if (want !== this.#sndbuf && this.ux.setSndbuf(this.fd, want) === 0) this.#sndbuf = want;
      this.#downFull = false;
      if (this.#pend && !this.#flushPending()) {
        if (!this.#downDead) wantWrite = true;
      } else if (!this.#downDead) {
        // A batch another run left (a bug thrown mid-walk) is never written to this client's pair.
        if (dgramBatch) dgramBatch.count = dgramBatch.used = 0;
        const n = ops.readSock(sk, this.#downActor, DGRAM_PUMP_BUDGET);
        this.#flush(dgramBatch);
        if (this.#downFull) wantWrite = true;
        // Budget spent with datagrams maybe left: another run after this one.
        else if (n === DGRAM_PUMP_BUDGET && !this.#downDead) this.file.wake(POLLIN);
      }
    }
    const ev = (wantRead ? this.ux.UV_READABLE : 0) | (wantWrite ? this.ux.UV_WRITABLE : 0);
    if (ev !== this.#mask) {
      this.#mask = ev;
      this.ux.watchSet(this.#watch, ev);
    }
  }
}
