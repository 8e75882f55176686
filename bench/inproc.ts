/**
 * What the in-process benches (hotpath.ts, connpath.ts) share: two stacks
 * on a virtual clock joined by a wire that copies frames as the TAP driver
 * does, and the measuring loop (CPU time and the garbage collector's share
 * per run, after a warm-up run that lets the JIT compile the path).
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { Stack } from '../src/net/stack.js';
import { VirtualTime } from '../src/lib/time.js';
import { SeededRandom } from '../src/lib/random.js';
import type { LinkDriver } from '../src/net/core/dev.js';

/** The first stack's address (10.0.0.2) and the second's (10.0.0.1). */
export const ADDR_A = 0x0a000002;
export const ADDR_B = 0x0a000001;

/** A wire like the TAP driver: xmit copies each frame into an arena; drain() hands them to the peer in place. */
export class ArenaWire implements LinkDriver {
  peer!: Stack;
  readonly #arena: Buffer;
  readonly #offs: Int32Array;
  readonly #lens: Int32Array;
  #n = 0;
  #used = 0;

  constructor(
    /** The receiving side sees frames as the TAP reports the kernel's with offloads: checksum vouched for, GRO-sized. */
    readonly tso: boolean,
    arenaBytes: number,
    frames: number,
  ) {
    this.#arena = Buffer.allocUnsafe(arenaBytes);
    this.#offs = new Int32Array(frames);
    this.#lens = new Int32Array(frames);
  }

  xmit(buf: Buffer, off: number, len: number): boolean {
    if (this.#n === this.#offs.length || this.#used + len > this.#arena.length) return false;
    buf.copy(this.#arena, this.#used, off, off + len);
    this.#offs[this.#n] = this.#used;
    this.#lens[this.#n++] = len;
    this.#used += (len + 7) & ~7;
    return true;
  }

  drain(): number {
    const n = this.#n;
    for (let i = 0; i < n; i++) this.peer.receive(this.#arena, this.#offs[i], this.#lens[i], this.tso, this.tso ? 1448 : 0);
    this.#n = 0;
    this.#used = 0;
    return n;
  }
}

/** Stacks a (ADDR_A) and b (ADDR_B) on one virtual clock, up, and flush(): every frame on the wire delivered. */
export function twoStacks(opts: { tso: boolean; arenaBytes: number; frames: number }): { a: Stack; b: Stack; time: VirtualTime; flush: () => void } {
  const time = new VirtualTime(0);
  const wa = new ArenaWire(opts.tso, opts.arenaBytes, opts.frames);
  const wb = new ArenaWire(opts.tso, opts.arenaBytes, opts.frames);
  const a = new Stack({ ifname: 'a', mac: Buffer.from([2, 0, 0, 0, 0, 0xa]), mtu: 1500, ipv4: [{ addr: ADDR_A, prefix: 24 }], gateway: 0 }, wa, time, new SeededRandom(1));
  const b = new Stack({ ifname: 'b', mac: Buffer.from([2, 0, 0, 0, 0, 0xb]), mtu: 1500, ipv4: [{ addr: ADDR_B, prefix: 24 }], gateway: 0 }, wb, time, new SeededRandom(2));
  wa.peer = b;
  wb.peer = a;
  a.up();
  b.up();
  if (opts.tso) {
    for (const s of [a, b]) {
      s.dev.tso = true;
      s.dev.csumOffload = true;
    }
  }
  const flush = () => {
    while (wa.drain() + wb.drain() > 0);
  };
  return { a, b, time, flush };
}

/** One measured run: CPU ms, and the garbage collector's ms and collections within it. */
export interface RunCost {
  cpuMs: number;
  gcMs: number;
  gcs: number;
}

/**
 * `warmup()` once, then `runs` runs of `run()`, each measured. GC entries
 * reach the observer's callback a turn or two of the loop after the
 * collection: a run's are counted once the loop has turned after it.
 */
export async function measureRuns(runs: number, warmup: () => unknown, run: () => unknown): Promise<RunCost[]> {
  let gcMs = 0;
  let gcs = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMs += e.duration;
      gcs++;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const turns = async () => {
    for (let k = 0; k < 3; k++) await new Promise((res) => setImmediate(res));
  };
  await warmup();
  const out: RunCost[] = [];
  for (let r = 0; r < runs; r++) {
    await turns();
    const g0 = gcMs;
    const n0 = gcs;
    const c0 = process.cpuUsage();
    await run();
    const c = process.cpuUsage(c0);
    await turns();
    out.push({ cpuMs: (c.user + c.system) / 1000, gcMs: gcMs - g0, gcs: gcs - n0 });
  }
  obs.disconnect();
  return out;
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
