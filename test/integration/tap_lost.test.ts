/**
 * The TAP deleted under a running daemon (`ip link del`): with tapLost
 * "reattach" (the default) the stack's link goes down (sends fail with
 * ENETDOWN, connections keep their state), the daemon attaches again when
 * an interface of the same name comes back, and a TCP connection opened
 * before carries data intact both ways after; as root, and as nobody on a
 * persistent TAP the administrator re-creates for that user. With tapLost
 * "exit", or when tapReattachTimeout passes, the daemon exits 69 with one
 * line on stderr.
 *
 * Every packet stays inside a namespace this file creates.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { DAEMON, Daemon, Netns, ROOT, WAIT_MS, exitOf, requireIntegration, waitLine, errno } from './netns.js';
import { Client, connect, type StackSocket } from '../../src/client/index.js';
import { AF_INET, SOCK_DGRAM, SOCK_STREAM } from '../../src/uapi.js';

const skip = requireIntegration(['python3', 'setpriv', 'mknod', 'mount']);
const PEER = join(ROOT, 'test', 'integration', 'api_peer.py');
const NOBODY = 65534;
const NOGROUP = 65534;
/** sysexits.h EX_UNAVAILABLE: what tapstackd exits with when the TAP is lost for good. */
const EX_TAP_LOST = 69;

const namespaces: Netns[] = [];
const procs: ChildProcess[] = [];

after(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const ns of namespaces) ns.destroy();
});

function newNs(): Netns {
  const ns = new Netns('tapl');
  namespaces.push(ns);
  return ns;
}

/**
 * The daemon inside the namespace as nobody (setpriv, no capabilities), once
 * it logs `ready`. /dev/net/tun is opened to everyone as distributions ship
 * it (0666), in the mount namespace of `ip netns exec` only: a node of our
 * own bound over it, so the machine's device keeps its mode.
 */
async function startAsNobody(ns: Netns, args: string[]): Promise<Daemon> {
  const node = join(ns.dir, 'tun');
  const mk = spawnSync('mknod', [node, 'c', '10', '200'], { encoding: 'utf8' });
  assert.equal(mk.status, 0, `mknod: ${mk.stderr}`);
  chmodSync(node, 0o666);
  const prefix = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--inh-caps=-all', '--'];
  // `ip netns exec`, sh, setpriv all exec: the pid is the daemon's.
  const p = spawn('ip', ['netns', 'exec', ns.name, 'sh', '-c', `mount --bind ${node} /dev/net/tun && exec "$@"`, 'sh', ...prefix, process.execPath, DAEMON, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(p);
  const d = new Daemon(p);
  await d.waitFor((l) => l.msg === 'ready');
  return d;
}

/** Exactly `n` bytes from `s`, bounded by `timeoutMs`. */
function readExactly(s: StackSocket, n: number, what: string, timeoutMs = WAIT_MS): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const done = (err: Error | null) => {
      clearTimeout(t);
      s.off('data', onData);
      s.off('error', onErr);
      s.off('close', onClose);
      if (err) reject(err);
      else resolve(Buffer.concat(parts));
    };
    const onData = (c: Buffer) => {
      parts.push(c);
      got += c.length;
      if (got >= n) {
        if (got > n) done(new Error(`${what}: ${got} bytes, more than the ${n} sent`));
        else done(null);
      }
    };
    const onErr = (e: Error) => done(new Error(`${what}: ${e.message}`));
    const onClose = () => done(new Error(`${what}: the connection closed after ${got} of ${n} bytes`));
    const t = setTimeout(() => done(new Error(`${what}: ${got} of ${n} bytes in ${timeoutMs} ms`)), timeoutMs);
    s.on('data', onData);
    s.on('error', onErr);
    s.on('close', onClose);
  });
}

/** Send `data` and check the echo comes back byte for byte. */
async function echoed(s: StackSocket, data: Buffer, what: string): Promise<void> {
  const back = readExactly(s, data.length, what);
  s.write(data);
  assert.ok((await back).equals(data), `${what}: the echo differs from what was sent`);
}

type Counters = Record<string, Record<string, unknown>>;
function get(c: Counters, path: string): number {
  let v: unknown = c;
  for (const k of path.split('.')) v = v === undefined || v === null ? undefined : (v as Record<string, unknown>)[k];
  if (typeof v !== 'number') throw new Error(`no counter ${path}`);
  return v;
}

/**
 * The cycle both reattach tests run: a connection to a kernel-side echo
 * server, the TAP deleted, ENETDOWN for UDP sendto and connect() meanwhile
 * (and a write queued on the connection), `recreate` run, the daemon back,
 * and the connection carrying the queued data and more, intact both ways.
 */
async function lostAndBack(ns: Netns, d: Daemon, api: string, tap: string, recreate: () => Promise<void> | void): Promise<void> {
  const peer = ns.background(`python3 ${PEER} echo 0.0.0.0 7100 120`);
  await waitLine(peer, /"listening": 7100/, 'the kernel-side echo server');
  const s = connect({ host: '10.0.0.1', port: 7100, api });
  await new Promise<void>((res, rej) => {
    s.once('connect', () => res());
    s.once('error', rej);
  });
  await echoed(s, randomBytes(64 << 10), 'before the loss');

  const c = new Client({ path: api, descriptors: false });
  await c.ready();
  const udp = (await c.socket(AF_INET, SOCK_DGRAM, 0)).fd;
  assert.equal(await errno(c.sendto(udp, Buffer.from('up'), { family: AF_INET, addr: '10.0.0.1', port: 9 })), 'OK', 'UDP sendto while the link is up');

  ns.ok(`ip link del ${tap}`);
  const lost = await d.waitFor((l) => l.msg === 'TAP lost: the link is down until the interface comes back');
  assert.equal(lost.interface, tap, JSON.stringify(lost));
  assert.match(String(lost.code), /^EBADFD?$/, JSON.stringify(lost));

  // The link is down: what Linux answers for a route through a device that is down.
  assert.equal(await errno(c.sendto(udp, Buffer.from('down'), { family: AF_INET, addr: '10.0.0.1', port: 9 })), 'ENETDOWN', 'UDP sendto while the TAP is gone');
  const tcp = (await c.socket(AF_INET, SOCK_STREAM, 0)).fd;
  assert.equal(await errno(c.connect(tcp, { family: AF_INET, addr: '10.0.0.1', port: 7100 })), 'ENETDOWN', 'TCP connect() while the TAP is gone');
  // Written while the link is down: queued by TCP, sent once it is back.
  const during = randomBytes(48 << 10);
  const duringBack = readExactly(s, during.length, 'the data written during the outage');
  s.write(during);
  // TCP's transmits of it fail and are dropped, counted with the reason.
  const down = (await d.countersWhen((k) => get(k, 'Drop.DEV_READY') >= 1)) as Counters;
  assert.equal(get(down, `Link.${tap}.carrier_down_count`), 1, JSON.stringify(down.Link));
  assert.ok(get(down, 'Drop.DEV_READY') >= 1, `transmits dropped for the down link are counted: ${JSON.stringify(down.Drop)}`);
  assert.equal(get(down, 'Tap.attached'), 0, 'the driver says it is detached');

  await recreate();
  const back = await d.waitFor((l) => l.msg === 'TAP back: re-attached');
  assert.equal(back.interface, tap, JSON.stringify(back));
  assert.ok(typeof back.outageMs === 'number' && back.outageMs > 0, JSON.stringify(back));

  assert.ok((await duringBack).equals(during), 'the data written during the outage came back different');
  await echoed(s, randomBytes(256 << 10), 'after the re-attach');
  assert.equal(await errno(c.sendto(udp, Buffer.from('up again'), { family: AF_INET, addr: '10.0.0.1', port: 9 })), 'OK', 'UDP sendto once the TAP is back');

  const fin = (await d.counters()) as Counters;
  assert.deepEqual(
    { down: get(fin, `Link.${tap}.carrier_down_count`), up: get(fin, `Link.${tap}.carrier_up_count`), lost: get(fin, 'Tap.lost'), reattached: get(fin, 'Tap.reattached') },
    { down: 1, up: 1, lost: 1, reattached: 1 },
    'the loss and the re-attach, counted once each',
  );
  assert.equal(d.lines.filter((l) => String(l.msg).startsWith('TAP lost')).length, 1, 'the loss is logged once');
  s.destroy();
  c.close();
  peer.kill();
}

test('tapLost "reattach" as root: ENETDOWN while the TAP is gone, the same TCP connection intact after it is re-created', { skip, timeout: 90_000 }, async () => {
  const ns = newNs();
  const api = join(ns.dir, 'api.sock');
  const d = await ns.startDaemon(['--tap', 'tapr', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--host-ipv6', 'none', '--api', api]);
  procs.push(d.proc);
  await lostAndBack(ns, d, api, 'tapr', () => {
    // As an administrator would: the daemon configures its kernel side again (address, MTU, up).
    ns.ok('ip tuntap add dev tapr mode tap');
  });
  const addr = ns.ok('ip -4 addr show dev tapr');
  assert.match(addr, /inet 10\.0\.0\.1\/24/, `the daemon configured the re-created TAP: ${addr}`);
  assert.equal(await d.stop(), 0, `exit status after SIGTERM; stderr: ${d.stderr}`);
});

test('tapLost "reattach" unprivileged (nobody) on a persistent TAP the administrator re-creates for it', { skip, timeout: 90_000 }, async () => {
  const ns = newNs();
  // The API socket's directory belongs to the daemon's user.
  chmodSync(ns.dir, 0o711);
  const dir = join(ns.dir, 'run');
  mkdirSync(dir);
  chownSync(dir, NOBODY, NOGROUP);
  const api = join(dir, 'api.sock');
  const setup = 'ip tuntap add dev tapu mode tap user nobody group nogroup && ip addr add 10.0.0.1/24 dev tapu && ip link set tapu up';
  ns.ok(setup);
  const d = await startAsNobody(ns, [
    '--tap', 'tapu', '--ipv4', '10.0.0.2/24', '--host-ipv4', 'none', '--host-ipv6', 'none', '--api', api,
  ]);
  const status = readFileSync(`/proc/${d.proc.pid}/status`, 'utf8');
  assert.match(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m, 'the daemon runs as nobody');
  const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  assert.equal(BigInt(`0x${eff![1]}`), 0n, `the daemon has capabilities (CapEff ${eff![1]}): the test proves nothing`);

  await lostAndBack(ns, d, api, 'tapu', async () => {
    // Re-created for another user first (an unowned TAP anyone may attach to): not the daemon's (EPERM); it keeps waiting.
    ns.ok('ip tuntap add dev tapu mode tap user root');
    const refused = await d.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('cannot attach to tapu yet'));
    assert.equal(refused.code, 'EPERM', JSON.stringify(refused));
    ns.ok('ip tuntap del dev tapu mode tap');
    ns.ok(setup);
  });
  assert.equal(await d.stop(), 0, `exit status after SIGTERM; stderr: ${d.stderr}`);
  assert.match(ns.ok('ip -d link show tapu'), /persist on/, 'the persistent TAP stays after the daemon stops');
});

test('tapLost "exit": status 69 and one line on stderr when the TAP is deleted', { skip, timeout: 60_000 }, async () => {
  const ns = newNs();
  const d = await ns.startDaemon(['--tap', 'tape', '--tap-lost', 'exit', '--host-ipv6', 'none']);
  procs.push(d.proc);
  ns.ok('ip link del tape');
  const code = await exitOf(d.proc);
  assert.equal(code, EX_TAP_LOST, `exit status; stderr: ${d.stderr}`);
  assert.match(d.stderr, /^tapstackd: TAP tape lost \(EBADFD?: the interface was deleted\); exiting \(tapLost is "exit"\)\n$/, `stderr must be that one line: ${JSON.stringify(d.stderr)}`);
  assert.ok(d.lines.find((l) => l.msg === 'counters' && l.reason === 'exit'), 'the final counters are logged');
});

test('tapReattachTimeout: status 69 and one line on stderr when the TAP does not come back in time', { skip, timeout: 60_000 }, async () => {
  const ns = newNs();
  const d = await ns.startDaemon(['--tap', 'tapt', '--tap-reattach-timeout', '1.5', '--host-ipv6', 'none']);
  procs.push(d.proc);
  const t0 = Date.now();
  ns.ok('ip link del tapt');
  const code = await exitOf(d.proc);
  const waited = Date.now() - t0;
  assert.equal(code, EX_TAP_LOST, `exit status; stderr: ${d.stderr}`);
  assert.equal(d.stderr, 'tapstackd: TAP tapt did not come back within 1.5 s (tapReattachTimeout); exiting\n');
  assert.ok(waited >= 1000, `gave up after ${waited} ms, before the bound`);
});
