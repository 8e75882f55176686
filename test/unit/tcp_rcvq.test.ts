import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, F, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { tcpReadSock, tcpRecvmsg } from '../../src/net/ipv4/tcp.js';
import { RCV_PAGE_SIZE, RCV_REF_MIN, RCV_SEG_OVERHEAD, RcvPage, RcvPageCache, rcvQueuePurge, rcvSegCharge, rcvSegCopy } from '../../src/net/ipv4/tcp_rcvq.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { AF_INET, EAGAIN, MSG_PEEK } from '../../src/uapi.js';

/** `n` bytes of a pattern that depends on the stream offset, so misplaced bytes show. */
function pattern(from: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = ((from + i) * 7 + 3) & 0xff;
  return b;
}

test('page cache: fragments are refcounted; an unreferenced current page starts over, a full one is reused', () => {
  const c = new RcvPageCache();
  const src = pattern(0, 1000);
  const a = rcvSegCopy(c, 0, 1000, src, 0, 1000, false);
  const b = rcvSegCopy(c, 1000, 1500, src, 0, 500, false);
  assert.equal(a.page, b.page);
  assert.equal(a.page.refs, 2);
  assert.equal(b.off, 1000);
  assert.deepEqual(a.page.buf.subarray(a.off, a.off + a.len), src);
  assert.ok(c.canExtend(b.page, b.off + b.len, 100));
  assert.ok(!c.canExtend(a.page, a.off + a.len, 100), 'not the cut point');
  c.put(a.page);
  c.put(b.page);
  assert.equal(c.used, 0, 'the current page starts over once nothing points into it');
  // Fill past one page: a second page; releasing the first makes it the next one used.
  const big = Buffer.alloc(60000);
  const segs = [0, 1, 2].map((i) => rcvSegCopy(c, i, i + 1, big, 0, big.length, false));
  assert.notEqual(segs[0].page, segs[2].page);
  assert.equal(c.allocated, 2);
  const first = segs[0].page;
  c.put(segs[0].page);
  c.put(segs[1].page);
  for (let i = 0; i < 3; i++) rcvSegCopy(c, 0, 1, big, 0, big.length, false);
  assert.equal(c.page, first, 'the freed page came back from the cache');
  assert.equal(c.allocated, 2);
  assert.ok(RCV_PAGE_SIZE >= 65535, 'a 64 KB GRO segment fits a page');
  // A purge frees the queue's segments and uncharges them from their socket.
  const owner = tcpNewSock(new TcpHarness(AF_INET).tcp);
  rcvSegCharge(owner, segs[2].truesize);
  assert.equal(segs[2].truesize, 60000 + RCV_SEG_OVERHEAD, 'a copied fragment costs its bytes and the overhead');
  const q = [segs[2]];
  assert.equal(rcvQueuePurge(c, owner, q), 60000);
  assert.equal(q.length, 0);
  assert.equal(owner.rcvTruesize, 0);
});

for (const family of FAMILIES) {
  test(`${familyName(family)}: in-order segments coalesce into one queue entry and read back byte-exact, with MSG_PEEK`, () => {
    const t = TcpHarness.established(family);
    let seq = 1;
    for (let i = 0; i < 20; i++) {
      t.send({ flags: A, seq, ack: 1, payload: pattern(seq - 1, 1000) });
      seq += 1000;
    }
    t.out();
    assert.equal(t.sk!.receiveQueue.length, 1, 'one coalesced entry');
    assert.equal(t.sk!.rmemAlloc, 20000);
    const peek = Buffer.alloc(1500);
    assert.equal(tcpRecvmsg(t.tcp, t.sk!, peek, MSG_PEEK), 1500);
    assert.deepEqual(peek, pattern(0, 1500));
    const got = Buffer.alloc(20000);
    let have = 0;
    for (const n of [777, 5000, 14223]) {
      const r = tcpRecvmsg(t.tcp, t.sk!, got.subarray(have, have + n));
      assert.equal(r, n);
      have += r;
    }
    assert.deepEqual(got, pattern(0, 20000));
    assert.equal(t.sk!.rmemAlloc, 0);
    assert.equal(t.sk!.receiveQueue.length, 0);
    assert.equal(tcpRecvmsg(t.tcp, t.sk!, got), -EAGAIN);
    assert.equal(t.tcp.rcvPages.page!.refs, 0, 'every reference dropped');
  });

  test(`${familyName(family)}: out-of-order segments with overlaps are reassembled byte-exact and their pages released`, () => {
    const t = new TcpHarness(family);
    t.accept([['mss', 1000], ['sackOK'], ['nop'], ['wscale', 0]], 50000);
    t.out();
    // Holes, an overlap with the next segment, a duplicate, then the fills.
    const send = (from: number, n: number) => t.send({ flags: A, seq: from + 1, ack: 1, payload: pattern(from, n) });
    send(3000, 1000);
    send(5000, 1000);
    send(3500, 1000); // overlaps both ends of what is held
    send(5000, 1000); // duplicate
    send(1000, 1000);
    t.out();
    assert.equal((t.sk!.rcvNxt - t.peerIsn - 1) >>> 0, 0);
    send(0, 1000);
    send(2000, 1500);
    send(4500, 600);
    t.out();
    assert.equal((t.sk!.rcvNxt - t.peerIsn - 1) >>> 0, 6000);
    assert.equal(t.sk!.ofoQueue.length, 0);
    assert.equal(t.sk!.rmemAlloc, 6000);
    const got = Buffer.alloc(8000);
    assert.equal(tcpRecvmsg(t.tcp, t.sk!, got), 6000);
    assert.deepEqual(got.subarray(0, 6000), pattern(0, 6000));
    assert.equal(t.sk!.rmemAlloc, 0);
    assert.equal(t.tcp.rcvPages.page!.refs, 0, 'every fragment released');
  });

  test(`${familyName(family)}: tcpReadSock hands the queued bytes to the actor in place; a short take stops it; then FIN reads as end of stream`, () => {
    const t = TcpHarness.established(family);
    t.send({ flags: A, seq: 1, ack: 1, payload: pattern(0, 3000) });
    t.send({ flags: A, seq: 3001, ack: 1, payload: pattern(3000, 2000) });
    t.out();
    const got: Buffer[] = [];
    // Takes at most 1200 bytes per call, like a socketpair with little room.
    const take = (buf: Buffer, off: number, len: number) => {
      const n = Math.min(len, 1200);
      got.push(Buffer.from(buf.subarray(off, off + n)));
      return n;
    };
    assert.equal(tcpReadSock(t.tcp, t.sk!, take, 1 << 20), 1200, 'stops at the first short take');
    assert.equal(t.sk!.rmemAlloc, 3800);
    assert.equal(tcpReadSock(t.tcp, t.sk!, () => 0, 1 << 20), -EAGAIN, 'data queued, nothing taken');
    let n: number;
    while ((n = tcpReadSock(t.tcp, t.sk!, take, 1000)) > 0) assert.ok(n <= 1000, 'at most max');
    assert.equal(n, -EAGAIN);
    assert.deepEqual(Buffer.concat(got), pattern(0, 5000));
    assert.equal(t.sk!.rmemAlloc, 0);
    t.send({ flags: A | F, seq: 5001, ack: 1 });
    assert.equal(tcpReadSock(t.tcp, t.sk!, take, 1 << 20), 0, 'end of stream');
  });

  test(`${familyName(family)}: a super-frame in a driver ring slot is kept where it arrived, not copied; smaller payload is copied; the slot comes back once read`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    const slots: RcvPage[] = [];
    const released: RcvPage[] = [];
    // As the TAP driver does: the frame comes with the ring slot it sits in (skb.page).
    t.h.rx = (frame: Buffer) => {
      const p = new RcvPage(frame);
      p.release = (x) => released.push(x);
      slots.push(p);
      t.h.stack.receive(frame, 0, frame.length, false, 0, p);
    };
    t.send({ flags: A, seq: 1, ack: 1, payload: pattern(0, RCV_REF_MIN) });
    t.send({ flags: A, seq: 1 + RCV_REF_MIN, ack: 1, payload: pattern(RCV_REF_MIN, 1000) });
    assert.equal(sk.receiveQueue.length, 2);
    assert.equal(sk.receiveQueue[0].page, slots[0], 'the super-frame is referenced in its slot');
    assert.equal(slots[0].refs, 1);
    assert.notEqual(sk.receiveQueue[1].page, slots[1], 'a small segment is copied out');
    assert.equal(slots[1].refs, 0);
    // The reader's copy is the only one, and the bytes are the stream's.
    const out = Buffer.alloc(RCV_REF_MIN + 1000);
    let got = 0;
    while (got < out.length) {
      const n = tcpRecvmsg(t.tcp, sk, out.subarray(got, got + 7000), 0);
      assert.ok(n > 0, `read ${n}`);
      got += n;
    }
    assert.deepEqual(out, pattern(0, RCV_REF_MIN + 1000));
    assert.deepEqual(released, [slots[0]], 'the slot goes back to its driver once read');
    assert.equal(slots[0].refs, 0);
    assert.equal(sk.rmemAlloc, 0);
  });
}
