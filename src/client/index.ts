/**
 * The Node client library of tapstack: the raw syscall API (Client), and on
 * top of it net-style sockets and servers whose data flows through the
 * socket's data descriptor (docs/api.md), so a stack connection is a real
 * net.Socket with Node's own events and back-pressure.
 *
 *   import { connect, createServer } from 'tapstack';
 *   const s = connect({ host: '10.0.0.1', port: 80 }, () => s.write('GET / HTTP/1.0\r\n\r\n'));
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { Duplex } from 'node:stream';
import {
  API_MAGIC,
  API_MAX_IO,
  API_VERSION,
  ArgError,
  DGRAM_ERR_MARK,
  DGRAM_F_CMSG,
  FRAME_F_FD,
  FRAME_F_FDS,
  ACCEPT_BATCH_F_QUEUE,
  FRAME_F_RING,
  FrameWriter,
  HDR_LEN,
  HELLO_LEN,
  HELLO_REPLY_LEN,
  HELLO_WANT_FDS,
  HELLO_WANT_RINGS,
  SOCKADDR_MAX_WIRE,
  sockaddrDecode,
  sockaddrWrite,
  SYS,
  CAPTURE_PCAPNG,
  CMSG_HDR_LEN,
} from '../api/proto.js';
import { UnixConn, unixAddon, type RingHandle } from '../api/unix.js';
import type { SockDiagRow } from '../net/ipv4/inet_diag.js';
import {
  AF_INET,
  AF_INET6,
  EAGAIN,
  EFAULT,
  EPROTO,
  errnoName,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  SO_BROADCAST,
  SO_ERROR,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SO_SNDBUF,
  SOCK_DGRAM,
  SOCK_STREAM,
  type SockAddr,
  SOL_SOCKET,
  AF_UNSPEC,
  EAFNOSUPPORT,
  EINVAL,
  IPPROTO_TCP,
  TCP_FASTOPEN,
} from '../uapi.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from '../lib/addr.js';

export * from '../api/proto.js';

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
  /** "" lists every setting, "name" reads one, "name=value" sets one (uid 0). */
  async sysctl(req = ''): Promise<Record<string, unknown>> {
    const r = await this.#check('sysctl', this.call(SYS.ts_sysctl, (w) => w.bytes(Buffer.from(req))));
    return JSON.parse(r.body.toString());
  }
}

/** A row of `tapstack ss` (the daemon's inet_diag dump). */
export type SocketRow = SockDiagRow;

// --- net-style sockets and servers ------------------------------------------------

/** Clients shared by sockets and servers per API path; each closes when its last user goes. */
const shared = new Map<string, { client: Client; users: number }>();

function acquire(path: string, rings = ringsWanted()): Client {
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

function release(_path: string, client: Client): void {
  const key = `${client.rings ? 'r' : 'p'}:${_path}`;
  const e = shared.get(key);
  if (!e || e.client !== client) return;
  if (--e.users <= 0) {
    shared.delete(key);
    client.close();
  }
}

export interface StackConnectOptions {
  host: string;
  port: number;
  /** API socket path of the daemon (default DEFAULT_API_PATH). */
  api?: string;
  localAddress?: string;
  localPort?: number;
  noDelay?: boolean;
  /** As net: false (the default) ends our side when the peer's FIN arrives; true leaves that to the caller. */
  allowHalfOpen?: boolean;
  /** Data through shared-memory rings when the daemon offers them (default: unless TAPSTACK_RINGS=0). */
  rings?: boolean;
}

/** A net.Socket over a stack socket's data descriptor; `fd` is the stack descriptor for raw calls. */
export type StackSocket = net.Socket & { stackFd: number; client: Client };

function wrap(client: Client, path: string, fd: number, data: number, ring: number, addrs: { local?: SockAddrText; peer?: SockAddrText }, allowHalfOpen: boolean): StackSocket {
  // Node never ends our side by itself: the descriptor's EOF may be an error, known only after SO_ERROR.
  const s = (ring >= 0 ? RingSocket.open(data, ring) : new net.Socket({ fd: data, readable: true, writable: true, allowHalfOpen: true })) as StackSocket;
  s.stackFd = fd;
  s.client = client;
  const define = (k: string, v: unknown) => Object.defineProperty(s, k, { value: v, configurable: true });
  const setAddrs = (local?: SockAddrText, peer?: SockAddrText) => {
    if (local) {
      define('localAddress', local.addr);
      define('localPort', local.port);
      define('localFamily', familyName(local));
    }
    if (peer) {
      define('remoteAddress', peer.addr);
      define('remotePort', peer.port);
      define('remoteFamily', familyName(peer));
    }
  };
  setAddrs(addrs.local, addrs.peer);
  (s as unknown as { setAddrs: typeof setAddrs }).setAddrs = setAddrs;
  // The descriptor's EOF is the peer's FIN or a connection error; SO_ERROR tells which.
  let eofSeen!: (e: Error | null) => void;
  const eof = new Promise<Error | null>((r) => (eofSeen = r));
  (s as unknown as { stackEof: Promise<Error | null> }).stackEof = eof;
  // While a connect is in flight its own result reports the error: asking SO_ERROR then would
  // take the error from under it (sock_error reads it once), and connect() would see ENOTCONN.
  let connecting: Promise<unknown> = Promise.resolve();
  (s as unknown as { stackConnecting: (p: Promise<unknown>) => void }).stackConnecting = (p) => {
    connecting = p.catch(() => {});
  };
  s.on('end', () => {
    connecting.then(() => client.getsockoptInt(fd, SOL_SOCKET, SO_ERROR)).then(
      (e) => {
        const err = e ? new SyscallError(e, 'read') : null;
        eofSeen(err);
        if (err) s.destroy(err);
        else if (!allowHalfOpen) s.end();
      },
      () => {
        eofSeen(null);
        if (!allowHalfOpen) s.end();
      },
    );
  });
  s.once('close', () => {
    client.closeFd(fd).catch(() => {}).finally(() => release(path, client));
  });
  s.setNoDelay = (on = true) => {
    client.setsockopt(fd, 6, 1, on ? 1 : 0).catch(() => {});
    return s;
  };
  s.setKeepAlive = (on = false, delay = 0) => {
    client.setsockopt(fd, SOL_SOCKET, 9, on ? 1 : 0).catch(() => {});
    if (on && delay >= 1000) client.setsockopt(fd, 6, 4, Math.floor(delay / 1000)).catch(() => {});
    return s;
  };
  return s;
}

/** The most one read from the down ring hands to 'data' (a chunk of about what a socket read gives). */
const RING_READ_MAX = 64 * 1024;
/** Doorbell bytes read per wake-up. */
const RING_BELL_READ = 256;

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

  /** Hand what the down ring holds to the stream while it takes it; sleep (NEED_WAKEUP) once it is empty. */
  #pull(): void {
    const ux = this.#ux;
    while (this.#reading && !this.#ended && !this.destroyed) {
      // FIN first: seen, the producer's index is final.
      const fin = ux.ringPeer(this.#h) & 1;
      const q = ux.ringQueued(this.#h, 0);
      if (q < 0) return void this.destroy(new SyscallError(q === -EFAULT ? EFAULT : -q, 'read'));
      if (q > 0) {
        const buf = Buffer.allocUnsafe(Math.min(q, RING_READ_MAX));
        const n = ux.ringRead(this.#h, buf, 0, buf.length);
        if (n < 0) return void this.destroy(new SyscallError(-n, 'read'));
        this.bytesRead += n;
        this.#active();
        this.#reading = this.push(n === buf.length ? buf : buf.subarray(0, n));
        continue;
      }
      if (fin) {
        this.#ended = true;
        this.push(null);
        return;
      }
      if (this.#bellHup) {
        // The daemon closed its end (the socket was closed over the API, or the daemon is gone)
        // without a FIN in the ring: nothing more will come, the stream ends, as a pair's EOF.
        this.#ended = true;
        this.push(null);
        return;
      }
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

/** 'IPv4' or 'IPv6', as net.Socket reports a family. */
function familyName(sa: SockAddrText): string {
  return sa.family === AF_INET6 ? 'IPv6' : 'IPv4';
}

/**
 * A sockaddr for an address string in the socket's family; a dotted IPv4
 * address on an AF_INET6 socket becomes v4-mapped (::ffff:a.b.c.d), and no
 * address means the family's wildcard.
 */
function inetSockaddr(family: number, addr: string | undefined, port: number): SockAddrText {
  if (family === AF_INET6) {
    const a = addr === undefined || addr === '' ? '::' : net.isIPv4(addr) ? `::ffff:${addr}` : addr;
    return { family: AF_INET6, addr: a, port, flowinfo: 0, scopeId: 0 };
  }
  return { family: AF_INET, addr: addr ?? '0.0.0.0', port };
}

/** net.connect() over the stack: the socket emits 'connect' when the handshake completes. */
export function connect(opts: StackConnectOptions, listener?: () => void): StackSocket {
  const path = opts.api ?? DEFAULT_API_PATH;
  const client = acquire(path, opts.rings ?? ringsWanted());
  let inner: StackSocket | null = null;
  // An IPv6 peer (or local address) needs an AF_INET6 socket, as net.connect picks by address.
  const family = net.isIPv6(opts.host) || (opts.localAddress !== undefined && net.isIPv6(opts.localAddress)) ? AF_INET6 : AF_INET;
  const ready = (async () => {
    await client.ready();
    const { fd, data, ring } = await client.socket(family, SOCK_STREAM, 0);
    if (data < 0) throw new Error('tapstackd did not pass a data descriptor');
    inner = wrap(client, path, fd, data, ring, {}, true);
    if (opts.noDelay) await client.setsockopt(fd, 6, 1, 1);
    if (opts.localAddress || opts.localPort) await client.bind(fd, inetSockaddr(family, opts.localAddress, opts.localPort ?? 0));
    return inner;
  })();
  // Hand back a socket synchronously: a Duplex that becomes the real one once the descriptor exists.
  const out = new DeferredSocket(ready, async (s) => {
    await client.connect(s.stackFd, inetSockaddr(family, opts.host, opts.port));
    const [local, peer] = await Promise.all([client.getsockname(s.stackFd), client.getpeername(s.stackFd)]);
    (s as unknown as { setAddrs: (l?: SockAddrText, p?: SockAddrText) => void }).setAddrs(local, peer);
  }, () => release(path, client), opts.allowHalfOpen ?? false);
  if (listener) out.once('connect', listener);
  return out as unknown as StackSocket;
}

export const createConnection = connect;


/**
 * The socket connect() returns: a Duplex standing in for the net.Socket
 * that exists once the daemon has passed the descriptor and the handshake
 * is done. Writes before that are held (bounded by the stream's
 * highWaterMark, as net.Socket holds writes while connecting).
 */
class DeferredSocket extends Duplex {
  inner: StackSocket | null = null;
  connecting = true;
  #early: ((err?: Error | null) => void) | null = null;
  constructor(ready: Promise<StackSocket>, connectFn: (s: StackSocket) => Promise<void>, onFail: () => void, allowHalfOpen: boolean) {
    super({ allowHalfOpen });
    ready
      .then(async (s) => {
        this.inner = s;
        // A refused or unreachable connect rejects with its own errno; an error the descriptor
        // raises meanwhile is the same failure, reported once, by the connect.
        let early: Error | null = null;
        const hold = (e: Error) => (early ??= e);
        s.on('error', hold);
        const connected = connectFn(s);
        (s as unknown as { stackConnecting: (p: Promise<unknown>) => void }).stackConnecting(connected);
        await connected;
        s.off('error', hold);
        if (early) throw early;
        this.connecting = false;
        s.on('data', (d) => {
          if (!this.push(d)) s.pause();
        });
        const eof = (s as unknown as { stackEof: Promise<Error | null> }).stackEof;
        s.on('end', () => {
          eof.then((err) => (err ? this.destroy(err) : this.push(null)));
        });
        s.on('error', (e) => this.destroy(e));
        s.on('close', () => {
          // After an EOF, wait for its SO_ERROR verdict before closing.
          const settle = () => {
            if (!this.destroyed) this.destroy();
          };
          if (s.readableEnded) eof.then(settle);
          else settle();
        });
        this.emit('connect');
        this.emit('ready');
        const cb = this.#early;
        this.#early = null;
        cb?.();
      })
      .catch((e) => {
        if (this.inner) this.inner.destroy();
        else onFail();
        this.destroy(e);
      });
  }
  get stackFd(): number {
    return this.inner?.stackFd ?? -1;
  }
  /** As net.Socket's: 'opening' while connecting, then by which ways are still open. */
  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }
  /** As net.Socket's: no connection under it yet (or any more). */
  get pending(): boolean {
    return this.connecting || !this.inner || this.destroyed;
  }
  /** Bytes written and not yet taken, here and in the socket under it. */
  get bufferSize(): number {
    return this.writableLength + (this.inner?.writableLength ?? 0);
  }
  get remoteAddress(): string | undefined {
    return this.inner?.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.inner?.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.inner?.remoteFamily;
  }
  get localFamily(): string | undefined {
    return (this.inner as unknown as { localFamily?: string } | null)?.localFamily;
  }
  get localAddress(): string | undefined {
    return this.inner?.localAddress;
  }
  get localPort(): number | undefined {
    return this.inner?.localPort;
  }
  override _read(): void {
    this.inner?.resume();
  }
  override _write(chunk: Buffer, enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.connecting || !this.inner) {
      this.#early = () => this._write(chunk, enc, cb);
      return;
    }
    if (this.inner.write(chunk)) cb();
    else this.inner.once('drain', () => cb());
  }
  override _final(cb: (err?: Error | null) => void): void {
    if (!this.inner || this.connecting) {
      this.#early = () => this._final(cb);
      return;
    }
    this.inner.end(cb);
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.inner && !this.inner.destroyed) this.inner.destroy();
    cb(err);
  }
  setNoDelay(on = true): this {
    this.inner?.setNoDelay(on);
    return this;
  }
}

export interface StackServerOptions {
  api?: string;
  /** As net.createServer: false (the default) ends a connection's side when the peer's FIN arrives. */
  allowHalfOpen?: boolean;
  /**
   * TCP Fast Open on the listener (TCP_FASTOPEN): at most this many
   * connections opened by their SYN and not yet through their handshake.
   * The stack does it when net.ipv4.tcp_fastopen has the server bit (2).
   */
  fastopen?: number;
  /** Connections' data through shared-memory rings when the daemon offers them (default: unless TAPSTACK_RINGS=0). */
  rings?: boolean;
}

/** net.createServer() over the stack. */
export function createServer(opts: StackServerOptions | ((s: StackSocket) => void) = {}, listener?: (s: StackSocket) => void): StackServer {
  if (typeof opts === 'function') return new StackServer({}, opts);
  return new StackServer(opts, listener);
}

export class StackServer extends EventEmitter {
  #client: Client | null = null;
  #fd = -1;
  #address: SockAddrText | null = null;
  #closing = false;
  readonly #path: string;
  readonly #allowHalfOpen: boolean;
  readonly #fastopen: number | undefined;
  readonly #rings: boolean;
  constructor(opts: StackServerOptions = {}, listener?: (s: StackSocket) => void) {
    super();
    this.#rings = opts.rings ?? ringsWanted();
    this.#path = opts.api ?? DEFAULT_API_PATH;
    this.#allowHalfOpen = opts.allowHalfOpen ?? false;
    this.#fastopen = opts.fastopen;
    if (listener) this.on('connection', listener);
  }

  get listening(): boolean {
    return this.#fd >= 0 && !this.#closing;
  }

  address(): { address: string; port: number; family: string } | null {
    return this.#address ? { address: this.#address.addr, port: this.#address.port, family: familyName(this.#address) } : null;
  }

  listen(port: number, host?: string | (() => void), backlog?: number | (() => void), cb?: () => void): this {
    const h = typeof host === 'string' ? host : '0.0.0.0';
    const b = typeof backlog === 'number' ? backlog : 511;
    const done = [host, backlog, cb].find((x) => typeof x === 'function') as (() => void) | undefined;
    if (done) this.once('listening', done);
    (async () => {
      const client = acquire(this.#path, this.#rings);
      this.#client = client;
      await client.ready();
      // '::' (or any IPv6 address) listens on an AF_INET6 socket: dual-stack for '::', as net.Server does.
      const family = net.isIPv6(h) ? AF_INET6 : AF_INET;
      const { fd, data, ring } = await client.socket(family, SOCK_STREAM, 0);
      if (data >= 0) unixAddon().close(data); // a listener carries no data
      if (ring >= 0) unixAddon().close(ring);
      this.#fd = fd;
      await client.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
      await client.bind(fd, inetSockaddr(family, h, port));
      if (this.#fastopen !== undefined) await client.setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, this.#fastopen);
      await client.listen(fd, b);
      this.#address = await client.getsockname(fd);
      this.emit('listening');
      this.#acceptLoop(client, fd);
    })().catch((e) => {
      this.#cleanup();
      this.emit('error', e);
    });
    return this;
  }

  async #acceptLoop(client: Client, fd: number): Promise<void> {
    while (!this.#closing) {
      let a;
      try {
        a = await client.accept(fd, 0);
      } catch (e) {
        if (this.#closing) break;
        const code = (e as SyscallError).code;
        if (code === 'EMFILE' || code === 'ENOBUFS') {
          this.emit('error', e);
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        this.emit('error', e);
        break;
      }
      const local = await client.getsockname(a.fd).catch(() => undefined);
      acquire(this.#path, this.#rings); // each connection holds the shared client too
      const s = wrap(client, this.#path, a.fd, a.data, a.ring, { local, peer: a.peer }, this.#allowHalfOpen);
      this.emit('connection', s);
    }
  }

  close(cb?: (err?: Error) => void): this {
    if (cb) this.once('close', cb);
    if (this.#closing) return this;
    this.#closing = true;
    const client = this.#client;
    if (client && this.#fd >= 0) {
      client.closeFd(this.#fd).catch(() => {}).finally(() => this.#cleanup());
    } else this.#cleanup();
    return this;
  }

  #cleanup(): void {
    if (this.#client) release(this.#path, this.#client);
    this.#client = null;
    this.#fd = -1;
    queueMicrotask(() => this.emit('close'));
  }
}

// --- dgram-style UDP sockets ----------------------------------------------------------

/** Where a datagram came from, as Node's dgram reports it. */
export interface RemoteInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
  size: number;
}

export interface DgramSocketOptions {
  type: 'udp4' | 'udp6';
  /** API socket path (default DEFAULT_API_PATH). */
  api?: string;
  reuseAddr?: boolean;
  reusePort?: boolean;
  /** udp6: IPV6_V6ONLY (default false: IPv4 peers appear v4-mapped). */
  ipv6Only?: boolean;
  recvBufferSize?: number;
  sendBufferSize?: number;
}


/** u16 length + wire sockaddr for a (family, address text, port). */
function sockaddrBytes(family: number, addr: string, port: number): Buffer {
  const b = Buffer.alloc(SOCKADDR_MAX_WIRE);
  return b.subarray(0, sockaddrWrite(b, 0, sockaddrFromText({ family, addr, port })));
}

/**
 * A UDP socket on the stack with Node's dgram shape: bind, connect, send,
 * 'message' with rinfo, 'listening', 'connect', 'close', 'error'. The
 * datagrams move over the socket's SOCK_SEQPACKET data descriptor (each
 * message `u16 addrlen, sockaddr, payload`); control calls go over the API.
 * Calls are queued in order, so send() right after bind() is fine. The
 * option setters return promises (the kernel's answer is a round trip away).
 */
export class DgramSocket extends EventEmitter {
  readonly #path: string;
  readonly #family: number;
  readonly #opts: DgramSocketOptions;
  #client: Client | null = null;
  #fd = -1;
  #data = -1;
  #watch: unknown = null;
  #chain: Promise<unknown>;
  #bound = false;
  #binding = false;
  #connected = false;
  #closed = false;
  #local: SockAddrText | null = null;
  #peer: SockAddrText | null = null;
  #out: { buf: Buffer; cb?: (err: Error | null, bytes?: number) => void }[] = [];
  readonly #rbuf = Buffer.allocUnsafe(65_536 + 64);

  constructor(opts: DgramSocketOptions) {
    super();
    if (opts.type !== 'udp4' && opts.type !== 'udp6') throw new TypeError(`Bad socket type ${String(opts.type)}: 'udp4' or 'udp6'`);
    this.#opts = opts;
    this.#path = opts.api ?? DEFAULT_API_PATH;
    this.#family = opts.type === 'udp6' ? AF_INET6 : AF_INET;
    this.#chain = this.#open();
    this.#chain.catch((e) => this.#fail(e as Error));
  }

  async #open(): Promise<void> {
    const client = acquire(this.#path);
    this.#client = client;
    await client.ready();
    const { fd, data } = await client.socket(this.#family, SOCK_DGRAM, 0);
    this.#fd = fd;
    this.#data = data;
    const o = this.#opts;
    if (o.reuseAddr) await client.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (o.reusePort) await client.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (this.#family === AF_INET6 && o.ipv6Only) await client.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    if (o.recvBufferSize) await client.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, o.recvBufferSize);
    if (o.sendBufferSize) await client.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, o.sendBufferSize);
    if (data < 0) throw Object.assign(new Error('tapstack dgram sockets need an API client with descriptors'), { code: 'EOPNOTSUPP' });
    const ux = unixAddon();
    this.#watch = ux.watch(data, (ev) => {
      if (ev & ux.UV_WRITABLE) this.#flush();
      if (ev & ux.UV_READABLE) this.#read();
    });
    this.#arm();
  }

  /** Run `fn` after every earlier call; failures go to the callback or 'error'. */
  #then<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(() => {
      if (this.#closed) throw Object.assign(new Error('Not running'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
      return fn();
    });
    this.#chain = p.catch(() => {});
    return p;
  }

  #fail(e: Error): void {
    if (this.#closed) return;
    this.emit('error', e);
  }

  #arm(): void {
    if (this.#watch === null || this.#closed) return;
    const ux = unixAddon();
    ux.watchSet(this.#watch, ux.UV_READABLE | (this.#out.length ? ux.UV_WRITABLE : 0));
  }

  #read(): void {
    const ux = unixAddon();
    for (let i = 0; i < 256 && !this.#closed; i++) {
      const n = ux.read(this.#data, this.#rbuf, 0, this.#rbuf.length);
      if (n === -EAGAIN || n <= 0) return;
      const b = this.#rbuf;
      const head = b.readUInt16LE(0);
      if (head === DGRAM_ERR_MARK) {
        this.#fail(new SyscallError(-b.readInt32LE(2), 'recvmsg'));
        continue;
      }
      const alen = head & ~DGRAM_F_CMSG;
      const from = sockaddrToText(sockaddrDecode(b.subarray(2, 2 + alen)));
      // Control messages (a socket option asked for them) come before the payload; this socket has no use for them.
      const at = head & DGRAM_F_CMSG ? 2 + alen + 2 + b.readUInt16LE(2 + alen) : 2 + alen;
      const msg = Buffer.from(b.subarray(at, n));
      this.emit('message', msg, { address: from.addr, family: from.family === AF_INET6 ? 'IPv6' : 'IPv4', port: from.port, size: msg.length } satisfies RemoteInfo);
    }
  }

  #flush(): void {
    const ux = unixAddon();
    while (this.#out.length) {
      const o = this.#out[0];
      const w = ux.write(this.#data, o.buf, 0, o.buf.length);
      if (w === -EAGAIN) break;
      this.#out.shift();
      if (w < 0) o.cb?.(new SyscallError(w, 'send'));
      else o.cb?.(null, o.buf.length - (o.buf.readUInt16LE(0) + 2));
    }
    this.#arm();
  }

  /** bind(port?, address?, cb?) or bind({ port, address }, cb?). */
  bind(port?: number | { port?: number; address?: string }, address?: string | (() => void), cb?: () => void): this {
    if (typeof port === 'object') {
      cb = address as (() => void) | undefined;
      address = port.address;
      port = port.port;
    }
    if (typeof address === 'function') {
      cb = address;
      address = undefined;
    }
    if (this.#bound || this.#binding) throw Object.assign(new Error('Socket is already bound'), { code: 'ERR_SOCKET_ALREADY_BOUND' });
    this.#binding = true;
    const addr = address ?? (this.#family === AF_INET6 ? '::' : '0.0.0.0');
    this.#then(async () => {
      await this.#client!.bind(this.#fd, { family: this.#family, addr, port: port ?? 0 });
      this.#local = await this.#client!.getsockname(this.#fd);
      this.#bound = true;
    }).then(
      () => {
        if (cb) this.once('listening', cb);
        this.emit('listening');
      },
      (e) => this.#fail(e as Error),
    );
    return this;
  }

  /** Fix the peer: send() without an address goes there and only its datagrams arrive. */
  connect(port: number, address?: string | (() => void), cb?: () => void): void {
    if (typeof address === 'function') {
      cb = address;
      address = undefined;
    }
    const addr = address ?? (this.#family === AF_INET6 ? '::1' : '127.0.0.1');
    this.#then(async () => {
      await this.#client!.connect(this.#fd, { family: this.#family, addr, port });
      this.#local = await this.#client!.getsockname(this.#fd);
      this.#peer = await this.#client!.getpeername(this.#fd);
      this.#bound = true;
      this.#connected = true;
    }).then(
      () => {
        cb?.();
        this.emit('connect');
      },
      (e) => this.#fail(e as Error),
    );
  }

  /** connect(AF_UNSPEC). */
  disconnect(): void {
    this.#then(async () => {
      await this.#client!.connect(this.#fd, { family: 0, addr: '', port: 0 });
      this.#connected = false;
      this.#peer = null;
    }).catch((e) => this.#fail(e as Error));
  }

  /** send(msg, cb?) when connected; send(msg, port, address?, cb?) otherwise. */
  send(msg: Buffer | Uint8Array | string, port?: number | ((err: Error | null, bytes?: number) => void), address?: string | ((err: Error | null, bytes?: number) => void), cb?: (err: Error | null, bytes?: number) => void): void {
    if (typeof port === 'function') {
      cb = port;
      port = undefined;
    }
    if (typeof address === 'function') {
      cb = address;
      address = undefined;
    }
    const payload = typeof msg === 'string' ? Buffer.from(msg) : Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
    const dest = port !== undefined ? { port, addr: address ?? (this.#family === AF_INET6 ? '::1' : '127.0.0.1') } : null;
    this.#then(async () => {
      // Node binds an unbound socket on its first send (and says 'listening').
      if (!this.#bound && !this.#binding) {
        this.#binding = true;
        await this.#client!.bind(this.#fd, { family: this.#family, addr: this.#family === AF_INET6 ? '::' : '0.0.0.0', port: 0 });
        this.#local = await this.#client!.getsockname(this.#fd);
        this.#bound = true;
        this.emit('listening');
      }
      const head = dest ? sockaddrBytes(this.#family, dest.addr, dest.port) : Buffer.from([0, 0]);
      this.#out.push({ buf: Buffer.concat([head, payload]), cb });
      this.#flush();
    }).catch((e) => (cb ? cb(e as Error) : this.#fail(e as Error)));
  }

  /** The bound address, as Node's socket.address(). */
  address(): { address: string; family: 'IPv4' | 'IPv6'; port: number } {
    if (!this.#local) throw Object.assign(new Error('Not running'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
    return { address: this.#local.addr, family: this.#local.family === AF_INET6 ? 'IPv6' : 'IPv4', port: this.#local.port };
  }

  remoteAddress(): { address: string; family: 'IPv4' | 'IPv6'; port: number } {
    if (!this.#peer || !this.#connected) throw Object.assign(new Error('Not connected'), { code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' });
    return { address: this.#peer.addr, family: this.#peer.family === AF_INET6 ? 'IPv6' : 'IPv4', port: this.#peer.port };
  }

  setBroadcast(flag: boolean): Promise<void> {
    return this.#then(() => this.#client!.setsockopt(this.#fd, SOL_SOCKET, SO_BROADCAST, flag ? 1 : 0));
  }
  setRecvBufferSize(n: number): Promise<void> {
    return this.#then(() => this.#client!.setsockopt(this.#fd, SOL_SOCKET, SO_RCVBUF, n));
  }
  getRecvBufferSize(): Promise<number> {
    return this.#then(() => this.#client!.getsockoptInt(this.#fd, SOL_SOCKET, SO_RCVBUF));
  }
  setSendBufferSize(n: number): Promise<void> {
    return this.#then(() => this.#client!.setsockopt(this.#fd, SOL_SOCKET, SO_SNDBUF, n));
  }
  getSendBufferSize(): Promise<number> {
    return this.#then(() => this.#client!.getsockoptInt(this.#fd, SOL_SOCKET, SO_SNDBUF));
  }

  /** Close the stack socket and the descriptor; 'close' once done. */
  close(cb?: () => void): this {
    if (this.#closed) return this;
    if (cb) this.once('close', cb);
    const finish = (): void => {
      this.#closed = true;
      const ux = unixAddon();
      if (this.#watch !== null) ux.watchClose(this.#watch);
      this.#watch = null;
      if (this.#data >= 0) ux.close(this.#data);
      this.#data = -1;
      for (const o of this.#out) o.cb?.(Object.assign(new Error('Not running'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' }));
      this.#out = [];
      const client = this.#client;
      const fd = this.#fd;
      const done = () => {
        if (client) release(this.#path, client);
        this.emit('close');
      };
      if (client && fd >= 0) client.closeFd(fd).catch(() => {}).finally(done);
      else done();
    };
    this.#chain.then(finish, finish);
    return this;
  }
}

/** dgram.createSocket: createSocket('udp4', (msg, rinfo) => ...) or createSocket({ type, api, reuseAddr }). */
export function createSocket(type: 'udp4' | 'udp6' | DgramSocketOptions, listener?: (msg: Buffer, rinfo: RemoteInfo) => void): DgramSocket {
  const s = new DgramSocket(typeof type === 'string' ? { type } : type);
  if (listener) s.on('message', listener);
  return s;
}
