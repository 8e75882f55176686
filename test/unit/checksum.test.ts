import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csumFold, csumPartial, csumTcpUdpMagic, ipFastCsum } from '../../src/lib/checksum.js';

/** Reference: RFC 1071's definition, one 16-bit word at a time with end-around carry. */
function reference(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) {
    s += (b[i] << 8) | (i + 1 < b.length ? b[i + 1] : 0);
    s = (s & 0xffff) + (s >>> 16);
  }
  return ~s & 0xffff;
}

test('RFC 1071 worked example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2', () => {
  const b = Buffer.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.equal(csumFold(csumPartial(b, 0, b.length)), ~0xddf2 & 0xffff);
});

test('odd lengths pad the last byte with zero', () => {
  for (const n of [1, 3, 5, 7, 9, 1023, 1501]) {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 37 + 11) & 255;
    assert.equal(csumFold(csumPartial(b, 0, n)), reference(b), `length ${n}`);
  }
  assert.equal(csumFold(csumPartial(Buffer.from([0xab]), 0, 1)), ~0xab00 & 0xffff);
});

test('carries: all-ones data of every length up to 64 KiB folds correctly', () => {
  for (const n of [2, 4, 6, 8, 4096, 65535, 65536]) {
    const b = Buffer.alloc(n, 0xff);
    assert.equal(csumFold(csumPartial(b, 0, n)), reference(b), `length ${n}`);
  }
});

test('an offset into a larger buffer covers only the region', () => {
  const b = Buffer.from([9, 9, 9, 0x12, 0x34, 0x56, 0x78, 9]);
  assert.equal(csumFold(csumPartial(b, 3, 4)), reference(Buffer.from([0x12, 0x34, 0x56, 0x78])));
});

test('even-length pieces chain into the sum of the whole', () => {
  const b = Buffer.alloc(999);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7919) & 255;
  const whole = csumFold(csumPartial(b, 0, b.length));
  const chained = csumFold(csumPartial(b, 600, 399, csumPartial(b, 200, 400, csumPartial(b, 0, 200))));
  assert.equal(chained, whole);
});

test('a region with a correct checksum field sums to zero', () => {
  const h = Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex');
  const c = ipFastCsum(h, 0, 20);
  assert.equal(c, 0xb861); // the well-known example header
  h.writeUInt16BE(c, 10);
  assert.equal(ipFastCsum(h, 0, 20), 0);
});

test('pseudo-header sum matches the bytes laid out', () => {
  const saddr = 0xc0a80001;
  const daddr = 0x0a000002;
  const ph = Buffer.alloc(12);
  ph.writeUInt32BE(saddr, 0);
  ph.writeUInt32BE(daddr, 4);
  ph[9] = 6;
  ph.writeUInt16BE(40, 10);
  assert.equal(csumFold(csumTcpUdpMagic(saddr, daddr, 6, 40)), csumFold(csumPartial(ph, 0, 12)));
});
