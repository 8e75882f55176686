/**
 * tapstackd as a program: privilege handling (no CAP_NET_ADMIN, with and
 * without a persistent TAP it owns), --vnet-hdr, config errors and their
 * exit status, the stats file on SIGUSR1 and at exit, --mtu 9000 and --mac.
 *
 * Every packet stays inside a namespace this file creates; the daemon and
 * every tool run inside it. Each test has its own namespace.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DAEMON, Daemon, Netns, WAIT_MS, requireIntegration, waitFor, type LogLine, type RunResult } from './netns.js';

const skip = requireIntegration(['ping', 'arping', 'setpriv']);

const STACK_MAC = '02:74:73:00:00:02';
const NEED_CAP = 'tapstackd needs CAP_NET_ADMIN or an existing TAP owned by this user';
/** linux/capability.h */
const CAP_NET_ADMIN = 12;
/**
 * Run what follows as root without CAP_NET_ADMIN: dropped from the bounding
 * set, so the exec'd program's permitted and effective sets lack it too.
 */
const NO_NET_ADMIN = ['setpriv', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-net_admin', '--'];

type Counters = Record<string, Record<string, unknown>>;

const namespaces: Netns[] = [];
const procs: ChildProcess[] = [];
/** Interfaces of the main namespace before any test: none may appear. */
const mainLinksBefore = skip ? [] : mainLinks();

function mainLinks(): string[] {
  const r = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8', timeout: 10_000 });
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(':')[1].trim().split('@')[0])
    .sort();
}

function newNs(): Netns {
  const ns = new Netns('dmn');
  namespaces.push(ns);
  return ns;
}

function show(r: RunResult): string {
  return `exit ${r.status}\n[stdout]\n${r.stdout}\n[stderr]\n${r.stderr}`;
}

function lastLines(d: Daemon, n = 5): string {
  return `stderr: ${d.stderr}\nlast log lines: ${JSON.stringify(d.lines.slice(-n))}`;
}

/** The daemon to completion inside the namespace (no shell: arguments as given). */
function runDaemon(ns: Netns, args: string[], prefix: string[] = [], timeoutMs = 15_000): RunResult {
  if (!args.includes('--api')) args = [...args, '--api', 'none'];
  const r = spawnSync('ip', ['netns', 'exec', ns.name, ...prefix, process.execPath, DAEMON, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** The daemon started inside the namespace under `prefix` (e.g. setpriv), once it logs `ready`. */
async function startDaemonAs(ns: Netns, prefix: string[], args: string[], timeoutMs = WAIT_MS): Promise<Daemon> {
  // `ip netns exec` and setpriv both exec: the pid is the daemon's.
  if (!args.includes('--api')) args = [...args, '--api', ns.apiPath()];
  const p = spawn('ip', ['netns', 'exec', ns.name, ...prefix, process.execPath, DAEMON, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  const d = new Daemon(p);
  await d.waitFor((l) => l.msg === 'ready', timeoutMs);
  return d;
}

async function start(ns: Netns, args: string[]): Promise<Daemon> {
  const d = await ns.startDaemon(args);
  procs.push(d.proc);
  return d;
}

/** SIGTERM, bounded: the exit status, or a failure with the log. */
async function stop(d: Daemon, timeoutMs = WAIT_MS): Promise<number | null> {
  const code = await Promise.race([d.stop(), sleep(timeoutMs, 'timeout' as const, { ref: false })]);
  if (code === 'timeout') {
    d.proc.kill('SIGKILL');
    assert.fail(`daemon did not exit within ${timeoutMs} ms of SIGTERM\n${lastLines(d)}`);
  }
  return code;
}

/** A counter by path ("Ip.FragCreates"); an absent one is a typo or a rename: it throws. */
function get(c: Counters, path: string): number {
  let v: unknown = c;
  for (const k of path.split('.')) v = v === undefined || v === null ? undefined : (v as Record<string, unknown>)[k];
  if (typeof v !== 'number') throw new Error(`no counter ${path} in ${JSON.stringify(c[path.split('.')[0]])}`);
  return v;
}

function ping(ns: Netns, args: string, timeoutMs = 20_000): RunResult {
  return ns.sh(`ping ${args} 10.0.0.2`, timeoutMs);
}

function assertAllAnswered(r: RunResult, n: number, what: string): void {
  assert.equal(r.status, 0, `${what}: ping failed\n${show(r)}`);
  assert.match(r.stdout, new RegExp(`\\b${n} packets transmitted, ${n} received\\b`), `${what}: not all answered\n${show(r)}`);
  // A reply whose payload or checksum came back wrong, or twice.
  assert.doesNotMatch(r.stdout + r.stderr, /wrong data|DUP!|BAD CHECKSUM|truncated/i, `${what}: damaged replies\n${show(r)}`);
}

function hostMacOf(ns: Netns, ifname: string): string {
  const mac = ns.ok(`cat /sys/class/net/${ifname}/address`).trim();
  assert.match(mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, `MAC of ${ifname}`);
  return mac;
}

/** Interfaces in the namespace (names only). */
function nsLinks(ns: Netns): string[] {
  return ns
    .ok('ip -o link show')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(':')[1].trim().split('@')[0])
    .sort();
}

/** Bit `cap` of CapEff in /proc/PID/status. */
function hasEffectiveCap(pid: number, cap: number): boolean {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  assert.ok(m, `no CapEff in /proc/${pid}/status:\n${status}`);
  return ((BigInt(`0x${m[1]}`) >> BigInt(cap)) & 1n) === 1n;
}

after(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const ns of namespaces) ns.destroy();
});

test('without CAP_NET_ADMIN and no TAP: one line on stderr, non-zero exit, nothing created', { skip, timeout: 30_000 }, () => {
  const ns = newNs();
  try {
    // The trick itself: no CAP_NET_ADMIN in the effective set under setpriv.
    const caps = ns.ok(`${NO_NET_ADMIN.join(' ')} cat /proc/self/status`);
    const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(caps);
    assert.ok(eff, caps);
    assert.equal((BigInt(`0x${eff[1]}`) >> BigInt(CAP_NET_ADMIN)) & 1n, 0n, `setpriv left CAP_NET_ADMIN in CapEff ${eff[1]}`);

    const r = runDaemon(ns, ['--tap', 'tapx'], NO_NET_ADMIN);
    assert.notEqual(r.status, 0, `the daemon started without CAP_NET_ADMIN\n${show(r)}`);
    assert.notEqual(r.status, null, `the daemon did not exit (timed out or killed)\n${show(r)}`);
    assert.equal(r.status, 1, `exit status without CAP_NET_ADMIN\n${show(r)}`);
    assert.equal(r.stderr, `${NEED_CAP}\n`, `stderr must be exactly one line\n${show(r)}`);
    assert.equal(r.stdout, '', `nothing on stdout\n${show(r)}`);
    assert.deepEqual(nsLinks(ns), ['lo'], 'no interface may be left in the namespace');
  } finally {
    ns.destroy();
  }
});

test('without CAP_NET_ADMIN on a persistent TAP it owns: works, warns, leaves the TAP', { skip, timeout: 30_000 }, async () => {
  const ns = newNs();
  try {
    ns.ok('ip tuntap add dev tapp mode tap user 0 && ip addr add 10.0.0.1/24 dev tapp && ip link set tapp up');
    const detail = ns.ok('ip -d link show tapp');
    assert.match(detail, /persist on/, detail);
    assert.match(detail, /user root/, detail);
    const hostMac = hostMacOf(ns, 'tapp');

    const d = await startDaemonAs(ns, NO_NET_ADMIN, ['--tap', 'tapp', '--host-ipv4', 'none', '--host-ipv6', 'none']);
    assert.equal(hasEffectiveCap(d.proc.pid!, CAP_NET_ADMIN), false, 'the daemon runs with CAP_NET_ADMIN: the test proves nothing');
    const ready = d.lines.find((l) => l.msg === 'ready')!;
    assert.equal(ready.interface, 'tapp', JSON.stringify(ready));
    assert.equal(ready.hostIpv4, null, JSON.stringify(ready));

    // The kernel-side settings it may not change are logged, not fatal.
    const warnings = d.lines.filter((l) => l.level === 40);
    const warned = (re: RegExp) => warnings.find((l) => re.test(String(l.msg)));
    for (const re of [/cannot set the MTU/, /cannot set the link up/]) {
      const w = warned(re);
      assert.ok(w, `no warning matching ${re}; warnings: ${JSON.stringify(warnings)}`);
      assert.equal(w.code, 'EPERM', JSON.stringify(w));
      assert.equal(w.interface, 'tapp', JSON.stringify(w));
    }
    assert.equal(warnings.length, 2, `exactly the MTU and link-up warnings: ${JSON.stringify(warnings)}`);
    assert.deepEqual(
      d.lines.filter((l) => (l.level ?? 0) >= 50),
      [],
      'error lines in the log',
    );

    assertAllAnswered(ping(ns, '-c 3 -i 0.2 -W 2'), 3, 'ping over the persistent TAP');
    const neigh = ns.ok('ip neigh show 10.0.0.2 dev tapp');
    assert.match(neigh, new RegExp(`lladdr ${STACK_MAC}`), `kernel neighbour entry for the stack: ${neigh}`);

    const code = await stop(d);
    assert.equal(code, 0, `exit status after SIGTERM\n${lastLines(d)}`);
    const fin = d.lines.find((l) => l.msg === 'counters' && l.reason === 'exit');
    assert.ok(fin, `no final counters\n${lastLines(d)}`);
    assert.equal((fin.neighbours as { addr: string; lladdr: string }[]).find((n) => n.addr === '10.0.0.1')?.lladdr, hostMac, JSON.stringify(fin.neighbours));

    // Not the daemon's to delete: the TAP and its kernel-side setup stay.
    const afterStop = ns.sh('ip -d link show tapp; ip -4 addr show dev tapp');
    assert.equal(afterStop.status, 0, `the persistent TAP is gone after the daemon stopped\n${show(afterStop)}`);
    assert.match(afterStop.stdout, /persist on/, show(afterStop));
    assert.match(afterStop.stdout, /inet 10\.0\.0\.1\/24/, show(afterStop));
    ns.ok('ip tuntap del dev tapp mode tap');
    assert.deepEqual(nsLinks(ns), ['lo'], 'ip tuntap del left the TAP');
  } finally {
    ns.destroy();
  }
});

test('--vnet-hdr: virtio-net header on every frame, ping (small and fragmented) and arping answered', { skip, timeout: 40_000 }, async () => {
  const ns = newNs();
  try {
    const d = await start(ns, ['--tap', 'tap0', '--vnet-hdr']);
    const ready = d.lines.find((l) => l.msg === 'ready')!;
    assert.equal(ready.vnetHdr, true, `ready line: ${JSON.stringify(ready)}`);
    const detail = ns.ok('ip -d link show tap0');
    assert.match(detail, /vnet_hdr on/, `tap0 not opened with IFF_VNET_HDR:\n${detail}`);

    const c0 = (await d.counters()) as Counters;
    assertAllAnswered(ping(ns, '-c 3 -i 0.2 -W 2'), 3, 'ping with --vnet-hdr');
    assertAllAnswered(ping(ns, '-c 2 -i 0.2 -s 4000 -W 2'), 2, 'ping -s 4000 with --vnet-hdr');

    // iputils arping takes -I IFACE; Thomas Habets' arping (Debian's "arping" package) takes -i.
    const iputils = /iputils/i.test(ns.sh('arping -V 2>&1', 5_000).stdout);
    const cmd = `arping -c 3 -w 5 ${iputils ? '-I' : '-i'} tap0 10.0.0.2`;
    const r = ns.sh(cmd, 15_000);
    assert.equal(r.status, 0, `${cmd} failed\n${show(r)}`);
    const replies = r.stdout.split('\n').filter((l) => l.toLowerCase().includes(STACK_MAC));
    assert.equal(replies.length, 3, `${cmd}: expected 3 replies from ${STACK_MAC}\n${show(r)}`);

    const c1 = (await d.counters()) as Counters;
    const delta = (p: string) => get(c1, p) - get(c0, p);
    assert.deepEqual(
      {
        'Icmp.OutEchoReps': delta('Icmp.OutEchoReps'),
        'Ip.ReasmOKs': delta('Ip.ReasmOKs'),
        'Ip.FragOKs': delta('Ip.FragOKs'),
        'Ip.InHdrErrors': delta('Ip.InHdrErrors'),
        'Link.tap0.rx_length_errors': delta('Link.tap0.rx_length_errors'),
        'Link.tap0.rx_errors': delta('Link.tap0.rx_errors'),
        'Drop.ARP_INVALID': delta('Drop.ARP_INVALID'),
      },
      { 'Icmp.OutEchoReps': 5, 'Ip.ReasmOKs': 2, 'Ip.FragOKs': 2, 'Ip.InHdrErrors': 0, 'Link.tap0.rx_length_errors': 0, 'Link.tap0.rx_errors': 0, 'Drop.ARP_INVALID': 0 },
      'counter deltas with --vnet-hdr (got vs expected)',
    );

    const code = await stop(d);
    assert.equal(code, 0, `exit status after SIGTERM\n${lastLines(d)}`);
    const fin = d.lines.find((l) => l.msg === 'counters' && l.reason === 'exit');
    assert.equal(fin?.txErrors, 0, `frames the TAP refused: ${JSON.stringify(fin?.txErrors)}`);
  } finally {
    ns.destroy();
  }
});

test('bad config: exit 78 and one stderr line naming the key and the value; unknown flag: exit 2', { skip, timeout: 40_000 }, async (t) => {
  const ns = newNs();
  try {
    const badFile = join(ns.dir, 'bad.json');
    writeFileSync(badFile, JSON.stringify({ mtus: 1500 }) + '\n');
    const cases: { name: string; args: string[]; status: number; line: RegExp }[] = [
      { name: '--ipv4 10.0.0.300/24', args: ['--ipv4', '10.0.0.300/24'], status: 78, line: /^tapstackd: config: ipv4: "10\.0\.0\.300\/24" is not an IPv4 address/ },
      { name: '--mtu 40', args: ['--mtu', '40'], status: 78, line: /^tapstackd: config: mtu: 40 must be an integer from 68 to 65535$/ },
      { name: '--mtu abc (not a number: the value as typed)', args: ['--mtu', 'abc'], status: 78, line: /^tapstackd: config: mtu: "abc" must be an integer from 68 to 65535$/ },
      { name: 'unknown key in --config', args: ['--config', badFile], status: 78, line: new RegExp(`^tapstackd: config: unknown key "mtus" \\(value 1500\\) in ${badFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`) },
      { name: '--gateway 192.168.7.1', args: ['--gateway', '192.168.7.1'], status: 78, line: /^tapstackd: config: gateway: "192\.168\.7\.1" is not on a connected subnet of 10\.0\.0\.2\/24$/ },
      { name: '--mac 01:00:5e:00:00:01 (multicast)', args: ['--mac', '01:00:5e:00:00:01'], status: 78, line: /^tapstackd: config: mac: "01:00:5e:00:00:01" must be a unicast, non-zero MAC address$/ },
      { name: '--memory 64M (not a number: the value as typed)', args: ['--memory', '64M'], status: 78, line: /^tapstackd: config: memory: "64M" must be an integer from 134217728 to \d+$/ },
      { name: '--memory 1048576 (below Node\'s own)', args: ['--memory', '1048576'], status: 78, line: /^tapstackd: config: memory: 1048576 must be an integer from 134217728 to \d+$/ },
      { name: '--offload maybe', args: ['--offload', 'maybe'], status: 78, line: /^tapstackd: config: offload: "maybe" must be true or false \(--offload on\|off\)$/ },
      { name: '--ipv6 fd00::2 (no prefix)', args: ['--ipv6', 'fd00::2'], status: 78, line: /^tapstackd: config: ipv6: "fd00::2" is not an IPv6 address with a prefix length \(ADDR\/PREFIX, e\.g\. fd00::2\/64\)$/ },
      { name: '--host-ipv6 fd00::2/64 (the stack\'s own)', args: ['--host-ipv6', 'fd00::2/64'], status: 78, line: /^tapstackd: config: hostIpv6: "fd00::2\/64" is one of the stack's own addresses$/ },
      { name: '--ipv6-gateway 2001:db8::1 (off-link)', args: ['--ipv6-gateway', '2001:db8::1'], status: 78, line: /^tapstackd: config: ipv6Gateway: "2001:db8::1" is not link-local or on a connected prefix of fd00::2\/64$/ },
      { name: '--bogus', args: ['--bogus'], status: 2, line: /^tapstackd: Unknown argument: bogus$/ },
    ];
    for (const c of cases) {
      await t.test(c.name, () => {
        // A TAP name no other case uses: if the daemon got as far as the TAP, it shows.
        const r = runDaemon(ns, ['--tap', 'tapcfg', ...c.args]);
        assert.equal(r.status, c.status, `${c.name}: exit status\n${show(r)}`);
        const lines = r.stderr.split('\n');
        assert.equal(lines.length, 2, `${c.name}: exactly one stderr line\n${show(r)}`);
        assert.equal(lines[1], '', `${c.name}: the line ends with a newline\n${show(r)}`);
        assert.match(lines[0], c.line, `${c.name}: the stderr line\n${show(r)}`);
        assert.equal(r.stdout, '', `${c.name}: nothing on stdout\n${show(r)}`);
      });
    }
    assert.deepEqual(nsLinks(ns), ['lo'], 'a config error must stop the daemon before it touches a TAP');
  } finally {
    ns.destroy();
  }
});

test('--stats-file: written on SIGUSR1 and rewritten at exit', { skip, timeout: 30_000 }, async () => {
  const ns = newNs();
  try {
    const file = join(ns.dir, 'stats.json');
    const d = await start(ns, ['--tap', 'tap0', '--stats-file', file]);
    const hostMac = hostMacOf(ns, 'tap0');
    assert.equal(existsSync(file), false, 'the stats file exists before any SIGUSR1');

    assertAllAnswered(ping(ns, '-c 3 -i 0.2 -W 2'), 3, 'ping');
    const logged = (await d.counters()) as Counters;
    // The file is renamed into place right after the log line is written.
    type Stats = { time: string; interface: string; counters: Counters; neighbours: { addr: string; lladdr: string; state: string }[]; txErrors: number };
    const s1 = await waitFor(() => JSON.parse(readFileSync(file, 'utf8')) as Stats, 'a stats file after SIGUSR1');
    const dump1 = JSON.stringify(s1).slice(0, 2000);
    assert.deepEqual(Object.keys(s1).sort(), ['counters', 'eventLoopDelay', 'interface', 'ipv6', 'memory', 'neighbours', 'rxSlotsKept', 'time', 'txErrors'], `stats file keys: ${dump1}`);
    assert.equal(s1.interface, 'tap0', dump1);
    assert.ok(!Number.isNaN(Date.parse(s1.time)), `time is not a date: ${s1.time}`);
    assert.ok(get(s1.counters, 'Ip.InReceives') >= 3, `Ip.InReceives: ${JSON.stringify(s1.counters.Ip)}`);
    assert.ok(get(s1.counters, 'Icmp.OutEchoReps') >= 3, `Icmp.OutEchoReps: ${JSON.stringify(s1.counters.Icmp)}`);
    assert.equal(get(s1.counters, 'Icmp.OutEchoReps'), get(logged, 'Icmp.OutEchoReps'), 'the file and the logged counters disagree');
    assert.ok(Array.isArray(s1.neighbours), dump1);
    const n1 = s1.neighbours.find((n) => n.addr === '10.0.0.1');
    assert.ok(n1, `10.0.0.1 not in neighbours: ${JSON.stringify(s1.neighbours)}`);
    assert.equal(n1.lladdr, hostMac, `neighbour 10.0.0.1's MAC vs tap0's: ${JSON.stringify(s1.neighbours)}`);
    assert.equal(existsSync(`${file}.tmp`), false, 'the temporary file was left behind');

    // One more echo between the two dumps: the exit dump must show it.
    assertAllAnswered(ping(ns, '-c 1 -W 2'), 1, 'ping after SIGUSR1');
    const code = await stop(d);
    assert.equal(code, 0, `exit status after SIGTERM\n${lastLines(d)}`);
    const exitLine = d.lines.find((l: LogLine) => l.msg === 'counters' && l.reason === 'exit');
    assert.ok(exitLine, `no counters line with reason "exit"\n${lastLines(d)}`);
    const s2 = JSON.parse(readFileSync(file, 'utf8')) as Stats;
    const dump2 = JSON.stringify(s2).slice(0, 2000);
    assert.equal('reason' in s2, false, `the file carries no reason: ${dump2}`);
    assert.equal(get(s2.counters, 'Icmp.OutEchoReps'), get(s1.counters, 'Icmp.OutEchoReps') + 1, `OutEchoReps at exit: ${JSON.stringify(s2.counters.Icmp)}`);
    assert.ok(get(s2.counters, 'Ip.InReceives') >= get(s1.counters, 'Ip.InReceives') + 1, `Ip.InReceives at exit: ${JSON.stringify(s2.counters.Ip)}`);
    assert.deepEqual(s2.counters, exitLine.counters, 'the exit file and the exit log line disagree');
    assert.ok(s2.neighbours.some((n) => n.addr === '10.0.0.1' && n.lladdr === hostMac), `neighbours at exit: ${JSON.stringify(s2.neighbours)}`);
    assert.equal(existsSync(`${file}.tmp`), false, 'the temporary file was left behind at exit');
  } finally {
    ns.destroy();
  }
});

test('--mtu 9000: set on the kernel side; 8000-byte echoes with DF need no fragmentation', { skip, timeout: 30_000 }, async () => {
  const ns = newNs();
  try {
    const d = await start(ns, ['--tap', 'tap0', '--mtu', '9000']);
    const ready = d.lines.find((l) => l.msg === 'ready')!;
    assert.equal(ready.mtu, 9000, JSON.stringify(ready));
    const link = ns.ok('ip link show tap0');
    assert.match(link, /\bmtu 9000\b/, `kernel-side MTU:\n${link}`);

    const c0 = (await d.counters()) as Counters;
    const r = ping(ns, '-c 2 -i 0.2 -s 8000 -M do -W 2');
    assertAllAnswered(r, 2, 'ping -s 8000 -M do');
    assert.match(r.stdout, /8008 bytes from 10\.0\.0\.2/, `reply size\n${show(r)}`);
    const c1 = (await d.counters()) as Counters;
    const paths = ['Icmp.OutEchoReps', 'Ip.FragCreates', 'Ip.FragOKs', 'Ip.FragFails', 'Ip.ReasmReqds', 'Ip.ReasmOKs', 'Link.tap0.rx_length_errors'];
    const got = Object.fromEntries(paths.map((p) => [p, get(c1, p) - get(c0, p)]));
    assert.deepEqual(
      got,
      { 'Icmp.OutEchoReps': 2, 'Ip.FragCreates': 0, 'Ip.FragOKs': 0, 'Ip.FragFails': 0, 'Ip.ReasmReqds': 0, 'Ip.ReasmOKs': 0, 'Link.tap0.rx_length_errors': 0 },
      'counter deltas for 8000-byte echoes at MTU 9000 (got vs expected)',
    );
    assert.ok(get(c1, 'Link.tap0.rx_bytes') - get(c0, 'Link.tap0.rx_bytes') >= 2 * 8042, `rx_bytes: ${JSON.stringify(c1.Link)}`);

    const code = await stop(d);
    assert.equal(code, 0, `exit status after SIGTERM\n${lastLines(d)}`);
  } finally {
    ns.destroy();
  }
});

test('--mac: the stack answers ARP with the configured MAC', { skip, timeout: 30_000 }, async () => {
  const MAC = '02:aa:bb:cc:dd:ee';
  const ns = newNs();
  try {
    const d = await start(ns, ['--tap', 'tap0', '--mac', MAC]);
    const ready = d.lines.find((l) => l.msg === 'ready')!;
    assert.equal(ready.mac, MAC, JSON.stringify(ready));
    const before = ns.ok('ip neigh show 10.0.0.2 dev tap0');
    assertAllAnswered(ping(ns, '-c 1 -W 2'), 1, 'ping with --mac');
    const neigh = ns.ok('ip neigh show 10.0.0.2 dev tap0');
    assert.match(neigh, new RegExp(`^10\\.0\\.0\\.2 lladdr ${MAC} `, 'm'), `kernel neighbour entry for 10.0.0.2 (before the ping: ${JSON.stringify(before)}):\n${neigh}`);
    assert.doesNotMatch(neigh, new RegExp(STACK_MAC), neigh);

    const code = await stop(d);
    assert.equal(code, 0, `exit status after SIGTERM\n${lastLines(d)}`);
  } finally {
    ns.destroy();
  }
});

test('--tap with a 15-byte name (the kernel maximum) is created and used', { skip, timeout: 30_000 }, async () => {
  const ns = newNs();
  try {
    const d = await start(ns, ['--tap', 'tapstack-abcdef']);
    const ready = d.lines.find((l) => l.msg === 'ready')!;
    assert.equal(ready.interface, 'tapstack-abcdef', JSON.stringify(ready));
    assertAllAnswered(ping(ns, '-c 1 -W 2'), 1, 'ping over a 15-byte interface name');
    assert.equal(await stop(d), 0, `exit status after SIGTERM\n${lastLines(d)}`);
  } finally {
    ns.destroy();
  }
});

test('cleanup: namespaces gone, nothing created in the main namespace', { skip, timeout: 15_000 }, () => {
  for (const ns of namespaces) ns.destroy();
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 10_000 }).stdout;
  const left = namespaces.map((ns) => ns.name).filter((n) => list.split('\n').some((l) => l.split(' ')[0] === n));
  assert.deepEqual(left, [], `namespaces left behind:\n${list}`);
  assert.deepEqual(mainLinks(), mainLinksBefore, 'interfaces of the main namespace changed during the test');
});
