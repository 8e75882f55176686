/**
 * The errno of every data and control call on a TCP socket that is not a
 * plain open connection (never connected, bound, listening, reset with the
 * error pending and after it was read, shut for writing, the peer's FIN
 * received, shut both ways), and whether it raised SIGPIPE: one Python
 * program (errno_matrix.py) runs twice inside a namespace this test
 * creates, on the kernel's sockets and on the stack's through `tapstack
 * run` (the preload library), and the two must answer alike, call for call.
 * Linux is measured, not remembered: send() on a never-connected socket is
 * EPIPE with SIGPIPE there (sk_stream_wait_connect), not ENOTCONN.
 * ERRNO_MATRIX_DUMP=FILE writes both sets of answers there as JSON, to
 * study a difference.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, Netns, ROOT, exitOf, outputOf, requireIntegration, type Daemon } from './netns.js';

// The library reads through rings by default: this pass is the socketpair's (the _rings file sets 1 first).
process.env.TAPSTACK_PRELOAD_RINGS ??= '0';

const skip = requireIntegration(['python3']);
const MATRIX = join(ROOT, 'test', 'integration', 'errno_matrix.py');
const PORT = 19100;

type Row = { family: string; state: string; call: string; out: string };

let ns: Netns;
let daemon: Daemon;
let api: string;

before(async () => {
  if (skip) return;
  ns = new Netns('errm');
  api = join(ns.dir, 'api.sock');
  daemon = await ns.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--ipv6', 'fd00::2/64', '--host-ipv4', '10.0.0.1/24', '--host-ipv6', 'fd00::1/64', '--api', api]);
  // The kernel's own addresses for its run, on its loopback.
  ns.ok('ip addr add 10.9.0.2/24 dev lo && ip -6 addr add fd09::2/64 dev lo nodad');
});

after(() => {
  if (daemon && daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
  ns?.destroy();
});

async function runMatrix(prefix: string, v4: string, v6: string): Promise<Map<string, string>> {
  const p = ns.background(`timeout 120 ${prefix} python3 ${MATRIX} ${v4} ${v6} ${PORT}`);
  const code = await exitOf(p, 130_000);
  const out = outputOf(p);
  assert.equal(code, 0, `errno_matrix.py ${prefix ? 'over the stack' : 'on the kernel'} exited ${code}: ${out.slice(-3000)}`);
  const lines = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Row & { done?: number });
  assert.ok(lines.some((l) => l.done !== undefined), `errno_matrix.py did not finish: ${out.slice(-3000)}`);
  return new Map(lines.filter((l) => l.call).map((l) => [`${l.family} ${l.state} ${l.call}`, l.out]));
}

test('every call on an unconnected, listening, reset or shut TCP socket fails (or not) on the stack as on the kernel, SIGPIPE included', { skip, timeout: 300_000 }, async () => {
  const kernel = await runMatrix('', '10.9.0.2', 'fd09::2');
  await daemon.waitFor((l) => l.msg === 'IPv6 address ready' && l.addr === 'fd00::2');
  const stack = await runMatrix(`${process.execPath} ${CLI} run --api ${api} --`, '10.0.0.2', 'fd00::2');
  assert.ok(kernel.size >= 200, `the kernel ran ${kernel.size} cases`);
  assert.equal(stack.size, kernel.size, 'the stack ran every case');
  // The measurement itself: what Linux answers for a send on a socket that never connected.
  assert.equal(kernel.get('inet fresh send'), 'EPIPE+SIGPIPE');
  if (process.env.ERRNO_MATRIX_DUMP) writeFileSync(process.env.ERRNO_MATRIX_DUMP, JSON.stringify({ kernel: [...kernel], stack: [...stack] }));
  const wrong = [...kernel].filter(([k, v]) => stack.get(k) !== v).map(([k, v]) => `${k}: kernel ${v}, stack ${stack.get(k)}`);
  assert.deepEqual(wrong, [], `${wrong.length} of ${kernel.size} calls differ`);
});
