/**
 * SipHash-2-4 (Aumasson and Bernstein), the keyed hash Linux uses for its
 * connection secrets (lib/siphash.c: secure_tcp_seq, cookie_hash, the
 * timestamp offsets). A SYN flood makes it per packet, so it allocates
 * nothing: 64-bit lanes are pairs of uint32 in locals, and the message is
 * read from a caller's buffer.
 */

/** A 128-bit SipHash key: k0 and k1, each as [lo, hi] 32-bit halves (k[0] is k0's low half). */
export type SipKey = Uint32Array;

/** A fresh key from a source of random 32-bit words. */
export function sipKey(u32: () => number): SipKey {
  return Uint32Array.of(u32(), u32(), u32(), u32());
}

/** A key from 16 bytes, little-endian as the reference implementation reads it. */
export function sipKeyFromBytes(b: Uint8Array): SipKey {
  const dv = new DataView(b.buffer, b.byteOffset, 16);
  return Uint32Array.of(dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint32(8, true), dv.getUint32(12, true));
}

function le32(m: Uint8Array, i: number): number {
  return m[i] | (m[i + 1] << 8) | (m[i + 2] << 16) | (m[i + 3] << 24);
}

/**
 * SipHash-2-4 of m[0, len) under key k. Returns the 64-bit result's low 32
 * bits (what secure_tcp_seq and cookie_hash keep); `siphashHigh` holds the
 * high 32 bits afterwards, for a caller that wants all 64. The state lives in
 * locals (each 64-bit lane a hi/lo pair of int32: uint32 above 2^31 would be
 * doubles) and the round is written once: the
 * message words take two rounds each, the finalization four.
 */
export function siphash24(k: SipKey, m: Uint8Array, len: number): number {
  // "somepseudorandomlygeneratedbytes" xor the key.
  let v0h = (0x736f6d65 ^ k[1]) | 0;
  let v0l = (0x70736575 ^ k[0]) | 0;
  let v1h = (0x646f7261 ^ k[3]) | 0;
  let v1l = (0x6e646f6d ^ k[2]) | 0;
  let v2h = (0x6c796765 ^ k[1]) | 0;
  let v2l = (0x6e657261 ^ k[0]) | 0;
  let v3h = (0x74656462 ^ k[3]) | 0;
  let v3l = (0x79746573 ^ k[2]) | 0;
  const whole = len >>> 3;
  for (let w = 0; w <= whole + 1; w++) {
    let mh = 0;
    let ml = 0;
    let rounds = 2;
    if (w < whole) {
      ml = le32(m, w * 8);
      mh = le32(m, w * 8 + 4);
    } else if (w === whole) {
      // The last word: the remaining bytes, and the length in its top byte.
      const end = whole * 8;
      mh = (len & 0xff) << 24;
      for (let j = 0; j < (len & 7); j++) {
        if (j < 4) ml |= m[end + j] << (8 * j);
        else mh |= m[end + j] << (8 * (j - 4));
      }
          } else {
      v2l = (v2l ^ 0xff) | 0;
      rounds = 4;
    }
    v3h = (v3h ^ mh) | 0;
    v3l = (v3l ^ ml) | 0;
    for (let r = 0; r < rounds; r++) {
      let t: number;
      let lo: number;
      // v0 += v1; v1 = rotl(v1, 13) ^ v0; v0 = rotl(v0, 32)
      lo = (v0l + v1l) | 0;
      v0h = (v0h + v1h + (lo >>> 0 < v0l >>> 0 ? 1 : 0)) | 0;
      v0l = lo;
      t = v1h;
      v1h = (((t << 13) | (v1l >>> 19)) ^ v0h) | 0;
      v1l = (((v1l << 13) | (t >>> 19)) ^ v0l) | 0;
      t = v0h;
      v0h = v0l;
      v0l = t;
      // v2 += v3; v3 = rotl(v3, 16) ^ v2
      lo = (v2l + v3l) | 0;
      v2h = (v2h + v3h + (lo >>> 0 < v2l >>> 0 ? 1 : 0)) | 0;
      v2l = lo;
      t = v3h;
      v3h = (((t << 16) | (v3l >>> 16)) ^ v2h) | 0;
      v3l = (((v3l << 16) | (t >>> 16)) ^ v2l) | 0;
      // v0 += v3; v3 = rotl(v3, 21) ^ v0
      lo = (v0l + v3l) | 0;
      v0h = (v0h + v3h + (lo >>> 0 < v0l >>> 0 ? 1 : 0)) | 0;
      v0l = lo;
      t = v3h;
      v3h = (((t << 21) | (v3l >>> 11)) ^ v0h) | 0;
      v3l = (((v3l << 21) | (t >>> 11)) ^ v0l) | 0;
      // v2 += v1; v1 = rotl(v1, 17) ^ v2; v2 = rotl(v2, 32)
      lo = (v2l + v1l) | 0;
      v2h = (v2h + v1h + (lo >>> 0 < v2l >>> 0 ? 1 : 0)) | 0;
      v2l = lo;
      t = v1h;
      v1h = (((t << 17) | (v1l >>> 15)) ^ v2h) | 0;
      v1l = (((v1l << 17) | (t >>> 15)) ^ v2l) | 0;
      t = v2h;
      v2h = v2l;
      v2l = t;
    }
    v0h = (v0h ^ mh) | 0;
    v0l = (v0l ^ ml) | 0;
  }
  siphashHigh = (v0h ^ v1h ^ v2h ^ v3h) >>> 0;
  return (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
}

/** The high 32 bits of the last siphash24 result. */
export let siphashHigh = 0;
