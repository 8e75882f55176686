/**
 * The TAP addon's multi-queue open (IFF_MULTI_QUEUE, docs/shards.md): N
 * queues of one interface, each with its vnet header; the kernel's frames
 * of different flows are spread over the queues by tun's flow hash, and a
 * frame written on any queue reaches the kernel. With our steering program
 * (native/tap_steer.c) every frame lands on the queue src/drivers/tap_steer.ts
 * computes for its ports, an ICMP error on the queue of the ports it quotes.
 *
 * Every packet stays inside the namespace this file creates.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { steerQueue } from '../../src/drivers/tap_steer.js';
import { Netns, ROOT, outputOf, requireIntegration, waitFor, waitLine } from './netns.js';

const skip = requireIntegration(['python3']);
const HELPER = join(ROOT, 'dist', 'test', 'integration', 'tap_queues.js');
const WORKER_EXIT = join(ROOT, 'dist', 'test', 'integration', 'tap_worker_exit.js');
const FLOWS = 64;

const namespaces: Netns[] = [];
after(() => namespaces.forEach((ns) => ns.destroy()));

/** The kernel's Icmp InEchos in `ns`. */
function inEchos(ns: Netns): number {
  const lines = ns.ok('cat /proc/net/snmp').split('\n').filter((l) => l.startsWith('Icmp:'));
  const names = lines[0].split(/\s+/);
  return Number(lines[1].split(/\s+/)[names.indexOf('InEchos')]);
}

for (const queues of [2, 4]) {
  test(`${queues} queues of one TAP: each opens with the vnet header, carries the kernel's frames (flows spread by hash) and takes ours`, { skip, timeout: 60_000 }, async () => {
    const ns = new Netns('mq');
    namespaces.push(ns);
    const echosBefore = inEchos(ns);
    const p = ns.background(`${process.execPath} ${HELPER} tapq ${queues}`);
    const ready = JSON.parse((await waitLine(p, /^\{"ready".*$/m, 'the queues open'))[0]) as { queues: number[] };
    assert.deepEqual(ready.queues, new Array(queues).fill(12), 'every queue has the 12-byte virtio_net_hdr_v1');
    assert.equal(ns.ok('ls /sys/class/net/tapq/queues | grep -c ^rx-').trim(), String(queues), 'the interface has one rx queue per open');
    // Written on every queue: the kernel answered each echo request (its reply needs ARP and goes nowhere).
    for (let q = 0; q < queues; q++) assert.match(outputOf(p), new RegExp(`\\{"q":${q},"wrote":62\\}`), `queue ${q} took a frame`);
    await waitFor(() => inEchos(ns) - echosBefore >= queues, `the kernel's Icmp InEchos up by ${queues} (${inEchos(ns) - echosBefore} so far)`);
    // Flows from the kernel: a static neighbour, so no ARP is needed; one datagram per destination port.
    ns.ok('ip neigh replace 10.9.0.2 lladdr 02:74:73:00:00:02 dev tapq nud permanent');
    ns.ok(`python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for port in range(20000, 20000 + ${FLOWS}): s.sendto(b'x', ('10.9.0.2', port))"`);
    const seen = () =>
      outputOf(p)
        .split('\n')
        .filter((l) => l.includes('"dport"'))
        .map((l) => JSON.parse(l) as { q: number; dport: number; hdr: number; dstMac: boolean });
    await waitFor(() => seen().length >= FLOWS, `${FLOWS} datagrams read (${seen().length} so far)`);
    const rows = seen();
    const perQueue = new Array<number>(queues).fill(0);
    for (const r of rows) {
      assert.ok(r.dstMac, 'the Ethernet header sits right after the vnet header');
      perQueue[r.q]++;
    }
    assert.deepEqual(new Set(rows.map((r) => r.dport)).size, FLOWS, 'each flow read once');
    // 64 flows over the queues by hash: all on one queue has odds of queues^-63.
    assert.ok(perQueue.filter((n) => n > 0).length >= 2, `the flows spread over the queues: ${JSON.stringify(perQueue)}`);
  });
}

for (const queues of [2, 3]) {
  test(`${queues} queues steered by our program: each flow on the queue its ports hash to, over IPv4 and IPv6, an ICMP error on its flow's`, { skip, timeout: 60_000 }, async () => {
    const ns = new Netns('mqs');
    namespaces.push(ns);
    const p = ns.background(`${process.execPath} ${HELPER} tapq ${queues} steer`);
    await waitLine(p, /^\{"ready".*$/m, 'the queues open with the steering program');
    ns.ok('sysctl -qw net.ipv4.icmp_ratelimit=0');
    ns.ok('ip -6 addr add fd09::1/64 dev tapq nodad');
    ns.ok('ip neigh replace 10.9.0.2 lladdr 02:74:73:00:00:02 dev tapq nud permanent');
    ns.ok('ip -6 neigh replace fd09::2 lladdr 02:74:73:00:00:02 dev tapq nud permanent');
    ns.ok(`python3 -c "
import socket
for fam, addr in ((socket.AF_INET, '10.9.0.2'), (socket.AF_INET6, 'fd09::2')):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    for port in range(20000, 20000 + ${FLOWS}): s.sendto(b'x', (addr, port))"`);
    type Row = { q: number; v6?: boolean; icmp?: boolean; sport: number; dport: number; local: number; remote: number };
    const rows = () =>
      outputOf(p)
        .split('\n')
        .filter((l) => l.startsWith('{"q"') && !l.includes('"wrote"'))
        .map((l) => JSON.parse(l) as Row);
    await waitFor(() => rows().filter((r) => !r.icmp).length >= 2 * FLOWS && rows().filter((r) => r.icmp).length >= 8, `${2 * FLOWS} datagrams and 8 ICMP errors read (${rows().length} so far)`);
    const perQueue = new Array<number>(queues).fill(0);
    for (const r of rows()) {
      const want = r.icmp ? steerQueue(r.remote, r.local, queues) : steerQueue(r.sport, r.dport, queues);
      assert.equal(r.q, want, `${JSON.stringify(r)} arrived on the queue its ports steer to`);
      perQueue[r.q]++;
    }
    assert.equal(new Set(rows().filter((r) => r.icmp).map((r) => r.local)).size, 8, 'one error for each probe');
    assert.ok(perQueue.every((n) => n > 0), `every queue carries flows: ${JSON.stringify(perQueue)}`);
  });
}

test('a queue read in a worker thread: the process may exit while the reader runs (the addon closes its handle as the thread ends)', { skip, timeout: 60_000 }, () => {
  const ns = new Netns('mqw');
  namespaces.push(ns);
  const r = ns.sh(`${process.execPath} ${WORKER_EXIT} tapw`);
  assert.equal(r.status, 3, `the process's own exit status, not an abort: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /open handles/);
});
