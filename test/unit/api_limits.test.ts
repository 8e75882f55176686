/**
 * What the API server holds for a client, and for how long: the write queue
 * (small replies coalesced into chunks, charged by truesize, descriptors on
 * their frame's first byte, O(1) at both ends), the input (handled in turns
 * of a bounded budget, a partial frame grown as its bytes come, a frame too
 * long for its call refused from its header), the per-client cap and the
 * daemon-wide total. In-process: an ApiServer over a stack on the in-memory
 * link, raw clients on its UNIX socket.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness } from '../lib/harness.js';
import { until } from '../lib/api_inproc.js';
import { ApiServer, API_DEFAULTS, API_MEM_FLOOR, INPUT_BUDGET_FRAMES, INPUT_BUDGET_TURN, RESERVE_IDLE_MS, type ApiOptions } from '../../src/api/server.js';
import { API_MAGIC, API_MAX_FRAME, API_VERSION, HDR_LEN, HELLO_LEN, HELLO_REPLY_LEN, SYS, apiCallMaxFrame } from '../../src/api/proto.js';
import { Ring, WQ_CHUNK, WQ_COPY_MAX, WriteQueue, unixAddon } from '../../src/api/unix.js';
import { AF_INET } from '../../src/uapi.js';

const ux = unixAddon();
const EAGAIN = 11;
const dir = mkdtempSync(join(tmpdir(), 'tapstack-api-limits-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function server(opts: Partial<ApiOptions> = {}): { server: ApiServer; path: string } {
  const h = Harness.withPeer(AF_INET);
  const path = join(dir, `api${n++}.sock`);
  const s = new ApiServer(h.stack, { path, gid: null, lowPortGid: null, ...API_DEFAULTS, ...opts }, { debug() {}, info() {}, warn() {} });
  s.start();
  return { server: s, path };
}

function hello(): Buffer {
  const b = Buffer.alloc(HELLO_LEN);
  b.writeUInt32LE(API_MAGIC, 0);
  b.writeUInt16LE(API_VERSION, 4);
  return b;
}

/** close(999) frames, ids first..first+count-1: each answered EBADF in a 22-byte reply. */
function closes(first: number, count: number): Buffer {
  const b = Buffer.alloc(16 * count);
  for (let i = 0; i < count; i++) {
    b.writeUInt32LE(16, i * 16);
    b.writeUInt32LE(first + i, i * 16 + 4);
    b.writeUInt16LE(SYS.close, i * 16 + 8);
    b.writeInt32LE(999, i * 16 + 12);
  }
  return b;
}
const REPLY = 22;

/** A client on a raw non-blocking descriptor: it reads only when told to. */
class RawClient {
  readonly fd: number;
  #pending: Buffer[] = [];
  got = Buffer.alloc(0);
  constructor(path: string) {
    this.fd = ux.unixConnect(path);
  }
  /** Write what the socket takes now; the rest waits for pump(). */
  send(b: Buffer): void {
    this.#pending.push(b);
    this.pump();
  }
  pump(): number {
    let sent = 0;
    while (this.#pending.length) {
      const b = this.#pending[0];
      const w = ux.write(this.fd, b, 0, b.length);
      if (w === -EAGAIN) break;
      assert.ok(w > 0, `write: ${w}`);
      sent += w;
      if (w < b.length) {
        this.#pending[0] = b.subarray(w);
        break;
      }
      this.#pending.shift();
    }
    return sent;
  }
  get unsent(): number {
    return this.#pending.reduce((a, b) => a + b.length, 0);
  }
  /** Read what is there now. */
  read(): number {
    const buf = Buffer.allocUnsafe(1 << 20);
    let total = 0;
    for (;;) {
      const r = ux.read(this.fd, buf, 0, buf.length);
      if (r <= 0) return total;
      this.got = Buffer.concat([this.got, buf.subarray(0, r)]);
      total += r;
    }
  }
  close(): void {
    ux.close(this.fd);
  }
}

const tick = () => new Promise((r) => setImmediate(r));

test('Ring: FIFO order through growth and wrap-around', () => {
  const r = new Ring<number>();
  let next = 0;
  let want = 0;
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 1000 * (round + 1); i++) r.push(next++);
    for (let i = 0; i < 700 * (round + 1); i++) assert.equal(r.shift(), want++);
  }
  assert.equal(r.length, next - want);
  assert.equal(r.at(0), want);
  assert.equal(r.last(), next - 1);
  while (r.length) assert.equal(r.shift(), want++);
  assert.equal(r.shift(), undefined);
});

test('WriteQueue: small frames coalesce into chunks, in order; truesize is their bytes and the chunks, not an object each', () => {
  const q = new WriteQueue();
  const frames: Buffer[] = [];
  for (let i = 0; i < 20_000; i++) {
    const f = Buffer.alloc(22, i & 0xff);
    f.writeUInt32LE(i, 0);
    frames.push(f);
    q.push(f, 0, -1);
  }
  const bytes = 22 * 20_000;
  assert.equal(q.bytes, bytes);
  assert.ok(q.truesize >= bytes && q.truesize < bytes + 2 * WQ_CHUNK, `truesize ${q.truesize} for ${bytes} bytes`);
  const out: Buffer[] = [];
  let writes = 0;
  while (q.next()) {
    assert.ok(q.wlen <= WQ_CHUNK);
    out.push(Buffer.from(q.wbuf.subarray(q.woff, q.woff + q.wlen)));
    q.consume(q.wlen);
    writes++;
  }
  assert.ok(writes <= Math.ceil(bytes / WQ_CHUNK) + 5, `${writes} writes for ${bytes} bytes`);
  assert.deepEqual(Buffer.concat(out), Buffer.concat(frames));
  assert.equal(q.bytes, 0);
  assert.equal(q.truesize, 0);
});

test('WriteQueue: a descriptor rides on its frame\'s first byte; a large frame is queued as it is; clear hands back descriptors', () => {
  const q = new WriteQueue();
  const a = Buffer.alloc(100, 1);
  const b = Buffer.alloc(50, 2);
  const c = Buffer.alloc(30, 3);
  const big = Buffer.alloc(WQ_COPY_MAX + 1, 4);
  q.push(a, 0, -1);
  q.push(b, 0, 7);
  q.push(c, 0, 8);
  q.push(big, 0, -1);
  // The first write stops before b's descriptor.
  assert.ok(q.next());
  assert.equal(q.wfd, -1);
  assert.equal(q.wlen, 100);
  q.consume(100);
  // b with its descriptor, up to c's; sent in two pieces, the descriptor goes with the first.
  assert.ok(q.next());
  assert.equal(q.wfd, 7);
  assert.equal(q.wlen, 50);
  q.consume(10);
  assert.ok(q.next());
  assert.equal(q.wfd, -1);
  assert.equal(q.wlen, 40);
  q.consume(40);
  assert.ok(q.next());
  assert.equal(q.wfd, 8);
  assert.equal(q.wlen, 30);
  q.consume(30);
  // The large frame: its own buffer, not a copy.
  assert.ok(q.next());
  assert.equal(q.wbuf.buffer, big.buffer);
  assert.equal(q.wlen, big.length);
  const closed: number[] = [];
  q.push(b, 0, 9);
  q.clear((fd) => closed.push(fd));
  assert.deepEqual(closed, [9]);
  assert.equal(q.bytes, 0);
  assert.equal(q.truesize, 0);
  // A chunk is handed back the moment it is sent or cleared: every view of it is empty after.
  const q2 = new WriteQueue();
  q2.push(a, 0, -1);
  assert.ok(q2.next());
  const chunk = q2.wbuf;
  assert.ok(chunk.length > 0 && chunk !== a);
  q2.clear(() => {});
  assert.equal(chunk.length, 0);
});

test('a frame longer than its call may be is refused from its header; a partial one is charged for what came, not what it announced', async () => {
  const { server: s, path } = server();
  try {
    assert.equal(apiCallMaxFrame(SYS.close), 256);
    assert.equal(apiCallMaxFrame(SYS.write), API_MAX_FRAME);
    // A write frame of the largest size, its header and 100 bytes so far.
    const w = new RawClient(path);
    const hdr = Buffer.alloc(HDR_LEN + 4 + 100);
    hdr.writeUInt32LE(API_MAX_FRAME, 0);
    hdr.writeUInt16LE(SYS.write, 8);
    w.send(Buffer.concat([hello(), hdr]));
    await until(() => s.mib.Clients === 1 && s.mem.allocated > 0, 'the partial write frame to be held');
    assert.ok(s.mem.allocated <= 8192, `a 116-byte partial frame holds ${s.mem.allocated} bytes`);
    // A close frame announcing 300 bytes: dropped before its body comes.
    const c = new RawClient(path);
    const bad = Buffer.alloc(HDR_LEN);
    bad.writeUInt32LE(300, 0);
    bad.writeUInt16LE(SYS.close, 8);
    c.send(Buffer.concat([hello(), bad]));
    await until(() => s.mib.OversizeFrames === 1 && s.mib.Clients === 1, 'the oversize frame to drop its client');
    assert.equal(s.mib.ClientsDropped, 1);
    // The rest of the write frame: whole, answered (EBADF: fd 0 is not open), the memory back.
    w.send(Buffer.alloc(API_MAX_FRAME - hdr.length));
    await until(() => (w.pump(), w.read(), w.got.length >= HELLO_REPLY_LEN + REPLY), 'the write frame\'s reply');
    assert.equal(w.got.readInt32LE(HELLO_REPLY_LEN + HDR_LEN), -9);
    await until(() => s.mem.allocated === 0, 'the input buffer to be released');
    w.close();
    c.close();
  } finally {
    s.stop();
  }
});

test('input in turns: 10 000 pipelined calls are answered in order, a budget per turn, the loop free in between', async () => {
  const { server: s, path } = server();
  try {
    const c = new RawClient(path);
    const N = 10_000;
    c.send(Buffer.concat([hello(), closes(1, N)]));
    let turns = 0;
    const want = HELLO_REPLY_LEN + N * REPLY;
    while (c.got.length < want && turns < 10_000) {
      c.pump();
      c.read();
      await tick(); // each of these is a turn of the loop the server must leave free
      turns++;
    }
    assert.equal(c.got.length, want);
    for (let i = 0; i < N; i++) assert.equal(c.got.readUInt32LE(HELLO_REPLY_LEN + i * REPLY + 4), i + 1, `reply ${i} in order`);
    assert.ok(s.mib.InputDeferred >= Math.floor(N / INPUT_BUDGET_FRAMES) - 1, `InputDeferred ${s.mib.InputDeferred}`);
    assert.ok(turns >= N / INPUT_BUDGET_FRAMES / 2, `${turns} turns for ${N} calls`);
    c.close();
  } finally {
    s.stop();
  }
});

test('input in turns, shared: three clients pipelining calls together get one turn\'s budget between them, not one each', async () => {
  const { server: s, path } = server();
  try {
    const N = 6_000;
    const cs = [new RawClient(path), new RawClient(path), new RawClient(path)];
    for (const c of cs) c.send(Buffer.concat([hello(), closes(1, N)]));
    // What the server dispatched in each turn the loop gave it (between two of the test's ticks).
    let dispatched = 0;
    const dispatch = s.dispatch.bind(s);
    s.dispatch = (...a: Parameters<typeof s.dispatch>) => {
      dispatched++;
      return dispatch(...a);
    };
    const perTurn: number[] = [];
    const want = HELLO_REPLY_LEN + N * REPLY;
    for (let turns = 0; cs.some((c) => c.got.length < want) && turns < 20_000; turns++) {
      for (const c of cs) {
        c.pump();
        c.read();
      }
      dispatched = 0;
      await tick();
      perTurn.push(dispatched);
    }
    for (const c of cs) assert.equal(c.got.length, want, 'every reply came');
    // Once all three wait their turn, a turn serves INPUT_BUDGET_TURN frames among them, where each
    // had its own INPUT_BUDGET_FRAMES (three times as much) before.
    const busiest = perTurn.slice(5).sort((a, b) => b - a)[0];
    assert.ok(busiest <= INPUT_BUDGET_TURN + INPUT_BUDGET_FRAMES, `a turn dispatched ${busiest} calls (${JSON.stringify(perTurn.slice(0, 40))})`);
    for (const c of cs) c.close();
  } finally {
    s.stop();
  }
});

test('a client that does not read stops being read at its cap; all its replies come when it reads; a hang-up while unread drops it', async () => {
  const cap = 256 * 1024;
  const { server: s, path } = server({ maxBuffered: cap });
  try {
    const c = new RawClient(path);
    c.send(hello());
    let id = 1;
    // Flood without reading until the daemon stops taking calls.
    for (let round = 0; round < 2000 && s.mib.ReadThrottled === 0; round++) {
      if (c.unsent < 1 << 20) {
        c.send(closes(id, 4096));
        id += 4096;
      }
      c.pump();
      await tick();
    }
    assert.equal(s.mib.ReadThrottled, 1);
    const [client] = s.clients;
    // Its replies stop at the cap (over it by the last chunk at most) and cost about their bytes.
    assert.ok(client.conn.truesize <= cap + WQ_CHUNK + 1024, `queued truesize ${client.conn.truesize}`);
    assert.ok(client.conn.truesize < client.conn.queued + WQ_CHUNK + 16384, `truesize ${client.conn.truesize} for ${client.conn.queued} bytes`);
    for (let i = 0; i < 20; i++) await tick();
    const held = s.mib.Calls;
    assert.ok(held > 0);
    // Read everything: every call sent gets its reply, in order.
    const sentCalls = id - 1;
    await until(() => (c.pump(), c.read(), c.got.length >= HELLO_REPLY_LEN + sentCalls * REPLY), 'every reply', 10_000);
    assert.equal(c.got.length, HELLO_REPLY_LEN + sentCalls * REPLY);
    assert.equal(c.got.readUInt32LE(c.got.length - REPLY + 4), sentCalls);
    await until(() => s.mem.allocated === 0, 'the queue to be released');
    // Throttled again, then it hangs up without reading: dropped at once, its memory back.
    for (let round = 0; round < 2000 && s.mib.ReadThrottled === 1; round++) {
      if (c.unsent < 1 << 20) {
        c.send(closes(id, 4096));
        id += 4096;
      }
      c.pump();
      await tick();
    }
    assert.equal(s.mib.ReadThrottled, 2);
    c.close();
    await until(() => s.mib.Clients === 0 && s.mem.allocated === 0, 'the daemon to drop the client that hung up');
  } finally {
    s.stop();
  }
});

test('memory pressure: past the total, a client that reads its replies is still served, one that does not is held at the floor', async () => {
  const total = 512 * 1024;
  const { server: s, path } = server({ maxBufferedTotal: total });
  try {
    // Two clients each hold most of a largest write frame: together past the total, for as long as they stay.
    const partials = [new RawClient(path), new RawClient(path)];
    for (const p of partials) {
      const f = Buffer.alloc(API_MAX_FRAME - 1);
      f.writeUInt32LE(API_MAX_FRAME, 0);
      f.writeUInt16LE(SYS.write, 8);
      p.send(Buffer.concat([hello(), f]));
    }
    await until(() => (partials.forEach((p) => p.pump()), s.mem.underPressure), 'memory pressure');
    assert.equal(s.mib.MemoryPressures, 1);
    // A client that reads its replies: 20 000 calls, all answered while the pressure lasts
    // (read a floor's worth at a time).
    const reader = new RawClient(path);
    const N = 20_000;
    reader.send(Buffer.concat([hello(), closes(1, N)]));
    await until(() => (reader.pump(), reader.read(), reader.got.length === HELLO_REPLY_LEN + N * REPLY), 'the reading client\'s replies', 10_000);
    assert.equal(reader.got.readUInt32LE(reader.got.length - REPLY + 4), N);
    assert.ok(s.mem.underPressure, 'still under pressure');
    // One that does not read: stopped once it holds the floor.
    const g = new RawClient(path);
    g.send(Buffer.concat([hello(), closes(1, N)]));
    const sentBefore = () => N * 16 - g.unsent;
    await until(() => (g.pump(), s.mib.PressureThrottled >= 1), 'the non-reading client to wait for memory');
    for (let i = 0; i < 20; i++) await tick();
    const gc = [...s.clients].find((c) => c.conn.queued > 0)!;
    assert.ok(gc.charge <= API_MEM_FLOOR + WQ_CHUNK, `held ${gc.charge}`);
    assert.ok(s.mem.allocated <= total + API_MEM_FLOOR + 2 * WQ_CHUNK, `${s.mem.allocated} held`);
    // The partial frames go: the pressure ends, the non-reading client is read again, and once it
    // reads, every reply comes and the memory is back.
    for (const p of partials) p.close();
    await until(() => !s.mem.underPressure, 'the pressure to end');
    await until(() => (g.pump(), g.read(), g.got.length === HELLO_REPLY_LEN + N * REPLY), 'every reply of the client that did not read', 10_000).catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(s.mib)}; got ${g.got.length}, sent ${sentBefore()}`);
    });
    await until(() => s.mem.allocated === 0, 'the memory to be released');
    reader.close();
    g.close();
  } finally {
    s.stop();
  }
});

test('memory pressure: clients each sending a largest frame at once all finish, one frame at a time past the total', async () => {
  const { server: s, path } = server({ maxBufferedTotal: 256 * 1024 });
  try {
    const N = 4;
    const clients = Array.from({ length: N }, () => new RawClient(path));
    for (const c of clients) {
      const f = Buffer.alloc(API_MAX_FRAME);
      f.writeUInt32LE(API_MAX_FRAME, 0);
      f.writeUInt32LE(7, 4);
      f.writeUInt16LE(SYS.write, 8);
      f.writeInt32LE(999, 12);
      c.send(Buffer.concat([hello(), f]));
    }
    let peak = 0;
    await until(() => {
      peak = Math.max(peak, s.mem.allocated);
      for (const c of clients) c.pump(), c.read();
      return clients.every((c) => c.got.length >= HELLO_REPLY_LEN + REPLY);
    }, 'every client\'s write to be answered', 10_000).catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(s.mib)}; got ${clients.map((c) => c.got.length)}, unsent ${clients.map((c) => c.unsent)}`);
    });
    for (const c of clients) assert.equal(c.got.readInt32LE(HELLO_REPLY_LEN + HDR_LEN), -9);
    assert.ok(s.mib.MemoryPressures >= 1, JSON.stringify(s.mib));
    // Past the total by one frame at most (and a floor each).
    assert.ok(peak <= 256 * 1024 + API_MAX_FRAME + N * API_MEM_FLOOR + 8192, `peak ${peak}`);
    await until(() => s.mem.allocated === 0, 'the memory to be released');
    for (const c of clients) c.close();
  } finally {
    s.stop();
  }
});

test('memory pressure: a client that holds the reserve and sends nothing more is dropped; the others finish', async () => {
  const { server: s, path } = server({ maxBufferedTotal: 64 * 1024 });
  try {
    const frame = () => {
      const f = Buffer.alloc(API_MAX_FRAME);
      f.writeUInt32LE(API_MAX_FRAME, 0);
      f.writeUInt32LE(7, 4);
      f.writeUInt16LE(SYS.write, 8);
      f.writeInt32LE(999, 12);
      return f;
    };
    // The stalled one: 100 KB of its frame, then nothing.
    const a = new RawClient(path);
    a.send(Buffer.concat([hello(), frame().subarray(0, 100_000)]));
    await until(() => (a.pump(), s.mem.underPressure && s.mem.reserveHolder !== null && s.mem.allocated >= 100_000), 'the stalled client to hold the reserve');
    // While nobody waits for the reserve, the stalled one keeps it.
    const t0 = Date.now();
    await until(() => Date.now() - t0 > RESERVE_IDLE_MS + 200, 'a while', RESERVE_IDLE_MS + 1000);
    assert.equal(s.mib.ClientsDropped, 0);
    const b = new RawClient(path);
    b.send(Buffer.concat([hello(), frame()]));
    await until(() => (b.pump(), b.read(), b.got.length >= HELLO_REPLY_LEN + REPLY), 'the other client\'s frame to be answered', 5000).catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(s.mib)}`);
    });
    assert.equal(b.got.readInt32LE(HELLO_REPLY_LEN + HDR_LEN), -9);
    assert.equal(s.mib.ReserveIdleDrops, 1, JSON.stringify(s.mib));
    assert.equal(s.mib.ClientsDropped, 1);
    // The stalled one's connection is closed: its read sees the end.
    await until(() => ux.read(a.fd, Buffer.alloc(64), 0, 64) === 0, 'the stalled client\'s connection to be closed');
    await until(() => s.mem.allocated === 0, 'the memory to be released');
    a.close();
    b.close();
  } finally {
    s.stop();
  }
});
