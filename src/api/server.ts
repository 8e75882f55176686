/**
 * The syscall API: a UNIX stream socket where each connection is one client
 * process with its own descriptor table (docs/api.md is the protocol).
 *
 * The stack's socket calls never block (src/net/ipv4/tcp.ts). A call that
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
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Stack, StackLog } from '../net/stack.js';
import type { TcpProto } from '../net/ipv4/tcp_proto.js';
import { Timer } from '../lib/time.js';
import { formatIpv4, formatIpv6, ipv6IsLinkLocal, parseIpv4, parseIpv6 } from '../lib/addr.js';
import {
  tcpAccept,
  tcpBind,
  tcpBind6,
  tcpClose,
  tcpConnect,
  tcpConnect6,
  tcpEndpoint,
  tcpGetsockopt,
  tcpGetsockoptStr,
  tcpInq,
  tcpListen,
  tcpPoll,
  tcpRecvmsg,
  tcpSendmsg,
  tcpSetsockopt,
  tcpSetsockoptStr,
  tcpShutdown,
  tcpStateName,
} from '../net/ipv4/tcp.js';
import { TcpSock } from '../net/ipv4/tcp_sock.js';
import {
  API_MAGIC,
  API_MAX_FRAME,
  API_MAX_IO,
  API_MAX_POLL,
  API_VERSION,
  ArgError,
  ArgReader,
  FRAME_F_FD,
  FrameWriter,
  HDR_LEN,
  HELLO_LEN,
  HELLO_REPLY_LEN,
  HELLO_WANT_FDS,
  SOCKADDR_IN6_LEN,
  SYS,
  SYS_NAMES,
  type SockAddr,
  CLOSE_F_SHARED,
} from './proto.js';
import { UnixConn, unixAddon } from './unix.js';
import { TCP_INFO_SIZE, encodeTcpInfo, tcpGetInfo } from '../net/ipv4/tcp_info.js';
import { sysctlGet, sysctlList, sysctlSet } from '../net/sysctl.js';
import {
  UdpRecvInfo,
  udpBind,
  udpClose,
  udpConnect,
  udpEndpoint,
  udpGetname,
  udpGetsockopt,
  udpIoctl,
  udpPoll,
  udpRecvmsg,
  udpSendmsg,
  udpSetsockopt,
  udpShutdown,
  udpStateName,
  type UdpAddr,
} from '../net/ipv4/udp.js';
import type { UdpSock } from '../net/ipv4/udp_sock.js';
import {
  PAIR_BUF,
  Body,
  Outcome,
  ApiFile,
  Parked,
  ApiSock,
  DataPipe,
  DGRAM_PAIR_BUF,
  ApiDgram,
  udpAddrFromWire,
  udpAddrToWire,
  DgramPipe,
} from './files.js';
import { TCP_CLOSE, TCP_LISTEN, TCP_NEW_SYN_RECV, TCP_SYN_RECV, TCP_SYN_SENT } from '../net/core/sock.js';
import { tcpNewSock } from '../net/ipv4/tcp_ipv4.js';
import {
  AF_INET,
  AF_INET6,
  EACCES,
  EAFNOSUPPORT,
  EAGAIN,
  EBADF,
  EINPROGRESS,
  EINVAL,
  EMFILE,
  ENOBUFS,
  ENOPROTOOPT,
  ENOSYS,
  ENOTCONN,
  ENOTTY,
  EOPNOTSUPP,
  EPOLLET,
  EPROTONOSUPPORT,
  errnoName,
  ESOCKTNOSUPPORT,
  F_GETFD,
  F_GETFL,
  F_SETFD,
  F_SETFL,
  FD_CLOEXEC,
  FIONBIO,
  FIONREAD,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_V6ONLY,
  MSG_DONTWAIT,
  MSG_MORE,
  MSG_PEEK,
  MSG_TRUNC,
  MSG_WAITALL,
  O_NONBLOCK,
  O_RDWR,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  POLLRDHUP,
  SHUT_RDWR,
  SIOCOUTQ,
  SO_ACCEPTCONN,
  SO_DOMAIN,
  SO_ERROR,
  SO_LINGER,
  SO_PROTOCOL,
  SO_RCVTIMEO,
  SO_SNDTIMEO,
  SO_TYPE,
  SO_ZEROCOPY,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_CONGESTION,
  TCP_INFO,
  TCP_INQ,
} from '../uapi.js';

export interface ApiOptions {
  path: string;
  /** Group owning the socket (mode 0660), or null to leave it root's. */
  gid: number | null;
  /** Members of this group may bind ports below 1024 as uid 0 may. */
  lowPortGid: number | null;
  /** Sockets one client may hold (EMFILE beyond). */
  maxSockets: number;
  /** Bytes one client may have buffered in the daemon (ENOBUFS beyond). */
  maxBuffered: number;
}

export const API_DEFAULTS = { maxSockets: 4096, maxBuffered: 64 * 1024 * 1024 };

/** Counters for `tapstack stats` (Api group). */
export class ApiMib {
  Clients = 0;
  ClientsTotal = 0;
  Calls = 0;
  CallErrors = 0;
  BadFrames = 0;
  ClientsDropped = 0;
  Parked = 0;
  DescriptorsPassed = 0;
  Emfile = 0;
  Enobufs = 0;
}

/** The largest reply of tapstack's own JSON calls. */
const API_MAX_REPLY = 64 * 1024 * 1024;
/** One API connection: a client process. */
export class ApiClient {
  readonly fds = new Map<number, ApiSock | ApiDgram>();
  /** Sockets closed over the API with CLOSE_F_SHARED whose data descriptor is still open elsewhere. */
  readonly orphans = new Set<ApiSock>();
  #in: Buffer = Buffer.alloc(0);
  #hello = false;
  wantFds = false;
  closed = false;
  parked = new Set<Parked>();
  constructor(
    readonly server: ApiServer,
    readonly conn: UnixConn,
    readonly pid: number,
    readonly uid: number,
    readonly gid: number,
  ) {}

  /** The lowest free descriptor number, as the kernel's fd allocator gives (3 and up: 0-2 look like stdio). */
  allocFd(): number {
    let fd = 3;
    while (this.fds.has(fd)) fd++;
    return fd;
  }

  /** Sockets held against apiMaxSockets: the table's and the orphans'. */
  get sockets(): number {
    return this.fds.size + this.orphans.size;
  }

  get buffered(): number {
    let n = this.conn.queued;
    for (const as of this.fds.values()) if (as.pipe) n += as.pipe.buffered;
    return n;
  }

  input(data: Buffer): void {
    this.#in = this.#in.length ? Buffer.concat([this.#in, data]) : Buffer.from(data);
    let off = 0;
    if (!this.#hello) {
      if (this.#in.length < HELLO_LEN) return;
      const magic = this.#in.readUInt32LE(0);
      const version = this.#in.readUInt16LE(4);
      const flags = this.#in.readUInt16LE(6);
      const reply = Buffer.alloc(HELLO_REPLY_LEN);
      reply.writeUInt32LE(API_MAGIC, 0);
      reply.writeUInt16LE(API_VERSION, 4);
      if (magic !== API_MAGIC || version !== API_VERSION) {
        reply.writeUInt16LE(0, 6);
        this.conn.write(reply);
        return this.server.drop(this, magic !== API_MAGIC ? 'bad magic in hello' : `unsupported version ${version}`);
      }
      this.wantFds = (flags & HELLO_WANT_FDS) !== 0;
      reply.writeUInt16LE(this.wantFds ? HELLO_WANT_FDS : 0, 6);
      reply.writeUInt32LE(process.pid, 8);
      reply.writeUInt32LE(API_MAX_FRAME, 12);
      this.conn.write(reply);
      this.#hello = true;
      off = HELLO_LEN;
    }
    while (!this.closed && this.#in.length - off >= HDR_LEN) {
      const len = this.#in.readUInt32LE(off);
      if (len < HDR_LEN || len > API_MAX_FRAME) {
        return this.server.drop(this, `impossible frame length ${len}`);
      }
      if (this.#in.length - off < len) break;
      const id = this.#in.readUInt32LE(off + 4);
      const call = this.#in.readUInt16LE(off + 8);
      // Copy the frame out: a parked call may keep a view of it after the buffer moves on.
      this.server.dispatch(this, id, call, Buffer.from(this.#in.subarray(off, off + len)));
      off += len;
    }
    this.#in = off >= this.#in.length ? Buffer.alloc(0) : this.#in.subarray(off);
    // A client that pipelines faster than it reads replies stops being read.
    if (this.conn.queued > this.server.opts.maxBuffered) this.conn.setReading(false);
  }

  reply(id: number, call: number, o: Outcome): void {
    if (this.closed) {
      if (o.fd !== undefined && o.fd >= 0) unixAddon().close(o.fd);
      return;
    }
    const w = new FrameWriter(id, call, o.fd !== undefined && o.fd >= 0 ? FRAME_F_FD : 0);
    w.i32(o.ret);
    if (o.ret < 0) {
      this.server.mib.CallErrors++;
      const name = Buffer.from(errnoName(o.ret));
      w.bytes(Buffer.from([name.length])).bytes(name);
    } else if (o.body) {
      o.body(w);
    }
    this.conn.write(w.finish(), o.fd ?? -1);
    if (o.fd !== undefined && o.fd >= 0) this.server.mib.DescriptorsPassed++;
  }
}

const err = (errno: number): Outcome => ({ ret: -errno });
const ok = (ret = 0, body?: Body): Outcome => ({ ret, body });

export class ApiServer {
  readonly mib = new ApiMib();
  readonly tcp: TcpProto;
  readonly clients = new Set<ApiClient>();
  /** Shared read buffer of the data pumps and message-mode reads. */
  readonly scratch = Buffer.allocUnsafe(API_MAX_IO);
  readonly #ux = unixAddon();
  #listenFd = -1;
  #watch: unknown = null;
  readonly #cred = new Int32Array(3);
  readonly #pair = new Int32Array(2);

  constructor(readonly stack: Stack, readonly opts: ApiOptions, readonly log: StackLog) {
    this.tcp = stack.tcp;
  }

  /** Create the directory, replace a stale socket file, listen, set mode 0660 and the group. */
  start(): void {
    const path = this.opts.path;
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    if (existsSync(path)) {
      const st = lstatSync(path);
      if (!st.isSocket()) throw new Error(`api: ${path} exists and is not a socket`);
      let live = false;
      try {
        const fd = this.#ux.unixConnect(path);
        this.#ux.close(fd);
        live = true;
      } catch {
        // ECONNREFUSED: a socket file nobody listens on, left by a dead daemon.
      }
      if (live) throw new Error(`api: another daemon is listening on ${path}`);
      unlinkSync(path);
    }
    this.#listenFd = this.#ux.unixListen(path, 511);
    chmodSync(path, 0o660);
    if (this.opts.gid !== null) chownSync(path, process.getuid?.() ?? 0, this.opts.gid);
    this.#watch = this.#ux.watch(this.#listenFd, () => this.#accept());
    this.#ux.watchSet(this.#watch, this.#ux.UV_READABLE);
  }

  stop(): void {
    if (this.#listenFd < 0) return;
    this.#ux.watchClose(this.#watch);
    this.#ux.close(this.#listenFd);
    this.#listenFd = -1;
    for (const c of [...this.clients]) this.drop(c, null);
    try {
      unlinkSync(this.opts.path);
    } catch {
      // already gone
    }
  }

  /** The owner of a stack socket, for `ss -p`. */
  ownerOf(sk: TcpSock): { pid: number; fd: number } | null {
    const as = this.#owner.get(sk);
    return as ? { pid: as.client.pid, fd: as.fd } : null;
  }
  readonly #owner = new WeakMap<TcpSock, ApiSock>();

  #accept(): void {
    for (let i = 0; i < 64; i++) {
      const fd = this.#ux.accept(this.#listenFd);
      if (fd < 0) {
        if (fd !== -EAGAIN) this.log.warn({ err: errnoName(fd) }, 'api: accept failed');
        return;
      }
      if (this.#ux.peerCred(fd, this.#cred) < 0) {
        this.#ux.close(fd);
        continue;
      }
      const conn = new UnixConn(fd);
      const c = new ApiClient(this, conn, this.#cred[0], this.#cred[1], this.#cred[2]);
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
      conn.onDrain = () => {
        if (!c.closed) conn.setReading(true);
      };
      this.clients.add(c);
      this.mib.Clients++;
      this.mib.ClientsTotal++;
      this.log.debug({ pid: c.pid, uid: c.uid }, 'api: client connected');
    }
  }

  /**
   * A client is gone (disconnect, or a corrupt stream when `reason` is set):
   * its sockets are closed as a dying process's are (FIN, or RST with unread
   * data; listeners stop accepting) and its parked calls are dropped.
   */
  drop(c: ApiClient, reason: string | null): void {
    if (c.closed) return;
    c.closed = true;
    if (reason) {
      this.mib.ClientsDropped++;
      this.log.warn({ pid: c.pid, uid: c.uid, reason }, 'api: closing client connection');
    }
    for (const p of c.parked) this.#unpark(p);
    for (const as of c.fds.values()) this.#release(as);
    for (const as of c.orphans) this.#release(as);
    c.orphans.clear();
    c.fds.clear();
    c.conn.close();
    this.clients.delete(c);
    this.mib.Clients--;
  }

  #release(as: ApiSock | ApiDgram): void {
    if (as instanceof ApiDgram) return this.#releaseDgram(as);
    // What the client wrote before closing is still in the pair (its close can overtake
    // the pair's readiness): hand it to TCP first, as close() sends what write() queued.
    as.pipe?.run();
    as.pipe?.close();
    as.pipe = null;
    for (const p of [...as.waiters]) {
      this.#unpark(p);
      p.client.reply(p.id, p.call, err(EBADF));
    }
    // Children queued on a listener but never accepted die with it (tcpClose handles them).
    tcpClose(this.tcp, as.sk);
  }

  /** Run the calls parked on a socket once more after its wake-up. */
  retry(as: ApiFile): void {
    if (!as.waiters.length) return;
    for (const p of [...as.waiters]) {
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

  /** Run work for a client outside its input (a pump after a wake-up): our bug drops that client only. */
  runFor(c: ApiClient, fn: () => void): void {
    if (c.closed) return;
    try {
      fn();
    } catch (e) {
      this.drop(c, `internal error: ${(e as Error).stack ?? e}`);
    }
  }

  /**
   * Work for one client done outside its input (a wake-up, a timer): a
   * bad argument found late still gets its errno reply; anything else is
   * our bug, and costs that client its connection, never the daemon or
   * another client.
   */
  #guarded(c: ApiClient, id: number, call: number, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof ArgError) {
        for (const p of c.parked) if (p.id === id && p.call === call) this.#unpark(p);
        c.reply(id, call, err(e.errno));
        return;
      }
      this.drop(c, `internal error: ${(e as Error).stack ?? e}`);
    }
  }

  #park(c: ApiClient, id: number, call: number, socks: ApiFile[], timeoutMs: number, attempt: () => Outcome | null, timeout: () => Outcome): void {
    const p: Parked = { client: c, id, call, socks, attempt, timeout, timer: null, done: false };
    if (timeoutMs > 0) {
      p.timer = new Timer(() => {
        if (p.done) return;
        this.#unpark(p);
        this.#guarded(p.client, p.id, p.call, () => p.client.reply(p.id, p.call, p.timeout()));
      });
      this.stack.time.timers.mod(p.timer, this.stack.time.clock.now() + timeoutMs);
    }
    for (const as of socks) as.waiters.push(p);
    c.parked.add(p);
    this.mib.Parked++;
  }

  #unpark(p: Parked): void {
    if (p.done) return;
    p.done = true;
    if (p.timer) this.stack.time.timers.del(p.timer);
    for (const as of p.socks) {
      const i = as.waiters.indexOf(p);
      if (i >= 0) as.waiters.splice(i, 1);
    }
    p.client.parked.delete(p);
    this.mib.Parked--;
  }

  /**
   * Run a call that may block: try it; if it would block, reply EAGAIN for a
   * non-blocking socket or park it until a wake-up lets it finish.
   */
  #blocking(c: ApiClient, id: number, call: number, as: ApiFile, nonblock: boolean, timeoutMs: number, attempt: () => Outcome | null, timeout: () => Outcome = () => err(EAGAIN)): void {
    const o = attempt();
    if (o) return c.reply(id, call, o);
    if (nonblock) return c.reply(id, call, timeout());
    this.#park(c, id, call, [as], timeoutMs, attempt, timeout);
  }

  dispatch(c: ApiClient, id: number, call: number, frame: Buffer): void {
    this.mib.Calls++;
    const r = new ArgReader(frame, HDR_LEN, frame.length);
    try {
      this.#call(c, id, call, r);
    } catch (e) {
      if (e instanceof ArgError) {
        this.log.debug({ pid: c.pid, call: SYS_NAMES[call] ?? call, msg: e.message }, 'api: bad argument');
        return c.reply(id, call, err(e.errno));
      }
      throw e;
    }
  }

  #sock(c: ApiClient, fd: number): ApiSock {
    const as = c.fds.get(fd);
    if (!as) throw new ArgError(EBADF, `fd ${fd} is not open`);
    if (as instanceof ApiDgram) throw new ArgError(EOPNOTSUPP, `fd ${fd} is a datagram socket`);
    return as;
  }

  #call(c: ApiClient, id: number, call: number, r: ArgReader): void {
    if (this.#dgramCall(c, id, call, r)) return;
    const tcp = this.tcp;
    switch (call) {
      case SYS.socket: {
        const domain = r.i32();
        const type = r.i32();
        const protocol = r.i32();
        if (domain !== AF_INET && domain !== AF_INET6) return c.reply(id, call, err(EAFNOSUPPORT));
        const base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (base !== SOCK_STREAM) return c.reply(id, call, err(ESOCKTNOSUPPORT));
        if (protocol !== 0 && protocol !== IPPROTO_TCP) return c.reply(id, call, err(EPROTONOSUPPORT));
        return c.reply(id, call, this.#newSock(c, tcpNewSock(tcp, domain), (type & SOCK_NONBLOCK) !== 0, (type & SOCK_CLOEXEC) !== 0, true));
      }
      case SYS.close: {
        const as = this.#sock(c, r.i32());
        const flags = r.end - r.off >= 4 ? r.i32() : 0;
        c.fds.delete(as.fd);
        // CLOSE_F_SHARED: copies of the data descriptor may live on in other processes (fork), and the
        // socket with them, as a kernel socket lives until its last descriptor is closed.
        if (flags & CLOSE_F_SHARED && as.pipe?.shared()) {
          c.orphans.add(as);
          as.pipe.onLastClose = () => {
            c.orphans.delete(as);
            this.#release(as);
          };
          as.pipe.run();
        } else {
          this.#release(as);
        }
        return c.reply(id, call, ok());
      }
      case SYS.bind: {
        const as = this.#sock(c, r.i32());
        const sa = r.sockaddr();
        const v6 = as.sk.family === AF_INET6;
        const addr = v6 ? 0 : this.#inetAddr(sa);
        const addr6 = v6 ? this.#inet6Addr(sa) : null;
        if (sa.port !== 0 && sa.port < 1024 && c.uid !== 0 && !(this.opts.lowPortGid !== null && c.gid === this.opts.lowPortGid)) {
          return c.reply(id, call, err(EACCES));
        }
        if (addr6 !== null) return c.reply(id, call, ok(tcpBind6(tcp, as.sk, addr6, sa.port, sa.scopeId ?? 0)));
        return c.reply(id, call, ok(tcpBind(tcp, as.sk, addr, sa.port)));
      }
      case SYS.listen: {
        const as = this.#sock(c, r.i32());
        const backlog = r.i32();
        const rc = tcpListen(tcp, as.sk, backlog);
        // The descriptor stays: it carries no data, but is readable while a connection waits (files.ts).
        as.pipe?.run();
        return c.reply(id, call, ok(rc));
      }
      case SYS.accept:
      case SYS.accept4: {
        const as = this.#sock(c, r.i32());
        const flags = call === SYS.accept4 ? r.i32() : 0;
        if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) return c.reply(id, call, err(EINVAL));
        if (as.sk.state !== TCP_LISTEN) return c.reply(id, call, err(EINVAL));
        return this.#blocking(c, id, call, as, as.nonblock, as.sk.rcvtimeo, () => {
          if (as.sk.state !== TCP_LISTEN) return err(EINVAL);
          if (c.sockets >= this.opts.maxSockets) {
            this.mib.Emfile++;
            return err(EMFILE);
          }
          const child = tcpAccept(tcp, as.sk);
          if (typeof child === 'number') return child === -EAGAIN ? null : err(-child);
          as.pipe?.run(); // the listener's readiness, before the reply: an emptied queue is no longer readable
          const o = this.#newSock(c, child, (flags & SOCK_NONBLOCK) !== 0, (flags & SOCK_CLOEXEC) !== 0, false);
          if (o.ret < 0) {
            tcpClose(tcp, child);
            return o;
          }
          const peer = this.#sockaddr(child, true);
          return { ret: o.ret, fd: o.fd, body: (w) => w.sockaddr(peer) };
        });
      }
      case SYS.connect: {
        const as = this.#sock(c, r.i32());
        const sa = r.sockaddr();
        const sk = as.sk;
        // A second connect on a socket whose handshake runs: EALREADY (non-blocking) or wait again.
        const rc = sk.family === AF_INET6 ? tcpConnect6(tcp, sk, this.#inet6Addr(sa), sa.port, sa.scopeId ?? 0) : tcpConnect(tcp, sk, this.#inetAddr(sa), sa.port);
        if (rc !== -EINPROGRESS) return c.reply(id, call, err(-rc));
        // The descriptor is not writable until the handshake is done, as a socket in SYN_SENT is not.
        if (sk.state === TCP_SYN_SENT) {
          as.pipe?.hold();
          as.pipe?.run();
        }
        return this.#blocking(
          c, id, call, as, as.nonblock, sk.sndtimeo,
          () => {
            if (sk.state === TCP_SYN_SENT || sk.state === TCP_SYN_RECV) return null;
            if (sk.state === TCP_CLOSE) {
              const e = sk.err || sk.errSoft || ENOTCONN;
              sk.err = 0;
              return err(e);
            }
            return ok();
          },
          () => err(EINPROGRESS),
        );
      }
      case SYS.shutdown: {
        const as = this.#sock(c, r.i32());
        const how = r.i32();
        const rc = tcpShutdownApi(tcp, as.sk, how);
        return c.reply(id, call, ok(rc));
      }
      case SYS.getsockname:
      case SYS.getpeername: {
        const as = this.#sock(c, r.i32());
        const sk = as.sk;
        if (call === SYS.getpeername) {
          if (!sk.daddr || sk.state === TCP_LISTEN || (sk.state === TCP_CLOSE && !sk.done) || sk.state === TCP_SYN_SENT) return c.reply(id, call, err(ENOTCONN));
          const peer = this.#sockaddr(sk, true);
          return c.reply(id, call, ok(0, (w) => w.sockaddr(peer)));
        }
        const local = this.#sockaddr(sk, false);
        return c.reply(id, call, ok(0, (w) => w.sockaddr(local)));
      }
      case SYS.setsockopt: {
        const as = this.#sock(c, r.i32());
        const level = r.i32();
        const name = r.i32();
        const len = r.u32();
        const val = r.bytes(len);
        return c.reply(id, call, ok(this.#setsockopt(as, level, name, val)));
      }
      case SYS.getsockopt: {
        const as = this.#sock(c, r.i32());
        const level = r.i32();
        const name = r.i32();
        const len = r.u32();
        const v = this.#getsockopt(as, level, name);
        if (typeof v === 'number') return c.reply(id, call, err(-v));
        const out = v.subarray(0, Math.min(len, v.length));
        return c.reply(id, call, ok(out.length, (w) => w.bytes(out)));
      }
      case SYS.fcntl: {
        const as = this.#sock(c, r.i32());
        const cmd = r.i32();
        const arg = r.i32();
        switch (cmd) {
          case F_GETFL:
            return c.reply(id, call, ok(O_RDWR | (as.nonblock ? O_NONBLOCK : 0)));
          case F_SETFL:
            as.nonblock = (arg & O_NONBLOCK) !== 0;
            return c.reply(id, call, ok());
          case F_GETFD:
            return c.reply(id, call, ok(as.cloexec ? FD_CLOEXEC : 0));
          case F_SETFD:
            as.cloexec = (arg & FD_CLOEXEC) !== 0;
            return c.reply(id, call, ok());
          default:
            return c.reply(id, call, err(EINVAL));
        }
      }
      case SYS.ioctl: {
        const as = this.#sock(c, r.i32());
        const req = r.u32();
        const sk = as.sk;
        switch (req) {
          case FIONREAD: {
            if (sk.state === TCP_LISTEN) return c.reply(id, call, err(EINVAL));
            const inPipe = as.pipe ? Math.max(0, this.#ux.ioctlInt(as.pipe.fd, this.#ux.SIOCOUTQ)) : 0;
            return c.reply(id, call, ok(tcpInq(sk) + inPipe));
          }
          case SIOCOUTQ:
            if (sk.state === TCP_LISTEN) return c.reply(id, call, err(EINVAL));
            return c.reply(id, call, ok((sk.writeSeq - sk.sndUna) >>> 0));
          case FIONBIO:
            as.nonblock = r.i32() !== 0;
            return c.reply(id, call, ok());
          default:
            return c.reply(id, call, err(ENOTTY));
        }
      }
      case SYS.read:
      case SYS.recvfrom:
      case SYS.recvmsg: {
        const as = this.#sock(c, r.i32());
        const flags = call === SYS.read ? 0 : r.i32();
        const count = r.u32();
        return this.#recv(c, id, call, as, flags, count);
      }
      case SYS.write:
      case SYS.sendto:
      case SYS.sendmsg: {
        const as = this.#sock(c, r.i32());
        const flags = call === SYS.write ? 0 : r.i32();
        if (call !== SYS.write) {
          const alen = r.u16();
          if (alen) {
            // sendto with an address on a connected stream socket: Linux ignores it (EISCONN only when unconnected is TFO).
            r.bytes(alen);
          }
        }
        return this.#send(c, id, call, as, flags, r.rest());
      }
      case SYS.poll:
        return this.#poll(c, id, call, r);
      case SYS.ts_sockets:
        return c.reply(id, call, this.#json(this.#sockets(r.u32() !== 0)));
      case SYS.ts_counters:
        return c.reply(id, call, this.#json({ ...this.stack.counters(), Api: { ...this.mib } }));
      case SYS.ts_sysctl:
        return c.reply(id, call, this.#sysctl(c, r.rest().toString('utf8')));
      default:
        return c.reply(id, call, err(ENOSYS));
    }
  }

  #json(v: unknown): Outcome {
    // Replies are not bound by the request limit; a socket list of 100k rows is a few MB.
    const b = Buffer.from(JSON.stringify(v));
    if (b.length > API_MAX_REPLY) return err(ENOBUFS);
    return ok(b.length, (w) => w.bytes(b));
  }

  #inetAddr(sa: SockAddr): number {
    if (sa.family !== AF_INET) throw new ArgError(EAFNOSUPPORT, 'only AF_INET addresses on an AF_INET socket');
    const a = parseIpv4(sa.addr);
    if (a === null) throw new ArgError(EINVAL, `bad address ${sa.addr}`);
    return a;
  }

  /** An AF_INET6 socket takes sockaddr_in6 only (inet6_bind, tcp_v6_connect: EAFNOSUPPORT otherwise). */
  #inet6Addr(sa: SockAddr): Buffer {
    if (sa.family !== AF_INET6) throw new ArgError(EAFNOSUPPORT, 'only AF_INET6 addresses on an AF_INET6 socket');
    const a = parseIpv6(sa.addr);
    if (a === null) throw new ArgError(EINVAL, `bad address ${sa.addr}`);
    return a;
  }

  /**
   * The socket's local or peer address in its own family: sockaddr_in, or
   * sockaddr_in6 for an AF_INET6 socket (v4-mapped for an IPv4 peer, as
   * inet6_getname reports; the interface as scope id for link-local).
   */
  #sockaddr(sk: TcpSock, peer: boolean): SockAddr {
    if (sk.family === AF_INET6) {
      const a = peer ? sk.v6Daddr! : sk.v6RcvSaddr!;
      const scopeId = ipv6IsLinkLocal(a) ? (this.stack.ipv6Stub?.ifindex ?? 0) : 0;
      return { family: AF_INET6, port: peer ? sk.dport : sk.num, flowinfo: 0, addr: formatIpv6(a), scopeId };
    }
    return { family: AF_INET, port: peer ? sk.dport : sk.num, addr: formatIpv4(peer ? sk.daddr : sk.rcvSaddr) };
  }

  /** A new descriptor for `sk` in the client's table; in descriptor mode its data socketpair comes with it. */
  #newSock(c: ApiClient, sk: TcpSock, nonblock: boolean, cloexec: boolean, unconnected: boolean): Outcome {
    if (c.sockets >= this.opts.maxSockets) {
      this.mib.Emfile++;
      return err(EMFILE);
    }
    const fd = c.allocFd();
    const as = new ApiSock(c, fd, sk);
    as.nonblock = nonblock;
    as.cloexec = cloexec;
    let give = -1;
    if (c.wantFds) {
      if (this.#ux.socketPair(PAIR_BUF, PAIR_BUF, this.#pair) < 0) return err(ENOBUFS);
      // An unconnected socket's pair keeps a copy of the client's end (DataPipe: readiness before connect/listen).
      const peer = unconnected ? this.#ux.dupFd(this.#pair[1]) : -1;
      if (unconnected && peer < 0) {
        this.#ux.close(this.#pair[0]);
        this.#ux.close(this.#pair[1]);
        return err(ENOBUFS);
      }
      as.pipe = new DataPipe(as, this.#pair[0], this, peer);
      give = this.#pair[1];
    }
    c.fds.set(fd, as);
    this.#owner.set(sk, as);
    sk.wake = (_sk, events) => as.wake(events);
    as.pipe?.run();
    return { ret: fd, fd: give };
  }

  #recv(c: ApiClient, id: number, call: number, as: ApiSock, flags: number, count: number): void {
    if (as.pipe) return c.reply(id, call, err(EOPNOTSUPP)); // data goes through the descriptor
    if (count > API_MAX_IO) count = API_MAX_IO;
    const sk = as.sk;
    const nonblock = as.nonblock || (flags & MSG_DONTWAIT) !== 0;
    const waitall = (flags & MSG_WAITALL) !== 0 && !(flags & MSG_PEEK);
    const got = Buffer.allocUnsafe(count);
    let have = 0;
    const reply = (n: number): Outcome => {
      const data = got.subarray(0, n);
      const peer = this.#sockaddr(sk, true);
      return ok(n, (w) => {
        if (call !== SYS.read) {
          w.u32(0); // msg_flags
          if (sk.daddr) w.sockaddr(peer);
          else w.u16(0);
        }
        w.bytes(data);
      });
    };
    if (count === 0) return c.reply(id, call, reply(0));
    // sock_rcvlowat: a blocking read returns once it has this much (all of it with MSG_WAITALL), or at EOF.
    const target = waitall ? count : Math.min(sk.rcvlowat, count);
    const attempt = (): Outcome | null => {
      const n = tcpRecvmsg(this.tcp, sk, got.subarray(have), flags & MSG_PEEK);
      if (n > 0) {
        have += n;
        return have >= target || nonblock ? reply(have) : null;
      }
      if (n === 0) return reply(have);
      if (n === -EAGAIN) return have && nonblock ? reply(have) : null;
      return have ? reply(have) : err(-n);
    };
    this.#blocking(c, id, call, as, nonblock, sk.rcvtimeo, attempt, () => (have ? reply(have) : err(EAGAIN)));
  }

  #send(c: ApiClient, id: number, call: number, as: ApiSock, flags: number, data: Buffer): void {
    if (as.pipe) return c.reply(id, call, err(EOPNOTSUPP));
    const sk = as.sk;
    const nonblock = as.nonblock || (flags & MSG_DONTWAIT) !== 0;
    const tflags = flags & MSG_MORE;
    let sent = 0;
    const attempt = (): Outcome | null => {
      if (sk.state === TCP_SYN_SENT || sk.state === TCP_SYN_RECV) return null; // sk_stream_wait_connect
      while (sent < data.length) {
        const n = tcpSendmsg(this.tcp, sk, data.subarray(sent), tflags);
        if (n === -EAGAIN) return nonblock && sent ? ok(sent) : null;
        if (n < 0) {
          if (sent) return ok(sent);
          // No SIGPIPE crosses the API (MSG_NOSIGNAL is implied); a preloaded client raises it itself.
          return err(-n);
        }
        sent += n;
      }
      return ok(sent);
    };
    if (data.length === 0) {
      const o = attempt();
      return c.reply(id, call, o ?? ok(0));
    }
    this.#blocking(c, id, call, as, nonblock, sk.sndtimeo, attempt, () => (sent ? ok(sent) : err(EAGAIN)));
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
        const as = c.fds.get(fds[i]);
        if (!as) {
          revents[i] = fds[i] < 0 ? 0 : POLLNVAL;
        } else {
          const want = (events[i] & 0xffff) | POLLERR | POLLHUP;
          let m = this.#pollMask(as) & want;
          if (events[i] & EPOLLET) {
            m &= ~as.edgeSeen;
            as.edgeSeen |= m;
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
    const socks = fds.map((fd) => c.fds.get(fd)).filter((x): x is ApiSock | ApiDgram => !!x);
    this.#park(c, id, call, socks, timeout < 0 ? 0 : timeout, attempt, zero);
  }

  #pollMask(as: ApiSock | ApiDgram): number {
    if (as instanceof ApiDgram) return (udpPoll(as.sk) | (as.pipe?.error ? POLLERR : 0)) & 0xffff;
    const sk = as.sk;
    let m = tcpPoll(this.tcp, sk);
    // A socket never connected is writable-and-hung-up to poll(2) on Linux: POLLOUT|POLLHUP.
    if (sk.state === TCP_CLOSE && !sk.done && !sk.err && !sk.daddr) m = POLLOUT | POLLHUP;
    if (m & POLLIN && sk.shutdown & 1) m |= POLLRDHUP;
    return m & 0xffff;
  }

  #setsockopt(as: ApiSock, level: number, name: number, val: Buffer): number {
    const sk = as.sk;
    const int = (): number => {
      if (val.length < 4) throw new ArgError(EINVAL, 'option value shorter than an int');
      return val.readInt32LE(0);
    };
    const timeval = (): number => {
      if (val.length < 16) throw new ArgError(EINVAL, 'struct timeval needs 16 bytes');
      const sec = Number(val.readBigInt64LE(0));
      const usec = Number(val.readBigInt64LE(8));
      if (usec < 0 || usec >= 1_000_000) return -33; // EDOM, as sock_set_timeout
      if (sec < 0) return 0;
      return sec * 1000 + Math.ceil(usec / 1000);
    };
    if (level === SOL_SOCKET) {
      switch (name) {
        case SO_RCVTIMEO: {
          const t = timeval();
          if (t < 0) return t;
          sk.rcvtimeo = t;
          return 0;
        }
        case SO_SNDTIMEO: {
          const t = timeval();
          if (t < 0) return t;
          sk.sndtimeo = t;
          return 0;
        }
        case SO_LINGER: {
          if (val.length < 8) return -EINVAL;
          const on = val.readInt32LE(0);
          const secs = val.readInt32LE(4);
          sk.lingerSec = on ? Math.max(0, secs) : -1;
          return 0;
        }
        case SO_TYPE:
        case SO_DOMAIN:
        case SO_ERROR:
          return -ENOPROTOOPT;
        case SO_ZEROCOPY:
          // Its completions are read with recvmsg(MSG_ERRQUEUE), which the API does not carry yet.
          return -ENOPROTOOPT;
      }
      return tcpSetsockopt(this.tcp, sk, level, name, int());
    }
    if (level === IPPROTO_TCP) {
      if (name === TCP_CONGESTION) {
        // tcp_set_congestion_control: a name up to TCP_CA_NAME_MAX, ENOENT if no such algorithm.
        return tcpSetsockoptStr(this.tcp, sk, level, name, val.subarray(0, 16).toString('latin1').replace(/\0.*$/s, ''));
      }
      if (name === TCP_INFO) return -ENOPROTOOPT;
      // TCP_INQ's TCP_CM_INQ control message needs recvmsg control data, which the API does not carry yet.
      if (name === TCP_INQ) return -ENOPROTOOPT;
      return tcpSetsockopt(this.tcp, sk, level, name, int());
    }
    // IPV6_V6ONLY on an AF_INET6 socket (EINVAL once bound); ENOPROTOOPT on AF_INET, as Linux.
    if (level === IPPROTO_IPV6 && name === IPV6_V6ONLY) {
      if (val.length < 4) return sk.family === AF_INET6 ? -EINVAL : -ENOPROTOOPT;
      return tcpSetsockopt(this.tcp, sk, level, name, val.readInt32LE(0));
    }
    return -ENOPROTOOPT;
  }

  #getsockopt(as: ApiSock, level: number, name: number): Buffer | number {
    const sk = as.sk;
    const int = (v: number): Buffer | number => {
      if (v < 0) return v;
      const b = Buffer.alloc(4);
      b.writeInt32LE(v);
      return b;
    };
    if (level === SOL_SOCKET) {
      switch (name) {
        case SO_RCVTIMEO:
        case SO_SNDTIMEO: {
          const ms = name === SO_RCVTIMEO ? sk.rcvtimeo : sk.sndtimeo;
          const b = Buffer.alloc(16);
          b.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
          b.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
          return b;
        }
        case SO_ERROR:
          if (as.pipe?.error) {
            const e = as.pipe.error;
            as.pipe.error = 0;
            return int(e);
          }
          break;
        case SO_LINGER: {
          const b = Buffer.alloc(8);
          b.writeInt32LE(sk.lingerSec >= 0 ? 1 : 0, 0);
          b.writeInt32LE(Math.max(0, sk.lingerSec), 4);
          return b;
        }
        // What a program asks of a socket it got by number (Python's socket(fileno=), systemd-style inheritance).
        case SO_PROTOCOL:
          return int(IPPROTO_TCP);
        case SO_ACCEPTCONN:
          return int(sk.state === TCP_LISTEN ? 1 : 0);
      }
      return int(tcpGetsockopt(this.tcp, sk, level, name));
    }
    if (level === IPPROTO_TCP) {
      if (name === TCP_INFO) {
        const b = Buffer.alloc(TCP_INFO_SIZE);
        encodeTcpInfo(tcpGetInfo(this.tcp, sk), b);
        return b;
      }
      if (name === TCP_CONGESTION) {
        const v = tcpGetsockoptStr(this.tcp, sk, level, name);
        if (typeof v === 'number') return v;
        const b = Buffer.alloc(16); // TCP_CA_NAME_MAX, NUL-padded as Linux returns it
        b.write(v);
        return b;
      }
      return int(tcpGetsockopt(this.tcp, sk, level, name));
    }
    if (level === IPPROTO_IPV6) return int(tcpGetsockopt(this.tcp, sk, level, name));
    return -ENOPROTOOPT;
  }

  /** `ss -tanpie` as data: every socket, with the owning client where there is one. */
  #sockets(info: boolean): unknown[] {
    const rows: unknown[] = [];
    for (const s of this.tcp.hashinfo.sockets()) {
      const row: Record<string, unknown> = {
        state: tcpStateName(s.state === TCP_NEW_SYN_RECV ? TCP_SYN_RECV : s.state),
        local: tcpEndpoint(s, false),
        peer: tcpEndpoint(s, true),
        recvQ: 0,
        sendQ: 0,
      };
      if (s instanceof TcpSock) {
        if (s.state === TCP_LISTEN) {
          row.recvQ = s.acceptQueue.length;
          row.sendQ = s.maxAckBacklog;
        } else {
          row.recvQ = tcpInq(s);
          row.sendQ = (s.writeSeq - s.sndUna) >>> 0;
        }
        const owner = this.ownerOf(s);
        if (owner) row.owner = owner;
        if (info && s.state !== TCP_LISTEN) row.info = tcpInfoFields(this.tcp, s);
      }
      rows.push(row);
    }
    rows.push(...this.#dgramRows());
    return rows;
  }

  // --- datagram sockets (SOCK_DGRAM) ----------------------------------------------------

  /** Calls on UDP sockets, and socket(SOCK_DGRAM); false leaves the call to the stream path. */
  #dgramCall(c: ApiClient, id: number, call: number, r: ArgReader): boolean {
    if (call === SYS.socket) {
      if (r.end - r.off < 12) return false;
      const domain = r.buf.readInt32LE(r.off);
      const type = r.buf.readInt32LE(r.off + 4);
      const protocol = r.buf.readInt32LE(r.off + 8);
      if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) !== SOCK_DGRAM || (domain !== AF_INET && domain !== AF_INET6)) return false;
      r.off += 12;
      // AF_INET6 datagram sockets when the stack runs IPv6 (as Linux with IPv6 disabled answers EAFNOSUPPORT).
      if (domain === AF_INET6 && !this.stack.ipv6.enabled) return c.reply(id, call, err(EAFNOSUPPORT)), true;
      if (protocol !== 0 && protocol !== IPPROTO_UDP) return c.reply(id, call, err(EPROTONOSUPPORT)), true;
      c.reply(id, call, this.#newDgram(c, domain, (type & SOCK_NONBLOCK) !== 0, (type & SOCK_CLOEXEC) !== 0));
      return true;
    }
    if (call === SYS.poll || call >= 0x1000 || r.end - r.off < 4) return false;
    const as = c.fds.get(r.buf.readInt32LE(r.off));
    if (!(as instanceof ApiDgram)) return false;
    r.off += 4;
    const udp = this.stack.udp;
    const sk = as.sk;
    switch (call) {
      case SYS.close:
        c.fds.delete(as.fd);
        this.#releaseDgram(as);
        c.reply(id, call, ok());
        return true;
      case SYS.bind: {
        const a = udpAddrFromWire(r.bytes(r.u16()));
        if (a.port !== 0 && a.port < 1024 && c.uid !== 0 && !(this.opts.lowPortGid !== null && c.gid === this.opts.lowPortGid)) {
          c.reply(id, call, err(EACCES));
          return true;
        }
        if (sk.family === AF_INET6 && a.family !== AF_INET6) c.reply(id, call, err(EAFNOSUPPORT));
        else c.reply(id, call, ok(udpBind(udp, sk, a)));
        return true;
      }
      case SYS.connect: {
        const a = udpAddrFromWire(r.bytes(r.u16()));
        c.reply(id, call, ok(udpConnect(udp, sk, a)));
        as.pipe?.run();
        return true;
      }
      case SYS.listen:
      case SYS.accept:
      case SYS.accept4:
        c.reply(id, call, err(EOPNOTSUPP));
        return true;
      case SYS.shutdown:
        c.reply(id, call, ok(udpShutdown(udp, sk, r.i32())));
        return true;
      case SYS.getsockname:
      case SYS.getpeername: {
        const out: UdpAddr = { family: sk.family, addr: 0, addr6: null, port: 0 };
        const rc = udpGetname(sk, call === SYS.getpeername, out);
        if (rc < 0) {
          c.reply(id, call, err(-rc));
          return true;
        }
        const b = Buffer.alloc(2 + SOCKADDR_IN6_LEN);
        const n = udpAddrToWire(b, 0, out.family, out.addr, out.addr6 ?? new Uint8Array(16), out.port);
        c.reply(id, call, ok(0, (w) => w.bytes(b.subarray(0, n))));
        return true;
      }
      case SYS.setsockopt: {
        const level = r.i32();
        const name = r.i32();
        const len = r.u32();
        c.reply(id, call, ok(this.#dgramSetsockopt(as, level, name, r.bytes(len))));
        return true;
      }
      case SYS.getsockopt: {
        const level = r.i32();
        const name = r.i32();
        const len = r.u32();
        const v = this.#dgramGetsockopt(as, level, name);
        if (typeof v === 'number') c.reply(id, call, err(-v));
        else {
          const out = v.subarray(0, Math.min(len, v.length));
          c.reply(id, call, ok(out.length, (w) => w.bytes(out)));
        }
        return true;
      }
      case SYS.fcntl: {
        const cmd = r.i32();
        const arg = r.i32();
        if (cmd === F_GETFL) c.reply(id, call, ok(0o2 | (as.nonblock ? O_NONBLOCK : 0)));
        else if (cmd === F_SETFL) {
          as.nonblock = (arg & O_NONBLOCK) !== 0;
          c.reply(id, call, ok());
        } else if (cmd === F_GETFD) c.reply(id, call, ok(as.cloexec ? FD_CLOEXEC : 0));
        else if (cmd === F_SETFD) {
          as.cloexec = (arg & FD_CLOEXEC) !== 0;
          c.reply(id, call, ok());
        } else c.reply(id, call, err(EINVAL));
        return true;
      }
      case SYS.ioctl: {
        const req = r.u32();
        if (req === FIONBIO) {
          as.nonblock = r.i32() !== 0;
          c.reply(id, call, ok());
        } else if (req === FIONREAD || req === SIOCOUTQ) {
          c.reply(id, call, ok(udpIoctl(sk, req)));
        } else c.reply(id, call, err(ENOTTY));
        return true;
      }
      case SYS.read:
      case SYS.recvfrom:
      case SYS.recvmsg: {
        const flags = call === SYS.read ? 0 : r.i32();
        const count = r.u32();
        this.#dgramRecv(c, id, call, as, flags, count);
        return true;
      }
      case SYS.write:
      case SYS.sendto:
      case SYS.sendmsg: {
        const flags = call === SYS.write ? 0 : r.i32();
        let to: UdpAddr | null = null;
        if (call !== SYS.write) {
          const alen = r.u16();
          if (alen) to = udpAddrFromWire(r.bytes(alen));
        }
        const data = r.rest();
        if (as.pipe) c.reply(id, call, err(EOPNOTSUPP)); // the datagrams go through the descriptor
        else c.reply(id, call, ok(udpSendmsg(udp, sk, data, flags & MSG_MORE, to)));
        return true;
      }
      default:
        return false;
    }
  }

  #newDgram(c: ApiClient, family: number, nonblock: boolean, cloexec: boolean): Outcome {
    if (c.sockets >= this.opts.maxSockets) {
      this.mib.Emfile++;
      return err(EMFILE);
    }
    const sk = this.stack.udp.newSock(family, c.uid);
    const fd = c.allocFd();
    const as = new ApiDgram(c, fd, sk);
    as.nonblock = nonblock;
    as.cloexec = cloexec;
    let give = -1;
    if (c.wantFds) {
      if (this.#ux.socketPair(DGRAM_PAIR_BUF, DGRAM_PAIR_BUF, this.#pair, SOCK_SEQPACKET) < 0) return err(ENOBUFS);
      as.pipe = new DgramPipe(as, this.#pair[0], this);
      give = this.#pair[1];
    }
    c.fds.set(fd, as);
    this.#dgramOwner.set(sk, as);
    sk.wake = (_sk, events) => as.wake(events);
    as.pipe?.run();
    return { ret: fd, fd: give };
  }
  readonly #dgramOwner = new WeakMap<UdpSock, ApiDgram>();

  #releaseDgram(as: ApiDgram): void {
    as.pipe?.close();
    as.pipe = null;
    for (const p of [...as.waiters]) {
      this.#unpark(p);
      p.client.reply(p.id, p.call, err(EBADF));
    }
    udpClose(this.stack.udp, as.sk);
  }

  /**
   * recvfrom/recvmsg/read on a UDP socket in message mode: one datagram,
   * truncated to `count` (msg_flags MSG_TRUNC; ret its real length with
   * MSG_TRUNC in flags). Blocks (SO_RCVTIMEO) like udp_recvmsg.
   */
  #dgramRecv(c: ApiClient, id: number, call: number, as: ApiDgram, flags: number, count: number): void {
    if (as.pipe) return c.reply(id, call, err(EOPNOTSUPP));
    if (count > API_MAX_IO) count = API_MAX_IO;
    const sk = as.sk;
    const nonblock = as.nonblock || (flags & MSG_DONTWAIT) !== 0;
    const info = new UdpRecvInfo();
    const got = Buffer.allocUnsafe(count);
    const attempt = (): Outcome | null => {
      const n = udpRecvmsg(this.stack.udp, sk, got, flags & (MSG_PEEK | MSG_TRUNC), info, nonblock);
      if (n === -EAGAIN) return null;
      if (n < 0) return err(-n);
      const empty = info.len < 0; // shutdown(SHUT_RD): 0 with no datagram and no address
      const data = got.subarray(0, empty ? 0 : Math.min(n, count, info.len));
      return ok(n, (w) => {
        if (call !== SYS.read) {
          w.u32(info.flags);
          if (empty) w.u16(0);
          else {
            const b = Buffer.allocUnsafe(2 + SOCKADDR_IN6_LEN);
            w.bytes(b.subarray(0, udpAddrToWire(b, 0, info.family, info.addr, info.addr6, info.port)));
          }
        }
        w.bytes(data);
      });
    };
    this.#blocking(c, id, call, as, nonblock, sk.rcvtimeo, attempt);
  }

  #dgramSetsockopt(as: ApiDgram, level: number, name: number, val: Buffer): number {
    const sk = as.sk;
    if (level === SOL_SOCKET && (name === SO_RCVTIMEO || name === SO_SNDTIMEO)) {
      if (val.length < 16) return -EINVAL;
      const sec = Number(val.readBigInt64LE(0));
      const usec = Number(val.readBigInt64LE(8));
      if (usec < 0 || usec >= 1_000_000) return -33; // EDOM, as sock_set_timeout
      const ms = sec < 0 ? 0 : sec * 1000 + Math.ceil(usec / 1000);
      if (name === SO_RCVTIMEO) sk.rcvtimeo = ms;
      else sk.sndtimeo = ms;
      return 0;
    }
    if (level === SOL_SOCKET && name === SO_LINGER) {
      if (val.length < 8) return -EINVAL;
      val.copy(as.linger, 0, 0, 8);
      return 0;
    }
    if (level === SOL_SOCKET && (name === SO_TYPE || name === SO_DOMAIN || name === SO_ERROR || name === SO_PROTOCOL)) return -ENOPROTOOPT;
    if (val.length < 4) return -EINVAL;
    return udpSetsockopt(this.stack.udp, sk, level, name, val.readInt32LE(0));
  }

  #dgramGetsockopt(as: ApiDgram, level: number, name: number): Buffer | number {
    const sk = as.sk;
    const int = (v: number): Buffer | number => {
      if (v < 0) return v;
      const b = Buffer.alloc(4);
      b.writeInt32LE(v);
      return b;
    };
    if (level === SOL_SOCKET) {
      if (name === SO_RCVTIMEO || name === SO_SNDTIMEO) {
        const ms = name === SO_RCVTIMEO ? sk.rcvtimeo : sk.sndtimeo;
        const b = Buffer.alloc(16);
        b.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
        b.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
        return b;
      }
      if (name === SO_LINGER) return Buffer.from(as.linger);
      if (name === SO_ACCEPTCONN) return int(0);
      if (name === SO_ERROR && as.pipe?.error) {
        // An error waiting to go down the descriptor: SO_ERROR takes it instead.
        const e = as.pipe.error;
        as.pipe.error = 0;
        return int(e);
      }
    }
    return int(udpGetsockopt(this.stack.udp, sk, level, name));
  }

  /** `ss -uan` rows for #sockets. */
  #dgramRows(): unknown[] {
    const rows: unknown[] = [];
    for (const u of this.stack.udp.table.sockets()) {
      const row: Record<string, unknown> = { proto: 'udp', state: udpStateName(u), local: udpEndpoint(u, false), peer: udpEndpoint(u, true), recvQ: u.rmemAlloc, sendQ: 0 };
      const as = this.#dgramOwner.get(u);
      if (as) row.owner = { pid: as.client.pid, fd: as.fd };
      rows.push(row);
    }
    return rows;
  }

  /**
   * "" lists every setting, "name" reads one, "name=value" writes one. Writes
   * need uid 0, as /proc/sys is root's; a bad value is EINVAL, an unknown name
   * ENOENT, a read-only one EPERM (src/net/sysctl.ts has the names).
   */
  #sysctl(c: ApiClient, req: string): Outcome {
    if (req === '') return this.#json(Object.fromEntries(sysctlList(this.stack)));
    const eq = req.indexOf('=');
    const name = (eq < 0 ? req : req.slice(0, eq)).trim();
    if (eq < 0) {
      const v = sysctlGet(this.stack, name);
      return typeof v === 'number' && v < 0 ? err(-v) : this.#json({ [name]: v });
    }
    if (c.uid !== 0) return err(EACCES);
    const why = { message: '' };
    const rc = sysctlSet(this.stack, name, req.slice(eq + 1).trim(), why);
    if (rc < 0) {
      this.log.debug({ pid: c.pid, msg: why.message }, 'api: sysctl refused');
      return err(-rc);
    }
    return this.#json({ [name]: sysctlGet(this.stack, name) });
  }
}

/** shutdown(2) with Linux's argument check (how is 0..2) and ENOTCONN on an unconnected socket. */
function tcpShutdownApi(tcp: TcpProto, sk: TcpSock, how: number): number {
  if (how < 0 || how > SHUT_RDWR) return -EINVAL;
  if (sk.state === TCP_CLOSE && !sk.done) return -ENOTCONN;
  return tcpShutdown(tcp, sk, how);
}

/** TCP_INFO as `ss -i` data: Linux's field names without the tcpi_ prefix, u64s as numbers. */
function tcpInfoFields(tcp: TcpProto, sk: TcpSock): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(tcpGetInfo(tcp, sk))) out[k.replace(/^tcpi_/, '')] = typeof v === 'bigint' ? Number(v) : (v as number);
  return out;
}
