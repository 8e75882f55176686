/**
 * What answers a segment that is not acceptable to an established
 * connection, and what that counts, as Linux does it
 * (tcp_rcv_established, tcp_validate_incoming, tcp_oow_rate_limited,
 * tcp_send_dupack, tcp_data_queue): a segment carrying data gets its
 * duplicate ACK every time (tcp_oow_rate_limited never holds back data
 * without SYN), with a D-SACK and DelayedACKLost when it lies below
 * rcv_nxt; anything else out of window is answered at most once per
 * tcp_invalid_ratelimit, each one held back counted in TCPACKSkippedSeq or
 * TCPACKSkippedPAWS; a segment without ACK is dropped before any of it.
 * So the counters count ACKs and D-SACKs that went out.
 *
 * Linux 6.18 checked the same way (200 data segments at random sequence
 * numbers injected into a loopback connection in a namespace): 200 ACKs,
 * DelayedACKLost and TCPDSACKOldSent 93 each (the segments below rcv_nxt),
 * BeyondWindow 107, TCPACKSkippedSeq 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { A, FAMILIES, P, TcpHarness, familyName, type Seg } from '../lib/tcp_harness.js';
import { tcpRecvmsg } from '../../src/net/ipv4/tcp.js';
import { TCP_ESTABLISHED } from '../../src/net/core/sock.js';
import { SeededRandom } from '../../src/lib/random.js';

const SACK_SYN: (string | number)[][] = [['mss', 1000], ['sackOK'], ['nop'], ['wscale', 0]];

/** An established connection with SACK that has taken 1000 bytes (rcv_nxt 1001) and ACKed them. */
function withData(family: (typeof FAMILIES)[number], syn = SACK_SYN, opts?: (string | number)[][]): TcpHarness {
  const t = new TcpHarness(family);
  t.accept(syn, 50000);
  t.out();
  t.send({ flags: A | P, seq: 1, ack: 1, payload: 1000, options: opts });
  const [ack] = t.out();
  assert.equal(ack.ack, 1001);
  tcpRecvmsg(t.tcp, t.sk!, Buffer.alloc(2000));
  return t;
}

/** The SACK blocks of a segment the stack sent, relative to the peer's ISN. */
function sackBlocks(t: TcpHarness, s: Seg): [number, number][] {
  const m = /sack ([\d: ]+)/.exec(s.options);
  if (!m) return [];
  return m[1].split(' ').map((b) => b.split(':').map((v) => (Number(v) - t.peerIsn) >>> 0) as [number, number]);
}

const counters = (t: TcpHarness) => {
  const x = t.mibs.TcpExt;
  return { lost: x.DelayedACKLost, dsack: x.TCPDSACKOldSent, skippedSeq: x.TCPACKSkippedSeq, skippedPaws: x.TCPACKSkippedPAWS, beyond: x.BeyondWindow };
};

for (const family of FAMILIES) {
  test(`${familyName(family)}: blind data at random sequence numbers: an ACK for every segment, and DelayedACKLost and TCPDSACKOldSent count the ACKs that carry a D-SACK`, () => {
    const t = withData(family);
    const sk = t.sk!;
    const rnd = new SeededRandom(0x5eed);
    const before = counters(t);
    const N = 999;
    let acks = 0;
    let withDsack = 0;
    let old = 0;
    for (let i = 0; i < N; i++) {
      // Far outside the window either way (at least 1 MB from rcv_nxt): every segment fails tcp_sequence.
      let d = rnd.u32() | 0;
      while (Math.abs(d) < 1 << 20) d = rnd.u32() | 0;
      const seq = (1001 + d) >>> 0;
      t.time.advance(1);
      t.send({ flags: A | P, seq, ack: 1, payload: 100 });
      const out = t.out();
      assert.equal(out.length, 1, `segment ${i} at rcv_nxt${d < 0 ? '' : '+'}${d}: one duplicate ACK, not rate-limited (data)`);
      const [s] = out;
      assert.equal(s.flags, '.');
      assert.equal(s.ack, 1001);
      acks++;
      const blocks = sackBlocks(t, s);
      if (d < 0) {
        // Below rcv_nxt (Linux's before()): tcp_send_dupack D-SACKs it.
        old++;
        assert.deepEqual(blocks[0], [seq, (seq + 100) >>> 0], 'the D-SACK names the duplicate');
        withDsack++;
      } else {
        assert.deepEqual(blocks, [], 'beyond the window: a plain duplicate ACK');
      }
    }
    const after = counters(t);
    assert.equal(acks, N);
    assert.ok(old > N / 3 && old < (2 * N) / 3, `about half below rcv_nxt (${old})`);
    assert.equal(after.lost - before.lost, withDsack, 'DelayedACKLost: one per D-SACKed duplicate ACK sent');
    assert.equal(after.dsack - before.dsack, withDsack, 'TCPDSACKOldSent: one per D-SACK sent');
    assert.equal(after.skippedSeq - before.skippedSeq, 0, 'no data segment was held back');
    assert.equal(after.beyond - before.beyond, N - old, 'BeyondWindow: the rest started beyond the window');
    assert.equal(sk.state, TCP_ESTABLISHED);
    assert.equal(sk.rcvNxt, (t.peerIsn + 1001) >>> 0, 'nothing was taken');
    t.send({ flags: A | P, seq: 1001, ack: 1, payload: 10 });
    assert.equal(tcpRecvmsg(t.tcp, sk, Buffer.alloc(100)), 10, 'the real next segment still is');
  });

  test(`${familyName(family)}: an old duplicate that reaches tcp_data_queue (its end at rcv_nxt) is ACKed with its D-SACK each time it comes`, () => {
    const t = withData(family);
    const before = counters(t);
    for (let i = 0; i < 5; i++) {
      t.time.advance(10);
      t.send({ flags: A | P, seq: 1, ack: 1, payload: 1000 });
      const out = t.out();
      assert.equal(out.length, 1, `retransmission ${i}`);
      assert.deepEqual(sackBlocks(t, out[0])[0], [1, 1001]);
    }
    const after = counters(t);
    assert.equal(after.lost - before.lost, 5);
    assert.equal(after.dsack - before.dsack, 5);
  });

  test(`${familyName(family)}: out-of-window segments without data: one duplicate ACK per tcp_invalid_ratelimit, the rest counted in TCPACKSkippedSeq`, () => {
    const t = withData(family);
    const before = counters(t);
    const sent: number[] = [];
    for (let i = 0; i < 10; i++) {
      t.time.advance(100);
      t.send({ flags: A, seq: 1001 + 200_000, ack: 1 });
      for (const s of t.out()) sent.push(s.at);
    }
    // 100, 200, ..., 1000 ms: answered at 100 and 600 (500 ms apart), and at 1100 after one more.
    assert.equal(sent.length, 2, `answered at ${sent.join(', ')}`);
    assert.equal(sent[1] - sent[0], 500);
    const after = counters(t);
    assert.equal(after.skippedSeq - before.skippedSeq, 8, 'each held-back answer is counted');
    assert.equal(after.lost - before.lost, 0, 'no data: no DelayedACKLost');
  });

  test(`${familyName(family)}: an out-of-window data segment without ACK is dropped before validation: no answer, nothing counted`, () => {
    const t = withData(family);
    const before = counters(t);
    t.send({ flags: P, seq: 1, payload: 100 });
    t.send({ flags: P, seq: 1001 + 300_000, payload: 100 });
    assert.deepEqual(t.out(), []);
    assert.deepEqual(counters(t), before);
  });

  test(`${familyName(family)}: PAWS-rejected data is answered every time, its D-SACK clipped at rcv_nxt; bare ACKs wait for the rate limit, old ones go unanswered`, () => {
    const syn: (string | number)[][] = [['mss', 1000], ['sackOK'], ['TS', 1000, 0], ['nop'], ['wscale', 0]];
    const t = withData(family, syn, [['nop'], ['nop'], ['TS', 2000, 0]]);
    const before = counters(t);
    const paws = t.mibs.TcpExt.PAWSEstab;
    const stale: (string | number)[][] = [['nop'], ['nop'], ['TS', 1500, 0]];
    for (let i = 0; i < 3; i++) {
      t.time.advance(10);
      // Half old, half new, with a timestamp older than ts_recent.
      t.send({ flags: A | P, seq: 501, ack: 1, payload: 1000, options: stale });
      const out = t.out();
      assert.equal(out.length, 1, `PAWS-rejected data ${i} gets its duplicate ACK`);
      assert.deepEqual(sackBlocks(t, out[0])[0], [501, 1001], 'the D-SACK stops at rcv_nxt');
    }
    // Bare ACKs (a window update, so not a disordered ACK PAWS lets through): the data's
    // answers did not start the rate limit, so the first is answered, the second not.
    t.time.advance(10);
    t.send({ flags: A, seq: 1001, ack: 1, options: stale, win: 1000 });
    assert.equal(t.out().length, 1);
    t.send({ flags: A, seq: 1001, ack: 1, options: stale, win: 2000 });
    assert.equal(t.out().length, 0, 'within tcp_invalid_ratelimit of the last bare answer');
    const after = counters(t);
    assert.equal(t.mibs.TcpExt.PAWSEstab - paws, 5);
    assert.equal(after.lost - before.lost, 3);
    assert.equal(after.dsack - before.dsack, 3);
    assert.equal(after.skippedPaws - before.skippedPaws, 1);
    // An old bare ACK (below rcv_nxt) is common: PAWSOldAck, no answer, no PAWSEstab.
    t.time.advance(1000);
    t.send({ flags: A, seq: 900, ack: 1, options: stale });
    assert.deepEqual(t.out(), []);
    assert.equal(t.mibs.TcpExt.PAWSOldAck, 1);
    assert.equal(t.mibs.TcpExt.PAWSEstab - paws, 5);
  });
}
