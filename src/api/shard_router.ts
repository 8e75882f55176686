/**
 * The API of a sharded daemon, the main thread's part (docs/shards.md "The
 * API across shards"). The clients' connections stay here: only one thread
 * may write a client's stream (two shards' replies would interleave). Each
 * call is read here (ApiClient: the hello, frames, budgets, memory) and
 * posted to the shard that owns its socket, found from the descriptor
 * number alone (shard-tagged: n % shards, api/shard_proxy.ts); the shard
 * runs it with the ordinary server code and posts the reply back, with the
 * numbers of the descriptors it passes, which are sent from here
 * (SCM_RIGHTS) and closed. Calls are told apart by a router id put in the
 * frame's id field, the client's id put back on the reply.
 *
 * - socket() picks a shard round robin.
 * - listen() makes the listener a group: a member in every other shard
 *   (same options and address), the reply held until they all answered,
 *   as an SO_REUSEPORT group spans CPUs; a SYN is answered by the member
 *   of the shard its queue belongs to. accept() is tried here in turn at
 *   the shards whose member has a connection waiting (each posts when its
 *   queue turns empty or not), then at the owner; none: EAGAIN, or a
 *   blocking accept waits here for the next readiness. The owner's data
 *   descriptor is readable while any member's queue is not empty
 *   (DataPipe.remoteReady).
 * - poll() over one shard's sockets goes there; over several (a listener
 *   group is all its members) it is asked of each, and the first answer
 *   with events (or all of them) is the reply.
 * - apiMaxSockets is held here for a client's descriptors in every shard
 *   together (a group's one), those in flight included: EMFILE here.
 * - ts_inherit (a forked child's listener) is shared in the owner's shard,
 *   then every member is shared with the child too.
 * - tapstack's own calls: ss and counters are the shards' merged, sysctl
 *   is applied in every shard; capture, trace and cc are refused
 *   (EOPNOTSUPP, docs/api.md).
 */
import type { StackLog } from '../net/core/net.js';
import { ApiClient, ApiMib, ApiTurns, type ApiHost, runForClient } from './conn.js';
import type { ApiFile } from './files.js';
import { ApiListener } from './listen.js';
import { ApiMem } from './mem.js';
import { ACCEPT_BATCH_F_QUEUE, ACCEPT_BATCH_F_RINGS, API_MAX_POLL, CLOSE_F_NOREPLY, FrameWriter, HDR_LEN, SYS } from './proto.js';
import type { ApiOptions } from './server.js';
import type { FromProxy, ListenSpec, ShardApiLimits, ToProxy } from './shard_proxy.js';
import { chownSync } from 'node:fs';
import { UnixConn, unixAddon } from './unix.js';
import { sumCounters } from '../daemon/shard_merge.js';
import { EAGAIN, EBADF, EMFILE, EOPNOTSUPP, errnoName, F_SETFL, FIONBIO, O_NONBLOCK } from '../uapi.js';

const API_READ_BUF = 256 * 1024;

/** The config's live API keys (SIGHUP). */
export interface ApiLive {
  apiGroup: number | null;
  apiLowPortGroup: number | null;
  apiMaxSockets: number;
  apiMaxBuffered: number;
  apiMaxBufferedTotal: number;
  apiRings: boolean;
}

/** The calls whose first argument is a descriptor: routed by it. */
const FD_CALLS = new Set<number>([
  SYS.close, SYS.bind, SYS.listen, SYS.accept, SYS.accept4, SYS.ts_accept_batch, SYS.connect, SYS.shutdown, SYS.getsockname, SYS.getpeername,
  SYS.setsockopt, SYS.getsockopt, SYS.fcntl, SYS.ioctl, SYS.read, SYS.recvfrom, SYS.recvmsg, SYS.write, SYS.sendto, SYS.sendmsg,
  SYS.ts_zerocopy, SYS.ts_ring_wake, SYS.ts_ring_off,
]);
/** The whole daemon's calls that are not routed (a stream from every shard is not done). */
const REFUSED = new Set<number>([SYS.ts_capture, SYS.ts_trace, SYS.ts_cc]);
/** Api counters that are the main thread's (the connections, their input); the rest are the shards' summed. */
const MAIN_MIB = [
  'Clients', 'ClientsTotal', 'Calls', 'BadFrames', 'ClientsDropped', 'OversizeFrames', 'ReadThrottled', 'MemoryPressures',
  'PressureThrottled', 'InputDeferred', 'MemAllocated', 'ReserveGrants', 'ReserveIdleDrops', 'AcceptFailed', 'AcceptPaused',
] as const;

/** A listener in every shard: the client's descriptor (the owner's) and each shard's member. */
interface Group {
  fd: number;
  owner: number;
  /** Each shard's member descriptor (-1: none there). */
  members: Int32Array;
  /** Each member's accept queue is not empty, as last posted. */
  ready: Uint8Array;
  /** What the owner's descriptor was last told of the others (remoteReady). */
  remote: boolean;
  nonblock: boolean;
  /** Blocking accepts waiting for a connection anywhere. */
  waiters: AcceptCall[];
  /** The listener's SO_RCVTIMEO in ms (0: none), as the owner last answered an accept. */
  rcvtimeo: number;
  /** Where the next accept starts looking (the shards take turns). */
  next: number;
}

interface AcceptCall {
  id: number;
  call: number;
  frame: Buffer;
  g: Group;
  tried: Uint8Array;
  /** SO_RCVTIMEO's end once parked (inet_csk_wait_for_connect's timeo: not restarted by a wake-up), null: none. */
  timer: NodeJS.Timeout | null;
  /** The timeout passed while the call was being tried at a shard: EAGAIN rather than parking again. */
  expired: boolean;
}

/** One call in flight, by router id. */
type Pend =
  /** `res`: descriptors held for what the call may make (apiMaxSockets), given back with its reply. */
  | { k: 'one'; id: number; call: number; res?: number; frame?: Buffer }
  | { k: 'accept'; a: AcceptCall; shard: number; res: number }
  | { k: 'member'; g: Group; shard: number; held: Held }
  | { k: 'inherit'; id: number; g: Group; parent: Route; res: number }
  /** A member's copy of a call on its group (its reply is the owner's). */
  | { k: 'ignore' }
  | { k: 'fan'; f: Fan; shard: number }
  | { k: 'poll'; p: PollFan; shard: number };

/** A listen reply held until every member answered. */
interface Held {
  id: number;
  frame: Buffer;
  fds: number[];
  left: number;
}

interface Fan {
  id: number;
  call: number;
  replies: (Buffer | null)[];
  left: number;
}

/** One shard's entries of a poll: the client's entry each answers for, and the descriptor asked there. */
interface PollPart {
  idx: number[];
  fds: number[];
}

interface PollFan {
  id: number;
  fds: Int32Array;
  revents: Uint32Array;
  parts: Map<number, PollPart>;
  left: number;
  done: boolean;
}

/** A client of the sharded daemon: its connection here, its sockets in the shards. */
interface Route {
  cid: number;
  c: ApiClient;
  opened: boolean;
  nextRid: number;
  pending: Map<number, Pend>;
  /** Listener groups by the client's descriptor, and by every member's. */
  groups: Map<number, Group>;
  members: Map<number, Group>;
  /**
   * The descriptors the client holds, in every shard (a listener group's
   * is one, as the client sees it), and those held for calls in flight
   * that may make one: apiMaxSockets is checked against both together.
   */
  open: Set<number>;
  reserved: number;
}

export class ApiRouter implements ApiHost {
  readonly mib = new ApiMib();
  rings = true;
  readonly mem: ApiMem<ApiClient>;
  readonly #listener: ApiListener;
  readonly #rbuf = Buffer.allocUnsafeSlow(API_READ_BUF);
  readonly #ux = unixAddon();
  readonly #routes = new Map<number, Route>();
  readonly #of = new WeakMap<ApiClient, Route>();
  #nextCid = 1;
  #rr = 0;
  /** Messages for each shard, posted together once this turn's work is done (one postMessage, not one per call). */
  readonly #outbox: ToProxy[][];
  #flushQueued = false;

  #send(shard: number, m: ToProxy): void {
    this.#outbox[shard].push(m);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    for (let i = 0; i < this.shards; i++) {
      const ms = this.#outbox[i];
      if (!ms.length) continue;
      this.#outbox[i] = [];
      this.send(i, ms);
    }
  }

  constructor(
    readonly opts: ApiOptions,
    readonly log: StackLog,
    readonly shards: number,
    readonly send: (shard: number, ms: ToProxy[]) => void,
  ) {
    this.#outbox = Array.from({ length: shards }, () => []);
    this.#listener = new ApiListener(this.mib, log, (fd, pid, uid, gid) => this.#connected(fd, pid, uid, gid));
    this.mem = new ApiMem<ApiClient>(this.mib, opts, (c, why) => this.drop(c, why), (c, fn) => this.runFor(c, fn));
  }

  start(): void {
    this.#listener.start(this.opts.path, this.opts.gid);
  }

  stop(): void {
    if (!this.#listener.stop()) return;
    this.mem.stop();
    for (const r of [...this.#routes.values()]) this.drop(r.c, null);
  }

  /**
   * SIGHUP's API keys, as the single daemon applies them: this thread's
   * limits and the socket's group here; the shards' (maxSockets, the
   * buffers, rings) go with the reload message (limits()). Returns the keys
   * refused, "key: why".
   */
  reload(next: ApiLive, ownGid: number, memory: number): string[] {
    const failed: string[] = [];
    if (next.apiGroup !== this.opts.gid) {
      try {
        chownSync(this.opts.path, -1, next.apiGroup ?? ownGid);
        this.opts.gid = next.apiGroup;
      } catch (e) {
        failed.push(`apiGroup: cannot change the API socket's group: ${(e as Error).message}`);
      }
    }
    this.opts.lowPortGid = next.apiLowPortGroup;
    this.opts.maxSockets = next.apiMaxSockets;
    this.opts.maxBuffered = next.apiMaxBuffered;
    if (next.apiMaxBufferedTotal > memory / 2) failed.push(`apiMaxBufferedTotal: ${next.apiMaxBufferedTotal} is over half of the running memory (${memory} bytes)`);
    else this.opts.maxBufferedTotal = next.apiMaxBufferedTotal;
    this.rings = next.apiRings;
    return failed;
  }

  /** What each shard's server needs of the limits (at start and after a reload). */
  limits(): ShardApiLimits {
    const o = this.opts;
    return { lowPortGid: o.lowPortGid, maxSockets: o.maxSockets, maxBuffered: o.maxBuffered, maxBufferedTotal: o.maxBufferedTotal, rings: this.rings };
  }

  get clients(): number {
    return this.#routes.size;
  }

  #connected(fd: number, pid: number, uid: number, gid: number): void {
    const conn = new UnixConn(fd, this.#rbuf);
    const c = new ApiClient(this, conn, pid, uid, gid);
    const r: Route = { cid: this.#nextCid++, c, opened: false, nextRid: 1, pending: new Map(), groups: new Map(), members: new Map(), open: new Set(), reserved: 0 };
    conn.onData = (buf, fds) => {
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
    c.update();
    this.#routes.set(r.cid, r);
    this.#of.set(c, r);
    this.mib.Clients++;
    this.mib.ClientsTotal++;
    this.log.debug({ pid, uid }, 'api: client connected');
  }

  drop(c: ApiClient, reason: string | null): void {
    if (c.closed) return;
    c.closed = true;
    if (reason) {
      this.mib.ClientsDropped++;
      this.log.warn({ pid: c.pid, uid: c.uid, reason }, 'api: closing client connection');
    }
    const r = this.#of.get(c);
    if (r) {
      this.#routes.delete(r.cid);
      // Every shard releases its sockets, as a dying process's are (the replies in flight are dropped).
      if (r.opened) for (let i = 0; i < this.shards; i++) this.#send(i, { op: 'drop', cid: r.cid });
      for (const p of r.pending.values()) if (p.k === 'member') for (const f of p.held.fds) this.#ux.close(f);
      r.pending.clear();
      for (const g of r.groups.values()) for (const a of g.waiters) this.#acceptDone(a);
    }
    c.conn.close();
    c.release();
    this.mem.forget(c);
    this.mib.Clients--;
    this.#listener.resume();
  }

  readonly #turns = new ApiTurns();

  deferTurn(c: ApiClient): void {
    this.#turns.defer(c);
  }

  runFor(c: ApiClient, fn: () => void): void {
    runForClient(this, c, fn);
  }

  /** No socket lives in this thread. */
  retry(_f: ApiFile): void {}

  // --- calls to the shards --------------------------------------------------------------

  /** A router id for a call of `r`'s: the next one no call in flight holds (a parked call may hold one for long). */
  #rid(r: Route): number {
    let rid = r.nextRid;
    while (r.pending.has(rid)) rid = rid >= 0x7fffffff ? 1 : rid + 1;
    r.nextRid = rid >= 0x7fffffff ? 1 : rid + 1;
    return rid;
  }

  /** Post `frame` (a copy, with a router id) to `shard`, its reply expected as `p` (null: none comes). */
  #post(r: Route, shard: number, frame: Buffer, p: Pend | null, once = false): void {
    if (!r.opened) {
      r.opened = true;
      const c = r.c;
      for (let i = 0; i < this.shards; i++) {
        this.#send(i, { op: 'open', cid: r.cid, pid: c.pid, uid: c.uid, gid: c.gid, wantFds: c.wantFds, wantRings: c.wantRings, ringLevel: c.ringLevel });
      }
    }
    const out = new Uint8Array(frame);
    if (p) {
      const rid = this.#rid(r);
      new DataView(out.buffer).setUint32(4, rid, true);
      r.pending.set(rid, p);
    }
    this.#send(shard, once ? { op: 'call', cid: r.cid, frame: out, once } : { op: 'call', cid: r.cid, frame: out });
  }

  dispatch(c: ApiClient, id: number, call: number, frame: Buffer): void {
    this.mib.Calls++;
    const r = this.#of.get(c)!;
    if (REFUSED.has(call)) return c.reply(id, call, { ret: -EOPNOTSUPP });
    if (call === SYS.socket) {
      if (this.#room(r) <= 0) return this.#emfile(r, id, call);
      const shard = this.#rr;
      this.#rr = (shard + 1) % this.shards;
      r.reserved++;
      return this.#post(r, shard, frame, { k: 'one', id, call, res: 1 });
    }
    if (call === SYS.poll) return this.#poll(r, id, frame);
    if (call === SYS.ts_inherit) return this.#inherit(r, id, frame);
    if (call === SYS.ts_sockets || call === SYS.ts_counters || call === SYS.ts_sysctl) {
      const f: Fan = { id, call, replies: new Array(this.shards).fill(null), left: this.shards };
      for (let i = 0; i < this.shards; i++) this.#post(r, i, frame, { k: 'fan', f, shard: i });
      return;
    }
    if (!FD_CALLS.has(call) || frame.length < HDR_LEN + 4) return this.#post(r, 0, frame, { k: 'one', id, call });
    const fd = frame.readInt32LE(HDR_LEN);
    const noreply = call === SYS.close && frame.length >= HDR_LEN + 8 && (frame.readInt32LE(HDR_LEN + 4) & CLOSE_F_NOREPLY) !== 0;
    if (fd < 0) {
      if (!noreply) c.reply(id, call, { ret: -EBADF });
      return;
    }
    if (call === SYS.close) r.open.delete(fd);
    const g = r.groups.get(fd);
    if (g) {
      switch (call) {
        case SYS.accept:
        case SYS.accept4:
        case SYS.ts_accept_batch:
          return this.#accept({ id, call, frame, g, tried: new Uint8Array(this.shards), timer: null, expired: false }, r);
        case SYS.close:
          this.#closeGroup(r, g);
          break;
        case SYS.setsockopt:
          // An option set on a listener holds in every member (the owner's reply is the answer).
          for (let i = 0; i < this.shards; i++) {
            if (i === g.owner || g.members[i] < 0) continue;
            const m = Buffer.from(frame);
            m.writeInt32LE(g.members[i], HDR_LEN);
            this.#post(r, i, m, { k: 'ignore' });
          }
          break;
        case SYS.fcntl:
          if (frame.length >= HDR_LEN + 12 && frame.readInt32LE(HDR_LEN + 4) === F_SETFL) g.nonblock = (frame.readInt32LE(HDR_LEN + 8) & O_NONBLOCK) !== 0;
          break;
        case SYS.ioctl:
          if (frame.length >= HDR_LEN + 12 && frame.readUInt32LE(HDR_LEN + 4) === FIONBIO) g.nonblock = frame.readInt32LE(HDR_LEN + 8) !== 0;
          break;
      }
    }
    // A number not open goes as it is: the shard answers EBADF first, as accept's fdget comes before its new descriptor.
    if ((call === SYS.accept || call === SYS.accept4 || call === SYS.ts_accept_batch) && r.open.has(fd)) {
      // Not a group (a listener of one shard, or no listener at all): held for one, or for the batch's max.
      const room = this.#room(r);
      if (room <= 0) return this.#emfile(r, id, call);
      const res = call === SYS.ts_accept_batch && frame.length >= HDR_LEN + 12 ? Math.max(1, Math.min(room, frame.readUInt32LE(HDR_LEN + 8))) : 1;
      if (call === SYS.ts_accept_batch && frame.length >= HDR_LEN + 12 && frame.readUInt32LE(HDR_LEN + 8) > res) {
        frame = Buffer.from(frame);
        frame.writeUInt32LE(res, HDR_LEN + 8);
      }
      r.reserved += res;
      return this.#post(r, fd % this.shards, frame, { k: 'one', id, call, res, frame });
    }
    this.#post(r, fd % this.shards, frame, noreply ? null : { k: 'one', id, call });
  }

  // --- apiMaxSockets over the shards ------------------------------------------------------

  /** Descriptors the client may still open: apiMaxSockets less those it holds and those held for calls in flight. */
  #room(r: Route): number {
    return this.opts.maxSockets - r.open.size - r.reserved;
  }

  #emfile(r: Route, id: number, call: number): void {
    this.mib.Emfile++;
    r.c.reply(id, call, { ret: -EMFILE });
  }

  /**
   * A reply of a call that may make descriptors (`request`: its frame): the
   * hold is given back and what it made is the client's. A batch's
   * entries are read for their numbers: n x (i32 fd, [u16 with
   * ACCEPT_BATCH_F_RINGS], u16 length, sockaddr).
   */
  #made(r: Route, call: number, res: number, request: Buffer | undefined, frame: Buffer): void {
    r.reserved -= res;
    const ret = frame.length >= HDR_LEN + 4 ? frame.readInt32LE(HDR_LEN) : -1;
    if (ret < 0) return;
    if (call !== SYS.ts_accept_batch) {
      r.open.add(ret);
      return;
    }
    const rings = request !== undefined && request.length >= HDR_LEN + 16 && (request.readUInt32LE(HDR_LEN + 12) & ACCEPT_BATCH_F_RINGS) !== 0;
    let off = HDR_LEN + 4;
    for (let k = 0; k < ret && off + 4 <= frame.length; k++) {
      r.open.add(frame.readInt32LE(off));
      off += rings ? 6 : 4;
      if (off + 2 > frame.length) break;
      off += 2 + frame.readUInt16LE(off);
    }
  }

  /** A reply (or a member's making, a readiness) from shard `i`. */
  onShard(i: number, m: FromProxy): void {
    const r = this.#routes.get(m.cid);
    if (!r) {
      if (m.op === 'reply') for (const f of m.fds) this.#ux.close(f);
      return;
    }
    // A bug of ours in serving this client's answer costs the client, never the daemon.
    this.runFor(r.c, () => {
      switch (m.op) {
        case 'reply':
          return this.#reply(r, i, Buffer.from(m.frame.buffer, m.frame.byteOffset, m.frame.byteLength), m.fds, m.spec, m.nonblock, m.rcvtimeo);
        case 'member':
          return this.#memberDone(r, m.rid, m.fd, m.errno);
        case 'ready':
          return this.#ready(r, i, m.fd, m.on);
        case 'fail':
          return this.drop(r.c, m.reason);
      }
    });
  }

  /** Send a shard's reply frame to the client with its own id; the descriptors go with it and our copies are closed. */
  #out(r: Route, id: number, frame: Buffer, fds: number[]): void {
    if (r.c.closed) {
      for (const f of fds) this.#ux.close(f);
      return;
    }
    frame.writeUInt32LE(id, 4);
    r.c.conn.write(frame, fds.length === 0 ? -1 : fds.length === 1 ? fds[0] : fds);
  }

  #reply(r: Route, shard: number, frame: Buffer, fds: number[], spec?: ListenSpec, nonblock?: boolean, rcvtimeo?: number): void {
    const rid = frame.readUInt32LE(4);
    const p = r.pending.get(rid);
    if (!p) {
      // The rest of a poll already answered, or a call of a client being dropped.
      for (const f of fds) this.#ux.close(f);
      return;
    }
    r.pending.delete(rid);
    switch (p.k) {
      case 'one':
        if (p.res !== undefined) this.#made(r, p.call, p.res, p.frame, frame);
        if (spec && this.shards > 1) return this.#group(r, shard, p.id, frame, fds, spec, nonblock === true);
        return this.#out(r, p.id, frame, fds);
      case 'accept':
        this.#made(r, p.a.call, p.res, p.a.frame, frame);
        if (p.shard === p.a.g.owner && rcvtimeo !== undefined) p.a.g.rcvtimeo = rcvtimeo;
        return this.#acceptReply(r, p.a, p.shard, frame, fds);
      case 'fan':
        p.f.replies[p.shard] = frame;
        if (--p.f.left === 0) this.#fanDone(r, p.f);
        return;
      case 'poll':
        return this.#pollReply(r, p.p, p.shard, frame);
      case 'inherit':
        this.#made(r, SYS.ts_inherit, p.res, undefined, frame);
        return this.#inherited(r, p.id, p.g, p.parent, frame, fds);
      case 'member':
      case 'ignore':
        for (const f of fds) this.#ux.close(f);
        return;
    }
  }

  // --- listener groups ------------------------------------------------------------------

  /** A listen took in `owner`: a member in every other shard, the reply held until they all answered. */
  #group(r: Route, owner: number, id: number, frame: Buffer, fds: number[], spec: ListenSpec, nonblock: boolean): void {
    // The spec ends with the owner's listen call: its descriptor is the client's.
    const last = spec[spec.length - 1];
    const lfd = Buffer.from(last.buffer, last.byteOffset, last.byteLength).readInt32LE(HDR_LEN);
    const g: Group = { fd: lfd, owner, members: new Int32Array(this.shards).fill(-1), ready: new Uint8Array(this.shards), remote: false, nonblock, waiters: [], rcvtimeo: 0, next: 0 };
    g.members[owner] = lfd;
    r.groups.set(lfd, g);
    r.members.set(lfd, g);
    const held: Held = { id, frame, fds, left: this.shards - 1 };
    for (let i = 0; i < this.shards; i++) {
      if (i === owner) continue;
      const rid = this.#rid(r);
      r.pending.set(rid, { k: 'member', g, shard: i, held });
      this.#send(i, { op: 'member', cid: r.cid, rid, frames: spec.map((b) => new Uint8Array(b)) });
    }
  }

  #memberDone(r: Route, rid: number, fd: number, errno: number): void {
    const p = r.pending.get(rid);
    if (!p || p.k !== 'member') return;
    r.pending.delete(rid);
    const { g, shard, held } = p;
    if (fd >= 0 && r.groups.get(g.fd) === g) {
      g.members[shard] = fd;
      r.members.set(fd, g);
    } else if (fd >= 0) {
      // The listener was closed meanwhile: so is its member.
      this.#post(r, shard, new FrameWriter(0, SYS.close).i32(fd).i32(CLOSE_F_NOREPLY).finish(), null);
    } else {
      this.log.warn({ pid: r.c.pid, shard, err: errnoName(-errno) }, 'api: a listener could not be opened in every shard: the connections steered to that shard are refused');
    }
    if (--held.left === 0) this.#out(r, held.id, held.frame, held.fds);
  }

  /**
   * ts_inherit of a listener group (a forked child taking its parent's
   * listener): the owner's shard checks the caller holds the data
   * descriptor and shares its file, as the single daemon does; then every
   * member is shared the same way, and the child has a group of its own
   * over the same sockets.
   */
  #inherit(r: Route, id: number, frame: Buffer): void {
    const pid = frame.length >= HDR_LEN + 8 ? frame.readUInt32LE(HDR_LEN) : -1;
    const fd = frame.length >= HDR_LEN + 8 ? frame.readInt32LE(HDR_LEN + 4) : -1;
    let parent: Route | null = null;
    let g: Group | undefined;
    for (const o of this.#routes.values()) {
      if (o === r || o.c.closed || o.c.pid !== pid) continue;
      const og = o.groups.get(fd);
      if (og) {
        parent = o;
        g = og;
      }
    }
    // Not a listener group: the shard of the number answers as the single daemon would (EBADF, EOPNOTSUPP).
    if (this.#room(r) <= 0) return this.#emfile(r, id, SYS.ts_inherit);
    r.reserved++;
    if (!parent || !g) return this.#post(r, fd >= 0 ? fd % this.shards : 0, frame, { k: 'one', id, call: SYS.ts_inherit, res: 1 });
    this.#post(r, g.owner, frame, { k: 'inherit', id, g, parent, res: 1 });
  }

  #inherited(r: Route, id: number, from: Group, parent: Route, frame: Buffer, fds: number[]): void {
    const ret = frame.readInt32LE(HDR_LEN);
    if (ret < 0 || parent.groups.get(from.fd) !== from) return this.#out(r, id, frame, fds);
    const g: Group = { fd: ret, owner: from.owner, members: new Int32Array(this.shards).fill(-1), ready: new Uint8Array(this.shards), remote: false, nonblock: from.nonblock, waiters: [], rcvtimeo: 0, next: 0 };
    g.members[from.owner] = ret;
    r.groups.set(ret, g);
    r.members.set(ret, g);
    const held: Held = { id, frame, fds, left: 1 };
    for (let i = 0; i < this.shards; i++) {
      if (i === from.owner || from.members[i] < 0) continue;
      held.left++;
      const rid = this.#rid(r);
      r.pending.set(rid, { k: 'member', g, shard: i, held });
      this.#send(i, { op: 'share', cid: r.cid, rid, from: parent.cid, fd: from.members[i] });
    }
    if (--held.left === 0) this.#out(r, id, frame, fds);
  }

  /** Close a group: the owner's close goes as the client sent it, the members' are closed silently; waiting accepts get EBADF. */
  #closeGroup(r: Route, g: Group): void {
    r.groups.delete(g.fd);
    r.open.delete(g.fd);
    for (let i = 0; i < this.shards; i++) {
      const m = g.members[i];
      if (m < 0) continue;
      r.members.delete(m);
      if (i !== g.owner) this.#post(r, i, new FrameWriter(0, SYS.close).i32(m).i32(CLOSE_F_NOREPLY).finish(), null);
    }
    for (const a of g.waiters) {
      this.#acceptDone(a);
      r.c.reply(a.id, a.call, { ret: -EBADF });
    }
    g.waiters.length = 0;
  }

  /** A parked accept is answered: its SO_RCVTIMEO timer goes. */
  #acceptDone(a: AcceptCall): void {
    if (a.timer) clearTimeout(a.timer);
    a.timer = null;
  }

  /** A member's accept queue turned empty or not: the owner's descriptor follows the union; waiting accepts try again. */
  #ready(r: Route, shard: number, fd: number, on: boolean): void {
    const g = r.members.get(fd);
    if (!g || g.members[shard] !== fd) return;
    g.ready[shard] = on ? 1 : 0;
    let remote = false;
    for (let i = 0; i < this.shards; i++) if (i !== g.owner && g.ready[i]) remote = true;
    if (remote !== g.remote) {
      g.remote = remote;
      this.#send(g.owner, { op: 'remote', cid: r.cid, fd: g.fd, on: remote });
    }
    if (on && g.waiters.length) {
      const w = g.waiters.splice(0);
      for (const a of w) {
        a.tried.fill(0);
        this.#accept(a, r);
      }
    }
  }

  /**
   * accept on a group: tried at a shard whose member has a connection
   * waiting (in turn), then at the owner; each answers at once (`once`).
   * None had one: EAGAIN for a non-blocking listener, else the call waits
   * here for a member's readiness.
   */
  #accept(a: AcceptCall, r: Route): void {
    const g = a.g;
    let shard = -1;
    for (let k = 0; k < this.shards; k++) {
      const i = (g.next + k) % this.shards;
      if (g.ready[i] && !a.tried[i] && g.members[i] >= 0) {
        shard = i;
        break;
      }
    }
    if (shard < 0 && !a.tried[g.owner]) shard = g.owner;
    // At the limit: EMFILE before any connection is taken, as the single daemon's accept (each try, as each of its retries).
    const room = this.#room(r);
    if (room <= 0) {
      this.#acceptDone(a);
      return this.#emfile(r, a.id, a.call);
    }
    if (shard < 0) {
      if (g.nonblock || a.expired) {
        this.#acceptDone(a);
        return r.c.reply(a.id, a.call, { ret: -EAGAIN });
      }
      g.waiters.push(a);
      // SO_RCVTIMEO (the owner's answer just now carried it): EAGAIN at its end, as inet_csk_accept's sk_rcvtimeo.
      if (!a.timer && g.rcvtimeo > 0) {
        a.timer = setTimeout(() => {
          a.timer = null;
          a.expired = true;
          const i = g.waiters.indexOf(a);
          // Being tried at a shard now: that answer ends it (a connection, or EAGAIN rather than waiting again).
          if (i < 0) return;
          g.waiters.splice(i, 1);
          this.runFor(r.c, () => r.c.reply(a.id, a.call, { ret: -EAGAIN }));
        }, g.rcvtimeo);
      }
      return;
    }
    g.next = (shard + 1) % this.shards;
    a.tried[shard] = 1;
    const frame = Buffer.from(a.frame);
    frame.writeInt32LE(g.members[shard], HDR_LEN);
    // Queued connections' bytes belong in the client's descriptor, the owner's: a member's takes none (see #acceptReply).
    if (shard !== g.owner && a.call === SYS.ts_accept_batch && frame.length >= HDR_LEN + 16) {
      frame.writeUInt32LE(frame.readUInt32LE(HDR_LEN + 12) & ~ACCEPT_BATCH_F_QUEUE, HDR_LEN + 12);
    }
    // Held for what the try may make: one, or the batch's max cut to the room left.
    let res = 1;
    if (a.call === SYS.ts_accept_batch && frame.length >= HDR_LEN + 12) {
      res = Math.max(1, Math.min(room, frame.readUInt32LE(HDR_LEN + 8)));
      if (frame.readUInt32LE(HDR_LEN + 8) > res) frame.writeUInt32LE(res, HDR_LEN + 8);
    }
    r.reserved += res;
    this.#post(r, shard, frame, { k: 'accept', a, shard, res }, true);
  }

  #acceptReply(r: Route, a: AcceptCall, shard: number, frame: Buffer, fds: number[]): void {
    const ret = frame.readInt32LE(HDR_LEN);
    const g = a.g;
    // Taken meanwhile by another accept (that shard's readiness follows): the next shard is asked.
    if (ret === -EAGAIN && r.groups.get(g.fd) === g) return this.#accept(a, r);
    this.#acceptDone(a);
    // Closed while the call was being tried: EBADF, as a parked accept gets from #closeGroup (a blocking one would have waited).
    if (ret === -EAGAIN && !g.nonblock && !a.expired) {
      for (const f of fds) this.#ux.close(f);
      return r.c.reply(a.id, a.call, { ret: -EBADF });
    }
    if (ret > 1 && shard !== g.owner && a.call === SYS.ts_accept_batch && a.frame.length >= HDR_LEN + 16 && a.frame.readUInt32LE(HDR_LEN + 12) & ACCEPT_BATCH_F_QUEUE) {
      this.#send(g.owner, { op: 'queued', cid: r.cid, fd: g.fd, n: ret - 1 });
    }
    this.#out(r, a.id, frame, fds);
  }

  // --- poll over several shards -----------------------------------------------------------

  #poll(r: Route, id: number, frame: Buffer): void {
    const n = frame.length >= HDR_LEN + 8 ? frame.readUInt32LE(HDR_LEN) : 0;
    if (n === 0 || n > API_MAX_POLL || frame.length < HDR_LEN + 8 + n * 8) return this.#post(r, 0, frame, { k: 'one', id, call: SYS.poll });
    // Each shard's entries: the client's own, and for a listener group every member's, its events ORed into the entry.
    const parts = new Map<number, PollPart>();
    const fds = new Int32Array(n);
    const add = (s: number, i: number, fd: number) => {
      let part = parts.get(s);
      if (!part) parts.set(s, (part = { idx: [], fds: [] }));
      part.idx.push(i);
      part.fds.push(fd);
    };
    for (let i = 0; i < n; i++) {
      const fd = frame.readInt32LE(HDR_LEN + 8 + i * 8);
      fds[i] = fd;
      if (fd < 0) continue;
      const g = r.groups.get(fd);
      if (!g) add(fd % this.shards, i, fd);
      else for (let s = 0; s < this.shards; s++) if (g.members[s] >= 0) add(s, i, g.members[s]);
    }
    // One shard (a group's only member is its owner's own descriptor): the frame goes as it is.
    if (parts.size <= 1) {
      const only = parts.size ? parts.keys().next().value! : 0;
      return this.#post(r, only, frame, { k: 'one', id, call: SYS.poll });
    }
    const p: PollFan = { id, fds, revents: new Uint32Array(n), parts, left: parts.size, done: false };
    const timeout = frame.readInt32LE(HDR_LEN + 4);
    for (const [s, part] of parts) {
      const w = new FrameWriter(0, SYS.poll, 0, HDR_LEN + 8 + part.idx.length * 8).u32(part.idx.length).i32(timeout);
      for (let k = 0; k < part.idx.length; k++) w.i32(part.fds[k]).u32(frame.readUInt32LE(HDR_LEN + 12 + part.idx[k] * 8));
      this.#post(r, s, w.finish(), { k: 'poll', p, shard: s });
    }
  }

  /** A shard's part of a poll: the first with events (or the last of them) answers the whole call. */
  #pollReply(r: Route, p: PollFan, shard: number, frame: Buffer): void {
    if (p.done) return;
    p.left--;
    const ret = frame.readInt32LE(HDR_LEN);
    if (ret < 0) {
      p.done = true;
      return this.#out(r, p.id, frame, []);
    }
    const idx = p.parts.get(shard)!.idx;
    for (let k = 0; k < idx.length && HDR_LEN + 4 + k * 8 + 8 <= frame.length; k++) p.revents[idx[k]] |= frame.readUInt32LE(HDR_LEN + 4 + k * 8 + 4);
    if (ret === 0 && p.left > 0) return;
    p.done = true;
    let ready = 0;
    for (const v of p.revents) if (v) ready++;
    const w = new FrameWriter(p.id, SYS.poll, 0, HDR_LEN + 4 + p.fds.length * 8).i32(ready);
    for (let i = 0; i < p.fds.length; i++) w.i32(p.fds[i]).u32(p.revents[i]);
    this.#out(r, p.id, w.finish(), []);
  }

  // --- the whole daemon's calls ---------------------------------------------------------------

  /** The shards' counters summed, with the Api group's connection counters this thread's (they count clients, not sockets). */
  merged(shards: readonly Record<string, unknown>[]): Record<string, unknown> {
    const sum = sumCounters(shards);
    const api = (sum.Api ?? {}) as Record<string, number>;
    for (const k of MAIN_MIB) api[k] = this.mib[k];
    api.CallErrors = (api.CallErrors ?? 0) + this.mib.CallErrors;
    // EMFILE is answered here (apiMaxSockets over the shards) and, for the sockets a shard holds past the client's, there.
    api.Emfile = (api.Emfile ?? 0) + this.mib.Emfile;
    sum.Api = api;
    return sum;
  }

  /** Every shard answered ss, counters or sysctl: one reply. */
  #fanDone(r: Route, f: Fan): void {
    const rs = f.replies as Buffer[];
    const failed = rs.find((b) => b.readInt32LE(HDR_LEN) < 0);
    if (failed) return this.#out(r, f.id, failed, []);
    const json = (b: Buffer): unknown => JSON.parse(b.subarray(HDR_LEN + 4).toString('utf8'));
    let v: unknown;
    if (f.call === SYS.ts_sysctl) return this.#out(r, f.id, rs[0], []);
    if (f.call === SYS.ts_sockets) {
      v = rs.flatMap((b) => json(b) as unknown[]);
    } else {
      v = this.merged(rs.map((b) => json(b) as Record<string, unknown>));
    }
    const body = Buffer.from(JSON.stringify(v));
    this.#out(r, f.id, new FrameWriter(f.id, f.call, 0, HDR_LEN + 4 + body.length).i32(body.length).bytes(body).finish(), []);
  }
}
