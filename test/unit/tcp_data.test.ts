import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, P, R, S, FAMILIES, familyName } from '../lib/tcp_harness.js';
import {
  tcpRecvmsg,
  tcpSendmsg,
  tcpSetsockopt,
  tcpPoll,
} from '../../src/net/ipv4/tcp.js';
import { TCP_CA_Loss, TCP_CA_Open, TCP_CA_Recovery } from '../../src/net/ipv4/tcp_sock.js';
import { AF_INET, EAGAIN, IPPROTO_TCP, POLLIN, POLLOUT, SOL_SOCKET, SO_SNDBUF, TCP_NOTSENT_LOWAT } from '../../src/uapi.js';
import { sysctlSet } from '../../src/net/sysctl.js';

const NO_TS: (string | number)[][] = [['mss', 1000], ['nop'], ['wscale', 0]];

for (const family of FAMILIES) {
  test(`${familyName(family)}: in-order data is ACKed at once at connection start (quick-ack mode) and readable`, () => {
    const t = TcpHarness.established(family);
    t.send({ flags: A | P, seq: 1, ack: 1, payload: 1000 });
    const [ack] = t.out();
    assert.equal(ack.flags, '.');
    assert.equal(ack.ack, 1001);
    assert.equal(tcpPoll(t.tcp, t.sk!) & POLLIN, POLLIN);
    const buf = Buffer.alloc(4000);
    assert.equal(tcpRecvmsg(t.tcp, t.sk!, buf), 1000);
    assert.equal(tcpRecvmsg(t.tcp, t.sk!, buf), -EAGAIN);
  });

  test(`${familyName(family)}: out-of-order data: an immediate duplicate ACK; filling the hole ACKs everything at once`, () => {
    const t = new TcpHarness(family);
    t.accept([['mss', 1000], ['sackOK'], ['nop'], ['wscale', 0]], 50000);
    t.out();
    t.send({ flags: A, seq: 1001, ack: 1, payload: 1000 });
    const [dup] = t.out();
    assert.equal(dup.ack, 1, 'duplicate ACK');
    const base = t.peerIsn;
    assert.equal(dup.options, `nop,nop,sack ${(base + 1001) >>> 0}:${(base + 2001) >>> 0}`);
    t.send({ flags: A, seq: 1, ack: 1, payload: 1000 });
    const [full] = t.out();
    assert.equal(full.ack, 2001);
    assert.equal(full.options, '', 'no SACK once the hole is filled');
    assert.equal(t.mibs.TcpExt.TCPOFOQueue, 1);
    const buf = Buffer.alloc(4000);
    assert.equal(tcpRecvmsg(t.tcp, t.sk!, buf), 2000);
  });

  test(`${familyName(family)}: a retransmission of data already received is ACKed at once`, () => {
    const t = TcpHarness.established(family);
    t.send({ flags: A, seq: 1, ack: 1, payload: 500 });
    t.out();
    t.send({ flags: A, seq: 1, ack: 1, payload: 500 });
    const [ack] = t.out();
    assert.equal(ack.ack, 501);
  });

  test(`${familyName(family)}: delayed ACK: once quick-acks are spent, a lone segment is ACKed after 40 ms`, () => {
    const t = TcpHarness.established(family);
    // Spend the quick-ack budget (rcv_wnd / (2 * rcv_mss), at most 16).
    let seq = 1;
    for (let i = 0; i < 40; i++) {
      t.send({ flags: A, seq, ack: 1, payload: 100 });
      seq += 100;
      t.time.advance(100);
    }
    t.out();
    t.send({ flags: A, seq, ack: 1, payload: 100 });
    assert.deepEqual(t.out(), [], 'not ACKed at once');
    t.time.advance(39);
    assert.deepEqual(t.out(), []);
    t.time.advance(1);
    const [ack] = t.out();
    assert.equal(ack.ack, seq + 100);
    assert.ok(t.mibs.TcpExt.DelayedACKs >= 1);
  });
}

// IPv4 only: its set-up keeps the new window from falling below rcv_wnd, which depends on the
// initial window; IPv6's larger MSS makes that 64896 rather than 64256 and the rule's second half fails.
test('two full-sized segments get an ACK without waiting', () => {
  const t = TcpHarness.established(AF_INET);
  let seq = 1;
  for (let i = 0; i < 40; i++) {
    t.send({ flags: A, seq, ack: 1, payload: 100 });
    seq += 100;
    t.time.advance(100);
  }
  t.out();
  // The reader keeps up, so the window is not shrinking (the rule's second half),
  // and rcv_ssthresh is already at its limit: no window growth (which, as in
  // Linux's tcp_grow_window, would itself ask for a quick ACK).
  const sink = Buffer.alloc(65536);
  tcpRecvmsg(t.tcp, t.sk!, sink);
  t.sk!.rcvSsthresh = t.sk!.windowClamp;
  t.out();
  t.send({ flags: A, seq, ack: 1, payload: 1000 });
  assert.deepEqual(t.out(), [], 'one segment waits for the delayed ACK');
  t.send({ flags: A, seq: seq + 1000, ack: 1, payload: 1000 });
  const acks = t.out();
  assert.equal(acks.length, 1);
  assert.equal(acks[0].ack, seq + 2000);
});

for (const family of FAMILIES) {
  test(`${familyName(family)}: sending: a 10000-byte write with cwnd 10 goes out as two 5000-byte TSO bursts, cut to MSS frames`, () => {
    const t = new TcpHarness(family);
    t.tcp.sysctl.tcp_min_tso_segs = 10;
    t.accept(NO_TS, 50000);
    t.out();
    assert.equal(tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(10000, 7)), 10000);
    const segs = t.out();
    assert.equal(segs.length, 10);
    assert.deepEqual(segs.map((s) => s.seq), [1, 1001, 2001, 3001, 4001, 5001, 6001, 7001, 8001, 9001]);
    assert.ok(segs.every((s) => s.len === 1000));
    // Linux forces PSH on every multi-MSS (GSO) packet; GSO keeps it on each burst's last frame.
    assert.deepEqual(segs.map((s) => s.flags), ['.', '.', '.', '.', 'P.', '.', '.', '.', '.', 'P.']);
    assert.equal(t.sk!.packetsOut, 10);
  });

  test(`${familyName(family)}: slow start: each ACKed segment opens the window by one`, () => {
    const t = TcpHarness.established(family);
    tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(60000, 1));
    assert.equal(t.out().length, 10, 'initial window: 10 segments');
    t.time.advance(100);
    t.send({ flags: A, seq: 1, ack: 10001 });
    assert.equal(t.sk!.sndCwnd, 20);
    assert.equal(t.out().length, 20);
  });

  test(`${familyName(family)}: RTO: unacknowledged data is resent after srtt + max(rttvar, 200 ms), then with doubling`, () => {
    const t = TcpHarness.established(family);
    // Seed the RTT: 100 ms.
    tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(1000, 1));
    t.out();
    t.time.advance(100);
    t.send({ flags: A, seq: 1, ack: 1001 });
    const rto = t.sk!.rto;
    // srtt/8 + rttvar, rttvar at least 200 ms (the handshake itself took no time here).
    assert.equal(rto, Math.ceil(((t.sk!.srttUs >> 3) + t.sk!.rttvarUs) / 1000));
    assert.ok(rto >= 200 && rto < 400, `rto ${rto}`);
    tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(1000, 2));
    t.out();
    const times: number[] = [];
    const start = t.time.now();
    for (let i = 0; i < 3000; i++) {
      t.time.advance(1);
      for (const s of t.out()) {
        assert.equal(s.seq, 1001);
        times.push(Math.round(t.time.now() - start));
      }
    }
    assert.equal(times[0], rto);
    assert.equal(times[1] - times[0], 2 * rto);
    assert.equal(times[2] - times[1], 4 * rto);
    assert.equal(t.sk!.caState, TCP_CA_Loss);
    assert.equal(t.sk!.sndCwnd, 1);
    t.send({ flags: A, seq: 1, ack: 2001 });
    // Without SACK, Linux holds the state until data above high_seq is acked (RFC 6582).
    assert.equal(t.sk!.caState, TCP_CA_Loss);
    tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(1000, 3));
    assert.equal(t.out().length, 1);
    t.send({ flags: A, seq: 1, ack: 3001 });
    assert.equal(t.sk!.caState, TCP_CA_Open);
    assert.ok(t.mibs.TcpExt.TCPTimeouts >= 1);
  });

  test(`${familyName(family)}: fast retransmit: three duplicate ACKs resend the head at once; a full ACK ends recovery`, () => {
    const t = TcpHarness.established(family);
    tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(10000, 1));
    t.out();
    t.time.advance(50);
    t.send({ flags: A, seq: 1, ack: 1001 });
    t.out();
    for (let i = 0; i < 2; i++) t.send({ flags: A, seq: 1, ack: 1001 });
    assert.deepEqual(t.out().filter((s) => s.seq === 1001), [], 'two dupacks are not enough');
    t.send({ flags: A, seq: 1, ack: 1001 });
    const rexmit = t.out().filter((s) => s.seq === 1001);
    assert.equal(rexmit.length, 1, 'the third dupack retransmits');
    assert.equal(rexmit[0].len, 1000);
    assert.equal(t.sk!.caState, TCP_CA_Recovery);
    t.send({ flags: A, seq: 1, ack: (t.sk!.sndNxt - t.stackIsn) >>> 0 });
    // Acking exactly high_seq: without SACK the state is held until data above it is acked (RFC 6582, as Linux).
    assert.equal(t.sk!.caState, TCP_CA_Recovery);
    tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(1000, 3));
    t.out();
    t.send({ flags: A, seq: 1, ack: (t.sk!.sndNxt - t.stackIsn) >>> 0 });
    assert.equal(t.sk!.caState, TCP_CA_Open);
    assert.equal(t.mibs.TcpExt.TCPRenoRecovery, 1);
  });

  test(`${familyName(family)}: zero window: the persist timer probes with backoff; the window opening resumes sending`, () => {
    const t = TcpHarness.established(family);
    t.send({ flags: A, seq: 1, ack: 1, win: 0 });
    assert.equal(tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(3000, 1)), 3000);
    assert.deepEqual(t.out(), [], 'nothing fits a zero window');
    const probes: number[] = [];
    const start = t.time.now();
    for (let i = 0; i < 800; i++) {
      t.time.advance(10);
      for (const s of t.out()) {
        assert.equal(s.seq, 0, 'a probe is an old sequence number');
        probes.push(Math.round(t.time.now() - start));
        t.send({ flags: A, seq: 1, ack: 1, win: 0 });
      }
    }
    assert.ok(probes.length >= 2, JSON.stringify(probes));
    assert.ok(probes[1] - probes[0] > probes[0] - 0, 'backoff');
    t.send({ flags: A, seq: 1, ack: 1, win: 50000 });
    const data = t.out();
    assert.equal(data.reduce((n, s) => n + s.len, 0), 3000);
  });

  test(`${familyName(family)}: writing past the send buffer: EAGAIN, and POLLOUT only when half the queue is free (sk_stream_min_wspace)`, () => {
    const t = TcpHarness.established(family);
    tcpSetsockopt(t.tcp, t.sk!, SOL_SOCKET, SO_SNDBUF, 21000);
    let events = 0;
    t.sk!.wake = (_s, ev) => (events |= ev);
    let total = 0;
    for (;;) {
      const n = tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(10000, 3));
      if (n < 0) {
        assert.equal(n, -EAGAIN);
        break;
      }
      total += n;
    }
    assert.ok(total >= 40000 && total <= 80000, `queued ${total}`);
    assert.equal(tcpPoll(t.tcp, t.sk!) & POLLOUT, 0);
    t.out();
    events = 0;
    t.send({ flags: A, seq: 1, ack: 1001 });
    assert.equal(events & POLLOUT, 0, 'a small ACK does not wake the writer');
    t.send({ flags: A, seq: 1, ack: 10001 });
    const wq = t.sk!.wmemQueued;
    const writable = t.sk!.sndbuf - wq >= wq >> 1;
    assert.equal((events & POLLOUT) !== 0, writable);
  });

  test(`${familyName(family)}: RST with the exact sequence resets; in-window elsewhere gets a challenge ACK (RFC 5961)`, () => {
    const t = TcpHarness.established(family);
    t.send({ flags: R, seq: 500 });
    const [ch] = t.out();
    assert.equal(ch.flags, '.');
    assert.equal(ch.ack, 1);
    assert.equal(t.mibs.TcpExt.TCPChallengeACK, 1);
    t.send({ flags: R, seq: 1 });
    assert.equal(tcpRecvmsg(t.tcp, t.sk!, Buffer.alloc(1)), -104);
    assert.equal(t.mibs.Tcp.EstabResets, 1);
  });

  test(`${familyName(family)}: a SYN on an established connection gets a challenge ACK`, () => {
    const t = TcpHarness.established(family);
    t.send({ flags: S, seq: 77 });
    const [ch] = t.out();
    assert.equal(ch.flags, '.');
    assert.equal(ch.ack, 1);
  });

  test(`${familyName(family)}: a segment without ACK in ESTABLISHED is dropped silently`, () => {
    const t = TcpHarness.established(family);
    t.send({ flags: P, seq: 1, payload: 10 });
    assert.deepEqual(t.out(), []);
    assert.equal(tcpRecvmsg(t.tcp, t.sk!, Buffer.alloc(100)), -EAGAIN);
  });

  test(`${familyName(family)}: challenge ACKs: at most one per socket per tcp_invalid_ratelimit, and tcp_challenge_ack_limit per second overall`, () => {
    const t = TcpHarness.established(family);
    t.send({ flags: R, seq: 500 });
    t.send({ flags: R, seq: 600 });
    assert.equal(t.out().length, 1, 'the second is within 500 ms');
    t.time.advance(500);
    t.send({ flags: R, seq: 700 });
    assert.equal(t.out().length, 1);
    t.tcp.sysctl.tcp_challenge_ack_limit = 0;
    t.time.advance(1000);
    t.send({ flags: R, seq: 800 });
    assert.deepEqual(t.out(), [], 'over the stack-wide limit');
  });
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: net.ipv4.tcp_notsent_lowat is every socket's default; TCP_NOTSENT_LOWAT overrides it`, () => {
    const t = TcpHarness.established(family);
    // The peer's window is closed: what is written stays unsent.
    t.send({ flags: A, seq: 1, ack: 1, win: 0 });
    t.out();
    assert.equal(sysctlSet(t.h.stack, 'net.ipv4.tcp_notsent_lowat', '4000'), 0);
    assert.equal(tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(3000, 1)), 3000);
    assert.equal(tcpPoll(t.tcp, t.sk!) & POLLOUT, POLLOUT, '3000 unsent, under the mark: writable');
    assert.equal(tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(3000, 2)), 3000, 'under the mark a write is taken');
    assert.equal(tcpPoll(t.tcp, t.sk!) & POLLOUT, 0, '6000 unsent, past the sysctl\'s 4000: not writable');
    // The socket's own setting wins over the sysctl (tcp_notsent_lowat: tp->notsent_lowat ?: the sysctl).
    assert.equal(tcpSetsockopt(t.tcp, t.sk!, IPPROTO_TCP, TCP_NOTSENT_LOWAT, 100000), 0);
    assert.equal(tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(3000, 3)), 3000);
    assert.equal(tcpPoll(t.tcp, t.sk!) & POLLOUT, POLLOUT);
  });
}
