/** TCP sequence-number arithmetic modulo 2^32 (the kernel's before()/after()). */

/** seq1 is before seq2. */
export function before(seq1: number, seq2: number): boolean {
  return ((seq1 - seq2) | 0) < 0;
}

/** seq2 is before seq1. */
export function after(seq1: number, seq2: number): boolean {
  return ((seq2 - seq1) | 0) < 0;
}

/** seq2 <= seq1 <= seq3. */
export function between(seq1: number, seq2: number, seq3: number): boolean {
  return ((seq3 - seq2) >>> 0) >= ((seq1 - seq2) >>> 0);
}

export function seqAdd(seq: number, n: number): number {
  return (seq + n) >>> 0;
}
