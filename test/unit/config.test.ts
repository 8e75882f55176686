import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { totalmem } from 'node:os';
import { ConfigError, LIVE_KEYS, configChanges, loadConfig, readConfigFile, DEFAULT_CONFIG_PATH, MEMORY_MIN, apiMaxBufferedTotalDefault, memoryDefault } from '../../src/daemon/config.js';
import { Harness } from '../lib/harness.js';
import { sysctlGet } from '../../src/net/sysctl.js';
import { AF_INET } from '../../src/uapi.js';
import { formatIpv4, formatIpv6 } from '../../src/lib/addr.js';

const dir = mkdtempSync(join(tmpdir(), 'tapstack-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
function file(obj: unknown): string {
  const p = join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(p, typeof obj === 'string' ? obj : JSON.stringify(obj));
  return p;
}

function rejects(fn: () => unknown, key: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.key, key);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

test('the default config is the documented one', () => {
  const c = loadConfig(undefined, {});
  assert.equal(c.tap, 'tap0');
  assert.equal(c.mtu, 1500);
  assert.deepEqual(c.ipv4.map((a) => `${formatIpv4(a.addr)}/${a.prefix}`), ['10.0.0.2/24']);
  assert.equal(formatIpv4(c.gateway), '10.0.0.1');
  assert.equal(`${formatIpv4(c.hostIpv4!.addr)}/${c.hostIpv4!.prefix}`, '10.0.0.1/24');
  assert.ok(readConfigFile(DEFAULT_CONFIG_PATH));
});

test('flags override the file, the file overrides the defaults', () => {
  const f = file({ mtu: 9000, tap: 'tapx' });
  const c = loadConfig(f, { tap: 'tapy' });
  assert.equal(c.mtu, 9000);
  assert.equal(c.tap, 'tapy');
});

test('unknown keys are named', () => {
  rejects(() => loadConfig(file({ mtus: 1500 }), {}), 'mtus', /unknown key "mtus"/);
});

test('bad addresses and prefixes name the key and the value', () => {
  rejects(() => loadConfig(undefined, { ipv4: '10.0.0.300/24' }), 'ipv4', /ipv4: "10\.0\.0\.300\/24" is not an IPv4 address/);
  rejects(() => loadConfig(undefined, { ipv4: '10.0.0.2/33' }), 'ipv4', /"10\.0\.0\.2\/33"/);
  rejects(() => loadConfig(undefined, { ipv4: '10.0.0.2' }), 'ipv4', /ADDR\/PREFIX/);
  rejects(() => loadConfig(undefined, { ipv4: '10.0.0.0/24' }), 'ipv4', /network or broadcast/);
  rejects(() => loadConfig(undefined, { hostIpv4: '300.1.1.1/24' }), 'hostIpv4', /hostIpv4: "300\.1\.1\.1\/24"/);
  rejects(() => loadConfig(undefined, { gateway: '10.0.1.1' }), 'gateway', /not on a connected subnet/);
  rejects(() => loadConfig(undefined, { gateway: 'router' }), 'gateway', /"router" is not an IPv4 address/);
  rejects(() => loadConfig(undefined, { mac: '01:00:5e:00:00:01' }), 'mac', /unicast/);
  rejects(() => loadConfig(undefined, { mac: '02:00:00:00:00' }), 'mac', /not a MAC/);
  rejects(() => loadConfig(undefined, { mtu: 40 }), 'mtu', /68 to 65535/);
  rejects(() => loadConfig(undefined, { tap: 'a-name-that-is-too-long' }), 'tap', /interface name/);
  rejects(() => loadConfig(undefined, { logLevel: 'loud' }), 'logLevel', /one of/);
  rejects(() => loadConfig(undefined, { hostIpv4: '10.0.0.2/24' }), 'hostIpv4', /own addresses/);
});

test('a file that is not JSON, or not an object, is rejected', () => {
  rejects(() => loadConfig(file('{ "mtu": '), {}), 'config', /not valid JSON/);
  rejects(() => loadConfig(file([1, 2]), {}), 'config', /JSON object/);
  rejects(() => loadConfig(join(dir, 'missing.json'), {}), 'config', /cannot read .*ENOENT/);
});

test('several addresses, and null to leave the kernel side alone', () => {
  const c = loadConfig(file({ ipv4: ['10.0.0.2/24', '192.168.50.2/24'], hostIpv4: null, gateway: null }), {});
  assert.equal(c.ipv4.length, 2);
  assert.equal(c.hostIpv4, null);
  assert.equal(c.gateway, 0);
});

test('services: defaults on, a file may move or turn off one, bad entries are named', () => {
  const c = loadConfig(undefined, {});
  assert.deepEqual(c.services, { echo: 7, discard: 9, chargen: 19, http: 80 });
  const d = loadConfig(file({ services: { http: 8080, chargen: null } }), {});
  assert.deepEqual(d.services, { echo: 7, discard: 9, chargen: null, http: 8080 });
  rejects(() => loadConfig(file({ services: { ftp: 21 } }), {}), 'services.ftp', /services\.ftp: 21 is not a service/);
  rejects(() => loadConfig(file({ services: { http: 0 } }), {}), 'services.http', /port from 1 to 65535/);
  rejects(() => loadConfig(file({ services: { http: 7 } }), {}), 'services.http', /services\.http: 7 is also the port of services\.echo/);
  rejects(() => loadConfig(file({ services: [80] }), {}), 'services', /must be an object/);
});

test('IPv6: defaults fd00::2/64 for the stack and fd00::1/64 for the kernel side; no gateway, no SLAAC', () => {
  const c = loadConfig(undefined, {});
  assert.deepEqual(c.ipv6!.map((a) => `${formatIpv6(a.addr)}/${a.prefix}`), ['fd00::2/64']);
  assert.equal(`${formatIpv6(c.hostIpv6!.addr)}/${c.hostIpv6!.prefix}`, 'fd00::1/64');
  assert.equal(c.ipv6Gateway, null);
  assert.equal(c.ipv6Slaac, false);
});

test('IPv6: several addresses, a gateway on a connected prefix or link-local, null to turn IPv6 off or leave the kernel side alone', () => {
  const c = loadConfig(file({ ipv6: ['fd00::2/64', '2001:db8::2/64'], ipv6Gateway: '2001:db8::1', hostIpv6: null, ipv6Slaac: true }), {});
  assert.equal(c.ipv6!.length, 2);
  assert.equal(formatIpv6(c.ipv6Gateway!), '2001:db8::1');
  assert.equal(c.hostIpv6, null);
  assert.equal(c.ipv6Slaac, true);
  assert.equal(formatIpv6(loadConfig(undefined, { ipv6Gateway: 'fe80::1' }).ipv6Gateway!), 'fe80::1');
  const off = loadConfig(undefined, { ipv6: null });
  assert.equal(off.ipv6, null);
  assert.deepEqual(loadConfig(undefined, { ipv6: ['fd00:1::2/48'] }).ipv6!.map((a) => a.prefix), [48]);
});

test('IPv6: bad values name the key and the value', () => {
  rejects(() => loadConfig(undefined, { ipv6: 'fd00::2' }), 'ipv6', /ipv6: "fd00::2" is not an IPv6 address with a prefix length \(ADDR\/PREFIX/);
  rejects(() => loadConfig(undefined, { ipv6: 'fd00::g/64' }), 'ipv6', /"fd00::g\/64"/);
  rejects(() => loadConfig(undefined, { ipv6: 'fd00::2/129' }), 'ipv6', /"fd00::2\/129"/);
  rejects(() => loadConfig(undefined, { ipv6: 'fd00::2/0' }), 'ipv6', /prefix length from 1 to 128/);
  rejects(() => loadConfig(undefined, { ipv6: 'ff02::1/64' }), 'ipv6', /usable unicast/);
  rejects(() => loadConfig(undefined, { ipv6: '::1/128' }), 'ipv6', /usable unicast/);
  rejects(() => loadConfig(undefined, { ipv6: ['fd00::2/64', 'fd00::2/64'] }), 'ipv6', /twice/);
  rejects(() => loadConfig(undefined, { hostIpv6: 'fd00::1' }), 'hostIpv6', /hostIpv6: "fd00::1" is not an IPv6 address/);
  rejects(() => loadConfig(undefined, { hostIpv6: 'fd00::2/64' }), 'hostIpv6', /own addresses/);
  rejects(() => loadConfig(undefined, { ipv6Gateway: '2001:db8::1' }), 'ipv6Gateway', /not link-local or on a connected prefix of fd00::2\/64/);
  rejects(() => loadConfig(undefined, { ipv6Gateway: 'router6' }), 'ipv6Gateway', /"router6" is not a unicast IPv6 address/);
  rejects(() => loadConfig(undefined, { ipv6Gateway: 'fd00::2' }), 'ipv6Gateway', /own addresses/);
  rejects(() => loadConfig(undefined, { ipv6: null, ipv6Gateway: 'fe80::1' }), 'ipv6Gateway', /needs IPv6/);
  rejects(() => loadConfig(file({ ipv6Slaac: 'yes' }), {}), 'ipv6Slaac', /true or false/);
});

test('tapLost and tapReattachTimeout: defaults, file values, and bad values named', () => {
  const c = loadConfig(undefined, {});
  assert.equal(c.tapLost, 'reattach', 'the default: wait for the TAP');
  assert.equal(c.tapReattachTimeoutMs, 300_000, 'the default bound: 300 s');
  const f = loadConfig(file({ tapLost: 'exit', tapReattachTimeout: 0 }), {});
  assert.equal(f.tapLost, 'exit');
  assert.equal(f.tapReattachTimeoutMs, 0, '0: wait for ever');
  assert.equal(loadConfig(undefined, { tapReattachTimeout: 2.5 }).tapReattachTimeoutMs, 2500, 'fractions of a second');
  rejects(() => loadConfig(undefined, { tapLost: 'restart' }), 'tapLost', /^config: tapLost: "restart" must be one of "reattach", "exit"$/);
  rejects(() => loadConfig(file({ tapLost: true }), {}), 'tapLost', /tapLost: true must be one of/);
  for (const v of [-1, 86_401, '10', null, Number.NaN]) {
    rejects(() => loadConfig(undefined, { tapReattachTimeout: v as number }), 'tapReattachTimeout', /tapReattachTimeout: .* must be a number of seconds from 0 \(wait for ever\) to 86400$/);
  }
});

test('API memory limits: per client and for all clients together; defaults 64 MiB and an eighth of memory (at most 256 MiB); bad values name the key', () => {
  const d = loadConfig(undefined, {});
  assert.equal(d.apiMaxBuffered, 64 * 1024 * 1024);
  assert.equal(d.apiMaxBufferedTotal, Math.min(256 * 1024 * 1024, Math.floor(d.memory / 8)));
  const c = loadConfig(file({ apiMaxBuffered: 4 << 20, apiMaxBufferedTotal: 6 << 20 }), {});
  assert.equal(c.apiMaxBuffered, 4 << 20);
  assert.equal(c.apiMaxBufferedTotal, 6 << 20);
  rejects(() => loadConfig(file({ apiMaxBufferedTotal: 1000 }), {}), 'apiMaxBufferedTotal', /apiMaxBufferedTotal: 1000 must be an integer from 1048576/);
  rejects(() => loadConfig(file({ apiMaxBufferedTotal: '256M' }), {}), 'apiMaxBufferedTotal', /apiMaxBufferedTotal: "256M"/);
  rejects(() => loadConfig(file({ apiMaxBufferedTotal: 1.5e6 + 0.5 }), {}), 'apiMaxBufferedTotal', /integer/);
  rejects(() => loadConfig(file({ apiMaxBuffered: -1 }), {}), 'apiMaxBuffered', /apiMaxBuffered: -1/);
});

test('memory: the daemon-wide cap; a quarter of the machine by default; bounds the API total; bad values name the key', () => {
  const MiB = 1024 * 1024;
  const d = loadConfig(undefined, {});
  assert.equal(d.memory, Math.max(MEMORY_MIN, Math.floor(totalmem() / 4)));
  assert.equal(d.memory, memoryDefault());
  // Set: the API total's default follows it (an eighth, 256 MiB at most).
  const small = loadConfig(file({ memory: 256 * MiB }), {});
  assert.equal(small.memory, 256 * MiB);
  assert.equal(small.apiMaxBufferedTotal, 32 * MiB);
  assert.equal(loadConfig(undefined, { memory: 8192 * MiB }).apiMaxBufferedTotal, 256 * MiB);
  assert.equal(apiMaxBufferedTotalDefault(512 * MiB), 64 * MiB);
  // Flags override the file.
  assert.equal(loadConfig(file({ memory: 256 * MiB }), { memory: 512 * MiB }).memory, 512 * MiB);
  // An API total set by hand stays within half of memory.
  assert.equal(loadConfig(file({ memory: 256 * MiB, apiMaxBufferedTotal: 128 * MiB }), {}).apiMaxBufferedTotal, 128 * MiB);
  rejects(() => loadConfig(file({ memory: 256 * MiB, apiMaxBufferedTotal: 129 * MiB }), {}), 'apiMaxBufferedTotal', /apiMaxBufferedTotal: 135266304 must be at most half of memory \(268435456 bytes\)/);
  rejects(() => loadConfig(file({ memory: 64 * MiB }), {}), 'memory', /memory: 67108864 must be an integer from 134217728/);
  rejects(() => loadConfig(file({ memory: '1G' }), {}), 'memory', /memory: "1G" must be an integer/);
  rejects(() => loadConfig(undefined, { memory: 2.5e8 + 0.5 }), 'memory', /memory: .* must be an integer/);
  rejects(() => loadConfig(file({ memory: true }), {}), 'memory', /memory: true/);
});

test('memory scales the stack\'s limits: tcp_mem, udp_mem, tcp_max_orphans follow the configured cap', () => {
  const MiB = 1024 * 1024;
  const at = (memory: number) => {
    const cfg = loadConfig(file({ memory }), {});
    const h = new Harness(AF_INET, { memory: cfg.memory });
    return { tcp: sysctlGet(h.stack, 'net.ipv4.tcp_mem'), udp: sysctlGet(h.stack, 'net.ipv4.udp_mem'), orphans: sysctlGet(h.stack, 'net.ipv4.tcp_max_orphans') };
  };
  // 512 MiB: 131072 pages; tcp_mem's pressure point a sixteenth of them, udp_mem's an eighth.
  assert.deepEqual(at(512 * MiB), { tcp: '6144\t8192\t12288', udp: '12288\t16384\t24576', orphans: '2048' });
  // Four times the memory, four times the limits.
  assert.deepEqual(at(2048 * MiB), { tcp: '24576\t32768\t49152', udp: '49152\t65536\t98304', orphans: '8192' });
});

test('user and group: the drop target by name or number; root, a group without a user, unknown names and bad grace periods are named', () => {
  const nobody = loadConfig(file({ user: 'nobody' }), {});
  assert.deepEqual(nobody.user, { uid: 65534, gid: 65534, name: 'nobody' }, 'a name gives its primary group from /etc/passwd');
  assert.deepEqual(loadConfig(file({ user: 65534, group: 'nogroup' }), {}).user, { uid: 65534, gid: 65534, name: '65534' });
  assert.deepEqual(loadConfig(file({ user: 'nobody', group: 4242 }), {}).user, { uid: 65534, gid: 4242, name: 'nobody' });
  assert.equal(loadConfig(undefined, {}).user, null, 'no drop by default');
  rejects(() => loadConfig(file({ user: 'root' }), {}), 'user', /"root" is root/);
  rejects(() => loadConfig(file({ user: 0, group: 100 }), {}), 'user', /is root/);
  rejects(() => loadConfig(file({ user: 'nobody', group: 0 }), {}), 'group', /gid 0/);
  rejects(() => loadConfig(file({ group: 'nogroup' }), {}), 'group', /needs user/);
  rejects(() => loadConfig(file({ user: 'no-such-user-here' }), {}), 'user', /not a user in \/etc\/passwd/);
  rejects(() => loadConfig(file({ user: 4_000_000 }), {}), 'group', /not in \/etc\/passwd/);
  rejects(() => loadConfig(file({ user: true }), {}), 'user', /must be a user name/);
  assert.equal(loadConfig(undefined, {}).shutdownGraceMs, 10_000);
  assert.equal(loadConfig(file({ shutdownGraceMs: 0 }), {}).shutdownGraceMs, 0);
  rejects(() => loadConfig(file({ shutdownGraceMs: -1 }), {}), 'shutdownGraceMs', /integer from 0/);
  rejects(() => loadConfig(file({ shutdownGraceMs: '5s' }), {}), 'shutdownGraceMs', /integer from 0/);
});

test('apiRings: on by default, off from the file, a non-boolean named; a reload applies it', () => {
  assert.equal(loadConfig(undefined, {}).apiRings, true);
  assert.equal(loadConfig(file({ apiRings: false }), {}).apiRings, false);
  rejects(() => loadConfig(file({ apiRings: 'no' }), {}), 'apiRings', /true or false/);
  assert.ok((LIVE_KEYS as readonly string[]).includes('apiRings'));
});

test('configChanges names the keys two configs differ in; LIVE_KEYS are the ones a reload applies', () => {
  const a = loadConfig(undefined, {});
  const b = loadConfig(file({ tap: 'tap9', logLevel: 'debug', sysctl: { 'net.ipv4.tcp_sack': 0 }, services: { echo: 7007 } }), {});
  assert.deepEqual(configChanges(a, b).sort(), ['logLevel', 'services', 'sysctl', 'tap']);
  assert.deepEqual(configChanges(a, loadConfig(undefined, {})), []);
  for (const k of ['logLevel', 'sysctl', 'services', 'apiGroup', 'apiMaxSockets', 'shutdownGraceMs']) assert.ok((LIVE_KEYS as readonly string[]).includes(k), k);
  for (const k of ['tap', 'ipv4', 'hostIpv4', 'mac', 'mtu', 'api', 'user', 'group', 'memory']) assert.ok(!(LIVE_KEYS as readonly string[]).includes(k), k);
});

test('congestionModules: absolute paths of root-owned files no one else may write, a bad entry named by its index; the sysctl may name a module', () => {
  const mod = join(dir, 'cc.js');
  writeFileSync(mod, "module.exports = { name: 'x' };", { mode: 0o644 });
  const c = loadConfig(file({ congestionModules: [mod], sysctl: { 'net.ipv4.tcp_congestion_control': 'mymodule' } }), {});
  assert.deepEqual(c.congestionModules, [mod]);
  assert.deepEqual(c.sysctl, [['net.ipv4.tcp_congestion_control', 'mymodule']], 'a name a module may register passes the check; start-up checks it against the stack');
  assert.deepEqual(loadConfig(undefined, {}).congestionModules, []);
  assert.ok((LIVE_KEYS as readonly string[]).includes('congestionModules'), 'reload loads and unloads');
  rejects(() => loadConfig(file({ congestionModules: mod }), {}), 'congestionModules', /must be an array/);
  rejects(() => loadConfig(file({ congestionModules: [mod, 'cc.js'] }), {}), 'congestionModules[1]', /"cc\.js" must be an absolute path/);
  rejects(() => loadConfig(file({ congestionModules: [mod, mod] }), {}), 'congestionModules[1]', /listed twice/);
  rejects(() => loadConfig(file({ congestionModules: [join(dir, 'none.js')] }), {}), 'congestionModules[0]', /none\.js: no such file/);
  const loose = join(dir, 'loose.js');
  writeFileSync(loose, '', { mode: 0o666 });
  chmodSync(loose, 0o666);
  rejects(() => loadConfig(file({ congestionModules: [mod, loose] }), {}), 'congestionModules[1]', /loose\.js: writable by others \(mode 666\)/);
  if (process.getuid!() === 0) {
    chmodSync(loose, 0o644);
    chownSync(loose, 1234, 0);
    rejects(() => loadConfig(file({ congestionModules: [loose] }), {}), 'congestionModules[0]', /owned by uid 1234, not root/);
  }
  rejects(() => loadConfig(file({ sysctl: { 'net.ipv4.tcp_congestion_control': 'no spaces' } }), {}), 'sysctl.net.ipv4.tcp_congestion_control', /not one of/);
});

test('shards: 1 by default, an integer from 1 to 64; above 1 what is not done yet with shards is refused by key (docs/shards.md)', () => {
  assert.equal(loadConfig(undefined, {}).shards, 1);
  rejects(() => loadConfig(undefined, { shards: 0 }), 'shards', /shards: 0 must be an integer from 1 to 64/);
  rejects(() => loadConfig(undefined, { shards: 1.5 }), 'shards', /must be an integer/);
  rejects(() => loadConfig(undefined, { shards: '2' as unknown as number }), 'shards', /must be an integer/);
  // The API is routed across shards (docs/shards.md "The API across shards"): the default path is accepted.
  assert.equal(loadConfig(undefined, { shards: 2, tapLost: 'exit' }).api, '/run/tapstack/api.sock');
  const ok = { shards: 2, api: null, tapLost: 'exit' };
  assert.equal(loadConfig(undefined, ok).shards, 2);
  assert.equal(loadConfig(undefined, { shards: 2, api: null }).tapLost, 'reattach', 'every queue re-attached');
  assert.equal(loadConfig(undefined, { ...ok, pcap: '/tmp/x.pcap' }).pcap, '/tmp/x.pcap', 'one capture file, every shard appending to it');
  // Fault injection in each shard, but not a rate: one bottleneck per shard would not be the daemon's.
  assert.equal(loadConfig(undefined, { ...ok, fault: 'loss=1%,delay=5ms' }).fault?.delay, 5);
  rejects(() => loadConfig(undefined, { ...ok, fault: 'loss=1%,rate=10mbit' }), 'shards', /needs fault to have no rate=: one rate bottleneck shared by the shards is not done yet/);
  assert.equal(loadConfig(undefined, { ...ok, user: 'nobody' }).user?.name, 'nobody', 'the drop once every shard runs');
  // With one shard every key is as before.
  assert.equal(loadConfig(undefined, { shards: 1, pcap: '/tmp/x.pcap' }).pcap, '/tmp/x.pcap');
});
