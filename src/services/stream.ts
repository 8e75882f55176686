/**
 * The glue between the built-in services and the socket calls: a listener
 * that accepts, and a Stream per accepted connection driven by the socket's
 * wake-ups. The socket calls never block, so this is the loop a blocking
 * inetd server would run, turned inside out:
 *
 *  - A wake-up only notes that something changed and schedules one run of
 *    the connection (a microtask). Wake-ups fire from inside packet
 *    processing and timers; reading, writing or closing there would act on
 *    the socket in the middle of the engine's own work on it. Linux runs the
 *    reader in process context, after the softirq is done with the socket;
 *    the microtask is that.
 *  - A write the socket does not take whole keeps its remainder pending (a
 *    view, not a copy: the service leaves those bytes alone until onDrain)
 *    and nothing more is written until a POLLOUT wake-up. One pending chunk
 *    per connection, never a queue.
 *  - Reads go where the service says (readInto) and only when it says: a
 *    service that cannot write does not read, so the data waits in the
 *    socket and the peer's window closes instead of our memory growing.
 *  - Whatever a service throws is caught here: the connection is counted
 *    and aborted, the daemon carries on (input from the network is never
 *    trusted to be well-formed).
 */
import type { Stack } from '../net/stack.js';
import { Timer, type TimeSource } from '../lib/time.js';
import { SockWaiter, TCP_CLOSE, sockAddr, sockOptInt } from '../net/core/sock.js';
import { Socket, socketSetsockopt } from '../net/socket.js';
import { AF_INET6, EAGAIN, SHUT_WR, SOCK_STREAM, SOL_SOCKET, SO_REUSEADDR } from '../uapi.js';
import type { StackLog } from '../net/core/net.js';

/** What a service does with a connection. Every hook may throw; the stream aborts the connection if one does. */
export interface StreamApp {
  /** The connection is accepted: write a greeting, start producing. */
  onOpen?(s: Stream): void;
  /** Where the next read goes, or null to leave the data in the socket for now. */
  readInto(s: Stream): Uint8Array | null;
  /** `n` bytes were read into the start of the buffer readInto returned. */
  onData(s: Stream, buf: Uint8Array, n: number): void;
  /** Every byte written has been taken by the socket (after a write returned false): write more. */
  onDrain?(s: Stream): void;
  /** The peer sent FIN (all its data has been read). Without this hook the stream ends our side too. */
  onEnd?(s: Stream): void;
  /** The connection is finished (closed by us, reset, or the service stopped); `err` is a positive errno or 0. */
  onClose?(s: Stream, err: number): void;
}

/** Per-service counters, shown on the status page. */
export class ServiceStats {
  accepted = 0;
  active = 0;
  closed = 0;
  /** Connections that ended in an error (reset by the peer, a failed write). */
  resets = 0;
  /** Connections aborted because the service threw (a bug, or input it could not handle). */
  errors = 0;
  /** Accepted over maxConnections and closed at once. */
  refused = 0;
  bytesIn = 0;
  bytesOut = 0;
}

export interface StreamOptions {
  /** Close a connection that reads and writes nothing for this long (ms); 0 = never. */
  idleMs?: number;
  /** After our FIN (end() before the peer's), read and drop the peer's data for at most this long (ms), then close. */
  lingerMs?: number;
}

/** Reads nobody wants (discard, chargen's input, lingering close) land here; one buffer for every connection. */
export const SCRATCH = new Uint8Array(16384);

/** A run does at most this many reads and writes before it yields to the event loop (fairness, and a guard against a socket that always says "more"). */
const RUN_BUDGET = 256;

const OPEN = 0;
/** Our FIN is out (end() done before the peer's FIN): reading and dropping until EOF or the linger timeout. */
const LINGER = 1;
const DEAD = 2;

export class Stream {
  /** Bytes read from and written to (taken by) the socket. */
  bytesIn = 0;
  bytesOut = 0;
  #state = OPEN;
  #pending: Uint8Array | null = null;
  #pendingFlags = 0;
  #needDrain = false;
  /** The socket refused bytes in this run: it takes no more before the next wake-up (POLLOUT). */
  #sendBlocked = false;
  #endRequested = false;
  #eof = false;
  readonly #waiter = new SockWaiter(() => this.#runOnce());
  #running = false;
  #lastActive: number;
  readonly #timer: Timer;
  #timerFor = 0;

  constructor(
    readonly time: TimeSource,
    /** The connection (a socket made in the daemon, as sock_create_kern makes one). */
    readonly sock: Socket,
    readonly app: StreamApp,
    readonly stats: ServiceStats,
    readonly opts: StreamOptions,
    readonly log: StackLog,
    readonly onFinish: (s: Stream) => void,
  ) {
    this.#lastActive = this.#now();
    this.#timer = new Timer(() => this.#timeout());
    sock.sk.wake = this.#waiter.wake;
    if (opts.idleMs) this.#arm(opts.idleMs);
  }

  #now(): number {
    return this.time.clock.now();
  }

  /** Bytes are waiting for the socket to take them. */
  get blocked(): boolean {
    return this.#pending !== null;
  }

  get closed(): boolean {
    return this.#state === DEAD;
  }

  /** The peer has sent FIN. */
  get eof(): boolean {
    return this.#eof;
  }

  /** Start: the service's greeting, then whatever the socket already holds (data may have come with the handshake's ACK). */
  start(): void {
    this.#guard(() => this.app.onOpen?.(this));
    this.#schedule();
  }

  /**
   * Write `data` (MSG_* flags, e.g. MSG_MORE). True if the socket took all
   * of it; false if some is pending (the caller keeps those bytes unchanged
   * and writes nothing more until onDrain) or the connection failed.
   */
  write(data: Uint8Array, flags = 0): boolean {
    if (this.#state !== OPEN || this.#endRequested) return false;
    if (this.#pending) throw new Error('write while blocked');
    if (!data.length) return true;
    return this.#send(data, flags);
  }

  /** Finish our side once everything written has gone to the socket: close if the peer is done too, else FIN and linger. */
  end(): void {
    if (this.#state !== OPEN) return;
    this.#endRequested = true;
    this.#schedule();
  }

  /** close(2): FIN after what was written (RST if unread data is left, as Linux does). */
  close(): void {
    if (this.#state === DEAD) return;
    this.#finish(0, false);
  }

  /** Abort with a RST (SO_LINGER 0, then close). */
  abort(): void {
    if (this.#state === DEAD) return;
    this.#finish(0, true);
  }

  #send(data: Uint8Array, flags: number): boolean {
    const n = this.sock.ops.sendmsg(this.sock.sk, data, flags, null);
    if (n === data.length) {
      this.#took(n);
      return true;
    }
    if (n >= 0 || n === -EAGAIN) {
      const took = n > 0 ? n : 0;
      this.#took(took);
      // The socket set SOCK_NOSPACE: a POLLOUT wake-up follows once room frees.
      this.#pending = data.subarray(took);
      this.#pendingFlags = flags;
      this.#sendBlocked = true;
      this.#needDrain = true;
      return false;
    }
    this.#finish(-n, false);
    return false;
  }

  #took(n: number): void {
    if (!n) return;
    this.bytesOut += n;
    this.stats.bytesOut += n;
    this.#lastActive = this.#now();
  }

  #schedule(): void {
    if (this.#state !== DEAD) this.#waiter.schedule();
  }

  #runOnce(): void {
    if (this.#running || this.#state === DEAD) return;
    this.#running = true;
    this.#sendBlocked = false;
    try {
      this.#run();
    } catch (e) {
      this.#crashed(e);
    } finally {
      this.#running = false;
    }
  }

  #run(): void {
    for (let budget = RUN_BUDGET; budget > 0; budget--) {
      if (this.#state === DEAD) return;
      // Writes first: what is pending, then more from the service.
      if (this.#pending) {
        if (this.#sendBlocked) {
          // Fall through to reading.
        } else {
          const p = this.#pending;
          this.#pending = null;
          const all = this.#send(p, this.#pendingFlags);
          if (this.#state === DEAD) return;
          if (all) continue;
          // Still blocked: reading goes on only if the service wants it.
        }
      } else if (this.#needDrain) {
        this.#needDrain = false;
        if (this.#state === OPEN && !this.#endRequested) this.app.onDrain?.(this);
        continue;
      } else if (this.#endRequested && this.#state === OPEN) {
        this.#endRequested = false;
        if (this.#eof) {
          this.#finish(0, false);
          return;
        }
        this.#state = LINGER;
        this.sock.ops.shutdown(this.sock.sk, SHUT_WR);
        if (this.opts.lingerMs) this.#arm(this.opts.lingerMs);
        continue;
      }
      // Then reads, where the service wants them.
      const into = this.#eof ? null : this.#state === LINGER ? SCRATCH : this.app.readInto(this);
      if (into && into.length) {
        const n = this.sock.ops.recvmsg(this.sock.sk, into, 0, null, true);
        if (n > 0) {
          this.bytesIn += n;
          this.stats.bytesIn += n;
          this.#lastActive = this.#now();
          if (this.#state === OPEN) this.app.onData(this, into, n);
          continue;
        }
        if (n === 0) {
          this.#eof = true;
          if (this.#state === LINGER) {
            this.#finish(0, false);
            return;
          }
          if (this.app.onEnd) this.app.onEnd(this);
          else this.end();
          continue;
        }
        if (n !== -EAGAIN) {
          this.#finish(-n, false);
          return;
        }
      }
      // Nothing more to do now. A reset while the service reads nothing and
      // writes nothing must still end the connection.
      const sk = this.sock.sk;
      if (sk.state === TCP_CLOSE && (sk.err || !into)) this.#finish(sk.err || 0, false);
      return;
    }
    // Out of budget with work left: let the event loop breathe, then go on.
    setImmediate(this.#resume);
  }

  readonly #resume = (): void => this.#schedule();

  #crashed(e: unknown): void {
    this.stats.errors++;
    this.log.warn({ err: e instanceof Error ? e.message : String(e), port: this.sock.sk.num, peer: this.sock.sk.dport }, 'service error; connection aborted');
    this.#finish(0, true);
  }

  /** Run a service hook; a throw aborts the connection. */
  #guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#crashed(e);
    }
  }

  #arm(ms: number): void {
    this.#timerFor = ms;
    this.time.timers.mod(this.#timer, this.#now() + ms);
  }

  #timeout(): void {
    if (this.#state === DEAD) return;
    if (this.#state === LINGER) {
      this.#finish(0, false);
      return;
    }
    // Idle: re-arm for the rest of the period if there was activity since.
    const idle = this.#now() - this.#lastActive;
    if (idle < this.#timerFor) {
      this.time.timers.mod(this.#timer, this.#now() + this.#timerFor - idle);
      return;
    }
    // Blocked that long means the peer stopped reading: abort rather than wait for the write queue.
    this.#finish(0, this.#pending !== null);
  }

  /** The end: release the socket (FIN, or RST when aborting), tell the service, forget the connection. */
  #finish(err: number, rst: boolean): void {
    if (this.#state === DEAD) return;
    this.#state = DEAD;
    this.#pending = null;
    this.time.timers.del(this.#timer);
    this.#waiter.cancel();
    const sk = this.sock.sk;
    sk.wake = null;
    if (rst) sk.lingerSec = 0;
    this.sock.ops.release(sk);
    const st = this.stats;
    st.active--;
    st.closed++;
    if (err) st.resets++;
    try {
      this.app.onClose?.(this, err);
    } catch (e) {
      st.errors++;
      this.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'service error in close');
    }
    this.onFinish(this);
  }
}

/** Warnings at most once a second, with a count of those dropped: a flood of bad connections must not become a flood of log lines. */
export function rateLimitedLog(log: StackLog, now: () => number): StackLog {
  let last = -Infinity;
  let suppressed = 0;
  return {
    debug: (o, m) => log.debug(o, m),
    info: (o, m) => log.info(o, m),
    warn: (o, m) => {
      const t = now();
      if (t - last < 1000) {
        suppressed++;
        return;
      }
      last = t;
      log.warn(suppressed ? { ...o, suppressed } : o, m);
      suppressed = 0;
    },
  };
}

export interface ListenOptions extends StreamOptions {
  /** Listen backlog (clamped by somaxconn). */
  backlog?: number;
  /** Connections beyond this are accepted and closed at once. */
  maxConnections?: number;
}

/** A listening socket that turns every accepted connection into a Stream for `factory`'s app. */
export class StreamListener {
  readonly stats = new ServiceStats();
  readonly streams = new Set<Stream>();
  readonly sock: Socket;
  readonly #waiter = new SockWaiter(() => this.#acceptAll());
  #stopped = false;
  readonly #time: TimeSource;
  readonly log: StackLog;

  /** Bind and listen on `port` (all addresses, both families); throws with the errno if the port cannot be had. */
  constructor(
    stack: Stack,
    readonly name: string,
    readonly port: number,
    readonly factory: () => StreamApp,
    readonly opts: ListenOptions,
    log: StackLog,
  ) {
    this.#time = stack.time;
    this.log = rateLimitedLog(log, () => stack.time.clock.now());
    // [::] with IPV6_V6ONLY=0, as a Linux server listens by default: IPv6 and (v4-mapped) IPv4 alike.
    const sock = stack.families.create(AF_INET6, SOCK_STREAM, 0, 0);
    if (typeof sock === 'number') throw Object.assign(new Error(`${name}: no TCP socket (errno ${-sock})`), { errno: -sock });
    const { sk, ops } = sock;
    socketSetsockopt(sock, SOL_SOCKET, SO_REUSEADDR, sockOptInt(1));
    const any = sockAddr(AF_INET6);
    any.port = port;
    let rc = ops.bind(sk, any, true);
    if (rc === 0) rc = ops.listen(sk, opts.backlog ?? 128);
    if (rc !== 0) {
      ops.release(sk);
      throw Object.assign(new Error(`${name}: cannot listen on TCP port ${port} (errno ${-rc})`), { errno: -rc });
    }
    this.sock = sock;
    sk.wake = this.#waiter.wake;
  }

  #acceptAll(): void {
    const { sk, ops } = this.sock;
    while (!this.#stopped) {
      const child = ops.accept(sk);
      if (typeof child === 'number') return;
      const st = this.stats;
      st.accepted++;
      if (this.streams.size >= (this.opts.maxConnections ?? Infinity)) {
        st.refused++;
        ops.release(child);
        continue;
      }
      st.active++;
      let app: StreamApp;
      try {
        app = this.factory();
      } catch (e) {
        st.active--;
        st.errors++;
        this.log.warn({ service: this.name, err: e instanceof Error ? e.message : String(e) }, 'service error at accept');
        ops.release(child);
        continue;
      }
      const s = new Stream(this.#time, new Socket(child, ops), app, st, this.opts, this.log, (x) => this.streams.delete(x));
      this.streams.add(s);
      s.start();
    }
  }

  /** Close the listener (pending children are reset) and every connection. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#waiter.cancel();
    this.sock.sk.wake = null;
    this.sock.ops.release(this.sock.sk);
    for (const s of [...this.streams]) s.close();
  }
}
