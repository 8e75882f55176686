/**
 * Repeatable randomness for tests, from the stack's own xorshift32
 * (src/lib/random.ts SeededRandom): a failure replays from its seed.
 */
import { SeededRandom } from '../../src/lib/random.js';

/** `n` bytes no two nearby positions share, so a lost, repeated or shifted piece shows. */
export function seededBytes(n: number, seed = 1): Buffer {
  const r = new SeededRandom(seed);
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = r.u32() & 0xff;
  return b;
}

/** A source of uniform numbers in [0, 1). */
export function seededUnit(seed: number): () => number {
  const r = new SeededRandom(seed);
  return () => r.u32() / 0x100000000;
}
