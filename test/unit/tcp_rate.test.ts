/**
 * The delivery-rate sample (tcp_rate.ts) as congestion control sees it:
 * acked_sacked, losses, prior_in_flight, the interval (the longer of the
 * send and ACK phases), and app-limited marking (tcp_rate_check_app_limited
 * at each send call, tp->app_limited cleared once its bubble is delivered).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_FAULTS } from '../../src/drivers/fault.js';
import { ADDR_A, TwoStacks } from '../lib/twostack.js';
import { tcpAccept, tcpBind, tcpConnect, tcpListen, tcpRecvmsg, tcpSendmsg, tcpSetsockoptStr } from '../../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { SOL_TCP, TCP_CONGESTION } from '../../src/uapi.js';

interface Sample {
  at: number;
  delivered: number;
  intervalUs: number;
  ackedSacked: number;
  losses: number;
  priorInFlight: number;
  isAppLimited: boolean;
}

/** A connection A -> B over 5 ms each way, A's congestion control a recorder holding cwnd at `cwnd`. */
function setup(cwnd: number): { s: TwoStacks; a: TcpSock; b: TcpSock; samples: Sample[] } {
  const s = new TwoStacks({ ...NO_FAULTS, delay: 5 }, { ...NO_FAULTS, delay: 5 }, 3);
  const samples: Sample[] = [];
  s.a.tcp.congestion.register({
    name: 'recorder',
    init: (sk) => (sk.sndCwnd = cwnd),
    ssthresh: () => cwnd,
    undoCwnd: () => cwnd,
    congControl: (sk, _ack, _flag, rs, now) => {
      samples.push({ at: now, delivered: rs.delivered, intervalUs: rs.intervalUs, ackedSacked: rs.ackedSacked, losses: rs.losses, priorInFlight: rs.priorInFlight, isAppLimited: rs.isAppLimited });
      sk.sndCwnd = cwnd;
    },
  });
  const l = tcpNewSock(s.a.tcp);
  tcpBind(s.a.tcp, l, 0, 9000);
  tcpListen(s.a.tcp, l, 4);
  const b = tcpNewSock(s.b.tcp);
  tcpConnect(s.b.tcp, b, ADDR_A, 9000);
  s.advance(20);
  const a = tcpAccept(s.a.tcp, l) as TcpSock;
  assert.equal(typeof a, 'object');
  assert.equal(tcpSetsockoptStr(s.a.tcp, a, SOL_TCP, TCP_CONGESTION, 'recorder'), 0);
  return { s, a, b, samples };
}

test('rate sample: an application that writes less than the cwnd gives app-limited samples; delivered over max(send, ACK phase)', () => {
  const { s, a, b, samples } = setup(10);
  const start = s.time.now();
  assert.equal(tcpSendmsg(s.a.tcp, a, Buffer.alloc(3000)), 3000);
  s.flush();
  assert.notEqual(a.appLimited, 0, 'nothing more to send, room in the cwnd: app-limited');
  s.advance(15);
  tcpRecvmsg(s.b.tcp, b, Buffer.alloc(65536));
  const data = samples.filter((x) => x.ackedSacked > 0);
  assert.ok(data.length >= 1);
  const total = data.reduce((n, x) => n + x.ackedSacked, 0);
  assert.equal(total, 3, 'three segments (S)ACKed');
  const last = data[data.length - 1];
  assert.equal(last.isAppLimited, true);
  assert.equal(last.losses, 0);
  // Delivered since the flight began over its RTT (10 ms on the wire, no queue).
  assert.ok(last.intervalUs >= 10_000 && last.intervalUs <= 11_000, `interval ${last.intervalUs}`);
  assert.equal(last.delivered, 3, 'everything since the flight began');
  assert.equal(a.rateAppLimited, true, 'TCP_INFO reports the app-limited sample');
  assert.ok(last.at - start >= 10);
});

test('rate sample: a sender with more queued than the cwnd gives samples that are not app-limited, at cwnd per RTT', () => {
  const { s, a, b, samples } = setup(10);
  const buf = Buffer.alloc(65536);
  // Keep far more than a cwnd queued for 300 ms.
  let queued = 0;
  for (let ms = 0; ms < 300; ms++) {
    while (queued < 200_000) {
      const n = tcpSendmsg(s.a.tcp, a, buf);
      if (n <= 0) break;
      queued += n;
    }
    s.flush();
    for (;;) {
      const n = tcpRecvmsg(s.b.tcp, b, buf);
      if (n <= 0) break;
      queued -= n;
    }
    s.advance(1);
  }
  const late = samples.filter((x) => x.at > 100 && x.delivered > 0 && x.intervalUs > 0);
  assert.ok(late.length > 20, `samples ${late.length}`);
  assert.ok(late.every((x) => !x.isAppLimited), 'window-limited, not app-limited');
  assert.equal(a.appLimited, 0);
  for (const x of late) {
    // cwnd 10 per ~10 ms RTT: about a segment per ms.
    const perMs = (x.delivered * 1000) / x.intervalUs;
    assert.ok(perMs > 0.8 && perMs <= 1.05, `rate ${perMs} segments/ms (${x.delivered} over ${x.intervalUs} us)`);
    assert.ok(x.priorInFlight <= 10);
  }
});
