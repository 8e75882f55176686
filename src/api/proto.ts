/**
 * The wire format of the syscall API (docs/api.md is the reference; keep the
 * two in step). Little-endian throughout, explicit layouts, no C structs
 * except where Linux defines the bytes (struct linger, struct timeval,
 * struct tcp_info as getsockopt returns them).
 *
 * Shared by the daemon (src/api/server.ts) and the client library.
 */
import { AF_INET, AF_INET6, AF_UNSPEC, EAFNOSUPPORT, EFAULT, EINVAL, type SockAddr } from '../uapi.js';

/** "TSAP" read as a little-endian u32. */
export const API_MAGIC = 0x50415354;
export const API_VERSION = 1;
/** Hello flags. */
export const HELLO_WANT_FDS = 1;
/** With WANT_FDS: a stream socket's data moves through shared-memory rings (docs/api.md "Data rings"). */
export const HELLO_WANT_RINGS = 2;
/**
 * Hello flag (with WANT_RINGS): the level-triggered doorbell of the
 * LD_PRELOAD library (docs/api.md "RING_LEVEL"): the down ring only, a byte
 * kept in the data descriptor while it holds data, the up direction on the
 * socketpair as without rings.
 */
export const HELLO_RING_LEVEL = 8;
/**
 * Hello flag (with WANT_RINGS): the client keeps its ring mappings by slot
 * and the daemon reuses them for its later sockets (docs/api.md
 * "RING_POOL"): a short connection costs no memfd, mapping or unmapping.
 */
export const HELLO_RING_POOL = 16;
/** close's optional flags: the data descriptor may be open in other processes (fork); the socket lives until its last copy closes. */
export const CLOSE_F_SHARED = 1;
/** close's flags: send no reply at all, whatever the outcome (close(2) on a socket returns 0 on Linux; nothing to wait for). */
export const CLOSE_F_NOREPLY = 2;
/** Hello reply flag: the daemon knows CLOSE_F_NOREPLY (older ones would answer such a close). Bit 1 is WANT_RINGS's answer. */
export const HELLO_CLOSE_NOREPLY = 4;
export const HELLO_LEN = 12;
export const HELLO_REPLY_LEN = 16;

/** Frame header: u32 total length, u32 id, u16 call, u16 flags. */
export const HDR_LEN = 12;
/** Reply flag: one descriptor rides on this frame (SCM_RIGHTS on its first byte). */
export const FRAME_F_FD = 1;
/** Reply flag: `ret` descriptors ride on this frame, in order, all on its first byte (ts_accept_batch). */
export const FRAME_F_FDS = 2;
/** Reply flag, with FRAME_F_FD: a second descriptor, the socket's ring memfd, rides after the data descriptor. */
export const FRAME_F_RING = 4;
/**
 * Reply flag (RING_POOL): the socket reads through the client's pooled ring
 * whose slot is in the flags' bits 8-15; with FRAME_F_RING its memfd is new
 * (the client maps it for that slot), else the client's mapping of the slot
 * is reused. The same bits in a ts_accept_batch entry's descriptor count.
 */
export const FRAME_F_RING_SLOT = 8;
/** ts_accept_batch: the most connections one call returns (their descriptors fit one SCM_RIGHTS message). */
export const ACCEPT_BATCH_MAX = 16;
/** ts_accept_batch's flags: the client queues the connections past the first; one byte each in the listener's descriptor keeps it readable until it reads them back. */
export const ACCEPT_BATCH_F_QUEUE = 1;
/**
 * ts_accept_batch's flag: connections get rings as accept4's do (a client
 * whose hello asked for them): each entry says how many descriptors are its
 * (u16: 1, or 2 with the ring's memfd after the data descriptor), and max is
 * at most ACCEPT_BATCH_MAX / 2, so the pairs still fit one SCM_RIGHTS message.
 */
export const ACCEPT_BATCH_F_RINGS = 2;
/** The largest data a single write/read call moves, and so the frame limit. */
export const API_MAX_IO = 256 * 1024;
/** The most control-message room a recvmsg may ask for (the kernel's optmem-sized cap is larger; nothing here needs more). */
export const API_MAX_CONTROL = 4096;
export const API_MAX_FRAME = API_MAX_IO + 256;
/** poll: the most descriptors one call may name. */
export const API_MAX_POLL = 4096;
/** setsockopt: the longest option value a request may carry (no option the stack knows is near it; the preload library sends at most 512). */
export const API_MAX_OPTLEN = 1024;
/** sysctl: the longest request text (a write to /proc/sys is one page). */
export const API_MAX_SYSCTL = 4096;
/** Every other call: fixed arguments and at most one sockaddr, with room to spare. */
export const API_SMALL_FRAME = 256;
/** The in-band error mark of a datagram descriptor's message (docs/api.md, datagram descriptors). */
export const DGRAM_ERR_MARK = 0xffff;
/** In a datagram descriptor message's addrlen: control messages (u16 length, then cmsgPut's bytes) follow the sockaddr. */
export const DGRAM_F_CMSG = 0x8000;

/** Calls, numbered as Linux x86-64 numbers the syscalls; ours start at 0x1000. */
export const SYS = {
  read: 0,
  write: 1,
  close: 3,
  poll: 7,
  ioctl: 16,
  socket: 41,
  connect: 42,
  accept: 43,
  sendto: 44,
  recvfrom: 45,
  sendmsg: 46,
  recvmsg: 47,
  shutdown: 48,
  bind: 49,
  listen: 50,
  getsockname: 51,
  getpeername: 52,
  setsockopt: 54,
  getsockopt: 55,
  fcntl: 72,
  accept4: 288,
  /** tapstack: the socket list (ss), JSON. */
  ts_sockets: 0x1001,
  /** tapstack: every counter (nstat), JSON. */
  ts_counters: 0x1002,
  /** tapstack: sysctl list/get/set, JSON. */
  ts_sysctl: 0x1003,
  /** tapstack: a MSG_ZEROCOPY send of u32 bytes went through the data descriptor (its completion). */
  ts_zerocopy: 0x1004,
  /** tapstack: a live capture, root only: u32 flags (CAPTURE_PCAPNG), the filter (pcap-filter subset, UTF-8); the reply's descriptor streams pcap or pcapng. */
  ts_capture: 0x1005,
  /** tapstack: a live TCP trace, root only: the filter (ss-style, UTF-8); the reply's descriptor streams JSON lines. */
  ts_trace: 0x1006,
  /** tapstack: accept4 of up to u32 max connections at once: fd, i32 flags, u32 max, [u32 ACCEPT_BATCH_F_QUEUE | ACCEPT_BATCH_F_RINGS]; ret = n, n x (i32 fd, [u16 descriptors,] sockaddr peer), their descriptors. */
  ts_accept_batch: 0x1007,
  /** tapstack: take the listener a process holds (u32 pid, i32 its fd), proving it holds the listener's data descriptor too (i32 the caller's number for it). ret = the fd here. */
  ts_inherit: 0x1008,
  /** tapstack (RING_LEVEL): look at the socket's rings again (the client made room in, or asks a byte for, its down ring). ret 0. */
  ts_ring_wake: 0x1009,
  /** tapstack (RING_LEVEL): the socket goes back to its socketpair, the down ring's unread bytes first. ret = doorbell bytes ever sent down. */
  ts_ring_off: 0x100a,
  /** tapstack: congestion-control modules: "list", "load PATH" or "unload NAME" (UTF-8); root only but for list; JSON. */
  ts_cc: 0x100b,
} as const;

/** ts_capture's flags: a pcapng stream (the interface's name, each packet's direction) instead of classic pcap. */
export const CAPTURE_PCAPNG = 1;

export const SYS_NAMES: Record<number, string> = Object.fromEntries(Object.entries(SYS).map(([k, v]) => [v, k]));

/**
 * The longest request frame of each call. Only write, sendto and sendmsg
 * carry data (up to API_MAX_FRAME); the daemon drops a client whose header
 * announces more for its call, before buffering any of the body, so a
 * partial frame costs at most what its call can legitimately need.
 */
export function apiCallMaxFrame(call: number): number {
  switch (call) {
    case SYS.write:
    case SYS.sendto:
    case SYS.sendmsg:
      return API_MAX_FRAME;
    case SYS.poll:
      return HDR_LEN + 8 + API_MAX_POLL * 8;
    case SYS.setsockopt:
      return HDR_LEN + 16 + API_MAX_OPTLEN;
    case SYS.ts_sysctl:
    case SYS.ts_trace:
    case SYS.ts_cc:
      return HDR_LEN + API_MAX_SYSCTL;
    case SYS.ts_capture:
      return HDR_LEN + 4 + API_MAX_SYSCTL;
    default:
      return API_SMALL_FRAME;
  }
}


/** struct cmsghdr on x86-64: u64 cmsg_len, i32 level, i32 type; data aligned to 8 (CMSG_ALIGN). */
export const CMSG_HDR_LEN = 16;
const cmsgAlign = (n: number): number => (n + 7) & ~7;

/**
 * put_cmsg for each control message into a msg_control of `controllen`
 * bytes, laid out as the kernel writes it (so a preloaded program's
 * msg_control takes it as is): what does not fit is cut and MSG_CTRUNC
 * (0x8) set. Returns the bytes (msg_controllen on return) and the flag.
 */
export function cmsgPut(cmsgs: readonly { level: number; type: number; data: Buffer }[], controllen: number): { buf: Buffer; ctrunc: number } {
  const out: Buffer[] = [];
  let room = controllen;
  let ctrunc = 0;
  for (const c of cmsgs) {
    let cmlen = CMSG_HDR_LEN + c.data.length;
    if (room < CMSG_HDR_LEN) {
      ctrunc = 0x8;
      break;
    }
    if (room < cmlen) {
      ctrunc = 0x8;
      cmlen = room;
    }
    const b = Buffer.alloc(Math.min(cmsgAlign(cmlen), room));
    b.writeBigUInt64LE(BigInt(cmlen), 0);
    b.writeInt32LE(c.level, 8);
    b.writeInt32LE(c.type, 12);
    c.data.copy(b, CMSG_HDR_LEN, 0, cmlen - CMSG_HDR_LEN);
    out.push(b);
    room -= b.length;
  }
  return { buf: Buffer.concat(out), ctrunc };
}

/**
 * A sockaddr on the wire (docs/api.md): u16 family, u16 port, then the
 * AF_INET address (8 bytes in all) or u32 flowinfo, 16 address bytes, u32
 * scope id (28). Little-endian fields, the address bytes in network order.
 */
export const SOCKADDR_IN_LEN = 8;
export const SOCKADDR_IN6_LEN = 28;
/** u16 length and the largest sockaddr. */
export const SOCKADDR_MAX_WIRE = 2 + SOCKADDR_IN6_LEN;

/**
 * A malformed argument: the call fails with this errno, the connection
 * lives. It is the answer to a bad call, not a bug: no stack trace is taken
 * (capturing one was most of the cost of a call a client floods with a bad
 * descriptor), only the message is ever logged.
 */
export class ArgError extends Error {
  readonly errno: number;
  constructor(errno: number, msg: string) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(msg);
    Error.stackTraceLimit = limit;
    this.errno = errno;
  }
}


/** Bounds-checked reading of a call's arguments; a short body is EFAULT (a bad pointer in the kernel's terms). */
export class ArgReader {
  off: number;
  constructor(readonly buf: Buffer, off: number, readonly end: number) {
    this.off = off;
  }
  #need(n: number): void {
    if (this.off + n > this.end) throw new ArgError(EFAULT, `argument runs past the frame (${n} bytes at ${this.off})`);
  }
  i32(): number {
    this.#need(4);
    const v = this.buf.readInt32LE(this.off);
    this.off += 4;
    return v;
  }
  u32(): number {
    this.#need(4);
    const v = this.buf.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }
  u16(): number {
    this.#need(2);
    const v = this.buf.readUInt16LE(this.off);
    this.off += 2;
    return v;
  }
  bytes(n: number): Buffer {
    this.#need(n);
    const v = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  /** Bytes not read yet (an optional trailing argument is there when > 0). */
  left(): number {
    return this.end - this.off;
  }
  rest(): Buffer {
    const v = this.buf.subarray(this.off, this.end);
    this.off = this.end;
    return v;
  }
  /** A length-prefixed sockaddr: u16 length, then the address. */
  sockaddr(): SockAddr {
    return sockaddrDecode(this.bytes(this.u16()));
  }
  /** sendto's address: length 0 is none. */
  sockaddrOrNull(): SockAddr | null {
    const len = this.u16();
    return len ? sockaddrDecode(this.bytes(len)) : null;
  }
}

/**
 * The one sockaddr decoder, the daemon's and the client's: a sockaddr body
 * (family first) to a SockAddr. Family 0 is AF_UNSPEC (connect's
 * disconnect); an unknown family is EAFNOSUPPORT, a short one EINVAL, as
 * Linux answers.
 */
export function sockaddrDecode(b: Uint8Array): SockAddr {
  if (b.length < 2) throw new ArgError(EINVAL, 'sockaddr shorter than its family');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const family = v.getUint16(0, true);
  if (family === AF_UNSPEC) return { family, port: 0, addr: 0, addr6: null };
  if (family === AF_INET) {
    if (b.length < SOCKADDR_IN_LEN) throw new ArgError(EINVAL, `AF_INET sockaddr needs ${SOCKADDR_IN_LEN} bytes, got ${b.length}`);
    return { family, port: v.getUint16(2, true), addr: v.getUint32(4, false), addr6: null };
  }
  if (family === AF_INET6) {
    if (b.length < SOCKADDR_IN6_LEN) throw new ArgError(EINVAL, `AF_INET6 sockaddr needs ${SOCKADDR_IN6_LEN} bytes, got ${b.length}`);
    return { family, port: v.getUint16(2, true), addr: 0, addr6: b.slice(8, 24), flowinfo: v.getUint32(4, true), scopeId: v.getUint32(24, true) };
  }
  throw new ArgError(EAFNOSUPPORT, `address family ${family}`);
}

/**
 * The one sockaddr encoder: `u16 length, sockaddr` at `off` in `b` (which
 * has SOCKADDR_MAX_WIRE bytes of room there); returns the bytes written.
 * AF_UNSPEC (no address) is a length of 0.
 */
export function sockaddrWrite(b: Buffer, off: number, sa: SockAddr): number {
  if (sa.family === AF_INET6) {
    b.writeUInt16LE(SOCKADDR_IN6_LEN, off);
    b.writeUInt16LE(AF_INET6, off + 2);
    b.writeUInt16LE(sa.port, off + 4);
    b.writeUInt32LE((sa.flowinfo ?? 0) >>> 0, off + 6);
    if (sa.addr6) b.set(sa.addr6.subarray(0, 16), off + 10);
    else b.fill(0, off + 10, off + 26);
    b.writeUInt32LE((sa.scopeId ?? 0) >>> 0, off + 26);
    return 2 + SOCKADDR_IN6_LEN;
  }
  if (sa.family === AF_INET) {
    b.writeUInt16LE(SOCKADDR_IN_LEN, off);
    b.writeUInt16LE(AF_INET, off + 2);
    b.writeUInt16LE(sa.port, off + 4);
    b.writeUInt32BE(sa.addr >>> 0, off + 6);
    return 2 + SOCKADDR_IN_LEN;
  }
  b.writeUInt16LE(0, off);
  return 2;
}

/** Builds one frame: header, then fields appended; `finish()` writes the length. */
export class FrameWriter {
  buf: Buffer;
  len = HDR_LEN;
  constructor(id: number, call: number, flags = 0, size = 64) {
    this.buf = Buffer.allocUnsafe(Math.max(size, HDR_LEN + 16));
    this.buf.writeUInt32LE(id, 4);
    this.buf.writeUInt16LE(call, 8);
    this.buf.writeUInt16LE(flags, 10);
  }
  #room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const nb = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(nb, 0, 0, this.len);
    this.buf = nb;
  }
  i32(v: number): this {
    this.#room(4);
    this.buf.writeInt32LE(v, this.len);
    this.len += 4;
    return this;
  }
  u32(v: number): this {
    this.#room(4);
    this.buf.writeUInt32LE(v >>> 0, this.len);
    this.len += 4;
    return this;
  }
  u16(v: number): this {
    this.#room(2);
    this.buf.writeUInt16LE(v, this.len);
    this.len += 2;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }
  /** A length-prefixed sockaddr (length 0 for null: no address). */
  sockaddr(sa: SockAddr | null): this {
    this.#room(SOCKADDR_MAX_WIRE);
    this.len += sa ? sockaddrWrite(this.buf, this.len, sa) : (this.buf.writeUInt16LE(0, this.len), 2);
    return this;
  }
  setFlags(flags: number): this {
    this.buf.writeUInt16LE(flags, 10);
    return this;
  }
  finish(): Buffer {
    this.buf.writeUInt32LE(this.len, 0);
    return this.buf.subarray(0, this.len);
  }
}
