/**
 * The syscall API: a UNIX stream socket where each connection is one client
 * process with its own descriptor table (docs/api.md is the protocol).
 *
 * Each call has a small handler in one table by call number; every socket
 * call goes through the socket's operations (src/net/socket.ts, proto_ops
 * per family and type), as the kernel calls sock->ops->connect: the calls
 * know no protocol (only a stream's data descriptor follows TCP's states,
 * files.ts). Addresses cross in the one sockaddr codec of proto.ts.
 *
 * The stack's socket calls never block. A call that
 * would block here parks on the socket's wait queue, the way a process
 * sleeps in sk_wait_event(): the socket's wake-up (sk_data_ready,
 * sk_write_space, sk_state_change) retries every parked call once, in a
 * microtask after the engine is done with the socket, and a timer from the
 * stack's own timer heap enforces SO_RCVTIMEO/SO_SNDTIMEO. An idle parked
 * call is an object in a list: no polling, no per-call setTimeout.
 *
 * Clients are isolated: descriptors are per client, credentials come from
 * SO_PEERCRED, and whatever a client sends (malformed frames, impossible
 * lengths, bad addresses, other clients' descriptor numbers) ends in an
 * errno reply or, for a corrupt stream, the end of that client only.
 */
import { readlinkSync } from 'node:fs';
import type { Stack } from '../net/stack.js';
import { Timer } from '../lib/time.js';
import { TcpSock } from '../net/ipv4/tcp_sock.js';
import { MsgHdr, type Sock, sockAddr, sockOptInt, TCP_LISTEN, TCP_SYN_SENT } from '../net/core/sock.js';
import { Socket, socketGetsockopt, socketSetsockopt } from '../net/socket.js';
import { API_MAX_CONTROL, API_MAX_IO, API_MAX_POLL, ArgError, ArgReader, ACCEPT_BATCH_F_QUEUE, ACCEPT_BATCH_F_RINGS, ACCEPT_BATCH_MAX, CLOSE_F_NOREPLY, CLOSE_F_SHARED, cmsgPut, FRAME_F_RING_SLOT, HDR_LEN, SYS, SYS_NAMES } from './proto.js';
import { sockZerocopyDone } from '../net/core/errqueue.js';
import { ApiAdmin } from './admin.js';
import type { TcpCongModules } from '../net/ipv4/tcp_cong_module.js';
import { ApiListener } from './listen.js';
import { ApiMem } from './mem.js';
import { UnixConn, unixAddon } from './unix.js';
import { ringFor } from './ring_pool.js';
import { ApiFile, DataPipe, DGRAM_PAIR_BUF, DgramPipe, PAIR_BUF, type ApiCaller, type Body, type Outcome, type Parked } from './files.js';
import { EAGAIN, EBADF, EINPROGRESS, ECONNABORTED, EINVAL, EMFILE, ENOBUFS, ENOPROTOOPT, ENOSYS, EPERM, EOPNOTSUPP, EPOLLET, F_GETFD, F_GETFL, F_SETFD, F_SETFL, FD_CLOEXEC, FIONBIO, FIONREAD, IPPROTO_TCP, MSG_DONTWAIT, MSG_FASTOPEN, MSG_MORE, MSG_PEEK, MSG_WAITALL, O_NONBLOCK, O_RDWR, POLLERR, POLLHUP, POLLNVAL, SO_ERROR, MSG_ERRQUEUE, MSG_ZEROCOPY, AF_UNSPEC, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_SEQPACKET, SOL_SOCKET, TCP_INQ, type SockAddr } from '../uapi.js';
import type { StackLog } from '../net/core/net.js';
import { ApiClient, ApiMib, ApiTurns, type ApiHost, runForClient } from './conn.js';

// What the tests and the daemon import from here.
export { API_MEM_FLOOR, ApiClient, ApiMib, INPUT_BUDGET_BYTES, INPUT_BUDGET_FRAMES, INPUT_BUDGET_TURN } from './conn.js';

export interface ApiOptions {
  path: string;
  /** Group owning the socket (mode 0660), or null to leave it root's. */
  gid: number | null;
  /** Members of this group may bind ports below 1024 as uid 0 may. */
  lowPortGid: number | null;
  /** Sockets one client may hold (EMFILE beyond). */
  maxSockets: number;
  /** Memory one client's queued replies may hold (truesize) before the daemon stops reading it. */
  maxBuffered: number;
  /** Memory all clients together may hold (replies and partial requests); past it, clients holding more than API_MEM_FLOOR wait. */
  maxBufferedTotal: number;
}

export const API_DEFAULTS = { maxSockets: 4096, maxBuffered: 64 * 1024 * 1024, maxBufferedTotal: 256 * 1024 * 1024 };

export { RESERVE_IDLE_MS } from './mem.js';
export { ACCEPT_BACKOFF_MS, ACCEPT_LOG_MS } from './listen.js';
/** The read buffer all clients share: a read's bytes are handled, or copied out, before the next read. */
const API_READ_BUF = 256 * 1024;

const err = (errno: number): Outcome => ({ ret: -errno });
const ok = (ret = 0, body?: Body): Outcome => ({ ret, body });
const EBADF_OUTCOME = err(EBADF);
/** The calls whose first argument is a descriptor of the client's table. */
const FD_CALLS = new Set<number>([
  SYS.close, SYS.bind, SYS.listen, SYS.accept, SYS.accept4, SYS.ts_accept_batch, SYS.connect, SYS.shutdown, SYS.getsockname, SYS.getpeername,
  SYS.setsockopt, SYS.getsockopt, SYS.fcntl, SYS.ioctl, SYS.read, SYS.recvfrom, SYS.recvmsg, SYS.write, SYS.sendto, SYS.sendmsg,
]);
/** A protocol call's result as a reply: a count, or its errno. */
const result = (rc: number): Outcome => (rc < 0 ? err(-rc) : ok(rc));

/** What a process's descriptor is (`socket:[INODE]` for a socket), or null if it is not open (or the process is gone). */
function fdTarget(pid: number | 'self', fd: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return null;
  }
}

/** One call's handler: its arguments are read from `r`; it replies (now, or once a parked call finishes). */
type ApiCall = (c: ApiClient, id: number, call: number, r: ArgReader) => void;

export class ApiServer implements ApiHost {
  readonly mib = new ApiMib();
  /** Offer data rings to clients that ask (docs/api.md "Data rings"); false keeps every client on socketpairs. */
  rings = true;
  readonly clients = new Set<ApiClient>();
  /** Shared read buffer of the data pumps and message-mode reads. */
  readonly scratch = Buffer.allocUnsafe(API_MAX_IO);
  readonly #ux = unixAddon();
  /** The API socket and its accept loop (api/listen.ts). */
  readonly #listener: ApiListener;
  readonly #pair = new Int32Array(2);
  /** The ring memfd #newPipe made for the client, or -1; and its slot in the client's pool, or -1 (ringFor). */
  readonly #ringFd = new Int32Array(2);
  /** tapstack's own calls (ss, stats, sysctl, capture, trace). */
  readonly #admin: ApiAdmin;
  /** The calls, by number: each reads its arguments and goes through the socket's operations. */
  readonly #calls = new Map<number, ApiCall>();
  readonly #owner = new WeakMap<Sock, ApiFile>();
  /** Sockets of gone clients whose data descriptor lives on elsewhere (#keepOrRelease), and how many per uid. */
  readonly #kept = new Set<ApiFile>();
  readonly #keptByUid = new Map<number, number>();
  /** The read buffer of every client connection (onData's view never outlives the call). */
  readonly #rbuf = Buffer.allocUnsafeSlow(API_READ_BUF);
  /** What the clients' buffers hold, memory pressure and the reserve (api/mem.ts). */
  readonly mem: ApiMem<ApiClient>;

  constructor(readonly stack: Stack, readonly opts: ApiOptions, readonly log: StackLog) {
    this.#admin = new ApiAdmin(stack, log, this.mib, (sk) => this.ownerOf(sk));
    this.#listener = new ApiListener(this.mib, log, (fd, pid, uid, gid) => this.#connected(fd, pid, uid, gid));
    this.mem = new ApiMem<ApiClient>(this.mib, opts, (c, why) => this.drop(c, why), (c, fn) => this.runFor(c, fn));
    const calls: [number, ApiCall][] = [
      [SYS.socket, (c, id, call, r) => this.#socket(c, id, call, r)],
      [SYS.close, (c, id, call, r) => this.#close(c, id, call, r)],
      [SYS.bind, (c, id, call, r) => this.#bind(c, id, call, r)],
      [SYS.listen, (c, id, call, r) => this.#listen(c, id, call, r)],
      [SYS.accept, (c, id, call, r) => this.#accept4(c, id, call, r, 0)],
      [SYS.accept4, (c, id, call, r) => this.#accept4(c, id, call, r, -1)],
      [SYS.ts_accept_batch, (c, id, call, r) => this.#acceptBatch(c, id, call, r)],
      [SYS.ts_inherit, (c, id, call, r) => c.reply(id, call, this.#inherit(c, r.u32(), r.i32(), r.i32()))],
      [SYS.connect, (c, id, call, r) => this.#connect(c, id, call, r)],
      [SYS.shutdown, (c, id, call, r) => this.#shutdown(c, id, call, r)],
      [SYS.getsockname, (c, id, call, r) => this.#getname(c, id, call, r, false)],
      [SYS.getpeername, (c, id, call, r) => this.#getname(c, id, call, r, true)],
      [SYS.setsockopt, (c, id, call, r) => this.#setsockopt(c, id, call, r)],
      [SYS.getsockopt, (c, id, call, r) => this.#getsockopt(c, id, call, r)],
      [SYS.fcntl, (c, id, call, r) => this.#fcntl(c, id, call, r)],
      [SYS.ioctl, (c, id, call, r) => this.#ioctl(c, id, call, r)],
      [SYS.read, (c, id, call, r) => this.#recvmsg(c, id, call, r)],
      [SYS.recvfrom, (c, id, call, r) => this.#recvmsg(c, id, call, r)],
      [SYS.recvmsg, (c, id, call, r) => this.#recvmsg(c, id, call, r)],
      [SYS.write, (c, id, call, r) => this.#sendmsg(c, id, call, r)],
      [SYS.sendto, (c, id, call, r) => this.#sendmsg(c, id, call, r)],
      [SYS.sendmsg, (c, id, call, r) => this.#sendmsg(c, id, call, r)],
      [SYS.poll, (c, id, call, r) => this.#poll(c, id, call, r)],
      [SYS.ts_sockets, (c, id, call, r) => c.reply(id, call, this.#admin.sockets(r.u32() !== 0))],
      [SYS.ts_counters, (c, id, call) => c.reply(id, call, this.#admin.counters())],
      [SYS.ts_sysctl, (c, id, call, r) => c.reply(id, call, this.#admin.sysctl(c, r.rest().toString('utf8')))],
      [SYS.ts_zerocopy, (c, id, call, r) => this.#zerocopySent(c, id, call, r)],
      [SYS.ts_ring_wake, (c, id, call, r) => c.reply(id, call, this.#ringCall(c, r.i32(), false))],
      [SYS.ts_ring_off, (c, id, call, r) => c.reply(id, call, this.#ringCall(c, r.i32(), true))],
      [SYS.ts_capture, (c, id, call, r) => c.reply(id, call, this.#admin.capture(c, r.u32(), r.rest().toString('utf8')))],
      [SYS.ts_trace, (c, id, call, r) => c.reply(id, call, this.#admin.trace(c, r.rest().toString('utf8')))],
      [SYS.ts_cc, (c, id, call, r) => this.#admin.cc(c, r.rest().toString('utf8'), (o) => c.reply(id, call, o))],
    ];
    for (const [n, fn] of calls) this.#calls.set(n, fn);
  }

  /** Listen on opts.path (ApiListener.start: mode 0660, the group, a stale socket file replaced). */
  start(): void {
    this.#listener.start(this.opts.path, this.opts.gid);
  }

  /** The daemon's congestion-control modules, for `tapstack cc` (none: ENOSYS). */
  set ccModules(m: TcpCongModules | null) {
    this.#admin.ccModules = m;
  }

  stop(): void {
    if (!this.#listener.stop()) return;
    this.mem.stop();
    for (const c of [...this.clients]) this.drop(c, null);
    for (const f of [...this.#kept]) {
      if (f.pipe instanceof DataPipe) f.pipe.onLastClose = f.pipe.onDrained = null; // released here, once
      this.#release(f);
    }
    this.#kept.clear();
    this.#keptByUid.clear();
    this.#admin.stop();
  }

  /** The owner of a stack socket, for `ss -p`. */
  ownerOf(sk: Sock): { pid: number; fd: number } | null {
    const f = this.#owner.get(sk);
    return f ? { pid: f.client.pid, fd: f.fd } : null;
  }

  /** A connection to the API socket, with its peer's credentials: a client. */
  #connected(fd: number, pid: number, uid: number, gid: number): void {
    const conn = new UnixConn(fd, this.#rbuf);
    const c = new ApiClient(this, conn, pid, uid, gid);
    conn.onData = (buf, fds) => {
      // Clients never send descriptors; close any so they do not leak into the daemon.
      for (const f of fds) this.#ux.close(f);
      if (fds.length) this.mib.BadFrames++;
      try {
        c.input(buf);
      } catch (e) {
        this.drop(c, `internal error: ${(e as Error).stack ?? e}`);
      }
    };
    conn.onClose = () => this.drop(c, null);
    conn.onDrain = () => c.drained();
    conn.onMem = (delta) => this.mem.charge(c, delta);
    conn.allow = () => c.readAllowance();
    c.update(); // its first read already within the allowance
    this.clients.add(c);
    this.mib.Clients++;
    this.mib.ClientsTotal++;
    this.log.debug({ pid: c.pid, uid: c.uid }, 'api: client connected');
  }

  /**
   * A client is gone (disconnect, or a corrupt stream when `reason` is set):
   * its sockets are closed as a dying process's are (FIN, or RST with unread
   * data; listeners stop accepting) and its parked calls are dropped.
   */
  drop(c: ApiClient, reason: string | null): void {
    if (c.closed) return;
    c.closed = true;
    c.ringPool?.destroy(); // never another client's: its rings are unmapped as its sockets let go of them
    if (reason) {
      this.mib.ClientsDropped++;
      this.log.warn({ pid: c.pid, uid: c.uid, reason }, 'api: closing client connection');
    }
    for (const p of c.parked) this.#unpark(p);
    for (const f of c.fds.values()) this.#keepOrRelease(c, f);
    for (const f of c.orphans) this.#keepOrRelease(c, f);
    c.orphans.clear();
    c.fds.clear();
    c.conn.close();
    c.release();
    this.mem.forget(c);
    this.clients.delete(c);
    this.mib.Clients--;
    // Its descriptors are free again: a connection waiting at the descriptor limit is accepted now.
    this.#listener.resume();
  }

  /**
   * A gone client's socket. Released, as a dying process's socket is, unless
   * its data descriptor is still open elsewhere (a program the client exec'd
   * into, a child that inherited it): then it lives until the last copy is
   * closed or the connection is over, as a kernel socket outlives the
   * process that made it. Only a connected socket on its socketpair (no ring:
   * the library takes rings back before exec) and at most `maxSockets` per
   * uid, so a client cannot pile sockets up by disconnecting.
   */
  #keepOrRelease(c: ApiClient, f: ApiFile): void {
    const pipe = f.pipe;
    const held = this.#keptByUid.get(c.uid) ?? 0;
    if (!(pipe instanceof DataPipe) || pipe.ringed || f.group || held >= this.opts.maxSockets || !pipe.shared()) {
      this.#release(f);
      return;
    }
    this.#kept.add(f);
    this.#keptByUid.set(c.uid, held + 1);
    this.mib.Kept++;
    const done = () => {
      if (!this.#kept.delete(f)) return;
      const n = (this.#keptByUid.get(c.uid) ?? 1) - 1;
      if (n > 0) this.#keptByUid.set(c.uid, n);
      else this.#keptByUid.delete(c.uid);
      if (f.pipe instanceof DataPipe) f.pipe.onLastClose = null;
      this.#release(f);
    };
    f.kept = (e) => {
      this.log.warn({ pid: c.pid, uid: c.uid, err: String((e as Error)?.stack ?? e) }, 'api: internal error on a kept socket, released');
      done();
    };
    pipe.onLastClose = done;
    f.runPipe();
  }

  /** The last close of a socket (sock_close): the parked calls get EBADF, the protocol releases it. */
  #release(f: ApiFile): void {
    const g = f.group;
    if (g && g.size > 1) {
      // Another process's file still holds the socket (ts_inherit): only this file goes.
      g.delete(f);
      f.group = null;
      f.pipe = null;
      for (const p of [...f.waiters]) {
        this.#unpark(p);
        p.client.reply(p.id, p.call, err(EBADF));
      }
      f.waiter.cancel();
      if (this.#owner.get(f.sk) === f) this.#owner.set(f.sk, g.values().next().value!);
      return;
    }
    if (f.pipe instanceof DataPipe) {
      // What the client wrote before closing is still in the pair or the up ring (its close can
      // overtake the pair's readiness): hand it to TCP first, as close() sends what write() queued,
      // and when TCP's send buffer cannot take it all, linger until it has (#linger).
      f.pipe.run();
      if (f.pipe.pendingUp() && this.#linger(f)) return;
    }
    f.pipe?.close();
    f.pipe = null;
    for (const p of [...f.waiters]) {
      this.#unpark(p);
      p.client.reply(p.id, p.call, err(EBADF));
    }
    f.waiter.cancel();
    // Children queued on a listener but never accepted die with it (tcpClose handles them).
    f.ops.release(f.sk);
  }

  /**
   * A released socket whose client's bytes TCP could not take yet: its
   * pump runs on TCP's wake-ups until they are all queued, then the release
   * ends (FIN after them, by tcp_close). Counted with the kept sockets, at
   * most `maxSockets` per uid (beyond: released now, the rest dropped).
   */
  #linger(f: ApiFile): boolean {
    const pipe = f.pipe as DataPipe;
    const uid = f.client.uid;
    const held = this.#keptByUid.get(uid) ?? 0;
    if (held >= this.opts.maxSockets || this.#kept.has(f)) return false;
    for (const p of [...f.waiters]) {
      this.#unpark(p);
      p.client.reply(p.id, p.call, err(EBADF));
    }
    this.#kept.add(f);
    this.#keptByUid.set(uid, held + 1);
    this.mib.Lingered++;
    const done = () => {
      if (!this.#kept.delete(f)) return;
      const n = (this.#keptByUid.get(uid) ?? 1) - 1;
      if (n > 0) this.#keptByUid.set(uid, n);
      else this.#keptByUid.delete(uid);
      pipe.onDrained = null;
      this.#release(f);
    };
    f.kept = (e) => {
      this.log.warn({ uid, err: String((e as Error)?.stack ?? e) }, 'api: internal error on a lingering socket, released');
      done();
    };
    pipe.onDrained = done;
    return true;
  }

  /** Run the calls parked on a socket once more after its wake-up. */
  retry(f: ApiFile): void {
    if (!f.waiters.length) return;
    for (const p of [...f.waiters]) {
      if (p.done) continue;
      this.#guarded(p.client, p.id, p.call, () => {
        const o = p.attempt();
        if (o) {
          this.#unpark(p);
          p.client.reply(p.id, p.call, o);
        }
      });
    }
  }

  /** Clients whose input waits for a later turn, served together (INPUT_BUDGET_TURN). */
  readonly #turns = new ApiTurns();

  deferTurn(c: ApiClient): void {
    this.#turns.defer(c);
  }

  /** Run work for a client outside its input (a pump after a wake-up): our bug drops that client only. */
  runFor(c: ApiClient, fn: () => void): void {
    runForClient(this, c, fn);
  }

  /**
   * Work for one client done outside its input (a wake-up, a timer): a
   * bad argument found late still gets its errno reply; anything else is
   * our bug, and costs that client its connection, never the daemon or
   * another client.
   */
  #guarded(c: ApiCaller, id: number, call: number, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof ArgError) {
        for (const p of c.parked) if (p.id === id && p.call === call) this.#unpark(p);
        c.reply(id, call, err(e.errno));
        return;
      }
      c.drop(`internal error: ${(e as Error).stack ?? e}`);
    }
  }

  #park(c: ApiClient, id: number, call: number, files: ApiFile[], timeoutMs: number, attempt: () => Outcome | null, timeout: () => Outcome): void {
    const p: Parked = { client: c, id, call, socks: files, attempt, timeout, timer: null, done: false };
    if (timeoutMs > 0) {
      p.timer = new Timer(() => {
        if (p.done) return;
        this.#unpark(p);
        this.#guarded(p.client, p.id, p.call, () => p.client.reply(p.id, p.call, p.timeout()));
      });
      this.stack.time.timers.mod(p.timer, this.stack.time.clock.now() + timeoutMs);
    }
    for (const f of files) f.waiters.push(p);
    c.parked.add(p);
    this.mib.Parked++;
  }

  #unpark(p: Parked): void {
    if (p.done) return;
    p.done = true;
    if (p.timer) this.stack.time.timers.del(p.timer);
    for (const f of p.socks) {
      const i = f.waiters.indexOf(p);
      if (i >= 0) f.waiters.splice(i, 1);
    }
    p.client.parked.delete(p);
    this.mib.Parked--;
  }

  /**
   * Run a call that may block: try it; if it would block, reply EAGAIN for a
   * non-blocking socket or park it until a wake-up lets it finish.
   */
  #blocking(c: ApiClient, id: number, call: number, f: ApiFile, nonblock: boolean, timeoutMs: number, attempt: () => Outcome | null, timeout: () => Outcome = () => err(EAGAIN)): void {
    const o = attempt();
    if (o) return c.reply(id, call, o);
    if (nonblock) return c.reply(id, call, timeout());
    this.#park(c, id, call, [f], timeoutMs, attempt, timeout);
  }

  dispatch(c: ApiClient, id: number, call: number, frame: Buffer): void {
    this.mib.Calls++;
    const fn = this.#calls.get(call);
    if (!fn) return c.reply(id, call, err(ENOSYS));
    // The descriptor first, as the kernel's fdget: every call on a descriptor reads it first, so a
    // number not open is EBADF here, without a throw (a flood of such calls stays cheap).
    if (FD_CALLS.has(call) && frame.length >= HDR_LEN + 4 && !c.fds.has(frame.readInt32LE(HDR_LEN))) {
      // A one-way close is answered by nothing, not even EBADF: the client counts on no reply.
      if (call === SYS.close && frame.length >= HDR_LEN + 8 && frame.readInt32LE(HDR_LEN + 4) & CLOSE_F_NOREPLY) return;
      return c.reply(id, call, EBADF_OUTCOME);
    }
    const r = new ArgReader(frame, HDR_LEN, frame.length);
    try {
      fn(c, id, call, r);
    } catch (e) {
      if (e instanceof ArgError) {
        this.log.debug({ pid: c.pid, call: SYS_NAMES[call] ?? call, msg: e.message }, 'api: bad argument');
        return c.reply(id, call, err(e.errno));
      }
      throw e;
    }
  }

  /** The descriptor's socket (EBADF for a number the client has not open). */
  #file(c: ApiClient, fd: number): ApiFile {
    const f = c.fds.get(fd);
    if (!f) throw new ArgError(EBADF, `fd ${fd} is not open`);
    return f;
  }

  // --- the calls -------------------------------------------------------------------------

  /** socket(2): the stack's families make the socket (EAFNOSUPPORT, ESOCKTNOSUPPORT, EPROTONOSUPPORT). */
  #socket(c: ApiClient, id: number, call: number, r: ArgReader): void {
    const domain = r.i32();
    const type = r.i32();
    const protocol = r.i32();
    const sock = this.stack.families.create(domain, type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC), protocol, c.uid);
    if (typeof sock === 'number') return c.reply(id, call, err(-sock));
    const o = this.#newFile(c, sock, (type & SOCK_NONBLOCK) !== 0, (type & SOCK_CLOEXEC) !== 0, true);
    if (o.ret < 0) sock.ops.release(sock.sk);
    c.reply(id, call, o);
  }

  #close(c: ApiClient, id: number, call: number, r: ArgReader): void {
    const f = this.#file(c, r.i32());
    const flags = r.end - r.off >= 4 ? r.i32() : 0;
    this.#closeFile(c, f, flags);
    if (!(flags & CLOSE_F_NOREPLY)) c.reply(id, call, ok());
  }

  /** Take `f` out of the client's table and release its socket, or leave it to its last copy (CLOSE_F_SHARED). */
  #closeFile(c: ApiClient, f: ApiFile, flags: number): void {
    c.fds.delete(f.fd);
    // CLOSE_F_SHARED: copies of the data descriptor may live on in other processes (fork), and the
    // socket with them, as a kernel socket lives until its last descriptor is closed.
    const pipe = f.pipe;
    if (flags & CLOSE_F_SHARED && pipe instanceof DataPipe && pipe.shared()) {
      // The client lets go of a pooled ring with its close: what it holds unread goes to the pair, for the other copies.
      if (c.ringPool && pipe.levelRing) pipe.ringOff();
      c.orphans.add(f);
      pipe.onLastClose = () => {
        c.orphans.delete(f);
        this.#release(f);
      };
      pipe.run();
    } else {
      this.#release(f);
    }
    c.ringPool?.ack(f); // its pooled ring (if any) serves the client's next socket once the pipe let go of it too
  }

  /** bind(2); ports below 1024 for uid 0 and the low-port group only (CAP_NET_BIND_SERVICE). */
  #bind(c: ApiClient, id: number, call: number, r: ArgReader): void {
    const f = this.#file(c, r.i32());
    const sa = r.sockaddr();
    const privileged = c.uid === 0 || (this.opts.lowPortGid !== null && c.gid === this.opts.lowPortGid);
    c.reply(id, call, result(f.ops.bind(f.sk, sa, privileged)));
  }

  #listen(c: ApiClient, id: number, call: number, r: ArgReader): void {
    const f = this.#file(c, r.i32());
    const rc = f.ops.listen(f.sk, r.i32());
    // The descriptor stays: it carries no data, but is readable while a connection waits (files.ts).
    f.pipe?.run();
    c.reply(id, call, result(rc));
  }

  /** accept/accept4 (flags -1: read them): the next connection, with the peer's address. */
  #accept4(c: ApiClient, id: number, call: number, r: ArgReader, flags: number): void {
    const f = this.#file(c, r.i32());
    if (flags < 0) flags = r.i32();
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) return c.reply(id, call, err(EINVAL));
    const { sk, ops } = f;
    this.#blocking(c, id, call, f, f.nonblock, sk.rcvtimeo, () => {
      if (c.sockets >= this.opts.maxSockets) {
        this.mib.Emfile++;
        return err(EMFILE);
      }
      const child = ops.accept(sk);
      if (typeof child === 'number') return child === -EAGAIN ? null : err(-child);
      f.pipe?.run(); // the listener's readiness, before the reply: an emptied queue is no longer readable
      const o = this.#newFile(c, new Socket(child, ops), (flags & SOCK_NONBLOCK) !== 0, (flags & SOCK_CLOEXEC) !== 0, false);
      if (o.ret < 0) {
        ops.release(child);
        return o;
      }
      const peer = sockAddr();
      ops.getname(child, peer, 2);
      return { ret: o.ret, fd: o.fd, ring: o.ring, slot: o.slot, body: (w) => w.sockaddr(peer) };
    });
  }

  /**
   * accept4 of up to `max` connections in one reply (a listener under a
   * burst of connections costs one round trip, not one each): every
   * established child the queue holds, up to max, each a file of its own
   * with accept4's flags, their descriptors together on the reply. Waits
   * as accept does for the first; never for more. With
   * ACCEPT_BATCH_F_QUEUE each past the first leaves a byte in the
   * listener's descriptor (DataPipe.queued), so a client that keeps them
   * for later accept4 calls keeps the listener readable until it has
   * handed them all on.
   */
  #acceptBatch(c: ApiClient, id: number, call: number, r: ArgReader): void {
    const f = this.#file(c, r.i32());
    const flags = r.i32();
    const max = r.u32();
    const bflags = r.end - r.off >= 4 ? r.u32() : 0;
    const rings = (bflags & ACCEPT_BATCH_F_RINGS) !== 0;
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC) || max < 1 || max > (rings && !c.wantPool ? ACCEPT_BATCH_MAX / 2 : ACCEPT_BATCH_MAX) || bflags & ~(ACCEPT_BATCH_F_QUEUE | ACCEPT_BATCH_F_RINGS))
      return c.reply(id, call, err(EINVAL));
    const { sk, ops } = f;
    this.#blocking(c, id, call, f, f.nonblock, sk.rcvtimeo, () => {
      const got: { fd: number; data: number; ring: number; slot: number; peer: SockAddr }[] = [];
      let failed = 0;
      // With pooled rings (max up to 16) a connection brings one descriptor or two: stop while a second would still fit.
      for (let nfds = 0; got.length < max && !(rings && nfds + 2 > ACCEPT_BATCH_MAX); nfds += got[got.length - 1].ring >= 0 ? 2 : 1) {
        if (c.sockets >= this.opts.maxSockets) {
          this.mib.Emfile++;
          failed = EMFILE;
          break;
        }
        const child = ops.accept(sk);
        if (typeof child === 'number') {
          if (child !== -EAGAIN) failed = -child;
          break;
        }
        // Rings only when the entries say which descriptors are whose (ACCEPT_BATCH_F_RINGS): a ringed pipe whose
        // client has no mapping would read its data as doorbell bytes.
        const o = this.#newFile(c, new Socket(child, ops), (flags & SOCK_NONBLOCK) !== 0, (flags & SOCK_CLOEXEC) !== 0, false, rings);
        if (o.ret < 0) {
          ops.release(child);
          failed = -o.ret;
          break;
        }
        const peer = sockAddr();
        ops.getname(child, peer, 2);
        got.push({ fd: o.ret, data: o.fd ?? -1, ring: o.ring ?? -1, slot: o.slot ?? -1, peer });
      }
      f.pipe?.run(); // the listener's readiness before the reply, as accept's
      // Nothing taken: the error (as accept4 returns it), or wait for a connection.
      if (!got.length) return failed ? err(failed) : null;
      if (got.length > 1) {
        this.mib.AcceptBatched++;
        this.mib.AcceptBatchedConns += got.length;
        if (bflags & ACCEPT_BATCH_F_QUEUE && f.pipe instanceof DataPipe) f.pipe.queued(got.length - 1);
      }
      const fds: number[] = [];
      for (const g of got) {
        if (g.data >= 0) fds.push(g.data);
        if (g.data >= 0 && g.ring >= 0) fds.push(g.ring);
      }
      return {
        ret: got.length,
        fds: fds.length ? fds : undefined,
        body: (w) => {
          for (const g of got) {
            w.i32(g.fd);
            // Its descriptors (0-2), and a pooled ring's slot as in a reply's flags (FRAME_F_RING_SLOT).
            if (rings) w.u16(g.data < 0 ? 0 : (g.ring >= 0 ? 2 : 1) | (g.slot >= 0 ? FRAME_F_RING_SLOT | (g.slot << 8) : 0));
            w.sockaddr(g.peer);
          }
        },
      };
    });
  }

  /**
   * A process takes a listener another holds (a forked child, its
   * parent's): that client's file for it (client `pid`, descriptor `fd`)
   * is shared with a new file in the caller's table, as fork shares a
   * struct file between the two descriptor tables. The caller must hold
   * the listener's data descriptor, at `dfd` in its own table: the same
   * socket as the daemon's copy of it (/proc/PID/fd), as Linux lets a
   * process use exactly the descriptors it holds (EPERM otherwise: a
   * child that closed it, or exec'd with it close-on-exec, cannot). The
   * listener's readiness reaches every holder; whichever accepts takes the
   * connection (one accept queue, as Linux's). Only a listener
   * (EOPNOTSUPP).
   */
  #inherit(c: ApiClient, pid: number, fd: number, dfd: number): Outcome {
    let from: ApiFile | undefined;
    for (const o of this.clients) {
      if (o.pid === pid && o !== c && !o.closed) from = o.fds.get(fd) ?? from;
    }
    if (!from) return err(EBADF);
    const pipe = from.pipe;
    if (!(from.sk instanceof TcpSock) || from.sk.state !== TCP_LISTEN || !(pipe instanceof DataPipe) || pipe.peerFd < 0) return err(EOPNOTSUPP);
    const theirs = dfd >= 0 ? fdTarget(c.pid, dfd) : null;
    if (theirs === null || !theirs.startsWith('socket:') || theirs !== fdTarget('self', pipe.peerFd)) {
      this.mib.InheritRefused++;
      return err(EPERM);
    }
    if (c.sockets >= this.opts.maxSockets) {
      this.mib.Emfile++;
      return err(EMFILE);
    }
    const f = new ApiFile(c, c.allocFd(), from.sock);
    f.nonblock = from.nonblock;
    from.share(f);
    c.fds.set(f.fd, f);
    this.mib.Inherited++;
    return ok(f.fd);
  }

  /** connect(2): a handshake in progress waits (SO_SNDTIMEO; EINPROGRESS when non-blocking). */
  #connect(c: ApiClient, id: number, call: number, r: ArgReader): void {
    const f = this.#file(c, r.i32());
    const sa = r.sockaddr();
    const { sk, ops } = f;
    let rc = ops.connect(sk, sa);
    if (rc !== -EINPROGRESS) {
      // A connect asked again after its handshake failed: the pump may have taken the error (see below).
      if (rc === -ECONNABORTED && f.pipe?.error) {
        rc = -f.pipe.error;
        f.pipe.error = 0;
      }
      f.pipe?.run();
      return c.reply(id, call, result(rc));
    }
    // The descriptor is not writable until the handshake is done, as a connecting socket is not.
    if (f.pipe instanceof DataPipe) {
      f.pipe.hold();
      f.pipe.run();
    }
    this.#blocking(
      c, id, call, f, f.nonblock, sk.sndtimeo,
      () => {
        let done = ops.connectWait(sk);
        if (done === -EINPROGRESS) return null;
        // The pump may have taken the socket's error first (sk_err is read once; it keeps it for
        // SO_ERROR): a connect that failed reports it, as __inet_stream_connect would have.
        if (done === -ECONNABORTED && f.pipe?.error) {
          done = -f.pipe.error;
          f.pipe.error = 0;
        }
        return result(done);
      },
      () => err(EINPROGRESS),
    );
  }

  #shutdown(c: ApiClient, id: number, call: number, r: ArgReader): void {
    const f = this.#file(c, r.i32());
    c.reply(id, call, result(f.ops.shutdown(f.sk, r.i32())));
  }

  #getname(c: ApiClient, id: number, call: number, r: ArgReader, peer: boolean): void {
    const f = this.#file(c, r.i32());
    const sa = sockAddr();
    const rc = f.ops.getname(f.sk, sa, peer);
    if (rc < 0) return c.reply(id, call, err(-rc));
    c.reply(id, call, ok(0, (w) => w.sockaddr(sa)));
  }

  #setsockopt(c: ApiClient, id: number, call: number, r: ArgReader): void {
    const f = this.#file(c, r.i32());
    const level = r.i32();
    const name = r.i32();
    const val = r.bytes(r.u32());
    // What the API cannot carry yet: TCP_INQ's TCP_CM_INQ (stream data crosses the descriptor bare).
    if (f.stream && level === IPPROTO_TCP && name === TCP_INQ) return c.reply(id, call, err(ENOPROTOOPT));
    c.reply(id, call, result(socketSetsockopt(f.sock, level, name, val)));
  }

  #getsockopt(c: ApiClient, id: number, call: number, r: ArgReader): void {
    const f = this.#file(c, r.i32());
    const level = r.i32();
    const name = r.i32();
    const len = r.u32();
    let v: Buffer | number;
    if (level === SOL_SOCKET && name === SO_ERROR && f.pipe?.error) {
      // An error the pump took from the socket and has not yet passed down the descriptor.
      v = sockOptInt(f.pipe.error);
      f.pipe.error = 0;
    } else {
      v = socketGetsockopt(f.sock, level, name, len);
    }
    if (typeof v === 'number') return c.reply(id, call, err(-v));
    const out = v.subarray(0, Math.min(len, v.length));
    c.reply(id, call, ok(out.length, (w) => w.bytes(out)));
  }

  #fcntl(c: ApiClient, id: number, call: number, r: ArgReader): void {
    const f = this.#file(c, r.i32());
    const cmd = r.i32();
    const arg = r.i32();
    switch (cmd) {
      case F_GETFL:
        return c.reply(id, call, ok(O_RDWR | (f.nonblock ? O_NONBLOCK : 0)));
      case F_SETFL:
        f.nonblock = (arg & O_NONBLOCK) !== 0;
        return c.reply(id, call, ok());
      case F_GETFD:
        return c.reply(id, call, ok(f.cloexec ? FD_CLOEXEC : 0));
      case F_SETFD:
        f.cloexec = (arg & FD_CLOEXEC) !== 0;
        return c.reply(id, call, ok());
      default:
        return c.reply(id, call, err(EINVAL));
    }
  }

  #ioctl(c: ApiClient, id: number, call: number, r: ArgReader): void {
    const f = this.#file(c, r.i32());
    const req = r.u32();
    if (req === FIONBIO) {
      f.nonblock = r.i32() !== 0;
      return c.reply(id, call, ok());
    }
    let rc = f.ops.ioctl(f.sk, req);
    // FIONREAD on a stream counts what waits in the data descriptor too: the reader's unread bytes.
    if (req === FIONREAD && rc >= 0 && f.pipe instanceof DataPipe) rc += f.pipe.unread();
    c.reply(id, call, result(rc));
  }

  /**
   * read/recvfrom/recvmsg in message mode (no data descriptor): stream
   * bytes, or one datagram. recvmsg may add u32 controllen: the reply then
   * carries the control messages (cmsgPut) before the data. MSG_ERRQUEUE
   * reads the error queue of any socket, descriptor or not (its entries
   * never cross the descriptor), and never waits, as ip_recv_error.
   */
  #recvmsg(c: ApiClient, id: number, call: number, r: ArgReader): void {
    const f = this.#file(c, r.i32());
    const flags = call === SYS.read ? 0 : r.i32();
    let count = r.u32();
    const controllen = call === SYS.recvmsg && r.left() >= 4 ? Math.min(r.u32(), API_MAX_CONTROL) : -1;
    if (count > API_MAX_IO) count = API_MAX_IO;
    if (flags & MSG_ERRQUEUE) return c.reply(id, call, this.#errRecv(f, count, controllen));
    if (f.pipe) return c.reply(id, call, err(EOPNOTSUPP)); // data goes through the descriptor
    if (f.stream) this.#streamRecv(c, id, call, f, flags, count);
    else this.#dgramRecv(c, id, call, f, flags, count, controllen);
  }

  /** recvmsg(MSG_ERRQUEUE): the oldest entry, its data, source and control messages (in msg_control's room). */
  #errRecv(f: ApiFile, count: number, controllen: number): Outcome {
    const msg = new MsgHdr();
    const got = Buffer.alloc(count);
    const n = f.ops.recvmsg(f.sk, got, MSG_ERRQUEUE, msg, true);
    if (n < 0) return err(-n);
    const named = msg.name.family !== AF_UNSPEC;
    return ok(n, (w) => {
      const ctl = cmsgPut(msg.cmsgs, Math.max(0, controllen));
      w.u32(msg.flags | ctl.ctrunc).sockaddr(named ? msg.name : null);
      if (controllen >= 0) w.u32(ctl.buf.length).bytes(ctl.buf);
      w.bytes(got.subarray(0, n));
    });
  }

  /**
   * tcp_recvmsg's wait: a blocking read returns once it has SO_RCVLOWAT
   * bytes (all of `count` with MSG_WAITALL), at end of stream, or with
   * what it has when an error or the timeout comes.
   */
  #streamRecv(c: ApiClient, id: number, call: number, f: ApiFile, flags: number, count: number): void {
    const { sk, ops } = f;
    const nonblock = f.nonblock || (flags & MSG_DONTWAIT) !== 0;
    const waitall = (flags & MSG_WAITALL) !== 0 && !(flags & MSG_PEEK);
    const got = Buffer.allocUnsafe(count);
    let have = 0;
    const reply = (n: number): Outcome => {
      const data = got.subarray(0, n);
      const peer = sockAddr();
      const named = call !== SYS.read && ops.getname(sk, peer, true) === 0;
      return ok(n, (w) => {
        if (call !== SYS.read) w.u32(0).sockaddr(named ? peer : null); // msg_flags, the peer
        w.bytes(data);
      });
    };
    if (count === 0) return c.reply(id, call, reply(0));
    const target = waitall ? count : Math.min(sk.rcvlowat, count);
    const attempt = (): Outcome | null => {
      const n = ops.recvmsg(sk, got.subarray(have), flags & MSG_PEEK, null, nonblock);
      if (n > 0) {
        have += n;
        return have >= target || nonblock ? reply(have) : null;
      }
      if (n === 0) return reply(have);
      if (n === -EAGAIN) return have && nonblock ? reply(have) : null;
      return have ? reply(have) : err(-n);
    };
    this.#blocking(c, id, call, f, nonblock, sk.rcvtimeo, attempt, () => (have ? reply(have) : err(EAGAIN)));
  }

  /**
   * udp_recvmsg: one datagram, truncated to `count` (msg_flags MSG_TRUNC;
   * its real length with MSG_TRUNC in flags), with its source. Blocks
   * (SO_RCVTIMEO) until one comes.
   */
  #dgramRecv(c: ApiClient, id: number, call: number, f: ApiFile, flags: number, count: number, controllen = -1): void {
    const { sk, ops } = f;
    const nonblock = f.nonblock || (flags & MSG_DONTWAIT) !== 0;
    const msg = new MsgHdr();
    const got = Buffer.allocUnsafe(count);
    const attempt = (): Outcome | null => {
      const n = ops.recvmsg(sk, got, flags, msg, nonblock);
      if (n === -EAGAIN) return null;
      if (n < 0) return err(-n);
      const empty = msg.len < 0; // shutdown(SHUT_RD): 0 with no datagram and no address
      const data = got.subarray(0, empty ? 0 : Math.min(n, count, msg.len));
      // IP_PKTINFO and the like: in the reply when the call made room for them, else cut (MSG_CTRUNC) as put_cmsg does.
      const ctl = cmsgPut(msg.cmsgs, Math.max(0, controllen));
      return ok(n, (w) => {
        if (call !== SYS.read) w.u32(msg.flags | ctl.ctrunc).sockaddr(empty ? null : msg.name);
        if (controllen >= 0) w.u32(ctl.buf.length).bytes(ctl.buf);
        w.bytes(data);
      });
    };
    this.#blocking(c, id, call, f, nonblock, sk.rcvtimeo, attempt);
  }

  /** write/sendto/sendmsg in message mode: a stream takes all of it (waiting for room), a datagram socket one datagram. */
  #sendmsg(c: ApiClient, id: number, call: number, r: ArgReader): void {
    const f = this.#file(c, r.i32());
    const flags = call === SYS.write ? 0 : r.i32();
    // sendto with an address on a connected stream socket: Linux ignores it (only Fast Open reads it).
    let to: SockAddr | null = null;
    if (call !== SYS.write) {
      if (f.stream && !(flags & MSG_FASTOPEN)) r.bytes(r.u16());
      else to = r.sockaddrOrNull();
    }
    const data = r.rest();
    if (f.stream && flags & MSG_FASTOPEN) return this.#fastopenSend(c, id, call, f, flags, to, data);
    if (f.pipe) return c.reply(id, call, err(EOPNOTSUPP)); // the data goes through the descriptor
    if (f.stream) this.#streamSend(c, id, call, f, flags, data);
    else c.reply(id, call, result(f.ops.sendmsg(f.sk, data, flags & (MSG_MORE | MSG_ZEROCOPY), to)));
  }

  /**
   * tcp_sendmsg's waits: for the handshake (sk_stream_wait_connect; the
   * protocol answers -EAGAIN while it runs) and for room between pieces
   * (sk_stream_wait_memory).
   */
  #streamSend(c: ApiClient, id: number, call: number, f: ApiFile, flags: number, data: Buffer): void {
    const { sk, ops } = f;
    const nonblock = f.nonblock || (flags & MSG_DONTWAIT) !== 0;
    const sflags = flags & MSG_MORE;
    let sent = 0;
    // One sendmsg is one MSG_ZEROCOPY id however many pieces it takes (tcp_sendmsg's one uarg).
    const done = (n: number): Outcome => {
      if (n > 0 && flags & MSG_ZEROCOPY) sockZerocopyDone(sk);
      return ok(n);
    };
    const attempt = (): Outcome | null => {
      while (sent < data.length) {
        const n = ops.sendmsg(sk, data.subarray(sent), sflags, null);
        if (n === -EAGAIN) return nonblock && sent ? done(sent) : null;
        if (n < 0) {
          if (sent) return done(sent);
          // No SIGPIPE crosses the API (MSG_NOSIGNAL is implied); a preloaded client raises it itself.
          return err(-n);
        }
        sent += n;
      }
      return done(sent);
    };
    if (data.length === 0) return c.reply(id, call, attempt() ?? ok(0));
    this.#blocking(c, id, call, f, nonblock, sk.sndtimeo, attempt, () => (sent ? done(sent) : err(EAGAIN)));
  }

  /**
   * A MSG_ZEROCOPY send a client made on the data descriptor: the bytes
   * left its memory when the descriptor took them, so the send completes
   * now (copied), with the id Linux would give it. Nothing without
   * SO_ZEROCOPY or bytes, as Linux ignores the flag then.
   */
  /**
   * ts_ring_wake / ts_ring_off on a RING_LEVEL socket (docs/api.md): run
   * its pump once more (the client made room in its down ring, or took the
   * readiness byte and then found data), or move it back to its socketpair.
   * EINVAL for a socket without a level ring.
   */
  #ringCall(c: ApiClient, fd: number, off: boolean): Outcome {
    const f = this.#file(c, fd);
    const p = f.pipe;
    if (!(p instanceof DataPipe) || !p.levelRing) return err(EINVAL);
    if (off) {
      const n = p.ringOff();
      c.ringPool?.ack(f);
      return result(n);
    }
    p.run();
    return ok();
  }

  #zerocopySent(c: ApiClient, id: number, call: number, r: ArgReader): void {
    const f = this.#file(c, r.i32());
    if (r.u32() > 0) sockZerocopyDone(f.sk);
    c.reply(id, call, ok());
  }

  /**
   * sendto/sendmsg with MSG_FASTOPEN on a stream (tcp_sendmsg_fastopen):
   * connect with what the SYN takes of the data, or a cookie request. The
   * reply is the bytes the SYN took, or EINPROGRESS, or the error, at once
   * when non-blocking or when the client has a data descriptor (the
   * preload library waits for the handshake on it, as a blocking connect
   * does, and writes the rest there). In message mode a blocking call
   * waits for the handshake here (inet_wait_for_connect), fails with the
   * connection's error, else sends the rest and answers with all of it.
   */
  #fastopenSend(c: ApiClient, id: number, call: number, f: ApiFile, flags: number, to: SockAddr | null, data: Buffer): void {
    const { sk, ops } = f;
    const rc = ops.sendmsg(sk, data, MSG_FASTOPEN | (flags & MSG_MORE), to);
    if (f.pipe instanceof DataPipe && sk.state === TCP_SYN_SENT) {
      // The descriptor turns writable when the handshake ends, as after connect().
      f.pipe.hold();
    }
    f.pipe?.run();
    const nonblock = f.nonblock || (flags & MSG_DONTWAIT) !== 0;
    if ((rc !== -EINPROGRESS && rc < 0) || nonblock || f.pipe) return c.reply(id, call, result(rc));
    let sent = rc > 0 ? rc : 0;
    let connecting = true;
    const attempt = (): Outcome | null => {
      if (connecting) {
        const done = ops.connectWait(sk);
        if (done === -EINPROGRESS) return null;
        connecting = false;
        if (done < 0) return err(-done);
      }
      while (sent < data.length) {
        const n = ops.sendmsg(sk, data.subarray(sent), flags & MSG_MORE, null);
        if (n === -EAGAIN) return null;
        if (n < 0) return sent ? ok(sent) : err(-n);
        sent += n;
      }
      return ok(sent);
    };
    this.#blocking(c, id, call, f, false, sk.sndtimeo, attempt, () => (sent && !connecting ? ok(sent) : err(connecting ? EINPROGRESS : EAGAIN)));
  }

  /** poll(2) over the client's descriptors; EPOLLET in an entry's events asks for edge reporting. */
  #poll(c: ApiClient, id: number, call: number, r: ArgReader): void {
    const n = r.u32();
    const timeout = r.i32();
    if (n > API_MAX_POLL) return c.reply(id, call, err(EINVAL));
    const fds: number[] = [];
    const events: number[] = [];
    for (let i = 0; i < n; i++) {
      fds.push(r.i32());
      events.push(r.u32());
    }
    const revents = new Array<number>(n).fill(0);
    const attempt = (): Outcome | null => {
      let ready = 0;
      for (let i = 0; i < n; i++) {
        const f = c.fds.get(fds[i]);
        if (!f) {
          revents[i] = fds[i] < 0 ? 0 : POLLNVAL;
        } else {
          const want = (events[i] & 0xffff) | POLLERR | POLLHUP;
          let m = this.#pollMask(f) & want;
          if (events[i] & EPOLLET) {
            m &= ~f.edgeSeen;
            f.edgeSeen |= m;
          }
          revents[i] = m;
        }
        if (revents[i]) ready++;
      }
      if (!ready) return null;
      return ok(ready, (w) => {
        for (let i = 0; i < n; i++) w.i32(fds[i]).u32(revents[i]);
      });
    };
    const o = attempt();
    if (o) return c.reply(id, call, o);
    const zero = (): Outcome => ok(0, (w) => {
      for (let i = 0; i < n; i++) w.i32(fds[i]).u32(0);
    });
    if (timeout === 0) return c.reply(id, call, zero());
    const files = fds.map((fd) => c.fds.get(fd)).filter((x): x is ApiFile => !!x);
    this.#park(c, id, call, files, timeout < 0 ? 0 : timeout, attempt, zero);
  }

  /** The socket's poll; a datagram descriptor's undelivered error adds POLLERR. */
  #pollMask(f: ApiFile): number {
    const m = f.ops.poll(f.sk);
    return f.pipe instanceof DgramPipe && f.pipe.error ? m | POLLERR : m;
  }

  /** A new descriptor for `sock` in the client's table; in descriptor mode its data socketpair comes with it. */
  #newFile(c: ApiClient, sock: Socket, nonblock: boolean, cloexec: boolean, unconnected: boolean, rings = true): Outcome {
    if (c.sockets >= this.opts.maxSockets) {
      this.mib.Emfile++;
      return err(EMFILE);
    }
    const fd = c.allocFd();
    const f = new ApiFile(c, fd, sock);
    f.nonblock = nonblock;
    f.cloexec = cloexec;
    let give = -1;
    if (c.wantFds) {
      const pipe = this.#newPipe(f, sock, unconnected, rings);
      if (typeof pipe === 'number') {
        f.waiter.cancel();
        sock.sk.wake = null;
        return err(-pipe);
      }
      f.pipe = pipe;
      give = this.#pair[1];
    }
    c.fds.set(fd, f);
    this.#owner.set(sock.sk, f);
    f.pipe?.run();
    const ringed = f.pipe instanceof DataPipe && f.pipe.ringed;
    return { ret: fd, fd: give, ring: ringed ? this.#ringFd[0] : -1, slot: ringed ? this.#ringFd[1] : -1 };
  }

  /**
   * The data descriptor's pair: SOCK_STREAM for a stream socket (an
   * unconnected one keeps a copy of the client's end: DataPipe's
   * readiness before connect/listen), SOCK_SEQPACKET for a datagram one.
   * The client's end is left in #pair[1]. `rings` false: never a ring,
   * for a reply that has no room for its memfd (ts_accept_batch).
   */
  #newPipe(f: ApiFile, sock: Socket, unconnected: boolean, rings: boolean): DataPipe | DgramPipe | number {
    const sk = sock.sk;
    if (!(sk instanceof TcpSock)) {
      if (this.#ux.socketPair(DGRAM_PAIR_BUF, DGRAM_PAIR_BUF, this.#pair, SOCK_SEQPACKET) < 0) return -ENOBUFS;
      return new DgramPipe(f, this.#pair[0], this.scratch);
    }
    if (this.#ux.socketPair(PAIR_BUF, PAIR_BUF, this.#pair) < 0) return -ENOBUFS;
    const peer = unconnected ? this.#ux.dupFd(this.#pair[1]) : -1;
    if (unconnected && peer < 0) {
      this.#ux.close(this.#pair[0]);
      this.#ux.close(this.#pair[1]);
      return -ENOBUFS;
    }
    // Rings when asked for; a socket whose memfd cannot be made stays on the pair (no FRAME_F_RING: the client knows).
    const ring = rings && f.client instanceof ApiClient && f.client.wantRings ? ringFor(this.#ux, f.client, f, this.#ringFd, this.mib) : null;
    return new DataPipe(f, sk, this.#pair[0], this.scratch, peer, ring);
  }
}
