/**
 * Loadable congestion control (tcp_cong_module.ts): a module file becomes
 * a registered algorithm; a module that throws, sets nonsense (NaN, a
 * negative cwnd, a string) or loops past the time budget is contained: the
 * socket falls back to Reno, the fault is counted and logged once, the
 * transfer completes and the module's other sockets are unharmed (or, after
 * an overrun, move to Reno at their next call). Transfers run on two stacks
 * on the virtual clock; the module's worker answers each call synchronously.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NO_FAULTS } from '../../src/drivers/fault.js';
import { TwoStacks } from '../lib/twostack.js';
import { TcpCongModules, type TcpCongModule } from '../../src/net/ipv4/tcp_cong_module.js';
import { TcpCongError } from '../../src/net/ipv4/tcp_cong.js';
import { tcpClose, tcpSetsockoptStr } from '../../src/net/ipv4/tcp.js';
import { tcpNewSock } from '../../src/net/ipv4/tcp_ipv4.js';
import { tcpSockGetsockopt } from '../../src/net/ipv4/tcp_setsockopt.js';
import type { TcpSock } from '../../src/net/ipv4/tcp_sock.js';
import { inetDiagDump } from '../../src/net/ipv4/inet_diag.js';
import { ssLine, ssWidths } from '../../src/cli/ss.js';
import { EBUSY, EEXIST, EINVAL, ENOENT, EPERM, SOL_TCP, TCP_CC_INFO, TCP_CONGESTION } from '../../src/uapi.js';
import { sysctlSet } from '../../src/net/sysctl.js';

const dir = mkdtempSync(join(tmpdir(), 'tapstack-ccmod-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const uid = process.getuid!();
const EXAMPLE = fileURLToPath(new URL('../../../examples/cc/aimd.js', import.meta.url));

let n = 0;
function moduleFile(source: string): string {
  const f = join(dir, `m${n++}.js`);
  writeFileSync(f, source, { mode: 0o644 });
  return f;
}

/** A log that keeps the warnings. */
function captureLog() {
  const warns: { obj: Record<string, unknown>; msg: string }[] = [];
  return { warns, log: { debug() {}, info() {}, warn: (obj: object, msg: string) => warns.push({ obj: obj as Record<string, unknown>, msg }) } };
}

/** Reno as a module, with `hook` spliced into congAvoid: it runs once `after` ACKs have grown the window. */
function renoWith(name: string, hook: string, afterAcks = 20): string {
  return `
let calls = 0;
module.exports = {
  name: '${name}',
  init(sk) { sk.priv.acked = 0; },
  ssthresh(sk) { return Math.max(sk.cwnd >> 1, 2); },
  undoCwnd(sk) { return Math.max(sk.cwnd, sk.priorCwnd); },
  congAvoid(sk, acked) {
    if (++calls > ${afterAcks}) { ${hook} }
    if (!sk.cwndLimited) return;
    if (sk.cwnd < sk.ssthresh) { sk.cwnd = Math.min(sk.cwnd + acked, sk.ssthresh); return; }
    sk.priv.acked += acked;
    if (sk.priv.acked >= sk.cwnd) { sk.priv.acked -= sk.cwnd; sk.cwnd++; }
  },
};`;
}

interface Setup {
  s: TwoStacks;
  mods: TcpCongModules;
  warns: ReturnType<typeof captureLog>['warns'];
  mod: TcpCongModule;
}

async function setup(source: string, seed = 1, budgetMs?: number): Promise<Setup> {
  const s = new TwoStacks({ ...NO_FAULTS, delay: 5 }, { ...NO_FAULTS, delay: 5 }, seed);
  const { warns, log } = captureLog();
  const mods = new TcpCongModules(s.a.tcp, log, { ownerUid: uid, budgetMs });
  const mod = await mods.load(moduleFile(source));
  return { s, mods, warns, mod };
}

/** A second socket of A on the module, idle: it shows whether the module still serves others. */
function bystander(x: Setup): TcpSock {
  const sk = tcpNewSock(x.s.a.tcp);
  assert.equal(tcpSetsockoptStr(x.s.a.tcp, sk, SOL_TCP, TCP_CONGESTION, x.mod.name), 0);
  return sk;
}

function transfer(x: Setup, bytes = 512 * 1024): TcpSock {
  let sender: TcpSock | null = null;
  const ms = x.s.bulk(bytes, { cc: x.mod.name, onAccept: (sk) => (sender = sk) });
  assert.ok(ms > 0, 'the transfer completed');
  return sender!;
}

test('the example module: loaded, selected by TCP_CONGESTION and the sysctl, runs a transfer; ss -i and TCP_CC_INFO', async () => {
  const s = new TwoStacks({ ...NO_FAULTS, loss: 0.01, delay: 10 }, { ...NO_FAULTS, delay: 10 }, 3);
  const { warns, log } = captureLog();
  const mods = new TcpCongModules(s.a.tcp, log, { ownerUid: uid });
  const f = join(dir, 'aimd.js');
  copyFileSync(EXAMPLE, f);
  chmodSync(f, 0o644);
  const mod = await mods.load(f);
  try {
    assert.equal(mod.name, 'aimd');
    assert.equal(s.a.tcp.congestion.available(), 'reno cubic bbr aimd');
    assert.equal(sysctlSet(s.a, 'net.ipv4.tcp_congestion_control', 'aimd'), 0, 'the sysctl takes the module name');
    let sender: TcpSock | null = null;
    assert.ok(s.bulk(1024 * 1024, { onAccept: (sk) => (sender = sk) }) > 0);
    const sk = sender!;
    assert.equal(sk.caOps.name, 'aimd', 'the accepted socket came from the default');
    assert.ok(s.a.mibs.Tcp.RetransSegs > 0, 'the line lost data: ssthresh ran');
    const info = sk.caOps.getInfo!(sk);
    assert.equal(info?.kind, 'fields');
    const fields = (info as { fields: Record<string, number> }).fields;
    assert.ok(fields.reductions >= 1, `the module counted its reductions (${fields.reductions})`);
    assert.equal((tcpSockGetsockopt(s.a.tcp, sk, SOL_TCP, TCP_CC_INFO) as Buffer).length, 0, 'TCP_CC_INFO has no layout for a module: 0 bytes');
    const rows = inetDiagDump(s.a.tcp, s.a.udp, { info: true }).rows.filter((r) => r.state === 'ESTABLISHED');
    assert.equal(rows.length, 1);
    assert.equal(rows[0].cong, 'aimd');
    assert.match(ssLine(rows[0], true, ssWidths(rows)), /\n\t aimd .* aimd:\(reductions:\d+,acked:\d+\)/);
    assert.equal(s.a.mibs.TcpExt.TCPCongModuleFault, 0);
    assert.equal(warns.length, 0);
    const listed = mods.list().find((e) => e.name === 'aimd');
    assert.deepEqual([listed?.kind, listed?.faults], ['module', 0]);
    assert.ok((listed?.users ?? 0) >= 1, 'the module counts its sockets');
    assert.equal(mods.unload('aimd'), -EBUSY, 'in use: by sockets, and as the default');
  } finally {
    mods.stop();
  }
});

/** The containment cases: each faults once on one socket; `broken`: the module stops. */
const CASES: { what: string; hook: string; reason: RegExp; broken?: boolean }[] = [
  { what: 'throws', hook: `throw new RangeError('bad day');`, reason: /congAvoid\(\): RangeError: bad day/ },
  { what: 'sets cwnd to NaN', hook: `sk.cwnd = NaN; return;`, reason: /sk\.cwnd = NaN/ },
  { what: 'sets a negative cwnd', hook: `sk.cwnd = -3; return;`, reason: /sk\.cwnd = -3/ },
  { what: 'sets ssthresh to a string', hook: `sk.ssthresh = '12'; return;`, reason: /sk\.ssthresh is string "12", not a number/ },
  { what: 'loops for ever', hook: `for (;;) {}`, reason: /congAvoid\(\) ran past the 100 ms budget/, broken: true },
];

for (const c of CASES) {
  test(`a module whose congAvoid ${c.what}: the socket goes on with Reno, counted and logged once${c.broken ? '; the module stops and its other sockets follow' : '; its other sockets are unharmed'}`, async () => {
    const x = await setup(renoWith(`bad${n}`, c.hook));
    try {
      const other = bystander(x);
      const sk = transfer(x);
      assert.equal(sk.caOps.name, 'reno', 'the faulty socket fell back');
      assert.ok(sk.sndCwnd >= 1 && Number.isInteger(sk.sndCwnd), `a sane window (${sk.sndCwnd})`);
      assert.ok(sk.sndSsthresh >= 2 && Number.isInteger(sk.sndSsthresh));
      assert.equal(x.s.a.mibs.TcpExt.TCPCongModuleFault, 1, 'one fault: the socket left the module at once');
      assert.equal(x.warns.length, 1, 'logged once');
      assert.match(String(x.warns[0].obj.reason), c.reason);
      assert.equal(x.mod.broken, !!c.broken);
      if (c.broken) {
        assert.doesNotMatch(x.s.a.tcp.congestion.available(), /bad/, 'a stopped module is unregistered');
        assert.equal(tcpSetsockoptStr(x.s.a.tcp, tcpNewSock(x.s.a.tcp), SOL_TCP, TCP_CONGESTION, x.mod.name), -ENOENT);
        // The bystander's next call finds the module stopped: Reno from then on, no new fault.
        assert.equal(other.caOps.ssthresh(other), 5);
        assert.equal(other.caOps.name, 'reno');
        assert.equal(x.s.a.mibs.TcpExt.TCPCongModuleFallback, 2);
        assert.equal(x.s.a.mibs.TcpExt.TCPCongModuleFault, 1);
        assert.equal(x.mods.unload(x.mod.name), 0, 'a stopped module can go');
      } else {
        // The bystander still runs the module (its ssthresh: half of 10).
        assert.equal(other.caOps.name, x.mod.name);
        assert.equal(other.caOps.ssthresh(other), 5);
        assert.equal(other.caOps.name, x.mod.name);
        assert.equal(x.s.a.mibs.TcpExt.TCPCongModuleFallback, 1);
        assert.equal(x.mod.users, 1, 'the bystander only');
        assert.equal(x.mods.unload(x.mod.name), -EBUSY);
        tcpClose(x.s.a.tcp, other);
        assert.equal(x.mod.users, 0, 'release on destroy');
        assert.equal(x.mods.unload(x.mod.name), 0);
      }
    } finally {
      x.mods.stop();
    }
  });
}

test('ssthresh returning a string, undoCwnd returning 0, init throwing: each a fault, Reno answers in its place', async () => {
  const x = await setup(`module.exports = {
    name: 'odd',
    init(sk) { if (sk.mss === 1) throw new Error('never'); },
    ssthresh(sk) { return '7'; },
    undoCwnd(sk) { return 0; },
    congAvoid(sk, acked) {},
  };`);
  try {
    const a = bystander(x);
    a.sndCwnd = 20;
    assert.equal(a.caOps.ssthresh(a), 10, "Reno's half of 20");
    assert.equal(a.caOps.name, 'reno');
    assert.match(String(x.warns[0].obj.reason), /ssthresh\(\)'s result is string "7", not a number/);
    const b = bystander(x);
    b.sndCwnd = 8;
    b.priorCwnd = 12;
    assert.equal(b.caOps.undoCwnd(b), 12, "Reno's undo");
    assert.equal(x.s.a.mibs.TcpExt.TCPCongModuleFault, 2);
    assert.equal(x.mod.lastFault, 'undoCwnd() returned 0 (an integer from 1 to 1048576)');
    assert.equal(x.warns.length, 1, 'still one line for the module');

    const y = await x.mods.load(moduleFile(`module.exports = { name: 'badinit', init(sk) { sk.priv.x.y = 1; }, ssthresh() { return 2; }, undoCwnd() { return 2; }, congAvoid() {} };`));
    const c = tcpNewSock(x.s.a.tcp);
    assert.equal(tcpSetsockoptStr(x.s.a.tcp, c, SOL_TCP, TCP_CONGESTION, 'badinit'), 0);
    assert.equal(c.caOps.name, 'reno', 'a fault in init: Reno from the start');
    assert.equal(c.caInitialized, true);
    assert.equal(y.users, 0);
    assert.match(y.lastFault, /init\(\): TypeError/);
  } finally {
    x.mods.stop();
  }
});

function refused(p: Promise<unknown>, errno: number, why: RegExp): Promise<void> {
  return assert.rejects(p, (e: unknown) => e instanceof TcpCongError && e.errno === errno && why.test(e.message));
}

test('load refuses: a missing file, one not owned by the required user or writable by others, not a module, a taken name', async () => {
  const s = new TwoStacks({ ...NO_FAULTS }, { ...NO_FAULTS }, 1);
  const { log } = captureLog();
  const mods = new TcpCongModules(s.a.tcp, log, { ownerUid: uid });
  const ok = `module.exports = { name: 'fine', ssthresh() { return 2; }, undoCwnd() { return 2; }, congAvoid() {} };`;
  try {
    await refused(mods.load(join(dir, 'nope.js')), ENOENT, /no such file/);
    await refused(mods.load(dir), EINVAL, /not a regular file/);
    const gw = moduleFile(ok);
    chmodSync(gw, 0o664);
    await refused(mods.load(gw), EPERM, /writable by its group \(mode 664\)/);
    chmodSync(gw, 0o646);
    await refused(mods.load(gw), EPERM, /writable by others/);
    if (uid === 0) {
      const other = moduleFile(ok);
      chownSync(other, 1234, 0);
      await refused(mods.load(other), EPERM, /owned by uid 1234, not root/);
    } else {
      await refused(new TcpCongModules(s.a.tcp, log).load(moduleFile(ok)), EPERM, new RegExp(`owned by uid ${uid}, not root`));
    }

    await refused(mods.load(moduleFile('module.exports = {')), EINVAL, /SyntaxError/);
    await refused(mods.load(moduleFile(`module.exports = { ssthresh() {}, undoCwnd() {}, congAvoid() {} };`)), EINVAL, /module\.exports\.name is undefined/);
    await refused(mods.load(moduleFile(`module.exports = { name: 'half', ssthresh() {}, congAvoid() {} };`)), EINVAL, /required ops/);
    await refused(mods.load(moduleFile(`module.exports = { name: 'both', ssthresh() {}, undoCwnd() {}, congAvoid() {}, congControl() {} };`)), EINVAL, /exactly one/);
    await refused(mods.load(moduleFile(`module.exports = { name: 'a-name-too-long-for-linux', ssthresh() {}, undoCwnd() {}, congAvoid() {} };`)), EINVAL, /longer than 15/);
    await refused(mods.load(moduleFile(`for (;;) {}`)), EINVAL, /timed out/);
    await refused(mods.load(moduleFile(`module.exports = { name: 'reno', ssthresh() {}, undoCwnd() {}, congAvoid() {} };`)), EEXIST, /reno already registered/);
    // No require, process, timers or console in a module's context.
    await mods.load(moduleFile(`
      for (const g of ['require', 'process', 'setTimeout', 'setImmediate', 'queueMicrotask', 'Buffer', 'fetch']) {
        if (typeof globalThis[g] !== 'undefined') throw new Error(g + ' is reachable');
      }
      ${ok}`));
    await refused(mods.load(moduleFile(ok)), EEXIST, /fine already loaded/);
    assert.equal(s.a.tcp.congestion.available(), 'reno cubic bbr fine');
    assert.equal(mods.unload('nosuch'), -ENOENT);
    assert.equal(mods.unload('fine'), 0);
    assert.equal(s.a.tcp.congestion.available(), 'reno cubic bbr');
    assert.deepEqual(mods.list().map((e) => `${e.name}:${e.kind}`), ['reno:builtin', 'cubic:builtin', 'bbr:builtin']);
  } finally {
    mods.stop();
  }
});

test('congControl with the rate sample: the module owns the window on every ACK', async () => {
  const x = await setup(`module.exports = {
    name: 'rsfixed',
    init(sk) { sk.cwnd = 16; sk.priv.samples = 0; sk.priv.maxRate = 0; },
    ssthresh(sk) { return 16; },
    undoCwnd(sk) { return 16; },
    congControl(sk, rs) {
      if (rs.intervalUs > 0 && rs.delivered > 0) {
        sk.priv.samples++;
        sk.priv.maxRate = Math.max(sk.priv.maxRate, Math.round(rs.delivered * sk.mss * 1e6 / rs.intervalUs));
      }
      sk.cwnd = 16;
    },
    getInfo(sk) { return { samples: sk.priv.samples, max_bps: sk.priv.maxRate * 8 }; },
  };`);
  try {
    const sk = transfer(x);
    assert.equal(sk.caOps.name, 'rsfixed');
    assert.equal(sk.sndCwnd, 16);
    const f = (sk.caOps.getInfo!(sk) as { fields: Record<string, number> }).fields;
    assert.ok(f.samples > 10, `rate samples seen (${f.samples})`);
    // 16 segments of 1448 bytes per 10 ms RTT: about 18.5 Mbit/s.
    assert.ok(f.max_bps > 10e6 && f.max_bps < 40e6, `the delivery rate the module measured: ${f.max_bps} bit/s`);
  } finally {
    x.mods.stop();
  }
});

test("each call reads back only its own socket's fields: getInfo on one socket after congAvoid on another changes neither", async () => {
  const x = await setup(`module.exports = {
    name: 'two',
    ssthresh() { return 2; },
    undoCwnd(sk) { return sk.cwnd; },
    congAvoid(sk, acked) { sk.cwnd = 33; },
    getInfo(sk) { return { cwnd: sk.cwnd }; },
  };`);
  try {
    const a = bystander(x);
    const b = bystander(x);
    a.caOps.congAvoid!(a, 0, 1, 1);
    assert.equal(a.sndCwnd, 33);
    assert.deepEqual(b.caOps.getInfo!(b), { kind: 'fields', fields: { cwnd: 10 } });
    assert.equal(b.sndCwnd, 10, "a's window stayed a's");
    assert.deepEqual(a.caOps.getInfo!(a), { kind: 'fields', fields: { cwnd: 33 } });
  } finally {
    x.mods.stop();
  }
});
