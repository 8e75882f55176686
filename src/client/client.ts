/**
 * The raw syscall API over the daemon's UNIX socket (docs/api.md): Client,
 * one connection with its calls, replies and descriptors, and the clients
 * the net-style and dgram-style sockets share per API path.
 */
import { EventEmitter } from 'node:events';
import { API_MAGIC, API_MAX_IO, API_VERSION, ArgError, FRAME_F_FD, FRAME_F_FDS, ACCEPT_BATCH_F_QUEUE, FRAME_F_RING, FrameWriter, HDR_LEN, HELLO_LEN, HELLO_REPLY_LEN, HELLO_WANT_FDS, HELLO_WANT_RINGS, sockaddrDecode, SYS, CAPTURE_PCAPNG, CMSG_HDR_LEN } from '../api/proto.js';
import { UnixConn, unixAddon } from '../api/unix.js';
import type { SockDiagRow } from '../net/ipv4/inet_diag.js';
import { AF_INET, AF_INET6, errnoName, SOCK_STREAM, type SockAddr, AF_UNSPEC, EAFNOSUPPORT, EINVAL } from '../uapi.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from '../lib/addr.js';

/**
 * A socket address as this library takes and gives it: the address as
 * text (dotted IPv4, RFC 5952 IPv6); the calls convert it to and from the
 * API's sockaddr (api/proto.ts, the one codec).
 */
export interface SockAddrText {
  family: number;
  port: number;
  addr: string;
  flowinfo?: number;
  scopeId?: number;
}

/** Text to a sockaddr: EINVAL for text that is no address of the family, EAFNOSUPPORT for another family. */
export function sockaddrFromText(sa: SockAddrText): SockAddr {
  if (sa.family === AF_INET) {
    const a = parseIpv4(sa.addr);
    if (a === null) throw new ArgError(EINVAL, `bad IPv4 address ${sa.addr}`);
    return { family: AF_INET, port: sa.port, addr: a, addr6: null };
  }
  if (sa.family === AF_INET6) {
    const a = parseIpv6(sa.addr);
    if (a === null) throw new ArgError(EINVAL, `bad IPv6 address ${sa.addr}`);
    return { family: AF_INET6, port: sa.port, addr: 0, addr6: a, flowinfo: sa.flowinfo ?? 0, scopeId: sa.scopeId ?? 0 };
  }
  if (sa.family === AF_UNSPEC) return { family: AF_UNSPEC, port: 0, addr: 0, addr6: null };
  throw new ArgError(EAFNOSUPPORT, `address family ${sa.family}`);
}

/** A sockaddr as text (IPv6 as inet_ntop writes it, v4-mapped ones as ::ffff:a.b.c.d). */
export function sockaddrToText(sa: SockAddr): SockAddrText {
  if (sa.family === AF_INET6) return { family: AF_INET6, port: sa.port, flowinfo: sa.flowinfo ?? 0, addr: formatIpv6(sa.addr6 ?? new Uint8Array(16)), scopeId: sa.scopeId ?? 0 };
  return { family: sa.family, port: sa.port, addr: formatIpv4(sa.addr) };
}

/** The sockaddr at the start of `b` (u16 length, then the address), as text. */
function readSockaddrText(b: Buffer, off = 0): SockAddrText {
  return sockaddrToText(sockaddrDecode(b.subarray(off + 2, off + 2 + b.readUInt16LE(off))));
}

/** Where tapstackd listens unless told otherwise (its --api default). */
export const DEFAULT_API_PATH = '/run/tapstack/api.sock';

/** A failed call: `code` is the errno name (ECONNREFUSED), `errno` the negative number, as Node's own errors. */
export class SyscallError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  constructor(errno: number, syscall: string) {
    super(`${syscall} ${errnoName(errno)}`);
    this.code = errnoName(errno);
    this.errno = -Math.abs(errno);
    this.syscall = syscall;
  }
}

/** A reply: the call's return value, its body, and the descriptor that came with it (or -1). */
export interface Reply {
  ret: number;
  body: Buffer;
  fd: number;
  /** FRAME_F_FDS: the `ret` descriptors that rode on the reply (ts_accept_batch). */
  fds?: number[];
  /** A stream socket's ring memfd (FRAME_F_RING), or -1. */
  ring: number;
}

export interface ClientOptions {
  /** API socket path (default DEFAULT_API_PATH). */
  path?: string;
  /** Ask for a data descriptor per stream socket (default true). */
  descriptors?: boolean;
  /**
   * Ask for data rings (docs/api.md "Data rings"): a stream socket's data
   * then moves through shared memory, its data descriptor only a doorbell.
   * Default false here (raw users read and write the descriptor); the
   * net-style sockets ask for them unless TAPSTACK_RINGS=0.
   */
  rings?: boolean;
}

/** Whether the net-style sockets ask for rings: yes, unless TAPSTACK_RINGS=0 (the socketpair path, for comparison or as fallback). */
export function ringsWanted(): boolean {
  return process.env.TAPSTACK_RINGS !== '0';
}

/**
 * One connection to tapstackd: a process's view of the stack, with its own
 * descriptor table. Calls are pipelined; each returns a promise of its reply.
 * `call()` resolves even for errors (ret < 0); the typed helpers reject with
 * a SyscallError.
 */
export class Client extends EventEmitter {
  readonly conn: UnixConn;
  readonly descriptors: boolean;
  /** Rings asked for; `ringsOn` once the daemon agreed in its hello. */
  readonly rings: boolean;
  ringsOn = false;
  daemonPid = 0;
  #ready: Promise<void>;
  #nextId = 1;
  #pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void; call: number }>();
  #in: Buffer = Buffer.alloc(0);
  #fds: number[] = [];
  #hello = false;
  #closed = false;
  #helloDone!: () => void;
  #helloFail!: (e: Error) => void;

  constructor(opts: ClientOptions = {}) {
    super();
    const path = opts.path ?? DEFAULT_API_PATH;
    let fd: number;
    try {
      fd = unixAddon().unixConnect(path);
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'EIO';
      const why = code === 'ENOENT' || code === 'ECONNREFUSED' ? 'is tapstackd running?' : code === 'EACCES' ? 'not in the API socket\'s group?' : '';
      const err = new Error(`cannot reach tapstackd at ${path}: ${code}${why ? ` (${why})` : ''}`) as Error & { code: string };
      err.code = code;
      throw err;
    }
    this.descriptors = opts.descriptors ?? true;
    this.rings = this.descriptors && (opts.rings ?? false);
    this.conn = new UnixConn(fd);
    this.#ready = new Promise((res, rej) => {
      this.#helloDone = res;
      this.#helloFail = rej;
    });
    this.#ready.catch(() => {});
    this.conn.onData = (buf, fds) => this.#input(buf, fds);
    this.conn.onClose = (errno) => this.#gone(errno ? `API connection failed: ${errnoName(errno)}` : 'tapstackd closed the API connection');
    const hello = Buffer.alloc(HELLO_LEN);
    hello.writeUInt32LE(API_MAGIC, 0);
    hello.writeUInt16LE(API_VERSION, 4);
    hello.writeUInt16LE((this.descriptors ? HELLO_WANT_FDS : 0) | (this.rings ? HELLO_WANT_RINGS : 0), 6);
    this.conn.write(hello);
  }

  /** Resolves once the daemon has answered the hello. */
  ready(): Promise<void> {
    return this.#ready;
  }

  close(): void {
    if (this.#closed) return;
    this.conn.close();
    this.#gone('client closed');
  }

  #gone(why: string): void {
    if (this.#closed && !this.#pending.size) return;
    this.#closed = true;
    for (const f of this.#fds) unixAddon().close(f);
    this.#fds = [];
    const e = Object.assign(new Error(why), { code: 'ECONNRESET' });
    if (!this.#hello) this.#helloFail(e);
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
    this.emit('close');
  }

  #input(data: Buffer, fds: number[]): void {
    this.#fds.push(...fds);
    this.#in = this.#in.length ? Buffer.concat([this.#in, data]) : Buffer.from(data);
    let off = 0;
    if (!this.#hello) {
      if (this.#in.length < HELLO_REPLY_LEN) return;
      const ok = this.#in.readUInt32LE(0) === API_MAGIC && this.#in.readUInt16LE(4) === API_VERSION;
      this.daemonPid = this.#in.readUInt32LE(8);
      this.ringsOn = (this.#in.readUInt16LE(6) & HELLO_WANT_RINGS) !== 0;
      if (!ok) {
        this.#helloFail(new Error('tapstackd does not speak API version 1'));
        return this.close();
      }
      this.#hello = true;
      this.#helloDone();
      off = HELLO_REPLY_LEN;
    }
    while (this.#in.length - off >= HDR_LEN) {
      const len = this.#in.readUInt32LE(off);
      if (this.#in.length - off < len) break;
      const id = this.#in.readUInt32LE(off + 4);
      const flags = this.#in.readUInt16LE(off + 10);
      const ret = this.#in.readInt32LE(off + HDR_LEN);
      const fd = flags & FRAME_F_FD ? (this.#fds.shift() ?? -1) : -1;
      const ring = flags & FRAME_F_FD && flags & FRAME_F_RING ? (this.#fds.shift() ?? -1) : -1;
      const fds = flags & FRAME_F_FDS && ret > 0 ? this.#fds.splice(0, ret) : undefined;
      const body = Buffer.from(this.#in.subarray(off + HDR_LEN + 4, off + len));
      off += len;
      const p = this.#pending.get(id);
      if (!p) {
        if (fd >= 0) unixAddon().close(fd);
        if (ring >= 0) unixAddon().close(ring);
        for (const f of fds ?? []) unixAddon().close(f);
        continue;
      }
      this.#pending.delete(id);
      p.resolve({ ret, body, fd, ring, fds });
    }
    this.#in = off >= this.#in.length ? Buffer.alloc(0) : this.#in.subarray(off);
  }

  /** Send one call; `args` fills in the arguments after the header. */
  call(call: number, args?: (w: FrameWriter) => void): Promise<Reply> {
    if (this.#closed) return Promise.reject(Object.assign(new Error('API connection is closed'), { code: 'ECONNRESET' }));
    const id = this.#nextId++ >>> 0 || this.#nextId++;
    const w = new FrameWriter(id, call);
    args?.(w);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, call });
      this.conn.write(w.finish());
    });
  }

  async #check(name: string, p: Promise<Reply>): Promise<Reply> {
    const r = await p;
    if (r.ret < 0) {
      if (r.fd >= 0) unixAddon().close(r.fd);
      if (r.ring >= 0) unixAddon().close(r.ring);
      throw new SyscallError(r.ret, name);
    }
    return r;
  }

  // --- the raw calls ------------------------------------------------------------

  /**
   * socket(2): resolves to { fd, data, ring } where data is the data
   * descriptor (-1 without descriptors) and ring the socket's ring memfd
   * (-1 without rings; the caller owns and closes both).
   */
  async socket(domain = AF_INET, type = SOCK_STREAM, protocol = 0): Promise<{ fd: number; data: number; ring: number }> {
    const r = await this.#check('socket', this.call(SYS.socket, (w) => w.i32(domain).i32(type).i32(protocol)));
    return { fd: r.ret, data: r.fd, ring: r.ring };
  }
  async bind(fd: number, sa: SockAddrText): Promise<void> {
    await this.#check('bind', this.call(SYS.bind, (w) => w.i32(fd).sockaddr(sockaddrFromText(sa))));
  }
  async listen(fd: number, backlog = 511): Promise<void> {
    await this.#check('listen', this.call(SYS.listen, (w) => w.i32(fd).i32(backlog)));
  }
  async accept(fd: number, flags = 0): Promise<{ fd: number; data: number; ring: number; peer: SockAddrText }> {
    const r = await this.#check('accept4', this.call(SYS.accept4, (w) => w.i32(fd).i32(flags)));
    const len = r.body.readUInt16LE(0);
    return { fd: r.ret, data: r.fd, ring: r.ring, peer: sockaddrToText(sockaddrDecode(r.body.subarray(2, 2 + len))) };
  }
  /**
   * ts_accept_batch: up to `max` connections in one reply, each { fd, data, peer }
   * (data -1 without descriptors); `queue` asks for ACCEPT_BATCH_F_QUEUE's bytes.
   */
  async acceptBatch(fd: number, max: number, flags = 0, queue = false): Promise<{ fd: number; data: number; peer: SockAddrText }[]> {
    const r = await this.#check('accept_batch', this.call(SYS.ts_accept_batch, (w) => w.i32(fd).i32(flags).u32(max).u32(queue ? ACCEPT_BATCH_F_QUEUE : 0)));
    const out: { fd: number; data: number; peer: SockAddrText }[] = [];
    let off = 0;
    for (let i = 0; i < r.ret; i++) {
      const afd = r.body.readInt32LE(off);
      const len = r.body.readUInt16LE(off + 4);
      out.push({ fd: afd, data: r.fds?.[i] ?? -1, peer: sockaddrToText(sockaddrDecode(r.body.subarray(off + 6, off + 6 + len))) });
      off += 6 + len;
    }
    return out;
  }
  /** connect(2); family 0 (AF_UNSPEC) dissolves a datagram socket's association. */
  async connect(fd: number, sa: SockAddrText): Promise<void> {
    if (sa.family === 0) {
      await this.#check('connect', this.call(SYS.connect, (w) => w.i32(fd).u16(2).u16(0)));
      return;
    }
    await this.#check('connect', this.call(SYS.connect, (w) => w.i32(fd).sockaddr(sockaddrFromText(sa))));
  }
  async shutdown(fd: number, how: number): Promise<void> {
    await this.#check('shutdown', this.call(SYS.shutdown, (w) => w.i32(fd).i32(how)));
  }
  async closeFd(fd: number): Promise<void> {
    await this.#check('close', this.call(SYS.close, (w) => w.i32(fd)));
  }
  async getsockname(fd: number): Promise<SockAddrText> {
    const r = await this.#check('getsockname', this.call(SYS.getsockname, (w) => w.i32(fd)));
    return readSockaddrText(r.body);
  }
  async getpeername(fd: number): Promise<SockAddrText> {
    const r = await this.#check('getpeername', this.call(SYS.getpeername, (w) => w.i32(fd)));
    return readSockaddrText(r.body);
  }
  /** setsockopt(2); a number is passed as a C int. */
  async setsockopt(fd: number, level: number, name: number, value: number | Buffer): Promise<void> {
    const v = typeof value === 'number' ? Buffer.alloc(4) : value;
    if (typeof value === 'number') v.writeInt32LE(value);
    await this.#check('setsockopt', this.call(SYS.setsockopt, (w) => w.i32(fd).i32(level).i32(name).u32(v.length).bytes(v)));
  }
  /** getsockopt(2): the option's bytes (at most `len`). */
  async getsockopt(fd: number, level: number, name: number, len = 4): Promise<Buffer> {
    const r = await this.#check('getsockopt', this.call(SYS.getsockopt, (w) => w.i32(fd).i32(level).i32(name).u32(len)));
    return r.body;
  }
  async getsockoptInt(fd: number, level: number, name: number): Promise<number> {
    return (await this.getsockopt(fd, level, name, 4)).readInt32LE(0);
  }
  async fcntl(fd: number, cmd: number, arg = 0): Promise<number> {
    return (await this.#check('fcntl', this.call(SYS.fcntl, (w) => w.i32(fd).i32(cmd).i32(arg)))).ret;
  }
  async ioctl(fd: number, req: number, arg = 0): Promise<number> {
    return (await this.#check('ioctl', this.call(SYS.ioctl, (w) => w.i32(fd).u32(req).i32(arg)))).ret;
  }
  /** recv(2) in message mode (sockets without a data descriptor). */
  async recv(fd: number, count: number, flags = 0): Promise<Buffer> {
    const r = await this.#check('recvfrom', this.call(SYS.recvfrom, (w) => w.i32(fd).i32(flags).u32(Math.min(count, API_MAX_IO))));
    const alen = r.body.readUInt16LE(4);
    return r.body.subarray(6 + alen, 6 + alen + r.ret);
  }
  /** send(2) in message mode; resolves to the bytes taken. */
  async send(fd: number, data: Uint8Array, flags = 0): Promise<number> {
    let sent = 0;
    while (sent < data.length || data.length === 0) {
      const chunk = data.subarray(sent, sent + API_MAX_IO);
      const r = await this.#check('sendto', this.call(SYS.sendto, (w) => w.i32(fd).i32(flags).u16(0).bytes(chunk)));
      sent += r.ret;
      if (r.ret < chunk.length || data.length === 0) break;
    }
    return sent;
  }
  /** recvfrom(2) in message mode: ret (the length, or the real length with MSG_TRUNC), msg_flags, source, data. */
  async recvfrom(fd: number, count: number, flags = 0): Promise<{ ret: number; flags: number; from: SockAddrText | null; data: Buffer }> {
    const r = await this.#check('recvfrom', this.call(SYS.recvfrom, (w) => w.i32(fd).i32(flags).u32(Math.min(count, API_MAX_IO))));
    const mflags = r.body.readUInt32LE(0);
    const alen = r.body.readUInt16LE(4);
    const from = alen ? sockaddrToText(sockaddrDecode(r.body.subarray(6, 6 + alen))) : null;
    return { ret: r.ret, flags: mflags, from, data: r.body.subarray(6 + alen) };
  }
  /**
   * recvmsg(2) with room for `controllen` bytes of control messages: ret,
   * msg_flags, source, the control messages (level, type, data as the
   * kernel lays them out) and the data. With MSG_ERRQUEUE it reads the
   * socket's error queue, descriptor mode or not.
   */
  async recvmsg(
    fd: number,
    count: number,
    flags = 0,
    controllen = 1024,
  ): Promise<{ ret: number; flags: number; from: SockAddrText | null; cmsgs: { level: number; type: number; data: Buffer }[]; data: Buffer }> {
    const r = await this.#check('recvmsg', this.call(SYS.recvmsg, (w) => w.i32(fd).i32(flags).u32(Math.min(count, API_MAX_IO)).u32(controllen)));
    const b = r.body;
    const mflags = b.readUInt32LE(0);
    const alen = b.readUInt16LE(4);
    const from = alen ? sockaddrToText(sockaddrDecode(b.subarray(6, 6 + alen))) : null;
    let off = 6 + alen;
    const clen = b.readUInt32LE(off);
    off += 4;
    const cmsgs: { level: number; type: number; data: Buffer }[] = [];
    for (let p = off; p + CMSG_HDR_LEN <= off + clen; ) {
      const len = Number(b.readBigUInt64LE(p));
      if (len < CMSG_HDR_LEN) break;
      cmsgs.push({ level: b.readInt32LE(p + 8), type: b.readInt32LE(p + 12), data: b.subarray(p + CMSG_HDR_LEN, Math.min(p + len, off + clen)) });
      p += (len + 7) & ~7;
    }
    return { ret: r.ret, flags: mflags, from, cmsgs, data: b.subarray(off + clen) };
  }
  /**
   * A MSG_ZEROCOPY send of `bytes` went through a descriptor-mode socket's
   * data descriptor: the daemon queues its completion (copied), as Linux
   * does for a send whose data it copies.
   */
  async zerocopySent(fd: number, bytes: number): Promise<void> {
    await this.#check('zerocopy', this.call(SYS.ts_zerocopy, (w) => w.i32(fd).u32(bytes)));
  }
  /** sendto(2) in message mode: one datagram to `to` (or the connected peer when null); resolves to the bytes sent. */
  async sendto(fd: number, data: Uint8Array, to: SockAddrText | null, flags = 0): Promise<number> {
    const r = await this.#check('sendto', this.call(SYS.sendto, (w) => {
      w.i32(fd).i32(flags);
      w.sockaddr(to ? sockaddrFromText(to) : null);
      w.bytes(data);
    }));
    return r.ret;
  }
  /** poll(2): `timeout` in ms, -1 forever; resolves to revents per entry. */
  async poll(entries: { fd: number; events: number }[], timeout: number): Promise<number[]> {
    const r = await this.#check('poll', this.call(SYS.poll, (w) => {
      w.u32(entries.length).i32(timeout);
      for (const e of entries) w.i32(e.fd).u32(e.events);
    }));
    return entries.map((_, i) => r.body.readUInt32LE(i * 8 + 4));
  }

  // --- tapstack's own calls ------------------------------------------------------

  async sockets(info = false): Promise<SocketRow[]> {
    const r = await this.#check('sockets', this.call(SYS.ts_sockets, (w) => w.u32(info ? 1 : 0)));
    return JSON.parse(r.body.toString()) as SocketRow[];
  }
  async counters(): Promise<Record<string, Record<string, unknown>>> {
    const r = await this.#check('counters', this.call(SYS.ts_counters));
    return JSON.parse(r.body.toString());
  }
  /**
   * A live capture (root only): the descriptor the daemon writes a pcap
   * stream to, every frame the filter (a pcap-filter subset) takes.
   */
  async capture(filter = '', opts: { pcapng?: boolean } = {}): Promise<number> {
    const r = await this.#check(
      'capture',
      this.call(SYS.ts_capture, (w) => {
        w.u32(opts.pcapng ? CAPTURE_PCAPNG : 0);
        w.bytes(Buffer.from(filter));
      }),
    );
    if (r.fd < 0) throw Object.assign(new Error('capture: the daemon sent no descriptor'), { code: 'EPROTO' });
    return r.fd;
  }
  /**
   * A live TCP trace (root only): the descriptor the daemon writes JSON
   * lines to (docs/trace.md), the events of every socket the ss-style
   * filter takes.
   */
  async trace(filter = ''): Promise<number> {
    const r = await this.#check('trace', this.call(SYS.ts_trace, (w) => w.bytes(Buffer.from(filter))));
    if (r.fd < 0) throw Object.assign(new Error('trace: the daemon sent no descriptor'), { code: 'EPROTO' });
    return r.fd;
  }
  /** Congestion-control modules: "list", "load PATH", "unload NAME" (root for the last two); JSON. */
  async cc(req: string): Promise<unknown> {
    const r = await this.#check('cc', this.call(SYS.ts_cc, (w) => w.bytes(Buffer.from(req))));
    return JSON.parse(r.body.toString());
  }
  /** "" lists every setting, "name" reads one, "name=value" sets one (uid 0). */
  async sysctl(req = ''): Promise<Record<string, unknown>> {
    const r = await this.#check('sysctl', this.call(SYS.ts_sysctl, (w) => w.bytes(Buffer.from(req))));
    return JSON.parse(r.body.toString());
  }
}

/** A row of `tapstack ss` (the daemon's inet_diag dump). */
export type SocketRow = SockDiagRow;

/** Clients shared by sockets and servers per API path; each closes when its last user goes. */
const shared = new Map<string, { client: Client; users: number }>();

export function acquire(path: string, rings = ringsWanted()): Client {
  const key = `${rings ? 'r' : 'p'}:${path}`;
  let e = shared.get(key);
  if (!e) {
    e = { client: new Client({ path, rings }), users: 0 };
    const entry = e;
    e.client.on('close', () => {
      if (shared.get(key) === entry) shared.delete(key);
    });
    shared.set(key, e);
  }
  e.users++;
  return e.client;
}

export function release(_path: string, client: Client): void {
  const key = `${client.rings ? 'r' : 'p'}:${_path}`;
  const e = shared.get(key);
  if (!e || e.client !== client) return;
  if (--e.users <= 0) {
    shared.delete(key);
    client.close();
  }
}
