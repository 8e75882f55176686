/**
 * The steering hash as the stack computes it (src/drivers/tap_steer.ts; the
 * program in native/tap_steer.c is checked against it on a real TAP by
 * test/integration/tap_multiqueue.test.ts): flows spread evenly however the
 * kernel steps its ports, and a shard can reach its own queue by its port.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { steerQueue } from '../../src/drivers/tap_steer.js';

test('the kernel\'s ports, in steps of one or two, spread evenly over 2, 3, 4 and 8 queues towards one listening port', () => {
  for (const queues of [2, 3, 4, 8]) {
    for (const step of [1, 2]) {
      const perQueue = new Array<number>(queues).fill(0);
      const flows = 4000;
      for (let i = 0; i < flows; i++) perQueue[steerQueue(32768 + i * step, 80, queues)]++;
      for (const n of perQueue) assert.ok(Math.abs(n - flows / queues) < flows / queues / 10, `${queues} queues, ports in steps of ${step}: ${perQueue}`);
    }
  }
});

test('for any remote port, a run of consecutive local ports reaches every queue', () => {
  for (const queues of [2, 3, 4, 8, 64]) {
    for (const remote of [80, 443, 5201, 33000, 65535]) {
      const seen = new Set<number>();
      for (let local = 49152; seen.size < queues && local < 49152 + 16 * queues; local++) seen.add(steerQueue(remote, local, queues));
      assert.equal(seen.size, queues, `remote port ${remote}, ${queues} queues`);
    }
  }
});

test('a port\'s parity does not decide its queue: the even local ports alone reach every queue, as do the odd ones (a connect search steps by two)', () => {
  for (const queues of [2, 4, 8]) {
    for (const remote of [80, 5201]) {
      for (const first of [50000, 50001]) {
        const seen = new Set<number>();
        for (let local = first; local < first + 64 * queues; local += 2) seen.add(steerQueue(remote, local, queues));
        assert.equal(seen.size, queues, `remote ${remote}, ${queues} queues, local ports from ${first} in steps of 2`);
      }
    }
  }
});

test('the hash is the program\'s: 16-bit ports, a value below the queue count', () => {
  assert.equal(steerQueue(0, 0, 7), 0);
  for (let i = 0; i < 1000; i++) {
    const q = steerQueue((i * 7919) & 0xffff, (i * 104729) & 0xffff, 5);
    assert.ok(Number.isInteger(q) && q >= 0 && q < 5);
  }
  assert.equal(steerQueue(0x1_0050, 0x1_2345, 4), steerQueue(0x50, 0x2345, 4), 'only the low 16 bits of a port count');
});
