import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../lib/harness.js';
import { echo, ipFrame } from '../lib/frames.js';
import { AF_INET } from '../../src/uapi.js';

/** Split an ICMP echo of `size` data bytes into fragments of `chunk` payload bytes. */
function fragments(size: number, chunk: number, id = 500): Buffer[] {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 13) & 255;
  const whole = echo(9, 9, data);
  const out: Buffer[] = [];
  for (let off = 0; off < whole.length; off += chunk) {
    const end = Math.min(off + chunk, whole.length);
    out.push(ipFrame({ proto: 1, id, frag: (off / 8) | (end < whole.length ? 0x2000 : 0), payload: whole.subarray(off, end) }));
  }
  return out;
}

const replies = (h: Harness) => h.sent().filter((p) => p.ip && p.ip.proto === 1);

test('in order: reassembled and delivered once', () => {
  const h = Harness.withPeer(AF_INET);
  for (const f of fragments(3000, 1000)) h.rx(f);
  const out = replies(h);
  assert.equal(out.length, 3, 'the reply is fragmented too');
  assert.equal(h.mibs.Ip.ReasmOKs, 1);
  assert.equal(h.mibs.Ip.ReasmReqds, 4);
  assert.equal(h.stack.frags.queues, 0);
  assert.equal(h.stack.frags.mem, 0);
});

test('out of order, last fragment first', () => {
  const h = Harness.withPeer(AF_INET);
  const fs = fragments(3000, 800);
  for (const f of [...fs].reverse()) h.rx(f);
  assert.equal(h.mibs.Ip.ReasmOKs, 1);
  const data = Buffer.concat(replies(h).map((p) => p.ip!.payload)).subarray(8);
  for (let i = 0; i < 3000; i++) assert.equal(data[i], (i * 13) & 255);
});

test('an exact duplicate is dropped alone; the datagram still completes', () => {
  const h = Harness.withPeer(AF_INET);
  const fs = fragments(2000, 800);
  h.rx(fs[0]);
  h.rx(fs[0]);
  h.rx(fs[1]);
  h.rx(fs[2]);
  assert.equal(h.mibs.Ip.ReasmOKs, 1);
  assert.equal(h.mibs.Drop.toJSON().DUP_FRAG, 1);
});

test('a fragment lying inside a run of held fragments is a duplicate, not an overlap (inet_frag_queue_insert)', () => {
  const h = Harness.withPeer(AF_INET);
  const fs = fragments(2400, 800);
  const whole = echo(9, 9, (() => {
    const d = Buffer.alloc(2400);
    for (let i = 0; i < 2400; i++) d[i] = (i * 13) & 255;
    return d;
  })());
  h.rx(fs[0]);
  h.rx(fs[1]);
  // Bytes 400..1200 straddle the two held fragments, which form one run.
  h.rx(ipFrame({ proto: 1, id: 500, frag: (400 / 8) | 0x2000, payload: whole.subarray(400, 1200) }));
  assert.equal(h.mibs.Drop.toJSON().DUP_FRAG, 1);
  assert.equal(h.mibs.IpExt.ReasmOverlaps, 0);
  h.rx(fs[2]);
  h.rx(fs[3]);
  assert.equal(h.mibs.Ip.ReasmOKs, 1);
});

test('an overlapping fragment kills the whole queue (RFC 5722 rule, as Linux)', () => {
  const h = Harness.withPeer(AF_INET);
  const fs = fragments(2000, 800);
  h.rx(fs[0]);
  // Starts inside the first fragment's range.
  const whole = echo(9, 9, Buffer.alloc(2000));
  h.rx(ipFrame({ proto: 1, id: 500, frag: (400 / 8) | 0x2000, payload: whole.subarray(400, 1200) }));
  assert.equal(h.mibs.IpExt.ReasmOverlaps, 1);
  assert.equal(h.mibs.Ip.ReasmFails, 1);
  assert.equal(h.stack.frags.queues, 0);
  // The rest now starts a new queue that cannot complete: nothing delivered.
  h.rx(fs[1]);
  h.rx(fs[2]);
  assert.equal(h.mibs.Ip.ReasmOKs, 0);
  assert.deepEqual(replies(h), []);
});

test('timeout after 30 s: ReasmTimeout, and time exceeded quoting the first fragment', () => {
  const h = Harness.withPeer(AF_INET);
  const fs = fragments(3000, 1000);
  h.rx(fs[0]);
  h.rx(fs[2]);
  h.time.advance(29_999);
  assert.deepEqual(replies(h), []);
  h.time.advance(1);
  const [te] = replies(h);
  assert.equal(te.icmp!.type, 11);
  assert.equal(te.icmp!.code, 1);
  assert.equal(te.icmp!.data.length, 20 + 8, 'the header and 8 bytes of the first fragment');
  assert.equal(h.mibs.Ip.ReasmTimeout, 1);
  assert.equal(h.mibs.Ip.ReasmFails, 1);
  assert.equal(h.stack.frags.mem, 0);
  // A fragment arriving later does not rearm the old queue: the timer is per queue, from creation.
  h.rx(fs[1]);
  assert.equal(h.mibs.Ip.ReasmOKs, 0);
});

test('the memory cap: over ipfrag_high_thresh new fragments are dropped', () => {
  const h = Harness.withPeer(AF_INET);
  h.stack.frags.sysctl.highThresh = 10_000;
  for (let id = 1; id <= 20; id++) h.rx(fragments(3000, 1000, id)[0]);
  assert.ok(h.stack.frags.mem <= 10_000 + 1000 + 256, `memory ${h.stack.frags.mem}`);
  assert.ok(h.mibs.Ip.ReasmFails > 0);
  assert.ok(h.mibs.Drop.toJSON().FRAG_MEM_LIMIT > 0);
  h.time.advance(30_000);
  assert.equal(h.stack.frags.mem, 0);
  assert.equal(h.stack.frags.queues, 0);
});

test('a datagram over 65535 bytes is refused', () => {
  const h = Harness.withPeer(AF_INET);
  h.rx(ipFrame({ proto: 1, id: 8, frag: 0x2000, payload: Buffer.alloc(1000) }));
  h.rx(ipFrame({ proto: 1, id: 8, frag: 8189, payload: Buffer.alloc(100) }));
  assert.equal(h.mibs.Drop.toJSON().FRAG_TOO_BIG, 1);
  assert.equal(h.stack.frags.queues, 0);
});

test('contradicting last fragments and zero-length fragments kill the queue', () => {
  const h = Harness.withPeer(AF_INET);
  h.rx(ipFrame({ proto: 1, id: 3, frag: 100, payload: Buffer.alloc(16) }));
  h.rx(ipFrame({ proto: 1, id: 3, frag: 50, payload: Buffer.alloc(16) }));
  assert.equal(h.mibs.Drop.toJSON().FRAG_INVALID, 1);
  h.rx(ipFrame({ proto: 1, id: 4, frag: 0x2000 | 10, payload: Buffer.alloc(0) }));
  assert.equal(h.mibs.Drop.toJSON().FRAG_INVALID, 2);
  assert.equal(h.stack.frags.queues, 0);
});

test('a 65000-byte echo is reassembled and answered in 44 fragments', () => {
  const h = Harness.withPeer(AF_INET);
  for (const f of fragments(65000, 1480)) h.rx(f);
  const out = replies(h);
  assert.equal(out.length, Math.ceil((65000 + 8) / 1480));
  assert.ok(out.every((p) => p.ip!.totLen <= 1500));
  assert.equal(out.at(-1)!.ip!.mf, false);
});
