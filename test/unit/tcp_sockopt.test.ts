import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, P, S, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { PEER6, PEER_IP, STACK6, STACK_IP } from '../lib/frames.js';
import { tcpAccept, tcpClose, tcpGetsockopt, tcpRecvmsg, tcpSetsockopt, tcpShutdown, tcpSockGetsockopt } from '../../src/net/ipv4/tcp.js';
import { inet6LookupEstablished } from '../../src/net/ipv6/inet6_hashtables.js';
import { TCP_CLOSE, TCP_FIN_WAIT2 } from '../../src/net/core/sock.js';
import { TCP_DEFER_ACCEPT, TCP_LINGER2 } from '../../src/net/ipv4/tcp_sockopt.js';
import { AF_INET6, EAGAIN, SHUT_WR, SOL_TCP } from '../../src/uapi.js';

const twOf = (t: TcpHarness) =>
  t.family === AF_INET6
    ? inet6LookupEstablished(t.tcp.hashinfo, PEER6, 0, t.peerPort, STACK6, 0, t.localPort)
    : t.tcp.hashinfo.lookupEstablished(PEER_IP, t.peerPort, STACK_IP, t.localPort);

for (const family of FAMILIES) {
  const name = familyName(family);

  test(`${name}: TCP_DEFER_ACCEPT: seconds kept as SYN-ACK retransmissions; a bare ACK completes nothing, data does`, () => {
    const t = new TcpHarness(family);
    const l = t.listen();
    assert.equal(tcpSetsockopt(t.tcp, l, SOL_TCP, TCP_DEFER_ACCEPT, 5), 0);
    assert.equal(tcpGetsockopt(t.tcp, l, SOL_TCP, TCP_DEFER_ACCEPT), 7, '3 retransmissions: 1 + 2 + 4 s');
    t.send({ flags: S, seq: 0, win: 50000, options: [['mss', 1000]] });
    assert.equal(t.out()[0].flags, 'S.');
    t.send({ flags: A, seq: 1, ack: 1, win: 50000 });
    assert.equal(tcpAccept(t.tcp, l), -EAGAIN);
    assert.equal(t.mibs.TcpExt.TCPDeferAcceptDrop, 1);
    // No SYN-ACK while the ACKed request waits for data, until its last chance (after 1 + 2 s, the third timeout at 7 s).
    t.time.advance(6_999);
    assert.deepEqual(t.out(), []);
    t.time.advance(1);
    assert.deepEqual(t.out().map((s) => s.flags), ['S.']);
    t.send({ flags: P | A, seq: 1, ack: 1, win: 50000, payload: 10 });
    const c = tcpAccept(t.tcp, l);
    assert.notEqual(typeof c, 'number', 'data completes the handshake');
    assert.equal(tcpRecvmsg(t.tcp, c as never, Buffer.alloc(100)), 10);
  });

  test(`${name}: TCP_LINGER2: seconds (0: tcp_fin_timeout, capped at 120), and -1 resets an orphan reaching FIN_WAIT2`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_TCP, TCP_LINGER2), 60);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_LINGER2, 500), 0);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_TCP, TCP_LINGER2), 120);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_LINGER2, -5), 0);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_TCP, TCP_LINGER2), -1);
    assert.deepEqual(tcpSockGetsockopt(t.tcp, sk, SOL_TCP, TCP_LINGER2), Buffer.from([0xff, 0xff, 0xff, 0xff]), 'the API gets -1 as the value, not as an error');
    tcpClose(t.tcp, sk);
    assert.equal(t.out()[0].flags, 'F.');
    t.send({ flags: A, seq: 1, ack: 2 });
    assert.equal(sk.state, TCP_CLOSE);
    assert.equal(twOf(t), null, 'no FIN_WAIT2 timewait sock');
    assert.equal(t.mibs.TcpExt.TCPAbortOnData, 1);
  });

  test(`${name}: TCP_LINGER2: an orphan waits in FIN_WAIT2 that long, not tcp_fin_timeout`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_LINGER2, 5), 0);
    tcpClose(t.tcp, sk);
    t.out();
    t.send({ flags: A, seq: 1, ack: 2 });
    assert.equal((twOf(t) as unknown as { substate: number }).substate, TCP_FIN_WAIT2);
    t.time.advance(4_999);
    assert.ok(twOf(t));
    t.time.advance(1);
    assert.equal(twOf(t), null);
  });
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: TCP_LINGER2 -1: close() in FIN_WAIT2 resets at once (TCPAbortOnLinger)`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_LINGER2, -1), 0);
    tcpShutdown(t.tcp, sk, SHUT_WR);
    t.out();
    t.send({ flags: A, seq: 1, ack: 2 });
    assert.equal(sk.state, TCP_FIN_WAIT2);
    tcpClose(t.tcp, sk);
    assert.deepEqual(t.out().map((s) => s.flags), ['R.']);
    assert.equal(sk.state, TCP_CLOSE);
    assert.equal(t.mibs.TcpExt.TCPAbortOnLinger, 1);
  });
}
