/**
 * Opening TCP connections, passive and active, in both address families
 * where the behaviour is the same (the MSS follows the family's header):
 * SYN-ACK and SYN options, retransmission backoff, the accept and SYN
 * queues, resets, simultaneous open, SYN cookies, ICMP errors about a
 * request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, FAMILIES, S, A, R, familyName, mtuToMss, type PeerSend } from '../lib/tcp_harness.js';
import { tcpAccept, tcpConnect, tcpGetsockopt, tcpListen, tcpRecvmsg, tcpSendmsg, tcpSetsockopt } from '../../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { inetStreamHasPeer } from '../../src/net/ipv4/af_inet.js';
import { PEER6, PEER_IP, formatAddr, type Family } from '../lib/frames.js';
import { ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, ICMP_PORT_UNREACH } from '../../src/wire/icmp.js';
import { ICMPV6_ADDR_UNREACH, ICMPV6_DEST_UNREACH, ICMPV6_PORT_UNREACH } from '../../src/wire/icmpv6.js';
import { TCP_CLOSE, TCP_ESTABLISHED, TCP_SYN_RECV, TCP_SYN_SENT } from '../../src/net/core/sock.js';
import { tcpV6Connect } from '../../src/net/ipv6/tcp_ipv6.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { AF_INET, AF_INET6, EAGAIN, EALREADY, ECONNREFUSED, ECONNRESET, EINPROGRESS, EINVAL, EISCONN, ENOTCONN, EPIPE, ETIMEDOUT, SOL_SOCKET, SO_ERROR, SO_SNDBUF } from '../../src/uapi.js';

/** connect(2) to the peer's port 80 in the harness's family. */
function connectAgain(t: TcpHarness, sk: TcpSock): number {
  return t.family === AF_INET6 ? tcpV6Connect(t.tcp, sk, PEER6, 80) : tcpConnect(t.tcp, sk, PEER_IP, 80);
}

/**
 * ICMP destination-unreachable codes for a request sock (tcp_req_err):
 * IPv4 aborts the request for net/host unreachable only (tcp_v4_err), IPv6
 * when icmpv6_err_convert calls the code fatal (port unreachable, not address).
 */
const UNREACH: Record<Family, { type: number; fatal: number; soft: number }> = {
  [AF_INET]: { type: ICMP_DEST_UNREACH, fatal: ICMP_HOST_UNREACH, soft: ICMP_PORT_UNREACH },
  [AF_INET6]: { type: ICMPV6_DEST_UNREACH, fatal: ICMPV6_PORT_UNREACH, soft: ICMPV6_ADDR_UNREACH },
};

/** The SYN-ACK window: 65536 of tcp_rmem[1]'s space, rounded down to the MSS less timestamps (1448, 1428). */
const SYNACK_WIN: Record<Family, number> = { [AF_INET]: 65160, [AF_INET6]: 64260 };

for (const family of FAMILIES) {
  const fam = familyName(family);
  const mss = mtuToMss(family);

  test(`${fam}: passive open: SYN-ACK from our address, options in Linux order, MSS from the MTU, window from the buffer, wscale from tcp_rmem[2]`, () => {
    const t = new TcpHarness(family);
    t.listen();
    t.send({ flags: S, seq: 0, win: 65535, options: [['mss', 1460], ['sackOK'], ['TS', 100, 0], ['nop'], ['wscale', 7]] });
    const out = t.out();
    assert.equal(out.length, 1);
    const [sa] = out;
    assert.equal(sa.flags, 'S.');
    assert.equal(sa.ack, 1);
    assert.deepEqual([sa.src, sa.sport, sa.dst, sa.dport], [formatAddr(t.stackAddr), 8080, formatAddr(t.peerAddr), 54321]);
    // tcp_rmem[1] 131072 -> 65536 of window space, rounded down to the MSS less timestamps.
    assert.equal(sa.win, SYNACK_WIN[family]);
    const tsval = t.lastTsval(sa);
    assert.equal(sa.options, `mss ${mss},sackOK,TS val ${tsval} ecr 100,nop,wscale 7`);
    // The final ACK completes the handshake silently.
    t.send({ flags: A, seq: 1, ack: 1, options: [['nop'], ['nop'], ['TS', 101, tsval]] });
    assert.deepEqual(t.out(), []);
  });

  test(`${fam}: the final ACK creates the child; accept() returns it ESTABLISHED`, () => {
    const t = new TcpHarness(family);
    const l = t.listen();
    assert.equal(tcpAccept(t.tcp, l), -EAGAIN);
    const c = t.accept();
    assert.equal(c.state, TCP_ESTABLISHED);
    assert.equal(t.mibs.Tcp.PassiveOpens, 1);
    assert.equal(t.mibs.Tcp.CurrEstab, 1);
    assert.deepEqual(t.out(), [], 'nothing sent for the final ACK');
    assert.equal(c.mssCache, 1000);
  });

  test(`${fam}: SYN-ACK retransmitted with backoff 1, 2, 4, 8, 16 s, then the request is dropped`, () => {
    const t = new TcpHarness(family);
    t.listen();
    t.send({ flags: S, seq: 0, options: [['mss', 1460]] });
    t.out();
    const at: number[] = [];
    for (let i = 0; i < 70; i++) {
      t.time.advance(1000);
      for (const s of t.out()) {
        assert.equal(s.flags, 'S.');
        at.push(i + 1);
      }
    }
    assert.deepEqual(at, [1, 3, 7, 15, 31]);
    t.send({ flags: A, seq: 1, ack: 1 });
    assert.equal(t.out()[0].flags, 'R', 'the request is gone: the ACK is reset by the listener');
  });

  test(`${fam}: a full accept queue drops the final ACK; the SYN-ACK retransmission lets the peer retry`, () => {
    const t = new TcpHarness(family);
    const l = t.listen(1);
    // Three handshakes; the third SYN comes before the queue fills (a SYN finding it full is itself dropped).
    const isn = new Map<number, number>();
    const syn = (port: number) => {
      t.peerPort = port;
      t.send({ flags: S, seq: 0, options: [['mss', 1000]] });
      const [sa] = t.out();
      assert.equal(sa.flags, 'S.');
      isn.set(port, t.stackIsn);
    };
    const ack = (port: number) => {
      t.peerPort = port;
      t.stackIsn = isn.get(port)!;
      t.send({ flags: A, seq: 1, ack: 1 });
    };
    syn(54401);
    ack(54401);
    syn(54402);
    syn(54403);
    ack(54402);
    assert.equal(l.acceptQueue.length, 2, 'backlog 1 holds two children: sk_acceptq_is_full is ">"');
    assert.equal(t.mibs.TcpExt.ListenOverflows, 0);
    // The third final ACK finds the queue full: dropped, counted, no child, nothing sent.
    ack(54403);
    assert.deepEqual(t.out(), []);
    assert.equal(l.acceptQueue.length, 2, 'no child queued');
    assert.equal(t.mibs.Tcp.PassiveOpens, 2, 'no child created');
    assert.equal(t.mibs.TcpExt.ListenOverflows, 1);
    assert.equal(t.mibs.TcpExt.ListenDrops, 1);
    assert.equal(l.reqQlen, 1, 'the request stays');
    // Its SYN-ACK timer resends the SYN-ACK; once accept() makes room, the peer's ACK completes it.
    t.time.advance(1000);
    const [again] = t.out();
    assert.equal(again.flags, 'S.');
    assert.equal(again.seq, 0);
    assert.equal(again.ack, 1);
    assert.equal(t.mibs.TcpExt.TCPSynRetrans, 1);
    assert.equal(typeof tcpAccept(t.tcp, l), 'object');
    ack(54403);
    assert.equal(l.reqQlen, 0);
    assert.equal(l.acceptQueue.length, 2);
    assert.equal(t.mibs.Tcp.PassiveOpens, 3);
    assert.equal(t.mibs.TcpExt.ListenOverflows, 1);
  });

  test(`${fam}: ACK to a listener without a request gets a reset with seq = ack`, () => {
    const t = new TcpHarness(family);
    t.listen();
    t.stackIsn = 0;
    t.send({ flags: A, seq: 5, ack: 777 });
    const [r] = t.out();
    assert.equal(r.flags, 'R');
    assert.equal(r.tcpFlags, R, 'RST alone: no ACK for a segment that had one');
    assert.equal(r.seq, 777, "the RST's sequence number is the offending segment's ACK");
    assert.equal(t.mibs.Tcp.OutRsts, 1);
  });

  test(`${fam}: active open: SYN options in Linux order; the SYN-ACK completes it and is ACKed at once`, () => {
    const t = new TcpHarness(family);
    const sk = t.connect();
    const [syn] = t.out();
    assert.equal(syn.flags, 'S');
    assert.equal(syn.win, 65535 > sk.rcvWnd ? sk.rcvWnd : 65535);
    assert.match(syn.options, new RegExp(`^mss ${mss},sackOK,TS val \\d+ ecr 0,nop,wscale 7$`));
    assert.ok(t.localPort >= 32768 && t.localPort <= 60999, `ephemeral port ${t.localPort}`);
    assert.equal(sk.state, TCP_SYN_SENT);
    t.send({ flags: S | A, seq: 0, ack: 1, win: 29200, options: [['mss', 1460], ['sackOK'], ['TS', 5000, t.lastTsval(syn)], ['nop'], ['wscale', 7]] });
    const [ack] = t.out();
    assert.equal(ack.flags, '.');
    assert.equal(ack.seq, 1);
    assert.equal(ack.ack, 1);
    assert.match(ack.options, /^nop,nop,TS val \d+ ecr 5000$/);
    assert.equal(sk.state, TCP_ESTABLISHED);
    assert.equal(sk.mssCache, Math.min(1460, mss) - 12, 'the smaller MSS less the timestamp option');
    assert.equal(sk.sndWnd, 29200 * 128 / 128 * 1, 'the SYN-ACK window is not scaled');
    assert.equal(t.mibs.Tcp.ActiveOpens, 1);
  });

  test(`${fam}: SYN retransmissions: linear for the first timeouts, then doubling; ETIMEDOUT after tcp_syn_retries + 4`, () => {
    const t = new TcpHarness(family);
    const sk = t.connect();
    t.out();
    const at: number[] = [];
    for (let i = 0; i < 140; i++) {
      t.time.advance(1000);
      for (const s of t.out()) {
        assert.equal(s.flags, 'S');
        assert.equal(s.seq, 0);
        at.push(i + 1);
      }
    }
    assert.deepEqual(at, [1, 2, 3, 4, 5, 7, 11, 19, 35, 67]);
    assert.equal(sk.state, TCP_CLOSE);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_SOCKET, SO_ERROR), ETIMEDOUT);
    assert.equal(t.mibs.Tcp.AttemptFails, 1);
  });

  test(`${fam}: RST answering our SYN: ECONNREFUSED`, () => {
    const t = new TcpHarness(family);
    const sk = t.connect();
    t.out();
    t.send({ flags: R | A, seq: 0, ack: 1 });
    assert.equal(sk.state, TCP_CLOSE);
    assert.equal(tcpRecvmsg(t.tcp, sk, Buffer.alloc(10)), -ECONNREFUSED);
    assert.equal(connectAgain(t, sk) < 0, true);
  });

  test(`${fam}: a SYN-ACK acknowledging the wrong sequence is reset and the attempt goes on`, () => {
    const t = new TcpHarness(family);
    const sk = t.connect();
    t.out();
    t.send({ flags: S | A, seq: 0, ack: 77 });
    const [r] = t.out();
    assert.equal(r.flags, 'R');
    assert.equal(r.seq, 77);
    assert.equal(sk.state, TCP_SYN_SENT);
  });

  test(`${fam}: simultaneous open: SYN in SYN_SENT -> SYN_RECV and a SYN-ACK; its ACK establishes`, () => {
    const t = new TcpHarness(family);
    const sk = t.connect();
    t.out();
    t.send({ flags: S, seq: 0, options: [['mss', 1460]] });
    const [sa] = t.out();
    assert.equal(sa.flags, 'S.');
    assert.equal(sa.seq, 0);
    assert.equal(sa.ack, 1);
    assert.equal(sk.state, TCP_SYN_RECV);
    t.send({ flags: A, seq: 1, ack: 1 });
    assert.equal(sk.state, TCP_ESTABLISHED);
  });

  test(`${fam}: tcp_abort_on_overflow=1: an ACK that finds the accept queue full is answered with a reset`, () => {
    const t = new TcpHarness(family);
    t.tcp.sysctl.tcp_abort_on_overflow = 1;
    t.listen(1);
    // One connection made first; then two SYNs (request socks: the SYN queue holds backlog + 1), whose
    // ACKs come once the first is queued: the second finds the accept queue full (more than the backlog).
    // (A SYN past a full SYN queue would get a cookie, and a cookie's ACK is dropped, never reset.)
    t.peerPort = 54399;
    t.send({ flags: S, seq: 0, options: [['mss', 1000]] });
    assert.equal(t.out()[0].flags, 'S.');
    t.send({ flags: A, seq: 1, ack: 1 });
    assert.deepEqual(t.out(), []);
    const synacks: number[] = [];
    for (const port of [54400, 54401]) {
      t.peerPort = port;
      t.send({ flags: S, seq: 0, options: [['mss', 1000]] });
      assert.equal(t.out()[0].flags, 'S.');
      synacks.push(t.stackIsn);
    }
    t.peerPort = 54400;
    t.stackIsn = synacks[0];
    t.send({ flags: A, seq: 1, ack: 1 });
    assert.deepEqual(t.out(), []);
    t.peerPort = 54401;
    t.stackIsn = synacks[1];
    t.send({ flags: A, seq: 1, ack: 1 });
    const [r] = t.out();
    assert.equal(r.flags, 'R');
    assert.equal(t.mibs.TcpExt.ListenOverflows, 1);
  });

  test(`${fam}: an ICMP error about our SYN-ACK: a fatal one drops the request (tcp_req_err), a soft one does not, another ISN is out of window`, () => {
    const t = new TcpHarness(family);
    const l = t.listen(4);
    t.send({ flags: S, seq: 0, options: [['mss', 1460]] });
    t.out();
    assert.equal(l.reqQlen, 1);
    // The errors arrive from the wire, quoting our SYN-ACK (our address and port to the peer's).
    const u = UNREACH[family];
    const synack = (seq: number) => t.ourPacket({ seq: seq >>> 0, ack: (t.peerIsn + 1) >>> 0, flags: S | A });
    t.icmpError(u.type, u.fatal, 0, synack(t.stackIsn + 7));
    assert.equal(l.reqQlen, 1, 'not our ISN: ignored');
    assert.equal(t.mibs.TcpExt.OutOfWindowIcmps, 1);
    t.icmpError(u.type, u.soft, 0, synack(t.stackIsn));
    assert.equal(l.reqQlen, 1, 'a soft error is not fatal to a request');
    t.icmpError(u.type, u.fatal, 0, synack(t.stackIsn));
    assert.equal(l.reqQlen, 0, 'a fatal one is');
    assert.equal(t.mibs.TcpExt.ListenDrops, 1);
    assert.equal(t.tcp.hashinfo.established, 0);
  });
}

test("passive open with packetdrill's sysctls reproduces seed 000's SYN-ACK: win 65535, wscale 8", () => {
  const t = new TcpHarness(AF_INET);
  t.tcp.sysctl.tcp_rmem = [4096, 540000, 15 * 1024 * 1024];
  t.listen();
  t.send({ flags: S, seq: 0, win: 50000, options: [['mss', 1000], ['nop'], ['wscale', 0]] });
  const [sa] = t.out();
  assert.equal(sa.flags, 'S.');
  assert.equal(sa.win, 65535);
  assert.equal(sa.options, 'mss 1460,nop,wscale 8');
});

test('SO_SNDBUF stores twice the value (seed 000: 21000 reads back 42000)', () => {
  const t = new TcpHarness(AF_INET);
  const c = t.accept();
  assert.equal(tcpSetsockopt(t.tcp, c, SOL_SOCKET, SO_SNDBUF, 21000), 0);
  assert.equal(tcpGetsockopt(t.tcp, c, SOL_SOCKET, SO_SNDBUF), 42000);
});

test('SYN cookies: past a full SYN queue the SYN-ACK carries a cookie; its ACK builds the connection', () => {
  const t = new TcpHarness(AF_INET);
  const l = t.listen(1);
  // Two half-open connections fill the queue (qlen > backlog).
  for (const port of [40001, 40002]) {
    t.peerPort = port;
    t.send({ flags: S, seq: 0, options: [['mss', 1460]] });
  }
  t.out();
  assert.equal(l.reqQlen, 2);
  t.peerPort = 40003;
  t.send({ flags: S, seq: 0, win: 29200, options: [['mss', 1460], ['sackOK'], ['TS', 700, 0], ['nop'], ['wscale', 7]] });
  const [sa] = t.out();
  assert.equal(sa.flags, 'S.');
  assert.equal(t.mibs.TcpExt.SyncookiesSent, 1);
  assert.equal(l.reqQlen, 2, 'no request sock for the cookie');
  const tsval = t.lastTsval(sa);
  assert.equal(tsval & 0x1f, 0x10 | 7, 'TSval carries SACK and wscale 7');
  // A forged ACK fails.
  t.send({ flags: A, seq: 1, ack: 12345, options: [['nop'], ['nop'], ['TS', 701, tsval]] });
  assert.equal(t.out()[0].flags, 'R');
  assert.equal(t.mibs.TcpExt.SyncookiesFailed, 1);
  // The real one succeeds.
  t.send({ flags: A, seq: 1, ack: 1, win: 229, options: [['nop'], ['nop'], ['TS', 701, tsval]] });
  assert.equal(t.mibs.TcpExt.SyncookiesRecv, 1);
  const c = tcpAccept(t.tcp, l);
  assert.ok(typeof c !== 'number');
  assert.equal(c.state, TCP_ESTABLISHED);
  assert.equal(c.sndWscale, 7);
  assert.equal(c.sackOk, true);
  assert.equal(c.mssCache, 1448);
  assert.equal(c.sndWnd, 229 * 128);
});

test('SYN cookies with a full accept queue: the cookie\'s ACK is dropped, not reset (Linux discards it), and builds the connection once there is room', () => {
  const t = new TcpHarness(AF_INET);
  const l = t.listen(1);
  for (const port of [40001, 40002]) {
    t.peerPort = port;
    t.send({ flags: S, seq: 0, options: [['mss', 1460]] });
  }
  t.out();
  // Three cookie SYNs first (a SYN finding the accept queue full would be dropped), then their ACKs.
  const acks = new Map<number, PeerSend>();
  const isns = new Map<number, number>();
  for (const port of [40003, 40004, 40005]) {
    t.peerPort = port;
    t.send({ flags: S, seq: 0, options: [['mss', 1460], ['sackOK'], ['TS', 700, 0], ['nop'], ['wscale', 7]] });
    const [sa] = t.out();
    assert.equal(sa.flags, 'S.');
    acks.set(port, { flags: A, seq: 1, ack: 1, win: 229, options: [['nop'], ['nop'], ['TS', 701, t.lastTsval(sa)]] });
    isns.set(port, t.stackIsn);
  }
  const ack = (port: number) => {
    t.peerPort = port;
    t.stackIsn = isns.get(port)!;
    t.send(acks.get(port)!);
    return t.out();
  };
  assert.deepEqual(ack(40003), []);
  assert.deepEqual(ack(40004), []);
  assert.equal(l.acceptQueue.length, 2, 'backlog 1 holds two (sk_acceptq_is_full: more than the backlog)');
  const overflowsBefore = t.mibs.TcpExt.ListenOverflows;
  assert.deepEqual(ack(40005), [], 'no reset for a valid cookie the full queue could not take');
  assert.equal(t.mibs.TcpExt.ListenOverflows, overflowsBefore + 1);
  assert.equal(l.acceptQueue.length, 2);
  assert.equal(t.mibs.TcpExt.SyncookiesRecv, 3, 'a valid cookie is counted before the queue is looked at, as Linux does');
  // The program accepts; the peer's next ACK for the same cookie (its data would carry it too) makes the connection.
  for (let i = 0; i < 2; i++) assert.ok(typeof tcpAccept(t.tcp, l) !== 'number');
  assert.deepEqual(ack(40005), []);
  const c = tcpAccept(t.tcp, l);
  assert.ok(typeof c !== 'number');
  assert.equal(c.state, TCP_ESTABLISHED);
  assert.equal(c.dport, 40005);
});

/**
 * connect() on a socket that is not fresh, as __inet_stream_connect answers
 * it from struct socket's state (measured against Linux 6.18 by
 * test/integration/errno_matrix.test.ts): a listener and any socket that
 * ever connected say EISCONN, a reset one too; a non-blocking connect says
 * EALREADY while the handshake runs, 0 once after it, then EISCONN; a
 * refused one reports the error once and may then start over.
 */
for (const family of FAMILIES) {
  const fam = familyName(family);
  test(`${fam}: connect() on a listener and on an accepted, then reset, connection: EISCONN`, () => {
    const t = new TcpHarness(family);
    const l = t.listen();
    assert.equal(connectAgain(t, l), -EISCONN);
    const c = t.accept();
    t.out();
    assert.equal(connectAgain(t, c), -EISCONN);
    t.send({ flags: R, seq: 1 });
    assert.equal(c.state, TCP_CLOSE);
    assert.equal(connectAgain(t, c), -EISCONN, 'still connected as far as the socket layer knows');
    assert.equal(tcpGetsockopt(t.tcp, c, SOL_SOCKET, SO_ERROR), ECONNRESET, 'and the reset is still pending');
    // inet_listen refuses it too, and getpeername has no peer to name in CLOSE; accept's view (peer 2) has.
    assert.equal(tcpListen(t.tcp, c, 1), -EINVAL);
    assert.equal(inetStreamHasPeer(c, true), false);
    assert.equal(inetStreamHasPeer(c, 2), true);
  });

  test(`${fam}: a non-blocking connect: EALREADY during the handshake, 0 once it is done, EISCONN after`, () => {
    const t = new TcpHarness(family);
    const sk = t.connect();
    const [syn] = t.out();
    assert.equal(syn.flags, 'S');
    assert.equal(connectAgain(t, sk), -EALREADY);
    t.send({ flags: S | A, seq: 0, ack: 1, options: [['mss', 1000]] });
    assert.equal(sk.state, TCP_ESTABLISHED);
    assert.equal(connectAgain(t, sk), 0);
    assert.equal(connectAgain(t, sk), -EISCONN);
  });

  test(`${fam}: a refused connect reports ECONNREFUSED to the next connect(), which may then start over`, () => {
    const t = new TcpHarness(family);
    const sk = t.connect();
    t.out();
    t.send({ flags: R | A, seq: 0, ack: 1 });
    assert.equal(connectAgain(t, sk), -ECONNREFUSED);
    assert.equal(connectAgain(t, sk), -EINPROGRESS, 'SS_UNCONNECTED again: a new attempt');
    const [syn] = t.out();
    assert.equal(syn.flags, 'S');
  });
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: send on a socket that never connected, bound or not, or listening: EPIPE (sk_stream_wait_connect); a read: ENOTCONN`, () => {
    const t = new TcpHarness(family);
    const fresh = tcpNewSock(t.tcp, family);
    const listener = t.listen();
    for (const sk of [fresh, listener]) {
      assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(10)), -EPIPE);
      assert.equal(tcpRecvmsg(t.tcp, sk, Buffer.alloc(10)), -ENOTCONN);
    }
    assert.deepEqual(t.out(), []);
  });
}
