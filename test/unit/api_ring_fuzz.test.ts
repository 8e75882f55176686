/**
 * The ring fuzzer: a client that writes hostile values into its socket's
 * shared memory (indices far and near, wrapped, backwards; flags; the
 * daemon's own words too, which it must never read back) and rings the
 * doorbell at random while the daemon pumps data both ways through that
 * socket. The daemon treats the mapping as wire input: it must stay up,
 * drop no client for a bug of ours, count each corrupted socket once
 * (Api.RingFaults) and report EFAULT by SO_ERROR, and the same client's
 * other socket, an echo through rings beside it, must carry every byte
 * intact. Seeded; RING_FUZZ_SECONDS (default 3) bounds it, so a longer run
 * is `RING_FUZZ_SECONDS=600 node --test dist/test/unit/api_ring_fuzz.test.js`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { inProcessApi, until } from '../lib/api_inproc.js';
import { unixAddon, type RingHandle } from '../../src/api/unix.js';
import { Client, connect, createServer, type StackSocket } from '../../src/client/index.js';
import { AF_INET, SO_ERROR, SOCK_NONBLOCK, SOCK_STREAM, SOL_SOCKET } from '../../src/uapi.js';
import { seededUnit } from '../lib/seeded.js';

const ux = unixAddon();
const SECONDS = Number(process.env.RING_FUZZ_SECONDS ?? 3);
const SEED = Number(process.env.RING_FUZZ_SEED ?? (Date.now() & 0x7fffffff));
/** The header words (native/ring.h): ring UP at 64, DOWN at 320; prod, prod_flags, cons, cons_flags. */
const WORDS = [64, 68, 128, 132, 320, 324, 384, 388];
/** The ones the application owns (the daemon reads only these). */
const APP_WORDS = [64, 68, 384, 388];

/**
 * Each lie on its own, at a known moment: the producer index of the up ring
 * (the daemon is asleep on it; the doorbell wakes it), and the consumer
 * index of the down ring (the daemon has data to put there). Each ends that
 * socket once: RingFaults + 1, SO_ERROR EFAULT, the peer sees FIN after
 * what was taken before, and the client's other connection goes on.
 */
test('ring faults, case by case: a bad up prod, a bad down cons; that socket ends with EFAULT and FIN, its neighbour goes on', async () => {
  const start = inProcessApi('tapstack-ring-fault-');
  const { h, server, path } = start();
  const tick = setInterval(() => h.time.advance(5), 5);
  const c = new Client({ path, rings: true });
  try {
    await c.ready();
    const lst = await c.socket(AF_INET, SOCK_STREAM);
    ux.close(lst.data);
    ux.close(lst.ring);
    await c.bind(lst.fd, { family: AF_INET, addr: '10.0.0.2', port: 6100 });
    await c.listen(lst.fd, 8);
    const conn = async () => {
      const b = await c.socket(AF_INET, SOCK_STREAM);
      const connecting = c.connect(b.fd, { family: AF_INET, addr: '10.0.0.2', port: 6100 });
      const a = await c.accept(lst.fd);
      await connecting;
      const bh = ux.ringAttach(b.ring, 0) as RingHandle;
      const ah = ux.ringAttach(a.ring, 0) as RingHandle;
      ux.close(b.ring);
      ux.close(a.ring);
      ux.ringBell(bh, b.data);
      ux.ringBell(ah, a.data);
      return { b, a, bh, ah, map: ux.ringView(bh, 2) };
    };
    const readAll = async (hd: RingHandle, want: number | 'eof'): Promise<Buffer> => {
      const out: Buffer[] = [];
      const buf = Buffer.alloc(65536);
      let n = 0;
      await until(() => {
        for (;;) {
          const r = ux.ringRead(hd, buf, 0, buf.length);
          if (r === 0) return want === 'eof';
          if (r < 0) return want !== 'eof' && n >= want;
          out.push(Buffer.from(buf.subarray(0, r)));
          n += r;
        }
      }, `ring data (${want})`);
      return Buffer.concat(out);
    };
    const x = await conn();
    const y = await conn();
    // Honest first: bytes up from B reach A.
    assert.equal(ux.ringWrite(x.bh, Buffer.from('before'), 0, 6), 6);
    assert.equal((await readAll(x.ah, 6)).toString(), 'before');
    // The lie: B's up prod a whole ring ahead of what the daemon consumed, then the doorbell.
    x.map.writeUInt32LE(x.map.readUInt32LE(64) + x.map.readUInt32LE(8) + 1, 64); // prod + up_size + 1
    ux.write(x.b.data, Buffer.from([1]), 0, 1);
    await until(() => server.mib.RingFaults === 1, 'the fault to be counted');
    assert.equal(await c.getsockoptInt(x.b.fd, SOL_SOCKET, SO_ERROR), 14, 'EFAULT');
    assert.equal((await readAll(x.ah, 'eof')).length, 0, 'the peer reads FIN, nothing of the lie');
    // The neighbour on the same client: both ways still.
    assert.equal(ux.ringWrite(y.bh, Buffer.from('up'), 0, 2), 2);
    assert.equal((await readAll(y.ah, 2)).toString(), 'up');
    assert.equal(ux.ringWrite(y.ah, Buffer.from('down'), 0, 4), 4);
    assert.equal((await readAll(y.bh, 4)).toString(), 'down');
    // The other lie: B's down cons ahead of what the daemon produced, as data comes down to it.
    y.map.writeUInt32LE(y.map.readUInt32LE(320) + 5, 384);
    assert.equal(ux.ringWrite(y.ah, Buffer.from('more'), 0, 4), 4);
    await until(() => server.mib.RingFaults === 2, 'the second fault');
    assert.equal(await c.getsockoptInt(y.b.fd, SOL_SOCKET, SO_ERROR), 14);
    assert.equal(server.mib.ClientsDropped, 0);
    for (const t of [x, y]) {
      ux.ringClose(t.bh, t.map);
      ux.ringClose(t.ah);
      ux.close(t.a.data);
      ux.close(t.b.data);
    }
  } finally {
    c.close();
    clearInterval(tick);
    server.stop();
  }
});

test(`ring fuzz: hostile indices and flags in shared memory never hurt the daemon or another socket (seed ${SEED}, ${SECONDS}s)`, async () => {
  const start = inProcessApi('tapstack-ring-fuzz-');
  const { h, server, path } = start();
  const tick = setInterval(() => h.time.advance(5), 5);
  const rand = seededUnit(SEED);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)];
  const errors: Error[] = [];
  const onUncaught = (e: Error) => errors.push(e);
  process.on('uncaughtException', onUncaught);
  // The healthy neighbour: an echo server through rings, used once per episode.
  const echo = createServer({ api: path, rings: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(7000, '10.0.0.2', () => r()));
  const hostile = new Client({ path, rings: true });
  await hostile.ready();
  assert.equal(hostile.ringsOn, true);
  const lst = await hostile.socket(AF_INET, SOCK_STREAM);
  ux.close(lst.data);
  ux.close(lst.ring);
  await hostile.bind(lst.fd, { family: AF_INET, addr: '10.0.0.2', port: 6000 });
  await hostile.listen(lst.fd, 64);
  const end = Date.now() + SECONDS * 1000;
  let episodes = 0;
  let faultsSeen = 0;
  try {
    while (Date.now() < end) {
      episodes++;
      const faultsBefore = server.mib.RingFaults;
      // B: the socket whose memory is abused; C: its peer (accepted), used correctly to send down to B.
      const b = await hostile.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
      const connecting = hostile.connect(b.fd, { family: AF_INET, addr: '10.0.0.2', port: 6000 }).catch(() => {});
      const c = await hostile.accept(lst.fd);
      await connecting;
      const bh = ux.ringAttach(b.ring, 0) as RingHandle;
      const ch = ux.ringAttach(c.ring, 0) as RingHandle;
      assert.notEqual(typeof bh, 'number');
      ux.close(b.ring);
      ux.close(c.ring);
      ux.ringBell(bh, b.data);
      ux.ringBell(ch, c.data);
      const map = ux.ringView(bh, 2);
      const up = ux.ringView(bh, 0);
      const junk = Buffer.alloc(65536);
      const steps = 20 + Math.floor(rand() * 200);
      for (let i = 0; i < steps; i++) {
        const a = rand();
        if (a < 0.3) {
          // A word of the header: mostly the application's own, sometimes the daemon's.
          const off = rand() < 0.8 ? pick(APP_WORDS) : pick(WORDS);
          const cur = map.readUInt32LE(off);
          const v = pick([0, 1, 2, 3, cur + 1, cur - 1, cur + 4096, cur + 65536, cur + 262144, cur + 262145, cur + 1048576, cur + 1048577, 0xffffffff, 0x80000000, Math.floor(rand() * 0x100000000)]);
          map.writeUInt32LE(v >>> 0, off);
        } else if (a < 0.45) {
          // Honest traffic on the abused socket too, so the daemon is mid-stream when the lie comes.
          ux.ringWrite(bh, junk, 0, Math.floor(rand() * 65536));
          const rd = Buffer.alloc(4096);
          ux.ringRead(bh, rd, 0, rd.length);
        } else if (a < 0.6) {
          up.fill(Math.floor(rand() * 256), Math.floor(rand() * up.length), Math.floor(rand() * up.length));
        } else if (a < 0.75) {
          ux.write(b.data, Buffer.from([1]), 0, 1); // the doorbell, at any time
        } else if (a < 0.9) {
          ux.ringWrite(ch, junk, 0, Math.floor(rand() * 65536)); // data down to B
          const rd = Buffer.alloc(65536);
          ux.ringRead(ch, rd, 0, rd.length);
        } else {
          await new Promise((r) => setImmediate(r));
        }
        if (i % 8 === 0) await new Promise((r) => setImmediate(r));
      }
      // Turns of the loop, not time: the daemon (in this process) pumps what the episode left.
      for (let k = 0; k < 4; k++) await new Promise((r) => setImmediate(r));
      // A faulted socket says why, once; a socket may fault only once.
      const faulted = server.mib.RingFaults - faultsBefore;
      assert.ok(faulted <= 1, `only B is abused, and a socket faults once: ${faulted}`);
      if (faulted > 0) {
        faultsSeen++;
        assert.equal(await hostile.getsockoptInt(b.fd, SOL_SOCKET, SO_ERROR), 14, 'EFAULT, once');
        assert.equal(await hostile.getsockoptInt(b.fd, SOL_SOCKET, SO_ERROR), 0);
      }
      // The neighbour: an echo through rings, every byte back.
      const data = Buffer.alloc(20000 + Math.floor(rand() * 200000));
      for (let i = 0; i < data.length; i++) data[i] = (i * 31 + episodes) & 0xff;
      const back: Buffer[] = [];
      const s = connect({ host: '10.0.0.2', port: 7000, api: path, rings: true }) as StackSocket;
      await new Promise<void>((res, rej) => {
        s.on('error', rej);
        s.on('data', (d: Buffer) => back.push(d));
        s.on('end', () => res());
        s.on('connect', () => s.end(data));
      });
      s.destroy();
      const hash = (x: Buffer[]) => createHash('sha256').update(Buffer.concat(x)).digest('hex');
      assert.equal(hash(back), hash([data]), `episode ${episodes}: the neighbour's echo is intact`);
      ux.ringClose(bh, map, up);
      ux.ringClose(ch);
      ux.close(b.data);
      ux.close(c.data);
      await hostile.closeFd(b.fd);
      await hostile.closeFd(c.fd);
      assert.equal(server.mib.ClientsDropped, 0, 'no client dropped: no bug of ours was hit');
      assert.deepEqual(errors, []);
    }
    // The fuzzer must reach the checks it is for.
    assert.ok(faultsSeen > 0, `no ring fault in ${episodes} episodes`);
    console.log(`# ring fuzz: seed ${SEED}, ${episodes} episodes, ${faultsSeen} with a fault`);
    assert.ok(server.mib.Rings > episodes, 'rings were used');
  } finally {
    process.off('uncaughtException', onUncaught);
    hostile.close();
    await new Promise<void>((r) => echo.close(() => r()));
    clearInterval(tick);
    server.stop();
    await until(() => true, 'nothing');
  }
});
