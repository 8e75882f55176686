/**
 * A peer that stops answering while data waits: the connection is given up
 * when Linux gives it up (tcp_write_timeout with tcp_retries2 or
 * TCP_USER_TIMEOUT on the RTO path; tcp_probe_timer with tcp_retries2 or
 * TCP_USER_TIMEOUT on the zero-window probe path; tcp_rtx_probe0_timed_out
 * when the window shrank to nothing under data in flight), and what it
 * held comes back: the write queue's pages, its place in the established
 * hash, its port, TCPAbortOnTimeout counted, ETIMEDOUT for its owner.
 *
 * The expected times are Linux's, computed here from its rules: RTOs
 * doubling from the connection's RTO up to TCP_RTO_MAX (120 s), the
 * retransmission clock starting at the first retransmission, and
 * tcp_model_timeout(tcp_retries2 = 15, TCP_RTO_MIN) = 924.6 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { A, FAMILIES, TcpHarness, familyName } from '../lib/tcp_harness.js';
import { tcpClose, tcpRecvmsg, tcpSendmsg, tcpSetsockopt } from '../../src/net/ipv4/tcp.js';
import { TCP_CLOSE } from '../../src/net/core/sock.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import type { SndPage } from '../../src/net/ipv4/tcp_rcvq.js';
import { ETIMEDOUT, SOL_TCP, TCP_USER_TIMEOUT } from '../../src/uapi.js';

const RTO_MIN = 200;
const RTO_MAX = 120_000;

/** tcp_model_timeout(boundary, rto_base): the time `boundary` doubling retransmissions take. */
function modelTimeout(boundary: number, rtoBase: number): number {
  const thresh = Math.floor(Math.log2(RTO_MAX / rtoBase));
  if (boundary <= thresh) return ((2 << boundary) - 1) * rtoBase;
  return ((2 << thresh) - 1) * rtoBase + (boundary - thresh) * RTO_MAX;
}

/** When the timer fires the n-th time (n from 1) after being armed at 0 with `rto`, doubling up to RTO_MAX. */
function fireAt(n: number, rto: number): number {
  let t = 0;
  for (let k = 0; k < n; k++) t += Math.min(rto * 2 ** k, RTO_MAX);
  return t;
}

interface Run {
  /** Data segments the stack sent (retransmissions, probes with data), at ms from the start. */
  data: number[];
  /** Window probes without data (snd_una - 1). */
  probes: number[];
  resets: number;
  /** When the socket reached CLOSE, ms from the start; -1 if it did not within the bound. */
  closedAt: number;
}

/**
 * Run the clock from timer to timer (for at most `limit` ms), taking what
 * the stack sends, until sk closes; `answer` is called for each window
 * probe seen.
 */
function runUntilClosed(t: TcpHarness, sk: TcpSock, limit: number, answer?: () => void): Run {
  const start = t.time.now();
  const r: Run = { data: [], probes: [], resets: 0, closedAt: -1 };
  for (let i = 0; i < 10_000 && r.closedAt < 0; i++) {
    const next = t.time.timers.next();
    if (next - start > limit) break;
    t.time.advance(Math.max(0, next - t.time.now()));
    for (const s of t.out()) {
      const at = s.at - start;
      if (s.flags.includes('R')) r.resets++;
      else if (s.len) r.data.push(at);
      else {
        r.probes.push(at);
        answer?.();
      }
    }
    if (sk.state === TCP_CLOSE) r.closedAt = t.time.now() - start;
  }
  return r;
}

/** The pages of sk's write queue, to see them returned. */
function queuePages(sk: TcpSock): SndPage[] {
  const pages: SndPage[] = [];
  for (let skb = sk.wqHead; skb; skb = skb.next) if (skb.page) pages.push(skb.page);
  return pages;
}

/** What an aborted connection must have given back, and said to its owner. */
function assertGivenUp(t: TcpHarness, sk: TcpSock, pages: SndPage[], abortsBefore: number): void {
  assert.equal(sk.state, TCP_CLOSE);
  assert.equal(t.mibs.TcpExt.TCPAbortOnTimeout - abortsBefore, 1, 'TCPAbortOnTimeout');
  assert.equal(sk.wqHead, null, 'the write queue is freed');
  assert.equal(sk.wmemQueued, 0);
  assert.equal(sk.packetsOut, 0);
  assert.ok(pages.length > 0 && pages.every((p) => p.refs === 0), 'every page of it went back to the pool');
  assert.equal(sk.hashLinks.inEhash, false, 'out of the established hash');
  assert.equal(tcpRecvmsg(t.tcp, sk, Buffer.alloc(10)), -ETIMEDOUT, 'the owner reads ETIMEDOUT');
  // The peer's next segment finds no connection.
  t.send({ flags: A, seq: 1, ack: 1 });
  assert.equal(t.out()[0]?.flags, 'R', 'the 4-tuple answers with a reset');
  // The port bind() named for the listener stays the child's until close(), then goes (tcp_v4_destroy_sock).
  const tb = t.tcp.hashinfo.bhash.bucket(t.localPort)!;
  const owners = tb.count;
  tcpClose(t.tcp, sk);
  assert.equal(tb.count, owners - 1, 'close() releases its port');
  assert.equal(t.tcp.socks.has(sk), false, 'and the socket');
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: data in flight, the peer silent: tcp_retries2 gives up at the first RTO past 924.6 s of retransmitting, as Linux`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    const aborts = t.mibs.TcpExt.TCPAbortOnTimeout;
    assert.equal(t.tcp.sysctl.tcp_retries2, 15);
    const rto = sk.rto;
    tcpSendmsg(t.tcp, sk, Buffer.alloc(3000, 1));
    assert.equal(t.out().length, 3);
    const pages = queuePages(sk);
    const r = runUntilClosed(t, sk, 1_200_000);
    // Linux: retrans_stamp is the first retransmission (at one RTO); the write timeout is
    // checked as each RTO fires, before it retransmits.
    const budget = modelTimeout(15, RTO_MIN);
    let n = 1;
    while (fireAt(n, rto) - fireAt(1, rto) < budget) n++;
    assert.equal(budget, 924_600);
    assert.deepEqual(r.data, Array.from({ length: n - 1 }, (_, i) => fireAt(i + 1, rto)), 'one retransmission per RTO, doubling to 120 s');
    assert.equal(r.closedAt, fireAt(n, rto), `given up at the RTO after ${n - 1} retransmissions`);
    assert.equal(r.resets, 0, 'tcp_write_err sends no RST');
    assertGivenUp(t, sk, pages, aborts);
  });

  test(`${familyName(family)}: an orphan with data in flight: tcp_orphan_retries (0: 8 while the RTO is short) ends it and frees it`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    const aborts = t.mibs.TcpExt.TCPAbortOnTimeout;
    const rto = sk.rto;
    tcpSendmsg(t.tcp, sk, Buffer.alloc(3000, 1));
    t.out();
    const pages = queuePages(sk);
    tcpClose(t.tcp, sk);
    assert.equal(t.tcp.orphans.count, 1);
    const r = runUntilClosed(t, sk, 1_200_000);
    const budget = modelTimeout(8, RTO_MIN);
    let n = 1;
    while (fireAt(n, rto) - fireAt(1, rto) < budget) n++;
    assert.equal(r.closedAt, fireAt(n, rto));
    assert.equal(t.mibs.TcpExt.TCPAbortOnTimeout - aborts, 1);
    assert.ok(pages.every((p) => p.refs === 0), 'the write queue went back');
    assert.equal(t.tcp.socks.has(sk), false, 'the orphan is destroyed');
    assert.equal(t.tcp.orphans.count, 0);
    assert.equal(sk.hashLinks.bound, false, 'its port is released');
  });

  test(`${familyName(family)}: a zero window and no answer to the probes: tcp_retries2 probes, then given up, as Linux`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    const aborts = t.mibs.TcpExt.TCPAbortOnTimeout;
    tcpSendmsg(t.tcp, sk, Buffer.alloc(1000, 1));
    t.out();
    // The peer takes it and closes its window; more data waits.
    t.send({ flags: A, seq: 1, ack: 1001, win: 0 });
    tcpSendmsg(t.tcp, sk, Buffer.alloc(2000, 2));
    assert.deepEqual(t.out(), [], 'nothing may go into a zero window');
    const pages = queuePages(sk);
    const base = Math.max(sk.rto, RTO_MIN);
    const r = runUntilClosed(t, sk, 1_200_000);
    // tcp_probe_timer: one probe per firing while icsk_probes_out < tcp_retries2, then tcp_write_err.
    assert.deepEqual(r.probes, Array.from({ length: 15 }, (_, i) => fireAt(i + 1, base)), '15 probes, backing off to 120 s');
    assert.deepEqual(r.data, []);
    assert.equal(r.closedAt, fireAt(16, base), 'given up at the 16th firing');
    assertGivenUp(t, sk, pages, aborts);
  });

  test(`${familyName(family)}: a zero window and TCP_USER_TIMEOUT: given up the user timeout after the first probe timer, answered or not, as Linux`, () => {
    for (const answered of [false, true]) {
      const t = TcpHarness.established(family);
      const sk = t.sk!;
      const aborts = t.mibs.TcpExt.TCPAbortOnTimeout;
      tcpSetsockopt(t.tcp, sk, SOL_TCP, TCP_USER_TIMEOUT, 5000);
      tcpSendmsg(t.tcp, sk, Buffer.alloc(1000, 1));
      t.out();
      t.send({ flags: A, seq: 1, ack: 1001, win: 0 });
      tcpSendmsg(t.tcp, sk, Buffer.alloc(2000, 2));
      const pages = queuePages(sk);
      const base = Math.max(sk.rto, RTO_MIN);
      // Answered: every probe gets a zero-window ACK back at once (icsk_probes_out goes back to 0,
      // icsk_probes_tstamp stays: the window never opened).
      const r = runUntilClosed(t, sk, 60_000, answered ? () => t.send({ flags: A, seq: 1, ack: 1001, win: 0 }) : undefined);
      // icsk_probes_tstamp is set when the probe timer first fires; tcp_clamp_probe0_to_user_timeout
      // makes a firing come exactly when the user timeout has passed since then.
      assert.equal(r.closedAt, base + 5000, `${answered ? 'answered' : 'silent'}: probes at ${r.probes.join(', ')}`);
      assert.ok(r.probes.every((p) => p < base + 5000));
      assertGivenUp(t, sk, pages, aborts);
    }
  });

  test(`${familyName(family)}: data in flight and the window shrunk to nothing: given up once both the silence and the retransmitting exceed 2 * TCP_RTO_MAX, as Linux`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    const aborts = t.mibs.TcpExt.TCPAbortOnTimeout;
    tcpSendmsg(t.tcp, sk, Buffer.alloc(3000, 1));
    t.out();
    // The peer takes the first segment and shrinks its window to nothing under the other two.
    t.send({ flags: A, seq: 1, ack: 1001, win: 0 });
    assert.equal(sk.packetsOut, 2);
    const pages = queuePages(sk);
    const rto = sk.rto;
    const r = runUntilClosed(t, sk, 1_200_000);
    // tcp_retransmit_timer's zero-window branch: a retransmission per RTO (doubling) until, as the
    // timer fires, tcp_rtx_probe0_timed_out sees both now - rcv_tstamp and now - retrans_stamp
    // above 240 s.
    let n = 1;
    while (!(fireAt(n, rto) > 2 * RTO_MAX && fireAt(n, rto) - fireAt(1, rto) > 2 * RTO_MAX)) n++;
    assert.deepEqual(r.data, Array.from({ length: n - 1 }, (_, i) => fireAt(i + 1, rto)));
    assert.equal(r.closedAt, fireAt(n, rto));
    assertGivenUp(t, sk, pages, aborts);
  });
}
