/**
 * UDP end to end with the kernel as the peer across the TAP, inside a
 * namespace this file creates: 10 000 datagrams through the stack's UDP
 * echo from a kernel-side socat (none lost on a clean link, counts
 * reported), ICMP port unreachable seen by a kernel connected socket as
 * ECONNREFUSED, and a client-library UDP socket (through the API and its
 * datagram descriptor) exchanging datagrams with a kernel-side peer; the
 * same over IPv6 (fd00::2, the kernel side fd00::1) where the services'
 * dual-stack socket answers both families.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Netns, ROOT, WAIT_MS, exitOf, requireIntegration, waitFor, waitLine, type Daemon } from './netns.js';
import { Client, SYS, SyscallError, createSocket, type RemoteInfo } from '../../src/client/index.js';
import { AF_INET, AF_INET6, POLLERR, POLLIN, SOCK_DGRAM, SOL_SOCKET } from '../../src/uapi.js';

const skip = requireIntegration(['python3', 'socat', 'ping']);
const PEER = join(ROOT, 'test', 'integration', 'udp_peer.py');
const PARITY = join(ROOT, 'test', 'integration', 'udp_parity.py');
const DAEMON_ARGS = ['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--ipv6', 'fd00::2/64', '--host-ipv6', 'fd00::1/64'];

let ns: Netns;
let daemon: Daemon;
let api: string;

before(async () => {
  if (skip) return;
  ns = new Netns('udp');
  api = ns.apiPath();
  daemon = await ns.startDaemon([...DAEMON_ARGS, '--api', api]);
});

after(() => {
  if (daemon && daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
  ns?.destroy();
});

test('socat: 10 000 datagrams through the stack\'s UDP echo come back, none lost', { skip, timeout: 120_000 }, async () => {
  const before = await daemon.counters();
  const out = await ns.run(`python3 ${PEER} socat-echo 10.0.0.2 7 10000 64 10`, 100_000);
  const r = JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
  console.log(`# udp echo over IPv4: ${JSON.stringify(r)}`);
  assert.equal(r.sent, 10000);
  assert.equal(r.received, 10000);
  assert.equal(r.lost, 0);
  assert.equal(r.bad, 0);
  assert.equal(r.duplicates, 0);
  const c = await daemon.counters();
  assert.equal(c.Udp.InDatagrams - before.Udp.InDatagrams, 10000);
  assert.equal(c.Udp.OutDatagrams - before.Udp.OutDatagrams, 10000);
  assert.equal(c.Udp.RcvbufErrors, 0);
  assert.equal(c.Udp.InCsumErrors, 0);
});

test('a kernel connected UDP socket gets ECONNREFUSED from the stack\'s port unreachable', { skip, timeout: 60_000 }, async () => {
  const before = await daemon.counters();
  const out = await ns.run(`python3 ${PEER} refused 10.0.0.2 5555`, 40_000);
  assert.equal(out.trim(), 'ECONNREFUSED');
  const c = await daemon.counters();
  assert.equal(c.Udp.NoPorts - before.Udp.NoPorts, 1);
  assert.ok(c.Icmp.OutDestUnreachs > before.Icmp.OutDestUnreachs);
});

test('client library: a dgram socket on the stack exchanges datagrams with a kernel peer (rinfo, 200 round trips)', { skip, timeout: 90_000 }, async () => {
  const server = ns.background(`python3 ${PEER} echo-server 9000 200 30`);
  let serverOut = '';
  server.stdout!.setEncoding('utf8').on('data', (d: string) => (serverOut += d));
  await waitLine(server, /^ready$/m, 'the kernel echo server');
  const s = createSocket({ type: 'udp4', api });
  const got: { msg: string; rinfo: RemoteInfo }[] = [];
  s.on('message', (m: Buffer, rinfo: RemoteInfo) => got.push({ msg: m.toString(), rinfo }));
  try {
    await new Promise<void>((res) => s.bind(6000, '10.0.0.2', () => res()));
    assert.deepEqual(s.address(), { address: '10.0.0.2', family: 'IPv4', port: 6000 });
    // Paced: one outstanding at a time would be slow; 8 in flight keeps every buffer far from full.
    let sent = 0;
    const deadline = Date.now() + 40_000;
    while (got.length < 200 && Date.now() < deadline) {
      while (sent < 200 && sent - got.length < 8) s.send(`dgram ${sent++}`, 9000, '10.0.0.1');
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.equal(got.length, 200);
    assert.deepEqual(new Set(got.map((g) => g.msg)), new Set(Array.from({ length: 200 }, (_, i) => `dgram ${i}`)));
    assert.deepEqual(got[0].rinfo, { address: '10.0.0.1', family: 'IPv4', port: 9000, size: got[0].msg.length });
  } finally {
    await new Promise<void>((res) => s.close(() => res()));
  }
  await exitOf(server);
  assert.equal(serverOut.trim().split('\n').pop(), '200');
});

test('broadcast: the stack sends to 10.0.0.255 with SO_BROADCAST (EACCES without) and hears the kernel\'s broadcast', { skip, timeout: 60_000 }, async () => {
  const s = createSocket({ type: 'udp4', api });
  const got: { msg: string; rinfo: RemoteInfo }[] = [];
  s.on('message', (m: Buffer, rinfo: RemoteInfo) => got.push({ msg: m.toString(), rinfo }));
  try {
    await new Promise<void>((res) => s.bind(6001, () => res()));
    // Without SO_BROADCAST the send is refused (the error comes back in-band).
    const errs: string[] = [];
    s.on('error', (e: Error & { code?: string }) => errs.push(e.code ?? String(e)));
    s.send('denied', 9001, '10.0.0.255');
    await waitFor(() => errs.length, 'the refused send\'s error').catch(() => {});
    assert.deepEqual(errs, ['EACCES']);
    await s.setBroadcast(true);
    const recv = ns.background(`python3 ${PEER} bcast-recv 9001 15`);
    let out = '';
    recv.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    await waitLine(recv, /^ready$/m, 'the kernel broadcast receiver');
    s.send('to all', 9001, '10.0.0.255');
    await exitOf(recv);
    const r = JSON.parse(out.trim().split('\n').pop()!) as { text: string; from: string; port: number };
    assert.deepEqual(r, { text: 'to all', from: '10.0.0.2', port: 6001 });
    // The kernel's broadcast to the subnet reaches the stack's socket on 0.0.0.0:6001.
    await ns.run(`python3 ${PEER} bcast-send 10.0.0.255 6001 hello-stack`, 10_000);
    await waitFor(() => got.length, "the kernel's broadcast at the stack's socket").catch(() => {});
    assert.equal(got[0]?.msg, 'hello-stack');
    assert.equal(got[0].rinfo.address, '10.0.0.1');
  } finally {
    await new Promise<void>((res) => s.close(() => res()));
  }
});

// --- IPv6 (the kernel side fd00::1, the stack fd00::2) --------------------------------

/** Bounded wait until the kernel's fd00::1 left DAD and the stack's fd00::2 answers a ping. */
async function ipv6Ready(n: Netns): Promise<void> {
  await n.kernelDadDone('tap0');
  await n.until('ping -6 -c1 -W1 fd00::2', 'fd00::2 to answer a ping');
}

test('IPv6: socat sends 10 000 datagrams through the stack\'s UDP echo at [fd00::2]:7, none lost', { skip, timeout: 120_000 }, async () => {
  await ipv6Ready(ns);
  const before = await daemon.counters();
  const out = await ns.run(`python3 ${PEER} socat-echo fd00::2 7 10000 64 10 6`, 100_000);
  const r = JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
  console.log(`# udp echo over IPv6: ${JSON.stringify(r)}`);
  assert.deepEqual([r.sent, r.received, r.lost, r.bad, r.duplicates], [10000, 10000, 0, 0, 0]);
  const c = await daemon.counters();
  assert.equal(c.Udp6.InDatagrams - before.Udp6.InDatagrams, 10000);
  assert.equal(c.Udp6.OutDatagrams - before.Udp6.OutDatagrams, 10000);
  assert.equal(c.Udp6.InCsumErrors, 0);
});

test('IPv6: a kernel connected socket gets ECONNREFUSED from the stack\'s ICMPv6 port unreachable', { skip, timeout: 60_000 }, async () => {
  await ipv6Ready(ns);
  const before = await daemon.counters();
  const out = await ns.run(`python3 ${PEER} refused fd00::2 5555 6`, 40_000);
  assert.equal(out.trim(), 'ECONNREFUSED');
  const c = await daemon.counters();
  assert.equal(c.Udp6.NoPorts - before.Udp6.NoPorts, 1);
});

test('IPv6: a client-library udp6 socket exchanges datagrams with a kernel peer at fd00::1', { skip, timeout: 90_000 }, async () => {
  await ipv6Ready(ns);
  const server = ns.background(`python3 ${PEER} echo-server 9006 50 30 6`);
  let serverOut = '';
  server.stdout!.setEncoding('utf8').on('data', (d: string) => (serverOut += d));
  await waitLine(server, /^ready$/m, 'the kernel echo server');
  const s = createSocket({ type: 'udp6', api });
  const got: { msg: string; rinfo: RemoteInfo }[] = [];
  s.on('message', (m: Buffer, rinfo: RemoteInfo) => got.push({ msg: m.toString(), rinfo }));
  try {
    await new Promise<void>((res) => s.bind(6006, () => res()));
    assert.deepEqual(s.address(), { address: '::', family: 'IPv6', port: 6006 });
    let sent = 0;
    const deadline = Date.now() + 30_000;
    while (got.length < 50 && Date.now() < deadline) {
      while (sent < 50 && sent - got.length < 8) s.send(`six ${sent++}`, 9006, 'fd00::1');
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.equal(got.length, 50);
    assert.deepEqual(got[0].rinfo, { address: 'fd00::1', family: 'IPv6', port: 9006, size: got[0].msg.length });
  } finally {
    await new Promise<void>((res) => s.close(() => res()));
  }
  await exitOf(server);
  assert.equal(serverOut.trim().split('\n').pop(), '50');
});

// --- the same calls on the kernel and on the stack --------------------------------------

type Result = unknown;

/** udp_parity.py's scenarios, through the API on the stack's sockets. */
async function stackScenarios(c: Client, local4: string, peer4: string, bcast4: string, local6: string, peer6: string): Promise<Record<string, Result>> {
  const out: Record<string, Result> = {};
  const run = async (name: string, fn: () => Promise<Result>): Promise<void> => {
    try {
      out[name] = await fn();
    } catch (e) {
      if (!(e instanceof SyscallError)) throw e;
      out[name] = e.code;
    }
  };
  const name = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
      return 'ok';
    } catch (e) {
      if (!(e instanceof SyscallError)) throw e;
      return e.code;
    }
  };
  const v4 = (addr: string, port: number) => ({ family: AF_INET, addr, port });
  // What udp_parity.py waits for on the kernel, waited for here the same way: a datagram queued
  // (FIONREAD counts the first one), an ICMP error on a connected socket (poll's POLLERR).
  const queued = (s: number) => waitFor(async () => (await c.ioctl(s, 0x541b)) > 0, 'a datagram queued on the socket');
  const icmpError = async (s: number) => {
    const [rev] = await c.poll([{ fd: s, events: POLLIN }], WAIT_MS);
    if (!(rev & POLLERR)) throw new Error(`no ICMP error on the connected socket in ${WAIT_MS} ms (revents ${rev})`);
  };
  const v6 = (addr: string, port: number) => ({ family: AF_INET6, addr, port });
  const s4 = async () => (await c.socket(AF_INET, SOCK_DGRAM)).fd;
  const s6 = async () => (await c.socket(AF_INET6, SOCK_DGRAM)).fd;
  const x = Buffer.from('x');

  await run('shutdown unconnected, then send', async () => {
    const s = await s4();
    return [await name(c.shutdown(s, 1)), await name(c.sendto(s, x, v4(peer4, 9)))];
  });
  await run('sendto 65507 bytes', async () => c.sendto(await s4(), Buffer.alloc(65507, 0x78), v4(peer4, 9)));
  await run('sendto 65508 bytes', async () => c.sendto(await s4(), Buffer.alloc(65508, 0x78), v4(peer4, 9)));
  await run('sendto 65527 bytes over IPv6', async () => c.sendto(await s6(), Buffer.alloc(65527, 0x78), v6(peer6, 9)));
  await run('sendto 65528 bytes over IPv6', async () => c.sendto(await s6(), Buffer.alloc(65528, 0x78), v6(peer6, 9)));
  const rcvbuf = async (v: number) => {
    const s = await s4();
    await c.setsockopt(s, SOL_SOCKET, 8, v);
    return c.getsockoptInt(s, SOL_SOCKET, 8);
  };
  await run('SO_RCVBUF 1000', () => rcvbuf(1000));
  await run('SO_RCVBUF 4000', () => rcvbuf(4000));
  await run('connect to port 0: getpeername, send', async () => {
    const s = await s4();
    await c.connect(s, v4(peer4, 0));
    return [await name(c.getpeername(s)), await c.sendto(s, x, null)];
  });
  await run('send unconnected (autobinds first)', async () => {
    const s = await s4();
    return [await name(c.sendto(s, x, null)), (await c.getsockname(s)).port !== 0];
  });
  const bindPair = async (f1: number, a1: string, f2: number, a2: string, port: number, only2 = false) => {
    const p = (await c.socket(f1, SOCK_DGRAM)).fd;
    await c.bind(p, { family: f1, addr: a1, port });
    const q = (await c.socket(f2, SOCK_DGRAM)).fd;
    if (only2) await c.setsockopt(q, 41, 26, 1);
    await c.bind(q, { family: f2, addr: a2, port });
    return 'ok';
  };
  await run('[::] after 0.0.0.0', () => bindPair(AF_INET, '0.0.0.0', AF_INET6, '::', 47001));
  await run('[::] V6ONLY after 0.0.0.0', () => bindPair(AF_INET, '0.0.0.0', AF_INET6, '::', 47002, true));
  await run('0.0.0.0 after [LOCAL6]', () => bindPair(AF_INET6, local6, AF_INET, '0.0.0.0', 47003));
  await run('0.0.0.0 after [::]', () => bindPair(AF_INET6, '::', AF_INET, '0.0.0.0', 47004));
  await run('LOCAL4 after 0.0.0.0', () => bindPair(AF_INET, '0.0.0.0', AF_INET, local4, 47005));
  await run('SO_REUSEADDR after a SO_REUSEPORT holder', async () => {
    const w = await s4();
    await c.setsockopt(w, SOL_SOCKET, 15, 1);
    await c.bind(w, v4('0.0.0.0', 47006));
    const y = await s4();
    await c.setsockopt(y, SOL_SOCKET, 2, 1);
    await c.bind(y, v4('0.0.0.0', 47006));
    return 'ok';
  });
  await run('FIONREAD, MSG_PEEK|MSG_TRUNC, truncation, MSG_DONTWAIT', async () => {
    const r = await s4();
    await c.bind(r, v4(local4, 47007));
    const w = await s4();
    await c.sendto(w, Buffer.from('abcdefghij'), v4(local4, 47007));
    await c.sendto(w, Buffer.from('12345'), v4(local4, 47007));
    await queued(r);
    const res: Result[] = [await c.ioctl(r, 0x541b)];
    res.push((await c.recvfrom(r, 4, 0x22)).ret);
    const m = await c.recvfrom(r, 4);
    res.push(m.data.toString(), m.flags & 0x20);
    await queued(r);
    res.push(await c.ioctl(r, 0x541b));
    res.push((await c.recvfrom(r, 100)).data.toString());
    res.push(await name(c.recvfrom(r, 100, 0x40)));
    return res;
  });
  await run('listen', async () => c.listen(await s4()));
  await run('subnet broadcast without SO_BROADCAST: sendto, connect', async () => [await name(c.sendto(await s4(), x, v4(bcast4, 9))), await name(c.connect(await s4(), v4(bcast4, 9)))]);
  await run('subnet broadcast with SO_BROADCAST', async () => {
    const s = await s4();
    await c.setsockopt(s, SOL_SOCKET, 6, 1);
    return c.sendto(s, x, v4(bcast4, 9));
  });
  await run('bind a foreign address', async () => c.bind(await s4(), v4('192.0.2.77', 0)).then(() => null));
  await run('bind the subnet broadcast', async () => c.bind(await s4(), v4(bcast4, 0)).then(() => null));
  await run('V6ONLY sendto a v4-mapped address', async () => {
    const s = await s6();
    await c.setsockopt(s, 41, 26, 1);
    return c.sendto(s, x, v6(`::ffff:${peer4}`, 9));
  });
  await run('v4-mapped-bound socket towards IPv6: sendto, connect', async () => {
    const s = await s6();
    await c.bind(s, v6(`::ffff:${local4}`, 47008));
    return [await name(c.sendto(s, x, v6(peer6, 9))), await name(c.connect(s, v6(peer6, 9)))];
  });
  await run('sendto port 0', async () => c.sendto(await s4(), x, v4(peer4, 0)));
  await run('sendto port 0 over IPv6', async () => c.sendto(await s6(), x, v6(peer6, 0)));
  await run('bind after connect', async () => {
    const s = await s4();
    await c.connect(s, v4(peer4, 9));
    return c.bind(s, v4(local4, 47009)).then(() => null);
  });
  await run('IPV6_V6ONLY after bind', async () => {
    const s = await s6();
    await c.bind(s, v6('::', 47010));
    return c.setsockopt(s, 41, 26, 1).then(() => null);
  });
  await run('IPV6_V6ONLY after binding a specific IPv6 address', async () => {
    const s = await s6();
    await c.bind(s, v6(local6, 47011));
    return c.getsockoptInt(s, 41, 26);
  });
  await run('SO_TYPE, SO_PROTOCOL, SO_DOMAIN (4, 6), IP_TTL', async () => {
    const s = await s4();
    const t = await s6();
    return [await c.getsockoptInt(s, SOL_SOCKET, 3), await c.getsockoptInt(s, SOL_SOCKET, 38), await c.getsockoptInt(s, SOL_SOCKET, 39), await c.getsockoptInt(t, SOL_SOCKET, 39), await c.getsockoptInt(s, 0, 2)];
  });
  await run('connect(AF_UNSPEC) after an autobinding connect: rc, getpeername, port', async () => {
    const s = await s4();
    await c.connect(s, v4(peer4, 9));
    const rc = (await c.call(SYS.connect, (w) => w.i32(s).u16(2).u16(0))).ret; // sockaddr of family AF_UNSPEC
    return [rc, await name(c.getpeername(s)), (await c.getsockname(s)).port];
  });
  const CLOSED = 47100;
  const refusedRecv = async (fam: number, peer: string) => {
    const s = (await c.socket(fam, SOCK_DGRAM)).fd;
    await c.connect(s, { family: fam, addr: peer, port: CLOSED });
    await c.sendto(s, x, null);
    await icmpError(s);
    return [await name(c.recvfrom(s, 10, 0x40)), await name(c.recvfrom(s, 10, 0x40))];
  };
  await run('connected to a closed port: recv twice after the ICMP error', () => refusedRecv(AF_INET, peer4));
  await run('connected to a closed port over IPv6: recv twice after the ICMP error', () => refusedRecv(AF_INET6, peer6));
  await run('connected to a closed port: SO_ERROR twice', async () => {
    const s = await s4();
    await c.connect(s, v4(peer4, CLOSED));
    await c.sendto(s, x, null);
    await icmpError(s);
    return [await c.getsockoptInt(s, SOL_SOCKET, 4), await c.getsockoptInt(s, SOL_SOCKET, 4)];
  });
  await run('connected to a closed port: the next send', async () => {
    const s = await s4();
    await c.connect(s, v4(peer4, CLOSED));
    await c.sendto(s, x, null);
    await icmpError(s);
    return [await name(c.sendto(s, Buffer.from('y'), null))];
  });
  await run('unconnected sendto a closed port over IPv6: SO_ERROR, recv', async () => {
    const s = await s6();
    // Unconnected, the socket may not hear of the error: wait for the host to (Icmp6.InDestUnreachs).
    const unreachs = async () => (await c.counters()).Icmp6.InDestUnreachs as number;
    const before = await unreachs();
    await c.sendto(s, x, v6(peer6, CLOSED));
    await waitFor(async () => (await unreachs()) > before, 'the ICMPv6 port unreachable at the stack');
    return [await c.getsockoptInt(s, SOL_SOCKET, 4), await name(c.recvfrom(s, 10, 0x40))];
  });
  await run('a dual-stack socket sees an IPv4 sender v4-mapped', async () => {
    const r = await s6();
    await c.bind(r, v6('::', 47012));
    const w = await s4();
    await c.sendto(w, Buffer.from('m'), v4(local4, 47012));
    await queued(r);
    const m = await c.recvfrom(r, 10);
    return [m.from!.addr === `::ffff:${local4}`, m.from!.port === (await c.getsockname(w)).port];
  });
  await run('getsockname after connect: the chosen source', async () => {
    const s = await s4();
    await c.connect(s, v4(peer4, 9));
    const t = await s6();
    await c.connect(t, v6(peer6, 9));
    return [(await c.getsockname(s)).addr === local4, (await c.getsockname(t)).addr === local6];
  });
  await run('SO_SNDBUF 1', async () => {
    const s = await s4();
    await c.setsockopt(s, SOL_SOCKET, 7, 1);
    return c.getsockoptInt(s, SOL_SOCKET, 7);
  });
  await run('IP_TTL 1, 255, 0, 256', async () => {
    const s = await s4();
    const res: Result[] = [];
    for (const v of [1, 255, 0, 256]) {
      const e = await name(c.setsockopt(s, 0, 2, v));
      res.push(e === 'ok' ? await c.getsockoptInt(s, 0, 2) : e);
    }
    return res;
  });
  await run('SHUT_RD unconnected: queued datagram, blocking recv, MSG_DONTWAIT, a later datagram', async () => {
    const r = await s4();
    await c.bind(r, v4(local4, 47013));
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(1n, 0);
    await c.setsockopt(r, SOL_SOCKET, 20 /* SO_RCVTIMEO */, tv);
    const w = await s4();
    await c.sendto(w, Buffer.from('before'), v4(local4, 47013));
    await queued(r);
    const res: Result[] = [await name(c.shutdown(r, 0))];
    res.push((await c.recvfrom(r, 10)).data.toString());
    res.push((await c.recvfrom(r, 10)).ret);
    res.push(await name(c.recvfrom(r, 10, 0x40)));
    await c.sendto(w, Buffer.from('after'), v4(local4, 47013));
    await queued(r);
    res.push((await c.recvfrom(r, 10)).data.toString());
    return res;
  });
  const MORE = 0x8000;
  const tryIt = async (p: Promise<number>): Promise<Result> => {
    try {
      return await p;
    } catch (e) {
      if (!(e instanceof SyscallError)) throw e;
      return e.code;
    }
  };
  await run('MSG_MORE pieces: one datagram to the first address', async () => {
    const a = await s4();
    await c.bind(a, v4(local4, 47014));
    const b = await s4();
    await c.bind(b, v4(local4, 47015));
    const s = await s4();
    const res: Result[] = [await c.sendto(s, Buffer.from('ab'), v4(local4, 47014), MORE), await c.sendto(s, Buffer.from('cd'), v4(local4, 47015), MORE), await c.sendto(s, Buffer.from('ef'), null)];
    await queued(a);
    for (const r of [a, b]) {
      try {
        res.push((await c.recvfrom(r, 100, 0x40)).data.toString());
      } catch (e) {
        res.push((e as SyscallError).code);
      }
    }
    return res;
  });
  await run('UDP_CORK: two sends, then uncork', async () => {
    const a = await s4();
    await c.bind(a, v4(local4, 47016));
    const s = await s4();
    await c.setsockopt(s, 17, 1, 1);
    const res: Result[] = [await c.getsockoptInt(s, 17, 1), await c.sendto(s, x, v4(local4, 47016)), await c.sendto(s, Buffer.from('y'), null)];
    await c.setsockopt(s, 17, 1, 0);
    await queued(a);
    res.push((await c.recvfrom(a, 100)).data.toString());
    return res;
  });
  await run('corked past 65507, then an unaddressed send, then corking to the broadcast', async () => {
    const s = await s4();
    return [
      await c.sendto(s, Buffer.alloc(40000, 0x61), v4(peer4, 9), MORE),
      await tryIt(c.sendto(s, Buffer.alloc(30000, 0x61), v4(peer4, 9), MORE)),
      await tryIt(c.sendto(s, Buffer.from('z'), null)),
      await tryIt(c.sendto(s, Buffer.from('b'), v4(bcast4, 9), MORE)),
    ];
  });
  return out;
}

test('the same UDP calls give the same results on the kernel and on the stack (43 scenarios, both families)', { skip, timeout: 60_000 }, async () => {
  await ipv6Ready(ns);
  const kernel = JSON.parse((await ns.run(`python3 ${PARITY} 10.0.0.1 10.0.0.2 10.0.0.255 fd00::1 fd00::2`, 30_000)).trim()) as Record<string, Result>;
  const c = new Client({ path: api, descriptors: false });
  try {
    await c.ready();
    const stack = await stackScenarios(c, '10.0.0.2', '10.0.0.1', '10.0.0.255', 'fd00::2', 'fd00::1');
    assert.deepEqual(Object.keys(stack), Object.keys(kernel), 'the same scenarios');
    const differ = Object.keys(kernel).filter((k) => JSON.stringify(kernel[k]) !== JSON.stringify(stack[k]));
    assert.deepEqual(differ.map((k) => ({ scenario: k, kernel: kernel[k], stack: stack[k] })), []);
    // And agreeing is not both sides failing the same way: the error paths did run.
    assert.deepEqual(kernel['connected to a closed port: recv twice after the ICMP error'], ['ECONNREFUSED', 'EAGAIN']);
    assert.deepEqual(kernel['connected to a closed port over IPv6: recv twice after the ICMP error'], ['ECONNREFUSED', 'EAGAIN']);
    assert.deepEqual(kernel['connected to a closed port: SO_ERROR twice'], [111, 0]);
    assert.deepEqual(kernel['connected to a closed port: the next send'], ['ECONNREFUSED']);
    assert.equal(kernel['sendto 65507 bytes'], 65507);
    console.log(`# udp parity: ${Object.keys(kernel).length} scenarios agree with the kernel`);
  } finally {
    c.close();
  }
});
