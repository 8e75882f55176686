import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness } from '../lib/harness.js';
import { TcpHarness } from '../lib/tcp_harness.js';
import { sysctlGet, sysctlList, sysctlSet, sysctlValidate } from '../../src/net/sysctl.js';
import { ConfigError, loadConfig } from '../../src/daemon/config.js';
import { tcpGetsockoptStr, tcpSetsockoptStr } from '../../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { AF_INET, AF_INET6, EINVAL, ENOENT, EPERM, SOL_TCP, TCP_CONGESTION } from '../../src/uapi.js';

const dir = mkdtempSync(join(tmpdir(), 'tapstack-sysctl-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('sysctl registry: Linux names, /proc/sys forms and units, checked writes', () => {
  const t = new TcpHarness(AF_INET);
  const s = t.h.stack;
  const names = sysctlList(s).map(([n]) => n);
  for (const n of ['net.ipv4.tcp_sack', 'net.ipv4.tcp_dsack', 'net.ipv4.tcp_rmem', 'net.ipv4.tcp_congestion_control', 'net.ipv4.tcp_recovery', 'net.ipv4.tcp_frto', 'net.core.somaxconn', 'net.ipv4.icmp_ratelimit', 'net.ipv4.neigh.default.base_reachable_time_ms']) {
    assert.ok(names.includes(n), n);
  }
  assert.equal(sysctlGet(s, 'net.ipv4.tcp_rmem'), '4096\t131072\t6291456');
  assert.equal(sysctlGet(s, 'net/ipv4/tcp_sack'), '1', 'slash form as sysctl(8) takes it');
  assert.equal(sysctlGet(s, 'net.ipv4.tcp_congestion_control'), 'cubic');
  assert.equal(sysctlGet(s, 'net.ipv4.tcp_available_congestion_control'), 'reno cubic bbr');
  assert.equal(sysctlSet(s, 'net.ipv4.tcp_congestion_control', 'bbr'), 0, 'BBR is built in, as by modprobe tcp_bbr');
  assert.equal(sysctlGet(s, 'net.ipv4.tcp_congestion_control'), 'bbr');
  assert.equal(sysctlSet(s, 'net.ipv4.tcp_congestion_control', 'cubic'), 0);
  assert.equal(sysctlGet(s, 'net.ipv4.tcp_fin_timeout'), '60', 'seconds');
  assert.equal(sysctlGet(s, 'net.ipv4.nope'), -ENOENT);

  assert.equal(sysctlSet(s, 'net.ipv4.tcp_rmem', '4096 540000 15728640'), 0);
  assert.deepEqual(s.tcp.sysctl.tcp_rmem, [4096, 540000, 15728640]);
  assert.equal(sysctlSet(s, 'net.ipv4.tcp_fin_timeout', 30), 0);
  assert.equal(s.tcp.sysctl.tcp_fin_timeout, 30_000);
  const err = { message: '' };
  assert.equal(sysctlSet(s, 'net.ipv4.tcp_sack', '2', err), -EINVAL);
  assert.match(err.message, /^net\.ipv4\.tcp_sack: 2 is out of range 0\.\.1/);
  assert.equal(sysctlSet(s, 'net.ipv4.tcp_rmem', '1 2', err), -EINVAL);
  assert.match(err.message, /^net\.ipv4\.tcp_rmem: /);
  assert.equal(sysctlSet(s, 'net.ipv4.tcp_sack', 'yes', err), -EINVAL);
  assert.equal(sysctlSet(s, 'net.ipv4.tcp_congestion_control', 'vegas', err), -EINVAL);
  assert.match(err.message, /"vegas" is not one of: reno cubic bbr/);
  assert.equal(sysctlSet(s, 'net.ipv4.tcp_available_congestion_control', 'reno', err), -EPERM);
  assert.equal(sysctlSet(s, 'net.ipv4.tcp_bogus', '1', err), -ENOENT);
  assert.equal(s.tcp.sysctl.tcp_sack, 1, 'refused writes change nothing');

  // The default algorithm applies to sockets created afterwards.
  assert.equal(sysctlSet(s, 'net.ipv4.tcp_congestion_control', 'reno'), 0);
  const sk = tcpNewSock(t.tcp);
  assert.equal(tcpGetsockoptStr(t.tcp, sk, SOL_TCP, TCP_CONGESTION), 'reno');
  assert.equal(tcpSetsockoptStr(t.tcp, sk, SOL_TCP, TCP_CONGESTION, 'cubic'), 0);
  assert.equal(sk.caOps.name, 'cubic');
  assert.equal(tcpSetsockoptStr(t.tcp, sk, SOL_TCP, TCP_CONGESTION, 'vegas'), -ENOENT);
  assert.equal(sk.caOps.name, 'cubic');
});

test('sysctlValidate checks without a stack; the daemon config takes a sysctl object and names a bad key', () => {
  assert.equal(sysctlValidate('net.ipv4.tcp_ecn', 1), null);
  // Any well-formed algorithm name (a module the config loads may own it; the stack checks it when
  // applied), and the qdiscs every stack has (this crashed on the scratch stack before).
  assert.equal(sysctlValidate('net.ipv4.tcp_congestion_control', 'bbr'), null);
  assert.match(sysctlValidate('net.ipv4.tcp_congestion_control', 'a name too long')!, /"a name too long" is not one of: names of 1 to 15 printable characters/);
  assert.equal(sysctlValidate('net.core.default_qdisc', 'fq'), null);
  assert.match(sysctlValidate('net.core.default_qdisc', 'cake')!, /not one of/);
  assert.match(sysctlValidate('net.ipv4.tcp_ecn', 9) ?? '', /tcp_ecn: 9 is out of range/);
  const good = join(dir, 'good.json');
  writeFileSync(good, JSON.stringify({ sysctl: { 'net.ipv4.tcp_sack': 0, 'net.ipv4.tcp_wmem': '4096 262144 4194304' } }));
  const cfg = loadConfig(good, {});
  assert.deepEqual(cfg.sysctl, [['net.ipv4.tcp_sack', '0'], ['net.ipv4.tcp_wmem', '4096 262144 4194304']]);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ sysctl: { 'net.ipv4.tcp_frto': 'x' } }));
  assert.throws(() => loadConfig(bad, {}), (e: unknown) => e instanceof ConfigError && e.key === 'sysctl.net.ipv4.tcp_frto' && /tcp_frto: "x" is not an integer/.test(e.message));
  const unknown = join(dir, 'unknown.json');
  writeFileSync(unknown, JSON.stringify({ sysctl: { 'net.ipv4.tcp_nonsense': 1 } }));
  assert.throws(() => loadConfig(unknown, {}), (e: unknown) => e instanceof ConfigError && /no such setting/.test(e.message));
});

test('IPv6 settings: net.ipv6.icmp.ratelimit, ip6frag_time (seconds), conf.default.hop_limit, neigh.default.retrans_time_ms', () => {
  const h = Harness.ready(AF_INET6);
  const s = h.stack;
  assert.equal(sysctlGet(s, 'net.ipv6.icmp.ratelimit'), '100');
  assert.equal(sysctlGet(s, 'net.ipv6.ip6frag_time'), '60');
  assert.equal(sysctlSet(s, 'net.ipv6.conf.default.hop_limit', '33'), 0);
  assert.equal(s.ipv6.cnf.hop_limit, 33);
  assert.equal(sysctlSet(s, 'net.ipv6.conf.default.hop_limit', '0'), -22);
  assert.equal(sysctlSet(s, 'net.ipv6.neigh.default.retrans_time_ms', '500'), 0);
  assert.equal(s.ipv6.ndisc.tbl.parms.retransTime, 500);
  assert.equal(sysctlValidate('net.ipv6.icmp.ratelimit', 'x'), 'net.ipv6.icmp.ratelimit: "x" is not an integer');
  assert.equal(sysctlValidate('net.ipv6.conf.default.dad_transmits', 2), null);
});

test('integer settings read as proc_dointvec reads them: 0x hex and leading-0 octal, as tcp_fastopen=0x70403 in the packetdrill defaults', () => {
  const h = Harness.ready(AF_INET6);
  const s = h.stack;
  assert.equal(sysctlSet(s, 'net.ipv4.tcp_fastopen', '0x70403'), 0);
  assert.equal(sysctlGet(s, 'net.ipv4.tcp_fastopen'), String(0x70403));
  assert.equal(sysctlSet(s, 'net.ipv4.tcp_fastopen', '0207'), 0);
  assert.equal(sysctlGet(s, 'net.ipv4.tcp_fastopen'), String(0o207));
  assert.equal(sysctlSet(s, 'net.ipv4.tcp_fastopen', '0'), 0);
  assert.equal(sysctlValidate('net.ipv4.tcp_fastopen', '0x'), 'net.ipv4.tcp_fastopen: "0x" is not an integer');
  assert.equal(sysctlValidate('net.ipv4.tcp_fastopen', '08'), 'net.ipv4.tcp_fastopen: "08" is not an integer');
});
