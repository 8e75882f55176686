/**
 * One API connection, a client process (ApiClient): its input taken in
 * turns (a budget per turn, calls left over served with the other waiting
 * clients), what it holds charged to the daemon's total, and its replies.
 * The server (server.ts) dispatches its calls and keeps the totals; the
 * client reaches it through ApiHost.
 */
import type { ApiMem } from './mem.js';
import {
  API_MAGIC,
  API_MAX_FRAME,
  API_VERSION,
  apiCallMaxFrame,
  FRAME_F_FD,
  FRAME_F_FDS,
  FRAME_F_RING,
  FRAME_F_RING_SLOT,
  FrameWriter,
  HDR_LEN,
  HELLO_CLOSE_NOREPLY,
  HELLO_LEN,
  HELLO_REPLY_LEN,
  HELLO_WANT_FDS,
  HELLO_WANT_RINGS,
  HELLO_RING_LEVEL,
  HELLO_RING_POOL,
  SYS_NAMES,
} from './proto.js';
import { bufAlloc, bufFree, bufTruesize, unixAddon, type UnixConn } from './unix.js';
import type { ApiCaller, ApiFile, Outcome, Parked } from './files.js';
import type { RingPool } from './ring_pool.js';
import { errnoName } from '../uapi.js';

/** What a client needs of its connection: a UnixConn, or a shard's proxy of one (api/shard_proxy.ts). */
export type ApiConn = Pick<UnixConn, 'write' | 'close' | 'queued' | 'truesize' | 'setReading'>;

/** What a client needs of the server that accepted it. */
export interface ApiHost {
  readonly mib: ApiMib;
  /** Data rings are offered to clients that ask (HELLO_WANT_RINGS). */
  readonly rings: boolean;
  readonly opts: { readonly maxBuffered: number; readonly maxBufferedTotal: number };
  /** What all clients hold together, pressure and the reserve. */
  readonly mem: ApiMem<ApiClient>;
  dispatch(c: ApiClient, id: number, call: number, frame: Buffer): void;
  drop(c: ApiClient, reason: string | null): void;
  deferTurn(c: ApiClient): void;
  runFor(c: ApiClient, fn: () => void): void;
  retry(f: ApiFile): void;
}

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
  /** ts_accept_batch calls that returned more than one connection (a batch), and the connections they returned. */
  AcceptBatched = 0;
  AcceptBatchedConns = 0;
  /** Listeners a process took from another holder (ts_inherit, a forked child), and attempts refused (the caller did not hold the listener's data descriptor). */
  Inherited = 0;
  InheritRefused = 0;
  /** Sockets of gone clients kept because their data descriptor was still open elsewhere (a program exec'd with it). */
  Kept = 0;
  /** Sockets released (a close, or the client gone) with bytes TCP had not taken yet, kept until it has (as close() sends the send queue). */
  Lingered = 0;
  Emfile = 0;
  Enobufs = 0;
  /** Live captures started (tapstack capture). */
  Captures = 0;
  /** Frames a capture's reader fell too far behind to get (whole records dropped). */
  CaptureDrops = 0;
  /** Live TCP traces started (tapstack trace). */
  Traces = 0;
  /** Trace records a reader fell too far behind to get. */
  TraceDrops = 0;
  /** Stream sockets given data rings. */
  Rings = 0;
  /** Sockets whose ring a client corrupted (an index or length no ring can hold): their data path ended with EFAULT. */
  RingFaults = 0;
  /** Stream sockets given a ring from their client's pool with no new memfd (RING_POOL: the client's mapping reused). */
  RingsReused = 0;
  /** Clients dropped for a frame longer than its call's maximum. */
  OversizeFrames = 0;
  /** Times a client stopped being read because its queued replies passed apiMaxBuffered. */
  ReadThrottled = 0;
  /** Times the memory of all clients passed apiMaxBufferedTotal (as TCPMemoryPressures). */
  MemoryPressures = 0;
  /** Times a client waited for memory under pressure (not read, or its frames held, while holding more than the floor). */
  PressureThrottled = 0;
  /** Times a client's input was left for a later turn of the loop (its budget was spent). */
  InputDeferred = 0;
  /** Bytes held for clients now: queued replies and partial requests, by truesize. */
  MemAllocated = 0;
  /** Times a client under pressure was let finish the frame it had begun (the reserve). */
  ReserveGrants = 0;
  /** Clients dropped for holding the reserve and sending nothing for RESERVE_IDLE_MS while others waited. */
  ReserveIdleDrops = 0;
  /** accept(2) on the API socket failed (EMFILE and the like: the daemon's descriptors ran out). */
  AcceptFailed = 0;
  /** Times the listener was left unwatched for ACCEPT_BACKOFF_MS after such a failure. */
  AcceptPaused = 0;
}
/** Frames and bytes of one client's input handled per turn of the loop; the rest waits for the next turn. */
export const INPUT_BUDGET_FRAMES = 256;
export const INPUT_BUDGET_BYTES = 1024 * 1024;
/**
 * Frames of all waiting clients together handled in one later turn, shared
 * out among them: two clients that keep the daemon busy with calls get no
 * more of the loop than one, and the stack's own work (the TAP, the data
 * pumps) keeps its share however many there are.
 */
export const INPUT_BUDGET_TURN = 256;
/** The least a waiting client gets in a shared turn. */
export const INPUT_SHARE_MIN = 16;
/**
 * The clients whose input waits for a later turn (ApiHost.deferTurn):
 * one later turn for all of them, INPUT_BUDGET_TURN shared out; those
 * still waiting come back next turn. One per server (the daemon's, or the
 * sharded daemon's router).
 */
export class ApiTurns {
  readonly #waiting = new Set<ApiClient>();
  #scheduled = false;

  defer(c: ApiClient): void {
    this.#waiting.add(c);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#run());
  }

  #run(): void {
    this.#scheduled = false;
    const now = [...this.#waiting];
    this.#waiting.clear();
    const share = Math.max(INPUT_SHARE_MIN, Math.floor(INPUT_BUDGET_TURN / now.length));
    for (const c of now) if (!c.closed) c.turn(share);
  }
}

/** ApiHost.runFor: work for a client outside its input (a pump after a wake-up); our bug drops that client only. */
export function runForClient(host: Pick<ApiHost, 'drop'>, c: ApiClient, fn: () => void): void {
  if (c.closed) return;
  try {
    fn();
  } catch (e) {
    host.drop(c, `internal error: ${(e as Error).stack ?? e}`);
  }
}

/** The smallest input buffer: a partial frame grows it as its bytes come. */
const INPUT_MIN = 4096;
/** Under memory pressure, every client may still hold this much (tcp_rmem[0]'s guarantee): a few replies, a small request. */
export const API_MEM_FLOOR = 16 * 1024;

/** One API connection: a client process. */
export class ApiClient implements ApiCaller {
  readonly fds = new Map<number, ApiFile>();
  /** Sockets closed over the API with CLOSE_F_SHARED whose data descriptor is still open elsewhere. */
  readonly orphans = new Set<ApiFile>();
  /** Input held between reads: a partial frame, or frames left for the next turn; [#inStart, #inEnd) of #in. */
  #in: Buffer | null = null;
  #inStart = 0;
  #inEnd = 0;
  #inCharge = 0;
  /** Complete frames wait in #in for a later turn. */
  #backlog = false;
  #turnPending = false;
  /** While the server's shared turn runs this client: its share of frames (0: its own budget). */
  #turnShare = 0;
  /** Not read until its queued replies drain: they passed maxBuffered. */
  #capped = false;
  #hello = false;
  /** What this client holds in the daemon, charged to the server's total: its write queue and #in. */
  charge = 0;
  wantFds = false;
  /** Stream sockets' data through rings (HELLO_WANT_RINGS, with WANT_FDS). */
  wantRings = false;
  /** RING_LEVEL (with wantRings): down ring only, readiness kept by a byte in the data descriptor (the LD_PRELOAD library). */
  ringLevel = false;
  /** RING_POOL (with wantRings): rings are reused among this client's sockets; the pool is made at its first ring. */
  wantPool = false;
  ringPool: RingPool | null = null;
  closed = false;
  parked = new Set<Parked>();
  constructor(
    readonly server: ApiHost,
    readonly conn: ApiConn,
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
    for (const f of this.fds.values()) if (f.pipe) n += f.pipe.buffered;
    return n;
  }

  /** Bytes that came in: handled now as far as the budget goes, the rest kept for a later turn. */
  input(data: Buffer): void {
    if (this.server.mem.reserveHolder === this) this.server.mem.reserveProgress();
    if (this.#inEnd > this.#inStart) {
      this.#append(data, 0);
      this.#drainIn();
    } else {
      const stop = this.#consume(data, 0, data.length);
      if (stop < data.length && !this.closed) this.#append(data, stop);
    }
    this.update();
  }

  /** Handle what #in holds (a later turn, or new bytes after a partial frame). */
  #drainIn(): void {
    if (!this.#in) return;
    this.#inStart = this.#consume(this.#in, this.#inStart, this.#inEnd);
    if (this.#inStart === this.#inEnd) this.#freeIn();
  }

  /**
   * Handle the hello and whole frames in buf[off, end) and return where it
   * stopped: at a partial frame, or where the turn's budget ran out or its
   * replies may not grow (#mayQueue) (#backlog: frames wait).
   */
  #consume(buf: Buffer, off: number, end: number): number {
    if (!this.#hello) {
      if (end - off < HELLO_LEN) return off;
      const magic = buf.readUInt32LE(off);
      const version = buf.readUInt16LE(off + 4);
      const flags = buf.readUInt16LE(off + 6);
      const reply = Buffer.alloc(HELLO_REPLY_LEN);
      reply.writeUInt32LE(API_MAGIC, 0);
      reply.writeUInt16LE(API_VERSION, 4);
      if (magic !== API_MAGIC || version !== API_VERSION) {
        reply.writeUInt16LE(0, 6);
        this.conn.write(reply);
        this.server.drop(this, magic !== API_MAGIC ? 'bad magic in hello' : `unsupported version ${version}`);
        return end;
      }
      this.wantFds = (flags & HELLO_WANT_FDS) !== 0;
      this.wantRings = this.wantFds && (flags & HELLO_WANT_RINGS) !== 0 && this.server.rings;
      this.ringLevel = this.wantRings && (flags & HELLO_RING_LEVEL) !== 0;
      this.wantPool = this.wantRings && (flags & HELLO_RING_POOL) !== 0;
      const got = (this.wantRings ? HELLO_WANT_RINGS : 0) | (this.ringLevel ? HELLO_RING_LEVEL : 0) | (this.wantPool ? HELLO_RING_POOL : 0);
      reply.writeUInt16LE((this.wantFds ? HELLO_WANT_FDS : 0) | got | HELLO_CLOSE_NOREPLY, 6);
      reply.writeUInt32LE(process.pid, 8);
      reply.writeUInt32LE(API_MAX_FRAME, 12);
      this.conn.write(reply);
      this.#hello = true;
      off += HELLO_LEN;
    }
    this.#backlog = false;
    const budget = this.#turnShare || INPUT_BUDGET_FRAMES;
    let frames = 0;
    let bytes = 0;
    while (!this.closed && end - off >= HDR_LEN) {
      const len = buf.readUInt32LE(off);
      const call = buf.readUInt16LE(off + 8);
      if (len < HDR_LEN || len > API_MAX_FRAME) {
        this.server.drop(this, `impossible frame length ${len}`);
        return end;
      }
      const max = apiCallMaxFrame(call);
      if (len > max) {
        // Said in the header, before the body is buffered: a partial frame never holds more than its call may need.
        this.server.mib.OversizeFrames++;
        this.server.drop(this, `frame of ${len} bytes for ${SYS_NAMES[call] ?? `call ${call}`} (at most ${max})`);
        return end;
      }
      if (end - off < len) break;
      if (frames >= budget || bytes >= INPUT_BUDGET_BYTES || !this.#mayQueue()) {
        this.#backlog = true;
        break;
      }
      const id = buf.readUInt32LE(off + 4);
      // Copy the frame out: a parked call may keep a view of it after the buffer moves on.
      this.server.dispatch(this, id, call, Buffer.from(buf.subarray(off, off + len)));
      off += len;
      frames++;
      bytes += len;
    }
    return off;
  }

  /** Keep buf[from..] in #in: grown as bytes come (doubling, never past the partial frame's length), never to a frame's announced size up front. */
  #append(buf: Buffer, from: number): void {
    const add = buf.length - from;
    const held = this.#inEnd - this.#inStart;
    const need = held + add;
    if (this.#in && this.#inEnd + add <= this.#in.length) {
      buf.copy(this.#in, this.#inEnd, from);
      this.#inEnd += add;
      return;
    }
    if (this.#in && need <= this.#in.length) {
      this.#in.copyWithin(0, this.#inStart, this.#inEnd);
    } else {
      let cap = Math.max(INPUT_MIN, (this.#in?.length ?? 0) * 2);
      const first = held >= HDR_LEN ? this.#in!.readUInt32LE(this.#inStart) : 0;
      if (first > held) cap = Math.min(cap, first);
      cap = Math.max(cap, need);
      const nb = bufAlloc(cap);
      if (this.#in) this.#in.copy(nb, 0, this.#inStart, this.#inEnd);
      this.#setIn(nb);
    }
    this.#inEnd = held;
    this.#inStart = 0;
    buf.copy(this.#in!, this.#inEnd, from);
    this.#inEnd += add;
  }

  #setIn(b: Buffer | null): void {
    if (this.#in) bufFree(this.#in);
    this.#in = b;
    const charge = b ? bufTruesize(b.length) : 0;
    this.server.mem.charge(this, charge - this.#inCharge);
    this.#inCharge = charge;
  }

  /** An emptied input buffer goes back at once: an idle client holds nothing. */
  #freeIn(): void {
    this.#setIn(null);
    this.#inStart = this.#inEnd = 0;
    this.#backlog = false;
    // Its frame is whole and handled: the reserve goes to the next client waiting with one begun.
    this.server.mem.reserveDone(this);
  }

  /** What the client holds in the daemon is handed back (it is gone). */
  release(): void {
    this.#freeIn();
  }

  #overCap(): boolean {
    if (this.conn.truesize > this.server.opts.maxBuffered) {
      if (!this.#capped) {
        this.#capped = true;
        this.server.mib.ReadThrottled++;
      }
    }
    return this.#capped;
  }

  /**
   * Whether its frames may be handled now (their replies queued): not once
   * its replies passed maxBuffered (until they drain), nor under memory
   * pressure while its replies hold more than the floor. What it has already
   * sent is paid for: a client that reads its replies works through it even
   * under pressure, and so releases it.
   */
  #mayQueue(): boolean {
    if (this.#overCap()) return false;
    if (this.server.mem.underPressure && this.conn.truesize >= API_MEM_FLOOR) {
      this.server.mem.pressureWait(this);
      return false;
    }
    return true;
  }

  /**
   * How many more bytes may be read now: what the total has room for, or
   * the floor less all it holds (tcp_rmem[0]'s guarantee), whichever is
   * more, as sk_rmem_schedule asks before charging; past both, the rest of
   * the frame it has begun if it holds the reserve (ApiServer.reserveFor),
   * else nothing.
   */
  readAllowance(): number {
    const room = this.server.opts.maxBufferedTotal - this.server.mem.allocated;
    const left = Math.max(room, API_MEM_FLOOR - this.charge);
    if (left > 0) return left;
    const missing = this.#partialMissing();
    if (missing > 0 && this.server.mem.reserveFor(this)) return missing;
    this.server.mem.pressureWait(this);
    return left;
  }

  /** Bytes still to come of the frame begun in #in (0 when none is, or whole frames wait there). */
  #partialMissing(): number {
    const held = this.#inEnd - this.#inStart;
    if (!this.#in || held === 0 || this.#backlog) return 0;
    if (held < HDR_LEN) return HDR_LEN - held;
    return Math.max(0, this.#in.readUInt32LE(this.#inStart) - held);
  }

  /** The write queue drained: a client stopped for its replies is read again. */
  drained(): void {
    this.#capped = false;
    this.update();
  }

  /**
   * Whether to read this client, and how much, and whether frames it sent
   * get the next turn: neither while it may not queue replies (#mayQueue);
   * no reading while frames wait, nor past its allowance under pressure.
   */
  update(): void {
    if (this.closed) return;
    const allowance = this.readAllowance();
    const mayQueue = this.#mayQueue();
    if (allowance > 0 && mayQueue) this.server.mem.pressureDone(this);
    if (this.#backlog && mayQueue) this.#nextTurn();
    this.conn.setReading(mayQueue && !this.#backlog, allowance);
  }

  #nextTurn(): void {
    if (this.#turnPending) return;
    this.#turnPending = true;
    this.server.mib.InputDeferred++;
    this.server.deferTurn(this);
  }

  /** The shared turn the server gives this client: `share` frames of what waits. */
  turn(share: number): void {
    this.#turnPending = false;
    this.#turnShare = share;
    try {
      this.runFor(() => {
        if (this.#backlog) this.#drainIn();
      });
    } finally {
      this.#turnShare = 0;
    }
    this.runFor(() => this.update());
  }

  runFor(fn: () => void): void {
    this.server.runFor(this, fn);
  }

  retry(f: ApiFile): void {
    this.server.retry(f);
  }

  drop(reason: string): void {
    this.server.drop(this, reason);
  }

  reply(id: number, call: number, o: Outcome): void {
    const one = o.fd !== undefined && o.fd >= 0;
    const ring = one && o.ring !== undefined && o.ring >= 0 ? o.ring : -1;
    if (this.closed) {
      if (one) unixAddon().close(o.fd!);
      if (ring >= 0) unixAddon().close(ring);
      if (o.fds) for (const f of o.fds) unixAddon().close(f);
      return;
    }
    // A pooled ring's slot in the flags' upper byte (FRAME_F_RING_SLOT): with FRAME_F_RING its new memfd, else reused.
    const slot = one && o.slot !== undefined && o.slot >= 0 ? FRAME_F_RING_SLOT | (o.slot << 8) : 0;
    const w = new FrameWriter(id, call, one ? FRAME_F_FD | (ring >= 0 ? FRAME_F_RING : 0) | slot : o.fds?.length ? FRAME_F_FDS : 0);
    w.i32(o.ret);
    if (o.ret < 0) {
      this.server.mib.CallErrors++;
      w.bytes(errnoBody(o.ret));
    } else if (o.body) {
      o.body(w);
    }
    // The data descriptor, then the ring's memfd after it; or a batch's descriptors in order.
    this.conn.write(w.finish(), ring >= 0 ? [o.fd!, ring] : one ? o.fd! : o.fds?.length ? o.fds : -1);
    if (one) this.server.mib.DescriptorsPassed += ring >= 0 ? 2 : 1;
    else if (o.fds) this.server.mib.DescriptorsPassed += o.fds.length;
  }
}

/** Each errno's reply body (u8 length, the name), built once. */
const ERRNO_BODY = new Map<number, Buffer>();
export function errnoBody(ret: number): Buffer {
  let b = ERRNO_BODY.get(ret);
  if (!b) {
    const name = Buffer.from(errnoName(ret));
    b = Buffer.concat([Buffer.from([name.length]), name]);
    ERRNO_BODY.set(ret, b);
  }
  return b;
}
