/**
 * A qdisc that drops (`tc qdisc ... pfifo limit 0`): dev_queue_xmit
 * answers NET_XMIT_DROP, which comes back up to TCP as a positive error
 * (__tcp_transmit_skb): the segment stays unsent, TCP enters CWR, and the
 * timers retry every TCP_RESOURCE_PROBE_INTERVAL without backing off.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { tcpRecvmsg, tcpSendmsg, tcpSetsockopt } from '../../src/net/ipv4/tcp.js';
import { TCP_CA_CWR, TCP_CA_Loss } from '../../src/net/ipv4/tcp_sock.js';
import { TCP_CLOSE } from '../../src/net/core/sock.js';
import { ETIMEDOUT, SOL_TCP, TCP_USER_TIMEOUT } from '../../src/uapi.js';

for (const family of FAMILIES) {
  const name = familyName(family);

  test(`${name}: qdisc drop: new data stays unsent, CWR, the probe timer retries every 500 ms and TCP_USER_TIMEOUT ends it`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    const dev = t.h.stack.dev;
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_USER_TIMEOUT, 3000), 0);
    dev.qdiscDropAll = true;
    const una = sk.sndNxt;
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(100, 1)), 100);
    assert.deepEqual(t.out(), [], 'nothing reaches the wire');
    assert.equal(sk.sndNxt, una, 'not counted as sent');
    assert.equal(sk.packetsOut, 0);
    assert.equal(sk.caState, TCP_CA_CWR, 'local congestion: tcp_enter_cwr');
    assert.equal(dev.qdiscDrops, 1);
    // The probe timer: first at the RTO, then every 500 ms while the qdisc keeps dropping.
    const tries: number[] = [];
    const start = t.time.now();
    for (let i = 0; i < 500 && sk.state !== TCP_CLOSE; i++) {
      const prev: number = dev.qdiscDrops;
      t.time.advance(10);
      if (dev.qdiscDrops !== prev) tries.push(Math.round(t.time.now() - start));
    }
    assert.ok(tries.length >= 6, `tries ${tries}`);
    for (let i = 2; i < tries.length; i++) assert.equal(tries[i] - tries[i - 1], 500, `no backoff: ${tries}`);
    assert.equal(sk.backoff, 0);
    assert.equal(sk.state, TCP_CLOSE, 'TCP_USER_TIMEOUT counted from the first probe');
    assert.equal(tcpRecvmsg(t.tcp, sk, Buffer.alloc(10)), -ETIMEDOUT);
  });

  test(`${name}: qdisc drop: an RTO retransmission that is dropped is retried after 500 ms without backoff (TCPRetransFail)`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    const dev = t.h.stack.dev;
    tcpSendmsg(t.tcp, sk, Buffer.alloc(100, 1));
    assert.equal(t.out().length, 1);
    dev.qdiscDropAll = true;
    const rto = sk.rto;
    t.time.advance(rto);
    assert.equal(sk.caState, TCP_CA_Loss);
    assert.equal(t.mibs.TcpExt.TCPRetransFail, 1);
    assert.equal(sk.retransOut, 0, 'not marked retransmitted');
    assert.equal(sk.rto, rto, 'no backoff');
    dev.qdiscDropAll = false;
    t.time.advance(Math.min(rto, 500));
    const out = t.out();
    assert.equal(out.length, 1, 'retried');
    assert.equal(out[0].len, 100);
    t.send({ flags: A, seq: 1, ack: 101, win: 50000 });
  });
}
