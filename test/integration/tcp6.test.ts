/**
 * TCP over IPv6 and dual-stack end to end: tapstackd on a TAP inside a
 * namespace these tests create (fd00::2/64 and 10.0.0.2/24; the kernel side
 * fd00::1/64 and 10.0.0.1/24), the kernel as the peer. The built-in
 * services listen on [::] with IPV6_V6ONLY=0: the kernel reaches them over
 * IPv6 (curl -6, a 100 MB echo) and over IPv4 as v4-mapped peers; the
 * syscall API's AF_INET6 sockets (sockaddr_in6, IPV6_V6ONLY, SO_DOMAIN)
 * serve and connect, to the kernel over IPv6 too; `tapstack ss` prints
 * them as [addr]:port.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Netns, ROOT, exitOf, requireIntegration, waitLine, type Daemon, type LogLine, errno } from './netns.js';
import { Client, connect, createServer, type StackSocket } from '../../src/client/index.js';
import { AF_INET6, SOCK_STREAM, SOL_SOCKET } from '../../src/uapi.js';

const skip = requireIntegration(['curl', 'python3', 'nc', 'tcpdump', 'tshark']);
const CLIENT = join(ROOT, 'test', 'integration', 'tcp_client.py');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const SO_DOMAIN = 39;

let ns: Netns;
let daemon: Daemon;
let api: string;
const V6_ARGS = ['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--ipv6', 'fd00::2/64', '--host-ipv6', 'fd00::1/64'];

/** Both sides' duplicate address detection over, so the addresses carry traffic. */
async function v6Ready(n: Netns, d: Daemon): Promise<void> {
  await d.waitFor((l: LogLine) => l.msg === 'IPv6 address ready' && l.addr === 'fd00::2');
  await n.kernelDadDone('tap0');
}

before(async () => {
  if (skip) return;
  ns = new Netns('tcp6');
  api = ns.apiPath();
  daemon = await ns.startDaemon([...V6_ARGS, '--api', api]);
  await v6Ready(ns, daemon);
});

after(() => {
  if (daemon && daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
  ns?.destroy();
});

function client(args: string, timeoutS: number): Record<string, unknown> {
  const out = ns.ok(`python3 ${CLIENT} ${args} ${timeoutS}`, (timeoutS + 15) * 1000);
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

async function raw(): Promise<Client> {
  const c = new Client({ path: api, descriptors: false });
  await c.ready();
  return c;
}

const int = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
};

test('kernel curl -4 reaches the dual-stack [::]:80 listener; the status page lists it and the v4-mapped peer', { skip, timeout: 30_000 }, () => {
  const out = ns.ok("curl -4 -sS --max-time 10 -H 'Accept: application/json' http://10.0.0.2/");
  const d = JSON.parse(out) as { sockets: { state: string; local: string; peer: string }[] };
  assert.ok(d.sockets.some((s) => s.state === 'LISTEN' && s.local === '[::]:80'), JSON.stringify(d.sockets));
  assert.ok(d.sockets.some((s) => s.state === 'ESTABLISHED' && s.local === '[::ffff:10.0.0.2]:80' && s.peer.startsWith('[::ffff:10.0.0.1]:')), JSON.stringify(d.sockets));
});

test('20 MB through the dual-stack echo service over IPv4 comes back byte-identical (sha256)', { skip, timeout: 120_000 }, () => {
  const r = client('echo 10.0.0.2 7 20971520', 90);
  assert.deepEqual(r.errors, []);
  assert.equal(r.received, 20971520);
  assert.equal(r.sha_received, r.sha_sent);
});

test('API AF_INET6 listener: IPV6_V6ONLY and SO_DOMAIN, a kernel IPv4 client accepted as v4-mapped, ss prints [addr]:port', { skip, timeout: 30_000 }, async () => {
  const c = await raw();
  const { fd } = await c.socket(AF_INET6, SOCK_STREAM, 0);
  assert.equal((await c.getsockopt(fd, SOL_SOCKET, SO_DOMAIN)).readInt32LE(0), AF_INET6);
  assert.equal((await c.getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY)).readInt32LE(0), 0, 'dual-stack by default (bindv6only=0)');
  // sockaddr_in on an AF_INET6 socket is refused as Linux does.
  assert.equal(await errno(c.bind(fd, { family: 2, addr: '0.0.0.0', port: 9600 })), 'EAFNOSUPPORT');
  await c.bind(fd, { family: AF_INET6, addr: '::', port: 9600, flowinfo: 0, scopeId: 0 });
  assert.equal(await errno(c.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, int(1))), 'EINVAL', 'not once bound');
  await c.listen(fd, 8);
  const local = await c.getsockname(fd);
  assert.equal(local.family, AF_INET6);
  assert.equal(local.addr, '::');
  assert.equal(local.port, 9600);
  // The kernel connects over IPv4 and sends a line.
  const peer = ns.background("sh -c 'echo hello-v6-socket | nc -q 2 -w 5 10.0.0.2 9600'");
  const a = await c.accept(fd, 0);
  assert.equal(a.peer.family, AF_INET6);
  assert.equal(a.peer.addr, '::ffff:10.0.0.1');
  const me = await c.getsockname(a.fd);
  assert.equal(me.addr, '::ffff:10.0.0.2');
  assert.equal((await c.getpeername(a.fd)).addr, '::ffff:10.0.0.1');
  let got = '';
  for (let i = 0; i < 50 && !got.includes('\n'); i++) got += (await c.recv(a.fd, 100)).toString();
  assert.equal(got, 'hello-v6-socket\n');
  const ss = spawnSync(process.execPath, [CLI, '--api', api, 'ss'], { encoding: 'utf8' });
  assert.equal(ss.status, 0, ss.stderr);
  assert.match(ss.stdout, /LISTEN.*\[::\]:9600/);
  assert.match(ss.stdout, /\[::ffff:10\.0\.0\.2\]:9600\s+\[::ffff:10\.0\.0\.1\]:\d+/);
  // Columns stay aligned past ss's 22 characters: every peer address starts under its header.
  const [head, ...rows] = ss.stdout.trimEnd().split('\n');
  const col = head.indexOf('Peer Address:Port');
  const proc = head.indexOf('Process');
  for (const row of rows) {
    assert.match(row.slice(col - 1, col + 1), /^ \S/, `peer column of: ${row}`);
    if (row.includes('pid=')) assert.equal(row.indexOf('pid='), proc, `process column of: ${row}`);
  }
  await exitOf(peer);
  await c.closeFd(a.fd);
  await c.closeFd(fd);
  c.close();
});

test('API AF_INET6 with IPV6_V6ONLY=1 on [::] leaves IPv4 to an AF_INET socket on the same port', { skip, timeout: 30_000 }, async () => {
  const c = await raw();
  const { fd } = await c.socket(AF_INET6, SOCK_STREAM, 0);
  await c.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, int(1));
  await c.bind(fd, { family: AF_INET6, addr: '::', port: 9601, flowinfo: 0, scopeId: 0 });
  await c.listen(fd, 8);
  const v4 = (await c.socket(2, SOCK_STREAM, 0)).fd;
  await c.bind(v4, { family: 2, addr: '0.0.0.0', port: 9601 });
  // And a dual-stack [::] on a port 0.0.0.0 holds is EADDRINUSE.
  const dual = (await c.socket(AF_INET6, SOCK_STREAM, 0)).fd;
  assert.equal(await errno(c.bind(dual, { family: AF_INET6, addr: '::', port: 9601, flowinfo: 0, scopeId: 0 })), 'EADDRINUSE');
  await c.listen(v4, 8);
  // A kernel IPv4 connection lands on the AF_INET listener, not the v6-only one.
  const peer = ns.background("sh -c 'echo x | nc -q 1 -w 5 10.0.0.2 9601'");
  const a = await c.accept(v4, 0);
  assert.equal(a.peer.family, 2);
  assert.equal(a.peer.addr, '10.0.0.1');
  await exitOf(peer);
  for (const f of [a.fd, v4, dual, fd]) await c.closeFd(f);
  c.close();
});

test('client library: createServer on "::" serves a kernel IPv4 client; connect to a v4-mapped kernel listener', { skip, timeout: 30_000 }, async () => {
  const srv = createServer({ api }, (s: StackSocket) => s.pipe(s));
  await new Promise<void>((r) => srv.listen(9602, '::', () => r()));
  assert.equal(srv.address()?.family, 'IPv6');
  // ns.run, not ns.ok: the echo server lives in this process's event loop.
  const echoed = await ns.run("sh -c 'echo ping-through-v6-server | nc -q 2 -w 5 10.0.0.2 9602'", 15_000);
  assert.equal(echoed, 'ping-through-v6-server\n');
  await new Promise<void>((r) => srv.close(() => r()));

  const listener = ns.background("sh -c 'echo from-kernel | nc -l -q 1 -w 10 10.0.0.1 9603'");
  await ns.kernelListening(9603);
  const s = connect({ api, host: '::ffff:10.0.0.1', port: 9603 });
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString()));
  await new Promise<void>((resolve, reject) => {
    s.on('end', () => resolve());
    s.on('error', reject);
  });
  assert.equal(got, 'from-kernel\n');
  assert.equal(s.remoteFamily, 'IPv6');
  assert.equal(s.remoteAddress, '::ffff:10.0.0.1');
  s.destroy();
  await exitOf(listener);
});

test('kernel curl -6 http://[fd00::2]/ gets the status page, which lists the IPv6 connection as [addr]:port', { skip, timeout: 30_000 }, () => {
  const html = ns.ok('curl -6 -sS --max-time 10 -D - http://[fd00::2]/');
  assert.match(html, /^HTTP\/1\.1 200/);
  assert.match(html, /tapstack/i);
  const d = JSON.parse(ns.ok("curl -6 -sS --max-time 10 -H 'Accept: application/json' http://[fd00::2]/")) as { sockets: { state: string; local: string; peer: string }[] };
  assert.ok(d.sockets.some((s) => s.state === 'ESTABLISHED' && s.local === '[fd00::2]:80' && s.peer.startsWith('[fd00::1]:')), JSON.stringify(d.sockets));
});

test('100 MB through the echo service over IPv6 comes back byte-identical (sha256)', { skip, timeout: 240_000 }, () => {
  const r = client('echo fd00::2 7 104857600', 200);
  assert.deepEqual(r.errors, []);
  assert.equal(r.received, 104857600);
  assert.equal(r.sha_received, r.sha_sent);
});

/** Packet counters of the TAP's kernel side (rx = what the stack sent). */
function tapPackets(n: Netns): { rx: number; tx: number } {
  const j = JSON.parse(n.ok('ip -s -j link show tap0')) as { stats64: { rx: { packets: number }; tx: { packets: number } } }[];
  return { rx: j[0].stats64.rx.packets, tx: j[0].stats64.tx.packets };
}

/** The kernel's Tcp InCsumErrors in the namespace (/proc/net/snmp). */
function kernelCsumErrors(n: Netns): number {
  const lines = n.ok('cat /proc/net/snmp').split('\n').filter((l) => l.startsWith('Tcp:'));
  const names = lines[0].split(/\s+/);
  return Number(lines[1].split(/\s+/)[names.indexOf('InCsumErrors')]);
}

test('offloads over IPv6: TCP moves as TSO/GRO super-frames both ways, checksums left to and vouched by the kernel', { skip, timeout: 90_000 }, async () => {
  const ready = daemon.lines.find((l) => l.msg === 'ready') as { offload?: { csum: boolean; tso: boolean } } | undefined;
  if (process.env.TAPSTACK_OFFLOAD === 'off') {
    assert.deepEqual(ready?.offload, { csum: false, tso: false });
    return;
  }
  assert.deepEqual(ready?.offload, { csum: true, tso: true }, 'this kernel accepts TUN_F_CSUM|TSO4|TSO6');
  const bytes = 64 * 1024 * 1024;
  const frames = bytes / 1428; // MSS over IPv6 with timestamps
  const c0 = await daemon.counters();
  const k0 = kernelCsumErrors(ns);
  const a = tapPackets(ns);
  const out = ns.ok(`curl -6 -sS --max-time 30 -o /dev/null -w '%{size_download}' 'http://[fd00::2]/bytes/${bytes}'`, 40_000);
  assert.equal(Number(out.trim()), bytes);
  const b = tapPackets(ns);
  const c1 = await daemon.counters();
  // Stack -> kernel: each TSO super-segment is one ip6_xmit and one frame on the TAP (VIRTIO_NET_HDR_GSO_TCPV6).
  assert.ok(b.rx - a.rx < frames / 4, `stack -> kernel: ${b.rx - a.rx} frames for ${frames.toFixed(0)} MSS`);
  assert.ok(c1.Ip6.OutRequests - c0.Ip6.OutRequests < frames / 4, `Ip6OutRequests +${c1.Ip6.OutRequests - c0.Ip6.OutRequests}`);
  assert.equal(kernelCsumErrors(ns) - k0, 0, 'the kernel completed our partial checksums');
  ns.ok(`python3 ${join(ROOT, 'bench', 'tools', 'tcp_source.py')} fd00::2 9 ${bytes} 30`, 40_000);
  const c = tapPackets(ns);
  const c2 = await daemon.counters();
  // Kernel -> stack: GRO/TSO super-frames, one Ip6InReceives each, their checksums vouched for (no InCsumErrors).
  assert.ok(c.tx - b.tx < frames / 4, `kernel -> stack: ${c.tx - b.tx} frames for ${frames.toFixed(0)} MSS`);
  assert.ok(c2.Ip6.InReceives - c1.Ip6.InReceives < frames / 4, `Ip6InReceives +${c2.Ip6.InReceives - c1.Ip6.InReceives}`);
  assert.ok(c2.Tcp.InSegs - c1.Tcp.InSegs < frames / 4, `TcpInSegs +${c2.Tcp.InSegs - c1.Tcp.InSegs}`);
  assert.equal(c2.Tcp.InCsumErrors - c1.Tcp.InCsumErrors, 0);
});

test('API AF_INET6 client connects over IPv6 to a kernel listener on fd00::1; getsockname/getpeername are IPv6', { skip, timeout: 30_000 }, async () => {
  const listener = ns.background("sh -c 'echo hello-from-kernel-v6 | nc -6 -l -q 1 -w 10 fd00::1 9700'");
  await ns.kernelListening(9700);
  const c = await raw();
  const { fd } = await c.socket(AF_INET6, SOCK_STREAM, 0);
  await c.connect(fd, { family: AF_INET6, addr: 'fd00::1', port: 9700, flowinfo: 0, scopeId: 0 });
  const me = await c.getsockname(fd);
  assert.equal(me.family, AF_INET6);
  assert.equal(me.addr, 'fd00::2', 'source chosen by the IPv6 layer');
  assert.ok(me.port >= 32768 && me.port <= 60999);
  const peer = await c.getpeername(fd);
  assert.equal(peer.addr, 'fd00::1');
  assert.equal(peer.port, 9700);
  let got = '';
  for (let i = 0; i < 50 && !got.includes('\n'); i++) got += (await c.recv(fd, 100)).toString();
  assert.equal(got, 'hello-from-kernel-v6\n');
  // Link-local without a scope id is EINVAL, as Linux answers.
  const { fd: ll } = await c.socket(AF_INET6, SOCK_STREAM, 0);
  assert.equal(await errno(c.connect(ll, { family: AF_INET6, addr: 'fe80::1', port: 9700, flowinfo: 0, scopeId: 0 })), 'EINVAL');
  // An address that is not ours cannot be bound.
  assert.equal(await errno(c.bind(ll, { family: AF_INET6, addr: 'fd00::77', port: 0, flowinfo: 0, scopeId: 0 })), 'EADDRNOTAVAIL');
  await c.closeFd(ll);
  await c.closeFd(fd);
  c.close();
  await exitOf(listener);
});

test('client library: connect() to [fd00::1] and a createServer on "::" answering the kernel over IPv6', { skip, timeout: 30_000 }, async () => {
  const srv = createServer({ api }, (s: StackSocket) => s.pipe(s));
  await new Promise<void>((r) => srv.listen(9701, '::', () => r()));
  const echoed = await ns.run("sh -c 'echo v6-through-client-lib | nc -6 -q 2 -w 5 fd00::2 9701'", 15_000);
  assert.equal(echoed, 'v6-through-client-lib\n');
  await new Promise<void>((r) => srv.close(() => r()));

  const listener = ns.background("sh -c 'echo kernel-v6 | nc -6 -l -q 1 -w 10 fd00::1 9702'");
  await ns.kernelListening(9702);
  const s = connect({ api, host: 'fd00::1', port: 9702 });
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString()));
  await new Promise<void>((resolve, reject) => {
    s.on('end', () => resolve());
    s.on('error', reject);
  });
  assert.equal(got, 'kernel-v6\n');
  assert.equal(s.remoteFamily, 'IPv6');
  assert.equal(s.remoteAddress, 'fd00::1');
  s.destroy();
  await exitOf(listener);
});

/** tcpdump on the kernel side while IPv6 TCP moves both ways; what tshark flags, and the TCP frame count. */
async function capture6(n: Netns, checksums: boolean): Promise<{ bad: string; count: number }> {
  const file = join(n.dir, `tcp6-${checksums ? 'plain' : 'offload'}.pcap`);
  const td = n.background(`tcpdump -n -i tap0 -w ${file} -U --immediate-mode -Z root ip6 and tcp`);
  await waitLine(td, /listening on tap0/, 'tcpdump to start');
  n.ok('curl -6 -sS --max-time 20 -o /dev/null http://[fd00::2]/bytes/5000000');
  const out = n.ok(`python3 ${CLIENT} echo fd00::2 7 2000000 20`, 35_000);
  const r = JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
  assert.equal(r.sha_received, r.sha_sent);
  await n.pcapCaughtUp(file, 'fd00::2');
  td.kill('SIGINT');
  await exitOf(td);
  // Our TCP checksums (frames from fd00::2); the kernel's may be 0xffff after an incremental update (RFC 1624), valid but flagged.
  const filter = checksums ? '_ws.malformed || (ipv6.src == fd00::2 && tcp.checksum.status == "Bad")' : '_ws.malformed';
  // IP and TCP are checked; HTTP/echo dissection is off (a capture that drops frames under load leaves reassembly gaps tshark calls malformed).
  const bad = n.ok(`tshark -n -r ${file} --disable-protocol http --disable-protocol echo -o tcp.check_checksum:${checksums ? 'TRUE' : 'FALSE'} -Y '${filter}' -T fields -e frame.number -e _ws.col.Info`, 60_000).trim();
  const count = Number(n.ok(`tshark -n -r ${file} -Y 'ipv6 && tcp' -T fields -e frame.number | wc -l`, 60_000).trim());
  return { bad, count };
}

test('a capture of IPv6 TCP has no malformed segments and no bad checksums (plain mode: every checksum is ours)', { skip, timeout: 120_000 }, async () => {
  // With offloads the TCP checksums on the TAP are partial by design; the plain link checks ours.
  const plain = new Netns('tcp6plain');
  try {
    const d = await plain.startDaemon([...V6_ARGS, '--offload', 'off']);
    await v6Ready(plain, d);
    const p = await capture6(plain, true);
    assert.equal(p.bad, '', `tshark flags frames: ${p.bad}`);
    assert.ok(p.count > 1000, `only ${p.count} IPv6 TCP frames captured`);
  } finally {
    plain.destroy();
  }
  const o = await capture6(ns, false);
  assert.equal(o.bad, '', `tshark flags frames (offload): ${o.bad}`);
  assert.ok(o.count > 50, `only ${o.count} IPv6 TCP frames captured`);
});
