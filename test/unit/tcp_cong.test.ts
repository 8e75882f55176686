/**
 * The congestion-control interface (struct tcp_congestion_ops in
 * tcp_sock.ts, tcp_cong.ts): registration is validated as
 * tcp_validate_congestion_control does; release follows init on a switch
 * and on destroy; tcp_cong_control hands the ACK to congControl when the
 * algorithm has one (no PRR, no congAvoid) and to congAvoid otherwise;
 * in_ack_event sees every ACK; TCP_CC_INFO carries get_info in Linux's
 * union tcp_cc_info layout, and `ss -i` prints it as ss does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_FAULTS } from '../../src/drivers/fault.js';
import { TwoStacks } from '../lib/twostack.js';
import { TcpHarness } from '../lib/tcp_harness.js';
import { CA_ACK_SLOWPATH, renoCongAvoid, renoSsthresh, renoUndoCwnd, TcpCongError, TcpCongRegistry, tcpReno } from '../../src/net/ipv4/tcp_cong.js';
import { tcpClose, tcpSetsockoptStr } from '../../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { tcpSockGetsockopt } from '../../src/net/ipv4/tcp_setsockopt.js';
import type { TcpCongestionOps, TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { AF_INET, EEXIST, EINVAL, SOL_TCP, TCP_CC_INFO, TCP_CONGESTION } from '../../src/uapi.js';
import { ssLine, ssWidths } from '../../src/cli/ss.js';
import type { SocketRow } from '../../src/client/index.js';

function refused(reg: TcpCongRegistry, ops: unknown, errno: number, why: RegExp): void {
  assert.throws(
    () => reg.register(ops as TcpCongestionOps),
    (e: unknown) => e instanceof TcpCongError && e.errno === errno && why.test(e.message),
  );
}

test('registration: a name that fits TCP_CONGESTION, ssthresh and undoCwnd, exactly one of congAvoid and congControl, no duplicate', () => {
  const reg = new TcpCongRegistry();
  const base = { ssthresh: renoSsthresh, undoCwnd: renoUndoCwnd };
  refused(reg, { ...base, name: 'x'.repeat(16), congAvoid: renoCongAvoid }, EINVAL, /longer than 15/);
  refused(reg, { ...base, name: '', congAvoid: renoCongAvoid }, EINVAL, /printable/);
  refused(reg, { ...base, name: 'two words', congAvoid: renoCongAvoid }, EINVAL, /printable/);
  refused(reg, { name: 'nossthresh', undoCwnd: renoUndoCwnd, congAvoid: renoCongAvoid }, EINVAL, /required ops/);
  refused(reg, { name: 'noundo', ssthresh: renoSsthresh, congAvoid: renoCongAvoid }, EINVAL, /required ops/);
  refused(reg, { ...base, name: 'neither' }, EINVAL, /exactly one of congAvoid and congControl/);
  refused(reg, { ...base, name: 'both', congAvoid: renoCongAvoid, congControl: () => {} }, EINVAL, /exactly one/);
  refused(reg, { ...tcpReno }, EEXIST, /reno already registered/);
  reg.register({ ...base, name: 'x'.repeat(15), congAvoid: renoCongAvoid });
  assert.equal(reg.available(), `reno ${'x'.repeat(15)}`);
  assert.equal(reg.unregister(tcpReno), false, 'the fallback stays');
});

/** Reno that counts the hooks it is called through. */
function countingOps(name: string) {
  const calls = { init: 0, release: 0, congAvoid: 0, inAck: 0, inAckFlags: 0 };
  const ops: TcpCongestionOps = {
    name,
    init: (sk) => {
      calls.init++;
      sk.caPriv = { mine: true };
    },
    release: (sk) => {
      calls.release++;
      assert.deepEqual(sk.caPriv, { mine: true }, 'release sees the state its init set up');
    },
    ssthresh: renoSsthresh,
    congAvoid: (sk, ack, acked) => {
      calls.congAvoid++;
      renoCongAvoid(sk, ack, acked);
    },
    inAckEvent: (_sk, flags) => {
      calls.inAck++;
      calls.inAckFlags |= flags;
    },
    undoCwnd: renoUndoCwnd,
  };
  return { ops, calls };
}

test('release: once for each init, before a switch to another algorithm and when the socket is destroyed', () => {
  const t = new TcpHarness(AF_INET);
  const { ops, calls } = countingOps('counting');
  t.tcp.congestion.register(ops);
  const sk = tcpNewSock(t.tcp);
  assert.equal(tcpSetsockoptStr(t.tcp, sk, SOL_TCP, TCP_CONGESTION, 'counting'), 0);
  assert.deepEqual([calls.init, calls.release], [1, 0]);
  assert.equal(tcpSetsockoptStr(t.tcp, sk, SOL_TCP, TCP_CONGESTION, 'counting'), 0, 'the same algorithm again: nothing happens');
  assert.deepEqual([calls.init, calls.release], [1, 0]);
  assert.equal(tcpSetsockoptStr(t.tcp, sk, SOL_TCP, TCP_CONGESTION, 'reno'), 0);
  assert.deepEqual([calls.init, calls.release], [1, 1]);
  assert.equal(sk.caPriv, null, 'the old state is gone');
  assert.equal(tcpSetsockoptStr(t.tcp, sk, SOL_TCP, TCP_CONGESTION, 'counting'), 0);
  tcpClose(t.tcp, sk);
  assert.deepEqual([calls.init, calls.release], [2, 2], 'destroy released it');
  assert.equal(sk.caInitialized, false);
});

test('dispatch: congAvoid and in_ack_event on a transfer; a congControl algorithm owns the window instead (no PRR, no congAvoid)', () => {
  const s = new TwoStacks({ ...NO_FAULTS, delay: 5 }, { ...NO_FAULTS, delay: 5 }, 1);
  const { ops, calls } = countingOps('counting');
  s.a.tcp.congestion.register(ops);
  let sender: TcpSock | null = null;
  assert.ok(s.bulk(256 * 1024, { cc: 'counting', onAccept: (sk) => (sender = sk) }) > 0);
  assert.ok(calls.congAvoid > 10, `congAvoid ran on the ACKs (${calls.congAvoid})`);
  assert.ok(calls.inAck >= calls.congAvoid, 'in_ack_event on every ACK');
  assert.equal(calls.inAckFlags & CA_ACK_SLOWPATH, CA_ACK_SLOWPATH, 'every ACK takes the slow path here');
  assert.ok(sender!.sndCwnd > 10, 'Reno grew the window');

  // A fixed window of 7 set by congControl, with loss: the window stays at 7
  // (PRR would have cut it) and congAvoid is never called.
  const lossy = new TwoStacks({ ...NO_FAULTS, loss: 0.02, delay: 5 }, { ...NO_FAULTS, delay: 5 }, 2);
  const seen = { calls: 0, rsSamples: 0, losses: 0, cwnds: new Set<number>() };
  lossy.a.tcp.congestion.register({
    name: 'fixed7',
    init: (sk) => (sk.sndCwnd = 7),
    ssthresh: () => 7,
    undoCwnd: () => 7,
    congControl: (sk, _ack, _flag, rs) => {
      seen.calls++;
      if (rs.intervalUs > 0 && rs.delivered > 0) seen.rsSamples++;
      seen.losses += rs.losses;
      sk.sndCwnd = 7;
    },
  });
  let fixed: TcpSock | null = null;
  const ms = lossy.bulk(256 * 1024, {
    cc: 'fixed7',
    onAccept: (sk) => (fixed = sk),
  });
  assert.ok(ms > 0);
  assert.ok(seen.calls > 10 && seen.rsSamples > 0, `congControl got rate samples (${seen.calls} calls, ${seen.rsSamples} samples)`);
  assert.ok(lossy.a.mibs.Tcp.RetransSegs > 0, 'the line lost data');
  assert.ok(seen.losses > 0, 'rs.losses reported the segments marked lost');
  assert.equal(fixed!.sndCwnd, 7);
});

test('TCP_CC_INFO: no bytes without get_info (Reno); struct tcp_bbr_info for a bbr kind; ss -i prints the name and bbr:(...)', () => {
  const t = new TcpHarness(AF_INET);
  const sk = tcpNewSock(t.tcp);
  tcpSetsockoptStr(t.tcp, sk, SOL_TCP, TCP_CONGESTION, 'reno');
  assert.equal((tcpSockGetsockopt(t.tcp, sk, SOL_TCP, TCP_CC_INFO) as Buffer).length, 0);
  const bw = 2 ** 32 + 125_000; // bytes per second: the high word must be used
  t.tcp.congestion.register({
    ...tcpReno,
    name: 'bbrinfo',
    getInfo: () => ({ kind: 'bbr', bbr: { bw, minRtt: 10_250, pacingGain: 739, cwndGain: 512 } }),
  });
  tcpSetsockoptStr(t.tcp, sk, SOL_TCP, TCP_CONGESTION, 'bbrinfo');
  const b = tcpSockGetsockopt(t.tcp, sk, SOL_TCP, TCP_CC_INFO) as Buffer;
  assert.equal(b.length, 20, 'sizeof(struct tcp_bbr_info)');
  assert.deepEqual([b.readUInt32LE(0), b.readUInt32LE(4), b.readUInt32LE(8), b.readUInt32LE(12), b.readUInt32LE(16)], [125_000, 1, 10_250, 739, 512]);

  const row: SocketRow = {
    state: 'ESTAB', local: '10.0.0.2:80', peer: '10.0.0.1:4000', recvQ: 0, sendQ: 0,
    info: { rto: 204000, rtt: 10250, rttvar: 500, snd_mss: 1448, snd_cwnd: 10, snd_ssthresh: 0x7fffffff, reordering: 3 },
    cong: 'bbr',
    ccInfo: { kind: 'bbr', bbr: { bw: 1_250_000, minRtt: 10_250, pacingGain: 739, cwndGain: 512 } },
  };
  const line = ssLine(row, true, ssWidths([row]));
  assert.match(line, /\n\t bbr rto:204 rtt:10\.25\/0\.5 /, 'the name first, as ss prints INET_DIAG_CONG');
  assert.match(line, / bbr:\(bw:10\.0Mbps,mrtt:10\.25,pacing_gain:2\.88671875,cwnd_gain:2\) /);
  row.cong = 'aimd';
  row.ccInfo = { kind: 'fields', fields: { beta: 0.8, epochs: 3 } };
  assert.match(ssLine(row, true, ssWidths([row])), / aimd:\(beta:0\.8,epochs:3\) /);
});
