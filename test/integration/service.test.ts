/**
 * tapstackd under a service manager, without one on the machine: the
 * sd_notify datagrams (READY=1, STATUS=, WATCHDOG=1, STOPPING=1,
 * RELOADING=1) to a NOTIFY_SOCKET the test binds, the drop to an
 * unprivileged user with no capabilities left, SIGHUP's reload of the
 * config file, and SIGTERM's grace for open connections.
 *
 * Every packet stays inside a namespace this file creates.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client, connect, type StackSocket } from '../../src/client/index.js';
import { SHUTDOWN_GRACE_MS_DEFAULT } from '../../src/daemon/config.js';
import { CLI, DAEMON, Daemon, Netns, ROOT, exitOf, outputOf, requireIntegration, waitFor, waitLine } from './netns.js';

const skip = requireIntegration(['python3', 'mknod', 'mount', 'ping']);
const LISTEN = join(ROOT, 'test', 'integration', 'notify_listen.py');

const namespaces: Netns[] = [];
const procs: ChildProcess[] = [];
after(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const ns of namespaces) ns.destroy();
});
function newNs(): Netns {
  const ns = new Netns('svc');
  namespaces.push(ns);
  return ns;
}

interface Datagram {
  text: string;
  pid: number | null;
  uid: number | null;
}

/** The datagrams a notify_listen.py has printed so far. */
function datagrams(p: ChildProcess): Datagram[] {
  return outputOf(p)
    .split('\n')
    .filter((l) => l.startsWith('{"text"'))
    .map((l) => JSON.parse(l) as Datagram);
}

/** A NOTIFY_SOCKET listener inside `ns`, once bound. */
async function notifyListener(ns: Netns, socket: string): Promise<ChildProcess> {
  const p = ns.background(`python3 ${LISTEN} ${socket} 120`);
  await waitLine(p, /"listening"/, 'the NOTIFY_SOCKET listener');
  return p;
}

/** Wait until a datagram after index `from` satisfies `pred`; its index. */
async function datagram(p: ChildProcess, pred: (d: Datagram) => boolean, what: string, from = 0): Promise<number> {
  return waitFor(
    () => {
      const i = datagrams(p).findIndex((d, j) => j >= from && pred(d));
      return i >= 0 ? i + 1 : 0;
    },
    `${what}; datagrams so far: ${JSON.stringify(datagrams(p).map((d) => d.text))}`,
  ).then((i) => i - 1);
}

const lines = (d: Datagram) => d.text.split('\n');
const has = (d: Datagram, line: string) => lines(d).includes(line);

test('Type=notify: READY=1 with STATUS= once up, WATCHDOG=1 at half WATCHDOG_USEC, STATUS= following the sockets, STOPPING=1, all from the main pid (abstract socket)', { skip, timeout: 60_000 }, async () => {
  const ns = newNs();
  const sock = `@ts-notify-${process.pid}`;
  const l = await notifyListener(ns, sock);
  const d = await ns.startDaemon(['--tap', 'tapn', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--host-ipv6', 'none'], undefined, {
    NOTIFY_SOCKET: sock,
    WATCHDOG_USEC: '300000',
  });
  const ready = await datagram(l, (x) => has(x, 'READY=1'), 'READY=1');
  const r = datagrams(l)[ready];
  assert.equal(r.pid, d.proc.pid, 'READY=1 comes from the daemon itself (NotifyAccess=main)');
  assert.match(r.text, /^STATUS=tapn up; TCP 0 established, 4 listening, /m, `READY=1 carries the status: ${r.text}`);
  assert.equal(ready, 0, `READY=1 is the first message: ${JSON.stringify(datagrams(l))}`);
  // Keep-alives every 150 ms: three of them take at least 300 ms after READY.
  const third = await datagram(l, (x) => x.text === 'WATCHDOG=1' && datagrams(l).slice(0, datagrams(l).indexOf(x)).filter((y) => y.text === 'WATCHDOG=1').length >= 2, 'three WATCHDOG=1');
  assert.ok(third > ready);
  // A connection to the echo service shows in the next STATUS=.
  const c = ns.background(`python3 -c "import signal,socket; signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM]); s=socket.create_connection(('10.0.0.2', 7)); print('connected', flush=True); signal.sigtimedwait([signal.SIGTERM], 60)"`);
  await waitLine(c, /connected/, 'a connection to the echo service');
  await datagram(l, (x) => /^STATUS=tapn up; TCP 1 established, 4 listening/.test(x.text), 'a STATUS= with the connection', ready + 1);
  const before = datagrams(l).length;
  d.proc.kill('SIGTERM');
  assert.equal(await exitOf(d.proc), 0, d.stderr);
  const stopping = await datagram(l, (x) => has(x, 'STOPPING=1'), 'STOPPING=1', before);
  assert.equal(datagrams(l)[stopping].pid, d.proc.pid);
  assert.ok(datagrams(l).slice(stopping + 1).every((x) => x.text !== 'WATCHDOG=1'), 'no keep-alive after STOPPING=1');
  c.kill();
});

test('WATCHDOG_PID naming another process: no keep-alives, one warning; a filesystem NOTIFY_SOCKET works', { skip, timeout: 60_000 }, async () => {
  const ns = newNs();
  const sock = join(ns.dir, 'notify.sock');
  const l = await notifyListener(ns, sock);
  const d = await ns.startDaemon(['--tap', 'tapw', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--host-ipv6', 'none'], undefined, {
    NOTIFY_SOCKET: sock,
    WATCHDOG_USEC: '100000',
    WATCHDOG_PID: '1',
  });
  const ready = await datagram(l, (x) => has(x, 'READY=1'), 'READY=1');
  const warn = await d.waitFor((x) => x.variable === 'WATCHDOG_PID');
  assert.match(String(warn.msg), /names another process/);
  // A STATUS= change comes from a 1 s timer: keep-alives at 50 ms would have come twenty times by then.
  const c = ns.background(`python3 -c "import signal,socket; signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM]); s=socket.create_connection(('10.0.0.2', 9)); print('connected', flush=True); signal.sigtimedwait([signal.SIGTERM], 60)"`);
  await waitLine(c, /connected/, 'a connection to the discard service');
  await datagram(l, (x) => /TCP 1 established/.test(x.text), 'a STATUS= with the connection', ready + 1);
  assert.deepEqual(datagrams(l).filter((x) => x.text.includes('WATCHDOG=1')), [], 'no WATCHDOG=1 for a watchdog that is not ours');
  assert.equal(await d.stop(), 0);
  await datagram(l, (x) => has(x, 'STOPPING=1'), 'STOPPING=1');
  c.kill();
});

/** Uid, Gid, Groups and the capability masks of a process, from /proc/PID/status. */
function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^(Uid|Gid|Groups|CapPrm|CapEff|CapAmb):\s*(.*)$/.exec(line);
    if (m) out[m[1]] = m[2].trim().replace(/\s+/g, ' ');
  }
  return out;
}
const NOBODY = { Uid: '65534 65534 65534 65534', Gid: '65534 65534 65534 65534', Groups: '', CapPrm: '0000000000000000', CapEff: '0000000000000000', CapAmb: '0000000000000000' };

/** A kernel-side TCP round trip through the stack's echo service. */
function echoRoundTrip(ns: Netns, what: string): void {
  const out = ns.ok(`python3 -c "import socket; s=socket.create_connection(('10.0.0.2', 7), timeout=10); s.sendall(b'x'*5000); b=b''
while len(b)<5000: b+=s.recv(65536) or exit(1)
print(len(b))"`);
  assert.equal(out.trim(), '5000', what);
}

test('user/group: after opening and configuring the TAP and binding the API, the daemon runs as nobody with no capabilities; traffic and the API still work', { skip, timeout: 60_000 }, async () => {
  const ns = newNs();
  const conf = join(ns.dir, 'drop.json');
  writeFileSync(conf, JSON.stringify({ user: 'nobody', group: 'nogroup' }));
  const api = join(ns.dir, 'api.sock');
  const d = await ns.startDaemon(['--config', conf, '--tap', 'tapd', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--host-ipv6', 'none', '--api', api]);
  const drop = d.lines.findIndex((l) => String(l.msg).startsWith('dropped privileges'));
  assert.ok(drop >= 0 && drop < d.lines.findIndex((l) => l.msg === 'ready'), `the drop comes before ready: ${JSON.stringify(d.lines.slice(0, 8))}`);
  assert.deepEqual(procStatus(d.proc.pid!), NOBODY, 'uid and gid nobody, no supplementary groups, no capabilities');
  // The kernel side was configured as root, before the drop.
  assert.match(ns.ok('ip -4 addr show dev tapd'), /inet 10\.0\.0\.1\/24/);
  ns.ok('ping -c 2 -W 5 10.0.0.2');
  echoRoundTrip(ns, 'an echo through the stack after the drop');
  const st = statSync(api);
  assert.deepEqual({ uid: st.uid, gid: st.gid, mode: st.mode & 0o777 }, { uid: 65534, gid: 65534, mode: 0o660 }, 'the API socket is the dropped user\'s');
  assert.match(ns.ok(`${process.execPath} ${CLI} --api ${api} ss -l -t`), /:7 /, 'the API answers after the drop');

  // A reload after the drop reads the file as nobody: a sysctl applies; the API socket cannot be given root's group.
  chmodSync(ns.dir, 0o711);
  writeFileSync(conf, JSON.stringify({ user: 'nobody', group: 'nogroup', sysctl: { 'net.ipv4.tcp_sack': 0 }, apiGroup: 'root' }));
  chmodSync(conf, 0o644);
  d.proc.kill('SIGHUP');
  const done = await d.waitFor((x) => x.msg === 'reloaded');
  assert.deepEqual({ applied: done.applied, failed: done.failed }, { applied: ['sysctl'], failed: ['apiGroup'] }, JSON.stringify(done));
  assert.match(String(d.lines.find((x) => x.key === 'apiGroup')?.msg), /only give it its own group/);
  assert.match(ns.ok(`${process.execPath} ${CLI} --api ${api} sysctl net.ipv4.tcp_sack`), /= 0$/m);
  assert.equal(statSync(api).gid, 65534, 'the socket keeps its group');
  assert.equal(await d.stop(), 0, d.stderr);
});

/**
 * The daemon (as root) in `ns` once it logs `ready`, with /dev/net/tun open to
 * everyone as distributions ship it (0666), which an unprivileged re-open
 * needs: a node of our own bound over it in the mount namespace of `ip netns
 * exec` only, so the machine's device keeps its mode.
 */
async function startWithTun(ns: Netns, args: string[], prefix: string[] = [], ready = true): Promise<Daemon> {
  const node = join(ns.dir, 'tun');
  if (spawnSync('test', ['-c', node]).status !== 0) {
    const mk = spawnSync('mknod', [node, 'c', '10', '200'], { encoding: 'utf8' });
    assert.equal(mk.status, 0, `mknod: ${mk.stderr}`);
    chmodSync(node, 0o666);
  }
  // `ip netns exec`, sh and `prefix` (setpriv) exec: the pid is the daemon's.
  const p = spawn('ip', ['netns', 'exec', ns.name, 'sh', '-c', `mount --bind ${node} /dev/net/tun && exec "$@"`, 'sh', ...prefix, process.execPath, DAEMON, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  const d = new Daemon(p);
  if (ready) await d.waitFor((l) => l.msg === 'ready');
  return d;
}

test('user set and started as that user already: goes on without capabilities; with an ambient capability it refuses to start', { skip, timeout: 60_000 }, async () => {
  const ns = newNs();
  chmodSync(ns.dir, 0o711);
  const conf = join(ns.dir, 'drop.json');
  writeFileSync(conf, JSON.stringify({ user: 'nobody', group: 'nogroup' }));
  chmodSync(conf, 0o644);
  ns.ok('ip tuntap add dev tapd mode tap user nobody group nogroup && ip addr add 10.0.0.1/24 dev tapd && ip link set tapd up');
  const nobody = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--'];
  const args = ['--config', conf, '--tap', 'tapd', '--ipv4', '10.0.0.2/24', '--host-ipv4', 'none', '--host-ipv6', 'none', '--api', 'none'];
  const d = await startWithTun(ns, args, nobody);
  assert.ok(d.lines.some((l) => String(l.msg).startsWith('running as user nobody (uid 65534, gid 65534) already, no capabilities')), JSON.stringify(d.lines.slice(0, 6)));
  assert.deepEqual(procStatus(d.proc.pid!), NOBODY);
  echoRoundTrip(ns, 'as nobody from the start');
  assert.equal(await d.stop(), 0, d.stderr);

  const withCap = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--inh-caps=+net_admin', '--ambient-caps=+net_admin', '--'];
  const d2 = await startWithTun(ns, args, withCap, false);
  assert.equal(await exitOf(d2.proc), 1);
  assert.match(d2.stderr, /^tapstackd: runs as user nobody \(uid 65534, gid 65534\) already but holds capabilities .*CapEff.*: start it as root/m);
  assert.equal(d2.lines.find((l) => l.msg === 'ready'), undefined, 'never ready');
});

test('after the drop, a TAP deleted and re-created for the daemon\'s user (configured by its creator) is re-attached; one re-created for another user is refused (EPERM)', { skip, timeout: 90_000 }, async () => {
  const ns = newNs();
  const conf = join(ns.dir, 'drop.json');
  writeFileSync(conf, JSON.stringify({ user: 'nobody', group: 'nogroup' }));
  const create = 'ip tuntap add dev tapd mode tap user nobody group nogroup && ip addr add 10.0.0.1/24 dev tapd && ip link set tapd up';
  ns.ok(create);
  const d = await startWithTun(ns, ['--config', conf, '--tap', 'tapd', '--ipv4', '10.0.0.2/24', '--host-ipv4', 'none', '--host-ipv6', 'none', '--api', join(ns.dir, 'api.sock')]);
  assert.deepEqual(procStatus(d.proc.pid!), NOBODY);
  echoRoundTrip(ns, 'before the loss');
  ns.ok('ip link del tapd');
  await d.waitFor((l) => l.msg === 'TAP lost: the link is down until the interface comes back');
  // Another user's: without CAP_NET_ADMIN the kernel refuses it, and the daemon keeps waiting.
  ns.ok('ip tuntap add dev tapd mode tap user root');
  const refused = await d.waitFor((l) => String(l.msg).startsWith('cannot attach to tapd yet'));
  assert.equal(refused.code, 'EPERM', JSON.stringify(refused));
  ns.ok(`ip link del tapd && ${create}`);
  const back = await d.waitFor((l) => l.msg === 'TAP back: re-attached');
  assert.equal(back.interface, 'tapd');
  const asIs = d.lines.find((l) => String(l.msg).startsWith('the re-attached TAP is used as its creator configured it'));
  assert.deepEqual(asIs?.notApplied, ['mtu'], JSON.stringify(asIs));
  assert.deepEqual(procStatus(d.proc.pid!), NOBODY, 'still nobody, still no capabilities');
  echoRoundTrip(ns, 'after the re-attach');
  assert.equal(await d.stop(), 0, d.stderr);
});

test('SIGHUP reloads the config file: log level, a sysctl and a service move live, a TAP change is logged by key and not applied, a bad file is refused whole; RELOADING=1 (MONOTONIC_USEC) then READY=1', { skip, timeout: 90_000 }, async () => {
  const ns = newNs();
  const sock = join(ns.dir, 'notify.sock');
  const l = await notifyListener(ns, sock);
  const conf = join(ns.dir, 'reload.json');
  const api = join(ns.dir, 'api.sock');
  const base = { tap: 'taph', ipv4: '10.0.0.2/24', hostIpv4: '10.0.0.1/24', hostIpv6: null, api, logLevel: 'info', sysctl: { 'net.ipv4.tcp_sack': 1 } };
  writeFileSync(conf, JSON.stringify(base));
  const d = await ns.startDaemon(['--config', conf, '--api', api], undefined, { NOTIFY_SOCKET: sock });
  const sysctl = () => ns.ok(`${process.execPath} ${CLI} --api ${api} sysctl net.ipv4.tcp_sack`).trim();
  assert.match(sysctl(), /= 1$/);
  await datagram(l, (x) => has(x, 'READY=1'), 'READY=1 at start');

  writeFileSync(conf, JSON.stringify({ ...base, tap: 'other0', logLevel: 'debug', sysctl: { 'net.ipv4.tcp_sack': 0 }, services: { echo: 7007 } }));
  const n = datagrams(l).length;
  d.proc.kill('SIGHUP');
  const done = await d.waitFor((x) => x.msg === 'reloaded');
  assert.deepEqual({ applied: [...(done.applied as string[])].sort(), notApplied: done.notApplied, failed: done.failed }, { applied: ['logLevel', 'services', 'sysctl'], notApplied: ['tap'], failed: [] }, JSON.stringify(done));
  const tapLine = d.lines.find((x) => x.key === 'tap');
  assert.deepEqual({ running: tapLine?.running, configured: tapLine?.configured }, { running: 'taph', configured: 'other0' }, 'the TAP change is logged with its key and both values');
  assert.match(String(tapLine?.msg), /tap cannot change while the daemon runs/);
  // RELOADING=1 with the time on CLOCK_MONOTONIC (what Type=notify-reload checks), then READY=1.
  const rl = await datagram(l, (x) => has(x, 'RELOADING=1'), 'RELOADING=1', n);
  const m = /^MONOTONIC_USEC=(\d+)$/m.exec(datagrams(l)[rl].text);
  assert.ok(m, datagrams(l)[rl].text);
  const at = (datagrams(l)[rl] as Datagram & { mono: number }).mono;
  assert.ok(Number(m[1]) <= at && Number(m[1]) > at - 10_000_000, `MONOTONIC_USEC ${m[1]} is the monotonic time of the reload (received at ${at})`);
  await datagram(l, (x) => has(x, 'READY=1'), 'READY=1 after the reload', rl + 1);

  assert.match(sysctl(), /= 0$/, 'the sysctl changed live');
  ns.ok(`python3 -c "import socket; s=socket.create_connection(('10.0.0.2', 7007), timeout=10); s.sendall(b'moved'); assert s.recv(100) == b'moved'"`);
  assert.notEqual(ns.sh(`python3 -c "import socket; socket.create_connection(('10.0.0.2', 7), timeout=10)"`).status, 0, 'echo no longer on port 7');
  // debug is on: the connection above logged its TCP states.
  await d.waitFor((x) => x.msg === 'tcp state' && x.level === 20);
  assert.equal(ns.ok('ip -o link show taph').includes('taph'), true, 'the daemon still runs on its TAP');

  // A bad file: refused whole, the running values stay (sysctl 0, echo on 7007).
  writeFileSync(conf, JSON.stringify({ ...base, sysctl: { 'net.ipv4.tcp_sack': 1 }, ipv4: '10.0.0.300/24' }));
  const before = d.lines.length;
  const n2 = datagrams(l).length;
  d.proc.kill('SIGHUP');
  const refused = await d.waitFor((x) => String(x.msg).startsWith('reload refused') && d.lines.indexOf(x) >= before);
  assert.equal(refused.key, 'ipv4', JSON.stringify(refused));
  assert.match(String(refused.msg), /10\.0\.0\.300\/24/);
  const rl2 = await datagram(l, (x) => has(x, 'RELOADING=1'), 'RELOADING=1 of the bad file', n2);
  const r2 = await datagram(l, (x) => has(x, 'READY=1'), 'READY=1 after the refused reload', rl2 + 1);
  assert.match(datagrams(l)[r2].text, /STATUS=reload of .* refused \(ipv4\)/);
  assert.match(sysctl(), /= 0$/, 'nothing of the bad file was applied');
  ns.ok(`python3 -c "import socket; s=socket.create_connection(('10.0.0.2', 7007), timeout=10); s.sendall(b'still'); assert s.recv(100) == b'still'"`);
  assert.equal(await d.stop(), 0, d.stderr);
});

const READER = join(ROOT, 'test', 'integration', 'slow_reader.py');

/**
 * A connection from the stack (an API client, this test) to a kernel-side
 * server that does not read, with `size` bytes written: once the stack's
 * send queue and the peer's receive queue hold all of them (the window is
 * closed), the daemon has data to deliver at shutdown.
 */
async function stuckConnection(ns: Netns, api: string, size: number): Promise<{ peer: ChildProcess; data: Buffer; sock: StackSocket; client: Client }> {
  const peer = ns.background(`python3 ${READER} 10.0.0.1 7200 90`);
  await waitLine(peer, /"listening": 7200/, 'the kernel-side reader');
  const sock = connect({ host: '10.0.0.1', port: 7200, api });
  await new Promise<void>((res, rej) => {
    sock.once('connect', () => res());
    sock.once('error', rej);
  });
  await waitLine(peer, /"accepted"/, 'the reader accepting');
  const data = randomBytes(size);
  sock.write(data);
  const client = new Client({ path: api, descriptors: false });
  await client.ready();
  const kernelRecvQ = () => Number(/^(\d+)/.exec(ns.ok(`ss -Htn state established '( sport = :7200 )'`).trim())?.[1] ?? 0);
  await waitFor(
    async () => {
      const rows = await client.sockets();
      const row = rows.find((r) => r.peer === '10.0.0.1:7200');
      const rq = kernelRecvQ();
      if (row && row.sendQ > 0 && row.sendQ + rq === size) return true;
      throw new Error(`stack: ${JSON.stringify(row ?? rows)}, peer's Recv-Q ${rq}`);
    },
    `all ${size} bytes in the stack's send queue or the peer's receive queue`,
  );
  return { peer, data, sock, client };
}

test('SIGTERM with a connection whose data waits behind a closed window: the peer gets all of it, then the FIN, and the daemon exits as soon as the FIN is acknowledged', { skip, timeout: 60_000 }, async () => {
  const ns = newNs();
  const api = join(ns.dir, 'api.sock');
  const conf = join(ns.dir, 'grace.json');
  writeFileSync(conf, JSON.stringify({ shutdownGraceMs: 30_000 }));
  const d = await ns.startDaemon(['--config', conf, '--tap', 'tapg', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--host-ipv6', 'none', '--api', api]);
  const { peer, data, client } = await stuckConnection(ns, api, 24 * 1024);
  client.close();
  const t0 = Date.now();
  d.proc.kill('SIGTERM');
  const waiting = await d.waitFor((l) => l.msg === 'waiting for the connections to send their data and FIN');
  assert.equal(waiting.connections, 1, JSON.stringify(waiting));
  assert.equal(d.proc.exitCode, null, 'the daemon waits while the data cannot go');
  // The reader reads: the window opens, the data goes, then the FIN.
  peer.kill('SIGUSR1');
  const [, got] = await waitLine(peer, /("bytes".*)\}/, 'the reader at EOF');
  const r = JSON.parse(`{${got}}`) as { bytes: number; sha256: string; eof: boolean };
  assert.deepEqual(r, { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex'), eof: true }, 'every byte, then the FIN');
  assert.equal(await exitOf(d.proc), 0, d.stderr);
  assert.ok(Date.now() - t0 < 30_000, 'it did not wait for the whole grace period');
  assert.equal(d.lines.find((l) => String(l.msg).startsWith('exiting with')), undefined, 'nothing was left open');
});

test('SIGTERM: a connection that cannot finish is waited for shutdownGraceMs, then logged as still open; a second SIGTERM exits at once', { skip, timeout: 90_000 }, async () => {
  const graceMs = 1500;
  const ns = newNs();
  const api = join(ns.dir, 'api.sock');
  const conf = join(ns.dir, 'grace.json');
  writeFileSync(conf, JSON.stringify({ shutdownGraceMs: graceMs }));
  const args = ['--config', conf, '--tap', 'tapg', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--host-ipv6', 'none', '--api', api];
  const d = await ns.startDaemon(args);
  const a = await stuckConnection(ns, api, 24 * 1024);
  const t0 = Date.now();
  d.proc.kill('SIGTERM');
  assert.equal(await exitOf(d.proc), 0, d.stderr);
  const took = Date.now() - t0;
  assert.ok(took >= graceMs, `the daemon waited the grace period (${took} ms of ${graceMs})`);
  const open = d.lines.find((l) => String(l.msg).startsWith('exiting with 1 connection'));
  const rows = open?.connections as { state: string; peer: string; sendQ: number }[] | undefined;
  assert.equal(rows?.length, 1, JSON.stringify(open));
  assert.equal(rows![0].peer, '10.0.0.1:7200');
  assert.equal(rows![0].state, 'FIN-WAIT-1', 'closed, its FIN queued behind the data');
  assert.ok(rows![0].sendQ > 0, JSON.stringify(rows));
  a.peer.kill();
  a.sock.destroy();
  a.client.close();

  // A long grace, cut short by a second SIGTERM.
  writeFileSync(conf, JSON.stringify({ shutdownGraceMs: 60_000 }));
  ns.sh('ip link del tapg');
  const d2 = await ns.startDaemon(args);
  const b = await stuckConnection(ns, api, 24 * 1024);
  d2.proc.kill('SIGTERM');
  await d2.waitFor((l) => l.msg === 'waiting for the connections to send their data and FIN');
  const t1 = Date.now();
  d2.proc.kill('SIGTERM');
  assert.equal(await exitOf(d2.proc, 10_000), 0, d2.stderr);
  assert.ok(Date.now() - t1 < 10_000);
  assert.ok(d2.lines.some((l) => l.msg === 'second signal: not waiting for the connections any longer'));
  assert.ok(d2.lines.some((l) => String(l.msg).startsWith('exiting with 1 connection')));
  b.peer.kill();
  b.sock.destroy();
  b.client.close();
});

const ANALYZE = spawnSync('sh', ['-c', 'command -v systemd-analyze']).status === 0;
test('systemd/tapstackd.service: systemd-analyze verify is clean; Type=notify, SIGHUP for reload, a stop timeout longer than the default grace', { skip: ANALYZE ? false : 'systemd-analyze is not installed', timeout: 30_000 }, () => {
  const unit = join(ROOT, 'systemd', 'tapstackd.service');
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', unit], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', 'no warnings');
  const text = readFileSync(unit, 'utf8');
  const key = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(text)?.[1];
  assert.equal(key('Type'), 'notify');
  assert.equal(key('NotifyAccess'), 'main');
  assert.equal(key('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.ok(Number(/^(\d+)s$/.exec(key('TimeoutStopSec') ?? '')?.[1]) * 1000 > SHUTDOWN_GRACE_MS_DEFAULT, 'systemd waits longer than the grace');
  assert.equal(key('AmbientCapabilities'), undefined, 'no capability survives the drop');
});
