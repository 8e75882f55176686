/**
 * UDP datagrams the kernel keeps, the stack keeps too: an unmodified python
 * receiver run through `tapstack run` (the preload), a kernel sender in the
 * namespace, the same receiver and sender over veth as the reference. The
 * receiver reads nothing until the sender's burst is over (a datagram to a
 * second port is its cue), so what arrives is what the socket kept: with
 * the burst below the receiver's SO_RCVBUF the kernel keeps all of it
 * (checked here, the premise), and the stack must as well. The datagrams
 * wait in the stack's socket and in the descriptor's pair, which follows
 * SO_RCVBUF.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CLI, Netns, ROOT, exitOf, outputOf, requireIntegration, waitLine, type Daemon } from './netns.js';

const skip = requireIntegration(['python3']);
const TOOLS = join(ROOT, 'bench', 'tools');

let st: Netns;
let a: Netns;
let b: Netns;
let daemon: Daemon;
let RUN: string;

before(async () => {
  if (skip) return;
  st = new Netns('udpl');
  const api = join(st.dir, 'api.sock');
  daemon = await st.startDaemon(['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--api', api]);
  RUN = `${process.execPath} ${CLI} run --api ${api} --`;
  a = new Netns('udpla');
  b = new Netns('udplb');
  a.veth(b, ['10.9.0.1/24'], ['10.9.0.2/24']);
});

after(() => {
  if (daemon && daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
  for (const n of [st, a, b]) n?.destroy();
});

/** How many of a burst of `n` datagrams of `size` bytes the receiver had kept when it started reading. */
async function burst(sender: Netns, recvIn: Netns, prefix: string, host: string, port: number, n: number, size: number, rcvbuf: number): Promise<number> {
  // Ends when n have come, or 2 s without one after the first; 30 s in all.
  const r = recvIn.background(`timeout 40 ${prefix}python3 ${TOOLS}/udp_sink.py ${host} ${port} ${n} 2 30 ${port + 1} ${rcvbuf}`);
  await waitLine(r, /^listening$/m, `the receiver on ${host}:${port}`);
  // As fast as the sender goes (a rate no link here reaches), then the cue.
  const sent = JSON.parse(sender.ok(`python3 ${TOOLS}/udp_source.py ${host} ${port} ${n} ${size} 100000 20 ${port + 1}`, 30_000).trim());
  assert.equal(sent.sent, n, `the sender sent all ${n}`);
  assert.equal(await exitOf(r, 40_000), 0, outputOf(r));
  return JSON.parse(outputOf(r).trim().split('\n').pop()!).received;
}

for (const [what, size, n, rcvbuf] of [
  ['1400-byte datagrams, the default SO_RCVBUF', 1400, 80, 0],
  ['1400-byte datagrams, SO_RCVBUF 212992 (net.core.rmem_max)', 1400, 160, 212_992],
  ['64-byte datagrams, the default SO_RCVBUF', 64, 200, 0],
] as const) {
  test(`a burst the kernel keeps whole reaches a python receiver through the preload whole: ${n} ${what}`, { skip, timeout: 120_000 }, async () => {
    const port = 7000 + size + n;
    const kernel = await burst(a, b, '', '10.9.0.2', port, n, size, rcvbuf);
    assert.equal(kernel, n, `the premise: the kernel's receiver kept all ${n} (this kernel's SO_RCVBUF holds fewer?)`);
    const before = Number(/UdpRcvbufErrors\s+(\d+)/.exec(st.ok(`${process.execPath} ${CLI} --api ${join(st.dir, 'api.sock')} stats`))![1]);
    const stack = await burst(st, st, `${RUN} `, '10.0.0.2', port, n, size, rcvbuf);
    const after = Number(/UdpRcvbufErrors\s+(\d+)/.exec(st.ok(`${process.execPath} ${CLI} --api ${join(st.dir, 'api.sock')} stats`))![1]);
    assert.equal(stack, n, `the stack kept ${stack} of ${n} (UdpRcvbufErrors +${after - before}); the kernel kept ${kernel}`);
    assert.equal(after, before, 'no receive-buffer drop in the stack');
  });
}
