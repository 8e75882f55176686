/**
 * tapstackd --shards N (docs/shards.md): with 1 shard the single event loop,
 * with 2 a multi-queue TAP and two worker threads, each a whole stack. Many
 * HTTP fetches (Connection: close, IPv4 and IPv6) from the kernel side to
 * the built-in server; with 2 shards each shard serves some of them, each
 * has resolved the kernel's addresses (ARP and NDP) for the flows on its
 * queue, the summed counters are the shards', and the config's sysctls
 * hold in every shard, at start and after SIGHUP's reload. The daemon's
 * whole state with shards: congestion modules and the fault injection in
 * every shard, one capture file written by all of them, the privilege drop
 * with every shard running.
 *
 * Every packet stays inside the namespaces this file creates.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DAEMON, Netns, ROOT, exitOf, outputOf, requireIntegration, type Daemon, type LogLine } from './netns.js';

const skip = requireIntegration(['python3', 'curl', 'tcpdump']);
const FETCH = join(ROOT, 'test', 'integration', 'http_fetch.py');
const FETCHES = 200;
const METRICS = '127.0.0.1:9464';
/** TCP listeners of the built-in services in one shard (the 1-shard run reads it). */
let listeners1 = 0;

const namespaces: Netns[] = [];
after(() => namespaces.forEach((ns) => ns.destroy()));

interface ShardRow {
  shard: number;
  counters: Record<string, Record<string, number>>;
  neighbours: { addr: string; lladdr: string; state: string }[];
  cpu: { user: number; system: number };
  services: { name: string; accepted: number }[];
  relayedOut: number;
  relayedIn: number;
}

/** SIGUSR1's whole counters line (the single path has no `shards`). */
async function countersLine(d: Daemon): Promise<LogLine> {
  const before = d.lines.length;
  d.proc.kill('SIGUSR1');
  return d.waitFor((l) => l.msg === 'counters' && d.lines.indexOf(l) >= before);
}

function fetch(ns: Netns, n: number): { total: number; ok: number; ts: number } {
  return JSON.parse(ns.ok(`python3 ${FETCH} 80 ${n} 8 10.0.0.2 10.0.0.2 10.0.0.2 fd00::2`, 120_000)) as { total: number; ok: number; ts: number };
}

const httpAccepted = (r: ShardRow) => r.services.find((s) => s.name === 'http')!.accepted;
const RESOLVED = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE']);

for (const shards of [1, 2]) {
  test(`--shards ${shards}: ${FETCHES} HTTP fetches (IPv4 and IPv6, Connection: close) from the kernel, sysctls in every shard at start and on reload${shards > 1 ? ', spread over the shards with ARP/NDP resolved in each, counters summed' : ''}`, { skip, timeout: 240_000 }, async (t) => {
    const ns = new Netns('shards');
    namespaces.push(ns);
    const conf = join(ns.dir, 'tapstackd.json');
    writeFileSync(conf, JSON.stringify({ metricsListen: METRICS, sysctl: { 'net.ipv4.tcp_timestamps': 0 } }));
    const d = await ns.startDaemon(['--config', conf, '--tap', 'tapsh', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--ipv6', 'fd00::2/64', '--host-ipv6', 'fd00::1/64', '--api', 'none', '--tap-lost', 'exit', '--shards', String(shards)]);
    const ready = d.lines.find((l) => l.msg === 'ready')!;
    if (shards > 1) {
      assert.equal(ready.shards, shards);
      assert.equal(ready.steering, 'ports', 'our steering program picks the queue of every frame (native/tap_steer.c)');
      assert.equal(ns.ok('ls /sys/class/net/tapsh/queues | grep -c ^rx-').trim(), String(shards), 'one TAP queue per shard');
    } else {
      assert.equal(ready.shards, undefined, 'one shard is the single event loop');
      assert.equal(ns.ok('ls /sys/class/net/tapsh/queues | grep -c ^rx-').trim(), '1');
    }
    await ns.kernelDadDone('tapsh');

    // Timestamps off in the config: no connection, whichever shard took it, agreed to them.
    const r1 = fetch(ns, FETCHES);
    assert.deepEqual(r1, { total: FETCHES, ok: FETCHES, ts: 0 });

    const line = await countersLine(d);
    const sum = line.counters as Record<string, Record<string, number>>;
    assert.ok(sum.Tcp.PassiveOpens >= FETCHES, `Tcp.PassiveOpens ${sum.Tcp.PassiveOpens}`);
    if (shards > 1) {
      const rows = line.shards as ShardRow[];
      assert.equal(rows.length, shards);
      t.diagnostic(`per shard: http accepted ${rows.map(httpAccepted)}, neighbour frames relayed out ${rows.map((r) => r.relayedOut)}, in ${rows.map((r) => r.relayedIn)}`);
      for (const r of rows) {
        assert.ok(httpAccepted(r) > 0, `shard ${r.shard} served some fetches: ${rows.map(httpAccepted)}`);
        for (const host of ['10.0.0.1', 'fd00::1']) {
          const nb = r.neighbours.find((x) => x.addr === host);
          assert.ok(nb && RESOLVED.has(nb.state), `shard ${r.shard} resolved ${host}: ${JSON.stringify(r.neighbours)}`);
        }
        assert.ok(r.cpu.user + r.cpu.system >= 0 && Number.isFinite(r.cpu.user), 'each shard reads its own thread\'s CPU time');
      }
      assert.equal(rows.reduce((a, r) => a + httpAccepted(r), 0), FETCHES, 'every fetch served by exactly one shard');
      for (const [group, name] of [['Tcp', 'PassiveOpens'], ['Tcp', 'OutSegs'], ['Ip', 'InReceives'], ['Ip6', 'InReceives']]) {
        assert.equal(sum[group][name], rows.reduce((a, r) => a + r.counters[group][name], 0), `${group}.${name} is the shards' sum`);
      }
    }

    // The metrics endpoint (on the namespace's loopback): the shards' counters summed, their sockets merged.
    const text = ns.ok(`curl -sS http://${METRICS}/metrics`);
    const metric = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    assert.ok(metric(/^tapstack_netstat_Tcp_PassiveOpens (\d+)$/m) >= FETCHES, 'PassiveOpens over every shard');
    const listen = metric(/^tapstack_tcp_sockets\{state="LISTEN"\} (\d+)$/m);
    if (shards === 1) listeners1 = listen;
    else if (listeners1) assert.equal(listen, shards * listeners1, 'each shard has every listener');
    assert.ok(listen > 0);

    // SIGHUP with timestamps on: every shard applies it.
    writeFileSync(conf, JSON.stringify({ metricsListen: METRICS, sysctl: { 'net.ipv4.tcp_timestamps': 1 } }));
    const before = d.lines.length;
    d.proc.kill('SIGHUP');
    const reloaded = await d.waitFor((l) => l.msg === 'reloaded' && d.lines.indexOf(l) >= before);
    assert.deepEqual(reloaded.failed, []);
    assert.ok((reloaded.applied as string[]).includes('sysctl'));
    const r2 = fetch(ns, 40);
    assert.deepEqual(r2, { total: 40, ok: 40, ts: 40 });

    const code = await d.stop();
    assert.equal(code, 0, `exit status; stderr: ${d.stderr}; last lines: ${JSON.stringify(d.lines.slice(-4))}`);
    const exit = d.lines.find((l) => l.msg === 'counters' && l.reason === 'exit');
    assert.ok(exit, 'the exit counters are logged');
    if (shards > 1) assert.equal((exit.shards as ShardRow[]).length, shards);
  });
}

test('--shards 2: net.ipv4.tcp_cwnd_trace at debug level traces the ACKs of every shard\'s connections, each line with its shard', { skip, timeout: 120_000 }, async () => {
  const ns = new Netns('shcwnd');
  namespaces.push(ns);
  const conf = join(ns.dir, 'tapstackd.json');
  writeFileSync(conf, JSON.stringify({ logLevel: 'debug', sysctl: { 'net.ipv4.tcp_cwnd_trace': 1 } }));
  const d = await ns.startDaemon(['--config', conf, '--tap', 'tapsh', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--ipv6', 'none', '--host-ipv6', 'none', '--api', 'none', '--tap-lost', 'exit', '--shards', '2']);
  // 16 downloads, a connection each (16 source ports): all on one shard has odds of 2^-15.
  const urls = Array.from({ length: 16 }, () => '-o /dev/null http://10.0.0.2/bytes/300000').join(' ');
  // In the background: the daemon's debug lines fill its stdout pipe unless this process keeps reading it.
  const curl = ns.background(`curl -sS --fail --max-time 60 -H 'Connection: close' ${urls}`);
  assert.equal(await exitOf(curl, 90_000), 0, outputOf(curl));
  const shardsSeen = new Set<unknown>();
  await d.waitFor((l) => l.msg === 'cwnd' && shardsSeen.add(l.shard).size === 2);
  const traced = d.lines.filter((l) => l.msg === 'cwnd');
  for (const l of traced) {
    const c = l.cwnd as { port: number; cwnd: number; inflight: number };
    assert.equal(c.port, 80, 'the built-in server\'s connections');
    assert.ok(c.cwnd > 0 && c.inflight >= 0);
  }
  assert.equal(await d.stop(), 0);
});

test('--shards 2: the config\'s congestion modules load in every shard (net.ipv4.tcp_congestion_control names one), and on SIGHUP; a module that fails to load stops the daemon (78)', { skip, timeout: 120_000 }, async () => {
  const ns = new Netns('shardcc');
  namespaces.push(ns);
  // The daemon checks that root owns the module files and the directories above them.
  chmodSync(ns.dir, 0o711);
  const gentle = join(ns.dir, 'gentle.js');
  writeFileSync(gentle, `module.exports = { name: 'gentle', ssthresh(sk) { return Math.max(sk.cwnd - 1, 2); }, undoCwnd(sk) { return sk.cwnd; }, congAvoid(sk, acked) { if (sk.cwndLimited) sk.cwnd += 1; } };`, { mode: 0o644 });
  const late = join(ns.dir, 'late.js');
  writeFileSync(late, `module.exports = { name: 'late', ssthresh() { return 2; }, undoCwnd(sk) { return sk.cwnd; }, congAvoid() {} };`, { mode: 0o644 });
  const bad = join(ns.dir, 'bad.js');
  writeFileSync(bad, `module.exports = { name: 'syntax',`, { mode: 0o644 });
  const conf = join(ns.dir, 'tapstackd.json');
  const config = (modules: string[]) => writeFileSync(conf, JSON.stringify({ congestionModules: modules, sysctl: { 'net.ipv4.tcp_congestion_control': 'gentle' } }));
  const args = ['--config', conf, '--tap', 'tapsh', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--ipv6', 'fd00::2/64', '--host-ipv6', 'fd00::1/64', '--api', 'none', '--tap-lost', 'exit', '--shards', '2'];

  // A module that is not one: whichever shard finds it first stops the daemon, by key.
  config([bad]);
  const r = ns.sh(`${process.execPath} ${DAEMON} ${args.join(' ')}`, 60_000);
  assert.equal(r.status, 78, `exit status; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^tapstackd: config: congestionModules\[0\]: /m);

  config([gentle]);
  const d = await ns.startDaemon(args);
  const loadedIn = (name: string) => d.lines.filter((l) => l.msg === 'config: congestion module loaded' && l.module === name).map((l) => l.shard as number).sort();
  assert.deepEqual(loadedIn('gentle'), [0, 1], 'loaded in each shard (the sysctl naming it was accepted in each, or the daemon would have stopped)');
  await ns.kernelDadDone('tapsh');
  // Every connection the built-in server accepts runs the module (the default for new sockets).
  const got = fetch(ns, 40);
  assert.deepEqual([got.total, got.ok], [40, 40]);
  const line = await countersLine(d);
  const rows = line.shards as ShardRow[];
  assert.equal(rows.reduce((a, x) => a + (x.counters.TcpExt.TCPCongModuleFault ?? 0), 0), 0, 'no module fault');

  // SIGHUP adding a module: every shard loads it.
  config([gentle, late]);
  const before = d.lines.length;
  d.proc.kill('SIGHUP');
  const reloaded = await d.waitFor((l) => l.msg === 'reloaded' && d.lines.indexOf(l) >= before);
  assert.deepEqual(reloaded.failed, []);
  assert.ok((reloaded.applied as string[]).includes('congestionModules'));
  assert.deepEqual(loadedIn('late'), [0, 1]);
  assert.equal(await d.stop(), 0, `exit status; stderr: ${d.stderr}`);
});

test('--shards 2: the fault injection in every shard: each delays its frames both ways, fetches all complete, the counters carry each shard\'s and their sum', { skip, timeout: 120_000 }, async () => {
  const ns = new Netns('shardfault');
  namespaces.push(ns);
  const DELAY = 25;
  const d = await ns.startDaemon(['--tap', 'tapsh', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--ipv6', 'fd00::2/64', '--host-ipv6', 'fd00::1/64', '--api', 'none', '--tap-lost', 'exit', '--shards', '2', '--fault', `delay=${DELAY}ms`]);
  assert.equal(d.lines.find((l) => l.msg === 'ready')!.fault, `loss=0%,delay=${DELAY}ms,reorder=0%,duplicate=0%`);
  await ns.kernelDadDone('tapsh');
  // The delay both ways, whichever queue the echo lands on.
  const rtt = Number(/= ([\d.]+)\//.exec(ns.ok('ping -c 3 -i 0.2 -W 2 10.0.0.2'))?.[1]);
  assert.ok(rtt >= 2 * DELAY, `min RTT ${rtt} ms, ${DELAY} ms each way`);
  const got = fetch(ns, 40);
  assert.deepEqual([got.total, got.ok], [40, 40]);
  const line = await countersLine(d);
  const rows = line.shards as (ShardRow & { fault: { rx: Record<string, number>; tx: Record<string, number> } })[];
  const sum = line.fault as { rx: Record<string, number>; tx: Record<string, number> };
  for (const r of rows) {
    assert.ok(httpAccepted(r) > 0, `shard ${r.shard} served some fetches`);
    assert.ok(r.fault.rx.delayed > 0 && r.fault.tx.delayed > 0, `shard ${r.shard} delayed its frames: ${JSON.stringify(r.fault)}`);
    assert.equal(r.fault.rx.dropped + r.fault.tx.dropped, 0);
  }
  for (const dir of ['rx', 'tx'] as const) assert.equal(sum[dir].delayed, rows[0].fault[dir].delayed + rows[1].fault[dir].delayed, `${dir}: the sum`);
  assert.equal(await d.stop(), 0, `exit status; stderr: ${d.stderr}`);
});

test('--shards 2: one capture file for the daemon: every shard\'s frames in it, whole records, tcpdump -r reads it', { skip, timeout: 120_000 }, async () => {
  const ns = new Netns('shardpcap');
  namespaces.push(ns);
  const file = join(ns.dir, 'shards.pcap');
  const d = await ns.startDaemon(['--tap', 'tapsh', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--ipv6', 'fd00::2/64', '--host-ipv6', 'fd00::1/64', '--api', 'none', '--tap-lost', 'exit', '--shards', '2', '--pcap', file]);
  await ns.kernelDadDone('tapsh');
  const got = fetch(ns, 40);
  assert.deepEqual([got.total, got.ok], [40, 40]);
  const rows = (await countersLine(d)).shards as ShardRow[];
  for (const r of rows) assert.ok(httpAccepted(r) > 0, `shard ${r.shard} served some fetches: ${rows.map(httpAccepted)}`);
  // Each shard flushes its records as it stops.
  assert.equal(await d.stop(), 0, `exit status; stderr: ${d.stderr}`);
  const r = ns.sh(`tcpdump -nn -r ${file} 'tcp src port 80'`);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /truncated|bogus|error/i, 'every record whole');
  // Each served connection's SYN-ACK, from whichever shard served it. Not counted by client port: IPv4 and
  // IPv6 connections may take the same port number, and the kernel may reuse a port once its connection
  // closed (the stack keeps the TIME_WAIT); a retransmitted SYN-ACK only adds.
  const synacks = [...r.stdout.matchAll(/\.80 > [0-9a-f.:]+\.\d+: Flags \[S\.\]/g)].length;
  assert.ok(synacks >= 40, `${synacks} SYN-ACKs in the capture for 40 connections`);
});

/** Uid, Gid, Groups and the capability masks of every thread of a process, from /proc/PID/task/TID/status. */
function threadCreds(pid: number): Record<string, string>[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const out: Record<string, string> = {};
    for (const line of readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8').split('\n')) {
      const m = /^(Uid|Gid|Groups|CapPrm|CapEff|CapAmb):\s*(.*)$/.exec(line);
      if (m) out[m[1]] = m[2].trim().replace(/\s+/g, ' ');
    }
    return out;
  });
}
const NOBODY = { Uid: '65534 65534 65534 65534', Gid: '65534 65534 65534 65534', Groups: '', CapPrm: '0000000000000000', CapEff: '0000000000000000', CapAmb: '0000000000000000' };

test('--shards 2 with user/group: the drop once every queue is open and every shard runs; every thread then nobody with no capabilities; traffic and SIGHUP still work in every shard', { skip, timeout: 120_000 }, async () => {
  const ns = new Netns('sharduser');
  namespaces.push(ns);
  // nobody reads the config again on SIGHUP.
  chmodSync(ns.dir, 0o711);
  const conf = join(ns.dir, 'tapstackd.json');
  writeFileSync(conf, JSON.stringify({ user: 'nobody', group: 'nogroup', sysctl: { 'net.ipv4.tcp_timestamps': 0 } }), { mode: 0o644 });
  const d = await ns.startDaemon(['--config', conf, '--tap', 'tapsh', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--ipv6', 'fd00::2/64', '--host-ipv6', 'fd00::1/64', '--api', 'none', '--tap-lost', 'exit', '--shards', '2']);
  const drop = d.lines.findIndex((l) => String(l.msg).startsWith('dropped privileges'));
  const ready = d.lines.findIndex((l) => l.msg === 'ready');
  assert.ok(drop >= 0 && drop < ready, `the drop comes before ready: ${JSON.stringify(d.lines.slice(0, 12))}`);
  const creds = threadCreds(d.proc.pid!);
  assert.ok(creds.length > 2, `${creds.length} threads`);
  for (const c of creds) assert.deepEqual(c, NOBODY, 'every thread (the shards\' too): nobody, no capabilities');
  // The kernel side was configured as root, before the drop; both queues work after it.
  assert.equal(ns.ok('ls /sys/class/net/tapsh/queues | grep -c ^rx-').trim(), '2');
  await ns.kernelDadDone('tapsh');
  assert.deepEqual(fetch(ns, 40), { total: 40, ok: 40, ts: 0 });
  const rows = (await countersLine(d)).shards as ShardRow[];
  for (const r of rows) assert.ok(httpAccepted(r) > 0, `shard ${r.shard} served some fetches: ${rows.map(httpAccepted)}`);
  // SIGHUP after the drop: the file read as nobody, the sysctl applied in every shard.
  writeFileSync(conf, JSON.stringify({ user: 'nobody', group: 'nogroup', sysctl: { 'net.ipv4.tcp_timestamps': 1 } }));
  const before = d.lines.length;
  d.proc.kill('SIGHUP');
  const reloaded = await d.waitFor((l) => l.msg === 'reloaded' && d.lines.indexOf(l) >= before);
  assert.deepEqual(reloaded.failed, []);
  assert.deepEqual(fetch(ns, 20), { total: 20, ok: 20, ts: 20 });
  assert.equal(await d.stop(), 0, `exit status; stderr: ${d.stderr}`);
});

test('--shards 2 with tapLost "reattach": the TAP deleted, every shard loses its carrier; a single-queue one in its place is refused; once it comes back multi-queue every queue re-attaches, the kernel side is configured again and both shards serve', { skip, timeout: 120_000 }, async () => {
  const ns = new Netns('shardlost');
  namespaces.push(ns);
  const d = await ns.startDaemon(['--tap', 'tapsh', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--ipv6', 'fd00::2/64', '--host-ipv6', 'fd00::1/64', '--api', 'none', '--shards', '2']);
  await ns.kernelDadDone('tapsh');
  assert.deepEqual(fetch(ns, 40), { total: 40, ok: 40, ts: 40 });
  const before = ((await countersLine(d)).shards as ShardRow[]).map(httpAccepted);

  let mark = d.lines.length;
  ns.ok('ip link del tapsh');
  await d.waitFor((l) => l.msg === 'TAP lost: the link is down until the interface comes back' && d.lines.indexOf(l) >= mark);
  // A TAP without IFF_MULTI_QUEUE takes no second queue: the kernel refuses, the daemon keeps waiting.
  mark = d.lines.length;
  ns.ok('ip tuntap add dev tapsh mode tap');
  const refused = await d.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('cannot attach to tapsh yet') && d.lines.indexOf(l) >= mark);
  const failed = refused.failed as string[];
  assert.ok(failed.length >= 1 && failed.every((f) => /^shard \d: /.test(f)), `the kernel refused a queue: ${JSON.stringify(failed)}`);
  ns.ok('ip link del tapsh');
  mark = d.lines.length;
  ns.ok('ip tuntap add dev tapsh mode tap multi_queue');
  const back = await d.waitFor((l) => l.msg === 'TAP back: re-attached' && d.lines.indexOf(l) >= mark);
  assert.equal(back.reattached, 1);
  assert.equal(ns.ok('ls /sys/class/net/tapsh/queues | grep -c ^rx-').trim(), '2', 'both queues attached again');
  // The kernel side configured again by the daemon (root): its addresses, the link up.
  assert.match(ns.ok('ip -4 addr show dev tapsh'), /inet 10\.0\.0\.1\/24/);
  await ns.kernelDadDone('tapsh');
  assert.deepEqual(fetch(ns, 40), { total: 40, ok: 40, ts: 40 });
  const line = await countersLine(d);
  const after = (line.shards as ShardRow[]).map(httpAccepted);
  assert.equal(d.lines.find((l) => l.msg === 'ready')!.steering, 'ports');
  assert.equal(d.lines.find((l) => String(l.msg).includes('steering program was refused')), undefined, 'the steering program set again on the TAP that came back');
  for (let i = 0; i < 2; i++) assert.ok(after[i] > before[i], `shard ${i} served fetches after the re-attach: ${before} -> ${after}`);
  assert.deepEqual((line.counters as Record<string, unknown>).Tap, { attached: 1, lost: 1, reattached: 1 });
  assert.equal(await d.stop(), 0, `exit status; stderr: ${d.stderr}`);
});

