/**
 * The client library's ring socket (src/client/ring_socket.ts) reading its
 * down ring, driven by this test as the daemon's side of the ring: received
 * chunks are pieces of slabs shared by the process's ring sockets, and a
 * chunk handed out must stay as it was while later reads fill the same slab
 * and the ring wraps under it many times; a paused socket stops taking from
 * the ring, so the ring fills and its producer waits for room (the daemon
 * would leave the rest in TCP's receive queue), and every byte still arrives
 * in order after resume().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unixAddon, type RingHandle } from '../../src/api/unix.js';
import { RingSocket } from '../../src/client/ring_socket.js';
import { seededBytes } from '../lib/seeded.js';

const ux = unixAddon();

/** A ring with a `down`-byte DOWN: the daemon's handle, its doorbell end, and a RingSocket on the other side. */
function ringed(down: number): { d: RingHandle; bell: number; map: Buffer; sock: RingSocket; close: () => void } {
  const fdOut = new Int32Array(1);
  const d = ux.ringCreate(4096, down, fdOut);
  assert.ok(d, `ringCreate: ${fdOut[0]}`);
  const bells = new Int32Array(2);
  assert.equal(ux.socketPair(4096, 4096, bells), 0);
  ux.ringBell(d, bells[0]);
  // The RingSocket maps the memfd (closing it) and owns the other doorbell end.
  const sock = RingSocket.open(bells[1], fdOut[0]);
  const map = ux.ringView(d, 2);
  return {
    d,
    bell: bells[0],
    map,
    sock,
    close: () => {
      sock.destroy();
      ux.ringClose(d, map);
      ux.close(bells[0]);
    },
  };
}

/**
 * The daemon's side: put `data` into DOWN as room allows, `step` bytes at a
 * time; when the ring is full, sleep (NEED_SPACE) until the consumer rings;
 * FIN after the last byte. Resolves once all is in; `full` counts the times
 * the ring was found full.
 */
function produce(r: ReturnType<typeof ringed>, data: Buffer, step: number): { done: Promise<void>; full: () => number } {
  let off = 0;
  let full = 0;
  const bb = Buffer.alloc(256);
  let finish!: () => void;
  let fail!: (e: Error) => void;
  const done = new Promise<void>((res, rej) => {
    finish = res;
    fail = rej;
  });
  const watch = ux.watch(r.bell, () => {
    while (ux.read(r.bell, bb, 0, bb.length) === bb.length);
    feed();
  });
  const feed = (): void => {
    while (off < data.length) {
      const n = ux.ringWrite(r.d, data, off, Math.min(step, data.length - off));
      if (n < 0) {
        ux.watchClose(watch);
        return fail(new Error(`ringWrite: ${n}`));
      }
      off += n;
      if (n === 0) {
        full++;
        if (ux.ringWait(r.d, 1) === 0) return void ux.watchSet(watch, ux.UV_READABLE); // the consumer rings once half is free
      }
    }
    ux.watchClose(watch);
    ux.ringFin(r.d);
    finish();
  };
  feed();
  return { done, full: () => full };
}

test('ring socket: a chunk handed out stays intact while later reads fill its slab and the ring wraps; chunks share slabs; every byte in order', async () => {
  const r = ringed(64 * 1024);
  try {
    // 3 MiB through a 64 KiB ring: the ring wraps 48 times, and the chunks span several slabs.
    const data = seededBytes(3 * 1024 * 1024, 5);
    const chunks: Buffer[] = [];
    const copies: Buffer[] = [];
    const ended = new Promise<void>((res, rej) => {
      r.sock.on('error', rej);
      r.sock.on('end', () => res());
    });
    r.sock.on('data', (c: Buffer) => {
      chunks.push(c);
      copies.push(Buffer.from(c)); // what the chunk held when it was handed out
    });
    // Odd-sized writes, so chunks start at unaligned ring positions and end mid-slab.
    const p = produce(r, data, 10_007);
    await p.done;
    await ended;
    assert.ok(p.full() > 0, 'the producer outran the reader at least once (the ring really filled and wrapped)');
    assert.ok(chunks.length > 1);
    for (let i = 0; i < chunks.length; i++) assert.ok(chunks[i].equals(copies[i]), `chunk ${i} of ${chunks.length} was overwritten after it was handed out`);
    assert.ok(Buffer.concat(chunks).equals(data), 'every byte, in order');
    assert.equal(r.sock.bytesRead, data.length);
    // The slab: consecutive chunks are pieces of one larger buffer, never the same bytes twice.
    const slabs = new Set(chunks.map((c) => c.buffer));
    assert.ok(slabs.size < chunks.length, `${chunks.length} chunks in ${slabs.size} slabs`);
    const spans = new Map<ArrayBufferLike, [number, number][]>();
    for (const c of chunks) {
      const l = spans.get(c.buffer) ?? [];
      l.push([c.byteOffset, c.byteOffset + c.length]);
      spans.set(c.buffer, l);
    }
    for (const l of spans.values()) {
      l.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < l.length; i++) assert.ok(l[i][0] >= l[i - 1][1], 'two chunks share bytes of a slab');
    }
  } finally {
    r.close();
  }
});

test('ring socket back-pressure: a paused socket stops taking from the ring, the producer waits for room; resume() takes the rest, in order', async () => {
  const size = 64 * 1024;
  const r = ringed(size);
  try {
    const data = seededBytes(1024 * 1024, 9);
    const chunks: Buffer[] = [];
    r.sock.on('data', (c: Buffer) => chunks.push(c));
    r.sock.pause();
    const ended = new Promise<void>((res) => r.sock.on('end', () => res()));
    let finished = false;
    const p = produce(r, data, 4096);
    void p.done.then(() => (finished = true));
    // Paused: the socket's own buffer fills to its high-water mark (a read or so past it) and it stops
    // reading, so the ring fills behind it and the producer sleeps: the bytes stay with the producer.
    await waitFor(() => ux.ringQueued(r.d, 1) === size, 'the ring to fill behind the paused socket');
    const held = r.sock.readableLength;
    assert.ok(held <= r.sock.readableHighWaterMark + 256 * 1024, `the paused socket holds ${held} bytes`);
    assert.equal(finished, false, 'the producer waits for room');
    assert.ok(p.full() > 0);
    assert.equal(chunks.length, 0, "no 'data' while paused");
    // Resume: the socket drains the ring, rings the producer, and everything comes through.
    r.sock.resume();
    await p.done;
    await ended;
    assert.ok(Buffer.concat(chunks).equals(data), 'every byte, in order, after back-pressure');
  } finally {
    r.close();
  }
});

/** Wait on the event loop (each turn lets the socket and the producer's watch run) until `cond`, bounded. */
async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000 && !cond(); i++) await new Promise<void>((r) => setImmediate(r));
  assert.ok(cond(), `timed out waiting for ${what}`);
}
