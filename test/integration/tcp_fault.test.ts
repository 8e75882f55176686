/**
 * TCP through an impaired link: the daemon's --fault puts netem-style loss,
 * delay, reordering and duplication on frames both ways (this kernel has no
 * sch_netem), and echo must still return every byte in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Netns, ROOT, exitOf, outputOf, requireIntegration } from './netns.js';

const skip = requireIntegration(['python3']);
const CLIENT = join(ROOT, 'test', 'integration', 'tcp_client.py');
const STACK_MAC = '02:74:73:00:00:02';
const DAEMON_ARGS = ['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24', '--mac', STACK_MAC];

/** How often a run says how far it has got (these runs take minutes). */
const PROGRESS_MS = 20_000;

/** The recovery counters worth seeing after a run. */
const SHOW = ['TCPSackRecovery', 'TCPLossProbes', 'TCPLossProbeRecovery', 'TCPTimeouts', 'TCPSpuriousRTOs', 'TCPLossUndo', 'TCPDSACKUndo', 'TCPFullUndo', 'TCPPartialUndo', 'TCPFastRetrans', 'TCPSlowStartRetrans', 'TCPSACKReorder', 'TCPDSACKRecv', 'TCPDSACKOldSent', 'TCPOFOQueue'];

async function run(t: { diagnostic(msg: string): void }, name: string, fault: string, bytes: number, timeoutS: number, cc = ''): Promise<void> {
  const fns = new Netns(name);
  try {
    const d = await fns.startDaemon([...DAEMON_ARGS, '--fault', fault]);
    // The fault impairs ARP as well: the kernel's three tries could all be lost, and its connect fail
    // with EHOSTUNREACH before TCP is involved. What is tested is TCP, so the kernel knows the stack's address.
    fns.ok(`ip neigh replace 10.0.0.2 lladdr ${STACK_MAC} dev tap0 nud permanent`);
    const p = fns.background(`python3 ${CLIENT} echo 10.0.0.2 7 ${bytes} ${timeoutS} ${cc}`);
    const start = Date.now();
    const progress = setInterval(() => {
      d.counters()
        .then((c) => {
          const tcp = c.Tcp as Record<string, number>;
          console.log(`${fault}: ${Math.round((Date.now() - start) / 1000)} s, the stack has received ${tcp.InSegs} and sent ${tcp.OutSegs} segments (${tcp.RetransSegs} retransmitted)`);
        })
        .catch(() => {});
    }, PROGRESS_MS);
    let code: number | null;
    try {
      code = await exitOf(p, (timeoutS + 15) * 1000);
    } finally {
      clearInterval(progress);
    }
    assert.equal(code, 0, `the echo client ended: ${outputOf(p)}`);
    const r = JSON.parse(outputOf(p).trim().split('\n').pop()!) as Record<string, unknown>;
    const c = await d.counters();
    const ext = c.TcpExt as Record<string, number>;
    t.diagnostic(`${fault}: ${bytes} bytes each way in ${Number(r.seconds).toFixed(1)} s (${((bytes / Number(r.seconds)) / 1024).toFixed(0)} KiB/s); RetransSegs ${(c.Tcp as Record<string, number>).RetransSegs}; ${SHOW.map((k) => `${k} ${ext[k] ?? 0}`).join(', ')}`);
    assert.deepEqual(r.errors, []);
    assert.equal(r.received, bytes);
    assert.equal(r.sha_received, r.sha_sent);
    // Where the line drops, the bytes came back through retransmission; with
    // duplication alone the receiver saw (and D-SACKed) the copies instead.
    if (/loss=/.test(fault)) assert.ok((c.Tcp as Record<string, number>).RetransSegs > 0, 'loss was recovered by retransmission');
    if (/duplicate=/.test(fault)) assert.ok(ext.TCPDSACKOldSent > 0, 'duplicates were seen and D-SACKed');
    await d.stop();
  } finally {
    fns.destroy();
  }
}

// The fault injector's reference impairment, at its full 20 MB. 10% loss in both directions bounds any
// TCP (Linux's included) to roughly MSS/RTT * 1.22/sqrt(p), ~140 KB/s at this RTT:
// the run takes minutes, measured and reported by the diagnostic line.
test('echo under loss 10%, delay 20 ms, reorder 25%, duplicate 5% (both ways) comes back identical', { skip, timeout: 600_000 }, async (t) => {
  const bytes = Number(process.env.TAPSTACK_FAULT_BYTES ?? 20 * 1024 * 1024);
  await run(t, 'tcpf', 'loss=10%,delay=20ms,reorder=25%,duplicate=5%', bytes, 540);
});

// The fault matrix (docs/fault-matrix.md): 50 MB each way under each impairment. Long (an hour and more in
// all: at 20% loss any TCP, Linux's included, moves tens of KB/s), so it is not part of
// `npm test`: `npm run test:matrix` runs it (TAPSTACK_FAULT_MATRIX=1), and
// TAPSTACK_FAULT_MATRIX_BYTES changes the size. test/unit/tcp_loss.test.ts runs the same
// impairments between two of our stacks on the virtual clock in every `npm test`.
const MATRIX = [
  'loss=1%,delay=20ms',
  'loss=5%,delay=10ms',
  'loss=20%,delay=10ms',
  'reorder=25%,delay=50ms',
  'duplicate=10%,delay=20ms',
  'loss=1%,reorder=25%,duplicate=10%,delay=50ms',
];
// The kernel peer runs CUBIC, Linux's default (this machine's default is bbr, which keeps
// sending into 20% loss and fills the echo's receive buffer, a different test; see
// docs/fault-matrix.md). At 20% loss Linux's own echo, kernel to kernel through
// bench/tools/fault_relay, moved 50 MB each way in 1323 s and the stack in 1353 s; a
// single run under random loss varies several-fold, so that case gets two hours.
for (const [i, fault] of process.env.TAPSTACK_FAULT_MATRIX === '1' ? MATRIX.entries() : []) {
  const limitS = /loss=20%/.test(fault) ? 7200 : 3000;
  test(`echo 50 MB each way: ${fault}`, { skip, timeout: (limitS + 120) * 1000 }, async (t) => {
    const bytes = Number(process.env.TAPSTACK_FAULT_MATRIX_BYTES ?? 50 * 1024 * 1024);
    await run(t, `tcpm${i}`, fault, bytes, limitS, 'cubic');
  });
}
