/**
 * Busy reading (docs/api.md "Busy reading", TAPSTACK_BUSY_READ): a
 * client-library ringed socket that finds its down ring empty watches it
 * before it announces a sleep, so data published meanwhile needs no
 * doorbell. The daemon's side runs in a worker thread (its own mapping of
 * the same memfd, role daemon): it publishes one byte 300 µs after the
 * last echo (a network round trip's gap), waits (spinning on the up ring,
 * bounded) for the echo, and counts the bells it had to ring.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { unixAddon } from '../../src/api/unix.js';
import { RingSocket, busyReadUs } from '../../src/client/ring_socket.js';

const ux = unixAddon();
/** The addon unixAddon() loads (dist/test/unit -> build/Release), for the worker. */
const ADDON = fileURLToPath(new URL('../../../build/Release/unix.node', import.meta.url));
const ROUNDS = 200;

/** The daemon's side, in a worker: ROUNDS one-byte messages down, each echoed up; answers the bells it rang. */
const DAEMON = `
const { parentPort, workerData } = require('node:worker_threads');
const ux = require(workerData.addon);
const h = ux.ringAttach(workerData.memfd, 1);
if (typeof h === 'number') throw new Error('ringAttach: ' + h);
ux.ringBell(h, workerData.bell);
const one = Buffer.from([0x61]);
const back = Buffer.alloc(1);
const deadline = Date.now() + 20000;
let echoed = 0;
for (let i = 0; i < workerData.rounds && Date.now() < deadline; i++) {
  // The gap a network round trip would leave between a reply and the next request (spun, not slept):
  // long enough for a reader without busy read to have gone to sleep.
  const t = process.hrtime.bigint();
  while (process.hrtime.bigint() - t < 300000n);
  if (ux.ringWrite(h, one, 0, 1) !== 1) throw new Error('ringWrite');
  for (;;) {
    const n = ux.ringRead(h, back, 0, 1);
    if (n === 1) { echoed++; break; }
    if (n !== -11) throw new Error('ringRead: ' + n);
    if (Date.now() >= deadline) break;
  }
}
parentPort.postMessage({ echoed, bells: ux.ringBells(h) });
`;

/** Echo ROUNDS bytes through a RingSocket with TAPSTACK_BUSY_READ=`busy`: the bells the daemon's side rang. */
async function bellsFor(busy: string | undefined): Promise<{ echoed: number; bells: number }> {
  const saved = process.env.TAPSTACK_BUSY_READ;
  if (busy === undefined) delete process.env.TAPSTACK_BUSY_READ;
  else process.env.TAPSTACK_BUSY_READ = busy;
  const fdOut = new Int32Array(1);
  const d = ux.ringCreate(4096, 4096, fdOut);
  assert.ok(d, `ringCreate: ${fdOut[0]}`);
  const bells = new Int32Array(2);
  assert.equal(ux.socketPair(4096, 4096, bells), 0);
  let s: RingSocket | null = null;
  try {
    const a = ux.ringAttach(fdOut[0], 0);
    assert.notEqual(typeof a, 'number', 'ringAttach');
    s = new RingSocket(a as Exclude<typeof a, number>, bells[1]);
    const sock = s;
    sock.on('data', (b: Buffer) => sock.write(b));
    const w = new Worker(DAEMON, {
      eval: true,
      workerData: { addon: ADDON, memfd: fdOut[0], bell: bells[0], rounds: ROUNDS },
    });
    return await new Promise((res, rej) => {
      w.once('message', res);
      w.once('error', rej);
    });
  } finally {
    if (saved === undefined) delete process.env.TAPSTACK_BUSY_READ;
    else process.env.TAPSTACK_BUSY_READ = saved;
    s?.destroy();
    ux.ringClose(d!);
    ux.close(fdOut[0]);
    ux.close(bells[0]);
  }
}

test('TAPSTACK_BUSY_READ: µs, off unless a positive number, at most 10 000', () => {
  assert.equal(busyReadUs({}), 0);
  assert.equal(busyReadUs({ TAPSTACK_BUSY_READ: '0' }), 0);
  assert.equal(busyReadUs({ TAPSTACK_BUSY_READ: '-5' }), 0);
  assert.equal(busyReadUs({ TAPSTACK_BUSY_READ: 'x' }), 0);
  assert.equal(busyReadUs({ TAPSTACK_BUSY_READ: '50' }), 50);
  assert.equal(busyReadUs({ TAPSTACK_BUSY_READ: '12.7' }), 12);
  assert.equal(busyReadUs({ TAPSTACK_BUSY_READ: '99999' }), 10_000);
});

test('busy read: a ringed socket watches its empty ring before it sleeps, so a reply that comes meanwhile needs no doorbell; off, every message rings', { timeout: 60_000 }, async () => {
  const off = await bellsFor(undefined);
  assert.equal(off.echoed, ROUNDS, 'every byte echoed (busy read off)');
  assert.ok(off.bells >= ROUNDS / 2, `off: the reader sleeps after each message, so they ring (${off.bells} bells for ${ROUNDS})`);
  const on = await bellsFor('10000');
  assert.equal(on.echoed, ROUNDS, 'every byte echoed (busy read on)');
  assert.ok(on.bells < ROUNDS / 4, `on: the spinning reader saw the bytes come (${on.bells} bells for ${ROUNDS})`);
});
