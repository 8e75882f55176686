/**
 * TCP Fast Open against the host kernel's client: `tapstack serve
 * --fastopen` on the stack, and the kernel's curl in the namespace with
 * --tcp-fastopen twice. The first connection asks for a cookie (the
 * stack's SYN-ACK hands it out), the second carries its request in the
 * SYN with that cookie: the stack makes the connection at the SYN and its
 * SYN-ACK acks the data. Checked from the stack's counters, the kernel's,
 * and a capture on the TAP device. Only namespaced settings change: the
 * namespace's own net.ipv4.tcp_fastopen (the client bit) and its
 * tcp_metrics cache.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CLI, Netns, ROOT, requireIntegration, waitLine, type Daemon } from './netns.js';

const skip = requireIntegration(['curl', 'tcpdump']);
const PORT = 8082;
let ns: Netns;
let daemon: Daemon;
let api: string;

before(async () => {
  if (skip) return;
  ns = new Netns('tfo');
  api = join(ns.dir, 'api.sock');
  daemon = await ns.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--api', api]);
  // The kernel side: the client bit (Linux's default, set anyway) and no cookie cached yet.
  ns.ok('sysctl -qw net.ipv4.tcp_fastopen=1 && ip tcp_metrics flush all');
});

after(() => {
  if (daemon && daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
  ns?.destroy();
});

/** `tapstack ARGS` against the namespace's daemon. */
function cli(args: string): string {
  return ns.ok(`timeout 30 ${process.execPath} ${CLI} --api ${api} ${args} < /dev/null`, 40_000);
}

test('the kernel\'s curl --tcp-fastopen twice: a cookie first, then the request in the SYN, opened at the SYN by the stack', { skip, timeout: 120_000 }, async () => {
  // Without the server bit, --fastopen says it does nothing yet.
  const off = ns.background(`${process.execPath} ${CLI} --api ${api} serve ${join(ROOT, 'docs')} --port ${PORT + 1} --fastopen 16 --quiet`);
  await waitLine(off, /--fastopen: net\.ipv4\.tcp_fastopen is 1, without the server bit/, 'serve to warn about the server bit');
  off.kill('SIGTERM');

  assert.match(cli('sysctl net.ipv4.tcp_fastopen=3'), /net\.ipv4\.tcp_fastopen = 3/);
  const file = join(ns.dir, 'tfo.pcap');
  const td = ns.background(`tcpdump -n -i tap0 -w ${file} -U -Z root --immediate-mode tcp port ${PORT}`);
  await waitLine(td, /listening on tap0/, 'tcpdump to start');
  const sv = ns.background(`${process.execPath} ${CLI} --api ${api} serve ${join(ROOT, 'docs')} --port ${PORT} --fastopen 16 --quiet`);
  await waitLine(sv, new RegExp(`serving .* on \\[::\\]:${PORT}`), 'serve to listen');

  const url = `http://10.0.0.2:${PORT}/api.md`;
  for (let i = 0; i < 2; i++) {
    assert.equal(ns.ok(`curl -sS --tcp-fastopen --max-time 10 -o /dev/null -w '%{http_code}' ${url}`), '200', `request ${i + 1}`);
  }

  const c = await daemon.countersWhen((x) => x.TcpExt.TCPFastOpenPassive >= 1 && x.TcpExt.TCPFastOpenCookieReqd >= 1);
  assert.ok(c.TcpExt.TCPFastOpenCookieReqd >= 1, `TCPFastOpenCookieReqd ${c.TcpExt.TCPFastOpenCookieReqd}`);
  assert.ok(c.TcpExt.TCPFastOpenPassive >= 1, `TCPFastOpenPassive ${c.TcpExt.TCPFastOpenPassive}`);
  assert.equal(c.TcpExt.TCPFastOpenPassiveFail, 0);
  // The kernel's side of it: its second connect sent data in the SYN, and the stack acked it.
  const k = ns.kernelTcpCounters();
  assert.ok(k.TCPFastOpenActive >= 1, `the kernel's TCPFastOpenActive ${k.TCPFastOpenActive}`);
  assert.equal(k.TCPFastOpenActiveFail ?? 0, 0, 'the kernel saw its SYN data acked');

  // On the wire: a SYN with payload to the stack, a SYN-ACK with a cookie from it, and one acking the SYN's data.
  const synData = `dst port ${PORT} and tcp[tcpflags] == tcp-syn and ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) > 0`;
  await ns.pcapHolds(file, synData, 1, 'a SYN carrying the request');
  await ns.pcapHolds(file, `src port ${PORT} and tcp[tcpflags] == tcp-syn|tcp-ack`, 2, 'the two SYN-ACKs');
  td.kill('SIGINT');
  const synacks = ns.ok(`tcpdump -n -S -v -r ${file} 'src port ${PORT} and tcp[tcpflags] == tcp-syn|tcp-ack' 2>/dev/null`);
  assert.match(synacks, /tfo +cookie [0-9a-f]{16}/, `a SYN-ACK handing out a cookie:\n${synacks}`);
  const syn = ns.ok(`tcpdump -n -S -v -r ${file} '${synData}' 2>/dev/null`);
  const m = /seq (\d+):(\d+)/.exec(syn);
  assert.ok(m, `the SYN with data:\n${syn}`);
  // tcpdump shows the SYN's data as seq S:E; the SYN itself takes one more.
  const end = (Number(m[2]) + 1) % 2 ** 32;
  assert.match(synacks, new RegExp(`ack ${end},`), `a SYN-ACK acking the SYN and its data (${end}):\n${synacks}`);
  sv.kill('SIGTERM');
});
