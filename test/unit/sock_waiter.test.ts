/**
 * SockWaiter: wake-ups collected per user and run after the stack's work,
 * all the waiters due in one microtask: each runs once with its events
 * or'ed, in the order they were woken; one woken while they run runs in the
 * same pass; a cancelled one never runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SockWaiter } from '../../src/net/core/sock.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

test('each waiter runs once per pass with its events or-ed, in wake order; one woken meanwhile runs in the same pass', async () => {
  const ran: [string, number][] = [];
  const c = new SockWaiter((e) => ran.push(['c', e]));
  const a = new SockWaiter((e) => {
    ran.push(['a', e]);
    c.schedule(8);
  });
  const b = new SockWaiter((e) => ran.push(['b', e]));
  b.schedule(1);
  a.schedule(1);
  b.schedule(2);
  a.schedule(4);
  assert.deepEqual(ran, [], 'nothing runs inside the waking code');
  let marker = false;
  queueMicrotask(() => (marker = true));
  await tick();
  assert.deepEqual(ran, [['b', 3], ['a', 5], ['c', 8]]);
  assert.ok(marker);
  b.schedule(16);
  await tick();
  assert.deepEqual(ran.at(-1), ['b', 16], 'and again on the next wake-up, events fresh');
});

test('a cancelled waiter never runs', async () => {
  const ran: string[] = [];
  const gone = new SockWaiter(() => ran.push('gone'));
  const good = new SockWaiter(() => ran.push('good'));
  gone.schedule(1);
  good.schedule(1);
  gone.cancel();
  await tick();
  assert.deepEqual(ran, ['good']);
  gone.schedule(1);
  await tick();
  assert.deepEqual(ran, ['good']);
});
