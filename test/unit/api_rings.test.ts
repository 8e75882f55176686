/**
 * The data rings (native/ring.h, docs/api.md "Data rings"): the ring itself
 * (wraparound, full and empty, FIN and CLOSED, the wake-up suppression that
 * rings a doorbell only for a side that said it sleeps, and the checks of
 * indices the other side wrote), then the client library's net-style
 * sockets over rings through an in-process API server (data both ways
 * checksummed, EOF, back-pressure), the socketpair fallback, and a client
 * that corrupts its ring: its socket ends with EFAULT, counted, and the
 * daemon and the client's other socket go on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { inProcessApi, until } from '../lib/api_inproc.js';
import { unixAddon, type RingHandle } from '../../src/api/unix.js';
import { Client, connect, createServer, type StackSocket } from '../../src/client/index.js';
import { AF_INET, SOCK_STREAM } from '../../src/uapi.js';
import { seededBytes } from '../lib/seeded.js';

const ux = unixAddon();
const EAGAIN = -11;
const EPIPE = -32;
const EFAULT = -14;
const K = 4096;
/** Byte offsets in the mapping (native/ring.h). */
const UP = 64;
const DOWN = 320;
const PROD = 0;
const CONS = 64;
const CONS_FLAGS = 68;

/** A ring of `up`/`down` bytes: the daemon's side, the application's side on the same memfd, and a doorbell pair. */
function pair(up = K, down = K): { d: RingHandle; a: RingHandle; bells: Int32Array; map: Buffer; close: () => void } {
  const fdOut = new Int32Array(1);
  const d = ux.ringCreate(up, down, fdOut);
  assert.ok(d, `ringCreate: ${fdOut[0]}`);
  const a = ux.ringAttach(fdOut[0], 0);
  assert.notEqual(typeof a, 'number', 'ringAttach');
  ux.close(fdOut[0]);
  const bells = new Int32Array(2);
  assert.equal(ux.socketPair(4096, 4096, bells), 0);
  ux.ringBell(d, bells[0]);
  ux.ringBell(a as RingHandle, bells[1]);
  const map = ux.ringView(d, 2);
  return {
    d,
    a: a as RingHandle,
    bells,
    map,
    close: () => {
      ux.ringClose(d, map);
      ux.ringClose(a as RingHandle);
      ux.close(bells[0]);
      ux.close(bells[1]);
    },
  };
}

/** Doorbell bytes waiting at `fd` (read and counted). */
function bellsAt(fd: number): number {
  const b = Buffer.alloc(64);
  let n = 0;
  for (;;) {
    const r = ux.read(fd, b, 0, 64);
    if (r <= 0) return n;
    n += r;
  }
}

test('ring: bytes in order across the wrap, full and empty, FIN after the data', () => {
  const r = pair();
  try {
    const src = Buffer.alloc(3 * K + 123);
    for (let i = 0; i < src.length; i++) src[i] = (i * 7 + 3) & 0xff;
    const got: Buffer[] = [];
    const buf = Buffer.alloc(1000);
    let off = 0;
    // Uneven writes and reads: every position of the wrap is crossed.
    while (off < src.length) {
      const n = ux.ringWrite(r.a, src, off, Math.min(777, src.length - off));
      assert.ok(n >= 0);
      off += n;
      const m = ux.ringRead(r.d, buf, 0, 613);
      if (m > 0) got.push(Buffer.from(buf.subarray(0, m)));
      else assert.equal(m, EAGAIN);
    }
    for (let m = ux.ringRead(r.d, buf, 0, 1000); m > 0; m = ux.ringRead(r.d, buf, 0, 1000)) got.push(Buffer.from(buf.subarray(0, m)));
    assert.deepEqual(Buffer.concat(got), src);

    // Full: a 4 KiB ring takes 4096 bytes and no more; one byte read makes room for one.
    assert.equal(ux.ringWrite(r.a, Buffer.alloc(5000, 1), 0, 5000), K);
    assert.equal(ux.ringWrite(r.a, Buffer.alloc(1), 0, 1), 0);
    assert.equal(ux.ringQueued(r.a, 1), K, 'the producer sees its bytes unconsumed');
    assert.equal(ux.ringQueued(r.d, 0), K);
    assert.equal(ux.ringRead(r.d, buf, 0, 1), 1);
    assert.equal(ux.ringWrite(r.a, Buffer.alloc(2), 0, 2), 1);
    while (ux.ringRead(r.d, buf, 0, 1000) > 0);
    assert.equal(ux.ringRead(r.d, buf, 0, 1000), EAGAIN, 'empty');

    // FIN: read after the data; the end of the stream is 0, and writing after it is EPIPE.
    assert.equal(ux.ringWrite(r.a, Buffer.from('last'), 0, 4), 4);
    ux.ringFin(r.a);
    assert.equal(ux.ringWrite(r.a, Buffer.from('x'), 0, 1), EPIPE);
    assert.equal(ux.ringRead(r.d, buf, 0, 1000), 4);
    assert.equal(buf.subarray(0, 4).toString(), 'last');
    assert.equal(ux.ringRead(r.d, buf, 0, 1000), 0, 'EOF');
    // CLOSED: the daemon reads no more; the application's writes fail with EPIPE.
    assert.equal(ux.ringWrite(r.d, Buffer.from('down'), 0, 4), 4);
    ux.ringCloseIn(r.d);
    assert.equal(ux.ringPeer(r.a) & 2, 2);
  } finally {
    r.close();
  }
});

test('ring: a doorbell only for a side that said it sleeps, once per sleep; none while it is busy', () => {
  const r = pair();
  try {
    const buf = Buffer.alloc(K);
    // The daemon is not asleep: writes ring nothing.
    for (let i = 0; i < 10; i++) assert.equal(ux.ringWrite(r.a, Buffer.from('a'), 0, 1), 1);
    assert.equal(bellsAt(r.bells[0]), 0, 'no wake-up for a consumer that did not ask');
    // It drains and goes to sleep: ringWait finds the ring empty and says sleep.
    assert.equal(ux.ringRead(r.d, buf, 0, K), 10);
    assert.equal(ux.ringWait(r.d, 0), 0);
    assert.equal(r.map.readUInt32LE(UP + CONS_FLAGS) & 1, 1, 'NEED_WAKEUP set');
    // The first write rings; more writes before it wakes do not ring again.
    for (let i = 0; i < 5; i++) ux.ringWrite(r.a, Buffer.from('b'), 0, 1);
    assert.equal(bellsAt(r.bells[0]), 1, 'one bell for one sleep');
    // Awake (it reads), NEED_WAKEUP is cleared: nothing rings.
    assert.equal(ux.ringRead(r.d, buf, 0, K), 5);
    assert.equal(r.map.readUInt32LE(UP + CONS_FLAGS) & 1, 0);
    ux.ringWrite(r.a, Buffer.from('c'), 0, 1);
    assert.equal(bellsAt(r.bells[0]), 0);
    // A sleeper that finds bytes as it goes to sleep does not sleep.
    assert.equal(ux.ringWait(r.d, 0), 1, 'data came: do not sleep');
    assert.equal(r.map.readUInt32LE(UP + CONS_FLAGS) & 1, 0);
    ux.ringRead(r.d, buf, 0, K);

    // Once per sleep, not once per index: a consumer can sleep again at the index the producer last
    // rang for (it consumed between the producer's store and its look at the flags), and must be
    // rung again; so each sleep is a new flags word (its upper bits count sleeps).
    ux.ringRead(r.d, buf, 0, K);
    assert.equal(ux.ringWait(r.d, 0), 0);
    const sleep1 = r.map.readUInt32LE(UP + CONS_FLAGS);
    ux.ringWrite(r.a, Buffer.from('d'), 0, 1);
    assert.equal(bellsAt(r.bells[0]), 1);
    assert.equal(ux.ringRead(r.d, buf, 0, K), 1);
    assert.equal(ux.ringWait(r.d, 0), 0);
    // A producer that rang for the last sleep tells this one from it by the word, whatever the index.
    assert.notEqual(r.map.readUInt32LE(UP + CONS_FLAGS), sleep1, 'a new sleep is a new flags word');
    ux.ringWrite(r.a, Buffer.from('e'), 0, 1);
    assert.equal(bellsAt(r.bells[0]), 1, 'rung for the new sleep');
    ux.ringRead(r.d, buf, 0, K);

    // Room: a producer that waits for room (NEED_SPACE) is rung once the consumer has freed half the ring.
    assert.equal(ux.ringWrite(r.a, Buffer.alloc(K), 0, K), K);
    assert.equal(ux.ringWait(r.a, 1), 0, 'full: sleep');
    assert.equal(bellsAt(r.bells[1]), 0);
    assert.equal(ux.ringRead(r.d, buf, 0, 100), 100);
    assert.equal(bellsAt(r.bells[1]), 0, 'a little room: not yet, no wake-up per read');
    assert.equal(ux.ringWait(r.a, 1), 0, 'and the producer still sleeps with a little room');
    assert.equal(ux.ringRead(r.d, buf, 0, K / 2 - 100), K / 2 - 100);
    assert.equal(bellsAt(r.bells[1]), 1, 'half free: the producer is rung');
    assert.equal(ux.ringRead(r.d, buf, 0, 100), 100);
    assert.equal(bellsAt(r.bells[1]), 0, 'once');
    assert.equal(ux.ringWait(r.a, 1), 1, 'half free: no sleep');
    // FIN rings whatever the consumer said: it must learn the end.
    ux.ringRead(r.d, buf, 0, K);
    ux.ringFin(r.a);
    assert.equal(bellsAt(r.bells[0]), 1);
  } finally {
    r.close();
  }
});

test('ring, RING_LEVEL: a byte while the down ring holds data, once per sleep the consumer announces; rung again on asking; FIN rings; the unread bytes and the bells counted for ts_ring_off', () => {
  const r = pair();
  try {
    const at = r.bells[1]; // the application's end
    // Not a wait: writes the consumer's NEED_WAKEUP flag as its nth announced sleep would.
    const announceSleep = (n: number) => r.map.writeUInt32LE((n << 8) | 1, DOWN + CONS_FLAGS);
    ux.ringLevel(r.d);
    assert.equal(r.map.readUInt32LE(DOWN + CONS_FLAGS), 1, 'made with the consumer asleep');
    ux.ringKick(r.d);
    assert.equal(bellsAt(at), 0, 'nothing to read: no byte');
    const msg = Buffer.from('hello');
    assert.equal(ux.ringWrite(r.d, msg, 0, msg.length), msg.length);
    assert.equal(bellsAt(at), 1, 'the first data rings');
    assert.equal(ux.ringWrite(r.d, msg, 0, msg.length), msg.length);
    ux.ringKick(r.d);
    assert.equal(bellsAt(at), 0, 'one byte per sleep: the consumer has not taken it and slept again');
    // The consumer took the byte (above) and announces its next sleep, but data waits: the next run rings.
    announceSleep(1);
    ux.ringKick(r.d);
    assert.equal(bellsAt(at), 1, 'asked again with data waiting (ts_ring_wake): rung');
    ux.ringKick(r.d);
    assert.equal(bellsAt(at), 0, 'once');
    // The consumer reads all of it (its own index) and sleeps: an empty ring rings nothing until data.
    r.map.writeUInt32LE(10, DOWN + CONS);
    announceSleep(2);
    ux.ringKick(r.d);
    assert.equal(bellsAt(at), 0, 'empty: no byte');
    const out = new Int32Array(1);
    assert.equal(ux.ringUnsent(r.d, out), 0);
    assert.equal(ux.ringWrite(r.d, msg, 0, 3), 3);
    assert.equal(bellsAt(at), 1, 'data after the sleep: rung');
    assert.equal(ux.ringUnsent(r.d, out), 3, 'what ts_ring_off moves back: 3 bytes');
    assert.equal(out[0], 10, 'from the consumer index on');
    ux.ringFin(r.d);
    assert.equal(bellsAt(at), 1, 'FIN rings');
    assert.equal(ux.ringBells(r.d), 4, 'every byte sent down counted (the client takes the ones it has not out of its end)');
  } finally {
    r.close();
  }
});

test('ring: indices the other side wrote are checked; a bad one is EFAULT for good, nothing read or written', () => {
  // Producer's index too far ahead of what the daemon consumed.
  let r = pair();
  try {
    r.map.writeUInt32LE(K + 1, UP + PROD);
    assert.equal(ux.ringRead(r.d, Buffer.alloc(16), 0, 16), EFAULT);
    r.map.writeUInt32LE(0, UP + PROD);
    assert.equal(ux.ringRead(r.d, Buffer.alloc(16), 0, 16), EFAULT, 'a faulted ring stays faulted');
    assert.equal(ux.ringQueued(r.d, 0), EFAULT);
    assert.equal(ux.ringWait(r.d, 0), EFAULT);
  } finally {
    r.close();
  }
  // Consumer's index ahead of what the daemon produced (would make room that is not there).
  r = pair();
  try {
    assert.equal(ux.ringWrite(r.d, Buffer.alloc(100), 0, 100), 100);
    r.map.writeUInt32LE(101, DOWN + CONS);
    assert.equal(ux.ringWrite(r.d, Buffer.alloc(100), 0, 100), EFAULT);
  } finally {
    r.close();
  }
  // Backwards past the daemon's own index (a wrapped u32: "4 GiB" of data).
  r = pair();
  try {
    r.map.writeUInt32LE(0xfffffff0, UP + PROD);
    assert.equal(ux.ringQueued(r.d, 0), EFAULT);
  } finally {
    r.close();
  }
  // A header that is not a ring's is refused at attach.
  const fdOut = new Int32Array(1);
  const d = ux.ringCreate(K, K, fdOut)!;
  const m = ux.ringView(d, 2);
  m.writeUInt32LE(3 * K, 8); // up_size not a power of two
  assert.equal(ux.ringAttach(fdOut[0], 0), -71 /* EPROTO */);
  ux.ringClose(d, m);
  assert.equal(m.length, 0, 'the view is detached at close: nothing can touch the unmapped memory');
  assert.equal(ux.ringRead(d, Buffer.alloc(1), 0, 1), -9 /* EBADF */);
  ux.close(fdOut[0]);
  // Odd or absurd sizes are refused at creation.
  assert.equal(ux.ringCreate(3000, K, fdOut), null);
  assert.equal(fdOut[0], -22);
});

const start = inProcessApi('tapstack-api-rings-');

/** The in-process server's clock moves with real time, so the stack's timers (delayed ACKs) fire. */
function ticking(h: { time: { advance(ms: number): void } }): () => void {
  const t = setInterval(() => h.time.advance(5), 5);
  return () => clearInterval(t);
}

function digest(b: Buffer[]): string {
  const h = createHash('sha256');
  for (const x of b) h.update(x);
  return h.digest('hex');
}

/** An echo server and a client on the stack's own address (loopback), both through the client library. */
async function echoRun(path: string, rings: boolean, bytes: number): Promise<{ sent: string; back: string; srv: StackSocket }> {
  let srvSock!: StackSocket;
  const srv = createServer({ api: path, rings }, (s) => {
    srvSock = s;
    s.pipe(s);
  });
  await new Promise<void>((res, rej) => {
    srv.once('error', rej);
    srv.listen(5000, '10.0.0.2', () => res());
  });
  const data = seededBytes(bytes, 7);
  const c = connect({ host: '10.0.0.2', port: 5000, api: path, rings });
  const back: Buffer[] = [];
  await new Promise<void>((res, rej) => {
    c.on('error', rej);
    c.on('data', (d: Buffer) => back.push(d));
    c.on('end', () => res());
    c.on('connect', () => {
      // Writes in pieces, honouring back-pressure, then FIN.
      let off = 0;
      const more = (): void => {
        while (off < data.length) {
          const n = Math.min(100_000, data.length - off);
          const ok = c.write(data.subarray(off, off + n));
          off += n;
          if (!ok) return void c.once('drain', more);
        }
        c.end();
      };
      more();
    });
  });
  await new Promise<void>((r) => srv.close(() => r()));
  c.destroy();
  return { sent: digest([data]), back: digest(back), srv: srvSock };
}

test('client library over rings: 4 MiB echoed through the stack both ways, checksummed; EOF; the sockets were ringed', async () => {
  const { h, server, path } = start();
  const stop = ticking(h);
  try {
    const r = await echoRun(path, true, 4 * 1024 * 1024);
    assert.equal(r.back, r.sent, 'every byte back, in order');
    assert.ok(server.mib.Rings >= 2, `rings given: ${server.mib.Rings}`);
    assert.equal(server.mib.RingFaults, 0);
    assert.ok(r.srv.constructor.name === 'RingSocket', 'the accepted socket moved its data through rings');
  } finally {
    stop();
    server.stop();
  }
});

test('client library with rings off (TAPSTACK_RINGS=0 or rings: false): the socketpair path, same bytes', async () => {
  const { h, server, path } = start();
  const stop = ticking(h);
  try {
    const r = await echoRun(path, false, 1024 * 1024);
    assert.equal(r.back, r.sent);
    assert.equal(server.mib.Rings, 0, 'no ring made');
    assert.notEqual(r.srv.constructor.name, 'RingSocket');
    // A daemon that does not offer rings: a client that asks gets the pair.
    server.rings = false;
    const c = new Client({ path, rings: true });
    await c.ready();
    assert.equal(c.ringsOn, false);
    const s = await c.socket(AF_INET, SOCK_STREAM);
    assert.ok(s.data >= 0);
    assert.equal(s.ring, -1);
    ux.close(s.data);
    c.close();
  } finally {
    stop();
    server.stop();
  }
});

test('back-pressure through rings: a reader that stops leaves the bytes in the rings and TCP, the writer waits; nothing lost', async () => {
  const { h, server, path } = start();
  const stop = ticking(h);
  try {
    let srvSock!: StackSocket;
    let srv!: ReturnType<typeof createServer>;
    const got = new Promise<StackSocket>((res) => {
      srv = createServer({ api: path, rings: true }, (s) => {
        srvSock = s;
        s.pause();
        res(s);
      });
    });
    await new Promise<void>((r) => srv.listen(5001, '10.0.0.2', () => r()));
    const c = connect({ host: '10.0.0.2', port: 5001, api: path, rings: true });
    await new Promise<void>((r) => c.once('connect', () => r()));
    await got;
    const data = seededBytes(8 * 1024 * 1024, 11);
    let off = 0;
    let blocked = false;
    const more = (): void => {
      while (off < data.length) {
        const n = Math.min(65536, data.length - off);
        const ok = c.write(data.subarray(off, off + n));
        off += n;
        if (!ok) {
          blocked = true;
          return void c.once('drain', more);
        }
      }
      c.end();
    };
    more();
    // The writer blocks: the paused reader's rings and TCP's buffers are full, not an unbounded queue.
    await until(() => blocked && c.writableLength > 0, 'the writer to meet back-pressure');
    assert.ok(off < data.length, `not everything was taken: ${off} of ${data.length}`);
    // The reader resumes: every byte arrives.
    const chunks: Buffer[] = [];
    const done = new Promise<void>((r) => srvSock.on('end', () => r()));
    srvSock.on('data', (d: Buffer) => chunks.push(d));
    srvSock.resume();
    await done;
    assert.equal(digest(chunks), digest([data]));
    srvSock.end();
    c.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  } finally {
    stop();
    server.stop();
  }
});

test('a ringed socket whose stack socket is closed over the API (or whose daemon goes) ends, as a pair at EOF', { timeout: 10_000 }, async () => {
  const { h, server, path } = start();
  const stop = ticking(h);
  try {
    const srv = createServer({ api: path, rings: true }, () => {});
    await new Promise<void>((r) => srv.listen(5002, '10.0.0.2', () => r()));
    const c = connect({ host: '10.0.0.2', port: 5002, api: path, rings: true }) as StackSocket;
    await new Promise<void>((r) => c.once('connect', () => r()));
    const ended = new Promise<void>((r) => c.once('end', () => r()));
    c.resume();
    // Behind the library's back: the stack socket is closed over the API, so the daemon closes its end.
    const inner = (c as unknown as { inner: StackSocket }).inner;
    assert.equal(inner.constructor.name, 'RingSocket');
    await inner.client.closeFd(inner.stackFd);
    await ended;
    await new Promise<void>((r) => srv.close(() => r()));
  } finally {
    stop();
    server.stop();
  }
});

test("net.Socket's readyState, pending and bufferSize: the same on a ringed socket as on the socketpair's net.Socket", async () => {
  const { h, server, path } = start();
  const stop = ticking(h);
  try {
    for (const rings of [true, false]) {
      const seen: string[] = [];
      const accepted: string[] = [];
      const srv = createServer({ api: path, rings }, (s) => {
        accepted.push(`${s.constructor.name === 'RingSocket'} ${s.readyState} pending=${s.pending} buffered=${s.bufferSize}`);
        s.on('data', () => {});
        s.on('end', () => {
          s.end();
          accepted.push(s.readyState);
        });
      });
      await new Promise<void>((res) => srv.listen(5001, '10.0.0.2', () => res()));
      const c = connect({ host: '10.0.0.2', port: 5001, api: path, rings });
      await new Promise<void>((res, rej) => {
        c.on('error', rej);
        c.on('connect', () => {
          seen.push(`${c.readyState} pending=${c.pending} buffered=${c.bufferSize}`);
          c.end('x');
          seen.push(c.readyState);
        });
        c.on('data', () => {});
        c.on('end', () => setImmediate(() => {
          seen.push(c.readyState);
          res();
        }));
      });
      assert.deepEqual(seen, ['open pending=false buffered=0', 'readOnly', 'closed'], `rings ${rings}`);
      // The accepted side is the ring socket itself with rings, a net.Socket without: the same answers.
      assert.deepEqual(accepted, [`${rings} open pending=false buffered=0`, 'closed'], `rings ${rings}`);
      c.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  } finally {
    stop();
    server.stop();
  }
});

test('ts_accept_batch for a client that asked for rings: the connections come on their socketpairs (no ring memfd fits an FDS frame), and their bytes move both ways', async () => {
  const { h, server, path } = start();
  const stop = ticking(h);
  const raw = new Client({ path, rings: true });
  try {
    await raw.ready();
    assert.equal(raw.ringsOn, true);
    const l = await raw.socket(AF_INET, SOCK_STREAM);
    if (l.ring >= 0) ux.close(l.ring);
    await raw.bind(l.fd, { family: AF_INET, addr: '10.0.0.2', port: 5003 });
    await raw.listen(l.fd, 8);
    const c = connect({ host: '10.0.0.2', port: 5003, api: path, rings: true }) as StackSocket;
    const got: Buffer[] = [];
    c.on('data', (d: Buffer) => got.push(d));
    await new Promise<void>((r) => c.once('connect', () => r()));
    const ringsBefore = server.mib.Rings;
    const [a] = await raw.acceptBatch(l.fd, 16);
    assert.ok(a && a.data >= 0, 'a data descriptor');
    assert.equal(server.mib.Rings, ringsBefore, 'no ring made for a batch-accepted connection');
    // Down the accepted socket's pair, out at the connecting socket.
    const msg = seededBytes(3000, 11);
    assert.equal(ux.write(a.data, msg, 0, msg.length), msg.length);
    await until(() => Buffer.concat(got).length >= msg.length, 'the bytes written on the pair to arrive');
    assert.equal(digest(got), digest([msg]), 'the same bytes, not taken as doorbells');
    // And back: the connecting socket's bytes come out of the pair.
    const back = seededBytes(2000, 12);
    c.write(back);
    const buf = Buffer.alloc(4096);
    const rd: Buffer[] = [];
    await until(() => {
      if (ux.ioctlInt(a.data, ux.FIONREAD) > 0) {
        const n = ux.read(a.data, buf, 0, buf.length);
        if (n > 0) rd.push(Buffer.from(buf.subarray(0, n)));
      }
      return Buffer.concat(rd).length >= back.length;
    }, 'the bytes to arrive in the pair');
    assert.equal(digest(rd), digest([back]));
    assert.equal(server.mib.RingFaults, 0);
    c.destroy();
    ux.close(a.data);
    ux.close(l.data);
  } finally {
    raw.close();
    stop();
    server.stop();
  }
});
