/**
 * Timer interplay Linux pins down: delayed ACKs in pingpong (interactive)
 * mode, and keepalive together with TCP_USER_TIMEOUT (tcp_keepalive_timer:
 * with a user timeout set, it, not TCP_KEEPCNT, decides when to give up;
 * tcp_clamp_rto_to_user_timeout: the RTO timer never overshoots it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, P, FAMILIES, familyName } from '../lib/tcp_harness.js';
import {
  tcpRecvmsg,
  tcpSendmsg,
  tcpSetsockopt,
} from '../../src/net/ipv4/tcp.js';
import { TCP_CLOSE } from '../../src/net/core/sock.js';
import { ETIMEDOUT, SOL_SOCKET, SOL_TCP, SO_KEEPALIVE, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_USER_TIMEOUT } from '../../src/uapi.js';

const sink = Buffer.alloc(65536);

for (const family of FAMILIES) {
  test(`${familyName(family)}: pingpong: a reply sent within ato carries the ACK; later requests are not ACKed alone`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    // First request: quick-ack mode ACKs it at once; the reply, sent at once, enters pingpong mode.
    t.send({ flags: A | P, seq: 1, ack: 1, payload: 100 });
    tcpRecvmsg(t.tcp, sk, sink);
    tcpSendmsg(t.tcp, sk, Buffer.alloc(50, 1));
    t.out();
    assert.ok(sk.ackPingpong >= t.tcp.sysctl.tcp_pingpong_thresh, 'interactive mode after a prompt reply');
    t.time.advance(100);
    // Second request: no pure ACK; the reply segment acknowledges it.
    t.send({ flags: A | P, seq: 101, ack: 51, payload: 100 });
    assert.deepEqual(t.out(), [], 'in pingpong mode the request waits for the reply to carry its ACK');
    tcpRecvmsg(t.tcp, sk, sink);
    tcpSendmsg(t.tcp, sk, Buffer.alloc(50, 2));
    const segs = t.out();
    assert.equal(segs.length, 1);
    assert.equal(segs[0].flags, 'P.');
    assert.equal(segs[0].len, 50);
    assert.equal(segs[0].ack, 201, 'the reply acknowledges the request');
    assert.equal(t.mibs.TcpExt.DelayedACKs, 0);
  });

  test(`${familyName(family)}: pingpong: a request left unanswered is ACKed by the delayed-ACK timer at ato, which leaves pingpong mode`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    t.send({ flags: A | P, seq: 1, ack: 1, payload: 100 });
    tcpRecvmsg(t.tcp, sk, sink);
    tcpSendmsg(t.tcp, sk, Buffer.alloc(50, 1));
    t.out();
    t.time.advance(100);
    t.send({ flags: A | P, seq: 101, ack: 51, payload: 100 });
    assert.deepEqual(t.out(), []);
    t.time.advance(39);
    assert.deepEqual(t.out(), [], 'nothing before the 40 ms minimum');
    t.time.advance(1);
    const [ack] = t.out();
    assert.ok(ack, 'the delayed ACK at 40 ms');
    assert.equal(ack.flags, '.');
    assert.equal(ack.ack, 201);
    assert.equal(t.mibs.TcpExt.DelayedACKs, 1);
    assert.equal(sk.ackPingpong, 0, 'a missed delayed ACK ends interactive mode (inet_csk_exit_pingpong_mode)');
  });
}

function keepalive(t: TcpHarness, idle: number, intvl: number, cnt: number, userTimeoutMs: number): { probes: number[]; rstAt: number } {
  const sk = t.sk!;
  tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_KEEPIDLE, idle);
  tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_KEEPINTVL, intvl);
  tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_KEEPCNT, cnt);
  if (userTimeoutMs) tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_USER_TIMEOUT, userTimeoutMs);
  tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_KEEPALIVE, 1);
  const start = t.time.now();
  const probes: number[] = [];
  let rstAt = -1;
  for (let i = 0; i < 600 && rstAt < 0; i++) {
    t.time.advance(100);
    for (const s of t.out()) {
      const at = Math.round(t.time.now() - start);
      if (s.flags.includes('R')) rstAt = at;
      else probes.push(at);
    }
  }
  return { probes, rstAt };
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: keepalive without a user timeout: TCP_KEEPCNT probes, then RST and ETIMEDOUT`, () => {
    const t = TcpHarness.established(family);
    const { probes, rstAt } = keepalive(t, 10, 2, 3, 0);
    assert.deepEqual(probes, [10_000, 12_000, 14_000]);
    assert.equal(rstAt, 16_000);
    assert.equal(t.sk!.state, TCP_CLOSE);
    assert.equal(tcpRecvmsg(t.tcp, t.sk!, sink), -ETIMEDOUT);
  });

  test(`${familyName(family)}: keepalive with TCP_USER_TIMEOUT longer than the probes: the user timeout, not TCP_KEEPCNT, decides`, () => {
    const t = TcpHarness.established(family);
    const { probes, rstAt } = keepalive(t, 10, 2, 3, 20_000);
    assert.deepEqual(probes, [10_000, 12_000, 14_000, 16_000, 18_000], 'probing goes on past TCP_KEEPCNT');
    assert.equal(rstAt, 20_000);
    assert.equal(tcpRecvmsg(t.tcp, t.sk!, sink), -ETIMEDOUT);
  });

  test(`${familyName(family)}: keepalive with TCP_USER_TIMEOUT shorter than TCP_KEEPIDLE: one probe is still sent before giving up`, () => {
    const t = TcpHarness.established(family);
    const { probes, rstAt } = keepalive(t, 10, 2, 9, 5_000);
    assert.deepEqual(probes, [10_000]);
    assert.equal(rstAt, 12_000);
  });

  test(`${familyName(family)}: an answer to a probe resets the count: the user timeout runs from what was last heard`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_KEEPIDLE, 10);
    tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_KEEPINTVL, 2);
    tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_USER_TIMEOUT, 15_000);
    tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_KEEPALIVE, 1);
    t.time.advance(10_000);
    assert.equal(t.out().length, 1, 'first probe');
    t.send({ flags: A, seq: 1, ack: 1 });
    assert.equal(sk.probesOut, 0);
    // Silence again: the next probe comes a full TCP_KEEPIDLE after the answer.
    t.time.advance(9_900);
    assert.deepEqual(t.out(), []);
    t.time.advance(100);
    assert.equal(t.out().length, 1);
    assert.notEqual(sk.state, TCP_CLOSE);
  });

  test(`${familyName(family)}: TCP_USER_TIMEOUT with unacknowledged data: the abort comes at the timeout, not at the next backed-off RTO`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_USER_TIMEOUT, 5000);
    tcpSendmsg(t.tcp, sk, Buffer.alloc(100, 1));
    t.out();
    const start = t.time.now();
    const retrans: number[] = [];
    let closedAt = -1;
    let rst = false;
    for (let i = 0; i < 1000 && closedAt < 0; i++) {
      t.time.advance(10);
      for (const s of t.out()) {
        if (s.flags.includes('R')) rst = true;
        else if (s.len) retrans.push(t.time.now() - start);
      }
      if (sk.state === TCP_CLOSE) closedAt = t.time.now() - start;
    }
    // The clock starts at the first retransmission (retrans_stamp is stamped
    // from the skb just retransmitted), and tcp_clamp_rto_to_user_timeout
    // makes a timer fire exactly when it runs out, between backed-off RTOs.
    assert.ok(retrans.length >= 3, `retransmissions at ${retrans.join(', ')}`);
    const due = retrans[0] + 5000;
    assert.ok(closedAt >= due && closedAt <= due + 10, `aborted at ${closedAt} ms, due at ${due} (retransmissions at ${retrans.join(', ')})`);
    assert.ok(!retrans.some((r) => r > due), 'no retransmission after the timeout');
    assert.equal(rst, false, 'a user-timeout abort sends no RST (tcp_write_err)');
    assert.equal(tcpRecvmsg(t.tcp, sk, sink), -ETIMEDOUT);
  });
}
