import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sumCounters } from '../../src/daemon/shard_merge.js';
import { mergeSnapshots, prometheusText } from '../../src/daemon/metrics.js';

test('the shards\' counters are summed group by group; settings are taken from the first shard; inputs untouched', () => {
  const a = { Tcp: { PassiveOpens: 3, RtoMin: 200, RtoAlgorithm: 1 }, Link: { tap0: { rx_packets: 10 } }, Ip: { DefaultTTL: 64, InReceives: 5 }, Drop: { NOT_SPECIFIED: 1 } };
  const b = { Tcp: { PassiveOpens: 4, RtoMin: 200, RtoAlgorithm: 1 }, Link: { tap0: { rx_packets: 7 } }, Ip: { DefaultTTL: 64, InReceives: 2 }, Drop: { OTHERHOST: 2 } };
  const s = sumCounters([a, b]);
  assert.deepEqual(s, {
    Tcp: { PassiveOpens: 7, RtoMin: 200, RtoAlgorithm: 1 },
    Link: { tap0: { rx_packets: 17 } },
    Ip: { DefaultTTL: 64, InReceives: 7 },
    Drop: { NOT_SPECIFIED: 1, OTHERHOST: 2 },
  });
  assert.equal(a.Tcp.PassiveOpens, 3);
  assert.deepEqual(sumCounters([a]), a);
});

test('the metrics endpoint\'s snapshot of the shards: sockets by state added, samples joined, counters summed', () => {
  const snap = mergeSnapshots([
    { counters: { Tcp: { CurrEstab: 2 } }, tcpStates: [['ESTABLISHED', 2], ['LISTEN', 4], ['TIME_WAIT', 1]], udpSockets: 2, srtt: [0.001, 0.002], cwnd: [10, 10] },
    { counters: { Tcp: { CurrEstab: 1 } }, tcpStates: [['ESTABLISHED', 1], ['LISTEN', 4], ['TIME_WAIT', 0]], udpSockets: 2, srtt: [0.003], cwnd: [20] },
  ]);
  assert.deepEqual(snap.tcpStates, [['ESTABLISHED', 3], ['LISTEN', 8], ['TIME_WAIT', 1]]);
  assert.equal(snap.udpSockets, 4);
  assert.deepEqual(snap.cwnd, [10, 10, 20]);
  const text = prometheusText(snap, {}, null);
  assert.match(text, /^tapstack_netstat_Tcp_CurrEstab 3$/m);
  assert.match(text, /^tapstack_tcp_sockets\{state="LISTEN"\} 8$/m);
  assert.match(text, /^tapstack_tcp_cwnd_segments_count 3$/m);
});
