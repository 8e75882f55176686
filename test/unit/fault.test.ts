import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FaultLine, parseFaultSpec } from '../../src/drivers/fault.js';
import { VirtualTime } from '../../src/lib/time.js';
import { SeededRandom } from '../../src/lib/random.js';

test('fault specs parse like netem arguments; bad parts are named', () => {
  assert.deepEqual(parseFaultSpec('loss=10%,delay=20ms,reorder=25%,duplicate=5%'), { loss: 0.1, delay: 20, reorder: 0.25, duplicate: 0.05 });
  assert.throws(() => parseFaultSpec('loss=10'), /"loss=10"/);
  assert.throws(() => parseFaultSpec('jitter=5ms'), /"jitter=5ms"/);
  assert.throws(() => parseFaultSpec('loss=120%'), /0% to 100%/);
});

test('loss, duplication, delay and reordering in the proportions asked for', () => {
  const vt = new VirtualTime();
  const got: number[] = [];
  const line = new FaultLine(parseFaultSpec('loss=10%,delay=20ms,reorder=25%,duplicate=5%'), vt, new SeededRandom(7), (b) => got.push(b.readUInt32BE(0)));
  const N = 20_000;
  const f = Buffer.alloc(4);
  for (let i = 0; i < N; i++) {
    f.writeUInt32BE(i);
    line.push(f, 0, 4);
    vt.advance(1);
  }
  vt.advance(100);
  const s = line.stats;
  assert.ok(Math.abs(s.dropped / N - 0.1) < 0.01, `loss ${s.dropped / N}`);
  assert.ok(Math.abs(s.duplicated / N - 0.045) < 0.01, `duplicate ${s.duplicated / N}`);
  assert.equal(got.length, N - s.dropped + s.duplicated);
  let outOfOrder = 0;
  for (let i = 1; i < got.length; i++) if (got[i] < got[i - 1]) outOfOrder++;
  assert.ok(outOfOrder > N * 0.1, `reordered deliveries ${outOfOrder}`);
  assert.equal(s.passed, got.length);
});

test('a delayed frame is a copy: the caller may reuse its buffer', () => {
  const vt = new VirtualTime();
  const got: string[] = [];
  const line = new FaultLine(parseFaultSpec('delay=5ms'), vt, new SeededRandom(1), (b, o, l) => got.push(b.toString('utf8', o, o + l)));
  const buf = Buffer.from('first');
  line.push(buf, 0, 5);
  buf.write('XXXXX');
  vt.advance(5);
  assert.deepEqual(got, ['first']);
});

test('rate=N(kbit|mbit|gbit): a bottleneck serializing frames one after another before the delay, as netem rate', () => {
  assert.deepEqual(parseFaultSpec('delay=10ms,rate=8mbit'), { loss: 0, delay: 10, reorder: 0, duplicate: 0, rate: 1_000_000 });
  assert.throws(() => parseFaultSpec('rate=10'), /rate=N\(kbit\|mbit\|gbit\)/);
  assert.throws(() => parseFaultSpec('rate=0mbit'), /above 0/);
  const vt = new VirtualTime();
  const got: [number, number][] = [];
  // 1000 bytes per ms.
  const line = new FaultLine(parseFaultSpec('delay=10ms,rate=8mbit'), vt, new SeededRandom(1), (b, o) => got.push([b[o], vt.now()]));
  for (let i = 0; i < 3; i++) line.push(Buffer.alloc(500, i), 0, 500);
  vt.advance(20);
  line.push(Buffer.alloc(2000, 3), 0, 2000);
  vt.advance(20);
  assert.deepEqual(got, [[0, 10.5], [1, 11], [2, 11.5], [3, 32]]);
});
