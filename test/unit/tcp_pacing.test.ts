/**
 * Pacing, the earliest-departure-time model: sk_pacing_rate from cwnd, mss
 * and srtt after each ACK (tcp_update_pacing_rate, with the ss/ca ratio
 * sysctls), SO_MAX_PACING_RATE, tcp_wstamp_ns moved on by each skb's time
 * at the rate (tcp_update_skb_after_send), and internal pacing: the pacing
 * timer releases the next skb at its departure time; or the fq stage on
 * the device does (sch_fq.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, S, FAMILIES, familyName, type Seg } from '../lib/tcp_harness.js';
import { tcpAccept, tcpSendmsg, tcpSetsockopt, tcpGetsockopt } from '../../src/net/ipv4/tcp.js';
import { tcpGetInfo } from '../../src/net/ipv4/tcp_info.js';
import { sockGetsockopt, sockSetsockopt, SK_PACING_FQ, SK_PACING_NEEDED, SK_PACING_NONE } from '../../src/net/core/sock.js';
import { AF_INET, EINVAL, SOL_SOCKET, SO_MAX_PACING_RATE } from '../../src/uapi.js';
import { sysctlGet, sysctlSet } from '../../src/net/sysctl.js';
import { FqSched } from '../../src/net/sched/sch_fq.js';
import { VirtualTime } from '../../src/lib/time.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';

const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** A passive open whose handshake takes `rttMs` (the SYN-ACK's RTT seeds srtt); mss 1000, no timestamps. */
function established(family: (typeof FAMILIES)[number], rttMs: number): { t: TcpHarness; sk: TcpSock } {
  const t = new TcpHarness(family);
  t.listen();
  t.send({ flags: S, seq: 0, win: 50000, options: [['mss', 1000], ['nop'], ['wscale', 0]] });
  assert.equal(t.out()[0].flags, 'S.');
  t.time.advance(rttMs);
  t.send({ flags: A, seq: 1, ack: 1, win: 50000 });
  const sk = tcpAccept(t.tcp, t.listener!) as TcpSock;
  t.sk = sk;
  return { t, sk };
}

/** Advance 1 ms at a time for `ms`, collecting what the stack sends (each segment stamped with its time). */
function collect(t: TcpHarness, ms: number): Seg[] {
  const segs: Seg[] = [];
  for (let i = 0; i < ms; i++) {
    t.time.advance(1);
    segs.push(...t.out());
  }
  return segs;
}

for (const family of FAMILIES) {
  const name = familyName(family);

  test(`${name}: pacing rate: 200% of cwnd*mss/srtt in slow start, from the handshake's RTT on; ~0 before; the ratios are sysctls`, () => {
    const t0 = new TcpHarness(family);
    const l = t0.listen();
    assert.equal(tcpGetInfo(t0.tcp, l).tcpi_pacing_rate, U64_MAX, 'a new socket: ~0UL');
    assert.equal(tcpGetInfo(t0.tcp, l).tcpi_max_pacing_rate, U64_MAX);

    const { t, sk } = established(family, 10);
    // 1000 B * 10 segments / 10 ms = 1 MB/s, doubled.
    assert.equal(sk.pacingRate, 2_000_000);
    assert.equal(tcpGetInfo(t.tcp, sk).tcpi_pacing_rate, 2_000_000n);
    assert.equal(sk.pacingStatus, SK_PACING_NONE, 'CUBIC without fq: no pacing');

    t.tcp.sysctl.tcp_pacing_ss_ratio = 300;
    t.tcp.sysctl.tcp_pacing_ca_ratio = 110;
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(10_000)), 10_000);
    t.out();
    t.time.advance(10);
    t.send({ flags: A, seq: 1, ack: 10_001, win: 50000 });
    // cwnd 20, srtt 10 ms: 300% of 2 MB/s.
    assert.equal(sk.sndCwnd, 20);
    assert.equal(sk.pacingRate, 6_000_000);
    // Congestion avoidance (cwnd at least half of ssthresh): the ca ratio.
    sk.sndSsthresh = 30;
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(1000)), 1000);
    t.out();
    t.time.advance(10);
    t.send({ flags: A, seq: 1, ack: 11_001, win: 50000 });
    assert.equal(sk.sndCwnd, 20, 'not cwnd-limited: no growth');
    assert.equal(sk.pacingRate, 2_200_000);
  });

  test(`${name}: without pacing (no fq, no SO_MAX_PACING_RATE) every skb leaves at once and tcp_wstamp_ns stays at the send time`, () => {
    const { t, sk } = established(family, 10);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(10_000)), 10_000);
    const segs = t.out();
    assert.equal(segs.length, 10);
    assert.ok(segs.every((s) => s.at === segs[0].at));
    assert.equal(sk.wstampNs, Math.round(t.time.now() * 1e6));
    t.time.advance(10);
    t.send({ flags: A, seq: 1, ack: 10_001, win: 50000 });
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(20_000)), 20_000);
    assert.equal(t.out().length, 20, 'the whole new cwnd at once');
    assert.equal(sk.pacingTimer.pending, false);
  });

  test(`${name}: SO_MAX_PACING_RATE: u32 and u64 forms, ~0 is no limit, any other asks for (internal) pacing and caps the rate now`, () => {
    const { t, sk } = established(family, 10);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_SOCKET, SO_MAX_PACING_RATE), 0xffffffff);
    assert.deepEqual(sockGetsockopt(sk, SO_MAX_PACING_RATE), Buffer.from('ffffffffffffffff', 'hex'));
    assert.deepEqual(sockGetsockopt(sk, SO_MAX_PACING_RATE, 4), Buffer.from('ffffffff', 'hex'), 'optlen 4: the 32-bit form');
    assert.equal(sockSetsockopt(sk, SO_MAX_PACING_RATE, Buffer.alloc(2)), -EINVAL);
    // ~0U in the 32-bit form is ~0UL: still no limit, no pacing.
    assert.equal(sockSetsockopt(sk, SO_MAX_PACING_RATE, Buffer.from('ffffffff', 'hex')), 0);
    assert.equal(sk.maxPacingRate, Infinity);
    assert.equal(sk.pacingStatus, SK_PACING_NONE);
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(5_000_000_000n);
    assert.equal(sockSetsockopt(sk, SO_MAX_PACING_RATE, b), 0);
    assert.equal(sk.maxPacingRate, 5_000_000_000);
    assert.equal(sk.pacingStatus, SK_PACING_NEEDED);
    assert.equal(sk.pacingRate, 2_000_000, 'below the limit: unchanged');
    assert.equal(tcpGetInfo(t.tcp, sk).tcpi_max_pacing_rate, 5_000_000_000n);
    assert.equal(tcpGetsockopt(t.tcp, sk, SOL_SOCKET, SO_MAX_PACING_RATE), 0xffffffff, 'the 32-bit form saturates');
    assert.deepEqual(sockGetsockopt(sk, SO_MAX_PACING_RATE, 4), Buffer.from('ffffffff', 'hex'), 'so does a 4-byte getsockopt');
    assert.deepEqual(sockGetsockopt(sk, SO_MAX_PACING_RATE), b, 'the 8-byte one is whole');
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_MAX_PACING_RATE, 500_000), 0);
    assert.equal(sk.pacingRate, 500_000, 'the current rate drops to the new limit at once');
    assert.equal(tcpGetInfo(t.tcp, sk).tcpi_pacing_rate, 500_000n);
  });

  test(`${name}: internal pacing: the first 10 segments go unpaced, then each skb's departure time is the last plus len/rate (less the lateness credit), and the pacing timer sends it then`, () => {
    const { t, sk } = established(family, 10);
    // 100 kB/s: tcp_tso_autosize gives 2-segment skbs (97 bytes per ms, at least tcp_min_tso_segs).
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_MAX_PACING_RATE, 100_000), 0);
    const start = t.time.now();
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(10_000)), 10_000);
    const first = t.out();
    assert.equal(first.length, 10, 'five 2-segment skbs, none held back');
    assert.ok(first.every((s) => s.at === start));
    // sch_fq does not pace a connection's first 10 segments, nor does TCP: only the skb that
    // brings data_segs_out to 10 moves the departure time on, by its 2000 B at 100 kB/s.
    assert.equal(sk.wstampNs, Math.round((start + 20) * 1e6));
    t.time.advance(10);
    const ackAt = t.time.now();
    t.send({ flags: A, seq: 1, ack: 10_001, win: 50000 });
    assert.equal(sk.sndCwnd, 20);
    assert.equal(sk.pacingRate, 100_000, 'capped by SO_MAX_PACING_RATE');
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(8000)), 8000);
    assert.deepEqual(t.out(), [], 'the departure time is 10 ms ahead');
    assert.equal(sk.pacingTimer.pending, true);
    assert.equal(sk.pacingTimer.expires, ackAt + 10);
    const paced = collect(t, 80);
    assert.deepEqual(
      paced.map((s) => [s.seq, s.at - ackAt]),
      [
        [10_001, 10],
        [11_001, 10],
        [12_001, 30],
        [13_001, 30],
        [14_001, 50],
        [15_001, 50],
        [16_001, 70],
        [17_001, 70],
      ],
    );
    assert.equal(sk.wstampNs, Math.round((ackAt + 90) * 1e6));
    assert.equal(sk.pacingTimer.pending, false, 'nothing left to send');
    // 10 ms late (idle): the skb sent now gets half its 20 ms as credit.
    t.time.advance(20);
    const idleAt = t.time.now();
    t.send({ flags: A, seq: 1, ack: 18_001, win: 50000 });
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(6000)), 6000);
    assert.deepEqual(t.out().map((s) => s.seq), [18_001, 19_001]);
    assert.equal(sk.wstampNs, Math.round((idleAt + 10) * 1e6));
    assert.deepEqual(
      collect(t, 40).map((s) => [s.seq, s.at - idleAt]),
      [
        [20_001, 10],
        [21_001, 10],
        [22_001, 30],
        [23_001, 30],
      ],
    );
  });
}

for (const family of FAMILIES) {
  const name = familyName(family);

  test(`${name}: the fq stage (net.core.default_qdisc = fq): TCP hands every skb over at once, stamped; fq releases each at its departure time, the same times internal pacing gives`, () => {
    const { t, sk } = established(family, 10);
    assert.equal(sysctlSet(t.h.stack, 'net.core.default_qdisc', 'fq'), 0);
    assert.equal(sysctlGet(t.h.stack, 'net.core.default_qdisc'), 'fq');
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_MAX_PACING_RATE, 100_000), 0);
    const start = t.time.now();
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(10_000)), 10_000);
    assert.equal(sk.pacingStatus, SK_PACING_FQ, 'fq took the pacing over (fq_classify)');
    assert.equal(t.out().length, 10);
    assert.equal(sk.wstampNs, Math.round((start + 20) * 1e6));
    t.time.advance(10);
    const ackAt = t.time.now();
    t.send({ flags: A, seq: 1, ack: 10_001, win: 50000 });
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(8000)), 8000);
    assert.equal(sk.sndNxt - sk.sndUna, 8000, 'all of it sent by TCP at once');
    assert.equal(sk.pacingTimer.pending, false, 'no internal pacing');
    assert.deepEqual(t.out(), [], 'held by fq');
    assert.equal(t.h.stack.dev.fq!.qlen, 8);
    assert.deepEqual(
      collect(t, 80).map((s) => [s.seq, s.at - ackAt]),
      [
        [10_001, 10],
        [11_001, 10],
        [12_001, 30],
        [13_001, 30],
        [14_001, 50],
        [15_001, 50],
        [16_001, 70],
        [17_001, 70],
      ],
    );
    assert.equal(t.h.stack.dev.fq!.qlen, 0);
    assert.equal(sysctlSet(t.h.stack, 'net.core.default_qdisc', 'pfifo_fast'), 0);
    assert.equal(t.h.stack.dev.fq, null);
    assert.equal(sysctlSet(t.h.stack, 'net.core.default_qdisc', 'cake'), -EINVAL);
  });
}

test('sch_fq: frames leave in departure-time order (ties in arrival order), due ones at once; the horizon drops (or caps) what is too far ahead; the limit; maxrate paces unstamped frames', () => {
  const time = new VirtualTime(1000);
  const sent: [number, number][] = [];
  const q = new FqSched(time, (b, o) => sent.push([b[o], time.now()]));
  const f = (id: number) => Buffer.from([id, 0, 0, 0]);
  const ms = (x: number) => x * 1e6;
  assert.equal(q.enqueue(f(1), 0, 4, 0, false, 0), true);
  assert.equal(q.enqueue(f(2), 0, 4, 0, false, ms(1003)), true);
  assert.equal(q.enqueue(f(3), 0, 4, 0, false, ms(1001)), true);
  assert.equal(q.enqueue(f(4), 0, 4, 0, false, ms(1003)), true);
  assert.equal(q.enqueue(f(5), 0, 4, 0, false, ms(1000)), true, 'due now');
  assert.deepEqual(sent, [[1, 1000], [5, 1000]]);
  assert.equal(q.qlen, 3);
  time.advance(5);
  assert.deepEqual(sent.slice(2), [[3, 1001], [2, 1003], [4, 1003]]);
  // Horizon: 10 s.
  assert.equal(q.enqueue(f(6), 0, 4, 0, false, ms(1005 + 10_001)), false);
  assert.equal(q.horizonDrops, 1);
  q.horizonDrop = false;
  assert.equal(q.enqueue(f(7), 0, 4, 0, false, ms(1005 + 20_000)), true);
  assert.equal(q.horizonCaps, 1);
  time.advance(10_000);
  assert.deepEqual(sent[sent.length - 1], [7, 11_005]);
  q.limit = 1;
  assert.equal(q.enqueue(f(8), 0, 4, 0, false, ms(11_010)), true);
  assert.equal(q.enqueue(f(9), 0, 4, 0, false, ms(11_010)), false);
  assert.equal(q.overlimits, 1);
  q.reset();
  assert.equal(q.qlen, 0);
  // maxrate 4000 B/s: a 4-byte frame without a departure time every ms.
  q.limit = 100;
  q.flowMaxRate = 4000;
  const before = sent.length;
  for (let i = 0; i < 3; i++) q.enqueue(f(10 + i), 0, 4, 0, false, 0);
  time.advance(5);
  assert.deepEqual(sent.slice(before), [[10, 11_005], [11, 11_006], [12, 11_007]]);
});

test('timer slack (a coarse clock, the daemon\'s): a departure within the slack goes now, and the wake-up is set that much early', () => {
  class CoarseTime extends VirtualTime {
    readonly timerSlack = 1;
  }
  const time = new CoarseTime(1000);
  const sent: [number, number][] = [];
  const q = new FqSched(time, (b, o) => sent.push([b[o], time.now()]));
  const f = (id: number) => Buffer.from([id, 0, 0, 0]);
  q.enqueue(f(1), 0, 4, 0, false, 1000.5e6);
  q.enqueue(f(2), 0, 4, 0, false, 1003e6);
  assert.deepEqual(sent, [[1, 1000]], 'half a millisecond ahead: now');
  time.advance(2);
  assert.deepEqual(sent[1], [2, 1002], 'woken a millisecond early');
});

test('internal pacing on a clock with a timer slack of 1 ms: each skb may leave up to 1 ms before its departure time, the timer is set that early, and the schedule does not drift', () => {
  const { t, sk } = established(AF_INET, 10);
  Object.defineProperty(t.time, 'timerSlack', { value: 1 });
  assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_MAX_PACING_RATE, 100_000), 0);
  assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(10_000)), 10_000);
  t.out();
  t.time.advance(10);
  const ackAt = t.time.now();
  t.send({ flags: A, seq: 1, ack: 10_001, win: 50000 });
  assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(8000)), 8000);
  assert.equal(sk.pacingTimer.expires, ackAt + 9);
  assert.deepEqual(
    collect(t, 80).map((s) => [s.seq, s.at - ackAt]),
    [
      [10_001, 9],
      [11_001, 9],
      [12_001, 29],
      [13_001, 29],
      [14_001, 49],
      [15_001, 49],
      [16_001, 69],
      [17_001, 69],
    ],
  );
});
