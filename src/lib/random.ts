import { randomFillSync } from 'node:crypto';

/** The stack's randomness: injected so tests are repeatable. */
export interface Random {
  /** Uniform 32-bit unsigned integer. */
  u32(): number;
}

/** The daemon: the kernel CSPRNG, drawn in blocks so a draw is not a syscall. */
export class CryptoRandom implements Random {
  #pool = new Uint32Array(256);
  #left = 0;
  u32(): number {
    if (this.#left === 0) {
      randomFillSync(this.#pool);
      this.#left = this.#pool.length;
    }
    return this.#pool[--this.#left];
  }
}

/** Tests: xorshift32 from a seed. Not for keys. */
export class SeededRandom implements Random {
  #s: number;
  constructor(seed = 0x2545f491) {
    this.#s = seed >>> 0 || 1;
  }
  u32(): number {
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s;
  }
}
