/**
 * The readiness of a stream socket's data descriptor where the bytes alone
 * cannot give it (docs/api.md "Readiness"): a listener's descriptor is
 * readable exactly while its accept queue holds a connection, and never
 * writable; a connecting socket's descriptor is not writable until the
 * handshake ends, either way. In-process: an ApiServer over a stack on the
 * in-memory link, the peer's segments written by hand, the client's end of
 * each pair probed with FIONREAD and non-blocking writes. Also the lifetime
 * of a socket closed with CLOSE_F_SHARED, or whose client is gone, while a
 * copy of its descriptor lives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Harness } from '../lib/harness.js';
import { code, inProcessApi, until } from '../lib/api_inproc.js';
import { PEER_IP, ipFrame, tcp, type Parsed } from '../lib/frames.js';
import type { ApiServer } from '../../src/api/server.js';
import { Client } from '../../src/client/index.js';
import { API_MAGIC, API_VERSION, CLOSE_F_NOREPLY, CLOSE_F_SHARED, FrameWriter, HDR_LEN, HELLO_CLOSE_NOREPLY, HELLO_LEN, HELLO_REPLY_LEN, HELLO_WANT_FDS, SYS } from '../../src/api/proto.js';
import { UnixConn, unixAddon } from '../../src/api/unix.js';
import { formatIpv4 } from '../../src/lib/addr.js';
import { AF_INET, SOCK_NONBLOCK, SOCK_STREAM, SOL_SOCKET } from '../../src/uapi.js';

const start = inProcessApi('tapstack-api-ready-');
const ux = unixAddon();
const EAGAIN = 11;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;
const FIN = 0x01;
const PEER = formatIpv4(PEER_IP);

function setup(): { h: Harness; server: ApiServer; c: Client } {
  const { h, server, path } = start();
  return { h, server, c: new Client({ path }) };
}

/** Bytes waiting to be read on the client's end. */
const inq = (fd: number) => ux.ioctlInt(fd, ux.FIONREAD);
/** A one-byte non-blocking write on the client's end: 1, or -EAGAIN while it is held unwritable. */
const probeWrite = (fd: number) => ux.write(fd, Buffer.from('x'), 0, 1);
const segs = (h: Harness): NonNullable<Parsed['tcp']>[] => h.sent().flatMap((p) => (p.tcp ? [p.tcp] : []));

test('listener: readable while a connection waits, drained by accept before its reply; never writable', async () => {
  const { h, server, c } = setup();
  try {
    await c.ready();
    const { fd, data } = await c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    assert.ok(data >= 0);
    await c.bind(fd, { family: AF_INET, addr: '0.0.0.0', port: 5000 });
    await c.listen(fd, 8);
    assert.equal(inq(data), 0, 'no connection yet: not readable');
    assert.equal(probeWrite(data), -EAGAIN, 'a listener is not writable');
    assert.equal(await code(c.accept(fd)), 'EAGAIN');

    // Two handshakes complete: two children wait; the descriptor holds one readiness byte, not one per child.
    for (const [sport, isn] of [[40001, 1000], [40002, 5000]]) {
      h.rx(ipFrame({ proto: 6, payload: tcp({ sport, dport: 5000, seq: isn, flags: SYN }) }));
      const synack = segs(h).find((s) => s.flags === (SYN | ACK) && s.dport === sport);
      assert.ok(synack, 'SYN-ACK sent');
      h.rx(ipFrame({ proto: 6, payload: tcp({ sport, dport: 5000, seq: isn + 1, ack: synack.seq + 1, flags: ACK }) }));
    }
    await until(() => inq(data) === 1, 'the listener to turn readable');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(inq(data), 1, 'level, not a count');

    const a1 = await c.accept(fd);
    assert.deepEqual(a1.peer, { family: AF_INET, addr: PEER, port: 40001 });
    assert.equal(inq(data), 1, 'one connection still waits');
    const a2 = await c.accept(fd);
    assert.equal(a2.peer.port, 40002);
    assert.equal(inq(data), 0, 'the queue emptied: not readable once accept has answered');
    assert.equal(await code(c.accept(fd)), 'EAGAIN');
    assert.equal(probeWrite(data), -EAGAIN, 'still not writable');
    // The accepted children are ordinary, writable descriptors.
    assert.equal(probeWrite(a1.data), 1);
    for (const d of [data, a1.data, a2.data]) ux.close(d);
  } finally {
    c.close();
    server.stop();
  }
});

test('connect: the descriptor turns writable when the handshake completes, not before', async () => {
  const { h, server, c } = setup();
  try {
    await c.ready();
    const { fd, data } = await c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    assert.equal(probeWrite(data), 1, 'an unconnected socket is writable (POLLOUT), as on Linux');
    // What an unconnected socket's descriptor took is not sent; a fresh socket for the real check.
    ux.close(data);
    await c.closeFd(fd);
    const s = await c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    assert.equal(await code(c.connect(s.fd, { family: AF_INET, addr: PEER, port: 80 })), 'EINPROGRESS');
    const syn = segs(h).find((x) => x.flags === SYN);
    assert.ok(syn, 'SYN sent');
    assert.equal(probeWrite(s.data), -EAGAIN, 'SYN_SENT: not writable');
    h.rx(ipFrame({ proto: 6, payload: tcp({ sport: 80, dport: syn.sport, seq: 7000, ack: syn.seq + 1, flags: SYN | ACK }) }));
    await until(() => probeWrite(s.data) === 1, 'the descriptor to turn writable');
    // The byte written goes out as the first data: none of the filler that held the descriptor leaks.
    await until(() => segs(h).some((x) => x.payload.length > 0 && (assert.equal(x.payload.toString(), 'x'), true)), 'the first data segment');
    assert.equal(await c.getsockoptInt(s.fd, SOL_SOCKET, 4 /* SO_ERROR */), 0);
    ux.close(s.data);
  } finally {
    c.close();
    server.stop();
  }
});

test('connect refused: the descriptor turns writable with EOF to read, SO_ERROR says ECONNREFUSED', async () => {
  const { h, server, c } = setup();
  try {
    await c.ready();
    const s = await c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    assert.equal(await code(c.connect(s.fd, { family: AF_INET, addr: PEER, port: 81 })), 'EINPROGRESS');
    const syn = segs(h).find((x) => x.flags === SYN);
    assert.ok(syn);
    assert.equal(probeWrite(s.data), -EAGAIN);
    h.rx(ipFrame({ proto: 6, payload: tcp({ sport: 81, dport: syn.sport, seq: 0, ack: syn.seq + 1, flags: RST | ACK }) }));
    const buf = Buffer.alloc(16);
    await until(() => ux.read(s.data, buf, 0, 16) === 0, 'EOF on the descriptor');
    assert.notEqual(probeWrite(s.data), -EAGAIN, 'no longer held: poll reports it (POLLOUT with the hang-up)');
    assert.equal(await c.getsockoptInt(s.fd, SOL_SOCKET, 4 /* SO_ERROR */), 111 /* ECONNREFUSED */);
    ux.close(s.data);
  } finally {
    c.close();
    server.stop();
  }
});

test('close with CLOSE_F_SHARED: the socket lives while a copy of its descriptor does, and is released at the last close', async () => {
  const { h, server, c } = setup();
  try {
    await c.ready();
    const s = await c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    assert.equal(await code(c.connect(s.fd, { family: AF_INET, addr: PEER, port: 80 })), 'EINPROGRESS');
    const syn = segs(h).find((x) => x.flags === SYN)!;
    h.rx(ipFrame({ proto: 6, payload: tcp({ sport: 80, dport: syn.sport, seq: 7000, ack: syn.seq + 1, flags: SYN | ACK }) }));
    await until(() => probeWrite(s.data) === 1, 'established');
    await until(() => segs(h).some((x) => x.payload.length === 1), 'the first byte sent');
    h.rx(ipFrame({ proto: 6, payload: tcp({ sport: 80, dport: syn.sport, seq: 7001, ack: syn.seq + 2, flags: ACK }) }));
    // Another process's copy (a forked child's), made here with dup.
    const copy = ux.dupFd(s.data);
    const r = await c.call(SYS.close, (w) => w.i32(s.fd).i32(CLOSE_F_SHARED));
    assert.equal(r.ret, 0);
    assert.equal(await code(c.getsockname(s.fd)), 'EBADF', 'the number is free in the table');
    ux.close(s.data);
    assert.equal(ux.write(copy, Buffer.from('late'), 0, 4), 4);
    await until(() => segs(h).some((x) => x.payload.toString() === 'late'), 'what the copy wrote, sent');
    assert.ok(!segs(h).some((x) => x.flags & FIN), 'no FIN while a copy is open');
    ux.close(copy);
    await until(() => segs(h).some((x) => (x.flags & FIN) !== 0), 'the FIN at the last close');
  } finally {
    c.close();
    server.stop();
  }
});

test('a client\'s disconnect keeps a connected socket whose descriptor lives on (a program it exec\'d into): data both ways, FIN at the last close; past maxSockets per uid one is closed as before', async () => {
  const { h, server, c } = setup();
  try {
    await c.ready();
    const copies: number[] = [];
    const syns: NonNullable<Parsed['tcp']>[] = [];
    for (const port of [80, 81]) {
      const s = await c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
      assert.equal(await code(c.connect(s.fd, { family: AF_INET, addr: PEER, port })), 'EINPROGRESS');
      const syn = segs(h).find((x) => x.flags === SYN && x.dport === port)!;
      h.rx(ipFrame({ proto: 6, payload: tcp({ sport: port, dport: syn.sport, seq: 7000, ack: syn.seq + 1, flags: SYN | ACK }) }));
      await until(() => probeWrite(s.data) === 1, 'established');
      await until(() => segs(h).some((x) => x.dport === port && x.payload.length === 1), 'the first byte sent');
      h.rx(ipFrame({ proto: 6, payload: tcp({ sport: port, dport: syn.sport, seq: 7001, ack: syn.seq + 2, flags: ACK }) }));
      // The descriptor the exec'd program holds: a copy, the client's own closed.
      copies.push(ux.dupFd(s.data));
      ux.close(s.data);
      syns.push(syn);
    }
    server.opts.maxSockets = 1;
    c.close();
    await until(() => server.mib.Kept === 1, 'one socket kept past the disconnect');
    await until(() => segs(h).some((x) => x.dport === 81 && (x.flags & (FIN | RST)) !== 0), 'the other, past the cap, closed at the disconnect');
    assert.ok(!segs(h).some((x) => x.dport === 80 && (x.flags & (FIN | RST)) !== 0), 'the kept one is not');
    // The peer's data reaches the copy (the socket's wake-up runs its pump without a client)...
    h.rx(ipFrame({ proto: 6, payload: tcp({ sport: 80, dport: syns[0].sport, seq: 7001, ack: syns[0].seq + 2, flags: ACK, payload: Buffer.from('hello') }) }));
    const buf = Buffer.alloc(16);
    await until(() => inq(copies[0]) === 5, 'the peer\'s bytes in the copy');
    assert.equal(ux.read(copies[0], buf, 0, 16), 5);
    assert.equal(buf.subarray(0, 5).toString(), 'hello');
    // ...and what the copy writes is sent; its close is the last: FIN.
    assert.equal(ux.write(copies[0], Buffer.from('late'), 0, 4), 4);
    await until(() => segs(h).some((x) => x.dport === 80 && x.payload.toString() === 'late'), 'what the copy wrote, sent');
    ux.close(copies[0]);
    await until(() => segs(h).some((x) => x.dport === 80 && (x.flags & FIN) !== 0), 'the FIN at the last close');
    ux.close(copies[1]);
  } finally {
    server.stop();
  }
});

test('a socket closed (or its client gone) with bytes TCP could not take yet lingers until they are sent, then FIN, as close() sends the send queue (Api.Lingered)', async () => {
  const { h, server, c } = setup();
  try {
    await c.ready();
    const s = await c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    assert.equal(await code(c.connect(s.fd, { family: AF_INET, addr: PEER, port: 82 })), 'EINPROGRESS');
    const syn = segs(h).find((x) => x.flags === SYN && x.dport === 82)!;
    // A peer window far below what the pair holds: most of the client's bytes wait in the pair.
    h.rx(ipFrame({ proto: 6, payload: tcp({ sport: 82, dport: syn.sport, seq: 7000, ack: syn.seq + 1, flags: SYN | ACK, win: 8192 }) }));
    await until(() => probeWrite(s.data) === 1, 'established');
    let written = 1;
    const chunk = Buffer.alloc(4096, 0x61);
    for (let i = 0; i < 256; i++) {
      const n = ux.write(s.data, chunk, 0, chunk.length);
      if (n <= 0) break;
      written += n;
    }
    assert.ok(written > 64 * 1024, `the pair took ${written} bytes`);
    // The client goes: its descriptor closed, then its API connection.
    ux.close(s.data);
    c.close();
    await until(() => server.mib.Lingered === 1, 'the socket lingers');
    // The peer takes everything, a window at a time; bounded in rounds. (segs() hands out what was sent since its last call.)
    const seen: NonNullable<Parsed['tcp']>[] = [];
    const sent = () => {
      seen.push(...segs(h).filter((x) => x.dport === 82 && x.sport === syn.sport));
      return seen;
    };
    const end = () => Math.max(0, ...sent().map((x) => x.seq + x.payload.length - syn.seq - 1));
    for (let round = 0; round < 400 && !sent().some((x) => (x.flags & FIN) !== 0); round++) {
      const upto = end();
      h.rx(ipFrame({ proto: 6, payload: tcp({ sport: 82, dport: syn.sport, seq: 7001, ack: syn.seq + 1 + upto, flags: ACK, win: 8192 }) }));
      await until(() => end() > upto || sent().some((x) => (x.flags & FIN) !== 0), 'more sent after an ACK');
    }
    const fin = sent().find((x) => (x.flags & FIN) !== 0);
    assert.ok(fin, 'FIN after the data');
    assert.equal(fin.seq + fin.payload.length - syn.seq - 1, written, 'every byte the client wrote was sent, then FIN');
    assert.ok(!sent().some((x) => (x.flags & RST) !== 0), 'no reset');
  } finally {
    server.stop();
  }
});

/** Complete `n` handshakes on port 5000 from source ports 41000.. (the peer's side written by hand). */
function handshakes(h: Harness, n: number, base = 41000): void {
  for (let i = 0; i < n; i++) {
    const sport = base + i;
    const isn = 10000 * (i + 1);
    h.rx(ipFrame({ proto: 6, payload: tcp({ sport, dport: 5000, seq: isn, flags: SYN }) }));
    const synack = segs(h).find((s) => s.flags === (SYN | ACK) && s.dport === sport);
    assert.ok(synack, 'SYN-ACK sent');
    h.rx(ipFrame({ proto: 6, payload: tcp({ sport, dport: 5000, seq: isn + 1, ack: synack.seq + 1, flags: ACK }) }));
  }
}

test('ts_accept_batch: every waiting connection in one reply, each with its own descriptor and peer; counted', async () => {
  const { h, server, c } = setup();
  try {
    await c.ready();
    const { fd, data } = await c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    await c.bind(fd, { family: AF_INET, addr: '0.0.0.0', port: 5000 });
    await c.listen(fd, 32);
    assert.equal(await code(c.acceptBatch(fd, 16)), 'EAGAIN', 'nothing waits: EAGAIN, as accept4');
    assert.equal(await code(c.acceptBatch(fd, 0)), 'EINVAL');
    assert.equal(await code(c.acceptBatch(fd, 17)), 'EINVAL');
    assert.equal(await code(c.acceptBatch(fd, 4, 1)), 'EINVAL', 'accept4 flags only');

    handshakes(h, 5);
    await until(() => inq(data) === 1, 'the listener to turn readable');
    const got = await c.acceptBatch(fd, 3, SOCK_NONBLOCK);
    assert.deepEqual(got.map((g) => g.peer.port), [41000, 41001, 41002], 'in accept-queue order, at most max');
    assert.equal(new Set(got.map((g) => g.fd)).size, 3);
    for (const g of got) assert.ok(g.data >= 0 && probeWrite(g.data) === 1, 'each a live data descriptor');
    assert.equal(inq(data), 1, 'two still wait: readable');
    const rest = await c.acceptBatch(fd, 16);
    assert.deepEqual(rest.map((g) => g.peer.port), [41003, 41004], 'what waits, not max');
    assert.equal(inq(data), 0, 'emptied before the reply: not readable');
    // The accepted sockets are in the table: their calls work.
    assert.equal((await c.getpeername(rest[1].fd)).port, 41004);
    const mib = server.mib;
    assert.equal(mib.AcceptBatched, 2);
    assert.equal(mib.AcceptBatchedConns, 5);
    for (const g of [...got, ...rest]) ux.close(g.data);
    ux.close(data);
  } finally {
    c.close();
    server.stop();
  }
});

test('ts_accept_batch with ACCEPT_BATCH_F_QUEUE: the listener stays readable, one byte per connection past the first, until the client reads them back', async () => {
  const { h, server, c } = setup();
  try {
    await c.ready();
    const { fd, data } = await c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    await c.bind(fd, { family: AF_INET, addr: '0.0.0.0', port: 5000 });
    await c.listen(fd, 32);
    handshakes(h, 4);
    await until(() => inq(data) === 1, 'the listener to turn readable');
    const got = await c.acceptBatch(fd, 16, 0, true);
    assert.equal(got.length, 4);
    assert.equal(inq(data), 3, 'the accept queue is empty; the three queued in the client keep it readable');
    const one = Buffer.alloc(1);
    assert.equal(ux.read(data, one, 0, 1), 1, 'the client hands one on');
    assert.equal(inq(data), 2);
    // New connections while the client still holds two: the readiness byte comes beside theirs, and goes alone.
    handshakes(h, 2, 42000);
    await until(() => inq(data) === 3, 'the readiness byte beside the queued ones');
    const more = await c.acceptBatch(fd, 1, 0, true);
    assert.equal(more.length, 1);
    assert.equal(inq(data), 3, 'one still waits in the stack');
    const last = await c.acceptBatch(fd, 16, 0, true);
    assert.equal(last.length, 1);
    assert.equal(inq(data), 2, 'the stack is empty: only the two the client holds ones keep it readable');
    for (let left = 2; left > 0; left--) assert.equal(ux.read(data, one, 0, 1), 1);
    assert.equal(inq(data), 0, 'nothing left anywhere: not readable');
    for (const g of [...got, ...more, ...last]) ux.close(g.data);
    ux.close(data);
  } finally {
    c.close();
    server.stop();
  }
});

test('ts_inherit: only a process that holds the listener\'s descriptor takes it; then the holders share one accept queue and one readiness', async () => {
  const { h, server, path } = start();
  const c = new Client({ path });
  try {
    await c.ready();
    const { fd, data } = await c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    await c.bind(fd, { family: AF_INET, addr: '0.0.0.0', port: 5000 });
    await c.listen(fd, 32);
    const other = await c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    const inherit = (cl: Client, pid: number, f: number, dfd: number) => cl.call(SYS.ts_inherit, (w) => w.u32(pid).i32(f).i32(dfd)).then((r) => r.ret);
    const another = new Client({ path });
    await another.ready();
    // Without the listener's descriptor (another socket's, or none at that number): EPERM.
    assert.equal(await inherit(another, process.pid, fd, other.data), -1 /* EPERM */);
    assert.equal(await inherit(another, process.pid, fd, 1000), -1);
    assert.equal(server.mib.InheritRefused, 2);
    // A holder or a number that is not there: EBADF; a socket that is not listening: EOPNOTSUPP.
    assert.equal(await inherit(another, process.pid, fd + 100, data), -9 /* EBADF */);
    assert.equal(await inherit(another, 1, fd, data), -9);
    assert.equal(await inherit(another, process.pid, other.fd, other.data), -95 /* EOPNOTSUPP */);
    another.close();

    // A child process given the listener's descriptor (as fork would) takes it and accepts the connection waiting there.
    handshakes(h, 2);
    await until(() => inq(data) === 1, 'the listener to turn readable');
    const script = `
      const { Client } = await import(${JSON.stringify(new URL('../../src/client/index.js', import.meta.url).href)});
      const c = new Client({ path: ${JSON.stringify(path)} });
      await c.ready();
      const r = await c.call(${SYS.ts_inherit}, (w) => w.u32(${process.pid}).i32(${fd}).i32(3));
      const got = await c.acceptBatch(r.ret, 1);
      console.log(JSON.stringify({ ret: r.ret, port: got[0].peer.port }));
      c.close();`;
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit', data], timeout: 10_000 });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b));
    assert.equal(await new Promise((res) => child.on('exit', res)), 0);
    const res = JSON.parse(out);
    assert.ok(res.ret >= 3, 'a descriptor in the child\'s own table');
    assert.equal(res.port, 41000, 'the child accepted the first connection');
    assert.equal(server.mib.Inherited, 1);
    // The child is gone (its client closed): the parent still holds the listener, and the second connection.
    assert.equal(inq(data), 1, 'still readable: one connection is left');
    const a = await c.accept(fd);
    assert.equal(a.peer.port, 41001);
    assert.equal(inq(data), 0);
    handshakes(h, 1, 43000);
    await until(() => inq(data) === 1, 'the parent\'s listener still live after the child left');
    // The other way round: the maker goes, a holder that took the listener keeps it (and its queue).
    const heir = new Client({ path });
    await heir.ready();
    const hfd = await inherit(heir, process.pid, fd, data);
    assert.ok(hfd >= 3);
    const clients = server.clients.size;
    c.close();
    await until(() => server.clients.size === clients - 1, 'the maker to be gone');
    const kept = await heir.acceptBatch(hfd, 16);
    assert.deepEqual(kept.map((k) => k.peer.port), [43000], 'the connection queued before the maker left');
    handshakes(h, 1, 44000);
    await until(() => inq(data) === 1, 'the heir\'s listener live');
    assert.equal((await heir.accept(hfd)).peer.port, 44000);
    heir.close();
    for (const d of [data, a.data, other.data, ...kept.map((k) => k.data)]) ux.close(d);
  } finally {
    c.close();
    server.stop();
  }
});

test('close with CLOSE_F_NOREPLY: no reply at all (not even EBADF), the socket released, the next call answered as its own; the hello says the daemon knows it', async () => {
  const { server, path } = start();
  const conn = new UnixConn(ux.unixConnect(path));
  let got = Buffer.alloc(0);
  const fds: number[] = [];
  conn.onData = (b, f) => {
    got = Buffer.concat([got, b]);
    fds.push(...f);
  };
  try {
    const hello = Buffer.alloc(HELLO_LEN);
    hello.writeUInt32LE(API_MAGIC, 0);
    hello.writeUInt16LE(API_VERSION, 4);
    hello.writeUInt16LE(HELLO_WANT_FDS, 6);
    conn.write(hello);
    await until(() => got.length >= HELLO_REPLY_LEN, 'the hello reply');
    assert.equal(got.readUInt16LE(6), HELLO_WANT_FDS | HELLO_CLOSE_NOREPLY);
    got = got.subarray(HELLO_REPLY_LEN);
    /** Whole reply frames so far: [id, ret]. */
    const frames = () => {
      const out: [number, number][] = [];
      for (let off = 0; off + HDR_LEN + 4 <= got.length; off += got.readUInt32LE(off)) out.push([got.readUInt32LE(off + 4), got.readInt32LE(off + HDR_LEN)]);
      return out;
    };
    conn.write(new FrameWriter(1, SYS.socket).i32(AF_INET).i32(SOCK_STREAM | SOCK_NONBLOCK).i32(0).finish());
    await until(() => frames().length === 1, 'the socket reply');
    const fd = frames()[0][1];
    conn.write(new FrameWriter(2, SYS.bind).i32(fd).sockaddr({ family: AF_INET, addr: 0, addr6: null, port: 5001 }).finish());
    conn.write(new FrameWriter(3, SYS.close).i32(fd).i32(CLOSE_F_NOREPLY | CLOSE_F_SHARED).finish());
    conn.write(new FrameWriter(4, SYS.close).i32(fd).i32(CLOSE_F_NOREPLY).finish()); // not open now: EBADF, unanswered too
    conn.write(new FrameWriter(5, SYS.close).i32(fd).finish()); // without the flag: answered, EBADF
    conn.write(new FrameWriter(6, SYS.socket).i32(AF_INET).i32(SOCK_STREAM | SOCK_NONBLOCK).i32(0).finish());
    await until(() => frames().length === 4, 'the replies to 2, 5 and 6');
    // Replies to calls that do not block come in order: once 7's is in, any for 3 or 4 would be too.
    conn.write(new FrameWriter(7, SYS.close).i32(fd).finish());
    await until(() => frames().length === 5, 'the reply to 7');
    assert.deepEqual(frames().slice(0, 4), [[1, fd], [2, 0], [5, -9], [6, fd]], 'nothing for 3 and 4; the number was free again for 6');
    for (const d of fds) ux.close(d);
  } finally {
    conn.close();
    server.stop();
  }
});
