/**
 * Path MTU on IPv4 (tcp_v4_err, tcp_simple_retransmit): a Fragmentation
 * Needed that leaves the MSS as it is resends nothing; a smaller one
 * resends what went out in larger segments, at the new size. The data went
 * out from GSO skbs (several MSS each), as it does in every bulk send.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { A, TcpHarness } from '../lib/tcp_harness.js';
import { tcpSendmsg } from '../../src/net/ipv4/tcp.js';
import { AF_INET } from '../../src/uapi.js';

test('IPv4 Frag Needed: an MTU that keeps the MSS resends nothing; a smaller one resends everything in flight at the new MSS', () => {
  const t = TcpHarness.established(AF_INET);
  const sk = t.sk!;
  tcpSendmsg(t.tcp, sk, Buffer.alloc(8000, 0x61));
  const sent = t.out();
  assert.equal(sent.length, 8);
  assert.ok(sent.every((s) => s.len === 1000));
  let gso = 0;
  for (let s = sk.wqHead; s; s = s.next) if (s.pcount > 1) gso++;
  assert.ok(gso > 0, 'the segments went out of GSO skbs');
  const quoted = t.ourPacket({ seq: (t.stackIsn + 1) >>> 0, ack: 0, flags: A, payload: sent[0].payload });
  // 1400 - 40 = 1360 is above the peer's MSS of 1000: nothing in flight is too large.
  t.icmpError(3, 4, 1400, quoted);
  assert.equal(sk.mssCache, 1000);
  assert.equal(sk.lostOut, 0, 'nothing marked lost');
  assert.deepEqual(t.out(), [], 'nothing resent');
  // 1000 - 40 = 960: every segment in flight was larger.
  t.icmpError(3, 4, 1000, quoted);
  assert.equal(sk.mssCache, 960);
  const re = t.out();
  assert.ok(re.length > 0 && re.every((s) => s.len <= 960), `resent at the new MSS: ${re.map((s) => s.len)}`);
  assert.equal(re[0].seq, 1);
  assert.ok(sk.sackedOut + sk.lostOut <= sk.packetsOut);
});
