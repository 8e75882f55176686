import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Family } from '../lib/frames.js';
import { TcpHarness, A, S, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { tcpAccept, tcpSendmsg } from '../../src/net/ipv4/tcp.js';
import { TCP_CA_Loss, TCP_CA_Open, TCP_CA_Recovery, type TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { tcpGetInfo } from '../../src/net/ipv4/tcp_info.js';
import { tcpInitCongestionControl } from '../../src/net/ipv4/tcp_cong.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { AF_INET } from '../../src/uapi.js';

/**
 * A passive connection whose handshake took `rtt` ms (SYN-ACK to ACK), as
 * in packetdrill's usual "+.1 < . 1:1(0) ack 1" preamble.
 */
function open(family: Family, opts: { mss?: number; sack?: boolean; ts?: boolean; rtt?: number; win?: number; wscale?: number } = {}): TcpHarness {
  const t = new TcpHarness(family);
  t.listen();
  const o: (string | number)[][] = [['mss', opts.mss ?? 1000]];
  if (opts.sack !== false) o.push(['sackOK']);
  if (opts.ts) o.push(['TS', 100, 0]);
  o.push(['nop'], ['wscale', opts.wscale ?? 7]);
  t.send({ flags: S, seq: 0, win: 32792, options: o });
  const synack = t.out();
  assert.equal(synack[0].flags, 'S.');
  t.time.advance(opts.rtt ?? 100);
  t.send({ flags: A, seq: 1, ack: 1, win: opts.win ?? 320 });
  const c = tcpAccept(t.tcp, t.listener!);
  if (typeof c === 'number') throw new Error(`accept ${c}`);
  t.sk = c;
  t.out();
  return t;
}

/** A SACK block relative to the stack's ISN. */
function sack(t: TcpHarness, ...edges: number[]): (string | number)[] {
  return ['sack', ...edges.map((e) => (t.stackIsn + e) >>> 0)];
}

function dataSegs(t: TcpHarness) {
  return t.out().filter((s) => s.len > 0);
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: PRR-SSRB (prr-ss-10pkt-lost-1): RACK marks the hole after 3 SACKs, cwnd 7, then one new segment per SACK`, () => {
    const t = open(family, { rtt: 100 });
    const sk = t.sk!;
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(10000, 1)), 10000);
    assert.equal(dataSegs(t).reduce((n, s) => n + s.len, 0), 10000);
    t.time.advance(110);
    t.send({ flags: A, seq: 1, ack: 1, win: 320, options: [sack(t, 1001, 2001), ['nop'], ['nop']] });
    t.time.advance(10);
    t.send({ flags: A, seq: 1, ack: 1, win: 320, options: [sack(t, 1001, 3001), ['nop'], ['nop']] });
    assert.deepEqual(dataSegs(t), [], 'two SACKs: RACK still waits (reordering window)');
    t.time.advance(10);
    t.send({ flags: A, seq: 1, ack: 1, win: 320, options: [sack(t, 1001, 4001), ['nop'], ['nop']] });
    const fr = dataSegs(t);
    assert.deepEqual(fr.map((s) => [s.seq, s.len]), [[1, 1000]], 'the fast retransmit');
    t.time.advance(10);
    let info = tcpGetInfo(t.tcp, sk);
    assert.equal(info.tcpi_ca_state, TCP_CA_Recovery);
    assert.equal(info.tcpi_snd_cwnd, 7);
    assert.equal(info.tcpi_snd_ssthresh, 7);

    t.time.advance(10);
    assert.equal(tcpSendmsg(t.tcp, sk, Buffer.alloc(7000, 2)), 7000);
    assert.deepEqual(dataSegs(t), [], 'in-flight is at ssthresh: nothing new yet');
    for (let k = 5; k <= 10; k++) {
      t.time.advance(10);
      t.send({ flags: A, seq: 1, ack: 1, win: 320, options: [sack(t, 1001, k * 1000 + 1), ['nop'], ['nop']] });
      const out = dataSegs(t);
      assert.deepEqual(out.map((s) => [s.seq, s.len]), [[10001 + (k - 5) * 1000, 1000]], `SACK up to ${k}000`);
    }
    t.time.advance(20);
    t.send({ flags: A, seq: 1, ack: 10001, win: 320 });
    const last = dataSegs(t);
    assert.deepEqual(last.map((s) => [s.seq, s.len, s.flags]), [[16001, 1000, 'P.']]);
    t.time.advance(10);
    info = tcpGetInfo(t.tcp, sk);
    assert.equal(info.tcpi_ca_state, TCP_CA_Open);
    assert.equal(info.tcpi_snd_cwnd, 7);
    assert.equal(info.tcpi_snd_ssthresh, 7);
    assert.equal(t.mibs.TcpExt.TCPSackRecovery, 1);
  });
}

// IPv4 only: the script's mss 1460 is more than IPv6 allows on a 1500-byte MTU.
test('fast retransmit with SACK (fr-4pkt-sack): 4 segments, 3 SACKs, the head is resent at once', () => {
  const t = open(AF_INET, { mss: 1460, rtt: 100, win: 257 });
  tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(5840, 1));
  assert.equal(dataSegs(t).length, 4);
  t.time.advance(100);
  t.send({ flags: A, seq: 1, ack: 1, win: 257, options: [sack(t, 1461, 2921), ['nop'], ['nop']] });
  t.send({ flags: A, seq: 1, ack: 1, win: 257, options: [sack(t, 1461, 4381), ['nop'], ['nop']] });
  assert.deepEqual(dataSegs(t), []);
  t.send({ flags: A, seq: 1, ack: 1, win: 257, options: [sack(t, 1461, 5841), ['nop'], ['nop']] });
  assert.deepEqual(dataSegs(t).map((s) => [s.seq, s.len]), [[1, 1460]]);
  t.time.advance(100);
  t.send({ flags: A, seq: 1, ack: 5841, win: 257 });
  assert.equal(t.sk!.caState, TCP_CA_Open);
  assert.equal(t.sk!.packetsOut, 0);
  assert.equal(t.sk!.sackedOut + t.sk!.lostOut + t.sk!.retransOut, 0, 'scoreboard empty');
});

for (const family of FAMILIES) {
  test(`${familyName(family)}: SACK scoreboard: holes at 2 and 5 of 8 are marked lost and resent in order; sacked/lost/retrans counts`, () => {
    const t = open(family, { rtt: 100 });
    const sk = t.sk!;
    tcpSendmsg(t.tcp, sk, Buffer.alloc(8000, 1));
    assert.equal(dataSegs(t).length, 8);
    t.time.advance(100);
    // Segment 1 arrives, 2 is lost, 3-4 arrive, 5 is lost, 6-8 arrive.
    t.send({ flags: A, seq: 1, ack: 1001 });
    t.send({ flags: A, seq: 1, ack: 1001, options: [sack(t, 2001, 4001), ['nop'], ['nop']] });
    t.send({ flags: A, seq: 1, ack: 1001, options: [sack(t, 5001, 8001, 2001, 4001), ['nop'], ['nop']] });
    const r = dataSegs(t);
    assert.deepEqual(r.map((s) => s.seq), [1001, 4001], 'both holes resent, in sequence order');
    assert.equal(sk.caState, TCP_CA_Recovery);
    assert.equal(sk.sackedOut, 5);
    assert.equal(sk.lostOut, 2);
    assert.equal(sk.retransOut, 2);
    t.time.advance(100);
    t.send({ flags: A, seq: 1, ack: 8001 });
    assert.equal(sk.packetsOut, 0);
    assert.equal(sk.sackedOut + sk.lostOut + sk.retransOut, 0);
  });

  test(`${familyName(family)}: D-SACK of every retransmission undoes the recovery (spurious fast retransmit after reordering)`, () => {
    const t = open(family, { rtt: 100 });
    const sk = t.sk!;
    tcpSendmsg(t.tcp, sk, Buffer.alloc(10000, 1));
    dataSegs(t);
    t.time.advance(100);
    for (const e of [2001, 3001, 4001]) t.send({ flags: A, seq: 1, ack: 1, options: [sack(t, 1001, e), ['nop'], ['nop']] });
    assert.deepEqual(dataSegs(t).map((s) => s.seq), [1]);
    assert.equal(sk.caState, TCP_CA_Recovery);
    assert.equal(sk.sndSsthresh, 7);
    // The original was only delayed: it arrives (ACK 4001), then the retransmission is D-SACKed.
    t.send({ flags: A, seq: 1, ack: 4001 });
    t.send({ flags: A, seq: 1, ack: 4001, options: [sack(t, 1, 1001), ['nop'], ['nop']] });
    assert.equal(t.mibs.TcpExt.TCPDSACKUndo, 1);
    assert.equal(sk.sndSsthresh > 7, true, 'ssthresh restored');
    assert.equal(sk.dsackDups, 1);
    assert.equal(sk.undoMarker, 0);
  });

  test(`${familyName(family)}: TLP: a tail loss is probed at 2*srtt + 2 ms with the last segment; its SACK starts recovery of the rest`, () => {
    const t = open(family, { rtt: 100 });
    const sk = t.sk!;
    tcpSendmsg(t.tcp, sk, Buffer.alloc(10000, 1));
    dataSegs(t);
    t.time.advance(100);
    t.send({ flags: A, seq: 1, ack: 5001 });
    assert.equal(sk.srttUs >> 3, 100_000);
    const acked = t.time.now();
    let probe: { seq: number; len: number; at: number } | null = null;
    for (let i = 0; i < 400 && !probe; i++) {
      t.time.advance(1);
      const d = dataSegs(t);
      if (d.length) probe = { seq: d[0].seq, len: d[0].len, at: t.time.now() - acked };
    }
    assert.deepEqual(probe, { seq: 9001, len: 1000, at: 202 }, 'PTO = 2*srtt + TCP_TIMEOUT_MIN, before the RTO (300 ms)');
    assert.equal(t.mibs.TcpExt.TCPLossProbes, 1);
    // The probe's SACK comes back one RTT later.
    t.time.advance(100);
    t.send({ flags: A, seq: 1, ack: 5001, options: [sack(t, 9001, 10001), ['nop'], ['nop']] });
    const r = dataSegs(t);
    assert.equal(r[0]?.seq, 5001, 'RACK marks the older tail lost; the first hole goes out at once');
    assert.equal(sk.caState, TCP_CA_Recovery);
  });

  test(`${familyName(family)}: RTO then F-RTO: an ACK of never-retransmitted data shows the timeout spurious and undoes it`, () => {
    const t = open(family, { rtt: 100 });
    const sk = t.sk!;
    tcpSendmsg(t.tcp, sk, Buffer.alloc(20000, 1));
    const first = dataSegs(t);
    assert.equal(first.length, 10);
    const rto = sk.rto;
    t.time.advance(rto);
    // The TLP went first (at 2*srtt+2), then the RTO.
    let segs = dataSegs(t);
    while (!segs.some((s) => s.seq === 1)) {
      t.time.advance(1);
      segs = dataSegs(t);
    }
    assert.equal(sk.caState, TCP_CA_Loss);
    assert.equal(sk.frto, true);
    assert.equal(sk.sndCwnd, 1, 'everything marked lost: cwnd = in flight + 1');
    // The loss probe sent new data (segment 11) first: all 11 are marked lost.
    assert.equal(sk.packetsOut, 11);
    assert.equal(sk.lostOut, 11);
    // The originals were just slow: an ACK covers the retransmitted head and a never-retransmitted segment.
    t.send({ flags: A, seq: 1, ack: 2001 });
    assert.equal(t.mibs.TcpExt.TCPSpuriousRTOs, 1);
    assert.equal(sk.caState, TCP_CA_Open);
    // Restored to 10, then slow start adds the 2 segments this ACK delivered (cong_control runs after the undo).
    assert.equal(sk.sndCwnd, 12, 'cwnd restored');
    assert.equal(sk.sndSsthresh, 0x7fffffff);
    assert.equal(sk.lostOut, 0);
  });

  test(`${familyName(family)}: tcp_retries2: an unanswered connection gives up with ETIMEDOUT after the modelled time`, () => {
    const t = open(family, { rtt: 100 });
    const sk = t.sk!;
    t.tcp.sysctl.tcp_retries2 = 3;
    tcpSendmsg(t.tcp, sk, Buffer.alloc(1000, 1));
    dataSegs(t);
    const start = t.time.now();
    let n = 0;
    for (let i = 0; i < 200 && sk.state !== 7; i++) {
      t.time.advance(100);
      n += dataSegs(t).length;
    }
    assert.equal(sk.state, 7, 'closed');
    assert.equal(sk.err, 110, 'ETIMEDOUT');
    assert.ok(n >= 3, `retransmissions ${n}`);
    assert.ok(t.time.now() - start < 20_000);
  });
}

/** Drive CUBIC's cong_avoid one RTT at a time with every segment acked (a clean, cwnd-limited link). */
function cubicRun(sk: TcpSock, rttMs: number, rounds: number, start: number): number[] {
  const w: number[] = [];
  let now = start;
  for (let r = 0; r < rounds; r++) {
    const cwnd = sk.sndCwnd;
    sk.isCwndLimited = true;
    sk.maxPacketsOut = cwnd;
    // ACKs spread over the RTT, two segments each.
    for (let k = 0; k < cwnd; k += 2) {
      now += (rttMs * 2) / cwnd;
      sk.caOps.congAvoid!(sk, 0, Math.min(2, cwnd - k), now);
    }
    w.push(sk.sndCwnd);
  }
  return w;
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: CUBIC: after a loss the window is cut to 0.7 W_max and regrows concave to W_max at K, then convex`, () => {
    const t = new TcpHarness(family);
    const sk = tcpNewSock(t.tcp);
    tcpInitCongestionControl(sk, t.tcp.congestion.find('cubic')!, 0);
    sk.srttUs = 100_000 << 3;
    sk.sndCwnd = 200;
    sk.sndSsthresh = 100;
    const ca = sk.caPriv as { delayMin: number; lastMaxCwnd: number };
    ca.delayMin = 100_000;
    sk.sndSsthresh = sk.caOps.ssthresh(sk);
    assert.equal(sk.sndSsthresh, 140, '200 * 717/1024');
    assert.equal(ca.lastMaxCwnd, 200);
    sk.sndCwnd = sk.sndSsthresh;
    // K = cbrt(W_max * (1 - beta) / C) = cbrt(200 * 0.3 / 0.4) ~ 5.3 s = 53 RTTs.
    const w = cubicRun(sk, 100, 90, 10_000);
    const inc = w.map((x, i) => x - (i ? w[i - 1] : 140));
    const early = inc.slice(1, 11).reduce((a, b) => a + b, 0);
    const plateau = inc.slice(44, 54).reduce((a, b) => a + b, 0);
    const late = inc.slice(80, 90).reduce((a, b) => a + b, 0);
    assert.ok(early > plateau * 2, `concave: fast at first (${early}) then slow near W_max (${plateau})`);
    assert.ok(late > plateau * 2, `convex: fast again past K (${late} vs ${plateau})`);
    const atK = w[52];
    assert.ok(Math.abs(atK - 200) <= 6, `about W_max at K: ${atK}`);
    assert.ok(w[89] > 215, `probing beyond W_max: ${w[89]}`);
  });

  test(`${familyName(family)}: CUBIC HyStart: a delay increase in slow start ends it (ssthresh = cwnd) before any loss`, () => {
    const t = new TcpHarness(family);
    const sk = tcpNewSock(t.tcp);
    tcpInitCongestionControl(sk, t.tcp.congestion.find('cubic')!, 0);
    sk.sndCwnd = 32;
    sk.sndSsthresh = 0x7fffffff;
    sk.sndUna = 0;
    sk.sndNxt = 1;
    // Round 1 learns delay_min 100 ms; later samples are 120 ms (above 100 + max(4, 100/8) ms).
    let now = 2000;
    for (let i = 0; i < 8; i++) sk.caOps.pktsAcked!(sk, { pktsAcked: 1, rttUs: 100_000, inFlight: 0 }, (now += 5));
    assert.equal(sk.sndSsthresh, 0x7fffffff);
    // The next round (snd_una passes the round's end) sees the larger delay.
    sk.sndUna = 10;
    sk.sndNxt = 20;
    for (let i = 0; i < 9; i++) sk.caOps.pktsAcked!(sk, { pktsAcked: 1, rttUs: 120_000, inFlight: 0 }, (now += 5));
    assert.equal(sk.sndSsthresh, 32, 'slow start ends at the current cwnd');
    assert.equal(sk.hystartDelayDetect, 1);
  });

  test(`${familyName(family)}: receiver SACK blocks in Linux order: newest first, MRU, coalescing, 4 kept, 3 on the wire with timestamps`, () => {
    const t = new TcpHarness(family);
    t.accept([['mss', 1000], ['sackOK'], ['TS', 100, 0], ['nop'], ['wscale', 7]], 50000);
    t.out();
    const b = t.peerIsn;
    const ts = [['nop'], ['nop'], ['TS', 200, 0]] as (string | number)[][];
    const blocks = (o: string) => (/sack ([\d: ]+)/.exec(o)?.[1] ?? '').split(' ').filter(Boolean).map((x) => x.split(':').map((v) => (Number(v) - b) >>> 0).join('-'));
    const seg = (k: number) => {
      t.send({ flags: A, seq: 1 + 1000 * k, ack: 1, payload: 1000, options: ts });
      const o = t.out();
      return blocks(o[o.length - 1].options);
    };
    assert.deepEqual(seg(2), ['2001-3001']);
    assert.deepEqual(seg(4), ['4001-5001', '2001-3001']);
    assert.deepEqual(seg(6), ['6001-7001', '4001-5001', '2001-3001']);
    // Extending an older block moves it to the front.
    assert.deepEqual(seg(3), ['2001-5001', '6001-7001']);
    assert.deepEqual(seg(8), ['8001-9001', '2001-5001', '6001-7001']);
    assert.deepEqual(seg(10), ['10001-11001', '8001-9001', '2001-5001'], 'four remembered, three fit with timestamps');
    // A duplicate of out-of-order data: D-SACK first, then the block holding it moved to the front.
    assert.deepEqual(seg(6), ['6001-7001', '6001-7001', '10001-11001']);
    // The hole at the head fills: blocks below rcv_nxt go.
    t.send({ flags: A, seq: 1, ack: 1, payload: 2000, options: ts });
    const o = t.out();
    assert.equal(o[o.length - 1].ack, 5001);
    assert.deepEqual(blocks(o[o.length - 1].options), ['6001-7001', '10001-11001', '8001-9001']);
  });
}

const ECE = 0x40;
const CWR = 0x80;

for (const family of FAMILIES) {
  test(`${familyName(family)}: ECN (ecn-uses-ect0): tcp_ecn=1 asks with SYN ECE+CWR; SYN-ACK ECE agrees; data goes out ECT(0), ACKs not ECT`, () => {
    const t = new TcpHarness(family);
    t.tcp.sysctl.tcp_ecn = 1;
    const sk = t.connect();
    const [syn] = t.out();
    assert.equal(syn.tcpFlags & (ECE | CWR), ECE | CWR);
    assert.equal(syn.tos & 3, 0, 'the SYN is not ECT');
    t.send({ flags: S | A | ECE, seq: 0, ack: 1, win: 32767, options: [['mss', 1000], ['nop'], ['wscale', 6], ['nop'], ['nop'], ['sackOK']] });
    const [ack] = t.out();
    assert.equal(ack.tos & 3, 0);
    assert.equal(tcpGetInfo(t.tcp, sk).tcpi_options & 8, 8, 'TCPI_OPT_ECN');
    tcpSendmsg(t.tcp, sk, Buffer.alloc(1000, 1));
    const [data] = t.out();
    assert.equal(data.tos & 3, 2, 'ECT(0)');
  });

  test(`${familyName(family)}: ECN response: CE is echoed with ECE until CWR; ECE makes the sender enter CWR once and set CWR on new data`, () => {
    const t = new TcpHarness(family);
    t.listen();
    t.send({ flags: S | ECE | CWR, seq: 0, win: 50000, options: [['mss', 1000], ['sackOK'], ['nop'], ['wscale', 7]] });
    const [synack] = t.out();
    assert.equal(synack.tcpFlags & (ECE | CWR), ECE, 'tcp_ecn=2 accepts');
    t.time.advance(100);
    t.send({ flags: A, seq: 1, ack: 1, win: 400 });
    const c = tcpAccept(t.tcp, t.listener!);
    if (typeof c === 'number') throw new Error('accept');
    t.sk = c;
    // Receiver side: a CE-marked segment is echoed with ECE.
    t.send({ flags: A, seq: 1, ack: 1, win: 400, payload: 100, tos: 3 });
    let out = t.out();
    assert.ok(out.length && out[out.length - 1].tcpFlags & ECE, 'ECE echoed');
    t.send({ flags: A, seq: 101, ack: 1, win: 400, payload: 100 });
    out = t.out();
    assert.ok(out.every((s) => s.tcpFlags & ECE), 'echo continues until CWR');
    t.send({ flags: A | CWR, seq: 201, ack: 1, win: 400, payload: 100 });
    out = t.out();
    assert.ok(out.length && !(out[out.length - 1].tcpFlags & ECE), 'CWR stops the echo');
    // Sender side: ECE on an ACK of new data: CWR state, ssthresh 7, and the next new data carries CWR.
    tcpSendmsg(t.tcp, c, Buffer.alloc(10000, 1));
    t.out();
    t.time.advance(100);
    t.send({ flags: A | ECE, seq: 301, ack: 1001, win: 400 });
    assert.equal(c.caState, 2, 'TCP_CA_CWR');
    assert.equal(c.sndSsthresh, 7);
    tcpSendmsg(t.tcp, c, Buffer.alloc(1000, 1));
    t.send({ flags: A | ECE, seq: 301, ack: 3001, win: 400 });
    const news = t.out().filter((s) => s.len > 0);
    assert.ok(news.length > 0);
    assert.equal(news[0].tcpFlags & CWR, CWR, 'CWR on the first new segment');
    assert.ok(news.slice(1).every((s) => !(s.tcpFlags & CWR)), 'only once');
    assert.equal(c.sndSsthresh, 7, 'one reduction per window');
  });

  test(`${familyName(family)}: limited transmit without SACK (limited-transmit-no-sack): one new segment per early dupack; reordering reverts to Open`, () => {
    const t = open(family, { sack: false, rtt: 100 });
    const sk = t.sk!;
    tcpSendmsg(t.tcp, sk, Buffer.alloc(15000, 1));
    assert.equal(dataSegs(t).reduce((n, s) => n + s.len, 0), 10000);
    t.time.advance(110);
    t.send({ flags: A, seq: 1, ack: 1, win: 320 });
    assert.deepEqual(dataSegs(t).map((s) => [s.seq, s.len]), [[10001, 1000]]);
    t.time.advance(10);
    t.send({ flags: A, seq: 1, ack: 1, win: 320 });
    assert.deepEqual(dataSegs(t).map((s) => [s.seq, s.len]), [[11001, 1000]]);
    t.time.advance(10);
    t.send({ flags: A, seq: 1, ack: 3001, win: 320 });
    // Slow start 10 -> 11 with 9 in flight: two segments.
    assert.deepEqual(dataSegs(t).map((s) => [s.seq, s.len]), [[12001, 1000], [13001, 1000]]);
    assert.equal(sk.caState, TCP_CA_Open);
    assert.equal(sk.sndCwnd, 11);
    t.time.advance(20);
    t.send({ flags: A, seq: 1, ack: 5001, win: 320 });
    assert.deepEqual(dataSegs(t).map((s) => [s.seq, s.len]), [[14001, 1000]]);
  });

  test(`${familyName(family)}: slow start after idle (slow-start-after-idle): cwnd 36 idles 2 s and restarts at 10`, async () => {
    const { sysctlSet } = await import('../../src/net/sysctl.js');
    const { tcpSetsockopt } = await import('../../src/net/ipv4/tcp.js');
    const { SOL_SOCKET, SO_SNDBUF } = await import('../../src/uapi.js');
    const t = new TcpHarness(family);
    sysctlSet(t.h.stack, 'net.ipv4.tcp_slow_start_after_idle', 1);
    sysctlSet(t.h.stack, 'net.ipv4.tcp_min_tso_segs', 10);
    t.listen();
    t.send({ flags: S, seq: 0, win: 65535, options: [['mss', 1000], ['sackOK'], ['nop'], ['nop'], ['nop'], ['wscale', 7]] });
    t.out();
    t.time.advance(100);
    t.send({ flags: A, seq: 1, ack: 1, win: 511 });
    const c = tcpAccept(t.tcp, t.listener!);
    if (typeof c === 'number') throw new Error('accept');
    t.sk = c;
    tcpSetsockopt(t.tcp, c, SOL_SOCKET, SO_SNDBUF, 200000);
    tcpSendmsg(t.tcp, c, Buffer.alloc(26000, 1));
    assert.equal(dataSegs(t).reduce((n, s) => n + s.len, 0), 10000);
    assert.equal(c.sndCwnd, 10);
    t.time.advance(100);
    t.send({ flags: A, seq: 1, ack: 10001, win: 511 });
    assert.equal(c.sndCwnd, 20);
    assert.equal(dataSegs(t).reduce((n, s) => n + s.len, 0), 16000);
    t.time.advance(100);
    t.send({ flags: A, seq: 1, ack: 26001, win: 511 });
    assert.equal(c.sndCwnd, 36);
    t.time.advance(2000);
    tcpSendmsg(t.tcp, c, Buffer.alloc(20000, 1));
    // Two bursts of half the restarted window each (tcp_cwnd_test), not the 36 segments cwnd allowed before.
    assert.equal(dataSegs(t).reduce((n, s) => n + s.len, 0), 10000);
    assert.equal(c.sndCwnd, 10);
    // tcp_current_ssthresh: max(ssthresh, 3/4 cwnd) keeps the infinite ssthresh of a connection that never lost.
    assert.equal(c.sndSsthresh, 0x7fffffff);
  });

  test(`${familyName(family)}: cwnd trace over a clean 100 ms link with one loss: CUBIC regrows concave then convex (shape)`, async (tc) => {
    const { sysctlSet } = await import('../../src/net/sysctl.js');
    const t = new TcpHarness(family);
    sysctlSet(t.h.stack, 'net.ipv4.tcp_cwnd_trace', 1);
    const trace: { t: number; cwnd: number; ca: number }[] = [];
    t.tcp.cwndTrace = (_sk, now, cwnd, _ss, ca) => trace.push({ t: now, cwnd, ca });
    t.accept([['mss', 1000], ['sackOK'], ['nop'], ['wscale', 9]], 65535);
    t.out();
    const sk = t.sk!;
    const chunk = Buffer.alloc(64 * 1024, 7);
    // The peer: ACKs each segment 100 ms after it was sent (RTT 100 ms: with a 20 ms RTT Reno-friendly growth
    // would hide the cubic curve, as in Linux), with SACK blocks for holes.
    let rcvNxt = 1;
    const ofo: [number, number][] = [];
    const pending: { at: number; ack: number; sack: [number, number][] }[] = [];
    let dropAt = -1;
    let dropped = false;
    const deadline = t.time.now() + 16_000;
    while (t.time.now() < deadline) {
      while (tcpSendmsg(t.tcp, sk, chunk) > 0);
      for (const s of t.out()) {
        if (!s.len) continue;
        if (!dropped && dropAt < 0 && sk.sndCwnd >= 120) dropAt = s.seq;
        if (s.seq === dropAt && !dropped) {
          dropped = true;
          continue;
        }
        const end = s.seq + s.len;
        if (s.seq <= rcvNxt) {
          rcvNxt = Math.max(rcvNxt, end);
          for (let i = 0; i < ofo.length; ) {
            if (ofo[i][0] <= rcvNxt) {
              rcvNxt = Math.max(rcvNxt, ofo[i][1]);
              ofo.splice(i, 1);
            } else i++;
          }
        } else if (!ofo.some(([a, b]) => a <= s.seq && end <= b)) {
          const near = ofo.find(([a, b]) => end === a || s.seq === b);
          if (near) {
            near[0] = Math.min(near[0], s.seq);
            near[1] = Math.max(near[1], end);
          } else ofo.unshift([s.seq, end]);
        }
        pending.push({ at: t.time.now() + 100, ack: rcvNxt, sack: ofo.slice(0, 3).map(([a, b]) => [a, b]) });
      }
      t.time.advance(1);
      while (pending.length && pending[0].at <= t.time.now()) {
        const p = pending.shift()!;
        const opts: (string | number)[][] = p.sack.length ? [sack(t, ...p.sack.flat()), ['nop'], ['nop']] : [];
        t.send({ flags: A, seq: 1, ack: p.ack, win: 65535, options: opts });
      }
    }
    assert.ok(dropped, 'the loss happened');
    const rec = trace.findIndex((p) => p.ca === TCP_CA_Recovery);
    assert.ok(rec > 0, 'one fast recovery');
    const wmax = Math.max(...trace.slice(0, rec).map((p) => p.cwnd));
    const endRec = trace.findIndex((p, i) => i > rec && p.ca === TCP_CA_Open);
    const base = trace[endRec];
    assert.ok(Math.abs(base.cwnd - Math.floor((wmax * 717) / 1024)) <= 2, `cut to 0.7 W_max: ${base.cwnd} from ${wmax}`);
    assert.equal(trace.slice(endRec).filter((p) => p.ca !== TCP_CA_Open).length, 0, 'no further loss on a clean link');
    // cwnd per second after recovery: growth slows toward W_max (concave), then speeds up past it (convex).
    const at = (dt: number) => trace.filter((p) => p.t <= base.t + dt).pop()!.cwnd;
    const w = [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10_000, 11_000].map(at);
    const inc = w.slice(1).map((x, i) => x - w[i]);
    const k = inc.indexOf(Math.min(...inc));
    tc.diagnostic(`cubic trace: W_max ${wmax}, cwnd per s after recovery: ${w.join(" ")}`);
    assert.ok(k > 0 && k < inc.length - 1, `slowest growth in the middle (near W_max): ${w.join(' ')}`);
    assert.ok(inc[0] > inc[k] && inc[inc.length - 1] > inc[k], `concave then convex: ${w.join(' ')}`);
    assert.ok(Math.abs(w[k] - wmax) <= wmax * 0.1, `the plateau is at W_max ${wmax}: ${w.join(' ')}`);
  });
}
