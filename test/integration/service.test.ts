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
import { type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Netns, ROOT, exitOf, outputOf, requireIntegration, waitFor, waitLine } from './netns.js';

const skip = requireIntegration(['python3']);
const LISTEN = join(ROOT, 'test', 'integration', 'notify_listen.py');

const namespaces: Netns[] = [];
after(() => {
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
  const c = ns.background(`python3 -c "import socket,time; s=socket.create_connection(('10.0.0.2', 7)); print('connected', flush=True); time.sleep(60)"`);
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
  const c = ns.background(`python3 -c "import socket,time; s=socket.create_connection(('10.0.0.2', 9)); print('connected', flush=True); time.sleep(60)"`);
  await waitLine(c, /connected/, 'a connection to the discard service');
  await datagram(l, (x) => /TCP 1 established/.test(x.text), 'a STATUS= with the connection', ready + 1);
  assert.deepEqual(datagrams(l).filter((x) => x.text.includes('WATCHDOG=1')), [], 'no WATCHDOG=1 for a watchdog that is not ours');
  assert.equal(await d.stop(), 0);
  await datagram(l, (x) => has(x, 'STOPPING=1'), 'STOPPING=1');
  c.kill();
});
