/**
 * Loss recovery end to end: both ends are our stacks on a virtual clock,
 * joined through the same FaultLine `tapstackd --fault` uses, so whole
 * transfers under loss replay exactly from their seeds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_FAULTS, parseFaultSpec } from '../../src/drivers/fault.js';
import { TwoStacks, dataSeq } from '../lib/twostack.js';

function run(seed: number, bytes: number) {
  // Loss only on the data path: every retransmission answers a real loss,
  // so none should resend a segment that arrived.
  const s = new TwoStacks({ ...NO_FAULTS, loss: 0.01, delay: 20 }, { ...NO_FAULTS, delay: 20 }, seed);
  const arrived = new Set<number>();
  let needless = 0;
  s.observe('ab', {
    sent(b, o, l) {
      const q = dataSeq(b, o, l);
      if (q >= 0 && arrived.has(q)) needless++;
    },
    delivered(b, o, l) {
      const q = dataSeq(b, o, l);
      if (q >= 0) arrived.add(q);
    },
  });
  const ms = s.bulk(bytes);
  return { s, ms, needless };
}

test('RACK: a retransmission sent in the same tick as new data is not marked lost by that data’s SACK', () => {
  // Before send order was tracked, a retransmission sent in the same
  // millisecond as new data counted as "sent before" it (sequence
  // tie-break), so the SACK for the new data, arriving just ahead of the
  // retransmission's ACK, marked it lost again one RTT later: a needless
  // third copy, a D-SACK, and another window reduction in every episode.
  for (const seed of [1, 2, 3]) {
    const { s, ms, needless } = run(seed, 2 * 1048576);
    assert.ok(ms > 0, `seed ${seed}: transfer finished`);
    const ext = s.a.mibs.TcpExt;
    const dropped = s.lineStats('ab').dropped;
    assert.ok(dropped > 5, `seed ${seed}: the line dropped data (${dropped})`);
    assert.equal(needless, 0, `seed ${seed}: retransmissions of segments that had arrived`);
    assert.equal(ext.TCPDSACKRecv, 0, `seed ${seed}: D-SACKs received`);
    // Each drop costs one retransmission (plus any retransmission that was itself dropped).
    assert.ok(s.a.mibs.Tcp.RetransSegs <= dropped, `seed ${seed}: ${s.a.mibs.Tcp.RetransSegs} retransmissions for ${dropped} drops`);
    assert.ok(ext.TCPSackRecovery > 0);
  }
});

test('the fault matrix’s impairments, both ends ours: every transfer completes intact within a bound', () => {
  // The specs of `npm run test:matrix` (1% loss added where it has none, so
  // every run must recover), 512 KiB each, impaired both ways; bulk()
  // checks every byte.
  const matrix = [
    'loss=1%,delay=20ms',
    'loss=5%,delay=10ms',
    'loss=20%,delay=10ms',
    'loss=1%,reorder=25%,delay=20ms',
    'loss=1%,duplicate=10%,delay=20ms',
    'loss=1%,reorder=25%,duplicate=10%,delay=50ms',
  ];
  for (const spec of matrix) {
    const f = parseFaultSpec(spec);
    const s = new TwoStacks(f, f, 11);
    const ms = s.bulk(512 * 1024, { limitMs: 300_000 });
    assert.ok(ms > 0, `${spec}: finished within 300 s of virtual time`);
    assert.ok(s.lineStats('ab').dropped > 0, `${spec}: the line dropped data`);
  }
});
