/**
 * TCP Fast Open's active side (tcp_fastopen_active.ts), in both families:
 * the cookie request and the cookie cache, data in the SYN and what the
 * SYN-ACK does with it, the SYN timeout's plain retransmission, the errnos
 * of MSG_FASTOPEN and TCP_FASTOPEN_CONNECT, TCP_FASTOPEN_NO_COOKIE, the
 * cookie length rule, the experimental option fallback, the flush of the
 * cache, and the blackhole pause with its counters.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, FAMILIES, S, A, F, familyName, mtuToMss, type Seg } from '../lib/tcp_harness.js';
import { PEER6, PEER_IP, type Family } from '../lib/frames.js';
import { tcpConnect, tcpDisconnect, tcpGetsockopt, tcpPoll, tcpRecvErrqueue, tcpRecvmsg, tcpSendmsg, tcpSetsockopt } from '../../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { tcpV6Connect, tcpv6Prot } from '../../src/net/ipv6/tcp_ipv6.js';
import { tcpGetInfo, TCPI_OPT_SYN_DATA } from '../../src/net/ipv4/tcp_info.js';
import {
  TcpFastopenActiveState,
  TcpFastopenCookie,
  tcpFastopenCacheGet,
  tcpFastopenCacheSet,
  tcpFastopenCacheSize,
  tcpMetricsFlushAll,
} from '../../src/net/ipv4/tcp_fastopen_active.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { userBuffer } from '../../src/net/core/uaccess.js';
import { TCP_CLOSE_WAIT, TCP_ESTABLISHED, TCP_SYN_SENT } from '../../src/net/core/sock.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  EAGAIN,
  EALREADY,
  EINPROGRESS,
  EINVAL,
  EISCONN,
  EOPNOTSUPP,
  MSG_FASTOPEN,
  MSG_ZEROCOPY,
  SO_EE_ORIGIN_ZEROCOPY,
  POLLOUT,
  SOL_SOCKET,
  SOL_TCP,
  SO_ZEROCOPY,
  TCP_FASTOPEN_CONNECT,
  TCP_FASTOPEN_NO_COOKIE,
  TCP_SYNCNT,
  type SockAddr,
} from '../../src/uapi.js';

const COOKIE = 'abcd1234';
const SYNACK_OPTS = (cookie?: string, mss = 1460): (string | number)[][] => [['mss', mss], ['nop'], ['nop'], ['sackOK'], ['nop'], ['wscale', 6], ...(cookie !== undefined ? [['FO', cookie]] : [])];

function peerTo(t: TcpHarness): SockAddr {
  return t.family === AF_INET6 ? { family: AF_INET6, port: t.peerPort, addr: 0, addr6: PEER6 } : { family: AF_INET, port: t.peerPort, addr: PEER_IP, addr6: null };
}

/** A harness without timestamps, as the Fast Open scripts run (the options read as packetdrill writes them). */
function harness(family: Family): TcpHarness {
  const t = new TcpHarness(family);
  t.tcp.sysctl.tcp_timestamps = 0;
  return t;
}

function newSock(t: TcpHarness): TcpSock {
  return tcpNewSock(t.tcp, t.family, t.family === AF_INET6 ? tcpv6Prot(t.tcp) : undefined);
}

/** sendto(MSG_FASTOPEN) of `len` bytes to the peer; the harness follows the new socket. */
function sendtoFastopen(t: TcpHarness, sk: TcpSock, len: number, to: SockAddr = peerTo(t)): number {
  const rc = tcpSendmsg(t.tcp, sk, Buffer.alloc(len, 0x41), MSG_FASTOPEN, to);
  if (sk.num) t.localPort = sk.num;
  t.sk = sk;
  return rc;
}

function synDataAcked(t: TcpHarness, sk: TcpSock): boolean {
  return (tcpGetInfo(t.tcp, sk).tcpi_options & TCPI_OPT_SYN_DATA) !== 0;
}

/** One connection that asks for a cookie and learns `cookie` from the SYN-ACK. */
function learnCookie(t: TcpHarness, cookie = COOKIE, mss = 1460): void {
  const sk = newSock(t);
  assert.equal(sendtoFastopen(t, sk, 0), -EINPROGRESS);
  const syn = t.out();
  assert.equal(syn.length, 1);
  // A request: the RFC's option, or the experimental one after a server ignored ours.
  assert.match(syn[0].options, /,(FO,nop,nop|FOEXP)$/);
  t.send({ flags: S | A, seq: 0, ack: 1, win: 5840, options: SYNACK_OPTS(cookie, mss) });
  t.out();
}

function fmt(s: Seg[]): string {
  return s.map((x) => `${x.flags} ${x.seq}:${x.seq + x.len}(${x.len}) ack ${x.ack} <${x.options}>`).join(' | ');
}

for (const family of FAMILIES) {
  const fam = familyName(family);
  const mss = mtuToMss(family);

  test(`${fam}: no cookie: sendto(MSG_FASTOPEN) asks for one in a data-less SYN (EINPROGRESS); the SYN-ACK's cookie is cached`, () => {
    const t = harness(family);
    const sk = newSock(t);
    assert.equal(sendtoFastopen(t, sk, 1000), -EINPROGRESS);
    const syn = t.out();
    assert.equal(fmt(syn), `S 0:0(0) ack 0 <mss ${mss},nop,nop,sackOK,nop,wscale ${sk.rcvWscale},FO,nop,nop>`);
    assert.equal(tcpFastopenCacheSize(t.tcp), 0);
    t.send({ flags: S | A, seq: 0, ack: 1, win: 5840, options: SYNACK_OPTS(COOKIE) });
    assert.equal(sk.state, TCP_ESTABLISHED);
    assert.equal(fmt(t.out()), '. 1:1(0) ack 1 <>');
    assert.equal(tcpFastopenCacheSize(t.tcp), 1);
    assert.equal(synDataAcked(t, sk), false);
    assert.equal(t.mibs.TcpExt.TCPFastOpenActive, 0);
  });

  test(`${fam}: with a cookie the SYN carries data (the cached MSS less 40 bytes of option space) and the SYN-ACK acks it: TCPFastOpenActive, TCPI_OPT_SYN_DATA, delivered 1`, () => {
    const t = harness(family);
    learnCookie(t, COOKIE, 940);
    const sk = newSock(t);
    assert.equal(sendtoFastopen(t, sk, 2000), 900);
    const syn = t.out();
    assert.equal(syn.length, 1);
    assert.equal(syn[0].flags, 'S');
    assert.equal(syn[0].len, 900);
    assert.match(syn[0].options, new RegExp(`FO ${COOKIE}`));
    assert.equal(sk.state, TCP_SYN_SENT);
    t.send({ flags: S | A, seq: 0, ack: 901, win: 5840, options: SYNACK_OPTS() });
    assert.equal(fmt(t.out()), '. 901:901(0) ack 1 <>');
    assert.equal(synDataAcked(t, sk), true);
    assert.equal(t.mibs.TcpExt.TCPFastOpenActive, 1);
    assert.equal(tcpGetInfo(t.tcp, sk).tcpi_delivered, 1);
    assert.equal(sk.sndUna, sk.sndNxt);
  });

  test(`${fam}: a SYN-ACK acking only the SYN has the SYN's data resent at once with its ACK (TCPFastOpenActiveFail)`, () => {
    const t = harness(family);
    learnCookie(t);
    const sk = newSock(t);
    assert.equal(sendtoFastopen(t, sk, 700), 700);
    t.out();
    t.send({ flags: S | A, seq: 0, ack: 1, win: 5840, options: SYNACK_OPTS(COOKIE, 1040) });
    const out = t.out();
    assert.equal(fmt(out), 'P. 1:701(700) ack 1 <>');
    assert.equal(t.mibs.TcpExt.TCPFastOpenActiveFail, 1);
    assert.equal(t.mibs.TcpExt.TCPFastOpenActive, 0);
    assert.equal(synDataAcked(t, sk), false);
    assert.equal(tcpGetInfo(t.tcp, sk).tcpi_fastopen_client_fail, 2); // TFO_DATA_NOT_ACKED
  });

  test(`${fam}: a SYN with data that times out is retransmitted plain (no data, no cookie; TCPSynRetrans), the data after the SYN-ACK`, () => {
    const t = harness(family);
    learnCookie(t);
    const sk = newSock(t);
    assert.equal(sendtoFastopen(t, sk, 1000), 1000);
    t.out();
    const before = t.mibs.TcpExt.TCPSynRetrans;
    t.time.advance(1000);
    const rtx = t.out();
    assert.equal(rtx.length, 1);
    assert.equal(rtx[0].flags, 'S');
    assert.equal(rtx[0].len, 0);
    assert.doesNotMatch(rtx[0].options, /FO/);
    assert.equal(t.mibs.TcpExt.TCPSynRetrans, before + 1);
    t.send({ flags: S | A, seq: 0, ack: 1, win: 5840, options: SYNACK_OPTS() });
    assert.equal(fmt(t.out()), 'P. 1:1001(1000) ack 1 <>');
    assert.equal(tcpGetInfo(t.tcp, sk).tcpi_fastopen_client_fail, 3); // TFO_SYN_RETRANSMITTED
    // The cookie stays cached: the next SYN carries data again.
    const sk2 = newSock(t);
    assert.equal(sendtoFastopen(t, sk2, 10), 10);
    assert.equal(t.out()[0].len, 10);
  });

  test(`${fam}: sendto(MSG_FASTOPEN) errnos: EOPNOTSUPP (client bit off, AF_UNSPEC), EALREADY while connecting, EISCONN once connected`, () => {
    const t = harness(family);
    const sk = newSock(t);
    t.tcp.sysctl.tcp_fastopen = 0;
    assert.equal(sendtoFastopen(t, sk, 10), -EOPNOTSUPP);
    t.tcp.sysctl.tcp_fastopen = 1;
    assert.equal(sendtoFastopen(t, sk, 10, { family: AF_UNSPEC, port: 0, addr: 0, addr6: null }), -EOPNOTSUPP);
    assert.equal(t.out().length, 0);
    assert.equal(sendtoFastopen(t, sk, 10), -EINPROGRESS);
    assert.equal(sendtoFastopen(t, sk, 10), -EALREADY);
    t.out();
    t.send({ flags: S | A, seq: 0, ack: 1, win: 5840, options: SYNACK_OPTS(COOKIE) });
    // The handshake ended under a non-blocking send: the next one finds it done and sends plainly.
    assert.equal(sendtoFastopen(t, sk, 10), 10);
    assert.equal(sendtoFastopen(t, sk, 10), -EISCONN);
  });

  test(`${fam}: TCP_FASTOPEN_CONNECT with a cookie: connect() returns 0 at once and is writable, the first write sends the SYN with data; connect() again is EISCONN`, () => {
    const t = harness(family);
    learnCookie(t);
    const sk = newSock(t);
    t.tcp.sysctl.tcp_fastopen = 0;
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_FASTOPEN_CONNECT, 1), -EOPNOTSUPP);
    t.tcp.sysctl.tcp_fastopen = 1;
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_FASTOPEN_CONNECT, 2), -EINVAL);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_FASTOPEN_CONNECT, 1), 0);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_TCP, TCP_FASTOPEN_CONNECT), 1);
    const rc = family === AF_INET6 ? tcpV6Connect(t.tcp, sk, PEER6, t.peerPort) : tcpConnect(t.tcp, sk, PEER_IP, t.peerPort);
    assert.equal(rc, 0);
    t.localPort = sk.num;
    assert.equal(t.out().length, 0, 'no SYN before the first write');
    assert.ok(tcpPoll(t.tcp, sk) & POLLOUT);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_FASTOPEN_CONNECT, 0), -EINVAL);
    assert.equal(rc === 0 && (family === AF_INET6 ? tcpV6Connect(t.tcp, sk, PEER6, t.peerPort) : tcpConnect(t.tcp, sk, PEER_IP, t.peerPort)), -EISCONN);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(500, 1)), 500);
    const syn = t.out();
    assert.equal(syn.length, 1);
    assert.equal(syn[0].len, 500);
    assert.match(syn[0].options, new RegExp(`FO ${COOKIE}`));
    t.send({ flags: S | A, seq: 0, ack: 501, win: 5840, options: SYNACK_OPTS() });
    assert.equal(sk.state, TCP_ESTABLISHED);
    assert.equal(synDataAcked(t, sk), true);
  });

  test(`${fam}: TCP_FASTOPEN_CONNECT without a cookie: connect() sends a cookie request (EINPROGRESS); a MSG_FASTOPEN send meanwhile is EALREADY`, () => {
    const t = harness(family);
    const sk = newSock(t);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_FASTOPEN_CONNECT, 1), 0);
    const rc = family === AF_INET6 ? tcpV6Connect(t.tcp, sk, PEER6, t.peerPort) : tcpConnect(t.tcp, sk, PEER_IP, t.peerPort);
    assert.equal(rc, -EINPROGRESS);
    t.localPort = sk.num;
    const syn = t.out();
    assert.match(syn[0].options, /,FO,nop,nop$/);
    assert.equal(sendtoFastopen(t, sk, 10), -EALREADY);
  });

  test(`${fam}: TCP_FASTOPEN_NO_COOKIE (and the sysctl's TFO_CLIENT_NO_COOKIE) send data in a SYN without any cookie option`, () => {
    const t = harness(family);
    const sk = newSock(t);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_FASTOPEN_NO_COOKIE, 1), 0);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_TCP, TCP_FASTOPEN_NO_COOKIE), 1);
    assert.equal(sendtoFastopen(t, sk, 100), 100);
    const syn = t.out();
    assert.equal(syn[0].len, 100);
    assert.doesNotMatch(syn[0].options, /FO/);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_FASTOPEN_NO_COOKIE, 0), -EINVAL, 'only before connecting');
    const t2 = harness(family);
    t2.tcp.sysctl.tcp_fastopen = 1 | 4;
    const sk2 = newSock(t2);
    assert.equal(sendtoFastopen(t2, sk2, mss * 2), mss - 40);
    assert.doesNotMatch(t2.out()[0].options, /FO/);
  });

  test(`${fam}: a cookie of invalid length (odd, or outside 4..16) is not cached; 'ip tcp_metrics flush all' forgets a valid one`, () => {
    const t = harness(family);
    learnCookie(t, 'abcdef'); // 3 bytes
    let sk = newSock(t);
    assert.equal(sendtoFastopen(t, sk, 100), -EINPROGRESS, 'no cookie: a request again');
    // No valid cookie came back: the request now tries the experimental option.
    assert.match(t.out()[0].options, /FOEXP$/);
    learnCookie(t, '00112233445566778899aabbccddeeff0011'); // 18 bytes
    sk = newSock(t);
    assert.equal(sendtoFastopen(t, sk, 100), -EINPROGRESS);
    t.out();
    learnCookie(t, '0011223344556677');
    sk = newSock(t);
    assert.equal(sendtoFastopen(t, sk, 100), 100);
    t.out();
    tcpMetricsFlushAll(t.tcp);
    assert.equal(tcpFastopenCacheSize(t.tcp), 0);
    sk = newSock(t);
    assert.equal(sendtoFastopen(t, sk, 100), -EINPROGRESS);
  });

  test(`${fam}: a SYN-ACK without a cookie for our request: the next request uses the experimental option (FOEXP)`, () => {
    const t = harness(family);
    let sk = newSock(t);
    assert.equal(sendtoFastopen(t, sk, 0), -EINPROGRESS);
    t.out();
    t.send({ flags: S | A, seq: 0, ack: 1, win: 5840, options: SYNACK_OPTS() });
    t.out();
    sk = newSock(t);
    assert.equal(sendtoFastopen(t, sk, 0), -EINPROGRESS);
    assert.match(t.out()[0].options, /FOEXP/);
  });

  test(`${fam}: MSG_FASTOPEN|MSG_ZEROCOPY: a zerocopy notification for data the SYN took, none for a cookie request`, () => {
    const t = harness(family);
    let sk = newSock(t);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(500), MSG_FASTOPEN | MSG_ZEROCOPY, peerTo(t)), -EINPROGRESS);
    t.localPort = sk.num;
    t.out();
    assert.equal(tcpRecvErrqueue(sk), -EAGAIN);
    t.send({ flags: S | A, seq: 0, ack: 1, win: 5840, options: SYNACK_OPTS(COOKIE) });
    t.out();
    sk = newSock(t);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(500), MSG_FASTOPEN | MSG_ZEROCOPY, peerTo(t)), 500);
    t.localPort = sk.num;
    t.out();
    // The SYN-data skb holds the send until the SYN-ACK acknowledges the data (skb_zcopy_set on it).
    assert.equal(tcpRecvErrqueue(sk), -EAGAIN);
    t.send({ flags: S | A, seq: 0, ack: 501, win: 5840, options: SYNACK_OPTS() });
    t.out();
    const n = tcpRecvErrqueue(sk);
    assert.ok(typeof n !== 'number', 'a notification');
    const ee = n.cmsgs[0].data;
    assert.equal(ee[4], SO_EE_ORIGIN_ZEROCOPY);
    assert.deepEqual([ee.readUInt32LE(8), ee.readUInt32LE(12)], [0, 0], 'the first send: id 0');
  });

  test(`${fam}: a SYN-ACK carrying data (and a FIN) is received in order with it: readable, CLOSE_WAIT, TCPI_OPT_SYN_DATA`, () => {
    const t = harness(family);
    learnCookie(t);
    const sk = newSock(t);
    assert.equal(sendtoFastopen(t, sk, 100), 100);
    t.out();
    t.send({ flags: S | A | F, seq: 0, ack: 101, win: 5840, payload: 300, options: SYNACK_OPTS() });
    assert.equal(fmt(t.out()), '. 101:101(0) ack 302 <>');
    assert.equal(sk.state, TCP_CLOSE_WAIT);
    const into = Buffer.alloc(1000);
    assert.equal(tcpRecvmsg(t.tcp, sk, into), 300);
    assert.equal(tcpRecvmsg(t.tcp, sk, into), 0);
    assert.equal(synDataAcked(t, sk), true);
  });

  test(`${fam}: a SYN-ACK echoing a timestamp we never sent is answered with a reset (PAWSActiveRejected); a good one then connects`, () => {
    const t = new TcpHarness(family);
    const sk = t.connect();
    const syn = t.out();
    const tsval = t.lastTsval(syn[0]);
    const opts = (ecr: number): (string | number)[][] => [['mss', 1460], ['TS', 5000, ecr], ['sackOK'], ['nop'], ['wscale', 6]];
    t.send({ flags: S | A, seq: 0, ack: 1, win: 5840, options: opts(tsval + 10_000) });
    const rst = t.out();
    assert.equal(rst.length, 1);
    assert.equal(rst[0].flags, 'R');
    assert.equal(t.mibs.TcpExt.PAWSActiveRejected, 1);
    assert.equal(sk.state, TCP_SYN_SENT);
    t.send({ flags: S | A, seq: 0, ack: 1, win: 5840, options: opts(tsval) });
    assert.equal(sk.state, TCP_ESTABLISHED);
  });

  test(`${fam}: blackhole: a Fast Open connection that got no data but a lone out-of-order FIN pauses Fast Open when it is torn down (tcp_fastopen_active_disable_ofo_check)`, () => {
    const t = harness(family);
    t.tcp.sysctl.tcp_fastopen_blackhole_timeout_sec = 60;
    learnCookie(t);
    const sk = newSock(t);
    assert.equal(sendtoFastopen(t, sk, 100), 100);
    t.out();
    t.send({ flags: S | A, seq: 0, ack: 101, win: 5840, options: SYNACK_OPTS() });
    // The server's data was dropped on the way; only its FIN arrives (out of order).
    t.send({ flags: A | F, seq: 1001, ack: 101, win: 5840 });
    t.out();
    assert.equal(t.mibs.TcpExt.TCPFastOpenBlackhole, 0);
    // tcp_disconnect (connect(AF_UNSPEC)) tears it down at once, as the socket's destruction would later.
    tcpDisconnect(t.tcp, sk);
    assert.equal(t.mibs.TcpExt.TCPFastOpenBlackhole, 1);
    const sk2 = newSock(t);
    assert.equal(sendtoFastopen(t, sk2, 100), -EINPROGRESS, 'paused: no data in the SYN');
  });

  test(`${fam}: blackhole: a Fast Open connect's third SYN timeout pauses Fast Open (TCPFastOpenBlackhole, TCPFastOpenActiveFail) for tcp_fastopen_blackhole_timeout_sec`, () => {
    const t = harness(family);
    t.tcp.sysctl.tcp_fastopen_blackhole_timeout_sec = 60;
    learnCookie(t);
    const sk = newSock(t);
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_SYNCNT, 5), 0);
    assert.equal(sendtoFastopen(t, sk, 100), 100);
    t.out();
    // Timeouts at 1 s, 2 s (linear), the third finds two retransmissions: the pause starts.
    t.time.advance(1000);
    t.time.advance(1000);
    assert.equal(t.mibs.TcpExt.TCPFastOpenBlackhole, 0);
    t.time.advance(1000);
    assert.equal(t.mibs.TcpExt.TCPFastOpenBlackhole, 1);
    assert.equal(t.mibs.TcpExt.TCPFastOpenActiveFail, 1);
    t.out();
    // Paused: no cookie, no data, no option.
    const sk2 = newSock(t);
    assert.equal(sendtoFastopen(t, sk2, 100), -EINPROGRESS);
    assert.doesNotMatch(t.out()[0].options, /FO/);
    // After the pause (60 s): data in the SYN again.
    t.time.advance(61_000);
    t.out();
    const sk3 = newSock(t);
    assert.equal(sendtoFastopen(t, sk3, 100), 100);
  });
}

test('the cookie cache is bounded: past its size the least recently used destination is forgotten', () => {
  const t = harness(AF_INET);
  const state = new TcpFastopenActiveState();
  state.maxEntries = 2;
  t.tcp.fastopenActive = state;
  const cookie = new TcpFastopenCookie(4);
  const dest = (daddr: number): TcpSock => {
    const sk = newSock(t);
    sk.rcvSaddr = 1;
    sk.daddr = daddr;
    return sk;
  };
  for (const d of [10, 11]) tcpFastopenCacheSet(t.tcp, dest(d), 1000, cookie, false, 0);
  tcpFastopenCacheSet(t.tcp, dest(10), 0, null, false, 0); // 10 used again: 11 is now the oldest
  tcpFastopenCacheSet(t.tcp, dest(12), 1000, cookie, false, 0);
  assert.equal(tcpFastopenCacheSize(t.tcp), 2);
  const got = new TcpFastopenCookie(0);
  assert.equal(tcpFastopenCacheGet(t.tcp, dest(10), got), 1000);
  assert.equal(got.len, 4);
  assert.equal(tcpFastopenCacheGet(t.tcp, dest(11), new TcpFastopenCookie(0)), 0, 'forgotten');
  assert.equal(tcpFastopenCacheGet(t.tcp, dest(12), new TcpFastopenCookie(0)), 1000);
});

for (const family of FAMILIES) {
  test(`${familyName(family)}: MSG_FASTOPEN from a bad user buffer: the SYN goes without data, with a cookie request (tcp_send_syn_data's fallback), and the send says EINPROGRESS`, () => {
    const t = harness(family);
    learnCookie(t);
    const sk = newSock(t);
    const rc = tcpSendmsg(t.tcp, sk, userBuffer(100, 0), MSG_FASTOPEN, peerTo(t));
    t.localPort = sk.num;
    assert.equal(rc, -EINPROGRESS);
    const [syn] = t.out();
    assert.equal(syn.flags, 'S');
    assert.equal(syn.len, 0, 'nothing copied from the faulting buffer');
    assert.match(syn.options, /,FO,nop,nop$/, 'a cookie request, not the cached cookie');
  });
}
