/**
 * The chrono stats of TCP_INFO (tcp_chrono_start/stop): tcpi_busy_time,
 * tcpi_rwnd_limited and tcpi_sndbuf_limited, in microseconds, counted on
 * the virtual clock in whole milliseconds as a HZ=1000 kernel counts them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpHarness, A, FAMILIES, familyName } from '../lib/tcp_harness.js';
import { tcpPoll, tcpSendmsg, tcpSetsockopt } from '../../src/net/ipv4/tcp.js';
import { decodeTcpInfo, encodeTcpInfo, tcpGetInfo, TCP_INFO_SIZE } from '../../src/net/ipv4/tcp_info.js';
import { POLLOUT, SOL_SOCKET, SO_SNDBUF } from '../../src/uapi.js';

/** busy, rwnd-limited and sndbuf-limited microseconds as a getsockopt caller reads them from the bytes. */
function chrono(t: TcpHarness): [bigint, bigint, bigint] {
  const buf = Buffer.alloc(TCP_INFO_SIZE);
  encodeTcpInfo(tcpGetInfo(t.tcp, t.sk!), buf);
  const info = decodeTcpInfo(buf);
  return [info.tcpi_busy_time, info.tcpi_rwnd_limited, info.tcpi_sndbuf_limited];
}

/** Payload bytes of the segments the stack sent since the last look. */
function sentBytes(t: TcpHarness): number {
  return t.out().reduce((n, s) => n + s.len, 0);
}

for (const family of FAMILIES) {
  test(`${familyName(family)}: tcpi_busy_time runs while data is outstanding and stops once all of it is acked`, () => {
    const t = TcpHarness.established(family);
    t.time.advance(3);
    assert.deepEqual(chrono(t), [0n, 0n, 0n], 'the handshake is not busy time');
    assert.equal(tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(3000, 1)), 3000);
    assert.equal(sentBytes(t), 3000);
    t.time.advance(10);
    assert.deepEqual(chrono(t), [10_000n, 0n, 0n]);
    // Part acked: still busy.
    t.send({ flags: A, seq: 1, ack: 1001 });
    t.time.advance(10);
    assert.deepEqual(chrono(t), [20_000n, 0n, 0n]);
    t.send({ flags: A, seq: 1, ack: 3001 });
    t.time.advance(50);
    assert.deepEqual(chrono(t), [20_000n, 0n, 0n], 'idle time is not busy time');
    // A second burst adds to the total.
    assert.equal(tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(500, 1)), 500);
    t.time.advance(4);
    t.send({ flags: A, seq: 1, ack: 3501 });
    t.time.advance(9);
    assert.deepEqual(chrono(t), [24_000n, 0n, 0n]);
  });

  test(`${familyName(family)}: tcpi_rwnd_limited runs while the peer's window holds data back, and counts in busy time`, () => {
    const t = new TcpHarness(family);
    t.accept([['mss', 1000], ['nop'], ['wscale', 0]], 2000);
    t.out();
    assert.equal(tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(5000, 1)), 5000);
    assert.equal(sentBytes(t), 2000, 'the 2000-byte window lets two segments out');
    t.time.advance(10);
    assert.deepEqual(chrono(t), [10_000n, 10_000n, 0n]);
    // The window opens: the rest goes out, the sender is merely busy again.
    t.send({ flags: A, seq: 1, ack: 2001, win: 50000 });
    assert.ok(sentBytes(t) >= 3000);
    t.time.advance(5);
    assert.deepEqual(chrono(t), [15_000n, 10_000n, 0n]);
    // A window that closes again holds the next write back from the moment it is queued.
    t.send({ flags: A, seq: 1, ack: 5001, win: 0 });
    t.time.advance(2);
    assert.deepEqual(chrono(t), [15_000n, 10_000n, 0n], 'nothing queued: no chrono runs');
    assert.equal(tcpSendmsg(t.tcp, t.sk!, Buffer.alloc(1000, 1)), 1000);
    assert.equal(sentBytes(t), 0, 'zero window');
    t.time.advance(30);
    assert.deepEqual(chrono(t), [45_000n, 40_000n, 0n]);
  });

  test(`${familyName(family)}: tcpi_sndbuf_limited runs while everything is sent and the writer waits for send-buffer space`, () => {
    const t = TcpHarness.established(family);
    const sk = t.sk!;
    assert.equal(tcpSetsockopt(t.tcp, sk, SOL_SOCKET, SO_SNDBUF, 4096), 0);
    // The send buffer takes part of the write; the initial cwnd sends ten segments of it.
    const took = tcpSendmsg(t.tcp, sk, Buffer.alloc(100_000, 1));
    assert.ok(took > 10_000 && took < 100_000, `took ${took}`);
    assert.equal(sentBytes(t), 10_000);
    // ACKs at the same instant grow the cwnd: the rest goes out, all of it, with no room freed
    // for the writer. From here only the send buffer holds the sender back.
    t.send({ flags: A, seq: 1, ack: 10_001 });
    t.send({ flags: A, seq: 1, ack: took - 4999 });
    assert.equal(sentBytes(t), took - 10_000);
    assert.equal(tcpPoll(t.tcp, sk) & POLLOUT, 0, 'the writer is not woken yet');
    assert.deepEqual(chrono(t), [0n, 0n, 0n]);
    t.time.advance(10);
    assert.deepEqual(chrono(t), [10_000n, 0n, 10_000n]);
    // Room enough frees up (tcp_check_space wakes the writer): back to busy with data in flight.
    t.send({ flags: A, seq: 1, ack: took - 1999 });
    assert.notEqual(tcpPoll(t.tcp, sk) & POLLOUT, 0);
    t.time.advance(5);
    assert.deepEqual(chrono(t), [15_000n, 0n, 10_000n]);
    t.send({ flags: A, seq: 1, ack: took + 1 });
    t.time.advance(7);
    assert.deepEqual(chrono(t), [15_000n, 0n, 10_000n]);
  });
}
