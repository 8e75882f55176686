import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { tcpPoll, tcpReadSock, tcpRecvmsg } from '../../src/net/ipv4/tcp.js';
import { tcpSpliceRead } from '../../src/net/ipv4/tcp_splice.js';
import { EAGAIN, POLLPRI } from '../../src/uapi.js';

const U = 0x20;

/** 100 bytes 0..99 with the urgent pointer at 100: byte 99 is the urgent one (BSD's reading). */
function urgent(t: TcpHarness): void {
  const payload = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
  t.send({ flags: A | U, seq: 1, ack: 1, win: 50000, payload, urg: 100 });
}

for (const family of FAMILIES) {
  const name = familyName(family);

  test(`${name}: urgent data: a read stops before the urgent byte, the next steps over it; POLLPRI until then`, () => {
    const t = TcpHarness.established(family);
    urgent(t);
    assert.equal(tcpPoll(t.tcp, t.sk!) & POLLPRI, POLLPRI);
    const b = Buffer.alloc(200);
    assert.equal(tcpRecvmsg(t.tcp, t.sk!, b), 99);
    assert.deepEqual([...b.subarray(97, 99)], [97, 98]);
    t.send({ flags: A, seq: 101, ack: 1, win: 50000, payload: Buffer.from([200, 201]) });
    assert.equal(tcpRecvmsg(t.tcp, t.sk!, b), 2, 'the urgent byte is not in the stream');
    assert.deepEqual([...b.subarray(0, 2)], [200, 201]);
    assert.equal(tcpPoll(t.tcp, t.sk!) & POLLPRI, 0);
  });

  test(`${name}: urgent data: tcp_read_sock (splice) stops at the mark and splice returns 0 rather than waiting`, () => {
    const t = TcpHarness.established(family);
    urgent(t);
    const got: number[] = [];
    const actor = (buf: Buffer, off: number, len: number) => {
      got.push(...buf.subarray(off, off + len));
      return len;
    };
    assert.equal(tcpSpliceRead(t.tcp, t.sk!, actor, 99, false), 99);
    assert.equal(got.length, 99);
    assert.equal(tcpReadSock(t.tcp, t.sk!, actor, 1), -EAGAIN, 'nothing before the mark');
    assert.equal(tcpSpliceRead(t.tcp, t.sk!, actor, 1, false), 0, 'data queued but none readable: no wait');
    assert.equal(tcpSpliceRead(t.tcp, t.sk!, actor, 1, true), -EAGAIN, 'non-blocking');
  });
}
