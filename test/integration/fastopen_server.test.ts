/**
 * TCP Fast Open against the host kernel's client: `tapstack serve
 * --fastopen` on the stack, and the kernel's curl in the namespace with
 * --tcp-fastopen twice. The first connection asks for a cookie (the
 * stack's SYN-ACK hands it out), the second carries its request in the
 * SYN with that cookie: the stack makes the connection at the SYN and its
 * SYN-ACK acks the data. Checked from the stack's counters, the kernel's,
 * and a capture on the TAP device; then the same with an unmodified Python
 * server under `tapstack run` setting TCP_FASTOPEN itself (through the
 * LD_PRELOAD library). Only namespaced settings change: the
 * namespace's own net.ipv4.tcp_fastopen (the client bit) and its
 * tcp_metrics cache.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, Netns, ROOT, exitOf, outputOf, requireIntegration, waitLine, type Daemon } from './netns.js';

// The library reads through rings by default: this pass is the socketpair's (the _rings file sets 1 first).
process.env.TAPSTACK_PRELOAD_RINGS ??= '0';

const skip = requireIntegration(['curl', 'tcpdump', 'python3']);
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

/** A plain Python HTTP/1.0 server: TCP_FASTOPEN on its listener, two requests answered, the option read back. */
const PY_SERVER = `
import socket, sys

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 8)
s.listen(16)
print("fastopen", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN), flush=True)
for _ in range(2):
    c, _ = s.accept()
    req = b""
    while b"\\r\\n\\r\\n" not in req:
        d = c.recv(4096)
        if not d:
            break
        req += d
    c.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n")
    c.close()
print("served", flush=True)
`;

test('an unmodified Python server under tapstack run sets TCP_FASTOPEN itself; the kernel\'s curl opens its second connection at the SYN', { skip, timeout: 120_000 }, async () => {
  cli('sysctl net.ipv4.tcp_fastopen=3');
  // A cookie cycle of its own: the kernel forgets the cookie the first test got.
  ns.ok('ip tcp_metrics flush all');
  const before = (await daemon.counters()).TcpExt;
  const app = join(ns.dir, 'tfo_server.py');
  writeFileSync(app, PY_SERVER);
  const port = PORT + 2;
  const srv = ns.background(`${process.execPath} ${CLI} run --api ${api} -- python3 ${app} ${port}`);
  await waitLine(srv, /^fastopen 8$/m, 'the server to set and read back TCP_FASTOPEN');
  for (let i = 0; i < 2; i++) {
    assert.equal(ns.ok(`curl -sS --tcp-fastopen --max-time 10 http://10.0.0.2:${port}/`), 'ok\n', `request ${i + 1}`);
  }
  assert.equal(await exitOf(srv), 0, outputOf(srv));
  const c = await daemon.countersWhen((x) => x.TcpExt.TCPFastOpenPassive > before.TCPFastOpenPassive);
  assert.equal(c.TcpExt.TCPFastOpenCookieReqd - before.TCPFastOpenCookieReqd, 1, 'one cookie asked for');
  assert.equal(c.TcpExt.TCPFastOpenPassive - before.TCPFastOpenPassive, 1, 'one connection opened at the SYN');
});
