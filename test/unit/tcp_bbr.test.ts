/**
 * BBR (tcp_bbr.ts) over a modelled bottleneck on the virtual clock
 * (test/lib/bottleneck.ts): the mode sequence STARTUP, DRAIN, PROBE_BW; the
 * bandwidth and min-RTT model against the path's; the PROBE_BW gain cycle;
 * PROBE_RTT after 10 s without a new min RTT; the max-bandwidth filter's
 * window of 10 rounds; long-term sampling under a token-bucket policer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bottleneck } from '../lib/bottleneck.js';
import { BBR_MODE_NAMES, BBR_PROBE_BW, BBR_PROBE_RTT, Bbr, bbrDrainGain, bbrHighGain, bbrMode } from '../../src/net/ipv4/tcp_bbr.js';
import { SK_PACING_NEEDED } from '../../src/net/core/sock.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { tcpSockGetsockopt } from '../../src/net/ipv4/tcp_setsockopt.js';
import { SOL_TCP, TCP_CC_INFO } from '../../src/uapi.js';

function info(sk: TcpSock) {
  const i = sk.caOps.getInfo!(sk);
  if (!i || i.kind !== 'bbr') throw new Error('not bbr');
  return i.bbr;
}

/** Payload bytes per second through a bottleneck of `rate` bytes/ms of 1514-byte frames carrying 1448. */
function payloadRate(rate: number): number {
  return (rate * 1000 * 1448) / 1514;
}

/** The modes a run went through, in order, with the time each began. */
function modes(p: Bottleneck, ms: number, each?: (sk: TcpSock, now: number) => void): [string, number][] {
  const seen: [string, number][] = [];
  p.run(ms, (sk, now) => {
    const m = BBR_MODE_NAMES[bbrMode(sk)];
    if (!seen.length || seen[seen.length - 1][0] !== m) seen.push([m, now]);
    each?.(sk, now);
  });
  return seen;
}

test('BBR: STARTUP, DRAIN, then PROBE_BW; the model is the path (bandwidth, min RTT); paced at 99% of it in steady state; the gain cycle 5/4, 3/4, 1 x 6 a min RTT each', () => {
  const p = new Bottleneck({ rate: 1250, buffer: 100_000, delay: 10 });
  const sk = p.connect('bbr');
  assert.equal(sk.pacingStatus, SK_PACING_NEEDED, 'BBR asks for pacing: TCP paces itself (no fq)');
  const gains: number[] = [];
  const seen = modes(p, 3000, (s) => gains.push(info(s).pacingGain));
  assert.deepEqual(seen.map(([m]) => m), ['STARTUP', 'DRAIN', 'PROBE_BW']);
  const [, drainAt] = seen[1];
  const [, probeBwAt] = seen[2];
  assert.ok(drainAt < 400 && probeBwAt - drainAt < 100, `DRAIN at ${drainAt} ms, PROBE_BW at ${probeBwAt} ms`);
  const b = info(sk);
  const bw = payloadRate(1250);
  assert.ok(Math.abs(b.bw - bw) / bw < 0.01, `bw ${b.bw} against the path's ${bw}`);
  // 20 ms of propagation and one frame's serialization (1.2 ms), and the receiver's ACK.
  assert.ok(b.minRtt >= 20_000 && b.minRtt < 22_000, `min RTT ${b.minRtt} us`);
  assert.equal(p.ab.drops, 0);
  // TCP_CC_INFO: struct tcp_bbr_info, as getsockopt and ss -i read it.
  const cc = tcpSockGetsockopt(p.a.tcp, sk, SOL_TCP, TCP_CC_INFO) as Buffer;
  assert.deepEqual([cc.length, cc.readUInt32LE(0), cc.readUInt32LE(4), cc.readUInt32LE(8), cc.readUInt32LE(12), cc.readUInt32LE(16)], [20, b.bw, 0, b.minRtt, b.pacingGain, b.cwndGain]);
  // STARTUP's and DRAIN's gains, then the cycle.
  assert.equal(gains.includes(bbrHighGain), true);
  assert.equal(gains.includes(bbrDrainGain), true);
  const steady = gains.slice(1000);
  // Each phase change in order through the cycle, each phase at least a min RTT long.
  const runs: [number, number][] = [];
  for (const g of steady) {
    if (runs.length && runs[runs.length - 1][0] === g) runs[runs.length - 1][1]++;
    else runs.push([g, 1]);
  }
  const order = runs.map(([g]) => g);
  for (let i = 0; i + 2 < order.length; i++) {
    if (order[i] === 320) assert.equal(order[i + 1], 192, `after 5/4 comes 3/4: ${order.slice(i, i + 3)}`);
    if (order[i] === 192) assert.equal(order[i + 1], 256);
  }
  assert.ok(order.filter((g) => g === 320).length >= 10, 'a cycle about every 8 min RTTs');
  // Probing lasts at least a min RTT; draining ends early once in flight is down to the BDP.
  for (const [g, len] of runs.slice(1, -1)) if (g === 320) assert.ok(len >= 20, `phase ${g} lasted ${len} ms`);
  // At gain 1 the pacing rate is the bandwidth, 1% under.
  let cruising = 0;
  p.run(400, (s) => {
    const i = info(s);
    if (i.pacingGain !== 256) return;
    cruising++;
    assert.ok(Math.abs(s.pacingRate - 0.99 * i.bw) <= 2, `pacing rate ${s.pacingRate} for bw ${i.bw}`);
  });
  assert.ok(cruising > 200);
  // Delivered what the path carries (less STARTUP's first round trips).
  assert.ok(p.received > 0.9 * bw * 3.4, `received ${p.received}`);
});

test('BBR: PROBE_RTT 10 s after the last new min RTT (the path got longer): 4 packets in flight for 200 ms and a round, then PROBE_BW with the new min RTT', () => {
  const p = new Bottleneck({ rate: 1250, buffer: 100_000, delay: 10 });
  const sk = p.connect('bbr');
  p.run(1000);
  const b = sk.caPriv as Bbr;
  const stamp = b.minRttStamp;
  const oldMin = b.minRttUs;
  // 5 ms more each way: the min RTT measured so far is never seen again.
  p.ab.spec = { ...p.ab.spec, delay: 15 };
  p.ba.spec = p.ab.spec;
  let enteredAt = 0;
  let leftAt = 0;
  let maxCwnd = 0;
  const seen = modes(p, 11_000, (s, now) => {
    if (bbrMode(s) === BBR_PROBE_RTT) {
      if (!enteredAt) enteredAt = now;
      if (s.sndCwnd > maxCwnd) maxCwnd = s.sndCwnd;
    } else if (enteredAt && !leftAt) leftAt = now;
  });
  assert.deepEqual(seen.map(([m]) => m), ['PROBE_BW', 'PROBE_RTT', 'PROBE_BW']);
  assert.ok(enteredAt > stamp + 10_000 && enteredAt <= stamp + 10_000 + 40, `PROBE_RTT at ${enteredAt}, min RTT stamped at ${stamp}`);
  assert.equal(maxCwnd, 4, 'cwnd at bbr_cwnd_min_target');
  assert.ok(leftAt - enteredAt >= 200 && leftAt - enteredAt < 400, `PROBE_RTT lasted ${leftAt - enteredAt} ms`);
  assert.ok(b.minRttUs >= oldMin + 10_000, `min RTT ${oldMin} -> ${b.minRttUs}`);
  assert.ok(b.minRttStamp >= enteredAt, 'the new min RTT stamped during PROBE_RTT');
});

test('BBR: the max-bandwidth filter holds a rate for 10 round trips: the bandwidth halves and the estimate follows only after the window', () => {
  const p = new Bottleneck({ rate: 2500, buffer: 200_000, delay: 10 });
  const sk = p.connect('bbr');
  p.run(2000);
  const b = sk.caPriv as Bbr;
  const before = info(sk).bw;
  assert.ok(Math.abs(before - payloadRate(2500)) / payloadRate(2500) < 0.01);
  p.ab.spec = { ...p.ab.spec, rate: 1250 };
  const round0 = b.rttCnt;
  const byRound = new Map<number, number>();
  p.run(2000, (s) => {
    const r = b.rttCnt - round0;
    if (!byRound.has(r)) byRound.set(r, info(s).bw);
  });
  for (let r = 0; r <= 9; r++) assert.ok(byRound.get(r)! >= 0.99 * payloadRate(2500), `round ${r}: still the old rate`);
  const after = info(sk).bw;
  assert.ok(Math.abs(after - payloadRate(1250)) / payloadRate(1250) < 0.05, `after the window: ${after}`);
  const firstLow = [...byRound].find(([, v]) => v < 0.9 * payloadRate(2500))![0];
  assert.ok(firstLow >= 10 && firstLow <= 12, `the old rate aged out at round ${firstLow}`);
});

test('BBR: under a token-bucket policer, long-term sampling finds two lossy intervals at its rate and paces at it (lt_use_bw), for 48 rounds', () => {
  // A 50 Mbit/s path policed at 10 Mbit/s with a 30 kB bucket.
  const p = new Bottleneck({ rate: 6250, buffer: 500_000, delay: 10, policer: { rate: 1250, burst: 30_000 } });
  const sk = p.connect('bbr');
  const b = sk.caPriv as Bbr;
  let usedAt = 0;
  let ltBw = 0;
  let usedRound = 0;
  let usedRounds = 0;
  p.run(6000, (s, now) => {
    if (b.ltUseBw && !usedAt) {
      usedAt = now;
      ltBw = b.ltBw;
      usedRound = b.rttCnt;
    }
    if (b.ltUseBw && bbrMode(s) === BBR_PROBE_BW) assert.equal(info(s).pacingGain, 256, 'no gain cycling while policed');
    if (usedAt && !usedRounds && !b.ltUseBw) usedRounds = b.rttCnt - usedRound;
  });
  assert.ok(p.ab.policed > 0, 'the policer dropped');
  assert.ok(usedAt > 0, 'policer detected');
  const lt = (ltBw * 1448 * 1e6) / 2 ** 24;
  assert.ok(Math.abs(lt - payloadRate(1250)) / payloadRate(1250) < 0.05, `lt_bw ${lt} B/s against the policer's ${payloadRate(1250)}`);
  // bbr_lt_bw_max_rtts: 48 rounds of PROBE_BW, then probing again.
  assert.ok(usedRounds >= 48 && usedRounds <= 52, `used for ${usedRounds} rounds`);
});
