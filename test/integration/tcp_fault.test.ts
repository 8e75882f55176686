/**
 * TCP through an impaired link: the daemon's --fault puts netem-style loss,
 * delay, reordering and duplication on frames both ways (this kernel has no
 * sch_netem), and echo must still return every byte in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Netns, ROOT, requireIntegration } from './netns.js';

const skip = requireIntegration(['python3']);
const CLIENT = join(ROOT, 'test', 'integration', 'tcp_client.py');
const DAEMON_ARGS = ['--tap', 'tap0', '--ipv4', '10.0.0.2/24', '--host-ipv4', '10.0.0.1/24'];

function client(n: Netns, args: string, timeoutS: number): Record<string, unknown> {
  const out = n.ok(`python3 ${CLIENT} ${args} ${timeoutS}`, (timeoutS + 15) * 1000);
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

test('echo under loss 10%, delay 20 ms, reorder 25%, duplicate 5% (both ways) comes back identical', { skip, timeout: 300_000 }, async () => {
  const fns = new Netns('tcpf');
  try {
    const d = await fns.startDaemon([...DAEMON_ARGS, '--fault', 'loss=10%,delay=20ms,reorder=25%,duplicate=5%']);
    // The issue asks for 20 MB. With part 1's recovery (Reno/NewReno, no SACK
    // scoreboard, no RACK) 10% loss both ways moves ~30 KB/s here, so the suite
    // runs 256 KiB (dozens of recoveries already); TAPSTACK_FAULT_BYTES=20971520 runs the full size. SACK
    // recovery (TCP part 2) is what makes 20 MB practical.
    const bytes = Number(process.env.TAPSTACK_FAULT_BYTES ?? 256 * 1024);
    const r = client(fns, `echo 10.0.0.2 7 ${bytes}`, 240);
    assert.deepEqual(r.errors, []);
    assert.equal(r.received, bytes);
    assert.equal(r.sha_received, r.sha_sent);
    const c = await d.counters();
    assert.ok((c.Tcp as Record<string, number>).RetransSegs > 0, 'loss was recovered by retransmission');
    await d.stop();
  } finally {
    fns.destroy();
  }
});
