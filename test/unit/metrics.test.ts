/**
 * The Prometheus endpoint's text (src/daemon/metrics.ts): every line is in
 * the exposition format, the stack's counters keep their Linux names with
 * the right type, sockets are counted per state, and srtt and cwnd are
 * histograms over the connections (one observation each, no per-socket
 * label). The HTTP side is tested in a namespace (integration).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness } from '../lib/tcp_harness.js';
import { prometheusText } from '../../src/daemon/metrics.js';
import { AF_INET } from '../../src/uapi.js';

test('metrics: exposition format, Linux-named counters and gauges, sockets per state, srtt and cwnd histograms', () => {
  const t = TcpHarness.established(AF_INET);
  const text = prometheusText(t.h.stack, { Api: { Clients: 2, Calls: 7 } }, null);
  for (const line of text.trim().split('\n')) {
    if (line.startsWith('#')) assert.match(line, /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* /, line);
    else assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+-]+$/, line);
  }
  const has = (re: RegExp) => assert.match(text, re);
  has(/^# TYPE tapstack_netstat_Tcp_PassiveOpens counter\ntapstack_netstat_Tcp_PassiveOpens 1$/m);
  has(/^# TYPE tapstack_netstat_Tcp_CurrEstab gauge\ntapstack_netstat_Tcp_CurrEstab 1$/m);
  has(/^# TYPE tapstack_netstat_Sockstat_TcpInuse gauge$/m);
  has(/^tapstack_netstat_Api_Calls 7$/m);
  has(/^tapstack_network_rx_packets\{device="[^"]+"\} \d+$/m);
  has(/^tapstack_tcp_sockets\{state="ESTABLISHED"\} 1$/m);
  has(/^tapstack_tcp_sockets\{state="LISTEN"\} 1$/m);
  has(/^tapstack_tcp_cwnd_segments_bucket\{le="8"\} 0$/m);
  has(/^tapstack_tcp_cwnd_segments_bucket\{le="16"\} 1$/m);
  has(/^tapstack_tcp_cwnd_segments_count 1$/m);
  has(/^tapstack_tcp_srtt_seconds_count 1$/m);
});
