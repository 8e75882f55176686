import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, F, FAMILIES, P, S, familyName } from '../lib/tcp_harness.js';
import {
  tcpClose,
  tcpRecvmsg,
  tcpSendmsg,
  tcpSetsockopt,
  tcpShutdown,
} from '../../src/net/ipv4/tcp.js';
import { PEER6, PEER_IP, STACK6, STACK_IP, formatAddr } from '../lib/frames.js';
import { inet6LookupEstablished } from '../../src/net/ipv6/inet6_hashtables.js';
import { TCP_CLOSE, TCP_CLOSE_WAIT, TCP_ESTABLISHED, TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_LAST_ACK, TCP_TIME_WAIT } from '../../src/net/core/sock.js';
import { AF_INET6, EPIPE, ETIMEDOUT, SHUT_WR, SOL_SOCKET, SOL_TCP, SO_KEEPALIVE, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL } from '../../src/uapi.js';

const NO_TS: (string | number)[][] = [['mss', 1000], ['nop'], ['wscale', 0]];

/** The sock (a timewait one, once the connection is closed) holding the harness's 4-tuple, in its family's table. */
const twOf = (t: TcpHarness) =>
  t.family === AF_INET6
    ? inet6LookupEstablished(t.tcp.hashinfo, PEER6, 0, t.peerPort, STACK6, 0, t.localPort)
    : t.tcp.hashinfo.lookupEstablished(PEER_IP, t.peerPort, STACK_IP, t.localPort);

for (const family of FAMILIES) {
  test(`${familyName(family)}: active close: FIN_WAIT1 -> FIN_WAIT2 -> TIME_WAIT for 60 s; a retransmitted FIN is re-ACKed from our address`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    tcpClose(t.tcp, sk);
    const [fin] = t.out();
    assert.equal(fin.flags, 'F.');
    assert.equal(fin.seq, 1);
    assert.equal(sk.state, TCP_FIN_WAIT1);
    t.send({ flags: A, seq: 1, ack: 2 });
    // An orphan reaching FIN_WAIT2 hands over to a timewait sock at once (tcp_time_wait with
    // TCP_FIN_WAIT2), as Linux does when tcp_fin_timeout <= TCP_TIMEWAIT_LEN.
    assert.equal(sk.state, TCP_CLOSE);
    assert.equal((twOf(t) as unknown as { substate: number }).substate, TCP_FIN_WAIT2);
    t.send({ flags: F | A, seq: 1, ack: 2 });
    const [ack] = t.out();
    assert.equal(ack.flags, '.');
    assert.equal(ack.ack, 2);
    const tw = twOf(t);
    assert.ok(tw && tw.state === TCP_TIME_WAIT, 'a TIME_WAIT sock holds the 4-tuple');
    t.time.advance(30_000);
    t.send({ flags: F | A, seq: 1, ack: 2 });
    const [again] = t.out();
    assert.equal(again.ack, 2, 'the retransmitted FIN is ACKed again');
    assert.deepEqual([again.src, again.dst], [formatAddr(t.stackAddr), formatAddr(t.peerAddr)], 'by the tw sock, in its family');
    t.time.advance(59_999);
    assert.ok(twOf(t), 'the 2*MSL clock restarted with that FIN');
    t.time.advance(1);
    assert.equal(twOf(t), null);
    t.send({ flags: A, seq: 2, ack: 2 });
    assert.equal(t.out()[0].flags, 'R', 'after TIME_WAIT the port is closed');
  });
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: passive close: peer FIN -> CLOSE_WAIT (EOF for the reader); close -> LAST_ACK -> gone`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    t.send({ flags: F | A, seq: 1, ack: 1 });
    assert.equal(sk.state, TCP_CLOSE_WAIT);
    assert.equal(tcpRecvmsg(t.tcp, sk, Buffer.alloc(10)), 0, 'EOF');
    tcpClose(t.tcp, sk);
    const segs = t.out();
    const fin = segs.find((s) => s.flags.includes('F'))!;
    assert.equal(fin.ack, 2, 'our FIN acknowledges theirs');
    assert.equal(sk.state, TCP_LAST_ACK);
    t.send({ flags: A, seq: 2, ack: 2 });
    assert.equal(sk.state, TCP_CLOSE);
    assert.equal(t.tcp.hashinfo.established, 0);
  });

  test(`${familyName(family)}: shutdown(SHUT_WR) sends FIN, reading continues; writing gives EPIPE`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    assert.equal(tcpShutdown(t.tcp, sk, SHUT_WR), 0);
    assert.equal(t.out()[0].flags, 'F.');
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.from('x')), -EPIPE);
    t.send({ flags: A | P, seq: 1, ack: 2, payload: Buffer.from('still here') });
    const b = Buffer.alloc(100);
    assert.equal(tcpRecvmsg(t.tcp, sk, b), 10);
    assert.equal(sk.state, TCP_FIN_WAIT2);
  });

  test(`${familyName(family)}: close() with unread data sends RST (RFC 2525), not FIN`, () => {
    const t = TcpHarness.established(family);
    t.send({ flags: A | P, seq: 1, ack: 1, payload: 100 });
    t.out();
    tcpClose(t.tcp, t.sk!);
    const [r] = t.out();
    assert.equal(r.flags, 'R.');
    assert.equal(r.seq, 1);
    assert.equal(t.mibs.TcpExt.TCPAbortOnClose, 1);
  });

  test(`${familyName(family)}: SO_LINGER 0: close() aborts with RST`, () => {
    const t = TcpHarness.established(family);
    t.sk!.lingerSec = 0;
    tcpClose(t.tcp, t.sk!);
    assert.equal(t.out()[0].flags, 'R.');
  });

  test(`${familyName(family)}: orphaned FIN_WAIT2 ends after tcp_fin_timeout`, () => {
    const t = TcpHarness.established(family);
    tcpClose(t.tcp, t.sk!);
    t.out();
    t.send({ flags: A, seq: 1, ack: 2 });
    const tw = twOf(t);
    assert.ok(tw, 'held as a FIN_WAIT2 timewait sock');
    t.time.advance(60_000);
    assert.equal(twOf(t), null);
  });

  test(`${familyName(family)}: a new SYN beyond the old sequence space reuses a TIME_WAIT 4-tuple`, () => {
    const t = TcpHarness.established(family);
    tcpClose(t.tcp, t.sk!);
    t.out();
    t.send({ flags: A, seq: 1, ack: 2 });
    t.send({ flags: F | A, seq: 1, ack: 2 });
    t.out();
    t.send({ flags: S, seq: 100_000, options: NO_TS });
    const [sa] = t.out();
    assert.equal(sa.flags, 'S.');
    assert.equal(t.mibs.TcpExt.TWRecycled, 1);
  });

  test(`${familyName(family)}: keepalive: probes after TCP_KEEPIDLE, every TCP_KEEPINTVL; TCP_KEEPCNT unanswered ends it with ETIMEDOUT`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_KEEPIDLE, 10);
    tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_KEEPINTVL, 2);
    tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_KEEPCNT, 3);
    tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_KEEPALIVE, 1);
    const at: number[] = [];
    const start = t.time.now();
    for (let i = 0; i < 200; i++) {
      t.time.advance(100);
      for (const s of t.out()) {
        if (s.flags === '.') {
          assert.equal(s.seq, 0, 'a keepalive probe is snd_una - 1');
          at.push(Math.round(t.time.now() - start));
        } else {
          at.push(-1);
        }
      }
    }
    assert.deepEqual(at.slice(0, 3), [10_000, 12_000, 14_000]);
    assert.equal(sk.state, TCP_CLOSE);
    assert.equal(tcpRecvmsg(t.tcp, sk, Buffer.alloc(1)), -ETIMEDOUT);
  });

  test(`${familyName(family)}: an answered keepalive keeps the connection`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_KEEPIDLE, 10);
    tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_KEEPALIVE, 1);
    t.time.advance(10_000);
    assert.equal(t.out().length, 1);
    t.send({ flags: A, seq: 1, ack: 1 });
    t.time.advance(9_999);
    assert.deepEqual(t.out(), []);
    assert.equal(sk.state, TCP_ESTABLISHED);
  });

  test(`${familyName(family)}: a RST in TIME_WAIT ends it (tcp_rfc1337=0, as Linux); with tcp_rfc1337=1 it is ignored`, () => {
    for (const rfc1337 of [0, 1]) {
      const t = TcpHarness.established(family);
      t.tcp.sysctl.tcp_rfc1337 = rfc1337;
      tcpClose(t.tcp, t.sk!);
      t.out();
      t.send({ flags: A, seq: 1, ack: 2 });
      t.send({ flags: F | A, seq: 1, ack: 2 });
      t.out();
      t.send({ flags: 0x04, seq: 2 });
      assert.equal(twOf(t) === null, rfc1337 === 0, `tcp_rfc1337=${rfc1337}`);
    }
  });
}
