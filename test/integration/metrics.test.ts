/**
 * The Prometheus endpoint (`metricsListen`), scraped with curl inside the
 * namespace the daemon runs in: the stack's counters by their Linux names,
 * the API's and the TAP's, sockets per state (an established connection
 * shows up), the srtt and cwnd histograms, the event loop's delay; and only
 * /metrics is served. A bad address is refused naming the key.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, Netns, requireIntegration, type Daemon } from './netns.js';

const skip = requireIntegration(['curl', 'python3']);
let ns: Netns;
let daemon: Daemon;

before(async () => {
  if (skip) return;
  ns = new Netns('metrics');
  const cfg = join(ns.dir, 'metrics.json');
  writeFileSync(cfg, JSON.stringify({ metricsListen: '127.0.0.1:9464' }));
  daemon = await ns.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--api', join(ns.dir, 'api.sock'), '--config', cfg]);
  await daemon.waitFor((l) => l.msg === 'metrics listening' && l.addr === '127.0.0.1:9464');
});

after(() => {
  if (daemon && daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
  ns?.destroy();
});

test('GET /metrics: counters, sockets per state, srtt and cwnd histograms, the event loop; nothing else is served', { skip, timeout: 60_000 }, async () => {
  // An established connection to the stack's echo service (port 7), held open while scraping.
  const peer = ns.background(`timeout 30 python3 -c "
import socket, signal
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
s = socket.create_connection(('10.0.0.2', 7))
s.sendall(b'x'); s.recv(1)
print('connected', flush=True)
signal.sigtimedwait([signal.SIGTERM], 25)
"`);
  await new Promise<void>((res, rej) => {
    const t = setTimeout(() => rej(new Error('the peer did not connect')), 20_000);
    peer.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('connected')) {
        clearTimeout(t);
        res();
      }
    });
  });
  const text = ns.ok('curl -sS -m 10 http://127.0.0.1:9464/metrics');
  const has = (re: RegExp) => assert.match(text, re);
  has(/^# TYPE tapstack_netstat_Tcp_PassiveOpens counter\ntapstack_netstat_Tcp_PassiveOpens [1-9]\d*$/m);
  has(/^tapstack_netstat_Tcp_CurrEstab [1-9]\d*$/m);
  has(/^tapstack_netstat_TcpExt_TCPFastOpenActive 0$/m);
  has(/^tapstack_netstat_Api_Clients \d+$/m);
  has(/^tapstack_netstat_Tap_attached 1$/m);
  has(/^tapstack_network_rx_packets\{device="tap0"\} [1-9]\d*$/m);
  has(/^tapstack_tcp_sockets\{state="ESTABLISHED"\} [1-9]\d*$/m);
  has(/^tapstack_tcp_srtt_seconds_count [1-9]\d*$/m);
  has(/^tapstack_tcp_cwnd_segments_bucket\{le="\+Inf"\} [1-9]\d*$/m);
  has(/^tapstack_event_loop_delay_seconds_count \d+$/m);
  const code = ns.ok('curl -s -o /dev/null -w "%{http_code}" -m 10 http://127.0.0.1:9464/').trim();
  assert.equal(code, '404');
  peer.kill('SIGTERM');
});

test('metricsListen that is not host:port is refused by key, before anything starts', { skip }, () => {
  const cfg = join(ns.dir, 'bad.json');
  writeFileSync(cfg, JSON.stringify({ metricsListen: '9464' }));
  const r = spawnSync(process.execPath, [CLI, 'check-config', cfg], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr + r.stdout, /metricsListen: "9464" is not "host:port"/);
});
