/**
 * The layout's rules, checked: no import cycle at run time inside src/
 * (dpdm with type-only imports erased), type-only circles only through
 * the struct net header, no file in src/net too long to read, and the
 * receive and write paths going down (or up) the files without coming
 * back to one (docs/structure.md describes them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TwoStacks, ADDR_A, dataSeq } from '../lib/twostack.js';
import { NO_FAULTS } from '../../src/drivers/fault.js';
import type { Stack } from '../../src/net/stack.js';
import { type Socket } from '../../src/net/socket.js';
import { AF_INET, EINPROGRESS, POLLIN, SOCK_STREAM } from '../../src/uapi.js';
import { sockAddr } from '../../src/net/core/sock.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DPDM = join(ROOT, 'node_modules', 'dpdm', 'lib', 'bin', 'dpdm.js');
/** The longest a file in src/net may be. */
const MAX_LINES = 1100;
/** The one module type-only circles may pass through: struct net names every protocol's state. */
const NET_HEADER = 'src/net/core/net.ts';

/** dpdm's circles over src/ (`transform`: type-only imports erased, as at run time). */
function circles(transform: boolean): string[][] {
  const dir = mkdtempSync(join(tmpdir(), 'dpdm-'));
  try {
    const out = join(dir, 'deps.json');
    const args = [DPDM, '--no-tree', '--no-warning', '--no-progress', '--circular', '-o', out, 'src/**/*.ts'];
    if (transform) args.splice(1, 0, '-T');
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `dpdm failed: ${r.stderr}`);
    return (JSON.parse(readFileSync(out, 'utf8')) as { circulars: string[][] }).circulars;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('no import cycle inside src/ at run time (type-only imports erased)', () => {
  const found = circles(true);
  assert.deepEqual(found, [], found.map((c) => c.join(' -> ')).join('\n'));
});

test('type-only circles all pass through the struct net header', (t) => {
  const found = circles(false);
  t.diagnostic(`type-only circles: ${found.length}, all through ${NET_HEADER}`);
  const others = found.filter((c) => !c.includes(NET_HEADER));
  assert.deepEqual(others, [], others.map((c) => c.join(' -> ')).join('\n'));
});

test(`no file in src/net is longer than ${MAX_LINES} lines`, () => {
  const long: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        const lines = readFileSync(p, 'utf8').split('\n').length - 1;
        if (lines > MAX_LINES) long.push(`${relative(ROOT, p)}: ${lines}`);
      }
    }
  };
  walk(join(ROOT, 'src', 'net'));
  assert.deepEqual(long, []);
});

/**
 * The source files of the call chain at this moment, innermost first, one
 * entry per run of frames in the same file.
 */
function callChain(): string[] {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 200;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  const runs: string[] = [];
  for (const m of stack.matchAll(/\/dist\/(src\/[^:)]+)\.js:\d+:\d+/g)) {
    const file = `${m[1]}.ts`;
    if (runs[runs.length - 1] !== file) runs.push(file);
  }
  return runs;
}

/** The files a chain visits more than once, each with the chain. */
function revisited(chain: string[]): string[] {
  return chain.filter((f, i) => chain.indexOf(f) !== i);
}

test('a received segment and a write each cross every file once, driver to socket', (t) => {
  const ts = new TwoStacks(NO_FAULTS, NO_FAULTS, 1);
  const open = (s: Stack): Socket => {
    const sock = s.families.create(AF_INET, SOCK_STREAM, 0, 0);
    assert.ok(typeof sock !== 'number');
    return sock;
  };
  const l = open(ts.a);
  const any = sockAddr(AF_INET);
  any.port = 9000;
  assert.equal(l.ops.bind(l.sk, any, true), 0);
  assert.equal(l.ops.listen(l.sk, 8), 0);
  const c = open(ts.b);
  assert.equal(c.ops.connect(c.sk, { family: AF_INET, addr: ADDR_A, addr6: null, port: 9000 }), -EINPROGRESS);
  ts.advance(5);
  const child = l.ops.accept(l.sk);
  assert.ok(typeof child !== 'number', 'the connection is accepted');

  // Receive: B writes, A's socket is woken with the data queued.
  let rx: string[] = [];
  child.wake = (_sk, events) => {
    if (events & POLLIN && !rx.length) rx = callChain();
  };
  assert.equal(c.ops.sendmsg(c.sk, Buffer.from('ping'), 0, null), 4);
  ts.flush();
  assert.ok(rx.length, 'the data woke the reader');
  t.diagnostic(`receive: ${[...rx].reverse().join(' -> ')}`);
  assert.equal(rx[rx.length - 1], 'src/net/stack.ts', 'the chain starts at the stack\'s receive');
  assert.ok(rx.includes('src/net/ipv4/ip_input.ts') && rx.includes('src/net/ipv4/tcp_ipv4.ts') && rx.includes('src/net/ipv4/tcp_input.ts'), rx.join(', '));
  assert.deepEqual(revisited(rx), [], rx.join(' <- '));

  // Write: A writes, the frame leaves through the device.
  let tx: string[] = [];
  ts.observe('ab', {
    sent: (b, o, n) => {
      if (!tx.length && dataSeq(b, o, n) >= 0) tx = callChain();
    },
  });
  assert.equal(l.ops.sendmsg(child, Buffer.from('pong'), 0, null), 4);
  assert.ok(tx.length, 'the data went out');
  t.diagnostic(`write: ${[...tx].reverse().join(' -> ')}`);
  assert.equal(tx[tx.length - 1], 'src/net/ipv4/af_inet.ts', 'the chain starts at the socket call');
  assert.ok(tx.includes('src/net/ipv4/tcp_output.ts') && tx.includes('src/net/ipv4/ip_output.ts') && tx[0] === 'src/net/core/dev.ts', tx.join(', '));
  assert.deepEqual(revisited(tx), [], tx.join(' <- '));
});
