import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { tcpRecvmsg, tcpSendmsg } from '../../src/net/ipv4/tcp.js';
import { tcpCurrentMss, tcpXmitSizeGoal } from '../../src/net/ipv4/tcp_output.js';
import { userBuffer } from '../../src/net/core/uaccess.js';
import { EFAULT } from '../../src/uapi.js';

for (const family of FAMILIES) {
  const name = familyName(family);

  test(`${name}: a send from a bad pointer is EFAULT and queues nothing; a fault past a first full skb returns what was copied`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    const seq = sk.writeSeq;
    assert.equal(tcpSendmsg(t.tcp, sk, userBuffer(1000, 0)), -EFAULT);
    assert.equal(sk.writeSeq, seq);
    assert.equal(sk.wqHead, null, 'the empty skb is gone');
    assert.equal(sk.wmemQueued, 0);
    assert.deepEqual(t.out(), []);
    // Linux copies whole chunks (an skb's room): the first fills an skb, the second reaches the fault.
    const goal = tcpXmitSizeGoal(sk, tcpCurrentMss(sk));
    sk.sndbuf = 8 * goal;
    assert.equal(tcpSendmsg(t.tcp, sk, userBuffer(2 * goal, goal + 10)), goal);
    assert.equal((sk.writeSeq - seq) >>> 0, goal);
  });

  test(`${name}: a read into a bad pointer is EFAULT and leaves the data queued`, () => {
    const t = TcpHarness.established(family);
    t.send({ flags: A, seq: 1, ack: 1, win: 50000, payload: 100 });
    assert.equal(tcpRecvmsg(t.tcp, t.sk!, userBuffer(1000, 0)), -EFAULT);
    const b = Buffer.alloc(1000);
    assert.equal(tcpRecvmsg(t.tcp, t.sk!, b), 100);
  });
}
