/**
 * The API in a stack shard (docs/shards.md "The API across shards"): the
 * main thread keeps each client's connection (api/shard_router.ts) and
 * posts here the calls on the sockets this shard owns; they run through the
 * ordinary ApiServer over this shard's stack, for a proxy of the client
 * whose replies are posted back (the frame, and the numbers of the
 * descriptors to pass: threads share the process's descriptor table; the
 * main thread sends them and closes its copies). Blocking calls park here
 * as in the single daemon; a socket's data (socketpair pump, rings) never
 * leaves this shard's loop.
 *
 * Descriptor numbers are tagged with the shard: this shard hands out only
 * numbers n with n % shards == index, so the main thread routes a call by
 * its descriptor alone.
 *
 * A listener is a group: the listener the client made here, or a member
 * this shard made for another shard's listener (same options, same
 * address), as an SO_REUSEPORT group spans CPUs. A member's readiness (its
 * accept queue empty or not) is posted to the main thread, which tells the
 * owner's data descriptor (DataPipe.remoteReady) and sends accepts where a
 * connection waits.
 */
import type { Stack } from '../net/stack.js';
import type { StackLog } from '../net/core/net.js';
import { sockAddr, TCP_CLOSE, TCP_LISTEN, type Sock } from '../net/core/sock.js';
import { steerQueue } from '../drivers/tap_steer.js';
import { ApiServer, type ApiOptions } from './server.js';
import { ApiClient } from './conn.js';
import { ApiFile, DataPipe } from './files.js';
import type { Fds } from './unix.js';
import { unixAddon } from './unix.js';
import { CLOSE_F_NOREPLY, FrameWriter, HDR_LEN, SYS } from './proto.js';
import { AF_INET, AF_INET6, EADDRNOTAVAIL, EAGAIN, EBADF, EMFILE, EOPNOTSUPP, POLLIN } from '../uapi.js';

/** Main thread to shard. `frame`s are whole request frames (their id is the router's). */
export type ToProxy =
  | { op: 'open'; cid: number; pid: number; uid: number; gid: number; wantFds: boolean; wantRings: boolean; ringLevel: boolean }
  | { op: 'call'; cid: number; frame: Uint8Array; once?: boolean }
  | { op: 'member'; cid: number; rid: number; frames: Uint8Array[] }
  | { op: 'share'; cid: number; rid: number; from: number; fd: number }
  | { op: 'remote'; cid: number; fd: number; on: boolean }
  | { op: 'queued'; cid: number; fd: number; n: number }
  | { op: 'drop'; cid: number }
  | { op: 'limits'; limits: ShardApiLimits };

/** The API limits a shard's server applies (the config's, and SIGHUP's). */
export interface ShardApiLimits {
  lowPortGid: number | null;
  maxSockets: number;
  maxBuffered: number;
  maxBufferedTotal: number;
  rings: boolean;
}

/** What a listener group's members are made from: the owner's socket, options, address and listen, in order. */
export type ListenSpec = Uint8Array[];

/** Shard to main thread. */
export type FromProxy =
  | { op: 'reply'; cid: number; frame: Uint8Array; fds: number[]; spec?: ListenSpec; nonblock?: boolean; rcvtimeo?: number }
  | { op: 'member'; cid: number; rid: number; fd: number; errno: number }
  | { op: 'ready'; cid: number; fd: number; on: boolean }
  | { op: 'fail'; cid: number; reason: string };

/** Options a listener's members copy (at most this many distinct ones per socket). */
const SPEC_OPTS_MAX = 64;

const copy = (b: Uint8Array): Uint8Array => new Uint8Array(b);
/** The port of a bind or connect frame's sockaddr (fd, u16 length, u16 family, u16 port), 0 if none. */
function sockaddrPort(frame: Buffer): number {
  if (frame.length < HDR_LEN + 10 || frame.readUInt16LE(HDR_LEN + 4) < 4) return 0;
  const family = frame.readUInt16LE(HDR_LEN + 6);
  return family === AF_INET || family === AF_INET6 ? frame.readUInt16LE(HDR_LEN + 8) : 0;
}
const asBuf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** A client as one shard sees it: its sockets here, its replies posted to the main thread. */
class ShardClient extends ApiClient {
  /** Each socket's creating frame and its last setsockopt per (level, name): what a listener's members are made from. */
  readonly made = new Map<number, { socket: Uint8Array; opts: Map<number, Uint8Array> }>();
  /** The listeners of groups here (owned or members), and whether each was last said readable. */
  readonly listening = new Map<number, boolean>();
  constructor(
    server: ApiServer,
    readonly proxy: ShardProxy,
    readonly cid: number,
    pid: number,
    uid: number,
    gid: number,
  ) {
    const conn = {
      queued: 0,
      truesize: 0,
      setReading: () => {},
      close: () => {},
      write: (buf: Buffer, fd: Fds = -1): boolean => proxy.replied(this, buf, fd),
    };
    super(server, conn, pid, uid, gid);
  }

  /** The lowest free number among this shard's: n % shards == index, from 3 up. */
  override allocFd(): number {
    const { index, shards } = this.proxy;
    let fd = index + shards * Math.ceil((3 - index) / shards);
    if (fd < 3) fd += shards;
    while (this.fds.has(fd)) fd += shards;
    return fd;
  }
}

export class ShardProxy {
  readonly server: ApiServer;
  readonly #clients = new Map<number, ShardClient>();
  /** While a call runs for the proxy itself (a member's making): its replies land here rather than being posted. */
  #capture: { frame: Buffer; fds: number[] }[] | null = null;
  /** Extra fields for the reply being posted (a listen's spec; a group accept's SO_RCVTIMEO). */
  #extra: { spec?: ListenSpec; nonblock?: boolean; rcvtimeo?: number } | null = null;
  readonly #ux = unixAddon();
  /** Replies and readiness, posted together once this turn's work is done. */
  #outbox: FromProxy[] = [];

  #emit(m: FromProxy): void {
    if (this.#outbox.push(m) === 1) queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    const ms = this.#outbox;
    this.#outbox = [];
    if (ms.length) this.post(ms);
  }

  constructor(
    stack: Stack,
    opts: ApiOptions & { rings: boolean },
    readonly log: StackLog,
    readonly index: number,
    readonly shards: number,
    readonly post: (ms: FromProxy[]) => void,
  ) {
    this.server = new ApiServer(stack, opts, log);
    this.server.rings = opts.rings;
  }

  /** A reply of `c`'s: posted with its descriptors (the main thread passes and closes them), or captured. */
  replied(c: ShardClient, buf: Buffer, fd: Fds): boolean {
    const fds = typeof fd === 'number' ? (fd >= 0 ? [fd] : []) : [...fd];
    if (this.#capture) {
      this.#capture.push({ frame: Buffer.from(buf), fds });
      return true;
    }
    this.#emit({ op: 'reply', cid: c.cid, frame: copy(buf), fds, ...this.#extra });
    return true;
  }

  handle(m: ToProxy): void {
    if (m.op === 'limits') {
      const { rings, ...opts } = m.limits;
      Object.assign(this.server.opts, opts);
      this.server.rings = rings;
      return;
    }
    if (m.op === 'open') {
      const c = new ShardClient(this.server, this, m.cid, m.pid, m.uid, m.gid);
      c.wantFds = m.wantFds;
      c.wantRings = m.wantRings;
      c.ringLevel = m.ringLevel;
      this.#clients.set(m.cid, c);
      this.server.clients.add(c);
      this.server.mib.Clients++;
      return;
    }
    const c = this.#clients.get(m.cid);
    if (!c) return; // gone (a drop overtook the call)
    try {
      switch (m.op) {
        case 'call':
          return this.#call(c, asBuf(m.frame), m.once === true);
        case 'member':
          return this.#member(c, m.rid, m.frames.map(asBuf));
        case 'share':
          return this.#share(c, m.rid, m.from, m.fd);
        case 'remote': {
          const p = c.fds.get(m.fd)?.pipe;
          if (p instanceof DataPipe) {
            p.remoteReady = m.on;
            p.run();
          }
          return;
        }
        case 'queued': {
          const p = c.fds.get(m.fd)?.pipe;
          if (p instanceof DataPipe) p.queued(m.n);
          return;
        }
        case 'drop':
          this.#clients.delete(m.cid);
          this.server.drop(c, null);
          return;
      }
    } catch (e) {
      this.#capture = null;
      this.#extra = null;
      const reason = `internal error: ${(e as Error).stack ?? e}`;
      this.#clients.delete(m.cid);
      this.server.drop(c, reason);
      this.#emit({ op: 'fail', cid: m.cid, reason });
    }
  }

  /**
   * One call. `once`: an accept the main thread tries here among the
   * group's shards: answered now (EAGAIN rather than parked), the main
   * thread parks it itself when no shard has a connection.
   */
  #call(c: ShardClient, frame: Buffer, once: boolean): void {
    const call = frame.readUInt16LE(8);
    const id = frame.readUInt32LE(4);
    const fd = frame.length >= HDR_LEN + 4 ? frame.readInt32LE(HDR_LEN) : -1;
    const f = call !== SYS.socket && call !== SYS.poll ? c.fds.get(fd) : undefined;
    switch (call) {
      case SYS.socket:
      case SYS.setsockopt:
      case SYS.listen: {
        // Kept for a listener's members: the socket call and the options that took; a listen's reply carries them.
        const cap = this.#captured(c, id, call, frame);
        const ret = cap.length ? cap[0].frame.readInt32LE(HDR_LEN) : -1;
        if (ret >= 0 && call === SYS.socket) c.made.set(ret, { socket: copy(frame), opts: new Map() });
        if (ret >= 0 && call === SYS.setsockopt && f && frame.length >= HDR_LEN + 12) {
          const m = c.made.get(fd);
          const key = frame.readInt32LE(HDR_LEN + 4) * 65536 + frame.readInt32LE(HDR_LEN + 8);
          if (m && (m.opts.size < SPEC_OPTS_MAX || m.opts.has(key))) m.opts.set(key, copy(frame));
        }
        const spec = ret >= 0 && call === SYS.listen && f && !c.listening.has(fd) && f.sk.state === TCP_LISTEN ? this.#spec(c, f, frame) : undefined;
        this.#extra = spec ? { spec, nonblock: f!.nonblock } : null;
        try {
          for (const r of cap) this.replied(c, r.frame, r.fds);
        } finally {
          this.#extra = null;
        }
        // After the reply that makes the group: the main thread knows the listener before its readiness.
        if (spec) this.#watch(c, f!);
        return;
      }
      case SYS.accept:
      case SYS.accept4:
      case SYS.ts_accept_batch:
        if (f && once) {
          const nb = f.nonblock;
          f.nonblock = true;
          // The listener's SO_RCVTIMEO goes with the answer: a blocking accept the main thread parks waits that long.
          this.#extra = { rcvtimeo: f.sk.rcvtimeo };
          try {
            this.server.dispatch(c, id, call, frame);
          } finally {
            f.nonblock = nb;
            this.#extra = null;
          }
          // Every holder of the socket (a forked child's file shares it) hears its queue's new state.
          const set = this.#watched.get(f.sk);
          if (set) for (const x of set) this.#readyCheck(x.client as ShardClient, x);
          else this.#readyCheck(c, f);
          return;
        }
        break;
      case SYS.ts_inherit: {
        // The file shared with the parent's: both are watched again (sharing replaced the socket's wake-up).
        const cap = this.#captured(c, id, call, frame);
        const ret = cap.length ? cap[0].frame.readInt32LE(HDR_LEN) : -1;
        const nf = ret >= 0 ? c.fds.get(ret) : undefined;
        for (const r of cap) this.replied(c, r.frame, r.fds);
        if (nf?.group) for (const x of nf.group) if (x.client instanceof ShardClient) this.#watch(x.client, x);
        return;
      }
      case SYS.close:
        if (f) {
          c.made.delete(fd);
          c.listening.delete(fd);
        }
        break;
      case SYS.bind:
        // A datagram socket on a fixed port would get only the datagrams its shard's queue gets: refused, not half served.
        if (f && !f.stream && sockaddrPort(frame) > 0) return c.reply(id, call, { ret: -EOPNOTSUPP });
        break;
      case SYS.connect: {
        // A stream bound before connect() keeps its port: if its flow steers to another shard, the replies would
        // meet no socket there (an RST). The connect fails plainly instead (connect()'s own ports always steer here).
        const dport = sockaddrPort(frame);
        if (f && f.stream && f.sk.num && f.sk.state === TCP_CLOSE && dport > 0 && steerQueue(dport, f.sk.num, this.shards) !== this.index) {
          return c.reply(id, call, { ret: -EADDRNOTAVAIL });
        }
        break;
      }
    }
    this.server.dispatch(c, id, call, frame);
  }

  /** Run a call whose replies are looked at before they go (they are all immediate: none of these calls parks). */
  #captured(c: ShardClient, id: number, call: number, frame: Buffer): { frame: Buffer; fds: number[] }[] {
    const cap: { frame: Buffer; fds: number[] }[] = (this.#capture = []);
    try {
      this.server.dispatch(c, id, call, frame);
    } finally {
      this.#capture = null;
    }
    return cap;
  }

  /** The frames that make a member of `f`'s group in another shard: socket, options, bind to its address, listen. */
  #spec(c: ShardClient, f: ApiFile, listenFrame: Buffer): ListenSpec | undefined {
    const m = c.made.get(f.fd);
    if (!m) return undefined;
    const sa = sockAddr();
    if (f.ops.getname(f.sk, sa, false) < 0) return undefined;
    const bind = new FrameWriter(0, SYS.bind).i32(f.fd).sockaddr(sa).finish();
    return [m.socket, ...m.opts.values(), copy(bind), copy(listenFrame)];
  }

  /**
   * Make a member of another shard's listener group here, for client `c`:
   * the owner's frames replayed, their replies kept (the member's data
   * descriptor is nobody's: closed at once). Answers its descriptor, or the
   * errno of the step that failed (what was made is closed again).
   */
  #member(c: ShardClient, rid: number, frames: Buffer[]): void {
    let fd = -1;
    let errno = 0;
    const cap: { frame: Buffer; fds: number[] }[] = (this.#capture = []);
    try {
      for (const fr of frames) {
        const call = fr.readUInt16LE(8);
        if (call !== SYS.socket) {
          if (fd < 0) break;
          fr.writeInt32LE(fd, HDR_LEN);
        }
        cap.length = 0;
        this.server.dispatch(c, 0, call, fr);
        const r = cap[0];
        for (const x of cap) for (const d of x.fds) this.#ux.close(d);
        const ret = r ? r.frame.readInt32LE(HDR_LEN) : -EAGAIN;
        // An option the owner set may be refused here only as it was there: options are copied as they took.
        if (ret < 0 && call !== SYS.setsockopt) {
          errno = -ret;
          break;
        }
        if (call === SYS.socket) fd = ret;
      }
    } finally {
      this.#capture = null;
    }
    const f = fd >= 0 ? c.fds.get(fd) : undefined;
    if (!errno && f && f.sk.state === TCP_LISTEN) {
      this.#emit({ op: 'member', cid: c.cid, rid, fd, errno: 0 });
      this.#watch(c, f);
      return;
    }
    if (fd >= 0) this.#call(c, new FrameWriter(0, SYS.close).i32(fd).i32(CLOSE_F_NOREPLY).finish(), false);
    this.#emit({ op: 'member', cid: c.cid, rid, fd: -1, errno: errno || EAGAIN });
  }

  /**
   * A member of a listener group for a forked child (the parent's client
   * `from` holds it as `fd`): a file of the child's sharing the socket, as
   * ts_inherit shares the owner's (the owner's shard checked the caller).
   */
  #share(c: ShardClient, rid: number, from: number, fd: number): void {
    const src = this.#clients.get(from)?.fds.get(fd);
    if (!src || src.sk.state !== TCP_LISTEN) return this.#emit({ op: 'member', cid: c.cid, rid, fd: -1, errno: EBADF });
    if (c.sockets >= this.server.opts.maxSockets) return this.#emit({ op: 'member', cid: c.cid, rid, fd: -1, errno: EMFILE });
    const f = new ApiFile(c, c.allocFd(), src.sock);
    f.nonblock = src.nonblock;
    src.share(f);
    c.fds.set(f.fd, f);
    this.#emit({ op: 'member', cid: c.cid, rid, fd: f.fd, errno: 0 });
    for (const x of f.group!) if (x.client instanceof ShardClient) this.#watch(x.client, x);
  }

  /** The group listeners' files of each socket (a forked child's share one), whose readiness is posted. */
  readonly #watched = new WeakMap<Sock, Set<ApiFile>>();
  /** The wake-ups #watch installed: a socket whose wake-up is another (ApiFile.share replaced it) is wrapped again. */
  readonly #wrappers = new WeakSet<object>();

  /** Post a group listener's readiness whenever its accept queue turns empty or not. */
  #watch(c: ShardClient, f: ApiFile): void {
    c.listening.set(f.fd, false);
    const sk = f.sk;
    let files = this.#watched.get(sk);
    if (!files) this.#watched.set(sk, (files = new Set()));
    files.add(f);
    const wake = sk.wake;
    if (!wake || !this.#wrappers.has(wake)) {
      let queued = false;
      const set = files;
      const w: NonNullable<Sock['wake']> = (s, events) => {
        wake?.(s, events);
        if (queued) return;
        queued = true;
        // After the engine is done with the socket, as the parked calls are retried.
        queueMicrotask(() => {
          queued = false;
          for (const x of set) {
            const xc = x.client as ShardClient;
            if (xc.closed || xc.fds.get(x.fd) !== x) set.delete(x);
            else this.#readyCheck(xc, x);
          }
        });
      };
      this.#wrappers.add(w);
      sk.wake = w;
    }
    this.#readyCheck(c, f);
  }

  #readyCheck(c: ShardClient, f: ApiFile): void {
    const was = c.listening.get(f.fd);
    if (was === undefined || c.fds.get(f.fd) !== f) return;
    const on = f.sk.state === TCP_LISTEN && (f.ops.poll(f.sk) & POLLIN) !== 0;
    if (on === was) return;
    c.listening.set(f.fd, on);
    this.#emit({ op: 'ready', cid: c.cid, fd: f.fd, on });
  }

  stop(): void {
    this.server.stop();
  }
}
