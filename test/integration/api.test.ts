/**
 * The syscall API end to end: tapstackd on a TAP inside a namespace these
 * tests create, the kernel as the peer across the TAP, and this process as
 * the API client (the API socket is a file; only the namespace carries
 * packets). Covers the errno table, blocking and timeouts, the data
 * descriptors (client library, `tapstack nc`, `tapstack serve` with curl),
 * scale and idle cost, isolation between clients and users, and a fuzzer
 * running beside a transfer that must stay intact.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { CLI, Netns, ROOT, WAIT_MS, exitOf, outputOf, requireIntegration, track, waitFor, waitLine, type Daemon, errno } from './netns.js';
import {
  API_MAGIC,
  API_VERSION,
  Client,
  FrameWriter,
  HELLO_LEN,
  SYS,
  SyscallError,
  connect,
  createServer,
  type StackSocket,
} from '../../src/client/index.js';
import { UnixConn, unixAddon } from '../../src/api/unix.js';
import { decodeTcpInfo } from '../../src/net/ipv4/tcp_info.js';
import { AF_INET, POLLERR, POLLHUP, POLLIN, POLLOUT, SO_RCVTIMEO, SOCK_NONBLOCK, SOCK_STREAM, SOL_SOCKET } from '../../src/uapi.js';

const skip = requireIntegration(['curl', 'python3', 'nc', 'setpriv']);
const PEER = join(ROOT, 'test', 'integration', 'api_peer.py');
const NOGROUP = 65534;
const MAX_SOCKETS = 2100;

let ns: Netns;
let daemon: Daemon;
let api: string;

before(async () => {
  if (skip) return;
  ns = new Netns('api');
  const cfg = join(ns.dir, 'api.json');
  writeFileSync(cfg, JSON.stringify({ apiGroup: NOGROUP, apiMaxSockets: MAX_SOCKETS }));
  api = join(ns.dir, 'api.sock');
  // The user tests run as nobody: the directory must be traversable, the socket itself is 0660 root:nogroup.
  chmodSync(ns.dir, 0o711);
  daemon = await ns.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--config', cfg, '--api', api]);
});

after(() => {
  if (daemon && daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
  ns?.destroy();
});

async function raw(): Promise<Client> {
  const c = new Client({ path: api, descriptors: false });
  await c.ready();
  return c;
}

const sa = (addr: string, port: number) => ({ family: AF_INET, addr, port });

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]); // utime + stime
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FIONREAD = 0x541b;

/** Wait until the daemon has no API client left (it drops one synchronously: its sockets go with it). */
async function noClients(what: string): Promise<void> {
  await waitFor(async () => (await daemon.counters()).Api.Clients === 0, what, WAIT_MS, 50);
}

test('every call fails with the errno Linux gives in the same state', { skip, timeout: 60_000 }, async () => {
  const c = await raw();
  const peer = ns.background(`python3 ${PEER} echo 10.0.0.1 7001 40`);
  const rst = ns.background(`python3 ${PEER} rst 10.0.0.1 7002 40`);
  await waitLine(peer, /"listening"/, 'the echo peer on 7001');
  await waitLine(rst, /"listening"/, 'the resetting peer on 7002');
  const sock = async (type = SOCK_STREAM) => (await c.socket(AF_INET, type, 0)).fd;
  const cases: [string, () => Promise<unknown>, string][] = [
    ['socket(AF 99)', () => c.socket(99, SOCK_STREAM, 0), 'EAFNOSUPPORT'],
    ['socket(SOCK_RAW)', () => c.socket(AF_INET, 3, 0), 'ESOCKTNOSUPPORT'],
    ['socket(STREAM, IPPROTO_UDP)', () => c.socket(AF_INET, SOCK_STREAM, 17), 'EPROTONOSUPPORT'],
    ['close(999)', () => c.closeFd(999), 'EBADF'],
    ['read(999)', () => c.recv(999, 10), 'EBADF'],
    ['bind(non-local address)', async () => c.bind(await sock(), sa('10.9.9.9', 0)), 'EADDRNOTAVAIL'],
    ['bind(port in use)', async () => {
      const a = await sock();
      await c.bind(a, sa('10.0.0.2', 7100));
      return c.bind(await sock(), sa('10.0.0.2', 7100));
    }, 'EADDRINUSE'],
    ['bind twice', async () => {
      const a = await sock();
      await c.bind(a, sa('0.0.0.0', 0));
      return c.bind(a, sa('0.0.0.0', 0));
    }, 'EINVAL'],
    ['bind(AF 7 sockaddr)', async () => {
      const fd = await sock();
      const r = await c.call(SYS.bind, (w) => w.i32(fd).u16(8).bytes(Buffer.from([7, 0, 0, 0, 0, 0, 0, 0])));
      if (r.ret < 0) throw new SyscallError(r.ret, 'bind');
    }, 'EAFNOSUPPORT'],
    ['bind(short AF_INET sockaddr)', async () => {
      const fd = await sock();
      const r = await c.call(SYS.bind, (w) => w.i32(fd).u16(4).bytes(Buffer.from([2, 0, 0, 0])));
      if (r.ret < 0) throw new SyscallError(r.ret, 'bind');
    }, 'EINVAL'],
    ['connect(closed port)', async () => c.connect(await sock(), sa('10.0.0.1', 7999)), 'ECONNREFUSED'],
    ['recv(unconnected)', async () => c.recv(await sock(), 10), 'ENOTCONN'],
    ['getpeername(unconnected)', async () => c.getpeername(await sock()), 'ENOTCONN'],
    ['shutdown(unconnected)', async () => c.shutdown(await sock(), 1), 'ENOTCONN'],
    ['shutdown(how 7)', async () => c.shutdown(await sock(), 7), 'EINVAL'],
    ['setsockopt(SOL_SOCKET, 12345)', async () => c.setsockopt(await sock(), SOL_SOCKET, 12345, 1), 'ENOPROTOOPT'],
    ['getsockopt(SOL_TCP, 12345)', async () => c.getsockopt(await sock(), 6, 12345), 'ENOPROTOOPT'],
    ['ioctl(0x1234)', async () => c.ioctl(await sock(), 0x1234), 'ENOTTY'],
    ['fcntl(cmd 99)', async () => c.fcntl(await sock(), 99), 'EINVAL'],
    ['accept(not listening)', async () => c.accept(await sock()), 'EINVAL'],
    ['accept(non-blocking, empty queue)', async () => {
      const l = (await c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)).fd;
      await c.listen(l, 8);
      return c.accept(l);
    }, 'EAGAIN'],
    ['connect(connected)', async () => {
      const s = await sock();
      await c.connect(s, sa('10.0.0.1', 7001));
      return c.connect(s, sa('10.0.0.1', 7001));
    }, 'EISCONN'],
    ['recv(MSG_DONTWAIT, idle)', async () => {
      const s = await sock();
      await c.connect(s, sa('10.0.0.1', 7001));
      return c.recv(s, 10, 0x40);
    }, 'EAGAIN'],
    ['unknown call', async () => {
      const r = await c.call(4242);
      if (r.ret < 0) throw new SyscallError(r.ret, 'call');
    }, 'ENOSYS'],
    ['short arguments', async () => {
      const r = await c.call(SYS.bind, (w) => w.i32(3));
      if (r.ret < 0) throw new SyscallError(r.ret, 'bind');
    }, 'EFAULT'],
  ];
  const got: string[] = [];
  for (const [name, run, want] of cases) {
    const e = await errno(run());
    got.push(`${name}: ${e}`);
    assert.equal(e, want, `${name}: got ${e}, want ${want}\n${got.join('\n')}`);
  }

  // Non-blocking connect: EINPROGRESS, then writable, SO_ERROR 0.
  const nb = (await c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)).fd;
  assert.equal(await errno(c.connect(nb, sa('10.0.0.1', 7001))), 'EINPROGRESS');
  const [rev] = await c.poll([{ fd: nb, events: POLLOUT }], WAIT_MS);
  assert.ok(rev & POLLOUT, `poll revents ${rev}`);
  assert.equal(await c.getsockoptInt(nb, SOL_SOCKET, 4), 0);
  assert.equal((await c.getpeername(nb)).port, 7001);

  // TCP_CONGESTION: cubic by default (net.ipv4.tcp_congestion_control), reno on request, ENOENT for no such algorithm.
  const cc = await sock();
  assert.equal((await c.getsockopt(cc, 6, 13, 16)).toString('latin1').replace(/\0+$/, ''), 'cubic');
  await c.setsockopt(cc, 6, 13, Buffer.from('reno\0'));
  assert.equal((await c.getsockopt(cc, 6, 13, 16)).toString('latin1').replace(/\0+$/, ''), 'reno');
  assert.equal(await errno(c.setsockopt(cc, 6, 13, Buffer.from('bbr9'))), 'ENOENT');

  // sysctl: Linux names, set as root, errors for unknown names and bad values.
  assert.equal((await c.sysctl(''))['net.ipv4.tcp_sack'], '1');
  assert.deepEqual(await c.sysctl('net.ipv4.tcp_fin_timeout=30'), { 'net.ipv4.tcp_fin_timeout': '30' });
  assert.equal(await errno(c.sysctl('net.ipv4.no_such_thing')), 'ENOENT');
  assert.equal(await errno(c.sysctl('net.ipv4.tcp_sack=banana')), 'EINVAL');
  await c.sysctl('net.ipv4.tcp_fin_timeout=60');
  const cli = spawnSync(process.execPath, [CLI, '--api', api, 'sysctl', 'net.ipv4.tcp_rmem'], { encoding: 'utf8', timeout: 10_000 });
  assert.match(cli.stdout, /^net\.ipv4\.tcp_rmem = 4096\s+131072\s+6291456$/m, cli.stdout + cli.stderr);

  // SO_SNDBUF reads back doubled.
  const b = await sock();
  await c.setsockopt(b, SOL_SOCKET, 7, 10000);
  assert.equal(await c.getsockoptInt(b, SOL_SOCKET, 7), 20000);

  // SO_RCVTIMEO: a blocking read on an idle connection gives EAGAIN after the timeout.
  const t = await sock();
  await c.connect(t, sa('10.0.0.1', 7001));
  const tv = Buffer.alloc(16);
  tv.writeBigInt64LE(0n, 0);
  tv.writeBigInt64LE(300_000n, 8);
  await c.setsockopt(t, SOL_SOCKET, SO_RCVTIMEO, tv);
  const t0 = Date.now();
  assert.equal(await errno(c.recv(t, 10)), 'EAGAIN');
  const waited = Date.now() - t0;
  assert.ok(waited >= 280 && waited < 2000, `SO_RCVTIMEO waited ${waited} ms`);

  // A blocking read completes when data arrives; echo proves the round trip.
  assert.equal(await c.send(t, Buffer.from('ping')), 4);
  assert.equal((await c.recv(t, 10)).toString(), 'ping');

  // The peer resets: the next write fails ECONNRESET, the one after EPIPE.
  const r = await sock();
  await c.connect(r, sa('10.0.0.1', 7002));
  rst.kill('SIGUSR1');
  // The peer sends nothing: poll reports the socket once its reset has arrived (and clears no error).
  const [hup] = await c.poll([{ fd: r, events: POLLIN }], WAIT_MS);
  assert.ok(hup & (POLLERR | POLLHUP), `poll revents ${hup}: no reset from the peer in ${WAIT_MS} ms`);
  assert.equal(await errno(c.send(r, Buffer.from('x'))), 'ECONNRESET');
  assert.equal(await errno(c.send(r, Buffer.from('x'))), 'EPIPE');
  c.close();
  peer.kill();
  rst.kill();
  // Through the client library, a reset connection is an 'error' with ECONNRESET, as with net.
  const rst2 = ns.background(`python3 ${PEER} rst 10.0.0.1 7003 40`);
  await waitLine(rst2, /"listening"/, 'the resetting peer on 7003');
  const code = await new Promise<string>((resolve) => {
    const s = connect({ host: '10.0.0.1', port: 7003, api });
    s.on('connect', () => rst2.kill('SIGUSR1'));
    s.on('error', (e) => resolve((e as SyscallError).code));
    s.on('close', () => resolve('closed without error'));
    s.resume();
  });
  assert.equal(code, 'ECONNRESET');
  rst2.kill();
});

test('blocking semantics: MSG_PEEK, MSG_WAITALL, accept, edge-triggered poll, SO_SNDTIMEO, ioctls, fcntl, shutdown', { skip, timeout: 60_000 }, async () => {
  const c = await raw();
  const echo = ns.background(`python3 ${PEER} echo 10.0.0.1 7020 40`);
  const hold = ns.background(`python3 ${PEER} hold 10.0.0.1 7021 1 40`);
  await waitLine(echo, /"listening"/, 'the echo peer on 7020');
  await waitLine(hold, /"listening"/, 'the holding peer on 7021');
  const s = (await c.socket()).fd;
  await c.connect(s, sa('10.0.0.1', 7020));
  const local = await c.getsockname(s);
  assert.equal(local.addr, '10.0.0.2');
  assert.ok(local.port >= 32768 && local.port <= 60999, `ephemeral port ${local.port}`);

  // MSG_WAITALL parks until all 6 bytes are there, across two sends; replies come out of order.
  const received = async () => decodeTcpInfo(await c.getsockopt(s, 6, 11, 280)).tcpi_bytes_received;
  const waitall = c.recv(s, 6, 0x100);
  await c.send(s, Buffer.from('abc'));
  // The first half is back (and the read still parked) before the second is sent.
  await waitFor(async () => (await received()) >= 3n, "the echo of 'abc'");
  await c.send(s, Buffer.from('def'));
  assert.equal((await waitall).toString(), 'abcdef');

  // MSG_PEEK leaves the data; FIONREAD counts it.
  await c.send(s, Buffer.from('peek'));
  await waitFor(async () => (await received()) >= 10n, "the echo of 'peek'");
  assert.equal(await c.ioctl(s, FIONREAD), 4);
  assert.equal((await c.recv(s, 10, 0x2)).toString(), 'peek');
  assert.equal((await c.recv(s, 10)).toString(), 'peek');

  // Edge-triggered poll: reported once, not again until new data.
  await c.send(s, Buffer.from('e1'));
  const [r1] = await c.poll([{ fd: s, events: 0x1 | 0x8000 }], WAIT_MS);
  assert.ok(r1 & 0x1, `first edge ${r1}`);
  // 200 ms without a report is the check itself (nothing new may come).
  const [r2] = await c.poll([{ fd: s, events: 0x1 | 0x8000 }], 200);
  assert.equal(r2, 0, 'no new edge without new data');
  const [r3] = await c.poll([{ fd: s, events: 0x1 }], 200);
  assert.ok(r3 & 0x1, 'level-triggered still sees the data');
  await c.send(s, Buffer.from('e2'));
  const [r4] = await c.poll([{ fd: s, events: 0x1 | 0x8000 }], WAIT_MS);
  assert.ok(r4 & 0x1, 'new data, new edge');
  await c.recv(s, 100);

  // TCP_INFO: Linux's struct, as a C caller would read it; and `tapstack ss -i` shows it.
  const info = decodeTcpInfo(await c.getsockopt(s, 6, 11, 280));
  assert.equal(info.tcpi_state, 1);
  assert.equal(info.tcpi_snd_mss, 1448);
  assert.ok(info.tcpi_rtt > 0 && info.tcpi_bytes_acked >= 12n, JSON.stringify(info, (_, v) => (typeof v === 'bigint' ? Number(v) : v)));
  assert.equal((await c.getsockopt(s, 6, 11, 8)).length, 8, 'a short optlen gets the first bytes');
  const ss = spawnSync(process.execPath, [CLI, '--api', api, 'ss', '-i'], { encoding: 'utf8', timeout: 10_000 });
  assert.match(ss.stdout, new RegExp(`ESTAB.*10\\.0\\.0\\.2:${local.port}\\s+10\\.0\\.0\\.1:7020\\s+pid=${process.pid},fd=${s}`));
  assert.match(ss.stdout, /rtt:[\d.]+\/[\d.]+ .*cwnd:\d+/);

  // O_NONBLOCK through fcntl.
  await c.fcntl(s, 4, 0o4000);
  assert.equal((await c.fcntl(s, 3)) & 0o4000, 0o4000);
  assert.equal(await errno(c.recv(s, 10)), 'EAGAIN');
  await c.fcntl(s, 4, 0);

  // shutdown(SHUT_WR): the echo peer sees EOF and closes; our read then returns 0 (EOF).
  await c.shutdown(s, 1);
  assert.equal((await c.recv(s, 10)).length, 0);

  // A parked accept completes when the kernel connects; with SO_RCVTIMEO an idle one gives EAGAIN.
  const l = (await c.socket()).fd;
  await c.bind(l, sa('0.0.0.0', 9300));
  await c.listen(l, 8);
  const acc = c.accept(l);
  // The kernel client holds its connection until the test kills it (or the namespace goes).
  const client = ns.background(`python3 -c "import signal,socket; s=socket.create_connection(('10.0.0.2',9300)); signal.pause()"`);
  const a = await acc;
  assert.equal(a.peer.addr, '10.0.0.1');
  assert.equal((await c.getsockname(a.fd)).port, 9300);
  const tv = Buffer.alloc(16);
  tv.writeBigInt64LE(200_000n, 8);
  await c.setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, tv);
  assert.equal(await errno(c.accept(l)), 'EAGAIN');

  // A blocking write into a peer that never reads: SO_SNDTIMEO returns the bytes taken so far.
  const w = (await c.socket()).fd;
  await c.connect(w, sa('10.0.0.1', 7021));
  await c.setsockopt(w, SOL_SOCKET, 21 /* SO_SNDTIMEO */, tv);
  const t0 = Date.now();
  const big = Buffer.alloc(16 << 20);
  const sent = await c.send(w, big, 0);
  assert.ok(sent > 0 && sent < big.length, `partial write ${sent}`);
  // Once the send buffer stays full, a blocking write times out with nothing taken. The
  // kernel peer may still be opening its window (its receive buffer autotunes upward as data
  // arrives, more slowly over the plain link), so writes that take more come first: bounded.
  let outcome = 'OK';
  for (let i = 0; i < 50 && outcome === 'OK'; i++) outcome = await errno(c.send(w, big, 0));
  assert.equal(outcome, 'EAGAIN');
  assert.ok(Date.now() - t0 >= 190);
  assert.ok((await c.ioctl(w, 0x5411)) > 0, 'SIOCOUTQ counts unacknowledged bytes');
  c.close();
  echo.kill();
  hold.kill();
  client.kill();
});

test('EMFILE at the per-client socket limit; the client carries on', { skip, timeout: 60_000 }, async () => {
  const c = await raw();
  const fds: number[] = [];
  for (let i = 0; i < MAX_SOCKETS; i++) fds.push((await c.socket()).fd);
  assert.equal(await errno(c.socket()), 'EMFILE');
  await c.closeFd(fds.pop()!);
  assert.equal(await errno(c.socket()), 'OK');
  const counters = await c.counters();
  assert.ok((counters.Api.Emfile as number) >= 1);
  c.close();
});

test('tapstack serve: curl downloads 200 MB (sha256 matches), ranges and keep-alive', { skip, timeout: 120_000 }, async () => {
  const dir = join(ns.dir, 'www');
  ns.ok(`mkdir -p ${dir} && head -c 209715200 /dev/urandom > ${dir}/big.bin && echo hello > ${dir}/index.html`);
  const want = createHash('sha256').update(readFileSync(join(dir, 'big.bin'))).digest('hex');
  const srv = spawn(process.execPath, [CLI, '--api', api, 'serve', dir, '--port', '8080', '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
  track(srv);
  try {
    await waitLine(srv, /^tapstack: serving .* on \[::\]:8080$/m, 'tapstack serve listening');
    const out = await ns.run(`curl -sS --max-time 90 -o ${dir}/got.bin -w '%{http_code} %{size_download} %{speed_download}' http://10.0.0.2:8080/big.bin`, 100_000);
    const [code, size] = out.split(' ');
    assert.equal(code, '200');
    assert.equal(Number(size), 209715200);
    const got = createHash('sha256').update(readFileSync(join(dir, 'got.bin'))).digest('hex');
    assert.equal(got, want);
    // A range, and two requests on one connection (curl reuses it).
    const part = await ns.run(`curl -sS --max-time 10 -r 1000-1999 -o - http://10.0.0.2:8080/big.bin | wc -c`);
    assert.equal(part.trim(), '1000');
    const two = await ns.run(`curl -sS --max-time 10 -v http://10.0.0.2:8080/ http://10.0.0.2:8080/index.html 2>&1`);
    assert.match(two, /Re-using existing connection|Reusing existing/);
    assert.equal((two.match(/^hello$/gm) ?? []).length, 2);
    const notFound = await ns.run(`curl -sS --max-time 10 -o /dev/null -w '%{http_code}' http://10.0.0.2:8080/nope`);
    assert.equal(notFound, '404');
    const climb = await ns.run(`curl -sS --path-as-is --max-time 10 -o /dev/null -w '%{http_code}' http://10.0.0.2:8080/../../etc/passwd`);
    assert.ok(climb === '404' || climb === '403', climb);
  } finally {
    srv.kill('SIGTERM');
  }
});

test('client library: a stack server receives a 50 MB upload from curl intact', { skip, timeout: 120_000 }, async () => {
  const file = join(ns.dir, 'up.bin');
  writeFileSync(file, randomBytes(50 * 1024 * 1024));
  const want = createHash('sha256').update(readFileSync(file)).digest('hex');
  const server = createServer({ api }, (s) => {
    // A minimal PUT handler: the head, then Content-Length bytes into the hash.
    let head = Buffer.alloc(0);
    let left = -1;
    const h = createHash('sha256');
    s.on('data', (d: Buffer) => {
      if (left < 0) {
        head = Buffer.concat([head, d]);
        const i = head.indexOf('\r\n\r\n');
        if (i < 0) return;
        left = Number(/content-length: *(\d+)/i.exec(head.subarray(0, i).toString())?.[1] ?? 0);
        d = head.subarray(i + 4);
      }
      h.update(d);
      left -= d.length;
      if (left === 0) {
        const body = h.digest('hex');
        s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      }
    });
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(8081, '0.0.0.0', res);
  });
  try {
    const got = await ns.run(`curl -sS --max-time 90 -H 'Expect:' -T ${file} http://10.0.0.2:8081/up`, 100_000);
    assert.equal(got, want);
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('tapstack nc both ways against kernel nc, byte-identical', { skip, timeout: 120_000 }, async () => {
  const src = join(ns.dir, 'nc.bin');
  writeFileSync(src, randomBytes(8 * 1024 * 1024));
  const want = createHash('sha256').update(readFileSync(src)).digest('hex');
  // tapstack nc listens on the stack; kernel nc sends and half-closes.
  const got1 = join(ns.dir, 'nc1.out');
  const l = spawn('sh', ['-c', `exec ${process.execPath} ${CLI} --api ${api} nc -l 9001 > ${got1}`], { stdio: ['pipe', 'ignore', 'pipe'] });
  track(l);
  l.stdin!.end();
  await ns.stackListening(api, 9001);
  await ns.run(`nc -N -w 10 10.0.0.2 9001 < ${src}`, 60_000);
  await exitOf(l);
  assert.equal(createHash('sha256').update(readFileSync(got1)).digest('hex'), want);
  // Kernel nc listens; tapstack nc connects and sends.
  const got2 = join(ns.dir, 'nc2.out');
  const k = ns.run(`timeout 60 nc -l -N 10.0.0.1 9002 > ${got2}`, 70_000);
  await ns.kernelListening(9002);
  const r = spawnSync('sh', ['-c', `${process.execPath} ${CLI} --api ${api} nc 10.0.0.1 9002 < ${src}`], { timeout: 60_000, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  await k;
  assert.equal(createHash('sha256').update(readFileSync(got2)).digest('hex'), want);
  // And data the kernel sends reaches tapstack nc's stdout. Its stdin stays open until the
  // kernel's FIN has arrived (the connection in CLOSE-WAIT): OpenBSD nc stops sending once it
  // sees our FIN, so ours goes only after all of theirs.
  const k2 = ns.run(`timeout 60 nc -l -N 10.0.0.1 9003 < ${src}`, 70_000);
  await ns.kernelListening(9003);
  const got3 = join(ns.dir, 'nc3.out');
  const t = spawn('sh', ['-c', `exec ${process.execPath} ${CLI} --api ${api} nc 10.0.0.1 9003 > ${got3}`], { stdio: ['pipe', 'ignore', 'pipe'] });
  track(t);
  const probe = await raw();
  try {
    await waitFor(async () => (await probe.sockets()).some((row) => row.state === 'CLOSE-WAIT' && row.peer === '10.0.0.1:9003'), 'the kernel nc to finish sending (its FIN at the stack)', 60_000, 50);
  } finally {
    probe.close();
  }
  t.stdin!.end();
  assert.equal(await exitOf(t), 0, outputOf(t));
  await k2;
  assert.equal(createHash('sha256').update(readFileSync(got3)).digest('hex'), want);
});

test('2 000 connections through one client; 50 clients x 100 blocked reads cost no CPU while idle', { skip, timeout: 120_000 }, async () => {
  const echo = ns.background(`python3 ${PEER} echo 10.0.0.1 7010 100`);
  await waitLine(echo, /"listening"/, 'the echo peer on 7010');
  const N = 2000;
  const done = await Promise.all(
    Array.from({ length: N }, (_, i) =>
      new Promise<boolean>((resolve) => {
        const s = connect({ host: '10.0.0.1', port: 7010, api });
        const msg = `conn ${i} `.padEnd(100, '.');
        let got = '';
        s.on('connect', () => s.write(msg));
        s.on('data', (d: Buffer) => {
          got += d.toString();
          if (got.length >= msg.length) s.end();
        });
        s.on('error', () => resolve(false));
        s.on('close', () => resolve(got === msg));
      }),
    ),
  );
  assert.equal(done.filter(Boolean).length, N);
  echo.kill();

  const hold = ns.background(`python3 ${PEER} hold 10.0.0.1 7011 5000 60`);
  await waitLine(hold, /"listening"/, 'the holding peer on 7011');
  const clients = await Promise.all(Array.from({ length: 50 }, () => raw()));
  const reads: Promise<Buffer>[] = [];
  for (const c of clients) {
    const fds = await Promise.all(Array.from({ length: 100 }, () => c.socket().then((s) => s.fd)));
    await Promise.all(fds.map((fd) => c.connect(fd, sa('10.0.0.1', 7011))));
    for (const fd of fds) reads.push(c.recv(fd, 1));
  }
  const probe = await raw();
  // The recv calls were sent, not yet all read by the daemon: wait for the count to reach them.
  const parked = await waitFor(async () => {
    const n = (await probe.counters()).Api.Parked as number;
    return n >= 5000 ? n : 0;
  }, '5 000 parked reads', 60_000, 50);
  assert.equal(parked, 5000);
  // Idle: 3 s of wall time with 5 000 parked reads (the interval is the measurement).
  const pid = daemon.proc.pid!;
  const before = cpuTicks(pid);
  await sleep(3000);
  const ticks = cpuTicks(pid) - before;
  const hz = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  const cpu = ticks / hz / 3;
  assert.ok(cpu < 0.03, `idle daemon used ${(cpu * 100).toFixed(1)}% CPU with 5 000 parked reads`);
  hold.kill('SIGUSR1');
  const got = await Promise.all(reads);
  assert.ok(got.every((b) => b.toString() === 'x'));
  for (const c of clients) c.close();
  probe.close();
  hold.kill();
  process.stdout.write(`# idle daemon CPU with 5 000 parked reads: ${(cpu * 100).toFixed(2)}%\n`);
});

test('isolation: another client\'s descriptor is EBADF; users outside the group cannot connect; nobody cannot bind port 80', { skip, timeout: 60_000 }, async () => {
  const a = await raw();
  const b = await raw();
  const { fd } = await a.socket();
  assert.equal(await errno(b.closeFd(fd)), 'EBADF');
  assert.equal(await errno(b.recv(fd, 1)), 'EBADF');
  assert.equal(await errno(b.bind(fd, sa('0.0.0.0', 0))), 'EBADF');
  assert.equal(await errno(a.bind(fd, sa('0.0.0.0', 0))), 'OK'); // still a's
  a.close();
  b.close();
  // nobody runs a copy of the client library from a world-readable directory:
  // the checkout may sit where only root can enter (CI's clone in mktemp -d).
  const lib = mkdtempSync(join(tmpdir(), 'tapstack-client-'));
  chmodSync(lib, 0o755);
  cpSync(join(ROOT, 'dist', 'src'), join(lib, 'dist', 'src'), { recursive: true });
  cpSync(join(ROOT, 'build', 'Release', 'unix.node'), join(lib, 'build', 'Release', 'unix.node'));
  writeFileSync(join(lib, 'package.json'), '{"type":"module"}\n');
  after(() => rmSync(lib, { recursive: true, force: true }));
  const script = (body: string) =>
    `import { Client } from '${join(lib, 'dist', 'src', 'client', 'index.js')}';\n` +
    `try { const c = new Client({ path: '${api}', descriptors: false }); await c.ready(); ${body} } catch (e) { console.log('ERR', e.code); process.exit(0); }`;
  const asUser = (gid: number, body: string) =>
    spawnSync('setpriv', ['--reuid=65534', `--regid=${gid}`, '--clear-groups', process.execPath, '--input-type=module', '-e', script(body)], { encoding: 'utf8', timeout: 20_000 });
  // In the socket's group: connects; port 80 is EACCES, a high port is fine.
  const inGroup = asUser(
    NOGROUP,
    `const s = (await c.socket()).fd; let r = 'OK'; try { await c.bind(s, { family: 2, addr: '0.0.0.0', port: 80 }); } catch (e) { r = e.code; } ` +
      `const t = (await c.socket()).fd; await c.bind(t, { family: 2, addr: '0.0.0.0', port: 8099 }); ` +
      `let sy = 'OK'; try { await c.sysctl('net.ipv4.tcp_sack=0'); } catch (e) { sy = e.code; } ` +
      `console.log('BIND80', r, 'BIND8099 OK', 'SYSCTL', sy, (await c.sysctl('net.ipv4.tcp_sack'))['net.ipv4.tcp_sack']); c.close();`,
  );
  assert.match(inGroup.stdout, /BIND80 EACCES BIND8099 OK SYSCTL EACCES 1/, inGroup.stderr + inGroup.stdout);
  // Not in the group: the socket file refuses the connection.
  const outside = asUser(1, `console.log('CONNECTED'); c.close();`);
  assert.match(outside.stdout, /ERR EACCES/, outside.stderr + outside.stdout);
});

test('a client\'s sockets close when it disconnects (FIN; RST with unread data)', { skip, timeout: 30_000 }, async () => {
  const c = await raw();
  const l = (await c.socket()).fd;
  await c.bind(l, sa('0.0.0.0', 9100));
  await c.listen(l, 8);
  const s = (await c.socket()).fd;
  await c.connect(s, sa('10.0.0.2', 9100)); // to ourselves over the stack's local path
  c.close();
  await noClients('the daemon to drop the closed client');
  const p = await raw();
  const rows = await p.sockets();
  assert.ok(!rows.some((r) => r.state === 'LISTEN' && r.local.endsWith(':9100')), JSON.stringify(rows));
  assert.equal(await errno(p.connect((await p.socket()).fd, sa('10.0.0.2', 9100))), 'ECONNREFUSED');
  p.close();
});

test('fuzz: random and mutated frames never hurt another client\'s transfer; RSS stays bounded', { skip, timeout: 120_000 }, async () => {
  const pid = daemon.proc.pid!;
  const rss0 = rssKb(pid);
  const src = randomBytes(20 * 1024 * 1024);
  const want = createHash('sha256').update(src).digest('hex');
  const got = join(ns.dir, 'fuzz.out');
  const k = ns.run(`timeout 60 nc -l -N 10.0.0.1 9200 > ${got}`, 70_000);
  await ns.kernelListening(9200);
  const transfer = new Promise<void>((resolve, reject) => {
    const s = connect({ host: '10.0.0.1', port: 9200, api }) as StackSocket;
    s.on('error', reject);
    s.on('connect', () => {
      // Dribble it out so the transfer overlaps the fuzzing.
      let off = 0;
      const step = () => {
        if (off >= src.length) return s.end();
        const chunk = src.subarray(off, off + 256 * 1024);
        off += chunk.length;
        if (s.write(chunk)) setTimeout(step, 20);
        else s.once('drain', () => setTimeout(step, 20));
      };
      step();
    });
    s.on('close', () => resolve());
  });
  const ux = unixAddon();
  const valid = (): Buffer => {
    const calls = Object.values(SYS);
    const w = new FrameWriter(Math.floor(Math.random() * 1e6), calls[Math.floor(Math.random() * calls.length)]);
    for (let i = Math.floor(Math.random() * 8); i > 0; i--) w.i32(Math.floor(Math.random() * 2 ** 32) - 2 ** 31);
    return w.finish();
  };
  const hello = (): Buffer => {
    const h = Buffer.alloc(HELLO_LEN);
    h.writeUInt32LE(API_MAGIC, 0);
    h.writeUInt16LE(API_VERSION, 4);
    return h;
  };
  let sent = 0;
  const deadline = Date.now() + 8000;
  while (Date.now() < deadline) {
    const fd = ux.unixConnect(api);
    const conn = new UnixConn(fd);
    conn.onData = () => {};
    const kind = sent % 4;
    const parts: Buffer[] = [];
    if (kind !== 0) parts.push(hello());
    for (let i = 0; i < 20; i++) {
      if (kind === 0 || kind === 1) parts.push(randomBytes(1 + Math.floor(Math.random() * 200)));
      else if (kind === 2) {
        const f = valid();
        for (let j = 0; j < 3; j++) f[Math.floor(Math.random() * f.length)] = Math.floor(Math.random() * 256);
        parts.push(f);
      } else parts.push(valid());
    }
    conn.write(Buffer.concat(parts));
    sent++;
    // Pacing, not a wait for anything: a fuzzing connection every 5 ms, beside the transfer.
    await sleep(5);
    conn.close();
  }
  await transfer;
  await k;
  assert.equal(createHash('sha256').update(readFileSync(got)).digest('hex'), want);
  assert.equal(daemon.proc.exitCode, null, 'the daemon is still running');
  const c = await raw();
  // The fuzzers' connections are closed on this side; the daemon drops them as it reads their hang-ups.
  const counters = await waitFor(
    async () => {
      const n = await c.counters();
      return n.Api.Clients === 1 ? n : null;
    },
    'the daemon to drop every fuzzing client',
    WAIT_MS,
    50,
  ).catch(async () => c.counters());
  c.close();
  await noClients('the daemon to drop the probe');
  const rss1 = rssKb(pid);
  process.stdout.write(`# fuzz: ${sent} connections, ${counters.Api.ClientsDropped} dropped for corrupt streams; RSS ${rss0} -> ${rss1} KiB\n`);
  assert.ok(sent > 100);
  assert.ok((counters.Api.ClientsDropped as number) > 0);
  assert.equal(counters.Api.Clients, 1, 'only the probe is connected');
  assert.ok(rss1 - rss0 < 128 * 1024, `RSS grew by ${rss1 - rss0} KiB`);
  assert.ok(existsSync(api));
});
