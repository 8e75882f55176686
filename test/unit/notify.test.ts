import { test } from 'node:test';
import assert from 'node:assert/strict';
import { notifySetup } from '../../src/daemon/notify.js';

test('notifySetup reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID as sd_notify and sd_watchdog_enabled do', () => {
  assert.deepEqual(notifySetup({}, 42), { socket: null, watchdogUsec: 0, ignored: [] }, 'no manager: nothing');
  assert.deepEqual(notifySetup({ NOTIFY_SOCKET: '/run/systemd/notify' }, 42), { socket: '/run/systemd/notify', watchdogUsec: 0, ignored: [] });
  assert.equal(notifySetup({ NOTIFY_SOCKET: '@abstract' }, 42).socket, '@abstract');
  assert.equal(notifySetup({ NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '30000000' }, 42).watchdogUsec, 30_000_000, 'WATCHDOG_PID unset: ours');
  assert.equal(notifySetup({ NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42).watchdogUsec, 30_000_000, 'WATCHDOG_PID ours');
  const other = notifySetup({ NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, 42);
  assert.equal(other.watchdogUsec, 0, "another process's watchdog is not ours");
  assert.equal(other.ignored[0].name, 'WATCHDOG_PID');
  for (const [env, name] of [
    [{ NOTIFY_SOCKET: 'relative' }, 'NOTIFY_SOCKET'],
    [{ NOTIFY_SOCKET: '@' }, 'NOTIFY_SOCKET'],
    [{ NOTIFY_SOCKET: `/${'x'.repeat(107)}` }, 'NOTIFY_SOCKET'],
    [{ NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '0' }, 'WATCHDOG_USEC'],
    [{ NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '1e6' }, 'WATCHDOG_USEC'],
    [{ NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '100', WATCHDOG_PID: 'me' }, 'WATCHDOG_PID'],
    [{ WATCHDOG_USEC: '100' }, 'WATCHDOG_USEC'],
  ] as const) {
    const s = notifySetup(env, 42);
    assert.deepEqual(s.ignored.map((i) => i.name), [name], JSON.stringify(env));
    assert.equal(s.watchdogUsec, 0, JSON.stringify(env));
  }
});
