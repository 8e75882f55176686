import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Timer, TimerQueue, VirtualTime } from '../../src/lib/time.js';

test('timers fire in expiry order, each at its own time', () => {
  const vt = new VirtualTime();
  const fired: [string, number][] = [];
  const mk = (name: string) => new Timer(() => fired.push([name, vt.now()]));
  const a = mk('a');
  const b = mk('b');
  const c = mk('c');
  vt.timers.mod(a, 300);
  vt.timers.mod(b, 100);
  vt.timers.mod(c, 200);
  vt.advance(250);
  assert.deepEqual(fired, [['b', 100], ['c', 200]]);
  vt.advance(100);
  assert.deepEqual(fired.at(-1), ['a', 300]);
  assert.equal(vt.now(), 350);
});

test('del cancels; mod re-arms earlier or later', () => {
  const q = new TimerQueue();
  let n = 0;
  const t = new Timer(() => n++);
  const u = new Timer(() => n += 10);
  q.mod(t, 50);
  q.mod(u, 60);
  assert.equal(q.del(t), true);
  assert.equal(q.del(t), false);
  q.mod(u, 10);
  assert.equal(q.next(), 10);
  q.mod(u, 500);
  q.run(100);
  assert.equal(n, 0);
  q.run(500);
  assert.equal(n, 10);
  assert.equal(q.size, 0);
});

test('a callback that re-arms itself for later does not loop', () => {
  const vt = new VirtualTime();
  let runs = 0;
  const t: Timer = new Timer(() => {
    runs++;
    vt.timers.mod(t, vt.now() + 1000);
  });
  vt.timers.mod(t, 1000);
  vt.advance(10_500);
  assert.equal(runs, 10);
});

test('heap stays ordered under many random operations', () => {
  const q = new TimerQueue();
  const timers = Array.from({ length: 500 }, () => new Timer(() => {}));
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) % 100000);
  for (let i = 0; i < 5000; i++) {
    const t = timers[rnd() % timers.length];
    if (rnd() % 3 === 0) q.del(t);
    else q.mod(t, rnd());
  }
  let last = -1;
  while (q.size) {
    const next = q.next();
    assert.ok(next >= last);
    last = next;
    q.run(next);
  }
});

test('timers sharing one function are called with their own argument', () => {
  const vt = new VirtualTime();
  const fired: [string, number][] = [];
  const owner = { name: '' };
  const fn = (o: typeof owner) => fired.push([o.name, vt.now()]);
  const x = { name: 'x' };
  const y = { name: 'y' };
  const tx = new Timer(fn, x);
  const ty = new Timer(fn, y);
  vt.timers.mod(tx, 20);
  vt.timers.mod(ty, 10);
  vt.advance(30);
  assert.deepEqual(fired, [['y', 10], ['x', 20]]);
});
