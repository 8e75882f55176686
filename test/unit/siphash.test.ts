import { test } from 'node:test';
import assert from 'node:assert/strict';
import { siphash24, siphashHigh, sipKeyFromBytes } from '../../src/lib/siphash.js';

/**
 * The reference vectors: key 00..0f, message 00..(n-1), the 64-bit result as
 * the reference implementation writes it (little-endian bytes). The paper's
 * vectors[0], [1], [8] and [15]; the others from OpenSSL's SIPHASH MAC.
 */
const VECTORS: [number, string][] = [
  [0, '310e0edd47db6f72'],
  [1, 'fd67dc93c539f874'],
  [7, '37d1018bf50002ab'],
  [8, '6224939a79f5f593'],
  [9, 'b0e4a90bdf82009e'],
  [12, 'fbe50e86bc8f1e75'],
  [15, 'e545be4961ca29a1'],
  [16, 'db9bc2577fcc2a3f'],
  [24, '94af49f6c650adb8'],
  [36, 'b4a31508beff4d31'],
  [44, 'f21df2e41d4535f9'],
  [63, '724506eb4c328a95'],
];

test('SipHash-2-4 gives the reference vectors for every message length class (empty, partial and whole words, several blocks)', () => {
  const key = sipKeyFromBytes(Uint8Array.from({ length: 16 }, (_, i) => i));
  const m = Uint8Array.from({ length: 64 }, (_, i) => i);
  for (const [len, hex] of VECTORS) {
    const lo = siphash24(key, m, len);
    const out = Buffer.alloc(8);
    out.writeUInt32LE(lo, 0);
    out.writeUInt32LE(siphashHigh, 4);
    assert.equal(out.toString('hex'), hex, `length ${len}`);
  }
});

test('SipHash-2-4 depends on every key and message bit it is given, and on nothing past len', () => {
  const key = sipKeyFromBytes(Uint8Array.from({ length: 16 }, (_, i) => i * 7));
  const m = Uint8Array.from({ length: 40 }, (_, i) => i * 13);
  const h = siphash24(key, m, 36);
  m[36] ^= 1;
  assert.equal(siphash24(key, m, 36), h, 'bytes past len are not read');
  for (let bit = 0; bit < 36 * 8; bit += 11) {
    m[bit >> 3] ^= 1 << (bit & 7);
    assert.notEqual(siphash24(key, m, 36), h, `message bit ${bit}`);
    m[bit >> 3] ^= 1 << (bit & 7);
  }
  for (let w = 0; w < 4; w++) {
    const k2 = key.slice();
    k2[w] ^= 0x80000000;
    assert.notEqual(siphash24(k2, m, 36), h, `key word ${w}`);
  }
});
