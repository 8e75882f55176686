/**
 * SO_ZEROCOPY / MSG_ZEROCOPY at the socket calls: the stack copies (as
 * Linux does without scatter-gather), so each send's completion is queued
 * on the error queue when the call returns, ids from sk_zckey, consecutive
 * ones coalesced; the queue raises POLLERR and is read with tcpRecvErrqueue.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, FAMILIES, familyName } from '../lib/tcp_harness.js';
import {
  tcpGetsockopt,
  tcpPoll,
  tcpRecvErrqueue,
  tcpSendmsg,
  tcpSetsockopt,
} from '../../src/net/ipv4/tcp.js';
import { EAGAIN, EINVAL, MSG_ZEROCOPY, POLLERR, SOL_SOCKET, SO_ZEROCOPY } from '../../src/uapi.js';

for (const family of FAMILIES) {
  test(`${familyName(family)}: MSG_ZEROCOPY without SO_ZEROCOPY is ignored; SO_ZEROCOPY takes 0 or 1`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(100), MSG_ZEROCOPY), 100);
    assert.equal(sk.errQueueLen, 0);
    assert.equal(tcpRecvErrqueue(sk), -EAGAIN);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_ZEROCOPY, 2), -EINVAL);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_SOCKET, SO_ZEROCOPY), 1);
  });

  test(`${familyName(family)}: completions: ids 0.. coalesced, POLLERR until read, none for an empty send; accepted children inherit the flag`, () => {
    const t = new TcpHarness(family);
    const l = t.listen();
    assert.equal(tcpSetsockopt(t.tcp, l, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
    t.accept();
    const sk = t.sk!;
    assert.equal(sk.zerocopy, true, 'inherited from the listener');
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(0), MSG_ZEROCOPY), 0);
    assert.equal(sk.errQueueLen, 0, 'nothing sent, no id used');
    assert.equal(tcpPoll(t.tcp, sk) & POLLERR, 0);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(100), MSG_ZEROCOPY), 100);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(100), MSG_ZEROCOPY), 100);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(100), 0), 100);
    assert.notEqual(tcpPoll(t.tcp, sk) & POLLERR, 0);
    assert.deepEqual(tcpRecvErrqueue(sk), { lo: 0, hi: 1, copied: true });
    assert.equal(tcpPoll(t.tcp, sk) & POLLERR, 0);
    assert.equal(tcpRecvErrqueue(sk), -EAGAIN);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(10), MSG_ZEROCOPY), 10);
    assert.deepEqual(tcpRecvErrqueue(sk), { lo: 2, hi: 2, copied: true });
  });
}
