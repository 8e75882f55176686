/**
 * The foundation issue, end to end: tapstackd on a TAP inside a network
 * namespace answers the kernel's ping (small, fragmented both ways, 65000
 * bytes) and arping, what it sends is well formed on the wire (tcpdump +
 * tshark), its own pcap is readable, malformed frames are dropped with the
 * counters Linux would move, and it exits cleanly on SIGTERM.
 *
 * Every packet stays inside the namespace this file creates.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Netns, ROOT, WAIT_MS, exitOf, outputOf, requireIntegration, waitFor, waitLine, type Daemon } from './netns.js';

const skip = requireIntegration(['ping', 'arping', 'tcpdump', 'tshark', 'python3']);

const STACK_MAC = '02:74:73:00:00:02';
const OTHER_MAC = '02:00:5e:10:20:30';
const INJECT = join(ROOT, 'test', 'integration', 'inject.py');
/** Anything tshark considers broken: malformed, an expert error, a bad IP or ICMP checksum. */
const BAD_FILTER = '_ws.malformed || _ws.expert.severity == error || ip.checksum.status == "Bad" || icmp.checksum.status == "Bad"';

type Counters = Record<string, Record<string, unknown>>;

let ns: Netns;
let daemon: Daemon;
let stackPcap: string;
let hostMac: string;
/** The tshark -o options this tshark knows (ICMP has no check_checksum pref on some versions). */
let tsharkChecks = '';
/** Bad frames injected, by case, for the check of the daemon's own pcap. */
const injected: Record<string, number> = {};

function show(r: { status: number | null; stdout: string; stderr: string }): string {
  return `exit ${r.status}\n[stdout]\n${r.stdout}\n[stderr]\n${r.stderr}`;
}

/**
 * A counter by path, "Ip.InHdrErrors" or "Link.tap0.rx_length_errors".
 * IcmpMsg lists only non-zero types, so an absent InTypeN/OutTypeN is 0;
 * any other absent name is a typo here or a renamed counter: it throws.
 */
function get(c: Counters, path: string): number {
  let v: unknown = c;
  for (const k of path.split('.')) v = v === undefined || v === null ? undefined : (v as Record<string, unknown>)[k];
  if (typeof v === 'number') return v;
  if (v === undefined && path.startsWith('IcmpMsg.') && c.IcmpMsg) return 0;
  throw new Error(`no counter ${path} in ${JSON.stringify(c[path.split('.')[0]])}`);
}

function deltas(before: Counters, after: Counters, paths: string[]): Record<string, number> {
  const o: Record<string, number> = {};
  for (const p of paths) o[p] = get(after, p) - get(before, p);
  return o;
}

/** Counters once `want` (path -> minimum delta from `base`) is reached, or the last ones read after the wait's bound. */
function countersAfter(base: Counters, want: Record<string, number>): Promise<Counters> {
  return daemon.countersWhen((c) => Object.entries(want).every(([p, n]) => get(c, p) - get(base, p) >= n));
}

/** Assert exact deltas, with every checked delta in the message. */
function assertDeltas(before: Counters, after: Counters, expected: Record<string, number>, what: string): void {
  const got = deltas(before, after, Object.keys(expected));
  assert.deepEqual(got, expected, `${what}: counter deltas (got vs expected)`);
}

function ping(args: string, timeoutMs = 20_000): { status: number | null; stdout: string; stderr: string } {
  return ns.sh(`ping ${args} 10.0.0.2`, timeoutMs);
}

function assertAllAnswered(r: { status: number | null; stdout: string; stderr: string }, n: number, what: string): void {
  assert.equal(r.status, 0, `${what}: ping failed\n${show(r)}`);
  assert.match(r.stdout, new RegExp(`\\b${n} packets transmitted, ${n} received\\b`), `${what}: not all answered\n${show(r)}`);
}

/** tshark -r FILE -Y FILTER, one line per matching frame (number and summary); throws if tshark fails. */
function tsharkLines(file: string, filter: string, extra = ''): string[] {
  const r = ns.sh(`tshark -n -r ${file} ${tsharkChecks} ${extra} -Y '${filter}' -T fields -e frame.number -e _ws.col.Info`, 30_000);
  assert.equal(r.status, 0, `tshark -Y '${filter}' failed\n${show(r)}`);
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

before(async () => {
  if (skip) return;
  ns = new Netns('fnd');
  stackPcap = join(ns.dir, 'stack.pcap');
  daemon = await ns.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--gateway', '10.0.0.1', '--pcap', stackPcap]);
  hostMac = ns.ok('cat /sys/class/net/tap0/address').trim();
  assert.match(hostMac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  const prefs = ns.sh('tshark -G defaultprefs', 30_000).stdout;
  tsharkChecks = ['ip', 'icmp']
    .filter((p) => new RegExp(`^#?${p}\\.check_checksum:`, 'm').test(prefs))
    .map((p) => `-o ${p}.check_checksum:TRUE`)
    .join(' ');
  assert.match(tsharkChecks, /ip\.check_checksum/, 'this tshark has no ip.check_checksum preference');
});

after(() => {
  if (daemon && daemon.proc.exitCode === null && daemon.proc.signalCode === null) daemon.proc.kill('SIGKILL');
  ns?.destroy();
});

test('ping: 5 echo requests from the kernel side are all answered', { skip }, async () => {
  const c0 = await daemon.counters();
  const r = ping('-c 5 -i 0.2 -W 2');
  assertAllAnswered(r, 5, 'ping -c 5');
  assert.match(r.stdout, /5 received/);
  const c1 = await countersAfter(c0, { 'Icmp.OutEchoReps': 5 });
  assertDeltas(c0, c1, { 'Icmp.InEchos': 5, 'Icmp.OutEchoReps': 5, 'IcmpMsg.InType8': 5, 'IcmpMsg.OutType0': 5, 'Icmp.InErrors': 0, 'Ip.InHdrErrors': 0 }, 'ping -c 5');
});

test('ping -s 4000: fragments reassembled on the way in and created on the way out', { skip }, async () => {
  const c0 = await daemon.counters();
  const r = ping('-c 3 -s 4000 -W 2');
  assertAllAnswered(r, 3, 'ping -s 4000');
  const c1 = await countersAfter(c0, { 'Ip.FragOKs': 3 });
  // 4028-byte datagrams over a 1500 MTU: 3 fragments each, both ways.
  assertDeltas(
    c0,
    c1,
    { 'Ip.ReasmReqds': 9, 'Ip.ReasmOKs': 3, 'Ip.ReasmFails': 0, 'Ip.FragOKs': 3, 'Ip.FragCreates': 9, 'Ip.FragFails': 0, 'Icmp.OutEchoReps': 3 },
    'ping -s 4000',
  );
  assert.ok(get(c1, 'Ip.ReasmOKs') >= 3 && get(c1, 'Ip.FragOKs') >= 3 && get(c1, 'Ip.FragCreates') >= 9, JSON.stringify(c1.Ip));
  assert.equal(get(c1, 'Frag.queues'), 0, `reassembly queues left behind: ${JSON.stringify(c1.Frag)}`);
});

test('ping -s 65000: the largest echo, 44 fragments each way, is answered', { skip }, async () => {
  const c0 = await daemon.counters();
  const r = ping('-c 2 -s 65000 -W 3', 30_000);
  assertAllAnswered(r, 2, 'ping -s 65000');
  const c1 = await countersAfter(c0, { 'Ip.FragOKs': 2 });
  assertDeltas(c0, c1, { 'Ip.ReasmOKs': 2, 'Ip.ReasmFails': 0, 'Ip.FragOKs': 2, 'Ip.ReasmReqds': 88, 'Ip.FragCreates': 88, 'Icmp.OutEchoReps': 2 }, 'ping -s 65000');
  assert.equal(get(c1, 'Frag.queues'), 0, `reassembly queues left behind: ${JSON.stringify(c1.Frag)}`);
});

test('arping: the stack answers ARP requests with its MAC', { skip }, async () => {
  // iputils arping takes -I IFACE; Thomas Habets' arping (Debian's "arping" package) takes -i.
  const iputils = /iputils/i.test(ns.sh('arping -V 2>&1', 5_000).stdout);
  const cmd = `arping -c 3 -w 5 ${iputils ? '-I' : '-i'} tap0 10.0.0.2`;
  const c0 = await daemon.counters();
  const r = ns.sh(cmd, 15_000);
  assert.equal(r.status, 0, `${cmd} failed\n${show(r)}`);
  const replies = r.stdout.split('\n').filter((l) => l.toLowerCase().includes(STACK_MAC));
  assert.equal(replies.length, 3, `${cmd}: expected 3 replies from ${STACK_MAC}\n${show(r)}`);
  const c1 = await daemon.counters();
  const probes = get(c1, 'Arp.rcv_probes_mcast') + get(c1, 'Arp.rcv_probes_ucast') - get(c0, 'Arp.rcv_probes_mcast') - get(c0, 'Arp.rcv_probes_ucast');
  assert.ok(probes >= 3, `ARP requests counted by the stack: ${probes}; ${JSON.stringify(c1.Arp)}`);
  assert.equal(get(c1, 'Drop.ARP_INVALID') - get(c0, 'Drop.ARP_INVALID'), 0, 'valid ARP requests counted as invalid');
});

test('capture: tcpdump on tap0 + tshark find replies and nothing malformed', { skip }, async () => {
  const file = join(ns.dir, 'tap0.pcap');
  // --immediate-mode: without it, packets wait in libpcap's TPACKET_V3 ring
  // for the block timeout, and the ones still there at SIGINT are lost.
  const td = ns.background(`tcpdump -n -i tap0 -w ${file} -U -Z root --immediate-mode`);
  try {
    await waitLine(td, /listening on tap0/, 'tcpdump to start');
    assertAllAnswered(ping('-c 3 -i 0.2 -W 2'), 3, 'ping during capture');
    assertAllAnswered(ping('-c 2 -i 0.2 -s 4000 -W 2'), 2, 'ping -s 4000 during capture');
    // The last frames sent are the stack's: once its 3 replies and 6 reply fragments are in the file, all are.
    await ns.pcapHolds(file, `ether src ${STACK_MAC} and ip`, 9, "the stack's replies");
  } finally {
    td.kill('SIGINT');
  }
  const code = await exitOf(td);
  const tdErr = outputOf(td);
  assert.equal(code, 0, `tcpdump exit status; stderr: ${tdErr}`);

  const all = ns.sh(`tshark -n -r ${file} ${tsharkChecks}`, 30_000);
  const listing = `\n=== tcpdump: ${tdErr}\n=== the capture (tshark -r):\n${show(all)}`;
  const bad = tsharkLines(file, BAD_FILTER);
  assert.deepEqual(bad, [], `tshark flags frames in the tap0 capture:\n${bad.join('\n')}${listing}`);
  const replies = tsharkLines(file, `icmp.type == 0 && eth.src == ${STACK_MAC} && ip.src == 10.0.0.2 && ip.dst == 10.0.0.1`);
  assert.equal(replies.length, 5, `echo replies in the capture (reassembled ones count once):\n${replies.join('\n')}${listing}`);
  const requests = tsharkLines(file, 'icmp.type == 8');
  assert.equal(requests.length, 5, `echo requests in the capture:\n${requests.join('\n')}${listing}`);
  // The two 4008-byte replies leave as 3 fragments each: 2 with MF, 1 at an offset.
  const frags = tsharkLines(file, `eth.src == ${STACK_MAC} && (ip.flags.mf == 1 || ip.frag_offset > 0)`);
  assert.equal(frags.length, 6, `reply fragments from the stack:\n${frags.join('\n')}${listing}`);
  const big = tsharkLines(file, `eth.src == ${STACK_MAC} && (ip.len > 1500 || frame.len > 1514)`);
  assert.equal(big.length, 0, `the stack sent frames over the 1500 MTU:\n${big.join('\n')}${listing}`);
});

interface BadCase {
  name: string;
  inject: string;
  count: number;
  dst?: string;
  /** Exact deltas; the ones > 0 are waited for. */
  expect: Record<string, number>;
}

const BAD_CASES: BadCase[] = [
  {
    name: '(a) IPv4 header checksum wrong',
    inject: 'bad-ip-csum',
    count: 4,
    expect: { 'Ip.InReceives': 4, 'Ip.InHdrErrors': 4, 'IpExt.InCsumErrors': 4, 'Drop.IP_CSUM': 4, 'Ip.InDelivers': 0, 'Icmp.InMsgs': 0 },
  },
  {
    name: '(b) truncated: ethertype IPv4 with 10 bytes of IP',
    inject: 'truncated-ip',
    count: 3,
    expect: { 'Ip.InReceives': 3, 'Ip.InHdrErrors': 3, 'Drop.PKT_TOO_SMALL': 3, 'IpExt.InCsumErrors': 0, 'Ip.InDelivers': 0 },
  },
  {
    name: '(c) total length larger than the frame',
    inject: 'bogus-totlen',
    count: 3,
    expect: { 'Ip.InReceives': 3, 'IpExt.InTruncatedPkts': 3, 'Drop.PKT_TOO_SMALL': 3, 'Ip.InHdrErrors': 0, 'Ip.InDelivers': 0 },
  },
  {
    name: '(d1) IHL 4 (< 5 words)',
    inject: 'ihl-lt-5',
    count: 3,
    expect: { 'Ip.InReceives': 3, 'Ip.InHdrErrors': 3, 'Drop.IP_INHDR': 3, 'IpExt.InCsumErrors': 0, 'Ip.InDelivers': 0 },
  },
  {
    name: '(d2) version 6 in an IPv4-ethertype frame',
    inject: 'version-6',
    count: 3,
    expect: { 'Ip.InReceives': 3, 'Ip.InHdrErrors': 3, 'Drop.IP_INHDR': 3, 'IpExt.InCsumErrors': 0, 'Ip.InDelivers': 0 },
  },
  {
    name: '(e) ICMP echo with a bad ICMP checksum',
    inject: 'bad-icmp-csum',
    count: 3,
    expect: {
      'Ip.InReceives': 3,
      'Ip.InDelivers': 3,
      'Icmp.InMsgs': 3,
      'Icmp.InCsumErrors': 3,
      'Icmp.InErrors': 3,
      'Drop.ICMP_CSUM': 3,
      'Icmp.InEchos': 0,
      'Icmp.OutEchoReps': 0,
    },
  },
  {
    name: '(g) unicast to another MAC',
    inject: 'otherhost',
    count: 3,
    dst: OTHER_MAC,
    expect: { 'Link.tap0.rx_otherhost_dropped': 3, 'Ip.InReceives': 0, 'Icmp.InMsgs': 0, 'Icmp.OutEchoReps': 0 },
  },
  {
    name: '(h) ARP with hardware length 7',
    inject: 'arp-hlen-7',
    count: 3,
    expect: { 'Drop.ARP_INVALID': 3, 'Arp.rcv_probes_ucast': 0, 'Arp.rcv_probes_mcast': 0 },
  },
  {
    name: '(i) UDP to a closed port, valid checksum',
    inject: 'udp-closed',
    count: 3,
    // 3 is inside the per-destination burst of 6: no rate limiting yet.
    expect: {
      'Ip.InDelivers': 3,
      'Udp.NoPorts': 3,
      'Udp.InErrors': 0,
      'Udp.InCsumErrors': 0,
      'Drop.NO_SOCKET': 3,
      'Icmp.OutDestUnreachs': 3,
      'IcmpMsg.OutType3': 3,
      'Icmp.OutRateLimitHost': 0,
      'Icmp.OutRateLimitGlobal': 0,
    },
  },
  {
    name: '(j) UDP with a bad checksum',
    inject: 'udp-bad-csum',
    count: 3,
    expect: { 'Udp.InCsumErrors': 3, 'Udp.InErrors': 3, 'Drop.UDP_CSUM': 3, 'Udp.NoPorts': 0, 'Icmp.OutDestUnreachs': 0 },
  },
];

function inject(kind: string, count: number, dst?: string): { status: number | null; stdout: string; stderr: string } {
  return ns.sh(`python3 ${INJECT} tap0 ${kind} ${count}${dst ? ` ${dst}` : ''}`, 10_000);
}

/** The kernel's own ICMP InDestUnreachs (/proc/net/snmp of the namespace). */
function kernelInDestUnreachs(): number {
  const lines = ns.ok('cat /proc/net/snmp').split('\n').filter((l) => l.startsWith('Icmp:'));
  const names = lines[0].split(/\s+/);
  const values = lines[1].split(/\s+/);
  const i = names.indexOf('InDestUnreachs');
  assert.ok(i > 0, `no InDestUnreachs in /proc/net/snmp: ${lines.join('\n')}`);
  return Number(values[i]);
}

test('bad frames are dropped and counted; the daemon keeps answering', { skip }, async (t) => {
  const start = await daemon.counters();

  for (const bc of BAD_CASES) {
    await t.test(bc.name, async () => {
      const kernelUnreach0 = bc.inject === 'udp-closed' ? kernelInDestUnreachs() : 0;
      const c0 = await daemon.counters();
      const r = inject(bc.inject, bc.count, bc.dst);
      assert.equal(r.status, 0, `inject ${bc.inject}\n${show(r)}`);
      injected[bc.inject] = bc.count;
      const want = Object.fromEntries(Object.entries(bc.expect).filter(([, n]) => n > 0));
      const c1 = await countersAfter(c0, want);
      // The kernel's own IPv6 multicast (MLD, RS) is filtered as unjoined
      // groups (mc_filtered), so rx_otherhost_dropped counts only these.
      assertDeltas(c0, c1, bc.expect, `${bc.name} (${bc.count} frames: ${r.stdout.trim()})`);
      if (bc.inject === 'udp-closed') {
        // The port unreachables reach the kernel side.
        let got = 0;
        await waitFor(() => (got = kernelInDestUnreachs() - kernelUnreach0) >= bc.count, 'the port unreachables at the kernel side').catch(() => {});
        assert.equal(got, bc.count, 'ICMP destination unreachables received by the kernel side');
      }
    });
  }

  // (f) Frames shorter than an Ethernet header cannot be injected here: the
  // kernel refuses them on AF_PACKET (EINVAL), so none can reach a TAP
  // reader from the kernel side. test/unit/ipv4_input.test.ts covers them.

  await t.test('still answering, still running, nothing crashed', async () => {
    assertAllAnswered(ping('-c 3 -i 0.2 -W 2'), 3, 'ping after the bad frames');
    assert.equal(daemon.proc.exitCode, null, 'the daemon exited');
    assert.equal(daemon.proc.signalCode, null, 'the daemon was killed');
    const end = await daemon.counters();
    // rx_errors moves only for short frames and for frames that threw inside the stack.
    assertDeltas(start, end, { 'Link.tap0.rx_errors': get(end, 'Link.tap0.rx_length_errors') - get(start, 'Link.tap0.rx_length_errors') }, 'rx_errors');
    const errors = daemon.lines.filter((l) => (l.level ?? 0) >= 50);
    assert.deepEqual(errors, [], 'error lines in the daemon log');
  });
});

test('SIGTERM: clean exit, final counters, and a readable pcap of its own', { skip }, async () => {
  // Its exit, bounded (stop() then checks its peak RSS against its memory cap).
  const stopped = daemon.stop();
  const code = await exitOf(daemon.proc, WAIT_MS);
  await stopped;
  assert.equal(code, 0, `daemon exit status; stderr: ${daemon.stderr}; last lines: ${JSON.stringify(daemon.lines.slice(-3))}`);
  const exitLine = daemon.lines.find((l) => l.msg === 'counters' && l.reason === 'exit');
  assert.ok(exitLine, `no counters line with reason "exit"; last lines: ${JSON.stringify(daemon.lines.slice(-3))}`);
  assert.ok(daemon.lines.some((l) => l.msg === 'stopped'), 'no "stopped" line');
  const fin = exitLine.counters as Counters;

  const r = ns.sh(`tcpdump -n -r ${stackPcap}`, 30_000);
  assert.equal(r.status, 0, `tcpdump -r of the daemon's pcap\n${show(r)}`);
  const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
  const replies = lines.filter((l) => /10\.0\.0\.2 > 10\.0\.0\.1: ICMP echo reply/.test(l));
  assert.equal(replies.length, get(fin, 'Icmp.OutEchoReps'), `echo replies in the daemon's pcap vs Icmp.OutEchoReps (first 5 lines: ${lines.slice(0, 5).join('\n')})`);
  assert.ok(replies.length >= 18, `only ${replies.length} echo replies in the daemon's pcap`);
  // Every frame in and out was written, and nothing else.
  const frames = get(fin, 'Link.tap0.rx_packets') + get(fin, 'Link.tap0.tx_packets') + get(fin, 'Link.tap0.tx_dropped');
  assert.equal(lines.length, frames, `frames in the daemon's pcap vs rx_packets + tx_packets + tx_dropped ${JSON.stringify(fin.Link)}`);

  // What the stack sent is clean...
  const badOut = tsharkLines(stackPcap, `eth.src == ${STACK_MAC} && (${BAD_FILTER})`);
  assert.deepEqual(badOut, [], `tshark flags frames the stack sent:\n${badOut.join('\n')}`);
  // ...and the same filter does catch the broken frames we injected (so it can fail).
  if (injected['bad-ip-csum']) {
    const badIp = tsharkLines(stackPcap, `eth.src == ${hostMac} && ip.checksum.status == "Bad"`);
    assert.equal(badIp.length, injected['bad-ip-csum'], `injected bad IP checksums seen by tshark:\n${badIp.join('\n')}`);
  }
  if (injected['bad-icmp-csum']) {
    const badIcmp = tsharkLines(stackPcap, `eth.src == ${hostMac} && icmp.ident == 0x4343 && icmp.checksum.status == "Bad"`);
    assert.equal(badIcmp.length, injected['bad-icmp-csum'], `injected bad ICMP checksums seen by tshark:\n${badIcmp.join('\n')}`);
  }
  const badIn = tsharkLines(stackPcap, `eth.src == ${hostMac} && (${BAD_FILTER})`);
  assert.ok(badIn.length >= (injected['bad-ip-csum'] ?? 0) + (injected['truncated-ip'] ?? 0), `tshark missed injected bad frames:\n${badIn.join('\n')}`);
});
