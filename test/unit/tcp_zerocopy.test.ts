/**
 * SO_ZEROCOPY / MSG_ZEROCOPY at the socket calls: each send's completion
 * is queued on the error queue when the last skb holding its data is freed
 * (acknowledged, or purged), ids from sk_zckey, consecutive ones
 * coalesced, SO_EE_CODE_ZEROCOPY_COPIED once the device copied it; the
 * queue raises POLLERR and is read with tcpRecvErrqueue. A zerocopy send's
 * iovec pages are frags, MAX_SKB_FRAGS to an skb.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { A, R, TcpHarness, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import {
  tcpGetsockopt,
  tcpPoll,
  tcpRecvErrqueue,
  tcpSendmsg,
  tcpSetsockopt,
} from '../../src/net/ipv4/tcp.js';
import {
  AF_INET6,
  EAGAIN,
  EINVAL,
  EPIPE,
  IP_RECVERR,
  IPV6_RECVERR,
  MSG_ERRQUEUE,
  MSG_ZEROCOPY,
  POLLERR,
  SO_EE_CODE_ZEROCOPY_COPIED,
  SO_EE_ORIGIN_ZEROCOPY,
  SOL_IP,
  SOL_IPV6,
  SOL_SOCKET,
  SOL_TCP,
  SO_ZEROCOPY,
  TCP_CORK,
} from '../../src/uapi.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';

/** Acknowledge what the stack sends until it sends no more (Nagle holds small segments for an ACK). */
function ackAll(t: TcpHarness): void {
  for (let i = 0; i < 20; i++) {
    const segs = t.out();
    if (!segs.length) return;
    const end = Math.max(...segs.map((x) => x.seq + x.len));
    t.send({ flags: A, seq: 1, ack: end });
  }
  throw new Error('the stack kept sending');
}

/** recvmsg(MSG_ERRQUEUE) on `sk`, decoded: the completion's range and code, after checking the cmsg's shape. */
function completion(sk: TcpSock): { lo: number; hi: number; copied: boolean } | number {
  const r = tcpRecvErrqueue(sk);
  if (typeof r === 'number') return r;
  assert.equal(r.copied, 0);
  assert.equal(r.flags, MSG_ERRQUEUE);
  assert.equal(r.cmsgs.length, 1);
  const c = r.cmsgs[0];
  const v6 = sk.family === AF_INET6;
  assert.equal(c.level, v6 ? SOL_IPV6 : SOL_IP);
  assert.equal(c.type, v6 ? IPV6_RECVERR : IP_RECVERR);
  assert.equal(c.data.length, 16 + (v6 ? 28 : 16), 'sock_extended_err and the offender sockaddr');
  assert.equal(c.data.readUInt32LE(0), 0, 'ee_errno');
  assert.equal(c.data[4], SO_EE_ORIGIN_ZEROCOPY);
  assert.equal(c.data[5], 0, 'ee_type');
  assert.ok(c.data.subarray(16).every((b) => b === 0), 'no offender');
  return { lo: c.data.readUInt32LE(8), hi: c.data.readUInt32LE(12), copied: c.data[6] === SO_EE_CODE_ZEROCOPY_COPIED };
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: MSG_ZEROCOPY without SO_ZEROCOPY is ignored; SO_ZEROCOPY takes 0 or 1`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(100), MSG_ZEROCOPY), 100);
    assert.equal(sk.errQueueLen, 0);
    assert.equal(completion(sk), -EAGAIN);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_ZEROCOPY, 2), -EINVAL);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_SOCKET, SO_ZEROCOPY), 1);
  });

  test(`${familyName(family)}: completions come when the data is acknowledged: ids 0.. coalesced, POLLERR until read, none for an empty send; accepted children inherit the flag`, () => {
    const t = new TcpHarness(family);
    const l = t.listen();
    assert.equal(tcpSetsockopt(t.tcp, l, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
    t.accept();
    const sk = t.sk!;
    assert.equal(sk.zerocopy, true, 'inherited from the listener');
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(0), MSG_ZEROCOPY), 0);
    assert.equal(sk.zckey, 0, 'nothing sent, no id used');
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(100), MSG_ZEROCOPY), 100);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(100), MSG_ZEROCOPY), 100);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(100), 0), 100);
    assert.equal(tcpPoll(t.tcp, sk) & POLLERR, 0, 'the skbs still hold the pages');
    assert.equal(completion(sk), -EAGAIN);
    ackAll(t);
    assert.notEqual(tcpPoll(t.tcp, sk) & POLLERR, 0);
    assert.deepEqual(completion(sk), { lo: 0, hi: 1, copied: true });
    assert.equal(tcpPoll(t.tcp, sk) & POLLERR, 0);
    assert.equal(completion(sk), -EAGAIN);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(10), MSG_ZEROCOPY), 10);
    ackAll(t);
    assert.deepEqual(completion(sk), { lo: 2, hi: 2, copied: true });
  });

  test(`${familyName(family)}: an skb split holds the notification in both parts; a reset frees the queue and completes it; data never sent is not reported copied`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
    // 12 segments against an initial window of 10: the skb is split; only the ACK of the last part completes it.
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(12000), MSG_ZEROCOPY), 12000);
    const first = t.out();
    assert.equal(first.reduce((n, x) => n + x.len, 0), 10000);
    t.send({ flags: A, seq: 1, ack: 10001 });
    assert.equal(completion(sk), -EAGAIN, 'the rest of the split still holds it');
    ackAll(t);
    assert.deepEqual(completion(sk), { lo: 0, hi: 0, copied: true });
    // Corked: nothing leaves; a reset purges the queue and the notification comes, not copied.
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_CORK, 1), 0);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(10), MSG_ZEROCOPY), 10);
    assert.deepEqual(t.out(), []);
    assert.equal(completion(sk), -EAGAIN);
    t.send({ flags: R | A, seq: 1, ack: 12001 });
    assert.deepEqual(completion(sk), { lo: 1, hi: 1, copied: false });
  });

  test(`${familyName(family)}: MAX_SKB_FRAGS: each iovec element of a zerocopy send is a frag, 17 to an skb, each full skb pushed; a copied send coalesces`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
    const ones = (n: number) => new Array<number>(n).fill(1);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(18), 0, null, ones(18)), 18);
    assert.deepEqual(t.out().map((s) => [s.flags, s.seq, s.len]), [['P.', 1, 18]], 'copied: one page frag');
    t.send({ flags: A, seq: 1, ack: 19 });
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(18), MSG_ZEROCOPY, null, ones(18)), 18);
    // The second, a small segment, waits for the first's ACK (Nagle).
    const segs = (ack: number) => {
      const out = t.out().map((s) => [s.flags, s.seq, s.len]);
      t.send({ flags: A, seq: 1, ack });
      return out;
    };
    assert.deepEqual(segs(36), [['P.', 19, 17]]);
    assert.deepEqual(segs(37), [['P.', 36, 1]]);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(64), MSG_ZEROCOPY, null, ones(64)), 64);
    assert.deepEqual([...segs(54), ...segs(71), ...segs(88), ...segs(101)], [['P.', 37, 17], ['P.', 54, 17], ['P.', 71, 17], ['P.', 88, 13]]);
    // A page boundary inside one element starts a frag too: 17 pages and a byte are two skbs.
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, 7 /* SO_SNDBUF */, 1 << 20), 0);
    const len = 17 * 4096 + 1;
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(len), MSG_ZEROCOPY, null, [len]), len);
    let tail = 0;
    for (let skb = sk.wqHead; skb; skb = skb.next) if (skb.endSeq === sk.writeSeq) tail = skb.len;
    assert.ok(tail > 0 && tail < 17 * 4096, `the last skb holds what the 17 frags left (${tail})`);
  });

  test(`${familyName(family)}: a zerocopy send on a socket never connected is EPIPE and uses no id`, () => {
    const t = new TcpHarness(family);
    const fresh = tcpNewSock(t.tcp, family);
    assert.equal(tcpSetsockopt(t.tcp, fresh, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
    assert.equal(tcpSendmsg(t.tcp, fresh, Buffer.alloc(4000), MSG_ZEROCOPY), -EPIPE);
    assert.equal(fresh.zckey, 0);
    assert.equal(completion(fresh), -EAGAIN);
  });
}
