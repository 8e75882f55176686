import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, P, FAMILIES, familyName } from '../lib/tcp_harness.js';
import {
  tcpGetsockopt,
  tcpRecvmsg,
  tcpSendmsg,
  tcpSetsockopt,
} from '../../src/net/ipv4/tcp.js';
import { icmp, ipFrame, ipv4, PEER_IP, STACK_IP } from '../lib/frames.js';
import { TCP_CLOSE } from '../../src/net/core/sock.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import {
  AF_INET,
  EAGAIN,
  ECONNREFUSED,
  EHOSTUNREACH,
  EINVAL,
  ETIMEDOUT,
  MSG_MORE,
  SOL_SOCKET,
  SOL_TCP,
  SO_ERROR,
  TCP_CORK,
  TCP_KEEPIDLE,
  TCP_MAXSEG,
  TCP_NODELAY,
  TCP_USER_TIMEOUT,
} from '../../src/uapi.js';

for (const family of FAMILIES) {
  test(`${familyName(family)}: Nagle: a second small write waits while a small segment is unacknowledged`, () => {
    const t = TcpHarness.established(family);
    tcpSendmsg(t.tcp, t.sk!, Buffer.from('first'));
    assert.equal(t.out().length, 1);
    tcpSendmsg(t.tcp, t.sk!, Buffer.from('second'));
    assert.deepEqual(t.out(), [], 'held by Nagle');
    t.send({ flags: A, seq: 1, ack: 6 });
    const [s] = t.out();
    assert.equal(s.payload.toString(), 'second');
  });

  test(`${familyName(family)}: TCP_NODELAY sends small writes at once`, () => {
    const t = TcpHarness.established(family);
    tcpSetsockopt(t.tcp, t.sk!, SOL_TCP, TCP_NODELAY, 1);
    tcpSendmsg(t.tcp, t.sk!, Buffer.from('a'));
    tcpSendmsg(t.tcp, t.sk!, Buffer.from('b'));
    assert.equal(t.out().length, 2);
    assert.equal(tcpGetsockopt(t.tcp, t.sk!, SOL_TCP, TCP_NODELAY), 1);
  });

  test(`${familyName(family)}: TCP_CORK holds partial segments until uncorked; MSG_MORE holds one write`, () => {
    const t = TcpHarness.established(family);
    tcpSetsockopt(t.tcp, t.sk!, SOL_TCP, TCP_CORK, 1);
    tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(300, 1));
    tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(300, 2));
    assert.deepEqual(t.out(), []);
    tcpSetsockopt(t.tcp, t.sk!, SOL_TCP, TCP_CORK, 0);
    const [s] = t.out();
    assert.equal(s.len, 600, 'one segment with both writes');
    t.send({ flags: A, seq: 1, ack: 601 });
    tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(100, 3), MSG_MORE);
    assert.deepEqual(t.out(), [], 'MSG_MORE: more is coming');
    tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(100, 4));
    assert.equal(t.out()[0].len, 200);
  });

  test(`${familyName(family)}: TCP_MAXSEG: bounds checked; set before connect it lowers the MSS we advertise`, () => {
    const t = new TcpHarness(family);
    const sk = tcpNewSock(t.tcp);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_MAXSEG, 40), -EINVAL);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_MAXSEG, 1200), 0);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_TCP, TCP_MAXSEG), 1200);
    t.sk = sk;
    const l = t.listen();
    tcpSetsockopt(t.tcp, l, SOL_TCP, TCP_MAXSEG, 1200);
    t.send({ flags: 0x02, seq: 0, options: [['mss', 1460]] });
    assert.equal(t.out()[0].options, 'mss 1200');
  });
}

// IPv4 only: ICMP's unreachable codes and their errnos (tcp6.test has ICMPv6's).
test('ICMP host unreachable for our SYN ends connect() with EHOSTUNREACH; port unreachable with ECONNREFUSED', () => {
  for (const [code, errno] of [[1, EHOSTUNREACH], [3, ECONNREFUSED]]) {
    const t = new TcpHarness(AF_INET);
    const sk = t.connect();
    t.out();
    // The quoted packet: our SYN as the peer's router saw it.
    const syn = Buffer.alloc(20);
    syn.writeUInt16BE(sk.num, 0);
    syn.writeUInt16BE(t.peerPort, 2);
    syn.writeUInt32BE(sk.iss, 4);
    const quoted = ipv4({ proto: 6, src: STACK_IP, dst: PEER_IP, payload: syn });
    t.h.rx(ipFrame({ proto: 1, payload: icmp(3, code, 0, quoted) }));
    assert.equal(sk.state, TCP_CLOSE);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_SOCKET, SO_ERROR), errno);
  }
});

test('ICMP unreachable on an established connection is a soft error, reported only on timeout', () => {
  const t = TcpHarness.established(AF_INET);
  const sk = t.sk!;
  tcpSendmsg(t.tcp, sk, Buffer.alloc(100, 1));
  t.out();
  const seg = Buffer.alloc(20);
  seg.writeUInt16BE(sk.num, 0);
  seg.writeUInt16BE(t.peerPort, 2);
  seg.writeUInt32BE(sk.sndUna, 4);
  t.h.rx(ipFrame({ proto: 1, payload: icmp(3, 1, 0, ipv4({ proto: 6, src: STACK_IP, dst: PEER_IP, payload: seg })) }));
  assert.notEqual(sk.state, TCP_CLOSE);
  assert.equal(tcpRecvmsg(t.tcp, sk, Buffer.alloc(10)), -EAGAIN);
  assert.equal(sk.errSoft, EHOSTUNREACH);
});

for (const family of FAMILIES) {
  test(`${familyName(family)}: TCP_USER_TIMEOUT: unacknowledged data aborts the connection after the timeout`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_USER_TIMEOUT, 5000);
    tcpSendmsg(t.tcp, sk, Buffer.alloc(100, 1));
    t.out();
    for (let i = 0; i < 100 && sk.state !== TCP_CLOSE; i++) t.time.advance(100);
    assert.equal(sk.state, TCP_CLOSE);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_SOCKET, SO_ERROR) || ETIMEDOUT, ETIMEDOUT);
  });

  test(`${familyName(family)}: PAWS: a segment with an old timestamp is dropped and answered with an ACK`, () => {
    const t = new TcpHarness(family);
    t.accept([['mss', 1000], ['sackOK'], ['TS', 1000, 0], ['nop'], ['wscale', 0]], 50000);
    t.out();
    t.send({ flags: A | P, seq: 1, ack: 1, payload: 10, options: [['nop'], ['nop'], ['TS', 2000, 0]] });
    t.out();
    t.send({ flags: A | P, seq: 11, ack: 1, payload: 10, options: [['nop'], ['nop'], ['TS', 1500, 0]] });
    const [ack] = t.out();
    assert.equal(ack.ack, 11, 'the old-timestamped data was not accepted');
    assert.equal(t.mibs.TcpExt.PAWSEstab, 1);
  });

  test(`${familyName(family)}: rarely set options: the listener's reach the accepted child, untouched ones read as their defaults`, () => {
    const t = new TcpHarness(family);
    const l = t.listen(8);
    assert.equal(tcpSetsockopt(t.tcp, l, SOL_TCP, TCP_KEEPIDLE, 30), 0);
    assert.equal(tcpSetsockopt(t.tcp, l, SOL_TCP, TCP_USER_TIMEOUT, 5000), 0);
    const c = t.accept();
    assert.equal(tcpGetsockopt(t.tcp, c, SOL_TCP, TCP_KEEPIDLE), 30);
    assert.equal(tcpGetsockopt(t.tcp, c, SOL_TCP, TCP_USER_TIMEOUT), 5000);
    assert.equal(c.keepaliveTime, 30_000);
    assert.equal(l.maxAckBacklog, 8);
    assert.equal(l.acceptQueue.length, 0, 'accept() took the child');
    // A child of an untouched listener: the defaults, with nothing stored.
    const t2 = new TcpHarness(family);
    const c2 = t2.accept();
    assert.equal(c2.userMss, 0);
    assert.equal(c2.lingerSec, -1);
    assert.equal(c2.keepaliveTime, 0);
    assert.equal(c2.userTimeout, 0);
    assert.equal(c2.synqOverflowAt, -Infinity);
    assert.equal(c2.recvmsgInq, false);
    assert.equal(c2.reordSeen, 0);
    c2.lingerSec = 0;
    assert.equal(c2.lingerSec, 0);
    c2.reordSeen++;
    c2.reordSeen++;
    assert.equal(c2.reordSeen, 2);
  });
}
