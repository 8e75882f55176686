/**
 * A congestion-control module through the daemon (docs/congestion.md):
 * `tapstack cc load` of the example module (root only, from a root-owned
 * file), the module as net.ipv4.tcp_congestion_control, a real transfer
 * (curl from the kernel side to the built-in HTTP service) running on it
 * with `tapstack ss -i` showing its name and its getInfo fields, then a
 * client-library socket choosing it by TCP_CONGESTION; the refusals
 * (nobody: EPERM, a file another user owns, a taken name, unload while in
 * use) and a module from the config file, at start.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, Netns, ROOT, exitOf, outputOf, requireIntegration, waitFor, type Daemon } from './netns.js';
import { Client } from '../../src/client/index.js';
import { AF_INET, SOCK_STREAM, SOL_TCP, TCP_CONGESTION } from '../../src/uapi.js';

const skip = requireIntegration(['curl', 'setpriv', 'python3']);
const NOGROUP = 65534;
const EXAMPLE = join(ROOT, 'examples', 'cc', 'aimd.js');

let ns: Netns;
let daemon: Daemon;
let api: string;
let aimd: string;

before(async () => {
  if (skip) return;
  ns = new Netns('cc');
  chmodSync(ns.dir, 0o711);
  aimd = join(ns.dir, 'aimd.js');
  copyFileSync(EXAMPLE, aimd);
  chmodSync(aimd, 0o644);
  // A second module, from the config: loaded before the daemon is ready.
  const gentle = join(ns.dir, 'gentle.js');
  writeFileSync(gentle, `module.exports = { name: 'gentle', ssthresh(sk) { return Math.max(sk.cwnd - 1, 2); }, undoCwnd(sk) { return sk.cwnd; }, congAvoid(sk, acked) { if (sk.cwndLimited) sk.cwnd += 1; } };`, { mode: 0o644 });
  const cfg = join(ns.dir, 'cc.json');
  writeFileSync(cfg, JSON.stringify({ apiGroup: NOGROUP, congestionModules: [gentle] }));
  api = join(ns.dir, 'api.sock');
  daemon = await ns.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--config', cfg, '--api', api]);
});

after(() => {
  if (daemon && daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
  ns?.destroy();
});

function cli(...args: string[]) {
  return spawnSync(process.execPath, [CLI, '--api', api, ...args], { encoding: 'utf8', timeout: 20_000 });
}

function cliOk(...args: string[]): string {
  const r = cli(...args);
  assert.equal(r.status, 0, `tapstack ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('tapstack cc load: the example module carries a curl download from the kernel and a client-library connection; ss -i shows it', { skip, timeout: 120_000 }, async () => {
  assert.match(cliOk('cc', 'list'), /^gentle +module .*gentle\.js users:0/m, 'the config file loaded its module at start');
  assert.equal(cliOk('cc', 'load', aimd), 'aimd\n');
  assert.match(cliOk('sysctl', 'net.ipv4.tcp_available_congestion_control'), /= reno cubic bbr gentle aimd$/m);
  cliOk('sysctl', 'net.ipv4.tcp_congestion_control=aimd');

  // 64 MB at 8 MB/s: long enough to see the connection in `ss -i` while it runs.
  const curl = ns.run(`curl -sS --max-time 60 --limit-rate 8M -o /dev/null -w '%{http_code} %{size_download}' http://10.0.0.2/bytes/67108864`, 70_000);
  const line = await waitFor(() => {
    const out = cliOk('ss', '-ti');
    const m = /\n\t aimd .*/.exec(out);
    return m && /aimd:\(reductions:\d+,acked:\d+\)/.test(m[0]) ? m[0] : null;
  }, 'the HTTP connection on aimd in ss -i');
  assert.match(line, / cwnd:\d+ /);
  assert.equal(await curl, '200 67108864');

  // The same module chosen per socket: a stack socket connecting to a kernel listener.
  cliOk('sysctl', 'net.ipv4.tcp_congestion_control=cubic');
  const sink = ns.background('python3 -c "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind((\'10.0.0.1\',9100));s.listen();c,_=s.accept();n=0\nwhile True:\n d=c.recv(65536)\n if not d: break\n n+=len(d)\nprint(n)"');
  await ns.kernelListening(9100);
  const c = new Client({ path: api, descriptors: false });
  await c.ready();
  try {
    const { fd } = await c.socket(AF_INET, SOCK_STREAM);
    await c.setsockopt(fd, SOL_TCP, TCP_CONGESTION, Buffer.from('aimd'));
    await c.connect(fd, { family: AF_INET, addr: '10.0.0.1', port: 9100 });
    const chunk = Buffer.alloc(1 << 20, 7);
    for (let i = 0; i < 16; i++) for (let off = 0; off < chunk.length; ) off += await c.send(fd, chunk.subarray(off));
    const name = (await c.getsockopt(fd, SOL_TCP, TCP_CONGESTION, 16)).toString('latin1').replace(/\0.*$/s, '');
    assert.equal(name, 'aimd');
    assert.match(cliOk('cc', 'list'), /^aimd +module .* users:1 calls:[1-9]\d* faults:0 fallbacks:0$/m, 'in use by the one connection');
    const busy = cli('cc', 'unload', 'aimd');
    assert.notEqual(busy.status, 0);
    assert.match(busy.stderr, /cc unload aimd: in use/);
    await c.closeFd(fd);
    assert.equal(await exitOf(sink), 0);
    assert.equal(outputOf(sink).trim(), String(16 << 20), 'the kernel received every byte');
  } finally {
    c.close();
  }
  await waitFor(() => /^aimd +module .* users:0 /m.test(cliOk('cc', 'list')), 'the module released by the closed connection');
  const counters = await daemon.counters();
  assert.equal(counters.TcpExt.TCPCongModuleFault, 0);
  assert.equal(cliOk('cc', 'unload', 'aimd'), '');
  assert.doesNotMatch(cliOk('sysctl', 'net.ipv4.tcp_available_congestion_control'), /aimd/);
});

test('tapstack cc load refuses: nobody (EPERM), a file root does not own, a name already registered, a file that is not a module', { skip, timeout: 60_000 }, async () => {
  const asNobody = spawnSync('setpriv', ['--reuid=65534', `--regid=${NOGROUP}`, '--clear-groups', process.execPath, CLI, '--api', api, 'cc', 'load', aimd], { encoding: 'utf8', timeout: 20_000 });
  assert.notEqual(asNobody.status, 0);
  assert.match(asNobody.stderr, /cc load .*aimd\.js: permission denied \(root only\)/);
  const theirs = join(ns.dir, 'theirs.js');
  copyFileSync(aimd, theirs);
  chownSync(theirs, 1234, 0);
  const r = cli('cc', 'load', theirs);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /owned by uid 1234, not root/);
  const dup = join(ns.dir, 'dup.js');
  writeFileSync(dup, `module.exports = { name: 'cubic', ssthresh() { return 2; }, undoCwnd() { return 2; }, congAvoid() {} };`, { mode: 0o644 });
  assert.match(cli('cc', 'load', dup).stderr, /already registered/);
  const notOne = join(ns.dir, 'broken.js');
  writeFileSync(notOne, `module.exports = { name: 'half', ssthresh() { return 2; } };`, { mode: 0o644 });
  assert.match(cli('cc', 'load', notOne).stderr, /not a valid module: half does not implement required ops/);
  assert.match(cliOk('cc', 'list'), /^reno +builtin\ncubic +builtin\nbbr +builtin\ngentle +module/);
});

test('congestionModules on reload (SIGHUP): a file added is loaded, one removed unloaded, one that is not a module named by its index', { skip, timeout: 60_000 }, async () => {
  const cfg = join(ns.dir, 'cc.json');
  const gentle = join(ns.dir, 'gentle.js');
  const late = join(ns.dir, 'late.js');
  writeFileSync(late, `module.exports = { name: 'late', ssthresh() { return 2; }, undoCwnd(sk) { return sk.cwnd; }, congAvoid() {} };`, { mode: 0o644 });
  const bad = join(ns.dir, 'syntax.js');
  writeFileSync(bad, `module.exports = { name: 'syntax',`, { mode: 0o644 });
  writeFileSync(cfg, JSON.stringify({ apiGroup: NOGROUP, congestionModules: [late, bad] }));
  daemon.proc.kill('SIGHUP');
  const loaded = await daemon.waitFor((l) => l.msg === 'config: congestion module loaded' && l.module === 'late');
  assert.equal(loaded.key, 'congestionModules[0]');
  await daemon.waitFor((l) => l.msg === 'config: congestion module no longer listed: unloaded' && l.module === 'gentle');
  const failed = await daemon.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('reload: congestionModules[1]'));
  assert.match(String(failed.msg), /syntax\.js: SyntaxError/);
  const list = cliOk('cc', 'list');
  assert.match(list, /^late +module/m);
  assert.doesNotMatch(list, /gentle|syntax/);
  assert.ok(!list.includes(gentle));
});
