/**
 * IPv6 end to end: tapstackd on a TAP inside a network namespace, the
 * kernel on the other side with fd00::1/64 (set by the daemon, --host-ipv6)
 * and its own DAD, the stack with fd00::2/64 and its EUI-64 link-local
 * address. The kernel pings both (also with 3000-byte payloads: fragments
 * both ways), resolves the stack through NDP, and a capture of it all has
 * nothing tshark calls malformed. In a second namespace the kernel side
 * already holds the stack's address: the stack's DAD finds it, logs it,
 * and never answers for it or uses it.
 *
 * Every packet stays inside the namespaces this file creates.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Netns, ROOT, exitOf, outputOf, requireIntegration, waitLine, type Daemon, type LogLine } from './netns.js';

const skip = requireIntegration(['ping', 'tcpdump', 'tshark']);

const STACK_MAC = '02:74:73:00:00:02';
const STACK_LL = 'fe80::74:73ff:fe00:2';
const BAD_FILTER = '_ws.malformed || _ws.expert.severity == error || icmpv6.checksum.status == "Bad"';

type Counters = Record<string, Record<string, unknown>>;

let ns: Netns;
let daemon: Daemon;
let stackPcap: string;

function show(r: { status: number | null; stdout: string; stderr: string }): string {
  return `exit ${r.status}\n[stdout]\n${r.stdout}\n[stderr]\n${r.stderr}`;
}

function get(c: Counters, path: string): number {
  let v: unknown = c;
  for (const k of path.split('.')) v = v === undefined || v === null ? undefined : (v as Record<string, unknown>)[k];
  if (typeof v === 'number') return v;
  // Icmp6 lists the per-type counts (InTypeN/OutTypeN) only when non-zero.
  if (v === undefined && /^Icmp6\.(In|Out)Type\d+$/.test(path)) return 0;
  throw new Error(`no counter ${path} in ${JSON.stringify(c[path.split('.')[0]])}`);
}

function deltas(a: Counters, b: Counters, paths: string[]): Record<string, number> {
  const o: Record<string, number> = {};
  for (const p of paths) o[p] = get(b, p) - get(a, p);
  return o;
}

/** The counters once `want` (path -> minimum delta) is reached, or the last ones read after the wait's bound. */
function countersAfter(d: Daemon, base: Counters, want: Record<string, number>): Promise<Counters> {
  return d.countersWhen((c) => Object.entries(want).every(([p, n]) => get(c, p) - get(base, p) >= n));
}

function assertAllAnswered(r: { status: number | null; stdout: string; stderr: string }, n: number, what: string): void {
  assert.equal(r.status, 0, `${what}: ping failed\n${show(r)}`);
  assert.match(r.stdout, new RegExp(`\\b${n} packets transmitted, ${n} received\\b`), `${what}: not all answered\n${show(r)}`);
}

const ready = (addr: string) => (l: LogLine) => l.msg === 'IPv6 address ready' && l.addr === addr;

before(async () => {
  if (skip) return;
  ns = new Netns('ip6');
  stackPcap = join(ns.dir, 'stack.pcap');
  daemon = await ns.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--ipv6', 'fd00::2/64', '--host-ipv6', 'fd00::1/64', '--pcap', stackPcap]);
  await daemon.waitFor(ready('fd00::2'));
  await daemon.waitFor(ready(STACK_LL));
  await ns.kernelDadDone('tap0');
});

after(() => {
  if (daemon && daemon.proc.exitCode === null && daemon.proc.signalCode === null) daemon.proc.kill('SIGKILL');
  ns?.destroy();
});

test('the daemon sets the kernel side\'s IPv6 address and reports its own', { skip }, async () => {
  const addrs = ns.ok('ip -6 addr show dev tap0');
  assert.match(addrs, /inet6 fd00::1\/64 scope global/, addrs);
  const readyLine = daemon.lines.find((l) => l.msg === 'ready')!;
  assert.deepEqual(readyLine.ipv6, [`${STACK_LL}/64`, 'fd00::2/64']);
  assert.equal(readyLine.hostIpv6, 'fd00::1/64');
});

test('ping -6 the global address: 3 echo requests all answered; the kernel learned the stack through NDP', { skip }, async () => {
  const c0 = await daemon.counters();
  const r = ns.sh('ping -6 -c 3 -i 0.2 -W 2 fd00::2', 20_000);
  assertAllAnswered(r, 3, 'ping -6 fd00::2');
  const c1 = await countersAfter(daemon, c0, { 'Icmp6.OutEchoReplies': 3 });
  assert.deepEqual(deltas(c0, c1, ['Icmp6.InEchos', 'Icmp6.OutEchoReplies', 'Icmp6.InErrors', 'Ip6.InHdrErrors', 'Ip6.InAddrErrors']), {
    'Icmp6.InEchos': 3,
    'Icmp6.OutEchoReplies': 3,
    'Icmp6.InErrors': 0,
    'Ip6.InHdrErrors': 0,
    'Ip6.InAddrErrors': 0,
  });
  const neigh = ns.ok('ip -6 neigh show dev tap0');
  assert.match(neigh, new RegExp(`fd00::2 lladdr ${STACK_MAC}`), neigh);
  assert.ok(get(c1, 'Icmp6.InNeighborSolicits') >= 1, 'the kernel solicited the stack');
  assert.ok(get(c1, 'Icmp6.OutNeighborAdvertisements') >= 1, 'and the stack advertised');
});

test('tapstack stats shows the Ip6/Icmp6 counters under their Linux names', { skip }, () => {
  const api = String(daemon.lines.find((l) => l.msg === 'ready')!.api);
  const r = ns.sh(`${process.execPath} ${join(ROOT, 'dist', 'src', 'cli', 'main.js')} --api ${api} stats 6`, 20_000);
  assert.equal(r.status, 0, show(r));
  for (const name of ['Ip6InReceives', 'Ip6InHdrErrors', 'Ip6InAddrErrors', 'Ip6InUnknownProtos', 'Ip6InTruncatedPkts', 'Ip6InDelivers', 'Ip6OutRequests', 'Ip6ReasmOKs', 'Icmp6InEchos', 'Icmp6OutEchoReplies', 'Icmp6InType128']) {
    assert.match(r.stdout, new RegExp(`^${name}\\s+\\d+`, 'm'), `${name} in:\n${r.stdout}`);
  }
  assert.ok(Number(/^Ip6InReceives\s+(\d+)/m.exec(r.stdout)![1]) > 0);
});

test('ping -6 the link-local address (%tap0): answered from it', { skip }, async () => {
  const c0 = await daemon.counters();
  const r = ns.sh(`ping -6 -c 3 -i 0.2 -W 2 ${STACK_LL}%tap0`, 20_000);
  assertAllAnswered(r, 3, `ping -6 ${STACK_LL}%tap0`);
  assert.match(r.stdout, new RegExp(`from ${STACK_LL}%tap0`), r.stdout);
  await countersAfter(daemon, c0, { 'Icmp6.OutEchoReplies': 3 });
});

test('ping -6 -s 3000: fragments reassembled on the way in and created on the way out', { skip }, async () => {
  const c0 = await daemon.counters();
  const r = ns.sh('ping -6 -c 3 -s 3000 -W 2 fd00::2', 20_000);
  assertAllAnswered(r, 3, 'ping -6 -s 3000');
  const c1 = await countersAfter(daemon, c0, { 'Ip6.FragOKs': 3 });
  // 3008-byte ICMPv6 messages over a 1500 MTU: 3 fragments each (1448 + 1448 + 112), both ways.
  assert.deepEqual(deltas(c0, c1, ['Ip6.ReasmReqds', 'Ip6.ReasmOKs', 'Ip6.ReasmFails', 'Ip6.FragOKs', 'Ip6.FragCreates', 'Ip6.FragFails', 'Icmp6.OutEchoReplies']), {
    'Ip6.ReasmReqds': 9,
    'Ip6.ReasmOKs': 3,
    'Ip6.ReasmFails': 0,
    'Ip6.FragOKs': 3,
    'Ip6.FragCreates': 9,
    'Ip6.FragFails': 0,
    'Icmp6.OutEchoReplies': 3,
  });
  assert.equal(get(c1, 'Frag6.queues'), 0, `reassembly queues left behind: ${JSON.stringify(c1.Frag6)}`);
});

test('capture: tcpdump on tap0 + tshark find the replies, fragments, NDP and MLD, and nothing malformed', { skip }, async () => {
  const file = join(ns.dir, 'tap0-v6.pcap');
  // Start from an unknown neighbour so the capture holds the NDP exchange too.
  ns.sh('ip -6 neigh flush dev tap0');
  const td = ns.background(`tcpdump -n -i tap0 -w ${file} -U -Z root --immediate-mode ip6`);
  try {
    await waitLine(td, /listening on tap0/, 'tcpdump to start');
    assertAllAnswered(ns.sh('ping -6 -c 2 -i 0.2 -W 2 fd00::2', 20_000), 2, 'ping during capture');
    assertAllAnswered(ns.sh('ping -6 -c 2 -i 0.2 -s 3000 -W 2 fd00::2', 20_000), 2, 'ping -s 3000 during capture');
    assertAllAnswered(ns.sh(`ping -6 -c 1 -W 2 ${STACK_LL}%tap0`, 20_000), 1, 'link-local ping during capture');
    // The last frame sent is the stack's link-local echo reply: once it is in the file, all are.
    await ns.pcapHolds(file, `ether src ${STACK_MAC} and src host ${STACK_LL} and icmp6 and ip6[40] == 129`, 1, 'the link-local echo reply');
  } finally {
    td.kill('SIGINT');
  }
  assert.equal(await exitOf(td), 0, `tcpdump exit status; stderr: ${outputOf(td)}`);
  const lines = (filter: string) => {
    const r = ns.sh(`tshark -n -r ${file} -Y '${filter}' -T fields -e frame.number -e _ws.col.Info`, 30_000);
    assert.equal(r.status, 0, `tshark -Y '${filter}' failed\n${show(r)}`);
    return r.stdout.split('\n').filter((l) => l.trim() !== '');
  };
  const listing = `\n=== the capture:\n${ns.sh(`tshark -n -r ${file}`, 30_000).stdout}`;
  assert.deepEqual(lines(BAD_FILTER), [], `tshark flags frames in the capture${listing}`);
  assert.equal(lines(`icmpv6.type == 129 && eth.src == ${STACK_MAC}`).length, 5, `echo replies${listing}`);
  assert.equal(lines(`eth.src == ${STACK_MAC} && ipv6.nxt == 44`).length, 6, `reply fragments from the stack${listing}`);
  assert.ok(lines(`icmpv6.type == 136 && eth.src == ${STACK_MAC} && icmpv6.nd.na.flag.s == 1`).length >= 1, `a solicited NA from the stack${listing}`);
  assert.equal(lines(`eth.src == ${STACK_MAC} && (ipv6.plen > 1460 || frame.len > 1514)`).length, 0, `frames over the MTU${listing}`);
  // Everything the stack sent in its own pcap since start (DAD, MLD, RS included) is well formed too.
  const own = ns.sh(`tshark -n -r ${stackPcap} -Y '${BAD_FILTER}' -T fields -e frame.number -e _ws.col.Info`, 30_000);
  assert.equal(own.status, 0, show(own));
  assert.equal(own.stdout.trim(), '', `malformed frames in the daemon's pcap:\n${own.stdout}`);
  const mld = ns.sh(`tshark -n -r ${stackPcap} -Y 'icmpv6.type == 143 && eth.src == ${STACK_MAC}' -T fields -e icmpv6.mldr.mar.multicast_address`, 30_000);
  assert.match(mld.stdout, /ff02::1:ff00:2/, `MLDv2 reports for the solicited-node group:\n${mld.stdout}`);
  const dad = ns.sh(`tshark -n -r ${stackPcap} -Y 'icmpv6.type == 135 && ipv6.src == ::' -T fields -e icmpv6.nd.ns.target_address`, 30_000);
  assert.match(dad.stdout, /fd00::2/, `a DAD probe for fd00::2:\n${dad.stdout}`);
});

test('DAD conflict: the kernel side already holds fd00::2; the daemon logs it, marks it dadfailed, never answers for it or uses it', { skip }, async () => {
  const ns2 = new Netns('ip6dad');
  try {
    // The kernel side owns the stack's address before the daemon starts (nodad: it is
    // valid at once, so it defends it when the stack probes).
    ns2.ok('ip tuntap add dev tap1 mode tap && ip link set tap1 up && ip -6 addr add fd00::2/64 dev tap1 nodad');
    const pcap = join(ns2.dir, 'dad.pcap');
    const d = await ns2.startDaemon(['--tap', 'tap1', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--ipv6', 'fd00::2/64', '--host-ipv6', 'fd00::1/64', '--pcap', pcap]);
    try {
      const warn = await d.waitFor((l) => l.level === 40 && l.addr === 'fd00::2');
      assert.match(String(warn.msg), /duplicate address fd00::2/);
      await d.waitFor(ready(STACK_LL));
      await ns2.kernelDadDone('tap1');
      const before = d.lines.length;
      d.proc.kill('SIGUSR1');
      const dump = await d.waitFor((l) => l.msg === 'counters' && d.lines.indexOf(l) >= before);
      const addrs = (dump.ipv6 as { addresses: { addr: string; flags: string[] }[] }).addresses;
      assert.deepEqual(addrs.find((a) => a.addr === 'fd00::2')?.flags, ['tentative', 'dadfailed'], JSON.stringify(addrs));
      assert.ok(!d.lines.some((l) => l.msg === 'IPv6 address ready' && l.addr === 'fd00::2'), 'fd00::2 never became ready');
      // The stack still works on its link-local address.
      assertAllAnswered(ns2.sh(`ping -6 -c 2 -i 0.2 -W 2 ${STACK_LL}%tap1`, 20_000), 2, 'link-local ping with fd00::2 dadfailed');
      // The daemon's pcap is written in batches: read it once it holds the stack's last frames (those replies).
      await ns2.pcapHolds(pcap, `ether src ${STACK_MAC} and icmp6 and ip6[40] == 129`, 2, "the link-local echo replies in the daemon's pcap");
      // Nothing from the stack's MAC ever used fd00::2 as a source or advertised it.
      const r = ns2.sh(`tshark -n -r ${pcap} -Y 'eth.src == ${STACK_MAC} && (ipv6.src == fd00::2 || icmpv6.nd.na.target_address == fd00::2)' -T fields -e frame.number -e _ws.col.Info`, 30_000);
      assert.equal(r.status, 0, show(r));
      assert.equal(r.stdout.trim(), '', `the stack used or advertised fd00::2:\n${r.stdout}`);
      const na = ns2.sh(`tshark -n -r ${pcap} -Y 'icmpv6.type == 136 && icmpv6.nd.na.target_address == fd00::2 && eth.src != ${STACK_MAC}' -T fields -e frame.number`, 30_000);
      assert.notEqual(na.stdout.trim(), '', 'the kernel defended fd00::2 with an advertisement');
    } finally {
      await d.stop();
    }
  } finally {
    ns2.destroy();
  }
});

test('IPv6 disabled on the kernel side (disable_ipv6): the daemon warns and runs; IPv4 still answered', { skip }, async () => {
  const ns3 = new Netns('ip6off');
  try {
    ns3.ok('sysctl -qw net.ipv6.conf.default.disable_ipv6=1');
    const d = await ns3.startDaemon(['--tap', 'tap0']);
    try {
      const w = d.lines.find((l) => l.level === 40 && /host IPv6 address/.test(String(l.msg)));
      assert.ok(w, JSON.stringify(d.lines));
      assert.equal(w.code, 'EACCES');
      const r = ns3.sh('ping -c 2 -i 0.2 -W 2 10.0.0.2', 20_000);
      assertAllAnswered(r, 2, 'IPv4 ping with IPv6 off on the kernel side');
    } finally {
      await d.stop();
    }
  } finally {
    ns3.destroy();
  }
});
