/**
 * The API across shards (docs/shards.md "The API across shards"):
 * tapstackd --shards 2 with the API on, this process as the client (the
 * Node client library) and the kernel across the TAP. A listener opened
 * through the library accepts the kernel's connections from both shards;
 * connections the stack opens each live on the shard whose queue their
 * ports steer to, and still work after 4 s of silence (tun's own flow table
 * would have forgotten them); `tapstack ss` lists both shards' sockets;
 * `tapstack sysctl` reaches both; curl and python's http.server run
 * unmodified under `tapstack run`.
 *
 * Every packet stays inside the namespace this file creates.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, Netns, ROOT, errno, outputOf, requireIntegration, waitFor, waitLine, type Daemon, type LogLine } from './netns.js';
import { Client, SyscallError, connect, createServer, type StackSocket } from '../../src/client/index.js';
import { AF_INET, F_SETFL, O_NONBLOCK, POLLIN, SO_RCVTIMEO, SOCK_DGRAM, SOL_SOCKET } from '../../src/uapi.js';
import { steerQueue } from '../../src/drivers/tap_steer.js';

const skip = requireIntegration(['python3', 'curl']);
const nginxSkip = () => (spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).status === 0 ? false : 'nginx is not installed');
const PEER = join(ROOT, 'test', 'integration', 'shards_api_peer.py');
const ECHO = join(ROOT, 'test', 'integration', 'api_peer.py');
const SHARDS = 2;
const INBOUND = 64;
const OUTBOUND = 16;
/** The metrics endpoint, on the namespace's own loopback. */
const METRICS = '127.0.0.1:9464';
const CONF = JSON.stringify({ metricsListen: METRICS });

let ns: Netns;
let d: Daemon;
let api: string;
let conf: string;

before(async () => {
  if (skip) return;
  ns = new Netns('shapi');
  api = join(ns.dir, 'api.sock');
  conf = join(ns.dir, 'tapstackd.json');
  writeFileSync(conf, CONF);
  d = await ns.startDaemon(['--config', conf, '--tap', 'tapsa', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--api', api, '--tap-lost', 'exit', '--shards', String(SHARDS)]);
  const ready = d.lines.find((l) => l.msg === 'ready')!;
  assert.equal(ready.shards, SHARDS);
  assert.equal(ready.steering, 'ports');
});

after(() => {
  if (d && d.proc.exitCode === null) d.proc.kill('SIGKILL');
  ns?.destroy();
});

interface ShardRow {
  shard: number;
  counters: Record<string, Record<string, number>>;
}

async function shardRows(): Promise<ShardRow[]> {
  const before = d.lines.length;
  d.proc.kill('SIGUSR1');
  const l: LogLine = await d.waitFor((x) => x.msg === 'counters' && d.lines.indexOf(x) >= before);
  return l.shards as ShardRow[];
}

/** The program's listen() is done when every shard's member listens (ss shows the owner's first). */
const listeningEverywhere = (port: number) =>
  ns.until(`test "$(${process.execPath} ${CLI} --api ${api} ss -l -t | grep -c ':${port} ')" -ge ${SHARDS}`, `a stack listener on port ${port} in every shard`);
const cli = (args: string) => ns.ok(`timeout 30 ${process.execPath} ${CLI} --api ${api} ${args} < /dev/null`, 40_000);
const shardOf = (fd: number) => fd % SHARDS;
/** The net.Socket a connect() stands in for until its handshake is done (DeferredSocket.inner). */
const inner = (s: StackSocket) => (s as unknown as { inner: StackSocket }).inner;

test('a listener through the client library: the kernel\'s connections accepted from both shards, data both ways; `tapstack sysctl` reaches both', { skip, timeout: 120_000 }, async () => {
  const accepted: number[] = [];
  const server = createServer({ api }, (s: StackSocket) => {
    accepted.push(s.stackFd!);
    s.on('data', (b) => s.write(b));
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
  await new Promise<void>((res) => server.listen(8090, '0.0.0.0', res));
  const before = await shardRows();

  const r1 = JSON.parse(await ns.run(`python3 ${PEER} clients 10.0.0.2 8090 ${INBOUND} 20000`, 90_000)) as { ok: number; ts: number; errors: string[] };
  assert.deepEqual(r1, { ok: INBOUND, ts: INBOUND, errors: [] }, 'every connection echoed its bytes (timestamps on by default)');
  assert.equal(accepted.length, INBOUND);
  const per = [0, 0];
  for (const fd of accepted) per[shardOf(fd)]++;
  assert.ok(per[0] > 0 && per[1] > 0, `accepted from both shards: ${per}`);
  const after1 = await shardRows();
  for (let i = 0; i < SHARDS; i++) {
    const opens = after1[i].counters.Tcp.PassiveOpens - before[i].counters.Tcp.PassiveOpens;
    assert.equal(opens, per[i], `shard ${i}'s own PassiveOpens are the connections accepted from it`);
  }

  // A sysctl written over the API holds in both shards: no connection agrees to timestamps now, whichever shard takes it.
  assert.match(cli('sysctl net.ipv4.tcp_timestamps=0'), /net\.ipv4\.tcp_timestamps = 0/);
  accepted.length = 0;
  const r2 = JSON.parse(await ns.run(`python3 ${PEER} clients 10.0.0.2 8090 32 1000`, 90_000)) as { ok: number; ts: number };
  assert.deepEqual(r2, { ok: 32, ts: 0, errors: [] });
  const per2 = [0, 0];
  for (const fd of accepted) per2[shardOf(fd)]++;
  assert.ok(per2[0] > 0 && per2[1] > 0, `both shards took some with timestamps off: ${per2}`);
  cli('sysctl net.ipv4.tcp_timestamps=1');
  await new Promise<void>((res) => server.close(() => res()));
});

test('poll on a listener waits for a connection in any shard; non-blocking accept takes every one, from both shards, then EAGAIN; a port bound before connect() must steer to its shard; no datagram socket on a fixed port', { skip, timeout: 60_000 }, async () => {
  const c = new Client({ path: api, descriptors: false });
  await c.ready();
  const l = (await c.socket()).fd;
  await c.bind(l, { family: AF_INET, addr: '0.0.0.0', port: 8091 });
  await c.listen(l, 64);
  await c.fcntl(l, F_SETFL, O_NONBLOCK);
  await assert.rejects(c.accept(l), (e: SyscallError) => e.code === 'EAGAIN', 'nothing queued in any shard');
  // Eight connections from the kernel, held until the stack closes them.
  const N = 8;
  const held = ns.background(`python3 -c "import socket; ss=[socket.create_connection(('10.0.0.2', 8091), timeout=30) for _ in range(${N})]; [s.recv(1) for s in ss]; print('closed', flush=True)"`);
  const fds: number[] = [];
  while (fds.length < N) {
    const [rev] = await c.poll([{ fd: l, events: POLLIN }], 20_000);
    assert.ok(rev & POLLIN, `readable with ${fds.length} of ${N} accepted`);
    for (;;) {
      try {
        fds.push((await c.accept(l)).fd);
      } catch (e) {
        assert.equal((e as SyscallError).code, 'EAGAIN');
        break;
      }
    }
  }
  assert.equal(fds.length, N);
  assert.ok(fds.some((fd) => shardOf(fd) === 0) && fds.some((fd) => shardOf(fd) === 1), `accepted from both shards: ${fds}`);
  assert.deepEqual(await c.poll([{ fd: l, events: POLLIN }], 0), [0], 'not readable once every queue is empty');
  for (const fd of fds) await c.closeFd(fd);
  await waitLine(held, /closed/, 'the kernel side saw every connection closed');
  await c.closeFd(l);

  // Bound before connect(): a port steering to another shard is refused plainly; one steering here connects (the kernel's RST comes back to it).
  const ports = [40000, 40001, 40002, 40003, 40004, 40005];
  const fd = (await c.socket()).fd;
  await c.bind(fd, { family: AF_INET, addr: '0.0.0.0', port: ports.find((p) => steerQueue(7002, p, SHARDS) !== shardOf(fd))! });
  assert.equal(await errno(c.connect(fd, { family: AF_INET, addr: '10.0.0.1', port: 7002 })), 'EADDRNOTAVAIL');
  await c.closeFd(fd);
  const ok = (await c.socket()).fd;
  await c.bind(ok, { family: AF_INET, addr: '0.0.0.0', port: ports.find((p) => steerQueue(7002, p, SHARDS) === shardOf(ok))! });
  assert.equal(await errno(c.connect(ok, { family: AF_INET, addr: '10.0.0.1', port: 7002 })), 'ECONNREFUSED');
  await c.closeFd(ok);
  // A datagram socket on a fixed port would hear only its shard's share: refused.
  const u = (await c.socket(AF_INET, SOCK_DGRAM)).fd;
  assert.equal(await errno(c.bind(u, { family: AF_INET, addr: '0.0.0.0', port: 5300 })), 'EOPNOTSUPP');
  await c.closeFd(u);
  c.close();
});

test('a blocking accept on a listener group: SO_RCVTIMEO gives EAGAIN at its end, a connection from either shard within it is taken, a close of the listener wakes it (EBADF)', { skip, timeout: 60_000 }, async () => {
  const c = new Client({ path: api, descriptors: false });
  await c.ready();
  const l = (await c.socket()).fd;
  await c.bind(l, { family: AF_INET, addr: '0.0.0.0', port: 8092 });
  await c.listen(l, 64);
  const tv = (ms: number) => {
    const b = Buffer.alloc(16);
    b.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
    b.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
    return b;
  };
  // Set after listen(): the owner's socket holds it (the members get it too).
  await c.setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, tv(300));
  const t0 = Date.now();
  assert.equal(await errno(c.accept(l)), 'EAGAIN');
  const waited = Date.now() - t0;
  assert.ok(waited >= 280 && waited < 3000, `SO_RCVTIMEO waited ${waited} ms`);

  // Within a long timeout, connections from the kernel are taken whichever shard they reach (the timer does not end them).
  await c.setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, tv(20_000));
  const N = 16;
  const held = ns.background(`python3 -c "import socket; ss=[socket.create_connection(('10.0.0.2', 8092), timeout=30) for _ in range(${N})]; [s.recv(1) for s in ss]; print('closed', flush=True)"`);
  const fds: number[] = [];
  while (fds.length < N) fds.push((await c.accept(l)).fd);
  assert.ok(fds.some((fd) => shardOf(fd) === 0) && fds.some((fd) => shardOf(fd) === 1), `accepted from both shards: ${fds}`);
  for (const fd of fds) await c.closeFd(fd);
  await waitLine(held, /closed/, 'the kernel side saw every connection closed');

  // No timeout: the accept waits until the listener is closed.
  await c.setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, tv(0));
  const waiting = errno(c.accept(l));
  await c.closeFd(l);
  assert.equal(await waiting, 'EBADF');
  c.close();
});

test('connections the stack opens through the client library: each on the shard its ports steer to, still working after 4 s of silence; `tapstack ss` lists both shards\' sockets', { skip, timeout: 120_000 }, async () => {
  const peer = ns.background(`python3 ${ECHO} echo 10.0.0.1 7001 60`);
  await waitLine(peer, /"listening": 7001/, 'the kernel echo peer');
  const socks: StackSocket[] = [];
  for (let i = 0; i < OUTBOUND; i++) {
    const s = connect({ host: '10.0.0.1', port: 7001, api });
    await new Promise<void>((res, rej) => {
      s.once('connect', res);
      s.once('error', rej);
    });
    // Keepalive after 4 s idle: the probe's answer is the first frame after the silence.
    inner(s).setKeepAlive(true, 4000);
    socks.push(s);
  }
  const echo = async (s: StackSocket, msg: Buffer): Promise<Buffer> => {
    const got: Buffer[] = [];
    let n = 0;
    const done = new Promise<void>((res, rej) => {
      const on = (b: Buffer) => {
        got.push(b);
        n += b.length;
        if (n >= msg.length) {
          s.off('data', on);
          res();
        }
      };
      s.on('data', on);
      s.once('error', rej);
    });
    s.write(msg);
    await done;
    return Buffer.concat(got);
  };
  const per = [0, 0];
  for (const s of socks) {
    const fd = inner(s).stackFd!;
    const lport = inner(s).localPort!;
    per[shardOf(fd)]++;
    assert.equal(steerQueue(7001, lport, SHARDS), shardOf(fd), `local port ${lport} steers to the shard of fd ${fd}`);
    const msg = randomBytes(4096);
    assert.ok((await echo(s, msg)).equals(msg));
  }
  assert.ok(per[0] > 0 && per[1] > 0, `sockets in both shards: ${per}`);

  // `tapstack ss`: every connection, from both shards, with its owner.
  const c = new Client({ path: api, descriptors: false });
  await c.ready();
  const rows = (await c.sockets()).filter((r) => r.peer.endsWith(':7001'));
  assert.equal(rows.length, OUTBOUND, JSON.stringify(rows.slice(0, 3)));
  for (const r of rows) {
    const lport = Number(r.local.slice(r.local.lastIndexOf(':') + 1));
    assert.equal(steerQueue(7001, lport, SHARDS), shardOf(r.owner!.fd), `ss: ${r.local} is owned in the shard it steers to`);
  }
  const ss = cli('ss -t');
  for (const s of socks) assert.match(ss, new RegExp(`10\\.0\\.0\\.2:${inner(s).localPort}\\b`), `ss lists port ${inner(s).localPort}`);

  // Silent until every connection's keepalive fired (4 s): its answer came back to the shard that sent it.
  const rowsBefore = await shardRows();
  await waitFor(async () => {
    const k = (await c.counters()).TcpExt.TCPKeepAlive as number;
    const was = rowsBefore.reduce((a, r) => a + r.counters.TcpExt.TCPKeepAlive, 0);
    return k - was >= OUTBOUND;
  }, 'a keepalive probe on every connection', 20_000, 200);
  const rowsAfter = await shardRows();
  for (let i = 0; i < SHARDS; i++) assert.ok(rowsAfter[i].counters.TcpExt.TCPKeepAlive > rowsBefore[i].counters.TcpExt.TCPKeepAlive, `shard ${i} probed`);
  for (const s of socks) {
    const msg = randomBytes(1000);
    assert.ok((await echo(s, msg)).equals(msg), 'still connected after the silence');
  }
  assert.equal(rowsAfter.reduce((a, r) => a + r.counters.Tcp.OutRsts - (rowsBefore[r.shard].counters.Tcp.OutRsts ?? 0), 0), 0, 'no shard reset a flow it does not own');
  for (const s of socks) s.destroy();
  c.close();
  peer.kill();
});

test('tapstack run with shards: curl downloads from a kernel server, python\'s http.server serves the kernel curl from both shards', { skip, timeout: 120_000 }, async () => {
  const RUN = `${process.execPath} ${CLI} run --api ${api} --`;
  const dir = join(ns.dir, 'www');
  mkdirSync(dir, { recursive: true });
  const body = randomBytes(1 << 20);
  writeFileSync(join(dir, 'f.bin'), body);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  const srv = ns.background(`python3 -m http.server 8000 --bind 10.0.0.1 --directory ${dir}`);
  await ns.kernelListening(8000);
  for (let i = 0; i < 4; i++) {
    const out = join(ns.dir, `f${i}.out`);
    ns.ok(`timeout 30 ${RUN} curl -sS -m 20 -o ${out} http://10.0.0.1:8000/f.bin`, 40_000);
    assert.equal(sha(readFileSync(out)), sha(body), 'the body arrived byte for byte');
  }
  srv.kill();

  const before = await shardRows();
  // http.server's own listen backlog is 5: 16 curls at once overflow it, and the overflowed ones wait for
  // their retransmissions (tcp_open.test.ts covers the overflow itself). This test is about the shards, so
  // the backlog is 64 here.
  const app = ns.background(
    `timeout 60 ${RUN} python3 -c "import functools, http.server as h; h.ThreadingHTTPServer.request_queue_size = 64; ` +
      `h.ThreadingHTTPServer(('10.0.0.2', 8088), functools.partial(h.SimpleHTTPRequestHandler, directory='${dir}')).serve_forever()"`,
  );
  await listeningEverywhere(8088);
  const got = ns.ok(`for i in $(seq 16); do curl -sS -m 10 -o /dev/null -w '%{http_code} %{size_download}\\n' http://10.0.0.2:8088/f.bin 2>&1 & done; wait`, 60_000);
  assert.deepEqual(got.trim().split('\n'), new Array(16).fill(`200 ${body.length}`), got + outputOf(app));
  const after = await shardRows();
  for (let i = 0; i < SHARDS; i++) {
    assert.ok(after[i].counters.Tcp.PassiveOpens > before[i].counters.Tcp.PassiveOpens, `shard ${i} accepted some of python's connections`);
  }
  app.kill();
});

test('nginx with master_process on through tapstack run with shards: the workers take the master\'s listener in every shard (ts_inherit), the kernel curl is served from both', { skip: skip || nginxSkip(), timeout: 90_000 }, async () => {
  const RUN = `${process.execPath} ${CLI} run --api ${api} --`;
  const dir = join(ns.dir, 'nginx-master');
  mkdirSync(join(dir, 'www'), { recursive: true });
  const body = randomBytes(100_000);
  writeFileSync(join(dir, 'www', 'f.bin'), body);
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${dir}/${t};`).join(' ');
  writeFileSync(
    join(dir, 'nginx.conf'),
    `user root; daemon off; master_process on; worker_processes 2; pid ${dir}/nginx.pid; error_log ${dir}/error.log info;
events { worker_connections 64; }
http { access_log ${dir}/access.log; ${temps}
  server { listen 8089; root ${dir}/www; } }
`,
  );
  const before = await shardRows();
  const srv = ns.background(`timeout 80 ${RUN} nginx -e ${dir}/error.log -c ${dir}/nginx.conf`);
  await listeningEverywhere(8089);
  const many = ns.ok(`for i in $(seq 24); do curl -sS -m 20 -H 'Connection: close' -o /dev/null -w '%{http_code} %{size_download}\\n' http://10.0.0.2:8089/f.bin & done; wait`, 60_000);
  assert.deepEqual(many.trim().split('\n'), new Array(24).fill(`200 ${body.length}`), many);
  const after = await shardRows();
  for (let i = 0; i < SHARDS; i++) {
    assert.ok(after[i].counters.Tcp.PassiveOpens > before[i].counters.Tcp.PassiveOpens, `shard ${i} accepted some of nginx's connections`);
  }
  const inherited = (rows: ShardRow[]) => rows.reduce((a, r) => a + r.counters.Api.Inherited, 0);
  // A worker takes the listener when it first accepts (the library asks lazily): one or both did.
  const took = inherited(after) - inherited(before);
  assert.ok(took >= 1 && took <= 2, `workers that took the listener (its members in the other shard with it): ${took}`);
  assert.doesNotMatch(readFileSync(join(dir, 'error.log'), 'utf8'), /\[(alert|crit|emerg)\]/);
  srv.kill();
});

test('SIGHUP\'s API keys reach the shards: apiMaxSockets holds for a client\'s sockets together across the shards, a listener group counting once', { skip, timeout: 60_000 }, async () => {
  const MAX = 3;
  writeFileSync(conf, JSON.stringify({ metricsListen: METRICS, apiMaxSockets: MAX }));
  const before = d.lines.length;
  d.proc.kill('SIGHUP');
  const reloaded = await d.waitFor((l) => l.msg === 'reloaded' && d.lines.indexOf(l) >= before);
  assert.deepEqual(reloaded.failed, []);
  assert.ok((reloaded.applied as string[]).includes('apiMaxSockets'));
  const c = new Client({ path: api, descriptors: false });
  await c.ready();
  // Three sockets over both shards (socket() takes them in turn), then EMFILE: not three in each.
  const socks: number[] = [];
  for (let i = 0; i < MAX; i++) socks.push((await c.socket()).fd);
  assert.ok(socks.some((fd) => shardOf(fd) === 0) && socks.some((fd) => shardOf(fd) === 1), `sockets in both shards: ${socks}`);
  assert.equal(await errno(c.socket()), 'EMFILE');
  await c.closeFd(socks.pop()!);
  socks.push((await c.socket()).fd);
  for (const fd of socks) await c.closeFd(fd);

  // A listener is one descriptor, though open in both shards: two accepted connections with it make three, then EMFILE.
  const l = (await c.socket()).fd;
  await c.bind(l, { family: AF_INET, addr: '0.0.0.0', port: 8093 });
  await c.listen(l, 64);
  await listeningEverywhere(8093);
  const held = ns.background(`python3 -c "import socket; ss=[socket.create_connection(('10.0.0.2', 8093), timeout=30) for _ in range(3)]; print('connected', flush=True); [s.recv(1) for s in ss]; print('closed', flush=True)"`);
  await waitLine(held, /connected/, 'three kernel connections');
  // Batches of up to 16 are cut to the room left (two), however many connections wait in a shard.
  const got: number[] = [];
  while (got.length < MAX - 1) for (const x of await c.acceptBatch(l, 16)) got.push(x.fd);
  assert.equal(got.length, MAX - 1);
  assert.equal(await errno(c.accept(l)), 'EMFILE', 'a connection waits, but the client holds apiMaxSockets descriptors');
  assert.equal(await errno(c.acceptBatch(l, 16)), 'EMFILE');
  assert.equal(await errno(c.socket()), 'EMFILE');
  await c.closeFd(got.pop()!);
  got.push((await c.accept(l)).fd);
  for (const fd of [...got, l]) await c.closeFd(fd);
  c.close();
  held.kill();
  writeFileSync(conf, CONF);
  const before2 = d.lines.length;
  d.proc.kill('SIGHUP');
  await d.waitFor((l) => l.msg === 'reloaded' && d.lines.indexOf(l) >= before2);
});

test('the metrics endpoint has the Api group with shards: the router\'s connection counters and the shards\' call counters, as ts_counters gives them', { skip, timeout: 30_000 }, async () => {
  const c = new Client({ path: api, descriptors: false });
  await c.ready();
  const api1 = (await c.counters()).Api as Record<string, number>;
  const text = ns.ok(`curl -sS http://${METRICS}/metrics`);
  const metric = (k: string) => Number(new RegExp(`^tapstack_netstat_Api_${k} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
  // The main thread's (clients, calls, the EMFILEs of the test before).
  assert.ok(metric('Clients') >= 1, 'this client is counted');
  assert.ok(metric('Calls') >= 3 && metric('Emfile') >= 1, text.split('\n').filter((l) => l.includes('_Api_')).join('\n'));
  // Nothing happened between the two reads but the clients' comings and goings (a gauge): every other Api counter agrees.
  for (const [k, v] of Object.entries(api1)) {
    if (k === 'Clients' || k === 'MemAllocated') continue;
    assert.equal(metric(k), v, `Api ${k}: metrics and ts_counters`);
  }
  c.close();
});
