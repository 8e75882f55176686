/**
 * The receiver's RTT estimate (rcv_rtt_est: tcp_rcv_rtt_measure and
 * tcp_rcv_rtt_measure_ts) and receive-buffer autotuning paced by it, not by
 * srtt: a pure receiver's srtt is the handshake's, which on a path whose
 * queue has grown is far below the RTT its data sees.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { A, FAMILIES, familyName, TcpHarness } from '../lib/tcp_harness.js';
import { tcpRecvmsg } from '../../src/net/ipv4/tcp.js';
import { tcpGetInfo } from '../../src/net/ipv4/tcp_info.js';

const MSS = 1000;

for (const family of FAMILIES) {
  const name = familyName(family);

  test(`${name}: a full-sized segment echoing our TSval is a receiver RTT sample; smaller ones and repeated echoes are not`, () => {
    const t = new TcpHarness(family);
    const sk = t.accept([['mss', MSS], ['nop'], ['nop'], ['TS', 100, 0], ['nop'], ['wscale', 0]], 50000);
    t.out();
    const srtt = sk.srttUs;
    // Data echoing the stack's current TSval 40 ms later says the RTT is 40 ms.
    const ourTs = (Math.floor(t.time.now()) + sk.tsOff) >>> 0;
    t.time.advance(40);
    t.send({ flags: A, seq: 1, ack: 1, payload: MSS, options: [['nop'], ['nop'], ['TS', 141, ourTs]] });
    assert.equal(sk.rcvRttUs >> 3, 40_000);
    assert.equal(tcpGetInfo(t.tcp, sk).tcpi_rcv_rtt, 40_000);
    assert.equal(sk.srttUs, srtt, 'the sender-side estimate is untouched');
    // The same echo again (a second segment of the same flight) gives no second sample.
    t.time.advance(30);
    t.send({ flags: A, seq: 1 + MSS, ack: 1, payload: MSS, options: [['nop'], ['nop'], ['TS', 171, ourTs]] });
    assert.equal(sk.rcvRttUs >> 3, 40_000);
    // A short segment echoing a newer TSval is no sample either (it may have waited on the sender).
    const later = (Math.floor(t.time.now()) + sk.tsOff) >>> 0;
    t.time.advance(5);
    t.send({ flags: A, seq: 1 + 2 * MSS, ack: 1, payload: 10, options: [['nop'], ['nop'], ['TS', 176, later]] });
    assert.equal(sk.rcvRttUs >> 3, 40_000);
    // A larger sample while the application has not read everything is ignored (a slow reader must not inflate it).
    const t3 = (Math.floor(t.time.now()) + sk.tsOff) >>> 0;
    t.time.advance(80);
    t.send({ flags: A, seq: 1 + 2 * MSS + 10, ack: 1, payload: MSS, options: [['nop'], ['nop'], ['TS', 256, t3]] });
    assert.equal(sk.rcvRttUs >> 3, 40_000);
    // Read all; the next larger sample is smoothed in by an eighth.
    const buf = Buffer.alloc(64 * 1024);
    while (tcpRecvmsg(t.tcp, sk, buf) > 0);
    const t4 = (Math.floor(t.time.now()) + sk.tsOff) >>> 0;
    t.time.advance(80);
    t.send({ flags: A, seq: 1 + 3 * MSS + 10, ack: 1, payload: MSS, options: [['nop'], ['nop'], ['TS', 336, t4]] });
    assert.equal(sk.rcvRttUs, 40_000 * 8 - 40_000 + 80_000);
    // A smaller one is taken at once.
    while (tcpRecvmsg(t.tcp, sk, buf) > 0);
    const t5 = (Math.floor(t.time.now()) + sk.tsOff) >>> 0;
    t.time.advance(20);
    t.send({ flags: A, seq: 1 + 4 * MSS + 10, ack: 1, payload: MSS, options: [['nop'], ['nop'], ['TS', 356, t5]] });
    assert.equal(sk.rcvRttUs >> 3, 20_000);
  });

  test(`${name}: without timestamps, the time a window's worth of data takes to arrive is the sample, and only a smaller one replaces it`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    const wnd = sk.rcvWnd;
    const buf = Buffer.alloc(256 * 1024);
    let seq = 1;
    const deliver = (bytes: number, spreadMs: number) => {
      // `bytes` in full segments, spread evenly over `spreadMs`, each read at once.
      const n = Math.ceil(bytes / MSS);
      for (let i = 0; i < n; i++) {
        t.time.advance(spreadMs / n);
        t.send({ flags: A, seq, ack: 1, payload: MSS });
        seq += MSS;
        while (tcpRecvmsg(t.tcp, sk, buf) > 0);
      }
    };
    assert.equal(sk.rcvRttUs, 0);
    // The first segment starts a measurement; the window's worth past it ends one, 100 ms later.
    deliver(MSS, 1);
    assert.equal(sk.rcvRttUs, 0);
    deliver(wnd + MSS, 100);
    const first = sk.rcvRttUs >> 3;
    assert.ok(first > 90_000 && first <= 101_000, `sample ${first} us`);
    // A slower window (200 ms) does not raise it: without timestamps only the minimum is kept.
    deliver(sk.rcvWnd + MSS, 200);
    assert.equal(sk.rcvRttUs >> 3, first);
    // A faster one (50 ms) lowers it.
    deliver(sk.rcvWnd + MSS, 50);
    const third = sk.rcvRttUs >> 3;
    assert.ok(third < first && third > 40_000, `sample ${third} us after ${first}`);
  });

  test(`${name}: autotuning waits a receiver RTT, not the handshake's, and grows the buffer to four times what was read in it`, () => {
    const t = new TcpHarness(family);
    const sk = t.accept([['mss', MSS], ['nop'], ['nop'], ['TS', 100, 0], ['nop'], ['wscale', 7]], 50000);
    t.out();
    const rcvbuf0 = sk.rcvbuf;
    assert.equal(tcpGetInfo(t.tcp, sk).tcpi_rcv_space, Math.min(sk.rcvSsthresh, sk.rcvWnd, 10 * sk.advmss), 'the initial window is the baseline');
    const buf = Buffer.alloc(256 * 1024);
    let seq = 1;
    let peerTs = 200;
    // 60 segments, one a millisecond, each echoing the TSval the stack had 50 ms before: the data's RTT is
    // 50 ms while the handshake's was 0. Autotuning may act only once 50 ms have passed since its start.
    const start = t.time.now();
    const grownAt: number[] = [];
    let last = sk.rcvbuf;
    for (let i = 0; i < 60; i++) {
      t.time.advance(1);
      const echo = (Math.floor(t.time.now()) - 50 + sk.tsOff) >>> 0;
      t.send({ flags: A, seq, ack: 1, payload: MSS, options: [['nop'], ['nop'], ['TS', peerTs++, echo]] });
      seq += MSS;
      while (tcpRecvmsg(t.tcp, sk, buf) > 0);
      if (sk.rcvbuf !== last) {
        grownAt.push(t.time.now() - start);
        last = sk.rcvbuf;
      }
    }
    assert.equal(sk.rcvRttUs >> 3, 50_000);
    assert.equal(grownAt.length, 1, `the buffer grew at ${grownAt.join(', ')} ms`);
    assert.ok(grownAt[0] >= 50 && grownAt[0] < 52, `the buffer grew at ${grownAt[0]} ms, not after one receiver RTT`);
    // What was read in that RTT (about 50 segments), four times over.
    assert.ok(sk.rcvbuf > rcvbuf0 && sk.rcvbuf >= 4 * 49 * MSS && sk.rcvbuf <= 4 * 51 * MSS, `rcvbuf ${rcvbuf0} -> ${sk.rcvbuf}`);
    assert.equal(tcpGetInfo(t.tcp, sk).tcpi_rcv_space, sk.rcvbuf / 4);
  });
}
