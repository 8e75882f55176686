/**
 * What the API holds for a client it cannot write to yet: the write queue
 * (small replies coalesced into chunks, charged by truesize, descriptors on
 * their frame's first byte, O(1) at both ends, chunks handed back the moment
 * they are sent).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ring, WQ_CHUNK, WQ_COPY_MAX, WriteQueue } from '../../src/api/unix.js';

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
