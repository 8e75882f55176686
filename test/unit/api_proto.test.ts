/** The API's wire format and the file server's range parsing: pure functions, no daemon. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArgError, ArgReader, FrameWriter, HDR_LEN, SOCKADDR_MAX_WIRE, sockaddrDecode, sockaddrWrite } from '../../src/api/proto.js';
import { sockaddrFromText, sockaddrToText } from '../../src/client/index.js';
import { parseRange } from '../../src/cli/serve.js';
import { AF_INET, AF_INET6, AF_UNSPEC, errnoByName, errnoName, type SockAddr } from '../../src/uapi.js';
import { formatIpv6, parseIpv6 } from '../../src/lib/addr.js';

/** A sockaddr through the one codec: written with its u16 length, read back. */
function roundTrip(sa: SockAddr): { wire: Buffer; back: SockAddr } {
  const b = Buffer.alloc(SOCKADDR_MAX_WIRE);
  const n = sockaddrWrite(b, 0, sa);
  assert.equal(b.readUInt16LE(0), n - 2, 'the length prefix');
  return { wire: b.subarray(2, n), back: sockaddrDecode(b.subarray(2, n)) };
}

test('sockaddr_in: 8 bytes, port little-endian, address in network order', () => {
  const { wire, back } = roundTrip(sockaddrFromText({ family: AF_INET, addr: '10.0.0.2', port: 8080 }));
  assert.deepEqual([...wire], [2, 0, 0x90, 0x1f, 10, 0, 0, 2]);
  assert.deepEqual(back, { family: AF_INET, port: 8080, addr: 0x0a000002, addr6: null });
  assert.deepEqual(sockaddrToText(back), { family: AF_INET, addr: '10.0.0.2', port: 8080 });
});

test('sockaddr_in6: 28 bytes with flowinfo and scope id; RFC 5952 text', () => {
  const { wire, back } = roundTrip(sockaddrFromText({ family: AF_INET6, addr: 'fd00::2', port: 443, flowinfo: 7, scopeId: 3 }));
  assert.equal(wire.length, 28);
  assert.deepEqual([...wire.subarray(8, 10)], [0xfd, 0], 'the address in network order');
  assert.deepEqual(sockaddrToText(back), { family: AF_INET6, addr: 'fd00::2', port: 443, flowinfo: 7, scopeId: 3 });
  assert.equal(formatIpv6(parseIpv6('2001:db8:0:0:1:0:0:1')!), '2001:db8::1:0:0:1');
  assert.equal(formatIpv6(parseIpv6('::')!), '::');
  assert.throws(() => sockaddrFromText({ family: AF_INET6, addr: '1::2::3', port: 1 }), ArgError);
});

test('AF_UNSPEC (connect\'s disconnect) is the family alone; no address is a length of 0', () => {
  assert.deepEqual(sockaddrDecode(Buffer.from([0, 0])), { family: AF_UNSPEC, port: 0, addr: 0, addr6: null });
  const b = Buffer.alloc(SOCKADDR_MAX_WIRE, 0xff);
  assert.equal(sockaddrWrite(b, 0, { family: AF_UNSPEC, port: 0, addr: 0, addr6: null }), 2);
  assert.equal(b.readUInt16LE(0), 0);
});

test('bad sockaddrs fail with the errno Linux uses', () => {
  const e = (f: () => unknown) => {
    try {
      f();
    } catch (x) {
      return (x as ArgError).errno;
    }
    return 0;
  };
  assert.equal(e(() => sockaddrDecode(Buffer.from([2, 0, 1, 2]))), 22); // short AF_INET: EINVAL
  assert.equal(e(() => sockaddrDecode(Buffer.from([7, 0, 0, 0, 0, 0, 0, 0]))), 97); // EAFNOSUPPORT
  assert.equal(e(() => sockaddrDecode(Buffer.from([2]))), 22);
  assert.equal(e(() => sockaddrDecode(Buffer.alloc(27, 0).fill(10, 0, 1))), 22); // short AF_INET6
  assert.equal(e(() => sockaddrFromText({ family: AF_INET, addr: '10.0.0.256', port: 1 })), 22);
});

test('frames: the writer fills the header; the reader is bounds-checked (EFAULT past the end)', () => {
  const f = new FrameWriter(0x01020304, 49).i32(-5).u16(9).bytes(Buffer.from('ab')).finish();
  assert.equal(f.readUInt32LE(0), f.length);
  assert.equal(f.readUInt32LE(4), 0x01020304);
  assert.equal(f.readUInt16LE(8), 49);
  const r = new ArgReader(f, HDR_LEN, f.length);
  assert.equal(r.i32(), -5);
  assert.equal(r.u16(), 9);
  assert.equal(r.bytes(2).toString(), 'ab');
  assert.throws(() => r.u32(), (x: unknown) => x instanceof ArgError && x.errno === 14);
  // Growth past the initial buffer keeps earlier bytes.
  const big = new FrameWriter(1, 1, 0, 16).bytes(Buffer.alloc(1000, 7)).finish();
  assert.equal(big.length, HDR_LEN + 1000);
  assert.equal(big[HDR_LEN + 999], 7);
});

test('errno names both ways', () => {
  assert.equal(errnoName(-111), 'ECONNREFUSED');
  assert.equal(errnoName(11), 'EAGAIN');
  assert.equal(errnoByName('EADDRINUSE'), 98);
  assert.equal(errnoName(4095), 'E4095');
});

test('Range: bytes= for one range, suffix ranges, unsatisfiable ones, and ignored forms', () => {
  assert.deepEqual(parseRange('bytes=0-99', 1000), [0, 99]);
  assert.deepEqual(parseRange('bytes=900-', 1000), [900, 999]);
  assert.deepEqual(parseRange('bytes=-100', 1000), [900, 999]);
  assert.deepEqual(parseRange('bytes=990-2000', 1000), [990, 999]);
  assert.equal(parseRange('bytes=1000-', 1000), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 1000), 'unsatisfiable');
  assert.equal(parseRange('bytes=5-1', 1000), null);
  assert.equal(parseRange('bytes=0-1,5-6', 1000), null);
  assert.equal(parseRange(undefined, 1000), null);
});
