/**
 * bind() and listen() on a port another socket holds, the same sequences
 * (test/lib/bind_matrix.ts: SO_REUSEADDR, SO_REUSEPORT of the same user and
 * of another, the holder listening, connected, in TIME_WAIT, reset, bound;
 * wildcard and specific addresses of both families, dual-stack and
 * IPV6_V6ONLY) run by one Python program (bind_matrix.py) twice inside a
 * namespace this test creates: on the kernel's sockets, and on the stack's
 * through `tapstack run` (the preload library). Every case must end the
 * same way on both. The kernel's answers are also checked against the
 * record the unit test uses (test/unit/bind_matrix.linux.txt); set
 * BIND_MATRIX_RECORD=1 to write this kernel's answers there instead.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, Netns, ROOT, exitOf, outputOf, requireIntegration, type Daemon } from './netns.js';
import { bindMatrixCases, formatMatrix, matrixRecord, outcomeCode, parseMatrix, type BindOutcome } from '../lib/bind_matrix.js';

const skip = requireIntegration(['python3']);
const MATRIX = join(ROOT, 'test', 'integration', 'bind_matrix.py');
const RECORD = join(ROOT, 'test', 'unit', 'bind_matrix.linux.txt');
const NOBODY = 65534;
const HELPER_PORT = 19000;

let ns: Netns;
let daemon: Daemon;
let api: string;

before(async () => {
  if (skip) return;
  ns = new Netns('bindm');
  const cfg = join(ns.dir, 'bindm.json');
  // The other user's sockets come over the API as nobody: its group may use the API socket.
  writeFileSync(cfg, JSON.stringify({ apiGroup: NOBODY }));
  chmodSync(ns.dir, 0o711);
  api = join(ns.dir, 'api.sock');
  daemon = await ns.startDaemon([
    '--tap', 'tap0',
    '--ipv4', '10.0.0.2/24', '--ipv4', '10.0.0.3/24', '--ipv6', 'fd00::2/64',
    '--host-ipv4', '10.0.0.1/24', '--host-ipv6', 'fd00::1/64',
    '--config', cfg, '--api', api,
  ]);
  // The kernel's own addresses for its run, on its loopback.
  ns.ok('ip addr add 10.9.0.2/24 dev lo && ip addr add 10.9.0.3/24 dev lo && ip -6 addr add fd09::2/64 dev lo nodad');
});

after(() => {
  if (daemon && daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
  ns?.destroy();
});

/** Run the matrix with `prefix` (empty: the kernel); the outcome per case id. */
async function runMatrix(prefix: string, addrs: string, casesFile: string): Promise<Map<string, BindOutcome>> {
  const p = ns.background(`timeout 600 ${prefix} python3 ${MATRIX} ${casesFile} ${addrs} ${HELPER_PORT} ${NOBODY}`);
  const code = await exitOf(p, 620_000);
  const out = outputOf(p);
  assert.equal(code, 0, `bind_matrix.py ${prefix ? 'over the stack' : 'on the kernel'} exited ${code}: ${out.slice(-3000)}`);
  const lines = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as BindOutcome & { done?: number });
  const done = lines.find((l) => l.done !== undefined);
  assert.ok(done, `bind_matrix.py did not finish: ${out.slice(-3000)}`);
  return new Map(lines.filter((l) => l.id).map((l) => [l.id, l]));
}

test('every bind/listen case ends on the stack as on the kernel (AF_INET, AF_INET6 dual-stack and v6-only, SO_REUSEADDR, SO_REUSEPORT)', { skip, timeout: 1_300_000 }, async (t) => {
  const cases = bindMatrixCases(20000);
  const casesFile = join(ns.dir, 'cases.jsonl');
  writeFileSync(casesFile, cases.map((c) => JSON.stringify(c)).join('\n') + '\n');

  const kernel = await runMatrix('', '10.9.0.2 10.9.0.3 fd09::2', casesFile);
  // fd00::2 binds once its DAD is done: the daemon says so.
  await daemon.waitFor((l) => l.msg === 'IPv6 address ready' && l.addr === 'fd00::2');
  const stack = await runMatrix(`${process.execPath} ${CLI} run --api ${api} --`, '10.0.0.2 10.0.0.3 fd00::2', casesFile);
  assert.equal(kernel.size, cases.length, 'the kernel ran every case');
  assert.equal(stack.size, cases.length, 'the stack ran every case');

  const setup = [...kernel.values(), ...stack.values()].filter((o) => o.bind.startsWith('setup'));
  assert.deepEqual(setup.map((o) => `${o.id}: ${o.bind}`), [], 'every holder reached its state');

  const wrong: string[] = [];
  for (const c of cases) {
    const k = outcomeCode(kernel.get(c.id)!);
    const s = outcomeCode(stack.get(c.id)!);
    if (k !== s) wrong.push(`${c.id}: kernel ${k}, stack ${s}`);
  }
  if (wrong.length) t.diagnostic(`the stack's matrix:\n${formatMatrix(cases, stack)}`);
  assert.deepEqual(wrong, [], `${wrong.length} of ${cases.length} cases differ (O: bind and listen work, L: listen EADDRINUSE, B: bind EADDRINUSE)`);

  // The unit test's record of Linux: still what this kernel answers?
  const kernelRelease = ns.ok('uname -r').trim();
  if (process.env.BIND_MATRIX_RECORD) {
    writeFileSync(RECORD, matrixRecord(kernelRelease.split('.').slice(0, 2).join('.'), cases, kernel));
    return;
  }
  const recorded = parseMatrix(readFileSync(RECORD, 'utf8'), cases);
  const stale = cases.filter((c) => recorded.get(c.id) !== outcomeCode(kernel.get(c.id)!)).map((c) => `${c.id}: recorded ${recorded.get(c.id)}, kernel ${outcomeCode(kernel.get(c.id)!)}`);
  if (stale.length) t.diagnostic(`kernel ${kernelRelease} answers ${stale.length} cases unlike ${RECORD} (BIND_MATRIX_RECORD=1 rewrites it):\n${stale.slice(0, 50).join('\n')}`);
});
